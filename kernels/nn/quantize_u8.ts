// DynamicQuantizeLinear's two passes (ONNX semantics, exact in every build):
//   range: lo = min(0, min x), hi = max(0, max x), NaNs skipped;
//   quantize: y = saturate_u8(round_half_even(x / scale) + zero_point), the division in f32
//     (NaN → 0, ±inf → 255/0 by the saturation).
// The scale and zero point between them are computed by the caller from lo and hi
// (src/ops/quant.ts's arithmetic), so the kernel and the TypeScript op agree bit for bit.

/** out[0] = min(0, min x), out[1] = max(0, max x) over n floats; NaNs are skipped. */
export function rangeF32(n: i32, x: usize, out: usize): void {
  let lo: f32 = 0, hi: f32 = 0;
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    // pmin(a, v) is v < a ? v : a: false for a NaN v, which is thereby skipped.
    let vlo = f32x4.splat(0), vhi = f32x4.splat(0);
    for (; i + 4 <= n; i += 4) {
      const v = v128.load(x + (<usize>i << 2));
      vlo = f32x4.pmin(vlo, v);
      vhi = f32x4.pmax(vhi, v);
    }
    // The lanes hold no NaN (they started at 0 and skipped NaNs).
    lo = Mathf.min(
      Mathf.min(f32x4.extract_lane(vlo, 0), f32x4.extract_lane(vlo, 1)),
      Mathf.min(f32x4.extract_lane(vlo, 2), f32x4.extract_lane(vlo, 3)),
    );
    hi = Mathf.max(
      Mathf.max(f32x4.extract_lane(vhi, 0), f32x4.extract_lane(vhi, 1)),
      Mathf.max(f32x4.extract_lane(vhi, 2), f32x4.extract_lane(vhi, 3)),
    );
  }
  for (; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  store<f32>(out, lo);
  store<f32>(out, hi, 4);
}

/** y[i] = saturate_u8(round_half_even(x[i] / scale) + zp) for n floats. */
export function quantizeU8(n: i32, x: usize, scale: f32, zp: i32, y: usize): void {
  const fz = <f32>zp;
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const vs = f32x4.splat(scale), vz = f32x4.splat(fz);
    const lo = f32x4.splat(0), hi = f32x4.splat(255);
    for (; i + 16 <= n; i += 16) {
      const p = x + (<usize>i << 2);
      // pmax/pmin (one instruction each) keep a NaN lane NaN; trunc_sat turns it into 0, as
      // the scalar path does.
      const q0 = f32x4.pmin(f32x4.pmax(f32x4.add(f32x4.nearest(f32x4.div(v128.load(p), vs)), vz), lo), hi);
      const q1 = f32x4.pmin(f32x4.pmax(f32x4.add(f32x4.nearest(f32x4.div(v128.load(p, 16), vs)), vz), lo), hi);
      const q2 = f32x4.pmin(f32x4.pmax(f32x4.add(f32x4.nearest(f32x4.div(v128.load(p, 32), vs)), vz), lo), hi);
      const q3 = f32x4.pmin(f32x4.pmax(f32x4.add(f32x4.nearest(f32x4.div(v128.load(p, 48), vs)), vz), lo), hi);
      const a = i16x8.narrow_i32x4_s(i32x4.trunc_sat_f32x4_s(q0), i32x4.trunc_sat_f32x4_s(q1));
      const b = i16x8.narrow_i32x4_s(i32x4.trunc_sat_f32x4_s(q2), i32x4.trunc_sat_f32x4_s(q3));
      v128.store(y + <usize>i, i8x16.narrow_i16x8_u(a, b));
    }
  }
  for (; i < n; i++) {
    let q = nearest<f32>(load<f32>(x + (<usize>i << 2)) / scale) + fz;
    // NaN fails both tests and becomes 0 below, as in the SIMD path.
    q = q < 0 ? 0 : q > 255 ? 255 : q;
    store<u8>(y + <usize>i, q != q ? 0 : <u8>(<i32>q));
  }
}

/** y[i] = f32(x[i] − zp) · scale for n uint8 values (DequantizeLinear, per tensor; exact). */
export function dequantizeU8(n: i32, x: usize, scale: f32, zp: i32, y: usize): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const vs = f32x4.splat(scale), vz = i32x4.splat(zp);
    for (; i + 16 <= n; i += 16) {
      const b = v128.load(x + <usize>i);
      const lo = i16x8.extend_low_i8x16_u(b), hi = i16x8.extend_high_i8x16_u(b);
      const p = y + (<usize>i << 2);
      const q0 = i32x4.sub(i32x4.extend_low_i16x8_u(lo), vz);
      const q1 = i32x4.sub(i32x4.extend_high_i16x8_u(lo), vz);
      const q2 = i32x4.sub(i32x4.extend_low_i16x8_u(hi), vz);
      const q3 = i32x4.sub(i32x4.extend_high_i16x8_u(hi), vz);
      v128.store(p, f32x4.mul(f32x4.convert_i32x4_s(q0), vs));
      v128.store(p, f32x4.mul(f32x4.convert_i32x4_s(q1), vs), 16);
      v128.store(p, f32x4.mul(f32x4.convert_i32x4_s(q2), vs), 32);
      v128.store(p, f32x4.mul(f32x4.convert_i32x4_s(q3), vs), 48);
    }
  }
  for (; i < n; i++) {
    store<f32>(y + (<usize>i << 2), <f32>(<i32>load<u8>(x + <usize>i) - zp) * scale);
  }
}
