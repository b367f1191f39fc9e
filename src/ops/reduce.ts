// Reductions: Reduce{Sum,Mean,Max,Min,Prod,L1,L2,LogSum,LogSumExp,SumSquare} and ArgMax/ArgMin.
//
// The reduced axes are found (attribute or input, depending on the opset), size-1 dims dropped
// and adjacent dims of the same kind merged, so the input becomes alternating kept/reduced
// blocks. Each reduced block is then one [outer, r, inner] pass, last block first: every
// reduction here is associative (sum of sums, max of maxes, logsumexp of logsumexps), so
// chaining passes covers any axis set without a strided odometer, and the common cases (inner
// axes, e.g. LayerNorm-style means; outer axes; spatial means) are a single tight pass.
import { elementCount, type Tensor, type TensorData, type TensorType } from "../graph/tensor.ts";
import type { Node } from "../graph/ir.ts";
import type { OpContext, OpImpl } from "./types.ts";
import { ArgumentError, ShapeError } from "../errors.ts";
import { attrInt, attrInts } from "./attrs.ts";
import { checkDims, isBig, isFloat, normAxis, toInts } from "./tensor_util.ts";

/** Element storage readable as numbers (float16 through a Float16Array view of its bits). */
export type NumView = Exclude<TensorData, BigInt64Array | BigUint64Array> | Float16Array;

/**
 * A tensor's data as numbers: float16 bits are viewed (not copied) as a Float16Array; int64 is
 * converted into a fresh Float64Array (read-only use).
 */
export function numView(t: Tensor): NumView {
  const d = t.data;
  if (t.type === "float16") {
    return new Float16Array(d.buffer as ArrayBuffer, d.byteOffset, d.length);
  }
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) {
    return Float64Array.from(d, (v) => Number(v));
  }
  return d;
}

/** Throws ShapeError naming the node when `t` is missing or of a type outside `ok`. */
export function requireInput(
  t: Tensor | undefined,
  node: Node,
  what: string,
  ok?: (type: TensorType) => boolean,
): Tensor {
  if (!t) throw new ShapeError(`node '${node.name}' (${node.op}): input '${what}' is missing`);
  if (ok && !ok(t.type)) {
    throw new ShapeError(
      `node '${node.name}' (${node.op}): ${what} of type ${t.type} is not supported`,
    );
  }
  if (t.data.length !== elementCount(t.dims)) {
    throw new ShapeError(
      `node '${node.name}' (${node.op}): ${what} holds ${t.data.length} values for dims [${t.dims}]`,
    );
  }
  return t;
}

type Kind = "sum" | "sumabs" | "sumsq" | "max" | "min" | "prod" | "isum" | "iprod" | "lse";
type Post = "none" | "mean" | "sqrt" | "log";

interface ReduceSpec {
  kind: Kind;
  post: Post;
  /** Opset from which axes is an input instead of an attribute. */
  axesInputSince: number;
  bool?: boolean;
}

const SPECS: Record<string, ReduceSpec> = {
  ReduceSum: { kind: "sum", post: "none", axesInputSince: 13 },
  ReduceMean: { kind: "sum", post: "mean", axesInputSince: 18 },
  ReduceMax: { kind: "max", post: "none", axesInputSince: 18, bool: true },
  ReduceMin: { kind: "min", post: "none", axesInputSince: 18, bool: true },
  ReduceProd: { kind: "prod", post: "none", axesInputSince: 18 },
  ReduceL1: { kind: "sumabs", post: "none", axesInputSince: 18 },
  ReduceL2: { kind: "sumsq", post: "sqrt", axesInputSince: 18 },
  ReduceLogSum: { kind: "sum", post: "log", axesInputSince: 18 },
  ReduceLogSumExp: { kind: "lse", post: "none", axesInputSince: 18 },
  ReduceSumSquare: { kind: "sumsq", post: "none", axesInputSince: 18 },
};

const INT_RANGE: Partial<Record<TensorType, [number, number]>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-(2 ** 31), 2 ** 31 - 1],
  uint32: [0, 2 ** 32 - 1],
  bool: [0, 1],
  int4: [-8, 7],
  uint4: [0, 15],
};

const BIG_RANGE: Record<string, [bigint, bigint]> = {
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
};

const numericType = (t: TensorType) => t !== "bool";

