// Compression of transformer encoders (bench/transformer_zoo.ts: torch, bert, vit and seq
// styles, 2 layers, d 64, 4 heads, ff 256, random weights): int8 dynamic, int8 static
// (calibrated), int4 in sqz's format and int4 as onnxruntime's com.microsoft.MatMulNBits. Every
// artifact runs in sqz; the ones in standard ONNX (or ORT's contrib op) run in onnxruntime-web
// too, on the same feeds (batch 2; bert's second row padded).
//
// Tolerances (max over the output; "scale" = max|float output|):
//   sqz vs onnxruntime-web, same artifact. MatMulNBits: ≤ 1e-4·scale + 1e-5, both dequantize
//     the same codes and only f32 summation order differs (observed ≤ 2e-6). int8: the same
//     integer arithmetic, but a float that lands within an ulp of a rounding boundary may be
//     quantized one step apart (sqz follows the ONNX reference, x / scale then round half to
//     even; the f32 sums before it differ in order), and that step travels on: max ≤
//     3e-3·scale + 1e-5 (torch dynamic: 1.5e-3·scale, from one element of one activation),
//     relative RMS ≤ 1e-3; most feeds give ≤ 1e-6.
//   compressed vs float, relative RMS error ‖q − f‖ / ‖f‖: int8 dynamic ≤ 0.03 (observed
//     ≤ 0.018), static ≤ 0.045 (observed ≤ 0.031, vit: its activations' ranges are fixed by
//     16 calibration images), int4 ≤ 0.35 (observed 0.07–0.09 on the hidden states torch and
//     bert return, 0.22–0.26 on the 10 logits of seq and vit, which are small next to the
//     error of 4-bit weights: 15 levels per block of 32, relative RMS weight error ≈ 0.07).
//   MNIST rows (the seq model fed the first 500 held-out digits of mnistSplit(0), each image's
//     28 rows as tokens, one digit per run for dynamic int8): top-1 agreement with the float
//     model ≥ 99% for int8 dynamic (measured 99.4%), ≥ 98% for static (98.8%), ≥ 80% for int4
//     (86.4%). Random weights leave the float logits' top-2 margins tiny (1% of the digits
//     within 0.004 of a tie, logits up to 2), so a per-class shift of a few thousandths moves
//     digits: on all 2,000 held-out digits dynamic int8 agrees on 98.75% (one digit per run)
//     to 98.45% (one run), most of the loss from rounding the 10×64 head's weights.
//   MNIST rows, trained (models/mnist_transformer.onnx: the same seq graph trained by sqz's
//     engine, scripts/train_mnist_transformer.ts), all 2,000 held-out digits: float accuracy
//     97.20% (asserted within a point); int8 dynamic (one digit per run) agrees on 99.90% at
//     97.20%, int8 static (calibrated on 128 training digits) on 99.95% at 97.15%; asserted
//     ≥ 99% agreement and ≤ 1 point of accuracy lost. Trained margins are wide, so the near-ties
//     that limit the random-weight model above are rare. ORT runs the float file within
//     1e-4·scale of sqz.
import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import { ArgumentError, compress, parseRecipe, Session } from "../src/mod.ts";
import type { Tensor } from "../src/graph/tensor.ts";
import { initOrt } from "../bench/baselines/ort.ts";
import {
  encoderFeeds,
  type EncoderModel,
  encoderModel,
  type EncoderSpec,
} from "../bench/transformer_zoo.ts";
import { mnistSplit } from "../src/eval/mnist.ts";
import { TS_OPS } from "../src/ops/registry.ts";
import { jsContext } from "../src/ops/types.ts";
import { Node, Value } from "../src/graph/ir.ts";
import { importModel } from "../src/onnx/import.ts";
import { DataType, makeModel, node, tensorFromArray, valueInfo } from "../src/onnx/proto.ts";

