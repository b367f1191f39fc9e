// Per-layer recipe settings: pruning, N:M, clustering, low-rank and structured pruning set by
// node name or op type (name beats op type beats the global section), recipes of per-layer
// settings only, the notes of layers a pass leaves alone (binary / ternary layers, Gemms int8
// cannot take), Gemm alpha/beta folded by int8, and every validation error.
import assert from "node:assert/strict";
import { ArgumentError, compress, parseRecipe, type Recipe, Session } from "../src/mod.ts";
import type { CompressReport } from "../src/compress/compress.ts";
import { settingsFor, usesPass } from "../src/compress/recipe.ts";
import { int8Layers, quantizableLayers } from "../src/compress/int8.ts";
import { importModel } from "../src/onnx/import.ts";
import type { Value } from "../src/graph/ir.ts";
import { TS_OPS } from "../src/ops/registry.ts";
import { jsContext } from "../src/ops/types.ts";
import {
  DataType,
  decodeModel,
  makeModel,
  node,
  tensorFromArray,
  valueInfo,
} from "../src/onnx/proto.ts";
import { zooInput, zooModel } from "../bench/model_zoo.ts";
import { ortRunner } from "../bench/models.ts";
import { rng } from "./util.ts";

const MNIST = Deno.readFileSync(new URL("../models/mnist_cnn.onnx", import.meta.url));
/** Weight sizes of the MNIST CNN: conv1 [16,1,3,3], conv2 [32,16,3,3], fc1 [64,1568], fc2 [10,64]. */
const SIZE = { conv1: 144, conv2: 4608, fc1: 100352, fc2: 640 };

/** The dense weight of a value: its constant, or what its ai.sqz decoders give. */
function dense(v: Value): Float32Array {
  if (v.constant) return v.constant.data as Float32Array;
  const p = v.producer!;
  const fn = TS_OPS[p.qualifiedOp];
  assert.ok(fn, `no decoder for ${p.qualifiedOp}`);
  const ins = p.inputs.map((x) =>
    x!.constant ?? { type: "float32" as const, dims: [dense(x!).length], data: dense(x!) }
  );
  return fn(ins, jsContext(p, 13))[0].data as Float32Array;
}

/** Each layer's weight (input 1) by node name, decoded; `encoded` names those not constant. */
function layerWeights(bytes: Uint8Array) {
  const g = importModel(bytes);
  const w: Record<string, Float32Array> = {}, encoded: string[] = [];
  for (const n of g.nodes) {
    if (n.op !== "Conv" && n.op !== "Gemm" && n.op !== "MatMul") continue;
    w[n.name] = dense(n.inputs[1]!);
    if (!n.inputs[1]!.constant) encoded.push(n.name);
  }
  return { w, encoded, nodes: g.nodes.map((n) => n.name) };
}

const ORIGINAL = layerWeights(MNIST).w;

const rows = (r: CompressReport) => Object.fromEntries(r.layers.map((l) => [l.name, l]));
const methods = (r: CompressReport) => Object.fromEntries(r.layers.map((l) => [l.name, l.method]));
const zeros = (w: Float32Array) => w.reduce((s, x) => s + (x === 0 ? 1 : 0), 0);
const kept = (n: number, s: number) => n - Math.round(s * n);

/** Layers whose weights must be exactly as in the float model. */
function untouched(bytes: Uint8Array, names: string[]): void {
  const { w, encoded } = layerWeights(bytes);
  for (const n of names) {
    assert.ok(!encoded.includes(n), `${n} is encoded`);
    assert.deepEqual(w[n], ORIGINAL[n], `${n} changed`);
  }
}

/** Pruned by magnitude: the survivors are unchanged and no zeroed weight was larger. */
function magnitudePruned(w: Float32Array, orig: Float32Array, name: string): void {
  let maxGone = 0, minKept = Infinity;
  for (let i = 0; i < w.length; i++) {
    if (w[i] === 0) maxGone = Math.max(maxGone, Math.abs(orig[i]));
    else {
      assert.equal(w[i], orig[i], `${name}[${i}]`);
      minKept = Math.min(minKept, Math.abs(orig[i]));
    }
  }
  assert.ok(maxGone <= minKept, `${name}: zeroed ${maxGone} > kept ${minKept}`);
}

