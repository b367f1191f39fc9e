// Bit-packed binary tensors (XNOR-Net). A value's sign is one bit: 1 means −1 (x < 0),
// 0 means +1 (x ≥ 0, so sign(0) = +1 as in Larq). Bits run along K in 128-bit words:
//
//   row of K values -> u8 bits[KW*16], KW = ceil(K/128)
//   value k is bit (k & 7) of byte (k >> 3)      (LSB first; bytes little-endian in a word)
//   bits past K are 0 in both operands, so they add nothing to popcount(a ^ w)
//
// Then dot(a, w) over {−1, +1} = K − 2·popcount(a ^ w), counting only the real K.
//
// Packed activations (also the fused bit output of sqz_bin_gemm): M rows of KW*16 bytes.
// Packed weights, one block per panel of NR_BIN = 4 output columns:
//   struct panel_bin { u8 w[KW][4][16]; }   // word q of column n0+j, zero past N
export const NR_BIN: i32 = 4;

// @ts-ignore: decorator
@inline export function wordsBin(k: i32): i32 {
  return (k + 127) >> 7;
}

export function packedSizeBin(n: i32, k: i32): usize {
  return <usize>((n + NR_BIN - 1) / NR_BIN) * <usize>wordsBin(k) * NR_BIN * 16;
}

// Sign bits of f32 x at x_ptr + 4*(i*stride), i = 0..k-1, into a zeroed row of KW*16 bytes.
function packSignRow(x: usize, stride: usize, k: i32, out: usize): void {
  const bytes = wordsBin(k) << 4;
  memory.fill(out, 0, bytes);
  for (let i = 0; i < k; i++) {
    // Bit 31 of the f32 is its sign; -0.0 counts as +1 like 0.
    const v = load<f32>(x + <usize>i * stride * 4);
    if (v < 0) {
      const p = out + (<usize>i >> 3);
      store<u8>(p, load<u8>(p) | <u8>(1 << <u8>(i & 7)));
    }
  }
}

// 16 values -> 16 sign bits: f32x4.lt against zero (so -0.0 and NaN give +1, like x < 0)
// and i32x4.bitmask, four lanes at a time.
// @ts-ignore: decorator
@inline function signBits16(x: usize): i32 {
  const z = f32x4.splat(0);
  return i32x4.bitmask(f32x4.lt(v128.load(x), z)) |
    (i32x4.bitmask(f32x4.lt(v128.load(x, 16), z)) << 4) |
    (i32x4.bitmask(f32x4.lt(v128.load(x, 32), z)) << 8) |
    (i32x4.bitmask(f32x4.lt(v128.load(x, 48), z)) << 12);
}

/** Packs M rows of f32 A (row stride lda elements) into M rows of KW*16 bytes. */
export function packRowsBin(m: i32, k: i32, a: usize, lda: i32, out: usize): void {
  const rowBytes = <usize>wordsBin(k) << 4;
  for (let i = 0; i < m; i++) {
    const x = a + <usize>i * lda * 4;
    const o = out + <usize>i * rowBytes;
    if (ASC_FEATURE_SIMD) {
      const k16 = k & ~15;
      for (let j = 0; j < k16; j += 16) store<u16>(o + (<usize>j >> 3), <u16>signBits16(x + (<usize>j << 2)));
      // Tail values and the zero padding of the last word.
      memory.fill(o + (<usize>k16 >> 3), 0, rowBytes - (<usize>k16 >> 3));
      for (let j = k16; j < k; j++) {
        if (load<f32>(x + (<usize>j << 2)) < 0) {
          const p = o + (<usize>j >> 3);
          store<u8>(p, load<u8>(p) | <u8>(1 << <u8>(j & 7)));
        }
      }
    } else {
      packSignRow(x, 1, k, o);
    }
  }
}

/** Packs f32 weights B (element (k,n) at b + 4*(k*strideK + n*strideN)) by sign. */
export function packWeightsBin(
  n: i32, k: i32, b: usize, strideK: i32, strideN: i32, out: usize,
): void {
  packWeightsBinSeg(n, k, b, strideK, strideN, k, wordsBin(k) * 128, out);
}

/**
 * Sign-packs weights whose K runs in segments of segLen values, each segment taking segBits
 * bits (a multiple of 64 ≥ segLen) so that it starts on a 64-bit boundary: a convolution tap's
 * channels (segLen = C/groups, segBits = 64*ceil(segLen/64)). K must be a multiple of segLen;
 * a row holds ceil((K/segLen)*segBits/128) words, the tail of the last one zero.
 */
export function packWeightsBinSeg(
  n: i32, k: i32, b: usize, strideK: i32, strideN: i32, segLen: i32, segBits: i32, out: usize,
): void {
  const kw = ((k / segLen) * segBits + 127) >> 7;
  for (let n0 = 0; n0 < n; n0 += NR_BIN) {
    const panel = out + <usize>(n0 / NR_BIN) * kw * NR_BIN * 16;
    memory.fill(panel, 0, <usize>kw * NR_BIN * 16);
    for (let j = 0; j < NR_BIN; j++) {
      const col = n0 + j;
      if (col >= n) continue;
      for (let kk = 0; kk < k; kk++) {
        const v = load<f32>(b + ((<usize>kk * strideK + <usize>col * strideN) << 2));
        if (v < 0) {
          const pos = (kk / segLen) * segBits + kk % segLen;
          const q = pos >> 7, bit = pos & 127;
          const p = panel + ((<usize>q * NR_BIN + j) << 4) + (<usize>bit >> 3);
          store<u8>(p, load<u8>(p) | <u8>(1 << <u8>(bit & 7)));
        }
      }
    }
  }
}

export function packedSizeBinWords(n: i32, kw: i32): usize {
  return <usize>((n + NR_BIN - 1) / NR_BIN) * <usize>kw * NR_BIN * 16;
}
