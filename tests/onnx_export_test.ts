// exportModel (src/onnx/export.ts): import → export → import gives the same graph (ops, attrs,
// constants, shapes), and the exported model runs to the same outputs, in sqz and in
// onnxruntime-web. Models: hand-built graphs covering every dtype and attribute kind, the ONNX
// project's four light models, and a sample of its node tests (run as they are, and again with
// every input turned into an initializer so each input dtype is written as a constant).
import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import { exportModel } from "../src/onnx/export.ts";
import { importModel } from "../src/onnx/import.ts";
import {
  AttributeType,
  DataType,
  decodeModel,
  decodeTensor,
  encodeModel,
  makeModel,
  node,
  tensorFromArray,
  type TypeProtoTensor,
  valueInfo,
} from "../src/onnx/proto.ts";
import { type AttrValue, Graph, Node, type Value } from "../src/graph/ir.ts";
import type { Tensor, TensorType } from "../src/graph/tensor.ts";
import { inferShapes } from "../src/graph/shape_inference.ts";
import { Session } from "../src/mod.ts";
import { ArgumentError, ModelError } from "../src/errors.ts";
import { conformanceDir, protoTensor } from "./conformance.ts";
import { initOrt } from "../bench/baselines/ort.ts";
import { rng } from "./util.ts";

// ---------------------------------------------------------------------------
// Graph comparison

function sameTensor(a: Tensor, b: Tensor, what: string): void {
  assert.equal(a.type, b.type, `${what}: type`);
  assert.deepEqual(a.dims, b.dims, `${what}: dims`);
  assert.equal(a.data.constructor.name, b.data.constructor.name, `${what}: array`);
  // Bytes, so NaN payloads and -0 count too.
  assert.deepEqual(
    new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength),
    new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength),
    `${what}: data`,
  );
}

function sameAttr(a: AttrValue, b: AttrValue, what: string): void {
  if (Array.isArray(a) && a.length && typeof a[0] === "object") {
    assert.ok(Array.isArray(b) && b.length === a.length, `${what}: tensor list`);
    (a as Tensor[]).forEach((t, i) => sameTensor(t, (b as Tensor[])[i], `${what}[${i}]`));
  } else if (typeof a === "object" && !Array.isArray(a) && !(a instanceof Graph)) {
    sameTensor(a, b as Tensor, what);
  } else if (typeof a === "number" && Number.isNaN(a)) {
    assert.ok(Number.isNaN(b), `${what}: NaN`);
  } else if (typeof a === "number") {
    // FLOAT attributes go through float32: compare as the importer would read them.
    assert.equal(b, Number.isInteger(a) ? a : Math.fround(a), what);
  } else assert.deepEqual(b, a, what);
}

function sameValue(a: Value | undefined, b: Value | undefined, what: string): void {
  assert.ok(a && b, `${what}: missing`);
  assert.equal(b.name, a.name, `${what}: name`);
  assert.equal(b.type, a.type, `${what} '${a.name}': type`);
  // The importer reads a declared dim_value 0 as unknown ("?"), as it does a missing one.
  const want = a.constant ? a.shape : a.shape?.map((d) => (d === 0 ? "?" : d));
  assert.deepEqual(b.shape, want, `${what} '${a.name}': shape`);
  assert.equal(!!b.constant, !!a.constant, `${what} '${a.name}': constant or not`);
  if (a.constant) sameTensor(a.constant, b.constant!, `${what} '${a.name}'`);
}

