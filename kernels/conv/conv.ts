// General 2-D convolution, NHWC, in f32, int8 and binary: im2col of a block of output pixels
// into a caller-provided workspace, then the GEMM drivers on that block (one GEMM per group).
// A block holds at most BLOCK_BYTES of im2col rows: the whole input is never expanded, yet a
// block has enough rows that the packed weights, streamed once per block, are amortised (with
// 96 KiB blocks a 7×7×512 layer re-read its 9.4 MB of weights every 12 rows and ran at 0.98×
// tfjs; with 1 MiB it runs one block and 1.22×). 1×1, stride-1,
// unpadded convolutions skip im2col: their A is the input itself (lda = C).
//
// Convolution parameters (`cp`, 16 × i32):
//   struct conv_params {
//     i32 n, h, w, c;         // input NHWC
//     i32 kh, kw, sh, sw;     // kernel, strides
//     i32 dh, dw;             // dilations
//     i32 pad_top, pad_left;  // resolved padding (bottom/right follow from out_h/out_w)
//     i32 out_h, out_w;       // output spatial size
//     i32 cout, groups;
//   }
// Weights are packed per group, one after the other, by the GEMM packers with
// K = kh*kw*(c/groups) ordered (ky, kx, channel) — the im2col row order — and N = cout/groups.
// Binary activations are bit-packed per pixel: for each group, ceil((c/groups)/128) words
// (pack_bin.ts). An im2col row takes 64·ceil(cg/64) bits per tap, so a 64-channel layer
// wastes no half-word, and is zero-padded to whole 128-bit words; binary weights are packed
// to match by packWeightsBinSeg with segBits = 64·ceil(cg/64). Padded taps
// read +1 in the binary convolution (zero bits, "one-padding" as Larq Compute Engine does),
// 0 in f32 and the input zero point in int8 (so they add nothing).
import { gemmF32 } from "../gemm/gemm_f32";
import { gemmI8 } from "../gemm/gemm_i8";
import { gemmBinWords, MODE_BIN_BITS } from "../gemm/gemm_bin";
import { outBytes } from "../gemm/requant";
import { convF32Direct, DIRECT_MAX_C } from "./conv_direct";
import { workspaceBytesI8Direct } from "./conv_direct_i8";
import { packedSizeF32 } from "../pack/pack_f32";
import { packedSizeI8 } from "../pack/pack_i8";
import { packedSizeBinWords, wordsBin } from "../pack/pack_bin";
import { spmmF32, workspaceSparseF32 } from "../gemm/gemm_sparse_f32";

const BLOCK_BYTES: i32 = 1024 * 1024;

// @ts-ignore: decorator
@inline function P(cp: usize, i: i32): i32 {
  return load<i32>(cp + (<usize>i << 2));
}

/**
 * Rows of im2col per block: a multiple of 60, so every tile height (4, 5 and 6 rows) divides
 * it and a pixel range that starts on a multiple of the tile height meets the same tiles.
 */
function blockRows(rowBytes: i32, m: i32): i32 {
  let mb = (BLOCK_BYTES / max(1, rowBytes)) / 60 * 60;
  if (mb < 60) mb = 60;
  return min(mb, m);
}

export const CONV_F32: i32 = 0;
export const CONV_I8: i32 = 1;
export const CONV_BIN: i32 = 2;
/** The direct int8 kernel's workspace (conv_direct_i8.ts): widened input rows. */
export const CONV_I8_DIRECT: i32 = 3;
/** f32 on sparse weights (convF32Sparse): im2col block + the SpMM row panel. */
export const CONV_F32_SPARSE: i32 = 4;

/** Workspace bytes a convolution of this kind (CONV_F32/I8/BIN/I8_DIRECT) needs; 0 for pointwise. */
export function convWorkspaceBytes(cp: usize, kind: i32): usize {
  if (kind == CONV_I8_DIRECT) return workspaceBytesI8Direct(cp);
  if (kind == CONV_F32_SPARSE) return workspaceBytesSparse(cp);
  if (isPointwise(cp) && (kind != CONV_BIN || P(cp, 15) == 1)) return 0;
  if (kind == CONV_F32 && directF32(cp)) return 0;
  const cg = P(cp, 3) / P(cp, 15);
  const taps = P(cp, 4) * P(cp, 5);
  const rowBytes = kind == CONV_F32 ? taps * cg * 4 : kind == CONV_I8 ? taps * cg : binRowWords(taps, cg) * 16;
  const m = P(cp, 0) * P(cp, 12) * P(cp, 13);
  return <usize>blockRows(rowBytes, m) * rowBytes;
}

