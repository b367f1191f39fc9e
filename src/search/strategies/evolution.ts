// NSGA-II (Deb et al. 2002) over the per-layer choices, started from the uniform recipes and
// random points (common.ts uniformAssignments): the population is the best POP trials
// so far under constraint-domination (feasible before infeasible; feasible ones by
// non-dominated rank then crowding distance; infeasible ones by violation; errors last);
// parents by binary tournament on (rank, crowding); per-gene uniform crossover; each gene
// mutates with probability 1/genes (at least one gene changes when the child is a copy).
import { crowdingDistance, nonDominatedSort, usable } from "../pareto.ts";
import { violation } from "../trial.ts";
import {
  assignmentKey,
  decisionPoint,
  type Proposal,
  randomAssignment,
  type Strategy,
  type StrategyContext,
  uniformAssignments,
} from "./common.ts";
import { genesOf } from "./tpe.ts";
import type { Assignment, Trial } from "../types.ts";

export const POPULATION = 8;

interface Ranked {
  t: Trial;
  rank: number;
  crowd: number;
}

/** Constraint-dominated ranking of all trials, best first. */
export function rankTrials(trials: readonly Trial[], ctx: StrategyContext): Ranked[] {
  const feas = trials.filter((t) => t.feasible && usable(t));
  const pts = feas.map((t) => decisionPoint(t, ctx));
  const out: Ranked[] = [];
  nonDominatedSort(pts).forEach((front, r) => {
    const cd = crowdingDistance(pts, front);
    const members = front.map((i) => ({ t: feas[i], rank: r, crowd: cd.get(i)! }));
    members.sort((a, b) => b.crowd - a.crowd || a.t.id - b.t.id);
    out.push(...members);
  });
  const base = out.length ? out[out.length - 1].rank + 1 : 0;
  const infeas = trials.filter((t) => !(t.feasible && usable(t)) && !t.error).map((t) => ({
    t,
    v: violation(t.metrics, ctx.budget, ctx.reference.threshold) + (t.earlyRejected ? 1 : 0),
  })).sort((a, b) => a.v - b.v || a.t.id - b.t.id);
  infeas.forEach((x, i) => out.push({ t: x.t, rank: base + 1 + i, crowd: 0 }));
  const errs = trials.filter((t) => t.error);
  errs.forEach((t) => out.push({ t, rank: base + infeas.length + 2, crowd: 0 }));
  return out;
}

export function evolutionStrategy(ctx: StrategyContext): Strategy {
  const genes = genesOf(ctx);
  // Half the initial population: the uniform recipes (warm start); the rest random.
  const warm = uniformAssignments(ctx.space).slice(0, POPULATION / 2);
  return {
    propose(history: readonly Trial[], count: number, rng: () => number): Proposal[] {
      const seen = new Set(history.map((t) => assignmentKey(t.assignment)));
      const out: Proposal[] = [];
      const usableHistory = history.filter((t) => !t.error);
      if (usableHistory.length < POPULATION) {
        for (const a of warm) {
          const k = assignmentKey(a);
          if (out.length >= count || seen.has(k)) continue;
          seen.add(k);
          out.push({ assignment: a, phase: "evolution-warm" });
        }
        for (let tries = 0; out.length < count && tries < 50 * count; tries++) {
          const a = randomAssignment(ctx.space, rng);
          const k = assignmentKey(a);
          if (seen.has(k)) continue;
          seen.add(k);
          out.push({ assignment: a, phase: "evolution-init" });
        }
        return out;
      }
      const pop = rankTrials(history, ctx).slice(0, POPULATION);
      const tournament = () => {
        const a = pop[Math.floor(rng() * pop.length)], b = pop[Math.floor(rng() * pop.length)];
        return a.rank < b.rank || (a.rank === b.rank && a.crowd >= b.crowd) ? a : b;
      };
      for (let tries = 0; out.length < count && tries < 50 * count; tries++) {
        const p1 = tournament().t.assignment, p2 = tournament().t.assignment;
        const child: Assignment = { layers: {} };
        for (const g of genes) g.set(child, g.get(rng() < 0.5 ? p1 : p2));
        let mutated = false;
        for (const g of genes) {
          if (rng() < 1 / genes.length) {
            g.set(child, g.values[Math.floor(rng() * g.values.length)]);
            mutated = true;
          }
        }
        if (!mutated) {
          const g = genes[Math.floor(rng() * genes.length)];
          g.set(child, g.values[Math.floor(rng() * g.values.length)]);
        }
        const k = assignmentKey(child);
        if (seen.has(k)) continue;
        seen.add(k);
        out.push({ assignment: child, phase: "evolution" });
      }
      return out;
    },
  };
}
