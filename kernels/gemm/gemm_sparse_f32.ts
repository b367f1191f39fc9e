// Sparse f32 GEMM: C[M×N] = clamp(A[M×K] · B[K×N] + bias, min, max), B packed by
// packSparseF32 (kernels/pack/pack_sparse.ts: nonzeros by output column). XNNPACK's SpMM
// idea on row-major activations: a tile of MR rows of A is transposed into a K×MR panel in
// the workspace, then for each output column j and each of its nonzeros (k, w)
// acc[0..MR) += w · panel[k][0..MR), vectorized over the rows, so no arithmetic is spent on
// pruned weights and each nonzero is read once per tile. Microkernels:
//   spmm_f32_16x1_simd:             16 rows, 4 v128 accumulators (vfma: mul + add in the
//                                   simd build, relaxed_madd in the relaxed one);
//   spmm_f32_4x1_simd:              4 rows (M tails of 2..8 rows, and M = 2..4);
//   spmm_f32_1x4_gather_simd:       a lone row (GEMV): four nonzeros at a time, A gathered by
//                                   lane loads, the four lane sums added at the end;
//   spmm_f32_1x1_scalar:            the scalar build, row by row.
// Each output element sums its column's nonzeros in index order starting from the bias, so
// the 16- and 4-row tiles give the same bits; the gather kernel sums in another order.
// Threads split columns (any range) or rows at multiples of 16: both change no bit.
import {
  sparseBias, sparseColptr, sparseIndices, sparseValues,
} from "../pack/pack_sparse";

const MR: i32 = 16;

/** Workspace bytes of the row panel: ceil(K/4)·4 rows of 16 floats (0 in the scalar build). */
export function workspaceSparseF32(k: i32): usize {
  if (!ASC_FEATURE_SIMD) return 0;
  return <usize>((k + 3) & ~3) * <usize>(MR * 4);
}

// @ts-ignore: decorator
@inline function vfma(a: v128, b: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, acc);
  return f32x4.add(acc, f32x4.mul(a, b));
}

// @ts-ignore: decorator
@inline function kIndex(pi: usize, i: i32, wide: bool): usize {
  if (wide) return <usize>load<u32>(pi + (<usize>i << 2));
  return <usize>load<u16>(pi + (<usize>i << 1));
}

// Transposes rows r of A (mr ≤ lanes valid, later rows alias the last) into
// ws[k][lanes], 4 rows × 4 k per step with shuffles. The K tail reads up to 3 floats past a
// row (inside lda or the ABI's 16 bytes of slack) into panel rows the kernels never read.
// @ts-ignore: decorator
@inline function transpose4(
  ws: usize, lanes: i32, g: i32, k: i32, r0: usize, r1: usize, r2: usize, r3: usize,
): void {
  const ld = <usize>lanes << 2;
  let p = ws + (<usize>g << 4);
  for (let kk = 0; kk < k; kk += 4) {
    const o = <usize>kk << 2;
    const x0 = v128.load(r0 + o), x1 = v128.load(r1 + o);
    const x2 = v128.load(r2 + o), x3 = v128.load(r3 + o);
    const t0 = i32x4.shuffle(x0, x1, 0, 4, 1, 5), t1 = i32x4.shuffle(x0, x1, 2, 6, 3, 7);
    const t2 = i32x4.shuffle(x2, x3, 0, 4, 1, 5), t3 = i32x4.shuffle(x2, x3, 2, 6, 3, 7);
    v128.store(p, i32x4.shuffle(t0, t2, 0, 1, 4, 5));
    v128.store(p + ld, i32x4.shuffle(t0, t2, 2, 3, 6, 7));
    v128.store(p + 2 * ld, i32x4.shuffle(t1, t3, 0, 1, 4, 5));
    v128.store(p + 3 * ld, i32x4.shuffle(t1, t3, 2, 3, 6, 7));
    p += ld << 2;
  }
}