// Layers the direct f32 kernel takes (conv_direct.ts): one group of at most DIRECT_MAX_C
// channels, not pointwise.
// @ts-ignore: decorator
@inline function directF32(cp: usize): bool {
  return P(cp, 15) == 1 && P(cp, 3) <= DIRECT_MAX_C && !isPointwise(cp);
}

// @ts-ignore: decorator
@inline function isPointwise(cp: usize): bool {
  return P(cp, 4) == 1 && P(cp, 5) == 1 && P(cp, 6) == 1 && P(cp, 7) == 1 &&
    P(cp, 10) == 0 && P(cp, 11) == 0 && P(cp, 12) == P(cp, 1) && P(cp, 13) == P(cp, 2);
}

// Copies n bytes; vector moves with a scalar tail (channel runs are short, a call to
// memory.copy would cost more than the copy for the 3-channel first layer).
// @ts-ignore: decorator
@inline function copyBytes(dst: usize, src: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 16 <= n; i += 16) v128.store(dst + i, v128.load(src + i));
  }
  for (; i + 4 <= n; i += 4) store<u32>(dst + i, load<u32>(src + i));
  for (; i < n; i++) store<u8>(dst + i, load<u8>(src + i));
}

// Fills n bytes with v (a padded tap); inline for the same reason as copyBytes.
// @ts-ignore: decorator
@inline function fillBytes(dst: usize, v: u8, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const vv = i8x16.splat(<i8>v);
    for (; i + 16 <= n; i += 16) v128.store(dst + i, vv);
  }
  const v4 = <u32>v * 0x01010101;
  for (; i + 4 <= n; i += 4) store<u32>(dst + i, v4);
  for (; i < n; i++) store<u8>(dst + i, v);
}

// Gathers `rows` output pixels starting at m0 into im2col rows of kh*kw*segBytes bytes: for
// each tap the segBytes bytes of the pixel at x + pixel*pixBytes + segOff, or `fill` bytes.
function im2col(
  cp: usize, x: usize, m0: i32, rows: i32, pixBytes: i32, segOff: i32, segBytes: i32,
  fill: u8, ws: usize, rowStride: i32 = 0,
): void {
  const h = P(cp, 1), w = P(cp, 2), kh = P(cp, 4), kw = P(cp, 5);
  const sh = P(cp, 6), sw = P(cp, 7), dh = P(cp, 8), dw = P(cp, 9);
  const pt = P(cp, 10), pl = P(cp, 11), oh = P(cp, 12), ow = P(cp, 13);
  const rowBytes = <usize>(rowStride ? rowStride : kh * kw * segBytes);
  for (let r = 0; r < rows; r++) {
    const p = m0 + r;
    const b = p / (oh * ow);
    const rem = p - b * oh * ow;
    const oy = rem / ow, ox = rem - (rem / ow) * ow;
    let dst = ws + <usize>r * rowBytes;
    const x0 = ox * sw - pl;
    // With one segment per pixel and no horizontal dilation, a kernel row's taps are
    // contiguous in NHWC memory: copy them in one run when the row is fully inside.
    const runBytes = kw * segBytes;
    const contiguous = dw == 1 && segBytes == pixBytes && x0 >= 0 && x0 + kw <= w;
    for (let ky = 0; ky < kh; ky++) {
      const y = oy * sh - pt + ky * dh;
      if (<u32>y >= <u32>h) {
        fillBytes(dst, fill, runBytes);
        dst += runBytes;
        continue;
      }
      const rowBase = x + <usize>((b * h + y) * w) * pixBytes + segOff;
      if (contiguous) {
        copyBytes(dst, rowBase + <usize>x0 * pixBytes, runBytes);
        dst += runBytes;
        continue;
      }
      for (let kx = 0; kx < kw; kx++) {
        const xx = x0 + kx * dw;
        if (<u32>xx < <u32>w) copyBytes(dst, rowBase + <usize>xx * pixBytes, segBytes);
        else fillBytes(dst, fill, segBytes);
        dst += segBytes;
      }
    }
  }
}

