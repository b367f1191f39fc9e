// Pooling kernels ABI: max, average, global average and global max pooling in f32 and int8
// (u8 or i8), plus MaxPool's argmax. Conventions are those of kernels/index.ts: pointers are
// byte offsets into `memory`, the caller owns every buffer, nothing allocates, and no kernel
// reads or writes outside the tensors it is given (channel tails overlap instead of spilling).
//
// Layout is NHWC: element (n, y, x, c) of an N×H×W×C tensor is at index ((n·H + y)·W + x)·C + c,
// f32 elements 4 bytes, int8 elements 1 byte. Outputs are N×outH×outW×C (global pools:
// N×1×1×C). Input and output must not overlap.
//
// Window geometry comes resolved (src/kernels/conv_geometry.ts windowGeometry): kernel kh×kw,
// strides sh/sw, dilations dh/dw, padding padTop/padLeft (padBottom/padRight only matter to
// average pooling with countIncludePad), output size outH×outW; ONNX auto_pad and ceil_mode
// are folded into those numbers. Output (oy, ox) reads the taps at input row
// oy·sh − padTop + ky·dh and column ox·sw − padLeft + kx·dw; taps outside the input are skipped.
// Max ignores them. Average divides by the taps inside the input (countIncludePad = 0) or
// inside the padded input H+padTop+padBottom × W+padLeft+padRight (countIncludePad = 1); taps
// that a ceil_mode window puts beyond the padded input never count. A window with no tap
// inside the input yields −inf (f32 max), the type's minimum (int8 max) or an average of 0.
// Coordinates are i32: the padded sizes (H + padTop + padBottom, W + padLeft + padRight)
// stay ≤ 2^30 and every tensor under 2 GiB (src/kernels/pool.ts checks both).
//
// int8 average (kernels/pool/pool_i8.ts): onnxruntime's QLinearGlobalAveragePool formula (MLAS)
// for every window,
//   y = clamp(round_half_even(f32(Σ(x − xZero)) · f32(xScale / f32(yScale · count))) + yZero,
//             qmin, qmax)
// with qmin/qmax the output clamp in the integer domain (the type's range, or from yZero for a
// fused ReLU); the output has the input's type. The caller keeps the window's taps ≤ 2^23 and
// xScale/yScale finite and positive.
import { avgPoolF32, maxPoolF32 } from "./pool/pool_f32";
import { avgPoolI8, maxPoolI8 } from "./pool/pool_i8";
import { maxPoolIndices } from "./pool/pool_indices";

export const SQZ_POOL_ABI: i32 = 1;

// ---- f32 ---------------------------------------------------------------------------------

/** Max pooling; the result is clamped to [outMin, outMax] (−inf, +inf for none). */
export function sqz_f32_maxpool2d(
  x: usize, n: i32, h: i32, w: i32, c: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32,
  dw: i32, padTop: i32, padLeft: i32, outH: i32, outW: i32, y: usize, outMin: f32, outMax: f32,
): void {
  maxPoolF32(x, n, h, w, c, kh, kw, sh, sw, dh, dw, padTop, padLeft, outH, outW, y, outMin, outMax);
}

/** Average pooling (countIncludePad 0 or 1); the result is clamped to [outMin, outMax]. */
export function sqz_f32_avgpool2d(
  x: usize, n: i32, h: i32, w: i32, c: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32,
  dw: i32, padTop: i32, padLeft: i32, padBottom: i32, padRight: i32, outH: i32, outW: i32,
  countIncludePad: i32, y: usize, outMin: f32, outMax: f32,
): void {
  avgPoolF32(
    x, n, h, w, c, kh, kw, sh, sw, dh, dw, padTop, padLeft, padBottom, padRight, outH, outW,
    countIncludePad != 0, y, outMin, outMax,
  );
}

/** Global max pooling over the hw = H·W pixels of each image. */
export function sqz_f32_global_maxpool(x: usize, n: i32, hw: i32, c: i32, y: usize): void {
  maxPoolF32(x, n, 1, hw, c, 1, hw, 1, 1, 1, 1, 0, 0, 1, 1, y, -Infinity, Infinity);
}

