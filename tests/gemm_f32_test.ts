import assert from "node:assert/strict";
import { PackedGemmF32 } from "../src/kernels/gemm_f32.ts";
import { refGemmF32 } from "../src/kernels/reference.ts";
import type { Activation } from "../src/kernels/validate.ts";
import { loadBuilds, rng, shapes } from "./util.ts";

const mods = await loadBuilds();

for (const mod of mods) {
  Deno.test(`f32 gemm matches the reference over awkward shapes (${mod.build})`, () => {
    const r = rng(1);
    const acts: Activation[] = [
      { kind: "none" },
      { kind: "relu" },
      { kind: "relu6" },
      { kind: "clip", min: -0.5, max: 0.25 },
    ];
    for (const [i, [m, n, k]] of shapes(11).entries()) {
      const a = Float32Array.from({ length: m * k }, () => r() * 2 - 1);
      const b = Float32Array.from({ length: k * n }, () => r() * 2 - 1);
      const bias = i % 3 === 0 ? undefined : Float32Array.from({ length: n }, () => r() * 4 - 2);
      const act = acts[i % acts.length];
      const transposed = i % 2 === 1;
      // Feed the transposed (N×K) layout half the time: same maths, other packing path.
      const bt = transposed ? transpose(b, k, n) : b;
      const g = PackedGemmF32.create(mod, { k, n, b: bt, transposed, bias });
      const [lo, hi] = act.kind === "relu"
        ? [0, Infinity]
        : act.kind === "relu6"
        ? [0, 6]
        : act.kind === "clip"
        ? [act.min, act.max]
        : [-Infinity, Infinity];
      const got = g.run(a, m, act);
      const want = refGemmF32(m, n, k, a, b, bias, lo, hi);
      g.dispose();
      // f32 summation order differs from the f64 reference: allow K-proportional rounding.
      const tol = 1e-6 * k + 1e-5;
      for (let j = 0; j < want.length; j++) {
        if (Math.abs(got[j] - want[j]) > tol) {
          assert.fail(`M=${m} N=${n} K=${k} [${j}]: ${got[j]} vs ${want[j]}`);
        }
      }
    }
  });
}

Deno.test("f32 gemm works on resident buffers with leading dimensions", () => {
  const mod = mods.at(-1)!;
  const [m, n, k, lda, ldc] = [5, 9, 7, 11, 13];
  const r = rng(3);
  const a = Float32Array.from({ length: m * lda }, () => r());
  const b = Float32Array.from({ length: k * n }, () => r());
  const g = PackedGemmF32.create(mod, { k, n, b });
  const pa = mod.upload(a);
  const pc = mod.heap.alloc(m * ldc * 4);
  mod.f32(pc, m * ldc).fill(42);
  g.runResident(m, pa, pc, { kind: "none" }, lda, ldc);
  const c = mod.f32(pc, m * ldc);
  const dense = Float32Array.from({ length: m * k }, (_, i) => a[Math.floor(i / k) * lda + i % k]);
  const want = refGemmF32(m, n, k, dense, b, undefined);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < ldc; j++) {
      if (j < n) assert.ok(Math.abs(c[i * ldc + j] - want[i * n + j]) < 1e-5);
      else assert.equal(c[i * ldc + j], 42, "the kernel wrote past N");
    }
  }
  mod.heap.free(pa);
  mod.heap.free(pc);
  g.dispose();
});

function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(x.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j];
  return t;
}
