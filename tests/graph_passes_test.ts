import assert from "node:assert/strict";
import { importModel } from "../src/onnx/import.ts";
import { fuseActivations, simplify } from "../src/graph/passes.ts";
import { inferShapes } from "../src/graph/shape_inference.ts";
import { DataType, makeModel, node, tensorFromArray, valueInfo } from "../src/onnx/proto.ts";
import { refConv2dF32 } from "../src/kernels/reference_conv.ts";
import { windowGeometry } from "../src/kernels/conv_geometry.ts";
import { conformanceDir } from "./conformance.ts";
import { rng } from "./util.ts";

const F = DataType.FLOAT;

Deno.test("Identity and inference Dropout disappear; graph output names survive", () => {
  const g = importModel(makeModel({
    nodes: [
      node("Relu", ["x"], ["a"]),
      node("Identity", ["a"], ["b"]),
      node("Dropout", ["b"], ["y"]),
    ],
    inputs: [valueInfo("x", F, [2, 3])],
    outputs: [valueInfo("y", F, [2, 3])],
  }));
  const counts = simplify(g);
  assert.equal(counts.identities, 2);
  assert.deepEqual(g.nodes.map((n) => n.op), ["Relu"]);
  assert.equal(g.nodes[0].outputs[0].name, "y");
  assert.equal(g.outputs[0].name, "y");
});

Deno.test("BatchNormalization folds into Conv exactly (to rounding) and Relu fuses", () => {
  const r = rng(5);
  const [cin, cout, k, h, w] = [3, 4, 3, 6, 5];
  const wt = Float32Array.from({ length: cout * cin * k * k }, () => r() - 0.5);
  const bias = Float32Array.from({ length: cout }, () => r());
  const gamma = Float32Array.from({ length: cout }, () => 0.5 + r());
  const beta = Float32Array.from({ length: cout }, () => r() - 0.5);
  const mean = Float32Array.from({ length: cout }, () => r() - 0.5);
  const variance = Float32Array.from({ length: cout }, () => 0.1 + r());
  const g = importModel(makeModel({
    nodes: [
      node("Conv", ["x", "W", "B"], ["c"], { kernel_shape: [k, k], pads: [1, 1, 1, 1] }),
      node("BatchNormalization", ["c", "g", "be", "m", "v"], ["bn"], { epsilon: 1e-3 }),
      node("Relu", ["bn"], ["y"]),
    ],
    inputs: [valueInfo("x", F, [1, cin, h, w])],
    outputs: [valueInfo("y", F, [1, cout, h, w])],
    initializers: [
      tensorFromArray("W", F, [cout, cin, k, k], wt),
      tensorFromArray("B", F, [cout], bias),
      tensorFromArray("g", F, [cout], gamma),
      tensorFromArray("be", F, [cout], beta),
      tensorFromArray("m", F, [cout], mean),
      tensorFromArray("v", F, [cout], variance),
    ],
  }));
  const counts = simplify(g);
  assert.deepEqual([counts.batchnorm, counts.activations], [1, 1]);
  assert.equal(g.nodes.length, 1);
  const conv = g.nodes[0];
  assert.equal(conv.outputs[0].name, "y");
  assert.equal(conv.attrs.activation_min, 0);
  // Compare the folded convolution with Conv then BN then Relu on a random NHWC input.
  const x = Float32Array.from({ length: h * w * cin }, () => r() * 2 - 1);
  const shape = {
    n: 1,
    c: cin,
    cout,
    groups: 1,
    g: windowGeometry(h, w, { kernel: [k, k], pads: [1, 1, 1, 1] }),
  };
  const before = refConv2dF32(shape, x, wt, bias).map((v, i) => {
    const c = i % cout;
    return Math.max(0, (v - mean[c]) * gamma[c] / Math.sqrt(variance[c] + 1e-3) + beta[c]);
  });
  const after = refConv2dF32(
    shape,
    x,
    conv.inputs[1]!.constant!.data as Float32Array,
    conv.inputs[2]!.constant!.data as Float32Array,
    0,
  );
  for (let i = 0; i < before.length; i++) assert.ok(Math.abs(before[i] - after[i]) < 1e-5, `${i}`);
});

Deno.test("Clip with constant bounds fuses as a clamp; a shared Conv output does not fuse", () => {
  const g = importModel(makeModel({
    nodes: [
      node("Conv", ["x", "W"], ["c"], { kernel_shape: [1, 1] }),
      node("Clip", ["c", "lo", "hi"], ["y"]),
      node("Conv", ["x", "W"], ["d"], { kernel_shape: [1, 1] }, "shared"),
      node("Relu", ["d"], ["z"]),
      node("Sigmoid", ["d"], ["s"]),
    ],
    inputs: [valueInfo("x", F, [1, 2, 3, 3])],
    outputs: [
      valueInfo("y", F, [1, 2, 3, 3]),
      valueInfo("z", F, [1, 2, 3, 3]),
      valueInfo("s", F, [1, 2, 3, 3]),
    ],
    initializers: [
      tensorFromArray("W", F, [2, 2, 1, 1], new Float32Array(4).fill(1)),
      tensorFromArray("lo", F, [], [0]),
      tensorFromArray("hi", F, [], [6]),
    ],
  }));
  assert.equal(fuseActivations(g), 1);
  const conv = g.nodes.find((n) => n.outputs[0].name === "y")!;
  assert.deepEqual([conv.attrs.activation_min, conv.attrs.activation_max], [0, 6]);
  assert.ok(g.nodes.some((n) => n.op === "Relu"));
});

Deno.test("light ResNet-50 and SqueezeNet simplify and still infer every shape", () => {
  const dir = conformanceDir();
  if (!dir) {
    console.log("SKIPPED: ONNX conformance data not found");
    return;
  }
  for (const name of ["light_resnet50.onnx", "light_squeezenet.onnx"]) {
    const g = importModel(Deno.readFileSync(`${dir}/onnx-models/${name}`));
    const outputs = g.outputs.map((v) => v.name);
    const counts = simplify(g);
    inferShapes(g);
    assert.deepEqual(g.outputs.map((v) => v.name), outputs);
    assert.ok(!g.nodes.some((n) => n.op === "Dropout" || n.op === "Identity"));
    // The light models make their weights with ConstantOfShape at run time, so BatchNorm
    // folds only after constant folding; SqueezeNet's Conv → Relu pairs fuse already.
    if (name.includes("squeezenet")) assert.equal(counts.activations, 26, JSON.stringify(counts));
  }
});
