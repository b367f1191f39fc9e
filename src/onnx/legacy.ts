// ONNX opsets 1–6 → opset 7. The ops in src/ops implement every version's semantics from
// opset 7 on (they read ctx.opset), so an older model is loaded by rewriting each node whose op
// changed meaning between its version and opset 7 into its opset-7 form, then raising the
// default-domain opset to 7. What changed (from the operator changelog, docs/Changelog.md of
// onnx/onnx, and the reference ONNX version converter's 6→7 adapters):
//
//   - Add/Sub/Mul/Div/Pow, And/Or/Xor, Equal/Greater/Less (-1, -6): `broadcast` and `axis`.
//     Without broadcast=1 the shapes must match; with it B broadcasts onto A either by suffix
//     (no axis: what numpy broadcasting does too) or as a contiguous block starting at `axis`,
//     which numpy cannot say: B gets trailing 1-dims (a reshaped constant, or an Unsqueeze).
//   - Gemm-1/-6: `broadcast` (C broadcasts only with it; otherwise C must be [M, N]).
//   - BatchNormalization-1/-6: `is_test` (0 = training mode), `consumed_inputs`; outputs
//     beyond Y (running/saved statistics) cannot be produced at inference. `spatial=0` with
//     the per-channel (1-D) parameters opset 1–6 documents is spatial=1 at inference.
//   - Dropout-1/-6: `is_test`; at inference the output is the input.
//   - Reshape-1 (opsets 1–4): `shape` attribute → int64 shape input (Reshape-5).
//   - Pad-1: `paddings` → `pads` (same [x1_begin, x2_begin, …, x1_end, x2_end, …] layout per
//     the attribute's definition; Pad-1's doc example contradicts it and was fixed in Pad-2).
//   - Concat-1..3: `axis` optional with default 1 (required from Concat-4).
//   - Split-1: `split` as attribute or a second input; `axis` has no default (Caffe2, whose op
//     Split-1 is, splits NCHW on the channel axis 1; Split-2 defaults to 0).
//   - Cast-1..5: `to` is a type name string ("FLOAT"), an enum value from Cast-6.
//   - Upsample-1 (experimental): width_scale/height_scale, mode nearest|bilinear, 4-D input
//     → Upsample-7 scales [1, 1, h, w], mode nearest|linear.
//   - PRelu-1/-6: a 1-D slope of size C applies per channel (axis 1); PRelu-7 broadcasts it
//     numpy-style from the last axis, so it becomes [C, 1, …, 1].
//   - Tile-1..5: inputs (input, tiles, axis) → Tile-6 repeats.
//   - Selu-1..5: defaults alpha 1.6732, gamma 1.0507 (Selu-6: 1.67326…, 1.05070…), made
//     explicit.
//   - consumed_inputs (a legacy optimization hint) on every version-1 op that had it: dropped.
//   - Experimental opset-1 ops with an equivalent in opset 7 (ImageScaler, Scale, Affine,
//     ScaledTanh, ParametricSoftplus, Crop, DynamicSlice with constant bounds, ConstantFill and
//     GivenTensorFill without a runtime input) become those ops or constants.
// Unchanged through opset 7: Conv, ConvTranspose, MaxPool, AveragePool (count_include_pad=0
// is the old behaviour), Global*Pool, LRN, Softmax/LogSoftmax/Hardmax (2-D coercion holds up
// to opset 12), Squeeze/Unsqueeze/Slice (attributes up to 12/9), Clip (attributes up to 10),
// Sum/Max/Min/Mean (equal shapes; broadcasting from 8 is a superset), Flatten, Gather, MatMul,
// Transpose, Reduce*, ArgMax/ArgMin, Concat-4, Split-2, Pad-2, Reshape-5, Cast-6, Tile-6.
// An old op with no meaning in opset 7 is a ModelError naming the node, op and version.
import { type Dim, type Graph, Node, type Value } from "../graph/ir.ts";
import { elementCount, type Tensor, type TensorType } from "../graph/tensor.ts";
import { ModelError } from "../errors.ts";
import { DataType } from "./proto.ts";
import { f32ToF16 } from "../ops/elementwise_kernels.ts";

/** The opset legacy models are upgraded to. */
export const LEGACY_TARGET = 7;

/**
 * Notes on rewrites, one line per (op, change) with the nodes it applied to, so a model with
 * 300 Relu nodes reports one line, not 300.
 */
export class RewriteNotes {
  #groups = new Map<string, { op: string; change: string; nodes: string[] }>();

  add(op: string, change: string, node: string): void {
    const key = `${op}\u0000${change}`;
    let g = this.#groups.get(key);
    if (!g) this.#groups.set(key, g = { op, change, nodes: [] });
    g.nodes.push(node);
  }

