// Runtime feature detection: validate a tiny module that uses one instruction of each
// extension. WebAssembly.validate compiles nothing and never throws on unknown opcodes.
const header = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const typeSec = [0x01, 0x04, 0x01, 0x60, 0x00, 0x00]; // one type: () -> ()
const funcSec = [0x03, 0x02, 0x01, 0x00];
const v128Zero = [0xfd, 0x0c, ...new Array(16).fill(0)];

function moduleWith(body: number[]): Uint8Array<ArrayBuffer> {
  const fn = [0x00, ...body, 0x0b]; // no locals, body, end
  const code = [0x01, fn.length, ...fn];
  return new Uint8Array([...header, ...typeSec, ...funcSec, 0x0a, code.length, ...code]);
}

// i8x16.popcnt (0xfd 0x62) on a v128.const, dropped.
const simdProbe = moduleWith([...v128Zero, 0xfd, 0x62, 0x1a]);
// f32x4.relaxed_madd (0xfd 0x105) on three v128.consts, dropped.
const relaxedProbe = moduleWith([...v128Zero, ...v128Zero, ...v128Zero, 0xfd, 0x85, 0x02, 0x1a]);

export type KernelBuild = "scalar" | "simd" | "relaxed";

export interface WasmFeatures {
  simd: boolean;
  relaxedSimd: boolean;
}

export function detectFeatures(): WasmFeatures {
  const simd = WebAssembly.validate(simdProbe);
  return { simd, relaxedSimd: simd && WebAssembly.validate(relaxedProbe) };
}

/** The fastest build this runtime can run. */
export function bestBuild(f: WasmFeatures = detectFeatures()): KernelBuild {
  return f.relaxedSimd ? "relaxed" : f.simd ? "simd" : "scalar";
}

/** Builds this runtime can run, slowest first. */
export function availableBuilds(f: WasmFeatures = detectFeatures()): KernelBuild[] {
  const builds: KernelBuild[] = ["scalar"];
  if (f.simd) builds.push("simd");
  if (f.relaxedSimd) builds.push("relaxed");
  return builds;
}
