// int8 compression: static (calibrated QDQ) and dynamic artifacts load in sqz, run on the int8
// kernels, and agree with onnxruntime-web running the same file.
import assert from "node:assert/strict";
import { ArgumentError, compress, parseRecipe, Session } from "../src/mod.ts";
import { zooInput, zooModel } from "../bench/model_zoo.ts";
import { ortRunner } from "../bench/models.ts";
import { decodeModel } from "../src/onnx/proto.ts";

function calibration(name: string, batches: number) {
  const m = zooModel(name);
  return Array.from({ length: batches }, (_, i) => ({
    [m.inputName]: {
      type: "float32" as const,
      dims: [8, ...m.itemDims],
      data: zooInput(m, 8, 500 + i),
    },
  }));
}

async function compare(name: string, artifact: Uint8Array) {
  const m = zooModel(name);
  const x = { dims: [4, ...m.itemDims], data: zooInput(m, 4, 77) };
  const s = await Session.create(artifact);
  const ours = (await s.run({ [m.inputName]: { type: "float32", ...x } }))[m.outputName];
  const ops = s.graph.nodes.map((n) => n.qualifiedOp);
  await s.release();
  const ort = await ortRunner(artifact);
  const theirs = (await ort.run({ [m.inputName]: x }))[m.outputName];
  await ort.release();
  const ref = await Session.create(m.bytes);
  const float = (await ref.run({ [m.inputName]: { type: "float32", ...x } }))[m.outputName];
  await ref.release();
  let diff = 0, scale = 0, drift = 0;
  const a = ours.data as Float32Array, f = float.data as Float32Array;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - theirs.data[i]));
    drift = Math.max(drift, Math.abs(a[i] - f[i]));
    scale = Math.max(scale, Math.abs(theirs.data[i]));
  }
  return { ops, diff, scale, drift, n: a.length };
}

Deno.test("recipes: presets and JSON validate, bad ones are ArgumentErrors", () => {
  assert.equal(parseRecipe("int8").method, "int8");
  assert.equal(parseRecipe("prune:0.9").prune?.sparsity, 0.9);
  assert.equal(parseRecipe("svd:0.95").lowrank?.energy, 0.95);
  assert.equal(parseRecipe("cluster:32").cluster?.clusters, 32);
  const r = parseRecipe({
    method: "int8",
    int8: { calibration: "entropy" },
    layers: { fc: { method: "none" } },
  });
  assert.equal(r.int8.calibration, "entropy");
  assert.equal(r.layers.fc.method, "none");
  for (
    const bad of [
      "int9",
      "prune:1.5",
      "cluster:1",
      "svd:0",
      "{",
      { method: "int3" },
      { int8: { calibration: "magic" } },
      { prune: { sparsity: 0.5, pattern: "5:4" } },
      { lowrank: {} },
      { extra: 1 },
    ]
  ) {
    assert.throws(() => parseRecipe(bad), ArgumentError, JSON.stringify(bad));
  }
});

// Size ratios: float32 → int8 weights is 4×, less the per-channel scales and int32 biases,
// which weigh most in the small depthwise block.
for (const [name, ratio] of [["lenet", 3.4], ["mobilenet_block", 2.2]] as const) {
  Deno.test(`int8 static ${name}: runs on the int8 kernels and agrees with onnxruntime-web`, async () => {
    const m = zooModel(name);
    let last = -1;
    const { model, report } = await compress(m.bytes, "int8", {
      calibration: calibration(name, 4),
      onProgress: (p) => {
        assert.ok(p >= last);
        last = p;
      },
    });
    assert.equal(last, 1);
    assert.ok(report.layers.length >= 3 && report.layers.every((l) => l.method === "int8"));
    assert.ok(report.size.after * ratio < report.size.before, JSON.stringify(report.size));
    const meta = decodeModel(model).metadataProps.map((p) => p.key);
    assert.ok(meta.includes("sqz.recipe") && meta.includes("sqz.report"));
    const { ops, diff, scale, drift } = await compare(name, model);
    assert.ok(ops.includes("sqz.nhwc.QLinearConv"), ops.join(" "));
    console.log(
      `${name} int8: ${(report.size.before / 1024).toFixed(0)} KiB → ${
        (report.size.after / 1024).toFixed(0)
      } KiB, ` +
        `max|sqz − ort| ${diff.toExponential(2)} (of ${scale.toFixed(3)}), max|int8 − float| ${
          drift.toFixed(4)
        }`,
    );
    // Same integer arithmetic on both sides; only the final float scaling may round apart.
    assert.ok(diff <= 1e-4 * scale + 1e-5, `sqz vs ort ${diff}`);
  });
}

