// Depthwise convolution, int8, NHWC (channel multiplier 1), QLinearConv / ConvInteger semantics:
//   acc[n][oy][ox][c] = bias[c] + Σ_{taps in bounds} (x[n][iy][ix][c] − x_zero) · w[c][ky][kx]
// (padding equals the zero point, so padded taps add nothing), then the int8 GEMM's output
// stage (params of requant.ts: i32, gemmlowp/fp32 requantization to u8/i8 with clamp, or
// dequantized f32). x is u8 or i8 with a per-tensor zero point; w is i8 in [-127, 127].
//
// Arithmetic (the same code in the simd and relaxed builds, exact everywhere): activations are
// widened to i16 (load8x8), two taps of 8 channels are interleaved lane by lane ("zip"), and
// i32x4.dot_i16x8_s against tap-pair-interleaved i16 weights adds both taps of 4 channels in
// one instruction. Products fit easily (|x·w| ≤ 255·127) and the i32 sums are exact, so every
// build returns the same accumulators bit for bit. The relaxed build keeps this scheme:
// relaxed_dot_i8x16_i7x16 would need a 4-tap byte transpose of the activations plus the 7-bit
// weight split and a row-sum correction, which cost more than they save here.
//
// No kernel subtracts the zero point per tap: accumulators start from bias − x_zero·Σw and
// multiply raw activations; taps outside the input read x_zero itself (the padding value), which
// that base cancels exactly. Output pixels go 4 at a time × 8 channels (8 i32x4 accumulators):
//   3×3, stride 1 or 2, column dilation 1: whole rows; a column pair zip(col j, col j+1) is
//     shared by two neighbouring pixels, using the row-paired weight copy of pack_dw.ts;
//   any other window: taps in the packed pair order, offsets walked with a counter.
// Blocks whose window crosses an edge run a "checked" copy of the same kernel (the zero point
// for padded taps); all others run with no bounds tests. A short last block is shifted left
// (3×3) or aliases its missing pixels to the last one (generic): no remainder code.
// Channel tails: the last group loads 8 bytes per pixel (up to 7 past its end, as the ABI
// allows at the end of the input) and stores only its valid channels.
import { DW_HEADER_I8, DW_ROWS3_OFF_I8, dwGroupBytesI8 } from "../pack/pack_dw";
import {
  fp32q1,
  gemmlowp1,
  MODE_F32,
  MODE_FP32_I8,
  MODE_FP32_U8,
  MODE_GEMMLOWP_I8,
  MODE_I32,
  OUT_HEADER,
  outBytes,
  scaleAt,
} from "../gemm/requant";
import { storeBytes8, storeTail32 } from "../gemm/store";

// @ts-ignore: decorator
@inline function P(dp: usize, i: i32): i32 {
  return load<i32>(dp + (<usize>i << 2));
}

// @ts-ignore: decorator
@inline function ceilDiv(a: i32, b: i32): i32 {
  return (a + b - 1) / b;
}
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

// Output stage of one pixel's 8 channels n0..n0+7 (lo = 0-3, hi = 4-7), the first nc stored.
// Same params and results as gemm_i8.ts storeRow, reorganized for a kernel that spends only
// KH·KW taps per output: the per-layer constants come in registers (ost, below) instead of
// being reloaded per tile, fp32 rounding uses the add-magic trick instead of nearest +
// trunc_sat (which V8 expands to a long sequence on x64), and gemmlowp takes i64 high halves
// with shuffles instead of emulated i64 arithmetic shifts. The tests check every mode
// against the TFLite/ONNX references bit for bit.
//   ost0: i32 zero point splat (fp32: MAGIC_BITS − zero point); ost1/ost2: i32 qmin/qmax
//   (gemmlowp), or f32 clamp bounds (fp32: qmin − zp, qmax − zp; f32: fmin, fmax).
// @ts-ignore: decorator
@inline function outConsts(mode: i32, pp: usize, which: i32): v128 {
  const zp = load<i32>(pp);
  // fp32 modes fold the zero point into the magic-number rounding (fp32Round4)
  if (which == 0) return i32x4.splat(mode == MODE_FP32_U8 || mode == MODE_FP32_I8 ? MAGIC_BITS - zp : zp);
  if (mode == MODE_F32) return v128.load32_splat(pp + (which == 1 ? 16 : 20));
  const q = load<i32>(pp + (which == 1 ? 4 : 8));
  if (mode <= MODE_GEMMLOWP_I8) return i32x4.splat(q);
  return f32x4.splat(<f32>(q - zp));
}

// 1.5·2^23: adding it to |v| < 2^22 rounds v half-to-even into the low mantissa bits.
const MAGIC: f32 = 12582912.0;
const MAGIC_BITS: i32 = 0x4b400000;

