// QuantizeLinear / DequantizeLinear / DynamicQuantizeLinear (src/ops/quant.ts): the ONNX
// single-node cases on the ops directly, then what that data leaves out: ties rounding half to
// even, every integer output type and its saturation, blocked quantization with a remainder
// block, float16 scales, int32 inputs, and typed errors.
import assert from "node:assert/strict";
import { conformanceDir, listCases, runSingleNode } from "./conformance.ts";
import { type AttrValue, Node, Value } from "../src/graph/ir.ts";
import type { Tensor, TensorType } from "../src/graph/tensor.ts";
import { jsContext } from "../src/ops/types.ts";
import { QUANT_OPS, roundHalfEven } from "../src/ops/quant.ts";
import { ModelError, ShapeError, UnsupportedError } from "../src/errors.ts";

const runCase = (name: string) => runSingleNode(name, QUANT_OPS);

Deno.test({
  name: "quant ops: ONNX single-node cases run on the TypeScript ops",
  ignore: !conformanceDir(),
  fn() {
    const cases = listCases((n) =>
      /^test_(quantizelinear|dequantizelinear|dynamicquantizelinear)/.test(n) &&
      !n.includes("expanded")
    );
    assert.ok(cases.length >= 10, `only ${cases.length} cases found`);
    const failures = cases.map((c) => [c, runCase(c)]).filter(([, bad]) => bad);
    assert.deepEqual(failures, []);
  },
});

function run(
  op: string,
  inputs: (Tensor | undefined)[],
  attrs: Record<string, AttrValue> = {},
  opset = 21,
): Tensor[] {
  const outs = Array.from({ length: 3 }, (_, i) => new Value(`y${i}`));
  const node = new Node(`${op.toLowerCase()}_node`, op, "", [], outs, attrs);
  return QUANT_OPS[op](inputs, jsContext(node, opset));
}

const T = (type: TensorType, dims: number[], data: number[]): Tensor => {
  const ctor = {
    float32: Float32Array,
    float64: Float64Array,
    int8: Int8Array,
    uint8: Uint8Array,
    int16: Int16Array,
    uint16: Uint16Array,
    int32: Int32Array,
    int4: Int8Array,
    uint4: Uint8Array,
  }[type as "float32"];
  return { type, dims, data: ctor.from(data) };
};
const f32 = (dims: number[], data: number[]) => T("float32", dims, data);
const half = (dims: number[], v: number[]): Tensor => {
  const u = new Uint16Array(v.length);
  new Float16Array(u.buffer).set(v);
  return { type: "float16", dims, data: u };
};

Deno.test("roundHalfEven matches numpy.rint", () => {
  const xs = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, 2.5001, -3.5, 7, -0, 1e20];
  assert.deepEqual(xs.map(roundHalfEven), [0, 2, 2, -0, -2, -2, 2, 3, -4, 7, -0, 1e20]);
});

Deno.test("QuantizeLinear: ties to even, then zero point and saturation, per type", () => {
  const x = f32([8], [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 1000, -1000]);
  const s = f32([], [1]);
  const [u8] = run("QuantizeLinear", [x, s]);
  assert.equal(u8.type, "uint8");
  assert.deepEqual([...u8.data], [0, 2, 2, 0, 0, 0, 255, 0]);
  const cases: [TensorType, number, number[]][] = [
    ["int8", 1, [1, 3, 3, 1, -1, -1, 127, -128]],
    ["uint16", 2, [2, 4, 4, 2, 0, 0, 1002, 0]],
    ["int16", -3, [-3, -1, -1, -3, -5, -5, 997, -1003]],
    ["int4", 0, [0, 2, 2, 0, -2, -2, 7, -8]],
    ["uint4", 3, [3, 5, 5, 3, 1, 1, 15, 0]],
  ];
  for (const [type, zp, want] of cases) {
    const [y] = run("QuantizeLinear", [x, s, T(type, [], [zp])]);
    assert.equal(y.type, type);
    assert.deepEqual([...y.data], want, type);
  }
  // output_dtype without a zero point (opset 21).
  const [i16] = run("QuantizeLinear", [x, s], { output_dtype: 5 });
  assert.equal(i16.type, "int16");
  assert.deepEqual([...i16.data], [0, 2, 2, 0, -2, -2, 1000, -1000]);
});

