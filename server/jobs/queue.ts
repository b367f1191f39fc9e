// The compression job queue. Its state lives in SQLite (jobs, events), so it survives restarts:
//
//   queued ──start──▶ running ──▶ succeeded | failed
//      ▲  │              │ │
//      │  └──cancel──┐   │ └──cancel──▶ cancelled
//      │             ▼   │
//      │        cancelled│
//      └── restart / ────┘   (a job found `running` at startup, or stopped by a graceful
//          shutdown             shutdown, runs again: from the beginning, or — fine-tuning —
//                               from its last checkpoint, after the last finished epoch)
//
// Jobs run oldest first, `concurrency` at a time (default 1), each in its own Web Worker
// (worker.ts). Every progress step and state change is an event row (numbered per job) and is
// pushed to subscribers (the SSE streams). At startup, recover() re-queues every job left
// `running` — unless it has been started `maxAttempts` times already (a job that keeps killing
// the server must not loop forever) — and fails every unfinished job whose inputs are gone.
//
// Cancelling a running job sends its worker "cancel" (an AbortSignal into compress()); a
// worker that has not stopped within CANCEL_GRACE_MS (busy in a synchronous stretch) is
// terminated. Either way the job ends `cancelled` with nothing stored: a result that arrives
// meanwhile is discarded (checked again inside the transaction that would store it). A
// finished job's input files and its directory (checkpoints) are deleted.
import type { CompressReport, EvalReport } from "../../src/mod.ts";
import {
  type EventRecord,
  jobInputFiles,
  type JobRecord,
  type JobState,
  type ModelRecord,
  type Store,
  type TensorSpec,
  TERMINAL_STATES,
  type TrainingState,
} from "../store/db.ts";
import { HttpError } from "../errors.ts";
import type { ArtifactStore } from "../store/artifacts.ts";
import type { JobFiles } from "../store/checkpoints.ts";
import type { Catalog } from "../catalog.ts";
import type { ServerMetrics } from "../metrics.ts";
import type { Logger } from "../log.ts";
import type { WorkerCommand, WorkerMessage, WorkerStart } from "./worker.ts";
import type { SearchWorkerMessage, SearchWorkerStart } from "./search_worker.ts";

export interface QueueOptions {
  concurrency: number;
  timeoutMs: number;
  maxAttempts: number;
  /** Weights above which a result keeps them in an external data file (default: 2 GiB − 64 MiB). */
  externalDataThreshold?: number;
  /** Test hook passed to the worker (SQZ_TEST_JOB_DELAY_MS). */
  delayMs: number;
  /** Test hook passed to the worker (SQZ_TEST_EPOCH_DELAY_MS): a pause before each checkpoint. */
  epochDelayMs?: number;
  /** Test hook passed to the search worker (SQZ_TEST_TRIAL_DELAY_MS): a pause after each trial. */
  trialDelayMs?: number;
  /** How long a cancelled worker has to stop before it is terminated (default 2 s). */
  cancelGraceMs?: number;
  /** Samples per calibration batch of models whose batch dim is dynamic (default 32). */
  calibrationBatch?: number;
}

/**
 * Samples per calibration batch: the input's fixed batch size (the model runs no other), or
 * `dynamic` when its batch dim is symbolic.
 */
export function calibrationBatch(input: TensorSpec, dynamic = 32): number {
  const d = input.dims[0];
  return typeof d === "number" && d > 0 ? d : dynamic;
}

interface Running {
  worker: Worker;
  startedAt: number;
  timer: ReturnType<typeof setTimeout>;
  /** Set once the job has reached a final state (or was handed back to the queue). */
  settled: boolean;
  /** A client cancelled the job: whatever the worker says next, it ends `cancelled`. */
  cancelling: boolean;
  /** Terminates a cancelled worker that does not stop by itself. */
  killTimer?: ReturnType<typeof setTimeout>;
}

/** Thrown inside the transaction that would store a result the client cancelled meanwhile. */
class CancelledWhileStoring extends Error {}

const CANCEL_GRACE_MS = 2000;

export type Listener = (ev: EventRecord) => void;

const TERMINAL = new Set<JobState>(TERMINAL_STATES);

export function isTerminalEvent(ev: EventRecord): boolean {
  return ev.type === "state" && TERMINAL.has(ev.data.state as JobState);
}

