// Loops behind the element-wise ops: the broadcast iteration plan, binary/ternary kernels over
// typed arrays, float16 conversion and the scalar math JS lacks (erf, round-half-even).
//
// Broadcasting is lowered to runs: the output's dims are coalesced (size-1 dims dropped,
// neighbours merged when every input walks them contiguously), the innermost coalesced dim
// becomes a run in which each input steps by 0 (broadcast) or 1, and the outer dims are walked
// by an odometer once per run. Same-shape inputs become one run over the whole tensor, a scalar
// operand a run with step 0, and per-channel ([N,C,H,W] with [C,1,1]) a run of H·W per channel,
// so the kernels only ever see those three shapes of loop.
import type { TensorData } from "../graph/tensor.ts";
import { broadcastStrides } from "./tensor_util.ts";

export type NumArr =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array;
export type BigArr = BigInt64Array | BigUint64Array;
export type FArr = Float32Array | Float64Array;
/** Element access for code that only moves values (Where, casts): reads and writes as-is. */
export type Slots = { [i: number]: number | bigint };

export interface Plan {
  /** Length of the innermost run. */
  n: number;
  /** Per input, its element step along the run: 0 (broadcast) or 1. */
  steps: number[];
  /** Outer coalesced dims, outermost first. */
  outer: number[];
  /** Per input, its strides along the outer dims (0 where broadcast). */
  strides: number[][];
}

/** Iteration plan for inputs of `inDims` broadcast to `outDims` (already validated). */
export function makePlan(inDims: readonly (readonly number[])[], outDims: readonly number[]): Plan {
  const k = inDims.length;
  const full = inDims.map((d) => broadcastStrides(d, outDims));
  const dims: number[] = [];
  const st: number[][] = inDims.map(() => []);
  for (let d = 0; d < outDims.length; d++) {
    const size = outDims[d];
    if (size === 1) continue;
    const last = dims.length - 1;
    // Row-major merge: the previous dim must step exactly over this one for every input.
    let merge = last >= 0;
    for (let i = 0; merge && i < k; i++) merge = st[i][last] === full[i][d] * size;
    if (merge) {
      dims[last] *= size;
      for (let i = 0; i < k; i++) st[i][last] = full[i][d];
    } else {
      dims.push(size);
      for (let i = 0; i < k; i++) st[i].push(full[i][d]);
    }
  }
  if (dims.length === 0) return { n: 1, steps: new Array(k).fill(0), outer: [], strides: st };
  const n = dims.pop()!;
  return { n, steps: st.map((s) => s.pop()!), outer: dims, strides: st };
}

/** Calls fn(outOffset, inputOffsets) once per run; inputOffsets is reused, read it at once. */
export function eachRun(p: Plan, fn: (oi: number, offs: readonly number[]) => void): void {
  const { n, outer, strides } = p;
  const k = strides.length, r = outer.length;
  let count = 1;
  for (const d of outer) count *= d;
  if (n === 0 || count === 0) return;
  const idx = new Array<number>(r).fill(0);
  const offs = new Array<number>(k).fill(0);
  for (let run = 0, oi = 0; run < count; run++, oi += n) {
    fn(oi, offs);
    for (let d = r - 1; d >= 0; d--) {
      if (++idx[d] < outer[d]) {
        for (let i = 0; i < k; i++) offs[i] += strides[i][d];
        break;
      }
      idx[d] = 0;
      for (let i = 0; i < k; i++) offs[i] -= strides[i][d] * (outer[d] - 1);
    }
  }
}

/** A binary kernel over one run: o[oi+k] = f(a[ai + k·as], b[bi + k·bs]) for k < n. */
export type BinKernel<A, B, O> = (
  a: A,
  ai: number,
  as: number,
  b: B,
  bi: number,
  bs: number,
  o: O,
  oi: number,
  n: number,
) => void;

