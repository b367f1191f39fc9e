import assert from "node:assert/strict";
import {
  type ConvAttrs,
  depthwisePackedBytes,
  type Dims4,
  PackedDepthwiseF32,
  PackedDepthwiseI8,
} from "../src/kernels/dwconv.ts";
import { type I8Output, makeI8Output } from "../src/kernels/i8_output.ts";
import { refConv2dF32, refConv2dI8 } from "../src/kernels/reference_conv.ts";
import { refMultiplyByQuantizedMultiplier, refRequantFp32 } from "../src/kernels/reference.ts";
import { quantizeMultiplier } from "../src/kernels/quant_params.ts";
import { type AutoPad, windowGeometry } from "../src/kernels/conv_geometry.ts";
import type { Activation } from "../src/kernels/validate.ts";
import { ArgumentError, ShapeError } from "../src/errors.ts";
import type { KernelModule } from "../src/kernels/module.ts";
import { loadBuilds, randInt, rng } from "./util.ts";

const mods = await loadBuilds();

interface Case {
  dims: Dims4;
  kh: number;
  kw: number;
  attrs: ConvAttrs;
}

const CHANNELS = [1, 3, 4, 7, 8, 15, 16, 17, 33];
const SPATIAL = [1, 2, 3, 7, 8, 13, 16, 17];

/**
 * The grid drawn at random: kernels 1/3/5/7 (sometimes rectangular), strides and
 * dilations 1/2 per axis, every padding mode with asymmetric explicit pads, odd spatial sizes,
 * channel counts around the vector widths, batch 1 and 2; plus MobileNet's 3×3 s1/s2 layers,
 * which take the unrolled interior kernels.
 */
function cases(seed: number, count: number): Case[] {
  const r = rng(seed);
  const pick = <T>(xs: T[]) => xs[randInt(r, 0, xs.length - 1)];
  const pads: AutoPad[] = ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"];
  const out: Case[] = [];
  // MobileNet-style: 3×3, stride 1 or 2, symmetric pads 1 or TF's SAME (asymmetric at s2).
  for (const c of [1, 3, 8, 17, 32, 33]) {
    for (const s of [1, 2]) {
      const h = pick([7, 13, 16, 17]), w = pick([9, 13, 16, 17]);
      out.push({
        dims: [1, h, w, c],
        kh: 3,
        kw: 3,
        attrs: { strides: [s, s], pads: [1, 1, 1, 1] },
      });
      out.push({
        dims: [2, w, h, c],
        kh: 3,
        kw: 3,
        attrs: { strides: [s, s], autoPad: "SAME_UPPER" },
      });
    }
  }
  // The 3×3 row kernels' block widths and edges: rows of 1-3 pixels (per-pixel path), 4-7
  // (blocks of 4), 8+ (blocks of 8 at stride 1); padding on the right only; pads wider than the
  // kernel (rows and columns entirely in the padding); row dilation (still the 3×3 kernels)
  // and column dilation (generic); channel counts around the stride-2 two-group f32 kernel.
  const edge: [Dims4, ConvAttrs][] = [
    [[1, 3, 3, 5], { pads: [0, 0, 0, 0] }],
    [[1, 5, 6, 12], { pads: [1, 1, 1, 1] }],
    [[1, 6, 9, 13], { pads: [1, 1, 1, 1] }],
    [[2, 8, 8, 24], { strides: [2, 2], autoPad: "SAME_UPPER" }],
    [[1, 9, 8, 8], { strides: [2, 2], autoPad: "SAME_LOWER" }],
    [[1, 5, 9, 16], { strides: [1, 2], pads: [4, 4, 4, 4] }],
    [[1, 4, 4, 9], { pads: [3, 0, 5, 6] }],
    [[1, 11, 12, 17], { dilations: [2, 1], pads: [2, 1, 2, 1] }],
    [[1, 11, 12, 7], { dilations: [1, 2], strides: [2, 1], pads: [1, 2, 1, 2] }],
    [[2, 7, 10, 40], { strides: [2, 2], pads: [0, 1, 1, 0] }],
  ];
  for (const [dims, attrs] of edge) out.push({ dims, kh: 3, kw: 3, attrs });
  while (out.length < count) {
    const k = pick([1, 3, 5, 7]);
    const kw = r() < 0.2 ? pick([1, 3, 5, 7]) : k;
    const attrs: ConvAttrs = {
      strides: [pick([1, 2]), pick([1, 2])],
      dilations: r() < 0.7 ? [1, 1] : [pick([1, 2]), pick([1, 2])],
      autoPad: pick(pads),
    };
    if (attrs.autoPad === "NOTSET") {
      attrs.pads = [randInt(r, 0, k), randInt(r, 0, kw), randInt(r, 0, k), randInt(r, 0, kw)];
    }
    const h = pick(SPATIAL), w = pick(SPATIAL);
    try {
      windowGeometry(h, w, { kernel: [k, kw], ...attrs });
    } catch {
      continue; // the window does not fit this input: covered by the error tests
    }
    out.push({ dims: [pick([1, 1, 2]), h, w, pick(CHANNELS)], kh: k, kw, attrs });
  }
  return out;
}

