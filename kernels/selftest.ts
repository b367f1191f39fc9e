// Self-test entry: the kernels driven through their own ABI from inside Wasm, so that a runtime
// with no JavaScript at all (wabt's wasm-interp, wasmtime, …) can run them. Built beside each
// ISA's module as kernels/build/sqz-selftest-<isa>.wasm (scripts/build_kernels.ts); every export
// below takes no argument and returns one i32, the FNV-1a hash of a kernel's output, which
// tests/kernels_standalone_test.ts compares with the same hash from V8 and from the TypeScript
// reference on the same data.
//
// The data comes from one LCG per test (state = state·1664525 + 1013904223, u32), the draws
// taken in the order the buffers are listed; tests/kernels_standalone_test.ts replays it.
//   selftest_i8:  M 37, N 45, K 301; A u8 = top byte; W i8 = top byte % 255 − 127 (K×N
//                 row-major); bias i32 = top byte·64 − 8192; a_zero 131; i32 output
//   selftest_i7:  the same with W = top byte % 128 − 64 (7-bit weights, sqz_i7_*)
//   selftest_bin: M 5, N 13, K 333; A then W as f32 ±1 (top bit set: −1), K×N; i32 output
//   selftest_f32: M 9, N 11, K 67; A then W as f32 (top byte − 128) / 64, bias likewise;
//                 output bits hashed (exact: small integers over 64, no rounding)
export * from "./index";
import {
  sqz_bin_gemm, sqz_bin_gemm_packed_size, sqz_bin_pack_rows, sqz_bin_pack_weights,
  sqz_bin_row_bytes, sqz_f32_gemm, sqz_f32_gemm_pack, sqz_f32_gemm_packed_size, sqz_heap_base,
  sqz_i7_gemm, sqz_i7_gemm_pack, sqz_i7_gemm_packed_size, sqz_i8_gemm, sqz_i8_gemm_pack,
  sqz_i8_gemm_packed_size,
} from "./index";

let seed: u32 = 0;
let top: usize = 0;

function next(): u32 {
  seed = seed * 1664525 + 1013904223;
  return seed >>> 24;
}

// Bump allocation from the heap base, 16-byte aligned, plus 16 readable bytes past each block
// (the ABI's tail rule); memory grows as needed.
function alloc(bytes: usize): usize {
  const p = (top + 15) & ~15;
  top = p + bytes + 16;
  const pages = <i32>((top + 0xffff) >>> 16);
  if (pages > memory.size()) memory.grow(pages - memory.size());
  memory.fill(p, 0, bytes + 16);
  return p;
}

function start(s: u32): void {
  seed = s;
  top = sqz_heap_base();
}

function fnv(p: usize, bytes: usize): i32 {
  let h: u32 = 2166136261;
  for (let i: usize = 0; i < bytes; i++) {
    h ^= load<u8>(p + i);
    h *= 16777619;
  }
  return <i32>h;
}

// i32 output of the int8 GEMM: mode 0, no params (kernels/gemm/requant.ts).
function int8Case(sevenBit: bool): i32 {
  start(sevenBit ? 7 : 8);
  const m = 37, n = 45, k = 301;
  const a = alloc(m * k), w = alloc(k * n), bias = alloc(n * 4), c = alloc(m * n * 4);
  for (let i = 0; i < m * k; i++) store<u8>(a + i, <u8>next());
  for (let i = 0; i < k * n; i++) {
    store<i8>(w + i, sevenBit ? <i8>(<i32>(next() % 128) - 64) : <i8>(<i32>(next() % 255) - 127));
  }
  for (let i = 0; i < n; i++) store<i32>(bias + (<usize>i << 2), <i32>next() * 64 - 8192);
  if (sevenBit) {
    const packed = alloc(sqz_i7_gemm_packed_size(n, k));
    sqz_i7_gemm_pack(n, k, w, n, 1, bias, packed);
    sqz_i7_gemm(m, n, k, a, k, 0, 131, packed, c, n, 0, 0);
  } else {
    const packed = alloc(sqz_i8_gemm_packed_size(n, k));
    sqz_i8_gemm_pack(n, k, w, n, 1, bias, packed);
    sqz_i8_gemm(m, n, k, a, k, 0, 131, packed, c, n, 0, 0);
  }
  return fnv(c, m * n * 4);
}

export function sqz_selftest_i8(): i32 {
  return int8Case(false);
}

export function sqz_selftest_i7(): i32 {
  return int8Case(true);
}

export function sqz_selftest_bin(): i32 {
  start(2);
  const m = 5, n = 13, k = 333;
  const a = alloc(m * k * 4), w = alloc(k * n * 4), c = alloc(m * n * 4);
  for (let i = 0; i < m * k; i++) store<f32>(a + (<usize>i << 2), next() >= 128 ? -1 : 1);
  for (let i = 0; i < k * n; i++) store<f32>(w + (<usize>i << 2), next() >= 128 ? -1 : 1);
  const rows = alloc(<usize>m * sqz_bin_row_bytes(k));
  sqz_bin_pack_rows(m, k, a, k, rows);
  const packed = alloc(sqz_bin_gemm_packed_size(n, k));
  sqz_bin_pack_weights(n, k, w, n, 1, packed);
  sqz_bin_gemm(m, n, k, rows, packed, c, n, 0, 0);
  return fnv(c, m * n * 4);
}

export function sqz_selftest_f32(): i32 {
  start(32);
  const m = 9, n = 11, k = 67;
  const a = alloc(m * k * 4), w = alloc(k * n * 4), bias = alloc(n * 4), c = alloc(m * n * 4);
  for (let i = 0; i < m * k; i++) store<f32>(a + (<usize>i << 2), <f32>(<i32>next() - 128) / 64);
  for (let i = 0; i < k * n; i++) store<f32>(w + (<usize>i << 2), <f32>(<i32>next() - 128) / 64);
  for (let i = 0; i < n; i++) store<f32>(bias + (<usize>i << 2), <f32>(<i32>next() - 128) / 64);
  const packed = alloc(sqz_f32_gemm_packed_size(n, k));
  sqz_f32_gemm_pack(n, k, w, n, 1, bias, packed);
  sqz_f32_gemm(m, n, k, a, k, packed, c, n, -Infinity, Infinity);
  return fnv(c, m * n * 4);
}
