// Shape and dtype inference over the IR for the CNN and quantization op set. Dimensions may be
// symbolic (ONNX dim_param such as "batch"): they flow through unchanged, so a plan made for
// "batch" serves every batch size. Data-dependent shapes (Reshape's target, Shape's result)
// are resolved when their inputs are constants. Shapes the rules cannot know stay undefined.
import type { Dim, Graph, Node, Value } from "./ir.ts";
import { ONNX_TYPES, type TensorType } from "./tensor.ts";
import { windowGeometry } from "../kernels/conv_geometry.ts";
import { ModelError, ShapeError } from "../errors.ts";

type Rule = (n: Node) => void;

const ints = (n: Node, name: string): number[] | undefined =>
  Array.isArray(n.attrs[name]) ? (n.attrs[name] as number[]) : undefined;
const int = (n: Node, name: string, dflt: number): number =>
  typeof n.attrs[name] === "number" ? (n.attrs[name] as number) : dflt;
const str = (n: Node, name: string, dflt: string): string =>
  typeof n.attrs[name] === "string" ? (n.attrs[name] as string) : dflt;

function set(v: Value | undefined, type: TensorType | undefined, shape: Dim[] | undefined): void {
  if (!v) return;
  if (type) v.type = type;
  if (shape) v.shape = shape;
}

/** The value's data as integers, when it is a constant (Reshape targets, axes, pads). */
function constInts(v: Value | undefined): number[] | undefined {
  const c = v?.constant;
  if (!c) return undefined;
  return Array.from(c.data as ArrayLike<number | bigint>, (x) => Number(x));
}

/** NumPy broadcasting over possibly symbolic dims. */
export function broadcast(a: Dim[], b: Dim[], node: string): Dim[] {
  const r = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1, y = b[b.length - r + i] ?? 1;
    if (x === y || y === 1) out.push(x);
    else if (x === 1) out.push(y);
    else if (typeof x === "number" && typeof y === "number") {
      throw new ShapeError(`node '${node}': shapes [${a}] and [${b}] do not broadcast`);
    } else out.push(typeof x === "number" ? x : typeof y === "number" ? y : "?");
  }
  return out;
}

// ---- Symbolic values of shape tensors -------------------------------------------------------
// A small int64 tensor computed from Shape (exporters' Shape → Gather → Unsqueeze → Concat →
// Reshape targets) has a value made of dims, possibly symbolic, known before any run. Products
// of symbols are canonical strings of sorted factors ("N*S"), so a dim split into N·H and
// merged back compares equal. Only what the Reshape/Expand/ConstantOfShape rules need is
// tracked.

/** Symbolic values by Value, for the inference pass in progress. */
let SYM = new Map<Value, Dim[]>();

/** A value's elements as dims: constants' integers, or its tracked symbolic value. */
function symbolicOf(v: Value | undefined): Dim[] | undefined {
  if (!v) return undefined;
  const c = v.constant;
  if (c) {
    if (c.data.length > 64 || !["int64", "int32"].includes(c.type)) return undefined;
    return Array.from(c.data as ArrayLike<number | bigint>, (x) => Number(x));
  }
  return SYM.get(v);
}

/** Numeric coefficient and sorted symbol factors of a dim; undefined for "?". */
function factors(d: Dim): { k: number; syms: string[] } | undefined {
  if (typeof d === "number") return { k: d, syms: [] };
  if (d === "?" || d === "") return undefined;
  let k = 1;
  const syms: string[] = [];
  for (const f of d.split("*")) {
    if (/^\d+$/.test(f)) k *= Number(f);
    else syms.push(f);
  }
  return { k, syms: syms.sort() };
}

function fromFactors(k: number, syms: string[]): Dim {
  if (!syms.length) return k;
  const s = [...syms].sort().join("*");
  return k === 1 ? s : `${k}*${s}`;
}

