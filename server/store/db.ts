// Metadata and the job queue in SQLite (node:sqlite), one file: <data>/sqz.db.
//
// WAL mode: readers never block the writer, and a committed transaction survives a killed
// process (synchronous=NORMAL loses at most the last transactions on an OS crash, never
// consistency). The schema version is PRAGMA user_version; MIGRATIONS[i] takes version i to
// i + 1, each in one transaction, so a server started on an older data dir upgrades it.
//
// Tables:
//   models  one row per model resource; the ONNX bytes are the artifact `sha256`, external data
//           files are artifacts listed in `external` (JSON [{ location, sha256, bytes }]);
//           `bytes` is the model's whole size, the .onnx plus its external files.
//   jobs    compression jobs: the queue is `state = 'queued'` by `created_at`. Their input
//           files (calibration, training and validation data) are artifacts named in
//           `calibration` and `data`; `training` is the fine-tuning progress (epochs done, the
//           last checkpoint's epoch), updated at every finished epoch.
//           `kind` is `compress` or `search`; a search job keeps its parameters in `search`
//           and, once finished, its summary (baselines, Pareto front, best trial,
//           explanation, every trial) in `result`; its finished trials while it runs are
//           files in its job directory (store/checkpoints.ts), which a restart resumes from.
//   events  each job's progress and state changes, numbered per job from 1 (the SSE ids).
import { DatabaseSync } from "node:sqlite";
import { ArgumentError } from "../../src/mod.ts";

export type Dim = number | string;

export interface TensorSpec {
  name: string;
  /** Engine tensor type: float32, int64, … */
  type: string;
  dims: Dim[];
}

export interface ExternalFile {
  location: string;
  sha256: string;
  bytes: number;
}

export interface ModelRecord {
  id: string;
  name: string | null;
  sha256: string;
  /** The model's size: the .onnx artifact plus its external data files (each once). */
  bytes: number;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  opHistogram: Record<string, number>;
  external: ExternalFile[];
  parentId: string | null;
  jobId: string | null;
  createdAt: string;
}

export type JobState = "queued" | "running" | "succeeded" | "failed" | "cancelled";
export const JOB_STATES: readonly JobState[] = [
  "queued",
  "running",
  "succeeded",
  "failed",
  "cancelled",
];
export const TERMINAL_STATES: readonly JobState[] = ["succeeded", "failed", "cancelled"];

/** A .npy file a job reads: the artifact and what its header says. */
export interface NpyInfo {
  sha256: string;
  bytes: number;
  type: string;
  dims: number[];
}

export type CalibrationInfo = NpyInfo;

/** A fine-tuning job's data files (multipart `train`, `labels`, `validation`, …). */
export interface JobData {
  train?: NpyInfo;
  labels?: NpyInfo;
  validation?: NpyInfo;
  validationLabels?: NpyInfo;
}

/** One finished epoch, as compress() reports it (src/train/types.ts EpochProgress). */
export interface EpochRecord {
  epoch: number;
  epochs: number;
  loss: number;
  trainAccuracy?: number;
  valAccuracy?: number;
  valAgreement?: number;
  lr: number;
  ms: number;
}

/** Where a fine-tuning job is. */
export interface TrainingState {
  /** Epochs the recipe asks for (known from the first finished epoch). */
  epochs?: number;
  /** Epochs finished (over all attempts: a resumed run continues the count). */
  epochsDone: number;
  /** The epoch of the last checkpoint written (the job resumes after it). */
  checkpointEpoch?: number;
  /** The epoch this attempt resumed after, when it did. */
  resumedFromEpoch?: number;
  /** The last finished epoch. */
  last?: EpochRecord;
}

export type JobKind = "compress" | "search";

/**
 * A search job's parameters as validated by the route (src/search/types.ts SearchOptions,
 * without the data, which are the job's files).
 */
