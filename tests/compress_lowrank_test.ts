// Low-rank factorization: the SVD itself (reconstruction, orthogonality, order, known singular
// values, degenerate and badly scaled matrices) and the pass on Gemm / MatMul / Conv layers,
// run through exportModel and Session (and onnxruntime-web for the plain-ONNX artifact).
import assert from "node:assert/strict";
import { ArgumentError, Session, type Tensor } from "../src/mod.ts";
import { importModel } from "../src/onnx/import.ts";
import { exportModel } from "../src/onnx/export.ts";
import { DataType, makeModel, node, tensorFromArray, valueInfo } from "../src/onnx/proto.ts";
import { parseRecipe, type Recipe } from "../src/compress/recipe.ts";
import { chooseRank, lowRankPass, svd } from "../src/compress/lowrank.ts";
import { ortRunner } from "../bench/models.ts";
import { rng } from "./util.ts";

function randn(r: () => number, n: number, scale = 1): Float64Array {
  return Float64Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

interface Check {
  recon: number;
  orthU: number;
  orthV: number;
  frob: number;
}

/** Errors of an SVD relative to the largest entry / the squared Frobenius norm. */
function check(a: ArrayLike<number>, m: number, n: number): Check & { s: Float64Array } {
  const d = svd(a, m, n);
  const k = d.k;
  assert.equal(k, Math.min(m, n));
  assert.equal(d.u.length, m * k);
  assert.equal(d.v.length, n * k);
  let scale = 0, fro = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(a[i]));
    fro += a[i] * a[i];
  }
  let recon = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let x = 0;
      for (let c = 0; c < k; c++) x += d.u[i * k + c] * d.s[c] * d.v[j * k + c];
      recon = Math.max(recon, Math.abs(x - a[i * n + j]));
    }
  }
  const orth = (q: Float64Array, rows: number) => {
    let e = 0;
    for (let p = 0; p < k; p++) {
      for (let r = 0; r < k; r++) {
        let x = 0;
        for (let i = 0; i < rows; i++) x += q[i * k + p] * q[i * k + r];
        e = Math.max(e, Math.abs(x - (p === r ? 1 : 0)));
      }
    }
    return e;
  };
  let ss = 0;
  for (let i = 0; i < k; i++) {
    assert.ok(d.s[i] >= 0);
    if (i) assert.ok(d.s[i] <= d.s[i - 1], "descending");
    ss += d.s[i] * d.s[i];
  }
  return {
    s: d.s,
    recon: scale ? recon / scale : recon,
    orthU: orth(d.u, m),
    orthV: orth(d.v, n),
    frob: fro ? Math.abs(ss - fro) / fro : ss,
  };
}

/** A random orthogonal n×n matrix: a product of n Householder reflections. */
function orthogonal(r: () => number, n: number): Float64Array {
  const q = new Float64Array(n * n);
  for (let i = 0; i < n; i++) q[i * n + i] = 1;
  for (let h = 0; h < n; h++) {
    const v = randn(r, n);
    const vv = v.reduce((s, x) => s + x * x, 0);
    for (let i = 0; i < n; i++) {
      let dot = 0;
      for (let j = 0; j < n; j++) dot += q[i * n + j] * v[j];
      for (let j = 0; j < n; j++) q[i * n + j] -= (2 * dot * v[j]) / vv;
    }
  }
  return q;
}

/** Q1 (m×m) · diag(σ) · Q2ᵀ (n×n): a matrix with exactly the singular values σ. */
function withSingularValues(r: () => number, m: number, n: number, sigma: number[]): Float64Array {
  const q1 = orthogonal(r, m), q2 = orthogonal(r, n);
  const a = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let x = 0;
      for (let c = 0; c < sigma.length; c++) x += q1[i * m + c] * sigma[c] * q2[j * n + c];
      a[i * n + j] = x;
    }
  }
  return a;
}

Deno.test("svd: random matrices reconstruct, with orthonormal U and V and Σσ² = ‖A‖²", () => {
  const shapes = [[1, 1], [1, 7], [7, 1], [5, 3], [3, 5], [16, 16], [33, 17], [17, 33], [64, 40], [
    90,
    90,
  ]];
  for (const [m, n] of shapes) {
    const r = rng(m * 100 + n);
    const c = check(randn(r, m * n), m, n);
    assert.ok(c.recon < 1e-13, `${m}×${n} reconstruction ${c.recon}`);
    assert.ok(c.orthU < 1e-13 && c.orthV < 1e-13, `${m}×${n} orthogonality ${c.orthU} ${c.orthV}`);
    assert.ok(c.frob < 1e-13, `${m}×${n} Frobenius ${c.frob}`);
  }
});

