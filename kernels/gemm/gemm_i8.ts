// int8 GEMM with QLinearMatMul / TFLite semantics:
//   acc[m][n] = bias[n] + Σ_k (A[m][k] − a_zero) · W[k][n]        (exact, i32)
// A is u8 or i8 with a per-tensor zero point; W is i8, symmetric per output channel, packed by
// packI8. The output stage (requant.ts) writes i32, u8/i8 (gemmlowp or fp32 requantization,
// clamped) or dequantized f32.
//
// Microkernels, 4 rows × 8 columns, 8 i32x4 accumulators:
//   gemm_i8_4x8c2_simd:    i32x4.dot_i16x8_s on A and W widened to i16, two k per lane.
//   gemm_i8_4x8c4_relaxed<u16>: i32x4.relaxed_dot_i8x16_i7x16_add_s, four k per lane, on the split
//                          7-bit weights (see pack_i8.ts); A is fed as i8 (u8 input XOR 0x80,
//                          with the zero point moved by 128 to match).
//   gemm_i8_4x8c4_relaxed<u8>: the same tile on 7-bit weights (all in [-64, 63], stored once
//                          as w + 64): one relaxed dot per 16 multiply-adds, −64·Σx correction.
//   gemm_i8_1x8c2_simd / gemm_i8_1x8c4_relaxed / gemm_i7_1x8c4_relaxed: a lone row (GEMV, and
//                          the last row of an odd M).
//   gemm_i8_1x8_scalar:    the scalar build.
// K must be ≤ 65536 so no i32 accumulator can overflow (|x·w| ≤ 255·127 per term); the
// TypeScript wrapper enforces it.
import { HEADER_I8, kPadI8, NR_I8, panelBytesI8, W7_OFFSET } from "../pack/pack_i8";
import {
  fp32q1,
  fp32q4,
  gemmlowp1,
  gemmlowp4,
  MODE_F32,
  MODE_FP32_I8,
  MODE_GEMMLOWP_I8,
  MODE_I32,
  OUT_HEADER,
  outBytes,
  scaleAt,
} from "./requant";
import { storeBytes8, storeTail32 } from "./store";

const MR: i32 = 4;
const L2_BLOCK_BYTES: i32 = 256 * 1024;

// Writes the first nc columns of one output row (lanes n0..n0+7) in the requested mode.
// @ts-ignore: decorator
@inline export function storeRow(
  c: usize, lo: v128, hi: v128, nc: i32, n0: usize, mode: i32, pp: usize, np4: usize,
): void {
  if (mode == MODE_I32) {
    if (nc == 8) {
      v128.store(c, lo);
      v128.store(c, hi, 16);
    } else storeTail32(c, lo, hi, nc);
    return;
  }
  if (mode == MODE_F32) {
    const fmin = v128.load32_splat(pp, 16);
    const fmax = v128.load32_splat(pp, 20);
    const s = scaleAt(pp, n0);
    lo = f32x4.pmin(fmax, f32x4.pmax(fmin, f32x4.mul(f32x4.convert_i32x4_s(lo), v128.load(s))));
    hi = f32x4.pmin(fmax, f32x4.pmax(fmin, f32x4.mul(f32x4.convert_i32x4_s(hi), v128.load(s, 16))));
    if (nc == 8) {
      v128.store(c, lo);
      v128.store(c, hi, 16);
    } else storeTail32(c, lo, hi, nc);
    return;
  }
  const zp = load<i32>(pp);
  const vzp = i32x4.splat(zp);
  const qmin = i32x4.splat(load<i32>(pp, 4));
  const qmax = i32x4.splat(load<i32>(pp, 8));
  if (mode <= MODE_GEMMLOWP_I8) {
    lo = i32x4.add(gemmlowp4(lo, pp, np4, n0), vzp);
    hi = i32x4.add(gemmlowp4(hi, pp, np4, n0 + 4), vzp);
  } else {
    // Clamp in float first (as ORT does), so a huge product cannot wrap when converted.
    const flo = f32x4.splat(<f32>(load<i32>(pp, 4) - zp));
    const fhi = f32x4.splat(<f32>(load<i32>(pp, 8) - zp));
    const s = scaleAt(pp, n0);
    lo = i32x4.add(fp32q4(lo, v128.load(s), flo, fhi), vzp);
    hi = i32x4.add(fp32q4(hi, v128.load(s, 16), flo, fhi), vzp);
  }
  lo = i32x4.min_s(qmax, i32x4.max_s(qmin, lo));
  hi = i32x4.min_s(qmax, i32x4.max_s(qmin, hi));
  const h = i16x8.narrow_i32x4_s(lo, hi);
  const b = mode == MODE_GEMMLOWP_I8 || mode == MODE_FP32_I8
    ? i8x16.narrow_i16x8_s(h, h)
    : i8x16.narrow_i16x8_u(h, h);
  storeBytes8(c, b, nc);
}

