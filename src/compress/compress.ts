// compress(): a float ONNX model and a recipe in, a smaller ONNX model and a report out.
//
// Order of the passes: structured pruning (removes channels, so everything after works on the
// smaller layers) → low-rank factorization → magnitude pruning → weight clustering →
// quantization per layer (int4, ternary, binary, then int8 static or dynamic). Sparse and clustered
// storage (ai.sqz decoder nodes) is kept for layers that stay float; a layer that is also
// quantized gets its pruned / clustered weights decoded first and stored quantized (the zeros
// stay zeros, which the entropy-coded size shows). The recipe and the report travel in the
// artifact's metadata_props (`sqz.recipe`, `sqz.report`).
import { importModel, readModel } from "../onnx/import.ts";
import { exportModel, exportModelFiles } from "../onnx/export.ts";
import { externalFilesBytes, gzipModelSize, modelSize } from "../onnx/model_size.ts";
import type { Graph, Node, Value } from "../graph/ir.ts";
import { inferShapes } from "../graph/shape_inference.ts";
import { foldConstants } from "../graph/fold.ts";
import { eliminateDeadCode, foldBatchNorm, removeIdentities } from "../graph/passes.ts";
import { TS_OPS } from "../ops/registry.ts";
import { jsContext } from "../ops/types.ts";
import { methodFor, parseRecipe, type Recipe, usesPass, weightBitsFor } from "./recipe.ts";
import type { LayerReport, PassResult } from "./types.ts";
import { SQZ_DOMAIN } from "./types.ts";
import { ArgumentError } from "../errors.ts";
import { convertOpset } from "../onnx/convert.ts";
import { type CalibrationData, collectStats, readFeeds } from "./calibrate.ts";
import { prunedLayers, reconstructPruned } from "./reconstruct.ts";
import {
  int8Layers,
  quantizableLayers,
  quantizeDynamic,
  quantizeStatic,
  tensorsToCalibrate,
} from "./int8.ts";
import { prunePass } from "./prune.ts";
import { structuredPass } from "./structured.ts";
import { lowRankPass } from "./lowrank.ts";
import { clusterPass } from "./cluster.ts";
import { int4Pass } from "./int4.ts";
import { ternaryPass } from "./ternary.ts";
import { binaryPass } from "./binary.ts";
import type { CheckpointStore, EpochProgress, TrainData } from "../train/types.ts";
import type { TrainingReport } from "../train/finetune.ts";
import { calibrationFromSamples, finetuneStage } from "./finetune_stage.ts";

export interface CompressOptions {
  /** Feeds for static int8 calibration: an iterable or async iterable of `{ [input]: tensor }`. */
  calibration?: CalibrationData;
  /** External data files by location, as Session.create takes them. */
  externalData?: Record<string, Uint8Array>;
  /** Progress in [0, 1] with the stage's name; during fine-tuning also each finished epoch. */
  onProgress?: (progress: number, stage: string, epoch?: EpochProgress) => void;
  /**
   * Fine-tuning data, required when the recipe has `finetune` (or a `+ft` preset): N×(input
   * shape) with optional labels, or (async) iterable batches. Without labels the teacher's soft
   * targets are the labels (distillation), so unlabelled inputs are enough.
   */
  train?: TrainData;
  /** Held-out data for per-epoch accuracy and early stopping (labels optional). */
  validation?: TrainData;
  /** Distillation teacher: ONNX bytes or a path. Default: the float model being compressed. */
  teacher?: Uint8Array | string;
  /** Cancels the run: compress() rejects with an AbortError and writes nothing. */
  signal?: AbortSignal;
  /** Per-epoch checkpoints to resume an interrupted fine-tuning run from. */
  checkpoint?: CheckpointStore;
  /**
   * Artifact weights (bytes) above which they go to an external data file, `result.external`
   * (default: 2 GiB − 64 MiB, what one .onnx can hold). See exportModelFiles.
   */
  externalDataThreshold?: number;
  /** Name of the artifact's external data file, its `location` (default "model.onnx.data"). */
  externalDataLocation?: string;
}

