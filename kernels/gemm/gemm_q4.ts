// int4-weight GEMM/GEMV (Q4 × Q8, as ggml's q4_0 × q8_0): weights stay packed as 4-bit codes
// (kernels/pack/pack_q4.ts); activations are quantized per row and per block of 32 along K
// to int8 at run time:
//
//   struct q8_row {              // row stride 40·nb bytes
//     i8  x[nb][32];             // x = clamp(nearest(a / dx), −127, 127); 0 past K, 0 for NaN
//     f32 dx[nb];                // max|a| / 127 over the block; x = 0 unless dx > 0
//     i32 sx[nb];                // Σ x over the block
//   }
//
// Per output: y = bias + Σ_b f32(Σ_k code·x − zp·sx) · f32(d·dx), accumulated over b in order,
// then clamp(y, outMin, outMax). The integer part is exact; the f32 part is the same
// operations in the same order in every build (products in f32, no fused multiply-add), so
// the builds agree bit for bit. Codes enter the relaxed dot as its 7-bit operand (0..15):
// exact on every engine, one dot per 16 multiply-adds.
//
// Kernels: gemm_q4_1x8 / gemm_q4_2x8 (rows × columns of the register tile; _relaxed or
// _simd by build), gemm_q4_1x1_scalar. A 2-row tile unpacks each weight nibble and scale once
// for both rows.
import { blocksQ4, NR_Q4, panelBytesQ4, Q4_BLOCK, Q4_BLOCK_BYTES } from "../pack/pack_q4";
import { storeTail32 } from "./store";

export function q8RowBytes(k: i32): usize {
  return <usize>blocksQ4(k) * 40;
}

// One block of ≤ 32 values, scalar (every build's K tail, and the scalar build).
function quantizeBlockScalar(src: usize, kn: i32, xq: usize, dxp: usize, sxp: usize): void {
  let amax: f32 = 0;
  for (let i = 0; i < kn; i++) amax = max(amax, abs(load<f32>(src + (<usize>i << 2))));
  const dx: f32 = amax / 127;
  let sx = 0;
  for (let i = 0; i < 32; i++) {
    let q = 0;
    if (i < kn && dx > 0) {
      const v = f32.nearest(load<f32>(src + (<usize>i << 2)) / dx);
      q = v == v ? <i32>min<f32>(127, max<f32>(-127, v)) : 0;
    }
    store<i8>(xq + <usize>i, <i8>q);
    sx += q;
  }
  store<f32>(dxp, dx);
  store<i32>(sxp, sx);
}

