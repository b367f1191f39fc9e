// Tensor and shape operators (src/ops/tensor_ops.ts and the files it gathers), called directly
// with a JS context: corners the ONNX node tests do not reach (negative steps, INT64
// sentinels, cropping pads, empty tensors, every dtype) and the typed errors for bad inputs.
import assert from "node:assert/strict";
import type { AttrValue } from "../src/graph/ir.ts";
import type { Tensor, TensorType } from "../src/graph/tensor.ts";
import { TENSOR_OPS } from "../src/ops/tensor_ops.ts";
import { toHalfBits } from "../src/ops/strided.ts";
import { allocTensor, stridesOf } from "../src/ops/tensor_util.ts";
import { ArgumentError, ModelError, ShapeError } from "../src/errors.ts";
import { rng, runOp } from "./util.ts";

const run = (
  op: string,
  inputs: (Tensor | undefined)[],
  attrs: Record<string, AttrValue> = {},
  opset = 18,
  nOut = 1,
) => runOp(TENSOR_OPS, op, inputs, attrs, opset, nOut);

const f32 = (dims: number[], v?: number[]): Tensor => ({
  type: "float32",
  dims,
  data: v ? Float32Array.from(v) : Float32Array.from({ length: count(dims) }, (_, i) => i),
});
const i64 = (v: number[], dims = [v.length]): Tensor => ({
  type: "int64",
  dims,
  data: BigInt64Array.from(v, (x) => BigInt(x)),
});
const count = (dims: number[]) => dims.reduce((a, b) => a * b, 1);
const vals = (t: Tensor) => Array.from(t.data as ArrayLike<number | bigint>, Number);
const one = (op: string, ins: (Tensor | undefined)[], attrs = {}, opset = 18) =>
  run(op, ins, attrs, opset)[0];

/** Reference transpose by explicit index arithmetic. */
function refTranspose(x: Tensor, perm: number[]): number[] {
  const dims = perm.map((p) => x.dims[p]);
  const st = stridesOf(x.dims), ost = stridesOf(dims);
  const src = vals(x);
  const out = new Array<number>(src.length);
  for (let o = 0; o < out.length; o++) {
    let s = 0;
    for (let d = 0; d < dims.length; d++) s += (Math.floor(o / ost[d]) % dims[d]) * st[perm[d]];
    out[o] = src[s];
  }
  return out;
}

Deno.test("Transpose matches index arithmetic: NCHW↔NHWC, 2-D blocks, 5-D, default perm", () => {
  const cases: [number[], number[] | undefined][] = [
    [[2, 5, 7, 9], [0, 2, 3, 1]],
    [[2, 9, 5, 7], [0, 3, 1, 2]],
    [[1, 64, 33, 17], [0, 2, 3, 1]],
    [[37, 70], [1, 0]],
    [[3, 4, 5, 6, 2], [4, 1, 3, 0, 2]],
    [[2, 1, 3, 1], [3, 2, 1, 0]],
    [[4, 5, 6], undefined],
    [[0, 3], [1, 0]],
  ];
  for (const [dims, perm] of cases) {
    const x = f32(dims);
    const y = one("Transpose", [x], perm ? { perm } : {});
    const p = perm ?? dims.map((_, i) => dims.length - 1 - i);
    assert.deepEqual(y.dims, p.map((q) => dims[q]));
    assert.deepEqual(vals(y), refTranspose(x, p), `dims [${dims}] perm [${p}]`);
  }
  const big = i64([1, 2, 3, 4, 5, 6], [2, 3]);
  const t = one("Transpose", [big], { perm: [1, 0] });
  assert.ok(t.data instanceof BigInt64Array);
  assert.deepEqual(vals(t), [1, 4, 2, 5, 3, 6]);
  assert.throws(() => one("Transpose", [big], { perm: [0, 0] }), ModelError);
});

/** Reference slice: per-axis index lists from Python's range(start, end, step) rules. */
function refSlice(x: Tensor, ranges: number[][]): number[] {
  const st = stridesOf(x.dims), src = vals(x), out: number[] = [];
  const walk = (d: number, off: number) => {
    if (d === x.dims.length) return void out.push(src[off]);
    for (const i of ranges[d]) walk(d + 1, off + i * st[d]);
  };
  walk(0, 0);
  return out;
}

/**
 * Indices a slice visits on an axis of size n: Python's range(start, end, step) after the
 * spec's clamping. It differs from NumPy in one corner: with a negative step, a start below
 * −n clamps to 0 (the spec), not to −1 (NumPy, which would give an empty slice).
 */
