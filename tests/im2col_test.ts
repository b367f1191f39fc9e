import assert from "node:assert/strict";
import {
  col2imResident,
  im2colResident,
  transposeResident,
  windowOut,
} from "../src/kernels/im2col.ts";
import { col2imRef, type Im2colGeometry, im2colRef } from "../src/kernels/reference_im2col.ts";
import type { KernelModule } from "../src/kernels/module.ts";
import { MAX_DIM } from "../src/kernels/validate.ts";
import { ArgumentError, ShapeError } from "../src/errors.ts";
import { loadBuilds, randInt, rng } from "./util.ts";

const mods = await loadBuilds();

/** Floats of sentinel before and after every buffer: writes outside it must not happen. */
const GUARD = 16;

interface Case {
  g: Im2colGeometry;
  ldcol: number;
  /** Column offset of this image in the col matrix (image n of a batch). */
  colOff: number;
  padValue: number;
}

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[randInt(r, 0, xs.length - 1)];
}

/** Sizes around the vector width (4, and 8 in the unrolled copies) and 1. */
const DIMS = [1, 2, 3, 4, 5, 7, 8, 9, 11, 15, 16, 17, 33];
const KERNELS: [number, number][] = [[1, 1], [3, 3], [5, 2], [2, 5], [1, 3], [3, 1], [2, 2]];

function randomCase(r: () => number): Case {
  for (;;) {
    const [kh, kw] = pick(r, KERNELS);
    const h = pick(r, DIMS), w = pick(r, DIMS);
    const sh = randInt(r, 1, 3), sw = randInt(r, 1, 3);
    const dh = randInt(r, 1, 2), dw = randInt(r, 1, 2);
    const [pt, pl, pb, pr] = [0, 0, 0, 0].map(() => randInt(r, 0, 2));
    let oh: number, ow: number;
    try {
      oh = windowOut(h, kh, sh, dh, pt, pb);
      ow = windowOut(w, kw, sw, dw, pl, pr);
    } catch {
      continue; // the window does not fit: covered by the error tests
    }
    const g = { c: pick(r, [1, 1, 2, 3, 5]), h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow };
    const extra = pick(r, [0, 0, 1, 3, 7, oh * ow]);
    return {
      g,
      ldcol: oh * ow + extra,
      colOff: randInt(r, 0, extra),
      padValue: pick(r, [0, 1]),
    };
  }
}

/** Fixed cases: the training engine's typical layers and the degenerate ones. */
function fixedCases(): Case[] {
  const mk = (
    g: Omit<Im2colGeometry, "oh" | "ow">,
    pb: number,
    pr: number,
    padValue = 0,
    extra = 0,
  ): Case => {
    const oh = windowOut(g.h, g.kh, g.sh, g.dh, g.pt, pb);
    const ow = windowOut(g.w, g.kw, g.sw, g.dw, g.pl, pr);
    return { g: { ...g, oh, ow }, ldcol: oh * ow + extra, colOff: extra, padValue };
  };
  const base = { sh: 1, sw: 1, dh: 1, dw: 1, pt: 0, pl: 0 };
  return [
    mk({ ...base, c: 16, h: 14, w: 14, kh: 3, kw: 3, pt: 1, pl: 1 }, 1, 1),
    mk({ ...base, c: 16, h: 14, w: 14, kh: 3, kw: 3, pt: 1, pl: 1, sh: 2, sw: 2 }, 1, 1),
    mk({ ...base, c: 3, h: 28, w: 28, kh: 5, kw: 5, pt: 2, pl: 2 }, 2, 2, 1, 5),
    mk({ ...base, c: 1, h: 1, w: 1, kh: 1, kw: 1 }, 0, 0),
    mk({ ...base, c: 1, h: 1, w: 1, kh: 3, kw: 3, pt: 1, pl: 1 }, 1, 1, 1),
    mk({ ...base, c: 2, h: 1, w: 9, kh: 1, kw: 3, pl: 2, sw: 2 }, 0, 2),
    mk({ ...base, c: 2, h: 9, w: 1, kh: 3, kw: 1, pt: 2, dh: 2 }, 2, 0),
    mk(
      { ...base, c: 2, h: 17, w: 17, kh: 5, kw: 2, sh: 3, sw: 2, dh: 2, dw: 2, pt: 2, pl: 1 },
      1,
      2,
    ),
    mk({ ...base, c: 1, h: 2, w: 2, kh: 1, kw: 1, sh: 1, sw: 1 }, 2, 2), // windows only in padding
  ];
}

