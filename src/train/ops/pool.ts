// Pooling forward and backward, NCHW over 1–3 spatial dims (canonicalized to three, as
// src/ops/conv_nd.ts does). MaxPool routes the gradient to the first maximum of each window
// (the index the forward recorded); AveragePool spreads it over the window's count
// (count_include_pad as the attribute says); the global pools over the whole plane.
import { canon3, ndWindow } from "../../ops/conv_nd.ts";
import { attrInt, attrInts } from "../../ops/attrs.ts";
import { ModelError } from "../../errors.ts";
import { f32, size, type TrainOpFactory } from "./types.ts";

function pool(kind: "max" | "avg"): TrainOpFactory {
  return (ctx) => {
    const node = ctx.node;
    let xLen = 0, arg: Int32Array, weight: Float32Array, outLen = 0;
    // avg: for each output, the window's input positions are re-walked in backward.
    let walk: (fn: (o: number, i: number) => void) => void;
    return {
      forward(ins) {
        const xt = ins[0]!, x = f32(xt, ctx, "X");
        const dims = xt.dims, spatial = dims.slice(2);
        const kernel = attrInts(node, "kernel_shape");
        if (!kernel) throw new ModelError(`node '${node.name}': kernel_shape is required`);
        const win = ndWindow(node, spatial, kernel, attrInt(node, "ceil_mode", 0) === 1);
        const w = canon3(win);
        const planes = dims[0] * dims[1];
        const inPlane = size(spatial), outPlane = size(win.outDims);
        xLen = x.length;
        outLen = planes * outPlane;
        const includePad = attrInt(node, "count_include_pad", 0) === 1;
        walk = (fn) => {
          for (let p = 0; p < planes; p++) {
            for (let o0 = 0; o0 < w.O[0]; o0++) {
              for (let o1 = 0; o1 < w.O[1]; o1++) {
                for (let o2 = 0; o2 < w.O[2]; o2++) {
                  const o = p * outPlane + (o0 * w.O[1] + o1) * w.O[2] + o2;
                  for (let k0 = 0; k0 < w.K[0]; k0++) {
                    const i0 = o0 * w.S[0] - w.H[0] + k0 * w.D[0];
                    if (i0 < 0 || i0 >= w.I[0]) continue;
                    for (let k1 = 0; k1 < w.K[1]; k1++) {
                      const i1 = o1 * w.S[1] - w.H[1] + k1 * w.D[1];
                      if (i1 < 0 || i1 >= w.I[1]) continue;
                      for (let k2 = 0; k2 < w.K[2]; k2++) {
                        const i2 = o2 * w.S[2] - w.H[2] + k2 * w.D[2];
                        if (i2 < 0 || i2 >= w.I[2]) continue;
                        fn(o, p * inPlane + (i0 * w.I[1] + i1) * w.I[2] + i2);
                      }
                    }
                  }
                }
              }
            }
          }
        };
        const y = ctx.buffer(0, outLen);
        if (kind === "max") {
          if (arg?.length !== outLen) arg = new Int32Array(outLen);
          maxPool3(x, y, arg, planes, w);
        } else {
          y.fill(0);
          const count = new Float32Array(outLen);
          walk((o, i) => {
            y[o] += x[i];
            count[o]++;
          });
          if (includePad) {
            // Windows count their padded taps too (but not the ceil_mode overhang past the tail).
            for (let o = 0; o < outLen; o++) count[o] = padCount(o % outPlane, w);
          }
          weight = count.map((c) => (c > 0 ? 1 / c : 0));
          for (let o = 0; o < outLen; o++) y[o] *= weight[o];
        }
        return [{ type: "float32", dims: [dims[0], dims[1], ...win.outDims], data: y }];
      },
      backward([g]) {
        if (!g || !ctx.needGrad[0]) return [];
        const dx = ctx.zeros(1, xLen);
        if (kind === "max") {
          for (let o = 0; o < outLen; o++) if (arg[o] >= 0) dx[arg[o]] += g[o];
        } else walk((o, i) => (dx[i] += g[o] * weight[o]));
        return [dx];
      },
    };
  };
}

/**
 * Max over each window, recording the flat input index of the first maximum (−1 for a window
 * entirely in the padding). Plain loops: this runs on every training step.
 */