  get count(): number {
    let n = 0;
    for (const g of this.#groups.values()) n += g.nodes.length;
    return n;
  }

  lines(): string[] {
    return [...this.#groups.values()].map(({ op, change, nodes }) => {
      const shown = nodes.slice(0, 3).map((s) => `'${s}'`).join(", ");
      const who = nodes.length === 1
        ? `node ${shown}`
        : `${nodes.length} nodes: ${shown}${nodes.length > 3 ? ", …" : ""}`;
      return `${op}: ${change} (${who})`;
    });
  }
}

/** Small graph surgery helpers: fresh names, constants, nodes, input/output rewiring. */
export class GraphEdit {
  #nodeNames: Set<string>;
  #constCache = new Map<string, Value>();

  constructor(readonly g: Graph) {
    this.#nodeNames = new Set(g.nodes.map((n) => n.name));
  }

  /** A new value whose name is `base` or `base_1`, `base_2`, … (whichever is free). */
  fresh(base: string): Value {
    let name = base;
    for (let i = 1; this.g.values.has(name); i++) name = `${base}_${i}`;
    return this.g.value(name);
  }

  nodeName(base: string): string {
    let name = base;
    for (let i = 1; this.#nodeNames.has(name); i++) name = `${base}_${i}`;
    this.#nodeNames.add(name);
    return name;
  }

  constant(base: string, t: Tensor): Value {
    const v = this.fresh(base);
    v.constant = t;
    v.type = t.type;
    v.shape = [...t.dims];
    return v;
  }

  /** An int64 constant (shape inputs, axes, pads, …). */
  ints(base: string, values: readonly number[], dims: number[] = [values.length]): Value {
    return this.constant(base, {
      type: "int64",
      dims,
      data: BigInt64Array.from(values, (x) => BigInt(x)),
    });
  }

  /** A float constant of a float type (float32, float64 or float16 bits). */
  floats(base: string, type: TensorType, values: readonly number[], dims: number[]): Value {
    return this.constant(base, floatTensor(type, values, dims, base));
  }

  /** `v`'s data under new dims, one shared value per (value, dims). */
  reshapedConstant(v: Value, dims: number[], base: string): Value {
    const key = `${v.name}\u0000${dims.join(",")}`;
    let out = this.#constCache.get(key);
    if (!out) {
      const c = v.constant!;
      out = this.constant(base, { type: c.type, dims, data: c.data });
      this.#constCache.set(key, out);
    }
    return out;
  }

  node(
    op: string,
    inputs: (Value | undefined)[],
    outputs: Value[],
    attrs: Node["attrs"],
    base: string,
  ): Node {
    const n = new Node(this.nodeName(base), op, "", inputs, outputs, attrs);
    this.g.addNode(n);
    return n;
  }

  /** A value for a node's result: its type copied from `like`. */
  result(base: string, like?: Value, shape?: Dim[]): Value {
    const v = this.fresh(base);
    if (like?.type) v.type = like.type;
    if (shape) v.shape = shape;
    return v;
  }

  /** Puts `v` in input slot i of n (undefined: an omitted optional input), fixing consumers. */
  setInput(n: Node, i: number, v: Value | undefined): void {
    const old = n.inputs[i];
    if (old) {
      const k = old.consumers.indexOf(n);
      if (k >= 0) old.consumers.splice(k, 1);
    }
    while (n.inputs.length <= i) n.inputs.push(undefined);
    n.inputs[i] = v;
    if (v) v.consumers.push(n);
    while (n.inputs.length && n.inputs[n.inputs.length - 1] === undefined) n.inputs.pop();
  }

  /**
   * Gives n a new value in output slot i and returns it; the old value (which its consumers and
   * the graph outputs keep reading) is left without a producer, for a node added after n.
   */
  detachOutput(n: Node, i: number, base: string): Value {
    const old = n.outputs[i];
    const v = this.result(base, old);
    n.outputs[i] = v;
    v.producer = n;
    if (old.producer === n) old.producer = undefined;
    return v;
  }

  /** Keeps n's first `keep` outputs; the others must be unused. */
  dropOutputs(n: Node, keep: number): void {
    for (const v of n.outputs.slice(keep)) {
      if (v.producer === n) v.producer = undefined;
      if (!this.used(v)) this.g.values.delete(v.name);
    }
    n.outputs = n.outputs.slice(0, keep);
  }

  used(v: Value): boolean {
    return v.consumers.length > 0 || this.g.outputs.includes(v);
  }

  /** Removes n; its outputs stay in the graph for the nodes that replace it. */
  remove(n: Node): void {
    this.g.removeNode(n);
  }
}

export function floatTensor(
  type: TensorType,
  values: readonly number[],
  dims: number[],
  what: string,
): Tensor {
  if (type === "float32") return { type, dims, data: Float32Array.from(values) };
  if (type === "float64") return { type, dims, data: Float64Array.from(values) };
  if (type === "float16") return { type, dims, data: Uint16Array.from(values, f32ToF16) };
  throw new ModelError(`${what}: a float constant of type ${type} is not possible`);
}

// ---------------------------------------------------------------------------------------------
// Ranks: what the rewrites need of shapes (declared value_info, constants, or one rule per op).

/** A set of op names written as a whitespace-separated list. */
function words(list: string): Set<string> {
  return new Set(list.trim().split(/\s+/));
}

const SAME_RANK = words(`
  Abs Acos Acosh Affine Asin Asinh Atan Atanh AveragePool BatchNormalization Cast CastLike Ceil
  Celu Clip Conv ConvInteger ConvTranspose Cos Cosh Crop CumSum DepthToSpace DequantizeLinear
  Dropout Elu Erf Exp Floor Gelu GlobalAveragePool GlobalLpPool GlobalMaxPool
  GroupNormalization HardSigmoid HardSwish Hardmax Identity ImageScaler InstanceNormalization
  IsInf IsNaN LRN LayerNormalization LeakyRelu Log LogSoftmax LpNormalization LpPool MaxPool
  MeanVarianceNormalization Mish Neg Not PRelu Pad ParametricSoftplus QLinearConv
  QuantizeLinear Reciprocal Relu Resize Round Scale ScaledTanh Selu Shrink Sigmoid Sign Sin
  Sinh Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Tan Tanh ThresholdedRelu Tile
  TopK Transpose Trilu Upsample
`);

/** Ops whose output rank is the largest input rank (numpy broadcasting, Concat). */
const MAX_RANK = words(`
  Add Sub Mul Div Pow Mod And Or Xor Equal Greater Less GreaterOrEqual LessOrEqual Sum Max Min
  Mean Where Concat BitShift BitwiseAnd BitwiseOr BitwiseXor
`);

const constData = (v: Value | undefined): number[] | undefined =>
  v?.constant ? Array.from(v.constant.data as ArrayLike<number | bigint>, Number) : undefined;

const intsAttr = (n: Node, name: string): number[] | undefined =>
  Array.isArray(n.attrs[name]) ? (n.attrs[name] as number[]) : undefined;

/** The rank of v when the model says or implies it; undefined when it does not. */
export function rankOf(
  v: Value | undefined,
  memo: Map<Value, number | undefined> = new Map(),
): number | undefined {
  if (!v) return undefined;
  if (v.shape) return v.shape.length;
  if (v.constant) return v.constant.dims.length;
  if (memo.has(v)) return memo.get(v);
  memo.set(v, undefined); // a cycle ends as unknown
  const r = producedRank(v, memo);
  memo.set(v, r);
  return r;
}

function producedRank(v: Value, memo: Map<Value, number | undefined>): number | undefined {
  const n = v.producer;
  if (!n || (n.domain && n.domain !== "ai.onnx")) return undefined;
  const rank = (i: number) => rankOf(n.inputs[i], memo);
  if (v !== n.outputs[0]) {
    // Split's other parts, Dropout's mask, MaxPool's indices, TopK's indices.
    return ["Split", "Dropout", "MaxPool", "TopK"].includes(n.op) ? rank(0) : undefined;
  }
  const keep = typeof n.attrs.keepdims === "number" ? n.attrs.keepdims !== 0 : true;
  switch (n.op) {
    case "Gemm":
    case "Flatten":
      return 2;
    case "Shape":
      return 1;
    case "Size":
      return 0;
    case "Reshape":
      return intsAttr(n, "shape")?.length ?? n.inputs[1]?.constant?.data.length;
    case "ConstantOfShape":
      return n.inputs[0]?.constant?.data.length;
    case "Expand": {
      const r = rank(0), s = n.inputs[1]?.constant?.data.length;
      return r === undefined || s === undefined ? undefined : Math.max(r, s);
    }
    case "Squeeze":
    case "Unsqueeze": {
      const r = rank(0), axes = intsAttr(n, "axes") ?? constData(n.inputs[1]);
      if (r === undefined || !axes) return undefined;
      return n.op === "Squeeze" ? r - axes.length : r + axes.length;
    }
    case "MatMul":
    case "MatMulInteger":
    case "QLinearMatMul": {
      const bi = n.op === "QLinearMatMul" ? 3 : 1;
      const a = rank(0), b = rank(bi);
      if (a === undefined || b === undefined) return undefined;
      if (a === 1 && b === 1) return 0;
      if (a === 1 || b === 1) return Math.max(a, b) - 1;
      return Math.max(a, b);
    }
    case "Gather": {
      const d = rank(0), i = rank(1);
      return d === undefined || i === undefined ? undefined : d + i - 1;
    }
    case "ArgMax":
    case "ArgMin": {
      const r = rank(0);
      return r === undefined ? undefined : keep ? r : r - 1;
    }
  }
  if (n.op.startsWith("Reduce")) {
    const r = rank(0);
    if (r === undefined) return undefined;
    if (keep) return r;
    const axes = intsAttr(n, "axes") ?? constData(n.inputs[1]);
    return axes && axes.length ? r - axes.length : 0;
  }
  if (MAX_RANK.has(n.op)) {
    // Legacy broadcasting: the result has A's shape.
    if (n.attrs.broadcast !== undefined) return rank(0);
    let r = -1;
    for (let i = 0; i < n.inputs.length; i++) {
      if (!n.inputs[i]) continue;
      const k = rank(i);
      if (k === undefined) {
        if (n.op === "Concat") continue;
        return undefined;
      }
      r = Math.max(r, k);
    }
    return r < 0 ? undefined : r;
  }
  return SAME_RANK.has(n.op) ? rank(0) : undefined;
}

/** Static dims of v (numbers only), when fully known. */
function staticDims(v: Value | undefined): number[] | undefined {
  const s = v?.shape ?? v?.constant?.dims;
  return s && s.every((d) => typeof d === "number") ? (s as number[]) : undefined;
}

// ---------------------------------------------------------------------------------------------
// The opset 1–6 → 7 upgrade

/** Versions (≤ 6) in which each op's schema changed; anything else has only version 1. */
const SINCE: Record<string, number[]> = {
  Concat: [1, 4],
  Reshape: [1, 5],
  Pad: [1, 2],
  Split: [1, 2],
  GlobalLpPool: [1, 2],
  LpPool: [1, 2],
  GRU: [1, 3],
};
for (
  const op of words(`
  Abs Add BatchNormalization Cast Ceil Clip Div Dropout Elu Exp Floor Gemm HardSigmoid
  InstanceNormalization LeakyRelu Log Max Mean Min Mul Neg PRelu Reciprocal Relu Selu Sigmoid
  Sqrt Sub Sum Tanh Tile
`)
) SINCE[op] = [1, 6];

/** The version of op in effect at a model's opset (the newest schema not newer than it). */
export function opVersion(op: string, opset: number): number {
  const vs = SINCE[op] ?? [1];
  let v = vs[0];
  for (const s of vs) if (s <= opset) v = s;
  return v;
}

const LEGACY_BROADCAST = words(`
  Add Sub Mul Div Pow And Or Xor Equal Greater Less
`);

/** Experimental opset-1 ops that no later opset keeps and that have no opset-7 equivalent. */
const NO_COUNTERPART: Record<string, string> = {
  ATen: "it calls a PyTorch ATen function by name, which only Caffe2 could run",
  GRUUnit: "it is a Caffe2 GRU step with no ONNX equivalent",
  MeanVarianceNormalization:
    "the experimental opset-1 form (across_channels, normalize_variance) differs from " +
    "MeanVarianceNormalization-9, the only form sqz runs",
};

/**
 * Rewrites the nodes of an opset 1–6 graph into their opset-7 forms and sets its default-domain
 * opset to 7. Returns notes on what was rewritten (empty when opset ≥ 7). Throws ModelError for
 * what has no meaning in opset 7.
 */
export function upgradeLegacyOpset(g: Graph, opset: number): string[] {
  if (opset >= LEGACY_TARGET) return [];
  const up = new LegacyUpgrade(g, opset);
  for (const n of [...g.nodes]) {
    if (n.domain && n.domain !== "ai.onnx") continue;
    up.rewrite(n);
  }
  const key = g.opsets.has("") || !g.opsets.has("ai.onnx") ? "" : "ai.onnx";
  g.opsets.set(key, LEGACY_TARGET);
  const lines = up.notes.lines();
  return [
    `opset ${opset} → ${LEGACY_TARGET}: ` +
    (lines.length
      ? `${up.notes.count} rewrite${up.notes.count === 1 ? "" : "s"} of ops that changed meaning`
      : "no op in the model changed meaning"),
    ...lines,
  ];
}

class LegacyUpgrade {
  readonly notes = new RewriteNotes();
  readonly edit: GraphEdit;
  readonly memo = new Map<Value, number | undefined>();

