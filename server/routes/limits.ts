// Per-route request limits: body size (413 before the body is read when Content-Length says
// so, or as soon as a chunked body passes the limit) and a time limit for reading and handling
// the request (504).
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { timeout } from "hono/timeout";
import type { AppEnv } from "../context.ts";
import { HTTPException } from "hono/http-exception";
import { tooLarge } from "../errors.ts";

export function humanBytes(n: number): string {
  if (n >= 1 << 30) return `${+(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${+(n / (1 << 20)).toFixed(2)} MiB`;
  if (n >= 1 << 10) return `${+(n / (1 << 10)).toFixed(2)} KiB`;
  return `${n} bytes`;
}

export function limits(maxBytes: number, timeoutMs?: number): MiddlewareHandler<AppEnv> {
  const body = bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw tooLarge(
        `the request body is larger than this route's limit of ${humanBytes(maxBytes)}`,
      );
    },
  });
  const time = timeoutMs
    ? timeout(
      timeoutMs,
      () => new HTTPException(504, { message: `the request took longer than ${timeoutMs} ms` }),
    )
    : undefined;
  return (c, next) => body(c, time ? async () => void (await time(c, next)) : next);
}
