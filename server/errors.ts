// Every error the service returns is JSON `{ "error": { "code", "message" } }` with a status
// that says whose fault it was. Engine errors (SqzError) keep their `code`; anything else is an
// `internal` 500 whose message says nothing of the server's insides (the log has the details).
// Only those are logged as errors (with the stack): a typed 5xx (timeout, out of memory,
// shutting down) or a client that went away is in the request's log line, with its code.
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { SqzError } from "../src/mod.ts";

/** An error with its HTTP status. `code` is stable and machine-readable. */
export class HttpError extends SqzError {
  constructor(
    readonly status: ContentfulStatusCode,
    code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(code, message);
  }
}

export const badRequest = (message: string, code = "invalid_argument") =>
  new HttpError(400, code, message);
export const notFound = (message: string) => new HttpError(404, "not_found", message);
export const conflict = (message: string) => new HttpError(409, "conflict", message);
export const tooLarge = (message: string) => new HttpError(413, "payload_too_large", message);
export const unsupportedMedia = (message: string) =>
  new HttpError(415, "unsupported_media_type", message);
/**
 * The client closed the connection before its request was read (nginx's 499). Nobody receives
 * the response; the status is for the request log and the metrics.
 */
export const clientClosed = (detail: string) =>
  new HttpError(
    499 as ContentfulStatusCode,
    "client_closed_request",
    `the client closed the connection before the request body was read (${detail})`,
  );
export const shuttingDown = () =>
  new HttpError(503, "unavailable", "the server is shutting down", { "Retry-After": "5" });

/** Status of each engine error code (src/errors.ts and friends). */
const STATUS_OF_CODE: Record<string, ContentfulStatusCode> = {
  invalid_argument: 400,
  invalid_shape: 400,
  // The request was well formed, but the model in it cannot be loaded.
  invalid_model: 422,
  // The runtime lacks a feature (e.g. relaxed SIMD) the model or the request needs.
  unsupported: 501,
  // Wasm memory is exhausted: the server cannot take this now, the request may be fine later.
  out_of_memory: 503,
  dataset_unavailable: 503,
};

export interface ErrorBody {
  error: { code: string; message: string };
}

/** Status, body and headers for any thrown value. */
export function describeError(
  err: unknown,
): { status: ContentfulStatusCode; body: ErrorBody; headers: Record<string, string> } {
  if (err instanceof HttpError) {
    return {
      status: err.status,
      body: { error: { code: err.code, message: err.message } },
      headers: err.headers,
    };
  }
  if (err instanceof SqzError) {
    return {
      status: STATUS_OF_CODE[err.code] ?? 400,
      body: { error: { code: err.code, message: err.message } },
      headers: {},
    };
  }
  if (err instanceof HTTPException) {
    // Hono's own (body limit, timeout, malformed JSON from c.req.json()).
    const status = err.status as ContentfulStatusCode;
    const code = status === 413
      ? "payload_too_large"
      : status === 504 || status === 408
      ? "timeout"
      : status >= 500
      ? "internal"
      : "invalid_argument";
    return {
      status,
      body: { error: { code, message: err.message || "request failed" } },
      headers: {},
    };
  }
  return {
    status: 500,
    body: { error: { code: "internal", message: "internal server error" } },
    headers: {},
  };
}

/** Hono's onError: the JSON error body; unexpected errors are logged, never sent. */
export function errorHandler(onInternal: (err: unknown, c: Context) => void) {
  return (err: unknown, c: Context): Response => {
    const { status, body, headers } = describeError(err);
    if (body.error.code === "internal") onInternal(err, c);
    c.set("errorCode", body.error.code);
    return c.json(body, status, headers);
  };
}
