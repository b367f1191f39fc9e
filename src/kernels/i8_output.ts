// Output stages of the int8 kernels (GEMM, convolution): the `params` struct documented in
// kernels/gemm/requant.ts, laid out in Wasm memory once per layer and reused across runs.
import type { KernelModule } from "./module.ts";
import { checkLength } from "./validate.ts";
import { qrange, quantizeMultiplier } from "./quant_params.ts";
import { ArgumentError } from "../errors.ts";

/** Output stages, in kernels/gemm/requant.ts terms. */
export type I8Output =
  | { kind: "i32" }
  | {
    kind: "requant";
    method: "gemmlowp" | "fp32";
    dtype: "uint8" | "int8";
    /** Real multiplier aScale·wScale[n]/outScale, per channel or one for all. */
    scale: number | Float32Array;
    zeroPoint: number;
    /** Clamp in the output's integer domain (fused ReLU: [zeroPoint, max]). */
    clamp?: [number, number];
  }
  | { kind: "f32"; scale: number | Float32Array; clamp?: [number, number] };

export const MODE = {
  i32: 0,
  gemmlowp_uint8: 1,
  gemmlowp_int8: 2,
  fp32_uint8: 3,
  fp32_int8: 4,
  f32: 5,
};

/** An output stage laid out in Wasm memory for one layer; reuse it across runs. */
export class I8OutputParams {
  constructor(
    readonly mod: KernelModule,
    readonly ptr: number,
    readonly mode: number,
    readonly n: number,
    readonly bytesPerElement: number,
  ) {}
  dispose(): void {
    if (this.ptr) this.mod.heap.free(this.ptr);
  }
}

/** Lays out an output stage for n channels (see kernels/gemm/requant.ts for the struct). */
export function makeI8Output(mod: KernelModule, n: number, out: I8Output): I8OutputParams {
  const np = Math.ceil(n / 8) * 8;
  const perChannel = (s: number | Float32Array): Float32Array => {
    const v = typeof s === "number" ? new Float32Array(n).fill(s) : s;
    checkLength("scale", v.length, n);
    for (let i = 0; i < n; i++) {
      if (!(v[i] > 0) || !Number.isFinite(v[i])) {
        throw new ArgumentError(`scale[${i}] = ${v[i]} must be positive and finite`);
      }
    }
    return v;
  };
  let mode: number, bytes: number;
  const header = new DataView(new ArrayBuffer(32));
  let body: Uint8Array;
  if (out.kind === "i32") {
    mode = MODE.i32;
    bytes = 4;
    body = new Uint8Array(0);
  } else if (out.kind === "f32") {
    mode = MODE.f32;
    bytes = 4;
    const [lo, hi] = out.clamp ?? [-Infinity, Infinity];
    if (!(lo <= hi)) throw new ArgumentError(`clamp [${lo}, ${hi}] is empty`);
    header.setFloat32(16, lo, true);
    header.setFloat32(20, hi, true);
    const s = new Float32Array(np);
    s.set(perChannel(out.scale).subarray(0, n));
    body = new Uint8Array(s.buffer);
  } else {
    if (out.dtype !== "uint8" && out.dtype !== "int8") {
      throw new ArgumentError(`requantized output dtype must be uint8 or int8, got ${out.dtype}`);
    }
    mode = MODE[`${out.method}_${out.dtype}` as keyof typeof MODE];
    if (mode === undefined) throw new ArgumentError(`unknown requantization ${out.method}`);
    bytes = 1;
    const [tmin, tmax] = qrange(out.dtype);
    const [lo, hi] = out.clamp ?? [tmin, tmax];
    if (!Number.isInteger(out.zeroPoint) || out.zeroPoint < tmin || out.zeroPoint > tmax) {
      throw new ArgumentError(`zero point ${out.zeroPoint} is outside ${out.dtype}`);
    }
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < tmin || hi > tmax || lo > hi) {
      throw new ArgumentError(`clamp [${lo}, ${hi}] is not a range inside ${out.dtype}`);
    }
    header.setInt32(0, out.zeroPoint, true);
    header.setInt32(4, lo, true);
    header.setInt32(8, hi, true);
    const scale = perChannel(out.scale);
    if (out.method === "fp32") {
      const s = new Float32Array(np);
      s.set(scale.subarray(0, n));
      body = new Uint8Array(s.buffer);
    } else {
      body = new Uint8Array(np * 20);
      const dv = new DataView(body.buffer);
      for (let j = 0; j < np; j++) {
        const { multiplier, shift } = j < n ? quantizeMultiplier(scale[j]) : quantizeMultiplier(0);
        if (shift > 30) throw new ArgumentError(`scale[${j}] = ${scale[j]} is too large`);
        const left = Math.max(shift, 0), right = Math.min(31, Math.max(-shift, 0));
        dv.setInt32(j * 4, multiplier, true);
        dv.setInt32(np * 4 + j * 4, 2 ** left, true);
        dv.setInt32(np * 8 + j * 4, 2 ** right - 1, true);
        dv.setBigInt64(np * 12 + j * 8, 1n << BigInt(32 - right), true);
      }
    }
  }
  const ptr = mod.heap.alloc(32 + body.length);
  mod.u8(ptr, 32).set(new Uint8Array(header.buffer));
  mod.u8(ptr + 32, body.length).set(body);
  return new I8OutputParams(mod, ptr, mode, n, bytes);
}

/** Copies `length` outputs at ptr out of Wasm memory as the array type of the stage's mode. */
export function readI8Output(
  mod: KernelModule,
  ptr: number,
  length: number,
  mode: number,
): Int32Array | Float32Array | Uint8Array | Int8Array {
  const buf = mod.memory.buffer;
  switch (mode) {
    case MODE.i32:
      return new Int32Array(buf, ptr, length).slice();
    case MODE.f32:
      return new Float32Array(buf, ptr, length).slice();
    case MODE.gemmlowp_int8:
    case MODE.fp32_int8:
      return new Int8Array(buf, ptr, length).slice();
    default:
      return new Uint8Array(buf, ptr, length).slice();
  }
}
