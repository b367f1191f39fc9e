// Resize (opsets 10, 11, 13, 18, 19) and Upsample (7, 9): nearest, N-linear and cubic
// interpolation over any rank, with the ONNX spec's coordinate mappings and onnxruntime's
// arithmetic.
//
// Output size: `sizes`, or ⌊scale·input⌋ per axis (the roi does not enter it, as in onnxruntime
// and the ONNX reference); keep_aspect_ratio_policy (18) replaces the scales of `axes` by their
// min or max and rounds the sizes. Each output coordinate maps to an input coordinate by
// coordinate_transformation_mode, evaluated step by step in float32 as onnxruntime does (an axis
// of scale 1 maps to itself in every mode, as there), so nearest picks the pixels it picks;
// round_prefer_floor/ceil count a coordinate within 1e-6 of k + ½ as the tie, as it does.
//
// Every axis gets a table once per call: for nearest the source index of each output position,
// for linear/cubic its taps (clamped indices) and weights; antialias (18) stretches the filter by
// 1/scale when downsampling. Linear and cubic are separable, so they run one pass per resized
// axis ([pre, n, post] → [pre, m, post]: contiguous rows weighted and summed), shrinking axes
// first so no intermediate outgrows both input and output; axes the mapping leaves unchanged
// (N and C of an image) cost nothing. Nearest is one gather over the raw element words (any
// dtype) that copies an output row instead of gathering it again when it repeats the previous
// one (every other row of a 2× upsample). tf_crop_and_resize's out-of-range positions are
// filled with extrapolation_value at the end.
//
// Resize-10 and Upsample have no attributes but mode: coordinates are "asymmetric" and nearest
// truncates when upsampling and rounds up when downsampling (onnxruntime's rule for them;
// Upsample's scales are ≥ 1, so it always takes the floor, as the ONNX reference does).
import type { Tensor, TensorType } from "../graph/tensor.ts";
import { elementCount } from "../graph/tensor.ts";
import type { OpContext, OpImpl } from "./types.ts";
import { attrFloat, attrInt, attrInts, attrString } from "./attrs.ts";
import { ModelError, ShapeError, UnsupportedError } from "../errors.ts";
import { checkDims, stridesOf, toInts } from "./tensor_util.ts";
import { allocOut, need, normAxes, who } from "./op_args.ts";
import { type Elems, elems, scalarOf, words } from "./strided.ts";
import { halfToFloat, storeHalf } from "./quant.ts";

const f32 = Math.fround;

type Mode = "nearest" | "linear" | "cubic";
type Inputs = readonly (Tensor | undefined)[];