/** Same nodes (order, names, ops, attrs, wiring), inputs, outputs and constants. */
function assertSameGraph(a: Graph, b: Graph): void {
  for (const [d, v] of a.opsets) assert.equal(b.opsets.get(d), v, `opset of '${d}'`);
  assert.deepEqual(b.inputs.map((v) => v.name), a.inputs.map((v) => v.name), "inputs");
  a.inputs.forEach((v, i) => sameValue(v, b.inputs[i], "input"));
  assert.deepEqual(b.outputs.map((v) => v.name), a.outputs.map((v) => v.name), "outputs");
  a.outputs.forEach((v, i) => sameValue(v, b.outputs[i], "output"));
  assert.equal(b.nodes.length, a.nodes.length, "node count");
  a.nodes.forEach((n, i) => {
    const m = b.nodes[i];
    const what = `node ${i} '${n.name}'`;
    assert.deepEqual([m.name, m.op, m.domain], [n.name, n.op, n.domain], what);
    assert.deepEqual(m.inputs.map((v) => v?.name), n.inputs.map((v) => v?.name), `${what} in`);
    assert.deepEqual(m.outputs.map((v) => v.name), n.outputs.map((v) => v.name), `${what} out`);
    assert.deepEqual(Object.keys(m.attrs).sort(), Object.keys(n.attrs).sort(), `${what} attrs`);
    for (const k of Object.keys(n.attrs)) sameAttr(n.attrs[k], m.attrs[k], `${what}.${k}`);
    n.inputs.forEach((v, k) => v && sameValue(v, m.inputs[k], `${what} input ${k}`));
    // Outputs nothing reads get no value_info, so only their names must match.
    n.outputs.forEach((v, k) =>
      v.consumers.length && sameValue(v, m.outputs[k], `${what} output ${k}`)
    );
  });
}

function roundTrip(bytes: Uint8Array): { a: Graph; b: Graph; exported: Uint8Array } {
  const a = importModel(bytes);
  const exported = exportModel(a);
  const b = importModel(exported);
  assertSameGraph(a, b);
  return { a, b, exported };
}

/** Runs both models on the same feeds in sqz; every output must be bitwise equal. */
async function sameSqzOutputs(
  original: Uint8Array,
  exported: Uint8Array,
  feeds: Tensor[],
  what: string,
): Promise<void> {
  const s1 = await Session.create(original), s2 = await Session.create(exported);
  try {
    assert.deepEqual(s2.inputNames, s1.inputNames, `${what}: input names`);
    assert.deepEqual(s2.outputNames, s1.outputNames, `${what}: output names`);
    const f = Object.fromEntries(s1.inputNames.map((n, i) => [n, feeds[i]]));
    const [o1, o2] = [await s1.run(f), await s2.run(f)];
    for (const n of s1.outputNames) sameTensor(o2[n], o1[n], `${what}: output '${n}'`);
  } finally {
    await s1.release();
    await s2.release();
  }
}

// ---------------------------------------------------------------------------
// onnxruntime-web

const ORT_TYPES = new Set<TensorType>(["float32", "int8", "uint8", "int32", "int64", "bool"]);

type OrtSession = Awaited<ReturnType<typeof ort.InferenceSession.create>>;

async function ortSession(bytes: Uint8Array): Promise<OrtSession> {
  await initOrt();
  return await ort.InferenceSession.create(bytes, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
  });
}

async function ortRun(s: OrtSession, feeds: Record<string, Tensor>): Promise<Tensor[]> {
  const out = await s.run(
    Object.fromEntries(
      Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor(t.type, t.data, t.dims)]),
    ),
  );
  return s.outputNames.map((n) => {
    const t = out[n];
    const r = {
      type: t.type as TensorType,
      dims: [...t.dims],
      data: (t.data as Tensor["data"]).slice(),
    } as Tensor;
    t.dispose();
    return r;
  });
}

/** Largest |a − b| relative to max|b| over float outputs (integers must match exactly). */
function maxRelDiff(a: Tensor, b: Tensor, what: string): number {
  assert.equal(a.type, b.type, `${what}: type`);
  assert.deepEqual(a.dims, b.dims, `${what}: dims`);
  if (a.type !== "float32") {
    assert.deepEqual(a.data, b.data, `${what}: data`);
    return 0;
  }
  const x = a.data as Float32Array, y = b.data as Float32Array;
  let max = 0, diff = 0;
  for (let i = 0; i < y.length; i++) {
    if (Number.isNaN(x[i]) && Number.isNaN(y[i])) continue;
    max = Math.max(max, Math.abs(y[i]));
    diff = Math.max(diff, x[i] === y[i] ? 0 : Math.abs(x[i] - y[i]));
  }
  return diff / (max || 1);
}

// ---------------------------------------------------------------------------
// Hand-built graphs

function constant(g: Graph, name: string, t: Tensor): Value {
  const v = g.value(name);
  v.constant = t;
  v.type = t.type;
  v.shape = [...t.dims];
  return v;
}

