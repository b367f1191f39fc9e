// `deno task bench models [--json] [--quick] [--only=a,b]`: whole-model latency, batch 1,
// single-threaded, sqz (best kernel build) against onnxruntime-web (wasm EP, 1 thread) on the
// same ONNX bytes. Models: the code-built zoo (bench/model_zoo.ts) and the ONNX project's light
// models from the shared conformance directory ($SQZ_CONFORMANCE_DIR, default
// ../shared/conformance; input arange(n)/n with unknown dims 1). Each time is session.run with
// the input copied in and the output copied out, for both engines; both sessions are warmed
// up, then timed in interleaved rounds (bench/timing.ts) and reported as medians.
import * as ort from "onnxruntime-web";
import { bestBuild, compress, Session, type Tensor } from "../src/mod.ts";
import { encoderFeeds, encoderModel } from "./transformer_zoo.ts";
import { decodeModel } from "../src/onnx/proto.ts";
import { ArgumentError } from "../src/errors.ts";
import { initOrt } from "./baselines/ort.ts";
import { ZOO_NAMES, zooInput, zooModel } from "./model_zoo.ts";
import { measureInterleaved, table } from "./timing.ts";
import { benchColdStart, type ColdStartResult } from "./cold_start.ts";

export const LIGHT_MODELS = [
  "light_resnet50",
  "light_squeezenet",
  "light_shufflenet",
  "light_inception_v1",
];

/** Float32 tensor as both engines take it. */
export interface Feed {
  type?: "float32";
  dims: number[];
  data: Float32Array;
}

/** An input: a float feed, or an int64 tensor (token ids, attention masks). */
export type InputFeed = Feed | { type: "int64"; dims: number[]; data: BigInt64Array };

export interface OrtRunner {
  run(feeds: Record<string, InputFeed>): Promise<Record<string, Feed>>;
  /** Runs and drops the outputs (for timing). */
  runDiscard(feeds: Record<string, InputFeed>): Promise<void>;
  release(): Promise<void>;
}

/**
 * An onnxruntime-web session on the wasm EP, full graph optimizations, on ORT's pool of
 * `threads` (one thread unless initOrt was given more).
 */
export async function ortRunner(bytes: Uint8Array, threads = 1): Promise<OrtRunner> {
  await initOrt(threads);
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
  });
  const toOrt = (feeds: Record<string, InputFeed>) =>
    Object.fromEntries(
      Object.entries(feeds).map((
        [k, f],
      ) => [k, new ort.Tensor(f.type ?? "float32", f.data as Float32Array, f.dims)]),
    );
  return {
    async run(feeds) {
      const out = await session.run(toOrt(feeds));
      const res: Record<string, Feed> = {};
      for (const [k, t] of Object.entries(out)) {
        res[k] = { dims: [...t.dims], data: Float32Array.from(t.data as Float32Array) };
        t.dispose();
      }
      return res;
    },
    async runDiscard(feeds) {
      const out = await session.run(toOrt(feeds));
      for (const t of Object.values(out)) t.dispose();
    },
    release: () => session.release(),
  };
}

/** The light models' directory, or undefined when it is not there. */
export function lightModelsDir(): string | undefined {
  const env = Deno.env.get("SQZ_CONFORMANCE_DIR");
  const dir = env ?? new URL("../../shared/conformance", import.meta.url).pathname;
  try {
    if (Deno.statSync(`${dir}/onnx-models`).isDirectory) return `${dir}/onnx-models`;
  } catch { /* missing */ }
  return undefined;
}

export interface BenchModel {
  name: string;
  bytes: Uint8Array;
  outputName: string;
  feeds: Record<string, InputFeed>;
}

