import assert from "node:assert/strict";
import {
  type ConvAttrs,
  type Dims4,
  PackedConvBin,
  PackedConvF32,
  PackedConvI8,
} from "../src/kernels/conv.ts";
import { refConv2dBin, refConv2dF32, refConv2dI8 } from "../src/kernels/reference_conv.ts";
import {
  refMultiplyByQuantizedMultiplier,
  refPackSignBits,
  refRequantFp32,
} from "../src/kernels/reference.ts";
import { quantizeMultiplier } from "../src/kernels/quant_params.ts";
import { makeI8Output } from "../src/kernels/i8_output.ts";
import { type AutoPad, windowGeometry } from "../src/kernels/conv_geometry.ts";
import { ArgumentError, ShapeError } from "../src/errors.ts";
import { loadBuilds, randInt, rng } from "./util.ts";

const mods = await loadBuilds();

interface Case {
  dims: Dims4;
  cout: number;
  k: number;
  groups: number;
  attrs: ConvAttrs;
}

/**
 * Configurations over the grid: kernels 1/3/5/7, strides 1/2, dilations 1/2, groups
 * 1/2/C, odd spatial sizes, channel counts off the vector width, every padding mode.
 */
function cases(seed: number, count: number): Case[] {
  const r = rng(seed);
  const pick = <T>(xs: T[]) => xs[randInt(r, 0, xs.length - 1)];
  const pads: AutoPad[] = ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"];
  const out: Case[] = [];
  while (out.length < count) {
    const k = pick([1, 3, 5, 7]);
    const s = pick([1, 2]);
    const d = pick([1, 2]);
    const groupsKind = pick(["1", "2", "C"]);
    const cinBase = pick([1, 3, 5, 7, 8, 15, 17, 33]);
    const cin = groupsKind === "2" ? cinBase * 2 : cinBase;
    const groups = groupsKind === "1" ? 1 : groupsKind === "2" ? 2 : cin;
    const cout = groups * pick([1, 3, 4, 5, 9]);
    const h = pick([1, 2, 3, 7, 9, 13]), w = pick([1, 4, 5, 8, 11]);
    const autoPad = pick(pads);
    const attrs: ConvAttrs = { strides: [s, pick([1, 2])], dilations: [d, d], autoPad };
    if (autoPad === "NOTSET") {
      attrs.pads = [randInt(r, 0, k), randInt(r, 0, k), randInt(r, 0, k), randInt(r, 0, k)];
    }
    try {
      windowGeometry(h, w, { kernel: [k, k], ...attrs });
    } catch {
      continue; // the window does not fit this input: covered by the error tests
    }
    out.push({ dims: [pick([1, 1, 2]), h, w, cin], cout, k, groups, attrs });
  }
  return out;
}

function refShape(c: Case) {
  const g = windowGeometry(c.dims[1], c.dims[2], { kernel: [c.k, c.k], ...c.attrs });
  return { n: c.dims[0], c: c.dims[3], cout: c.cout, groups: c.groups, g };
}

