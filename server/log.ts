// Structured logs: one JSON object per line on stdout. Request lines carry the method, route
// pattern, path, status, time, model id and request id; never bodies or tensor data.
import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { AppEnv } from "./context.ts";
import type { ServerMetrics } from "./metrics.ts";

export type Level = "debug" | "info" | "warn" | "error";

export class Logger {
  constructor(
    private readonly enabled = true,
    private readonly write: (line: string) => void = (l) => console.log(l),
  ) {}

  log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
    if (!this.enabled && level !== "error" && level !== "warn") return;
    this.write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }));
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.log("info", msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.log("warn", msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.log("error", msg, fields);
  }
  /** Lines written even with logging off: the startup line (which says the URL) and "stopped". */
  always(msg: string, fields: Record<string, unknown> = {}): void {
    this.write(JSON.stringify({ time: new Date().toISOString(), level: "info", msg, ...fields }));
  }
}

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

/** The route pattern that answered, or "unmatched" (404s must not mint label values). */
function routeOf(c: Parameters<MiddlewareHandler<AppEnv>>[0]): string {
  const pattern = c.get("routePattern");
  if (pattern) return pattern;
  const r = routePath(c, -1);
  return !r || r === "*" || r === "/*" ? "unmatched" : r;
}

/**
 * Request id, timing, the log line and the HTTP metrics of every request. A deleted model's
 * series must not come back (a request that ran while its model was deleted, a job of a
 * deleted model — the job routes set `modelDeleted`): the log line still names the model, the
 * metrics do not.
 */
export function requestLogger(log: Logger, metrics: ServerMetrics): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const start = performance.now();
    const given = c.req.header("x-request-id");
    const requestId = given && REQUEST_ID_RE.test(given) ? given : crypto.randomUUID();
    c.set("requestId", requestId);
    try {
      await next();
    } finally {
      c.header("X-Request-Id", requestId);
      const ms = performance.now() - start;
      const route = routeOf(c);
      const model = c.get("modelId") ?? "";
      const label = model && !c.get("modelDeleted") && !metrics.isForgotten(model) ? model : "";
      const status = c.res.status;
      metrics.requests.inc({ method: c.req.method, route, status: String(status), model: label });
      metrics.requestDuration.observe({ method: c.req.method, route, model: label }, ms / 1000);
      log.info("request", {
        requestId,
        method: c.req.method,
        route,
        path: c.req.path,
        status,
        ms: Math.round(ms * 100) / 100,
        ...(model ? { model } : {}),
        ...(c.get("errorCode") ? { error: c.get("errorCode") } : {}),
      });
    }
  };
}
