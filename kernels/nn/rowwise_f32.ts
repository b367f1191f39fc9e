// Row-wise f32 kernels of transformer encoders: LayerNormalization, (scaled, masked) Softmax
// and Gelu. Each works on `rows` contiguous rows of `n` floats (row stride n), in place or
// not (y may equal x). SIMD builds handle four lanes at a time with a scalar tail; sums are
// accumulated per lane, then across lanes, so the rounding differs from the scalar build
// only in summation order.
//
// exp and erf are computed the same way in every build (one polynomial per function, lanes
// or scalars), so builds differ only through summation order:
//   exp(x): x clamped to [−87.3, 88.7]; n = nearest(x·log2 e) (by the 1.5·2²³ rounding add); r = x − n·ln2 (split in a
//     high and low part); exp(r) by Cephes' degree-6 expf polynomial; ·2ⁿ by building the
//     exponent bits. Relative error ≤ 2 ulp in range; below −87.3 it returns ~1e-38, not 0.
//   erf(z): Abramowitz–Stegun 7.1.26, 1 − t·(a1 + t(a2 + t(a3 + t(a4 + t·a5))))·e^(−z²),
//     t = 1/(1 + p|z|), sign restored; absolute error ≤ 1.5e-7.

const LOG2E: f32 = 1.44269504;
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;
const EXP_LO: f32 = -87.3;
const EXP_HI: f32 = 88.7;
const P0: f32 = 1.9875691500e-4;
const P1: f32 = 1.3981999507e-3;
const P2: f32 = 8.3334519073e-3;
const P3: f32 = 4.1665795894e-2;
const P4: f32 = 1.6666665459e-1;
const P5: f32 = 5.0000001201e-1;
const ERF_P: f32 = 0.3275911;
const A1: f32 = 0.254829592;
const A2: f32 = -0.284496736;
const A3: f32 = 1.421413741;
const A4: f32 = -1.453152027;
const A5: f32 = 1.061405429;
const INV_SQRT2: f32 = 0.70710678;
const ROUND_MAGIC: f32 = 12582912.0; // 1.5·2²³
const ROUND_MAGIC_BITS: i32 = 0x4b400000;

// The vector constants, read with load32_splat: a v128.const in a loop body is rebuilt on
// every iteration by V8 (several instructions each), a broadcast load is one.
const K: usize = memory.data<f32>([
  EXP_LO, EXP_HI, LOG2E, ROUND_MAGIC, LN2_HI, LN2_LO, P0, P1, P2, P3, P4, P5, 1,
  ERF_P, A1, A2, A3, A4, A5, INV_SQRT2, 0.5,
]);
const KI: usize = memory.data<i32>([127 - ROUND_MAGIC_BITS, 0x80000000]);
// @ts-ignore: decorator
@inline function ki(i: i32): v128 {
  return v128.load32_splat(KI + (<usize>i << 2));
}
// @ts-ignore: decorator
@inline function k(i: i32): v128 {
  return v128.load32_splat(K + (<usize>i << 2));
}

// @ts-ignore: decorator
@inline function expS(x: f32): f32 {
  x = x < EXP_LO ? EXP_LO : x;
  x = x > EXP_HI ? EXP_HI : x;
  const t: f32 = x * LOG2E + ROUND_MAGIC;
  const n: f32 = t - ROUND_MAGIC;
  const r = x - n * LN2_HI - n * LN2_LO;
  const r2 = r * r;
  let p = P0;
  p = p * r + P1;
  p = p * r + P2;
  p = p * r + P3;
  p = p * r + P4;
  p = p * r + P5;
  p = p * r2 + r + 1;
  return p * reinterpret<f32>((reinterpret<i32>(t) + 127 - ROUND_MAGIC_BITS) << 23);
}

