// Scalar references for the transformer row-wise kernels (src/kernels/rowwise.ts), in f64 with
// the exact exp and erf: the kernels must match them to float rounding plus the documented
// error of their exp (≤ 2 ulp) and erf (≤ 1.5e-7 absolute) polynomials.
import { erf } from "../ops/elementwise_kernels.ts";

export function layerNormRef(
  x: Float32Array,
  rows: number,
  n: number,
  gamma: Float32Array,
  beta: Float32Array | undefined,
  eps: number,
): Float32Array {
  const y = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += x[r * n + i];
    mean /= n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (x[r * n + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / n + eps);
    for (let i = 0; i < n; i++) {
      y[r * n + i] = (x[r * n + i] - mean) * inv * gamma[i] + (beta ? beta[i] : 0);
    }
  }
  return y;
}

export function softmaxRef(
  x: Float32Array,
  rows: number,
  n: number,
  scale = 1,
  mask?: Float32Array,
  ldmask = 0,
): Float32Array {
  const y = new Float32Array(rows * n);
  const z = new Float64Array(n);
  for (let r = 0; r < rows; r++) {
    let mx = -Infinity;
    for (let i = 0; i < n; i++) {
      z[i] = scale * x[r * n + i] + (mask ? mask[r * ldmask + i] : 0);
      mx = Math.max(mx, z[i]);
    }
    let s = 0;
    for (let i = 0; i < n; i++) s += z[i] = Math.exp(z[i] - mx);
    for (let i = 0; i < n; i++) y[r * n + i] = z[i] / s;
  }
  return y;
}

export function geluRef(x: Float32Array): Float32Array {
  return x.map((v) => 0.5 * v * (1 + erf(v / Math.SQRT2)));
}
