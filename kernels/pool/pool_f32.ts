// f32 max and average pooling over NHWC activations (channels contiguous, so one output pixel
// is a vector stream over C: the kernels vectorize over channels, four f32 per v128, and
// walk the window's taps for each block of channels).
//
// Per output pixel, the taps inside the input are found once (window.ts); padded taps are
// never read. Max ignores them; average divides the sum of the taps inside the input by
// either that tap count (count_include_pad = 0) or the taps inside the padded input
// [−padTop, H + padBottom) × [−padLeft, W + padRight) (count_include_pad = 1). A ceil_mode
// window reaching past the padded input never counts that part. A window with no tap inside
// the input gives −inf (max) or 0 (average) before the clamp.
//
// Blocks of 16 channels (4 accumulators, independent add/max chains), then 4; a channel tail
// is one more 4-wide block overlapping the previous one (it rewrites identical values), so no
// load or store ever leaves the pixel. Only C < 4 falls back to scalar lanes.
import { tapBegin, tapCount, tapEnd } from "./window";

// NaN taps are ignored by max: pmax(acc, v) is `acc < v ? v : acc`, false for NaN, as ONNX
// Runtime's `if (x > max) max = x` loop.
// @ts-ignore: decorator
@inline function vstep(isMax: bool, acc: v128, v: v128): v128 {
  return isMax ? f32x4.pmax(acc, v) : f32x4.add(acc, v);
}

// @ts-ignore: decorator
@inline function sstep(isMax: bool, acc: f32, v: f32): f32 {
  return isMax ? (v > acc ? v : acc) : acc + v;
}

// Average division and clamp. The operand order keeps NaN (pmax(NaN, lo) is NaN).
// @ts-ignore: decorator
@inline function vfinish(isMax: bool, acc: v128, vdiv: v128, vlo: v128, vhi: v128): v128 {
  if (!isMax) acc = f32x4.div(acc, vdiv);
  return f32x4.pmin(f32x4.pmax(acc, vlo), vhi);
}

// @ts-ignore: decorator
@inline function sfinish(isMax: bool, acc: f32, div: f32, lo: f32, hi: f32): f32 {
  if (!isMax) acc = acc / div;
  acc = acc < lo ? lo : acc;
  return acc > hi ? hi : acc;
}

// 16 channels: ny×nx taps from p, window rows ry bytes apart, taps rx bytes apart.
// @ts-ignore: decorator
@inline function pix16(
  isMax: bool, p: usize, ny: i32, nx: i32, ry: usize, rx: usize, y: usize,
  vdiv: v128, vlo: v128, vhi: v128,
): void {
  const init = isMax ? f32x4.splat(-Infinity) : f32x4.splat(0);
  let a0 = init, a1 = init, a2 = init, a3 = init;
  for (let i = 0; i < ny; i++) {
    let q = p;
    for (let j = 0; j < nx; j++) {
      a0 = vstep(isMax, a0, v128.load(q));
      a1 = vstep(isMax, a1, v128.load(q, 16));
      a2 = vstep(isMax, a2, v128.load(q, 32));
      a3 = vstep(isMax, a3, v128.load(q, 48));
      q += rx;
    }
    p += ry;
  }
  v128.store(y, vfinish(isMax, a0, vdiv, vlo, vhi));
  v128.store(y, vfinish(isMax, a1, vdiv, vlo, vhi), 16);
  v128.store(y, vfinish(isMax, a2, vdiv, vlo, vhi), 32);
  v128.store(y, vfinish(isMax, a3, vdiv, vlo, vhi), 48);
}

// @ts-ignore: decorator
@inline function pix4(
  isMax: bool, p: usize, ny: i32, nx: i32, ry: usize, rx: usize, y: usize,
  vdiv: v128, vlo: v128, vhi: v128,
): void {
  let a = isMax ? f32x4.splat(-Infinity) : f32x4.splat(0);
  for (let i = 0; i < ny; i++) {
    let q = p;
    for (let j = 0; j < nx; j++) {
      a = vstep(isMax, a, v128.load(q));
      q += rx;
    }
    p += ry;
  }
  v128.store(y, vfinish(isMax, a, vdiv, vlo, vhi));
}

