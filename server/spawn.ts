// Client-side helpers for the end-to-end tests and the serve benchmark: startServer() runs the
// server as a child process on a free port (PORT=0; the port is read from the startup log
// line), draining its stdout and stderr continuously (a full pipe would stall the server) into
// log lines; waitForLog() waits for one of them; readSse() parses a Server-Sent Events
// response; trickle() makes a request body that arrives slowly (or stalls).
const ROOT = new URL("../", import.meta.url);
const MAIN = new URL("./main.ts", import.meta.url).pathname;

export interface SpawnOptions {
  dataDir: string;
  /** Extra environment (PORT, SQZ_DATA_DIR and SQZ_API_KEYS are set here unless given). */
  env?: Record<string, string>;
  args?: string[];
  /** How long to wait for the startup line (default 60 s). */
  startTimeoutMs?: number;
}

export interface RunningServer {
  url: string;
  pid: number;
  dataDir: string;
  /** Every line the server wrote so far (stdout and stderr). */
  logs: string[];
  /** SIGTERM (graceful) or SIGKILL; resolves with the exit code once the process is gone. */
  stop(signal?: Deno.Signal): Promise<number>;
}

export async function startServer(opts: SpawnOptions): Promise<RunningServer> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...(opts.args ?? [])],
    cwd: ROOT.pathname,
    env: {
      PORT: "0",
      SQZ_DATA_DIR: opts.dataDir,
      SQZ_API_KEYS: "",
      SQZ_API_KEYS_FILE: "",
      NO_COLOR: "1",
      ...opts.env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const logs: string[] = [];
  let onLine: ((line: string) => void) | undefined;
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        logs.push(line);
        onLine?.(line);
      }
    }
    if (buf) logs.push(buf);
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });

  const stop = async (signal: Deno.Signal = "SIGKILL"): Promise<number> => {
    if (!exited) {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
    }
    const s = await status;
    await drained;
    return s.code;
  };

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the server did not start in time:\n${logs.join("\n")}`)),
      opts.startTimeoutMs ?? 60_000,
    );
    const check = (line: string) => {
      if (!line.startsWith("{")) return;
      try {
        const o = JSON.parse(line);
        if (typeof o.url === "string" && String(o.msg).includes("listening")) {
          clearTimeout(timer);
          resolve(o.url);
        }
      } catch { /* not a log line */ }
    };
    logs.forEach(check);
    onLine = check;
    status.then(() => {
      clearTimeout(timer);
      reject(new Error(`the server exited at startup:\n${logs.join("\n")}`));
    });
  }).catch(async (e) => {
    await stop();
    throw e;
  });
  onLine = undefined;
  return { url, pid: child.pid, dataDir: opts.dataDir, logs, stop };
}

export interface SseEvent {
  id?: string;
  event?: string;
  // deno-lint-ignore no-explicit-any
  data: any;
}

/**
 * Reads an SSE response to its end (or until `onEvent` returns true), parsing every event's
 * `id`, `event` and JSON `data`; comment lines (keep-alives) are skipped.
 */
export async function readSse(
  res: Response,
  onEvent?: (e: SseEvent) => boolean | void,
): Promise<SseEvent[]> {
  const type = res.headers.get("content-type") ?? "";
  if (res.status !== 200 || !type.startsWith("text/event-stream")) {
    throw new Error(`not an event stream: ${res.status} ${type}: ${await res.text()}`);
  }
  const events: SseEvent[] = [];
  let buf = "";
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += value;
      let end;
      while ((end = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const data: string[] = [];
        const ev: Partial<SseEvent> = {};
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue;
          const i = line.indexOf(":");
          const field = i < 0 ? line : line.slice(0, i);
          const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
          if (field === "data") data.push(value);
          else if (field === "id") ev.id = value;
          else if (field === "event") ev.event = value;
        }
        if (!data.length) continue;
        const e = { ...ev, data: JSON.parse(data.join("\n")) };
        events.push(e);
        if (onEvent?.(e) === true) return events;
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return events;
}

/** Waits until the server has written a log line that `match` accepts (parsed JSON). */
export async function waitForLog(
  server: RunningServer,
  // deno-lint-ignore no-explicit-any
  match: (line: any) => boolean,
  timeoutMs = 20_000,
  // deno-lint-ignore no-explicit-any
): Promise<any> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    for (const l of server.logs) {
      if (!l.startsWith("{")) continue;
      let o;
      try {
        o = JSON.parse(l);
      } catch {
        continue;
      }
      if (match(o)) return o;
    }
    if (Date.now() > until) throw new Error(`no such log line:\n${server.logs.join("\n")}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A request body that arrives slowly: `bytes` in `chunks` pieces `gapMs` apart, then the end —
 * or, with `stall`, the first piece and then nothing until the reader cancels.
 */
export function trickle(
  bytes: Uint8Array,
  chunks: number,
  gapMs: number,
  stall = false,
  onPull: (pieces: number) => void = () => {},
): ReadableStream<Uint8Array> {
  const size = Math.ceil(bytes.length / chunks);
  let i = 0, timer: ReturnType<typeof setTimeout> | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      onPull(i);
      if (i > 0) {
        if (stall) {
          await new Promise<void>((r) => timer = setTimeout(r, 60_000));
          return;
        }
        await new Promise((r) => timer = setTimeout(r, gapMs));
      }
      if (i * size >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(i * size, (i + 1) * size));
      i++;
    },
    cancel() {
      clearTimeout(timer);
    },
  });
}
