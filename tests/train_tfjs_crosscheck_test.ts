// Whole-network gradients of sqz's training engine against an independent implementation:
// TensorFlow.js' autodiff (tf.valueAndGrads) on its cpu backend. For the MNIST reference CNN
// and MLP (models/*.onnx, trained weights) and a PyTorch-style residual net with
// BatchNormalization in training mode (batch statistics), on 16 real digits, the mean softmax
// cross-entropy's gradients of every weight and bias, and of the input, from
//   sqz:  TrainProgram.forward → softmaxCrossEntropy (src/train/loss.ts) → backward
//   tfjs: the same network written with tfjs ops from the ONNX weights, in NHWC with HWIO
//         filters as tfjs wants them (the weights stay in ONNX layout and are transposed inside
//         the differentiated function, so their gradients come back in ONNX layout), the loss
//         tf.losses.softmaxCrossEntropy, BatchNorm as tf.batchNorm over tf.moments of the batch
// must agree, as must the logits, the loss and the BatchNorm running statistics.
//
// tfjs' gradient registrations only load under Deno from the esbuild bundle that
// `deno task setup` writes (scripts/bundle_tfjs_grads.ts): without it these tests fail.
//
// Tolerance: both sides compute in float32 but sum in different orders (sqz's Wasm GEMM
// microkernels, tfjs-backend-cpu's plain loops), and each element's rounding error grows with
// the number and magnitude of the terms summed into it, not with its own value: an element
// that cancels to nearly 0 can have a large error relative to itself. So the error of a
// tensor is measured as max |sqz − tfjs| / max |tfjs| over its elements. A weight gradient
// here sums up to 16·28·28 = 12,544 products after a backward chain of up to four layers;
// float32 rounding (2⁻²⁴ ≈ 6e-8 per operation) accounts for errors of order 1e-6, and what is
// measured is ≲ 1e-5. The bound, 1e-4, is ~10× that and far below what a wrong gradient gives
// (a transposed filter, a missed ReLU mask, a wrong BatchNorm term: errors of order 1e-1–1).
// A discrete difference (a ReLU or MaxPool decision taken differently by the two rounding
// orders) would show up as a localized error larger than this; none occurs on these inputs.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import type * as TfCore from "@tensorflow/tfjs-core";
import { importModel } from "../src/onnx/import.ts";
import { inferShapes } from "../src/graph/shape_inference.ts";
import type { Graph } from "../src/graph/ir.ts";
import { TrainProgram } from "../src/train/program.ts";
import { softmaxCrossEntropy } from "../src/train/loss.ts";
import { mnistSplit } from "../src/eval/mnist.ts";
import { seededRandom } from "../src/eval/metrics.ts";
import {
  DataType,
  makeModel,
  node,
  type NodeProto,
  tensorFromArray,
  type TensorProto,
  valueInfo,
} from "../src/onnx/proto.ts";

type TF = typeof TfCore;
type T = TfCore.Tensor;

const BATCH = 16;
const CLASSES = 10;
/** max |sqz − tfjs| / max |tfjs| per tensor (see the header). */
const GRAD_TOL = 1e-4;
const LOGIT_TOL = 1e-5;

const BUNDLE = new URL("../node_modules/.sqz/tfjs_autodiff.js", import.meta.url);

let tfPromise: Promise<TF> | undefined;

/** tfjs-core with its gradients and the cpu backend, from the setup bundle. */
function loadTf(): Promise<TF> {
  tfPromise ??= (async () => {
    try {
      Deno.statSync(BUNDLE);
    } catch {
      throw new Error(
        `the tfjs autodiff bundle ${fileURLToPath(BUNDLE)} is missing: it is built by ` +
          "`deno task setup` (scripts/bundle_tfjs_grads.ts); run " +
          "`npx -y deno@2 run -A scripts/bundle_tfjs_grads.ts` and test again",
      );
    }
    // A computed specifier: type checking does not follow it (the types are tfjs-core's own).
    const tf = (await import(BUNDLE.href)) as TF;
    // PROD only silences warnings (the "install tfjs-node" banner); IS_TEST would also turn on
    // kernel leak checks, which tf.losses.softmaxCrossEntropy's custom gradient trips.
    tf.env().set("PROD", true);
    if (!(await tf.setBackend("cpu"))) throw new Error("tfjs: the cpu backend did not start");
    await tf.ready();
    return tf;
  })();
  return tfPromise;
}

