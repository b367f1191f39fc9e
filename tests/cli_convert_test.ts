// `sqz convert` end to end: models in a temp dir (one with its weights in an external data
// file beside it), the CLI as a subprocess from another working directory, the written model
// checked for its opset and against the original's outputs; bad arguments → exit 1 with a
// one-line message.
import assert from "node:assert/strict";
import { Session } from "../src/mod.ts";
import {
  DataType,
  decodeModel,
  makeModel,
  node,
  tensorFromArray,
  type TensorProto,
  valueInfo,
} from "../src/onnx/proto.ts";

const MAIN = new URL("../src/cli/main.ts", import.meta.url).pathname;
const REPO = new URL("..", import.meta.url).pathname;
const F = DataType.FLOAT;

async function sqz(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "convert", ...args],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr).trim(),
  };
}

const W = Float32Array.from({ length: 16 }, (_, i) => (i % 5) / 4 - 0.5);

/** y = Softmax(Squeeze(Unsqueeze(x · W)), axis=1) on x [2, 3, 4], W [4, 4] in weights.bin. */
function opset11Model(): Uint8Array {
  const w: TensorProto = tensorFromArray("W", F, [4, 4], W);
  w.rawData = undefined;
  w.dataLocation = 1;
  w.externalData = [
    { key: "location", value: "weights.bin" },
    { key: "offset", value: "0" },
    { key: "length", value: "64" },
  ];
  return makeModel({
    nodes: [
      node("MatMul", ["x", "W"], ["h"]),
      node("Unsqueeze", ["h"], ["u"], { axes: [0] }),
      node("Squeeze", ["u"], ["s"], { axes: [0] }),
      node("Softmax", ["s"], ["y"], { axis: 1 }),
    ],
    inputs: [valueInfo("x", F, [2, 3, 4])],
    outputs: [valueInfo("y", F, [2, 3, 4])],
    initializers: [w],
    opset: 11,
  });
}

const x = {
  type: "float32" as const,
  dims: [2, 3, 4],
  data: Float32Array.from({ length: 24 }, (_, i) => Math.sin(i)),
};

async function outputOf(path: string): Promise<Float32Array> {
  const s = await Session.create(path);
  try {
    return (await s.run({ x })).y.data as Float32Array;
  } finally {
    await s.release();
  }
}

Deno.test("sqz convert: opset 11 → 13 with external data beside the model", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/model.onnx`, opset11Model());
    await Deno.writeFile(`${dir}/weights.bin`, new Uint8Array(W.buffer));
    const r = await sqz(`${dir}/model.onnx`, "--opset", "13", "-o", `${dir}/out.onnx`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /→ opset 13/);
    assert.match(r.stdout, /opset 11 → 13: 3 rewrites/);
    assert.match(r.stdout, /Softmax \(opset 13\): 2-D coercion at a non-last axis/);
    assert.match(r.stdout, /Squeeze \(opset 13\): axes attribute → int64 input/);
    assert.match(r.stdout, /wrote .*out\.onnx/);
    const out = await Deno.readFile(`${dir}/out.onnx`);
    assert.equal(decodeModel(out).opsetImport.find((o) => !o.domain)?.version, 13);
    const want = await outputOf(`${dir}/model.onnx`), got = await outputOf(`${dir}/out.onnx`);
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-6);
    // --json: the same notes, machine-readable.
    const j = await sqz(`${dir}/model.onnx`, "--opset=18", "-o", `${dir}/out18.onnx`, "--json");
    assert.equal(j.code, 0, j.stderr);
    const report = JSON.parse(j.stdout);
    assert.equal(report.opset, 18);
    assert.ok(report.notes.some((n: string) => /^opset 11 → 18/.test(n)), j.stdout);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sqz convert: an opset-6 model reports the legacy upgrade, then the conversion", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(
      `${dir}/old.onnx`,
      makeModel({
        nodes: [
          node("Add", ["x", "b"], ["h"], { broadcast: 1, axis: 1 }),
          node("Relu", ["h"], ["y"]),
        ],
        inputs: [valueInfo("x", F, [2, 3, 4])],
        outputs: [valueInfo("y", F, [2, 3, 4])],
        initializers: [tensorFromArray("b", F, [3], Float32Array.of(1, -1, 0.5))],
        opset: 6,
        irVersion: 3,
      }),
    );
    const r = await sqz(`${dir}/old.onnx`, "--opset", "13", "-o", `${dir}/new.onnx`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /opset 6 → 7: 1 rewrite/);
    assert.match(r.stdout, /Add-6: broadcast=1 with axis/);
    assert.match(r.stdout, /opset 7 → 13: no op in the model changed meaning/);
    assertSame(await outputOf(`${dir}/old.onnx`), await outputOf(`${dir}/new.onnx`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function assertSame(a: Float32Array, b: Float32Array) {
  assert.deepEqual(Array.from(a), Array.from(b));
}

Deno.test("sqz convert: bad arguments and downgrades exit 1 with one line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/model.onnx`, opset11Model());
    await Deno.writeFile(`${dir}/weights.bin`, new Uint8Array(W.buffer));
    const down = await sqz(`${dir}/model.onnx`, "--opset", "9", "-o", `${dir}/o.onnx`);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /^sqz: convertOpset: the model is at opset 11; converting down to 9/);
    const noOut = await sqz(`${dir}/model.onnx`, "--opset", "13");
    assert.equal(noOut.code, 1);
    assert.match(noOut.stderr, /usage: sqz convert model\.onnx --opset N -o out\.onnx/);
    const badOpset = await sqz(`${dir}/model.onnx`, "--opset", "thirteen", "-o", `${dir}/o.onnx`);
    assert.equal(badOpset.code, 1);
    assert.match(badOpset.stderr, /--opset must be an integer from 1 to \d+, got 'thirteen'/);
    const missing = await sqz(`${dir}/nope.onnx`, "--opset", "13", "-o", `${dir}/o.onnx`);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^sqz: /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
