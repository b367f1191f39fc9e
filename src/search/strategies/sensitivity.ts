// Sensitivity-guided search, like Intel Neural Compressor's "basic" strategy:
//   1. probes: each layer alone, with the most aggressive choice of each method family it has
//      (at most MAX_PROBES), measuring the drop of the budget metric and the output SQNR;
//   2. start: the most compressive assignment (in the objectives: sizes, and the cost model's
//      latency when latency is one; bits a weight otherwise) whose predicted drop (the sum of the layers'
//      probed drops: additive) fits the budget;
//   3. fallback: while the last candidate misses the budget, the layer with the worst
//      sensitivity moves to its next safer choice, one layer at a time;
//   4. push: from the feasible candidate, each layer (largest first) tries its next more
//      compressive choice; kept when the budget still holds.
// Drops of choices that were not probed are interpolated from their family's probe by bits.
import { choiceBits, choiceFamilies } from "../space.ts";
import { budgetValue } from "../trial.ts";
import {
  allowance,
  assignmentKey,
  type Proposal,
  type Strategy,
  type StrategyContext,
} from "./common.ts";
import type { Assignment, Choice, Sensitivity, Trial } from "../types.ts";

export const MAX_PROBES = 48;

const familyKey = (c: Choice) => choiceFamilies(c).sort().join("+");

/** The probes: per layer, the most aggressive (fewest bits) choice of each family. */
export function probeList(ctx: StrategyContext): { layer: string; choice: Choice }[] {
  const perLayer = ctx.space.layers.map((l) => {
    const byFamily = new Map<string, Choice>();
    for (const c of l.choices) {
      if (c === "float") continue;
      const k = familyKey(c);
      const cur = byFamily.get(k);
      if (cur === undefined || choiceBits(c) < choiceBits(cur)) byFamily.set(k, c);
    }
    return [...byFamily.values()].map((choice) => ({ layer: l.name, choice }));
  });
  // Round-robin over layers, so a cap keeps every layer's first families.
  const out: { layer: string; choice: Choice }[] = [];
  for (let i = 0; out.length < MAX_PROBES; i++) {
    let any = false;
    for (const p of perLayer) {
      if (i < p.length && out.length < MAX_PROBES) out.push(p[i]), any = true;
    }
    if (!any) break;
  }
  return out;
}

export function floatAssignment(ctx: StrategyContext): Assignment {
  return { layers: Object.fromEntries(ctx.space.layers.map((l) => [l.name, "float"])) };
}

/** Drop of the budget metric in a trial (kl: the KL itself); errors: Infinity. */
export function dropOf(t: Trial, ctx: StrategyContext): number {
  if (t.error) return Infinity;
  const v = budgetValue(t.metrics, ctx.budget);
  if (!Number.isFinite(v)) return Infinity;
  if (ctx.budget.metric === "kl") return v;
  // Early-rejected probes only have the proxy's agreement: their disagreement bounds the drop.
  if (t.earlyRejected) return 1 - t.metrics.agreement;
  return ctx.reference.metric - v;
}

export interface SensitivityStrategy extends Strategy {
  readonly probes: number;
  sensitivities(): Sensitivity[];
}