function packPanel(mr: i32, lanes: i32, k: i32, a: usize, lda: usize, ws: usize): void {
  for (let g = 0; g < lanes; g += 4) {
    const i0 = min(g, mr - 1), i1 = min(g + 1, mr - 1);
    const i2 = min(g + 2, mr - 1), i3 = min(g + 3, mr - 1);
    transpose4(
      ws, lanes, g >> 2, k, a + <usize>i0 * lda, a + <usize>i1 * lda, a + <usize>i2 * lda,
      a + <usize>i3 * lda,
    );
  }
}

// Lane i of v to c + i·ldc, for the first `count` lanes (a column of C is strided).
// @ts-ignore: decorator
@inline function storeColumn4(c: usize, ldc: usize, v: v128, count: i32): void {
  if (count >= 4) {
    v128.store32_lane(c, v, 0);
    v128.store32_lane(c + ldc, v, 1);
    v128.store32_lane(c + 2 * ldc, v, 2);
    v128.store32_lane(c + 3 * ldc, v, 3);
    return;
  }
  if (count > 0) v128.store32_lane(c, v, 0);
  if (count > 1) v128.store32_lane(c + ldc, v, 1);
  if (count > 2) v128.store32_lane(c + 2 * ldc, v, 2);
}

// 16 rows (mr ≤ 16 valid) × columns [n0, n1) from the panel ws.
// @ts-ignore: decorator
@inline function spmm16(
  mr: i32, n0: i32, n1: i32, ws: usize, packed: usize, c: usize, ldc: usize,
  vmin: v128, vmax: v128, wide: bool,
): void {
  const pb = sparseBias(packed), pc = sparseColptr(packed);
  const pv = sparseValues(packed), pi = sparseIndices(packed);
  let p = <i32>load<u32>(pc + (<usize>n0 << 2));
  for (let j = n0; j < n1; j++) {
    const e = <i32>load<u32>(pc + (<usize>(j + 1) << 2));
    let acc0 = v128.load32_splat(pb + (<usize>j << 2));
    let acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (; p < e; p++) {
      const w = v128.load32_splat(pv + (<usize>p << 2));
      const x = ws + (kIndex(pi, p, wide) << 6);
      acc0 = vfma(w, v128.load(x), acc0);
      acc1 = vfma(w, v128.load(x, 16), acc1);
      acc2 = vfma(w, v128.load(x, 32), acc2);
      acc3 = vfma(w, v128.load(x, 48), acc3);
    }
    const cj = c + (<usize>j << 2);
    const c4 = ldc << 2;
    storeColumn4(cj, ldc, f32x4.pmin(vmax, f32x4.pmax(vmin, acc0)), mr);
    storeColumn4(cj + c4, ldc, f32x4.pmin(vmax, f32x4.pmax(vmin, acc1)), mr - 4);
    storeColumn4(cj + 2 * c4, ldc, f32x4.pmin(vmax, f32x4.pmax(vmin, acc2)), mr - 8);
    storeColumn4(cj + 3 * c4, ldc, f32x4.pmin(vmax, f32x4.pmax(vmin, acc3)), mr - 12);
  }
}

function spmm_f32_16x1_simd(
  mr: i32, n0: i32, n1: i32, ws: usize, packed: usize, c: usize, ldc: usize,
  vmin: v128, vmax: v128,
): void {
  if (load<u32>(packed, 12) == 4) spmm16(mr, n0, n1, ws, packed, c, ldc, vmin, vmax, true);
  else spmm16(mr, n0, n1, ws, packed, c, ldc, vmin, vmax, false);
}