export interface SearchParams {
  budget: { metric: "accuracy" | "agreement" | "kl"; maxDrop: number; relative?: boolean };
  objectives: string[];
  strategy: string;
  trials: number;
  seed: number;
  concurrency: number;
  space?: { methods?: string[]; layers?: Record<string, string[]> };
}

export interface JobRecord {
  id: string;
  /** compress (the default) or search. */
  kind: JobKind;
  /** A search job's parameters (null for compress jobs). */
  search: SearchParams | null;
  /** A finished search job's summary as JSON text (null otherwise). */
  result: string | null;
  modelId: string;
  state: JobState;
  progress: number;
  stage: string;
  /** The recipe as the client gave it (a preset string or an object). */
  recipe: unknown;
  /** Name to give the compressed model. */
  resultName: string | null;
  calibration: CalibrationInfo | null;
  /** Training and validation data of a fine-tuning recipe. */
  data: JobData | null;
  /** Fine-tuning progress; null until the first epoch ends (or without fine-tuning). */
  training: TrainingState | null;
  resultModelId: string | null;
  error: { code: string; message: string } | null;
  /** The CompressReport as JSON text. */
  report: string | null;
  /** The EvalReport (result against parent) as JSON text, when one could be made. */
  evaluation: string | null;
  /** Times the job was started (a restart that finds it running starts it again). */
  attempts: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface EventRecord {
  jobId: string;
  seq: number;
  at: string;
  type: string;
  data: Record<string, unknown>;
}

const MIGRATIONS: string[] = [
  `CREATE TABLE models (
     id TEXT PRIMARY KEY,
     name TEXT UNIQUE,
     sha256 TEXT NOT NULL,
     bytes INTEGER NOT NULL,
     inputs TEXT NOT NULL,
     outputs TEXT NOT NULL,
     op_histogram TEXT NOT NULL,
     external TEXT NOT NULL DEFAULT '[]',
     parent_id TEXT,
     job_id TEXT,
     created_at TEXT NOT NULL
   );
   CREATE INDEX models_sha ON models(sha256);
   CREATE TABLE jobs (
     id TEXT PRIMARY KEY,
     model_id TEXT NOT NULL,
     state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
     progress REAL NOT NULL DEFAULT 0,
     stage TEXT NOT NULL DEFAULT 'queued',
     recipe TEXT NOT NULL,
     result_name TEXT,
     calibration TEXT,
     result_model_id TEXT,
     error TEXT,
     report TEXT,
     evaluation TEXT,
     attempts INTEGER NOT NULL DEFAULT 0,
     created_at TEXT NOT NULL,
     started_at TEXT,
     finished_at TEXT
   );
   CREATE INDEX jobs_state ON jobs(state, created_at);
   CREATE INDEX jobs_model ON jobs(model_id);
   CREATE TABLE events (
     job_id TEXT NOT NULL,
     seq INTEGER NOT NULL,
     at TEXT NOT NULL,
     type TEXT NOT NULL,
     data TEXT NOT NULL,
     PRIMARY KEY (job_id, seq)
   );`,
  // 2: fine-tuning. Jobs gain their training / validation data files (`data`), their training
  // progress (`training`) and the state `cancelled`; SQLite cannot change a CHECK constraint,
  // so the table is rebuilt.
  `CREATE TABLE jobs_v2 (
     id TEXT PRIMARY KEY,
     model_id TEXT NOT NULL,
     state TEXT NOT NULL
       CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
     progress REAL NOT NULL DEFAULT 0,
     stage TEXT NOT NULL DEFAULT 'queued',
     recipe TEXT NOT NULL,
     result_name TEXT,
     calibration TEXT,
     data TEXT,
     training TEXT,
     result_model_id TEXT,
     error TEXT,
     report TEXT,
     evaluation TEXT,
     attempts INTEGER NOT NULL DEFAULT 0,
     created_at TEXT NOT NULL,
     started_at TEXT,
     finished_at TEXT
   );
   INSERT INTO jobs_v2 (id, model_id, state, progress, stage, recipe, result_name, calibration,
     result_model_id, error, report, evaluation, attempts, created_at, started_at, finished_at)
   SELECT id, model_id, state, progress, stage, recipe, result_name, calibration,
     result_model_id, error, report, evaluation, attempts, created_at, started_at, finished_at
   FROM jobs;
   DROP TABLE jobs;
   ALTER TABLE jobs_v2 RENAME TO jobs;
   CREATE INDEX jobs_state ON jobs(state, created_at);
   CREATE INDEX jobs_model ON jobs(model_id);`,
  // 3: a model's `bytes` counts its external data files (it was the .onnx alone).
  `UPDATE models SET bytes = bytes + (
     SELECT COALESCE(SUM(json_extract(value, '$.bytes')), 0) FROM json_each(models.external)
   ) WHERE external <> '[]';`,
  // 4: search jobs: the job's kind, a search job's parameters and its summary.
  `ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'compress';
   ALTER TABLE jobs ADD COLUMN search TEXT;
   ALTER TABLE jobs ADD COLUMN result TEXT;`,
];

type Row = Record<string, unknown>;

function json<T>(v: unknown, fallback: T): T {
  return typeof v === "string" ? JSON.parse(v) as T : fallback;
}

function modelOf(r: Row): ModelRecord {
  return {
    id: r.id as string,
    name: (r.name as string | null) ?? null,
    sha256: r.sha256 as string,
    bytes: Number(r.bytes),
    inputs: json(r.inputs, []),
    outputs: json(r.outputs, []),
    opHistogram: json(r.op_histogram, {}),
    external: json(r.external, []),
    parentId: (r.parent_id as string | null) ?? null,
    jobId: (r.job_id as string | null) ?? null,
    createdAt: r.created_at as string,
  };
}

function jobOf(r: Row): JobRecord {
  return {
    id: r.id as string,
    kind: ((r.kind as string | null) ?? "compress") as JobKind,
    search: json(r.search, null),
    result: (r.result as string | null) ?? null,
    modelId: r.model_id as string,
    state: r.state as JobState,
    progress: Number(r.progress),
    stage: r.stage as string,
    recipe: json(r.recipe, null),
    resultName: (r.result_name as string | null) ?? null,
    calibration: json(r.calibration, null),
    data: json(r.data, null),
    training: json(r.training, null),
    resultModelId: (r.result_model_id as string | null) ?? null,
    error: json(r.error, null),
    report: (r.report as string | null) ?? null,
    evaluation: (r.evaluation as string | null) ?? null,
    attempts: Number(r.attempts),
    createdAt: r.created_at as string,
    startedAt: (r.started_at as string | null) ?? null,
    finishedAt: (r.finished_at as string | null) ?? null,
  };
}

/** The input files of a job (calibration, training and validation data), by what they are. */
export function jobInputFiles(
  j: Pick<JobRecord, "calibration" | "data">,
): (NpyInfo & { role: string })[] {
  const out: (NpyInfo & { role: string })[] = [];
  if (j.calibration) out.push({ ...j.calibration, role: "calibration data" });
  const d = j.data ?? {};
  if (d.train) out.push({ ...d.train, role: "training data" });
  if (d.labels) out.push({ ...d.labels, role: "training labels" });
  if (d.validation) out.push({ ...d.validation, role: "validation data" });
  if (d.validationLabels) out.push({ ...d.validationLabels, role: "validation labels" });
  return out;
}

/** Columns a job update may set, by JobRecord field. */
const JOB_COLUMNS: Partial<Record<keyof JobRecord, string>> = {
  state: "state",
  progress: "progress",
  stage: "stage",
  resultModelId: "result_model_id",
  training: "training",
  error: "error",
  report: "report",
  evaluation: "evaluation",
  result: "result",
  attempts: "attempts",
  startedAt: "started_at",
  finishedAt: "finished_at",
};

export class Store {
  readonly db: DatabaseSync;

