// The low-level entry point of sqz: the Wasm kernel module and the packed GEMM / convolution /
// pooling kernels it runs, with the scalar references every kernel is tested against. For
// custom runtimes, kernel tests and benchmarks; models are run through Session (src/mod.ts),
// which uses these underneath.
export {
  availableBuilds,
  bestBuild,
  detectFeatures,
  type KernelBuild,
  type WasmFeatures,
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