/** The first graph input that is not an initializer, with unknown dims set to 1. */
function lightModel(dir: string, name: string): BenchModel {
  const bytes = Deno.readFileSync(`${dir}/${name}.onnx`);
  const g = decodeModel(bytes).graph;
  if (!g) throw new ArgumentError(`${name}: no graph`);
  const inits = new Set(g.initializer.map((t) => t.name));
  const input = g.input.find((v) => !inits.has(v.name ?? ""));
  const output = g.output[0];
  if (!input?.name || !output?.name) throw new ArgumentError(`${name}: no input or output`);
  const dims = (input.type?.tensorType?.shape?.dim ?? []).map((d) => {
    const v = Number(d.dimValue ?? 0);
    return v > 0 ? v : 1;
  });
  const n = dims.reduce((a, b) => a * b, 1);
  const data = Float32Array.from({ length: n }, (_, i) => i / n);
  return { name, bytes, outputName: output.name, feeds: { [input.name]: { dims, data } } };
}

function zooBenchModel(name: string): BenchModel {
  const m = zooModel(name);
  return {
    name,
    bytes: m.bytes,
    outputName: m.outputName,
    feeds: { [m.inputName]: { dims: [1, ...m.itemDims], data: zooInput(m, 1, 7) } },
  };
}

/**
 * The transformer rows: batch 1, sequence 128, d 256, 4 heads, 4 layers, FF 1024 (and one small
 * torch encoder: 2 layers, d 64, 28 tokens), as torch
 * (nn.TransformerEncoder) and HF BERT export them; each in float and as sqz's int8-dynamic
 * artifact (MatMulInteger, what ORT's quantize_dynamic writes), which both engines run.
 */
export const TRANSFORMER_MODELS = [
  "torch_encoder_small",
  "torch_encoder",
  "bert_encoder",
  "torch_encoder_int8dyn",
  "bert_encoder_int8dyn",
];

async function transformerBenchModel(name: string): Promise<BenchModel> {
  const style = name.startsWith("torch") ? "torch" : "bert";
  // torch_encoder_small: the 2-layer, d 64, 28-token encoder an earlier profile was taken on.
  const small = name === "torch_encoder_small";
  const m = encoderModel(
    small
      ? { style, layers: 2, d: 64, heads: 4, ff: 256, seq: 28 }
      : { style, layers: 4, d: 256, heads: 4, ff: 1024, seq: 128 },
  );
  let bytes = m.bytes;
  if (name.endsWith("_int8dyn")) bytes = (await compress(m.bytes, "int8")).model;
  const feeds = encoderFeeds(m, 1, 7) as Record<string, InputFeed>;
  const label = small ? "torch_encoder_l2_d64_s28" : `${name}_l4_d256_s128`;
  return { name: label, bytes, outputName: m.outputName, feeds };
}

interface Result {
  suite: "models";
  model: string;
  impl: string;
  threads: number;
  median_ms: number;
  runs: number;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return a.length === b.length ? m : Infinity;
}

