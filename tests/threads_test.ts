// Multi-threaded kernels: every build, split over 2 and 3 threads, gives the same bits as one
// thread (f32 included: splits fall on tile boundaries), and the session falls back to one
// thread with a note where threads cannot run.
import assert from "node:assert/strict";
import { KernelModule } from "../src/kernels/module.ts";
import { availableBuilds } from "../src/kernels/features.ts";
import { PackedGemmF32 } from "../src/kernels/gemm_f32.ts";
import { PackedGemmI8 } from "../src/kernels/gemm_i8.ts";
import { makeBinOutput, PackedGemmBin } from "../src/kernels/gemm_bin.ts";
import {
  type ConvAttrs,
  type Dims4,
  PackedConvBin,
  PackedConvF32,
  PackedConvI8,
} from "../src/kernels/conv.ts";
import { type WindowAttrs, windowGeometry } from "../src/kernels/conv_geometry.ts";
import { PackedDepthwiseF32, PackedDepthwiseI8 } from "../src/kernels/dwconv.ts";
import { averagePool2d, maxPool2d } from "../src/kernels/pool.ts";
import { splitRange } from "../src/kernels/threads.ts";
import { ArgumentError, KernelError } from "../src/errors.ts";
import { Session, setDefaultThreads } from "../src/mod.ts";
import { randInt, rng } from "./util.ts";

/** Modules for one build: 1 thread, and 2 and 3 threads splitting every layer. */
async function modules(build: ReturnType<typeof availableBuilds>[number]) {
  const one = await KernelModule.load(build);
  const many = await Promise.all(
    [2, 3].map((threads) => KernelModule.load(build, { threads, parallelMinMacs: 0 })),
  );
  await Promise.all(many.map((m) => m.threadsReady()));
  for (const m of many) assert.equal(m.threadNote, undefined, m.threadNote ?? "");
  return { one, many };
}

function same(what: string, a: ArrayLike<number>, b: ArrayLike<number>): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) assert.fail(`${what} [${i}]: ${a[i]} vs ${b[i]}`);
  }
}

Deno.test("splitRange covers the range in aligned, non-empty, balanced parts", () => {
  for (
    const [total, parts, align] of [[1, 2, 12], [13, 2, 12], [25, 3, 12], [100, 2, 7], [
      3136,
      2,
      168,
    ]]
  ) {
    const r = splitRange(total, parts, align);
    assert.equal(r[0][0], 0);
    assert.equal(r[r.length - 1][1], total);
    for (let i = 0; i < r.length; i++) {
      assert.ok(r[i][1] > r[i][0]);
      if (i) assert.equal(r[i][0], r[i - 1][1]);
      if (i < r.length - 1) assert.equal(r[i][1] % align, 0);
    }
    assert.ok(r.length <= parts);
  }
});

const GEMM_SHAPES: [number, number, number][] = [
  [1, 7, 5],
  [12, 8, 16],
  [13, 17, 33],
  [25, 9, 64],
  [37, 33, 129],
  [100, 16, 300],
  // Fewer rows than columns: the threads split the 8-column panels.
  [1, 41, 70],
  [3, 100, 17],
  [7, 24, 9],
];

