import assert from "node:assert/strict";
import { availableBuilds, bestBuild, detectFeatures } from "../src/kernels/features.ts";
import { KernelModule } from "../src/kernels/module.ts";

const builds = ["scalar", "simd", "relaxed"] as const;

Deno.test("feature detection picks the best build this runtime runs", () => {
  const f = detectFeatures();
  // Deno 2's V8 has both SIMD128 and relaxed SIMD.
  assert(f.simd && f.relaxedSimd);
  assert.equal(bestBuild(f), "relaxed");
  assert.equal(bestBuild({ simd: true, relaxedSimd: false }), "simd");
  assert.equal(bestBuild({ simd: false, relaxedSimd: false }), "scalar");
  assert.deepEqual(availableBuilds(), ["scalar", "simd", "relaxed"]);
});

Deno.test("every build is standalone: imports only env.abort, exports the ABI", async () => {
  for (const build of builds) {
    const bytes = await Deno.readFile(
      new URL(`../kernels/build/sqz-${build}.wasm`, import.meta.url),
    );
    const mod = new WebAssembly.Module(bytes);
    const imports = WebAssembly.Module.imports(mod).map((i) => `${i.module}.${i.name}`);
    assert(imports.every((i) => i === "env.abort"), `${build} imports ${imports}`);
    const exports = WebAssembly.Module.exports(mod).map((e) => e.name);
    for (
      const name of [
        "memory",
        "sqz_abi_version",
        "sqz_isa",
        "sqz_heap_base",
        "sqz_f32_gemm_pack",
        "sqz_f32_gemm",
        "sqz_i8_gemm_pack",
        "sqz_i8_gemm",
        "sqz_i7_gemm_pack",
        "sqz_i7_gemm",
        "sqz_i7_conv2d",
        "sqz_bin_pack_weights",
        "sqz_bin_pack_rows",
        "sqz_bin_gemm",
        "sqz_f32_im2col",
        "sqz_f32_col2im",
        "sqz_f32_transpose",
        "sqz_f32_im2row_nhwc",
        "sqz_f32_row2im_nhwc",
      ]
    ) assert(exports.includes(name), `${build} lacks export ${name}`);
  }
});

Deno.test("each build reports its own ISA", async () => {
  for (const [i, build] of builds.entries()) {
    const m = await KernelModule.load(build);
    assert.equal(m.exports.sqz_isa(), i);
    assert.equal(m.exports.sqz_abi_version(), 1);
  }
});
