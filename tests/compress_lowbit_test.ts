// int4, ternary and binary compression: the encoders against independent recomputations
// (exact for the integer and bit forms), the decoders, and the passes on small models run end
// to end through Session.
import assert from "node:assert/strict";
import { ArgumentError, ModelError, Session, ShapeError } from "../src/mod.ts";
import { type AttrValue, type Graph, Node } from "../src/graph/ir.ts";
import type { Tensor } from "../src/graph/tensor.ts";
import { importModel } from "../src/onnx/import.ts";
import {
  type AttrValue as ProtoAttr,
  DataType,
  makeModel,
  node,
  tensorFromArray,
  valueInfo,
} from "../src/onnx/proto.ts";
import { jsContext } from "../src/ops/types.ts";
import { roundHalfEven } from "../src/ops/quant.ts";
import { SQZ_LOWBIT_OPS, weightView } from "../src/ops/sqz_lowbit.ts";
import { parseRecipe, type Recipe } from "../src/compress/recipe.ts";
import { encodeInt4, int4Pass } from "../src/compress/int4.ts";
import { encodeTernary, ternaryPass } from "../src/compress/ternary.ts";
import { binaryKeptLayers, binaryPass, encodeBinary } from "../src/compress/binary.ts";
import { rng } from "./util.ts";

// ── helpers ─────────────────────────────────────────────────────────────────────────────────

function gauss(r: () => number, n: number, std = 1): Float32Array {
  return Float32Array.from({ length: n }, () => {
    const u = Math.max(r(), 1e-12), v = r();
    return std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  });
}

/** Runs an ai.sqz op on JS tensors. */
function runOp(op: string, inputs: (Tensor | undefined)[], attrs: Record<string, AttrValue>) {
  const n = new Node("t", op.split(".").pop()!, "ai.sqz", [], [], attrs);
  return SQZ_LOWBIT_OPS[op](inputs, jsContext(n, 1))[0];
}

const f32 = (dims: number[], data: Float32Array): Tensor => ({ type: "float32", dims, data });
const u8 = (dims: number[], data: Uint8Array): Tensor => ({ type: "uint8", dims, data });

const DT: Record<string, number> = {
  float32: DataType.FLOAT,
  uint8: DataType.UINT8,
  int8: DataType.INT8,
  int32: DataType.INT32,
  int64: DataType.INT64,
};

/** Graph → ONNX bytes (what the compress CLI's writer does), enough for these models. */
function exportGraph(g: Graph): Uint8Array {
  const read = new Set(g.nodes.flatMap((n) => n.inputs).filter((v) => v));
  for (const v of g.outputs) read.add(v);
  const initializers = [...read].filter((v) => v!.constant).map((v) => {
    const t = v!.constant!;
    return tensorFromArray(v!.name, DT[t.type], t.dims, t.data as Float32Array);
  });
  const vi = (v: { name: string; type?: string; shape?: (number | string)[] }) =>
    valueInfo(v.name, DT[v.type ?? "float32"], v.shape ?? []);
  return makeModel({
    nodes: g.nodes.map((n) =>
      node(
        n.op,
        n.inputs.map((v) => v?.name ?? ""),
        n.outputs.map((v) => v.name),
        n.attrs as Record<string, ProtoAttr>,
        n.name,
        n.domain || undefined,
      )
    ),
    inputs: g.inputs.map(vi),
    outputs: g.outputs.map(vi),
    initializers,
    opset: g.opsets.get("") ?? 17,
    extraOpsets: [...g.opsets].filter(([d]) => d !== "" && d !== "ai.onnx").map((
      [domain, version],
    ) => ({ domain, version })),
  });
}

/**
 * A small MLP: Gemm (transB) → act → MatMul + Add → act → Gemm (C), 10 logits. Binary layers get
 * Tanh: after a Relu every sign is +1.
 */
