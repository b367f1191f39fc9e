// One kernel thread of the process-wide pool (src/kernels/threads.ts documents the control
// block). It keeps an instance per attached module, each on that module's shared memory, and
// serves calls: it spins for SPIN_MS after each call, which catches the next layer's call
// with no wake-up (a futex wake-up on this VM takes ~0.1 ms), then blocks in Atomics.wait,
// yielding to its event loop every YIELD_MS of waiting for attach and detach messages.
import {
  ARGS,
  DONE,
  FN,
  MODULE,
  NARGS,
  SEQ,
  SLOT,
  STATUS,
  THREAD_EXPORTS,
  type ThreadMessage,
  type ThreadReply,
  WAKE,
} from "./threads.ts";

type Fn = (...args: number[]) => void;
const SPIN_MS = 1;

const instances = new Map<number, Fn[]>();

function attach(id: number, module: WebAssembly.Module, memory: WebAssembly.Memory): ThreadReply {
  try {
    const instance = new WebAssembly.Instance(module, {
      env: {
        memory,
        abort() {
          throw new Error("sqz kernel abort");
        },
      },
    });
    instances.set(id, THREAD_EXPORTS.map((name) => instance.exports[name] as Fn));
    return { type: "attached", id };
  } catch (e) {
    return {
      type: "failed",
      id,
      message: `cannot instantiate the kernel module: ${(e as Error).message}`,
    };
  }
}

// How long a worker blocks before it yields to its event loop (where attach and detach
// messages arrive). Blocking is Atomics.wait, a futex: a posted call wakes it in microseconds,
// where Atomics.waitAsync measured 0.5–4 ms to resume through the event loop.
const YIELD_MS = 20;

async function serve(control: SharedArrayBuffer, index: number): Promise<void> {
  const ctl = new Int32Array(control);
  const args = new Float64Array(control);
  const base = index * SLOT;
  let seen = 0;
  let yielded = performance.now();
  for (;;) {
    let seq = Atomics.load(ctl, base + SEQ);
    for (const t0 = performance.now(); seq === seen && performance.now() - t0 < SPIN_MS;) {
      for (let i = 0; seq === seen && i < 256; i++) seq = Atomics.load(ctl, base + SEQ);
    }
    if (seq === seen) {
      if (performance.now() - yielded >= YIELD_MS) {
        await new Promise((r) => setTimeout(r, 0));
        yielded = performance.now();
      } else Atomics.wait(ctl, base + SEQ, seen, YIELD_MS);
      continue;
    }
    seen = seq;
    try {
      if (ctl[base + FN] === WAKE) throw 0; // a wake-up: nothing to run, now spinning
      const fns = instances.get(ctl[base + MODULE]);
      if (!fns) throw new Error("module not attached");
      const n = ctl[base + NARGS], a0 = (base + ARGS) / 2;
      fns[ctl[base + FN]](...args.subarray(a0, a0 + n));
      ctl[base + STATUS] = 0;
    } catch (e) {
      ctl[base + STATUS] = e === 0 ? 0 : 1;
    }
    Atomics.store(ctl, base + DONE, seq);
    Atomics.notify(ctl, base + DONE);
  }
}

function receive(m: ThreadMessage, reply: (r: ThreadReply) => void): void {
  if (m.type === "init") void serve(m.control, m.index);
  else if (m.type === "attach") reply(attach(m.id, m.module, m.memory));
  else instances.delete(m.id);
}

// node:worker_threads (Deno, Node) or a Web Worker.
const g = globalThis as unknown as { Deno?: unknown; process?: unknown };
if (g.Deno !== undefined || g.process !== undefined) {
  const { parentPort } = await import("node:worker_threads");
  parentPort!.on("message", (m: ThreadMessage) => receive(m, (r) => parentPort!.postMessage(r)));
} else {
  const scope = globalThis as unknown as {
    onmessage: (e: MessageEvent<ThreadMessage>) => void;
    postMessage(m: ThreadReply): void;
  };
  scope.onmessage = (e) => receive(e.data, (r) => scope.postMessage(r));
}
