// Plain scalar reference implementations of every kernel. They define the semantics the Wasm
// kernels must reproduce: exactly for the integer and binary paths, within rounding for f32.
// Deliberately naive: one loop nest, no packing, no cleverness.

/** C = clamp(A·B + bias) with A M×K, B K×N row-major; accumulates in f64. */
export function refGemmF32(
  m: number,
  n: number,
  k: number,
  a: Float32Array,
  b: Float32Array,
  bias: Float32Array | undefined,
  lo = -Infinity,
  hi = Infinity,
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

/** i32 accumulators of the int8 GEMM: bias + Σ_k (a − za)·w, w K×N. Exact. */
export function refGemmI8(
  m: number,
  n: number,
  k: number,
  a: Uint8Array | Int8Array,
  za: number,
  w: Int8Array,
  bias?: Int32Array,
): Int32Array {
  const c = new Int32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = bias ? bias[j] : 0;
      for (let p = 0; p < k; p++) s += (a[i * k + p] - za) * w[p * n + j];
      c[i * n + j] = s;
    }
  }
  return c;
}

/** TFLite MultiplyByQuantizedMultiplier, in BigInt so every intermediate is exact. */
export function refMultiplyByQuantizedMultiplier(x: number, multiplier: number, shift: number) {
  const left = Math.max(shift, 0), right = Math.max(-shift, 0);
  const xl = BigInt.asIntN(32, BigInt(x) * (1n << BigInt(left))); // C's wrapping multiply
  // SaturatingRoundingDoublingHighMul with gemmlowp's nudge and truncating division.
  const ab = xl * BigInt(multiplier);
  const nudge = ab >= 0n ? 1n << 30n : 1n - (1n << 30n);
  const t = Number((ab + nudge) / (1n << 31n)); // BigInt division truncates, like C
  // RoundingDivideByPOT
  const mask = 2 ** right - 1;
  const rem = Number(BigInt(t) & BigInt(mask));
  const threshold = (mask >> 1) + (t < 0 ? 1 : 0);
  return Math.floor(t / 2 ** right) + (rem > threshold ? 1 : 0);
}

/** ONNX QLinearMatMul / ORT requantization with f32 arithmetic, round half to even. */
export function refRequantFp32(acc: number, scale: number, zp: number, qmin: number, qmax: number) {
  const v = Math.fround(Math.fround(acc) * Math.fround(scale));
  const r = roundHalfEven(Math.min(Math.max(v, qmin - zp), qmax - zp));
  return Math.min(Math.max(r + zp, qmin), qmax);
}

export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** sign with sign(0) = +1, the binarization every binary kernel uses. */
export function binarize(x: number): 1 | -1 {
  return x < 0 ? -1 : 1;
}

/** Σ_k sign(a)·sign(b) for A M×K, B K×N. Exact. */
export function refGemmBin(
  m: number,
  n: number,
  k: number,
  a: Float32Array,
  b: Float32Array,
): Int32Array {
  const c = new Int32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += binarize(a[i * k + p]) * binarize(b[p * n + j]);
      c[i * n + j] = s;
    }
  }
  return c;
}

/** The bit-packed row layout of kernels/pack/pack_bin.ts: bit set for negative values. */
export function refPackSignBits(x: ArrayLike<number>, rows: number, k: number): Uint8Array {
  const rowBytes = Math.ceil(k / 128) * 16;
  const out = new Uint8Array(rows * rowBytes);
  for (let i = 0; i < rows; i++) {
    for (let p = 0; p < k; p++) {
      if (x[i * k + p] < 0) out[i * rowBytes + (p >> 3)] |= 1 << (p & 7);
    }
  }
  return out;
}
