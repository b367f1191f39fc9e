// Session: the onnxruntime-web-shaped API, feed validation, arena planning and profiling.
import assert from "node:assert/strict";
import { ArgumentError, ModelError, Session, ShapeError, UnsupportedError } from "../src/mod.ts";
import { DataType, makeModel, node, tensorFromArray, valueInfo } from "../src/onnx/proto.ts";
import { conformanceDir } from "./conformance.ts";
import { rng } from "./util.ts";

/** x [N, 8] → Gemm(8→16) → Relu → Gemm(16→4): a symbolic batch, two kernel GEMMs, one fused. */
function mlp(seed = 1) {
  const r = rng(seed);
  const w = (n: number) => Float32Array.from({ length: n }, () => r() - 0.5);
  const w1 = w(16 * 8), b1 = w(16), w2 = w(4 * 16), b2 = w(4);
  const bytes = makeModel({
    nodes: [
      node("Gemm", ["x", "w1", "b1"], ["h"], { transB: 1 }),
      node("Relu", ["h"], ["a"]),
      node("Gemm", ["a", "w2", "b2"], ["y"], { transB: 1 }),
    ],
    inputs: [valueInfo("x", DataType.FLOAT, ["N", 8])],
    outputs: [valueInfo("y", DataType.FLOAT, ["N", 4])],
    initializers: [
      tensorFromArray("w1", DataType.FLOAT, [16, 8], w1),
      tensorFromArray("b1", DataType.FLOAT, [16], b1),
      tensorFromArray("w2", DataType.FLOAT, [4, 16], w2),
      tensorFromArray("b2", DataType.FLOAT, [4], b2),
    ],
    opset: 13,
  });
  const reference = (x: Float32Array, n: number) => {
    const y = new Float32Array(n * 4);
    for (let i = 0; i < n; i++) {
      const h = Array.from({ length: 16 }, (_, j) => {
        let s = b1[j];
        for (let k = 0; k < 8; k++) s += x[i * 8 + k] * w1[j * 8 + k];
        return Math.max(s, 0);
      });
      for (let j = 0; j < 4; j++) {
        let s = b2[j];
        for (let k = 0; k < 16; k++) s += h[k] * w2[j * 16 + k];
        y[i * 4 + j] = s;
      }
    }
    return y;
  };
  return { bytes, reference };
}

Deno.test("Session mirrors onnxruntime-web: names, metadata, run with a symbolic batch", async () => {
  const { bytes, reference } = mlp();
  const s = await Session.create(bytes);
  assert.deepEqual(s.inputNames, ["x"]);
  assert.deepEqual(s.outputNames, ["y"]);
  assert.deepEqual(s.inputMetadata[0], { name: "x", type: "float32", dims: ["N", 8] });
  const r = rng(7);
  for (const n of [1, 3, 3, 5]) {
    const x = Float32Array.from({ length: n * 8 }, () => r() * 2 - 1);
    const { y } = await s.run({ x: { type: "float32", dims: [n, 8], data: x } });
    assert.deepEqual(y.dims, [n, 4]);
    const want = reference(x, n);
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(y.data[i] as number - want[i]) < 1e-5);
  }
  await s.release();
  await assert.rejects(() => s.run({}), ArgumentError);
});

Deno.test("Session rejects bad feeds with typed errors before running", async () => {
  const s = await Session.create(mlp().bytes);
  const ok = { type: "float32" as const, dims: [2, 8], data: new Float32Array(16) };
  await assert.rejects(() => s.run({}), ArgumentError);
  await assert.rejects(() => s.run({ x: ok, z: ok }), ArgumentError);
  await assert.rejects(
    () => s.run({ x: { ...ok, type: "int32", data: new Int32Array(16) } }),
    ShapeError,
  );
  await assert.rejects(() => s.run({ x: { ...ok, dims: [2, 7] } }), ShapeError);
  await assert.rejects(() => s.run({ x: { ...ok, dims: [16] } }), ShapeError);
  await assert.rejects(() => s.run({ x: { ...ok, dims: [3, 8] } }), ShapeError);
  await assert.rejects(
    () => s.run({ x: { ...ok, data: new Float64Array(16) as never } }),
    ArgumentError,
  );
  await assert.rejects(() => s.run({ x: ok }, { outputs: ["nope"] }), ArgumentError);
  await s.release();
});

