// Every operator implemented in TypeScript, by qualified op type: the ONNX op type for the
// default domain, "<domain>.<op>" for others (sqz's own ai.sqz ops). The executor prefers a Wasm
// kernel op where one applies (src/runtime/kernel_ops) and falls back to these.
import type { OpImpl } from "./types.ts";
import { ELEMENTWISE_OPS } from "./elementwise.ts";
import { TENSOR_OPS } from "./tensor_ops.ts";
import { REDUCE_OPS } from "./reduce.ts";
import { NORMALIZATION_OPS } from "./normalization.ts";
import { QUANT_OPS } from "./quant.ts";
import { NN_OPS } from "./nn.ts";
import { SQZ_SPARSE_OPS } from "./sqz_sparse.ts";
import { SQZ_LOWBIT_OPS } from "./sqz_lowbit.ts";
import { CONTRIB_MATMULNBITS_OPS } from "./contrib_matmulnbits.ts";
import { RESIZE_OPS } from "./resize.ts";
import { TOPK_OPS } from "./topk.ts";

export const TS_OPS: Readonly<Record<string, OpImpl>> = {
  ...ELEMENTWISE_OPS,
  ...TENSOR_OPS,
  ...REDUCE_OPS,
  ...NORMALIZATION_OPS,
  ...QUANT_OPS,
  ...NN_OPS,
  ...SQZ_SPARSE_OPS,
  ...SQZ_LOWBIT_OPS,
  ...CONTRIB_MATMULNBITS_OPS,
  ...RESIZE_OPS,
  ...TOPK_OPS,
};
