// The Hono environment every route shares: per-request variables set by middleware and
// handlers, and read by the request log and the metrics.
import type { Deadline } from "./routes/limits.ts";

export interface AppEnv {
  Variables: {
    /** X-Request-Id of the request (the client's when it sent a sane one). */
    requestId: string;
    /** The model a request concerned, once resolved: for logs and per-model metrics. */
    modelId?: string;
    /** The request deleted the model: its metric series must not be made again. */
    modelDeleted?: boolean;
    /** The error code of a failed request. */
    errorCode?: string;
    /** The route pattern of a 405 (the request matched a route's path, not its method). */
    routePattern?: string;
    /** Body limit of the route (limits.ts), read by readBody(). */
    maxBodyBytes?: number;
    /** The request's time limit (limits.ts): its signal aborts the body read, commit() checks it. */
    deadline?: Deadline;
  };
}
