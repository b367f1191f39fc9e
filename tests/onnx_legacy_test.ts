// Opset 1–6 models: every old-version semantic src/onnx/legacy.ts rewrites, each as a small
// model stamped with its old opset, run through Session and compared with onnxruntime-web.
//
// The oracle: onnxruntime-web runs the legacy model itself when it still has a kernel for the
// old op version (Conv-1, Softmax-1, Reshape-1, Slice-1, Squeeze-1, …). It refuses most of them
// ("Could not find an implementation for Add(1)"; ORT only guarantees opset ≥ 7), and then the
// oracle is ORT on a reference model written by hand in opset-7+ form from the changelog's
// definition (e.g. Add-1 broadcast=1 axis=1 with B [C] is Add-7 with B [C, 1, 1]), which the
// test reports. Where the semantic is subtle (legacy broadcasting at an axis, per-channel PRelu,
// Pad-1, Selu-1's defaults, Upsample-1) the outputs are also checked against numbers computed
// in the test. Every upgraded graph is also exported and run by ORT as the opset-7 model it now
// is, so the rewrites produce valid ONNX.
import assert from "node:assert/strict";
import { exportModel, importModel, ModelError, seededRandom, Session } from "../src/mod.ts";
import type { Tensor } from "../src/mod.ts";
import {
  AttributeType,
  DataType,
  encodeModel,
  makeModel,
  modelProto,
  node,
  type NodeProto,
  tensorFromArray,
  type TensorProto,
  valueInfo,
  type ValueInfoProto,
} from "../src/onnx/proto.ts";
import { type Feeds, ortRun, sqzRun } from "./engines.ts";

const F = DataType.FLOAT;
const f = (v: number) => ({ type: AttributeType.FLOAT, f: v });

// ---------------------------------------------------------------------------------------------
// Helpers

function assertClose(got: Tensor, want: Tensor | number[], what: string, rtol = 1e-5): void {
  const wd = Array.isArray(want) ? want : Array.from(want.data as ArrayLike<number>, Number);
  if (!Array.isArray(want)) assert.deepEqual(got.dims, want.dims, `${what}: dims`);
  const gd = Array.from(got.data as ArrayLike<number | bigint>, Number);
  assert.equal(gd.length, wd.length, `${what}: element count`);
  const scale = Math.max(1e-6, ...wd.map(Math.abs));
  for (let i = 0; i < wd.length; i++) {
    const ok = Number.isNaN(wd[i]) ? Number.isNaN(gd[i]) : Math.abs(gd[i] - wd[i]) <= rtol * scale;
    assert.ok(ok, `${what}[${i}]: got ${gd[i]}, want ${wd[i]}\n got ${gd}\nwant ${wd}`);
  }
}

const rnd = seededRandom(7);
function floats(dims: number[], lo = -2, hi = 2): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  return {
    type: "float32",
    dims,
    data: Float32Array.from({ length: n }, () => lo + (hi - lo) * rnd()),
  };
}

interface Spec {
  nodes: NodeProto[];
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  initializers?: TensorProto[];
}

const model = (s: Spec, opset: number) =>
  makeModel({ ...s, opset, irVersion: opset < 7 ? 3 : 7, graphName: "legacy" });

interface Case {
  name: string;
  opset: number;
  legacy: Spec;
  /** The same computation in opset-7+ form (inputs/outputs as the legacy model's). */
  reference?: Spec & { opset?: number };
  feeds: Feeds;
  /** Outputs computed by hand in the test. */
  expect?: Record<string, number[]>;
  /** Must appear in the import notes. */
  note: RegExp;
}

/** The check every case gets: sqz vs the oracle, sqz vs hand numbers, the upgraded model in ORT. */
async function check(c: Case): Promise<void> {
  const bytes = model(c.legacy, c.opset);
  const g = importModel(bytes);
  assert.equal(g.opsets.get(""), 7, `${c.name}: upgraded to opset 7`);
  assert.ok(
    g.notes.some((n) => c.note.test(n)),
    `${c.name}: notes ${JSON.stringify(g.notes)} lack ${c.note}`,
  );
  const ours = await sqzRun(bytes, c.feeds);
  let oracle: Record<string, Tensor>;
  let which = `ORT on the opset-${c.opset} model`;
  try {
    oracle = await ortRun(bytes, c.feeds);
  } catch (e) {
    if (!c.reference) throw e;
    const ref = model(c.reference, c.reference.opset ?? 7);
    which = `ORT on the hand-written opset-${c.reference.opset ?? 7} equivalent (ORT refuses ` +
      `the opset-${c.opset} model: ${(e as Error).message.split("\n")[0].slice(0, 90)})`;
    oracle = await ortRun(ref, c.feeds);
  }
  console.log(`${c.name}: ${which}`);
  for (const out of c.legacy.outputs) {
    const name = out.name!;
    assertClose(ours[name], oracle[name], `${c.name} ${name} vs oracle`);
    if (c.expect?.[name]) assertClose(ours[name], c.expect[name], `${c.name} ${name} vs by hand`);
  }
  // The upgraded graph, saved, is a valid opset-7 model that ORT runs to the same outputs.
  const upgraded = await ortRun(exportModel(g), c.feeds);
  for (const out of c.legacy.outputs) {
    assertClose(upgraded[out.name!], ours[out.name!], `${c.name} ${out.name}: exported opset 7`);
  }
}

