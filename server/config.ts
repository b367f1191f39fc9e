// Server configuration: environment variables, overridden by command-line flags.
//
//   PORT / --port                       8080 (0: any free port; the startup log says which)
//   SQZ_HOST / --host                   127.0.0.1
//   SQZ_DATA_DIR / --data-dir           ./data
//   SQZ_API_KEYS                        comma-separated keys; when set (or a keys file is), every
//                                       route but health and metrics needs a Bearer key
//   SQZ_API_KEYS_FILE / --api-keys-file one key per line; `sha256:<64 hex>` lines hold a key's
//                                       hash only; blank lines and `#` comments are skipped
//   SQZ_MAX_UPLOAD_BYTES                512 MiB: model uploads and compression requests
//   SQZ_MAX_INFER_BYTES                 16 MiB: inference requests
//   SQZ_MAX_TENSOR_ELEMENTS             16,777,216: elements over all inputs of one request
//   SQZ_SESSION_MEMORY_BYTES            1 GiB: Wasm memory of the cached inference sessions
//   SQZ_JOB_CONCURRENCY                 1: compression jobs run at once (one Worker each)
//   SQZ_MAX_QUEUED_JOBS                 100: further jobs get 429
//   SQZ_JOB_TIMEOUT_MS                  3,600,000: a job running longer is failed
//   SQZ_JOB_MAX_ATTEMPTS                3: restarts a job survives before it is failed
//   SQZ_EXTERNAL_DATA_THRESHOLD         2,080,374,784 (2 GiB − 64 MiB): a compression result
//                                       whose weights take more bytes keeps them in an external
//                                       data file, `model.onnx.data` (one .onnx cannot hold 2 GiB)
//   SQZ_REQUEST_TIMEOUT_MS              300,000: reading and handling an upload
//   SQZ_SHUTDOWN_GRACE_MS               10,000: how long a graceful stop waits for in-flight
//                                       requests before it exits anyway (status 1)
//   SQZ_PRELOAD / --no-preload          1: register models/mnist_cnn.onnx as "mnist" at start
//   SQZ_BACKEND                         wasm: where inference sessions run: wasm, webgpu (fails at
//                                       start without a WebGPU adapter) or auto (Session's backend)
//   SQZ_LOG                             info, or "off": no request or info lines (the startup
//                                       line, warnings and errors are still written)
//   SQZ_TEST_JOB_DELAY_MS               0: test hook; a job's worker waits this long before it
//                                       starts compressing (the restart test kills it then)
//   SQZ_TEST_REQUEST_DELAY_MS           0: test hook; uploads and compression requests wait this
//                                       long after reading their body (tests of the time limit)
//   SQZ_MAX_SEARCH_TRIALS               200: trials one search job may ask for (more is 400)
//   SQZ_TEST_TRIAL_DELAY_MS             0: test hook; a search job's worker waits this long
//                                       after each trial it has stored
//   SQZ_TEST_EPOCH_DELAY_MS             0: test hook; a fine-tuning job's worker waits this long
//                                       before each checkpoint it writes (tests of resume, cancel)
import { parseArgs } from "node:util";
import { ArgumentError } from "../src/mod.ts";
import { DEFAULT_EXTERNAL_THRESHOLD } from "../src/onnx/export.ts";

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  /** SHA-256 of every accepted API key; empty: no authentication. */
  apiKeyHashes: Uint8Array[];
  maxUploadBytes: number;
  maxInferBytes: number;
  maxTensorElements: number;
  sessionMemoryBytes: number;
  jobConcurrency: number;
  maxQueuedJobs: number;
  jobTimeoutMs: number;
  jobMaxAttempts: number;
  /** Weights (bytes) above which a compression result gets an external data file. */
  externalDataThreshold: number;
  requestTimeoutMs: number;
  shutdownGraceMs: number;
  preload: boolean;
  log: boolean;
  /** Session backend for inference (SessionOptions.backend). */
  backend: "wasm" | "webgpu" | "auto";
  testJobDelayMs: number;
  testRequestDelayMs: number;
  testEpochDelayMs: number;
  /** Trials a search job may ask for (SQZ_MAX_SEARCH_TRIALS). */
  maxSearchTrials: number;
  testTrialDelayMs: number;
}

