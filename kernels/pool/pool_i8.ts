// int8 (u8 or i8, T) max and average pooling over NHWC activations, vectorized over channels
// (16 per v128). Window handling is that of pool_f32.ts (taps inside the input only).
//
// Max is the exact maximum of the raw quantized values (same scale and zero point in and
// out); a window with no tap inside the input gives the type's minimum.
//
// Average (com.microsoft QLinearAveragePool / QLinearGlobalAveragePool) uses MLAS's global
// average formula for every window, in f32:
//   y = clamp(round_half_even(f32(Σ (x − x_zero)) · f32(x_scale / (y_scale · count))) + y_zero,
//             qmin, qmax)
// where the sum runs over the taps inside the input (a padded tap is the real value 0, i.e.
// x_zero, and adds nothing) and count is the divisor of the f32 kernel (count_include_pad).
// y_scale · count and the division are each rounded to f32, as MLAS computes its scale.
// (onnxruntime's windowed QLinearAveragePool instead averages dequantized f32 values; the two
// can differ by one in rare rounding cases.)
//
// The sums are exact: taps accumulate in i16 lanes (widened from 8 bits) and move to i32
// lanes every 128 taps, before an i16 lane could overflow (128 · 255 < 2^15). The caller
// keeps count ≤ 2^23, so neither the i32 sums nor f32(count) lose anything.
import { fp32q1, fp32q4 } from "../gemm/requant";
import { tapBegin, tapCount, tapEnd } from "./window";

const FLUSH_TAPS: i32 = 128;

// @ts-ignore: decorator
@inline function vmax<T>(a: v128, b: v128): v128 {
  return isSigned<T>() ? i8x16.max_s(a, b) : i8x16.max_u(a, b);
}

// @ts-ignore: decorator
@inline function lowest<T>(): i32 {
  return isSigned<T>() ? -128 : 0;
}

// @ts-ignore: decorator
@inline function extLo<T>(v: v128): v128 {
  return isSigned<T>() ? i16x8.extend_low_i8x16_s(v) : i16x8.extend_low_i8x16_u(v);
}

// @ts-ignore: decorator
@inline function extHi<T>(v: v128): v128 {
  return isSigned<T>() ? i16x8.extend_high_i8x16_s(v) : i16x8.extend_high_i8x16_u(v);
}

// Lanes are already clamped to [qmin, qmax] within T's range, so saturation never bites.
// @ts-ignore: decorator
@inline function narrow<T>(q0: v128, q1: v128, q2: v128, q3: v128): v128 {
  const a = i16x8.narrow_i32x4_s(q0, q1);
  const b = i16x8.narrow_i32x4_s(q2, q3);
  return isSigned<T>() ? i8x16.narrow_i16x8_s(a, b) : i8x16.narrow_i16x8_u(a, b);
}

// ---- max ---------------------------------------------------------------------------------

// 64 channels: four independent max chains.
// @ts-ignore: decorator
@inline function max64<T>(p: usize, ny: i32, nx: i32, ry: usize, rx: usize, y: usize): void {
  const init = i8x16.splat(<i8>lowest<T>());
  let a0 = init, a1 = init, a2 = init, a3 = init;
  for (let i = 0; i < ny; i++) {
    let q = p;
    for (let j = 0; j < nx; j++) {
      a0 = vmax<T>(a0, v128.load(q));
      a1 = vmax<T>(a1, v128.load(q, 16));
      a2 = vmax<T>(a2, v128.load(q, 32));
      a3 = vmax<T>(a3, v128.load(q, 48));
      q += rx;
    }
    p += ry;
  }
  v128.store(y, a0);
  v128.store(y, a1, 16);
  v128.store(y, a2, 32);
  v128.store(y, a3, 48);
}

// 16 channels, or 8 when `half` (64-bit loads and store, for 8 ≤ C < 16).
// @ts-ignore: decorator
@inline function max16<T>(
  half: bool, p: usize, ny: i32, nx: i32, ry: usize, rx: usize, y: usize,
): void {
  let a = i8x16.splat(<i8>lowest<T>());
  for (let i = 0; i < ny; i++) {
    let q = p;
    for (let j = 0; j < nx; j++) {
      a = vmax<T>(a, half ? v128.load64_zero(q) : v128.load(q));
      q += rx;
    }
    p += ry;
  }
  if (half) v128.store64_lane(y, a, 0);
  else v128.store(y, a);
}