function mlp(seed: number, act = "Relu", dims = [64, 128, 96, 10]) {
  const r = rng(seed);
  const [d0, d1, d2, d3] = dims;
  const w1 = gauss(r, d1 * d0, 1 / Math.sqrt(d0)), b1 = gauss(r, d1, 0.1);
  const w2 = gauss(r, d1 * d2, 1 / Math.sqrt(d1)), b2 = gauss(r, d2, 0.1);
  const w3 = gauss(r, d2 * d3, 1 / Math.sqrt(d2)), b3 = gauss(r, d3, 0.1);
  const bytes = makeModel({
    nodes: [
      node("Gemm", ["x", "w1", "b1"], ["h1"], { transB: 1 }, "fc1"),
      node(act, ["h1"], ["a1"], {}, "act1"),
      node("MatMul", ["a1", "w2"], ["m2"], {}, "fc2"),
      node("Add", ["m2", "b2"], ["h2"], {}, "add2"),
      node(act, ["h2"], ["a2"], {}, "act2"),
      node("Gemm", ["a2", "w3", "b3"], ["y"], {}, "fc3"),
    ],
    inputs: [valueInfo("x", DataType.FLOAT, ["batch", d0])],
    outputs: [valueInfo("y", DataType.FLOAT, ["batch", d3])],
    initializers: [
      tensorFromArray("w1", DataType.FLOAT, [d1, d0], w1),
      tensorFromArray("b1", DataType.FLOAT, [d1], b1),
      tensorFromArray("w2", DataType.FLOAT, [d1, d2], w2),
      tensorFromArray("b2", DataType.FLOAT, [d2], b2),
      tensorFromArray("w3", DataType.FLOAT, [d2, d3], w3),
      tensorFromArray("b3", DataType.FLOAT, [d3], b3),
    ],
    opset: 13,
  });
  return { bytes, w1, b1, w2, b2, w3, b3, dims };
}

/** A small CNN: 3 Convs (the middle one strided, padded) → Flatten → Gemm. */
function cnn(seed: number, act = "Relu") {
  const r = rng(seed);
  const w1 = gauss(r, 8 * 3 * 9, 0.3), w2 = gauss(r, 13 * 8 * 9, 0.15), b2 = gauss(r, 13, 0.1);
  const w3 = gauss(r, 16 * 13, 0.2), w4 = gauss(r, 5 * 16 * 16, 0.05);
  const bytes = makeModel({
    nodes: [
      node("Conv", ["x", "w1"], ["c1"], { pads: [1, 1, 1, 1] }, "conv1"),
      node(act, ["c1"], ["r1"], {}, "act1"),
      node("Conv", ["r1", "w2", "b2"], ["c2"], { pads: [1, 1, 1, 1], strides: [2, 2] }, "conv2"),
      node(act, ["c2"], ["r2"], {}, "act2"),
      node("Conv", ["r2", "w3"], ["c3"], {}, "conv3"),
      node("Flatten", ["c3"], ["f"], {}, "flatten"),
      node("Gemm", ["f", "w4"], ["y"], { transB: 1 }, "fc"),
    ],
    inputs: [valueInfo("x", DataType.FLOAT, [2, 3, 8, 8])],
    outputs: [valueInfo("y", DataType.FLOAT, [2, 5])],
    initializers: [
      tensorFromArray("w1", DataType.FLOAT, [8, 3, 3, 3], w1),
      tensorFromArray("w2", DataType.FLOAT, [13, 8, 3, 3], w2),
      tensorFromArray("b2", DataType.FLOAT, [13], b2),
      tensorFromArray("w3", DataType.FLOAT, [16, 13, 1, 1], w3),
      tensorFromArray("w4", DataType.FLOAT, [5, 256], w4),
    ],
    opset: 13,
  });
  return { bytes };
}

async function runModel(bytes: Uint8Array, feeds: Record<string, Tensor>, opts = {}) {
  const s = await Session.create(bytes, opts);
  try {
    return { out: await s.run(feeds), ops: s.graph.nodes.map((n) => n.qualifiedOp) };
  } finally {
    await s.release();
  }
}

function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

/** The dense weight a compressed graph decodes `name` to (decoder run on its constants). */
function decodedWeight(g: Graph, name: string): Float32Array {
  const v = g.values.get(name)!;
  const p = v.producer!;
  return SQZ_LOWBIT_OPS[p.qualifiedOp](p.inputs.map((i) => i?.constant), jsContext(p, 1))[0]
    .data as Float32Array;
}

// ── int4 ────────────────────────────────────────────────────────────────────────────────────