// A full block of 32 with f32x4: the same operations lane-wise (IEEE division and
// round-to-even are exact operations), so the same bytes as the scalar form.
// @ts-ignore: decorator
@inline function quantizeBlockSimd(src: usize, xq: usize, dxp: usize, sxp: usize): void {
  const v0 = v128.load(src), v1 = v128.load(src, 16), v2 = v128.load(src, 32);
  const v3 = v128.load(src, 48), v4 = v128.load(src, 64), v5 = v128.load(src, 80);
  const v6 = v128.load(src, 96), v7 = v128.load(src, 112);
  let m = f32x4.max(
    f32x4.max(f32x4.max(f32x4.abs(v0), f32x4.abs(v1)), f32x4.max(f32x4.abs(v2), f32x4.abs(v3))),
    f32x4.max(f32x4.max(f32x4.abs(v4), f32x4.abs(v5)), f32x4.max(f32x4.abs(v6), f32x4.abs(v7))),
  );
  m = f32x4.max(m, i32x4.shuffle(m, m, 2, 3, 0, 1));
  m = f32x4.max(m, i32x4.shuffle(m, m, 1, 0, 3, 2));
  const dx: f32 = f32x4.extract_lane(m, 0) / 127;
  if (!(dx > 0)) {
    v128.store(xq, i32x4.splat(0));
    v128.store(xq, i32x4.splat(0), 16);
    store<f32>(dxp, dx);
    store<i32>(sxp, 0);
    return;
  }
  const d = f32x4.splat(dx), hi = f32x4.splat(127), lo = f32x4.splat(-127);
  const q0 = i32x4.trunc_sat_f32x4_s(f32x4.min(hi, f32x4.max(lo, f32x4.nearest(f32x4.div(v0, d)))));
  const q1 = i32x4.trunc_sat_f32x4_s(f32x4.min(hi, f32x4.max(lo, f32x4.nearest(f32x4.div(v1, d)))));
  const q2 = i32x4.trunc_sat_f32x4_s(f32x4.min(hi, f32x4.max(lo, f32x4.nearest(f32x4.div(v2, d)))));
  const q3 = i32x4.trunc_sat_f32x4_s(f32x4.min(hi, f32x4.max(lo, f32x4.nearest(f32x4.div(v3, d)))));
  const q4 = i32x4.trunc_sat_f32x4_s(f32x4.min(hi, f32x4.max(lo, f32x4.nearest(f32x4.div(v4, d)))));
  const q5 = i32x4.trunc_sat_f32x4_s(f32x4.min(hi, f32x4.max(lo, f32x4.nearest(f32x4.div(v5, d)))));
  const q6 = i32x4.trunc_sat_f32x4_s(f32x4.min(hi, f32x4.max(lo, f32x4.nearest(f32x4.div(v6, d)))));
  const q7 = i32x4.trunc_sat_f32x4_s(f32x4.min(hi, f32x4.max(lo, f32x4.nearest(f32x4.div(v7, d)))));
  let s = i32x4.add(i32x4.add(i32x4.add(q0, q1), i32x4.add(q2, q3)), i32x4.add(i32x4.add(q4, q5), i32x4.add(q6, q7)));
  s = i32x4.add(s, i32x4.shuffle(s, s, 2, 3, 0, 1));
  s = i32x4.add(s, i32x4.shuffle(s, s, 1, 0, 3, 2));
  const a = i16x8.narrow_i32x4_s(q0, q1), b = i16x8.narrow_i32x4_s(q2, q3);
  const c = i16x8.narrow_i32x4_s(q4, q5), e = i16x8.narrow_i32x4_s(q6, q7);
  v128.store(xq, i8x16.narrow_i16x8_s(a, b));
  v128.store(xq, i8x16.narrow_i16x8_s(c, e), 16);
  store<f32>(dxp, dx);
  store<i32>(sxp, i32x4.extract_lane(s, 0));
}

/** Quantizes M rows of f32 A (row stride lda elements) into q8_row structs at out. */
export function quantizeRowsQ8(m: i32, k: i32, a: usize, lda: i32, out: usize): void {
  const nb = blocksQ4(k);
  const rb = q8RowBytes(k);
  for (let r = 0; r < m; r++) {
    const src = a + <usize>r * (<usize>lda << 2);
    const row = out + <usize>r * rb;
    const dxs = row + <usize>nb * 32, sxs = dxs + <usize>nb * 4;
    for (let b = 0; b < nb; b++) {
      const k0 = b * Q4_BLOCK, kn = min(Q4_BLOCK, k - k0);
      const s = src + (<usize>k0 << 2), xq = row + <usize>b * 32;
      const dxp = dxs + (<usize>b << 2), sxp = sxs + (<usize>b << 2);
      if (ASC_FEATURE_SIMD && kn == Q4_BLOCK) quantizeBlockSimd(s, xq, dxp, sxp);
      else quantizeBlockScalar(s, kn, xq, dxp, sxp);
    }
  }
}