// round-half-even(clamp(acc·scale, lo, hi)) + zp for integer bounds |lo|, |hi| ≤ 255 (fp32q4
// plus the zero point); mzp = MAGIC_BITS − zp.
// @ts-ignore: decorator
@inline function fp32Round4(acc: v128, scale: v128, lo: v128, hi: v128, mzp: v128): v128 {
  const v = f32x4.pmin(hi, f32x4.pmax(lo, f32x4.mul(f32x4.convert_i32x4_s(acc), scale)));
  return i32x4.sub(f32x4.add(v, f32x4.splat(MAGIC)), mzp);
}

// gemmlowp4 of requant.ts with the same arithmetic: (x·m + 2^30) >> 31 is the high half of
// (x·m + 2^30) << 1, and t >> r the high half of t·2^(32−r).
// @ts-ignore: decorator
@inline function gemmlowp4Dw(acc: v128, pp: usize, np4: usize, n: usize): v128 {
  const ch = pp + OUT_HEADER + (n << 2);
  const mult = v128.load(ch);
  const x = i32x4.mul(acc, v128.load(ch + np4));
  const nudge = i64x2.splat(1 << 30);
  let lo = i64x2.shl(i64x2.add(i64x2.extmul_low_i32x4_s(x, mult), nudge), 1);
  let hi = i64x2.shl(i64x2.add(i64x2.extmul_high_i32x4_s(x, mult), nudge), 1);
  const t = i32x4.shuffle(lo, hi, 1, 3, 5, 7);
  const pw = pp + OUT_HEADER + 3 * np4 + (n << 3);
  lo = i64x2.mul(i64x2.extend_low_i32x4_s(t), v128.load(pw));
  hi = i64x2.mul(i64x2.extend_high_i32x4_s(t), v128.load(pw, 16));
  const q = i32x4.shuffle(lo, hi, 1, 3, 5, 7);
  const mask = v128.load(ch + 2 * np4);
  const rem = v128.and(t, mask);
  const thr = i32x4.sub(i32x4.shr_s(mask, 1), i32x4.lt_s(t, i32x4.splat(0)));
  return i32x4.sub(q, i32x4.gt_s(rem, thr));
}

// @ts-ignore: decorator
@inline function storeRow(
  c: usize, lo: v128, hi: v128, nc: i32, n0: usize, mode: i32, pp: usize, np4: usize,
  ost0: v128, ost1: v128, ost2: v128,
): void {
  if (mode == MODE_I32) {
    if (nc >= 8) {
      v128.store(c, lo);
      v128.store(c, hi, 16);
    } else storeTail32(c, lo, hi, nc);
    return;
  }
  const s = scaleAt(pp, n0);
  if (mode == MODE_F32) {
    lo = f32x4.pmin(ost2, f32x4.pmax(ost1, f32x4.mul(f32x4.convert_i32x4_s(lo), v128.load(s))));
    hi = f32x4.pmin(ost2, f32x4.pmax(ost1, f32x4.mul(f32x4.convert_i32x4_s(hi), v128.load(s, 16))));
    if (nc >= 8) {
      v128.store(c, lo);
      v128.store(c, hi, 16);
    } else storeTail32(c, lo, hi, nc);
    return;
  }
  if (mode <= MODE_GEMMLOWP_I8) {
    lo = i32x4.add(gemmlowp4Dw(lo, pp, np4, n0), ost0);
    hi = i32x4.add(gemmlowp4Dw(hi, pp, np4, n0 + 4), ost0);
    lo = i32x4.min_s(ost2, i32x4.max_s(ost1, lo));
    hi = i32x4.min_s(ost2, i32x4.max_s(ost1, hi));
  } else {
    // Clamped before rounding, so the result needs no integer clamp.
    lo = fp32Round4(lo, v128.load(s), ost1, ost2, ost0);
    hi = fp32Round4(hi, v128.load(s, 16), ost1, ost2, ost0);
  }
  const h = i16x8.narrow_i32x4_s(lo, hi);
  const b = mode == MODE_GEMMLOWP_I8 || mode == MODE_FP32_I8
    ? i8x16.narrow_i16x8_s(h, h)
    : i8x16.narrow_i16x8_u(h, h);
  storeBytes8(c, b, min(nc, 8));
}

// One lane of the output stage (scalar build); a copy of gemm_i8.ts storeScalar.
// @ts-ignore: decorator
@inline function storeScalar(c: usize, acc: i32, n: usize, mode: i32, pp: usize, np4: usize): void {
  if (mode == MODE_I32) {
    store<i32>(c, acc);
    return;
  }
  if (mode == MODE_F32) {
    const v = <f32>acc * load<f32>(scaleAt(pp, n));
    store<f32>(c, min(max(v, load<f32>(pp, 16)), load<f32>(pp, 20)));
    return;
  }
  const zp = load<i32>(pp);
  const qmin = load<i32>(pp, 4);
  const qmax = load<i32>(pp, 8);
  let q: i32;
  if (mode <= MODE_GEMMLOWP_I8) q = gemmlowp1(acc, pp, np4, n) + zp;
  else q = fp32q1(acc, load<f32>(scaleAt(pp, n)), <f32>(qmin - zp), <f32>(qmax - zp)) + zp;
  store<u8>(c, <u8>min(max(q, qmin), qmax));
}