/** Which axes of x are reduced, per the opset's rules for axes and noop_with_empty_axes. */
function reducedAxes(
  x: Tensor,
  axesIn: Tensor | undefined,
  node: Node,
  opset: number,
  since: number,
): boolean[] {
  const r = x.dims.length;
  let axes: number[] | undefined;
  let noop = false;
  if (opset >= since) {
    if (axesIn) {
      if (axesIn.type !== "int64" && axesIn.type !== "int32") {
        throw new ShapeError(
          `node '${node.name}' (${node.op}): axes must be int64, not ${axesIn.type}`,
        );
      }
      axes = toInts(axesIn);
    }
    noop = attrInt(node, "noop_with_empty_axes", 0) !== 0;
    // Tolerate models that still carry the attribute.
    if (!axesIn) axes = attrInts(node, "axes");
  } else {
    axes = attrInts(node, "axes");
  }
  const red = new Array<boolean>(r).fill(false);
  if (!axes || axes.length === 0) return noop ? red : red.fill(true);
  for (const a of axes) {
    if (r === 0) {
      normAxis(a, r, node.name);
      continue;
    }
    const n = normAxis(a, r, node.name);
    if (red[n]) {
      throw new ArgumentError(`node '${node.name}' (${node.op}): axis ${a} is listed twice`);
    }
    red[n] = true;
  }
  return red;
}

function reduceOp(spec: ReduceSpec): OpImpl {
  return (inputs, ctx) => {
    const node = ctx.node;
    const x = requireInput(
      inputs[0],
      node,
      "data",
      spec.bool ? undefined : numericType,
    );
    const red = reducedAxes(x, inputs[1], node, ctx.opset, spec.axesInputSince);
    const keep = attrInt(node, "keepdims", 1) !== 0;
    const outDims = keep
      ? x.dims.map((d, i) => (red[i] ? 1 : d))
      : x.dims.filter((_, i) => !red[i]);
    checkDims(outDims, x.type, `node '${node.name}' output`);
    const out = ctx.alloc(0, x.type, outDims);
    let count = 1;
    x.dims.forEach((d, i) => {
      if (red[i]) count *= d;
    });
    if (elementCount(outDims) === 0) return [out];
    if (x.data.length === 0) {
      fillEmpty(out, spec);
      return [out];
    }
    if (
      isBig(x.type) && spec.kind !== "lse" && (spec.post === "none" || spec.post === "mean")
    ) {
      reduceBig(x, red, out, spec.kind, spec.post === "mean" ? count : 0);
      return [out];
    }
    const res = reduceNumbers(x, red, spec, count);
    writeNumbers(res, out);
    return [out];
  };
}

/** The value of a reduction over nothing: the identity of the op (−∞ / type min for Max). */
function fillEmpty(out: Tensor, spec: ReduceSpec): void {
  const range = INT_RANGE[out.type];
  let v: number;
  switch (spec.kind) {
    case "max":
      v = range ? range[0] : -Infinity;
      break;
    case "min":
      v = range ? range[1] : Infinity;
      break;
    case "prod":
    case "iprod":
      v = 1;
      break;
    case "lse":
      v = -Infinity;
      break;
    default:
      v = spec.post === "mean" ? NaN : spec.post === "log" ? -Infinity : 0;
  }
  if (isBig(out.type)) {
    const br = BIG_RANGE[out.type];
    const b = spec.kind === "max"
      ? br[0]
      : spec.kind === "min"
      ? br[1]
      : Number.isFinite(v)
      ? BigInt(v)
      : 0n;
    (out.data as BigInt64Array).fill(b);
  } else {
    numView(out).fill(v);
  }
}

/** Stores float64 results into the output's element type (truncating/wrapping for ints). */
function writeNumbers(res: Float64Array, out: Tensor): void {
  if (isBig(out.type)) {
    const o = out.data as BigInt64Array;
    for (let i = 0; i < res.length; i++) {
      const v = res[i];
      o[i] = Number.isFinite(v) ? BigInt(Math.trunc(v)) : 0n;
    }
  } else {
    numView(out).set(res);
  }
}

