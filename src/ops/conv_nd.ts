// N-dimensional window geometry (ONNX pads / auto_pad / strides / dilations / ceil_mode) and a
// direct NCHW convolution over 1, 2 or 3 spatial dims: the general fallback behind the Wasm
// kernels, which cover 2-D NHWC only. Spatial dims are canonicalized to three by prepending unit
// dims, so one loop nest serves 1-D, 2-D and 3-D.
import type { Node } from "../graph/ir.ts";
import { ModelError, ShapeError, UnsupportedError } from "../errors.ts";
import { attrInts, attrString } from "./attrs.ts";

export type AutoPad = "NOTSET" | "SAME_UPPER" | "SAME_LOWER" | "VALID";

/** Resolved geometry of a sliding window over the spatial dims (all arrays have `rank` items). */
export interface NdWindow {
  rank: number;
  inDims: number[];
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** Padding before (head) and after (tail) each spatial dim, after auto_pad. */
  head: number[];
  tail: number[];
  outDims: number[];
}

/** Largest number of spatial dims the loop nests handle. */
export const MAX_SPATIAL = 3;

function where(node: Node): string {
  return `node '${node.name}' (${node.op})`;
}

function intList(node: Node, name: string, n: number, dflt: number, min: number): number[] {
  const v = attrInts(node, name);
  if (v === undefined || v.length === 0) return new Array<number>(n).fill(dflt);
  if (v.length !== n) {
    throw new ModelError(`${where(node)}: '${name}' has ${v.length} values, expected ${n}`);
  }
  for (const x of v) {
    if (!Number.isSafeInteger(x) || x < min) {
      throw new ModelError(`${where(node)}: '${name}' has an invalid value ${x}`);
    }
  }
  return v;
}

/**
 * Window geometry from a node's attributes over spatial input dims `inDims` and kernel dims
 * `kernel`. `ceil` is pooling's ceil_mode: the output rounds up, but the last window must start
 * inside the input or the head padding (ONNX, PyTorch).
 */
export function ndWindow(node: Node, inDims: number[], kernel: number[], ceil = false): NdWindow {
  const rank = inDims.length;
  if (rank < 1) throw new ShapeError(`${where(node)}: the input has no spatial dims`);
  if (rank > MAX_SPATIAL) {
    throw new UnsupportedError(`${where(node)}: ${rank} spatial dims (at most ${MAX_SPATIAL})`);
  }
  if (kernel.length !== rank) {
    throw new ModelError(`${where(node)}: kernel has ${kernel.length} dims, input has ${rank}`);
  }
  for (const k of kernel) {
    if (!Number.isSafeInteger(k) || k < 1) {
      throw new ModelError(`${where(node)}: kernel dims must be positive, got [${kernel}]`);
    }
  }
  const strides = intList(node, "strides", rank, 1, 1);
  const dilations = intList(node, "dilations", rank, 1, 1);
  const pads = intList(node, "pads", 2 * rank, 0, 0);
  const autoPad = attrString(node, "auto_pad", "NOTSET");
  if (!["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"].includes(autoPad)) {
    throw new ModelError(`${where(node)}: unknown auto_pad '${autoPad}'`);
  }
  const head: number[] = [], tail: number[] = [], outDims: number[] = [];
  for (let d = 0; d < rank; d++) {
    const size = inDims[d], k = kernel[d], s = strides[d], dil = dilations[d];
    const span = (k - 1) * dil + 1;
    let h = pads[d], t = pads[d + rank], out: number;
    if (autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") {
      out = Math.ceil(size / s);
      const total = Math.max(0, (out - 1) * s + span - size);
      const small = Math.floor(total / 2);
      // SAME_UPPER puts the odd padding at the end, SAME_LOWER at the beginning.
      [h, t] = autoPad === "SAME_UPPER" ? [small, total - small] : [total - small, small];
    } else {
      if (autoPad === "VALID") h = t = 0;
      const room = size + h + t - span;
      if (room < 0) {
        throw new ShapeError(
          `${where(node)}: window of ${span} (kernel ${k}, dilation ${dil}) exceeds the padded ` +
            `input ${size + h + t} along spatial dim ${d}`,
        );
      }
      out = (ceil ? Math.ceil(room / s) : Math.floor(room / s)) + 1;
      if (ceil && (out - 1) * s >= size + h) out--;
    }
    head.push(h);
    tail.push(t);
    outDims.push(out);
  }
  return { rank, inDims, kernel, strides, dilations, head, tail, outDims };
}

/** The geometry padded to three spatial dims with leading unit dims. */
export interface Window3 {
  I: Int32Array;
  K: Int32Array;
  S: Int32Array;
  D: Int32Array;
  H: Int32Array;
  T: Int32Array;
  O: Int32Array;
}