// 8 activations widened to i16.
// @ts-ignore: decorator
@inline function ld8<TA>(p: usize): v128 {
  if (isSigned<TA>()) return v128.load8x8_s(p);
  return v128.load8x8_u(p);
}

// Interleaves two taps' i16 lanes: (a0, b0, a1, b1, a2, b2, a3, b3) and the upper half.
// @ts-ignore: decorator
@inline function zipLo(a: v128, b: v128): v128 {
  return i16x8.shuffle(a, b, 0, 8, 1, 9, 2, 10, 3, 11);
}
// @ts-ignore: decorator
@inline function zipHi(a: v128, b: v128): v128 {
  return i16x8.shuffle(a, b, 4, 12, 5, 13, 6, 14, 7, 15);
}

// One tap of a block (8 channels as i16): in a checked block, taps outside the input (ok =
// false for a padded kernel row) read the zero point and are never loaded, so they add
// x_zero·w, which the base bias − x_zero·Σw cancels exactly.
// @ts-ignore: decorator
@inline function colI8<TA>(p: usize, ix: i32, width: i32, ok: bool, vz: v128, checked: bool): v128 {
  if (!checked) return ld8<TA>(p);
  return ok && <u32>ix < <u32>width ? ld8<TA>(p) : vz;
}

// Any kernel, stride and dilation: 4 output pixels × 8 channels (q0..q3: input at each
// pixel's window origin, this group; y0..y3: outputs), taps walked in the packed pair order
// with a column counter (rsd: bytes between kernel rows, dxb: between columns). A checked block
// (window crossing an edge; iy0: first tap row, ix*: first tap columns) reads the zero point
// for taps outside the input, which the base bias − x_zero·Σw cancels.
// @ts-ignore: decorator
@inline function dwGenericBlockI8<TA>(
  q0: usize, q1: usize, q2: usize, q3: usize, wg: usize, base0: v128, base1: v128,
  taps: i32, kw: i32, rsd: usize, dxb: usize, y0: usize, y1: usize, y2: usize, y3: usize,
  nc: i32, n0: usize, mode: i32, pp: usize, np4: usize, ost0: v128, ost1: v128, ost2: v128,
  checked: bool, iy0: i32, h: i32, dh: i32, ix0: i32, ix1: i32, ix2: i32, ix3: i32, dw: i32,
  width: i32, vz: v128,
): void {
  const rowAdv = rsd - <usize>kw * dxb;
  let a00 = base0, a01 = base1, a10 = base0, a11 = base1;
  let a20 = base0, a21 = base1, a30 = base0, a31 = base1;
  let wt = wg + DW_HEADER_I8;
  let o: usize = 0;
  let kx = 0, ky = 0;
  for (let t = 0; t < taps; t += 2) {
    const o0 = o, kx0 = kx, ky0 = ky;
    o += dxb;
    if (++kx == kw) {
      kx = 0;
      ky++;
      o += rowAdv;
    }
    // Odd T: the padded tap repeats the last one; its weight is 0.
    let o1 = o0, kx1 = kx0, ky1 = ky0;
    if (t + 1 < taps) {
      o1 = o;
      kx1 = kx;
      ky1 = ky;
      o += dxb;
      if (++kx == kw) {
        kx = 0;
        ky++;
        o += rowAdv;
      }
    }
    let r0 = true, r1 = true;
    let d0 = 0, d1 = 0;
    if (checked) {
      r0 = <u32>(iy0 + ky0 * dh) < <u32>h;
      r1 = <u32>(iy0 + ky1 * dh) < <u32>h;
      d0 = kx0 * dw;
      d1 = kx1 * dw;
    }
    const wl = v128.load(wt);
    const wh = v128.load(wt, 16);
    let x0 = colI8<TA>(q0 + o0, ix0 + d0, width, r0, vz, checked);
    let x1 = colI8<TA>(q0 + o1, ix0 + d1, width, r1, vz, checked);
    a00 = i32x4.add(a00, i32x4.dot_i16x8_s(zipLo(x0, x1), wl));
    a01 = i32x4.add(a01, i32x4.dot_i16x8_s(zipHi(x0, x1), wh));
    x0 = colI8<TA>(q1 + o0, ix1 + d0, width, r0, vz, checked);
    x1 = colI8<TA>(q1 + o1, ix1 + d1, width, r1, vz, checked);
    a10 = i32x4.add(a10, i32x4.dot_i16x8_s(zipLo(x0, x1), wl));
    a11 = i32x4.add(a11, i32x4.dot_i16x8_s(zipHi(x0, x1), wh));
    x0 = colI8<TA>(q2 + o0, ix2 + d0, width, r0, vz, checked);
    x1 = colI8<TA>(q2 + o1, ix2 + d1, width, r1, vz, checked);
    a20 = i32x4.add(a20, i32x4.dot_i16x8_s(zipLo(x0, x1), wl));
    a21 = i32x4.add(a21, i32x4.dot_i16x8_s(zipHi(x0, x1), wh));
    x0 = colI8<TA>(q3 + o0, ix3 + d0, width, r0, vz, checked);
    x1 = colI8<TA>(q3 + o1, ix3 + d1, width, r1, vz, checked);
    a30 = i32x4.add(a30, i32x4.dot_i16x8_s(zipLo(x0, x1), wl));
    a31 = i32x4.add(a31, i32x4.dot_i16x8_s(zipHi(x0, x1), wh));
    wt += 32;
  }
  storeRow(y3, a30, a31, nc, n0, mode, pp, np4, ost0, ost1, ost2);
  storeRow(y2, a20, a21, nc, n0, mode, pp, np4, ost0, ost1, ost2);
  storeRow(y1, a10, a11, nc, n0, mode, pp, np4, ost0, ost1, ost2);
  storeRow(y0, a00, a01, nc, n0, mode, pp, np4, ost0, ost1, ost2);
}

