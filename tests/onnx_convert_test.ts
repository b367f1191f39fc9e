// convertOpset (src/onnx/convert.ts): each rewrite on a small model at the old opset. The
// converted model must give the outputs the original gives, both run through Session (and, as
// a check that the result is valid ONNX at the target opset, through onnxruntime-web too).
// Then compress() on a keras2onnx-style opset-10 CNN: int8 converts it on its own, and
// onnxruntime-web runs the artifact.
import assert from "node:assert/strict";
import {
  ArgumentError,
  compress,
  convertOpset,
  exportModel,
  importModel,
  MAX_OPSET,
  seededRandom,
} from "../src/mod.ts";
import type { Tensor } from "../src/mod.ts";
import {
  AttributeType,
  DataType,
  decodeModel,
  makeModel,
  node,
  type NodeProto,
  tensorFromArray,
  type TensorProto,
  valueInfo,
  type ValueInfoProto,
} from "../src/onnx/proto.ts";
import { type Feeds, ortRun, sqzRun } from "./engines.ts";

const F = DataType.FLOAT;
const I64 = DataType.INT64;
const f = (v: number) => ({ type: AttributeType.FLOAT, f: v });

function assertClose(got: Tensor, want: Tensor, what: string, rtol = 1e-5): void {
  assert.deepEqual(got.dims, want.dims, `${what}: dims`);
  const g = Array.from(got.data as ArrayLike<number | bigint>, Number);
  const w = Array.from(want.data as ArrayLike<number | bigint>, Number);
  const scale = Math.max(1e-6, ...w.map(Math.abs));
  for (let i = 0; i < w.length; i++) {
    assert.ok(
      Math.abs(g[i] - w[i]) <= rtol * scale,
      `${what}[${i}]: got ${g[i]}, want ${w[i]}\n got ${g}\nwant ${w}`,
    );
  }
}

const rnd = seededRandom(11);
function floats(dims: number[], lo = -2, hi = 2): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  return {
    type: "float32",
    dims,
    data: Float32Array.from({ length: n }, () => lo + (hi - lo) * rnd()),
  };
}
const init = (name: string, x: Tensor) => tensorFromArray(name, F, x.dims, x.data as Float32Array);

interface Spec {
  nodes: NodeProto[];
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  initializers?: TensorProto[];
}

function convert(bytes: Uint8Array, target: number) {
  const g = importModel(bytes);
  const { converted } = convertOpset(g, target);
  return { g, converted, bytes: exportModel(g) };
}

interface Case {
  name: string;
  from: number;
  to: number;
  spec: Spec;
  feeds: Feeds;
  /** Must appear among the conversion notes. */
  note: RegExp;
  /** The converted graph's op types must include these. */
  ops?: string[];
  /** Run by sqz (false: onnxruntime-web only, for ops sqz lacks). */
  sqz?: boolean;
}

async function check(c: Case): Promise<void> {
  const before = makeModel({ ...c.spec, opset: c.from });
  const { g, converted, bytes: after } = convert(before, c.to);
  assert.equal(g.opsets.get(""), c.to);
  assert.equal(decodeModel(after).opsetImport.find((o) => !o.domain)?.version, c.to);
  assert.ok(
    converted.some((n) => c.note.test(n)),
    `${c.name}: notes ${JSON.stringify(converted)} lack ${c.note}`,
  );
  console.log(`${c.name}:\n  ${converted.join("\n  ")}`);
  const ops = new Set(g.nodes.map((n) => n.op));
  for (const op of c.ops ?? []) assert.ok(ops.has(op), `${c.name}: no ${op} in ${[...ops]}`);
  const outs = c.spec.outputs.map((o) => o.name!);
  if (c.sqz !== false) {
    const want = await sqzRun(before, c.feeds), got = await sqzRun(after, c.feeds);
    for (const o of outs) assertClose(got[o], want[o], `${c.name} ${o}: sqz after vs before`);
  }
  // The converted model is valid ONNX at the target opset: onnxruntime-web agrees with it.
  const theirs = await ortRun(after, c.feeds);
  const base = c.sqz !== false ? await sqzRun(before, c.feeds) : await ortRun(before, c.feeds);
  for (const o of outs) assertClose(theirs[o], base[o], `${c.name} ${o}: ORT on the converted`);
}

