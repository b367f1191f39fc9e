// What the training side of compress() takes and reports: training / validation data, the
// recipe's `finetune` block, per-epoch progress and the checkpoints a job resumes from.
import type { Tensor } from "../graph/tensor.ts";

/** Labels: one class index per sample. */
export type Labels = Int32Array | BigInt64Array;

/** One mini-batch given by the caller: feeds by input name, labels optional. */
export interface TrainBatch {
  feeds: Record<string, Tensor>;
  labels?: Labels;
}

/**
 * Training or validation data: N samples as one tensor of N×(the model's input shape) for a
 * single-input model (or one such tensor per input name), with optional labels; or an (async)
 * iterable of batches, re-iterated every epoch (an async generator is read once and kept).
 */
export type TrainData =
  | { inputs: Tensor | Record<string, Tensor>; labels?: Labels }
  | Iterable<TrainBatch>
  | AsyncIterable<TrainBatch>;

/** Hinton et al.'s knowledge distillation: α·T²·KL(teacher/T ‖ student/T) + (1 − α)·CE. */
export interface DistillConfig {
  temperature: number;
  alpha: number;
}

/** The recipe's `finetune` block (src/compress/recipe.ts validates it and fills defaults). */
export interface FinetuneConfig {
  epochs: number;
  batchSize: number;
  optimizer: "sgd" | "adam" | "adamw";
  lr: number;
  /** sgd momentum (0.9). */
  momentum: number;
  weightDecay: number;
  schedule: "constant" | "cosine" | "step";
  /** step schedule: epochs between decays, and the factor. */
  stepEpochs: number;
  gamma: number;
  warmupEpochs: number;
  /** Global gradient-norm clip (0 = off). */
  clipNorm: number;
  seed: number;
  /** Distillation from the teacher (the float model unless one is given); undefined = labels only. */
  distill?: DistillConfig;
  /** Random translations of image inputs while training (src/train/augment.ts). */
  augment?: { shift: number; layout: "nchw" | "nhwc" };
  /** Stop when the validation metric has not improved for `patience` epochs; keep the best. */
  earlyStopping?: { patience: number; minDelta: number };
}

/** What onProgress receives at the end of every epoch. */
export interface EpochProgress {
  epoch: number;
  epochs: number;
  loss: number;
  trainAccuracy?: number;
  valAccuracy?: number;
  /** Agreement with the teacher on the validation data when it has no labels. */
  valAgreement?: number;
  lr: number;
  ms: number;
}

/**
 * Where a training run keeps its checkpoints (the service: the job's directory). `load` returns
 * the last checkpoint written for this run, if any; compress() resumes from it. The bytes are
 * opaque to the caller (src/train/checkpoint.ts defines them).
 */
export interface CheckpointStore {
  load(): Promise<Uint8Array | undefined> | Uint8Array | undefined;
  save(bytes: Uint8Array, epoch: number): Promise<void> | void;
}