// @ts-ignore: decorator
@inline function expV(x: v128): v128 {
  // pmax/pmin are single instructions (min/max are NaN-exact sequences in V8); a NaN x
  // passes through and gives NaN.
  x = f32x4.pmin(f32x4.pmax(x, k(0)), k(1));
  // n = nearest(x·log2 e) by adding 1.5·2²³ (round-to-nearest-even of the f32 add, as
  // nearest() does): the sum's low mantissa bits are n, so 2ⁿ's exponent bits come from an
  // integer add and shift, avoiding V8's slow float → int conversion on x64.
  const t = f32x4.add(f32x4.mul(x, k(2)), k(3));
  const n = f32x4.sub(t, k(3));
  const r = f32x4.sub(f32x4.sub(x, f32x4.mul(n, k(4))), f32x4.mul(n, k(5)));
  const r2 = f32x4.mul(r, r);
  let p = k(6);
  p = f32x4.add(f32x4.mul(p, r), k(7));
  p = f32x4.add(f32x4.mul(p, r), k(8));
  p = f32x4.add(f32x4.mul(p, r), k(9));
  p = f32x4.add(f32x4.mul(p, r), k(10));
  p = f32x4.add(f32x4.mul(p, r), k(11));
  p = f32x4.add(f32x4.add(f32x4.mul(p, r2), r), k(12));
  const bits = i32x4.shl(i32x4.add(t, ki(0)), 23);
  return f32x4.mul(p, bits);
}

// @ts-ignore: decorator
@inline function geluS(x: f32): f32 {
  const z = x * INV_SQRT2;
  const az = Mathf.abs(z);
  const t: f32 = 1 / (1 + ERF_P * az);
  let q = A5;
  q = q * t + A4;
  q = q * t + A3;
  q = q * t + A2;
  q = q * t + A1;
  const e: f32 = <f32>1 - q * t * expS(-az * az);
  const erf = z < 0 ? -e : e;
  return 0.5 * x * (1 + erf);
}

// @ts-ignore: decorator
@inline function geluV(x: v128): v128 {
  const z = f32x4.mul(x, k(19));
  const az = f32x4.abs(z);
  const one = k(12);
  const t = f32x4.div(one, f32x4.add(one, f32x4.mul(k(13), az)));
  let q = k(18);
  q = f32x4.add(f32x4.mul(q, t), k(17));
  q = f32x4.add(f32x4.mul(q, t), k(16));
  q = f32x4.add(f32x4.mul(q, t), k(15));
  q = f32x4.add(f32x4.mul(q, t), k(14));
  const e = f32x4.sub(one, f32x4.mul(f32x4.mul(q, t), expV(f32x4.neg(f32x4.mul(az, az)))));
  // Copy z's sign bit onto e (erf is odd).
  const erf = v128.or(e, v128.and(z, ki(1)));
  return f32x4.mul(f32x4.mul(k(20), x), f32x4.add(one, erf));
}