function mulDims(a: Dim, b: Dim): Dim {
  const fa = factors(a), fb = factors(b);
  if (!fa || !fb) return "?";
  if (fa.k === 0 || fb.k === 0) return 0;
  return fromFactors(fa.k * fb.k, [...fa.syms, ...fb.syms]);
}

/** Product of `x` divided by product of `rest`, when the division is exact. */
function divideDims(x: Dim[], rest: Dim[]): Dim | undefined {
  let num: Dim = 1, den: Dim = 1;
  for (const d of x) num = mulDims(num, d);
  for (const d of rest) den = mulDims(den, d);
  const fn = factors(num), fd = factors(den);
  if (!fn || !fd || fd.k === 0 || fn.k % fd.k !== 0) return undefined;
  const left = [...fn.syms];
  for (const s of fd.syms) {
    const i = left.indexOf(s);
    if (i < 0) return undefined;
    left.splice(i, 1);
  }
  return fromFactors(fn.k / fd.k, left);
}

function binarySym(a: Dim, b: Dim, op: string): Dim {
  if (typeof a === "number" && typeof b === "number") {
    switch (op) {
      case "Add":
        return a + b;
      case "Sub":
        return a - b;
      case "Mul":
        return a * b;
      case "Div":
        return b !== 0 ? Math.trunc(a / b) : "?";
    }
  }
  if (op === "Mul") return mulDims(a, b);
  if (op === "Div") return divideDims([a], [b]) ?? "?";
  return "?";
}

/** Tracks the symbolic value of n's output where n computes on shape values. */
function propagateSymbolic(n: Node): void {
  const out = n.outputs[0];
  if (!out || n.domain) return;
  const ins = n.inputs.map(symbolicOf);
  let val: Dim[] | undefined;
  switch (n.op) {
    case "Shape": {
      const dims = n.inputs[0]?.shape;
      if (!dims) return;
      const r = dims.length;
      const clampAxis = (a: number) => Math.min(Math.max(a < 0 ? a + r : a, 0), r);
      val = dims.slice(clampAxis(int(n, "start", 0)), clampAxis(int(n, "end", r)));
      break;
    }
    case "Gather": {
      const data = ins[0], idx = constInts(n.inputs[1]);
      if (!data || !idx || int(n, "axis", 0) !== 0 || n.inputs[0]?.shape?.length !== 1) return;
      val = idx.map((i) => data[i < 0 ? i + data.length : i]);
      if (val.some((d) => d === undefined)) return;
      break;
    }
    case "Unsqueeze":
    case "Squeeze":
    case "Cast":
    case "Identity":
      if (ins[0] && ins[0].length <= 1) val = ins[0];
      if (n.op === "Cast" && ins[0]) val = ins[0];
      break;
    case "Concat":
      if (int(n, "axis", 0) !== 0 && int(n, "axis", 0) !== -1) return;
      if (ins.some((v) => !v)) return;
      val = ins.flatMap((v) => v!);
      break;
    case "Slice": {
      const data = ins[0];
      const starts = constInts(n.inputs[1]) ?? ints(n, "starts");
      const ends = constInts(n.inputs[2]) ?? ints(n, "ends");
      if (!data || !starts || !ends || starts.length !== 1) return;
      const steps = constInts(n.inputs[4]);
      if (steps && steps[0] !== 1) return;
      const len = data.length;
      const c = (v: number) => Math.min(Math.max(v < 0 ? v + len : v, 0), len);
      val = data.slice(c(starts[0]), c(ends[0]));
      break;
    }
    case "Add":
    case "Sub":
    case "Mul":
    case "Div": {
      const [a, b] = ins;
      if (!a || !b || (a.length !== b.length && a.length !== 1 && b.length !== 1)) return;
      const len = Math.max(a.length, b.length);
      val = Array.from(
        { length: len },
        (_, i) => binarySym(a[a.length === 1 ? 0 : i], b[b.length === 1 ? 0 : i], n.op),
      );
      break;
    }
    default:
      return;
  }
  if (val && val.length <= 64) SYM.set(out, val);
}

