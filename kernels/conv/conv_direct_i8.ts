// Direct NHWC int8 convolution (QLinearConv / ConvInteger semantics, the output stage of
// sqz_i8_gemm) for a first layer: one group, dilation 1, few input channels (any count is
// correct; the layout pays off for 1–4). No im2col:
//
//   acc[pixel][o] = bias[o] + Σ over the window (x − aZero)·w[o]      (exact, i32)
//
// For each output row, the kh input rows its windows read are widened once into the workspace
// as i16 (x − aZero), with the horizontal padding written as 0 (padding reads aZero, so it adds
// nothing) and rows outside the input all 0: every window is then interior, and a kernel row's
// kw·c values are one contiguous run, read in pairs by i32x4.dot_i16x8_s (two multiply-adds
// per lane, exact). Widening costs kh·(row width)·c values per output row, against
// ow·cout·kh·kw·c multiply-adds.
//
// Weights (sqz_i8_conv_direct_pack, the same in every build), per panel of 8 output channels:
//   struct panel_i8_direct {
//     i32 bias[8];                  // 0 past cout
//     i16 w[kh][KR/2][8][2];        // w[ky][q][j][t] = W[n0+j][ci][ky][kx] for
//   }                               // kx·c + ci = 2q + t; 0 past kw·c or cout
// with KR = kw·c rounded up to even (the pad weight is 0, so the value a pair reads past a run,
// the next pixel's first channel, adds nothing).
//
// Microkernels (the simd and relaxed builds share the simd one: the products are exact, so
// every build gives the same bits):
//   conv_i8_direct_5x8_simd:   5 pixels × 8 channels, 10 i32x4 accumulators.
//   conv_i8_direct_1x8_scalar: the scalar build, one pixel.
import { outBytes } from "../gemm/requant";
import { storeRow as storeRowI8, storeScalar as storeScalarI8 } from "../gemm/gemm_i8";

// @ts-ignore: decorator
@inline function P(cp: usize, i: i32): i32 {
  return load<i32>(cp + (<usize>i << 2));
}

const MR: i32 = 5;

/** Values per kernel row in the packed weights: kw·c rounded up to even. */
// @ts-ignore: decorator
@inline function rowValues(kw: i32, c: i32): i32 {
  return (kw * c + 1) & ~1;
}

export function packedSizeI8Direct(cout: i32, c: i32, kh: i32, kw: i32): usize {
  return <usize>((cout + 7) >> 3) * <usize>(32 + kh * rowValues(kw, c) * 16);
}

/** Packs i8 weights W[cout][c][kh][kw] (ONNX OIHW) and i32 bias[cout] (or 0). */
export function packI8Direct(
  cout: i32, c: i32, kh: i32, kw: i32, w: usize, bias: usize, out: usize,
): void {
  const kr = rowValues(kw, c);
  let p = out;
  for (let n0 = 0; n0 < cout; n0 += 8) {
    for (let j = 0; j < 8; j++) {
      const o = n0 + j;
      store<i32>(p + (<usize>j << 2), o < cout && bias != 0 ? load<i32>(bias + (<usize>o << 2)) : 0);
    }
    p += 32;
    for (let ky = 0; ky < kh; ky++) {
      for (let v = 0; v < kr; v += 2) {
        for (let j = 0; j < 8; j++) {
          const o = n0 + j;
          for (let t = 0; t < 2; t++) {
            const i = v + t;
            let wv: i32 = 0;
            if (o < cout && i < kw * c) {
              const kx = i / c, ci = i - kx * c;
              wv = <i32>load<i8>(w + <usize>(((o * c + ci) * kh + ky) * kw + kx));
            }
            store<i16>(p + (<usize>((j << 1) + t) << 1), <i16>wv);
          }
        }
        p += 32;
      }
    }
  }
}

/** i16 values of one widened input row: the windows of a whole output row, left pad included. */
// @ts-ignore: decorator
@inline function wsRowValues(cp: usize): i32 {
  return ((P(cp, 13) - 1) * P(cp, 7) + P(cp, 5)) * P(cp, 3);
}

/** Workspace bytes: kh widened rows, and slack for the pair read past the last run. */
export function workspaceBytesI8Direct(cp: usize): usize {
  return <usize>P(cp, 4) * <usize>wsRowValues(cp) * 2 + 16;
}

