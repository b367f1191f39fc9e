// The fine-tuning loop: mini-batches in a seeded order, forward and backward through a
// TrainProgram, cross-entropy or distillation loss, gradient clipping, the optimizer and its
// learning-rate schedule, per-epoch validation, early stopping (the best epoch is kept),
// divergence detection, cancellation and per-epoch checkpoints.
//
// Labels are optional: without them the teacher's soft targets are the labels (distillation
// with α = 1), so unlabelled inputs are enough to recover a compressed model.
import type { Graph } from "../graph/ir.ts";
import type { Tensor } from "../graph/tensor.ts";
import { ArgumentError, ShapeError, TrainingError } from "../errors.ts";
import { Session } from "../session.ts";
import { importModel } from "../onnx/import.ts";
import type { KernelModule } from "../kernels/module.ts";
import { TrainProgram } from "./program.ts";
import { logitsOf } from "./prepare.ts";
import { clipGradNorm, Optimizer } from "./optim.ts";
import { learningRate, type ScheduleConfig } from "./schedule.ts";
import { argmaxRows, distillationLoss, softmaxCrossEntropy } from "./loss.ts";
import { epochBatches, gatherLabels, gatherRows } from "./batches.ts";
import { decodeCheckpoint, encodeCheckpoint } from "./checkpoint.ts";
import { shiftImages } from "./augment.ts";
import { seededRandom } from "../eval/metrics.ts";
import { mixSeed } from "./batches.ts";
import type { CheckpointStore, EpochProgress, FinetuneConfig, Labels, TrainData } from "./types.ts";

/** What compress() reports of a fine-tuning run. */
export interface TrainingReport {
  epochs: EpochProgress[];
  /** Epoch whose weights were kept (the best validation epoch with early stopping). */
  bestEpoch: number;
  resumedFromEpoch?: number;
  stoppedEarly?: boolean;
  /** Model changes made so that the recipe can train ("ReLU replaced by BatchNorm"…). */
  changes: string[];
  /** Which layers trained under which simulated compression. */
  layers: { name: string; scheme: string }[];
  samples: number;
  labelled: boolean;
  distilled: boolean;
  steps: number;
  ms: number;
  /**
   * Bytes held at the end: parameters and gradients, the largest set of activations one step
   * produced, the ops' reused buffers (activations and gradients), Wasm scratch.
   */
  memory: {
    paramBytes: number;
    activationBytes: number;
    bufferBytes: number;
    scratchBytes: number;
  };
}

/** Samples held in memory: one N×… float32 array per model input, labels optional. */
export interface Samples {
  n: number;
  inputs: Map<string, { data: Float32Array; sample: number[] }>;
  labels?: Int32Array;
}

type InputInfo = { name: string; dims: (number | string)[] };

function toInt32(l: Labels): Int32Array {
  if (l instanceof Int32Array) return l;
  return Int32Array.from(l, (v) => {
    if (v > 2147483647n || v < -2147483648n) return -1;
    return Number(v);
  });
}

