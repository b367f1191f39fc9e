// Layout assignment: ONNX activations are NCHW, the convolution and pooling kernels want NHWC.
// Nodes the kernels run move to the internal domain `sqz.nhwc` and take and give NHWC tensors.
// Layout-agnostic nodes between them (element-wise ops, Concat, Sum…) stay in NHWC too, with
// their constant operands permuted once here, so a CNN pays one transpose at its input and one
// where it leaves the convolutional part (e.g. before Flatten), not one per layer.
//
// Every NCHW value keeps its name and identity: when a node needs it in NCHW, a Transpose from
// its NHWC twin produces it, lazily and once.
import { type Graph, Node, type Value } from "../graph/ir.ts";
import type { Tensor } from "../graph/tensor.ts";
import { SQZ_DOMAIN } from "../graph/qdq.ts";

export const NHWC_DOMAIN = "sqz.nhwc";
const TO_NHWC = [0, 2, 3, 1];
const TO_NCHW = [0, 3, 1, 2];

/** Ops whose first input alone is an activation and whose output has its layout. */
const UNARY = new Set([
  "Relu",
  "LeakyRelu",
  "Clip",
  "Sigmoid",
  "Tanh",
  "HardSigmoid",
  "HardSwish",
  "Elu",
  "Selu",
  "Softplus",
  "Softsign",
  "Mish",
  "Gelu",
  "Abs",
  "Neg",
  "Exp",
  "Log",
  "Sqrt",
  "Reciprocal",
  "Erf",
  "Floor",
  "Ceil",
  "Round",
  "Sign",
  "Identity",
  "Cast",
]);
/** Ops that broadcast all their inputs against each other. */
const BROADCAST = new Set([
  "Add",
  "Sub",
  "Mul",
  "Div",
  "Pow",
  "Sum",
  "Max",
  "Min",
  "Mean",
  "PRelu",
]);

const permute = <T>(xs: readonly T[], perm: readonly number[]): T[] => perm.map((p) => xs[p]);

/** A constant broadcast against a 4-D NCHW tensor, rewritten for the NHWC twin. */
function permuteConstant(t: Tensor): Tensor | undefined {
  if (t.dims.length > 4) return undefined;
  if (t.data.length === 1) return t; // a scalar broadcasts the same either way
  const d4 = [...Array(4 - t.dims.length).fill(1), ...t.dims];
  const [n, c, h, w] = d4;
  const Ctor = t.data.constructor as new (n: number) => typeof t.data;
  const out = new Ctor(t.data.length);
  const src = t.data as unknown as ArrayLike<number>, dst = out as unknown as number[];
  for (let a = 0; a < n; a++) {
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          dst[((a * h + y) * w + x) * c + ch] = src[((a * c + ch) * h + y) * w + x];
        }
      }
    }
  }
  return { type: t.type, dims: permute(d4, TO_NHWC), data: out };
}

export interface LayoutResult {
  /** Nodes moved to NHWC kernels. */
  nhwcNodes: number;
  /** Transposes inserted at layout boundaries. */
  transposes: number;
}

/**
 * Moves `eligible` nodes (4-D Conv and pools the kernels accept) to NHWC and keeps the
 * layout-agnostic nodes around them in NHWC. The graph must be topologically sorted.
 */
