// Mini-batches for in-memory training data: a deterministic sample order per epoch and row
// gathering into batch buffers.
//
// Order: epoch e of a run with seed s visits the samples in a Fisher–Yates permutation of
// 0..n−1 drawn from mulberry32 (seededRandom of src/eval/metrics.ts) seeded with mixSeed(s, e),
// so a resumed job replays exactly the batches it would have seen, and every epoch differs.
// Batches are consecutive runs of batchSize indices of that permutation; the last is smaller
// unless dropLast (then it is left out).
import { ArgumentError, ShapeError } from "../errors.ts";
import { seededRandom } from "../eval/metrics.ts";

function checkInt(v: number, what: string, min: number): void {
  if (!Number.isSafeInteger(v) || v < min) {
    throw new ArgumentError(`${what} must be an integer ≥ ${min}, got ${v}`);
  }
}

/** murmur3's 32-bit finalizer: every input bit flips about half the output bits. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The 32-bit PRNG seed of (seed, epoch). Hashing (rather than seed + epoch) keeps runs with
 * neighbouring seeds from sharing epochs shifted by one. Seeds beyond 32 bits keep their high bits.
 */
export function mixSeed(seed: number, epoch: number): number {
  const hi = Math.floor(seed / 4294967296);
  const h = fmix32((seed >>> 0) ^ fmix32(hi ^ 0x9e3779b9));
  return fmix32(h ^ fmix32((epoch >>> 0) + 0x7f4a7c15));
}

/** Deterministic mini-batch order: for epoch e, a Fisher–Yates permutation of 0..n-1 drawn from a PRNG seeded with (seed, e), cut into batches of batchSize (the last one smaller unless dropLast). */
export function epochBatches(
  n: number,
  batchSize: number,
  seed: number,
  epoch: number,
  dropLast = false,
): Int32Array[] {
  checkInt(n, "epochBatches: n", 0);
  checkInt(batchSize, "epochBatches: batchSize", 1);
  checkInt(seed, "epochBatches: seed", Number.MIN_SAFE_INTEGER);
  checkInt(epoch, "epochBatches: epoch", 0);
  const random = seededRandom(mixSeed(seed, epoch));
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  const out: Int32Array[] = [];
  for (let b = 0; b < n; b += batchSize) {
    if (dropLast && b + batchSize > n) break;
    // Views of one permutation buffer: no copy, and consumers only read them.
    out.push(perm.subarray(b, Math.min(b + batchSize, n)));
  }
  return out;
}

function checkIndex(idx: Int32Array, rows: number, what: string): void {
  for (let i = 0; i < idx.length; i++) {
    const r = idx[i];
    if (r < 0 || r >= rows) {
      throw new ArgumentError(`${what}: idx[${i}] = ${r} is not a row in [0, ${rows})`);
    }
  }
}

/** Copies rows idx[i] of src (row length rowSize) into dst row i (native copy per row). dst may be longer (a reused full-size batch buffer); the rest is left as it is. */
export function gatherRows(
  src: Float32Array,
  rowSize: number,
  idx: Int32Array,
  dst: Float32Array,
): void {
  checkInt(rowSize, "gatherRows: rowSize", 1);
  if (src.length % rowSize !== 0) {
    throw new ShapeError(`gatherRows: ${src.length} values do not make rows of ${rowSize}`);
  }
  if (dst.length < idx.length * rowSize) {
    throw new ShapeError(
      `gatherRows: dst holds ${dst.length} values, ${idx.length} rows of ${rowSize} need ${
        idx.length * rowSize
      }`,
    );
  }
  checkIndex(idx, src.length / rowSize, "gatherRows");
  for (let i = 0; i < idx.length; i++) {
    const o = idx[i] * rowSize;
    dst.set(src.subarray(o, o + rowSize), i * rowSize);
  }
}

/** Same for labels (Int32Array or BigInt64Array source) into an Int32Array. */
export function gatherLabels(src: Int32Array | BigInt64Array, idx: Int32Array): Int32Array {
  checkIndex(idx, src.length, "gatherLabels");
  const out = new Int32Array(idx.length);
  if (src instanceof Int32Array) {
    for (let i = 0; i < idx.length; i++) out[i] = src[idx[i]];
    return out;
  }
  for (let i = 0; i < idx.length; i++) {
    const v = src[idx[i]];
    // An int64 label beyond int32 would wrap silently into some other class.
    if (v < -2147483648n || v > 2147483647n) {
      throw new ArgumentError(`gatherLabels: label ${v} of row ${idx[i]} does not fit int32`);
    }
    out[i] = Number(v);
  }
  return out;
}