// ---------------------------------------------------------------------------
// Data and the sqz side

interface Batch {
  x: Float32Array;
  labels: Int32Array;
}

async function digits(): Promise<Batch> {
  const { train } = await mnistSplit(0);
  const px = 28 * 28;
  return {
    x: train.x.data.slice(0, BATCH * px),
    labels: Int32Array.from(train.y.subarray(0, BATCH)),
  };
}

function graphOf(bytes: Uint8Array): Graph {
  const g = importModel(bytes);
  g.topoSort();
  inferShapes(g);
  return g;
}

interface Result {
  logits: Float32Array;
  loss: number;
  /** Gradients by ONNX value name, plus "input". */
  grads: Map<string, Float32Array>;
  /** BatchNorm running statistics after the step, by value name. */
  buffers: Map<string, Float32Array>;
}

async function sqzStep(g: Graph, b: Batch): Promise<Result> {
  const p = await TrainProgram.create(g, { inputGrads: ["input"] });
  try {
    const out = p.forward(
      { input: { type: "float32", dims: [BATCH, 1, 28, 28], data: b.x } },
      true,
    );
    const logits = Float32Array.from(out.logits.data as Float32Array);
    const dLogits = new Float32Array(BATCH * CLASSES);
    const { loss } = softmaxCrossEntropy(logits, BATCH, CLASSES, b.labels, dLogits);
    p.zeroGrad();
    const dIn = p.backward({ logits: dLogits });
    const grads = new Map<string, Float32Array>(
      p.params.map((q) => [q.name, Float32Array.from(q.grad)]),
    );
    grads.set("input", Float32Array.from(dIn.input));
    const buffers = new Map(p.buffers.map((q) => [q.name, Float32Array.from(q.data)]));
    return { logits, loss, grads, buffers };
  } finally {
    p.dispose();
  }
}

// ---------------------------------------------------------------------------
// The tfjs side: each ONNX node written out with tfjs ops, activations NHWC

/**
 * Runs the graph's nodes in order as tfjs ops. `ws` maps each float constant (ONNX layout) to
 * a tensor; x is the NCHW input. BatchNormalization uses the batch's moments and reports them.
 */