export function canon3(w: NdWindow): Window3 {
  const pad = (a: number[], v: number) => {
    const r = new Int32Array(MAX_SPATIAL).fill(v);
    r.set(a, MAX_SPATIAL - a.length);
    return r;
  };
  return {
    I: pad(w.inDims, 1),
    K: pad(w.kernel, 1),
    S: pad(w.strides, 1),
    D: pad(w.dilations, 1),
    H: pad(w.head, 0),
    T: pad(w.tail, 0),
    O: pad(w.outDims, 1),
  };
}

/** Numeric arrays the loops read (float data, or integers already shifted by zero points). */
export type NumArray = Float32Array | Float64Array | Int32Array;
/** Arrays the loops write; the typed-array store converts (fround, ToInt32 wrap). */
export type OutArray = Float32Array | Float64Array | Int32Array;

/**
 * For each kernel tap k along a dim, the output range [lo[k], hi[k]) whose input position
 * o·S − H + k·D lies inside the input.
 */
function tapRanges(I: number, K: number, S: number, D: number, H: number, O: number) {
  const lo = new Int32Array(K), hi = new Int32Array(K);
  for (let k = 0; k < K; k++) {
    const off = H - k * D; // o·S ≥ off and o·S < I + off
    const a = Math.max(0, Math.ceil(off / S));
    const b = Math.min(O, Math.ceil((I + off) / S));
    lo[k] = a;
    hi[k] = Math.max(a, b);
  }
  return { lo, hi };
}

export interface ConvShape {
  n: number;
  c: number;
  m: number;
  group: number;
}

/**
 * Direct convolution: y[n, m, o] = bias[m] + Σ_{c in group, k} x[n, c, o·S − H + k·D]·w[m, c, k],
 * taps outside the input contributing nothing. x is [n, c, …I], w [m, c/group, …K], y
 * [n, m, …O]. Accumulates each output plane in f64 (`acc` holds at least one plane).
 */
export function convNd(
  x: NumArray,
  w: NumArray,
  bias: NumArray | undefined,
  s: ConvShape,
  g: Window3,
  y: OutArray,
  acc: Float64Array,
): void {
  const [I0, I1, I2] = g.I, [K0, K1, K2] = g.K, [S0, S1, S2] = g.S, [D0, D1, D2] = g.D;
  const [H0, H1, H2] = g.H, [O0, O1, O2] = g.O;
  const r0 = tapRanges(I0, K0, S0, D0, H0, O0);
  const r1 = tapRanges(I1, K1, S1, D1, H1, O1);
  const r2 = tapRanges(I2, K2, S2, D2, H2, O2);
  const inSize = I0 * I1 * I2, outSize = O0 * O1 * O2, kSize = K0 * K1 * K2;
  const cg = s.c / s.group, mg = s.m / s.group;
  for (let b = 0; b < s.n; b++) {
    for (let oc = 0; oc < s.m; oc++) {
      const grp = (oc / mg) | 0;
      acc.fill(bias ? bias[oc] : 0, 0, outSize);
      for (let icl = 0; icl < cg; icl++) {
        const xc = (b * s.c + grp * cg + icl) * inSize;
        let wi = (oc * cg + icl) * kSize;
        for (let k0 = 0; k0 < K0; k0++) {
          const lo0 = r0.lo[k0], hi0 = r0.hi[k0];
          for (let k1 = 0; k1 < K1; k1++) {
            const lo1 = r1.lo[k1], hi1 = r1.hi[k1];
            for (let k2 = 0; k2 < K2; k2++, wi++) {
              const lo2 = r2.lo[k2], hi2 = r2.hi[k2];
              if (lo2 >= hi2) continue;
              const wv = w[wi];
              for (let o0 = lo0; o0 < hi0; o0++) {
                const x0 = (o0 * S0 - H0 + k0 * D0) * I1;
                const y0 = o0 * O1;
                for (let o1 = lo1; o1 < hi1; o1++) {
                  const xr = xc + (x0 + o1 * S1 - H1 + k1 * D1) * I2 + k2 * D2 - H2;
                  const yr = (y0 + o1) * O2;
                  if (S2 === 1) {
                    for (let o2 = lo2; o2 < hi2; o2++) acc[yr + o2] += wv * x[xr + o2];
                  } else {
                    for (let o2 = lo2; o2 < hi2; o2++) acc[yr + o2] += wv * x[xr + o2 * S2];
                  }
                }
              }
            }
          }
        }
      }
      const yb = (b * s.m + oc) * outSize;
      for (let p = 0; p < outSize; p++) y[yb + p] = acc[p];
    }
  }
}