const same: Rule = (n) => set(n.outputs[0], n.inputs[0]?.type, n.inputs[0]?.shape);

function elementwise(n: Node): void {
  const shapes = n.inputs.filter((v) => v?.shape).map((v) => v!.shape!);
  if (shapes.length !== n.inputs.filter((v) => v).length) {
    return set(n.outputs[0], n.inputs[0]?.type, undefined);
  }
  set(n.outputs[0], n.inputs[0]?.type, shapes.reduce((a, b) => broadcast(a, b, n.name)));
}

/** Spatial output of Conv/pooling on NCHW [N, C, H, W]; channels from `cout`. */
function window(
  n: Node,
  x: Value | undefined,
  kernel: number[] | undefined,
  cout: Dim,
): Dim[] | undefined {
  const s = x?.shape;
  if (!s || s.length !== 4 || !kernel) return undefined;
  const [h, w] = [s[2], s[3]];
  if (typeof h !== "number" || typeof w !== "number") return [s[0], cout, "?", "?"];
  const pads = ints(n, "pads");
  const g = windowGeometry(h, w, {
    kernel: [kernel[0], kernel[1]],
    strides: (ints(n, "strides") ?? [1, 1]) as [number, number],
    dilations: (ints(n, "dilations") ?? [1, 1]) as [number, number],
    pads: pads ? [pads[0], pads[1], pads[2], pads[3]] : undefined,
    autoPad: str(n, "auto_pad", "NOTSET") as "NOTSET",
    ceilMode: int(n, "ceil_mode", 0) === 1,
  });
  return [s[0], cout, g.outH, g.outW];
}

function conv(n: Node, wIndex: number, outType?: TensorType): void {
  const w = n.inputs[wIndex]?.shape;
  const kernel = ints(n, "kernel_shape") ??
    (w && w.length === 4 ? (w.slice(2) as number[]) : undefined);
  set(n.outputs[0], outType ?? n.inputs[0]?.type, window(n, n.inputs[0], kernel, w?.[0] ?? "?"));
}

function pool(n: Node): void {
  const x = n.inputs[0]?.shape;
  set(
    n.outputs[0],
    n.inputs[0]?.type,
    window(n, n.inputs[0], ints(n, "kernel_shape"), x?.[1] ?? "?"),
  );
  if (n.outputs[1]) set(n.outputs[1], "int64", n.outputs[0].shape);
}

function matmul(n: Node, outType?: TensorType, bIndex = 1): void {
  const a = n.inputs[0]?.shape, b = n.inputs[bIndex]?.shape;
  if (!a || !b) return set(n.outputs[0], outType ?? n.inputs[0]?.type, undefined);
  const a2 = a.length === 1 ? [1, a[0]] : a, b2 = b.length === 1 ? [b[0], 1] : b;
  const batch = broadcast(a2.slice(0, -2), b2.slice(0, -2), n.name);
  const out = [...batch, a2[a2.length - 2], b2[b2.length - 1]];
  if (a.length === 1) out.splice(out.length - 2, 1);
  if (b.length === 1) out.pop();
  set(n.outputs[0], outType ?? n.inputs[0]?.type, out);
}

function reshape(n: Node): void {
  const x = n.inputs[0]?.shape;
  const target: Dim[] | undefined = constInts(n.inputs[1]) ?? symbolicOf(n.inputs[1]);
  if (!target) {
    // The rank is still known when the target's length is.
    const len = n.inputs[1]?.shape;
    const rank = len?.length === 1 && typeof len[0] === "number" ? len[0] : undefined;
    return set(
      n.outputs[0],
      n.inputs[0]?.type,
      rank === undefined ? undefined : new Array(rank).fill("?"),
    );
  }
  const allowZero = int(n, "allowzero", 0) === 1;
  const out: Dim[] = target.map((d, i) => (d === 0 && !allowZero ? (x?.[i] ?? "?") : d));
  const minus = out.indexOf(-1);
  if (minus >= 0 && x) {
    const rest = out.filter((_, i) => i !== minus);
    const q = divideDims(x, rest);
    if (q !== undefined) out[minus] = q;
  }
  if (minus >= 0 && out[minus] === -1) out[minus] = "?";
  set(n.outputs[0], n.inputs[0]?.type, out);
}