/** One constant per dtype (odd 4-bit counts, so the last byte is half used), each an output. */
function allDtypesGraph(): Graph {
  const r = rng(7);
  const g = new Graph();
  g.opsets.set("", 21);
  const ints = (n: number, lo: number, hi: number) =>
    Array.from({ length: n }, () => lo + Math.floor(r() * (hi - lo + 1)));
  const tensors: Tensor[] = [
    { type: "float32", dims: [2, 3], data: Float32Array.of(1.5, -0, NaN, Infinity, -3e-38, 7) },
    { type: "float64", dims: [3], data: Float64Array.of(Math.PI, -1e300, 5e-324) },
    // float16 bit patterns: 1.0, -2.0, +inf, a NaN, the smallest subnormal.
    { type: "float16", dims: [5], data: Uint16Array.of(0x3c00, 0xc000, 0x7c00, 0x7e01, 0x0001) },
    { type: "int8", dims: [4], data: Int8Array.of(-128, -1, 0, 127) },
    { type: "uint8", dims: [2, 2], data: Uint8Array.of(0, 1, 128, 255) },
    { type: "int16", dims: [3], data: Int16Array.of(-32768, 5, 32767) },
    { type: "uint16", dims: [2], data: Uint16Array.of(0, 65535) },
    { type: "int32", dims: [3], data: Int32Array.of(-(2 ** 31), 0, 2 ** 31 - 1) },
    { type: "uint32", dims: [2], data: Uint32Array.of(0, 2 ** 32 - 1) },
    {
      type: "int64",
      dims: [4],
      data: BigInt64Array.of(-(2n ** 63n), -1n, 2n ** 53n + 1n, 2n ** 63n - 1n),
    },
    { type: "uint64", dims: [2], data: BigUint64Array.of(0n, 2n ** 64n - 1n) },
    { type: "bool", dims: [5], data: Uint8Array.of(1, 0, 0, 1, 1) },
    { type: "int4", dims: [3, 5], data: Int8Array.from(ints(15, -8, 7)) },
    { type: "uint4", dims: [7], data: Uint8Array.from(ints(7, 0, 15)) },
    { type: "float32", dims: [], data: Float32Array.of(42) }, // a scalar
    { type: "int64", dims: [0], data: new BigInt64Array(0) }, // empty
  ];
  tensors.forEach((t, i) => {
    const c = constant(g, `c${i}_${t.type}`, t);
    const out = g.value(`y${i}`);
    out.type = t.type;
    out.shape = [...t.dims];
    g.addNode(new Node(`id${i}`, "Identity", "", [c], [out]));
    g.outputs.push(out);
  });
  return g;
}

Deno.test("export: constants of every dtype survive byte for byte", () => {
  const g = allDtypesGraph();
  const bytes = exportModel(g);
  const model = decodeModel(bytes);
  assert.equal(model.irVersion, 10, "int4 needs IR 10");
  const b = importModel(bytes);
  assertSameGraph(g, b);
  // 4-bit packing as ONNX specifies: two per byte, first element in the low nibble, sign in
  // two's complement; an odd count leaves the last high nibble 0.
  const i4 = model.graph!.initializer.find((t) => t.name === "c12_int4")!;
  assert.equal(i4.dataType, DataType.INT4);
  const vals = g.values.get("c12_int4")!.constant!.data as Int8Array;
  const want = new Uint8Array(8);
  vals.forEach((v, i) => (want[i >> 1] |= (v & 0xf) << (4 * (i & 1))));
  assert.deepEqual(i4.rawData, want);
  const u4 = model.graph!.initializer.find((t) => t.name === "c13_uint4")!;
  assert.equal(u4.rawData!.length, 4);
  assert.equal(u4.rawData![3] >> 4, 0, "padding nibble");
  const f16 = model.graph!.initializer.find((t) => t.name === "c2_float16")!;
  assert.equal(f16.dataType, DataType.FLOAT16);
  assert.deepEqual([...f16.rawData!], [0x00, 0x3c, 0x00, 0xc0, 0x00, 0x7c, 0x01, 0x7e, 0x01, 0x00]);
  const bool = model.graph!.initializer.find((t) => t.name === "c11_bool")!;
  assert.equal(bool.dataType, DataType.BOOL);
  assert.deepEqual([...bool.rawData!], [1, 0, 0, 1, 1]);
});

Deno.test("export: the all-dtypes model runs to its constants in sqz", async () => {
  const g = allDtypesGraph();
  const s = await Session.create(exportModel(g));
  try {
    const out = await s.run({});
    g.outputs.forEach((v, i) => {
      const c = g.nodes[i].inputs[0]!.constant!;
      sameTensor(out[v.name], c, v.name);
    });
  } finally {
    await s.release();
  }
});

