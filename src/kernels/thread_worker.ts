// One kernel thread of the process-wide pool (src/kernels/threads.ts documents the control
// block). It keeps an instance per attached module, each on that module's shared memory, and
// serves calls: a short spin catches back-to-back layers, then it waits with
// Atomics.waitAsync, which leaves its event loop free for attach and detach messages. Where
// waitAsync is missing it waits synchronously in short slices and yields between them.
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
} from "./threads.ts";

type Fn = (...args: number[]) => void;
const SPIN = 20_000;

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

type WaitAsync = (
  a: Int32Array,
  i: number,
  v: number,
) => { async: boolean; value: Promise<unknown> | string };

async function serve(control: SharedArrayBuffer, index: number): Promise<void> {
  const ctl = new Int32Array(control);
  const args = new Float64Array(control);
  const base = index * SLOT;
  const waitAsync = (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync;
  let seen = 0;
  for (;;) {
    let seq = Atomics.load(ctl, base + SEQ);
    for (let i = 0; seq === seen && i < SPIN; i++) seq = Atomics.load(ctl, base + SEQ);
    if (seq === seen) {
      if (waitAsync) {
        const w = waitAsync(ctl, base + SEQ, seen);
        if (w.async) await w.value;
      } else {
        Atomics.wait(ctl, base + SEQ, seen, 5);
        await new Promise((r) => setTimeout(r, 0));
      }
      continue;
    }
    seen = seq;
    try {
      const fns = instances.get(ctl[base + MODULE]);
      if (!fns) throw new Error("module not attached");
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
