// Sparse f32 GEMM: every build against the scalar reference over awkward shapes and densities
// (no nonzero, one, 5%, 30%, all), with bias, activation, transposed B and 1 or 2 threads; the
// scalar build equals the reference bit for bit, the others stay within f32 rounding of it and
// of the dense GEMM; the packed bytes follow the format; bad input is a typed error.
import assert from "node:assert/strict";
import { KernelModule } from "../src/kernels/module.ts";
import { availableBuilds } from "../src/kernels/features.ts";
import { PackedGemmF32 } from "../src/kernels/gemm_f32.ts";
import {
  countNonzeros,
  PackedGemmSparseF32,
  sparsePackedBytes,
  spmmReference,
} from "../src/kernels/gemm_sparse.ts";
import type { GemmF32Weights } from "../src/kernels/gemm_f32.ts";
import { ShapeError } from "../src/errors.ts";
import { rng } from "./util.ts";

function sparseWeights(
  r: () => number,
  k: number,
  n: number,
  density: number | "one",
  transposed: boolean,
): GemmF32Weights {
  const b = new Float32Array(k * n);
  if (density === "one") b[Math.floor(r() * b.length)] = r() - 0.5;
  else for (let i = 0; i < b.length; i++) if (r() < density) b[i] = r() * 2 - 1;
  const bias = r() < 0.5 ? Float32Array.from({ length: n }, () => r() - 0.5) : undefined;
  return { k, n, b, transposed, bias };
}

// M covers the gather row (1), the 4-row tiles (2..8), the padded 16-row tile (9..15) and
// 16 ± 1; N and K include 1, odd sizes and tile ± 1.
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 7, 3],
  [2, 5, 17],
  [3, 9, 33],
  [4, 16, 8],
  [5, 3, 100],
  [8, 17, 31],
  [9, 1, 64],
  [15, 33, 65],
  [16, 8, 129],
  [17, 31, 7],
  [33, 12, 257],
  [1, 200, 1000],
  [40, 65, 300],
];
const DENSITIES: (number | "one")[] = [0, "one", 0.05, 0.3, 1];

for (const build of availableBuilds()) {
  Deno.test(`sparse f32 GEMM matches its reference and the dense GEMM (${build})`, async () => {
    const mod = await KernelModule.load(build);
    const two = await KernelModule.load(build, { threads: 2, parallelMinMacs: 0 });
    await two.threadsReady();
    const r = rng(97);
    for (const [m, n, k] of SHAPES) {
      for (const density of DENSITIES) {
        const w = sparseWeights(r, k, n, density, r() < 0.5);
        const a = Float32Array.from({ length: m * k }, () => r() * 4 - 2);
        const act = r() < 0.3 ? { kind: "relu" as const } : undefined;
        const ref = spmmReference(w, a, m, act);
        const dense = PackedGemmF32.create(mod, w);
        const want = dense.run(a, m, act);
        dense.dispose();
        let one: Float32Array | undefined;
        for (const module of [mod, two]) {
          const g = PackedGemmSparseF32.create(module, w);
          assert.equal(g.nnz, countNonzeros(w.b));
          assert.equal(g.bytes, sparsePackedBytes(n, k, g.nnz));
          const got = g.run(a, m, act);
          g.dispose();
          const what = `${build} ${m}x${n}x${k} density ${density}`;
          // Threads split rows at tile multiples or columns: the same bits as one thread.
          if (one) assert.deepEqual(got, one, `${what}: 2 threads differ from 1`);
          one = got;
          for (let i = 0; i < ref.length; i++) {
            if (build === "scalar") {
              if (!Object.is(got[i], ref[i]) && !(got[i] === 0 && ref[i] === 0)) {
                assert.fail(`${what} [${i}]: ${got[i]} vs reference ${ref[i]}`);
              }
              continue;
            }
            // f32 sums of ≤ K products of |a| ≤ 2, |w| ≤ 1: a few ulps of K·2 at worst.
            const tol = 1e-6 * k * 2 + 1e-6;
            assert.ok(Math.abs(got[i] - ref[i]) <= tol, `${what} [${i}]: ${got[i]} vs ${ref[i]}`);
            assert.ok(Math.abs(got[i] - want[i]) <= tol, `${what} [${i}]: ${got[i]} vs ${want[i]}`);
          }
        }
      }
    }
    two.dispose();
  });
}

Deno.test("sparse GEMM: K past 65536 takes u32 indices", async () => {
  const mod = await KernelModule.load("auto");
  const r = rng(3);
  const k = 70_001, n = 3, m = 2;
  const w = sparseWeights(r, k, n, 0.01, false);
  w.b[(k - 1) * n + 2] = 0.75; // the last k of the last column
  const a = Float32Array.from({ length: m * k }, () => r() - 0.5);
  const g = PackedGemmSparseF32.create(mod, w);
  assert.equal(g.bytes, 16 + 8 * n + 4 + g.nnz * 8);
  const got = g.run(a, m);
  g.dispose();
  const ref = spmmReference(w, a, m);
  for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(got[i] - ref[i]) < 1e-3);
});

Deno.test("sparse GEMM: 90% sparse weights take 15% of f32; bad shapes are typed errors", async () => {
  const mod = await KernelModule.load("auto");
  const r = rng(11);
  const w = sparseWeights(r, 512, 256, 0.1, false);
  const g = PackedGemmSparseF32.create(mod, w);
  const share = g.bytes / (512 * 256 * 4);
  assert.ok(share > 0.14 && share < 0.16, `${share}`);
  assert.throws(() => g.run(new Float32Array(10), 1), ShapeError);
  assert.throws(() => g.run(new Float32Array(512), 0), ShapeError);
  g.dispose();
  assert.throws(() => PackedGemmSparseF32.create(mod, { k: 0, n: 2, b: new Float32Array(0) }));
  assert.throws(
    () => PackedGemmSparseF32.create(mod, { k: 4, n: 2, b: new Float32Array(7) }),
    ShapeError,
  );
});
