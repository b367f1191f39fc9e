// API keys: `Authorization: Bearer <key>`. The server holds only the keys' SHA-256 hashes; a
// presented key is hashed and compared with every stored hash in constant time (no early exit
// on the first match either, so timing says nothing about which key or how many there are).
import type { MiddlewareHandler } from "hono";
import { timingSafeEqual } from "node:crypto";
import { sha256 } from "./config.ts";
import { HttpError } from "./errors.ts";
import type { AppEnv } from "./context.ts";

/** Paths that never need a key: liveness/readiness probes and the Prometheus scrape. */
export function isPublicPath(path: string): boolean {
  // The playground is static files: the page runs sqz itself and calls no API.
  return path === "/metrics" || path === "/v2/health/live" || path === "/v2/health/ready" ||
    path === "/playground" || path.startsWith("/playground/");
}

export async function keyMatches(key: string, hashes: readonly Uint8Array[]): Promise<boolean> {
  const h = await sha256(key);
  let ok = false;
  for (const stored of hashes) {
    if (stored.length === h.length && timingSafeEqual(stored, h)) ok = true;
  }
  return ok;
}

const unauthenticated = (message: string) =>
  new HttpError(401, "unauthenticated", message, {
    "WWW-Authenticate": 'Bearer realm="sqz"',
  });

/** Requires a valid key on every non-public route; a no-op when no keys are configured. */
export function apiKeyAuth(hashes: readonly Uint8Array[]): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (!hashes.length || isPublicPath(c.req.path)) return next();
    const header = c.req.header("authorization");
    if (!header) throw unauthenticated("this server needs an API key: Authorization: Bearer <key>");
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (!m) throw unauthenticated("the Authorization header must be 'Bearer <key>'");
    if (!(await keyMatches(m[1], hashes))) throw unauthenticated("invalid API key");
    return next();
  };
}
