// Benchmark entry: `deno task bench <suite> [--json] [--quick] [--scalar] [--threads N]
// [--only impl,…] [--shape MxNxK,…]` (--shape: gemm and sparse).
import { parseArgs } from "node:util";
import { benchGemm, GEMM_SHAPES } from "./gemm.ts";
import { benchConv, CONV_LAYERS } from "./conv.ts";
import { benchModels } from "./models.ts";
import { benchCompression } from "./compression.ts";
import { benchServe } from "./serve.ts";
import { benchTrain } from "./train.ts";
import { benchSearch } from "./search.ts";
import { benchWebgpu } from "./webgpu.ts";
import { benchSparse } from "./sparse.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    json: { type: "boolean", default: false },
    quick: { type: "boolean", default: false },
    scalar: { type: "boolean", default: false },
    only: { type: "string" },
    threads: { type: "string", default: "1" },
    shape: { type: "string" },
  },
});

const threads = Number(values.threads);
if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
  console.error(`--threads must be an integer in [1, 64], got ${values.threads}`);
  Deno.exit(2);
}

// --shape 1x4096x4096,512x512x512: the gemm shapes to run instead of the default list.
const shapes = values.shape?.split(",").map((s) => {
  const dims = s.split("x").map(Number);
  if (dims.length !== 3 || dims.some((d) => !Number.isInteger(d) || d < 1 || d > 65536)) {
    console.error(`--shape takes MxNxK with each in [1, 65536], got ${s}`);
    Deno.exit(2);
  }
  return dims as [number, number, number];
});

const suites: Record<string, () => Promise<unknown>> = {
  gemm: () =>
    benchGemm({
      json: values.json,
      scalar: values.scalar,
      only: values.only?.split(","),
      threads,
      shapes: shapes ??
        (values.quick ? GEMM_SHAPES.filter(([m, n, k]) => m * n * k <= 2 ** 27) : GEMM_SHAPES),
    }),
  conv: () =>
    benchConv({
      json: values.json,
      only: values.only?.split(","),
      layers: values.quick ? CONV_LAYERS.filter((l) => l.h * l.w * l.cin <= 200_000) : CONV_LAYERS,
    }),
  models: () =>
    benchModels({
      json: values.json,
      quick: values.quick,
      only: values.only?.split(","),
      threads,
    }),
  compression: () =>
    benchCompression({ json: values.json, quick: values.quick, only: values.only?.split(",") }),
  serve: () => benchServe({ json: values.json, quick: values.quick }),
  train: () => benchTrain({ json: values.json, quick: values.quick }),
  search: () =>
    benchSearch({ json: values.json, quick: values.quick, only: values.only?.split(",") }),
  webgpu: () => benchWebgpu({ json: values.json, quick: values.quick }),
  sparse: () =>
    benchSparse({
      json: values.json,
      quick: values.quick,
      scalar: values.scalar,
      threads,
      shapes,
    }),
};

const names = positionals.length ? positionals : Object.keys(suites);
for (const name of names) {
  const suite = suites[name];
  if (!suite) {
    console.error(`unknown suite '${name}'; suites: ${Object.keys(suites).join(", ")}`);
    Deno.exit(2);
  }
  await suite();
}