function cases(seed: number, count: number): Case[] {
  const r = rng(seed);
  const out = fixedCases();
  while (out.length < count) out.push(randomCase(r));
  return out;
}

/** Values of mixed magnitude and sign (sums round differently in a different order), and −0. */
function fillRandom(a: Float32Array, r: () => number): void {
  for (let i = 0; i < a.length; i++) {
    const u = r();
    a[i] = u < 0.03 ? -0 : (r() * 2 - 1) * 2 ** randInt(r, -12, 12);
  }
}

/** A block [guard | n floats | guard] with random guards; returns the data pointer. */
function allocGuarded(mod: KernelModule, n: number): { block: number; ptr: number; len: number } {
  const len = n + 2 * GUARD;
  const block = mod.heap.alloc(len * 4);
  return { block, ptr: block + GUARD * 4, len };
}

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

function assertSameBits(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const a = bits(actual), e = bits(expected);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i]) {
      assert.fail(
        `${what}: element ${i} is ${actual[i]} (0x${a[i].toString(16)}), expected ` +
          `${expected[i]} (0x${e[i].toString(16)})`,
      );
    }
  }
}

function describe(c: Case): string {
  const g = c.g;
  return `c${g.c} ${g.h}×${g.w} k${g.kh}×${g.kw} s${g.sh},${g.sw} d${g.dh},${g.dw} ` +
    `p${g.pt},${g.pl} out ${g.oh}×${g.ow} ldcol ${c.ldcol}+${c.colOff} pad ${c.padValue}`;
}

interface Result {
  col: Float32Array;
  x: Float32Array;
}

/**
 * Runs im2col then col2im of one case on `mod`; checks both (whole guarded blocks, so gaps
 * between col rows and the guards are compared too) against the references and returns them.
 */
function runCase(mod: KernelModule, c: Case, seed: number): Result {
  const r = rng(seed);
  const { g, ldcol, colOff } = c;
  const xLen = g.c * g.h * g.w;
  const colLen = colOff + (g.c * g.kh * g.kw - 1) * ldcol + g.oh * g.ow;
  const xb = allocGuarded(mod, xLen);
  const cb = allocGuarded(mod, colLen);
  try {
    const x0 = new Float32Array(xb.len), col0 = new Float32Array(cb.len);
    fillRandom(x0, r);
    fillRandom(col0, r);
    mod.f32(xb.block, xb.len).set(x0);
    mod.f32(cb.block, cb.len).set(col0);

    // im2col into a column block at offset colOff (the block holds the gaps too).
    const colPtr = cb.ptr + colOff * 4;
    im2colResident(mod, g, xb.ptr, colPtr, ldcol, c.padValue);
    const colWant = col0.slice();
    im2colRef(g, x0, GUARD, colWant, GUARD + colOff, ldcol, c.padValue);
    const col = mod.f32(cb.block, cb.len).slice();
    assertSameBits(col, colWant, `${mod.build} im2col ${describe(c)}`);
    assertSameBits(mod.f32(xb.block, xb.len).slice(), x0, `${mod.build} im2col input`);

    // col2im of fresh random columns into a non-zero x: the sums' rounding order shows.
    const grad = new Float32Array(cb.len);
    fillRandom(grad, r);
    mod.f32(cb.block, cb.len).set(grad);
    col2imResident(mod, g, colPtr, ldcol, xb.ptr);
    const xWant = x0.slice();
    col2imRef(g, grad, GUARD + colOff, ldcol, xWant, GUARD);
    const x = mod.f32(xb.block, xb.len).slice();
    assertSameBits(x, xWant, `${mod.build} col2im ${describe(c)}`);
    assertSameBits(mod.f32(cb.block, cb.len).slice(), grad, `${mod.build} col2im input`);
    return { col, x };
  } finally {
    mod.heap.free(xb.block);
    mod.heap.free(cb.block);
  }
}

const TRANSPOSE_DIMS = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100];

interface TCase {
  rows: number;
  cols: number;
  ldSrc: number;
  ldDst: number;
}

