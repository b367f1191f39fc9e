// Pruned models at run time: the sparse kernels (kernels/gemm/gemm_sparse_f32.ts) take the
// pruned MatMul/Gemm and Conv layers of the MNIST models, which then give the predictions of
// the dense path (`sparse: "off"`) within float rounding, with less resident weight memory.
// Also the sparse convolution against the dense one over geometries, builds and threads.
import assert from "node:assert/strict";
import { compress, Session, type Tensor } from "../src/mod.ts";
import { mnistSplit } from "../src/eval/mnist.ts";
import { KernelModule } from "../src/kernels/module.ts";
import { availableBuilds } from "../src/kernels/features.ts";
import { type Dims4, PackedConvF32, PackedConvSparseF32 } from "../src/kernels/conv.ts";
import { sparseWins } from "../src/kernels/gemm_sparse.ts";
import { ArgumentError } from "../src/errors.ts";
import { rng } from "./util.ts";

const data = mnistSplit(0);

function slice(x: Tensor, from: number, to: number): Tensor {
  const per = x.data.length / x.dims[0];
  return {
    type: "float32",
    dims: [to - from, ...x.dims.slice(1)],
    data: (x.data as Float32Array).slice(from * per, to * per),
  };
}

function argmax(d: Float32Array, row: number, n: number): number {
  let best = 0;
  for (let j = 1; j < n; j++) if (d[row * n + j] > d[row * n + best]) best = j;
  return best;
}

for (const name of ["mnist_mlp", "mnist_cnn"]) {
  Deno.test(`${name} pruned 90%: sparse kernels give the dense predictions in less memory`, async () => {
    const bytes = await Deno.readFile(new URL(`../models/${name}.onnx`, import.meta.url));
    const { model } = await compress(bytes, "prune:0.9");
    const { test } = await data;
    const inName = (await Session.create(model)).inputNames[0];
    const outs: Float32Array[] = [];
    const weights: number[] = [];
    for (const sparse of ["auto", "off"] as const) {
      const s = await Session.create(model, { sparse });
      const out: number[] = [];
      // Batches of 64 digits (the 16-row tiles), then one digit (the gather kernel).
      for (const [from, to] of [[0, 64], [64, 128], [128, 129], [129, 256]]) {
        const x = slice(test.x, from, to);
        const r = await s.run({ [inName]: x });
        out.push(...(Object.values(r)[0].data as Float32Array));
      }
      outs.push(Float32Array.from(out));
      weights.push(s.memory.weights);
      await s.release();
    }
    const [sp, dense] = outs;
    const classes = sp.length / 256;
    let agree = 0, maxDiff = 0;
    for (let i = 0; i < 256; i++) {
      if (argmax(sp, i, classes) === argmax(dense, i, classes)) agree++;
      for (let j = 0; j < classes; j++) {
        const d = Math.abs(sp[i * classes + j] - dense[i * classes + j]);
        maxDiff = Math.max(maxDiff, d / (1 + Math.abs(dense[i * classes + j])));
      }
    }
    console.log(
      `${name}: weights ${weights[0]} B sparse vs ${weights[1]} B dense ` +
        `(${(100 * weights[0] / weights[1]).toFixed(1)}%), max rel diff ${
          maxDiff.toExponential(2)
        }`,
    );
    assert.equal(agree, 256);
    assert.ok(maxDiff < 1e-4, `${maxDiff}`);
    assert.ok(weights[0] < 0.5 * weights[1], `${weights[0]} vs ${weights[1]}`);
  });
}

