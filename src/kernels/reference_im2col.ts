// Scalar references of the training data-movement kernels (kernels/conv/im2col.ts): im2col and
// col2im over one image's CHW planes, the layout sqz's training engine keeps (NCHW, as the IR).
//
// Geometry (one group of one image): x holds `c` planes of h×w floats; the window is kh×kw
// with strides (sh, sw), dilations (dh, dw) and top/left padding (pt, pl); the output is oh×ow.
// col is the matrix [c·kh·kw, oh·ow] with row stride `ldcol` (≥ oh·ow, so several images can sit
// side by side: image n at column offset n·oh·ow of a [K, N·oh·ow] matrix). Row index
// r = (ci·kh + ky)·kw + kx — the flattening of an OIHW weight's [Cin/g, kh, kw] — and column
// p = oy·ow + ox:
//   col[r·ldcol + p] = x[(ci·h + iy)·w + ix]   with iy = oy·sh − pt + ky·dh, ix = ox·sw − pl + kx·dw
//                    = padValue                where (iy, ix) falls outside the image
// padValue is 0 for convolution and +1 for the binary layers' one-padding (src/ops/sqz_lowbit.ts).
// col2im is the adjoint: x[(ci·h + iy)·w + ix] += col[r·ldcol + p] for every in-image tap, in
// the order r ascending, then p ascending (the order fixes the float rounding).

export interface Im2colGeometry {
  c: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  pt: number;
  pl: number;
  oh: number;
  ow: number;
}

export function im2colRef(
  g: Im2colGeometry,
  x: Float32Array,
  xOff: number,
  col: Float32Array,
  colOff: number,
  ldcol: number,
  padValue = 0,
): void {
  for (let ci = 0; ci < g.c; ci++) {
    for (let ky = 0; ky < g.kh; ky++) {
      for (let kx = 0; kx < g.kw; kx++) {
        const row = colOff + ((ci * g.kh + ky) * g.kw + kx) * ldcol;
        for (let oy = 0; oy < g.oh; oy++) {
          const iy = oy * g.sh - g.pt + ky * g.dh;
          for (let ox = 0; ox < g.ow; ox++) {
            const ix = ox * g.sw - g.pl + kx * g.dw;
            col[row + oy * g.ow + ox] = iy >= 0 && iy < g.h && ix >= 0 && ix < g.w
              ? x[xOff + (ci * g.h + iy) * g.w + ix]
              : padValue;
          }
        }
      }
    }
  }
}

export function col2imRef(
  g: Im2colGeometry,
  col: Float32Array,
  colOff: number,
  ldcol: number,
  x: Float32Array,
  xOff: number,
): void {
  for (let ci = 0; ci < g.c; ci++) {
    for (let ky = 0; ky < g.kh; ky++) {
      for (let kx = 0; kx < g.kw; kx++) {
        const row = colOff + ((ci * g.kh + ky) * g.kw + kx) * ldcol;
        for (let oy = 0; oy < g.oh; oy++) {
          const iy = oy * g.sh - g.pt + ky * g.dh;
          if (iy < 0 || iy >= g.h) continue;
          for (let ox = 0; ox < g.ow; ox++) {
            const ix = ox * g.sw - g.pl + kx * g.dw;
            if (ix < 0 || ix >= g.w) continue;
            x[xOff + (ci * g.h + iy) * g.w + ix] += col[row + oy * g.ow + ox];
          }
        }
      }
    }
  }
}

// im2row / row2im: patches of a channels-last (NHWC) image stored patch-major, the layout in
// which the patch matrix is a GEMM's A operand (the weights are then the small B). The image is
// h·w pixels of `ldx` floats each (ldx ≥ c: the channel count of the whole tensor), and the
// patches read channels [0, c) of each pixel (a group offsets x by its first channel). rows is
// [oh·ow, kh·kw·c] with row stride `ldrow` (≥ kh·kw·c); column r = (ky·kw + kx)·c + ci, the
// (ky, kx, ci) order of an OHWI weight — the order the NHWC inference kernels use:
//   rows[p·ldrow + r] = x[(iy·w + ix)·ldx + ci]  (padValue outside the image), p = oy·ow + ox
// row2im is the adjoint: x[(iy·w + ix)·ldx + ci] += rows[p·ldrow + r], in the order p ascending,
// then r ascending (within one p every in-image (ky, kx, ci) is a different x element).
export function im2rowNhwcRef(
  g: Im2colGeometry,
  x: Float32Array,
  xOff: number,
  ldx: number,
  rows: Float32Array,
  rowsOff: number,
  ldrow: number,
  padValue = 0,
): void {
  for (let oy = 0; oy < g.oh; oy++) {
    for (let ox = 0; ox < g.ow; ox++) {
      const base = rowsOff + (oy * g.ow + ox) * ldrow;
      for (let ky = 0; ky < g.kh; ky++) {
        const iy = oy * g.sh - g.pt + ky * g.dh;
        for (let kx = 0; kx < g.kw; kx++) {
          const ix = ox * g.sw - g.pl + kx * g.dw;
          const inside = iy >= 0 && iy < g.h && ix >= 0 && ix < g.w;
          const r = base + (ky * g.kw + kx) * g.c, src = xOff + (iy * g.w + ix) * ldx;
          for (let ci = 0; ci < g.c; ci++) rows[r + ci] = inside ? x[src + ci] : padValue;
        }
      }
    }
  }
}

export function row2imNhwcRef(
  g: Im2colGeometry,
  rows: Float32Array,
  rowsOff: number,
  ldrow: number,
  x: Float32Array,
  xOff: number,
  ldx: number,
): void {
  for (let oy = 0; oy < g.oh; oy++) {
    for (let ox = 0; ox < g.ow; ox++) {
      const base = rowsOff + (oy * g.ow + ox) * ldrow;
      for (let ky = 0; ky < g.kh; ky++) {
        const iy = oy * g.sh - g.pt + ky * g.dh;
        if (iy < 0 || iy >= g.h) continue;
        for (let kx = 0; kx < g.kw; kx++) {
          const ix = ox * g.sw - g.pl + kx * g.dw;
          if (ix < 0 || ix >= g.w) continue;
          const r = base + (ky * g.kw + kx) * g.c, dst = xOff + (iy * g.w + ix) * ldx;
          for (let ci = 0; ci < g.c; ci++) x[dst + ci] += rows[r + ci];
        }
      }
    }
  }
}
