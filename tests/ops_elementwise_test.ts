// Element-wise ops (src/ops/elementwise.ts) called directly with a JS context: broadcasting
// against a naive index-by-index reference (same shape, scalar, per-channel, NHWC, outer
// product, empty), integer wrap-around and truncation, int64 beyond 2^53, float16 in and out,
// Cast between every kind of dtype, opset rules of Clip, and typed errors for bad inputs.
import assert from "node:assert/strict";
import { Node, Value } from "../src/graph/ir.ts";
import type { AttrValue } from "../src/graph/ir.ts";
import type { Tensor, TensorData, TensorType } from "../src/graph/tensor.ts";
import { jsContext } from "../src/ops/types.ts";
import { ELEMENTWISE_OPS } from "../src/ops/elementwise.ts";
import { erf, f16Values, f32ToF16, roundEven } from "../src/ops/elementwise_kernels.ts";
import { ModelError, ShapeError } from "../src/errors.ts";
import { rng } from "./util.ts";

function run(
  op: string,
  inputs: (Tensor | undefined)[],
  attrs: Record<string, AttrValue> = {},
  opset = 21,
): Tensor {
  const node = new Node(`n_${op}`, op, "", inputs.map((_, i) => new Value(`x${i}`)), [
    new Value("y"),
  ], attrs);
  return ELEMENTWISE_OPS[op](inputs, jsContext(node, opset))[0];
}

const count = (dims: number[]) => dims.reduce((a, b) => a * b, 1);
const t = (type: TensorType, dims: number[], v: ArrayLike<number>): Tensor => {
  const data: TensorData = type === "int64"
    ? BigInt64Array.from(Array.from(v), BigInt)
    : type === "uint64"
    ? BigUint64Array.from(Array.from(v), BigInt)
    : type === "float16"
    ? Uint16Array.from(Array.from(v), f32ToF16)
    : new ({
      float32: Float32Array,
      float64: Float64Array,
      int8: Int8Array,
      uint8: Uint8Array,
      int16: Int16Array,
      uint16: Uint16Array,
      int32: Int32Array,
      uint32: Uint32Array,
      bool: Uint8Array,
      int4: Int8Array,
      uint4: Uint8Array,
    } as Record<string, new (a: ArrayLike<number>) => TensorData>)[type](v);
  return { type, dims, data };
};
const f32 = (dims: number[], v: ArrayLike<number>) => t("float32", dims, v);
const vals = (x: Tensor): number[] =>
  x.type === "float16"
    ? Array.from(x.data as Uint16Array, (h) => f16Values()[h])
    : Array.from(x.data as ArrayLike<number | bigint>, Number);

function randData(r: () => number, n: number): number[] {
  return Array.from({ length: n }, () => Math.round((r() * 20 - 10) * 8) / 8);
}

/** Naive NumPy broadcasting: output element → index into each input. */
function naive(
  ins: number[][],
  dims: number[][],
  out: number[],
  f: (...v: number[]) => number,
): number[] {
  const res: number[] = [];
  const idx = new Array(out.length).fill(0);
  for (let e = 0; e < count(out); e++) {
    let rem = e;
    for (let d = out.length - 1; d >= 0; d--) {
      idx[d] = rem % out[d];
      rem = Math.floor(rem / out[d]);
    }
    const args = ins.map((v, i) => {
      const di = dims[i], off = out.length - di.length;
      let flat = 0;
      for (let d = 0; d < di.length; d++) flat = flat * di[d] + (di[d] === 1 ? 0 : idx[d + off]);
      return v[flat];
    });
    res.push(f(...args));
  }
  return res;
}

const BCAST_CASES: [number[], number[]][] = [
  [[2, 3, 4], [2, 3, 4]], // same shape
  [[2, 3, 4], []], // scalar
  [[], [2, 3, 4]],
  [[1], [5]],
  [[2, 3, 4, 5], [3, 1, 1]], // per-channel NCHW
  [[2, 3, 4, 5], [1, 3, 1, 1]],
  [[2, 4, 5, 3], [3]], // NHWC trailing channel
  [[2, 1], [1, 3]], // outer product
  [[4, 1, 3], [2, 1]],
  [[1, 3, 1, 5], [2, 1, 4, 1]],
  [[0, 3], [3]], // empty
  [[3, 0], [1]],
  [[5, 1, 1, 1], [1, 1, 1, 1]],
];

