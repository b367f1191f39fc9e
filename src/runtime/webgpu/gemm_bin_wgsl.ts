// gemm_bin_4x4_wgsl: the binary (XNOR-popcount) GEMM of the wasm backend (kernels/gemm/gemm_bin.ts)
// on WebGPU, bit for bit: dot[m][n] = K − 2·popcount(A[m] ^ W[n]) over sign bits (1 = −1), then
//   i32: the dot;  f32: y = clamp(alpha[n]·dot + bias[n])  (the product rounded before the add);
//   bits: the sign bits of y (set when y < 0), packed along N as the next binary layer's rows.
//
// Layouts: a row of K sign bits is exactly the wasm format (kernels/pack/pack_bin.ts): KW =
// 4·ceil(K/128) u32 words, bit k is bit (k & 31) of word k >> 5, zero past K. A: M such rows;
// W: N such rows (one per output column); bits output: M rows of 4·ceil(N/128) words.
// Bindings: 0 A, 1 W, 2 alpha, 3 bias, 4 C, 5 uniform Params. Entry `main` (i32, f32): an 8×8
// workgroup, 4 rows × 4 columns per invocation. Entry `main_bits`: one invocation per output
// word (32 columns of one row), so no two invocations write a word.
export const MODE_BIN = { i32: 0, f32: 1, bits: 2 } as const;

export const GEMM_BIN_WGSL = /* wgsl */ `
struct Params { m: u32, n: u32, k: u32, kw: u32, mode: u32, flags: u32, lo: f32, hi: f32 }

@group(0) @binding(0) var<storage, read> a: array<u32>;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> alpha: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<u32>;
@group(0) @binding(5) var<uniform> p: Params;

fn dot(r: u32, col: u32) -> i32 {
  var pop = 0u;
  for (var q = 0u; q < p.kw; q++) { pop += countOneBits(a[r * p.kw + q] ^ w[col * p.kw + q]); }
  return i32(p.k) - 2 * i32(pop);
}

fn affine(d: i32, col: u32) -> f32 {
  // Two statements so the product is rounded before the add, as on the wasm side.
  let prod = f32(d) * alpha[col];
  return prod + bias[col];
}

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r0 = gid.y * 4u;
  let c0 = gid.x * 4u;
  if (r0 >= p.m || c0 >= p.n) { return; }
  var pop: array<array<u32, 4>, 4>;
  var cols: array<u32, 4>;
  var rows: array<u32, 4>;
  for (var j = 0u; j < 4u; j++) { cols[j] = min(c0 + j, p.n - 1u) * p.kw; }
  for (var i = 0u; i < 4u; i++) { rows[i] = min(r0 + i, p.m - 1u) * p.kw; }
  for (var q = 0u; q < p.kw; q++) {
    var wv: array<u32, 4>;
    for (var j = 0u; j < 4u; j++) { wv[j] = w[cols[j] + q]; }
    for (var i = 0u; i < 4u; i++) {
      let av = a[rows[i] + q];
      for (var j = 0u; j < 4u; j++) { pop[i][j] += countOneBits(av ^ wv[j]); }
    }
  }
  for (var i = 0u; i < 4u; i++) {
    let r = r0 + i;
    if (r >= p.m) { break; }
    for (var j = 0u; j < 4u; j++) {
      let col = c0 + j;
      if (col >= p.n) { break; }
      let d = i32(p.k) - 2 * i32(pop[i][j]);
      if (p.mode == 0u) {
        c[r * p.n + col] = bitcast<u32>(d);
      } else {
        var y = affine(d, col);
        if ((p.flags & 2u) != 0u) { y = min(max(y, p.lo), p.hi); }
        c[r * p.n + col] = bitcast<u32>(y);
      }
    }
  }
}

@compute @workgroup_size(64)
fn main_bits(@builtin(global_invocation_id) gid: vec3<u32>) {
  let words = 4u * ((p.n + 127u) / 128u);
  let r = gid.x / words;
  let q = gid.x % words;
  if (r >= p.m) { return; }
  var bits = 0u;
  for (var j = 0u; j < 32u; j++) {
    let col = q * 32u + j;
    if (col >= p.n) { break; }
    if (affine(dot(r, col), col) < 0.0) { bits |= 1u << j; }
  }
  c[r * words + q] = bits;
}
`;