const COORD_MODES = new Set([
  "half_pixel",
  "half_pixel_symmetric",
  "pytorch_half_pixel",
  "align_corners",
  "asymmetric",
  "tf_half_pixel_for_nn",
  "tf_crop_and_resize",
]);
const NEAREST_MODES = new Set(["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]);
const POLICIES = new Set(["stretch", "not_larger", "not_smaller"]);

interface Spec {
  mode: Mode;
  coord: string;
  /** A nearest_mode, or "simple" (Resize-10, Upsample). */
  nearest: string;
  cubicA: number;
  excludeOutside: boolean;
  antialias: boolean;
  extrapolation: number;
}

/** The attributes, by op and opset. */
function readSpec(ctx: OpContext, upsample: boolean): Spec {
  const node = ctx.node;
  const mode = attrString(node, "mode", "nearest");
  const modes = upsample ? ["nearest", "linear"] : ["nearest", "linear", "cubic"];
  if (!modes.includes(mode)) {
    throw new ModelError(`${who(ctx)}: unknown mode '${mode}' (${modes.join(", ")})`);
  }
  const spec: Spec = {
    mode: mode as Mode,
    coord: "asymmetric",
    nearest: "simple",
    cubicA: -0.75,
    excludeOutside: false,
    antialias: false,
    extrapolation: 0,
  };
  if (upsample || ctx.opset < 11) return spec;
  spec.coord = attrString(node, "coordinate_transformation_mode", "half_pixel");
  if (!COORD_MODES.has(spec.coord)) {
    throw new ModelError(`${who(ctx)}: unknown coordinate_transformation_mode '${spec.coord}'`);
  }
  spec.nearest = attrString(node, "nearest_mode", "round_prefer_floor");
  if (!NEAREST_MODES.has(spec.nearest)) {
    throw new ModelError(`${who(ctx)}: unknown nearest_mode '${spec.nearest}'`);
  }
  spec.cubicA = f32(attrFloat(node, "cubic_coeff_a", -0.75));
  spec.excludeOutside = attrInt(node, "exclude_outside", 0) !== 0;
  spec.extrapolation = attrFloat(node, "extrapolation_value", 0);
  // antialias only changes linear and cubic ("nearest" ignores it, as the spec words it).
  spec.antialias = ctx.opset >= 18 && attrInt(node, "antialias", 0) !== 0 && mode !== "nearest";
  return spec;
}

/** A float tensor of rank ≤ 1 (scales, roi) as float32 values. */
function floatList(t: Tensor, what: string, ctx: OpContext): number[] {
  if (t.dims.length > 1) {
    throw new ShapeError(`${who(ctx)}: ${what} must be 1-D, got shape [${t.dims}]`);
  }
  if (t.type === "float16") return Array.from(halfToFloat(t.data as Uint16Array));
  if (t.type !== "float32" && t.type !== "float64") {
    throw new ShapeError(`${who(ctx)}: ${what} must be a float tensor, not ${t.type}`);
  }
  return Array.from(t.data as Float32Array, f32);
}

/** What the inputs say about the output: its dims, the scale and roi of every axis. */
interface Geometry {
  outDims: number[];
  /** Per axis, the scale the coordinate mappings divide by (float32). */
  scales: number[];
  /** [start_0…start_{r−1}, end_0…end_{r−1}], for tf_crop_and_resize. */
  roi?: number[];
}

function geometry(x: Tensor, inputs: Inputs, spec: Spec, ctx: OpContext, upsample: boolean) {
  const node = ctx.node, r = x.dims.length;
  if (r === 0) throw new ShapeError(`${who(ctx)}: cannot resize a scalar`);
  let scales: number[] | undefined, sizes: number[] | undefined, roiT: Tensor | undefined;
  if (upsample) {
    const t = ctx.opset >= 9 ? inputs[1] : undefined;
    scales = t ? floatList(t, "scales", ctx) : attrInts(node, "scales")?.map(f32);
    if (!scales) throw new ModelError(`${who(ctx)}: scales are required`);
  } else if (ctx.opset < 11) {
    scales = floatList(need(inputs, 1, ctx), "scales", ctx);
  } else {
    roiT = inputs[1];
    if (inputs[2]) scales = floatList(inputs[2], "scales", ctx);
    if (inputs[3]) {
      const t = inputs[3];
      if (t.type !== "int64" && t.type !== "int32") {
        throw new ShapeError(`${who(ctx)}: sizes must be int64, not ${t.type}`);
      }
      if (t.dims.length > 1) {
        throw new ShapeError(`${who(ctx)}: sizes must be 1-D, got shape [${t.dims}]`);
      }
      sizes = toInts(t);
    }
  }
  // An empty scales tensor stands for "not given" (Resize-11 requires the input).
  if (scales?.length === 0) scales = undefined;
  if (sizes?.length === 0) sizes = undefined;
  if (scales && sizes) {
    throw new ModelError(`${who(ctx)}: only one of scales and sizes may be given, not both`);
  }
  if (!scales && !sizes) throw new ModelError(`${who(ctx)}: one of scales or sizes is required`);
  const v18 = !upsample && ctx.opset >= 18;
  const axesAttr = v18 ? attrInts(node, "axes") : undefined;
  const axes = axesAttr ? normAxes(axesAttr, r, ctx) : x.dims.map((_, i) => i);
  const policy = v18 ? attrString(node, "keep_aspect_ratio_policy", "stretch") : "stretch";
  if (!POLICIES.has(policy)) {
    throw new ModelError(`${who(ctx)}: unknown keep_aspect_ratio_policy '${policy}'`);
  }
  const given = (scales ?? sizes)!;
  const what = scales ? "scales" : "sizes";
  if (given.length !== axes.length) {
    throw new ShapeError(
      `${who(ctx)}: ${given.length} ${what} for ${axes.length} axes of [${x.dims}]` +
        (axesAttr ? ` (axes [${axesAttr}])` : ""),
    );
  }
  const full = x.dims.map(() => 1), outDims = [...x.dims];
  if (scales) {
    scales.forEach((s, i) => {
      if (!(s > 0) || !Number.isFinite(s) || (upsample && s < 1)) {
        throw new ShapeError(
          `${who(ctx)}: invalid scale ${s} for axis ${axes[i]} (scales [${scales}]); ` +
            (upsample ? "Upsample scales must be ≥ 1" : "scales must be finite and > 0"),
        );
      }
      const a = axes[i];
      full[a] = s;
      outDims[a] = Math.trunc(f32(s * x.dims[a]));
    });
  } else {
    sizes!.forEach((n, i) => {
      const a = axes[i], d = x.dims[a];
      if (!Number.isSafeInteger(n) || n < 0 || (n === 0 && d !== 0)) {
        throw new ShapeError(
          `${who(ctx)}: invalid size ${n} for axis ${a} (sizes [${sizes}]); sizes must be > 0`,
        );
      }
      outDims[a] = n;
      full[a] = d === 0 ? 1 : f32(n / d);
    });
    if (policy !== "stretch") {
      const ss = axes.map((a) => full[a]);
      const s = policy === "not_larger" ? Math.min(...ss) : Math.max(...ss);
      for (const a of axes) {
        full[a] = s;
        outDims[a] = Math.round(f32(s * x.dims[a]));
      }
    }
  }
  x.dims.forEach((d, a) => {
    if (d === 0 && outDims[a] !== 0) {
      throw new ShapeError(`${who(ctx)}: cannot resize the empty axis ${a} to ${outDims[a]}`);
    }
  });
  const geo: Geometry = { outDims, scales: full };
  if (spec.coord === "tf_crop_and_resize") {
    const roi = roiT ? floatList(roiT, "roi", ctx) : [];
    if (roi.length !== 2 * axes.length) {
      throw new ShapeError(
        `${who(ctx)}: tf_crop_and_resize needs a roi of ${2 * axes.length} values ` +
          `(starts and ends of ${axes.length} axes), got ${roi.length}`,
      );
    }
    const full = [...x.dims.map(() => 0), ...x.dims.map(() => 1)];
    axes.forEach((a, i) => {
      full[a] = roi[i];
      full[r + a] = roi[axes.length + i];
    });
    geo.roi = full;
  }
  return geo;
}

// ---- Coordinates -----------------------------------------------------------------------------

/**
 * Input coordinate of every output position along one axis (float32 values, as onnxruntime's
 * float arithmetic gives them).
 */
function coordinates(
  mode: string,
  m: number,
  n: number,
  s: number,
  r0: number,
  r1: number,
): Float64Array {
  const xs = new Float64Array(m);
  // An axis of scale 1 keeps its positions whatever the mode (as onnxruntime maps it).
  if (s === 1) {
    for (let o = 0; o < m; o++) xs[o] = o;
    return xs;
  }
  for (let o = 0; o < m; o++) {
    let x: number;
    switch (mode) {
      case "asymmetric":
        x = f32(o / s);
        break;
      case "pytorch_half_pixel":
        x = m > 1 ? f32(f32(f32(o + 0.5) / s) - 0.5) : 0;
        break;
      case "tf_half_pixel_for_nn":
        x = f32(f32(o + 0.5) / s);
        break;
      case "align_corners":
        x = m === 1 ? 0 : f32(f32(o * (n - 1)) / (m - 1));
        break;
      case "tf_crop_and_resize":
        x = m > 1
          ? f32(f32(r0 * (n - 1)) + f32(f32(f32(o * f32(r1 - r0)) * (n - 1)) / (m - 1)))
          : f32(0.5 * f32(r0 + r1) * (n - 1));
        break;
      case "half_pixel_symmetric": {
        // The roi's centre maps to the output's centre when ⌊scale·n⌋ rounds the size down.
        const adjustment = f32(m / f32(s * n));
        const offset = f32(f32(n / 2) * f32(1 - adjustment));
        x = f32(offset + (o + 0.5) / s - 0.5);
        break;
      }
      default: // half_pixel
        x = f32(f32(f32(o + 0.5) / s) - 0.5);
    }
    xs[o] = x;
  }
  return xs;
}

/** std::round: halves away from zero. */
const roundAway = (x: number) => (x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5));
/**
 * How close to k + ½ a coordinate counts as halfway for round_prefer_floor/ceil: float32 makes
 * 14.5 = (4 + 0.5)·20/6 − 0.5 come out as 14.499999, and onnxruntime (since its fix of
 * microsoft/onnxruntime#28291) treats |frac − ½| ≤ 1e-6 as the tie.
 */
const TIE = f32(1e-6);
const isTie = (x: number) => Math.abs(x - Math.floor(x) - 0.5) <= TIE;

function nearestIndex(mode: string, x: number, down: boolean): number {
  switch (mode) {
    case "round_prefer_floor":
      return isTie(x) ? Math.floor(x) : roundAway(x);
    case "round_prefer_ceil":
      return isTie(x) ? Math.floor(x) + 1 : roundAway(x);
    case "floor":
      return Math.floor(x);
    case "ceil":
      return Math.ceil(x);
    default: // simple
      return down ? Math.ceil(x) : Math.trunc(x);
  }
}

/** Output positions whose coordinate falls outside the input (tf_crop_and_resize only). */
function outsideOf(spec: Spec, xs: Float64Array, n: number): Uint8Array | undefined {
  if (spec.coord !== "tf_crop_and_resize") return undefined;
  const out = new Uint8Array(xs.length);
  let any = false;
  for (let o = 0; o < xs.length; o++) {
    if (xs[o] < 0 || xs[o] > n - 1) {
      out[o] = 1;
      any = true;
    }
  }
  return any ? out : undefined;
}

// ---- Linear / cubic tables --------------------------------------------------------------------

/** One axis of a separable interpolation: K taps (clamped input indices, weights) per output. */
interface Taps {
  axis: number;
  m: number;
  k: number;
  idx: Int32Array;
  w: Float64Array;
}

function cubicWeight(t: number, a: number): number {
  const x = Math.abs(t);
  if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
}

function tapsOf(spec: Spec, axis: number, xs: Float64Array, n: number, s: number): Taps {
  const m = xs.length, last = n - 1;
  const clamp = (i: number) => (i < 0 ? 0 : i > last ? last : i);
  if (!spec.antialias && spec.mode === "linear") {
    // Two taps around the coordinate clamped into the input, as onnxruntime's (bi|tri)linear.
    const idx = new Int32Array(2 * m), w = new Float64Array(2 * m);
    for (let o = 0; o < m; o++) {
      const x = Math.min(Math.max(xs[o], 0), last);
      const i = Math.floor(x), frac = f32(x - i);
      idx[2 * o] = i;
      idx[2 * o + 1] = Math.min(i + 1, last);
      w[2 * o] = 1 - frac;
      w[2 * o + 1] = frac;
    }
    return { axis, m, k: 2, idx, w };
  }
  // Cubic (four taps around ⌊x⌋), or an antialiasing filter of half-width R input pixels: taps
  // at every i with |i − x| < R, weighted filter((i − x)·min(scale, 1)) and normalized.
  const aa = spec.antialias, cubic = spec.mode === "cubic";
  const sp = Math.min(s, 1);
  const half = aa ? (cubic ? 2 : 1) / sp : 2;
  const k = aa ? 2 * Math.ceil(half) + 1 : 4;
  const idx = new Int32Array(k * m), w = new Float64Array(k * m);
  const filter = cubic
    ? (t: number) => cubicWeight(t, spec.cubicA)
    : (t: number) => Math.max(0, 1 - Math.abs(t));
  for (let o = 0; o < m; o++) {
    const x = xs[o], j = o * k;
    const lo = aa ? Math.floor(x - half) + 1 : Math.floor(x) - 1;
    const hi = aa ? Math.min(Math.ceil(x + half) - 1, lo + k - 1) : lo + 3;
    let sum = 0;
    for (let i = lo, t = j; i <= hi; i++, t++) {
      const wt = spec.excludeOutside && (i < 0 || i > last) ? 0 : filter(aa ? (i - x) * sp : i - x);
      idx[t] = clamp(i);
      w[t] = wt;
      sum += wt;
    }
    for (let t = j + hi - lo + 1; t < j + k; t++) idx[t] = clamp(hi);
    // Cubic weights sum to 1 on their own; an antialiasing filter, or taps excluded at the
    // border, need normalizing.
    if ((aa || spec.excludeOutside) && sum !== 0 && sum !== 1) {
      for (let t = j; t < j + k; t++) w[t] /= sum;
    }
  }
  return { axis, m, k, idx, w };
}

/** True when the taps reproduce the input (an axis the resize leaves as it is). */
function isIdentity(t: Taps, n: number): boolean {
  if (t.m !== n) return false;
  for (let o = 0; o < t.m; o++) {
    let self = 0;
    for (let j = o * t.k; j < (o + 1) * t.k; j++) {
      if (t.idx[j] === o) self += t.w[j];
      else if (t.w[j] !== 0) return false;
    }
    if (self !== 1) return false;
  }
  return true;
}

type FloatBuf = Float32Array | Float64Array;

/** One separable pass: [pre, n, post] → [pre, m, post] along t.axis of `dims`. */
function pass(src: FloatBuf, dims: readonly number[], t: Taps, dst: FloatBuf): void {
  let pre = 1, post = 1;
  for (let d = 0; d < t.axis; d++) pre *= dims[d];
  for (let d = t.axis + 1; d < dims.length; d++) post *= dims[d];
  const n = dims[t.axis], { m, k, idx, w } = t;
  if (post === 1) {
    // Along the innermost axis: per output, a dot product of k gathered inputs.
    for (let p = 0; p < pre; p++) {
      const sb = p * n, db = p * m;
      if (k === 2) {
        for (let o = 0, j = 0; o < m; o++, j += 2) {
          dst[db + o] = w[j] * src[sb + idx[j]] + w[j + 1] * src[sb + idx[j + 1]];
        }
      } else if (k === 4) {
        for (let o = 0, j = 0; o < m; o++, j += 4) {
          dst[db + o] = w[j] * src[sb + idx[j]] + w[j + 1] * src[sb + idx[j + 1]] +
            w[j + 2] * src[sb + idx[j + 2]] + w[j + 3] * src[sb + idx[j + 3]];
        }
      } else {
        for (let o = 0, j = 0; o < m; o++, j += k) {
          let acc = 0;
          for (let q = j; q < j + k; q++) if (w[q] !== 0) acc += w[q] * src[sb + idx[q]];
          dst[db + o] = acc;
        }
      }
    }
    return;
  }
  // Along an outer axis: each output row is a weighted sum of k contiguous input rows.
  for (let p = 0; p < pre; p++) {
    for (let o = 0, j = 0; o < m; o++, j += k) {
      const d0 = (p * m + o) * post;
      const a = (p * n + idx[j]) * post, wa = w[j];
      if (k === 2) {
        const b = (p * n + idx[j + 1]) * post, wb = w[j + 1];
        for (let q = 0; q < post; q++) dst[d0 + q] = wa * src[a + q] + wb * src[b + q];
        continue;
      }
      if (k === 4) {
        const b = (p * n + idx[j + 1]) * post, wb = w[j + 1];
        const c = (p * n + idx[j + 2]) * post, wc = w[j + 2];
        const e = (p * n + idx[j + 3]) * post, we = w[j + 3];
        for (let q = 0; q < post; q++) {
          dst[d0 + q] = wa * src[a + q] + wb * src[b + q] + wc * src[c + q] + we * src[e + q];
        }
        continue;
      }
      for (let q = 0; q < post; q++) dst[d0 + q] = wa * src[a + q];
      for (let u = j + 1; u < j + k; u++) {
        const wu = w[u];
        if (wu === 0) continue;
        const b = (p * n + idx[u]) * post;
        for (let q = 0; q < post; q++) dst[d0 + q] += wu * src[b + q];
      }
    }
  }
}

/** Fills the output positions along `axis` marked in `outside` with `value`. */
function fillOutside(
  out: Elems,
  dims: readonly number[],
  axis: number,
  outside: Uint8Array,
  value: unknown,
): void {
  let pre = 1, post = 1;
  for (let d = 0; d < axis; d++) pre *= dims[d];
  for (let d = axis + 1; d < dims.length; d++) post *= dims[d];
  const m = dims[axis];
  for (let p = 0; p < pre; p++) {
    for (let o = 0; o < m; o++) {
      if (outside[o]) out.fill(value, (p * m + o) * post, (p * m + o + 1) * post);
    }
  }
}

const FLOATS: readonly TensorType[] = ["float32", "float64", "float16"];

function interpolate(x: Tensor, y: Tensor, geo: Geometry, spec: Spec, ctx: OpContext): void {
  const r = x.dims.length, { outDims, scales, roi } = geo;
  const plan: Taps[] = [];
  const outside: [number, Uint8Array][] = [];
  for (let a = 0; a < r; a++) {
    const n = x.dims[a];
    const xs = coordinates(spec.coord, outDims[a], n, scales[a], roi?.[a] ?? 0, roi?.[r + a] ?? 1);
    const out = outsideOf(spec, xs, n);
    if (out) outside.push([a, out]);
    const taps = tapsOf(spec, a, xs, n, scales[a]);
    if (out || !isIdentity(taps, n)) plan.push(taps);
  }
  // Shrinking axes first: every intermediate is at most the larger of input and output. Among
  // equal ratios the inner axis first: its pass gathers, the outer ones stream whole rows.
  plan.sort((p, q) => p.m / x.dims[p.axis] - q.m / x.dims[q.axis] || q.axis - p.axis);
  const wide = x.type === "float64";
  const Buf = wide ? Float64Array : Float32Array;
  let cur: FloatBuf = x.type === "float16"
    ? halfToFloat(x.data as Uint16Array)
    : x.data as FloatBuf;
  const out: FloatBuf = x.type === "float16" ? new Float32Array(y.data.length) : y.data as FloatBuf;
  let dims = [...x.dims];
  plan.forEach((t, i) => {
    const next = [...dims];
    next[t.axis] = t.m;
    let dst: FloatBuf = out;
    if (i < plan.length - 1) {
      checkDims(next, x.type, `${who(ctx)} intermediate`);
      dst = new Buf(elementCount(next));
    }
    pass(cur, dims, t, dst);
    cur = dst;
    dims = next;
  });
  if (!plan.length) out.set(cur);
  for (const [a, o] of outside) fillOutside(elems(out), outDims, a, o, spec.extrapolation);
  if (x.type === "float16") storeHalf(out, y.data as Uint16Array);
}

// ---- Nearest --------------------------------------------------------------------------------

function nearest(x: Tensor, y: Tensor, geo: Geometry, spec: Spec): void {
  const r = x.dims.length, { outDims, scales, roi } = geo;
  const [src, k] = words(x.data), [dst] = words(y.data);
  const inSt = stridesOf(x.dims);
  const outside: [number, Uint8Array][] = [];
  // Per axis, the source offset (in words) of every output position.
  const maps = outDims.map((m, a) => {
    const n = x.dims[a];
    const xs = coordinates(spec.coord, m, n, scales[a], roi?.[a] ?? 0, roi?.[r + a] ?? 1);
    const out = outsideOf(spec, xs, n);
    if (out) outside.push([a, out]);
    const map = new Int32Array(m);
    for (let o = 0; o < m; o++) {
      const i = nearestIndex(spec.nearest, xs[o], scales[a] < 1);
      map[o] = (i < 0 ? 0 : i >= n ? n - 1 : i) * inSt[a] * k;
    }
    return map;
  });
  const last = maps[r - 1], nLast = outDims[r - 1], row = nLast * k;
  // The innermost axis unchanged: rows copy as runs.
  const runs = nLast === x.dims[r - 1] && last.every((v, j) => v === j * k);
  const copy = dst as unknown as { copyWithin(t: number, s: number, e: number): void };
  const idx = new Array<number>(r - 1).fill(0);
  let p = 0, prev = -1;
  for (;;) {
    let base = 0;
    for (let d = 0; d < r - 1; d++) base += maps[d][idx[d]];
    if (base === prev) {
      copy.copyWithin(p, p - row, p);
      p += row;
    } else if (runs) {
      dst.set(src.subarray(base, base + row), p);
      p += row;
    } else if (k === 1) {
      for (let j = 0; j < nLast; j++) dst[p++] = src[base + last[j]];
    } else {
      for (let j = 0; j < nLast; j++) {
        for (let t = 0, s = base + last[j]; t < k; t++) dst[p++] = src[s + t];
      }
    }
    prev = base;
    let d = r - 2;
    for (; d >= 0; d--) {
      if (++idx[d] < outDims[d]) break;
      idx[d] = 0;
    }
    if (d < 0) break;
  }
  if (outside.length) {
    const v = scalarOf(y.type, spec.extrapolation);
    for (const [a, o] of outside) fillOutside(elems(y.data), outDims, a, o, v);
  }
}

// ---- The ops ------------------------------------------------------------------------------------

function resizeWith(upsample: boolean): OpImpl {
  return (inputs, ctx) => {
    const x = need(inputs, 0, ctx);
    const spec = readSpec(ctx, upsample);
    const geo = geometry(x, inputs, spec, ctx, upsample);
    if (spec.mode !== "nearest" && !FLOATS.includes(x.type)) {
      const types = FLOATS.join("/");
      throw new UnsupportedError(`${who(ctx)}: mode '${spec.mode}' takes ${types}, not ${x.type}`);
    }
    const y = allocOut(ctx, 0, x.type, geo.outDims);
    if (y.data.length === 0) return [y];
    if (spec.mode === "nearest") nearest(x, y, geo, spec);
    else interpolate(x, y, geo, spec, ctx);
    return [y];
  };
}

export const RESIZE_OPS: Record<string, OpImpl> = {
  Resize: resizeWith(false),
  Upsample: resizeWith(true),
};
