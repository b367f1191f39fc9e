// The search worker: one Web Worker per running search job (jobs/queue.ts starts it for jobs of
// kind `search`), so search() — which builds and measures every candidate — never blocks the
// server's event loop. search() may start its own trial Workers (`concurrency`).
//
// Protocol (structured-clone messages):
//   in   SearchWorkerStart                          one per worker
//        { type: "cancel" }                         abort: search() gets an aborted signal
//   out  { type: "progress", progress, stage }      trials done / trials in all
//        { type: "resumed", trials }                this run keeps that many stored trials
//        { type: "trial", trial, done, total }      a finished trial (onTrial)
//        { type: "searchDone", summary, best? }     the summary, and the best model (bytes
//                                                   transferred, with its metadata) or none
//        { type: "cancelled" }                      stopped on "cancel"; nothing was made
//        { type: "error", code, message }           a typed failure
// Finished trials are stored as they finish in the job's directory (store/checkpoints.ts
// TrialFiles, the SearchStateStore given to search()): a restarted job loads them and search()
// treats them as cached results, so a kill -9 loses at most the trials in flight.
/// <reference lib="deno.worker" />
import {
  batchFeeds,
  type CompressReport,
  inspectModel,
  parseNpy,
  type Recipe,
  search,
  type SearchOptions,
  type SearchResult,
  Session,
  type Trial,
} from "../../src/mod.ts";
import type { SearchParams, TensorSpec } from "../store/db.ts";
import { TrialFiles } from "../store/checkpoints.ts";
import { abortError, cancel, type DataFiles, readData, serve, sleep } from "./worker_runtime.ts";

export interface SearchWorkerStart {
  type: "start";
  jobId: string;
  modelPath: string;
  params: SearchParams;
  /** The model's single input, the data's key. */
  inputName: string;
  calibrationPath?: string;
  /** Samples per calibration batch: the input's fixed batch size, or 32 when it is dynamic. */
  calibrationBatch: number;
  validation: DataFiles;
  train?: DataFiles;
  /** The job's own directory: its stored trials. */
  jobDir: string;
  /** Test hook (SQZ_TEST_JOB_DELAY_MS): wait this long before searching. */
  delayMs: number;
  /** Test hook (SQZ_TEST_TRIAL_DELAY_MS): wait this long after storing each trial. */
  trialDelayMs: number;
}

/** A trial as the summary and the `trial` events show it. */
export interface TrialView {
  id: number;
  phase?: string;
  recipe: Recipe;
  hash: string;
  assignment: Trial["assignment"];
  metrics: Trial["metrics"];
  feasible: boolean;
  predicted?: Trial["predicted"];
  earlyRejected?: boolean;
  error?: string;
  durationMs: number;
}

/** What a finished search job records (the job's `result`; the report's `search`). */
export interface SearchSummary {
  strategy: string;
  seed: number;
  trialsRequested: number;
  budget: SearchResult["budget"];
  objectives: SearchResult["objectives"];
  reference: SearchResult["reference"];
  baseline: { float: TrialView; int8: TrialView };
  /** The best feasible trial (first objective), or null: nothing met the budget. */
  best: { trial: TrialView; recipe: Recipe } | null;
  /** The Pareto front: ids and metrics, sorted by the first objective. */
  pareto: { id: number; metrics: Trial["metrics"]; recipe: Recipe }[];
  explanation: string[];
  /** Normalized Pareto hypervolume of the trials, when search() reports it. */
  hypervolume?: number;
  /** Proposals the cost model skipped, when search() reports it. */
  skipped?: number;
  /** Trials kept from earlier attempts (a restart), when there were some. */
  resumedTrials?: number;
  trials: TrialView[];
  sensitivity?: SearchResult["sensitivity"];
  space: SearchResult["space"];
}

export type SearchWorkerCommand = SearchWorkerStart | { type: "cancel" };

export type SearchWorkerMessage =
  | { type: "progress"; progress: number; stage: string }
  | { type: "resumed"; trials: number }
  | { type: "trial"; trial: TrialView; done: number; total: number }
  | { type: "cancelled" }
  | {
    type: "searchDone";
    summary: SearchSummary;
    best?: {
      model: Uint8Array;
      report: CompressReport;
      inputs: TensorSpec[];
      outputs: TensorSpec[];
      opHistogram: Record<string, number>;
    };
  }
  | { type: "error"; code: string; message: string };

function post(m: SearchWorkerMessage, transfer: Transferable[] = []): void {
  self.postMessage(m, transfer);
}

export function trialView(t: Trial): TrialView {
  return {
    id: t.id,
    ...(t.phase !== undefined ? { phase: t.phase } : {}),
    recipe: t.recipe,
    hash: t.hash,
    assignment: t.assignment,
    metrics: t.metrics,
    feasible: t.feasible,
    ...(t.predicted !== undefined ? { predicted: t.predicted } : {}),
    ...(t.earlyRejected ? { earlyRejected: true } : {}),
    ...(t.error !== undefined ? { error: t.error } : {}),
    durationMs: t.durationMs,
  };
}

