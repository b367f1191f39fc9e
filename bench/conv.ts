// `deno task bench conv`: sqz f32, int8 and binary convolution against tfjs-backend-wasm
// conv2d / depthwiseConv2d and onnxruntime-web Conv / QLinearConv, single-threaded, one
// process, timed in interleaved rounds. What each time covers:
//   sqz-f32/int8: the convolution on an NHWC input resident in Wasm memory, output copied out
//                 (int8: u8 input, i8 per-channel weights, fp32 requantization to u8, as
//                 QLinearConv); weights packed beforehand.
//   sqz-bin:      input already bit-packed (as from the previous binary layer), output the
//                 fused sign bits of α·dot + β for the next binary layer (as Larq Compute
//                 Engine chains binary convolutions); weights packed beforehand.
//   tfjs-f32:     conv2d/depthwiseConv2d on a resident tensor plus dataSync.
//   ort-*:        session.run, which also copies the input in.
import { KernelModule } from "../src/kernels/module.ts";
import { availableBuilds, type KernelBuild } from "../src/kernels/features.ts";
import { type Dims4, PackedConvBin, PackedConvF32, PackedConvI8 } from "../src/kernels/conv.ts";
import { PackedDepthwiseF32, PackedDepthwiseI8 } from "../src/kernels/dwconv.ts";
import { initTfjs } from "./baselines/tfjs.ts";
import { initOrt } from "./baselines/ort.ts";
import { type ConvLayer, convPad, ortConvF32, ortQLinearConv, tfjsConv } from "./baselines/conv.ts";
import { measureInterleaved, table } from "./timing.ts";

export const CONV_LAYERS: ConvLayer[] = [
  { h: 56, w: 56, cin: 64, cout: 64, k: 3, stride: 1 },
  { h: 28, w: 28, cin: 128, cout: 128, k: 3, stride: 1 },
  { h: 14, w: 14, cin: 256, cout: 256, k: 3, stride: 1 },
  { h: 7, w: 7, cin: 512, cout: 512, k: 3, stride: 1 },
  { h: 56, w: 56, cin: 64, cout: 256, k: 1, stride: 1 },
  { h: 112, w: 112, cin: 32, cout: 32, k: 3, stride: 1, depthwise: true },
  { h: 56, w: 56, cin: 128, cout: 128, k: 3, stride: 2, depthwise: true },
  { h: 224, w: 224, cin: 3, cout: 32, k: 3, stride: 2 },
];

type Runner = { run(): void | Promise<void>; dispose(): void | Promise<void> };

function rand(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 31 - 1) * scale;
  });
}

function layerName(l: ConvLayer): string {
  return `${l.h}x${l.w}x${l.cin}->${l.cout} ${l.k}x${l.k} s${l.stride}${l.depthwise ? " dw" : ""}`;
}

function macs(l: ConvLayer): number {
  const p = convPad(l);
  const oh = Math.floor((l.h + 2 * p - l.k) / l.stride) + 1;
  const ow = Math.floor((l.w + 2 * p - l.k) / l.stride) + 1;
  return oh * ow * l.cout * l.k * l.k * (l.depthwise ? 1 : l.cin);
}

function geometry(l: ConvLayer) {
  const p = convPad(l);
  const groups = l.depthwise ? l.cin : 1;
  const shape = { cout: l.cout, cin: l.cin, kh: l.k, kw: l.k, groups };
  const attrs = {
    strides: [l.stride, l.stride] as [number, number],
    pads: [p, p, p, p] as [number, number, number, number],
  };
  const dims: Dims4 = [1, l.h, l.w, l.cin];
  return { shape, attrs, dims, wlen: l.cout * (l.cin / groups) * l.k * l.k };
}

// Depthwise layers run on the dedicated depthwise kernels, the rest on the general conv.
function sqzF32(mod: KernelModule, l: ConvLayer): Runner {
  const { shape, attrs, dims, wlen } = geometry(l);
  const params = { ...shape, weights: rand(wlen, 2, 0.1), bias: rand(l.cout, 3) };
  const conv = l.depthwise
    ? PackedDepthwiseF32.create(mod, { ...params, c: l.cin })
    : PackedConvF32.create(mod, params);
  const x = mod.upload(rand(l.h * l.w * l.cin, 1));
  const g = conv.geometry(dims, attrs);
  const n = g.dims.reduce((a, b) => a * b);
  const y = mod.heap.alloc(n * 4);
  return {
    run() {
      conv.runResident(x, dims, y, attrs);
      mod.f32(y, n).slice();
    },
    dispose() {
      mod.heap.free(x);
      mod.heap.free(y);
      conv.dispose();
    },
  };
}

// bits = 7: weights in [-63, 63], packed for one dot per 16 MACs (not depthwise: its kernel
// widens to i16 either way).
function sqzI8(mod: KernelModule, l: ConvLayer, bits = 8): Runner {
  const { shape, attrs, dims, wlen } = geometry(l);
  const w = Int8Array.from(rand(wlen, 2), (v) => Math.round(v * (bits === 7 ? 63 : 127)));
  const params = { ...shape, weights: w, bias: new Int32Array(l.cout) };
  const conv = l.depthwise
    ? PackedDepthwiseI8.create(mod, { ...params, c: l.cin })
    : PackedConvI8.create(mod, params);
  const out = conv.output({
    kind: "requant",
    method: "fp32",
    dtype: "uint8",
    scale: 0.02 * 0.01 / 0.05,
    zeroPoint: 0,
  });
  const x = mod.upload(
    Uint8Array.from(rand(l.h * l.w * l.cin, 1), (v) => Math.round((v + 1) * 127.5)),
  );
  const g = conv.geometry(dims, attrs);
  const n = g.dims.reduce((a, b) => a * b);
  const y = mod.heap.alloc(n);
  return {
    run() {
      if (conv instanceof PackedDepthwiseI8) {
        conv.runResident(x, dims, y, attrs, { signed: false, zeroPoint: 128 }, out);
      } else conv.runResident(x, dims, { signed: false, zeroPoint: 128 }, y, out, attrs);
      mod.u8(y, n).slice();
    },
    dispose() {
      mod.heap.free(x);
      mod.heap.free(y);
      out.dispose();
      conv.dispose();
    },
  };
}

