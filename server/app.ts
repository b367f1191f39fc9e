// The Hono app, built from its dependencies (so tests and the entry point build it alike):
//
//   const deps = await openDeps(config, logger);   // database, artifacts, sessions, queue
//   const app = buildApp(deps);
//   Deno.serve({ port }, app.fetch);
//
// Middleware order: request log and metrics (outermost, so they see every status), in-flight
// tracking (a graceful shutdown waits for what it tracks, and refuses new requests meanwhile),
// API keys, then the routes; errors from anywhere become JSON bodies in onError. A path that
// matches a route but not its method is 405 with `Allow`; no route at all is 404.
import { Hono } from "hono";
import type { AppEnv } from "./context.ts";
import type { Config } from "./config.ts";
import { errorHandler, notFound, shuttingDown } from "./errors.ts";
import { type Logger, requestLogger } from "./log.ts";
import { Gauge, ServerMetrics } from "./metrics.ts";
import { apiKeyAuth, isPublicPath } from "./auth.ts";
import { InFlight } from "./routes/limits.ts";
import { Store } from "./store/db.ts";
import { ArtifactStore } from "./store/artifacts.ts";
import { JobFiles } from "./store/checkpoints.ts";
import { lockDataDir } from "./store/lock.ts";
import { SessionCache } from "./sessions.ts";
import { Catalog, modelSource } from "./catalog.ts";
import { JobQueue } from "./jobs/queue.ts";
import { modelRoutes } from "./routes/models.ts";
import { jobRoutes } from "./routes/jobs.ts";
import { searchRoutes } from "./routes/search.ts";
import { v2Routes } from "./routes/v2.ts";
import { opsRoutes } from "./routes/ops.ts";
import { playgroundRoutes } from "./routes/playground.ts";

export interface Deps {
  config: Config;
  log: Logger;
  metrics: ServerMetrics;
  store: Store;
  artifacts: ArtifactStore;
  sessions: SessionCache;
  catalog: Catalog;
  queue: JobQueue;
  /** The data directory's lock, held while the server runs (close() releases it). */
  lock: Deno.FsFile;
  /** Aborted when the server starts shutting down (ends SSE streams, refuses new requests). */
  closing: AbortSignal;
  /** Requests being handled (and handlers abandoned at their deadline): shutdown waits. */
  inflight: InFlight;
  isReady(): boolean;
}

/**
 * Opens the data directory (database, artifact store), recovers unfinished jobs and removes
 * artifacts nothing refers to. Jobs start when `deps.queue.kick()` is called.
 */
export async function openDeps(
  config: Config,
  log: Logger,
  closing: AbortSignal = new AbortController().signal,
): Promise<Deps> {
  await Deno.mkdir(config.dataDir, { recursive: true });
  const lock = await lockDataDir(config.dataDir);
  const metrics = new ServerMetrics();
  const store = new Store(`${config.dataDir}/sqz.db`);
  const artifacts = await ArtifactStore.open(config.dataDir);
  const sessions = new SessionCache(
    config.sessionMemoryBytes,
    (id) => {
      const m = store.getModel(id);
      if (!m) throw notFound(`no model '${id}'`);
      return modelSource(artifacts, m);
    },
    metrics,
    config.backend,
  );
  const catalog = new Catalog(store, artifacts, sessions, metrics);
  const queue = new JobQueue(
    store,
    artifacts,
    new JobFiles(config.dataDir),
    catalog,
    metrics,
    log,
    {
      concurrency: config.jobConcurrency,
      timeoutMs: config.jobTimeoutMs,
      maxAttempts: config.jobMaxAttempts,
      externalDataThreshold: config.externalDataThreshold,
      delayMs: config.testJobDelayMs,
      epochDelayMs: config.testEpochDelayMs,
      trialDelayMs: config.testTrialDelayMs,
    },
  );
  await queue.recover();
  const removed = await artifacts.removeUnreferenced(store.referencedArtifacts());
  if (removed) log.info("removed unreferenced artifacts", { count: removed });

  const r = metrics.registry;
  r.add(
    new Gauge("sqz_jobs_queue_depth", "Compression jobs waiting to run.", [], () => [
      [{}, store.countJobs("queued")],
    ]),
  );
  r.add(
    new Gauge(
      "sqz_jobs_running",
      "Compression jobs running.",
      [],
      () => [[{}, queue.runningCount]],
    ),
  );
  r.add(new Gauge("sqz_models", "Models in the catalog.", [], () => [[{}, store.countModels()]]));
  r.add(
    new Gauge("sqz_sessions_cached", "Inference sessions loaded in the cache.", [], () => [
      [{}, sessions.size],
    ]),
  );
  r.add(
    new Gauge(
      "sqz_wasm_memory_bytes",
      "Wasm linear memory of the cached inference sessions (weights and activation arena), " +
        "by model.",
      ["model"],
      () => sessions.memoryByModel().map(([model, bytes]) => [{ model }, bytes]),
    ),
  );
  r.add(
    new Gauge(
      "sqz_wasm_memory_total_bytes",
      "Wasm linear memory of all cached inference sessions.",
      [],
      () => [[{}, sessions.totalBytes]],
    ),
  );
  r.add(
    new Gauge("sqz_session_memory_budget_bytes", "The session cache's memory budget.", [], () => [
      [{}, config.sessionMemoryBytes],
    ]),
  );
  return {
    config,
    log,
    metrics,
    store,
    artifacts,
    sessions,
    catalog,
    queue,
    lock,
    closing,
    inflight: new InFlight(),
    isReady: () => !closing.aborted,
  };
}

