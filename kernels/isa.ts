// Which instruction set this build was compiled for. One source, three builds: the asc
// targets in asconfig.json set ASC_FEATURE_SIMD / ASC_FEATURE_RELAXED_SIMD, and every
// `if (ASC_FEATURE_…)` below is resolved at compile time, so each .wasm holds only the
// microkernels of its own ISA.
export const ISA_SCALAR: i32 = 0;
export const ISA_SIMD128: i32 = 1;
export const ISA_RELAXED: i32 = 2;

// @ts-ignore: decorator
@inline export function isa(): i32 {
  if (ASC_FEATURE_RELAXED_SIMD) return ISA_RELAXED;
  if (ASC_FEATURE_SIMD) return ISA_SIMD128;
  return ISA_SCALAR;
}