Deno.test("export: attribute kinds, float attributes with integer values, subgraphs", () => {
  const g = new Graph();
  g.opsets.set("", 13);
  const x = g.value("x");
  x.type = "float32";
  x.shape = ["batch", 4];
  g.inputs.push(x);
  const y = g.value("y");
  const t: Tensor = { type: "int64", dims: [2], data: BigInt64Array.of(3n, -4n) };
  const attrs: Record<string, AttrValue> = {
    i: 3,
    neg: -7,
    big: 2 ** 40,
    alpha: 1, // FLOAT in ONNX although integer-valued
    f: 0.25,
    s: "pads ü",
    ints: [1, -2, 3],
    empty: [],
    floats: [0.5, 1],
    scales: [1, 1, 2, 2], // FLOATS in ONNX
    strings: ["a", "", "ç"],
    t,
    ts: [t, { type: "float32", dims: [1], data: Float32Array.of(2) }],
  };
  g.addNode(new Node("custom", "Custom", "com.example", [x], [y], attrs));
  y.type = "float32";
  y.shape = ["batch", 4];
  g.outputs.push(y);
  const bytes = exportModel(g);
  const m = decodeModel(bytes);
  const kinds = Object.fromEntries(m.graph!.node[0].attribute.map((a) => [a.name, a.type]));
  assert.deepEqual(kinds, {
    i: AttributeType.INT,
    neg: AttributeType.INT,
    big: AttributeType.INT,
    alpha: AttributeType.FLOAT,
    f: AttributeType.FLOAT,
    s: AttributeType.STRING,
    ints: AttributeType.INTS,
    empty: AttributeType.INTS,
    floats: AttributeType.FLOATS,
    scales: AttributeType.FLOATS,
    strings: AttributeType.STRINGS,
    t: AttributeType.TENSOR,
    ts: AttributeType.TENSORS,
  });
  assert.deepEqual(
    m.opsetImport.map((o) => [o.domain, o.version]),
    [["", 13], ["com.example", 1]],
    "a domain used by a node is imported at version 1",
  );
  assert.deepEqual(m.graph!.input[0].type?.tensorType?.shape?.dim, [
    { dimParam: "batch" },
    { dimValue: 4 },
  ]);
  assertSameGraph(g, importModel(bytes));

  // A GRAPH attribute (If's branches): the importer does not keep subgraphs, so check the proto.
  const cond = g.value("cond");
  cond.type = "bool";
  cond.shape = [];
  g.inputs.push(cond);
  const sub = new Graph();
  const sy = sub.value("then_y");
  const seven = constant(sub, "seven", { type: "float32", dims: [1], data: Float32Array.of(7) });
  // The branch reads `y` from the enclosing graph and a constant of its own.
  sub.addNode(new Node("then_add", "Add", "", [sub.value("y"), seven], [sy]));
  sub.outputs.push(sy);
  const z = g.value("z");
  g.addNode(new Node("if", "If", "", [cond], [z], { then_branch: sub, else_branch: sub }));
  g.outputs.push(z);
  const m2 = decodeModel(exportModel(g));
  const ifNode = m2.graph!.node.find((n) => n.opType === "If")!;
  const br = ifNode.attribute.find((a) => a.name === "then_branch")!;
  assert.equal(br.type, AttributeType.GRAPH);
  assert.deepEqual(br.g!.node.map((n) => [n.opType, n.input, n.output]), [
    ["Add", ["y", "seven"], ["then_y"]],
  ]);
  assert.deepEqual(br.g!.initializer.map((t) => t.name), ["seven"]);
  assert.deepEqual(br.g!.output.map((o) => o.name), ["then_y"]);
});

