// The contract of automated compression search (src/search/): what a search is asked for, what
// each trial measured, and what it returns. Everything here is plain JSON (except the best
// model's bytes and the data tensors), so trials can be stored, resumed and sent over SSE.
//
// A candidate is an Assignment: for every searchable layer (a Conv / Gemm / MatMul with a
// constant weight, by node name) one Choice, plus optional global genes. A Choice is a short
// label, mapped to compress()'s per-layer recipe by space.ts:
//   "float"            the layer is left alone (method "none")
//   "int8"             static int8 (needs calibration data; without it the space offers only
//                      "int8-dynamic")
//   "int8-dynamic"     int8 weights, activations quantized at run time
//   "int4"             weight-only int4 (block size: the global gene int4Block, 32/64/128)
//   "ternary"          TWN ternary
//   "binary"           XNOR-Net binary
//   "prune:<s>"        magnitude pruning of this layer to sparsity s (0.3 … 0.95)
//   "nm:<n>:<m>"       N:M pruning ("nm:2:4")
//   "structured:<r>"   structured pruning ratio r (filters removed)
//   "lowrank:<e>"      low-rank factorization keeping energy e
//   "cluster:<k>"      weight clustering to k values
//   and "+" combinations compress() accepts on one layer, e.g. "prune:0.5+int8".
// Global genes: int4Block (32 | 64 | 128) and finetune (true: the recipe gets the preset's
// `finetune` block, only when training data is given).
import type { Recipe } from "../compress/recipe.ts";
import type { CompressReport } from "../compress/compress.ts";
import type { CalibrationData } from "../compress/calibrate.ts";
import type { Dataset } from "../eval/types.ts";
import type { TrainData } from "../train/types.ts";

export type Choice = string;

/** The searchable layers and the choices open to each. */
export interface SearchSpace {
  layers: { name: string; op: string; params: number; macs: number; choices: Choice[] }[];
  /** Global genes and their values (absent: not searched). */
  int4Blocks?: (32 | 64 | 128)[];
  finetune?: boolean[];
}

/** What the user restricts the default space to. */
export interface SpaceSpec {
  /** Method families allowed: "float" is always allowed. */
  methods?: (
    | "int8"
    | "int8-dynamic"
    | "int4"
    | "ternary"
    | "binary"
    | "prune"
    | "nm"
    | "structured"
    | "lowrank"
    | "cluster"
  )[];
  /** Per-layer choices (node name or op type → choices), replacing the default ones. */
  layers?: Record<string, Choice[]>;
}

export interface Assignment {
  layers: Record<string, Choice>;
  int4Block?: 32 | 64 | 128;
  finetune?: boolean;
}

export interface Budget {
  /** accuracy: needs labels; agreement: top-1 agreement with the float model; kl: mean KL. */
  metric: "accuracy" | "agreement" | "kl";
  /**
   * Largest allowed drop from the float model (accuracy, agreement: in [0, 1], 0.005 = half a
   * point; kl: the largest allowed mean KL, ≥ 0). With `relative`, a share of the float value.
   */
  maxDrop: number;
  relative?: boolean;
}

export type Objective = "size" | "gzipSize" | "latency" | "memory" | "macs";
export const OBJECTIVES: readonly Objective[] = ["size", "gzipSize", "latency", "memory", "macs"];

export type StrategyName = "sensitivity" | "random" | "grid" | "tpe" | "evolution";
export const STRATEGIES: readonly StrategyName[] = [
  "sensitivity",
  "random",
  "grid",
  "tpe",
  "evolution",
];

export interface TrialMetrics {
  /** Top-1 accuracy on the validation data (when it has labels). */
  accuracy?: number;
  /** Top-1 agreement with the float model. */
  agreement: number;
  /** Mean KL(float ‖ candidate) of the softmax outputs. */
  kl: number;
  /** File bytes (.onnx plus external data) and gzip -9 bytes. */
  size: number;
  gzipSize: number;
  /** Median batch-1 latency, ms, measured on sqz's kernels on this machine. */
  latencyMs: number;
  /** Wasm memory the model needs: activation arena plus packed weights, bytes. */
  memory: number;
  /** Multiply-accumulates per sample. */
  macs: number;
  /** SQNR of the model output against the float model, dB (sensitivity probes only). */
  sqnrDb?: number;
}

export interface Trial {
  id: number;
  assignment: Assignment;
  /** The compress() recipe the assignment maps to (JSON). */
  recipe: Recipe;
  /** sha-256 of the canonical recipe JSON: the cache key. */
  hash: string;
  metrics: TrialMetrics;
  /** Meets the budget. */
  feasible: boolean;
  /** Cost-model predictions made before building it. */
  predicted?: { latencyMs?: number };
  /** Rejected early on the proxy (agreement on a small subset): metrics are the proxy's. */
  earlyRejected?: boolean;
  /** Why it failed, when compress() or evaluate() refused it (metrics then absent/zero). */
  error?: string;
  durationMs: number;
  /** Which strategy phase proposed it ("sensitivity", "fallback", "random", "tpe"…). */
  phase?: string;
}

/** A layer's measured sensitivity to each choice alone. */
export interface Sensitivity {
  layer: string;
  choice: Choice;
  /** Drop of the budget metric with only this layer compressed this way. */
  drop: number;
  /** SQNR of the model output against the float model, dB. */
  sqnrDb: number;
}

export interface SearchData {
  /** Static int8 calibration feeds (without them int8 is dynamic only). */
  calibration?: CalibrationData;
  validation: Dataset;
  /** Fine-tuning data, when "+ft" is in the space. */
  train?: TrainData;
}

/** Where a search keeps its finished trials, so a killed search resumes (state.ts). */
export interface SearchStateStore {
  load(): Promise<Trial[]>;
  /** Appends one finished trial atomically (a crash loses at most the trial in flight). */
  append(t: Trial): Promise<void>;
}

export interface SearchOptions {
  data: SearchData;
  budget: Budget;
  /** Objectives to minimize (default ["size", "latency"]). */
  objectives?: Objective[];
  strategy?: StrategyName;
  /** Trials to run, baselines and sensitivity probes excluded (default 40). */
  trials?: number;
  seed?: number;
  /** Trials evaluated at once, in Workers (default 1; at most the cores). */
  concurrency?: number;
  space?: SpaceSpec;
  signal?: AbortSignal;
  onTrial?: (t: Trial, done: number, total: number) => void;
  state?: SearchStateStore;
  /** Timed runs per latency measurement (default 20). */
  latencyRuns?: number;
}

export interface SearchResult {
  baseline: { float: Trial; int8: Trial };
  trials: Trial[];
  /** Non-dominated feasible trials under the objectives, sorted by the first objective. */
  pareto: Trial[];
  /**
   * The Pareto trial best on the first objective among those no worse than uniform int8 in
   * every objective (pareto.ts pickBest; the best on the first objective when none is), with
   * its artifact.
   */
  best: { model: Uint8Array; recipe: Recipe; report: CompressReport; trial: Trial } | null;
  /** Why the budget was or was not met: the binding layers, the closest trial, … */
  explanation: string[];
  sensitivity?: Sensitivity[];
  space: SearchSpace;
  budget: Budget;
  objectives: Objective[];
  /** The float model's value of the budget metric, and the threshold a trial had to meet. */
  reference: { metric: number; threshold: number };
}

/** Predicts a candidate's latency without building it (cost_model.ts). */
export interface CostModel {
  /** Predicted median batch-1 latency, ms, of the model compressed by `assignment`. */
  predict(assignment: Assignment): number;
}
