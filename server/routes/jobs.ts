// Compression jobs: POST /v1/models/:id/compress, GET /v1/jobs[/:id], the SSE stream
// /v1/jobs/:id/events, the report /v1/jobs/:id/report and POST /v1/jobs/:id/cancel.
import { type Context, Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { accepts } from "hono/accepts";
import {
  ArgumentError,
  type CompressReport,
  type EvalReport,
  importModel,
  parseNpy,
  parseRecipe,
  type Recipe,
  reportHtml,
  type Tensor,
} from "../../src/mod.ts";
import type { AppEnv } from "../context.ts";
import type { Deps } from "../app.ts";
import type {
  CalibrationInfo,
  EventRecord,
  JobData,
  JobRecord,
  JobState,
  ModelRecord,
  NpyInfo,
} from "../store/db.ts";
import { JOB_STATES, TERMINAL_STATES } from "../store/db.ts";
import {
  checkFinite,
  checkLabels,
  checkSamples,
  classCount,
  DATA_FIELDS,
  type DataField,
  finetunes,
} from "../jobs/data.ts";
import {
  badRequest,
  conflict,
  HttpError,
  notFound,
  shuttingDown,
  unsupportedMedia,
} from "../errors.ts";
import { isJobId, newId } from "../ids.ts";
import { isTerminalEvent } from "../jobs/queue.ts";
import { readBody, uploadLimits } from "./limits.ts";
import { formOf, testDelay } from "./models.ts";

/** A job's .npy input as the API shows it. */
function npyView(f: NpyInfo): Record<string, unknown> {
  return { samples: f.dims[0], dims: f.dims, type: f.type, bytes: f.bytes };
}

/**
 * A search job's parameters and, once it has finished, its summary without the per-trial
 * list (that is in the report and in the `trial` events).
 */
function searchView(j: JobRecord): Record<string, unknown> {
  const out: Record<string, unknown> = { search: j.search };
  if (j.result) {
    // deno-lint-ignore no-explicit-any
    const { trials, sensitivity: _s, space: _sp, ...summary } = JSON.parse(j.result) as any;
    out.result = { ...summary, trialsRun: Array.isArray(trials) ? trials.length : 0 };
  }
  return out;
}

/** The job resource as the API returns it. */
export function jobView(j: JobRecord): Record<string, unknown> {
  const d: JobData = j.data ?? {};
  return {
    id: j.id,
    kind: j.kind,
    state: j.state,
    progress: j.progress,
    stage: j.stage,
    modelId: j.modelId,
    ...(j.kind === "search" ? searchView(j) : { recipe: j.recipe }),
    ...(j.resultName ? { name: j.resultName } : {}),
    ...(j.calibration
      ? {
        calibration: {
          samples: j.calibration.dims[0],
          dims: j.calibration.dims,
          type: j.calibration.type,
          bytes: j.calibration.bytes,
        },
      }
      : {}),
    ...(d.train
      ? {
        train: { ...npyView(d.train), ...(d.labels ? { labels: npyView(d.labels) } : {}) },
      }
      : {}),
    ...(d.validation
      ? {
        validation: {
          ...npyView(d.validation),
          ...(d.validationLabels ? { labels: npyView(d.validationLabels) } : {}),
        },
      }
      : {}),
    ...(j.training ? { training: j.training } : {}),
    ...(j.resultModelId ? { resultModelId: j.resultModelId } : {}),
    ...(j.error ? { error: j.error } : {}),
    attempts: j.attempts,
    createdAt: j.createdAt,
    ...(j.startedAt ? { startedAt: j.startedAt } : {}),
    ...(j.finishedAt ? { finishedAt: j.finishedAt } : {}),
    links: {
      self: `/v1/jobs/${j.id}`,
      events: `/v1/jobs/${j.id}/events`,
      report: `/v1/jobs/${j.id}/report`,
      cancel: `/v1/jobs/${j.id}/cancel`,
    },
  };
}

interface CompressRequest {
  recipe: unknown;
  name?: string;
  calibration?: Uint8Array;
  /** Fine-tuning data files by form field. */
  data: Partial<Record<DataField, Uint8Array>>;
}

const FORM_FIELDS = "recipe, name, calibration, train, labels, validation, validation_labels";

async function readCompressRequest(c: Context<AppEnv>): Promise<CompressRequest> {
  const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (type === "application/json") {
    const text = new TextDecoder().decode(await readBody(c));
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      throw badRequest(`the body is not valid JSON: ${(e as Error).message}`);
    }
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw badRequest('the body must be a JSON object { "recipe": …, "name"?: … }');
    }
    const o = body as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (k !== "recipe" && k !== "name") {
        throw badRequest(
          `unknown field '${k.slice(0, 40)}' (recipe, name; calibration, training and ` +
            `validation data go in a multipart request)`,
        );
      }
    }
    if (o.name !== undefined && typeof o.name !== "string") {
      throw badRequest("'name' must be a string");
    }
    return { recipe: o.recipe, name: o.name as string | undefined, data: {} };
  }
  if (type === "multipart/form-data") {
    const form = await formOf(c);
    const out: CompressRequest = { recipe: undefined, data: {} };
    const seen = new Set<string>();
    for (const [key, value] of form.entries()) {
      if (seen.has(key)) throw badRequest(`the form field '${key.slice(0, 40)}' is given twice`);
      seen.add(key);
      if (key === "recipe" || key === "name") {
        // A recipe may come as a text field or as an uploaded .json file.
        const text = typeof value === "string" ? value : await value.text();
        if (key === "recipe") out.recipe = text;
        else if (typeof value === "string") out.name = value;
        else throw badRequest("'name' must be a text field");
      } else if (key === "calibration") {
        if (typeof value === "string") throw badRequest("'calibration' must be a .npy file");
        out.calibration = new Uint8Array(await value.arrayBuffer());
      } else if (key in DATA_FIELDS) {
        if (typeof value === "string") throw badRequest(`'${key}' must be a .npy file`);
        out.data[key as DataField] = new Uint8Array(await value.arrayBuffer());
      } else {
        throw badRequest(`unknown form field '${key.slice(0, 40)}' (${FORM_FIELDS})`);
      }
    }
    return out;
  }
  throw unsupportedMedia(
    `send the recipe as application/json or multipart/form-data, not '${type || "(none)"}'`,
  );
}

