// Magnitude pruning (unstructured, global/per-layer, N:M) with its sparse storage formats, and
// structured filter pruning: exact sparsity, exact decode(encode(W)), models that still run
// through Session after exportModel, and typed errors for bad recipes.
import assert from "node:assert/strict";
import { ArgumentError, ModelError, Session, ShapeError, type Tensor } from "../src/mod.ts";
import { importModel } from "../src/onnx/import.ts";
import { exportModel } from "../src/onnx/export.ts";
import {
  DataType,
  makeModel,
  node,
  type NodeProto,
  tensorFromArray,
  type TensorProto,
  valueInfo,
} from "../src/onnx/proto.ts";
import { type Graph, Node, type Value } from "../src/graph/ir.ts";
import { parseRecipe, type Recipe } from "../src/compress/recipe.ts";
import { pruneNM, prunePass, zeroSmallest } from "../src/compress/prune.ts";
import { structuredPass } from "../src/compress/structured.ts";
import {
  encodeBitmask,
  encodeDelta,
  sparseEncode,
  type SparseEncoding,
  SQZ_SPARSE_OPS,
} from "../src/ops/sqz_sparse.ts";
import { jsContext } from "../src/ops/types.ts";
import { ortRunner } from "../bench/models.ts";
import { rng } from "./util.ts";

// ---- helpers ----

type Weights = Record<string, { dims: number[]; data: Float32Array }>;