Deno.test("session option sparse: only 'auto' and 'off'", async () => {
  const bytes = await Deno.readFile(new URL("../models/mnist_mlp.onnx", import.meta.url));
  await assert.rejects(
    () => Session.create(bytes, { sparse: "on" as unknown as "auto" }),
    ArgumentError,
  );
  // A dense model is unchanged by the option: nothing is sparse enough.
  const a = await Session.create(bytes, { sparse: "auto" });
  const b = await Session.create(bytes, { sparse: "off" });
  const x: Tensor = {
    type: "float32",
    dims: [1, 1, 28, 28],
    data: new Float32Array(784).fill(0.5),
  };
  const [ra, rb] = [await a.run({ [a.inputNames[0]]: x }), await b.run({ [b.inputNames[0]]: x })];
  assert.deepEqual(Object.values(ra)[0].data, Object.values(rb)[0].data);
  assert.equal(a.memory.weights, b.memory.weights);
  await a.release();
  await b.release();
});

Deno.test("sparseWins: the benchmark's limits", () => {
  assert.ok(sparseWins(0.3, 256) && !sparseWins(0.4, 256));
  assert.ok(sparseWins(0.2, 4) && !sparseWins(0.3, 4));
  assert.ok(sparseWins(0.1, 1) && !sparseWins(0.2, 1));
  assert.ok(sparseWins(0.2, undefined) && !sparseWins(0.3, undefined));
  assert.ok(!sparseWins(NaN, 16));
});

const GEOMETRIES: { dims: Dims4; cout: number; kh: number; kw: number; attrs: object }[] = [
  { dims: [1, 5, 7, 9], cout: 13, kh: 1, kw: 1, attrs: {} },
  { dims: [2, 9, 8, 6], cout: 17, kh: 3, kw: 3, attrs: { pads: [1, 1, 1, 1] } },
  { dims: [1, 11, 10, 5], cout: 8, kh: 3, kw: 2, attrs: { strides: [2, 1], dilations: [1, 2] } },
  { dims: [1, 4, 4, 3], cout: 5, kh: 1, kw: 1, attrs: { strides: [2, 2] } },
  { dims: [3, 6, 6, 16], cout: 33, kh: 5, kw: 5, attrs: { pads: [2, 2, 2, 2] } },
];

for (const build of availableBuilds()) {
  Deno.test(`sparse f32 convolution matches the dense one (${build})`, async () => {
    const mod = await KernelModule.load(build);
    const two = await KernelModule.load(build, { threads: 2, parallelMinMacs: 0 });
    await two.threadsReady();
    const r = rng(7);
    for (const g of GEOMETRIES) {
      for (const density of [0, 0.05, 0.3, 1]) {
        const cin = g.dims[3], k = g.kh * g.kw * cin;
        const weights = Float32Array.from(
          { length: g.cout * k },
          () => r() < density ? r() * 2 - 1 : 0,
        );
        const bias = r() < 0.5 ? Float32Array.from({ length: g.cout }, () => r() - 0.5) : undefined;
        const x = Float32Array.from({ length: g.dims.reduce((a, b) => a * b) }, () => r() - 0.5);
        const shape = { cout: g.cout, cin, kh: g.kh, kw: g.kw, weights, bias };
        const dense = PackedConvF32.create(mod, shape);
        const want = dense.run(x, g.dims, g.attrs);
        dense.dispose();
        let first: Float32Array | undefined;
        for (const m of [mod, two]) {
          const conv = PackedConvSparseF32.create(m, shape);
          const got = conv.run(x, g.dims, g.attrs, { kind: "relu" });
          conv.dispose();
          assert.deepEqual(got.dims, want.dims);
          if (first) assert.deepEqual(got.data, first, "2 threads differ from 1");
          first = got.data;
          for (let i = 0; i < got.data.length; i++) {
            const w = Math.max(0, want.data[i]);
            assert.ok(
              Math.abs(got.data[i] - w) <= 1e-5 * k + 1e-6,
              `${build} [${g.dims}] ${g.kh}x${g.kw} density ${density} [${i}]: ${
                got.data[i]
              } vs ${w}`,
            );
          }
        }
      }
    }
    assert.throws(
      () =>
        PackedConvSparseF32.create(mod, {
          cout: 4,
          cin: 4,
          kh: 1,
          kw: 1,
          groups: 2,
          weights: new Float32Array(8),
        }),
      ArgumentError,
    );
    two.dispose();
  });
}
