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
import { convBin, convF32, convF32Sparse, convI8, convWorkspaceBytes } from "./conv/conv";
import { convI8Direct, packedSizeI8Direct, packI8Direct } from "./conv/conv_direct_i8";
import {
  col2imF32, im2colF32, im2rowNhwcF32, row2imNhwcF32, transposeF32,
} from "./conv/im2col";
import { binaryF32, clampF32, geluF32, layerNormF32, softmaxF32 } from "./nn/rowwise_f32";
import { dequantizeU8, quantizeU8, rangeF32 } from "./nn/quantize_u8";
import { packedSizeQ4, packQ4 } from "./pack/pack_q4";
import { gemmQ4, q8RowBytes, quantizeRowsQ8 } from "./gemm/gemm_q4";
import { nnzSparseF32, packedSizeSparseF32, packSparseF32 } from "./pack/pack_sparse";
import { spmmF32, workspaceSparseF32 } from "./gemm/gemm_sparse_f32";

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

// ---- int8 GEMM on 7-bit weights ----------------------------------------------------------
// The same GEMM when every weight lies in [-64, 63] (pack_i8.ts "i7"): the relaxed build then
// spends one dot per 16 multiply-adds instead of two. Results equal sqz_i8_gemm's bit for bit;
// packing a weight outside [-64, 63] this way gives wrong results (the wrapper checks).

export function sqz_i7_gemm_packed_size(n: i32, k: i32): usize {
  return packedSizeI8(n, k, true);
}

export function sqz_i7_gemm_pack(
  n: i32, k: i32, b: usize, strideK: i32, strideN: i32, bias: usize, out: usize,
): void {
  packI8(n, k, b, strideK, strideN, bias, out, true);
}

