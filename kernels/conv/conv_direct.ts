// Direct NHWC f32 convolution for inputs of 1–4 channels (a network's first layer: K =
// kh·kw·c is 9–196, too small for the GEMM tile to pay for im2col's copy). No workspace: the
// microkernels read the window straight from the input.
//
// Weights: the f32 GEMM panels as sqz_f32_gemm_pack writes them (pack_f32.ts), K ordered
// (ky, kx, channel), which is the layout [cout/8][bias 8 | kh][kw][c][8] — packing stays
// separate from compute, and one packing serves this kernel and im2col + GEMM alike.
//
// Each output row of the range splits into
//   - a vertical tap range [ky0, ky1), the same for the whole row (rows near the top and
//     bottom lose the kernel rows that fall in the padding: nothing is read there);
//   - border pixels on the left and right, whose window leaves the input horizontally: one
//     pixel at a time with the horizontal tap range clamped (padding reads 0, so it is
//     skipped, not computed);
//   - interior pixels, in tiles of MR consecutive pixels × 8 output channels.
// A kernel row of taps is contiguous in NHWC when dilation_w = 1: its kw·c values are one run
// (nkx = 1, nci = kw·c), so a 3×3×3 window is 3 runs of 9 multiply-adds per pixel.
//
// Microkernels:
//   conv_f32_direct_6x8_relaxed: 6 pixels × 8 channels, 12 accumulators, relaxed_madd.
//   conv_f32_direct_5x8_simd:    5 pixels × 8 channels, 10 accumulators, mul + add (the
//                                 temporary of each mul + add leaves no room for a sixth).
//   conv_f32_direct_1x8_simd:    a border pixel (both SIMD builds).
//   conv_f32_direct_1x8_scalar:  the scalar build, every pixel.
// Every output value is bias + Σ over its in-bounds taps in (ky, kx, channel) order whatever
// tile computes it, so any split of the output (threads, pixel ranges) gives the same bits.
import { storeTail32 } from "../gemm/store";

/** Most input channels the direct kernel takes. */
export const DIRECT_MAX_C: i32 = 4;

// @ts-ignore: decorator
@inline function P(cp: usize, i: i32): i32 {
  return load<i32>(cp + (<usize>i << 2));
}

// @ts-ignore: decorator
@inline function vfma(a: v128, b: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, acc);
  return f32x4.add(acc, f32x4.mul(a, b));
}

// @ts-ignore: decorator
@inline function tilePixels(): i32 {
  if (ASC_FEATURE_RELAXED_SIMD) return 6;
  return 5;
}
const MR: i32 = tilePixels();

// @ts-ignore: decorator
@inline function clampStore(yp: usize, lo: v128, hi: v128, nc: i32, vmin: v128, vmax: v128): void {
  lo = f32x4.pmin(vmax, f32x4.pmax(vmin, lo));
  hi = f32x4.pmin(vmax, f32x4.pmax(vmin, hi));
  if (nc == 8) {
    v128.store(yp, lo);
    v128.store(yp, hi, 16);
  } else storeTail32(yp, lo, hi, nc);
}

// Window walk shared by the microkernels (all strides in bytes):
//   xp     the first tap's input (pixel 0 of a tile), at kernel row ky0
//   nky    kernel rows, rstep between them (dh input rows)
//   nkx    runs per kernel row, xstep between them; nci values per run (contiguous)
//   wk     the first tap's weights in the panel, wskip weight bytes skipped after each row
//          (the taps of a clamped border window that fall outside)
// Tiles: pixel p reads xp + p·pstep and writes yp + p·ys; pixels past mr alias the last one
// (recomputed and rewritten), so the hot loop has no branches.

