// int4 weight-only GEMM/GEMV with the weights kept packed (kernels/pack/pack_q4.ts: 8-column
// panels of 4-bit codes, f16 block scales, 4-bit zero points; 14.8% of f32 memory) and the activations
// quantized to int8 blocks on each run (kernels/gemm/gemm_q4.ts documents the arithmetic).
// Scales are stored as f16 (rounded to nearest even), as ggml's blocks store them.
import type { KernelModule } from "./module.ts";
import type { KernelCall } from "./threads.ts";
import {
  type Activation,
  activationRange,
  checkDim,
  checkElements,
  checkLength,
} from "./validate.ts";
import { ArgumentError, ShapeError } from "../errors.ts";

/** Values per block along K. */
export const Q4_BLOCK = 32;

interface Q4Exports {
  sqz_q4_packed_size(n: number, k: number): number;
  sqz_q4_pack(
    n: number,
    k: number,
    codes: number,
    scales: number,
    zps: number,
    bias: number,
    out: number,
  ): void;
  sqz_q8_row_bytes(k: number): number;
  sqz_q8_quantize_rows(m: number, k: number, a: number, lda: number, out: number): void;
  sqz_q4_gemm(
    m: number,
    n: number,
    k: number,
    x: number,
    packed: number,
    c: number,
    ldc: number,
    lo: number,
    hi: number,
  ): void;
}

export interface GemmQ4Weights {
  k: number;
  n: number;
  /** Codes 0..15, one per byte, [N][K]: row n holds output column n's K codes. */
  codes: Uint8Array;
  /** Per block scale d, [N][ceil(K/32)]; finite. Stored as f16. */
  scales: Float32Array;
  /** Per block zero point 0..15, [N][ceil(K/32)]; absent = 8 (symmetric codes). */
  zeroPoints?: Uint8Array;
  bias?: Float32Array;
}

const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);

/** f32 → f16 bits, round to nearest even; |v| past the f16 range is an ArgumentError. */
export function f16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const e = (x >>> 23) & 0xff, m = x & 0x7fffff;
  if (e === 0xff || Math.abs(v) >= 65520) {
    throw new ArgumentError(`scale ${v} does not fit f16`);
  }
  if (e < 103) return sign; // below half the smallest subnormal: ±0
  if (e < 113) {
    // Subnormal f16: mantissa with the implicit 1, shifted, rounded to nearest even.
    const full = m | 0x800000, shift = 126 - e;
    let h = full >>> shift;
    const rest = full & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rest > half || (rest === half && (h & 1))) h++;
    return sign | h;
  }
  let h = ((e - 112) << 10) | (m >>> 13);
  const rest = m & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++;
  return sign | h;
}

/** f16 bits → the f32 value, exactly. */
export function f16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 0x3ff;
  return sign * (e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15));
}

export class PackedGemmQ4 {
  #packed: number;
  #rows = 0;
  #rowsBytes = 0;
  private constructor(
    readonly mod: KernelModule,
    readonly k: number,
    readonly n: number,
    packed: number,
    /** Bytes the packed weights hold. */
    readonly bytes: number,
  ) {
    this.#packed = packed;
  }

  static create(mod: KernelModule, w: GemmQ4Weights): PackedGemmQ4 {
    checkDim("K", w.k);
    checkDim("N", w.n);
    const nb = Math.ceil(w.k / Q4_BLOCK);
    checkLength("codes", w.codes.length, checkElements("codes", w.n, w.k, 1));
    checkLength("scales", w.scales.length, w.n * nb);
    if (w.zeroPoints) checkLength("zero points", w.zeroPoints.length, w.n * nb);
    if (w.bias) checkLength("bias", w.bias.length, w.n);
    const badCode = w.codes.findIndex((c) => c > 15);
    if (badCode >= 0) throw new ArgumentError(`code ${badCode} is ${w.codes[badCode]}, not 4-bit`);
    const badZp = w.zeroPoints?.findIndex((z) => z > 15) ?? -1;
    if (badZp >= 0) throw new ArgumentError(`zero point ${badZp} is not 4-bit`);
    const d16 = Uint16Array.from(w.scales, f16Bits);
    const e = mod.exports as unknown as Q4Exports;
    const size = e.sqz_q4_packed_size(w.n, w.k) >>> 0;
    const packed = mod.heap.alloc(size);
    const ptrs: number[] = [];
    try {
      const up = (a: ArrayBufferView | undefined) => {
        if (!a) return 0;
        const p = mod.upload(a);
        ptrs.push(p);
        return p;
      };
      e.sqz_q4_pack(
        w.n,
        w.k,
        up(w.codes),
        up(d16),
        up(w.zeroPoints),
        up(w.bias),
        packed,
      );
    } catch (err) {
      mod.heap.free(packed);
      throw err;
    } finally {
      for (const p of ptrs) mod.heap.free(p);
    }
    return new PackedGemmQ4(mod, w.k, w.n, packed, size);
  }

