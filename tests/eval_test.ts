// Evaluation: metrics against hand-computed values, evaluate() end to end on small MLPs
// (identical, perturbed, QDQ-quantized and sqz-packed variants), and the HTML report.
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { ArgumentError, ShapeError } from "../src/mod.ts";
import {
  DataType,
  encodeModel,
  makeModel,
  modelProto,
  node,
  type NodeProto,
  tensorFromArray,
  type TensorProto,
  valueInfo,
} from "../src/onnx/proto.ts";
import {
  accuracy,
  argmaxRows,
  classification,
  confusionMatrix,
  isProbabilityMatrix,
  kFoldSplits,
  meanKlDivergence,
  meanStd,
  percentile,
  percentiles,
  PROB_EPS,
  sqnrDb,
  sqnrFromSums,
  top1Agreement,
} from "../src/eval/metrics.ts";
import { type EvalReport, evaluate, fromJsonNumber, jsonNumber } from "../src/eval/evaluate.ts";
import { escapeHtml, grouped, percent, reportHtml } from "../src/eval/report_html.ts";
import { ReferenceRuns } from "../src/eval/run.ts";
import { rng } from "./util.ts";

const close = (a: number, b: number, tol = 1e-12) =>
  assert.ok(Math.abs(a - b) <= tol, `${a} is not within ${tol} of ${b}`);

// ---------------------------------------------------------------------------------------------
// Metrics

Deno.test("accuracy, argmax (ties to the lowest index) and top-1 agreement", () => {
  assert.equal(accuracy([0, 1, 2, 1], [0, 1, 1, 1]), 0.75);
  assert.deepEqual([...argmaxRows([1, 2, 3, 0, 0, 0, NaN, 1], 2)], [1, 0, 0, 1]);
  // a: [1, 0, 0]; b: [1, 0, 1] → 2 of 3 rows agree.
  assert.equal(top1Agreement([1, 2, 3, 0, 0, 0], [0, 5, 1, 0, 0, 1], 2), 2 / 3);
  assert.equal(top1Agreement([1, 2, 3, 0], [1, 2, 3, 0], 2), 1);
  assert.throws(() => accuracy([0, 1], [0]), ShapeError);
  assert.throws(() => accuracy([], []), ArgumentError);
  assert.throws(() => argmaxRows([1, 2, 3], 2), ShapeError);
});

Deno.test("confusion matrix and P/R/F1, with a class never predicted and one absent", () => {
  const labels = [0, 0, 1, 1, 2, 2], predicted = [0, 1, 1, 1, 1, 0];
  const cm = confusionMatrix(labels, predicted, 4);
  assert.deepEqual(cm, [[1, 1, 0, 0], [0, 2, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]]);
  const m = classification(cm);
  // class 0: TP 1 of 2 predicted, 1 of 2 true → P = R = F1 = 1/2.
  assert.deepEqual(m.perClass[0], {
    label: 0,
    precision: 0.5,
    recall: 0.5,
    f1: 0.5,
    support: 2,
    predicted: 2,
  });
  // class 1: TP 2 of 4 predicted, 2 of 2 true → P = 1/2, R = 1, F1 = 2/3.
  close(m.perClass[1].precision, 0.5);
  close(m.perClass[1].recall, 1);
  close(m.perClass[1].f1, 2 / 3);
  // class 2 is never predicted: precision 0 (not NaN), recall 0, F1 0.
  assert.deepEqual(m.perClass[2], {
    label: 2,
    precision: 0,
    recall: 0,
    f1: 0,
    support: 2,
    predicted: 0,
  });
  // class 3 occurs nowhere: listed, left out of the macro means.
  assert.deepEqual(m.averagedClasses, [0, 1, 2]);
  close(m.macro.precision, 1 / 3);
  close(m.macro.recall, 0.5);
  close(m.macro.f1, (0.5 + 2 / 3) / 3);

  // A class predicted but never true: precision 0, recall 0, and it counts in the means.
  const m2 = classification(confusionMatrix([0, 0], [0, 1], 2));
  assert.deepEqual(m2.perClass[1], {
    label: 1,
    precision: 0,
    recall: 0,
    f1: 0,
    support: 0,
    predicted: 1,
  });
  close(m2.perClass[0].f1, 2 / 3);
  close(m2.macro.precision, 0.5);
  close(m2.macro.recall, 0.25);
  close(m2.macro.f1, 1 / 3);

  assert.throws(() => confusionMatrix([0, 3], [0, 1], 3), ArgumentError);
  assert.throws(() => confusionMatrix([0, 1], [0], 3), ShapeError);
  assert.throws(() => classification([[0, 0], [0, 0]]), ArgumentError);
});