function conv_f32_direct_6x8_relaxed(
  mr: i32, nc: i32, xp: usize, pstep: usize, nky: i32, rstep: usize, nkx: i32, xstep: usize,
  nci: i32, wp: usize, wk: usize, yp: usize, ys: usize, vmin: v128, vmax: v128,
): void {
  const o1 = <usize>min(1, mr - 1) * pstep, o2 = <usize>min(2, mr - 1) * pstep;
  const o3 = <usize>min(3, mr - 1) * pstep, o4 = <usize>min(4, mr - 1) * pstep;
  const o5 = <usize>min(5, mr - 1) * pstep;
  let a00 = v128.load(wp), a01 = v128.load(wp, 16);
  let a10 = a00, a11 = a01, a20 = a00, a21 = a01, a30 = a00, a31 = a01;
  let a40 = a00, a41 = a01, a50 = a00, a51 = a01;
  for (let ky = 0; ky < nky; ky++) {
    let xr = xp;
    for (let kx = 0; kx < nkx; kx++) {
      let x0 = xr;
      for (let i = 0; i < nci; i++) {
        const w0 = v128.load(wk), w1 = v128.load(wk, 16);
        wk += 32;
        let s = v128.load32_splat(x0);
        a00 = vfma(s, w0, a00);
        a01 = vfma(s, w1, a01);
        s = v128.load32_splat(x0 + o1);
        a10 = vfma(s, w0, a10);
        a11 = vfma(s, w1, a11);
        s = v128.load32_splat(x0 + o2);
        a20 = vfma(s, w0, a20);
        a21 = vfma(s, w1, a21);
        s = v128.load32_splat(x0 + o3);
        a30 = vfma(s, w0, a30);
        a31 = vfma(s, w1, a31);
        s = v128.load32_splat(x0 + o4);
        a40 = vfma(s, w0, a40);
        a41 = vfma(s, w1, a41);
        s = v128.load32_splat(x0 + o5);
        a50 = vfma(s, w0, a50);
        a51 = vfma(s, w1, a51);
        x0 += 4;
      }
      xr += xstep;
    }
    xp += rstep;
  }
  clampStore(yp + <usize>min(5, mr - 1) * ys, a50, a51, nc, vmin, vmax);
  clampStore(yp + <usize>min(4, mr - 1) * ys, a40, a41, nc, vmin, vmax);
  clampStore(yp + <usize>min(3, mr - 1) * ys, a30, a31, nc, vmin, vmax);
  clampStore(yp + <usize>min(2, mr - 1) * ys, a20, a21, nc, vmin, vmax);
  clampStore(yp + <usize>min(1, mr - 1) * ys, a10, a11, nc, vmin, vmax);
  clampStore(yp, a00, a01, nc, vmin, vmax);
}

function conv_f32_direct_5x8_simd(
  mr: i32, nc: i32, xp: usize, pstep: usize, nky: i32, rstep: usize, nkx: i32, xstep: usize,
  nci: i32, wp: usize, wk: usize, yp: usize, ys: usize, vmin: v128, vmax: v128,
): void {
  const o1 = <usize>min(1, mr - 1) * pstep, o2 = <usize>min(2, mr - 1) * pstep;
  const o3 = <usize>min(3, mr - 1) * pstep, o4 = <usize>min(4, mr - 1) * pstep;
  let a00 = v128.load(wp), a01 = v128.load(wp, 16);
  let a10 = a00, a11 = a01, a20 = a00, a21 = a01, a30 = a00, a31 = a01, a40 = a00, a41 = a01;
  for (let ky = 0; ky < nky; ky++) {
    let xr = xp;
    for (let kx = 0; kx < nkx; kx++) {
      let x0 = xr;
      for (let i = 0; i < nci; i++) {
        const w0 = v128.load(wk), w1 = v128.load(wk, 16);
        wk += 32;
        let s = v128.load32_splat(x0);
        a00 = vfma(s, w0, a00);
        a01 = vfma(s, w1, a01);
        s = v128.load32_splat(x0 + o1);
        a10 = vfma(s, w0, a10);
        a11 = vfma(s, w1, a11);
        s = v128.load32_splat(x0 + o2);
        a20 = vfma(s, w0, a20);
        a21 = vfma(s, w1, a21);
        s = v128.load32_splat(x0 + o3);
        a30 = vfma(s, w0, a30);
        a31 = vfma(s, w1, a31);
        s = v128.load32_splat(x0 + o4);
        a40 = vfma(s, w0, a40);
        a41 = vfma(s, w1, a41);
        x0 += 4;
      }
      xr += xstep;
    }
    xp += rstep;
  }
  clampStore(yp + <usize>min(4, mr - 1) * ys, a40, a41, nc, vmin, vmax);
  clampStore(yp + <usize>min(3, mr - 1) * ys, a30, a31, nc, vmin, vmax);
  clampStore(yp + <usize>min(2, mr - 1) * ys, a20, a21, nc, vmin, vmax);
  clampStore(yp + <usize>min(1, mr - 1) * ys, a10, a11, nc, vmin, vmax);
  clampStore(yp, a00, a01, nc, vmin, vmax);
}