  constructor(readonly g: Graph, readonly opset: number) {
    this.edit = new GraphEdit(g);
  }

  where(n: Node): string {
    return `node '${n.name}' (${n.op}-${opVersion(n.op, this.opset)})`;
  }

  rank(v: Value | undefined): number | undefined {
    return rankOf(v, this.memo);
  }

  note(n: Node, change: string): void {
    this.notes.add(`${n.op}-${opVersion(n.op, this.opset)}`, change, n.name);
  }

  rewrite(n: Node): void {
    if (n.op in NO_COUNTERPART) {
      throw new ModelError(
        `${this.where(n)} has no meaning in opset 7 and later: ${NO_COUNTERPART[n.op]}`,
      );
    }
    if ("consumed_inputs" in n.attrs) {
      delete n.attrs.consumed_inputs;
      this.note(n, "legacy consumed_inputs attribute dropped");
    }
    if (LEGACY_BROADCAST.has(n.op)) return this.broadcast(n);
    switch (n.op) {
      case "Gemm":
        return this.gemm(n);
      case "BatchNormalization":
        return this.batchNorm(n);
      case "Dropout":
        return this.dropout(n);
      case "Reshape":
        return this.opset < 5 ? this.reshape(n) : undefined;
      case "Pad":
        return this.opset < 2 ? this.pad(n) : undefined;
      case "Concat":
        if (this.opset < 4 && n.attrs.axis === undefined) {
          n.attrs.axis = 1;
          this.note(n, "no axis: concatenates on axis 1 (Concat-1's default), now explicit");
        }
        return;
      case "Split":
        return this.opset < 2 ? this.split(n) : undefined;
      case "Cast":
        return this.cast(n);
      case "Upsample":
        return this.upsample(n);
      case "PRelu":
        return this.prelu(n);
      case "Tile":
        return this.opset < 6 ? this.tile(n) : undefined;
      case "Selu":
        if (this.opset < 6 && (n.attrs.alpha === undefined || n.attrs.gamma === undefined)) {
          n.attrs.alpha ??= 1.6732;
          n.attrs.gamma ??= 1.0507;
          this.note(n, "Selu-1 defaults alpha=1.6732, gamma=1.0507 made explicit");
        }
        return;
      case "GlobalLpPool":
      case "LpPool":
        if (this.opset < 2 && typeof n.attrs.p === "number" && !Number.isInteger(n.attrs.p)) {
          throw new ModelError(`${this.where(n)}: p=${n.attrs.p} is not an integer (LpPool-2)`);
        }
        return;
      case "ImageScaler":
      case "Scale":
      case "Affine":
      case "ScaledTanh":
      case "ParametricSoftplus":
        return this.affineFamily(n);
      case "Crop":
        return this.crop(n);
      case "DynamicSlice":
        return this.dynamicSlice(n);
      case "ConstantFill":
      case "GivenTensorFill":
        return this.fill(n);
    }
  }

