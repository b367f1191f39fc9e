// Softmax family and normalizations (src/ops/normalization.ts) called directly with a JS
// context, against naive references: Softmax's pre-13 flattening, strided axes, LayerNorm's
// optional outputs and broadcast Scale, GroupNorm's opset 18/21 scale shapes, an even LRN
// window, BatchNorm's per-activation mode, and the typed errors for bad models and inputs.
import assert from "node:assert/strict";
import type { AttrValue } from "../src/graph/ir.ts";
import type { Tensor } from "../src/graph/tensor.ts";
import { NORMALIZATION_OPS } from "../src/ops/normalization.ts";
import { ArgumentError, ModelError, ShapeError } from "../src/errors.ts";
import { rng, runOp } from "./util.ts";

const run = (
  op: string,
  inputs: (Tensor | undefined)[],
  attrs: Record<string, AttrValue> = {},
  opset = 18,
  nOut = 1,
) => runOp(NORMALIZATION_OPS, op, inputs, attrs, opset, nOut);
const one = (op: string, ins: (Tensor | undefined)[], attrs = {}, opset = 18) =>
  run(op, ins, attrs, opset)[0];

const count = (dims: number[]) => dims.reduce((a, b) => a * b, 1);
const f32 = (dims: number[], v: number[]): Tensor => ({
  type: "float32",
  dims,
  data: Float32Array.from(v),
});
const vals = (t: Tensor) => Array.from(t.data as ArrayLike<number>);
const random = (n: number, seed: number, scale = 4) => {
  const r = rng(seed);
  return Array.from({ length: n }, () => (r() - 0.5) * scale);
};

function close(got: number[], want: number[], what: string, tol = 1e-5) {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const ok = Object.is(got[i], want[i]) ||
      Math.abs(got[i] - want[i]) <= tol + tol * Math.abs(want[i]);
    assert.ok(ok, `${what}: [${i}] ${got[i]} vs ${want[i]}`);
  }
}

/** Applies f to each group of elements sharing the index outside [from, to) axes. */
function perGroup(
  x: number[],
  dims: number[],
  from: number,
  to: number,
  f: (g: number[]) => number[],
): number[] {
  const outer = count(dims.slice(0, from)), n = count(dims.slice(from, to));
  const inner = count(dims.slice(to));
  const out = new Array<number>(x.length);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const idx = Array.from({ length: n }, (_, k) => (o * n + k) * inner + i);
      const y = f(idx.map((j) => x[j]));
      idx.forEach((j, k) => (out[j] = y[k]));
    }
  }
  return out;
}

const softmax = (g: number[]) => {
  const m = Math.max(...g);
  const e = g.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};
const logSoftmax = (g: number[]) => softmax(g).map(Math.log);
const hardmax = (g: number[]) => {
  const k = g.indexOf(Math.max(...g));
  return g.map((_, i) => (i === k ? 1 : 0));
};
const standardize = (g: number[], eps: number) => {
  const m = g.reduce((a, b) => a + b, 0) / g.length;
  const v = g.reduce((a, b) => a + (b - m) ** 2, 0) / g.length;
  return g.map((x) => (x - m) / Math.sqrt(v + eps));
};

Deno.test("Softmax/LogSoftmax/Hardmax: along an axis (opset 13) and flattened (before 13)", () => {
  const dims = [2, 3, 4];
  const x = random(24, 1, 6);
  const fns = { Softmax: softmax, LogSoftmax: logSoftmax, Hardmax: hardmax };
  for (const [op, f] of Object.entries(fns)) {
    for (const axis of [0, 1, 2, -1, -2]) {
      const a = axis < 0 ? axis + 3 : axis;
      close(
        vals(one(op, [f32(dims, x)], { axis }, 13)),
        perGroup(x, dims, a, a + 1, f),
        `${op} 13 ${axis}`,
      );
      close(
        vals(one(op, [f32(dims, x)], { axis }, 11)),
        perGroup(x, dims, a, 3, f),
        `${op} 11 ${axis}`,
      );
    }
    // Defaults: axis −1 from 13, axis 1 (flattened) before.
    close(vals(one(op, [f32(dims, x)], {}, 13)), perGroup(x, dims, 2, 3, f), `${op} 13 default`);
    close(
      vals(one(op, [f32(dims, x)], {}, 1 + 10)),
      perGroup(x, dims, 1, 3, f),
      `${op} 11 default`,
    );
  }
});

