// Small deterministic ONNX models built in code, shared by the onnxruntime-web cross-check
// (tests/ort_crosscheck_test.ts) and the whole-model benchmark (bench/models.ts). Every model
// is NCHW float32 with a symbolic batch dim "N"; weights come from a seeded PRNG with
// He/Kaiming-scale normal init (PyTorch-style uniform biases), and BatchNormalization gets
// non-trivial mean/var/scale/bias, so folding it is actually exercised.
//
// The *_qdq models are what onnxruntime's quantize_static (QDQ format, per-channel, MinMax
// calibration) writes for the float models: uint8 activations with zero points, int8
// symmetric per-channel weights (DequantizeLinear axis=0), int32 biases with scale
// x_scale·w_scale, a Relu that directly follows a Conv/Gemm removed (its output range, which
// starts at 0, makes the uint8 Q clamp do the ReLU; lenet_qdq_relu keeps it, as other
// exporters do), MaxPool/Flatten re-quantized with their
// input's parameters, and Softmax kept in float. Calibration runs a plain-JS float forward
// pass of the same layers over 8 seeded inputs from the model's input distribution and takes
// each activation's min/max (widened to include 0), as the MinMax calibrator does. It is done
// in JS rather than in sqz so the model bytes do not depend on the engine under test.
import { seededRandom } from "../src/mod.ts";
import {
  DataType,
  makeModel,
  node,
  type NodeProto,
  tensorFromArray,
  type TensorProto,
  valueInfo,
} from "../src/onnx/proto.ts";
import { ArgumentError } from "../src/errors.ts";

/** mulberry32: uniform [0, 1) (the engine's seeded PRNG). */
export const zooRng = seededRandom;

