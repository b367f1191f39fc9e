// Mutation fuzzing of the model loader: corrupted and truncated real models must end in a
// typed SqzError (or load), never a TypeError/RangeError or a hang. Bounded and seeded.
import assert from "node:assert/strict";
import { importModel } from "../src/onnx/import.ts";
import { inferShapes } from "../src/graph/shape_inference.ts";
import { foldConstants } from "../src/graph/fold.ts";
import { simplify } from "../src/graph/passes.ts";
import { SqzError } from "../src/errors.ts";
import { conformanceDir, listCases } from "./conformance.ts";
import { rng } from "./util.ts";

Deno.test("corrupted models fail with typed errors only (600 seeded mutations)", () => {
  const dir = conformanceDir();
  if (!dir) {
    console.log("SKIPPED: ONNX conformance data not found");
    return;
  }
  const seeds = [
    Deno.readFileSync(`${dir}/onnx-models/light_squeezenet.onnx`),
    ...listCases((n) => /conv|pool|qlinear|matmul|gemm|batchnorm/.test(n)).slice(0, 40)
      .map((n) => Deno.readFileSync(`${dir}/onnx-node/${n}/model.onnx`)),
  ];
  const r = rng(2024);
  const untyped: string[] = [];
  let loaded = 0;
  for (let i = 0; i < 600; i++) {
    const src = seeds[Math.floor(r() * seeds.length)];
    const b = src.slice(0, r() < 0.2 ? Math.floor(r() * src.length) : src.length);
    for (let j = 0, n = 1 + Math.floor(r() * 8); j < n; j++) {
      b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
    }
    try {
      const g = importModel(b);
      inferShapes(g);
      foldConstants(g);
      simplify(g);
      inferShapes(g);
      loaded++;
    } catch (e) {
      if (!(e instanceof SqzError)) untyped.push(`${(e as Error).name}: ${(e as Error).message}`);
    }
  }
  assert.deepEqual(untyped, []);
  console.log(`600 mutations: ${loaded} still loaded, the rest were rejected with typed errors`);
});