Deno.test("int4 encoding: packed integers exact, |W − decode| ≤ d/2, padding holds the zero point", () => {
  const r = rng(1);
  const cases: [number[], 0 | 1][] = [
    [[16, 100], 1],
    [[100, 16], 0],
    [[7, 3, 3, 3], 1],
    [[5, 129], 1],
    [[257, 3], 0],
    [[2, 32], 1],
  ];
  for (const [shape, axis] of cases) {
    for (const bs of [32, 64, 128]) {
      for (const symmetric of [true, false]) {
        const view = weightView(shape, axis);
        const w = gauss(r, view.rows * view.k, 0.5);
        // Some all-zero and all-positive blocks too.
        w.fill(0, 0, Math.min(w.length, 40));
        for (let i = 40; i < Math.min(w.length, 80); i++) w[i] = Math.abs(w[i]);
        const q = encodeInt4(w, view, bs, symmetric);
        const nb = Math.ceil(view.k / bs);
        assert.equal(q.packed.length, view.rows * nb * bs / 2);
        assert.equal(q.scales.length, view.rows * nb);
        assert.equal(q.zeroPoints?.length, symmetric ? undefined : Math.ceil(view.rows * nb / 2));
        const nib = (a: Uint8Array, i: number) => (a[i >> 1] >> (4 * (i & 1))) & 15;
        const attrs = { shape, axis, block_size: bs };
        const ins = [
          u8([view.rows, nb * bs / 2], q.packed),
          f32([view.rows, nb], q.scales),
          q.zeroPoints && u8([q.zeroPoints.length], q.zeroPoints),
        ];
        const dec = runOp("ai.sqz.DequantizeInt4", ins, attrs);
        assert.deepEqual(dec.dims, shape);
        for (let row = 0; row < view.rows; row++) {
          for (let j = 0; j < nb; j++) {
            const b = row * nb + j;
            const vals: number[] = [];
            for (let i = 0; i < bs && j * bs + i < view.k; i++) {
              vals.push(w[row * view.rowStride + (j * bs + i) * view.kStride]);
            }
            // Scale and zero point recomputed from the block.
            const lo = Math.min(0, ...vals), hi = Math.max(0, ...vals);
            const d = Math.fround(symmetric ? Math.max(-lo, hi) / 7 : (hi - lo) / 15);
            assert.equal(q.scales[b], d);
            const zp = symmetric
              ? 8
              : d > 0
              ? Math.min(15, Math.max(0, roundHalfEven(-lo / d)))
              : 0;
            if (!symmetric) assert.equal(nib(q.zeroPoints!, b), zp);
            for (let i = 0; i < bs; i++) {
              const got = nib(q.packed, b * bs + i);
              if (i >= vals.length) {
                assert.equal(got, zp, "padding");
                continue;
              }
              const want = d > 0
                ? Math.min(15, Math.max(symmetric ? 1 : 0, roundHalfEven(vals[i] / d) + zp))
                : zp;
              assert.equal(got, want);
              const at = row * view.rowStride + (j * bs + i) * view.kStride;
              assert.equal(dec.data[at], Math.fround((got - zp) * d));
              const err = Math.abs(w[at] - (dec.data[at] as number));
              assert.ok(
                err <= d / 2 * (1 + 1e-6) + 1e-7 * Math.abs(w[at]),
                `err ${err} > ${d / 2}`,
              );
            }
          }
        }
      }
    }
  }
});

Deno.test("int4 rounds half to even and keeps 0 exact", () => {
  const view = weightView([1, 6], 1);
  const w = Float32Array.of(7, 2.5, 3.5, -2.5, -0.5, 0);
  const q = encodeInt4(w, view, 32, true);
  assert.equal(q.scales[0], 1);
  const nibs = Array.from({ length: 6 }, (_, i) => ((q.packed[i >> 1] >> (4 * (i & 1))) & 15) - 8);
  assert.deepEqual(nibs, [7, 2, 4, -2, 0, 0]);
  // Two values per byte, low nibble first: 7+8 = 15 low, 2+8 = 10 high.
  assert.equal(q.packed[0], 15 | (10 << 4));
  const a = encodeInt4(Float32Array.of(1, 2, 3, 4), weightView([1, 4], 1), 32, false);
  const dec = runOp("ai.sqz.DequantizeInt4", [
    u8([1, 16], a.packed),
    f32([1, 1], a.scales),
    u8([1], a.zeroPoints!),
  ], { shape: [1, 4], axis: 1, block_size: 32 });
  assert.equal(a.zeroPoints![0] & 15, 0, "min 0 → zero point 0");
  assert.ok(Math.abs((dec.data[3] as number) - 4) < 1e-6);
});