// One row (GEMV, M = 1) on the c2 layout.
function gemm_i8_1x8c2_simd<TA>(
  nc: i32, kp: i32, a: usize, za: i32, w: usize,
  c: usize, mode: i32, pp: usize, np4: usize, n0: usize,
): void {
  const vza = i32x4.splat(za);
  let acc0 = i32x4.sub(v128.load(w), i32x4.mul(vza, v128.load(w, 32)));
  let acc1 = i32x4.sub(v128.load(w, 16), i32x4.mul(vza, v128.load(w, 48)));
  let acc2 = i32x4.splat(0), acc3 = i32x4.splat(0);
  w += HEADER_I8;
  for (let k = 0; k < kp; k += 8) {
    const va = isSigned<TA>() ? v128.load8x8_s(a) : v128.load8x8_u(a);
    a += 8;
    let wb = v128.load(w);
    let s = i32x4.shuffle(va, va, 0, 0, 0, 0);
    acc0 = i32x4.add(acc0, i32x4.dot_i16x8_s(s, i16x8.extend_low_i8x16_s(wb)));
    acc1 = i32x4.add(acc1, i32x4.dot_i16x8_s(s, i16x8.extend_high_i8x16_s(wb)));
    wb = v128.load(w, 16);
    s = i32x4.shuffle(va, va, 1, 1, 1, 1);
    acc2 = i32x4.add(acc2, i32x4.dot_i16x8_s(s, i16x8.extend_low_i8x16_s(wb)));
    acc3 = i32x4.add(acc3, i32x4.dot_i16x8_s(s, i16x8.extend_high_i8x16_s(wb)));
    wb = v128.load(w, 32);
    s = i32x4.shuffle(va, va, 2, 2, 2, 2);
    acc0 = i32x4.add(acc0, i32x4.dot_i16x8_s(s, i16x8.extend_low_i8x16_s(wb)));
    acc1 = i32x4.add(acc1, i32x4.dot_i16x8_s(s, i16x8.extend_high_i8x16_s(wb)));
    wb = v128.load(w, 48);
    s = i32x4.shuffle(va, va, 3, 3, 3, 3);
    acc2 = i32x4.add(acc2, i32x4.dot_i16x8_s(s, i16x8.extend_low_i8x16_s(wb)));
    acc3 = i32x4.add(acc3, i32x4.dot_i16x8_s(s, i16x8.extend_high_i8x16_s(wb)));
    w += 64;
  }
  storeRow(c, i32x4.add(acc0, acc2), i32x4.add(acc1, acc3), nc, n0, mode, pp, np4);
}

