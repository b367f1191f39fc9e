// Pooling kernels against the scalar reference (src/kernels/reference_pool.ts) in every build:
// a randomized grid over kernel sizes, strides, dilations, padding modes, ceil_mode, channel
// counts and batch; f32 within 1e-6 relative, int8 and argmax exactly. Then edge cases and
// bad input (typed errors, nothing leaked).
import assert from "node:assert/strict";
import {
  averagePool2d,
  type Dims4,
  globalAveragePool,
  globalMaxPool,
  maxPool2d,
  maxPool2dWithIndices,
  type PoolQuant,
  type PoolTensor,
} from "../src/kernels/pool.ts";
import {
  globalGeometry,
  refAvgPool2d,
  refMaxPool2d,
  refMaxPoolIndices,
} from "../src/kernels/reference_pool.ts";
import { type AutoPad, type WindowAttrs, windowGeometry } from "../src/kernels/conv_geometry.ts";
import type { KernelModule } from "../src/kernels/module.ts";
import { ArgumentError, ShapeError } from "../src/errors.ts";
import { loadBuilds, randInt, rng } from "./util.ts";

const mods = await loadBuilds();

const KERNELS = [1, 2, 3, 5, 7];
const STRIDES = [1, 2, 3];
const DILATIONS = [1, 2];
const PAD_MODES = ["symmetric", "asymmetric", "SAME_UPPER", "SAME_LOWER", "VALID"] as const;
const CHANNELS = [1, 3, 4, 5, 15, 16, 17, 33];

interface Case {
  dims: Dims4;
  attrs: WindowAttrs;
}

/** Every (kernel, stride, dilation, pad mode) with ceil_mode off and on; random sizes. */
function gridCases(seed: number): Case[] {
  const r = rng(seed);
  const out: Case[] = [];
  let i = 0;
  for (const k of KERNELS) {
    for (const s of STRIDES) {
      for (const d of DILATIONS) {
        for (const mode of PAD_MODES) {
          // A non-square window now and then.
          const kh = k, kw = i % 4 === 3 ? KERNELS[randInt(r, 0, KERNELS.length - 1)] : k;
          const attrs: WindowAttrs = {
            kernel: [kh, kw],
            strides: [s, i % 6 === 5 ? STRIDES[randInt(r, 0, 2)] : s],
            dilations: [d, d],
          };
          if (mode === "symmetric") {
            const ph = randInt(r, 0, kh - 1), pw = randInt(r, 0, kw - 1);
            attrs.pads = [ph, pw, ph, pw];
          } else if (mode === "asymmetric") {
            attrs.pads = [
              randInt(r, 0, kh),
              randInt(r, 0, kw),
              randInt(r, 0, kh),
              randInt(r, 0, kw),
            ];
          } else attrs.autoPad = mode as AutoPad;
          const c = CHANNELS[i % CHANNELS.length];
          const n = i % 3 === 0 ? 2 : 1;
          // Odd and small sizes; grown until the window fits.
          let h = 2 * randInt(r, 0, 6) + 1, w = 2 * randInt(r, 0, 6) + 1;
          for (const ceilMode of [false, true]) {
            for (;;) {
              try {
                windowGeometry(h, w, { ...attrs, ceilMode });
                break;
              } catch {
                h += 2;
                w += 2;
              }
            }
          }
          const ceil = { ...attrs, ceilMode: true };
          out.push({ dims: [n, h, w, c], attrs }, { dims: [n, h, w, c], attrs: ceil });
          // Plus sizes where ceil_mode adds a partial last window, when some do.
          const [sh, sw] = attrs.strides!;
          const hc = ceilSize(
            h,
            sh,
            (y, ceilMode) => windowGeometry(y, w, { ...attrs, ceilMode }).outH,
          );
          const wc = ceilSize(
            w,
            sw,
            (x, ceilMode) => windowGeometry(h, x, { ...attrs, ceilMode }).outW,
          );
          if (hc !== h || wc !== w) out.push({ dims: [n, hc, wc, c], attrs: ceil });
          i++;
        }
      }
    }
  }
  return out;
}