// 4 rows (mr ≤ 4 valid) × columns [n0, n1): M tails, and M = 2..4.
// @ts-ignore: decorator
@inline function spmm4(
  mr: i32, n0: i32, n1: i32, ws: usize, packed: usize, c: usize, ldc: usize,
  vmin: v128, vmax: v128, wide: bool,
): void {
  const pb = sparseBias(packed), pc = sparseColptr(packed);
  const pv = sparseValues(packed), pi = sparseIndices(packed);
  let p = <i32>load<u32>(pc + (<usize>n0 << 2));
  for (let j = n0; j < n1; j++) {
    const e = <i32>load<u32>(pc + (<usize>(j + 1) << 2));
    let acc = v128.load32_splat(pb + (<usize>j << 2));
    for (; p < e; p++) {
      const w = v128.load32_splat(pv + (<usize>p << 2));
      acc = vfma(w, v128.load(ws + (kIndex(pi, p, wide) << 4)), acc);
    }
    storeColumn4(c + (<usize>j << 2), ldc, f32x4.pmin(vmax, f32x4.pmax(vmin, acc)), mr);
  }
}

function spmm_f32_4x1_simd(
  mr: i32, n0: i32, n1: i32, ws: usize, packed: usize, c: usize, ldc: usize,
  vmin: v128, vmax: v128,
): void {
  if (load<u32>(packed, 12) == 4) spmm4(mr, n0, n1, ws, packed, c, ldc, vmin, vmax, true);
  else spmm4(mr, n0, n1, ws, packed, c, ldc, vmin, vmax, false);
}

// A at the k of nonzeros p..p+3: four independent loads joined by two levels of shuffles
// (a chain of lane inserts would serialize them).
// @ts-ignore: decorator
@inline function gather4(a: usize, pi: usize, p: i32, wide: bool): v128 {
  const l0 = v128.load32_zero(a + (kIndex(pi, p, wide) << 2));
  const l1 = v128.load32_zero(a + (kIndex(pi, p + 1, wide) << 2));
  const l2 = v128.load32_zero(a + (kIndex(pi, p + 2, wide) << 2));
  const l3 = v128.load32_zero(a + (kIndex(pi, p + 3, wide) << 2));
  return i32x4.shuffle(i32x4.shuffle(l0, l1, 0, 4, 1, 5), i32x4.shuffle(l2, l3, 0, 4, 1, 5), 0, 1, 4, 5);
}

// One row: columns [n0, n1) as sparse dot products. Four nonzeros per step: their values in
// one v128, A gathered by lane loads; two accumulators break the add chain.
// @ts-ignore: decorator
@inline function spmmGather(
  n0: i32, n1: i32, a: usize, packed: usize, c: usize, vmin: v128, vmax: v128, wide: bool,
): void {
  const pb = sparseBias(packed), pc = sparseColptr(packed);
  const pv = sparseValues(packed), pi = sparseIndices(packed);
  let p = <i32>load<u32>(pc + (<usize>n0 << 2));
  for (let j = n0; j < n1; j++) {
    const e = <i32>load<u32>(pc + (<usize>(j + 1) << 2));
    let acc0 = f32x4.splat(0), acc1 = f32x4.splat(0);
    for (; p + 8 <= e; p += 8) {
      acc0 = vfma(v128.load(pv + (<usize>p << 2)), gather4(a, pi, p, wide), acc0);
      acc1 = vfma(v128.load(pv + (<usize>p << 2), 16), gather4(a, pi, p + 4, wide), acc1);
    }
    if (p + 4 <= e) {
      acc0 = vfma(v128.load(pv + (<usize>p << 2)), gather4(a, pi, p, wide), acc0);
      p += 4;
    }
    // The last 1..3 nonzeros: lanes past the column end are masked to value 0 (the v128 of
    // values may run into the index stream, which lies behind it in the same block).
    const rest = e - p;
    if (rest > 0) {
      const mask = i32x4.lt_s(i32x4(0, 1, 2, 3), i32x4.splat(rest));
      let x = v128.load32_zero(a + (kIndex(pi, p, wide) << 2));
      if (rest > 1) x = v128.load32_lane(a + (kIndex(pi, p + 1, wide) << 2), x, 1);
      if (rest > 2) x = v128.load32_lane(a + (kIndex(pi, p + 2, wide) << 2), x, 2);
      acc1 = vfma(v128.and(v128.load(pv + (<usize>p << 2)), mask), x, acc1);
      p = e;
    }
    const s = f32x4.add(acc0, acc1);
    const s2 = f32x4.add(s, i32x4.shuffle(s, s, 2, 3, 0, 1));
    let v = f32x4.add(s2, i32x4.shuffle(s2, s2, 1, 0, 3, 2));
    v = f32x4.add(v, v128.load32_splat(pb + (<usize>j << 2)));
    v128.store32_lane(c + (<usize>j << 2), f32x4.pmin(vmax, f32x4.pmax(vmin, v)), 0);
  }
}