function maxPool3(
  x: Float32Array,
  y: Float32Array,
  arg: Int32Array,
  planes: number,
  w: ReturnType<typeof canon3>,
): void {
  const [I0, I1, I2] = w.I, [O0, O1, O2] = w.O, [K0, K1, K2] = w.K;
  const [S0, S1, S2] = w.S, [D0, D1, D2] = w.D, [H0, H1, H2] = w.H;
  const inPlane = I0 * I1 * I2;
  if (
    K0 === 1 && K1 === 2 && K2 === 2 && S1 === 2 && S2 === 2 && D1 === 1 && D2 === 1 &&
    H0 === 0 && H1 === 0 && H2 === 0 && 2 * O1 <= I1 && 2 * O2 <= I2 && O0 === I0
  ) {
    maxPool2x2(x, y, arg, planes * I0, I1, I2, O1, O2);
    return;
  }
  let o = 0;
  for (let p = 0; p < planes; p++) {
    const base = p * inPlane;
    for (let o0 = 0; o0 < O0; o0++) {
      for (let o1 = 0; o1 < O1; o1++) {
        for (let o2 = 0; o2 < O2; o2++, o++) {
          let at = -1;
          for (let k0 = 0; k0 < K0; k0++) {
            const i0 = o0 * S0 - H0 + k0 * D0;
            if (i0 < 0 || i0 >= I0) continue;
            for (let k1 = 0; k1 < K1; k1++) {
              const i1 = o1 * S1 - H1 + k1 * D1;
              if (i1 < 0 || i1 >= I1) continue;
              const row = base + (i0 * I1 + i1) * I2;
              for (let k2 = 0; k2 < K2; k2++) {
                const i2 = o2 * S2 - H2 + k2 * D2;
                if (i2 < 0 || i2 >= I2) continue;
                if (at < 0) at = row + i2;
                else {
                  // Branch-free update (first maximum wins): a data-dependent branch here
                  // mispredicts on every other tap. Index arithmetic only, so ±Infinity stays.
                  at += +(x[row + i2] > x[at]) * (row + i2 - at);
                }
              }
            }
          }
          y[o] = at < 0 ? -Infinity : x[at];
          arg[o] = at;
        }
      }
    }
  }
}

/** The common 2×2 stride-2 window without padding, unrolled (same results as maxPool3). */
function maxPool2x2(
  x: Float32Array,
  y: Float32Array,
  arg: Int32Array,
  planes: number,
  h: number,
  w: number,
  oh: number,
  ow: number,
): void {
  let o = 0;
  for (let p = 0; p < planes; p++) {
    const base = p * h * w;
    for (let oy = 0; oy < oh; oy++) {
      const r0 = base + 2 * oy * w, r1 = r0 + w;
      for (let ox = 0; ox < ow; ox++, o++) {
        const i = r0 + 2 * ox, j = r1 + 2 * ox;
        // First maximum in window order (i, i+1, j, j+1), without data-dependent branches.
        // (Index arithmetic only: a float blend would turn ±Infinity into NaN.)
        let at = i;
        at += +(x[i + 1] > x[at]) * (i + 1 - at);
        at += +(x[j] > x[at]) * (j - at);
        at += +(x[j + 1] > x[at]) * (j + 1 - at);
        y[o] = x[at];
        arg[o] = at;
      }
    }
  }
}

/** Taps of window o (in one plane) inside the padded input, as count_include_pad counts them. */
function padCount(o: number, w: ReturnType<typeof canon3>): number {
  const o2 = o % w.O[2],
    o1 = Math.floor(o / w.O[2]) % w.O[1],
    o0 = Math.floor(o / (w.O[1] * w.O[2]));
  let n = 1;
  for (const [od, d] of [[o0, 0], [o1, 1], [o2, 2]]) {
    let c = 0;
    for (let k = 0; k < w.K[d]; k++) {
      const i = od * w.S[d] - w.H[d] + k * w.D[d];
      if (i >= -w.H[d] && i < w.I[d] + w.T[d]) c++;
    }
    n *= c;
  }
  return n;
}

function globalPool(kind: "max" | "avg"): TrainOpFactory {
  return (ctx) => {
    let arg: Int32Array, planes = 0, plane = 0;
    return {
      forward(ins) {
        const xt = ins[0]!, x = f32(xt, ctx, "X");
        planes = xt.dims[0] * xt.dims[1];
        plane = size(xt.dims.slice(2));
        const y = new Float32Array(planes);
        arg = new Int32Array(planes);
        for (let p = 0; p < planes; p++) {
          const base = p * plane;
          if (kind === "avg") {
            let s = 0;
            for (let i = 0; i < plane; i++) s += x[base + i];
            y[p] = s / plane;
          } else {
            let best = base;
            for (let i = 1; i < plane; i++) if (x[base + i] > x[best]) best = base + i;
            y[p] = x[best];
            arg[p] = best;
          }
        }
        const out = [xt.dims[0], xt.dims[1], ...xt.dims.slice(2).map(() => 1)];
        return [{ type: "float32", dims: out, data: y }];
      },
      backward([g]) {
        if (!g || !ctx.needGrad[0]) return [];
        const dx = new Float32Array(planes * plane);
        for (let p = 0; p < planes; p++) {
          if (kind === "max") dx[arg[p]] = g[p];
          else dx.fill(g[p] / plane, p * plane, (p + 1) * plane);
        }
        return [dx];
      },
    };
  };
}

export const POOL_GRADS: Record<string, TrainOpFactory> = {
  MaxPool: pool("max"),
  AveragePool: pool("avg"),
  GlobalAveragePool: globalPool("avg"),
  GlobalMaxPool: globalPool("max"),
};
