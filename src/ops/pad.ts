// Ops that grow a tensor: Pad (constant/edge/reflect/wrap, negative pads crop), Tile and
// Expand (broadcast). Tile and Expand are strided copies with zero strides on repeated dims.
import type { Tensor } from "../graph/tensor.ts";
import type { OpContext, OpImpl } from "./types.ts";
import { attrFloat, attrString } from "./attrs.ts";
import { ArgumentError, ModelError, ShapeError } from "../errors.ts";
import { broadcastDims, broadcastStrides, stridesOf } from "./tensor_util.ts";
import { allocOut, intList, intsArg, need, normAxes, who } from "./op_args.ts";
import { copyStrided, elems, scalarOf, words } from "./strided.ts";

/** Pads as [begin_0…begin_{r−1}, end_0…end_{r−1}] over all r axes. */
function fullPads(inputs: readonly (Tensor | undefined)[], r: number, ctx: OpContext): number[] {
  const pads = intsArg(inputs, 1, "pads", ctx);
  if (!pads) throw new ModelError(`${who(ctx)}: pads are required`);
  const axes = ctx.opset >= 18 && inputs[3]
    ? normAxes(intList(inputs[3], "axes", ctx), r, ctx)
    : undefined;
  const n = axes ? axes.length : r;
  if (pads.length !== 2 * n) {
    throw new ShapeError(`${who(ctx)}: ${pads.length} pads for ${n} axes (need ${2 * n})`);
  }
  if (!axes) return pads;
  const full = new Array<number>(2 * r).fill(0);
  axes.forEach((a, i) => {
    full[a] = pads[i];
    full[r + a] = pads[n + i];
  });
  return full;
}

/** The pad value as an element of x's type. */
function padValue(inputs: readonly (Tensor | undefined)[], x: Tensor, ctx: OpContext) {
  if (ctx.opset < 11) return scalarOf(x.type, attrFloat(ctx.node, "value", 0));
  const v = inputs[2];
  if (!v || v.data.length === 0) return scalarOf(x.type, 0);
  if (v.type !== x.type) {
    throw new ShapeError(`${who(ctx)}: constant_value is ${v.type}, data is ${x.type}`);
  }
  return v.data[0];
}

/** Source index along a dim of size n for a padded position i (may be outside [0, n)). */
const SOURCE: Record<string, (i: number, n: number) => number> = {
  edge: (i, n) => Math.min(Math.max(i, 0), n - 1),
  wrap: (i, n) => ((i % n) + n) % n,
  // Mirror without repeating the edge, periodically for pads longer than the dim (as NumPy).
  reflect: (i, n) => {
    if (n === 1) return 0;
    const p = 2 * (n - 1);
    const j = ((i % p) + p) % p;
    return j < n ? j : p - j;
  },
};

const pad: OpImpl = (inputs, ctx) => {
  const x = need(inputs, 0, ctx);
  const r = x.dims.length;
  const mode = attrString(ctx.node, "mode", "constant");
  if (mode !== "constant" && !(mode in SOURCE)) {
    throw new ModelError(`${who(ctx)}: unknown mode '${mode}'`);
  }
  const pads = fullPads(inputs, r, ctx);
  const dims = x.dims.map((d, i) => d + pads[i] + pads[r + i]);
  if (dims.some((d) => d < 0)) {
    throw new ShapeError(`${who(ctx)}: pads [${pads}] crop [${x.dims}] below zero`);
  }
  const out = allocOut(ctx, 0, x.type, dims);
  if (out.data.length === 0) return [out];
  const inSt = stridesOf(x.dims), outSt = stridesOf(dims);
  if (mode === "constant") {
    elems(out.data).fill(padValue(inputs, x, ctx));
    // Copy the part of the input that survives cropping into its place.
    const keep = x.dims.map((d, i) => d - Math.max(-pads[i], 0) - Math.max(-pads[r + i], 0));
    if (keep.some((k) => k <= 0)) return [out];
    let so = 0, dOff = 0;
    for (let i = 0; i < r; i++) {
      so += Math.max(-pads[i], 0) * inSt[i];
      dOff += Math.max(pads[i], 0) * outSt[i];
    }
    copyStrided(keep, x.data, so, inSt, out.data, dOff, outSt);
    return [out];
  }
  if (r === 0) {
    copyStrided([], x.data, 0, [], out.data, 0, []);
    return [out];
  }
  // Per dim, the source offset (in words) of every output position; then one gather walk.
  const [src, k] = words(x.data), [dst] = words(out.data);
  const source = SOURCE[mode];
  const maps = dims.map((d, i) => {
    const n = x.dims[i];
    if (n === 0) throw new ArgumentError(`${who(ctx)}: cannot ${mode}-pad an empty axis ${i}`);
    const m = new Float64Array(d);
    for (let o = 0; o < d; o++) m[o] = source(o - pads[i], n) * inSt[i] * k;
    return m;
  });
  const last = maps[r - 1], nLast = dims[r - 1];
  const idx = new Array<number>(r - 1).fill(0);
  let p = 0;
  for (;;) {
    let base = 0;
    for (let d = 0; d < r - 1; d++) base += maps[d][idx[d]];
    if (k === 1) {
      for (let j = 0; j < nLast; j++) dst[p++] = src[base + last[j]];
    } else {
      for (let j = 0; j < nLast; j++) {
        for (let t = 0, s = base + last[j]; t < k; t++) dst[p++] = src[s + t];
      }
    }
    let d = r - 2;
    for (; d >= 0; d--) {
      if (++idx[d] < dims[d]) break;
      idx[d] = 0;
    }
    if (d < 0) return [out];
  }
};

const tile: OpImpl = (inputs, ctx) => {
  const x = need(inputs, 0, ctx);
  const reps = intList(need(inputs, 1, ctx), "repeats", ctx);
  const r = x.dims.length;
  if (reps.length !== r || reps.some((v) => !(v >= 0))) {
    throw new ShapeError(`${who(ctx)}: repeats [${reps}] do not fit rank ${r}`);
  }
  // Walk [reps_0, d_0, reps_1, d_1, …]: the repeat dims read the input with stride 0.
  const st = stridesOf(x.dims);
  const walk = x.dims.flatMap((d, i) => [reps[i], d]);
  const srcStr = st.flatMap((s) => [0, s]);
  const out = allocOut(ctx, 0, x.type, x.dims.map((d, i) => d * reps[i]));
  copyStrided(walk, x.data, 0, srcStr, out.data, 0, stridesOf(walk));
  return [out];
};

const expand: OpImpl = (inputs, ctx) => {
  const x = need(inputs, 0, ctx);
  const shape = intList(need(inputs, 1, ctx), "shape", ctx);
  if (shape.some((d) => !(d >= 0))) {
    throw new ShapeError(`${who(ctx)}: invalid shape [${shape}]`);
  }
  const dims = broadcastDims(x.dims, shape, ctx.node.name);
  const out = allocOut(ctx, 0, x.type, dims);
  const srcStr = broadcastStrides(x.dims, dims);
  copyStrided(dims, x.data, 0, srcStr, out.data, 0, stridesOf(dims));
  return [out];
};

export const PAD_OPS: Record<string, OpImpl> = {
  Pad: pad,
  Tile: tile,
  Expand: expand,
};
