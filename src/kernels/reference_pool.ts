// Scalar reference pooling over NHWC tensors: the semantics the pooling kernels must match,
// exactly for max, argmax and int8, within rounding for f32 average (and bit for bit in
// practice: f32 sums run in the kernels' tap order). One loop nest each, nothing clever.
import type { WindowGeometry } from "./conv_geometry.ts";
import { refRequantFp32 } from "./reference.ts";

export type PoolArray = Float32Array | Uint8Array | Int8Array;

/** int8 average pooling parameters (onnxruntime QLinearAveragePool). */
export interface RefPoolQuant {
  xScale: number;
  xZero: number;
  yScale: number;
  yZero: number;
  /** Output clamp in the integer domain; defaults to the type's range. */
  qmin?: number;
  qmax?: number;
}

/**
 * Visits each output element (n, oy, ox, c) with the input values of its window's taps inside
 * the input (row by row) and the window's divisor for each count_include_pad setting.
 */
function poolLoop(
  x: PoolArray,
  n: number,
  c: number,
  g: WindowGeometry,
  visit: (
    out: number,
    taps: number[],
    positions: number[],
    countValid: number,
    countPadded: number,
  ) => void,
): void {
  const { inH, inW } = g;
  // The padded input, beyond which a ceil_mode window's taps never count.
  const yHi = inH + g.padBottom, xHi = inW + g.padRight;
  let out = 0;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < g.outH; oy++) {
      for (let ox = 0; ox < g.outW; ox++) {
        for (let ch = 0; ch < c; ch++) {
          const taps: number[] = [], positions: number[] = [];
          let padded = 0;
          for (let ky = 0; ky < g.kh; ky++) {
            for (let kx = 0; kx < g.kw; kx++) {
              const iy = oy * g.sh - g.padTop + ky * g.dh;
              const ix = ox * g.sw - g.padLeft + kx * g.dw;
              if (iy >= -g.padTop && iy < yHi && ix >= -g.padLeft && ix < xHi) padded++;
              if (iy < 0 || iy >= inH || ix < 0 || ix >= inW) continue;
              taps.push(x[((b * inH + iy) * inW + ix) * c + ch]);
              positions.push(iy * inW + ix);
            }
          }
          visit(out++, taps, positions, taps.length, padded);
        }
      }
    }
  }
}

function outputLike<T extends PoolArray>(x: T, length: number): T {
  return new (x.constructor as new (n: number) => T)(length);
}

function clampF32(v: number, lo: number, hi: number): number {
  v = v < lo ? lo : v; // keeps NaN, as the kernels do
  return v > hi ? hi : v;
}

/**
 * Max pooling: the maximum of the taps inside the input (padding ignored; NaN never wins);
 * −inf for f32 or the type's minimum for int8 when no tap is inside. f32 is clamped to [lo, hi].
 */
export function refMaxPool2d<T extends PoolArray>(
  x: T,
  n: number,
  c: number,
  g: WindowGeometry,
  lo = -Infinity,
  hi = Infinity,
): T {
  const y = outputLike(x, n * g.outH * g.outW * c);
  const init = x instanceof Float32Array ? -Infinity : x instanceof Int8Array ? -128 : 0;
  poolLoop(x, n, c, g, (o, taps) => {
    let m = init;
    for (const v of taps) if (v > m) m = v;
    y[o] = x instanceof Float32Array ? clampF32(m, lo, hi) : m;
  });
  return y;
}

/**
 * Argmax of max pooling: the spatial index iy·W + ix of the first strictly greatest tap (the
 * first tap when none beats −inf), −1 for a window with no tap inside the input.
 */
export function refMaxPoolIndices(x: PoolArray, n: number, c: number, g: WindowGeometry) {
  const idx = new Int32Array(n * g.outH * g.outW * c);
  poolLoop(x, n, c, g, (o, taps, positions) => {
    let m = -Infinity, at = positions.length ? positions[0] : -1;
    taps.forEach((v, i) => {
      if (v > m) {
        m = v;
        at = positions[i];
      }
    });
    idx[o] = at;
  });
  return idx;
}

/**
 * Average pooling. f32: Σ taps (summed in f32, row by row) / count, clamped to [lo, hi].
 * int8 (with `quant`): round_half_even(f32(Σ (x − xZero)) · f32(xScale / f32(yScale · count)))
 * + yZero, clamped to [qmin, qmax]. count is the taps inside the input, or with
 * countIncludePad those inside the padded input; at least 1 (an empty window averages to 0).
 */
export function refAvgPool2d<T extends PoolArray>(
  x: T,
  n: number,
  c: number,
  g: WindowGeometry,
  countIncludePad: boolean,
  quant?: RefPoolQuant,
  lo = -Infinity,
  hi = Infinity,
): T {
  const y = outputLike(x, n * g.outH * g.outW * c);
  const f = Math.fround;
  poolLoop(x, n, c, g, (o, taps, _p, valid, padded) => {
    const count = Math.max(1, countIncludePad ? padded : valid);
    if (x instanceof Float32Array) {
      let s = 0;
      for (const v of taps) s = f(s + v);
      y[o] = clampF32(f(s / count), lo, hi);
      return;
    }
    const q = quant ?? { xScale: 1, xZero: 0, yScale: 1, yZero: 0 };
    const [tmin, tmax] = x instanceof Int8Array ? [-128, 127] : [0, 255];
    let s = 0;
    for (const v of taps) s += v - q.xZero;
    const scale = f(f(q.xScale) / f(f(q.yScale) * count));
    y[o] = refRequantFp32(s, scale, q.yZero, q.qmin ?? tmin, q.qmax ?? tmax);
  });
  return y;
}

/** The geometry of a global pool: one window over all H×W pixels. */
export function globalGeometry(h: number, w: number): WindowGeometry {
  return {
    inH: h,
    inW: w,
    kh: h,
    kw: w,
    sh: 1,
    sw: 1,
    dh: 1,
    dw: 1,
    padTop: 0,
    padLeft: 0,
    padBottom: 0,
    padRight: 0,
    outH: 1,
    outW: 1,
  };
}
