// The common ask/tell interface of the search strategies, and what they share: random
// assignments, the decision values of a trial (what a strategy ranks by) and its scalarization.
import { canonicalJson, choiceBits, normalizeAssignment } from "../space.ts";
import { objectiveValue } from "../pareto.ts";
import type {
  Assignment,
  Budget,
  Choice,
  Objective,
  SearchSpace,
  Trial,
  TrialMetrics,
} from "../types.ts";

export interface Proposal {
  assignment: Assignment;
  /** The strategy phase that proposed it ("random", "tpe", "sensitivity", "fallback"…). */
  phase: string;
  /** Sensitivity probes do not count against `trials`. */
  probe?: boolean;
}

export interface StrategyContext {
  space: SearchSpace;
  objectives: Objective[];
  budget: Budget;
  reference: { metric: number; threshold: number };
  /** The float model's metrics (normalizes the objectives). */
  float: TrialMetrics;
  /**
   * How much a choice costs on one layer in the objectives, lower = more compressive (search.ts
   * estimates it from sizes and the cost model's latency); absent: bits a weight (choiceBits).
   */
  choiceCost?: (layer: string, c: Choice) => number;
}

/**
 * Ask/tell: `propose` sees every finished trial so far (in id order: the "tell") and returns up
 * to `count` new candidates; an empty list means the strategy has nothing more to try.
 */
export interface Strategy {
  propose(history: readonly Trial[], count: number, rng: () => number): Proposal[];
}

/** The cache key of an assignment. */
export function assignmentKey(a: Assignment): string {
  return canonicalJson(normalizeAssignment(a));
}

export function pick<T>(xs: readonly T[], rng: () => number): T {
  return xs[Math.min(xs.length - 1, Math.floor(rng() * xs.length))];
}

export function randomAssignment(space: SearchSpace, rng: () => number): Assignment {
  const layers: Record<string, string> = {};
  for (const l of space.layers) layers[l.name] = pick(l.choices, rng);
  const a: Assignment = { layers };
  if (space.int4Blocks) a.int4Block = pick(space.int4Blocks, rng);
  if (space.finetune) a.finetune = pick(space.finetune, rng);
  return a;
}

/**
 * The uniform assignments a user would try first, as a warm start for TPE and evolution: for
 * each choice label that is not float or plain int8 (the baseline) and costs at most 8 bits a
 * weight (the quantizations and
 * their combinations; float-based pruning or factoring alone is rarely Pareto-optimal),
 * every layer that has it takes it and the others their first non-float choice (the
 * int8 of the space). Mildest first (most bits), so the likely-feasible ones come first.
 */
export function uniformAssignments(space: SearchSpace): Assignment[] {
  const labels = new Map<string, number>();
  for (const l of space.layers) {
    for (const c of l.choices) {
      // Plain int8 is the baseline the search measures anyway.
      if (c === "float" || c === "int8" || c === "int8-dynamic" || choiceBits(c) > 8) continue;
      labels.set(c, (labels.get(c) ?? 0) + 1);
    }
  }
  // Ties by how many layers take the label (the broader first), then by name.
  const order = [...labels.keys()].sort((a, b) =>
    choiceBits(b) - choiceBits(a) || labels.get(b)! - labels.get(a)! || (a < b ? -1 : 1)
  );
  return order.map((c) => {
    const layers: Record<string, string> = {};
    for (const l of space.layers) {
      layers[l.name] = l.choices.includes(c) ? c : l.choices.find((x) => x !== "float") ?? "float";
    }
    return { layers };
  });
}

/**
 * The values a strategy ranks a trial by: its objectives, with latency taken from the cost
 * model's prediction when there is one (measured latencies are noisy; predictions make the
 * strategies' decisions repeatable), normalized by the float model.
 */
export function decisionPoint(t: Trial, ctx: StrategyContext): number[] {
  return ctx.objectives.map((o) => {
    const v = o === "latency" && t.predicted?.latencyMs !== undefined
      ? t.predicted.latencyMs
      : objectiveValue(t.metrics, o);
    // Predicted latencies are normalized by the float model's measured one too: the cost model
    // is anchored on the float model's profile, so both are on one scale.
    const f = objectiveValue(ctx.float, o);
    return f ? v / f : v;
  });
}

/** The allowance of the budget, in the metric's units (> 0 avoids division by zero). */
export function allowance(ctx: StrategyContext): number {
  return Math.max(1e-3, Math.abs(ctx.reference.metric - ctx.reference.threshold));
}
