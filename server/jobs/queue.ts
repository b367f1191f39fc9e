// The compression job queue. Its state lives in SQLite (jobs, events), so it survives restarts:
//
//   queued ──start──▶ running ──▶ succeeded | failed
//      ▲                 │
//      └── restart / ────┘   (a job found `running` at startup, or stopped by a graceful
//          shutdown             shutdown, runs again from the beginning)
//
// Jobs run oldest first, `concurrency` at a time (default 1), each in its own Web Worker
// (worker.ts). Every progress step and state change is an event row (numbered per job) and is
// pushed to subscribers (the SSE streams). At startup, recover() re-queues every job left
// `running` — unless it has been started `maxAttempts` times already (a job that keeps killing
// the server must not loop forever) — and fails every unfinished job whose inputs are gone.
import type { CompressReport, EvalReport } from "../../src/mod.ts";
import type {
  EventRecord,
  JobRecord,
  JobState,
  ModelRecord,
  Store,
  TensorSpec,
} from "../store/db.ts";
import { HttpError } from "../errors.ts";
import type { ArtifactStore } from "../store/artifacts.ts";
import type { Catalog } from "../catalog.ts";
import type { ServerMetrics } from "../metrics.ts";
import type { Logger } from "../log.ts";
import type { WorkerMessage, WorkerStart } from "./worker.ts";

export interface QueueOptions {
  concurrency: number;
  timeoutMs: number;
  maxAttempts: number;
  /** Test hook passed to the worker (SQZ_TEST_JOB_DELAY_MS). */
  delayMs: number;
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
}

export type Listener = (ev: EventRecord) => void;

const TERMINAL = new Set<JobState>(["succeeded", "failed"]);

export function isTerminalEvent(ev: EventRecord): boolean {
  return ev.type === "state" && TERMINAL.has(ev.data.state as JobState);
}

export class JobQueue {
  #running = new Map<string, Running>();
  #listeners = new Map<string, Set<Listener>>();
  #accepting = true;

  constructor(
    private readonly store: Store,
    private readonly artifacts: ArtifactStore,
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
    if (job.calibration && !(await this.artifacts.has(job.calibration.sha256))) {
      return `its calibration data (${job.calibration.sha256}) is missing`;
    }
    return undefined;
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
      this.store.transaction(() => {
        this.store.updateJob(job.id, { state: "queued", progress: 0, stage: "queued" });
        this.emit(job.id, "state", {
          state: "queued",
          progress: 0,
          stage: "queued",
          reason: "the server restarted while the job was running: it runs again from the start",
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
    const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
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
    let lastProgress = 0, lastStage = "starting";
    worker.onmessage = (e: MessageEvent<WorkerMessage>) => {
      if (r.settled) return;
      const msg = e.data;
      if (msg.type === "progress") {
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
      this.log.error("job worker crashed", { job: job.id, error: e.message });
      this.#fail(job, { code: "internal", message: "the compression worker crashed" }, r.startedAt);
    };
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
      delayMs: this.options.delayMs,
    };
    worker.postMessage(start);
  }

  /** Ends a run's worker and timer; the slot is free for the next job. */
  #finishRun(jobId: string, r: Running): void {
    if (r.settled) return;
    r.settled = true;
    clearTimeout(r.timer);
    r.worker.terminate();
    this.#running.delete(jobId);
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
        { bytes: msg.model, name, parentId: job.modelId, jobId: job.id },
        { inputs: msg.inputs, outputs: msg.outputs, opHistogram: msg.opHistogram },
        (m) => {
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
    await this.#dropCalibration(job);
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
    this.#dropCalibration(job).finally(() => this.kick());
  }

  /** A finished job's calibration data is no longer needed. */
  async #dropCalibration(job: JobRecord): Promise<void> {
    if (!job.calibration) return;
    await this.artifacts.removeUnreferenced(this.store.referencedArtifacts(), [
      job.calibration.sha256,
    ]).catch(() => {});
  }

  /**
   * Graceful shutdown: no new job starts; running ones are stopped and handed back to the
   * queue (the attempt does not count), to run again from the start after the restart.
   */
  stop(): void {
    this.#accepting = false;
    for (const [id, r] of [...this.#running]) {
      this.#finishRun(id, r);
      const job = this.store.getJob(id);
      if (!job || TERMINAL.has(job.state)) continue;
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
          reason:
            "the server is shutting down: the job runs again from the start after it restarts",
        });
      });
      this.log.info("job interrupted by shutdown", { job: id });
    }
  }
}