/** Output pixels [p0, p1) of the flattened n·out_h·out_w range; p1 < 0 means all. */
// @ts-ignore: decorator
@inline function pixelEnd(cp: usize, p1: i32): i32 {
  const m = P(cp, 0) * P(cp, 12) * P(cp, 13);
  return p1 < 0 || p1 > m ? m : p1;
}

// Threads split a convolution into pixel ranges (sqz_*_conv2d_range). A range that starts and
// ends on multiples of the f32 tile height (5 rows in the simd build, 6 or 4 elsewhere: 12
// covers both) puts every pixel in the same GEMM tile row as a whole-layer call does, so
// f32 results are bit-identical too.
export function convF32(
  cp: usize, x: usize, w: usize, y: usize, ws: usize, outMin: f32, outMax: f32,
  p0: i32 = 0, p1: i32 = -1,
): void {
  const c = P(cp, 3), groups = P(cp, 15), cout = P(cp, 14);
  const m = pixelEnd(cp, p1);
  if (directF32(cp)) {
    convF32Direct(cp, x, w, y, outMin, outMax, p0, m);
    return;
  }
  const cg = c / groups, og = cout / groups;
  const k = P(cp, 4) * P(cp, 5) * cg;
  const wg = packedSizeF32(og, k);
  if (isPointwise(cp)) {
    for (let g = 0; g < groups; g++) {
      gemmF32(
        m - p0, og, cg, x + ((<usize>p0 * c + g * cg) << 2), c, w + <usize>g * wg,
        y + ((<usize>p0 * cout + g * og) << 2), cout, outMin, outMax,
      );
    }
    return;
  }
  const mb = blockRows(k * 4, P(cp, 0) * P(cp, 12) * P(cp, 13));
  for (let m0 = p0; m0 < m; m0 += mb) {
    const rows = min(mb, m - m0);
    for (let g = 0; g < groups; g++) {
      im2col(cp, x, m0, rows, c * 4, g * cg * 4, cg * 4, 0, ws);
      gemmF32(
        rows, og, k, ws, k, w + <usize>g * wg, y + ((<usize>m0 * cout + g * og) << 2), cout,
        outMin, outMax,
      );
    }
  }
}

export function convI8(
  cp: usize, x: usize, aSigned: bool, aZero: i32, w: usize, y: usize, ws: usize,
  mode: i32, pp: usize, w7: bool = false, p0: i32 = 0, p1: i32 = -1,
): void {
  const c = P(cp, 3), groups = P(cp, 15), cout = P(cp, 14);
  const cg = c / groups, og = cout / groups;
  const k = P(cp, 4) * P(cp, 5) * cg;
  const m = pixelEnd(cp, p1);
  const wg = packedSizeI8(og, k, w7);
  const ob = outBytes(mode);
  if (isPointwise(cp)) {
    for (let g = 0; g < groups; g++) {
      gemmI8(
        m - p0, og, cg, x + <usize>p0 * c + g * cg, c, aSigned, aZero, w + <usize>g * wg,
        y + (<usize>p0 * cout + g * og) * ob, cout, mode, pp, g * og, cout, w7,
      );
    }
    return;
  }
  const mb = blockRows(k, P(cp, 0) * P(cp, 12) * P(cp, 13));
  for (let m0 = p0; m0 < m; m0 += mb) {
    const rows = min(mb, m - m0);
    for (let g = 0; g < groups; g++) {
      im2col(cp, x, m0, rows, c, g * cg, cg, <u8>aZero, ws);
      gemmI8(
        rows, og, k, ws, k, aSigned, aZero, w + <usize>g * wg,
        y + (<usize>m0 * cout + g * og) * ob, cout, mode, pp, g * og, cout, w7,
      );
    }
  }
}

// 128-bit words of one binary im2col row: taps of 64·ceil(cg/64) bits, rounded up.
// @ts-ignore: decorator
@inline function binRowWords(taps: i32, cg: i32): i32 {
  return (taps * (((cg + 63) >> 6) << 6) + 127) >> 7;
}

