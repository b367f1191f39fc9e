// POST /v1/models/:id/search: a compression search as a job (kind `search`, jobs/queue.ts and
// jobs/search_worker.ts). Everything is checked before anything is stored — 400 with the
// reason otherwise — then the data files are stored as a compression job's are
// (content-addressed, deleted once the job has finished) and the job is queued.
//
// Body: multipart/form-data (the data are .npy files) with the files `validation` (required),
// `validation_labels` (required for the accuracy budget), `calibration`, `train`, `labels`, and
// the text fields `budget` (JSON), `objectives` (JSON array or "size,latency"), `strategy`,
// `trials`, `seed`, `concurrency`, `space` (JSON), `name` — or all the text fields at once as
// one JSON object in the field `options`. A JSON body takes the same fields, but cannot carry
// the validation data a search needs (it is refused with a message saying so).
import { type Context, Hono } from "hono";
import { importModel, OBJECTIVES, STRATEGIES, type Tensor } from "../../src/mod.ts";
import type { AppEnv } from "../context.ts";
import type { Deps } from "../app.ts";
import type { JobData, JobRecord, ModelRecord, NpyInfo, SearchParams } from "../store/db.ts";
import { checkFinite, checkLabels, checkSamples, classCount } from "../jobs/data.ts";
import { badRequest, HttpError, shuttingDown, unsupportedMedia } from "../errors.ts";
import { newId } from "../ids.ts";
import { readBody, uploadLimits } from "./limits.ts";
import { formOf, testDelay } from "./models.ts";
import { checkCalibration, npyField, npyInfo, queueJob, weightLayers } from "./jobs.ts";

// The names search() knows.
export const SEARCH_OBJECTIVES = OBJECTIVES;
export const SEARCH_STRATEGIES = STRATEGIES;
export const SEARCH_METRICS = ["accuracy", "agreement", "kl"] as const;
export const SEARCH_METHODS = [
  "int8",
  "int8-dynamic",
  "int4",
  "ternary",
  "binary",
  "prune",
  "nm",
  "structured",
  "lowrank",
  "cluster",
] as const;

const DEFAULT_TRIALS = 40;
const DEFAULT_STRATEGY = "sensitivity";
const DEFAULT_OBJECTIVES = ["size", "latency"];

const OPTION_FIELDS = [
  "budget",
  "objectives",
  "strategy",
  "trials",
  "seed",
  "concurrency",
  "space",
  "name",
] as const;
type OptionField = typeof OPTION_FIELDS[number];
const FILE_FIELDS = ["validation", "validation_labels", "calibration", "train", "labels"] as const;
type FileField = typeof FILE_FIELDS[number];

interface SearchRequest {
  options: Partial<Record<OptionField, unknown>>;
  files: Partial<Record<FileField, Uint8Array>>;
}

const FIELDS_HINT = `${OPTION_FIELDS.join(", ")}, options; files ${FILE_FIELDS.join(", ")}`;

function parseJsonField(text: string, field: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw badRequest(`'${field}' is not valid JSON: ${(e as Error).message}`);
  }
}

/** A multipart text field as the JSON value it stands for. */
function textOption(field: OptionField, text: string): unknown {
  const t = text.trim();
  switch (field) {
    case "budget":
    case "space":
      return parseJsonField(t, field);
    case "objectives":
      return t.startsWith("[") ? parseJsonField(t, field) : t.split(",").map((s) => s.trim());
    case "trials":
    case "seed":
    case "concurrency":
      // Validated as numbers below; a non-number stays a string and is refused there.
      return /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : t;
    default:
      return text;
  }
}

function assignOptions(
  out: SearchRequest["options"],
  o: Record<string, unknown>,
  where: string,
): void {
  for (const [k, v] of Object.entries(o)) {
    if (!(OPTION_FIELDS as readonly string[]).includes(k)) {
      throw badRequest(
        `unknown field '${k.slice(0, 40)}' in ${where} (${OPTION_FIELDS.join(", ")})`,
      );
    }
    if (k in out) throw badRequest(`'${k}' is given twice`);
    out[k as OptionField] = v;
  }
}