Deno.test("int4 pass: an MLP runs on the f32 kernels after folding, outputs close to float", async () => {
  const m = mlp(2);
  const r = rng(3);
  const x = f32([16, 64], gauss(r, 16 * 64));
  const float = await runModel(m.bytes, { x });
  for (const [bs, symmetric] of [[32, true], [64, false], [128, true]] as const) {
    const g = importModel(m.bytes);
    const res = int4Pass(g, parseRecipe({ method: "int4", int4: { blockSize: bs, symmetric } }));
    assert.deepEqual(res.layers.map((l) => [l.name, l.method]), [
      ["fc1", "int4"],
      ["fc2", "int4"],
      ["fc3", "int4"],
    ]);
    const fc1 = res.layers[0];
    assert.equal(fc1.params, 128 * 64);
    const nb = Math.ceil(64 / bs);
    assert.equal(fc1.bytesAfter, 128 * nb * (bs / 2) + 128 * nb * 4 + (symmetric ? 0 : 64 * nb));
    assert.equal(g.nodes.filter((n) => n.op === "DequantizeInt4").length, 3);
    // The decoded weights: the reference for the compressed model's output.
    const wd = ["w1", "w2", "w3"].map((n) => decodedWeight(g, n));
    const bytes = exportGraph(g);
    // int4: "float": folded at load, no decoder left, the layers on the f32 kernels.
    const s = await Session.create(bytes, { profile: true, int4: "float" });
    assert.ok(!s.graph.nodes.some((n) => n.op === "DequantizeInt4"));
    assert.ok(!s.graph.nodes.some((n) => n.op === "MatMulNBits"));
    const { y } = await s.run({ x });
    assert.ok(
      s.profile.filter((p) => ["Gemm", "MatMul"].includes(p.op)).every((p) => p.impl === "wasm"),
    );
    await s.release();
    const ref = mlp(2);
    const deq = makeModel({
      nodes: [
        node("Gemm", ["x", "w1", "b1"], ["h1"], { transB: 1 }),
        node("Relu", ["h1"], ["a1"]),
        node("MatMul", ["a1", "w2"], ["m2"]),
        node("Add", ["m2", "b2"], ["h2"]),
        node("Relu", ["h2"], ["a2"]),
        node("Gemm", ["a2", "w3", "b3"], ["y"]),
      ],
      inputs: [valueInfo("x", DataType.FLOAT, ["batch", 64])],
      outputs: [valueInfo("y", DataType.FLOAT, ["batch", 10])],
      initializers: [
        tensorFromArray("w1", DataType.FLOAT, [128, 64], wd[0]),
        tensorFromArray("b1", DataType.FLOAT, [128], ref.b1),
        tensorFromArray("w2", DataType.FLOAT, [128, 96], wd[1]),
        tensorFromArray("b2", DataType.FLOAT, [96], ref.b2),
        tensorFromArray("w3", DataType.FLOAT, [96, 10], wd[2]),
        tensorFromArray("b3", DataType.FLOAT, [10], ref.b3),
      ],
      opset: 13,
    });
    const want = (await runModel(deq, { x })).out.y.data as Float32Array;
    const got = y.data as Float32Array;
    for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-5);
    // The default keeps the weights at 4 bits: every layer lowered to MatMulNBits on the Q4
    // kernel, activations quantized to int8 blocks (a ~0.5% error beside int4's ~10%).
    const packed = await Session.create(bytes, { profile: true });
    const yq = (await packed.run({ x })).y.data as Float32Array;
    assert.deepEqual(
      packed.profile.map((p) => `${p.op}:${p.impl}`).filter((o) => o.startsWith("MatMulNBits")),
      ["MatMulNBits:wasm", "MatMulNBits:wasm", "MatMulNBits:wasm"],
    );
    const floatSession = await Session.create(m.bytes);
    await floatSession.run({ x });
    const ratio = packed.memory.weights / floatSession.memory.weights;
    await packed.release();
    await floatSession.release();
    assert.ok(relErr(yq, want) < 0.02, `packed vs decoded: ${relErr(yq, want)}`);
    // 64-value rows: 2 blocks of 152 bytes per 8 columns plus bias; f32 biases stay.
    assert.ok(ratio < 0.25, `resident weights ${ratio} of float`);
    const e = relErr(got, float.out.y.data as Float32Array);
    // 4-bit max-scaled blocks of Gaussian weights: ~10% RMS weight error per layer, three layers.
    assert.ok(e < 0.3, `int4 ${bs}/${symmetric}: relative output error ${e}`);
  }
});