// All output pixels of one row, any kernel: blocks of 4; in a short last block the missing
// pixels alias the last valid one (recomputed and rewritten with the same value). Blocks
// whose windows stay inside (rowInside, columns [oxLo, oxHi)) run unchecked.
// xr: input at kernel row 0 (row iy0 = oy*sh − pad_top, may lie outside), yr: output row.
function dwGenericRowI8<TA>(
  xr: usize, yr: usize, ow: i32, oxLo: i32, oxHi: i32, iy0: i32, h: i32, kh: i32, kw: i32,
  dh: i32, dw: i32, sw: i32, pl: i32, width: i32, c: i32, za: i32, rsd: usize, dxb: usize,
  w: usize, gb: usize, mode: i32, pp: usize, np4: usize, ob: usize,
): void {
  const ost0 = outConsts(mode, pp, 0);
  const ost1 = outConsts(mode, pp, 1);
  const ost2 = outConsts(mode, pp, 2);
  const taps = kh * kw;
  const pb = <usize>c;
  const yb = pb * ob;
  const vza = i32x4.splat(za);
  const vz = i16x8.splat(<i16>za);
  const rowInside = iy0 >= 0 && iy0 + (kh - 1) * dh < h;
  for (let ox = 0; ox < ow; ox += 4) {
    const m = min(4, ow - ox);
    const ix0 = ox * sw - pl;
    const ix1 = m > 1 ? ix0 + sw : ix0;
    const ix2 = m > 2 ? ix1 + sw : ix1;
    const ix3 = m > 3 ? ix2 + sw : ix2;
    const clean = rowInside && ox >= oxLo && ox + m <= oxHi;
    const p0 = xr + <usize>ix0 * pb, p1 = xr + <usize>ix1 * pb;
    const p2 = xr + <usize>ix2 * pb, p3 = xr + <usize>ix3 * pb;
    const y0 = yr + <usize>ox * yb;
    const y1 = m > 1 ? y0 + yb : y0;
    const y2 = m > 2 ? y1 + yb : y1;
    const y3 = m > 3 ? y2 + yb : y2;
    let wg = w;
    for (let c0 = 0; c0 < c; c0 += 8) {
      const g = <usize>c0;
      const base0 = i32x4.sub(v128.load(wg), i32x4.mul(vza, v128.load(wg, 32)));
      const base1 = i32x4.sub(v128.load(wg, 16), i32x4.mul(vza, v128.load(wg, 48)));
      const gy = g * ob;
      const nc = c - c0;
      if (clean) {
        dwGenericBlockI8<TA>(
          p0 + g, p1 + g, p2 + g, p3 + g, wg, base0, base1, taps, kw, rsd, dxb,
          y0 + gy, y1 + gy, y2 + gy, y3 + gy, nc, g, mode, pp, np4, ost0, ost1, ost2,
          false, 0, 0, 0, 0, 0, 0, 0, 0, 0, vz,
        );
      } else {
        dwGenericBlockI8<TA>(
          p0 + g, p1 + g, p2 + g, p3 + g, wg, base0, base1, taps, kw, rsd, dxb,
          y0 + gy, y1 + gy, y2 + gy, y3 + gy, nc, g, mode, pp, np4, ost0, ost1, ost2,
          true, iy0, h, dh, ix0, ix1, ix2, ix3, dw, width, vz,
        );
      }
      wg += gb;
    }
  }
}

