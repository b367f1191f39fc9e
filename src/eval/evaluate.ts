// evaluate(): what a (compressed) classifier keeps, measured on labelled data and against its
// float reference — accuracy and macro P/R/F1, agreement and KL with the reference, per-layer
// SQNR and time, size (raw, gzip, brotli), parameters, MACs by precision, latency and memory.
//
//   const report = await evaluate("model.int8.onnx", { inputs: { x }, labels },
//     { reference: "model.onnx", kfold: 5 });
//   await Deno.writeTextFile("report.json", JSON.stringify(report, null, 2));
//
// The report is plain JSON (no Infinity, no typed arrays): non-finite numbers are written as
// the strings "inf" / "-inf" and NaN as null (see JsonNumber).
import { brotliCompressSync, constants as zlib, gzipSync } from "node:zlib";
import { ArgumentError, ModelError, ShapeError } from "../errors.ts";
import { importModel, type KernelBuild, type MemoryReport, Session, type Tensor } from "../mod.ts";
import { inspectGraph } from "../inspect.ts";
import { decodeModel } from "../onnx/proto.ts";
import type { Graph, Node, Value } from "../graph/ir.ts";
import type { TensorData } from "../graph/tensor.ts";
import { DEQUANTIZED_SUFFIX, type LayerReport, SQZ_DOMAIN } from "../compress/types.ts";
import {
  accuracy,
  argmaxRows,
  classification,
  type ClassMetrics,
  confusionMatrix,
  kFoldSplits,
  meanKlDivergence,
  meanStd,
  percentiles,
  sqnrFromSums,
  sqnrSums,
  top1Agreement,
} from "./metrics.ts";

/** Labelled samples: every input is a batch of N samples along dim 0. */
export interface Dataset {
  inputs: Record<string, Tensor>;
  /** Class index of each sample (N of them); accuracy and P/R/F1 need them. */
  labels?: Uint8Array | Int32Array;
  /** Samples per run (default 64); a model whose batch dim is fixed uses its own. */
  batchSize?: number;
  /** Display names of the classes, by index (for the confusion matrix). */
  classNames?: string[];
}

export interface EvaluateOptions {
  /** The float model the evaluated one was made from: bytes or a path. */
  reference?: Uint8Array | string;
  /** Kernel build for both models ("auto" by default). */
  build?: KernelBuild | "auto";
  /** Folds for a k-fold estimate of the accuracy's spread (≥ 2; needs labels). */
  kfold?: number;
  /** Seed of the fold shuffle (default 0). */
  kfoldSeed?: number;
  /** Timed single-sample runs for the latency percentiles (default 30; 0 skips timing). */
  latencyRuns?: number;
  /** Per-layer SQNR against the reference (default true when a reference is given). */
  layers?: boolean;
  /** The output holding the class scores (default: the model's first output). */
  output?: string;
}

/** A number as JSON can hold it: ±∞ as "inf" / "-inf", NaN as null. */
export type JsonNumber = number | "inf" | "-inf" | null;

/** Precision of a layer's multiply-accumulates (what its kernel multiplies). */
export type Precision = "float32" | "int8" | "int4" | "binary" | "ternary";
export const PRECISIONS: readonly Precision[] = ["float32", "int8", "int4", "binary", "ternary"];

/** Size and cost of one model file. */
export interface ModelStats {
  /** The .onnx file's bytes (external data files not included). */
  bytes: number;
  /** gzip -9 of the file. */
  gzipBytes: number;
  /** Brotli of the file (quality 11; 9 above 32 MiB, where 11 takes minutes). */
  brotliBytes: number;
  /**
   * Weight parameters of the Conv / Gemm / MatMul layers (biases not counted), as the float
   * layers they stand for hold them: for sqz's packed layers, read from the model's
   * `sqz.report` metadata when present.
   */
  params: number;
  /** Of those, the ones that are not zero (quantized: whose value is not the zero point). */
  nonzeros: number;
  /** Multiply-accumulates per sample (batch 1) by the precision they run at. */
  macs: Record<Precision, number>;
}

export interface LatencyStats {
  /** Median and 99th percentile of single-sample run wall times, in milliseconds. */
  p50Ms: number | null;
  p99Ms: number | null;
  /** Timed runs (after warm-up). 0: not measured. */
  runs: number;
  /** Samples per timed run: 1, or the model's fixed batch size. */
  batch: number;
}

export interface MemoryStats {
  /** Activation arena of the single-sample runs, bytes. */
  arenaBytes: number;
  /** Packed weights and constants in Wasm memory, bytes. */
  weightBytes: number;
  /** arenaBytes + weightBytes: the Wasm memory the model needs (JS-side buffers excluded). */
  totalBytes: number;
}

/** One Conv / Gemm / MatMul (or sqz packed layer). */
export interface LayerEval {
  /** Node name in the reference (or in the model when there is no reference). */
  name: string;
  /** Op of the layer in the evaluated model ("Gemm", "QLinearConv", "ai.sqz.QGemm"…). */
  op: string;
  /** The value compared with the reference's layer output (`v` or `v::dq`). */
  output?: string;
  /** Precision of the layer's MACs (what its kernel multiplies). */
  precision?: Precision;
  /**
   * How the weights are stored: a tensor type ("float32", "int8"…) or a packed sqz format
   * ("int4", "ternary", "binary", "sparse"…). int4 / ternary / sparse weights are decoded to
   * float when the model loads, so their layers' MACs are float32.
   */
  weights?: string;
  /** SQNR of `output` against the reference's, dB, over the whole dataset. Absent: not compared. */
  sqnrDb?: JsonNumber;
  /**
   * Median time per single-sample run, ms: the layer's node(s) as the engine runs them (with
   * what got fused into them, and nodes a pass derived as `name::…`), not separate
   * quantize / dequantize glue.
   */
  ms?: number;
  /** MACs per sample. */
  macs?: number;
  params?: number;
  nonzeros?: number;
}