type Style = EncoderSpec["style"];
const STYLES: Style[] = ["torch", "bert", "vit", "seq"];
const SEQ: Record<Style, number> = { torch: 28, bert: 16, vit: 17, seq: 28 };
const spec = (style: Style): EncoderSpec => ({
  style,
  layers: 2,
  d: 64,
  heads: 4,
  ff: 256,
  seq: SEQ[style],
});
/** Layers with a constant weight (MatMul / Gemm, vit's patch Conv): attention's stay float. */
const LAYERS: Record<Style, number> = { torch: 8, bert: 12, vit: 14, seq: 14 };

type Feeds = ReturnType<typeof encoderFeeds>;

async function runSqz(
  bytes: Uint8Array,
  feeds: Feeds,
  output = "output",
  int4: "packed" | "float" = "packed",
) {
  const s = await Session.create(bytes, { profile: true, int4 });
  try {
    const out = (await s.run(feeds as Record<string, Tensor>))[output];
    // Float MatMul / Gemm nodes with a constant weight, as the engine runs the model.
    const floatLayers = s.graph.nodes.filter((n) =>
      (n.op === "MatMul" || n.op === "Gemm") && !n.domain && n.inputs[1]?.constant
    ).length;
    const impls = s.profile.map((p) =>
      `${p.op}:${p.impl}`
    );
    return { data: out.data as Float32Array, dims: out.dims, floatLayers, impls };
  } finally {
    await s.release();
  }
}

async function runOrt(bytes: Uint8Array, feeds: Feeds, output = "output"): Promise<Float32Array> {
  await initOrt();
  const s = await ort.InferenceSession.create(bytes, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
  });
  try {
    const of = Object.fromEntries(
      Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor(t.type, t.data, t.dims)]),
    );
    const out = (await s.run(of))[output];
    const data = Float32Array.from(out.data as Float32Array);
    out.dispose();
    return data;
  } finally {
    await s.release();
  }
}

function maxAbs(a: Float32Array): number {
  return a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

function relRms(q: Float32Array, f: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < f.length; i++) {
    num += (q[i] - f[i]) ** 2;
    den += f[i] ** 2;
  }
  return Math.sqrt(num / den);
}

const floats = new Map<Style, Promise<{ m: EncoderModel; feeds: Feeds; float: Float32Array }>>();

function fixture(style: Style) {
  let p = floats.get(style);
  if (!p) {
    p = (async () => {
      const m = encoderModel(spec(style));
      const feeds = encoderFeeds(m, 2, 11);
      return { m, feeds, float: (await runSqz(m.bytes, feeds)).data };
    })();
    floats.set(style, p);
  }
  return p;
}

interface Case {
  name: string;
  recipe: (style: Style) => string | Record<string, unknown>;
  calibrate?: boolean;
  /** onnxruntime-web can run the artifact (standard ONNX or its own contrib ops). */
  ort: boolean;
  tol: number;
  /** max|sqz − ort| allowed, relative to max|float| (see the header). */
  ortTol: number;
  /** What each compressed layer's report says, and an op the artifact must have. */
  method: string;
  op: string;
}

const NBITS = (style: Style) => ({
  method: "int4",
  int4: { format: "matmulnbits" },
  // MatMulNBits has no Conv form: vit's patch embedding stays float.
  ...(style === "vit" ? { layers: { Conv: { method: "none" } } } : {}),
});

const CASES: Case[] = [
  {
    name: "int8 dynamic",
    recipe: () => "int8-dynamic",
    ort: true,
    tol: 0.03,
    ortTol: 3e-3,
    method: "int8 dynamic",
    op: "MatMulInteger",
  },
  {
    name: "int8 static",
    recipe: () => "int8",
    calibrate: true,
    ort: true,
    tol: 0.045,
    ortTol: 3e-3,
    method: "int8",
    op: "QuantizeLinear",
  },
  {
    name: "int4",
    recipe: () => "int4",
    ort: false, // ai.sqz.DequantizeInt4 is sqz's own decoder
    tol: 0.35,
    ortTol: 0,
    method: "int4",
    op: "ai.sqz.DequantizeInt4",
  },
  {
    name: "int4 MatMulNBits",
    recipe: NBITS,
    ort: true,
    tol: 0.35,
    ortTol: 1e-4,
    method: "int4 (MatMulNBits)",
    op: "com.microsoft.MatMulNBits",
  },
];