export function runBinary<A, B, O>(k: BinKernel<A, B, O>, a: A, b: B, o: O, p: Plan): void {
  const as = p.steps[0], bs = p.steps[1], n = p.n;
  if (p.outer.length === 0) {
    if (n > 0) k(a, 0, as, b, 0, bs, o, 0, n);
    return;
  }
  eachRun(p, (oi, offs) => k(a, offs[0], as, b, offs[1], bs, o, oi, n));
}

// ---------------------------------------------------------------------------------------------
// Hot arithmetic kernels. Each has the three loop shapes a plan produces: both contiguous,
// b broadcast, a broadcast (both broadcast only happens for n = 1, which the second covers).
// Number kernels serve every non-BigInt dtype: the typed-array store wraps integers like C.

export function addN(
  a: NumArr,
  ai: number,
  as: number,
  b: NumArr,
  bi: number,
  bs: number,
  o: NumArr,
  oi: number,
  n: number,
): void {
  if (as === 1 && bs === 1) { for (let k = 0; k < n; k++) o[oi + k] = a[ai + k] + b[bi + k]; }
  else if (bs === 0) {
    const y = b[bi];
    for (let k = 0; k < n; k++) o[oi + k] = a[ai + k * as] + y;
  } else {
    const x = a[ai];
    for (let k = 0; k < n; k++) o[oi + k] = x + b[bi + k];
  }
}

export function subN(
  a: NumArr,
  ai: number,
  as: number,
  b: NumArr,
  bi: number,
  bs: number,
  o: NumArr,
  oi: number,
  n: number,
): void {
  if (as === 1 && bs === 1) { for (let k = 0; k < n; k++) o[oi + k] = a[ai + k] - b[bi + k]; }
  else if (bs === 0) {
    const y = b[bi];
    for (let k = 0; k < n; k++) o[oi + k] = a[ai + k * as] - y;
  } else {
    const x = a[ai];
    for (let k = 0; k < n; k++) o[oi + k] = x - b[bi + k];
  }
}

export function mulN(
  a: NumArr,
  ai: number,
  as: number,
  b: NumArr,
  bi: number,
  bs: number,
  o: NumArr,
  oi: number,
  n: number,
): void {
  if (as === 1 && bs === 1) { for (let k = 0; k < n; k++) o[oi + k] = a[ai + k] * b[bi + k]; }
  else if (bs === 0) {
    const y = b[bi];
    for (let k = 0; k < n; k++) o[oi + k] = a[ai + k * as] * y;
  } else {
    const x = a[ai];
    for (let k = 0; k < n; k++) o[oi + k] = x * b[bi + k];
  }
}

/** 32-bit integer product: a double would lose the low bits that the wrap keeps. */
export function mulI(
  a: NumArr,
  ai: number,
  as: number,
  b: NumArr,
  bi: number,
  bs: number,
  o: NumArr,
  oi: number,
  n: number,
): void {
  for (let k = 0; k < n; k++, ai += as, bi += bs) o[oi + k] = Math.imul(a[ai], b[bi]);
}

export function divN(
  a: NumArr,
  ai: number,
  as: number,
  b: NumArr,
  bi: number,
  bs: number,
  o: NumArr,
  oi: number,
  n: number,
): void {
  if (as === 1 && bs === 1) { for (let k = 0; k < n; k++) o[oi + k] = a[ai + k] / b[bi + k]; }
  else if (bs === 0) {
    const y = b[bi];
    for (let k = 0; k < n; k++) o[oi + k] = a[ai + k * as] / y;
  } else {
    const x = a[ai];
    for (let k = 0; k < n; k++) o[oi + k] = x / b[bi + k];
  }
}

/**
 * Integer division truncates toward zero as in C. For operands below 2^32 the double quotient
 * is never close enough to an integer to round across it, so trunc(a/b) is exact. x/0 gives 0
 * (undefined in C; NaN stores as 0).
 */