function refShape(c: Case) {
  const g = windowGeometry(c.dims[1], c.dims[2], { kernel: [c.kh, c.kw], ...c.attrs });
  return { n: c.dims[0], c: c.dims[3], cout: c.dims[3], groups: c.dims[3], g };
}

function describe(c: Case): string {
  return `dims=${c.dims} k=${c.kh}x${c.kw} ${JSON.stringify(c.attrs)}`;
}

function randomI8(r: () => number, c: Case, signed: boolean) {
  const [n, h, w, ch] = c.dims;
  const x = signed
    ? Int8Array.from({ length: n * h * w * ch }, () => randInt(r, -128, 127))
    : Uint8Array.from({ length: n * h * w * ch }, () => randInt(r, 0, 255));
  // ±127 and 0/255 extremes included on purpose.
  const wt = Int8Array.from(
    { length: ch * c.kh * c.kw },
    () => r() < 0.1 ? (r() < 0.5 ? 127 : -127) : randInt(r, -127, 127),
  );
  const bias = Int32Array.from({ length: ch }, () => randInt(r, -100000, 100000));
  const za = signed ? randInt(r, -128, 127) : randInt(r, 0, 255);
  return { x, wt, bias, za };
}

const ACTS: Activation[] = [
  { kind: "none" },
  { kind: "relu" },
  { kind: "relu6" },
  { kind: "clip", min: -0.5, max: 0.75 },
];

let f32Cases = 0, i8Cases = 0;

