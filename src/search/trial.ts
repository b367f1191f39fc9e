// One trial: compress the model with a candidate's recipe, evaluate it against the float model
// on the validation data, and judge it against the budget. A cheap proxy first (agreement on a
// small seeded subset of the validation data, no latency): a candidate already far outside the
// budget is rejected there. A failure of compress() or evaluate() is a trial with `error`.
import { compress, type CompressReport } from "../compress/compress.ts";
import type { Feeds } from "../compress/calibrate.ts";
import type { Recipe } from "../compress/recipe.ts";
import { evaluate, type EvaluateOptions } from "../eval/evaluate.ts";
import { ReferenceRuns } from "../eval/run.ts";
import { type Dataset, type EvalReport, fromJsonNumber } from "../eval/types.ts";
import { seededRandom, shuffle } from "../eval/metrics.ts";
import type { Tensor } from "../graph/tensor.ts";
import type { TrainData } from "../train/types.ts";
import type { Budget, TrialMetrics } from "./types.ts";

/** What every trial of a search shares (plain data: it is sent to each worker once). */
export interface TrialContext {
  model: Uint8Array;
  calibration?: Feeds[];
  validation: Dataset;
  /** Materialized training data ({ inputs, labels }), when the space fine-tunes. */
  train?: TrainData;
  budget: Budget;
  latencyRuns: number;
  /** The proxy's subset of the validation data (absent: no early rejection). */
  proxy?: Dataset;
}

export interface TrialRequest {
  recipe: Recipe;
  /**
   * The float model's budget metric and the threshold a trial must meet (per request: the
   * int8 baseline starts before the float model is measured, and has none; it is then judged
   * by the caller, and never early-rejected).
   */
  reference?: { metric: number; threshold: number };
  /** Skip the proxy (baselines). */
  noProxy?: boolean;
  /** Also measure the output SQNR against the float model (sensitivity probes). */
  sqnr?: boolean;
  /** Return the artifact's bytes and the compress report. */
  artifact?: boolean;
}

export interface TrialOutcome {
  metrics: TrialMetrics;
  feasible: boolean;
  earlyRejected?: boolean;
  error?: string;
  durationMs: number;
  model?: Uint8Array;
  report?: CompressReport;
}

const PROXY_SAMPLES = 64;
/** Trials time a model for at least this long (eval's latencyMinMs): tiny models get stable medians. */
const LATENCY_MIN_MS = 30;

/**
 * The float model's outputs on the validation and proxy data, computed once per thread (each
 * Worker, and the calling thread for concurrency 1) instead of once per trial.
 */
const referenceRuns = new ReferenceRuns();

/**
 * How every evaluation of a search runs (the float baseline, warm-up, proxy, trials): against
 * the float model with its runs shared through referenceRuns, without the Brotli size, and
 * timed for at least LATENCY_MIN_MS when timed at all.
 */
export function evalOptions(
  reference: Uint8Array,
  latencyRuns: number,
  layers = false,
): EvaluateOptions {
  return {
    reference,
    referenceRuns,
    brotli: false,
    layers,
    latencyRuns,
    latencyMinMs: latencyRuns ? LATENCY_MIN_MS : 0,
  };
}

/** The proxy subset: PROXY_SAMPLES validation samples drawn by `seed` (absent when too few). */
export function proxySubset(v: Dataset, seed: number): Dataset | undefined {
  const first = Object.values(v.inputs)[0];
  const n = first?.dims[0] ?? 0;
  if (n < 3 * PROXY_SAMPLES) return undefined;
  const idx = Array.from({ length: n }, (_, i) => i);
  shuffle(idx, seededRandom(seed ^ 0x5eed));
  const pick = idx.slice(0, PROXY_SAMPLES).sort((a, b) => a - b);
  const take = (t: Tensor): Tensor => {
    const per = t.data.length / t.dims[0];
    const C = t.data.constructor as new (n: number) => Tensor["data"];
    const out = new C(pick.length * per) as unknown as {
      set(a: ArrayLike<unknown>, o: number): void;
    };
    const src = t.data as unknown as { subarray(a: number, b: number): ArrayLike<unknown> };
    pick.forEach((i, j) => out.set(src.subarray(i * per, (i + 1) * per), j * per));
    return { ...t, dims: [pick.length, ...t.dims.slice(1)], data: out } as unknown as Tensor;
  };
  const inputs: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(v.inputs)) inputs[k] = take(t);
  const out: Dataset = { inputs };
  if (v.labels) {
    const L = v.labels.constructor as new (n: number) => Uint8Array | Int32Array;
    const l = new L(pick.length);
    pick.forEach((i, j) => l[j] = v.labels![i]);
    out.labels = l;
  }
  if (v.batchSize) out.batchSize = v.batchSize;
  return out;
}

/** The budget metric's value in a report (accuracy, agreement or KL). */
export function budgetValue(m: TrialMetrics, b: Budget): number {
  return b.metric === "accuracy"
    ? m.accuracy ?? NaN
    : b.metric === "agreement"
    ? m.agreement
    : m.kl;
}

