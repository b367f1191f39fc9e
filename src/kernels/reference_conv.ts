// Scalar reference convolutions, NHWC activations and ONNX OIHW weights
// ([Cout][Cin/groups][KH][KW]). The convolution kernels must match these: exactly for the
// integer and binary paths, within rounding for f32. One loop nest each, nothing clever.
import { binarize } from "./reference.ts";
import type { WindowGeometry } from "./conv_geometry.ts";

export interface RefConvShape {
  n: number;
  c: number; // input channels
  cout: number;
  groups: number;
  g: WindowGeometry;
}

/** Visits every (output pixel, output channel) with the taps that fall inside the input. */
function convLoop(
  s: RefConvShape,
  tap: (n: number, y: number, x: number, ci: number, o: number, kh: number, kw: number) => void,
  inside: boolean,
  done: (idx: number, o: number) => void,
  pad?: (o: number, ci: number, kh: number, kw: number) => void,
): void {
  const { n: batch, c, cout, groups, g } = s;
  const cpg = c / groups, opg = cout / groups;
  for (let n = 0; n < batch; n++) {
    for (let oy = 0; oy < g.outH; oy++) {
      for (let ox = 0; ox < g.outW; ox++) {
        for (let o = 0; o < cout; o++) {
          const grp = Math.floor(o / opg);
          for (let i = 0; i < cpg; i++) {
            for (let ky = 0; ky < g.kh; ky++) {
              for (let kx = 0; kx < g.kw; kx++) {
                const y = oy * g.sh - g.padTop + ky * g.dh;
                const x = ox * g.sw - g.padLeft + kx * g.dw;
                if (y >= 0 && y < g.inH && x >= 0 && x < g.inW) {
                  tap(n, y, x, grp * cpg + i, o, ky, kx);
                } else if (!inside && pad) pad(o, i, ky, kx);
              }
            }
          }
          done(((n * g.outH + oy) * g.outW + ox) * cout + o, o);
        }
      }
    }
  }
}

/** f32 convolution with bias and clamp; accumulates in f64. Output NHWC. */
export function refConv2dF32(
  s: RefConvShape,
  input: Float32Array,
  w: Float32Array,
  bias?: Float32Array,
  lo = -Infinity,
  hi = Infinity,
): Float32Array {
  const { c, cout, groups, g } = s;
  const cpg = c / groups;
  const out = new Float32Array(s.n * g.outH * g.outW * cout);
  let acc = 0;
  convLoop(
    s,
    (n, y, x, ci, o, ky, kx) => {
      acc += input[((n * g.inH + y) * g.inW + x) * c + ci] *
        w[((o * cpg + (ci % cpg)) * g.kh + ky) * g.kw + kx];
    },
    true,
    (idx, o) => {
      out[idx] = Math.min(Math.max(acc + (bias ? bias[o] : 0), lo), hi);
      acc = 0;
    },
  );
  return out;
}

/**
 * int8 convolution accumulators (ConvInteger / QLinearConv before requantization):
 * bias + Σ (x − za)·w. Padding is the zero point, so padded taps add nothing.
 */
export function refConv2dI8(
  s: RefConvShape,
  input: Uint8Array | Int8Array,
  za: number,
  w: Int8Array,
  bias?: Int32Array,
): Int32Array {
  const { c, cout, groups, g } = s;
  const cpg = c / groups;
  const out = new Int32Array(s.n * g.outH * g.outW * cout);
  let acc = 0;
  convLoop(
    s,
    (n, y, x, ci, o, ky, kx) => {
      acc += (input[((n * g.inH + y) * g.inW + x) * c + ci] - za) *
        w[((o * cpg + (ci % cpg)) * g.kh + ky) * g.kw + kx];
    },
    true,
    (idx, o) => {
      out[idx] = acc + (bias ? bias[o] : 0);
      acc = 0;
    },
  );
  return out;
}

/**
 * Binary convolution: Σ sign(x)·sign(w) with sign(0) = +1. Padded taps read +1 ("one-padding",
 * as Larq Compute Engine does), so this equals the float convolution of the sign-binarized
 * network whose input is padded with +1.
 */
export function refConv2dBin(s: RefConvShape, input: Float32Array, w: Float32Array): Int32Array {
  const { c, cout, groups, g } = s;
  const cpg = c / groups;
  const out = new Int32Array(s.n * g.outH * g.outW * cout);
  let acc = 0;
  convLoop(
    s,
    (n, y, x, ci, o, ky, kx) => {
      acc += binarize(input[((n * g.inH + y) * g.inW + x) * c + ci]) *
        binarize(w[((o * cpg + (ci % cpg)) * g.kh + ky) * g.kw + kx]);
    },
    false,
    (idx) => {
      out[idx] = acc;
      acc = 0;
    },
    (o, i, ky, kx) => {
      acc += binarize(w[((o * cpg + i) * g.kh + ky) * g.kw + kx]);
    },
  );
  return out;
}