function tfForward(
  tf: TF,
  g: Graph,
  ws: Map<string, T>,
  x: T,
  onMoments?: (name: string, mean: T, variance: T, count: number) => void,
): T {
  const vals = new Map<string, T>([["input", tf.transpose(x, [0, 2, 3, 1])]]);
  const get = (name: string) => {
    const t = vals.get(name) ?? ws.get(name);
    if (!t) throw new Error(`tfjs model: no value '${name}'`);
    return t;
  };
  for (const n of g.nodes) {
    const ins = n.inputs.map((v) => (v ? get(v.name) : undefined));
    const ints = (k: string, d: number[]) => (n.attrs[k] as number[] | undefined) ?? d;
    let y: T;
    switch (n.op) {
      case "Conv": {
        assert.equal((n.attrs.group as number | undefined) ?? 1, 1);
        assert.deepEqual(ints("dilations", [1, 1]), [1, 1]);
        const [t, l, b, r] = ints("pads", [0, 0, 0, 0]);
        const s = ints("strides", [1, 1]) as [number, number];
        const hwio = tf.transpose(ins[1]!, [2, 3, 1, 0]) as TfCore.Tensor4D;
        const pad: [[number, number], [number, number], [number, number], [number, number]] = [
          [0, 0],
          [t, b],
          [l, r],
          [0, 0],
        ];
        y = tf.conv2d(ins[0] as TfCore.Tensor4D, hwio, s, pad);
        if (ins[2]) y = tf.add(y, ins[2]);
        break;
      }
      case "Relu":
        y = tf.relu(ins[0]!);
        break;
      case "MaxPool": {
        assert.deepEqual(ints("pads", [0, 0, 0, 0]), [0, 0, 0, 0]);
        const k = ints("kernel_shape", []) as [number, number];
        y = tf.maxPool(ins[0] as TfCore.Tensor4D, k, ints("strides", k) as [number, number], 0);
        break;
      }
      case "GlobalAveragePool":
        y = tf.mean(ins[0]!, [1, 2], true);
        break;
      case "Flatten": {
        assert.equal(n.attrs.axis ?? 1, 1);
        const t = ins[0]!;
        // ONNX flattens NCHW: back to channels first before the reshape.
        y = tf.reshape(t.rank === 4 ? tf.transpose(t, [0, 3, 1, 2]) : t, [t.shape[0], -1]);
        break;
      }
      case "Gemm": {
        assert.equal(n.attrs.transA ?? 0, 0);
        assert.equal(n.attrs.transB, 1);
        assert.equal(n.attrs.alpha ?? 1, 1);
        assert.equal(n.attrs.beta ?? 1, 1);
        y = tf.add(
          tf.matMul(ins[0] as TfCore.Tensor2D, ins[1] as TfCore.Tensor2D, false, true),
          ins[2]!,
        );
        break;
      }
      case "BatchNormalization": {
        const h = ins[0]!;
        // Batch statistics over N, H, W (biased variance, as normalization uses).
        const { mean, variance } = tf.moments(h, [0, 1, 2]);
        onMoments?.(n.name, mean, variance, h.shape[0] * h.shape[1]! * h.shape[2]!);
        const eps = (n.attrs.epsilon as number | undefined) ?? 1e-5;
        y = tf.batchNorm(h, mean, variance, ins[2], ins[1], eps);
        break;
      }
      case "Add":
        y = tf.add(ins[0]!, ins[1]!);
        break;
      default:
        throw new Error(`tfjs model: no translation for ${n.op}`);
    }
    vals.set(n.outputs[0].name, y);
  }
  return get(g.outputs[0].name);
}

function tfStep(tf: TF, g: Graph, b: Batch): Result {
  // Every float constant the loss depends on: weights, biases, BN scale and shift (in training
  // mode the running statistics, BN inputs 3 and 4, are not used by the output).
  const runningStat = (v: Graph["inputs"][number]) =>
    v.consumers.every((n) => n.op === "BatchNormalization" && n.inputs.indexOf(v) >= 3);
  const consts = [...g.values.values()].filter((v) =>
    v.constant?.type === "float32" && v.consumers.length > 0
  );
  const names = consts.filter((v) => !runningStat(v)).map((v) => v.name);
  const tensor = (name: string) => {
    const c = g.values.get(name)!.constant!;
    return tf.tensor(Float32Array.from(c.data as Float32Array), [...c.dims]);
  };
  const tensors = names.map(tensor);
  // The running statistics: constants of the forward pass.
  const stats = new Map(consts.filter(runningStat).map((v) => [v.name, tensor(v.name)]));
  const x = tf.tensor(b.x, [BATCH, 1, 28, 28]);
  const onehot = tf.tidy(() => tf.oneHot(tf.tensor1d(b.labels, "int32"), CLASSES));
  const wsOf = (ts: T[]) => new Map([...stats, ...names.map((name, i) => [name, ts[i]] as const)]);
  const moments = new Map<string, { mean: Float32Array; variance: Float32Array; count: number }>();
  const logits = tf.tidy(() =>
    tfForward(tf, g, wsOf(tensors), x, (name, mean, variance, count) => {
      moments.set(name, {
        mean: mean.dataSync() as Float32Array,
        variance: variance.dataSync() as Float32Array,
        count,
      });
    })
  );
  const f = (...args: T[]) =>
    tf.losses.softmaxCrossEntropy(
      onehot,
      tfForward(tf, g, wsOf(args.slice(1)), args[0]),
    ) as TfCore.Scalar;
  const { value, grads } = tf.valueAndGrads(f)([x, ...tensors]);
  const out = new Map<string, Float32Array>();
  out.set("input", grads[0].dataSync() as Float32Array);
  names.forEach((name, i) => out.set(name, grads[i + 1].dataSync() as Float32Array));
  // PyTorch's (and sqz's) running update: momentum·running + (1 − momentum)·batch, with the
  // unbiased batch variance.
  const buffers = new Map<string, Float32Array>();
  for (const n of g.nodes.filter((n) => n.op === "BatchNormalization")) {
    const m = moments.get(n.name)!;
    const mom = (n.attrs.momentum as number | undefined) ?? 0.9;
    const rm = n.inputs[3]!.constant!.data as Float32Array;
    const rv = n.inputs[4]!.constant!.data as Float32Array;
    const unbias = m.count / (m.count - 1);
    buffers.set(n.inputs[3]!.name, rm.map((r, c) => mom * r + (1 - mom) * m.mean[c]));
    buffers.set(n.inputs[4]!.name, rv.map((r, c) => mom * r + (1 - mom) * m.variance[c] * unbias));
  }
  const res: Result = {
    logits: logits.dataSync() as Float32Array,
    loss: value.dataSync()[0],
    grads: out,
    buffers,
  };
  tf.dispose([logits, value, ...grads, x, onehot, ...tensors, ...stats.values()]);
  return res;
}

