// elementwise_f32_wgsl: out = a ∘ b with numpy broadcasting, or a unary op of a, with the
// fused clamp graph/passes.ts leaves on nodes. One invocation per output element, 256 per
// workgroup; the workgroup grid wraps into y past 65535 groups.
//
// Uniform Params: n (output elements), rank ≤ 8, op, flags (bit 0: clamp to [lo, hi]), then
// the output dims and the element strides of a and b per output dim (0 where broadcast), 8 each
// as two vec4<u32>. ops: 0 Add, 1 Sub, 2 Mul, 3 Div, 10 Relu, 11 Identity (a copy), 12 Sigmoid,
// 13 Tanh.
export const EW_OPS = {
  Add: 0,
  Sub: 1,
  Mul: 2,
  Div: 3,
  Relu: 10,
  Identity: 11,
  Sigmoid: 12,
  Tanh: 13,
} as const;
export const EW_MAX_RANK = 8;

export const ELEMENTWISE_WGSL = /* wgsl */ `
struct Params {
  n: u32, rank: u32, op: u32, flags: u32,
  lo: f32, hi: f32, _p0: u32, _p1: u32,
  od: array<vec4<u32>, 2>,
  sa: array<vec4<u32>, 2>,
  sb: array<vec4<u32>, 2>,
}
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

fn at(v: array<vec4<u32>, 2>, i: u32) -> u32 { return v[i / 4u][i % 4u]; }

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let idx = (wg.y * nwg.x + wg.x) * 256u + li;
  if (idx >= p.n) { return; }
  var rest = idx;
  var ia = 0u;
  var ib = 0u;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let dim = at(p.od, u32(d));
    let coord = rest % dim;
    rest = rest / dim;
    ia += coord * at(p.sa, u32(d));
    ib += coord * at(p.sb, u32(d));
  }
  let x = a[ia];
  var y: f32;
  switch (p.op) {
    case 0u: { y = x + b[ib]; }
    case 1u: { y = x - b[ib]; }
    case 2u: { y = x * b[ib]; }
    case 3u: { y = x / b[ib]; }
    case 10u: { y = max(x, 0.0); }
    case 12u: { y = 1.0 / (1.0 + exp(-x)); }
    case 13u: { y = tanh(x); }
    default: { y = x; }
  }
  if ((p.flags & 1u) != 0u) { y = min(max(y, p.lo), p.hi); }
  c[idx] = y;
}
`;

// softmax_f32_wgsl: softmax over the last axis, one 64-invocation workgroup per row: max and
// sum reduced in workgroup memory, exp(x − max) / sum. Params: rows, cols.
export const SOFTMAX_WGSL = /* wgsl */ `
struct Params { rows: u32, cols: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read_write> c: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
var<workgroup> red: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let row = wg.y * nwg.x + wg.x;
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  var m = -3.4028234663852886e38;
  for (var j = li; j < p.cols; j += 64u) { m = max(m, a[base + j]); }
  red[li] = m;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] = max(red[li], red[li + s]); }
    workgroupBarrier();
  }
  let mx = red[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var j = li; j < p.cols; j += 64u) { sum += exp(a[base + j] - mx); }
  red[li] = sum;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] = red[li] + red[li + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  for (var j = li; j < p.cols; j += 64u) { c[base + j] = exp(a[base + j] - mx) / total; }
}
`;