Deno.test("svd: known singular values, repeated and zero ones, rank deficiency, scaling", () => {
  const r = rng(42);
  const cases: [number, number, number[]][] = [
    [12, 8, [10, 5, 5, 1, 1e-3, 1e-9, 0, 0]],
    [8, 12, [3, 3, 3, 3, 2, 1, 0.5, 0.25]],
    [20, 20, Array.from({ length: 20 }, (_, i) => 2 ** -i)],
    [10, 6, [1, 0, 0, 0, 0, 0]],
  ];
  for (const [m, n, sigma] of cases) {
    const c = check(withSingularValues(r, m, n, sigma), m, n);
    sigma.forEach((want, i) => assert.ok(Math.abs(c.s[i] - want) < 1e-13 * sigma[0], `σ${i}`));
    assert.ok(c.recon < 1e-13 && c.orthU < 1e-13 && c.orthV < 1e-13, JSON.stringify(c));
  }
  // Zero matrix: σ = 0 and still orthonormal factors.
  const z = check(new Float64Array(15), 5, 3);
  assert.deepEqual(Array.from(z.s), [0, 0, 0]);
  assert.ok(z.orthU < 1e-15 && z.orthV < 1e-15);
  // Badly scaled: relative accuracy holds at 1e±30.
  for (const scale of [1e-30, 1e30]) {
    const a = randn(rng(7), 30 * 20, scale);
    const c = check(a, 30, 20);
    assert.ok(c.recon < 1e-13 && c.frob < 1e-13, `scale ${scale}: ${JSON.stringify(c)}`);
  }
  assert.throws(() => svd([1, 2, 3], 2, 2), ArgumentError);
  assert.throws(() => svd([1, NaN, 3, 4], 2, 2), ArgumentError);
  assert.throws(() => svd([], -1, 0), ArgumentError);
});

Deno.test("chooseRank: the smallest r holding the energy; rank capped at min(m, n)", () => {
  const s = Float64Array.of(4, 2, 1, 1); // squares 16, 4, 1, 1 of 22
  assert.equal(chooseRank(s, { energy: 16 / 22 }), 1);
  assert.equal(chooseRank(s, { energy: 0.75 }), 2);
  assert.equal(chooseRank(s, { energy: 20 / 22 }), 2);
  assert.equal(chooseRank(s, { energy: 0.96 }), 4);
  assert.equal(chooseRank(s, { energy: 1 }), 4);
  assert.equal(chooseRank(s, { rank: 3 }), 3);
  assert.equal(chooseRank(s, { rank: 30 }), 4);
  assert.equal(chooseRank(new Float64Array(3), { energy: 0.5 }), 1);
});

// ---- the pass ----

/** rows × cols float32 matrix of exactly rank `rank` (up to float32 rounding). */
function lowRank(r: () => number, rows: number, cols: number, rank: number): Float32Array {
  const a = randn(r, rows * rank, 0.5), b = randn(r, rank * cols, 0.5);
  const w = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      let x = 0;
      for (let c = 0; c < rank; c++) x += a[i * rank + c] * b[c * cols + j];
      w[i * cols + j] = x;
    }
  }
  return w;
}

function input(seed: number, dims: number[]): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  return { type: "float32", dims, data: Float32Array.from(randn(rng(seed), n)) };
}

async function run(bytes: Uint8Array, x: Tensor): Promise<Float32Array> {
  const s = await Session.create(bytes);
  try {
    return (await s.run({ x }))[s.outputNames[0]].data as Float32Array;
  } finally {
    await s.release();
  }
}

function relDiff(a: Float32Array, b: Float32Array): number {
  let d = 0, m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}

const f32 = (name: string, dims: number[], data: ArrayLike<number>) =>
  tensorFromArray(name, DataType.FLOAT, dims, Float32Array.from(data));