function specRange(start: number, end: number, step: number, n: number): number[] {
  const norm = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + n : v, lo), hi);
  const s = step > 0 ? norm(start, 0, n) : norm(start, 0, n - 1);
  const e = step > 0 ? norm(end, 0, n) : norm(end, -1, n - 1);
  const out: number[] = [];
  for (let i = s; step > 0 ? i < e : i > e; i += step) out.push(i);
  return out;
}

Deno.test("Slice: random starts/ends/steps (negative, out of range) match the spec's clamping", () => {
  const r = rng(7);
  const pick = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  for (let t = 0; t < 300; t++) {
    const dims = Array.from({ length: pick(1, 4) }, () => pick(0, 6));
    const x = f32(dims);
    const axes = dims.map((_, i) => i).filter(() => r() < 0.7);
    const starts = axes.map(() => pick(-9, 9)), ends = axes.map(() => pick(-9, 9));
    const steps = axes.map(() => (r() < 0.5 ? -1 : 1) * pick(1, 3));
    const ranges = dims.map((n, d) => {
      const k = axes.indexOf(d);
      return k < 0 ? specRange(0, n, 1, n) : specRange(starts[k], ends[k], steps[k], n);
    });
    const y = one("Slice", [
      x,
      i64(starts),
      i64(ends),
      i64(axes.map((a) => a - dims.length)),
      i64(steps),
    ]);
    assert.deepEqual(y.dims, ranges.map((q) => q.length), `case ${t}`);
    assert.deepEqual(vals(y), refSlice(x, ranges), `case ${t}`);
  }
});

Deno.test("Slice: INT64 sentinels reverse an axis, opset 9 attributes, step 0 is an error", () => {
  const x = f32([2, 4]);
  const MAX = 9223372036854775807n, MIN = -9223372036854775808n;
  const big = (v: bigint[]): Tensor => ({
    type: "int64",
    dims: [v.length],
    data: BigInt64Array.from(v),
  });
  const rev = one("Slice", [x, big([-1n]), big([MIN]), big([1n]), big([-1n])]);
  assert.deepEqual(vals(rev), [3, 2, 1, 0, 7, 6, 5, 4]);
  const all = one("Slice", [x, big([1n]), big([MAX]), big([1n])]);
  assert.deepEqual(vals(all), [1, 2, 3, 5, 6, 7]);
  // Negative step, start below −dim: the spec clamps it to 0, so one element remains.
  assert.deepEqual(vals(one("Slice", [x, i64([-9]), i64([-9]), i64([1]), i64([-1])])), [0, 4]);
  const old = one("Slice", [x], { starts: [1, 0], ends: [2, -1] }, 9);
  assert.deepEqual(old.dims, [1, 3]);
  assert.deepEqual(vals(old), [4, 5, 6]);
  assert.throws(() => one("Slice", [x, i64([0]), i64([2]), i64([0]), i64([0])]), ArgumentError);
  assert.throws(() => one("Slice", [x, i64([0]), i64([2]), i64([2])]), ArgumentError);
  assert.throws(() => one("Slice", [x, i64([0]), i64([2, 3])]), ShapeError);
});