/** C = A op B with B broadcast onto A's dims starting at `axis` (legacy rule), by hand. */
function legacyBroadcast(
  a: Tensor,
  b: Tensor,
  axis: number,
  op: (x: number, y: number) => number,
): number[] {
  const ad = a.dims, bd = b.dims;
  const av = Array.from(a.data as ArrayLike<number>, Number);
  const bv = Array.from(b.data as ArrayLike<number>, Number);
  const out: number[] = [];
  const idx = new Array(ad.length).fill(0);
  for (let i = 0; i < av.length; i++) {
    let r = i;
    for (let d = ad.length - 1; d >= 0; d--) {
      idx[d] = r % ad[d];
      r = Math.floor(r / ad[d]);
    }
    let j = 0;
    for (let k = 0; k < bd.length; k++) j = j * bd[k] + idx[axis + k];
    out.push(op(av[i], bv[j]));
  }
  return out;
}

const t = (name: string, x: Tensor) =>
  tensorFromArray(name, x.type === "float32" ? F : DataType.INT32, x.dims, x.data as Float32Array);

// ---------------------------------------------------------------------------------------------
// Legacy broadcasting

const A4 = floats([2, 3, 2, 2]);
const B3 = floats([3]);
const B32 = floats([3, 2]);
const B2 = floats([2]);

const CASES: Case[] = [
  {
    name: "Add-1 broadcast=1 axis=1, constant B [3] (+ consumed_inputs)",
    opset: 1,
    legacy: {
      nodes: [node("Add", ["a", "b"], ["c"], { broadcast: 1, axis: 1, consumed_inputs: [0, 0] })],
      inputs: [valueInfo("a", F, [2, 3, 2, 2])],
      outputs: [valueInfo("c", F, [2, 3, 2, 2])],
      initializers: [t("b", B3)],
    },
    reference: {
      nodes: [node("Add", ["a", "b"], ["c"])],
      inputs: [valueInfo("a", F, [2, 3, 2, 2])],
      outputs: [valueInfo("c", F, [2, 3, 2, 2])],
      initializers: [tensorFromArray("b", F, [3, 1, 1], B3.data as Float32Array)],
    },
    feeds: { a: A4 },
    expect: { c: legacyBroadcast(A4, B3, 1, (x, y) => x + y) },
    note: /Add-1: broadcast=1 with axis/,
  },
  {
    name: "Sub-6 broadcast=1 axis=1, B [3, 2] a graph input (Unsqueeze inserted)",
    opset: 6,
    legacy: {
      nodes: [node("Sub", ["a", "b"], ["c"], { broadcast: 1, axis: 1 })],
      inputs: [valueInfo("a", F, [2, 3, 2, 2]), valueInfo("b", F, [3, 2])],
      outputs: [valueInfo("c", F, [2, 3, 2, 2])],
    },
    reference: {
      nodes: [node("Unsqueeze", ["b"], ["b3"], { axes: [2] }), node("Sub", ["a", "b3"], ["c"])],
      inputs: [valueInfo("a", F, [2, 3, 2, 2]), valueInfo("b", F, [3, 2])],
      outputs: [valueInfo("c", F, [2, 3, 2, 2])],
    },
    feeds: { a: A4, b: B32 },
    expect: { c: legacyBroadcast(A4, B32, 1, (x, y) => x - y) },
    note: /Sub-6: broadcast=1 with axis/,
  },
  {
    name: "Mul-6 broadcast=1 without axis (suffix matching = numpy)",
    opset: 6,
    legacy: {
      nodes: [node("Mul", ["a", "b"], ["c"], { broadcast: 1 })],
      inputs: [valueInfo("a", F, [2, 3, 2, 2])],
      outputs: [valueInfo("c", F, [2, 3, 2, 2])],
      initializers: [t("b", B2)],
    },
    reference: {
      nodes: [node("Mul", ["a", "b"], ["c"])],
      inputs: [valueInfo("a", F, [2, 3, 2, 2])],
      outputs: [valueInfo("c", F, [2, 3, 2, 2])],
      initializers: [t("b", B2)],
    },
    feeds: { a: A4 },
    expect: { c: legacyBroadcast(A4, B2, 3, (x, y) => x * y) },
    note: /Mul-6: broadcast=1 \(suffix matching\)/,
  },
  {
    name: "Div-6 broadcast=0 (equal shapes), Pow-6 broadcast=1 axis=0",
    opset: 6,
    legacy: {
      nodes: [
        node("Div", ["a", "d"], ["q"], { broadcast: 0 }),
        node("Pow", ["p", "e"], ["z"], { broadcast: 1, axis: 0 }),
      ],
      inputs: [
        valueInfo("a", F, [2, 3, 2, 2]),
        valueInfo("d", F, [2, 3, 2, 2]),
        valueInfo("p", F, [2, 3]),
      ],
      outputs: [valueInfo("q", F, [2, 3, 2, 2]), valueInfo("z", F, [2, 3])],
      initializers: [tensorFromArray("e", F, [2], Float32Array.of(2, 3))],
    },
    reference: {
      nodes: [node("Div", ["a", "d"], ["q"]), node("Pow", ["p", "e"], ["z"])],
      inputs: [
        valueInfo("a", F, [2, 3, 2, 2]),
        valueInfo("d", F, [2, 3, 2, 2]),
        valueInfo("p", F, [2, 3]),
      ],
      outputs: [valueInfo("q", F, [2, 3, 2, 2]), valueInfo("z", F, [2, 3])],
      initializers: [tensorFromArray("e", F, [2, 1], Float32Array.of(2, 3))],
    },
    feeds: { a: A4, d: floats([2, 3, 2, 2], 0.5, 2), p: floats([2, 3], 0.5, 2) },
    note: /Pow-1: broadcast=1 with axis/, // Pow had no version 6: at opset 6 it is Pow-1
  },
];

