// Automated compression search: an accuracy budget in, the smallest / fastest models that keep
// it out (mixed precision per layer), by one of five strategies, with a Pareto front and an
// explanation of why the budget was or was not met. Built on compress() and evaluate().
//
// Determinism: strategies propose in fixed batches of BATCH candidates (whatever the
// concurrency) and are told the results in trial-id order, with a PRNG seeded by `seed`; the
// decisions use deterministic metrics (accuracy, agreement, KL, sizes, MACs, memory; latency as
// the cost model predicts it when there is one), so a seed gives the same trials at any
// concurrency, and a resumed search (its trials from `state` are cache hits, by recipe hash)
// re-proposes the same candidates and ends with the same Pareto front.
import { ArgumentError } from "../errors.ts";
import { compress, type CompressReport } from "../compress/compress.ts";
import type { Feeds } from "../compress/calibrate.ts";
import { parseRecipe, type Recipe } from "../compress/recipe.ts";
import { evaluate } from "../eval/evaluate.ts";
import { seededRandom } from "../eval/metrics.ts";
import type { Dataset } from "../eval/types.ts";
import type { TrainBatch, TrainData } from "../train/types.ts";
import { buildCostModel } from "./cost_model.ts";
import { normalizedHypervolume, objectiveValue, paretoFront, pickBest, usable } from "./pareto.ts";
import { createPool, type TrialPool } from "./pool.ts";
import { buildSpace, choiceBits, normalizeAssignment, recipeHash, toRecipe } from "./space.ts";
import {
  budgetValue,
  evalOptions,
  meetsBudget,
  metricsOf,
  proxySubset,
  thresholdOf,
  type TrialContext,
  type TrialOutcome,
  violation,
} from "./trial.ts";
import type { Proposal, Strategy, StrategyContext } from "./strategies/common.ts";
import { checkGrid, gridStrategy } from "./strategies/grid.ts";
import { randomStrategy } from "./strategies/random.ts";
import { tpeStrategy } from "./strategies/tpe.ts";
import { evolutionStrategy } from "./strategies/evolution.ts";
import { type SensitivityStrategy, sensitivityStrategy } from "./strategies/sensitivity.ts";
import {
  type Assignment,
  type CostModel,
  type Objective,
  OBJECTIVES,
  type SearchOptions,
  type SearchResult,
  type SearchSpace,
  STRATEGIES,
  type StrategyName,
  type Trial,
  type TrialMetrics,
} from "./types.ts";

/** Candidates proposed at once (fixed: independent of the concurrency, for determinism). */
export const BATCH = 4;

function abortError(): Error {
  return new DOMException("search: cancelled", "AbortError");
}

function fail(msg: string): never {
  throw new ArgumentError(`search: ${msg}`);
}

function checkOptions(o: SearchOptions): void {
  if (typeof o !== "object" || o === null) fail("options must be an object");
  const b = o.budget;
  if (typeof b !== "object" || b === null) fail("a budget { metric, maxDrop } is needed");
  if (!["accuracy", "agreement", "kl"].includes(b.metric)) {
    fail(`budget.metric must be accuracy, agreement or kl, got ${JSON.stringify(b.metric)}`);
  }
  if (typeof b.maxDrop !== "number" || !Number.isFinite(b.maxDrop)) {
    fail(`budget.maxDrop must be a number, got ${JSON.stringify(b.maxDrop)}`);
  }
  if (b.metric === "kl" ? b.maxDrop < 0 : b.maxDrop < 0 || b.maxDrop > 1) {
    fail(
      b.metric === "kl"
        ? `budget.maxDrop for kl is the largest mean KL allowed, ≥ 0, got ${b.maxDrop}`
        : `budget.maxDrop for ${b.metric} must be in [0, 1] (0.005 = half a point), got ${b.maxDrop}`,
    );
  }
  const v = o.data?.validation;
  if (!v || typeof v !== "object" || !v.inputs || !Object.keys(v.inputs).length) {
    fail("validation data (data.validation: { inputs, labels? }) is needed");
  }
  if (b.metric === "accuracy" && !v.labels) {
    fail("the accuracy budget needs validation labels (or use metric agreement or kl)");
  }
  const objs = o.objectives ?? ["size", "latency"];
  if (!Array.isArray(objs) || !objs.length) fail("objectives must be a non-empty array");
  for (const x of objs) {
    if (!OBJECTIVES.includes(x)) {
      fail(`unknown objective ${JSON.stringify(x)} (${OBJECTIVES.join(", ")})`);
    }
  }
  if (new Set(objs).size !== objs.length) fail("objectives has duplicates");
  if (o.strategy !== undefined && !STRATEGIES.includes(o.strategy)) {
    fail(`unknown strategy ${JSON.stringify(o.strategy)} (${STRATEGIES.join(", ")})`);
  }
  const t = o.trials;
  if (t !== undefined && (!Number.isSafeInteger(t) || t <= 0)) {
    fail(`trials must be a positive integer, got ${t}`);
  }
  const c = o.concurrency;
  if (c !== undefined && (!Number.isSafeInteger(c) || c < 1)) {
    fail(`concurrency must be an integer ≥ 1, got ${c}`);
  }
  if (o.seed !== undefined && !Number.isSafeInteger(o.seed)) {
    fail(`seed must be an integer, got ${o.seed}`);
  }
  const lr = o.latencyRuns;
  if (lr !== undefined && (!Number.isSafeInteger(lr) || lr < 0)) {
    fail(`latencyRuns must be a non-negative integer, got ${lr}`);
  }
}

