// Data movement for the training engine's NCHW convolutions (forward im2col + GEMM, backward
// GEMM + col2im) and a blocked 2-D transpose, in f32. The semantics are those of the scalar
// references in src/kernels/reference_im2col.ts, bit for bit:
//   im2col: col[r·ldcol + oy·ow + ox] = x[(ci·h + iy)·w + ix], or padValue outside the image,
//           r = (ci·kh + ky)·kw + kx, iy = oy·sh − pt + ky·dh, ix = ox·sw − pl + kx·dw;
//   col2im: x[(ci·h + iy)·w + ix] += col[r·ldcol + oy·ow + ox] for every in-image tap.
// im2col is a copy, so any order gives the same bits. col2im rounds: it must add the
// contributions to one x element in the reference's order, r ascending. Within one row r the
// map (oy, ox) → (iy, ix) is injective (strides ≥ 1), so an element gets at most one
// contribution per r and the ox loop may be vectorized freely; r stays the outer loop.
//
// Per (r): the output rows whose iy falls in the padding are contiguous runs at both ends of
// the col row (one fill each); per (r, oy) inside the image, the columns whose ix is in the
// image, [oxLo, oxHi), are found once per (r) (they do not depend on oy). Between them, with
// the oy loop specialised for strides 1 and 2:
//   stride 1: a contiguous run — v128 loads/stores (col2im: load, add, store); im2col's 1–3
//             float tail of a run of ≥ 4 is one more vector ending on the run's last float
//             (rewriting a few floats), col2im's is scalar;
//   stride 2: every other float — two v128 loads and one shuffle per 4 outputs (col2im blends
//             the 4 sums back between the untouched odd lanes); im2col's tail is one more
//             block ending on the last float, col2im's is scalar;
//   stride ≥ 3, runs shorter than a vector, and the scalar build: scalar loops.
// Vector loads never reach past the last float a run uses nor before its first, so nothing
// outside the caller's buffers is read or written (no 16-byte slack is required). x and col
// must not overlap.
import { tapBegin, tapEnd } from "../pool/window";

// ---- helpers ------------------------------------------------------------------------------

// n floats of v at dst. In the SIMD builds a tail of 1–3 floats is one more vector store that
// ends at dst + 4n and rewrites a few floats already stored (a copy may overlap itself).
// @ts-ignore: decorator
@inline function fillF32(dst: usize, v: f32, n: i32): void {
  if (ASC_FEATURE_SIMD) {
    if (n >= 4) {
      const vv = f32x4.splat(v);
      let i = 0;
      for (; i + 16 <= n; i += 16) {
        v128.store(dst, vv);
        v128.store(dst, vv, 16);
        v128.store(dst, vv, 32);
        v128.store(dst, vv, 48);
        dst += 64;
      }
      for (; i + 4 <= n; i += 4) {
        v128.store(dst, vv);
        dst += 16;
      }
      if (i < n) v128.store(dst + (<usize>(n - i) << 2) - 16, vv);
      return;
    }
  }
  for (let i = 0; i < n; i++) {
    store<f32>(dst, v);
    dst += 4;
  }
}