Deno.test("int8 without calibration falls back to dynamic quantization, runnable by ORT too", async () => {
  const m = zooModel("mlp");
  const { model, report } = await compress(m.bytes, "int8");
  assert.ok(report.notes.some((n) => /dynamic/.test(n)));
  const { ops, diff, scale } = await compare("mlp", model);
  // The session runs each MatMulInteger → Cast → Mul as one QGemm (graph/fuse_dynamic_quant.ts).
  assert.ok(ops.includes("ai.sqz.QGemm") && ops.includes("DynamicQuantizeLinear"), ops.join(" "));
  assert.ok(diff <= 1e-4 * scale + 1e-5, `sqz vs ort ${diff}`);
});

Deno.test("int8 dynamic CNN: stays NHWC between its convolutions, same bits as the NCHW graph", async () => {
  const m = zooModel("lenet");
  const { model } = await compress(m.bytes, "int8-dynamic");
  const x = { type: "float32" as const, dims: [3, ...m.itemDims], data: zooInput(m, 3, 91) };
  const nhwc = await Session.create(model);
  const plain = await Session.create(model, { optimize: false });
  try {
    const ops = nhwc.graph.nodes.map((n) => n.qualifiedOp);
    // One transpose into NHWC at the input and one out before Flatten: the per-channel
    // x_scale·w_scale (computed at run time) is reshaped, DynamicQuantizeLinear runs on NHWC.
    assert.equal(ops.filter((o) => o === "Transpose").length, 2, ops.join(" "));
    assert.deepEqual(
      (await nhwc.run({ [m.inputName]: x }))[m.outputName].data,
      (await plain.run({ [m.inputName]: x }))[m.outputName].data,
    );
  } finally {
    await nhwc.release();
    await plain.release();
  }
});

Deno.test("depthwise QLinearConv on the int8 depthwise kernel equals the TypeScript op exactly", async () => {
  const { DataType, makeModel, node, tensorFromArray, valueInfo } = await import(
    "../src/onnx/proto.ts"
  );
  const { seededRandom } = await import("../src/mod.ts");
  const r = seededRandom(21);
  for (const [c, h, w, stride, pad] of [[8, 9, 7, 1, 1], [5, 6, 6, 2, 1], [16, 5, 5, 1, 0]]) {
    const wq = Int8Array.from({ length: c * 9 }, () => Math.floor(r() * 255) - 127);
    const bias = Int32Array.from({ length: c }, () => Math.floor(r() * 2000) - 1000);
    const ws = Float32Array.from({ length: c }, () => 0.001 + r() * 0.01);
    const oh = (d: number) => Math.floor((d + 2 * pad - 3) / stride) + 1;
    const bytes = makeModel({
      nodes: [node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"], {
        group: c,
        kernel_shape: [3, 3],
        strides: [stride, stride],
        pads: [pad, pad, pad, pad],
      })],
      inputs: [valueInfo("x", DataType.UINT8, [1, c, h, w])],
      outputs: [valueInfo("y", DataType.UINT8, [1, c, oh(h), oh(w)])],
      initializers: [
        tensorFromArray("xs", DataType.FLOAT, [], Float32Array.of(0.02)),
        tensorFromArray("xz", DataType.UINT8, [], Uint8Array.of(117)),
        tensorFromArray("w", DataType.INT8, [c, 1, 3, 3], wq),
        tensorFromArray("ws", DataType.FLOAT, [c], ws),
        tensorFromArray("wz", DataType.INT8, [c], new Int8Array(c)),
        tensorFromArray("ys", DataType.FLOAT, [], Float32Array.of(0.05)),
        tensorFromArray("yz", DataType.UINT8, [], Uint8Array.of(100)),
        tensorFromArray("b", DataType.INT32, [c], bias),
      ],
      opset: 13,
    });
    const x = {
      type: "uint8" as const,
      dims: [1, c, h, w],
      data: Uint8Array.from({ length: c * h * w }, () => Math.floor(r() * 256)),
    };
    const kernel = await Session.create(bytes, { profile: true });
    const ts = await Session.create(bytes, { optimize: false });
    const a = (await kernel.run({ x })).y, b = (await ts.run({ x })).y;
    assert.equal(kernel.profile.find((p) => p.op === "QLinearConv")?.impl, "wasm");
    assert.deepEqual(a.dims, b.dims);
    assert.deepEqual(a.data, b.data, `c=${c} ${h}×${w} stride ${stride} pad ${pad}`);
    await kernel.release();
    await ts.release();
  }
});
