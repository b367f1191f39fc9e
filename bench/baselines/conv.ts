// Convolution baselines, single-threaded: tfjs-backend-wasm (XNNPACK) conv2d and
// depthwiseConv2d on NHWC tensors, and onnxruntime-web Conv (f32) and QLinearConv (u8 input,
// i8 per-channel weights, u8 output) on NCHW models built with src/onnx/proto.ts.
// Call initTfjs() / initOrt() first.
import * as tf from "@tensorflow/tfjs-core";
import * as ort from "onnxruntime-web";
import { DataType, makeModel, node, tensorFromArray, valueInfo } from "../../src/onnx/proto.ts";
import { makeBench, type OrtBench } from "./ort.ts";

export interface ConvLayer {
  h: number;
  w: number;
  cin: number;
  cout: number;
  k: number;
  stride: number;
  /** Depthwise: groups = cin = cout. */
  depthwise?: boolean;
}

export function convPad(l: ConvLayer): number {
  return (l.k - 1) >> 1;
}

function rand(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 31 - 1) * scale;
  });
}

export function tfjsConv(l: ConvLayer): { run(): void; dispose(): void } {
  const p = convPad(l);
  const x = tf.tensor4d(rand(l.h * l.w * l.cin, 1), [1, l.h, l.w, l.cin]);
  const f = l.depthwise
    ? tf.tensor4d(rand(l.k * l.k * l.cin, 2, 0.1), [l.k, l.k, l.cin, 1])
    : tf.tensor4d(rand(l.k * l.k * l.cin * l.cout, 2, 0.1), [l.k, l.k, l.cin, l.cout]);
  const pad = [[0, 0], [p, p], [p, p], [0, 0]] as [
    [number, number],
    [number, number],
    [number, number],
    [number, number],
  ];
  return {
    run() {
      const y = l.depthwise
        ? tf.depthwiseConv2d(x, f as tf.Tensor4D, l.stride, p ? pad : "valid")
        : tf.conv2d(x, f as tf.Tensor4D, l.stride, p ? pad : "valid");
      y.dataSync();
      y.dispose();
    },
    dispose() {
      x.dispose();
      f.dispose();
    },
  };
}

function convNode(l: ConvLayer, op: string, inputs: string[]) {
  const p = convPad(l);
  return node(op, inputs, ["Y"], {
    kernel_shape: [l.k, l.k],
    strides: [l.stride, l.stride],
    pads: [p, p, p, p],
    group: l.depthwise ? l.cin : 1,
  });
}

function outSize(l: ConvLayer): [number, number] {
  const p = convPad(l);
  return [
    Math.floor((l.h + 2 * p - l.k) / l.stride) + 1,
    Math.floor((l.w + 2 * p - l.k) / l.stride) + 1,
  ];
}

export async function ortConvF32(l: ConvLayer): Promise<OrtBench> {
  const cpg = l.depthwise ? 1 : l.cin;
  const [oh, ow] = outSize(l);
  const model = makeModel({
    nodes: [convNode(l, "Conv", ["A", "W", "B"])],
    inputs: [valueInfo("A", DataType.FLOAT, [1, l.cin, l.h, l.w])],
    outputs: [valueInfo("Y", DataType.FLOAT, [1, l.cout, oh, ow])],
    initializers: [
      tensorFromArray(
        "W",
        DataType.FLOAT,
        [l.cout, cpg, l.k, l.k],
        rand(l.cout * cpg * l.k * l.k, 2, 0.1),
      ),
      tensorFromArray("B", DataType.FLOAT, [l.cout], rand(l.cout, 3)),
    ],
    opset: 17,
  });
  const x = new ort.Tensor("float32", rand(l.cin * l.h * l.w, 1), [1, l.cin, l.h, l.w]);
  return await makeBench(model, x, "Y");
}

/** QLinearConv: u8 input (zero point 128), i8 symmetric per-channel weights, u8 output. */
export async function ortQLinearConv(l: ConvLayer): Promise<OrtBench> {
  const cpg = l.depthwise ? 1 : l.cin;
  const [oh, ow] = outSize(l);
  const w = Int8Array.from(rand(l.cout * cpg * l.k * l.k, 2), (v) => Math.round(v * 127));
  const model = makeModel({
    nodes: [convNode(l, "QLinearConv", ["A", "xs", "xz", "W", "ws", "wz", "ys", "yz", "B"])],
    inputs: [valueInfo("A", DataType.UINT8, [1, l.cin, l.h, l.w])],
    outputs: [valueInfo("Y", DataType.UINT8, [1, l.cout, oh, ow])],
    initializers: [
      tensorFromArray("xs", DataType.FLOAT, [], [0.02]),
      tensorFromArray("xz", DataType.UINT8, [], [128]),
      tensorFromArray("W", DataType.INT8, [l.cout, cpg, l.k, l.k], w),
      tensorFromArray("ws", DataType.FLOAT, [l.cout], new Float32Array(l.cout).fill(0.01)),
      tensorFromArray("wz", DataType.INT8, [l.cout], new Int8Array(l.cout)),
      tensorFromArray("ys", DataType.FLOAT, [], [0.05]),
      tensorFromArray("yz", DataType.UINT8, [], [0]),
      tensorFromArray("B", DataType.INT32, [l.cout], new Int32Array(l.cout)),
    ],
    opset: 17,
  });
  const x = new ort.Tensor(
    "uint8",
    Uint8Array.from(rand(l.cin * l.h * l.w, 1), (v) => Math.round((v + 1) * 127.5)),
    [1, l.cin, l.h, l.w],
  );
  return await makeBench(model, x, "Y");
}