export class JobQueue {
  #running = new Map<string, Running>();
  #listeners = new Map<string, Set<Listener>>();
  #accepting = true;
  /** Jobs cancelled while their result was being stored (the worker is gone already). */
  #cancelStoring = new Set<string>();
  /** Finished jobs whose files are being deleted. */
  #cleanups = new Map<string, Promise<void>>();

  constructor(
    private readonly store: Store,
    private readonly artifacts: ArtifactStore,
    private readonly files: JobFiles,
    private readonly catalog: Catalog,
    private readonly metrics: ServerMetrics,
    private readonly log: Logger,
    private readonly options: QueueOptions,
  ) {}

  get runningCount(): number {
    return this.#running.size;
  }

  get accepting(): boolean {
    return this.#accepting;
  }

  /** Listens to a job's events; returns the unsubscribe function. */
  subscribe(jobId: string, fn: Listener): () => void {
    let set = this.#listeners.get(jobId);
    if (!set) this.#listeners.set(jobId, set = new Set());
    set.add(fn);
    return () => {
      set.delete(fn);
      if (!set.size) this.#listeners.delete(jobId);
    };
  }

  /** Persists an event and pushes it to the job's subscribers. */
  emit(jobId: string, type: string, data: Record<string, unknown>): EventRecord {
    const ev = this.store.addEvent(jobId, type, data);
    for (const fn of this.#listeners.get(jobId) ?? []) {
      try {
        fn(ev);
      } catch { /* a broken subscriber must not break the queue */ }
    }
    return ev;
  }

