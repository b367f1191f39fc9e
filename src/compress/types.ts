// What compression passes report, layer by layer, and the naming conventions the evaluation
// relies on to pair a compressed model's tensors with the float model's.
import type { Graph } from "../graph/ir.ts";
import type { Recipe } from "./recipe.ts";

/** One Conv / Gemm / MatMul after compression. */
export interface LayerReport {
  /** Node name in the float model. */
  name: string;
  op: string;
  /** What was done: "int8", "int4", "binary", "pruned 90%", "rank 16", "32 clusters"… */
  method: string;
  /** Weight parameters before. */
  params: number;
  /** Non-zero weights after (pruning). */
  nonzeros: number;
  /** Weight storage in bytes (initializers, as stored in the artifact), before and after. */
  bytesBefore: number;
  bytesAfter: number;
  /** MACs per inference at batch 1 before and after, when the pass changes them. */
  macsBefore?: number;
  macsAfter?: number;
  notes?: string[];
}

export interface PassResult {
  layers: LayerReport[];
  /** Model-level remarks for the report ("int8 without calibration data: dynamic"…). */
  notes: string[];
}

/** A pass over the graph: rewrites it in place. */
export type CompressPass = (g: Graph, recipe: Recipe) => PassResult;

/**
 * A quantized layer's output keeps its float name `v` for the pre-quantization tensor; the
 * dequantized tensor its consumers read is `v + DEQUANTIZED_SUFFIX`. The evaluator compares the
 * float model's `v` with that (or with `v` when the layer has no such tensor).
 */
export const DEQUANTIZED_SUFFIX = "::dq";
/** The quantized tensor between QuantizeLinear and DequantizeLinear. */
export const QUANTIZED_SUFFIX = "::q";

/** The custom ONNX domain of sqz's packed layers (documented in src/ops/sqz_*.ts). */
export { SQZ_DOMAIN } from "../graph/qdq.ts";