/** Standard normal samples (Box–Muller) from a uniform source. */
export function normalFrom(r: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

export interface ZooModel {
  name: string;
  bytes: Uint8Array;
  inputName: string;
  /** Input dims without the (symbolic) batch dim. */
  itemDims: number[];
  /** Distribution of the inputs: images in [0, 1) or standardized activations. */
  inputDist: "uniform01" | "normal";
  outputName: string;
  /** QDQ models: the scale of the last QuantizeLinear before the output (one step). */
  outputStep?: number;
}

/** A seeded input batch for a zoo model. */
export function zooInput(m: ZooModel, batch: number, seed: number): Float32Array {
  const n = batch * m.itemDims.reduce((a, b) => a * b, 1);
  const r = zooRng(seed);
  const g = normalFrom(r);
  return m.inputDist === "uniform01"
    ? Float32Array.from({ length: n }, r)
    : Float32Array.from({ length: n }, g);
}

// ---------------------------------------------------------------------------
// Graph building

export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly inits: TensorProto[] = [];
  readonly normal: () => number;
  #ids = new Map<string, number>();
  #shared = new Map<string, string>();

  constructor(readonly r: () => number) {
    this.normal = normalFrom(r);
  }

  fresh(prefix: string): string {
    const i = this.#ids.get(prefix) ?? 0;
    this.#ids.set(prefix, i + 1);
    return `${prefix}${i}`;
  }

  init(
    prefix: string,
    type: number,
    dims: number[],
    data: Float32Array | Int8Array | Uint8Array | Int32Array,
  ): string {
    const name = this.fresh(prefix);
    this.inits.push(tensorFromArray(name, type, dims, data));
    return name;
  }

  /** A scalar float initializer shared by every use of the same value (e.g. Clip bounds). */
  scalar(prefix: string, v: number): string {
    const key = `${prefix}=${v}`;
    let name = this.#shared.get(key);
    if (!name) {
      name = this.init(prefix, DataType.FLOAT, [], Float32Array.of(v));
      this.#shared.set(key, name);
    }
    return name;
  }

  op(
    opType: string,
    inputs: string[],
    attrs: Parameters<typeof node>[3] = {},
    prefix = opType.toLowerCase(),
  ): string {
    const out = this.fresh(`${prefix}_out`);
    this.nodes.push(node(opType, inputs, [out], attrs, this.fresh(prefix)));
    return out;
  }

  heNormal(n: number, fanIn: number): Float32Array {
    const std = Math.sqrt(2 / fanIn);
    return Float32Array.from({ length: n }, () => this.normal() * std);
  }

  /** PyTorch's default bias init: U(-1/√fanIn, 1/√fanIn). */
  biasInit(n: number, fanIn: number): Float32Array {
    const b = 1 / Math.sqrt(fanIn);
    return Float32Array.from({ length: n }, () => (2 * this.r() - 1) * b);
  }

  conv(
    x: string,
    cin: number,
    cout: number,
    k: number,
    { stride = 1, pad = 0, group = 1, bias = true } = {},
  ): string {
    const fanIn = (cin / group) * k * k;
    const w = this.init(
      "W",
      DataType.FLOAT,
      [cout, cin / group, k, k],
      this.heNormal(cout * fanIn, fanIn),
    );
    const inputs = [x, w];
    if (bias) inputs.push(this.init("B", DataType.FLOAT, [cout], this.biasInit(cout, fanIn)));
    return this.op("Conv", inputs, {
      kernel_shape: [k, k],
      strides: [stride, stride],
      pads: [pad, pad, pad, pad],
      group,
    });
  }

  bn(x: string, c: number): string {
    const u = (lo: number, hi: number) =>
      Float32Array.from({ length: c }, () => lo + (hi - lo) * this.r());
    const scale = this.init("bn_scale", DataType.FLOAT, [c], u(0.5, 1.5));
    const bias = this.init(
      "bn_bias",
      DataType.FLOAT,
      [c],
      Float32Array.from({ length: c }, () => 0.2 * this.normal()),
    );
    const mean = this.init(
      "bn_mean",
      DataType.FLOAT,
      [c],
      Float32Array.from({ length: c }, () => 0.2 * this.normal()),
    );
    const v = this.init("bn_var", DataType.FLOAT, [c], u(0.5, 2));
    return this.op("BatchNormalization", [x, scale, bias, mean, v], { epsilon: 1e-5 }, "bn");
  }

  relu6(x: string): string {
    return this.op("Clip", [x, this.scalar("clip_min", 0), this.scalar("clip_max", 6)]);
  }

  /** PyTorch Linear: y = x·Wᵀ + b with W [n, k]. */
  gemm(x: string, k: number, n: number): string {
    const w = this.init("W", DataType.FLOAT, [n, k], this.heNormal(n * k, k));
    const b = this.init("B", DataType.FLOAT, [n], this.biasInit(n, k));
    return this.op("Gemm", [x, w, b], { transB: 1 });
  }

  build(
    input: string,
    itemDims: number[],
    output: string,
    outDims: (number | string)[],
    opset: number,
    name: string,
  ): Uint8Array {
    // The final tensor gets the declared output name.
    const last = this.nodes.findLast((n) => n.output[0] === output);
    if (!last) throw new ArgumentError(`model_zoo: no node produces '${output}'`);
    last.output[0] = "output";
    return makeModel({
      nodes: this.nodes,
      inputs: [valueInfo(input, DataType.FLOAT, ["N", ...itemDims])],
      outputs: [valueInfo("output", DataType.FLOAT, outDims)],
      initializers: this.inits,
      opset,
      graphName: name,
    });
  }
}

// ---------------------------------------------------------------------------
// Sequential models (float and QDQ from the same layer list)

type Layer =
  | {
    op: "conv";
    cin: number;
    cout: number;
    k: number;
    pad: number;
    w: Float32Array;
    b: Float32Array;
  }
  | { op: "gemm"; k: number; n: number; w: Float32Array; b: Float32Array }
  | { op: "relu" }
  | { op: "maxpool" }
  | { op: "flatten" }
  | { op: "softmax" };

interface Act {
  dims: number[]; // without batch
  data: Float64Array;
}

function seqConv(g: GraphBuilder, cin: number, cout: number, k: number, pad: number): Layer {
  const fanIn = cin * k * k;
  return {
    op: "conv",
    cin,
    cout,
    k,
    pad,
    w: g.heNormal(cout * fanIn, fanIn),
    b: g.biasInit(cout, fanIn),
  };
}

function seqGemm(g: GraphBuilder, k: number, n: number): Layer {
  return { op: "gemm", k, n, w: g.heNormal(n * k, k), b: g.biasInit(n, k) };
}

