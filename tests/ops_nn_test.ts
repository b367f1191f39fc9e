// The TypeScript NN fallbacks (src/ops/nn.ts): every single-node ONNX case of theirs run on the
// op directly (the executor sends 2-D float cases to Wasm, so this is what checks the fallback
// there), a naive N-D reference for random conv/pool attributes, and edge cases the ONNX data
// lacks: 1-D operands, broadcasting, empty tensors, fp16, zero points per row/column/channel,
// and typed errors for bad inputs.
import assert from "node:assert/strict";
import { conformanceDir, listCases, runSingleNode } from "./conformance.ts";
import { type AttrValue, Node, Value } from "../src/graph/ir.ts";
import type { Tensor, TensorType } from "../src/graph/tensor.ts";
import { jsContext } from "../src/ops/types.ts";
import { NN_OPS } from "../src/ops/nn.ts";
import { ModelError, ShapeError, UnsupportedError } from "../src/errors.ts";

const NN_CASES =
  /^test_(maxpool|averagepool|globalaveragepool|globalmaxpool|basic_conv|conv_|convinteger|matmul|matmulinteger|qlinearmatmul|qlinearconv|gemm)/;

Deno.test({
  name: "nn ops: ONNX single-node cases run on the TypeScript ops",
  ignore: !conformanceDir(),
  fn() {
    const cases = listCases((n) => NN_CASES.test(n) && !n.includes("expanded"));
    assert.ok(cases.length > 60, `only ${cases.length} cases found`);
    const failures = cases.map((c) => [c, runSingleNode(c, NN_OPS)]).filter(([, bad]) => bad);
    assert.deepEqual(failures, []);
  },
});

// ---------------------------------------------------------------------------------------------
// Helpers

function mkNode(op: string, attrs: Record<string, AttrValue> = {}, outputs = 1): Node {
  const outs = Array.from({ length: outputs }, (_, i) => new Value(`y${i}`));
  return new Node(`${op.toLowerCase()}_node`, op, "", [], outs, attrs);
}

function run(
  op: string,
  inputs: (Tensor | undefined)[],
  attrs: Record<string, AttrValue> = {},
  outputs = 1,
  opset = 22,
): Tensor[] {
  return NN_OPS[op](inputs, jsContext(mkNode(op, attrs, outputs), opset));
}

const T = (type: TensorType, dims: number[], data: ArrayLike<number>): Tensor => {
  const ctor = {
    float32: Float32Array,
    float64: Float64Array,
    int8: Int8Array,
    uint8: Uint8Array,
    int32: Int32Array,
    uint32: Uint32Array,
  }[type as "float32"];
  return { type, dims, data: ctor.from(data) };
};
const f32 = (dims: number[], data: ArrayLike<number>) => T("float32", dims, data);