Deno.test("mean KL: logits and probabilities, identical rows, stability at large logits", () => {
  // softmax([0, ln 3]) = [1/4, 3/4]; softmax([0, 0]) = [1/2, 1/2].
  const want = 0.25 * Math.log(0.5) + 0.75 * Math.log(1.5);
  close(meanKlDivergence([0, Math.log(3)], [0, 0], 2), want, 1e-12);
  // The same distribution given as probabilities is detected and not softmaxed again.
  assert.ok(isProbabilityMatrix([0.25, 0.75, 0.5, 0.5], 2));
  assert.ok(!isProbabilityMatrix([0, Math.log(3)], 2));
  close(meanKlDivergence([0.25, 0.75], [0.5, 0.5], 2), want, 1e-12);
  // Mean over rows: the second row is identical, so half of the first row's KL.
  close(meanKlDivergence([0, Math.log(3), 5, 1], [0, 0, 5, 1], 2), want / 2, 1e-12);
  // Identical rows: exactly 0 (never a rounding negative).
  assert.equal(meanKlDivergence([3, 1, -2, 0.5, 0.5, 0.5], [3, 1, -2, 0.5, 0.5, 0.5], 3), 0);
  // Large logits: no overflow; opposite certainties are clamped at log(1e-12), not ∞.
  assert.equal(meanKlDivergence([1000, 0], [1000, 0], 2), 0);
  close(meanKlDivergence([1000, 0], [0, 1000], 2), -Math.log(PROB_EPS), 1e-9);
  close(meanKlDivergence([1, 0], [0, 1], 2), -Math.log(PROB_EPS), 1e-9);
  assert.ok(Number.isNaN(meanKlDivergence([NaN, 0], [0, 0], 2)));
  assert.throws(() => meanKlDivergence([0, 1], [0, 1, 2, 3], 2), ShapeError);
});

Deno.test("SQNR: hand-computed, identical (∞), zero reference (−∞); JSON form", () => {
  // Σref² = 14, Σ(ref − x)² = 1.
  close(sqnrDb([1, 2, 3], [1, 2, 4]), 10 * Math.log10(14), 1e-12);
  close(sqnrDb([3, 4], [3, 3]), 10 * Math.log10(25), 1e-12);
  assert.equal(sqnrDb([1, -2, 3], [1, -2, 3]), Infinity);
  assert.equal(sqnrDb([0, 0], [0, 0]), Infinity);
  assert.equal(sqnrDb([0, 0], [0, 1]), -Infinity);
  assert.equal(sqnrFromSums(100, 1), 20);
  assert.throws(() => sqnrDb([1, 2], [1]), ShapeError);
  assert.equal(jsonNumber(Infinity), "inf");
  assert.equal(jsonNumber(-Infinity), "-inf");
  assert.equal(jsonNumber(NaN), null);
  assert.equal(jsonNumber(3.5), 3.5);
  assert.equal(fromJsonNumber("inf"), Infinity);
  assert.equal(JSON.stringify({ s: jsonNumber(sqnrDb([1], [1])) }), '{"s":"inf"}');
});

Deno.test("percentiles (numpy's linear interpolation) and mean ± sample std", () => {
  assert.equal(percentile([4, 1, 3, 2], 50), 2.5);
  close(percentile([1, 2, 3, 4], 99), 3.97, 1e-12); // rank 0.99·3 = 2.97
  assert.deepEqual(percentiles([1, 2, 3, 4], [0, 100]), [1, 4]);
  assert.equal(percentile([5], 99), 5);
  close(percentile([10, 20, 30, 40, 50], 25), 20, 1e-12);
  assert.throws(() => percentile([], 50), ArgumentError);
  assert.throws(() => percentile([1], 101), ArgumentError);
  const { mean, std } = meanStd([1, 2, 3, 4]);
  assert.equal(mean, 2.5);
  close(std, Math.sqrt(5 / 3), 1e-12);
  assert.deepEqual(meanStd([7]), { mean: 7, std: 0 });
});