/** The first size from `size` on where ceil_mode adds a partial last window, else `size`. */
function ceilSize(size: number, stride: number, out: (size: number, ceil: boolean) => number) {
  for (let v = size; v < size + stride; v++) {
    if (out(v, true) !== out(v, false)) return v;
  }
  return size;
}

function randomInput(r: () => number, kind: "f32" | "u8" | "i8", len: number): PoolTensor {
  if (kind === "f32") return Float32Array.from({ length: len }, () => (r() - 0.5) * 20);
  if (kind === "u8") return Uint8Array.from({ length: len }, () => randInt(r, 0, 255));
  return Int8Array.from({ length: len }, () => randInt(r, -128, 127));
}

function randomQuant(r: () => number, kind: "u8" | "i8"): PoolQuant {
  const [lo, hi] = kind === "u8" ? [0, 255] : [-128, 127];
  const xScale = 0.005 + r() * 0.1;
  return {
    xScale,
    yScale: xScale * (0.3 + r() * 2),
    xZero: randInt(r, lo, hi),
    yZero: randInt(r, lo, hi),
  };
}

/** f32 within rtol (NaN and infinities equal only to themselves); integers exactly. */
function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, msg: string, rtol = 1e-6) {
  assert.equal(got.length, want.length, `${msg}: length`);
  for (let i = 0; i < want.length; i++) {
    const g = got[i], w = want[i];
    if (Object.is(g, w) || g === w) continue;
    const ok = Number.isFinite(w) && Math.abs(g - w) <= rtol * Math.max(Math.abs(w), 1e-30);
    assert.ok(ok, `${msg}: [${i}] got ${g}, want ${w}`);
  }
}

function describe(c: Case): string {
  return `dims ${c.dims} ${JSON.stringify(c.attrs)}`;
}

function checkCase(mod: KernelModule, r: () => number, c: Case): void {
  const [n, h, w, ch] = c.dims;
  const g = windowGeometry(h, w, c.attrs);
  const len = n * h * w * ch;
  for (const kind of ["f32", "u8", "i8"] as const) {
    const x = randomInput(r, kind, len);
    const what = `${kind} ${describe(c)}`;
    const mx = maxPool2d(mod, x, c.dims, c.attrs);
    assert.deepEqual(mx.dims, [n, g.outH, g.outW, ch]);
    assertClose(mx.data, refMaxPool2d(x, n, ch, g), `max ${what}`, 0);
    const withIdx = maxPool2dWithIndices(mod, x, c.dims, c.attrs);
    assertClose(withIdx.data, mx.data, `max (with indices) ${what}`, 0);
    const spatial = refMaxPoolIndices(x, n, ch, g);
    for (let i = 0; i < spatial.length; i++) {
      const pix = Math.floor(i / ch), b = Math.floor(pix / (g.outH * g.outW)), cc = i % ch;
      const want = spatial[i] < 0 ? -1 : (b * ch + cc) * h * w + spatial[i];
      if (Number(withIdx.indices[i]) !== want) {
        assert.fail(`indices ${what}: [${i}] got ${withIdx.indices[i]}, want ${want}`);
      }
    }
    for (const cip of [false, true]) {
      const quant = kind === "f32" ? undefined : randomQuant(r, kind);
      const avg = averagePool2d(mod, x, c.dims, { ...c.attrs, countIncludePad: cip, quant });
      assert.deepEqual(avg.dims, [n, g.outH, g.outW, ch]);
      assertClose(
        avg.data,
        refAvgPool2d(x, n, ch, g, cip, quant),
        `avg cip=${cip} ${what} ${JSON.stringify(quant)}`,
      );
    }
  }
}

