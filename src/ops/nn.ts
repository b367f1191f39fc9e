// Convolution, pooling and matrix products in TypeScript over NCHW tensors with any of 1–3
// spatial dims and every ONNX attribute: the general fallback behind the Wasm kernels (2-D
// float/int8 NHWC) and their scalar reference. Loops live in conv_nd.ts, pool_nd.ts and below;
// this file checks inputs and attributes and picks the loop.
import type { Node } from "../graph/ir.ts";
import { elementCount, type Tensor, type TensorType } from "../graph/tensor.ts";
import { ModelError, ShapeError } from "../errors.ts";
import { attrFloat, attrInt, attrInts } from "./attrs.ts";
import { broadcastDims, broadcastStrides, checkDims, isBig } from "./tensor_util.ts";
import type { OpContext, OpImpl } from "./types.ts";
import {
  canon3,
  convNd,
  type NdWindow,
  ndWindow,
  type NumArray,
  type OutArray,
} from "./conv_nd.ts";
import { avgPoolNd, globalPool, maxPoolNd, type PoolArray } from "./pool_nd.ts";
import { halfToFloat, roundHalfEven, storeHalf } from "./quant.ts";

const where = (node: Node) => `node '${node.name}' (${node.op})`;

function need(inputs: readonly (Tensor | undefined)[], i: number, node: Node, what: string) {
  const t = inputs[i];
  if (!t) throw new ModelError(`${where(node)}: missing input ${i} (${what})`);
  return t;
}

function wantType(t: Tensor, types: readonly TensorType[], node: Node, what: string): void {
  if (!types.includes(t.type)) {
    throw new ShapeError(`${where(node)}: ${what} has type ${t.type}, expected ${types.join("/")}`);
  }
}

function alloc(ctx: OpContext, i: number, type: TensorType, dims: number[]): Tensor {
  checkDims(dims, type, `${where(ctx.node)} output ${i}`);
  return ctx.alloc(i, type, dims);
}

const FLOATS: readonly TensorType[] = ["float32", "float64", "float16"];

/** Float data the loops can read: float16 is widened to f32. */
function floats(t: Tensor): Float32Array | Float64Array {
  return t.type === "float16" ? halfToFloat(t.data as Uint16Array) : t.data as Float32Array;
}

/** Where a numeric loop writes: the output itself, or an f32 buffer for a float16 output. */
function outBuf(y: Tensor): OutArray {
  return y.type === "float16" ? new Float32Array(y.data.length) : y.data as OutArray;
}

/** Narrows a float16 output's f32 buffer into it. */
function finish(y: Tensor, buf: OutArray | PoolArray): Tensor {
  if (y.type === "float16") storeHalf(buf as Float32Array, y.data as Uint16Array);
  return y;
}

function hasOutput(node: Node, i: number): boolean {
  return node.outputs.length > i && node.outputs[i] !== undefined && node.outputs[i].name !== "";
}

// ---------------------------------------------------------------------------------------------
// Convolution

interface ConvSetup {
  n: number;
  c: number;
  m: number;
  group: number;
  outDims: number[];
  win: NdWindow;
}

function convSetup(x: Tensor, w: Tensor, node: Node): ConvSetup {
  const r = x.dims.length;
  if (r < 3) throw new ShapeError(`${where(node)}: input has rank ${r}, expected at least 3`);
  if (w.dims.length !== r) {
    throw new ShapeError(`${where(node)}: weight has rank ${w.dims.length}, input has rank ${r}`);
  }
  const [n, c] = x.dims, m = w.dims[0];
  const group = attrInt(node, "group", 1);
  if (!Number.isSafeInteger(group) || group < 1) {
    throw new ModelError(`${where(node)}: group must be a positive integer, got ${group}`);
  }
  if (w.dims[1] * group !== c) {
    throw new ShapeError(
      `${where(node)}: input has ${c} channels, weight expects ${w.dims[1]}×${group} groups`,
    );
  }
  if (m % group !== 0) {
    throw new ShapeError(`${where(node)}: ${m} output channels not divisible by group ${group}`);
  }
  const kernel = w.dims.slice(2);
  const ks = attrInts(node, "kernel_shape");
  if (ks && ks.length > 0 && (ks.length !== kernel.length || ks.some((k, i) => k !== kernel[i]))) {
    throw new ShapeError(`${where(node)}: kernel_shape [${ks}] does not match weight [${w.dims}]`);
  }
  const win = ndWindow(node, x.dims.slice(2), kernel);
  return { n, c, m, group, outDims: [n, m, ...win.outDims], win };
}

