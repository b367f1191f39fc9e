// QDQ lowering: quantized islands become integer kernel ops, and islands the int8 kernels
// cannot run exactly stay float (and still run).
import assert from "node:assert/strict";
import { Session } from "../src/mod.ts";
import { DataType, makeModel, node, tensorFromArray, valueInfo } from "../src/onnx/proto.ts";
import { zooInput, zooModel } from "../bench/model_zoo.ts";

Deno.test("a QDQ LeNet lowers to QLinearConv / QGemm on the int8 kernels, MaxPool on uint8", async () => {
  const m = zooModel("lenet_qdq");
  const s = await Session.create(m.bytes, { profile: true });
  const ops = s.graph.nodes.map((n) => n.qualifiedOp);
  assert.equal(ops.filter((o) => o === "sqz.nhwc.QLinearConv").length, 2);
  assert.equal(ops.filter((o) => o === "ai.sqz.QGemm").length, 3);
  assert.ok(!ops.includes("Conv") && !ops.includes("Gemm"));
  // No DequantizeLinear → MaxPool → QuantizeLinear round trips are left.
  assert.equal(ops.filter((o) => o === "DequantizeLinear").length, 1);
  const dims = [2, ...m.itemDims];
  await s.run({ [s.inputNames[0]]: { type: "float32", dims, data: zooInput(m, 2, 3) } });
  const pools = s.graph.nodes.filter((n) => n.op === "MaxPool");
  assert.ok(pools.every((n) => n.inputs[0]?.type === "uint8"));
  assert.ok(s.profile.filter((p) => p.op === "QLinearConv").every((p) => p.impl === "wasm"));
  await s.release();
});

Deno.test("weights that do not fit symmetric int8 keep the float island, with the same result", async () => {
  // u8 weights with zero point 0 and values up to 255: w − zw reaches 255, beyond [-127, 127].
  const w = Uint8Array.from({ length: 4 * 3 }, (_, i) => (i * 37) % 256);
  const bytes = makeModel({
    nodes: [
      node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
      node("DequantizeLinear", ["xq", "xs", "xz"], ["xf"]),
      node("DequantizeLinear", ["w", "ws", "wz"], ["wf"]),
      node("MatMul", ["xf", "wf"], ["y"]),
    ],
    inputs: [valueInfo("x", DataType.FLOAT, [2, 4])],
    outputs: [valueInfo("y", DataType.FLOAT, [2, 3])],
    initializers: [
      tensorFromArray("xs", DataType.FLOAT, [], Float32Array.of(0.02)),
      tensorFromArray("xz", DataType.UINT8, [], Uint8Array.of(128)),
      tensorFromArray("w", DataType.UINT8, [4, 3], w),
      tensorFromArray("ws", DataType.FLOAT, [], Float32Array.of(0.01)),
      tensorFromArray("wz", DataType.UINT8, [], Uint8Array.of(0)),
    ],
    opset: 13,
  });
  const s = await Session.create(bytes);
  assert.ok(!s.graph.nodes.some((n) => n.op === "QGemm"));
  const x = Float32Array.of(0.5, -0.25, 1, 0.1, -1, 0.3, 0.7, -0.6);
  const { y } = await s.run({ x: { type: "float32", dims: [2, 4], data: x } });
  const q = (v: number) => (Math.min(255, Math.max(0, Math.round(v / 0.02) + 128)) - 128) * 0.02;
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 3; j++) {
      let acc = 0;
      for (let k = 0; k < 4; k++) acc += q(x[i * 4 + k]) * w[k * 3 + j] * 0.01;
      assert.ok(Math.abs((y.data[i * 3 + j] as number) - acc) < 1e-5);
    }
  }
  await s.release();
});