for (const mod of mods) {
  Deno.test(`depthwise f32 matches the reference (${mod.build})`, () => {
    const r = rng(11);
    for (const [i, c] of cases(1001, 220).entries()) {
      const [n, h, w, ch] = c.dims;
      const x = Float32Array.from({ length: n * h * w * ch }, () => r() * 2 - 1);
      const wt = Float32Array.from({ length: ch * c.kh * c.kw }, () => r() * 2 - 1);
      const bias = i % 4 === 3 ? undefined : Float32Array.from({ length: ch }, () => r() - 0.5);
      const act = ACTS[i % ACTS.length];
      const [lo, hi] = act.kind === "relu"
        ? [0, Infinity]
        : act.kind === "relu6"
        ? [0, 6]
        : act.kind === "clip"
        ? [act.min, act.max]
        : [-Infinity, Infinity];
      const dw = PackedDepthwiseF32.create(mod, { c: ch, kh: c.kh, kw: c.kw, weights: wt, bias });
      const got = dw.run(x, c.dims, c.attrs, act);
      const s = refShape(c);
      assert.deepEqual(got.dims, [n, s.g.outH, s.g.outW, ch]);
      const want = refConv2dF32(s, x, wt, bias, lo, hi);
      assert.equal(got.data.length, want.length);
      for (let j = 0; j < want.length; j++) {
        if (!(Math.abs(got.data[j] - want[j]) <= 1e-5 * (1 + c.kh * c.kw))) {
          assert.fail(`${describe(c)} act=${act.kind} [${j}]: ${got.data[j]} vs ${want[j]}`);
        }
      }
      dw.dispose();
      f32Cases++;
    }
  });

  Deno.test(`depthwise int8 i32 accumulators equal the reference exactly (${mod.build})`, () => {
    const r = rng(12);
    for (const [i, c] of cases(2002, 220).entries()) {
      const signed = i % 2 === 1;
      const { x, wt, bias, za } = randomI8(r, c, signed);
      const b = i % 3 ? bias : undefined;
      const dw = PackedDepthwiseI8.create(mod, {
        c: c.dims[3],
        kh: c.kh,
        kw: c.kw,
        weights: wt,
        bias: b,
      });
      const got = dw.run(x, c.dims, c.attrs, { signed, zeroPoint: za }, { kind: "i32" });
      assert.ok(got.data instanceof Int32Array);
      const want = refConv2dI8(refShape(c), x, za, wt, b);
      assert.deepEqual(got.data, want, `${describe(c)} signed=${signed} za=${za}`);
      dw.dispose();
      i8Cases++;
    }
  });

  Deno.test(`depthwise int8 requantization and dequantization match exactly (${mod.build})`, () => {
    const r = rng(13);
    for (const [i, c] of cases(3003, 90).entries()) {
      const signed = i % 2 === 0;
      const { x, wt, bias, za } = randomI8(r, c, signed);
      const ch = c.dims[3];
      const dw = PackedDepthwiseI8.create(mod, { c: ch, kh: c.kh, kw: c.kw, weights: wt, bias });
      const acc = refConv2dI8(refShape(c), x, za, wt, bias);
      // Right shifts 5..20 (a depthwise accumulator is small), a left shift now and then.
      const scale = Float32Array.from(
        { length: ch },
        () => i % 7 === 0 ? 1 + r() : 2 ** -(5 + 15 * r()),
      );
      const input = { signed, zeroPoint: za };
      for (const method of ["gemmlowp", "fp32"] as const) {
        for (const dtype of ["uint8", "int8"] as const) {
          const zp = dtype === "uint8" ? randInt(r, 0, 255) : randInt(r, -128, 127);
          const [tmin, tmax] = dtype === "uint8" ? [0, 255] : [-128, 127];
          const [qmin, qmax] = i % 2 ? [zp, tmax] : [tmin, tmax]; // fused ReLU half the time
          const spec: I8Output = {
            kind: "requant",
            method,
            dtype,
            scale,
            zeroPoint: zp,
            clamp: [qmin, qmax],
          };
          const out = dw.output(spec);
          const got = dw.run(x, c.dims, c.attrs, input, out).data;
          assert.ok(dtype === "uint8" ? got instanceof Uint8Array : got instanceof Int8Array);
          for (let j = 0; j < acc.length; j++) {
            const s = scale[j % ch];
            let want: number;
            if (method === "gemmlowp") {
              const { multiplier, shift } = quantizeMultiplier(s);
              const q = refMultiplyByQuantizedMultiplier(acc[j], multiplier, shift) + zp;
              want = Math.min(Math.max(q, qmin), qmax);
            } else want = refRequantFp32(acc[j], s, zp, qmin, qmax);
            if (got[j] !== want) {
              assert.fail(
                `${method} ${dtype} ${describe(c)} [${j}] acc=${acc[j]}: ${got[j]} vs ${want}`,
              );
            }
          }
          out.dispose();
        }
      }
      const got = dw.run(x, c.dims, c.attrs, input, {
        kind: "f32",
        scale,
        clamp: [-1000, 1000],
      }).data;
      for (let j = 0; j < acc.length; j++) {
        const want = Math.min(
          Math.max(Math.fround(Math.fround(acc[j]) * scale[j % ch]), -1000),
          1000,
        );
        assert.equal(got[j], want, `dequant ${describe(c)} [${j}]`);
      }
      dw.dispose();
    }
  });

  Deno.test(`depthwise resident runs reuse buffers and leave the heap as found (${mod.build})`, () => {
    const before = mod.heap.bytesInUse;
    const r = rng(14);
    const dims: Dims4 = [1, 16, 16, 32];
    const attrs: ConvAttrs = { strides: [2, 2], pads: [0, 0, 1, 1] };
    const x = Float32Array.from({ length: 16 * 16 * 32 }, () => r() * 2 - 1);
    const wt = Float32Array.from({ length: 32 * 9 }, () => r() * 2 - 1);
    const dw = PackedDepthwiseF32.create(mod, { c: 32, kh: 3, kw: 3, weights: wt });
    const px = mod.upload(x);
    const g = dw.geometry(dims, attrs);
    const py = mod.heap.alloc(g.dims.reduce((a, b) => a * b) * 4);
    const once = dw.run(x, dims, attrs, { kind: "relu6" }).data;
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(dw.runResident(px, dims, py, attrs, { kind: "relu6" }), g.dims);
      assert.deepEqual(mod.f32(py, once.length), once);
    }
    mod.heap.free(px);
    mod.heap.free(py);
    dw.dispose();
    assert.equal(mod.heap.bytesInUse, before);
  });
}