// @ts-ignore: decorator
@inline function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) +
    (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

// @ts-ignore: decorator
@inline function hmax(v: v128): f32 {
  const a = f32x4.extract_lane(v, 0), b = f32x4.extract_lane(v, 1);
  const c = f32x4.extract_lane(v, 2), d = f32x4.extract_lane(v, 3);
  const ab = a > b ? a : b, cd = c > d ? c : d;
  return ab > cd ? ab : cd;
}

/** Sum of n floats at p. */
// @ts-ignore: decorator
@inline function rowSum(p: usize, n: i32): f32 {
  let i = 0;
  let s: f32 = 0;
  if (ASC_FEATURE_SIMD) {
    let acc = f32x4.splat(0);
    for (; i + 4 <= n; i += 4) acc = f32x4.add(acc, v128.load(p + (<usize>i << 2)));
    s = hsum(acc);
  }
  for (; i < n; i++) s += load<f32>(p + (<usize>i << 2));
  return s;
}

/**
 * y = (x − mean) / √(var + eps) · gamma + beta per row (biased variance, two passes). gamma
 * and beta hold n floats; beta may be 0 (no shift).
 */
export function layerNormF32(
  rows: i32, n: i32, x: usize, gamma: usize, beta: usize, eps: f32, y: usize,
): void {
  const rowBytes = <usize>n << 2;
  const invN: f32 = 1 / <f32>n;
  for (let r = 0; r < rows; r++) {
    const px = x + <usize>r * rowBytes, py = y + <usize>r * rowBytes;
    const mean = rowSum(px, n) * invN;
    let i = 0;
    let ss: f32 = 0;
    if (ASC_FEATURE_SIMD) {
      const vm = f32x4.splat(mean);
      let acc = f32x4.splat(0);
      for (; i + 4 <= n; i += 4) {
        const d = f32x4.sub(v128.load(px + (<usize>i << 2)), vm);
        acc = f32x4.add(acc, f32x4.mul(d, d));
      }
      ss = hsum(acc);
    }
    for (; i < n; i++) {
      const d = load<f32>(px + (<usize>i << 2)) - mean;
      ss += d * d;
    }
    const inv: f32 = 1 / Mathf.sqrt(ss * invN + eps);
    i = 0;
    if (ASC_FEATURE_SIMD) {
      const vm = f32x4.splat(mean), vi = f32x4.splat(inv);
      for (; i + 4 <= n; i += 4) {
        const o = <usize>i << 2;
        let v = f32x4.mul(f32x4.mul(f32x4.sub(v128.load(px + o), vm), vi), v128.load(gamma + o));
        if (beta) v = f32x4.add(v, v128.load(beta + o));
        v128.store(py + o, v);
      }
    }
    for (; i < n; i++) {
      const o = <usize>i << 2;
      let v = (load<f32>(px + o) - mean) * inv * load<f32>(gamma + o);
      if (beta) v += load<f32>(beta + o);
      store<f32>(py + o, v);
    }
  }
}

/**
 * y = softmax(scale·x + mask) per row. mask (0 for none) is read at mask + r·ldmask floats
 * for row r: ldmask = n for a full [rows, n] mask, 0 to share one row among all rows.
 */
export function softmaxF32(
  rows: i32, n: i32, x: usize, scale: f32, mask: usize, ldmask: i32, y: usize,
): void {
  const rowBytes = <usize>n << 2;
  for (let r = 0; r < rows; r++) {
    const px = x + <usize>r * rowBytes, py = y + <usize>r * rowBytes;
    const pm = mask + <usize>r * (<usize>ldmask << 2);
    // Pass 1: z = scale·x + mask into y, and its max.
    let i = 0;
    let mx: f32 = -Infinity;
    if (ASC_FEATURE_SIMD) {
      const vs = f32x4.splat(scale);
      let vmax = f32x4.splat(-Infinity);
      for (; i + 4 <= n; i += 4) {
        const o = <usize>i << 2;
        let z = f32x4.mul(v128.load(px + o), vs);
        if (mask) z = f32x4.add(z, v128.load(pm + o));
        v128.store(py + o, z);
        vmax = f32x4.pmax(vmax, z);
      }
      mx = hmax(vmax);
    }
    for (; i < n; i++) {
      const o = <usize>i << 2;
      let z = load<f32>(px + o) * scale;
      if (mask) z += load<f32>(pm + o);
      store<f32>(py + o, z);
      mx = z > mx ? z : mx;
    }
    // A NaN is skipped by the max but makes its exp, the sum and so the row NaN. A row of
    // −inf (every position masked) gives NaN too, as ORT's Softmax does.
    // Pass 2: e = exp(z − max), and the sum.
    i = 0;
    let s: f32 = 0;
    if (ASC_FEATURE_SIMD) {
      const vmx = f32x4.splat(mx);
      let acc = f32x4.splat(0);
      for (; i + 4 <= n; i += 4) {
        const o = <usize>i << 2;
        const e = expV(f32x4.sub(v128.load(py + o), vmx));
        v128.store(py + o, e);
        acc = f32x4.add(acc, e);
      }
      s = hsum(acc);
    }
    for (; i < n; i++) {
      const o = <usize>i << 2;
      const e = expS(load<f32>(py + o) - mx);
      store<f32>(py + o, e);
      s += e;
    }
    const inv: f32 = 1 / s;
    i = 0;
    if (ASC_FEATURE_SIMD) {
      const vi = f32x4.splat(inv);
      for (; i + 4 <= n; i += 4) {
        const o = <usize>i << 2;
        v128.store(py + o, f32x4.mul(v128.load(py + o), vi));
      }
    }
    for (; i < n; i++) {
      const o = <usize>i << 2;
      store<f32>(py + o, load<f32>(py + o) * inv);
    }
  }
}

/** y[i] = x[i] · Φ(x[i]) (Gelu with the exact erf form) for count floats. */
export function geluF32(count: i32, x: usize, y: usize): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 4 <= count; i += 4) {
      const o = <usize>i << 2;
      v128.store(y + o, geluV(v128.load(x + o)));
    }
  }
  for (; i < count; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, geluS(load<f32>(x + o)));
  }
}

