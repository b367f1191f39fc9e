// .npy reading and writing: round trips for every dtype, the byte layout numpy.save writes,
// big-endian and version 2.0/3.0 files, Fortran order, and malformed files → typed errors.
import assert from "node:assert/strict";
import { encodeNpy, parseNpy, parsePyLiteral } from "../src/npy.ts";
import { ArgumentError, ShapeError } from "../src/errors.ts";
import type { Tensor, TensorType } from "../src/graph/tensor.ts";

const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** A .npy file by hand: any version, any header text (padded as numpy does), any data bytes. */
function craft(header: string, data: Uint8Array, major = 1, pad = true): Uint8Array {
  const pre = major === 1 ? 10 : 12;
  const h = major === 3 ? new TextEncoder().encode(header) : latin1(header);
  const padLen = pad ? (64 - ((pre + h.length + 1) % 64)) % 64 : 0;
  const full = new Uint8Array(h.length + padLen + (pad ? 1 : 0)).fill(0x20);
  full.set(h);
  if (pad) full[full.length - 1] = 0x0a;
  const out = new Uint8Array(pre + full.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const dv = new DataView(out.buffer);
  if (major === 1) dv.setUint16(8, full.length, true);
  else dv.setUint32(8, full.length, true);
  out.set(full, pre);
  out.set(data, pre + full.length);
  return out;
}

const hdr = (descr: string, shape: string, fortran = "False") =>
  `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;

function bytesOf(n: number, size: number, write: (dv: DataView, i: number) => void): Uint8Array {
  const b = new Uint8Array(n * size);
  const dv = new DataView(b.buffer);
  for (let i = 0; i < n; i++) write(dv, i);
  return b;
}

const SAMPLES: [TensorType, Tensor["data"]][] = [
  ["float32", new Float32Array([0, -1.5, 3.25, Infinity, -0, 1e-40])],
  ["float64", new Float64Array([0, -1.5, Math.PI, -Infinity, 1e300, 5e-324])],
  ["float16", new Uint16Array([0x0000, 0x3c00, 0xc000, 0x7c00, 0x0001, 0x7bff])],
  ["int8", new Int8Array([-128, -1, 0, 1, 127, 5])],
  ["uint8", new Uint8Array([0, 1, 2, 127, 128, 255])],
  ["int16", new Int16Array([-32768, -1, 0, 1, 32767, 300])],
  ["uint16", new Uint16Array([0, 1, 256, 32768, 65535, 7])],
  ["int32", new Int32Array([-(2 ** 31), -1, 0, 1, 2 ** 31 - 1, 70000])],
  ["uint32", new Uint32Array([0, 1, 2 ** 16, 2 ** 31, 2 ** 32 - 1, 9])],
  ["int64", new BigInt64Array([-(2n ** 63n), -1n, 0n, 1n, 2n ** 63n - 1n, 2n ** 40n])],
  ["uint64", new BigUint64Array([0n, 1n, 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n, 3n])],
  ["bool", new Uint8Array([1, 0, 0, 1, 1, 0])],
];

Deno.test("npy: round trip for every dtype, in several shapes", () => {
  for (const [type, data] of SAMPLES) {
    for (const dims of [[6], [2, 3], [3, 1, 2], [1, 1, 1, 6]]) {
      const back = parseNpy(encodeNpy({ type, dims, data }));
      assert.equal(back.type, type);
      assert.deepEqual(back.dims, dims);
      assert.equal(back.data.constructor, data.constructor, type);
      assert.deepEqual(
        Array.from(back.data as ArrayLike<unknown>),
        Array.from(data as ArrayLike<unknown>),
        type,
      );
    }
    // 0-d and empty arrays.
    const one = data.slice(1, 2) as Tensor["data"];
    const scalar = parseNpy(encodeNpy({ type, dims: [], data: one }));
    assert.deepEqual(scalar.dims, []);
    assert.deepEqual(
      Array.from(scalar.data as ArrayLike<unknown>),
      Array.from(one as ArrayLike<unknown>),
    );
    const empty = parseNpy(encodeNpy({ type, dims: [0, 3], data: data.slice(0, 0) }));
    assert.deepEqual(empty.dims, [0, 3]);
    assert.equal(empty.data.length, 0);
  }
});

Deno.test("npy: int4/uint4 are written as int8/uint8 (numpy has no 4-bit dtype)", () => {
  const t = parseNpy(encodeNpy({ type: "int4", dims: [3], data: new Int8Array([-8, 0, 7]) }));
  assert.equal(t.type, "int8");
  assert.deepEqual(Array.from(t.data as Int8Array), [-8, 0, 7]);
  const u = parseNpy(encodeNpy({ type: "uint4", dims: [2], data: new Uint8Array([0, 15]) }));
  assert.equal(u.type, "uint8");
});

Deno.test("npy: encodeNpy writes exactly what numpy.save writes", () => {
  const bytes = encodeNpy({ type: "float32", dims: [2, 3], data: new Float32Array(6) });
  // numpy 2.x: np.save(f, np.zeros((2, 3), np.float32)) → 128-byte preamble + 24 data bytes.
  const header = hdr("<f4", "(2, 3)");
  const expected = craft(header, new Uint8Array(24));
  assert.deepEqual(bytes, expected);
  assert.equal(bytes.length, 128 + 24);
  assert.equal(bytes[8] | (bytes[9] << 8), 118);
  const oneD = new TextDecoder().decode(
    encodeNpy({ type: "int64", dims: [5], data: new BigInt64Array(5) }).subarray(10, 70),
  );
  assert.ok(oneD.startsWith("{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }"));
  const scalar = new TextDecoder().decode(
    encodeNpy({ type: "bool", dims: [], data: new Uint8Array(1) }).subarray(10, 70),
  );
  assert.ok(scalar.startsWith("{'descr': '|b1', 'fortran_order': False, 'shape': (), }"));
  for (const [type, data] of SAMPLES) {
    const b = encodeNpy({ type, dims: [6], data });
    assert.equal((b.length - data.byteLength) % 64, 0, "data starts on a 64-byte boundary");
    assert.equal(b[b.length - data.byteLength - 1], 0x0a, "header ends in a newline");
  }
});

Deno.test("npy: big-endian files are byte-swapped", () => {
  const f4 = parseNpy(
    craft(hdr(">f4", "(3,)"), bytesOf(3, 4, (d, i) => d.setFloat32(i * 4, i - 0.5))),
  );
  assert.equal(f4.type, "float32");
  assert.deepEqual(Array.from(f4.data as Float32Array), [-0.5, 0.5, 1.5]);
  const f8 = parseNpy(
    craft(hdr(">f8", "(2,)"), bytesOf(2, 8, (d, i) => d.setFloat64(i * 8, -i / 3))),
  );
  assert.deepEqual(Array.from(f8.data as Float64Array), [-0, -1 / 3]);
  const i8 = parseNpy(
    craft(hdr(">i8", "(2,)"), bytesOf(2, 8, (d, i) => d.setBigInt64(i * 8, i ? -5n : 2n ** 62n))),
  );
  assert.deepEqual(Array.from(i8.data as BigInt64Array), [2n ** 62n, -5n]);
  const u2 = parseNpy(
    craft(hdr(">u2", "(2,)"), bytesOf(2, 2, (d, i) => d.setUint16(i * 2, 0x1234 + i))),
  );
  assert.deepEqual(Array.from(u2.data as Uint16Array), [0x1234, 0x1235]);
  const i2 = parseNpy(craft(hdr(">i2", "(1,)"), bytesOf(1, 2, (d) => d.setInt16(0, -2))));
  assert.deepEqual(Array.from(i2.data as Int16Array), [-2]);
  const f2 = parseNpy(craft(hdr(">f2", "(1,)"), bytesOf(1, 2, (d) => d.setUint16(0, 0x3c00))));
  assert.equal(f2.type, "float16");
  assert.deepEqual(Array.from(f2.data as Uint16Array), [0x3c00]);
  // Single bytes have no order: '|', '<' and '>' all read the same.
  for (const descr of ["|i1", "<i1", ">i1"]) {
    const t = parseNpy(craft(hdr(descr, "(2,)"), new Uint8Array([0xff, 7])));
    assert.deepEqual(Array.from(t.data as Int8Array), [-1, 7]);
  }
});

Deno.test("npy: version 2.0 and 3.0 headers", () => {
  const data = bytesOf(4, 4, (d, i) => d.setInt32(i * 4, i * 10, true));
  for (const major of [2, 3]) {
    const t = parseNpy(craft(hdr("<i4", "(2, 2)"), data, major));
    assert.equal(t.type, "int32");
    assert.deepEqual(t.dims, [2, 2]);
    assert.deepEqual(Array.from(t.data as Int32Array), [0, 10, 20, 30]);
  }
  // A version 2.0 header may exceed the 65535 bytes a 1.0 length field can count.
  const long = hdr("<i4", "(4,)").replace("}", " ".repeat(70000) + "}");
  const t = parseNpy(craft(long, data, 2, false));
  assert.deepEqual(t.dims, [4]);
  // Version 3.0 headers are UTF-8: the key decodes to 'é' (and is then rejected as unknown).
  assert.throws(
    () =>
      parseNpy(craft("{'descr': '<i4', 'fortran_order': False, 'shape': (4,), 'é': 1}", data, 3)),
    (e) => e instanceof ArgumentError && /'é'/.test(e.message),
  );
});

Deno.test("npy: Fortran order is transposed to C order", () => {
  // A (2, 3) array [[0, 1, 2], [3, 4, 5]] stored column-major: 0 3 1 4 2 5.
  const col = bytesOf(6, 4, (d, i) => d.setFloat32(i * 4, [0, 3, 1, 4, 2, 5][i], true));
  const t = parseNpy(craft(hdr("<f4", "(2, 3)", "True"), col));
  assert.deepEqual(t.dims, [2, 3]);
  assert.deepEqual(Array.from(t.data as Float32Array), [0, 1, 2, 3, 4, 5]);
  // (2, 3, 4): element [i][j][k] = 100i + 10j + k, stored with i fastest.
  const dims = [2, 3, 4];
  const f = new BigInt64Array(24);
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 3; j++) {
      for (let k = 0; k < 4; k++) f[i + 2 * j + 6 * k] = BigInt(100 * i + 10 * j + k);
    }
  }
  const t3 = parseNpy(craft(hdr("<i8", "(2, 3, 4)", "True"), new Uint8Array(f.buffer)));
  assert.deepEqual(t3.dims, dims);
  const want: bigint[] = [];
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) want.push(BigInt(100 * i + 10 * j + k));
  }
  assert.deepEqual(Array.from(t3.data as BigInt64Array), want);
  // Big-endian and Fortran together.
  const be = bytesOf(4, 2, (d, i) => d.setInt16(i * 2, [1, 3, 2, 4][i]));
  const t4 = parseNpy(craft(hdr(">i2", "(2, 2)", "True"), be));
  assert.deepEqual(Array.from(t4.data as Int16Array), [1, 2, 3, 4]);
});

Deno.test("npy: header syntax numpy and Python 2 numpy wrote", () => {
  const data = new Uint8Array(6);
  for (
    const h of [
      `{"descr": "|u1", "fortran_order": False, "shape": (2, 3)}`,
      `{'descr':'|u1','fortran_order':False,'shape':(2,3),}`,
      `{'shape': (2L, 3L), 'fortran_order': False, 'descr': '|u1'}`,
      `  {'descr': '|u1',\n 'fortran_order': False, 'shape': [2, 3]}  `,
    ]
  ) {
    const t = parseNpy(craft(h, data));
    assert.deepEqual(t.dims, [2, 3], h);
  }
  assert.deepEqual(
    parsePyLiteral(`{'a': (1,), 'b': [True, None, -3], "c": 'x\\'y\\x41'}`),
    new Map<string, unknown>([["a", [1]], ["b", [true, null, -3]], ["c", "x'yA"]]),
  );
  assert.deepEqual(parsePyLiteral("()"), []);
});

