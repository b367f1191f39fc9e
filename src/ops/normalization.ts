import type { OpImpl } from "./types.ts";

export const NORMALIZATION_OPS: Record<string, OpImpl> = {};
