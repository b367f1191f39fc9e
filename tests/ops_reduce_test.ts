// Reductions (src/ops/reduce.ts) called directly with a JS context: every axis subset against a
// naive reference, the opset rules for axes (attribute vs input, noop_with_empty_axes), empty
// reductions, integer wrap-around, int64/bool/float16 data, ArgMax/ArgMin, and typed errors.
import assert from "node:assert/strict";
import { Node, Value } from "../src/graph/ir.ts";
import type { AttrValue } from "../src/graph/ir.ts";
import type { Tensor } from "../src/graph/tensor.ts";
import { jsContext } from "../src/ops/types.ts";
import { REDUCE_OPS } from "../src/ops/reduce.ts";
import { ArgumentError, ShapeError } from "../src/errors.ts";
import { rng } from "./util.ts";

function run(
  op: string,
  inputs: (Tensor | undefined)[],
  attrs: Record<string, AttrValue> = {},
  opset = 18,
): Tensor {
  const node = new Node(`n_${op}`, op, "", inputs.map((_, i) => new Value(`x${i}`)), [
    new Value("y"),
  ], attrs);
  return REDUCE_OPS[op](inputs, jsContext(node, opset))[0];
}

const count = (dims: number[]) => dims.reduce((a, b) => a * b, 1);
const f32 = (dims: number[], v: number[]): Tensor => ({
  type: "float32",
  dims,
  data: Float32Array.from(v),
});
const i64 = (v: (number | bigint)[], dims = [v.length]): Tensor => ({
  type: "int64",
  dims,
  data: BigInt64Array.from(v, (x) => BigInt(x)),
});
const vals = (t: Tensor) => Array.from(t.data as ArrayLike<number | bigint>, Number);

/** Naive reduction by output index: gathers each output's elements, then applies `f`. */
function reference(
  x: number[],
  dims: number[],
  axes: number[],
  keep: boolean,
  f: (xs: number[]) => number,
): { dims: number[]; data: number[] } {
  const red = dims.map((_, i) => axes.includes(i));
  const keptDims = dims.map((d, i) => (red[i] ? 1 : d));
  const groups = new Map<number, number[]>();
  for (let i = 0; i < x.length; i++) {
    let rem = i, key = 0, mul = 1;
    for (let a = dims.length - 1; a >= 0; a--) {
      const c = rem % dims[a];
      rem = Math.floor(rem / dims[a]);
      if (!red[a]) key += c * mul;
      mul *= keptDims[a];
    }
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(x[i]);
  }
  const n = count(keptDims);
  const data = Array.from({ length: n }, (_, k) => f(groups.get(k) ?? []));
  return { dims: keep ? keptDims : dims.filter((_, i) => !red[i]), data };
}

const sum = (a: number[]) => a.reduce((s, v) => s + v, 0);
const REF: Record<string, (a: number[]) => number> = {
  ReduceSum: sum,
  ReduceMean: (a) => sum(a) / a.length,
  ReduceMax: (a) => Math.max(...a),
  ReduceMin: (a) => Math.min(...a),
  ReduceProd: (a) => a.reduce((s, v) => s * v, 1),
  ReduceL1: (a) => sum(a.map(Math.abs)),
  ReduceL2: (a) => Math.sqrt(sum(a.map((v) => v * v))),
  ReduceLogSum: (a) => Math.log(sum(a)),
  ReduceLogSumExp: (a) => Math.log(sum(a.map(Math.exp))),
  ReduceSumSquare: (a) => sum(a.map((v) => v * v)),
};

function close(got: number[], want: number[], what: string, rtol = 1e-5) {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const ok = Object.is(got[i], want[i]) ||
      Math.abs(got[i] - want[i]) <= 1e-6 + rtol * Math.abs(want[i]);
    assert.ok(ok, `${what}: [${i}] ${got[i]} vs ${want[i]}`);
  }
}

Deno.test("Reduce*: every axis subset of 4-D tensors (with size-1 dims) matches the reference", () => {
  const r = rng(7);
  for (const dims of [[2, 3, 4, 5], [3, 1, 4, 2], [1, 5, 1, 3], [4, 3, 2, 1]]) {
    const x = Array.from({ length: count(dims) }, () => r() * 2 + 0.1);
    for (let mask = 0; mask < 16; mask++) {
      const axes = [0, 1, 2, 3].filter((a) => mask & (1 << a));
      for (const [op, f] of Object.entries(REF)) {
        for (const keep of [0, 1]) {
          // Alternate positive and negative spellings of the axes.
          const spelled = axes.map((a, i) => (i % 2 ? a - 4 : a));
          const ins = [f32(dims, x), axes.length ? i64(spelled) : undefined];
          const got = run(op, ins, { keepdims: keep });
          const want = reference(x, dims, axes.length ? axes : [0, 1, 2, 3], !!keep, f);
          assert.deepEqual(got.dims, want.dims, `${op} axes=${axes} keep=${keep}`);
          close(vals(got), want.data, `${op} [${dims}] axes=${axes} keep=${keep}`);
        }
      }
    }
  }
});