Deno.test("depthwise: every build returns identical int8 bytes and i32 accumulators", () => {
  const r = rng(15);
  const c: Case = {
    dims: [2, 19, 23, 37],
    kh: 3,
    kw: 3,
    attrs: { strides: [1, 1], pads: [1, 1, 1, 1] },
  };
  const { x, wt, bias, za } = randomI8(r, c, false);
  const scale = Float32Array.from({ length: 37 }, () => 2 ** -(8 + 5 * r()));
  for (
    const out of [{ kind: "i32" }, {
      kind: "requant",
      method: "gemmlowp",
      dtype: "uint8",
      scale,
      zeroPoint: 3,
    }] as I8Output[]
  ) {
    const results = mods.map((mod) => {
      const dw = PackedDepthwiseI8.create(mod, { c: 37, kh: 3, kw: 3, weights: wt, bias });
      const res = dw.run(x, c.dims, c.attrs, { signed: false, zeroPoint: za }, out).data;
      dw.dispose();
      return res;
    });
    for (const res of results.slice(1)) assert.deepEqual(res, results[0]);
  }
});

Deno.test("depthwise packed sizes match the documented layout in every build", () => {
  for (const mod of mods) {
    const ex = mod.exports as unknown as Record<string, (...a: number[]) => number>;
    for (const c of [1, 3, 4, 8, 9, 33]) {
      for (const [kh, kw] of [[1, 1], [3, 3], [3, 5], [5, 5], [7, 7], [2, 3]]) {
        const s = { c, kh, kw };
        assert.equal(ex.sqz_f32_dwconv_packed_size(c, kh, kw), depthwisePackedBytes(s, "f32"));
        assert.equal(ex.sqz_i8_dwconv_packed_size(c, kh, kw), depthwisePackedBytes(s, "i8"));
      }
    }
  }
});

Deno.test("depthwise test grid covers what the issue asks for", () => {
  const all = [...cases(1001, 220), ...cases(2002, 220)];
  const seen = (f: (c: Case) => unknown) => new Set(all.map(f));
  for (const k of [1, 3, 5, 7]) assert.ok(seen((c) => c.kh).has(k), `kernel ${k}`);
  for (const ch of CHANNELS) assert.ok(seen((c) => c.dims[3]).has(ch), `channels ${ch}`);
  for (const p of ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]) {
    assert.ok(seen((c) => c.attrs.autoPad ?? "NOTSET").has(p as AutoPad), p);
  }
  assert.ok(all.some((c) => c.attrs.strides?.[0] === 2));
  assert.ok(all.some((c) => c.attrs.dilations?.[1] === 2));
  assert.ok(all.some((c) => c.dims[0] === 2));
  assert.ok(all.some((c) => c.attrs.pads && c.attrs.pads[0] !== c.attrs.pads[2]));
});