function gemm_i8_4x8c2_simd<TA>(
  mr: i32, nc: i32, kp: i32, a: usize, lda: usize, za: i32, w: usize,
  c: usize, ldc: usize, mode: i32, pp: usize, np4: usize, n0: usize,
): void {
  let a0 = a;
  let c0 = c;
  let a1 = a0 + lda;
  let c1 = c0 + ldc;
  if (mr < 2) {
    a1 = a0;
    c1 = c0;
  }
  let a2 = a1 + lda;
  let c2 = c1 + ldc;
  if (mr <= 2) {
    a2 = a1;
    c2 = c1;
  }
  let a3 = a2 + lda;
  let c3 = c2 + ldc;
  if (mr != 4) {
    a3 = a2;
    c3 = c2;
  }
  const vza = i32x4.splat(za);
  let acc00 = i32x4.sub(v128.load(w), i32x4.mul(vza, v128.load(w, 32)));
  let acc01 = i32x4.sub(v128.load(w, 16), i32x4.mul(vza, v128.load(w, 48)));
  let acc10 = acc00, acc11 = acc01, acc20 = acc00, acc21 = acc01, acc30 = acc00, acc31 = acc01;
  w += HEADER_I8;
  for (let k = 0; k < kp; k += 8) {
    let va0: v128, va1: v128, va2: v128, va3: v128;
    if (isSigned<TA>()) {
      va0 = v128.load8x8_s(a0);
      va1 = v128.load8x8_s(a1);
      va2 = v128.load8x8_s(a2);
      va3 = v128.load8x8_s(a3);
    } else {
      va0 = v128.load8x8_u(a0);
      va1 = v128.load8x8_u(a1);
      va2 = v128.load8x8_u(a2);
      va3 = v128.load8x8_u(a3);
    }
    a0 += 8;
    a1 += 8;
    a2 += 8;
    a3 += 8;
    // k pair 0..3 of these 8: lane p of va (as i32) holds (a[2p], a[2p+1]).
    let wb = v128.load(w);
    let bl = i16x8.extend_low_i8x16_s(wb);
    let bh = i16x8.extend_high_i8x16_s(wb);
    let s = i32x4.shuffle(va0, va0, 0, 0, 0, 0);
    acc00 = i32x4.add(acc00, i32x4.dot_i16x8_s(s, bl));
    acc01 = i32x4.add(acc01, i32x4.dot_i16x8_s(s, bh));
    s = i32x4.shuffle(va1, va1, 0, 0, 0, 0);
    acc10 = i32x4.add(acc10, i32x4.dot_i16x8_s(s, bl));
    acc11 = i32x4.add(acc11, i32x4.dot_i16x8_s(s, bh));
    s = i32x4.shuffle(va2, va2, 0, 0, 0, 0);
    acc20 = i32x4.add(acc20, i32x4.dot_i16x8_s(s, bl));
    acc21 = i32x4.add(acc21, i32x4.dot_i16x8_s(s, bh));
    s = i32x4.shuffle(va3, va3, 0, 0, 0, 0);
    acc30 = i32x4.add(acc30, i32x4.dot_i16x8_s(s, bl));
    acc31 = i32x4.add(acc31, i32x4.dot_i16x8_s(s, bh));

    wb = v128.load(w, 16);
    bl = i16x8.extend_low_i8x16_s(wb);
    bh = i16x8.extend_high_i8x16_s(wb);
    s = i32x4.shuffle(va0, va0, 1, 1, 1, 1);
    acc00 = i32x4.add(acc00, i32x4.dot_i16x8_s(s, bl));
    acc01 = i32x4.add(acc01, i32x4.dot_i16x8_s(s, bh));
    s = i32x4.shuffle(va1, va1, 1, 1, 1, 1);
    acc10 = i32x4.add(acc10, i32x4.dot_i16x8_s(s, bl));
    acc11 = i32x4.add(acc11, i32x4.dot_i16x8_s(s, bh));
    s = i32x4.shuffle(va2, va2, 1, 1, 1, 1);
    acc20 = i32x4.add(acc20, i32x4.dot_i16x8_s(s, bl));
    acc21 = i32x4.add(acc21, i32x4.dot_i16x8_s(s, bh));
    s = i32x4.shuffle(va3, va3, 1, 1, 1, 1);
    acc30 = i32x4.add(acc30, i32x4.dot_i16x8_s(s, bl));
    acc31 = i32x4.add(acc31, i32x4.dot_i16x8_s(s, bh));

    wb = v128.load(w, 32);
    bl = i16x8.extend_low_i8x16_s(wb);
    bh = i16x8.extend_high_i8x16_s(wb);
    s = i32x4.shuffle(va0, va0, 2, 2, 2, 2);
    acc00 = i32x4.add(acc00, i32x4.dot_i16x8_s(s, bl));
    acc01 = i32x4.add(acc01, i32x4.dot_i16x8_s(s, bh));
    s = i32x4.shuffle(va1, va1, 2, 2, 2, 2);
    acc10 = i32x4.add(acc10, i32x4.dot_i16x8_s(s, bl));
    acc11 = i32x4.add(acc11, i32x4.dot_i16x8_s(s, bh));
    s = i32x4.shuffle(va2, va2, 2, 2, 2, 2);
    acc20 = i32x4.add(acc20, i32x4.dot_i16x8_s(s, bl));
    acc21 = i32x4.add(acc21, i32x4.dot_i16x8_s(s, bh));
    s = i32x4.shuffle(va3, va3, 2, 2, 2, 2);
    acc30 = i32x4.add(acc30, i32x4.dot_i16x8_s(s, bl));
    acc31 = i32x4.add(acc31, i32x4.dot_i16x8_s(s, bh));

    wb = v128.load(w, 48);
    bl = i16x8.extend_low_i8x16_s(wb);
    bh = i16x8.extend_high_i8x16_s(wb);
    s = i32x4.shuffle(va0, va0, 3, 3, 3, 3);
    acc00 = i32x4.add(acc00, i32x4.dot_i16x8_s(s, bl));
    acc01 = i32x4.add(acc01, i32x4.dot_i16x8_s(s, bh));
    s = i32x4.shuffle(va1, va1, 3, 3, 3, 3);
    acc10 = i32x4.add(acc10, i32x4.dot_i16x8_s(s, bl));
    acc11 = i32x4.add(acc11, i32x4.dot_i16x8_s(s, bh));
    s = i32x4.shuffle(va2, va2, 3, 3, 3, 3);
    acc20 = i32x4.add(acc20, i32x4.dot_i16x8_s(s, bl));
    acc21 = i32x4.add(acc21, i32x4.dot_i16x8_s(s, bh));
    s = i32x4.shuffle(va3, va3, 3, 3, 3, 3);
    acc30 = i32x4.add(acc30, i32x4.dot_i16x8_s(s, bl));
    acc31 = i32x4.add(acc31, i32x4.dot_i16x8_s(s, bh));
    w += 64;
  }
  storeRow(c3, acc30, acc31, nc, n0, mode, pp, np4);
  storeRow(c2, acc20, acc21, nc, n0, mode, pp, np4);
  storeRow(c1, acc10, acc11, nc, n0, mode, pp, np4);
  storeRow(c0, acc00, acc01, nc, n0, mode, pp, np4);
}