export interface EvalReport {
  format: "sqz.eval/1";
  /** Samples evaluated. */
  samples: number;
  /** Scores per sample in the output used. */
  classes: number;
  /** The output whose argmax is the prediction. */
  output: string;
  /** With labels: share of samples predicted right, in [0, 1]. */
  accuracy?: number;
  /** With labels: macro means over the classes present (see metrics.classification). */
  macro?: { precision: number; recall: number; f1: number };
  perClass?: ClassMetrics[];
  /** With labels: `matrix[true][predicted]`; `labels` name the rows and columns. */
  confusion?: { labels: string[]; matrix: number[][] };
  /** With a reference: share of samples whose top-1 class matches the reference's. */
  agreement?: number;
  /** With a reference: mean KL(p_ref ‖ p_model) of the output distributions, nats. */
  klMean?: JsonNumber;
  model: ModelStats;
  reference?: {
    model: ModelStats;
    accuracy?: number;
    latency: LatencyStats;
    /** reference bytes / model bytes. */
    compressionRatio: number;
    /** reference gzip bytes / model gzip bytes. */
    gzipRatio: number;
  };
  latency: LatencyStats;
  memory: MemoryStats;
  layers: LayerEval[];
  /** k-fold estimate: accuracy on k disjoint stratified folds, mean ± sample std. */
  kfold?: {
    k: number;
    seed: number;
    foldSizes: number[];
    accuracies: number[];
    mean: number;
    std: number;
  };
  notes: string[];
}

/** ±∞ and NaN as JSON holds them. */
export function jsonNumber(x: number): JsonNumber {
  if (Number.isNaN(x)) return null;
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  return x;
}

/** The inverse of {@link jsonNumber}. */
export function fromJsonNumber(x: JsonNumber | undefined): number | undefined {
  if (x === undefined) return undefined;
  if (x === null) return NaN;
  if (x === "inf") return Infinity;
  if (x === "-inf") return -Infinity;
  return x;
}

// ---------------------------------------------------------------------------------------------
// Loading and static analysis

interface Source {
  what: string;
  bytes: Uint8Array;
  /** What Session.create gets: the path when there is one (external data is found beside it). */
  session: Uint8Array | string;
  baseDir?: string;
}

async function load(model: Uint8Array | string, what: string): Promise<Source> {
  if (model instanceof Uint8Array) {
    if (model.length === 0) throw new ModelError(`the ${what} is empty`);
    return { what, bytes: model, session: model };
  }
  if (typeof model !== "string") throw new ArgumentError(`the ${what} must be bytes or a path`);
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(model);
  } catch (e) {
    throw new ModelError(`cannot read the ${what} '${model}': ${(e as Error).message}`);
  }
  const slash = model.lastIndexOf("/");
  return { what, bytes, session: model, baseDir: slash >= 0 ? model.slice(0, slash) || "/" : "." };
}

/** Ops whose MACs are a layer's: float, QDQ-fused and integer forms. */
const LAYER_OPS = new Set([
  "Conv",
  "Gemm",
  "MatMul",
  "QLinearConv",
  "QLinearMatMul",
  "ConvInteger",
  "MatMulInteger",
]);
const INTEGER_OPS = new Set(["QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger"]);
/** Input slot of the weight, and of its zero point, by op. */
const WEIGHT_SLOT: Record<string, [number, number]> = {
  Conv: [1, -1],
  Gemm: [1, -1],
  MatMul: [1, -1],
  ConvInteger: [1, 3],
  MatMulInteger: [1, 3],
  QLinearConv: [3, 5],
  QLinearMatMul: [3, 5],
  QGemm: [3, 5],
};
/** Ops a weight passes through unchanged in value (for tracing it to its initializer). */
const PASS_THROUGH = new Set(["Transpose", "Reshape", "Identity", "Cast", "Flatten", "Squeeze"]);

/** Precision of an ai.sqz op, from its name; undefined: it computes in float. */
function sqzPrecision(op: string): Precision | undefined {
  if (/bin|xnor/i.test(op)) return "binary";
  if (/tern/i.test(op)) return "ternary";
  if (/int4|q4|4bit|nibble/i.test(op)) return "int4";
  if (/^q|int8|q8/i.test(op)) return "int8";
  return undefined;
}

const is4bit = (t: string | undefined) => t === "int4" || t === "uint4";

/** Storage format of the weights an ai.sqz op holds or decodes, from its name. */
function sqzWeights(op: string): string {
  const p = sqzPrecision(op);
  if (p) return p;
  if (/sparse/i.test(op)) return "sparse";
  if (/cluster|palett|lut/i.test(op)) return "clustered";
  return op;
}

interface LayerStats {
  /** Node name. */
  name: string;
  op: string;
  /** The node's first output. */
  output: string;
  precision: Precision;
  weights?: string;
  params: number;
  nonzeros: number;
  macs?: number;
}

