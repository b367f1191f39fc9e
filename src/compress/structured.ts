// Structured (filter) pruning: whole output channels of Conv layers and output units of Gemm
// layers are removed — the smallest by the L1 or L2 norm of their weights — and the layers that
// read them shrink with them, so the model is physically smaller and does fewer MACs on the
// same dense kernels.
//
// Channels are tracked through the graph as "channel spaces". A Conv / Gemm output opens one;
// ops that treat channels independently carry it on: activations, Clip, Cast, Dropout,
// Identity, per-tensor QuantizeLinear / DequantizeLinear, pools (Max, Average, GlobalAverage,
// GlobalMax), Pad without channel padding, BatchNormalization and InstanceNormalization (their
// per-channel parameters shrink), depthwise Conv (its filters and `group` shrink), element-wise
// ops with constant operands (a per-channel constant shrinks), Squeeze / Unsqueeze off the
// channel axis, and Flatten or a flattening Reshape (channel c becomes the H·W features
// c·HW … c·HW + HW − 1, which needs static spatial dims from shape inference). Concat along the
// channels places spaces side by side (the removed indices are offset). A space ends where a
// Conv (group 1), Gemm or MatMul reads it: their input channels / features are removed.
//
// Element-wise ops with several non-constant inputs (Add, Sum, Mul, Sub, Max, …: residual
// connections, squeeze-excitation) must see the SAME channels removed on every input, so their
// spaces are merged into one group, pruned as a unit: a channel's score is the norm of the
// concatenation of its filters over all the group's layers (L1: Σ|w|, L2: √Σw²), and every
// layer of the group loses the same channels. A group is left whole when any of its channels
// reaches a graph output, a graph input or any op not listed above (Reshape to other shapes,
// Transpose, Softmax over channels, grouped non-depthwise Conv, a concat of spaces meeting in
// an element-wise op, …); the reason is in the notes.
//
// Per group, floor(ratio · C) channels go (at least one stays), lowest score first, ties by
// index. A removed channel's activation is not simply dropped: what is left of it once its
// filter is gone — the bias, carried through BatchNormalization, the activation and the other
// channel-wise ops — is a per-channel constant, and its effect on each consumer is folded into
// that consumer's bias (Σ over the consumer's weights for the channel × the constant). So a
// filter whose weights are exactly zero is removed with no change to the outputs beyond float
// rounding, whatever its bias and BatchNormalization are. The fold is exact for Gemm / MatMul
// consumers and unpadded Convs; a padded Conv (or a Pad, an AveragePool counting pads) sees the
// constant at the image borders only partly, so there it is exact in the interior only.
//
// Never prunes a channel that a graph output shows. Layers the recipe makes binary or ternary
// keep their filters (their own passes handle them; a note says so), though their inputs
// shrink with the layer before them. ratio 0 leaves the graph untouched.
//
// The ratio is per layer (settingsFor): a layer's own "structured" (recipe.layers, by node name
// or op type) beats the section's ratio, and 0 keeps the layer's filters. A group of layers
// pruned together takes the smallest ratio of its layers (a layer that keeps its filters keeps
// the group's), with a note when they differ. Without a "structured" section only layers with
// their own ratio are pruned, by the L1 norm. Notes speak only of layers asked to be pruned.
import { type Graph, Node, type Value } from "../graph/ir.ts";
import { elementCount, type Tensor, type TensorType } from "../graph/tensor.ts";
import { allocTensor } from "../ops/tensor_util.ts";
import { inferShapes } from "../graph/shape_inference.ts";
import { TS_OPS } from "../ops/registry.ts";
import { jsContext } from "../ops/types.ts";
import { ArgumentError } from "../errors.ts";
import {
  checkLayerRecipes,
  type LayerSettings,
  type Recipe,
  type StructuredOptions,
  usesPass,
} from "./recipe.ts";
import type { LayerReport, PassResult } from "./types.ts";
import {
  constantValue,
  isDefaultDomain,
  isLayerOp,
  layerBytes,
  layerMacs,
  layerSettings,
  weightMatrix,
} from "./prune.ts";

// ---- channel spaces ----

interface Atom {
  size: number;
  producers: Node[];
  blocked?: string;
  parent: number;
}

/** A run of one space's channels on a tensor's channel axis. */
interface Part {
  atom: number;
  offset: number;
  size: number;
}

/**
 * How a tensor's axis `axis` (of rank `rank`) is made of channel spaces: channel j of part p
 * covers the axis indices [(p.offset + j)·block, (p.offset + j + 1)·block).
 */
interface Desc {
  parts: Part[];
  axis: number;
  rank: number;
  block: number;
}

type Edit =
  | { kind: "producer"; node: Node; atom: number }
  | { kind: "in"; node: Node; desc: Desc }
  | { kind: "dw"; node: Node; desc: Desc }
  | { kind: "param"; node: Node; inputs: number[]; desc: Desc }
  | { kind: "const"; node: Node; input: number; axis: number; desc: Desc }
  | { kind: "reshape"; node: Node; desc: Desc };

