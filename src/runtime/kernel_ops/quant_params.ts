// Reading the constant quantization parameters of QLinearConv / QLinearMatMul / ConvInteger /
// MatMulInteger / QGemm nodes, and the checks that decide whether the int8 kernels can run
// them exactly: weights minus their zero point must fit symmetric i8 ([-127, 127]), and every
// scale and zero point must be a constant (a runtime-computed one leaves the node to the
// TypeScript op).
import type { Node, Value } from "../../graph/ir.ts";
import type { Tensor } from "../../graph/tensor.ts";
import { scalarOf } from "../../graph/qdq.ts";

export type QType = "uint8" | "int8";

export function isQType(t: string | undefined): t is QType {
  return t === "uint8" || t === "int8";
}

/** A constant's values as numbers (absent optional input → undefined). */
export function constNumbers(v: Value | undefined): number[] | undefined {
  const c = v?.constant;
  if (!c) return undefined;
  return Array.from(c.data as ArrayLike<number | bigint>, Number);
}

/** A per-tensor constant (one element): its value; `dflt` when the input is absent. */
export function scalarConst(v: Value | undefined, dflt?: number): number | undefined {
  return v ? scalarOf(v) : dflt;
}

/**
 * Weights minus their zero point (per tensor, or per output channel along `axis` 0 of OIHW /
 * [N, K] or axis 1 of [K, N]) as symmetric i8, or undefined when some value does not fit.
 */
export function symmetricWeights(
  w: Tensor,
  zero: number[] | undefined,
  channels: number,
  channelOf: (i: number) => number,
): Int8Array | undefined {
  if (w.type !== "int8" && w.type !== "uint8") return undefined;
  if (zero && zero.length !== 1 && zero.length !== channels) return undefined;
  const src = w.data as Int8Array | Uint8Array;
  const out = new Int8Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const z = zero ? zero[zero.length === 1 ? 0 : channelOf(i)] : 0;
    const v = src[i] - z;
    if (v < -127 || v > 127) return undefined;
    out[i] = v;
  }
  return out;
}

/** Per-channel (or broadcast) f32 requantization scales, computed as onnxruntime does (f32). */
export function requantScales(
  xs: number,
  ws: number[],
  ys: number,
  channels: number,
): Float32Array {
  return Float32Array.from(
    { length: channels },
    (_, c) => Math.fround(Math.fround(xs * ws[ws.length === 1 ? 0 : c]) / ys),
  );
}

/** The fused clamp (activation_min/max, float) in the output's integer domain. */
export function quantizedClamp(node: Node, ys: number, yz: number, type: QType): [number, number] {
  const [qmin, qmax] = type === "uint8" ? [0, 255] : [-128, 127];
  const lo = node.attrs.activation_min, hi = node.attrs.activation_max;
  const q = (v: number) => Math.min(qmax, Math.max(qmin, Math.round(v / ys) + yz));
  return [
    typeof lo === "number" && lo > -Infinity ? q(lo) : qmin,
    typeof hi === "number" && hi < Infinity ? q(hi) : qmax,
  ];
}