// And/Or/Xor (bool), Equal (int32), Greater/Less (float): broadcast=1, axis=1, B [3] onto [2,3,2].
{
  const bools = (n: number) => Uint8Array.from({ length: n }, () => (rnd() < 0.5 ? 1 : 0));
  const A = { type: "bool", dims: [2, 3, 2], data: bools(12) } as Tensor;
  const B = { type: "bool", dims: [3], data: bools(3) } as Tensor;
  const I = {
    type: "int32",
    dims: [2, 3, 2],
    data: Int32Array.from({ length: 12 }, (_, i) => i % 3),
  } as Tensor;
  const J = Int32Array.of(0, 1, 2);
  const X = floats([2, 3, 2]);
  const Y = floats([3]);
  const B_ = DataType.BOOL, I_ = DataType.INT32;
  const io = {
    inputs: [
      valueInfo("a", B_, [2, 3, 2]),
      valueInfo("i", I_, [2, 3, 2]),
      valueInfo("x", F, [2, 3, 2]),
    ],
    outputs: ["and", "or", "xor", "eq", "gt", "lt"].map((n) => valueInfo(n, B_, [2, 3, 2])),
  };
  const ops = [
    ["And", "a", "b", "and"],
    ["Or", "a", "b", "or"],
    ["Xor", "a", "b", "xor"],
    [
      "Equal",
      "i",
      "j",
      "eq",
    ],
    ["Greater", "x", "y", "gt"],
    ["Less", "x", "y", "lt"],
  ];
  const inits = (dims: number[]) => [
    tensorFromArray("b", B_, dims, B.data as Uint8Array),
    tensorFromArray("j", I_, dims, J),
    tensorFromArray("y", F, dims, Y.data as Float32Array),
  ];
  const by = (op: (p: number, q: number) => boolean, a: Tensor, b: Tensor) =>
    legacyBroadcast(a, b, 1, (p, q) => (op(p, q) ? 1 : 0));
  CASES.push({
    name: "And/Or/Xor/Equal/Greater/Less-1 broadcast=1 axis=1",
    opset: 1,
    legacy: {
      ...io,
      nodes: ops.map(([op, a, b, c]) => node(op, [a, b], [c], { broadcast: 1, axis: 1 })),
      initializers: inits([3]),
    },
    reference: {
      ...io,
      nodes: ops.map(([op, a, b, c]) => node(op, [a, b], [c])),
      initializers: inits([3, 1]),
    },
    feeds: { a: A, i: I, x: X },
    expect: {
      and: by((p, q) => !!(p && q), A, B),
      or: by((p, q) => !!(p || q), A, B),
      xor: by((p, q) => !!p !== !!q, A, B),
      eq: by((p, q) => p === q, I, { type: "int32", dims: [3], data: J }),
      gt: by((p, q) => p > q, X, Y),
      lt: by((p, q) => p < q, X, Y),
    },
    note: /Equal-1: broadcast=1 with axis/,
  });
}

// ---------------------------------------------------------------------------------------------
// Gemm, BatchNormalization, Dropout

{
  const A = floats([2, 3]), W = floats([4, 3]), C = floats([4]), C2 = floats([2, 4]);
  const io = {
    inputs: [valueInfo("a", F, [2, 3])],
    outputs: [valueInfo("y", F, [2, 4]), valueInfo("z", F, [2, 4])],
  };
  const inits = [t("w", W), t("c", C), t("c2", C2)];
  CASES.push({
    name: "Gemm-6 broadcast=1 (C [N]) and Gemm-6 broadcast=0 (C [M, N])",
    opset: 6,
    legacy: {
      ...io,
      nodes: [
        node("Gemm", ["a", "w", "c"], ["y"], {
          broadcast: 1,
          transB: 1,
          alpha: f(0.5),
          beta: f(2),
        }),
        node("Gemm", ["a", "w", "c2"], ["z"], { broadcast: 0, transB: 1 }),
      ],
      initializers: inits,
    },
    reference: {
      ...io,
      nodes: [
        node("Gemm", ["a", "w", "c"], ["y"], { transB: 1, alpha: f(0.5), beta: f(2) }),
        node("Gemm", ["a", "w", "c2"], ["z"], { transB: 1 }),
      ],
      initializers: inits,
    },
    feeds: { a: A },
    note: /Gemm-6: broadcast=1 dropped/,
  });
}