function checkBias(b: Tensor | undefined, m: number, node: Node): void {
  if (b && (b.dims.length !== 1 || b.dims[0] !== m)) {
    throw new ShapeError(`${where(node)}: bias has shape [${b.dims}], expected [${m}]`);
  }
}

function runConv(
  s: ConvSetup,
  x: NumArray,
  w: NumArray,
  b: NumArray | undefined,
  y: OutArray,
): void {
  const g = canon3(s.win);
  const planeSize = s.win.outDims.reduce((a, d) => a * d, 1);
  convNd(x, w, b, s, g, y, new Float64Array(planeSize));
}

const conv: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const x = need(inputs, 0, node, "X"), w = need(inputs, 1, node, "W"), b = inputs[2];
  wantType(x, FLOATS, node, "X");
  for (const t of [w, b]) {
    if (t && t.type !== x.type) {
      throw new ShapeError(`${where(node)}: inputs mix ${x.type} and ${t.type}`);
    }
  }
  const s = convSetup(x, w, node);
  checkBias(b, s.m, node);
  const y = alloc(ctx, 0, x.type, s.outDims);
  const buf = outBuf(y);
  runConv(s, floats(x), floats(w), b && floats(b), buf);
  return [finish(y, buf)];
};

const INT8S: readonly TensorType[] = ["uint8", "int8"];

/** One zero point per tensor (scalar or one element); 0 when absent. */
function scalarZero(t: Tensor | undefined, like: Tensor, node: Node, what: string): number {
  if (!t) return 0;
  if (t.type !== like.type) {
    throw new ShapeError(`${where(node)}: ${what} is ${t.type}, its input is ${like.type}`);
  }
  if (t.data.length !== 1) {
    throw new ShapeError(`${where(node)}: ${what} must be a scalar, got shape [${t.dims}]`);
  }
  return Number(t.data[0]);
}

/** A per-tensor or per-output-channel (length m) parameter as m numbers. */
function perChannel(t: Tensor | undefined, m: number, node: Node, what: string, dflt: number) {
  const out = new Float64Array(m).fill(dflt);
  if (!t) return out;
  const n = t.data.length;
  if (n === 1) out.fill(Number(t.data[0]));
  else if (t.dims.length === 1 && n === m) {
    for (let i = 0; i < m; i++) {
      out[i] = Number(t.data[i]);
    }
  } else {throw new ShapeError(
      `${where(node)}: ${what} has shape [${t.dims}], expected 1 or [${m}]`,
    );}
  return out;
}

/** x − zero point as int32. */
function shifted(x: Tensor, zero: number): Int32Array {
  const src = x.data as Uint8Array, out = new Int32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i] - zero;
  return out;
}

/** w − zero point of its output channel (the leading dim), as int32. */
function shiftedWeights(w: Tensor, zeros: Float64Array): Int32Array {
  const src = w.data as Uint8Array, out = new Int32Array(src.length);
  const per = w.dims[0] > 0 ? src.length / w.dims[0] : 0;
  for (let oc = 0, i = 0; oc < w.dims[0]; oc++) {
    const z = zeros[oc];
    for (let e = 0; e < per; e++, i++) out[i] = src[i] - z;
  }
  return out;
}

