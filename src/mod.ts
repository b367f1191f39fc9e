// The public API of sqz: models in, models and reports out. The CLI and the server use only
// what is exported here (and `sqz demo` the kernel-level entry point, src/kernels.ts, which
// holds the Wasm kernel module, the packed kernels and their scalar references).
export * from "./errors.ts";
/** Kernel builds: which ones this runtime can run, and the fastest (Session's `build`). */
export { availableBuilds, bestBuild, type KernelBuild } from "./kernels/features.ts";
/** Where a page serves the kernel .wasm files from, when not beside sqz.js. */
export { setKernelBaseUrl } from "./kernels/module.ts";
export { importModel, type ImportOptions } from "./onnx/import.ts";
export { convertOpset, type ConvertResult, MAX_OPSET } from "./onnx/convert.ts";
export { inspectModel, type ModelReport } from "./inspect.ts";
export type { Tensor, TensorType } from "./graph/tensor.ts";
export {
  type MemoryReport,
  type NodeProfile,
  type RunOptions,
  Session,
  type SessionInfo,
  type SessionOptions,
  setDefaultThreads,
  SUPPORTED_OPS,
  type ValueMetadata,
} from "./session.ts";
/** Where a session's nodes run (session.placement) and whether WebGPU exists here. */
export type { BackendName, Placement } from "./runtime/partition.ts";
export { gpuAvailable } from "./runtime/webgpu/device.ts";
/** NumPy .npy files ↔ tensors. */
export { encodeNpy, parseNpy } from "./npy.ts";
/** ONNX export of the IR (what compress() writes its artifacts with). */
export {
  type ExportedModel,
  exportModel,
  exportModelFiles,
  type ExportOptions,
  ExternalDataRequiredError,
} from "./onnx/export.ts";
/** A model's size on disk: the .onnx plus its external data files, each counted once. */
export {
  type ExternalFileSize,
  gzipModelSize,
  type ModelSize,
  modelSize,
  type ModelSizeOptions,
} from "./onnx/model_size.ts";
/** Compression: recipes, passes and the artifact. */
export {
  compress,
  type CompressOptions,
  type CompressReport,
  type CompressResult,
} from "./compress/compress.ts";
export { type Method, parseRecipe, type Recipe } from "./compress/recipe.ts";
export type { LayerReport } from "./compress/types.ts";
/** Evaluation: accuracy, agreement with the float model, per-layer SQNR, size, latency. */
export { type Dataset, type EvalReport, evaluate, type EvaluateOptions } from "./eval/evaluate.ts";
export { reportHtml } from "./eval/report_html.ts";
/** Calibration feeds from an N×… array of samples. */
export { batchFeeds } from "./compress/calibrate.ts";
/** Automated compression search: a budget in, the Pareto front of recipes out. */
export { search } from "./search/search.ts";
export { OBJECTIVES, STRATEGIES } from "./search/types.ts";
export { FileStateStore, MemoryStateStore } from "./search/state.ts";
export { searchReportHtml } from "./search/report_html.ts";
export type {
  Assignment,
  Budget,
  Choice,
  CostModel,
  Objective,
  SearchData,
  SearchOptions,
  SearchResult,
  SearchSpace,
  SearchStateStore,
  Sensitivity,
  SpaceSpec,
  StrategyName,
  Trial,
  TrialMetrics,
} from "./search/types.ts";
/** The typed-array class of each tensor type. */
export { arrayCtor } from "./ops/tensor_util.ts";
/** The seeded PRNG (mulberry32) sqz uses for splits, folds and synthetic data. */
export { seededRandom } from "./eval/metrics.ts";
/** Fine-tuning: what compress() takes and reports when a recipe trains. */
export type {
  CheckpointStore,
  EpochProgress,
  FinetuneConfig,
  Labels,
  TrainBatch,
  TrainData,
} from "./train/types.ts";
export type { TrainingReport } from "./train/finetune.ts";
/** The training engine itself: autodiff over the IR, for custom loops. */
export { defaultTrainable, type ProgramOptions, TrainProgram } from "./train/program.ts";
export { clipGradNorm, Optimizer, type OptimizerConfig, type Param } from "./train/optim.ts";
