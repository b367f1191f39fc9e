// Gradient checks of every differentiable op of the training engine: backward() against
// central finite differences of the forward pass, for the inputs and the parameters, on small
// graphs of one node with awkward shapes. The loss is L = Σ y·r for a fixed random r, summed in
// float64; points near kinks (Relu at 0, MaxPool ties, Clip bounds) are kept away from.
import assert from "node:assert/strict";
import { Graph, Node } from "../src/graph/ir.ts";
import type { Tensor } from "../src/graph/tensor.ts";
import { KernelModule } from "../src/kernels/module.ts";
import { TrainProgram } from "../src/train/program.ts";
import { availableBuilds } from "../src/kernels/features.ts";
import { rng } from "./util.ts";
import { importModel } from "../src/onnx/import.ts";
import { encoderModel } from "../bench/transformer_zoo.ts";

interface Spec {
  op: string;
  domain?: string;
  /** Inputs: name, dims; `trainable` constants become parameters; `data` fixes the values. */
  inputs: { name: string; dims: number[]; param?: boolean; data?: Float32Array | BigInt64Array }[];
  attrs?: Node["attrs"];
  opset?: number;
  /** Value generator (default: N(0, 1)-ish uniform in [-1, 1]·2). */
  gen?: (r: () => number, i: number, n: number) => number;
  /** Forward in evaluation mode. */
  eval?: boolean;
}

function build(spec: Spec): Graph {
  const g = new Graph();
  g.opsets.set("", spec.opset ?? 17);
  const r = rng(7);
  const ins = spec.inputs.map((s) => {
    const v = g.value(s.name);
    v.type = s.data instanceof BigInt64Array ? "int64" : "float32";
    v.shape = s.dims;
    const n = s.dims.reduce((a, b) => a * b, 1);
    if (s.param || s.data) {
      const data = s.data ??
        Float32Array.from({ length: n }, (_, i) => (spec.gen ? spec.gen(r, i, n) : 2 * r() - 1));
      v.constant = { type: v.type, dims: s.dims, data } as Tensor;
    } else g.inputs.push(v);
    return v;
  });
  const y = g.value("y");
  g.addNode(new Node("n", spec.op, spec.domain ?? "", ins, [y], spec.attrs ?? {}));
  g.outputs.push(y);
  return g;
}

async function check(mod: KernelModule, spec: Spec, tol = 2e-3): Promise<void> {
  const g = build(spec);
  const r = rng(11);
  const feeds: Record<string, Tensor> = {};
  for (const v of g.inputs) {
    const n = (v.shape as number[]).reduce((a, b) => a * b, 1);
    feeds[v.name] = {
      type: "float32",
      dims: v.shape as number[],
      data: Float32Array.from(
        { length: n },
        (_, i) => (spec.gen ? spec.gen(r, i, n) : 2 * r() - 1),
      ),
    };
  }
  const p = await TrainProgram.create(g, { mod, inputGrads: g.inputs.map((v) => v.name) });
  const training = !spec.eval;
  const y0 = p.forward(feeds, training).y;
  const weights = Float64Array.from({ length: y0.data.length }, () => 2 * r() - 1);
  const loss = () => {
    const y = p.forward(feeds, training).y.data as Float32Array;
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * weights[i];
    return s;
  };
  loss();
  p.zeroGrad();
  const dIn = p.backward({ y: Float32Array.from(weights) });
  const targets: [string, Float32Array, Float32Array][] = [
    ...g.inputs.map((v) =>
      [v.name, feeds[v.name].data as Float32Array, dIn[v.name]] as [
        string,
        Float32Array,
        Float32Array,
      ]
    ),
    ...p.params.map((q) =>
      [q.name, q.data, Float32Array.from(q.grad)] as [string, Float32Array, Float32Array]
    ),
  ];
  for (const [name, data, grad] of targets) {
    assert.equal(grad.length, data.length, `${spec.op}: gradient of ${name} has the wrong size`);
    const idx = data.length <= 24
      ? [...data.keys()]
      : Array.from({ length: 24 }, () => Math.floor(r() * data.length));
    for (const i of idx) {
      const x0 = data[i], h = 1e-2 * Math.max(1, Math.abs(x0));
      data[i] = x0 + h;
      const lp = loss();
      data[i] = x0 - h;
      const lm = loss();
      data[i] = x0;
      const num = (lp - lm) / (2 * h);
      const err = Math.abs(num - grad[i]);
      assert.ok(
        err <= tol * Math.max(1, Math.abs(num)),
        `${spec.op} ${JSON.stringify(spec.attrs ?? {})}: d/d${name}[${i}] = ${grad[i]}, ` +
          `finite differences ${num}`,
      );
    }
  }
  p.dispose();
}

