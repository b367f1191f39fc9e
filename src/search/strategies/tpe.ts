// Tree-structured Parzen estimator over the categorical genes (Bergstra et al. 2011): after a
// start of uniform recipes (common.ts uniformAssignments) and random points, the trials are
// split into good (the best γ = 25% under a scalarization with random weights drawn per
// proposal, ParEGO-style, so the proposals spread along the front; infeasibility penalized)
// and bad; each gene gets a smoothed categorical density in both (l: good, g: bad; add-one
// smoothing); candidates are drawn from l and the one with the
// largest l(x)/g(x) is proposed.
import {
  allowance,
  assignmentKey,
  decisionPoint,
  type Proposal,
  randomAssignment,
  type Strategy,
  type StrategyContext,
  uniformAssignments,
} from "./common.ts";
import type { Assignment, Trial } from "../types.ts";
import { usable } from "../pareto.ts";
import { violation } from "../trial.ts";

/**
 * Augmented Tchebycheff scalarization with weights w of a trial's normalized objectives;
 * infeasible trials rank after every feasible one (by violation), errors last.
 */
export function tchebycheff(t: Trial, ctx: StrategyContext, w: readonly number[]): number {
  if (t.error) return 1e6;
  const p = decisionPoint(t, ctx);
  let max = -Infinity, sum = 0;
  p.forEach((v, i) => {
    max = Math.max(max, w[i] * v);
    sum += w[i] * v;
  });
  const s = max + 0.05 * sum;
  if (t.feasible && usable(t)) return s;
  const v = violation(t.metrics, ctx.budget, ctx.reference.threshold);
  return 10 + s + Math.min(50, (Number.isFinite(v) ? v : 50) / allowance(ctx));
}

export const TPE_GAMMA = 0.25;
export const TPE_CANDIDATES = 24;

interface Gene {
  values: readonly unknown[];
  get(a: Assignment): unknown;
  set(a: Assignment, v: unknown): void;
}

export function genesOf(ctx: StrategyContext): Gene[] {
  const genes: Gene[] = ctx.space.layers.map((l) => ({
    values: l.choices,
    get: (a) => a.layers[l.name] ?? "float",
    set: (a, v) => a.layers[l.name] = v as string,
  }));
  if (ctx.space.int4Blocks) {
    genes.push({
      values: ctx.space.int4Blocks,
      get: (a) => a.int4Block ?? 32,
      set: (a, v) => a.int4Block = v as 32 | 64 | 128,
    });
  }
  if (ctx.space.finetune) {
    genes.push({
      values: ctx.space.finetune,
      get: (a) => a.finetune ?? false,
      set: (a, v) => a.finetune = v as boolean,
    });
  }
  return genes;
}

function density(gene: Gene, trials: readonly Trial[]): number[] {
  const k = gene.values.length;
  const counts = new Array(k).fill(1); // add-one prior
  for (const t of trials) {
    const i = gene.values.indexOf(gene.get(t.assignment));
    if (i >= 0) counts[i]++;
  }
  const sum = trials.length + k;
  return counts.map((c) => c / sum);
}

function sample(p: number[], rng: () => number): number {
  let r = rng();
  for (let i = 0; i < p.length; i++) {
    r -= p[i];
    if (r < 0) return i;
  }
  return p.length - 1;
}

export function tpeStrategy(ctx: StrategyContext, startup = 8): Strategy {
  const genes = genesOf(ctx);
  // Half the start-up trials are the uniform recipes (warm start), the rest random.
  const warm = uniformAssignments(ctx.space).slice(0, Math.floor(startup / 2));
  return {
    propose(history: readonly Trial[], count: number, rng: () => number): Proposal[] {
      const seen = new Set(history.map((t) => assignmentKey(t.assignment)));
      const out: Proposal[] = [];
      const fresh = (a: Assignment) => {
        const k = assignmentKey(a);
        if (seen.has(k)) return false;
        seen.add(k);
        return true;
      };
      if (history.length < startup) {
        for (const a of warm) {
          if (out.length < count && history.length + out.length < startup && fresh(a)) {
            out.push({ assignment: a, phase: "tpe-warm" });
          }
        }
        for (let tries = 0; out.length < count && tries < 50 * count; tries++) {
          const a = randomAssignment(ctx.space, rng);
          if (fresh(a)) out.push({ assignment: a, phase: "tpe-startup" });
        }
        return out;
      }
      for (let slot = 0; slot < count; slot++) {
        // Good / bad by a scalarization drawn per proposal (ParEGO's random weights, augmented
        // Tchebycheff): one fixed mean would pull every proposal to one point of the front.
        const lambda = ctx.objectives.map(() => -Math.log(1 - rng() * 0.999999));
        const lsum = lambda.reduce((a, b) => a + b, 0);
        const w = lambda.map((v) => v / lsum);
        const ranked = history.map((t) => ({ t, s: tchebycheff(t, ctx, w) }))
          .sort((a, b) => a.s - b.s || a.t.id - b.t.id).map((x) => x.t);
        const nGood = Math.max(1, Math.ceil(TPE_GAMMA * ranked.length));
        const good = ranked.slice(0, nGood), bad = ranked.slice(nGood);
        const l = genes.map((g) => density(g, good)), gd = genes.map((g) => density(g, bad));
        let best: { a: Assignment; score: number } | undefined;
        for (let c = 0; c < TPE_CANDIDATES; c++) {
          const a: Assignment = { layers: {} };
          let score = 0;
          genes.forEach((g, i) => {
            const j = sample(l[i], rng);
            g.set(a, g.values[j]);
            score += Math.log(l[i][j]) - Math.log(gd[i][j]);
          });
          if (seen.has(assignmentKey(a))) continue;
          if (!best || score > best.score) best = { a, score };
        }
        // Every candidate already tried: explore at random.
        let a = best?.a;
        for (let tries = 0; !a && tries < 50; tries++) {
          const r = randomAssignment(ctx.space, rng);
          if (!seen.has(assignmentKey(r))) a = r;
        }
        if (!a) break;
        fresh(a);
        out.push({ assignment: a, phase: best ? "tpe" : "tpe-explore" });
      }
      return out;
    },
  };
}
