// convertOpset(g, target): raises a graph's default-domain opset, rewriting only the ops whose
// meaning or signature changed in between, as the ONNX version converter's adapters do (and
// where those are lossy, as the changelog says: Resize-11's new default coordinate mapping, the
// ops the converter has no adapter for). Every other op keeps its node as it is. A graph older
// than opset 7 first goes through the opset 1–6 upgrade (src/onnx/legacy.ts).
//
// Rewrites, by the version whose schema changed (each applies when from < version ≤ target):
//    9  Upsample: scales attribute → input. BatchNormalization: `spatial` removed; spatial=0
//       (per-activation statistics) becomes Mul + Add with folded constants.
//   10  Upsample → Resize (same inputs, mode). Slice: starts/ends/axes → inputs. TopK: k →
//       input. Dropout: the mask becomes bool (a used mask gets a Cast back).
//   11  Clip: min/max → inputs. Pad: pads/value → inputs. Resize: roi input, and the
//       opset-10 coordinate mapping made explicit (asymmetric; nearest rounds down).
//       Scatter → ScatterElements.
//   12  Dropout: ratio → input.
//   13  Softmax, LogSoftmax, Hardmax: the input is no longer coerced to 2-D at `axis`; an axis
//       that is not the last (or a rank that is not known) becomes Flatten → op(axis=-1) →
//       Reshape back to the input's shape. Squeeze, Unsqueeze, ReduceSum: axes → input.
//       Split: split → input.
//   18  ReduceL1/L2/LogSum/LogSumExp/Max/Mean/Min/Prod/SumSquare: axes → input. Split
//       without split lengths: num_outputs required.
//   20  GridSample: mode bilinear/bicubic → linear/cubic.
//   21  GroupNormalization: scale/bias per group → per channel.
// Everything else in between only widened types or added optional attributes/inputs whose
// defaults keep the old meaning (e.g. AveragePool count_include_pad, MaxPool ceil_mode,
// Reshape allowzero, Pad axes, Split num_outputs with split given).
import type { Graph, Node, Value } from "../graph/ir.ts";
import { elementCount, type Tensor, type TensorType } from "../graph/tensor.ts";
import { ArgumentError, ModelError } from "../errors.ts";
import { GraphEdit, LEGACY_TARGET, rankOf, RewriteNotes, upgradeLegacyOpset } from "./legacy.ts";
import { DataType } from "./proto.ts";

/** Newest opset the engine's ops implement (and so the newest target). */
export const MAX_OPSET = 23;

export interface ConvertResult {
  /** Human-readable notes: the version change, then one line per kind of rewrite. */
  converted: string[];
}

const REDUCE_18 = [
  "ReduceL1",
  "ReduceL2",
  "ReduceLogSum",
  "ReduceLogSumExp",
  "ReduceMax",
  "ReduceMean",
  "ReduceMin",
  "ReduceProd",
  "ReduceSumSquare",
];

type Step = (c: Converter, n: Node) => void;

/** Rewrites by op and the version that changed it, applied in version order. */
const STEPS: { op: string; at: number; fn: Step }[] = [
  { op: "Upsample", at: 9, fn: (c, n) => c.scalesToInput(n) },
  { op: "BatchNormalization", at: 9, fn: (c, n) => c.batchNormSpatial(n) },
  { op: "Upsample", at: 10, fn: (c, n) => c.upsampleToResize(n) },
  { op: "Slice", at: 10, fn: (c, n) => c.sliceToInputs(n) },
  { op: "TopK", at: 10, fn: (c, n) => c.attrToInts(n, "k", 1, 10) },
  { op: "Dropout", at: 10, fn: (c, n) => c.dropoutBoolMask(n) },
  { op: "Clip", at: 11, fn: (c, n) => c.clipToInputs(n) },
  { op: "Pad", at: 11, fn: (c, n) => c.padToInputs(n) },
  { op: "Resize", at: 11, fn: (c, n) => c.resize11(n) },
  { op: "Scatter", at: 11, fn: (c, n) => c.rename(n, "ScatterElements") },
  { op: "Dropout", at: 12, fn: (c, n) => c.dropoutRatio(n) },
  { op: "Softmax", at: 13, fn: (c, n) => c.softmax13(n) },
  { op: "LogSoftmax", at: 13, fn: (c, n) => c.softmax13(n) },
  { op: "Hardmax", at: 13, fn: (c, n) => c.softmax13(n) },
  { op: "Squeeze", at: 13, fn: (c, n) => c.attrToInts(n, "axes", 1, 13) },
  { op: "Unsqueeze", at: 13, fn: (c, n) => c.attrToInts(n, "axes", 1, 13) },
  { op: "ReduceSum", at: 13, fn: (c, n) => c.attrToInts(n, "axes", 1, 13) },
  { op: "Split", at: 13, fn: (c, n) => c.attrToInts(n, "split", 1, 13) },
  ...REDUCE_18.map((op) => ({
    op,
    at: 18,
    fn: ((c, n) => c.attrToInts(n, "axes", 1, 18)) as Step,
  })),
  { op: "Split", at: 18, fn: (c, n) => c.splitNumOutputs(n) },
  { op: "GridSample", at: 20, fn: (c, n) => c.gridSampleModes(n) },
  { op: "GroupNormalization", at: 21, fn: (c, n) => c.groupNormPerChannel(n) },
];

