// The training engine's data-movement kernels (kernels/conv/im2col.ts) on buffers resident in
// a kernel module's memory: im2col and its adjoint col2im over one image's CHW planes, and a
// blocked f32 transpose. Semantics (bit for bit, in every build) are the scalar references of
// reference_im2col.ts. Every check runs before the kernel is called, so a bad geometry or a
// buffer too small for it throws a typed error and never touches memory.
import type { KernelModule } from "./module.ts";
import type { Im2colGeometry } from "./reference_im2col.ts";
import { MAX_DIM } from "./validate.ts";
import { ArgumentError, ShapeError } from "../errors.ts";

/** Largest buffer a kernel call may address: byte offsets within stay exact i32 values. */
const MAX_BYTES = 0x7fffffff;

function positive(what: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0 || v > MAX_DIM) {
    throw new ShapeError(`${what} must be a positive integer ≤ ${MAX_DIM}, got ${v}`);
  }
}

function nonNegative(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > MAX_DIM) {
    throw new ShapeError(`${what} must be a non-negative integer ≤ ${MAX_DIM}, got ${v}`);
  }
}

function pointer(what: string, p: number): void {
  if (!Number.isInteger(p) || p <= 0 || p % 4 !== 0) {
    throw new ArgumentError(`${what} must be a 4-byte aligned heap offset, got ${p}`);
  }
}

function bytesOf(what: string, elements: number): number {
  const bytes = elements * 4;
  if (bytes > MAX_BYTES) {
    throw new ShapeError(`${what} needs ${bytes} bytes, more than 32-bit indexing allows`);
  }
  return bytes;
}

function disjoint(a: string, pa: number, na: number, b: string, pb: number, nb: number): void {
  if (pa < pb + nb && pb < pa + na) throw new ArgumentError(`${a} and ${b} overlap`);
}

/**
 * Output size of a window: floor((in + padBegin + padEnd − dilation·(k − 1) − 1)/stride) + 1,
 * ShapeError when < 1.
 */
export function windowOut(
  input: number,
  k: number,
  stride: number,
  dilation: number,
  padBegin: number,
  padEnd: number,
): number {
  positive("input size", input);
  positive("kernel size", k);
  positive("stride", stride);
  positive("dilation", dilation);
  nonNegative("leading pad", padBegin);
  nonNegative("trailing pad", padEnd);
  const span = dilation * (k - 1) + 1;
  const out = Math.floor((input + padBegin + padEnd - span) / stride) + 1;
  if (out < 1) {
    throw new ShapeError(
      `window of ${span} (kernel ${k}, dilation ${dilation}) is larger than the padded input ` +
        `${input + padBegin + padEnd}`,
    );
  }
  return out;
}

/**
 * One axis of the geometry. The trailing pad is implicit (the reference has leading pads only):
 * `out` is accepted when the window formula gives it for some trailing pad 0 ≤ pe ≤ MAX_DIM,
 * i.e. every window starts inside the input padded by `pad` before and pe after it. That is
 * out ≥ windowOut(size, k, s, d, pad, 0) when the window fits without a trailing pad (fewer
 * windows would be a negative pad, a crop), and the smallest such pe within MAX_DIM.
 */
function checkAxis(
  name: string,
  size: number,
  k: number,
  s: number,
  d: number,
  pad: number,
  out: number,
): void {
  const span = d * (k - 1) + 1;
  if (span > MAX_DIM) {
    throw new ShapeError(`${name}: dilated window of ${span} exceeds the limit of ${MAX_DIM}`);
  }
  const least = size + pad >= span ? Math.floor((size + pad - span) / s) + 1 : 1;
  if (out < least) {
    throw new ShapeError(
      `${name}: output ${out} is smaller than the ${least} windows that fit without trailing ` +
        `padding (that would be a negative trailing pad)`,
    );
  }
  const trailing = (out - 1) * s + span - size - pad;
  if (trailing > MAX_DIM) {
    throw new ShapeError(
      `${name}: output ${out} needs a trailing pad of ${trailing}, more than ${MAX_DIM}`,
    );
  }
}