function flatten(n: Node): void {
  const x = n.inputs[0]?.shape;
  if (!x) return set(n.outputs[0], n.inputs[0]?.type, undefined);
  let axis = int(n, "axis", 1);
  if (axis < 0) axis += x.length;
  const prod = (ds: Dim[]): Dim =>
    ds.every((d) => typeof d === "number")
      ? (ds as number[]).reduce((a, b) => a * b, 1)
      : ds.length === 1
      ? ds[0]
      : "?";
  set(n.outputs[0], n.inputs[0]?.type, [prod(x.slice(0, axis)), prod(x.slice(axis))]);
}

function concat(n: Node): void {
  const shapes = n.inputs.map((v) => v?.shape);
  if (shapes.some((s) => !s)) return set(n.outputs[0], n.inputs[0]?.type, undefined);
  let axis = int(n, "axis", 0);
  const rank = shapes[0]!.length;
  if (axis < 0) axis += rank;
  const out = [...shapes[0]!];
  const parts = shapes.map((s) => s![axis]);
  out[axis] = parts.every((d) => typeof d === "number")
    ? (parts as number[]).reduce((a, b) => a + b, 0)
    : "?";
  set(n.outputs[0], n.inputs[0]?.type, out);
}

function transpose(n: Node): void {
  const x = n.inputs[0]?.shape;
  if (!x) return set(n.outputs[0], n.inputs[0]?.type, undefined);
  const perm = ints(n, "perm") ?? x.map((_, i) => x.length - 1 - i);
  set(n.outputs[0], n.inputs[0]?.type, perm.map((p) => x[p]));
}

function gemm(n: Node): void {
  const a = n.inputs[0]?.shape, b = n.inputs[1]?.shape;
  if (!a || !b) return set(n.outputs[0], n.inputs[0]?.type, undefined);
  const m = int(n, "transA", 0) ? a[1] : a[0];
  const nn = int(n, "transB", 0) ? b[0] : b[1];
  set(n.outputs[0], n.inputs[0]?.type, [m, nn]);
}

function unsqueezeSqueeze(n: Node, unsqueeze: boolean): void {
  const x = n.inputs[0]?.shape;
  const axes = ints(n, "axes") ?? constInts(n.inputs[1]);
  if (!x) return set(n.outputs[0], n.inputs[0]?.type, undefined);
  if (unsqueeze) {
    if (!axes) return set(n.outputs[0], n.inputs[0]?.type, undefined);
    const r = x.length + axes.length;
    const norm = axes.map((a) => (a < 0 ? a + r : a));
    const out: Dim[] = [];
    let j = 0;
    for (let i = 0; i < r; i++) out.push(norm.includes(i) ? 1 : x[j++]);
    return set(n.outputs[0], n.inputs[0]?.type, out);
  }
  // Axes from a runtime input: unknown until run time (not "squeeze every 1").
  if (!axes && n.inputs[1]) return set(n.outputs[0], n.inputs[0]?.type, undefined);
  const norm = axes?.map((a) => (a < 0 ? a + x.length : a));
  if (!norm && x.some((d) => typeof d !== "number")) {
    return set(n.outputs[0], n.inputs[0]?.type, undefined);
  }
  set(n.outputs[0], n.inputs[0]?.type, x.filter((d, i) => (norm ? !norm.includes(i) : d !== 1)));
}

function gather(n: Node): void {
  const x = n.inputs[0]?.shape, idx = n.inputs[1]?.shape;
  if (!x || !idx) return set(n.outputs[0], n.inputs[0]?.type, undefined);
  let axis = int(n, "axis", 0);
  if (axis < 0) axis += x.length;
  set(n.outputs[0], n.inputs[0]?.type, [...x.slice(0, axis), ...idx, ...x.slice(axis + 1)]);
}

