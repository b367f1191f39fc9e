// f32 GEMM with weights packed once: C[M×N] = act(A[M×K] · B[K×N] + bias).
import type { KernelModule } from "./module.ts";
import {
  type Activation,
  activationRange,
  checkDim,
  checkElements,
  checkLength,
} from "./validate.ts";
import { ShapeError } from "../errors.ts";

export interface GemmF32Weights {
  k: number;
  n: number;
  /** K×N row-major, or N×K row-major when `transposed` (ONNX Gemm transB=1). */
  b: Float32Array;
  transposed?: boolean;
  bias?: Float32Array;
}

export class PackedGemmF32 {
  #packed: number;
  private constructor(
    readonly mod: KernelModule,
    readonly k: number,
    readonly n: number,
    packed: number,
  ) {
    this.#packed = packed;
  }

  static create(mod: KernelModule, w: GemmF32Weights): PackedGemmF32 {
    checkDim("K", w.k);
    checkDim("N", w.n);
    checkLength("B", w.b.length, checkElements("B", w.k, w.n, 4));
    if (w.bias) checkLength("bias", w.bias.length, w.n);
    const e = mod.exports;
    const size = e.sqz_f32_gemm_packed_size(w.n, w.k) >>> 0;
    const packed = mod.heap.alloc(size);
    const b = mod.upload(w.b);
    const bias = w.bias ? mod.upload(w.bias) : 0;
    try {
      const [sk, sn] = w.transposed ? [1, w.k] : [w.n, 1];
      e.sqz_f32_gemm_pack(w.n, w.k, b, sk, sn, bias, packed);
    } finally {
      mod.heap.free(b);
      if (bias) mod.heap.free(bias);
    }
    return new PackedGemmF32(mod, w.k, w.n, packed);
  }

  /** Runs on buffers already in Wasm memory (offsets from mod.heap); lda/ldc in elements. */
  runResident(
    m: number,
    a: number,
    c: number,
    act?: Activation,
    lda = this.k,
    ldc = this.n,
  ): void {
    checkDim("M", m);
    if (lda < this.k || ldc < this.n) throw new ShapeError(`lda/ldc smaller than K/N`);
    this.#checkBlock("A", a, ((m - 1) * lda + this.k) * 4);
    this.#checkBlock("C", c, ((m - 1) * ldc + this.n) * 4);
    const [lo, hi] = activationRange(act);
    const macs = m * this.n * this.k;
    if (this.n > m) {
      // Fewer rows than columns (a GEMV, a small batch): the weights dominate, so the threads
      // split the 8-column panels and each streams its share (kernels/pack/pack_f32.ts:
      // panel = bias[8], w[K][8]). Every row meets the same tiles: no bit changes.
      const panelBytes = (8 + 8 * this.k) * 4;
      this.mod.parallel(
        this.mod.planRows(this.n, macs, 8).map(([n0, n1]) => ({
          fn: "sqz_f32_gemm",
          args: [
            m,
            n1 - n0,
            this.k,
            a,
            lda,
            this.#packed + (n0 / 8) * panelBytes,
            c + n0 * 4,
            ldc,
            lo,
            hi,
          ],
        })),
      );
      return;
    }
    // Rows split where the register tiles do, so threads change no bit.
    this.mod.parallelRows(m, macs, this.mod.f32RowAlign, (r0, r1) => ({
      fn: "sqz_f32_gemm",
      args: [
        r1 - r0,
        this.n,
        this.k,
        a + r0 * lda * 4,
        lda,
        this.#packed,
        c + r0 * ldc * 4,
        ldc,
        lo,
        hi,
      ],
    }));
  }

  /** Copies A in and C out: convenient, and what a one-off caller wants. */
  run(a: Float32Array, m: number, act?: Activation): Float32Array {
    checkDim("M", m);
    checkLength("A", a.length, checkElements("A", m, this.k, 4));
    const cLen = checkElements("C", m, this.n, 4);
    return this.mod.roundTrip(
      a.subarray(0, m * this.k),
      cLen * 4,
      (pa, pc) => this.runResident(m, pa, pc, act),
      (pc) => this.mod.f32(pc, cLen).slice(),
    );
  }

  dispose(): void {
    if (this.#packed) this.mod.heap.free(this.#packed);
    this.#packed = 0;
  }

  #checkBlock(what: string, ptr: number, bytes: number): void {
    this.mod.heap.check(what, ptr, bytes);
  }
}