interface Analysis {
  stats: Omit<ModelStats, "macs">;
  layers: LayerStats[];
  /** Values some node produces (before folding), for pairing layer outputs. */
  produced: Set<string>;
  notes: string[];
}

/**
 * Non-zero weights: elements whose value is not the zero point (`zp` scalar, per-axis along
 * `axis`, or blocked with `blockSize` along it); float16 counts ±0 as zero.
 */
function countNonzeros(w: Tensor, zp?: Tensor, axis = 0, blockSize = 0): number {
  const data = w.data as ArrayLike<number | bigint>;
  const n = data.length;
  let count = 0;
  if (w.type === "float16") {
    for (let i = 0; i < n; i++) if (((data[i] as number) & 0x7fff) !== 0) count++;
    return count;
  }
  const z = zp ? Array.from(zp.data as ArrayLike<number | bigint>, Number) : [0];
  if (z.length <= 1) {
    const z0 = z[0] ?? 0;
    for (let i = 0; i < n; i++) if (Number(data[i]) !== z0) count++;
    return count;
  }
  const dims = w.dims, ax = axis < 0 ? axis + dims.length : axis;
  const len = dims[ax] ?? 1;
  let inner = 1;
  for (let j = ax + 1; j < dims.length; j++) inner *= dims[j];
  const blocked = zp!.dims.length === dims.length && blockSize > 0;
  const zlen = blocked ? Math.ceil(len / blockSize) : len;
  if (!blocked && z.length !== len) {
    for (let i = 0; i < n; i++) if (Number(data[i]) !== 0) count++;
    return count;
  }
  for (let i = 0; i < n; i++) {
    const a = Math.floor(i / inner) % len;
    const zi = blocked
      ? (Math.floor(i / (inner * len)) * zlen + Math.floor(a / blockSize)) * inner + (i % inner)
      : a;
    if (Number(data[i]) !== z[zi]) count++;
  }
  return count;
}

interface WeightTrace {
  constant?: Tensor;
  /** The DequantizeLinear the weight went through, if any. */
  dq?: Node;
  /** An ai.sqz node that decodes the weight, if any. */
  decoder?: Node;
}

function traceWeight(v: Value | undefined): WeightTrace {
  const trace: WeightTrace = {};
  for (let step = 0; v && step < 16; step++) {
    if (v.constant) return { ...trace, constant: v.constant };
    const p: Node | undefined = v.producer;
    if (!p) return trace;
    if (p.domain === SQZ_DOMAIN) return { ...trace, decoder: p };
    if (p.op === "DequantizeLinear") trace.dq = p;
    else if (!PASS_THROUGH.has(p.op)) return trace;
    v = p.inputs[0];
  }
  return trace;
}

/** The `sqz.report` metadata of a compressed model, if it has one. */
function sqzReport(bytes: Uint8Array, notes: string[], what: string): LayerReport[] | undefined {
  const entry = decodeModel(bytes).metadataProps.find((p) => p.key === "sqz.report");
  if (!entry?.value) return undefined;
  try {
    const parsed = JSON.parse(entry.value);
    if (Array.isArray(parsed?.layers)) {
      // The compressor's own remarks ("x stays float: …") belong in the evaluation too.
      if (Array.isArray(parsed.notes)) {
        for (const note of parsed.notes) notes.push(`${what} (compression): ${String(note)}`);
      }
      return parsed.layers as LayerReport[];
    }
  } catch {
    // Reported below: a broken report must not stop the evaluation.
  }
  notes.push(`the ${what}'s sqz.report metadata is not JSON with a layers array: ignored`);
  return undefined;
}

function brotliBytes(bytes: Uint8Array): { size: number; quality: number } {
  const quality = bytes.length > 32 * 1024 * 1024 ? 9 : 11;
  const out = brotliCompressSync(bytes, {
    params: {
      [zlib.BROTLI_PARAM_QUALITY]: quality,
      [zlib.BROTLI_PARAM_SIZE_HINT]: bytes.length,
    },
  });
  return { size: out.length, quality };
}

