// The training engine's access to the Wasm kernels: named scratch blocks that grow and are
// reused from step to step (so a steady training loop allocates nothing), and f32 GEMM on
// operands already in Wasm memory, with B given by strides so a transpose costs no copy (the
// packer reads B element (k, n) at b + 4·(k·sk + n·sn)).
import type { KernelModule } from "../kernels/module.ts";
import { ScratchBlock } from "../kernels/scratch.ts";

export class Scratch {
  #slots = new Map<string, ScratchBlock>();
  constructor(readonly mod: KernelModule) {}

  /** A block of at least `bytes` for slot `name` (contents undefined). */
  get(name: string, bytes: number): number {
    let s = this.#slots.get(name);
    if (!s) this.#slots.set(name, s = new ScratchBlock(this.mod));
    return s.get(bytes);
  }

  /** Copies `data` into slot `name`; returns its offset. */
  put(name: string, data: Float32Array): number {
    const p = this.get(name, data.byteLength);
    this.mod.f32(p, data.length).set(data);
    return p;
  }

  /** A zero-filled float block. */
  zeros(name: string, n: number): number {
    const p = this.get(name, n * 4);
    this.mod.f32(p, n).fill(0);
    return p;
  }

  /** Bytes held by all slots. */
  get bytes(): number {
    let b = 0;
    for (const s of this.#slots.values()) b += s.bytes;
    return b;
  }

  dispose(): void {
    for (const s of this.#slots.values()) s.dispose();
    this.#slots.clear();
  }
}

/**
 * C[m×n] (row stride ldc) = A[m×k] (row stride lda) · B, B element (kk, j) at
 * b + 4·(kk·sk + j·sn); all operands are offsets in Wasm memory. `bias` (offset, n floats) is
 * added per column. Packing is O(k·n) against the product's O(m·k·n).
 */
export function gemm(
  s: Scratch,
  m: number,
  n: number,
  k: number,
  a: number,
  lda: number,
  b: number,
  sk: number,
  sn: number,
  c: number,
  ldc: number,
  bias = 0,
): void {
  if (m === 0 || n === 0) return;
  const e = s.mod.exports;
  if (k === 0) {
    for (let i = 0; i < m; i++) s.mod.f32(c + 4 * i * ldc, n).fill(0);
    if (bias) { for (let i = 0; i < m; i++) s.mod.f32(c + 4 * i * ldc, n).set(s.mod.f32(bias, n)); }
    return;
  }
  const packed = s.get("gemm.packed", e.sqz_f32_gemm_packed_size(n, k) >>> 0);
  e.sqz_f32_gemm_pack(n, k, b, sk, sn, bias, packed);
  e.sqz_f32_gemm(m, n, k, a, lda, packed, c, ldc, -Infinity, Infinity);
}