  /** Legacy broadcasting of B onto A (limited, optionally at `axis`) → numpy broadcasting. */
  broadcast(n: Node): void {
    const on = n.attrs.broadcast, axisAttr = n.attrs.axis;
    if (on === undefined && axisAttr === undefined) {
      this.checkSameShape(n);
      return;
    }
    delete n.attrs.broadcast;
    delete n.attrs.axis;
    const [a, b] = n.inputs;
    if (!a || !b) return;
    if (on === 0 || typeof on !== "number") {
      this.checkSameShape(n);
      this.note(n, "broadcast=0: attributes dropped (equal shapes broadcast to themselves)");
      return;
    }
    const ra = this.rank(a), rb = this.rank(b);
    const sa = a.shape ?? a.constant?.dims, sb = b.shape ?? b.constant?.dims;
    const bd = staticDims(b);
    if (bd && elementCount(bd) === 1) {
      if (ra !== undefined && bd.length > ra) {
        // More 1-dims than A has: numpy would add them to the result; the legacy result is A's.
        if (!b.constant) throw this.mismatch(n, sa ?? [], bd, "a broadcastable one-element B");
        this.edit.setInput(n, 1, this.edit.reshapedConstant(b, [], `${b.name}_scalar`));
      }
      this.note(n, "broadcast=1 with a one-element B: numpy broadcasting is the same");
      return;
    }
    if (typeof axisAttr !== "number") {
      // Suffix matching: B's dims are A's last ones, which is how numpy aligns them too.
      if (sa && sb) {
        if (sb.length > sa.length) throw this.mismatch(n, sa, sb, "its suffix");
        sb.forEach((d, i) => {
          const e = sa[sa.length - sb.length + i];
          if (typeof d === "number" && typeof e === "number" && d !== e && d !== 1) {
            throw this.mismatch(n, sa, sb, "its suffix");
          }
        });
      }
      this.note(n, "broadcast=1 (suffix matching): numpy broadcasting is the same");
      return;
    }
    if (ra === undefined || rb === undefined) {
      throw new ModelError(
        `${this.where(n)}: broadcast=1 with axis=${axisAttr} needs the ranks of A and B, ` +
          `which the model does not declare (add value_info or input shapes)`,
      );
    }
    const axis = axisAttr < 0 ? axisAttr + ra : axisAttr;
    if (axis < 0 || axis + rb > ra) {
      throw new ModelError(
        `${this.where(n)}: B of rank ${rb} does not fit in A of rank ${ra} at axis ${axisAttr}`,
      );
    }
    if (sa && sb) {
      sb.forEach((d, i) => {
        const e = sa[axis + i];
        if (typeof d === "number" && typeof e === "number" && d !== e && d !== 1) {
          throw this.mismatch(n, sa, sb, `dims ${axis}…${axis + rb - 1}`);
        }
      });
    }
    const trailing = ra - axis - rb;
    if (trailing === 0) {
      this.note(n, "broadcast=1 with B aligned to A's last axis: numpy broadcasting is the same");
      return;
    }
    this.appendOnes(n, 1, rb, trailing, `${b.name}_at_axis${axis}`);
    this.note(
      n,
      "broadcast=1 with axis: B given trailing 1-dims so numpy broadcasting puts it at the axis",
    );
  }