const UNARY = new Set([
  "Relu",
  "LeakyRelu",
  "Sigmoid",
  "Tanh",
  "HardSigmoid",
  "HardSwish",
  "Elu",
  "Selu",
  "Celu",
  "ThresholdedRelu",
  "Softplus",
  "Softsign",
  "Mish",
  "Gelu",
  "Erf",
  "Abs",
  "Neg",
  "Exp",
  "Log",
  "Sqrt",
  "Reciprocal",
  "Sign",
  "Floor",
  "Ceil",
  "Round",
  "Identity",
  "Dropout",
  "Clip",
  "Cast",
]);
const POOLS = new Set(["MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"]);
const ELEMENTWISE = new Set([
  "Add",
  "Sub",
  "Mul",
  "Div",
  "Max",
  "Min",
  "Sum",
  "Mean",
  "Pow",
  "PRelu",
]);

const axisLength = (d: Desc) => d.parts.reduce((s, p) => s + p.size, 0) * d.block;

class Analysis {
  atoms: Atom[] = [];
  descs = new Map<Value, Desc>();
  edits: Edit[] = [];
  /** Values whose channel-constant response holds only in the interior (see the top). */
  approximate = new Set<Value>();
  /** Depthwise Convs the channel spaces flow through. */
  depthwise = new Set<Node>();
  /** Why layers asked to be pruned cannot have their filters removed at all. */
  notes: string[] = [];
  readonly settings: (n: Node) => LayerSettings;

  constructor(readonly g: Graph, readonly recipe: Recipe) {
    this.settings = layerSettings(g, recipe);
  }

  find(a: number): number {
    while (this.atoms[a].parent !== a) {
      a = this.atoms[a].parent = this.atoms[this.atoms[a].parent].parent;
    }
    return a;
  }

  atom(size: number, producer: Node | undefined, blocked?: string): number {
    const id = this.atoms.length;
    this.atoms.push({ size, producers: producer ? [producer] : [], blocked, parent: id });
    return id;
  }

  union(a: number, b: number): number {
    a = this.find(a);
    b = this.find(b);
    if (a === b) return a;
    const A = this.atoms[a], B = this.atoms[b];
    B.parent = a;
    A.producers.push(...B.producers);
    A.blocked ??= B.blocked;
    if (A.size !== B.size) A.blocked ??= `channel counts ${A.size} and ${B.size} meet`;
    return a;
  }

  block(d: Desc | undefined, reason: string): void {
    if (!d) return;
    for (const p of d.parts) this.atoms[this.find(p.atom)].blocked ??= reason;
  }

  set(v: Value, d: Desc): void {
    const known = v.shape?.[d.axis];
    if (
      v.shape &&
      (v.shape.length !== d.rank || (typeof known === "number" && known !== axisLength(d)))
    ) {
      this.block(
        d,
        `'${v.name}' has shape [${v.shape}], not ${axisLength(d)} channels on axis ${d.axis}`,
      );
    }
    if (this.g.outputs.includes(v)) this.block(d, `reaches graph output '${v.name}'`);
    this.descs.set(v, d);
  }

  run(): void {
    for (const n of this.g.nodes) {
      this.visit(n);
      // What is exact only in the interior stays so downstream.
      if (n.inputs.some((v) => v && this.approximate.has(v))) {
        for (const v of n.outputs) if (this.descs.has(v)) this.approximate.add(v);
      }
    }
  }

  visit(n: Node): void {
    const tracked = n.inputs.map((v) => (v ? this.descs.get(v) : undefined));
    if (isLayerOp(n)) return this.layer(n, tracked);
    if (!tracked.some(Boolean)) return;
    const why = `${n.op} '${n.name}'`;
    const blockAll = (reason = `read by ${why}`) => tracked.forEach((d) => this.block(d, reason));
    if (!isDefaultDomain(n)) return blockAll();
    const x = tracked[0];
    const out = n.outputs[0];
    const extraOutputUsed = n.outputs.slice(1).some((v) =>
      v.consumers.length || this.g.outputs.includes(v)
    );
    if (UNARY.has(n.op) || POOLS.has(n.op) || n.op === "Pad") {
      if (!x || tracked.slice(1).some(Boolean) || extraOutputUsed) return blockAll();
      if ((POOLS.has(n.op) || n.op === "Pad") && (x.axis !== 1 || x.block !== 1)) return blockAll();
      if (n.op === "Pad" && !this.padKeepsChannels(n, x)) {
        return blockAll(`${why} pads the channels`);
      }
      if (n.op === "Pad") this.approximate.add(out);
      if (n.op === "AveragePool" && n.attrs.count_include_pad === 1) this.approximate.add(out);
      return this.set(out, { ...x });
    }
    if (n.op === "QuantizeLinear" || n.op === "DequantizeLinear") {
      // Per-tensor (de)quantization is element-wise; per-axis is left alone.
      const perTensor = [1, 2].every((i) => {
        const v = n.inputs[i];
        return !v || (v.constant && v.constant.data.length === 1);
      });
      if (!x || !perTensor || extraOutputUsed) return blockAll();
      return this.set(out, { ...x });
    }
    if (n.op === "BatchNormalization" || n.op === "InstanceNormalization") {
      const params = n.op === "BatchNormalization" ? [1, 2, 3, 4] : [1, 2];
      const len = x ? axisLength(x) : 0;
      const ok = x && x.axis === 1 && !extraOutputUsed && tracked.slice(1).every((d) => !d) &&
        params.every((i) => {
          const c = n.inputs[i]?.constant;
          return c && c.type === "float32" && c.dims.length === 1 && c.dims[0] === len;
        });
      if (!ok) return blockAll();
      this.edits.push({ kind: "param", node: n, inputs: params, desc: x });
      return this.set(out, { ...x });
    }
    if (ELEMENTWISE.has(n.op)) return this.elementwise(n, tracked, blockAll);
    if (n.op === "Concat") return this.concat(n, tracked, blockAll);
    if (!x) return blockAll();
    if (n.op === "Flatten" || n.op === "Reshape") return this.flatten(n, x, tracked, blockAll);
    if (n.op === "Squeeze" || n.op === "Unsqueeze") return this.squeeze(n, x, tracked, blockAll);
    blockAll();
  }