function analyze(src: Source): Analysis {
  const notes: string[] = [];
  const g: Graph = importModel(src.bytes, { baseDir: src.baseDir });
  const report = sqzReport(src.bytes, notes, src.what);
  // A node derived from a layer (`fc1::int`) speaks for it only when the layer's own node is
  // gone; when both exist (low-rank: `fc1::lowrank` + `fc1`), the layer's node alone does, so
  // its parameters are not counted twice.
  const nodeNames = new Set(g.nodes.map((n) => n.name));
  const reportFor = (name: string) =>
    report?.find((l) =>
      l.name === name || (name.startsWith(`${l.name}::`) && !nodeNames.has(l.name))
    );
  const produced = new Set<string>();
  for (const n of g.nodes) for (const v of n.outputs) produced.add(v.name);

  const layers: LayerStats[] = [];
  const weightOnly: string[] = [];
  const fallback: string[] = [];
  for (const n of g.nodes) {
    const sqz = n.domain === SQZ_DOMAIN;
    const std = !n.domain || n.domain === "ai.onnx";
    if (!(sqz || (std && LAYER_OPS.has(n.op)))) continue;
    const [wi, zi] = WEIGHT_SLOT[n.op] ?? [-1, -1];
    const trace = wi >= 0 ? traceWeight(n.inputs[wi]) : {};
    const rep = reportFor(n.name);
    // A decoder only feeding another layer's weight is counted with that layer.
    if (
      sqz && wi < 0 && n.outputs.every((o) =>
        o.consumers.some((c) =>
          traceWeight(
            c.inputs[WEIGHT_SLOT[c.op]?.[0] ?? -1],
          ).decoder === n
        )
      )
    ) continue;

    let precision: Precision = "float32";
    const wType = trace.dq?.inputs[0]?.type ?? trace.constant?.type;
    if (sqz) precision = sqzPrecision(n.op) ?? "float32";
    else if (INTEGER_OPS.has(n.op)) precision = "int8";
    else if (trace.dq) {
      // A QDQ layer runs on integer kernels when its activation is quantized too; with only
      // the weight quantized, the weight is dequantized at load time and the MACs are float.
      if (n.inputs[0]?.producer?.op === "DequantizeLinear") precision = "int8";
      else weightOnly.push(n.name);
    } else if (trace.decoder) weightOnly.push(n.name);
    if (precision === "int8" && is4bit(wType)) precision = "int4";

    let params = 0, nonzeros = 0;
    if (rep && (sqz || trace.decoder)) {
      params = rep.params;
      nonzeros = rep.nonzeros;
    } else if (trace.constant) {
      params = trace.constant.data.length;
      const zpNode = trace.dq ?? (zi >= 0 ? n : undefined);
      const zp = trace.dq
        ? trace.dq.inputs[2]?.constant
        : zi >= 0
        ? n.inputs[zi]?.constant
        : undefined;
      let axis = 0;
      if (trace.dq) axis = typeof trace.dq.attrs.axis === "number" ? trace.dq.attrs.axis : 1;
      else if (n.op === "QLinearMatMul" || n.op === "MatMulInteger") axis = -1;
      else if (n.op === "QGemm") axis = n.attrs.transB === 1 ? 0 : 1;
      const block = typeof zpNode?.attrs.block_size === "number" ? zpNode.attrs.block_size : 0;
      nonzeros = countNonzeros(trace.constant, zp, axis, block);
    } else if (sqz || trace.decoder) {
      // No report: count the stored elements of the packed layer's initializers.
      for (const v of (trace.decoder ?? n).inputs) {
        if (!v?.constant || v.constant.dims.length < 2) continue;
        params += v.constant.data.length;
        nonzeros += countNonzeros(v.constant);
      }
      fallback.push(n.name);
    }
    const weights = sqz ? sqzWeights(n.op) : trace.decoder ? sqzWeights(trace.decoder.op) : wType;
    layers.push({
      name: n.name,
      op: n.qualifiedOp,
      output: n.outputs[0]?.name ?? "",
      precision,
      ...(weights ? { weights } : {}),
      params,
      nonzeros,
      macs: rep?.macsAfter,
    });
  }
  if (weightOnly.length) {
    notes.push(
      `${src.what}: ${weightOnly.length} layer(s) store packed or quantized weights but run ` +
        `float32 MACs (${weightOnly.slice(0, 5).join(", ")}${weightOnly.length > 5 ? "…" : ""}): ` +
        `the engine decodes those weights to float when the model loads`,
    );
  }
  if (fallback.length) {
    notes.push(
      `${src.what}: no sqz.report for ${fallback.slice(0, 5).join(", ")}` +
        `${fallback.length > 5 ? "…" : ""}: their parameters are the stored initializer ` +
        `elements (packed values count once per storage element)`,
    );
  }

  // MACs from shapes (after the analysis above: inspection folds constants in place).
  try {
    const info = inspectGraph(g, g.opsets.get("") ?? g.opsets.get("ai.onnx") ?? 0);
    const byName = new Map(info.layers.map((l) => [l.name, l.macs]));
    for (const l of layers) {
      if (l.macs !== undefined) continue;
      const m = byName.get(l.name);
      if (m) l.macs = m;
      else if (/gemm|matmul/i.test(l.op)) {
        // ai.sqz GEMMs: output elements × K, K the last dim of the activation.
        const n = g.nodes.find((x) => x.name === l.name);
        const a = n?.inputs[0]?.shape, y = n?.outputs[0]?.shape;
        const k = a?.[a.length - 1];
        if (typeof k === "number" && y?.every((d) => typeof d === "number" || d === "?")) {
          l.macs = y.reduce((p: number, d) => p * (typeof d === "number" ? d : 1), 1) * k;
        }
      }
    }
  } catch (e) {
    notes.push(`${src.what}: MACs from shapes unavailable (${(e as Error).message})`);
  }

  const gz = gzipSync(src.bytes, { level: 9 }).length;
  const br = brotliBytes(src.bytes);
  return {
    stats: {
      bytes: src.bytes.length,
      gzipBytes: gz,
      brotliBytes: br.size,
      params: layers.reduce((a, l) => a + l.params, 0),
      nonzeros: layers.reduce((a, l) => a + l.nonzeros, 0),
    },
    layers,
    produced,
    notes,
  };
}

