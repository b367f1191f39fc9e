// The public API of sqz. The CLI and the server use only what is exported here.
export * from "./errors.ts";
export {
  availableBuilds,
  bestBuild,
  detectFeatures,
  type KernelBuild,
} from "./kernels/features.ts";
export { KernelModule } from "./kernels/module.ts";
export { PackedGemmF32 } from "./kernels/gemm_f32.ts";
export { type I8Output, PackedGemmI8 } from "./kernels/gemm_i8.ts";
export { type BinOutput, PackedGemmBin } from "./kernels/gemm_bin.ts";
export {
  type ConvAttrs,
  type Dims4,
  PackedConvBin,
  PackedConvF32,
  PackedConvI8,
} from "./kernels/conv.ts";
export { PackedDepthwiseF32, PackedDepthwiseI8 } from "./kernels/dwconv.ts";
export * as pool from "./kernels/pool.ts";
export { windowGeometry } from "./kernels/conv_geometry.ts";
/** The scalar reference implementations every kernel is tested against. */
export * as reference from "./kernels/reference.ts";
export * as referenceConv from "./kernels/reference_conv.ts";
export { importModel, type ImportOptions } from "./onnx/import.ts";
export { inspectModel, type ModelReport } from "./inspect.ts";
export type { Tensor, TensorType } from "./graph/tensor.ts";
export {
  type MemoryReport,
  type NodeProfile,
  type RunOptions,
  Session,
  type SessionOptions,
  SUPPORTED_OPS,
  type ValueMetadata,
} from "./session.ts";
/** NumPy .npy files ↔ tensors. */
export { encodeNpy, parseNpy } from "./npy.ts";
/** ONNX export of the IR (what compress() writes its artifacts with). */
export { exportModel } from "./onnx/export.ts";
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