{
  const X = floats([2, 3, 2, 2]);
  const p = (name: string, lo: number, hi: number) => t(name, floats([3], lo, hi));
  const inits = [p("s", 0.5, 1.5), p("bb", -1, 1), p("m", -1, 1), p("v", 0.5, 2)];
  const io = {
    inputs: [valueInfo("x", F, [2, 3, 2, 2])],
    outputs: [valueInfo("y", F, [2, 3, 2, 2])],
  };
  const bn = (attrs: Record<string, unknown>, outs = ["y"]) =>
    node("BatchNormalization", ["x", "s", "bb", "m", "v"], outs, attrs as never);
  CASES.push({
    name: "BatchNormalization-1 consumed_inputs, is_test=1, unused training outputs",
    opset: 1,
    legacy: {
      ...io,
      nodes: [
        bn({ consumed_inputs: [0, 0, 0, 1, 1], is_test: 1, epsilon: f(1e-3) }, [
          "y",
          "",
          "",
          "sm",
          "",
        ]),
      ],
      initializers: inits,
    },
    reference: { ...io, nodes: [bn({ epsilon: f(1e-3) })], initializers: inits },
    feeds: { x: X },
    note: /BatchNormalization-1: is_test dropped/,
  });
  CASES.push({
    name: "BatchNormalization-6 is_test=0 with only Y, spatial=0 with per-channel parameters",
    opset: 6,
    legacy: { ...io, nodes: [bn({ is_test: 0, spatial: 0 })], initializers: inits },
    reference: { ...io, nodes: [bn({})], initializers: inits },
    feeds: { x: X },
    note: /spatial=0 with per-channel/,
  });
  CASES.push({
    name: "Dropout-1 is_test=1 (+ consumed_inputs), Dropout-6 is_test=0 with an unused mask",
    opset: 6,
    legacy: {
      ...io,
      nodes: [
        node("Dropout", ["x"], ["h"], { is_test: 1, ratio: f(0.3) }),
        node("Dropout", ["h"], ["y", "mask"], { is_test: 0 }),
      ],
    },
    reference: { ...io, nodes: [node("Identity", ["x"], ["y"])] },
    feeds: { x: X },
    expect: { y: Array.from(X.data as Float32Array) },
    note: /Dropout-6: is_test=0 \(training mode\): runs as inference/,
  });
}

// ---------------------------------------------------------------------------------------------
// Attribute ↔ input changes and defaults

{
  const X = floats([2, 3, 4]);
  for (const opset of [1, 4]) {
    CASES.push({
      name: `Reshape-1 shape attribute at opset ${opset}`,
      opset,
      legacy: {
        nodes: [node("Reshape", ["x"], ["y"], { shape: [0, -1], consumed_inputs: [0] })],
        inputs: [valueInfo("x", F, [2, 3, 4])],
        outputs: [valueInfo("y", F, [2, 12])],
      },
      reference: {
        nodes: [node("Reshape", ["x", "s"], ["y"])],
        inputs: [valueInfo("x", F, [2, 3, 4])],
        outputs: [valueInfo("y", F, [2, 12])],
        initializers: [tensorFromArray("s", DataType.INT64, [2], BigInt64Array.of(0n, -1n))],
      },
      feeds: { x: X },
      note: /Reshape-1: shape attribute → int64 shape input/,
    });
  }
}

{
  const X = floats([2, 3]);
  const xs = Array.from(X.data as Float32Array);
  // pads [x1_begin, x2_begin, x1_end, x2_end] = [0, 1, 1, 2]: one column before, one row
  // after, two columns after; constant 1.5.
  const want: number[] = [];
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 6; j++) want.push(i < 2 && j >= 1 && j < 4 ? xs[i * 3 + j - 1] : 1.5);
  }
  const io = { inputs: [valueInfo("x", F, [2, 3])], outputs: [valueInfo("y", F, [3, 6])] };
  CASES.push({
    name: "Pad-1 paddings → Pad-2 pads",
    opset: 1,
    legacy: {
      ...io,
      nodes: [node("Pad", ["x"], ["y"], { paddings: [0, 1, 1, 2], value: f(1.5) })],
    },
    reference: {
      ...io,
      opset: 2,
      nodes: [node("Pad", ["x"], ["y"], { pads: [0, 1, 1, 2], value: f(1.5) })],
    },
    feeds: { x: X },
    expect: { y: want },
    note: /Pad-1: paddings → pads/,
  });
}

for (const opset of [1, 3]) {
  const io = {
    inputs: [valueInfo("a", F, [2, 3]), valueInfo("b", F, [2, 4])],
    outputs: [valueInfo("y", F, [2, 7])],
  };
  CASES.push({
    name: `Concat-1 without axis at opset ${opset} (default 1)`,
    opset,
    legacy: { ...io, nodes: [node("Concat", ["a", "b"], ["y"])] },
    reference: { ...io, nodes: [node("Concat", ["a", "b"], ["y"], { axis: 1 })] },
    feeds: { a: floats([2, 3]), b: floats([2, 4]) },
    note: /Concat-1: no axis/,
  });
}

{
  const X = floats([2, 3, 4]);
  const io = {
    inputs: [valueInfo("x", F, [2, 3, 4])],
    outputs: [
      valueInfo("p", F, [2, 1, 4]),
      valueInfo("q", F, [2, 2, 4]),
      valueInfo("r", F, [2, 3, 1]),
      valueInfo("s", F, [2, 3, 3]),
      valueInfo("u", F, [2, 1, 4]),
      valueInfo("w", F, [2, 2, 4]),
    ],
  };
  CASES.push({
    name: "Split-1: split attribute, split as a constant second input, no axis (→ 1)",
    opset: 1,
    legacy: {
      ...io,
      nodes: [
        node("Split", ["x"], ["p", "q"], { axis: 1, split: [1, 2] }),
        node("Split", ["x", "sizes"], ["r", "s"], { axis: 2 }),
        node("Split", ["x"], ["u", "w"], { split: [1, 2] }),
      ],
      initializers: [tensorFromArray("sizes", F, [2], Float32Array.of(1, 3))],
    },
    reference: {
      ...io,
      opset: 2,
      nodes: [
        node("Split", ["x"], ["p", "q"], { axis: 1, split: [1, 2] }),
        node("Split", ["x"], ["r", "s"], { axis: 2, split: [1, 3] }),
        node("Split", ["x"], ["u", "w"], { axis: 1, split: [1, 2] }),
      ],
    },
    feeds: { x: X },
    note: /Split-1: split lengths input → split attribute/,
  });
}