const X3 = floats([2, 3, 4]);
const x3 = valueInfo("x", F, [2, 3, 4]);
const CASES: Case[] = [
  {
    name: "Softmax/LogSoftmax/Hardmax rank 3, axis 1, opset 11 → 13",
    from: 11,
    to: 13,
    spec: {
      nodes: [
        node("Softmax", ["x"], ["sm"], { axis: 1 }),
        node("LogSoftmax", ["x"], ["lsm"], { axis: 1 }),
        node("Hardmax", ["x"], ["hm"], { axis: 1 }),
      ],
      inputs: [x3],
      outputs: ["sm", "lsm", "hm"].map((n) => valueInfo(n, F, [2, 3, 4])),
    },
    feeds: { x: X3 },
    note: /Softmax \(opset 13\): 2-D coercion at a non-last axis kept as Flatten/,
    ops: ["Flatten", "Reshape", "Shape"],
  },
  {
    name: "Softmax rank 2 (axis 1 is the last) and rank 3 axis -1: kept as one node",
    from: 12,
    to: 13,
    spec: {
      nodes: [node("Softmax", ["a"], ["p"]), node("Softmax", ["x"], ["q"], { axis: -1 })],
      inputs: [valueInfo("a", F, [2, 5]), x3],
      outputs: [valueInfo("p", F, [2, 5]), valueInfo("q", F, [2, 3, 4])],
    },
    feeds: { a: floats([2, 5]), x: X3 },
    note: /Softmax \(opset 13\): axis is the last: kept as axis=-1 \(2 nodes/,
  },
  {
    name: "Softmax of an input of unknown rank: Flatten → Softmax → Reshape",
    from: 11,
    to: 13,
    spec: {
      nodes: [node("Softmax", ["x"], ["y"])],
      inputs: [{ name: "x", type: { tensorType: { elemType: F } } } as ValueInfoProto],
      outputs: [{ name: "y", type: { tensorType: { elemType: F } } } as ValueInfoProto],
    },
    feeds: { x: X3 },
    note: /Flatten → op\(axis=-1\) → Reshape/,
    ops: ["Flatten"],
  },
  {
    name: "Squeeze/Unsqueeze/ReduceSum axes attribute → input, opset 12 → 13",
    from: 12,
    to: 13,
    spec: {
      nodes: [
        node("Unsqueeze", ["x"], ["u"], { axes: [0, 3] }),
        node("Squeeze", ["u"], ["s"], { axes: [0] }),
        node("ReduceSum", ["s"], ["r"], { axes: [1], keepdims: 0 }),
      ],
      inputs: [x3],
      outputs: [valueInfo("r", F, [2, 1, 4])],
    },
    feeds: { x: X3 },
    note: /Unsqueeze \(opset 13\): axes attribute → int64 input/,
  },
  {
    name: "ReduceMean/Max/Min/Prod/L1/L2/LogSumExp/SumSquare axes → input, opset 13 → 18",
    from: 13,
    to: 18,
    spec: {
      nodes: [
        "ReduceMean",
        "ReduceMax",
        "ReduceMin",
        "ReduceProd",
        "ReduceL1",
        "ReduceL2",
        "ReduceLogSumExp",
        "ReduceSumSquare",
      ].map((op, i) => node(op, ["x"], [`r${i}`], { axes: [i % 2 ? 2 : 1], keepdims: i % 2 })),
      inputs: [x3],
      outputs: Array.from(
        { length: 8 },
        (_, i) => valueInfo(`r${i}`, F, i % 2 ? [2, 3, 1] : [2, 4]),
      ),
    },
    feeds: { x: floats([2, 3, 4], 0.5, 1.5) },
    note: /ReduceLogSumExp \(opset 18\): axes attribute → int64 input/,
  },
  {
    name: "Split: split attribute → input (13), equal split → num_outputs (18)",
    from: 12,
    to: 18,
    spec: {
      nodes: [
        node("Split", ["x"], ["a", "b"], { axis: 2, split: [1, 3] }),
        node("Split", ["x"], ["c", "d"], { axis: 2 }),
      ],
      inputs: [x3],
      outputs: [
        valueInfo("a", F, [2, 3, 1]),
        valueInfo("b", F, [2, 3, 3]),
        valueInfo("c", F, [2, 3, 2]),
        valueInfo("d", F, [2, 3, 2]),
      ],
    },
    feeds: { x: X3 },
    note: /Split \(opset 18\): equal split: num_outputs set/,
  },
  {
    name: "Clip min/max attributes → inputs, opset 10 → 11",
    from: 10,
    to: 11,
    spec: {
      nodes: [
        node("Clip", ["x"], ["y"], { min: f(-0.5), max: f(0.75) }),
        node("Clip", ["x"], ["z"], { min: f(0) }),
      ],
      inputs: [x3],
      outputs: [valueInfo("y", F, [2, 3, 4]), valueInfo("z", F, [2, 3, 4])],
    },
    feeds: { x: X3 },
    note: /Clip \(opset 11\): min\/max attributes → scalar inputs \(2 nodes/,
  },
  {
    name: "Pad pads/value attributes → inputs, opset 10 → 18",
    from: 10,
    to: 18,
    spec: {
      nodes: [
        node("Pad", ["x"], ["y"], { pads: [0, 1, 2, 0, 0, 1], value: f(2.5) }),
        node("Pad", ["x"], ["z"], { pads: [0, 0, 1, 0, 2, 2], mode: "reflect" }),
      ],
      inputs: [x3],
      outputs: [valueInfo("y", F, [2, 4, 7]), valueInfo("z", F, [2, 5, 7])],
    },
    feeds: { x: X3 },
    note: /Pad \(opset 11\): pads\/value attributes → inputs/,
  },
  {
    name: "Slice starts/ends/axes attributes → inputs, opset 9 → 10",
    from: 9,
    to: 10,
    spec: {
      nodes: [
        node("Slice", ["x"], ["y"], { starts: [1, -3], ends: [1000, -1], axes: [1, 2] }),
        node("Slice", ["x"], ["z"], { starts: [0, 1], ends: [1, 3] }),
      ],
      inputs: [x3],
      outputs: [valueInfo("y", F, [2, 2, 2]), valueInfo("z", F, [1, 2, 4])],
    },
    feeds: { x: X3 },
    note: /Slice \(opset 10\): starts\/ends\/axes attributes → int64 inputs/,
  },
];

{
  // BatchNormalization-8 spatial=0: statistics per activation (C×H×W parameters).
  const x = valueInfo("x", F, [2, 3, 2, 2]);
  const p = (name: string, lo: number, hi: number) => init(name, floats([3, 2, 2], lo, hi));
  const q = (name: string, lo: number, hi: number) => init(name, floats([3], lo, hi));
  CASES.push({
    name: "BatchNormalization spatial=0 (per activation) → Mul + Add, opset 8 → 9",
    from: 8,
    to: 9,
    spec: {
      nodes: [
        node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], {
          spatial: 0,
          epsilon: f(1e-3),
        }),
        node("BatchNormalization", ["x", "s1", "b1", "m1", "v1"], ["z"], { spatial: 1 }),
      ],
      inputs: [x],
      outputs: [valueInfo("y", F, [2, 3, 2, 2]), valueInfo("z", F, [2, 3, 2, 2])],
      initializers: [
        p("s", 0.5, 1.5),
        p("b", -1, 1),
        p("m", -1, 1),
        p("v", 0.5, 2),
        q("s1", 0.5, 1.5),
        q("b1", -1, 1),
        q("m1", -1, 1),
        q("v1", 0.5, 2),
      ],
    },
    feeds: { x: floats([2, 3, 2, 2]) },
    note: /BatchNormalization \(opset 9\): spatial=0 \(per-activation statistics\) → Mul \+ Add/,
    ops: ["Mul", "Add", "BatchNormalization"],
  });
}