export function sensitivityStrategy(ctx: StrategyContext): SensitivityStrategy {
  const probes = probeList(ctx);
  const sens: Sensitivity[] = [];
  let phase: "probe" | "start" | "fallback" | "push" | "done" = "probe";
  let sent = 0;
  let current: Assignment | undefined;
  let pending: string | undefined; // key of the candidate proposed last
  let accepted: Assignment | undefined;
  let pushOrder: string[] = [];
  const allowed = allowance(ctx);
  const layerOf = new Map(ctx.space.layers.map((l) => [l.name, l]));
  // "More compressive" in the search's objectives (size, and latency when asked for).
  const costCache = new Map<string, number>();
  const cost = (layer: string, c: Choice): number => {
    const k = `${layer}\u0000${c}`;
    let v = costCache.get(k);
    if (v === undefined) costCache.set(k, v = ctx.choiceCost?.(layer, c) ?? choiceBits(c));
    return v;
  };

  /** Estimated drop of `c` on `layer` alone. */
  const est = (layer: string, c: Choice): number => {
    if (c === "float") return 0;
    const exact = sens.find((s) => s.layer === layer && s.choice === c);
    if (exact) return exact.drop;
    const fam = sens.find((s) => s.layer === layer && familyKey(s.choice) === familyKey(c));
    if (!fam) return Infinity;
    const r = (32 - choiceBits(c)) / Math.max(1e-9, 32 - choiceBits(fam.choice));
    return Math.max(0, fam.drop) * Math.min(1, Math.max(0, r));
  };
  const options = (layer: string) =>
    layerOf.get(layer)!.choices.filter((c) => Number.isFinite(est(layer, c)));
  const predicted = (a: Assignment) =>
    Object.entries(a.layers).reduce((s, [l, c]) => s + Math.max(0, est(l, c)), 0);
  /** The next safer choice: the most compressive one with a smaller estimated drop. */
  const safer = (layer: string, c: Choice): Choice => {
    const d = est(layer, c);
    const opts = options(layer).filter((o) => est(layer, o) < d || o === "float")
      .filter((o) => o !== c)
      .sort((a, b) => cost(layer, a) - cost(layer, b) || est(layer, a) - est(layer, b));
    return opts[0] ?? "float";
  };

  function startAssignment(): Assignment {
    const a: Assignment = { layers: {} };
    for (const l of ctx.space.layers) {
      const opts = options(l.name).filter((c) => est(l.name, c) <= allowed)
        .sort((x, y) => cost(l.name, x) - cost(l.name, y) || est(l.name, x) - est(l.name, y));
      a.layers[l.name] = opts[0] ?? "float";
    }
    // Additive prediction over the allowance: back off the worst layer until it fits.
    for (let guard = 0; predicted(a) > allowed && guard < 1000; guard++) {
      const worst = Object.entries(a.layers).filter(([, c]) => c !== "float")
        .sort((x, y) => est(y[0], y[1]) - est(x[0], x[1]) || x[0].localeCompare(y[0]))[0];
      if (!worst) break;
      a.layers[worst[0]] = safer(worst[0], worst[1]);
    }
    return a;
  }

  function propose1(a: Assignment, ph: string, history: readonly Trial[]): Proposal[] {
    const k = assignmentKey(a);
    pending = k;
    current = a;
    // Already measured (e.g. equal to a probe): the caller's cache answers it.
    void history;
    return [{ assignment: a, phase: ph }];
  }

  function nextPush(history: readonly Trial[]): Proposal[] {
    const tried = new Set(history.map((t) => assignmentKey(t.assignment)));
    while (pushOrder.length) {
      const layer = pushOrder[0];
      const c = accepted!.layers[layer];
      const more = options(layer).filter((o) => cost(layer, o) < cost(layer, c))
        .sort((x, y) => cost(layer, y) - cost(layer, x) || est(layer, x) - est(layer, y));
      const cand = more.find((o) => {
        const a = { ...accepted!, layers: { ...accepted!.layers, [layer]: o } };
        return !tried.has(assignmentKey(a));
      });
      if (cand === undefined) {
        pushOrder.shift();
        continue;
      }
      return propose1(
        { ...accepted!, layers: { ...accepted!.layers, [layer]: cand } },
        "push",
        history,
      );
    }
    phase = "done";
    return [];
  }

  return {
    probes: probes.length,
    sensitivities: () => sens.map((s) => ({ ...s })),
    propose(history: readonly Trial[], count: number): Proposal[] {
      const byKey = new Map(history.map((t) => [assignmentKey(t.assignment), t]));
      if (phase === "probe") {
        if (sent < probes.length) {
          const out: Proposal[] = [];
          while (out.length < count && sent < probes.length) {
            const p = probes[sent++];
            const a = floatAssignment(ctx);
            a.layers[p.layer] = p.choice;
            out.push({ assignment: a, phase: "sensitivity", probe: true });
          }
          return out;
        }
        for (const p of probes) {
          const a = floatAssignment(ctx);
          a.layers[p.layer] = p.choice;
          const t = byKey.get(assignmentKey(a));
          if (!t) continue;
          sens.push({
            layer: p.layer,
            choice: p.choice,
            drop: dropOf(t, ctx),
            sqnrDb: t.metrics.sqnrDb ?? 0,
          });
        }
        phase = "start";
        return propose1(startAssignment(), "start", history);
      }
      const last = pending ? byKey.get(pending) : undefined;
      const ok = !!last && last.feasible && !last.error && !last.earlyRejected;
      if (phase === "start" || phase === "fallback") {
        if (ok) {
          accepted = current;
          pushOrder = ctx.space.layers.slice().sort((a, b) =>
            b.params - a.params || a.name.localeCompare(b.name)
          ).map((l) => l.name);
          phase = "push";
          return nextPush(history);
        }
        const a = current!;
        const worst = Object.entries(a.layers).filter(([, c]) => c !== "float")
          .sort((x, y) => est(y[0], y[1]) - est(x[0], x[1]) || x[0].localeCompare(y[0]))[0];
        if (!worst) {
          phase = "done";
          return [];
        }
        phase = "fallback";
        return propose1(
          { ...a, layers: { ...a.layers, [worst[0]]: safer(worst[0], worst[1]) } },
          "fallback",
          history,
        );
      }
      if (phase === "push") {
        // Feasible: keep it and push the same layer further; else this layer stays where it was.
        if (ok) accepted = current;
        else pushOrder.shift();
        return nextPush(history);
      }
      return [];
    },
  };
}