Deno.test("Reduce*: float64 and float16 keep their type", () => {
  const x = [1.5, -2, 3.25, 4, 0.5, -6];
  const d = run("ReduceSum", [
    { type: "float64", dims: [2, 3], data: Float64Array.from(x) },
    i64([1]),
  ]);
  assert.equal(d.type, "float64");
  assert.deepEqual(vals(d), [2.75, -1.5]);
  const h = new Float16Array(x);
  const half: Tensor = { type: "float16", dims: [2, 3], data: new Uint16Array(h.buffer) };
  const got = run("ReduceMax", [half, i64([0])], { keepdims: 0 });
  assert.equal(got.type, "float16");
  assert.deepEqual(got.dims, [3]);
  const gd = got.data as Uint16Array;
  assert.deepEqual(Array.from(new Float16Array(gd.buffer, gd.byteOffset, gd.length)), [
    4,
    0.5,
    3.25,
  ]);
});

Deno.test("Reduce*: axes are an attribute before opset 13 (Sum) / 18 (others), an input after", () => {
  const x = f32([2, 3], [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(vals(run("ReduceSum", [x], { axes: [1] }, 11)), [6, 15]);
  assert.deepEqual(vals(run("ReduceSum", [x, i64([0])], {}, 13)), [5, 7, 9]);
  assert.deepEqual(vals(run("ReduceMean", [x], { axes: [0], keepdims: 0 }, 13)), [2.5, 3.5, 4.5]);
  assert.deepEqual(vals(run("ReduceMean", [x, i64([-1])], { keepdims: 0 }, 18)), [2, 5]);
  // No axes at all: everything, with keepdims giving [1, 1].
  const all = run("ReduceProd", [x], {}, 11);
  assert.deepEqual(all.dims, [1, 1]);
  assert.deepEqual(vals(all), [720]);
  // An empty axes input reduces everything unless noop_with_empty_axes.
  assert.deepEqual(vals(run("ReduceSum", [x, i64([])], { keepdims: 0 }, 13)), [21]);
  const noop = run("ReduceSum", [x, i64([])], { noop_with_empty_axes: 1 }, 13);
  assert.deepEqual(noop.dims, [2, 3]);
  assert.deepEqual(vals(noop), [1, 2, 3, 4, 5, 6]);
});

Deno.test("Reduce*: noop_with_empty_axes reduces over single elements (|x|, x², log x)", () => {
  const x = f32([4], [-2, 3, 0.5, -1]);
  const noop = { noop_with_empty_axes: 1 };
  assert.deepEqual(vals(run("ReduceL1", [x], noop)), [2, 3, 0.5, 1]);
  assert.deepEqual(vals(run("ReduceL2", [x], noop)), [2, 3, 0.5, 1]);
  assert.deepEqual(vals(run("ReduceSumSquare", [x], noop)), [4, 9, 0.25, 1]);
  assert.deepEqual(vals(run("ReduceMax", [x], noop)), [-2, 3, 0.5, -1]);
  assert.deepEqual(vals(run("ReduceLogSumExp", [x], noop)), [-2, 3, 0.5, -1]);
  const ls = vals(run("ReduceLogSum", [f32([2], [1, Math.E])], noop));
  close(ls, [0, 1], "ReduceLogSum noop");
});

Deno.test("Reduce*: an empty reduction gives the op's identity (Max → −∞ / type min)", () => {
  const x = f32([2, 0, 4], []);
  const ax = i64([1]);
  const want: Record<string, number> = {
    ReduceSum: 0,
    ReduceMax: -Infinity,
    ReduceMin: Infinity,
    ReduceProd: 1,
    ReduceL1: 0,
    ReduceL2: 0,
    ReduceSumSquare: 0,
    ReduceLogSum: -Infinity,
    ReduceLogSumExp: -Infinity,
  };
  for (const [op, v] of Object.entries(want)) {
    const got = run(op, [x, ax]);
    assert.deepEqual(got.dims, [2, 1, 4], op);
    assert.deepEqual(vals(got), new Array(8).fill(v), op);
  }
  assert.ok(vals(run("ReduceMean", [x, ax])).every(Number.isNaN));
  const i32: Tensor = { type: "int32", dims: [0, 3], data: new Int32Array(0) };
  assert.deepEqual(vals(run("ReduceMax", [i32, i64([0])])), [-(2 ** 31), -(2 ** 31), -(2 ** 31)]);
  assert.deepEqual(vals(run("ReduceMin", [i32, i64([0])], { keepdims: 0 })), [
    2 ** 31 - 1,
    2 ** 31 - 1,
    2 ** 31 - 1,
  ]);
  const big = run("ReduceMax", [i64([], [0]), i64([0])]);
  assert.deepEqual(Array.from(big.data as BigInt64Array), [-(2n ** 63n)]);
  const b: Tensor = { type: "bool", dims: [0], data: new Uint8Array(0) };
  assert.deepEqual(vals(run("ReduceMax", [b], {}, 20)), [0]);
  assert.deepEqual(vals(run("ReduceMin", [b], {}, 20)), [1]);
  // A zero-size kept axis: the output is empty too.
  const e = run("ReduceSum", [f32([0, 3], []), i64([1])], {}, 13);
  assert.deepEqual(e.dims, [0, 1]);
  assert.equal(e.data.length, 0);
});

Deno.test("Reduce*: integer types wrap like the fixed-width type; Mean truncates", () => {
  const i32: Tensor = { type: "int32", dims: [3], data: Int32Array.from([2 ** 31 - 1, 1, 5]) };
  assert.deepEqual(vals(run("ReduceSum", [i32])), [-(2 ** 31) + 5]);
  assert.deepEqual(
    vals(run("ReduceProd", [{ ...i32, data: Int32Array.from([65536, 65536, 3]) }])),
    [0],
  );
  assert.deepEqual(vals(run("ReduceMean", [{ ...i32, data: Int32Array.from([-7, 0, 0]) }])), [-2]);
  const u8: Tensor = { type: "uint8", dims: [2, 2], data: Uint8Array.from([200, 100, 7, 250]) };
  assert.deepEqual(vals(run("ReduceSum", [u8, i64([1])], {}, 13)), [44, 1]);
  assert.deepEqual(vals(run("ReduceMax", [u8, i64([0])])), [200, 250]);
  const i8: Tensor = { type: "int8", dims: [3], data: Int8Array.from([-128, 5, -3]) };
  assert.deepEqual(vals(run("ReduceMin", [i8])), [-128]);
  assert.deepEqual(vals(run("ReduceL1", [i8])), [-120]); // 136 wraps in int8
});

Deno.test("Reduce*: int64 is exact beyond 2^53 and wraps at 2^64", () => {
  const x = i64([2n ** 60n, 1n, 3n, -(2n ** 60n), 7n, 2n ** 62n], [2, 3]);
  const s = run("ReduceSum", [x, i64([1])], { keepdims: 0 }, 13);
  assert.equal(s.type, "int64");
  assert.deepEqual(Array.from(s.data as BigInt64Array), [
    2n ** 60n + 4n,
    2n ** 62n - 2n ** 60n + 7n,
  ]);
  const p = run("ReduceProd", [i64([2n ** 62n, 4n]), i64([0])]);
  assert.deepEqual(Array.from(p.data as BigInt64Array), [0n]);
  const m = run("ReduceMean", [i64([10n ** 18n, 10n ** 18n + 2n, -5n, -6n], [2, 2]), i64([1])]);
  assert.deepEqual(Array.from(m.data as BigInt64Array), [10n ** 18n + 1n, -5n]);
  const mx = run("ReduceMax", [x, i64([0])], { keepdims: 0 });
  assert.deepEqual(Array.from(mx.data as BigInt64Array), [2n ** 60n, 7n, 2n ** 62n]);
  const l2 = run("ReduceL2", [i64([3, 4])]);
  assert.deepEqual(Array.from(l2.data as BigInt64Array), [5n]);
});

Deno.test("Reduce*: bool ReduceMax/Min are any/all", () => {
  const b: Tensor = { type: "bool", dims: [3, 2], data: Uint8Array.from([1, 0, 0, 0, 1, 1]) };
  const mx = run("ReduceMax", [b, i64([1])], { keepdims: 0 }, 20);
  assert.equal(mx.type, "bool");
  assert.deepEqual(vals(mx), [1, 0, 1]);
  assert.deepEqual(vals(run("ReduceMin", [b, i64([1])], { keepdims: 0 }, 20)), [0, 0, 1]);
  assert.throws(() => run("ReduceSum", [b]), ShapeError);
});

Deno.test("ReduceLogSumExp is stable for large and infinite inputs", () => {
  const x = f32([2, 3], [1000, 1000, 1000, -Infinity, -Infinity, -Infinity]);
  const got = vals(run("ReduceLogSumExp", [x, i64([1])], { keepdims: 0 }));
  close(got, [1000 + Math.log(3), -Infinity], "lse");
  // Over an outer axis (the strided pass) and over two separate axis blocks.
  const y = f32([2, 2, 2], [1000, -1000, 1000, 0, 999, 0, 1000, -1000]);
  const o = vals(run("ReduceLogSumExp", [y, i64([0, 2])], { keepdims: 0 }));
  close(o, [1000 + Math.log(1 + Math.exp(-1)), 1000 + Math.log(2)], "lse blocks");
  assert.deepEqual(vals(run("ReduceLogSumExp", [f32([2], [Infinity, 1])])), [Infinity]);
});

Deno.test("Reduce*: scalars reduce to scalars", () => {
  const s = f32([], [4]);
  const got = run("ReduceSumSquare", [s]);
  assert.deepEqual(got.dims, []);
  assert.deepEqual(vals(got), [16]);
});

Deno.test("Reduce*: bad axes and inputs throw typed errors naming the node", () => {
  const x = f32([2, 3], [1, 2, 3, 4, 5, 6]);
  assert.throws(() => run("ReduceSum", [x, i64([2])], {}, 13), ArgumentError);
  assert.throws(() => run("ReduceSum", [x, i64([1, -1])], {}, 13), /listed twice/);
  assert.throws(() => run("ReduceMax", [x], { axes: [-3] }, 13), /n_ReduceMax/);
  assert.throws(
    () => run("ReduceMean", [x, { type: "float32", dims: [1], data: Float32Array.of(0) }]),
    ShapeError,
  );
  assert.throws(() => run("ReduceSum", [undefined]), ShapeError);
  assert.throws(
    () => run("ReduceSum", [{ type: "float32", dims: [4], data: new Float32Array(3) }]),
    ShapeError,
  );
});

Deno.test("ArgMax/ArgMin: axis, keepdims, select_last_index, ties, int64 and float16", () => {
  const x = f32([2, 3], [1, 5, 5, 7, 0, 7]);
  const a = run("ArgMax", [x], { axis: 1 }, 13);
  assert.equal(a.type, "int64");
  assert.deepEqual(a.dims, [2, 1]);
  assert.deepEqual(vals(a), [1, 0]);
  assert.deepEqual(vals(run("ArgMax", [x], { axis: -1, select_last_index: 1 }, 13)), [2, 2]);
  const b = run("ArgMin", [x], { axis: 0, keepdims: 0 }, 13);
  assert.deepEqual(b.dims, [3]);
  assert.deepEqual(vals(b), [0, 1, 0]);
  assert.deepEqual(vals(run("ArgMin", [f32([4], [3, 1, 1, 2])], { select_last_index: 1 }, 13)), [
    2,
  ]);
  // select_last_index did not exist before opset 12.
  assert.deepEqual(vals(run("ArgMax", [x], { axis: 1, select_last_index: 1 }, 11)), [1, 0]);
  const big = i64([2n ** 62n, 2n ** 62n + 1n, 5n]);
  assert.deepEqual(vals(run("ArgMax", [big], {}, 13)), [1]);
  const h = new Float16Array([0.5, -3, 2, 2]);
  const half: Tensor = { type: "float16", dims: [2, 2], data: new Uint16Array(h.buffer) };
  assert.deepEqual(vals(run("ArgMin", [half], { axis: 1 }, 13)), [1, 0]);
  // Middle axis of a 3-D tensor.
  const m = f32([2, 3, 2], [0, 9, 4, 1, 2, 3, 5, 5, 6, 0, 1, 8]);
  assert.deepEqual(vals(run("ArgMax", [m], { axis: 1, keepdims: 0 }, 13)), [1, 0, 1, 2]);
  assert.throws(() => run("ArgMax", [f32([2, 0], [])], { axis: 1 }, 13), ShapeError);
  assert.deepEqual(vals(run("ArgMax", [f32([0, 3], [])], { axis: 1 }, 13)), []);
  assert.throws(() => run("ArgMax", [x], { axis: 2 }, 13), ArgumentError);
});