function macsByPrecision(layers: readonly LayerStats[]): Record<Precision, number> {
  const out = Object.fromEntries(PRECISIONS.map((p) => [p, 0])) as Record<Precision, number>;
  for (const l of layers) out[l.precision] += l.macs ?? 0;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Running

type Arr = TensorData & {
  subarray(begin: number, end: number): Arr;
  set(src: ArrayLike<unknown>, offset?: number): void;
};

function checkDataset(dataset: Dataset): number {
  if (typeof dataset !== "object" || dataset === null || typeof dataset.inputs !== "object") {
    throw new ArgumentError("the dataset must be { inputs: { name: tensor }, labels? }");
  }
  const entries = Object.entries(dataset.inputs ?? {});
  if (!entries.length) throw new ArgumentError("the dataset has no inputs");
  let n = -1;
  for (const [name, t] of entries) {
    if (!t || !Array.isArray(t.dims) || !t.data || !t.dims.length) {
      throw new ArgumentError(`dataset input '${name}' must be a tensor with a batch dim`);
    }
    const count = t.dims.reduce((a, b) => a * b, 1);
    if (t.data.length !== count) {
      throw new ShapeError(
        `dataset input '${name}' has ${t.data.length} elements but dims [${t.dims}]`,
      );
    }
    if (n >= 0 && t.dims[0] !== n) {
      throw new ShapeError(
        `dataset inputs disagree on the number of samples (${n} vs ${t.dims[0]} in '${name}')`,
      );
    }
    n = t.dims[0];
  }
  if (n < 1) throw new ArgumentError("the dataset has no samples");
  const labels = dataset.labels;
  if (labels !== undefined) {
    if (!(labels instanceof Uint8Array || labels instanceof Int32Array)) {
      throw new ArgumentError("dataset labels must be a Uint8Array or an Int32Array");
    }
    if (labels.length !== n) throw new ShapeError(`${labels.length} labels for ${n} samples`);
  }
  const bs = dataset.batchSize;
  if (bs !== undefined && (!Number.isSafeInteger(bs) || bs < 1)) {
    throw new ArgumentError(`batchSize must be a positive integer, got ${bs}`);
  }
  return n;
}

/** A session and how to feed it slices of the dataset. */
class Runner {
  /** Samples per run when the model fixes its batch dim. */
  readonly fixedBatch?: number;

  constructor(
    readonly session: Session,
    readonly inputs: Record<string, Tensor>,
    readonly n: number,
  ) {
    const names = Object.keys(inputs);
    const missing = session.inputNames.filter((m) => !names.includes(m));
    const extra = names.filter((m) => !session.inputNames.includes(m));
    if (missing.length || extra.length) {
      throw new ArgumentError(
        `the dataset's inputs (${names.join(", ")}) are not the model's ` +
          `(${session.inputNames.join(", ")})`,
      );
    }
    for (const m of session.inputMetadata) {
      const d = m.dims[0];
      if (typeof d !== "number" || d <= 0) continue;
      if (this.fixedBatch !== undefined && this.fixedBatch !== d) {
        throw new ModelError(
          `the model's inputs fix different batch sizes (${this.fixedBatch}, ${d})`,
        );
      }
      this.fixedBatch = d;
    }
  }

  /** Feeds for samples [start, start + count), padded with the last one to a fixed batch. */
  feeds(start: number, count: number): Record<string, Tensor> {
    const size = this.fixedBatch ?? count;
    if (count > size) throw new ArgumentError(`internal: ${count} samples for a batch of ${size}`);
    const out: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(this.inputs)) {
      const per = t.data.length / this.n;
      const data = t.data as Arr;
      let slice = data.subarray(start * per, (start + count) * per);
      if (size > count) {
        const padded = new (data.constructor as new (n: number) => Arr)(size * per);
        padded.set(slice);
        const last = data.subarray((start + count - 1) * per, (start + count) * per);
        for (let k = count; k < size; k++) padded.set(last, k * per);
        slice = padded;
      }
      out[name] = { type: t.type, dims: [size, ...t.dims.slice(1)], data: slice };
    }
    return out;
  }

  /** Runs samples [start, start + count); each output's rows for just those samples. */
  async run(start: number, count: number, outputs: string[]): Promise<Map<string, Arr>> {
    const feeds = this.feeds(start, count);
    const fed = feeds[Object.keys(feeds)[0]].dims[0];
    const res = await this.session.run(feeds, { outputs });
    const out = new Map<string, Arr>();
    for (const name of outputs) {
      const t = res[name];
      if (t.dims[0] !== fed) {
        throw new ShapeError(
          `output '${name}' has dims [${t.dims}]: its first dim is not the batch (${fed})`,
        );
      }
      const per = t.data.length / fed;
      out.set(name, (t.data as Arr).subarray(0, count * per));
    }
    return out;
  }

  /** Samples per step for this runner and, optionally, another that must stay aligned. */
  step(requested: number, other?: Runner): number {
    const sizes = [this.fixedBatch ?? requested, other ? other.fixedBatch ?? requested : requested];
    return Math.max(1, Math.min(...sizes));
  }
}

interface RunResult {
  scores: Float32Array;
  classes: number;
  output: string;
  latency: LatencyStats;
  memory: MemoryReport;
  fixedBatch?: number;
}

const WARMUP_RUNS = 3;

