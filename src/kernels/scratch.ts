// A heap block that grows and is reused from call to call, for kernel operands that change
// every run (a packed B of a MatMul of two activations, attention's scores, training
// buffers): a steady loop allocates nothing. It grows geometrically, so slowly varying sizes
// (the last batch of an epoch, sequence lengths) do not reallocate each time.
import type { KernelModule } from "./module.ts";

export class ScratchBlock {
  #ptr = 0;
  #bytes = 0;
  constructor(readonly mod: KernelModule) {}

  /** A block of at least `bytes` (contents undefined). */
  get(bytes: number): number {
    if (bytes > this.#bytes) {
      const size = Math.max(bytes, Math.ceil(this.#bytes * 1.25));
      if (this.#ptr) this.mod.heap.free(this.#ptr);
      this.#ptr = 0;
      this.#ptr = this.mod.heap.alloc(size);
      this.#bytes = size;
    }
    return this.#ptr;
  }

  /** Bytes held. */
  get bytes(): number {
    return this.#bytes;
  }

  dispose(): void {
    if (this.#ptr) this.mod.heap.free(this.#ptr);
    this.#ptr = 0;
    this.#bytes = 0;
  }
}