CASES.push({
  name: "Dropout: a used mask becomes bool at 10 (Cast back); ratio attribute → input at 12",
  from: 9,
  to: 12,
  spec: {
    nodes: [
      node("Dropout", ["x"], ["h", "mask"], { ratio: f(0.25) }),
      node("Add", ["h", "mask"], ["y"]),
    ],
    inputs: [x3],
    outputs: [valueInfo("y", F, [2, 3, 4])],
  },
  feeds: { x: X3 },
  note: /Dropout \(opset 12\): ratio attribute → input/,
  ops: ["Cast"],
});

CASES.push({
  name: "GroupNormalization scale/bias per group → per channel, opset 18 → 21",
  from: 18,
  to: 21,
  spec: {
    nodes: [
      node("GroupNormalization", ["x", "s", "b"], ["y"], { num_groups: 2, epsilon: f(1e-3) }),
    ],
    inputs: [valueInfo("x", F, [2, 4, 3])],
    outputs: [valueInfo("y", F, [2, 4, 3])],
    initializers: [init("s", floats([2], 0.5, 1.5)), init("b", floats([2]))],
  },
  feeds: { x: floats([2, 4, 3]) },
  note: /GroupNormalization \(opset 21\): scale\/bias per group → per channel/,
});

// Upsample → Resize: sqz has neither; onnxruntime-web runs both sides.
for (const mode of ["nearest", "linear"]) {
  const io = {
    inputs: [valueInfo("x", F, [1, 2, 3, 3])],
    outputs: [valueInfo("y", F, [1, 2, 6, 9])],
  };
  for (const to of [9, 10, 11, 13]) {
    CASES.push({
      name: `Upsample-7 (scales attribute, ${mode}) → opset ${to}`,
      from: 7,
      to,
      spec: {
        ...io,
        nodes: [node("Upsample", ["x"], ["y"], { scales: Float32Array.of(1, 1, 2, 3), mode })],
      },
      feeds: { x: floats([1, 2, 3, 3]) },
      note: to === 9 ? /Upsample \(opset 9\): scales attribute → float input/ : /→ Resize-10/,
      ops: [to >= 10 ? "Resize" : "Upsample"],
    });
  }
}
CASES.push({
  name: "TopK k attribute → input, opset 9 → 11",
  from: 9,
  to: 11,
  spec: {
    nodes: [node("TopK", ["x"], ["v", "i"], { k: 2, axis: 1 })],
    inputs: [x3],
    outputs: [valueInfo("v", F, [2, 2, 4]), valueInfo("i", I64, [2, 2, 4])],
  },
  feeds: { x: X3 },
  note: /TopK \(opset 10\): k attribute → int64 input/,
});