function transposeCases(seed: number, count: number): TCase[] {
  const r = rng(seed);
  const out: TCase[] = [
    { rows: 1, cols: 1, ldSrc: 1, ldDst: 1 },
    { rows: 144, cols: 196, ldSrc: 196, ldDst: 144 },
    { rows: 196, cols: 144, ldSrc: 150, ldDst: 200 },
    { rows: 1, cols: 37, ldSrc: 37, ldDst: 1 },
    { rows: 37, cols: 1, ldSrc: 1, ldDst: 37 },
  ];
  while (out.length < count) {
    const rows = pick(r, TRANSPOSE_DIMS), cols = pick(r, TRANSPOSE_DIMS);
    out.push({
      rows,
      cols,
      ldSrc: cols + pick(r, [0, 0, 1, 3, 4]),
      ldDst: rows + pick(r, [0, 0, 1, 3, 4]),
    });
  }
  return out;
}

function runTranspose(mod: KernelModule, t: TCase, seed: number): Float32Array {
  const r = rng(seed);
  const sb = allocGuarded(mod, (t.rows - 1) * t.ldSrc + t.cols);
  const db = allocGuarded(mod, (t.cols - 1) * t.ldDst + t.rows);
  try {
    const src = new Float32Array(sb.len), dst0 = new Float32Array(db.len);
    fillRandom(src, r);
    fillRandom(dst0, r);
    mod.f32(sb.block, sb.len).set(src);
    mod.f32(db.block, db.len).set(dst0);
    transposeResident(mod, t.rows, t.cols, sb.ptr, t.ldSrc, db.ptr, t.ldDst);
    const want = dst0.slice();
    for (let i = 0; i < t.rows; i++) {
      for (let j = 0; j < t.cols; j++) {
        want[GUARD + j * t.ldDst + i] = src[GUARD + i * t.ldSrc + j];
      }
    }
    const got = mod.f32(db.block, db.len).slice();
    assertSameBits(
      got,
      want,
      `${mod.build} transpose ${t.rows}×${t.cols} ld ${t.ldSrc}/${t.ldDst}`,
    );
    assertSameBits(mod.f32(sb.block, sb.len).slice(), src, `${mod.build} transpose input`);
    return got;
  } finally {
    mod.heap.free(sb.block);
    mod.heap.free(db.block);
  }
}

const CASES = cases(7, 400);
const TCASES = transposeCases(11, 150);

for (const mod of mods) {
  Deno.test(`im2col and col2im match the references bit for bit (${mod.build})`, () => {
    for (const [i, c] of CASES.entries()) runCase(mod, c, 1000 + i);
    assert.equal(mod.heap.bytesInUse, 0);
  });

  Deno.test(`transpose matches a plain loop (${mod.build})`, () => {
    for (const [i, t] of TCASES.entries()) runTranspose(mod, t, 5000 + i);
    assert.equal(mod.heap.bytesInUse, 0);
  });
}

Deno.test("im2col, col2im and transpose give the same bits in every build", () => {
  assert(mods.length >= 1);
  for (const [i, c] of CASES.entries()) {
    const [first, ...rest] = mods.map((m) => runCase(m, c, 1000 + i));
    for (const [j, res] of rest.entries()) {
      assertSameBits(res.col, first.col, `${mods[j + 1].build} vs ${mods[0].build} im2col`);
      assertSameBits(res.x, first.x, `${mods[j + 1].build} vs ${mods[0].build} col2im`);
    }
  }
  for (const [i, t] of TCASES.entries()) {
    const [first, ...rest] = mods.map((m) => runTranspose(m, t, 5000 + i));
    for (const res of rest) assertSameBits(res, first, `transpose ${t.rows}×${t.cols}`);
  }
});

Deno.test("windowOut follows the window formula", () => {
  assert.equal(windowOut(14, 3, 1, 1, 1, 1), 14);
  assert.equal(windowOut(14, 3, 2, 1, 1, 1), 7);
  assert.equal(windowOut(5, 3, 2, 2, 0, 0), 1);
  assert.equal(windowOut(1, 1, 3, 1, 0, 2), 1);
  assert.equal(windowOut(1, 1, 1, 1, 0, 2), 3);
  assert.equal(windowOut(7, 5, 3, 1, 2, 1), 2);
  assert.throws(() => windowOut(2, 3, 1, 1, 0, 0), ShapeError);
  assert.throws(() => windowOut(4, 3, 1, 2, 0, 0), ShapeError);
  for (const bad of [0, -1, 1.5, NaN, Infinity]) {
    assert.throws(() => windowOut(bad, 1, 1, 1, 0, 0), ShapeError);
    assert.throws(() => windowOut(4, bad, 1, 1, 0, 0), ShapeError);
    assert.throws(() => windowOut(4, 1, bad, 1, 0, 0), ShapeError);
    assert.throws(() => windowOut(4, 1, 1, bad, 0, 0), ShapeError);
  }
  for (const bad of [-1, 0.5, NaN]) {
    assert.throws(() => windowOut(4, 1, 1, 1, bad, 0), ShapeError);
    assert.throws(() => windowOut(4, 1, 1, 1, 0, bad), ShapeError);
  }
});

