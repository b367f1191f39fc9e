// int4-weight GEMM (Q4 × Q8): every build equals the TypeScript model of its arithmetic bit
// for bit (and so each other), over awkward shapes, symmetric and asymmetric codes, and stays
// within int8 activation rounding of the f32 product of the dequantized weights.
import assert from "node:assert/strict";
import { KernelModule } from "../src/kernels/module.ts";
import { availableBuilds } from "../src/kernels/features.ts";
import {
  f16Bits,
  f16Value,
  type GemmQ4Weights,
  PackedGemmQ4,
  q4Reference,
} from "../src/kernels/gemm_q4.ts";
import { ArgumentError } from "../src/errors.ts";
import { randInt, rng } from "./util.ts";

function weights(r: () => number, k: number, n: number, asym: boolean): GemmQ4Weights {
  const nb = Math.ceil(k / 32);
  return {
    k,
    n,
    codes: Uint8Array.from({ length: n * k }, () => randInt(r, 0, 15)),
    scales: Float32Array.from({ length: n * nb }, () => 0.001 + r() * 0.05),
    zeroPoints: asym ? Uint8Array.from({ length: n * nb }, () => randInt(r, 0, 15)) : undefined,
    bias: r() < 0.5 ? Float32Array.from({ length: n }, () => r() - 0.5) : undefined,
  };
}

Deno.test("f16Bits rounds to nearest even and f16Value decodes exactly", () => {
  for (const v of [0, 1, -2, 0.5, 65504, 6.103515625e-5, 5.960464477539063e-8, 1 / 3]) {
    const back = f16Value(f16Bits(v));
    assert.ok(Math.abs(back - v) <= Math.abs(v) * 2 ** -11 + 2 ** -25, `${v} → ${back}`);
  }
  assert.equal(f16Bits(1 + 2 ** -11), f16Bits(1)); // a tie rounds to even
  assert.equal(f16Value(f16Bits(1 + 3 * 2 ** -11)), 1 + 2 ** -9);
  assert.throws(() => f16Bits(Infinity), ArgumentError);
  assert.throws(() => f16Bits(1e6), ArgumentError);
});

for (const build of availableBuilds()) {
  Deno.test(`Q4 × Q8 GEMM equals its reference bit for bit (${build})`, async () => {
    const mod = await KernelModule.load(build);
    const two = await KernelModule.load(build, { threads: 2, parallelMinMacs: 0 });
    await two.threadsReady();
    const r = rng(41);
    const shapes: [number, number, number][] = [
      [1, 1, 1],
      [1, 4, 32],
      [1, 5, 31],
      [2, 7, 33],
      [5, 3, 64],
      [1, 33, 95],
      [3, 9, 129],
      [1, 64, 1000],
    ];
    for (const [m, n, k] of shapes) {
      for (const asym of [false, true]) {
        const w = weights(r, k, n, asym);
        const a = Float32Array.from({ length: m * k }, () => (r() * 2 - 1) * (r() < 0.1 ? 0 : 3));
        // An all-zero block and an exact tie between two int8 steps.
        if (k >= 32) a.fill(0, 0, 32);
        const act = r() < 0.5 ? { kind: "relu" as const } : undefined;
        const ref = q4Reference(w, a, m, act);
        for (const module of [mod, two]) {
          const g = PackedGemmQ4.create(module, w);
          const got = g.run(a, m, act);
          g.dispose();
          for (let i = 0; i < ref.length; i++) {
            if (!Object.is(got[i], ref[i])) {
              assert.fail(`${build} ${m}x${n}x${k} asym=${asym} [${i}]: ${got[i]} vs ${ref[i]}`);
            }
          }
        }
        // Within int8 activation rounding of the dequantized f32 product.
        const nb = Math.ceil(k / 32);
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let y = w.bias?.[j] ?? 0, bound = 0;
            for (let t = 0; t < k; t++) {
              const b = Math.floor(t / 32), zp = w.zeroPoints?.[j * nb + b] ?? 8;
              const wv = (w.codes[j * k + t] - zp) * f16Value(f16Bits(w.scales[j * nb + b]));
              y += a[i * k + t] * wv;
              bound += Math.abs(wv) * 3 / 127; // ≤ half a step of ≤ 3/127 · 2 per activation
            }
            if (act) y = Math.max(0, y);
            assert.ok(Math.abs(ref[i * n + j] - y) <= bound + 1e-5, `${ref[i * n + j]} vs ${y}`);
          }
        }
      }
    }
    two.dispose();
  });
}

Deno.test("Q4 weights take 14.8% of f32 memory; bad codes, scales and shapes are typed errors", async () => {
  const mod = await KernelModule.load("auto");
  const r = rng(5);
  const w = weights(r, 4096, 256, true);
  const g = PackedGemmQ4.create(mod, w);
  assert.ok(g.bytes / (4096 * 256 * 4) < 0.15, `${g.bytes}`);
  g.dispose();
  const bad = (over: Partial<GemmQ4Weights>) =>
    assert.throws(() => PackedGemmQ4.create(mod, { ...weights(r, 40, 3, false), ...over }));
  bad({ codes: new Uint8Array(120).fill(16) });
  bad({ scales: new Float32Array(6).fill(Infinity) });
  bad({ scales: new Float32Array(5) });
  bad({ zeroPoints: new Uint8Array(6).fill(20) });
  bad({ k: 0 });
});