for (const c of CASES) Deno.test(`convert: ${c.name}`, () => check(c));

Deno.test("convert: downgrades and unknown targets are ArgumentErrors; same opset is a no-op", () => {
  const bytes = makeModel({
    nodes: [node("Relu", ["x"], ["y"])],
    inputs: [x3],
    outputs: [valueInfo("y", F, [2, 3, 4])],
    opset: 13,
  });
  assert.throws(
    () => convertOpset(importModel(bytes), 11),
    (e: Error) => e instanceof ArgumentError && /opset 13; converting down to 11/.test(e.message),
  );
  assert.throws(() => convertOpset(importModel(bytes), MAX_OPSET + 1), ArgumentError);
  assert.throws(() => convertOpset(importModel(bytes), 13.5), ArgumentError);
  const g = importModel(bytes);
  assert.deepEqual(convertOpset(g, 13).converted, []);
  assert.deepEqual(convertOpset(g, 17).converted, [
    "opset 13 → 17: no op in the model changed meaning in between",
  ]);
  assert.equal(g.opsets.get(""), 17);
});

Deno.test("convert: an opset-6 model is upgraded at import, then converted to 13", async () => {
  const bytes = makeModel({
    nodes: [
      node("Add", ["x", "b"], ["h"], { broadcast: 1, axis: 1 }),
      node("Softmax", ["h"], ["y"]),
    ],
    inputs: [x3],
    outputs: [valueInfo("y", F, [2, 3, 4])],
    initializers: [init("b", floats([3]))],
    opset: 6,
    irVersion: 3,
  });
  const g = importModel(bytes);
  assert.match(g.notes.join("\n"), /Add-6: broadcast=1 with axis/);
  const { converted } = convertOpset(g, 13);
  assert.match(converted[0], /^opset 7 → 13/);
  const after = exportModel(g);
  const feeds = { x: X3 };
  assertClose((await sqzRun(after, feeds)).y, (await sqzRun(bytes, feeds)).y, "sqz 6 vs 13");
  assertClose((await ortRun(after, feeds)).y, (await sqzRun(bytes, feeds)).y, "ORT on 13");
});