Deno.test("export: metadata, producer, doc string, ai.sqz domain, value_info, omitted outputs", () => {
  const bytes = makeModel({
    nodes: [
      node("Relu", ["x"], ["r"], {}, "relu"),
      node("MaxPool", ["r"], ["p", ""], { kernel_shape: [2, 2], strides: [2, 2] }, "pool"),
      node("Clip", ["p", "", "hi"], ["y"], {}, "clip"),
    ],
    inputs: [valueInfo("x", DataType.FLOAT, ["N", 3, 8, 8])],
    outputs: [valueInfo("y", DataType.FLOAT, ["N", 3, 4, 4])],
    initializers: [tensorFromArray("hi", DataType.FLOAT, [], [6])],
    opset: 17,
  });
  const g = importModel(bytes);
  inferShapes(g);
  // A node in sqz's domain (a made-up op: only the opset import is checked here).
  const w = g.value("w");
  w.type = "float32";
  g.addNode(new Node("packed", "Unpack", "ai.sqz", [g.values.get("hi")!], [w]));
  g.addNode(new Node("wr", "Relu", "", [w], [g.value("w2")]));
  g.topoSort();
  const exported = exportModel(g, {
    metadata: { recipe: "int8", accuracy: "0.98" },
    producerName: "sqz-test",
    docString: "made by a test",
  });
  const m = decodeModel(exported);
  assert.equal(m.producerName, "sqz-test");
  assert.equal(m.docString, "made by a test");
  assert.deepEqual(m.metadataProps, [
    { key: "recipe", value: "int8" },
    { key: "accuracy", value: "0.98" },
  ]);
  assert.deepEqual(m.opsetImport, [{ domain: "", version: 17 }, { domain: "ai.sqz", version: 1 }]);
  assert.equal(m.irVersion, 8);
  // MaxPool's omitted Indices output is omitted again; Clip's omitted min input too.
  const pool = m.graph!.node.find((n) => n.name === "pool")!;
  assert.deepEqual(pool.output, ["p", ""]);
  assert.deepEqual(m.graph!.node.find((n) => n.name === "clip")!.input, ["p", "", "hi"]);
  // Intermediate values carry the inferred shapes, with the symbolic batch dim.
  const vi: Record<string, TypeProtoTensor | undefined> = Object.fromEntries(
    m.graph!.valueInfo.map((v) => [v.name, v.type?.tensorType]),
  );
  assert.deepEqual(vi.r, {
    elemType: DataType.FLOAT,
    shape: { dim: [{ dimParam: "N" }, { dimValue: 3 }, { dimValue: 8 }, { dimValue: 8 }] },
  });
  assert.deepEqual(vi.p?.shape?.dim.map((d) => d.dimValue ?? d.dimParam), ["N", 3, 4, 4]);
  assert.deepEqual(vi.w, { elemType: DataType.FLOAT }, "dtype known, shape not");
  assert.equal(vi.w2, undefined, "nothing reads w2: no value_info");
  assertSameGraph(g, importModel(exported));
});

Deno.test("export: dead constants are dropped, the graph is not modified", () => {
  const g = allDtypesGraph();
  const order = g.nodes.map((n) => n.name);
  // Reverse the node list: export must still write producers first.
  const h = g.nodes[0];
  const mid = g.value("mid");
  mid.type = "float32";
  const y0 = g.outputs[0];
  g.removeNode(h);
  g.addNode(new Node("id0b", "Identity", "", [mid], [y0]));
  g.addNode(new Node("id0", "Identity", "", [h.inputs[0]], [mid]));
  g.nodes.reverse();
  const before = g.nodes.map((n) => n.name);
  const orphan = constant(g, "orphan", { type: "float32", dims: [1], data: Float32Array.of(1) });
  const m = decodeModel(exportModel(g));
  assert.deepEqual(g.nodes.map((n) => n.name), before, "g.nodes untouched");
  const names = m.graph!.node.map((n) => n.name!);
  assert.ok(names.indexOf("id0") < names.indexOf("id0b"), "producer first");
  assert.ok(!m.graph!.initializer.some((t) => t.name === orphan.name), "orphan dropped");
  assert.equal(names.length, order.length + 1);
});

