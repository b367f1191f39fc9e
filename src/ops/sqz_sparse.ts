import type { OpImpl } from "./types.ts";

/** ai.sqz decoders for sparse and clustered weights (see the format notes in this file). */
export const SQZ_SPARSE_OPS: Record<string, OpImpl> = {};
