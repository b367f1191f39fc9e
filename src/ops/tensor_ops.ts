// Shape and data-movement operators. Ops that only relabel dims (Identity, Reshape, Flatten,
// Squeeze, Unsqueeze, Dropout at inference) return views of their input's data; the executor
// copies where an output must live elsewhere. The copying ops live in their own files.
import type { Tensor, TensorType } from "../graph/tensor.ts";
import { elementCount } from "../graph/tensor.ts";
import type { OpContext, OpImpl } from "./types.ts";
import { attrInt, attrTensor } from "./attrs.ts";
import { ArgumentError, ModelError, ShapeError } from "../errors.ts";
import { isBig } from "./tensor_util.ts";
import { allocOut, intList, intsArg, need, normAxes, scalarArg, who } from "./op_args.ts";
import { elems, scalarOf } from "./strided.ts";
import { TRANSPOSE_OPS } from "./transpose.ts";
import { SLICE_OPS } from "./slice.ts";
import { GATHER_OPS } from "./gather.ts";
import { PAD_OPS } from "./pad.ts";

const view = (x: Tensor, dims: number[]): Tensor => ({ type: x.type, dims, data: x.data });

function checkCount(x: Tensor, dims: number[], ctx: OpContext): void {
  if (elementCount(dims) !== x.data.length) {
    throw new ShapeError(
      `${who(ctx)}: cannot reshape [${x.dims}] (${x.data.length} elements) to [${dims}]`,
    );
  }
}

const identity: OpImpl = (inputs, ctx) => {
  const x = need(inputs, 0, ctx);
  return [view(x, [...x.dims])];
};

/** Inference-mode Dropout: the output is the input, the optional mask all kept. */
const dropout: OpImpl = (inputs, ctx) => {
  const x = need(inputs, 0, ctx);
  if (ctx.opset >= 12 && inputs[2]) {
    const training = scalarArg(inputs[2], "training_mode", ctx) !== 0;
    const ratio = inputs[1] ? scalarArg(inputs[1], "ratio", ctx) : 0.5;
    if (training && ratio !== 0) {
      throw new ArgumentError(`${who(ctx)}: training mode is not supported`);
    }
  }
  const out = [view(x, [...x.dims])];
  if (ctx.node.outputs.length > 1) {
    // Before opset 10 the mask has the input's type (ones); from 10 on it is bool.
    const type: TensorType = ctx.opset >= 10 ? "bool" : x.type;
    const mask = allocOut(ctx, 1, type, [...x.dims]);
    elems(mask.data).fill(scalarOf(type, 1));
    out.push(mask);
  }
  return out;
};

const shape: OpImpl = (inputs, ctx) => {
  const x = need(inputs, 0, ctx);
  const r = x.dims.length;
  const clampAxis = (a: number) => Math.min(Math.max(a < 0 ? a + r : a, 0), r);
  const start = clampAxis(attrInt(ctx.node, "start", 0));
  const end = clampAxis(attrInt(ctx.node, "end", r));
  const dims = x.dims.slice(start, Math.max(start, end));
  const out = allocOut(ctx, 0, "int64", [dims.length]);
  const d = out.data as BigInt64Array;
  for (let i = 0; i < dims.length; i++) d[i] = BigInt(dims[i]);
  return [out];
};

const size: OpImpl = (inputs, ctx) => {
  const x = need(inputs, 0, ctx);
  const out = allocOut(ctx, 0, "int64", []);
  (out.data as BigInt64Array)[0] = BigInt(elementCount(x.dims));
  return [out];
};

const reshape: OpImpl = (inputs, ctx) => {
  const x = need(inputs, 0, ctx);
  const want = intList(need(inputs, 1, ctx), "shape", ctx);
  const allowZero = ctx.opset >= 14 && attrInt(ctx.node, "allowzero", 0) === 1;
  const dims: number[] = [];
  let infer = -1, known = 1;
  want.forEach((s, i) => {
    if (s === -1) {
      if (infer >= 0) throw new ShapeError(`${who(ctx)}: shape [${want}] has two -1 dims`);
      infer = i;
      dims.push(1);
      return;
    }
    if (s < -1 || !Number.isSafeInteger(s)) {
      throw new ShapeError(`${who(ctx)}: invalid dimension ${s} in shape [${want}]`);
    }
    if (s === 0 && !allowZero) {
      if (i >= x.dims.length) {
        throw new ShapeError(
          `${who(ctx)}: shape [${want}] copies dim ${i} of a rank-${x.dims.length} input`,
        );
      }
      s = x.dims[i];
    }
    dims.push(s);
    known *= s;
  });
  if (infer >= 0) {
    const total = x.data.length;
    if (allowZero && want.includes(0)) {
      throw new ShapeError(`${who(ctx)}: shape [${want}] mixes 0 and -1 with allowzero=1`);
    }
    // An empty input with an unknown dim next to a 0: the 0 decides, -1 becomes 0.
    dims[infer] = known === 0 ? 0 : total / known;
    if (!Number.isInteger(dims[infer])) {
      throw new ShapeError(
        `${who(ctx)}: cannot reshape [${x.dims}] (${total} elements) to [${want}]`,
      );
    }
  }
  checkCount(x, dims, ctx);
  return [view(x, dims)];
};

const flatten: OpImpl = (inputs, ctx) => {
  const x = need(inputs, 0, ctx);
  const r = x.dims.length;
  const a0 = attrInt(ctx.node, "axis", 1);
  const a = a0 < 0 ? a0 + r : a0;
  if (a < 0 || a > r) throw new ArgumentError(`${who(ctx)}: axis ${a0} is out of range`);
  return [view(x, [elementCount(x.dims.slice(0, a)), elementCount(x.dims.slice(a))])];
};