for (const style of STYLES) {
  for (const c of CASES) {
    Deno.test(`transformer ${style}: ${c.name} runs in sqz${c.ort ? " and ORT" : ""}`, async () => {
      const { m, feeds, float } = await fixture(style);
      const calibration = c.calibrate
        ? [encoderFeeds(m, 4, 100), encoderFeeds(m, 4, 101)] as Record<string, Tensor>[]
        : undefined;
      const { model, report } = await compress(m.bytes, c.recipe(style), { calibration });
      const expected = LAYERS[style] - (c.name === "int4 MatMulNBits" && style === "vit" ? 1 : 0);
      assert.equal(report.layers.length, expected, report.layers.map((l) => l.name).join(" "));
      const methods = new Set(report.layers.map((l) => l.method));
      // vit's Conv is quantized too (ConvInteger / QLinearConv), except by MatMulNBits.
      assert.deepEqual([...methods], [c.method], [...methods].join(", "));
      // The layers' weights: 4× smaller for int8 less scales and biases, ~6× for int4.
      const before = report.layers.reduce((a, l) => a + l.bytesBefore, 0);
      const after = report.layers.reduce((a, l) => a + l.bytesAfter, 0);
      assert.ok(after * (c.method.startsWith("int8") ? 3.5 : 5.5) < before, `${before} → ${after}`);
      const artifactOps = importModel(model).nodes.map((n) => n.qualifiedOp);
      assert.ok(artifactOps.includes(c.op), artifactOps.join(" "));
      const ours = await runSqz(model, feeds);
      // No float MatMul / Gemm with a constant weight is left: int4's run as MatMulNBits.
      assert.equal(ours.floatLayers, 0);
      if (c.name === "int4 MatMulNBits") {
        assert.ok(ours.impls.includes("MatMulNBits:wasm"), ours.impls.join(" "));
        assert.ok(!ours.impls.includes("MatMulNBits:ts"), "MatMulNBits on the kernels");
      }
      const scale = maxAbs(float);
      const err = relRms(ours.data, float);
      let line = `${style} ${c.name}: ${(report.size.before / 1024).toFixed(0)} → ${
        (report.size.after / 1024).toFixed(0)
      } KiB, rel. RMS vs float ${err.toExponential(2)}, max|q − f| ${
        maxDiff(ours.data, float).toFixed(4)
      } of ${scale.toFixed(2)}`;
      if (c.ort) {
        const theirs = await runOrt(model, feeds);
        // ORT computes MatMulNBits on f32 activations: sqz's int4 "float" is its peer, the
        // packed default (int8 activation blocks) adds its own small error.
        const exact = c.method.startsWith("int4")
          ? (await runSqz(model, feeds, "output", "float")).data
          : ours.data;
        const d = maxDiff(exact, theirs);
        line += `, max|sqz − ort| ${d.toExponential(2)}`;
        assert.ok(d <= c.ortTol * scale + 1e-5, `sqz vs ort ${d}`);
        assert.ok(
          relRms(exact, theirs) <= 1e-3,
          `sqz vs ort: rel. RMS ${relRms(exact, theirs)}`,
        );
        if (exact !== ours.data) {
          line += `, packed vs ort rel. RMS ${relRms(ours.data, theirs).toExponential(2)}`;
          assert.ok(
            relRms(ours.data, theirs) <= 2e-2,
            `packed vs ort ${relRms(ours.data, theirs)}`,
          );
        }
      }
      console.log(line);
      assert.ok(err <= c.tol, `relative RMS error vs float ${err} > ${c.tol}`);
    });
  }
}

