// Trains the MNIST-rows transformer (models/mnist_transformer.onnx) with sqz's own training
// engine (src/train/), on the training digits of src/eval/mnist.ts, and measures it in sqz on
// the held-out digits: float accuracy, and top-1 agreement / accuracy of the int8 dynamic and
// int8 static (calibrated) compressions with the float model.
//
//   npx -y deno@2 run -A scripts/train_mnist_transformer.ts [--seed=0] [--epochs=6]
//       [--train=8000] [--batch=32] [--lr=0.002] [--out=models/mnist_transformer.onnx]
//
// The model is bench/transformer_zoo.ts' "seq" encoder, node for node as torch.onnx.export
// (opset 14) writes a post-norm nn.TransformerEncoder: input "rows" float32 [N, 28, 28] (the 28
// rows of a digit as 28 tokens of 28 pixels in [0, 1]), a linear embedding plus a learned
// position embedding, 2 post-norm layers (d 64, 4 heads of 16, ReLU feed-forward 256; Q, K, V
// as MatMul + Add, heads by Reshape/Transpose, Q·Kᵀ scaled by Mul, Softmax; LayerNorm
// decomposed into ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add), ReduceMean over the
// tokens and a Gemm head to "output" float32 [N, 10] (logits, no Softmax). encoderModel()
// builds it with its seeded initial weights (Glorot-uniform projections, LayerNorm γ ≈ 1); every
// float32 initializer of more than one element is trained (projections and biases, position
// embeddings, LayerNorm γ and β, the head), the scalars (2, ε, 1/√16) stay constants. Training
// writes the weights back into the same graph, so the file has exactly the nodes the
// generator wrote, in float32, opset 14.
//
// Training: softmax cross-entropy, Adam (β₁ 0.9, β₂ 0.999, ε 1e-8, no weight decay), batch
// --batch, learning rate --lr with a linear warm-up over the first half epoch and a cosine decay
// to 0 (schedule.ts), gradients clipped to a global L2 norm of 1. Each training digit is
// shifted by a random whole-pixel offset of up to ±2 px per axis (augment.ts; the 8,000 digits
// are few). Everything is seeded by --seed: the batch order (epochBatches) and the shifts. The
// split is mnistSplit(0): 8,000 training digits (the first --train of them are used), 2,000
// test digits never seen in training (their accuracy is printed after each epoch, for the
// record only: nothing is selected on it, the weights kept are the last epoch's).
import { fileURLToPath } from "node:url";
import { MNIST_PIXELS, mnistSplit, type Split } from "../src/eval/mnist.ts";
import { compress, Session } from "../src/mod.ts";
import type { Tensor } from "../src/graph/tensor.ts";
import { importModel } from "../src/onnx/import.ts";
import { exportModel } from "../src/onnx/export.ts";
import { TrainProgram } from "../src/train/program.ts";
import { clipGradNorm, Optimizer } from "../src/train/optim.ts";
import { learningRate, type ScheduleConfig } from "../src/train/schedule.ts";
import { argmaxRows, softmaxCrossEntropy } from "../src/train/loss.ts";
import { epochBatches, gatherLabels, gatherRows, mixSeed } from "../src/train/batches.ts";
import { shiftImages } from "../src/train/augment.ts";
import { seededRandom } from "../src/eval/metrics.ts";
import { encoderModel, type EncoderSpec } from "../bench/transformer_zoo.ts";

function arg(name: string, dflt: number, integer = true): number {
  const a = Deno.args.find((s) => s.startsWith(`--${name}=`));
  const v = a ? Number(a.slice(name.length + 3)) : dflt;
  if (integer ? !Number.isSafeInteger(v) || v < 1 : !(v > 0 && Number.isFinite(v))) {
    throw new Error(`--${name} must be ${integer ? "an integer ≥ 1" : "a positive number"}`);
  }
  return v;
}

export const SPEC: EncoderSpec = { style: "seq", layers: 2, d: 64, heads: 4, ff: 256, seq: 28 };
const SEED = Number(Deno.args.find((s) => s.startsWith("--seed="))?.slice(7) ?? 0);
const EPOCHS = arg("epochs", 6);
const TRAIN = arg("train", 8000);
const BATCH = arg("batch", 32);
const LR = arg("lr", 2e-3, false);
/** Largest random translation of a training digit, in pixels (each axis). */
const SHIFT = 2;
const CLIP = 1;
if (!Number.isSafeInteger(SEED)) throw new Error("--seed must be an integer");
const OUT = Deno.args.find((s) => s.startsWith("--out="))?.slice(6) ??
  fileURLToPath(new URL("../models/mnist_transformer.onnx", import.meta.url));

/** n digits of a split from `from` as the model's input: each image's rows are its tokens. */
export function rows(s: Split, from: number, n: number): Tensor {
  return {
    type: "float32",
    dims: [n, 28, 28],
    data: s.x.data.slice(from * MNIST_PIXELS, (from + n) * MNIST_PIXELS),
  };
}

