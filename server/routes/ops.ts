// Operations: Prometheus metrics, the OpenAPI document, the docs page and a landing index.
import { Hono } from "hono";
import type { AppEnv } from "../context.ts";
import type { Deps } from "../app.ts";
import { docsHtml, OPENAPI } from "../openapi.ts";

export function opsRoutes(deps: Deps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const docs = docsHtml();

  app.get("/metrics", (c) =>
    c.body(deps.metrics.registry.render(), 200, {
      "Content-Type": "text/plain; version=0.0.4; charset=utf-8",
    }));
  app.get("/openapi.json", (c) => c.json(OPENAPI));
  app.get("/docs", (c) => c.html(docs));
  app.get("/", (c) =>
    c.json({
      name: "sqz",
      docs: "/docs",
      openapi: "/openapi.json",
      models: "/v1/models",
      jobs: "/v1/jobs",
      inference: "/v2",
      metrics: "/metrics",
      playground: "/playground/",
    }));
  return app;
}