// ---------------------------------------------------------------------------
// Comparison

/** max |a − b| / max |b|. */
function relErr(a: Float32Array, b: Float32Array): { err: number; scale: number } {
  assert.equal(a.length, b.length);
  let scale = 0, diff = 0;
  for (let i = 0; i < b.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]));
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
  }
  return { err: scale > 0 ? diff / scale : diff, scale };
}

function compare(what: string, sqz: Result, ref: Result, params: string[]): void {
  const l = relErr(sqz.logits, ref.logits);
  assert.ok(l.err <= LOGIT_TOL, `${what}: logits differ by ${l.err.toExponential(2)} of max |z|`);
  assert.ok(
    Math.abs(sqz.loss - ref.loss) <= 1e-5 * Math.max(1, ref.loss),
    `${what}: loss ${sqz.loss} (sqz) vs ${ref.loss} (tfjs)`,
  );
  const rows: string[] = [`logits ${l.err.toExponential(2)}`];
  for (const name of [...params, "input"]) {
    const a = sqz.grads.get(name), b = ref.grads.get(name);
    assert.ok(a, `${what}: sqz trains no parameter '${name}'`);
    assert.ok(b, `${what}: tfjs has no gradient for '${name}'`);
    const { err, scale } = relErr(a, b);
    assert.ok(scale > 0, `${what}: the gradient of '${name}' is all zero`);
    rows.push(`${name} ${err.toExponential(2)}`);
    assert.ok(
      err <= GRAD_TOL,
      `${what}: d loss/d ${name} differs from tfjs by ${err.toExponential(2)} of its max ` +
        `|grad| ${scale.toExponential(2)} (bound ${GRAD_TOL})`,
    );
  }
  for (const [name, want] of ref.buffers) {
    const got = sqz.buffers.get(name);
    assert.ok(got, `${what}: sqz keeps no running statistic '${name}'`);
    const { err } = relErr(got, want);
    rows.push(`${name} ${err.toExponential(2)}`);
    assert.ok(err <= 1e-5, `${what}: running statistic '${name}' differs by ${err}`);
  }
  console.log(`${what}: max error / max |value|: ${rows.join(", ")}`);
}

async function crossCheck(what: string, bytes: Uint8Array, params: string[]): Promise<void> {
  const tf = await loadTf();
  const b = await digits();
  assert.ok(new Set(b.labels).size >= 5, "the batch should hold several classes");
  const sqz = await sqzStep(graphOf(bytes), b);
  const ref = tfStep(tf, graphOf(bytes), b);
  compare(what, sqz, ref, params);
}

const model = (file: string) => Deno.readFileSync(new URL(`../models/${file}`, import.meta.url));

Deno.test("tfjs autodiff: whole-network gradients of the MNIST CNN", async () => {
  await crossCheck("mnist_cnn", model("mnist_cnn.onnx"), [
    "conv1.weight",
    "conv1.bias",
    "conv2.weight",
    "conv2.bias",
    "fc1.weight",
    "fc1.bias",
    "fc2.weight",
    "fc2.bias",
  ]);
});