const convInteger: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const x = need(inputs, 0, node, "x"), w = need(inputs, 1, node, "w");
  wantType(x, INT8S, node, "x");
  wantType(w, INT8S, node, "w");
  const s = convSetup(x, w, node);
  const xz = scalarZero(inputs[2], x, node, "x_zero_point");
  const wzT = inputs[3];
  if (wzT && wzT.type !== w.type) {
    throw new ShapeError(`${where(node)}: w_zero_point is ${wzT.type}, w is ${w.type}`);
  }
  const wz = perChannel(wzT, s.m, node, "w_zero_point", 0);
  const y = alloc(ctx, 0, "int32", s.outDims);
  runConv(s, shifted(x, xz), shiftedWeights(w, wz), undefined, y.data as Int32Array);
  return [y];
};

/** Quantized output range of a u8/i8 type. */
function qrange(type: TensorType): [number, number] {
  return type === "int8" ? [-128, 127] : [0, 255];
}

/** The one float of a scalar scale input (f32 or f16). */
function scalarScale(t: Tensor, node: Node, what: string): number {
  if (t.type !== "float32" && t.type !== "float16") {
    throw new ShapeError(`${where(node)}: ${what} has type ${t.type}, expected float32/float16`);
  }
  if (t.data.length !== 1) {
    throw new ShapeError(`${where(node)}: ${what} must be a scalar, got shape [${t.dims}]`);
  }
  return floats(t)[0];
}

const qlinearConv: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const x = need(inputs, 0, node, "x"), w = need(inputs, 3, node, "w");
  wantType(x, INT8S, node, "x");
  wantType(w, INT8S, node, "w");
  const s = convSetup(x, w, node);
  const xs = scalarScale(need(inputs, 1, node, "x_scale"), node, "x_scale");
  const xz = scalarZero(inputs[2], x, node, "x_zero_point");
  const wsT = need(inputs, 4, node, "w_scale");
  wantType(wsT, ["float32", "float16"], node, "w_scale");
  const ws = perChannel({ ...wsT, data: floats(wsT) }, s.m, node, "w_scale", 1);
  const wzT = inputs[5];
  if (wzT && wzT.type !== w.type) {
    throw new ShapeError(`${where(node)}: w_zero_point is ${wzT.type}, w is ${w.type}`);
  }
  const wz = perChannel(wzT, s.m, node, "w_zero_point", 0);
  const ys = scalarScale(need(inputs, 6, node, "y_scale"), node, "y_scale");
  const yzT = inputs[7];
  if (yzT) wantType(yzT, INT8S, node, "y_zero_point");
  const outType = yzT ? yzT.type : x.type;
  const yz = yzT ? scalarZero(yzT, yzT, node, "y_zero_point") : 0;
  const b = inputs[8];
  if (b) wantType(b, ["int32"], node, "B");
  checkBias(b, s.m, node);
  const acc = new Int32Array(elementCount(s.outDims));
  runConv(s, shifted(x, xz), shiftedWeights(w, wz), b?.data as Int32Array, acc);
  const y = alloc(ctx, 0, outType, s.outDims);
  const out = y.data as Uint8Array, [qmin, qmax] = qrange(outType);
  const f = Math.fround;
  const plane = s.win.outDims.reduce((a, d) => a * d, 1);
  for (let i = 0, p = 0; p < s.n * s.m; p++) {
    // ONNX reference: the multiplier in f32, the product in f64, then zero point, clip, round.
    const mult = f(f(xs * ws[p % s.m]) / ys);
    for (let e = 0; e < plane; e++, i++) {
      const v = acc[i] * mult + yz;
      out[i] = roundHalfEven(v < qmin ? qmin : v > qmax ? qmax : v);
    }
  }
  return [y];
};

// ---------------------------------------------------------------------------------------------
// Pooling

const POOL_TYPES: readonly TensorType[] = ["float32", "float64", "float16", "int8", "uint8"];

function lowestOf(type: TensorType): number {
  return type === "int8" ? -128 : type === "uint8" ? 0 : -Infinity;
}

function poolInput(x: Tensor, node: Node): void {
  if (x.dims.length < 3) {
    throw new ShapeError(`${where(node)}: input has rank ${x.dims.length}, expected at least 3`);
  }
}