Deno.test("int4 pass on convolutions; layer overrides and shared weights", async () => {
  const m = cnn(4);
  const g = importModel(m.bytes);
  const recipe = parseRecipe({ method: "int4", layers: { conv3: { method: "none" } } });
  const res = int4Pass(g, recipe);
  assert.deepEqual(res.layers.map((l) => l.name), ["conv1", "conv2", "fc"]);
  // conv1 W [8, 3, 3, 3]: K = 27 → one block of 32 per output channel.
  assert.equal(res.layers[0].bytesAfter, 8 * 16 + 8 * 4);
  const x = f32([2, 3, 8, 8], gauss(rng(5), 2 * 3 * 64));
  const float = (await runModel(m.bytes, { x })).out.y.data as Float32Array;
  const { out } = await runModel(exportGraph(g), { x });
  assert.ok(relErr(out.y.data as Float32Array, float) < 0.3);

  // Two MatMuls reading one weight: one decoder serves both.
  const w = gauss(rng(6), 32 * 8);
  const tied = importModel(makeModel({
    nodes: [
      node("MatMul", ["x", "w"], ["a"], {}, "m1"),
      node("MatMul", ["x", "w"], ["b"], {}, "m2"),
    ],
    inputs: [valueInfo("x", DataType.FLOAT, [2, 32])],
    outputs: [valueInfo("a", DataType.FLOAT, [2, 8]), valueInfo("b", DataType.FLOAT, [2, 8])],
    initializers: [tensorFromArray("w", DataType.FLOAT, [32, 8], w)],
  }));
  const tr = int4Pass(tied, parseRecipe("int4"));
  assert.equal(tr.layers.length, 2);
  assert.equal(tied.nodes.filter((n) => n.op === "DequantizeInt4").length, 1);
  const xs = f32([2, 32], gauss(rng(7), 64));
  const o = (await runModel(exportGraph(tied), { x: xs })).out;
  assert.deepEqual(o.a.data, o.b.data);
});

// ── ternary ─────────────────────────────────────────────────────────────────────────────────