function expand(n: Node): void {
  const x = n.inputs[0]?.shape, target = symbolicOf(n.inputs[1]);
  set(n.outputs[0], n.inputs[0]?.type, x && target ? broadcast(x, target, n.name) : undefined);
}

function where(n: Node): void {
  const shapes = n.inputs.map((v) => v?.shape);
  set(
    n.outputs[0],
    n.inputs[1]?.type,
    shapes.every((x) => x) ? shapes.reduce((a, b) => broadcast(a!, b!, n.name)) : undefined,
  );
}

function compare(n: Node): void {
  elementwise(n);
  if (n.outputs[0]) n.outputs[0].type = "bool";
}

/** Slice with constant starts/ends/axes/steps (inputs from opset 10, attributes before). */
function slice(n: Node): void {
  const x = n.inputs[0]?.shape;
  const old = !n.inputs[1];
  const starts = old ? ints(n, "starts") : constInts(n.inputs[1]);
  const ends = old ? ints(n, "ends") : constInts(n.inputs[2]);
  const axes = old ? ints(n, "axes") : n.inputs[3] ? constInts(n.inputs[3]) : undefined;
  const steps = old ? undefined : n.inputs[4] ? constInts(n.inputs[4]) : undefined;
  if (!x || !starts || !ends || (!old && n.inputs[3] && !axes) || (n.inputs[4] && !steps)) {
    // Rank survives any slice.
    return set(n.outputs[0], n.inputs[0]?.type, x?.map(() => "?"));
  }
  const out = [...x];
  starts.forEach((st, i) => {
    let a = axes ? axes[i] : i;
    if (a < 0) a += x.length;
    const step = steps ? steps[i] : 1;
    const d = x[a];
    if (typeof d !== "number") {
      // An open slice of a symbolic dim keeps it; anything else is unknown.
      out[a] = st === 0 && step === 1 && ends[i] >= 2 ** 31 - 1 ? d : "?";
      return;
    }
    const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
    const norm = (v: number) => (v < 0 ? v + d : v);
    const [b, e] = step > 0
      ? [clamp(norm(st), 0, d), clamp(norm(ends[i]), 0, d)]
      : [clamp(norm(st), -1, d - 1), clamp(norm(ends[i]), -1, d - 1)];
    out[a] = Math.max(0, Math.ceil((e - b) / step));
  });
  set(n.outputs[0], n.inputs[0]?.type, out);
}

/** Reduce* with axes as attribute (or a constant input from ReduceSum-13 / opset 18). */
function reduce(n: Node): void {
  const x = n.inputs[0]?.shape;
  if (!x) return set(n.outputs[0], n.inputs[0]?.type, undefined);
  const axes = ints(n, "axes") ?? constInts(n.inputs[1]);
  if (!axes && n.inputs[1]) return set(n.outputs[0], n.inputs[0]?.type, undefined);
  const keep = int(n, "keepdims", 1) === 1;
  const noop = int(n, "noop_with_empty_axes", 0) === 1;
  const norm = (axes ?? []).map((a) => (a < 0 ? a + x.length : a));
  if (!norm.length && noop) return set(n.outputs[0], n.inputs[0]?.type, x);
  const reduced = (i: number) => !norm.length || norm.includes(i);
  const out = keep ? x.map((d, i) => (reduced(i) ? 1 : d)) : x.filter((_, i) => !reduced(i));
  set(n.outputs[0], n.inputs[0]?.type, out);
}