Deno.test("Pad: every mode, negative pads crop, axes input, periodic reflect, dtypes", () => {
  const x = f32([3], [1, 2, 3]);
  const pad = (mode: string, pads: number[]) => vals(one("Pad", [x, i64(pads)], { mode }));
  assert.deepEqual(pad("constant", [2, 1]), [0, 0, 1, 2, 3, 0]);
  assert.deepEqual(pad("edge", [2, 1]), [1, 1, 1, 2, 3, 3]);
  assert.deepEqual(pad("reflect", [2, 2]), [3, 2, 1, 2, 3, 2, 1]);
  assert.deepEqual(pad("reflect", [4, 4]), [1, 2, 3, 2, 1, 2, 3, 2, 1, 2, 3]); // as np.pad
  assert.deepEqual(pad("wrap", [4, 2]), [3, 1, 2, 3, 1, 2, 3, 1, 2]);
  assert.deepEqual(pad("constant", [-1, 2]), [2, 3, 0, 0]);
  assert.deepEqual(pad("edge", [-2, 1]), [3, 3]);
  assert.deepEqual(pad("constant", [-3, 1]), [0]);

  // 2-D, axes input with a negative axis, constant_value.
  const m = f32([2, 3]);
  const y = one("Pad", [m, i64([1, -1]), f32([], [9]), i64([-1])]);
  assert.deepEqual(y.dims, [2, 3]);
  assert.deepEqual(vals(y), [9, 0, 1, 9, 3, 4]);
  // Opset 2: pads and value are attributes; float16 takes the value as half bits.
  const h: Tensor = { type: "float16", dims: [1], data: Uint16Array.of(0x3c00) };
  const yh = one("Pad", [h], { pads: [1, 0], value: 1.5 }, 2);
  assert.deepEqual(vals(yh), [0x3e00, 0x3c00]);
  // int64 reflect and bool constant.
  const yi = one("Pad", [i64([5, 6, 7]), i64([1, 1])], { mode: "reflect" });
  assert.deepEqual(Array.from(yi.data as BigInt64Array), [6n, 5n, 6n, 7n, 6n]);
  const b: Tensor = { type: "bool", dims: [2], data: Uint8Array.of(1, 1) };
  assert.deepEqual(vals(one("Pad", [b, i64([1, 0])])), [0, 1, 1]);

  assert.throws(() => one("Pad", [x, i64([-4, 0])]), ShapeError);
  assert.throws(() => one("Pad", [x, i64([1, 1, 1, 1])]), ShapeError);
  assert.throws(() => one("Pad", [f32([0]), i64([1, 1])], { mode: "edge" }), ArgumentError);
  assert.throws(() => one("Pad", [x, i64([1, 1])], { mode: "mirror" }), ModelError);
});

Deno.test("Expand broadcasts both ways; Tile repeats; both on int64 and bool", () => {
  const y = one("Expand", [f32([3, 1], [1, 2, 3]), i64([2, 1, 4])]);
  assert.deepEqual(y.dims, [2, 3, 4]);
  assert.deepEqual(vals(y), [
    1,
    1,
    1,
    1,
    2,
    2,
    2,
    2,
    3,
    3,
    3,
    3,
    1,
    1,
    1,
    1,
    2,
    2,
    2,
    2,
    3,
    3,
    3,
    3,
  ]);
  const z = one("Expand", [i64([1, 2, 3, 4], [1, 4]), i64([3, 1])]);
  assert.deepEqual(z.dims, [3, 4]);
  assert.deepEqual(vals(z), [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4]);
  assert.deepEqual(one("Expand", [f32([2, 1]), i64([0])]).dims, [2, 0]);
  assert.throws(() => one("Expand", [f32([3]), i64([2])]), ShapeError);
  assert.throws(() => one("Expand", [f32([1]), i64([1 << 20, 1 << 20, 1 << 20])]), ShapeError);

  const t = one("Tile", [f32([2, 2], [1, 2, 3, 4]), i64([2, 3])]);
  assert.deepEqual(t.dims, [4, 6]);
  assert.deepEqual(vals(t).slice(0, 12), [1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4]);
  assert.deepEqual(vals(t).slice(12), vals(t).slice(0, 12));
  const b: Tensor = { type: "bool", dims: [2], data: Uint8Array.of(1, 0) };
  assert.deepEqual(vals(one("Tile", [b, i64([3])])), [1, 0, 1, 0, 1, 0]);
  assert.deepEqual(one("Tile", [f32([2, 3]), i64([0, 1])]).dims, [0, 3]);
  assert.throws(() => one("Tile", [f32([2]), i64([1, 1])]), ShapeError);
});

Deno.test("Concat, Split: negative axes, empty parts, uneven num_outputs, errors", () => {
  const a = f32([2, 2], [1, 2, 3, 4]), e = f32([2, 0]), c = f32([2, 1], [5, 6]);
  const y = one("Concat", [a, e, c], { axis: -1 });
  assert.deepEqual(y.dims, [2, 3]);
  assert.deepEqual(vals(y), [1, 2, 5, 3, 4, 6]);
  const s = one("Concat", [i64([1]), i64([], [0]), i64([2, 3])], { axis: 0 });
  assert.deepEqual(vals(s), [1, 2, 3]);
  assert.throws(() => one("Concat", [a, i64([1, 2, 3, 4], [2, 2])], { axis: 0 }), ShapeError);
  assert.throws(() => one("Concat", [a, f32([3, 1])], { axis: 1 }), ShapeError);
  assert.throws(() => one("Concat", [a, c], { axis: 2 }), ArgumentError);

  const x = f32([2, 7]);
  const parts = run("Split", [x], { axis: 1, num_outputs: 3 }, 18, 3);
  assert.deepEqual(parts.map((p) => p.dims), [[2, 3], [2, 3], [2, 1]]);
  assert.deepEqual(vals(parts[2]), [6, 13]);
  const var11 = run("Split", [x], { axis: -1, split: [5, 0, 2] }, 11, 3);
  assert.deepEqual(var11.map((p) => p.dims), [[2, 5], [2, 0], [2, 2]]);
  assert.deepEqual(vals(var11[2]), [5, 6, 12, 13]);
  const var13 = run("Split", [x, i64([1, 6])], { axis: 1 }, 13, 2);
  assert.deepEqual(vals(var13[0]), [0, 7]);
  assert.throws(() => run("Split", [x, i64([1, 5])], { axis: 1 }, 13, 2), ShapeError);
  assert.throws(() => run("Split", [x, i64([1, 6])], { axis: 1 }, 13, 3), ShapeError);
  assert.throws(() => run("Split", [f32([5])], { num_outputs: 4 }, 18, 4), ShapeError);
});

