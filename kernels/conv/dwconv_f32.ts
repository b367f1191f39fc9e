// Depthwise convolution, f32, NHWC (channel multiplier 1), weights packed by packDwF32:
//   y[n][oy][ox][c] = clamp(bias[c] + Σ_{ky,kx in bounds} x[n][iy][ix][c] · w[c][ky][kx], min, max)
// with iy = oy*sh − pad_top + ky*dh, ix = ox*sw − pad_left + kx*dw (zero padding: out-of-bounds
// taps contribute nothing). Channels are the vector axis: one f32x4 per packed group of 4.
//
// 3×3 windows with stride 1 or 2 and column dilation 1 (MobileNet's depthwise layers; any row
// dilation) run whole output rows through register-blocked kernels that load each input
// column of a kernel row once and share it between neighbouring output pixels:
//   stride 1: 8 pixels × 4 channels, 10 loads for 24 FMAs per kernel row (4 pixels when the
//             row is shorter than 8);
//   stride 2: 4 pixels × 8 channels (two groups, so one column address serves two loads),
//             9 column addresses for 24 FMAs per kernel row.
// The last block of a row is shifted left to end at the row's end, so there is no remainder
// code. Blocks whose window leaves the input (the first and last columns, the top and bottom
// rows) run a "checked" copy of the same kernel that skips padded kernel rows and reads padded
// columns as zero; every other block runs without a single bounds test.
// Other windows (any size, stride and dilation) run 4 pixels × 4 channels over the interior
// columns, with the kernel rows limited to those inside the input, and the edge columns pixel
// by pixel with their tap ranges clamped once per pixel.
//
// The relaxed build uses f32x4.relaxed_madd (one FMA on x86 with FMA3 and on Arm); the simd
// build mul + add; the scalar build a per-pixel loop over the same packed weights.
// Channel tails: the last group loads whole vectors (reading up to 12 bytes past a pixel, as
// the ABI allows at the end of the input) and stores only its valid lanes.
import { dwGroupBytesF32 } from "../pack/pack_dw";
import { storeTail32 } from "../gemm/store";

// @ts-ignore: decorator
@inline function P(dp: usize, i: i32): i32 {
  return load<i32>(dp + (<usize>i << 2));
}

// @ts-ignore: decorator
@inline function vfma(a: v128, b: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, acc);
  return f32x4.add(acc, f32x4.mul(a, b));
}

// @ts-ignore: decorator
@inline function storeClamped(y: usize, v: v128, nc: i32, vmin: v128, vmax: v128): void {
  v = f32x4.pmin(vmax, f32x4.pmax(vmin, v));
  if (nc >= 4) v128.store(y, v);
  else storeTail32(y, v, v, nc);
}

// ceil(a / b) for a ≥ 0, b > 0.
// @ts-ignore: decorator
@inline function ceilDiv(a: i32, b: i32): i32 {
  return (a + b - 1) / b;
}

// Taps k in [lo, hi) of a window starting at input position i0 (step d) that land in [0, size).
// @ts-ignore: decorator
@inline function tapLo(i0: i32, d: i32): i32 {
  return i0 >= 0 ? 0 : ceilDiv(-i0, d);
}
// @ts-ignore: decorator
@inline function tapHi(i0: i32, d: i32, size: i32, k: i32, lo: i32): i32 {
  const last = size - 1 - i0;
  const hi = last < 0 ? 0 : min(k, last / d + 1);
  return max(hi, lo);
}

// One input column of a 3×3 block: in a checked block (window crossing the left or right
// edge) columns outside [0, width) read as zero and are never loaded.
// @ts-ignore: decorator
@inline function colF32(p: usize, ix: i32, width: i32, checked: bool): v128 {
  if (!checked) return v128.load(p);
  return <u32>ix < <u32>width ? v128.load(p) : f32x4.splat(0);
}