interface Sizes {
  /** Bytes of x: c·h·w floats. */
  x: number;
  /** Bytes of col: rows c·kh·kw, row stride ldcol, the last row oh·ow long. */
  col: number;
}

function checkGeometry(g: Im2colGeometry, ldcol: number): Sizes {
  if (g === null || typeof g !== "object") throw new ArgumentError(`geometry must be an object`);
  positive("channels c", g.c);
  positive("input height h", g.h);
  positive("input width w", g.w);
  positive("kernel height kh", g.kh);
  positive("kernel width kw", g.kw);
  positive("stride sh", g.sh);
  positive("stride sw", g.sw);
  positive("dilation dh", g.dh);
  positive("dilation dw", g.dw);
  nonNegative("top pad pt", g.pt);
  nonNegative("left pad pl", g.pl);
  positive("output height oh", g.oh);
  positive("output width ow", g.ow);
  checkAxis("height", g.h, g.kh, g.sh, g.dh, g.pt, g.oh);
  checkAxis("width", g.w, g.kw, g.sw, g.dw, g.pl, g.ow);
  const cols = g.oh * g.ow;
  if (!Number.isInteger(ldcol) || ldcol < cols || ldcol > MAX_DIM) {
    throw new ShapeError(
      `ldcol must be an integer ≥ oh·ow = ${cols} (and ≤ ${MAX_DIM}), got ${ldcol}`,
    );
  }
  const rows = g.c * g.kh * g.kw;
  return {
    x: bytesOf(`x of ${g.c}×${g.h}×${g.w}`, g.c * g.h * g.w),
    col: bytesOf(`col of ${rows}×${cols} (ldcol ${ldcol})`, (rows - 1) * ldcol + cols),
  };
}

/** Two disjoint f32 buffers a kernel reads and writes: pointers, heap extents, no overlap. */
function checkPair(
  mod: KernelModule,
  a: [name: string, ptr: number, bytes: number],
  b: [name: string, ptr: number, bytes: number],
): void {
  pointer(a[0], a[1]);
  pointer(b[0], b[1]);
  mod.heap.check(a[0], a[1], a[2]);
  mod.heap.check(b[0], b[1], b[2]);
  disjoint(a[0], a[1], a[2], b[0], b[1], b[2]);
}

function checkPadValue(padValue: number): void {
  if (typeof padValue !== "number" || Number.isNaN(padValue)) {
    throw new ArgumentError(`padValue must be a number, got ${padValue}`);
  }
}

/** The window geometry in the kernels' argument order. */
function geoArgs(g: Im2colGeometry) {
  return [g.c, g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl, g.oh, g.ow] as const;
}

/**
 * im2col of one image: col[r·ldcol + p] = x[(ci·h + iy)·w + ix], or padValue (default 0) for
 * taps outside the image (reference_im2col.ts). x and col are byte offsets of f32 buffers in
 * mod's memory; ldcol counts elements.
 */
export function im2colResident(
  mod: KernelModule,
  g: Im2colGeometry,
  x: number,
  col: number,
  ldcol: number,
  padValue = 0,
): void {
  const sizes = checkGeometry(g, ldcol);
  checkPadValue(padValue);
  checkPair(mod, ["x", x, sizes.x], ["col", col, sizes.col]);
  mod.exports.sqz_f32_im2col(
    ...geoArgs(g),
    x,
    col,
    ldcol,
    padValue,
  );
}

/** col2im of one image, accumulating into x in the reference's order (bit-identical sums). */
export function col2imResident(
  mod: KernelModule,
  g: Im2colGeometry,
  col: number,
  ldcol: number,
  x: number,
): void {
  const sizes = checkGeometry(g, ldcol);
  checkPair(mod, ["x", x, sizes.x], ["col", col, sizes.col]);
  mod.exports.sqz_f32_col2im(
    ...geoArgs(g),
    col,
    ldcol,
    x,
  );
}