Deno.test("MatMulNBits: refused with an ArgumentError where it cannot apply", async () => {
  const vit = encoderModel(spec("vit"));
  await assert.rejects(
    () => compress(vit.bytes, "int4:matmulnbits"),
    (e: Error) => e instanceof ArgumentError && /'conv0' \(Conv\)/.test(e.message),
  );
  assert.equal(parseRecipe("int4:matmulnbits").int4.format, "matmulnbits");
  assert.equal(parseRecipe("int4").int4.format, undefined);
  assert.throws(() => parseRecipe({ int4: { format: "gguf" } }), ArgumentError);
  assert.throws(() => parseRecipe("int4:gguf"), ArgumentError);
  // Gemm with transA = 1 has no MatMulNBits form either.
  const bytes = makeModel({
    nodes: [node("Gemm", ["x", "w"], ["y"], { transA: 1 }, "fc")],
    inputs: [valueInfo("x", DataType.FLOAT, [64, "N"])],
    outputs: [valueInfo("y", DataType.FLOAT, ["N", 8])],
    initializers: [tensorFromArray("w", DataType.FLOAT, [64, 8], new Float32Array(512).fill(0.5))],
    opset: 13,
  });
  await assert.rejects(
    () => compress(bytes, "int4:matmulnbits"),
    (e: Error) => e instanceof ArgumentError && /transA/.test(e.message),
  );
});

/** A one-layer model: Gemm (alpha, beta, C per column, transB) or MatMul, K = 80 → 3 blocks. */
function oneLayer(op: "Gemm" | "MatMul", transB: boolean, seed: number) {
  const k = 80, n = 12;
  let s = seed;
  const r = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const w = Float32Array.from({ length: k * n }, r);
  const c = Float32Array.from({ length: n }, r);
  const attrs: Record<string, number> = op === "Gemm"
    ? { alpha: 0.5, beta: 2, transB: transB ? 1 : 0 }
    : {};
  const bytes = makeModel({
    nodes: [node(op, op === "Gemm" ? ["x", "w", "c"] : ["x", "w"], ["y"], attrs, "fc")],
    inputs: [valueInfo("x", DataType.FLOAT, ["N", k])],
    outputs: [valueInfo("y", DataType.FLOAT, ["N", n])],
    initializers: [
      tensorFromArray("w", DataType.FLOAT, transB ? [n, k] : [k, n], w),
      ...(op === "Gemm" ? [tensorFromArray("c", DataType.FLOAT, [n], c)] : []),
    ],
    opset: 13,
  });
  const x = Float32Array.from({ length: 3 * k }, r);
  return { bytes, feeds: { x: { type: "float32" as const, dims: [3, k], data: x } } };
}

Deno.test("MatMulNBits: Gemm / MatMul, (a)symmetric, partial and odd blocks agree with ORT", async () => {
  for (const [op, transB] of [["Gemm", true], ["Gemm", false], ["MatMul", false]] as const) {
    for (const symmetric of [true, false]) {
      const { bytes, feeds } = oneLayer(op, transB, 3 + Number(transB));
      const { model, report } = await compress(bytes, {
        method: "int4",
        int4: { format: "matmulnbits", symmetric, blockSize: 32 },
      });
      assert.equal(report.layers[0].method, "int4 (MatMulNBits)");
      const float = (await runSqz(bytes, feeds as Feeds, "y")).data;
      const ours = await runSqz(model, feeds as Feeds, "y", "float");
      const packed = await runSqz(model, feeds as Feeds, "y");
      assert.deepEqual(ours.impls, ["MatMulNBits:wasm"]);
      assert.deepEqual(packed.impls, ["MatMulNBits:wasm"]);
      const theirs = await runOrt(model, feeds as Feeds, "y");
      const scale = maxAbs(theirs);
      const what = `${op} transB ${transB} symmetric ${symmetric}`;
      assert.ok(maxDiff(ours.data, theirs) <= 1e-4 * scale + 1e-5, what);
      assert.ok(relRms(ours.data, float) < 0.15, `${what}: ${relRms(ours.data, float)}`);
      // K = 80: two full int8 activation blocks and a tail of 16.
      assert.ok(
        relRms(packed.data, theirs) < 2e-2,
        `${what}: packed ${relRms(packed.data, theirs)}`,
      );
    }
  }
});