Deno.test("k-fold splits: disjoint, covering, seeded, stratified", () => {
  const folds = kFoldSplits(10, 3, { seed: 42 });
  assert.deepEqual(folds.map((f) => f.test.length), [4, 3, 3]);
  const all = folds.flatMap((f) => f.test).sort((a, b) => a - b);
  assert.deepEqual(all, Array.from({ length: 10 }, (_, i) => i));
  for (const f of folds) {
    assert.equal(f.train.length + f.test.length, 10);
    assert.ok(f.train.every((i) => !f.test.includes(i)));
  }
  assert.deepEqual(kFoldSplits(10, 3, { seed: 42 }), folds);
  assert.notDeepEqual(kFoldSplits(10, 3, { seed: 43 }), folds);

  // 6 of class 0, 3 of class 1, 3 of class 2 over 3 folds: 2 + 1 + 1 in each.
  const labels = [0, 1, 0, 2, 0, 1, 0, 2, 0, 1, 0, 2];
  for (const f of kFoldSplits(12, 3, { seed: 7, labels })) {
    const count = (c: number) => f.test.filter((i) => labels[i] === c).length;
    assert.deepEqual([count(0), count(1), count(2)], [2, 1, 1]);
  }
  // Uneven classes still give fold sizes within one of each other.
  const uneven = [0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 2];
  const sizes = kFoldSplits(11, 4, { seed: 1, labels: uneven }).map((f) => f.test.length);
  assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `${sizes}`);
  assert.equal(sizes.reduce((a, b) => a + b), 11);

  assert.throws(() => kFoldSplits(10, 1), ArgumentError);
  assert.throws(() => kFoldSplits(3, 4), ArgumentError);
  assert.throws(() => kFoldSplits(3, 2, { labels: [0, 1] }), ShapeError);
});

// ---------------------------------------------------------------------------------------------
// evaluate()

const D_IN = 8, D_HID = 16, CLASSES = 4;

interface Mlp {
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: Float32Array;
}

function randomMlp(seed: number): Mlp {
  const r = rng(seed);
  const w = (n: number) => Float32Array.from({ length: n }, () => r() - 0.5);
  return { w1: w(D_HID * D_IN), b1: w(D_HID), w2: w(CLASSES * D_HID), b2: w(CLASSES) };
}

/** x [N, 8] → fc1 Gemm(8→16) → Relu → fc2 Gemm(16→4); `batch` fixes the batch dim. */
function mlpModel(p: Mlp, batch: number | string = "N"): Uint8Array {
  return makeModel({
    nodes: [
      node("Gemm", ["x", "w1", "b1"], ["h"], { transB: 1 }, "fc1"),
      node("Relu", ["h"], ["a"], {}, "relu"),
      node("Gemm", ["a", "w2", "b2"], ["y"], { transB: 1 }, "fc2"),
    ],
    inputs: [valueInfo("x", DataType.FLOAT, [batch, D_IN])],
    outputs: [valueInfo("y", DataType.FLOAT, [batch, CLASSES])],
    initializers: [
      tensorFromArray("w1", DataType.FLOAT, [D_HID, D_IN], p.w1),
      tensorFromArray("b1", DataType.FLOAT, [D_HID], p.b1),
      tensorFromArray("w2", DataType.FLOAT, [CLASSES, D_HID], p.w2),
      tensorFromArray("b2", DataType.FLOAT, [CLASSES], p.b2),
    ],
    opset: 13,
  });
}

/** The MLP in float64: pre-activation h and logits y per sample. */
function forward(p: Mlp, x: Float32Array, n: number) {
  const h = new Float64Array(n * D_HID), y = new Float64Array(n * CLASSES);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < D_HID; j++) {
      let s = p.b1[j];
      for (let k = 0; k < D_IN; k++) s += x[i * D_IN + k] * p.w1[j * D_IN + k];
      h[i * D_HID + j] = s;
    }
    for (let j = 0; j < CLASSES; j++) {
      let s = p.b2[j];
      for (let k = 0; k < D_HID; k++) s += Math.max(h[i * D_HID + k], 0) * p.w2[j * D_HID + k];
      y[i * CLASSES + j] = s;
    }
  }
  return { h, y };
}

/**
 * N samples whose float64 top-1 is unambiguous (top-2 margin > 1e-3, so float32 kernels agree),
 * labelled with that top-1 except every 5th sample, labelled with the next class: accuracy 0.8.
 */
function dataset(p: Mlp, n: number, seed: number) {
  const r = rng(seed);
  const x = new Float32Array(n * D_IN);
  for (let i = 0; i < n; i++) {
    for (;;) {
      const s = Float32Array.from({ length: D_IN }, () => r() * 4 - 2);
      const { y } = forward(p, s, 1);
      const sorted = [...y].sort((a, b) => b - a);
      if (sorted[0] - sorted[1] > 1e-3) {
        x.set(s, i * D_IN);
        break;
      }
    }
  }
  const predicted = argmaxRows(forward(p, x, n).y, CLASSES);
  const labels = Int32Array.from(predicted, (c, i) => (i % 5 === 0 ? (c + 1) % CLASSES : c));
  return { x: { type: "float32" as const, dims: [n, D_IN], data: x }, labels, predicted };
}

function perturbed(p: Mlp, seed: number, amount: number): Mlp {
  const r = rng(seed);
  const f = (a: Float32Array) => a.map((v) => v + (r() - 0.5) * amount);
  return { w1: f(p.w1), b1: p.b1, w2: f(p.w2), b2: p.b2 };
}