Deno.test("Softmax: large and infinite inputs stay finite; float16/float64 keep their type", () => {
  close(vals(one("Softmax", [f32([1, 3], [1e30, 1e30, -1e30])])), [0.5, 0.5, 0], "large");
  close(vals(one("LogSoftmax", [f32([3], [10000, 10001, 10002])])), logSoftmax([0, 1, 2]), "log");
  close(vals(one("Softmax", [f32([2], [-Infinity, 0])])), [0, 1], "−∞");
  const h = new Float16Array([1, 2, 3, 4]);
  const half = one("Softmax", [{ type: "float16", dims: [4], data: new Uint16Array(h.buffer) }]);
  assert.equal(half.type, "float16");
  const hd = half.data as Uint16Array;
  close(
    Array.from(new Float16Array(hd.buffer, hd.byteOffset, 4)),
    softmax([1, 2, 3, 4]),
    "f16",
    1e-3,
  );
  const d = one("LogSoftmax", [{ type: "float64", dims: [2], data: Float64Array.of(0, 0) }]);
  assert.equal(d.type, "float64");
  close(vals(d), [-Math.LN2, -Math.LN2], "f64", 1e-12);
  // Hardmax ties go to the first maximum.
  assert.deepEqual(vals(one("Hardmax", [f32([2, 3], [1, 3, 3, 2, 2, 0])], {}, 13)), [
    0,
    1,
    0,
    1,
    0,
    0,
  ]);
  assert.deepEqual(one("Softmax", [f32([0, 3], [])]).dims, [0, 3]);
});

Deno.test("Softmax: bad inputs throw typed errors", () => {
  assert.throws(
    () => one("Softmax", [f32([2, 3], [1, 2, 3, 4, 5, 6])], { axis: 2 }),
    ArgumentError,
  );
  assert.throws(
    () => one("Softmax", [{ type: "int32", dims: [2], data: Int32Array.of(1, 2) }]),
    ShapeError,
  );
  assert.throws(() => one("LogSoftmax", [undefined]), /n_LogSoftmax/);
});

Deno.test("BatchNormalization: per channel, opset-7 per activation, and training refused", () => {
  const dims = [2, 3, 2, 2];
  const x = random(24, 2);
  const p = (v: number[]) => f32([v.length], v);
  const [s, b, m, v] = [[1, 2, 0.5], [0, 1, -1], [0.1, -0.2, 0.3], [1, 0.5, 2]];
  const got = vals(
    one("BatchNormalization", [f32(dims, x), p(s), p(b), p(m), p(v)], { epsilon: 1e-3 }, 15),
  );
  const want = x.map((val, i) => {
    const c = Math.floor(i / 4) % 3;
    return (val - m[c]) / Math.sqrt(v[c] + 1e-3) * s[c] + b[c];
  });
  close(got, want, "bn");
  // Rank 2 (N, C).
  const x2 = f32([2, 3], [1, 2, 3, 4, 5, 6]);
  const r2 = vals(one("BatchNormalization", [x2, p(s), p(b), p(m), p(v)], {}, 9));
  close(
    r2,
    [1, 2, 3, 4, 5, 6].map((val, i) =>
      (val - m[i % 3]) / Math.sqrt(v[i % 3] + 1e-5) * s[i % 3] + b[i % 3]
    ),
    "bn 2d",
  );
  // spatial=0 (opset 7): one statistic per C×H×W position.
  const pa = (k: number) => f32([3, 2, 2], Array.from({ length: 12 }, (_, i) => k + i / 10));
  const act = vals(
    one("BatchNormalization", [f32(dims, x), pa(1), pa(0), pa(-1), pa(1)], { spatial: 0 }, 7),
  );
  close(
    act,
    x.map((val, i) => {
      const j = i % 12;
      return (val - (-1 + j / 10)) / Math.sqrt(1 + j / 10 + 1e-5) * (1 + j / 10) + j / 10;
    }),
    "per activation",
  );
  const ins = [f32(dims, x), p(s), p(b), p(m), p(v)];
  assert.throws(() => run("BatchNormalization", ins, { training_mode: 1 }, 15), ModelError);
  assert.throws(() => run("BatchNormalization", ins, {}, 9, 5), ModelError);
  assert.throws(
    () => run("BatchNormalization", [f32(dims, x), p([1, 2]), p(b), p(m), p(v)]),
    ShapeError,
  );
  assert.throws(() => run("BatchNormalization", [f32(dims, x), p(s), p(b), p(m)]), ShapeError);
});

