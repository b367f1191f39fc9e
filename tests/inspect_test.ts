import assert from "node:assert/strict";
import { inspectModel } from "../src/mod.ts";
import { DataType, makeModel, node, tensorFromArray, valueInfo } from "../src/onnx/proto.ts";
import { conformanceDir } from "./conformance.ts";

Deno.test("inspect counts parameters and MACs per layer, symbolic batch taken as 1", () => {
  const f = (name: string, dims: number[]) =>
    tensorFromArray(name, DataType.FLOAT, dims, new Float32Array(dims.reduce((a, b) => a * b, 1)));
  const r = inspectModel(makeModel({
    nodes: [
      node(
        "Conv",
        ["x", "w1", "b1"],
        ["c1"],
        { kernel_shape: [3, 3], pads: [1, 1, 1, 1] },
        "conv1",
      ),
      node("Relu", ["c1"], ["r1"]),
      node("Flatten", ["r1"], ["fl"]),
      node("Gemm", ["fl", "w2"], ["y"], { transB: 1 }, "fc"),
    ],
    inputs: [valueInfo("x", DataType.FLOAT, ["N", 3, 8, 8])],
    outputs: [valueInfo("y", DataType.FLOAT, ["N", 10])],
    initializers: [f("w1", [4, 3, 3, 3]), f("b1", [4]), f("w2", [10, 4 * 8 * 8])],
  }));
  assert.deepEqual(r.inputs[0].dims, ["N", 3, 8, 8]);
  assert.equal(r.parameters, 4 * 27 + 4 + 10 * 256);
  assert.equal(r.parameterBytes, 4 * r.parameters);
  assert.deepEqual(r.layers.map((l) => [l.name, l.macs]), [["conv1", 8 * 8 * 4 * 27], [
    "fc",
    10 * 256,
  ]]);
  assert.deepEqual(r.ops, { Conv: 1, Relu: 1, Flatten: 1, Gemm: 1 });
});

Deno.test("inspect light ResNet-50: 25.6 M parameters, 4.1 GMACs", () => {
  const dir = conformanceDir();
  if (!dir) {
    console.log("SKIPPED: ONNX conformance data not found");
    return;
  }
  const r = inspectModel(Deno.readFileSync(`${dir}/onnx-models/light_resnet50.onnx`));
  assert.ok(Math.abs(r.parameters - 25.6e6) < 0.1e6, `${r.parameters}`);
  assert.ok(Math.abs(r.macs - 4.09e9) < 0.05e9, `${r.macs}`);
  assert.equal(r.layers.length, 54);
});

Deno.test("sqz inspect: a missing file or garbage bytes is a one-line error, exit 1", async () => {
  for (const arg of ["/nonexistent/model.onnx", import.meta.filename!]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../src/cli/main.ts", import.meta.url).pathname, "inspect", arg],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(out.stderr).trim();
    assert.equal(out.code, 1, err);
    assert.match(err, /^sqz: /);
    assert.ok(!err.includes("    at "), "no stack trace");
  }
});