export function assignLayout(g: Graph, eligible: (n: Node) => boolean): LayoutResult {
  const twin = new Map<Value, Value>(); // NCHW value → its NHWC twin
  const pending = new Set<Value>(); // NCHW values that exist only as their twin so far
  const nodes: Node[] = [];
  let transposes = 0, nhwcNodes = 0, fresh = 0;
  const newValue = (base: Value, shape = base.shape): Value => {
    let name = `${base.name}::nhwc`;
    while (g.values.has(name)) name = `${base.name}::nhwc${++fresh}`;
    const v = g.value(name);
    v.type = base.type;
    v.shape = shape?.length === 4 ? permute(shape, TO_NHWC) : undefined;
    return v;
  };
  const transpose = (name: string, x: Value, y: Value, perm: number[]) => {
    const t = new Node(name, "Transpose", "", [x], [y], { perm });
    y.producer = t;
    nodes.push(t);
    transposes++;
  };
  const toNhwc = (v: Value): Value => {
    let t = twin.get(v);
    if (!t) {
      t = newValue(v);
      transpose(`${v.name}::to_nhwc`, v, t, TO_NHWC);
      twin.set(v, t);
    }
    return t;
  };
  const needNchw = (v: Value | undefined) => {
    if (!v || !pending.has(v)) return;
    pending.delete(v);
    transpose(`${v.name}::to_nchw`, twin.get(v)!, v, TO_NCHW);
  };
  const moveOutputs = (n: Node) => {
    n.outputs = n.outputs.map((y) => {
      const t = newValue(y);
      t.producer = n;
      y.producer = undefined;
      twin.set(y, t);
      pending.add(y);
      return t;
    });
  };

  const skip = new Set<Node>();
  for (const n of g.nodes) {
    if (skip.has(n)) continue;
    const isOnnx = !n.domain || n.domain === "ai.onnx";
    const x = n.inputs[0];
    const shuffle = x && twin.has(x) ? channelShuffle(g, n) : undefined;
    if (shuffle) {
      // ShuffleNet's Reshape → Transpose → Reshape on NCHW is a shuffle of the last axis on
      // NHWC: the same three nodes on the twin, with the transpose over the channel groups only.
      const [t, r2, groups] = shuffle;
      const [, h, w, c] = twin.get(x!)!.shape as number[];
      const target = (dims: number[]) => {
        const v = newValue(n.inputs[1]!, undefined);
        v.constant = { type: "int64", dims: [dims.length], data: BigInt64Array.from(dims, BigInt) };
        v.type = "int64";
        v.shape = [dims.length];
        return v;
      };
      n.inputs = [twin.get(x!)!, target([0, h, w, groups, c / groups])];
      const split = newValue(n.outputs[0], undefined);
      n.outputs = [split];
      split.producer = n;
      t.inputs = [split];
      t.attrs = { perm: [0, 1, 2, 4, 3] };
      const swapped = newValue(t.outputs[0], undefined);
      t.outputs = [swapped];
      swapped.producer = t;
      r2.inputs = [swapped, target([0, h, w, c])];
      moveOutputs(r2);
      nodes.push(n, t, r2);
      skip.add(t).add(r2);
      continue;
    }
    // sqz's own ai.sqz layers (BinaryConv) have NHWC kernels too.
    if ((isOnnx || n.domain === SQZ_DOMAIN) && x && eligible(n)) {
      n.inputs = [toNhwc(x), ...n.inputs.slice(1)];
      n.domain = NHWC_DOMAIN;
      moveOutputs(n);
      nodes.push(n);
      nhwcNodes++;
      continue;
    }
    if (isOnnx && n.op === "DynamicQuantizeLinear" && x && twin.has(x)) {
      // Pointwise on its first output; the scale and zero point are scalars in any layout.
      n.inputs = [twin.get(x)!];
      const y = n.outputs[0], t = newValue(y);
      t.producer = n;
      y.producer = undefined;
      twin.set(y, t);
      pending.add(y);
      n.outputs = [t, ...n.outputs.slice(1)];
      nodes.push(n);
      continue;
    }
    if (isOnnx && agnosticInNhwc(n, twin)) {
      n.inputs = n.inputs.map((v, i) => {
        if (!v) return v;
        if (!v.constant && !twin.has(v)) {
          // A pointwise operand (see pointwise()): reshaped to its NHWC dims, data unchanged.
          const d4 = [...Array(4 - v.shape!.length).fill(1), ...v.shape!] as number[];
          const dims = permute(d4, TO_NHWC);
          const target = newValue(v, undefined);
          target.constant = {
            type: "int64",
            dims: [4],
            data: BigInt64Array.from(dims, (d) => BigInt(d)),
          };
          target.type = "int64";
          target.shape = [4];
          const r = newValue(v, dims);
          r.shape = dims;
          const reshape = new Node(`${v.name}::to_nhwc_shape`, "Reshape", "", [v, target], [r]);
          r.producer = reshape;
          nodes.push(reshape);
          return r;
        }
        if (!v.constant) return twin.get(v)!;
        if (i > 0 && (UNARY.has(n.op) || n.op.endsWith("QuantizeLinear"))) return v; // scalars
        const c = permuteConstant(v.constant)!;
        if (c === v.constant) return v;
        const pv = newValue(v, undefined);
        pv.constant = c;
        pv.shape = [...c.dims];
        return pv;
      });
      if (n.op === "Concat") {
        const axis = typeof n.attrs.axis === "number" ? n.attrs.axis : 1;
        n.attrs = { ...n.attrs, axis: TO_NHWC.indexOf(axis < 0 ? axis + 4 : axis) };
      }
      moveOutputs(n);
      nodes.push(n);
      continue;
    }
    for (const v of n.inputs) needNchw(v);
    nodes.push(n);
  }
  for (const v of g.outputs) needNchw(v);
  g.nodes = nodes;
  for (const v of g.values.values()) v.consumers.length = 0;
  for (const n of nodes) for (const v of n.inputs) v?.consumers.push(n);
  return { nhwcNodes, transposes };
}

