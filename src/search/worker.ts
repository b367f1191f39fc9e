// A search worker: receives the trial context once ("init") and warms up on it (trial.ts
// warmUp), then evaluates one trial per "trial" message and posts the outcome back as plain JSON (plus the artifact when asked).
/// <reference lib="deno.worker" />
import { runTrial, type TrialContext, type TrialRequest, warmUp } from "./trial.ts";
import { setDefaultThreads } from "../session.ts";

// The pool's parallelism is its Workers: each trial's sessions run on one thread.
setDefaultThreads(1);

let ctx: TrialContext | undefined;
// Trials wait for the warm-up (and for each other: one trial at a time per Worker).
let ready: Promise<void> = Promise.resolve();

self.onmessage = (e: MessageEvent) => {
  const msg = e.data as
    | { type: "init"; ctx: TrialContext }
    | { type: "trial"; id: number; req: TrialRequest };
  if (msg.type === "init") {
    ctx = msg.ctx;
    ready = warmUp(ctx);
    return;
  }
  if (msg.type === "trial") {
    const run = ready.then(async () => {
      try {
        if (!ctx) throw new Error("worker: no context");
        const out = await runTrial(ctx, msg.req);
        self.postMessage({ type: "result", id: msg.id, out });
      } catch (err) {
        self.postMessage({
          type: "error",
          id: msg.id,
          message: (err as Error)?.message ?? String(err),
        });
      }
    });
    ready = run;
  }
};