Deno.test("bad geometry and buffers throw typed errors before anything is touched", () => {
  const mod = mods[mods.length - 1];
  const g: Im2colGeometry = {
    c: 2,
    h: 5,
    w: 6,
    kh: 3,
    kw: 3,
    sh: 1,
    sw: 1,
    dh: 1,
    dw: 1,
    pt: 1,
    pl: 1,
    oh: 5,
    ow: 6,
  };
  const xLen = 2 * 5 * 6, cols = 30, colLen = 18 * cols;
  const x = mod.heap.alloc(xLen * 4);
  const col = mod.heap.alloc(colLen * 4);
  const sentinel = 12345.5;
  mod.f32(x, xLen).fill(sentinel);
  mod.f32(col, colLen).fill(sentinel);
  const untouched = () => {
    assert(mod.f32(x, xLen).every((v) => v === sentinel), "x was written");
    assert(mod.f32(col, colLen).every((v) => v === sentinel), "col was written");
  };
  const both = (geo: Im2colGeometry, ld: number, px: number, pc: number, E: typeof ShapeError) => {
    assert.throws(() => im2colResident(mod, geo, px, pc, ld), E);
    assert.throws(() => col2imResident(mod, geo, pc, ld, px), E);
    untouched();
  };
  // The good geometry runs (then restore the sentinels).
  im2colResident(mod, g, x, col, cols);
  col2imResident(mod, g, col, cols, x);
  mod.f32(x, xLen).fill(sentinel);
  mod.f32(col, colLen).fill(sentinel);

  const fields: (keyof Im2colGeometry)[] = [
    "c",
    "h",
    "w",
    "kh",
    "kw",
    "sh",
    "sw",
    "dh",
    "dw",
    "oh",
    "ow",
  ];
  for (const f of fields) {
    for (const bad of [0, -1, 1.5, NaN, Infinity, MAX_DIM + 1]) {
      both({ ...g, [f]: bad }, cols, x, col, ShapeError);
    }
  }
  for (const f of ["pt", "pl"] as const) {
    for (const bad of [-1, 0.5, NaN, MAX_DIM + 1]) {
      both({ ...g, [f]: bad }, cols, x, col, ShapeError);
    }
  }
  // ldcol below oh·ow, or not an integer.
  both(g, cols - 1, x, col, ShapeError);
  both(g, cols + 0.5, x, col, ShapeError);
  // Fewer output rows/columns than fit without trailing padding (a negative pad).
  both({ ...g, oh: 3 }, 18, x, col, ShapeError);
  both({ ...g, ow: 4 }, 20, x, col, ShapeError);
  // A trailing pad beyond the limit.
  both({ ...g, h: 1, c: 1, pt: 0, sh: MAX_DIM, oh: 3 }, 18, x, col, ShapeError);
  // Dilated window beyond the limit.
  both({ ...g, dh: MAX_DIM / 2, kh: 4 }, cols, x, col, ShapeError);
  // Buffers: too small, past the block, outside the heap, unaligned, overlapping.
  both({ ...g, c: 3 }, cols, x, col, ShapeError); // x holds 2 channels
  both(g, cols + 1, x, col, ShapeError); // col rows too far apart for the block
  both(g, cols, x + 4, col, ShapeError); // x runs past its block
  both(g, cols, x, col + 8, ShapeError);
  both(g, cols, 1 << 28, col, ShapeError);
  both(g, cols, x, 1 << 28, ShapeError);
  both(g, cols, x + 2, col, ArgumentError);
  both(g, cols, x, col + 1, ArgumentError);
  both(g, cols, 0, col, ArgumentError);
  both(g, cols, -4, col, ArgumentError);
  both({ ...g, c: 1 }, cols, col + 240, col, ArgumentError); // x inside col
  assert.throws(() => im2colResident(mod, g, x, col, cols, NaN), ArgumentError);
  assert.throws(
    () => im2colResident(mod, null as unknown as Im2colGeometry, x, col, cols),
    ArgumentError,
  );
  untouched();

  // transpose: 5×6 from x into col.
  transposeResident(mod, 5, 6, x, 6, col, 5);
  mod.f32(col, colLen).fill(sentinel);
  const tr = (rows: number, cs: number, s: number, ls: number, d: number, ld: number) =>
    transposeResident(mod, rows, cs, s, ls, d, ld);
  for (const bad of [0, -1, 2.5, NaN, MAX_DIM + 1]) {
    assert.throws(() => tr(bad, 6, x, 6, col, 5), ShapeError);
    assert.throws(() => tr(5, bad, x, 6, col, 5), ShapeError);
  }
  assert.throws(() => tr(5, 6, x, 5, col, 5), ShapeError); // ldSrc < cols
  assert.throws(() => tr(5, 6, x, 6, col, 4), ShapeError); // ldDst < rows
  assert.throws(() => tr(5, 6, x, 6.5, col, 5), ShapeError);
  assert.throws(() => tr(7, 9, x, 9, col, 7), ShapeError); // src block holds 60 floats
  assert.throws(() => tr(5, 6, x, 6, col, colLen), ShapeError); // dst too small
  assert.throws(() => tr(5, 6, x, 6, 1 << 28, 5), ShapeError);
  assert.throws(() => tr(5, 6, x, 6, col + 2, 5), ArgumentError);
  assert.throws(() => tr(5, 6, col, 6, col + 40, 5), ArgumentError); // overlap
  untouched();

  mod.heap.free(x);
  mod.heap.free(col);
  assert.equal(mod.heap.bytesInUse, 0);
});

