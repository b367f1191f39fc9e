import assert from "node:assert/strict";
import { PackedGemmBin } from "../src/kernels/gemm_bin.ts";
import { refGemmBin, refPackSignBits } from "../src/kernels/reference.ts";
import { loadBuilds, rng, shapes } from "./util.ts";

const mods = await loadBuilds();

for (const mod of mods) {
  Deno.test(`binary gemm equals the reference exactly: i32, f32 and packed sign bits (${mod.build})`, () => {
    const r = rng(4);
    // K up to 5000 crosses the 31-word block where byte counters are widened.
    const cases = [...shapes(44), [3, 5, 5000], [2, 9, 3968], [1, 4, 3969]] as [
      number,
      number,
      number,
    ][];
    for (const [i, [m, n, k]] of cases.entries()) {
      // Exact zeros (sign +1) and negative zeros in the mix.
      const val = () => (r() < 0.05 ? (r() < 0.5 ? 0 : -0) : r() * 2 - 1);
      const a = Float32Array.from({ length: m * k }, val);
      const b = Float32Array.from({ length: k * n }, val);
      const g = PackedGemmBin.create(mod, { k, n, b });
      const dot = refGemmBin(m, n, k, a, b);
      const out = g.output({ kind: "i32" });
      assert.deepEqual(g.run(a, m, out), dot, `i32 M=${m} N=${n} K=${k}`);
      out.dispose();

      const alpha = Float32Array.from({ length: n }, () => 0.05 + r());
      const bias = Float32Array.from({ length: n }, () => r() * 6 - 3);
      const y = Float32Array.from(
        dot,
        (d, j) => Math.fround(Math.fround(d * alpha[j % n]) + bias[j % n]),
      );
      const clamp: [number, number] = i % 2 ? [0, Infinity] : [-Infinity, Infinity];
      const fo = g.output({ kind: "f32", alpha, bias, clamp });
      const yc = y.map((v) => Math.min(Math.max(v, clamp[0]), clamp[1]));
      assert.deepEqual(g.run(a, m, fo), yc, `f32 M=${m} N=${n} K=${k}`);
      fo.dispose();

      const bo = g.output({ kind: "bits", alpha, bias });
      assert.deepEqual(g.run(a, m, bo), refPackSignBits(y, m, n), `bits M=${m} N=${n} K=${k}`);
      bo.dispose();
      g.dispose();
    }
  });
}

Deno.test("binary gemm chains: one layer's bit output is the next layer's input", () => {
  const mod = mods.at(-1)!;
  const r = rng(8);
  const [m, k, h, n] = [6, 200, 131, 10];
  const x = Float32Array.from({ length: m * k }, () => r() * 2 - 1);
  const w1 = Float32Array.from({ length: k * h }, () => r() * 2 - 1);
  const w2 = Float32Array.from({ length: h * n }, () => r() * 2 - 1);
  const l1 = PackedGemmBin.create(mod, { k, n: h, b: w1 });
  const l2 = PackedGemmBin.create(mod, { k: h, n, b: w2 });
  const bits = l1.output({ kind: "bits", alpha: 1 });
  const ints = l2.output({ kind: "i32" });
  const pa = l1.packRows(x, m);
  const mid = mod.heap.alloc(l1.outputBytes(m, bits));
  const pc = mod.heap.alloc(m * n * 4);
  l1.runResident(m, pa, mid, bits);
  l2.runResident(m, mid, pc, ints);
  const hidden = Float32Array.from(refGemmBin(m, h, k, x, w1));
  assert.deepEqual(mod.i32(pc, m * n).slice(), refGemmBin(m, n, h, hidden, w2));
});
