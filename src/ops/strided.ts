// Strided copies: the one data-movement kernel behind Transpose, Slice, Expand, Tile, Pad,
// DepthToSpace and SpaceToDepth. Each of them is "walk an index space, read the source at
// Σ idx·srcStride, write the destination at Σ idx·dstStride"; only the strides differ.
import type { TensorData, TensorType } from "../graph/tensor.ts";
import { isBig } from "./tensor_util.ts";

/**
 * Any typed array seen only as element storage. Data-movement ops never compute on elements,
 * so one code path serves every dtype (BigInt64Array included) as long as source and
 * destination have the same type, which the ops guarantee.
 */
export interface Elems {
  [i: number]: unknown;
  readonly length: number;
  set(a: Elems, offset?: number): void;
  subarray(begin: number, end?: number): Elems;
  fill(v: unknown, begin?: number, end?: number): unknown;
}

export const elems = (d: TensorData): Elems => d as unknown as Elems;

/**
 * The same bytes as 8-, 16- or 32-bit integers, and how many words make one element (2 for
 * 64-bit types). Copies through these views never box BigInts or canonicalize NaN bits, and
 * the copy loops see at most three array types, so their element access stays fast.
 */
export function words(d: TensorData): [Elems, number] {
  const b = d.BYTES_PER_ELEMENT;
  if (b === 1) {
    return [
      elems(d instanceof Uint8Array ? d : new Uint8Array(d.buffer, d.byteOffset, d.length)),
      1,
    ];
  }
  if (b === 2) {
    return [
      elems(d instanceof Uint16Array ? d : new Uint16Array(d.buffer, d.byteOffset, d.length)),
      1,
    ];
  }
  const k = b / 4;
  const w = d instanceof Int32Array ? d : new Int32Array(d.buffer, d.byteOffset, d.length * k);
  return [elems(w), k];
}

/** Below this run length an element loop beats subarray()+set() (which allocate a view). */
const SET_MIN = 16;
/** Tile edge of the blocked 2-D transpose: 32×32 elements stay in L1 for every dtype. */
const TILE = 32;

/**
 * dst[dstOff + Σ i_d·dstStr_d] = src[srcOff + Σ i_d·srcStr_d] for every index i of `shape`.
 * Strides may be 0 (broadcast) or negative (reversed slices).
 */