for (const build of availableBuilds()) {
  Deno.test(`GEMMs split over 2 and 3 threads match one thread bit for bit (${build})`, async () => {
    const { one, many } = await modules(build);
    const r = rng(7);
    for (const [m, n, k] of GEMM_SHAPES) {
      const bf = Float32Array.from({ length: k * n }, () => r() * 2 - 1);
      const af = Float32Array.from({ length: m * k }, () => r() * 2 - 1);
      const bias = Float32Array.from({ length: n }, () => r() - 0.5);
      // int8 with 8-bit and with 7-bit weights (two packed layouts).
      const b8 = Int8Array.from({ length: k * n }, () => randInt(r, -127, 127));
      const b7 = Int8Array.from({ length: k * n }, () => randInt(r, -64, 63));
      const a8 = Uint8Array.from({ length: m * k }, () => randInt(r, 0, 255));
      const want = (mod: KernelModule) => {
        const f = PackedGemmF32.create(mod, { k, n, b: bf, bias });
        const outs: ArrayLike<number>[] = [f.run(af, m, { kind: "relu" })];
        f.dispose();
        for (const b of [b8, b7]) {
          const g = PackedGemmI8.create(mod, { k, n, b });
          outs.push(g.run(a8, m, { signed: false, zeroPoint: 128 }, g.output({ kind: "i32" })));
          outs.push(
            g.run(
              a8,
              m,
              { signed: false, zeroPoint: 3 },
              g.output({
                kind: "requant",
                method: "fp32",
                dtype: "uint8",
                scale: 0.01,
                zeroPoint: 5,
              }),
            ),
          );
          g.dispose();
        }
        const bin = PackedGemmBin.create(mod, { k, n, b: bf });
        outs.push(bin.run(af, m, makeBinOutput(mod, n, { kind: "i32" })));
        outs.push(bin.run(af, m, makeBinOutput(mod, n, { kind: "bits", alpha: 1 })));
        bin.dispose();
        return outs;
      };
      const ref = want(one);
      for (const mod of many) {
        want(mod).forEach((o, i) =>
          same(`${m}×${n}×${k} output ${i} at ${mod.threads}`, o, ref[i])
        );
      }
    }
    for (const m of many) m.dispose();
  });

  Deno.test(`convolutions split over 2 and 3 threads match one thread bit for bit (${build})`, async () => {
    const { one, many } = await modules(build);
    const r = rng(11);
    let ran = 0;
    while (ran < 24) {
      const k = [1, 3, 5, 7][randInt(r, 0, 3)];
      // cin ≤ 4 takes the direct f32 kernel (every build); 1×1 stride 1 the pointwise one.
      const cin = [1, 2, 3, 4, 8, 17, 33][randInt(r, 0, 6)];
      const groups = cin % 2 === 0 && r() < 0.3 ? 2 : 1;
      const cout = groups * [1, 5, 8, 9][randInt(r, 0, 3)];
      const h = randInt(r, 1, 17), w = randInt(r, 1, 19);
      const attrs: ConvAttrs = {
        strides: [randInt(r, 1, 2), randInt(r, 1, 2)],
        dilations: [randInt(r, 1, 2), 1],
        pads: [randInt(r, 0, k), randInt(r, 0, k), randInt(r, 0, k), randInt(r, 0, k)],
      };
      if (k === 1 && r() < 0.5) {
        attrs.strides = [1, 1];
        attrs.pads = [0, 0, 0, 0];
      }
      try {
        windowGeometry(h, w, { kernel: [k, k], ...attrs });
      } catch {
        continue;
      }
      ran++;
      const dims: Dims4 = [randInt(r, 1, 2), h, w, cin];
      const size = dims.reduce((a, b) => a * b);
      const x = Float32Array.from({ length: size }, () => r() * 2 - 1);
      const x8 = Uint8Array.from({ length: size }, () => randInt(r, 0, 255));
      const nw = cout * (cin / groups) * k * k;
      const wf = Float32Array.from({ length: nw }, () => r() * 2 - 1);
      const w8 = Int8Array.from({ length: nw }, () => randInt(r, -127, 127));
      const w7 = Int8Array.from({ length: nw }, () => randInt(r, -64, 63));
      const shape = { cout, cin, kh: k, kw: k, groups };
      const outs = (mod: KernelModule) => {
        const res: ArrayLike<number>[] = [];
        const f = PackedConvF32.create(mod, { ...shape, weights: wf });
        res.push(f.run(x, dims, attrs, { kind: "relu" }).data);
        f.dispose();
        for (const weights of [w8, w7]) {
          const q = PackedConvI8.create(mod, { ...shape, weights });
          res.push(
            q.run(x8, dims, { signed: false, zeroPoint: 100 }, q.output({ kind: "i32" }), attrs)
              .data,
          );
          q.dispose();
        }
        const b = PackedConvBin.create(mod, { ...shape, weights: wf });
        res.push(b.run(x, dims, makeBinOutput(mod, cout, { kind: "i32" }), attrs).data);
        b.dispose();
        return res;
      };
      const ref = outs(one);
      const what = JSON.stringify({ dims, shape, attrs });
      for (const mod of many) outs(mod).forEach((o, i) => same(`${what} ${i}`, o, ref[i]));
    }
    for (const m of many) m.dispose();
  });
}

