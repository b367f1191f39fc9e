// compress() with fine-tuning on the MNIST reference models and real digits: artifacts of every
// kind load and run (int8 QAT stays standard QDQ, which onnxruntime-web runs), binary layers run
// on the XNOR kernels, pruning keeps its exact zeros, training is deterministic for a seed, a
// checkpointed run resumes to the same result, cancelling leaves nothing, and bad data is a
// typed error before anything trains. Small subsets and one epoch keep it quick: the accuracy
// targets live in `deno task bench compression`.
import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import { compress, Session, type Tensor } from "../src/mod.ts";
import { mnistSplit } from "../src/eval/mnist.ts";
import { importModel } from "../src/onnx/import.ts";

const { train, test } = await mnistSplit(0);
const CNN = await Deno.readFile(new URL("../models/mnist_cnn.onnx", import.meta.url));
const MLP = await Deno.readFile(new URL("../models/mnist_mlp.onnx", import.meta.url));

function take(x: Tensor, n: number, from = 0): Tensor {
  const per = x.data.length / x.dims[0];
  return {
    type: "float32",
    dims: [n, ...x.dims.slice(1)],
    data: x.data.slice(from * per, (from + n) * per),
  } as Tensor;
}
const trainSet = (n: number) => ({
  inputs: take(train.x, n),
  labels: Int32Array.from(train.y.subarray(0, n)),
});

async function accuracy(model: Uint8Array, n = 500): Promise<number> {
  const s = await Session.create(model);
  const out = await s.run({ input: take(test.x, n) });
  const z = Object.values(out)[0].data as Float32Array;
  let right = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < 10; c++) if (z[i * 10 + c] > z[i * 10 + best]) best = c;
    if (best === test.y[i]) right++;
  }
  s.release();
  return right / n;
}

/** Every constant of a model, by name. */
function weights(model: Uint8Array): Record<string, number[]> {
  const g = importModel(model);
  return Object.fromEntries(
    [...g.values.values()].filter((v) => v.constant).map((
      v,
    ) => [v.name, Array.from(v.constant!.data as ArrayLike<number>, Number)]),
  );
}

const ONE_EPOCH = { epochs: 1, batchSize: 64 };

Deno.test("int8+ft: QAT artifact is standard QDQ that onnxruntime-web runs, and it keeps accuracy", async () => {
  const epochs: number[] = [];
  const { model, report } = await compress(CNN, { method: "int8", finetune: ONE_EPOCH }, {
    train: trainSet(1024),
    onProgress: (_p, _s, e) => e && epochs.push(e.epoch),
  });
  assert.deepEqual(epochs, [1]);
  assert.equal(report.training?.epochs.length, 1);
  assert.ok(report.training!.layers.every((l) => l.scheme === "int8"));
  assert.ok(!importModel(model).nodes.some((n) => n.domain === "ai.sqz"), "only standard ops");
  const acc = await accuracy(model);
  assert.ok(acc >= 0.96, `int8+ft accuracy ${acc}`);
  const session = await ort.InferenceSession.create(model);
  const x = take(test.x, 8);
  const r = await session.run({ input: new ort.Tensor("float32", x.data as Float32Array, x.dims) });
  const s = await Session.create(model);
  const mine = Object.values(await s.run({ input: x }))[0].data as Float32Array;
  const theirs = Object.values(r)[0].data as Float32Array;
  const am = (z: Float32Array, i: number) =>
    z.subarray(i * 10, i * 10 + 10).indexOf(Math.max(...z.subarray(i * 10, i * 10 + 10)));
  for (let i = 0; i < 8; i++) assert.equal(am(mine, i), am(theirs, i));
  await session.release();
});

Deno.test("binary+ft: BatchNorm replaces the ReLUs ahead of the sign, the layers run on the XNOR kernels", async () => {
  const { model, report } = await compress(CNN, {
    method: "binary",
    finetune: { ...ONE_EPOCH, lr: 2e-3 },
  }, {
    train: trainSet(2048),
  });
  const t = report.training!;
  assert.ok(t.changes.some((c) => /relu1.*BatchNormalization/.test(c)), t.changes.join("; "));
  assert.deepEqual(t.layers.map((l) => l.scheme), ["int8", "binary", "binary", "int8"]);
  const ops = importModel(model).nodes.map((n) => n.op);
  assert.ok(ops.includes("BinaryConv") && ops.includes("BinaryGemm"), ops.join(","));
  assert.ok(!ops.includes("BatchNormalization"), "BatchNorm folded at export");
  const s = await Session.create(model, { profile: true });
  await s.run({ input: take(test.x, 4) });
  const kernels = s.profile.filter((p) => /Binary(Conv|Gemm)/.test(p.op));
  assert.ok(
    kernels.length === 2 && kernels.every((p) => p.impl === "wasm"),
    JSON.stringify(kernels),
  );
  s.release();
  // One epoch on 2,048 digits is far from the bench's 12, but well above chance (10%).
  const acc = await accuracy(model);
  assert.ok(acc >= 0.4, `binary+ft after one short epoch: ${acc}`);
});

Deno.test("prune+ft: gradual pruning ends at exactly the recipe's zeros, masks hold through training", async () => {
  const recipe = { prune: { sparsity: 0.8, scope: "layer" }, finetune: { ...ONE_EPOCH, lr: 5e-4 } };
  const { model, report } = await compress(MLP, recipe, { train: trainSet(1024) });
  for (const l of report.layers) {
    assert.equal(
      l.nonzeros,
      l.params - Math.round(0.8 * l.params),
      `${l.name}: ${l.nonzeros}/${l.params}`,
    );
  }
  assert.ok((await accuracy(model)) >= 0.9);
});

