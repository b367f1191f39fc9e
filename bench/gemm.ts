// `deno task bench gemm`: sqz's f32, int8 and binary GEMM in each build, against
// tfjs-backend-wasm (XNNPACK) f32 matMul and onnxruntime-web MatMul / MatMulInteger, all
// single-threaded in one process. Implementations are timed in interleaved rounds
// (bench/timing.ts) so that the machine's slow phases hit them all alike.
//
// What each impl's time covers, so that ratios compare like with like:
//   sqz-*:      the GEMM on A resident in Wasm memory, then C copied out to a new JS array
//               (weights packed beforehand, as at model load); sqz-bin also sign-packs the
//               f32 A rows first and writes f32 C = α·dot (its int8 twin writes i32 C, as
//               MatMulInteger does); sqz-bin-bits-* takes A already bit-packed, as a binary
//               layer gets it from the previous one's fused sign output.
//   tfjs-f32:   tf.matMul on resident tensors, then dataSync() of C: the same work.
//   ort-*:      session.run, which also copies A into its heap: ORT's API has no way to keep
//               an input resident on the wasm EP, so that copy is part of its cost.
//
// With --threads N (N > 1) the relaxed sqz rows run again on N threads, in the same
// interleaved rounds, each row carrying its `threads`. ORT's rows run on N threads only: its
// thread pool belongs to its wasm module (env.wasm.numThreads, read once per process), and
// every session uses all of it whatever its intraOpNumThreads, so its 1-thread figures come
// from a run without --threads, and they are timed in rounds of their own (timeRunners). tfjs stays on one thread:
// its threaded binary cannot start under Deno (it spawns its pthread workers from a Blob
// URL and CommonJS, which node:worker_threads refuses with ERR_WORKER_PATH).
import { KernelModule } from "../src/kernels/module.ts";
import { availableBuilds, type KernelBuild } from "../src/kernels/features.ts";
import { PackedGemmF32 } from "../src/kernels/gemm_f32.ts";
import { PackedGemmI8 } from "../src/kernels/gemm_i8.ts";
import { binRowBytes, PackedGemmBin } from "../src/kernels/gemm_bin.ts";
import { PackedGemmQ4 } from "../src/kernels/gemm_q4.ts";
import { initTfjs, tfjsInfo, tfjsMatMul } from "./baselines/tfjs.ts";
import { initOrt, ortInfo, ortMatMulF32, ortMatMulInteger } from "./baselines/ort.ts";
import { measureInterleaved, table } from "./timing.ts";

export const GEMM_SHAPES: [number, number, number][] = [
  [1, 1024, 1024],
  // Batch-1 GEMV of an LLM-sized layer: memory-bound, where int4 weights pay (64 MB in f32).
  [1, 4096, 4096],
  [64, 1024, 1024],
  [256, 256, 256],
  [512, 512, 512],
  [1024, 1024, 1024],
  [3136, 64, 576],
];

interface Result {
  suite: "gemm";
  shape: [number, number, number];
  impl: string;
  threads: number;
  median_ms: number;
  gops: number;
  runs: number;
}

