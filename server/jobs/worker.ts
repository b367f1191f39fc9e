// The compression worker: one Web Worker per running job, so compress() (CPU-bound and
// synchronous for long stretches) never blocks the server's event loop.
//
// Protocol (structured-clone messages):
//   in   WorkerStart                               one per worker
//   out  { type: "progress", progress, stage }     progress in [0, 1], as compress() reports it
//        { type: "done", model, report, … }        the artifact (transferred) and its metadata
//        { type: "error", code, message }          a typed failure; the worker then exits
// The worker reads its inputs from the artifact store by path (the main thread passes paths
// it built from digests) and writes nothing: storing the result is the main thread's job.
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
  SqzError,
  type Tensor,
} from "../../src/mod.ts";
import type { TensorSpec } from "../store/db.ts";

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
  /** Test hook (SQZ_TEST_JOB_DELAY_MS): wait this long before compressing. */
  delayMs: number;
}

export type WorkerMessage =
  | { type: "progress"; progress: number; stage: string }
  | {
    type: "done";
    model: Uint8Array;
    report: CompressReport;
    evaluation?: EvalReport;
    evaluationNote?: string;
    inputs: TensorSpec[];
    outputs: TensorSpec[];
    opHistogram: Record<string, number>;
  }
  | { type: "error"; code: string; message: string };

/** Samples of the synthetic evaluation batch when there is no calibration data. */
const EVAL_SAMPLES = 64;

function post(m: WorkerMessage, transfer: Transferable[] = []): void {
  self.postMessage(m, transfer);
}

/** Deterministic uniform [0, 1) values, so reports are reproducible. */
function uniform(n: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length: n }, random);
}

/**
 * The batch the result is evaluated on against its parent: the first calibration samples when
 * there are some, else uniform [0, 1) inputs (which measure agreement with the parent, not
 * accuracy). Undefined, with the reason, when no batch can be made.
 */
function evaluationInputs(
  inputs: readonly TensorSpec[],
  calibration: Tensor | undefined,
): Record<string, Tensor> | string {
  if (calibration && inputs.length === 1) {
    const n = Math.min(EVAL_SAMPLES, calibration.dims[0]);
    const per = calibration.data.length / Math.max(calibration.dims[0], 1);
    return {
      [inputs[0].name]: {
        type: calibration.type,
        dims: [n, ...calibration.dims.slice(1)],
        data: calibration.data.slice(0, n * per),
      } as Tensor,
    };
  }
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
    await new Promise((r) => setTimeout(r, start.delayMs));
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
  let last = -1, lastStage = "", calibrated = false;
  const { model, report } = await compress(bytes, start.recipe as string, {
    calibration,
    externalData: hasExternal ? externalData : undefined,
    onProgress: (p, stage) => {
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
      `the calibration data (${calibrationTensor.dims[0]} samples) was used only for the ` +
        `evaluation: the recipe quantizes no layer with static int8, the only method that ` +
        `calibrates`,
    );
  }

  // The result must load in the engine before it becomes a model resource.
  post({ type: "progress", progress: 0.9, stage: "validating" });
  const session = await Session.create(model);
  const inputs = session.inputMetadata.map((v) => ({ name: v.name, type: v.type, dims: v.dims }));
  const outputs = session.outputMetadata.map((v) => ({ name: v.name, type: v.type, dims: v.dims }));
  await session.release();
  const opHistogram = inspectModel(model).ops;

  post({ type: "progress", progress: 0.93, stage: "evaluating" });
  let evaluation: EvalReport | undefined, evaluationNote: string | undefined;
  const data = evaluationInputs(inputs, calibrationTensor);
  if (typeof data === "string") evaluationNote = `no evaluation against the parent: ${data}`;
  else if (hasExternal) {
    evaluationNote = "no evaluation against the parent: it keeps its weights in external files";
  } else {
    try {
      evaluation = await evaluate(model, { inputs: data }, { reference: bytes, latencyRuns: 10 });
      evaluation.notes.unshift(
        calibrationTensor
          ? `evaluated on the first ${evaluation.samples} calibration samples (no labels)`
          : `evaluated on ${evaluation.samples} synthetic uniform [0, 1) samples (no labels): ` +
            `agreement with the parent, not accuracy`,
      );
    } catch (e) {
      evaluationNote = `no evaluation against the parent: ${(e as Error).message}`;
    }
  }
  post(
    {
      type: "done",
      model,
      report,
      evaluation,
      evaluationNote,
      inputs,
      outputs,
      opHistogram,
    },
    [model.buffer as ArrayBuffer],
  );
}

self.onmessage = (e: MessageEvent<WorkerStart>) => {
  if (e.data?.type !== "start") return;
  run(e.data).catch((err) => {
    post({
      type: "error",
      code: err instanceof SqzError ? err.code : "internal",
      message: err instanceof SqzError
        ? err.message
        : `compression failed: ${(err as Error)?.message ?? String(err)}`,
    });
  });
};