/** Values spread apart (no ties within 0.05) and away from 0: for max and relu kinks. */
const spread = (r: () => number, i: number, n: number) => {
  const v = ((i * 7919) % n) / n;
  return (v * 4 - 2) + (v * 4 - 2 >= 0 ? 0.05 : -0.05) + 0.001 * r();
};

/** |v| in [0.5, 1.5]: divisors whose 1/b curvature the finite differences can follow. */
const awayFromZero = (r: () => number) => (r() < 0.5 ? -1 : 1) * (0.5 + r());

/** Values in [0.5, 1.5]: bases of fractional powers and of exponents that are differentiated. */
const positive = (r: () => number) => 0.5 + r();

const CASES: Spec[] = [
  // Conv: strides, pads, dilations, groups, depthwise, 1-D, no bias, one-padding.
  ...([
    { x: [2, 3, 5, 6], w: [4, 3, 3, 3], attrs: { pads: [1, 1, 1, 1] } },
    { x: [1, 2, 7, 5], w: [3, 2, 3, 2], attrs: { strides: [2, 1], pads: [1, 0, 2, 1] } },
    { x: [2, 2, 7, 7], w: [2, 2, 3, 3], attrs: { dilations: [2, 2], pads: [2, 2, 2, 2] } },
    { x: [1, 4, 5, 5], w: [6, 2, 3, 3], attrs: { group: 2, pads: [1, 1, 1, 1] } },
    { x: [2, 3, 6, 6], w: [3, 1, 3, 3], attrs: { group: 3, strides: [2, 2], pads: [1, 1, 1, 1] } },
    { x: [2, 3, 9], w: [2, 3, 3], attrs: { pads: [1, 1], strides: [2] } },
    { x: [1, 1, 4, 4], w: [1, 1, 1, 1], attrs: {} },
    { x: [1, 2, 5, 5], w: [3, 2, 3, 3], attrs: { auto_pad: "SAME_UPPER", strides: [2, 2] } },
    { x: [2, 2, 4, 5], w: [3, 2, 3, 3], attrs: { pads: [1, 1, 1, 1], pad_value: 1 } },
  ] as { x: number[]; w: number[]; attrs: Node["attrs"] }[]).flatMap(({ x, w, attrs }) => [
    {
      op: "Conv",
      inputs: [{ name: "x", dims: x }, { name: "w", dims: w, param: true }, {
        name: "b",
        dims: [w[0]],
        param: true,
      }],
      attrs,
    },
    { op: "Conv", inputs: [{ name: "x", dims: x }, { name: "w", dims: w, param: true }], attrs },
  ]),
  // Gemm: every transpose, alpha / beta, C per column, full, scalar.
  ...[[0, 0], [0, 1], [1, 0], [1, 1]].flatMap(([transA, transB]) => {
    const [M, K, N] = [3, 5, 4];
    const a = transA ? [K, M] : [M, K], b = transB ? [N, K] : [K, N];
    return [[N], [M, N], [1], [M, 1]].map((c, i) => ({
      op: "Gemm",
      inputs: [{ name: "a", dims: a }, { name: "b", dims: b, param: true }, {
        name: "c",
        dims: c,
        param: true,
      }],
      attrs: { transA, transB, ...(i === 1 ? { alpha: 0.5, beta: 2 } : {}) },
    }));
  }),
  { op: "Gemm", inputs: [{ name: "a", dims: [1, 17] }, { name: "b", dims: [17, 1] }] },
  // MatMul: 2-D, batched × 2-D, batched × batched, broadcast, vectors.
  ...[
    [[3, 4], [4, 5]],
    [[2, 3, 4], [4, 5]],
    [[2, 3, 4], [2, 4, 5]],
    [[2, 1, 3, 4], [3, 4, 2]],
    [[4], [4, 3]],
    [[2, 3, 4], [4]],
  ].map(([a, b]) => ({ op: "MatMul", inputs: [{ name: "a", dims: a }, { name: "b", dims: b }] })),
  // Broadcasting arithmetic.
  ...["Add", "Sub", "Mul", "Div"].flatMap((op) =>
    [
      [[2, 3, 4], [2, 3, 4]],
      [[2, 3, 4], [3, 1]],
      [[1, 3, 1], [2, 1, 4]],
      [[2, 3], [1]],
    ].map(([a, b]) => ({
      op,
      inputs: [{ name: "a", dims: a }, { name: "b", dims: b }],
      gen: op === "Div" ? awayFromZero : undefined,
    }))
  ),
  // Activations.
  ...["Relu", "Sigmoid", "Tanh", "LeakyRelu", "Softplus", "Exp", "Abs", "Neg", "Erf"].map((op) => ({
    op,
    inputs: [{ name: "x", dims: [3, 7] }],
    gen: spread,
    attrs: op === "LeakyRelu" ? { alpha: 0.1 } : {},
  })),
  { op: "HardSigmoid", inputs: [{ name: "x", dims: [3, 7] }], gen: spread },
  {
    op: "Clip",
    inputs: [{ name: "x", dims: [4, 5] }, {
      name: "lo",
      dims: [],
      data: Float32Array.of(-1.03),
    }, { name: "hi", dims: [], data: Float32Array.of(1.07) }],
    gen: spread,
  },
  {
    op: "Clip",
    opset: 6,
    inputs: [{ name: "x", dims: [4, 5] }],
    attrs: { min: 0, max: 0.97 },
    gen: spread,
  },
  // BatchNorm, training (batch statistics) and evaluation (running statistics).
  ...[[4, 3, 2, 2], [5, 4], [3, 2, 5]].flatMap((x) =>
    [false, true].map((ev) => ({
      op: "BatchNormalization",
      eval: ev,
      inputs: [
        { name: "x", dims: x },
        { name: "scale", dims: [x[1]], param: true },
        { name: "bias", dims: [x[1]], param: true },
        { name: "mean", dims: [x[1]], data: new Float32Array(x[1]).fill(0.1) },
        { name: "var", dims: [x[1]], data: new Float32Array(x[1]).fill(1.5) },
      ],
    }))
  ),
  // Pools.
  {
    op: "MaxPool",
    inputs: [{ name: "x", dims: [2, 3, 6, 6] }],
    attrs: { kernel_shape: [2, 2], strides: [2, 2] },
    gen: spread,
  },
  {
    op: "MaxPool",
    inputs: [{ name: "x", dims: [1, 2, 7, 5] }],
    attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 },
    gen: spread,
  },
  {
    op: "MaxPool",
    inputs: [{ name: "x", dims: [2, 2, 9] }],
    attrs: { kernel_shape: [3], strides: [2] },
    gen: spread,
  },
  {
    op: "AveragePool",
    inputs: [{ name: "x", dims: [2, 3, 6, 6] }],
    attrs: { kernel_shape: [2, 2], strides: [2, 2] },
  },
  ...[0, 1].map((cip) => ({
    op: "AveragePool",
    inputs: [{ name: "x", dims: [1, 2, 5, 7] }],
    attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: cip },
  })),
  { op: "GlobalAveragePool", inputs: [{ name: "x", dims: [2, 3, 4, 5] }] },
  { op: "GlobalMaxPool", inputs: [{ name: "x", dims: [2, 3, 4, 5] }], gen: spread },
  // Data movement.
  { op: "Flatten", inputs: [{ name: "x", dims: [2, 3, 2, 2] }], attrs: { axis: 1 } },
  {
    op: "Reshape",
    inputs: [{ name: "x", dims: [2, 6] }, {
      name: "s",
      dims: [3],
      data: BigInt64Array.of(3n, 2n, 2n),
    }],
  },
  { op: "Transpose", inputs: [{ name: "x", dims: [2, 3, 4] }], attrs: { perm: [2, 0, 1] } },
  {
    op: "Concat",
    inputs: [{ name: "a", dims: [2, 3, 2] }, { name: "b", dims: [2, 1, 2] }, {
      name: "c",
      dims: [2, 4, 2],
    }],
    attrs: { axis: 1 },
  },
  {
    op: "Pad",
    inputs: [{ name: "x", dims: [2, 3, 4] }, {
      name: "p",
      dims: [6],
      data: BigInt64Array.of(0n, 1n, 2n, 1n, 0n, 1n),
    }],
  },
  // Reductions: axes as an attribute (ReduceMean before opset 18) and as an input, keepdims
  // on and off, inner / outer / several / all axes, negative axes, noop_with_empty_axes.
  ...([
    [{ axes: [-1], keepdims: 1 }, [2, 3, 4]],
    [{ axes: [1], keepdims: 0 }, [2, 5, 3]],
    [{ axes: [0, 2], keepdims: 1 }, [3, 2, 4]],
    [{ axes: [0, -1], keepdims: 0 }, [2, 3, 2, 3]],
    [{ keepdims: 0 }, [3, 4]],
  ] as [Node["attrs"], number[]][]).flatMap(([attrs, x]) => [
    { op: "ReduceMean", opset: 14, inputs: [{ name: "x", dims: x }], attrs },
    {
      op: "ReduceSum",
      opset: 11,
      inputs: [{ name: "x", dims: x }],
      attrs,
    },
  ]),
  ...[18, 13].flatMap((opset) =>
    (["ReduceMean", "ReduceSum"] as const).filter((op) => op === "ReduceSum" || opset >= 18)
      .flatMap((op) => [
        {
          op,
          opset,
          inputs: [{ name: "x", dims: [2, 3, 4] }, {
            name: "axes",
            dims: [2],
            data: BigInt64Array.of(-1n, 0n),
          }],
          attrs: { keepdims: 0 },
        },
        { op, opset, inputs: [{ name: "x", dims: [3, 4] }], attrs: { keepdims: 1 } },
        {
          op,
          opset,
          inputs: [{ name: "x", dims: [3, 4] }, {
            name: "axes",
            dims: [0],
            data: new BigInt64Array(0),
          }],
          attrs: { noop_with_empty_axes: 1 },
        },
      ])
  ),
  // Pow: a constant exponent (LayerNorm's x², a cube, an int64 exponent, a root of positive
  // values) and an exponent that needs its gradient too (positive bases), broadcast both ways.
  ...([
    [[2, 3, 4], [], Float32Array.of(2), undefined],
    [[3, 5], [], Float32Array.of(3), undefined],
    [[3, 5], [], BigInt64Array.of(3n), undefined],
    [[2, 5], [5], Float32Array.of(0.5, 1.5, 2, 0, -1), positive],
  ] as [number[], number[], Float32Array | BigInt64Array, Spec["gen"]][]).map((
    [x, e, data, gen],
  ) => ({
    op: "Pow",
    inputs: [{ name: "x", dims: x }, { name: "e", dims: e, data }],
    gen: gen ?? spread,
  })),
  ...[
    [[2, 3, 4], [2, 3, 4]],
    [[2, 3], [3]],
    [[3, 1], [2, 1, 4]],
  ].map(([a, b]) => ({
    op: "Pow",
    inputs: [{ name: "x", dims: a }, { name: "e", dims: b }],
    gen: positive,
  })),
  // Softmax family, both axis conventions.
  ...[13, 11].flatMap((opset) =>
    ["Softmax", "LogSoftmax"].flatMap((op) => [
      { op, opset, inputs: [{ name: "x", dims: [3, 5] }] },
      { op, opset, inputs: [{ name: "x", dims: [2, 3, 4] }], attrs: { axis: 1 } },
    ])
  ),
];

