// Constant folding: nodes whose inputs are all constants are evaluated once, at load time,
// and replaced by their results. This covers what exporters emit around the real network:
// ConstantOfShape-made weights (ONNX's light models), PyTorch's Shape → Gather → Concat →
// Reshape flatten, Cast/Unsqueeze chains on shapes. Shape of a statically shaped value is
// folded too. Evaluators here are plain TypeScript: they run once per model, not per inference.
import type { Graph, Node, Value } from "./ir.ts";
import {
  ELEMENT_BYTES,
  elementCount,
  ONNX_TYPES,
  type Tensor,
  type TensorData,
  type TensorType,
} from "./tensor.ts";
import { ModelError } from "../errors.ts";

type Evaluator = (inputs: (Tensor | undefined)[], node: Node) => Tensor[];

const MAX_FOLD_BYTES = 256 * 1024 * 1024;

/** An evaluator's way to say "leave this node for run time" (a type it cannot make). */
class CannotFold extends Error {}

function toNumbers(t: Tensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, (x) => Number(x));
}

function make(type: TensorType, dims: number[], values: ArrayLike<number>): Tensor {
  const n = elementCount(dims);
  let data: TensorData;
  switch (type) {
    case "int64":
      data = BigInt64Array.from({ length: n }, (_, i) => BigInt(Math.trunc(values[i])));
      break;
    case "float32":
      data = Float32Array.from({ length: n }, (_, i) => values[i]);
      break;
    case "int32":
      data = Int32Array.from({ length: n }, (_, i) => values[i]);
      break;
    case "int8":
      data = Int8Array.from({ length: n }, (_, i) => values[i]);
      break;
    case "uint8":
    case "bool":
      data = Uint8Array.from({ length: n }, (_, i) => values[i]);
      break;
    case "float64":
      data = Float64Array.from({ length: n }, (_, i) => values[i]);
      break;
    default:
      throw new CannotFold(type);
  }
  return { type, dims, data };
}

function checkSize(dims: number[], type: TensorType, node: Node): void {
  const bytes = elementCount(dims) * ELEMENT_BYTES[type];
  if (!(bytes <= MAX_FOLD_BYTES) || dims.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new ModelError(
      `node '${node.name}' (${node.op}) would make a constant of shape [${dims}]`,
    );
  }
}

/** Index of flat position i of `outDims` in a tensor of `dims` broadcast to it. */
function broadcastIndex(i: number, outDims: number[], dims: number[]): number {
  let idx = 0, stride = 1;
  for (let d = outDims.length - 1, e = dims.length - 1; d >= 0; d--, e--) {
    const od = outDims[d];
    const pos = i % od;
    i = Math.floor(i / od);
    if (e >= 0) {
      if (dims[e] !== 1) idx += pos * stride;
      stride *= dims[e];
    }
  }
  return idx;
}

function binary(f: (a: number, b: number) => number, intDiv = false): Evaluator {
  return ([a, b], node) => {
    const outDims: number[] = [];
    const r = Math.max(a!.dims.length, b!.dims.length);
    for (let i = 0; i < r; i++) {
      const x = a!.dims[a!.dims.length - r + i] ?? 1, y = b!.dims[b!.dims.length - r + i] ?? 1;
      if (x !== y && x !== 1 && y !== 1) {
        throw new ModelError(`node '${node.name}': shapes do not broadcast`);
      }
      outDims.push(x === 1 ? y : x);
    }
    const av = toNumbers(a!), bv = toNumbers(b!);
    const isInt = a!.type !== "float32" && a!.type !== "float64";
    const out = Array.from({ length: elementCount(outDims) }, (_, i) => {
      const v = f(av[broadcastIndex(i, outDims, a!.dims)], bv[broadcastIndex(i, outDims, b!.dims)]);
      return isInt && intDiv ? Math.trunc(v) : v;
    });
    return [make(a!.type, outDims, out)];
  };
}