/**
 * Upgrades g in place to opset `target` (≥ its current default-domain opset, ≤ MAX_OPSET).
 * Throws ArgumentError for a downgrade or an unknown target, ModelError for an op whose old
 * form has no equivalent at the target (naming the node).
 */
export function convertOpset(g: Graph, target: number): ConvertResult {
  const key = g.opsets.has("") || !g.opsets.has("ai.onnx") ? "" : "ai.onnx";
  let from = g.opsets.get(key);
  if (from === undefined) throw new ArgumentError("convertOpset: the graph imports no ONNX opset");
  if (!Number.isInteger(target) || target < 1) {
    throw new ArgumentError(`convertOpset: target opset must be a positive integer, got ${target}`);
  }
  if (target < from) {
    throw new ArgumentError(
      `convertOpset: the model is at opset ${from}; converting down to ${target} is not ` +
        `supported (only upgrades)`,
    );
  }
  if (target > MAX_OPSET) {
    throw new ArgumentError(
      `convertOpset: opset ${target} is newer than the newest sqz implements (${MAX_OPSET})`,
    );
  }
  const converted: string[] = [];
  if (from < LEGACY_TARGET) {
    converted.push(...upgradeLegacyOpset(g, from));
    from = LEGACY_TARGET;
  }
  if (target === from) return { converted };
  const c = new Converter(g, from, target);
  for (const node of [...g.nodes]) {
    if (node.domain && node.domain !== "ai.onnx") continue;
    for (const s of STEPS) {
      // A step may rename the node (Upsample → Resize), so later steps see the new op.
      if (s.op === node.op && from < s.at && s.at <= target) s.fn(c, node);
    }
  }
  g.opsets.set(key, target);
  g.topoSort();
  const lines = c.notes.lines();
  converted.push(
    `opset ${from} → ${target}: ` +
      (lines.length
        ? `${c.notes.count} rewrite${c.notes.count === 1 ? "" : "s"} of ops that changed`
        : "no op in the model changed meaning in between"),
    ...lines,
  );
  return { converted };
}

/** The float type of a value (Clip/Pad/Dropout constants take X's type); float32 if unknown. */
function floatTypeOf(v: Value | undefined): TensorType {
  const t = v?.type;
  return t === "float64" || t === "float16" ? t : "float32";
}

class Converter {
  readonly notes = new RewriteNotes();
  readonly edit: GraphEdit;
  readonly memo = new Map<Value, number | undefined>();

  constructor(readonly g: Graph, readonly from: number, readonly target: number) {
    this.edit = new GraphEdit(g);
  }

  where(n: Node): string {
    return `node '${n.name}' (${n.op})`;
  }

  note(n: Node, at: number, change: string, op = n.op): void {
    this.notes.add(`${op} (opset ${at})`, change, n.name);
  }

  /** A scalar or list attribute moved to input slot i as an int64 constant (1-D). */
  attrToInts(n: Node, name: string, i: number, at: number): void {
    const a = n.attrs[name];
    if (a === undefined) return;
    delete n.attrs[name];
    if (n.inputs[i]) return; // both given: the input wins (the attribute was invalid anyway)
    const values = Array.isArray(a) ? (a as number[]) : [a as number];
    this.edit.setInput(n, i, this.edit.ints(`${n.name}_${name}`, values));
    this.note(n, at, `${name} attribute → int64 input`);
  }

  rename(n: Node, op: string): void {
    const old = n.op;
    n.op = op;
    this.note(n, 11, `→ ${op} (same semantics)`, old);
  }

