// `deno task bench compression [--json] [--quick]`: what each recipe keeps and saves on the
// MNIST reference models (models/), measured on the 2,000 held-out real digits: accuracy,
// top-1 agreement and KL against the float model, file and gzip size, single-digit latency in
// sqz, and — for artifacts in standard ONNX ops — the accuracy onnxruntime-web gets running the
// same file unchanged. Calibration: 256 training digits. Rows marked "+ ft" fine-tune inside
// compress() on the 8,000 training digits (labels, unless the row says unlabelled) before the
// artifact is written; "weights ×" is the weight storage ratio from the compress report, and
// "resident" the weight bytes a sqz session holds at run time (session.memory.weights: packed
// in Wasm memory plus constants kept in JavaScript) as a share of the float model's.
import { compress, evaluate, Session, type Tensor } from "../src/mod.ts";
import { mnistSplit } from "../src/eval/mnist.ts";
import { ortRunner } from "./models.ts";
import { FOREIGN_MODELS, foreignInput, type ForeignModel, foreignModel } from "./foreign_models.ts";

type RecipeSpec = string | Record<string, unknown>;

/** Recipes by label; a function gives each model its own (per-layer names differ). */
export const RECIPES: [string, RecipeSpec | ((model: string) => RecipeSpec)][] = [
  ["float", "none"],
  ["int8", "int8"],
  ["int8 dynamic", "int8-dynamic"],
  ["int8, 7-bit weights (reduce_range)", "int8:w7"],
  ["int8, 4-bit weights (W4A8)", "int8:w4"],
  ["int4 (block 32)", "int4"],
  ["ternary", "ternary"],
  ["binary", "binary"],
  ["prune 50%", "prune:0.5"],
  ["prune 90%", "prune:0.9"],
  ["2:4 sparse", { prune: { pattern: "2:4" } }],
  ["svd 90% energy", "svd:0.9"],
  ["structured 25%", { structured: { ratio: 0.25 } }],
  ["cluster 16", "cluster:16"],
  ["prune 90% + int8", { method: "int8", prune: { sparsity: 0.9 } }],
  [
    "prune 91.5% per layer + int8",
    (model) => ({
      method: "int8",
      layers: model === "mnist_cnn"
        ? { fc1: { sparsity: 0.95 }, conv2: { sparsity: 0.3 } }
        : { fc1: { sparsity: 0.95 }, fc2: { sparsity: 0.7 } },
    }),
  ],
  ["prune 50% + cluster 16 + int8", {
    method: "int8",
    prune: { sparsity: 0.5 },
    cluster: { clusters: 16 },
  }],
  // Fine-tuned: the presets' defaults, then recipes that add options.
  ["int8 QAT (int8+ft)", "int8+ft"],
  ["int4+ft", "int4+ft"],
  ["ternary+ft", "ternary+ft"],
  ["binary+ft", "binary+ft"],
  ["binary+ft, shift augmentation", (model) => ({
    method: "binary",
    finetune: { augment: { shift: 2, layout: model === "keras_nhwc_cnn" ? "nhwc" : "nchw" } },
  })],
  ["prune 90% + int8 + ft", { method: "int8", prune: { sparsity: 0.9 }, finetune: {} }],
  ["prune 95% + int8 + ft", { method: "int8", prune: { sparsity: 0.95 }, finetune: {} }],
  ["2:4 sparse + ft", { prune: { pattern: "2:4" }, finetune: {} }],
  ["structured 50% + ft, labels only (no distillation)", {
    structured: { ratio: 0.5 },
    finetune: { distill: false },
  }],
  ["structured 50% + ft", { structured: { ratio: 0.5 }, finetune: {} }],
  ["structured 50% + ft, unlabelled (distillation)", { structured: { ratio: 0.5 }, finetune: {} }],
];

/** Rows trained without labels: the float model's soft targets only. */
const UNLABELLED = new Set(["structured 50% + ft, unlabelled (distillation)"]);

const MODELS = ["mnist_cnn", "mnist_mlp", ...FOREIGN_MODELS];

/** The rows run on the models of other exporters (bench/foreign_models.ts). */
const FOREIGN_ROWS = new Set([
  "float",
  "int8",
  "int8, 4-bit weights (W4A8)",
  "int8 QAT (int8+ft)",
  "int4+ft",
  "ternary",
  "ternary+ft",
  "binary",
  "binary+ft",
  "binary+ft, shift augmentation",
  "prune 90% + int8",
  "prune 90% + int8 + ft",
  "prune 95% + int8 + ft",
  "2:4 sparse + ft",
]);

function slice(x: Tensor, from: number, to: number): Tensor {
  const per = x.data.length / x.dims[0];
  return {
    type: x.type,
    dims: [to - from, ...x.dims.slice(1)],
    data: x.data.slice(from * per, to * per),
  } as Tensor;
}

/** Accuracy of onnxruntime-web on the artifact, or undefined when it uses sqz's own ops. */
async function ortAccuracy(
  model: Uint8Array,
  x: Tensor,
  y: Uint8Array,
): Promise<number | undefined> {
  let ort;
  try {
    ort = await ortRunner(model);
  } catch {
    return undefined; // ai.sqz custom ops: onnxruntime cannot load them
  }
  try {
    let right = 0;
    const n = x.dims[0];
    for (let i = 0; i < n; i += 100) {
      const b = slice(x, i, Math.min(n, i + 100));
      const out = await ort.run({ input: { dims: b.dims, data: b.data as Float32Array } });
      const logits = Object.values(out)[0].data as Float32Array;
      for (let r = 0; r < b.dims[0]; r++) {
        let best = 0;
        for (let c = 1; c < 10; c++) if (logits[r * 10 + c] > logits[r * 10 + best]) best = c;
        if (best === y[i + r]) right++;
      }
    }
    return right / n;
  } finally {
    await ort.release();
  }
}