export function sqz_i7_gemm(
  m: i32, n: i32, k: i32, a: usize, lda: i32, aSigned: i32, aZero: i32, packed: usize,
  c: usize, ldc: i32, mode: i32, params: usize,
): void {
  gemmI8(m, n, k, a, lda, aSigned != 0, aZero, packed, c, ldc, mode, params, 0, 0, true);
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

/** Workspace bytes for sqz_*_conv2d; kind 0 = f32, 1 = int8, 2 = binary, 3 = int8 direct, 4 = f32 sparse. */
export function sqz_conv_workspace_size(cp: usize, kind: i32): usize {
  return convWorkspaceBytes(cp, kind);
}

/**
 * f32 convolution with bias and clamp; weights packed per group by sqz_f32_gemm_pack. One group
 * of ≤ 4 channels (not pointwise) runs the direct kernel (conv/conv_direct.ts), no workspace.
 */
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

/** sqz_i8_conv2d on weights packed per group by sqz_i7_gemm_pack. */
export function sqz_i7_conv2d(
  cp: usize, x: usize, aSigned: i32, aZero: i32, packed: usize, y: usize, ws: usize,
  mode: i32, params: usize,
): void {
  convI8(cp, x, aSigned != 0, aZero, packed, y, ws, mode, params, true);
}

/** Binary convolution on bit-packed pixels; outputs as sqz_bin_gemm. */
export function sqz_bin_conv2d(
  cp: usize, x: usize, packed: usize, y: usize, ws: usize, mode: i32, params: usize,
): void {
  convBin(cp, x, packed, y, ws, mode, params);
}

/** Bytes of int8 weights packed for sqz_i8_conv2d_direct (conv/conv_direct_i8.ts). */
export function sqz_i8_conv_direct_packed_size(cout: i32, c: i32, kh: i32, kw: i32): usize {
  return packedSizeI8Direct(cout, c, kh, kw);
}

/** Packs i8 weights [cout][c][kh][kw] (OIHW, in [-127, 127]) and i32 bias (or 0). */
export function sqz_i8_conv_direct_pack(
  cout: i32, c: i32, kh: i32, kw: i32, w: usize, bias: usize, out: usize,
): void {
  packI8Direct(cout, c, kh, kw, w, bias, out);
}

/**
 * sqz_i8_conv2d for one group at dilation 1 on the direct kernel (a first layer of 1–4
 * channels): weights from sqz_i8_conv_direct_pack, workspace sqz_conv_workspace_size(cp, 3).
 */
export function sqz_i8_conv2d_direct(
  cp: usize, x: usize, aSigned: i32, aZero: i32, packed: usize, y: usize, ws: usize,
  mode: i32, params: usize,
): void {
  convI8Direct(cp, x, aSigned != 0, aZero, packed, y, ws, mode, params, 0, -1);
}

// The same convolutions over output pixels [p0, p1) of the flattened n·out_h·out_w
// range, so threads can share one layer (each with its own workspace). f32 ranges on
// multiples of the build's tile height (12 pixels covers the scalar and relaxed builds, 60
// the simd build) give results bit-identical to the whole-layer call, and so does any range
// of a layer on the direct kernel (≤ 4 input channels, conv/conv_direct.ts); integer and
// binary results are exact for any range.

export function sqz_f32_conv2d_range(
  cp: usize, x: usize, packed: usize, y: usize, ws: usize, outMin: f32, outMax: f32,
  p0: i32, p1: i32,
): void {
  convF32(cp, x, packed, y, ws, outMin, outMax, p0, p1);
}

export function sqz_i8_conv2d_range(
  cp: usize, x: usize, aSigned: i32, aZero: i32, packed: usize, y: usize, ws: usize,
  mode: i32, params: usize, p0: i32, p1: i32,
): void {
  convI8(cp, x, aSigned != 0, aZero, packed, y, ws, mode, params, false, p0, p1);
}

export function sqz_i7_conv2d_range(
  cp: usize, x: usize, aSigned: i32, aZero: i32, packed: usize, y: usize, ws: usize,
  mode: i32, params: usize, p0: i32, p1: i32,
): void {
  convI8(cp, x, aSigned != 0, aZero, packed, y, ws, mode, params, true, p0, p1);
}

export function sqz_i8_conv2d_direct_range(
  cp: usize, x: usize, aSigned: i32, aZero: i32, packed: usize, y: usize, ws: usize,
  mode: i32, params: usize, p0: i32, p1: i32,
): void {
  convI8Direct(cp, x, aSigned != 0, aZero, packed, y, ws, mode, params, p0, p1);
}

export function sqz_bin_conv2d_range(
  cp: usize, x: usize, packed: usize, y: usize, ws: usize, mode: i32, params: usize,
  p0: i32, p1: i32,
): void {
  convBin(cp, x, packed, y, ws, mode, params, p0, p1);
}

// ---- training data movement (NCHW; kernels/conv/im2col.ts) ------------------------------
// One image's x[c][h][w] and the matrix col[c·kh·kw][oh·ow] with row stride ldcol ≥ oh·ow
// (image n of a batch at column offset n·oh·ow of a [K, N·oh·ow] matrix). Row r =
// (ci·kh + ky)·kw + kx, column p = oy·ow + ox, tap (iy, ix) = (oy·sh − pt + ky·dh,
// ox·sw − pl + kx·dw); bottom/right padding follows from oh/ow. x, col, src, dst are byte
// offsets of f32 buffers; ldcol, ldSrc, ldDst count elements. Buffers must not overlap. These
// kernels read and write nothing outside the elements they address (no slack needed), and
// give the same bits in every build (src/kernels/reference_im2col.ts is their reference).

/** col[r·ldcol + p] = x[(ci·h + iy)·w + ix], or padValue where the tap is outside the image. */
export function sqz_f32_im2col(
  c: i32, h: i32, w: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32,
  pt: i32, pl: i32, oh: i32, ow: i32, x: usize, col: usize, ldcol: i32, padValue: f32,
): void {
  im2colF32(c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, x, col, ldcol, padValue);
}

/**
 * The adjoint, accumulating into x: x[(ci·h + iy)·w + ix] += col[r·ldcol + p] for every
 * in-image tap, r ascending (the reference's rounding order).
 */
export function sqz_f32_col2im(
  c: i32, h: i32, w: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32,
  pt: i32, pl: i32, oh: i32, ow: i32, col: usize, ldcol: i32, x: usize,
): void {
  col2imF32(c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, col, ldcol, x);
}

/** dst[j·ldDst + i] = src[i·ldSrc + j] for i < rows, j < cols (not in place). */
export function sqz_f32_transpose(
  rows: i32, cols: i32, src: usize, ldSrc: i32, dst: usize, ldDst: i32,
): void {
  transposeF32(rows, cols, src, ldSrc, dst, ldDst);
}

// The same patches of a channels-last image, patch-major (the GEMM A operand of NHWC
// training): x holds h·w pixels of ldx ≥ c floats (a group reads channels [0, c) of each
// pixel: offset x by the group's first channel); rows is [oh·ow][kh·kw·c] with row stride
// ldrow ≥ kh·kw·c, column r = (ky·kw + kx)·c + ci (an OHWI weight's order). Geometry and
// guarantees as above.

/** rows[p·ldrow + r] = x[(iy·w + ix)·ldx + ci], or padValue where the tap is outside. */
export function sqz_f32_im2row_nhwc(
  c: i32, h: i32, w: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32,
  pt: i32, pl: i32, oh: i32, ow: i32, x: usize, ldx: i32, rows: usize, ldrow: i32,
  padValue: f32,
): void {
  im2rowNhwcF32(c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, x, ldx, rows, ldrow, padValue);
}

/**
 * The adjoint, accumulating into x: x[(iy·w + ix)·ldx + ci] += rows[p·ldrow + r] for every
 * in-image tap, p ascending (the reference's rounding order).
 */
export function sqz_f32_row2im_nhwc(
  c: i32, h: i32, w: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32,
  pt: i32, pl: i32, oh: i32, ow: i32, rows: usize, ldrow: i32, x: usize, ldx: i32,
): void {
  row2imNhwcF32(c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, rows, ldrow, x, ldx);
}

// ---- pooling and depthwise convolution (documented in their own ABI files) ---------------
export * from "./abi_pool";
export * from "./abi_dwconv";

// ---- transformer row-wise ops (kernels/nn/rowwise_f32.ts) ---------------------------------
// rows × n floats, row stride n, y may equal x. exp/erf are the polynomials documented in
// rowwise_f32.ts (the same in every build); src/kernels/reference_nn.ts is the reference.

/** LayerNormalization over the last axis: y = (x − mean)/√(var + eps)·gamma + beta (beta 0: none). */
export function sqz_f32_layernorm(
  rows: i32, n: i32, x: usize, gamma: usize, beta: usize, eps: f32, y: usize,
): void {
  layerNormF32(rows, n, x, gamma, beta, eps, y);
}

/** y = softmax(scale·x + mask) per row; mask 0 for none, row r's mask at mask + 4·r·ldmask. */
export function sqz_f32_softmax(
  rows: i32, n: i32, x: usize, scale: f32, mask: usize, ldmask: i32, y: usize,
): void {
  softmaxF32(rows, n, x, scale, mask, ldmask, y);
}

/** y = x·Φ(x), Gelu in its erf form, for count floats. */
export function sqz_f32_gelu(count: i32, x: usize, y: usize): void {
  geluF32(count, x, y);
}

/**
 * y[i] = a[i] ∘ b[i mod bn] for i < n (bn divides n; bn = n same shape, 1 a scalar); op 0 add,
 * 1 sub, 2 mul, 3 div. y may be a.
 */
export function sqz_f32_binary(op: i32, n: i32, a: usize, b: usize, bn: i32, y: usize): void {
  binaryF32(op, n, a, b, bn, y);
}

// ---- DynamicQuantizeLinear (kernels/nn/quantize_u8.ts; exact in every build) --------------

/** out[0..1] = (min(0, min x), max(0, max x)) as f32 over n floats, NaNs skipped. */
export function sqz_f32_range(n: i32, x: usize, out: usize): void {
  rangeF32(n, x, out);
}

/** y[i] = saturate_u8(round_half_even(x[i] / scale) + zp) (f32 division; NaN → 0). */
export function sqz_f32_quantize_u8(n: i32, x: usize, scale: f32, zp: i32, y: usize): void {
  quantizeU8(n, x, scale, zp, y);
}

/** y[i] = x[i] < lo ? lo : x[i] > hi ? hi : x[i] (Relu, Clip; NaN and −0 pass through). */
export function sqz_f32_clamp(n: i32, x: usize, lo: f32, hi: f32, y: usize): void {
  clampF32(n, x, lo, hi, y);
}

/** y[i] = f32(x[i] − zp)·scale for n uint8 values (DequantizeLinear per tensor). */
export function sqz_u8_dequantize(n: i32, x: usize, scale: f32, zp: i32, y: usize): void {
  dequantizeU8(n, x, scale, zp, y);
}

// ---- int4 weights (Q4 × Q8) ---------------------------------------------------------------
// Weight-only int4 kept packed at run time: kernels/pack/pack_q4.ts (format) and
// kernels/gemm/gemm_q4.ts (activation blocks and arithmetic).

export function sqz_q4_packed_size(n: i32, k: i32): usize {
  return packedSizeQ4(n, k);
}

/** Packs codes u8 [N][K], f16 scales u16 [N][ceil(K/32)], zero points u8 (0 = all 8), bias. */
export function sqz_q4_pack(
  n: i32, k: i32, codes: usize, scales: usize, zps: usize, bias: usize, out: usize,
): void {
  packQ4(n, k, codes, scales, zps, bias, out);
}

/** Bytes of one row of int8 activation blocks for K. */
export function sqz_q8_row_bytes(k: i32): usize {
  return q8RowBytes(k);
}

/** Quantizes M f32 rows (stride lda elements) to int8 blocks of 32 with their scales. */
export function sqz_q8_quantize_rows(m: i32, k: i32, a: usize, lda: i32, out: usize): void {
  quantizeRowsQ8(m, k, a, lda, out);
}

/** C = clamp(x·W + bias, outMin, outMax) on q8 rows and packed Q4 weights. */
export function sqz_q4_gemm(
  m: i32, n: i32, k: i32, x: usize, packed: usize, c: usize, ldc: i32, outMin: f32,
  outMax: f32,
): void {
  gemmQ4(m, n, k, x, packed, c, ldc, outMin, outMax);
}

// ---- sparse f32 GEMM (pruned weights kept sparse) -----------------------------------------
// Unstructured-sparse weights packed by output column (kernels/pack/pack_sparse.ts: bias,
// column pointers, f32 values, u16/u32 k indices) and the SpMM kernels of
// kernels/gemm/gemm_sparse_f32.ts. Strides of B as in sqz_f32_gemm_pack.

/** Nonzeros of B (element (k,n) at b + 4*(k*strideK + n*strideN)); −0 counts as zero. */
export function sqz_f32_spmm_nnz(n: i32, k: i32, b: usize, strideK: i32, strideN: i32): i32 {
  return nnzSparseF32(n, k, b, strideK, strideN);
}

/** Bytes of the packed sparse weights for nnz nonzeros. */
export function sqz_f32_spmm_packed_size(n: i32, k: i32, nnz: i32): usize {
  return packedSizeSparseF32(n, k, nnz);
}

/** Packs B's nonzeros by column, and optional bias (0 = none). */
export function sqz_f32_spmm_pack(
  n: i32, k: i32, b: usize, strideK: i32, strideN: i32, bias: usize, out: usize,
): void {
  packSparseF32(n, k, b, strideK, strideN, bias, out);
}

/** Workspace bytes sqz_f32_spmm needs per call (per thread) for this K. */
export function sqz_f32_spmm_workspace_size(k: i32): usize {
  return workspaceSparseF32(k);
}

/**
 * C[0..m)[n0..n1) = clamp(A·B + bias, outMin, outMax) on packed sparse B (K from its header);
 * c addresses column 0 of row 0, so threads can share a layer by column ranges. lda, ldc in
 * elements; ws is the caller's workspace, not shared between concurrent calls.
 */
export function sqz_f32_spmm(
  m: i32, n0: i32, n1: i32, a: usize, lda: i32, packed: usize, c: usize, ldc: i32, ws: usize,
  outMin: f32, outMax: f32,
): void {
  spmmF32(m, n0, n1, a, lda, packed, c, ldc, ws, outMin, outMax);
}

/**
 * f32 convolution of one group on weights packed by sqz_f32_spmm_pack (K = kh·kw·c in the
 * (ky, kx, channel) order, N = cout), over output pixels [p0, p1) (p1 < 0: all); workspace
 * sqz_conv_workspace_size(cp, 4). Ranges on multiples of 16 pixels give the whole layer's bits.
 */
export function sqz_f32_conv2d_sparse_range(
  cp: usize, x: usize, packed: usize, y: usize, ws: usize, outMin: f32, outMax: f32,
  p0: i32, p1: i32,
): void {
  convF32Sparse(cp, x, packed, y, ws, outMin, outMax, p0, p1);
}