for (const mod of mods) {
  Deno.test(`conv2d f32 matches the reference (${mod.build})`, () => {
    const r = rng(1);
    for (const c of cases(101, 60)) {
      const [n, h, w, cin] = c.dims;
      const x = Float32Array.from({ length: n * h * w * cin }, () => r() * 2 - 1);
      const wt = Float32Array.from(
        { length: c.cout * (cin / c.groups) * c.k * c.k },
        () => r() * 2 - 1,
      );
      const bias = Float32Array.from({ length: c.cout }, () => r() - 0.5);
      const conv = PackedConvF32.create(mod, {
        cout: c.cout,
        cin,
        kh: c.k,
        kw: c.k,
        groups: c.groups,
        weights: wt,
        bias,
      });
      const relu = r() < 0.5;
      const got = conv.run(x, c.dims, c.attrs, relu ? { kind: "relu" } : undefined);
      const want = refConv2dF32(refShape(c), x, wt, bias, relu ? 0 : -Infinity);
      conv.dispose();
      assert.equal(got.data.length, want.length);
      for (let i = 0; i < want.length; i++) {
        if (Math.abs(got.data[i] - want[i]) > 1e-4) {
          assert.fail(`${JSON.stringify(c)} [${i}]: ${got.data[i]} vs ${want[i]}`);
        }
      }
    }
  });

  Deno.test(`conv2d f32 with 1–4 input channels (the direct first-layer kernel) matches the reference (${mod.build})`, () => {
    const r = rng(17);
    const pick = <T>(xs: T[]) => xs[randInt(r, 0, xs.length - 1)];
    const pads: AutoPad[] = ["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"];
    const acts = [undefined, { kind: "relu" } as const, { kind: "relu6" } as const];
    let ran = 0;
    for (let t = 0; ran < 120; t++) {
      const cin = 1 + (t % 4);
      // Kernels 3/5/7 mostly, square or not; 1 (strided: pointwise takes the GEMM), 2, 4, 6.
      const kh = t % 3 ? pick([3, 5, 7]) : pick([1, 2, 3, 4, 5, 6, 7]);
      const kw = t % 5 === 4 ? pick([1, 2, 3, 5, 7]) : kh;
      // Widths around the 5- and 6-pixel tiles (± 1) and the tile + border splits; cout around
      // the 8-channel panel (1, odd, 8 ± 1, 16 ± 1, 32 ± 1).
      const h = pick([1, 2, 3, 5, 7, 12, 19]), w = pick([1, 4, 5, 6, 7, 11, 12, 13, 23, 31]);
      const cout = pick([1, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33]);
      const autoPad = pick(pads);
      const d = r() < 0.2 ? 2 : 1;
      const attrs: ConvAttrs = {
        strides: [randInt(r, 1, 2), randInt(r, 1, 2)],
        dilations: [d, r() < 0.8 ? d : 3 - d],
        autoPad,
      };
      // Asymmetric padding, sometimes wider than the window (rows of bias only).
      if (autoPad === "NOTSET") {
        attrs.pads = [
          randInt(r, 0, kh + 1),
          randInt(r, 0, kw + 1),
          randInt(r, 0, kh + 1),
          randInt(r, 0, kw + 1),
        ];
      }
      let g;
      try {
        g = windowGeometry(h, w, { kernel: [kh, kw], ...attrs });
      } catch {
        continue;
      }
      ran++;
      const n = randInt(r, 1, 3);
      const x = Float32Array.from({ length: n * h * w * cin }, () => r() * 2 - 1);
      const wt = Float32Array.from({ length: cout * cin * kh * kw }, () => r() * 2 - 1);
      const bias = r() < 0.8 ? Float32Array.from({ length: cout }, () => r() - 0.5) : undefined;
      const conv = PackedConvF32.create(mod, { cout, cin, kh, kw, weights: wt, bias });
      const act = acts[t % 3];
      const got = conv.run(x, [n, h, w, cin], attrs, act);
      const [lo, hi] = act?.kind === "relu" ? [0, Infinity] : act ? [0, 6] : [-Infinity, Infinity];
      const want = refConv2dF32({ n, c: cin, cout, groups: 1, g }, x, wt, bias, lo, hi);
      conv.dispose();
      assert.equal(got.data.length, want.length);
      for (let i = 0; i < want.length; i++) {
        if (!(Math.abs(got.data[i] - want[i]) <= 1e-5 * Math.max(1, Math.abs(want[i])) * kh * kw)) {
          const what = JSON.stringify({ n, h, w, cin, cout, kh, kw, attrs });
          assert.fail(`${what} [${i}]: ${got.data[i]} vs ${want[i]}`);
        }
      }
    }
  });

  Deno.test(`conv2d f32 direct kernel: any pixel range gives the whole layer's bits (${mod.build})`, () => {
    // The ABI promises it (kernels/README.md): each output is bias + its in-bounds taps in
    // (ky, kx, channel) order whichever tile computes it. Ranges here split rows anywhere.
    const r = rng(19);
    const ex = mod.exports as unknown as {
      sqz_f32_conv2d_range(...a: number[]): void;
      sqz_conv_workspace_size(cp: number, kind: number): number;
    };
    for (let t = 0; t < 12; t++) {
      const cin = 1 + (t % 4), k = [3, 5, 7][t % 3], cout = [5, 16, 17][randInt(r, 0, 2)];
      const dims: Dims4 = [randInt(r, 1, 2), randInt(r, 3, 17), randInt(r, 7, 29), cin];
      const attrs: ConvAttrs = {
        strides: [randInt(r, 1, 2), randInt(r, 1, 2)],
        pads: [randInt(r, 0, k), randInt(r, 0, k), randInt(r, 0, k), randInt(r, 0, k)],
      };
      const g = windowGeometry(dims[1], dims[2], { kernel: [k, k], ...attrs });
      const x = Float32Array.from({ length: dims.reduce((a, b) => a * b) }, () => r() * 2 - 1);
      const wt = Float32Array.from({ length: cout * cin * k * k }, () => r() * 2 - 1);
      const bias = Float32Array.from({ length: cout }, () => r() - 0.5);
      const conv = PackedConvF32.create(mod, { cout, cin, kh: k, kw: k, weights: wt, bias });
      const whole = conv.run(x, dims, attrs).data;
      conv.dispose();
      // The same layer through the raw ABI, in random pieces.
      const m = dims[0] * g.outH * g.outW;
      const kk = k * k * cin;
      const b = new Float32Array(kk * cout); // K × N, K = (ky, kx, channel)
      for (let o = 0; o < cout; o++) {
        for (let ci = 0; ci < cin; ci++) {
          for (let tap = 0; tap < k * k; tap++) {
            b[(tap * cin + ci) * cout + o] = wt[(o * cin + ci) * k * k + tap];
          }
        }
      }
      const pb = mod.upload(b), pbias = mod.upload(bias);
      const packed = mod.heap.alloc(mod.exports.sqz_f32_gemm_packed_size(cout, kk));
      mod.exports.sqz_f32_gemm_pack(cout, kk, pb, cout, 1, pbias, packed);
      const cp = mod.upload(Int32Array.of(
        ...dims,
        k,
        k,
        g.sh,
        g.sw,
        g.dh,
        g.dw,
        g.padTop,
        g.padLeft,
        g.outH,
        g.outW,
        cout,
        1,
      ));
      assert.equal(ex.sqz_conv_workspace_size(cp, 0), 0, "the direct kernel needs no workspace");
      const px = mod.upload(x), py = mod.heap.alloc(m * cout * 4);
      const cuts = [0, m];
      for (let i = 0; i < 4; i++) cuts.push(randInt(r, 0, m));
      cuts.sort((a, b) => a - b);
      for (let i = 0; i + 1 < cuts.length; i++) {
        ex.sqz_f32_conv2d_range(cp, px, packed, py, 0, -Infinity, Infinity, cuts[i], cuts[i + 1]);
      }
      const pieces = mod.f32(py, m * cout).slice();
      for (const p of [pb, pbias, packed, cp, px, py]) mod.heap.free(p);
      for (let i = 0; i < whole.length; i++) {
        if (!Object.is(pieces[i], whole[i])) {
          assert.fail(`${JSON.stringify({ dims, k, cout, attrs, cuts })} [${i}]`);
        }
      }
    }
  });

  Deno.test(`conv2d int8 is exact: i32 (ConvInteger) and requantized (QLinearConv) (${mod.build})`, () => {
    const r = rng(2);
    for (const [ci, c] of cases(202, 60).entries()) {
      // Every third case has 7-bit weights, so the i7 layout runs every geometry too.
      const wlo = ci % 3 === 2 ? -64 : -127, whi = ci % 3 === 2 ? 63 : 127;
      const [n, h, w, cin] = c.dims;
      const signed = ci % 2 === 1;
      const x = signed
        ? Int8Array.from({ length: n * h * w * cin }, () => randInt(r, -128, 127))
        : Uint8Array.from({ length: n * h * w * cin }, () => randInt(r, 0, 255));
      const za = signed ? randInt(r, -128, 127) : randInt(r, 0, 255);
      const wt = Int8Array.from(
        { length: c.cout * (cin / c.groups) * c.k * c.k },
        () => randInt(r, wlo, whi),
      );
      const bias = Int32Array.from({ length: c.cout }, () => randInt(r, -20000, 20000));
      const conv = PackedConvI8.create(mod, {
        cout: c.cout,
        cin,
        kh: c.k,
        kw: c.k,
        groups: c.groups,
        weights: wt,
        bias,
      });
      assert.equal(conv.w7, wt.every((v) => v >= -64 && v <= 63));
      const big = mod.build === "relaxed" && c.k * c.k * cin > (conv.w7 ? 75 : 100);
      assert.equal(conv.direct, c.groups === 1 && cin <= 4 && c.k > 1 && !big);
      const acc = refConv2dI8(refShape(c), x, za, wt, bias);
      const i32 = conv.output({ kind: "i32" });
      assert.deepEqual(conv.run(x, c.dims, { signed, zeroPoint: za }, i32, c.attrs).data, acc);
      i32.dispose();
      const scale = Float32Array.from({ length: c.cout }, () => 2 ** -(6 + 10 * r()));
      const zp = randInt(r, 0, 255);
      for (const method of ["gemmlowp", "fp32"] as const) {
        const out = conv.output({
          kind: "requant",
          method,
          dtype: "uint8",
          scale,
          zeroPoint: zp,
          clamp: [zp, 255],
        });
        const got = conv.run(x, c.dims, { signed, zeroPoint: za }, out, c.attrs).data;
        for (let i = 0; i < acc.length; i++) {
          const s = scale[i % c.cout];
          let want: number;
          if (method === "gemmlowp") {
            const { multiplier, shift } = quantizeMultiplier(s);
            want = Math.min(
              Math.max(refMultiplyByQuantizedMultiplier(acc[i], multiplier, shift) + zp, zp),
              255,
            );
          } else want = refRequantFp32(acc[i], s, zp, zp, 255);
          if (got[i] !== want) {
            assert.fail(`${method} ${JSON.stringify(c)} [${i}]: ${got[i]} vs ${want}`);
          }
        }
        out.dispose();
      }
      conv.dispose();
    }
  });

  Deno.test(`conv2d int8 with 1–4 input channels (the direct kernel) is exact in every output mode (${mod.build})`, () => {
    const r = rng(23);
    const pick = <T>(xs: T[]) => xs[randInt(r, 0, xs.length - 1)];
    let ran = 0;
    for (let t = 0; ran < 80; t++) {
      const cin = 1 + (t % 4);
      const kh = t % 3 ? pick([3, 5, 7]) : pick([1, 2, 3, 4, 5, 6, 7]);
      const kw = t % 5 === 4 ? pick([1, 2, 3, 5, 7]) : kh;
      const h = pick([1, 2, 3, 5, 7, 12, 19]), w = pick([1, 4, 5, 6, 7, 11, 23, 31]);
      const cout = pick([1, 3, 7, 8, 9, 15, 16, 17, 32, 33]);
      // Dilation 2 now and then: those calls take the GEMM packing instead.
      const d = r() < 0.15 ? 2 : 1;
      const attrs: ConvAttrs = {
        strides: [randInt(r, 1, 2), randInt(r, 1, 2)],
        dilations: [d, d],
        pads: [
          randInt(r, 0, kh + 1),
          randInt(r, 0, kw + 1),
          randInt(r, 0, kh + 1),
          randInt(r, 0, kw + 1),
        ],
      };
      let g;
      try {
        g = windowGeometry(h, w, { kernel: [kh, kw], ...attrs });
      } catch {
        continue;
      }
      ran++;
      const n = randInt(r, 1, 3), dims: Dims4 = [n, h, w, cin], size = n * h * w * cin;
      const signed = t % 2 === 1;
      const x = signed
        ? Int8Array.from({ length: size }, () => randInt(r, -128, 127))
        : Uint8Array.from({ length: size }, () => randInt(r, 0, 255));
      const za = signed ? randInt(r, -128, 127) : randInt(r, 0, 255);
      const wt = Int8Array.from({ length: cout * cin * kh * kw }, () => randInt(r, -127, 127));
      const bias = r() < 0.8
        ? Int32Array.from({ length: cout }, () => randInt(r, -20000, 20000))
        : undefined;
      const conv = PackedConvI8.create(mod, { cout, cin, kh, kw, weights: wt, bias });
      const big = mod.build === "relaxed" && kh * kw * cin > (conv.w7 ? 75 : 100);
      assert.equal(conv.direct, kh * kw > 1 && !big);
      const acc = refConv2dI8({ n, c: cin, cout, groups: 1, g }, x, za, wt, bias);
      const what = JSON.stringify({ dims, cout, kh, kw, attrs, signed, za });
      const input = { signed, zeroPoint: za };
      const i32 = conv.output({ kind: "i32" });
      assert.deepEqual(conv.run(x, dims, input, i32, attrs).data, acc, what);
      i32.dispose();
      const scale = Float32Array.from({ length: cout }, () => 2 ** -(6 + 10 * r()));
      const outs = [
        { method: "gemmlowp", dtype: "uint8", zp: randInt(r, 0, 255), lo: 0, hi: 255 },
        { method: "fp32", dtype: "uint8", zp: randInt(r, 0, 255), lo: 0, hi: 255 },
        { method: "fp32", dtype: "int8", zp: randInt(r, -128, 127), lo: -128, hi: 127 },
      ] as const;
      for (const o of outs) {
        const out = conv.output({
          kind: "requant",
          method: o.method,
          dtype: o.dtype,
          scale,
          zeroPoint: o.zp,
          clamp: [t % 3 ? o.zp : o.lo, o.hi],
        });
        const got = conv.run(x, dims, input, out, attrs).data;
        const qmin = t % 3 ? o.zp : o.lo;
        for (let i = 0; i < acc.length; i++) {
          const sc = scale[i % cout];
          let want: number;
          if (o.method === "gemmlowp") {
            const { multiplier, shift } = quantizeMultiplier(sc);
            want = Math.min(
              Math.max(refMultiplyByQuantizedMultiplier(acc[i], multiplier, shift) + o.zp, qmin),
              o.hi,
            );
          } else want = refRequantFp32(acc[i], sc, o.zp, qmin, o.hi);
          if (got[i] !== want) {
            assert.fail(`${o.method} ${o.dtype} ${what} [${i}]: ${got[i]} vs ${want}`);
          }
        }
        out.dispose();
      }
      const f = conv.output({ kind: "f32", scale, clamp: [-1, 1] });
      const gotF = conv.run(x, dims, input, f, attrs).data;
      for (let i = 0; i < acc.length; i++) {
        const want = Math.min(Math.max(Math.fround(acc[i] * scale[i % cout]), -1), 1);
        if (gotF[i] !== want) assert.fail(`f32 ${what} [${i}]: ${gotF[i]} vs ${want}`);
      }
      f.dispose();
      conv.dispose();
    }
  });

  Deno.test(`conv2d int8 direct kernel: any pixel range gives the whole layer's values (${mod.build})`, () => {
    const r = rng(29);
    const ex = mod.exports as unknown as {
      sqz_i8_conv2d_direct_range(...a: number[]): void;
      sqz_i8_conv_direct_packed_size(...a: number[]): number;
      sqz_i8_conv_direct_pack(...a: number[]): void;
      sqz_conv_workspace_size(cp: number, kind: number): number;
    };
    for (let t = 0; t < 12; t++) {
      const cin = 1 + (t % 4), k = [3, 5, 7][t % 3], cout = [5, 16, 17][randInt(r, 0, 2)];
      const dims: Dims4 = [randInt(r, 1, 2), randInt(r, 3, 17), randInt(r, 7, 29), cin];
      const attrs: ConvAttrs = {
        strides: [randInt(r, 1, 2), randInt(r, 1, 2)],
        pads: [randInt(r, 0, k), randInt(r, 0, k), randInt(r, 0, k), randInt(r, 0, k)],
      };
      const g = windowGeometry(dims[1], dims[2], { kernel: [k, k], ...attrs });
      const size = dims.reduce((a, b) => a * b);
      const x = Uint8Array.from({ length: size }, () => randInt(r, 0, 255));
      const wt = Int8Array.from({ length: cout * cin * k * k }, () => randInt(r, -127, 127));
      const bias = Int32Array.from({ length: cout }, () => randInt(r, -5000, 5000));
      const za = randInt(r, 0, 255);
      const m = dims[0] * g.outH * g.outW;
      const want = refConv2dI8({ n: dims[0], c: cin, cout, groups: 1, g }, x, za, wt, bias);
      const pw = mod.upload(wt), pbias = mod.upload(bias);
      const packed = mod.heap.alloc(ex.sqz_i8_conv_direct_packed_size(cout, cin, k, k));
      ex.sqz_i8_conv_direct_pack(cout, cin, k, k, pw, pbias, packed);
      const cp = mod.upload(Int32Array.of(
        ...dims,
        k,
        k,
        g.sh,
        g.sw,
        1,
        1,
        g.padTop,
        g.padLeft,
        g.outH,
        g.outW,
        cout,
        1,
      ));
      const ws = mod.heap.alloc(ex.sqz_conv_workspace_size(cp, 3));
      const px = mod.upload(x), py = mod.heap.alloc(m * cout * 4);
      const out = makeI8Output(mod, cout, { kind: "i32" });
      const cuts = [0, m];
      for (let i = 0; i < 4; i++) cuts.push(randInt(r, 0, m));
      cuts.sort((a, b) => a - b);
      for (let i = 0; i + 1 < cuts.length; i++) {
        ex.sqz_i8_conv2d_direct_range(
          cp,
          px,
          0,
          za,
          packed,
          py,
          ws,
          0,
          out.ptr,
          cuts[i],
          cuts[i + 1],
        );
      }
      const got = mod.i32(py, m * cout).slice();
      out.dispose();
      for (const p of [pw, pbias, packed, cp, ws, px, py]) mod.heap.free(p);
      assert.deepEqual(got, want, JSON.stringify({ dims, k, cout, attrs, cuts }));
    }
  });

  Deno.test(`conv2d binary is exact with one-padding, and its bit output packs (${mod.build})`, () => {
    const r = rng(3);
    const extra: Case[] = [
      { dims: [1, 6, 5, 130], cout: 9, k: 3, groups: 1, attrs: { pads: [1, 1, 1, 1] } },
      { dims: [1, 5, 5, 256], cout: 4, k: 3, groups: 2, attrs: { autoPad: "SAME_UPPER" } },
      // Pointwise: the bit-packed pixels are the GEMM rows (no im2col).
      { dims: [2, 5, 4, 70], cout: 6, k: 1, groups: 1, attrs: {} },
      { dims: [1, 3, 3, 200], cout: 5, k: 1, groups: 1, attrs: { autoPad: "VALID" } },
      // Odd number of 64-bit tap segments: the row's last half-word is padding.
      { dims: [1, 4, 4, 64], cout: 3, k: 3, groups: 1, attrs: { pads: [1, 1, 1, 1] } },
    ];
    for (const c of [...cases(303, 50), ...extra]) {
      const [n, h, w, cin] = c.dims;
      const val = () => (r() < 0.05 ? 0 : r() * 2 - 1);
      const x = Float32Array.from({ length: n * h * w * cin }, val);
      const wt = Float32Array.from({ length: c.cout * (cin / c.groups) * c.k * c.k }, val);
      const conv = PackedConvBin.create(mod, {
        cout: c.cout,
        cin,
        kh: c.k,
        kw: c.k,
        groups: c.groups,
        weights: wt,
      });
      const dot = refConv2dBin(refShape(c), x, wt);
      const o = conv.output({ kind: "i32" });
      assert.deepEqual(conv.run(x, c.dims, o, c.attrs).data, dot, JSON.stringify(c));
      const alpha = Float32Array.from({ length: c.cout }, () => 0.1 + r());
      const beta = Float32Array.from({ length: c.cout }, () => r() * 4 - 2);
      const y = Float32Array.from(
        dot,
        (v, i) => Math.fround(Math.fround(v * alpha[i % c.cout]) + beta[i % c.cout]),
      );
      const bits = conv.output({ kind: "bits", alpha, bias: beta });
      const pixels = dot.length / c.cout;
      assert.deepEqual(conv.run(x, c.dims, bits, c.attrs).data, refPackSignBits(y, pixels, c.cout));
      conv.dispose();
    }
  });
}