  padKeepsChannels(n: Node, x: Desc): boolean {
    if (n.inputs[3]) return false; // axes (opset 18): keep it simple
    const pads = n.inputs[1]
      ? n.inputs[1].constant &&
        Array.from(n.inputs[1].constant.data as ArrayLike<number | bigint>, Number)
      : (n.attrs.pads as number[] | undefined);
    return !!pads && pads.length === 2 * x.rank && pads[x.axis] === 0 &&
      pads[x.rank + x.axis] === 0;
  }

  layer(n: Node, tracked: (Desc | undefined)[]): void {
    const x = tracked[0];
    tracked.slice(1).forEach((d) => this.block(d, `'${n.name}' reads it as a weight`));
    const wv = n.inputs[1];
    const w = wv?.constant;
    const out = n.outputs[0];
    const private_ = wv && wv.consumers.length === 1 && !this.g.outputs.includes(wv);
    const floatW = w && w.type === "float32" && private_;
    const group = typeof n.attrs.group === "number" ? n.attrs.group : 1;
    if (n.op === "Conv" && x && floatW && group > 1) {
      // Depthwise with one filter per channel: channel-wise, so the space flows through.
      const dw = w!.dims[1] === 1 && w!.dims[0] === group && axisLength(x) === group &&
        x.axis === 1 && x.block === 1;
      if (dw && !(n.inputs[2] && !n.inputs[2].constant)) {
        this.edits.push({ kind: "dw", node: n, desc: x });
        this.depthwise.add(n);
        if (
          n.attrs.auto_pad !== undefined && n.attrs.auto_pad !== "NOTSET" &&
            n.attrs.auto_pad !== "VALID" ||
          (n.attrs.pads as number[] | undefined)?.some((p) => p !== 0)
        ) {
          this.approximate.add(out);
        }
        return this.set(out, { ...x });
      }
    }
    if (x) {
      let ok = !!floatW && group === 1;
      if (ok && n.op === "Conv") ok = x.axis === 1 && x.block === 1 && x.rank === w!.dims.length;
      if (ok && n.op === "Gemm") ok = n.attrs.transA !== 1 && x.rank === 2 && x.axis === 1;
      if (ok && n.op === "MatMul") {
        ok = w!.dims.length === 2 && x.rank >= 2 && x.axis === x.rank - 1;
      }
      if (ok) this.edits.push({ kind: "in", node: n, desc: x });
      else this.block(x, `read by ${n.op} '${n.name}', whose inputs cannot shrink`);
    }
    // The output opens a new space.
    const rank = n.op === "Conv"
      ? w?.dims.length ?? out.shape?.length
      : n.op === "Gemm"
      ? 2
      : out.shape?.length;
    const mat = w && weightMatrix(n, w.dims);
    if (!rank || !mat) return;
    let blocked: string | undefined;
    const { method, structured } = this.settings(n);
    if (n.op === "MatMul") blocked = `'${n.name}' is a MatMul (its outputs are not pruned)`;
    else if (!floatW) blocked = `'${n.name}' has no private float32 constant weight`;
    else if (group !== 1) blocked = `'${n.name}' is a grouped convolution`;
    else if (method === "binary" || method === "ternary") blocked = `'${n.name}' is ${method}`;
    else if (n.inputs[2] && !this.biasSliceable(n)) {
      blocked = `'${n.name}' has a bias that cannot shrink`;
    }
    // Such a layer opens no group to prune: say why here, if it was asked to be pruned.
    if (blocked && structured) this.notes.push(`${n.name}: not pruned: ${blocked}`);
    const id = this.atom(mat.rows, blocked ? undefined : n, blocked);
    if (!blocked) this.edits.push({ kind: "producer", node: n, atom: id });
    this.set(out, {
      parts: [{ atom: id, offset: 0, size: mat.rows }],
      axis: n.op === "MatMul" ? rank - 1 : 1,
      rank,
      block: 1,
    });
  }

  biasSliceable(n: Node): boolean {
    const c = n.inputs[2]?.constant;
    if (!c || c.type !== "float32") return false;
    if (n.op === "Conv") return c.dims.length === 1;
    return c.dims.length <= 2;
  }

