// The sqz service: `deno run -A server/main.ts [--port N] [--host ADDR] [--data-dir DIR]
// [--api-keys-file FILE] [--no-preload]` (see config.ts and server/README.md).
//
// Startup: open the data dir (recovering unfinished jobs), register the demo model, listen, and
// start the queued jobs. SIGINT / SIGTERM: hand the running job back to the queue, end the SSE
// streams, refuse new requests (503), let the handlers under way finish, then close the
// listener and the database — all within SQZ_SHUTDOWN_GRACE_MS (10 s), after which the process
// exits with status 1 anyway. A second signal exits at once.
import { gpuAvailable, SqzError } from "../src/mod.ts";
import { loadConfig } from "./config.ts";
import { Logger } from "./log.ts";
import { buildApp, type Deps, openDeps } from "./app.ts";
import { sha256Hex } from "./store/artifacts.ts";

const DEMO_MODEL = new URL("../models/mnist_cnn.onnx", import.meta.url);
const DEMO_NAME = "mnist";

/** Registers the MNIST demo model unless a model with the same bytes exists (idempotent). */
async function preload(deps: Deps): Promise<void> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(DEMO_MODEL);
  } catch (e) {
    deps.log.warn("demo model not preloaded", { error: (e as Error).message });
    return;
  }
  const sha = await sha256Hex(bytes);
  const existing = deps.store.findModelBySha(sha);
  if (existing) {
    deps.log.info("demo model present", { model: existing.id, name: existing.name });
    return;
  }
  const name = deps.store.getModelByName(DEMO_NAME) ? undefined : DEMO_NAME;
  const m = await deps.catalog.create({ bytes, name });
  deps.log.info("demo model preloaded", { model: m.id, name: m.name });
}

async function main(): Promise<void> {
  const early = new Logger(true);
  let config;
  try {
    config = await loadConfig(Deno.env.toObject(), Deno.args);
  } catch (e) {
    early.error("bad configuration", { error: (e as Error).message });
    Deno.exit(2);
  }
  const log = new Logger(config.log);
  // Asked for by name, WebGPU must exist: fail at start, not on the first inference request.
  if (config.backend === "webgpu" && !(await gpuAvailable())) {
    log.error("SQZ_BACKEND=webgpu but WebGPU has no adapter here", { backend: config.backend });
    Deno.exit(2);
  }
  const closing = new AbortController();
  let deps: Deps;
  try {
    deps = await openDeps(config, log, closing.signal);
  } catch (e) {
    log.error("cannot open the data directory", {
      dataDir: config.dataDir,
      error: (e as Error).message,
    });
    Deno.exit(1);
  }
  const app = buildApp(deps);
  if (config.preload) {
    try {
      await preload(deps);
    } catch (e) {
      log.error("demo model not preloaded", {
        error: e instanceof SqzError ? e.message : String(e),
      });
    }
  }

  let server: Deno.HttpServer;
  try {
    server = Deno.serve({
      hostname: config.host,
      port: config.port,
      onListen: ({ hostname, port }) => {
        const host = hostname.includes(":") ? `[${hostname}]` : hostname;
        const url = `http://${host}:${port}`;
        log.always(`sqz listening on ${url}`, {
          url,
          dataDir: config.dataDir,
          auth: config.apiKeyHashes.length > 0,
          pid: Deno.pid,
        });
      },
    }, app.fetch);
  } catch (e) {
    log.error("cannot listen", {
      host: config.host,
      port: config.port,
      error: (e as Error).message,
    });
    deps.store.close();
    Deno.exit(1);
  }
  deps.queue.kick();

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      log.warn("second signal: exiting without waiting for in-flight requests", { signal });
      Deno.exit(1);
    }
    stopping = true;
    log.info("shutting down", { signal, inFlight: deps.inflight.size });
    const force = setTimeout(() => {
      log.warn("in-flight requests did not finish in time; exiting", {
        graceMs: config.shutdownGraceMs,
        inFlight: deps.inflight.size,
      });
      // Every database write is one synchronous transaction: none is half done at this point.
      deps.store.close();
      Deno.exit(1);
    }, config.shutdownGraceMs);
    // The queue first: its "back to queued" events still reach the SSE streams, which end next.
    deps.queue.stop();
    closing.abort();
    // The handlers under way finish before the listener is shut down: Deno 2.9's
    // server.shutdown() makes the body of every in-flight request unreadable at once
    // (denoland/deno#36809), which turned a slow upload into a 500. Meanwhile new requests get
    // 503; once nothing is in flight, shutdown() only waits for responses being written.
    await deps.inflight.idle();
    await server.shutdown();
    clearTimeout(force);
    deps.sessions.close();
    deps.store.close();
    deps.lock.close();
    log.always("stopped");
    Deno.exit(0);
  };
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => void stop(sig));
  }
}

if (import.meta.main) await main();