const RULES: Record<string, Rule> = {
  Gather: gather,
  Expand: expand,
  Where: where,
  Equal: compare,
  Less: compare,
  Greater: compare,
  LessOrEqual: compare,
  GreaterOrEqual: compare,
  Not: same,
  Slice: slice,
  ReduceMean: reduce,
  ReduceSum: reduce,
  ReduceMax: reduce,
  ReduceMin: reduce,
  LayerNormalization: same,
  Gelu: same,
  Reciprocal: same,
  Softplus: same,
  Log: same,
  Conv: (n) => conv(n, 1),
  ConvInteger: (n) => conv(n, 1, "int32"),
  QLinearConv: (n) => conv(n, 3, n.inputs[7]?.type ?? "uint8"),
  MaxPool: pool,
  AveragePool: pool,
  GlobalAveragePool: (n) => {
    const x = n.inputs[0]?.shape;
    set(
      n.outputs[0],
      n.inputs[0]?.type,
      x ? [...x.slice(0, 2), ...x.slice(2).map(() => 1)] : undefined,
    );
  },
  GlobalMaxPool: (n) => RULES.GlobalAveragePool(n),
  Relu: same,
  LeakyRelu: same,
  Sigmoid: same,
  Tanh: same,
  Clip: same,
  Softmax: same,
  LogSoftmax: same,
  LRN: same,
  Identity: same,
  Dropout: (n) => {
    same(n);
    if (n.outputs[1]) set(n.outputs[1], "bool", n.inputs[0]?.shape);
  },
  BatchNormalization: same,
  HardSigmoid: same,
  HardSwish: same,
  Erf: same,
  Sqrt: same,
  Exp: same,
  Neg: same,
  Abs: same,
  Add: elementwise,
  Sub: elementwise,
  Mul: elementwise,
  Div: elementwise,
  Pow: elementwise,
  Sum: elementwise,
  Max: elementwise,
  Min: elementwise,
  Mean: elementwise,
  MatMul: (n) => matmul(n),
  MatMulInteger: (n) => matmul(n, "int32"),
  QLinearMatMul: (n) => matmul(n, n.inputs[7]?.type ?? "uint8", 3),
  Gemm: gemm,
  Flatten: flatten,
  Reshape: reshape,
  Concat: concat,
  Transpose: transpose,
  Unsqueeze: (n) => unsqueezeSqueeze(n, true),
  Squeeze: (n) => unsqueezeSqueeze(n, false),
  Shape: (n) => {
    const r = n.inputs[0]?.shape?.length;
    if (r === undefined) return set(n.outputs[0], "int64", undefined);
    const clampAxis = (a: number) => Math.min(Math.max(a < 0 ? a + r : a, 0), r);
    const start = clampAxis(int(n, "start", 0)), end = clampAxis(int(n, "end", r));
    set(n.outputs[0], "int64", [Math.max(end - start, 0)]);
  },
  Cast: (n) => {
    const to = int(n, "to", 0);
    set(n.outputs[0], ONNX_TYPES[to], n.inputs[0]?.shape);
  },
  QuantizeLinear: (n) =>
    set(
      n.outputs[0],
      n.inputs[2]?.type ?? (int(n, "output_dtype", 0) === 3 ? "int8" : "uint8"),
      n.inputs[0]?.shape,
    ),
  ConstantOfShape: (n) => {
    const v = n.attrs.value as { type?: TensorType } | undefined;
    const dims = symbolicOf(n.inputs[0]);
    set(n.outputs[0], v?.type ?? "float32", dims);
  },
  DequantizeLinear: (n) => set(n.outputs[0], "float32", n.inputs[0]?.shape),
  // Resize-10 / Upsample-9 take [X, scales], Resize-11+ [X, roi, scales, sizes], Upsample-7 a
  // scales attribute. Dims from constant scales (⌊scale·d⌋ in float32) or sizes (with axes and
  // keep_aspect_ratio_policy, opset 18), as src/ops/resize.ts computes them; else the rank.
  Resize: (n) => {
    const x = n.inputs[0]?.shape, r = x?.length ?? 0, two = n.inputs.length <= 2;
    const sc = ints(n, "scales") ?? constInts(n.inputs[two ? 1 : 2]);
    const sz = two ? undefined : constInts(n.inputs[3]);
    const axes = (ints(n, "axes") ?? x?.map((_, i) => i))?.map((a) => (a < 0 ? a + r : a));
    const given = sz?.length ? sz : sc?.length ? sc : undefined;
    if (!x || !axes || !given || given.length !== axes.length) {
      return set(n.outputs[0], n.inputs[0]?.type, x?.map(() => "?"));
    }
    const f = Math.fround, out: Dim[] = [...x];
    const policy = str(n, "keep_aspect_ratio_policy", "stretch");
    if (given === sz && policy !== "stretch") {
      const ss = axes.map((a, i) => (typeof x[a] === "number" ? f(sz[i] / (x[a] as number)) : NaN));
      const s = policy === "not_larger" ? Math.min(...ss) : Math.max(...ss);
      for (const a of axes) out[a] = Number.isNaN(s) ? "?" : Math.round(f(s * (x[a] as number)));
    } else if (given === sz) {
      axes.forEach((a, i) => (out[a] = sz[i]));
    } else {
      axes.forEach((a, i) => {
        const d = x[a];
        out[a] = given[i] === 1 ? d : typeof d === "number" ? Math.trunc(f(f(given[i]) * d)) : "?";
      });
    }
    set(n.outputs[0], n.inputs[0]?.type, out);
  },
  Upsample: (n) => RULES.Resize(n),
  // TopK: the axis becomes k (attribute in opset 1, a constant input from 10).
  TopK: (n) => {
    const x = n.inputs[0]?.shape;
    const k = n.inputs[1] ? constInts(n.inputs[1])?.[0] : (n.attrs.k as number | undefined);
    let out: Dim[] | undefined;
    if (x) {
      const axis = int(n, "axis", -1);
      out = [...x];
      out[axis < 0 ? axis + x.length : axis] = k ?? "?";
    }
    set(n.outputs[0], n.inputs[0]?.type, out);
    set(n.outputs[1], "int64", out);
  },
  DynamicQuantizeLinear: (n) => {
    set(n.outputs[0], "uint8", n.inputs[0]?.shape);
    set(n.outputs[1], "float32", []);
    set(n.outputs[2], "uint8", []);
  },
};