  /** Input i (of rank r) of n gets `k` trailing 1-dims: a reshaped constant or an Unsqueeze. */
  appendOnes(n: Node, i: number, r: number, k: number, base: string): void {
    const v = n.inputs[i]!;
    const ones = new Array<number>(k).fill(1);
    if (v.constant) {
      this.edit.setInput(n, i, this.edit.reshapedConstant(v, [...v.constant.dims, ...ones], base));
      return;
    }
    const out = this.edit.result(base, v, v.shape ? [...v.shape, ...ones] : undefined);
    const axes = Array.from({ length: k }, (_, j) => r + j);
    this.edit.node("Unsqueeze", [v], [out], { axes }, `${n.name}_unsqueeze${i}`);
    this.edit.setInput(n, i, out);
  }

  mismatch(n: Node, sa: Dim[], sb: Dim[], what: string): ModelError {
    return new ModelError(
      `${this.where(n)}: B [${sb}] is not ${what} of A [${sa}] as broadcast=1 requires`,
    );
  }

  /** Without broadcast=1 the two shapes must be equal (when both are known). */
  checkSameShape(n: Node): void {
    const [a, b] = n.inputs;
    const sa = staticDims(a), sb = staticDims(b);
    if (sa && sb && (sa.length !== sb.length || sa.some((d, i) => d !== sb[i]))) {
      throw new ModelError(
        `${this.where(n)}: A [${sa}] and B [${sb}] differ, and without broadcast=1 they must ` +
          `have the same shape`,
      );
    }
  }