Deno.test("Gather / GatherElements: negative, scalar and 2-D indices; out of range errors", () => {
  const x = f32([3, 20]);
  const g = one("Gather", [x, i64([-1, 0])]);
  assert.deepEqual(g.dims, [2, 20]);
  assert.deepEqual(vals(g), [...vals(x).slice(40), ...vals(x).slice(0, 20)]);
  const sc = one("Gather", [x, i64([2], [])], { axis: 1 });
  assert.deepEqual(sc.dims, [3]);
  assert.deepEqual(vals(sc), [2, 22, 42]);
  const i32: Tensor = { type: "int32", dims: [2, 2], data: Int32Array.of(0, 1, -1, 1) };
  const g2 = one("Gather", [f32([2, 3, 2]), i32], { axis: 1 });
  assert.deepEqual(g2.dims, [2, 2, 2, 2]);
  assert.deepEqual(vals(g2), [0, 1, 2, 3, 4, 5, 2, 3, 6, 7, 8, 9, 10, 11, 8, 9]);
  assert.throws(() => one("Gather", [x, i64([3])]), ArgumentError);
  assert.throws(() => one("Gather", [x, f32([1])]), ShapeError);

  const d = f32([3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const ge = one("GatherElements", [d, i64([1, 2, 0, 2, 0, 0], [2, 3])], { axis: 0 });
  assert.deepEqual(vals(ge), [4, 8, 3, 7, 2, 3]);
  const ge1 = one("GatherElements", [f32([2, 2], [1, 2, 3, 4]), i64([0, 0, 1, -2], [2, 2])], {
    axis: -1,
  });
  assert.deepEqual(vals(ge1), [1, 1, 4, 3]);
  assert.throws(() => one("GatherElements", [d, i64([3], [1, 1])]), ArgumentError);
  assert.throws(() => one("GatherElements", [d, i64([0])]), ShapeError);
});

Deno.test("Reshape, Flatten, Squeeze, Unsqueeze return views with the right dims", () => {
  const x = f32([2, 3, 4]);
  const r = one("Reshape", [x, i64([0, -1])]);
  assert.deepEqual(r.dims, [2, 12]);
  assert.equal(r.data, x.data);
  assert.deepEqual(one("Reshape", [f32([0, 3]), i64([0, 4])], { allowzero: 1 }, 14).dims, [0, 4]);
  assert.deepEqual(one("Reshape", [f32([0, 3]), i64([0, -1])]).dims, [0, 0]);
  assert.throws(() => one("Reshape", [x, i64([-1, -1])]), ShapeError);
  assert.throws(() => one("Reshape", [x, i64([5, -1])]), ShapeError);
  assert.throws(() => one("Reshape", [x, i64([0, 0, 0, 0])]), ShapeError);
  assert.throws(() => one("Reshape", [x, i64([0, -1])], { allowzero: 1 }, 14), ShapeError);

  assert.deepEqual(one("Flatten", [x], { axis: 0 }).dims, [1, 24]);
  assert.deepEqual(one("Flatten", [x], { axis: -1 }).dims, [6, 4]);
  assert.deepEqual(one("Flatten", [x], { axis: 3 }).dims, [24, 1]);
  assert.throws(() => one("Flatten", [x], { axis: 4 }), ArgumentError);

  const s = f32([1, 3, 1, 2]);
  assert.deepEqual(one("Squeeze", [s]).dims, [3, 2]);
  assert.deepEqual(one("Squeeze", [s], { axes: [-2] }, 11).dims, [1, 3, 2]);
  assert.deepEqual(one("Squeeze", [s, i64([2, 0])], {}, 13).dims, [3, 2]);
  assert.throws(() => one("Squeeze", [s, i64([1])], {}, 13), ShapeError);
  assert.throws(() => one("Squeeze", [s, i64([4])], {}, 13), ArgumentError);
  assert.deepEqual(one("Unsqueeze", [f32([3, 4]), i64([-1, 0])], {}, 13).dims, [1, 3, 4, 1]);
  assert.deepEqual(one("Unsqueeze", [f32([3, 4])], { axes: [3, 1] }, 11).dims, [3, 1, 4, 1]);
  assert.deepEqual(one("Unsqueeze", [f32([], [5]), i64([0])], {}, 13).dims, [1]);
  assert.throws(() => one("Unsqueeze", [f32([3]), i64([0, 0])], {}, 13), ArgumentError);
  assert.throws(() => one("Unsqueeze", [f32([3])], {}, 13), ModelError);
});

Deno.test("Shape, Size, ConstantOfShape, Range", () => {
  const x = f32([3, 4, 5]);
  assert.deepEqual(vals(one("Shape", [x])), [3, 4, 5]);
  assert.deepEqual(vals(one("Shape", [x], { start: -2, end: 100 })), [4, 5]);
  assert.deepEqual(one("Shape", [x], { start: 2, end: 1 }).dims, [0]);
  const sz = one("Size", [x]);
  assert.deepEqual([sz.type, sz.dims, vals(sz)], ["int64", [], [60]]);

  const c = one("ConstantOfShape", [i64([2, 3])], { value: i64([7], [1]) });
  assert.equal(c.type, "int64");
  assert.deepEqual(vals(c), [7, 7, 7, 7, 7, 7]);
  const z = one("ConstantOfShape", [i64([], [0])]);
  assert.deepEqual([z.type, z.dims, vals(z)], ["float32", [], [0]]);
  assert.deepEqual(one("ConstantOfShape", [i64([4, 0])]).dims, [4, 0]);
  assert.throws(() => one("ConstantOfShape", [i64([-1])]), ShapeError);

  const ri = one("Range", [i64([10], []), i64([1], []), i64([-3], [])]);
  assert.deepEqual([ri.type, vals(ri)], ["int64", [10, 7, 4]]);
  const rf = one("Range", [f32([], [1]), f32([], [2]), f32([], [0.25])]);
  assert.deepEqual(vals(rf), [1, 1.25, 1.5, 1.75]);
  assert.deepEqual(one("Range", [i64([5], []), i64([1], []), i64([1], [])]).dims, [0]);
  assert.throws(() => one("Range", [i64([0], []), i64([1], []), i64([0], [])]), ArgumentError);
  assert.throws(() => one("Range", [i64([0], []), f32([], [1]), i64([1], [])]), ShapeError);
});

Deno.test("DepthToSpace (DCR, CRD) and SpaceToDepth invert each other and match the spec", () => {
  // Spec: DCR = reshape [N, b, b, C/b², H, W] → transpose [0, 3, 4, 1, 5, 2].
  const [n, c, h, w, b] = [2, 8, 3, 2, 2];
  const x = f32([n, c, h, w]);
  const dcr = one("DepthToSpace", [x], { blocksize: b });
  const viaT = refTranspose(f32([n, b, b, c / 4, h, w]), [0, 3, 4, 1, 5, 2]);
  assert.deepEqual(dcr.dims, [n, c / 4, h * b, w * b]);
  assert.deepEqual(vals(dcr), viaT);
  const crd = one("DepthToSpace", [x], { blocksize: b, mode: "CRD" });
  assert.deepEqual(vals(crd), refTranspose(f32([n, c / 4, b, b, h, w]), [0, 1, 4, 2, 5, 3]));
  const back = one("SpaceToDepth", [dcr], { blocksize: b });
  assert.deepEqual(back.dims, x.dims);
  assert.deepEqual(vals(back), vals(x));
  assert.throws(() => one("DepthToSpace", [f32([1, 3, 2, 2])], { blocksize: 2 }), ShapeError);
  assert.throws(() => one("SpaceToDepth", [f32([1, 1, 3, 2])], { blocksize: 2 }), ArgumentError);
  assert.throws(() => one("SpaceToDepth", [f32([1, 1, 2, 2])], {}), ModelError);
});

Deno.test("Trilu keeps the upper/lower triangle with offset k; Identity and Dropout pass through", () => {
  const x = f32([2, 3, 3], Array.from({ length: 18 }, (_, i) => i + 1));
  assert.deepEqual(vals(one("Trilu", [x])).slice(0, 9), [1, 2, 3, 0, 5, 6, 0, 0, 9]);
  assert.deepEqual(vals(one("Trilu", [x, i64([1], [])])).slice(9), [0, 11, 12, 0, 0, 15, 0, 0, 0]);
  assert.deepEqual(
    vals(one("Trilu", [x, i64([-1], [])], { upper: 0 })).slice(0, 9),
    [0, 0, 0, 4, 0, 0, 7, 8, 0],
  );
  const ti = one("Trilu", [i64([1, 2, 3, 4], [2, 2])], { upper: 0 });
  assert.deepEqual(Array.from(ti.data as BigInt64Array), [1n, 0n, 3n, 4n]);

  assert.equal(one("Identity", [x]).data, x.data);
  const [y, mask] = run("Dropout", [x, f32([], [0.5])], {}, 13, 2);
  assert.equal(y.data, x.data);
  assert.equal(mask.type, "bool");
  assert.ok(vals(mask).every((v) => v === 1));
  const old = run("Dropout", [x], { ratio: 0.3 }, 7, 2);
  assert.equal(old[1].type, "float32");
  assert.deepEqual(vals(old[1]).slice(0, 3), [1, 1, 1]);
  const on: Tensor = { type: "bool", dims: [], data: Uint8Array.of(1) };
  assert.throws(() => run("Dropout", [x, f32([], [0.5]), on], {}, 13), ArgumentError);
  assert.deepEqual(run("Dropout", [x, f32([], [0]), on], {}, 13)[0].dims, x.dims);
});

Deno.test("Data movement keeps every dtype's storage type (int4 unpacked, float16 bits, uint64)", () => {
  const types: TensorType[] = [
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "float64",
    "float16",
    "int4",
    "uint4",
    "int64",
    "uint64",
    "bool",
  ];
  for (const type of types) {
    const x = allocTensor(type, [2, 3]);
    const big = type === "int64" || type === "uint64";
    for (let i = 0; i < 6; i++) {
      (x.data as unknown as (number | bigint)[])[i] = big ? BigInt(i % 2) : i % 2;
    }
    const t = one("Transpose", [x]);
    assert.equal(t.data.constructor, x.data.constructor, type);
    assert.deepEqual(vals(t), [0, 1, 1, 0, 0, 1], type);
    const s = one("Slice", [x, i64([1]), i64([3]), i64([1])]);
    assert.deepEqual(vals(s), [1, 0, 0, 1], type);
    const c = one("Concat", [x, x], { axis: 0 });
    assert.deepEqual(vals(c).slice(6), vals(x), type);
  }
  // 64-bit values move bit-exactly: beyond 2^53, and NaN payloads.
  const huge = [2n ** 62n + 1n, -(2n ** 63n), 2n ** 63n - 1n, 3n];
  const h: Tensor = { type: "int64", dims: [2, 2], data: BigInt64Array.from(huge) };
  const hv = (t: Tensor) => Array.from(t.data as BigInt64Array);
  assert.deepEqual(hv(one("Transpose", [h])), [huge[0], huge[2], huge[1], huge[3]]);
  assert.deepEqual(hv(one("Gather", [h, i64([1])], { axis: 1 })), [huge[1], huge[3]]);
  assert.deepEqual(hv(one("Pad", [h, i64([0, 1, 0, 0])], { mode: "edge" })), [
    huge[0],
    ...huge.slice(0, 2),
    huge[2],
    ...huge.slice(2),
  ]);
  const nan = new Float64Array(2);
  new DataView(nan.buffer).setBigUint64(0, 0x7ff0000000000123n, true); // signalling NaN
  const tn = one("Tile", [{ type: "float64", dims: [2], data: nan }, i64([2])]);
  const bits = new BigUint64Array((tn.data as Float64Array).buffer);
  assert.deepEqual([bits[0], bits[2]], [0x7ff0000000000123n, 0x7ff0000000000123n]);

  assert.equal(toHalfBits(1), 0x3c00);
  assert.equal(toHalfBits(-2.5), 0xc100);
  assert.equal(toHalfBits(65520), 0x7c00); // rounds to infinity
  assert.equal(toHalfBits(2 ** -24), 0x0001); // smallest subnormal
});