export function divI(
  a: NumArr,
  ai: number,
  as: number,
  b: NumArr,
  bi: number,
  bs: number,
  o: NumArr,
  oi: number,
  n: number,
): void {
  for (let k = 0; k < n; k++, ai += as, bi += bs) o[oi + k] = Math.trunc(a[ai] / b[bi]);
}

export function maxN(
  a: NumArr,
  ai: number,
  as: number,
  b: NumArr,
  bi: number,
  bs: number,
  o: NumArr,
  oi: number,
  n: number,
): void {
  // NaN propagates, as numpy.maximum does.
  for (let k = 0; k < n; k++, ai += as, bi += bs) {
    const x = a[ai], y = b[bi];
    o[oi + k] = x > y || x !== x ? x : y;
  }
}

export function minN(
  a: NumArr,
  ai: number,
  as: number,
  b: NumArr,
  bi: number,
  bs: number,
  o: NumArr,
  oi: number,
  n: number,
): void {
  for (let k = 0; k < n; k++, ai += as, bi += bs) {
    const x = a[ai], y = b[bi];
    o[oi + k] = x < y || x !== x ? x : y;
  }
}

/** PRelu: a is X, b the slope. */
export function preluN(
  a: NumArr,
  ai: number,
  as: number,
  b: NumArr,
  bi: number,
  bs: number,
  o: NumArr,
  oi: number,
  n: number,
): void {
  if (bs === 0) {
    const s = b[bi];
    for (let k = 0; k < n; k++) {
      const x = a[ai + k];
      o[oi + k] = x < 0 ? x * s : x;
    }
  } else {
    for (let k = 0; k < n; k++, ai += as, bi += bs) {
      const x = a[ai];
      o[oi + k] = x < 0 ? x * b[bi] : x;
    }
  }
}

/** Pow for number dtypes; an integer output truncates the double result like a C cast. */
export function powN(
  a: NumArr,
  ai: number,
  as: number,
  b: NumArr,
  bi: number,
  bs: number,
  o: NumArr,
  oi: number,
  n: number,
): void {
  if (bs === 0 && b[bi] === 2) {
    // x² is the common case (variance, squared error); a multiply is exact and cheaper.
    for (let k = 0; k < n; k++, ai += as) o[oi + k] = a[ai] * a[ai];
    return;
  }
  for (let k = 0; k < n; k++, ai += as, bi += bs) o[oi + k] = Math.pow(a[ai], b[bi]);
}

// BigInt (int64/uint64) kernels: the typed-array store wraps to 64 bits.

export function addB(
  a: BigArr,
  ai: number,
  as: number,
  b: BigArr,
  bi: number,
  bs: number,
  o: BigArr,
  oi: number,
  n: number,
): void {
  for (let k = 0; k < n; k++, ai += as, bi += bs) o[oi + k] = a[ai] + b[bi];
}

export function subB(
  a: BigArr,
  ai: number,
  as: number,
  b: BigArr,
  bi: number,
  bs: number,
  o: BigArr,
  oi: number,
  n: number,
): void {
  for (let k = 0; k < n; k++, ai += as, bi += bs) o[oi + k] = a[ai] - b[bi];
}

export function mulB(
  a: BigArr,
  ai: number,
  as: number,
  b: BigArr,
  bi: number,
  bs: number,
  o: BigArr,
  oi: number,
  n: number,
): void {
  for (let k = 0; k < n; k++, ai += as, bi += bs) o[oi + k] = a[ai] * b[bi];
}

/** BigInt division truncates toward zero; x/0 gives 0 instead of throwing. */
export function divB(
  a: BigArr,
  ai: number,
  as: number,
  b: BigArr,
  bi: number,
  bs: number,
  o: BigArr,
  oi: number,
  n: number,
): void {
  for (let k = 0; k < n; k++, ai += as, bi += bs) {
    const y = b[bi];
    o[oi + k] = y === 0n ? 0n : a[ai] / y;
  }
}