function conv_f32_direct_1x8_simd(
  nc: i32, xp: usize, nky: i32, rstep: usize, nkx: i32, xstep: usize, nci: i32, wp: usize,
  wk: usize, wskip: usize, yp: usize, vmin: v128, vmax: v128,
): void {
  let a0 = v128.load(wp), a1 = v128.load(wp, 16);
  for (let ky = 0; ky < nky; ky++) {
    let xr = xp;
    for (let kx = 0; kx < nkx; kx++) {
      let x0 = xr;
      for (let i = 0; i < nci; i++) {
        const s = v128.load32_splat(x0);
        a0 = vfma(s, v128.load(wk), a0);
        a1 = vfma(s, v128.load(wk, 16), a1);
        wk += 32;
        x0 += 4;
      }
      xr += xstep;
    }
    xp += rstep;
    wk += wskip;
  }
  clampStore(yp, a0, a1, nc, vmin, vmax);
}

function conv_f32_direct_1x8_scalar(
  nc: i32, xp: usize, nky: i32, rstep: usize, nkx: i32, xstep: usize, nci: i32, wp: usize,
  wk: usize, wskip: usize, yp: usize, lo: f32, hi: f32,
): void {
  let c0 = load<f32>(wp), c1 = load<f32>(wp, 4), c2 = load<f32>(wp, 8), c3 = load<f32>(wp, 12);
  let c4 = load<f32>(wp, 16), c5 = load<f32>(wp, 20), c6 = load<f32>(wp, 24);
  let c7 = load<f32>(wp, 28);
  for (let ky = 0; ky < nky; ky++) {
    let xr = xp;
    for (let kx = 0; kx < nkx; kx++) {
      let x0 = xr;
      for (let i = 0; i < nci; i++) {
        const v = load<f32>(x0);
        c0 += v * load<f32>(wk);
        c1 += v * load<f32>(wk, 4);
        c2 += v * load<f32>(wk, 8);
        c3 += v * load<f32>(wk, 12);
        c4 += v * load<f32>(wk, 16);
        c5 += v * load<f32>(wk, 20);
        c6 += v * load<f32>(wk, 24);
        c7 += v * load<f32>(wk, 28);
        wk += 32;
        x0 += 4;
      }
      xr += xstep;
    }
    xp += rstep;
    wk += wskip;
  }
  store<f32>(yp, min(max(c0, lo), hi));
  if (nc > 1) store<f32>(yp, min(max(c1, lo), hi), 4);
  if (nc > 2) store<f32>(yp, min(max(c2, lo), hi), 8);
  if (nc > 3) store<f32>(yp, min(max(c3, lo), hi), 12);
  if (nc > 4) store<f32>(yp, min(max(c4, lo), hi), 16);
  if (nc > 5) store<f32>(yp, min(max(c5, lo), hi), 20);
  if (nc > 6) store<f32>(yp, min(max(c6, lo), hi), 24);
  if (nc > 7) store<f32>(yp, min(max(c7, lo), hi), 28);
}

/** First tap index t ≥ 0 with o + t·d ≥ 0 (o the window origin, d the dilation). */
// @ts-ignore: decorator
@inline function firstTap(o: i32, d: i32): i32 {
  return o < 0 ? (d - 1 - o) / d : 0;
}

/** One past the last tap t < k with o + t·d < size; 0 when the window starts past the end. */
// @ts-ignore: decorator
@inline function endTap(o: i32, d: i32, k: i32, size: i32): i32 {
  return o >= size ? 0 : min(k, (size - 1 - o) / d + 1);
}

/**
 * Output pixels [p0, p1) of the flattened n·out_h·out_w range (p1 < 0: all) of a groups = 1
 * convolution of c ≤ DIRECT_MAX_C channels, bias and clamp fused.
 */
