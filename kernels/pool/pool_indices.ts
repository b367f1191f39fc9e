// Argmax of max pooling (ONNX MaxPool's second output), NHWC, for T = f32, u8 or i8. Writes,
// per output element, the input pixel the maximum came from as an i32 spatial index
// iy·W + ix (the wrapper turns it into ONNX's flattened NCHW index), or −1 when the window
// has no tap inside the input. Ties and NaN follow onnxruntime: taps are visited row by row
// and only a strictly greater value replaces the maximum, so the first maximum wins and NaN
// never does (a window of NaN/−inf reports its first tap).
//
// Four channels per v128: values are compared as f32 (exact for 8-bit integers too), the index
// lanes follow the comparison mask. A channel tail overlaps the previous block; C < 4 and the
// scalar build run one channel at a time.
import { tapBegin, tapEnd } from "./window";

// Four values of T widened to f32 lanes.
// @ts-ignore: decorator
@inline function load4<T>(p: usize): v128 {
  if (isFloat<T>()) return v128.load(p);
  const b = v128.load32_zero(p);
  if (isSigned<T>()) {
    return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(b)));
  }
  return f32x4.convert_i32x4_u(i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(b)));
}

// Channels ch..ch+3 (or ch alone when `one`) of one output pixel.
// @ts-ignore: decorator
@inline function argmax4<T>(
  one: bool, p: usize, ky0: i32, ny: i32, kx0: i32, nx: i32, sy: i32, sx: i32,
  dh: i32, dw: i32, w: i32, ry: usize, rx: usize, out: usize,
): void {
  const first = ny > 0 && nx > 0 ? (sy + ky0 * dh) * w + sx + kx0 * dw : -1;
  if (ASC_FEATURE_SIMD) {
    if (!one) {
      let acc = f32x4.splat(-Infinity);
      let idx = i32x4.splat(first);
      for (let i = 0; i < ny; i++) {
        let q = p;
        let pos = (sy + (ky0 + i) * dh) * w + sx + kx0 * dw;
        for (let j = 0; j < nx; j++) {
          const v = load4<T>(q);
          const m = f32x4.gt(v, acc);
          acc = v128.bitselect(v, acc, m);
          idx = v128.bitselect(i32x4.splat(pos), idx, m);
          q += rx;
          pos += dw;
        }
        p += ry;
      }
      v128.store(out, idx);
      return;
    }
  }
  let acc: f32 = -Infinity;
  let idx = first;
  for (let i = 0; i < ny; i++) {
    let q = p;
    let pos = (sy + (ky0 + i) * dh) * w + sx + kx0 * dw;
    for (let j = 0; j < nx; j++) {
      const v = <f32>load<T>(q);
      if (v > acc) {
        acc = v;
        idx = pos;
      }
      q += rx;
      pos += dw;
    }
    p += ry;
  }
  store<i32>(out, idx);
}

export function maxPoolIndices<T>(
  x: usize, n: i32, h: i32, w: i32, c: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32,
  dw: i32, pt: i32, pl: i32, oh: i32, ow: i32, out: usize,
): void {
  const es = <usize>sizeof<T>();
  const pixB = <usize>c * es;
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
        const p = xr + <usize>(sx + kx0 * dw) * pixB;
        let ch = 0;
        if (ASC_FEATURE_SIMD) {
          for (; ch + 4 <= c; ch += 4) {
            argmax4<T>(
              false, p + <usize>ch * es, ky0, ny, kx0, nx, sy, sx, dh, dw, w, ry, rx,
              out + (<usize>ch << 2),
            );
          }
          if (ch < c && c >= 4) {
            const t = c - 4;
            argmax4<T>(
              false, p + <usize>t * es, ky0, ny, kx0, nx, sy, sx, dh, dw, w, ry, rx,
              out + (<usize>t << 2),
            );
            ch = c;
          }
        }
        for (; ch < c; ch++) {
          argmax4<T>(
            true, p + <usize>ch * es, ky0, ny, kx0, nx, sy, sx, dh, dw, w, ry, rx,
            out + (<usize>ch << 2),
          );
        }
        out += <usize>c << 2;
      }
    }
  }
}