// dst[q] = src[q·s] for q < n.
// @ts-ignore: decorator
@inline function gatherF32(dst: usize, src: usize, n: i32, s: i32): void {
  if (ASC_FEATURE_SIMD) {
    if (s == 1 && n >= 4) {
      let q = 0;
      for (; q + 8 <= n; q += 8) {
        const a = v128.load(src);
        const b = v128.load(src, 16);
        v128.store(dst, a);
        v128.store(dst, b, 16);
        src += 32;
        dst += 32;
      }
      if (q + 4 <= n) {
        v128.store(dst, v128.load(src));
        src += 16;
        dst += 16;
        q += 4;
      }
      // Tail: the last 4 floats of the run, overlapping the previous vector.
      if (q < n) {
        const t = <usize>(n - q) << 2;
        v128.store(dst + t - 16, v128.load(src + t - 16));
      }
      return;
    }
    if (s == 2 && n >= 5) {
      // Loads src[2q .. 2q + 7]: q + 4 < n keeps 2q + 7 below 2(n − 1), the last float used.
      let q = 0;
      for (; q + 4 < n; q += 4) {
        const a = v128.load(src);
        const b = v128.load(src, 16);
        v128.store(dst, v128.shuffle<f32>(a, b, 0, 2, 4, 6));
        src += 32;
        dst += 16;
      }
      // Tail (1–4 outputs): outputs n − 4 .. n − 1, the odd lanes of the 8 floats ending on
      // the last one used, src[2n − 9 .. 2n − 2] (n ≥ 5: the first is inside the run).
      const back = <usize>(4 - (n - q)) << 2;
      const a = v128.load(src - 2 * back - 4);
      const b = v128.load(src - 2 * back + 12);
      v128.store(dst - back, v128.shuffle<f32>(a, b, 1, 3, 5, 7));
      return;
    }
  }
  const step = <usize>s << 2;
  for (let q = 0; q < n; q++) {
    store<f32>(dst, load<f32>(src));
    src += step;
    dst += 4;
  }
}

// dst[q·s] += src[q] for q < n, each element exactly once.
// @ts-ignore: decorator
@inline function scatterAddF32(dst: usize, src: usize, n: i32, s: i32): void {
  let q = 0;
  if (ASC_FEATURE_SIMD) {
    if (s == 1 && n >= 4) {
      for (; q + 8 <= n; q += 8) {
        const a = f32x4.add(v128.load(dst), v128.load(src));
        const b = f32x4.add(v128.load(dst, 16), v128.load(src, 16));
        v128.store(dst, a);
        v128.store(dst, b, 16);
        src += 32;
        dst += 32;
      }
      if (q + 4 <= n) {
        v128.store(dst, f32x4.add(v128.load(dst), v128.load(src)));
        src += 16;
        dst += 16;
        q += 4;
      }
      // A 1–3 float tail stays scalar: a vector ending on the run's last float would reload
      // floats just stored, and the store-to-load forwarding stall costs more than it saves.
      for (; q < n; q++) {
        store<f32>(dst, load<f32>(dst) + load<f32>(src));
        src += 4;
        dst += 4;
      }
      return;
    }
    if (s == 2) {
      // dst[2q .. 2q + 7] is read and written back; the odd lanes keep their loaded value
      // (a shuffle, not an add of zero, so −0 and NaN bits survive). Bounded as gatherF32.
      for (; q + 4 < n; q += 4) {
        const a = v128.load(dst);
        const b = v128.load(dst, 16);
        const sum = f32x4.add(v128.shuffle<f32>(a, b, 0, 2, 4, 6), v128.load(src));
        v128.store(dst, v128.shuffle<f32>(sum, a, 0, 5, 1, 7));
        v128.store(dst, v128.shuffle<f32>(sum, b, 2, 5, 3, 7), 16);
        src += 16;
        dst += 32;
      }
    }
  }
  const step = <usize>s << 2;
  for (; q < n; q++) {
    store<f32>(dst, load<f32>(dst) + load<f32>(src));
    src += 4;
    dst += step;
  }
}

// `rows` output rows of one im2col row r: dst rows dstStep bytes apart, src rows (the input
// row of each, at column oxLo's tap) srcStep apart; columns outside [oxLo, oxHi) are padding.
// Inlined with a constant stride for s = 1 and 2, so the stride tests leave the loop.
// @ts-ignore: decorator
@inline function gatherRows(
  dst: usize, dstStep: usize, src: usize, srcStep: usize, rows: i32, oxLo: i32, oxHi: i32,
  ow: i32, s: i32, padValue: f32,
): void {
  const n = oxHi - oxLo;
  const lo = <usize>oxLo << 2, hi = <usize>oxHi << 2;
  for (let i = 0; i < rows; i++) {
    if (oxLo) fillF32(dst, padValue, oxLo);
    gatherF32(dst + lo, src, n, s);
    if (oxHi < ow) fillF32(dst + hi, padValue, ow - oxHi);
    dst += dstStep;
    src += srcStep;
  }
}