// The unrolled block kernels follow one pattern: input column j of a kernel row feeds pixel i
// with tap kx = j − stride·i when 0 ≤ kx ≤ 2.
// 3×3, stride 1, dw = 1, 8 consecutive output pixels of one channel group: the 10 input
// columns of each kernel row are loaded once and feed 8 accumulators (10 loads for 24 FMAs).
// @ts-ignore: decorator
@inline function dw3x3s1x8(
  r: usize, rs: usize, pb: usize, wg: usize, yo: usize, nc: i32, vmin: v128, vmax: v128,
  checked: bool, ix0: i32, width: i32, kyLo: i32, kyHi: i32,
): void {
  let a0 = v128.load(wg);
  let a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  let wk = wg + 16;
  for (let ky = 0; ky < 3; ky++) {
    if (checked && (ky < kyLo || ky >= kyHi)) {
      r += rs;
      wk += 48;
      continue; // padded kernel row: contributes nothing
    }
    const w0 = v128.load(wk);
    const w1 = v128.load(wk, 16);
    const w2 = v128.load(wk, 32);
    let p = r;
    let v: v128;
    v = colF32(p, ix0, width, checked);
    a0 = vfma(v, w0, a0);
    p += pb;
    v = colF32(p, ix0 + 1, width, checked);
    a0 = vfma(v, w1, a0);
    a1 = vfma(v, w0, a1);
    p += pb;
    v = colF32(p, ix0 + 2, width, checked);
    a0 = vfma(v, w2, a0);
    a1 = vfma(v, w1, a1);
    a2 = vfma(v, w0, a2);
    p += pb;
    v = colF32(p, ix0 + 3, width, checked);
    a1 = vfma(v, w2, a1);
    a2 = vfma(v, w1, a2);
    a3 = vfma(v, w0, a3);
    p += pb;
    v = colF32(p, ix0 + 4, width, checked);
    a2 = vfma(v, w2, a2);
    a3 = vfma(v, w1, a3);
    a4 = vfma(v, w0, a4);
    p += pb;
    v = colF32(p, ix0 + 5, width, checked);
    a3 = vfma(v, w2, a3);
    a4 = vfma(v, w1, a4);
    a5 = vfma(v, w0, a5);
    p += pb;
    v = colF32(p, ix0 + 6, width, checked);
    a4 = vfma(v, w2, a4);
    a5 = vfma(v, w1, a5);
    a6 = vfma(v, w0, a6);
    p += pb;
    v = colF32(p, ix0 + 7, width, checked);
    a5 = vfma(v, w2, a5);
    a6 = vfma(v, w1, a6);
    a7 = vfma(v, w0, a7);
    p += pb;
    v = colF32(p, ix0 + 8, width, checked);
    a6 = vfma(v, w2, a6);
    a7 = vfma(v, w1, a7);
    p += pb;
    v = colF32(p, ix0 + 9, width, checked);
    a7 = vfma(v, w2, a7);
    r += rs;
    wk += 48;
  }
  storeClamped(yo, a0, nc, vmin, vmax);
  storeClamped(yo + 1 * pb, a1, nc, vmin, vmax);
  storeClamped(yo + 2 * pb, a2, nc, vmin, vmax);
  storeClamped(yo + 3 * pb, a3, nc, vmin, vmax);
  storeClamped(yo + 4 * pb, a4, nc, vmin, vmax);
  storeClamped(yo + 5 * pb, a5, nc, vmin, vmax);
  storeClamped(yo + 6 * pb, a6, nc, vmin, vmax);
  storeClamped(yo + 7 * pb, a7, nc, vmin, vmax);
}