for (const mod of mods) {
  Deno.test(`pooling grid matches the reference (${mod.build})`, () => {
    const r = rng(7);
    const cases = gridCases(11);
    for (const c of cases) checkCase(mod, r, c);
    assert.equal(mod.heap.bytesInUse, 0);
  });

  Deno.test(`int8 pooling: wide channels, long windows, extreme values (${mod.build})`, () => {
    const r = rng(8);
    // 64-channel blocks, their tails, and windows over 128 taps (i16 partial sums flushed).
    for (const c of [8, 9, 12, 64, 65, 80, 127, 130]) {
      for (const kind of ["u8", "i8"] as const) {
        const dims: Dims4 = [2, 15, 14, c];
        const attrs: WindowAttrs = { kernel: [13, 11], strides: [2, 3], pads: [1, 2, 3, 0] };
        const g = windowGeometry(15, 14, attrs);
        for (const fill of ["random", "max", "min"] as const) {
          const x = randomInput(r, kind, 2 * 15 * 14 * c);
          if (fill !== "random") {
            x.fill(kind === "u8" ? (fill === "max" ? 255 : 0) : (fill === "max" ? 127 : -128));
          }
          const q = randomQuant(r, kind);
          const what = `${kind} C=${c} ${fill}`;
          assertClose(maxPool2d(mod, x, dims, attrs).data, refMaxPool2d(x, 2, c, g), what, 0);
          for (const cip of [false, true]) {
            const got = averagePool2d(mod, x, dims, { ...attrs, countIncludePad: cip, quant: q });
            assertClose(got.data, refAvgPool2d(x, 2, c, g, cip, q), `${what} cip=${cip}`, 0);
          }
          // Global over 300 pixels: two flushes per channel block.
          const gd: Dims4 = [1, 20, 15, c];
          const gx = x.subarray(0, 300 * c) as PoolTensor;
          const gg = globalGeometry(20, 15);
          assertClose(
            globalAveragePool(mod, gx, gd, { quant: q }).data,
            refAvgPool2d(gx, 1, c, gg, false, q),
            `global avg ${what}`,
            0,
          );
          assertClose(globalMaxPool(mod, gx, gd).data, refMaxPool2d(gx, 1, c, gg), what, 0);
        }
      }
    }
    // Rounding ties: scales 1 and 0.5 make exact halves, which must go to even.
    const x = Uint8Array.from({ length: 2 * 2 * 16 }, (_, i) => i % 7);
    const q = { xScale: 0.5, yScale: 1, xZero: 0, yZero: 3 };
    const a: WindowAttrs = { kernel: [2, 2], pads: [1, 1, 0, 0] };
    const g = windowGeometry(2, 2, a);
    for (const cip of [false, true]) {
      assertClose(
        averagePool2d(mod, x, [1, 2, 2, 16], { ...a, countIncludePad: cip, quant: q }).data,
        refAvgPool2d(x, 1, 16, g, cip, q),
        "ties",
        0,
      );
    }
    assert.equal(mod.heap.bytesInUse, 0);
  });

  Deno.test(`global pooling matches the reference (${mod.build})`, () => {
    const r = rng(9);
    for (const c of [...CHANNELS, 64, 100]) {
      for (const [n, h, w] of [[1, 1, 1], [2, 7, 7], [1, 5, 3], [2, 13, 1]]) {
        const dims: Dims4 = [n, h, w, c];
        const g = globalGeometry(h, w);
        for (const kind of ["f32", "u8", "i8"] as const) {
          const x = randomInput(r, kind, n * h * w * c);
          const quant = kind === "f32" ? undefined : randomQuant(r, kind);
          const what = `${kind} ${dims}`;
          const gm = globalMaxPool(mod, x, dims);
          assert.deepEqual(gm.dims, [n, 1, 1, c]);
          assertClose(gm.data, refMaxPool2d(x, n, c, g), `global max ${what}`, 0);
          const ga = globalAveragePool(mod, x, dims, { quant });
          assertClose(ga.data, refAvgPool2d(x, n, c, g, false, quant), `global avg ${what}`);
        }
      }
    }
    assert.equal(mod.heap.bytesInUse, 0);
  });

  Deno.test(`f32 pooling: clamp, NaN, empty windows (${mod.build})`, () => {
    const r = rng(10);
    const dims: Dims4 = [1, 6, 5, 17];
    const attrs: WindowAttrs = { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] };
    const g = windowGeometry(6, 5, attrs);
    const x = randomInput(r, "f32", 6 * 5 * 17) as Float32Array;
    x[3] = NaN;
    x[100] = NaN;
    const act = { kind: "clip", min: -2, max: 3 } as const;
    assertClose(
      maxPool2d(mod, x, dims, { ...attrs, activation: act }).data,
      refMaxPool2d(x, 1, 17, g, -2, 3),
      "max clip+NaN",
      0,
    );
    const avg = averagePool2d(mod, x, dims, { ...attrs, activation: { kind: "relu" } });
    assertClose(avg.data, refAvgPool2d(x, 1, 17, g, false, undefined, 0, Infinity), "avg NaN");
    assert.ok(Number.isNaN(avg.data[3]), "NaN propagates through the average and the clamp");
    // Pads beyond the kernel: some windows hold padding only.
    const empty: WindowAttrs = { kernel: [2, 2], pads: [3, 3, 3, 3], strides: [1, 1] };
    const ge = windowGeometry(6, 5, empty);
    for (const kind of ["f32", "u8", "i8"] as const) {
      const xe = randomInput(r, kind, 6 * 5 * 17);
      assertClose(maxPool2d(mod, xe, dims, empty).data, refMaxPool2d(xe, 1, 17, ge), kind, 0);
      const ids = maxPool2dWithIndices(mod, xe, dims, empty).indices;
      assert.equal(ids[0], -1n);
      for (const cip of [false, true]) {
        assertClose(
          averagePool2d(mod, xe, dims, { ...empty, countIncludePad: cip }).data,
          refAvgPool2d(xe, 1, 17, ge, cip),
          `${kind} empty cip=${cip}`,
        );
      }
    }
    // storage_order 1: column-major index within the plane.
    const so = maxPool2dWithIndices(mod, x, dims, { ...attrs, storageOrder: 1 });
    const sp = refMaxPoolIndices(x, 1, 17, g);
    for (let i = 0; i < sp.length; i++) {
      const iy = Math.floor(sp[i] / 5), ix = sp[i] % 5;
      assert.equal(Number(so.indices[i]), (i % 17) * 30 + ix * 6 + iy);
    }
    assert.equal(mod.heap.bytesInUse, 0);
  });
}