Deno.test("binary arithmetic broadcasts like NumPy (float32)", () => {
  const r = rng(1);
  const ops: [string, (a: number, b: number) => number][] = [
    ["Add", (a, b) => a + b],
    ["Sub", (a, b) => a - b],
    ["Mul", (a, b) => a * b],
    ["Div", (a, b) => a / b],
  ];
  for (const [da, db] of BCAST_CASES) {
    const out = (() => {
      const rank = Math.max(da.length, db.length);
      return Array.from({ length: rank }, (_, i) => {
        const x = da[da.length - rank + i] ?? 1, y = db[db.length - rank + i] ?? 1;
        return x === 1 ? y : x;
      });
    })();
    const va = randData(r, count(da)), vb = randData(r, count(db)).map((v) => v || 0.5);
    for (const [op, f] of ops) {
      const y = run(op, [f32(da, va), f32(db, vb)]);
      assert.deepEqual(y.dims, out, `${op} ${da} ${db}`);
      const want = naive([va, vb], [da, db], out, f).map(Math.fround);
      assert.deepEqual(vals(y), want, `${op} [${da}] [${db}]`);
    }
  }
});

Deno.test("comparisons and Where broadcast three ways", () => {
  const r = rng(2);
  for (const [da, db] of BCAST_CASES) {
    const va = randData(r, count(da)), vb = randData(r, count(db));
    const y = run("Less", [f32(da, va), f32(db, vb)]);
    assert.equal(y.type, "bool");
    const rank = Math.max(da.length, db.length);
    const out = y.dims;
    assert.equal(out.length, rank);
    assert.deepEqual(vals(y), naive([va, vb], [da, db], out, (a, b) => (a < b ? 1 : 0)));
  }
  const c = t("bool", [2, 1, 1], [1, 0]);
  const x = t("int64", [1, 3, 1], [10, 20, 30]);
  const yv = t("int64", [4], [-1, -2, -3, -4]);
  const w = run("Where", [c, x, yv]);
  assert.deepEqual(w.dims, [2, 3, 4]);
  assert.equal(w.type, "int64");
  assert.deepEqual(
    vals(w),
    naive([[1, 0], [10, 20, 30], [-1, -2, -3, -4]], [[2, 1, 1], [1, 3, 1], [4]], [2, 3, 4], (
      ci,
      xi,
      yi,
    ) => (ci ? xi : yi)),
  );
  // float16 values move bit-exactly.
  const h = run("Where", [
    t("bool", [3], [1, 0, 1]),
    t("float16", [3], [1.5, 2, 3]),
    t(
      "float16",
      [],
      [-7],
    ),
  ]);
  assert.deepEqual(vals(h), [1.5, -7, 3]);
});

Deno.test("integer arithmetic wraps and truncates like C", () => {
  assert.deepEqual(
    vals(run("Div", [t("int32", [4], [-3, 3, -3, 3]), t("int32", [4], [2, 2, -2, -2])])),
    [-1, 1, 1, -1],
  );
  assert.deepEqual(vals(run("Div", [t("int32", [2], [7, -7]), t("int32", [2], [0, 0])])), [0, 0]);
  assert.deepEqual(vals(run("Add", [t("int8", [2], [100, -100]), t("int8", [2], [100, -100])])), [
    -56,
    56,
  ]);
  assert.deepEqual(vals(run("Sub", [t("uint8", [1], [3]), t("uint8", [1], [5])])), [254]);
  assert.deepEqual(vals(run("Mul", [t("uint8", [1], [200]), t("uint8", [1], [2])])), [144]);
  // 65537² overflows 2^32; the low 32 bits survive only with an integer multiply.
  assert.deepEqual(
    vals(run("Mul", [t("int32", [1], [65537]), t("int32", [1], [65537])])),
    [Math.imul(65537, 65537)],
  );
  assert.deepEqual(
    vals(run("Mul", [t("uint32", [1], [0xffffffff]), t("uint32", [1], [3])])),
    [0xfffffffd],
  );
  // int64 beyond 2^53 stays exact.
  const big = run("Add", [
    { type: "int64", dims: [1], data: BigInt64Array.of(2n ** 60n + 1n) },
    { type: "int64", dims: [], data: BigInt64Array.of(1n) },
  ]);
  assert.equal((big.data as BigInt64Array)[0], 2n ** 60n + 2n);
  const wrap = run("Mul", [
    { type: "int64", dims: [1], data: BigInt64Array.of(2n ** 62n) },
    { type: "int64", dims: [1], data: BigInt64Array.of(4n) },
  ]);
  assert.equal((wrap.data as BigInt64Array)[0], 0n);
  assert.deepEqual(
    vals(run("Div", [t("int64", [3], [-7, 7, 5]), t("int64", [3], [2, 2, 0])])),
    [-3, 3, 0],
  );
  assert.deepEqual(vals(run("Relu", [t("int8", [3], [-5, 0, 5])])), [0, 0, 5]);
  assert.deepEqual(vals(run("Abs", [t("int8", [2], [-128, -3])])), [-128, 3]);
  assert.deepEqual(vals(run("Neg", [t("int64", [2], [5, -6])])), [-5, 6]);
  assert.deepEqual(vals(run("Sign", [t("int32", [3], [-9, 0, 4])])), [-1, 0, 1]);
});