{
  const X = floats([2, 3, 4]);
  const x = valueInfo("x", F, [2, 3, 4]);
  const io = { inputs: [x], outputs: [valueInfo("c", F, [2, 3, 4])] };
  CASES.push({
    name: "Clip-1 with consumed_inputs",
    opset: 1,
    legacy: {
      ...io,
      nodes: [node("Clip", ["x"], ["c"], { min: f(-0.5), max: f(0.75), consumed_inputs: [0] })],
    },
    reference: { ...io, nodes: [node("Clip", ["x"], ["c"], { min: f(-0.5), max: f(0.75) })] },
    feeds: { x: X },
    note: /Clip-1: legacy consumed_inputs attribute dropped/,
  });
  // Unchanged up to opset 7: ORT still runs these at opset 1, so it is the oracle itself.
  CASES.push({
    name: "Softmax/LogSoftmax/Hardmax-1 2-D coercion, Slice-1, Squeeze/Unsqueeze-1 (unchanged)",
    opset: 1,
    legacy: {
      inputs: [x],
      outputs: [
        valueInfo("sm", F, [2, 3, 4]),
        valueInfo("lsm", F, [2, 3, 4]),
        valueInfo("hm", F, [2, 3, 4]),
        valueInfo("sl", F, [2, 2, 2]),
        valueInfo("sq", F, [2, 3, 4]),
      ],
      nodes: [
        node("Softmax", ["x"], ["sm"]),
        node("LogSoftmax", ["x"], ["lsm"], { axis: 1 }),
        node("Hardmax", ["x"], ["hm"], { axis: 2 }),
        node("Slice", ["x"], ["sl"], { starts: [1, 0], ends: [3, -2], axes: [1, 2] }),
        node("Unsqueeze", ["x"], ["x1"], { axes: [0] }),
        node("Squeeze", ["x1"], ["sq"], { axes: [0] }),
      ],
    },
    feeds: { x: X },
    note: /opset 1 → 7: no op in the model changed meaning/,
  });
}

// Version-1 ops with consumed_inputs: each alone, against the same op at opset 7 without it.
{
  const unary: [string, Record<string, unknown>, Record<string, unknown>?][] = [
    ["Relu", {}],
    ["Sigmoid", {}],
    ["Tanh", {}],
    ["Neg", {}],
    ["Abs", {}],
    ["Exp", {}],
    ["Log", {}],
    ["Sqrt", {}],
    ["Floor", {}],
    ["Ceil", {}],
    ["Reciprocal", {}],
    ["LeakyRelu", { alpha: f(0.2) }],
    ["Elu", { alpha: f(0.5) }],
    ["HardSigmoid", { alpha: f(0.3), beta: f(0.4) }],
    // Selu-1's defaults differ from Selu-6's: the reference spells them out.
    ["Selu", {}, { alpha: f(1.6732), gamma: f(1.0507) }],
  ];
  for (const [op, attrs, refAttrs] of unary) {
    const positive = ["Log", "Sqrt", "Reciprocal"].includes(op);
    const X = floats([2, 3, 2], positive ? 0.25 : -2, 2);
    const io = { inputs: [valueInfo("x", F, [2, 3, 2])], outputs: [valueInfo("y", F, [2, 3, 2])] };
    CASES.push({
      name: `${op}-1 with consumed_inputs`,
      opset: 1,
      legacy: {
        ...io,
        nodes: [node(op, ["x"], ["y"], { ...attrs, consumed_inputs: [0] } as never)],
      },
      reference: { ...io, nodes: [node(op, ["x"], ["y"], (refAttrs ?? attrs) as never)] },
      feeds: { x: X },
      note: new RegExp(`${op}-1: `),
    });
  }
  const X = floats([2, 3, 2]), Y = floats([2, 3, 2]);
  const io = {
    inputs: [valueInfo("x", F, [2, 3, 2]), valueInfo("z", F, [2, 3, 2])],
    outputs: ["sum", "max", "min", "mean", "inorm", "prelu"].map((n) => valueInfo(n, F, [2, 3, 2])),
  };
  const inits = [
    t("sc", floats([3], 0.5, 1.5)),
    t("bi", floats([3])),
    tensorFromArray("sl", F, [1], Float32Array.of(0.25)),
  ];
  const nodes = (extra: Record<string, unknown>) => [
    node("Sum", ["x", "z"], ["sum"], extra as never),
    node("Max", ["x", "z"], ["max"], extra as never),
    node("Min", ["x", "z"], ["min"], extra as never),
    node("Mean", ["x", "z"], ["mean"], extra as never),
    node("InstanceNormalization", ["x", "sc", "bi"], ["inorm"], extra as never),
    node("PRelu", ["x", "sl"], ["prelu"], extra as never),
  ];
  CASES.push({
    name: "Sum/Max/Min/Mean/InstanceNormalization/PRelu-1 with consumed_inputs",
    opset: 1,
    legacy: { ...io, nodes: nodes({ consumed_inputs: [0] }), initializers: inits },
    reference: { ...io, nodes: nodes({}), initializers: inits },
    feeds: { x: X, z: Y },
    note: /InstanceNormalization-1: legacy consumed_inputs/,
  });
}