async function readSearchRequest(c: Context<AppEnv>): Promise<SearchRequest> {
  const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
  const out: SearchRequest = { options: {}, files: {} };
  if (type === "application/json") {
    const text = new TextDecoder().decode(await readBody(c));
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      throw badRequest(`the body is not valid JSON: ${(e as Error).message}`);
    }
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw badRequest('the body must be a JSON object { "budget": …, "objectives"?: …, … }');
    }
    for (const k of Object.keys(body)) {
      if ((FILE_FIELDS as readonly string[]).includes(k)) {
        throw badRequest(`'${k}' is a .npy file: send it in a multipart request`);
      }
    }
    assignOptions(out.options, body as Record<string, unknown>, "the body");
    return out;
  }
  if (type === "multipart/form-data") {
    const form = await formOf(c);
    const seen = new Set<string>();
    for (const [key, value] of form.entries()) {
      if (seen.has(key)) throw badRequest(`the form field '${key.slice(0, 40)}' is given twice`);
      seen.add(key);
      if ((FILE_FIELDS as readonly string[]).includes(key)) {
        if (typeof value === "string") throw badRequest(`'${key}' must be a .npy file`);
        out.files[key as FileField] = new Uint8Array(await value.arrayBuffer());
      } else if (key === "options") {
        const text = typeof value === "string" ? value : await value.text();
        const o = parseJsonField(text, "options");
        if (typeof o !== "object" || o === null || Array.isArray(o)) {
          throw badRequest("'options' must be a JSON object");
        }
        assignOptions(out.options, o as Record<string, unknown>, "'options'");
      } else if ((OPTION_FIELDS as readonly string[]).includes(key)) {
        if (key === "name" && typeof value !== "string") {
          throw badRequest("'name' must be a text field");
        }
        const text = typeof value === "string" ? value : await value.text();
        assignOptions(out.options, { [key]: textOption(key as OptionField, text) }, "the form");
      } else {
        throw badRequest(`unknown form field '${key.slice(0, 40)}' (${FIELDS_HINT})`);
      }
    }
    return out;
  }
  throw unsupportedMedia(
    `send the search as multipart/form-data (with its .npy data) or application/json, not '${
      type || "(none)"
    }'`,
  );
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function intOption(
  v: unknown,
  field: string,
  min: number,
  max: number,
  fallback: number,
  why = "",
): number {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "number" || !Number.isSafeInteger(v)) {
    throw badRequest(`'${field}' must be an integer, got ${JSON.stringify(v)?.slice(0, 40)}`);
  }
  if (v < min || v > max) {
    throw badRequest(`'${field}' must be in [${min}, ${max}]${why}, got ${v}`);
  }
  return v;
}

/** The budget: `{ metric, maxDrop, relative? }`, maxDrop in [0, 1] (kl: any finite ≥ 0). */
export function checkBudget(v: unknown): SearchParams["budget"] {
  if (v === undefined || v === null) {
    throw badRequest(
      `a budget is required: { "metric": "accuracy" | "agreement" | "kl", "maxDrop": 0.005, ` +
        `"relative"?: false } (the largest allowed drop from the float model)`,
    );
  }
  if (!isObject(v)) throw badRequest("'budget' must be an object { metric, maxDrop, relative? }");
  for (const k of Object.keys(v)) {
    if (!["metric", "maxDrop", "relative"].includes(k)) {
      throw badRequest(`unknown budget field '${k.slice(0, 40)}' (metric, maxDrop, relative)`);
    }
  }
  const metric = v.metric ?? "accuracy";
  if (typeof metric !== "string" || !(SEARCH_METRICS as readonly string[]).includes(metric)) {
    throw badRequest(
      `unknown budget metric ${JSON.stringify(metric)?.slice(0, 40)}: one of ${
        SEARCH_METRICS.join(", ")
      }`,
    );
  }
  const maxDrop = v.maxDrop;
  if (typeof maxDrop !== "number" || !Number.isFinite(maxDrop)) {
    throw badRequest("budget.maxDrop must be a number (e.g. 0.005: half a point)");
  }
  if (v.relative !== undefined && typeof v.relative !== "boolean") {
    throw badRequest("budget.relative must be true or false");
  }
  const bounded = metric !== "kl" || v.relative === true;
  if (maxDrop < 0 || (bounded && maxDrop > 1)) {
    throw badRequest(
      bounded
        ? `budget.maxDrop must be in [0, 1] (${
          v.relative ? "a share of the float model's value" : "0.005 = half a point"
        }), got ${maxDrop}`
        : `budget.maxDrop (the largest allowed mean KL) must be ≥ 0, got ${maxDrop}`,
    );
  }
  return {
    metric: metric as SearchParams["budget"]["metric"],
    maxDrop,
    ...(v.relative !== undefined ? { relative: v.relative as boolean } : {}),
  };
}

