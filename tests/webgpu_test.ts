// The WebGPU GEMMs against the wasm kernels on the same inputs: f32 within rounding, int8 and
// binary bit for bit, over awkward shapes (1, odd, tile ± 1) and every output stage. Without a
// GPU these run on Mesa's lavapipe (Debian's mesa-vulkan-drivers, installed here where apt-get
// is available); the tests skip with a message where no adapter exists.
import assert from "node:assert/strict";
import { gpuContext } from "../src/runtime/webgpu/device.ts";
import {
  GpuGemmBin,
  GpuGemmF32,
  GpuGemmI8,
  type GpuI8Output,
  packSignRows,
} from "../src/runtime/webgpu/gemm.ts";
import { PackedGemmF32 } from "../src/kernels/gemm_f32.ts";
import { PackedGemmI8 } from "../src/kernels/gemm_i8.ts";
import { PackedGemmBin } from "../src/kernels/gemm_bin.ts";
import { refGemmF32 } from "../src/kernels/reference.ts";
import { BackendUnavailableError } from "../src/errors.ts";
import { ensureDebianFile } from "./system_tools.ts";
import { loadBuilds, rng } from "./util.ts";

if (!Deno.env.get("XDG_RUNTIME_DIR")) Deno.env.set("XDG_RUNTIME_DIR", await Deno.makeTempDir());
if (Deno.build.os === "linux") {
  await ensureDebianFile("/usr/share/vulkan/icd.d/lvp_icd.x86_64.json", "mesa-vulkan-drivers");
}
const ctx = await gpuContext().catch((e) => {
  if (!(e instanceof BackendUnavailableError)) throw e;
  console.warn(`skipping WebGPU tests: ${e.message}`);
  return undefined;
});
const mods = ctx ? await loadBuilds() : [];

// M, N, K around the tiles (64 for f32, 32 for int8/binary, 4-byte and 32-bit words along K).
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 7, 3],
  [3, 5, 9],
  [31, 33, 5],
  [33, 31, 127],
  [63, 65, 17],
  [65, 64, 129],
  [2, 130, 300],
  [17, 3, 1000],
  [100, 70, 257],
];

Deno.test({
  name: `webgpu f32 GEMM matches the wasm kernel within rounding (${
    ctx?.adapterName ?? "no adapter"
  })`,
  ignore: !ctx,
  async fn() {
    const r = rng(11);
    for (const [m, n, k] of SHAPES) {
      const a = Float32Array.from({ length: m * k }, () => r() * 2 - 1);
      const b = Float32Array.from({ length: k * n }, () => r() * 2 - 1);
      const bias = Float32Array.from({ length: n }, () => r() - 0.5);
      const g = GpuGemmF32.create(ctx!, { k, n, b, bias });
      const clamp: [number, number] | undefined = n % 2 ? [0, Infinity] : undefined;
      const got = await g.run(a, m, clamp);
      const ref = refGemmF32(m, n, k, a, b, bias, clamp?.[0], clamp?.[1]);
      const w = PackedGemmF32.create(mods[0], { k, n, b, bias });
      const wasm = w.run(a, m, clamp ? { kind: "relu" } : undefined);
      w.dispose();
      g.dispose();
      for (let i = 0; i < m * n; i++) {
        const tol = 1e-5 * Math.sqrt(k) * 4 + 1e-6;
        assert.ok(
          Math.abs(got[i] - ref[i]) <= tol,
          `M=${m} N=${n} K=${k} [${i}] ${got[i]} vs ${ref[i]}`,
        );
        assert.ok(Math.abs(got[i] - wasm[i]) <= tol, `vs wasm [${i}]`);
      }
    }
  },
});