Deno.test("training ops: backward matches central finite differences", async () => {
  const mod = await KernelModule.load("auto");
  for (const spec of CASES) await check(mod, spec);
});

Deno.test("training ops: Conv and Gemm gradients are identical in every kernel build", async () => {
  const results: Float32Array[][] = [];
  for (const build of availableBuilds()) {
    const mod = await KernelModule.load(build);
    const out: Float32Array[] = [];
    for (const spec of CASES.filter((c) => c.op === "Conv" || c.op === "MatMul")) {
      const g = build_(spec);
      const p = await TrainProgram.create(g, { mod, inputGrads: g.inputs.map((v) => v.name) });
      const feeds = Object.fromEntries(g.inputs.map((v) => {
        const n = (v.shape as number[]).reduce((a, b) => a * b, 1);
        const r = rng(3);
        return [
          v.name,
          {
            type: "float32",
            dims: v.shape as number[],
            data: Float32Array.from({ length: n }, () => r() - 0.5),
          } as Tensor,
        ];
      }));
      const y = p.forward(feeds).y.data as Float32Array;
      const d = p.backward({ y: y.map((v) => v * 0.5 + 0.25) });
      out.push(y, ...Object.values(d), ...p.params.map((q) => q.grad));
    }
    results.push(out);
  }
  // f32 GEMM sums in a build-specific order; results agree closely, not bit-exactly.
  for (const other of results.slice(1)) {
    other.forEach((a, i) => {
      const b = results[0][i];
      for (let j = 0; j < a.length; j++) {
        assert.ok(
          Math.abs(a[j] - b[j]) <= 1e-4 * Math.max(1, Math.abs(b[j])),
          `build mismatch at ${i}/${j}`,
        );
      }
    });
  }
});
const build_ = build;