  /** What is missing for the job to run, or undefined when its inputs are all there. */
  async #missingInput(job: JobRecord): Promise<string | undefined> {
    const m = this.store.getModel(job.modelId);
    if (!m) return `its input model ${job.modelId} was deleted`;
    for (const sha of [m.sha256, ...m.external.map((f) => f.sha256)]) {
      if (!(await this.artifacts.has(sha))) {
        return `the file of its input model ${job.modelId} (${sha}) is missing`;
      }
    }
    for (const f of jobInputFiles(job)) {
      if (!(await this.artifacts.has(f.sha256))) return `its ${f.role} (${f.sha256}) is missing`;
    }
    return undefined;
  }

  /** Where a job handed back to the queue goes on from, as a sentence for its event. */
  async #resumeNote(job: JobRecord): Promise<string> {
    if (job.kind === "search") {
      const n = await this.files.trials(job.id).count().catch(() => 0);
      return n
        ? `it resumes with its ${n} finished trial${n === 1 ? "" : "s"} kept`
        : "it runs again from the start (no trial had finished)";
    }
    const cp = await this.files.latestCheckpoint(job.id).catch(() => undefined);
    return cp
      ? `it resumes from its checkpoint after epoch ${cp.epoch}`
      : "it runs again from the start";
  }

  /** Startup: re-queue or fail what a crash or a stop left unfinished. */
  async recover(): Promise<{ requeued: number; failed: number }> {
    let requeued = 0, failed = 0;
    for (const job of this.store.listJobs({ state: "running" })) {
      if (job.attempts >= this.options.maxAttempts) {
        this.#fail(job, {
          code: "interrupted",
          message: `the server stopped while this job ran, ${job.attempts} times; not retried`,
        });
        failed++;
        continue;
      }
      const resume = await this.#resumeNote(job);
      this.store.transaction(() => {
        this.store.updateJob(job.id, { state: "queued", progress: 0, stage: "queued" });
        this.emit(job.id, "state", {
          state: "queued",
          progress: 0,
          stage: "queued",
          reason: `the server restarted while the job was running: ${resume}`,
        });
      });
      requeued++;
    }
    for (const job of this.store.listJobs({ state: "queued" })) {
      const missing = await this.#missingInput(job);
      if (missing) {
        this.#fail(job, { code: "input_missing", message: `cannot run: ${missing}` });
        failed++;
      }
    }
    // Job directories: only unfinished jobs keep theirs (checkpoints), without temp files.
    const unfinished = new Set(
      [...this.store.listJobs({ state: "queued" }), ...this.store.listJobs({ state: "running" })]
        .map((j) => j.id),
    );
    await this.files.sweep(unfinished);
    if (requeued || failed) this.log.info("jobs recovered", { requeued, failed });
    return { requeued, failed };
  }

  /** Starts queued jobs while there is room. */
  kick(): void {
    while (this.#accepting && this.#running.size < this.options.concurrency) {
      const job = this.store.nextQueuedJob();
      if (!job) return;
      this.#start(job).catch((e) => {
        this.log.error("job start failed", { job: job.id, error: String(e) });
      });
    }
  }

  async #start(job: JobRecord): Promise<void> {
    const startedAt = new Date();
    // Marked running at once (synchronously), so kick() does not pick it twice.
    this.store.transaction(() => {
      this.store.updateJob(job.id, {
        state: "running",
        progress: 0,
        stage: "starting",
        startedAt: startedAt.toISOString(),
        attempts: job.attempts + 1,
      });
      this.emit(job.id, "state", { state: "running", progress: 0, stage: "starting" });
    });
    const search = job.kind === "search";
    const worker = new Worker(
      new URL(search ? "./search_worker.ts" : "./worker.ts", import.meta.url),
      { type: "module" },
    );
    const r: Running = {
      worker,
      startedAt: performance.now(),
      timer: setTimeout(() => {
        this.#finishRun(job.id, r);
        this.#fail(job, {
          code: "timeout",
          message: `the job ran longer than ${this.options.timeoutMs} ms and was stopped`,
        }, r.startedAt);
      }, this.options.timeoutMs),
      settled: false,
      cancelling: false,
    };
    this.#running.set(job.id, r);
    this.log.info("job started", { job: job.id, model: job.modelId, attempt: job.attempts + 1 });

    const missing = await this.#missingInput(job);
    if (missing) {
      this.#finishRun(job.id, r);
      this.#fail(job, { code: "input_missing", message: `cannot run: ${missing}` }, r.startedAt);
      return;
    }
    const m = this.store.getModel(job.modelId)!;
    const external: Record<string, string> = {};
    for (const f of m.external) external[f.location] = this.artifacts.path(f.sha256);
    // Fine-tuning progress: what a resumed run goes on from (its checkpoint's epoch), or none.
    const checkpoint = await this.files.latestCheckpoint(job.id).catch(() => undefined);
    let training: TrainingState | null = checkpoint
      ? {
        epochs: job.training?.epochs,
        epochsDone: checkpoint.epoch,
        checkpointEpoch: checkpoint.epoch,
      }
      : null;
    if (r.settled) return;
    this.store.updateJob(job.id, { training });
    let lastProgress = 0, lastStage = "starting";
    // Trials already sent as events (an earlier attempt's): a resumed search that reports its
    // kept trials again does not repeat them.
    const sentTrials = new Set<string>();
    if (search) {
      for (const ev of this.store.events(job.id)) {
        if (ev.type === "trial") sentTrials.add(`${ev.data.id}:${ev.data.hash}`);
      }
    }
    worker.onmessage = (e: MessageEvent<WorkerMessage | SearchWorkerMessage>) => {
      if (r.settled) return;
      const msg = e.data;
      if (
        r.cancelling &&
        (msg.type === "done" || msg.type === "searchDone" || msg.type === "error" ||
          msg.type === "cancelled")
      ) {
        // Cancelled: a result that arrives anyway is discarded, a failure is not one.
        this.#finishRun(job.id, r);
        this.#cancelled(job, r.startedAt);
        return;
      }
      if (msg.type === "trial") {
        const key = `${msg.trial.id}:${msg.trial.hash}`;
        if (sentTrials.has(key)) return;
        sentTrials.add(key);
        this.emit(job.id, "trial", { ...msg.trial, done: msg.done, total: msg.total });
      } else if (msg.type === "resumed" && "trials" in msg) {
        this.emit(job.id, "resumed", { trials: msg.trials });
      } else if (msg.type === "searchDone") {
        this.#finishRun(job.id, r);
        this.#succeedSearch(job, msg, r.startedAt).catch((err) => {
          if (err instanceof CancelledWhileStoring) return this.#cancelled(job, r.startedAt);
          this.log.error("storing a search result failed", { job: job.id, error: String(err) });
          this.#fail(job, { code: "internal", message: "storing the result failed" }, r.startedAt);
        });
      } else if (msg.type === "epoch") {
        const ep = msg.epoch;
        training = {
          ...(training ?? {}),
          epochs: ep.epochs,
          epochsDone: Math.max(training?.epochsDone ?? 0, ep.epoch),
          last: ep,
        };
        const t = training;
        this.store.transaction(() => {
          this.store.updateJob(job.id, { training: t });
          this.emit(job.id, "epoch", { ...ep });
        });
      } else if (msg.type === "checkpoint") {
        training = { ...(training ?? { epochsDone: msg.epoch }), checkpointEpoch: msg.epoch };
        const t = training;
        this.store.transaction(() => {
          this.store.updateJob(job.id, { training: t });
          this.emit(job.id, "checkpoint", { epoch: msg.epoch });
        });
      } else if (msg.type === "resumed" && "epoch" in msg) {
        training = {
          ...(training ?? {}),
          epochsDone: msg.epoch,
          checkpointEpoch: msg.epoch,
          resumedFromEpoch: msg.epoch,
        };
        const t = training;
        this.store.transaction(() => {
          this.store.updateJob(job.id, { training: t });
          this.emit(job.id, "resumed", { fromEpoch: msg.epoch });
        });
      } else if (msg.type === "cancelled") {
        // Only a cancel makes a worker say this (and r.cancelling is set then): handled above.
        this.#finishRun(job.id, r);
        this.#cancelled(job, r.startedAt);
      } else if (msg.type === "progress") {
        // Persisted at whole percents and stage changes: enough for any client, few writes.
        const p = Math.round(msg.progress * 1000) / 1000;
        if (msg.stage === lastStage && Math.floor(p * 100) <= Math.floor(lastProgress * 100)) {
          return;
        }
        lastProgress = p;
        lastStage = msg.stage;
        this.store.updateJob(job.id, { progress: p, stage: msg.stage });
        this.emit(job.id, "progress", { progress: p, stage: msg.stage });
      } else if (msg.type === "done") {
        this.#finishRun(job.id, r);
        this.#succeed(job, msg, r.startedAt).catch((err) => {
          if (err instanceof CancelledWhileStoring) return this.#cancelled(job, r.startedAt);
          this.log.error("storing a job result failed", { job: job.id, error: String(err) });
          this.#fail(job, { code: "internal", message: "storing the result failed" }, r.startedAt);
        });
      } else if (msg.type === "error") {
        this.#finishRun(job.id, r);
        this.#fail(job, { code: msg.code, message: msg.message }, r.startedAt);
      }
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      if (r.settled) return;
      this.#finishRun(job.id, r);
      if (r.cancelling) return this.#cancelled(job, r.startedAt);
      this.log.error("job worker crashed", { job: job.id, error: e.message });
      this.#fail(
        job,
        { code: "internal", message: `the ${search ? "search" : "compression"} worker crashed` },
        r.startedAt,
      );
    };
    if (search) {
      const v = job.data?.validation;
      if (!v || !job.search) {
        this.#finishRun(job.id, r);
        this.#fail(job, { code: "internal", message: "the search job has no validation data" });
        return;
      }
      const start: SearchWorkerStart = {
        type: "start",
        jobId: job.id,
        modelPath: this.artifacts.path(m.sha256),
        params: job.search,
        inputName: m.inputs[0]?.name ?? "",
        calibrationPath: job.calibration ? this.artifacts.path(job.calibration.sha256) : undefined,
        calibrationBatch: m.inputs[0]
          ? calibrationBatch(m.inputs[0], this.options.calibrationBatch)
          : 1,
        validation: {
          path: this.artifacts.path(v.sha256),
          labelsPath: job.data?.validationLabels
            ? this.artifacts.path(job.data.validationLabels.sha256)
            : undefined,
        },
        train: job.data?.train
          ? {
            path: this.artifacts.path(job.data.train.sha256),
            labelsPath: job.data.labels ? this.artifacts.path(job.data.labels.sha256) : undefined,
          }
          : undefined,
        jobDir: this.files.dir(job.id),
        delayMs: this.options.delayMs,
        trialDelayMs: this.options.trialDelayMs ?? 0,
      };
      worker.postMessage(start);
      return;
    }
    const start: WorkerStart = {
      type: "start",
      jobId: job.id,
      modelPath: this.artifacts.path(m.sha256),
      external,
      recipe: job.recipe,
      calibrationPath: job.calibration ? this.artifacts.path(job.calibration.sha256) : undefined,
      calibrationInput: m.inputs[0]?.name ?? "",
      calibrationBatch: m.inputs[0]
        ? calibrationBatch(m.inputs[0], this.options.calibrationBatch)
        : 1,
      train: job.data?.train
        ? {
          path: this.artifacts.path(job.data.train.sha256),
          labelsPath: job.data.labels ? this.artifacts.path(job.data.labels.sha256) : undefined,
        }
        : undefined,
      validation: job.data?.validation
        ? {
          path: this.artifacts.path(job.data.validation.sha256),
          labelsPath: job.data.validationLabels
            ? this.artifacts.path(job.data.validationLabels.sha256)
            : undefined,
        }
        : undefined,
      jobDir: this.files.dir(job.id),
      externalDataThreshold: this.options.externalDataThreshold,
      delayMs: this.options.delayMs,
      epochDelayMs: this.options.epochDelayMs ?? 0,
    };
    worker.postMessage(start);
  }

  /** Ends a run's worker and timers; the slot is free for the next job. */
  #finishRun(jobId: string, r: Running): void {
    if (r.settled) return;
    r.settled = true;
    clearTimeout(r.timer);
    clearTimeout(r.killTimer);
    r.worker.terminate();
    this.#running.delete(jobId);
  }

  /**
   * Cancels a queued or running job and resolves once it has ended `cancelled` — or in the
   * final state it reached first (a result stored a moment before). False when the job was
   * finished already (or does not exist).
   */
  async cancel(jobId: string): Promise<boolean> {
    const job = this.store.getJob(jobId);
    if (!job || TERMINAL.has(job.state)) return false;
    if (job.state === "queued") {
      this.#cancelled(job);
      await this.#cleanups.get(jobId);
      return true;
    }
    const grace = this.options.cancelGraceMs ?? CANCEL_GRACE_MS;
    let unsubscribe = () => {};
    const ended = new Promise<void>((resolve) => {
      unsubscribe = this.subscribe(jobId, (ev) => {
        if (isTerminalEvent(ev) || (ev.type === "state" && ev.data.state === "queued")) resolve();
      });
    });
    const r = this.#running.get(jobId);
    if (r && !r.settled) {
      if (!r.cancelling) {
        r.cancelling = true;
        this.log.info("job cancel requested", { job: jobId });
        try {
          r.worker.postMessage({ type: "cancel" } satisfies WorkerCommand);
        } catch { /* terminated meanwhile */ }
        // A worker in a long synchronous stretch does not see the message: it is terminated.
        r.killTimer = setTimeout(() => {
          if (r.settled) return;
          this.log.warn("cancelled job's worker did not stop in time: terminated", {
            job: jobId,
            graceMs: grace,
          });
          this.#finishRun(jobId, r);
          this.#cancelled(job, r.startedAt);
        }, grace);
      }
    } else {
      // The worker is done and the result is being stored: the storing transaction refuses it.
      this.#cancelStoring.add(jobId);
    }
    // Bounded: whatever happens, the caller gets an answer.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([ended, new Promise<void>((r) => timer = setTimeout(r, grace + 10_000))]);
    clearTimeout(timer);
    unsubscribe();
    await this.#cleanups.get(jobId);
    return true;
  }

  /** The job ends `cancelled`: nothing was stored; its input files and directory go. */
  #cancelled(job: JobRecord, startedAt?: number): void {
    this.#cancelStoring.delete(job.id);
    const current = this.store.getJob(job.id);
    if (!current || TERMINAL.has(current.state)) return;
    this.store.transaction(() => {
      this.store.updateJob(job.id, {
        state: "cancelled",
        stage: "cancelled",
        finishedAt: new Date().toISOString(),
      });
      this.emit(job.id, "state", {
        state: "cancelled",
        progress: current.progress,
        stage: "cancelled",
        reason: current.state === "queued"
          ? "cancelled before it started"
          : "cancelled while it was running: nothing was stored",
        ...(current.training ? { epochsDone: current.training.epochsDone } : {}),
      });
    });
    if (startedAt !== undefined) {
      this.metrics.jobDuration.observe(
        { state: "cancelled" },
        (performance.now() - startedAt) / 1000,
      );
    }
    this.metrics.jobsFinished.inc({ state: "cancelled" });
    this.log.info("job cancelled", { job: job.id, model: job.modelId, was: current.state });
    this.#dropInputs(job).finally(() => this.kick());
  }

  async #succeed(
    job: JobRecord,
    msg: Extract<WorkerMessage, { type: "done" }>,
    startedAt: number,
  ): Promise<void> {
    const report: CompressReport = msg.report;
    // The server's notes (the result's name, why there is no evaluation) go into the
    // compression report only: the evaluation already lists the compression notes it read
    // from the artifact's metadata, so appending them there would say everything twice.
    if (msg.evaluationNote) report.notes.push(msg.evaluationNote);
    const evaluation: EvalReport | undefined = msg.evaluation;
    const parent = this.store.getModel(job.modelId);
    const finishedAt = new Date().toISOString();
    const store = (name: string | undefined) =>
      this.catalog.createValidated(
        {
          bytes: msg.model,
          ...(Object.keys(msg.external).length ? { externalData: msg.external } : {}),
          name,
          parentId: job.modelId,
          jobId: job.id,
        },
        { inputs: msg.inputs, outputs: msg.outputs, opHistogram: msg.opHistogram },
        (m) => {
          // Cancelled while the file was written: the transaction rolls back, the file goes.
          if (this.#cancelStoring.has(job.id)) throw new CancelledWhileStoring();
          this.store.updateJob(job.id, {
            state: "succeeded",
            progress: 1,
            stage: "done",
            resultModelId: m.id,
            report: JSON.stringify(report),
            evaluation: evaluation ? JSON.stringify(evaluation) : null,
            finishedAt,
          });
          this.emit(job.id, "state", {
            state: "succeeded",
            progress: 1,
            stage: "done",
            resultModelId: m.id,
            bytes: m.bytes,
            ...(parent ? { parentBytes: parent.bytes } : {}),
          });
        },
      );
    // The result keeps the requested name unless another model took it meanwhile (checked
    // again in the storing transaction: an upload may take it while the file is written).
    const name = job.resultName ?? undefined;
    const taken = () =>
      report.notes.push(`the name '${name}' was taken by another model meanwhile: left unnamed`);
    let m: ModelRecord;
    if (name && this.store.getModelByName(name)) {
      taken();
      m = await store(undefined);
    } else {
      try {
        m = await store(name);
      } catch (e) {
        if (!(name && e instanceof HttpError && e.status === 409)) throw e;
        taken();
        m = await store(undefined);
      }
    }
    const seconds = (performance.now() - startedAt) / 1000;
    this.metrics.jobDuration.observe({ state: "succeeded" }, seconds);
    this.metrics.jobsFinished.inc({ state: "succeeded" });
    this.log.info("job succeeded", { job: job.id, model: job.modelId, result: m.id, seconds });
    await this.#dropInputs(job);
    this.kick();
  }

  /**
   * A search finished: its summary is the job's result. With a best model, that model is
   * registered (parentId: the searched model) in the transaction that marks the job
   * succeeded; without one (nothing met the budget) the job succeeds with `best: null`.
   */
  async #succeedSearch(
    job: JobRecord,
    msg: Extract<SearchWorkerMessage, { type: "searchDone" }>,
    startedAt: number,
  ): Promise<void> {
    const summary = msg.summary;
    const finishedAt = new Date().toISOString();
    const done = (resultModelId: string | null, extra: Record<string, unknown>) => {
      this.store.updateJob(job.id, {
        state: "succeeded",
        progress: 1,
        stage: "done",
        resultModelId,
        result: JSON.stringify(summary),
        report: msg.best ? JSON.stringify(msg.best.report) : null,
        finishedAt,
      });
      this.emit(job.id, "state", {
        state: "succeeded",
        progress: 1,
        stage: "done",
        resultModelId,
        best: summary.best
          ? { id: summary.best.trial.id, metrics: summary.best.trial.metrics }
          : null,
        pareto: summary.pareto.map((t) => t.id),
        explanation: summary.explanation,
        ...extra,
      });
    };
    let resultId: string | null = null;
    if (!msg.best) {
      const stored = this.store.transaction(() => {
        if (this.#cancelStoring.has(job.id)) throw new CancelledWhileStoring();
        const current = this.store.getJob(job.id);
        if (!current || TERMINAL.has(current.state)) return false;
        done(null, {});
        return true;
      });
      if (!stored) return;
    } else {
      const best = msg.best;
      const parent = this.store.getModel(job.modelId);
      const note = (n: string) => best.report.notes.push(n);
      note(
        `found by search job ${job.id} (strategy ${summary.strategy}, seed ${summary.seed}): ` +
          `trial ${summary.best?.trial.id}`,
      );
      const store = (name: string | undefined) =>
        this.catalog.createValidated(
          { bytes: best.model, name, parentId: job.modelId, jobId: job.id },
          { inputs: best.inputs, outputs: best.outputs, opHistogram: best.opHistogram },
          (m) => {
            if (this.#cancelStoring.has(job.id)) throw new CancelledWhileStoring();
            done(m.id, { bytes: m.bytes, ...(parent ? { parentBytes: parent.bytes } : {}) });
          },
        );
      const name = job.resultName ?? undefined;
      const taken = () =>
        note(`the name '${name}' was taken by another model meanwhile: left unnamed`);
      let m: ModelRecord;
      if (name && this.store.getModelByName(name)) {
        taken();
        m = await store(undefined);
      } else {
        try {
          m = await store(name);
        } catch (e) {
          if (!(name && e instanceof HttpError && e.status === 409)) throw e;
          taken();
          m = await store(undefined);
        }
      }
      resultId = m.id;
    }
    const seconds = (performance.now() - startedAt) / 1000;
    this.metrics.jobDuration.observe({ state: "succeeded" }, seconds);
    this.metrics.jobsFinished.inc({ state: "succeeded" });
    this.log.info("search job succeeded", {
      job: job.id,
      model: job.modelId,
      result: resultId,
      trials: summary.trials.length,
      seconds,
    });
    await this.#dropInputs(job);
    this.kick();
  }

  #fail(job: JobRecord, error: { code: string; message: string }, startedAt?: number): void {
    const current = this.store.getJob(job.id);
    if (!current || TERMINAL.has(current.state)) return;
    this.store.transaction(() => {
      this.store.updateJob(job.id, {
        state: "failed",
        error,
        finishedAt: new Date().toISOString(),
      });
      this.emit(job.id, "state", {
        state: "failed",
        progress: current.progress,
        stage: current.stage,
        error,
      });
    });
    if (startedAt !== undefined) {
      this.metrics.jobDuration.observe({ state: "failed" }, (performance.now() - startedAt) / 1000);
    }
    this.metrics.jobsFinished.inc({ state: "failed" });
    this.log.warn("job failed", { job: job.id, model: job.modelId, code: error.code });
    this.#dropInputs(job).finally(() => this.kick());
  }

  /**
   * A finished job's input files and its directory (checkpoints) are no longer needed. The
   * promise is kept until it settles, so cancel() can answer once the files are gone.
   */
  #dropInputs(job: JobRecord): Promise<void> {
    const p = this.#removeInputs(job).finally(() => {
      if (this.#cleanups.get(job.id) === p) this.#cleanups.delete(job.id);
    });
    this.#cleanups.set(job.id, p);
    return p;
  }

  async #removeInputs(job: JobRecord): Promise<void> {
    this.#cancelStoring.delete(job.id);
    const files = jobInputFiles(job).map((f) => f.sha256);
    if (files.length) {
      await this.artifacts.removeUnreferenced(this.store.referencedArtifacts(), files)
        .catch(() => {});
    }
    await this.files.remove(job.id).catch(() => {});
  }

  /**
   * Graceful shutdown: no new job starts; running ones are stopped and handed back to the
   * queue (the attempt does not count), to run again after the restart — from the start, or
   * from a fine-tuning job's last checkpoint. A job being cancelled ends cancelled.
   */
  stop(): void {
    this.#accepting = false;
    for (const [id, r] of [...this.#running]) {
      this.#finishRun(id, r);
      const job = this.store.getJob(id);
      if (!job || TERMINAL.has(job.state)) continue;
      if (r.cancelling) {
        this.#cancelled(job, r.startedAt);
        continue;
      }
      const resume = job.kind === "search"
        ? "it resumes with the trials it has finished kept"
        : job.training?.checkpointEpoch !== undefined
        ? `it resumes from its checkpoint after epoch ${job.training.checkpointEpoch}`
        : "it runs again from the start";
      this.store.transaction(() => {
        this.store.updateJob(id, {
          state: "queued",
          progress: 0,
          stage: "queued",
          attempts: Math.max(0, job.attempts - 1),
        });
        this.emit(id, "state", {
          state: "queued",
          progress: 0,
          stage: "queued",
          reason: `the server is shutting down: after it restarts, ${resume}`,
        });
      });
      this.log.info("job interrupted by shutdown", { job: id });
    }
  }
}