export function maxB(
  a: BigArr,
  ai: number,
  as: number,
  b: BigArr,
  bi: number,
  bs: number,
  o: BigArr,
  oi: number,
  n: number,
): void {
  for (let k = 0; k < n; k++, ai += as, bi += bs) {
    const x = a[ai], y = b[bi];
    o[oi + k] = x > y ? x : y;
  }
}

export function minB(
  a: BigArr,
  ai: number,
  as: number,
  b: BigArr,
  bi: number,
  bs: number,
  o: BigArr,
  oi: number,
  n: number,
): void {
  for (let k = 0; k < n; k++, ai += as, bi += bs) {
    const x = a[ai], y = b[bi];
    o[oi + k] = x < y ? x : y;
  }
}

export function preluB(
  a: BigArr,
  ai: number,
  as: number,
  b: BigArr,
  bi: number,
  bs: number,
  o: BigArr,
  oi: number,
  n: number,
): void {
  for (let k = 0; k < n; k++, ai += as, bi += bs) {
    const x = a[ai];
    o[oi + k] = x < 0n ? x * b[bi] : x;
  }
}

/** x^y for 64-bit integers, by squaring with a wrap after each product (exact mod 2^64). */
export function powBig(x: bigint, y: number): bigint {
  if (!Number.isInteger(y) || y < 0) {
    // Fractional or negative exponent: the C result is the truncated double.
    return floatToBig(Math.pow(Number(x), y));
  }
  let r = 1n, base = x, e = y;
  while (e > 0) {
    if (e % 2 === 1) r = BigInt.asIntN(64, r * base);
    e = Math.floor(e / 2);
    if (e > 0) base = BigInt.asIntN(64, base * base);
  }
  return r;
}

/** C-like float → int64 (truncate); NaN → 0 and ±∞ → the int64 limits, instead of throwing. */
export function floatToBig(v: number): bigint {
  if (v !== v) return 0n;
  if (v === Infinity) return 0x7fffffffffffffffn;
  if (v === -Infinity) return -0x8000000000000000n;
  return BigInt(Math.trunc(v));
}

// Kernels that read any dtype (comparisons): both operands share one dtype, so comparing the
// elements as read (number or bigint) is exact.
type Cmp = BinKernel<ArrayLike<number | bigint>, ArrayLike<number | bigint>, Uint8Array>;

export const equalK: Cmp = (a, ai, as, b, bi, bs, o, oi, n) => {
  for (let k = 0; k < n; k++, ai += as, bi += bs) o[oi + k] = a[ai] === b[bi] ? 1 : 0;
};
export const lessK: Cmp = (a, ai, as, b, bi, bs, o, oi, n) => {
  for (let k = 0; k < n; k++, ai += as, bi += bs) o[oi + k] = a[ai] < b[bi] ? 1 : 0;
};
export const lessEqK: Cmp = (a, ai, as, b, bi, bs, o, oi, n) => {
  for (let k = 0; k < n; k++, ai += as, bi += bs) o[oi + k] = a[ai] <= b[bi] ? 1 : 0;
};
export const greaterK: Cmp = (a, ai, as, b, bi, bs, o, oi, n) => {
  for (let k = 0; k < n; k++, ai += as, bi += bs) o[oi + k] = a[ai] > b[bi] ? 1 : 0;
};
export const greaterEqK: Cmp = (a, ai, as, b, bi, bs, o, oi, n) => {
  for (let k = 0; k < n; k++, ai += as, bi += bs) o[oi + k] = a[ai] >= b[bi] ? 1 : 0;
};

/** A kernel applying f per element: for the ops too rare to deserve their own loops. */
export function mapKernel<A, B, O>(
  f: (x: A, y: B) => O,
): BinKernel<ArrayLike<A>, ArrayLike<B>, { [i: number]: O }> {
  return (a, ai, as, b, bi, bs, o, oi, n) => {
    for (let k = 0; k < n; k++, ai += as, bi += bs) o[oi + k] = f(a[ai], b[bi]);
  };
}

