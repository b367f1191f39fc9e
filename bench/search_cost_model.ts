// The search's latency cost model (src/search/cost_model.ts) against measurements: for each
// model (the code-built zoo, bench/model_zoo.ts, and the ONNX light models when
// ../shared/conformance is there), the float model, uniform int8 and two mixed assignments are
// predicted, then built with compress() and timed (session.run, batch 1) in interleaved rounds
// (bench/timing.ts), medians. error = predicted / measured − 1; the target is |error| ≤ 25%.
//
//   deno run -A bench/search_cost_model.ts [--quick] [--only=lenet,mlp] [--no-light] [--json]
import { compress, Session, type Tensor } from "../src/mod.ts";
import { buildCostModel, type DetailedCostModel } from "../src/search/cost_model.ts";
import { buildSpace, toRecipe } from "../src/search/space.ts";
import type { Assignment, SearchSpace } from "../src/search/types.ts";
import { decodeModel } from "../src/onnx/proto.ts";
import { ZOO_NAMES, zooInput, zooModel } from "./model_zoo.ts";
import { LIGHT_MODELS, lightModelsDir } from "./models.ts";
import { measureInterleaved, table } from "./timing.ts";

export interface CostModelRow {
  model: string;
  assignment: string;
  predicted_ms: number;
  measured_ms: number;
  /** predicted / measured − 1. */
  error: number;
}

export interface CostModelBenchOptions {
  /** Model names (zoo and light) to run; default all. */
  only?: string[];
  /** Skip the light models. */
  light?: boolean;
  /** Shorter timing (fewer rounds). */
  quick?: boolean;
  /** Cache dir for the cost model's calibration (default: none, calibrates in-process). */
  cacheDir?: string;
  log?: (line: string) => void;
}

interface BenchInput {
  name: string;
  bytes: Uint8Array;
  feeds: Record<string, Tensor>;
  calibration: Record<string, Tensor>[];
  heavy: boolean;
}

function lightInput(dir: string, name: string): BenchInput {
  const bytes = Deno.readFileSync(`${dir}/${name}.onnx`);
  const g = decodeModel(bytes).graph!;
  const inits = new Set(g.initializer.map((t) => t.name));
  const input = g.input.find((v) => !inits.has(v.name ?? ""))!;
  const dims = (input.type?.tensorType?.shape?.dim ?? []).map((d) => {
    const v = Number(d.dimValue ?? 0);
    return v > 0 ? v : 1;
  });
  const n = dims.reduce((a, b) => a * b, 1);
  const feed = (f: (i: number) => number) => ({
    [input.name!]: {
      type: "float32",
      dims,
      data: Float32Array.from({ length: n }, (_, i) => f(i)),
    } as Tensor,
  });
  return {
    name,
    bytes,
    feeds: feed((i) => i / n),
    calibration: [feed((i) => i / n), feed((i) => 1 - i / n)],
    heavy: true,
  };
}

function zooInputOf(name: string): BenchInput {
  const m = zooModel(name);
  const feed = (seed: number) => ({
    [m.inputName]: {
      type: "float32",
      dims: [1, ...m.itemDims],
      data: zooInput(m, 1, seed),
    } as Tensor,
  });
  return {
    name,
    bytes: m.bytes,
    feeds: feed(7),
    calibration: [1, 2, 3, 4].map(feed),
    heavy: false,
  };
}

/**
 * The assignments: float, uniform int8, two mixed ones, and the low-bit-weight int8 kind the
 * search picks (int8:w4 on large layers, int8:w7 elsewhere: the 7-bit GEMM).
 */
export function benchAssignments(space: SearchSpace, heavy: boolean): Record<string, Assignment> {
  const pick = (choices: string[], ...want: string[]) =>
    want.find((w) => choices.includes(w)) ?? "float";
  const uniform: Assignment = { layers: {} };
  const mixedA: Assignment = { layers: {} };
  const mixedB: Assignment = { layers: {} };
  const lowbit: Assignment = { layers: {} };
  space.layers.forEach((l, i) => {
    lowbit.layers[l.name] = i === 0 ? "float" : pick(l.choices, "int8:w4", "int8:w7", "int8");
    uniform.layers[l.name] = pick(l.choices, "int8", "int8-dynamic");
    mixedA.layers[l.name] = i % 2 === 0
      ? pick(l.choices, "int8", "int8-dynamic")
      : pick(l.choices, "prune:0.5", "int4", "float");
    mixedB.layers[l.name] = i % 3 === 0
      ? pick(l.choices, "int8-dynamic")
      : i % 3 === 1
      ? pick(l.choices, "structured:0.5", "lowrank:0.9", "cluster:16")
      : heavy
      ? pick(l.choices, "int8")
      : pick(l.choices, "binary", "int8");
  });
  return { float: { layers: {} }, int8: uniform, mixedA, mixedB, lowbit };
}