function lenetLayers(g: GraphBuilder): Layer[] {
  return [
    seqConv(g, 1, 6, 5, 2),
    { op: "relu" },
    { op: "maxpool" },
    seqConv(g, 6, 16, 5, 0),
    { op: "relu" },
    { op: "maxpool" },
    { op: "flatten" },
    seqGemm(g, 400, 120),
    { op: "relu" },
    seqGemm(g, 120, 84),
    { op: "relu" },
    seqGemm(g, 84, 10),
  ];
}

function mlpLayers(g: GraphBuilder): Layer[] {
  return [
    seqGemm(g, 784, 256),
    { op: "relu" },
    seqGemm(g, 256, 128),
    { op: "relu" },
    seqGemm(g, 128, 10),
    { op: "softmax" },
  ];
}

const MAXPOOL = { kernel_shape: [2, 2], strides: [2, 2] };

function emitFloat(g: GraphBuilder, layers: Layer[], x: string): string {
  let cur = x;
  for (const l of layers) {
    switch (l.op) {
      case "conv": {
        const w = g.init("W", DataType.FLOAT, [l.cout, l.cin, l.k, l.k], l.w);
        const b = g.init("B", DataType.FLOAT, [l.cout], l.b);
        cur = g.op("Conv", [cur, w, b], {
          kernel_shape: [l.k, l.k],
          pads: [l.pad, l.pad, l.pad, l.pad],
        });
        break;
      }
      case "gemm": {
        const w = g.init("W", DataType.FLOAT, [l.n, l.k], l.w);
        const b = g.init("B", DataType.FLOAT, [l.n], l.b);
        cur = g.op("Gemm", [cur, w, b], { transB: 1 });
        break;
      }
      case "relu":
        cur = g.op("Relu", [cur]);
        break;
      case "maxpool":
        cur = g.op("MaxPool", [cur], MAXPOOL);
        break;
      case "flatten":
        cur = g.op("Flatten", [cur], { axis: 1 });
        break;
      case "softmax":
        cur = g.op("Softmax", [cur], { axis: -1 });
        break;
    }
  }
  return cur;
}

/** Plain float64 forward pass of one sample; returns the activation after every layer. */
function forward(layers: Layer[], x: Act): Act[] {
  const acts: Act[] = [];
  let cur = x;
  for (const l of layers) {
    switch (l.op) {
      case "conv": {
        const [c, h, w] = cur.dims;
        const oh = h + 2 * l.pad - l.k + 1, ow = w + 2 * l.pad - l.k + 1;
        const y = new Float64Array(l.cout * oh * ow);
        for (let o = 0; o < l.cout; o++) {
          for (let i = 0; i < oh; i++) {
            for (let j = 0; j < ow; j++) {
              let s = l.b[o];
              for (let ci = 0; ci < c; ci++) {
                for (let u = 0; u < l.k; u++) {
                  const yy = i + u - l.pad;
                  if (yy < 0 || yy >= h) continue;
                  for (let v = 0; v < l.k; v++) {
                    const xx = j + v - l.pad;
                    if (xx < 0 || xx >= w) continue;
                    s += cur.data[(ci * h + yy) * w + xx] * l.w[((o * c + ci) * l.k + u) * l.k + v];
                  }
                }
              }
              y[(o * oh + i) * ow + j] = s;
            }
          }
        }
        cur = { dims: [l.cout, oh, ow], data: y };
        break;
      }
      case "gemm": {
        const y = new Float64Array(l.n);
        for (let o = 0; o < l.n; o++) {
          let s = l.b[o];
          for (let i = 0; i < l.k; i++) s += cur.data[i] * l.w[o * l.k + i];
          y[o] = s;
        }
        cur = { dims: [l.n], data: y };
        break;
      }
      case "relu":
        cur = { dims: cur.dims, data: cur.data.map((v) => Math.max(v, 0)) };
        break;
      case "maxpool": {
        const [c, h, w] = cur.dims;
        const oh = h >> 1, ow = w >> 1;
        const y = new Float64Array(c * oh * ow);
        for (let ci = 0; ci < c; ci++) {
          for (let i = 0; i < oh; i++) {
            for (let j = 0; j < ow; j++) {
              const at = (u: number, v: number) => cur.data[(ci * h + 2 * i + u) * w + 2 * j + v];
              y[(ci * oh + i) * ow + j] = Math.max(at(0, 0), at(0, 1), at(1, 0), at(1, 1));
            }
          }
        }
        cur = { dims: [c, oh, ow], data: y };
        break;
      }
      case "flatten":
        cur = { dims: [cur.data.length], data: cur.data };
        break;
      case "softmax": {
        const m = Math.max(...cur.data);
        const e = cur.data.map((v) => Math.exp(v - m));
        const s = e.reduce((a, b) => a + b, 0);
        cur = { dims: cur.dims, data: e.map((v) => v / s) };
        break;
      }
    }
    acts.push(cur);
  }
  return acts;
}