function sqzBin(mod: KernelModule, l: ConvLayer): Runner {
  const { shape, attrs, dims, wlen } = geometry(l);
  const conv = PackedConvBin.create(mod, { ...shape, weights: rand(wlen, 2) });
  const out = conv.output({ kind: "bits", alpha: 0.01 });
  const x = conv.packInput(rand(l.h * l.w * l.cin, 1), dims);
  const bytes = conv.outputBytes(dims, out, attrs);
  const y = mod.heap.alloc(bytes);
  return {
    run() {
      conv.runResident(x, dims, y, out, attrs);
      mod.u8(y, bytes).slice();
    },
    dispose() {
      mod.heap.free(x);
      mod.heap.free(y);
      out.dispose();
      conv.dispose();
    },
  };
}

interface Result {
  suite: "conv";
  layer: string;
  impl: string;
  median_ms: number;
  gmacs: number;
  runs: number;
}

export async function benchConv(
  { json = false, layers = CONV_LAYERS, only = undefined as string[] | undefined } = {},
): Promise<Result[]> {
  await initTfjs();
  await initOrt();
  const builds = availableBuilds().filter((b) => b !== "scalar");
  const mods = new Map<KernelBuild, KernelModule>();
  for (const b of builds) mods.set(b, await KernelModule.load(b));
  const results: Result[] = [];
  for (const l of layers) {
    const impls: [string, () => Runner | Promise<Runner>][] = [];
    for (const b of builds) impls.push([`sqz-f32-${b}`, () => sqzF32(mods.get(b)!, l)]);
    for (const b of builds) impls.push([`sqz-int8-${b}`, () => sqzI8(mods.get(b)!, l)]);
    if (!l.depthwise && mods.has("relaxed")) {
      impls.push([`sqz-int7-relaxed`, () => sqzI8(mods.get("relaxed")!, l, 7)]);
    }
    // Binary depthwise convolution is not a thing binary networks use (Larq keeps it in float).
    if (!l.depthwise) {
      impls.push([`sqz-bin-${builds.at(-1)}`, () => sqzBin(mods.get(builds.at(-1)!)!, l)]);
    }
    impls.push(["tfjs-f32", () => tfjsConv(l)]);
    impls.push(["ort-f32", () => ortConvF32(l)]);
    impls.push(["ort-int8", () => ortQLinearConv(l)]);
    const chosen = only ? impls.filter(([i]) => only.some((p) => i.startsWith(p))) : impls;
    const runners: Runner[] = [];
    for (const [, make] of chosen) runners.push(await make());
    const timings = await measureInterleaved(runners.map((r) => () => r.run()), {
      minRounds: 7,
      budgetMs: 3000,
    });
    for (const r of runners) await r.dispose();
    const rows: Result[] = chosen.map(([impl], i) => ({
      suite: "conv",
      layer: layerName(l),
      impl,
      median_ms: +timings[i].median_ms.toFixed(4),
      gmacs: +(macs(l) / timings[i].median_ms / 1e6).toFixed(2),
      runs: timings[i].runs,
    }));
    results.push(...rows);
    if (json) rows.forEach((r) => console.log(JSON.stringify(r)));
    else printLayer(rows);
  }
  if (!json) printSummary(results);
  return results;
}

function printLayer(rs: Result[]): void {
  const by = (impl: string) => rs.find((r) => r.impl === impl)?.median_ms;
  const ratio = (a: number, b?: number) => (b ? `${(b / a).toFixed(2)}x` : "-");
  console.log(rs[0].layer);
  console.log(table(
    ["impl", "median ms", "GMAC/s", "vs tfjs-f32", "vs ort-f32", "vs ort-int8"],
    rs.map((r) => [
      r.impl,
      r.median_ms.toFixed(3),
      r.gmacs.toFixed(1),
      ratio(r.median_ms, by("tfjs-f32")),
      ratio(r.median_ms, by("ort-f32")),
      ratio(r.median_ms, by("ort-int8")),
    ]),
  ));
  console.log();
}

function printSummary(results: Result[]): void {
  const best = (layer: string, prefix: string) => {
    const t = results.filter((r) => r.layer === layer && r.impl.startsWith(prefix)).map((r) =>
      r.median_ms
    );
    return t.length ? Math.min(...t) : NaN;
  };
  const x = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)}x` : "-");
  console.log(
    "Targets: int8 >= 2.5x tfjs f32; int8 >= 1.3x ORT int8 (3x3 layers); binary >= 10x tfjs; f32 >= 1.0x tfjs",
  );
  console.log(table(
    ["layer", "f32 / tfjs", "int8 / tfjs", "int7 / tfjs", "int8 / ort-int8", "bin / tfjs"],
    [...new Set(results.map((r) => r.layer))].map((layer) => {
      const tf = best(layer, "tfjs-f32");
      return [
        layer,
        x(tf / best(layer, "sqz-f32")),
        x(tf / best(layer, "sqz-int8")),
        x(tf / best(layer, "sqz-int7")),
        x(best(layer, "ort-int8") / best(layer, "sqz-int8")),
        x(tf / best(layer, "sqz-bin")),
      ];
    }),
  ));
}
