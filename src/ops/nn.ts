import type { OpImpl } from "./types.ts";

export const NN_OPS: Record<string, OpImpl> = {};
