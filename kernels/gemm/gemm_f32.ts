// f32 GEMM: C[M×N] = clamp(A[M×K] · B[K×N] + bias, min, max), B pre-packed by packF32.
// Microkernels, register-blocked over 8-column panels:
//   gemm_f32_5x8_simd:    10 accumulators, mul + add; A broadcast straight from memory
//                         (load32_splat is a load-port broadcast on x86, no shuffle uop).
//   gemm_f32_6x8_relaxed: 12 accumulators, relaxed_madd (one FMA on x86/Arm).
//   gemm_f32_1x8_simd:    a lone row (GEMV); gemm_f32_1x8_scalar: the scalar build.
import { NR_F32 } from "../pack/pack_f32";
import { storeTail32 as storeTail } from "./store";

// Rows per tile: with relaxed_madd the 6×8 tile fits in 16 registers (12 accumulators); the
// simd128 build needs a temporary per mul+add, so its 6×8 tile spills and 5×8 wins (measured:
// 4×8 with shuffled splats ran at 0.83–0.95× tfjs, 5×8 at 1.01–1.17×).
// @ts-ignore: decorator
@inline function tileRows(): i32 {
  if (ASC_FEATURE_RELAXED_SIMD) return 6;
  return 5;
}
const MR: i32 = tileRows();
// Columns per L2 block: the packed B block of K×NC floats stays in cache while every row
// tile of A streams past it.
const L2_BLOCK_BYTES: i32 = 256 * 1024;

// @ts-ignore: decorator
@inline function vfma(a: v128, b: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, acc);
  return f32x4.add(acc, f32x4.mul(a, b));
}