// The adjoint of gatherRows: padded columns are skipped.
// @ts-ignore: decorator
@inline function scatterRows(
  dst: usize, dstStep: usize, src: usize, srcStep: usize, rows: i32, n: i32, s: i32,
): void {
  for (let i = 0; i < rows; i++) {
    scatterAddF32(dst, src, n, s);
    dst += dstStep;
    src += srcStep;
  }
}

// ---- im2col / col2im ----------------------------------------------------------------------

/** col[c·kh·kw, oh·ow] (row stride ldcol) from x[c, h, w]; padded taps read padValue. */
export function im2colF32(
  c: i32, h: i32, w: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32,
  pt: i32, pl: i32, oh: i32, ow: i32, x: usize, col: usize, ldcol: i32, padValue: f32,
): void {
  const plane = (<usize>h * <usize>w) << 2;
  const rowBytes = <usize>w << 2;
  const outRow = <usize>ow << 2;
  const ldBytes = <usize>ldcol << 2;
  let dstRow = col;
  for (let ci = 0; ci < c; ci++) {
    const xc = x + <usize>ci * plane;
    for (let ky = 0; ky < kh; ky++) {
      // iy = oy·sh + iy0 is inside the image for oy in [oyLo, oyHi).
      const iy0 = ky * dh - pt;
      const oyLo = min(tapBegin(iy0, sh, 0), oh);
      const oyHi = max(tapEnd(iy0, sh, oh, h), oyLo);
      for (let kx = 0; kx < kw; kx++) {
        const ix0 = kx * dw - pl;
        const oxLo = min(tapBegin(ix0, sw, 0), ow);
        const oxHi = max(tapEnd(ix0, sw, ow, w), oxLo);
        const n = oxHi - oxLo;
        // Rows above and below the image: one contiguous fill each.
        fillF32(dstRow, padValue, oyLo * ow);
        fillF32(dstRow + <usize>oyHi * outRow, padValue, (oh - oyHi) * ow);
        if (oyLo < oyHi) {
          const dst = dstRow + <usize>oyLo * outRow;
          // Start of the run in x; only dereferenced when the run is not empty.
          const src = xc + <usize>(oyLo * sh + iy0) * rowBytes + (<usize>(oxLo * sw + ix0) << 2);
          const srcStep = <usize>sh * rowBytes;
          const rows = oyHi - oyLo;
          const pad = padValue;
          // Whole input rows, back to back in x and in col: one run.
          const whole = sw == 1 && sh == 1 && oxLo == 0 && oxHi == w && ow == w;
          if (whole) gatherF32(dst, src, rows * w, 1);
          else if (sw == 1) gatherRows(dst, outRow, src, srcStep, rows, oxLo, oxHi, ow, 1, pad);
          else if (sw == 2) gatherRows(dst, outRow, src, srcStep, rows, oxLo, oxHi, ow, 2, pad);
          else gatherRows(dst, outRow, src, srcStep, rows, oxLo, oxHi, ow, sw, pad);
        }
        dstRow += ldBytes;
      }
    }
  }
}

