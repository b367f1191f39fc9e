import assert from "node:assert/strict";
import { type I8Output, PackedGemmI8 } from "../src/kernels/gemm_i8.ts";
import {
  refGemmI8,
  refMultiplyByQuantizedMultiplier,
  refRequantFp32,
} from "../src/kernels/reference.ts";
import { quantizeMultiplier } from "../src/kernels/quant_params.ts";
import { loadBuilds, randInt, rng, shapes } from "./util.ts";

const mods = await loadBuilds();

function randomCase(r: () => number, m: number, n: number, k: number, signed: boolean) {
  const a = signed
    ? Int8Array.from({ length: m * k }, () => randInt(r, -128, 127))
    : Uint8Array.from({ length: m * k }, () => randInt(r, 0, 255));
  // Extremes included on purpose: ±127 weights and 0/255 activations stress the relaxed
  // build's 7-bit split.
  const w = Int8Array.from(
    { length: k * n },
    () => r() < 0.1 ? (r() < 0.5 ? 127 : -127) : randInt(r, -127, 127),
  );
  const bias = Int32Array.from({ length: n }, () => randInt(r, -100000, 100000));
  const za = signed ? randInt(r, -128, 127) : randInt(r, 0, 255);
  return { a, w, bias, za };
}

for (const mod of mods) {
  Deno.test(`int8 gemm i32 accumulators equal the reference exactly (${mod.build})`, () => {
    const r = rng(2);
    for (const [i, [m, n, k]] of shapes(22).entries()) {
      const signed = i % 2 === 0;
      const { a, w, bias, za } = randomCase(r, m, n, k, signed);
      const g = PackedGemmI8.create(mod, { k, n, b: w, bias: i % 3 ? bias : undefined });
      const out = g.output({ kind: "i32" });
      const got = g.run(a, m, { signed, zeroPoint: za }, out);
      const want = refGemmI8(m, n, k, a, za, w, i % 3 ? bias : undefined);
      assert.deepEqual(got, want, `M=${m} N=${n} K=${k} signed=${signed}`);
      out.dispose();
      g.dispose();
    }
  });

  Deno.test(`int8 gemm requantization (gemmlowp, fp32) and dequantization match exactly (${mod.build})`, () => {
    const r = rng(5);
    for (const [i, [m, n, k]] of shapes(33, 300_000).entries()) {
      const signed = i % 2 === 1;
      const { a, w, bias, za } = randomCase(r, m, n, k, signed);
      const g = PackedGemmI8.create(mod, { k, n, b: w, bias });
      const acc = refGemmI8(m, n, k, a, za, w, bias);
      // Scales spanning right shifts 5..25, and one > 1 (a left shift) now and then.
      const scale = Float32Array.from(
        { length: n },
        () => i % 7 === 0 ? 1 + r() : 2 ** -(5 + 20 * r()),
      );
      for (const method of ["gemmlowp", "fp32"] as const) {
        for (const dtype of ["uint8", "int8"] as const) {
          const zp = dtype === "uint8" ? randInt(r, 0, 255) : randInt(r, -128, 127);
          const [tmin, tmax] = dtype === "uint8" ? [0, 255] : [-128, 127];
          // A fused ReLU half the time: the clamp starts at the zero point.
          const [qmin, qmax] = i % 2 ? [zp, tmax] : [tmin, tmax];
          const spec: I8Output = {
            kind: "requant",
            method,
            dtype,
            scale,
            zeroPoint: zp,
            clamp: [qmin, qmax],
          };
          const out = g.output(spec);
          const got = g.run(a, m, { signed, zeroPoint: za }, out);
          assert.ok(dtype === "uint8" ? got instanceof Uint8Array : got instanceof Int8Array);
          for (let j = 0; j < acc.length; j++) {
            const s = scale[j % n];
            let want: number;
            if (method === "gemmlowp") {
              const { multiplier, shift } = quantizeMultiplier(s);
              const q = refMultiplyByQuantizedMultiplier(acc[j], multiplier, shift) + zp;
              want = Math.min(Math.max(q, qmin), qmax);
            } else want = refRequantFp32(acc[j], s, zp, qmin, qmax);
            if (got[j] !== want) {
              assert.fail(
                `${method} ${dtype} M=${m} N=${n} K=${k} [${j}] acc=${acc[j]}: ${
                  got[j]
                } vs ${want}`,
              );
            }
          }
          out.dispose();
        }
      }
      const out = g.output({ kind: "f32", scale, clamp: [-1000, 1000] });
      const got = g.run(a, m, { signed, zeroPoint: za }, out);
      for (let j = 0; j < acc.length; j++) {
        const want = Math.min(
          Math.max(Math.fround(Math.fround(acc[j]) * scale[j % n]), -1000),
          1000,
        );
        assert.equal(got[j], want, `dequant [${j}]`);
      }
      out.dispose();
      g.dispose();
    }
  });
}

for (const mod of mods) {
  Deno.test(`int8 gemm on 7-bit weights ([-64, 63], the i7 layout) is exact (${mod.build})`, () => {
    const r = rng(12);
    for (const [i, [m, n, k]] of shapes(41).entries()) {
      const signed = i % 2 === 0;
      const { a, bias, za } = randomCase(r, m, n, k, signed);
      // The range's ends on purpose: -64 and 63 are where u = w + 64 reaches 0 and 127.
      const w = Int8Array.from(
        { length: k * n },
        () => r() < 0.1 ? (r() < 0.5 ? 63 : -64) : randInt(r, -64, 63),
      );
      const g = PackedGemmI8.create(mod, { k, n, b: w, bias: i % 3 ? bias : undefined });
      assert.ok(g.w7, "a [-64, 63] weight matrix takes the 7-bit layout");
      const out = g.output({ kind: "i32" });
      const got = g.run(a, m, { signed, zeroPoint: za }, out);
      const want = refGemmI8(m, n, k, a, za, w, i % 3 ? bias : undefined);
      assert.deepEqual(got, want, `M=${m} N=${n} K=${k} signed=${signed}`);
      out.dispose();
      g.dispose();
    }
    // One weight out of range keeps the 8-bit layout.
    const g = PackedGemmI8.create(mod, { k: 2, n: 1, b: Int8Array.of(5, 64) });
    assert.equal(g.w7, false);
    g.dispose();
  });
}

Deno.test("int8 gemm: every build returns identical bytes on one problem", () => {
  const r = rng(9);
  const [m, n, k] = [37, 45, 301];
  const { a, w, bias, za } = randomCase(r, m, n, k, false);
  const scale = Float32Array.from({ length: n }, () => 2 ** -(10 + 5 * r()));
  const results = mods.map((mod) => {
    const g = PackedGemmI8.create(mod, { k, n, b: w, bias });
    const out = g.output({
      kind: "requant",
      method: "gemmlowp",
      dtype: "uint8",
      scale,
      zeroPoint: 3,
    });
    return g.run(a, m, { signed: false, zeroPoint: za }, out);
  });
  for (const res of results.slice(1)) assert.deepEqual(res, results[0]);
});

Deno.test("quantizeMultiplier reproduces the real multiplier", () => {
  for (const real of [1e-6, 0.0123, 0.25, 0.5, 0.999999, 1, 1.5, 3.75]) {
    const { multiplier, shift } = quantizeMultiplier(real);
    assert.ok(multiplier >= 2 ** 30 && multiplier < 2 ** 31);
    assert.ok(Math.abs(multiplier * 2 ** (shift - 31) - real) / real < 1e-9);
  }
});