Deno.test("Mod: fmod 0 takes the divisor's sign, fmod 1 the dividend's", () => {
  const a = t("int32", [4], [-4, 7, 5, -5]), b = t("int32", [4], [3, -3, 0, 3]);
  assert.deepEqual(vals(run("Mod", [a, b])), [2, -2, 0, 1]);
  assert.deepEqual(vals(run("Mod", [a, b], { fmod: 1 })), [-1, 1, 0, -2]);
  const ab = t("int64", [2], [-4, 7]), bb = t("int64", [2], [3, -3]);
  assert.deepEqual(vals(run("Mod", [ab, bb])), [2, -2]);
  assert.deepEqual(vals(run("Mod", [f32([2], [-4.5, 7.5]), f32([], [2])], { fmod: 1 })), [
    -0.5,
    1.5,
  ]);
  assert.throws(() => run("Mod", [f32([1], [1]), f32([1], [1])]), ModelError);
});

Deno.test("Pow keeps X's type for every mix of X and Y types", () => {
  assert.deepEqual(vals(run("Pow", [t("int64", [3], [1, 2, 3]), f32([3], [4, 5, 6])])), [
    1,
    32,
    729,
  ]);
  const p = run("Pow", [t("int64", [1], [3]), t("int64", [1], [39])]);
  assert.equal((p.data as BigInt64Array)[0], 3n ** 39n); // beyond 2^53, exact
  assert.deepEqual(vals(run("Pow", [t("int32", [2], [2, 4]), f32([2], [3, 0.5])])), [8, 2]);
  assert.deepEqual(vals(run("Pow", [f32([2], [2, 3]), t("int64", [1], [2])])), [4, 9]);
  assert.deepEqual(vals(run("Pow", [f32([2], [4, 9]), f32([], [0.5])])), [2, 3]);
  const h = run("Pow", [t("float16", [2], [1.5, 2]), t("int32", [], [2])]);
  assert.equal(h.type, "float16");
  assert.deepEqual(vals(h), [2.25, 4]);
});

Deno.test("variadic Max/Min/Sum/Mean fold with broadcasting", () => {
  const a = f32([2, 1], [1, 5]), b = f32([3], [2, 4, 6]), c = f32([], [3]);
  assert.deepEqual(vals(run("Max", [a, b, c])), [3, 4, 6, 5, 5, 6]);
  assert.deepEqual(vals(run("Min", [a, b, c])), [1, 1, 1, 2, 3, 3]);
  assert.deepEqual(vals(run("Sum", [a, b, c])), [6, 8, 10, 10, 12, 14]);
  assert.deepEqual(vals(run("Mean", [a, b])), [1.5, 2.5, 3.5, 3.5, 4.5, 5.5]);
  assert.deepEqual(vals(run("Sum", [b])), [2, 4, 6]);
  assert.ok(Number.isNaN(vals(run("Max", [f32([1], [NaN]), f32([1], [1])]))[0]));
  assert.ok(Number.isNaN(vals(run("Min", [f32([1], [1]), f32([1], [NaN])]))[0]));
  const big = run("Max", [t("int64", [2], [-5, 9]), t("int64", [1], [0])]);
  assert.deepEqual(vals(big), [0, 9]);
  assert.deepEqual(vals(run("Min", [t("uint8", [2], [200, 3]), t("uint8", [2], [100, 9])])), [
    100,
    3,
  ]);
  assert.throws(() => run("Max", [f32([2], [1, 2]), f32([3], [1, 2, 3])]), ShapeError);
});

