// The compression worker: one Web Worker per running job, so compress() (CPU-bound and
// synchronous for long stretches) never blocks the server's event loop.
//
// Protocol (structured-clone messages):
//   in   WorkerStart                               one per worker
//        { type: "cancel" }                        abort: compress() gets an aborted signal
//   out  { type: "progress", progress, stage }     progress in [0, 1], as compress() reports it
//        { type: "epoch", epoch }                  a fine-tuning epoch finished (EpochProgress)
//        { type: "checkpoint", epoch }             its checkpoint is on disk
//        { type: "resumed", epoch }                this run resumes after that epoch's checkpoint
//        { type: "done", model, external, report, … } the artifact and its external data files
//                                                  (transferred), and its metadata
//        { type: "cancelled" }                     the run stopped on "cancel"; nothing was made
//        { type: "error", code, message }          a typed failure; the worker then exits
// The worker reads its inputs from the artifact store by path (the main thread passes paths
// it built from digests). It writes only its fine-tuning checkpoints, in the job's directory
// (store/checkpoints.ts: temp file + rename); storing the result is the main thread's job.
// A worker busy in a long synchronous stretch sees "cancel" only when it next yields: the
// main thread terminates it if it has not stopped within a grace period.
/// <reference lib="deno.worker" />
import {
  batchFeeds,
  compress,
  type CompressReport,
  type EvalReport,
  evaluate,
  inspectModel,
  parseNpy,
  seededRandom,
  Session,
  type Tensor,
} from "../../src/mod.ts";
import type { EpochRecord, TensorSpec } from "../store/db.ts";
import { latestCheckpoint, saveCheckpoint } from "../store/checkpoints.ts";
import {
  cancel,
  checkCancelled,
  type DataFiles,
  readData,
  serve,
  sleep,
} from "./worker_runtime.ts";

export type { DataFiles };

export interface WorkerStart {
  type: "start";
  jobId: string;
  modelPath: string;
  /** External data files of the model: location → artifact path. */
  external: Record<string, string>;
  recipe: unknown;
  calibrationPath?: string;
  /** The model's input the calibration data is for. */
  calibrationInput: string;
  /** Samples per calibration batch: the input's fixed batch size, or 32 when it is dynamic. */
  calibrationBatch: number;
  /** Fine-tuning data (the recipe fine-tunes), for the model's single input. */
  train?: DataFiles;
  validation?: DataFiles;
  /** The job's own directory: its checkpoints (store/checkpoints.ts). */
  jobDir: string;
  /** Weights above which the result keeps them in an external data file (compress()'s default). */
  externalDataThreshold?: number;
  /** Test hook (SQZ_TEST_JOB_DELAY_MS): wait this long before compressing. */
  delayMs: number;
  /** Test hook (SQZ_TEST_EPOCH_DELAY_MS): wait this long before writing each checkpoint. */
  epochDelayMs?: number;
}

export type WorkerCommand = WorkerStart | { type: "cancel" };

export type WorkerMessage =
  | { type: "progress"; progress: number; stage: string }
  | { type: "epoch"; epoch: EpochRecord }
  | { type: "checkpoint"; epoch: number }
  | { type: "resumed"; epoch: number }
  | { type: "cancelled" }
  | {
    type: "done";
    model: Uint8Array;
    /** External data files of the result by location ({}: its weights are inline). */
    external: Record<string, Uint8Array>;
    report: CompressReport;
    evaluation?: EvalReport;
    evaluationNote?: string;
    inputs: TensorSpec[];
    outputs: TensorSpec[];
    opHistogram: Record<string, number>;
  }
  | { type: "error"; code: string; message: string };

/** The location of a result's external data file, when it has one. */
const RESULT_EXTERNAL_LOCATION = "model.onnx.data";

/** Samples of the evaluation batch (calibration, training or synthetic data). */
const EVAL_SAMPLES = 64;
/** Samples of the evaluation batch taken from labelled validation data (accuracy). */
const EVAL_VALIDATION_SAMPLES = 512;

function post(m: WorkerMessage, transfer: Transferable[] = []): void {
  self.postMessage(m, transfer);
}

/** Deterministic uniform [0, 1) values, so reports are reproducible. */
function uniform(n: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length: n }, random);
}