/**
 * A computed operand with no spatial extent ([C, 1, 1], [1, C, 1, 1], one element: e.g. int8
 * dynamic's per-channel x_scale·w_scale): its NHWC form is the same data reshaped, no transpose.
 */
function pointwise(v: Value): boolean {
  const s = v.shape;
  if (!s || s.length > 4 || s.some((d) => typeof d !== "number")) return false;
  const d4 = [...Array(4 - s.length).fill(1), ...s] as number[];
  return d4[2] === 1 && d4[3] === 1;
}

/** Whether n can run unchanged on NHWC twins: every activation input already has one. */
function agnosticInNhwc(n: Node, twin: Map<Value, Value>): boolean {
  const acts = n.inputs.filter((v) => v && !v.constant) as Value[];
  if (!acts.length || !acts.some((v) => twin.has(v))) return false;
  if (!BROADCAST.has(n.op) && !acts.every((v) => twin.has(v))) return false;
  if (n.outputs.length !== 1) return false;
  if (UNARY.has(n.op)) return !!n.inputs[0] && !n.inputs[0].constant;
  if (n.op === "QuantizeLinear" || n.op === "DequantizeLinear") {
    // Per-tensor only: a per-axis scale would follow the channel axis.
    return !!n.inputs[0] && !n.inputs[0].constant && n.inputs[1]?.constant?.data.length === 1;
  }
  if (BROADCAST.has(n.op)) {
    return n.inputs.every((v) =>
      !v || (v.constant ? permuteConstant(v.constant) !== undefined : twin.has(v) || pointwise(v))
    );
  }
  if (n.op === "Concat") {
    const axis = typeof n.attrs.axis === "number" ? n.attrs.axis : 1;
    return acts.length === n.inputs.length && axis >= -4 && axis < 4;
  }
  return false;
}

/**
 * Matches Reshape [N, C, H, W] → [N, g, C/g, H, W], Transpose (0, 2, 1, 3, 4), Reshape back to
 * [N, C, H, W], each the only reader of the previous; returns the other two nodes and g.
 */
function channelShuffle(g: Graph, r1: Node): [Node, Node, number] | undefined {
  if (r1.op !== "Reshape") return undefined;
  const x = r1.inputs[0]?.shape, mid = r1.outputs[0].shape;
  if (!x || x.length !== 4 || !mid || mid.length !== 5) return undefined;
  if (
    x.slice(1).some((d) => typeof d !== "number") || mid.slice(1).some((d) => typeof d !== "number")
  ) {
    return undefined;
  }
  const [, c, h, w] = x as number[], [, groups, per, mh, mw] = mid as number[];
  if (groups * per !== c || mh !== h || mw !== w) return undefined;
  const only = (
    v: Value,
  ) => (v.consumers.length === 1 && !g.outputs.includes(v) ? v.consumers[0] : undefined);
  const t = only(r1.outputs[0]);
  const perm = t?.attrs.perm as number[] | undefined;
  if (!t || t.op !== "Transpose" || perm?.join() !== "0,2,1,3,4") return undefined;
  const r2 = only(t.outputs[0]);
  const out = r2?.outputs[0].shape;
  if (!r2 || r2.op !== "Reshape" || !out || out.length !== 4) return undefined;
  if (out.slice(1).join() !== [c, h, w].join()) return undefined;
  return [t, r2, groups];
}