/** Reduces number-valued x over `red`; returns the reduced values in output order. */
function reduceNumbers(x: Tensor, red: boolean[], spec: ReduceSpec, count: number): Float64Array {
  const intType = !isFloat(x.type) && x.type !== "bool";
  let src: ArrayLike<number> = numView(x);
  let kind = spec.kind;
  // Integer Sum/Prod wrap like the fixed-width type does; abs/square are applied up front.
  if (intType && spec.post === "none" && !isBig(x.type)) {
    if (kind === "sumabs" || kind === "sumsq") {
      const s = src, sq = kind === "sumsq";
      const m = new Float64Array(s.length);
      for (let i = 0; i < s.length; i++) m[i] = sq ? Math.imul(s[i], s[i]) : Math.abs(s[i]);
      src = m;
      kind = "isum";
    } else if (kind === "sum") kind = "isum";
    else if (kind === "prod") kind = "iprod";
  }
  // Merged blocks of non-trivial dims.
  const sizes: number[] = [], reds: boolean[] = [];
  x.dims.forEach((d, i) => {
    if (d === 1) return;
    const n = sizes.length;
    if (n && reds[n - 1] === red[i]) sizes[n - 1] *= d;
    else {
      sizes.push(d);
      reds.push(red[i]);
    }
  });
  let cur: Float64Array | undefined;
  if (!reds.includes(true)) {
    // Reduction over single elements (noop_with_empty_axes, or only size-1 axes).
    cur = Float64Array.from(src);
    if (kind === "sumabs") { for (let i = 0; i < cur.length; i++) cur[i] = Math.abs(cur[i]); }
    if (kind === "sumsq") { for (let i = 0; i < cur.length; i++) cur[i] = cur[i] * cur[i]; }
  } else {
    for (let b = sizes.length - 1; b >= 0; b--) {
      if (!reds[b]) continue;
      let outer = 1, inner = 1;
      for (let j = 0; j < b; j++) outer *= sizes[j];
      for (let j = b + 1; j < sizes.length; j++) inner *= sizes[j];
      const dst = new Float64Array(outer * inner);
      pass(cur ?? src, dst, outer, sizes[b], inner, kind);
      sizes.splice(b, 1);
      reds.splice(b, 1);
      cur = dst;
      if (kind === "sumabs" || kind === "sumsq") kind = "sum";
    }
  }
  const res = cur!;
  if (spec.post === "mean") { for (let i = 0; i < res.length; i++) res[i] /= count; }
  else if (spec.post === "sqrt") {
    for (let i = 0; i < res.length; i++) {
      res[i] = Math.sqrt(res[i]);
    }
  } else if (spec.post === "log") {
    for (let i = 0; i < res.length; i++) res[i] = Math.log(res[i]);
  }
  return res;
}

/** dst[o, i] = reduce over k of src[o, k, i]. */
function pass(
  src: ArrayLike<number>,
  dst: Float64Array,
  outer: number,
  r: number,
  inner: number,
  kind: Kind,
): void {
  if (kind === "lse") return passLse(src, dst, outer, r, inner);
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      const base = o * r, end = base + r;
      let acc = src[base];
      switch (kind) {
        case "sum":
          for (let k = base + 1; k < end; k++) acc += src[k];
          break;
        case "sumabs":
          acc = Math.abs(acc);
          for (let k = base + 1; k < end; k++) acc += Math.abs(src[k]);
          break;
        case "sumsq":
          acc *= acc;
          for (let k = base + 1; k < end; k++) acc += src[k] * src[k];
          break;
        case "max":
          for (let k = base + 1; k < end; k++) acc = Math.max(acc, src[k]);
          break;
        case "min":
          for (let k = base + 1; k < end; k++) acc = Math.min(acc, src[k]);
          break;
        case "prod":
          for (let k = base + 1; k < end; k++) acc *= src[k];
          break;
        case "isum":
          acc |= 0;
          for (let k = base + 1; k < end; k++) acc = (acc + src[k]) | 0;
          break;
        case "iprod":
          acc |= 0;
          for (let k = base + 1; k < end; k++) acc = Math.imul(acc, src[k]);
          break;
      }
      dst[o] = acc;
    }
    return;
  }
  // Inner > 1: walk the input contiguously, accumulating a row of `inner` results.
  for (let o = 0; o < outer; o++) {
    const d = o * inner, dEnd = d + inner;
    const s0 = o * r * inner;
    for (let i = 0; i < inner; i++) {
      const v = src[s0 + i];
      dst[d + i] = kind === "sumabs" ? Math.abs(v) : kind === "sumsq" ? v * v : v;
    }
    for (let k = 1; k < r; k++) {
      const s = s0 + k * inner - d;
      switch (kind) {
        case "sum":
          for (let j = d; j < dEnd; j++) dst[j] += src[s + j];
          break;
        case "sumabs":
          for (let j = d; j < dEnd; j++) dst[j] += Math.abs(src[s + j]);
          break;
        case "sumsq":
          for (let j = d; j < dEnd; j++) dst[j] += src[s + j] * src[s + j];
          break;
        case "max":
          for (let j = d; j < dEnd; j++) dst[j] = Math.max(dst[j], src[s + j]);
          break;
        case "min":
          for (let j = d; j < dEnd; j++) dst[j] = Math.min(dst[j], src[s + j]);
          break;
        case "prod":
          for (let j = d; j < dEnd; j++) dst[j] *= src[s + j];
          break;
        case "isum":
          for (let j = d; j < dEnd; j++) dst[j] = (dst[j] + src[s + j]) | 0;
          break;
        case "iprod":
          for (let j = d; j < dEnd; j++) dst[j] = Math.imul(dst[j], src[s + j]);
          break;
      }
    }
  }
}