export type Graph = ReturnType<typeof importModel>;
type GraphNode = Graph["nodes"][number];

const WEIGHT_OPS = new Set(["Conv", "Gemm", "MatMul"]);

/**
 * The layers compression can work on: Conv / Gemm / MatMul of the default domain whose weight
 * (input 1) is a float32 initializer, or is computed from initializers only (compress() folds
 * those before its passes).
 */
export function weightLayers(g: Graph): GraphNode[] {
  const constant = new Map<string, boolean>();
  const isConstant = (v: GraphNode["inputs"][number], depth = 0): boolean => {
    if (!v) return false;
    if (v.constant) return true;
    if (!v.producer || depth > 64) return false;
    const known = constant.get(v.name);
    if (known !== undefined) return known;
    const ok = v.producer.inputs.every((x) => !x || isConstant(x, depth + 1));
    constant.set(v.name, ok);
    return ok;
  };
  return g.nodes.filter((n) => {
    if (n.domain && n.domain !== "ai.onnx") return false;
    if (!WEIGHT_OPS.has(n.op)) return false;
    const w = n.inputs[1];
    return w?.constant ? w.constant.type === "float32" : isConstant(w);
  });
}

/** The method a recipe gives a node (recipe.ts's methodFor: by name, then op type, then default). */
function methodOf(r: Recipe, n: GraphNode): string {
  return r.layers[n.name]?.method ?? r.layers[n.op]?.method ?? r.method;
}