/** The first `n` samples of an N×… tensor. */
function head(t: Tensor, n: number): Tensor {
  const per = t.data.length / Math.max(t.dims[0], 1);
  return { type: t.type, dims: [n, ...t.dims.slice(1)], data: t.data.slice(0, n * per) } as Tensor;
}

/** Real samples to evaluate on, and what they are. */
interface EvalSource {
  x: Tensor;
  labels?: Int32Array;
  samples: number;
  what: string;
}

/**
 * The data the result is evaluated on against its parent: labelled validation data (then there
 * is an accuracy), else the first calibration samples, else the first training samples.
 */
function evaluationSource(
  calibration: Tensor | undefined,
  train: { inputs: Tensor; labels?: Int32Array } | undefined,
  validation: { inputs: Tensor; labels?: Int32Array } | undefined,
): EvalSource | undefined {
  if (validation) {
    const n = Math.min(
      validation.labels ? EVAL_VALIDATION_SAMPLES : EVAL_SAMPLES,
      validation.inputs.dims[0],
    );
    return {
      x: head(validation.inputs, n),
      labels: validation.labels?.slice(0, n),
      samples: n,
      what: `the first ${n} validation samples${
        validation.labels ? " (labelled)" : " (no labels)"
      }`,
    };
  }
  if (calibration) {
    const n = Math.min(EVAL_SAMPLES, calibration.dims[0]);
    return {
      x: head(calibration, n),
      samples: n,
      what: `the first ${n} calibration samples (no labels)`,
    };
  }
  if (train) {
    const n = Math.min(EVAL_SAMPLES, train.inputs.dims[0]);
    return {
      x: head(train.inputs, n),
      labels: train.labels?.slice(0, n),
      samples: n,
      what: `the first ${n} training samples (seen in training${
        train.labels ? "" : "; no labels"
      })`,
    };
  }
  return undefined;
}

/**
 * The batch the result is evaluated on against its parent: real samples when the job has some
 * (evaluationSource), else uniform [0, 1) inputs (which measure agreement with the parent, not
 * accuracy). Undefined, with the reason, when no batch can be made.
 */
function evaluationInputs(
  inputs: readonly TensorSpec[],
  source: EvalSource | undefined,
): Record<string, Tensor> | string {
  if (source && inputs.length === 1) return { [inputs[0].name]: source.x };
  const feeds: Record<string, Tensor> = {};
  for (const [k, v] of inputs.entries()) {
    if (v.type !== "float32") return `input '${v.name}' is ${v.type}, not float32`;
    if (!v.dims.length) return `input '${v.name}' is a scalar`;
    const rest = v.dims.slice(1);
    if (rest.some((d) => typeof d !== "number" || d < 1)) {
      return `input '${v.name}' has dims [${v.dims}]: only the batch dim may be symbolic`;
    }
    const batch = typeof v.dims[0] === "number" && v.dims[0] > 0 ? v.dims[0] : EVAL_SAMPLES;
    const dims = [batch, ...(rest as number[])];
    const count = dims.reduce((a, b) => a * b, 1);
    if (count > 1 << 24) return `input '${v.name}' is too large for a quick evaluation`;
    feeds[v.name] = { type: "float32", dims, data: uniform(count, 0x5eed + k) };
  }
  return feeds;
}