/** A route pattern as a regular expression over paths (`:param` is one segment). */
function patternRegExp(pattern: string): RegExp {
  const body = pattern.split("/").map((seg) =>
    seg.startsWith(":") ? "[^/]+" : seg === "*" ? ".*" : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
  ).join("/");
  return new RegExp(`^${body}/?$`);
}

export function buildApp(deps: Deps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use("*", requestLogger(deps.log, deps.metrics));
  app.use("*", async (c, next) => {
    // Shutting down: the handlers under way finish (tracked), new requests are refused — but
    // for health and metrics, which say so themselves.
    if (deps.closing.aborted && !isPublicPath(c.req.path)) throw shuttingDown();
    await deps.inflight.track(next());
  });
  app.use("*", apiKeyAuth(deps.config.apiKeyHashes));
  app.route("/", modelRoutes(deps));
  app.route("/", jobRoutes(deps));
  app.route("/", searchRoutes(deps));
  app.route("/", v2Routes(deps));
  app.route("/", opsRoutes(deps));
  app.route("/", playgroundRoutes());

  // Methods by route pattern, for 405 and its Allow header (Hono answers HEAD with GET).
  const methods = new Map<string, Set<string>>();
  for (const r of app.routes) {
    if (r.method === "ALL") continue;
    const set = methods.get(r.path) ?? new Set<string>();
    set.add(r.method);
    if (r.method === "GET") set.add("HEAD");
    methods.set(r.path, set);
  }
  const patterns = [...methods].map(([path, m]) => ({ path, re: patternRegExp(path), m }));
  const ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

  app.notFound((c) => {
    const match = patterns.find((p) => p.re.test(c.req.path));
    if (match) {
      const allow = [...match.m].sort((a, b) => ORDER.indexOf(a) - ORDER.indexOf(b)).join(", ");
      c.set("routePattern", match.path);
      c.set("errorCode", "method_not_allowed");
      return c.json(
        {
          error: {
            code: "method_not_allowed",
            message: `${c.req.method} is not allowed on ${c.req.path} (allowed: ${allow})`,
          },
        },
        405,
        { Allow: allow },
      );
    }
    c.set("errorCode", "not_found");
    return c.json({
      error: { code: "not_found", message: `no route ${c.req.method} ${c.req.path}` },
    }, 404);
  });
  app.onError(errorHandler((err, c) => {
    const deadline = c.get("deadline");
    deps.log.error("internal error", {
      requestId: c.get("requestId"),
      path: c.req.path,
      error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
      stack: err instanceof Error ? err.stack : undefined,
      // The handler went on after its 504 and failed then.
      ...(deadline?.expired ? { abandoned: true } : {}),
    });
  }));
  return app;
}