  scalesToInput(n: Node): void {
    const s = n.attrs.scales;
    if (!Array.isArray(s)) return;
    delete n.attrs.scales;
    this.edit.setInput(
      n,
      1,
      this.edit.floats(`${n.name}_scales`, "float32", s as number[], [s.length]),
    );
    this.note(n, 9, "scales attribute → float input");
  }

  upsampleToResize(n: Node): void {
    n.op = "Resize";
    n.attrs = { mode: typeof n.attrs.mode === "string" ? n.attrs.mode : "nearest" };
    this.note(n, 10, "deprecated → Resize-10 (same inputs and mode)", "Upsample");
  }

  resize11(n: Node): void {
    const [, scales, sizes] = n.inputs;
    const mode = typeof n.attrs.mode === "string" ? n.attrs.mode : "nearest";
    // Resize-10 maps output to input coordinates as x_in = x_out / scale ("asymmetric") and
    // takes the nearest pixel by truncation (onnxruntime's "simple": floor when upsampling,
    // ceil when downsampling); Resize-11's defaults are half_pixel and round_prefer_floor.
    n.attrs.coordinate_transformation_mode = "asymmetric";
    if (mode === "nearest") {
      const sc = scales?.constant
        ? Array.from(scales.constant.data as ArrayLike<number>, Number)
        : undefined;
      n.attrs.nearest_mode = sc && sc.every((v) => v <= 1) && sc.some((v) => v < 1)
        ? "ceil"
        : "floor";
    }
    const roi = this.target >= 13
      ? undefined
      : this.edit.floats(`${n.name}_roi`, "float32", [], [0]);
    // [X, scales] → [X, roi, scales] (Resize-11 put roi before scales; optional from 13).
    this.edit.setInput(n, 1, roi);
    this.edit.setInput(n, 2, scales);
    if (sizes) this.edit.setInput(n, 3, sizes);
    this.note(
      n,
      11,
      "roi input added; coordinate_transformation_mode=asymmetric" +
        (mode === "nearest" ? " and nearest_mode kept as opset 10 rounds" : "") +
        " (Resize-11's defaults differ)",
    );
  }

  sliceToInputs(n: Node): void {
    const starts = n.attrs.starts, ends = n.attrs.ends, axes = n.attrs.axes;
    if (!Array.isArray(starts) || !Array.isArray(ends)) return;
    delete n.attrs.starts;
    delete n.attrs.ends;
    delete n.attrs.axes;
    const e = this.edit;
    e.setInput(n, 1, e.ints(`${n.name}_starts`, starts as number[]));
    e.setInput(n, 2, e.ints(`${n.name}_ends`, ends as number[]));
    if (Array.isArray(axes)) e.setInput(n, 3, e.ints(`${n.name}_axes`, axes as number[]));
    this.note(n, 10, "starts/ends/axes attributes → int64 inputs");
  }

  clipToInputs(n: Node): void {
    const min = n.attrs.min, max = n.attrs.max;
    delete n.attrs.min;
    delete n.attrs.max;
    if (min === undefined && max === undefined) return;
    const type = floatTypeOf(n.inputs[0]);
    const e = this.edit;
    if (typeof min === "number") e.setInput(n, 1, e.floats(`${n.name}_min`, type, [min], []));
    if (typeof max === "number") e.setInput(n, 2, e.floats(`${n.name}_max`, type, [max], []));
    this.note(n, 11, "min/max attributes → scalar inputs");
  }

  padToInputs(n: Node): void {
    const pads = n.attrs.pads, value = n.attrs.value;
    if (!Array.isArray(pads)) return;
    delete n.attrs.pads;
    delete n.attrs.value;
    const e = this.edit;
    e.setInput(n, 1, e.ints(`${n.name}_pads`, pads as number[]));
    if (typeof value === "number" && value !== 0) {
      const x = n.inputs[0];
      const t = x?.type ?? "float32";
      const v = t === "float32" || t === "float64" || t === "float16"
        ? e.floats(`${n.name}_value`, t, [value], [])
        : e.constant(`${n.name}_value`, constantOf(t, value));
      e.setInput(n, 2, v);
    }
    this.note(n, 11, "pads/value attributes → inputs");
  }