const EVAL: Record<string, Evaluator> = {
  ConstantOfShape: ([shape], node) => {
    const dims = shape ? toNumbers(shape) : [];
    const v = node.attrs.value as Tensor | undefined;
    const type = v?.type ?? "float32";
    checkSize(dims, type, node);
    const fill = v ? Number((v.data as ArrayLike<number | bigint>)[0]) : 0;
    const t = make(type, [], [0]);
    const n = elementCount(dims);
    const data = new (t.data.constructor as new (n: number) => TensorData)(n);
    (data as { fill(v: unknown): unknown }).fill(
      type === "int64" ? BigInt(Math.trunc(fill)) : fill,
    );
    return [{ type, dims, data }];
  },
  Identity: ([x]) => [x!],
  Cast: ([x], node) => {
    const type = ONNX_TYPES[node.attrs.to as number];
    if (!type) throw new CannotFold(String(node.attrs.to));
    return [make(type, x!.dims, toNumbers(x!))];
  },
  Unsqueeze: ([x, axesT], node) => {
    const axes = (node.attrs.axes as number[] | undefined) ?? toNumbers(axesT!);
    const r = x!.dims.length + axes.length;
    const norm = axes.map((a) => (a < 0 ? a + r : a));
    const dims: number[] = [];
    let j = 0;
    for (let i = 0; i < r; i++) dims.push(norm.includes(i) ? 1 : x!.dims[j++]);
    return [{ ...x!, dims }];
  },
  Squeeze: ([x, axesT], node) => {
    const axes = (node.attrs.axes as number[] | undefined) ??
      (axesT ? toNumbers(axesT) : undefined);
    const norm = axes?.map((a) => (a < 0 ? a + x!.dims.length : a));
    return [{ ...x!, dims: x!.dims.filter((d, i) => (norm ? !norm.includes(i) : d !== 1)) }];
  },
  Reshape: ([x, shapeT], node) => {
    const target = toNumbers(shapeT!);
    const total = elementCount(x!.dims);
    const dims = target.map((d, i) => (d === 0 && !node.attrs.allowzero ? x!.dims[i] : d));
    const minus = dims.indexOf(-1);
    if (minus >= 0) dims[minus] = total / dims.reduce((a, b, i) => (i === minus ? a : a * b), 1);
    if (elementCount(dims) !== total) {
      throw new ModelError(`node '${node.name}': cannot reshape [${x!.dims}] to [${target}]`);
    }
    return [{ ...x!, dims }];
  },
  Concat: (ins, node) => {
    const ts = ins.filter((t): t is Tensor => !!t);
    let axis = node.attrs.axis as number;
    if (axis < 0) axis += ts[0].dims.length;
    const outer = elementCount(ts[0].dims.slice(0, axis));
    const dims = [...ts[0].dims];
    dims[axis] = ts.reduce((s, t) => s + t.dims[axis], 0);
    const out: number[] = [];
    const vals = ts.map(toNumbers);
    for (let o = 0; o < outer; o++) {
      ts.forEach((t, k) => {
        const inner = elementCount(t.dims.slice(axis));
        for (let i = 0; i < inner; i++) out.push(vals[k][o * inner + i]);
      });
    }
    return [make(ts[0].type, dims, out)];
  },
  Gather: ([x, idxT], node) => {
    let axis = (node.attrs.axis as number | undefined) ?? 0;
    if (axis < 0) axis += x!.dims.length;
    const idx = toNumbers(idxT!).map((i) => (i < 0 ? i + x!.dims[axis] : i));
    const outer = elementCount(x!.dims.slice(0, axis));
    const inner = elementCount(x!.dims.slice(axis + 1));
    const v = toNumbers(x!);
    const out: number[] = [];
    for (let o = 0; o < outer; o++) {
      for (const i of idx) {
        for (let j = 0; j < inner; j++) out.push(v[(o * x!.dims[axis] + i) * inner + j]);
      }
    }
    const dims = [...x!.dims.slice(0, axis), ...idxT!.dims, ...x!.dims.slice(axis + 1)];
    return [make(x!.type, dims, out)];
  },
  Add: binary((a, b) => a + b),
  Sub: binary((a, b) => a - b),
  Mul: binary((a, b) => a * b),
  Div: binary((a, b) => a / b, true),
};

/** Ops the folder can evaluate. */
export const FOLDABLE: ReadonlySet<string> = new Set([...Object.keys(EVAL), "Shape"]);

function staticShape(v: Value | undefined): number[] | undefined {
  return v?.shape?.every((d) => typeof d === "number") ? (v.shape as number[]) : undefined;
}

/** Folds constant subgraphs in place; returns the number of nodes folded away. */
export function foldConstants(g: Graph): number {
  let folded = 0;
  for (const node of [...g.nodes]) {
    if (node.domain && node.domain !== "ai.onnx") continue;
    let results: Tensor[] | undefined;
    if (node.op === "Shape") {
      const s = node.inputs[0]?.constant?.dims ?? staticShape(node.inputs[0]);
      if (!s) continue;
      const start = (node.attrs.start as number | undefined) ?? 0;
      const end = (node.attrs.end as number | undefined) ?? s.length;
      const norm = (i: number) => Math.min(Math.max(i < 0 ? i + s.length : i, 0), s.length);
      const dims = s.slice(norm(start), norm(end));
      results = [make("int64", [dims.length], dims)];
    } else {
      const ev = EVAL[node.op];
      if (!ev || node.inputs.some((v) => v && !v.constant)) continue;
      try {
        results = ev(node.inputs.map((v) => v?.constant), node);
      } catch (e) {
        if (e instanceof CannotFold) continue;
        throw e;
      }
    }
    g.removeNode(node);
    node.outputs.forEach((v, i) => {
      v.constant = results![i];
      v.type = results![i].type;
      v.shape = [...results![i].dims];
    });
    folded++;
  }
  return folded;
}
