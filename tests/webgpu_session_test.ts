// The WebGPU backend inside sessions: placement (runtime/partition.ts), tensors resident on the
// GPU between GPU nodes, transfers at the borders, and results against the wasm backend on the
// MNIST models (real digits) and on element-wise, broadcasting and Softmax graphs. The
// partitioner's cost model is tested without a GPU.
import assert from "node:assert/strict";
import { BackendUnavailableError, Session, type Tensor } from "../src/mod.ts";
import { gpuContext } from "../src/runtime/webgpu/device.ts";
import { partition } from "../src/runtime/partition.ts";
import { Graph, Node } from "../src/graph/ir.ts";
import { mnistSplit } from "../src/eval/mnist.ts";
import { DataType, makeModel, node, tensorFromArray, valueInfo } from "../src/onnx/proto.ts";
import { ensureDebianFile } from "./system_tools.ts";
import { rng } from "./util.ts";

if (!Deno.env.get("XDG_RUNTIME_DIR")) Deno.env.set("XDG_RUNTIME_DIR", await Deno.makeTempDir());
if (Deno.build.os === "linux") {
  await ensureDebianFile("/usr/share/vulkan/icd.d/lvp_icd.x86_64.json", "mesa-vulkan-drivers");
}
const ctx = await gpuContext().catch((e) => {
  if (!(e instanceof BackendUnavailableError)) throw e;
  console.warn(`skipping WebGPU session tests: ${e.message}`);
  return undefined;
});

const ROOT = new URL("../", import.meta.url);

function maxDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.dims, b.dims);
  let d = 0;
  for (let i = 0; i < a.data.length; i++) {
    d = Math.max(d, Math.abs(Number(a.data[i]) - Number(b.data[i])));
  }
  return d;
}

function argmaxRows(t: Tensor): number[] {
  const n = t.dims[t.dims.length - 1], rows = t.data.length / n;
  return Array.from({ length: rows }, (_, r) => {
    let best = 0;
    for (let j = 1; j < n; j++) if (t.data[r * n + j] > t.data[r * n + best]) best = j;
    return best;
  });
}

for (const name of ["mnist_mlp", "mnist_cnn"]) {
  Deno.test({
    name: `webgpu session: ${name} on real digits equals the wasm backend`,
    ignore: !ctx,
    async fn() {
      const bytes = await Deno.readFile(new URL(`models/${name}.onnx`, ROOT));
      const { test } = await mnistSplit(0);
      const n = 200;
      const x: Tensor = {
        type: "float32",
        dims: [n, 1, 28, 28],
        data: test.x.data.slice(0, n * 784),
      };
      const wasm = await Session.create(bytes);
      const gpu = await Session.create(bytes, { backend: "webgpu", profile: true });
      assert.equal(gpu.backend, "webgpu");
      assert.equal(gpu.info.adapter, ctx!.adapterName);
      // Every Gemm has a GPU kernel; the convolutions and pools stay on wasm, and say why.
      for (const p of gpu.placement) {
        if (p.op === "Gemm") assert.equal(p.backend, "webgpu", p.node);
        if (p.op.endsWith("Conv")) {
          assert.equal(p.backend, "wasm");
          assert.match(p.reason, /no WebGPU kernel for sqz\.nhwc\.Conv/);
        }
      }
      const want = Object.values(await wasm.run({ input: x }))[0];
      const got = Object.values(await gpu.run({ input: x }))[0];
      assert.ok(maxDiff(want, got) < 1e-4, `max diff ${maxDiff(want, got)}`);
      assert.deepEqual(argmaxRows(got), argmaxRows(want));
      // Twice: the second run reuses the pooled GPU buffers.
      const again = Object.values(await gpu.run({ input: x }))[0];
      assert.deepEqual(again, got);
      // The profile names the backend of every node.
      assert.equal(gpu.profile.length, gpu.placement.length);
      for (const [i, p] of gpu.profile.entries()) assert.equal(p.backend, gpu.placement[i].backend);
      // GPU weights are not kept again in Wasm or JS.
      assert.ok(gpu.memory.weights < wasm.memory.weights / 2, JSON.stringify(gpu.memory));
      assert.ok(gpu.memory.gpuWeightBytes! > 0);
      await wasm.release();
      await gpu.release();
    },
  });
}