async function collect<T>(it: Iterable<T> | AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it as AsyncIterable<T>) out.push(x);
  return out;
}

async function materializeTrain(t: TrainData): Promise<TrainData> {
  if (typeof t === "object" && t !== null && "inputs" in t) return t;
  return await collect(t as Iterable<TrainBatch> | AsyncIterable<TrainBatch>);
}

function makeStrategy(name: StrategyName, ctx: StrategyContext): Strategy {
  switch (name) {
    case "sensitivity":
      return sensitivityStrategy(ctx);
    case "random":
      return randomStrategy(ctx);
    case "grid":
      return gridStrategy(ctx);
    case "tpe":
      return tpeStrategy(ctx);
    case "evolution":
      return evolutionStrategy(ctx);
  }
}

/** Estimated weight bytes of an assignment (for the cost model's skip rule). */
function estBytes(space: SearchSpace, a: Assignment): number {
  return space.layers.reduce((s, l) => s + l.params * choiceBits(a.layers[l.name] ?? "float"), 0) /
    8;
}

/**
 * A choice's cost on one layer, for the strategies that rank choices (sensitivity): the mean
 * over the objectives of the estimated value of uniform int8 with that layer changed, divided
 * by the float model's (sizes from bits a weight, latency from the cost model). Undefined when
 * only bits can say (no size/latency objective): the strategies then rank by bits.
 */
function choiceCostOf(
  space: SearchSpace,
  objectives: readonly string[],
  int8Name: string,
  predict: (a: Assignment) => number | undefined,
): ((layer: string, c: string) => number) | undefined {
  const floatA: Assignment = {
    layers: Object.fromEntries(space.layers.map((l) => [l.name, "float"])),
  };
  const base: Assignment = {
    layers: Object.fromEntries(
      space.layers.map((l) => [l.name, l.choices.includes(int8Name) ? int8Name : "float"]),
    ),
  };
  const floatBytes = estBytes(space, floatA), floatMs = predict(floatA);
  const sizeTerm = objectives.some((o) => o === "size" || o === "gzipSize");
  const latTerm = objectives.includes("latency") && floatMs !== undefined && floatMs > 0;
  if (!sizeTerm && !latTerm) return undefined;
  return (layer, c) => {
    const a = { layers: { ...base.layers, [layer]: c } };
    let sum = 0, n = 0;
    if (sizeTerm) sum += estBytes(space, a) / floatBytes, n++;
    const ms = latTerm ? predict(a) : undefined;
    if (ms !== undefined) sum += ms / floatMs!, n++;
    return n ? sum / n : choiceBits(c);
  };
}

const fmtPct = (x: number) => `${(x * 100).toFixed(2)}%`;
function fmtMetric(metric: string, v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return String(v);
  return metric === "kl" ? v.toFixed(4) : fmtPct(v);
}