/** numpy's round (half to even). */
function roundEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

interface QParams {
  scale: number;
  zp: number;
}

/** uint8 asymmetric parameters for a calibrated range, as onnxruntime's compute_scale_zp. */
function uint8Params(lo: number, hi: number): QParams {
  lo = Math.min(lo, 0);
  hi = Math.max(hi, 0);
  const scale = Math.fround(hi > lo ? (hi - lo) / 255 : 1);
  const zp = Math.min(255, Math.max(0, roundEven(-lo / scale)));
  return { scale, zp };
}

/** int8 symmetric per-output-channel weights ([-127, 127]) and int32 bias at x_scale·w_scale. */
function quantizeWeights(w: Float32Array, b: Float32Array, channels: number, xScale: number) {
  const per = w.length / channels;
  const ws = new Float32Array(channels), bs = new Float32Array(channels);
  const wq = new Int8Array(w.length), bq = new Int32Array(channels);
  for (let c = 0; c < channels; c++) {
    let m = 0;
    for (let i = 0; i < per; i++) m = Math.max(m, Math.abs(w[c * per + i]));
    ws[c] = m > 0 ? m / 127 : 1;
    for (let i = 0; i < per; i++) {
      wq[c * per + i] = Math.max(-127, Math.min(127, roundEven(w[c * per + i] / ws[c])));
    }
    bs[c] = Math.fround(xScale * ws[c]);
    bq[c] = roundEven(b[c] / bs[c]);
  }
  return { ws, wq, bs, bq };
}

function calibrate(layers: Layer[], itemDims: number[], dist: ZooModel["inputDist"]) {
  const lo = new Array(layers.length + 1).fill(Infinity);
  const hi = new Array(layers.length + 1).fill(-Infinity);
  const probe: ZooModel = {
    name: "",
    bytes: new Uint8Array(),
    inputName: "",
    itemDims,
    inputDist: dist,
    outputName: "",
  };
  for (let s = 0; s < 8; s++) {
    const x = Float64Array.from(zooInput(probe, 1, 9000 + s));
    const acts = [{ dims: itemDims, data: x }, ...forward(layers, { dims: itemDims, data: x })];
    acts.forEach((a, i) => {
      for (const v of a.data) {
        if (v < lo[i]) lo[i] = v;
        if (v > hi[i]) hi[i] = v;
      }
    });
  }
  // ranges[i + 1] is the range after layer i; ranges[0] the input's.
  return lo.map((l, i) => uint8Params(l, hi[i]));
}

