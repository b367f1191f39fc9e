// One process-wide pool of Worker threads for the kernel modules (the -mt builds import a
// shared WebAssembly.Memory). A module attaches to the pool: each worker it needs instantiates
// that module on that memory, keyed by an id, so every session shares the same few workers
// instead of starting its own (a process holds as many sessions as it likes; it never holds
// more than MAX_THREADS − 1 workers). A parallel call posts one kernel call per worker through
// a control block in a SharedArrayBuffer, runs the first share on the calling thread, and
// waits for the others with Atomics: no messages, no promises, so the executor stays
// synchronous. Messages only attach and detach modules.
//
// Control block, Int32 slots per worker (SLOT = 64):
//   [0] seq     the caller bumps it to post a job
//   [1] done    the worker stores the seq it finished
//   [2] fn      index into THREAD_EXPORTS, or WAKE (-1): nothing to run, start spinning
//   [3] nargs
//   [4] status  0 ok, 1 the kernel threw (a trap)
//   [5] module  the attached module's id
//   [8..63]     up to 28 arguments as f64 (i32 and f32 both round-trip exactly)
import { KernelError } from "../errors.ts";
import { BUNDLED } from "../platform/bundle.ts";

/** The exports a worker may run; the index is the wire format. */
export const THREAD_EXPORTS = [
  "sqz_f32_gemm",
  "sqz_i8_gemm",
  "sqz_i7_gemm",
  "sqz_bin_gemm",
  "sqz_f32_conv2d_range",
  "sqz_i8_conv2d_range",
  "sqz_i7_conv2d_range",
  "sqz_bin_conv2d_range",
  "sqz_f32_dwconv",
  "sqz_i8_dwconv",
  "sqz_f32_maxpool2d",
  "sqz_i8_maxpool2d",
  "sqz_f32_avgpool2d",
  "sqz_i8_avgpool2d",
  "sqz_q4_gemm",
  "sqz_i8_conv2d_direct_range",
  "sqz_f32_spmm",
  "sqz_f32_conv2d_sparse_range",
] as const;
export type ThreadExport = typeof THREAD_EXPORTS[number];

export const SLOT = 64;
export const SEQ = 0, DONE = 1, FN = 2, NARGS = 3, STATUS = 4, MODULE = 5, ARGS = 8;
export const MAX_ARGS = (SLOT - ARGS) / 2;
export const WAKE = -1;
/** How long a caller spins on a share before it blocks. */
const WAIT_SPIN_MS = 2;
/** Workers the pool may hold: one per thread beyond the calling one. */
export const MAX_WORKERS = 63;

/** Messages to a worker. */
export type ThreadMessage =
  | { type: "init"; control: SharedArrayBuffer; index: number }
  | { type: "attach"; id: number; module: WebAssembly.Module; memory: WebAssembly.Memory }
  | { type: "detach"; id: number };

/** Replies from a worker. */
export type ThreadReply = { type: "attached" | "failed"; id: number; message?: string };

interface Thread {
  post(msg: ThreadMessage): void;
  /** Replies to attach messages. */
  onReply(f: (r: ThreadReply) => void): void;
  terminate(): void;
}

export interface KernelCall {
  fn: ThreadExport;
  args: number[];
}

// Worker threads: node:worker_threads where it exists (Deno, Node), since its workers can be
// unref'd and the pool then never keeps a process alive; Web Workers in a browser.
async function spawn(): Promise<Thread> {
  const url = new URL(BUNDLED ? "./sqz_thread_worker.js" : "./thread_worker.ts", import.meta.url);
  const isServer = typeof Deno !== "undefined" ||
    typeof (globalThis as { process?: unknown }).process !== "undefined";
  if (isServer) {
    const { Worker } = await import("node:worker_threads");
    const w = new Worker(url);
    w.unref();
    return {
      post: (m) => w.postMessage(m),
      onReply: (f) => w.on("message", f),
      terminate: () => void w.terminate(),
    };
  }
  const w = new Worker(url, { type: "module" });
  return {
    post: (m) => w.postMessage(m),
    onReply: (f) => w.addEventListener("message", (e) => f(e.data)),
    terminate: () => w.terminate(),
  };
}

/** Whether this thread may block in Atomics.wait (a browser's main thread may not). */
function canBlock(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}

interface Pending {
  resolve(): void;
  reject(e: Error): void;
  left: number;
}

export class ThreadPool {
  static #shared: ThreadPool | undefined;
  #ctl: Int32Array;
  #args: Float64Array;
  #control: SharedArrayBuffer;
  #threads: Thread[] = [];
  #spawning: Promise<void> = Promise.resolve();
  #seq = 0;
  /** The last seq posted to each worker. */
  #posted: number[] = [];
  #ids = 0;
  #pending = new Map<number, Pending>();
  #block = canBlock();

  private constructor() {
    this.#control = new SharedArrayBuffer(MAX_WORKERS * SLOT * 4);
    this.#ctl = new Int32Array(this.#control);
    this.#args = new Float64Array(this.#control);
  }

  /** The process's pool (workers start only when a module attaches). */
  static get shared(): ThreadPool {
    return ThreadPool.#shared ??= new ThreadPool();
  }

  /** Workers running now. */
  get size(): number {
    return this.#threads.length;
  }

  // Spawns workers until there are `n`; serialized, so concurrent attaches share the spawns.
  #grow(n: number): Promise<void> {
    this.#spawning = this.#spawning.then(async () => {
      while (this.#threads.length < n) {
        const t = await spawn();
        const index = this.#threads.length;
        t.onReply((r) => this.#reply(r));
        t.post({ type: "init", control: this.#control, index });
        this.#threads.push(t);
      }
    });
    return this.#spawning;
  }