  gemm(n: Node): void {
    const on = n.attrs.broadcast;
    if (on === undefined) return this.gemmShapeCheck(n);
    delete n.attrs.broadcast;
    if (on) {
      this.note(n, "broadcast=1 dropped: C broadcasts to [M, N] from opset 7 on");
      return;
    }
    this.gemmShapeCheck(n);
    this.note(n, "broadcast=0 dropped (C is already [M, N])");
  }

  gemmShapeCheck(n: Node): void {
    const [a, b, c] = n.inputs;
    const sa = staticDims(a), sb = staticDims(b), sc = staticDims(c);
    if (!sa || !sb || !sc || sa.length !== 2 || sb.length !== 2) return;
    const m = n.attrs.transA ? sa[1] : sa[0], nn = n.attrs.transB ? sb[0] : sb[1];
    if (sc.length !== 2 || sc[0] !== m || sc[1] !== nn) {
      throw new ModelError(
        `${this.where(n)}: C is [${sc}] but without broadcast=1 it must be [${m}, ${nn}]`,
      );
    }
  }

  batchNorm(n: Node): void {
    const isTest = n.attrs.is_test;
    delete n.attrs.is_test;
    const training = !isTest;
    const extra = n.outputs.slice(1);
    if (extra.some((v) => this.edit.used(v))) {
      throw new ModelError(
        `${this.where(n)}: ${training ? "is_test=0 (training mode) and " : ""}its outputs ` +
          `beyond Y (running and saved mean/variance) are used, which inference does not produce`,
      );
    }
    if (extra.length) this.edit.dropOutputs(n, 1);
    if (training) {
      this.note(n, "is_test=0 (training mode) with only Y used: runs in inference mode");
    } else if (isTest !== undefined) this.note(n, "is_test dropped (inference is the only mode)");
    if (n.attrs.spatial === 0) {
      const scale = n.inputs[1];
      const sd = scale?.shape ?? scale?.constant?.dims;
      if (sd && sd.length === 1) {
        delete n.attrs.spatial;
        this.note(n, "spatial=0 with per-channel [C] parameters: at inference that is spatial=1");
      }
    }
  }

  dropout(n: Node): void {
    const isTest = n.attrs.is_test;
    delete n.attrs.is_test;
    const mask = n.outputs[1];
    if (mask && this.edit.used(mask)) {
      throw new ModelError(
        `${this.where(n)}: its mask output is used, ` +
          (isTest ? "which is not filled when is_test is set" : "and is_test=0 is training mode"),
      );
    }
    if (mask) this.edit.dropOutputs(n, 1);
    if (!isTest) this.note(n, "is_test=0 (training mode): runs as inference (the identity)");
    else this.note(n, "is_test dropped (inference is the only mode)");
  }

  reshape(n: Node): void {
    const shape = n.attrs.shape;
    delete n.attrs.shape;
    if (n.inputs[1]) return;
    if (!Array.isArray(shape)) {
      throw new ModelError(`${this.where(n)}: the shape attribute is missing`);
    }
    this.edit.setInput(n, 1, this.edit.ints(`${n.name}_shape`, shape as number[]));
    this.note(n, "shape attribute → int64 shape input (Reshape-5)");
  }

  pad(n: Node): void {
    const p = n.attrs.paddings;
    if (p === undefined) {
      if (n.attrs.pads !== undefined) return;
      throw new ModelError(`${this.where(n)}: the paddings attribute is missing`);
    }
    delete n.attrs.paddings;
    n.attrs.pads = p;
    this.note(n, "paddings → pads (same [begins…, ends…] layout)");
  }

