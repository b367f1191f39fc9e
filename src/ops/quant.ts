import type { OpImpl } from "./types.ts";

export const QUANT_OPS: Record<string, OpImpl> = {};