// @ts-ignore: decorator
@inline function max1<T>(p: usize, ny: i32, nx: i32, ry: usize, rx: usize, y: usize): void {
  let a = lowest<T>();
  for (let i = 0; i < ny; i++) {
    let q = p;
    for (let j = 0; j < nx; j++) {
      const v = <i32>load<T>(q);
      a = v > a ? v : a;
      q += rx;
    }
    p += ry;
  }
  store<T>(y, <T>a);
}

// @ts-ignore: decorator
@inline function maxPixel<T>(
  p: usize, ny: i32, nx: i32, ry: usize, rx: usize, c: i32, y: usize,
): void {
  let ch = 0;
  if (ASC_FEATURE_SIMD) {
    for (; ch + 64 <= c; ch += 64) max64<T>(p + ch, ny, nx, ry, rx, y + ch);
    for (; ch + 16 <= c; ch += 16) max16<T>(false, p + ch, ny, nx, ry, rx, y + ch);
    if (ch < c && c >= 16) {
      // Overlapping tail: recomputes up to 15 channels rather than store partially.
      max16<T>(false, p + c - 16, ny, nx, ry, rx, y + c - 16);
      ch = c;
    }
    if (c >= 8 && c < 16) {
      max16<T>(true, p, ny, nx, ry, rx, y);
      max16<T>(true, p + c - 8, ny, nx, ry, rx, y + c - 8);
      ch = c;
    }
  }
  for (; ch < c; ch++) max1<T>(p + ch, ny, nx, ry, rx, y + ch);
}

export function maxPoolI8<T>(
  x: usize, n: i32, h: i32, w: i32, c: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32,
  dw: i32, pt: i32, pl: i32, oh: i32, ow: i32, y: usize,
): void {
  const pixB = <usize>c;
  const rowB = <usize>w * pixB;
  const ry = rowB * <usize>dh;
  const rx = pixB * <usize>dw;
  for (let b = 0; b < n; b++) {
    const xb = x + <usize>b * <usize>h * rowB;
    for (let oy = 0; oy < oh; oy++) {
      const sy = oy * sh - pt;
      const ky0 = tapBegin(sy, dh, 0);
      const ny = max(0, tapEnd(sy, dh, kh, h) - ky0);
      const xr = xb + <usize>(sy + ky0 * dh) * rowB;
      for (let ox = 0; ox < ow; ox++) {
        const sx = ox * sw - pl;
        const kx0 = tapBegin(sx, dw, 0);
        const nx = max(0, tapEnd(sx, dw, kw, w) - kx0);
        maxPixel<T>(xr + <usize>(sx + kx0 * dw) * pixB, ny, nx, ry, rx, c, y);
        y += pixB;
      }
    }
  }
}

// ---- average -----------------------------------------------------------------------------

// Requantizes four i32 sums: (sum − bias) · scale, rounded half to even, clamped, + y_zero.
// @ts-ignore: decorator
@inline function requant4(
  acc: v128, bias: v128, scale: v128, lo: v128, hi: v128, yz: v128,
): v128 {
  return i32x4.add(fp32q4(i32x4.sub(acc, bias), scale, lo, hi), yz);
}

// 16 channels, or 8 when `half` (8 ≤ C < 16).
// @ts-ignore: decorator
@inline function avg16<T>(
  half: bool, p: usize, ny: i32, nx: i32, ry: usize, rx: usize, y: usize,
  bias: v128, scale: v128, lo: v128, hi: v128, yz: v128,
): void {
  const zero = i32x4.splat(0);
  let s0 = zero, s1 = zero;
  let a0 = zero, a1 = zero, a2 = zero, a3 = zero;
  let t = 0;
  for (let i = 0; i < ny; i++) {
    let q = p;
    for (let j = 0; j < nx; j++) {
      const v = half ? v128.load64_zero(q) : v128.load(q);
      s0 = i16x8.add(s0, extLo<T>(v));
      if (!half) s1 = i16x8.add(s1, extHi<T>(v));
      q += rx;
      if (++t == FLUSH_TAPS) {
        a0 = i32x4.add(a0, i32x4.extend_low_i16x8_s(s0));
        a1 = i32x4.add(a1, i32x4.extend_high_i16x8_s(s0));
        if (!half) {
          a2 = i32x4.add(a2, i32x4.extend_low_i16x8_s(s1));
          a3 = i32x4.add(a3, i32x4.extend_high_i16x8_s(s1));
        }
        s0 = zero;
        s1 = zero;
        t = 0;
      }
    }
    p += ry;
  }
  a0 = i32x4.add(a0, i32x4.extend_low_i16x8_s(s0));
  a1 = i32x4.add(a1, i32x4.extend_high_i16x8_s(s0));
  const q0 = requant4(a0, bias, scale, lo, hi, yz);
  const q1 = requant4(a1, bias, scale, lo, hi, yz);
  if (half) {
    v128.store64_lane(y, narrow<T>(q0, q1, q0, q1), 0);
    return;
  }
  a2 = i32x4.add(a2, i32x4.extend_low_i16x8_s(s1));
  a3 = i32x4.add(a3, i32x4.extend_high_i16x8_s(s1));
  const q2 = requant4(a2, bias, scale, lo, hi, yz);
  const q3 = requant4(a3, bias, scale, lo, hi, yz);
  v128.store(y, narrow<T>(q0, q1, q2, q3));
}

