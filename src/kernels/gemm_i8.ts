// int8 GEMM with weights packed once (QLinearMatMul / TFLite semantics):
//   acc = bias + (A − aZero) · W, then written as i32, requantized u8/i8, or dequantized f32.
import type { KernelModule } from "./module.ts";
import { checkDim, checkElements, checkFinite, checkLength } from "./validate.ts";
export { type I8Output, I8OutputParams } from "./i8_output.ts";
import { type I8Output, type I8OutputParams, makeI8Output, readI8Output } from "./i8_output.ts";
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

/** Whether every weight fits 7 bits, [-64, 63]: the packed layout then takes the i7 path. */
export function fits7Bits(b: Int8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] < -64 || b[i] > 63) return false;
  return true;
}

export class PackedGemmI8 {
  #packed: number;
  private constructor(
    readonly mod: KernelModule,
    readonly k: number,
    readonly n: number,
    packed: number,
    /** Packed as 7-bit weights (sqz_i7_*): one relaxed dot per 16 multiply-adds. */
    readonly w7: boolean,
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
    // The packer picks the 7-bit layout by itself when every weight allows it (reduce_range
    // models, weights of ≤ 7 bits); the results are the same, only faster.
    const w7 = fits7Bits(w.b.subarray(0, w.k * w.n));
    const [size, pack] = w7
      ? [e.sqz_i7_gemm_packed_size, e.sqz_i7_gemm_pack]
      : [e.sqz_i8_gemm_packed_size, e.sqz_i8_gemm_pack];
    const packed = mod.heap.alloc(size(w.n, w.k) >>> 0);
    const b = mod.upload(w.b.subarray(0, w.k * w.n));
    const bias = w.bias ? mod.upload(w.bias.subarray(0, w.n)) : 0;
    try {
      const [sk, sn] = w.transposed ? [1, w.k] : [w.n, 1];
      pack(w.n, w.k, b, sk, sn, bias, packed);
    } finally {
      mod.heap.free(b);
      if (bias) mod.heap.free(bias);
    }
    return new PackedGemmI8(mod, w.k, w.n, packed, w7);
  }

  /** Lays out an output stage for this layer's N channels. */
  output(out: I8Output): I8OutputParams {
    return makeI8Output(this.mod, this.n, out);
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
    const ob = out.bytesPerElement;
    this.mod.parallelRows(m, m * this.n * this.k, 12, (r0, r1) => ({
      fn: this.w7 ? "sqz_i7_gemm" : "sqz_i8_gemm",
      args: [
        r1 - r0,
        this.n,
        this.k,
        a + r0 * lda,
        lda,
        input.signed ? 1 : 0,
        input.zeroPoint,
        this.#packed,
        c + r0 * ldc * ob,
        ldc,
        out.mode,
        out.ptr,
      ],
    }));
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
    return this.mod.roundTrip(
      a.subarray(0, m * this.k),
      cLen * out.bytesPerElement,
      (pa, pc) => this.runResident(m, pa, input, pc, out),
      (pc) => readI8Output(this.mod, pc, cLen, out.mode),
    );
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
    this.mod.heap.check(what, ptr, bytes);
  }
}
