// The compression pipeline as a whole: every preset's artifact loads and runs in sqz; mixed
// precision per layer; calibration methods pick sensible ranges; progress and metadata.
import assert from "node:assert/strict";
import { ArgumentError, compress, type Recipe, Session } from "../src/mod.ts";
import { paramsFor, type TensorStats, threshold } from "../src/compress/calibrate.ts";
import { zooInput, zooModel } from "../bench/model_zoo.ts";
import {
  DataType,
  decodeModel,
  makeModel,
  node,
  tensorFromArray,
  valueInfo,
} from "../src/onnx/proto.ts";
import { ortRunner } from "../bench/models.ts";

const PRESETS = [
  "int8",
  "int8-dynamic",
  "int4",
  "binary",
  "ternary",
  "prune:0.9",
  "svd:0.95",
  "cluster:32",
];

Deno.test("every preset's artifact loads in sqz and runs, with recipe and report in metadata", async () => {
  const m = zooModel("lenet");
  const x = { type: "float32" as const, dims: [2, ...m.itemDims], data: zooInput(m, 2, 9) };
  const calibration = [{ [m.inputName]: x }];
  for (const preset of PRESETS) {
    if (preset.startsWith("svd")) {
      // LeNet's random weights are full rank: factoring saves nothing, and that is an error.
      await assert.rejects(
        () => compress(m.bytes, preset, { calibration }),
        (e: Error) => e instanceof ArgumentError && /compresses no layer/.test(e.message),
      );
      continue;
    }
    const { model, report } = await compress(m.bytes, preset, { calibration });
    const meta = Object.fromEntries(
      decodeModel(model).metadataProps.map((p) => [p.key, p.value]),
    );
    assert.equal(JSON.parse(meta["sqz.recipe"]).method, report.recipe.method, preset);
    const rep = JSON.parse(meta["sqz.report"]);
    assert.ok(rep.layers.length > 0, preset);
    assert.equal(rep.size.after, model.length, preset); // the report describes its own file
    const s = await Session.create(model);
    const y = (await s.run({ [m.inputName]: x }))[m.outputName];
    await s.release();
    assert.deepEqual(y.dims, [2, 10], preset);
    assert.ok(Array.from(y.data as Float32Array).every(Number.isFinite), preset);
    if (!preset.startsWith("svd")) {
      assert.ok(
        report.size.after < report.size.before,
        `${preset}: ${JSON.stringify(report.size)}`,
      );
    }
  }
});

Deno.test("mixed precision: per-layer overrides by name and by op type", async () => {
  const m = zooModel("lenet");
  const recipe = {
    method: "int8",
    layers: { Conv: { method: "int4" }, gemm2: { method: "none" } },
  };
  const { report } = await compress(m.bytes, recipe);
  const by = Object.fromEntries(report.layers.map((l) => [l.name, l.method]));
  assert.equal(by.conv0, "int4");
  assert.equal(by.conv1, "int4");
  assert.match(by.gemm0, /^int8/);
  assert.match(by.gemm1, /^int8/);
  assert.equal(by.gemm2, undefined); // left float, not reported
});

Deno.test("int8 excludeFirstLast keeps the first and last layers float", async () => {
  const m = zooModel("lenet");
  const x = { type: "float32" as const, dims: [4, ...m.itemDims], data: zooInput(m, 4, 3) };
  const recipe = { method: "int8", int8: { excludeFirstLast: true } } as Partial<Recipe>;
  const { report } = await compress(m.bytes, recipe, { calibration: [{ [m.inputName]: x }] });
  assert.deepEqual(report.layers.map((l) => l.name).sort(), ["conv1", "gemm0", "gemm1"]);
});

function stats(values: number[]): TensorStats {
  const absMax = Math.max(...values.map(Math.abs));
  const hist = new Float64Array(2048);
  for (const v of values) hist[Math.min(2047, Math.floor((Math.abs(v) / absMax) * 2048))]++;
  return {
    min: Math.min(...values),
    max: Math.max(...values),
    absMax,
    hist,
    count: values.length,
  };
}

