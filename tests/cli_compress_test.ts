// `sqz compress` and `sqz eval` end to end as subprocesses: .npy calibration in, an artifact and
// an HTML report out; bad arguments are one-line errors with exit 1.
import assert from "node:assert/strict";
import { encodeNpy } from "../src/mod.ts";
import { zooInput, zooModel } from "../bench/model_zoo.ts";
import { sqz } from "./cli.ts";

Deno.test("sqz compress --calib then sqz eval --html: artifact, summary and report", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const m = zooModel("lenet");
    await Deno.writeFile(`${dir}/lenet.onnx`, m.bytes);
    const x = { type: "float32" as const, dims: [48, ...m.itemDims], data: zooInput(m, 48, 4) };
    await Deno.writeFile(`${dir}/x.npy`, encodeNpy(x));
    const labels = BigInt64Array.from({ length: 48 }, (_, i) => BigInt(i % 10));
    await Deno.writeFile(`${dir}/y.npy`, encodeNpy({ type: "int64", dims: [48], data: labels }));
    const c = await sqz([
      "compress",
      `${dir}/lenet.onnx`,
      "--recipe",
      "int8",
      "--calib",
      `${dir}/x.npy`,
      "-o",
      `${dir}/out.onnx`,
    ]);
    assert.equal(c.code, 0, c.err);
    assert.match(c.out, /gemm0\s+Gemm\s+int8/);
    assert.match(c.out, /× smaller|\(\d+\.\d+×\)/);
    assert.match(c.err, /calibration/); // stage lines when stderr is not a terminal
    const e = await sqz([
      "eval",
      `${dir}/out.onnx`,
      "--data",
      `${dir}/x.npy`,
      "--labels",
      `${dir}/y.npy`,
      "--reference",
      `${dir}/lenet.onnx`,
      "--html",
      `${dir}/r.html`,
      "--json",
      `${dir}/r.json`,
    ]);
    assert.equal(e.code, 0, e.err);
    assert.match(e.out, /top-1 agreement/);
    const html = await Deno.readTextFile(`${dir}/r.html`);
    assert.ok(html.includes("<svg") && !html.includes("<script"));
    const json = JSON.parse(await Deno.readTextFile(`${dir}/r.json`));
    assert.equal(json.samples, 48);
    assert.ok(json.agreement > 0.8);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sqz compress: bad recipe, missing file, missing -o are one-line errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/m.onnx`, zooModel("mlp").bytes);
    for (
      const args of [
        ["compress", `${dir}/m.onnx`, "--recipe", "int9", "-o", `${dir}/o.onnx`],
        ["compress", `${dir}/none.onnx`, "--recipe", "int8", "-o", `${dir}/o.onnx`],
        ["compress", `${dir}/m.onnx`, "--recipe", "int8"],
        ["eval", `${dir}/m.onnx`],
      ]
    ) {
      const r = await sqz(args);
      assert.equal(r.code, 1, `${args.join(" ")}: ${r.err}`);
      assert.match(r.err.trim().split("\n")[0], /^sqz: /);
    }
    // Nothing half-written was left behind.
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["m.onnx"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
