import assert from "node:assert/strict";
import { PackedGemmF32 } from "../src/kernels/gemm_f32.ts";
import { PackedGemmI8 } from "../src/kernels/gemm_i8.ts";
import { PackedGemmBin } from "../src/kernels/gemm_bin.ts";
import { KernelModule } from "../src/kernels/module.ts";
import { ArgumentError, OutOfMemoryError, ShapeError } from "../src/errors.ts";

const mod = await KernelModule.load("auto");

Deno.test("bad shapes get a ShapeError before Wasm memory is touched", () => {
  const before = mod.memory.buffer.byteLength;
  for (const [k, n] of [[0, 4], [4, -1], [2.5, 3], [NaN, 3], [4, 2 ** 31]]) {
    assert.throws(() => PackedGemmF32.create(mod, { k, n, b: new Float32Array(64) }), ShapeError);
  }
  // B shorter than K×N.
  assert.throws(
    () => PackedGemmF32.create(mod, { k: 8, n: 8, b: new Float32Array(63) }),
    ShapeError,
  );
  assert.throws(
    () =>
      PackedGemmF32.create(mod, { k: 2, n: 3, b: new Float32Array(6), bias: new Float32Array(2) }),
    ShapeError,
  );
  const g = PackedGemmF32.create(mod, { k: 4, n: 3, b: new Float32Array(12) });
  assert.throws(() => g.run(new Float32Array(7), 2), ShapeError); // A too small for M=2
  assert.throws(() => g.run(new Float32Array(8), 0), ShapeError);
  assert.throws(() => g.runResident(2, 12345, 0), ShapeError); // not a heap block
  const small = mod.heap.alloc(8);
  const c = mod.heap.alloc(24);
  assert.throws(() => g.runResident(2, small, c), ShapeError); // block smaller than M×K
  assert.throws(
    () => g.run(new Float32Array(8), 2, { kind: "clip", min: 1, max: 0 }),
    ArgumentError,
  );
  mod.heap.free(small);
  mod.heap.free(c);
  g.dispose();
  assert.equal(mod.memory.buffer.byteLength >= before, true);
});

Deno.test("int8 gemm rejects -128 weights, huge K, bad zero points and scales", () => {
  assert.throws(
    () => PackedGemmI8.create(mod, { k: 2, n: 2, b: Int8Array.of(1, -128, 3, 4) }),
    ArgumentError,
  );
  assert.throws(
    () => PackedGemmI8.create(mod, { k: 70000, n: 1, b: new Int8Array(70000) }),
    ShapeError,
  );
  const g = PackedGemmI8.create(mod, { k: 3, n: 2, b: new Int8Array(6) });
  const out = g.output({ kind: "i32" });
  assert.throws(
    () => g.run(new Uint8Array(3), 1, { signed: false, zeroPoint: 256 }, out),
    ArgumentError,
  );
  assert.throws(
    () => g.run(new Int8Array(3), 1, { signed: true, zeroPoint: 128 }, out),
    ArgumentError,
  );
  assert.throws(() => g.output({ kind: "f32", scale: 0 }), ArgumentError);
  assert.throws(() => g.output({ kind: "f32", scale: new Float32Array(1) }), ShapeError);
  assert.throws(
    () => g.output({ kind: "requant", method: "fp32", dtype: "uint8", scale: 0.1, zeroPoint: -1 }),
    ArgumentError,
  );
  assert.throws(
    () =>
      g.output({
        kind: "requant",
        method: "gemmlowp",
        dtype: "int8",
        scale: 0.1,
        zeroPoint: 0,
        clamp: [5, 4],
      }),
    ArgumentError,
  );
  const other = PackedGemmI8.create(mod, { k: 3, n: 3, b: new Int8Array(9) });
  assert.throws(
    () => other.run(new Uint8Array(3), 1, { signed: false, zeroPoint: 0 }, out),
    ArgumentError,
  );
  g.dispose();
  other.dispose();
});

Deno.test("binary gemm validates alpha and buffers", () => {
  const g = PackedGemmBin.create(mod, { k: 10, n: 3, b: new Float32Array(30) });
  assert.throws(() => g.output({ kind: "f32", alpha: -1 }), ArgumentError);
  assert.throws(() => g.output({ kind: "bits", alpha: new Float32Array(2) }), ShapeError);
  assert.throws(() => g.run(new Float32Array(9), 1, g.output({ kind: "i32" })), ShapeError);
  g.dispose();
});

Deno.test("absurd allocations fail with OutOfMemoryError and leave the heap usable", () => {
  assert.throws(() => mod.heap.alloc(2 ** 33), OutOfMemoryError);
  assert.throws(() => mod.heap.alloc(-1), ArgumentError);
  const p = mod.heap.alloc(100);
  mod.heap.free(p);
  assert.throws(() => mod.heap.free(p), ArgumentError);
});