async function run(start: WorkerStart): Promise<void> {
  post({ type: "progress", progress: 0, stage: "starting" });
  if (start.delayMs > 0) {
    post({ type: "progress", progress: 0, stage: "test delay" });
    await sleep(start.delayMs);
  }
  const bytes = await Deno.readFile(start.modelPath);
  const externalData: Record<string, Uint8Array> = {};
  for (const [loc, path] of Object.entries(start.external)) {
    externalData[loc] = await Deno.readFile(path);
  }
  const hasExternal = Object.keys(externalData).length > 0;
  let calibrationTensor: Tensor | undefined;
  let calibration: Iterable<Record<string, Tensor>> | undefined;
  if (start.calibrationPath) {
    calibrationTensor = parseNpy(await Deno.readFile(start.calibrationPath));
    calibration = batchFeeds(
      start.calibrationInput,
      calibrationTensor,
      start.calibrationBatch,
    );
  }
  const train = await readData(start.train);
  const validation = await readData(start.validation);
  checkCancelled();
  const epochDelay = start.epochDelayMs ?? 0;
  let last = -1, lastStage = "", calibrated = false;
  const { model, external, report } = await compress(bytes, start.recipe as string, {
    calibration,
    externalData: hasExternal ? externalData : undefined,
    externalDataThreshold: start.externalDataThreshold,
    externalDataLocation: RESULT_EXTERNAL_LOCATION,
    train,
    validation,
    signal: cancel.signal,
    // Checkpoints only for fine-tuning runs; written into the job's directory.
    checkpoint: train
      ? {
        load: async () => {
          const latest = await latestCheckpoint(start.jobDir);
          if (!latest) return undefined;
          const bytes = await Deno.readFile(latest.path);
          post({ type: "resumed", epoch: latest.epoch });
          return bytes;
        },
        save: async (bytes, epoch) => {
          if (epochDelay > 0) await sleep(epochDelay);
          await saveCheckpoint(start.jobDir, bytes, epoch);
          post({ type: "checkpoint", epoch });
        },
      }
      : undefined,
    onProgress: (p, stage, epoch) => {
      if (epoch) post({ type: "epoch", epoch: { ...epoch } });
      // compress() reports this stage only when it runs static int8 calibration.
      if (stage === "calibration") calibrated = true;
      // compress() may call this per calibration batch: pass on percent steps and new stages.
      if (stage === lastStage && Math.floor(p * 100) === Math.floor(last * 100)) return;
      last = p;
      lastStage = stage;
      // compress() ends on "done"; the job is not done until the result is validated.
      post({ type: "progress", progress: p * 0.9, stage: stage === "done" ? "compressed" : stage });
    },
  });

  if (calibrationTensor && !calibrated) {
    report.notes.push(
      `the calibration data (${calibrationTensor.dims[0]} samples) was used ` +
        (validation
          ? "for nothing (the evaluation used the validation data)"
          : "only for the evaluation") +
        `: the recipe quantizes no layer with static int8, the only method that calibrates`,
    );
  }

  // The result must load in the engine before it becomes a model resource.
  checkCancelled();
  post({ type: "progress", progress: 0.9, stage: "validating" });
  const resultExternal = Object.keys(external).length ? external : undefined;
  const session = await Session.create(model, { externalData: resultExternal });
  const inputs = session.inputMetadata.map((v) => ({ name: v.name, type: v.type, dims: v.dims }));
  const outputs = session.outputMetadata.map((v) => ({ name: v.name, type: v.type, dims: v.dims }));
  await session.release();
  const opHistogram = inspectModel(model, { externalData: resultExternal }).ops;

  checkCancelled();
  post({ type: "progress", progress: 0.93, stage: "evaluating" });
  let evaluation: EvalReport | undefined, evaluationNote: string | undefined;
  const source = evaluationSource(calibrationTensor, train, validation);
  const data = evaluationInputs(inputs, source);
  if (typeof data === "string") evaluationNote = `no evaluation against the parent: ${data}`;
  else if (hasExternal || resultExternal) {
    evaluationNote = `no evaluation against the ${hasExternal ? "parent" : "result"}: it keeps ` +
      `its weights in external files`;
  } else {
    try {
      evaluation = await evaluate(model, { inputs: data, labels: source?.labels }, {
        reference: bytes,
        latencyRuns: 10,
      });
      evaluation.notes.unshift(
        source
          ? `evaluated on ${source.what}`
          : `evaluated on ${evaluation.samples} synthetic uniform [0, 1) samples (no labels): ` +
            `agreement with the parent, not accuracy`,
      );
    } catch (e) {
      evaluationNote = `no evaluation against the parent: ${(e as Error).message}`;
    }
  }
  checkCancelled();
  post(
    {
      type: "done",
      model,
      external,
      report,
      evaluation,
      evaluationNote,
      inputs,
      outputs,
      opHistogram,
    },
    [model.buffer as ArrayBuffer, ...Object.values(external).map((f) => f.buffer as ArrayBuffer)],
  );
}

serve(run, "compression");