async function predict(
  src: Source,
  dataset: Dataset,
  n: number,
  options: EvaluateOptions,
  wantOutput?: string,
  /** Use the first output when the model has no `wantOutput` (the reference may name it apart). */
  fallback = false,
): Promise<RunResult> {
  const session = await Session.create(src.session, { build: options.build });
  try {
    const runner = new Runner(session, dataset.inputs, n);
    const output = wantOutput === undefined ||
        (fallback && !session.outputNames.includes(wantOutput))
      ? session.outputNames[0]
      : wantOutput;
    if (!session.outputNames.includes(output)) {
      throw new ArgumentError(
        `the ${src.what} has no output '${output}' (outputs: ${session.outputNames.join(", ")})`,
      );
    }
    const step = runner.step(dataset.batchSize ?? 64);
    let scores: Float32Array | undefined, classes = 0;
    for (let start = 0; start < n; start += step) {
      const count = Math.min(step, n - start);
      const y = (await runner.run(start, count, [output])).get(output)!;
      if (!scores) {
        classes = y.length / count;
        if (!Number.isSafeInteger(classes) || classes < 1) {
          throw new ShapeError(`the ${src.what}'s output '${output}' holds no scores`);
        }
        scores = new Float32Array(n * classes);
      } else if (y.length !== count * classes) {
        throw new ShapeError(`the ${src.what}'s output '${output}' changed size between batches`);
      }
      const dst = scores.subarray(start * classes, (start + count) * classes);
      if (y instanceof BigInt64Array || y instanceof BigUint64Array) {
        for (let i = 0; i < dst.length; i++) dst[i] = Number(y[i]);
      } else dst.set(y as ArrayLike<number>);
    }

    // Latency: the first sample alone (or padded to the fixed batch), after warm-up.
    const runs = options.latencyRuns ?? 30;
    const feeds = runner.feeds(0, 1);
    const times: number[] = [];
    for (let i = 0; i < (runs > 0 ? WARMUP_RUNS : 1) + runs; i++) {
      const t0 = performance.now();
      await session.run(feeds, { outputs: [output] });
      if (i >= WARMUP_RUNS) times.push(performance.now() - t0);
    }
    const [p50, p99] = times.length ? percentiles(times, [50, 99]) : [null, null];
    return {
      scores: scores!,
      classes,
      output,
      latency: { p50Ms: p50, p99Ms: p99, runs: times.length, batch: runner.fixedBatch ?? 1 },
      memory: session.memory,
      fixedBatch: runner.fixedBatch,
    };
  } finally {
    await session.release();
  }
}

interface LayerPair {
  name: string;
  refValue: string;
  value: string;
}

/** Σ ref² and Σ (ref − x)² per layer over the whole dataset, both models fed the same samples. */
async function layerSqnr(
  ref: Source,
  model: Source,
  pairs: readonly LayerPair[],
  dataset: Dataset,
  n: number,
  options: EvaluateOptions,
  notes: string[],
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (!pairs.length) return out;
  const refSession = await Session.create(ref.session, {
    build: options.build,
    extraOutputs: pairs.map((p) => p.refValue),
  });
  let session: Session | undefined;
  try {
    session = await Session.create(model.session, {
      build: options.build,
      extraOutputs: [...new Set(pairs.map((p) => p.value))],
    });
    const rr = new Runner(refSession, dataset.inputs, n),
      mr = new Runner(session, dataset.inputs, n);
    const step = rr.step(dataset.batchSize ?? 64, mr);
    const sums = pairs.map(() => ({ signal: 0, noise: 0, ok: true }));
    for (let start = 0; start < n; start += step) {
      const count = Math.min(step, n - start);
      const a = await rr.run(start, count, pairs.map((p) => p.refValue));
      const b = await mr.run(start, count, [...new Set(pairs.map((p) => p.value))]);
      pairs.forEach((p, i) => {
        const s = sums[i];
        if (!s.ok) return;
        const x = a.get(p.refValue)!, y = b.get(p.value)!;
        if (x.length !== y.length || x instanceof BigInt64Array || y instanceof BigInt64Array) {
          s.ok = false;
          notes.push(
            `layer ${p.name}: '${p.value}' has ${y.length / count} values per sample, the ` +
              `reference's '${p.refValue}' ${x.length / count}: not compared`,
          );
          return;
        }
        const d = sqnrSums(x as ArrayLike<number>, y as ArrayLike<number>);
        s.signal += d.signal;
        s.noise += d.noise;
      });
    }
    pairs.forEach((p, i) => {
      if (sums[i].ok) out.set(p.name, sqnrFromSums(sums[i].signal, sums[i].noise));
    });
  } finally {
    await refSession.release();
    await session?.release();
  }
  return out;
}

interface ProfileStats {
  /** Median ms per profiled node name. */
  ms: Map<string, number>;
  macs: Map<string, number>;
}

async function profileLayers(
  model: Source,
  dataset: Dataset,
  n: number,
  options: EvaluateOptions,
  output: string,
): Promise<ProfileStats> {
  const session = await Session.create(model.session, { build: options.build, profile: true });
  try {
    const runner = new Runner(session, dataset.inputs, n);
    const feeds = runner.feeds(0, 1);
    // Profiled MACs are for the whole run: per sample when the batch is fixed above 1.
    const batch = runner.fixedBatch ?? 1;
    const runs = Math.max(1, Math.min(options.latencyRuns ?? 30, 10));
    const times = new Map<string, number[]>(), macs = new Map<string, number>();
    await session.run(feeds, { outputs: [output] }); // warm-up
    for (let i = 0; i < runs; i++) {
      await session.run(feeds, { outputs: [output] });
      const seen = new Map<string, number>();
      for (const p of session.profile) seen.set(p.name, (seen.get(p.name) ?? 0) + p.ms);
      for (const [name, ms] of seen) {
        let list = times.get(name);
        if (!list) times.set(name, list = []);
        list.push(ms);
      }
      for (const p of session.profile) {
        if (p.macs !== undefined) macs.set(p.name, p.macs / batch);
      }
    }
    const ms = new Map([...times].map(([k, v]) => [k, percentiles(v, [50])[0]]));
    return { ms, macs };
  } finally {
    await session.release();
  }
}