Deno.test("export: bad graphs get typed errors", () => {
  const g = allDtypesGraph();
  const noOpset = allDtypesGraph();
  noOpset.opsets.clear();
  assert.throws(() => exportModel(noOpset), ArgumentError);

  const bad4 = allDtypesGraph();
  (bad4.values.get("c12_int4")!.constant!.data as Int8Array)[3] = 9;
  assert.throws(() => exportModel(bad4), /int4 element 3 is 9/);

  const badBool = allDtypesGraph();
  (badBool.values.get("c11_bool")!.constant!.data as Uint8Array)[0] = 2;
  assert.throws(() => exportModel(badBool), ArgumentError);

  const badArray = allDtypesGraph();
  badArray.values.get("c2_float16")!.constant!.data = new Float32Array(5);
  assert.throws(() => exportModel(badArray), /must be a Uint16Array/);

  const badCount = allDtypesGraph();
  badCount.values.get("c0_float32")!.constant!.dims = [7];
  assert.throws(() => exportModel(badCount), /6 elements but dims \[7\]/);

  const dangling = allDtypesGraph();
  dangling.addNode(
    new Node("lost", "Relu", "", [dangling.value("nowhere")], [dangling.value("q")]),
  );
  assert.throws(() => exportModel(dangling), ModelError);

  const cyclic = new Graph();
  cyclic.opsets.set("", 13);
  const [a, b] = [cyclic.value("a"), cyclic.value("b")];
  cyclic.addNode(new Node("n1", "Relu", "", [b], [a]));
  cyclic.addNode(new Node("n2", "Relu", "", [a], [b]));
  cyclic.outputs.push(b);
  assert.throws(() => exportModel(cyclic), /cycle/);

  assert.throws(() => exportModel(g, { metadata: { k: 3 as unknown as string } }), ArgumentError);
  assert.throws(() => exportModel({} as Graph), ArgumentError);
});

Deno.test("export: a float CNN loads in onnxruntime-web and matches sqz and the original", async () => {
  const r = rng(3);
  const f = (n: number) => Float32Array.from({ length: n }, () => r() * 2 - 1);
  const original = makeModel({
    nodes: [
      node("Conv", ["x", "w1", "b1"], ["c1"], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, "conv"),
      node("BatchNormalization", ["c1", "g", "be", "mu", "var"], ["bn"], { epsilon: 1e-3 }, "bn"),
      // alpha = 1.0 must be written as a FLOAT, or ORT rejects the model.
      node("LeakyRelu", ["bn"], ["lr"], { alpha: { type: AttributeType.FLOAT, f: 1 } }, "lrelu"),
      node("MaxPool", ["lr"], ["mp"], { kernel_shape: [2, 2], strides: [2, 2] }, "pool"),
      node("Flatten", ["mp"], ["fl"], {}, "flatten"),
      node(
        "Gemm",
        ["fl", "w2", "b2"],
        ["y"],
        { transB: 1, alpha: { type: AttributeType.FLOAT, f: 1 }, beta: 0.5 },
        "fc",
      ),
    ],
    inputs: [valueInfo("x", DataType.FLOAT, ["N", 2, 6, 6])],
    outputs: [valueInfo("y", DataType.FLOAT, ["N", 5])],
    initializers: [
      tensorFromArray("w1", DataType.FLOAT, [4, 2, 3, 3], f(72)),
      tensorFromArray("b1", DataType.FLOAT, [4], f(4)),
      tensorFromArray("g", DataType.FLOAT, [4], f(4)),
      tensorFromArray("be", DataType.FLOAT, [4], f(4)),
      tensorFromArray("mu", DataType.FLOAT, [4], f(4)),
      tensorFromArray("var", DataType.FLOAT, [4], Float32Array.from(f(4), (v) => v + 1.5)),
      tensorFromArray("w2", DataType.FLOAT, [5, 36], f(180)),
      tensorFromArray("b2", DataType.FLOAT, [5], f(5)),
    ],
    opset: 13,
  });
  const g = importModel(original);
  inferShapes(g); // so value_info is written and ORT sees it
  const exported = exportModel(g);
  assertSameGraph(g, importModel(exported));
  const x: Tensor = { type: "float32", dims: [3, 2, 6, 6], data: f(216) };
  await sameSqzOutputs(original, exported, [x], "cnn");
  const [o1, o2] = [await ortSession(original), await ortSession(exported)];
  try {
    const [a] = await ortRun(o1, { x });
    const [b] = await ortRun(o2, { x });
    sameTensor(b, a, "ort: exported vs original");
    const s = await Session.create(exported);
    const ours = (await s.run({ x })).y;
    await s.release();
    const d = maxRelDiff(ours, a, "sqz vs ort");
    assert.ok(d < 1e-5, `sqz vs ort: ${d}`);
  } finally {
    await o1.release();
    await o2.release();
  }
});

// ---------------------------------------------------------------------------
// ONNX's light models and node tests

const dir = conformanceDir();
if (!dir) {
  console.warn(
    "onnx export: conformance tests skipped: ../shared/conformance not found " +
      "(set SQZ_CONFORMANCE_DIR)",
  );
}