Deno.test("InstanceNormalization normalizes each (n, c) over its spatial block", () => {
  const dims = [2, 3, 5];
  const x = random(30, 3, 10).map((v) => v + 100);
  const s = [1, -2, 0.5], b = [0, 1, 2];
  const got = vals(
    one("InstanceNormalization", [f32(dims, x), f32([3], s), f32([3], b)], { epsilon: 1e-2 }),
  );
  const norm = perGroup(x, dims, 2, 3, (g) => standardize(g, 1e-2));
  close(
    got,
    norm.map((v, i) => v * s[Math.floor(i / 5) % 3] + b[Math.floor(i / 5) % 3]),
    "in",
    1e-4,
  );
  assert.throws(
    () => one("InstanceNormalization", [f32(dims, x), f32([2], [1, 1]), f32([3], b)]),
    ShapeError,
  );
});

Deno.test("LayerNormalization: axis, broadcast Scale/B, Mean and InvStdDev outputs", () => {
  const dims = [2, 3, 4];
  const x = random(24, 4, 8);
  const scale = random(12, 5), bias = random(12, 6);
  const [y, mean, inv] = run(
    "LayerNormalization",
    [f32(dims, x), f32([3, 4], scale), f32([3, 4], bias)],
    { axis: 1, epsilon: 1e-3 },
    17,
    3,
  );
  const norm = perGroup(x, dims, 1, 3, (g) => standardize(g, 1e-3));
  close(vals(y), norm.map((v, i) => v * scale[i % 12] + bias[i % 12]), "y", 1e-4);
  assert.deepEqual(mean.dims, [2, 1, 1]);
  assert.equal(mean.type, "float32");
  const m0 = x.slice(0, 12).reduce((a, b) => a + b, 0) / 12;
  const v0 = x.slice(0, 12).reduce((a, b) => a + (b - m0) ** 2, 0) / 12;
  close([vals(mean)[0], vals(inv)[0]], [m0, 1 / Math.sqrt(v0 + 1e-3)], "stats", 1e-5);
  // Scale [4] broadcast over axis 1's [3, 4] block; no bias; default epsilon.
  const s4 = [1, 2, 3, 4];
  const norm5 = perGroup(x, dims, 1, 3, (g) => standardize(g, 1e-5));
  const nb = vals(one("LayerNormalization", [f32(dims, x), f32([4], s4)], { axis: -2 }, 17));
  close(nb, norm5.map((v, i) => v * s4[i % 4]), "broadcast scale", 1e-4);
  // Default axis −1, only one output requested.
  const last = run("LayerNormalization", [f32(dims, x), f32([4], s4)], {}, 17);
  assert.equal(last.length, 1);
  close(
    vals(last[0]),
    perGroup(x, dims, 2, 3, (g) => standardize(g, 1e-5)).map((v, i) => v * s4[i % 4]),
    "default",
    1e-4,
  );
  assert.throws(
    () => one("LayerNormalization", [f32(dims, x), f32([3], [1, 1, 1])], {}, 17),
    ShapeError,
  );
  assert.throws(
    () => one("LayerNormalization", [f32(dims, x), f32([4], s4)], { axis: 3 }, 17),
    ArgumentError,
  );
});