function emitQdq(
  g: GraphBuilder,
  layers: Layer[],
  x: string,
  params: QParams[],
  keepRelu: boolean,
): { out: string; step: number } {
  const q = (v: string, p: QParams) => {
    const s = g.init("q_scale", DataType.FLOAT, [], Float32Array.of(p.scale));
    const z = g.init("q_zp", DataType.UINT8, [], Uint8Array.of(p.zp));
    const qv = g.op("QuantizeLinear", [v, s, z], {}, "q");
    return g.op("DequantizeLinear", [qv, s, z], {}, "dq");
  };
  const dqWeights = (
    l: Extract<Layer, { w: Float32Array }>,
    channels: number,
    wDims: number[],
    xs: number,
  ) => {
    const { ws, wq, bs, bq } = quantizeWeights(l.w, l.b, channels, xs);
    const wName = g.init("Wq", DataType.INT8, wDims, wq);
    const wScale = g.init("Wq_scale", DataType.FLOAT, [channels], ws);
    const wZp = g.init("Wq_zp", DataType.INT8, [channels], new Int8Array(channels));
    const bName = g.init("Bq", DataType.INT32, [channels], bq);
    const bScale = g.init("Bq_scale", DataType.FLOAT, [channels], bs);
    const bZp = g.init("Bq_zp", DataType.INT32, [channels], new Int32Array(channels));
    return [
      g.op("DequantizeLinear", [wName, wScale, wZp], { axis: 0 }, "dq"),
      g.op("DequantizeLinear", [bName, bScale, bZp], { axis: 0 }, "dq"),
    ];
  };
  let p = params[0];
  let cur = q(x, p);
  for (let i = 0; i < layers.length; i++) {
    const l = layers[i];
    switch (l.op) {
      case "conv":
      case "gemm": {
        const [w, b] = l.op === "conv"
          ? dqWeights(l, l.cout, [l.cout, l.cin, l.k, l.k], p.scale)
          : dqWeights(l, l.n, [l.n, l.k], p.scale);
        cur = l.op === "conv"
          ? g.op("Conv", [cur, w, b], {
            kernel_shape: [l.k, l.k],
            pads: [l.pad, l.pad, l.pad, l.pad],
          })
          : g.op("Gemm", [cur, w, b], { transB: 1 });
        // quantize_static drops a following Relu (the output range starts at 0, so Q clamps);
        // other exporters keep it between the op and Q.
        if (layers[i + 1]?.op === "relu") {
          if (keepRelu) cur = g.op("Relu", [cur]);
          i++;
        }
        p = params[i + 1];
        cur = q(cur, p);
        break;
      }
      case "maxpool":
        cur = q(g.op("MaxPool", [cur], MAXPOOL), p);
        break;
      case "flatten":
        cur = q(g.op("Flatten", [cur], { axis: 1 }), p);
        break;
      case "softmax":
        cur = g.op("Softmax", [cur], { axis: -1 });
        break;
      case "relu":
        throw new ArgumentError("model_zoo: a Relu must follow a Conv or Gemm in a QDQ model");
    }
  }
  return { out: cur, step: p.scale };
}

function sequential(
  name: string,
  seed: number,
  itemDims: number[],
  dist: ZooModel["inputDist"],
  makeLayers: (g: GraphBuilder) => Layer[],
  quantized: "float" | "qdq" | "qdq_relu",
  opset: number,
): ZooModel {
  const g = new GraphBuilder(zooRng(seed));
  const layers = makeLayers(g);
  let out: string, step: number | undefined;
  if (quantized === "float") out = emitFloat(g, layers, "input");
  else {
    const params = calibrate(layers, itemDims, dist);
    ({ out, step } = emitQdq(g, layers, "input", params, quantized === "qdq_relu"));
  }
  return {
    name,
    bytes: g.build("input", itemDims, out, ["N", 10], opset, name),
    inputName: "input",
    itemDims,
    inputDist: dist,
    outputName: "output",
    outputStep: step,
  };
}

// ---------------------------------------------------------------------------
// Residual CNN blocks

function resnetBlock(): ZooModel {
  const g = new GraphBuilder(zooRng(303));
  const x = "input";
  // Basic block, stride 1, identity shortcut.
  let t = g.op("Relu", [g.bn(g.conv(x, 64, 64, 3, { pad: 1, bias: false }), 64)]);
  t = g.bn(g.conv(t, 64, 64, 3, { pad: 1, bias: false }), 64);
  const y1 = g.op("Relu", [g.op("Add", [t, x])]);
  // Downsampling block: stride-2 3×3 path and a 1×1 stride-2 projection shortcut.
  let d = g.op("Relu", [g.bn(g.conv(y1, 64, 128, 3, { stride: 2, pad: 1, bias: false }), 128)]);
  d = g.bn(g.conv(d, 128, 128, 3, { pad: 1, bias: false }), 128);
  const s = g.bn(g.conv(y1, 64, 128, 1, { stride: 2, bias: false }), 128);
  const y2 = g.op("Relu", [g.op("Add", [d, s])]);
  const f = g.op("Flatten", [g.op("GlobalAveragePool", [y2])], { axis: 1 });
  const out = g.gemm(f, 128, 10);
  return {
    name: "resnet_block",
    bytes: g.build(x, [64, 56, 56], out, ["N", 10], 17, "resnet_block"),
    inputName: x,
    itemDims: [64, 56, 56],
    inputDist: "normal",
    outputName: "output",
  };
}

