// The transformer row-wise kernels (LayerNorm, softmax with scale and mask, Gelu) in every
// build against their f64 references, over widths around the vector width (1, 3, 4, 5, 7, …)
// and row counts including 1; guard floats around every buffer must stay untouched.
// Tolerances: LayerNorm 2e-6 and softmax (2e-6 + n·1e-8) relative (f32 rounding of sums of
// up to 1000 terms); Gelu 3e-7·(1 + |x|) (erf polynomial 1.5e-7 absolute, times x/2, plus
// rounding).
import assert from "node:assert/strict";
import { geluElements, layerNormRows, softmaxRows } from "../src/kernels/rowwise.ts";
import { geluRef, layerNormRef, softmaxRef } from "../src/kernels/reference_nn.ts";
import type { KernelModule } from "../src/kernels/module.ts";
import { ArgumentError, ShapeError } from "../src/errors.ts";
import { loadBuilds, randInt, rng } from "./util.ts";
import { TS_OPS } from "../src/ops/registry.ts";
import { jsContext } from "../src/ops/types.ts";
import { Node } from "../src/graph/ir.ts";
import { dynamicQuantParams } from "../src/ops/quant.ts";

const mods = await loadBuilds();
const GUARD = 8;
const WIDTHS = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 63, 64, 65, 128, 257, 1000];

function normal(r: () => number, n: number, std = 1, mean = 0): Float32Array {
  return Float32Array.from(
    { length: n },
    () => mean + std * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r()),
  );
}

/** Uploads data between guard floats; returns the data pointer and a checker of the guards. */
function guarded(mod: KernelModule, data: Float32Array): { p: number; intact(): boolean } {
  const base = mod.heap.alloc((data.length + 2 * GUARD) * 4);
  const all = mod.f32(base, data.length + 2 * GUARD);
  all.fill(-7.25);
  all.set(data, GUARD);
  return {
    p: base + GUARD * 4,
    intact() {
      const v = mod.f32(base, data.length + 2 * GUARD);
      for (let i = 0; i < GUARD; i++) {
        if (v[i] !== -7.25 || v[GUARD + data.length + i] !== -7.25) return false;
      }
      return true;
    },
  };
}

function close(got: Float32Array, want: Float32Array, tol: (i: number) => number, what: string) {
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= tol(i))) assert.fail(`${what}: element ${i} is ${got[i]}, want ${want[i]}`);
  }
}