/** dst[j·ldDst + i] = src[i·ldSrc + j] for i < rows, j < cols; src and dst must not overlap. */
export function transposeResident(
  mod: KernelModule,
  rows: number,
  cols: number,
  src: number,
  ldSrc: number,
  dst: number,
  ldDst: number,
): void {
  positive("rows", rows);
  positive("cols", cols);
  if (!Number.isInteger(ldSrc) || ldSrc < cols || ldSrc > MAX_DIM) {
    throw new ShapeError(`ldSrc must be an integer ≥ cols = ${cols}, got ${ldSrc}`);
  }
  if (!Number.isInteger(ldDst) || ldDst < rows || ldDst > MAX_DIM) {
    throw new ShapeError(`ldDst must be an integer ≥ rows = ${rows}, got ${ldDst}`);
  }
  const srcBytes = bytesOf(`src of ${rows}×${cols}`, (rows - 1) * ldSrc + cols);
  const dstBytes = bytesOf(`dst of ${cols}×${rows}`, (cols - 1) * ldDst + rows);
  checkPair(mod, ["src", src, srcBytes], ["dst", dst, dstBytes]);
  mod.exports.sqz_f32_transpose(rows, cols, src, ldSrc, dst, ldDst);
}

// ---- im2row / row2im (NHWC) ---------------------------------------------------------------

interface NhwcSizes {
  /** Bytes of x: h·w pixels ldx floats apart, the last one c floats long. */
  x: number;
  /** Bytes of rows: oh·ow rows ldrow floats apart, the last one kh·kw·c floats long. */
  rows: number;
}

function checkNhwcGeometry(g: Im2colGeometry, ldx: number, ldrow: number): NhwcSizes {
  // The window checks of the CHW kernels. The CHW byte sizes they also bound (c·h·w floats
  // and c·kh·kw·oh·ow floats with ldcol = oh·ow) never exceed the NHWC extents below, so they
  // reject nothing these would accept.
  checkGeometry(g, g?.oh * g?.ow);
  if (!Number.isInteger(ldx) || ldx < g.c || ldx > MAX_DIM) {
    throw new ShapeError(`ldx must be an integer ≥ c = ${g.c} (and ≤ ${MAX_DIM}), got ${ldx}`);
  }
  const k = g.kh * g.kw * g.c;
  if (!Number.isInteger(ldrow) || ldrow < k || ldrow > MAX_DIM) {
    throw new ShapeError(
      `ldrow must be an integer ≥ kh·kw·c = ${k} (and ≤ ${MAX_DIM}), got ${ldrow}`,
    );
  }
  const pixels = g.h * g.w, patches = g.oh * g.ow;
  return {
    x: bytesOf(`x of ${g.h}×${g.w}×${g.c} (ldx ${ldx})`, (pixels - 1) * ldx + g.c),
    rows: bytesOf(`rows of ${patches}×${k} (ldrow ${ldrow})`, (patches - 1) * ldrow + k),
  };
}

/**
 * im2row of one channels-last image: rows[p·ldrow + (ky·kw + kx)·c + ci] =
 * x[(iy·w + ix)·ldx + ci], or padValue (default 0) for taps outside the image
 * (reference_im2col.ts im2rowNhwcRef). x and rows are byte offsets of f32 buffers in mod's
 * memory (x may start at a group's first channel); ldx ≥ c and ldrow ≥ kh·kw·c count elements.
 */
export function im2rowNhwcResident(
  mod: KernelModule,
  g: Im2colGeometry,
  x: number,
  ldx: number,
  rows: number,
  ldrow: number,
  padValue = 0,
): void {
  const sizes = checkNhwcGeometry(g, ldx, ldrow);
  checkPadValue(padValue);
  checkPair(mod, ["x", x, sizes.x], ["rows", rows, sizes.rows]);
  mod.exports.sqz_f32_im2row_nhwc(
    ...geoArgs(g),
    x,
    ldx,
    rows,
    ldrow,
    padValue,
  );
}

/** row2im of one channels-last image, accumulating into x in the reference's order. */
export function row2imNhwcResident(
  mod: KernelModule,
  g: Im2colGeometry,
  rows: number,
  ldrow: number,
  x: number,
  ldx: number,
): void {
  const sizes = checkNhwcGeometry(g, ldx, ldrow);
  checkPair(mod, ["x", x, sizes.x], ["rows", rows, sizes.rows]);
  mod.exports.sqz_f32_row2im_nhwc(
    ...geoArgs(g),
    rows,
    ldrow,
    x,
    ldx,
  );
}
