// The Wasm kernel ops by qualified op name. NHWC ops come from the layout pass (runtime/
// layout.ts), which asks `nhwcEligible` which nodes the kernels can take.
import type { Node } from "../../graph/ir.ts";
import type { KernelOpFactory } from "../kernel_op.ts";
import { NHWC_DOMAIN } from "../layout.ts";
import { convEligible, nhwcConv } from "./conv.ts";
import { nhwcPool, poolEligible } from "./pool.ts";
import { gemmF32 } from "./gemm.ts";
import { matmulDynamicF32 } from "./matmul.ts";
import { clampF32, geluF32, layerNormF32, softmaxF32 } from "./rowwise.ts";
import { attentionF32 } from "./attention.ts";
import { binaryF32, sumF32 } from "./elementwise.ts";
import { dequantizeLinearU8, dynamicQuantizeLinear, quantizeLinearU8 } from "./dynamic_quant.ts";
import { ATTENTION_OP } from "../../graph/fuse_transformer.ts";
import { nhwcQConv, qconvEligible } from "./qconv.ts";
import { qgemm, qgemmEligible } from "./qgemm.ts";
import { SQZ_DOMAIN } from "../../graph/qdq.ts";
import { BINARY_KERNEL_OPS, binaryConvEligible } from "./binary.ts";
import { matmulNBitsF32 } from "./matmulnbits.ts";

export const KERNEL_OPS: Readonly<Record<string, KernelOpFactory>> = {
  [`${NHWC_DOMAIN}.Conv`]: nhwcConv,
  [`${NHWC_DOMAIN}.MaxPool`]: nhwcPool,
  [`${NHWC_DOMAIN}.AveragePool`]: nhwcPool,
  [`${NHWC_DOMAIN}.GlobalAveragePool`]: nhwcPool,
  [`${NHWC_DOMAIN}.GlobalMaxPool`]: nhwcPool,
  [`${NHWC_DOMAIN}.QLinearConv`]: nhwcQConv,
  [`${NHWC_DOMAIN}.ConvInteger`]: nhwcQConv,
  Gemm: gemmF32,
  MatMul: (n, env) => gemmF32(n, env) ?? matmulDynamicF32(n, env),
  DynamicQuantizeLinear: dynamicQuantizeLinear,
  QuantizeLinear: quantizeLinearU8,
  DequantizeLinear: dequantizeLinearU8,
  Add: binaryF32,
  Sub: binaryF32,
  Mul: binaryF32,
  Div: binaryF32,
  Sum: sumF32,
  Relu: clampF32,
  Clip: clampF32,
  LayerNormalization: layerNormF32,
  Softmax: softmaxF32,
  Gelu: geluF32,
  [`${SQZ_DOMAIN}.${ATTENTION_OP}`]: attentionF32,
  QLinearMatMul: qgemm,
  MatMulInteger: qgemm,
  [`${SQZ_DOMAIN}.QGemm`]: qgemm,
  ...BINARY_KERNEL_OPS,
  "com.microsoft.MatMulNBits": matmulNBitsF32,
};

/** What the QDQ fusion may create: nodes the int8 kernels run exactly. */
export function quantizedEligible(n: Node): boolean {
  return n.op === "QLinearConv" ? qconvEligible(n) : qgemmEligible(n);
}

/** Whether the NHWC kernels can run this (default-domain) node. */
export function nhwcEligible(n: Node): boolean {
  if (convEligible(n) || qconvEligible(n) || binaryConvEligible(n)) return true;
  if (!poolEligible(n)) return false;
  // Global pools take any rank; only 4-D inputs are NHWC images.
  return n.inputs[0]?.shape?.length === 4;
}