Deno.test("training: a node without a backward pass on the gradient path is a typed error", async () => {
  const g = build({ op: "Cos", inputs: [{ name: "x", dims: [2] }] });
  await assert.rejects(
    TrainProgram.create(g, { inputGrads: ["x"] }),
    (e: Error) => e.name === "UnsupportedError" && /node 'n' \(Cos\)/.test(e.message),
  );
});

Deno.test("training ops: forward equals the inference op (Conv, Gemm, MatMul, pools, BatchNorm eval…)", async () => {
  const { TS_OPS } = await import("../src/ops/registry.ts");
  const { jsContext } = await import("../src/ops/types.ts");
  const mod = await KernelModule.load("auto");
  let checked = 0;
  for (const spec of CASES) {
    if (spec.attrs?.pad_value !== undefined) continue; // training-only attribute
    if (spec.op === "BatchNormalization" && !spec.eval) continue; // batch statistics
    const g = build(spec);
    const node = g.nodes[0];
    const r = rng(5);
    const feeds: Record<string, Tensor> = {};
    for (const v of g.inputs) {
      const n = (v.shape as number[]).reduce((a, b) => a * b, 1);
      feeds[v.name] = {
        type: "float32",
        dims: v.shape as number[],
        data: Float32Array.from(
          { length: n },
          (_, i) => (spec.gen ? spec.gen(r, i, n) : 2 * r() - 1),
        ),
      };
    }
    const p = await TrainProgram.create(g, { mod });
    const mine = p.forward(feeds, !spec.eval).y;
    const ins = node.inputs.map((v) => (v ? feeds[v.name] ?? v.constant : undefined));
    const [ref] = TS_OPS[node.qualifiedOp](ins, jsContext(node, g.opsets.get("") ?? 17));
    assert.deepEqual(mine.dims, ref.dims, `${spec.op}: dims`);
    const a = mine.data as Float32Array, b = ref.data as Float32Array;
    for (let i = 0; i < a.length; i++) {
      assert.ok(
        Math.abs(a[i] - b[i]) <= 1e-5 * Math.max(1, Math.abs(b[i])),
        `${spec.op} ${JSON.stringify(spec.attrs ?? {})}: y[${i}] = ${a[i]}, inference op ${b[i]}`,
      );
    }
    checked++;
    p.dispose();
  }
  assert.ok(checked > 80, `${checked} cases checked`);
});

