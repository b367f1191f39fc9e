// Random search: every layer's choice (and every global gene) uniform, independently.
import { assignmentKey, randomAssignment, type Strategy, type StrategyContext } from "./common.ts";
import type { Proposal } from "./common.ts";
import type { Trial } from "../types.ts";

export function randomStrategy(ctx: StrategyContext): Strategy {
  return {
    propose(history: readonly Trial[], count: number, rng: () => number): Proposal[] {
      const seen = new Set(history.map((t) => assignmentKey(t.assignment)));
      const out: Proposal[] = [];
      for (let tries = 0; out.length < count && tries < 50 * count; tries++) {
        const a = randomAssignment(ctx.space, rng);
        const k = assignmentKey(a);
        if (seen.has(k)) continue;
        seen.add(k);
        out.push({ assignment: a, phase: "random" });
      }
      return out;
    },
  };
}