Deno.test("windows reaching only into the trailing padding are accepted", () => {
  const mod = mods[0];
  // h = w = 1, 1×1 kernel, trailing pad 2: outputs 1 and 2 are pure padding.
  const g = { c: 1, h: 1, w: 1, kh: 1, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1, pt: 0, pl: 0 };
  const oh = windowOut(1, 1, 1, 1, 0, 2), ow = windowOut(1, 1, 1, 1, 0, 2);
  const x = mod.upload(new Float32Array([5]));
  const col = mod.heap.alloc(oh * ow * 4);
  try {
    im2colResident(mod, { ...g, oh, ow }, x, col, oh * ow, 1);
    assert.deepEqual([...mod.f32(col, 9)], [5, 1, 1, 1, 1, 1, 1, 1, 1]);
    col2imResident(mod, { ...g, oh, ow }, col, oh * ow, x);
    assert.deepEqual([...mod.f32(x, 1)], [10]);
  } finally {
    mod.heap.free(x);
    mod.heap.free(col);
  }
});

// ---- im2row / row2im (NHWC) -------------------------------------------------------------

import { im2rowNhwcResident, row2imNhwcResident } from "../src/kernels/im2col.ts";
import { im2rowNhwcRef, row2imNhwcRef } from "../src/kernels/reference_im2col.ts";

interface NhwcCase {
  g: Im2colGeometry;
  /** Floats per pixel of the whole tensor (≥ c) and the group's first channel. */
  ldx: number;
  chOff: number;
  /** Row stride of the patch matrix (≥ kh·kw·c) and this group's column offset in it. */
  ldrow: number;
  rowOff: number;
  padValue: number;
}

/** c around the vector width, and the first layers' 1 and 3. */
const NHWC_CHANNELS = [1, 3, 4, 5, 16, 17];
const NHWC_KERNELS: [number, number][] = [[1, 1], [3, 3], [5, 2], [2, 5], [1, 3], [3, 1]];

function randomNhwcCase(r: () => number): NhwcCase {
  for (;;) {
    const [kh, kw] = pick(r, NHWC_KERNELS);
    const c = pick(r, NHWC_CHANNELS);
    // Keep the reference fast: smaller images for the wide pixels.
    const dims = c >= 16 ? DIMS.slice(0, 10) : DIMS;
    const h = pick(r, dims), w = pick(r, dims);
    const sh = randInt(r, 1, 3), sw = randInt(r, 1, 3);
    const dh = randInt(r, 1, 2), dw = randInt(r, 1, 2);
    const [pt, pl, pb, pr] = [0, 0, 0, 0].map(() => randInt(r, 0, 2));
    let oh: number, ow: number;
    try {
      oh = windowOut(h, kh, sh, dh, pt, pb);
      ow = windowOut(w, kw, sw, dw, pl, pr);
    } catch {
      continue;
    }
    // Half the cases are one group of a wider tensor (ldx > c, a channel offset).
    const ldx = c + pick(r, [0, 0, 1, 3, c, 2 * c + 1]);
    const k = kh * kw * c;
    const extra = pick(r, [0, 0, 1, 3, k]);
    return {
      g: { c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow },
      ldx,
      chOff: randInt(r, 0, ldx - c),
      ldrow: k + extra,
      rowOff: randInt(r, 0, extra),
      padValue: pick(r, [0, 1]),
    };
  }
}