const squeeze: OpImpl = (inputs, ctx) => {
  const x = need(inputs, 0, ctx);
  const given = intsArg(inputs, 1, "axes", ctx);
  const r = x.dims.length;
  let drop: Set<number>;
  if (given === undefined || given.length === 0) {
    drop = new Set(x.dims.flatMap((d, i) => (d === 1 ? [i] : [])));
  } else {
    drop = new Set(normAxes(given, r, ctx));
    for (const a of drop) {
      if (x.dims[a] !== 1) {
        throw new ShapeError(`${who(ctx)}: cannot squeeze axis ${a} of size ${x.dims[a]}`);
      }
    }
  }
  return [view(x, x.dims.filter((_, i) => !drop.has(i)))];
};

const unsqueeze: OpImpl = (inputs, ctx) => {
  const x = need(inputs, 0, ctx);
  const given = intsArg(inputs, 1, "axes", ctx);
  if (given === undefined) throw new ModelError(`${who(ctx)}: axes are required`);
  const outR = x.dims.length + given.length;
  const add = new Set(normAxes(given, outR, ctx));
  const dims: number[] = [];
  for (let i = 0, j = 0; i < outR; i++) dims.push(add.has(i) ? 1 : x.dims[j++]);
  return [view(x, dims)];
};

const constantOfShape: OpImpl = (inputs, ctx) => {
  const dims = intList(need(inputs, 0, ctx), "shape", ctx);
  const value = attrTensor(ctx.node, "value");
  if (value && value.data.length !== 1) {
    throw new ModelError(`${who(ctx)}: value must hold one element, got [${value.dims}]`);
  }
  const type = value?.type ?? "float32";
  const out = allocOut(ctx, 0, type, dims);
  elems(out.data).fill(value ? value.data[0] : scalarOf(type, 0));
  return [out];
};

const RANGE_TYPES = new Set<TensorType>(["float32", "float64", "int16", "int32", "int64"]);

const range: OpImpl = (inputs, ctx) => {
  const [s, l, d] = [0, 1, 2].map((i) => need(inputs, i, ctx));
  const type = s.type;
  if (l.type !== type || d.type !== type || !RANGE_TYPES.has(type)) {
    throw new ShapeError(`${who(ctx)}: start/limit/delta must share a numeric type`);
  }
  for (const [t, what] of [[s, "start"], [l, "limit"], [d, "delta"]] as const) {
    if (t.data.length !== 1) throw new ShapeError(`${who(ctx)}: ${what} must be a scalar`);
  }
  if (isBig(type)) {
    const [a, b, c] = [s, l, d].map((t) => (t.data as BigInt64Array)[0]);
    if (c === 0n) throw new ArgumentError(`${who(ctx)}: delta is 0`);
    // ceil((b − a) / c) in integers (BigInt division truncates toward zero).
    const num = b - a;
    let q = num / c;
    if (q * c !== num && (num > 0n) === (c > 0n)) q += 1n;
    const n = q > 0n ? Number(q) : 0;
    const out = allocOut(ctx, 0, type, [n]);
    const o = out.data as BigInt64Array;
    for (let i = 0; i < n; i++) o[i] = a + BigInt(i) * c;
    return [out];
  }
  const [a, b, c] = [s, l, d].map((t) => Number(t.data[0]));
  if (c === 0 || !Number.isFinite(a) || !Number.isFinite(b) || !Number.isFinite(c)) {
    throw new ArgumentError(`${who(ctx)}: invalid range ${a}:${b}:${c}`);
  }
  const n = Math.max(Math.ceil((b - a) / c), 0);
  const out = allocOut(ctx, 0, type, [n]);
  const o = out.data as Float32Array;
  for (let i = 0; i < n; i++) o[i] = a + i * c;
  return [out];
};

/** Keeps the upper (j − i ≥ k) or lower (j − i ≤ k) triangle of each trailing matrix. */
const trilu: OpImpl = (inputs, ctx) => {
  const x = need(inputs, 0, ctx);
  const r = x.dims.length;
  if (r < 2) throw new ShapeError(`${who(ctx)}: input must have rank ≥ 2, got [${x.dims}]`);
  const k = inputs[1] ? scalarArg(inputs[1], "k", ctx) : 0;
  const upper = attrInt(ctx.node, "upper", 1) !== 0;
  const rows = x.dims[r - 2], cols = x.dims[r - 1];
  const out = allocOut(ctx, 0, x.type, [...x.dims]);
  const src = elems(x.data), dst = elems(out.data);
  dst.set(src);
  const zero = scalarOf(x.type, 0);
  const mats = rows * cols === 0 ? 0 : x.data.length / (rows * cols);
  for (let m = 0; m < mats; m++) {
    for (let i = 0; i < rows; i++) {
      const row = (m * rows + i) * cols;
      // Columns kept: upper → j ≥ i + k; lower → j ≤ i + k. Zero the rest of the row.
      const clamp = (j: number) => Math.min(Math.max(j, 0), cols);
      if (upper) dst.fill(zero, row, row + clamp(i + k));
      else dst.fill(zero, row + clamp(i + k + 1), row + cols);
    }
  }
  return [out];
};

export const TENSOR_OPS: Record<string, OpImpl> = {
  Identity: identity,
  Dropout: dropout,
  Shape: shape,
  Size: size,
  Reshape: reshape,
  Flatten: flatten,
  Squeeze: squeeze,
  Unsqueeze: unsqueeze,
  ConstantOfShape: constantOfShape,
  Range: range,
  Trilu: trilu,
  ...TRANSPOSE_OPS,
  ...SLICE_OPS,
  ...GATHER_OPS,
  ...PAD_OPS,
};