export interface SearchResultExtra {
  /** Normalized hypervolume of the feasible trials (pareto.ts). */
  hypervolume: number;
  /** Proposals the cost model skipped as unable to enter the Pareto front. */
  skipped: number;
}

/** Searches for compression recipes of `model` under `options.budget`. */
export async function search(
  model: Uint8Array | string,
  options: SearchOptions,
): Promise<SearchResult & SearchResultExtra> {
  checkOptions(options);
  const signal = options.signal;
  signal?.throwIfAborted();
  const objectives: Objective[] = options.objectives ?? ["size", "latency"];
  const strategyName: StrategyName = options.strategy ?? "sensitivity";
  const trialsWanted = options.trials ?? 40;
  const seed = options.seed ?? 0;
  const cores = (navigator as { hardwareConcurrency?: number }).hardwareConcurrency ?? 1;
  const concurrency = Math.min(options.concurrency ?? 1, Math.max(1, cores));
  const latencyRuns = options.latencyRuns ?? 20;
  const budget = { ...options.budget };
  const bytes = typeof model === "string" ? await Deno.readFile(model) : model;
  const data = options.data;
  const space = buildSpace(bytes, {
    calibration: !!data.calibration,
    train: !!data.train,
    spec: options.space,
  });
  if (strategyName === "grid") checkGrid(space);

  const calibration: Feeds[] | undefined = data.calibration
    ? await collect(data.calibration)
    : undefined;
  const train = data.train ? await materializeTrain(data.train) : undefined;
  const validation: Dataset = data.validation;
  signal?.throwIfAborted();

  const ctx: TrialContext = {
    model: bytes,
    calibration,
    validation,
    train,
    budget,
    latencyRuns,
    proxy: proxySubset(validation, seed),
  };
  const int8Name = calibration ? "int8" : "int8-dynamic";
  const int8Recipe = parseRecipe(int8Name);
  // The pool starts now: its Workers load while this thread measures the float model, and the
  // uniform-int8 baseline (which needs no float reference) runs in one of them meanwhile.
  const pool: TrialPool = createPool(ctx, concurrency);
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(abortError());
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  aborted.catch(() => {});
  const race = <T>(p: Promise<T>) => (signal ? Promise.race([p, aborted]) : p);
  try {
    return await searchWith(pool, race);
  } catch (e) {
    if (signal?.aborted) throw (e as Error)?.name === "AbortError" ? e : abortError();
    throw e;
  } finally {
    pool.close();
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }

  async function searchWith(
    pool: TrialPool,
    race: <T>(p: Promise<T>) => Promise<T>,
  ): Promise<SearchResult & SearchResultExtra> {
    const i8Pending = race(pool.run({ recipe: int8Recipe, noProxy: true }));
    i8Pending.catch(() => {});

    // Baselines, measured the way trials are: the float model itself, and uniform int8.
    const t0 = performance.now();
    const floatReport = await evaluate(bytes, validation, evalOptions(bytes, latencyRuns));
    const floatMetrics = metricsOf(floatReport);
    const refMetric = budget.metric === "accuracy"
      ? floatMetrics.accuracy!
      : budget.metric === "agreement"
      ? 1
      : 0;
    const reference = { metric: refMetric, threshold: thresholdOf(budget, refMetric) };
    const floatRecipe = parseRecipe({ method: "none" });
    const floatTrial: Trial = {
      id: -1,
      assignment: { layers: Object.fromEntries(space.layers.map((l) => [l.name, "float"])) },
      recipe: floatRecipe,
      hash: recipeHash(floatRecipe),
      metrics: floatMetrics,
      feasible: meetsBudget(floatMetrics, budget, reference.threshold),
      durationMs: performance.now() - t0,
      phase: "baseline",
    };

    let costModel: CostModel | undefined;
    try {
      costModel = await buildCostModel(bytes, space);
    } catch {
      costModel = undefined;
    }
    const predict = (a: Assignment) => {
      try {
        const v = costModel?.predict(a);
        return v !== undefined && Number.isFinite(v) ? v : undefined;
      } catch {
        return undefined;
      }
    };

    const stratCtx: StrategyContext = {
      space,
      objectives,
      budget,
      reference,
      float: floatMetrics,
      choiceCost: choiceCostOf(space, objectives, int8Name, predict),
    };
    const strategy = makeStrategy(strategyName, stratCtx);
    const probes = (strategy as Partial<SensitivityStrategy>).probes ?? 0;

    const stored = new Map<string, Trial>();
    if (options.state) { for (const t of await options.state.load()) stored.set(t.hash, t); }
    signal?.throwIfAborted();

    const run = (recipe: Recipe, extra: { sqnr?: boolean; noProxy?: boolean } = {}) =>
      race(pool.run({ recipe, reference, ...extra }));

    const trials: Trial[] = [];
    const seen = new Map<string, Trial>(); // this run's trials by hash
    const rng = seededRandom(seed);
    let counted = 0, skipped = 0, idle = 0;
    const total = trialsWanted + probes;
    const skipRule = costModel !== undefined &&
      objectives.every((o) => o === "size" || o === "gzipSize" || o === "latency");

    while (counted < trialsWanted && idle < 100) {
      signal?.throwIfAborted();
      const proposals: Proposal[] = strategy.propose(trials, BATCH, rng);
      if (!proposals.length) break;
      // Probes do not count; other proposals stop at the trial budget.
      const batch: { p: Proposal; recipe: Recipe; hash: string; a: Assignment }[] = [];
      let room = trialsWanted - counted;
      for (const p of proposals) {
        if (!p.probe && room <= 0) continue;
        let recipe: Recipe;
        const a = normalizeAssignment(p.assignment);
        try {
          recipe = toRecipe(a);
        } catch (e) {
          throw new ArgumentError(
            `search: a strategy proposed an invalid candidate: ${(e as Error).message}`,
          );
        }
        const hash = recipeHash(recipe);
        if (seen.has(hash) || batch.some((b) => b.hash === hash)) continue;
        if (skipRule && !p.probe && !stored.has(hash)) {
          const lat = predict(a), est = estBytes(space, a);
          const beaten = lat !== undefined &&
            trials.some((t) =>
              t.feasible && usable(t) && t.predicted?.latencyMs !== undefined &&
              t.predicted.latencyMs * 1.15 <= lat && estBytes(space, t.assignment) * 1.15 <= est
            );
          if (beaten) {
            skipped++;
            continue;
          }
        }
        batch.push({ p, recipe, hash, a });
        if (!p.probe) room--;
      }
      if (!batch.length) {
        idle++;
        continue;
      }
      idle = 0;
      // Evaluate the batch (cache hits from the state store are not re-run).
      const outcomes = batch.map((b) => {
        const hit = stored.get(b.hash);
        if (hit) return Promise.resolve(hit);
        return run(b.recipe, { sqnr: b.p.probe }).then((o) => o);
      });
      // Told in id order; each finished trial is appended to the state as it is told.
      for (let i = 0; i < batch.length; i++) {
        const b = batch[i];
        const r = await race(outcomes[i] as Promise<TrialOutcome | Trial>);
        const fields = "hash" in r
          ? {
            metrics: r.metrics,
            feasible: !r.error && !r.earlyRejected &&
              meetsBudget(r.metrics, budget, reference.threshold),
            durationMs: r.durationMs,
            ...(r.earlyRejected ? { earlyRejected: true } : {}),
            ...(r.error ? { error: r.error } : {}),
          }
          : outcomeFields(r);
        const lat = predict(b.a);
        const t: Trial = {
          id: trials.length,
          assignment: b.a,
          recipe: b.recipe,
          hash: b.hash,
          ...fields,
          ...(lat !== undefined ? { predicted: { latencyMs: lat } } : {}),
          phase: b.p.phase,
        };
        trials.push(t);
        seen.set(b.hash, t);
        if (!b.p.probe) counted++;
        if (options.state && !stored.has(b.hash)) await options.state.append(t);
        options.onTrial?.(t, trials.length, total);
        signal?.throwIfAborted();
      }
    }

    const i8 = await i8Pending;
    const int8Trial: Trial = {
      id: -2,
      assignment: {
        layers: Object.fromEntries(space.layers.map((l) => [l.name, int8Name])),
      },
      recipe: int8Recipe,
      hash: recipeHash(int8Recipe),
      ...outcomeFields(i8),
      // Judged here: it ran before the float reference existed.
      feasible: !i8.error && meetsBudget(i8.metrics, budget, reference.threshold),
      phase: "baseline",
    };

    const pareto = paretoFront(trials, objectives);
    const sensitivity = (strategy as Partial<SensitivityStrategy>).sensitivities?.();
    let best: SearchResult["best"] = null;
    // Measured latencies of fast models differ by a few percent run to run: a trial that only
    // measured as fast as int8 must also be predicted so by the cost model.
    const int8Predicted = predict(int8Trial.assignment);
    const pick = pickBest(
      pareto,
      objectives,
      int8Trial,
      (t) =>
        !objectives.includes("latency") || int8Predicted === undefined ||
        t.predicted?.latencyMs === undefined || t.predicted.latencyMs <= int8Predicted,
    );
    if (pick) {
      const bt = pick.trial;
      const r = await compress(bytes, bt.recipe, {
        calibration,
        ...(bt.recipe.finetune && train ? { train } : {}),
        signal,
      });
      best = { model: r.model, recipe: bt.recipe, report: r.report as CompressReport, trial: bt };
    }
    const explanation = explain({
      trials,
      pareto,
      floatTrial,
      int8Trial,
      budget,
      reference,
      space,
      objectives,
      sensitivity,
      pick,
    });
    if (skipped) {
      explanation.push(
        `${skipped} proposal(s) skipped: the cost model predicted them slower and larger than ` +
          `a feasible trial already measured`,
      );
    }
    return {
      baseline: { float: floatTrial, int8: int8Trial },
      trials,
      pareto,
      best,
      explanation,
      ...(sensitivity ? { sensitivity } : {}),
      space,
      budget,
      objectives,
      reference,
      hypervolume: normalizedHypervolume(trials, objectives, floatMetrics),
      skipped,
    };
  }
}

