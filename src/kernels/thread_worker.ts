// One kernel thread (src/kernels/threads.ts documents the control block). It instantiates the
// -mt module on the shared memory, then serves calls until asked to exit; it blocks in
// Atomics.wait between calls, after a short spin that catches back-to-back layers.
import {
  ARGS,
  DONE,
  FN,
  NARGS,
  SEQ,
  SLOT,
  STATUS,
  THREAD_EXPORTS,
  type ThreadInit,
} from "./threads.ts";

type Fn = (...args: number[]) => void;
const SPIN = 20_000;

function serve(init: ThreadInit, reply: (msg: string) => void): void {
  let instance: WebAssembly.Instance;
  try {
    instance = new WebAssembly.Instance(init.module, {
      env: {
        memory: init.memory,
        abort() {
          throw new Error("sqz kernel abort");
        },
      },
    });
  } catch (e) {
    reply(`cannot instantiate the kernel module: ${(e as Error).message}`);
    return;
  }
  const fns = THREAD_EXPORTS.map((name) => instance.exports[name] as Fn);
  const ctl = new Int32Array(init.control);
  const args = new Float64Array(init.control);
  const base = init.index * SLOT;
  reply("ready");
  let seen = 0;
  for (;;) {
    let seq = Atomics.load(ctl, base + SEQ);
    for (let i = 0; seq === seen && i < SPIN; i++) seq = Atomics.load(ctl, base + SEQ);
    if (seq === seen) {
      Atomics.wait(ctl, base + SEQ, seen);
      continue;
    }
    if (seq < 0) return;
    seen = seq;
    try {
      const n = ctl[base + NARGS], a0 = (base + ARGS) / 2;
      fns[ctl[base + FN]](...args.subarray(a0, a0 + n));
      ctl[base + STATUS] = 0;
    } catch {
      ctl[base + STATUS] = 1;
    }
    Atomics.store(ctl, base + DONE, seq);
    Atomics.notify(ctl, base + DONE);
  }
}

// node:worker_threads (Deno, Node) or a Web Worker.
const g = globalThis as unknown as { Deno?: unknown; process?: unknown };
if (g.Deno !== undefined || g.process !== undefined) {
  const { parentPort } = await import("node:worker_threads");
  parentPort!.once("message", (init: ThreadInit) => serve(init, (m) => parentPort!.postMessage(m)));
} else {
  const scope = globalThis as unknown as {
    onmessage: (e: MessageEvent<ThreadInit>) => void;
    postMessage(m: string): void;
  };
  scope.onmessage = (e) => serve(e.data, (m) => scope.postMessage(m));
}