Deno.test("MatMulNBits: the TypeScript op matches the kernel op, caches its weight, checks inputs", async () => {
  const { bytes, feeds } = oneLayer("Gemm", true, 9);
  const { model } = await compress(bytes, {
    method: "int4",
    int4: { format: "matmulnbits", symmetric: false },
  });
  const s = await Session.create(model, { int4: "float" });
  const want = (await s.run(feeds)).y.data as Float32Array;
  await s.release();
  // The session dropped the constants it packed: read them from the model.
  const n = importModel(model).nodes[0];
  const inputs = n.inputs.map((v) => v?.constant);
  const x: Tensor = feeds.x;
  const fn = TS_OPS["com.microsoft.MatMulNBits"];
  const ctx = jsContext(n, 1);
  const a = fn([x, ...inputs.slice(1)], ctx)[0].data as Float32Array;
  const b = fn([x, ...inputs.slice(1)], ctx)[0].data as Float32Array;
  assert.ok(maxDiff(a, want) <= 1e-5 * maxAbs(want), `ts vs wasm ${maxDiff(a, want)}`);
  assert.deepEqual(a, b);
  // Wrong K, wrong B size, non-power-of-two block: typed errors naming the node.
  const bad = (attrs: Record<string, number>, ins = [x, ...inputs.slice(1)]) => {
    const m = new Node("nb", "MatMulNBits", "com.microsoft", [], [new Value("y")], {
      ...n.attrs,
      ...attrs,
    });
    return () => fn(ins, jsContext(m, 1));
  };
  assert.throws(bad({ K: 64 }), /K = 64/);
  assert.throws(bad({ block_size: 48 }), /power of two/);
  assert.throws(
    bad({}, [x, { type: "uint8", dims: [3], data: new Uint8Array(3) }, inputs[2]]),
    /'B'/,
  );
});

Deno.test("MNIST rows as tokens: top-1 agreement of int8 / int4 with the float seq model", async () => {
  const N = 500;
  const m = encoderModel(spec("seq"));
  const { train, test } = await mnistSplit(0);
  // Each 28×28 image is 28 tokens of 28 pixels in [0, 1]: the NCHW data read as [N, 28, 28].
  const rows = (src: Float32Array, from: number, n: number): Tensor => ({
    type: "float32",
    dims: [n, 28, 28],
    data: src.slice(from * 784, (from + n) * 784),
  });
  const calibration = [0, 1, 2, 3].map((i) => ({ rows: rows(train.x.data, 32 * i, 32) }));
  const argmax = (d: Float32Array) =>
    Array.from({ length: d.length / 10 }, (_, i) => {
      let best = 0;
      for (let c = 1; c < 10; c++) if (d[i * 10 + c] > d[i * 10 + best]) best = c;
      return best;
    });
  // One digit per run for dynamic int8 (its activation ranges are per run, so a batch's range
  // would be shared by the digits in it), the whole set at once for the others.
  const predict = async (bytes: Uint8Array, batch: number) => {
    const s = await Session.create(bytes);
    try {
      const out = new Float32Array(N * 10);
      for (let i = 0; i < N; i += batch) {
        const r = await s.run({ rows: rows(test.x.data, i, Math.min(batch, N - i)) });
        out.set(r.output.data as Float32Array, i * 10);
      }
      return argmax(out);
    } finally {
      await s.release();
    }
  };
  const float = await predict(m.bytes, N);
  const results: Record<string, number> = {};
  for (
    const [name, recipe, calib, batch] of [
      ["int8 dynamic", "int8-dynamic", false, 1],
      ["int8 static", "int8", true, N],
      ["int4", "int4", false, N],
      ["int4 MatMulNBits", "int4:matmulnbits", false, N],
    ] as const
  ) {
    const { model } = await compress(m.bytes, recipe, calib ? { calibration } : {});
    const q = await predict(model, batch);
    results[name] = q.filter((c, i) => c === float[i]).length / N;
  }
  console.log(
    `MNIST rows, ${N} test digits, top-1 agreement with float: ` +
      Object.entries(results).map(([k, v]) => `${k} ${(100 * v).toFixed(1)}%`).join(", "),
  );
  assert.ok(results["int8 dynamic"] >= 0.99, `int8 dynamic ${results["int8 dynamic"]}`);
  assert.ok(results["int8 static"] >= 0.98, `int8 static ${results["int8 static"]}`);
  // The two int4 formats hold the same codes: the same predictions.
  assert.equal(results["int4"], results["int4 MatMulNBits"]);
  assert.ok(results["int4"] >= 0.8, `int4 ${results["int4"]}`);
});

