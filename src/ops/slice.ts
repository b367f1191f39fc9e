// Slice, Split and Concat: contiguous or strided blocks moved along one or more axes.
import type { Tensor } from "../graph/tensor.ts";
import { elementCount } from "../graph/tensor.ts";
import type { OpContext, OpImpl } from "./types.ts";
import { attrInt, attrInts } from "./attrs.ts";
import { ArgumentError, ModelError, ShapeError } from "../errors.ts";
import { normAxis, stridesOf } from "./tensor_util.ts";
import { allocOut, intList, intsArg, need, normAxes, who } from "./op_args.ts";
import { copyStrided } from "./strided.ts";

function sliceArgs(inputs: readonly (Tensor | undefined)[], ctx: OpContext) {
  // Opset 1–9: attributes; 10+: inputs (steps from 10).
  const old = ctx.opset < 10;
  const starts = old ? attrInts(ctx.node, "starts") : intList(need(inputs, 1, ctx), "starts", ctx);
  const ends = old ? attrInts(ctx.node, "ends") : intList(need(inputs, 2, ctx), "ends", ctx);
  if (!starts || !ends) throw new ModelError(`${who(ctx)}: starts and ends are required`);
  const axes = old ? attrInts(ctx.node, "axes") : intsArg(inputs, 3, "axes", ctx);
  const steps = old ? undefined : intsArg(inputs, 4, "steps", ctx);
  const n = starts.length;
  if (ends.length !== n || (axes && axes.length !== n) || (steps && steps.length !== n)) {
    throw new ShapeError(`${who(ctx)}: starts/ends/axes/steps differ in length`);
  }
  return { starts, ends, axes: axes ?? starts.map((_, i) => i), steps };
}

const slice: OpImpl = (inputs, ctx) => {
  const x = need(inputs, 0, ctx);
  const r = x.dims.length;
  const { starts, ends, axes, steps } = sliceArgs(inputs, ctx);
  const ax = normAxes(axes, r, ctx);
  const begin = new Array<number>(r).fill(0);
  const step = new Array<number>(r).fill(1);
  const dims = [...x.dims];
  const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  ax.forEach((a, i) => {
    const dim = x.dims[a];
    const st = steps ? steps[i] : 1;
    if (st === 0) throw new ArgumentError(`${who(ctx)}: step 0 on axis ${a}`);
    let s = starts[i], e = ends[i];
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    // Positive steps clamp into [0, dim]; negative ones into [0, dim−1] / [−1, dim−1].
    if (st > 0) {
      s = clamp(s, 0, dim);
      e = clamp(e, 0, dim);
    } else {
      s = clamp(s, 0, dim - 1);
      e = clamp(e, -1, dim - 1);
    }
    begin[a] = s;
    step[a] = st;
    dims[a] = Math.max(0, Math.ceil((e - s) / st));
  });
  const st = stridesOf(x.dims);
  let off = 0;
  for (let d = 0; d < r; d++) if (dims[d] > 0) off += begin[d] * st[d];
  const out = allocOut(ctx, 0, x.type, dims);
  copyStrided(
    dims,
    x.data,
    off,
    st.map((s, d) => s * step[d]),
    out.data,
    0,
    stridesOf(dims),
  );
  return [out];
};

const split: OpImpl = (inputs, ctx) => {
  const x = need(inputs, 0, ctx);
  const r = x.dims.length;
  const axis = normAxis(attrInt(ctx.node, "axis", 0), r, ctx.node.name);
  const dim = x.dims[axis];
  const nOut = ctx.node.outputs.length;
  let sizes = ctx.opset < 13 ? attrInts(ctx.node, "split") : intsArg(inputs, 1, "split", ctx);
  if (sizes === undefined || sizes.length === 0) {
    const n = ctx.opset >= 18 ? attrInt(ctx.node, "num_outputs", nOut) : nOut;
    if (n !== nOut || n < 1) {
      throw new ModelError(`${who(ctx)}: num_outputs ${n} but the node has ${nOut} outputs`);
    }
    // Equal chunks; if uneven, ceil(dim / n) each and a smaller last one (opset 18).
    const chunk = Math.ceil(dim / n);
    sizes = new Array<number>(n).fill(chunk);
    sizes[n - 1] = dim - chunk * (n - 1);
    if (sizes[n - 1] < 0) {
      throw new ShapeError(`${who(ctx)}: cannot split ${dim} elements into ${n} chunks`);
    }
  }
  if (sizes.length !== nOut) {
    throw new ShapeError(`${who(ctx)}: split has ${sizes.length} sizes for ${nOut} outputs`);
  }
  if (sizes.some((s) => s < 0) || sizes.reduce((a, b) => a + b, 0) !== dim) {
    throw new ShapeError(`${who(ctx)}: split [${sizes}] does not sum to dim ${dim}`);
  }
  const outer = elementCount(x.dims.slice(0, axis));
  const inner = elementCount(x.dims.slice(axis + 1));
  const src = x.data;
  let at = 0;
  return sizes.map((s, i) => {
    const dims = [...x.dims];
    dims[axis] = s;
    const out = allocOut(ctx, i, x.type, dims);
    const chunk = s * inner;
    copyStrided([outer, chunk], src, at * inner, [dim * inner, 1], out.data, 0, [chunk, 1]);
    at += s;
    return out;
  });
};

const concat: OpImpl = (inputs, ctx) => {
  const all = inputs.filter((t): t is Tensor => t !== undefined);
  if (all.length === 0) throw new ShapeError(`${who(ctx)}: no inputs`);
  // Some exporters feed empty 1-D tensors next to rank-r ones; they add nothing.
  const r = (all.find((t) => elementCount(t.dims) !== 0) ?? all[0]).dims.length;
  const parts = all.filter((t) => t.dims.length === r || elementCount(t.dims) !== 0);
  const axis = normAxis(attrInt(ctx.node, "axis", 0), r, ctx.node.name);
  const first = parts[0];
  const dims = [...first.dims];
  dims[axis] = 0;
  for (const t of parts) {
    if (t.type !== first.type) {
      throw new ShapeError(`${who(ctx)}: inputs mix ${first.type} and ${t.type}`);
    }
    if (t.dims.length !== r || t.dims.some((d, i) => i !== axis && d !== first.dims[i])) {
      throw new ShapeError(
        `${who(ctx)}: input shapes [${first.dims}] and [${t.dims}] differ off axis ${axis}`,
      );
    }
    dims[axis] += t.dims[axis];
  }
  const out = allocOut(ctx, 0, first.type, dims);
  const outer = elementCount(dims.slice(0, axis));
  const inner = elementCount(dims.slice(axis + 1));
  const row = dims[axis] * inner;
  const dst = out.data;
  let at = 0;
  for (const t of parts) {
    const chunk = t.dims[axis] * inner;
    copyStrided([outer, chunk], t.data, 0, [chunk, 1], dst, at, [row, 1]);
    at += chunk;
  }
  return [out];
};

export const SLICE_OPS: Record<string, OpImpl> = {
  Slice: slice,
  Split: split,
  Concat: concat,
};