async function runs(bytes: Uint8Array, input: string, dims: number[], seed: number) {
  const s = await Session.create(bytes);
  const n = dims.reduce((a, b) => a * b, 1);
  const r = rng(seed);
  const x = { type: "float32" as const, dims, data: Float32Array.from({ length: n }, r) };
  const y = Object.values(await s.run({ [input]: x }))[0];
  await s.release();
  assert.ok(Array.from(y.data as Float32Array).every(Number.isFinite));
  return y;
}

// ---- parsing and validation ----

Deno.test("recipe: per-layer settings parse and resolve name > op type > global, setting by setting", () => {
  const r = parseRecipe({
    method: "int8",
    prune: { sparsity: 0.5, scope: "global" },
    cluster: { clusters: 32 },
    lowrank: { energy: 0.9 },
    structured: { ratio: 0.25 },
    layers: {
      Gemm: { sparsity: 0.8, clusters: 16, rank: 4, structured: 0.5, method: "int4" },
      fc1: { sparsity: 0.9, method: "none" },
      fc2: { pattern: "2:4", clusters: 0, rank: 0, structured: 0 },
      conv2: { energy: 0.99, sparsity: 0 },
    },
  });
  assert.deepEqual(r.layers.fc2, { pattern: "2:4", clusters: 0, rank: 0, structured: 0 });
  // Global only.
  assert.deepEqual(settingsFor(r, "conv1", "Conv"), {
    method: "int8",
    prune: { sparsity: 0.5, own: false },
    clusters: 32,
    lowrank: { energy: 0.9 },
    structured: 0.25,
  });
  // The node's own entry for what it sets, the op type's for the rest.
  assert.deepEqual(settingsFor(r, "fc1", "Gemm"), {
    method: "none",
    prune: { sparsity: 0.9, own: true },
    clusters: 16,
    lowrank: { rank: 4 },
    structured: 0.5,
  });
  // 0 turns a pass off whatever the op type and the global section say.
  assert.deepEqual(settingsFor(r, "fc2", "Gemm"), {
    method: "int4",
    prune: { pattern: "2:4", own: true },
  });
  assert.deepEqual(settingsFor(r, "conv2", "Conv"), {
    method: "int8",
    clusters: 32,
    lowrank: { energy: 0.99 },
    structured: 0.25,
  });
  // A low-rank factor follows its layer's entry.
  assert.deepEqual(settingsFor(r, "fc1::lowrank", "Gemm"), settingsFor(r, "fc1", "Gemm"));
  // Per-layer settings alone still ask for the pass; zeros alone do not.
  const only = parseRecipe({ layers: { fc1: { sparsity: 0.9 }, fc2: { clusters: 0 } } });
  assert.equal(only.prune, undefined);
  assert.ok(usesPass(only, "prune"));
  assert.ok(!usesPass(only, "cluster") && !usesPass(only, "lowrank"));
  assert.ok(!usesPass(parseRecipe({ layers: { fc1: { rank: 0, structured: 0 } } }), "lowrank"));
  assert.ok(usesPass(parseRecipe({ layers: { fc1: { energy: 0.5 } } }), "lowrank"));
  assert.ok(usesPass(parseRecipe({ layers: { Conv: { structured: 0.5 } } }), "structured"));
  // An N:M section has no sparsity.
  assert.deepEqual(parseRecipe({ prune: { pattern: "2:4" } }).prune, {
    scope: "global",
    pattern: "2:4",
  });
  // Ternary combines with pruning.
  assert.equal(
    parseRecipe({ layers: { fc1: { method: "ternary", sparsity: 0.5 } } }).layers.fc1.sparsity,
    0.5,
  );
});