  elementwise(n: Node, tracked: (Desc | undefined)[], blockAll: (r?: string) => void): void {
    const out = n.outputs[0];
    const R = out.shape?.length;
    if (R === undefined) return blockAll(`'${out.name}' has no known rank`);
    const ds = tracked.filter((d): d is Desc => !!d);
    const fromEnd = ds[0].rank - ds[0].axis;
    const axis = R - fromEnd;
    if (ds.some((d) => d.rank - d.axis !== fromEnd || d.block !== ds[0].block)) {
      return blockAll(`channels of different axes meet in '${n.name}'`);
    }
    const len = axisLength(ds[0]);
    const consts: Edit[] = [];
    for (let i = 0; i < n.inputs.length; i++) {
      const v = n.inputs[i];
      if (!v || tracked[i]) continue;
      const dims = v.constant?.dims ?? v.shape;
      if (!dims) return blockAll(`'${v.name}' has no known shape`);
      const a = dims.length - fromEnd;
      if (a < 0 || dims[a] === 1) continue; // broadcast along the channels
      if (!v.constant || v.constant.type !== "float32" || dims[a] !== len) {
        return blockAll(`'${v.name}' of '${n.name}' is not channel-wise`);
      }
      consts.push({ kind: "const", node: n, input: i, axis: a, desc: ds[0] });
    }
    let d: Desc;
    if (
      ds.every((x) => x.parts.length === 1) &&
      ds.every((x) => x.parts[0].size === ds[0].parts[0].size)
    ) {
      let root = ds[0].parts[0].atom;
      for (const x of ds.slice(1)) root = this.union(root, x.parts[0].atom);
      d = {
        parts: [{ atom: root, offset: 0, size: ds[0].parts[0].size }],
        axis,
        rank: R,
        block: ds[0].block,
      };
    } else {
      const key = (x: Desc) =>
        x.parts.map((p) => `${this.find(p.atom)}@${p.offset}+${p.size}`).join(",");
      if (ds.some((x) => key(x) !== key(ds[0]))) {
        return blockAll(`concatenated channels meet in '${n.name}'`);
      }
      d = { ...ds[0], axis, rank: R };
    }
    this.edits.push(...consts.map((e) => ({ ...e, desc: d }) as Edit));
    this.set(out, d);
  }

  concat(n: Node, tracked: (Desc | undefined)[], blockAll: (r?: string) => void): void {
    const out = n.outputs[0];
    const R = out.shape?.length;
    let axis = typeof n.attrs.axis === "number" ? n.attrs.axis : 0;
    if (R === undefined) return blockAll(`'${out.name}' has no known rank`);
    if (axis < 0) axis += R;
    if (tracked.some((d) => d && (d.axis !== axis || d.block !== 1 || d.rank !== R))) {
      return blockAll(`'${n.name}' concatenates along another axis`);
    }
    const parts: Part[] = [];
    let offset = 0;
    for (let i = 0; i < n.inputs.length; i++) {
      const d = tracked[i];
      if (d) {
        for (const p of d.parts) {
          parts.push({ atom: p.atom, offset: offset + p.offset, size: p.size });
        }
        offset += axisLength(d);
        continue;
      }
      const v = n.inputs[i];
      const c = (v?.constant?.dims ?? v?.shape)?.[axis];
      if (typeof c !== "number") {
        return blockAll(`'${n.name}' concatenates a tensor of unknown channels`);
      }
      if (c === 0) continue;
      parts.push({
        atom: this.atom(c, undefined, `concatenated with '${v!.name}'`),
        offset,
        size: c,
      });
      offset += c;
    }
    this.set(out, { parts, axis, rank: R, block: 1 });
  }

  flatten(n: Node, x: Desc, tracked: (Desc | undefined)[], blockAll: (r?: string) => void): void {
    const out = n.outputs[0];
    if (tracked.slice(1).some(Boolean)) return blockAll();
    const inShape = n.inputs[0]!.shape, outShape = out.shape;
    if (!inShape || !outShape || outShape.length !== 2 || x.axis !== 1) {
      return blockAll(`${n.op} '${n.name}' does not flatten [N, C, …] to [N, C·…]`);
    }
    if (n.op === "Flatten") {
      let axis = typeof n.attrs.axis === "number" ? n.attrs.axis : 1;
      if (axis < 0) axis += inShape.length;
      if (axis !== 1) return blockAll(`Flatten '${n.name}' has axis ${axis}`);
    }
    const rest = inShape.slice(2);
    if (rest.some((d) => typeof d !== "number")) {
      return blockAll(`'${n.name}' has symbolic spatial dims`);
    }
    const spatial = elementCount(rest as number[]);
    const block = x.block * spatial;
    if (outShape[1] !== axisLength(x) * spatial || (outShape[0] !== inShape[0])) {
      return blockAll(`${n.op} '${n.name}' does not flatten [N, C, …] to [N, C·…]`);
    }
    if (n.op === "Reshape") {
      const target = n.inputs[1]?.constant;
      if (!target || target.data.length !== 2) {
        return blockAll(`Reshape '${n.name}' has no constant target`);
      }
      const t1 = Number((target.data as ArrayLike<number | bigint>)[1]);
      if (t1 > 0) this.edits.push({ kind: "reshape", node: n, desc: { ...x, rank: 2, block } });
    }
    this.set(out, { parts: x.parts, axis: 1, rank: 2, block });
  }