Deno.test("conv2d rejects bad layers with typed errors before running", () => {
  const mod = mods.at(-1)!;
  const w = new Float32Array(4 * 3 * 3 * 3);
  assert.throws(
    () => PackedConvF32.create(mod, { cout: 4, cin: 3, kh: 3, kw: 3, groups: 2, weights: w }),
    ShapeError,
  );
  assert.throws(
    () => PackedConvF32.create(mod, { cout: 4, cin: 3, kh: 3, kw: 3, weights: w.subarray(1) }),
    ShapeError,
  );
  assert.throws(
    () => PackedConvF32.create(mod, { cout: 4, cin: 3, kh: 0, kw: 3, weights: w }),
    ShapeError,
  );
  const conv = PackedConvF32.create(mod, { cout: 4, cin: 3, kh: 3, kw: 3, weights: w });
  const x = new Float32Array(2 * 2 * 3);
  // Kernel larger than the (unpadded) input, a negative pad, a channel mismatch, 3-D input.
  assert.throws(() => conv.run(x, [1, 2, 2, 3]), ShapeError);
  assert.throws(() => conv.run(x, [1, 2, 2, 3], { pads: [-1, 1, 1, 1] }), ShapeError);
  assert.throws(() => conv.run(x, [1, 2, 2, 4], { pads: [1, 1, 1, 1] }), ShapeError);
  assert.throws(() => conv.run(x, [1, 2, 2] as unknown as Dims4), ShapeError);
  assert.throws(() => conv.run(x.subarray(1), [1, 2, 2, 3], { pads: [1, 1, 1, 1] }), ShapeError);
  // Sizes that overflow 32-bit indexing are refused before any allocation.
  assert.throws(() => conv.run(x, [1, 65536, 65536, 3], { pads: [1, 1, 1, 1] }), ShapeError);
  assert.throws(() => conv.run(x, [1, 2, 2, 3], { autoPad: "SAME" as never }), ShapeError);
  conv.dispose();
  assert.throws(() => conv.run(x, [1, 2, 2, 3], { pads: [1, 1, 1, 1] }), ArgumentError);
  const q = PackedConvI8.create(mod, { cout: 1, cin: 1, kh: 1, kw: 1, weights: Int8Array.of(3) });
  assert.throws(
    () =>
      q.run(
        Uint8Array.of(1),
        [1, 1, 1, 1],
        { signed: false, zeroPoint: 300 },
        q.output({ kind: "i32" }),
      ),
    ArgumentError,
  );
  assert.throws(
    () => PackedConvI8.create(mod, { cout: 1, cin: 1, kh: 1, kw: 1, weights: Int8Array.of(-128) }),
    ArgumentError,
  );
});