// Microkernel contract: mr rows (≤ the tile), nc ≤ 8 columns of one packed panel `w`;
// lda/ldc in bytes. Rows past mr alias the last valid row so the hot loop has no branches;
// they recompute and rewrite it.
// 6 rows × 8 columns, 12 accumulators: A is broadcast straight from memory (load32_splat,
// a load-port broadcast on x86) instead of shuffled, which frees the shuffle/FMA pipe.
function gemm_f32_6x8_relaxed(
  mr: i32, nc: i32, kc: i32, a: usize, lda: usize, w: usize, c: usize, ldc: usize,
  vmin: v128, vmax: v128,
): void {
  let a0 = a;
  let c0 = c;
  let a1 = a0 + lda;
  let c1 = c0 + ldc;
  if (mr < 2) {
    a1 = a0;
    c1 = c0;
  }
  let a2 = a1 + lda;
  let c2 = c1 + ldc;
  if (mr <= 2) {
    a2 = a1;
    c2 = c1;
  }
  let a3 = a2 + lda;
  let c3 = c2 + ldc;
  if (mr < 4) {
    a3 = a2;
    c3 = c2;
  }
  let a4 = a3 + lda;
  let c4 = c3 + ldc;
  if (mr <= 4) {
    a4 = a3;
    c4 = c3;
  }
  let a5 = a4 + lda;
  let c5 = c4 + ldc;
  if (mr != 6) {
    a5 = a4;
    c5 = c4;
  }
  let acc00 = v128.load(w);
  let acc01 = v128.load(w, 16);
  let acc10 = acc00, acc11 = acc01, acc20 = acc00, acc21 = acc01;
  let acc30 = acc00, acc31 = acc01, acc40 = acc00, acc41 = acc01, acc50 = acc00, acc51 = acc01;
  w += 32;
  for (let k = 0; k < kc; k++) {
    const b0 = v128.load(w);
    const b1 = v128.load(w, 16);
    w += 32;
    let s = v128.load32_splat(a0);
    acc00 = vfma(s, b0, acc00);
    acc01 = vfma(s, b1, acc01);
    s = v128.load32_splat(a1);
    acc10 = vfma(s, b0, acc10);
    acc11 = vfma(s, b1, acc11);
    s = v128.load32_splat(a2);
    acc20 = vfma(s, b0, acc20);
    acc21 = vfma(s, b1, acc21);
    s = v128.load32_splat(a3);
    acc30 = vfma(s, b0, acc30);
    acc31 = vfma(s, b1, acc31);
    s = v128.load32_splat(a4);
    acc40 = vfma(s, b0, acc40);
    acc41 = vfma(s, b1, acc41);
    s = v128.load32_splat(a5);
    acc50 = vfma(s, b0, acc50);
    acc51 = vfma(s, b1, acc51);
    a0 += 4;
    a1 += 4;
    a2 += 4;
    a3 += 4;
    a4 += 4;
    a5 += 4;
  }
  acc00 = f32x4.pmin(vmax, f32x4.pmax(vmin, acc00));
  acc01 = f32x4.pmin(vmax, f32x4.pmax(vmin, acc01));
  acc10 = f32x4.pmin(vmax, f32x4.pmax(vmin, acc10));
  acc11 = f32x4.pmin(vmax, f32x4.pmax(vmin, acc11));
  acc20 = f32x4.pmin(vmax, f32x4.pmax(vmin, acc20));
  acc21 = f32x4.pmin(vmax, f32x4.pmax(vmin, acc21));
  acc30 = f32x4.pmin(vmax, f32x4.pmax(vmin, acc30));
  acc31 = f32x4.pmin(vmax, f32x4.pmax(vmin, acc31));
  acc40 = f32x4.pmin(vmax, f32x4.pmax(vmin, acc40));
  acc41 = f32x4.pmin(vmax, f32x4.pmax(vmin, acc41));
  acc50 = f32x4.pmin(vmax, f32x4.pmax(vmin, acc50));
  acc51 = f32x4.pmin(vmax, f32x4.pmax(vmin, acc51));
  if (nc == 8) {
    v128.store(c5, acc50);
    v128.store(c5, acc51, 16);
    v128.store(c4, acc40);
    v128.store(c4, acc41, 16);
    v128.store(c3, acc30);
    v128.store(c3, acc31, 16);
    v128.store(c2, acc20);
    v128.store(c2, acc21, 16);
    v128.store(c1, acc10);
    v128.store(c1, acc11, 16);
    v128.store(c0, acc00);
    v128.store(c0, acc01, 16);
  } else {
    storeTail(c5, acc50, acc51, nc);
    storeTail(c4, acc40, acc41, nc);
    storeTail(c3, acc30, acc31, nc);
    storeTail(c2, acc20, acc21, nc);
    storeTail(c1, acc10, acc11, nc);
    storeTail(c0, acc00, acc01, nc);
  }
}