/** Profile entries belonging to a layer: its nodes, or nodes a pass derived from them (`n::…`). */
function matchProfile(names: readonly string[], prof: ProfileStats, taken: Set<string>) {
  let ms: number | undefined, macs: number | undefined;
  for (const [p, t] of prof.ms) {
    if (taken.has(p) || !names.some((n) => p === n || p.startsWith(`${n}::`))) continue;
    taken.add(p);
    ms = (ms ?? 0) + t;
    const m = prof.macs.get(p);
    if (m !== undefined) macs = (macs ?? 0) + m;
  }
  return { ms, macs };
}

/**
 * The report's layers: the reference's Conv / Gemm / MatMul in order, each with the model's
 * layer(s) standing for it (same output value, same node name, or a name derived from it as
 * `name::…`), then the model's layers no reference layer claimed. Fills MACs the shapes could
 * not give from the profile, then from the float layer. `pairs` are the values to compare.
 */
function assembleLayers(
  ma: Analysis,
  ra: Analysis | undefined,
  prof: ProfileStats,
  compare: boolean,
  notes: string[],
): { layers: LayerEval[]; pairs: LayerPair[] } {
  const taken = new Set<string>();
  const layers: LayerEval[] = [];
  const used = new Set<LayerStats>();
  const pairs: LayerPair[] = [];
  const fillFromProfile = (l: LayerEval, names: string[]) => {
    const p = matchProfile(names, prof, taken);
    if (p.ms !== undefined) l.ms = p.ms;
    if (l.macs === undefined && p.macs !== undefined) l.macs = p.macs;
  };
  const skipped: string[] = [];
  for (const rl of ra?.layers ?? []) {
    const v = rl.output;
    const mine = ma.layers.filter((l) =>
      !used.has(l) && (l.output === v || l.name === rl.name || l.name.startsWith(`${rl.name}::`))
    );
    mine.forEach((l) => used.add(l));
    const l: LayerEval = { name: rl.name, op: rl.op };
    if (mine.length) {
      l.op = [...new Set(mine.map((x) => x.op))].join("+");
      l.precision = mine[0].precision;
      if (mine[0].weights) l.weights = mine[0].weights;
      l.params = mine.reduce((a, x) => a + x.params, 0);
      l.nonzeros = mine.reduce((a, x) => a + x.nonzeros, 0);
      if (mine.every((x) => x.macs !== undefined)) l.macs = mine.reduce((a, x) => a + x.macs!, 0);
    }
    if (compare) {
      // A quantized layer's consumers read `v::dq`: that is what the model computes for `v`.
      const value = ma.produced.has(v + DEQUANTIZED_SUFFIX)
        ? v + DEQUANTIZED_SUFFIX
        : ma.produced.has(v)
        ? v
        : undefined;
      if (value) {
        l.output = value;
        pairs.push({ name: rl.name, refValue: v, value });
      } else skipped.push(rl.name);
    }
    fillFromProfile(l, [rl.name, ...mine.map((x) => x.name)]);
    // MACs neither the model's shapes nor its profile gave: the float layer's count.
    if (l.macs === undefined && rl.macs !== undefined && mine.length) l.macs = rl.macs;
    // The model's layers without a count share what the layer's total leaves.
    const unknown = mine.filter((x) => x.macs === undefined);
    if (l.macs !== undefined && unknown.length) {
      const known = mine.reduce((a, x) => a + (x.macs ?? 0), 0);
      for (const x of unknown) x.macs = Math.max(0, l.macs - known) / unknown.length;
    }
    layers.push(l);
  }
  if (skipped.length) {
    notes.push(
      `${skipped.length} reference layer(s) have no output in the model, so no SQNR: ` +
        skipped.slice(0, 10).join(", ") + (skipped.length > 10 ? "…" : ""),
    );
  }
  for (const ml of ma.layers) {
    if (used.has(ml)) continue;
    const l: LayerEval = {
      name: ml.name,
      op: ml.op,
      precision: ml.precision,
      ...(ml.weights ? { weights: ml.weights } : {}),
      params: ml.params,
      nonzeros: ml.nonzeros,
    };
    if (ml.macs !== undefined) l.macs = ml.macs;
    fillFromProfile(l, [ml.name]);
    if (ml.macs === undefined && l.macs !== undefined) ml.macs = l.macs;
    layers.push(l);
  }
  const unknown = ma.layers.filter((l) => l.macs === undefined).map((l) => l.name);
  if (unknown.length) {
    notes.push(`MACs unknown for ${unknown.slice(0, 10).join(", ")}: counted as 0`);
  }
  return { layers, pairs };
}

function checkOptions(o: EvaluateOptions, n: number): void {
  if (typeof o !== "object" || o === null) throw new ArgumentError("options must be an object");
  const { kfold, latencyRuns } = o;
  if (kfold !== undefined && kfold !== 0 && (!Number.isSafeInteger(kfold) || kfold < 2)) {
    throw new ArgumentError(`kfold must be an integer ≥ 2 (or 0 for none), got ${kfold}`);
  }
  if (kfold !== undefined && kfold > n) {
    throw new ArgumentError(`kfold ${kfold} is more than the ${n} samples`);
  }
  if (latencyRuns !== undefined && (!Number.isSafeInteger(latencyRuns) || latencyRuns < 0)) {
    throw new ArgumentError(`latencyRuns must be a non-negative integer, got ${latencyRuns}`);
  }
}