{
  // Selu-1's own defaults: y = 1.0507·x for x > 0, 1.0507·1.6732·(eˣ − 1) otherwise.
  const X = floats([8], -3, 1);
  const want = Array.from(
    X.data as Float32Array,
    (x) => x > 0 ? 1.0507 * x : 1.0507 * 1.6732 * (Math.exp(x) - 1),
  );
  const io = { inputs: [valueInfo("x", F, [8])], outputs: [valueInfo("y", F, [8])] };
  CASES.push({
    name: "Selu-1 defaults alpha=1.6732, gamma=1.0507 (Selu-6 changed them)",
    opset: 1,
    legacy: { ...io, nodes: [node("Selu", ["x"], ["y"])] },
    reference: {
      ...io,
      nodes: [node("Selu", ["x"], ["y"], { alpha: f(1.6732), gamma: f(1.0507) })],
    },
    feeds: { x: X },
    expect: { y: want },
    note: /Selu-1 defaults alpha=1.6732, gamma=1.0507 made explicit/,
  });
}

{
  const X = floats([2, 3], -3, 3);
  const io = {
    inputs: [valueInfo("x", F, [2, 3])],
    outputs: [valueInfo("i", DataType.INT32, [2, 3]), valueInfo("y", F, [2, 3])],
  };
  CASES.push({
    name: "Cast-1 with type names ('INT32', 'FLOAT')",
    opset: 1,
    legacy: {
      ...io,
      nodes: [
        node("Cast", ["x"], ["i"], { to: "INT32" }),
        node("Cast", ["i"], ["y"], { to: "FLOAT" }),
      ],
    },
    reference: {
      ...io,
      opset: 6,
      nodes: [
        node("Cast", ["x"], ["i"], { to: DataType.INT32 }),
        node("Cast", ["i"], ["y"], { to: F }),
      ],
    },
    feeds: { x: X },
    expect: { y: Array.from(X.data as Float32Array, Math.trunc) },
    note: /Cast-1: 'to' type name → DataType enum value/,
  });
}

{
  // PRelu-6 slope [C]: per channel on axis 1, as a constant and as a graph input.
  const X = floats([2, 3, 2, 2]), S = floats([3], 0, 0.5);
  const want = legacyBroadcast(X, S, 1, (x, s) => (x < 0 ? s * x : x));
  const io = {
    inputs: [valueInfo("x", F, [2, 3, 2, 2]), valueInfo("s", F, [3])],
    outputs: [valueInfo("y", F, [2, 3, 2, 2]), valueInfo("z", F, [2, 3, 2, 2])],
  };
  CASES.push({
    name: "PRelu-6 per-channel slope [C] (constant and graph input) → [C, 1, 1]",
    opset: 6,
    legacy: {
      ...io,
      nodes: [node("PRelu", ["x", "sc"], ["y"]), node("PRelu", ["x", "s"], ["z"])],
      initializers: [t("sc", S)],
    },
    reference: {
      ...io,
      nodes: [
        node("PRelu", ["x", "sc"], ["y"]),
        node("Unsqueeze", ["s"], ["s3"], { axes: [1, 2] }),
        node("PRelu", ["x", "s3"], ["z"]),
      ],
      initializers: [tensorFromArray("sc", F, [3, 1, 1], S.data as Float32Array)],
    },
    feeds: { x: X, s: S },
    expect: { y: want, z: want },
    note: /PRelu-6: per-channel slope/,
  });
}

{
  const X = floats([2, 3]);
  const i64 = (name: string, v: bigint) =>
    tensorFromArray(name, DataType.INT64, [], BigInt64Array.of(v));
  const io = { inputs: [valueInfo("x", F, [2, 3])], outputs: [valueInfo("y", F, [2, 9])] };
  CASES.push({
    name: "Tile-1 (tiles, axis) → Tile-6 repeats",
    opset: 1,
    legacy: {
      ...io,
      nodes: [node("Tile", ["x", "tiles", "axis"], ["y"])],
      initializers: [i64("tiles", 3n), i64("axis", 1n)],
    },
    reference: {
      ...io,
      opset: 6,
      nodes: [node("Tile", ["x", "r"], ["y"])],
      initializers: [tensorFromArray("r", DataType.INT64, [2], BigInt64Array.of(1n, 3n))],
    },
    feeds: { x: X },
    note: /Tile-1: \(tiles, axis\) inputs → repeats input/,
  });
}

{
  const X = floats([1, 3, 2, 2]);
  const io = {
    inputs: [valueInfo("x", F, [1, 3, 2, 2])],
    outputs: [
      valueInfo("y", F, [1, 3, 2, 2]),
      valueInfo("z", F, [1, 3, 2, 2]),
      valueInfo("w", F, [1, 3, 1, 1]),
    ],
  };
  const bias = [0.5, -1, 2];
  const xs = Array.from(X.data as Float32Array);
  CASES.push({
    name: "experimental ImageScaler/Affine/Crop-1 → Mul/Add/Slice",
    opset: 1,
    legacy: {
      ...io,
      nodes: [
        node("ImageScaler", ["x"], ["y"], { scale: f(0.5), bias }),
        node("Affine", ["x"], ["z"], { alpha: f(2), beta: f(-1) }),
        node("Crop", ["x"], ["w"], { border: [1, 0, 0, 0], scale: [1, 1] }),
      ],
    },
    reference: {
      ...io,
      nodes: [
        node("Mul", ["x", "half"], ["h"]),
        node("Add", ["h", "bias"], ["y"]),
        node("Mul", ["x", "two"], ["d"]),
        node("Add", ["d", "m1"], ["z"]),
        node("Slice", ["x"], ["w"], { starts: [0, 1], ends: [1, 2], axes: [2, 3] }),
      ],
      initializers: [
        tensorFromArray("half", F, [], Float32Array.of(0.5)),
        tensorFromArray("bias", F, [3, 1, 1], Float32Array.from(bias)),
        tensorFromArray("two", F, [], Float32Array.of(2)),
        tensorFromArray("m1", F, [], Float32Array.of(-1)),
      ],
    },
    feeds: { x: X },
    expect: {
      y: xs.map((v, i) => 0.5 * v + bias[Math.floor(i / 4)]),
      z: xs.map((v) => 2 * v - 1),
      w: [0, 1, 2].map((c) => xs[c * 4 + 1]),
    },
    note: /ImageScaler-1: experimental op → Mul, Add/,
  });
}