/** What JSON can hold: a round trip changes nothing (no Infinity, undefined or typed arrays). */
function assertPlainJson(report: EvalReport) {
  assert.deepEqual(JSON.parse(JSON.stringify(report)), report);
}

Deno.test("evaluate: a model against itself — agreement 1, KL 0, SQNR ∞ per layer", async () => {
  const p = randomMlp(1);
  const bytes = mlpModel(p);
  const n = 50;
  const { x, labels, predicted } = dataset(p, n, 2);
  const report = await evaluate(bytes, { inputs: { x }, labels, batchSize: 7 }, {
    reference: bytes,
    kfold: 5,
    latencyRuns: 5,
  });
  assertPlainJson(report);
  assert.equal(report.samples, n);
  assert.equal(report.classes, CLASSES);
  assert.equal(report.output, "y");
  assert.equal(report.accuracy, 0.8);
  const cm = confusionMatrix(labels, predicted, CLASSES);
  assert.deepEqual(report.confusion, { labels: ["0", "1", "2", "3"], matrix: cm });
  assert.deepEqual(report.macro, classification(cm).macro);
  assert.equal(report.agreement, 1);
  assert.equal(report.klMean, 0);
  assert.equal(report.reference?.accuracy, 0.8);
  assert.equal(report.reference?.compressionRatio, 1);

  assert.deepEqual(report.layers.map((l) => [l.name, l.op, l.output, l.sqnrDb]), [
    ["fc1", "Gemm", "h", "inf"],
    ["fc2", "Gemm", "y", "inf"],
  ]);
  assert.deepEqual(report.layers.map((l) => [l.params, l.nonzeros, l.macs, l.precision]), [
    [128, 128, 128, "float32"],
    [64, 64, 64, "float32"],
  ]);
  for (const l of report.layers) assert.ok(typeof l.ms === "number" && l.ms >= 0);

  assert.equal(report.model.bytes, bytes.length);
  assert.equal(report.model.gzipBytes, gzipSync(bytes, { level: 9 }).length);
  assert.ok(report.model.brotliBytes! > 0 && report.model.brotliBytes! < bytes.length);
  assert.equal(report.model.params, 192);
  assert.equal(report.model.nonzeros, 192);
  assert.deepEqual(report.model.macs, { float32: 192, int8: 0, int4: 0, binary: 0, ternary: 0 });
  assert.equal(report.latency.runs, 5);
  assert.ok(report.latency.p50Ms! >= 0 && report.latency.p99Ms! >= report.latency.p50Ms!);
  assert.equal(report.memory.totalBytes, report.memory.arenaBytes + report.memory.weightBytes);
  assert.ok(report.memory.weightBytes > 0);

  // k-fold: the same stratified folds, accuracy per fold from the predictions.
  const folds = kFoldSplits(n, 5, { seed: 0, labels });
  const want = folds.map((f) =>
    accuracy(f.test.map((i) => predicted[i]), f.test.map((i) => labels[i]))
  );
  assert.deepEqual(report.kfold?.accuracies, want);
  assert.deepEqual(report.kfold?.foldSizes, [10, 10, 10, 10, 10]);
  close(report.kfold!.mean, 0.8, 1e-12);
  assert.deepEqual(report.kfold!.std, meanStd(want).std);
  assert.ok(report.notes.some((s) => s.startsWith("k-fold:")));
});

Deno.test("evaluate: a perturbed copy — finite SQNR as computed by hand, agreement < 1", async () => {
  const p = randomMlp(3), q = perturbed(p, 4, 0.4);
  const n = 60;
  const { x, labels } = dataset(p, n, 5);
  const report = await evaluate(mlpModel(q), { inputs: { x }, labels }, {
    reference: mlpModel(p),
    latencyRuns: 2,
  });
  assertPlainJson(report);
  const a = forward(p, x.data, n), b = forward(q, x.data, n);
  const agree = top1Agreement(a.y, b.y, CLASSES);
  assert.ok(agree < 1);
  close(report.agreement!, agree, 1e-12);
  close(report.klMean as number, meanKlDivergence(a.y, b.y, CLASSES), 1e-5);
  assert.ok((report.klMean as number) > 0);
  close(report.accuracy!, accuracy(argmaxRows(b.y, CLASSES), labels), 1e-12);
  const [fc1, fc2] = report.layers;
  close(fc1.sqnrDb as number, sqnrDb(a.h, b.h), 1e-3);
  close(fc2.sqnrDb as number, sqnrDb(a.y, b.y), 1e-3);
  assert.ok(Number.isFinite(fc1.sqnrDb) && (fc1.sqnrDb as number) > 0);

  // Without labels: no accuracy, but agreement and layers all the same.
  const unlabelled = await evaluate(mlpModel(q), { inputs: { x } }, {
    reference: mlpModel(p),
    latencyRuns: 0,
    layers: false,
  });
  assert.equal(unlabelled.accuracy, undefined);
  assert.equal(unlabelled.confusion, undefined);
  close(unlabelled.agreement!, agree, 1e-12);
  assert.ok(unlabelled.layers.every((l) => l.sqnrDb === undefined));
  assert.deepEqual(unlabelled.latency, { p50Ms: null, p99Ms: null, runs: 0, batch: 1 });
  assertPlainJson(unlabelled);
});

