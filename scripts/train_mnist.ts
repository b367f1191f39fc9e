// Trains the two MNIST reference models (models/mnist_cnn.onnx, models/mnist_mlp.onnx) with
// TensorFlow.js on the 8,000 training digits of src/eval/mnist.ts, exports them to ONNX, and
// measures them in sqz on the 2,000 held-out digits; writes models/README.md with the numbers.
//
//   npx -y deno@2 run -A scripts/train_mnist.ts [--seed=0] [--cnn-epochs=N] [--mlp-epochs=N]
//                                               [--out=models] [--gradcheck]
//
// tfjs-core's npm build ships no gradient registrations (they come with the @tensorflow/tfjs
// umbrella package, whose ESM files Deno cannot resolve), so autodiff is unavailable: the
// backward pass is written out below with tfjs ops, and `--gradcheck` checks it against finite
// differences. Adam is tfjs' own (tf.train.adam, applyGradients). Everything is seeded: the
// split, the initial weights, the batch order.
//
// tfjs tensors are NHWC with HWIO filters; the ONNX models are NCHW with OIHW filters, Gemm
// weights stored [out, in] with transB = 1 as PyTorch's Linear exports them, and the logits
// (no Softmax) as output "logits". The batch dim is symbolic ("N").
//
// The wasm backend must be imported before tfjs-core: importing it registers the backend.
import * as tfwasm from "@tensorflow/tfjs-backend-wasm";
import * as tf from "@tensorflow/tfjs-core";
import { fileURLToPath } from "node:url";
import { MNIST_PIXELS, mnistSplit, type Split } from "../src/eval/mnist.ts";
import { Session } from "../src/mod.ts";
import {
  DataType,
  makeModel,
  node,
  type NodeProto,
  tensorFromArray,
  type TensorProto,
  valueInfo,
} from "../src/onnx/proto.ts";

const WASM_DIR = fileURLToPath(
  new URL("../node_modules/@tensorflow/tfjs-backend-wasm/dist/", import.meta.url),
);

function arg(name: string, dflt: number): number {
  const a = Deno.args.find((s) => s.startsWith(`--${name}=`));
  const v = a ? Number(a.slice(name.length + 3)) : dflt;
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`--${name} must be an integer ≥ 0`);
  return v;
}

const SEED = arg("seed", 0);
const CNN_EPOCHS = arg("cnn-epochs", 24);
const MLP_EPOCHS = arg("mlp-epochs", 30);
const OUT = (Deno.args.find((s) => s.startsWith("--out="))?.slice(6)) ??
  fileURLToPath(new URL("../models", import.meta.url));
const BATCH = 64;

// ---------------------------------------------------------------------------
// Seeded randomness

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** He-normal initial weights (Box–Muller), for ReLU layers with `fanIn` inputs. */
function heNormal(n: number, fanIn: number, rand: () => number): Float32Array {
  const sd = Math.sqrt(2 / fanIn);
  return Float32Array.from({ length: n }, () => {
    const u = 1 - rand(), v = rand();
    return sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  });
}

function permutation(n: number, rand: () => number): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

// ---------------------------------------------------------------------------
// Layers with explicit backward passes

/**
 * The transposed im2col matrix of 3×3 "same" patches of an NHWC tensor: [9·C, B·H·W], row
 * (i·3 + j)·C + c holding x[b, y + i − 1, x + j − 1, c] over all (b, y, x). Then the filter
 * gradient of a conv is patchesᵀ · dz, [9·C, O], which is the HWIO filter's layout.
 */
function patchesT(x: tf.Tensor4D): tf.Tensor2D {
  const [n, h, w, c] = x.shape;
  // Channels first, so each (i, j) window is a block of rows and the concat is contiguous.
  const p = tf.transpose(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), [3, 0, 1, 2]);
  const rows: tf.Tensor2D[] = [];
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      rows.push(tf.reshape(tf.slice(p, [0, 0, i, j], [c, n, h, w]), [c, n * h * w]));
    }
  }
  return tf.concat(rows, 0);
}