export interface CompressReport {
  recipe: Recipe;
  layers: LayerReport[];
  notes: string[];
  size: { before: number; after: number; gzipBefore: number; gzipAfter: number };
  /** Present when the recipe fine-tuned: the epochs run and what was changed to train. */
  training?: TrainingReport;
}

export interface CompressResult {
  /** The .onnx file. */
  model: Uint8Array;
  /**
   * External data files by location, to be written beside `model` ({} unless the weights
   * exceed `externalDataThreshold`). Report sizes count them.
   */
  external: Record<string, Uint8Array>;
  report: CompressReport;
}

export async function compress(
  model: Uint8Array | string,
  recipe: string | Recipe | Record<string, unknown>,
  options: CompressOptions = {},
): Promise<CompressResult> {
  const r = structuredClone(parseRecipe(recipe)) as Recipe;
  const progress = options.onProgress ?? (() => {});
  const { bytes, baseDir } = await readModel(model);
  progress(0, "import");
  const g = importModel(bytes, { externalData: options.externalData, baseDir });
  g.topoSort();
  inferShapes(g);
  checkLayerNames(g, r);
  // Inference-time simplifications first (what onnxruntime's quantization pre-processing does):
  // BatchNorm folded into its Conv/Gemm, constants folded, Identity/Dropout gone. Activation
  // fusion is left to the engine: it would put non-standard attributes in the artifact.
  foldConstants(g);
  removeIdentities(g);
  foldBatchNorm(g);
  eliminateDeadCode(g);
  g.topoSort();
  inferShapes(g);
  const results: PassResult[] = [];
  if (options.train && !r.finetune) {
    throw new ArgumentError(
      "compress: training data was given but the recipe does not fine-tune: add a finetune " +
        "block or use a +ft preset (binary+ft, int8+ft, …)",
    );
  }
  // Calibration feeds are read once (an async generator can only be), then reused.
  let feeds = options.calibration ? await readFeeds(options.calibration) : undefined;
  // The float model as it was: the distillation teacher, and the target sparse reconstruction
  // fits pruned layers to (fine-tuning does that job better when it runs).
  const floatModel = r.finetune || (feeds && usesPass(r, "prune")) ? exportModel(g) : undefined;
  let training: TrainingReport | undefined;
  const run = (stage: string, at: number, pass: (g: Graph, r: Recipe) => PassResult) => {
    progress(at, stage);
    results.push(pass(g, r));
    g.topoSort();
    inferShapes(g);
  };
  if (usesPass(r, "structured")) run("structured pruning", 0.05, structuredPass);
  if (usesPass(r, "lowrank")) run("low-rank", 0.1, lowRankPass);
  applyKeepFirstLast(g, r);
  if (r.finetune) {
    options.signal?.throwIfAborted();
    progress(0.1, "fine-tuning");
    const epochs = r.finetune.epochs;
    const ft = await finetuneStage(g, r, floatModel!, {
      train: options.train,
      validation: options.validation,
      teacher: options.teacher,
      signal: options.signal,
      checkpoint: options.checkpoint,
      onEpoch: (p) => progress(0.1 + 0.6 * (p.epoch / epochs), "fine-tuning", p),
    });
    training = ft.report;
    // Static int8 calibrates on training inputs when no calibration data was given.
    if (!feeds && r.int8 && hasStaticInt8(g, r)) {
      feeds = calibrationFromSamples(ft.train);
      training.changes.push("int8 activations calibrated on the first training inputs");
    }
  }
  if (usesPass(r, "prune")) run("pruning", 0.15, prunePass);
  if (usesPass(r, "cluster")) run("clustering", 0.2, clusterPass);
  // Quantized layers get their weights decoded back to dense constants first.
  decodeWeightsOfQuantizedLayers(g, r);
  if (feeds && floatModel && !training) {
    const layers = prunedLayers(g);
    if (layers.length) {
      progress(0.2, "sparse reconstruction");
      results.push(await reconstructPruned(g, floatModel, feeds, layers));
    }
  }
  applyKeepFirstLast(g, r);

  // Low-bit layers first: int8 calibration then sees the network as it will run.
  if (g.nodes.some((n) => methodFor(r, n.name, n.op) === "int4")) run("int4", 0.2, int4Pass);
  if (g.nodes.some((n) => methodFor(r, n.name, n.op) === "ternary")) {
    run("ternary", 0.2, ternaryPass);
  }
  if (g.nodes.some((n) => methodFor(r, n.name, n.op) === "binary")) run("binary", 0.2, binaryPass);
  const wantsInt8 = g.nodes.some((n) => methodFor(r, n.name, n.op) === "int8");
  const wantsDynamic = g.nodes.some((n) => methodFor(r, n.name, n.op) === "int8-dynamic");
  if (wantsInt8 || wantsDynamic) {
    // Static int4-stored weights (weightBits ≤ 4) need DequantizeLinear-21.
    const int4Weights = feeds &&
      g.nodes.some((n) =>
        methodFor(r, n.name, n.op) === "int8" && weightBitsFor(r, n.name, n.op) <= 4
      );
    const converted = ensureOpset(g, int4Weights ? 21 : wantsDynamic || !feeds ? 11 : 13);
    if (converted.length) results.push({ layers: [], notes: converted });
  }
  // Layers int8 was asked for but cannot take (int8Layers says why).
  const skipped: string[] = [];
  if (wantsInt8 && feeds) {
    const layers = int8Layers(g, r, "int8", skipped);
    const names = tensorsToCalibrate(layers);
    progress(0.25, "calibration");
    // Calibrate on the model as it is now (after weight passes), so ranges match what runs.
    const current = exportModel(g);
    const stats = await collectStats(
      current,
      names,
      feeds,
      (p) => progress(0.25 + 0.5 * p, "calibration"),
    );
    progress(0.75, "int8");
    const res = quantizeStatic(g, layers, stats, r);
    res.notes.push(
      `int8 static: per-channel symmetric int8 weights, ${r.int8.activations} activations ` +
        `calibrated with ${r.int8.calibration}` +
        (r.int8.calibration === "percentile" ? ` (${r.int8.percentile})` : ""),
    );
    results.push(res);
  }
  // Dynamic: the layers asked for it, and int8 layers when there is no calibration data.
  const dynamic = int8Layers(g, r, "int8-dynamic", skipped).filter((l) =>
    methodFor(r, l.node.name, l.node.op) === "int8-dynamic" || !feeds
  );
  if (dynamic.length) {
    progress(0.8, "int8 dynamic");
    const res = quantizeDynamic(g, dynamic, r);
    if (wantsInt8 && !feeds) {
      res.notes.unshift(
        "int8 requested without calibration data: fell back to dynamic quantization",
      );
    }
    results.push(res);
  }
  if (skipped.length) results.push({ layers: [], notes: [...new Set(skipped)] });
  g.topoSort();

  const layers = mergeLayers(results.flatMap((x) => x.layers));
  // What import rewrote (an opset 1–6 model upgraded) comes first.
  const notes = [...g.notes, ...results.flatMap((x) => x.notes)];
  if (!layers.length) {
    // Nothing changed: an artifact identical in substance to the input helps no one.
    throw new ArgumentError(
      `recipe: it compresses no layer of this model` +
        (notes.length ? ` (${notes.join("; ")})` : ""),
    );
  }
  const report: CompressReport = {
    recipe: r,
    layers,
    notes,
    // Sizes count external data files: a model's weights may live beside its .onnx.
    size: {
      before: modelSize(bytes, { externalData: options.externalData, baseDir }).bytes,
      after: 0,
      gzipBefore: gzipModelSize(bytes, { externalData: options.externalData, baseDir }),
      gzipAfter: 0,
    },
    training,
  };
  progress(0.95, "export");
  // The report describes the file it travels in: export until its own size stops moving.
  const files = {
    externalDataThreshold: options.externalDataThreshold,
    externalDataLocation: options.externalDataLocation,
  };
  let out = exportModelFiles(g, files);
  const sizeOf = (o: typeof out) => o.model.length + externalFilesBytes(o.external);
  for (let i = 0; i < 4 && report.size.after !== sizeOf(out); i++) {
    report.size.after = sizeOf(out);
    report.size.gzipAfter = gzipModelSize(out.model, { externalData: out.external });
    out = exportModelFiles(g, {
      ...files,
      producerName: "sqz",
      metadata: { "sqz.recipe": JSON.stringify(r), "sqz.report": JSON.stringify(report) },
    });
  }
  progress(1, "done");
  return { model: out.model, external: out.external, report };
}