Deno.test("calibration methods: minmax keeps outliers, percentile and entropy clip them", () => {
  // 10,000 values in [-1, 1] plus one outlier at 50.
  let seed = 1;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  const values = [...Array.from({ length: 10000 }, rand), 50];
  const s = stats(values);
  assert.equal(threshold(s, "minmax"), 50);
  for (const method of ["percentile", "entropy"] as const) {
    const t = threshold(s, method, 99.9);
    assert.ok(t > 0.8 && t < 5, `${method}: ${t}`);
  }
  // MSE weighs the outlier's clipping error (≈ 49²) against 10,000 rounding errors: one far
  // outlier is worth keeping, so its threshold stays high; with many moderate ones it clips.
  assert.ok(threshold(s, "mse") > 40);
  const heavy = stats([...Array.from({ length: 10000 }, rand), ...Array(20).fill(3)]);
  assert.ok(threshold(heavy, "mse") < 3, `mse: ${threshold(heavy, "mse")}`);
  const p = paramsFor(s, "minmax", "uint8");
  // [−1, 50] in uint8: zero point near 5, scale 51/255.
  assert.ok(Math.abs(p.scale - 51 / 255) < 1e-3 && p.zeroPoint >= 4 && p.zeroPoint <= 6);
  const relu = stats(Array.from({ length: 1000 }, (_, i) => i / 999));
  assert.equal(paramsFor(relu, "minmax", "uint8").zeroPoint, 0);
  assert.equal(paramsFor(relu, "minmax", "int8").zeroPoint, -128);
});

Deno.test("recipes that cannot apply are typed errors: unknown layer names, bad calibration", async () => {
  const m = zooModel("lenet");
  await assert.rejects(
    () => compress(m.bytes, { method: "int8", layers: { nope: { method: "int4" } } }),
    (e: Error) => e instanceof ArgumentError && /'nope'/.test(e.message),
  );
  await assert.rejects(
    () => compress(m.bytes, "int8", { calibration: {} as never }),
    ArgumentError,
  );
  const bad = { type: "float32" as const, dims: [1, ...m.itemDims], data: zooInput(m, 1, 1) };
  bad.data[5] = Infinity;
  await assert.rejects(
    () => compress(m.bytes, "int8", { calibration: [{ [m.inputName]: bad }] }),
    (e: Error) => e instanceof ArgumentError && /finite/.test(e.message),
  );
});

Deno.test("static and dynamic int8 in one recipe: each layer gets its own", async () => {
  const m = zooModel("lenet");
  const x = { type: "float32" as const, dims: [4, ...m.itemDims], data: zooInput(m, 4, 2) };
  const { report } = await compress(
    m.bytes,
    { method: "int8", layers: { gemm2: { method: "int8-dynamic" } } },
    { calibration: [{ [m.inputName]: x }] },
  );
  const by = Object.fromEntries(report.layers.map((l) => [l.name, l.method]));
  assert.equal(by.conv0, "int8");
  assert.equal(by.gemm2, "int8 dynamic");
});

Deno.test("int8 on an opset-11 model raises the opset to 13 (per-channel DequantizeLinear)", async () => {
  const r = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.7) * 0.3);
  const bytes = makeModel({
    nodes: [node("Gemm", ["x", "w", "b"], ["h"], { transB: 1 }), node("Relu", ["h"], ["y"])],
    inputs: [valueInfo("x", DataType.FLOAT, ["N", 16])],
    outputs: [valueInfo("y", DataType.FLOAT, ["N", 8])],
    initializers: [
      tensorFromArray("w", DataType.FLOAT, [8, 16], r(128)),
      tensorFromArray("b", DataType.FLOAT, [8], r(8)),
    ],
    opset: 11,
  });
  const x = { type: "float32" as const, dims: [4, 16], data: r(64) };
  const { model } = await compress(bytes, "int8", { calibration: [{ x }] });
  const opset = decodeModel(model).opsetImport.find((o) => !o.domain)?.version;
  assert.equal(opset, 13);
  const ort = await ortRunner(model);
  await ort.run({ x: { dims: x.dims, data: x.data } });
  await ort.release();
});