Deno.test("unary activations match their formulas", () => {
  const xs = [-3, -1, -0.25, 0, 0.25, 1, 3];
  const x = f32([7], xs);
  const check = (op: string, f: (v: number) => number, attrs = {}) => {
    const got = vals(run(op, [x], attrs));
    got.forEach((g, i) => {
      const w = f(xs[i]);
      assert.ok(Math.abs(g - w) <= 1e-6 + 1e-5 * Math.abs(w), `${op}(${xs[i]}) ${g} vs ${w}`);
    });
  };
  check("Relu", (v) => Math.max(0, v));
  check("LeakyRelu", (v) => (v < 0 ? 0.1 * v : v), { alpha: 0.1 });
  check("Elu", (v) => (v < 0 ? 2 * (Math.exp(v) - 1) : v), { alpha: 2 });
  check("Selu", (v) => (v <= 0 ? 3 * (2 * Math.exp(v) - 2) : 3 * v), { alpha: 2, gamma: 3 });
  check("HardSigmoid", (v) => Math.max(0, Math.min(1, 0.2 * v + 0.5)));
  check("HardSwish", (v) => v * Math.max(0, Math.min(1, v / 6 + 0.5)));
  check("Sigmoid", (v) => 1 / (1 + Math.exp(-v)));
  check("Softplus", (v) => Math.log(1 + Math.exp(v)));
  check("Softsign", (v) => v / (1 + Math.abs(v)));
  check("Mish", (v) => v * Math.tanh(Math.log(1 + Math.exp(v))));
  check(
    "Gelu",
    (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))),
    {
      approximate: "tanh",
    },
  );
  check("Gelu", (v) => 0.5 * v * (1 + erf(v / Math.SQRT2)));
  check("Round", roundEven);
  assert.deepEqual(vals(run("Round", [f32([6], [0.5, 1.5, 2.5, -0.5, -1.5, 2.4])])), [
    0,
    2,
    2,
    -0,
    -2,
    2,
  ]);
  // Softplus does not overflow for large inputs.
  assert.deepEqual(vals(run("Softplus", [f32([2], [1000, -1000])])), [1000, 0]);
  assert.throws(() => run("Gelu", [x], { approximate: "fast" }), ModelError);
  assert.throws(() => run("Exp", [t("int32", [1], [1])]), ShapeError);
  assert.deepEqual(vals(run("Not", [t("bool", [2], [1, 0])])), [0, 1]);
});

Deno.test("erf is accurate to float precision", () => {
  const ref: [number, number][] = [
    [1e-3, 0.0011283787909692363],
    [0.1, 0.1124629160182849],
    [0.49, 0.5116683515],
    [0.5, 0.5204998778130465],
    [1, 0.8427007929497149],
    [2, 0.9953222650189527],
    [3, 0.9999779095030014],
  ];
  for (const [x, want] of ref) {
    for (const s of [1, -1]) {
      const got = erf(s * x);
      assert.ok(Math.abs(got - s * want) <= 2e-7 * want, `erf(${s * x}) = ${got}`);
    }
  }
  assert.equal(erf(0), 0);
  assert.equal(erf(10), 1);
});

Deno.test("float16 conversion rounds to nearest even and round-trips every value", () => {
  const table = f16Values();
  for (let h = 0; h < 65536; h++) {
    const v = table[h];
    if (Number.isNaN(v)) assert.ok(Number.isNaN(table[f32ToF16(v)]));
    else assert.equal(f32ToF16(v), h, `bits ${h.toString(16)}`);
  }
  const r = rng(3);
  const f16round = (Math as unknown as { f16round?: (x: number) => number }).f16round;
  for (let i = 0; i < 20000; i++) {
    // Random float32 across the half range, subnormals and overflow included.
    const v = Math.fround((r() - 0.5) * 2 ** (r() * 40 - 28));
    const h = f32ToF16(v);
    if (f16round) assert.equal(table[h], f16round(v), `${v}`);
  }
  // Ties go to even: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10.
  assert.equal(f32ToF16(1 + 2 ** -11), 0x3c00);
  assert.equal(f32ToF16(1 + 3 * 2 ** -11), 0x3c02);
  assert.equal(f32ToF16(65520), 0x7c00); // rounds up to infinity
  assert.equal(f32ToF16(65519), 0x7bff);
  assert.equal(f32ToF16(2 ** -25), 0); // halfway to the smallest subnormal → 0 (even)
  assert.equal(f32ToF16(2 ** -25 * 1.5), 1);
  // float16 arithmetic comes back as float16.
  const y = run("Add", [t("float16", [2], [1, 2048]), t("float16", [], [1])]);
  assert.equal(y.type, "float16");
  assert.deepEqual(vals(y), [2, 2048]); // 2049 is not a half: ties to even
  const e = run("Equal", [t("float16", [2], [0, 1]), t("float16", [2], [-0, 2])]);
  assert.deepEqual(vals(e), [1, 0]);
});

