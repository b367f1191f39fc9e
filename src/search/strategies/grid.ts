// Grid search: every point of the space in mixed-radix order (the first layer varies
// slowest). Refuses spaces of more than GRID_LIMIT points.
import { ArgumentError } from "../../errors.ts";
import { spaceSize } from "../space.ts";
import type { Proposal, Strategy, StrategyContext } from "./common.ts";
import type { Assignment, SearchSpace, Trial } from "../types.ts";

export const GRID_LIMIT = 10_000;

export function checkGrid(space: SearchSpace): void {
  const n = spaceSize(space);
  if (n > GRID_LIMIT) {
    throw new ArgumentError(
      `search: the grid strategy needs a space of at most ${GRID_LIMIT.toLocaleString("en")} ` +
        `points, this one has ${n >= 1e15 ? "more than 1e15" : n.toLocaleString("en")} (` +
        `restrict it with space.methods / space.layers, or use random, tpe or evolution)`,
    );
  }
}

export function gridPoint(space: SearchSpace, index: number): Assignment {
  const genes: { set: (a: Assignment, i: number) => void; n: number }[] = space.layers.map((
    l,
  ) => ({ n: l.choices.length, set: (a, i) => a.layers[l.name] = l.choices[i] }));
  if (space.int4Blocks) {
    const b = space.int4Blocks;
    genes.push({ n: b.length, set: (a, i) => a.int4Block = b[i] });
  }
  if (space.finetune) {
    const f = space.finetune;
    genes.push({ n: f.length, set: (a, i) => a.finetune = f[i] });
  }
  const a: Assignment = { layers: {} };
  let rest = index;
  for (let g = genes.length - 1; g >= 0; g--) {
    genes[g].set(a, rest % genes[g].n);
    rest = Math.floor(rest / genes[g].n);
  }
  return a;
}

export function gridStrategy(ctx: StrategyContext): Strategy {
  checkGrid(ctx.space);
  const total = spaceSize(ctx.space);
  let next = 0;
  return {
    propose(_history: readonly Trial[], count: number): Proposal[] {
      const out: Proposal[] = [];
      while (out.length < count && next < total) {
        out.push({ assignment: gridPoint(ctx.space, next++), phase: "grid" });
      }
      return out;
    },
  };
}