/** Top-1 predictions of an ONNX model in sqz's Session, `batch` digits a run. */
export async function predict(bytes: Uint8Array, s: Split, n: number, batch: number) {
  const session = await Session.create(bytes);
  try {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i += batch) {
      const m = Math.min(batch, n - i);
      const z = (await session.run({ rows: rows(s, i, m) })).output.data as Float32Array;
      out.set(argmaxRows(z, m, 10), i);
    }
    return out;
  } finally {
    await session.release();
  }
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
const frac = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let k = 0;
  for (let i = 0; i < a.length; i++) k += a[i] === b[i] ? 1 : 0;
  return k / a.length;
};

async function main(): Promise<void> {
  const t0 = performance.now();
  const { train, test } = await mnistSplit(0);
  const n = Math.min(TRAIN, train.y.length);
  const labels = Int32Array.from(train.y.subarray(0, n));
  const g = importModel(encoderModel(SPEC).bytes);
  const program = await TrainProgram.create(g, {
    trainable: (v) => v.constant?.type === "float32" && v.constant.data.length > 1,
  });
  const params = program.params.reduce((k, p) => k + p.data.length, 0);
  console.log(
    `seq encoder: ${program.params.length} parameter tensors, ${params} weights; ${n} training ` +
      `digits, ${test.y.length} test; ${EPOCHS} epochs of batch ${BATCH}, Adam lr ${LR}, seed ${SEED}`,
  );
  const optimizer = new Optimizer(program.params, { kind: "adam" });
  const stepsPerEpoch = Math.ceil(n / BATCH), totalSteps = EPOCHS * stepsPerEpoch;
  const schedule: ScheduleConfig = {
    kind: "cosine",
    warmupSteps: Math.round(stepsPerEpoch / 2),
  };
  const evaluate = (s: Split, count: number) => {
    let ok = 0;
    for (let i = 0; i < count; i += 250) {
      const m = Math.min(250, count - i);
      const z = program.forward({ rows: rows(s, i, m) }, false).output.data as Float32Array;
      const p = argmaxRows(z, m, 10);
      for (let j = 0; j < m; j++) ok += p[j] === s.y[i + j] ? 1 : 0;
    }
    return ok / count;
  };
  let step = 0;
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    const te = performance.now();
    let lossSum = 0, correct = 0;
    const batches = epochBatches(n, BATCH, SEED, epoch);
    for (let bi = 0; bi < batches.length; bi++) {
      const idx = batches[bi], m = idx.length;
      const data = new Float32Array(m * MNIST_PIXELS);
      gatherRows(train.x.data, MNIST_PIXELS, idx, data);
      shiftImages(
        data,
        [m, 1, 28, 28],
        { shift: SHIFT, layout: "nchw" },
        seededRandom(mixSeed(mixSeed(SEED, epoch), bi + 1)),
      );
      const z = program.forward({ rows: { type: "float32", dims: [m, 28, 28], data } }, true)
        .output.data as Float32Array;
      const grad = new Float32Array(z.length);
      const r = softmaxCrossEntropy(z, m, 10, gatherLabels(labels, idx), grad);
      if (!Number.isFinite(r.loss)) throw new Error(`diverged at epoch ${epoch + 1}`);
      program.zeroGrad();
      program.backward({ output: grad });
      clipGradNorm(program.params, CLIP);
      optimizer.step(learningRate(schedule, LR, step++, totalSteps));
      lossSum += r.loss * m;
      correct += r.correct;
    }
    console.log(
      `  epoch ${epoch + 1}/${EPOCHS}: loss ${(lossSum / n).toFixed(4)}, train ${
        pct(correct / n)
      }, test ${pct(evaluate(test, test.y.length))} (${
        ((performance.now() - te) / 1000).toFixed(0)
      } s)`,
    );
  }
  const trainSeconds = (performance.now() - t0) / 1000;
  program.writeBack(g);
  program.dispose();
  const bytes = exportModel(g, { producerName: "sqz scripts/train_mnist_transformer.ts" });
  const tmp = `${OUT}.tmp-${Deno.pid}`;
  await Deno.writeFile(tmp, bytes);
  await Deno.rename(tmp, OUT);
  console.log(`wrote ${OUT} (${bytes.length} bytes) after ${trainSeconds.toFixed(0)} s`);

  // The file as sqz runs it, and its int8 compressions (dynamic: one digit a run, since its
  // activation ranges are per run; static: calibrated on 128 training digits).
  const N = test.y.length;
  const float = await predict(bytes, test, N, 500);
  const acc = frac(float, test.y);
  console.log(`float: test accuracy ${pct(acc)} on ${N} digits`);
  const calibration = [0, 1, 2, 3].map((i) => ({ rows: rows(train, 32 * i, 32) }));
  for (
    const [name, recipe, batch] of [["int8 dynamic", "int8-dynamic", 1], [
      "int8 static",
      "int8",
      500,
    ]] as const
  ) {
    const { model } = await compress(bytes, recipe, name === "int8 static" ? { calibration } : {});
    const q = await predict(model, test, N, batch);
    console.log(
      `${name}: ${model.length} bytes, agreement with float ${pct(frac(q, float))}, accuracy ${
        pct(frac(q, test.y))
      } (${((frac(q, test.y) - acc) * 100).toFixed(2)} points)`,
    );
  }
}

if (import.meta.main) await main();