Deno.test("ternary encoding: TWN threshold, α, 2-bit codes LSB first", () => {
  // mean|w| = 5.3 / 5 = 1.06, Δ = 0.742: keeps 1, −1, −3; α = 5/3.
  const w = Float32Array.of(1, -1, 0.1, 0.2, -3);
  const t = encodeTernary(w, weightView([1, 5], 1));
  assert.deepEqual([...t.codes], [0b00_00_11_01, 0b11]);
  assert.equal(t.alpha[0], Math.fround(5 / 3));
  assert.equal(t.nonzeros, 3);
  const dec = runOp("ai.sqz.DequantizeTernary", [u8([1, 2], t.codes), f32([1], t.alpha)], {
    shape: [1, 5],
    axis: 1,
  });
  const a = Math.fround(5 / 3);
  assert.deepEqual([...dec.data], [a, -a, 0, 0, -a]);

  const r = rng(8);
  for (const [shape, axis] of [[[9, 7, 3, 3], 1], [[50, 13], 0], [[13, 50], 1]] as const) {
    const view = weightView([...shape], axis);
    const wr = gauss(r, view.rows * view.k);
    wr.fill(0, 0, view.rowStride === 1 ? 0 : view.k); // an all-zero channel when rows are contiguous
    const e = encodeTernary(wr, view);
    const rb = Math.ceil(view.k / 4);
    const d = runOp("ai.sqz.DequantizeTernary", [
      u8([view.rows, rb], e.codes),
      f32([view.rows], e.alpha),
    ], {
      shape: [...shape],
      axis,
    }).data as Float32Array;
    for (let row = 0; row < view.rows; row++) {
      const vals = Array.from(
        { length: view.k },
        (_, k) => wr[row * view.rowStride + k * view.kStride],
      );
      const delta = 0.7 * vals.reduce((s, v) => s + Math.abs(v), 0) / view.k;
      const kept = vals.filter((v) => Math.abs(v) > delta);
      const alpha = Math.fround(
        kept.length ? kept.reduce((s, v) => s + Math.abs(v), 0) / kept.length : 0,
      );
      assert.equal(e.alpha[row], alpha);
      vals.forEach((v, k) => {
        const code = (e.codes[row * rb + (k >> 2)] >> (2 * (k & 3))) & 3;
        assert.equal(code, v > delta ? 1 : v < -delta ? 3 : 0);
        const want = v > delta ? alpha : v < -delta ? -alpha : 0;
        assert.equal(d[row * view.rowStride + k * view.kStride], want);
      });
    }
  }
});

Deno.test("ternary pass: runs through Session and reports sparsity", async () => {
  const m = mlp(9);
  const g = importModel(m.bytes);
  const res = ternaryPass(g, parseRecipe("ternary"));
  assert.equal(res.layers.length, 3);
  for (const l of res.layers) {
    assert.equal(l.method, "ternary");
    assert.ok(l.nonzeros > 0 && l.nonzeros < l.params);
  }
  // fc1 [128, 64]: 16 bytes of codes + 4 bytes of α per channel.
  assert.equal(res.layers[0].bytesAfter, 128 * 16 + 128 * 4);
  const x = f32([8, 64], gauss(rng(10), 8 * 64));
  const bytes = exportGraph(g);
  const { out, ops } = await runModel(bytes, { x });
  const float = (await runModel(m.bytes, { x })).out.y.data as Float32Array;
  const e = relErr(out.y.data as Float32Array, float);
  assert.ok(Number.isFinite(e) && e < 0.8, `ternary relative error ${e}`);
  // The layers run on the Q4 kernel (codes t + 8, scale α): the same as the f32 decode up to
  // the int8 activation blocks.
  assert.equal(ops.filter((o) => o === "com.microsoft.MatMulNBits").length, 3, ops.join(" "));
  const decoded = await runModel(bytes, { x }, { int4: "float" });
  assert.ok(!decoded.ops.includes("com.microsoft.MatMulNBits"));
  const d = relErr(out.y.data as Float32Array, decoded.out.y.data as Float32Array);
  assert.ok(d < 0.02, `packed ternary vs decoded ${d}`);
});

// ── binary ──────────────────────────────────────────────────────────────────────────────────

Deno.test("binary encoding: sign bits LSB first (1 = negative, sign(0) = +1), α = mean|W|", () => {
  const w = Float32Array.of(1, -2, 0, -0, 3, -4, 5, -6, 7, -0.5); // one row, K = 10
  const e = encodeBinary(w, weightView([1, 10], 1));
  assert.deepEqual([...e.bits], [0b1010_0010, 0b10]);
  assert.equal(e.alpha[0], Math.fround(28.5 / 10));
  // Conv: K in (ky, kx, ci) order.
  const r = rng(11);
  const [co, cg, kh, kw] = [3, 5, 2, 3];
  const wc = gauss(r, co * cg * kh * kw);
  const c = encodeBinary(wc, weightView([co, cg, kh, kw], 1), true);
  const k = cg * kh * kw, rb = Math.ceil(k / 8);
  for (let o = 0; o < co; o++) {
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++) {
        for (let ci = 0; ci < cg; ci++) {
          const bit = (ky * kw + kx) * cg + ci;
          const set = (c.bits[o * rb + (bit >> 3)] >> (bit & 7)) & 1;
          assert.equal(set, wc[((o * cg + ci) * kh + ky) * kw + kx] < 0 ? 1 : 0);
        }
      }
    }
  }
  // MatMul B [K, N]: row n is column n.
  const wm = gauss(r, 20 * 3);
  const mm = encodeBinary(wm, weightView([20, 3], 0));
  for (let n = 0; n < 3; n++) {
    for (let kk = 0; kk < 20; kk++) {
      assert.equal((mm.bits[n * 3 + (kk >> 3)] >> (kk & 7)) & 1, wm[kk * 3 + n] < 0 ? 1 : 0);
    }
  }
});