function poolWindow(x: Tensor, node: Node) {
  const ks = attrInts(node, "kernel_shape");
  if (!ks || ks.length === 0) throw new ModelError(`${where(node)}: kernel_shape is required`);
  const ceil = attrInt(node, "ceil_mode", 0) !== 0;
  return ndWindow(node, x.dims.slice(2), ks, ceil);
}

/** Pool data the loops can read and write (float16 goes through f32). */
function poolData(t: Tensor): PoolArray {
  return t.type === "float16" ? halfToFloat(t.data as Uint16Array) : t.data as PoolArray;
}

function poolOut(y: Tensor): PoolArray {
  return y.type === "float16" ? new Float32Array(y.data.length) : y.data as PoolArray;
}

const maxPool: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const x = need(inputs, 0, node, "X");
  wantType(x, POOL_TYPES, node, "X");
  poolInput(x, node);
  const win = poolWindow(x, node);
  const storage = attrInt(node, "storage_order", 0);
  if (storage !== 0 && storage !== 1) {
    throw new ModelError(`${where(node)}: storage_order must be 0 or 1, got ${storage}`);
  }
  const dims = [x.dims[0], x.dims[1], ...win.outDims];
  const y = alloc(ctx, 0, x.type, dims);
  const idx = hasOutput(node, 1) ? alloc(ctx, 1, "int64", dims) : undefined;
  const buf = poolOut(y);
  maxPoolNd(
    poolData(x),
    x.dims[0] * x.dims[1],
    canon3(win),
    buf,
    lowestOf(x.type),
    idx?.data as BigInt64Array | undefined,
    storage === 1,
  );
  finish(y, buf);
  return idx ? [y, idx] : [y];
};

const averagePool: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const x = need(inputs, 0, node, "X");
  wantType(x, FLOATS, node, "X");
  poolInput(x, node);
  const win = poolWindow(x, node);
  const dims = [x.dims[0], x.dims[1], ...win.outDims];
  const y = alloc(ctx, 0, x.type, dims);
  const buf = poolOut(y);
  const includePad = attrInt(node, "count_include_pad", 0) !== 0;
  avgPoolNd(floats(x), x.dims[0] * x.dims[1], canon3(win), buf, includePad);
  return [finish(y, buf)];
};

function globalPoolOp(max: boolean): OpImpl {
  return (inputs, ctx) => {
    const node = ctx.node;
    const x = need(inputs, 0, node, "X");
    wantType(x, max ? POOL_TYPES : FLOATS, node, "X");
    if (x.dims.length < 2) {
      throw new ShapeError(`${where(node)}: input has rank ${x.dims.length}, expected at least 2`);
    }
    const planes = x.dims[0] * x.dims[1];
    const size = elementCount(x.dims.slice(2));
    const y = alloc(ctx, 0, x.type, [x.dims[0], x.dims[1], ...x.dims.slice(2).map(() => 1)]);
    const buf = poolOut(y);
    globalPool(poolData(x), planes, size, buf, max, lowestOf(x.type));
    return [finish(y, buf)];
  };
}

// ---------------------------------------------------------------------------------------------
// Matrix products

/** A batched product [...batch, M, K] × [...batch, K, N] after numpy.matmul's 1-D promotion. */
export interface MatmulPlan {
  /** Output dims as returned (promoted 1-D dims removed). */
  outDims: number[];
  /** Output dims with M and N kept: what per-row / per-column parameters broadcast against. */
  fullDims: number[];
  /** A and B dims after promotion. */
  aDims: number[];
  bDims: number[];
  batchDims: number[];
  batch: number;
  m: number;
  k: number;
  n: number;
  /** Element offset of each batch's matrix in A and B. */
  aOff: Int32Array;
  bOff: Int32Array;
}