/** A 3×3 "same" conv's input gradient: dz correlated with the flipped, I/O-swapped filter. */
function convInputGrad(dz: tf.Tensor4D, w: tf.Tensor): tf.Tensor4D {
  const flipped = tf.transpose(tf.reverse(w as tf.Tensor4D, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
  return tf.conv2d(dz, flipped, 1, "same");
}

function maxPoolGrad(dy: tf.Tensor4D, input: tf.Tensor4D, output: tf.Tensor4D): tf.Tensor4D {
  // The kernel tfjs' own MaxPool gradient runs.
  return tf.engine().runKernel(
    "MaxPoolGrad",
    { dy, input, output },
    { filterSize: 2, strides: 2, pad: "valid" },
  ) as tf.Tensor4D;
}

const reluGrad = (d: tf.Tensor, z: tf.Tensor) => tf.mul(d, tf.step(z));

export interface Net {
  name: string;
  params: Record<string, tf.Variable>;
  /** Logits for an NHWC batch. */
  forward(x: tf.Tensor4D): tf.Tensor2D;
  /** Mean softmax cross-entropy over the batch and its gradients by parameter name. */
  lossAndGrads(
    x: tf.Tensor4D,
    y: tf.Tensor2D,
  ): { loss: tf.Scalar; grads: Record<string, tf.Tensor> };
}

/** Softmax cross-entropy of logits z against one-hot y: mean loss and dL/dz. */
function softmaxXent(z: tf.Tensor2D, y: tf.Tensor2D): { loss: tf.Scalar; dz: tf.Tensor2D } {
  const logp = tf.logSoftmax(z);
  const b = z.shape[0];
  const loss = tf.neg(tf.div(tf.sum(tf.mul(y, logp)), b)) as tf.Scalar;
  const dz = tf.div(tf.sub(tf.exp(logp), y), b) as tf.Tensor2D;
  return { loss, dz };
}

function variable(name: string, dims: number[], data: Float32Array): tf.Variable {
  return tf.variable(tf.tensor(data, dims), true, name);
}

/**
 * Dense layer gradient: dW = xᵀ·dz, db = Σ dz, dx = dz·Wᵀ. The transposes are explicit: the
 * wasm backend's matMul with a transpose flag is 4–10× slower than Transpose + plain matMul.
 */
function denseGrads(x: tf.Tensor2D, dz: tf.Tensor2D, w: tf.Tensor) {
  return {
    dw: tf.matMul(tf.transpose(x), dz),
    db: tf.sum(dz, 0),
    dx: tf.matMul(dz, tf.transpose(w as tf.Tensor2D)) as tf.Tensor2D,
  };
}

export function makeCnn(rand: () => number): Net {
  // Filters in tfjs' HWIO layout, [3, 3, in, out].
  const p = {
    w1: variable("cnn_w1", [3, 3, 1, 16], heNormal(9 * 16, 9, rand)),
    b1: variable("cnn_b1", [16], new Float32Array(16)),
    w2: variable("cnn_w2", [3, 3, 16, 32], heNormal(144 * 32, 144, rand)),
    b2: variable("cnn_b2", [32], new Float32Array(32)),
    w3: variable("cnn_w3", [1568, 64], heNormal(1568 * 64, 1568, rand)),
    b3: variable("cnn_b3", [64], new Float32Array(64)),
    w4: variable("cnn_w4", [64, 10], heNormal(64 * 10, 64, rand)),
    b4: variable("cnn_b4", [10], new Float32Array(10)),
  };
  const conv = (x: tf.Tensor4D, w: tf.Variable, b: tf.Variable) =>
    tf.add(tf.conv2d(x, w as tf.Tensor4D, 1, "same"), b) as tf.Tensor4D;
  const run = (x: tf.Tensor4D) => {
    const n = x.shape[0];
    const z1 = conv(x, p.w1, p.b1);
    const a1 = tf.relu(z1);
    const q1 = tf.maxPool(a1, 2, 2, "valid");
    const z2 = conv(q1, p.w2, p.b2);
    const a2 = tf.relu(z2);
    const q2 = tf.maxPool(a2, 2, 2, "valid");
    const f = tf.reshape(q2, [n, 1568]) as tf.Tensor2D;
    const z3 = tf.add(tf.matMul(f, p.w3), p.b3) as tf.Tensor2D;
    const a3 = tf.relu(z3);
    const z4 = tf.add(tf.matMul(a3, p.w4), p.b4) as tf.Tensor2D;
    return { z1, a1, q1, z2, a2, q2, f, z3, a3, z4 };
  };
  /** A conv's filter and bias gradients from its input x and output gradient dz. */
  const convGrads = (x: tf.Tensor4D, dz: tf.Tensor4D, w: tf.Variable) => {
    const o = dz.shape[3];
    const dz2 = tf.reshape(dz, [-1, o]) as tf.Tensor2D;
    return { dw: tf.reshape(tf.matMul(patchesT(x), dz2), w.shape), db: tf.sum(dz2, 0) };
  };
  return {
    name: "cnn",
    params: p,
    forward: (x) => run(x).z4,
    lossAndGrads(x, y) {
      const s = run(x);
      const n = x.shape[0];
      const { loss, dz } = softmaxXent(s.z4, y);
      const g4 = denseGrads(s.a3, dz, p.w4);
      const dz3 = reluGrad(g4.dx, s.z3) as tf.Tensor2D;
      const g3 = denseGrads(s.f, dz3, p.w3);
      const dq2 = tf.reshape(g3.dx, [n, 7, 7, 32]) as tf.Tensor4D;
      const dz2 = reluGrad(maxPoolGrad(dq2, s.a2, s.q2), s.z2) as tf.Tensor4D;
      const g2 = convGrads(s.q1, dz2, p.w2);
      const dq1 = convInputGrad(dz2, p.w2);
      const dz1 = reluGrad(maxPoolGrad(dq1, s.a1, s.q1), s.z1) as tf.Tensor4D;
      const g1 = convGrads(x, dz1, p.w1);
      return {
        loss,
        grads: {
          cnn_w1: g1.dw,
          cnn_b1: g1.db,
          cnn_w2: g2.dw,
          cnn_b2: g2.db,
          cnn_w3: g3.dw,
          cnn_b3: g3.db,
          cnn_w4: g4.dw,
          cnn_b4: g4.db,
        },
      };
    },
  };
}

export function makeMlp(rand: () => number): Net {
  const p = {
    w1: variable("mlp_w1", [784, 256], heNormal(784 * 256, 784, rand)),
    b1: variable("mlp_b1", [256], new Float32Array(256)),
    w2: variable("mlp_w2", [256, 128], heNormal(256 * 128, 256, rand)),
    b2: variable("mlp_b2", [128], new Float32Array(128)),
    w3: variable("mlp_w3", [128, 10], heNormal(128 * 10, 128, rand)),
    b3: variable("mlp_b3", [10], new Float32Array(10)),
  };
  const run = (x: tf.Tensor4D) => {
    const f = tf.reshape(x, [x.shape[0], 784]) as tf.Tensor2D;
    const z1 = tf.add(tf.matMul(f, p.w1), p.b1) as tf.Tensor2D;
    const a1 = tf.relu(z1);
    const z2 = tf.add(tf.matMul(a1, p.w2), p.b2) as tf.Tensor2D;
    const a2 = tf.relu(z2);
    const z3 = tf.add(tf.matMul(a2, p.w3), p.b3) as tf.Tensor2D;
    return { f, z1, a1, z2, a2, z3 };
  };
  return {
    name: "mlp",
    params: p,
    forward: (x) => run(x).z3,
    lossAndGrads(x, y) {
      const s = run(x);
      const { loss, dz } = softmaxXent(s.z3, y);
      const g3 = denseGrads(s.a2, dz, p.w3);
      const g2 = denseGrads(s.a1, reluGrad(g3.dx, s.z2) as tf.Tensor2D, p.w2);
      const g1 = denseGrads(s.f, reluGrad(g2.dx, s.z1) as tf.Tensor2D, p.w1);
      return {
        loss,
        grads: {
          mlp_w1: g1.dw,
          mlp_b1: g1.db,
          mlp_w2: g2.dw,
          mlp_b2: g2.db,
          mlp_w3: g3.dw,
          mlp_b3: g3.db,
        },
      };
    },
  };
}

// ---------------------------------------------------------------------------
// Training

/** Largest random translation of a training digit, in pixels (each axis). */
const MAX_SHIFT = 2;

/**
 * NHWC batch of the split's digits at `idx` (a 1-channel NCHW image is the same memory). With
 * `rand`, each digit is moved by a random whole-pixel offset of up to ±MAX_SHIFT per axis, the
 * uncovered border filled with background: 8,000 digits are few, and without this both nets
 * memorize them.
 */
export function batch(
  s: Split,
  idx: ArrayLike<number>,
  rand?: () => number,
): { x: tf.Tensor4D; y: tf.Tensor2D } {
  const data = new Float32Array(idx.length * MNIST_PIXELS);
  const labels = new Int32Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    const src = s.x.data.subarray(idx[i] * MNIST_PIXELS, (idx[i] + 1) * MNIST_PIXELS);
    labels[i] = s.y[idx[i]];
    if (!rand) {
      data.set(src, i * MNIST_PIXELS);
      continue;
    }
    const span = 2 * MAX_SHIFT + 1;
    const dy = Math.floor(rand() * span) - MAX_SHIFT, dx = Math.floor(rand() * span) - MAX_SHIFT;
    for (let y = 0; y < 28; y++) {
      const sy = y - dy;
      if (sy < 0 || sy >= 28) continue;
      for (let x = 0; x < 28; x++) {
        const sx = x - dx;
        if (sx >= 0 && sx < 28) data[i * MNIST_PIXELS + y * 28 + x] = src[sy * 28 + sx];
      }
    }
  }
  return {
    x: tf.tensor4d(data, [idx.length, 28, 28, 1]),
    y: tf.oneHot(tf.tensor1d(labels, "int32"), 10) as tf.Tensor2D,
  };
}

function predict(net: Net, s: Split): Uint8Array {
  const n = s.y.length;
  const out = new Uint8Array(n);
  for (let at = 0; at < n; at += 500) {
    const idx = Array.from({ length: Math.min(500, n - at) }, (_, i) => at + i);
    const pred = tf.tidy(() => tf.argMax(net.forward(batch(s, idx).x), 1));
    out.set(pred.dataSync() as Int32Array, at);
    pred.dispose();
  }
  return out;
}

function accuracy(pred: Uint8Array, y: Uint8Array): number {
  let ok = 0;
  for (let i = 0; i < y.length; i++) ok += pred[i] === y[i] ? 1 : 0;
  return ok / y.length;
}

function train(net: Net, s: Split, epochs: number, lr: number, rand: () => number): void {
  const n = s.y.length;
  const steps = Math.floor(n / BATCH);
  const opt = tf.train.adam(lr);
  for (let ep = 0; ep < epochs; ep++) {
    const t0 = performance.now();
    // Step decay: the last third of the epochs at a tenth of the rate.
    // (learningRate is protected in the typings, but applyGradients reads it on every step.)
    (opt as unknown as { learningRate: number }).learningRate = ep >= Math.ceil((2 * epochs) / 3)
      ? lr / 10
      : lr;
    const order = permutation(n, rand);
    let lossSum = 0;
    for (let k = 0; k < steps; k++) {
      const l = tf.tidy(() => {
        const { x, y } = batch(s, order.subarray(k * BATCH, (k + 1) * BATCH), rand);
        const { loss, grads } = net.lossAndGrads(x, y);
        opt.applyGradients(Object.entries(grads).map(([name, tensor]) => ({ name, tensor })));
        return loss;
      });
      lossSum += l.dataSync()[0];
      l.dispose();
    }
    console.log(
      `  ${net.name} epoch ${ep + 1}/${epochs}: loss ${(lossSum / steps).toFixed(4)} ` +
        `(${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
  }
  opt.dispose();
}

const l2 = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0));

/**
 * Checks each parameter's analytic gradient g against central finite differences of the loss
 * along two directions u (unit length): g itself and a random one. The derivative along u must
 * be g·u within 2% of |g| (float32 losses are too coarse to check single weights).
 */
function gradCheck(net: Net, s: Split): void {
  const rand = prng(99);
  // Zero biases put every background pixel exactly on ReLU's kink, where finite differences
  // mean nothing: move them off it first.
  for (const v of Object.values(net.params)) {
    if (v.shape.length === 1) v.assign(tf.tensor(heNormal(v.size, 100, rand), v.shape));
  }
  const { x, y } = batch(s, Array.from({ length: 32 }, (_, i) => i));
  const { grads } = net.lossAndGrads(x, y);
  const loss = () => net.lossAndGrads(x, y).loss.dataSync()[0];
  for (const [name, v] of Object.entries(net.params)) {
    const g = grads[v.name].dataSync() as Float32Array;
    const w = v.dataSync().slice() as Float32Array;
    const norm = l2(g);
    const random = heNormal(g.length, 1, rand);
    let worst = 0;
    for (const dir of [g, random]) {
      const len = l2(dir);
      const u = dir.map((d) => d / len);
      const eps = 1e-2;
      const at = (d: number) => {
        v.assign(tf.tensor(w.map((wi, i) => wi + d * u[i]), v.shape));
        return loss();
      };
      const numeric = (at(eps) - at(-eps)) / (2 * eps);
      const analytic = g.reduce((acc, gi, i) => acc + gi * u[i], 0);
      v.assign(tf.tensor(w, v.shape));
      worst = Math.max(worst, Math.abs(numeric - analytic) / norm);
    }
    console.log(
      `  gradcheck ${net.name}.${name}: |g| ${norm.toExponential(2)}, error ${
        (100 * worst).toFixed(2)
      }% of |g|`,
    );
    if (worst > 0.02) {
      throw new Error(`gradient of ${net.name}.${name} disagrees with finite differences`);
    }
  }
}

// ---------------------------------------------------------------------------
// ONNX export

const f32 = (name: string, dims: number[], data: Float32Array): TensorProto =>
  tensorFromArray(name, DataType.FLOAT, dims, data);

/** tfjs HWIO filter [3, 3, C, O] → ONNX OIHW [O, C, 3, 3]. */
function oihw(hwio: Float32Array, c: number, o: number): Float32Array {
  const out = new Float32Array(o * c * 9);
  for (let k = 0; k < 9; k++) { // k = kh·3 + kw
    for (let ci = 0; ci < c; ci++) {
      for (let co = 0; co < o; co++) out[(co * c + ci) * 9 + k] = hwio[(k * c + ci) * o + co];
    }
  }
  return out;
}

/** [in, out] → [out, in] (Gemm transB = 1), with rows of `in` optionally permuted. */
function transposed(w: Float32Array, inDim: number, outDim: number, src = (i: number) => i) {
  const out = new Float32Array(inDim * outDim);
  for (let i = 0; i < inDim; i++) {
    const r = src(i);
    for (let o = 0; o < outDim; o++) out[o * inDim + i] = w[r * outDim + o];
  }
  return out;
}

function onnxModel(nodes: NodeProto[], initializers: TensorProto[], name: string): Uint8Array {
  return makeModel({
    nodes,
    inputs: [valueInfo("input", DataType.FLOAT, ["N", 1, 28, 28])],
    outputs: [valueInfo("logits", DataType.FLOAT, ["N", 10])],
    initializers,
    opset: 13,
    graphName: name,
    producerName: "sqz scripts/train_mnist.ts (tfjs)",
  });
}

function exportCnn(net: Net): Uint8Array {
  const w = (k: string) => net.params[k].dataSync() as Float32Array;
  // tfjs flattens q2 as NHWC, (h·7 + w)·32 + c; ONNX Flatten of NCHW gives c·49 + h·7 + w.
  const nhwcRow = (i: number) => {
    const c = Math.floor(i / 49), hw = i % 49;
    return hw * 32 + c;
  };
  return onnxModel(
    [
      node("Conv", ["input", "conv1.weight", "conv1.bias"], ["conv1"], {
        kernel_shape: [3, 3],
        pads: [1, 1, 1, 1],
      }, "conv1"),
      node("Relu", ["conv1"], ["relu1"], {}, "relu1"),
      node("MaxPool", ["relu1"], ["pool1"], { kernel_shape: [2, 2], strides: [2, 2] }, "pool1"),
      node("Conv", ["pool1", "conv2.weight", "conv2.bias"], ["conv2"], {
        kernel_shape: [3, 3],
        pads: [1, 1, 1, 1],
      }, "conv2"),
      node("Relu", ["conv2"], ["relu2"], {}, "relu2"),
      node("MaxPool", ["relu2"], ["pool2"], { kernel_shape: [2, 2], strides: [2, 2] }, "pool2"),
      node("Flatten", ["pool2"], ["flat"], { axis: 1 }, "flatten"),
      node("Gemm", ["flat", "fc1.weight", "fc1.bias"], ["fc1"], { transB: 1 }, "fc1"),
      node("Relu", ["fc1"], ["relu3"], {}, "relu3"),
      node("Gemm", ["relu3", "fc2.weight", "fc2.bias"], ["logits"], { transB: 1 }, "fc2"),
    ],
    [
      f32("conv1.weight", [16, 1, 3, 3], oihw(w("w1"), 1, 16)),
      f32("conv1.bias", [16], w("b1")),
      f32("conv2.weight", [32, 16, 3, 3], oihw(w("w2"), 16, 32)),
      f32("conv2.bias", [32], w("b2")),
      f32("fc1.weight", [64, 1568], transposed(w("w3"), 1568, 64, nhwcRow)),
      f32("fc1.bias", [64], w("b3")),
      f32("fc2.weight", [10, 64], transposed(w("w4"), 64, 10)),
      f32("fc2.bias", [10], w("b4")),
    ],
    "mnist_cnn",
  );
}

function exportMlp(net: Net): Uint8Array {
  const w = (k: string) => net.params[k].dataSync() as Float32Array;
  return onnxModel(
    [
      node("Flatten", ["input"], ["flat"], { axis: 1 }, "flatten"),
      node("Gemm", ["flat", "fc1.weight", "fc1.bias"], ["fc1"], { transB: 1 }, "fc1"),
      node("Relu", ["fc1"], ["relu1"], {}, "relu1"),
      node("Gemm", ["relu1", "fc2.weight", "fc2.bias"], ["fc2"], { transB: 1 }, "fc2"),
      node("Relu", ["fc2"], ["relu2"], {}, "relu2"),
      node("Gemm", ["relu2", "fc3.weight", "fc3.bias"], ["logits"], { transB: 1 }, "fc3"),
    ],
    [
      f32("fc1.weight", [256, 784], transposed(w("w1"), 784, 256)),
      f32("fc1.bias", [256], w("b1")),
      f32("fc2.weight", [128, 256], transposed(w("w2"), 256, 128)),
      f32("fc2.bias", [128], w("b2")),
      f32("fc3.weight", [10, 128], transposed(w("w3"), 128, 10)),
      f32("fc3.bias", [10], w("b3")),
    ],
    "mnist_mlp",
  );
}

/** Writes beside the target, then renames: readers never see a half-written file. */
async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  if (typeof data === "string") await Deno.writeTextFile(tmp, data);
  else await Deno.writeFile(tmp, data);
  await Deno.rename(tmp, path);
}

/** Top-1 predictions of an ONNX model in sqz's Session, the whole test split in one run. */
async function sqzPredict(bytes: Uint8Array, s: Split): Promise<Uint8Array> {
  const session = await Session.create(bytes);
  try {
    const { logits } = await session.run({ input: s.x });
    const z = logits.data as Float32Array;
    return Uint8Array.from({ length: s.y.length }, (_, i) => {
      let best = 0;
      for (let k = 1; k < 10; k++) if (z[i * 10 + k] > z[i * 10 + best]) best = k;
      return best;
    });
  } finally {
    await session.release();
  }
}

// ---------------------------------------------------------------------------

interface Result {
  file: string;
  params: number;
  bytes: number;
  epochs: number;
  lr: number;
  seconds: number;
  tfjsAcc: number;
  sqzAcc: number;
  agree: number;
}

async function main(): Promise<void> {
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
  tf.env().set("WASM_HAS_SIMD_SUPPORT", true);
  tfwasm.setWasmPaths(WASM_DIR);
  if (!(await tf.setBackend("wasm"))) throw new Error(`tfjs: no wasm backend in ${WASM_DIR}`);
  await tf.ready();
  const { train: trainSet, test } = await mnistSplit(SEED);
  console.log(
    `tfjs ${tfwasm.version_wasm} (${tf.getBackend()}), ${trainSet.y.length} train / ` +
      `${test.y.length} test digits, seed ${SEED}`,
  );
  // One PRNG stream per net (initial weights, then batch order and shifts), so each model
  // depends only on the seed and its own settings.
  const cnnRand = prng(2 * SEED + 1), mlpRand = prng(2 * SEED + 2);
  const nets: [Net, () => number, number, number, (n: Net) => Uint8Array, string][] = [
    [makeCnn(cnnRand), cnnRand, CNN_EPOCHS, 1e-3, exportCnn, "mnist_cnn.onnx"],
    [makeMlp(mlpRand), mlpRand, MLP_EPOCHS, 1e-3, exportMlp, "mnist_mlp.onnx"],
  ];
  if (Deno.args.includes("--gradcheck")) {
    for (const [net] of nets) gradCheck(net, trainSet);
    return;
  }
  await Deno.mkdir(OUT, { recursive: true });
  const results: Result[] = [];
  for (const [net, rand, epochs, lr, exporter, file] of nets) {
    const t0 = performance.now();
    train(net, trainSet, epochs, lr, rand);
    const seconds = (performance.now() - t0) / 1000;
    const tfjsPred = predict(net, test);
    const bytes = exporter(net);
    const sqzPred = await sqzPredict(bytes, test);
    let agree = 0;
    for (let i = 0; i < sqzPred.length; i++) agree += sqzPred[i] === tfjsPred[i] ? 1 : 0;
    const r: Result = {
      file,
      params: Object.values(net.params).reduce((n, v) => n + v.size, 0),
      bytes: bytes.length,
      epochs,
      lr,
      seconds,
      tfjsAcc: accuracy(tfjsPred, test.y),
      sqzAcc: accuracy(sqzPred, test.y),
      agree: agree / test.y.length,
    };
    console.log(
      `${file}: ${seconds.toFixed(1)} s, test accuracy tfjs ${pct(r.tfjsAcc)}, sqz ` +
        `${pct(r.sqzAcc)}, top-1 agreement ${pct(r.agree)}`,
    );
    await writeAtomic(`${OUT}/${file}`, bytes);
    results.push(r);
  }
  // Sections other scripts own (the MNIST-rows transformer's) are kept after ours.
  let others = "";
  try {
    const old = await Deno.readTextFile(`${OUT}/README.md`);
    const at = old.indexOf("\n# MNIST-rows transformer");
    if (at >= 0) others = old.slice(at);
  } catch { /* first run */ }
  await writeAtomic(`${OUT}/README.md`, readme(results, tfwasm.version_wasm) + others);
  console.log(`wrote ${results.map((r) => r.file).join(", ")} and README.md to ${OUT}`);
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

function readme(results: Result[], tfjsVersion: string): string {
  const row = (r: Result) =>
    `| ${r.file} | ${r.params.toLocaleString("en-US")} | ${r.bytes.toLocaleString("en-US")} | ` +
    `${r.epochs} | ${r.lr} | ${r.seconds.toFixed(0)} s | ${pct(r.tfjsAcc)} | **${
      pct(r.sqzAcc)
    }** | ` +
    `${pct(r.agree)} |`;
  return `# MNIST reference models

Two small float32 classifiers of the 28×28 MNIST digits, trained from scratch, for sqz's
compression tests and demos. Made by \`scripts/train_mnist.ts\`:

    npx -y deno@2 run -A scripts/train_mnist.ts

## Models

Both take \`input\`: float32 [N, 1, 28, 28] (NCHW, pixels in [0, 1], 0 = background; N is
symbolic) and return \`logits\`: float32 [N, 10] (no Softmax). ONNX opset 13; Gemm weights are
[out, in] with transB = 1, as PyTorch exports \`nn.Linear\`.

- \`mnist_cnn.onnx\`: Conv(1→16, 3×3, pad 1) → Relu → MaxPool 2×2 → Conv(16→32, 3×3, pad 1)
  → Relu → MaxPool 2×2 → Flatten (1,568) → Gemm(1568→64) → Relu → Gemm(64→10).
- \`mnist_mlp.onnx\`: Flatten (784) → Gemm(784→256) → Relu → Gemm(256→128) → Relu →
  Gemm(128→10).

## Data and training

The 10,000 digits of the npm package \`mnist\` 1.1.0 (a subset of the MNIST set; loader:
\`src/eval/mnist.ts\`), split by \`mnistSplit(${SEED})\`: 2,000 test digits (200 per class, never
seen in training) and 8,000 training digits.

TensorFlow.js ${tfjsVersion} (tfjs-core, wasm backend, one thread), float32. He-normal initial
weights and batch order from seeded PRNGs (seed ${SEED}); batch ${BATCH}; Adam (β₁ 0.9, β₂ 0.999),
learning rate as listed for the first two thirds of the epochs and a tenth of it after; softmax
cross-entropy. Each training digit is shifted by a random whole-pixel offset of up to
±${MAX_SHIFT} px per axis (8,000 digits are few: without it both nets memorize them); no other
regularization. tfjs-core has no layers API and no gradient registrations on npm, so the
backward pass is written out in the script (\`--gradcheck\` verifies it against finite
differences).

## Accuracy on the 2,000 test digits

| model | parameters | bytes | epochs | learning rate | train time | tfjs | sqz | sqz/tfjs top-1 agreement |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${results.map(row).join("\n")}

"sqz" is the accuracy of the exported .onnx file run in sqz's \`Session\` (the number
\`tests/mnist_test.ts\` checks); "tfjs" is the trained model before export. Training times are
on a 2-core machine.
`;
}

if (import.meta.main) await main();
