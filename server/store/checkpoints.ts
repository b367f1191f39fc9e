// Per-job files: <data>/jobs/<job id>/: the fine-tuning checkpoints a compression job resumes
// from, and the finished trials of a search job (`trial-<seq>.json`, one file per trial, each
// written like a checkpoint: temp file, fsync, rename, directory fsync), which a restarted
// search loads and keeps (TrialFiles, a SearchStateStore).
//
// compress() hands its checkpoint bytes over after every finished epoch (they are opaque here).
// Each is written to `.tmp-<uuid>` in the job's directory, fsynced and renamed to
// `checkpoint-<epoch, 6 digits>` (atomic on one filesystem), the directory fsynced, and only
// then are older checkpoints removed: whenever the process dies, the directory holds the last
// complete checkpoint, and a resumed job loads the highest-numbered one. Temp files are never
// loaded; they are removed when the job's directory is, or at the next start (sweep).
//
// The directory of a job is removed once the job has finished (succeeded, failed, cancelled);
// a job handed back to the queue (restart, graceful shutdown) keeps it, to resume from.
//
// Directory names are job ids checked against their pattern (never other client input), so no
// path traversal is possible. The compression worker writes here directly (jobs/worker.ts):
// the checkpoint is saved before compress() goes on, as its contract asks.
import { ArgumentError } from "../../src/mod.ts";
import { writeAtomic } from "./artifacts.ts";

const JOB_ID_RE = /^j_[a-z2-7]{24}$/;
const CHECKPOINT_RE = /^checkpoint-(\d{6,})$/;
const TRIAL_RE = /^trial-(\d{6,})\.json$/;

/** The files a job keeps across restarts (anything else in its directory is a leftover). */
function kept(name: string): boolean {
  return CHECKPOINT_RE.test(name) || TRIAL_RE.test(name);
}

/**
 * A search job's finished trials, one file each in the job's directory (src/search/types.ts
 * SearchStateStore): append() writes `trial-<seq>.json` atomically, so a kill -9 loses at most
 * the trial in flight; load() returns them in the order they were appended. A file that does
 * not parse (never written by append: renames are atomic) is skipped.
 */
export class TrialFiles<T = unknown> {
  #next = 0;
  #chain: Promise<void> = Promise.resolve();

  constructor(readonly dir: string) {}

  async #entries(): Promise<{ seq: number; path: string }[]> {
    const out: { seq: number; path: string }[] = [];
    try {
      for await (const e of Deno.readDir(this.dir)) {
        const m = e.isFile ? TRIAL_RE.exec(e.name) : null;
        if (m) out.push({ seq: Number(m[1]), path: `${this.dir}/${e.name}` });
      }
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return [];
      throw e;
    }
    return out.sort((a, b) => a.seq - b.seq);
  }

  async load(): Promise<T[]> {
    const entries = await this.#entries();
    const out: T[] = [];
    for (const e of entries) {
      try {
        out.push(JSON.parse(await Deno.readTextFile(e.path)) as T);
      } catch { /* not a complete trial */ }
      this.#next = Math.max(this.#next, e.seq + 1);
    }
    return out;
  }

  /** How many trials are stored. */
  async count(): Promise<number> {
    return (await this.#entries()).length;
  }

  /** Appends run one after another (the sequence numbers stay unique). */
  append(t: T): Promise<void> {
    const p = this.#chain.then(() => this.#append(t));
    this.#chain = p.catch(() => {});
    return p;
  }

  async #append(t: T): Promise<void> {
    if (this.#next === 0) {
      const entries = await this.#entries();
      this.#next = entries.length ? entries[entries.length - 1].seq + 1 : 0;
    }
    const seq = this.#next++;
    await Deno.mkdir(this.dir, { recursive: true });
    const name = `trial-${String(seq).padStart(6, "0")}.json`;
    await writeAtomic(
      `${this.dir}/.tmp-${crypto.randomUUID()}`,
      `${this.dir}/${name}`,
      this.dir,
      new TextEncoder().encode(JSON.stringify(t)),
      0o600,
    );
  }
}

/** The directory of a job's files, under `root` (<data>/jobs). */
export function jobDir(root: string, jobId: string): string {
  if (!JOB_ID_RE.test(jobId)) throw new ArgumentError(`not a job id: '${jobId.slice(0, 40)}'`);
  return `${root}/${jobId}`;
}

/** The newest complete checkpoint in a job's directory, if any. */
export async function latestCheckpoint(
  dir: string,
): Promise<{ epoch: number; path: string } | undefined> {
  let best: { epoch: number; path: string } | undefined;
  try {
    for await (const e of Deno.readDir(dir)) {
      const m = e.isFile ? CHECKPOINT_RE.exec(e.name) : null;
      if (m && (!best || Number(m[1]) > best.epoch)) {
        best = { epoch: Number(m[1]), path: `${dir}/${e.name}` };
      }
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  return best;
}

/** Writes the checkpoint of `epoch` atomically, then removes the older ones. */
export async function saveCheckpoint(dir: string, bytes: Uint8Array, epoch: number): Promise<void> {
  if (!Number.isSafeInteger(epoch) || epoch < 0) {
    throw new ArgumentError(`checkpoint epoch must be an integer ≥ 0, got ${epoch}`);
  }
  await Deno.mkdir(dir, { recursive: true });
  const name = `checkpoint-${String(epoch).padStart(6, "0")}`;
  await writeAtomic(`${dir}/.tmp-${crypto.randomUUID()}`, `${dir}/${name}`, dir, bytes, 0o600);
  for await (const e of Deno.readDir(dir)) {
    if (e.name !== name && CHECKPOINT_RE.test(e.name)) {
      await Deno.remove(`${dir}/${e.name}`).catch(() => {});
    }
  }
}

/** Reads the newest checkpoint (undefined when there is none). */
export async function loadCheckpoint(dir: string): Promise<Uint8Array | undefined> {
  const latest = await latestCheckpoint(dir);
  return latest ? await Deno.readFile(latest.path) : undefined;
}

/** The per-job directories of a data dir. */
export class JobFiles {
  readonly root: string;

  constructor(dataDir: string) {
    this.root = `${dataDir}/jobs`;
  }

  dir(jobId: string): string {
    return jobDir(this.root, jobId);
  }

  latestCheckpoint(jobId: string): Promise<{ epoch: number; path: string } | undefined> {
    return latestCheckpoint(this.dir(jobId));
  }

  /** A search job's stored trials. */
  trials(jobId: string): TrialFiles {
    return new TrialFiles(this.dir(jobId));
  }

  /**
   * Removes a finished job's directory. A worker just terminated may still have a write in
   * flight: one retry after it has settled.
   */
  async remove(jobId: string): Promise<void> {
    const dir = this.dir(jobId);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await Deno.remove(dir, { recursive: true });
        return;
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /**
   * At start: removes the directories of jobs that are not unfinished (and anything that is
   * not a job's directory), and the temp files a crash left in the others.
   */
  async sweep(unfinished: Set<string>): Promise<number> {
    let removed = 0;
    await Deno.mkdir(this.root, { recursive: true });
    for await (const e of Deno.readDir(this.root)) {
      const path = `${this.root}/${e.name}`;
      if (!e.isDirectory || !JOB_ID_RE.test(e.name) || !unfinished.has(e.name)) {
        await Deno.remove(path, { recursive: true }).catch(() => {});
        removed++;
        continue;
      }
      for await (const f of Deno.readDir(path)) {
        if (!kept(f.name)) {
          await Deno.remove(`${path}/${f.name}`, { recursive: true }).catch(() => {});
        }
      }
    }
    return removed;
  }
}