/** x[c, h, w] += the adjoint of im2col applied to col (same geometry); r ascending. */
export function col2imF32(
  c: i32, h: i32, w: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32,
  pt: i32, pl: i32, oh: i32, ow: i32, col: usize, ldcol: i32, x: usize,
): void {
  const plane = (<usize>h * <usize>w) << 2;
  const rowBytes = <usize>w << 2;
  const outRow = <usize>ow << 2;
  const ldBytes = <usize>ldcol << 2;
  let srcRow = col;
  for (let ci = 0; ci < c; ci++) {
    const xc = x + <usize>ci * plane;
    for (let ky = 0; ky < kh; ky++) {
      const iy0 = ky * dh - pt;
      const oyLo = min(tapBegin(iy0, sh, 0), oh);
      const oyHi = max(tapEnd(iy0, sh, oh, h), oyLo);
      for (let kx = 0; kx < kw; kx++) {
        const ix0 = kx * dw - pl;
        const oxLo = min(tapBegin(ix0, sw, 0), ow);
        const oxHi = max(tapEnd(ix0, sw, ow, w), oxLo);
        const n = oxHi - oxLo;
        if (n > 0 && oyLo < oyHi) {
          const src = srcRow + <usize>oyLo * outRow + (<usize>oxLo << 2);
          const dst = xc + <usize>(oyLo * sh + iy0) * rowBytes + (<usize>(oxLo * sw + ix0) << 2);
          const dstStep = <usize>sh * rowBytes;
          const rows = oyHi - oyLo;
          const whole = sw == 1 && sh == 1 && oxLo == 0 && n == w && ow == w;
          if (whole) scatterAddF32(dst, src, rows * w, 1);
          else if (sw == 1) scatterRows(dst, dstStep, src, outRow, rows, n, 1);
          else if (sw == 2) scatterRows(dst, dstStep, src, outRow, rows, n, 2);
          else scatterRows(dst, dstStep, src, outRow, rows, n, sw);
        }
        srcRow += ldBytes;
      }
    }
  }
}

// ---- transpose ----------------------------------------------------------------------------

// Tiles of TILE×TILE elements: a tile's source rows and destination rows (32 × 128 bytes
// each) stay in L1 while it is transposed, whatever the leading dimensions.
const TILE: i32 = 32;

// Transposes the 4×4 block at s (rows ls bytes apart) into d (rows ld bytes apart).
// @ts-ignore: decorator
@inline function transpose4x4(s: usize, ls: usize, d: usize, ld: usize): void {
  const r0 = v128.load(s);
  const r1 = v128.load(s + ls);
  const r2 = v128.load(s + 2 * ls);
  const r3 = v128.load(s + 3 * ls);
  const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5); // r0[0] r1[0] r0[1] r1[1]
  const t1 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7); // r0[2] r1[2] r0[3] r1[3]
  const t2 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
  const t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
  v128.store(d, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
  v128.store(d + ld, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7));
  v128.store(d + 2 * ld, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5));
  v128.store(d + 3 * ld, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7));
}

// Scalar transpose of an nr×nc block.
// @ts-ignore: decorator
@inline function transposeScalar(
  nr: i32, nc: i32, s: usize, ls: usize, d: usize, ld: usize,
): void {
  for (let i = 0; i < nr; i++) {
    let p = s + <usize>i * ls;
    let q = d + (<usize>i << 2);
    for (let j = 0; j < nc; j++) {
      store<f32>(q, load<f32>(p));
      p += 4;
      q += ld;
    }
  }
}

/** dst[j·ldDst + i] = src[i·ldSrc + j] for i < rows, j < cols; src and dst must not overlap. */
export function transposeF32(
  rows: i32, cols: i32, src: usize, ldSrc: i32, dst: usize, ldDst: i32,
): void {
  const ls = <usize>ldSrc << 2;
  const ld = <usize>ldDst << 2;
  for (let i0 = 0; i0 < rows; i0 += TILE) {
    const nr = min(TILE, rows - i0);
    for (let j0 = 0; j0 < cols; j0 += TILE) {
      const nc = min(TILE, cols - j0);
      const s = src + <usize>i0 * ls + (<usize>j0 << 2);
      const d = dst + <usize>j0 * ld + (<usize>i0 << 2);
      if (ASC_FEATURE_SIMD) {
        const nr4 = nr & ~3, nc4 = nc & ~3;
        for (let i = 0; i < nr4; i += 4) {
          const si = s + <usize>i * ls;
          const di = d + (<usize>i << 2);
          for (let j = 0; j < nc4; j += 4) {
            transpose4x4(si + (<usize>j << 2), ls, di + <usize>j * ld, ld);
          }
          // Column tail of these 4 rows.
          if (nc4 < nc) {
            transposeScalar(4, nc - nc4, si + (<usize>nc4 << 2), ls, di + <usize>nc4 * ld, ld);
          }
        }
        // Row tail.
        if (nr4 < nr) {
          transposeScalar(nr - nr4, nc, s + <usize>nr4 * ls, ls, d + (<usize>nr4 << 2), ld);
        }
      } else {
        transposeScalar(nr, nc, s, ls, d, ld);
      }
    }
  }
}