Deno.test("evaluate: models given as paths", async () => {
  const p = randomMlp(16);
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/mlp.onnx`;
    await Deno.writeFile(path, mlpModel(p));
    const { x, labels } = dataset(p, 10, 17);
    const report = await evaluate(path, { inputs: { x }, labels }, {
      reference: path,
      latencyRuns: 1,
    });
    assert.equal(report.accuracy, 0.8);
    assert.equal(report.model.bytes, (await Deno.stat(path)).size);
    assert.ok(report.layers.every((l) => l.sqnrDb === "inf"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("evaluate: a model whose batch dim is fixed at 1 runs one sample at a time", async () => {
  const p = randomMlp(6);
  const n = 13;
  const { x, labels } = dataset(p, n, 7);
  const report = await evaluate(mlpModel(p, 1), { inputs: { x }, labels }, {
    reference: mlpModel(p),
    latencyRuns: 1,
  });
  assert.equal(report.accuracy, accuracy(argmaxRows(forward(p, x.data, n).y, CLASSES), labels));
  assert.equal(report.agreement, 1);
  assert.ok(report.layers.every((l) => l.sqnrDb === "inf"));
  assert.ok(report.notes.some((s) => s.includes("fixed at 1")));

  // Fixed at 4 with 13 samples: the last batch is padded, its padding dropped.
  const four = await evaluate(mlpModel(p, 4), { inputs: { x }, labels }, {
    reference: mlpModel(p),
    latencyRuns: 1,
  });
  assert.equal(four.accuracy, report.accuracy);
  assert.equal(four.agreement, 1);
  assert.equal(four.latency.batch, 4);
  // Static shapes may take another kernel path: float32 rounding apart at most.
  for (const l of four.layers) assert.ok(l.sqnrDb === "inf" || (l.sqnrDb as number) > 120);
  assert.ok(four.notes.some((s) => s.includes("fixed at 4")));
});

/**
 * The MLP as a QDQ-quantized model, named as sqz's compression names tensors: fc1's float
 * output `h`, its quantized `h::q` and dequantized `h::dq` (what its consumers read).
 */
function qdqModel(p: Mlp, zeros: number) {
  const ws = 0.5 / 127;
  const w1q = Int8Array.from(p.w1, (v) => Math.round(v / ws));
  w1q.fill(0, 0, zeros);
  const bytes = makeModel({
    nodes: [
      node("QuantizeLinear", ["x", "xs", "xz"], ["x::q"], {}, "qx"),
      node("DequantizeLinear", ["x::q", "xs", "xz"], ["x::dq"], {}, "dqx"),
      node("DequantizeLinear", ["w1q", "w1s"], ["w1d"], {}, "dqw1"),
      node("Gemm", ["x::dq", "w1d", "b1"], ["h"], { transB: 1 }, "fc1"),
      node("QuantizeLinear", ["h", "hs", "hz"], ["h::q"], {}, "qh"),
      node("DequantizeLinear", ["h::q", "hs", "hz"], ["h::dq"], {}, "dqh"),
      node("Relu", ["h::dq"], ["a"], {}, "relu"),
      node("Gemm", ["a", "w2", "b2"], ["y"], { transB: 1 }, "fc2"),
    ],
    inputs: [valueInfo("x", DataType.FLOAT, ["N", D_IN])],
    outputs: [valueInfo("y", DataType.FLOAT, ["N", CLASSES])],
    initializers: [
      tensorFromArray("xs", DataType.FLOAT, [], [4 / 255]),
      tensorFromArray("xz", DataType.UINT8, [], [128]),
      tensorFromArray("w1q", DataType.INT8, [D_HID, D_IN], w1q),
      tensorFromArray("w1s", DataType.FLOAT, [], [ws]),
      tensorFromArray("b1", DataType.FLOAT, [D_HID], p.b1),
      tensorFromArray("hs", DataType.FLOAT, [], [6 / 255]),
      tensorFromArray("hz", DataType.UINT8, [], [128]),
      tensorFromArray("w2", DataType.FLOAT, [CLASSES, D_HID], p.w2),
      tensorFromArray("b2", DataType.FLOAT, [CLASSES], p.b2),
    ],
    opset: 13,
  });
  return { bytes, nonzeros: w1q.filter((v) => v !== 0).length };
}

Deno.test("evaluate: a QDQ int8 layer is compared through its ::dq tensor and counted int8", async () => {
  const p = randomMlp(8);
  const n = 40;
  const { x, labels } = dataset(p, n, 9);
  const { bytes, nonzeros } = qdqModel(p, 10);
  const report = await evaluate(bytes, { inputs: { x }, labels, batchSize: 16 }, {
    reference: mlpModel(p),
    latencyRuns: 2,
  });
  assertPlainJson(report);
  const [fc1, fc2] = report.layers;
  assert.equal(fc1.name, "fc1");
  assert.equal(fc1.output, "h::dq");
  assert.equal(fc1.precision, "int8");
  assert.equal(fc1.weights, "int8");
  assert.equal(fc2.weights, "float32");
  assert.equal(fc1.params, 128);
  assert.equal(fc1.nonzeros, nonzeros);
  assert.ok(nonzeros <= 118);
  assert.equal(fc2.output, "y");
  assert.equal(fc2.precision, "float32");
  // Quantization noise: finite, and well above 0 dB for 8-bit steps.
  for (const l of [fc1, fc2]) {
    assert.ok(typeof l.sqnrDb === "number" && l.sqnrDb > 10 && l.sqnrDb < 80, `${l.sqnrDb}`);
  }
  // The fused int8 kernel (fc1::qgemm at run time) is timed under fc1.
  assert.ok(typeof fc1.ms === "number");
  assert.deepEqual(report.model.macs, { float32: 64, int8: 128, int4: 0, binary: 0, ternary: 0 });
  assert.equal(report.model.nonzeros, nonzeros + 64);
  assert.ok(report.agreement! > 0.8);
});

Deno.test("evaluate: sqz packed layers take params and MACs from the sqz.report metadata", async () => {
  const p = randomMlp(10);
  const ws = 0.5 / 127;
  const w1q = Int8Array.from(p.w1, (v) => Math.round(v / ws));
  const xs = 4 / 255;
  const bias = Int32Array.from(p.b1, (b) => Math.round(b / (xs * ws)));
  const nodes: NodeProto[] = [
    node("QuantizeLinear", ["x", "xs", "xz"], ["x::q"], {}, "qx"),
    node(
      "QGemm",
      ["x::q", "xs", "xz", "w1q", "w1s", "w1z", "b1q"],
      ["h"],
      { transB: 1 },
      "fc1::qgemm",
      "ai.sqz",
    ),
    node("Relu", ["h"], ["a"], {}, "relu"),
    node("Gemm", ["a", "w2", "b2"], ["y"], { transB: 1 }, "fc2"),
  ];
  const initializers: TensorProto[] = [
    tensorFromArray("xs", DataType.FLOAT, [], [xs]),
    tensorFromArray("xz", DataType.UINT8, [], [128]),
    tensorFromArray("w1q", DataType.INT8, [D_HID, D_IN], w1q),
    tensorFromArray("w1s", DataType.FLOAT, [], [ws]),
    tensorFromArray("w1z", DataType.INT8, [], [0]),
    tensorFromArray("b1q", DataType.INT32, [D_HID], bias),
    tensorFromArray("w2", DataType.FLOAT, [CLASSES, D_HID], p.w2),
    tensorFromArray("b2", DataType.FLOAT, [CLASSES], p.b2),
  ];
  const proto = modelProto({
    nodes,
    inputs: [valueInfo("x", DataType.FLOAT, ["N", D_IN])],
    outputs: [valueInfo("y", DataType.FLOAT, ["N", CLASSES])],
    initializers,
    opset: 13,
    extraOpsets: [{ domain: "ai.sqz", version: 1 }],
  });
  const layer = {
    name: "fc1",
    op: "Gemm",
    method: "int8",
    params: 128,
    nonzeros: 100,
    bytesBefore: 512,
    bytesAfter: 128,
    macsBefore: 128,
    macsAfter: 128,
  };
  proto.metadataProps = [{ key: "sqz.report", value: JSON.stringify({ layers: [layer] }) }];
  const bytes = encodeModel(proto);
  const n = 30;
  const { x, labels } = dataset(p, n, 11);
  const report = await evaluate(bytes, { inputs: { x }, labels }, {
    reference: mlpModel(p),
    latencyRuns: 1,
  });
  const fc1 = report.layers[0];
  assert.equal(fc1.name, "fc1");
  assert.equal(fc1.op, "ai.sqz.QGemm");
  assert.equal(fc1.precision, "int8");
  assert.equal(fc1.weights, "int8");
  assert.deepEqual([fc1.params, fc1.nonzeros, fc1.macs], [128, 100, 128]);
  // fc1's float output `h` has the same name: compared, with int8 noise.
  assert.equal(fc1.output, "h");
  assert.ok(typeof fc1.sqnrDb === "number" && fc1.sqnrDb > 15, `${fc1.sqnrDb}`);
  assert.equal(report.model.params, 192);
  assert.equal(report.model.nonzeros, 164);
  assert.deepEqual(report.model.macs, { float32: 64, int8: 128, int4: 0, binary: 0, ternary: 0 });
});

Deno.test("evaluate: a layer whose output changed size is reported, not compared", async () => {
  // "Structured pruning": fc1 keeps 12 of its 16 filters, fc2 reads those 12.
  const p = randomMlp(18), keep = 12;
  const w1 = p.w1.slice(0, keep * D_IN), b1 = p.b1.slice(0, keep);
  const w2 = Float32Array.from(
    { length: CLASSES * keep },
    (_, i) => p.w2[Math.floor(i / keep) * D_HID + (i % keep)],
  );
  const pruned = makeModel({
    nodes: [
      node("Gemm", ["x", "w1", "b1"], ["h"], { transB: 1 }, "fc1"),
      node("Relu", ["h"], ["a"], {}, "relu"),
      node("Gemm", ["a", "w2", "b2"], ["y"], { transB: 1 }, "fc2"),
    ],
    inputs: [valueInfo("x", DataType.FLOAT, ["N", D_IN])],
    outputs: [valueInfo("y", DataType.FLOAT, ["N", CLASSES])],
    initializers: [
      tensorFromArray("w1", DataType.FLOAT, [keep, D_IN], w1),
      tensorFromArray("b1", DataType.FLOAT, [keep], b1),
      tensorFromArray("w2", DataType.FLOAT, [CLASSES, keep], w2),
      tensorFromArray("b2", DataType.FLOAT, [CLASSES], p.b2),
    ],
    opset: 13,
  });
  const { x, labels } = dataset(p, 20, 19);
  const report = await evaluate(pruned, { inputs: { x }, labels }, {
    reference: mlpModel(p),
    latencyRuns: 1,
  });
  const [fc1, fc2] = report.layers;
  assert.equal(fc1.sqnrDb, undefined);
  assert.equal(fc1.params, keep * D_IN);
  assert.ok(report.notes.some((s) => s.includes("layer fc1") && s.includes("not compared")));
  assert.ok(typeof fc2.sqnrDb === "number" && Number.isFinite(fc2.sqnrDb));
  assert.equal(report.model.macs.float32, keep * D_IN + CLASSES * keep);
});

Deno.test("evaluate: bad datasets and options are typed errors", async () => {
  const p = randomMlp(12);
  const bytes = mlpModel(p);
  const x = { type: "float32" as const, dims: [4, D_IN], data: new Float32Array(4 * D_IN) };
  await assert.rejects(() => evaluate(bytes, { inputs: {} }), ArgumentError);
  await assert.rejects(
    () => evaluate(bytes, { inputs: { x }, labels: new Int32Array(3) }),
    ShapeError,
  );
  await assert.rejects(
    () => evaluate(bytes, { inputs: { x }, labels: Int32Array.of(0, 1, 2, 9) }, { latencyRuns: 0 }),
    ArgumentError,
  );
  await assert.rejects(() => evaluate(bytes, { inputs: { z: x } }), ArgumentError);
  await assert.rejects(() => evaluate(bytes, { inputs: { x }, batchSize: 0 }), ArgumentError);
  await assert.rejects(() => evaluate(bytes, { inputs: { x } }, { kfold: -1 }), ArgumentError);
  await assert.rejects(() => evaluate(bytes, { inputs: { x } }, { kfold: 1 }), ArgumentError);
  await assert.rejects(
    () => evaluate(bytes, { inputs: { x } }, { output: "nope", latencyRuns: 0 }),
    ArgumentError,
  );
  await assert.rejects(
    () => evaluate(bytes, { inputs: { x }, labels: new Int32Array(4) }, { kfold: 5 }),
    ArgumentError,
  );
  await assert.rejects(
    () => evaluate(bytes, { inputs: { x } }, { reference: "/nonexistent/model.onnx" }),
    (e: Error) => e.name === "ModelError",
  );
});

// ---------------------------------------------------------------------------------------------
// HTML

function checkSelfContained(html: string) {
  assert.ok(!/<script/i.test(html), "no script");
  assert.ok(!/<link|<img|<iframe|@import|url\((?!#)/i.test(html), "no external resources");
  const urls = html.match(/https?:\/\/[^\s"'<>)]*/g) ?? [];
  assert.ok(urls.every((u) => u === "http://www.w3.org/2000/svg"), urls.join(" "));
}

Deno.test("reportHtml: self-contained, escaped, and showing the numbers", async () => {
  const p = randomMlp(13), q = perturbed(p, 14, 0.3);
  const n = 40;
  const { x, labels } = dataset(p, n, 15);
  const data = { inputs: { x }, labels, classNames: ["cat", "dog", "<b>fish</b>", "a&b"] };
  const one = await evaluate(mlpModel(q), data, { reference: mlpModel(p), latencyRuns: 3 });
  const html = reportHtml(one, "MLP <int8> & friends");
  checkSelfContained(html);
  assert.ok(html.includes("<title>MLP &lt;int8&gt; &amp; friends</title>"));
  assert.ok(!html.includes("<b>fish</b>") && html.includes("&lt;b&gt;fish&lt;/b&gt;"));
  assert.ok(html.includes("a&amp;b"));
  assert.ok(html.includes(percent(one.accuracy)), "accuracy");
  assert.ok(html.includes(percent(one.agreement)), "agreement");
  assert.ok(html.includes(percent(one.reference!.accuracy)), "reference accuracy");
  assert.ok(html.includes(grouped(one.model.bytes)) && html.includes(grouped(one.model.gzipBytes)));
  assert.ok(html.includes(grouped(one.model.brotliBytes!)));
  for (const l of one.layers) {
    assert.ok(html.includes(`${(l.sqnrDb as number).toFixed(1)} dB`), `SQNR of ${l.name}`);
  }
  // The confusion matrix: every count in a cell.
  for (const row of one.confusion!.matrix) {
    for (const v of row) assert.ok(html.includes(`">${v}</td>`));
  }
  assert.equal((html.match(/<svg /g) ?? []).length, 3); // scatter, SQNR bars, time bars
  for (const note of one.notes) assert.ok(html.includes(escapeHtml(note)));

  // Several variants, one of them identical to the reference (SQNR ∞), names escaped.
  const same = await evaluate(mlpModel(p), data, { reference: mlpModel(p), latencyRuns: 1 });
  const multi = reportHtml({
    variants: [
      { name: "noisy <script>alert(1)</script>", report: one },
      { name: "float copy", report: same },
    ],
  });
  checkSelfContained(multi);
  assert.ok(multi.includes("noisy &lt;script&gt;alert(1)&lt;/script&gt;"));
  assert.ok(multi.includes("∞ (identical)"));
  assert.ok(multi.includes(">reference<"));
  assert.equal((multi.match(/<svg /g) ?? []).length, 5);
  assert.throws(() => reportHtml({ variants: [] }), ArgumentError);
});

