// What every job Worker (compression: worker.ts, search: search_worker.ts) shares: the cancel
// signal a "cancel" message trips, sleeps it cuts short, reading the job's .npy data, and the
// message loop that turns the run's outcome into a done / cancelled / error message. Each
// Worker has its own instance of this module, so `cancel` is per job.
import { parseNpy, setDefaultThreads, SqzError, type Tensor } from "../../src/mod.ts";
import { labelsOf } from "./data.ts";

// Jobs run beside the service and each other: their sessions take one thread each.
setDefaultThreads(1);

/** The files of a training or validation set, as the queue hands them to a worker. */
export interface DataFiles {
  path: string;
  labelsPath?: string;
}

/** Aborted by a "cancel" message. */
export const cancel = new AbortController();

export function abortError(): Error {
  const e = new Error("the job was cancelled");
  e.name = "AbortError";
  return e;
}

/** Throws an AbortError once the job is cancelled (between the steps the engine does not see). */
export function checkCancelled(): void {
  if (cancel.signal.aborted) throw abortError();
}

/** A timer the cancel signal cuts short (with an AbortError). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (cancel.signal.aborted) return reject(abortError());
    const done = () => {
      clearTimeout(timer);
      cancel.signal.removeEventListener("abort", onAbort);
    };
    const onAbort = () => {
      done();
      reject(abortError());
    };
    const timer = setTimeout(() => {
      done();
      resolve();
    }, ms);
    cancel.signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Training or validation data as the engine takes it. */
export async function readData(
  files: DataFiles | undefined,
): Promise<{ inputs: Tensor; labels?: Int32Array } | undefined> {
  if (!files) return undefined;
  const inputs = parseNpy(await Deno.readFile(files.path));
  const labels = files.labelsPath
    ? labelsOf(parseNpy(await Deno.readFile(files.labelsPath)))
    : undefined;
  return { inputs, labels };
}

/**
 * The Worker's message loop: "start" runs `run` (which posts its own result), "cancel" trips
 * the signal; a cancellation is reported as such, other failures as a typed error message.
 */
export function serve<S>(run: (start: S) => Promise<void>, what: string): void {
  self.onmessage = (e: MessageEvent<{ type: "start" | "cancel" }>) => {
    if (e.data?.type === "cancel") {
      cancel.abort();
      return;
    }
    if (e.data?.type !== "start") return;
    run(e.data as S).catch((err) => {
      if (cancel.signal.aborted || (err as Error)?.name === "AbortError") {
        self.postMessage({ type: "cancelled" });
        return;
      }
      self.postMessage({
        type: "error",
        code: err instanceof SqzError ? err.code : "internal",
        message: err instanceof SqzError
          ? err.message
          : `${what} failed: ${(err as Error)?.message ?? String(err)}`,
      });
    });
  };
}
