// Row-wise f32 kernels of transformer encoders: LayerNormalization, (scaled, masked) Softmax
// and Gelu. Each works on `rows` contiguous rows of `n` floats (row stride n), in place or
// not (y may equal x). SIMD builds handle four lanes at a time with a scalar tail; sums are
// accumulated per lane, then across lanes, so the rounding differs from the scalar build
// only in summation order.
//
// exp and erf are computed the same way in every build (one polynomial per function, lanes
// or scalars), so builds differ only through summation order:
//   exp(x): x clamped to [−87.3, 88.7]; n = nearest(x·log2 e); r = x − n·ln2 (split in a
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

// @ts-ignore: decorator
@inline function expS(x: f32): f32 {
  x = x < EXP_LO ? EXP_LO : x > EXP_HI ? EXP_HI : x;
  const n: f32 = nearest<f32>(x * LOG2E);
  const r = x - n * LN2_HI - n * LN2_LO;
  const r2 = r * r;
  let p = P0;
  p = p * r + P1;
  p = p * r + P2;
  p = p * r + P3;
  p = p * r + P4;
  p = p * r + P5;
  p = p * r2 + r + 1;
  return p * reinterpret<f32>((<i32>n + 127) << 23);
}

// @ts-ignore: decorator
@inline function expV(x: v128): v128 {
  x = f32x4.min(f32x4.max(x, f32x4.splat(EXP_LO)), f32x4.splat(EXP_HI));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(LOG2E)));
  const r = f32x4.sub(
    f32x4.sub(x, f32x4.mul(n, f32x4.splat(LN2_HI))),
    f32x4.mul(n, f32x4.splat(LN2_LO)),
  );
  const r2 = f32x4.mul(r, r);
  let p = f32x4.splat(P0);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P4));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P5));
  p = f32x4.add(f32x4.add(f32x4.mul(p, r2), r), f32x4.splat(1));
  const bits = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
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
  const z = f32x4.mul(x, f32x4.splat(INV_SQRT2));
  const az = f32x4.abs(z);
  const t = f32x4.div(f32x4.splat(1), f32x4.add(f32x4.splat(1), f32x4.mul(f32x4.splat(ERF_P), az)));
  let q = f32x4.splat(A5);
  q = f32x4.add(f32x4.mul(q, t), f32x4.splat(A4));
  q = f32x4.add(f32x4.mul(q, t), f32x4.splat(A3));
  q = f32x4.add(f32x4.mul(q, t), f32x4.splat(A2));
  q = f32x4.add(f32x4.mul(q, t), f32x4.splat(A1));
  const e = f32x4.sub(
    f32x4.splat(1),
    f32x4.mul(f32x4.mul(q, t), expV(f32x4.neg(f32x4.mul(az, az)))),
  );
  // Copy z's sign bit onto e (erf is odd).
  const sign = v128.and(z, i32x4.splat(0x80000000));
  const erf = v128.or(e, sign);
  return f32x4.mul(f32x4.mul(f32x4.splat(0.5), x), f32x4.add(f32x4.splat(1), erf));
}

// @ts-ignore: decorator
@inline function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) +
    (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

// @ts-ignore: decorator
@inline function hmax(v: v128): f32 {
  return Mathf.max(
    Mathf.max(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)),
    Mathf.max(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)),
  );
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
        vmax = f32x4.max(vmax, z);
      }
      mx = hmax(vmax);
    }
    for (; i < n; i++) {
      const o = <usize>i << 2;
      let z = load<f32>(px + o) * scale;
      if (mask) z += load<f32>(pm + o);
      store<f32>(py + o, z);
      mx = Mathf.max(mx, z);
    }
    // A row of −inf (every position masked) gives NaN, as ORT's Softmax does.
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
