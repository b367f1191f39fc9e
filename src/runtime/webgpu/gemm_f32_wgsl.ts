// gemm_f32_64x64_wgsl: C = clamp(A·B + bias, lo, hi), A M×K and B K×N row-major f32 (the
// layouts the wasm backend's NHWC activations and unpacked weights use), C M×N row-major.
//
// A workgroup of 16×16 invocations computes a 64×64 tile of C; each invocation a 4×4 block in
// registers. K advances in steps of 16 through workgroup memory: the workgroup loads a 64×16
// slab of A and a 16×64 slab of B (4 elements per invocation each), then every invocation
// reads its 4 rows and 4 columns from there 16 times. Loads past M, N or K read 0, so any
// shape works and the stores are guarded.
//
// Bindings (group 0): 0 A, 1 B, 2 bias (N floats; read when flags & 1), 3 C,
//   4 uniform struct Dims { m, n, k, flags: u32; lo, hi: f32 }; flags & 2 clamps to [lo, hi].
// Infinite clamps are never passed: WGSL lets compilers assume finite floats.
export const GEMM_F32_TILE = 64;

export const GEMM_F32_WGSL = /* wgsl */ `
struct Dims { m: u32, n: u32, k: u32, flags: u32, lo: f32, hi: f32 }

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<uniform> d: Dims;

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;

var<workgroup> as_: array<array<f32, 16>, 64>;  // [row][k]
var<workgroup> bs: array<array<f32, 64>, 16>;   // [k][col]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let row0 = wg.y * TM;
  let col0 = wg.x * TN;
  var acc: array<array<f32, 4>, 4>;
  for (var t = 0u; t < d.k; t += TK) {
    // 256 invocations load 1024 elements of each slab: 4 apiece.
    for (var e = 0u; e < 4u; e++) {
      let idx = li * 4u + e;
      let ar = idx / TK;
      let ak = idx % TK;
      let gr = row0 + ar;
      let gk = t + ak;
      as_[ar][ak] = select(0.0, a[gr * d.k + gk], gr < d.m && gk < d.k);
      let bk = idx / TN;
      let bc = idx % TN;
      let gk2 = t + bk;
      let gc = col0 + bc;
      bs[bk][bc] = select(0.0, b[gk2 * d.n + gc], gk2 < d.k && gc < d.n);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      var bv: array<f32, 4>;
      for (var j = 0u; j < 4u; j++) { bv[j] = bs[kk][lid.x * 4u + j]; }
      for (var i = 0u; i < 4u; i++) {
        let av = as_[lid.y * 4u + i][kk];
        for (var j = 0u; j < 4u; j++) { acc[i][j] = acc[i][j] + av * bv[j]; }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let r = row0 + lid.y * 4u + i;
    if (r >= d.m) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let col = col0 + lid.x * 4u + j;
      if (col >= d.n) { continue; }
      var v = acc[i][j];
      if ((d.flags & 1u) != 0u) { v = v + bias[col]; }
      if ((d.flags & 2u) != 0u) { v = min(max(v, d.lo), d.hi); }
      c[r * d.n + col] = v;
    }
  }
}
`;
