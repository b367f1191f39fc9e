// What precision a layer's multiply-accumulates run at, from its op: the float, QDQ-fused and
// integer ONNX layer ops, and sqz's packed ai.sqz ops (by name).
import { type Precision, PRECISIONS } from "./types.ts";

/** Ops whose MACs are a layer's: float, QDQ-fused and integer forms. */
export const LAYER_OPS = new Set([
  "Conv",
  "Gemm",
  "MatMul",
  "QLinearConv",
  "QLinearMatMul",
  "ConvInteger",
  "MatMulInteger",
]);
export const INTEGER_OPS = new Set([
  "QLinearConv",
  "QLinearMatMul",
  "ConvInteger",
  "MatMulInteger",
]);

/** Precision of an ai.sqz op, from its name; undefined: it computes in float. */
export function sqzPrecision(op: string): Precision | undefined {
  if (/bin|xnor/i.test(op)) return "binary";
  if (/tern/i.test(op)) return "ternary";
  if (/int4|q4|4bit|nibble/i.test(op)) return "int4";
  if (/^q|int8|q8/i.test(op)) return "int8";
  return undefined;
}

export const is4bit = (t: string | undefined) => t === "int4" || t === "uint4";

/** Storage format of the weights an ai.sqz op holds or decodes, from its name. */
export function sqzWeights(op: string): string {
  const p = sqzPrecision(op);
  if (p) return p;
  if (/sparse/i.test(op)) return "sparse";
  if (/cluster|palett|lut/i.test(op)) return "clustered";
  return op;
}

/** MACs per precision, summed over layers. */
export function macsByPrecision(
  layers: readonly { precision: Precision; macs?: number }[],
): Record<Precision, number> {
  const out = Object.fromEntries(PRECISIONS.map((p) => [p, 0])) as Record<Precision, number>;
  for (const l of layers) out[l.precision] += l.macs ?? 0;
  return out;
}