Deno.test({
  name: "webgpu session: broadcasting element-wise ops, Relu, Softmax and Reshape on the GPU",
  ignore: !ctx,
  async fn() {
    const r = rng(21);
    const floats = (n: number) => Float32Array.from({ length: n }, () => r() * 4 - 2);
    const bytes = makeModel({
      nodes: [
        node("Add", ["x", "b"], ["t1"]),
        node("Mul", ["t1", "s"], ["t2"]),
        node("Sub", ["t2", "x"], ["t3"]),
        node("Div", ["t3", "d"], ["t4"]),
        node("Sigmoid", ["t4"], ["t5"]),
        node("Tanh", ["t3"], ["t6"]),
        node("Add", ["t5", "t6"], ["t7"]),
        node("Reshape", ["t7", "shape"], ["t8"]),
        node("Softmax", ["t8"], ["y"], { axis: -1 }),
      ],
      inputs: [valueInfo("x", DataType.FLOAT, [3, 5, 7])],
      outputs: [valueInfo("y", DataType.FLOAT, [15, 7])],
      initializers: [
        tensorFromArray("b", DataType.FLOAT, [7], floats(7)),
        tensorFromArray("s", DataType.FLOAT, [3, 1, 7], floats(21)),
        tensorFromArray("d", DataType.FLOAT, [1], Float32Array.of(1.7)),
        tensorFromArray("shape", DataType.INT64, [2], BigInt64Array.of(-1n, 7n)),
      ],
      opset: 13,
    });
    const x: Tensor = { type: "float32", dims: [3, 5, 7], data: floats(105) };
    const wasm = await Session.create(bytes);
    const gpu = await Session.create(bytes, { backend: "webgpu" });
    assert.deepEqual(gpu.info.nodes, { wasm: 0, webgpu: 9 });
    const d = maxDiff((await wasm.run({ x })).y, (await gpu.run({ x })).y);
    assert.ok(d < 1e-5, `max diff ${d}`);
    await wasm.release();
    await gpu.release();
  },
});

Deno.test({
  name: "webgpu session: auto keeps a software adapter's unprofitable islands on wasm, and says so",
  ignore: !ctx || !ctx.software,
  async fn() {
    const bytes = await Deno.readFile(new URL("models/mnist_mlp.onnx", ROOT));
    const s = await Session.create(bytes, { backend: "auto" });
    assert.equal(s.backend, "wasm");
    assert.match(s.info.backendNote!, /would save .* but its transfers cost/);
    assert.ok(s.placement.every((p) => p.backend === "wasm"));
    await s.release();
  },
});

Deno.test("webgpu session: a bad backend is an ArgumentError; webgpu without WebGPU is typed", async () => {
  const bytes = await Deno.readFile(new URL("models/mnist_mlp.onnx", ROOT));
  await assert.rejects(
    () => Session.create(bytes, { backend: "cuda" as "wasm" }),
    /backend must be "auto", "wasm" or "webgpu"/,
  );
  // Where navigator.gpu is missing (an older browser, Node): webgpu throws, auto runs on wasm.
  const code = `
    Object.defineProperty(navigator, "gpu", { value: undefined });
    const { Session } = await import("./src/mod.ts");
    const bytes = await Deno.readFile("models/mnist_mlp.onnx");
    const auto = await Session.create(bytes, { backend: "auto" });
    console.log(auto.backend, auto.info.backendNote);
    try { await Session.create(bytes, { backend: "webgpu" }); console.log("no error"); }
    catch (e) { console.log(e.constructor.name, e.code, e.message); }`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  assert.match(text, /^wasm WebGPU is not available here: navigator\.gpu is missing/m);
  assert.match(text, /^BackendUnavailableError backend_unavailable WebGPU is not available/m);
});

Deno.test("partition: islands that do not pay for their transfers go back to wasm", () => {
  // x → Gemm(big) → Relu → Conv(no GPU kernel) → Add → y, shapes set by hand.
  const g = new Graph();
  const v = (name: string, shape: number[]) => {
    const val = g.value(name);
    val.type = "float32";
    val.shape = shape;
    return val;
  };
  const x = v("x", [256, 1024]), w = v("w", [1024, 1024]);
  w.constant = { type: "float32", dims: [1024, 1024], data: new Float32Array(0) };
  const h = v("h", [256, 1024]), r = v("r", [256, 1024]), c = v("c", [256, 1024]);
  const y = v("y", [256, 1024]);
  const nodes = [
    g.addNode(new Node("gemm", "Gemm", "", [x, w], [h])),
    g.addNode(new Node("relu", "Relu", "", [h], [r])),
    g.addNode(new Node("conv", "Conv", "", [r], [c])),
    g.addNode(new Node("add", "Add", "", [c, c], [y])),
  ];
  g.outputs.push(y);
  const gpu = [{ kernel: "Gemm" }, { kernel: "Relu" }, { missing: "no WebGPU kernel for Conv" }, {
    kernel: "Add",
  }];
  const opts = { gpu, merge: true, threads: 1, graphOutputs: new Set(g.outputs) };
  const hw = partition(nodes, { ...opts, software: false });
  // The GEMM island (268 MMAC) pays for 2 MB each way; the lone Add does not.
  assert.deepEqual(hw.map((p) => p.backend), ["webgpu", "webgpu", "wasm", "wasm"]);
  assert.match(hw[3].reason, /kept on wasm: its GPU island of 1 node/);
  assert.match(hw[2].reason, /no WebGPU kernel for Conv/);
  // A software adapter is slower than wasm at everything.
  const sw = partition(nodes, { ...opts, software: true });
  assert.ok(sw.every((p) => p.backend === "wasm"));
  // Without merging ("webgpu"), every node with a kernel stays on the GPU.
  const all = partition(nodes, { ...opts, merge: false, software: true });
  assert.deepEqual(all.map((p) => p.backend), ["webgpu", "webgpu", "wasm", "webgpu"]);
});