export function copyStrided(
  shape: readonly number[],
  srcData: TensorData,
  srcOff: number,
  srcStr: readonly number[],
  dstData: TensorData,
  dstOff: number,
  dstStr: readonly number[],
): void {
  const [src, k] = words(srcData), [dst] = words(dstData);
  if (k !== 1) {
    // 64-bit elements: a trailing dim of two contiguous words.
    shape = [...shape, k];
    srcStr = [...srcStr.map((s) => s * k), 1];
    dstStr = [...dstStr.map((s) => s * k), 1];
    srcOff *= k;
    dstOff *= k;
  }
  // Drop unit dims, then merge neighbours that are contiguous in both tensors, so a plain
  // copy becomes one run and NCHW→NHWC becomes a batch of 2-D transposes.
  const n: number[] = [], ss: number[] = [], ds: number[] = [];
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 0) return;
    if (shape[d] === 1) continue;
    const j = n.length - 1;
    if (j >= 0 && ss[j] === srcStr[d] * shape[d] && ds[j] === dstStr[d] * shape[d]) {
      n[j] *= shape[d];
      ss[j] = srcStr[d];
      ds[j] = dstStr[d];
    } else {
      n.push(shape[d]);
      ss.push(srcStr[d]);
      ds.push(dstStr[d]);
    }
  }
  const r = n.length;
  if (r === 0) {
    dst[dstOff] = src[srcOff];
    return;
  }
  // Blocked transpose when the destination's inner dim walks the source with a large stride
  // while the next-outer dim is the source's contiguous one.
  const transpose2d = r >= 2 && ds[r - 1] === 1 && ss[r - 2] === 1 && ss[r - 1] !== 0 &&
    n[r - 1] >= 4 && n[r - 2] >= 4;
  // The two innermost dims run in a kernel; the rest in an odometer.
  const outer = Math.max(r - 2, 0);
  const idx = new Array<number>(outer).fill(0);
  let so = srcOff, dOff = dstOff;
  for (;;) {
    if (r === 1) copyRun(n[0], src, so, ss[0], dst, dOff, ds[0]);
    else if (transpose2d) {
      transposeBlock(n[r - 2], n[r - 1], src, so, ss[r - 1], dst, dOff, ds[r - 2]);
    } else {copy2d(
        n[r - 2],
        n[r - 1],
        src,
        so,
        ss[r - 2],
        ss[r - 1],
        dst,
        dOff,
        ds[r - 2],
        ds[r - 1],
      );}
    // Odometer over the outer dims, updating offsets incrementally.
    let d = outer - 1;
    for (; d >= 0; d--) {
      so += ss[d];
      dOff += ds[d];
      if (++idx[d] < n[d]) break;
      so -= ss[d] * n[d];
      dOff -= ds[d] * n[d];
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

/** rows × len elements; short rows (DepthToSpace's 2-wide blocks) stay in one loop nest. */
function copy2d(
  rows: number,
  len: number,
  src: Elems,
  so: number,
  sRow: number,
  sStr: number,
  dst: Elems,
  dOff: number,
  dRow: number,
  dStr: number,
): void {
  if (len >= SET_MIN) {
    for (let i = 0; i < rows; i++, so += sRow, dOff += dRow) {
      copyRun(len, src, so, sStr, dst, dOff, dStr);
    }
    return;
  }
  if (rows >= 64) {
    // Few long columns (an RGB image going NCHW → NHWC): the long loop innermost.
    for (let j = 0; j < len; j++) {
      for (let i = 0, s = so + j * sStr, o = dOff + j * dStr; i < rows; i++, s += sRow, o += dRow) {
        dst[o] = src[s];
      }
    }
    return;
  }
  for (let i = 0; i < rows; i++, so += sRow, dOff += dRow) {
    for (let j = 0, s = so, o = dOff; j < len; j++, s += sStr, o += dStr) dst[o] = src[s];
  }
}

function copyRun(
  len: number,
  src: Elems,
  so: number,
  sStr: number,
  dst: Elems,
  dOff: number,
  dStr: number,
): void {
  if (dStr === 1) {
    if (sStr === 1 && len >= SET_MIN) {
      dst.set(src.subarray(so, so + len), dOff);
      return;
    }
    if (sStr === 0) {
      dst.fill(src[so], dOff, dOff + len);
      return;
    }
  }
  for (let i = 0; i < len; i++, so += sStr, dOff += dStr) dst[dOff] = src[so];
}

/**
 * dst[dOff + i·dRow + j] = src[so + i + j·sCol] for i < rows, j < cols, in cache tiles. Four
 * rows at a time, so each source cache line read serves four writes (2× over one row).
 */
function transposeBlock(
  rows: number,
  cols: number,
  src: Elems,
  so: number,
  sCol: number,
  dst: Elems,
  dOff: number,
  dRow: number,
): void {
  for (let i0 = 0; i0 < rows; i0 += TILE) {
    const i1 = Math.min(i0 + TILE, rows);
    for (let j0 = 0; j0 < cols; j0 += TILE) {
      const j1 = Math.min(j0 + TILE, cols);
      let i = i0;
      for (; i + 4 <= i1; i += 4) {
        let s = so + i + j0 * sCol;
        const o0 = dOff + i * dRow, o1 = o0 + dRow, o2 = o1 + dRow, o3 = o2 + dRow;
        for (let j = j0; j < j1; j++, s += sCol) {
          dst[o0 + j] = src[s];
          dst[o1 + j] = src[s + 1];
          dst[o2 + j] = src[s + 2];
          dst[o3 + j] = src[s + 3];
        }
      }
      for (; i < i1; i++) {
        let s = so + i + j0 * sCol;
        const o = dOff + i * dRow;
        for (let j = j0; j < j1; j++, s += sCol) dst[o + j] = src[s];
      }
    }
  }
}

/** A number as an element of `type` (float16 as half bits, int64 as BigInt, bool as 0/1). */
export function scalarOf(type: TensorType, v: number): number | bigint {
  if (isBig(type)) return BigInt(Math.trunc(Number.isFinite(v) ? v : 0));
  if (type === "float16") return toHalfBits(v);
  if (type === "bool") return v ? 1 : 0;
  return v;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE binary16 bits of v, rounded to nearest even. */
export function toHalfBits(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++; // may carry into the exponent: correct
  return sign | h;
}