  dropoutBoolMask(n: Node): void {
    const mask = n.outputs[1];
    if (!mask || !this.edit.used(mask)) return;
    // The mask was of X's type (ones); from opset 10 it is bool: cast it back for its readers.
    const type = mask.type ?? n.inputs[0]?.type ?? "float32";
    const code = DATA_TYPE[type];
    if (code === undefined) throw new ModelError(`${this.where(n)}: mask of type ${type}`);
    const b = this.edit.detachOutput(n, 1, `${mask.name}_bool`);
    b.type = "bool";
    this.edit.node("Cast", [b], [mask], { to: code }, `${n.name}_mask_cast`);
    this.note(n, 10, "bool mask (opset 10) cast back to the input type for its consumers");
  }

  dropoutRatio(n: Node): void {
    const ratio = n.attrs.ratio;
    delete n.attrs.ratio;
    if (typeof ratio !== "number" || n.inputs[1]) return;
    const type = floatTypeOf(n.inputs[0]);
    this.edit.setInput(n, 1, this.edit.floats(`${n.name}_ratio`, type, [ratio], []));
    this.note(n, 12, "ratio attribute → input");
  }

  softmax13(n: Node): void {
    const x = n.inputs[0], y = n.outputs[0];
    if (!x || !y) return;
    const r = rankOf(x, this.memo);
    const raw = typeof n.attrs.axis === "number" ? n.attrs.axis : 1;
    const axis = r !== undefined && raw < 0 ? raw + r : raw;
    if (r !== undefined && axis === r - 1) {
      n.attrs.axis = -1;
      this.note(n, 13, "axis is the last: kept as axis=-1");
      return;
    }
    if (r !== undefined && (axis < 0 || axis >= r)) {
      throw new ModelError(`${this.where(n)}: axis ${raw} is out of range for rank ${r}`);
    }
    const e = this.edit;
    const shape = e.result(`${x.name}_shape`);
    shape.type = "int64";
    shape.shape = r !== undefined ? [r] : undefined;
    e.node("Shape", [x], [shape], {}, `${n.name}_shape`);
    const flat = e.result(`${x.name}_2d`, x);
    e.node("Flatten", [x], [flat], { axis: raw }, `${n.name}_flatten`);
    e.setInput(n, 0, flat);
    const out2d = e.detachOutput(n, 0, `${y.name}_2d`);
    n.attrs.axis = -1;
    e.node("Reshape", [out2d, shape], [y], {}, `${n.name}_reshape`);
    this.note(
      n,
      13,
      "2-D coercion at a non-last axis kept as Flatten → op(axis=-1) → Reshape(Shape(x))",
    );
  }

  splitNumOutputs(n: Node): void {
    if (n.inputs[1] || n.attrs.num_outputs !== undefined) return;
    n.attrs.num_outputs = n.outputs.length;
    this.note(n, 18, "equal split: num_outputs set (required from opset 18)");
  }

  gridSampleModes(n: Node): void {
    const m = n.attrs.mode;
    const to = m === "bilinear" ? "linear" : m === "bicubic" ? "cubic" : undefined;
    if (!to) return;
    n.attrs.mode = to;
    this.note(n, 20, `mode ${m} → ${to}`);
  }