// ---- im2row / row2im (NHWC) ---------------------------------------------------------------
// Patch-major rows of a channels-last image, the references' im2rowNhwcRef / row2imNhwcRef:
//   rows[p·ldrow + (ky·kw + kx)·c + ci] = x[(iy·w + ix)·ldx + ci], or padValue outside,
//   p = oy·ow + ox, iy = oy·sh − pt + ky·dh, ix = ox·sw − pl + kx·dw;
//   row2im: x[(iy·w + ix)·ldx + ci] += rows[p·ldrow + (ky·kw + kx)·c + ci] (in-image taps).
// Every tap (p, ky, kx) is a run of c floats in both buffers. Per output pixel the in-image
// taps are ky in [kyLo, kyHi) and kx in [kxLo, kxHi) (found once per oy and per ox); the rest
// of the row is padValue in contiguous fills: ky < kyLo and ky ≥ kyHi are whole kw·c runs, and
// within a kernel row the kx < kxLo and kx ≥ kxHi taps are runs at both ends. When the pixels'
// channels are back to back (ldx == c) and dw == 1, the in-image taps of one kernel row are
// one run of (kxHi − kxLo)·c floats in x as in rows — copied (or added) as one run, which
// also keeps the vector loops busy when c is 1 or 3. Otherwise each tap is its own run.
// Runs use the helpers above with stride 1 (v128 copies with an overlapping last vector;
// f32x4.add with a scalar tail); im2row copies runs under 4 floats, and every run in the
// scalar build, 8 bytes at a time (u64, then a u32 for an odd float); row2im adds them with
// scalar f32 adds. With dilation 1 the in-image taps are found without divisions.
// row2im adds in the reference's order: p ascending (the outer loops), and within one p every
// in-image tap is a different x element (strides ≥ 1), so its runs may go in any order. As
// above, nothing outside the addressed elements is read or written; x and rows must not
// overlap.

// The taps [lo, hi) of a window along one axis that fall inside [0, size): tapBegin/tapEnd
// clamped to [0, kn], without their divisions when the dilation is 1 (the common case).
// @ts-ignore: decorator
@inline function tapsLo(start: i32, d: i32, kn: i32): i32 {
  if (start >= 0) return 0;
  return d == 1 ? min(-start, kn) : min(tapBegin(start, d, 0), kn);
}

// @ts-ignore: decorator
@inline function tapsHi(start: i32, d: i32, kn: i32, size: i32, lo: i32): i32 {
  if (start >= size) return lo;
  return max(d == 1 ? min(kn, size - start) : tapEnd(start, d, kn, size), lo);
}

// n floats from src to dst (a run of im2row). Runs under 4 floats — c = 1, 2, 3 — and the
// scalar build copy 8 bytes at a time: a copy, so the bits are those of the floats.
// @ts-ignore: decorator
@inline function copyRunF32(dst: usize, src: usize, n: i32): void {
  if (ASC_FEATURE_SIMD) {
    if (n >= 4) {
      gatherF32(dst, src, n, 1);
      return;
    }
  }
  let i = 0;
  for (; i + 2 <= n; i += 2) {
    store<u64>(dst, load<u64>(src));
    src += 8;
    dst += 8;
  }
  if (i < n) store<u32>(dst, load<u32>(src));
}

