// Sparse f32 GEMM for pruned weights: C[M×N] = act(A[M×K] · B[K×N] + bias) with only B's
// nonzeros packed (kernels/pack/pack_sparse.ts: by output column, f32 value + u16 k index,
// 6 bytes per nonzero) and the SpMM kernels of kernels/gemm/gemm_sparse_f32.ts. The weight
// stays sparse in Wasm memory: at 90% sparsity it takes 15% of the dense f32 packing.
import type { KernelModule } from "./module.ts";
import type { KernelCall } from "./threads.ts";
import type { GemmF32Weights } from "./gemm_f32.ts";
import {
  type Activation,
  activationRange,
  checkDim,
  checkElements,
  checkLength,
} from "./validate.ts";
import { ArgumentError, ShapeError } from "../errors.ts";

interface SparseExports {
  sqz_f32_spmm_nnz(n: number, k: number, b: number, sk: number, sn: number): number;
  sqz_f32_spmm_packed_size(n: number, k: number, nnz: number): number;
  sqz_f32_spmm_pack(
    n: number,
    k: number,
    b: number,
    sk: number,
    sn: number,
    bias: number,
    out: number,
  ): void;
  sqz_f32_spmm_workspace_size(k: number): number;
}

/** Rows per register tile of the SpMM kernel: row splits at multiples of it change no bit. */
export const SPMM_ROW_TILE = 16;

/** Bytes of the packed sparse weight (header, bias, column pointers, value + index each). */
export function sparsePackedBytes(n: number, k: number, nnz: number): number {
  return 16 + 8 * n + 4 + nnz * (4 + (k <= 65536 ? 2 : 4));
}

/** Nonzeros of a weight (−0 counts as zero, as the packer drops it). */
export function countNonzeros(b: ArrayLike<number>): number {
  let nnz = 0;
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) nnz++;
  return nnz;
}

export class PackedGemmSparseF32 {
  #packed: number;
  #ws: number[] = [];
  #wsBytes = 0;
  private constructor(
    readonly mod: KernelModule,
    readonly k: number,
    readonly n: number,
    /** Nonzeros kept. */
    readonly nnz: number,
    packed: number,
    /** Bytes the packed weights hold. */
    readonly bytes: number,
  ) {
    this.#packed = packed;
  }

  static create(mod: KernelModule, w: GemmF32Weights): PackedGemmSparseF32 {
    checkDim("K", w.k);
    checkDim("N", w.n);
    checkLength("B", w.b.length, checkElements("B", w.k, w.n, 4));
    if (w.bias) checkLength("bias", w.bias.length, w.n);
    const e = mod.exports as unknown as SparseExports;
    const nnz = countNonzeros(w.b.subarray(0, w.k * w.n));
    const size = e.sqz_f32_spmm_packed_size(w.n, w.k, nnz) >>> 0;
    if (size !== sparsePackedBytes(w.n, w.k, nnz)) {
      throw new ArgumentError(`sparse packing size mismatch: ${size} bytes`);
    }
    const packed = mod.heap.alloc(size);
    let b = 0, bias = 0;
    try {
      b = mod.upload(w.b.subarray(0, w.k * w.n));
      if (w.bias) bias = mod.upload(w.bias.subarray(0, w.n));
      const [sk, sn] = w.transposed ? [1, w.k] : [w.n, 1];
      e.sqz_f32_spmm_pack(w.n, w.k, b, sk, sn, bias, packed);
    } catch (err) {
      mod.heap.free(packed);
      throw err;
    } finally {
      if (b) mod.heap.free(b);
      if (bias) mod.heap.free(bias);
    }
    return new PackedGemmSparseF32(mod, w.k, w.n, nnz, packed, size);
  }