// rs0..rs3: Σ_k x over the real K of each row, x the activation as i8 (see pack_i8.ts).
// W picks the weight layout at compile time: u16 = the split halves u1 + u2 = w + 127 (two
// dots per 16 multiply-adds), u8 = 7-bit weights stored once as u = w + 64 (one dot). (A 6×8
// tile of the 7-bit kernel, 15 live vectors, measured 1.6× slower: V8 spills it.)
function gemm_i8_4x8c4_relaxed<W>(
  mr: i32, nc: i32, kp: i32, a: usize, lda: usize, flip: v128, za: i32,
  rs0: i32, rs1: i32, rs2: i32, rs3: i32, w: usize,
  c: usize, ldc: usize, mode: i32, pp: usize, np4: usize, n0: usize,
): void {
  const split = sizeof<W>() == 2;
  const off = split ? 127 : W7_OFFSET;
  let a0 = a;
  let c0 = c;
  let a1 = a0 + lda;
  let c1 = c0 + ldc;
  if (mr < 2) {
    a1 = a0;
    c1 = c0;
  }
  let a2 = a1 + lda;
  let c2 = c1 + ldc;
  if (mr <= 2) {
    a2 = a1;
    c2 = c1;
  }
  let a3 = a2 + lda;
  let c3 = c2 + ldc;
  if (mr != 4) {
    a3 = a2;
    c3 = c2;
  }
  const vza = i32x4.splat(za);
  const base0 = i32x4.sub(v128.load(w), i32x4.mul(vza, v128.load(w, 32)));
  const base1 = i32x4.sub(v128.load(w, 16), i32x4.mul(vza, v128.load(w, 48)));
  let r = i32x4.splat(off * rs0);
  let acc00 = i32x4.sub(base0, r);
  let acc01 = i32x4.sub(base1, r);
  r = i32x4.splat(off * rs1);
  let acc10 = i32x4.sub(base0, r);
  let acc11 = i32x4.sub(base1, r);
  r = i32x4.splat(off * rs2);
  let acc20 = i32x4.sub(base0, r);
  let acc21 = i32x4.sub(base1, r);
  r = i32x4.splat(off * rs3);
  let acc30 = i32x4.sub(base0, r);
  let acc31 = i32x4.sub(base1, r);
  w += HEADER_I8;
  for (let k = 0; k < kp; k += 4) {
    const u1l = v128.load(w);
    const u1h = v128.load(w, 16);
    // The second halves exist only in the split layout (dead code for 7-bit weights).
    const u2l = split ? v128.load(w, 32) : u1l;
    const u2h = split ? v128.load(w, 48) : u1h;
    let x = v128.xor(v128.load32_splat(a0), flip);
    acc00 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, u1l, acc00);
    acc01 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, u1h, acc01);
    if (split) {
      acc00 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, u2l, acc00);
      acc01 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, u2h, acc01);
    }
    x = v128.xor(v128.load32_splat(a1), flip);
    acc10 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, u1l, acc10);
    acc11 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, u1h, acc11);
    if (split) {
      acc10 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, u2l, acc10);
      acc11 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, u2h, acc11);
    }
    x = v128.xor(v128.load32_splat(a2), flip);
    acc20 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, u1l, acc20);
    acc21 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, u1h, acc21);
    if (split) {
      acc20 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, u2l, acc20);
      acc21 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, u2h, acc21);
    }
    x = v128.xor(v128.load32_splat(a3), flip);
    acc30 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, u1l, acc30);
    acc31 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, u1h, acc31);
    if (split) {
      acc30 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, u2l, acc30);
      acc31 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, u2h, acc31);
    }
    a0 += 4;
    a1 += 4;
    a2 += 4;
    a3 += 4;
    w += split ? 64 : 32;
  }
  storeRow(c3, acc30, acc31, nc, n0, mode, pp, np4);
  storeRow(c2, acc20, acc21, nc, n0, mode, pp, np4);
  storeRow(c1, acc10, acc11, nc, n0, mode, pp, np4);
  storeRow(c0, acc00, acc01, nc, n0, mode, pp, np4);
}

