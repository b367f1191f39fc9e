// Sizes that count external data, everywhere: modelSize() itself, exportModelFiles() over a
// (small) threshold, compress() reports before and after, evaluate() and the HTML report, the
// `sqz compress` / `sqz eval` summaries, and the service's model records and compression
// results. The model is the zoo MLP (≈ 0.9 MB of weights) laid out as PyTorch 2.x exports large
// models: a small `model.onnx` whose initializers live in `model.onnx.data` beside it.
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import {
  ArgumentError,
  compress,
  encodeNpy,
  evaluate,
  exportModel,
  exportModelFiles,
  ExternalDataRequiredError,
  gzipModelSize,
  importModel,
  ModelError,
  modelSize,
  reportHtml,
  Session,
  type Tensor,
} from "../src/mod.ts";
import { DataType, makeModel, node, tensorFromArray, valueInfo } from "../src/onnx/proto.ts";
import { grouped } from "../src/eval/report_html.ts";
import { zooInput, zooModel } from "../bench/model_zoo.ts";
import { readSse, startServer } from "../server/spawn.ts";
import { sqz } from "./cli.ts";

const gz = (b: Uint8Array) => gzipSync(b, { level: 9 }).length;

/** The zoo MLP as a PyTorch-style export: `model.onnx` + `model.onnx.data`. */
function splitMlp(): { model: Uint8Array; data: Uint8Array; inline: Uint8Array } {
  const inline = zooModel("mlp").bytes;
  const { model, external } = exportModelFiles(importModel(inline), {
    externalDataThreshold: 1024,
    externalDataLocation: "model.onnx.data",
  });
  assert.deepEqual(Object.keys(external), ["model.onnx.data"]);
  return { model, data: external["model.onnx.data"], inline };
}

function batch(n: number, seed: number): Tensor {
  const m = zooModel("mlp");
  return { type: "float32", dims: [n, ...m.itemDims], data: zooInput(m, n, seed) };
}

async function run(
  model: Uint8Array | string,
  x: Tensor,
  externalData?: Record<string, Uint8Array>,
): Promise<Float32Array> {
  const s = await Session.create(model, { externalData });
  try {
    const out = await s.run({ [s.inputNames[0]]: x });
    return out[s.outputNames[0]].data as Float32Array;
  } finally {
    await s.release();
  }
}

async function writeSplit(dir: string, name = "model.onnx") {
  const { model, data } = splitMlp();
  await Deno.writeFile(`${dir}/${name}`, model);
  await Deno.writeFile(`${dir}/${name}.data`, data);
  return { model, data, total: model.length + data.length };
}

/** W1, W2 in `w.bin` (with padding and 16 bytes nothing reads), W3 in `sub/x.bin`. */
function threeTensorModel(): { model: Uint8Array; files: Record<string, Uint8Array> } {
  const ext = (name: string, dims: number[], location: string, offset: number) => {
    const t = tensorFromArray(name, DataType.FLOAT, dims, new Float32Array(dims[0] * dims[1]));
    const length = t.rawData!.length;
    t.rawData = undefined;
    t.dataLocation = 1;
    t.externalData = [
      { key: "location", value: location },
      { key: "offset", value: String(offset) },
      { key: "length", value: String(length) },
    ];
    return t;
  };
  const model = makeModel({
    nodes: [
      node("MatMul", ["x", "W1"], ["a"], {}, "m1"),
      node("MatMul", ["a", "W2"], ["b"], {}, "m2"),
      node("MatMul", ["b", "W3"], ["y"], {}, "m3"),
    ],
    inputs: [valueInfo("x", DataType.FLOAT, ["N", 4])],
    outputs: [valueInfo("y", DataType.FLOAT, ["N", 2])],
    initializers: [
      ext("W1", [4, 4], "w.bin", 0),
      ext("W2", [4, 4], "w.bin", 128),
      ext("W3", [4, 2], "sub/x.bin", 0),
    ],
  });
  return {
    model,
    files: { "w.bin": new Uint8Array(128 + 64 + 16), "sub/x.bin": new Uint8Array(32) },
  };
}