/**
 * The recipe must fit the model: every `layers` key names a node or an op type of it, and the
 * recipe changes at least one layer (a Conv / Gemm / MatMul with constant float weights that it
 * quantizes, or that its pruning, low-rank or clustering works on). A recipe that compresses
 * nothing is refused here, before a job exists, rather than failing in the worker.
 */
function checkRecipeFits(recipe: Recipe, g: Graph, presetOrJson: unknown): void {
  const keys = Object.keys(recipe.layers);
  const known = new Set<string>();
  for (const n of g.nodes) known.add(n.name).add(n.op).add(n.qualifiedOp);
  const unknown = keys.filter((k) => !known.has(k));
  if (unknown.length) {
    throw new ArgumentError(
      `recipe: layers ${unknown.map((k) => `'${k}'`).join(", ")} match no node name or op ` +
        `type of the model`,
    );
  }
  const layers = weightLayers(g);
  const what = typeof presetOrJson === "string" && !presetOrJson.trim().startsWith("{")
    ? `recipe '${presetOrJson.trim().slice(0, 40)}'`
    : "the recipe";
  if (!layers.length) {
    const histogram = new Map<string, number>();
    for (const n of g.nodes) histogram.set(n.qualifiedOp, (histogram.get(n.qualifiedOp) ?? 0) + 1);
    const ops = [...histogram].map(([op, k]) => `${op} ×${k}`).join(", ");
    throw new ArgumentError(
      `${what} compresses nothing in this model: it has no Conv, Gemm or MatMul layer with ` +
        `constant float32 weights, which every method works on (its ops: ${ops || "none"})`,
    );
  }
  const weightPasses = !!(recipe.prune || recipe.structured || recipe.lowrank || recipe.cluster);
  if (!weightPasses && layers.every((n) => methodOf(recipe, n) === "none")) {
    throw new ArgumentError(
      `${what} compresses nothing in this model: it leaves every weight layer (${
        layers.slice(0, 8).map((n) => `'${n.name}' ${n.op}`).join(", ")
      }${layers.length > 8 ? ", …" : ""}) at method 'none' and asks for no pruning, ` +
        `low-rank or clustering`,
    );
  }
}

/**
 * Calibration data must be one array of N ≥ 1 samples for the model's single input; when the
 * input fixes its batch size B, N must be a multiple of B (it runs in batches of B).
 */
export function checkCalibration(t: Tensor, m: ModelRecord): void {
  checkSamples(t, m, "the calibration data");
  const input = m.inputs[0];
  const batch = input.dims[0];
  if (typeof batch === "number" && batch > 0 && t.dims[0] % batch !== 0) {
    throw badRequest(
      `the input '${input.name}' has a fixed batch size of ${batch} ([${input.dims}]): the ` +
        `calibration data's ${t.dims[0]} samples must be a multiple of ${batch}`,
    );
  }
}

/** A .npy form field parsed, with the field named in the message when it is malformed. */
export function npyField(bytes: Uint8Array, field: string): Tensor {
  try {
    return parseNpy(bytes);
  } catch (e) {
    throw badRequest(`'${field}' is not a valid .npy file: ${(e as Error).message}`);
  }
}

/** What a fine-tuning recipe needs, as a sentence for messages. */
function trainingHint(m: ModelRecord): string {
  const i = m.inputs[0];
  return `a multipart 'train' file (.npy: N samples of the input${
    i ? ` '${i.name}' [${i.dims}], ${i.type}` : ""
  }) and optionally 'labels' (.npy: N class indices, int64 / int32 / uint8), 'validation' and ` +
    `'validation_labels'`;
}

/**
 * The fine-tuning data of a request, checked against the recipe and the model: a recipe that
 * fine-tunes needs `train`; data without such a recipe, labels without their samples, samples
 * that do not fit the input, non-finite values, labels of the wrong dtype, count or range are
 * 400s. Returns the parsed tensors by field.
 */
