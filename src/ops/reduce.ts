import type { OpImpl } from "./types.ts";

export const REDUCE_OPS: Record<string, OpImpl> = {};