// Widens input row iy of image b into n i16 values (x − zero) starting at column −pl; columns
// and rows outside the input get 0.
function widenRow(
  x: usize, b: i32, iy: i32, h: i32, wd: i32, c: i32, pl: i32, signed: bool, zero: i32,
  dst: usize, n: i32,
): void {
  if (iy < 0 || iy >= h) {
    memory.fill(dst, 0, <usize>n << 1);
    return;
  }
  // Values [0, lead) are left padding, [lead, lead + run) the input row, the rest right padding.
  const lead = min(n, pl * c);
  const run = min(n - lead, wd * c);
  memory.fill(dst, 0, <usize>lead << 1);
  const src = x + <usize>(b * h + iy) * <usize>(wd * c);
  const d = dst + (<usize>lead << 1);
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const vz = i16x8.splat(<i16>zero);
    if (signed) {
      for (; i + 8 <= run; i += 8) {
        v128.store(d + (<usize>i << 1), i16x8.sub(v128.load8x8_s(src + i), vz));
      }
    } else {
      for (; i + 8 <= run; i += 8) {
        v128.store(d + (<usize>i << 1), i16x8.sub(v128.load8x8_u(src + i), vz));
      }
    }
  }
  for (; i < run; i++) {
    const v = signed ? <i32>load<i8>(src + i) : <i32>load<u8>(src + i);
    store<i16>(d + (<usize>i << 1), <i16>(v - zero));
  }
  const tail = n - lead - run;
  if (tail > 0) memory.fill(d + (<usize>run << 1), 0, <usize>tail << 1);
}

// MR pixels × 8 channels. xp: pixel 0's window in widened row 0; pixel p at xp + p·pstep;
// kh rows rstep apart, q pairs per row. Pixels past mr alias the last one.
function conv_i8_direct_5x8_simd(
  mr: i32, nc: i32, xp: usize, pstep: usize, kh: i32, rstep: usize, q: i32, wp: usize,
  yp: usize, ys: usize, mode: i32, pp: usize, np4: usize, n0: usize,
): void {
  const o1 = <usize>min(1, mr - 1) * pstep, o2 = <usize>min(2, mr - 1) * pstep;
  const o3 = <usize>min(3, mr - 1) * pstep, o4 = <usize>min(4, mr - 1) * pstep;
  let a00 = v128.load(wp), a01 = v128.load(wp, 16);
  let a10 = a00, a11 = a01, a20 = a00, a21 = a01, a30 = a00, a31 = a01, a40 = a00, a41 = a01;
  let wk = wp + 32;
  for (let ky = 0; ky < kh; ky++) {
    let x0 = xp;
    for (let i = 0; i < q; i++) {
      const w0 = v128.load(wk), w1 = v128.load(wk, 16);
      wk += 32;
      let s = v128.load32_splat(x0);
      a00 = i32x4.add(a00, i32x4.dot_i16x8_s(s, w0));
      a01 = i32x4.add(a01, i32x4.dot_i16x8_s(s, w1));
      s = v128.load32_splat(x0 + o1);
      a10 = i32x4.add(a10, i32x4.dot_i16x8_s(s, w0));
      a11 = i32x4.add(a11, i32x4.dot_i16x8_s(s, w1));
      s = v128.load32_splat(x0 + o2);
      a20 = i32x4.add(a20, i32x4.dot_i16x8_s(s, w0));
      a21 = i32x4.add(a21, i32x4.dot_i16x8_s(s, w1));
      s = v128.load32_splat(x0 + o3);
      a30 = i32x4.add(a30, i32x4.dot_i16x8_s(s, w0));
      a31 = i32x4.add(a31, i32x4.dot_i16x8_s(s, w1));
      s = v128.load32_splat(x0 + o4);
      a40 = i32x4.add(a40, i32x4.dot_i16x8_s(s, w0));
      a41 = i32x4.add(a41, i32x4.dot_i16x8_s(s, w1));
      x0 += 4;
    }
    xp += rstep;
  }
  storeRowI8(yp + <usize>min(4, mr - 1) * ys, a40, a41, nc, n0, mode, pp, np4);
  storeRowI8(yp + <usize>min(3, mr - 1) * ys, a30, a31, nc, n0, mode, pp, np4);
  storeRowI8(yp + <usize>min(2, mr - 1) * ys, a20, a21, nc, n0, mode, pp, np4);
  storeRowI8(yp + <usize>min(1, mr - 1) * ys, a10, a11, nc, n0, mode, pp, np4);
  storeRowI8(yp, a00, a01, nc, n0, mode, pp, np4);
}