// The same for 4 pixels (rows of 4 to 7 output pixels): 6 loads for 12 FMAs.
// @ts-ignore: decorator
@inline function dw3x3s1x4(
  r: usize, rs: usize, pb: usize, wg: usize, yo: usize, nc: i32, vmin: v128, vmax: v128,
  checked: bool, ix0: i32, width: i32, kyLo: i32, kyHi: i32,
): void {
  let a0 = v128.load(wg);
  let a1 = a0, a2 = a0, a3 = a0;
  let wk = wg + 16;
  for (let ky = 0; ky < 3; ky++) {
    if (checked && (ky < kyLo || ky >= kyHi)) {
      r += rs;
      wk += 48;
      continue; // padded kernel row: contributes nothing
    }
    const w0 = v128.load(wk);
    const w1 = v128.load(wk, 16);
    const w2 = v128.load(wk, 32);
    let p = r;
    let v: v128;
    v = colF32(p, ix0, width, checked);
    a0 = vfma(v, w0, a0);
    p += pb;
    v = colF32(p, ix0 + 1, width, checked);
    a0 = vfma(v, w1, a0);
    a1 = vfma(v, w0, a1);
    p += pb;
    v = colF32(p, ix0 + 2, width, checked);
    a0 = vfma(v, w2, a0);
    a1 = vfma(v, w1, a1);
    a2 = vfma(v, w0, a2);
    p += pb;
    v = colF32(p, ix0 + 3, width, checked);
    a1 = vfma(v, w2, a1);
    a2 = vfma(v, w1, a2);
    a3 = vfma(v, w0, a3);
    p += pb;
    v = colF32(p, ix0 + 4, width, checked);
    a2 = vfma(v, w2, a2);
    a3 = vfma(v, w1, a3);
    p += pb;
    v = colF32(p, ix0 + 5, width, checked);
    a3 = vfma(v, w2, a3);
    r += rs;
    wk += 48;
  }
  storeClamped(yo, a0, nc, vmin, vmax);
  storeClamped(yo + 1 * pb, a1, nc, vmin, vmax);
  storeClamped(yo + 2 * pb, a2, nc, vmin, vmax);
  storeClamped(yo + 3 * pb, a3, nc, vmin, vmax);
}

// 3×3, stride 2, dw = 1, 4 output pixels: the 9 input columns of each kernel row feed
// 4 accumulators.
// @ts-ignore: decorator
@inline function dw3x3s2x4(
  r: usize, rs: usize, pb: usize, wg: usize, yo: usize, nc: i32, vmin: v128, vmax: v128,
  checked: bool, ix0: i32, width: i32, kyLo: i32, kyHi: i32,
): void {
  let a0 = v128.load(wg);
  let a1 = a0, a2 = a0, a3 = a0;
  let wk = wg + 16;
  for (let ky = 0; ky < 3; ky++) {
    if (checked && (ky < kyLo || ky >= kyHi)) {
      r += rs;
      wk += 48;
      continue; // padded kernel row: contributes nothing
    }
    const w0 = v128.load(wk);
    const w1 = v128.load(wk, 16);
    const w2 = v128.load(wk, 32);
    let p = r;
    let v: v128;
    v = colF32(p, ix0, width, checked);
    a0 = vfma(v, w0, a0);
    p += pb;
    v = colF32(p, ix0 + 1, width, checked);
    a0 = vfma(v, w1, a0);
    p += pb;
    v = colF32(p, ix0 + 2, width, checked);
    a0 = vfma(v, w2, a0);
    a1 = vfma(v, w0, a1);
    p += pb;
    v = colF32(p, ix0 + 3, width, checked);
    a1 = vfma(v, w1, a1);
    p += pb;
    v = colF32(p, ix0 + 4, width, checked);
    a1 = vfma(v, w2, a1);
    a2 = vfma(v, w0, a2);
    p += pb;
    v = colF32(p, ix0 + 5, width, checked);
    a2 = vfma(v, w1, a2);
    p += pb;
    v = colF32(p, ix0 + 6, width, checked);
    a2 = vfma(v, w2, a2);
    a3 = vfma(v, w0, a3);
    p += pb;
    v = colF32(p, ix0 + 7, width, checked);
    a3 = vfma(v, w1, a3);
    p += pb;
    v = colF32(p, ix0 + 8, width, checked);
    a3 = vfma(v, w2, a3);
    r += rs;
    wk += 48;
  }
  storeClamped(yo, a0, nc, vmin, vmax);
  storeClamped(yo + 1 * pb, a1, nc, vmin, vmax);
  storeClamped(yo + 2 * pb, a2, nc, vmin, vmax);
  storeClamped(yo + 3 * pb, a3, nc, vmin, vmax);
}