// ---------------------------------------------------------------------------------------------
// compress() converts on its own: a keras2onnx-style opset-10 CNN to int8

function kerasCnn(): Uint8Array {
  // keras2onnx: NHWC input transposed to NCHW for Conv, Relu, MaxPool, back to NHWC for
  // Flatten (a Reshape), Dense as MatMul + Add, and Softmax over [N, 10].
  const r = seededRandom(5);
  const normal = (n: number, std: number) =>
    Float32Array.from(
      { length: n },
      () => std * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r()),
    );
  return makeModel({
    nodes: [
      node("Transpose", ["input_1"], ["nchw"], { perm: [0, 3, 1, 2] }, "adjusted_input"),
      node("Conv", ["nchw", "conv_W", "conv_B"], ["conv"], {
        kernel_shape: [3, 3],
        pads: [1, 1, 1, 1],
      }, "conv2d"),
      node("Relu", ["conv"], ["relu"], {}, "conv2d_relu"),
      node("MaxPool", ["relu"], ["pool"], { kernel_shape: [2, 2], strides: [2, 2] }, "max_pool"),
      node("Transpose", ["pool"], ["nhwc"], { perm: [0, 2, 3, 1] }, "pool_nhwc"),
      node("Reshape", ["nhwc", "flat_shape"], ["flat"], {}, "flatten"),
      node("MatMul", ["flat", "dense_W"], ["mm"], {}, "dense"),
      node("Add", ["mm", "dense_B"], ["logits"], {}, "dense_add"),
      node("Softmax", ["logits"], ["dense_softmax"], {}, "softmax"),
    ],
    inputs: [valueInfo("input_1", F, ["N", 8, 8, 1])],
    outputs: [valueInfo("dense_softmax", F, ["N", 10])],
    initializers: [
      tensorFromArray("conv_W", F, [8, 1, 3, 3], normal(72, Math.sqrt(2 / 9))),
      tensorFromArray("conv_B", F, [8], normal(8, 0.1)),
      tensorFromArray("flat_shape", I64, [2], BigInt64Array.of(-1n, 128n)),
      tensorFromArray("dense_W", F, [128, 10], normal(1280, Math.sqrt(2 / 128))),
      tensorFromArray("dense_B", F, [10], normal(10, 0.1)),
    ],
    opset: 10,
    irVersion: 5,
    producerName: "keras2onnx",
  });
}

