// Tree-structured Parzen estimator over the categorical genes (Bergstra et al. 2011): after a
// start of uniform recipes (common.ts uniformAssignments) and random points, the trials are split into good (the best γ = 25% by the scalarized objective,
// infeasibility penalized) and bad; each gene gets a smoothed categorical density in both
// (l: good, g: bad; add-one smoothing); candidates are drawn from l and the one with the
// largest l(x)/g(x) is proposed.
import {
  assignmentKey,
  type Proposal,
  randomAssignment,
  scalarize,
  type Strategy,
  type StrategyContext,
  uniformAssignments,
} from "./common.ts";
import type { Assignment, Trial } from "../types.ts";

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
      // Good / bad by the scalarized objective (ties: trial id, so the split is repeatable).
      const ranked = [...history].map((t) => ({ t, s: scalarize(t, ctx) }))
        .sort((a, b) => a.s - b.s || a.t.id - b.t.id).map((x) => x.t);
      const nGood = Math.max(1, Math.ceil(TPE_GAMMA * ranked.length));
      const good = ranked.slice(0, nGood), bad = ranked.slice(nGood);
      const l = genes.map((g) => density(g, good)), gd = genes.map((g) => density(g, bad));
      for (let slot = 0; slot < count; slot++) {
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