/** Expects `fn` to throw an instance of `cls` whose message matches `re`. */
function throwsTyped(fn: () => unknown, cls: typeof ArgumentError | typeof ShapeError, re: RegExp) {
  assert.throws(fn, (e) => {
    assert.ok(
      e instanceof cls,
      `expected ${cls.name}, got ${(e as Error)?.constructor?.name}: ${e}`,
    );
    assert.match((e as Error).message, re);
    return true;
  });
}

Deno.test("npy: malformed files are typed errors", () => {
  const ok = craft(hdr("<f4", "(2,)"), new Uint8Array(8));
  throwsTyped(() => parseNpy(new Uint8Array(0)), ArgumentError, /magic/);
  throwsTyped(() => parseNpy(latin1("PK\x03\x04 not npy at all")), ArgumentError, /magic/);
  throwsTyped(() => parseNpy(ok.slice(0, 9)), ArgumentError, /magic/);
  throwsTyped(() => parseNpy(ok.slice(0, 40)), ArgumentError, /truncated header/);
  const v4 = ok.slice();
  v4[6] = 4;
  throwsTyped(() => parseNpy(v4), ArgumentError, /version 4\.0/);
  const v11 = ok.slice();
  v11[7] = 1;
  throwsTyped(() => parseNpy(v11), ArgumentError, /version 1\.1/);
  // v2 file whose 4-byte length is huge.
  const v2 = craft(hdr("<f4", "(2,)"), new Uint8Array(8), 2);
  new DataView(v2.buffer).setUint32(8, 0xffffffff, true);
  throwsTyped(() => parseNpy(v2), ArgumentError, /truncated header/);
  const v3 = craft(hdr("<f4", "(2,)"), new Uint8Array(8), 3);
  v3[14] = 0xff; // inside 'descr'
  throwsTyped(() => parseNpy(v3), ArgumentError, /UTF-8/);

  const bad = (h: string, data = new Uint8Array(8)) => () => parseNpy(craft(h, data));
  // Not a Python dict literal.
  throwsTyped(bad("[1, 2]"), ArgumentError, /not a dict/);
  throwsTyped(
    bad("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)"),
    ArgumentError,
    /header/,
  );
  throwsTyped(bad("__import__('os').system('true')"), ArgumentError, /header/);
  throwsTyped(
    bad(`{'descr': '<f4', 'fortran_order': false, 'shape': (2,)}`),
    ArgumentError,
    /header/,
  );
  throwsTyped(
    bad(`{'descr': '<f4', 'fortran_order': False, 'shape': (2.0,)}`),
    ArgumentError,
    /non-integer/,
  );
  throwsTyped(
    bad(`{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x`),
    ArgumentError,
    /trailing/,
  );
  throwsTyped(bad(`{'descr': '<f4', 'descr': '<f4', 'shape': (2,)}`), ArgumentError, /duplicate/);
  throwsTyped(bad(`{1: '<f4'}`), ArgumentError, /keys must be strings/);
  throwsTyped(
    bad(`{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}`),
    ArgumentError,
    /header/,
  );
  throwsTyped(bad("[".repeat(100)), ArgumentError, /too deep/);
  // Wrong keys and values.
  throwsTyped(bad(`{'descr': '<f4', 'shape': (2,)}`), ArgumentError, /keys/);
  throwsTyped(
    bad(`{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}`),
    ArgumentError,
    /keys/,
  );
  throwsTyped(bad(hdr("<c8", "(1,)")), ArgumentError, /dtype '<c8'/);
  throwsTyped(bad(hdr("|O", "(1,)")), ArgumentError, /dtype '\|O'/);
  throwsTyped(bad(hdr("<U4", "(1,)")), ArgumentError, /not supported/);
  throwsTyped(bad(hdr("<f4", "(2,)", "1")), ArgumentError, /fortran_order/);
  throwsTyped(
    bad(`{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}`),
    ArgumentError,
    /structured/,
  );
  throwsTyped(bad(hdr("<f4", "2")), ArgumentError, /tuple/);
  throwsTyped(bad(hdr("<f4", "(2)")), ArgumentError, /1-tuple/);
  // Shapes against the data.
  throwsTyped(bad(hdr("<f4", "(3,)")), ShapeError, /needs more than the 8 data bytes/);
  throwsTyped(bad(hdr("<f4", "(1,)")), ShapeError, /needs 4, not the 8/);
  throwsTyped(bad(hdr("<f4", "(-2,)")), ShapeError, /bad dimension -2/);
  throwsTyped(bad(hdr("<f4", "('2',)")), ShapeError, /bad dimension "2"/);
  throwsTyped(bad(hdr("<f4", "(2, None)")), ShapeError, /bad dimension null/);
  throwsTyped(bad(hdr("<f4", `(${"1, ".repeat(65)})`)), ShapeError, /rank 65/);
  // Absurd shapes fail on the size check, before any allocation.
  throwsTyped(
    bad(hdr("<f8", "(1099511627776, 1099511627776, 1099511627776)")),
    ShapeError,
    /more than/,
  );
  throwsTyped(bad(hdr("<f8", "(99999999999999999999,)")), ArgumentError, /out of range/);
  // A zero dim makes the array empty, however big the others: then the data must be empty.
  assert.equal(parseNpy(craft(hdr("<f8", "(1099511627776, 0)"), new Uint8Array(0))).data.length, 0);
  throwsTyped(bad(hdr("<f8", "(1099511627776, 0)")), ShapeError, /needs 0, not the 8/);
  throwsTyped(() => parseNpy("nope" as unknown as Uint8Array), ArgumentError, /Uint8Array/);
});