  squeeze(n: Node, x: Desc, tracked: (Desc | undefined)[], blockAll: (r?: string) => void): void {
    const out = n.outputs[0];
    if (tracked.slice(1).some(Boolean)) return blockAll();
    const raw = Array.isArray(n.attrs.axes) ? (n.attrs.axes as number[]) : n.inputs[1]?.constant &&
      Array.from(n.inputs[1].constant.data as ArrayLike<number | bigint>, Number);
    const R = out.shape?.length;
    if (!raw || R === undefined) return blockAll(`${n.op} '${n.name}' has no constant axes`);
    if (n.op === "Squeeze") {
      const axes = raw.map((a) => (a < 0 ? a + x.rank : a));
      if (axes.includes(x.axis)) return blockAll(`'${n.name}' squeezes the channels`);
      const axis = x.axis - axes.filter((a) => a < x.axis).length;
      return this.set(out, { ...x, axis, rank: R });
    }
    const axes = raw.map((a) => (a < 0 ? a + R : a)).sort((a, b) => a - b);
    let axis = x.axis;
    for (const a of axes) if (a <= axis) axis++;
    this.set(out, { ...x, axis, rank: R });
  }
}

// ---- the constant left of a removed channel ----

/** A tensor of the value's rank: 1 everywhere but the channel axis, which holds `k`. */
function standIn(d: Desc, k: Float64Array, type: TensorType): Tensor {
  const dims = Array.from({ length: d.rank }, (_, i) => (i === d.axis ? k.length : 1));
  const t = allocTensor(type, dims);
  // NaN (unknown) becomes 0 in integer types; the caller marks those channels again.
  for (let i = 0; i < k.length; i++) (t.data as Float32Array)[i] = Number.isNaN(k[i]) ? 0 : k[i];
  return t;
}

/**
 * For every tracked value, per index of its channel axis: the activation that remains when the
 * filters of that channel contribute nothing (bias → BN → activation …). NaN where it is not a
 * per-channel constant.
 */
function channelConstants(g: Graph, a: Analysis): Map<Value, Float64Array> {
  const k = new Map<Value, Float64Array>();
  const opset = g.opsets.get("") ?? g.opsets.get("ai.onnx") ?? 13;
  const nan = (n: number) => new Float64Array(n).fill(NaN);
  for (const n of g.nodes) {
    const out = n.outputs[0];
    const d = out && a.descs.get(out);
    if (!d) continue;
    const len = axisLength(d);
    const x = n.inputs[0] && k.get(n.inputs[0]);
    if (isLayerOp(n)) {
      const w = n.inputs[1]?.constant;
      const bias = n.inputs[2]?.constant;
      const r = new Float64Array(len);
      if (a.depthwise.has(n) && x && w) {
        const taps = elementCount(w.dims.slice(1));
        const wd = w.data as Float32Array;
        for (let c = 0; c < len; c++) {
          let s = 0;
          for (let t = 0; t < taps; t++) s += wd[c * taps + t];
          r[c] = x[c] * s;
        }
      }
      if (bias) {
        const b = bias.data as Float32Array;
        const beta = n.op === "Gemm" && typeof n.attrs.beta === "number" ? n.attrs.beta : 1;
        if (b.length === 1) r.forEach((_, c) => (r[c] += beta * b[0]));
        else if (b.length === len) r.forEach((_, c) => (r[c] += beta * b[c]));
        else r.fill(NaN);
      }
      k.set(out, r);
      continue;
    }
    if (
      POOLS.has(n.op) || n.op === "Pad" || n.op === "Squeeze" || n.op === "Unsqueeze" ||
      n.op === "Dropout" || n.op === "Identity"
    ) {
      k.set(out, x ?? nan(len));
      continue;
    }
    if (n.op === "Flatten" || n.op === "Reshape") {
      const xd = a.descs.get(n.inputs[0]!)!;
      const spatial = d.block / xd.block;
      k.set(
        out,
        x ? Float64Array.from({ length: len }, (_, i) => x[Math.floor(i / spatial)]) : nan(len),
      );
      continue;
    }
    if (n.op === "Concat") {
      const r = new Float64Array(len);
      let off = 0;
      for (const v of n.inputs) {
        const dv = v && a.descs.get(v);
        const c = dv ? axisLength(dv) : ((v?.constant?.dims ?? v?.shape)?.[d.axis] as number);
        r.set(dv && k.get(v!) ? k.get(v!)! : nan(c), off);
        off += c;
      }
      k.set(out, r);
      continue;
    }
    // Channel-wise ops: run the engine's own op on [1, C, 1, …] stand-ins.
    const fn = TS_OPS[n.qualifiedOp];
    let r: Float64Array = nan(len);
    try {
      const unknown = new Uint8Array(len);
      const ins = n.inputs.map((v) => {
        if (!v) return undefined;
        const dv = a.descs.get(v);
        if (dv) {
          const kv = k.get(v) ?? nan(axisLength(dv));
          if (kv.length === len) kv.forEach((x, i) => (unknown[i] |= Number.isNaN(x) ? 1 : 0));
          return standIn(dv, kv, v.type ?? "float32");
        }
        if (v.constant) return v.constant;
        // A non-constant input broadcast along the channels: unknown value.
        throw new Error("not constant");
      });
      const [t] = fn(ins, jsContext(n, opset));
      if (t.data.length === len) {
        r = Float64Array.from(t.data as Float32Array, (x, i) => (unknown[i] ? NaN : Number(x)));
      }
    } catch {
      // Leave NaN: no fold for these channels.
    }
    k.set(out, r);
  }
  return k;
}

// ---- applying the edits ----