for (const mod of mods) {
  Deno.test(`layernorm matches the reference (${mod.build})`, () => {
    const r = rng(11);
    for (const n of WIDTHS) {
      const rows = randInt(r, 1, 5);
      const x = normal(r, rows * n, 3, 1.5);
      const gamma = normal(r, n, 0.3, 1), beta = normal(r, n, 0.2);
      for (const withBeta of [true, false]) {
        for (const inPlace of [false, true]) {
          const bx = guarded(mod, x), by = inPlace ? bx : guarded(mod, new Float32Array(x.length));
          const bg = guarded(mod, gamma), bb = guarded(mod, beta);
          layerNormRows(mod, rows, n, bx.p, bg.p, withBeta ? bb.p : 0, 1e-5, by.p);
          const want = layerNormRef(x, rows, n, gamma, withBeta ? beta : undefined, 1e-5);
          close(mod.f32(by.p, x.length), want, (i) => 2e-6 * (1 + Math.abs(want[i])), `n=${n}`);
          assert.ok(bx.intact() && by.intact(), `guards n=${n}`);
        }
      }
    }
  });

  Deno.test(`softmax with scale and mask matches the reference (${mod.build})`, () => {
    const r = rng(12);
    for (const n of WIDTHS) {
      const rows = randInt(r, 1, 6);
      const x = normal(r, rows * n, 4);
      for (const maskKind of ["none", "full", "shared"] as const) {
        const ld = maskKind === "full" ? n : 0;
        const m = maskKind === "none" ? undefined : Float32Array.from(
          { length: maskKind === "full" ? rows * n : n },
          // Padding positions get the most negative float, as HF masks do (not the first one:
          // a row needs an unmasked entry).
          (_, i) => (i % n !== 0 && r() < 0.3 ? -3.4028234663852886e38 : 0),
        );
        const scale = 0.125 + r();
        const bx = guarded(mod, x), by = guarded(mod, new Float32Array(x.length));
        const bm = m ? guarded(mod, m) : undefined;
        softmaxRows(mod, rows, n, bx.p, by.p, scale, bm?.p ?? 0, ld);
        const want = softmaxRef(x, rows, n, scale, m, ld);
        const got = mod.f32(by.p, x.length);
        close(
          got,
          want,
          (i) => (2e-6 + 1e-8 * n) * Math.max(want[i], 1e-3),
          `n=${n} mask=${maskKind}`,
        );
        for (let row = 0; row < rows; row++) {
          let s = 0;
          for (let i = 0; i < n; i++) s += got[row * n + i];
          assert.ok(Math.abs(s - 1) < 1e-5, `row sums to ${s}`);
        }
        assert.ok(bx.intact() && by.intact() && (!bm || bm.intact()), `guards n=${n}`);
      }
    }
  });

  Deno.test(`gelu matches the erf reference (${mod.build})`, () => {
    const r = rng(13);
    for (const n of [...WIDTHS, 4099]) {
      const x = normal(r, n, 3);
      // The extremes: large |x| (erf saturates, exp underflows) and exact zeros.
      if (n > 8) x.set([0, -0, 12, -12, 40, -40, 1e-8, -1e-8]);
      const bx = guarded(mod, x), by = guarded(mod, new Float32Array(n));
      geluElements(mod, n, bx.p, by.p);
      const want = geluRef(x);
      close(
        mod.f32(by.p, n),
        want,
        (i) => 3e-7 * (1 + Math.abs(x[i])) + 1e-7 * Math.abs(want[i]),
        `n=${n}`,
      );
      assert.ok(bx.intact() && by.intact(), `guards n=${n}`);
    }
  });

  Deno.test(`row-wise kernels refuse bad calls before running (${mod.build})`, () => {
    const p = mod.heap.alloc(64);
    assert.throws(() => layerNormRows(mod, 1, 0, p, p, 0, 1e-5, p), ShapeError);
    assert.throws(() => layerNormRows(mod, 1, 4, p, p, 0, -1, p), ArgumentError);
    assert.throws(() => layerNormRows(mod, 1, 4, 3, p, 0, 1e-5, p), ArgumentError);
    assert.throws(() => softmaxRows(mod, 1.5, 4, p, p), ShapeError);
    assert.throws(() => softmaxRows(mod, 1, 4, p, p, NaN), ArgumentError);
    assert.throws(() => geluElements(mod, -1, p, p), ShapeError);
    mod.heap.free(p);
  });
}

for (const mod of mods) {
  Deno.test(`binary add/sub/mul/div with a repeating operand is exact (${mod.build})`, () => {
    const r = rng(14);
    for (const bn of [1, 2, 3, 4, 5, 7, 8, 9, 64, 65]) {
      for (const blocks of [1, 2, 3, 5]) {
        const n = bn * blocks;
        const a = normal(r, n, 2), b = normal(r, bn, 2);
        for (let op = 0; op < 4; op++) {
          const ba = guarded(mod, a), bb = guarded(mod, b), by = guarded(mod, new Float32Array(n));
          mod.exports.sqz_f32_binary(op, n, ba.p, bb.p, bn, by.p);
          // One f32 operation per element: every build must give the correctly rounded result.
          const f = [(x: number, y: number) =>
            x + y, (x: number, y: number) =>
            x - y, (x: number, y: number) =>
            x * y, (x: number, y: number) =>
            x / y][op];
          const want = Float32Array.from(a, (x, i) =>
            f(x, b[i % bn]));
          assert.deepEqual(mod.f32(by.p, n), want, `op ${op} bn ${bn} n ${n}`);
          assert.ok(ba.intact() && bb.intact() && by.intact(), `guards op ${op} bn ${bn}`);
        }
      }
    }
  });
}