// The same for two adjacent channel groups at once (8 channels, both full).
// @ts-ignore: decorator
@inline function dw3x3s2x4c2(
  r: usize, rs: usize, pb: usize, wg: usize, yo: usize, vmin: v128, vmax: v128,
  checked: bool, ix0: i32, width: i32, kyLo: i32, kyHi: i32,
): void {
  let a0 = v128.load(wg);
  let e0 = v128.load(wg, 160);
  let a1 = a0, a2 = a0, a3 = a0;
  let e1 = e0, e2 = e0, e3 = e0;
  let wk = wg + 16;
  for (let ky = 0; ky < 3; ky++) {
    if (checked && (ky < kyLo || ky >= kyHi)) {
      r += rs;
      wk += 48;
      continue; // padded kernel row: contributes nothing
    }
    const w0 = v128.load(wk);
    const w1 = v128.load(wk, 16);
    const w2 = v128.load(wk, 32);
    const u0 = v128.load(wk, 160);
    const u1 = v128.load(wk, 176);
    const u2 = v128.load(wk, 192);
    let p = r;
    let v: v128, q: v128;
    v = colF32(p, ix0, width, checked);
    q = colF32(p + 16, ix0, width, checked);
    a0 = vfma(v, w0, a0);
    e0 = vfma(q, u0, e0);
    p += pb;
    v = colF32(p, ix0 + 1, width, checked);
    q = colF32(p + 16, ix0 + 1, width, checked);
    a0 = vfma(v, w1, a0);
    e0 = vfma(q, u1, e0);
    p += pb;
    v = colF32(p, ix0 + 2, width, checked);
    q = colF32(p + 16, ix0 + 2, width, checked);
    a0 = vfma(v, w2, a0);
    e0 = vfma(q, u2, e0);
    a1 = vfma(v, w0, a1);
    e1 = vfma(q, u0, e1);
    p += pb;
    v = colF32(p, ix0 + 3, width, checked);
    q = colF32(p + 16, ix0 + 3, width, checked);
    a1 = vfma(v, w1, a1);
    e1 = vfma(q, u1, e1);
    p += pb;
    v = colF32(p, ix0 + 4, width, checked);
    q = colF32(p + 16, ix0 + 4, width, checked);
    a1 = vfma(v, w2, a1);
    e1 = vfma(q, u2, e1);
    a2 = vfma(v, w0, a2);
    e2 = vfma(q, u0, e2);
    p += pb;
    v = colF32(p, ix0 + 5, width, checked);
    q = colF32(p + 16, ix0 + 5, width, checked);
    a2 = vfma(v, w1, a2);
    e2 = vfma(q, u1, e2);
    p += pb;
    v = colF32(p, ix0 + 6, width, checked);
    q = colF32(p + 16, ix0 + 6, width, checked);
    a2 = vfma(v, w2, a2);
    e2 = vfma(q, u2, e2);
    a3 = vfma(v, w0, a3);
    e3 = vfma(q, u0, e3);
    p += pb;
    v = colF32(p, ix0 + 7, width, checked);
    q = colF32(p + 16, ix0 + 7, width, checked);
    a3 = vfma(v, w1, a3);
    e3 = vfma(q, u1, e3);
    p += pb;
    v = colF32(p, ix0 + 8, width, checked);
    q = colF32(p + 16, ix0 + 8, width, checked);
    a3 = vfma(v, w2, a3);
    e3 = vfma(q, u2, e3);
    r += rs;
    wk += 48;
  }
  storeClamped(yo, a0, 4, vmin, vmax);
  storeClamped(yo + 16, e0, 4, vmin, vmax);
  storeClamped(yo + 1 * pb, a1, 4, vmin, vmax);
  storeClamped(yo + 1 * pb + 16, e1, 4, vmin, vmax);
  storeClamped(yo + 2 * pb, a2, 4, vmin, vmax);
  storeClamped(yo + 2 * pb + 16, e2, 4, vmin, vmax);
  storeClamped(yo + 3 * pb, a3, 4, vmin, vmax);
  storeClamped(yo + 3 * pb + 16, e3, 4, vmin, vmax);
}