/** Meets the budget. */
export function meetsBudget(m: TrialMetrics, b: Budget, threshold: number): boolean {
  const v = budgetValue(m, b);
  return b.metric === "kl" ? v <= threshold : v >= threshold;
}

/** How far outside the budget (0 when within it), in the metric's units. */
export function violation(m: TrialMetrics, b: Budget, threshold: number): number {
  const v = budgetValue(m, b);
  if (!Number.isFinite(v)) return Infinity;
  return Math.max(0, b.metric === "kl" ? v - threshold : threshold - v);
}

/** The float reference value of the metric and the threshold a trial must meet. */
export function thresholdOf(b: Budget, floatMetric: number): number {
  if (b.metric === "kl") return b.maxDrop;
  return b.relative ? floatMetric * (1 - b.maxDrop) : floatMetric - b.maxDrop;
}

export function metricsOf(r: EvalReport): TrialMetrics {
  const m: TrialMetrics = {
    agreement: r.agreement ?? 1,
    kl: fromJsonNumber(r.klMean) ?? 0,
    size: r.model.bytes,
    gzipSize: r.model.gzipBytes,
    latencyMs: r.latency.p50Ms ?? 0,
    memory: r.memory.totalBytes,
    macs: Object.values(r.model.macs).reduce((a, b) => a + b, 0),
  };
  if (r.accuracy !== undefined) m.accuracy = r.accuracy;
  if (!Number.isFinite(m.kl)) m.kl = 1e9;
  return m;
}

const ZERO: TrialMetrics = {
  agreement: 0,
  kl: 0,
  size: 0,
  gzipSize: 0,
  latencyMs: 0,
  memory: 0,
  macs: 0,
};

/** The proxy is "far outside" the budget: its disagreement (or KL) well beyond what is allowed. */
function farOutside(
  m: TrialMetrics,
  ctx: TrialContext,
  reference: { metric: number; threshold: number },
): boolean {
  const b = ctx.budget;
  if (b.metric === "kl") return m.kl > 4 * reference.threshold + 0.1;
  // An accuracy / agreement drop of d needs at least d disagreement; on 64 samples the
  // disagreement's noise is a few points, so reject only at 3× the allowance plus 10 points.
  const allowed = Math.max(0, reference.metric - reference.threshold);
  return 1 - m.agreement > 3 * allowed + 0.1;
}

/**
 * Readies a thread for trials: runs the float model on the validation and proxy data as the
 * trials' reference (filling referenceRuns), which also compiles the kernels and JIT-warms the
 * engine before the first trial is timed. A Worker does this while the search's own thread
 * measures the float baseline. Failures are left for the trials to report.
 */
export async function warmUp(ctx: TrialContext): Promise<void> {
  for (const [d, latencyRuns] of [[ctx.validation, ctx.latencyRuns], [ctx.proxy, 0]] as const) {
    if (!d) continue;
    try {
      await evaluate(ctx.model, d, evalOptions(ctx.model, latencyRuns));
    } catch {
      return;
    }
  }
}

/** Runs one trial. Never throws, except on abort (then the caller is going away anyway). */
export async function runTrial(ctx: TrialContext, req: TrialRequest): Promise<TrialOutcome> {
  const t0 = performance.now();
  let model: Uint8Array, report: CompressReport;
  try {
    const r = await compress(ctx.model, req.recipe, {
      calibration: ctx.calibration,
      ...(req.recipe.finetune && ctx.train ? { train: ctx.train } : {}),
    });
    model = r.model;
    report = r.report;
  } catch (e) {
    return {
      metrics: { ...ZERO },
      feasible: false,
      error: `compress: ${(e as Error)?.message ?? e}`,
      durationMs: performance.now() - t0,
    };
  }
  try {
    if (ctx.proxy && !req.noProxy && req.reference) {
      const p = await evaluate(model, ctx.proxy, evalOptions(ctx.model, 0));
      const pm = metricsOf(p);
      if (farOutside(pm, ctx, req.reference)) {
        return {
          metrics: pm,
          feasible: false,
          earlyRejected: true,
          durationMs: performance.now() - t0,
        };
      }
    }
    const r = await evaluate(
      model,
      ctx.validation,
      evalOptions(ctx.model, ctx.latencyRuns, !!req.sqnr),
    );
    const metrics = metricsOf(r);
    const out: TrialOutcome = {
      metrics,
      feasible: !!req.reference && meetsBudget(metrics, ctx.budget, req.reference.threshold),
      durationMs: performance.now() - t0,
    };
    if (req.sqnr) {
      // The output's SQNR: the last layer that has one (the graph output's producer).
      const s = r.layers.map((l) => fromJsonNumber(l.sqnrDb)).filter((x) => x !== undefined);
      const v = s.length ? s[s.length - 1]! : NaN;
      metrics.sqnrDb = Number.isNaN(v) ? 0 : Number.isFinite(v) ? v : v > 0 ? 999 : -999;
    }
    if (req.artifact) {
      out.model = model;
      out.report = report;
    }
    return out;
  } catch (e) {
    return {
      metrics: { ...ZERO },
      feasible: false,
      error: `evaluate: ${(e as Error)?.message ?? e}`,
      durationMs: performance.now() - t0,
    };
  }
}