/**
 * Evaluates `model` on `dataset`, against `options.reference` when given. Samples run batch by
 * batch (dataset.batchSize, default 64; a model with a fixed batch dim gets batches of exactly
 * that, the last one padded by repeating its final sample, whose outputs are dropped).
 */
export async function evaluate(
  model: Uint8Array | string,
  dataset: Dataset,
  options: EvaluateOptions = {},
): Promise<EvalReport> {
  const n = checkDataset(dataset);
  checkOptions(options, n);
  const notes: string[] = [];
  const m = await load(model, "model");
  const ref = options.reference !== undefined
    ? await load(options.reference, "reference")
    : undefined;
  const ma = analyze(m);
  const ra = ref ? analyze(ref) : undefined;
  notes.push(...ma.notes, ...(ra?.notes ?? []));

  const run = await predict(m, dataset, n, options, options.output);
  const { classes, scores, output } = run;
  if (run.fixedBatch !== undefined) {
    notes.push(
      run.fixedBatch === 1
        ? "the model's batch dim is fixed at 1: samples ran one at a time"
        : `the model's batch dim is fixed at ${run.fixedBatch}: the last batch was padded`,
    );
  }
  if (scores.some((v) => !Number.isFinite(v))) {
    notes.push(`the model's output '${output}' holds non-finite values`);
  }
  const labels = dataset.labels;
  const report: Partial<EvalReport> = { format: "sqz.eval/1", samples: n, classes, output };

  let predicted: Int32Array | undefined;
  if (labels) {
    predicted = argmaxRows(scores, classes);
    const cm = confusionMatrix(labels, predicted, classes);
    const cls = classification(cm);
    const names = dataset.classNames;
    report.accuracy = accuracy(predicted, labels);
    report.macro = cls.macro;
    report.perClass = cls.perClass;
    report.confusion = {
      labels: Array.from({ length: classes }, (_, i) => names?.[i] ?? String(i)),
      matrix: cm,
    };
    const absent = cls.perClass.filter((c) => c.support === 0 && c.predicted === 0).length;
    if (absent) {
      notes.push(
        `${absent} of ${classes} classes occur neither in the labels nor in the predictions: ` +
          `left out of the macro means`,
      );
    }
  } else notes.push("no labels: accuracy, P/R/F1 and the confusion matrix are not computed");

  // The reference: its own outputs for agreement and KL.
  let refRun: RunResult | undefined;
  if (ref && ra) {
    refRun = await predict(ref, dataset, n, options, output, true);
    if (refRun.classes !== classes) {
      throw new ShapeError(
        `the model has ${classes} scores per sample, the reference ${refRun.classes}`,
      );
    }
    report.agreement = top1Agreement(refRun.scores, scores, classes);
    report.klMean = jsonNumber(meanKlDivergence(refRun.scores, scores, classes));
    const refStats: ModelStats = { ...ra.stats, macs: macsByPrecision(ra.layers) };
    report.reference = {
      model: refStats,
      accuracy: labels ? accuracy(argmaxRows(refRun.scores, classes), labels) : undefined,
      latency: refRun.latency,
      compressionRatio: ra.stats.bytes / ma.stats.bytes,
      gzipRatio: ra.stats.gzipBytes / ma.stats.gzipBytes,
    };
    if (report.reference.accuracy === undefined) delete report.reference.accuracy;
  }

  const prof = await profileLayers(m, dataset, n, options, output);
  const compare = ref !== undefined && options.layers !== false;
  const { layers, pairs } = assembleLayers(ma, ra, prof, compare, notes);

  if (ref && compare) {
    const sq = await layerSqnr(ref, m, pairs, dataset, n, options, notes);
    for (const l of layers) {
      const s = sq.get(l.name);
      if (s !== undefined) l.sqnrDb = jsonNumber(s);
    }
  }

  if (options.kfold !== undefined && options.kfold >= 2) {
    if (!labels || !predicted) notes.push("k-fold needs labels: skipped");
    else {
      const seed = options.kfoldSeed ?? 0;
      const folds = kFoldSplits(n, options.kfold, { seed, labels });
      const accuracies = folds.map((f) =>
        accuracy(f.test.map((i) => predicted![i]), f.test.map((i) => labels[i]))
      );
      const { mean, std } = meanStd(accuracies);
      report.kfold = {
        k: options.kfold,
        seed,
        foldSizes: folds.map((f) => f.test.length),
        accuracies,
        mean,
        std,
      };
      notes.push(
        `k-fold: the model is already trained, so no fold trains anything; the ${options.kfold} ` +
          `accuracies are on disjoint stratified subsets, and their spread (sample std) ` +
          `estimates how much the accuracy varies with the evaluation data`,
      );
    }
  }

  notes.push(
    "MACs are per sample (symbolic dims taken as 1); memory is the Wasm arena and packed " +
      "weights of single-sample runs, not JS-side buffers",
  );
  const { reference: refPart, kfold, ...metrics } = report;
  return {
    ...metrics,
    model: { ...ma.stats, macs: macsByPrecision(ma.layers) },
    ...(refPart ? { reference: refPart } : {}),
    latency: run.latency,
    memory: {
      arenaBytes: run.memory.arenaBytes,
      weightBytes: run.memory.weightBytes,
      totalBytes: run.memory.arenaBytes + run.memory.weightBytes,
    },
    layers,
    ...(kfold ? { kfold } : {}),
    notes,
  } as EvalReport;
}