function fixedNhwcCases(): NhwcCase[] {
  const mk = (
    g: Omit<Im2colGeometry, "oh" | "ow">,
    pb: number,
    pr: number,
    { ldx = g.c, chOff = 0, extra = 0, padValue = 0 } = {},
  ): NhwcCase => {
    const oh = windowOut(g.h, g.kh, g.sh, g.dh, g.pt, pb);
    const ow = windowOut(g.w, g.kw, g.sw, g.dw, g.pl, pr);
    const k = g.kh * g.kw * g.c;
    return { g: { ...g, oh, ow }, ldx, chOff, ldrow: k + extra, rowOff: extra, padValue };
  };
  const base = { sh: 1, sw: 1, dh: 1, dw: 1, pt: 0, pl: 0 };
  const k3 = { ...base, kh: 3, kw: 3, pt: 1, pl: 1 };
  return [
    mk({ ...k3, c: 16, h: 14, w: 14 }, 1, 1),
    mk({ ...k3, c: 16, h: 14, w: 14, sh: 2, sw: 2 }, 1, 1),
    mk({ ...k3, c: 32, h: 7, w: 7 }, 1, 1, { ldx: 64, chOff: 32 }), // group 1 of 2
    mk({ ...k3, c: 3, h: 28, w: 28 }, 1, 1, { padValue: 1 }),
    mk({ ...base, c: 1, h: 28, w: 28, kh: 5, kw: 5, pt: 2, pl: 2 }, 2, 2, { extra: 7 }),
    mk({ ...k3, c: 3, h: 9, w: 9, dw: 2, dh: 2 }, 1, 1),
    mk({ ...base, c: 1, h: 1, w: 1, kh: 1, kw: 1 }, 0, 0),
    mk({ ...k3, c: 1, h: 1, w: 1 }, 1, 1, { padValue: 1 }),
    mk({ ...k3, c: 5, h: 1, w: 9, sw: 2 }, 1, 0, { ldx: 8, chOff: 3 }),
    mk({ ...base, c: 17, h: 9, w: 1, kh: 5, kw: 2, pt: 2, pl: 1, dh: 2, sh: 3 }, 2, 1),
    mk({ ...base, c: 4, h: 2, w: 2, kh: 1, kw: 1 }, 2, 2, { padValue: 1 }), // padding-only rows
  ];
}

function nhwcCases(seed: number, count: number): NhwcCase[] {
  const r = rng(seed);
  const out = fixedNhwcCases();
  while (out.length < count) out.push(randomNhwcCase(r));
  return out;
}

function describeNhwc(c: NhwcCase): string {
  const g = c.g;
  return `c${g.c} ${g.h}×${g.w} k${g.kh}×${g.kw} s${g.sh},${g.sw} d${g.dh},${g.dw} ` +
    `p${g.pt},${g.pl} out ${g.oh}×${g.ow} ldx ${c.ldx}+${c.chOff} ldrow ${c.ldrow}+${c.rowOff} ` +
    `pad ${c.padValue}`;
}

interface NhwcResult {
  rows: Float32Array;
  x: Float32Array;
}

/**
 * im2row then row2im of one case on `mod`, each checked against its reference over the whole
 * guarded blocks: the tensor's other channels, the gaps between rows and the guards must keep
 * their bits.
 */