function spmm_f32_1x4_gather_simd(
  n0: i32, n1: i32, a: usize, packed: usize, c: usize, vmin: v128, vmax: v128,
): void {
  if (load<u32>(packed, 12) == 4) spmmGather(n0, n1, a, packed, c, vmin, vmax, true);
  else spmmGather(n0, n1, a, packed, c, vmin, vmax, false);
}

// Scalar build: one row, columns [n0, n1), each a sparse dot product in index order.
function spmm_f32_1x1_scalar(
  n0: i32, n1: i32, a: usize, packed: usize, c: usize, vmin: f32, vmax: f32,
): void {
  const pb = sparseBias(packed), pc = sparseColptr(packed);
  const pv = sparseValues(packed), pi = sparseIndices(packed);
  const wide = load<u32>(packed, 12) == 4;
  let p = <i32>load<u32>(pc + (<usize>n0 << 2));
  for (let j = n0; j < n1; j++) {
    const e = <i32>load<u32>(pc + (<usize>(j + 1) << 2));
    let acc = load<f32>(pb + (<usize>j << 2));
    if (wide) {
      for (; p < e; p++) {
        acc += load<f32>(pv + (<usize>p << 2)) * load<f32>(a + (kIndex(pi, p, true) << 2));
      }
    } else {
      for (; p < e; p++) {
        acc += load<f32>(pv + (<usize>p << 2)) * load<f32>(a + (kIndex(pi, p, false) << 2));
      }
    }
    store<f32>(c + (<usize>j << 2), min(max(acc, vmin), vmax));
  }
}

/**
 * Rows [0, m) × columns [n0, n1) of C (c addresses C's row 0, column 0); lda/ldc in
 * elements; ws holds workspaceSparseF32(K) bytes. Row tiles: 16 rows while ≥ 9 remain
 * (padded), then 4-row tiles down to 2 rows, and a last lone row on the gather kernel.
 */
export function spmmF32(
  m: i32, n0: i32, n1: i32, a: usize, lda: i32, packed: usize, c: usize, ldc: i32, ws: usize,
  outMin: f32, outMax: f32,
): void {
  const k = <i32>load<u32>(packed, 4);
  const ldaB = <usize>lda << 2, ldcB = <usize>ldc << 2;
  if (!ASC_FEATURE_SIMD) {
    for (let r = 0; r < m; r++) {
      spmm_f32_1x1_scalar(
        n0, n1, a + <usize>r * ldaB, packed, c + <usize>r * ldcB, outMin, outMax,
      );
    }
    return;
  }
  const vmin = f32x4.splat(outMin), vmax = f32x4.splat(outMax);
  let m0 = 0;
  while (m0 < m) {
    const left = m - m0;
    const ar = a + <usize>m0 * ldaB, cr = c + <usize>m0 * ldcB;
    if (left >= 9) {
      const mr = min(MR, left);
      packPanel(mr, MR, k, ar, ldaB, ws);
      spmm_f32_16x1_simd(mr, n0, n1, ws, packed, cr, ldcB, vmin, vmax);
      m0 += mr;
    } else if (left >= 2) {
      const mr = min(4, left);
      packPanel(mr, 4, k, ar, ldaB, ws);
      spmm_f32_4x1_simd(mr, n0, n1, ws, packed, cr, ldcB, vmin, vmax);
      m0 += mr;
    } else {
      spmm_f32_1x4_gather_simd(n0, n1, ar, packed, cr, vmin, vmax);
      m0++;
    }
  }
}
