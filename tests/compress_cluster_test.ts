// Weight clustering: the packed index format, 1-D k-means against a naive Lloyd, and the pass —
// decoded weights are exactly codebook values, models run through exportModel and Session and
// compute exactly what the dense equivalent computes, zeros of pruned layers stay exact.
import assert from "node:assert/strict";
import { ArgumentError, ModelError, Session, ShapeError, type Tensor } from "../src/mod.ts";
import { importModel } from "../src/onnx/import.ts";
import { exportModel } from "../src/onnx/export.ts";
import { DataType, makeModel, node, tensorFromArray, valueInfo } from "../src/onnx/proto.ts";
import { Node, type Value } from "../src/graph/ir.ts";
import { parseRecipe, type Recipe } from "../src/compress/recipe.ts";
import { clusterPass, clusterWeights, kmeans1d } from "../src/compress/cluster.ts";
import { prunePass } from "../src/compress/prune.ts";
import { packIndices, SQZ_SPARSE_OPS, unpackIndices } from "../src/ops/sqz_sparse.ts";
import { jsContext } from "../src/ops/types.ts";
import { rng } from "./util.ts";

function randn(r: () => number, n: number, scale = 1): Float32Array {
  // Roughly bell-shaped, like trained weights: the sum of three uniforms.
  return Float32Array.from({ length: n }, () => ((r() + r() + r()) / 1.5 - 1) * scale);
}

Deno.test("cluster indices: LSB-first packing round-trips for 1..8 bits", () => {
  // 3 bits: 1, 2, 3, 4, 5 → byte 0 = 001 | 010 << 3 | (3 & 3) << 6, byte 1 = 3 >> 2 | 4 << 1 | 5 << 4.
  assert.deepEqual(Array.from(packIndices([1, 2, 3, 4, 5], 3)), [1 | 16 | 192, 0 | 8 | 80]);
  for (let bits = 1; bits <= 8; bits++) {
    for (const n of [1, 7, 8, 9, 100, 1001]) {
      const r = rng(bits * 1000 + n);
      const idx = Uint8Array.from({ length: n }, () => Math.floor(r() * (1 << bits)));
      const packed = packIndices(idx, bits);
      assert.equal(packed.length, Math.ceil((n * bits) / 8));
      assert.deepEqual(unpackIndices(packed, bits, n), idx, `${bits} bits, ${n}`);
    }
  }
  assert.throws(() => packIndices([4], 2), ArgumentError);
  assert.throws(() => packIndices([0], 9), ArgumentError);
});