// Scalar build: 4 channels in registers.
// @ts-ignore: decorator
@inline function pix4Scalar(
  isMax: bool, p: usize, ny: i32, nx: i32, ry: usize, rx: usize, y: usize,
  div: f32, lo: f32, hi: f32,
): void {
  const init: f32 = isMax ? -Infinity : 0;
  let a0 = init, a1 = init, a2 = init, a3 = init;
  for (let i = 0; i < ny; i++) {
    let q = p;
    for (let j = 0; j < nx; j++) {
      a0 = sstep(isMax, a0, load<f32>(q));
      a1 = sstep(isMax, a1, load<f32>(q, 4));
      a2 = sstep(isMax, a2, load<f32>(q, 8));
      a3 = sstep(isMax, a3, load<f32>(q, 12));
      q += rx;
    }
    p += ry;
  }
  store<f32>(y, sfinish(isMax, a0, div, lo, hi));
  store<f32>(y, sfinish(isMax, a1, div, lo, hi), 4);
  store<f32>(y, sfinish(isMax, a2, div, lo, hi), 8);
  store<f32>(y, sfinish(isMax, a3, div, lo, hi), 12);
}

// @ts-ignore: decorator
@inline function pix1(
  isMax: bool, p: usize, ny: i32, nx: i32, ry: usize, rx: usize, y: usize,
  div: f32, lo: f32, hi: f32,
): void {
  let a: f32 = isMax ? -Infinity : 0;
  for (let i = 0; i < ny; i++) {
    let q = p;
    for (let j = 0; j < nx; j++) {
      a = sstep(isMax, a, load<f32>(q));
      q += rx;
    }
    p += ry;
  }
  store<f32>(y, sfinish(isMax, a, div, lo, hi));
}

// All C channels of one output pixel.
// @ts-ignore: decorator
@inline function pixel(
  isMax: bool, p: usize, ny: i32, nx: i32, ry: usize, rx: usize, c: i32, y: usize,
  div: f32, lo: f32, hi: f32,
): void {
  let ch = 0;
  if (ASC_FEATURE_SIMD) {
    const vdiv = f32x4.splat(div), vlo = f32x4.splat(lo), vhi = f32x4.splat(hi);
    for (; ch + 16 <= c; ch += 16) {
      const o = <usize>ch << 2;
      pix16(isMax, p + o, ny, nx, ry, rx, y + o, vdiv, vlo, vhi);
    }
    for (; ch + 4 <= c; ch += 4) {
      const o = <usize>ch << 2;
      pix4(isMax, p + o, ny, nx, ry, rx, y + o, vdiv, vlo, vhi);
    }
    if (ch < c && c >= 4) {
      const o = <usize>(c - 4) << 2;
      pix4(isMax, p + o, ny, nx, ry, rx, y + o, vdiv, vlo, vhi);
      ch = c;
    }
  } else {
    for (; ch + 4 <= c; ch += 4) {
      const o = <usize>ch << 2;
      pix4Scalar(isMax, p + o, ny, nx, ry, rx, y + o, div, lo, hi);
    }
  }
  for (; ch < c; ch++) {
    const o = <usize>ch << 2;
    pix1(isMax, p + o, ny, nx, ry, rx, y + o, div, lo, hi);
  }
}

// Driver. Pointers into memory may be formed for empty windows (ny or nx = 0) from
// out-of-range coordinates; they are never dereferenced.
// @ts-ignore: decorator
@inline function poolF32(
  isMax: bool, x: usize, n: i32, h: i32, w: i32, c: i32, kh: i32, kw: i32, sh: i32, sw: i32,
  dh: i32, dw: i32, pt: i32, pl: i32, pb: i32, pr: i32, oh: i32, ow: i32, cip: bool, y: usize,
  lo: f32, hi: f32,
): void {
  const pixB = <usize>c << 2;
  const rowB = <usize>w * pixB;
  const ry = rowB * <usize>dh;
  const rx = pixB * <usize>dw;
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
        const p = xr + <usize>(sx + kx0 * dw) * pixB;
        pixel(isMax, p, ny, nx, ry, rx, c, y, <f32>max(1, cy * cx), lo, hi);
        y += pixB;
      }
    }
  }
}

export function maxPoolF32(
  x: usize, n: i32, h: i32, w: i32, c: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32,
  dw: i32, pt: i32, pl: i32, oh: i32, ow: i32, y: usize, lo: f32, hi: f32,
): void {
  poolF32(true, x, n, h, w, c, kh, kw, sh, sw, dh, dw, pt, pl, 0, 0, oh, ow, false, y, lo, hi);
}

export function avgPoolF32(
  x: usize, n: i32, h: i32, w: i32, c: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32,
  dw: i32, pt: i32, pl: i32, pb: i32, pr: i32, oh: i32, ow: i32, cip: bool, y: usize,
  lo: f32, hi: f32,
): void {
  poolF32(false, x, n, h, w, c, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, oh, ow, cip, y, lo, hi);
}
