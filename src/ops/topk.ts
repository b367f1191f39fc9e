// TopK (opsets 1, 10, 11): the k largest (or, from 11, smallest) elements along an axis, with
// their int64 indices. k is an attribute in opset 1 and an input from 10; axis may be negative.
//
// Order: by value, ties by the lower index (as onnxruntime's comparator and the ONNX reference
// break them). NaN ranks above every number, as in the ONNX reference (NumPy's sort puts NaN
// last, the reference reverses that for `largest`): NaNs come first with largest=1 and last with
// largest=0, among themselves by index. (onnxruntime's own NaN results depend on which of its
// selection algorithms runs, so they have no order to follow.) The output is always sorted,
// which sorted=0 allows.
//
// Per slice along the axis: a scan for k = 1, a bounded heap when k is small next to the axis,
// a full sort of the indices otherwise.
import type { Tensor } from "../graph/tensor.ts";
import type { OpImpl } from "./types.ts";
import { attrInt } from "./attrs.ts";
import { ModelError, ShapeError } from "../errors.ts";
import { isBig, normAxis } from "./tensor_util.ts";
import { allocOut, intList, need, who } from "./op_args.ts";
import { elems } from "./strided.ts";

type Keys = Float64Array | BigInt64Array | BigUint64Array;

/** A comparison "a comes before b" over the slice's values, by index into `v`. */
function beforeFn(v: Keys, largest: boolean): (a: number, b: number) => boolean {
  if (largest) {
    return (a, b) => {
      const x = v[a], y = v[b];
      if (x !== x) return y !== y ? a < b : true;
      if (y !== y) return false;
      return x > y || (x === y && a < b);
    };
  }
  return (a, b) => {
    const x = v[a], y = v[b];
    if (x !== x) return y !== y ? a < b : false;
    if (y !== y) return true;
    return x < y || (x === y && a < b);
  };
}

/** Indices of the k first elements of v[0..n) under `before`, in order. */
function select(n: number, k: number, before: (a: number, b: number) => boolean): number[] {
  if (k === 1) {
    let best = 0;
    for (let i = 1; i < n; i++) if (before(i, best)) best = i;
    return [best];
  }
  const cmp = (a: number, b: number) => (before(a, b) ? -1 : 1);
  if (k * 4 >= n) {
    const all = Array.from({ length: n }, (_, i) => i).sort(cmp);
    return all.slice(0, k);
  }
  // A heap of the best k so far, its root the one that would come last.
  const heap: number[] = [];
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let w = i;
      if (l < heap.length && before(heap[w], heap[l])) w = l;
      if (r < heap.length && before(heap[w], heap[r])) w = r;
      if (w === i) return;
      [heap[i], heap[w]] = [heap[w], heap[i]];
      i = w;
    }
  };
  for (let i = 0; i < n; i++) {
    if (heap.length < k) {
      heap.push(i);
      for (let c = heap.length - 1; c > 0;) {
        const p = (c - 1) >> 1;
        if (!before(heap[p], heap[c])) break;
        [heap[p], heap[c]] = [heap[c], heap[p]];
        c = p;
      }
    } else if (before(i, heap[0])) {
      heap[0] = i;
      down(0);
    }
  }
  return heap.sort(cmp);
}

/** The element values as numbers (float16 decoded) or BigInts, for comparisons. */
function keyView(t: Tensor): ArrayLike<number | bigint> {
  if (t.type === "float16") {
    const d = t.data;
    return new Float16Array(d.buffer as ArrayBuffer, d.byteOffset, d.length);
  }
  return t.data as ArrayLike<number | bigint>;
}

const topk: OpImpl = (inputs, ctx) => {
  const x = need(inputs, 0, ctx);
  if (x.type === "bool") throw new ShapeError(`${who(ctx)}: TopK of bool is not supported`);
  const r = x.dims.length;
  if (r === 0) throw new ShapeError(`${who(ctx)}: TopK needs an input of rank ≥ 1`);
  const axis = normAxis(attrInt(ctx.node, "axis", -1), r, ctx.node.name);
  let k: number;
  const kt = ctx.opset >= 10 ? inputs[1] : undefined;
  if (kt) {
    const ks = intList(kt, "k", ctx);
    if (ks.length !== 1) {
      throw new ShapeError(`${who(ctx)}: k must hold one value, got shape [${kt.dims}]`);
    }
    k = ks[0];
  } else {
    const a = ctx.node.attrs.k;
    if (typeof a !== "number") {
      throw new ModelError(
        `${who(ctx)}: k is required (${ctx.opset >= 10 ? "input 1" : "attribute 'k'"})`,
      );
    }
    k = a;
  }
  const n = x.dims[axis];
  if (!Number.isInteger(k) || k < 0 || k > n) {
    throw new ShapeError(
      `${who(ctx)}: k = ${k} is out of range for axis ${axis} of [${x.dims}] (0 ≤ k ≤ ${n})`,
    );
  }
  const largest = ctx.opset < 11 || attrInt(ctx.node, "largest", 1) !== 0;
  const dims = [...x.dims];
  dims[axis] = k;
  const values = allocOut(ctx, 0, x.type, dims);
  const indices = allocOut(ctx, 1, "int64", dims);
  if (values.data.length === 0) return [values, indices];
  let outer = 1, inner = 1;
  for (let d = 0; d < axis; d++) outer *= x.dims[d];
  for (let d = axis + 1; d < r; d++) inner *= x.dims[d];
  const keys = keyView(x), src = elems(x.data), vOut = elems(values.data);
  const iOut = indices.data as BigInt64Array;
  const slice: Keys = isBig(x.type)
    ? (x.type === "int64" ? new BigInt64Array(n) : new BigUint64Array(n))
    : new Float64Array(n);
  const s = slice as unknown as { [i: number]: number | bigint };
  const before = beforeFn(slice, largest);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      const base = o * n * inner + j, ob = o * k * inner + j;
      for (let i = 0; i < n; i++) s[i] = keys[base + i * inner];
      const top = select(n, k, before);
      for (let t = 0; t < k; t++) {
        vOut[ob + t * inner] = src[base + top[t] * inner];
        iOut[ob + t * inner] = BigInt(top[t]);
      }
    }
  }
  return [values, indices];
};

export const TOPK_OPS: Record<string, OpImpl> = { TopK: topk };