  get #ex(): Q4Exports {
    return this.mod.exports as unknown as Q4Exports;
  }

  /** C = act(A·W + bias) on buffers in Wasm memory; lda/ldc in elements. */
  runResident(m: number, a: number, c: number, act?: Activation, lda = this.k, ldc = this.n): void {
    if (!this.#packed) throw new ArgumentError("this GEMM was disposed");
    checkDim("M", m);
    if (lda < this.k || ldc < this.n) throw new ShapeError("lda/ldc smaller than K/N");
    this.mod.heap.check("A", a, ((m - 1) * lda + this.k) * 4);
    this.mod.heap.check("C", c, ((m - 1) * ldc + this.n) * 4);
    const [lo, hi] = activationRange(act);
    const ex = this.#ex;
    const need = m * (ex.sqz_q8_row_bytes(this.k) >>> 0);
    if (need > this.#rowsBytes) {
      if (this.#rows) this.mod.heap.free(this.#rows);
      this.#rows = 0;
      this.#rows = this.mod.heap.alloc(need);
      this.#rowsBytes = need;
    }
    ex.sqz_q8_quantize_rows(m, this.k, a, lda, this.#rows);
    // Threads split the 8-column panels: each streams its share of the weights.
    const panel = ex.sqz_q4_packed_size(8, this.k) >>> 0;
    const parts = this.mod.planRows(this.n, m * this.n * this.k, 8);
    this.mod.parallel(parts.map(([n0, n1]): KernelCall => ({
      fn: "sqz_q4_gemm",
      args: [
        m,
        n1 - n0,
        this.k,
        this.#rows,
        this.#packed + (n0 / 8) * panel,
        c + n0 * 4,
        ldc,
        lo,
        hi,
      ],
    })));
  }

  /** Copies A in and C out. */
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
    for (const p of [this.#packed, this.#rows]) if (p) this.mod.heap.free(p);
    this.#packed = this.#rows = this.#rowsBytes = 0;
  }
}

/**
 * The kernel's arithmetic in TypeScript (f32 rounding emulated with Math.fround): the
 * reference the tests hold every build to, bit for bit.
 */
export function q4Reference(
  w: GemmQ4Weights,
  a: Float32Array,
  m: number,
  act?: Activation,
): Float32Array {
  const { k, n } = w, nb = Math.ceil(k / Q4_BLOCK), fr = Math.fround;
  const [lo, hi] = activationRange(act);
  const out = new Float32Array(m * n);
  const d = Float32Array.from(w.scales, (s) => f16Value(f16Bits(s)));
  for (let r = 0; r < m; r++) {
    const xq = new Int32Array(nb * 32), dx = new Float32Array(nb), sx = new Int32Array(nb);
    for (let b = 0; b < nb; b++) {
      let amax = 0;
      for (let i = b * 32; i < Math.min(k, b * 32 + 32); i++) {
        amax = Math.max(amax, Math.abs(a[r * k + i]));
      }
      dx[b] = fr(amax / 127);
      for (let i = b * 32; i < Math.min(k, b * 32 + 32); i++) {
        if (dx[b] === 0) continue;
        const v = fr(a[r * k + i] / dx[b]);
        let q = Math.round(v);
        if (Math.abs(v - Math.trunc(v)) === 0.5 && q % 2 !== 0) q -= 1; // ties to even
        xq[i] = Math.max(-127, Math.min(127, q));
        sx[b] += xq[i];
      }
    }
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let b = 0; b < nb; b++) {
        let s = 0;
        for (let i = b * 32; i < Math.min(k, b * 32 + 32); i++) s += w.codes[j * k + i] * xq[i];
        const zp = w.zeroPoints ? w.zeroPoints[j * nb + b] : 8;
        const scale = fr(d[j * nb + b] * dx[b]);
        acc = fr(acc + fr((s - zp * sx[b]) * scale));
      }
      out[r * n + j] = Math.min(Math.max(fr(acc + (w.bias?.[j] ?? 0)), lo), hi);
    }
  }
  return out;
}