/** What search() returns beyond the SearchResult contract (hypervolume, skipped), if anything. */
function extras(r: SearchResult): Pick<SearchSummary, "hypervolume" | "skipped"> {
  const x = r as SearchResult & { hypervolume?: unknown; skipped?: unknown };
  return {
    ...(typeof x.hypervolume === "number" ? { hypervolume: x.hypervolume } : {}),
    ...(typeof x.skipped === "number" ? { skipped: x.skipped } : {}),
  };
}

async function run(start: SearchWorkerStart): Promise<void> {
  post({ type: "progress", progress: 0, stage: "starting" });
  if (start.delayMs > 0) {
    post({ type: "progress", progress: 0, stage: "test delay" });
    await sleep(start.delayMs);
  }
  const p = start.params;
  const bytes = await Deno.readFile(start.modelPath);
  const validation = (await readData(start.validation))!;
  const train = await readData(start.train);
  // An array, not a generator: search() calibrates many candidates (and may clone the data
  // into its trial Workers).
  const calibration = start.calibrationPath
    ? [
      ...batchFeeds(
        start.inputName,
        parseNpy(await Deno.readFile(start.calibrationPath)),
        start.calibrationBatch,
      ),
    ]
    : undefined;
  if (cancel.signal.aborted) throw abortError();

  const files = new TrialFiles<Trial>(start.jobDir);
  const kept = await files.load();
  if (kept.length) post({ type: "resumed", trials: kept.length });
  post({ type: "progress", progress: 0, stage: kept.length ? "resuming" : "baselines" });
  const options: SearchOptions = {
    data: {
      ...(calibration ? { calibration } : {}),
      validation: {
        inputs: { [start.inputName]: validation.inputs },
        ...(validation.labels ? { labels: validation.labels } : {}),
      },
      ...(train
        ? {
          train: {
            inputs: { [start.inputName]: train.inputs },
            ...(train.labels ? { labels: train.labels } : {}),
          },
        }
        : {}),
    },
    budget: p.budget,
    objectives: p.objectives as SearchOptions["objectives"],
    strategy: p.strategy as SearchOptions["strategy"],
    trials: p.trials,
    seed: p.seed,
    concurrency: p.concurrency,
    ...(p.space ? { space: p.space as SearchOptions["space"] } : {}),
    signal: cancel.signal,
    state: {
      load: () => Promise.resolve(kept),
      append: async (t: Trial) => {
        await files.append(t);
        if (start.trialDelayMs > 0) await sleep(start.trialDelayMs);
      },
    },
    onTrial: (t, done, total) => {
      post({ type: "trial", trial: trialView(t), done, total });
      post({
        type: "progress",
        progress: total > 0 ? Math.min(0.95, (done / total) * 0.95) : 0,
        stage: t.phase ? `trials (${t.phase})` : "trials",
      });
    },
  };
  const r = await search(bytes, options);
  if (cancel.signal.aborted) throw abortError();

  const summary: SearchSummary = {
    strategy: p.strategy,
    seed: p.seed,
    trialsRequested: p.trials,
    budget: r.budget,
    objectives: r.objectives,
    reference: r.reference,
    baseline: { float: trialView(r.baseline.float), int8: trialView(r.baseline.int8) },
    best: r.best ? { trial: trialView(r.best.trial), recipe: r.best.recipe } : null,
    pareto: r.pareto.map((t) => ({ id: t.id, metrics: t.metrics, recipe: t.recipe })),
    explanation: r.explanation,
    ...extras(r),
    ...(kept.length ? { resumedTrials: kept.length } : {}),
    trials: r.trials.map(trialView),
    ...(r.sensitivity ? { sensitivity: r.sensitivity } : {}),
    space: r.space,
  };
  if (!r.best) {
    post({ type: "searchDone", summary });
    return;
  }
  // The best model must load in the engine before it becomes a model resource.
  post({ type: "progress", progress: 0.97, stage: "validating" });
  const model = r.best.model;
  const session = await Session.create(model);
  const inputs = session.inputMetadata.map((v) => ({ name: v.name, type: v.type, dims: v.dims }));
  const outputs = session.outputMetadata.map((v) => ({ name: v.name, type: v.type, dims: v.dims }));
  await session.release();
  const opHistogram = inspectModel(model).ops;
  if (cancel.signal.aborted) throw abortError();
  post(
    {
      type: "searchDone",
      summary,
      best: { model, report: r.best.report, inputs, outputs, opHistogram },
    },
    [model.buffer as ArrayBuffer],
  );
}

serve(run, "search");