for (const calibrated of [true, false]) {
  Deno.test(
    `convert: compress int8 ${calibrated ? "with" : "without"} calibration converts a ` +
      `keras2onnx opset-10 CNN; onnxruntime-web runs the artifact`,
    async () => {
      const float = kerasCnn();
      const calibration = calibrated
        ? Array.from({ length: 4 }, () => ({ input_1: floats([8, 8, 8, 1], 0, 1) }))
        : undefined;
      const { model, report } = await compress(float, "int8", { calibration });
      const want = calibrated ? 13 : 11;
      const notes = report.notes.join("\n");
      assert.match(notes, new RegExp(`int8 needs opset ${want}: converted opset 10 → ${want}`));
      if (calibrated) assert.match(notes, /Softmax \(opset 13\): axis is the last/);
      assert.equal(decodeModel(model).opsetImport.find((o) => !o.domain)?.version, want);
      assert.ok(report.layers.length >= 1, JSON.stringify(report.layers));
      const x = floats([4, 8, 8, 1], 0, 1);
      const ref = (await ortRun(float, { input_1: x })).dense_softmax;
      const theirs = (await ortRun(model, { input_1: x })).dense_softmax;
      const ours = (await sqzRun(model, { input_1: x })).dense_softmax;
      assert.deepEqual(theirs.dims, [4, 10]);
      let drift = 0, diff = 0;
      for (let i = 0; i < ref.data.length; i++) {
        drift = Math.max(drift, Math.abs(Number(theirs.data[i]) - Number(ref.data[i])));
        diff = Math.max(diff, Math.abs(Number(ours.data[i]) - Number(theirs.data[i])));
      }
      console.log(
        `int8 ${calibrated ? "static" : "dynamic"}: max|ORT(int8) − ORT(float)| ${
          drift.toFixed(4)
        }, max|sqz − ORT| on the artifact ${diff.toExponential(2)}`,
      );
      assert.ok(drift <= 0.03, `int8 artifact drifts ${drift} from the float model`);
      assert.ok(diff <= 1e-4, `sqz vs ORT on the artifact: ${diff}`);
    },
  );
}

Deno.test("convert: compress int8 on an opset-6 model reports the import upgrade too", async () => {
  const r = seededRandom(9);
  const u = (n: number, s: number) => Float32Array.from({ length: n }, () => s * (2 * r() - 1));
  const float = makeModel({
    nodes: [
      node("Conv", ["x", "w"], ["c"], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      node("Add", ["c", "bc"], ["h"], { broadcast: 1, axis: 1 }),
      node("Relu", ["h"], ["a"]),
      node("Reshape", ["a", "shape"], ["flat"]),
      node("Gemm", ["flat", "wf", "bf"], ["g"], { broadcast: 1, transB: 1 }),
      node("Softmax", ["g"], ["p"]),
    ],
    inputs: [valueInfo("x", F, [2, 1, 4, 4])],
    outputs: [valueInfo("p", F, [2, 5])],
    initializers: [
      tensorFromArray("w", F, [4, 1, 3, 3], u(36, 0.5)),
      tensorFromArray("bc", F, [4], u(4, 0.1)),
      tensorFromArray("shape", I64, [2], BigInt64Array.of(0n, -1n)),
      tensorFromArray("wf", F, [5, 64], u(320, 0.2)),
      tensorFromArray("bf", F, [5], u(5, 0.1)),
    ],
    opset: 6,
    irVersion: 3,
  });
  const { model, report } = await compress(float, "int8");
  assert.match(report.notes[0], /^opset 6 → 7: /);
  assert.ok(
    report.notes.some((n) => /Add-6: broadcast=1 with axis/.test(n)),
    report.notes.join("\n"),
  );
  assert.ok(report.notes.some((n) => /^int8 needs opset 11: converted opset 7 → 11/.test(n)));
  const x = floats([2, 1, 4, 4], 0, 1);
  const want = (await sqzRun(float, { x })).p, got = (await ortRun(model, { x })).p;
  let drift = 0;
  for (let i = 0; i < want.data.length; i++) {
    drift = Math.max(drift, Math.abs(Number(got.data[i]) - Number(want.data[i])));
  }
  assert.ok(drift <= 0.03, `int8 artifact drifts ${drift} from the float model`);
});