// 3×3, stride 1, dw = 1: 4 consecutive pixels × 8 channels. Pixel i reads input columns
// i..i+2 of each kernel row, so the column pairs zip(col j, col j+1) are shared: pixel i takes
// zip(i, i+1)·(w0, w1) + zip(i+1, i+2)·(0, w2) with the row-paired weights of pack_dw.ts.
// Per kernel row: 6 column loads and 5 zips for 4 pixels instead of 12 and 8.
// @ts-ignore: decorator
@inline function dw3x3s1I8x4<TA>(
  r: usize, rs: usize, pb: usize, wg: usize, base0: v128, base1: v128,
  y0: usize, yb: usize, nc: i32, n0: usize, mode: i32, pp: usize, np4: usize,
  ost0: v128, ost1: v128, ost2: v128,
  checked: bool, ix0: i32, width: i32, kyLo: i32, kyHi: i32, vz: v128,
): void {
  let a00 = base0, a01 = base1, a10 = base0, a11 = base1;
  let a20 = base0, a21 = base1, a30 = base0, a31 = base1;
  let wr = wg + DW_ROWS3_OFF_I8;
  for (let ky = 0; ky < 3; ky++) {
    const ok = !checked || (ky >= kyLo && ky < kyHi);
    const wal = v128.load(wr);
    const wah = v128.load(wr, 16);
    const wbl = v128.load(wr, 32);
    const wbh = v128.load(wr, 48);
    let p = r;
    let c0 = colI8<TA>(p, ix0, width, ok, vz, checked);
    let c1: v128, zl: v128, zh: v128;
    p += pb;
    c1 = colI8<TA>(p, ix0 + 1, width, ok, vz, checked);
    zl = zipLo(c0, c1);
    zh = zipHi(c0, c1);
    a00 = i32x4.add(a00, i32x4.dot_i16x8_s(zl, wal));
    a01 = i32x4.add(a01, i32x4.dot_i16x8_s(zh, wah));
    c0 = c1;
    p += pb;
    c1 = colI8<TA>(p, ix0 + 2, width, ok, vz, checked);
    zl = zipLo(c0, c1);
    zh = zipHi(c0, c1);
    a00 = i32x4.add(a00, i32x4.dot_i16x8_s(zl, wbl));
    a01 = i32x4.add(a01, i32x4.dot_i16x8_s(zh, wbh));
    a10 = i32x4.add(a10, i32x4.dot_i16x8_s(zl, wal));
    a11 = i32x4.add(a11, i32x4.dot_i16x8_s(zh, wah));
    c0 = c1;
    p += pb;
    c1 = colI8<TA>(p, ix0 + 3, width, ok, vz, checked);
    zl = zipLo(c0, c1);
    zh = zipHi(c0, c1);
    a10 = i32x4.add(a10, i32x4.dot_i16x8_s(zl, wbl));
    a11 = i32x4.add(a11, i32x4.dot_i16x8_s(zh, wbh));
    a20 = i32x4.add(a20, i32x4.dot_i16x8_s(zl, wal));
    a21 = i32x4.add(a21, i32x4.dot_i16x8_s(zh, wah));
    c0 = c1;
    p += pb;
    c1 = colI8<TA>(p, ix0 + 4, width, ok, vz, checked);
    zl = zipLo(c0, c1);
    zh = zipHi(c0, c1);
    a20 = i32x4.add(a20, i32x4.dot_i16x8_s(zl, wbl));
    a21 = i32x4.add(a21, i32x4.dot_i16x8_s(zh, wbh));
    a30 = i32x4.add(a30, i32x4.dot_i16x8_s(zl, wal));
    a31 = i32x4.add(a31, i32x4.dot_i16x8_s(zh, wah));
    c0 = c1;
    p += pb;
    c1 = colI8<TA>(p, ix0 + 5, width, ok, vz, checked);
    zl = zipLo(c0, c1);
    zh = zipHi(c0, c1);
    a30 = i32x4.add(a30, i32x4.dot_i16x8_s(zl, wbl));
    a31 = i32x4.add(a31, i32x4.dot_i16x8_s(zh, wbh));
    r += rs;
    wr += 96;
  }
  storeRow(y0 + 3 * yb, a30, a31, nc, n0, mode, pp, np4, ost0, ost1, ost2);
  storeRow(y0 + 2 * yb, a20, a21, nc, n0, mode, pp, np4, ost0, ost1, ost2);
  storeRow(y0 + yb, a10, a11, nc, n0, mode, pp, np4, ost0, ost1, ost2);
  storeRow(y0, a00, a01, nc, n0, mode, pp, np4, ost0, ost1, ost2);
}

