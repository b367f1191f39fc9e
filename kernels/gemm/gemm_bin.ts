// Binary GEMM (XNOR-Net): dot[m][n] = K − 2·popcount(A[m] ^ W[n]) on bit-packed operands
// (pack_bin.ts), then one of three outputs:
//   MODE_BIN_I32:  the integer dot;
//   MODE_BIN_F32:  y = clamp(alpha[n]·dot + bias[n], fmin, fmax);
//   MODE_BIN_BITS: the sign bits of y, packed along N as the next binary layer's A rows
//                  (ceil(N/128)*16 bytes per row; bit set when y < 0).
// Params: struct { f32 fmin, fmax; i32 _pad[6]; f32 alpha[Np]; f32 bias[Np]; } with
// Np = N rounded up to 8 (unused by MODE_BIN_I32; pass 0).
//
// gemm_bin_2x4_simd: 2 rows × 4 columns, 8 accumulators of per-byte counts from
//   i8x16.popcnt. Byte lanes hold at most 8 per word, so they are widened every 31 words.
// gemm_bin_1x4_scalar: the scalar build, i64.popcnt on 64-bit halves.
import { NR_BIN, wordsBin } from "../pack/pack_bin";
import { storeTail32 } from "./store";

export const MODE_BIN_I32: i32 = 0;
export const MODE_BIN_F32: i32 = 1;
export const MODE_BIN_BITS: i32 = 2;
const BIN_HEADER: usize = 32;
const MR: i32 = 2;
const BLOCK_WORDS: i32 = 31;

// Sums the 16 byte counts of each of a, b, c, d into lanes 0..3 of one i32x4.
// @ts-ignore: decorator
@inline function reduce4(a: v128, b: v128, c: v128, d: v128): v128 {
  a = i32x4.extadd_pairwise_i16x8_u(i16x8.extadd_pairwise_i8x16_u(a));
  b = i32x4.extadd_pairwise_i16x8_u(i16x8.extadd_pairwise_i8x16_u(b));
  c = i32x4.extadd_pairwise_i16x8_u(i16x8.extadd_pairwise_i8x16_u(c));
  d = i32x4.extadd_pairwise_i16x8_u(i16x8.extadd_pairwise_i8x16_u(d));
  const ab = i32x4.add(i32x4.shuffle(a, b, 0, 4, 1, 5), i32x4.shuffle(a, b, 2, 6, 3, 7));
  const cd = i32x4.add(i32x4.shuffle(c, d, 0, 4, 1, 5), i32x4.shuffle(c, d, 2, 6, 3, 7));
  return i32x4.add(i32x4.shuffle(ab, cd, 0, 1, 4, 5), i32x4.shuffle(ab, cd, 2, 3, 6, 7));
}

// Writes one row's four dots (columns n0..n0+nc-1) in the requested mode.
// @ts-ignore: decorator
@inline function storeRowBin(
  c: usize, dot: v128, nc: i32, n0: usize, mode: i32, pp: usize, np4: usize,
): void {
  if (mode == MODE_BIN_I32) {
    storeTail32(c + (n0 << 2), dot, dot, nc);
    return;
  }
  const y = f32x4.add(
    f32x4.mul(f32x4.convert_i32x4_s(dot), v128.load(pp + BIN_HEADER + (n0 << 2))),
    v128.load(pp + BIN_HEADER + np4 + (n0 << 2)),
  );
  if (mode == MODE_BIN_F32) {
    const v = f32x4.pmin(v128.load32_splat(pp, 4), f32x4.pmax(v128.load32_splat(pp), y));
    storeTail32(c + (n0 << 2), v, v, nc);
    return;
  }
  // Bits of columns n0..n0+3 form one nibble of byte n0/8 (n0 is a multiple of 4); lanes past
  // nc are masked off so padding bits stay 0.
  const bits = i32x4.bitmask(y) & ((1 << nc) - 1);
  if ((n0 & 3) == 0) {
    const p = c + (n0 >> 3);
    store<u8>(p, load<u8>(p) | <u8>(bits << <u8>(n0 & 4)));
  } else {
    // A group starting mid-nibble (grouped convolution): set bit by bit.
    for (let j = 0; j < nc; j++) {
      if (bits & (1 << j)) {
        const b = n0 + <usize>j;
        const p = c + (b >> 3);
        store<u8>(p, load<u8>(p) | <u8>(1 << <u8>(b & 7)));
      }
    }
  }
}

function gemm_bin_2x4_simd(
  mr: i32, nc: i32, kw: i32, k: i32, a: usize, lda: usize, w: usize,
  c: usize, ldc: usize, mode: i32, pp: usize, np4: usize, n0: usize,
): void {
  const a0 = a;
  const a1 = mr > 1 ? a + lda : a;
  let t0 = i32x4.splat(0);
  let t1 = i32x4.splat(0);
  let q = 0;
  while (q < kw) {
    const qe = min(kw, q + BLOCK_WORDS);
    let c00 = i8x16.splat(0), c01 = c00, c02 = c00, c03 = c00;
    let c10 = c00, c11 = c00, c12 = c00, c13 = c00;
    for (; q < qe; q++) {
      const off = <usize>q << 4;
      const x0 = v128.load(a0 + off);
      const x1 = v128.load(a1 + off);
      const wq = w + (<usize>q << 6);
      let wv = v128.load(wq);
      c00 = i8x16.add(c00, i8x16.popcnt(v128.xor(x0, wv)));
      c10 = i8x16.add(c10, i8x16.popcnt(v128.xor(x1, wv)));
      wv = v128.load(wq, 16);
      c01 = i8x16.add(c01, i8x16.popcnt(v128.xor(x0, wv)));
      c11 = i8x16.add(c11, i8x16.popcnt(v128.xor(x1, wv)));
      wv = v128.load(wq, 32);
      c02 = i8x16.add(c02, i8x16.popcnt(v128.xor(x0, wv)));
      c12 = i8x16.add(c12, i8x16.popcnt(v128.xor(x1, wv)));
      wv = v128.load(wq, 48);
      c03 = i8x16.add(c03, i8x16.popcnt(v128.xor(x0, wv)));
      c13 = i8x16.add(c13, i8x16.popcnt(v128.xor(x1, wv)));
    }
    t0 = i32x4.add(t0, reduce4(c00, c01, c02, c03));
    t1 = i32x4.add(t1, reduce4(c10, c11, c12, c13));
  }
  const vk = i32x4.splat(k);
  if (mr > 1) storeRowBin(c + ldc, i32x4.sub(vk, i32x4.shl(t1, 1)), nc, n0, mode, pp, np4);
  storeRowBin(c, i32x4.sub(vk, i32x4.shl(t0, 1)), nc, n0, mode, pp, np4);
}