// f16 bits → f32, exactly (finite values: the packer's caller rejects inf/NaN scales): the
// bits moved into f32's fields read 2^-112 times the value (subnormals included), so one
// exact multiply by 2^112 finishes it.
// @ts-ignore: decorator
@inline function f16ToF32(h: u32): f32 {
  const bits = ((h & 0x7fff) << 13) | ((h & 0x8000) << 16);
  return reinterpret<f32>(bits) * reinterpret<f32>(0x77800000); // 2^112
}

// Lanes of sign-extended f16 bits (i32x4) → f32x4: shifting puts the exponent and mantissa in
// place and the sign, smeared over bits 28..31 by the sign extension, is cut to bit 31.
// @ts-ignore: decorator
@inline function f16x4ToF32(h: v128): v128 {
  const bits = v128.and(i32x4.shl(h, 13), i32x4.splat(0x8fffe000));
  return f32x4.mul(bits, f32x4.splat(reinterpret<f32>(0x77800000)));
}

// The 16 bytes of q are four columns' lanes of four k (pack_q4.ts), x four activations
// broadcast to every lane. Relaxed: the i16 dot (pmaddubsw) sums product pairs into i16 lanes
// [c0 c0 c1 c1 c2 c2 c3 c3], added up in i16 over the block (at most 8·2·15·127 = 30480: no
// overflow, and the 7-bit operand keeps the dot exact), widened once per block by `lanes`.
// simd: the i16 dots of the widened halves sum pairs into i32, so the low and high halves of
// q go to two accumulators, lo ([c0 c0 c1 c1]) and hi ([c2 c2 c3 c3]), added in `lanes`.
// @ts-ignore: decorator
@inline function dotLo(x16: v128, q: v128, acc: v128): v128 {
  return i32x4.add(acc, i32x4.dot_i16x8_s(x16, i16x8.extend_low_i8x16_u(q)));
}
// @ts-ignore: decorator
@inline function dotHi(x16: v128, q: v128, acc: v128): v128 {
  return i32x4.add(acc, i32x4.dot_i16x8_s(x16, i16x8.extend_high_i8x16_u(q)));
}
// @ts-ignore: decorator
@inline function lanes(lo: v128, hi: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.extadd_pairwise_i16x8_s(i16x8.add(lo, hi));
  return i32x4.add(i32x4.shuffle(lo, hi, 0, 2, 4, 6), i32x4.shuffle(lo, hi, 1, 3, 5, 7));
}