export async function benchCompression(
  opts: { json: boolean; quick: boolean; only?: string[] },
): Promise<void> {
  const { train, test } = await mnistSplit(0);
  const calib = Array.from(
    { length: 8 },
    (_, i) => ({ input: slice(train.x, i * 32, i * 32 + 32) }),
  );
  const recipes = opts.quick
    ? RECIPES.filter(([n]) => ["float", "int8", "int4 (block 32)"].includes(n))
    : opts.only
    ? RECIPES.filter(([n]) => n === "float" || opts.only!.some((o) => n.includes(o)))
    : RECIPES;
  const labels = Int32Array.from(train.y);
  const rows: Record<string, unknown>[] = [];
  // SQZ_BENCH_MODELS=mnist_cnn,keras_nhwc_cnn runs only those models.
  const only = Deno.env.get("SQZ_BENCH_MODELS")?.split(",");
  for (const name of MODELS.filter((m) => !only || only.includes(m))) {
    const foreign = (FOREIGN_MODELS as readonly string[]).includes(name);
    const float = foreign
      ? await foreignModel(name as ForeignModel, train)
      : await Deno.readFile(new URL(`../models/${name}.onnx`, import.meta.url));
    // The Keras model takes NHWC: with one channel, the same floats.
    const x = (
      t: Tensor,
    ) => (foreign ? foreignInput(name as ForeignModel, t as typeof train.x) : t);
    const calibration = calib.map((c) => ({ input: x(c.input) }));
    let floatResident = 0;
    for (const [label, spec] of recipes) {
      if (foreign && !FOREIGN_ROWS.has(label)) continue;
      const recipe: RecipeSpec = typeof spec === "function" ? spec(name) : spec;
      const t0 = performance.now();
      const result = label === "float" ? undefined : await compress(float, recipe, {
        calibration,
        train: JSON.stringify(recipe).includes("finetune") || String(recipe).endsWith("+ft")
          ? { inputs: x(train.x), labels: UNLABELLED.has(label) ? undefined : labels }
          : undefined,
      });
      const compressMs = performance.now() - t0;
      const model = result?.model ?? float;
      const ls = result?.report.layers ?? [];
      const before = ls.reduce((a, l) => a + l.bytesBefore, 0);
      const after = ls.reduce((a, l) => a + l.bytesAfter, 0);
      // Which layers ran on the binary kernels (the profile's answer to "is it any faster").
      const profiled = await Session.create(model, { profile: true });
      await profiled.run({ input: x(slice(test.x, 0, 1)) });
      const binaryKernels = profiled.profile.filter((p) =>
        /Binary(Conv|Gemm)/.test(p.op) && p.impl === "wasm"
      ).length;
      const resident = profiled.memory.weights;
      if (label === "float") floatResident = resident;
      profiled.release();
      const r = await evaluate(
        model,
        { inputs: { input: x(test.x) }, labels: test.y },
        { reference: label === "float" ? undefined : float, latencyRuns: 50, layers: false },
      );
      const row = {
        suite: "compression",
        model: name,
        recipe: label,
        accuracy: r.accuracy,
        agreement: r.agreement ?? 1,
        kl: typeof r.klMean === "number" ? r.klMean : 0,
        bytes: r.model.bytes,
        gzipBytes: r.model.gzipBytes,
        ratio: float.length / r.model.bytes,
        p50Ms: r.latency.p50Ms,
        weightRatio: after > 0 ? before / after : undefined,
        residentWeightBytes: resident,
        residentShare: floatResident ? resident / floatResident : undefined,
        binaryKernels,
        epochs: result?.report.training?.epochs.length,
        trainMs: result?.report.training?.ms,
        compressMs,
        ortAccuracy: await ortAccuracy(model, x(test.x), test.y),
      };
      rows.push(row);
      if (opts.json) console.log(JSON.stringify(row));
      else {
        console.log(
          `${name.padEnd(10)} ${label.padEnd(32)} acc ${(row.accuracy! * 100).toFixed(2)}%  ` +
            `agree ${(row.agreement * 100).toFixed(2)}%  ${(row.bytes / 1024).toFixed(1)} KiB ` +
            `(${row.ratio.toFixed(2)}×, gzip ${(row.gzipBytes / 1024).toFixed(1)} KiB)  ` +
            `p50 ${row.p50Ms?.toFixed(3)} ms` +
            (row.weightRatio ? `  weights ${row.weightRatio.toFixed(1)}×` : "") +
            `  resident ${(resident / 1024).toFixed(0)} KiB` +
            (row.residentShare ? ` (${(row.residentShare * 100).toFixed(1)}% of f32)` : "") +
            (row.binaryKernels ? `  ${row.binaryKernels} XNOR kernel ops` : "") +
            (row.epochs ? `  ${row.epochs} epochs in ${(row.trainMs! / 1000).toFixed(0)} s` : "") +
            `  ORT acc ${
              row.ortAccuracy === undefined ? "–" : (row.ortAccuracy * 100).toFixed(2) + "%"
            }`,
        );
      }
    }
  }
}