for (const c of CASES) Deno.test(`legacy: ${c.name}`, () => check(c));

// ---------------------------------------------------------------------------------------------
// Upsample-1: rewritten to Upsample-7; ORT runs the rewritten model, sqz the original

Deno.test("legacy: Upsample-1 width_scale/height_scale → Upsample-7 scales; ORT runs it", async () => {
  const X = floats([1, 2, 2, 3]);
  const xs = Array.from(X.data as Float32Array);
  for (const mode of ["nearest", "bilinear"]) {
    const bytes = model({
      nodes: [
        node("Upsample", ["x"], ["y"], { height_scale: f(2), width_scale: f(3), mode }, "up"),
      ],
      inputs: [valueInfo("x", F, [1, 2, 2, 3])],
      outputs: [valueInfo("y", F, [1, 2, 4, 9])],
    }, 1);
    const g = importModel(bytes);
    const up = g.nodes.find((n) => n.name === "up")!;
    assert.deepEqual(up.attrs, {
      scales: [1, 1, 2, 3],
      mode: mode === "bilinear" ? "linear" : "nearest",
    });
    const out = (await ortRun(exportModel(g), { x: X })).y;
    assert.deepEqual(out.dims, [1, 2, 4, 9]);
    if (mode === "nearest") {
      // Nearest with integer scales repeats each pixel 2× down and 3× across.
      const want: number[] = [];
      for (let c = 0; c < 2; c++) {
        for (let i = 0; i < 4; i++) {
          for (let j = 0; j < 9; j++) {
            want.push(xs[c * 6 + Math.floor(i / 2) * 3 + Math.floor(j / 3)]);
          }
        }
      }
      assertClose(out, want, "Upsample nearest");
    }
    // sqz runs the opset-1 model itself (upgraded at import) and matches ORT's result.
    const s = await Session.create(bytes);
    const ours = (await s.run({ x: X })).y;
    await s.release();
    assertClose(ours, Array.from(out.data as Float32Array), `sqz Upsample ${mode}`);
  }
});

// ---------------------------------------------------------------------------------------------
// A Caffe2-era opset-6 CNN end to end

Deno.test("legacy: an opset-6 CNN (Conv, Add axis=1 bias, Relu, MaxPool, Reshape, Gemm broadcast, Softmax)", async () => {
  const W = floats([4, 3, 3, 3], -0.5, 0.5),
    Bc = floats([4]),
    Wf = floats([5, 36], -0.5, 0.5),
    Bf = floats([5]);
  const io = { inputs: [valueInfo("x", F, [2, 3, 6, 6])], outputs: [valueInfo("p", F, [2, 5])] };
  const shape = tensorFromArray("shape", DataType.INT64, [2], BigInt64Array.of(0n, -1n));
  const inits = [t("w", W), t("bc", Bc), t("wf", Wf), t("bf", Bf), shape];
  const tail = [
    node("Relu", ["h"], ["r"]),
    node("MaxPool", ["r"], ["m"], { kernel_shape: [2, 2], strides: [2, 2] }),
    node("Reshape", ["m", "shape"], ["flat"]),
  ];
  const legacy = model({
    ...io,
    nodes: [
      node("Conv", ["x", "w"], ["c"], {
        kernel_shape: [3, 3],
        pads: [1, 1, 1, 1],
      }),
      node("Add", ["c", "bc"], ["h"], { broadcast: 1, axis: 1 }),
      ...tail,
      node("Gemm", ["flat", "wf", "bf"], ["g"], { broadcast: 1, transB: 1 }),
      node("Softmax", ["g"], ["p"]),
    ],
    initializers: inits,
  }, 6);
  const reference = model({
    ...io,
    nodes: [
      node("Conv", ["x", "w", "bc"], ["h"], {
        kernel_shape: [3, 3],
        pads: [1, 1, 1, 1],
      }),
      ...tail,
      node("Gemm", ["flat", "wf", "bf"], ["g"], { transB: 1 }),
      node("Softmax", ["g"], ["p"]),
    ],
    initializers: inits,
  }, 7);
  const x = floats([2, 3, 6, 6], 0, 1);
  const ours = (await sqzRun(legacy, { x })).p;
  const want = (await ortRun(reference, { x })).p;
  assertClose(ours, want, "legacy CNN vs ORT on its opset-7 equivalent");
  const g = importModel(legacy);
  assert.ok(g.notes[0].startsWith("opset 6 → 7"), g.notes[0]);
  assertClose((await ortRun(exportModel(g), { x })).p, want, "upgraded CNN in ORT");
});

// ---------------------------------------------------------------------------------------------
// What has no meaning in opset 7: typed errors naming node, op and version

