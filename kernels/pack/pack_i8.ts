// Packed int8 GEMM weights. Weights are i8, symmetric per output channel, in [-127, 127]
// (zero point 0; -128 is rejected by the TypeScript wrapper, see the relaxed layout below).
// One block per panel of NR_I8 = 8 output columns; K is padded with zero weights to KP.
//
// Every panel starts with the same 64-byte header:
//   i32 bias[8];      // per-column i32 bias (scale = a_scale * w_scale), 0 past N
//   i32 colsum[8];    // Σ_k w[k][n]: the kernel subtracts a_zero * colsum (zero-point term)
//
// simd128 and scalar builds, "c2" (KP = K rounded up to 8), as i32x4.dot_i16x8_s wants it:
//   i8 w[KP/2][8][2]; // w[p][j][t] = B[2p+t][n0+j]
//
// relaxed build, "c4x2" (KP = K rounded up to 4). relaxed_dot_i8x16_i7x16_add_s multiplies an
// i8 operand by a 7-bit one; lanes of the second operand with the top bit set are
// implementation-defined (x86 reads them unsigned, Arm signed). So every weight is stored as
// two halves in [0, 127] with u1 + u2 = w + 127, each a valid i7 on every engine:
//   struct { u8 u1[8][4]; u8 u2[8][4]; } q[KP/4];  // u*[j][t] for k = 4q+t, column n0+j
// and the kernel computes Σ x·w = Σ x·u1 + Σ x·u2 − 127·Σ x over the real K (the row sum),
// with x the activation as i8. Padded k have u1 = u2 = 0. Products stay exact, so every
// build returns the same i32 accumulators bit for bit.
//
// relaxed build, 7-bit weights ("i7", w7 = true: every weight in [-64, 63], as onnxruntime's
// reduce_range or any weight of 7 bits or fewer) store one block, u = w + 64 ∈ [0, 127]:
//   u8 u[KP/4][8][4];  // u[q][j][t] for k = 4q+t, column n0+j; padded k have u = 0
// and the kernel computes Σ x·w = Σ x·u − 64·Σ x: one dot per 16 multiply-adds instead of two,
// half the weight bytes. The simd128 and scalar builds use the c2 layout for both.
export const NR_I8: i32 = 8;
export const HEADER_I8: i32 = 64;
/** The offset of 7-bit weights (u = w + W7_OFFSET). */
export const W7_OFFSET: i32 = 64;

// @ts-ignore: decorator
@inline export function kPadI8(k: i32): i32 {
  if (ASC_FEATURE_RELAXED_SIMD) return (k + 3) & ~3;
  return (k + 7) & ~7;
}

// @ts-ignore: decorator
@inline export function panelBytesI8(k: i32, w7: bool = false): usize {
  const kp = <usize>kPadI8(k);
  if (ASC_FEATURE_RELAXED_SIMD) return <usize>HEADER_I8 + kp * (w7 ? 8 : 16);
  return <usize>HEADER_I8 + kp * 8;
}

export function packedSizeI8(n: i32, k: i32, w7: bool = false): usize {
  return <usize>((n + NR_I8 - 1) / NR_I8) * panelBytesI8(k, w7);
}

// B element (k, n) is the i8 at b + k*strideK + n*strideN; bias is i32[N] or 0. With w7 every
// weight must lie in [-64, 63] (the TypeScript wrapper checks; kernels/index.ts sqz_i7_*).
export function packI8(
  n: i32, k: i32, b: usize, strideK: i32, strideN: i32, bias: usize, out: usize,
  w7: bool = false,
): void {
  const kp = kPadI8(k);
  let p = out;
  for (let n0 = 0; n0 < n; n0 += NR_I8) {
    for (let j = 0; j < NR_I8; j++) {
      const col = n0 + j;
      let sum = 0;
      if (col < n) {
        for (let kk = 0; kk < k; kk++) {
          sum += <i32>load<i8>(b + <usize>kk * strideK + <usize>col * strideN);
        }
      }
      store<i32>(p + (<usize>j << 2), col < n && bias != 0 ? load<i32>(bias + (<usize>col << 2)) : 0);
      store<i32>(p + 32 + (<usize>j << 2), sum);
    }
    p += HEADER_I8;
    if (ASC_FEATURE_RELAXED_SIMD && w7) {
      for (let q = 0; q < kp; q += 4) {
        for (let j = 0; j < NR_I8; j++) {
          const col = n0 + j;
          for (let t = 0; t < 4; t++) {
            const kk = q + t;
            const u = col < n && kk < k
              ? <i32>load<i8>(b + <usize>kk * strideK + <usize>col * strideN) + W7_OFFSET
              : 0;
            store<u8>(p + (j << 2) + t, <u8>u);
          }
        }
        p += 32;
      }
    } else if (ASC_FEATURE_RELAXED_SIMD) {
      for (let q = 0; q < kp; q += 4) {
        for (let j = 0; j < NR_I8; j++) {
          const col = n0 + j;
          for (let t = 0; t < 4; t++) {
            const kk = q + t;
            let u1 = 0, u2 = 0;
            if (col < n && kk < k) {
              const u = <i32>load<i8>(b + <usize>kk * strideK + <usize>col * strideN) + 127;
              u1 = u >> 1;
              u2 = u - u1;
            }
            // u1 block: 32 bytes (8 columns × 4 k), then the u2 block.
            store<u8>(p + (j << 2) + t, <u8>u1);
            store<u8>(p + 32 + (j << 2) + t, <u8>u2);
          }
        }
        p += 64;
      }
    } else {
      for (let q = 0; q < kp; q += 2) {
        for (let j = 0; j < NR_I8; j++) {
          const col = n0 + j;
          for (let t = 0; t < 2; t++) {
            const kk = q + t;
            const v: i8 = col < n && kk < k
              ? load<i8>(b + <usize>kk * strideK + <usize>col * strideN)
              : 0;
            store<i8>(p + (j << 1) + t, v);
          }
        }
        p += 16;
      }
    }
  }
}