function rand(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

export type Runner = { run(): void | Promise<void>; dispose(): void | Promise<void> };

function sqzF32(mod: KernelModule, m: number, n: number, k: number): Runner {
  const g = PackedGemmF32.create(mod, { k, n, b: rand(k * n, 2) });
  const a = rand(m * k, 1);
  const pa = mod.heap.alloc(m * k * 4), pc = mod.heap.alloc(m * n * 4);
  mod.f32(pa, m * k).set(a);
  return {
    run() {
      g.runResident(m, pa, pc);
      mod.f32(pc, m * n).slice();
    },
    dispose() {
      mod.heap.free(pa);
      mod.heap.free(pc);
      g.dispose();
    },
  };
}

// bits = 7: weights in [-63, 63], which the packer lays out for one dot per 16 MACs.
function sqzI8(mod: KernelModule, m: number, n: number, k: number, bits = 8): Runner {
  const b = Int8Array.from(rand(k * n, 2), (v) => Math.round(v * (bits === 7 ? 63 : 127)));
  const g = PackedGemmI8.create(mod, { k, n, b });
  const out = g.output({ kind: "i32" }); // what ORT's MatMulInteger returns
  const a = Uint8Array.from(rand(m * k, 1), (v) => Math.round((v + 1) * 127.5));
  const pa = mod.heap.alloc(m * k), pc = mod.heap.alloc(m * n * 4);
  mod.u8(pa, m * k).set(a);
  return {
    run() {
      g.runResident(m, pa, { signed: false, zeroPoint: 128 }, pc, out);
      mod.i32(pc, m * n).slice();
    },
    dispose() {
      mod.heap.free(pa);
      mod.heap.free(pc);
      out.dispose();
      g.dispose();
    },
  };
}

// int4 weights (codes and f16 scales packed, 14.8% of f32); the time covers quantizing A's
// rows to int8 blocks, as every run does.
function sqzQ4(mod: KernelModule, m: number, n: number, k: number): Runner {
  const nb = Math.ceil(k / 32);
  const codes = Uint8Array.from(rand(k * n, 2), (v) => Math.min(15, Math.floor((v + 1) * 8)));
  const g = PackedGemmQ4.create(mod, {
    k,
    n,
    codes,
    scales: new Float32Array(n * nb).fill(0.01),
  });
  const pa = mod.heap.alloc(m * k * 4), pc = mod.heap.alloc(m * n * 4);
  mod.f32(pa, m * k).set(rand(m * k, 1));
  return {
    run() {
      g.runResident(m, pa, pc);
      mod.f32(pc, m * n).slice();
    },
    dispose() {
      mod.heap.free(pa);
      mod.heap.free(pc);
      g.dispose();
    },
  };
}

// `fromF32` packs f32 A rows to bits inside the timed region (a first binary layer);
// otherwise A arrives bit-packed, as from the previous binary layer's fused sign output.
function sqzBin(mod: KernelModule, m: number, n: number, k: number, fromF32 = true): Runner {
  const g = PackedGemmBin.create(mod, { k, n, b: rand(k * n, 2) });
  const out = g.output({ kind: "f32", alpha: 0.01 });
  const a = rand(m * k, 1);
  const pf = mod.heap.alloc(m * k * 4);
  const pa = mod.heap.alloc(m * binRowBytes(k)), pc = mod.heap.alloc(m * n * 4);
  mod.f32(pf, m * k).set(a);
  mod.exports.sqz_bin_pack_rows(m, k, pf, k, pa);
  return {
    run() {
      if (fromF32) mod.exports.sqz_bin_pack_rows(m, k, pf, k, pa);
      g.runResident(m, pa, pc, out);
      mod.f32(pc, m * n).slice();
    },
    dispose() {
      for (const p of [pf, pa, pc]) mod.heap.free(p);
      out.dispose();
      g.dispose();
    },
  };
}

/**
 * Interleaved timing; the runners flagged `apart` (ORT's, with a thread pool) get rounds of
 * their own right after the others': ORT's pool threads spin after each run, and interleaved
 * they take the core sqz's second thread needs (measured: sqz's 2-thread speed-up at 512³ fell
 * from 1.78x to 0.90x).
 */
export async function timeRunners(
  runners: Runner[],
  apart: (boolean | undefined)[],
): Promise<{ median_ms: number; runs: number }[]> {
  const out: { median_ms: number; runs: number }[] = new Array(runners.length);
  for (const flag of [false, true]) {
    const idx = runners.map((_, i) => i).filter((i) => !!apart[i] === flag);
    if (!idx.length) continue;
    const t = await measureInterleaved(idx.map((i) => () => runners[i].run()));
    idx.forEach((i, j) => out[i] = t[j]);
  }
  return out;
}

export async function benchGemm(
  {
    json = false,
    shapes = GEMM_SHAPES,
    scalar = false,
    only = undefined as string[] | undefined,
    threads = 1,
  } = {},
): Promise<Result[]> {
  await initTfjs();
  await initOrt(threads);
  const builds = availableBuilds().filter((b) => b !== "scalar");
  const mods = new Map<KernelBuild, KernelModule>();
  for (const b of availableBuilds()) mods.set(b, await KernelModule.load(b));
  const top = builds.at(-1)!;
  const many = threads > 1 ? await KernelModule.load(top, { threads }) : undefined;
  await many?.threadsReady();
  if (many && many.threads !== threads) {
    throw new Error(`sqz: ${threads} threads asked, ${many.threads} run: ${many.threadNote}`);
  }
  if (!json) {
    const t = tfjsInfo(), o = ortInfo();
    console.log(`tfjs ${t.version} ${t.backend}, ${t.threads} thread, simd=${t.simd}`);
    console.log(`onnxruntime-web ${o.version} wasm EP, pool of ${o.numThreads} thread(s)`);
    console.log(`sqz builds: ${[...mods.keys()].join(", ")}\n`);
  }
  const results: Result[] = [];
  for (const [m, n, k] of shapes) {
    const ops = 2 * m * n * k;
    const impls: [string, () => Runner | Promise<Runner>, number?][] = [];
    for (const b of builds) impls.push([`sqz-f32-${b}`, () => sqzF32(mods.get(b)!, m, n, k)]);
    for (const b of builds) impls.push([`sqz-int8-${b}`, () => sqzI8(mods.get(b)!, m, n, k)]);
    if (mods.has("relaxed")) {
      impls.push([`sqz-int7-relaxed`, () => sqzI8(mods.get("relaxed")!, m, n, k, 7)]);
    }
    for (const b of builds) impls.push([`sqz-bin-${b}`, () => sqzBin(mods.get(b)!, m, n, k)]);
    // int4 weight-only: the GEMV / small-batch kernel (no M tiling), for the shapes it is for.
    if (m <= 64) impls.push([`sqz-int4-${top}`, () => sqzQ4(mods.get(top)!, m, n, k)]);
    impls.push([
      `sqz-bin-bits-${builds.at(-1)}`,
      () => sqzBin(mods.get(builds.at(-1)!)!, m, n, k, false),
    ]);
    // The scalar build's binary kernel is the i64.popcnt variant: measured to compare with
    // i8x16.popcnt. Its f32/int8 kernels are slow by design and only run with --scalar.
    impls.push([`sqz-bin-scalar`, () => sqzBin(mods.get("scalar")!, m, n, k)]);
    if (scalar) {
      impls.push([`sqz-f32-scalar`, () => sqzF32(mods.get("scalar")!, m, n, k)]);
      impls.push([`sqz-int8-scalar`, () => sqzI8(mods.get("scalar")!, m, n, k)]);
    }
    impls.push(["tfjs-f32", () => tfjsMatMul(m, n, k)]);
    // ORT's thread pool is global to its wasm module: with --threads every session uses it.
    const ortThreads = many ? threads : 1;
    impls.push(["ort-f32", () => ortMatMulF32(m, n, k, ortThreads), ortThreads]);
    impls.push(["ort-int8", () => ortMatMulInteger(m, n, k, ortThreads), ortThreads]);
    if (many) {
      impls.push([`sqz-f32-${top}`, () => sqzF32(many, m, n, k), threads]);
      impls.push([`sqz-int8-${top}`, () => sqzI8(many, m, n, k), threads]);
      if (top === "relaxed") {
        impls.push([`sqz-int7-relaxed`, () => sqzI8(many, m, n, k, 7), threads]);
      }
      impls.push([`sqz-bin-${top}`, () => sqzBin(many, m, n, k), threads]);
      if (m <= 64) impls.push([`sqz-int4-${top}`, () => sqzQ4(many, m, n, k), threads]);
    }
    const chosen = only ? impls.filter(([i]) => only.some((p) => i.startsWith(p))) : impls;
    const runners: Runner[] = [];
    for (const [, make] of chosen) runners.push(await make());
    const timings = await timeRunners(runners, chosen.map(([i]) => many && i.startsWith("ort")));
    for (const r of runners) await r.dispose();
    for (const [i, [impl, , th = 1]] of chosen.entries()) {
      const t = timings[i];
      const res: Result = {
        suite: "gemm",
        shape: [m, n, k],
        impl,
        threads: th,
        median_ms: +t.median_ms.toFixed(4),
        gops: +(ops / t.median_ms / 1e6).toFixed(2),
        runs: t.runs,
      };
      results.push(res);
      if (json) console.log(JSON.stringify(res));
    }
    if (!json && chosen.length) {
      printShape(results.filter((r) => r.shape[0] === m && r.shape[1] === n && r.shape[2] === k));
    }
  }
  if (!json) printSummary(results);
  return results;
}

function ratio(a: number | undefined, b: number | undefined): string {
  return a && b ? `${(b / a).toFixed(2)}x` : "-";
}

function printShape(rs: Result[]): void {
  const by = (impl: string, threads = 1) =>
    rs.find((r) => r.impl === impl && r.threads === threads)?.median_ms;
  const [m, n, k] = rs[0].shape;
  console.log(`M=${m} N=${n} K=${k}`);
  console.log(table(
    ["impl", "threads", "median ms", "GOPS", "vs tfjs-f32", "vs ort-f32", "vs ort-int8"],
    rs.map((r) => [
      r.impl,
      String(r.threads),
      r.median_ms.toFixed(3),
      r.gops.toFixed(1),
      ratio(r.median_ms, by("tfjs-f32")),
      ratio(r.median_ms, by("ort-f32", r.threads)),
      ratio(r.median_ms, by("ort-int8", r.threads)),
    ]),
  ));
  console.log();
}

// b / a as "1.23x", or "-" where either side was not run (--only).
function rel(b: number, a: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && a > 0 ? `${(b / a).toFixed(2)}x` : "-";
}

function printSummary(results: Result[]): void {
  const best = (shape: number[], prefix: string, threads = 1) =>
    Math.min(
      ...results.filter((r) =>
        r.shape.join() === shape.join() && r.impl.startsWith(prefix) && r.threads === threads &&
        (prefix.includes("bits") || !r.impl.includes("bits"))
      ).map((r) => r.median_ms),
    );
  const rows: string[][] = [];
  for (const shape of new Set(results.map((r) => r.shape.join()))) {
    const s = shape.split(",").map(Number);
    const tf = best(s, "tfjs-f32"), oi = best(s, "ort-int8");
    rows.push([
      `${s.join("x")}`,
      rel(tf, best(s, "sqz-f32")),
      rel(oi, best(s, "sqz-int8")),
      rel(oi, best(s, "sqz-int7")),
      rel(tf, best(s, "sqz-bin")),
      rel(tf, best(s, "sqz-bin-bits")),
      rel(best(s, "sqz-int8"), best(s, "sqz-int4")),
    ]);
  }
  console.log(
    "Targets: f32 >= 1.0x tfjs; int8 >= 1.5x ORT MatMulInteger (512^3, 1024^3), 7-bit weights >= 2.5x; binary >= 12x tfjs; int4 GEMV (1x4096x4096) faster than int8",
  );
  console.log(
    table([
      "M x N x K",
      "sqz-f32 / tfjs",
      "sqz-int8 / ort-int8",
      "int7 / ort-int8",
      "sqz-bin / tfjs",
      "bin-bits / tfjs",
      "int4 / best sqz-int8",
    ], rows),
  );
  const threads = Math.max(...results.map((r) => r.threads));
  if (threads === 1) return;
  // Speed-up on `threads` threads over one, and the lead over ORT at the same thread count.
  const mt: string[][] = [];
  for (const shape of new Set(results.map((r) => r.shape.join()))) {
    const s = shape.split(",").map(Number);
    const up = (p: string) => rel(best(s, p), best(s, p, threads));
    mt.push([
      s.join("x"),
      up("sqz-f32"),
      up("sqz-int8"),
      up("sqz-int7"),
      up("sqz-bin"),
      rel(best(s, "ort-f32", threads), best(s, "sqz-f32", threads)),
      rel(best(s, "ort-int8", threads), best(s, "sqz-int7", threads)),
      rel(best(s, "tfjs-f32"), best(s, "sqz-f32", threads)),
    ]);
  }
  console.log(`\nTarget: >= 1.8x at ${threads} threads over 1 on 512^3`);
  console.log(table([
    "M x N x K",
    "f32 speed-up",
    "int8",
    "int7",
    "bin",
    `f32 / ORT f32 @${threads}`,
    `int7 / ORT int8 @${threads}`,
    `f32 @${threads} / tfjs @1`,
  ], mt));
}
