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
  const target = constInts(n.inputs[1]);
  if (!target) return set(n.outputs[0], n.inputs[0]?.type, undefined);
  const allowZero = int(n, "allowzero", 0) === 1;
  const out: Dim[] = target.map((d, i) => (d === 0 && !allowZero ? (x?.[i] ?? "?") : d));
  const minus = out.indexOf(-1);
  if (minus >= 0) {
    const known = x?.every((d) => typeof d === "number") &&
      out.every((d, i) => i === minus || typeof d === "number");
    if (known) {
      const total = (x as number[]).reduce((p, q) => p * q, 1);
      const rest = (out as number[]).reduce((p, q, i) => (i === minus ? p : p * q), 1);
      out[minus] = total / rest;
    } else {out[minus] = x?.[0] !== undefined && typeof x[0] === "string" && minus === 0
        ? x[0]
        : "?";}
  }
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

const RULES: Record<string, Rule> = {
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
    const dims = constInts(n.inputs[0]);
    set(n.outputs[0], v?.type ?? "float32", dims);
  },
  DequantizeLinear: (n) => set(n.outputs[0], "float32", n.inputs[0]?.shape),
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
  for (const n of g.nodes) {
    const rule = RULES[n.op];
    if (!rule || (n.domain && n.domain !== "ai.onnx")) continue;
    const declared = n.outputs.map((v) => v.shape);
    try {
      rule(n);
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