/** Offsets, per index of `dims` (row-major), of a tensor with `strides` over those dims. */
function offsetsOver(dims: number[], strides: number[], scale: number): Int32Array {
  const count = elementCount(dims);
  const out = new Int32Array(count);
  const r = dims.length, idx = new Array<number>(r).fill(0);
  let off = 0;
  for (let i = 0; i < count; i++) {
    out[i] = off * scale;
    for (let d = r - 1; d >= 0; d--) {
      if (++idx[d] < dims[d]) {
        off += strides[d];
        break;
      }
      off -= strides[d] * (dims[d] - 1);
      idx[d] = 0;
    }
  }
  return out;
}

export function planMatmul(a: number[], b: number[], node: Node): MatmulPlan {
  if (a.length === 0 || b.length === 0) {
    throw new ShapeError(`${where(node)}: operands must have rank ≥ 1, got [${a}] and [${b}]`);
  }
  const aDims = a.length === 1 ? [1, a[0]] : a;
  const bDims = b.length === 1 ? [b[0], 1] : b;
  const m = aDims[aDims.length - 2], k = aDims[aDims.length - 1];
  const k2 = bDims[bDims.length - 2], n = bDims[bDims.length - 1];
  if (k !== k2) {
    throw new ShapeError(`${where(node)}: inner dims differ: [${a}] × [${b}]`);
  }
  const aBatch = aDims.slice(0, -2), bBatch = bDims.slice(0, -2);
  const batchDims = broadcastDims(aBatch, bBatch, node.name);
  const fullDims = [...batchDims, m, n];
  const outDims = [...batchDims];
  if (a.length > 1) outDims.push(m);
  if (b.length > 1) outDims.push(n);
  checkDims(fullDims, "float64", `${where(node)} output`);
  const batch = elementCount(batchDims);
  let aOff = offsetsOver(batchDims, broadcastStrides(aBatch, batchDims), m * k);
  let bOff = offsetsOver(batchDims, broadcastStrides(bBatch, batchDims), k * n);
  let plan = { outDims, fullDims, aDims, bDims, batchDims, batch, m, k, n, aOff, bOff };
  // B shared by every batch and A's batches contiguous: one taller product.
  if (batch > 1 && bOff.every((o) => o === 0) && aOff.every((o, i) => o === i * m * k)) {
    aOff = new Int32Array(1);
    bOff = new Int32Array(1);
    plan = { ...plan, batch: 1, m: m * batch, aOff, bOff };
  }
  return plan;
}

/**
 * acc[0 .. m·n) = A·B for one matrix pair: A row-major [m, k] at `ao`, B [k, n] at `bo`
 * (or [n, k] with `bT`). Sums in f64.
 */
function matmulInto(
  a: NumArray,
  ao: number,
  b: NumArray,
  bo: number,
  m: number,
  k: number,
  n: number,
  bT: boolean,
  acc: Float64Array,
): void {
  if (bT || n < 8) {
    // Dot products: contiguous B rows when transposed; avoids a tiny inner loop for narrow B.
    const bs = bT ? 1 : n, bj = bT ? k : 1;
    for (let i = 0; i < m; i++) {
      const ai = ao + i * k;
      for (let j = 0; j < n; j++) {
        const bb = bo + j * bj;
        let s = 0;
        for (let p = 0; p < k; p++) s += a[ai + p] * b[bb + p * bs];
        acc[i * n + j] = s;
      }
    }
    return;
  }
  acc.fill(0, 0, m * n);
  for (let i = 0; i < m; i++) {
    const ai = ao + i * k, ri = i * n;
    for (let p = 0; p < k; p++) {
      const av = a[ai + p], bp = bo + p * n;
      for (let j = 0; j < n; j++) acc[ri + j] += av * b[bp + j];
    }
  }
}

/** Numeric data for the f64 loops; f16 widened to f32, other types as they are. */
function numbers(t: Tensor): NumArray {
  return t.type === "float16" ? halfToFloat(t.data as Uint16Array) : t.data as NumArray;
}

const MATMUL_TYPES: readonly TensorType[] = [
  "float32",
  "float64",
  "float16",
  "int32",
  "uint32",
  "int64",
  "uint64",
];