function removeFrom(
  arr: Float32Array,
  dims: number[],
  axis: number,
  drop: Set<number>,
): Float32Array {
  const outer = elementCount(dims.slice(0, axis)),
    n = dims[axis],
    inner = elementCount(dims.slice(axis + 1));
  const kept = n - drop.size;
  const out = new Float32Array(outer * kept * inner);
  let o = 0;
  for (let a = 0; a < outer; a++) {
    for (let i = 0; i < n; i++) {
      if (drop.has(i)) continue;
      const src = (a * n + i) * inner;
      out.set(arr.subarray(src, src + inner), o);
      o += inner;
    }
  }
  return out;
}

/** Points input i of `node` at `v`; a constant left unread leaves the graph. */
function replaceInput(g: Graph, node: Node, i: number, v: Value | undefined): void {
  const old = node.inputs[i];
  if (old) {
    const j = old.consumers.indexOf(node);
    if (j >= 0) old.consumers.splice(j, 1);
    if (old.constant && !old.consumers.length && !g.outputs.includes(old)) {
      g.values.delete(old.name);
    }
  }
  node.inputs[i] = v;
  v?.consumers.push(node);
  while (node.inputs.length && node.inputs[node.inputs.length - 1] === undefined) node.inputs.pop();
}

/** Replaces constant input i by `t`, under the old name when nothing else reads the old one. */
function replaceConstant(g: Graph, node: Node, i: number, t: Tensor, name?: string): void {
  const base = name ?? node.inputs[i]!.name;
  replaceInput(g, node, i, undefined);
  replaceInput(g, node, i, constantValue(g, base, t));
}

function setConstant(
  g: Graph,
  node: Node,
  i: number,
  base: string,
  data: Float32Array,
  dims: number[],
): void {
  replaceConstant(g, node, i, { type: "float32", dims, data }, base);
}

/** The "structured" section, validated; { ratio 0, l1 } when only layers set a ratio. */
function checkOptions(recipe: Recipe): StructuredOptions {
  checkLayerRecipes(recipe);
  const s = recipe.structured;
  if (!s) {
    if (usesPass(recipe, "structured")) return { ratio: 0, norm: "l1" };
    throw new ArgumentError(
      "structured: the recipe has no 'structured' section and no layer with its own ratio",
    );
  }
  if (typeof s.ratio !== "number" || !(s.ratio >= 0 && s.ratio < 1)) {
    throw new ArgumentError(`structured: ratio must be in [0, 1), got ${JSON.stringify(s.ratio)}`);
  }
  if (s.norm !== "l1" && s.norm !== "l2") {
    throw new ArgumentError(`structured: norm must be "l1" or "l2", got ${JSON.stringify(s.norm)}`);
  }
  return s;
}

interface LayerChange {
  node: Node;
  outDrop: Set<number>;
  inDrop: Set<number>;
  biasAdd?: Float64Array;
  params: number;
  /** Weight dims before. */
  dims: number[];
  bytes: number;
  macs?: number;
  notes: string[];
}

