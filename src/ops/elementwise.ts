import type { OpImpl } from "./types.ts";

export const ELEMENTWISE_OPS: Record<string, OpImpl> = {};