/** Reads TrainData into memory, checking it against the model's inputs. */
export async function readSamples(
  d: TrainData,
  inputs: InputInfo[],
  what: string,
): Promise<Samples> {
  const parts = new Map<string, Float32Array[]>();
  const labelParts: Int32Array[] = [];
  const samples = new Map<string, number[]>();
  let n = 0, labelled: boolean | undefined;
  const take = (feeds: Record<string, Tensor>, labels: Labels | undefined) => {
    let rows = -1;
    for (const inp of inputs) {
      const t = feeds[inp.name] ??
        (inputs.length === 1 && Object.keys(feeds).length === 1
          ? Object.values(feeds)[0]
          : undefined);
      if (!t) throw new ArgumentError(`${what}: no data for the model input '${inp.name}'`);
      if (t.type !== "float32" || !(t.data instanceof Float32Array)) {
        throw new ArgumentError(`${what}: input '${inp.name}' must be float32, got ${t.type}`);
      }
      const sample = inp.dims.slice(1);
      if (t.dims.length !== inp.dims.length) {
        throw new ShapeError(
          `${what}: input '${inp.name}' is [${t.dims}], the model takes [${inp.dims}] (N first)`,
        );
      }
      sample.forEach((d, i) => {
        if (typeof d === "number" && d !== t.dims[i + 1]) {
          throw new ShapeError(
            `${what}: input '${inp.name}' is [${t.dims}], the model takes [${inp.dims}]`,
          );
        }
      });
      const r = t.dims[0];
      if (rows >= 0 && r !== rows) throw new ShapeError(`${what}: inputs disagree on N`);
      rows = r;
      const data = t.data;
      for (let i = 0; i < data.length; i++) {
        if (!Number.isFinite(data[i])) {
          throw new ArgumentError(`${what}: input '${inp.name}' has a non-finite value at ${i}`);
        }
      }
      const dims = t.dims.slice(1), seen = samples.get(inp.name);
      if (seen && seen.join() !== dims.join()) {
        throw new ShapeError(`${what}: input '${inp.name}' is [${dims}] a sample, then [${seen}]`);
      }
      samples.set(inp.name, dims);
      let list = parts.get(inp.name);
      if (!list) parts.set(inp.name, list = []);
      list.push(data);
    }
    if (labelled === undefined) labelled = !!labels;
    if (labelled !== !!labels) {
      throw new ArgumentError(`${what}: some batches have labels, some not`);
    }
    if (labels) {
      if (labels.length !== rows) {
        throw new ArgumentError(`${what}: ${labels.length} labels for ${rows} inputs`);
      }
      labelParts.push(toInt32(labels));
    }
    n += rows;
  };
  if ("inputs" in d && !(Symbol.iterator in d) && !(Symbol.asyncIterator in d)) {
    const ins = d.inputs as Tensor | Record<string, Tensor>;
    const feeds = "dims" in ins && "data" in ins
      ? { [inputs[0].name]: ins as Tensor }
      : ins as Record<string, Tensor>;
    take(feeds, d.labels);
  } else {
    for await (const b of d as AsyncIterable<{ feeds: Record<string, Tensor>; labels?: Labels }>) {
      take(b.feeds, b.labels);
    }
  }
  if (n === 0) throw new ArgumentError(`${what}: no samples`);
  const cat = (list: Float32Array[]) => {
    if (list.length === 1) return list[0];
    const out = new Float32Array(list.reduce((s, a) => s + a.length, 0));
    let at = 0;
    for (const a of list) {
      out.set(a, at);
      at += a.length;
    }
    return out;
  };
  const out: Samples = { n, inputs: new Map() };
  for (const inp of inputs) {
    const data = cat(parts.get(inp.name)!);
    out.inputs.set(inp.name, { data, sample: samples.get(inp.name)! });
  }
  if (labelled) {
    const l = new Int32Array(n);
    let at = 0;
    for (const p of labelParts) {
      l.set(p, at);
      at += p.length;
    }
    out.labels = l;
  }
  return out;
}

/** A batch's feeds from samples `idx`. */
function batchFeeds(s: Samples, inputs: InputInfo[], idx: Int32Array): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {};
  for (const inp of inputs) {
    const e = s.inputs.get(inp.name)!, row = e.data.length / s.n;
    const data = new Float32Array(idx.length * row);
    gatherRows(e.data, row, idx, data);
    feeds[inp.name] = {
      type: "float32",
      dims: [idx.length, ...e.sample],
      data,
    };
  }
  return feeds;
}

/** The distillation teacher: a Session that returns its logits (logitsOf its graph). */
export class Teacher {
  private constructor(readonly session: Session, readonly logits: string) {}

  static async create(bytes: Uint8Array): Promise<Teacher> {
    const name = logitsOf(importModel(bytes)).name;
    return new Teacher(await Session.create(bytes, { extraOutputs: [name] }), name);
  }

  async run(feeds: Record<string, Tensor>): Promise<Float32Array> {
    return (await this.session.run(feeds, { outputs: [this.logits] }))[this.logits]
      .data as Float32Array;
  }

  /** Logits for every sample, computed once (the teacher is fixed) in batches of 256. */
  async all(s: Samples, inputs: InputInfo[], classes: number): Promise<Float32Array> {
    const logits = new Float32Array(s.n * classes);
    for (let b = 0; b < s.n; b += 256) {
      const idx = Int32Array.from({ length: Math.min(256, s.n - b) }, (_, i) => b + i);
      const t = await this.run(batchFeeds(s, inputs, idx));
      if (t.length !== idx.length * classes) {
        throw new ShapeError(
          `teacher: its logits '${this.logits}' have ${t.length / idx.length} values a ` +
            `sample, the student's ${classes}`,
        );
      }
      logits.set(t, b * classes);
    }
    return logits;
  }