/** sign-binarized dense layer, the XNOR-Net formula in plain f64 (checks the pass end to end). */
function binaryDense(
  x: Float32Array,
  m: number,
  k: number,
  w: (kk: number, j: number) => number,
  n: number,
) {
  const y = new Float64Array(m * n);
  for (let j = 0; j < n; j++) {
    let a = 0;
    for (let kk = 0; kk < k; kk++) a += Math.abs(w(kk, j));
    const alpha = Math.fround(a / k);
    for (let i = 0; i < m; i++) {
      let acc = 0;
      for (let kk = 0; kk < k; kk++) acc += (x[i * k + kk] < 0 ? -1 : 1) * (w(kk, j) < 0 ? -1 : 1);
      y[i * n + j] = acc * alpha;
    }
  }
  return y;
}

Deno.test("binary pass: the MLP's middle layer binarized, first/last kept; output matches XNOR-Net", async () => {
  const m = mlp(12, "Tanh");
  const g = importModel(m.bytes);
  const recipe = parseRecipe("binary");
  assert.deepEqual(binaryKeptLayers(g, recipe), ["fc1", "fc3"]);
  const res = binaryPass(g, recipe);
  assert.deepEqual(res.layers.map((l) => l.name), ["fc2"]);
  assert.equal(res.layers[0].bytesBefore, 128 * 96 * 4);
  assert.equal(res.layers[0].bytesAfter, 96 * 16 + 96 * 4);
  assert.ok(res.notes.some((n) => n.includes("'fc1'") && n.includes("'fc3'")));
  assert.deepEqual(g.nodes.map((n) => n.qualifiedOp), [
    "Gemm",
    "Tanh",
    "ai.sqz.BinaryGemm",
    "Add",
    "Tanh",
    "Gemm",
  ]);
  assert.ok(!g.values.has("w2"), "the float weight is gone");
  const x = f32([4, 64], gauss(rng(13), 4 * 64));
  const bytes = exportGraph(g);
  const s = await Session.create(bytes, { extraOutputs: ["a1", "m2"], profile: true });
  const out = await s.run({ x });
  assert.equal(s.profile.find((p) => p.op === "BinaryGemm")?.impl, "wasm");
  await s.release();
  const a1 = out.a1.data as Float32Array;
  const want = binaryDense(a1, 4, 128, (kk, j) => m.w2[kk * 96 + j], 96);
  const got = out.m2.data as Float32Array;
  for (let i = 0; i < got.length; i++) assert.equal(got[i], Math.fround(want[i]));

  // keepFirstLast: false binarizes all three (fc1's Gemm transB and fc3's C as bias).
  const g2 = importModel(m.bytes);
  const all = binaryPass(g2, parseRecipe({ method: "binary", binary: { keepFirstLast: false } }));
  assert.equal(all.layers.length, 3);
  const o2 = await runModel(exportGraph(g2), { x }, { extraOutputs: ["h1"] });
  const h1 = o2.out.h1.data as Float32Array;
  const w1 = binaryDense(x.data as Float32Array, 4, 64, (kk, j) => m.w1[j * 64 + kk], 128);
  for (let i = 0; i < h1.length; i++) {
    assert.equal(h1[i], Math.fround(Math.fround(w1[i]) + m.b1[i % 128]));
  }
  const float = (await runModel(m.bytes, { x })).out.y.data as Float32Array;
  // Honest expectation: without retraining binarization costs accuracy; just finite here.
  assert.ok(Number.isFinite(relErr(o2.out.y.data as Float32Array, float)));
});