const MiB = 1024 * 1024;

export const DEFAULTS: Omit<Config, "apiKeyHashes"> = {
  host: "127.0.0.1",
  port: 8080,
  dataDir: "./data",
  maxUploadBytes: 512 * MiB,
  maxInferBytes: 16 * MiB,
  maxTensorElements: 16 * MiB,
  sessionMemoryBytes: 1024 * MiB,
  jobConcurrency: 1,
  maxQueuedJobs: 100,
  jobTimeoutMs: 3_600_000,
  jobMaxAttempts: 3,
  externalDataThreshold: DEFAULT_EXTERNAL_THRESHOLD,
  requestTimeoutMs: 300_000,
  shutdownGraceMs: 10_000,
  preload: true,
  log: true,
  backend: "wasm",
  testJobDelayMs: 0,
  testRequestDelayMs: 0,
  testEpochDelayMs: 0,
  maxSearchTrials: 200,
  testTrialDelayMs: 0,
};

function int(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined || raw.trim() === "") return fallback;
  const v = Number(raw.trim());
  if (!Number.isSafeInteger(v) || v < min) {
    throw new ArgumentError(`${name} must be an integer ≥ ${min}, got '${raw}'`);
  }
  return v;
}

function backendOf(raw: string | undefined): Config["backend"] {
  const v = (raw ?? "").trim().toLowerCase() || "wasm";
  if (v !== "wasm" && v !== "webgpu" && v !== "auto") {
    throw new ArgumentError(`SQZ_BACKEND must be wasm, webgpu or auto, got '${raw}'`);
  }
  return v;
}

function flag(name: string, raw: string | undefined, fallback: boolean): boolean {
  if (raw === undefined || raw === "") return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ArgumentError(`${name} must be 1 or 0, got '${raw}'`);
}

export async function sha256(bytes: Uint8Array | string): Promise<Uint8Array> {
  const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>));
}

/**
 * Hashes of the keys in SQZ_API_KEYS and the keys file. Plain keys are hashed here and then
 * dropped: only the hashes are kept in memory.
 */
export async function loadKeyHashes(
  envKeys: string | undefined,
  keysFile: string | undefined,
): Promise<Uint8Array[]> {
  const entries: string[] = [];
  if (envKeys) entries.push(...envKeys.split(","));
  if (keysFile) {
    let text: string;
    try {
      text = await Deno.readTextFile(keysFile);
    } catch (e) {
      throw new ArgumentError(
        `cannot read the API keys file '${keysFile}': ${(e as Error).message}`,
      );
    }
    for (const line of text.split(/\r?\n/)) {
      const l = line.trim();
      if (l && !l.startsWith("#")) entries.push(l);
    }
  }
  const hashes: Uint8Array[] = [];
  for (const raw of entries) {
    const k = raw.trim();
    if (!k) continue;
    const hashed = /^sha256:([0-9a-fA-F]{64})$/.exec(k);
    if (hashed) {
      hashes.push(Uint8Array.from(hashed[1].match(/../g)!.map((h) => parseInt(h, 16))));
    } else {
      if (k.length < 8) throw new ArgumentError("API keys must be at least 8 characters long");
      hashes.push(await sha256(k));
    }
  }
  return hashes;
}