Deno.test("modelSize: each external file once, at its full size; missing files are ModelErrors", async () => {
  const { model, files } = threeTensorModel();
  const want = {
    bytes: model.length + 208 + 32,
    graphBytes: model.length,
    externalBytes: 240,
    files: [{ location: "w.bin", bytes: 208 }, { location: "sub/x.bin", bytes: 32 }],
  };
  assert.deepEqual(modelSize(model, { externalData: files }), want);
  assert.equal(
    gzipModelSize(model, { externalData: files }),
    gz(model) + gz(files["w.bin"]) + gz(files["sub/x.bin"]),
  );
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/sub`);
    for (const [loc, b] of Object.entries(files)) await Deno.writeFile(`${dir}/${loc}`, b);
    assert.deepEqual(modelSize(model, { baseDir: dir }), want);
    // The model loads as modelSize reads it.
    const y = await run(model, { type: "float32", dims: [1, 4], data: new Float32Array(4) }, files);
    assert.equal(y.length, 2);
    await Deno.remove(`${dir}/sub/x.bin`);
    assert.throws(() => modelSize(model, { baseDir: dir }), ModelError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.throws(() => modelSize(model), ModelError); // nowhere to look
  const inline = zooModel("mlp").bytes;
  assert.deepEqual(modelSize(inline), {
    bytes: inline.length,
    graphBytes: inline.length,
    externalBytes: 0,
    files: [],
  });
});

Deno.test("exportModelFiles: over the threshold the weights go to one external file, same outputs", async () => {
  const { model, data, inline } = splitMlp();
  const g = importModel(inline);
  assert.throws(
    () => exportModel(g, { externalDataThreshold: 1024 }),
    (e: unknown) => e instanceof ExternalDataRequiredError && e.code === "external_data_required",
  );
  assert.throws(() => exportModelFiles(g, { externalDataLocation: "../w.bin" }), ArgumentError);
  // Under the threshold (the default, 2 GiB − 64 MiB): one file, the same bytes as exportModel.
  const whole = exportModelFiles(g);
  assert.deepEqual(whole.external, {});
  assert.deepEqual(whole.model, exportModel(g));

  assert.ok(model.length < 4096, `${model.length}-byte graph`);
  assert.ok(data.length >= 784 * 256 * 4, `${data.length}-byte data file`);
  const x = batch(8, 3);
  const want = await run(inline, x);
  assert.deepEqual(await run(model, x, { "model.onnx.data": data }), want);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/model.onnx`, model);
    await Deno.writeFile(`${dir}/model.onnx.data`, data);
    assert.deepEqual(await run(`${dir}/model.onnx`, x), want);
    const s = modelSize(model, { baseDir: dir });
    assert.equal(s.bytes, model.length + data.length);
    assert.deepEqual(s.files, [{ location: "model.onnx.data", bytes: data.length }]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("compress() and evaluate(): sizes, ratios and the HTML report count external data", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { model, data, total } = await writeSplit(dir);
    const path = `${dir}/model.onnx`;
    const r = await compress(path, "int8-dynamic");
    assert.deepEqual(r.external, {});
    assert.equal(r.report.size.before, total);
    assert.equal(r.report.size.gzipBefore, gz(model) + gz(data));
    assert.equal(r.report.size.after, r.model.length);
    assert.ok(r.report.size.before / r.report.size.after > 3, JSON.stringify(r.report.size));
    // The same model given as bytes and its data file by location.
    const byBytes = await compress(model, "int8-dynamic", {
      externalData: { "model.onnx.data": data },
    });
    assert.equal(byBytes.report.size.before, total);

    // An artifact over the threshold: .onnx + external data; the report counts both.
    const big = await compress(path, "int8-dynamic", {
      externalDataThreshold: 1024,
      externalDataLocation: "out.onnx.data",
    });
    const bigData = big.external["out.onnx.data"];
    assert.ok(bigData && bigData.length > 200_000, "weights in out.onnx.data");
    assert.equal(big.report.size.after, big.model.length + bigData.length);
    assert.equal(big.report.size.gzipAfter, gz(big.model) + gz(bigData));
    const x = batch(16, 5);
    assert.deepEqual(await run(big.model, x, big.external), await run(r.model, x));

    // evaluate(): the reference's size is both of its files.
    const dataset = { inputs: { [zooModel("mlp").inputName]: x } };
    const report = await evaluate(r.model, dataset, { reference: path, latencyRuns: 0 });
    const ref = report.reference!;
    assert.equal(ref.model.bytes, total);
    assert.equal(ref.model.graphBytes, model.length);
    assert.deepEqual(ref.model.externalFiles, [{
      location: "model.onnx.data",
      bytes: data.length,
    }]);
    assert.equal(ref.model.gzipBytes, gz(model) + gz(data));
    assert.equal(ref.compressionRatio, total / r.model.length);
    assert.ok(ref.compressionRatio > 3);
    assert.ok(report.agreement! >= 0.75, `agreement ${report.agreement}`);
    // A model with external data given as bytes, and the reference given as bytes too.
    const both = await evaluate(big.model, dataset, {
      externalData: big.external,
      reference: model,
      referenceExternalData: { "model.onnx.data": data },
      latencyRuns: 0,
      layers: false,
    });
    assert.equal(both.model.bytes, big.model.length + bigData.length);
    assert.equal(both.reference!.model.bytes, total);

    // The HTML report: the reference's bytes, its two files and the ratio from the totals.
    const html = reportHtml(report);
    assert.ok(html.includes(`${grouped(total)} / ${grouped(gz(model) + gz(data))}`));
    assert.ok(html.includes(grouped(data.length)) && html.includes("model.onnx.data"));
    assert.ok(html.includes(`${ref.compressionRatio.toFixed(2)}×`));
    assert.ok(!html.includes(`${(model.length / r.model.length).toFixed(2)}×`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** As `sqz compress` prints sizes. */
function kb(b: number): string {
  return b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(2)} MiB` : `${(b / 1024).toFixed(1)} KiB`;
}

Deno.test("sqz compress / sqz eval: a model with a .data sibling is reported at both files' size", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { total } = await writeSplit(dir);
    await Deno.writeFile(`${dir}/x.npy`, encodeNpy(batch(16, 7)));
    const c = await sqz([
      "compress",
      `${dir}/model.onnx`,
      "--recipe",
      "int8-dynamic",
      "-o",
      `${dir}/out.onnx`,
    ]);
    assert.equal(c.code, 0, c.err);
    const out = (await Deno.stat(`${dir}/out.onnx`)).size;
    const ratio = (total / out).toFixed(2);
    assert.ok(
      c.out.includes(`${dir}/out.onnx: ${kb(total)} → ${kb(out)} (${ratio}×)`),
      c.out,
    );
    assert.ok(Number(ratio) > 3);

    // Over --external-data-threshold: out2.onnx + out2.onnx.data, both counted.
    const c2 = await sqz([
      "compress",
      `${dir}/model.onnx`,
      "--recipe",
      "int8-dynamic",
      "--external-data-threshold",
      "1024",
      "-o",
      `${dir}/out2.onnx`,
    ]);
    assert.equal(c2.code, 0, c2.err);
    const out2 = (await Deno.stat(`${dir}/out2.onnx`)).size +
      (await Deno.stat(`${dir}/out2.onnx.data`)).size;
    assert.ok(c2.out.includes(`out2.onnx (+ out2.onnx.data): ${kb(total)} → ${kb(out2)}`), c2.out);

    const e = await sqz([
      "eval",
      `${dir}/out2.onnx`,
      "--data",
      `${dir}/x.npy`,
      "--reference",
      `${dir}/model.onnx`,
      "--json",
      `${dir}/r.json`,
    ]);
    assert.equal(e.code, 0, e.err);
    const json = JSON.parse(await Deno.readTextFile(`${dir}/r.json`));
    assert.equal(json.model.bytes, out2);
    assert.equal(json.reference.model.bytes, total);
    assert.match(e.out, new RegExp(`${(total / out2).toFixed(2)}× smaller`));
    assert.match(
      e.out,
      new RegExp(`reference size ${total} bytes = \\d+ \\.onnx \\+ \\d+ model\\.onnx\\.data`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "server: model records and compression results count their external data files",
  sanitizeResources: true,
  sanitizeOps: true,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "sqz_size_test_" });
    const server = await startServer({
      dataDir,
      env: { SQZ_PRELOAD: "0", SQZ_EXTERNAL_DATA_THRESHOLD: "1024" },
    });
    try {
      const api = (p: string, init?: RequestInit) => fetch(`${server.url}${p}`, init);
      const json = async (res: Response, status: number) => {
        const text = await res.text();
        assert.equal(res.status, status, text);
        return JSON.parse(text);
      };
      const { model, data } = splitMlp();
      const form = new FormData();
      form.append("model", new File([model as Uint8Array<ArrayBuffer>], "model.onnx"));
      form.append("external", new File([data as Uint8Array<ArrayBuffer>], "model.onnx.data"));
      form.append("name", "split");
      const parent = await json(await api("/v1/models", { method: "POST", body: form }), 201);
      assert.equal(parent.bytes, model.length + data.length);
      assert.equal(parent.graphBytes, model.length);
      assert.equal(parent.externalData[0].bytes, data.length);
      assert.deepEqual(await json(await api("/v1/models/split"), 200), parent);

      // Compressed over the server's threshold (1 KiB here): stored as .onnx + model.onnx.data.
      const job = await json(
        await api("/v1/models/split/compress", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ recipe: "int8-dynamic" }),
        }),
        202,
      );
      const events = await readSse(await api(`/v1/jobs/${job.id}/events`));
      const last = events[events.length - 1].data;
      assert.equal(last.state, "succeeded", JSON.stringify(last));
      assert.equal(last.parentBytes, parent.bytes);
      const child = await json(await api(`/v1/models/${last.resultModelId}`), 200);
      assert.equal(last.bytes, child.bytes);
      assert.equal(child.externalData.length, 1);
      assert.equal(child.externalData[0].location, "model.onnx.data");
      assert.equal(child.bytes, child.graphBytes + child.externalData[0].bytes);
      const report = await json(await api(`/v1/jobs/${job.id}/report`), 200);
      assert.equal(report.compression.size.before, parent.bytes);
      assert.equal(report.compression.size.after, child.bytes);

      const onnx = new Uint8Array(
        await (await api(`/v1/models/${child.id}/artifact`)).arrayBuffer(),
      );
      const ext = new Uint8Array(
        await (await api(`/v1/models/${child.id}/artifact?external=model.onnx.data`)).arrayBuffer(),
      );
      assert.equal(onnx.length + ext.length, child.bytes);
      const x = batch(2, 9);
      const want = await run(onnx, x, { "model.onnx.data": ext });
      const out = await json(
        await api(`/v2/models/${child.id}/infer`, {
          method: "POST",
          body: JSON.stringify({
            inputs: [{
              name: zooModel("mlp").inputName,
              shape: x.dims,
              datatype: "FP32",
              data: Array.from(x.data as Float32Array),
            }],
          }),
        }),
        200,
      );
      assert.deepEqual(out.outputs[0].data, Array.from(want));
    } finally {
      await server.stop();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