Deno.test("QuantizeLinear: x / scale is an f32 division, as in the reference", () => {
  // f32(0.35) / f32(0.1) is 3.4999999 in f64 (→ 3) but exactly 3.5 in f32 (→ 4, the tie).
  const x = f32([2], [Math.fround(0.35), Math.fround(2.5)]);
  const s = f32([], [Math.fround(0.1)]);
  const [y] = run("QuantizeLinear", [x, s]);
  const want = [...(x.data as Float32Array)].map((v) =>
    roundHalfEven(Math.fround(v / Math.fround(0.1)))
  );
  assert.deepEqual([...y.data], want);
  assert.deepEqual(want, [4, 25]);
  assert.notEqual(roundHalfEven(Math.fround(0.35) / Math.fround(0.1)), 4); // f64 would give 3
});

Deno.test("QuantizeLinear: per axis (negative axis) and blocked with a remainder block", () => {
  const x = f32([2, 3], [1, 2, 3, 4, 5, 6]);
  const [ax] = run("QuantizeLinear", [x, f32([3], [1, 2, 4]), T("int8", [3], [0, 1, -1])], {
    axis: -1,
  });
  assert.deepEqual([...ax.data], [1, 2, 0, 4, 3, 1]);
  // Blocks of 2 along axis 1 (size 5): scales for columns [0,1], [2,3], [4].
  const xb = f32([2, 5], [2, 4, 6, 8, 10, 20, 40, 60, 80, 100]);
  const sb = f32([2, 3], [2, 4, 10, 20, 40, 100]);
  const zb = T("uint8", [2, 3], [0, 1, 2, 3, 4, 5]);
  const [bl] = run("QuantizeLinear", [xb, sb, zb], { axis: 1, block_size: 2 });
  assert.deepEqual([...bl.data], [1, 2, 3, 3, 3, 4, 5, 6, 6, 6]);
  assert.throws(
    () => run("QuantizeLinear", [xb, f32([2, 2], [1, 1, 1, 1])], { axis: 1, block_size: 2 }),
    ShapeError,
  );
  assert.throws(() => run("QuantizeLinear", [x, f32([2], [1, 1])]), ShapeError);
  assert.throws(() => run("QuantizeLinear", [x, f32([1, 3], [1, 1, 1])], {}, 19), ShapeError);
  assert.throws(() => run("QuantizeLinear", [x, f32([3], [1, 1, 1])], { axis: 2 }), {
    name: "ArgumentError",
  });
});

Deno.test("QuantizeLinear: float16 and int32 inputs, errors", () => {
  const [h] = run("QuantizeLinear", [half([3], [1, 2.5, -3]), half([], [0.5]), T("int8", [], [0])]);
  assert.deepEqual([...h.data], [2, 5, -6]);
  const [i] = run("QuantizeLinear", [T("int32", [3], [5, 15, 25]), f32([], [10])]);
  assert.deepEqual([...i.data], [0, 2, 2]);
  const x = f32([2], [1, 2]);
  assert.throws(
    () => run("QuantizeLinear", [x, f32([], [1]), T("int8", [], [0])], { output_dtype: 2 }),
    ModelError,
  );
  assert.throws(
    () => run("QuantizeLinear", [x, f32([], [1])], { output_dtype: 1 }),
    UnsupportedError,
  );
  assert.throws(() => run("QuantizeLinear", [x, T("int8", [], [1])]), ShapeError);
  assert.throws(
    () => run("QuantizeLinear", [x, f32([], [1]), T("int32", [], [0])]),
    UnsupportedError,
  );
  assert.throws(
    () => run("QuantizeLinear", [x, f32([], [1]), T("uint8", [2], [0, 0])]),
    ShapeError,
  );
  assert.throws(() => run("QuantizeLinear", [x, undefined]), ModelError);
  const [e] = run("QuantizeLinear", [f32([0, 3], []), f32([3], [1, 1, 1])]);
  assert.deepEqual(e.dims, [0, 3]);
});