export function convF32Direct(
  cp: usize, x: usize, w: usize, y: usize, outMin: f32, outMax: f32, p0: i32, p1: i32,
): void {
  const h = P(cp, 1), wd = P(cp, 2), c = P(cp, 3);
  const kh = P(cp, 4), kw = P(cp, 5), sh = P(cp, 6), sw = P(cp, 7), dh = P(cp, 8), dw = P(cp, 9);
  const pt = P(cp, 10), pl = P(cp, 11), oh = P(cp, 12), ow = P(cp, 13), cout = P(cp, 14);
  const m = P(cp, 0) * oh * ow;
  if (p1 < 0 || p1 > m) p1 = m;
  if (p0 >= p1) return;
  const panelBytes = <usize>(8 + 8 * kh * kw * c) << 2;
  const pix = <usize>c << 2; // bytes per input pixel
  const rowBytes = <usize>wd * pix; // bytes per input row
  const rstep = <usize>dh * rowBytes;
  const pstep = <usize>sw * pix;
  const ys = <usize>cout << 2;
  const kRowW = <usize>(kw * c) << 5; // weight bytes of one kernel row
  // A whole kernel row is one run when the taps are adjacent; else kw runs of c.
  const dense = dw == 1;
  const xstep = <usize>dw * pix;
  // Interior columns [oxLo, oxHi): the whole window row lies inside the input.
  const oxLo = min(ow, (pl + sw - 1) / sw);
  const span = wd - 1 - (kw - 1) * dw + pl;
  const oxHi = max(oxLo, span < 0 ? 0 : min(ow, span / sw + 1));
  const r1 = (p1 - 1) / ow + 1;
  for (let r = p0 / ow; r < r1; r++) {
    const b = r / oh, oy = r - b * oh;
    const ox0 = max(0, p0 - r * ow), ox1 = min(ow, p1 - r * ow);
    const iy0 = oy * sh - pt;
    const ky0 = firstTap(iy0, dh);
    const nky = max(0, endTap(iy0, dh, kh, h) - ky0);
    // Row ky0 of the window (not read when nky = 0).
    const xrow = x + <usize>(b * h + iy0 + ky0 * dh) * rowBytes;
    const wrow = <usize>ky0 * kRowW + 32;
    const yrow = y + <usize>r * <usize>ow * ys;
    // Border pixels (one at a time, horizontal taps clamped), then the interior tiles.
    for (let ox = ox0; ox < ox1; ox++) {
      if (ox >= oxLo && ox < oxHi) {
        if (ASC_FEATURE_SIMD) {
          ox = min(ox1, oxHi) - 1; // the tile loop below takes [oxLo, oxHi)
          continue;
        }
      }
      const ix0 = ox * sw - pl;
      const kx0 = firstTap(ix0, dw);
      const nkx = max(0, endTap(ix0, dw, kw, wd) - kx0);
      const xp = xrow + <usize>(ix0 + kx0 * dw) * pix;
      const wk = wrow + (<usize>(kx0 * c) << 5);
      const wskip = kRowW - (<usize>(nkx * c) << 5);
      const runs = nkx == 0 ? 0 : dense ? 1 : nkx, nci = dense ? nkx * c : c;
      const yp = yrow + <usize>ox * ys;
      for (let n0 = 0; n0 < cout; n0 += 8) {
        const wp = w + <usize>(n0 >> 3) * panelBytes;
        const nc = min(8, cout - n0);
        if (ASC_FEATURE_SIMD) {
          conv_f32_direct_1x8_simd(
            nc, xp, nky, rstep, runs, xstep, nci, wp, wp + wk, wskip, yp + (<usize>n0 << 2),
            f32x4.splat(outMin), f32x4.splat(outMax),
          );
        } else {
          conv_f32_direct_1x8_scalar(
            nc, xp, nky, rstep, runs, xstep, nci, wp, wp + wk, wskip, yp + (<usize>n0 << 2),
            outMin, outMax,
          );
        }
      }
    }
    if (ASC_FEATURE_SIMD) {
      const runs = dense ? 1 : kw, nci = dense ? kw * c : c;
      const t1 = min(ox1, oxHi);
      for (let t0 = max(ox0, oxLo); t0 < t1; t0 += MR) {
        const mr = min(MR, t1 - t0);
        const xp = xrow + <usize>(t0 * sw - pl) * pix;
        const yp = yrow + <usize>t0 * ys;
        for (let n0 = 0; n0 < cout; n0 += 8) {
          const wp = w + <usize>(n0 >> 3) * panelBytes;
          const nc = min(8, cout - n0);
          if (ASC_FEATURE_RELAXED_SIMD) {
            conv_f32_direct_6x8_relaxed(
              mr, nc, xp, pstep, nky, rstep, runs, xstep, nci, wp, wp + wrow,
              yp + (<usize>n0 << 2), ys, f32x4.splat(outMin), f32x4.splat(outMax),
            );
          } else {
            conv_f32_direct_5x8_simd(
              mr, nc, xp, pstep, nky, rstep, runs, xstep, nci, wp, wp + wrow,
              yp + (<usize>n0 << 2), ys, f32x4.splat(outMin), f32x4.splat(outMax),
            );
          }
        }
      }
    }
  }
}