// One row (GEMV, M = 1): the 4-row tile would compute the same row four times.
function gemm_i8_1x8c4_relaxed(
  nc: i32, kp: i32, a: usize, flip: v128, za: i32, rs0: i32, w: usize,
  c: usize, mode: i32, pp: usize, np4: usize, n0: usize,
): void {
  const vza = i32x4.splat(za);
  const r = i32x4.splat(127 * rs0);
  let acc0 = i32x4.sub(i32x4.sub(v128.load(w), i32x4.mul(vza, v128.load(w, 32))), r);
  let acc1 = i32x4.sub(i32x4.sub(v128.load(w, 16), i32x4.mul(vza, v128.load(w, 48))), r);
  // A second pair of accumulators breaks the dependency chain of the single row.
  let acc2 = i32x4.splat(0), acc3 = i32x4.splat(0);
  w += HEADER_I8;
  for (let k = 0; k < kp; k += 4) {
    const x = v128.xor(v128.load32_splat(a), flip);
    acc0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, v128.load(w), acc0);
    acc1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, v128.load(w, 16), acc1);
    acc2 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, v128.load(w, 32), acc2);
    acc3 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, v128.load(w, 48), acc3);
    a += 4;
    w += 64;
  }
  storeRow(c, i32x4.add(acc0, acc2), i32x4.add(acc1, acc3), nc, n0, mode, pp, np4);
}