/** Deterministic pseudo-random numbers (LCG) so failures reproduce. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomF32(dims: number[], r: () => number): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  return f32(dims, Array.from({ length: n }, () => Math.round((r() * 4 - 2) * 8) / 8));
}

function close(got: Tensor, want: ArrayLike<number>, what = ""): void {
  assert.equal(got.data.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const a = Number(got.data[i]), b = want[i];
    assert.ok(Math.abs(a - b) <= 1e-5 + 1e-5 * Math.abs(b), `${what}[${i}]: ${a} vs ${b}`);
  }
}

// ---------------------------------------------------------------------------------------------
// A naive N-D reference: every output position, every tap, with explicit multi-indices.

interface Geo {
  inDims: number[];
  k: number[];
  s: number[];
  d: number[];
  head: number[];
  tail: number[];
  out: number[];
}

function naiveGeo(inDims: number[], k: number[], attrs: Record<string, AttrValue>, ceil: boolean) {
  const r = inDims.length;
  const s = (attrs.strides as number[]) ?? Array(r).fill(1);
  const d = (attrs.dilations as number[]) ?? Array(r).fill(1);
  const pads = (attrs.pads as number[]) ?? Array(2 * r).fill(0);
  const auto = (attrs.auto_pad as string) ?? "NOTSET";
  const head: number[] = [], tail: number[] = [], out: number[] = [];
  for (let i = 0; i < r; i++) {
    const span = (k[i] - 1) * d[i] + 1;
    if (auto.startsWith("SAME")) {
      const o = Math.ceil(inDims[i] / s[i]);
      const total = Math.max(0, (o - 1) * s[i] + span - inDims[i]);
      const lo = auto === "SAME_UPPER" ? Math.floor(total / 2) : Math.ceil(total / 2);
      head.push(lo);
      tail.push(total - lo);
      out.push(o);
    } else {
      const h = auto === "VALID" ? 0 : pads[i], t = auto === "VALID" ? 0 : pads[i + r];
      let o = (ceil ? Math.ceil : Math.floor)((inDims[i] + h + t - span) / s[i]) + 1;
      if (ceil && (o - 1) * s[i] >= inDims[i] + h) o--;
      head.push(h);
      tail.push(t);
      out.push(o);
    }
  }
  return { inDims, k, s, d, head, tail, out } as Geo;
}

function* indices(dims: number[]): Generator<number[]> {
  const n = dims.reduce((a, b) => a * b, 1);
  for (let f = 0; f < n; f++) {
    const idx: number[] = [];
    let rest = f;
    for (let i = dims.length - 1; i >= 0; i--) {
      idx.unshift(rest % dims[i]);
      rest = Math.floor(rest / dims[i]);
    }
    yield idx;
  }
}

const flat = (idx: number[], dims: number[]) => idx.reduce((a, v, i) => a * dims[i] + v, 0);

function naiveConv(x: Tensor, w: Tensor, b: Tensor | undefined, attrs: Record<string, AttrValue>) {
  const [n, c] = x.dims, m = w.dims[0], group = (attrs.group as number) ?? 1;
  const g = naiveGeo(x.dims.slice(2), w.dims.slice(2), attrs, false);
  const cg = c / group, mg = m / group;
  const inSize = g.inDims.reduce((a, v) => a * v, 1), kSize = g.k.reduce((a, v) => a * v, 1);
  const y: number[] = [];
  for (let bi = 0; bi < n; bi++) {
    for (let oc = 0; oc < m; oc++) {
      for (const o of indices(g.out)) {
        let s = b ? Number(b.data[oc]) : 0;
        for (let ic = 0; ic < cg; ic++) {
          for (const kk of indices(g.k)) {
            const pos = o.map((v, i) => v * g.s[i] - g.head[i] + kk[i] * g.d[i]);
            if (pos.some((p, i) => p < 0 || p >= g.inDims[i])) continue;
            const ci = Math.floor(oc / mg) * cg + ic;
            s += Number(x.data[(bi * c + ci) * inSize + flat(pos, g.inDims)]) *
              Number(w.data[(oc * cg + ic) * kSize + flat(kk, g.k)]);
          }
        }
        y.push(s);
      }
    }
  }
  return { dims: [n, m, ...g.out], data: y };
}

function naivePool(x: Tensor, attrs: Record<string, AttrValue>, kind: "max" | "avg") {
  const ceil = (attrs.ceil_mode as number) === 1;
  const g = naiveGeo(x.dims.slice(2), attrs.kernel_shape as number[], attrs, ceil);
  const planes = x.dims[0] * x.dims[1], size = g.inDims.reduce((a, v) => a * v, 1);
  const y: number[] = [], idx: number[] = [];
  for (let p = 0; p < planes; p++) {
    for (const o of indices(g.out)) {
      let m = -Infinity, at = -1, sum = 0, valid = 0, padded = 0;
      for (const kk of indices(g.k)) {
        const pos = o.map((v, i) => v * g.s[i] - g.head[i] + kk[i] * g.d[i]);
        if (pos.every((q, i) => q >= -g.head[i] && q < g.inDims[i] + g.tail[i])) padded++;
        if (pos.some((q, i) => q < 0 || q >= g.inDims[i])) continue;
        const v = Number(x.data[p * size + flat(pos, g.inDims)]);
        valid++;
        sum += v;
        if (v > m || at < 0) [m, at] = [v, p * size + flat(pos, g.inDims)];
      }
      const count = (attrs.count_include_pad as number) === 1 ? padded : valid;
      y.push(kind === "max" ? m : count ? sum / count : 0);
      idx.push(at);
    }
  }
  return { dims: [x.dims[0], x.dims[1], ...g.out], data: y, idx };
}

// ---------------------------------------------------------------------------------------------
// Convolution

Deno.test("Conv: 1-D, 2-D and 3-D against a naive reference over random attributes", () => {
  const r = rng(7);
  const pick = <V>(xs: V[]) => xs[Math.floor(r() * xs.length)];
  for (let trial = 0; trial < 120; trial++) {
    const rank = 1 + (trial % 3);
    const group = pick([1, 2]);
    const c = group * pick([1, 2]), m = group * pick([1, 3]);
    const inDims = Array.from({ length: rank }, () => 3 + Math.floor(r() * 5));
    const k = Array.from({ length: rank }, () => 1 + Math.floor(r() * 3));
    const attrs: Record<string, AttrValue> = { group };
    if (r() < 0.6) attrs.strides = k.map(() => pick([1, 2, 3]));
    if (r() < 0.5) attrs.dilations = k.map(() => pick([1, 2]));
    const auto = pick(["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]);
    if (auto !== "NOTSET") attrs.auto_pad = auto;
    else attrs.pads = [...k, ...k].map(() => pick([0, 1, 2]));
    const span = k.map((kk, i) => (kk - 1) * ((attrs.dilations as number[])?.[i] ?? 1) + 1);
    if (span.some((sp, i) => sp > inDims[i])) continue; // VALID/no-pad windows need room
    const x = randomF32([2, c, ...inDims], r);
    const w = randomF32([m, c / group, ...k], r);
    const b = r() < 0.5 ? randomF32([m], r) : undefined;
    const want = naiveConv(x, w, b, attrs);
    const [y] = run("Conv", [x, w, b], attrs);
    assert.deepEqual(y.dims, want.dims, JSON.stringify(attrs));
    close(y, want.data, `trial ${trial} ${JSON.stringify(attrs)}`);
  }
});

Deno.test("Conv: float64 and float16 tensors, kernel_shape check, empty batch", () => {
  const x = T("float64", [1, 1, 4], [1, 2, 3, 4]), w = T("float64", [1, 1, 2], [1, -1]);
  const [y] = run("Conv", [x, w], { pads: [1, 0] });
  assert.equal(y.type, "float64");
  assert.deepEqual([...y.data], [-1, -1, -1, -1]);
  const h = (dims: number[], v: number[]): Tensor => {
    const u = new Uint16Array(v.length);
    new Float16Array(u.buffer).set(v);
    return { type: "float16", dims, data: u };
  };
  const [yh] = run("Conv", [h([1, 1, 3], [1, 2, 3]), h([1, 1, 1], [0.5])]);
  assert.equal(yh.type, "float16");
  assert.deepEqual([...new Float16Array((yh.data as Uint16Array).buffer)], [0.5, 1, 1.5]);
  assert.throws(
    () =>
      run("Conv", [f32([1, 1, 4], [0, 0, 0, 0]), f32([1, 1, 2], [0, 0])], { kernel_shape: [3] }),
    ShapeError,
  );
  const [e] = run("Conv", [f32([0, 2, 5], []), f32([3, 2, 2], new Array(12).fill(1))]);
  assert.deepEqual(e.dims, [0, 3, 4]);
});

Deno.test("Conv: bad inputs are typed errors naming the node", () => {
  const x = f32([1, 2, 5, 5], new Array(50).fill(0));
  assert.throws(() => run("Conv", [x, f32([1, 3, 3, 3], new Array(27).fill(0))]), ShapeError);
  assert.throws(() => run("Conv", [x, f32([3, 1, 3, 3], new Array(27).fill(0))], { group: 2 }), {
    name: "ShapeError",
    message: /conv_node.*not divisible/,
  });
  assert.throws(() => run("Conv", [x, f32([1, 2, 3], new Array(6).fill(0))]), ShapeError);
  assert.throws(
    () => run("Conv", [x, f32([1, 2, 3, 3], new Array(18).fill(0))], { pads: [1, 1] }),
    ModelError,
  );
  assert.throws(
    () => run("Conv", [x, f32([1, 2, 3, 3], new Array(18).fill(0)), f32([2], [0, 0])]),
    ShapeError,
  );
  assert.throws(() => run("Conv", [x, f32([1, 2, 7, 7], new Array(98).fill(0))]), ShapeError);
  assert.throws(() => run("Conv", [x, undefined]), ModelError);
  const x4 = f32([1, 1, 2, 2, 2, 2], new Array(16).fill(0));
  assert.throws(() => run("Conv", [x4, f32([1, 1, 1, 1, 1, 1], [1])]), UnsupportedError);
  assert.throws(() => run("Conv", [T("int32", [1, 1, 2], [1, 2]), T("int32", [1, 1, 1], [1])]), {
    name: "ShapeError",
  });
});

Deno.test("ConvInteger: per-output-channel w zero point, int8 inputs, padding adds nothing", () => {
  const x = T("int8", [1, 1, 3], [-1, 2, 5]);
  const w = T("int8", [2, 1, 2], [1, 2, 3, 4]);
  const [y] = run("ConvInteger", [x, w, T("int8", [], [1]), T("int8", [2], [0, 2])], {
    pads: [1, 1],
  });
  // x − 1 = [-2, 1, 4]; channel 0 w = [1, 2], channel 1 w − 2 = [1, 2].
  assert.equal(y.type, "int32");
  assert.deepEqual([...y.data], [-4, 0, 9, 4, -4, 0, 9, 4]);
  assert.throws(() => run("ConvInteger", [x, w, T("int8", [2], [1, 1])]), ShapeError);
  assert.throws(() => run("ConvInteger", [x, w, T("uint8", [], [1])]), ShapeError);
  assert.throws(() => run("ConvInteger", [x, w, undefined, T("int8", [3], [0, 0, 0])]), ShapeError);
});

Deno.test("QLinearConv: per-channel weight scales, int32 bias, rounding half to even, saturation", () => {
  const x = T("uint8", [1, 1, 4], [10, 11, 12, 200]);
  const w = T("int8", [2, 1, 1], [1, -1]);
  const [y] = run("QLinearConv", [
    x,
    f32([], [1]),
    T("uint8", [], [10]),
    w,
    f32([2], [0.5, 1]),
    T("int8", [2], [0, 0]),
    f32([], [1]),
    T("uint8", [], [100]),
    T("int32", [2], [1, 0]),
  ]);
  // ch0: (x−10)·1 + 1 = [1, 2, 3, 191] · 0.5 → [0.5, 1, 1.5, 95.5] → [0, 1, 2, 96] + 100
  // ch1: −(x−10) · 1 = [0, −1, −2, −190] → [100, 99, 98, 0 (saturated)]
  assert.equal(y.type, "uint8");
  assert.deepEqual([...y.data], [100, 101, 102, 196, 100, 99, 98, 0]);
});

// ---------------------------------------------------------------------------------------------
// Pooling

Deno.test("MaxPool/AveragePool: 1-D, 2-D and 3-D against a naive reference, indices too", () => {
  const r = rng(11);
  const pick = <V>(xs: V[]) => xs[Math.floor(r() * xs.length)];
  let checked = 0;
  for (let trial = 0; trial < 200; trial++) {
    const rank = 1 + (trial % 3);
    const inDims = Array.from({ length: rank }, () => 2 + Math.floor(r() * 6));
    const k = Array.from({ length: rank }, () => 1 + Math.floor(r() * 3));
    const attrs: Record<string, AttrValue> = { kernel_shape: k };
    if (r() < 0.6) attrs.strides = k.map(() => pick([1, 2, 3]));
    if (r() < 0.4) attrs.dilations = k.map(() => pick([1, 2]));
    if (r() < 0.5) attrs.ceil_mode = 1;
    const auto = pick(["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]);
    if (auto !== "NOTSET") attrs.auto_pad = auto;
    // ONNX requires pads smaller than the kernel, so no window lies wholly in padding.
    else attrs.pads = [...k, ...k].map((kk) => Math.floor(r() * kk));
    const span = k.map((kk, i) => (kk - 1) * ((attrs.dilations as number[])?.[i] ?? 1) + 1);
    const pads = (attrs.pads as number[]) ?? Array(2 * rank).fill(0);
    if (span.some((sp, i) => sp > inDims[i] + pads[i] + pads[i + rank])) continue;
    const x = randomF32([2, 2, ...inDims], r);
    const maxWant = naivePool(x, attrs, "max");
    const [y, ind] = run("MaxPool", [x], attrs, 2);
    assert.deepEqual(y.dims, maxWant.dims, JSON.stringify(attrs));
    close(y, maxWant.data, `max ${JSON.stringify(attrs)}`);
    assert.deepEqual([...ind.data].map(Number), maxWant.idx, `indices ${JSON.stringify(attrs)}`);
    attrs.count_include_pad = pick([0, 1]);
    const [a] = run("AveragePool", [x], attrs);
    close(a, naivePool(x, attrs, "avg").data, `avg ${JSON.stringify(attrs)}`);
    checked++;
  }
  assert.ok(checked > 100);
});

Deno.test("MaxPool: storage_order 1 gives column-major indices; int8 input; errors", () => {
  const x = f32([1, 1, 2, 3], [1, 9, 2, 8, 3, 7]);
  const [y, i] = run("MaxPool", [x], { kernel_shape: [2, 2], storage_order: 1 }, 2);
  assert.deepEqual([...y.data], [9, 9]);
  // 9 sits at (h 0, w 1): row-major 1, column-major 0 + 1·2 = 2.
  assert.deepEqual([...i.data], [2n, 2n]);
  const [y0, i0] = run("MaxPool", [x], { kernel_shape: [2, 2] }, 2);
  assert.deepEqual([...y0.data], [9, 9]);
  assert.deepEqual([...i0.data], [1n, 1n]);
  // Indices count whole planes before this one (N·C offset).
  const x2 = f32([1, 2, 1, 2], [1, 2, 4, 3]);
  const [, i2] = run("MaxPool", [x2], { kernel_shape: [1, 2] }, 2);
  assert.deepEqual([...i2.data], [1n, 2n]);
  const [q] = run("MaxPool", [T("int8", [1, 1, 3], [-100, -50, -120])], {
    kernel_shape: [2],
    pads: [1, 1],
  });
  assert.deepEqual([...q.data], [-100, -50, -50, -120]);
  assert.throws(() => run("MaxPool", [x]), ModelError); // kernel_shape missing
  assert.throws(() => run("MaxPool", [x], { kernel_shape: [2, 2], storage_order: 2 }), ModelError);
  assert.throws(() => run("MaxPool", [f32([3], [1, 2, 3])], { kernel_shape: [2] }), ShapeError);
  assert.throws(() => run("MaxPool", [x], { kernel_shape: [2, 2], auto_pad: "BAD" }), ModelError);
  assert.throws(() => run("AveragePool", [T("int8", [1, 1, 2], [1, 2])], { kernel_shape: [1] }), {
    name: "ShapeError",
  });
});

Deno.test("AveragePool: ceil_mode windows past the tail padding never count", () => {
  // 1-D, size 5, k 2, s 2, ceil: windows [0,1], [2,3], [4] (the last one past the input).
  const x = f32([1, 1, 5], [1, 2, 3, 4, 5]);
  for (const cip of [0, 1]) {
    const [y] = run("AveragePool", [x], {
      kernel_shape: [2],
      strides: [2],
      ceil_mode: 1,
      count_include_pad: cip,
    });
    assert.deepEqual([...y.data], [1.5, 3.5, 5]);
  }
  const [p] = run("AveragePool", [x], {
    kernel_shape: [3],
    strides: [2],
    pads: [1, 1],
    count_include_pad: 1,
  });
  assert.deepEqual([...p.data].map((v) => +Number(v).toFixed(5)), [1, 3, 3]);
});

Deno.test("GlobalMaxPool/GlobalAveragePool: 1-D, 3-D, uint8 and rank-2 input", () => {
  const x = f32([1, 2, 2, 1, 2], [1, 2, 3, 4, 5, 6, 7, 8]);
  const [m] = run("GlobalMaxPool", [x]);
  assert.deepEqual(m.dims, [1, 2, 1, 1, 1]);
  assert.deepEqual([...m.data], [4, 8]);
  const [a] = run("GlobalAveragePool", [x]);
  assert.deepEqual([...a.data], [2.5, 6.5]);
  const [u] = run("GlobalMaxPool", [T("uint8", [1, 1, 3], [3, 200, 7])]);
  assert.deepEqual([...u.data], [200]);
  const [r2] = run("GlobalAveragePool", [f32([2, 2], [1, 2, 3, 4])]);
  assert.deepEqual(r2.dims, [2, 2]);
  assert.deepEqual([...r2.data], [1, 2, 3, 4]);
  assert.throws(() => run("GlobalAveragePool", [f32([3], [1, 2, 3])]), ShapeError);
});

// ---------------------------------------------------------------------------------------------
// Matrix products

function naiveMatmul(a: Tensor, b: Tensor): { dims: number[]; data: number[] } {
  const ad = a.dims.length === 1 ? [1, a.dims[0]] : a.dims;
  const bd = b.dims.length === 1 ? [b.dims[0], 1] : b.dims;
  const r = Math.max(ad.length, bd.length);
  const pa = [...Array(r - ad.length).fill(1), ...ad],
    pb = [...Array(r - bd.length).fill(1), ...bd];
  const batch = pa.slice(0, -2).map((d, i) => (d === 1 ? pb[i] : d));
  const [m, k, n] = [pa[r - 2], pa[r - 1], pb[r - 1]];
  const data: number[] = [];
  for (const bi of indices(batch)) {
    const ai = bi.map((v, i) => (pa[i] === 1 ? 0 : v)),
      bj = bi.map((v, i) => (pb[i] === 1 ? 0 : v));
    const ao = flat(ai, pa.slice(0, -2)) * m * k, bo = flat(bj, pb.slice(0, -2)) * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) {
          s += Number(a.data[ao + i * k + p]) * Number(b.data[bo + p * n + j]);
        }
        data.push(s);
      }
    }
  }
  const dims = [...batch];
  if (a.dims.length > 1) dims.push(m);
  if (b.dims.length > 1) dims.push(n);
  return { dims, data };
}

Deno.test("MatMul: numpy.matmul shapes, 1-D promotion and batch broadcasting", () => {
  const r = rng(3);
  const shapes: [number[], number[]][] = [
    [[3], [3]],
    [[4], [2, 4, 1]],
    [[2, 1, 3, 4], [5, 4, 9]],
    [[5, 4, 9], [9]],
    [[2, 3, 4], [4, 10]], // B shared: one tall product
    [[1, 4], [3, 4, 2]],
    [[2, 1, 2, 3], [1, 3, 3, 1]],
    [[0, 2, 3], [3, 4]],
    [[2, 0], [0, 3]], // K = 0: zeros
    [[6, 12], [12, 16]],
  ];
  for (const [ad, bd] of shapes) {
    const a = randomF32(ad, r), b = randomF32(bd, r);
    const want = naiveMatmul(a, b);
    const [y] = run("MatMul", [a, b]);
    assert.deepEqual(y.dims, want.dims, `[${ad}] × [${bd}]`);
    close(y, want.data, `[${ad}] × [${bd}]`);
  }
  const [i] = run("MatMul", [T("int32", [2, 2], [1, 2, 3, 4]), T("int32", [2], [5, 6])]);
  assert.deepEqual([...i.data], [17, 39]);
  const big: Tensor = { type: "int64", dims: [1, 2], data: new BigInt64Array([2n ** 40n, 3n]) };
  const [y64] = run("MatMul", [big, {
    type: "int64",
    dims: [2],
    data: new BigInt64Array([2n ** 20n, -1n]),
  }]);
  assert.deepEqual([...y64.data], [2n ** 60n - 3n]);
  assert.throws(
    () => run("MatMul", [f32([2, 3], new Array(6).fill(0)), f32([2, 3], new Array(6).fill(0))]),
    {
      name: "ShapeError",
      message: /matmul_node/,
    },
  );
  assert.throws(() => run("MatMul", [f32([], [1]), f32([1], [1])]), ShapeError);
  assert.throws(
    () => run("MatMul", [f32([2, 1, 1], [1, 2]), f32([3, 1, 1], [1, 2, 3])]),
    ShapeError,
  );
  assert.throws(() => run("MatMul", [f32([1], [1]), T("int32", [1], [1])]), ShapeError);
});

Deno.test("Gemm: transposes, alpha/beta, every C broadcast, no C, int32", () => {
  const r = rng(5);
  const a = randomF32([3, 4], r), b = randomF32([4, 5], r);
  const base = naiveMatmul(a, b).data;
  const at = f32([4, 3], [...indices([4, 3])].map(([i, j]) => Number(a.data[j * 4 + i])));
  const bt = f32([5, 4], [...indices([5, 4])].map(([i, j]) => Number(b.data[j * 5 + i])));
  for (
    const [cd, cf] of [
      [[], (_i: number, _j: number) => 0],
      [[1], (_i: number, _j: number) => 0],
      [[5], (_i: number, j: number) => j],
      [[1, 5], (_i: number, j: number) => j],
      [[3, 1], (i: number, _j: number) => i],
      [[3, 5], (i: number, j: number) => i * 5 + j],
    ] as [number[], (i: number, j: number) => number][]
  ) {
    const n = cd.reduce((p, q) => p * q, 1);
    const c = f32(cd, Array.from({ length: n }, (_, i) => i + 0.5));
    for (const [tA, tB] of [[0, 0], [1, 0], [0, 1], [1, 1]]) {
      const [y] = run("Gemm", [tA ? at : a, tB ? bt : b, c], {
        transA: tA,
        transB: tB,
        alpha: 2,
        beta: 0.5,
      });
      assert.deepEqual(y.dims, [3, 5]);
      const want = base.map((v, e) => 2 * v + 0.5 * (cf(Math.floor(e / 5), e % 5) + 0.5));
      close(y, want, `C [${cd}] tA ${tA} tB ${tB}`);
    }
  }
  const [nc] = run("Gemm", [a, b], { alpha: 3 });
  close(nc, base.map((v) => 3 * v));
  const [ii] = run("Gemm", [
    T("int32", [1, 2], [1, 2]),
    T("int32", [2, 1], [3, 4]),
    T("int32", [1], [5]),
  ]);
  assert.deepEqual([...ii.data], [16]);
  assert.throws(() => run("Gemm", [a, b, f32([2, 5], new Array(10).fill(0))]), ShapeError);
  assert.throws(() => run("Gemm", [a, b, f32([1, 1, 5], new Array(5).fill(0))]), ShapeError);
  assert.throws(() => run("Gemm", [a, a]), ShapeError);
  assert.throws(() => run("Gemm", [f32([3], [1, 2, 3]), b]), ShapeError);
});

Deno.test("MatMulInteger: per-row A and per-column B zero points, N-D", () => {
  const a = T("uint8", [2, 3], [1, 2, 3, 4, 5, 6]);
  const b = T("uint8", [3, 2], [1, 0, 0, 1, 1, 1]);
  const [y] = run("MatMulInteger", [a, b, T("uint8", [2], [1, 4]), T("uint8", [2], [0, 1])]);
  // A − [1; 4] = [[0,1,2],[0,1,2]]; B − [0, 1] = [[1,-1],[0,0],[1,0]].
  assert.deepEqual([...y.data], [2, 0, 2, 0]);
  const a3 = T("int8", [2, 1, 2], [1, 2, 3, 4]), b2 = T("int8", [2, 1], [1, -1]);
  const [y3] = run("MatMulInteger", [a3, b2, T("int8", [2, 1, 1], [0, 1])]);
  assert.deepEqual(y3.dims, [2, 1, 1]);
  assert.deepEqual([...y3.data], [-1, -1]);
  assert.throws(() => run("MatMulInteger", [a, b, T("uint8", [3], [0, 0, 0])]), ShapeError);
  assert.throws(() => run("MatMulInteger", [a, b, T("int8", [], [0])]), ShapeError);
});

Deno.test("QLinearMatMul: per-column b scale and zero point, saturation, int8", () => {
  const a = T("int8", [1, 2], [10, -10]);
  const b = T("int8", [2, 2], [1, 2, 3, 4]);
  const [y] = run("QLinearMatMul", [
    a,
    f32([], [1]),
    T("int8", [], [0]),
    b,
    f32([2], [0.25, 100]),
    T("int8", [2], [0, 1]),
    f32([], [1]),
    T("int8", [], [1]),
  ]);
  // col 0: (10·1 − 10·3)·0.25 = −5 → −4; col 1: (10·1 − 10·3)·100 = −2000 → −128.
  assert.deepEqual([...y.data], [-4, -128]);
  const u = (v: number[], dims = [v.length]) => T("uint8", dims, v);
  // Round half to even: 2.5 → 2, 3.5 → 4.
  const [h] = run("QLinearMatMul", [
    u([5, 7], [2, 1]),
    f32([], [0.5]),
    u([0]),
    u([1], [1, 1]),
    f32([], [1]),
    u([0]),
    f32([], [1]),
    u([0]),
  ]);
  assert.deepEqual([...h.data], [2, 4]);
});
