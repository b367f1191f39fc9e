// Packed sparse f32 GEMM weights (unstructured sparsity, pruned layers): the nonzeros of a K×N
// weight B stored by output column (CSC), for kernels/gemm/gemm_sparse_f32.ts.
//
//   struct sparse_f32 {            // 16 + 8·N + 4 + (4 + iw)·nnz bytes, 4-byte aligned
//     u32 n, k, nnz;
//     u32 iw;                      // bytes per index: 2 when K ≤ 65536, else 4
//     f32 bias[N];                 // 0 without bias
//     u32 colptr[N + 1];           // column j's nonzeros are [colptr[j], colptr[j+1])
//     f32 value[nnz];              // B[k][j] of each nonzero, column by column
//     u16 index[nnz];              // its k, ascending within a column (u32 when iw = 4)
//   }
//
// Values and indices are separate streams so the GEMV kernel loads four values in one v128;
// k is an index (not a byte offset) so the same stream serves both the panel kernel (offset
// k·64) and the GEMV gather (offset k·4), and u16 keeps the format at 6 bytes per nonzero:
// 15% of f32 at 90% sparsity, 30% at 80%. Exact zeros (either sign) are dropped; NaN is kept.
export const SPARSE_HEADER_BYTES: i32 = 16;

// @ts-ignore: decorator
@inline export function sparseIndexBytes(k: i32): i32 {
  return k <= 65536 ? 2 : 4;
}

/** Nonzeros of B (element (k, n) at b + 4·(k·strideK + n·strideN)). */
export function nnzSparseF32(n: i32, k: i32, b: usize, strideK: i32, strideN: i32): i32 {
  let nnz = 0;
  for (let j = 0; j < n; j++) {
    for (let kk = 0; kk < k; kk++) {
      const v = load<f32>(b + ((<usize>kk * strideK + <usize>j * strideN) << 2));
      if (v != 0) nnz++;
    }
  }
  return nnz;
}

export function packedSizeSparseF32(n: i32, k: i32, nnz: i32): usize {
  return <usize>SPARSE_HEADER_BYTES + (<usize>n << 3) + 4 +
    <usize>nnz * <usize>(4 + sparseIndexBytes(k));
}

// @ts-ignore: decorator
@inline export function sparseBias(p: usize): usize {
  return p + SPARSE_HEADER_BYTES;
}
// @ts-ignore: decorator
@inline export function sparseColptr(p: usize): usize {
  return p + SPARSE_HEADER_BYTES + (<usize>load<u32>(p) << 2);
}
// @ts-ignore: decorator
@inline export function sparseValues(p: usize): usize {
  return sparseColptr(p) + (<usize>(load<u32>(p) + 1) << 2);
}
// @ts-ignore: decorator
@inline export function sparseIndices(p: usize): usize {
  return sparseValues(p) + (<usize>load<u32>(p, 8) << 2);
}

/** Packs B (strides as packF32: MatMul K×N, or Gemm transB N×K) and bias (0 = none). */
export function packSparseF32(
  n: i32, k: i32, b: usize, strideK: i32, strideN: i32, bias: usize, out: usize,
): void {
  const nnz = nnzSparseF32(n, k, b, strideK, strideN);
  const iw = sparseIndexBytes(k);
  store<u32>(out, n);
  store<u32>(out, k, 4);
  store<u32>(out, nnz, 8);
  store<u32>(out, iw, 12);
  const pb = sparseBias(out), pc = sparseColptr(out), pv = sparseValues(out);
  const pi = sparseIndices(out);
  let e = 0;
  for (let j = 0; j < n; j++) {
    store<f32>(pb + (<usize>j << 2), bias != 0 ? load<f32>(bias + (<usize>j << 2)) : 0);
    store<u32>(pc + (<usize>j << 2), e);
    for (let kk = 0; kk < k; kk++) {
      const v = load<f32>(b + ((<usize>kk * strideK + <usize>j * strideN) << 2));
      if (v == 0) continue;
      store<f32>(pv + (<usize>e << 2), v);
      if (iw == 2) store<u16>(pi + (<usize>e << 1), <u16>kk);
      else store<u32>(pi + (<usize>e << 2), kk);
      e++;
    }
  }
  store<u32>(pc + (<usize>n << 2), e);
}