/** Stable log-sum-exp: shift by the (finite) max so large inputs neither overflow nor vanish. */
function passLse(
  src: ArrayLike<number>,
  dst: Float64Array,
  outer: number,
  r: number,
  inner: number,
): void {
  pass(src, dst, outer, r, inner, "max");
  const sum = new Float64Array(dst.length);
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < r; k++) {
      const s = (o * r + k) * inner;
      for (let i = 0; i < inner; i++) {
        const j = o * inner + i;
        const m = Number.isFinite(dst[j]) ? dst[j] : 0;
        sum[j] += Math.exp(src[s + i] - m);
      }
    }
  }
  for (let j = 0; j < dst.length; j++) {
    const m = Number.isFinite(dst[j]) ? dst[j] : 0;
    dst[j] = Math.log(sum[j]) + m;
  }
}

/** int64/uint64 Sum/Mean/Max/Min/Prod/L1/SumSquare in BigInt, wrapping like the type does. */
function reduceBig(x: Tensor, red: boolean[], out: Tensor, kind: Kind, meanCount: number): void {
  const src = x.data as BigInt64Array;
  const o = out.data as BigInt64Array;
  const dims = x.dims, r = dims.length;
  // Output strides per input axis (0 on reduced axes).
  const ostr = new Array<number>(r).fill(0);
  let acc = 1;
  for (let i = r - 1; i >= 0; i--) {
    if (red[i]) continue;
    ostr[i] = acc;
    acc *= dims[i];
  }
  const range = BIG_RANGE[x.type];
  // Mean needs the unwrapped sum.
  const sums: bigint[] | undefined = meanCount ? new Array<bigint>(o.length).fill(0n) : undefined;
  o.fill(kind === "prod" ? 1n : kind === "max" ? range[0] : kind === "min" ? range[1] : 0n);
  const idx = new Array<number>(r).fill(0);
  let oi = 0;
  for (let i = 0; i < src.length; i++) {
    const v = src[i];
    if (sums) sums[oi] += v;
    else {
      switch (kind) {
        case "sum":
          o[oi] += v;
          break;
        case "sumabs":
          o[oi] += v < 0n ? -v : v;
          break;
        case "sumsq":
          o[oi] += v * v;
          break;
        case "prod":
          o[oi] *= v;
          break;
        case "max":
          if (v > o[oi]) o[oi] = v;
          break;
        case "min":
          if (v < o[oi]) o[oi] = v;
          break;
      }
    }
    for (let a = r - 1; a >= 0; a--) {
      oi += ostr[a];
      if (++idx[a] < dims[a]) break;
      oi -= ostr[a] * dims[a];
      idx[a] = 0;
    }
  }
  if (sums) {
    const c = BigInt(meanCount);
    for (let i = 0; i < o.length; i++) o[i] = sums[i] / c;
  }
}

// ---- ArgMax / ArgMin ----

function argOp(isMax: boolean): OpImpl {
  return (inputs, ctx: OpContext) => {
    const node = ctx.node;
    const x = requireInput(inputs[0], node, "data", numericType);
    const r = x.dims.length;
    const axis = r === 0 ? 0 : normAxis(attrInt(node, "axis", 0), r, node.name);
    const keep = attrInt(node, "keepdims", 1) !== 0;
    const last = ctx.opset >= 12 && attrInt(node, "select_last_index", 0) !== 0;
    const n = r === 0 ? 1 : x.dims[axis];
    let outer = 1, inner = 1;
    for (let i = 0; i < axis; i++) outer *= x.dims[i];
    for (let i = axis + 1; i < r; i++) inner *= x.dims[i];
    const outDims = r === 0
      ? []
      : keep
      ? x.dims.map((d, i) => (i === axis ? 1 : d))
      : x.dims.filter((_, i) => i !== axis);
    checkDims(outDims, "int64", `node '${node.name}' output`);
    const out = ctx.alloc(0, "int64", outDims);
    const o = out.data as BigInt64Array;
    if (o.length === 0) return [out];
    if (n === 0) {
      throw new ShapeError(
        `node '${node.name}' (${node.op}): cannot take ${node.op} over empty axis ${axis} of [${x.dims}]`,
      );
    }
    // Comparisons work unchanged on BigInt arrays, so int64 needs no conversion.
    const src = (isBig(x.type) ? x.data : numView(x)) as ArrayLike<number>;
    for (let a = 0; a < outer; a++) {
      for (let i = 0; i < inner; i++) {
        const base = a * n * inner + i;
        let best = src[base], bi = 0;
        for (let k = 1; k < n; k++) {
          const v = src[base + k * inner];
          if (isMax ? (last ? v >= best : v > best) : (last ? v <= best : v < best)) {
            best = v;
            bi = k;
          }
        }
        o[a * inner + i] = BigInt(bi);
      }
    }
    return [out];
  };
}

export const REDUCE_OPS: Record<string, OpImpl> = {
  ...Object.fromEntries(Object.entries(SPECS).map(([op, spec]) => [op, reduceOp(spec)])),
  ArgMax: argOp(true),
  ArgMin: argOp(false),
};