function checkObjectives(v: unknown): string[] {
  if (v === undefined || v === null) return [...DEFAULT_OBJECTIVES];
  if (!Array.isArray(v) || !v.length) {
    throw badRequest(
      `'objectives' must be a non-empty list of ${SEARCH_OBJECTIVES.join(", ")}`,
    );
  }
  const seen = new Set<string>();
  for (const o of v) {
    if (typeof o !== "string" || !(SEARCH_OBJECTIVES as readonly string[]).includes(o)) {
      throw badRequest(
        `unknown objective ${JSON.stringify(o)?.slice(0, 40)}: one of ${
          SEARCH_OBJECTIVES.join(", ")
        }`,
      );
    }
    if (seen.has(o)) throw badRequest(`objective '${o}' is given twice`);
    seen.add(o);
  }
  return v as string[];
}

function checkStrategy(v: unknown): string {
  if (v === undefined || v === null) return DEFAULT_STRATEGY;
  if (typeof v !== "string" || !(SEARCH_STRATEGIES as readonly string[]).includes(v)) {
    throw badRequest(
      `unknown strategy ${JSON.stringify(v)?.slice(0, 40)}: one of ${SEARCH_STRATEGIES.join(", ")}`,
    );
  }
  return v;
}

/** The space: `{ methods?, layers? }`; layers keys must name a node or op type of the model. */
function checkSpace(v: unknown, g: ReturnType<typeof importModel>): SearchParams["space"] {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw badRequest("'space' must be an object { methods?, layers? }");
  for (const k of Object.keys(v)) {
    if (k !== "methods" && k !== "layers") {
      throw badRequest(`unknown space field '${k.slice(0, 40)}' (methods, layers)`);
    }
  }
  const out: NonNullable<SearchParams["space"]> = {};
  if (v.methods !== undefined) {
    if (!Array.isArray(v.methods)) {
      throw badRequest(`space.methods must be a list of ${SEARCH_METHODS.join(", ")}`);
    }
    for (const m of v.methods) {
      if (typeof m !== "string" || !(SEARCH_METHODS as readonly string[]).includes(m)) {
        throw badRequest(
          `unknown method ${JSON.stringify(m)?.slice(0, 40)} in space.methods: one of ${
            SEARCH_METHODS.join(", ")
          } ("float" is always allowed)`,
        );
      }
    }
    out.methods = v.methods as string[];
  }
  if (v.layers !== undefined) {
    if (!isObject(v.layers)) {
      throw badRequest(
        'space.layers must map layer names or op types to choices ({"fc1": ["float", "int8"]})',
      );
    }
    const known = new Set<string>();
    for (const n of g.nodes) known.add(n.name).add(n.op).add(n.qualifiedOp);
    const unknown = Object.keys(v.layers).filter((k) => !known.has(k));
    if (unknown.length) {
      throw badRequest(
        `space.layers: ${unknown.slice(0, 8).map((k) => `'${k.slice(0, 40)}'`).join(", ")} ` +
          `match no node name or op type of the model`,
      );
    }
    const layers: Record<string, string[]> = {};
    for (const [k, choices] of Object.entries(v.layers)) {
      if (
        !Array.isArray(choices) || !choices.length ||
        choices.some((c) => typeof c !== "string" || !c.trim())
      ) {
        throw badRequest(
          `space.layers['${k.slice(0, 40)}'] must be a non-empty list of choices ("float", ` +
            `"int8", "int4", "prune:0.5", …)`,
        );
      }
      layers[k] = choices as string[];
    }
    out.layers = layers;
  }
  return out;
}

/** What a search needs as data, as a sentence for messages. */
function validationHint(m: ModelRecord): string {
  const i = m.inputs[0];
  return `a multipart 'validation' file (.npy: N samples of the input${
    i ? ` '${i.name}' [${i.dims}], ${i.type}` : ""
  }) and 'validation_labels' (.npy: N class indices, int64 / int32 / uint8)`;
}