function gemm_bin_1x4_scalar(
  nc: i32, kw: i32, k: i32, a: usize, w: usize, c: usize, mode: i32, pp: usize, np4: usize,
  n0: usize,
): void {
  let p0: i64 = 0, p1: i64 = 0, p2: i64 = 0, p3: i64 = 0;
  for (let q = 0; q < kw; q++) {
    const x0 = load<i64>(a + (<usize>q << 4));
    const x1 = load<i64>(a + (<usize>q << 4), 8);
    const wq = w + (<usize>q << 6);
    p0 += popcnt<i64>(x0 ^ load<i64>(wq)) + popcnt<i64>(x1 ^ load<i64>(wq, 8));
    p1 += popcnt<i64>(x0 ^ load<i64>(wq, 16)) + popcnt<i64>(x1 ^ load<i64>(wq, 24));
    p2 += popcnt<i64>(x0 ^ load<i64>(wq, 32)) + popcnt<i64>(x1 ^ load<i64>(wq, 40));
    p3 += popcnt<i64>(x0 ^ load<i64>(wq, 48)) + popcnt<i64>(x1 ^ load<i64>(wq, 56));
  }
  for (let j = 0; j < nc; j++) {
    const pj = j == 0 ? p0 : j == 1 ? p1 : j == 2 ? p2 : p3;
    const dot = k - 2 * <i32>pj;
    const n = n0 + <usize>j;
    if (mode == MODE_BIN_I32) {
      store<i32>(c + (n << 2), dot);
      continue;
    }
    const y = <f32>dot * load<f32>(pp + BIN_HEADER + (n << 2)) +
      load<f32>(pp + BIN_HEADER + np4 + (n << 2));
    if (mode == MODE_BIN_F32) {
      store<f32>(c + (n << 2), min(max(y, load<f32>(pp)), load<f32>(pp, 4)));
    } else if (y < 0) {
      const p = c + (n >> 3);
      store<u8>(p, load<u8>(p) | <u8>(1 << <u8>(n & 7)));
    }
  }
}

/**
 * a: M packed rows (KW*16 bytes each), w: packed weights, c: output rows. For MODE_BIN_BITS
 * the output row stride is ceil(N/128)*16 bytes; otherwise ldc elements of 4 bytes.
 */
export function gemmBin(
  m: i32, n: i32, k: i32, a: usize, w: usize, c: usize, ldc: i32, mode: i32, pp: usize,
): void {
  gemmBinWords(m, n, k, wordsBin(k), a, w, c, ldc, mode, pp, 0, n);
}

/**
 * The general driver: rows of `kw` words holding `k` real bits (a convolution's rows are
 * word-aligned per tap, so kw can exceed ceil(k/128)). These N output channels are chOff..
 * of chTotal: per-channel params are indexed from chOff, and c points at the start of the
 * output row (column 0, or bit 0 for MODE_BIN_BITS) with rows of chTotal outputs.
 */
export function gemmBinWords(
  m: i32, n: i32, k: i32, kw: i32, a: usize, w: usize, c: usize, ldc: i32, mode: i32,
  pp: usize, chOff: i32, chTotal: i32,
): void {
  const lda = <usize>kw << 4;
  const panelBytes = <usize>kw * NR_BIN * 16;
  const np4 = <usize>((chTotal + 7) & ~7) << 2;
  const ldcB = mode == MODE_BIN_BITS ? <usize>wordsBin(chTotal) << 4 : <usize>ldc << 2;
  // Bits are OR-ed in, so the packed output rows start from zero (padding bits included);
  // the first group clears them for all.
  if (mode == MODE_BIN_BITS && chOff == 0) memory.fill(c, 0, <usize>m * ldcB);
  for (let m0 = 0; m0 < m; m0 += MR) {
    const mr = min(MR, m - m0);
    const ar = a + <usize>m0 * lda;
    const cr = c + <usize>m0 * ldcB;
    for (let j = 0; j < n; j += NR_BIN) {
      const wp = w + <usize>(j / NR_BIN) * panelBytes;
      const nc = min(NR_BIN, n - j);
      if (ASC_FEATURE_SIMD) {
        gemm_bin_2x4_simd(
          mr, nc, kw, k, ar, lda, wp, cr, ldcB, mode, pp, np4, <usize>(j + chOff),
        );
      } else {
        for (let r = 0; r < mr; r++) {
          gemm_bin_1x4_scalar(
            nc, kw, k, ar + <usize>r * lda, wp, cr + <usize>r * ldcB, mode, pp, np4,
            <usize>(j + chOff),
          );
        }
      }
    }
  }
}