Deno.test("evaluate: an int4 MatMulNBits artifact counts its layers as int4 weights, float MACs", async () => {
  const { compress } = await import("../src/mod.ts");
  const p = randomMlp(3);
  const bytes = mlpModel(p);
  const { x, labels } = dataset(p, 20, 4);
  const { model } = await compress(bytes, "int4:matmulnbits");
  const report = await evaluate(model, { inputs: { x }, labels }, { reference: bytes });
  const layers = report.layers.filter((l) => l.op === "com.microsoft.MatMulNBits");
  assert.equal(layers.length, 2, JSON.stringify(report.layers.map((l) => l.op)));
  for (const l of layers) {
    assert.equal(l.weights, "int4");
    assert.equal(l.precision, "float32");
    assert.ok((l.params ?? 0) > 0 && (l.macs ?? 0) > 0, JSON.stringify(l));
  }
  assert.ok(report.notes.some((n) => /run float32 MACs/.test(n)), report.notes.join("\n"));
});

Deno.test("evaluate: reference runs are reused across calls; brotli: false skips the Brotli size", async () => {
  const p = randomMlp(3), q = randomMlp(4);
  const ref = mlpModel(p), other = mlpModel(q);
  const { x, labels } = dataset(p, 40, 5);
  const ds = { inputs: { x }, labels };
  const cache = new ReferenceRuns();
  const opts = { reference: ref, referenceRuns: cache, latencyRuns: 3, brotli: false };
  const cold = await evaluate(other, ds, { reference: ref, latencyRuns: 3 });
  const a = await evaluate(other, ds, opts);
  const b = await evaluate(other, ds, opts);
  // The same reference outputs: the same agreement, KL and reference accuracy as uncached.
  for (const r of [a, b]) {
    assert.equal(r.agreement, cold.agreement);
    assert.equal(r.klMean, cold.klMean);
    assert.equal(r.reference?.accuracy, cold.reference?.accuracy);
    assert.equal(r.model.brotliBytes, undefined);
    assert.equal(r.reference?.model.brotliBytes, undefined);
  }
  // The reference ran once: its latency is the first call's.
  assert.deepEqual(b.reference?.latency, a.reference?.latency);
  assert.ok(cold.model.brotliBytes! > 0);
  // Another dataset object is another entry.
  const c = await evaluate(other, { inputs: { x }, labels }, opts);
  assert.equal(c.agreement, cold.agreement);
});