function conv_i8_direct_1x8_scalar(
  nc: i32, xp: usize, kh: i32, rstep: usize, q: i32, wp: usize, yp: usize, mode: i32,
  pp: usize, np4: usize, n0: usize,
): void {
  let c0 = load<i32>(wp), c1 = load<i32>(wp, 4), c2 = load<i32>(wp, 8), c3 = load<i32>(wp, 12);
  let c4 = load<i32>(wp, 16), c5 = load<i32>(wp, 20), c6 = load<i32>(wp, 24);
  let c7 = load<i32>(wp, 28);
  let wk = wp + 32;
  for (let ky = 0; ky < kh; ky++) {
    let x0 = xp;
    for (let i = 0; i < q; i++) {
      const u = <i32>load<i16>(x0), v = <i32>load<i16>(x0, 2);
      c0 += u * <i32>load<i16>(wk) + v * <i32>load<i16>(wk, 2);
      c1 += u * <i32>load<i16>(wk, 4) + v * <i32>load<i16>(wk, 6);
      c2 += u * <i32>load<i16>(wk, 8) + v * <i32>load<i16>(wk, 10);
      c3 += u * <i32>load<i16>(wk, 12) + v * <i32>load<i16>(wk, 14);
      c4 += u * <i32>load<i16>(wk, 16) + v * <i32>load<i16>(wk, 18);
      c5 += u * <i32>load<i16>(wk, 20) + v * <i32>load<i16>(wk, 22);
      c6 += u * <i32>load<i16>(wk, 24) + v * <i32>load<i16>(wk, 26);
      c7 += u * <i32>load<i16>(wk, 28) + v * <i32>load<i16>(wk, 30);
      wk += 32;
      x0 += 4;
    }
    xp += rstep;
  }
  storeScalarI8(yp, 0, c0, n0, mode, pp, np4);
  if (nc > 1) storeScalarI8(yp, 1, c1, n0 + 1, mode, pp, np4);
  if (nc > 2) storeScalarI8(yp, 2, c2, n0 + 2, mode, pp, np4);
  if (nc > 3) storeScalarI8(yp, 3, c3, n0 + 3, mode, pp, np4);
  if (nc > 4) storeScalarI8(yp, 4, c4, n0 + 4, mode, pp, np4);
  if (nc > 5) storeScalarI8(yp, 5, c5, n0 + 5, mode, pp, np4);
  if (nc > 6) storeScalarI8(yp, 6, c6, n0 + 6, mode, pp, np4);
  if (nc > 7) storeScalarI8(yp, 7, c7, n0 + 7, mode, pp, np4);
}

/**
 * Output pixels [p0, p1) (p1 < 0: all) of a groups = 1, dilation-1 convolution; ws holds
 * workspaceBytesI8Direct(cp) bytes. Output stage as sqz_i8_gemm with N = cout.
 */
export function convI8Direct(
  cp: usize, x: usize, signed: bool, zero: i32, w: usize, y: usize, ws: usize, mode: i32,
  pp: usize, p0: i32, p1: i32,
): void {
  const h = P(cp, 1), wd = P(cp, 2), c = P(cp, 3), kh = P(cp, 4), kw = P(cp, 5);
  const sh = P(cp, 6), sw = P(cp, 7), pt = P(cp, 10), pl = P(cp, 11);
  const oh = P(cp, 12), ow = P(cp, 13), cout = P(cp, 14);
  const m = P(cp, 0) * oh * ow;
  if (p1 < 0 || p1 > m) p1 = m;
  if (p0 >= p1) return;
  const q = rowValues(kw, c) >> 1;
  const panelBytes = <usize>(32 + kh * q * 32);
  const rowN = wsRowValues(cp);
  const rstep = <usize>rowN << 1;
  const pstep = <usize>(sw * c) << 1;
  const ob = outBytes(mode);
  const ys = <usize>cout * <usize>ob;
  const np4 = <usize>((cout + 7) & ~7) << 2;
  const r1 = (p1 - 1) / ow + 1;
  for (let r = p0 / ow; r < r1; r++) {
    const b = r / oh, oy = r - b * oh;
    const ox0 = max(0, p0 - r * ow), ox1 = min(ow, p1 - r * ow);
    for (let ky = 0; ky < kh; ky++) {
      widenRow(x, b, oy * sh - pt + ky, h, wd, c, pl, signed, zero, ws + <usize>ky * rstep, rowN);
    }
    const yrow = y + <usize>r * <usize>ow * ys;
    if (ASC_FEATURE_SIMD) {
      for (let t0 = ox0; t0 < ox1; t0 += MR) {
        const mr = min(MR, ox1 - t0);
        const xp = ws + <usize>t0 * pstep;
        const yp = yrow + <usize>t0 * ys;
        for (let n0 = 0; n0 < cout; n0 += 8) {
          conv_i8_direct_5x8_simd(
            mr, min(8, cout - n0), xp, pstep, kh, rstep, q, w + <usize>(n0 >> 3) * panelBytes,
            yp + <usize>n0 * <usize>ob, ys, mode, pp, np4, <usize>n0,
          );
        }
      }
    } else {
      for (let ox = ox0; ox < ox1; ox++) {
        for (let n0 = 0; n0 < cout; n0 += 8) {
          conv_i8_direct_1x8_scalar(
            min(8, cout - n0), ws + <usize>ox * pstep, kh, rstep, q,
            w + <usize>(n0 >> 3) * panelBytes, yrow + <usize>ox * ys + <usize>n0 * <usize>ob,
            mode, pp, np4, <usize>n0,
          );
        }
      }
    }
  }
}