function bigMatmul(
  a: BigInt64Array | BigUint64Array,
  ao: number,
  b: BigInt64Array | BigUint64Array,
  bo: number,
  m: number,
  k: number,
  n: number,
  bT: boolean,
  emit: (i: number, j: number, v: bigint) => void,
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0n;
      for (let p = 0; p < k; p++) s += a[ao + i * k + p] * b[bo + (bT ? j * k + p : p * n + j)];
      emit(i, j, s);
    }
  }
}

const matMul: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const a = need(inputs, 0, node, "A"), b = need(inputs, 1, node, "B");
  wantType(a, MATMUL_TYPES, node, "A");
  if (b.type !== a.type) throw new ShapeError(`${where(node)}: A is ${a.type}, B is ${b.type}`);
  const p = planMatmul(a.dims, b.dims, node);
  const y = alloc(ctx, 0, a.type, p.outDims);
  const mn = p.m * p.n;
  if (isBig(a.type)) {
    const out = y.data as BigInt64Array | BigUint64Array, u = a.type === "uint64";
    for (let bi = 0; bi < p.batch; bi++) {
      bigMatmul(
        a.data as BigInt64Array,
        p.aOff[bi],
        b.data as BigInt64Array,
        p.bOff[bi],
        p.m,
        p.k,
        p.n,
        false,
        (i, j, v) => out[bi * mn + i * p.n + j] = u ? BigInt.asUintN(64, v) : BigInt.asIntN(64, v),
      );
    }
    return [y];
  }
  const buf = outBuf(y);
  const av = numbers(a), bv = numbers(b), acc = new Float64Array(mn);
  // A bias [N] as third input: what graph/fuse_transformer.ts fuses from MatMul + Add.
  const bias = inputs[2] && numbers(inputs[2]);
  if (bias && bias.length !== p.n) {
    throw new ShapeError(`${where(node)}: the fused bias has ${bias.length} values, N is ${p.n}`);
  }
  for (let bi = 0; bi < p.batch; bi++) {
    matmulInto(av, p.aOff[bi], bv, p.bOff[bi], p.m, p.k, p.n, false, acc);
    if (bias) { for (let i = 0; i < mn; i++) acc[i] += bias[i % p.n]; }
    buf.set(acc, bi * mn);
  }
  return [finish(y, buf)];
};

const gemm: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const a = need(inputs, 0, node, "A"), b = need(inputs, 1, node, "B"), c = inputs[2];
  wantType(a, MATMUL_TYPES, node, "A");
  for (const t of [b, c]) {
    if (t && t.type !== a.type) {
      throw new ShapeError(`${where(node)}: inputs mix ${a.type} and ${t.type}`);
    }
  }
  if (a.dims.length !== 2 || b.dims.length !== 2) {
    throw new ShapeError(`${where(node)}: A [${a.dims}] and B [${b.dims}] must be matrices`);
  }
  const tA = attrInt(node, "transA", 0) !== 0, tB = attrInt(node, "transB", 0) !== 0;
  const alpha = attrFloat(node, "alpha", 1), beta = attrFloat(node, "beta", 1);
  const [m, k] = tA ? [a.dims[1], a.dims[0]] : a.dims;
  const [k2, n] = tB ? [b.dims[1], b.dims[0]] : b.dims;
  if (k !== k2) {
    throw new ShapeError(`${where(node)}: inner dims differ: A' has ${k}, B' has ${k2}`);
  }
  let cStrides: number[] | undefined;
  if (c && beta !== 0) {
    const cd = c.dims;
    if (cd.length > 2 || cd.some((d, i) => d !== 1 && d !== [m, n][2 - cd.length + i])) {
      throw new ShapeError(`${where(node)}: C [${cd}] does not broadcast to [${m}, ${n}]`);
    }
    cStrides = broadcastStrides(cd, [m, n]);
  }
  const y = alloc(ctx, 0, a.type, [m, n]);
  if (isBig(a.type)) {
    const out = y.data as BigInt64Array | BigUint64Array, u = a.type === "uint64";
    const at = tA ? transposeBig(a.data as BigInt64Array, a.dims[0], a.dims[1]) : a.data;
    const cv = c?.data as BigInt64Array | undefined;
    const al = BigInt(Math.trunc(alpha)), be = BigInt(Math.trunc(beta));
    bigMatmul(at as BigInt64Array, 0, b.data as BigInt64Array, 0, m, k, n, tB, (i, j, v) => {
      let s = v * al;
      if (cv && cStrides) s += be * cv[i * cStrides[0] + j * cStrides[1]];
      out[i * n + j] = u ? BigInt.asUintN(64, s) : BigInt.asIntN(64, s);
    });
    return [y];
  }
  let av = numbers(a);
  if (tA) av = transpose(av, a.dims[0], a.dims[1]);
  const acc = new Float64Array(m * n);
  matmulInto(av, 0, numbers(b), 0, m, k, n, tB, acc);
  const buf = outBuf(y);
  if (c && cStrides) {
    const cv = numbers(c), [sm, sn] = cStrides;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        buf[i * n + j] = alpha * acc[i * n + j] + beta * cv[i * sm + j * sn];
      }
    }
  } else if (alpha === 1) {
    buf.set(acc);
  } else {
    for (let i = 0; i < m * n; i++) buf[i] = alpha * acc[i];
  }
  return [finish(y, buf)];
};

