// Gather and GatherElements: indexed reads along one axis (negative indices count from the end).
import type { Tensor } from "../graph/tensor.ts";
import { elementCount } from "../graph/tensor.ts";
import type { OpContext, OpImpl } from "./types.ts";
import { attrInt } from "./attrs.ts";
import { ArgumentError, ShapeError } from "../errors.ts";
import { normAxis, stridesOf } from "./tensor_util.ts";
import { allocOut, need, who } from "./op_args.ts";
import { elems, words } from "./strided.ts";

/** Indices as non-negative numbers below `dim`, checked once up front. */
function indexList(t: Tensor, dim: number, ctx: OpContext): Float64Array {
  if (t.type !== "int64" && t.type !== "int32") {
    throw new ShapeError(`${who(ctx)}: indices must be int64 or int32, not ${t.type}`);
  }
  const n = t.data.length;
  const out = new Float64Array(n);
  const src = t.data as ArrayLike<number | bigint>;
  for (let i = 0; i < n; i++) {
    let v = Number(src[i]);
    if (v < 0) v += dim;
    if (!(v >= 0 && v < dim)) {
      throw new ArgumentError(`${who(ctx)}: index ${src[i]} is out of range for a dim of ${dim}`);
    }
    out[i] = v;
  }
  return out;
}

const gather: OpImpl = (inputs, ctx) => {
  const x = need(inputs, 0, ctx);
  const idxT = need(inputs, 1, ctx);
  const r = x.dims.length;
  if (r === 0) throw new ShapeError(`${who(ctx)}: data must have rank ≥ 1`);
  const axis = normAxis(attrInt(ctx.node, "axis", 0), r, ctx.node.name);
  const dim = x.dims[axis];
  const ix = indexList(idxT, dim, ctx);
  const dims = [...x.dims.slice(0, axis), ...idxT.dims, ...x.dims.slice(axis + 1)];
  const out = allocOut(ctx, 0, x.type, dims);
  const outer = elementCount(x.dims.slice(0, axis));
  // Moved as words (two per 64-bit element): see words().
  const [src, k] = words(x.data), [dst] = words(out.data);
  const inner = elementCount(x.dims.slice(axis + 1)) * k;
  const n = ix.length;
  let p = 0;
  for (let o = 0; o < outer; o++) {
    const base = o * dim;
    if (inner === 1) {
      for (let k = 0; k < n; k++) dst[p++] = src[base + ix[k]];
    } else if (inner >= 16) {
      for (let k = 0; k < n; k++, p += inner) {
        const s = (base + ix[k]) * inner;
        dst.set(src.subarray(s, s + inner), p);
      }
    } else {
      for (let k = 0; k < n; k++) {
        const s = (base + ix[k]) * inner;
        for (let j = 0; j < inner; j++) dst[p++] = src[s + j];
      }
    }
  }
  return [out];
};

const gatherElements: OpImpl = (inputs, ctx) => {
  const x = need(inputs, 0, ctx);
  const idxT = need(inputs, 1, ctx);
  const r = x.dims.length;
  if (r === 0 || idxT.dims.length !== r) {
    throw new ShapeError(`${who(ctx)}: data [${x.dims}] and indices [${idxT.dims}] ranks differ`);
  }
  const axis = normAxis(attrInt(ctx.node, "axis", 0), r, ctx.node.name);
  for (let d = 0; d < r; d++) {
    if (d !== axis && idxT.dims[d] > x.dims[d]) {
      throw new ShapeError(
        `${who(ctx)}: indices [${idxT.dims}] exceed data [${x.dims}] on axis ${d}`,
      );
    }
  }
  const ix = indexList(idxT, x.dims[axis], ctx);
  const dims = [...idxT.dims];
  const out = allocOut(ctx, 0, x.type, dims);
  if (ix.length === 0) return [out];
  const st = stridesOf(x.dims);
  const sAxis = st[axis];
  // The axis' own coordinate comes from the index, so it contributes no stride to the walk.
  const walk = st.map((s, d) => (d === axis ? 0 : s));
  const last = dims[r - 1], sLast = walk[r - 1];
  const idx = new Array<number>(r - 1).fill(0);
  const src = elems(x.data), dst = elems(out.data);
  let base = 0, p = 0;
  for (;;) {
    for (let j = 0; j < last; j++, p++) dst[p] = src[base + j * sLast + ix[p] * sAxis];
    let d = r - 2;
    for (; d >= 0; d--) {
      base += walk[d];
      if (++idx[d] < dims[d]) break;
      base -= walk[d] * dims[d];
      idx[d] = 0;
    }
    if (d < 0) return [out];
  }
};

export const GATHER_OPS: Record<string, OpImpl> = {
  Gather: gather,
  GatherElements: gatherElements,
};