// All ow output pixels of one row of a 3×3 window with stride 1 or 2 and dw = 1, in blocks of
// BW pixels (kernel `kind`: 0 = stride 1 ×8, 1 = stride 1 ×4, 2 = stride 2 ×4; needs ow ≥ BW).
// The last block is shifted left to end at ow (overlapping pixels are recomputed with
// identical results), so there is no remainder path. Blocks whose window leaves the input (the
// edge columns, the top and bottom rows) run the checked variant, which skips padded kernel
// rows and reads padded columns as zero; all others run unchecked. xr: input at kernel row 0
// (may lie outside). Inlined into one small function per kind, so each keeps its registers.
// @ts-ignore: decorator
@inline function dw3x3Row(
  kind: i32, xr: usize, yr: usize, ow: i32, pl: i32, width: i32, kyLo: i32, kyHi: i32, c: i32,
  rsd: usize, w: usize, gb: usize, vmin: v128, vmax: v128,
): void {
  const pb = <usize>c << 2;
  const sw = kind == 2 ? 2 : 1;
  const bw = kind == 0 ? 8 : 4;
  const span = (bw - 1) * sw + 3; // input columns a block reads
  const rowsIn = kyLo == 0 && kyHi == 3;
  let ox = 0;
  while (true) {
    if (ox > ow - bw) ox = ow - bw;
    const ix0 = ox * sw - pl;
    const clean = rowsIn && ix0 >= 0 && ix0 + span <= width;
    const r = xr + <usize>ix0 * pb;
    const yo = yr + <usize>ox * pb;
    let wg = w;
    let c0 = 0;
    if (kind == 2) {
      for (; c0 + 8 <= c; c0 += 8) {
        const g = <usize>c0 << 2;
        if (clean) dw3x3s2x4c2(r + g, rsd, pb, wg, yo + g, vmin, vmax, false, 0, 0, 0, 3);
        else dw3x3s2x4c2(r + g, rsd, pb, wg, yo + g, vmin, vmax, true, ix0, width, kyLo, kyHi);
        wg += gb << 1;
      }
    }
    for (; c0 < c; c0 += 4) {
      const g = <usize>c0 << 2;
      const nc = c - c0;
      if (kind == 0) {
        if (clean) dw3x3s1x8(r + g, rsd, pb, wg, yo + g, nc, vmin, vmax, false, 0, 0, 0, 3);
        else dw3x3s1x8(r + g, rsd, pb, wg, yo + g, nc, vmin, vmax, true, ix0, width, kyLo, kyHi);
      } else if (kind == 1) {
        if (clean) dw3x3s1x4(r + g, rsd, pb, wg, yo + g, nc, vmin, vmax, false, 0, 0, 0, 3);
        else dw3x3s1x4(r + g, rsd, pb, wg, yo + g, nc, vmin, vmax, true, ix0, width, kyLo, kyHi);
      } else {
        if (clean) dw3x3s2x4(r + g, rsd, pb, wg, yo + g, nc, vmin, vmax, false, 0, 0, 0, 3);
        else dw3x3s2x4(r + g, rsd, pb, wg, yo + g, nc, vmin, vmax, true, ix0, width, kyLo, kyHi);
      }
      wg += gb;
    }
    ox += bw;
    if (ox >= ow) break;
  }
}