Deno.test("binary pass on a CNN: BinaryConv on the kernels, same result with optimize off", async () => {
  const m = cnn(14, "Tanh");
  const g = importModel(m.bytes);
  const res = binaryPass(g, parseRecipe("binary"));
  assert.deepEqual(res.layers.map((l) => l.name), ["conv2", "conv3"]);
  assert.ok(res.layers[0].notes!.some((n) => n.includes("+1")));
  // conv2 W [13, 8, 3, 3]: 72 bits = 9 bytes per channel, + α.
  assert.equal(res.layers[0].bytesAfter, 13 * 9 + 13 * 4);
  const bytes = exportGraph(g);
  const x = f32([2, 3, 8, 8], gauss(rng(15), 2 * 3 * 64));
  const s = await Session.create(bytes, { profile: true });
  const a = (await s.run({ x })).y.data as Float32Array;
  assert.ok(s.profile.filter((p) => p.op === "BinaryConv").every((p) => p.impl === "wasm"));
  await s.release();
  const b = (await runModel(bytes, { x }, { optimize: false })).out.y.data as Float32Array;
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i] - b[i]) <= 1e-5 * (1 + Math.abs(b[i])));
  }
});

// ── errors ──────────────────────────────────────────────────────────────────────────────────

Deno.test("bad recipes and malformed low-bit tensors are typed errors", () => {
  const g = importModel(mlp(16).bytes);
  const bad = {
    ...parseRecipe("int4"),
    int4: { blockSize: 16, symmetric: true },
  } as unknown as Recipe;
  assert.throws(() => int4Pass(g, bad), ArgumentError);
  const bad2 = { ...parseRecipe("binary"), binary: {} } as unknown as Recipe;
  assert.throws(() => binaryPass(g, bad2), ArgumentError);
  assert.throws(() => ternaryPass({} as Graph, parseRecipe("ternary")), ArgumentError);
  assert.throws(() => parseRecipe({ int4: { blockSize: 48 } }), ArgumentError);
  assert.throws(
    () => encodeInt4(Float32Array.of(NaN), weightView([1, 1], 1), 32, true),
    ArgumentError,
  );
  assert.throws(() => weightView([2, 0], 1), ShapeError);

  // Decoders: sizes, dtypes, invalid codes, missing attributes.
  const attrs = { shape: [2, 40], axis: 1, block_size: 32 };
  const ok = [u8([2, 32], new Uint8Array(64)), f32([2, 2], new Float32Array(4))];
  assert.equal(runOp("ai.sqz.DequantizeInt4", ok, attrs).data.length, 80);
  assert.throws(
    () => runOp("ai.sqz.DequantizeInt4", [u8([63], new Uint8Array(63)), ok[1]], attrs),
    ModelError,
  );
  assert.throws(
    () => runOp("ai.sqz.DequantizeInt4", [ok[0], u8([4], new Uint8Array(4))], attrs),
    ModelError,
  );
  assert.throws(() => runOp("ai.sqz.DequantizeInt4", ok, { shape: [2, 40], axis: 1 }), ModelError);
  assert.throws(() => runOp("ai.sqz.DequantizeInt4", ok, { ...attrs, block_size: 31 }), ModelError);
  assert.throws(() => runOp("ai.sqz.DequantizeInt4", ok, { ...attrs, axis: 2 }), ModelError);
  const t = { shape: [1, 5], axis: 1 };
  assert.throws(
    () =>
      runOp("ai.sqz.DequantizeTernary", [
        u8([1, 2], Uint8Array.of(0b10, 0)),
        f32([1], Float32Array.of(1)),
      ], t),
    (e) => e instanceof ModelError && /code 10/.test(e.message),
  );
  assert.throws(
    () =>
      runOp("ai.sqz.DequantizeTernary", [
        u8([1, 2], Uint8Array.of(0, 0b0100)),
        f32([1], Float32Array.of(1)),
      ], t),
    (e) => e instanceof ModelError && /past K/.test(e.message),
  );
});

Deno.test("compressed models reject bad feeds with typed errors", async () => {
  const g = importModel(mlp(17).bytes);
  binaryPass(g, parseRecipe("binary"));
  const s = await Session.create(exportGraph(g));
  await assert.rejects(() => s.run({ x: f32([2, 63], new Float32Array(126)) }), ShapeError);
  await s.release();
});
