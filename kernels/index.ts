// The Wasm ABI of sqz kernels. Every export works on caller-owned buffers addressed by byte
// offsets into this module's exported `memory`; nothing allocates. The caller owns all memory
// from sqz_heap_base() up and grows it with memory.grow. Integers are i32 unless noted,
// pointers are byte offsets, leading dimensions are in elements. The only import is
// env.abort (AssemblyScript's), which these kernels never call.
//
// Packed-weight formats are documented in kernels/pack/*.ts where they are defined.
// Buffers that kernels read (A, packed B) must stay readable for 16 bytes past their end:
// vector loads over a K tail may read (and ignore) up to 15 bytes beyond the last element.
import { isa } from "./isa";
import { packedSizeF32, packF32 } from "./pack/pack_f32";
import { gemmF32 } from "./gemm/gemm_f32";
import { packedSizeI8, packI8 } from "./pack/pack_i8";
import { gemmI8 } from "./gemm/gemm_i8";
import {
  packedSizeBin, packedSizeBinWords, packRowsBin, packWeightsBin, packWeightsBinSeg, wordsBin,
} from "./pack/pack_bin";
import { gemmBin } from "./gemm/gemm_bin";
import { convBin, convF32, convI8, convWorkspaceBytes } from "./conv/conv";

export const SQZ_ABI_VERSION: i32 = 1;

export function sqz_abi_version(): i32 {
  return SQZ_ABI_VERSION;
}

/** 0 = scalar, 1 = simd128, 2 = simd128 + relaxed-simd. */
export function sqz_isa(): i32 {
  return isa();
}

/** First byte the caller may use. */
export function sqz_heap_base(): usize {
  return __heap_base;
}

// ---- f32 GEMM ----------------------------------------------------------------------------

export function sqz_f32_gemm_packed_size(n: i32, k: i32): usize {
  return packedSizeF32(n, k);
}

/** Packs B (element (k,n) at b + 4*(k*strideK + n*strideN)) and optional bias (0 = none). */
export function sqz_f32_gemm_pack(
  n: i32, k: i32, b: usize, strideK: i32, strideN: i32, bias: usize, out: usize,
): void {
  packF32(n, k, b, strideK, strideN, bias, out);
}

/** C = clamp(A·B + bias, outMin, outMax); ReLU is (0, +inf), ReLU6 (0, 6), none (-inf, +inf). */
export function sqz_f32_gemm(
  m: i32, n: i32, k: i32, a: usize, lda: i32, packed: usize, c: usize, ldc: i32,
  outMin: f32, outMax: f32,
): void {
  gemmF32(m, n, k, a, lda, packed, c, ldc, outMin, outMax);
}

// ---- int8 GEMM ---------------------------------------------------------------------------

export function sqz_i8_gemm_packed_size(n: i32, k: i32): usize {
  return packedSizeI8(n, k);
}

/** Packs i8 B (element (k,n) at b + k*strideK + n*strideN, values in [-127,127]), i32 bias. */
export function sqz_i8_gemm_pack(
  n: i32, k: i32, b: usize, strideK: i32, strideN: i32, bias: usize, out: usize,
): void {
  packI8(n, k, b, strideK, strideN, bias, out);
}

/**
 * int8 GEMM. A is u8 (aSigned = 0) or i8 (1) with zero point aZero; `mode` and `params`
 * select the output (kernels/gemm/requant.ts documents both); ldc counts output elements.
 */
export function sqz_i8_gemm(
  m: i32, n: i32, k: i32, a: usize, lda: i32, aSigned: i32, aZero: i32, packed: usize,
  c: usize, ldc: i32, mode: i32, params: usize,
): void {
  gemmI8(m, n, k, a, lda, aSigned != 0, aZero, packed, c, ldc, mode, params);
}

// ---- binary GEMM -------------------------------------------------------------------------

export function sqz_bin_gemm_packed_size(n: i32, k: i32): usize {
  return packedSizeBin(n, k);
}

/** Bytes of one bit-packed row of K values: ceil(K/128)*16. */
export function sqz_bin_row_bytes(k: i32): usize {
  return <usize>wordsBin(k) << 4;
}

/** Packs the signs of f32 B (element (k,n) at b + 4*(k*strideK + n*strideN)). */
export function sqz_bin_pack_weights(
  n: i32, k: i32, b: usize, strideK: i32, strideN: i32, out: usize,
): void {
  packWeightsBin(n, k, b, strideK, strideN, out);
}

/** Packs the signs of M rows of f32 A (row stride lda elements). */
export function sqz_bin_pack_rows(m: i32, k: i32, a: usize, lda: i32, out: usize): void {
  packRowsBin(m, k, a, lda, out);
}

/** Binary GEMM; kernels/gemm/gemm_bin.ts documents modes and params. */
export function sqz_bin_gemm(
  m: i32, n: i32, k: i32, a: usize, packed: usize, c: usize, ldc: i32, mode: i32, params: usize,
): void {
  gemmBin(m, n, k, a, packed, c, ldc, mode, params);
}

/** Packs weights whose K runs in 64-bit-aligned segments (a convolution's taps); pack_bin.ts. */
export function sqz_bin_pack_weights_seg(
  n: i32, k: i32, b: usize, strideK: i32, strideN: i32, segLen: i32, segBits: i32, out: usize,
): void {
  packWeightsBinSeg(n, k, b, strideK, strideN, segLen, segBits, out);
}

export function sqz_bin_packed_size_words(n: i32, kw: i32): usize {
  return packedSizeBinWords(n, kw);
}

// ---- convolution (NHWC; kernels/conv/conv.ts documents conv_params) ----------------------

/** Workspace bytes for sqz_*_conv2d; kind 0 = f32, 1 = int8, 2 = binary. */
export function sqz_conv_workspace_size(cp: usize, kind: i32): usize {
  return convWorkspaceBytes(cp, kind);
}

/** f32 convolution with bias and clamp; weights packed per group by sqz_f32_gemm_pack. */
export function sqz_f32_conv2d(
  cp: usize, x: usize, packed: usize, y: usize, ws: usize, outMin: f32, outMax: f32,
): void {
  convF32(cp, x, packed, y, ws, outMin, outMax);
}

/** int8 convolution (QLinearConv / ConvInteger); output stage as sqz_i8_gemm. */
export function sqz_i8_conv2d(
  cp: usize, x: usize, aSigned: i32, aZero: i32, packed: usize, y: usize, ws: usize,
  mode: i32, params: usize,
): void {
  convI8(cp, x, aSigned != 0, aZero, packed, y, ws, mode, params);
}

/** Binary convolution on bit-packed pixels; outputs as sqz_bin_gemm. */
export function sqz_bin_conv2d(
  cp: usize, x: usize, packed: usize, y: usize, ws: usize, mode: i32, params: usize,
): void {
  convBin(cp, x, packed, y, ws, mode, params);
}

// ---- pooling and depthwise convolution (documented in their own ABI files) ---------------
export * from "./abi_pool";
export * from "./abi_dwconv";