// 7-bit weights, one row: Σ x·w = Σ x·u − 64·Σ x (pack_i8.ts).
function gemm_i7_1x8c4_relaxed(
  nc: i32, kp: i32, a: usize, flip: v128, za: i32, rs0: i32, w: usize,
  c: usize, mode: i32, pp: usize, np4: usize, n0: usize,
): void {
  const vza = i32x4.splat(za);
  const r = i32x4.splat(W7_OFFSET * rs0);
  let acc0 = i32x4.sub(i32x4.sub(v128.load(w), i32x4.mul(vza, v128.load(w, 32))), r);
  let acc1 = i32x4.sub(i32x4.sub(v128.load(w, 16), i32x4.mul(vza, v128.load(w, 48))), r);
  let acc2 = i32x4.splat(0), acc3 = i32x4.splat(0);
  w += HEADER_I8;
  let k = 0;
  // Two k-quads per step on separate accumulators, so the single row's chain is not serial.
  for (; k + 8 <= kp; k += 8) {
    const x0 = v128.xor(v128.load32_splat(a), flip);
    const x1 = v128.xor(v128.load32_splat(a, 4), flip);
    acc0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x0, v128.load(w), acc0);
    acc1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x0, v128.load(w, 16), acc1);
    acc2 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x1, v128.load(w, 32), acc2);
    acc3 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x1, v128.load(w, 48), acc3);
    a += 8;
    w += 64;
  }
  if (k < kp) {
    const x0 = v128.xor(v128.load32_splat(a), flip);
    acc0 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x0, v128.load(w), acc0);
    acc1 = i32x4.relaxed_dot_i8x16_i7x16_add_s(x0, v128.load(w, 16), acc1);
  }
  storeRow(c, i32x4.add(acc0, acc2), i32x4.add(acc1, acc3), nc, n0, mode, pp, np4);
}

// Σ_k x over one row, x read as i8 (u8 input flipped: x = a − 128).
function rowSumI8(a: usize, k: i32, signed: bool): i32 {
  let acc = i32x4.splat(0);
  let i = 0;
  if (signed) {
    for (; i + 16 <= k; i += 16) {
      acc = i32x4.add(acc, i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(v128.load(a + i))));
    }
  } else {
    for (; i + 16 <= k; i += 16) {
      acc = i32x4.add(acc, i32x4.extadd_pairwise_i16x8_u(i16x8.extadd_pairwise_i8x16_u(v128.load(a + i))));
    }
  }
  let s = i32x4.extract_lane(acc, 0) + i32x4.extract_lane(acc, 1) +
    i32x4.extract_lane(acc, 2) + i32x4.extract_lane(acc, 3);
  for (; i < k; i++) s += signed ? <i32>load<i8>(a + i) : <i32>load<u8>(a + i);
  return signed ? s : s - 128 * k;
}