for (const build of availableBuilds()) {
  Deno.test(`late layers (few pixels, many channels) split by output channels match one thread (${build})`, async () => {
    const { one, many } = await modules(build);
    const r = rng(13);
    const cases: [Dims4, number, number, ConvAttrs][] = [
      [[1, 7, 7, 64], 3, 80, { pads: [1, 1, 1, 1] }],
      [[1, 3, 5, 17], 3, 33, { strides: [2, 2], pads: [1, 0, 1, 2] }],
      [[2, 2, 3, 9], 1, 41, {}],
      [[1, 7, 7, 32], 1, 100, {}],
      [[1, 1, 1, 300], 1, 27, {}],
      [[1, 4, 4, 5], 2, 64, { dilations: [2, 1] }],
    ];
    for (const [dims, k, cout, attrs] of cases) {
      const size = dims.reduce((a, b) => a * b);
      const x = Float32Array.from({ length: size }, () => r() * 2 - 1);
      const weights = Float32Array.from({ length: cout * dims[3] * k * k }, () => r() * 2 - 1);
      const bias = Float32Array.from({ length: cout }, () => r() - 0.5);
      const shape = { cout, cin: dims[3], kh: k, kw: k, weights, bias };
      const run = (mod: KernelModule) => {
        const f = PackedConvF32.create(mod, shape);
        const out = f.run(x, dims, attrs, { kind: "relu" }).data;
        f.dispose();
        return out;
      };
      const ref = run(one);
      for (const mod of many) same(JSON.stringify({ dims, k, cout }), run(mod), ref);
    }
    for (const m of many) m.dispose();
  });
}

for (const build of availableBuilds()) {
  Deno.test(`depthwise convolutions and pools split by rows or images match one thread (${build})`, async () => {
    const { one, many } = await modules(build);
    const r = rng(12);
    let ran = 0;
    while (ran < 30) {
      const k = [1, 2, 3, 5][randInt(r, 0, 3)];
      const c = [1, 3, 4, 8, 9, 17][randInt(r, 0, 5)];
      const h = randInt(r, 1, 23), w = randInt(r, 1, 13);
      // Bottom pads up to 2k leave some windows wholly in the padding (ceilMode too).
      const attrs: WindowAttrs = {
        kernel: [k, k],
        strides: [randInt(r, 1, 3), randInt(r, 1, 2)],
        dilations: [randInt(r, 1, 2), 1],
        pads: [
          randInt(r, 0, k - 1),
          randInt(r, 0, k - 1),
          randInt(r, 0, k - 1),
          randInt(r, 0, k - 1),
        ],
        ceilMode: r() < 0.3,
      };
      let g;
      try {
        g = windowGeometry(h, w, attrs);
      } catch {
        continue;
      }
      ran++;
      const dims: Dims4 = [[1, 1, 2, 3][randInt(r, 0, 3)], h, w, c];
      const size = dims.reduce((a, b) => a * b);
      const x = Float32Array.from({ length: size }, () => r() * 2 - 1);
      const x8 = Uint8Array.from({ length: size }, () => randInt(r, 0, 255));
      const xs8 = Int8Array.from({ length: size }, () => randInt(r, -128, 127));
      const wf = Float32Array.from({ length: c * k * k }, () => r() * 2 - 1);
      const w8 = Int8Array.from({ length: c * k * k }, () => randInt(r, -127, 127));
      const { ceilMode: _, ...convAttrs } = attrs;
      const quant = { xScale: 0.02, xZero: 7, yScale: 0.03, yZero: 3 };
      const outs = (mod: KernelModule) => {
        const res: ArrayLike<number>[] = [];
        if (!attrs.ceilMode) {
          const f = PackedDepthwiseF32.create(mod, { c, kh: k, kw: k, weights: wf });
          res.push(f.run(x, dims, convAttrs, { kind: "relu6" }).data);
          f.dispose();
          const q = PackedDepthwiseI8.create(mod, { c, kh: k, kw: k, weights: w8 });
          res.push(
            q.run(x8, dims, convAttrs, { signed: false, zeroPoint: 9 }, { kind: "i32" }).data,
          );
          q.dispose();
        }
        res.push(maxPool2d(mod, x, dims, attrs).data);
        res.push(maxPool2d(mod, xs8, dims, attrs).data);
        for (const countIncludePad of [false, true]) {
          res.push(averagePool2d(mod, x, dims, { ...attrs, countIncludePad }).data);
          res.push(averagePool2d(mod, x8, dims, { ...attrs, countIncludePad, quant }).data);
        }
        return res;
      };
      const ref = outs(one);
      const what = JSON.stringify({ dims, attrs, outH: g.outH });
      for (const mod of many) outs(mod).forEach((o, i) => same(`${what} ${i}`, o, ref[i]));
    }
    for (const m of many) m.dispose();
  });
}

