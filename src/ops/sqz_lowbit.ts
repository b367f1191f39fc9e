import type { OpImpl } from "./types.ts";

/** ai.sqz decoders and ops for int4, ternary and binary layers (formats in this file). */
export const SQZ_LOWBIT_OPS: Record<string, OpImpl> = {};