/** Float test accuracy of models/mnist_transformer.onnx on the 2,000 held-out digits. */
const FLOAT_ACCURACY = 0.972;

Deno.test("MNIST rows, trained transformer: int8 dynamic / static keep its predictions", async () => {
  // models/mnist_transformer.onnx: the seq encoder trained by sqz's own engine
  // (scripts/train_mnist_transformer.ts). All 2,000 held-out digits of mnistSplit(0).
  const bytes = await Deno.readFile(new URL("../models/mnist_transformer.onnx", import.meta.url));
  const { train, test } = await mnistSplit(0);
  const N = test.y.length;
  const rows = (src: Float32Array, from: number, n: number): Tensor => ({
    type: "float32",
    dims: [n, 28, 28],
    data: src.slice(from * 784, (from + n) * 784),
  });
  const predict = async (model: Uint8Array, batch: number) => {
    const s = await Session.create(model);
    try {
      const out = new Int32Array(N);
      for (let i = 0; i < N; i += batch) {
        const m = Math.min(batch, N - i);
        const z = (await s.run({ rows: rows(test.x.data, i, m) })).output.data as Float32Array;
        for (let j = 0; j < m; j++) {
          let best = 0;
          for (let c = 1; c < 10; c++) if (z[j * 10 + c] > z[j * 10 + best]) best = c;
          out[i + j] = best;
        }
      }
      return out;
    } finally {
      await s.release();
    }
  };
  const frac = (a: Int32Array, b: ArrayLike<number>) => a.filter((c, i) => c === b[i]).length / N;
  const float = await predict(bytes, 500);
  const acc = frac(float, test.y);
  // onnxruntime-web reads the file as sqz does (the first 16 digits' logits).
  const feeds = { rows: rows(test.x.data, 0, 16) } as Feeds;
  const ours = (await runSqz(bytes, feeds)).data, theirs = await runOrt(bytes, feeds);
  assert.ok(maxDiff(ours, theirs) <= 1e-4 * maxAbs(theirs), `sqz vs ort ${maxDiff(ours, theirs)}`);
  const calibration = [0, 1, 2, 3].map((i) => ({ rows: rows(train.x.data, 32 * i, 32) }));
  const lines = [`float ${(100 * acc).toFixed(2)}%`];
  const results: Record<string, { agree: number; acc: number }> = {};
  for (
    const [name, recipe, calib, batch] of [
      // One digit per run for dynamic int8 (its activation ranges are per run).
      ["int8 dynamic", "int8-dynamic", false, 1],
      ["int8 static", "int8", true, 500],
    ] as const
  ) {
    const { model } = await compress(bytes, recipe, calib ? { calibration } : {});
    const q = await predict(model, batch);
    results[name] = { agree: frac(q, float), acc: frac(q, test.y) };
    lines.push(
      `${name} agreement ${(100 * results[name].agree).toFixed(2)}%, accuracy ${
        (100 * results[name].acc).toFixed(2)
      }%`,
    );
  }
  console.log(`MNIST rows, trained transformer, ${N} test digits: ${lines.join(", ")}`);
  assert.ok(Math.abs(acc - FLOAT_ACCURACY) <= 0.01, `float accuracy ${acc}`);
  for (const [name, r] of Object.entries(results)) {
    assert.ok(r.agree >= 0.99, `${name}: agreement ${r.agree}`);
    assert.ok(r.acc >= acc - 0.01, `${name}: accuracy ${r.acc}, float ${acc}`);
  }
});
