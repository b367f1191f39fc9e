// Plain scalar reference implementations of every kernel. They define the semantics the Wasm
// kernels must reproduce: exactly for the integer and binary paths, within rounding for f32.
// Deliberately naive: one loop nest, no packing, no cleverness.

/** C = clamp(A·B + bias) with A M×K, B K×N row-major; accumulates in f64. */
export function refGemmF32(
  m: number, n: number, k: number, a: Float32Array, b: Float32Array,
  bias: Float32Array | undefined, lo = -Infinity, hi = Infinity,
): Float32Array {
  const c = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = bias ? bias[j] : 0;
      for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
      c[i * n + j] = Math.min(Math.max(s, lo), hi);
    }
  }
  return c;
}