function checkTrainingData(
  body: CompressRequest,
  recipe: Recipe,
  m: ModelRecord,
  what: string,
): Partial<Record<DataField, Tensor>> {
  const given = Object.keys(body.data) as DataField[];
  if (!finetunes(recipe)) {
    if (given.length) {
      throw badRequest(
        `${given.map((f) => `'${f}'`).join(", ")} given, but ${what} does not fine-tune: use a ` +
          `'+ft' preset (e.g. "int8+ft") or a recipe with a "finetune" block`,
      );
    }
    return {};
  }
  if (!body.data.train) {
    throw badRequest(`${what} fine-tunes: it needs training data, ${trainingHint(m)}`);
  }
  if (body.data.validation_labels && !body.data.validation) {
    throw badRequest("'validation_labels' given without 'validation' (its samples)");
  }
  const out: Partial<Record<DataField, Tensor>> = {};
  for (const f of given) out[f] = npyField(body.data[f]!, f);
  const classes = classCount(m);
  for (const [x, y] of [["train", "labels"], ["validation", "validation_labels"]] as const) {
    const t = out[x];
    if (!t) continue;
    checkSamples(t, m, `'${x}'`);
    checkFinite(t, `'${x}'`);
    const labels = out[y];
    if (labels) checkLabels(labels, t.dims[0], classes, `'${y}'`, `'${x}' has`);
  }
  return out;
}

/** The information kept of a .npy input file (its digest is set once it is stored). */
export function npyInfo(t: Tensor, bytes: Uint8Array): NpyInfo {
  return { sha256: "", bytes: bytes.length, type: t.type, dims: [...t.dims] };
}