/** Global average pooling: the sum of the hw pixels (in pixel order) divided by hw. */
export function sqz_f32_global_avgpool(x: usize, n: i32, hw: i32, c: i32, y: usize): void {
  avgPoolF32(x, n, 1, hw, c, 1, hw, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, false, y, -Infinity, Infinity);
}

/** Argmax of max pooling: i32 iy·W + ix per output element (−1 for a window of padding only). */
export function sqz_f32_maxpool2d_indices(
  x: usize, n: i32, h: i32, w: i32, c: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32,
  dw: i32, padTop: i32, padLeft: i32, outH: i32, outW: i32, indices: usize,
): void {
  maxPoolIndices<f32>(
    x, n, h, w, c, kh, kw, sh, sw, dh, dw, padTop, padLeft, outH, outW, indices,
  );
}

// ---- int8 (signed = 0: u8, 1: i8) --------------------------------------------------------

/** Max pooling of raw quantized values (scale and zero point pass through unchanged). */
export function sqz_i8_maxpool2d(
  x: usize, signed: i32, n: i32, h: i32, w: i32, c: i32, kh: i32, kw: i32, sh: i32, sw: i32,
  dh: i32, dw: i32, padTop: i32, padLeft: i32, outH: i32, outW: i32, y: usize,
): void {
  if (signed) {
    maxPoolI8<i8>(x, n, h, w, c, kh, kw, sh, sw, dh, dw, padTop, padLeft, outH, outW, y);
  } else {
    maxPoolI8<u8>(x, n, h, w, c, kh, kw, sh, sw, dh, dw, padTop, padLeft, outH, outW, y);
  }
}

/** QLinearAveragePool (see above); output of the input's type. */
export function sqz_i8_avgpool2d(
  x: usize, signed: i32, n: i32, h: i32, w: i32, c: i32, kh: i32, kw: i32, sh: i32, sw: i32,
  dh: i32, dw: i32, padTop: i32, padLeft: i32, padBottom: i32, padRight: i32, outH: i32,
  outW: i32, countIncludePad: i32, xZero: i32, xScale: f32, yScale: f32, yZero: i32,
  qmin: i32, qmax: i32, y: usize,
): void {
  const cip = countIncludePad != 0;
  if (signed) {
    avgPoolI8<i8>(
      x, n, h, w, c, kh, kw, sh, sw, dh, dw, padTop, padLeft, padBottom, padRight, outH, outW,
      cip, xZero, xScale, yScale, yZero, qmin, qmax, y,
    );
  } else {
    avgPoolI8<u8>(
      x, n, h, w, c, kh, kw, sh, sw, dh, dw, padTop, padLeft, padBottom, padRight, outH, outW,
      cip, xZero, xScale, yScale, yZero, qmin, qmax, y,
    );
  }
}

/** Global max pooling over the hw = H·W pixels of each image. */
export function sqz_i8_global_maxpool(
  x: usize, signed: i32, n: i32, hw: i32, c: i32, y: usize,
): void {
  sqz_i8_maxpool2d(x, signed, n, 1, hw, c, 1, hw, 1, 1, 1, 1, 0, 0, 1, 1, y);
}

/** QLinearGlobalAveragePool: the average formula with count = hw. */
export function sqz_i8_global_avgpool(
  x: usize, signed: i32, n: i32, hw: i32, c: i32, xZero: i32, xScale: f32, yScale: f32,
  yZero: i32, qmin: i32, qmax: i32, y: usize,
): void {
  sqz_i8_avgpool2d(
    x, signed, n, 1, hw, c, 1, hw, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, xZero, xScale, yScale, yZero,
    qmin, qmax, y,
  );
}

/** Argmax of int8 max pooling, as sqz_f32_maxpool2d_indices. */
export function sqz_i8_maxpool2d_indices(
  x: usize, signed: i32, n: i32, h: i32, w: i32, c: i32, kh: i32, kw: i32, sh: i32, sw: i32,
  dh: i32, dw: i32, padTop: i32, padLeft: i32, outH: i32, outW: i32, indices: usize,
): void {
  if (signed) {
    maxPoolIndices<i8>(
      x, n, h, w, c, kh, kw, sh, sw, dh, dw, padTop, padLeft, outH, outW, indices,
    );
  } else {
    maxPoolIndices<u8>(
      x, n, h, w, c, kh, kw, sh, sw, dh, dw, padTop, padLeft, outH, outW, indices,
    );
  }
}