/** Lloyd the obvious way: O(n·k) per iteration. */
function naiveKmeans(xs: Float32Array, k: number): Float64Array {
  let lo = Infinity, hi = -Infinity;
  for (const x of xs) {
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  const c = Float64Array.from({ length: k }, (_, j) => lo + ((hi - lo) * j) / (k - 1));
  let prev: number[] = [];
  for (;;) {
    const a = Array.from(xs, (x) => {
      let best = 0;
      for (let j = 1; j < k; j++) if (Math.abs(x - c[j]) < Math.abs(x - c[best])) best = j;
      return best;
    });
    if (a.every((v, i) => v === prev[i])) return c;
    const sum = new Float64Array(k), cnt = new Float64Array(k);
    a.forEach((j, i) => {
      sum[j] += xs[i];
      cnt[j]++;
    });
    for (let j = 0; j < k; j++) if (cnt[j]) c[j] = sum[j] / cnt[j];
    c.sort();
    prev = a;
  }
}

Deno.test("kmeans1d: matches a naive Lloyd, ends at a fixed point, is deterministic", () => {
  for (const [n, k] of [[500, 4], [2000, 16], [3000, 32], [50, 8]]) {
    const xs = randn(rng(n + k), n);
    const km = kmeans1d(xs, k);
    assert.ok(km.converged);
    const naive = naiveKmeans(xs, k);
    km.centroids.forEach((c, j) => assert.ok(Math.abs(c - naive[j]) < 1e-9, `${n}/${k} c${j}`));
    assert.deepEqual(kmeans1d(xs, k).centroids, km.centroids);
    // Fixed point: each non-empty centroid is the mean of the points nearest to it.
    const sum = new Float64Array(k), cnt = new Float64Array(k);
    for (const x of xs) {
      let best = 0;
      for (let j = 1; j < k; j++) {
        if (Math.abs(x - km.centroids[j]) < Math.abs(x - km.centroids[best])) best = j;
      }
      sum[best] += x;
      cnt[best]++;
    }
    for (let j = 0; j < k; j++) {
      if (cnt[j]) assert.ok(Math.abs(sum[j] / cnt[j] - km.centroids[j]) < 1e-9);
    }
  }
  // Linear initialization covers min and max: a lone outlier keeps its own centroid.
  const xs = Float32Array.from([...randn(rng(1), 999, 0.1), 5]);
  const km = kmeans1d(xs, 8);
  assert.equal(km.centroids[7], 5);
  assert.throws(() => kmeans1d([], 3), ArgumentError);
  assert.throws(() => kmeans1d([1, NaN], 2), ArgumentError);
});

// ---- the pass ----

/** fc1 Gemm (W1 [96, 40], transB) → Relu → fc2 MatMul (W2 [96, 12]); tiny: fc0 [3, 2]. */
function mlp(seed: number, tiny = false): Uint8Array {
  const r = rng(seed);
  const f32 = (name: string, dims: number[], data: Float32Array) =>
    tensorFromArray(name, DataType.FLOAT, dims, data);
  return makeModel({
    nodes: [
      ...(tiny ? [node("MatMul", ["x0", "W0"], ["x"], {}, "fc0")] : []),
      node("Gemm", ["x", "W1", "b1"], ["h"], { transB: 1 }, "fc1"),
      node("Relu", ["h"], ["a"], {}, "relu"),
      node("MatMul", ["a", "W2"], ["y"], {}, "fc2"),
    ],
    inputs: [valueInfo(tiny ? "x0" : "x", DataType.FLOAT, ["N", tiny ? 3 : 40])],
    outputs: [valueInfo("y", DataType.FLOAT, ["N", 12])],
    initializers: [
      ...(tiny ? [f32("W0", [3, 40], randn(r, 120, 0.3))] : []),
      f32("W1", [96, 40], randn(r, 96 * 40, 0.3)),
      f32("b1", [96], randn(r, 96, 0.1)),
      f32("W2", [96, 12], randn(r, 96 * 12, 0.3)),
    ],
  });
}

function dense(v: Value): Float32Array {
  if (v.constant) return v.constant.data as Float32Array;
  const p = v.producer!;
  const ins = p.inputs.map((x) =>
    x!.constant ?? { type: "float32" as const, dims: [dense(x!).length], data: dense(x!) }
  );
  return SQZ_SPARSE_OPS[p.qualifiedOp](ins, jsContext(p, 1))[0].data as Float32Array;
}

/** The same MLP with the given dense weights. */
function withWeights(seed: number, ws: Record<string, Float32Array>): Uint8Array {
  const g = importModel(mlp(seed));
  for (const [k, data] of Object.entries(ws)) {
    const v = g.values.get(k)!;
    v.constant = { ...v.constant!, data };
  }
  return exportModel(g);
}

async function run(bytes: Uint8Array, x: Tensor): Promise<Float32Array> {
  const s = await Session.create(bytes);
  try {
    return (await s.run({ x }))[s.outputNames[0]].data as Float32Array;
  } finally {
    await s.release();
  }
}

function input(seed: number, dims: number[]): Tensor {
  return { type: "float32", dims, data: randn(rng(seed), dims.reduce((a, b) => a * b, 1)) };
}

Deno.test("cluster pass: weights decode to exactly the codebook, each to its nearest value", async () => {
  for (const k of [2, 5, 16, 256]) {
    const bytes = mlp(1);
    const g = importModel(bytes);
    const orig = { W1: dense(g.values.get("W1")!), W2: dense(g.values.get("W2")!) };
    const res = clusterPass(g, parseRecipe({ cluster: { clusters: k } }));
    assert.deepEqual(res.layers.map((l) => [l.name, l.method]), [
      ["fc1", `${k} clusters`],
      ["fc2", `${k} clusters`],
    ]);
    const bits = Math.max(1, Math.ceil(Math.log2(k)));
    for (const [name, l, bias] of [["W1", res.layers[0], 96], ["W2", res.layers[1], 0]] as const) {
      const v = g.values.get(name)!;
      const dec = v.producer!;
      assert.equal(dec.qualifiedOp, "ai.sqz.ClusteredWeight");
      assert.equal(dec.attrs.bits, bits);
      assert.deepEqual(dec.attrs.shape, v.shape);
      const codebook = dec.inputs[1]!.constant!.data as Float32Array;
      assert.equal(codebook.length, k);
      const w = dense(v), o = orig[name];
      const values = new Set(codebook);
      for (let i = 0; i < w.length; i++) {
        assert.ok(values.has(w[i]), `${name}[${i}] = ${w[i]} is not in the codebook`);
        for (const c of codebook) assert.ok(Math.abs(o[i] - w[i]) <= Math.abs(o[i] - c));
      }
      assert.equal(l.params, o.length);
      assert.equal(l.bytesBefore, 4 * (o.length + bias));
      assert.equal(l.bytesAfter, Math.ceil((o.length * bits) / 8) + 4 * k + 4 * bias);
    }
    const x = input(2, [5, 40]);
    const artifact = exportModel(g);
    assert.equal(
      importModel(artifact).nodes.filter((n) => n.qualifiedOp === "ai.sqz.ClusteredWeight").length,
      2,
    );
    const want = await run(
      withWeights(1, { W1: dense(g.values.get("W1")!), W2: dense(g.values.get("W2")!) }),
      x,
    );
    assert.deepEqual(await run(artifact, x), want, `k = ${k}`);
  }
});

Deno.test("cluster after pruning: sparse values are clustered, zeros stay exact", async () => {
  // Sparse storage (50%: bitmask) → the SparseWeight reads its values from a ClusteredWeight.
  const g = importModel(mlp(3));
  prunePass(g, parseRecipe({ prune: { sparsity: 0.5, scope: "layer" } }));
  const pruned = dense(g.values.get("W1")!).slice();
  const res = clusterPass(g, parseRecipe({ cluster: { clusters: 8 } }));
  assert.equal(res.layers.length, 2);
  assert.ok(res.layers[0].notes!.some((n) => n.includes("sparse")));
  const sparse = g.values.get("W1")!.producer!;
  assert.equal(sparse.qualifiedOp, "ai.sqz.SparseWeight");
  assert.equal(sparse.inputs[0]!.producer!.qualifiedOp, "ai.sqz.ClusteredWeight");
  const w = dense(g.values.get("W1")!);
  w.forEach((x, i) => assert.equal(x === 0, pruned[i] === 0));
  assert.ok(new Set(w).size <= 9);
  const x = input(4, [3, 40]);
  const want = await run(withWeights(3, { W1: w, W2: dense(g.values.get("W2")!) }), x);
  assert.deepEqual(await run(exportModel(g), x), want);

  // Dense with zeros (2% pruned: sparse storage would not be smaller) → entry 0 is 0.0.
  const g2 = importModel(mlp(3));
  prunePass(g2, parseRecipe({ prune: { sparsity: 0.02, scope: "layer" } }));
  const p2 = dense(g2.values.get("W1")!).slice();
  const res2 = clusterPass(g2, parseRecipe({ cluster: { clusters: 4 } }));
  assert.ok(res2.layers[0].notes!.some((n) => n.includes("zeros kept exact")));
  const dec = g2.values.get("W1")!.producer!;
  assert.equal((dec.inputs[1]!.constant!.data as Float32Array)[0], 0);
  const w2 = dense(g2.values.get("W1")!);
  w2.forEach((x, i) => assert.equal(x === 0, p2[i] === 0));
  assert.equal(res2.layers[0].nonzeros, p2.length - p2.filter((x) => x === 0).length);
});

Deno.test("clusterWeights: fewer distinct values than clusters, a constant layer", () => {
  const few = Float32Array.from({ length: 100 }, (_, i) => [0.5, -0.25, 1][i % 3]);
  const c = clusterWeights(few, 16);
  const dec = Array.from(c.indices, (i) => c.codebook[i]);
  assert.deepEqual(Float32Array.from(dec), few);
  const flat = clusterWeights(new Float32Array(50).fill(0.125), 4);
  assert.ok(Array.from(flat.indices, (i) => flat.codebook[i]).every((x) => x === 0.125));
});

Deno.test("cluster: the decoder rejects malformed inputs with typed errors", () => {
  const op = SQZ_SPARSE_OPS["ai.sqz.ClusteredWeight"];
  const mk = (attrs: Record<string, unknown>) =>
    new Node("bad", "ClusteredWeight", "ai.sqz", [], [], attrs as Node["attrs"]);
  const idx: Tensor = { type: "uint8", dims: [2], data: packIndices([0, 1, 2, 3, 3], 3) };
  const cb: Tensor = { type: "float32", dims: [4], data: Float32Array.of(1, 2, 3, 4) };
  const dec = op([idx, cb], jsContext(mk({ shape: [5], bits: 3 }), 1))[0];
  assert.deepEqual(Array.from(dec.data as Float32Array), [1, 2, 3, 4, 4]);
  assert.throws(() => op([idx, cb], jsContext(mk({ shape: [5] }), 1)), ModelError);
  assert.throws(() => op([idx, cb], jsContext(mk({ shape: [6, 2], bits: 3 }), 1)), ShapeError);
  assert.throws(() => op([idx, cb], jsContext(mk({ shape: [5], bits: 1 }), 1)), ShapeError);
  const far: Tensor = { ...idx, data: packIndices([0, 1, 2, 3, 7], 3) };
  assert.throws(() => op([far, cb], jsContext(mk({ shape: [5], bits: 3 }), 1)), ModelError);
});

Deno.test("cluster: tiny layers are left alone, bad recipes are ArgumentErrors", () => {
  const g = importModel(mlp(5, true));
  const res = clusterPass(g, parseRecipe({ cluster: { clusters: 256 } }));
  assert.deepEqual(res.layers.map((l) => l.name), ["fc1", "fc2"]);
  assert.ok(res.notes.some((n) => n.startsWith("fc0:") && n.includes("would not shrink")));
  assert.ok(g.values.get("W0")!.constant);
  const base = parseRecipe("int8");
  assert.throws(() => clusterPass(g, base), ArgumentError);
  for (const clusters of [1, 257, 2.5, "8"]) {
    assert.throws(
      () => clusterPass(g, { ...base, cluster: { clusters } } as unknown as Recipe),
      ArgumentError,
      String(clusters),
    );
  }
});