function escapeHtml(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The fine-tuning part of a compression report: one row per epoch. */
function trainingHtml(r: CompressReport): string {
  const t = r.training;
  if (!t) return "";
  const pct = (v: number | undefined) => (v === undefined ? "" : `${(v * 100).toFixed(2)}%`);
  const rows = t.epochs.map((e) =>
    `<tr><td>${e.epoch}</td><td>${e.loss.toFixed(4)}</td><td>${pct(e.trainAccuracy)}</td><td>${
      pct(e.valAccuracy ?? e.valAgreement)
    }</td><td>${e.lr.toPrecision(3)}</td><td>${(e.ms / 1000).toFixed(2)} s</td></tr>`
  ).join("\n");
  const notes = [
    ...(t.resumedFromEpoch ? [`resumed after epoch ${t.resumedFromEpoch}`] : []),
    ...(t.stoppedEarly ? ["stopped early (no improvement)"] : []),
    ...(t.changes ?? []),
  ];
  return `<h3>Fine-tuning</h3>
<table><thead><tr><th>epoch</th><th>loss</th><th>train acc</th><th>val acc / agreement</th>
<th>lr</th><th>time</th></tr></thead><tbody>
${rows}
</tbody></table>
${notes.length ? `<ul>${notes.map((n) => `<li>${escapeHtml(n)}</li>`).join("")}</ul>` : ""}`;
}

/** The compression report as an HTML section (or a whole page when there is no evaluation). */
function compressionHtml(job: JobRecord, r: CompressReport, page: boolean): string {
  const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  const rows = r.layers.map((l) =>
    `<tr><td>${escapeHtml(l.name)}</td><td>${escapeHtml(l.op)}</td><td>${
      escapeHtml(l.method)
    }</td><td>${l.params}</td><td>${l.nonzeros}</td><td>${kib(l.bytesBefore)}</td><td>${
      kib(l.bytesAfter)
    }</td></tr>`
  ).join("\n");
  const section = `<section id="compression">
<h2>Compression</h2>
<p>Job <code>${escapeHtml(job.id)}</code>: model <code>${escapeHtml(job.modelId)}</code> →
<code>${escapeHtml(job.resultModelId ?? "")}</code>, recipe <code>${
    escapeHtml(JSON.stringify(job.recipe))
  }</code>.</p>
<p>File ${kib(r.size.before)} → ${kib(r.size.after)} (${
    (r.size.before / Math.max(r.size.after, 1)).toFixed(2)
  }×); gzip ${kib(r.size.gzipBefore)} → ${kib(r.size.gzipAfter)}.</p>
<table><thead><tr><th>layer</th><th>op</th><th>method</th><th>params</th><th>non-zeros</th>
<th>weights before</th><th>after</th></tr></thead><tbody>
${rows}
</tbody></table>
${r.notes.length ? `<ul>${r.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join("")}</ul>` : ""}
${trainingHtml(r)}
</section>`;
  if (!page) return section;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sqz compression report ${
    escapeHtml(job.id)
  }</title>
<style>body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}td:first-child,th:first-child{text-align:left}</style>
</head><body><h1>sqz compression report</h1>
${section}
</body></html>
`;
}

/** A search job's report as a page: the explanation, the Pareto front, every trial. */
// deno-lint-ignore no-explicit-any
function searchHtml(job: JobRecord, s: any, compression: CompressReport | undefined): string {
  const pareto = new Set<number>((s.pareto ?? []).map((t: { id: number }) => t.id));
  const num = (v: unknown, digits = 4) =>
    typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(digits)) : "";
  const row = (t: Record<string, unknown>, label?: string) => {
    const m = (t.metrics ?? {}) as Record<string, unknown>;
    return `<tr${pareto.has(t.id as number) ? ' class="pareto"' : ""}><td>${
      escapeHtml(label ?? t.id)
    }</td><td>${escapeHtml(t.phase ?? "")}</td><td>${t.feasible ? "yes" : "no"}</td><td>${
      num(m.accuracy)
    }</td><td>${num(m.agreement)}</td><td>${num(m.kl, 5)}</td><td>${num(m.size)}</td><td>${
      num(m.gzipSize)
    }</td><td>${num(m.latencyMs, 3)}</td><td>${num(m.memory)}</td><td><code>${
      escapeHtml(JSON.stringify(t.recipe))
    }</code>${t.error ? ` ${escapeHtml(t.error)}` : ""}</td></tr>`;
  };
  const rows = [
    ...(s.baseline ? [row(s.baseline.float, "float"), row(s.baseline.int8, "int8")] : []),
    ...(s.trials ?? []).map((t: Record<string, unknown>) => row(t)),
  ].join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sqz search report ${escapeHtml(job.id)}</title>
<style>body{font:14px/1.4 system-ui,sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}td:last-child{text-align:left}
tr.pareto{background:#eef6ee}</style>
</head><body><h1>sqz search report</h1>
<p>Job <code>${escapeHtml(job.id)}</code>: model <code>${escapeHtml(job.modelId)}</code>, strategy
${escapeHtml(s.strategy)}, seed ${escapeHtml(s.seed)}, budget <code>${
    escapeHtml(JSON.stringify(s.budget))
  }</code>, objectives ${escapeHtml((s.objectives ?? []).join(", "))}.
${
    s.best
      ? `Best: trial ${escapeHtml(s.best.trial.id)} → model <code>${
        escapeHtml(job.resultModelId ?? "")
      }</code>.`
      : "No trial met the budget: no model was registered."
  }</p>
<ul>${(s.explanation ?? []).map((n: string) => `<li>${escapeHtml(n)}</li>`).join("")}</ul>
<table><thead><tr><th>trial</th><th>phase</th><th>feasible</th><th>accuracy</th><th>agreement</th>
<th>KL</th><th>bytes</th><th>gzip</th><th>latency ms</th><th>memory</th><th>recipe</th></tr></thead>
<tbody>
${rows}
</tbody></table>
${
    compression
      ? compressionHtml({ ...job, recipe: s.best?.recipe ?? null }, compression, false)
      : ""
  }
</body></html>
`;
}