function outcomeFields(o: TrialOutcome): Pick<
  Trial,
  "metrics" | "feasible" | "durationMs" | "earlyRejected" | "error"
> {
  return {
    metrics: o.metrics,
    feasible: o.feasible,
    durationMs: o.durationMs,
    ...(o.earlyRejected ? { earlyRejected: true } : {}),
    ...(o.error ? { error: o.error } : {}),
  };
}

interface ExplainInput {
  trials: Trial[];
  pareto: Trial[];
  floatTrial: Trial;
  int8Trial: Trial;
  budget: SearchResult["budget"];
  reference: SearchResult["reference"];
  space: SearchSpace;
  objectives: Objective[];
  sensitivity?: SearchResult["sensitivity"];
  /** The chosen trial (pickBest), if any. */
  pick?: ReturnType<typeof pickBest>;
}

function describeAssignment(a: Assignment): string {
  const parts = Object.entries(a.layers).map(([l, c]) => `${l} ${c}`);
  if (a.int4Block) parts.push(`int4 blocks of ${a.int4Block}`);
  if (a.finetune) parts.push("fine-tuned");
  return parts.join(", ");
}

function objLine(m: TrialMetrics, objectives: Objective[]): string {
  return objectives.map((o) =>
    `${o} ${
      o === "latency" ? m.latencyMs.toFixed(3) + " ms" : objectiveValue(m, o).toLocaleString("en")
    }`
  ).join(", ");
}