function runNhwcCase(mod: KernelModule, c: NhwcCase, seed: number): NhwcResult {
  const r = rng(seed);
  const { g, ldx, chOff, ldrow, rowOff } = c;
  const xLen = g.h * g.w * ldx;
  const rowsLen = g.oh * g.ow * ldrow;
  const xb = allocGuarded(mod, xLen);
  const rb = allocGuarded(mod, rowsLen);
  try {
    const x0 = new Float32Array(xb.len), rows0 = new Float32Array(rb.len);
    fillRandom(x0, r);
    fillRandom(rows0, r);
    mod.f32(xb.block, xb.len).set(x0);
    mod.f32(rb.block, rb.len).set(rows0);
    const xPtr = xb.ptr + chOff * 4, rowsPtr = rb.ptr + rowOff * 4;

    im2rowNhwcResident(mod, g, xPtr, ldx, rowsPtr, ldrow, c.padValue);
    const rowsWant = rows0.slice();
    im2rowNhwcRef(g, x0, GUARD + chOff, ldx, rowsWant, GUARD + rowOff, ldrow, c.padValue);
    const rows = mod.f32(rb.block, rb.len).slice();
    assertSameBits(rows, rowsWant, `${mod.build} im2row ${describeNhwc(c)}`);
    assertSameBits(mod.f32(xb.block, xb.len).slice(), x0, `${mod.build} im2row input`);

    const grad = new Float32Array(rb.len);
    fillRandom(grad, r);
    mod.f32(rb.block, rb.len).set(grad);
    row2imNhwcResident(mod, g, rowsPtr, ldrow, xPtr, ldx);
    const xWant = x0.slice();
    row2imNhwcRef(g, grad, GUARD + rowOff, ldrow, xWant, GUARD + chOff, ldx);
    const x = mod.f32(xb.block, xb.len).slice();
    assertSameBits(x, xWant, `${mod.build} row2im ${describeNhwc(c)}`);
    assertSameBits(mod.f32(rb.block, rb.len).slice(), grad, `${mod.build} row2im input`);
    return { rows, x };
  } finally {
    mod.heap.free(xb.block);
    mod.heap.free(rb.block);
  }
}

const NHWC_CASES = nhwcCases(13, 300);

for (const mod of mods) {
  Deno.test(`im2row and row2im (NHWC) match the references bit for bit (${mod.build})`, () => {
    for (const [i, c] of NHWC_CASES.entries()) runNhwcCase(mod, c, 9000 + i);
    assert.equal(mod.heap.bytesInUse, 0);
  });
}

Deno.test("im2row and row2im give the same bits in every build", () => {
  assert(mods.length >= 1);
  for (const [i, c] of NHWC_CASES.entries()) {
    const [first, ...rest] = mods.map((m) => runNhwcCase(m, c, 9000 + i));
    for (const [j, res] of rest.entries()) {
      assertSameBits(res.rows, first.rows, `${mods[j + 1].build} vs ${mods[0].build} im2row`);
      assertSameBits(res.x, first.x, `${mods[j + 1].build} vs ${mods[0].build} row2im`);
    }
  }
});

