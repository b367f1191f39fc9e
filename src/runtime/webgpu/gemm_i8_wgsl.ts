// gemm_i8_4x4_wgsl: the int8 GEMM of the wasm backend (kernels/gemm/gemm_i8.ts) on WebGPU, with
// the same semantics and output stages, bit for bit:
//   acc[m][n] = bias[n] + Σ_k (A[m][k] − aZero)·W[k][n]             (i32, exact)
// then i32, fp32 requantization to u8/i8 (ONNX QLinearMatMul / ORT:
//   q = round_half_even(clamp(f32(acc)·scale[n], qmin − zp, qmax − zp)) + zp),
// or f32 = f32(acc)·scale[n] (clamped when asked).
//
// Layouts (u32 words; byte j of a word is its bits 8j..8j+7, i.e. little-endian bytes):
//   A:      M rows × KW words, KW = ceil(K/4); word q holds k = 4q..4q+3; pad bytes 0
//   W:      N columns × KW words of i8, the same order along K; pad bytes 0 (so pads add 0)
//   colsum: i32[N] = Σ_k W[k][n], for the zero-point correction
//   C:      i32 / f32 modes: M × N; u8 / i8 modes: M rows × ceil(N/4) words, 4 columns per
//           word, bytes past N are 0
// dot4I8Packed needs signed bytes: a u8 activation a is used as a − 128 (a ^ 0x80 per byte) with
// zero point aZero − 128, which leaves every (a − aZero) unchanged:
//   acc = bias + Σ dot4(A', W) − aZero'·colsum.
// Without WGSL's packed_4x8_integer_dot_product the same dot is four extractBits products.
//
// An 8×8 workgroup computes a 32×32 tile; each invocation 4 rows × 4 consecutive columns.
// Bindings: 0 A, 1 W, 2 colsum, 3 bias (read when flags & 1), 4 scale, 5 C, 6 uniform Params.
export const MODE_I8 = { i32: 0, fp32_uint8: 1, fp32_int8: 2, f32: 3 } as const;

export function gemmI8Wgsl(packedDot: boolean): string {
  const dot = packedDot
    ? `fn dot4(x: u32, y: u32) -> i32 { return dot4I8Packed(x, y); }`
    : `fn dot4(x: u32, y: u32) -> i32 {
  let a = bitcast<i32>(x);
  let b = bitcast<i32>(y);
  var s = 0;
  for (var i = 0u; i < 4u; i++) { s += extractBits(a, 8u * i, 8u) * extractBits(b, 8u * i, 8u); }
  return s;
}`;
  return /* wgsl */ `
struct Params {
  m: u32, n: u32, kw: u32, mode: u32,
  a_signed: u32, a_zero: i32, out_zero: i32, flags: u32,
  qlo: f32, qhi: f32, flo: f32, fhi: f32,
}

@group(0) @binding(0) var<storage, read> a: array<u32>;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> colsum: array<i32>;
@group(0) @binding(3) var<storage, read> bias: array<i32>;
@group(0) @binding(4) var<storage, read> scale: array<f32>;
@group(0) @binding(5) var<storage, read_write> c: array<u32>;
@group(0) @binding(6) var<uniform> p: Params;

${dot}

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r0 = gid.y * 4u;
  let c0 = gid.x * 4u;
  if (r0 >= p.m || c0 >= p.n) { return; }
  let flip = select(0x80808080u, 0u, p.a_signed != 0u);
  let zs = select(p.a_zero - 128, p.a_zero, p.a_signed != 0u);
  var acc: array<array<i32, 4>, 4>;
  var cols: array<u32, 4>;
  var rows: array<u32, 4>;
  for (var j = 0u; j < 4u; j++) { cols[j] = min(c0 + j, p.n - 1u) * p.kw; }
  for (var i = 0u; i < 4u; i++) { rows[i] = min(r0 + i, p.m - 1u) * p.kw; }
  for (var q = 0u; q < p.kw; q++) {
    var wv: array<u32, 4>;
    for (var j = 0u; j < 4u; j++) { wv[j] = w[cols[j] + q]; }
    for (var i = 0u; i < 4u; i++) {
      let av = a[rows[i] + q] ^ flip;
      for (var j = 0u; j < 4u; j++) { acc[i][j] += dot4(av, wv[j]); }
    }
  }
  let nw = (p.n + 3u) / 4u;
  for (var i = 0u; i < 4u; i++) {
    let r = r0 + i;
    if (r >= p.m) { break; }
    var packed = 0u;
    for (var j = 0u; j < 4u; j++) {
      let col = c0 + j;
      if (col >= p.n) { break; }
      var v = acc[i][j] - zs * colsum[col];
      if ((p.flags & 1u) != 0u) { v += bias[col]; }
      if (p.mode == 0u) {
        c[r * p.n + col] = bitcast<u32>(v);
      } else if (p.mode == 3u) {
        var y = f32(v) * scale[col];
        if ((p.flags & 2u) != 0u) { y = min(max(y, p.flo), p.fhi); }
        c[r * p.n + col] = bitcast<u32>(y);
      } else {
        let y = round(min(max(f32(v) * scale[col], p.qlo), p.qhi));
        let q = i32(y) + p.out_zero;
        packed |= (bitcast<u32>(q) & 0xffu) << (8u * j);
      }
    }
    if (p.mode == 1u || p.mode == 2u) { c[r * nw + c0 / 4u] = packed; }
  }
}
`;
}