function dw3x3RowS1x8(
  xr: usize, yr: usize, ow: i32, pl: i32, width: i32, kyLo: i32, kyHi: i32, c: i32,
  rsd: usize, w: usize, gb: usize, vmin: v128, vmax: v128,
): void {
  dw3x3Row(0, xr, yr, ow, pl, width, kyLo, kyHi, c, rsd, w, gb, vmin, vmax);
}

function dw3x3RowS1x4(
  xr: usize, yr: usize, ow: i32, pl: i32, width: i32, kyLo: i32, kyHi: i32, c: i32,
  rsd: usize, w: usize, gb: usize, vmin: v128, vmax: v128,
): void {
  dw3x3Row(1, xr, yr, ow, pl, width, kyLo, kyHi, c, rsd, w, gb, vmin, vmax);
}

function dw3x3RowS2x4(
  xr: usize, yr: usize, ow: i32, pl: i32, width: i32, kyLo: i32, kyHi: i32, c: i32,
  rsd: usize, w: usize, gb: usize, vmin: v128, vmax: v128,
): void {
  dw3x3Row(2, xr, yr, ow, pl, width, kyLo, kyHi, c, rsd, w, gb, vmin, vmax);
}

// Any kernel, stride and dilation: the output pixels [ox0, ox1) of one row whose taps are all
// inside horizontally, over kernel rows [kyLo, kyHi). 4 pixels per block; in a short last
// block the missing pixels alias the last valid one (recomputed and rewritten with the same
// value). xr: input at kernel row 0 (row of oy*sh − pad_top, may lie outside), yr: output row.
function dwGenericF32(
  xr: usize, yr: usize, ox0: i32, ox1: i32, kyLo: i32, kyHi: i32, kw: i32, c: i32,
  sw: i32, pl: i32, rsd: usize, dxb: usize, w: usize, gb: usize, vmin: v128, vmax: v128,
): void {
  const pb = <usize>c << 2;
  const sx = <usize>sw * pb;
  for (let ox = ox0; ox < ox1; ox += 4) {
    const m = min(4, ox1 - ox);
    const p0 = xr + <usize>(ox * sw - pl) * pb + <usize>kyLo * rsd;
    const p1 = m > 1 ? p0 + sx : p0;
    const p2 = m > 2 ? p1 + sx : p1;
    const p3 = m > 3 ? p2 + sx : p2;
    const y0 = yr + <usize>ox * pb;
    const y1 = m > 1 ? y0 + pb : y0;
    const y2 = m > 2 ? y1 + pb : y1;
    const y3 = m > 3 ? y2 + pb : y2;
    let wg = w;
    for (let c0 = 0; c0 < c; c0 += 4) {
      const g = <usize>c0 << 2;
      let a0 = v128.load(wg);
      let a1 = a0, a2 = a0, a3 = a0;
      let wt = wg + 16 + <usize>(kyLo * kw) * 16;
      let q = g;
      for (let ky = kyLo; ky < kyHi; ky++) {
        let o = q;
        for (let kx = 0; kx < kw; kx++) {
          const wv = v128.load(wt);
          a0 = vfma(v128.load(p0 + o), wv, a0);
          a1 = vfma(v128.load(p1 + o), wv, a1);
          a2 = vfma(v128.load(p2 + o), wv, a2);
          a3 = vfma(v128.load(p3 + o), wv, a3);
          o += dxb;
          wt += 16;
        }
        q += rsd;
      }
      const nc = c - c0;
      storeClamped(y3 + g, a3, nc, vmin, vmax);
      storeClamped(y2 + g, a2, nc, vmin, vmax);
      storeClamped(y1 + g, a1, nc, vmin, vmax);
      storeClamped(y0 + g, a0, nc, vmin, vmax);
      wg += gb;
    }
  }
}

