// The report's per-layer rows: each reference layer with the model's layer(s) standing for it,
// their per-layer time and MACs from a profiled run, and the values to compare for SQNR.
import { Session } from "../session.ts";
import { DEQUANTIZED_SUFFIX } from "../compress/types.ts";
import { percentiles } from "./metrics.ts";
import { sessionOptions, type Source } from "./load.ts";
import { Runner } from "./run.ts";
import type { Analysis, LayerStats } from "./analyze.ts";
import type { LayerPair } from "./compare.ts";
import type { Dataset, EvaluateOptions, LayerEval } from "./types.ts";

export interface ProfileStats {
  /** Median ms per profiled node name. */
  ms: Map<string, number>;
  macs: Map<string, number>;
}

export async function profileLayers(
  model: Source,
  dataset: Dataset,
  n: number,
  options: EvaluateOptions,
  output: string,
): Promise<ProfileStats> {
  const session = await Session.create(
    model.session,
    sessionOptions(model, { build: options.build, profile: true }),
  );
  try {
    const runner = new Runner(session, dataset.inputs, n);
    const feeds = runner.feeds(0, 1);
    // Profiled MACs are for the whole run: per sample when the batch is fixed above 1.
    const batch = runner.fixedBatch ?? 1;
    const runs = Math.max(1, Math.min(options.latencyRuns ?? 30, 10));
    const times = new Map<string, number[]>(), macs = new Map<string, number>();
    await session.run(feeds, { outputs: [output] }); // warm-up
    for (let i = 0; i < runs; i++) {
      await session.run(feeds, { outputs: [output] });
      const seen = new Map<string, number>();
      for (const p of session.profile) seen.set(p.name, (seen.get(p.name) ?? 0) + p.ms);
      for (const [name, ms] of seen) {
        let list = times.get(name);
        if (!list) times.set(name, list = []);
        list.push(ms);
      }
      for (const p of session.profile) {
        if (p.macs !== undefined) macs.set(p.name, p.macs / batch);
      }
    }
    const ms = new Map([...times].map(([k, v]) => [k, percentiles(v, [50])[0]]));
    return { ms, macs };
  } finally {
    await session.release();
  }
}

/** Profile entries belonging to a layer: its nodes, or nodes a pass derived from them (`n::…`). */
function matchProfile(names: readonly string[], prof: ProfileStats, taken: Set<string>) {
  let ms: number | undefined, macs: number | undefined;
  for (const [p, t] of prof.ms) {
    if (taken.has(p) || !names.some((n) => p === n || p.startsWith(`${n}::`))) continue;
    taken.add(p);
    ms = (ms ?? 0) + t;
    const m = prof.macs.get(p);
    if (m !== undefined) macs = (macs ?? 0) + m;
  }
  return { ms, macs };
}

/**
 * The report's layers: the reference's Conv / Gemm / MatMul in order, each with the model's
 * layer(s) standing for it (same output value, same node name, or a name derived from it as
 * `name::…`), then the model's layers no reference layer claimed. Fills MACs the shapes could
 * not give from the profile, then from the float layer. `pairs` are the values to compare.
 */
export function assembleLayers(
  ma: Analysis,
  ra: Analysis | undefined,
  prof: ProfileStats,
  compare: boolean,
  notes: string[],
): { layers: LayerEval[]; pairs: LayerPair[] } {
  const taken = new Set<string>();
  const layers: LayerEval[] = [];
  const used = new Set<LayerStats>();
  const pairs: LayerPair[] = [];
  const fillFromProfile = (l: LayerEval, names: string[]) => {
    const p = matchProfile(names, prof, taken);
    if (p.ms !== undefined) l.ms = p.ms;
    if (l.macs === undefined && p.macs !== undefined) l.macs = p.macs;
  };
  const skipped: string[] = [];
  for (const rl of ra?.layers ?? []) {
    const v = rl.output;
    const mine = ma.layers.filter((l) =>
      !used.has(l) && (l.output === v || l.name === rl.name || l.name.startsWith(`${rl.name}::`))
    );
    mine.forEach((l) => used.add(l));
    const l: LayerEval = { name: rl.name, op: rl.op };
    if (mine.length) {
      l.op = [...new Set(mine.map((x) => x.op))].join("+");
      l.precision = mine[0].precision;
      if (mine[0].weights) l.weights = mine[0].weights;
      l.params = mine.reduce((a, x) => a + x.params, 0);
      l.nonzeros = mine.reduce((a, x) => a + x.nonzeros, 0);
      if (mine.every((x) => x.macs !== undefined)) l.macs = mine.reduce((a, x) => a + x.macs!, 0);
    }
    if (compare) {
      // A quantized layer's consumers read `v::dq`: that is what the model computes for `v`.
      const value = ma.produced.has(v + DEQUANTIZED_SUFFIX)
        ? v + DEQUANTIZED_SUFFIX
        : ma.produced.has(v)
        ? v
        : undefined;
      if (value) {
        l.output = value;
        pairs.push({ name: rl.name, refValue: v, value });
      } else skipped.push(rl.name);
    }
    fillFromProfile(l, [rl.name, ...mine.map((x) => x.name)]);
    // MACs neither the model's shapes nor its profile gave: the float layer's count.
    if (l.macs === undefined && rl.macs !== undefined && mine.length) l.macs = rl.macs;
    // The model's layers without a count share what the layer's total leaves.
    const unknown = mine.filter((x) => x.macs === undefined);
    if (l.macs !== undefined && unknown.length) {
      const known = mine.reduce((a, x) => a + (x.macs ?? 0), 0);
      for (const x of unknown) x.macs = Math.max(0, l.macs - known) / unknown.length;
    }
    layers.push(l);
  }
  if (skipped.length) {
    notes.push(
      `${skipped.length} reference layer(s) have no output in the model, so no SQNR: ` +
        skipped.slice(0, 10).join(", ") + (skipped.length > 10 ? "…" : ""),
    );
  }
  for (const ml of ma.layers) {
    if (used.has(ml)) continue;
    const l: LayerEval = {
      name: ml.name,
      op: ml.op,
      precision: ml.precision,
      ...(ml.weights ? { weights: ml.weights } : {}),
      params: ml.params,
      nonzeros: ml.nonzeros,
    };
    if (ml.macs !== undefined) l.macs = ml.macs;
    fillFromProfile(l, [ml.name]);
    if (ml.macs === undefined && l.macs !== undefined) ml.macs = l.macs;
    layers.push(l);
  }
  const unknown = ma.layers.filter((l) => l.macs === undefined).map((l) => l.name);
  if (unknown.length) {
    notes.push(`MACs unknown for ${unknown.slice(0, 10).join(", ")}: counted as 0`);
  }
  return { layers, pairs };
}