Deno.test("GroupNormalization: per-group scale (opset 18) and per-channel scale (opset 21)", () => {
  const dims = [2, 4, 3];
  const x = random(24, 7, 6);
  // Two groups of two channels: each (n, group) is 6 contiguous values.
  const norm = perGroup(x, [2, 2, 6], 2, 3, (g) => standardize(g, 1e-5));
  const ch = (i: number) => Math.floor(i / 3) % 4;
  const sc = [1, 2, 3, 4], bc = [0.5, 0, -0.5, 1];
  const y21 = vals(
    one("GroupNormalization", [f32(dims, x), f32([4], sc), f32([4], bc)], { num_groups: 2 }, 21),
  );
  close(y21, norm.map((v, i) => v * sc[ch(i)] + bc[ch(i)]), "per channel", 1e-4);
  const sg = [2, -1], bg = [0, 3];
  const y18 = vals(
    one("GroupNormalization", [f32(dims, x), f32([2], sg), f32([2], bg)], { num_groups: 2 }, 18),
  );
  close(y18, norm.map((v, i) => v * sg[ch(i) >> 1] + bg[ch(i) >> 1]), "per group", 1e-4);
  const ins = [f32(dims, x), f32([4], sc), f32([4], bc)];
  assert.throws(() => one("GroupNormalization", ins, { num_groups: 3 }, 21), ArgumentError);
  assert.throws(() => one("GroupNormalization", ins, {}, 21), ModelError);
  assert.throws(
    () =>
      one("GroupNormalization", [ins[0], f32([3], [1, 1, 1]), f32([3], [0, 0, 0])], {
        num_groups: 2,
      }, 21),
    ShapeError,
  );
});

Deno.test("LRN: channel window (even size is asymmetric) and defaults", () => {
  const dims = [1, 5, 2];
  const x = random(10, 8, 6);
  for (const [size, alpha, beta, bias] of [[4, 0.1, 0.6, 2], [3, 1e-4, 0.75, 1]]) {
    const attrs = size === 3 ? { size } : { size, alpha, beta, bias };
    const got = vals(one("LRN", [f32(dims, x)], attrs, 13));
    const want = x.map((v, i) => {
      const c = Math.floor(i / 2), s = i % 2;
      let sq = 0;
      for (let cc = c - Math.floor((size - 1) / 2); cc <= c + Math.ceil((size - 1) / 2); cc++) {
        if (cc >= 0 && cc < 5) sq += x[cc * 2 + s] ** 2;
      }
      return v / Math.pow(bias + (alpha / size) * sq, beta);
    });
    close(got, want, `lrn size ${size}`);
  }
  assert.throws(() => one("LRN", [f32(dims, x)], {}, 13), ModelError);
});

Deno.test("MeanVarianceNormalization: default axes [0, 2, 3] and custom axes", () => {
  const dims = [2, 3, 2, 1];
  const x = random(12, 9, 10);
  const got = vals(one("MeanVarianceNormalization", [f32(dims, x)], {}, 13));
  const mvn = (g: number[]) => {
    const m = g.reduce((a, b) => a + b, 0) / g.length;
    const sd = Math.sqrt(g.reduce((a, b) => a + (b - m) ** 2, 0) / g.length);
    return g.map((v) => (v - m) / (sd + 1e-9));
  };
  // Channel c's elements: (n, c, h) for every n, h.
  const want = new Array<number>(12);
  for (let c = 0; c < 3; c++) {
    const idx = [0, 1].flatMap((n) => [0, 1].map((h) => n * 6 + c * 2 + h));
    const y = mvn(idx.map((i) => x[i]));
    idx.forEach((i, k) => (want[i] = y[k]));
  }
  close(got, want, "mvn default", 1e-4);
  const row = vals(
    one("MeanVarianceNormalization", [f32([2, 3], [1, 2, 3, 5, 5, 5])], { axes: [1] }, 13),
  );
  close(row, [...mvn([1, 2, 3]), 0, 0, 0], "mvn rows", 1e-4);
});

Deno.test("LpNormalization: p = 1 and 2 along an axis; zero vectors stay zero", () => {
  const x = f32([2, 3], [3, 0, 1, 4, 0, -1]);
  close(vals(one("LpNormalization", [x], { axis: 0 })), [
    0.6,
    0,
    1 / Math.SQRT2,
    0.8,
    0,
    -1 / Math.SQRT2,
  ], "p2 axis0");
  close(vals(one("LpNormalization", [x], { p: 1 })), [0.75, 0, 0.25, 0.8, 0, -0.2], "p1 axis −1");
  assert.throws(() => one("LpNormalization", [x], { p: 3 }), ModelError);
});