  split(n: Node): void {
    if (n.attrs.axis === undefined) {
      n.attrs.axis = 1;
      this.note(n, "no axis: splits the channel axis 1, as Caffe2's Split-1 does, now explicit");
    }
    const s = n.inputs[1];
    if (!s) return;
    if (!s.constant) {
      throw new ModelError(
        `${this.where(n)}: the split lengths come from a computed input, which Split-2…12 ` +
          `cannot take (only a constant or the split attribute)`,
      );
    }
    const sizes = Array.from(s.constant.data as ArrayLike<number | bigint>, Number);
    if (sizes.some((x) => !Number.isInteger(x) || x < 0)) {
      throw new ModelError(`${this.where(n)}: split lengths [${sizes}] are not counts`);
    }
    n.attrs.split = sizes;
    this.edit.setInput(n, 1, undefined);
    this.note(n, "split lengths input → split attribute (Split-2)");
  }

  cast(n: Node): void {
    const to = n.attrs.to;
    if (typeof to !== "string") return;
    const code = (DataType as Record<string, number>)[to.toUpperCase()];
    if (code === undefined || code === 0) {
      throw new ModelError(`${this.where(n)}: 'to' names no ONNX data type: '${to}'`);
    }
    n.attrs.to = code;
    this.note(n, "'to' type name → DataType enum value (Cast-6)");
  }

  upsample(n: Node): void {
    const hs = n.attrs.height_scale, ws = n.attrs.width_scale;
    if (hs === undefined && ws === undefined) return;
    if (typeof hs !== "number" || typeof ws !== "number") {
      throw new ModelError(`${this.where(n)}: needs both height_scale and width_scale`);
    }
    const r = this.rank(n.inputs[0]);
    if (r !== undefined && r !== 4) {
      throw new ModelError(`${this.where(n)}: takes a 4-D NCHW input, got rank ${r}`);
    }
    const mode = typeof n.attrs.mode === "string" ? n.attrs.mode : "nearest";
    if (mode !== "nearest" && mode !== "bilinear") {
      throw new ModelError(`${this.where(n)}: unknown mode '${mode}' (nearest or bilinear)`);
    }
    delete n.attrs.height_scale;
    delete n.attrs.width_scale;
    n.attrs.scales = [1, 1, hs, ws];
    n.attrs.mode = mode === "bilinear" ? "linear" : "nearest";
    this.note(n, "height_scale/width_scale → scales [1, 1, h, w] (Upsample-7)");
  }

  prelu(n: Node): void {
    const [x, s] = n.inputs;
    if (!x || !s) return;
    const sd = s.shape ?? s.constant?.dims;
    if (!sd || sd.length !== 1 || sd[0] === 1) return;
    const r = this.rank(x);
    if (r === undefined) {
      throw new ModelError(
        `${this.where(n)}: a per-channel slope [${sd}] needs X's rank to be placed on axis 1 ` +
          `(the model does not declare it)`,
      );
    }
    if (r <= 2) return;
    this.appendOnes(n, 1, 1, r - 2, `${s.name}_per_channel`);
    this.note(n, "per-channel slope [C] → [C, 1, …] (PRelu-7 broadcasts from the last axis)");
  }

  tile(n: Node): void {
    const [x, tiles, axis] = n.inputs;
    if (!axis) return;
    const t = constData(tiles), a = constData(axis), r = this.rank(x);
    if (!t || !a || t.length !== 1 || a.length !== 1) {
      throw new ModelError(
        `${this.where(n)}: tiles and axis must be one-element constants to become Tile-6 repeats`,
      );
    }
    if (r === undefined) {
      throw new ModelError(`${this.where(n)}: the input's rank is unknown (Tile-6 repeats)`);
    }
    const ax = a[0] < 0 ? a[0] + r : a[0];
    if (ax < 0 || ax >= r) throw new ModelError(`${this.where(n)}: axis ${a[0]} out of range`);
    const repeats = new Array<number>(r).fill(1);
    repeats[ax] = t[0];
    this.edit.setInput(n, 2, undefined);
    this.edit.setInput(n, 1, this.edit.ints(`${n.name}_repeats`, repeats));
    this.note(n, "(tiles, axis) inputs → repeats input (Tile-6)");
  }