/** The structured-pruning pass (see the top of this file). */
export function structuredPass(g: Graph, recipe: Recipe): PassResult {
  const opts = checkOptions(recipe);
  const notes: string[] = [];
  g.topoSort();
  // Shapes as imported (declared value_info) come back where a pruned channel count is not
  // involved; inference needs a clean slate for the rest.
  inferShapes(g);
  const a = new Analysis(g, recipe);
  a.run();
  notes.push(...a.notes);
  const ratioOf = (n: Node) => a.settings(n).structured ?? 0;

  // Groups and the channels they lose.
  const groups = new Map<number, number[]>();
  a.atoms.forEach((_, i) => {
    const r = a.find(i);
    if (!groups.has(r)) groups.set(r, []);
    groups.get(r)!.push(i);
  });
  const removed = new Map<number, Set<number>>();
  for (const [root, members] of groups) {
    const at = a.atoms[root];
    if (!at.producers.length) continue;
    const names = at.producers.map((n) => n.name).join(", ");
    const ratios = at.producers.map(ratioOf);
    if (!ratios.some((r) => r > 0)) continue; // none of them asked
    if (at.blocked) {
      notes.push(`${names}: not pruned: ${at.blocked}`);
      continue;
    }
    const ratio = Math.min(...ratios);
    if (ratio !== Math.max(...ratios)) {
      const keep = at.producers.filter((_, i) => ratios[i] === ratio).map((n) => n.name);
      notes.push(
        ratio === 0
          ? `${names}: pruned together (their outputs meet), and ${
            keep.join(", ")
          } keeps its filters; none removed`
          : `${names}: pruned together at the smallest of their ratios, ${ratio} (${
            keep.join(", ")
          })`,
      );
    }
    const C = at.size;
    const drop = Math.min(Math.floor(ratio * C + 1e-9), C - 1);
    if (drop <= 0) continue;
    const score = new Float64Array(C);
    for (const p of at.producers) {
      const w = p.inputs[1]!.constant!;
      const m = weightMatrix(p, w.dims)!;
      const wd = w.data as Float32Array;
      for (let r = 0; r < m.rows; r++) {
        let s = 0;
        for (let j = 0; j < m.k; j++) {
          const x = wd[r * m.rowStride + j * m.kStride];
          s += opts.norm === "l1" ? Math.abs(x) : x * x;
        }
        score[r] += s;
      }
    }
    const order = Array.from({ length: C }, (_, i) => i).sort((x, y) =>
      score[x] - score[y] || x - y
    );
    const set = new Set(order.slice(0, drop));
    for (const m of members) removed.set(m, set);
    if (at.producers.length > 1) {
      notes.push(`${names}: pruned together (their outputs meet), ${drop} of ${C} channels`);
    }
  }
  if (!removed.size) {
    return { layers: [], notes };
  }

  const k = channelConstants(g, a);
  /** Removed indices on a tensor's channel axis (expanded by block). */
  const dropped = (d: Desc): Set<number> => {
    const s = new Set<number>();
    for (const p of d.parts) {
      const r = removed.get(a.find(p.atom));
      if (!r) continue;
      for (const j of r) for (let b = 0; b < d.block; b++) s.add((p.offset + j) * d.block + b);
    }
    return s;
  };
  const changes = new Map<Node, LayerChange>();
  const change = (n: Node): LayerChange => {
    let c = changes.get(n);
    if (!c) {
      const w = n.inputs[1]!.constant!;
      c = {
        node: n,
        outDrop: new Set(),
        inDrop: new Set(),
        params: elementCount(w.dims),
        dims: [...w.dims],
        bytes: layerBytes(n),
        macs: layerMacs(n),
        notes: [],
      };
      changes.set(n, c);
    }
    return c;
  };
  const matmulBias: [Node, Float64Array][] = [];
  const other: Edit[] = [];
  for (const e of a.edits) {
    if (e.kind === "producer") {
      const r = removed.get(a.find(e.atom));
      if (r) { for (const i of r) change(e.node).outDrop.add(i); }
    } else if (e.kind === "dw") {
      const r = dropped(e.desc);
      if (r.size) { for (const i of r) change(e.node).outDrop.add(i); }
    } else if (e.kind === "in") {
      const r = dropped(e.desc);
      if (!r.size) continue;
      const c = change(e.node);
      for (const i of r) c.inDrop.add(i);
      const add = compensation(e.node, r, k.get(e.node.inputs[0]!)!, c.notes);
      const approx = a.approximate.has(e.node.inputs[0]!) ||
        (e.node.op === "Conv" && convPadded(e.node));
      if (add && approx) {
        c.notes.push(
          "removed channels' constant folded into the bias (exact in the interior only)",
        );
      }
      if (add && e.node.op === "MatMul") matmulBias.push([e.node, add]);
      else if (add) c.biasAdd = add;
    } else other.push(e);
  }

  // Per-channel parameters, constant operands, Reshape targets.
  for (const e of other) {
    const n = e.node;
    if (e.kind === "param") {
      const r = dropped(e.desc);
      if (!r.size) continue;
      for (const i of e.inputs) {
        const c = n.inputs[i]!.constant!;
        setConstant(g, n, i, n.inputs[i]!.name, removeFrom(c.data as Float32Array, c.dims, 0, r), [
          c.dims[0] - r.size,
        ]);
      }
    } else if (e.kind === "const") {
      const r = dropped(e.desc);
      if (!r.size) continue;
      const c = n.inputs[e.input]!.constant!;
      const dims = [...c.dims];
      const data = removeFrom(c.data as Float32Array, dims, e.axis, r);
      dims[e.axis] -= r.size;
      replaceConstant(g, n, e.input, { type: "float32", dims, data });
    } else if (e.kind === "reshape") {
      const r = dropped(e.desc);
      if (!r.size) continue;
      const t = n.inputs[1]!.constant!;
      const vals = Array.from(t.data as ArrayLike<number | bigint>, Number);
      vals[1] -= r.size;
      replaceConstant(g, n, 1, {
        type: "int64",
        dims: [2],
        data: BigInt64Array.from(vals, (v) => BigInt(v)),
      });
    }
  }

  for (const c of changes.values()) applyLayerChange(g, c, a.depthwise.has(c.node));
  for (const [n, add] of matmulBias) addBiasAfter(g, n, add);

  // Fresh shapes for the tensors that lost channels (their declared shapes are stale).
  for (const [v, d] of a.descs) if (dropped(d).size) v.shape = undefined;
  g.topoSort();
  inferShapes(g);

  const layers: LayerReport[] = [];
  for (const c of changes.values()) {
    const n = c.node;
    const w = n.inputs[1]!.constant!;
    const wd = w.data as Float32Array;
    let nz = 0;
    for (let i = 0; i < wd.length; i++) if (wd[i] !== 0) nz++;
    const parts: string[] = [];
    const [d0, d1] = c.dims;
    const outAxis = n.op === "Conv" || n.attrs.transB === 1 ? 0 : 1;
    const total = (c.dims as number[])[outAxis];
    if (c.outDrop.size) parts.push(`filters ${total - c.outDrop.size}/${total}`);
    if (c.inDrop.size && !a.depthwise.has(n)) {
      const ins = outAxis === 0 ? d1 : d0;
      parts.push(`inputs ${ins - c.inDrop.size}/${ins}`);
    }
    layers.push({
      name: n.name,
      op: n.op,
      method: `structured ${opts.norm}: ${parts.join(", ")}`,
      params: c.params,
      nonzeros: nz,
      bytesBefore: c.bytes,
      bytesAfter: layerBytes(n),
      macsBefore: c.macs,
      macsAfter: layerMacs(n),
      notes: c.notes.length ? c.notes : undefined,
    });
  }
  const macs = (f: (l: LayerReport) => number | undefined) =>
    layers.reduce((s, l) => s + (f(l) ?? 0), 0);
  notes.push(
    `structured ${opts.norm} ${
      Object.values(recipe.layers).some((o) => o.structured !== undefined)
        ? "with per-layer ratios"
        : `ratio ${opts.ratio}`
    }: ${layers.length} layers changed, MACs of those ${macs((l) => l.macsBefore)} → ${
      macs((l) => l.macsAfter)
    }`,
  );
  return { layers, notes };
}

