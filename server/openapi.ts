// The OpenAPI 3.1 description of every route, written by hand (served at /openapi.json, and
// rendered as the /docs page).
import { SERVER_VERSION } from "./routes/v2.ts";
import {
  SEARCH_METHODS,
  SEARCH_METRICS,
  SEARCH_OBJECTIVES,
  SEARCH_STRATEGIES,
} from "./routes/search.ts";

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ "application/json": { schema } });
const error = (description: string) => ({ description, content: json(ref("Error")) });

const modelParam = {
  name: "id",
  in: "path",
  required: true,
  description: "Model id (`m_` and 24 base32 characters) or name.",
  schema: { type: "string" },
};
const jobParam = {
  name: "id",
  in: "path",
  required: true,
  description: "Job id (`j_` and 24 base32 characters).",
  schema: { type: "string", pattern: "^j_[a-z2-7]{24}$" },
};
const v2Name = {
  name: "name",
  in: "path",
  required: true,
  description: "Model name or id.",
  schema: { type: "string" },
};

const v2Version = {
  name: "version",
  in: "path",
  required: true,
  description: 'Model version: always "1" (any other is 404).',
  schema: { type: "string", enum: ["1"] },
};

const tensorSpec = {
  type: "object",
  required: ["name", "type", "dims"],
  properties: {
    name: { type: "string" },
    type: { type: "string", examples: ["float32"] },
    dims: {
      type: "array",
      items: { oneOf: [{ type: "integer" }, { type: "string" }] },
      description: "Declared dims; strings are symbolic (dynamic) dims.",
    },
  },
};

const v2Tensor = {
  type: "object",
  required: ["name", "datatype", "shape"],
  properties: {
    name: { type: "string" },
    datatype: {
      type: "string",
      enum: [
        "BOOL",
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "FP16",
        "FP32",
        "FP64",
      ],
    },
    shape: { type: "array", items: { type: "integer", minimum: -1 } },
    data: { description: "Row-major values, flat or nested (absent with binary data)." },
    parameters: {
      type: "object",
      properties: { binary_data_size: { type: "integer" }, binary_data: { type: "boolean" } },
    },
  },
};

const V2_MODEL = {
  parameters: [v2Name],
  get: {
    summary: "Model metadata (KServe v2)",
    tags: ["inference"],
    responses: {
      200: { description: "Metadata.", content: json(ref("ModelMetadata")) },
      404: error("No such model."),
    },
  },
};

const V2_READY = {
  parameters: [v2Name],
  get: {
    summary: "Model readiness (loads the model)",
    tags: ["inference"],
    responses: {
      200: { description: "Ready.", content: json({ type: "object" }) },
      404: error("No such model."),
    },
  },
};

const V2_INFER = {
  parameters: [v2Name],
  post: {
    summary: "Inference (KServe v2)",
    description:
      "JSON tensors, or Triton's binary tensor extension (Inference-Header-Content-Length). " +
      "Inputs are validated against the model's declared names, datatypes and shapes before " +
      "anything runs; requests are limited to SQZ_MAX_INFER_BYTES and SQZ_MAX_TENSOR_ELEMENTS.",
    tags: ["inference"],
    requestBody: {
      required: true,
      content: {
        "application/json": {
          schema: ref("InferRequest"),
          example: {
            inputs: [{
              name: "input",
              shape: [1, 1, 28, 28],
              datatype: "FP32",
              // A blank 28×28 image: 784 values, row-major.
              data: new Array(784).fill(0),
            }],
          },
        },
        "application/octet-stream": { schema: { type: "string", format: "binary" } },
      },
    },
    responses: {
      200: { description: "Outputs.", content: json(ref("InferResponse")) },
      400: error("Bad input: unknown name, wrong datatype or shape, bad values."),
      404: error("No such model."),
      413: error("Body or element count over the limit."),
    },
  },
};

/** A v2 model route's description under /versions/{version}. */
function versioned<T extends { parameters: readonly unknown[] }>(item: T): T {
  return { ...item, parameters: [...item.parameters, v2Version] };
}

