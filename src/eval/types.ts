// The shape of an evaluation: what evaluate() takes (Dataset, EvaluateOptions) and what it
// returns (EvalReport and its parts). Plain JSON throughout: non-finite numbers are written as
// the strings "inf" / "-inf" and NaN as null (JsonNumber). evaluate.ts re-exports all of it.
import type { KernelBuild } from "../kernels/features.ts";
import type { ReferenceRuns } from "./run.ts";
import type { Tensor } from "../graph/tensor.ts";
import type { ExternalFileSize } from "../onnx/model_size.ts";
import type { ClassMetrics } from "./metrics.ts";

/** Labelled samples: every input is a batch of N samples along dim 0. */
export interface Dataset {
  inputs: Record<string, Tensor>;
  /** Class index of each sample (N of them); accuracy and P/R/F1 need them. */
  labels?: Uint8Array | Int32Array;
  /** Samples per run (default 64); a model whose batch dim is fixed uses its own. */
  batchSize?: number;
  /** Display names of the classes, by index (for the confusion matrix). */
  classNames?: string[];
}

export interface EvaluateOptions {
  /** The float model the evaluated one was made from: bytes or a path. */
  reference?: Uint8Array | string;
  /**
   * The model's external data files by location, when it is given as bytes (a model given as
   * a path finds them beside it). Sizes count them.
   */
  externalData?: Record<string, Uint8Array>;
  /** The reference's external data files by location, as `externalData` for the model. */
  referenceExternalData?: Record<string, Uint8Array>;
  /** Kernel build for both models ("auto" by default). */
  build?: KernelBuild | "auto";
  /** Folds for a k-fold estimate of the accuracy's spread (≥ 2; needs labels). */
  kfold?: number;
  /** Seed of the fold shuffle (default 0). */
  kfoldSeed?: number;
  /** Timed single-sample runs for the latency percentiles (default 30; 0 skips timing). */
  latencyRuns?: number;
  /**
   * Keep timing (beyond latencyRuns, up to 100× as many) until the timed runs add up to this
   * many milliseconds (default 0): steadier medians for models that run in microseconds.
   */
  latencyMinMs?: number;
  /** Per-layer SQNR against the reference (default true when a reference is given). */
  layers?: boolean;
  /** The output holding the class scores (default: the model's first output). */
  output?: string;
  /**
   * Reuse the reference's outputs across calls on the same dataset object (run.ts
   * ReferenceRuns): the reference then runs once, its latency measured that once.
   */
  referenceRuns?: ReferenceRuns;
  /** Measure the Brotli size (default true; a search's trials skip it). */
  brotli?: boolean;
}

/** A number as JSON can hold it: ±∞ as "inf" / "-inf", NaN as null. */
export type JsonNumber = number | "inf" | "-inf" | null;

/** Precision of a layer's multiply-accumulates (what its kernel multiplies). */
export type Precision = "float32" | "int8" | "int4" | "binary" | "ternary";
export const PRECISIONS: readonly Precision[] = ["float32", "int8", "int4", "binary", "ternary"];

/** Size and cost of one model: its .onnx file and the external data files it names. */
export interface ModelStats {
  /**
   * The model's bytes on disk: the .onnx file plus each external data file it names, counted
   * once at its full size (src/onnx/model_size.ts).
   */
  bytes: number;
  /** The .onnx file alone (= bytes when there is no external data). */
  graphBytes: number;
  /** The external data files, by location (absent when the weights are inside the .onnx). */
  externalFiles?: ExternalFileSize[];
  /** gzip -9 of each file, summed. */
  gzipBytes: number;
  /**
   * Brotli of each file, summed (quality 11; 9 above 32 MiB, where 11 takes minutes); absent
   * when evaluate() ran with `brotli: false` (it is most of a small model's analysis time).
   */
  brotliBytes?: number;
  /**
   * Weight parameters of the Conv / Gemm / MatMul layers (biases not counted), as the float
   * layers they stand for hold them: for sqz's packed layers, read from the model's
   * `sqz.report` metadata when present.
   */
  params: number;
  /** Of those, the ones that are not zero (quantized: whose value is not the zero point). */
  nonzeros: number;
  /** Multiply-accumulates per sample (batch 1) by the precision they run at. */
  macs: Record<Precision, number>;
}