// 3×3, stride 2, dw = 1: pixel i reads columns 2i..2i+2, so zip(col 2i+2, col 2i+3) serves
// pixel i (weights (w2, 0)) and pixel i+1 (weights (w0, w1)). Per kernel row: 9 column loads
// and 5 zips for 4 pixels instead of 20 and 10 (the last pixel zips column 8 with itself).
// @ts-ignore: decorator
@inline function dw3x3s2I8x4<TA>(
  r: usize, rs: usize, pb: usize, wg: usize, base0: v128, base1: v128,
  y0: usize, yb: usize, nc: i32, n0: usize, mode: i32, pp: usize, np4: usize,
  ost0: v128, ost1: v128, ost2: v128,
  checked: bool, ix0: i32, width: i32, kyLo: i32, kyHi: i32, vz: v128,
): void {
  let a00 = base0, a01 = base1, a10 = base0, a11 = base1;
  let a20 = base0, a21 = base1, a30 = base0, a31 = base1;
  let wr = wg + DW_ROWS3_OFF_I8;
  for (let ky = 0; ky < 3; ky++) {
    const ok = !checked || (ky >= kyLo && ky < kyHi);
    const wal = v128.load(wr);
    const wah = v128.load(wr, 16);
    const wcl = v128.load(wr, 64);
    const wch = v128.load(wr, 80);
    let p = r;
    let c0 = colI8<TA>(p, ix0, width, ok, vz, checked);
    let c1: v128, zl: v128, zh: v128;
    p += pb;
    c1 = colI8<TA>(p, ix0 + 1, width, ok, vz, checked);
    zl = zipLo(c0, c1);
    zh = zipHi(c0, c1);
    a00 = i32x4.add(a00, i32x4.dot_i16x8_s(zl, wal));
    a01 = i32x4.add(a01, i32x4.dot_i16x8_s(zh, wah));
    p += pb;
    c0 = colI8<TA>(p, ix0 + 2, width, ok, vz, checked);
    p += pb;
    c1 = colI8<TA>(p, ix0 + 3, width, ok, vz, checked);
    zl = zipLo(c0, c1);
    zh = zipHi(c0, c1);
    a00 = i32x4.add(a00, i32x4.dot_i16x8_s(zl, wcl));
    a01 = i32x4.add(a01, i32x4.dot_i16x8_s(zh, wch));
    a10 = i32x4.add(a10, i32x4.dot_i16x8_s(zl, wal));
    a11 = i32x4.add(a11, i32x4.dot_i16x8_s(zh, wah));
    p += pb;
    c0 = colI8<TA>(p, ix0 + 4, width, ok, vz, checked);
    p += pb;
    c1 = colI8<TA>(p, ix0 + 5, width, ok, vz, checked);
    zl = zipLo(c0, c1);
    zh = zipHi(c0, c1);
    a10 = i32x4.add(a10, i32x4.dot_i16x8_s(zl, wcl));
    a11 = i32x4.add(a11, i32x4.dot_i16x8_s(zh, wch));
    a20 = i32x4.add(a20, i32x4.dot_i16x8_s(zl, wal));
    a21 = i32x4.add(a21, i32x4.dot_i16x8_s(zh, wah));
    p += pb;
    c0 = colI8<TA>(p, ix0 + 6, width, ok, vz, checked);
    p += pb;
    c1 = colI8<TA>(p, ix0 + 7, width, ok, vz, checked);
    zl = zipLo(c0, c1);
    zh = zipHi(c0, c1);
    a20 = i32x4.add(a20, i32x4.dot_i16x8_s(zl, wcl));
    a21 = i32x4.add(a21, i32x4.dot_i16x8_s(zh, wch));
    a30 = i32x4.add(a30, i32x4.dot_i16x8_s(zl, wal));
    a31 = i32x4.add(a31, i32x4.dot_i16x8_s(zh, wah));
    p += pb;
    c0 = colI8<TA>(p, ix0 + 8, width, ok, vz, checked);
    zl = zipLo(c0, c0);
    zh = zipHi(c0, c0);
    a30 = i32x4.add(a30, i32x4.dot_i16x8_s(zl, wcl));
    a31 = i32x4.add(a31, i32x4.dot_i16x8_s(zh, wch));
    r += rs;
    wr += 96;
  }
  storeRow(y0 + 3 * yb, a30, a31, nc, n0, mode, pp, np4, ost0, ost1, ost2);
  storeRow(y0 + 2 * yb, a20, a21, nc, n0, mode, pp, np4, ost0, ost1, ost2);
  storeRow(y0 + yb, a10, a11, nc, n0, mode, pp, np4, ost0, ost1, ost2);
  storeRow(y0, a00, a01, nc, n0, mode, pp, np4, ost0, ost1, ost2);
}