  constructor(path: string) {
    this.db = new DatabaseSync(path);
    this.db.exec("PRAGMA journal_mode = WAL");
    this.db.exec("PRAGMA synchronous = NORMAL");
    this.db.exec("PRAGMA busy_timeout = 5000");
    this.migrate();
  }

  get schemaVersion(): number {
    return Number((this.db.prepare("PRAGMA user_version").get() as Row).user_version);
  }

  private migrate(): void {
    const from = this.schemaVersion;
    if (from > MIGRATIONS.length) {
      throw new ArgumentError(
        `the database has schema version ${from}, newer than this server's ${MIGRATIONS.length}`,
      );
    }
    for (let v = from; v < MIGRATIONS.length; v++) {
      this.transaction(() => {
        this.db.exec(MIGRATIONS[v]);
        this.db.exec(`PRAGMA user_version = ${v + 1}`);
      });
    }
  }

  /** Runs `fn` in one transaction (nested calls join the outer one). */
  transaction<T>(fn: () => T): T {
    if (this.db.isTransaction) return fn();
    this.db.exec("BEGIN IMMEDIATE");
    try {
      const out = fn();
      this.db.exec("COMMIT");
      return out;
    } catch (e) {
      this.db.exec("ROLLBACK");
      throw e;
    }
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  // -- models -----------------------------------------------------------------------------

  insertModel(m: ModelRecord): void {
    this.db.prepare(
      `INSERT INTO models (id, name, sha256, bytes, inputs, outputs, op_histogram, external,
         parent_id, job_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      m.id,
      m.name,
      m.sha256,
      m.bytes,
      JSON.stringify(m.inputs),
      JSON.stringify(m.outputs),
      JSON.stringify(m.opHistogram),
      JSON.stringify(m.external),
      m.parentId,
      m.jobId,
      m.createdAt,
    );
  }

  getModel(id: string): ModelRecord | undefined {
    const r = this.db.prepare("SELECT * FROM models WHERE id = ?").get(id) as Row | undefined;
    return r && modelOf(r);
  }

  getModelByName(name: string): ModelRecord | undefined {
    const r = this.db.prepare("SELECT * FROM models WHERE name = ?").get(name) as Row | undefined;
    return r && modelOf(r);
  }

  findModelBySha(sha256: string): ModelRecord | undefined {
    const r = this.db.prepare("SELECT * FROM models WHERE sha256 = ? ORDER BY created_at LIMIT 1")
      .get(sha256) as Row | undefined;
    return r && modelOf(r);
  }

  listModels(): ModelRecord[] {
    return (this.db.prepare("SELECT * FROM models ORDER BY created_at, id").all() as Row[]).map(
      modelOf,
    );
  }

  countModels(): number {
    return Number((this.db.prepare("SELECT count(*) AS n FROM models").get() as Row).n);
  }

  deleteModel(id: string): boolean {
    return Number(this.db.prepare("DELETE FROM models WHERE id = ?").run(id).changes) > 0;
  }

  // -- jobs -------------------------------------------------------------------------------

  insertJob(j: JobRecord): void {
    this.db.prepare(
      `INSERT INTO jobs (id, model_id, state, progress, stage, recipe, result_name, calibration,
         data, attempts, created_at, kind, search) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      j.id,
      j.modelId,
      j.state,
      j.progress,
      j.stage,
      JSON.stringify(j.recipe),
      j.resultName,
      j.calibration ? JSON.stringify(j.calibration) : null,
      j.data ? JSON.stringify(j.data) : null,
      j.attempts,
      j.createdAt,
      j.kind ?? "compress",
      j.search ? JSON.stringify(j.search) : null,
    );
  }

  getJob(id: string): JobRecord | undefined {
    const r = this.db.prepare("SELECT * FROM jobs WHERE id = ?").get(id) as Row | undefined;
    return r && jobOf(r);
  }

  listJobs(filter: { state?: JobState; modelId?: string } = {}): JobRecord[] {
    const where: string[] = [], params: string[] = [];
    if (filter.state) where.push("state = ?") && params.push(filter.state);
    if (filter.modelId) where.push("model_id = ?") && params.push(filter.modelId);
    const sql = `SELECT * FROM jobs ${
      where.length ? `WHERE ${where.join(" AND ")}` : ""
    } ORDER BY created_at, id`;
    return (this.db.prepare(sql).all(...params) as Row[]).map(jobOf);
  }

  /** The oldest queued job. */
  nextQueuedJob(): JobRecord | undefined {
    const r = this.db.prepare(
      "SELECT * FROM jobs WHERE state = 'queued' ORDER BY created_at, id LIMIT 1",
    ).get() as Row | undefined;
    return r && jobOf(r);
  }

  countJobs(state: JobState): number {
    return Number(
      (this.db.prepare("SELECT count(*) AS n FROM jobs WHERE state = ?").get(state) as Row).n,
    );
  }

  /** Unfinished jobs that read this model. */
  activeJobsOf(modelId: string): JobRecord[] {
    return (this.db.prepare(
      "SELECT * FROM jobs WHERE model_id = ? AND state IN ('queued', 'running') ORDER BY created_at",
    ).all(modelId) as Row[]).map(jobOf);
  }

  updateJob(id: string, patch: Partial<JobRecord>): void {
    const sets: string[] = [], params: (string | number | null)[] = [];
    for (const [k, v] of Object.entries(patch)) {
      const col = JOB_COLUMNS[k as keyof JobRecord];
      if (!col) throw new ArgumentError(`updateJob: '${k}' cannot be updated`);
      sets.push(`${col} = ?`);
      params.push(
        v === null || v === undefined
          ? null
          : typeof v === "object"
          ? JSON.stringify(v)
          : (v as string | number),
      );
    }
    if (!sets.length) return;
    this.db.prepare(`UPDATE jobs SET ${sets.join(", ")} WHERE id = ?`).run(...params, id);
  }

  // -- events -----------------------------------------------------------------------------

  addEvent(jobId: string, type: string, data: Record<string, unknown>): EventRecord {
    return this.transaction(() => {
      const last = this.db.prepare("SELECT max(seq) AS s FROM events WHERE job_id = ?").get(
        jobId,
      ) as Row;
      const ev: EventRecord = {
        jobId,
        seq: Number(last.s ?? 0) + 1,
        at: new Date().toISOString(),
        type,
        data,
      };
      this.db.prepare("INSERT INTO events (job_id, seq, at, type, data) VALUES (?, ?, ?, ?, ?)")
        .run(jobId, ev.seq, ev.at, type, JSON.stringify(data));
      return ev;
    });
  }

  events(jobId: string, afterSeq = 0): EventRecord[] {
    return (this.db.prepare(
      "SELECT * FROM events WHERE job_id = ? AND seq > ? ORDER BY seq",
    ).all(jobId, afterSeq) as Row[]).map((r) => ({
      jobId: r.job_id as string,
      seq: Number(r.seq),
      at: r.at as string,
      type: r.type as string,
      data: JSON.parse(r.data as string),
    }));
  }

  // -- artifact references ----------------------------------------------------------------

  /**
   * Every artifact still needed: models' files, and the input files (calibration, training and
   * validation data) of unfinished jobs (a finished job's files are deleted; its row keeps the
   * hashes as a record).
   */
  referencedArtifacts(): Set<string> {
    const refs = new Set<string>();
    for (const r of this.db.prepare("SELECT sha256, external FROM models").all() as Row[]) {
      refs.add(r.sha256 as string);
      for (const f of json<ExternalFile[]>(r.external, [])) refs.add(f.sha256);
    }
    for (
      const r of this.db.prepare(
        `SELECT calibration, data FROM jobs
         WHERE (calibration IS NOT NULL OR data IS NOT NULL) AND state IN ('queued', 'running')`,
      ).all() as Row[]
    ) {
      const job = { calibration: json(r.calibration, null), data: json(r.data, null) };
      for (const f of jobInputFiles(job)) refs.add(f.sha256);
    }
    return refs;
  }
}
