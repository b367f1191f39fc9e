// Depthwise convolution benchmark: sqz's dedicated depthwise kernels (src/kernels/dwconv.ts) in
// f32 and int8 on MobileNet's two hot depthwise shapes, timed in interleaved rounds. What each
// time covers, as in bench/conv.ts: the kernel on an NHWC input resident in Wasm memory, with
// the output copied out to a JS array (int8: u8 input with zero point 128, i8 per-channel
// weights, fp32 requantization to u8, as QLinearConv); weights packed beforehand.
//
//   npx -y deno@2 run -A bench/dwconv.ts [--baselines]   prints a table (GMAC/s); with
//   --baselines also tfjs depthwiseConv2d and ORT Conv / QLinearConv in the same rounds.
import { KernelModule } from "../src/kernels/module.ts";
import { availableBuilds } from "../src/kernels/features.ts";
import { type Dims4, PackedDepthwiseF32, PackedDepthwiseI8 } from "../src/kernels/dwconv.ts";
import { measureInterleaved, table } from "./timing.ts";

export interface DwShape {
  h: number;
  w: number;
  c: number;
  k: number;
  stride: number;
  /** Symmetric padding on every side. */
  pad: number;
}

export const DW_SHAPES: DwShape[] = [
  { h: 112, w: 112, c: 32, k: 3, stride: 1, pad: 1 },
  { h: 56, w: 56, c: 128, k: 3, stride: 2, pad: 1 },
];

export interface DwResult {
  impl: string;
  shape: string;
  median_ms: number;
  gmacs: number;
  runs: number;
}

type Runner = { run(): void | Promise<void>; dispose(): void | Promise<void> };

function rand(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 31 - 1) * scale;
  });
}

export function dwShapeName(s: DwShape): string {
  return `${s.h}x${s.w}x${s.c} ${s.k}x${s.k} s${s.stride} dw`;
}

function outSize(s: DwShape): [number, number] {
  return [
    Math.floor((s.h + 2 * s.pad - s.k) / s.stride) + 1,
    Math.floor((s.w + 2 * s.pad - s.k) / s.stride) + 1,
  ];
}

export function dwMacs(s: DwShape): number {
  const [oh, ow] = outSize(s);
  return oh * ow * s.c * s.k * s.k;
}

function setup(s: DwShape) {
  const dims: Dims4 = [1, s.h, s.w, s.c];
  const attrs = {
    strides: [s.stride, s.stride] as [number, number],
    pads: [s.pad, s.pad, s.pad, s.pad] as [number, number, number, number],
  };
  return { dims, attrs, wlen: s.c * s.k * s.k };
}

function sqzF32(mod: KernelModule, s: DwShape): Runner {
  const { dims, attrs, wlen } = setup(s);
  const dw = PackedDepthwiseF32.create(mod, {
    c: s.c,
    kh: s.k,
    kw: s.k,
    weights: rand(wlen, 2, 0.1),
    bias: rand(s.c, 3),
  });
  const x = mod.upload(rand(s.h * s.w * s.c, 1));
  const n = dw.geometry(dims, attrs).dims.reduce((a, b) => a * b);
  const y = mod.heap.alloc(n * 4);
  return {
    run() {
      dw.runResident(x, dims, y, attrs, { kind: "relu6" });
      mod.f32(y, n).slice();
    },
    dispose() {
      mod.heap.free(x);
      mod.heap.free(y);
      dw.dispose();
    },
  };
}

function sqzI8(mod: KernelModule, s: DwShape): Runner {
  const { dims, attrs, wlen } = setup(s);
  const w = Int8Array.from(rand(wlen, 2), (v) => Math.round(v * 127));
  const dw = PackedDepthwiseI8.create(mod, {
    c: s.c,
    kh: s.k,
    kw: s.k,
    weights: w,
    bias: new Int32Array(s.c),
  });
  const out = dw.output({
    kind: "requant",
    method: "fp32",
    dtype: "uint8",
    scale: 0.02 * 0.01 / 0.05,
    zeroPoint: 0,
  });
  const x = mod.upload(
    Uint8Array.from(rand(s.h * s.w * s.c, 1), (v) => Math.round((v + 1) * 127.5)),
  );
  const n = dw.geometry(dims, attrs).dims.reduce((a, b) => a * b);
  const y = mod.heap.alloc(n);
  const input = { signed: false, zeroPoint: 128 };
  return {
    run() {
      dw.runResident(x, dims, y, attrs, input, out);
      mod.u8(y, n).slice();
    },
    dispose() {
      mod.heap.free(x);
      mod.heap.free(y);
      out.dispose();
      dw.dispose();
    },
  };
}

/** tfjs / ORT on the same shape (bench/baselines/conv.ts); loaded only when asked for. */
async function baselineRunners(s: DwShape): Promise<[string, Runner][]> {
  const { initTfjs } = await import("./baselines/tfjs.ts");
  const { initOrt } = await import("./baselines/ort.ts");
  const { tfjsConv, ortConvF32, ortQLinearConv } = await import("./baselines/conv.ts");
  await initTfjs();
  await initOrt();
  const l = { h: s.h, w: s.w, cin: s.c, cout: s.c, k: s.k, stride: s.stride, depthwise: true };
  return [
    ["tfjs-f32", tfjsConv(l)],
    ["ort-f32", await ortConvF32(l)],
    ["ort-int8", await ortQLinearConv(l)],
  ];
}

/**
 * Times the f32 and int8 depthwise kernels of each module (simd and relaxed builds; pass one
 * or several) on each shape, all implementations of a shape interleaved; median per impl.
 */
export async function benchDwconv(
  mod: KernelModule | KernelModule[],
  shapes: DwShape[] = DW_SHAPES,
  { baselines = false, budgetMs = 3000 } = {},
): Promise<DwResult[]> {
  const mods = Array.isArray(mod) ? mod : [mod];
  const results: DwResult[] = [];
  for (const s of shapes) {
    const impls: [string, Runner][] = [];
    for (const m of mods) impls.push([`sqz-dw-f32-${m.build}`, sqzF32(m, s)]);
    for (const m of mods) impls.push([`sqz-dw-int8-${m.build}`, sqzI8(m, s)]);
    if (baselines) impls.push(...await baselineRunners(s));
    const timings = await measureInterleaved(impls.map(([, r]) => () => r.run()), {
      minRounds: 7,
      budgetMs,
    });
    for (const [, r] of impls) await r.dispose();
    impls.forEach(([impl], i) => {
      results.push({
        impl,
        shape: dwShapeName(s),
        median_ms: +timings[i].median_ms.toFixed(4),
        gmacs: +(dwMacs(s) / timings[i].median_ms / 1e6).toFixed(2),
        runs: timings[i].runs,
      });
    });
  }
  return results;
}

if (import.meta.main) {
  const builds = availableBuilds().filter((b) => b !== "scalar");
  const mods = await Promise.all(builds.map((b) => KernelModule.load(b)));
  const res = await benchDwconv(mods, DW_SHAPES, { baselines: Deno.args.includes("--baselines") });
  for (const shape of new Set(res.map((r) => r.shape))) {
    const rows = res.filter((r) => r.shape === shape);
    const tf = rows.find((r) => r.impl === "tfjs-f32")?.median_ms;
    console.log(shape);
    console.log(table(
      ["impl", "median ms", "GMAC/s", "vs tfjs-f32"],
      rows.map((r) => [
        r.impl,
        r.median_ms.toFixed(3),
        r.gmacs.toFixed(1),
        tf ? `${(tf / r.median_ms).toFixed(2)}x` : "-",
      ]),
    ));
    console.log();
  }
}