const LIGHT = ["light_squeezenet", "light_resnet50", "light_shufflenet", "light_inception_v1"];

for (const name of LIGHT) {
  Deno.test({
    name: `export: ${name} round-trips and runs to the same outputs (sqz, onnxruntime-web)`,
    ignore: !dir,
    async fn() {
      const original = Deno.readFileSync(`${dir}/onnx-models/${name}.onnx`);
      const { exported } = roundTrip(original);
      // With inferred shapes as value_info, which onnxruntime checks against its own.
      const shaped = importModel(original);
      inferShapes(shaped);
      const withInfo = exportModel(shaped);
      assertSameGraph(shaped, importModel(withInfo));
      const meta = importModel(original).inputs[0];
      const dims = meta.shape!.map((d) => (typeof d === "number" ? d : 1));
      const n = dims.reduce((a, b) => a * b, 1);
      const x: Tensor = {
        type: "float32",
        dims,
        data: Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37)),
      };
      await sameSqzOutputs(original, exported, [x], name);
      const ref = await ortSession(original);
      try {
        const [want] = await ortRun(ref, { [meta.name]: x });
        for (const bytes of [exported, withInfo]) {
          const s = await ortSession(bytes);
          const [got] = await ortRun(s, { [meta.name]: x });
          await s.release();
          // The exported initializers are no longer overridable graph inputs (IR 3 → 4), so
          // ORT may fold and fuse more: equal up to summation order.
          const d = maxRelDiff(got, want, `${name} in ORT`);
          assert.ok(d <= 1e-5, `${name}: exported vs original in ORT: ${d}`);
        }
      } finally {
        await ref.release();
      }
    },
  });
}

/**
 * A sample of the node tests: every 4-bit, bool and int64 family, the quantized ops, ops with
 * FLOAT attributes, multi-output and optional-input ops, and large "_expanded" graphs (whose
 * Constant nodes become initializers).
 */
const SAMPLE = [
  // int4 / uint4
  "test_cast_FLOAT_to_INT4",
  "test_cast_FLOAT_to_UINT4",
  "test_cast_INT4_to_FLOAT",
  "test_cast_INT4_to_INT8",
  "test_cast_UINT4_to_FLOAT",
  "test_cast_UINT4_to_UINT8",
  "test_castlike_FLOAT_to_INT4_expanded",
  "test_castlike_UINT4_to_UINT8_expanded",
  "test_dequantizelinear_int4",
  "test_dequantizelinear_uint4",
  "test_quantizelinear_int4",
  "test_quantizelinear_uint4",
  // bool
  "test_dropout_default_mask",
  "test_dropout_default_mask_ratio",
  "test_where_example",
  "test_where_long_example",
  "test_equal",
  "test_equal_int8",
  "test_reduce_max_bool_inputs",
  // int64 and other integer types
  "test_max_int64",
  "test_pow_types_int64_int64",
  "test_pow_types_float32_int64",
  "test_constantofshape_int_zeros",
  "test_constantofshape_float_ones",
  "test_range_int32_type_negative_delta",
  "test_div_int32_trunc",
  "test_add_uint8",
  "test_gather_negative_indices",
  "test_shape_start_1_end_negative_1",
  "test_reshape_zero_and_negative_dim",
  "test_slice_neg_steps",
  "test_split_zero_size_splits_opset18",
  "test_tile",
  // quantized ops
  "test_qlinearconv",
  "test_qlinearmatmul_3D_int8_float32",
  "test_convinteger_with_padding",
  "test_matmulinteger",
  "test_dequantizelinear_blocked",
  "test_dynamicquantizelinear",
  // FLOAT attributes
  "test_gemm_all_attributes",
  "test_elu",
  "test_leakyrelu",
  "test_selu",
  "test_hardsigmoid",
  "test_batchnorm_epsilon",
  "test_lrn",
  "test_clip_default_int8_min",
  "test_clip_splitbounds",
  "test_instancenorm_epsilon",
  "test_layer_normalization_3d_axis1_epsilon",
  "test_gelu_tanh_1",
  "test_dropout_default_old",
  // conv, pooling, layout attributes, multiple outputs
  "test_conv_with_strides_and_asymmetric_padding",
  "test_conv_with_autopad_same",
  "test_maxpool_2d_ceil",
  "test_averagepool_2d_pads_count_include_pad",
  "test_maxpool_with_argmax_2d_precomputed_pads",
  "test_transpose_all_permutations_3",
  "test_depthtospace_crd_mode_example",
  "test_constant_pad_axes",
  // large graphs with Constant nodes
  "test_center_crop_pad_crop_and_pad_expanded",
  "test_softmax_axis_1_expanded_ver18",
  "test_rotary_embedding_expanded",
  "test_flexattention_gqa_expanded_ver26",
  "test_mvn_expanded",
  "test_group_normalization_example_expanded",
];