/** fc1 Gemm (W1 [128, 64] transB, rank 6) → Relu → fc2 Gemm (W2 [128, 32], rank 5) → fc3 MatMul. */
function mlp(seed: number): Uint8Array {
  const r = rng(seed);
  return makeModel({
    nodes: [
      node("Gemm", ["x", "W1", "b1"], ["h1"], { transB: 1, alpha: 0.5 }, "fc1"),
      node("Relu", ["h1"], ["a1"], {}, "relu1"),
      node("Gemm", ["a1", "W2", "b2"], ["h2"], { beta: 2 }, "fc2"),
      node("Relu", ["h2"], ["a2"], {}, "relu2"),
      node("MatMul", ["a2", "W3"], ["h3"], {}, "fc3"),
      node("MatMul", ["h3", "W4"], ["y"], {}, "fc4"),
    ],
    inputs: [valueInfo("x", DataType.FLOAT, ["N", 64])],
    outputs: [valueInfo("y", DataType.FLOAT, ["N", 24])],
    initializers: [
      f32("W1", [128, 64], lowRank(r, 128, 64, 6)),
      f32("b1", [128], randn(r, 128, 0.1)),
      f32("W2", [128, 32], lowRank(r, 128, 32, 5)),
      f32("b2", [32], randn(r, 32, 0.1)),
      f32("W3", [32, 10], randn(r, 320, 0.3)),
      f32("W4", [10, 24], lowRank(r, 10, 24, 2)),
    ],
  });
}

Deno.test("lowrank Gemm/MatMul: low-rank weights factor into thinner layers without loss", async () => {
  const bytes = mlp(1);
  const g = importModel(bytes);
  const res = lowRankPass(g, parseRecipe({ lowrank: { energy: 0.999999 } }));
  assert.deepEqual(res.layers.map((l) => [l.name, l.method]), [
    ["fc1", "rank 6"],
    ["fc2", "rank 5"],
    ["fc4", "rank 2"],
  ]);
  assert.ok(res.notes.some((n) => n.startsWith("fc3: rank") && n.includes("would not reduce")));
  const byName = (n: string) => g.nodes.find((x) => x.name === n)!;
  const first = byName("fc1::lowrank"), second = byName("fc1");
  assert.deepEqual(first.inputs[1]!.constant!.dims, [6, 64]);
  assert.deepEqual(second.inputs[1]!.constant!.dims, [128, 6]);
  assert.equal(first.attrs.alpha, 0.5);
  assert.equal(second.attrs.alpha, undefined);
  assert.equal(second.inputs[2]!.name, "b1");
  assert.equal(byName("fc2").attrs.beta, 2);
  assert.deepEqual(byName("fc4::lowrank").inputs[1]!.constant!.dims, [10, 2]);
  assert.deepEqual(byName("fc4").inputs[1]!.constant!.dims, [2, 24]);
  const fc1 = res.layers[0];
  assert.equal(fc1.params, 128 * 64);
  assert.equal(fc1.nonzeros, 6 * (128 + 64));
  assert.equal(fc1.bytesBefore, 4 * (128 * 64 + 128));
  assert.equal(fc1.bytesAfter, 4 * (6 * 192 + 128));
  assert.equal(fc1.macsBefore, 128 * 64);
  assert.equal(fc1.macsAfter, 6 * 192);
  const artifact = exportModel(g);
  const x = input(2, [3, 64]);
  const want = await run(bytes, x);
  const got = await run(artifact, x);
  assert.ok(relDiff(got, want) < 1e-5, `${relDiff(got, want)}`);
  const ort = await ortRunner(artifact);
  const theirs = (await ort.run({ x: { dims: x.dims, data: x.data as Float32Array } })).y;
  await ort.release();
  assert.ok(relDiff(got, theirs.data) < 1e-5);
});

