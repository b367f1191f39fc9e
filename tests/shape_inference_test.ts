import assert from "node:assert/strict";
import { importModel } from "../src/onnx/import.ts";
import { broadcast, inferShapes } from "../src/graph/shape_inference.ts";
import { DataType, makeModel, node, tensorFromArray, valueInfo } from "../src/onnx/proto.ts";
import { ModelError, ShapeError } from "../src/errors.ts";
import { conformanceDir } from "./conformance.ts";

Deno.test("broadcasting with symbolic dims", () => {
  assert.deepEqual(broadcast(["batch", 3, 1], [4], "n"), ["batch", 3, 4]);
  assert.deepEqual(broadcast([1, 5], ["b", 1], "n"), ["b", 5]);
  assert.throws(() => broadcast([2, 3], [4, 3], "n"), ShapeError);
});

Deno.test("a LeNet-like graph infers shapes, keeping the symbolic batch", () => {
  const f = (name: string, dims: number[]) =>
    tensorFromArray(name, DataType.FLOAT, dims, new Float32Array(dims.reduce((a, b) => a * b, 1)));
  const g = importModel(makeModel({
    nodes: [
      node("Conv", ["x", "w1", "b1"], ["c1"], { kernel_shape: [5, 5], pads: [2, 2, 2, 2] }),
      node("Relu", ["c1"], ["r1"]),
      node("MaxPool", ["r1"], ["p1"], { kernel_shape: [2, 2], strides: [2, 2] }),
      node("Conv", ["p1", "w2"], ["c2"], { kernel_shape: [5, 5] }),
      node("MaxPool", ["c2"], ["p2"], { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 }),
      node("Flatten", ["p2"], ["fl"]),
      node("Gemm", ["fl", "w3"], ["y"], { transB: 1 }),
      node("Softmax", ["y"], ["prob"]),
    ],
    inputs: [valueInfo("x", DataType.FLOAT, ["N", 1, 28, 28])],
    outputs: [valueInfo("prob", DataType.FLOAT, ["N", 10])],
    initializers: [
      f("w1", [6, 1, 5, 5]),
      f("b1", [6]),
      f("w2", [16, 6, 5, 5]),
      f("w3", [10, 16 * 5 * 5]),
    ],
  }));
  inferShapes(g);
  const shape = (n: string) => g.values.get(n)!.shape;
  assert.deepEqual(shape("c1"), ["N", 6, 28, 28]);
  assert.deepEqual(shape("p1"), ["N", 6, 14, 14]);
  assert.deepEqual(shape("c2"), ["N", 16, 10, 10]);
  assert.deepEqual(shape("p2"), ["N", 16, 5, 5]);
  assert.deepEqual(shape("fl"), ["N", 400]);
  assert.deepEqual(shape("prob"), ["N", 10]);
  assert.equal(g.values.get("prob")!.type, "float32");
});

Deno.test("a declared shape that contradicts the computed one is a ModelError", () => {
  const g = importModel(makeModel({
    nodes: [node("MaxPool", ["x"], ["y"], { kernel_shape: [2, 2], strides: [2, 2] })],
    inputs: [valueInfo("x", DataType.FLOAT, [1, 3, 8, 8])],
    outputs: [valueInfo("y", DataType.FLOAT, [1, 3, 5, 5])],
  }));
  assert.throws(() => inferShapes(g), ModelError);
});

Deno.test("the light ONNX models infer every shape down to their 1000-class outputs", () => {
  const dir = conformanceDir();
  if (!dir) {
    console.log("SKIPPED: ONNX conformance data not found");
    return;
  }
  for (
    const f of [...Deno.readDirSync(`${dir}/onnx-models`)].filter((e) => e.name.endsWith(".onnx"))
  ) {
    const g = importModel(Deno.readFileSync(`${dir}/onnx-models/${f.name}`));
    inferShapes(g);
    const missing = g.nodes.filter((n) => n.outputs.some((v) => !v.shape || v.shape.includes("?")));
    assert.deepEqual(missing.map((n) => `${n.op} ${n.name}`), [], f.name);
    assert.equal(g.outputs[0].shape!.at(-1 - (g.outputs[0].shape!.length === 4 ? 2 : 0)), 1000);
  }
});