export function searchRoutes(deps: Deps): Hono<AppEnv> {
  const { catalog, store, queue, artifacts, config } = deps;
  const app = new Hono<AppEnv>();

  app.post(
    "/v1/models/:id/search",
    uploadLimits(deps),
    async (c) => {
      const m = catalog.resolve(c.req.param("id"));
      c.set("modelId", m.id);
      if (!queue.accepting) throw shuttingDown();
      const body = await readSearchRequest(c);
      await testDelay(deps);
      const o = body.options;
      const f = body.files;

      // -- parameters ----------------------------------------------------------------------
      const budget = checkBudget(o.budget);
      const objectives = checkObjectives(o.objectives);
      const strategy = checkStrategy(o.strategy);
      const maxTrials = config.maxSearchTrials;
      const trials = intOption(
        o.trials,
        "trials",
        1,
        maxTrials,
        Math.min(DEFAULT_TRIALS, maxTrials),
        ` (this server's limit: SQZ_MAX_SEARCH_TRIALS = ${maxTrials})`,
      );
      const seed = intOption(o.seed, "seed", 0, 0xffffffff, 0);
      const cores = Math.max(1, navigator.hardwareConcurrency || 1);
      const concurrency = intOption(
        o.concurrency,
        "concurrency",
        1,
        cores,
        1,
        ` (the cores of this machine)`,
      );
      if (o.name !== undefined && typeof o.name !== "string") {
        throw badRequest("'name' must be a string");
      }
      const name = o.name as string | undefined;
      catalog.checkNewName(name);

      // -- the model -------------------------------------------------------------------------
      if (m.external.length) {
        throw badRequest(
          `model '${m.id}' keeps its weights in external data files: search works on models ` +
            `whose weights are inside the .onnx`,
        );
      }
      if (m.inputs.length !== 1) {
        throw badRequest(`search needs a model with one input; this one has ${m.inputs.length}`);
      }
      const src = await catalog.source(m);
      const g = importModel(src.bytes);
      if (!weightLayers(g).length) {
        throw badRequest(
          "there is nothing to search in this model: it has no Conv, Gemm or MatMul layer with " +
            "constant float32 weights",
        );
      }
      const space = checkSpace(o.space, g);

      // -- data ----------------------------------------------------------------------------
      if (!f.validation) {
        throw badRequest(`a search needs validation data: ${validationHint(m)}`);
      }
      if (f.labels && !f.train) throw badRequest("'labels' given without 'train' (its samples)");
      const tensors: Partial<Record<FileField, Tensor>> = {};
      for (const k of FILE_FIELDS) if (f[k]) tensors[k] = npyField(f[k]!, k);
      const classes = classCount(m);
      for (const [x, y] of [["validation", "validation_labels"], ["train", "labels"]] as const) {
        const t = tensors[x];
        if (!t) continue;
        checkSamples(t, m, `'${x}'`);
        checkFinite(t, `'${x}'`);
        const labels = tensors[y];
        if (labels) checkLabels(labels, t.dims[0], classes, `'${y}'`, `'${x}' has`);
      }
      if (budget.metric === "accuracy" && !tensors.validation_labels) {
        throw badRequest(
          "the accuracy budget needs 'validation_labels' (.npy: a class index per validation " +
            `sample); without labels use the metric "agreement" or "kl"`,
        );
      }
      if (tensors.calibration) checkCalibration(tensors.calibration, m);

      if (store.countJobs("queued") >= config.maxQueuedJobs) {
        throw new HttpError(
          429,
          "queue_full",
          `${config.maxQueuedJobs} jobs are queued already; try again later`,
          { "Retry-After": "30" },
        );
      }

      // -- store the files, then the job ---------------------------------------------------
      const info: Partial<Record<FileField, NpyInfo>> = {};
      for (const [k, t] of Object.entries(tensors) as [FileField, Tensor][]) {
        info[k] = npyInfo(t, f[k]!);
      }
      const pinned: string[] = [];
      const unpinAll = () => pinned.forEach((sha) => artifacts.unpin(sha));
      try {
        for (const [k, i] of Object.entries(info) as [FileField, NpyInfo][]) {
          i.sha256 = await artifacts.put(f[k]!);
          pinned.push(i.sha256);
        }
      } catch (e) {
        unpinAll();
        await artifacts.removeUnreferenced(store.referencedArtifacts(), pinned).catch(() => {});
        throw e;
      }
      const data: JobData = {
        validation: info.validation!,
        ...(info.validation_labels ? { validationLabels: info.validation_labels } : {}),
        ...(info.train ? { train: info.train } : {}),
        ...(info.labels ? { labels: info.labels } : {}),
      };
      const params: SearchParams = {
        budget,
        objectives,
        strategy,
        trials,
        seed,
        concurrency,
        ...(space ? { space } : {}),
      };
      const job: JobRecord = {
        id: newId("j"),
        kind: "search",
        search: params,
        result: null,
        modelId: m.id,
        state: "queued",
        progress: 0,
        stage: "queued",
        recipe: null,
        resultName: name ?? null,
        calibration: info.calibration ?? null,
        data,
        training: null,
        resultModelId: null,
        error: null,
        report: null,
        evaluation: null,
        attempts: 0,
        createdAt: new Date().toISOString(),
        startedAt: null,
        finishedAt: null,
      };
      const view = await queueJob(c, deps, job, pinned);
      deps.log.info("search job queued", { job: job.id, model: m.id, strategy, trials });
      return c.json(view, 202, { Location: `/v1/jobs/${job.id}` });
    },
  );

  return app;
}