export async function benchModels(
  { json = false, quick = false, only = undefined as string[] | undefined, threads = 1 } = {},
): Promise<(Result | ColdStartResult)[]> {
  await initOrt(threads);
  const build = bestBuild();
  const models: (() => BenchModel | Promise<BenchModel>)[] = ZOO_NAMES.map((n) => () =>
    zooBenchModel(n)
  );
  models.push(...TRANSFORMER_MODELS.map((n) => () => transformerBenchModel(n)));
  const dir = lightModelsDir();
  if (dir) models.push(...LIGHT_MODELS.map((n) => () => lightModel(dir, n)));
  else {
    console.error(
      "models: light models skipped, ../shared/conformance/onnx-models not found (set SQZ_CONFORMANCE_DIR)",
    );
  }
  const names = [...ZOO_NAMES, ...TRANSFORMER_MODELS, ...(dir ? LIGHT_MODELS : [])];
  const results: Result[] = [];
  const summary: (string | number)[][] = [];
  for (let i = 0; i < models.length; i++) {
    if (only && !only.some((p) => names[i].startsWith(p))) continue;
    let m: BenchModel;
    try {
      m = await models[i]();
    } catch (e) {
      console.error(`models: ${names[i]} skipped, it could not be built: ${(e as Error).message}`);
      continue;
    }
    let sqz: Session, sqzN: Session | undefined;
    try {
      sqz = await Session.create(m.bytes, { build, threads: 1 });
      if (threads > 1) {
        sqzN = await Session.create(m.bytes, { build, threads });
        await sqzN.kernels.threadsReady();
        if (sqzN.info.threads !== threads) throw new Error(sqzN.info.threadNote);
      }
    } catch (e) {
      console.error(`models: ${m.name} skipped, sqz cannot load it: ${(e as Error).message}`);
      continue;
    }
    const ortr = await ortRunner(m.bytes, threads);
    try {
      const feeds = m.feeds;
      const sqzFeeds = Object.fromEntries(
        Object.entries(feeds).map(([k, f]) => [k, { type: f.type ?? "float32", ...f } as Tensor]),
      );
      // One checked run first, so a wrong result is not benchmarked silently.
      let diff: number;
      try {
        const ours = (await sqz.run(sqzFeeds))[m.outputName];
        const ref = (await ortr.run(feeds))[m.outputName];
        diff = maxAbsDiff(ours.data as Float32Array, ref.data);
      } catch (e) {
        console.error(`models: ${m.name} skipped, sqz failed to run it: ${(e as Error).message}`);
        continue;
      }
      const budget = quick
        ? { minRounds: 5, budgetMs: 1000, warmupMs: 200 }
        : { minRounds: 9, budgetMs: 4000 };
      const sqzRuns = [async () => void await sqz.run(sqzFeeds)];
      if (sqzN) sqzRuns.push(async () => void await sqzN.run(sqzFeeds));
      // With a pool, ORT's threads spin after each run (bench/gemm.ts timeRunners): its rounds
      // come right after sqz's instead of between them.
      const ortRun = () => ortr.runDiscard(feeds);
      let ts, tsN, to;
      if (threads > 1) {
        [ts, tsN] = await measureInterleaved(sqzRuns, budget);
        [to] = await measureInterleaved([ortRun], budget);
      } else [ts, to] = await measureInterleaved([sqzRuns[0], ortRun], budget);
      const rows: Result[] = [
        { suite: "models", model: m.name, impl: `sqz-${build}`, threads: 1, ...round(ts) },
        { suite: "models", model: m.name, impl: "ort", threads, ...round(to) },
      ];
      if (tsN) {
        rows.splice(1, 0, {
          suite: "models",
          model: m.name,
          impl: `sqz-${build}`,
          threads,
          ...round(tsN),
        });
      }
      results.push(...rows);
      if (json) rows.forEach((r) => console.log(JSON.stringify(r)));
      summary.push([
        m.name,
        ts.median_ms.toFixed(3),
        ...(tsN
          ? [
            tsN.median_ms.toFixed(3),
            `${(ts.median_ms / tsN.median_ms).toFixed(2)}x`,
          ]
          : []),
        to.median_ms.toFixed(3),
        `${(to.median_ms / (tsN ?? ts).median_ms).toFixed(2)}x`,
        diff.toExponential(1),
        ts.runs,
      ]);
    } finally {
      await sqzN?.release();
      await sqz.release();
      await ortr.release();
    }
  }
  if (!json) {
    console.log(
      `sqz build ${build}, onnxruntime-web ${ort.env.versions.web} wasm EP, ${threads} thread(s)`,
    );
    const cols = threads > 1
      ? ["model", "sqz ms @1", `sqz ms @${threads}`, "speed-up", `ort ms @${threads}`]
      : ["model", "sqz ms", "ort ms"];
    console.log(table([...cols, "ORT/sqz", "max|diff|", "runs"], summary));
  }
  if (!only || only.some((p) => "cold_start".startsWith(p))) {
    return [...results, ...await benchColdStart({ json, runs: quick ? 3 : 7 })];
  }
  return results;
}

function round(t: { median_ms: number; runs: number }) {
  return { median_ms: +t.median_ms.toFixed(4), runs: t.runs };
}