function convPadded(n: Node): boolean {
  const auto = n.attrs.auto_pad;
  if (auto !== undefined && auto !== "NOTSET" && auto !== "VALID") return true;
  return ((n.attrs.pads as number[] | undefined) ?? []).some((p) => p !== 0);
}

/**
 * What the removed input channels `r` (constant activations k[i]) added to each output of the
 * consumer: Σ_i k[i] · Σ_taps W[o, i, taps] (Gemm: times alpha). Undefined when all zero.
 */
function compensation(
  n: Node,
  r: Set<number>,
  k: Float64Array,
  notes: string[],
): Float64Array | undefined {
  const w = n.inputs[1]!.constant!;
  const wd = w.data as Float32Array;
  let add: Float64Array | undefined;
  let unknown = 0;
  if (n.op === "Conv") {
    const [cout, cin] = w.dims;
    const taps = elementCount(w.dims.slice(2));
    for (const i of r) {
      if (k[i] === 0) continue;
      if (!Number.isFinite(k[i])) {
        unknown++;
        continue;
      }
      add ??= new Float64Array(cout);
      for (let o = 0; o < cout; o++) {
        let s = 0;
        const base = (o * cin + i) * taps;
        for (let t = 0; t < taps; t++) s += wd[base + t];
        add[o] += k[i] * s;
      }
    }
  } else {
    const m = weightMatrix(n, w.dims)!;
    const alpha = n.op === "Gemm" && typeof n.attrs.alpha === "number" ? n.attrs.alpha : 1;
    for (const i of r) {
      if (k[i] === 0) continue;
      if (!Number.isFinite(k[i])) {
        unknown++;
        continue;
      }
      add ??= new Float64Array(m.rows);
      for (let o = 0; o < m.rows; o++) add[o] += alpha * k[i] * wd[o * m.rowStride + i * m.kStride];
    }
  }
  if (unknown) {
    notes.push(
      `${unknown} removed inputs are not constant once pruned; dropped without a bias fold`,
    );
  }
  return add;
}

function applyLayerChange(g: Graph, c: LayerChange, isDw: boolean): void {
  const n = c.node;
  const wv = n.inputs[1]!;
  const w = wv.constant!;
  let data = w.data as Float32Array;
  const dims = [...w.dims];
  const outAxis = n.op === "Conv" ? 0 : n.op === "Gemm" && n.attrs.transB === 1 ? 0 : 1;
  const inAxis = n.op === "Conv" ? 1 : 1 - outAxis;
  if (c.outDrop.size) {
    data = removeFrom(data, dims, outAxis, c.outDrop);
    dims[outAxis] -= c.outDrop.size;
  }
  if (c.inDrop.size && !isDw) {
    data = removeFrom(data, dims, inAxis, c.inDrop);
    dims[inAxis] -= c.inDrop.size;
  }
  setConstant(g, n, 1, wv.name, data, dims);
  if (isDw) n.attrs.group = dims[0];
  // Bias: fold, then drop the removed outputs.
  const rows = c.dims[outAxis];
  const bv = n.inputs[2];
  const b = bv?.constant;
  const beta = n.op === "Gemm" && typeof n.attrs.beta === "number" ? n.attrs.beta : 1;
  let add = c.biasAdd;
  if (add && beta === 0) {
    c.notes.push("beta = 0: the removed inputs' constant cannot be folded");
    add = undefined;
  }
  const scalar = !!b && b.data.length === 1;
  if (!add && (!b || scalar || !c.outDrop.size)) return;
  let bias: Float32Array;
  let bdims: number[];
  if (b && !scalar) {
    bias = Float32Array.from(b.data as Float32Array);
    bdims = [...b.dims];
  } else {
    // None, or a scalar that the fold makes per-output.
    bias = new Float32Array(rows).fill(b ? Number((b.data as Float32Array)[0]) : 0);
    bdims = [rows];
  }
  const last = bdims[bdims.length - 1];
  if (add && last !== rows) c.notes.push("the bias broadcasts over the outputs: no fold");
  else if (add) { for (let i = 0; i < bias.length; i++) bias[i] += add[i % rows] / beta; }
  if (c.outDrop.size && last === rows) {
    bias = removeFrom(bias, bdims, bdims.length - 1, c.outDrop);
    bdims[bdims.length - 1] -= c.outDrop.size;
  }
  setConstant(g, n, 2, bv?.name ?? `${n.name}::bias`, bias, bdims);
}

/** MatMul has no bias: the fold becomes an Add after it, which writes the MatMul's output. */
function addBiasAfter(g: Graph, n: Node, add: Float64Array): void {
  const out = n.outputs[0];
  const mid = g.value(`${out.name}::matmul`);
  mid.type = out.type;
  n.outputs[0] = mid;
  mid.producer = n;
  out.producer = undefined;
  const b = constantValue(g, `${n.name}::bias`, {
    type: "float32",
    dims: [add.length],
    data: Float32Array.from(add),
  });
  g.addNode(new Node(`${n.name}::bias_add`, "Add", "", [mid, b], [out]));
}