/** Binary convolution; x holds bit-packed pixels (groups × ceil(cg/128) words each). */
export function convBin(
  cp: usize, x: usize, w: usize, y: usize, ws: usize, mode: i32, pp: usize,
  p0: i32 = 0, p1: i32 = -1,
): void {
  const c = P(cp, 3), groups = P(cp, 15), cout = P(cp, 14);
  const cg = c / groups, og = cout / groups;
  const taps = P(cp, 4) * P(cp, 5);
  const segBytes = ((cg + 63) >> 6) << 3;
  const kw = binRowWords(taps, cg);
  const m = pixelEnd(cp, p1);
  const wg = packedSizeBinWords(og, kw);
  const pixBytes = groups * wordsBin(cg) * 16;
  const rowOut = mode == MODE_BIN_BITS ? <usize>wordsBin(cout) << 4 : <usize>cout << 2;
  // Pointwise with one group: a pixel's words are already an im2col row.
  if (groups == 1 && isPointwise(cp)) {
    gemmBinWords(
      m - p0, cout, c, kw, x + <usize>p0 * pixBytes, w, y + <usize>p0 * rowOut, cout, mode, pp,
      0, cout,
    );
    return;
  }
  const mb = blockRows(kw * 16, P(cp, 0) * P(cp, 12) * P(cp, 13));
  const tail = kw * 16 - taps * segBytes;
  for (let m0 = p0; m0 < m; m0 += mb) {
    const rows = min(mb, m - m0);
    for (let g = 0; g < groups; g++) {
      im2col(cp, x, m0, rows, pixBytes, g * wordsBin(cg) * 16, segBytes, 0, ws, kw * 16);
      // Zero the half-word that pads an odd number of 64-bit segments to a whole word.
      if (tail) {
        for (let r = 0; r < rows; r++) store<u64>(ws + <usize>(r * kw * 16 + taps * segBytes), 0);
      }
      gemmBinWords(
        rows, og, taps * cg, kw, ws, w + <usize>g * wg, y + <usize>m0 * rowOut, cout, mode, pp,
        g * og, cout,
      );
    }
  }
}

// ---- f32 on sparse weights (one group; kernels/pack/pack_sparse.ts, packed with K in the
// im2col order (ky, kx, channel), N = cout) ----

// im2col rows per block for the sparse kernel: a multiple of its 16-row tile, so a range that
// starts on a multiple of 16 meets the same tiles as the whole layer (bit-identical threads).
function blockRowsSparse(rowBytes: i32, m: i32): i32 {
  let mb = (BLOCK_BYTES / max(1, rowBytes)) & ~15;
  if (mb < 16) mb = 16;
  return min(mb, m);
}

function workspaceBytesSparse(cp: usize): usize {
  const k = P(cp, 4) * P(cp, 5) * P(cp, 3);
  const panel = workspaceSparseF32(k);
  if (isPointwise(cp)) return panel;
  const m = P(cp, 0) * P(cp, 12) * P(cp, 13);
  return <usize>blockRowsSparse(k * 4, m) * <usize>(k * 4) + panel;
}

/** One-group f32 convolution on sparse weights over output pixels [p0, p1). */
export function convF32Sparse(
  cp: usize, x: usize, w: usize, y: usize, ws: usize, outMin: f32, outMax: f32,
  p0: i32 = 0, p1: i32 = -1,
): void {
  const c = P(cp, 3), cout = P(cp, 14);
  const m = pixelEnd(cp, p1);
  if (p0 >= m) return;
  if (isPointwise(cp)) {
    spmmF32(
      m - p0, 0, cout, x + (<usize>p0 * c << 2), c, w, y + (<usize>p0 * cout << 2), cout, ws,
      outMin, outMax,
    );
    return;
  }
  const k = P(cp, 4) * P(cp, 5) * c;
  const mb = blockRowsSparse(k * 4, P(cp, 0) * P(cp, 12) * P(cp, 13));
  const panel = ws + <usize>mb * <usize>(k * 4);
  for (let m0 = p0; m0 < m; m0 += mb) {
    const rows = min(mb, m - m0);
    im2col(cp, x, m0, rows, c * 4, 0, c * 4, 0, ws);
    spmmF32(
      rows, 0, cout, ws, k, w, y + (<usize>m0 * cout << 2), cout, panel, outMin, outMax,
    );
  }
}