/**
 * XNOR-Net keeps the first and last layers at higher precision: int8 unless named otherwise.
 * Idempotent, so it can run before fine-tuning (which must know) and again before binarizing.
 */
function applyKeepFirstLast(g: Graph, r: Recipe): void {
  if (!r.binary.keepFirstLast) return;
  const all = quantizableLayers(g);
  for (const l of [all[0], all[all.length - 1]]) {
    if (
      l && methodFor(r, l.node.name, l.node.op) === "binary" &&
      r.layers[l.node.name]?.method === undefined
    ) {
      r.layers[l.node.name] = { ...r.layers[l.node.name], method: "int8" };
    }
  }
}

function hasStaticInt8(g: Graph, r: Recipe): boolean {
  return g.nodes.some((n) => methodFor(r, n.name, n.op) === "int8");
}

/** One report row per layer: later passes refine what earlier ones said of the same layer. */
function mergeLayers(rows: LayerReport[]): LayerReport[] {
  const by = new Map<string, LayerReport>();
  for (const row of rows) {
    const prev = by.get(row.name);
    if (!prev) {
      by.set(row.name, { ...row });
      continue;
    }
    by.set(row.name, {
      ...prev,
      ...row,
      method: `${prev.method} + ${row.method}`,
      params: prev.params,
      bytesBefore: prev.bytesBefore,
      macsBefore: prev.macsBefore ?? row.macsBefore,
      notes: [...(prev.notes ?? []), ...(row.notes ?? [])],
    });
  }
  return [...by.values()];
}