Deno.test("training: a whole post-norm encoder (MNIST-rows seq style) matches finite differences", async () => {
  // MatMul + Add projections, Reshape/Transpose heads, scaled Q·Kᵀ, Softmax, decomposed
  // LayerNorm (ReduceMean, Sub, Pow, Sqrt, Div, Mul, Add), Relu feed-forward, the ReduceMean over
  // tokens and the Gemm head, all differentiated together, position embeddings and LayerNorm
  // scales included; small (d 8, 2 heads, 5 tokens) so every parameter can be probed.
  const m = encoderModel({ style: "seq", layers: 1, d: 8, heads: 2, ff: 16, seq: 5, seed: 3 });
  const g = importModel(m.bytes);
  const mod = await KernelModule.load("auto");
  const p = await TrainProgram.create(g, {
    mod,
    trainable: (v) => v.constant?.type === "float32" && v.constant.data.length > 1,
    inputGrads: ["rows"],
  });
  // Embedding W, b and pos; Q, K, V, out (W, b); 2 LayerNorms (γ, β); 2 ff (W, b); head W, b.
  assert.equal(p.params.length, 21);
  const r = rng(21);
  const rows: Tensor = {
    type: "float32",
    dims: [2, 5, 28],
    data: Float32Array.from({ length: 2 * 5 * 28 }, () => r()),
  };
  const y0 = p.forward({ rows }).output.data;
  const weights = Float64Array.from({ length: y0.length }, () => 2 * r() - 1);
  const loss = () => {
    const y = p.forward({ rows }).output.data as Float32Array;
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * weights[i];
    return s;
  };
  loss();
  p.zeroGrad();
  const dRows = p.backward({ output: Float32Array.from(weights) }).rows;
  const targets: [string, Float32Array, Float32Array][] = [
    ["rows", rows.data as Float32Array, dRows],
    ...p.params.map((q) => [q.name, q.data, Float32Array.from(q.grad)] as typeof targets[0]),
  ];
  for (const [name, data, grad] of targets) {
    assert.equal(grad.length, data.length, name);
    for (let k = 0; k < 12; k++) {
      const i = Math.floor(r() * data.length);
      // A small step: a larger one carries some of Relu's units across their kink.
      const x0 = data[i], h = 3e-3 * Math.max(1, Math.abs(x0));
      data[i] = x0 + h;
      const lp = loss();
      data[i] = x0 - h;
      const lm = loss();
      data[i] = x0;
      const num = (lp - lm) / (2 * h);
      assert.ok(
        Math.abs(num - grad[i]) <= 2e-3 * Math.max(1, Math.abs(num)),
        `d/d${name}[${i}] = ${grad[i]}, finite differences ${num}`,
      );
    }
  }
  p.dispose();
});