Deno.test("Cast between every kind of dtype", () => {
  const to = (x: Tensor, code: number) => run("Cast", [x], { to: code });
  // float → int truncates toward zero.
  assert.deepEqual(vals(to(f32([4], [2.7, -2.7, 0.5, -0.5]), 6)), [2, -2, 0, 0]);
  assert.deepEqual(vals(to(f32([3], [2.7, -2.7, NaN]), 7)), [2, -2, 0]);
  // int64 narrows by wrapping (low bits kept, beyond 2^53 too).
  const big: Tensor = {
    type: "int64",
    dims: [2],
    data: BigInt64Array.of(2n ** 60n + 5n, -1n),
  };
  assert.deepEqual(vals(to(big, 6)), [5, -1]);
  assert.deepEqual(vals(to(big, 2)), [5, 255]);
  assert.equal((to(big, 13).data as BigUint64Array)[1], 2n ** 64n - 1n);
  assert.deepEqual(vals(to(t("int32", [2], [-1, 300]), 7)), [-1, 300]);
  // → bool: nonzero (NaN included) is true.
  assert.deepEqual(vals(to(f32([4], [0, -0, 0.1, NaN]), 9)), [0, 0, 1, 1]);
  assert.deepEqual(vals(to(big, 9)), [1, 1]);
  // → float16 rounds to nearest even; float16 → float is exact.
  const h = to(f32([3], [1 + 2 ** -11, 65520, -0.1]), 10);
  assert.deepEqual(Array.from(h.data as Uint16Array), [0x3c00, 0x7c00, f32ToF16(-0.1)]);
  assert.deepEqual(vals(to(h, 1)), [1, Infinity, f16Values()[f32ToF16(-0.1)]]);
  assert.deepEqual(vals(to(to(t("int64", [2], [3, -2048]), 10), 7)), [3, -2048]);
  // → int4/uint4: round half to even, then keep 4 bits.
  const x4 = f32([8], [-9, 8, 2.5, 3.5, -2.5, 15, 16, 7.4]);
  assert.deepEqual(vals(to(x4, 22)), [7, -8, 2, 4, -2, -1, 0, 7]);
  assert.deepEqual(vals(to(x4, 21)), [7, 8, 2, 4, 14, 15, 0, 7]);
  assert.deepEqual(vals(to(t("int32", [2], [-9, 17]), 22)), [7, 1]);
  assert.deepEqual(vals(to(t("int4", [2], [-8, 7]), 1)), [-8, 7]);
  assert.deepEqual(vals(to(t("uint4", [2], [15, 7]), 3)), [15, 7]);
  // CastLike takes the second input's dtype.
  const cl = run("CastLike", [f32([2], [1.9, -1.9]), t("int8", [0], [])]);
  assert.equal(cl.type, "int8");
  assert.deepEqual(vals(cl), [1, -1]);
  assert.throws(() => to(f32([1], [1]), 8), ModelError); // STRING
  assert.throws(() => run("Cast", [f32([1], [1])]), ModelError); // no 'to'
});

Deno.test("Clip: attributes before opset 11, optional inputs after", () => {
  const x = f32([5], [-3, -1, 0, 1, 3]);
  assert.deepEqual(vals(run("Clip", [x], { min: -1, max: 2 }, 6 + 4)), [-1, -1, 0, 1, 2]);
  assert.deepEqual(vals(run("Clip", [x], {}, 10)), [-3, -1, 0, 1, 3]);
  assert.deepEqual(vals(run("Clip", [x, undefined, f32([], [0])], {}, 13)), [-3, -1, 0, 0, 0]);
  assert.deepEqual(vals(run("Clip", [x, f32([1], [0])], {}, 13)), [0, 0, 0, 1, 3]);
  // min > max: everything becomes max.
  assert.deepEqual(vals(run("Clip", [x, f32([], [2]), f32([], [1])], {}, 13)), [1, 1, 1, 1, 1]);
  assert.deepEqual(
    vals(run("Clip", [t("int64", [3], [-5, 0, 5]), t("int64", [], [-1]), t("int64", [], [1])])),
    [-1, 0, 1],
  );
  assert.deepEqual(vals(run("Clip", [t("int8", [3], [-128, 0, 127]), t("int8", [], [-3])])), [
    -3,
    0,
    127,
  ]);
  assert.throws(() => run("Clip", [x, f32([2], [0, 1])], {}, 13), ShapeError);
  assert.throws(() => run("Clip", [x, t("int32", [], [0])], {}, 13), ShapeError);
});