  /** One workspace per thread (each transposes its own row tiles). */
  #workspaces(threads: number): number[] {
    const need = (this.mod.exports as unknown as SparseExports).sqz_f32_spmm_workspace_size(
      this.k,
    ) >>> 0;
    if (need > this.#wsBytes || this.#ws.length < threads) {
      this.#freeWorkspaces();
      this.#wsBytes = need;
      for (let t = 0; t < threads; t++) this.#ws.push(this.mod.heap.alloc(need));
    }
    return this.#ws;
  }

  #freeWorkspaces(): void {
    for (const p of this.#ws) this.mod.heap.free(p);
    this.#ws = [];
    this.#wsBytes = 0;
  }

  /**
   * Column ranges of about equal nonzeros, one per part: columns are independent, so any
   * split gives the same bits.
   */
  #columnParts(parts: number): [number, number][] {
    const colptr = this.mod.i32(this.#packed + 16 + 4 * this.n, this.n + 1);
    const out: [number, number][] = [];
    let j0 = 0;
    for (let t = 1; t <= parts && j0 < this.n; t++) {
      let j1 = this.n;
      if (t < parts) {
        const target = (this.nnz * t) / parts;
        j1 = j0 + 1;
        while (j1 < this.n && colptr[j1] < target) j1++;
      }
      out.push([j0, j1]);
      j0 = j1;
    }
    return out;
  }

  /** C = act(A·B + bias) on buffers in Wasm memory (offsets from mod.heap); lda/ldc in elements. */
  runResident(m: number, a: number, c: number, act?: Activation, lda = this.k, ldc = this.n): void {
    if (!this.#packed) throw new ArgumentError("this GEMM was disposed");
    checkDim("M", m);
    if (lda < this.k || ldc < this.n) throw new ShapeError("lda/ldc smaller than K/N");
    this.mod.heap.check("A", a, ((m - 1) * lda + this.k) * 4);
    this.mod.heap.check("C", c, ((m - 1) * ldc + this.n) * 4);
    const [lo, hi] = activationRange(act);
    // Work is the nonzeros' multiply-adds (plus the row transposes, M·K).
    const macs = m * (this.nnz + this.k);
    const byRows = this.mod.planRows(m, macs, SPMM_ROW_TILE);
    const ws = this.#workspaces(this.mod.threads);
    const p = this.#packed;
    if (byRows.length > 1 && m >= SPMM_ROW_TILE * byRows.length) {
      // Many rows: each thread takes whole 16-row tiles and streams all the weights.
      this.mod.parallel(byRows.map(([r0, r1], t): KernelCall => ({
        fn: "sqz_f32_spmm",
        args: [r1 - r0, 0, this.n, a + r0 * lda * 4, lda, p, c + r0 * ldc * 4, ldc, ws[t], lo, hi],
      })));
      return;
    }
    // Few rows (a GEMV): the weights dominate, so the threads split the columns.
    const parts = this.mod.planRows(this.n, macs, 1).length;
    this.mod.parallel(
      this.#columnParts(parts).map(([n0, n1], t): KernelCall => ({
        fn: "sqz_f32_spmm",
        args: [m, n0, n1, a, lda, p, c, ldc, ws[t], lo, hi],
      })),
    );
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
    if (this.#packed) this.mod.heap.free(this.#packed);
    this.#packed = 0;
    this.#freeWorkspaces();
  }
}

/**
 * The scalar kernel's arithmetic in TypeScript: each output sums its column's nonzeros in
 * k order from the bias, each product and sum rounded to f32. The scalar build and the simd
 * build's row tiles equal it bit for bit; the relaxed build (fused multiply-adds) and the
 * one-row gather kernel (four partial sums) round differently.
 */
export function spmmReference(
  w: GemmF32Weights,
  a: Float32Array,
  m: number,
  act?: Activation,
): Float32Array {
  const { k, n } = w, fr = Math.fround;
  const [lo, hi] = activationRange(act);
  const at = (kk: number, j: number) => w.transposed ? w.b[j * k + kk] : w.b[kk * n + j];
  const out = new Float32Array(m * n);
  for (let j = 0; j < n; j++) {
    const ks: number[] = [], vs: number[] = [];
    for (let kk = 0; kk < k; kk++) {
      const v = at(kk, j);
      if (v !== 0) {
        ks.push(kk);
        vs.push(v);
      }
    }
    for (let r = 0; r < m; r++) {
      let acc = fr(w.bias?.[j] ?? 0);
      for (let i = 0; i < ks.length; i++) acc = fr(acc + fr(vs[i] * a[r * k + ks[i]]));
      out[r * n + j] = Math.min(Math.max(acc, lo), hi);
    }
  }
  return out;
}

/**
 * Whether a weight with this share of nonzeros runs faster on the sparse kernel than on the
 * dense f32 GEMM for M rows (undefined: M unknown at load). From `deno task bench sparse`
 * (1 thread, simd and relaxed builds, N = K = 1024 unless noted; dense time / sparse time):
 *   M ≥ 16 (16-row tiles): 1.5–1.9× at 70% sparsity, 2.2–2.9× at 80%, 4.4–5.3× at 90%;
 *   M = 4 (4-row tiles):   0.73–0.96× at 70%, 1.1–1.4× at 80%, 2.3–2.8× at 90%;
 *   M = 1 (gather):        0.44–0.47× at 70%, 0.63–0.68× at 80%, 1.1–1.2× at 90%
 *                          (4096×4096, weights past the caches: 0.85–0.96×, 1.3–1.5×, 2.6–2.9×).
 * So the limits sit a little inside the measured break-evens: density ≤ 0.35 from 16 rows,
 * ≤ 0.2 for 2–15 rows (9–15 run one padded 16-row tile), ≤ 0.1 for one row. Unknown M takes
 * the 2–15 rows limit: at 80% sparsity it loses little on one row of a small layer and wins
 * on every larger M.
 */
export function sparseWins(density: number, m: number | undefined): boolean {
  if (!(density >= 0 && density <= 1)) return false;
  if (m === undefined) return density <= 0.2;
  if (m >= 16) return density <= 0.35;
  if (m >= 2) return density <= 0.2;
  return density <= 0.1;
}