// One output pixel whose window crosses the left or right edge: its column range is clamped
// once, so no tap is tested individually.
function dwPixelF32(
  xr: usize, yo: usize, ix0: i32, kyLo: i32, kyHi: i32, kw: i32, dw: i32, width: i32, c: i32,
  rsd: usize, w: usize, gb: usize, vmin: v128, vmax: v128,
): void {
  const pb = <usize>c << 2;
  const kxLo = tapLo(ix0, dw);
  const kxHi = tapHi(ix0, dw, width, kw, kxLo);
  const dxb = <usize>dw * pb;
  const p = xr + <usize>ix0 * pb + <usize>kyLo * rsd + <usize>kxLo * dxb;
  let wg = w;
  for (let c0 = 0; c0 < c; c0 += 4) {
    const g = <usize>c0 << 2;
    let acc = v128.load(wg);
    let wr = wg + 16 + <usize>(kyLo * kw + kxLo) * 16;
    let q = p + g;
    for (let ky = kyLo; ky < kyHi; ky++) {
      let o = q;
      let wt = wr;
      for (let kx = kxLo; kx < kxHi; kx++) {
        acc = vfma(v128.load(o), v128.load(wt), acc);
        o += dxb;
        wt += 16;
      }
      q += rsd;
      wr += <usize>kw << 4;
    }
    storeClamped(yo + g, acc, c - c0, vmin, vmax);
    wg += gb;
  }
}

// Scalar build: one pixel, all channels, tap ranges clamped as above.
function dwPixelF32Scalar(
  xr: usize, yo: usize, ix0: i32, kyLo: i32, kyHi: i32, kw: i32, dw: i32, width: i32, c: i32,
  rsd: usize, w: usize, gb: usize, outMin: f32, outMax: f32,
): void {
  const pb = <usize>c << 2;
  const kxLo = tapLo(ix0, dw);
  const kxHi = tapHi(ix0, dw, width, kw, kxLo);
  const dxb = <usize>dw * pb;
  const p = xr + <usize>ix0 * pb + <usize>kyLo * rsd + <usize>kxLo * dxb;
  let wg = w;
  for (let c0 = 0; c0 < c; c0 += 4) {
    const nc = min(4, c - c0);
    for (let j = 0; j < nc; j++) {
      const cb = <usize>(c0 + j) << 2;
      let acc = load<f32>(wg + (<usize>j << 2));
      let wr = wg + 16 + <usize>(kyLo * kw + kxLo) * 16 + (<usize>j << 2);
      let q = p + cb;
      for (let ky = kyLo; ky < kyHi; ky++) {
        let o = q;
        let wt = wr;
        for (let kx = kxLo; kx < kxHi; kx++) {
          acc += load<f32>(o) * load<f32>(wt);
          o += dxb;
          wt += 16;
        }
        q += rsd;
        wr += <usize>kw << 4;
      }
      store<f32>(yo + cb, min(max(acc, outMin), outMax));
    }
    wg += gb;
  }
}

// dp: dw_params (kernels/abi_dwconv.ts); w: packed by packDwF32. y must not overlap x.
export function dwconvF32(
  dp: usize, x: usize, w: usize, y: usize, outMin: f32, outMax: f32,
): void {
  if (ASC_FEATURE_SIMD) dwconvF32Simd(dp, x, w, y, outMin, outMax);
  else dwconvF32Scalar(dp, x, w, y, outMin, outMax);
}

