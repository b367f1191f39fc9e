// `deno task bench train [--json] [--quick]`: one training step of the MNIST reference models
// (models/mnist_cnn.onnx, models/mnist_mlp.onnx) at batch 64 on real digits, sqz's training
// engine against the TensorFlow.js baseline that trained them (scripts/train_mnist.ts), both
// single-threaded in one process, timed in interleaved rounds (bench/timing.ts), medians.
//
// What one step covers, for each engine:
//   sqz:        gather the 64 digits into the batch buffer (gatherRows), TrainProgram.forward
//               (training mode), softmaxCrossEntropy with its gradient, zeroGrad, backward,
//               Adam step (Optimizer, lr 1e-3);
//   tfjs-wasm:  the step of scripts/train_mnist.ts, with its code: batch() (NHWC tensor and
//               one-hot labels), its hand-written lossAndGrads, tf.train.adam's applyGradients,
//               inside tf.tidy, then the loss read back (dataSync), as its training loop does;
//               tfjs-backend-wasm (XNNPACK), SIMD binary, 1 thread (bench/baselines/tfjs.ts).
// Neither shifts the digits (train_mnist's augmentation is data preparation, not the step).
// Both start from the ONNX weights (tfjs' copied into its HWIO / [in, out] layouts) and see
// the same batches (epochBatches of the 8,000 training digits, seed 0, in a cycle); the first
// batch's loss from each is printed to show the networks are the same.
//
// Reported: median ms per step, the speedup tfjs / sqz, one epoch (125 steps of 64 = the 8,000
// training digits) estimated as 125 × the median, and memory: sqz's TrainProgram.memory
// (parameters + gradients, peak activations, scratch), its Adam slots and its Wasm memory;
// tfjs' live tensor bytes (tf.memory(): variables, Adam slots) and its Wasm heap; and the
// process's resident set now and at its peak (VmHWM of /proc/self/status, where there is one),
// which covers both engines. Then sqz's per-node profile of the CNN step (forward and backward
// ms per node, plus the loss and the optimizer), top nodes first.
// The wasm backend registers itself with tfjs-core when imported: it goes first.
import "@tensorflow/tfjs-backend-wasm";
import * as tf from "@tensorflow/tfjs-core";
import { bestBuild } from "../src/kernels/features.ts";
import { KernelModule } from "../src/kernels/module.ts";
import { importModel } from "../src/onnx/import.ts";
import { inferShapes } from "../src/graph/shape_inference.ts";
import { TrainProgram } from "../src/train/program.ts";
import { Optimizer } from "../src/train/optim.ts";
import { softmaxCrossEntropy } from "../src/train/loss.ts";
import { epochBatches, gatherRows } from "../src/train/batches.ts";
import { MNIST_PIXELS, mnistSplit, type Split } from "../src/eval/mnist.ts";
import { seededRandom } from "../src/eval/metrics.ts";
import { batch, makeCnn, makeMlp, type Net } from "../scripts/train_mnist.ts";
import { initTfjs, tfjsInfo } from "./baselines/tfjs.ts";
import { measureInterleaved, table } from "./timing.ts";

const BATCH = 64;
const CLASSES = 10;
const LR = 1e-3;
const STEPS_PER_EPOCH = 125; // 8,000 training digits
const PROFILE_STEPS = 10;

interface Memory {
  /** sqz: parameters and their gradients. */
  param_bytes?: number;
  /** sqz: Adam's two slots per parameter. */
  optimizer_bytes?: number;
  /** sqz: activations kept for backward, at peak. */
  activation_bytes?: number;
  /** sqz: the reused Wasm scratch blocks. */
  scratch_bytes?: number;
  /** tfjs: bytes of all live tensors (variables, Adam slots). */
  tensor_bytes?: number;
  /** The engine's Wasm memory (sqz: its kernel module; tfjs: the backend's heap). */
  wasm_bytes: number;
  /** The whole process (both engines), after this model's runs. */
  rss_bytes: number;
  /** The process's peak resident set so far (VmHWM), where the OS reports it. */
  peak_rss_bytes?: number;
}

interface Row {
  suite: "train";
  model: string;
  impl: "sqz" | "tfjs-wasm";
  batch: number;
  median_ms: number;
  runs: number;
  /** 125 × median: one pass over the 8,000 training digits. */
  epoch_s: number;
  /** tfjs median / this median. */
  vs_tfjs: number;
  memory: Memory;
}