Deno.test("tfjs autodiff: whole-network gradients of the MNIST MLP", async () => {
  await crossCheck("mnist_mlp", model("mnist_mlp.onnx"), [
    "fc1.weight",
    "fc1.bias",
    "fc2.weight",
    "fc2.bias",
    "fc3.weight",
    "fc3.bias",
  ]);
});

// ---------------------------------------------------------------------------
// A PyTorch-style residual net with BatchNormalization (bias-free convs before each BN):
//   Conv(1→8, 3×3, stride 2, pad 1) → BN → Relu                      [N, 8, 14, 14]
//   → Conv(8→8, 3×3, pad 1) → BN → Relu → Conv(8→8, 3×3, pad 1) → BN → Add(shortcut) → Relu
//   → GlobalAveragePool → Flatten → Gemm(8→10, transB)
// He-normal weights, BN scale U(0.5, 1.5), shift N(0, 0.2²), running mean N(0, 0.2²) and
// variance U(0.5, 2) (only the running update sees those: training mode uses batch moments).

function bnResNet(): { bytes: Uint8Array; params: string[] } {
  const r = seededRandom(2024);
  const normal = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const inits: TensorProto[] = [];
  const nodes: NodeProto[] = [];
  const params: string[] = [];
  const init = (name: string, dims: number[], f: () => number, param = true) => {
    const n = dims.reduce((a, b) => a * b, 1);
    inits.push(tensorFromArray(name, DataType.FLOAT, dims, Float32Array.from({ length: n }, f)));
    if (param) params.push(name);
    return name;
  };
  const conv = (name: string, x: string, cin: number, cout: number, stride: number) => {
    const w = init(`${name}.weight`, [cout, cin, 3, 3], () => normal() * Math.sqrt(2 / (9 * cin)));
    nodes.push(node("Conv", [x, w], [name], {
      kernel_shape: [3, 3],
      strides: [stride, stride],
      pads: [1, 1, 1, 1],
    }, name));
    return name;
  };
  const bn = (name: string, x: string, c: number) => {
    const ins = [
      x,
      init(`${name}.weight`, [c], () => 0.5 + r()),
      init(`${name}.bias`, [c], () => 0.2 * normal()),
      init(`${name}.running_mean`, [c], () => 0.2 * normal(), false),
      init(`${name}.running_var`, [c], () => 0.5 + 1.5 * r(), false),
    ];
    nodes.push(node("BatchNormalization", ins, [name], { epsilon: 1e-5, momentum: 0.9 }, name));
    return name;
  };
  const relu = (name: string, x: string) => {
    nodes.push(node("Relu", [x], [name], {}, name));
    return name;
  };
  const stem = relu("relu0", bn("bn0", conv("conv0", "input", 1, 8, 2), 8));
  const t = relu("relu1", bn("bn1", conv("conv1", stem, 8, 8, 1), 8));
  const u = bn("bn2", conv("conv2", t, 8, 8, 1), 8);
  nodes.push(node("Add", [u, stem], ["add"], {}, "add"));
  const y = relu("relu2", "add");
  nodes.push(node("GlobalAveragePool", [y], ["gap"], {}, "gap"));
  nodes.push(node("Flatten", ["gap"], ["flat"], { axis: 1 }, "flatten"));
  const w = init("fc.weight", [10, 8], () => normal() * Math.sqrt(2 / 8));
  const b = init("fc.bias", [10], () => (2 * r() - 1) / Math.sqrt(8));
  nodes.push(node("Gemm", ["flat", w, b], ["logits"], { transB: 1 }, "fc"));
  const bytes = makeModel({
    nodes,
    inputs: [valueInfo("input", DataType.FLOAT, ["N", 1, 28, 28])],
    outputs: [valueInfo("logits", DataType.FLOAT, ["N", 10])],
    initializers: inits,
    opset: 13,
    graphName: "bn_resnet",
  });
  return { bytes, params };
}

Deno.test("tfjs autodiff: whole-network gradients of a residual net with BatchNorm in training mode", async () => {
  const { bytes, params } = bnResNet();
  await crossCheck("bn_resnet", bytes, params);
});
