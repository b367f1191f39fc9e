// Per-route request limits: body size and a time limit for reading and handling the request.
//
//   app.post("/v1/models", limits({ maxBytes, timeoutMs, inflight }), async (c) => {
//     const body = await readBody(c);          // 413 past maxBytes; aborted by the deadline
//     …validate…
//     store.transaction(() => { c.get("deadline")!.commit(); insert… });   // the commit point
//   });
//
// The time limit is not a race the handler can lose unseen (as with hono/timeout, whose handler
// keeps running after the 504 and may store its result afterwards): when it passes, the client
// gets 504, the body read is aborted, and `Deadline.commit()` — called synchronously inside the
// transaction that stores the result — throws, so the transaction rolls back. Once a handler
// has committed, the deadline no longer applies: it answers with what it stored. JavaScript
// runs the transaction and the timer's callback one after the other, never interleaved, so
// either the commit or the 504 wins, never both.
import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "../context.ts";
import { clientClosed, HttpError, tooLarge } from "../errors.ts";
import type { Logger } from "../log.ts";

export function humanBytes(n: number): string {
  if (n >= 1 << 30) return `${+(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${+(n / (1 << 20)).toFixed(2)} MiB`;
  if (n >= 1 << 10) return `${+(n / (1 << 10)).toFixed(2)} KiB`;
  return `${n} bytes`;
}

/** A request's time limit; see the top of the file. */
export class Deadline {
  readonly #controller = new AbortController();
  #state: "open" | "committed" | "expired" = "open";
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly ms?: number) {
    if (ms) this.#timer = setTimeout(() => this.#expire(), ms);
  }

  /** Aborted (with the 504 HttpError as its reason) when the time is up before a commit. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get expired(): boolean {
    return this.#state === "expired";
  }

  #expire(): void {
    if (this.#state !== "open") return;
    this.#state = "expired";
    this.#controller.abort(
      new HttpError(504, "timeout", `the request took longer than ${this.ms} ms`),
    );
  }

  /** Throws the 504 when the time is up. */
  check(): void {
    if (this.expired) throw this.#controller.signal.reason;
  }

  /**
   * The request is about to store its result: throws the 504 when the time is up, else the
   * deadline stops (the result will be answered). Call it inside the storing transaction.
   */
  commit(): void {
    this.check();
    this.#state = "committed";
    this.dispose();
  }

  dispose(): void {
    clearTimeout(this.#timer);
  }
}

/** Promises the server must see settle before it stops (requests and abandoned handlers). */
export class InFlight {
  #pending = new Set<Promise<unknown>>();
  #waiters: (() => void)[] = [];

  get size(): number {
    return this.#pending.size;
  }

  track<T>(p: Promise<T>): Promise<T> {
    const settled = p.then(() => {}, () => {});
    this.#pending.add(settled);
    settled.then(() => {
      this.#pending.delete(settled);
      if (!this.#pending.size) this.#waiters.splice(0).forEach((w) => w());
    });
    return p;
  }

  /** Resolves when nothing tracked is pending. */
  idle(): Promise<void> {
    if (!this.#pending.size) return Promise.resolve();
    return new Promise((r) => this.#waiters.push(r));
  }
}

export interface LimitOptions {
  maxBytes: number;
  /** Time limit of reading and handling the request (504); none when undefined. */
  timeoutMs?: number;
  /** Where a handler abandoned at its deadline is tracked until it ends (graceful shutdown). */
  inflight?: InFlight;
  /** Says when an abandoned handler has ended. */
  log?: Logger;
}

/** The limits of the routes that take an upload (models, compression and search jobs). */
export function uploadLimits(d: {
  config: { maxUploadBytes: number; requestTimeoutMs?: number };
  inflight?: InFlight;
  log?: Logger;
}): MiddlewareHandler<AppEnv> {
  return limits({
    maxBytes: d.config.maxUploadBytes,
    timeoutMs: d.config.requestTimeoutMs,
    inflight: d.inflight,
    log: d.log,
  });
}

export function limits(opts: LimitOptions): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const length = c.req.header("content-length");
    if (length !== undefined && Number(length) > opts.maxBytes) {
      throw tooLarge(
        `the request body is larger than this route's limit of ${humanBytes(opts.maxBytes)}`,
      );
    }
    c.set("maxBodyBytes", opts.maxBytes);
    if (!opts.timeoutMs) return await next();
    const deadline = new Deadline(opts.timeoutMs);
    c.set("deadline", deadline);
    const work = next();
    let onAbort: () => void = () => {};
    const expired = new Promise<"expired">((resolve) => {
      onAbort = () => resolve("expired");
      deadline.signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      if (await Promise.race([work.then(() => "done" as const), expired]) === "expired") {
        // The handler is abandoned: it stores nothing (commit() throws) and its outcome goes
        // to no one (Hono turns its errors into a response nobody reads; the error handler
        // logs only unexpected ones). The shutdown waits for it all the same.
        const requestId = c.get("requestId");
        const ended = work.then(() => {
          opts.log?.info("timed-out request ended", {
            requestId,
            path: c.req.path,
            // By construction: commit() threw, the transaction rolled back.
            stored: false,
          });
        });
        opts.inflight?.track(ended);
        throw deadline.signal.reason;
      }
    } finally {
      deadline.signal.removeEventListener("abort", onAbort);
      if (!deadline.expired) deadline.dispose();
    }
  };
}

/**
 * The request body, read within the route's byte limit (413 as soon as it passes it) and its
 * deadline (the read is cancelled and the 504 thrown when the time is up). A read that fails
 * otherwise means the client went away mid-body: 499.
 */
export async function readBody(c: Context<AppEnv>): Promise<Uint8Array> {
  const max = c.get("maxBodyBytes") ?? Infinity;
  const deadline = c.get("deadline");
  deadline?.check();
  const body = c.req.raw.body;
  if (!body) return new Uint8Array(0);
  if (!deadline && c.req.header("content-length") !== undefined) {
    // The framing bounds the body, and limits() checked the length: the platform reads it in
    // one go, faster than a chunk loop (what the inference path sends).
    try {
      return new Uint8Array(await c.req.raw.arrayBuffer());
    } catch (e) {
      throw clientClosed(e instanceof Error ? e.message : String(e));
    }
  }
  const reader = body.getReader();
  let onAbort: () => void = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(deadline!.signal.reason);
    deadline?.signal.addEventListener("abort", onAbort, { once: true });
  });
  aborted.catch(() => {}); // a deadline that passes after the read is nobody's error
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await (deadline ? Promise.race([reader.read(), aborted]) : reader.read());
      } catch (e) {
        if (e instanceof HttpError) throw e;
        throw clientClosed(e instanceof Error ? e.message : String(e));
      }
      if (r.done) break;
      total += r.value.length;
      if (total > max) {
        throw tooLarge(
          `the request body is larger than this route's limit of ${humanBytes(max)}`,
        );
      }
      chunks.push(r.value);
    }
  } catch (e) {
    reader.cancel().catch(() => {});
    throw e;
  } finally {
    deadline?.signal.removeEventListener("abort", onAbort);
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const ch of chunks) {
    out.set(ch, at);
    at += ch.length;
  }
  return out;
}

/** multipart/form-data from bytes read with readBody (parsed by the platform's FormData). */
export async function parseForm(bytes: Uint8Array, contentType: string): Promise<FormData> {
  return await new Response(bytes as Uint8Array<ArrayBuffer>, {
    headers: { "content-type": contentType },
  }).formData();
}