Deno.test("DequantizeLinear: every input type, per axis, blocked, float16 scale, output_dtype", () => {
  const cases: [TensorType, number[], number, number[]][] = [
    ["int8", [-128, 0, 127], -1, [-254, 2, 256]],
    ["uint8", [0, 128, 255], 128, [-256, 0, 254]],
    ["int16", [-32768, 0, 32767], 0, [-65536, 0, 65534]],
    ["uint16", [0, 1, 65535], 1, [-2, 0, 131068]],
    ["int4", [-8, 0, 7], 1, [-18, -2, 12]],
    ["uint4", [0, 8, 15], 8, [-16, 0, 14]],
  ];
  for (const [type, xs, zp, want] of cases) {
    const [y] = run("DequantizeLinear", [T(type, [3], xs), f32([], [2]), T(type, [], [zp])]);
    assert.equal(y.type, "float32");
    assert.deepEqual([...y.data], want, type);
  }
  const [i32] = run("DequantizeLinear", [T("int32", [2], [-(2 ** 31), 3]), f32([], [0.5])]);
  assert.deepEqual([...i32.data], [-(2 ** 30), 1.5]);
  const [ax] = run("DequantizeLinear", [
    T("uint8", [2, 2], [1, 2, 3, 4]),
    f32([2], [1, 10]),
    T("uint8", [2], [1, 2]),
  ], { axis: 0 });
  assert.deepEqual([...ax.data], [0, 1, 10, 20]);
  const [bl] = run("DequantizeLinear", [T("int8", [3], [1, 2, 3]), f32([2], [1, 10])], {
    axis: 0,
    block_size: 2,
  });
  assert.deepEqual([...bl.data], [1, 2, 30]);
  const [h] = run("DequantizeLinear", [T("int8", [2], [3, -1]), half([], [0.5])]);
  assert.equal(h.type, "float16");
  assert.deepEqual([...new Float16Array((h.data as Uint16Array).buffer)], [1.5, -0.5]);
  const [o] = run(
    "DequantizeLinear",
    [T("int8", [1], [3]), f32([], [0.5])],
    { output_dtype: 10 },
    23,
  );
  assert.equal(o.type, "float16");
  assert.throws(
    () => run("DequantizeLinear", [T("int8", [1], [3]), f32([], [1]), T("uint8", [], [0])]),
    {
      name: "ShapeError",
      message: /dequantizelinear_node/,
    },
  );
  assert.throws(() => run("DequantizeLinear", [f32([1], [3]), f32([], [1])]), ShapeError);
  assert.throws(
    () => run("DequantizeLinear", [T("int8", [2], [1, 2]), f32([3], [1, 1, 1])], { axis: 0 }),
    {
      name: "ShapeError",
    },
  );
});

Deno.test("DynamicQuantizeLinear: range always includes 0, all-zero input, saturation", () => {
  const [y, s, z] = run("DynamicQuantizeLinear", [f32([4], [1, 2, 3, 4])]);
  const scale = Math.fround(4 / 255);
  assert.equal((s.data as Float32Array)[0], scale);
  assert.deepEqual(s.dims, []);
  assert.deepEqual([...z.data], [0]);
  assert.deepEqual([...y.data], [1, 2, 3, 4].map((v) => roundHalfEven(Math.fround(v / scale))));
  const [yn, sn, zn] = run("DynamicQuantizeLinear", [f32([3], [-1, -2, -4])]);
  assert.equal((sn.data as Float32Array)[0], scale);
  assert.deepEqual([...zn.data], [255]);
  assert.deepEqual([...yn.data], [191, 128, 0]);
  const [y0, s0, z0] = run("DynamicQuantizeLinear", [f32([2], [0, 0])]);
  assert.deepEqual([...y0.data, ...s0.data, ...z0.data], [0, 0, 1, 0]);
  const [ye, se] = run("DynamicQuantizeLinear", [f32([0], [])]);
  assert.deepEqual([ye.dims, [...se.data]], [[0], [1]]);
  assert.throws(() => run("DynamicQuantizeLinear", [T("int8", [1], [1])]), ShapeError);
});
