// A layer's weights: tracing them back to their initializer (through DequantizeLinear, layout
// ops or an ai.sqz decoder) and counting the ones that are not zero.
import type { Node, Value } from "../graph/ir.ts";
import type { Tensor } from "../graph/tensor.ts";
import { SQZ_DOMAIN } from "../compress/types.ts";

/** Input slot of the weight, and of its zero point, by op. */
export const WEIGHT_SLOT: Record<string, [number, number]> = {
  Conv: [1, -1],
  Gemm: [1, -1],
  MatMul: [1, -1],
  ConvInteger: [1, 3],
  MatMulInteger: [1, 3],
  QLinearConv: [3, 5],
  QLinearMatMul: [3, 5],
  QGemm: [3, 5],
};
/** Ops a weight passes through unchanged in value (for tracing it to its initializer). */
const PASS_THROUGH = new Set(["Transpose", "Reshape", "Identity", "Cast", "Flatten", "Squeeze"]);

/**
 * Non-zero weights: elements whose value is not the zero point (`zp` scalar, per-axis along
 * `axis`, or blocked with `blockSize` along it); float16 counts ±0 as zero.
 */
export function countNonzeros(w: Tensor, zp?: Tensor, axis = 0, blockSize = 0): number {
  const data = w.data as ArrayLike<number | bigint>;
  const n = data.length;
  let count = 0;
  if (w.type === "float16") {
    for (let i = 0; i < n; i++) if (((data[i] as number) & 0x7fff) !== 0) count++;
    return count;
  }
  const z = zp ? Array.from(zp.data as ArrayLike<number | bigint>, Number) : [0];
  if (z.length <= 1) {
    const z0 = z[0] ?? 0;
    for (let i = 0; i < n; i++) if (Number(data[i]) !== z0) count++;
    return count;
  }
  const dims = w.dims, ax = axis < 0 ? axis + dims.length : axis;
  const len = dims[ax] ?? 1;
  let inner = 1;
  for (let j = ax + 1; j < dims.length; j++) inner *= dims[j];
  const blocked = zp!.dims.length === dims.length && blockSize > 0;
  const zlen = blocked ? Math.ceil(len / blockSize) : len;
  if (!blocked && z.length !== len) {
    for (let i = 0; i < n; i++) if (Number(data[i]) !== 0) count++;
    return count;
  }
  for (let i = 0; i < n; i++) {
    const a = Math.floor(i / inner) % len;
    const zi = blocked
      ? (Math.floor(i / (inner * len)) * zlen + Math.floor(a / blockSize)) * inner + (i % inner)
      : a;
    if (Number(data[i]) !== z[zi]) count++;
  }
  return count;
}

export interface WeightTrace {
  constant?: Tensor;
  /** The DequantizeLinear the weight went through, if any. */
  dq?: Node;
  /** An ai.sqz node that decodes the weight, if any. */
  decoder?: Node;
}

export function traceWeight(v: Value | undefined): WeightTrace {
  const trace: WeightTrace = {};
  for (let step = 0; v && step < 16; step++) {
    if (v.constant) return { ...trace, constant: v.constant };
    const p: Node | undefined = v.producer;
    if (!p) return trace;
    if (p.domain === SQZ_DOMAIN) return { ...trace, decoder: p };
    if (p.op === "DequantizeLinear") trace.dq = p;
    else if (!PASS_THROUGH.has(p.op)) return trace;
    v = p.inputs[0];
  }
  return trace;
}