/** Why the budget was or was not met. */
export function explain(x: ExplainInput): string[] {
  const { budget, reference, trials, pareto } = x;
  const out: string[] = [];
  const metric = budget.metric;
  const cmp = metric === "kl" ? "≤" : "≥";
  out.push(
    `budget: ${metric} ${cmp} ${fmtMetric(metric, reference.threshold)} (float model: ${
      fmtMetric(metric, reference.metric)
    }, ${metric === "kl" ? "cap" : "max drop"} ${
      budget.relative && metric !== "kl" ? fmtPct(budget.maxDrop) + " relative" : budget.maxDrop
    })`,
  );
  const early = trials.filter((t) => t.earlyRejected).length;
  const errors = trials.filter((t) => t.error).length;
  const feasible = trials.filter((t) => t.feasible && usable(t)).length;
  out.push(
    `${trials.length} trial(s): ${feasible} within the budget, ${early} rejected early on the ` +
      `proxy, ${errors} failed`,
  );
  const i8 = x.int8Trial;
  const pick = x.pick;
  if (pick) {
    const b = pick.trial;
    if (x.objectives.length > 1) {
      out.push(
        pick.againstInt8
          ? `chosen: the Pareto trial best in ${x.objectives[0]} among those no worse than ` +
            `uniform int8 in ${x.objectives.join(", ")}`
          : `chosen: the Pareto trial best in ${x.objectives[0]} (no trial within the budget is ` +
            `as good as uniform int8 in ${x.objectives.join(", ")} at once)`,
      );
    }
    out.push(
      `budget met by trial #${b.id} (${b.phase ?? "?"}): ${metric} ${
        fmtMetric(metric, budgetValue(b.metrics, budget))
      }; ${describeAssignment(b.assignment)}`,
    );
    if (!i8.error) {
      const ratio = i8.metrics.size / b.metrics.size;
      const lat = i8.metrics.latencyMs && b.metrics.latencyMs
        ? `, latency ${b.metrics.latencyMs.toFixed(3)} ms vs ${
          i8.metrics.latencyMs.toFixed(3)
        } ms (${(i8.metrics.latencyMs / b.metrics.latencyMs).toFixed(2)}× faster)`
        : "";
      out.push(
        `vs uniform int8 (${i8.feasible ? "within" : "outside"} the budget, ${metric} ${
          fmtMetric(metric, budgetValue(i8.metrics, budget))
        }): ${b.metrics.size.toLocaleString("en")} bytes vs ${
          i8.metrics.size.toLocaleString("en")
        } (${ratio.toFixed(2)}× smaller)${lat}`,
      );
    }
    out.push(`best: ${objLine(b.metrics, x.objectives)}`);
    out.push(`Pareto front: ${pareto.length} trial(s) on ${x.objectives.join(", ")}`);
    return out;
  }
  out.push("no trial met the budget");
  // Layers whose sensitivity alone exceeds the budget.
  const allowed = metric === "kl" ? reference.threshold : reference.metric - reference.threshold;
  const binding: string[] = [];
  if (x.sensitivity?.length) {
    for (const l of x.space.layers) {
      const s = x.sensitivity.filter((v) => v.layer === l.name);
      if (!s.length) continue;
      const mild = s.reduce((a, b) => (b.drop < a.drop ? b : a));
      if (mild.drop > allowed) {
        binding.push(
          `${l.name} (even ${mild.choice} alone drops ${metric} by ${
            fmtMetric(metric, mild.drop)
          }, SQNR ${mild.sqnrDb.toFixed(1)} dB)`,
        );
      }
    }
  } else {
    for (const l of x.space.layers) {
      const touched = trials.filter((t) =>
        (t.assignment.layers[l.name] ?? "float") !== "float" && !t.error
      );
      if (touched.length && touched.every((t) => !t.feasible)) {
        const alone = touched.filter((t) =>
          Object.entries(t.assignment.layers).every(([k, c]) => k === l.name || c === "float")
        );
        binding.push(
          `${l.name} (none of the ${touched.length} trial(s) compressing it met the budget${
            alone.length ? `, ${alone.length} of them with it alone` : ""
          })`,
        );
      }
    }
  }
  if (binding.length) {
    out.push(`layers whose compression alone exceeds the budget: ${binding.join("; ")}`);
  } else out.push("no single layer explains it: the drops add up across layers");
  const closest = trials.filter((t) => !t.error).map((t) => ({
    t,
    v: violation(t.metrics, budget, reference.threshold),
  })).sort((a, b) => a.v - b.v || a.t.id - b.t.id)[0];
  if (closest) {
    out.push(
      `closest trial #${closest.t.id}: ${metric} ${
        fmtMetric(metric, budgetValue(closest.t.metrics, budget))
      }${
        closest.t.earlyRejected
          ? " (proxy agreement " + fmtPct(closest.t.metrics.agreement) + ")"
          : ""
      }, ${fmtMetric(metric, closest.v)} outside the budget; ${
        describeAssignment(closest.t.assignment)
      }`,
    );
  }
  if (!i8.error) {
    out.push(
      `uniform int8: ${metric} ${fmtMetric(metric, budgetValue(i8.metrics, budget))} (${
        i8.feasible ? "within" : "outside"
      } the budget)`,
    );
  }
  return out;
}
