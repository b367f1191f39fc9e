import assert from "node:assert/strict";
import { importModel } from "../src/onnx/import.ts";
import { foldConstants } from "../src/graph/fold.ts";
import { simplify } from "../src/graph/passes.ts";
import { inferShapes } from "../src/graph/shape_inference.ts";
import { DataType, makeModel, node, tensorFromArray, valueInfo } from "../src/onnx/proto.ts";
import { conformanceDir } from "./conformance.ts";

Deno.test("PyTorch's Shape → Gather → Unsqueeze → Concat → Reshape flatten folds to a constant", () => {
  const g = importModel(makeModel({
    nodes: [
      node("Shape", ["x"], ["s"]),
      node("Gather", ["s", "zero"], ["n"], { axis: 0 }),
      node("Unsqueeze", ["n", "axes"], ["n1"]),
      node("Concat", ["n1", "minus1"], ["target"], { axis: 0 }),
      node("Reshape", ["x", "target"], ["y"]),
    ],
    inputs: [valueInfo("x", DataType.FLOAT, [2, 3, 4, 5])],
    outputs: [valueInfo("y", DataType.FLOAT, [2, 60])],
    initializers: [
      tensorFromArray("zero", DataType.INT64, [], BigInt64Array.of(0n)),
      tensorFromArray("axes", DataType.INT64, [1], BigInt64Array.of(0n)),
      tensorFromArray("minus1", DataType.INT64, [1], BigInt64Array.of(-1n)),
    ],
    opset: 13,
  }));
  inferShapes(g);
  assert.equal(foldConstants(g), 4);
  assert.deepEqual(g.nodes.map((n) => n.op), ["Reshape"]);
  assert.deepEqual(Array.from(g.values.get("target")!.constant!.data as BigInt64Array), [2n, -1n]);
  inferShapes(g);
  assert.deepEqual(g.outputs[0].shape, [2, 60]);
});

Deno.test("ConstantOfShape, Cast and arithmetic on constants fold with the right values", () => {
  const g = importModel(makeModel({
    nodes: [
      node("ConstantOfShape", ["shape"], ["c"], {
        value: tensorFromArray("v", DataType.FLOAT, [1], Float32Array.of(0.5)),
      }),
      node("Mul", ["c", "two"], ["d"]),
      node("Cast", ["d"], ["e"], { to: DataType.INT32 }),
      node("Add", ["x", "d"], ["y"]),
    ],
    inputs: [valueInfo("x", DataType.FLOAT, [2, 3])],
    outputs: [valueInfo("y", DataType.FLOAT, [2, 3]), valueInfo("e", DataType.INT32, [2, 3])],
    initializers: [
      tensorFromArray("shape", DataType.INT64, [2], BigInt64Array.of(2n, 3n)),
      tensorFromArray("two", DataType.FLOAT, [3], Float32Array.of(2, 4, 6)),
    ],
  }));
  assert.equal(foldConstants(g), 3);
  assert.deepEqual(Array.from(g.values.get("d")!.constant!.data as Float32Array), [
    1,
    2,
    3,
    1,
    2,
    3,
  ]);
  assert.equal(g.values.get("e")!.constant!.type, "int32");
  assert.deepEqual(g.nodes.map((n) => n.op), ["Add"]);
});

Deno.test("light models: weights fold, BatchNorm folds into Conv, activations fuse", () => {
  const dir = conformanceDir();
  if (!dir) {
    console.log("SKIPPED: ONNX conformance data not found");
    return;
  }
  const g = importModel(Deno.readFileSync(`${dir}/onnx-models/light_resnet50.onnx`));
  inferShapes(g);
  assert.equal(foldConstants(g), 239);
  const counts = simplify(g);
  inferShapes(g);
  assert.equal(counts.batchnorm, 53);
  const ops = g.nodes.map((n) => n.op);
  assert.ok(!ops.includes("BatchNormalization") && !ops.includes("ConstantOfShape"));
  assert.equal(ops.filter((o) => o === "Conv").length, 53);
  assert.deepEqual(g.outputs[0].shape, [1, 1000]);
});

Deno.test("constant Casts through float16 fold with the engine's own Cast", () => {
  const g = importModel(makeModel({
    nodes: [
      node("Cast", ["c"], ["h"], { to: DataType.FLOAT16 }),
      node("Cast", ["h"], ["y"], { to: DataType.FLOAT }),
    ],
    inputs: [],
    outputs: [valueInfo("y", DataType.FLOAT, [2])],
    initializers: [tensorFromArray("c", DataType.FLOAT, [2], Float32Array.of(1, 2))],
  }));
  assert.equal(foldConstants(g), 2);
  assert.equal(g.nodes.length, 0);
  assert.deepEqual(Array.from(g.values.get("h")!.constant!.data as Uint16Array), [0x3c00, 0x4000]);
  assert.deepEqual(Array.from(g.values.get("y")!.constant!.data as Float32Array), [1, 2]);
});