Deno.test("pooling rejects bad input with typed errors and leaks nothing", () => {
  const mod = mods[0];
  const x = new Float32Array(2 * 5 * 5 * 3);
  const u = new Uint8Array(2 * 5 * 5 * 3);
  const dims: Dims4 = [2, 5, 5, 3];
  const k3 = { kernel: [3, 3] as [number, number] };
  const q = { xScale: 0.1, xZero: 0, yScale: 0.1, yZero: 0 };
  const shape: [string, () => unknown][] = [
    ["kernel larger than padded input", () => maxPool2d(mod, x, dims, { kernel: [7, 3] })],
    ["dilated kernel too large", () => maxPool2d(mod, x, dims, { ...k3, dilations: [3, 1] })],
    ["negative pad", () => averagePool2d(mod, x, dims, { ...k3, pads: [-1, 0, 0, 0] })],
    ["3 pads", () => maxPool2d(mod, x, dims, { ...k3, pads: [1, 1, 1] as never })],
    ["zero stride", () => maxPool2d(mod, x, dims, { ...k3, strides: [0, 1] })],
    ["zero dilation", () => maxPool2d(mod, x, dims, { ...k3, dilations: [1, 0] })],
    ["zero kernel", () => maxPool2d(mod, x, dims, { kernel: [0, 3] })],
    ["fractional kernel", () => maxPool2d(mod, x, dims, { kernel: [1.5, 3] })],
    ["unknown auto_pad", () => maxPool2d(mod, x, dims, { ...k3, autoPad: "SAME" as AutoPad })],
    ["wrong data length", () => maxPool2d(mod, x.subarray(1), dims, k3)],
    ["too much data", () => globalMaxPool(mod, new Float32Array(151), dims)],
    ["zero dim", () => maxPool2d(mod, new Float32Array(0), [0, 5, 5, 3], k3)],
    ["zero channels", () => globalAveragePool(mod, new Float32Array(0), [1, 5, 5, 0])],
    ["negative dim", () => globalMaxPool(mod, x, [-2, 5, 5, -3])],
    ["3-D dims", () => maxPool2d(mod, x, [2, 25, 3] as unknown as Dims4, k3)],
    ["Float64Array", () => maxPool2d(mod, new Float64Array(150) as never, dims, k3)],
    ["huge pads", () => maxPool2d(mod, x, dims, { ...k3, pads: [2 ** 30, 0, 2 ** 30, 0] })],
  ];
  const arg: [string, () => unknown][] = [
    ["quant on f32", () => averagePool2d(mod, x, dims, { ...k3, quant: q })],
    ["quant on f32 global", () => globalAveragePool(mod, x, dims, { quant: q })],
    ["zero scale", () => averagePool2d(mod, u, dims, { ...k3, quant: { ...q, xScale: 0 } })],
    ["NaN scale", () => averagePool2d(mod, u, dims, { ...k3, quant: { ...q, yScale: NaN } })],
    ["inf scale", () => globalAveragePool(mod, u, dims, { quant: { ...q, xScale: Infinity } })],
    ["f32 underflow", () => globalAveragePool(mod, u, dims, { quant: { ...q, yScale: 1e-50 } })],
    ["ratio overflow", () => globalAveragePool(mod, u, dims, { quant: { ...q, yScale: 1e-40 } })],
    [
      "u8 zero point 256",
      () => averagePool2d(mod, u, dims, { ...k3, quant: { ...q, yZero: 256 } }),
    ],
    ["u8 zero point -1", () => averagePool2d(mod, u, dims, { ...k3, quant: { ...q, xZero: -1 } })],
    [
      "i8 zero point 128",
      () => globalAveragePool(mod, new Int8Array(150), dims, { quant: { ...q, xZero: 128 } }),
    ],
    [
      "fractional zero point",
      () => averagePool2d(mod, u, dims, { ...k3, quant: { ...q, yZero: 1.5 } }),
    ],
    ["int8 activation", () => maxPool2d(mod, u, dims, { ...k3, activation: { kind: "relu" } })],
    [
      "empty clip",
      () => maxPool2d(mod, x, dims, { ...k3, activation: { kind: "clip", min: 1, max: 0 } }),
    ],
    ["storage order 2", () => maxPool2dWithIndices(mod, x, dims, { ...k3, storageOrder: 2 as 0 })],
  ];
  for (const [what, f] of shape) assert.throws(f, ShapeError, what);
  for (const [what, f] of arg) assert.throws(f, ArgumentError, what);
  // A window of more than 2^23 taps cannot be averaged exactly in int8.
  assert.throws(
    () =>
      averagePool2d(mod, new Uint8Array(3000 * 2800), [1, 3000, 2800, 1], { kernel: [3000, 2800] }),
    ShapeError,
  );
  assert.equal(mod.heap.bytesInUse, 0);
});

