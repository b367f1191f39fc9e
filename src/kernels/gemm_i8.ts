// int8 GEMM with weights packed once (QLinearMatMul / TFLite semantics):
//   acc = bias + (A − aZero) · W, then written as i32, requantized u8/i8, or dequantized f32.
import type { KernelModule } from "./module.ts";
import { checkDim, checkElements, checkFinite, checkLength } from "./validate.ts";
import { qrange, quantizeMultiplier } from "./quant_params.ts";
import { ArgumentError, ShapeError } from "../errors.ts";

/** Largest K for which no i32 accumulator can overflow: 255·127·K < 2^31. */
export const MAX_K_I8 = 65536;

export interface GemmI8Weights {
  k: number;
  n: number;
  /** i8 weights in [-127, 127]: K×N row-major, or N×K when `transposed`. */
  b: Int8Array;
  transposed?: boolean;
  /** i32 bias with scale aScale·wScale[n]. */
  bias?: Int32Array;
}

export interface I8Input {
  signed: boolean;
  zeroPoint: number;
}

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

const MODE = { i32: 0, gemmlowp_uint8: 1, gemmlowp_int8: 2, fp32_uint8: 3, fp32_int8: 4, f32: 5 };

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

export class PackedGemmI8 {
  #packed: number;
  private constructor(
    readonly mod: KernelModule,
    readonly k: number,
    readonly n: number,
    packed: number,
  ) {
    this.#packed = packed;
  }

  static create(mod: KernelModule, w: GemmI8Weights): PackedGemmI8 {
    checkDim("K", w.k);
    checkDim("N", w.n);
    if (w.k > MAX_K_I8) {
      throw new ShapeError(`K = ${w.k} exceeds ${MAX_K_I8}, where i32 accumulators could overflow`);
    }
    checkLength("B", w.b.length, checkElements("B", w.k, w.n, 1));
    if (w.bias) checkLength("bias", w.bias.length, w.n);
    for (let i = 0; i < w.k * w.n; i++) {
      if (w.b[i] === -128) {
        throw new ArgumentError(
          `weight ${i} is -128: int8 weights are symmetric, in [-127, 127]`,
        );
      }
    }
    const e = mod.exports;
    const packed = mod.heap.alloc(e.sqz_i8_gemm_packed_size(w.n, w.k) >>> 0);
    const b = mod.upload(w.b.subarray(0, w.k * w.n));
    const bias = w.bias ? mod.upload(w.bias.subarray(0, w.n)) : 0;
    try {
      const [sk, sn] = w.transposed ? [1, w.k] : [w.n, 1];
      e.sqz_i8_gemm_pack(w.n, w.k, b, sk, sn, bias, packed);
    } finally {
      mod.heap.free(b);
      if (bias) mod.heap.free(bias);
    }
    return new PackedGemmI8(mod, w.k, w.n, packed);
  }

  /** Lays out an output stage (see kernels/gemm/requant.ts for the struct). */
  output(out: I8Output): I8OutputParams {
    const n = this.n;
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
          const { multiplier, shift } = j < n
            ? quantizeMultiplier(scale[j])
            : quantizeMultiplier(0);
          if (shift > 30) throw new ArgumentError(`scale[${j}] = ${scale[j]} is too large`);
          const left = Math.max(shift, 0), right = Math.min(31, Math.max(-shift, 0));
          dv.setInt32(j * 4, multiplier, true);
          dv.setInt32(np * 4 + j * 4, 2 ** left, true);
          dv.setInt32(np * 8 + j * 4, 2 ** right - 1, true);
          dv.setBigInt64(np * 12 + j * 8, 1n << BigInt(32 - right), true);
        }
      }
    }
    const ptr = this.mod.heap.alloc(32 + body.length);
    this.mod.u8(ptr, 32).set(new Uint8Array(header.buffer));
    this.mod.u8(ptr + 32, body.length).set(body);
    return new I8OutputParams(this.mod, ptr, mode, n, bytes);
  }

  /** Runs on buffers in Wasm memory; lda in elements of A, ldc in output elements. */
  runResident(
    m: number,
    a: number,
    input: I8Input,
    c: number,
    out: I8OutputParams,
    lda = this.k,
    ldc = this.n,
  ): void {
    checkDim("M", m);
    this.#checkInput(input);
    if (out.n !== this.n || out.mod !== this.mod) {
      throw new ArgumentError(`output params were made for another layer`);
    }
    if (lda < this.k || ldc < this.n) throw new ShapeError(`lda/ldc smaller than K/N`);
    this.#checkBlock("A", a, (m - 1) * lda + this.k);
    this.#checkBlock("C", c, ((m - 1) * ldc + this.n) * out.bytesPerElement);
    this.mod.exports.sqz_i8_gemm(
      m,
      this.n,
      this.k,
      a,
      lda,
      input.signed ? 1 : 0,
      input.zeroPoint,
      this.#packed,
      c,
      ldc,
      out.mode,
      out.ptr,
    );
  }

  /** Copies A in and the output out. */
  run(
    a: Uint8Array | Int8Array,
    m: number,
    input: I8Input,
    out: I8OutputParams,
  ): Int32Array | Float32Array | Uint8Array | Int8Array {
    checkDim("M", m);
    checkLength("A", a.length, checkElements("A", m, this.k, 1));
    const cLen = checkElements("C", m, this.n, out.bytesPerElement);
    const heap = this.mod.heap;
    const pa = this.mod.upload(a.subarray(0, m * this.k));
    let pc = 0;
    try {
      pc = heap.alloc(cLen * out.bytesPerElement);
      this.runResident(m, pa, input, pc, out);
      const buf = this.mod.memory.buffer;
      switch (out.mode) {
        case MODE.i32:
          return new Int32Array(buf, pc, cLen).slice();
        case MODE.f32:
          return new Float32Array(buf, pc, cLen).slice();
        case MODE.gemmlowp_int8:
        case MODE.fp32_int8:
          return new Int8Array(buf, pc, cLen).slice();
        default:
          return new Uint8Array(buf, pc, cLen).slice();
      }
    } finally {
      heap.free(pa);
      if (pc) heap.free(pc);
    }
  }

  dispose(): void {
    if (this.#packed) this.mod.heap.free(this.#packed);
    this.#packed = 0;
  }

  #checkInput(input: I8Input): void {
    const [lo, hi] = input.signed ? [-128, 127] : [0, 255];
    checkFinite("zero point", input.zeroPoint);
    if (!Number.isInteger(input.zeroPoint) || input.zeroPoint < lo || input.zeroPoint > hi) {
      throw new ArgumentError(
        `input zero point ${input.zeroPoint} is outside ${input.signed ? "int8" : "uint8"}`,
      );
    }
  }

  #checkBlock(what: string, ptr: number, bytes: number): void {
    if (!this.#packed) throw new ArgumentError(`this GEMM was disposed`);
    const size = this.mod.heap.sizeOf(ptr);
    if (size === undefined) throw new ShapeError(`${what} at ${ptr} is not a heap block`);
    if (size < bytes) throw new ShapeError(`${what} block holds ${size} bytes, needs ${bytes}`);
  }
}
