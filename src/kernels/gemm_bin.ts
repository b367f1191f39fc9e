// Binary (XNOR-popcount) GEMM over sign-binarized, bit-packed operands; formats in
// kernels/pack/pack_bin.ts, outputs in kernels/gemm/gemm_bin.ts.
import type { KernelModule } from "./module.ts";
import { checkDim, checkElements, checkLength } from "./validate.ts";
import { ArgumentError } from "../errors.ts";

export interface GemmBinWeights {
  k: number;
  n: number;
  /** Real-valued weights; only their signs are kept. K×N row-major, or N×K if `transposed`. */
  b: Float32Array;
  transposed?: boolean;
}

export type BinOutput =
  | { kind: "i32" }
  | { kind: "f32"; alpha: Float32Array | number; bias?: Float32Array; clamp?: [number, number] }
  | { kind: "bits"; alpha: Float32Array | number; bias?: Float32Array };

const MODE = { i32: 0, f32: 1, bits: 2 } as const;

/** Bytes of one bit-packed row of k values. */
export function binRowBytes(k: number): number {
  return Math.ceil(k / 128) * 16;
}

export class BinOutputParams {
  constructor(
    readonly mod: KernelModule,
    readonly ptr: number,
    readonly mode: number,
    readonly n: number,
  ) {}
  dispose(): void {
    if (this.ptr) this.mod.heap.free(this.ptr);
  }
}

/** Lays out a binary output stage for n channels (kernels/gemm/gemm_bin.ts documents it). */
export function makeBinOutput(mod: KernelModule, n: number, out: BinOutput): BinOutputParams {
  const np = Math.ceil(n / 8) * 8;
  const buf = new ArrayBuffer(32 + 8 * np);
  const dv = new DataView(buf);
  if (out.kind !== "i32") {
    const [lo, hi] = out.kind === "f32" ? out.clamp ?? [-Infinity, Infinity] : [0, 0];
    if (!(lo <= hi)) throw new ArgumentError(`clamp [${lo}, ${hi}] is empty`);
    dv.setFloat32(0, lo, true);
    dv.setFloat32(4, hi, true);
    const alpha = new Float32Array(buf, 32, np);
    const bias = new Float32Array(buf, 32 + 4 * np, np);
    if (typeof out.alpha === "number") alpha.fill(out.alpha, 0, n);
    else {
      checkLength("alpha", out.alpha.length, n);
      alpha.set(out.alpha.subarray(0, n));
    }
    for (let j = 0; j < n; j++) {
      if (!(alpha[j] > 0) || !Number.isFinite(alpha[j])) {
        throw new ArgumentError(`alpha[${j}] = ${alpha[j]} must be positive and finite`);
      }
    }
    if (out.bias) {
      checkLength("bias", out.bias.length, n);
      bias.set(out.bias.subarray(0, n));
    }
  } else if (!(out.kind === "i32")) {
    throw new ArgumentError(`unknown binary output ${(out as { kind: string }).kind}`);
  }
  const ptr = mod.upload(new Uint8Array(buf));
  return new BinOutputParams(mod, ptr, MODE[out.kind], n);
}

export class PackedGemmBin {
  #packed: number;
  private constructor(
    readonly mod: KernelModule,
    readonly k: number,
    readonly n: number,
    packed: number,
  ) {
    this.#packed = packed;
  }

  static create(mod: KernelModule, w: GemmBinWeights): PackedGemmBin {
    checkDim("K", w.k);
    checkDim("N", w.n);
    checkLength("B", w.b.length, checkElements("B", w.k, w.n, 4));
    const e = mod.exports;
    const packed = mod.heap.alloc(e.sqz_bin_gemm_packed_size(w.n, w.k) >>> 0);
    const b = mod.upload(w.b.subarray(0, w.k * w.n));
    try {
      const [sk, sn] = w.transposed ? [1, w.k] : [w.n, 1];
      e.sqz_bin_pack_weights(w.n, w.k, b, sk, sn, packed);
    } finally {
      mod.heap.free(b);
    }
    return new PackedGemmBin(mod, w.k, w.n, packed);
  }

  output(out: BinOutput): BinOutputParams {
    return makeBinOutput(this.mod, this.n, out);
  }

  /** Packs the signs of M rows of f32 activations into a new heap block of bit rows. */
  packRows(a: Float32Array, m: number): number {
    checkDim("M", m);
    checkLength("A", a.length, checkElements("A", m, this.k, 4));
    const rowBytes = binRowBytes(this.k);
    checkElements("packed A", m, rowBytes, 1);
    const out = this.mod.heap.alloc(m * rowBytes);
    const pa = this.mod.upload(a.subarray(0, m * this.k));
    try {
      this.mod.exports.sqz_bin_pack_rows(m, this.k, pa, this.k, out);
    } finally {
      this.mod.heap.free(pa);
    }
    return out;
  }

  /** Output bytes for m rows in this output mode. */
  outputBytes(m: number, out: BinOutputParams): number {
    return out.mode === MODE.bits ? m * binRowBytes(this.n) : m * this.n * 4;
  }

  /** a: m bit-packed rows in Wasm memory (from packRows or a previous layer's bit output). */
  runResident(m: number, a: number, c: number, out: BinOutputParams): void {
    checkDim("M", m);
    if (!this.#packed) throw new ArgumentError(`this GEMM was disposed`);
    if (out.n !== this.n || out.mod !== this.mod) {
      throw new ArgumentError(`output params were made for another layer`);
    }
    this.#checkBlock("A", a, m * binRowBytes(this.k));
    this.#checkBlock("C", c, this.outputBytes(m, out));
    const rowIn = binRowBytes(this.k), rowOut = this.outputBytes(1, out);
    this.mod.parallelRows(m, m * this.n * this.k / 16, 12, (r0, r1) => ({
      fn: "sqz_bin_gemm",
      args: [
        r1 - r0,
        this.n,
        this.k,
        a + r0 * rowIn,
        this.#packed,
        c + r0 * rowOut,
        this.n,
        out.mode,
        out.ptr,
      ],
    }));
  }

  /** Binarizes f32 rows, runs, and copies the output out (Int32Array, Float32Array or bits). */
  run(a: Float32Array, m: number, out: BinOutputParams): Int32Array | Float32Array | Uint8Array {
    const pa = this.packRows(a, m);
    const bytes = this.outputBytes(m, out);
    let pc = 0;
    try {
      pc = this.mod.heap.alloc(bytes);
      this.runResident(m, pa, pc, out);
      const buf = this.mod.memory.buffer;
      if (out.mode === MODE.i32) return new Int32Array(buf, pc, m * this.n).slice();
      if (out.mode === MODE.f32) return new Float32Array(buf, pc, m * this.n).slice();
      return new Uint8Array(buf, pc, bytes).slice();
    } finally {
      this.mod.heap.free(pa);
      if (pc) this.mod.heap.free(pc);
    }
  }

  dispose(): void {
    if (this.#packed) this.mod.heap.free(this.#packed);
    this.#packed = 0;
  }

  #checkBlock(what: string, ptr: number, bytes: number): void {
    this.mod.heap.check(what, ptr, bytes);
  }
}