  /** ImageScaler, Scale, Affine, ScaledTanh, ParametricSoftplus: Mul/Add around an activation. */
  affineFamily(n: Node): void {
    const x = n.inputs[0], y = n.outputs[0];
    if (!x) throw new ModelError(`${this.where(n)}: has no input`);
    const type = x.type ?? "float32";
    const num = (name: string, d: number) =>
      typeof n.attrs[name] === "number" ? (n.attrs[name] as number) : d;
    const e = this.edit;
    const scalar = (v: number, what: string) => e.floats(`${n.name}_${what}`, type, [v], []);
    const steps: { op: string; b?: Value }[] = [];
    switch (n.op) {
      case "ImageScaler": {
        const bias = Array.isArray(n.attrs.bias) ? (n.attrs.bias as number[]) : undefined;
        const r = this.rank(x);
        if (r !== undefined && r !== 4) {
          throw new ModelError(`${this.where(n)}: takes a 4-D NCHW input, got rank ${r}`);
        }
        steps.push({ op: "Mul", b: scalar(num("scale", 1), "scale") });
        if (bias) {
          steps.push({ op: "Add", b: e.floats(`${n.name}_bias`, type, bias, [bias.length, 1, 1]) });
        }
        break;
      }
      case "Scale":
        steps.push({ op: "Mul", b: scalar(num("scale", 1), "scale") });
        break;
      case "Affine":
        steps.push({ op: "Mul", b: scalar(num("alpha", 1), "alpha") });
        steps.push({ op: "Add", b: scalar(num("beta", 0), "beta") });
        break;
      default: // ScaledTanh, ParametricSoftplus: alpha · f(beta · x)
        steps.push({ op: "Mul", b: scalar(num("beta", 1), "beta") });
        steps.push({ op: n.op === "ScaledTanh" ? "Tanh" : "Softplus" });
        steps.push({ op: "Mul", b: scalar(num("alpha", 1), "alpha") });
    }
    e.remove(n);
    let cur = x;
    steps.forEach((s, i) => {
      const out = i === steps.length - 1 ? y : e.result(`${y.name}_${s.op.toLowerCase()}`, x);
      e.node(s.op, s.b ? [cur, s.b] : [cur], [out], {}, `${n.name}_${s.op.toLowerCase()}`);
      cur = out;
    });
    this.notes.add(`${n.op}-1`, `experimental op → ${steps.map((s) => s.op).join(", ")}`, n.name);
  }

  crop(n: Node): void {
    const border = intsAttr(n, "border") ?? [0, 0, 0, 0];
    const scale = intsAttr(n, "scale");
    if (border.length !== 4 || (scale && scale.length !== 2)) {
      throw new ModelError(`${this.where(n)}: border must be [l, t, r, b] and scale [h, w]`);
    }
    const [l, t, r, b] = border;
    const BIG = 2 ** 31 - 1;
    n.op = "Slice";
    n.attrs = {
      axes: [2, 3],
      starts: [t, l],
      ends: scale ? [t + scale[0], l + scale[1]] : [b ? -b : BIG, r ? -r : BIG],
    };
    this.notes.add("Crop-1", "experimental op → Slice", n.name);
  }

  dynamicSlice(n: Node): void {
    const [, s, e, a] = n.inputs;
    const starts = constData(s), ends = constData(e), axes = a ? constData(a) : undefined;
    if (!starts || !ends || (a && !axes)) {
      throw new ModelError(
        `${this.where(n)}: computed starts/ends/axes have no opset-7 equivalent (Slice takes ` +
          `them as inputs only from opset 10)`,
      );
    }
    for (let i = n.inputs.length - 1; i >= 1; i--) this.edit.setInput(n, i, undefined);
    n.op = "Slice";
    n.attrs = axes ? { starts, ends, axes } : { starts, ends };
    this.notes.add("DynamicSlice-1", "experimental op with constant bounds → Slice", n.name);
  }

  /** ConstantFill / GivenTensorFill without a runtime input: a constant. */
  fill(n: Node): void {
    const y = n.outputs[0];
    const shape = intsAttr(n, "shape");
    if (n.inputs.some((v) => v) || !shape) {
      throw new ModelError(
        `${this.where(n)}: only the form with a shape attribute and no input has an opset-7 ` +
          `equivalent (a constant)`,
      );
    }
    let t: Tensor;
    if (n.op === "GivenTensorFill") {
      const values = Array.isArray(n.attrs.values) ? (n.attrs.values as number[]) : [];
      if (values.length !== elementCount(shape)) {
        throw new ModelError(`${this.where(n)}: ${values.length} values for shape [${shape}]`);
      }
      t = floatTensor("float32", values, [...shape], this.where(n));
    } else {
      const dtype = typeof n.attrs.dtype === "number" ? n.attrs.dtype : DataType.FLOAT;
      const value = typeof n.attrs.value === "number" ? n.attrs.value : 0;
      const count = elementCount(shape);
      const dims = [...shape];
      if (dtype === DataType.FLOAT) {
        t = { type: "float32", dims, data: new Float32Array(count).fill(value) };
      } else if (dtype === DataType.INT32) {
        t = { type: "int32", dims, data: new Int32Array(count).fill(Math.trunc(value)) };
      } else if (dtype === DataType.INT64) {
        t = { type: "int64", dims, data: new BigInt64Array(count).fill(BigInt(Math.trunc(value))) };
      } else if (dtype === DataType.BOOL) {
        t = { type: "bool", dims, data: new Uint8Array(count).fill(value ? 1 : 0) };
      } else throw new ModelError(`${this.where(n)}: dtype ${dtype} is not supported`);
    }
    this.edit.remove(n);
    y.constant = t;
    y.type = t.type;
    y.shape = [...t.dims];
    this.notes.add(`${n.op}-1`, "experimental op → constant", n.name);
  }
}
