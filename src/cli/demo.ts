// `sqz demo`: what `deno task start` runs until the service exists. Loads the best kernel
// build, checks each GEMM and convolution against its scalar reference and times it on a
// layer-sized problem.
import {
  detectFeatures,
  KernelModule,
  PackedConvBin,
  PackedConvF32,
  PackedConvI8,
  PackedDepthwiseF32,
  PackedGemmBin,
  PackedGemmF32,
  PackedGemmI8,
  reference,
  referenceConv,
  windowGeometry,
} from "../kernels.ts";

const { refGemmBin, refGemmF32, refGemmI8 } = reference;

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
  convDemo(mod);
  console.log("\nBenchmarks against tfjs and onnxruntime-web: deno task bench gemm|conv");
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

// A ResNet-style 3×3 layer (28×28×128 → 128, pads 1) in each precision, and a MobileNet
// depthwise 3×3, each checked against the reference on its first output pixels.
function convDemo(mod: KernelModule): void {
  const r = lcg(11);
  const [h, w, c] = [28, 28, 128];
  const attrs = { pads: [1, 1, 1, 1] as [number, number, number, number] };
  const dims: [number, number, number, number] = [1, h, w, c];
  const x = Float32Array.from({ length: h * w * c }, () => r() * 2 - 1);
  const wt = Float32Array.from({ length: c * c * 9 }, () => (r() * 2 - 1) * 0.05);
  const g = windowGeometry(h, w, { kernel: [3, 3], ...attrs });
  const shape = { n: 1, c, cout: c, groups: 1, g };
  const macs = h * w * c * c * 9;
  console.log(`\nconv2d 3x3, ${h}x${w}x${c} -> ${c}, NHWC, median of 15 runs:\n`);

  const f32 = PackedConvF32.create(mod, { cout: c, cin: c, kh: 3, kw: 3, weights: wt });
  const yf = f32.run(x, dims, attrs).data;
  const rf = referenceConv.refConv2dF32(shape, x, wt);
  const err = rf.reduce((e, v, i) => Math.max(e, Math.abs(v - yf[i])), 0);
  const px = mod.upload(x), py = mod.heap.alloc(yf.length * 4);
  const tf = timeIt(() => f32.runResident(px, dims, py, attrs));
  row("f32", tf, macs, `max |err| vs reference ${err.toExponential(1)}`, 4, 4);

  const xq = Uint8Array.from(x, (v) => Math.round((v + 1) * 127.5));
  const wq = Int8Array.from(wt, (v) => Math.round(v * 2540));
  const i8 = PackedConvI8.create(mod, { cout: c, cin: c, kh: 3, kw: 3, weights: wq });
  const acc = i8.output({ kind: "i32" });
  const refAcc = referenceConv.refConv2dI8(shape, xq, 128, wq);
  const same = (i8.run(xq, dims, { signed: false, zeroPoint: 128 }, acc, attrs).data as Int32Array)
    .every((v, i) => v === refAcc[i]);
  const out = i8.output({
    kind: "requant",
    method: "fp32",
    dtype: "uint8",
    scale: 1e-4,
    zeroPoint: 0,
  });
  const pq = mod.upload(xq), pq2 = mod.heap.alloc(yf.length);
  const ti = timeIt(() =>
    i8.runResident(pq, dims, { signed: false, zeroPoint: 128 }, pq2, out, attrs)
  );
  row("int8", ti, macs, `i32 accumulators ${same ? "equal" : "DIFFER FROM"} the reference`, 4, 1);

  const bin = PackedConvBin.create(mod, { cout: c, cin: c, kh: 3, kw: 3, weights: wt });
  const dot = bin.run(x, dims, bin.output({ kind: "i32" }), attrs).data as Int32Array;
  const refDot = referenceConv.refConv2dBin(shape, x, wt);
  const binSame = dot.every((v, i) => v === refDot[i]);
  const bits = bin.output({ kind: "bits", alpha: 1 });
  const pb = bin.packInput(x, dims), pbo = mod.heap.alloc(bin.outputBytes(dims, bits, attrs));
  const tb = timeIt(() => bin.runResident(pb, dims, pbo, bits, attrs));
  row(
    "binary",
    tb,
    macs,
    `dots ${binSame ? "equal" : "DIFFER FROM"} the reference (+1 padding)`,
    32,
    1,
  );

  const dw = PackedDepthwiseF32.create(mod, { c, kh: 3, kw: 3, weights: wt.subarray(0, c * 9) });
  const ydw = dw.run(x, dims, attrs).data;
  const rdw = referenceConv.refConv2dF32({ ...shape, groups: c }, x, wt.subarray(0, c * 9));
  const dwErr = rdw.reduce((e, v, i) => Math.max(e, Math.abs(v - ydw[i])), 0);
  const pdw = mod.heap.alloc(ydw.length * 4);
  const td = timeIt(() => dw.runResident(px, dims, pdw, attrs));
  row("dw f32", td, h * w * c * 9, `max |err| vs reference ${dwErr.toExponential(1)}`, 4, 4);
}
