// The Hono environment every route shares: per-request variables set by middleware and
// handlers, and read by the request log and the metrics.
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
  };
}