Deno.test("legacy: unsupported old semantics are ModelErrors naming the node, op and version", () => {
  const x4 = valueInfo("x", F, [2, 3, 2, 2]), y4 = valueInfo("y", F, [2, 3, 2, 2]);
  const bad = (
    opset: number,
    nodes: NodeProto[],
    re: RegExp,
    inits: TensorProto[] = [],
    inputs = [x4],
    outputs = [y4],
  ) =>
    assert.throws(
      () => importModel(model({ nodes, inputs, outputs, initializers: inits }, opset)),
      (e: Error) => e instanceof ModelError && re.test(e.message),
      re.source,
    );
  // Opset 0 does not exist.
  bad(0, [node("Relu", ["x"], ["y"])], /opset 0; opset versions start at 1/);
  bad(
    1,
    [node("ATen", ["x"], ["y"], { operator: "relu" }, "aten")],
    /node 'aten' \(ATen-1\) has no meaning in opset 7/,
  );
  // Without broadcast=1 the shapes must match.
  bad(6, [node("Add", ["x", "b"], ["y"], {}, "add")], /node 'add' \(Add-6\).*without broadcast=1/, [
    t("b", B3),
  ]);
  // A [M, N] Gemm C is required without broadcast.
  bad(
    6,
    [node("Gemm", ["a", "w", "c"], ["y"], { broadcast: 0 }, "fc")],
    /node 'fc' \(Gemm-6\): C is \[4\] but without broadcast=1 it must be \[2, 4\]/,
    [t("w", floats([3, 4])), t("c", floats([4]))],
    [valueInfo("a", F, [2, 3])],
    [valueInfo("y", F, [2, 4])],
  );
  // Training-mode BatchNormalization whose running statistics are read.
  const p = (n: string) => t(n, floats([3]));
  bad(
    6,
    [
      node(
        "BatchNormalization",
        ["x", "s", "b", "m", "v"],
        ["y", "mean_out"],
        { is_test: 0 },
        "bn",
      ),
    ],
    /node 'bn' \(BatchNormalization-6\): is_test=0 \(training mode\) and its outputs beyond Y/,
    ["s", "b", "m", "v"].map(p),
    [x4],
    [y4, valueInfo("mean_out", F, [3])],
  );
  bad(
    6,
    [
      node("Dropout", ["x"], ["h", "mask"], { is_test: 0 }, "drop"),
      node("Mul", ["h", "mask"], ["y"]),
    ],
    /node 'drop' \(Dropout-6\): its mask output is used/,
  );
  bad(
    1,
    [node("Relu", ["x"], ["r"]), node("Split", ["x", "r"], ["y"], { axis: 0 }, "split")],
    /node 'split' \(Split-1\): the split lengths come from a computed input/,
  );
  // Legacy broadcasting at an axis needs ranks the model does not give.
  bad(
    6,
    [node("Add", ["x", "b"], ["y"], { broadcast: 1, axis: 1 }, "add")],
    /node 'add' \(Add-6\): broadcast=1 with axis=1 needs the ranks of A and B/,
    [],
    [
      { name: "x", type: { tensorType: { elemType: F } } } as ValueInfoProto,
      { name: "b", type: { tensorType: { elemType: F } } } as ValueInfoProto,
    ],
    [{ name: "y", type: { tensorType: { elemType: F } } } as ValueInfoProto],
  );
});

Deno.test("legacy: import notes summarize the rewrites, one line per kind", () => {
  const nodes = Array.from(
    { length: 5 },
    (_, i) =>
      node(
        "Relu",
        [i ? `r${i - 1}` : "x"],
        [i === 4 ? "y" : `r${i}`],
        { consumed_inputs: [0] },
        `relu${i}`,
      ),
  );
  const g = importModel(
    model({ nodes, inputs: [valueInfo("x", F, [2])], outputs: [valueInfo("y", F, [2])] }, 1),
  );
  assert.deepEqual(g.notes, [
    "opset 1 → 7: 5 rewrites of ops that changed meaning",
    "Relu-1: legacy consumed_inputs attribute dropped (5 nodes: 'relu0', 'relu1', 'relu2', …)",
  ]);
  // A model without changed ops still says it was upgraded.
  const h = importModel(
    model({
      nodes: [node("Conv", ["x", "w"], ["y"])],
      inputs: [valueInfo("x", F, [1, 1, 2, 2])],
      outputs: [valueInfo("y", F, [1, 1, 2, 2])],
      initializers: [tensorFromArray("w", F, [1, 1, 1, 1], Float32Array.of(2))],
    }, 3),
  );
  assert.deepEqual(h.notes, ["opset 3 → 7: no op in the model changed meaning"]);
  assert.equal(h.opsets.get(""), 7);
});

Deno.test("legacy: an IR-version-2 model without opset_import is opset 1", async () => {
  const proto = modelProto({
    nodes: [node("Relu", ["x"], ["y"], { consumed_inputs: [0] })],
    inputs: [valueInfo("x", F, [3])],
    outputs: [valueInfo("y", F, [3])],
    irVersion: 2,
  });
  proto.opsetImport = [];
  const bytes = encodeModel(proto);
  const g = importModel(bytes);
  assert.equal(g.opsets.get(""), 7);
  assert.match(g.notes[0], /^opset 1 → 7/);
  const y =
    (await sqzRun(bytes, { x: { type: "float32", dims: [3], data: Float32Array.of(-1, 0, 2) } })).y;
  assert.deepEqual(Array.from(y.data as Float32Array), [0, 0, 2]);
  // From IR version 3 on, a model must say which opset it uses.
  const p3 = modelProto({
    nodes: [],
    inputs: [valueInfo("x", F, [3])],
    outputs: [valueInfo("x", F, [3])],
    irVersion: 3,
  });
  p3.opsetImport = [];
  assert.throws(() => importModel(encodeModel(p3)), /imports no ONNX opset/);
});
