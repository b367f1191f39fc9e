// The browser playground: dist/ (scripts/build_web.ts) served at /playground/. Static files
// only; the page runs sqz itself, so no model it opens is sent here. The responses are
// cross-origin isolated (COOP/COEP) so the page gets SharedArrayBuffer and the kernels'
// thread pool.
import { type Context, Hono } from "hono";
import { serveStatic } from "hono/deno";
import { fileURLToPath } from "node:url";
import type { AppEnv } from "../context.ts";
import { notFound } from "../errors.ts";

const DIST = fileURLToPath(new URL("../../dist/", import.meta.url));

export function playgroundRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get("/playground", (c) => c.redirect("/playground/", 301));
  app.use("/playground/*", async (c, next) => {
    await next();
    c.header("Cross-Origin-Opener-Policy", "same-origin");
    c.header("Cross-Origin-Embedder-Policy", "require-corp");
  });
  // dist/ is flat: the page and its assets are one path segment each.
  const files = serveStatic({
    root: DIST,
    rewriteRequestPath: (p) => p.replace(/^\/playground/, ""),
  });
  const missing = (c: Context<AppEnv>) => {
    let built = true;
    try {
      Deno.statSync(`${DIST}index.html`);
    } catch {
      built = false;
    }
    throw notFound(
      built
        ? `no playground file ${c.req.path}`
        : "the playground is not built: run `deno task build:web` (deno task start does)",
    );
  };
  app.get("/playground/", files, missing);
  app.get("/playground/:file", files, missing);
  return app;
}