// One row × 8 columns: gemm_q4_1x8_relaxed / _simd.
function gemm_q4_1x8(
  nc: i32, nb: i32, x: usize, p: usize, c: usize, outMin: f32, outMax: f32,
): void {
  const dxs = x + <usize>nb * 32, sxs = dxs + <usize>nb * 4;
  const mask = i8x16.splat(15), zero = i32x4.splat(0);
  let y0 = f32x4.splat(0), y1 = f32x4.splat(0);
  let blk = p + 32;
  for (let b = 0; b < nb; b++, blk += Q4_BLOCK_BYTES) {
    const xb = x + <usize>b * 32;
    // Two accumulators per column group: relaxed, low and high nibbles (halving the add
    // chains); simd, the two halves of the lanes (see lanes()).
    let l0 = zero, h0 = zero, l1 = zero, h1 = zero;
    for (let t = 0; t < 4; t++) {
      const xl = v128.load32_splat(xb + (<usize>t << 2));
      const xh = v128.load32_splat(xb + (<usize>t << 2), 16);
      const w0 = v128.load(blk + (<usize>t << 4)), w1 = v128.load(blk + (<usize>t << 4), 64);
      const w0l = v128.and(w0, mask), w0h = i8x16.shr_u(w0, 4);
      const w1l = v128.and(w1, mask), w1h = i8x16.shr_u(w1, 4);
      if (ASC_FEATURE_RELAXED_SIMD) {
        l0 = i16x8.add(l0, i16x8.relaxed_dot_i8x16_i7x16_s(xl, w0l));
        h0 = i16x8.add(h0, i16x8.relaxed_dot_i8x16_i7x16_s(xh, w0h));
        l1 = i16x8.add(l1, i16x8.relaxed_dot_i8x16_i7x16_s(xl, w1l));
        h1 = i16x8.add(h1, i16x8.relaxed_dot_i8x16_i7x16_s(xh, w1h));
      } else {
        const xl16 = i16x8.extend_low_i8x16_s(xl), xh16 = i16x8.extend_low_i8x16_s(xh);
        l0 = dotLo(xh16, w0h, dotLo(xl16, w0l, l0));
        h0 = dotHi(xh16, w0h, dotHi(xl16, w0l, h0));
        l1 = dotLo(xh16, w1h, dotLo(xl16, w1l, l1));
        h1 = dotHi(xh16, w1h, dotHi(xl16, w1l, h1));
      }
    }
    const zp = i16x8.extend_low_i8x16_u(v128.load64_zero(blk + 144));
    const sx = v128.load32_splat(sxs + (<usize>b << 2));
    const c0 = i32x4.sub(lanes(l0, h0), i32x4.mul(i32x4.extend_low_i16x8_u(zp), sx));
    const c1 = i32x4.sub(lanes(l1, h1), i32x4.mul(i32x4.extend_high_i16x8_u(zp), sx));
    const d = v128.load(blk + 128);
    const dx = v128.load32_splat(dxs + (<usize>b << 2));
    const s0 = f32x4.mul(f16x4ToF32(i32x4.extend_low_i16x8_s(d)), dx);
    const s1 = f32x4.mul(f16x4ToF32(i32x4.extend_high_i16x8_s(d)), dx);
    y0 = f32x4.add(y0, f32x4.mul(f32x4.convert_i32x4_s(c0), s0));
    y1 = f32x4.add(y1, f32x4.mul(f32x4.convert_i32x4_s(c1), s1));
  }
  const lo = f32x4.splat(outMin), hi = f32x4.splat(outMax);
  y0 = f32x4.pmin(hi, f32x4.pmax(lo, f32x4.add(y0, v128.load(p))));
  y1 = f32x4.pmin(hi, f32x4.pmax(lo, f32x4.add(y1, v128.load(p, 16))));
  if (nc == NR_Q4) {
    v128.store(c, y0);
    v128.store(c, y1, 16);
  } else storeTail32(c, y0, y1, nc);
}

