// `deno task bench webgpu`: the WebGPU GEMMs (src/runtime/webgpu/) beside the wasm kernels on
// the same problems, on whatever adapter this machine has, whose name is printed first. On a
// software adapter (lavapipe, SwiftShader) the times only show that the path works; the suite
// is meant for a real GPU, where the same command measures it. GPU times include uploading A
// and reading C back (what a single offloaded layer costs today).
import { gpuContext } from "../src/runtime/webgpu/device.ts";
import { GpuGemmBin, GpuGemmF32, GpuGemmI8 } from "../src/runtime/webgpu/gemm.ts";
import { KernelModule } from "../src/kernels/module.ts";
import { PackedGemmF32 } from "../src/kernels/gemm_f32.ts";
import { PackedGemmI8 } from "../src/kernels/gemm_i8.ts";
import { PackedGemmBin } from "../src/kernels/gemm_bin.ts";
import { BackendUnavailableError } from "../src/errors.ts";
import { measureInterleaved, table } from "./timing.ts";
import { seededRandom } from "../src/eval/metrics.ts";

export const WEBGPU_SHAPES: [number, number, number][] = [
  [64, 64, 64],
  [256, 256, 256],
  [512, 512, 512],
  [1, 4096, 1024],
];

export async function benchWebgpu(opts: { json?: boolean; quick?: boolean }): Promise<void> {
  if (!Deno.env.get("XDG_RUNTIME_DIR")) Deno.env.set("XDG_RUNTIME_DIR", await Deno.makeTempDir());
  let ctx;
  try {
    ctx = await gpuContext();
  } catch (e) {
    if (!(e instanceof BackendUnavailableError)) throw e;
    console.log(`webgpu: ${e.message}`);
    return;
  }
  const mod = await KernelModule.load("auto");
  console.log(
    `adapter: ${ctx.adapterName}${
      ctx.software ? " (software: times show only that it works)" : ""
    }` +
      `; packed int8 dot: ${ctx.packedDot}; wasm: ${mod.build}, 1 thread`,
  );
  const r = seededRandom(1);
  const rows: (string | number)[][] = [];
  const shapes = opts.quick ? WEBGPU_SHAPES.slice(0, 2) : WEBGPU_SHAPES;
  for (const [m, n, k] of shapes) {
    const a = Float32Array.from({ length: m * k }, () => r() * 2 - 1);
    const b = Float32Array.from({ length: k * n }, () => r() * 2 - 1);
    const a8 = Uint8Array.from({ length: m * k }, () => Math.floor(r() * 256));
    const b8 = Int8Array.from({ length: k * n }, () => Math.round((r() * 2 - 1) * 127));
    const gf = GpuGemmF32.create(ctx, { k, n, b }), wf = PackedGemmF32.create(mod, { k, n, b });
    const gi = GpuGemmI8.create(ctx, { k, n, b: b8 }),
      wi = PackedGemmI8.create(mod, { k, n, b: b8 });
    const gb = GpuGemmBin.create(ctx, { k, n, b }), wb = PackedGemmBin.create(mod, { k, n, b });
    const io = wi.output({ kind: "i32" }), bo = wb.output({ kind: "i32" });
    const input = { signed: false, zeroPoint: 128 };
    const t = await measureInterleaved([
      () => void wf.run(a, m),
      async () => void await gf.run(a, m),
      () => void wi.run(a8, m, input, io),
      async () => void await gi.run(a8, m, input, { kind: "i32" }),
      () => void wb.run(a, m, bo),
      async () => void await gb.run(a, m, { kind: "i32" }),
    ], { budgetMs: opts.quick ? 1500 : 4000 });
    const macs = m * n * k;
    const gmacs = (ms: number) => (macs / ms / 1e6).toFixed(1);
    for (const [i, name] of ["f32", "int8", "binary"].entries()) {
      const w = t[2 * i].median_ms, g = t[2 * i + 1].median_ms;
      const row = [
        `${m}x${n}x${k}`,
        name,
        w.toFixed(3),
        g.toFixed(3),
        gmacs(w),
        gmacs(g),
        (w / g).toFixed(2),
      ];
      rows.push(row);
      if (opts.json) {
        console.log(JSON.stringify({
          suite: "webgpu",
          adapter: ctx.adapterName,
          shape: [m, n, k],
          kernel: name,
          wasm_ms: w,
          webgpu_ms: g,
        }));
      }
    }
    for (const x of [gf, wf, gi, wi, gb, wb, io, bo]) x.dispose();
  }
  console.log(
    table(
      ["M×N×K", "kernel", "wasm ms", "webgpu ms", "wasm GMAC/s", "gpu GMAC/s", "gpu speedup"],
      rows,
    ),
  );
}