function transpose(a: NumArray, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
  return t;
}

function transposeBig(a: BigInt64Array, rows: number, cols: number): BigInt64Array {
  const t = new BigInt64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
  return t;
}

/**
 * Strides of a quantization parameter against `target` dims. One element is per tensor; a 1-D
 * parameter is per row ([M] → [M, 1]) for the A side and per column ([N]) otherwise; anything
 * else must broadcast to `target` (e.g. [..., M, 1] or [..., 1, N]).
 */
function paramStrides(
  t: Tensor,
  target: number[],
  perRow: boolean,
  node: Node,
  what: string,
): number[] {
  if (t.data.length === 1) return target.map(() => 0);
  const dims = perRow && t.dims.length === 1 ? [t.dims[0], 1] : t.dims;
  const off = target.length - dims.length;
  if (off < 0 || dims.some((d, i) => d !== 1 && d !== target[off + i])) {
    throw new ShapeError(`${where(node)}: ${what} [${t.dims}] does not fit [${target}]`);
  }
  return broadcastStrides(dims, target);
}

/** x − zero point (broadcast per paramStrides) as int32 over x's promoted dims. */
function subtractZero(x: Tensor, dims: number[], z: Tensor | undefined, zs: number[] | undefined) {
  const src = x.data as Uint8Array, out = new Int32Array(src.length);
  if (!z || !zs) {
    out.set(src);
    return out;
  }
  const zd = z.data as Uint8Array;
  if (zd.length === 1) {
    const v = zd[0];
    for (let i = 0; i < src.length; i++) out[i] = src[i] - v;
    return out;
  }
  const off = offsetsOver(dims, zs, 1);
  for (let i = 0; i < src.length; i++) out[i] = src[i] - zd[off[i]];
  return out;
}

function zeroOf(t: Tensor | undefined, like: Tensor, node: Node, what: string): void {
  if (t && t.type !== like.type) {
    throw new ShapeError(`${where(node)}: ${what} is ${t.type}, its input is ${like.type}`);
  }
}