// 5 rows × 8 columns, 10 accumulators (simd128: mul + add needs a temporary, so 6×8 spills): A is broadcast straight from memory (load32_splat,
// a load-port broadcast on x86) instead of shuffled, which frees the shuffle/FMA pipe.
function gemm_f32_5x8_simd(
  mr: i32, nc: i32, kc: i32, a: usize, lda: usize, w: usize, c: usize, ldc: usize,
  vmin: v128, vmax: v128,
): void {
  let a0 = a;
  let c0 = c;
  let a1 = a0 + lda;
  let c1 = c0 + ldc;
  if (mr < 2) {
    a1 = a0;
    c1 = c0;
  }
  let a2 = a1 + lda;
  let c2 = c1 + ldc;
  if (mr <= 2) {
    a2 = a1;
    c2 = c1;
  }
  let a3 = a2 + lda;
  let c3 = c2 + ldc;
  if (mr < 4) {
    a3 = a2;
    c3 = c2;
  }
  let a4 = a3 + lda;
  let c4 = c3 + ldc;
  if (mr != 5) {
    a4 = a3;
    c4 = c3;
  }
  let acc00 = v128.load(w);
  let acc01 = v128.load(w, 16);
  let acc10 = acc00, acc11 = acc01, acc20 = acc00, acc21 = acc01;
  let acc30 = acc00, acc31 = acc01, acc40 = acc00, acc41 = acc01;
  w += 32;
  for (let k = 0; k < kc; k++) {
    const b0 = v128.load(w);
    const b1 = v128.load(w, 16);
    w += 32;
    let s = v128.load32_splat(a0);
    acc00 = vfma(s, b0, acc00);
    acc01 = vfma(s, b1, acc01);
    s = v128.load32_splat(a1);
    acc10 = vfma(s, b0, acc10);
    acc11 = vfma(s, b1, acc11);
    s = v128.load32_splat(a2);
    acc20 = vfma(s, b0, acc20);
    acc21 = vfma(s, b1, acc21);
    s = v128.load32_splat(a3);
    acc30 = vfma(s, b0, acc30);
    acc31 = vfma(s, b1, acc31);
    s = v128.load32_splat(a4);
    acc40 = vfma(s, b0, acc40);
    acc41 = vfma(s, b1, acc41);
    a0 += 4;
    a1 += 4;
    a2 += 4;
    a3 += 4;
    a4 += 4;
  }
  acc00 = f32x4.pmin(vmax, f32x4.pmax(vmin, acc00));
  acc01 = f32x4.pmin(vmax, f32x4.pmax(vmin, acc01));
  acc10 = f32x4.pmin(vmax, f32x4.pmax(vmin, acc10));
  acc11 = f32x4.pmin(vmax, f32x4.pmax(vmin, acc11));
  acc20 = f32x4.pmin(vmax, f32x4.pmax(vmin, acc20));
  acc21 = f32x4.pmin(vmax, f32x4.pmax(vmin, acc21));
  acc30 = f32x4.pmin(vmax, f32x4.pmax(vmin, acc30));
  acc31 = f32x4.pmin(vmax, f32x4.pmax(vmin, acc31));
  acc40 = f32x4.pmin(vmax, f32x4.pmax(vmin, acc40));
  acc41 = f32x4.pmin(vmax, f32x4.pmax(vmin, acc41));
  if (nc == 8) {
    v128.store(c4, acc40);
    v128.store(c4, acc41, 16);
    v128.store(c3, acc30);
    v128.store(c3, acc31, 16);
    v128.store(c2, acc20);
    v128.store(c2, acc21, 16);
    v128.store(c1, acc10);
    v128.store(c1, acc11, 16);
    v128.store(c0, acc00);
    v128.store(c0, acc01, 16);
  } else {
    storeTail(c4, acc40, acc41, nc);
    storeTail(c3, acc30, acc31, nc);
    storeTail(c2, acc20, acc21, nc);
    storeTail(c1, acc10, acc11, nc);
    storeTail(c0, acc00, acc01, nc);
  }
}

// One row against one panel: used when M leaves a single row, where the 4-row tile would
// do four times the arithmetic for nothing (GEMV, M = 1).
function gemm_f32_1x8_simd(
  nc: i32, kc: i32, a: usize, w: usize, c: usize, vmin: v128, vmax: v128,
): void {
  let acc0 = v128.load(w);
  let acc1 = v128.load(w, 16);
  // Two accumulator pairs break the add dependency chain of a single row.
  let acc2 = f32x4.splat(0);
  let acc3 = f32x4.splat(0);
  w += 32;
  let k = kc;
  while (k >= 2) {
    const s0 = v128.load32_splat(a);
    const s1 = v128.load32_splat(a, 4);
    a += 8;
    acc0 = vfma(s0, v128.load(w), acc0);
    acc1 = vfma(s0, v128.load(w, 16), acc1);
    acc2 = vfma(s1, v128.load(w, 32), acc2);
    acc3 = vfma(s1, v128.load(w, 48), acc3);
    w += 64;
    k -= 2;
  }
  if (k) {
    const s0 = v128.load32_splat(a);
    acc0 = vfma(s0, v128.load(w), acc0);
    acc1 = vfma(s0, v128.load(w, 16), acc1);
  }
  acc0 = f32x4.pmin(vmax, f32x4.pmax(vmin, f32x4.add(acc0, acc2)));
  acc1 = f32x4.pmin(vmax, f32x4.pmax(vmin, f32x4.add(acc1, acc3)));
  if (nc == 8) {
    v128.store(c, acc0);
    v128.store(c, acc1, 16);
  } else {
    storeTail(c, acc0, acc1, nc);
  }
}