  batchNormSpatial(n: Node): void {
    const spatial = n.attrs.spatial;
    delete n.attrs.spatial;
    if (spatial === undefined || spatial !== 0) {
      if (spatial !== undefined) this.note(n, 9, "spatial=1 dropped (the only mode from opset 9)");
      return;
    }
    const [x, scale, bias, mean, variance] = n.inputs;
    const params = [scale, bias, mean, variance];
    const c = x?.shape?.[1];
    const counts = params.map((p) => (p?.constant ? p.constant.data.length : undefined));
    if (typeof c === "number" && counts.every((k) => k === c)) {
      // Per-channel parameters: at inference spatial=0 and 1 agree.
      this.note(n, 9, "spatial=0 with per-channel parameters: same as BatchNormalization-9");
      return;
    }
    if (!params.every((p) => p?.constant) || n.outputs.length > 1) {
      throw new ModelError(
        `${this.where(n)}: spatial=0 (statistics per activation) needs constant scale, B, ` +
          `mean and var to become Mul + Add at opset 9, where spatial no longer exists`,
      );
    }
    // Per activation: y = x·a + b with a = scale/√(var+ε), b = B − mean·a, of dims C×D1×…,
    // which numpy broadcasting aligns with x's trailing dims.
    const eps = typeof n.attrs.epsilon === "number" ? n.attrs.epsilon : 1e-5;
    const num = (v: Value) => Array.from(v.constant!.data as ArrayLike<number>, Number);
    const [s, b, m, vr] = params.map((p) => num(p!));
    const k = s.length;
    if ([b, m, vr].some((arr) => arr.length !== k)) {
      throw new ModelError(`${this.where(n)}: scale, B, mean and var differ in size`);
    }
    let dims = [...scale!.constant!.dims];
    const xs = x?.shape;
    if (dims.length !== (xs?.length ?? 0) - 1) {
      const rest = xs?.slice(1);
      if (
        !rest || !rest.every((d) => typeof d === "number") || elementCount(rest as number[]) !== k
      ) {
        throw new ModelError(
          `${this.where(n)}: per-activation parameters of ${k} values do not match X [${xs}]`,
        );
      }
      dims = rest as number[];
    }
    const a = s.map((sv, i) => sv / Math.sqrt(vr[i] + eps));
    const off = b.map((bv, i) => bv - m[i] * a[i]);
    const type = floatTypeOf(x);
    const e = this.edit;
    const y = n.outputs[0];
    e.remove(n);
    const scaled = e.result(`${y.name}_scaled`, x);
    e.node("Mul", [x, e.floats(`${n.name}_a`, type, a, dims)], [scaled], {}, `${n.name}_mul`);
    e.node("Add", [scaled, e.floats(`${n.name}_b`, type, off, dims)], [y], {}, `${n.name}_add`);
    this.note(n, 9, "spatial=0 (per-activation statistics) → Mul + Add with folded constants");
  }

  groupNormPerChannel(n: Node): void {
    const [x, scale, bias] = n.inputs;
    const groups = typeof n.attrs.num_groups === "number" ? n.attrs.num_groups : undefined;
    const c = x?.shape?.[1];
    const len = scale?.constant?.data.length ??
      (scale?.shape?.length === 1 ? scale.shape[0] : undefined);
    if (groups === undefined || len === undefined || typeof c !== "number") {
      throw new ModelError(
        `${this.where(n)}: scale/bias change from per group (opset 18) to per channel (21); ` +
          `that needs num_groups, the channel count and the parameter sizes`,
      );
    }
    if (len === c) return;
    if (len !== groups || !scale?.constant || !bias?.constant) {
      throw new ModelError(
        `${this.where(n)}: scale/bias of ${len} values must be ${groups} constants per group to ` +
          `become per channel`,
      );
    }
    const per = c / groups;
    for (const [i, p] of [[1, scale], [2, bias]] as const) {
      const vals = Array.from(p.constant!.data as ArrayLike<number>, Number);
      const wide = Array.from({ length: c }, (_, ch) => vals[Math.floor(ch / per)]);
      this.edit.setInput(
        n,
        i,
        this.edit.floats(`${p.name}_per_channel`, p.constant!.type, wide, [c]),
      );
    }
    this.note(n, 21, "scale/bias per group → per channel (each group's value repeated)");
  }
}

const DATA_TYPE: Partial<Record<TensorType, number>> = {
  float32: DataType.FLOAT,
  float64: DataType.DOUBLE,
  float16: DataType.FLOAT16,
  int8: DataType.INT8,
  uint8: DataType.UINT8,
  int16: DataType.INT16,
  uint16: DataType.UINT16,
  int32: DataType.INT32,
  uint32: DataType.UINT32,
  int64: DataType.INT64,
  uint64: DataType.UINT64,
  bool: DataType.BOOL,
};

function constantOf(type: TensorType, value: number): Tensor {
  switch (type) {
    case "int64":
      return { type, dims: [], data: BigInt64Array.of(BigInt(Math.trunc(value))) };
    case "uint64":
      return { type, dims: [], data: BigUint64Array.of(BigInt(Math.trunc(value))) };
    case "int32":
      return { type, dims: [], data: Int32Array.of(value) };
    case "uint32":
      return { type, dims: [], data: Uint32Array.of(value) };
    case "int16":
      return { type, dims: [], data: Int16Array.of(value) };
    case "uint16":
      return { type, dims: [], data: Uint16Array.of(value) };
    case "int8":
      return { type, dims: [], data: Int8Array.of(value) };
    case "uint8":
    case "bool":
      return { type, dims: [], data: Uint8Array.of(value) };
    default:
      throw new ModelError(`a constant of type ${type} is not possible here`);
  }
}
