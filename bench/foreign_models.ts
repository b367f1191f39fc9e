// Two MNIST classifiers in the shapes other exporters write, trained from random weights by
// sqz's own training engine (float, no compression), so the fine-tuning defaults are measured
// on models the reference recipes were not chosen on:
//   pytorch_bn_cnn  NCHW; Conv(bias=False) → BatchNormalization → Relu blocks, stride-2 convs
//                   instead of pooling, Flatten, Gemm(transB) layers — torch.onnx.export of an
//                   nn.Sequential with BatchNorm2d.
//   keras_nhwc_cnn  NHWC input [N, 28, 28, 1]; Transpose to NCHW, 5×5 valid convs with Relu and
//                   MaxPool, Transpose back, Reshape, MatMul + Add dense layers and a final
//                   Softmax — what tf2onnx / keras2onnx write for a Keras Sequential.
// Trained models are cached under node_modules/.sqz/foreign/ (deterministic: seeded weights,
// batch order and augmentation).
import { GraphBuilder, zooRng } from "./model_zoo.ts";
import { DataType } from "../src/onnx/proto.ts";
import { importModel } from "../src/onnx/import.ts";
import { exportModel } from "../src/onnx/export.ts";
import { inferShapes } from "../src/graph/shape_inference.ts";
import { finetune, readSamples } from "../src/train/finetune.ts";
import { logitsOf } from "../src/train/prepare.ts";
import type { Split } from "../src/eval/mnist.ts";
import type { FinetuneConfig } from "../src/train/types.ts";

export const FOREIGN_MODELS = ["pytorch_bn_cnn", "keras_nhwc_cnn"] as const;
export type ForeignModel = typeof FOREIGN_MODELS[number];

function pytorchBnCnn(): Uint8Array {
  const g = new GraphBuilder(zooRng(901));
  const block = (x: string, cin: number, cout: number, stride: number) =>
    g.op("Relu", [g.bn(g.conv(x, cin, cout, 3, { stride, pad: 1, bias: false }), cout)]);
  let t = block("input", 1, 16, 1);
  t = block(t, 16, 32, 2);
  t = block(t, 32, 64, 2);
  const f = g.op("Flatten", [t], { axis: 1 });
  const h = g.op("Relu", [g.gemm(f, 64 * 7 * 7, 64)]);
  return g.build("input", [1, 28, 28], g.gemm(h, 64, 10), ["N", 10], 17, "pytorch_bn_cnn");
}

function kerasNhwcCnn(): Uint8Array {
  const g = new GraphBuilder(zooRng(902));
  const dense = (x: string, k: number, n: number) => {
    const w = g.init("dense_W", DataType.FLOAT, [k, n], g.heNormal(k * n, k));
    const b = g.init("dense_b", DataType.FLOAT, [n], new Float32Array(n));
    return g.op("Add", [g.op("MatMul", [x, w]), b]);
  };
  let t = g.op("Transpose", ["input"], { perm: [0, 3, 1, 2] });
  t = g.op("MaxPool", [g.op("Relu", [g.conv(t, 1, 8, 5)])], {
    kernel_shape: [2, 2],
    strides: [2, 2],
  });
  t = g.op("MaxPool", [g.op("Relu", [g.conv(t, 8, 16, 5)])], {
    kernel_shape: [2, 2],
    strides: [2, 2],
  });
  t = g.op("Transpose", [t], { perm: [0, 2, 3, 1] });
  t = g.op("Flatten", [t], { axis: 1 });
  t = g.op("Relu", [dense(t, 256, 64)]);
  const probs = g.op("Softmax", [dense(t, 64, 10)], { axis: -1 });
  return g.build("input", [28, 28, 1], probs, ["N", 10], 13, "keras_nhwc_cnn");
}

const FLOAT_TRAINING: FinetuneConfig = {
  epochs: 8,
  batchSize: 64,
  optimizer: "adam",
  lr: 2e-3,
  momentum: 0.9,
  weightDecay: 0,
  schedule: "cosine",
  stepEpochs: 1,
  gamma: 0.1,
  warmupEpochs: 0,
  clipNorm: 0,
  seed: 0,
  augment: { shift: 2, layout: "nchw" },
};

/** The untrained model (seeded random weights). */
export function foreignGraphBytes(name: ForeignModel): Uint8Array {
  return name === "pytorch_bn_cnn" ? pytorchBnCnn() : kerasNhwcCnn();
}

/** The input of a model as it takes MNIST digits (NHWC for the Keras one: the same floats). */
export function foreignInput(name: ForeignModel, x: Split["x"]) {
  return name === "keras_nhwc_cnn" ? { ...x, dims: [x.dims[0], 28, 28, 1] } : x;
}

/** The trained model (cached), and its float training time. */
export async function foreignModel(name: ForeignModel, train: Split): Promise<Uint8Array> {
  const dir = new URL("../node_modules/.sqz/foreign/", import.meta.url);
  const path = new URL(`${name}.onnx`, dir);
  try {
    return await Deno.readFile(path);
  } catch { /* not trained yet */ }
  const g = importModel(foreignGraphBytes(name));
  g.topoSort();
  inferShapes(g);
  const logits = logitsOf(g).name;
  const inputs = [{ name: "input", dims: g.inputs[0].shape ?? [] }];
  const samples = await readSamples(
    { inputs: foreignInput(name, train.x), labels: Int32Array.from(train.y) },
    inputs,
    "train",
  );
  const config: FinetuneConfig = {
    ...FLOAT_TRAINING,
    augment: { shift: 2, layout: name === "keras_nhwc_cnn" ? "nhwc" : "nchw" },
  };
  const { program } = await finetune({ graph: g, logits, config, train: samples });
  program.writeBack(g);
  program.dispose();
  const bytes = exportModel(g);
  await Deno.mkdir(dir, { recursive: true });
  const tmp = new URL(`${name}.onnx.tmp`, dir);
  await Deno.writeFile(tmp, bytes);
  await Deno.rename(tmp, path);
  return bytes;
}