// Binary element-wise ops for the residual and bias adds between the fused ops: y = a ∘ b with
// b repeating every bn elements (bn = n: same shape; bn = 1: a scalar; else b is a trailing
// block of a's shape). op: 0 add, 1 sub, 2 mul, 3 div.

// @ts-ignore: decorator
@inline function applyV(op: i32, a: v128, b: v128): v128 {
  if (op === 0) return f32x4.add(a, b);
  if (op === 1) return f32x4.sub(a, b);
  if (op === 2) return f32x4.mul(a, b);
  return f32x4.div(a, b);
}

// @ts-ignore: decorator
@inline function applyS(op: i32, a: f32, b: f32): f32 {
  if (op === 0) return a + b;
  if (op === 1) return a - b;
  if (op === 2) return a * b;
  return a / b;
}

// @ts-ignore: decorator
@inline function binaryBlocks(op: i32, n: i32, a: usize, b: usize, bn: i32, y: usize): void {
  if (bn === 1) {
    // A scalar b: one run over all of a.
    const sb = load<f32>(b);
    let i = 0;
    if (ASC_FEATURE_SIMD) {
      const vb = f32x4.splat(sb);
      for (; i + 4 <= n; i += 4) {
        const o = <usize>i << 2;
        v128.store(y + o, applyV(op, v128.load(a + o), vb));
      }
    }
    for (; i < n; i++) {
      const o = <usize>i << 2;
      store<f32>(y + o, applyS(op, load<f32>(a + o), sb));
    }
    return;
  }
  for (let base = 0; base < n; base += bn) {
    const pa = a + (<usize>base << 2), py = y + (<usize>base << 2);
    let i = 0;
    if (ASC_FEATURE_SIMD) {
      for (; i + 4 <= bn; i += 4) {
        const o = <usize>i << 2;
        v128.store(py + o, applyV(op, v128.load(pa + o), v128.load(b + o)));
      }
    }
    for (; i < bn; i++) {
      const o = <usize>i << 2;
      store<f32>(py + o, applyS(op, load<f32>(pa + o), load<f32>(b + o)));
    }
  }
}

export function binaryF32(op: i32, n: i32, a: usize, b: usize, bn: i32, y: usize): void {
  // One instantiation per op, so the op test leaves the inner loops.
  if (op === 0) binaryBlocks(0, n, a, b, bn, y);
  else if (op === 1) binaryBlocks(1, n, a, b, bn, y);
  else if (op === 2) binaryBlocks(2, n, a, b, bn, y);
  else binaryBlocks(3, n, a, b, bn, y);
}

/** y[i] = min(max(x[i], lo), hi) for n floats (Relu: lo 0, hi +inf); NaN stays NaN. */
export function clampF32(n: i32, x: usize, lo: f32, hi: f32, y: usize): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const vlo = f32x4.splat(lo), vhi = f32x4.splat(hi);
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      // pmax(v, lo) is v < lo ? lo : v and pmin(r, hi) is hi < r ? hi : r: a NaN (and −0)
      // passes through, exactly as the scalar comparisons below and the TypeScript op.
      const v = v128.load(x + o);
      v128.store(y + o, f32x4.pmin(f32x4.pmax(v, vlo), vhi));
    }
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    // In this order, as the TypeScript Clip: with lo > hi every value becomes hi.
    let v = load<f32>(x + o);
    v = v < lo ? lo : v;
    store<f32>(y + o, v > hi ? hi : v);
  }
}