function randn(r: () => number, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

function init(ws: Weights): TensorProto[] {
  return Object.entries(ws).map(([k, v]) => tensorFromArray(k, DataType.FLOAT, v.dims, v.data));
}

/** fc1 (Gemm, transB) → Relu → fc2 (Gemm, [K, N]) → Relu → fc3 (MatMul, 320 weights). */
function mlpWeights(seed: number): Weights {
  const r = rng(seed);
  return {
    W1: { dims: [128, 64], data: randn(r, 128 * 64, 0.2) },
    b1: { dims: [128], data: randn(r, 128, 0.1) },
    W2: { dims: [128, 32], data: randn(r, 128 * 32, 0.2) },
    b2: { dims: [32], data: randn(r, 32, 0.1) },
    W3: { dims: [32, 10], data: randn(r, 320, 0.3) },
  };
}

function mlp(ws: Weights): Uint8Array {
  return makeModel({
    nodes: [
      node("Gemm", ["x", "W1", "b1"], ["h1"], { transB: 1 }, "fc1"),
      node("Relu", ["h1"], ["a1"], {}, "relu1"),
      node("Gemm", ["a1", "W2", "b2"], ["h2"], {}, "fc2"),
      node("Relu", ["h2"], ["a2"], {}, "relu2"),
      node("MatMul", ["a2", "W3"], ["y"], {}, "fc3"),
    ],
    inputs: [valueInfo("x", DataType.FLOAT, ["N", 64])],
    outputs: [valueInfo("y", DataType.FLOAT, ["N", 10])],
    initializers: init(ws),
  });
}

/** conv1 (16×3×3×3, with BN) → Relu → conv2 (8×16×3×3) → GlobalAveragePool → Flatten → fc. */
function cnnWeights(seed: number): Weights {
  const r = rng(seed);
  return {
    C1: { dims: [16, 3, 3, 3], data: randn(r, 16 * 27, 0.4) },
    c1: { dims: [16], data: randn(r, 16, 0.1) },
    s1: { dims: [16], data: Float32Array.from({ length: 16 }, () => 0.5 + r()) },
    B1: { dims: [16], data: randn(r, 16, 0.2) },
    m1: { dims: [16], data: randn(r, 16, 0.1) },
    v1: { dims: [16], data: Float32Array.from({ length: 16 }, () => 0.5 + r()) },
    C2: { dims: [8, 16, 3, 3], data: randn(r, 8 * 144, 0.2) },
    c2: { dims: [8], data: randn(r, 8, 0.1) },
    F: { dims: [5, 8], data: randn(r, 40, 0.5) },
    f: { dims: [5], data: randn(r, 5, 0.1) },
  };
}

function cnn(ws: Weights): Uint8Array {
  return makeModel({
    nodes: [
      node("Conv", ["x", "C1", "c1"], ["t1"], { pads: [1, 1, 1, 1] }, "conv1"),
      node("BatchNormalization", ["t1", "s1", "B1", "m1", "v1"], ["t2"], {}, "bn1"),
      node("Relu", ["t2"], ["t3"], {}, "relu1"),
      node("Conv", ["t3", "C2", "c2"], ["t4"], { strides: [2, 2] }, "conv2"),
      node("GlobalAveragePool", ["t4"], ["t5"], {}, "gap"),
      node("Flatten", ["t5"], ["t6"], {}, "flat"),
      node("Gemm", ["t6", "F", "f"], ["y"], { transB: 1 }, "fc"),
    ],
    inputs: [valueInfo("x", DataType.FLOAT, [1, 3, 9, 9])],
    outputs: [valueInfo("y", DataType.FLOAT, [1, 5])],
    initializers: init(ws),
  });
}

function input(seed: number, dims: number[]): Tensor {
  const r = rng(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  return { type: "float32", dims, data: randn(r, n) };
}

async function run(bytes: Uint8Array, x: Tensor): Promise<Float32Array> {
  const s = await Session.create(bytes);
  try {
    const out = await s.run({ x });
    return out[s.outputNames[0]].data as Float32Array;
  } finally {
    await s.release();
  }
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

const maxAbs = (a: Float32Array) => a.reduce((m, x) => Math.max(m, Math.abs(x)), 0);

/** A weight as the layer will read it: the constant, or its ai.sqz decoder chain evaluated. */
function dense(v: Value): Float32Array {
  if (v.constant) return v.constant.data as Float32Array;
  const p = v.producer!;
  const fn = SQZ_SPARSE_OPS[p.qualifiedOp];
  assert.ok(fn, `no decoder for ${p.qualifiedOp}`);
  const ins = p.inputs.map((x) =>
    x!.constant ?? { type: "float32" as const, dims: [dense(x!).length], data: dense(x!) }
  );
  return fn(ins, jsContext(p, 1))[0].data as Float32Array;
}

function weightsOf(g: Graph, names: string[]): Weights {
  return Object.fromEntries(names.map((n) => {
    const v = g.values.get(n)!;
    return [n, { dims: v.shape as number[], data: dense(v) }];
  }));
}

const zerosIn = (w: Float32Array) => w.reduce((s, x) => s + (x === 0 ? 1 : 0), 0);

function recipe(o: Record<string, unknown>): Recipe {
  return parseRecipe(o);
}

// ---- storage formats ----

function decode(enc: SparseEncoding, shape: number[]): Float32Array {
  const n = new Node("dec", "SparseWeight", "ai.sqz", [], [], { shape, format: enc.format });
  const ins: Tensor[] = [
    { type: "float32", dims: [enc.values.length], data: enc.values },
    {
      type: enc.indices instanceof Uint16Array ? "uint16" : "uint8",
      dims: [enc.indices.length],
      data: enc.indices,
    },
  ];
  return SQZ_SPARSE_OPS["ai.sqz.SparseWeight"](ins, jsContext(n, 1))[0].data as Float32Array;
}

function sparseVector(seed: number, n: number, density: number, runs = false): Float32Array {
  const r = rng(seed);
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) if (r() < density) w[i] = r() * 2 - 1 || 0.5;
  if (runs && n > 70000) {
    w.fill(0, 10, 700); // > 255 zeros
    w.fill(0, 800, 800 + 66000); // > 65535 zeros
  }
  return w;
}

Deno.test("sparse formats: bitmask and delta (uint8, uint16) decode to exactly the weights", () => {
  const cases: [number, number, boolean][] = [
    [1, 0, false],
    [7, 0.5, false],
    [8, 1, false],
    [9, 0.3, false],
    [1000, 0.1, false],
    [4097, 0.02, false],
    [70001, 0.05, true],
    [100, 0, false],
  ];
  for (const [n, density, runs] of cases) {
    const w = sparseVector(n * 31 + 1, n, density, runs);
    const nnz = n - zerosIn(w);
    for (const enc of [encodeBitmask(w), encodeDelta(w, 8), encodeDelta(w, 16)]) {
      assert.equal(enc.values.length, nnz);
      assert.deepEqual(decode(enc, [n]), w, `${enc.format} n=${n} density=${density}`);
    }
    const bm = encodeBitmask(w);
    assert.equal(bm.bytes, 4 * nnz + Math.ceil(n / 8));
    // The bit layout: weight i at byte i >> 3, bit i & 7.
    for (let i = 0; i < n; i++) assert.equal((bm.indices[i >> 3] >> (i & 7)) & 1, w[i] ? 1 : 0);
    const d8 = encodeDelta(w, 8), d16 = encodeDelta(w, 16);
    if (runs) {
      assert.ok(d8.indices.length > nnz && d16.indices.length > nnz, "escapes for long runs");
    }
    const best = sparseEncode(w);
    const smallest = Math.min(bm.bytes, d8.bytes, d16.bytes);
    if (smallest >= 4 * n) assert.equal(best, undefined);
    else assert.equal(best!.bytes, smallest);
  }
  // Delta by hand: zeros before each value; 300 zeros take one escape (255) and 45.
  const w = new Float32Array(310);
  w[2] = 1;
  w[3] = 2;
  w[304] = 3;
  const d = encodeDelta(w, 8);
  assert.deepEqual(Array.from(d.indices), [2, 0, 255, 45]);
  assert.deepEqual(Array.from(d.values), [1, 2, 3]);
  assert.deepEqual(decode(d, [31, 10]), w);
});

Deno.test("sparse formats: the decoder rejects malformed inputs with typed errors", () => {
  const w = sparseVector(5, 20, 0.5);
  const bm = encodeBitmask(w);
  const node = (attrs: Record<string, unknown>) =>
    new Node("bad", "SparseWeight", "ai.sqz", [], [], attrs as Node["attrs"]);
  const op = SQZ_SPARSE_OPS["ai.sqz.SparseWeight"];
  const vals: Tensor = { type: "float32", dims: [bm.values.length], data: bm.values };
  const mask: Tensor = { type: "uint8", dims: [bm.indices.length], data: bm.indices };
  const call = (attrs: Record<string, unknown>, ins: Tensor[]) => () =>
    op(ins, jsContext(node(attrs), 1));
  assert.throws(call({ format: "bitmask" }, [vals, mask]), ModelError); // no shape
  assert.throws(call({ shape: [20], format: "csr" }, [vals, mask]), ArgumentError);
  assert.throws(call({ shape: [21, 2], format: "bitmask" }, [vals, mask]), ShapeError);
  const fewer: Tensor = { type: "float32", dims: [1], data: bm.values.slice(0, 1) };
  assert.throws(call({ shape: [20], format: "bitmask" }, [fewer, mask]), ModelError);
  const past = Uint8Array.from(bm.indices);
  past[2] |= 0x80; // weight 23 of 20
  assert.throws(
    call({ shape: [20], format: "bitmask" }, [vals, { ...mask, data: past }]),
    ModelError,
  );
  const d = encodeDelta(w, 8);
  const gaps: Tensor = { type: "uint8", dims: [d.indices.length], data: d.indices };
  assert.throws(call({ shape: [10], format: "delta" }, [vals, gaps]), ModelError);
  const f64: Tensor = { type: "float64", dims: [1], data: new Float64Array(1) };
  assert.throws(call({ shape: [20], format: "delta" }, [f64, gaps]), ShapeError);
});

// ---- magnitude pruning ----

Deno.test("zeroSmallest: exactly k zeros, the k smallest magnitudes, ties by position", () => {
  for (let seed = 1; seed <= 20; seed++) {
    const r = rng(seed);
    // Few distinct magnitudes, so there are many ties.
    const arrays = [1 + Math.floor(r() * 50), 1 + Math.floor(r() * 300), 7].map((n) =>
      Float32Array.from({ length: n }, () => (Math.floor(r() * 9) - 4) / 4 || 0.25)
    );
    const total = arrays.reduce((s, a) => s + a.length, 0);
    const k = Math.floor(r() * total);
    const all = arrays.flatMap((a, ai) => Array.from(a, (x, i) => ({ m: Math.abs(x), ai, i })));
    all.sort((p, q) => p.m - q.m || p.ai - q.ai || p.i - q.i);
    const expect = new Set(all.slice(0, k).map((e) => `${e.ai}:${e.i}`));
    const copies = arrays.map((a) => a.slice());
    zeroSmallest(copies, k);
    copies.forEach((c, ai) =>
      c.forEach((x, i) => {
        assert.equal(x === 0, expect.has(`${ai}:${i}`), `seed ${seed} at ${ai}:${i}`);
        if (x !== 0) assert.equal(x, arrays[ai][i]);
      })
    );
  }
});

Deno.test("prune unstructured per layer: exact sparsity, sparse storage, same outputs as dense", async () => {
  const ws = mlpWeights(1);
  const bytes = mlp(ws);
  const g = importModel(bytes);
  const res = prunePass(g, recipe({ prune: { sparsity: 0.7, scope: "layer" } }));
  assert.deepEqual(res.layers.map((l) => l.name), ["fc1", "fc2", "fc3"]);
  for (
    const [name, l] of [["W1", res.layers[0]], ["W2", res.layers[1]], [
      "W3",
      res.layers[2],
    ]] as const
  ) {
    const v = g.values.get(name)!;
    assert.equal(v.producer?.qualifiedOp, "ai.sqz.SparseWeight", name);
    const w = dense(v), orig = ws[name].data;
    assert.equal(zerosIn(w), Math.round(0.7 * orig.length), name);
    assert.equal(l.nonzeros, orig.length - Math.round(0.7 * orig.length));
    assert.equal(l.params, orig.length);
    // The survivors are the largest and unchanged.
    let maxZeroed = 0, minKept = Infinity;
    w.forEach((x, i) => {
      if (x === 0) maxZeroed = Math.max(maxZeroed, Math.abs(orig[i]));
      else {
        assert.equal(x, orig[i]);
        minKept = Math.min(minKept, Math.abs(x));
      }
    });
    assert.ok(maxZeroed <= minKept);
    assert.ok(l.bytesAfter < l.bytesBefore, `${name}: ${l.bytesAfter} < ${l.bytesBefore}`);
  }
  // fc1 and fc2 count their bias; fc3 is a MatMul without one.
  assert.equal(res.layers[0].bytesBefore, 4 * (128 * 64 + 128));
  assert.equal(res.layers[2].bytesBefore, 4 * 320);
  // Through the artifact: the sparse model computes exactly what the dense pruned one does.
  const artifact = exportModel(g);
  const g2 = importModel(artifact);
  assert.equal(g2.nodes.filter((n) => n.qualifiedOp === "ai.sqz.SparseWeight").length, 3);
  const x = input(9, [4, 64]);
  const want = await run(mlp({ ...ws, ...weightsOf(g, ["W1", "W2", "W3"]) }), x);
  assert.deepEqual(await run(artifact, x), want);
  const full = await run(bytes, x);
  assert.ok(maxDiff(full, want) > 0, "pruning changed the outputs");
});

Deno.test("prune unstructured global: one threshold, small layers kept dense", async () => {
  const ws = mlpWeights(2);
  const g = importModel(mlp(ws));
  const res = prunePass(g, recipe({ prune: { sparsity: 0.8, scope: "global" } }));
  // fc3 has 320 weights, below GLOBAL_MIN_PARAMS.
  assert.deepEqual(res.layers.map((l) => l.name), ["fc1", "fc2"]);
  assert.ok(res.notes.some((n) => n.startsWith("fc3:")));
  assert.ok(g.values.get("W3")!.constant);
  const w1 = dense(g.values.get("W1")!), w2 = dense(g.values.get("W2")!);
  const total = w1.length + w2.length;
  assert.equal(zerosIn(w1) + zerosIn(w2), Math.round(0.8 * total));
  let maxZeroed = 0, minKept = Infinity;
  for (const [w, o] of [[w1, ws.W1.data], [w2, ws.W2.data]]) {
    w.forEach((x, i) => {
      if (x === 0) maxZeroed = Math.max(maxZeroed, Math.abs(o[i]));
      else minKept = Math.min(minKept, Math.abs(x));
    });
  }
  assert.ok(maxZeroed <= minKept, "one threshold across layers");
  // Per-layer sparsities differ (fc2's weights are spread like fc1's, but K differs).
  const x = input(3, [2, 64]);
  const want = await run(mlp({ ...ws, ...weightsOf(g, ["W1", "W2"]) }), x);
  assert.deepEqual(await run(exportModel(g), x), want);
});

/** Asserts the N:M property on a [rows, K] view of w (orig o): N largest of each group kept. */
function checkNM(
  w: Float32Array,
  o: Float32Array,
  [rows, K, rs, ks]: number[],
  N: number,
  M: number,
  what: string,
): void {
  for (let row = 0; row < rows; row++) {
    for (let k0 = 0; k0 < K; k0 += M) {
      const idx = Array.from({ length: Math.min(M, K - k0) }, (_, j) => row * rs + (k0 + j) * ks);
      const kept = idx.filter((i) => w[i] !== 0);
      assert.equal(kept.length, Math.min(N, idx.length), `${what} row ${row} group ${k0}`);
      const sorted = [...idx].sort((a, b) => Math.abs(o[b]) - Math.abs(o[a]) || a - b);
      assert.deepEqual(kept, sorted.slice(0, kept.length).sort((a, b) => a - b));
      for (const i of kept) assert.equal(w[i], o[i]);
    }
  }
}

Deno.test("prune N:M: at most N non-zeros in every M along K, the N largest kept", async () => {
  for (const pattern of ["2:4", "1:4", "3:8"]) {
    const [N, M] = pattern.split(":").map(Number);
    const ws = cnnWeights(4);
    const mws = mlpWeights(4);
    const gc = importModel(cnn(ws));
    const gm = importModel(mlp(mws));
    const r = recipe({ prune: { pattern } });
    const rc = prunePass(gc, r), rm = prunePass(gm, r);
    // conv1's K = 3·3·3 = 27 has no whole groups: it stays dense.
    assert.deepEqual(rc.layers.map((l) => [l.name, l.method]), [
      ["conv2", `pruned ${pattern}`],
      ["fc", `pruned ${pattern}`],
    ]);
    assert.ok(rc.notes.some((n) => n.startsWith("conv1: K = 27 is not a multiple")));
    assert.deepEqual(gc.values.get("C1")!.constant!.data, ws.C1.data);
    assert.equal(rm.layers.length, 3);
    // [rows, K, row stride, K stride]: Conv and Gemm transB rows are contiguous, Gemm/MatMul
    // [K, N] weights run along columns.
    const views: [Float32Array, Float32Array, number[]][] = [
      [dense(gc.values.get("C2")!), ws.C2.data, [8, 144, 144, 1]],
      [dense(gc.values.get("F")!), ws.F.data, [5, 8, 8, 1]],
      [dense(gm.values.get("W1")!), mws.W1.data, [128, 64, 64, 1]],
      [dense(gm.values.get("W2")!), mws.W2.data, [32, 128, 1, 32]],
      [dense(gm.values.get("W3")!), mws.W3.data, [10, 32, 1, 10]],
    ];
    for (const [w, o, view] of views) checkNM(w, o, view, N, M, pattern);
    const x = input(5, [1, 3, 9, 9]);
    const want = await run(cnn({ ...ws, ...weightsOf(gc, ["C2", "F"]) }), x);
    assert.deepEqual(await run(exportModel(gc), x), want);
  }
  // pruneNM on its own also handles a short last group (K = 27: groups 4·6 + 3).
  const o = randn(rng(11), 5 * 27);
  const w = o.slice();
  pruneNM(w, { rows: 5, k: 27, rowStride: 27, kStride: 1 }, 2, 4);
  checkNM(w, o, [5, 27, 27, 1], 2, 4, "short group");
});

Deno.test("prune: storage picks the smallest format, dense when sparse is not smaller", () => {
  const ws = mlpWeights(6);
  for (const [sparsity, want] of [[0.02, "dense"], [0.5, "bitmask"], [0.95, "delta"]] as const) {
    const g = importModel(mlp(ws));
    const res = prunePass(g, recipe({ prune: { sparsity, scope: "layer" } }));
    const v = g.values.get("W1")!;
    const l = res.layers.find((x) => x.name === "fc1")!;
    if (want === "dense") {
      assert.ok(v.constant);
      assert.equal(l.bytesAfter, l.bytesBefore);
      assert.ok(l.notes!.some((n) => n.includes("dense")));
    } else {
      assert.equal(v.producer!.attrs.format, want);
      assert.deepEqual(v.producer!.attrs.shape, [128, 64]);
    }
    assert.equal(zerosIn(dense(v)), Math.round(sparsity * 128 * 64));
  }
});

Deno.test("prune: binary/ternary layers are skipped; sparsity 0 changes nothing", () => {
  const g = importModel(mlp(mlpWeights(7)));
  const r = recipe({
    prune: { sparsity: 0.5, scope: "layer" },
    layers: { fc2: { method: "binary" } },
  });
  const res = prunePass(g, r);
  assert.deepEqual(res.layers.map((l) => l.name), ["fc1", "fc3"]);
  assert.ok(g.values.get("W2")!.constant);
  const g0 = importModel(mlp(mlpWeights(7)));
  const none = prunePass(g0, recipe({ prune: { sparsity: 0, scope: "global" } }));
  assert.equal(none.layers.length, 0);
  assert.ok(g0.nodes.every((n) => n.domain === ""));
});

Deno.test("prune: bad recipes are ArgumentErrors", () => {
  const g = importModel(mlp(mlpWeights(8)));
  const base = parseRecipe("int8");
  assert.throws(() => prunePass(g, base), ArgumentError);
  for (
    const prune of [
      { sparsity: 1, scope: "global", pattern: "unstructured" },
      { sparsity: -0.1, scope: "global", pattern: "unstructured" },
      { sparsity: 0.5, scope: "everywhere", pattern: "unstructured" },
      { sparsity: 0, scope: "global", pattern: "4:2" },
      { sparsity: 0, scope: "global", pattern: "2:64" },
      { sparsity: 0, scope: "global", pattern: "two:four" },
    ]
  ) {
    assert.throws(
      () => prunePass(g, { ...base, prune: prune as Recipe["prune"] }),
      ArgumentError,
      JSON.stringify(prune),
    );
  }
  assert.ok(g.nodes.every((n) => n.domain === ""), "a rejected recipe touches nothing");
});

// ---- structured pruning ----

/**
 * A small CNN with BatchNormalization, a residual Add, a Concat, a per-channel Mul, a depthwise
 * Conv, Flatten and two Gemms (x: [1, 3, 8, 8]):
 *   convA(8)+bnA+relu ─┬─ convB(8, 1×1)+bnB ─┐
 *                      └─ convC(8, 3×3) ─────┴─ Add ─ relu ─┬─ convD(6, 1×1) ─┐
 *                                                           └─ convE(4, 3×3) ─┴─ Concat(10) ─
 *   Mul(cq) ─ relu ─ convF(12, 1×1) ─ relu ─ dw(3×3 valid, 12) ─ relu ─ MaxPool 2 ─ Flatten(108)
 *   ─ fc1(16) ─ relu ─ fc2(5) = y
 */
function resWeights(seed: number): Weights {
  const r = rng(seed);
  const pos = (n: number) => Float32Array.from({ length: n }, () => 0.5 + r());
  const w = (dims: number[], s: number) => ({
    dims,
    data: randn(r, dims.reduce((a, b) => a * b, 1), s),
  });
  return {
    WA: w([8, 3, 3, 3], 0.5),
    bA: w([8], 0.1),
    sA: { dims: [8], data: pos(8) },
    BA: w([8], 0.2),
    mA: w([8], 0.1),
    vA: { dims: [8], data: pos(8) },
    WB: w([8, 8, 1, 1], 0.5),
    bB: w([8], 0.1),
    sB: { dims: [8], data: pos(8) },
    BB: w([8], 0.2),
    mB: w([8], 0.1),
    vB: { dims: [8], data: pos(8) },
    WC: w([8, 8, 3, 3], 0.2),
    bC: w([8], 0.1),
    WD: w([6, 8, 1, 1], 0.4),
    bD: w([6], 0.1),
    WE: w([4, 8, 3, 3], 0.2),
    bE: w([4], 0.1),
    cq: { dims: [1, 10, 1, 1], data: pos(10) },
    WF: w([12, 10, 1, 1], 0.4),
    bF: w([12], 0.1),
    WDW: w([12, 1, 3, 3], 0.4),
    bDW: w([12], 0.1),
    W1: w([16, 108], 0.1),
    b1: w([16], 0.1),
    W2: w([5, 16], 0.3),
    b2: w([5], 0.1),
  };
}

const OUT_DIMS: Record<string, number[]> = { y: [1, 5], d: [1, 6, 8, 8], et: [1, 4, 8, 8] };

function resnet(ws: Weights, extra: NodeProto[] = [], outputs = ["y"]): Uint8Array {
  const p1 = { pads: [1, 1, 1, 1] };
  return makeModel({
    nodes: [
      node("Conv", ["x", "WA", "bA"], ["a0"], p1, "convA"),
      node("BatchNormalization", ["a0", "sA", "BA", "mA", "vA"], ["a1"], {}, "bnA"),
      node("Relu", ["a1"], ["a"], {}, "reluA"),
      node("Conv", ["a", "WB", "bB"], ["b0"], {}, "convB"),
      node("BatchNormalization", ["b0", "sB", "BB", "mB", "vB"], ["b"], {}, "bnB"),
      node("Conv", ["a", "WC", "bC"], ["c"], p1, "convC"),
      node("Add", ["b", "c"], ["s"], {}, "add"),
      node("Relu", ["s"], ["r"], {}, "reluS"),
      node("Conv", ["r", "WD", "bD"], ["d"], {}, "convD"),
      node("Conv", ["r", "WE", "bE"], ["e"], p1, "convE"),
      node("Concat", ["d", "e"], ["q0"], { axis: 1 }, "cat"),
      node("Mul", ["q0", "cq"], ["q1"], {}, "mul"),
      node("Relu", ["q1"], ["q"], {}, "reluQ"),
      node("Conv", ["q", "WF", "bF"], ["f0"], {}, "convF"),
      node("Relu", ["f0"], ["f"], {}, "reluF"),
      node("Conv", ["f", "WDW", "bDW"], ["g0"], { group: 12 }, "dw"),
      node("Relu", ["g0"], ["g1"], {}, "reluG"),
      node("MaxPool", ["g1"], ["g2"], { kernel_shape: [2, 2], strides: [2, 2] }, "pool"),
      node("Flatten", ["g2"], ["h"], {}, "flat"),
      node("Gemm", ["h", "W1", "b1"], ["i0"], { transB: 1 }, "fc1"),
      node("Relu", ["i0"], ["i"], {}, "reluI"),
      node("Gemm", ["i", "W2", "b2"], ["y"], { transB: 1 }, "fc2"),
      ...extra,
    ],
    inputs: [valueInfo("x", DataType.FLOAT, [1, 3, 8, 8])],
    outputs: outputs.map((o) => valueInfo(o, DataType.FLOAT, OUT_DIMS[o])),
    initializers: init(ws),
  });
}

const structured = (ratio: number, norm = "l1") => recipe({ structured: { ratio, norm } });

/** Zeroes output channel c of a [C, ...] weight. */
function zeroFilter(w: { dims: number[]; data: Float32Array }, c: number): void {
  const per = w.data.length / w.dims[0];
  w.data.fill(0, c * per, (c + 1) * per);
}

Deno.test("structured: ratio 0 leaves the model exactly as it was", async () => {
  const bytes = resnet(resWeights(1));
  const g = importModel(bytes);
  const res = structuredPass(g, structured(0));
  assert.equal(res.layers.length, 0);
  const x = input(2, [1, 3, 8, 8]);
  assert.deepEqual(await run(exportModel(g), x), await run(bytes, x));
});

Deno.test("structured: removing all-zero filters does not change the outputs", async () => {
  const ws = resWeights(3);
  // Per group, floor(0.25 · C) filters are zeroed, so ratio 0.25 removes exactly those.
  // Where a padded 3×3 Conv reads the channel, its constant is made 0 (a dead ReLU), since a
  // bias fold cannot be exact at the borders; elsewhere a non-zero constant exercises the fold.
  for (const c of [1, 5]) {
    zeroFilter(ws.WA, c);
    ws.mA.data[c] = ws.bA.data[c];
    ws.BA.data[c] = -0.5; // BN(bias) = −0.5, ReLU → 0
  }
  for (const c of [2, 6]) {
    zeroFilter(ws.WB, c);
    zeroFilter(ws.WC, c);
    ws.mB.data[c] = ws.bB.data[c];
    ws.BB.data[c] = -1;
    ws.bC.data[c] = 0.4; // −1 + 0.4 < 0: ReLU → 0
  }
  zeroFilter(ws.WD, 3);
  ws.bD.data[3] = 0.7; // through Concat, Mul, ReLU: a constant 0.7·cq[3] folded into convF
  zeroFilter(ws.WE, 0);
  ws.bE.data[0] = 0.25; // Concat channel 6
  for (const c of [0, 4, 11]) {
    zeroFilter(ws.WF, c);
    ws.bF.data[c] = 0.3 + c / 20; // through ReLU, the valid depthwise conv, MaxPool, Flatten → fc1
  }
  for (const c of [1, 2, 8, 15]) {
    zeroFilter(ws.W1, c);
    ws.b1.data[c] = 0.2 + c / 50; // → fc2
  }
  const bytes = resnet(ws);
  for (const norm of ["l1", "l2"]) {
    const g = importModel(bytes);
    const res = structuredPass(g, structured(0.25, norm));
    const dims = (n: string) => g.nodes.find((x) => x.name === n)!.inputs[1]!.constant!.dims;
    assert.deepEqual(dims("convA"), [6, 3, 3, 3]);
    assert.deepEqual(dims("convB"), [6, 6, 1, 1]);
    assert.deepEqual(dims("convC"), [6, 6, 3, 3]);
    assert.deepEqual(dims("convD"), [5, 6, 1, 1]);
    assert.deepEqual(dims("convE"), [3, 6, 3, 3]);
    assert.deepEqual(dims("convF"), [9, 8, 1, 1]);
    assert.deepEqual(dims("dw"), [9, 1, 3, 3]);
    assert.equal(g.nodes.find((x) => x.name === "dw")!.attrs.group, 9);
    assert.deepEqual(dims("fc1"), [12, 81]);
    assert.deepEqual(dims("fc2"), [5, 12]);
    const bnA = g.nodes.find((x) => x.name === "bnA")!;
    assert.deepEqual(bnA.inputs.slice(1).map((v) => v!.constant!.dims), [[6], [6], [6], [6]]);
    assert.deepEqual(g.nodes.find((x) => x.name === "mul")!.inputs[1]!.constant!.dims, [
      1,
      8,
      1,
      1,
    ]);
    // The survivors are the non-zero filters, in order.
    const wa = g.nodes.find((x) => x.name === "convA")!.inputs[1]!.constant!.data as Float32Array;
    assert.deepEqual(wa.slice(0, 27), ws.WA.data.slice(0, 27));
    assert.deepEqual(wa.slice(27, 54), ws.WA.data.slice(54, 81));
    const byName = Object.fromEntries(res.layers.map((l) => [l.name, l]));
    assert.equal(byName.convA.method, `structured ${norm}: filters 6/8`);
    assert.equal(byName.convF.method, `structured ${norm}: filters 9/12, inputs 8/10`);
    assert.equal(byName.fc2.method, `structured ${norm}: inputs 12/16`);
    assert.equal(byName.fc2.params, 80);
    for (const l of res.layers) assert.ok(l.macsAfter! < l.macsBefore!, l.name);
    assert.ok(res.notes.some((n) => n.includes("convB, convC") || n.includes("convC, convB")));
    assert.ok(res.notes.some((n) => n.startsWith("fc2: not pruned: reaches graph output")));
    const x = input(4, [1, 3, 8, 8]);
    const want = await run(bytes, x);
    const got = await run(exportModel(g), x);
    assert.ok(maxDiff(got, want) <= 1e-5 * maxAbs(want), `${norm}: ${maxDiff(got, want)}`);
  }
});

Deno.test("structured: random filters pruned, the model runs in sqz and onnxruntime alike", async () => {
  const ws = resWeights(5);
  const bytes = resnet(ws);
  const g = importModel(bytes);
  const res = structuredPass(g, structured(0.5, "l2"));
  assert.ok(res.layers.length >= 8);
  const artifact = exportModel(g);
  assert.ok(artifact.length < bytes.length * 0.6, `${artifact.length} of ${bytes.length} bytes`);
  const x = input(6, [1, 3, 8, 8]);
  const ours = await run(artifact, x);
  assert.equal(ours.length, 5);
  const ort = await ortRunner(artifact);
  const theirs = (await ort.run({ x: { dims: x.dims, data: x.data as Float32Array } })).y;
  await ort.release();
  assert.ok(maxDiff(ours, theirs.data) <= 1e-4 * Math.max(1, maxAbs(ours)));
  // Pruning half the channels changes the function, but not beyond recognition.
  const full = await run(bytes, x);
  assert.ok(maxDiff(ours, full) > 0);
});

Deno.test("structured: channels that reach an output or an unsupported op are kept", async () => {
  const ws = resWeights(7);
  // 'd' is also a graph output; 'e' also goes through a Transpose.
  const extra = [node("Transpose", ["e"], ["et"], { perm: [0, 1, 3, 2] }, "tr")];
  const bytes = resnet(ws, extra, ["y", "d", "et"]);
  const g = importModel(bytes);
  const res = structuredPass(g, structured(0.5));
  const names = res.layers.filter((l) => l.method.includes("filters")).map((l) => l.name);
  assert.ok(!names.includes("convD") && !names.includes("convE") && !names.includes("fc2"));
  assert.ok(names.includes("convA") && names.includes("convF"));
  assert.ok(res.notes.some((n) => n.startsWith("convD: not pruned: reaches graph output 'd'")));
  assert.ok(res.notes.some((n) => n.startsWith("convE: not pruned") && n.includes("Transpose")));
  const x = input(8, [1, 3, 8, 8]);
  const s = await Session.create(exportModel(g));
  const out = await s.run({ x });
  await s.release();
  assert.deepEqual(out.d.dims, [1, 6, 8, 8]);
  assert.deepEqual(out.et.dims, [1, 4, 8, 8]);
});

Deno.test("structured: bad recipes are ArgumentErrors", () => {
  const g = importModel(resnet(resWeights(9)));
  const base = parseRecipe("int8");
  assert.throws(() => structuredPass(g, base), ArgumentError);
  for (
    const s of [{ ratio: 1, norm: "l1" }, { ratio: -0.5, norm: "l1" }, { ratio: 0.5, norm: "l3" }]
  ) {
    assert.throws(
      () => structuredPass(g, { ...base, structured: s as Recipe["structured"] }),
      ArgumentError,
    );
  }
});