Deno.test("im2row and row2im: bad geometry and buffers throw typed errors, nothing touched", () => {
  const mod = mods[mods.length - 1];
  const g: Im2colGeometry = {
    c: 3,
    h: 5,
    w: 6,
    kh: 3,
    kw: 3,
    sh: 1,
    sw: 1,
    dh: 1,
    dw: 1,
    pt: 1,
    pl: 1,
    oh: 5,
    ow: 6,
  };
  // A group of 3 channels of a 4-channel tensor, at channel 1: the exact extent of x is
  // (h·w − 1)·ldx + c floats; rows is 30 patches of K = 27 with ldrow 27.
  const ldx = 4, k = 27, patches = 30;
  const xLen = (g.h * g.w - 1) * ldx + g.c, rowsLen = (patches - 1) * k + k;
  const x = mod.heap.alloc(xLen * 4);
  const rows = mod.heap.alloc(rowsLen * 4);
  const sentinel = 12345.5;
  const reset = () => {
    mod.f32(x, xLen).fill(sentinel);
    mod.f32(rows, rowsLen).fill(sentinel);
  };
  const untouched = () => {
    assert(mod.f32(x, xLen).every((v) => v === sentinel), "x was written");
    assert(mod.f32(rows, rowsLen).every((v) => v === sentinel), "rows was written");
  };
  const both = (
    geo: Im2colGeometry,
    lx: number,
    lr: number,
    px: number,
    pr: number,
    E: typeof ShapeError,
  ) => {
    assert.throws(() => im2rowNhwcResident(mod, geo, px, lx, pr, lr), E);
    assert.throws(() => row2imNhwcResident(mod, geo, pr, lr, px, lx), E);
    untouched();
  };
  // The exact extents are accepted.
  reset();
  im2rowNhwcResident(mod, g, x, ldx, rows, k, 1);
  row2imNhwcResident(mod, g, rows, k, x, ldx);
  reset();

  const fields: (keyof Im2colGeometry)[] = [
    "c",
    "h",
    "w",
    "kh",
    "kw",
    "sh",
    "sw",
    "dh",
    "dw",
    "oh",
    "ow",
  ];
  for (const f of fields) {
    for (const bad of [0, -1, 1.5, NaN, Infinity, MAX_DIM + 1]) {
      both({ ...g, [f]: bad }, ldx, k, x, rows, ShapeError);
    }
  }
  for (const f of ["pt", "pl"] as const) {
    for (const bad of [-1, 0.5, NaN, MAX_DIM + 1]) {
      both({ ...g, [f]: bad }, ldx, k, x, rows, ShapeError);
    }
  }
  // ldx below c or not an integer; ldrow below kh·kw·c or not an integer.
  for (const bad of [2, 0, 3.5, NaN, MAX_DIM + 1]) both(g, bad, k, x, rows, ShapeError);
  for (const bad of [26, 0, 27.5, NaN, MAX_DIM + 1]) both(g, ldx, bad, x, rows, ShapeError);
  // A negative trailing pad, a trailing pad or dilated window beyond the limit.
  both({ ...g, oh: 3 }, ldx, k, x, rows, ShapeError);
  both({ ...g, ow: 4 }, ldx, k, x, rows, ShapeError);
  both({ ...g, h: 1, pt: 0, sh: MAX_DIM, oh: 3 }, ldx, k, x, rows, ShapeError);
  both({ ...g, dh: MAX_DIM / 2, kh: 4 }, ldx, k, x, rows, ShapeError);
  // Exact extents: one float more in either buffer does not fit its block.
  both({ ...g, c: 4 }, ldx, 36, x, rows, ShapeError); // x's last pixel is 3 floats
  both(g, ldx + 1, k, x, rows, ShapeError); // pixels too far apart
  both(g, ldx, k + 1, x, rows, ShapeError); // rows too far apart
  both(g, ldx, k, x + 4, rows, ShapeError); // x runs past its block
  both(g, ldx, k, x, rows + 4, ShapeError);
  both(g, ldx, k, 1 << 28, rows, ShapeError);
  both(g, ldx, k, x, 1 << 28, ShapeError);
  // Pointers: unaligned, null, negative, overlapping.
  both(g, ldx, k, x + 2, rows, ArgumentError);
  both(g, ldx, k, x, rows + 1, ArgumentError);
  both(g, ldx, k, 0, rows, ArgumentError);
  both(g, ldx, k, x, -4, ArgumentError);
  both({ ...g, c: 1 }, 1, k, rows + 400, rows, ArgumentError); // x inside rows
  assert.throws(() => im2rowNhwcResident(mod, g, x, ldx, rows, k, NaN), ArgumentError);
  assert.throws(
    () => im2rowNhwcResident(mod, null as unknown as Im2colGeometry, x, ldx, rows, k),
    ArgumentError,
  );
  assert.throws(
    () => row2imNhwcResident(mod, null as unknown as Im2colGeometry, rows, k, x, ldx),
    ArgumentError,
  );
  untouched();

  mod.heap.free(x);
  mod.heap.free(rows);
  assert.equal(mod.heap.bytesInUse, 0);
});

Deno.test("im2row lays taps out (ky, kx, ci) and row2im sums the overlaps", () => {
  const mod = mods[0];
  // 2 channels of a 3-channel 1×2 image, 1×2 kernel, left pad 1: two patches.
  const g = { c: 2, h: 1, w: 2, kh: 1, kw: 2, sh: 1, sw: 1, dh: 1, dw: 1, pt: 0, pl: 1 };
  const geo = { ...g, oh: 1, ow: windowOut(2, 2, 1, 1, 1, 0) };
  const x = mod.upload(new Float32Array([1, 2, 3, 4, 5, 6]));
  const rows = mod.heap.alloc(2 * 4 * 4);
  try {
    im2rowNhwcResident(mod, geo, x + 4, 3, rows, 4, -1);
    assert.deepEqual([...mod.f32(rows, 8)], [-1, -1, 2, 3, 2, 3, 5, 6]);
    row2imNhwcResident(mod, geo, rows, 4, x + 4, 3);
    assert.deepEqual([...mod.f32(x, 6)], [1, 6, 9, 4, 10, 12]);
  } finally {
    mod.heap.free(x);
    mod.heap.free(rows);
  }
});