// @ts-ignore: decorator
@inline function avg1<T>(
  p: usize, ny: i32, nx: i32, ry: usize, rx: usize, y: usize,
  bias: i32, scale: f32, lo: f32, hi: f32, yz: i32,
): void {
  let s = 0;
  for (let i = 0; i < ny; i++) {
    let q = p;
    for (let j = 0; j < nx; j++) {
      s += <i32>load<T>(q);
      q += rx;
    }
    p += ry;
  }
  store<T>(y, <T>(fp32q1(s - bias, scale, lo, hi) + yz));
}

// @ts-ignore: decorator
@inline function avgPixel<T>(
  p: usize, ny: i32, nx: i32, ry: usize, rx: usize, c: i32, y: usize,
  bias: i32, scale: f32, lo: f32, hi: f32, yz: i32,
): void {
  let ch = 0;
  if (ASC_FEATURE_SIMD) {
    const vb = i32x4.splat(bias), vs = f32x4.splat(scale), vz = i32x4.splat(yz);
    const vlo = f32x4.splat(lo), vhi = f32x4.splat(hi);
    for (; ch + 16 <= c; ch += 16) {
      avg16<T>(false, p + ch, ny, nx, ry, rx, y + ch, vb, vs, vlo, vhi, vz);
    }
    if (ch < c && c >= 16) {
      avg16<T>(false, p + c - 16, ny, nx, ry, rx, y + c - 16, vb, vs, vlo, vhi, vz);
      ch = c;
    }
    if (c >= 8 && c < 16) {
      avg16<T>(true, p, ny, nx, ry, rx, y, vb, vs, vlo, vhi, vz);
      avg16<T>(true, p + c - 8, ny, nx, ry, rx, y + c - 8, vb, vs, vlo, vhi, vz);
      ch = c;
    }
  }
  for (; ch < c; ch++) avg1<T>(p + ch, ny, nx, ry, rx, y + ch, bias, scale, lo, hi, yz);
}

export function avgPoolI8<T>(
  x: usize, n: i32, h: i32, w: i32, c: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32,
  dw: i32, pt: i32, pl: i32, pb: i32, pr: i32, oh: i32, ow: i32, cip: bool,
  xz: i32, xs: f32, ys: f32, yz: i32, qmin: i32, qmax: i32, y: usize,
): void {
  const pixB = <usize>c;
  const rowB = <usize>w * pixB;
  const ry = rowB * <usize>dh;
  const rx = pixB * <usize>dw;
  // Clamp bounds relative to the zero point, as fp32q4 takes them.
  const lo = <f32>(qmin - yz), hi = <f32>(qmax - yz);
  for (let b = 0; b < n; b++) {
    const xb = x + <usize>b * <usize>h * rowB;
    for (let oy = 0; oy < oh; oy++) {
      const sy = oy * sh - pt;
      const ky0 = tapBegin(sy, dh, 0);
      const ny = max(0, tapEnd(sy, dh, kh, h) - ky0);
      const cy = cip ? tapCount(sy, dh, kh, -pt, h + pb) : ny;
      const xr = xb + <usize>(sy + ky0 * dh) * rowB;
      for (let ox = 0; ox < ow; ox++) {
        const sx = ox * sw - pl;
        const kx0 = tapBegin(sx, dw, 0);
        const nx = max(0, tapEnd(sx, dw, kw, w) - kx0);
        const cx = cip ? tapCount(sx, dw, kw, -pl, w + pr) : nx;
        const count = max(1, cy * cx);
        const scale: f32 = xs / (ys * <f32>count);
        avgPixel<T>(
          xr + <usize>(sx + kx0 * dw) * pixB, ny, nx, ry, rx, c, y, xz * ny * nx, scale, lo, hi,
          yz,
        );
        y += pixB;
      }
    }
  }
}
