import type { OpImpl } from "./types.ts";

export const TENSOR_OPS: Record<string, OpImpl> = {};