const describe = (a: Assignment) => {
  const counts: Record<string, number> = {};
  for (const c of Object.values(a.layers)) counts[c] = (counts[c] ?? 0) + 1;
  return Object.entries(counts).map(([c, n]) => `${c}×${n}`).join(" ") || "float";
};

/** Predicted vs measured latency for one model; returns its rows. */
export async function benchOne(
  m: BenchInput,
  opts: CostModelBenchOptions = {},
): Promise<{ rows: CostModelRow[]; cost: DetailedCostModel }> {
  const log = opts.log ?? console.log;
  const space = buildSpace(m.bytes, { calibration: true });
  // Static int8 spaces do not offer int8-dynamic; the mixed assignments use it too.
  for (const l of space.layers) {
    if (!l.choices.includes("int8-dynamic")) l.choices.push("int8-dynamic");
  }
  const cost = await buildCostModel(m.bytes, space, {
    cacheDir: opts.cacheDir,
    runs: opts.quick ? 9 : 15,
  });
  log(
    `${m.name}: cost model built in ${(cost.calibrationMs / 1000).toFixed(1)} s ` +
      `(${cost.microBenchmarks} micro-benchmarks; float ${cost.floatMs.toFixed(3)} ms, ` +
      `non-layer ${cost.nonLayerMs.toFixed(3)} ms)`,
  );
  const assignments = benchAssignments(space, m.heavy);
  const sessions: { name: string; a: Assignment; s: Session; predicted: number }[] = [];
  for (const [name, a] of Object.entries(assignments)) {
    const bytes = name === "float"
      ? m.bytes
      : (await compress(m.bytes, toRecipe(a), { calibration: m.calibration })).model;
    sessions.push({ name, a, s: await Session.create(bytes), predicted: cost.predict(a) });
  }
  const timings = await measureInterleaved(
    sessions.map(({ s }) => async () => void (await s.run(m.feeds))),
    opts.quick
      ? { minRounds: 9, budgetMs: m.heavy ? 6000 : 1500, warmupMs: 200 }
      : { minRounds: 15, budgetMs: m.heavy ? 15000 : 4000, warmupMs: 400 },
  );
  const rows = sessions.map(({ name, a, predicted }, i) => ({
    model: m.name,
    assignment: `${name} (${describe(a)})`,
    predicted_ms: predicted,
    measured_ms: timings[i].median_ms,
    error: predicted / timings[i].median_ms - 1,
  }));
  for (const { s } of sessions) await s.release();
  return { rows, cost };
}

export async function benchCostModel(opts: CostModelBenchOptions = {}): Promise<CostModelRow[]> {
  const log = opts.log ?? console.log;
  const want = (n: string) => !opts.only || opts.only.includes(n);
  const inputs: (() => BenchInput)[] = ZOO_NAMES.filter((n) => !n.includes("qdq") && want(n)).map(
    (n) => () => zooInputOf(n),
  );
  if (opts.light !== false) {
    const dir = lightModelsDir();
    const light = LIGHT_MODELS.filter(want);
    if (!dir) {
      if (light.length) log("light models: ../shared/conformance/onnx-models not found; skipped");
    } else for (const n of light) inputs.push(() => lightInput(dir, n));
  }
  const rows: CostModelRow[] = [];
  for (const make of inputs) {
    const m = make();
    try {
      rows.push(...(await benchOne(m, opts)).rows);
    } catch (e) {
      log(`${m.name}: failed: ${(e as Error).stack ?? e}`);
    }
  }
  const f = (x: number) => (x >= 10 ? x.toFixed(2) : x.toFixed(3));
  log(table(
    ["model", "assignment", "predicted ms", "measured ms", "error"],
    rows.map((r) => [
      r.model,
      r.assignment.length > 60 ? r.assignment.slice(0, 57) + "..." : r.assignment,
      f(r.predicted_ms),
      f(r.measured_ms),
      `${r.error >= 0 ? "+" : ""}${(r.error * 100).toFixed(1)}%`,
    ]),
  ));
  const abs = rows.map((r) => Math.abs(r.error)).sort((a, b) => a - b);
  if (abs.length) {
    log(
      `|error|: median ${(abs[abs.length >> 1] * 100).toFixed(1)}%, max ${
        (abs[abs.length - 1] * 100).toFixed(1)
      }%, within ±25%: ${abs.filter((x) => x <= 0.25).length}/${abs.length}`,
    );
  }
  return rows;
}

if (import.meta.main) {
  const only = Deno.args.find((a) => a.startsWith("--only="))?.slice(7).split(",");
  const rows = await benchCostModel({
    only,
    quick: Deno.args.includes("--quick"),
    light: !Deno.args.includes("--no-light"),
  });
  if (Deno.args.includes("--json")) { for (const r of rows) console.log(JSON.stringify(r)); }
}