interface ProfileRow {
  suite: "train";
  profile: string;
  node: string;
  op: string;
  forward_ms: number;
  backward_ms: number;
  share: number;
}

/** Peak resident set (Linux VmHWM), or undefined. */
function peakRss(): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(Deno.readTextFileSync("/proc/self/status"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

function tfjsWasmBytes(): number {
  const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return b.wasm?.HEAPU8?.byteLength ?? 0;
}

// ---------------------------------------------------------------------------
// ONNX weights into train_mnist's tfjs nets

/** ONNX OIHW [o, c, kh, kw] → tfjs HWIO [kh, kw, c, o]. */
function hwio(w: Float32Array, o: number, c: number, k: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let co = 0; co < o; co++) {
    for (let ci = 0; ci < c; ci++) {
      for (let j = 0; j < k; j++) out[(j * c + ci) * o + co] = w[(co * c + ci) * k + j];
    }
  }
  return out;
}

/** Gemm B [out, in] (transB) → tfjs [in, out], tfjs row r(i) for ONNX input i. */
function inOut(w: Float32Array, outDim: number, inDim: number, r = (i: number) => i) {
  const out = new Float32Array(w.length);
  for (let o = 0; o < outDim; o++) {
    for (let i = 0; i < inDim; i++) out[r(i) * outDim + o] = w[o * inDim + i];
  }
  return out;
}

function loadInto(net: Net, onnx: (name: string) => Float32Array): void {
  const set = (k: string, data: Float32Array) => {
    const v = net.params[k];
    v.assign(tf.tensor(data, v.shape));
  };
  if (net.name === "cnn") {
    set("w1", hwio(onnx("conv1.weight"), 16, 1, 9));
    set("b1", onnx("conv1.bias"));
    set("w2", hwio(onnx("conv2.weight"), 32, 16, 9));
    set("b2", onnx("conv2.bias"));
    // ONNX flattens NCHW (c·49 + hw), train_mnist's tfjs net NHWC (hw·32 + c).
    set("w3", inOut(onnx("fc1.weight"), 64, 1568, (i) => (i % 49) * 32 + Math.floor(i / 49)));
    set("b3", onnx("fc1.bias"));
    set("w4", inOut(onnx("fc2.weight"), 10, 64));
    set("b4", onnx("fc2.bias"));
  } else {
    set("w1", inOut(onnx("fc1.weight"), 256, 784));
    set("b1", onnx("fc1.bias"));
    set("w2", inOut(onnx("fc2.weight"), 128, 256));
    set("b2", onnx("fc2.bias"));
    set("w3", inOut(onnx("fc3.weight"), 10, 128));
    set("b3", onnx("fc3.bias"));
  }
}

// ---------------------------------------------------------------------------
// The two steps

interface SqzTrainer {
  step(): number;
  program: TrainProgram;
  mod: KernelModule;
  /** Loss of a batch without training on it. */
  loss(idx: Int32Array): number;
  /** Profiled steps: per node ms per step, plus loss and optimizer. */
  profile(steps: number): ProfileRow[];
  dispose(): void;
}

async function sqzTrainer(
  bytes: Uint8Array,
  train: Split,
  labels: Int32Array,
  batches: Int32Array[],
  model: string,
): Promise<SqzTrainer> {
  const g = importModel(bytes);
  g.topoSort();
  inferShapes(g);
  const mod = await KernelModule.load("auto");
  const p = await TrainProgram.create(g, { mod });
  const opt = new Optimizer(p.params, { kind: "adam" });
  const x = new Float32Array(BATCH * MNIST_PIXELS);
  const y = new Int32Array(BATCH);
  const dLogits = new Float32Array(BATCH * CLASSES);
  const input = { type: "float32" as const, dims: [BATCH, 1, 28, 28], data: x };
  let k = 0;
  const load = (idx: Int32Array) => {
    gatherRows(train.x.data, MNIST_PIXELS, idx, x);
    for (let i = 0; i < idx.length; i++) y[i] = labels[idx[i]];
  };
  const timed = { loss: 0, optimizer: 0 };
  let profiling = false;
  const step = () => {
    load(batches[k++ % batches.length]);
    const z = p.forward({ input }, true).logits.data as Float32Array;
    const t0 = profiling ? performance.now() : 0;
    const { loss } = softmaxCrossEntropy(z, BATCH, CLASSES, y, dLogits);
    if (profiling) timed.loss += performance.now() - t0;
    p.zeroGrad();
    p.backward({ logits: dLogits });
    const t1 = profiling ? performance.now() : 0;
    opt.step(LR);
    if (profiling) timed.optimizer += performance.now() - t1;
    return loss;
  };
  return {
    step,
    program: p,
    mod,
    loss(idx) {
      load(idx);
      const z = p.forward({ input }, true).logits.data as Float32Array;
      return softmaxCrossEntropy(z, BATCH, CLASSES, y).loss;
    },
    profile(steps) {
      p.profile = new Map();
      profiling = true;
      timed.loss = timed.optimizer = 0;
      const t0 = performance.now();
      for (let i = 0; i < steps; i++) step();
      const stepMs = (performance.now() - t0) / steps;
      profiling = false;
      const rows = [...p.profile].map(([node, e]) => ({
        node,
        op: e.op,
        forward_ms: e.forwardMs / steps,
        backward_ms: e.backwardMs / steps,
      }));
      rows.push({
        node: "(loss)",
        op: "softmaxCrossEntropy",
        forward_ms: timed.loss / steps,
        backward_ms: 0,
      });
      rows.push({
        node: "(optimizer)",
        op: "Adam",
        forward_ms: 0,
        backward_ms: timed.optimizer / steps,
      });
      p.profile = undefined;
      // Batch gathering, zeroGrad, the program's own bookkeeping (gradient sums, accumulation
      // into the parameters' grads), garbage collection.
      const inNodes = rows.reduce((s, r) => s + r.forward_ms + r.backward_ms, 0);
      rows.push({
        node: "(rest of the step)",
        op: "-",
        forward_ms: 0,
        backward_ms: Math.max(0, stepMs - inNodes),
      });
      const total = rows.reduce((s, r) => s + r.forward_ms + r.backward_ms, 0);
      return rows
        .map((r) => ({
          suite: "train" as const,
          profile: model,
          ...r,
          forward_ms: +r.forward_ms.toFixed(4),
          backward_ms: +r.backward_ms.toFixed(4),
          share: +((r.forward_ms + r.backward_ms) / total).toFixed(4),
        }))
        .sort((a, b) => b.forward_ms + b.backward_ms - (a.forward_ms + a.backward_ms));
    },
    dispose: () => p.dispose(),
  };
}

interface TfjsTrainer {
  step(): number;
  loss(idx: Int32Array): number;
  dispose(): void;
}

function tfjsTrainer(net: Net, train: Split, batches: Int32Array[]): TfjsTrainer {
  const opt = tf.train.adam(LR);
  let k = 0;
  return {
    step() {
      const idx = batches[k++ % batches.length];
      const l = tf.tidy(() => {
        const { x, y } = batch(train, idx);
        const { loss, grads } = net.lossAndGrads(x, y);
        opt.applyGradients(Object.entries(grads).map(([name, tensor]) => ({ name, tensor })));
        return loss;
      });
      const v = l.dataSync()[0];
      l.dispose();
      return v;
    },
    loss(idx) {
      return tf.tidy(() => {
        const { x, y } = batch(train, idx);
        return net.lossAndGrads(x, y).loss.dataSync()[0];
      });
    },
    dispose: () => opt.dispose(),
  };
}

// ---------------------------------------------------------------------------

const mb = (b: number | undefined) => (b === undefined ? "-" : `${(b / 2 ** 20).toFixed(1)} MB`);

export async function benchTrain({ json = false, quick = false } = {}): Promise<Row[]> {
  await initTfjs();
  const { train } = await mnistSplit(0);
  const labels = Int32Array.from(train.y);
  const batches = epochBatches(train.y.length, BATCH, 0, 0, true);
  if (!json) {
    const t = tfjsInfo();
    console.log(
      `training step, batch ${BATCH}, ${train.y.length} MNIST training digits; ` +
        `tfjs ${t.version} ${t.backend}, ${t.threads} thread, simd=${t.simd}; ` +
        `sqz kernel build ${bestBuild()}, 1 thread\n`,
    );
  }
  const opts = quick
    ? { minRounds: 5, maxRounds: 20, budgetMs: 3000, warmupMs: 300 }
    : { minRounds: 15, maxRounds: 200, budgetMs: 20000, warmupMs: 1000 };
  const models: [string, (r: () => number) => Net][] = [
    ["mnist_cnn", makeCnn],
    ["mnist_mlp", makeMlp],
  ];
  const rows: Row[] = [];
  const profiles: ProfileRow[] = [];
  const checks: string[] = [];
  for (const [model, make] of models) {
    const bytes = Deno.readFileSync(new URL(`../models/${model}.onnx`, import.meta.url));
    const sqz = await sqzTrainer(bytes, train, labels, batches, model);
    const g = importModel(bytes);
    const net = make(seededRandom(1));
    loadInto(net, (name) => g.values.get(name)!.constant!.data as Float32Array);
    const tfj = tfjsTrainer(net, train, batches);
    const l0 = sqz.loss(batches[0]), l1 = tfj.loss(batches[0]);
    checks.push(
      `${model}: loss of the first batch before training, sqz ${l0.toExponential(6)}, ` +
        `tfjs ${l1.toExponential(6)}`,
    );
    const [ts, tt] = await measureInterleaved([() => void sqz.step(), () => void tfj.step()], opts);
    if (model === "mnist_cnn") profiles.push(...sqz.profile(PROFILE_STEPS));
    const rss = Deno.memoryUsage().rss, peak = peakRss();
    const m = sqz.program.memory;
    const sqzMem: Memory = {
      param_bytes: m.paramBytes,
      optimizer_bytes: m.paramBytes, // two slots per parameter, as params + grads
      activation_bytes: m.activationBytes,
      scratch_bytes: m.scratchBytes,
      wasm_bytes: sqz.mod.memory.buffer.byteLength,
      rss_bytes: rss,
      peak_rss_bytes: peak,
    };
    const tfMem: Memory = {
      tensor_bytes: tf.memory().numBytes,
      wasm_bytes: tfjsWasmBytes(),
      rss_bytes: rss,
      peak_rss_bytes: peak,
    };
    const row = (impl: Row["impl"], t: { median_ms: number; runs: number }, memory: Memory) => ({
      suite: "train" as const,
      model,
      impl,
      batch: BATCH,
      median_ms: +t.median_ms.toFixed(3),
      runs: t.runs,
      epoch_s: +(t.median_ms * STEPS_PER_EPOCH / 1000).toFixed(2),
      vs_tfjs: +(tt.median_ms / t.median_ms).toFixed(2),
      memory,
    });
    const pair = [row("sqz", ts, sqzMem), row("tfjs-wasm", tt, tfMem)];
    rows.push(...pair);
    if (json) pair.forEach((r) => console.log(JSON.stringify(r)));
    sqz.dispose();
    tfj.dispose();
    for (const v of Object.values(net.params)) v.dispose();
  }
  if (json) {
    profiles.forEach((r) => console.log(JSON.stringify(r)));
    return rows;
  }
  console.log(checks.join("\n") + "\n");
  console.log(table(
    ["model", "impl", "median ms/step", "epoch (125 steps) s", "speedup tfjs/sqz", "runs"],
    rows.map((r) => [
      r.model,
      r.impl,
      r.median_ms.toFixed(2),
      r.epoch_s.toFixed(2),
      r.impl === "sqz" ? `${r.vs_tfjs.toFixed(2)}x` : "-",
      r.runs,
    ]),
  ));
  console.log();
  console.log(table(
    ["model", "impl", "params+grads", "optimizer", "activations", "scratch", "tensors", "wasm"],
    rows.map((r) => [
      r.model,
      r.impl,
      mb(r.memory.param_bytes),
      mb(r.memory.optimizer_bytes),
      mb(r.memory.activation_bytes),
      mb(r.memory.scratch_bytes),
      mb(r.memory.tensor_bytes),
      mb(r.memory.wasm_bytes),
    ]),
  ));
  const last = rows.at(-1)!.memory;
  console.log(
    `process (both engines): rss ${mb(last.rss_bytes)}, peak rss ${mb(last.peak_rss_bytes)}\n`,
  );
  const total = profiles.reduce((s, r) => s + r.forward_ms + r.backward_ms, 0);
  console.log(
    `sqz profile, mnist_cnn step (mean of ${PROFILE_STEPS} consecutive steps, ` +
      `${total.toFixed(2)} ms per step):`,
  );
  console.log(table(
    ["node", "op", "forward ms", "backward ms", "total ms", "share"],
    profiles.slice(0, 14).map((r) => [
      r.node,
      r.op,
      r.forward_ms.toFixed(3),
      r.backward_ms.toFixed(3),
      (r.forward_ms + r.backward_ms).toFixed(3),
      `${(100 * r.share).toFixed(1)}%`,
    ]),
  ));
  return rows;
}

if (import.meta.main) {
  await benchTrain({ json: Deno.args.includes("--json"), quick: Deno.args.includes("--quick") });
}
