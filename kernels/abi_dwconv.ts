// Depthwise convolution ABI (f32 and int8), NHWC, channel multiplier 1: groups = Cin = Cout = C.
// A channel multiplier > 1 (Cout = m·Cin) is a grouped convolution: sqz_*_conv2d with groups = C.
// Conventions as in kernels/index.ts: caller-owned buffers at byte offsets, nothing allocates,
// the input must stay readable for 16 bytes past its end (channel-tail vector loads), and the
// output must not overlap the input.
//
// Weights come in ONNX layout [C][1][KH][KW] and are packed once by sqz_*_dwconv_pack into
// per-channel-group blocks (bias first, then the taps): kernels/pack/pack_dw.ts documents both
// formats. The packed size depends only on (C, KH, KW) and is the same in every build.
//
// Geometry (`dp`, 16 × i32; the first 14 fields are conv_params of kernels/conv/conv.ts):
//   struct dw_params {
//     i32 n, h, w, c;         // input NHWC
//     i32 kh, kw, sh, sw;     // kernel, strides
//     i32 dh, dw;             // dilations
//     i32 pad_top, pad_left;  // resolved padding (bottom/right follow from out_h/out_w)
//     i32 out_h, out_w;       // output spatial size; the output is [n][out_h][out_w][c]
//     i32 _reserved[2];       // 0
//   }
// Out-of-bounds taps are zero padding (f32) or the input zero point (int8): they contribute
// nothing. The caller (src/kernels/dwconv.ts) resolves auto_pad and checks that every padded
// extent fits i32.
import { dwPackedSizeF32, dwPackedSizeI8, packDwF32, packDwI8 } from "./pack/pack_dw";
import { dwconvF32 } from "./conv/dwconv_f32";
import { dwconvI8 } from "./conv/dwconv_i8";

export const SQZ_DWCONV_ABI: i32 = 1;

export function sqz_f32_dwconv_packed_size(c: i32, kh: i32, kw: i32): usize {
  return dwPackedSizeF32(c, kh, kw);
}

/** Packs f32 weights [C][1][KH][KW] at w and an optional f32 bias[C] (0 = none). */
export function sqz_f32_dwconv_pack(
  c: i32, kh: i32, kw: i32, w: usize, bias: usize, out: usize,
): void {
  packDwF32(c, kh, kw, w, bias, out);
}

/** y = clamp(depthwise(x) + bias, outMin, outMax); ReLU (0, +inf), ReLU6 (0, 6), none ±inf. */
export function sqz_f32_dwconv(
  dp: usize, x: usize, packed: usize, y: usize, outMin: f32, outMax: f32,
): void {
  dwconvF32(dp, x, packed, y, outMin, outMax);
}

export function sqz_i8_dwconv_packed_size(c: i32, kh: i32, kw: i32): usize {
  return dwPackedSizeI8(c, kh, kw);
}

/** Packs i8 weights [C][1][KH][KW] (values in [-127, 127]) and an optional i32 bias[C]. */
export function sqz_i8_dwconv_pack(
  c: i32, kh: i32, kw: i32, w: usize, bias: usize, out: usize,
): void {
  packDwI8(c, kh, kw, w, bias, out);
}

/**
 * int8 depthwise convolution (QLinearConv / ConvInteger): x is u8 (aSigned = 0) or i8 (1) with
 * zero point aZero; acc = bias + Σ (x − aZero)·w over in-bounds taps, KH·KW ≤ 65536. `mode`
 * and `params` select the output exactly as for sqz_i8_gemm (kernels/gemm/requant.ts), with
 * one channel per output column (params laid out for N = C).
 */
export function sqz_i8_dwconv(
  dp: usize, x: usize, aSigned: i32, aZero: i32, packed: usize, y: usize, mode: i32,
  params: usize,
): void {
  dwconvI8(dp, x, aSigned != 0, aZero, packed, y, mode, params);
}