Deno.test("npy: encodeNpy rejects inconsistent tensors", () => {
  throwsTyped(
    () => encodeNpy({ type: "float32", dims: [2, 2], data: new Float32Array(3) }),
    ShapeError,
    /need 4 elements/,
  );
  throwsTyped(
    () => encodeNpy({ type: "float32", dims: [3], data: new Float64Array(3) }),
    ArgumentError,
    /Float32Array/,
  );
  throwsTyped(
    () => encodeNpy({ type: "float32", dims: [-1], data: new Float32Array(1) }),
    ShapeError,
    /bad dim/,
  );
  throwsTyped(
    () => encodeNpy({ type: "string", dims: [1], data: new Uint8Array(1) } as unknown as Tensor),
    ArgumentError,
    /'string'/,
  );
  throwsTyped(() => encodeNpy(null as unknown as Tensor), ArgumentError, /tensor/);
});

Deno.test("npy: bool bytes other than 0/1 read as 1, and parse copies (aligned, unshared)", () => {
  const t = parseNpy(craft(hdr("|b1", "(3,)"), new Uint8Array([0, 2, 255])));
  assert.deepEqual(Array.from(t.data as Uint8Array), [0, 1, 1]);
  // The data of an odd-offset subarray still yields an aligned Float64Array.
  const file = craft(hdr("<f8", "(1,)"), bytesOf(1, 8, (d) => d.setFloat64(0, 2.5, true)));
  const shifted = new Uint8Array(file.length + 1);
  shifted.set(file, 1);
  const src = shifted.subarray(1);
  const f = parseNpy(src);
  assert.deepEqual(Array.from(f.data as Float64Array), [2.5]);
  src.fill(0);
  assert.deepEqual(Array.from(f.data as Float64Array), [2.5]);
});