/**
 * Folds the ai.sqz weight decoders that feed a layer the recipe also quantizes, chains included
 * (a ClusteredWeight feeding a SparseWeight): the quantizer needs a dense constant.
 */
function decodeWeightsOfQuantizedLayers(g: Graph, r: Recipe): void {
  const opset = g.opsets.get("") ?? 13;
  const materialize = (v: Value | undefined): boolean => {
    if (!v || v.constant) return !!v;
    const dec: Node | undefined = v.producer;
    if (!dec || dec.domain !== SQZ_DOMAIN) return false;
    const fn = TS_OPS[dec.qualifiedOp];
    if (!fn || !dec.inputs.every((x) => !x || materialize(x))) return false;
    const [t] = fn(dec.inputs.map((x) => x?.constant), jsContext(dec, opset));
    g.removeNode(dec);
    v.constant = { type: t.type, dims: [...t.dims], data: t.data.slice() } as typeof t;
    v.type = t.type;
    v.shape = [...t.dims];
    return true;
  };
  for (const n of [...g.nodes]) {
    if (methodFor(r, n.name, n.op) === "none" || n.domain === SQZ_DOMAIN) continue;
    for (const v of n.inputs.slice(1)) materialize(v);
  }
  eliminateDeadCode(g);
}

/** Per-layer overrides must name a node or an op type of the model: a typo is an error. */
function checkLayerNames(g: Graph, r: Recipe): void {
  const names = new Set(g.nodes.flatMap((n) => [n.name, n.op]));
  const unknown = Object.keys(r.layers).filter((k) => !names.has(k));
  if (unknown.length) {
    throw new ArgumentError(
      `recipe: layers ${unknown.map((k) => `'${k}'`).join(", ")} name no node or op type of ` +
        `the model`,
    );
  }
}

/**
 * QDQ with per-channel DequantizeLinear needs opset 13 (DynamicQuantizeLinear 11). An older
 * default-domain opset is converted (convertOpset: only the ops whose meaning changed in
 * between are rewritten); returns the conversion's notes for the report (none if already new
 * enough).
 */
function ensureOpset(g: Graph, min: number): string[] {
  const current = g.opsets.get("") ?? g.opsets.get("ai.onnx") ?? 0;
  if (current >= min) return [];
  const { converted } = convertOpset(g, min);
  g.topoSort();
  inferShapes(g);
  return converted.map((line, i) => i ? line : `int8 needs opset ${min}: converted ${line}`);
}