Deno.test("a kernel that traps on a worker thread throws a KernelError on the caller", async () => {
  const mod = await KernelModule.load("auto", { threads: 2, parallelMinMacs: 0 });
  await mod.threadsReady();
  const past = mod.memory.buffer.byteLength + (1 << 20);
  const call = (c: number) => ({
    fn: "sqz_f32_gemm" as const,
    args: [4, 8, 8, 0, 8, 0, c, 8, -Infinity, Infinity],
  });
  assert.throws(() => mod.parallel([call(1 << 16), call(past)]), KernelError);
  // The pool still works afterwards.
  mod.parallel([call(1 << 16), call(1 << 17)]);
  mod.dispose();
});

Deno.test("threads out of range are refused; without SharedArrayBuffer one thread runs, with a note", async () => {
  await assert.rejects(() => KernelModule.load("auto", { threads: 0 }), ArgumentError);
  await assert.rejects(() => KernelModule.load("auto", { threads: 1.5 }), ArgumentError);
  const g = globalThis as { SharedArrayBuffer?: unknown };
  const saved = g.SharedArrayBuffer;
  delete g.SharedArrayBuffer;
  try {
    const mod = await KernelModule.load("auto", { threads: 4 });
    assert.equal(mod.threads, 1);
    assert.match(mod.threadNote ?? "", /SharedArrayBuffer/);
  } finally {
    g.SharedArrayBuffer = saved;
  }
});

Deno.test("a session on 2 threads gives the 1-thread outputs bit for bit, and says so in info", async () => {
  const path = new URL("../models/mnist_cnn.onnx", import.meta.url).pathname;
  const one = await Session.create(path, { threads: 1 });
  const two = await Session.create(path, { threads: 2 });
  assert.deepEqual(one.info.threads, 1);
  assert.equal(two.info.threads, 2);
  await (two.kernels as KernelModule).threadsReady();
  const r = rng(3);
  const x = Float32Array.from({ length: 8 * 784 }, () => r());
  const feed = { [one.inputNames[0]]: { type: "float32" as const, dims: [8, 1, 28, 28], data: x } };
  const a = await one.run(feed), b = await two.run(feed);
  for (const k of Object.keys(a)) same(k, a[k].data as Float32Array, b[k].data as Float32Array);
  await one.release();
  await two.release();
  assert.equal(two.kernels.threads, 1);
});

Deno.test("setDefaultThreads sets the threads of sessions that name none, and checks its value", async () => {
  const path = new URL("../models/mnist_mlp.onnx", import.meta.url).pathname;
  setDefaultThreads(1);
  try {
    const s = await Session.create(path);
    assert.equal(s.info.threads, 1);
    await s.release();
    const two = await Session.create(path, { threads: 2 });
    assert.equal(two.info.threads, 2);
    await two.release();
  } finally {
    setDefaultThreads(undefined);
  }
  assert.throws(() => setDefaultThreads(0), ArgumentError);
  assert.throws(() => setDefaultThreads(2.5), ArgumentError);
});