const matMulInteger: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const a = need(inputs, 0, node, "A"), b = need(inputs, 1, node, "B");
  wantType(a, INT8S, node, "A");
  wantType(b, INT8S, node, "B");
  const az = inputs[2], bz = inputs[3];
  zeroOf(az, a, node, "a_zero_point");
  zeroOf(bz, b, node, "b_zero_point");
  const p = planMatmul(a.dims, b.dims, node);
  const as = az && paramStrides(az, p.aDims, true, node, "a_zero_point");
  const bs = bz && paramStrides(bz, p.bDims, false, node, "b_zero_point");
  const av = subtractZero(a, p.aDims, az, as), bv = subtractZero(b, p.bDims, bz, bs);
  const y = alloc(ctx, 0, "int32", p.outDims);
  const out = y.data as Int32Array, mn = p.m * p.n, acc = new Float64Array(mn);
  for (let bi = 0; bi < p.batch; bi++) {
    matmulInto(av, p.aOff[bi], bv, p.bOff[bi], p.m, p.k, p.n, false, acc);
    out.set(acc, bi * mn);
  }
  return [y];
};

const qlinearMatMul: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const a = need(inputs, 0, node, "a"), b = need(inputs, 3, node, "b");
  wantType(a, INT8S, node, "a");
  wantType(b, INT8S, node, "b");
  const aS = need(inputs, 1, node, "a_scale"), bS = need(inputs, 4, node, "b_scale");
  const yS = need(inputs, 6, node, "y_scale");
  for (const [t, w] of [[aS, "a_scale"], [bS, "b_scale"], [yS, "y_scale"]] as const) {
    wantType(t, ["float32", "float16"], node, w);
  }
  const az = inputs[2], bz = inputs[5], yz = inputs[7];
  zeroOf(az, a, node, "a_zero_point");
  zeroOf(bz, b, node, "b_zero_point");
  if (yz) wantType(yz, INT8S, node, "y_zero_point");
  const outType = yz ? yz.type : a.type;
  const p = planMatmul(a.dims, b.dims, node);
  const av = subtractZero(a, p.aDims, az, az && paramStrides(az, p.aDims, true, node, "a_zp"));
  const bv = subtractZero(b, p.bDims, bz, bz && paramStrides(bz, p.bDims, false, node, "b_zp"));
  // Scales and the output zero point, each as an offset table over the full output.
  const full = p.fullDims;
  const table = (t: Tensor, perRow: boolean, what: string) =>
    t.data.length === 1
      ? undefined
      : offsetsOver(full, paramStrides(t, full, perRow, node, what), 1);
  const aSv = floats(aS), bSv = floats(bS), ySv = floats(yS);
  const aSi = table(aS, true, "a_scale"), bSi = table(bS, false, "b_scale");
  const ySi = table(yS, false, "y_scale"), yZi = yz && table(yz, false, "y_zero_point");
  const yZv = yz?.data as Uint8Array | undefined;
  const y = alloc(ctx, 0, outType, p.outDims);
  const out = y.data as Uint8Array, [qmin, qmax] = qrange(outType);
  const mn = p.m * p.n, acc = new Float64Array(mn), f = Math.fround;
  for (let bi = 0; bi < p.batch; bi++) {
    matmulInto(av, p.aOff[bi], bv, p.bOff[bi], p.m, p.k, p.n, false, acc);
    for (let e = 0; e < mn; e++) {
      const i = bi * mn + e;
      // ONNX reference: a_scale·b_scale/y_scale in f32, times the int32 sum in f64.
      const mult = f(f(aSv[aSi ? aSi[i] : 0] * bSv[bSi ? bSi[i] : 0]) / ySv[ySi ? ySi[i] : 0]);
      const zp = yZv ? yZv[yZi ? yZi[i] : 0] : 0;
      const v = roundHalfEven(acc[e] * mult) + zp;
      out[i] = v < qmin ? qmin : v > qmax ? qmax : v;
    }
  }
  return [y];
};

export const NN_OPS: Record<string, OpImpl> = {
  Conv: conv,
  ConvInteger: convInteger,
  QLinearConv: qlinearConv,
  MaxPool: maxPool,
  AveragePool: averagePool,
  GlobalMaxPool: globalPoolOp(true),
  GlobalAveragePool: globalPoolOp(false),
  MatMul: matMul,
  MatMulInteger: matMulInteger,
  QLinearMatMul: qlinearMatMul,
  Gemm: gemm,
};