function invertedResidual(g: GraphBuilder, x: string, c: number, expand: number, stride: number) {
  const e = c * expand;
  let t = g.relu6(g.bn(g.conv(x, c, e, 1, { bias: false }), e));
  t = g.relu6(g.bn(g.conv(t, e, e, 3, { stride, pad: 1, group: e, bias: false }), e));
  t = g.bn(g.conv(t, e, c, 1, { bias: false }), c); // linear bottleneck
  return stride === 1 ? g.op("Add", [t, x]) : t;
}

function mobilenetBlock(): ZooModel {
  const g = new GraphBuilder(zooRng(404));
  const x = "input";
  const y1 = invertedResidual(g, x, 32, 3, 2);
  const y2 = invertedResidual(g, y1, 32, 3, 1);
  const f = g.op("Flatten", [g.op("GlobalAveragePool", [y2])], { axis: 1 });
  const out = g.gemm(f, 32, 10);
  return {
    name: "mobilenet_block",
    bytes: g.build(x, [32, 56, 56], out, ["N", 10], 17, "mobilenet_block"),
    inputName: x,
    itemDims: [32, 56, 56],
    inputDist: "normal",
    outputName: "output",
  };
}

const BUILDERS: Record<string, () => ZooModel> = {
  mlp: () => sequential("mlp", 101, [784], "uniform01", mlpLayers, "float", 13),
  lenet: () => sequential("lenet", 202, [1, 28, 28], "uniform01", lenetLayers, "float", 13),
  resnet_block: resnetBlock,
  mobilenet_block: mobilenetBlock,
  // Same seeds as the float models: the QDQ models quantize exactly those weights.
  mlp_qdq: () => sequential("mlp_qdq", 101, [784], "uniform01", mlpLayers, "qdq", 13),
  lenet_qdq: () => sequential("lenet_qdq", 202, [1, 28, 28], "uniform01", lenetLayers, "qdq", 13),
  // The same QDQ LeNet with each Relu kept between Conv/Gemm and QuantizeLinear.
  lenet_qdq_relu: () =>
    sequential("lenet_qdq_relu", 202, [1, 28, 28], "uniform01", lenetLayers, "qdq_relu", 13),
};

export const ZOO_NAMES: readonly string[] = Object.keys(BUILDERS);

const cache = new Map<string, ZooModel>();

/** Builds (once) the zoo model of that name. */
export function zooModel(name: string): ZooModel {
  let m = cache.get(name);
  if (!m) {
    const build = BUILDERS[name];
    if (!build) {
      throw new ArgumentError(`unknown zoo model '${name}' (models: ${ZOO_NAMES.join(", ")})`);
    }
    m = build();
    cache.set(name, m);
  }
  return m;
}

/**
 * The cold-start model: a PyTorch-style CNN of ~5 MB of f32 weights (1.24 M parameters:
 * 3×3 convolutions 3→32→64→128→256→256 with BatchNorm and ReLU, stride 2 from the second,
 * global average pool, a 256→1000 classifier) on a 64×64 RGB input. Not in ZOO_NAMES: its
 * point is load time, which the whole-model table does not measure.
 */
export function coldStartModel(): ZooModel {
  const g = new GraphBuilder(zooRng(505));
  const x = "input";
  let t = x;
  const widths = [3, 32, 64, 128, 256, 256];
  for (let i = 1; i < widths.length; i++) {
    const conv = g.conv(t, widths[i - 1], widths[i], 3, {
      stride: i === 1 ? 1 : 2,
      pad: 1,
      bias: false,
    });
    t = g.op("Relu", [g.bn(conv, widths[i])]);
  }
  const f = g.op("Flatten", [g.op("GlobalAveragePool", [t])], { axis: 1 });
  const out = g.gemm(f, 256, 1000);
  return {
    name: "cold_start_cnn",
    bytes: g.build(x, [3, 64, 64], out, ["N", 1000], 17, "cold_start_cnn"),
    inputName: x,
    itemDims: [3, 64, 64],
    inputDist: "normal",
    outputName: "output",
  };
}