function caseInputs(name: string): Tensor[] {
  const root = `${dir}/onnx-node/${name}/test_data_set_0`;
  return [...Deno.readDirSync(root)].map((e) => e.name).filter((f) => f.startsWith("input_"))
    .sort((a, b) => Number(a.match(/\d+/)![0]) - Number(b.match(/\d+/)![0]))
    .map((f) => protoTensor(decodeTensor(Deno.readFileSync(`${root}/${f}`))));
}

/** The case's model with every graph input replaced by an initializer holding data set 0. */
function constified(bytes: Uint8Array, inputs: Tensor[]): Uint8Array {
  const m = decodeModel(bytes);
  const g = m.graph!;
  const inits = new Set(g.initializer.map((t) => t.name));
  const feeds = g.input.filter((v) => !inits.has(v.name));
  const root = g.input.filter((v) => inits.has(v.name));
  feeds.forEach((v, i) => {
    const t = inputs[i];
    // Tensor dtype names match DATA_TYPE's keys: reuse the decoded proto's code.
    const code = v.type?.tensorType?.elemType ?? 0;
    g.initializer.push(tensorFromArray(v.name!, code, t.dims, t.data));
  });
  g.input = root;
  return encodeModel(m);
}

async function checkOrt(
  name: string,
  original: Uint8Array,
  exported: Uint8Array,
  feeds: Tensor[],
): Promise<"ok" | "skipped"> {
  const g = importModel(original);
  const types = [...g.inputs, ...g.outputs].map((v) => v.type!);
  if (!types.every((t) => ORT_TYPES.has(t))) return "skipped";
  let ref: OrtSession;
  try {
    ref = await ortSession(original);
  } catch {
    return "skipped"; // an op or opset this onnxruntime-web does not have
  }
  try {
    // Whatever ORT accepts as written by the ONNX project, it must accept as written by sqz.
    const s = await ortSession(exported);
    try {
      const f = Object.fromEntries(ref.inputNames.map((n, i) => [n, feeds[i]]));
      let want: Tensor[];
      try {
        want = await ortRun(ref, f);
      } catch {
        return "skipped";
      }
      const got = await ortRun(s, f);
      want.forEach((w, i) => {
        const d = maxRelDiff(got[i], w, `${name} output ${i} in ORT`);
        assert.ok(d <= 1e-6, `${name} output ${i}: exported vs original in ORT: ${d}`);
      });
    } finally {
      await s.release();
    }
  } finally {
    await ref.release();
  }
  return "ok";
}

Deno.test({
  name: "export: a sample of ONNX node tests round-trip and run to the same outputs",
  ignore: !dir,
  async fn() {
    let ortChecked = 0, ortSkipped = 0, cases = 0;
    for (const name of SAMPLE) {
      const path = `${dir}/onnx-node/${name}/model.onnx`;
      let original: Uint8Array;
      try {
        original = Deno.readFileSync(path);
      } catch {
        console.warn(`onnx export: node test ${name} not found, skipped`);
        continue;
      }
      const inputs = caseInputs(name);
      for (
        const [variant, bytes, feeds] of [
          ["as is", original, inputs],
          ["inputs as initializers", constified(original, inputs), []],
        ] as const
      ) {
        const what = `${name} (${variant})`;
        const { exported } = roundTrip(bytes);
        await sameSqzOutputs(bytes, exported, [...feeds], what);
        if ((await checkOrt(what, bytes, exported, [...feeds])) === "ok") ortChecked++;
        else ortSkipped++;
        cases++;
      }
    }
    console.log(
      `onnx export: ${cases} node-test models round-tripped with identical sqz outputs; ` +
        `onnxruntime-web agreed on ${ortChecked} (${ortSkipped} use types or ops it lacks)`,
    );
    assert.ok(cases >= 120, `only ${cases} models checked`);
  },
});