/**
 * Stores a job whose uploads are pinned in `pinned`, emits its first state and starts the
 * queue. The model may have been deleted while the body was read, and past the request's
 * deadline the commit throws: then nothing is kept (the uploads no job references go too).
 * Returns the job as accepted, for the 202.
 */
export async function queueJob(
  c: Context<AppEnv>,
  deps: Deps,
  job: JobRecord,
  pinned: string[],
): Promise<Record<string, unknown>> {
  const { store, queue, artifacts } = deps;
  const unpinAll = () => pinned.forEach((sha) => artifacts.unpin(sha));
  try {
    store.transaction(() => {
      if (!store.getModel(job.modelId)) throw notFound(`no model '${job.modelId}'`);
      store.insertJob(job);
      queue.emit(job.id, "state", { state: "queued", progress: 0, stage: "queued" });
      c.get("deadline")?.commit();
    });
  } catch (e) {
    unpinAll();
    await artifacts.removeUnreferenced(store.referencedArtifacts(), pinned);
    throw e;
  }
  unpinAll();
  // The resource as accepted (queued); the queue may start it at once.
  const view = jobView(store.getJob(job.id)!);
  queue.kick();
  return view;
}

export function jobRoutes(deps: Deps): Hono<AppEnv> {
  const { catalog, store, queue, artifacts, config } = deps;
  const app = new Hono<AppEnv>();

  /**
   * The job's input model labels the request's log line; its metric series only while the
   * model exists (a finished job outlives its model, whose series are gone for good).
   */
  const concerns = (c: Context<AppEnv>, job: JobRecord) => {
    c.set("modelId", job.modelId);
    if (!store.getModel(job.modelId)) c.set("modelDeleted", true);
  };

  const getJob = (id: string): JobRecord => {
    if (!isJobId(id)) {
      throw badRequest(
        `'${id.slice(0, 80)}' is not a job id (j_ and 24 base32 characters)`,
        "invalid_id",
      );
    }
    const j = store.getJob(id);
    if (!j) throw notFound(`no job '${id}'`);
    return j;
  };

  app.post(
    "/v1/models/:id/compress",
    uploadLimits(deps),
    async (c) => {
      const m = catalog.resolve(c.req.param("id"));
      c.set("modelId", m.id);
      if (!queue.accepting) throw shuttingDown();
      const body = await readCompressRequest(c);
      await testDelay(deps);
      if (body.recipe === undefined || body.recipe === null || body.recipe === "") {
        throw badRequest(
          'a recipe is required: a preset ("int8", "int4", "prune:0.9", …) or a recipe object',
        );
      }
      const recipe = parseRecipe(body.recipe);
      const what = typeof body.recipe === "string" && !body.recipe.trim().startsWith("{")
        ? `recipe '${body.recipe.trim().slice(0, 40)}'`
        : "the recipe";
      const tensors = checkTrainingData(body, recipe, m, what);
      catalog.checkNewName(body.name);
      const src = await catalog.source(m);
      checkRecipeFits(
        recipe,
        importModel(src.bytes, { externalData: src.externalData }),
        body.recipe,
      );
      let calibration: CalibrationInfo | undefined;
      if (body.calibration) {
        const t = npyField(body.calibration, "calibration");
        checkCalibration(t, m);
        calibration = npyInfo(t, body.calibration);
      }
      const dataInfo: Partial<Record<DataField, NpyInfo>> = {};
      for (const [f, t] of Object.entries(tensors) as [DataField, Tensor][]) {
        dataInfo[f] = npyInfo(t, body.data[f]!);
      }
      if (store.countJobs("queued") >= config.maxQueuedJobs) {
        throw new HttpError(
          429,
          "queue_full",
          `${config.maxQueuedJobs} jobs are queued already; try again later`,
          { "Retry-After": "30" },
        );
      }
      // Every input file stored (content-addressed, pinned until the job row refers to it).
      const pinned: string[] = [];
      const put = async (bytes: Uint8Array, info: NpyInfo) => {
        info.sha256 = await artifacts.put(bytes);
        pinned.push(info.sha256);
      };
      const unpinAll = () => pinned.forEach((sha) => artifacts.unpin(sha));
      try {
        if (calibration) await put(body.calibration!, calibration);
        for (const [f, info] of Object.entries(dataInfo) as [DataField, NpyInfo][]) {
          await put(body.data[f]!, info);
        }
      } catch (e) {
        unpinAll();
        await artifacts.removeUnreferenced(store.referencedArtifacts(), pinned).catch(() => {});
        throw e;
      }
      const data: JobData | null = dataInfo.train
        ? {
          train: dataInfo.train,
          ...(dataInfo.labels ? { labels: dataInfo.labels } : {}),
          ...(dataInfo.validation ? { validation: dataInfo.validation } : {}),
          ...(dataInfo.validation_labels ? { validationLabels: dataInfo.validation_labels } : {}),
        }
        : null;
      const job: JobRecord = {
        id: newId("j"),
        kind: "compress",
        search: null,
        result: null,
        modelId: m.id,
        state: "queued",
        progress: 0,
        stage: "queued",
        // Kept as given (a preset string or an object); parseRecipe accepted it.
        recipe: typeof body.recipe === "string" && body.recipe.trim().startsWith("{")
          ? JSON.parse(body.recipe)
          : body.recipe,
        resultName: body.name ?? null,
        calibration: calibration ?? null,
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
      deps.log.info("job queued", { job: job.id, model: m.id });
      return c.json(view, 202, { Location: `/v1/jobs/${job.id}` });
    },
  );

  app.get("/v1/jobs", (c) => {
    const state = c.req.query("state");
    if (state !== undefined && !JOB_STATES.includes(state as JobState)) {
      throw badRequest(`state must be one of ${JOB_STATES.join(", ")}`);
    }
    const modelRef = c.req.query("model");
    const modelId = modelRef !== undefined ? catalog.resolve(modelRef).id : undefined;
    return c.json({
      jobs: store.listJobs({ state: state as JobRecord["state"] | undefined, modelId }).map(
        jobView,
      ),
    });
  });

  app.get("/v1/jobs/:id", (c) => {
    const j = getJob(c.req.param("id"));
    concerns(c, j);
    return c.json(jobView(j));
  });

  app.get("/v1/jobs/:id/events", (c) => {
    const job = getJob(c.req.param("id"));
    concerns(c, job);
    const lastHeader = c.req.header("last-event-id") ?? c.req.query("lastEventId");
    const lastId = lastHeader !== undefined && /^\d{1,9}$/.test(lastHeader)
      ? Number(lastHeader)
      : 0;
    c.header("X-Accel-Buffering", "no");
    return streamSSE(c, async (stream) => {
      const pending: EventRecord[] = [];
      let wake: (() => void) | undefined;
      const unsubscribe = queue.subscribe(job.id, (ev) => {
        pending.push(ev);
        wake?.();
      });
      const closing = deps.closing;
      const onClose = () => wake?.();
      closing.addEventListener("abort", onClose);
      stream.onAbort(() => wake?.());
      let last = lastId, done = false;
      const send = async (ev: EventRecord) => {
        if (ev.seq <= last) return;
        last = ev.seq;
        await stream.writeSSE({
          id: String(ev.seq),
          event: ev.type,
          data: JSON.stringify({ jobId: ev.jobId, seq: ev.seq, at: ev.at, ...ev.data }),
        });
        if (isTerminalEvent(ev)) done = true;
      };
      try {
        // Subscribed first, then the history: nothing falls between the two (seq dedupes).
        for (const ev of store.events(job.id, last)) await send(ev);
        if (TERMINAL_STATES.includes(store.getJob(job.id)!.state)) done = true;
        while (!done && !stream.aborted && !closing.aborted) {
          while (pending.length && !done) await send(pending.shift()!);
          if (done) break;
          let timer: ReturnType<typeof setTimeout> | undefined;
          await new Promise<void>((r) => {
            wake = r;
            timer = setTimeout(r, 15_000);
          });
          clearTimeout(timer);
          wake = undefined;
          // A comment line keeps proxies and clients from timing out an idle stream.
          if (!pending.length && !stream.aborted && !closing.aborted) {
            await stream.write(": keep-alive\n\n");
          }
        }
        // Shutting down: what is pending still goes out before the stream ends.
        while (pending.length && !done && !stream.aborted) await send(pending.shift()!);
      } finally {
        unsubscribe();
        closing.removeEventListener("abort", onClose);
      }
    }, (err) => {
      // Mostly a client that went away mid-write; the stream is over either way.
      deps.log.warn("event stream ended by an error", { job: job.id, error: err.message });
      return Promise.resolve();
    });
  });

  app.get("/v1/jobs/:id/report", (c) => {
    const job = getJob(c.req.param("id"));
    concerns(c, job);
    if (job.kind === "search" && job.state === "succeeded" && job.result) {
      const summary = JSON.parse(job.result);
      const compression = job.report ? JSON.parse(job.report) as CompressReport : undefined;
      const type = accepts(c, {
        header: "Accept",
        supports: ["application/json", "text/html"],
        default: "application/json",
      });
      if (type === "text/html") {
        return c.html(searchHtml(job, summary, compression));
      }
      return c.json({
        jobId: job.id,
        modelId: job.modelId,
        resultModelId: job.resultModelId,
        search: summary,
        ...(compression ? { compression } : {}),
      });
    }
    if (job.state !== "succeeded" || !job.report) {
      throw conflict(
        job.state === "failed"
          ? `job '${job.id}' failed (${job.error?.message ?? "no reason"}): there is no report`
          : job.state === "cancelled"
          ? `job '${job.id}' was cancelled: there is no report`
          : `job '${job.id}' is ${job.state}: the report is ready when it has succeeded`,
      );
    }
    const report = JSON.parse(job.report) as CompressReport;
    const evaluation = job.evaluation ? JSON.parse(job.evaluation) as EvalReport : undefined;
    const type = accepts(c, {
      header: "Accept",
      supports: ["application/json", "text/html"],
      default: "application/json",
    });
    if (type === "text/html") {
      const html = evaluation
        ? reportHtml(evaluation, `sqz report: ${job.resultModelId} (from ${job.modelId})`)
          .replace("</body>", `${compressionHtml(job, report, false)}\n</body>`)
        : compressionHtml(job, report, true);
      return c.html(html);
    }
    return c.json({
      jobId: job.id,
      modelId: job.modelId,
      resultModelId: job.resultModelId,
      compression: report,
      ...(evaluation ? { evaluation } : {}),
    });
  });

  app.post("/v1/jobs/:id/cancel", async (c) => {
    const job = getJob(c.req.param("id"));
    concerns(c, job);
    if (TERMINAL_STATES.includes(job.state) || !(await queue.cancel(job.id))) {
      const now = store.getJob(job.id)!;
      throw conflict(`job '${job.id}' is ${now.state} already: there is nothing to cancel`);
    }
    const now = store.getJob(job.id)!;
    if (now.state !== "cancelled") {
      // It finished (or was handed back by a shutdown) before the cancel took effect.
      throw conflict(`job '${job.id}' is ${now.state}: it ended before it could be cancelled`);
    }
    deps.log.info("job cancel handled", { job: job.id, state: now.state });
    return c.json(jobView(now), 200);
  });

  return app;
}