Deno.test("lowrank Conv: 3×3 strided and 1×1 convolutions become k×k → r and 1×1 → Cout", async () => {
  const r = rng(3);
  const bytes = makeModel({
    nodes: [
      node("Conv", ["x", "C1", "c1"], ["t1"], {
        kernel_shape: [3, 3],
        strides: [2, 2],
        pads: [1, 0, 1, 0],
        dilations: [1, 1],
      }, "conv1"),
      node("Relu", ["t1"], ["t2"], {}, "relu"),
      node("Conv", ["t2", "C2", "c2"], ["y"], { pads: [1, 1, 1, 1] }, "conv2"),
    ],
    inputs: [valueInfo("x", DataType.FLOAT, [1, 8, 10, 9])],
    outputs: [valueInfo("y", DataType.FLOAT, [1, 32, 7, 6])],
    initializers: [
      f32("C1", [16, 8, 3, 3], lowRank(r, 16, 72, 4)),
      f32("c1", [16], randn(r, 16, 0.1)),
      f32("C2", [32, 16, 1, 1], lowRank(r, 32, 16, 3)),
      f32("c2", [32], randn(r, 32, 0.1)),
    ],
  });
  const g = importModel(bytes);
  const res = lowRankPass(g, parseRecipe({ lowrank: { rank: 4 } }));
  assert.deepEqual(res.layers.map((l) => l.method), ["rank 4", "rank 4"]);
  const byName = (n: string) => g.nodes.find((x) => x.name === n)!;
  const a = byName("conv1::lowrank"), b = byName("conv1");
  assert.deepEqual(a.inputs[1]!.constant!.dims, [4, 8, 3, 3]);
  assert.deepEqual(a.attrs.strides, [2, 2]);
  assert.deepEqual(a.attrs.pads, [1, 0, 1, 0]);
  assert.equal(a.inputs[2], undefined);
  assert.deepEqual(b.inputs[1]!.constant!.dims, [16, 4, 1, 1]);
  assert.deepEqual(b.attrs, { kernel_shape: [1, 1] });
  assert.equal(b.inputs[2]!.name, "c1");
  assert.deepEqual(byName("conv2::lowrank").attrs.pads, [1, 1, 1, 1]);
  const conv1 = res.layers[0];
  // 5×4 output positions: H (10 + 1 + 1 − 3) / 2 + 1, W (9 − 3) / 2 + 1.
  assert.equal(conv1.macsBefore, 16 * 72 * 5 * 4);
  assert.equal(conv1.macsAfter, (4 * 72 + 16 * 4) * 5 * 4);
  const x = input(4, [1, 8, 10, 9]);
  const want = await run(bytes, x);
  const got = await run(exportModel(g), x);
  assert.ok(relDiff(got, want) < 1e-5, `${relDiff(got, want)}`);
});

Deno.test("lowrank: a truncated rank loses the share of ‖W‖² the report gives", async () => {
  const bytes = mlp(5);
  const g = importModel(bytes);
  const w = Float64Array.from(g.values.get("W1")!.constant!.data as Float32Array);
  // W1 has rank 6: keeping 3 loses part of it.
  const res = lowRankPass(g, parseRecipe({ lowrank: { rank: 3 } }));
  const fc1 = res.layers.find((l) => l.name === "fc1")!;
  assert.equal(fc1.method, "rank 3");
  const energy = Number(fc1.notes![0].match(/([\d.]+)% of Σσ²/)![1]) / 100;
  assert.ok(energy > 0.3 && energy < 1);
  // ‖W − W_r‖_F² / ‖W‖_F² = 1 − energy (Eckart–Young), W_r = F2 · F1 with transB layouts.
  const f1 = g.nodes.find((n) => n.name === "fc1::lowrank")!.inputs[1]!.constant!
    .data as Float32Array;
  const f2 = g.nodes.find((n) => n.name === "fc1")!.inputs[1]!.constant!.data as Float32Array;
  let err = 0, norm = 0;
  for (let o = 0; o < 128; o++) {
    for (let k = 0; k < 64; k++) {
      let x = 0;
      for (let i = 0; i < 3; i++) x += f2[o * 3 + i] * f1[i * 64 + k];
      err += (x - w[o * 64 + k]) ** 2;
      norm += w[o * 64 + k] ** 2;
    }
  }
  assert.ok(Math.abs(err / norm - (1 - energy)) < 1e-4, `${err / norm} vs ${1 - energy}`);
  const x = input(6, [2, 64]);
  const got = await run(exportModel(g), x);
  const want = await run(bytes, x);
  assert.ok(relDiff(got, want) > 1e-4, "lossy at rank 3");
});

Deno.test("lowrank: layers that would not shrink are left alone, bad recipes are ArgumentErrors", () => {
  const g = importModel(mlp(7));
  const res = lowRankPass(g, parseRecipe({ lowrank: { rank: 60 } }));
  assert.equal(res.layers.length, 0);
  assert.equal(res.notes.length, 4);
  assert.equal(g.nodes.length, 6);
  const base = parseRecipe("int8");
  assert.throws(() => lowRankPass(g, base), ArgumentError);
  for (
    const lowrank of [{}, { rank: 2, energy: 0.5 }, { rank: 0 }, { rank: 1.5 }, { energy: 0 }, {
      energy: 1.5,
    }]
  ) {
    assert.throws(
      () => lowRankPass(g, { ...base, lowrank } as Recipe),
      ArgumentError,
      JSON.stringify(lowrank),
    );
  }
});
