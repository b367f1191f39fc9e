// A bounded pool of trial evaluators: Deno Workers (each gets the model, data and options once,
// then one trial at a time), or the calling thread itself for concurrency 1.
import { runTrial, type TrialContext, type TrialOutcome, type TrialRequest } from "./trial.ts";

export interface TrialPool {
  readonly size: number;
  run(req: TrialRequest): Promise<TrialOutcome>;
  /** Terminates the workers; pending runs reject. Idempotent. */
  close(): void;
}

/** concurrency 1: trials run in this thread, one at a time. */
export class InProcessPool implements TrialPool {
  readonly size = 1;
  #chain: Promise<unknown> = Promise.resolve();
  constructor(readonly ctx: TrialContext) {}
  run(req: TrialRequest): Promise<TrialOutcome> {
    const p = this.#chain.then(() => runTrial(this.ctx, req));
    this.#chain = p.catch(() => {});
    return p;
  }
  close(): void {}
}

interface Job {
  id: number;
  req: TrialRequest;
  resolve: (o: TrialOutcome) => void;
  reject: (e: Error) => void;
}

export class WorkerPool implements TrialPool {
  #workers: Worker[] = [];
  #idle: Worker[] = [];
  #queue: Job[] = [];
  #busy = new Map<Worker, Job>();
  #next = 0;
  #closed = false;

  constructor(ctx: TrialContext, readonly size: number) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
      w.onmessage = (e: MessageEvent) => this.#done(w, e.data);
      w.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        this.#done(w, { type: "error", message: e.message });
      };
      w.postMessage({ type: "init", ctx });
      this.#workers.push(w);
      this.#idle.push(w);
    }
  }

  run(req: TrialRequest): Promise<TrialOutcome> {
    if (this.#closed) return Promise.reject(new Error("search pool: closed"));
    return new Promise((resolve, reject) => {
      this.#queue.push({ id: this.#next++, req, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#idle.length && this.#queue.length) {
      const w = this.#idle.shift()!, job = this.#queue.shift()!;
      this.#busy.set(w, job);
      w.postMessage({ type: "trial", id: job.id, req: job.req });
    }
  }

  #done(w: Worker, msg: { type: string; out?: TrialOutcome; message?: string }): void {
    const job = this.#busy.get(w);
    if (!job) return;
    this.#busy.delete(w);
    this.#idle.push(w);
    if (msg.type === "result") job.resolve(msg.out!);
    else job.reject(new Error(msg.message ?? "worker failed"));
    this.#pump();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#workers) w.terminate();
    const err = new Error("search pool: closed");
    for (const j of [...this.#busy.values(), ...this.#queue]) j.reject(err);
    this.#busy.clear();
    this.#queue = [];
    this.#idle = [];
  }
}

export function createPool(ctx: TrialContext, concurrency: number): TrialPool {
  return concurrency <= 1 ? new InProcessPool(ctx) : new WorkerPool(ctx, concurrency);
}