// The kernels' own argument order (kernels/abi_pool.ts), for calling them on raw buffers.
type Kernel = (...args: number[]) => void;

for (const mod of mods) {
  Deno.test(`pooling kernels write nothing past their outputs (${mod.build})`, () => {
    const e = mod.exports as unknown as Record<string, Kernel>;
    const r = rng(12);
    const GUARD = 64;
    for (const c of [1, 3, 5, 7, 9, 13, 15, 17, 31, 33, 65, 79]) {
      for (const [kind, es] of [["f32", 4], ["u8", 1], ["i8", 1]] as const) {
        const [n, h, w] = [2, 7, 6];
        const g = windowGeometry(h, w, { kernel: [3, 2], strides: [2, 2], pads: [1, 0, 1, 1] });
        const geo = [g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.padTop, g.padLeft];
        const outLen = n * g.outH * g.outW * c;
        const x = mod.upload(randomInput(r, kind, n * h * w * c));
        const y = mod.heap.alloc(outLen * es + GUARD);
        const idx = mod.heap.alloc(outLen * 4 + GUARD);
        const s = kind === "i8" ? 1 : 0;
        const q = [3, 0.05, 0.07, -2, kind === "i8" ? -128 : 0, kind === "i8" ? 127 : 255];
        const calls: [string, () => void][] = kind === "f32"
          ? [
            ["max", () => e.sqz_f32_maxpool2d(x, n, h, w, c, ...geo, g.outH, g.outW, y, -1e9, 1e9)],
            ["avg", () =>
              e.sqz_f32_avgpool2d(
                x,
                n,
                h,
                w,
                c,
                ...geo,
                g.padBottom,
                g.padRight,
                g.outH,
                g.outW,
                1,
                y,
                -1e9,
                1e9,
              )],
            ["global max", () => e.sqz_f32_global_maxpool(x, n, h * w, c, y)],
            ["global avg", () => e.sqz_f32_global_avgpool(x, n, h * w, c, y)],
          ]
          : [
            ["max", () => e.sqz_i8_maxpool2d(x, s, n, h, w, c, ...geo, g.outH, g.outW, y)],
            ["avg", () =>
              e.sqz_i8_avgpool2d(
                x,
                s,
                n,
                h,
                w,
                c,
                ...geo,
                g.padBottom,
                g.padRight,
                g.outH,
                g.outW,
                0,
                ...q,
                y,
              )],
            ["global max", () => e.sqz_i8_global_maxpool(x, s, n, h * w, c, y)],
            ["global avg", () => e.sqz_i8_global_avgpool(x, s, n, h * w, c, ...q, y)],
          ];
        const idxCall = kind === "f32"
          ? () => e.sqz_f32_maxpool2d_indices(x, n, h, w, c, ...geo, g.outH, g.outW, idx)
          : () => e.sqz_i8_maxpool2d_indices(x, s, n, h, w, c, ...geo, g.outH, g.outW, idx);
        calls.push(["indices", idxCall]);
        for (const [what, call] of calls) {
          const out = what === "indices" ? idx : y;
          const bytes = what === "indices"
            ? outLen * 4
            : what.startsWith("global")
            ? n * c * es
            : outLen * es;
          mod.u8(out, bytes + GUARD).fill(0xa5);
          call();
          const guard = mod.u8(out + bytes, GUARD);
          assert.ok(guard.every((b) => b === 0xa5), `${kind} ${what} C=${c} wrote past its end`);
        }
        mod.heap.free(x);
        mod.heap.free(y);
        mod.heap.free(idx);
      }
    }
    assert.equal(mod.heap.bytesInUse, 0);
  });

  Deno.test(`int8 average scale is f32(xScale / f32(yScale · count)) (${mod.build})`, () => {
    // Found by search: here f32(xScale / (yScale · count)) with one rounding gives −102,
    // MLAS's two roundings −101. Σ(x − xZero) = −782 over a 3×3 window.
    const q = { xScale: 0.09112179279327393, xZero: 0, yScale: 0.07800464332103729, yZero: 0 };
    for (const c of [1, 8, 17]) {
      const x = new Int8Array(9 * c);
      for (let p = 0; p < 9; p++) x.fill(p === 0 ? -86 : -87, p * c, (p + 1) * c);
      const got = averagePool2d(mod, x, [1, 3, 3, c], { kernel: [3, 3], quant: q });
      assert.deepEqual([...got.data], new Array(c).fill(-101), `C=${c}`);
      const gl = globalAveragePool(mod, x, [1, 3, 3, c], { quant: q });
      assert.deepEqual([...gl.data], new Array(c).fill(-101), `global C=${c}`);
    }
  });
}