function gemm_i8_1x8_scalar(
  nc: i32, k: i32, a: usize, signed: bool, za: i32, w: usize,
  c: usize, mode: i32, pp: usize, np4: usize, n0: usize,
): void {
  let c0 = load<i32>(w) - za * load<i32>(w, 32);
  let c1 = load<i32>(w, 4) - za * load<i32>(w, 36);
  let c2 = load<i32>(w, 8) - za * load<i32>(w, 40);
  let c3 = load<i32>(w, 12) - za * load<i32>(w, 44);
  let c4 = load<i32>(w, 16) - za * load<i32>(w, 48);
  let c5 = load<i32>(w, 20) - za * load<i32>(w, 52);
  let c6 = load<i32>(w, 24) - za * load<i32>(w, 56);
  let c7 = load<i32>(w, 28) - za * load<i32>(w, 60);
  w += HEADER_I8;
  for (let kk = 0; kk < k; kk++) {
    const x = signed ? <i32>load<i8>(a + kk) : <i32>load<u8>(a + kk);
    const p = w + ((<usize>kk >> 1) << 4) + (<usize>kk & 1);
    c0 += x * <i32>load<i8>(p);
    c1 += x * <i32>load<i8>(p, 2);
    c2 += x * <i32>load<i8>(p, 4);
    c3 += x * <i32>load<i8>(p, 6);
    c4 += x * <i32>load<i8>(p, 8);
    c5 += x * <i32>load<i8>(p, 10);
    c6 += x * <i32>load<i8>(p, 12);
    c7 += x * <i32>load<i8>(p, 14);
  }
  storeScalar(c, 0, c0, n0, mode, pp, np4);
  if (nc > 1) storeScalar(c, 1, c1, n0 + 1, mode, pp, np4);
  if (nc > 2) storeScalar(c, 2, c2, n0 + 2, mode, pp, np4);
  if (nc > 3) storeScalar(c, 3, c3, n0 + 3, mode, pp, np4);
  if (nc > 4) storeScalar(c, 4, c4, n0 + 4, mode, pp, np4);
  if (nc > 5) storeScalar(c, 5, c5, n0 + 5, mode, pp, np4);
  if (nc > 6) storeScalar(c, 6, c6, n0 + 6, mode, pp, np4);
  if (nc > 7) storeScalar(c, 7, c7, n0 + 7, mode, pp, np4);
}

// @ts-ignore: decorator
@inline export function storeScalar(
  c: usize, j: usize, acc: i32, n: usize, mode: i32, pp: usize, np4: usize,
): void {
  if (mode == MODE_I32) {
    store<i32>(c + (j << 2), acc);
    return;
  }
  if (mode == MODE_F32) {
    const v = <f32>acc * load<f32>(scaleAt(pp, n));
    store<f32>(c + (j << 2), min(max(v, load<f32>(pp, 16)), load<f32>(pp, 20)));
    return;
  }
  const zp = load<i32>(pp);
  const qmin = load<i32>(pp, 4);
  const qmax = load<i32>(pp, 8);
  let q: i32;
  if (mode <= MODE_GEMMLOWP_I8) q = gemmlowp1(acc, pp, np4, n) + zp;
  else q = fp32q1(acc, load<f32>(scaleAt(pp, n)), <f32>(qmin - zp), <f32>(qmax - zp)) + zp;
  store<u8>(c + j, <u8>min(max(q, qmin), qmax));
}