/** The configuration from `env` and `args` (flags win over the environment). */
export async function loadConfig(
  env: Record<string, string | undefined> = Deno.env.toObject(),
  args: string[] = [],
): Promise<Config> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        port: { type: "string" },
        host: { type: "string" },
        "data-dir": { type: "string" },
        "api-keys-file": { type: "string" },
        "no-preload": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    throw new ArgumentError((e as Error).message);
  }
  if (values.help) {
    throw new ArgumentError(
      "usage: server/main.ts [--port N] [--host ADDR] [--data-dir DIR] [--api-keys-file FILE] " +
        "[--no-preload]  (see server/README.md for the environment variables)",
    );
  }
  const port = int("PORT", values.port ?? env.PORT, DEFAULTS.port, 0);
  if (port > 65535) throw new ArgumentError(`PORT must be at most 65535, got ${port}`);
  return {
    host: values.host ?? env.SQZ_HOST ?? DEFAULTS.host,
    port,
    dataDir: values["data-dir"] ?? env.SQZ_DATA_DIR ?? DEFAULTS.dataDir,
    apiKeyHashes: await loadKeyHashes(
      env.SQZ_API_KEYS,
      values["api-keys-file"] ?? env.SQZ_API_KEYS_FILE,
    ),
    maxUploadBytes: int(
      "SQZ_MAX_UPLOAD_BYTES",
      env.SQZ_MAX_UPLOAD_BYTES,
      DEFAULTS.maxUploadBytes,
      1,
    ),
    maxInferBytes: int("SQZ_MAX_INFER_BYTES", env.SQZ_MAX_INFER_BYTES, DEFAULTS.maxInferBytes, 1),
    maxTensorElements: int(
      "SQZ_MAX_TENSOR_ELEMENTS",
      env.SQZ_MAX_TENSOR_ELEMENTS,
      DEFAULTS.maxTensorElements,
      1,
    ),
    sessionMemoryBytes: int(
      "SQZ_SESSION_MEMORY_BYTES",
      env.SQZ_SESSION_MEMORY_BYTES,
      DEFAULTS.sessionMemoryBytes,
      0,
    ),
    jobConcurrency: int("SQZ_JOB_CONCURRENCY", env.SQZ_JOB_CONCURRENCY, DEFAULTS.jobConcurrency, 1),
    maxQueuedJobs: int("SQZ_MAX_QUEUED_JOBS", env.SQZ_MAX_QUEUED_JOBS, DEFAULTS.maxQueuedJobs, 1),
    jobTimeoutMs: int("SQZ_JOB_TIMEOUT_MS", env.SQZ_JOB_TIMEOUT_MS, DEFAULTS.jobTimeoutMs, 1),
    jobMaxAttempts: int(
      "SQZ_JOB_MAX_ATTEMPTS",
      env.SQZ_JOB_MAX_ATTEMPTS,
      DEFAULTS.jobMaxAttempts,
      1,
    ),
    externalDataThreshold: int(
      "SQZ_EXTERNAL_DATA_THRESHOLD",
      env.SQZ_EXTERNAL_DATA_THRESHOLD,
      DEFAULTS.externalDataThreshold,
      0,
    ),
    requestTimeoutMs: int(
      "SQZ_REQUEST_TIMEOUT_MS",
      env.SQZ_REQUEST_TIMEOUT_MS,
      DEFAULTS.requestTimeoutMs,
      1,
    ),
    shutdownGraceMs: int(
      "SQZ_SHUTDOWN_GRACE_MS",
      env.SQZ_SHUTDOWN_GRACE_MS,
      DEFAULTS.shutdownGraceMs,
      0,
    ),
    preload: values["no-preload"] ? false : flag("SQZ_PRELOAD", env.SQZ_PRELOAD, DEFAULTS.preload),
    log: (env.SQZ_LOG ?? "info").toLowerCase() !== "off",
    backend: backendOf(env.SQZ_BACKEND),
    testJobDelayMs: int("SQZ_TEST_JOB_DELAY_MS", env.SQZ_TEST_JOB_DELAY_MS, 0, 0),
    testRequestDelayMs: int("SQZ_TEST_REQUEST_DELAY_MS", env.SQZ_TEST_REQUEST_DELAY_MS, 0, 0),
    testEpochDelayMs: int("SQZ_TEST_EPOCH_DELAY_MS", env.SQZ_TEST_EPOCH_DELAY_MS, 0, 0),
    maxSearchTrials: int(
      "SQZ_MAX_SEARCH_TRIALS",
      env.SQZ_MAX_SEARCH_TRIALS,
      DEFAULTS.maxSearchTrials,
      1,
    ),
    testTrialDelayMs: int("SQZ_TEST_TRIAL_DELAY_MS", env.SQZ_TEST_TRIAL_DELAY_MS, 0, 0),
  };
}