/** Op types the inference rules cover. */
export const SHAPE_RULES: ReadonlySet<string> = new Set(Object.keys(RULES));

/**
 * Infers output types and shapes in topological order. Shapes declared in the model (value_info,
 * graph outputs) are kept where inference cannot say more; a contradiction with a declared
 * static shape is reported.
 */
export function inferShapes(g: Graph): void {
  SYM = new Map();
  try {
    inferAll(g);
  } finally {
    SYM = new Map();
  }
}

function inferAll(g: Graph): void {
  for (const n of g.nodes) {
    const rule = RULES[n.op];
    if (!rule || (n.domain && n.domain !== "ai.onnx")) continue;
    const declared = n.outputs.map((v) => v.shape);
    try {
      rule(n);
      propagateSymbolic(n);
      // Dropout's mask is bool from opset 10; before, it has the input's type.
      if (n.op === "Dropout" && n.outputs[1] && (g.opsets.get("") ?? 99) < 10) {
        n.outputs[1].type = n.inputs[0]?.type;
      }
    } catch (e) {
      if (e instanceof ShapeError || e instanceof ModelError) {
        throw new ModelError(`shape inference at node '${n.name}' (${n.op}): ${e.message}`);
      }
      throw e;
    }
    n.outputs.forEach((v, i) => {
      const d = declared[i];
      if (!d || !v.shape) return;
      if (d.length !== v.shape.length) {
        throw new ModelError(
          `node '${n.name}' (${n.op}) output '${v.name}' is declared [${d}] but computes to [${v.shape}]`,
        );
      }
      // Keep what is known: a declared number beats an inferred symbol and vice versa.
      v.shape = v.shape.map((x, j) => {
        const y = d[j];
        if (typeof x === "number" && typeof y === "number" && x !== y) {
          throw new ModelError(
            `node '${n.name}' (${n.op}) output '${v.name}' is declared [${d}] but computes to [${v.shape}]`,
          );
        }
        return typeof x === "number" ? x : y;
      });
    });
  }
}
