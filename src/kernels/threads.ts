// A pool of Worker threads that share one kernel module's memory (the -mt builds import a
// shared WebAssembly.Memory). A parallel call posts one kernel call per worker through a
// control block in a SharedArrayBuffer, runs the first share on the calling thread, and waits
// for the others with Atomics: no messages, no promises, so the executor stays synchronous.
//
// Control block, Int32 slots per worker (SLOT = 32):
//   [0] seq     the caller bumps it to post a job (-1 asks the worker to exit)
//   [1] done    the worker stores the seq it finished
//   [2] fn      index into THREAD_EXPORTS
//   [3] nargs
//   [4] status  0 ok, 1 the kernel threw (a trap)
//   [8..31]     up to 12 arguments as f64 (i32 and f32 both round-trip exactly)
import { KernelError } from "../errors.ts";

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
] as const;
export type ThreadExport = typeof THREAD_EXPORTS[number];

export const SLOT = 32;
export const SEQ = 0, DONE = 1, FN = 2, NARGS = 3, STATUS = 4, ARGS = 8;
export const MAX_ARGS = (SLOT - ARGS) / 2;

/** What the worker receives once, to instantiate its copy of the module. */
export interface ThreadInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  index: number;
}

interface Thread {
  post(msg: ThreadInit): void;
  ready: Promise<void>;
  terminate(): void;
}

export interface KernelCall {
  fn: ThreadExport;
  args: number[];
}

// Worker threads: node:worker_threads where it exists (Deno, Node), since its workers can be
// unref'd and a pool then never keeps a process alive; Web Workers in a browser.
async function spawn(): Promise<Thread> {
  const url = new URL("./thread_worker.ts", import.meta.url);
  const isServer = typeof Deno !== "undefined" ||
    typeof (globalThis as { process?: unknown }).process !== "undefined";
  if (isServer) {
    const { Worker } = await import("node:worker_threads");
    const w = new Worker(url);
    w.unref();
    const ready = new Promise<void>((resolve, reject) => {
      w.once("message", (m: unknown) => m === "ready" ? resolve() : reject(new Error(String(m))));
      w.once("error", reject);
    });
    return { post: (m) => w.postMessage(m), ready, terminate: () => void w.terminate() };
  }
  const w = new Worker(url, { type: "module" });
  const ready = new Promise<void>((resolve, reject) => {
    w.onmessage = (e) => e.data === "ready" ? resolve() : reject(new Error(String(e.data)));
    w.onerror = (e) => reject(new Error(e.message));
  });
  return { post: (m) => w.postMessage(m), ready, terminate: () => w.terminate() };
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

export class ThreadPool {
  #ctl: Int32Array;
  #args: Float64Array;
  #seq = 0;
  #block = canBlock();
  #closed = false;

  private constructor(readonly threads: Thread[], control: SharedArrayBuffer) {
    this.#ctl = new Int32Array(control);
    this.#args = new Float64Array(control);
  }

  /** Starts `workers` threads on the module; rejects (and stops them) if any fails to start. */
  static async start(
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    workers: number,
    timeoutMs = 10_000,
  ): Promise<ThreadPool> {
    const control = new SharedArrayBuffer(workers * SLOT * 4);
    const threads: Thread[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      for (let i = 0; i < workers; i++) threads.push(await spawn());
      threads.forEach((t, index) => t.post({ module, memory, control, index }));
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`threads did not start in ${timeoutMs} ms`)),
          timeoutMs,
        );
      });
      await Promise.race([Promise.all(threads.map((t) => t.ready)), timeout]);
    } catch (e) {
      for (const t of threads) t.terminate();
      throw e;
    } finally {
      clearTimeout(timer);
    }
    return new ThreadPool(threads, control);
  }

  /** Workers plus the calling thread. */
  get size(): number {
    return this.threads.length + 1;
  }

  /**
   * Runs calls[0] here and calls[i] on worker i-1, and returns when all are done. At most
   * `size` calls; their outputs must not overlap.
   */
  run(calls: KernelCall[], local: (call: KernelCall) => void): void {
    if (this.#closed) throw new KernelError("the thread pool was stopped");
    if (calls.length > this.size) {
      throw new KernelError(`${calls.length} calls for ${this.size} threads`);
    }
    const seq = ++this.#seq;
    const ctl = this.#ctl;
    for (let i = 1; i < calls.length; i++) {
      const base = (i - 1) * SLOT, { fn, args } = calls[i];
      if (args.length > MAX_ARGS) throw new KernelError(`${fn}: more than ${MAX_ARGS} arguments`);
      ctl[base + FN] = THREAD_EXPORTS.indexOf(fn);
      ctl[base + NARGS] = args.length;
      ctl[base + STATUS] = 0;
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

  #wait(at: number, seq: number): void {
    const ctl = this.#ctl;
    for (let v = Atomics.load(ctl, at); v !== seq; v = Atomics.load(ctl, at)) {
      if (this.#block) Atomics.wait(ctl, at, v, 50);
    }
  }

  stop(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (let i = 0; i < this.threads.length; i++) {
      Atomics.store(this.#ctl, i * SLOT + SEQ, -1);
      Atomics.notify(this.#ctl, i * SLOT + SEQ);
      this.threads[i].terminate();
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