// All ow ≥ 4 output pixels of one row of a 3×3 window with stride 1 or 2 and dw = 1, in blocks
// of 4 (the last shifted left to end at ow; overlapping pixels are rewritten with identical
// values). Blocks whose window leaves the input (edge columns, top and bottom rows) run the
// checked variant, the others load freely. xr: input at kernel row 0 (may lie outside).
// Inlined into one function per stride (dw3x3RowI8S1/S2), so each stays small.
// @ts-ignore: decorator
@inline function dw3x3RowI8<TA>(
  xr: usize, yr: usize, ow: i32, sw: i32, pl: i32, width: i32, kyLo: i32, kyHi: i32, c: i32,
  za: i32, rsd: usize, w: usize, gb: usize, mode: i32, pp: usize, np4: usize, ob: usize,
): void {
  const ost0 = outConsts(mode, pp, 0);
  const ost1 = outConsts(mode, pp, 1);
  const ost2 = outConsts(mode, pp, 2);
  const pb = <usize>c;
  const yb = pb * ob;
  const vza = i32x4.splat(za);
  const vz = i16x8.splat(<i16>za);
  const span = 3 * sw + 3; // input columns a block of 4 reads
  const rowsIn = kyLo == 0 && kyHi == 3;
  let ox = 0;
  while (true) {
    if (ox > ow - 4) ox = ow - 4;
    const ix0 = ox * sw - pl;
    const clean = rowsIn && ix0 >= 0 && ix0 + span <= width;
    const r = xr + <usize>ix0 * pb;
    const y0 = yr + <usize>ox * yb;
    let wg = w;
    for (let c0 = 0; c0 < c; c0 += 8) {
      const g = <usize>c0;
      const base0 = i32x4.sub(v128.load(wg), i32x4.mul(vza, v128.load(wg, 32)));
      const base1 = i32x4.sub(v128.load(wg, 16), i32x4.mul(vza, v128.load(wg, 48)));
      const yg = y0 + g * ob;
      const nc = c - c0;
      if (sw == 1) {
        if (clean) {
          dw3x3s1I8x4<TA>(
            r + g, rsd, pb, wg, base0, base1, yg, yb, nc, g, mode, pp, np4, ost0, ost1, ost2,
            false, 0, 0, 0, 3, vz,
          );
        } else {
          dw3x3s1I8x4<TA>(
            r + g, rsd, pb, wg, base0, base1, yg, yb, nc, g, mode, pp, np4, ost0, ost1, ost2,
            true, ix0, width, kyLo, kyHi, vz,
          );
        }
      } else {
        if (clean) {
          dw3x3s2I8x4<TA>(
            r + g, rsd, pb, wg, base0, base1, yg, yb, nc, g, mode, pp, np4, ost0, ost1, ost2,
            false, 0, 0, 0, 3, vz,
          );
        } else {
          dw3x3s2I8x4<TA>(
            r + g, rsd, pb, wg, base0, base1, yg, yb, nc, g, mode, pp, np4, ost0, ost1, ost2,
            true, ix0, width, kyLo, kyHi, vz,
          );
        }
      }
      wg += gb;
    }
    ox += 4;
    if (ox >= ow) break;
  }
}

function dw3x3RowI8S1<TA>(
  xr: usize, yr: usize, ow: i32, pl: i32, width: i32, kyLo: i32, kyHi: i32, c: i32, za: i32,
  rsd: usize, w: usize, gb: usize, mode: i32, pp: usize, np4: usize, ob: usize,
): void {
  dw3x3RowI8<TA>(xr, yr, ow, 1, pl, width, kyLo, kyHi, c, za, rsd, w, gb, mode, pp, np4, ob);
}

function dw3x3RowI8S2<TA>(
  xr: usize, yr: usize, ow: i32, pl: i32, width: i32, kyLo: i32, kyHi: i32, c: i32, za: i32,
  rsd: usize, w: usize, gb: usize, mode: i32, pp: usize, np4: usize, ob: usize,
): void {
  dw3x3RowI8<TA>(xr, yr, ow, 2, pl, width, kyLo, kyHi, c, za, rsd, w, gb, mode, pp, np4, ob);
}

// Scalar build: one pixel, all channels, tap ranges clamped to the input.
function dwPixelI8Scalar(
  xr: usize, yo: usize, ix0: i32, kyLo: i32, kyHi: i32, kw: i32, dw: i32, width: i32, c: i32,
  rsd: usize, signed: bool, za: i32, w: usize, gb: usize, mode: i32, pp: usize, np4: usize,
  ob: usize,
): void {
  const pb = <usize>c;
  const kxLo = tapLo(ix0, dw);
  const kxHi = tapHi(ix0, dw, width, kw, kxLo);
  const dxb = <usize>dw * pb;
  let wg = w;
  for (let c0 = 0; c0 < c; c0 += 8) {
    const nc = min(8, c - c0);
    for (let j = 0; j < nc; j++) {
      const ch = <usize>(c0 + j);
      let acc = load<i32>(wg + (<usize>j << 2));
      for (let ky = kyLo; ky < kyHi; ky++) {
        const row = xr + <usize>ky * rsd + <usize>ix0 * pb + ch;
        for (let kx = kxLo; kx < kxHi; kx++) {
          const xa = row + <usize>kx * dxb;
          const xv = signed ? <i32>load<i8>(xa) : <i32>load<u8>(xa);
          const t = ky * kw + kx;
          // i16 w[t/2][j][t&1] after the 64-byte header
          const wv = <i32>load<i16>(wg + DW_HEADER_I8 + (<usize>(t >> 1) << 5) + (<usize>j << 2) + (<usize>(t & 1) << 1));
          acc += (xv - za) * wv;
        }
      }
      storeScalar(yo + ch * ob, acc, ch, mode, pp, np4);
    }
    wg += gb;
  }
}