// Scalar build: one row × 8 columns in scalar registers.
function gemm_f32_1x8_scalar(
  nc: i32, kc: i32, a: usize, w: usize, c: usize, vmin: f32, vmax: f32,
): void {
  let c0 = load<f32>(w), c1 = load<f32>(w, 4), c2 = load<f32>(w, 8), c3 = load<f32>(w, 12);
  let c4 = load<f32>(w, 16), c5 = load<f32>(w, 20), c6 = load<f32>(w, 24), c7 = load<f32>(w, 28);
  w += 32;
  for (let k = 0; k < kc; k++) {
    const x = load<f32>(a);
    a += 4;
    c0 += x * load<f32>(w);
    c1 += x * load<f32>(w, 4);
    c2 += x * load<f32>(w, 8);
    c3 += x * load<f32>(w, 12);
    c4 += x * load<f32>(w, 16);
    c5 += x * load<f32>(w, 20);
    c6 += x * load<f32>(w, 24);
    c7 += x * load<f32>(w, 28);
    w += 32;
  }
  store<f32>(c, min(max(c0, vmin), vmax));
  if (nc > 1) store<f32>(c, min(max(c1, vmin), vmax), 4);
  if (nc > 2) store<f32>(c, min(max(c2, vmin), vmax), 8);
  if (nc > 3) store<f32>(c, min(max(c3, vmin), vmax), 12);
  if (nc > 4) store<f32>(c, min(max(c4, vmin), vmax), 16);
  if (nc > 5) store<f32>(c, min(max(c5, vmin), vmax), 20);
  if (nc > 6) store<f32>(c, min(max(c6, vmin), vmax), 24);
  if (nc > 7) store<f32>(c, min(max(c7, vmin), vmax), 28);
}

// Driver. lda/ldc in elements. Loop order: L2 block of columns → 4-row tile → panel, so a
// row tile of A sits in L1 while it meets every panel of the block.
export function gemmF32(
  m: i32, n: i32, k: i32, a: usize, lda: i32, w: usize, c: usize, ldc: i32,
  outMin: f32, outMax: f32,
): void {
  const panelBytes = <usize>(NR_F32 + NR_F32 * k) << 2;
  let nb = (L2_BLOCK_BYTES / max(1, k * 4)) & ~(NR_F32 - 1);
  if (nb < NR_F32) nb = NR_F32;
  const ldaB = <usize>lda << 2;
  const ldcB = <usize>ldc << 2;
  for (let n0 = 0; n0 < n; n0 += nb) {
    const n1 = min(n, n0 + nb);
    for (let m0 = 0; m0 < m; m0 += MR) {
      const mr = min(MR, m - m0);
      const ar = a + <usize>m0 * ldaB;
      const cr = c + <usize>m0 * ldcB;
      for (let j = n0; j < n1; j += NR_F32) {
        const wp = w + <usize>(j / NR_F32) * panelBytes;
        const cp = cr + (<usize>j << 2);
        const nc = min(NR_F32, n1 - j);
        if (ASC_FEATURE_SIMD) {
          if (mr == 1) {
            gemm_f32_1x8_simd(nc, k, ar, wp, cp, f32x4.splat(outMin), f32x4.splat(outMax));
          } else {
            if (ASC_FEATURE_RELAXED_SIMD) {
              gemm_f32_6x8_relaxed(
                mr, nc, k, ar, ldaB, wp, cp, ldcB, f32x4.splat(outMin), f32x4.splat(outMax),
              );
            } else {
              gemm_f32_5x8_simd(
                mr, nc, k, ar, ldaB, wp, cp, ldcB, f32x4.splat(outMin), f32x4.splat(outMax),
              );
            }
          }
        } else {
          for (let r = 0; r < mr; r++) {
            gemm_f32_1x8_scalar(
              nc, k, ar + <usize>r * ldaB, wp, cp + <usize>r * ldcB, outMin, outMax,
            );
          }
        }
      }
    }
  }
}
