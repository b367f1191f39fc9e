// Output stage of the int8 kernels: turns an i32 accumulator into the requested output.
//
// Output parameters (`params`, 32-byte header then per-channel arrays, Np = N rounded up to 8):
//   struct i8_out_params {
//     i32 zero_point;  // +0   output zero point (requantizing modes)
//     i32 qmin, qmax;  // +4   clamp in the output integer domain (zero point included); a
//                      //      fused ReLU is qmin = zero_point
//     i32 _pad;        // +12
//     f32 fmin, fmax;  // +16  clamp for MODE_F32
//     i32 _pad2[2];    // +24
//     // MODE_GEMMLOWP_*:  i32 multiplier[Np]   Q31 fixed-point multiplier in [2^30, 2^31)
//     //                   i32 left_mul[Np]     2^left_shift (multiplier > 1; TFLite's shift > 0)
//     //                   i32 right_mask[Np]   2^right_shift - 1
//     //                   i64 right_pow[Np]    2^(32 - right_shift), right_shift in [0, 31]
//     // MODE_FP32_*, MODE_F32: f32 scale[Np]
//   }
// GEMMLOWP follows TFLite's MultiplyByQuantizedMultiplier exactly: RoundingDivideByPOT(
// SaturatingRoundingDoublingHighMul(acc * 2^left, multiplier), right). Wasm SIMD has no
// per-lane shift, so the per-channel right shift is a multiply by 2^(32-right) in i64 lanes
// followed by a fixed >> 32, which is exact. FP32 follows ONNX QLinearMatMul / ORT:
// round-half-to-even(f32(acc) * scale) + zero_point, clamped.
export const MODE_I32: i32 = 0;
export const MODE_GEMMLOWP_U8: i32 = 1;
export const MODE_GEMMLOWP_I8: i32 = 2;
export const MODE_FP32_U8: i32 = 3;
export const MODE_FP32_I8: i32 = 4;
export const MODE_F32: i32 = 5;
export const OUT_HEADER: i32 = 32;

// @ts-ignore: decorator
@inline export function outBytes(mode: i32): usize {
  return mode == MODE_I32 || mode == MODE_F32 ? 4 : 1;
}

// Per-channel arrays for column n: `pp` is the params base, `np4` = 4*Np.
// @ts-ignore: decorator
@inline function multAt(pp: usize, n: usize): usize {
  return pp + OUT_HEADER + (n << 2);
}
// @ts-ignore: decorator
@inline function powAt(pp: usize, np4: usize, n: usize): usize {
  return pp + OUT_HEADER + 3 * np4 + (n << 3);
}

// Requantizes the four lanes of columns n..n+3 with gemmlowp rounding.
// @ts-ignore: decorator
@inline export function gemmlowp4(acc: v128, pp: usize, np4: usize, n: usize): v128 {
  const ch = multAt(pp, n);
  const mult = v128.load(ch);
  const x = i32x4.mul(acc, v128.load(ch + np4)); // left shift as a multiply, wrapping like C
  const nudge = i64x2.splat(1 << 30);
  // SaturatingRoundingDoublingHighMul: (x*m + 2^30) >> 31. Saturation (x = m = INT_MIN)
  // cannot happen: multipliers are positive.
  let lo = i64x2.shr_s(i64x2.add(i64x2.extmul_low_i32x4_s(x, mult), nudge), 31);
  let hi = i64x2.shr_s(i64x2.add(i64x2.extmul_high_i32x4_s(x, mult), nudge), 31);
  const t = i32x4.shuffle(lo, hi, 0, 2, 4, 6);
  // RoundingDivideByPOT: floor(t / 2^r) + (remainder > threshold), threshold = mask/2 + (t < 0).
  const pw = powAt(pp, np4, n);
  lo = i64x2.shr_s(i64x2.mul(i64x2.extend_low_i32x4_s(t), v128.load(pw)), 32);
  hi = i64x2.shr_s(i64x2.mul(i64x2.extend_high_i32x4_s(t), v128.load(pw, 16)), 32);
  const q = i32x4.shuffle(lo, hi, 0, 2, 4, 6);
  const mask = v128.load(ch + 2 * np4);
  const rem = v128.and(t, mask);
  const thr = i32x4.sub(i32x4.shr_s(mask, 1), i32x4.lt_s(t, i32x4.splat(0)));
  return i32x4.sub(q, i32x4.gt_s(rem, thr));
}

// The same for one lane (scalar build and reference of the formula above).
// @ts-ignore: decorator
@inline export function gemmlowp1(acc: i32, pp: usize, np4: usize, n: usize): i32 {
  const ch = multAt(pp, n);
  const x = acc * load<i32>(ch + np4);
  const t = <i32>((<i64>x * <i64>load<i32>(ch) + (1 << 30)) >> 31);
  const q = <i32>((<i64>t * load<i64>(powAt(pp, np4, n))) >> 32);
  const mask = load<i32>(ch + 2 * np4);
  const thr = (mask >> 1) + (t < 0 ? 1 : 0);
  return q + ((t & mask) > thr ? 1 : 0);
}

// @ts-ignore: decorator
@inline export function scaleAt(pp: usize, n: usize): usize {
  return multAt(pp, n);
}

// fp32 requantization of four lanes, before the zero point: round-half-even of the product
// clamped to [lo, hi] = [qmin − zp, qmax − zp].
// @ts-ignore: decorator
@inline export function fp32q4(acc: v128, scale: v128, lo: v128, hi: v128): v128 {
  const v = f32x4.pmin(hi, f32x4.pmax(lo, f32x4.mul(f32x4.convert_i32x4_s(acc), scale)));
  // Adding 1.5·2^23 rounds |v| < 2^22 half-to-even into the low mantissa bits (the clamp keeps
  // |v| ≤ 510); subtracting the constant's bit pattern leaves the integer. Same result as
  // trunc_sat(nearest(v)) in two instructions instead of V8's longer trunc_sat sequence.
  return i32x4.sub(f32x4.add(v, f32x4.splat(ROUND_MAGIC)), i32x4.splat(ROUND_MAGIC_BITS));
}

const ROUND_MAGIC: f32 = 12582912.0;
const ROUND_MAGIC_BITS: i32 = 0x4b400000;

// @ts-ignore: decorator
@inline export function fp32q1(acc: i32, scale: f32, lo: f32, hi: f32): i32 {
  // In range after the clamp, so the conversion cannot trap.
  return <i32>nearest<f32>(min(max(<f32>acc * scale, lo), hi));
}