Deno.test("recipe: every bad per-layer setting is an ArgumentError that names it", () => {
  const bad: [unknown, RegExp][] = [
    [5, /layers\.fc1 must be an object/],
    [{}, /layers\.fc1 sets nothing/],
    [{ ratio: 0.5 }, /unknown key 'ratio' in layers\.fc1 \(expected method, sparsity/],
    [{ method: "int3" }, /layers\.fc1\.method must be one of/],
    [{ sparsity: 1 }, /layers\.fc1\.sparsity must be a number in \[0, 0\.999\], got 1/],
    [{ sparsity: 0.9995 }, /layers\.fc1\.sparsity must be a number in \[0, 0\.999\]/],
    [{ sparsity: -0.1 }, /layers\.fc1\.sparsity must be a number in \[0, 0\.999\]/],
    [{ sparsity: "0.5" }, /layers\.fc1\.sparsity must be a number/],
    [{ pattern: "5:4" }, /layers\.fc1\.pattern must be "N:M" with 0 < N < M ≤ 32/],
    [{ pattern: "2:64" }, /layers\.fc1\.pattern must be "N:M"/],
    [{ pattern: "unstructured" }, /layers\.fc1\.pattern must be "N:M"/],
    [{ pattern: 24 }, /layers\.fc1\.pattern must be "N:M"/],
    [
      { sparsity: 0.5, pattern: "2:4" },
      /layers\.fc1 sets both sparsity and pattern, which conflict/,
    ],
    [
      { clusters: 1 },
      /layers\.fc1\.clusters must be 0 \(not clustered\) or an integer in \[2, 256\], got 1/,
    ],
    [
      { clusters: 257 },
      /layers\.fc1\.clusters must be 0 \(not clustered\) or an integer in \[2, 256\]/,
    ],
    [{ clusters: 2.5 }, /layers\.fc1\.clusters must be 0/],
    [{ clusters: "8" }, /layers\.fc1\.clusters must be 0/],
    [{ rank: -1 }, /layers\.fc1\.rank must be 0 \(not factored\) or an integer in \[1, 1048576\]/],
    [{ rank: 1.5 }, /layers\.fc1\.rank must be 0 \(not factored\)/],
    [{ energy: 0 }, /layers\.fc1\.energy must be a number in \(0, 1\], got 0/],
    [{ energy: 1.5 }, /layers\.fc1\.energy must be a number in \(0, 1\]/],
    [{ rank: 4, energy: 0.9 }, /layers\.fc1 sets both rank and energy; give one/],
    [{ structured: 0.96 }, /layers\.fc1\.structured must be a number in \[0, 0\.95\]/],
    [{ structured: -0.5 }, /layers\.fc1\.structured must be a number in \[0, 0\.95\]/],
    [
      { method: "binary", sparsity: 0.5 },
      /layers\.fc1: sparsity does not combine with method "binary"/,
    ],
    [{ method: "binary", pattern: "2:4" }, /pattern does not combine with method "binary"/],
    [
      { method: "binary", clusters: 16, rank: 2 },
      /clusters, rank does not combine with method "binary"/,
    ],
    [
      { method: "ternary", clusters: 16 },
      /clusters does not combine with method "ternary" \(ternary combines with pruning only\)/,
    ],
    [{ method: "ternary", energy: 0.9 }, /energy does not combine with method "ternary"/],
    [{ method: "ternary", structured: 0.5 }, /structured does not combine with method "ternary"/],
  ];
  for (const [entry, want] of bad) {
    assert.throws(
      () => parseRecipe({ layers: { fc1: entry } }),
      (e: Error) => e instanceof ArgumentError && want.test(e.message),
      `${JSON.stringify(entry)} → ${want}`,
    );
  }
  // Zeros are no conflict: they switch passes off.
  parseRecipe({ layers: { fc1: { method: "binary", sparsity: 0, clusters: 0, rank: 0 } } });
  assert.throws(
    () => parseRecipe({ prune: { sparsity: 0.5, pattern: "2:4" } }),
    /prune\.sparsity and prune\.pattern "2:4" conflict/,
  );
  assert.throws(
    () => parseRecipe({ prune: { sparsity: 0.9995 } }),
    /prune\.sparsity must be a number in \[0, 0\.999\]/,
  );
  assert.throws(() => parseRecipe({ layers: [] }), /layers must be an object/);
});

Deno.test("recipe presets: prune:<sparsity> needs a number in [0, 0.999]; svd and cluster alike", () => {
  assert.equal(parseRecipe("prune:0.999").prune?.sparsity, 0.999);
  assert.equal(parseRecipe("prune:0").prune?.sparsity, 0);
  assert.equal(parseRecipe("prune:.5").prune?.sparsity, 0.5);
  assert.equal(parseRecipe("svd:1").lowrank?.energy, 1);
  assert.equal(parseRecipe("cluster:256").cluster?.clusters, 256);
  const bad: [string, RegExp][] = [
    ["prune:", /prune:<sparsity> needs a number in \[0, 0\.999\], got ''/],
    ["prune", /prune:<sparsity> needs a number in \[0, 0\.999\], got ''/],
    ["prune:abc", /prune:<sparsity> needs a number in \[0, 0\.999\], got 'abc'/],
    ["prune:0.9995", /prune:<sparsity> needs a number in \[0, 0\.999\], got '0\.9995'/],
    ["prune:1", /prune:<sparsity> needs a number in \[0, 0\.999\]/],
    ["prune:-0.1", /prune:<sparsity> needs a number/],
    ["prune:0x1", /prune:<sparsity> needs a number/],
    ["prune:Infinity", /prune:<sparsity> needs a number/],
    ["prune: 0.5", /prune:<sparsity> needs a number/],
    ["prune:0.9:1", /got '0\.9:1'/],
    ["svd:", /svd:<energy> needs a number in \(0, 1\], got ''/],
    ["svd:0", /svd:<energy> needs a number in \(0, 1\]/],
    ["cluster:", /cluster:<k> needs an integer k in \[2, 256\], got ''/],
    ["cluster:0x10", /cluster:<k> needs an integer k/],
    ["int8:", /int8:w<bits> needs bits in 2\.\.8/],
    ["int8:w9", /int8:w<bits> needs bits in 2\.\.8.*got 'w9'/],
    ["int8-dynamic:w1", /int8-dynamic:w<bits> needs bits in 2\.\.8/],
  ];
  for (const [name, want] of bad) {
    assert.throws(
      () => parseRecipe(name),
      (e: Error) => e instanceof ArgumentError && want.test(e.message),
      `${name} → ${want}`,
    );
  }
});

// ---- MNIST CNN (conv1, conv2, fc1, fc2) ----

Deno.test("MNIST CNN: a recipe of one layer's sparsity prunes that layer alone", async () => {
  const { model, report } = await compress(MNIST, { layers: { fc1: { sparsity: 0.9 } } });
  assert.deepEqual(Object.keys(rows(report)), ["fc1"]);
  const fc1 = rows(report).fc1;
  assert.equal(fc1.method, "pruned 90%");
  assert.equal(fc1.params, SIZE.fc1);
  assert.equal(fc1.nonzeros, kept(SIZE.fc1, 0.9));
  const { w, encoded } = layerWeights(model);
  assert.deepEqual(encoded, ["fc1"]); // stored sparse
  assert.equal(zeros(w.fc1), Math.round(0.9 * SIZE.fc1));
  magnitudePruned(w.fc1, ORIGINAL.fc1, "fc1");
  untouched(model, ["conv1", "conv2", "fc2"]);
  await runs(model, "input", [2, 1, 28, 28], 1);
});

Deno.test("MNIST CNN: sparsity by name beats op type beats the prune section; 0 keeps a layer dense", async () => {
  const { model, report } = await compress(MNIST, {
    prune: { sparsity: 0.5, scope: "layer" },
    layers: { Gemm: { sparsity: 0.8 }, fc2: { sparsity: 0.3 }, conv1: { sparsity: 0 } },
  });
  assert.deepEqual(methods(report), {
    conv2: "pruned 50%",
    fc1: "pruned 80%",
    fc2: "pruned 30%",
  });
  const r = rows(report);
  assert.equal(r.conv2.nonzeros, kept(SIZE.conv2, 0.5));
  assert.equal(r.fc1.nonzeros, kept(SIZE.fc1, 0.8));
  assert.equal(r.fc2.nonzeros, kept(SIZE.fc2, 0.3));
  const { w } = layerWeights(model);
  for (const n of ["conv2", "fc1", "fc2"]) magnitudePruned(w[n], ORIGINAL[n], n);
  untouched(model, ["conv1"]);
});

Deno.test("MNIST CNN: global scope leaves layers with their own sparsity or pattern out of the threshold", async () => {
  const { model, report } = await compress(MNIST, {
    prune: { sparsity: 0.8 },
    layers: { fc1: { sparsity: 0.5 }, fc2: { pattern: "1:4" } },
  });
  // conv1 (144 weights) is below GLOBAL_MIN_PARAMS, so conv2 is the whole pool: exactly 80%.
  assert.deepEqual(methods(report), {
    conv2: "pruned 80%",
    fc1: "pruned 50%",
    fc2: "pruned 1:4",
  });
  const r = rows(report);
  assert.equal(r.conv2.nonzeros, kept(SIZE.conv2, 0.8));
  assert.equal(r.fc1.nonzeros, kept(SIZE.fc1, 0.5));
  assert.equal(r.fc2.nonzeros, SIZE.fc2 / 4);
  assert.ok(
    report.notes.includes("conv1: 144 weights, below the 1024 of global pruning; kept dense"),
  );
  assert.ok(
    report.notes.includes(
      "prune global: one magnitude threshold over 1 layers (4608 weights), 3686 set to zero; " +
        "fc1, fc2 pruned to their own settings, outside it",
    ),
    report.notes.join("\n"),
  );
  untouched(model, ["conv1"]);
  // The same pool without the overrides takes its 80% mostly from fc1: conv2 fares differently.
  const plain = await compress(MNIST, { prune: { sparsity: 0.8 } });
  assert.notEqual(rows(plain.report).conv2.nonzeros, r.conv2.nonzeros);
});

Deno.test("MNIST CNN: clusters per layer, by op type and by name, 0 = none", async () => {
  const { model, report } = await compress(MNIST, {
    cluster: { clusters: 32 },
    layers: { Conv: { clusters: 0 }, fc2: { clusters: 4 } },
  });
  assert.deepEqual(methods(report), { fc1: "32 clusters", fc2: "4 clusters" });
  const { w, encoded } = layerWeights(model);
  assert.deepEqual(encoded.sort(), ["fc1", "fc2"]);
  assert.ok(new Set(w.fc1).size <= 32 && new Set(w.fc1).size > 16);
  assert.equal(new Set(w.fc2).size, 4);
  untouched(model, ["conv1", "conv2"]);

  const only = await compress(MNIST, { layers: { conv2: { clusters: 16 } } });
  assert.deepEqual(methods(only.report), { conv2: "16 clusters" });
  assert.ok(new Set(layerWeights(only.model).w.conv2).size <= 16);
  untouched(only.model, ["conv1", "fc1", "fc2"]);
});

Deno.test("MNIST CNN: rank and energy per layer, rank 0 = not factored", async () => {
  const { model, report } = await compress(MNIST, { layers: { fc1: { rank: 8 } } });
  assert.deepEqual(methods(report), { fc1: "rank 8" });
  assert.equal(rows(report).fc1.nonzeros, 8 * (1568 + 64));
  const { w, nodes } = layerWeights(model);
  assert.ok(nodes.includes("fc1::lowrank"));
  assert.equal(w["fc1::lowrank"].length, 8 * 1568);
  assert.equal(w.fc1.length, 64 * 8);
  untouched(model, ["conv1", "conv2", "fc2"]);
  await runs(model, "input", [1, 1, 28, 28], 2);

  const mixed = await compress(MNIST, {
    lowrank: { rank: 4 },
    layers: { fc1: { rank: 0 }, conv1: { energy: 1 } },
  });
  // conv1 at full energy keeps its full rank, which saves nothing: a note, not a factoring.
  assert.deepEqual(methods(mixed.report), { conv2: "rank 4", fc2: "rank 4" });
  assert.ok(
    mixed.report.notes.some((n) => n.startsWith("conv1: rank 9") && n.includes("would not reduce")),
    mixed.report.notes.join("\n"),
  );
  untouched(mixed.model, ["conv1", "fc1"]);
});

Deno.test("MNIST CNN: structured ratio per layer; inputs of the next layer shrink with it", async () => {
  const { model, report } = await compress(MNIST, { layers: { conv2: { structured: 0.5 } } });
  assert.deepEqual(methods(report), {
    conv2: "structured l1: filters 16/32",
    fc1: "structured l1: inputs 784/1568",
  });
  untouched(model, ["conv1", "fc2"]);
  const y = await runs(model, "input", [2, 1, 28, 28], 3);
  assert.deepEqual(y.dims, [2, 10]);
});

// ---- LeNet (conv0, conv1, gemm0, gemm1, gemm2) ----

const lenet = zooModel("lenet");
const lenetX = (n: number, seed: number) => ({
  type: "float32" as const,
  dims: [n, ...lenet.itemDims],
  data: zooInput(lenet, n, seed),
});

Deno.test("LeNet: per-layer pruning, clustering and rank with int8 in one recipe", async () => {
  const { model, report } = await compress(
    lenet.bytes,
    {
      method: "int8",
      layers: {
        gemm0: { sparsity: 0.9 },
        conv1: { clusters: 16, method: "none" },
        gemm1: { rank: 8 },
        gemm2: { method: "none" },
      },
    },
    { calibration: [{ [lenet.inputName]: lenetX(4, 5) }] },
  );
  const by = methods(report);
  assert.equal(by.conv0, "int8");
  assert.equal(by.conv1, "16 clusters");
  assert.equal(by.gemm0, "pruned 90% + int8");
  assert.equal(by.gemm1, "rank 8 + int8");
  assert.equal(by["gemm1::lowrank"], "int8"); // the first factor follows gemm1's entry
  assert.equal(by.gemm2, undefined);
  // Pruned zeros stay zero once quantized.
  assert.ok(rows(report).gemm0.nonzeros <= kept(48000, 0.9));
  const s = await Session.create(model);
  const y = (await s.run({ [lenet.inputName]: lenetX(2, 6) }))[lenet.outputName];
  await s.release();
  assert.deepEqual(y.dims, [2, 10]);
  assert.ok(Array.from(y.data as Float32Array).every(Number.isFinite));
});

Deno.test("LeNet: binary layers are not pruned, clustered or factored (with a note); ternary is pruned", async () => {
  const bin = await compress(lenet.bytes, {
    method: "binary",
    prune: { sparsity: 0.5, scope: "layer" },
    layers: { conv1: { clusters: 16 } },
  });
  const by = methods(bin.report);
  // keepFirstLast: conv0 and gemm2 are not binary, so they are pruned (then int8).
  assert.match(by.conv0, /^pruned 50% \+ int8/);
  assert.match(by.gemm2, /^pruned 50% \+ int8/);
  for (const n of ["conv1", "gemm0", "gemm1"]) {
    assert.equal(by[n], "binary", n);
    assert.ok(
      bin.report.notes.includes(
        `${n}: binary keeps only the weights' signs (a pruned zero would become +1); not pruned`,
      ),
      n,
    );
  }
  assert.ok(
    bin.report.notes.includes(
      "conv1: binary keeps only the weights' signs, not shared values; not clustered",
    ),
  );
  const lr = await compress(lenet.bytes, {
    method: "int8",
    layers: { gemm0: { method: "binary" }, Gemm: { rank: 2 } },
  });
  assert.ok(
    lr.report.notes.includes(
      "gemm0: binary would binarize the activation between the two factors; not factored",
    ),
  );
  assert.equal(methods(lr.report).gemm0, "binary");

  const ter = await compress(lenet.bytes, {
    method: "ternary",
    cluster: { clusters: 16 },
    layers: { gemm0: { sparsity: 0.95 } },
  });
  const t = rows(ter.report);
  assert.equal(t.gemm0.method, "pruned 95% + ternary");
  assert.ok(t.gemm0.nonzeros <= kept(48000, 0.95), String(t.gemm0.nonzeros));
  assert.equal(t.gemm1.method, "ternary");
  for (const n of ["conv0", "conv1", "gemm0", "gemm1", "gemm2"]) {
    assert.ok(
      ter.report.notes.includes(
        `${n}: ternary replaces the weights by its own three levels per channel; not clustered`,
      ),
      n,
    );
  }
});

Deno.test("LeNet: structured ratios by name beat op type beat the section; a group takes its smallest", async () => {
  const { report } = await compress(lenet.bytes, {
    structured: { ratio: 0.5 },
    layers: { Conv: { structured: 0.25 }, conv1: { structured: 0 } },
  });
  assert.deepEqual(methods(report), {
    conv0: "structured l1: filters 5/6",
    conv1: "structured l1: inputs 5/6",
    gemm0: "structured l1: filters 60/120",
    gemm1: "structured l1: filters 42/84, inputs 60/120",
    gemm2: "structured l1: inputs 42/84",
  });
  assert.ok(report.notes.some((n) => n.startsWith("gemm2: not pruned: reaches graph output")));
  // Binary layers keep their filters, and say so.
  const bin = await compress(lenet.bytes, {
    method: "int8",
    layers: { gemm0: { method: "binary" }, Gemm: { structured: 0.5 } },
  });
  assert.ok(bin.report.notes.includes("gemm0: not pruned: 'gemm0' is binary"));
  assert.match(methods(bin.report).gemm1, /^structured l1: filters 42\/84/);
});

// ---- int8 and Gemm alpha / beta ----

/** x [2, 16] → g1 (alpha, beta, scalar C) → Relu → g2 (C [2, 4]: per row) → y [2, 4]. */
function gemmModel(): Uint8Array {
  const r = rng(11);
  const v = (n: number) => Float32Array.from({ length: n }, () => r() - 0.5);
  return makeModel({
    nodes: [
      node("Gemm", ["x", "w1", "c1"], ["h"], { transB: 1, alpha: 0.5, beta: 2 }, "g1"),
      node("Relu", ["h"], ["hr"], {}, "relu"),
      node("Gemm", ["hr", "w2", "c2"], ["y"], {}, "g2"),
    ],
    inputs: [valueInfo("x", DataType.FLOAT, [2, 16])],
    outputs: [valueInfo("y", DataType.FLOAT, [2, 4])],
    initializers: [
      tensorFromArray("w1", DataType.FLOAT, [8, 16], v(128)),
      tensorFromArray("c1", DataType.FLOAT, [1], [0.25]),
      tensorFromArray("w2", DataType.FLOAT, [8, 4], v(32)),
      tensorFromArray("c2", DataType.FLOAT, [2, 4], v(8)),
    ],
    opset: 13,
  });
}

Deno.test("int8: Gemm alpha and beta fold into the weights and bias; a per-row C is named in the notes", async () => {
  const bytes = gemmModel();
  const g = importModel(bytes);
  const notes: string[] = [];
  assert.deepEqual(quantizableLayers(g, notes).map((l) => l.node.name), ["g1"]);
  assert.deepEqual(notes, [
    "int8: 'g2' stays float: its C [2,4] is not one value per output column (4); kept float",
  ]);
  // Only layers the recipe sends to int8 are spoken of.
  const none: string[] = [];
  int8Layers(g, parseRecipe({ method: "int8", layers: { g2: { method: "none" } } }), "int8", none);
  assert.deepEqual(none, []);

  const r = rng(12);
  const x = { type: "float32" as const, dims: [2, 16], data: Float32Array.from({ length: 32 }, r) };
  const ref = await Session.create(bytes);
  const want = (await ref.run({ x }))["y"].data as Float32Array;
  await ref.release();
  for (const recipe of ["int8-dynamic", "int8"] as const) {
    const { model, report } = await compress(bytes, recipe, { calibration: [{ x }] });
    assert.deepEqual(report.layers.map((l) => l.name), ["g1"], recipe);
    assert.deepEqual(report.layers[0].notes, [
      "Gemm alpha 0.5 into the weights, beta 2 into the bias folded",
    ]);
    assert.ok(
      report.notes.includes(
        "int8: 'g2' stays float: its C [2,4] is not one value per output column (4); kept float",
      ),
      `${recipe}: ${report.notes.join("\n")}`,
    );
    const gemms = decodeModel(model).graph!.node.filter((n) => n.opType === "Gemm");
    for (const n of gemms.filter((n) => n.name === "g1")) {
      assert.ok(!n.attribute.some((a) => a.name === "alpha" || a.name === "beta"), recipe);
    }
    const s = await Session.create(model);
    const got = (await s.run({ x }))["y"].data as Float32Array;
    await s.release();
    const scale = Math.max(...want.map(Math.abs));
    for (let i = 0; i < want.length; i++) {
      assert.ok(
        Math.abs(got[i] - want[i]) <= 0.03 * scale,
        `${recipe}[${i}]: ${got[i]} vs ${want[i]}`,
      );
    }
    if (recipe === "int8") {
      // Standard ONNX still: onnxruntime runs the folded artifact to the same values.
      const ort = await ortRunner(model);
      const theirs = (await ort.run({ x: { dims: x.dims, data: x.data } }))["y"].data;
      await ort.release();
      for (let i = 0; i < want.length; i++) {
        assert.ok(Math.abs(got[i] - theirs[i]) <= 1e-4 * scale + 1e-6);
      }
    }
  }
});

Deno.test("passes called with a recipe that has neither a section nor a per-layer setting refuse it", async () => {
  const { prunePass } = await import("../src/compress/prune.ts");
  const { clusterPass } = await import("../src/compress/cluster.ts");
  const { lowRankPass } = await import("../src/compress/lowrank.ts");
  const { structuredPass } = await import("../src/compress/structured.ts");
  const r = parseRecipe({
    method: "int8",
    layers: { fc1: { sparsity: 0, clusters: 0, rank: 0, structured: 0 } },
  });
  const g = importModel(MNIST);
  for (
    const [pass, want] of [
      [prunePass, /no 'prune' section and no layer with its own sparsity or pattern/],
      [clusterPass, /no 'cluster' section and no layer with its own clusters/],
      [lowRankPass, /no 'lowrank' section and no layer with its own rank or energy/],
      [structuredPass, /no 'structured' section and no layer with its own ratio/],
    ] as const
  ) {
    assert.throws(
      () => pass(g, r),
      (e: Error) => e instanceof ArgumentError && want.test(e.message),
    );
  }
  // A hand-made recipe is checked like a parsed one.
  const hand = { ...r, layers: { fc1: { sparsity: 2 } } } as unknown as Recipe;
  assert.throws(
    () => prunePass(g, hand),
    /layers\.fc1\.sparsity must be a number in \[0, 0\.999\]/,
  );
  const nm = { ...r, prune: { sparsity: 0.5, scope: "global", pattern: "2:4" } } as Recipe;
  assert.throws(() => prunePass(g, nm), /conflict/);
  assert.ok(g.nodes.every((n) => !n.domain), "refused recipes touch nothing");
});

Deno.test("recipe: +ft presets and the finetune block (defaults per method, overrides, errors)", () => {
  const b = parseRecipe("binary+ft");
  assert.equal(b.method, "binary");
  assert.equal(b.finetune?.epochs, 20);
  assert.deepEqual(b.finetune?.distill, { temperature: 4, alpha: 0.9 });
  const p = parseRecipe("prune:0.9+ft");
  assert.equal(p.prune?.sparsity, 0.9);
  assert.equal(p.finetune?.epochs, 8);
  assert.equal(parseRecipe("int8+ft").finetune?.lr, 1e-4);
  const j = parseRecipe({
    method: "int4",
    finetune: { epochs: 2, optimizer: "sgd", momentum: 0.8, distill: false, augment: { shift: 1 } },
  });
  assert.equal(j.finetune?.epochs, 2);
  assert.equal(j.finetune?.optimizer, "sgd");
  assert.equal(j.finetune?.distill, undefined);
  assert.deepEqual(j.finetune?.augment, { shift: 1, layout: "nchw" });
  assert.equal(parseRecipe("int8").finetune, undefined);
  for (
    const [bad, re] of [
      [{ method: "int8", finetune: { epochs: 0 } }, /finetune.epochs/],
      [{ method: "int8", finetune: { optimizer: "lion" } }, /finetune.optimizer/],
      [{ method: "int8", finetune: { distill: { temperature: -1 } } }, /temperature/],
      [{ method: "int8", finetune: { augment: { shift: 1.5 } } }, /augment.shift/],
      [{ method: "int8", finetune: [] }, /finetune must be an object/],
    ] as [unknown, RegExp][]
  ) {
    assert.throws(
      () => parseRecipe(bad),
      (e: Error) => e.name === "ArgumentError" && re.test(e.message),
    );
  }
  assert.throws(() => parseRecipe("binary+ftx"), /unknown preset/);
});

Deno.test("recipe int8 weightBits: presets, the int8 section and per-layer entries, validated", () => {
  assert.equal(parseRecipe("int8:w7").int8.weightBits, 7);
  assert.equal(parseRecipe("int8-dynamic:w4").method, "int8-dynamic");
  assert.equal(parseRecipe("int8").int8.weightBits, undefined);
  const r = parseRecipe({
    method: "int8",
    int8: { weightBits: 6 },
    layers: { fc1: { weightBits: 4 } },
  });
  assert.equal(r.int8.weightBits, 6);
  assert.equal(r.layers.fc1.weightBits, 4);
  for (
    const [bad, want] of [
      [
        { method: "int8", int8: { weightBits: 9 } },
        /int8\.weightBits must be an integer in 2\.\.8/,
      ],
      [{ method: "int8", int8: { weightBits: 7.5 } }, /int8\.weightBits must be an integer/],
      [
        { layers: { fc1: { weightBits: 1 } } },
        /layers\.fc1\.weightBits must be an integer in 2\.\.8/,
      ],
      [{ layers: { fc1: { weightBits: "4" } } }, /layers\.fc1\.weightBits/],
    ] as const
  ) {
    assert.throws(
      () => parseRecipe(bad),
      (e: Error) => e instanceof ArgumentError && want.test(e.message),
      JSON.stringify(bad),
    );
  }
});