Deno.test("fine-tuning is deterministic for a seed, and a resumed run equals an uninterrupted one", async () => {
  const recipe = { method: "int4", finetune: { epochs: 2, batchSize: 64, seed: 3 } };
  const a = await compress(MLP, recipe, { train: trainSet(512) });
  const b = await compress(MLP, recipe, { train: trainSet(512) });
  // The weights are identical; the embedded report's timings are not.
  assert.deepEqual(weights(a.model), weights(b.model));
  // A run killed after epoch 1: its checkpoint is all a new run gets.
  const saved: Uint8Array[] = [];
  await assert.rejects(
    compress(MLP, recipe, {
      train: trainSet(512),
      checkpoint: { load: () => undefined, save: (bytes) => void saved.push(bytes) },
      onProgress: (_p, _s, e) => {
        if (e?.epoch === 1) throw new Error("killed");
      },
    }),
    /killed/,
  );
  assert.equal(saved.length, 1);
  const resumed = await compress(MLP, recipe, {
    train: trainSet(512),
    checkpoint: { load: () => saved[0], save: () => {} },
  });
  assert.equal(resumed.report.training?.resumedFromEpoch, 1);
  assert.deepEqual(weights(resumed.model), weights(a.model));
  assert.deepEqual(
    resumed.report.training?.epochs.map((e) => e.loss),
    a.report.training?.epochs.map((e) => e.loss),
  );
});

Deno.test("distillation needs no labels: the float model's soft targets train the student", async () => {
  const { model, report } = await compress(MLP, { method: "ternary", finetune: ONE_EPOCH }, {
    train: { inputs: take(train.x, 1024) },
  });
  assert.equal(report.training?.labelled, false);
  assert.equal(report.training?.distilled, true);
  assert.ok((await accuracy(model)) >= 0.9);
});

Deno.test("cancelling fine-tuning rejects with AbortError", async () => {
  const ac = new AbortController();
  await assert.rejects(
    compress(MLP, "int8+ft", {
      train: trainSet(4096),
      signal: ac.signal,
      onProgress: (_p, stage) => {
        if (stage === "fine-tuning") ac.abort();
      },
    }),
    (e: Error) => e.name === "AbortError",
  );
});

Deno.test("fine-tuning: bad data is a typed error before anything trains", async () => {
  const bad = async (
    opts: Parameters<typeof compress>[2],
    re: RegExp,
    recipe: unknown = "int8+ft",
  ) =>
    await assert.rejects(
      compress(MLP, recipe as string, opts),
      (e: Error) => e.name !== "Error" && re.test(e.message),
    );
  await bad({}, /no training data/);
  await bad({ train: trainSet(64) }, /does not fine-tune/, "int8");
  await bad(
    { train: { inputs: take(train.x, 64), labels: new Int32Array(63) } },
    /63 labels for 64 inputs/,
  );
  await bad(
    { train: { inputs: take(train.x, 64), labels: new Int32Array(64).fill(10) } },
    /outside the model's 10 classes/,
  );
  const nan = take(train.x, 64);
  (nan.data as Float32Array)[5] = NaN;
  await bad({ train: { inputs: nan, labels: new Int32Array(64) } }, /non-finite/);
  await bad({
    train: { inputs: take(train.x, 64).data as unknown as Tensor, labels: new Int32Array(64) },
  }, /input/);
  const huge = take(train.x, 64);
  (huge.data as Float32Array).fill(3e38);
  await bad(
    { train: { inputs: huge, labels: new Int32Array(64) } },
    /diverged in epoch 1.*lower learning rate/,
  );
  await bad({ train: trainSet(64) }, /finetune.lr/, { method: "int8", finetune: { lr: -1 } });
  await bad({ train: trainSet(64) }, /unknown key 'epoch'/, {
    method: "int8",
    finetune: { epoch: 1 },
  });
});

Deno.test("binary+ft on graphs of other exporters: Keras NHWC (Transpose, MatMul + Add, Softmax) and PyTorch BatchNorm", async () => {
  const { foreignGraphBytes } = await import("../bench/foreign_models.ts");
  for (const name of ["keras_nhwc_cnn", "pytorch_bn_cnn"] as const) {
    const bytes = foreignGraphBytes(name);
    const x = take(train.x, 256);
    const inputs = name === "keras_nhwc_cnn" ? { ...x, dims: [256, 28, 28, 1] } : x;
    const { model, report } = await compress(bytes, { method: "binary", finetune: ONE_EPOCH }, {
      train: { inputs, labels: Int32Array.from(train.y.subarray(0, 256)) },
    });
    const t = report.training!;
    // The ReLU ahead of the binarized dense layer sits behind MaxPool, Transpose and Flatten.
    assert.ok(
      t.changes.filter((c) => /BatchNormalization/.test(c)).length >= 2,
      t.changes.join("; "),
    );
    const ops = importModel(model).nodes.map((n) => n.op);
    assert.ok(ops.includes("BinaryConv") && ops.includes("BinaryGemm"), `${name}: ${ops}`);
    const s = await Session.create(model);
    const out = Object.values(
      await s.run({
        input: {
          ...inputs,
          dims: [4, ...inputs.dims.slice(1)],
          data: inputs.data.slice(0, 4 * 784),
        } as Tensor,
      }),
    )[0];
    assert.deepEqual(out.dims, [4, 10]);
    assert.ok((out.data as Float32Array).every(Number.isFinite));
    s.release();
  }
});