Deno.test("Session.create: garbage bytes, a missing file and an unknown op are ModelErrors", async () => {
  await assert.rejects(() => Session.create(new Uint8Array([1, 2, 3, 4])), Error);
  await assert.rejects(() => Session.create("/nonexistent/model.onnx"), ModelError);
  const bad = makeModel({
    nodes: [node("FancyOp", ["x"], ["y"], {}, "fancy")],
    inputs: [valueInfo("x", DataType.FLOAT, [1])],
    outputs: [valueInfo("y", DataType.FLOAT, [1])],
    opset: 13,
  });
  await assert.rejects(() => Session.create(bad), (e: Error) => {
    assert.ok(e instanceof ModelError);
    assert.match(e.message, /FancyOp \(node 'fancy'\)/);
    return true;
  });
});

Deno.test("profiling reports every node with its implementation and MACs", async () => {
  const s = await Session.create(mlp().bytes, { profile: true });
  await s.run({ x: { type: "float32", dims: [2, 8], data: new Float32Array(16).fill(0.5) } });
  assert.deepEqual(s.profile.map((p) => [p.op, p.impl]), [["Gemm", "wasm"], ["Gemm", "wasm"]]);
  assert.deepEqual(s.profile.map((p) => p.macs), [2 * 16 * 8, 2 * 4 * 16]);
  assert.ok(s.profile.every((p) => p.ms >= 0));
  await s.release();
});

Deno.test("memory.weights: packed weights are resident once, not also as graph constants", async () => {
  const m = mlp();
  const s = await Session.create(m.bytes);
  const f32Bytes = (8 * 16 + 16 + 16 * 4 + 4) * 4;
  const w = s.memory;
  // Packing pads panels and K, so a little more than f32; never the graph's copy on top.
  assert.ok(w.weights >= f32Bytes && w.weights < 2 * f32Bytes, `${w.weights} vs ${f32Bytes}`);
  assert.equal(w.weights, w.weightBytes, "no constant is kept in JavaScript");
  await s.release();
  await assert.rejects(
    // deno-lint-ignore no-explicit-any
    () => Session.create(m.bytes, { int4: "fast" as any }),
    (e: Error) => e instanceof ArgumentError && /int4/.test(e.message),
  );
});

Deno.test({
  name: "light ResNet-50: the planned arena is within 1.3x of the largest live set, runs agree",
  ignore: !conformanceDir(),
  async fn() {
    const s = await Session.create(`${conformanceDir()}/onnx-models/light_resnet50.onnx`);
    const dims = [1, 3, 224, 224];
    const n = dims.reduce((a, b) => a * b);
    const x = Float32Array.from({ length: n }, (_, i) => i / n);
    const feeds = { [s.inputNames[0]]: { type: "float32" as const, dims, data: x } };
    const first = await s.run(feeds); // traces sizes, then plans
    const second = await s.run(feeds); // runs in the arena
    const a = first[s.outputNames[0]].data as Float32Array;
    const b = second[s.outputNames[0]].data as Float32Array;
    assert.deepEqual(Array.from(b), Array.from(a));
    const m = s.memory;
    console.log(
      `arena ${(m.arenaBytes / 2 ** 20).toFixed(1)} MiB, live bound ` +
        `${(m.liveLowerBound / 2 ** 20).toFixed(1)} MiB, weights ${
          (m.weightBytes / 2 ** 20).toFixed(1)
        } MiB`,
    );
    assert.ok(m.arenaBytes > 0 && m.arenaBytes <= 1.3 * m.liveLowerBound);
    assert.ok(m.arenaBytes + m.weightBytes <= 1.3 * (m.weightBytes + m.liveLowerBound));
    await s.release();
  },
});

Deno.test("a model whose input is a STRING tensor is refused at load, not mistyped", async () => {
  const bytes = makeModel({
    nodes: [node("Identity", ["s"], ["y"])],
    inputs: [valueInfo("s", 8, /* STRING */ [1])],
    outputs: [valueInfo("y", 8, [1])],
    opset: 13,
  });
  await assert.rejects(() => Session.create(bytes), (e: Error) => {
    assert.ok(e instanceof UnsupportedError);
    assert.match(e.message, /STRING/);
    return true;
  });
});