function dwconvI8Scalar(
  dp: usize, x: usize, signed: bool, za: i32, w: usize, y: usize, mode: i32, pp: usize,
): void {
  const n = P(dp, 0), h = P(dp, 1), width = P(dp, 2), c = P(dp, 3);
  const kh = P(dp, 4), kw = P(dp, 5), sh = P(dp, 6), sw = P(dp, 7);
  const dh = P(dp, 8), dw = P(dp, 9), pt = P(dp, 10), pl = P(dp, 11);
  const oh = P(dp, 12), ow = P(dp, 13);
  const pb = <usize>c;
  const ob = outBytes(mode);
  const np4 = <usize>((c + 7) & ~7) << 2;
  const rsd = <usize>dh * <usize>width * pb;
  const gb = dwGroupBytesI8(kh, kw);
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      const iy0 = oy * sh - pt;
      const kyLo = tapLo(iy0, dh);
      const kyHi = tapHi(iy0, dh, h, kh, kyLo);
      const xr = x + <usize>(b * h + iy0) * <usize>width * pb;
      const yr = y + <usize>(b * oh + oy) * <usize>ow * pb * ob;
      for (let ox = 0; ox < ow; ox++) {
        dwPixelI8Scalar(
          xr, yr + <usize>ox * pb * ob, ox * sw - pl, kyLo, kyHi, kw, dw, width, c, rsd, signed,
          za, w, gb, mode, pp, np4, ob,
        );
      }
    }
  }
}

function dwconvI8Simd<TA>(
  dp: usize, x: usize, za: i32, w: usize, y: usize, mode: i32, pp: usize,
): void {
  const n = P(dp, 0), h = P(dp, 1), width = P(dp, 2), c = P(dp, 3);
  const kh = P(dp, 4), kw = P(dp, 5), sh = P(dp, 6), sw = P(dp, 7);
  const dh = P(dp, 8), dw = P(dp, 9), pt = P(dp, 10), pl = P(dp, 11);
  const oh = P(dp, 12), ow = P(dp, 13);
  const pb = <usize>c;
  const ob = outBytes(mode);
  const np4 = <usize>((c + 7) & ~7) << 2;
  const gb = dwGroupBytesI8(kh, kw);
  const rsd = <usize>dh * <usize>width * pb;
  const dxb = <usize>dw * pb;
  const oxLo = min(ow, ceilDiv(pl, sw));
  const lastFit = width - 1 + pl - (kw - 1) * dw;
  const oxHi = max(oxLo, lastFit < 0 ? 0 : min(ow, lastFit / sw + 1));
  const yb = pb * ob;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      const iy0 = oy * sh - pt;
      const xr = x + <usize>(b * h + iy0) * <usize>width * pb;
      const yr = y + <usize>(b * oh + oy) * <usize>ow * yb;
      if (kh == 3 && kw == 3 && sw <= 2 && dw == 1 && ow >= 4) {
        const kyLo = tapLo(iy0, dh);
        const kyHi = tapHi(iy0, dh, h, kh, kyLo);
        if (sw == 1) {
          dw3x3RowI8S1<TA>(xr, yr, ow, pl, width, kyLo, kyHi, c, za, rsd, w, gb, mode, pp, np4, ob);
        } else {
          dw3x3RowI8S2<TA>(xr, yr, ow, pl, width, kyLo, kyHi, c, za, rsd, w, gb, mode, pp, np4, ob);
        }
        continue;
      }
      dwGenericRowI8<TA>(
        xr, yr, ow, oxLo, oxHi, iy0, h, kh, kw, dh, dw, sw, pl, width, c, za, rsd, dxb, w, gb,
        mode, pp, np4, ob,
      );
    }
  }
}

// dp: dw_params; w: packed by packDwI8; pp: output params (requant.ts). y must not overlap x.
export function dwconvI8(
  dp: usize, x: usize, signed: bool, za: i32, w: usize, y: usize, mode: i32, pp: usize,
): void {
  if (ASC_FEATURE_SIMD) {
    if (signed) dwconvI8Simd<i8>(dp, x, za, w, y, mode, pp);
    else dwconvI8Simd<u8>(dp, x, za, w, y, mode, pp);
  } else dwconvI8Scalar(dp, x, signed, za, w, y, mode, pp);
}