function expectThrows(mod: KernelModule, fn: () => unknown, type: typeof ShapeError, re: RegExp) {
  const before = mod.heap.bytesInUse;
  assert.throws(fn, (e: unknown) => e instanceof type && re.test((e as Error).message));
  assert.equal(mod.heap.bytesInUse, before, `heap changed after ${re}`);
}

Deno.test("depthwise rejects bad input with typed errors before touching Wasm memory", () => {
  const mod = mods[0];
  const w9 = new Float32Array(4 * 9);
  const dw = PackedDepthwiseF32.create(mod, { c: 4, kh: 3, kw: 3, weights: w9 });
  const qw = new Int8Array(4 * 9).fill(1);
  const dq = PackedDepthwiseI8.create(mod, { c: 4, kh: 3, kw: 3, weights: qw });
  const x = new Float32Array(5 * 5 * 4);
  const xq = new Uint8Array(5 * 5 * 4);
  const u8 = { signed: false, zeroPoint: 0 };

  // create
  expectThrows(
    mod,
    () => PackedDepthwiseF32.create(mod, { c: 4, kh: 3, kw: 3, weights: new Float32Array(35) }),
    ShapeError,
    /weights/,
  );
  expectThrows(
    mod,
    () => PackedDepthwiseF32.create(mod, { c: 0, kh: 3, kw: 3, weights: w9 }),
    ShapeError,
    /channels/,
  );
  expectThrows(
    mod,
    () => PackedDepthwiseF32.create(mod, { c: 4, kh: 3, kw: 2.5, weights: w9 }),
    ShapeError,
    /kernel width/,
  );
  expectThrows(
    mod,
    () =>
      PackedDepthwiseF32.create(mod, {
        c: 4,
        kh: 3,
        kw: 3,
        weights: w9,
        bias: new Float32Array(3),
      }),
    ShapeError,
    /bias/,
  );
  expectThrows(
    mod,
    () => PackedDepthwiseF32.create(mod, { c: 1 << 20, kh: 1 << 10, kw: 1, weights: w9 }),
    ShapeError,
    /exceeds|2 GiB/,
  );
  expectThrows(
    mod,
    () =>
      PackedDepthwiseI8.create(mod, {
        c: 4,
        kh: 3,
        kw: 3,
        weights: Int8Array.from(qw, (v, i) => i === 7 ? -128 : v),
      }),
    ArgumentError,
    /-128/,
  );
  expectThrows(
    mod,
    () =>
      PackedDepthwiseI8.create(mod, { c: 1, kh: 257, kw: 256, weights: new Int8Array(257 * 256) }),
    ShapeError,
    /overflow/,
  );
  expectThrows(
    mod,
    () =>
      PackedDepthwiseI8.create(mod, { c: 4, kh: 3, kw: 3, weights: qw, bias: new Int32Array(2) }),
    ShapeError,
    /bias/,
  );

  // run: shapes
  expectThrows(mod, () => dw.run(x, [1, 5, 5, 3], {}), ShapeError, /channels/);
  expectThrows(mod, () => dw.run(x, [1, 5, 5] as unknown as Dims4, {}), ShapeError, /4-D/);
  expectThrows(
    mod,
    () => dw.run(x, [1, 2, 5, 4], { autoPad: "VALID" }),
    ShapeError,
    /larger than the padded input/,
  );
  expectThrows(
    mod,
    () => dw.run(x, [1, 5, 5, 4], { dilations: [3, 1] }),
    ShapeError,
    /larger than the padded input/,
  );
  expectThrows(mod, () => dw.run(x, [2, 5, 5, 4], {}), ShapeError, /holds/);
  expectThrows(mod, () => dw.run(x, [1, 1 << 20, 1 << 20, 4], {}), ShapeError, /2 GiB/);
  expectThrows(
    mod,
    () =>
      dw.run(x, [1, 5, 5, 4], { pads: [1, 1, 1] as unknown as [number, number, number, number] }),
    ShapeError,
    /pads/,
  );
  expectThrows(mod, () => dw.run(x, [1, 5, 5, 4], { strides: [0, 1] }), ShapeError, /stride/);
  expectThrows(
    mod,
    () => dw.run(x, [1, 5, 5, 4], { pads: [2 ** 30, 0, 2 ** 30, 0], strides: [2 ** 30, 1] }),
    ShapeError,
    /32-bit/,
  );
  expectThrows(
    mod,
    () => dw.run(x, [1, 5, 5, 4], {}, { kind: "clip", min: 2, max: 1 }),
    ArgumentError,
    /clip/,
  );
  expectThrows(mod, () => dw.runResident(12345, [1, 5, 5, 4], 0), ShapeError, /heap block/);
  const small = mod.heap.alloc(16);
  expectThrows(mod, () => dw.runResident(small, [1, 5, 5, 4], small), ShapeError, /needs/);
  mod.heap.free(small);

  // run: int8 arguments
  expectThrows(
    mod,
    () => dq.run(xq, [1, 5, 5, 4], {}, { signed: false, zeroPoint: 256 }, { kind: "i32" }),
    ArgumentError,
    /zero point/,
  );
  expectThrows(
    mod,
    () => dq.run(xq, [1, 5, 5, 4], {}, { signed: false, zeroPoint: 1.5 }, { kind: "i32" }),
    ArgumentError,
    /zero point/,
  );
  expectThrows(
    mod,
    () =>
      dq.run(new Int8Array(100), [1, 5, 5, 4], {}, { signed: true, zeroPoint: -129 }, {
        kind: "i32",
      }),
    ArgumentError,
    /zero point/,
  );
  expectThrows(
    mod,
    () => dq.run(xq, [1, 5, 5, 4], {}, { signed: true, zeroPoint: 0 }, { kind: "i32" }),
    ArgumentError,
    /signed/,
  );
  expectThrows(
    mod,
    () => dq.run(xq, [1, 5, 5, 4], {}, u8, { kind: "f32", scale: 0 }),
    ArgumentError,
    /scale/,
  );
  expectThrows(
    mod,
    () => dq.run(xq, [1, 5, 5, 4], {}, u8, { kind: "f32", scale: NaN }),
    ArgumentError,
    /scale/,
  );
  expectThrows(
    mod,
    () =>
      dq.run(xq, [1, 5, 5, 4], {}, u8, {
        kind: "requant",
        method: "fp32",
        dtype: "uint8",
        scale: -1,
        zeroPoint: 0,
      }),
    ArgumentError,
    /scale/,
  );
  expectThrows(
    mod,
    () =>
      dq.run(xq, [1, 5, 5, 4], {}, u8, {
        kind: "requant",
        method: "fp32",
        dtype: "uint8",
        scale: 0.1,
        zeroPoint: 300,
      }),
    ArgumentError,
    /zero point/,
  );
  expectThrows(
    mod,
    () => dq.run(xq, [1, 5, 5, 4], {}, u8, { kind: "f32", scale: new Float32Array(3) }),
    ShapeError,
    /scale/,
  );
  // Output params laid out for another channel count, or in another module.
  const other = PackedDepthwiseI8.create(mod, { c: 8, kh: 1, kw: 1, weights: new Int8Array(8) });
  const foreign = mods.at(-1)!;
  const outs = [other.output({ kind: "i32" })];
  if (foreign !== mod) outs.push(makeI8Output(foreign, 4, { kind: "i32" }));
  for (const wrongOut of outs) {
    expectThrows(
      mod,
      () => dq.run(xq, [1, 5, 5, 4], {}, u8, wrongOut),
      ArgumentError,
      /another layer/,
    );
    wrongOut.dispose();
  }
  other.dispose();
  expectThrows(
    mod,
    () => dq.run(xq.subarray(0, 99), [1, 5, 5, 4], {}, u8, { kind: "i32" }),
    ShapeError,
    /holds/,
  );

  dw.dispose();
  dq.dispose();
  expectThrows(mod, () => dw.run(x, [1, 5, 5, 4], {}), ArgumentError, /disposed/);
});

Deno.test("depthwise test counts", () => {
  // Informational: how many randomized configurations ran per precision (all builds).
  console.log(`f32 cases: ${f32Cases}, int8 cases: ${i8Cases}`);
});