Deno.test("PRelu broadcasts the slope to X only", () => {
  const x = f32([1, 2, 2, 1], [-1, 2, -3, 4]);
  assert.deepEqual(vals(run("PRelu", [x, f32([2, 1, 1], [0.5, 0.25])])), [-0.5, 2, -0.75, 4]);
  assert.deepEqual(vals(run("PRelu", [x, f32([], [2])])), [-2, 2, -6, 4]);
  assert.deepEqual(vals(run("PRelu", [x, f32([1], [2])])), [-2, 2, -6, 4]);
  assert.throws(() => run("PRelu", [f32([2], [1, 2]), f32([2, 2], [1, 2, 3, 4])]), ShapeError);
  assert.deepEqual(vals(run("PRelu", [t("int64", [2], [-3, 3]), t("int64", [1], [2])])), [-6, 3]);
});

Deno.test("logic, bitwise and shifts", () => {
  const a = t("bool", [4], [0, 0, 1, 1]), b = t("bool", [4], [0, 1, 0, 1]);
  assert.deepEqual(vals(run("And", [a, b])), [0, 0, 0, 1]);
  assert.deepEqual(vals(run("Or", [a, b])), [0, 1, 1, 1]);
  assert.deepEqual(vals(run("Xor", [a, b])), [0, 1, 1, 0]);
  const u = t("uint32", [3], [1, 0x80000000, 16]);
  assert.deepEqual(
    vals(run("BitShift", [u, t("uint32", [3], [31, 1, 2])], { direction: "LEFT" })),
    [
      0x80000000,
      0,
      64,
    ],
  );
  assert.deepEqual(
    vals(run("BitShift", [u, t("uint32", [], [4])], { direction: "RIGHT" })),
    [0, 0x08000000, 1],
  );
  assert.deepEqual(
    vals(run("BitShift", [t("uint8", [1], [0x81]), t("uint8", [1], [1])], { direction: "LEFT" })),
    [2],
  );
  assert.throws(() => run("BitShift", [u, u]), ModelError);
  assert.deepEqual(vals(run("BitwiseAnd", [t("int32", [1], [12]), t("int32", [1], [10])])), [8]);
  assert.deepEqual(vals(run("BitwiseNot", [t("uint8", [1], [1])])), [254]);
  const eq = run("Equal", [t("int64", [2], [5, 6]), t("int64", [], [6])]);
  assert.deepEqual(vals(eq), [0, 1]);
  assert.deepEqual(vals(run("GreaterOrEqual", [f32([3], [1, 2, 3]), f32([], [2])])), [0, 1, 1]);
});

Deno.test("bad inputs end in typed errors naming the node", () => {
  assert.throws(() => run("Add", [f32([2], [1, 2]), f32([3], [1, 2, 3])]), ShapeError);
  assert.throws(() => run("Add", [f32([2], [1, 2]), t("int32", [2], [1, 2])]), ShapeError);
  assert.throws(() => run("Add", [f32([2], [1, 2])]), /n_Add.*missing/);
  assert.throws(() => run("Add", [t("bool", [1], [1]), t("bool", [1], [1])]), ShapeError);
  assert.throws(
    () => run("Relu", [{ type: "float32", dims: [3], data: new Float32Array(2) }]),
    ShapeError,
  );
  assert.throws(() => run("Where", [f32([1], [1]), f32([1], [1]), f32([1], [1])]), ShapeError);
  assert.throws(
    () => run("Where", [t("bool", [1], [1]), f32([1], [1]), t("int32", [1], [1])]),
    ShapeError,
  );
  // A broadcast too large to allocate is refused before allocating.
  const wide = { type: "float32" as const, dims: [1, 1 << 20], data: new Float32Array(1 << 20) };
  const tall = { type: "float32" as const, dims: [1 << 20, 1], data: new Float32Array(1 << 20) };
  assert.throws(() => run("Mul", [wide, tall]), ShapeError);
});