function dwconvF32Scalar(
  dp: usize, x: usize, w: usize, y: usize, outMin: f32, outMax: f32,
): void {
  const n = P(dp, 0), h = P(dp, 1), width = P(dp, 2), c = P(dp, 3);
  const kh = P(dp, 4), kw = P(dp, 5), sh = P(dp, 6), sw = P(dp, 7);
  const dh = P(dp, 8), dw = P(dp, 9), pt = P(dp, 10), pl = P(dp, 11);
  const oh = P(dp, 12), ow = P(dp, 13);
  const pb = <usize>c << 2;
  const rsd = <usize>dh * <usize>width * pb;
  const gb = dwGroupBytesF32(kh * kw);
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      const iy0 = oy * sh - pt;
      const kyLo = tapLo(iy0, dh);
      const kyHi = tapHi(iy0, dh, h, kh, kyLo);
      const xr = x + <usize>(b * h + iy0) * <usize>width * pb;
      const yr = y + <usize>(b * oh + oy) * <usize>ow * pb;
      for (let ox = 0; ox < ow; ox++) {
        dwPixelF32Scalar(
          xr, yr + <usize>ox * pb, ox * sw - pl, kyLo, kyHi, kw, dw, width, c, rsd, w, gb,
          outMin, outMax,
        );
      }
    }
  }
}

function dwconvF32Simd(
  dp: usize, x: usize, w: usize, y: usize, outMin: f32, outMax: f32,
): void {
  const n = P(dp, 0), h = P(dp, 1), width = P(dp, 2), c = P(dp, 3);
  const kh = P(dp, 4), kw = P(dp, 5), sh = P(dp, 6), sw = P(dp, 7);
  const dh = P(dp, 8), dw = P(dp, 9), pt = P(dp, 10), pl = P(dp, 11);
  const oh = P(dp, 12), ow = P(dp, 13);
  const pb = <usize>c << 2;
  const rsd = <usize>dh * <usize>width * pb; // bytes between kernel rows
  const dxb = <usize>dw * pb; // bytes between kernel columns
  const gb = dwGroupBytesF32(kh * kw);
  // Interior columns: every kx lands inside [0, width).
  const oxLo = min(ow, ceilDiv(pl, sw));
  const lastFit = width - 1 + pl - (kw - 1) * dw; // ox*sw must not exceed this
  const oxHi = max(oxLo, lastFit < 0 ? 0 : min(ow, lastFit / sw + 1));
  const vmin = f32x4.splat(outMin);
  const vmax = f32x4.splat(outMax);
  const fast3x3 = kh == 3 && kw == 3 && dw == 1 && (sw == 1 || sw == 2);
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      const iy0 = oy * sh - pt;
      const kyLo = tapLo(iy0, dh);
      const kyHi = tapHi(iy0, dh, h, kh, kyLo);
      // Wrapping u32 arithmetic: xr may point outside x; only in-bounds rows are read.
      const xr = x + <usize>(b * h + iy0) * <usize>width * pb;
      const yr = y + <usize>(b * oh + oy) * <usize>ow * pb;
      if (fast3x3 && ow >= 4) {
        if (sw == 2) dw3x3RowS2x4(xr, yr, ow, pl, width, kyLo, kyHi, c, rsd, w, gb, vmin, vmax);
        else if (ow >= 8) dw3x3RowS1x8(xr, yr, ow, pl, width, kyLo, kyHi, c, rsd, w, gb, vmin, vmax);
        else dw3x3RowS1x4(xr, yr, ow, pl, width, kyLo, kyHi, c, rsd, w, gb, vmin, vmax);
        continue;
      }
      // Other kernels: the interior columns blocked, the edge columns pixel by pixel.
      for (let ox = 0; ox < oxLo; ox++) {
        dwPixelF32(
          xr, yr + <usize>ox * pb, ox * sw - pl, kyLo, kyHi, kw, dw, width, c, rsd, w, gb,
          vmin, vmax,
        );
      }
      if (oxHi > oxLo) {
        dwGenericF32(xr, yr, oxLo, oxHi, kyLo, kyHi, kw, c, sw, pl, rsd, dxb, w, gb, vmin, vmax);
      }
      for (let ox = oxHi; ox < ow; ox++) {
        dwPixelF32(
          xr, yr + <usize>ox * pb, ox * sw - pl, kyLo, kyHi, kw, dw, width, c, rsd, w, gb,
          vmin, vmax,
        );
      }
    }
  }
}