Deno.test({
  name: "webgpu int8 GEMM equals the wasm kernel bit for bit: i32, u8/i8 requantized, f32",
  ignore: !ctx,
  async fn() {
    const r = rng(12);
    for (const [si, [m, n, k]] of SHAPES.entries()) {
      for (const signed of [false, true]) {
        const a = signed
          ? Int8Array.from({ length: m * k }, () => Math.floor(r() * 256) - 128)
          : Uint8Array.from({ length: m * k }, () => Math.floor(r() * 256));
        // Some layers with 7-bit weights, which the wasm packer runs on its other path.
        const wmax = si % 3 === 0 ? 63 : 127;
        const b = Int8Array.from({ length: k * n }, () => Math.round((r() * 2 - 1) * wmax));
        const bias = Int32Array.from({ length: n }, () => Math.floor(r() * 20000) - 10000);
        const zeroPoint = signed ? Math.floor(r() * 40) - 20 : Math.floor(r() * 256);
        const input = { signed, zeroPoint };
        const g = GpuGemmI8.create(ctx!, { k, n, b, bias });
        // The shader without WGSL's packed dot (four extractBits products) gives the same bits.
        if (ctx!.packedDot) {
          const plain = GpuGemmI8.create({ ...ctx!, packedDot: false }, { k, n, b, bias });
          assert.deepEqual(
            await plain.run(a, m, input, { kind: "i32" }),
            await g.run(a, m, input, { kind: "i32" }),
            `unpacked dot M=${m} N=${n} K=${k}`,
          );
          plain.dispose();
        }
        for (const mod of mods) {
          const w = PackedGemmI8.create(mod, { k, n, b, bias });
          const scale = Float32Array.from({ length: n }, () => 1e-4 + r() * 2e-3);
          const outs = [
            { gpu: { kind: "i32" } as const, wasm: { kind: "i32" } as const },
            {
              gpu: { kind: "requant", dtype: "uint8", scale, zeroPoint: 100 } as const,
              wasm: {
                kind: "requant",
                method: "fp32",
                dtype: "uint8",
                scale,
                zeroPoint: 100,
              } as const,
            },
            {
              gpu: {
                kind: "requant",
                dtype: "int8",
                scale,
                zeroPoint: -3,
                clamp: [-3, 127] as [number, number],
              } as const,
              wasm: {
                kind: "requant",
                method: "fp32",
                dtype: "int8",
                scale,
                zeroPoint: -3,
                clamp: [-3, 127] as [number, number],
              } as const,
            },
            { gpu: { kind: "f32", scale } as const, wasm: { kind: "f32", scale } as const },
          ];
          for (const o of outs) {
            const params = w.output(o.wasm as Parameters<typeof w.output>[0]);
            const want = w.run(a, m, input, params);
            params.dispose();
            const got = await g.run(a, m, input, o.gpu as GpuI8Output);
            assert.deepEqual(
              got,
              want,
              `${mod.build} ${o.gpu.kind} signed=${signed} M=${m} N=${n} K=${k}`,
            );
          }
          w.dispose();
        }
        g.dispose();
      }
    }
  },
});

Deno.test({
  name: "webgpu binary GEMM equals the wasm kernel bit for bit: i32, f32 and sign bits",
  ignore: !ctx,
  async fn() {
    const r = rng(13);
    const shapes: [number, number, number][] = [...SHAPES, [5, 129, 4000], [2, 256, 576]];
    for (const [m, n, k] of shapes) {
      const val = () => (r() < 0.05 ? (r() < 0.5 ? 0 : -0) : r() * 2 - 1);
      const a = Float32Array.from({ length: m * k }, val);
      const b = Float32Array.from({ length: k * n }, val);
      const alpha = Float32Array.from({ length: n }, () => 0.05 + r());
      const bias = Float32Array.from({ length: n }, () => r() * 6 - 3);
      const g = GpuGemmBin.create(ctx!, { k, n, b });
      for (const mod of mods) {
        const w = PackedGemmBin.create(mod, { k, n, b });
        const cases = [
          { kind: "i32" } as const,
          { kind: "f32", alpha, bias } as const,
          { kind: "f32", alpha, bias, clamp: [0, Infinity] as [number, number] } as const,
          { kind: "bits", alpha, bias } as const,
        ];
        for (const o of cases) {
          const params = w.output(o);
          const want = w.run(a, m, params);
          params.dispose();
          const got = await g.run(a, m, o);
          assert.deepEqual(got, want, `${mod.build} ${o.kind} M=${m} N=${n} K=${k}`);
        }
        w.dispose();
      }
      // Rows packed once on the host are the wasm layout too.
      assert.deepEqual(
        await g.run(packSignRows(a, m, k), m, { kind: "i32" }),
        await g.run(a, m, { kind: "i32" }),
      );
      g.dispose();
    }
  },
});

Deno.test({
  name: "webgpu GEMMs: bad shapes and parameters are typed errors before any GPU work",
  ignore: !ctx,
  async fn() {
    assert.throws(() => GpuGemmF32.create(ctx!, { k: 0, n: 1, b: new Float32Array(1) }), /K must/);
    assert.throws(
      () => GpuGemmF32.create(ctx!, { k: 1 << 20, n: 1 << 12, b: new Float32Array(4) }),
      /bytes, beyond/,
    );
    const g = GpuGemmI8.create(ctx!, { k: 4, n: 2, b: new Int8Array(8) });
    await assert.rejects(
      () => g.run(new Uint8Array(4), 1, { signed: false, zeroPoint: 300 }, { kind: "i32" }),
      /zero point 300/,
    );
    await assert.rejects(
      () => g.run(new Uint8Array(3), 1, { signed: false, zeroPoint: 0 }, { kind: "i32" }),
      /A has 3 elements/,
    );
    assert.throws(
      () => GpuGemmI8.create(ctx!, { k: 1, n: 1, b: Int8Array.of(-128) }),
      /-128/,
    );
    g.dispose();
  },
});