for (const mod of mods) {
  Deno.test(`DynamicQuantizeLinear kernels equal the TypeScript op exactly (${mod.build})`, () => {
    const r = rng(15);
    for (const n of [1, 3, 4, 15, 16, 17, 31, 33, 100, 1000]) {
      for (const kind of ["normal", "positive", "negative", "specials", "ties"]) {
        const x = kind === "ties"
          // Values that land exactly on .5 steps after the division: round half to even.
          ? Float32Array.from({ length: n }, (_, i) => (i % 7) - 3.5 + (i % 2) * 255)
          : normal(r, n, 3, kind === "positive" ? 5 : kind === "negative" ? -5 : 0);
        if (kind === "specials" && n > 4) x.set([NaN, Infinity, -Infinity, -0].slice(0, n - 1), 1);
        const want = TS_OPS.DynamicQuantizeLinear(
          [{ type: "float32", dims: [n], data: x }],
          jsContext(new Node("dql", "DynamicQuantizeLinear", "", [], []), 13),
        );
        const bx = guarded(mod, x), range = guarded(mod, new Float32Array(2));
        mod.exports.sqz_f32_range(n, bx.p, range.p);
        const [lo, hi] = mod.f32(range.p, 2);
        const { scale, zeroPoint } = dynamicQuantParams(lo, hi);
        assert.equal(scale, (want[1].data as Float32Array)[0], `scale n=${n} ${kind}`);
        assert.equal(zeroPoint, (want[2].data as Uint8Array)[0], `zero point n=${n} ${kind}`);
        const y = mod.heap.alloc(n + 32);
        mod.u8(y, n + 32).fill(0xa5);
        mod.exports.sqz_f32_quantize_u8(n, bx.p, scale, zeroPoint, y + 16);
        assert.deepEqual(mod.u8(y + 16, n), want[0].data, `y n=${n} ${kind}`);
        assert.ok(mod.u8(y, 16).every((b) => b === 0xa5), "guard before y");
        assert.ok(mod.u8(y + 16 + n, 16).every((b) => b === 0xa5), "guard after y");
        assert.ok(bx.intact() && range.intact(), `guards n=${n}`);
      }
    }
  });
}

for (const mod of mods) {
  Deno.test(`clamp (Relu, Clip) equals the scalar comparisons exactly (${mod.build})`, () => {
    const r = rng(16);
    for (const n of [1, 3, 4, 5, 17, 64, 257]) {
      const x = normal(r, n, 4);
      if (n > 4) x.set([NaN, -0, Infinity, -Infinity]);
      for (const [lo, hi] of [[0, Infinity], [-1, 1], [0, 6], [2, -2], [-Infinity, 0.5]]) {
        const bx = guarded(mod, x), by = guarded(mod, new Float32Array(n));
        mod.exports.sqz_f32_clamp(n, bx.p, lo, hi, by.p);
        const want = x.map((v) => {
          const a = v < lo ? lo : v;
          return a > hi ? hi : a;
        });
        const got = mod.f32(by.p, n);
        for (let i = 0; i < n; i++) {
          assert.ok(Object.is(got[i], want[i]), `[${lo}, ${hi}] x=${x[i]}: ${got[i]} ≠ ${want[i]}`);
        }
        assert.ok(bx.intact() && by.intact(), `guards n=${n}`);
      }
    }
  });
}

for (const mod of mods) {
  Deno.test(`uint8 dequantize equals f32(x − zp)·scale exactly (${mod.build})`, () => {
    const r = rng(17);
    for (const n of [1, 15, 16, 17, 33, 100]) {
      const x = Uint8Array.from({ length: n }, () => randInt(r, 0, 255));
      for (const [scale, zp] of [[0.0123, 128], [1.5, 0], [3e-5, 255]]) {
        const px = mod.heap.alloc(n + 16);
        mod.u8(px, n).set(x);
        const by = guarded(mod, new Float32Array(n));
        mod.exports.sqz_u8_dequantize(n, px, scale, zp, by.p);
        const want = Float32Array.from(x, (v) => Math.fround((v - zp) * Math.fround(scale)));
        assert.deepEqual(mod.f32(by.p, n), want, `n=${n} scale=${scale} zp=${zp}`);
        assert.ok(by.intact(), "guards");
        mod.heap.free(px);
      }
    }
  });
}