export interface LatencyStats {
  /** Median and 99th percentile of single-sample run wall times, in milliseconds. */
  p50Ms: number | null;
  p99Ms: number | null;
  /** Timed runs (after warm-up). 0: not measured. */
  runs: number;
  /** Samples per timed run: 1, or the model's fixed batch size. */
  batch: number;
}

export interface MemoryStats {
  /** Activation arena of the single-sample runs, bytes. */
  arenaBytes: number;
  /** Packed weights and constants in Wasm memory, bytes. */
  weightBytes: number;
  /** arenaBytes + weightBytes: the Wasm memory the model needs (JS-side buffers excluded). */
  totalBytes: number;
}

/** One Conv / Gemm / MatMul (or sqz packed layer). */
export interface LayerEval {
  /** Node name in the reference (or in the model when there is no reference). */
  name: string;
  /** Op of the layer in the evaluated model ("Gemm", "QLinearConv", "ai.sqz.QGemm"…). */
  op: string;
  /** The value compared with the reference's layer output (`v` or `v::dq`). */
  output?: string;
  /** Precision of the layer's MACs (what its kernel multiplies). */
  precision?: Precision;
  /**
   * How the weights are stored: a tensor type ("float32", "int8"…) or a packed sqz format
   * ("int4", "ternary", "binary", "sparse"…). int4 / ternary / sparse weights are decoded to
   * float when the model loads, so their layers' MACs are float32.
   */
  weights?: string;
  /** SQNR of `output` against the reference's, dB, over the whole dataset. Absent: not compared. */
  sqnrDb?: JsonNumber;
  /**
   * Median time per single-sample run, ms: the layer's node(s) as the engine runs them (with
   * what got fused into them, and nodes a pass derived as `name::…`), not separate
   * quantize / dequantize glue.
   */
  ms?: number;
  /** MACs per sample. */
  macs?: number;
  params?: number;
  nonzeros?: number;
}

export interface EvalReport {
  format: "sqz.eval/1";
  /** Samples evaluated. */
  samples: number;
  /** Scores per sample in the output used. */
  classes: number;
  /** The output whose argmax is the prediction. */
  output: string;
  /** With labels: share of samples predicted right, in [0, 1]. */
  accuracy?: number;
  /** With labels: macro means over the classes present (see metrics.classification). */
  macro?: { precision: number; recall: number; f1: number };
  perClass?: ClassMetrics[];
  /** With labels: `matrix[true][predicted]`; `labels` name the rows and columns. */
  confusion?: { labels: string[]; matrix: number[][] };
  /** With a reference: share of samples whose top-1 class matches the reference's. */
  agreement?: number;
  /** With a reference: mean KL(p_ref ‖ p_model) of the output distributions, nats. */
  klMean?: JsonNumber;
  model: ModelStats;
  reference?: {
    model: ModelStats;
    accuracy?: number;
    latency: LatencyStats;
    /** reference bytes / model bytes (external data included on both sides). */
    compressionRatio: number;
    /** reference gzip bytes / model gzip bytes. */
    gzipRatio: number;
  };
  latency: LatencyStats;
  memory: MemoryStats;
  layers: LayerEval[];
  /** k-fold estimate: accuracy on k disjoint stratified folds, mean ± sample std. */
  kfold?: {
    k: number;
    seed: number;
    foldSizes: number[];
    accuracies: number[];
    mean: number;
    std: number;
  };
  notes: string[];
}

/** ±∞ and NaN as JSON holds them. */
export function jsonNumber(x: number): JsonNumber {
  if (Number.isNaN(x)) return null;
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  return x;
}

/** The inverse of {@link jsonNumber}. */
export function fromJsonNumber(x: JsonNumber | undefined): number | undefined {
  if (x === undefined) return undefined;
  if (x === null) return NaN;
  if (x === "inf") return Infinity;
  if (x === "-inf") return -Infinity;
  return x;
}
