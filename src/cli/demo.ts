// `sqz demo`: what `deno task start` runs until the service exists. Loads the best kernel
// build, checks each GEMM against its scalar reference and times it on one layer-sized problem.
import { KernelModule } from "../kernels/module.ts";
import { detectFeatures } from "../kernels/features.ts";
import { PackedGemmF32 } from "../kernels/gemm_f32.ts";
import { PackedGemmI8 } from "../kernels/gemm_i8.ts";
import { PackedGemmBin } from "../kernels/gemm_bin.ts";
import { refGemmBin, refGemmF32, refGemmI8 } from "../kernels/reference.ts";

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

function timeIt(fn: () => void, runs = 15): number {
  // Warm up long enough for V8 to tier the Wasm code up from Liftoff to TurboFan.
  const w0 = performance.now();
  while (performance.now() - w0 < 400) fn();
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    fn();
    t.push(performance.now() - s);
  }
  return t.sort((a, b) => a - b)[runs >> 1];
}

export async function demo(): Promise<void> {
  const f = detectFeatures();
  const mod = await KernelModule.load("auto");
  console.log(
    `sqz kernels: simd128=${f.simd} relaxed-simd=${f.relaxedSimd} -> using the ${mod.build} build`,
  );
  const [m, n, k] = [256, 512, 1024];
  const r = lcg(7);
  const a = Float32Array.from({ length: m * k }, () => r() * 2 - 1);
  const b = Float32Array.from({ length: k * n }, () => r() * 2 - 1);
  console.log(`GEMM ${m}x${n}x${k} (M x N x K), weights packed once, median of 15 runs:\n`);

  const f32 = PackedGemmF32.create(mod, { k, n, b });
  const want = refGemmF32(m, n, k, a, b, undefined);
  const got = f32.run(a, m);
  const err = got.reduce((e, v, i) => Math.max(e, Math.abs(v - want[i])), 0);
  const pa = mod.upload(a), pc = mod.heap.alloc(m * n * 4);
  const tf = timeIt(() => f32.runResident(m, pa, pc));
  row("f32", tf, m * n * k, `max |err| vs reference ${err.toExponential(1)}`, k * n * 4, k * n * 4);

  // int8: symmetric per-channel weights, u8 activations with a zero point.
  const wq = Int8Array.from(b, (v) => Math.round(v * 127));
  const aq = Uint8Array.from(a, (v) => Math.round((v + 1) * 127.5));
  const i8 = PackedGemmI8.create(mod, { k, n, b: wq });
  const out = i8.output({ kind: "i32" });
  const refAcc = refGemmI8(m, n, k, aq, 128, wq);
  const same = (i8.run(aq, m, { signed: false, zeroPoint: 128 }, out) as Int32Array)
    .every((v, i) => v === refAcc[i]);
  const pq = mod.upload(aq), pi = mod.heap.alloc(m * n * 4);
  const ti = timeIt(() => i8.runResident(m, pq, { signed: false, zeroPoint: 128 }, pi, out));
  row(
    "int8",
    ti,
    m * n * k,
    `i32 accumulators ${same ? "equal" : "DIFFER FROM"} the reference`,
    k * n * 4,
    k * n,
  );

  const bin = PackedGemmBin.create(mod, { k, n, b });
  const bo = bin.output({ kind: "i32" });
  const refBin = refGemmBin(m, n, k, a, b);
  const binSame = (bin.run(a, m, bo) as Int32Array).every((v, i) => v === refBin[i]);
  const pb = bin.packRows(a, m), po = mod.heap.alloc(m * n * 4);
  const tb = timeIt(() => bin.runResident(m, pb, po, bo));
  row(
    "binary",
    tb,
    m * n * k,
    `popcount dots ${binSame ? "equal" : "DIFFER FROM"} the reference`,
    k * n * 4,
    k * n / 8,
  );
  console.log(
    `\nint8 is ${(tf / ti).toFixed(1)}x and binary ${(tf / tb).toFixed(1)}x the f32 speed here.`,
  );
  console.log("Benchmarks against tfjs and onnxruntime-web: deno task bench gemm");
}

function row(
  name: string,
  ms: number,
  macs: number,
  check: string,
  f32Bytes: number,
  bytes: number,
) {
  const gops = (2 * macs / ms / 1e6).toFixed(1);
  console.log(
    `  ${name.padEnd(7)} ${ms.toFixed(3).padStart(8)} ms  ${gops.padStart(6)} GOPS  ` +
      `weights ${(f32Bytes / bytes).toFixed(0).padStart(2)}x smaller  ${check}`,
  );
}