/** rows[oh·ow, kh·kw·c] (row stride ldrow) from the NHWC pixels x (pixel stride ldx). */
export function im2rowNhwcF32(
  c: i32, h: i32, w: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32,
  pt: i32, pl: i32, oh: i32, ow: i32, x: usize, ldx: i32, rows: usize, ldrow: i32,
  padValue: f32,
): void {
  const pix = <usize>ldx << 2;
  const xRow = <usize>w * pix;
  const tap = <usize>c << 2;
  const kRun = kw * c;
  const kRunBytes = <usize>kRun << 2;
  const ldBytes = <usize>ldrow << 2;
  const yStep = <usize>dh * xRow;
  const xStep = <usize>dw * pix;
  const adjacent = dw == 1 && ldx == c;
  let dst = rows;
  for (let oy = 0; oy < oh; oy++) {
    const iy0 = oy * sh - pt;
    const kyLo = tapsLo(iy0, dh, kh);
    const kyHi = tapsHi(iy0, dh, kh, h, kyLo);
    for (let ox = 0; ox < ow; ox++) {
      const ix0 = ox * sw - pl;
      const kxLo = tapsLo(ix0, dw, kw);
      const kxHi = tapsHi(ix0, dw, kw, w, kxLo);
      // Kernel rows above and below the image: one fill each.
      if (kyLo) fillF32(dst, padValue, kyLo * kRun);
      if (kyHi < kh) fillF32(dst + <usize>kyHi * kRunBytes, padValue, (kh - kyHi) * kRun);
      const n = kxHi - kxLo;
      let d = dst + <usize>kyLo * kRunBytes;
      if (n <= 0) {
        fillF32(d, padValue, (kyHi - kyLo) * kRun); // no column inside: all padding
      } else {
        // The first in-image tap of the first in-image kernel row.
        let s = x + <usize>(iy0 + kyLo * dh) * xRow + <usize>(ix0 + kxLo * dw) * pix;
        const lo = <usize>kxLo * tap, hi = <usize>kxHi * tap;
        for (let ky = kyLo; ky < kyHi; ky++) {
          if (kxLo) fillF32(d, padValue, kxLo * c);
          if (adjacent) {
            copyRunF32(d + lo, s, n * c);
          } else {
            let dd = d + lo, ss = s;
            for (let kx = 0; kx < n; kx++) {
              copyRunF32(dd, ss, c);
              dd += tap;
              ss += xStep;
            }
          }
          if (kxHi < kw) fillF32(d + hi, padValue, (kw - kxHi) * c);
          d += kRunBytes;
          s += yStep;
        }
      }
      dst += ldBytes;
    }
  }
}

/** x (NHWC, pixel stride ldx) += the adjoint of im2row applied to rows; p ascending. */
export function row2imNhwcF32(
  c: i32, h: i32, w: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32,
  pt: i32, pl: i32, oh: i32, ow: i32, rows: usize, ldrow: i32, x: usize, ldx: i32,
): void {
  const pix = <usize>ldx << 2;
  const xRow = <usize>w * pix;
  const tap = <usize>c << 2;
  const kRunBytes = <usize>(kw * c) << 2;
  const ldBytes = <usize>ldrow << 2;
  const yStep = <usize>dh * xRow;
  const xStep = <usize>dw * pix;
  const adjacent = dw == 1 && ldx == c;
  let src = rows;
  for (let oy = 0; oy < oh; oy++) {
    const iy0 = oy * sh - pt;
    const kyLo = tapsLo(iy0, dh, kh);
    const kyHi = tapsHi(iy0, dh, kh, h, kyLo);
    for (let ox = 0; ox < ow; ox++) {
      const ix0 = ox * sw - pl;
      const kxLo = tapsLo(ix0, dw, kw);
      const kxHi = tapsHi(ix0, dw, kw, w, kxLo);
      const n = kxHi - kxLo;
      if (n > 0 && kyLo < kyHi) {
        let s = src + <usize>kyLo * kRunBytes + <usize>kxLo * tap;
        let d = x + <usize>(iy0 + kyLo * dh) * xRow + <usize>(ix0 + kxLo * dw) * pix;
        for (let ky = kyLo; ky < kyHi; ky++) {
          if (adjacent) {
            scatterAddF32(d, s, n * c, 1);
          } else {
            let dd = d, ss = s;
            for (let kx = 0; kx < n; kx++) {
              scatterAddF32(dd, ss, c, 1);
              dd += xStep;
              ss += tap;
            }
          }
          s += kRunBytes;
          d += yStep;
        }
      }
      src += ldBytes;
    }
  }
}