export const OPENAPI = {
  openapi: "3.1.0",
  info: {
    title: "sqz",
    version: SERVER_VERSION,
    description:
      "Model compression and inference over HTTP: upload ONNX models, compress them with a " +
      "recipe (int8, int4, binary, ternary, pruning, low-rank, clustering) in background jobs " +
      "with live progress, and run them with the Open Inference Protocol (KServe v2). Errors " +
      'are `{ "error": { "code", "message" } }`; a method a path does not take is 405 with ' +
      "`Allow`, and while the server shuts down new requests get 503. When the server has API " +
      "keys, every route except /v2/health/* and /metrics needs `Authorization: Bearer <key>`.",
  },
  security: [{ bearer: [] }],
  paths: {
    "/v1/models": {
      get: {
        summary: "List models",
        tags: ["models"],
        responses: {
          200: {
            description: "All models, oldest first.",
            content: json({
              type: "object",
              properties: { models: { type: "array", items: ref("Model") } },
            }),
          },
        },
      },
      post: {
        summary: "Upload a model",
        description:
          "An ONNX model as the raw body (`application/octet-stream`, name in `?name=`), or " +
          "`multipart/form-data` with a file `model`, optional files `external` (external data; " +
          "each file's name is the `location` the model names) and an optional text field " +
          "`name`. The engine loads the model before anything is stored: a model it cannot " +
          "load gets 422 and nothing is kept; an external file the model does not refer to is " +
          "400. Past SQZ_REQUEST_TIMEOUT_MS the answer is 504 and nothing is kept.",
        tags: ["models"],
        parameters: [{
          name: "name",
          in: "query",
          schema: { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$" },
        }],
        requestBody: {
          required: true,
          content: {
            "application/octet-stream": { schema: { type: "string", format: "binary" } },
            "multipart/form-data": {
              schema: {
                type: "object",
                required: ["model"],
                properties: {
                  model: { type: "string", format: "binary" },
                  external: { type: "array", items: { type: "string", format: "binary" } },
                  name: { type: "string" },
                },
              },
            },
          },
        },
        responses: {
          201: { description: "Created.", content: json(ref("Model")) },
          400: error("Bad request (empty body, bad name, bad form)."),
          409: error("The name is taken."),
          413: error("The body is larger than SQZ_MAX_UPLOAD_BYTES."),
          415: error("Neither a raw body nor multipart."),
          422: error("The engine cannot load the model."),
          504: error("Longer than SQZ_REQUEST_TIMEOUT_MS: nothing was stored."),
        },
      },
    },
    "/v1/models/{id}": {
      parameters: [modelParam],
      get: {
        summary: "A model: inputs, outputs, size, op histogram, parent",
        tags: ["models"],
        responses: {
          200: { description: "The model.", content: json(ref("Model")) },
          400: error("Not an id nor a name."),
          404: error("No such model."),
        },
      },
      delete: {
        summary: "Delete a model",
        description:
          "Refused with 409 while a queued or running job reads the model. Finished jobs and " +
          "child models keep their `modelId` / `parentId` as a record. Files no other model " +
          "uses are deleted.",
        tags: ["models"],
        responses: {
          204: { description: "Deleted." },
          404: error("No such model."),
          409: error("A job is using the model."),
        },
      },
    },
    "/v1/models/{id}/artifact": {
      parameters: [modelParam],
      get: {
        summary: "Download the ONNX file (or, with ?external=, one external data file)",
        tags: ["models"],
        parameters: [{ name: "external", in: "query", schema: { type: "string" } }],
        responses: {
          200: {
            description: "The file; ETag is its SHA-256.",
            content: {
              "application/octet-stream": { schema: { type: "string", format: "binary" } },
            },
          },
          304: { description: "Not modified (If-None-Match)." },
          404: error("No such model."),
        },
      },
    },
    "/v1/models/{id}/compress": {
      parameters: [modelParam],
      post: {
        summary: "Start a compression job",
        description:
          "JSON `{ recipe, name? }`, or multipart with `recipe` (text or .json file), `name` and " +
          "`calibration` (a .npy array of N samples for the model's single input, for static " +
          "int8; N a multiple of the input's batch size when that is fixed). The recipe is " +
          "validated before anything is queued, and must compress something in the model (a " +
          "Conv / Gemm / MatMul with constant float weights it quantizes, prunes, factorizes or " +
          "clusters). Without calibration data `int8` falls back to dynamic quantization and " +
          "the report says so; with a recipe that does not calibrate, the data serves the " +
          "evaluation only and the report says that. `name` names the compressed model. " +
          "A recipe that fine-tunes (a `<preset>+ft` such as `int8+ft`, `binary+ft`, " +
          "`prune:0.9+ft`, or a recipe with a `finetune` block) needs multipart `train` (.npy, N " +
          "samples of the model's single input, float32, finite) and takes `labels` (.npy, N " +
          "class indices: int64, int32, uint8, …, each below the model's class count), " +
          "`validation` and `validation_labels` likewise; without labels it distills from the " +
          "float model. Training data with a recipe that does not fine-tune is 400, as are " +
          "malformed .npy files, wrong dtypes or dims and label counts that differ from the " +
          "sample counts. The job reports every finished epoch as an `epoch` event and in its " +
          "`training` field, writes a checkpoint after each, and after a server restart goes on " +
          "from the last one. Past SQZ_REQUEST_TIMEOUT_MS the answer is 504 and no job is made.",
        tags: ["jobs"],
        requestBody: {
          required: true,
          content: {
            "application/json": {
              schema: {
                type: "object",
                required: ["recipe"],
                properties: { recipe: ref("Recipe"), name: { type: "string" } },
              },
              example: { recipe: "int8", name: "mnist-int8" },
            },
            "multipart/form-data": {
              schema: {
                type: "object",
                required: ["recipe"],
                properties: {
                  recipe: { type: "string" },
                  name: { type: "string" },
                  calibration: {
                    type: "string",
                    format: "binary",
                    description: ".npy: N samples for static int8 calibration.",
                  },
                  train: {
                    type: "string",
                    format: "binary",
                    description: ".npy: N training samples (float32) for a fine-tuning recipe.",
                  },
                  labels: {
                    type: "string",
                    format: "binary",
                    description: ".npy: N class indices of `train` (int64, int32, uint8, …).",
                  },
                  validation: {
                    type: "string",
                    format: "binary",
                    description: ".npy: held-out samples: per-epoch accuracy, early stopping.",
                  },
                  validation_labels: {
                    type: "string",
                    format: "binary",
                    description: ".npy: class indices of `validation`.",
                  },
                },
              },
            },
          },
        },
        responses: {
          202: { description: "Queued; Location is the job.", content: json(ref("Job")) },
          400: error(
            "Bad recipe, recipe that does not fit the model or compresses nothing in it, bad " +
              "calibration, training or validation data (malformed .npy, dtype, dims, label " +
              "count or range, non-finite values), training data missing for a fine-tuning " +
              "recipe or given to one that does not fine-tune.",
          ),
          404: error("No such model."),
          409: error("The result name is taken."),
          413: error("The body is too large."),
          429: error("Too many queued jobs (SQZ_MAX_QUEUED_JOBS)."),
          503: error("The server is shutting down."),
          504: error("Longer than SQZ_REQUEST_TIMEOUT_MS: no job was made."),
        },
      },
    },
    "/v1/models/{id}/search": {
      parameters: [modelParam],
      post: {
        summary: "Start a compression search job",
        description:
          "Searches per-layer compression settings (mixed precision, pruning, low-rank, " +
          "clustering) for the models that minimize `objectives` while keeping `budget` on the " +
          "validation data (src/search). Multipart: the files `validation` (.npy, N samples of " +
          "the model's single input; required) and `validation_labels` (N class indices; " +
          "required for the `accuracy` metric), optional `calibration` (static int8) and " +
          "`train` / `labels` (fine-tuning genes), and the text fields `budget` (JSON), " +
          "`objectives` (JSON list or comma-separated), `strategy`, `trials`, `seed`, " +
          "`concurrency`, `space` (JSON), `name` — or all of them as one JSON object in the " +
          "field `options`. Everything is checked before anything is stored (400 with the " +
          "reason): the budget (`maxDrop` in [0, 1]; for `kl` without `relative`, any value ≥ " +
          "0), objectives, strategy, trials in [1, SQZ_MAX_SEARCH_TRIALS], concurrency up to " +
          "the machine's cores, space layers that name nodes or op types of the model, and the " +
          "data. A JSON body takes the same fields but cannot carry the validation data. The " +
          "job (`kind: search`) sends a `trial` event per finished trial; finished trials are " +
          "stored as they finish, so after a restart the job goes on with them kept. The best " +
          "model is registered with `parentId` = this model; when no trial meets the budget the " +
          "job still succeeds, with `result.best: null` and the explanation, and no model.",
        tags: ["jobs"],
        requestBody: {
          required: true,
          content: {
            "multipart/form-data": {
              schema: {
                type: "object",
                required: ["validation", "budget"],
                properties: {
                  validation: {
                    type: "string",
                    format: "binary",
                    description: ".npy: N validation samples of the model's single input.",
                  },
                  validation_labels: {
                    type: "string",
                    format: "binary",
                    description: ".npy: N class indices (int64, int32, uint8, …).",
                  },
                  calibration: {
                    type: "string",
                    format: "binary",
                    description: ".npy: samples for static int8 (without it int8 is dynamic).",
                  },
                  train: {
                    type: "string",
                    format: "binary",
                    description: ".npy: training samples, for fine-tuning candidates.",
                  },
                  labels: {
                    type: "string",
                    format: "binary",
                    description: ".npy: class indices of `train`.",
                  },
                  budget: { type: "string", description: "JSON: a SearchBudget." },
                  objectives: { type: "string", examples: ["size,latency", '["size"]'] },
                  strategy: { type: "string", enum: [...SEARCH_STRATEGIES] },
                  trials: { type: "integer", minimum: 1 },
                  seed: { type: "integer", minimum: 0 },
                  concurrency: { type: "integer", minimum: 1 },
                  space: { type: "string", description: "JSON: a SearchSpace." },
                  name: { type: "string", description: "Name of the best model." },
                  options: {
                    type: "string",
                    description: "JSON: a SearchOptions object (instead of the separate fields).",
                  },
                },
              },
            },
            "application/json": {
              schema: ref("SearchOptions"),
              example: {
                budget: { metric: "accuracy", maxDrop: 0.005 },
                objectives: ["size", "latency"],
                strategy: "tpe",
                trials: 40,
                seed: 0,
              },
            },
          },
        },
        responses: {
          202: { description: "Queued; Location is the job.", content: json(ref("Job")) },
          400: error(
            "Bad budget, objective, strategy, trials (≤ 0 or over SQZ_MAX_SEARCH_TRIALS), " +
              "concurrency, space (unknown layers or methods), missing validation data (or " +
              "labels for the accuracy metric), bad .npy data, a model with external data or " +
              "nothing to compress.",
          ),
          404: error("No such model."),
          409: error("The result name is taken."),
          413: error("The body is too large."),
          429: error("Too many queued jobs (SQZ_MAX_QUEUED_JOBS)."),
          503: error("The server is shutting down."),
          504: error("Longer than SQZ_REQUEST_TIMEOUT_MS: no job was made."),
        },
      },
    },
    "/v1/jobs": {
      get: {
        summary: "List jobs",
        tags: ["jobs"],
        parameters: [
          {
            name: "state",
            in: "query",
            schema: {
              type: "string",
              enum: ["queued", "running", "succeeded", "failed", "cancelled"],
            },
          },
          {
            name: "model",
            in: "query",
            description: "Input model id or name.",
            schema: { type: "string" },
          },
        ],
        responses: {
          200: {
            description: "Jobs, oldest first.",
            content: json({
              type: "object",
              properties: { jobs: { type: "array", items: ref("Job") } },
            }),
          },
        },
      },
    },
    "/v1/jobs/{id}": {
      parameters: [jobParam],
      get: {
        summary: "A job's state and progress",
        tags: ["jobs"],
        responses: {
          200: { description: "The job.", content: json(ref("Job")) },
          404: error("No such job."),
        },
      },
    },
    "/v1/jobs/{id}/events": {
      parameters: [jobParam],
      get: {
        summary: "The job's progress as Server-Sent Events",
        description:
          "Every past event, then live ones; the stream ends after the event that puts the job " +
          "in a final state (succeeded, failed, cancelled). Events: `state` (`{ state, progress, " +
          "stage, error?, resultModelId?, reason? }`), `progress` (`{ progress, stage }`), and " +
          "for fine-tuning jobs `epoch` (an EpochProgress: `{ epoch, epochs, loss, " +
          "trainAccuracy?, valAccuracy?, valAgreement?, lr, ms }`, one per finished epoch), " +
          "`checkpoint` (`{ epoch }`: its checkpoint is on disk) and `resumed` (`{ fromEpoch }`: " +
          "a restarted job goes on after that epoch); for search jobs `trial` (a SearchTrial " +
          "with `done` and `total`, one per finished trial) and `resumed` (`{ trials }`: a " +
          "restarted search goes on with that many finished trials kept), and the final `state` " +
          "event has `best`, `pareto` (trial ids) and `explanation`. Every event has `jobId`, " +
          "`seq` and `at`, " +
          "and `id` = `seq`, so a client reconnecting with Last-Event-ID gets only what it " +
          "missed.",
        tags: ["jobs"],
        responses: {
          200: {
            description: "An event stream.",
            content: { "text/event-stream": { schema: { type: "string" } } },
          },
          404: error("No such job."),
        },
      },
    },
    "/v1/jobs/{id}/cancel": {
      parameters: [jobParam],
      post: {
        summary: "Cancel a queued or running job",
        description:
          "A queued job is cancelled at once. A running one is stopped: its worker's compress() " +
          "gets an aborted signal, and a worker that does not stop within 2 s is terminated. " +
          "The answer comes once the job is `cancelled`: nothing was stored (no model, no " +
          "report), its input files and checkpoints are deleted, and its event stream ends " +
          "with a `state` event `cancelled`.",
        tags: ["jobs"],
        responses: {
          200: { description: "The job, cancelled.", content: json(ref("Job")) },
          404: error("No such job."),
          409: error("The job has finished already (succeeded, failed or cancelled)."),
        },
      },
    },
    "/v1/jobs/{id}/report": {
      parameters: [jobParam],
      get: {
        summary: "The report of a succeeded job (JSON, or HTML with Accept: text/html)",
        description:
          "For a search job: `{ jobId, modelId, resultModelId, search: SearchSummary (every " +
          "trial included), compression? (the best model's report) }`, also when no model met " +
          "the budget. Otherwise " +
          "JSON `{ jobId, modelId, resultModelId, compression, evaluation? }`: the compression " +
          "report (per layer: method, parameters, bytes before and after; notes) and, when one " +
          "could be made, an evaluation of the result against its parent on the calibration " +
          "samples (or synthetic inputs): top-1 agreement, KL, per-layer SQNR, size, latency.",
        tags: ["jobs"],
        responses: {
          200: {
            description: "The report.",
            content: {
              "application/json": { schema: { type: "object" } },
              "text/html": { schema: { type: "string" } },
            },
          },
          404: error("No such job."),
          409: error("The job has not succeeded (running, failed, cancelled)."),
        },
      },
    },
    "/v2": {
      get: {
        summary: "Server metadata (KServe v2)",
        tags: ["inference"],
        responses: {
          200: {
            description: "`{ name, version, extensions }`",
            content: json({ type: "object" }),
          },
        },
      },
    },
    "/v2/health/live": {
      get: {
        summary: "Liveness (no key needed)",
        tags: ["inference"],
        security: [],
        responses: { 200: { description: "Live.", content: json({ type: "object" }) } },
      },
    },
    "/v2/health/ready": {
      get: {
        summary: "Readiness (no key needed)",
        tags: ["inference"],
        security: [],
        responses: {
          200: { description: "Ready.", content: json({ type: "object" }) },
          503: error("Starting or shutting down."),
        },
      },
    },
    "/v2/models/{name}": V2_MODEL,
    "/v2/models/{name}/ready": V2_READY,
    "/v2/models/{name}/infer": V2_INFER,
    // The same routes under an explicit version (KServe v2 clients may send one).
    "/v2/models/{name}/versions/{version}": versioned(V2_MODEL),
    "/v2/models/{name}/versions/{version}/ready": versioned(V2_READY),
    "/v2/models/{name}/versions/{version}/infer": versioned(V2_INFER),
    "/metrics": {
      get: {
        summary: "Prometheus metrics (no key needed)",
        tags: ["operations"],
        security: [],
        responses: {
          200: {
            description: "Text exposition format 0.0.4.",
            content: { "text/plain": { schema: { type: "string" } } },
          },
        },
      },
    },
    "/openapi.json": {
      get: {
        summary: "This document",
        tags: ["operations"],
        responses: { 200: { description: "OpenAPI 3.1.", content: json({ type: "object" }) } },
      },
    },
    "/docs": {
      get: {
        summary: "This document as an HTML page",
        tags: ["operations"],
        responses: {
          200: { description: "HTML.", content: { "text/html": { schema: { type: "string" } } } },
        },
      },
    },
    "/playground": {
      get: {
        summary: "Redirects to /playground/",
        tags: ["operations"],
        security: [],
        responses: { 301: { description: "To /playground/." } },
      },
    },
    "/playground/": {
      get: {
        summary: "The browser playground (runs sqz in the page; no key needed)",
        tags: ["operations"],
        security: [],
        responses: {
          200: { description: "HTML.", content: { "text/html": { schema: { type: "string" } } } },
          404: { description: "The playground is not built (deno task build:web)." },
        },
      },
    },
    "/playground/{file}": {
      get: {
        summary: "A file of the playground: sqz.js, the kernel .wasm builds, the page's scripts",
        tags: ["operations"],
        security: [],
        parameters: [{ name: "file", in: "path", required: true, schema: { type: "string" } }],
        responses: {
          200: { description: "The file, with its media type." },
          404: { description: "No such file." },
        },
      },
    },
    "/": {
      get: {
        summary: "Links to the API's parts",
        tags: ["operations"],
        responses: { 200: { description: "Links.", content: json({ type: "object" }) } },
      },
    },
  },
  components: {
    securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    schemas: {
      Error: {
        type: "object",
        required: ["error"],
        properties: {
          error: {
            type: "object",
            required: ["code", "message"],
            properties: {
              code: {
                type: "string",
                examples: [
                  "invalid_argument",
                  "invalid_model",
                  "invalid_shape",
                  "invalid_datatype",
                  "not_found",
                  "unauthenticated",
                  "payload_too_large",
                ],
              },
              message: { type: "string" },
            },
          },
        },
      },
      Model: {
        type: "object",
        required: ["id", "sha256", "bytes", "inputs", "outputs", "opHistogram", "createdAt"],
        properties: {
          id: { type: "string", pattern: "^m_[a-z2-7]{24}$" },
          name: { type: "string" },
          sha256: { type: "string" },
          bytes: {
            type: "integer",
            description: "The model's size: the ONNX file plus its external data files.",
          },
          graphBytes: {
            type: "integer",
            description: "With external data: the ONNX file alone.",
          },
          inputs: { type: "array", items: tensorSpec },
          outputs: { type: "array", items: tensorSpec },
          opHistogram: { type: "object", additionalProperties: { type: "integer" } },
          externalData: {
            type: "array",
            items: {
              type: "object",
              properties: {
                location: { type: "string" },
                sha256: { type: "string" },
                bytes: { type: "integer" },
              },
            },
          },
          parentId: { type: "string", description: "The model this one was compressed from." },
          jobId: { type: "string", description: "The job that made it." },
          createdAt: { type: "string", format: "date-time" },
        },
      },
      Job: {
        type: "object",
        required: [
          "id",
          "kind",
          "state",
          "progress",
          "stage",
          "modelId",
          "attempts",
          "createdAt",
        ],
        properties: {
          id: { type: "string", pattern: "^j_[a-z2-7]{24}$" },
          kind: {
            type: "string",
            enum: ["compress", "search"],
            description: "A compression job (has `recipe`) or a search job (has `search`).",
          },
          search: ref("SearchOptions"),
          result: ref("SearchSummary"),
          state: {
            type: "string",
            enum: ["queued", "running", "succeeded", "failed", "cancelled"],
          },
          progress: { type: "number", minimum: 0, maximum: 1 },
          stage: { type: "string" },
          modelId: { type: "string" },
          recipe: ref("Recipe"),
          name: { type: "string" },
          calibration: ref("NpyInput"),
          train: {
            description: "Training data of a fine-tuning job, with its labels when given.",
            allOf: [ref("NpyInput")],
            properties: { labels: ref("NpyInput") },
          },
          validation: {
            description: "Validation data of a fine-tuning job, with its labels when given.",
            allOf: [ref("NpyInput")],
            properties: { labels: ref("NpyInput") },
          },
          training: {
            type: "object",
            description: "Fine-tuning progress (absent until an epoch has finished).",
            required: ["epochsDone"],
            properties: {
              epochs: { type: "integer", description: "Epochs the recipe asks for." },
              epochsDone: {
                type: "integer",
                description: "Epochs finished, over every attempt (a resumed run continues).",
              },
              checkpointEpoch: {
                type: "integer",
                description: "The epoch of the last checkpoint written; a restart resumes there.",
              },
              resumedFromEpoch: {
                type: "integer",
                description: "This attempt resumed after that epoch.",
              },
              last: ref("EpochProgress"),
            },
          },
          resultModelId: { type: "string" },
          error: {
            type: "object",
            properties: { code: { type: "string" }, message: { type: "string" } },
          },
          attempts: { type: "integer" },
          createdAt: { type: "string", format: "date-time" },
          startedAt: { type: "string", format: "date-time" },
          finishedAt: { type: "string", format: "date-time" },
          links: { type: "object" },
        },
      },
      Recipe: {
        description:
          "A preset (int8, int8-dynamic, int4, int4:matmulnbits (ORT's MatMulNBits layout), binary, " +
          "ternary, prune:<sparsity>, svd:<energy>, " +
          "cluster:<k>, and any of them with `+ft`: fine-tuned, e.g. binary+ft) or a recipe " +
          "object (method, int8, int4, binary, layers, prune, structured, lowrank, cluster, " +
          "finetune), as src/compress/recipe.ts documents. `finetune`: `{ epochs, batchSize, " +
          "optimizer: sgd|adam|adamw, lr, momentum, weightDecay, schedule: constant|cosine|" +
          "step, stepEpochs, gamma, warmupEpochs, clipNorm, seed, distill?: { temperature, " +
          "alpha }, earlyStopping?: { patience, minDelta } }`, every field optional.",
        oneOf: [{ type: "string" }, { type: "object" }],
        examples: [
          "int8",
          "binary+ft",
          {
            method: "binary",
            finetune: {
              epochs: 10,
              batchSize: 64,
              optimizer: "adam",
              lr: 0.001,
              schedule: "cosine",
              distill: { temperature: 4, alpha: 0.7 },
              earlyStopping: { patience: 3 },
            },
          },
        ],
      },
      SearchBudget: {
        type: "object",
        required: ["maxDrop"],
        properties: {
          metric: { type: "string", enum: [...SEARCH_METRICS], default: "accuracy" },
          maxDrop: {
            type: "number",
            minimum: 0,
            description:
              "Largest allowed drop from the float model: in [0, 1] for accuracy and agreement " +
              "(0.005 = half a point), any value ≥ 0 for kl (the largest mean KL); with " +
              "`relative`, a share of the float model's value, in [0, 1].",
          },
          relative: { type: "boolean" },
        },
      },
      SearchSpace: {
        type: "object",
        properties: {
          methods: {
            type: "array",
            items: { type: "string", enum: [...SEARCH_METHODS] },
            description: 'Method families allowed ("float" always is).',
          },
          layers: {
            type: "object",
            additionalProperties: { type: "array", items: { type: "string" } },
            description:
              'Node name or op type → choices ("float", "int8", "int8-dynamic", "int4", ' +
              '"ternary", "binary", "prune:<s>", "nm:<n>:<m>", "structured:<r>", "lowrank:<e>", ' +
              '"cluster:<k>", "+" combinations).',
          },
        },
      },
      SearchOptions: {
        type: "object",
        required: ["budget"],
        properties: {
          budget: ref("SearchBudget"),
          objectives: {
            type: "array",
            items: { type: "string", enum: [...SEARCH_OBJECTIVES] },
            default: ["size", "latency"],
          },
          strategy: { type: "string", enum: [...SEARCH_STRATEGIES], default: "sensitivity" },
          trials: {
            type: "integer",
            minimum: 1,
            default: 40,
            description: "At most SQZ_MAX_SEARCH_TRIALS (200).",
          },
          seed: { type: "integer", minimum: 0, default: 0 },
          concurrency: { type: "integer", minimum: 1, default: 1 },
          space: ref("SearchSpace"),
          name: { type: "string", description: "Name of the best model." },
        },
      },
      SearchTrial: {
        type: "object",
        description: "One finished trial (the `trial` event adds `done` and `total`).",
        properties: {
          id: { type: "integer" },
          phase: { type: "string" },
          recipe: ref("Recipe"),
          hash: { type: "string" },
          assignment: { type: "object" },
          metrics: {
            type: "object",
            properties: {
              accuracy: { type: "number" },
              agreement: { type: "number" },
              kl: { type: "number" },
              size: { type: "integer" },
              gzipSize: { type: "integer" },
              latencyMs: { type: "number" },
              memory: { type: "integer" },
              macs: { type: "integer" },
            },
          },
          feasible: { type: "boolean" },
          predicted: { type: "object", properties: { latencyMs: { type: "number" } } },
          earlyRejected: { type: "boolean" },
          error: { type: "string" },
          durationMs: { type: "number" },
        },
      },
      SearchSummary: {
        type: "object",
        description:
          "A finished search: in the job (`result`, without the trial list: `trialsRun` " +
          "counts them) and in the report (`search`, with `trials`, `sensitivity`, `space`).",
        properties: {
          strategy: { type: "string" },
          seed: { type: "integer" },
          trialsRequested: { type: "integer" },
          budget: ref("SearchBudget"),
          objectives: { type: "array", items: { type: "string" } },
          reference: {
            type: "object",
            properties: { metric: { type: "number" }, threshold: { type: "number" } },
          },
          baseline: {
            type: "object",
            properties: { float: ref("SearchTrial"), int8: ref("SearchTrial") },
          },
          best: {
            oneOf: [
              {
                type: "object",
                properties: { trial: ref("SearchTrial"), recipe: ref("Recipe") },
              },
              { type: "null" },
            ],
          },
          pareto: {
            type: "array",
            items: {
              type: "object",
              properties: {
                id: { type: "integer" },
                metrics: { type: "object" },
                recipe: ref("Recipe"),
              },
            },
          },
          explanation: { type: "array", items: { type: "string" } },
          resumedTrials: { type: "integer", description: "Trials kept from an earlier attempt." },
          trialsRun: { type: "integer" },
          trials: { type: "array", items: ref("SearchTrial") },
        },
      },
      NpyInput: {
        type: "object",
        description: "A .npy input file of a job, as its header describes it.",
        properties: {
          samples: { type: "integer" },
          dims: { type: "array", items: { type: "integer" } },
          type: { type: "string", examples: ["float32", "int64"] },
          bytes: { type: "integer" },
        },
      },
      EpochProgress: {
        type: "object",
        description: "One finished fine-tuning epoch (the SSE `epoch` event's data).",
        required: ["epoch", "epochs", "loss", "lr", "ms"],
        properties: {
          epoch: { type: "integer" },
          epochs: { type: "integer" },
          loss: { type: "number" },
          trainAccuracy: { type: "number" },
          valAccuracy: { type: "number" },
          valAgreement: {
            type: "number",
            description: "Top-1 agreement with the teacher on unlabelled validation data.",
          },
          lr: { type: "number" },
          ms: { type: "number" },
        },
      },
      ModelMetadata: {
        type: "object",
        properties: {
          name: { type: "string" },
          versions: { type: "array", items: { type: "string" } },
          platform: { type: "string" },
          inputs: { type: "array", items: v2Tensor },
          outputs: { type: "array", items: v2Tensor },
        },
      },
      InferRequest: {
        type: "object",
        required: ["inputs"],
        properties: {
          id: { type: "string" },
          parameters: { type: "object", properties: { binary_data_output: { type: "boolean" } } },
          inputs: { type: "array", items: v2Tensor },
          outputs: {
            type: "array",
            items: {
              type: "object",
              required: ["name"],
              properties: { name: { type: "string" }, parameters: { type: "object" } },
            },
          },
        },
      },
      InferResponse: {
        type: "object",
        properties: {
          model_name: { type: "string" },
          model_version: { type: "string" },
          id: { type: "string" },
          outputs: { type: "array", items: v2Tensor },
        },
      },
    },
  },
} as const;

function escapeHtml(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The API as one static HTML page: no scripts, no external resources. */
export function docsHtml(): string {
  const sections: string[] = [];
  for (const [path, item] of Object.entries(OPENAPI.paths)) {
    for (const [method, op] of Object.entries(item as Record<string, unknown>)) {
      if (method === "parameters") continue;
      const o = op as {
        summary: string;
        description?: string;
        responses: Record<string, { description: string }>;
      };
      const responses = Object.entries(o.responses).map(([code, r]) =>
        `<li><code>${code}</code> ${escapeHtml(r.description)}</li>`
      ).join("");
      sections.push(
        `<section><h3><span class="m ${method}">${method.toUpperCase()}</span> <code>${
          escapeHtml(path)
        }</code></h3><p>${escapeHtml(o.summary)}</p>${
          o.description ? `<p>${escapeHtml(o.description)}</p>` : ""
        }<ul>${responses}</ul></section>`,
      );
    }
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>sqz API</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em;color:#222}
code,pre{font:13px ui-monospace,monospace;background:#f4f4f4;padding:.1em .3em;border-radius:3px}
pre{padding:.8em;overflow:auto}section{border-top:1px solid #ddd;padding:.3em 0}
.m{display:inline-block;min-width:4.5em;text-align:center;color:#fff;border-radius:3px;font-size:12px;padding:.1em .4em}
.get{background:#2b7}.post{background:#27b}.delete{background:#c33}
</style></head><body>
<h1>sqz API <small>${escapeHtml(OPENAPI.info.version)}</small></h1>
<p>${escapeHtml(OPENAPI.info.description)}</p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>
<h2>Quick start</h2>
<pre>curl -X POST --data-binary @models/mnist_cnn.onnx -H 'Content-Type: application/octet-stream' \\
  'http://127.0.0.1:8080/v1/models?name=my-cnn'
curl -X POST -H 'Content-Type: application/json' -d '{"recipe":"int8"}' \\
  http://127.0.0.1:8080/v1/models/my-cnn/compress
curl -X POST -H 'Content-Type: application/json' \\
  -d '{"inputs":[{"name":"input","shape":[1,1,28,28],"datatype":"FP32","data":[0, …784 values]}]}' \\
  http://127.0.0.1:8080/v2/models/my-cnn/infer</pre>
<h2>Routes</h2>
${sections.join("\n")}
</body></html>
`;
}