// Two rows (x, x + rb) × 8 columns: gemm_q4_2x8_relaxed / _simd.
function gemm_q4_2x8(
  nc: i32, nb: i32, x: usize, rb: usize, p: usize, c: usize, ldcBytes: usize, outMin: f32,
  outMax: f32,
): void {
  const dxs = x + <usize>nb * 32, sxs = dxs + <usize>nb * 4;
  const mask = i8x16.splat(15), zero = i32x4.splat(0);
  let y00 = f32x4.splat(0), y01 = f32x4.splat(0), y10 = f32x4.splat(0), y11 = f32x4.splat(0);
  let blk = p + 32;
  for (let b = 0; b < nb; b++, blk += Q4_BLOCK_BYTES) {
    const xb = x + <usize>b * 32;
    // Accumulators [row][column group] and, for simd, the lane half (see lanes()).
    let a00 = zero, a01 = zero, a10 = zero, a11 = zero;
    let b00 = zero, b01 = zero, b10 = zero, b11 = zero;
    for (let t = 0; t < 4; t++) {
      const o = <usize>t << 2;
      const w0 = v128.load(blk + (<usize>t << 4)), w1 = v128.load(blk + (<usize>t << 4), 64);
      const w0l = v128.and(w0, mask), w0h = i8x16.shr_u(w0, 4);
      const w1l = v128.and(w1, mask), w1h = i8x16.shr_u(w1, 4);
      const xl = v128.load32_splat(xb + o), xh = v128.load32_splat(xb + o, 16);
      const zl = v128.load32_splat(xb + rb + o), zh = v128.load32_splat(xb + rb + o, 16);
      if (ASC_FEATURE_RELAXED_SIMD) {
        a00 = i16x8.add(a00, i16x8.relaxed_dot_i8x16_i7x16_s(xl, w0l));
        b00 = i16x8.add(b00, i16x8.relaxed_dot_i8x16_i7x16_s(xh, w0h));
        a01 = i16x8.add(a01, i16x8.relaxed_dot_i8x16_i7x16_s(xl, w1l));
        b01 = i16x8.add(b01, i16x8.relaxed_dot_i8x16_i7x16_s(xh, w1h));
        a10 = i16x8.add(a10, i16x8.relaxed_dot_i8x16_i7x16_s(zl, w0l));
        b10 = i16x8.add(b10, i16x8.relaxed_dot_i8x16_i7x16_s(zh, w0h));
        a11 = i16x8.add(a11, i16x8.relaxed_dot_i8x16_i7x16_s(zl, w1l));
        b11 = i16x8.add(b11, i16x8.relaxed_dot_i8x16_i7x16_s(zh, w1h));
      } else {
        const xl16 = i16x8.extend_low_i8x16_s(xl), xh16 = i16x8.extend_low_i8x16_s(xh);
        a00 = dotLo(xh16, w0h, dotLo(xl16, w0l, a00));
        b00 = dotHi(xh16, w0h, dotHi(xl16, w0l, b00));
        a01 = dotLo(xh16, w1h, dotLo(xl16, w1l, a01));
        b01 = dotHi(xh16, w1h, dotHi(xl16, w1l, b01));
        const zl16 = i16x8.extend_low_i8x16_s(zl), zh16 = i16x8.extend_low_i8x16_s(zh);
        a10 = dotLo(zh16, w0h, dotLo(zl16, w0l, a10));
        b10 = dotHi(zh16, w0h, dotHi(zl16, w0l, b10));
        a11 = dotLo(zh16, w1h, dotLo(zl16, w1l, a11));
        b11 = dotHi(zh16, w1h, dotHi(zl16, w1l, b11));
      }
    }
    a00 = lanes(a00, b00);
    a01 = lanes(a01, b01);
    a10 = lanes(a10, b10);
    a11 = lanes(a11, b11);
    const zp = i16x8.extend_low_i8x16_u(v128.load64_zero(blk + 144));
    const zp0 = i32x4.extend_low_i16x8_u(zp), zp1 = i32x4.extend_high_i16x8_u(zp);
    const d = v128.load(blk + 128);
    const d0 = f16x4ToF32(i32x4.extend_low_i16x8_s(d)), d1 = f16x4ToF32(i32x4.extend_high_i16x8_s(d));
    const bo = <usize>b << 2;
    let sx = v128.load32_splat(sxs + bo), dx = v128.load32_splat(dxs + bo);
    y00 = f32x4.add(y00, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(a00, i32x4.mul(zp0, sx))), f32x4.mul(d0, dx)));
    y01 = f32x4.add(y01, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(a01, i32x4.mul(zp1, sx))), f32x4.mul(d1, dx)));
    sx = v128.load32_splat(sxs + rb + bo);
    dx = v128.load32_splat(dxs + rb + bo);
    y10 = f32x4.add(y10, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(a10, i32x4.mul(zp0, sx))), f32x4.mul(d0, dx)));
    y11 = f32x4.add(y11, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(a11, i32x4.mul(zp1, sx))), f32x4.mul(d1, dx)));
  }
  const lo = f32x4.splat(outMin), hi = f32x4.splat(outMax);
  const b0 = v128.load(p), b1 = v128.load(p, 16);
  y00 = f32x4.pmin(hi, f32x4.pmax(lo, f32x4.add(y00, b0)));
  y01 = f32x4.pmin(hi, f32x4.pmax(lo, f32x4.add(y01, b1)));
  y10 = f32x4.pmin(hi, f32x4.pmax(lo, f32x4.add(y10, b0)));
  y11 = f32x4.pmin(hi, f32x4.pmax(lo, f32x4.add(y11, b1)));
  if (nc == NR_Q4) {
    v128.store(c, y00);
    v128.store(c, y01, 16);
    v128.store(c + ldcBytes, y10);
    v128.store(c + ldcBytes, y11, 16);
  } else {
    storeTail32(c, y00, y01, nc);
    storeTail32(c + ldcBytes, y10, y11, nc);
  }
}