  #reply(r: ThreadReply): void {
    const p = this.#pending.get(r.id);
    if (!p) return;
    if (r.type === "failed") {
      this.#pending.delete(r.id);
      p.reject(new Error(r.message ?? "a worker failed to instantiate the module"));
    } else if (--p.left === 0) {
      this.#pending.delete(r.id);
      p.resolve();
    }
  }

  /**
   * Instantiates `module` on `memory` in the first `workers` workers (spawning them as
   * needed) and resolves with the id that run() takes. Rejects, detaching it, if a worker
   * fails. It sets no timer (a pending one would outlive the caller's work): callers that
   * must bound the wait race it themselves.
   */
  async attach(
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    workers: number,
  ): Promise<number> {
    if (workers < 1 || workers > MAX_WORKERS) {
      throw new KernelError(`a module can use 1 to ${MAX_WORKERS} workers, not ${workers}`);
    }
    const id = ++this.#ids;
    try {
      await this.#grow(workers);
      const done = new Promise<void>((resolve, reject) => {
        this.#pending.set(id, { resolve, reject, left: workers });
      });
      for (let i = 0; i < workers; i++) {
        this.#threads[i].post({ type: "attach", id, module, memory });
      }
      await done;
      return id;
    } catch (e) {
      this.#pending.delete(id);
      this.detach(id, workers);
      throw e;
    }
  }

  /** Drops a module's instances from its workers (its memory is then theirs no longer). */
  detach(id: number, workers: number): void {
    for (let i = 0; i < Math.min(workers, this.#threads.length); i++) {
      this.#threads[i].post({ type: "detach", id });
    }
  }

  /**
   * Runs calls[0] here and calls[i] on worker i-1 with module `id`, and returns when all are
   * done. Their outputs must not overlap.
   */
  run(id: number, calls: KernelCall[], local: (call: KernelCall) => void): void {
    if (calls.length - 1 > this.#threads.length) {
      throw new KernelError(`${calls.length} calls for ${this.#threads.length + 1} threads`);
    }
    const seq = ++this.#seq;
    const ctl = this.#ctl;
    for (let i = 1; i < calls.length; i++) {
      const base = (i - 1) * SLOT, { fn, args } = calls[i];
      if (args.length > MAX_ARGS) throw new KernelError(`${fn}: more than ${MAX_ARGS} arguments`);
      // A wake-up may still be in flight: its slot is rewritten only once it is done.
      if (this.#posted[i - 1]) this.#wait(base + DONE, this.#posted[i - 1]);
      this.#posted[i - 1] = seq;
      ctl[base + FN] = THREAD_EXPORTS.indexOf(fn);
      ctl[base + NARGS] = args.length;
      ctl[base + STATUS] = 0;
      ctl[base + MODULE] = id;
      this.#args.set(args, (base + ARGS) / 2);
      Atomics.store(ctl, base + SEQ, seq);
      Atomics.notify(ctl, base + SEQ);
    }
    try {
      local(calls[0]);
    } finally {
      for (let i = 1; i < calls.length; i++) this.#wait((i - 1) * SLOT + DONE, seq);
    }
    for (let i = 1; i < calls.length; i++) {
      if (ctl[(i - 1) * SLOT + STATUS] !== 0) {
        throw new KernelError(`${calls[i].fn} trapped on worker thread ${i}`);
      }
    }
  }

  // Spins first: the shares are balanced, so the workers finish within microseconds of this
  // thread, and a futex wake-up costs ~0.1 ms on a VM. Then blocks (where this thread may).
  /**
   * Wakes the first `workers` idle workers without waiting for them, so that they spin when
   * the next call comes (a session run starts with TypeScript work: the input's copy and
   * layout change, ~0.1 ms, a futex wake-up's cost on a VM).
   */
  wake(workers: number): void {
    const ctl = this.#ctl;
    for (let i = 0; i < Math.min(workers, this.#threads.length); i++) {
      const base = i * SLOT;
      if (this.#posted[i] && Atomics.load(ctl, base + DONE) !== this.#posted[i]) continue;
      const seq = ++this.#seq;
      this.#posted[i] = seq;
      ctl[base + FN] = WAKE;
      Atomics.store(ctl, base + SEQ, seq);
      Atomics.notify(ctl, base + SEQ);
    }
  }

  #wait(at: number, seq: number): void {
    const ctl = this.#ctl;
    let v = Atomics.load(ctl, at);
    for (const t0 = performance.now(); v !== seq && performance.now() - t0 < WAIT_SPIN_MS;) {
      for (let i = 0; v !== seq && i < 256; i++) v = Atomics.load(ctl, at);
    }
    for (; v !== seq; v = Atomics.load(ctl, at)) {
      if (this.#block) Atomics.wait(ctl, at, v, 50);
    }
  }
}

/**
 * Splits [0, total) into at most `parts` ranges of near-equal size whose inner boundaries are
 * multiples of `align`; ranges are never empty.
 */
export function splitRange(total: number, parts: number, align: number): [number, number][] {
  const units = Math.ceil(total / align);
  const n = Math.max(1, Math.min(parts, units));
  const out: [number, number][] = [];
  let start = 0;
  for (let i = 0; i < n; i++) {
    const end = i === n - 1 ? total : Math.min(total, Math.round((units * (i + 1)) / n) * align);
    if (end > start) out.push([start, end]);
    start = end;
  }
  return out;
}