/** Where over one run of a 3-input plan. */
export function runWhere(p: Plan, c: Uint8Array, x: Slots, y: Slots, o: Slots): void {
  const [cs, xs, ys] = p.steps, n = p.n;
  const run = (oi: number, ci: number, xi: number, yi: number) => {
    for (let k = 0; k < n; k++, ci += cs, xi += xs, yi += ys) o[oi + k] = c[ci] ? x[xi] : y[yi];
  };
  if (p.outer.length === 0) run(0, 0, 0, 0);
  else eachRun(p, (oi, offs) => run(oi, offs[0], offs[1], offs[2]));
}

// ---------------------------------------------------------------------------------------------
// float16 (IEEE binary16 bits in a Uint16Array)

const f32Box = new Float32Array(1);
const u32Box = new Uint32Array(f32Box.buffer);

/** float → binary16 bits, rounding to nearest even (from the float32 value of x). */
export function f32ToF16(x: number): number {
  f32Box[0] = x;
  const b = u32Box[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // inf / NaN
  const e = exp - 112; // rebias 127 → 15
  if (e >= 0x1f) return sign | 0x7c00; // overflow → ±inf
  if (e <= 0) {
    // Subnormal half: the value in units of 2^-24 is sig >> (14 - e).
    if (e < -10) return sign; // below half the smallest subnormal → ±0
    const sig = mant | 0x800000;
    const shift = 14 - e;
    let h = sig >>> shift;
    const rem = sig & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent, up to ±inf: exactly what rounding wants.
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return h;
}

let f16Table: Float32Array | undefined;

/** binary16 bits → value, through a 64K-entry table built on first use. */
export function f16Values(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    t[h] = e === 0
      ? s * m * 2 ** -24
      : e === 0x1f
      ? (m ? NaN : s * Infinity)
      : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return (f16Table = t);
}

export function f16ToF32Array(src: Uint16Array): Float32Array {
  const t = f16Values(), n = src.length, out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = t[src[i]];
  return out;
}

export function toF16Array(src: ArrayLike<number>, dst: Uint16Array): void {
  const n = dst.length;
  for (let i = 0; i < n; i++) dst[i] = f32ToF16(src[i]);
}

// ---------------------------------------------------------------------------------------------
// Scalar math

const TWO_OVER_SQRT_PI = 1.1283791670955126;

/**
 * erf to ~1e-7 relative: a Taylor series near 0 (where erf ≈ 1.13x and an absolute error bound
 * would be a large relative one), the Chebyshev fit of erfc (Numerical Recipes' erfcc,
 * fractional error < 1.2e-7) elsewhere.
 */
export function erf(x: number): number {
  const z = Math.abs(x);
  if (z < 0.5) {
    // Σ (-1)^k x^(2k+1) / (k! (2k+1)); at |x| < 0.5 the 8th term is ~1e-11 of the sum.
    const x2 = x * x;
    let term = x, sum = x;
    for (let k = 1; k < 8; k++) {
      term *= -x2 / k;
      sum += term / (2 * k + 1);
    }
    return TWO_OVER_SQRT_PI * sum;
  }
  const t = 1 / (1 + 0.5 * z);
  const erfc = t * Math.exp(
    -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
                  t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
                                  t * (-0.82215223 + t * 0.17087277)))))))),
  );
  return x >= 0 ? 1 - erfc : erfc - 1;
}

/** Round half to even (ONNX Round, numpy.round). */
export function roundEven(x: number): number {
  const r = Math.round(x); // half up
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** log(1 + e^x) without overflow for large x. */
export function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/** Copies src into dst element by element (any dtypes of the same kind). */
export function copyData(src: TensorData, dst: TensorData): void {
  (dst as unknown as { set(a: ArrayLike<unknown>): void }).set(src as ArrayLike<unknown>);
}