// The scalar build: one row × the panel's columns, one output at a time.
function gemm_q4_1x1_scalar(
  nc: i32, nb: i32, x: usize, p: usize, c: usize, outMin: f32, outMax: f32,
): void {
  const dxs = x + <usize>nb * 32, sxs = dxs + <usize>nb * 4;
  for (let jj = 0; jj < nc; jj++) {
    const q = p + 32 + <usize>((jj >> 2) * 64 + (jj & 3) * 4);
    let acc: f32 = 0;
    for (let b = 0; b < nb; b++) {
      const blk = q + <usize>b * Q4_BLOCK_BYTES, xb = x + <usize>b * 32;
      let s = 0;
      for (let t = 0; t < 4; t++) {
        for (let i = 0; i < 4; i++) {
          const v = <i32>load<u8>(blk + <usize>(t * 16 + i));
          s += (v & 15) * <i32>load<i8>(xb + <usize>(4 * t + i));
          s += (v >> 4) * <i32>load<i8>(xb + <usize>(16 + 4 * t + i));
        }
      }
      const base = p + 32 + <usize>b * Q4_BLOCK_BYTES;
      const zp = <i32>load<u8>(base + 144 + <usize>jj);
      const corr = s - zp * load<i32>(sxs + (<usize>b << 2));
      const scale = f16ToF32(load<u16>(base + 128 + (<usize>jj << 1))) * load<f32>(dxs + (<usize>b << 2));
      acc = acc + <f32>corr * scale;
    }
    const y = acc + load<f32>(p + (<usize>jj << 2));
    store<f32>(c + (<usize>jj << 2), min(max(y, outMin), outMax));
  }
}

/**
 * C[m][n] for M rows of q8_row activations (quantizeRowsQ8) and packed Q4 weights; ldc in
 * elements. Columns n0..n0+N of a wider weight are reached by offsetting `packed` by whole
 * panels (n0 a multiple of 8) and c by n0.
 */
export function gemmQ4(
  m: i32, n: i32, k: i32, x: usize, packed: usize, c: usize, ldc: i32, outMin: f32,
  outMax: f32,
): void {
  const nb = blocksQ4(k);
  const pb = panelBytesQ4(k);
  const rb = <usize>nb * 40, ldcBytes = <usize>ldc << 2;
  // Panels outside, rows inside: a panel's weights are read from memory once and stay in
  // cache for the other rows.
  for (let n0 = 0; n0 < n; n0 += NR_Q4) {
    const p = packed + <usize>(n0 / NR_Q4) * pb;
    const nc = min(NR_Q4, n - n0);
    const cc = c + (<usize>n0 << 2);
    let r = 0;
    if (ASC_FEATURE_SIMD) {
      for (; r + 2 <= m; r += 2) {
        gemm_q4_2x8(nc, nb, x + <usize>r * rb, rb, p, cc + <usize>r * ldcBytes, ldcBytes, outMin, outMax);
      }
      if (r < m) gemm_q4_1x8(nc, nb, x + <usize>r * rb, p, cc + <usize>r * ldcBytes, outMin, outMax);
    } else {
      for (; r < m; r++) {
        gemm_q4_1x1_scalar(nc, nb, x + <usize>r * rb, p, cc + <usize>r * ldcBytes, outMin, outMax);
      }
    }
  }
}