  release(): void {
    this.session.release();
  }
}

export interface FinetuneRun {
  /** The training graph (src/train/prepare.ts) and the value trained against. */
  graph: Graph;
  logits: string;
  config: FinetuneConfig;
  train: Samples;
  validation?: Samples;
  /** Teacher logits for the training samples, and for the validation samples. */
  teacher?: { train: Float32Array; validation?: Float32Array };
  /** The teacher itself, for augmented batches (which the precomputed logits do not cover). */
  teacherRun?: Teacher;
  /** Pruning masks by parameter name for a step (Zhu & Gupta's schedule), when pruning. */
  masksAt?: (
    step: number,
    totalSteps: number,
    weight: (name: string) => Float32Array | undefined,
  ) => Map<string, Uint8Array> | undefined;
  onEpoch?: (p: EpochProgress) => void;
  signal?: AbortSignal;
  checkpoint?: CheckpointStore;
  mod?: KernelModule;
}

function abortError(): Error {
  const e = new Error("compress: cancelled");
  e.name = "AbortError";
  return e;
}

/** Runs the fine-tuning; the trained weights are left in the returned program. */
export async function finetune(
  run: FinetuneRun,
): Promise<{ program: TrainProgram; report: Omit<TrainingReport, "changes" | "layers"> }> {
  const t0 = performance.now();
  const cfg = run.config, g = run.graph;
  const inputs: InputInfo[] = g.inputs.map((v) => ({ name: v.name, dims: v.shape ?? [] }));
  const program = await TrainProgram.create(g, { mod: run.mod, outputs: [run.logits] });
  const optimizer = new Optimizer(program.params, {
    kind: cfg.optimizer,
    momentum: cfg.optimizer === "sgd" ? cfg.momentum : undefined,
    weightDecay: cfg.weightDecay,
  });
  const tr = run.train, n = tr.n;
  const stepsPerEpoch = Math.ceil(n / cfg.batchSize), totalSteps = stepsPerEpoch * cfg.epochs;
  const schedule: ScheduleConfig = {
    kind: cfg.schedule,
    warmupSteps: Math.round(cfg.warmupEpochs * stepsPerEpoch),
    stepEvery: Math.max(1, Math.round(cfg.stepEpochs * stepsPerEpoch)),
    gamma: cfg.gamma,
  };
  const byName = new Map(program.params.map((p) => [p.name, p]));
  const weight = (name: string) => byName.get(name)?.data;
  const distill = !!run.teacher;
  const labels = tr.labels;
  if (!labels && !distill) {
    throw new ArgumentError("finetune: the training data has no labels and there is no teacher");
  }
  const history: EpochProgress[] = [];
  let best = -Infinity, bestEpoch = -1, bestSnapshot: Float32Array[] | undefined;
  let sinceBest = 0, startEpoch = 0, resumed: number | undefined, stoppedEarly = false;
  let firstLoss: number | undefined;

  // Resume from the last finished epoch.
  const saved = await run.checkpoint?.load();
  if (saved) {
    const c = decodeCheckpoint(saved);
    for (const p of program.params) {
      const d = c.tensors.get(`param:${p.name}`);
      if (!d || d.length !== p.data.length) {
        throw new ArgumentError("checkpoint: it is of another model");
      }
      p.data.set(d);
      const m = c.tensors.get(`mask:${p.name}`);
      if (m) p.mask = Uint8Array.from(m);
    }
    for (const b of program.buffers) {
      const d = c.tensors.get(`buffer:${b.name}`);
      if (d && d.length === b.data.length) b.data.set(d);
    }
    const slots: Record<string, Float32Array[]> = {};
    for (const p of program.params) {
      const list: Float32Array[] = [];
      for (let i = 0; c.tensors.has(`slot${i}:${p.name}`); i++) {
        list.push(c.tensors.get(`slot${i}:${p.name}`)!);
      }
      slots[p.name] = list;
    }
    const meta = c.meta as {
      epoch: number;
      step: number;
      history: EpochProgress[];
      best: number;
      bestEpoch: number;
      sinceBest: number;
      firstLoss?: number;
    };
    optimizer.load({ kind: cfg.optimizer, step: meta.step, slots });
    if (c.tensors.has(`best:0`)) {
      bestSnapshot = program.params.map((_, i) => c.tensors.get(`best:${i}`)!);
    }
    history.push(...meta.history);
    best = meta.best ?? -Infinity;
    bestEpoch = meta.bestEpoch;
    sinceBest = meta.sinceBest;
    firstLoss = meta.firstLoss;
    startEpoch = meta.epoch + 1;
    resumed = meta.epoch;
  }

  const classesOf = (s: Samples) => {
    const feeds = batchFeeds(s, inputs, Int32Array.of(0));
    const t = program.forward(feeds, false)[run.logits];
    return t.data.length;
  };
  const classes = classesOf(tr);
  if (labels) {
    for (let i = 0; i < labels.length; i++) {
      if (!(labels[i] >= 0 && labels[i] < classes)) {
        throw new ArgumentError(
          `finetune: label ${labels[i]} of sample ${i} is outside the model's ${classes} classes`,
        );
      }
    }
  }
  const vl = run.validation?.labels;
  if (vl) {
    for (let i = 0; i < vl.length; i++) {
      if (!(vl[i] >= 0 && vl[i] < classes)) {
        throw new ArgumentError(
          `validation: label ${vl[i]} of sample ${i} is outside the ${classes} classes`,
        );
      }
    }
  }

  const evaluate = (s: Samples, teacher?: Float32Array) => {
    let correct = 0, agree = 0;
    const bs = 256;
    for (let b = 0; b < s.n; b += bs) {
      const idx = Int32Array.from({ length: Math.min(bs, s.n - b) }, (_, i) => b + i);
      const z = program.forward(batchFeeds(s, inputs, idx), false)[run.logits].data as Float32Array;
      const pred = argmaxRows(z, idx.length, classes);
      const tp = teacher &&
        argmaxRows(teacher.subarray(b * classes, (b + idx.length) * classes), idx.length, classes);
      for (let i = 0; i < idx.length; i++) {
        if (s.labels && pred[i] === s.labels[b + i]) correct++;
        if (tp && pred[i] === tp[i]) agree++;
      }
    }
    return {
      accuracy: s.labels ? correct / s.n : undefined,
      agreement: teacher ? agree / s.n : undefined,
    };
  };

  let step = optimizer.state().step;
  for (let epoch = startEpoch; epoch < cfg.epochs; epoch++) {
    const te = performance.now();
    let lossSum = 0, seen = 0, correct = 0;
    const batches = epochBatches(n, cfg.batchSize, cfg.seed, epoch);
    for (let bi = 0; bi < batches.length; bi++) {
      if (run.signal?.aborted) throw abortError();
      if (bi % 8 === 7) {
        // Let a cancel (a message to the job Worker) arrive.
        await new Promise((r) => setTimeout(r, 0));
        if (run.signal?.aborted) throw abortError();
      }
      const idx = batches[bi], m = idx.length;
      const masks = run.masksAt?.(step, totalSteps, weight);
      if (masks) {
        for (const [name, mask] of masks) {
          const p = byName.get(name);
          if (!p) continue;
          p.mask = mask;
          for (let i = 0; i < mask.length; i++) if (!mask[i]) p.data[i] = 0;
        }
      }
      const feeds = batchFeeds(tr, inputs, idx);
      if (cfg.augment) {
        // The shifts of batch bi of epoch e: a function of (seed, e, bi) alone, so resuming
        // from a checkpoint replays them.
        const random = seededRandom(mixSeed(mixSeed(cfg.seed, epoch), bi + 1));
        for (const f of Object.values(feeds)) {
          shiftImages(f.data as Float32Array, f.dims, cfg.augment, random);
        }
      }
      const teacherZ = distill && cfg.augment && run.teacherRun
        ? await run.teacherRun.run(feeds)
        : undefined;
      const z = program.forward(feeds, true)[run.logits].data as Float32Array;
      const grad = new Float32Array(z.length);
      const y = labels ? gatherLabels(labels, idx) : undefined;
      let r: { loss: number; correct?: number };
      if (distill) {
        let t = teacherZ;
        if (!t) {
          t = new Float32Array(m * classes);
          gatherRows(run.teacher!.train, classes, idx, t);
        }
        const d = cfg.distill ?? { temperature: 4, alpha: 1 };
        r = distillationLoss(z, t, m, classes, d.temperature, y ? d.alpha : 1, y, grad);
        if (y && r.correct === undefined) r.correct = countCorrect(z, m, classes, y);
      } else r = softmaxCrossEntropy(z, m, classes, y!, grad);
      if (
        !Number.isFinite(r.loss) ||
        (firstLoss !== undefined && r.loss > 100 * Math.max(firstLoss, 1))
      ) {
        throw new TrainingError(
          `fine-tuning diverged in epoch ${epoch + 1} (loss ${r.loss}${
            firstLoss !== undefined ? `, it started at ${firstLoss.toFixed(4)}` : ""
          }): ` +
            `try a lower learning rate than ${cfg.lr}${
              cfg.clipNorm ? "" : " or set finetune.clipNorm"
            }`,
        );
      }
      firstLoss ??= r.loss;
      program.zeroGrad();
      program.backward({ [run.logits]: grad });
      if (cfg.clipNorm > 0) clipGradNorm(program.params, cfg.clipNorm);
      optimizer.step(learningRate(schedule, cfg.lr, step, totalSteps));
      step++;
      lossSum += r.loss * m;
      seen += m;
      correct += r.correct ?? 0;
    }
    await new Promise((r) => setTimeout(r, 0));
    if (run.signal?.aborted) throw abortError();
    const v = run.validation ? evaluate(run.validation, run.teacher?.validation) : undefined;
    const p: EpochProgress = {
      epoch: epoch + 1,
      epochs: cfg.epochs,
      loss: lossSum / seen,
      trainAccuracy: labels ? correct / seen : undefined,
      valAccuracy: v?.accuracy,
      valAgreement: v?.agreement,
      lr: learningRate(schedule, cfg.lr, Math.max(0, step - 1), totalSteps),
      ms: performance.now() - te,
    };
    history.push(p);
    // Early stopping watches validation accuracy (or agreement without labels).
    const metric = v ? (v.accuracy ?? v.agreement ?? -p.loss) : -p.loss;
    if (metric > best + (cfg.earlyStopping?.minDelta ?? 0)) {
      best = metric;
      bestEpoch = epoch;
      sinceBest = 0;
      if (cfg.earlyStopping) bestSnapshot = program.params.map((q) => Float32Array.from(q.data));
    } else sinceBest++;
    const stop = !!cfg.earlyStopping && sinceBest > cfg.earlyStopping.patience;
    if (run.checkpoint) {
      const tensors = new Map<string, Float32Array>();
      const st = optimizer.state();
      for (const q of program.params) {
        tensors.set(`param:${q.name}`, q.data);
        if (q.mask) tensors.set(`mask:${q.name}`, Float32Array.from(q.mask));
        st.slots[q.name]?.forEach((s, i) => tensors.set(`slot${i}:${q.name}`, s));
      }
      for (const b of program.buffers) tensors.set(`buffer:${b.name}`, b.data);
      bestSnapshot?.forEach((s, i) => tensors.set(`best:${i}`, s));
      const meta = { epoch, step: st.step, history, best, bestEpoch, sinceBest, firstLoss };
      await run.checkpoint.save(encodeCheckpoint({ meta, tensors }), epoch + 1);
    }
    run.onEpoch?.(p);
    if (stop) {
      stoppedEarly = epoch + 1 < cfg.epochs;
      break;
    }
  }
  if (cfg.earlyStopping && bestSnapshot) {
    program.params.forEach((q, i) => q.data.set(bestSnapshot![i]));
  }
  return {
    program,
    report: {
      epochs: history,
      bestEpoch: (cfg.earlyStopping ? bestEpoch : history.length - 1) + 1,
      resumedFromEpoch: resumed !== undefined ? resumed + 1 : undefined,
      stoppedEarly,
      samples: n,
      labelled: !!labels,
      distilled: distill,
      steps: step,
      ms: performance.now() - t0,
      memory: program.memory,
    },
  };
}

function countCorrect(z: Float32Array, m: number, c: number, y: Int32Array): number {
  const p = argmaxRows(z, m, c);
  let k = 0;
  for (let i = 0; i < m; i++) if (p[i] === y[i]) k++;
  return k;
}