// Driver; lda/ldc in elements (ldc of the output type). The output stage's per-channel arrays
// hold `chTotal` channels (rounded up to 8) of which these N start at `chOff`: a grouped
// convolution runs one GEMM per group against one shared output stage (c points at the
// group's first output column).
// `w7`: the weights were packed as 7-bit (packI8's w7; only the relaxed build differs).
export function gemmI8(
  m: i32, n: i32, k: i32, a: usize, lda: i32, aSigned: bool, aZero: i32, w: usize,
  c: usize, ldc: i32, mode: i32, pp: usize, chOff: i32 = 0, chTotal: i32 = 0, w7: bool = false,
): void {
  const kp = kPadI8(k);
  const panelBytes = panelBytesI8(k, w7);
  const np4 = <usize>((max(n, chTotal) + NR_I8 - 1) & ~(NR_I8 - 1)) << 2;
  const ldcB = <usize>ldc * outBytes(mode);
  const ob = outBytes(mode);
  let nb = (L2_BLOCK_BYTES / <i32>max<usize>(1, panelBytes)) * NR_I8;
  if (nb < NR_I8) nb = NR_I8;
  // Relaxed: A enters as i8; u8 input is flipped (x − 128) and its zero point moved with it.
  const zaFlipped = aSigned ? aZero : aZero - 128;
  for (let n0 = 0; n0 < n; n0 += nb) {
    const n1 = min(n, n0 + nb);
    for (let m0 = 0; m0 < m; m0 += MR) {
      const mr = min(MR, m - m0);
      const ar = a + <usize>m0 * <usize>lda;
      const cr = c + <usize>m0 * ldcB;
      let rs0 = 0, rs1 = 0, rs2 = 0, rs3 = 0;
      if (ASC_FEATURE_RELAXED_SIMD) {
        rs0 = rowSumI8(ar, k, aSigned);
        rs1 = mr > 1 ? rowSumI8(ar + <usize>lda, k, aSigned) : rs0;
        rs2 = mr > 2 ? rowSumI8(ar + 2 * <usize>lda, k, aSigned) : rs1;
        rs3 = mr > 3 ? rowSumI8(ar + 3 * <usize>lda, k, aSigned) : rs2;
      }
      for (let j = n0; j < n1; j += NR_I8) {
        const wp = w + <usize>(j / NR_I8) * panelBytes;
        const cp = cr + <usize>j * ob;
        const nc = min(NR_I8, n1 - j);
        if (ASC_FEATURE_RELAXED_SIMD && w7 && mr == 1) {
          gemm_i7_1x8c4_relaxed(
            nc, kp, ar, i8x16.splat(aSigned ? 0 : -128), zaFlipped, rs0, wp, cp, mode, pp, np4,
            <usize>(j + chOff),
          );
        } else if (ASC_FEATURE_RELAXED_SIMD && w7) {
          gemm_i8_4x8c4_relaxed<u8>(
            mr, nc, kp, ar, <usize>lda, i8x16.splat(aSigned ? 0 : -128), zaFlipped, rs0, rs1, rs2, rs3, wp,
            cp, ldcB, mode, pp, np4, <usize>(j + chOff),
          );
        } else if (ASC_FEATURE_RELAXED_SIMD && mr == 1) {
          gemm_i8_1x8c4_relaxed(
            nc, kp, ar, i8x16.splat(aSigned ? 0 : -128), zaFlipped, rs0, wp, cp, mode, pp, np4,
            <usize>(j + chOff),
          );
        } else if (ASC_FEATURE_RELAXED_SIMD) {
          gemm_i8_4x8c4_relaxed<u16>(
            mr, nc, kp, ar, <usize>lda, i8x16.splat(aSigned ? 0 : -128), zaFlipped, rs0, rs1, rs2, rs3, wp,
            cp, ldcB, mode, pp, np4, <usize>(j + chOff),
          );
        } else if (ASC_FEATURE_SIMD && mr == 1) {
          if (aSigned) {
            gemm_i8_1x8c2_simd<i8>(nc, kp, ar, aZero, wp, cp, mode, pp, np4, <usize>(j + chOff));
          } else {
            gemm_i8_1x8c2_simd<u8>(nc, kp, ar, aZero, wp, cp, mode, pp, np4, <usize>(j + chOff));
          }
        } else if (ASC_FEATURE_SIMD) {
          if (aSigned) {
            gemm_i8_4x8c2_simd<i8>(
              mr, nc, kp, ar, <usize>lda, aZero, wp, cp, ldcB, mode, pp, np4, <usize>(j + chOff),
            );
          } else {
            gemm_i8_4x8c2_simd<u8>(
              mr, nc, kp, ar, <usize>lda, aZero, wp, cp, ldcB, mode, pp, np4, <usize>(j + chOff),
            );
          }
        } else {
          for (let r = 0; r < mr; r++) {
            gemm_i8_1x8_scalar(
              nc, k, ar + <usize>r * <usize>lda, aSigned, aZero, wp, cp + <usize>r * ldcB,
              mode, pp, np4, <usize>(j + chOff),
            );
          }
        }
      }
    }
  }
}

