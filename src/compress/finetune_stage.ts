// The fine-tuning stage of compress(): runs after the passes that change the architecture
// (structured pruning, low-rank) and before the ones that store weights compressed (pruning,
// clustering, quantization). The network trains against exactly what those passes will do to it
// (src/train/prepare.ts), the trained weights are written back into the model, and the passes
// then run as they do without training — so a fine-tuned artifact has the same formats as a
// post-training one (standard QDQ for int8, ai.sqz ops for the rest).
import type { Graph } from "../graph/ir.ts";
import { ArgumentError } from "../errors.ts";
import { readModel } from "../onnx/import.ts";
import { inferShapes } from "../graph/shape_inference.ts";
import { foldBatchNorm } from "../graph/passes.ts";
import type { Tensor } from "../graph/tensor.ts";
import { methodFor, type Recipe, usesPass } from "./recipe.ts";
import { layerNodes } from "./int4.ts";
import { makeBinarizable, pruneMasks, trainingGraph } from "../train/prepare.ts";
import {
  finetune,
  readSamples,
  type Samples,
  Teacher,
  type TrainingReport,
} from "../train/finetune.ts";
import type { CheckpointStore, EpochProgress, TrainData } from "../train/types.ts";

export interface FinetuneStageOptions {
  train?: TrainData;
  validation?: TrainData;
  teacher?: Uint8Array | string;
  signal?: AbortSignal;
  checkpoint?: CheckpointStore;
  onEpoch?: (p: EpochProgress) => void;
}

/** Share of the steps over which gradual pruning ramps to the target sparsity (Zhu & Gupta). */
const PRUNE_RAMP = 0.75;

export async function finetuneStage(
  g: Graph,
  r: Recipe,
  floatModel: Uint8Array,
  o: FinetuneStageOptions,
): Promise<{ report: TrainingReport; train: Samples }> {
  const cfg = r.finetune!;
  if (!o.train) {
    throw new ArgumentError(
      "compress: the recipe fine-tunes (finetune / +ft) but no training data was given: pass " +
        "options.train ({ inputs, labels? }; CLI --train x.npy [--labels y.npy])",
    );
  }
  const inputs = g.inputs.map((v) => ({ name: v.name, dims: v.shape ?? [] }));
  const train = await readSamples(o.train, inputs, "train");
  const validation = o.validation
    ? await readSamples(o.validation, inputs, "validation")
    : undefined;
  const changes: string[] = [];
  if (layerNodes(g).some((n) => methodFor(r, n.name, n.op) === "binary")) {
    changes.push(...makeBinarizable(g, r));
  }
  const tg = trainingGraph(g, r);
  // Classes: the logits' last dim, from one evaluation inside finetune; the teacher needs it first.
  const classes = Number(tg.graph.values.get(tg.logits)?.shape?.at(-1));
  let teacher: { train: Float32Array; validation?: Float32Array } | undefined;
  let teacherModel: Teacher | undefined;
  if (cfg.distill || !train.labels) {
    if (!Number.isInteger(classes)) {
      throw new ArgumentError("compress: distillation needs logits with a fixed class count");
    }
    teacherModel = await Teacher.create(
      o.teacher ? (await readModel(o.teacher)).bytes : floatModel,
    );
    teacher = {
      train: await teacherModel.all(train, inputs, classes),
      validation: validation ? await teacherModel.all(validation, inputs, classes) : undefined,
    };
    if (!cfg.distill) {
      changes.push("no labels: trained on the teacher's soft targets (distillation)");
    }
  }
  let masksAt;
  if (usesPass(r, "prune")) {
    let last = -1;
    masksAt = (step: number, total: number, weight: (n: string) => Float32Array | undefined) => {
      const ramp = Math.max(1, Math.floor(PRUNE_RAMP * total));
      const every = Math.max(1, Math.floor(ramp / 50));
      if (step > ramp || (step % every !== 0 && step !== ramp)) return undefined;
      const f = 1 - (1 - Math.min(1, step / ramp)) ** 3;
      if (f === last) return undefined;
      last = f;
      return pruneMasks(g, r, weight, f);
    };
  }
  // Augmented batches are new inputs: the teacher has to see them too.
  let trained;
  try {
    trained = await finetune({
      teacherRun: cfg.augment ? teacherModel : undefined,
      graph: tg.graph,
      logits: tg.logits,
      config: cfg,
      train,
      validation,
      teacher,
      masksAt,
      onEpoch: o.onEpoch,
      signal: o.signal,
      checkpoint: o.checkpoint,
    });
  } finally {
    teacherModel?.release();
  }
  const { program, report } = trained;
  try {
    if (masksAt) {
      // The final masks at the full sparsity, whatever step the run ended on.
      const byName = new Map(program.params.map((p) => [p.name, p.data]));
      for (const [name, m] of pruneMasks(g, r, (n) => byName.get(n), 1)) {
        const w = byName.get(name)!;
        for (let i = 0; i < m.length; i++) if (!m[i]) w[i] = 0;
      }
    }
    program.writeBack(g);
  } finally {
    program.dispose();
  }
  const folded = foldBatchNorm(g);
  if (folded) changes.push(`${folded} BatchNormalization layer(s) folded into the layer before`);
  g.topoSort();
  inferShapes(g);
  return { report: { ...report, changes, layers: tg.layers }, train };
}

/** Calibration feeds from training samples (static int8 without calibration data). */
export function calibrationFromSamples(
  s: Samples,
  max = 512,
  batch = 64,
): Record<string, Tensor>[] {
  const n = Math.min(s.n, max), out: Record<string, Tensor>[] = [];
  for (let b = 0; b < n; b += batch) {
    const m = Math.min(batch, n - b), feeds: Record<string, Tensor> = {};
    for (const [name, e] of s.inputs) {
      const row = e.data.length / s.n;
      feeds[name] = {
        type: "float32",
        dims: [m, ...e.sample],
        data: e.data.slice(b * row, (b + m) * row),
      };
    }
    out.push(feeds);
  }
  return out;
}
