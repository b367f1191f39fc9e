// A first-fit allocator over a kernel module's linear memory. The kernels never allocate;
// everything they touch (packed weights, activations, outputs) is carved out here. Blocks are
// 64-byte aligned (cache line, and v128 loads never straddle a line needlessly) and carry 16
// bytes of slack so vector loads over a K tail stay inside memory, as the ABI requires.
import { ArgumentError, OutOfMemoryError, ShapeError } from "../errors.ts";

const ALIGN = 64;
const SLACK = 16;
const PAGE = 65536;
/** wasm32 addresses 4 GiB at most. */
export const MAX_MEMORY_BYTES = 65536 * PAGE;

interface Block {
  ptr: number;
  size: number;
}

export class WasmHeap {
  #free: Block[] = [];
  #used = new Map<number, number>();
  #requested = new Map<number, number>();
  #top: number;
  #inUse = 0;
  #peak = 0;

  constructor(readonly memory: WebAssembly.Memory, base: number) {
    this.#top = alignUp(base, ALIGN);
  }

  /** Bytes currently allocated, and the most ever allocated at once. */
  get bytesInUse(): number {
    return this.#inUse;
  }
  get peakBytes(): number {
    return this.#peak;
  }

  alloc(bytes: number): number {
    if (!Number.isSafeInteger(bytes) || bytes < 0) {
      throw new ArgumentError(`cannot allocate ${bytes} bytes: not a non-negative integer`);
    }
    const size = alignUp(Math.max(bytes, 1) + SLACK, ALIGN);
    if (size > MAX_MEMORY_BYTES - this.#top && !this.#free.some((b) => b.size >= size)) {
      throw new OutOfMemoryError(
        `cannot allocate ${bytes} bytes: wasm32 memory is limited to 4 GiB`,
      );
    }
    let ptr = -1;
    const i = this.#free.findIndex((b) => b.size >= size);
    if (i >= 0) {
      const b = this.#free[i];
      ptr = b.ptr;
      if (b.size === size) this.#free.splice(i, 1);
      else {
        b.ptr += size;
        b.size -= size;
      }
    } else {
      ptr = this.#top;
      this.#ensure(ptr + size);
      this.#top += size;
    }
    this.#used.set(ptr, size);
    this.#requested.set(ptr, bytes);
    this.#inUse += size;
    this.#peak = Math.max(this.#peak, this.#inUse);
    return ptr;
  }

  free(ptr: number): void {
    const size = this.#used.get(ptr);
    if (size === undefined) throw new ArgumentError(`free of ${ptr}: not an allocated block`);
    this.#used.delete(ptr);
    this.#requested.delete(ptr);
    this.#inUse -= size;
    // Insert sorted and coalesce with neighbours, so long runs don't fragment the heap.
    let i = 0;
    while (i < this.#free.length && this.#free[i].ptr < ptr) i++;
    this.#free.splice(i, 0, { ptr, size });
    if (i + 1 < this.#free.length && ptr + size === this.#free[i + 1].ptr) {
      this.#free[i].size += this.#free[i + 1].size;
      this.#free.splice(i + 1, 1);
    }
    if (i > 0 && this.#free[i - 1].ptr + this.#free[i - 1].size === ptr) {
      this.#free[i - 1].size += this.#free[i].size;
      this.#free.splice(i, 1);
    }
  }

  /** Throws a ShapeError unless ptr starts a live block of at least `bytes` bytes. */
  check(what: string, ptr: number, bytes: number): void {
    const size = this.#requested.get(ptr);
    if (size !== undefined) {
      if (size < bytes) throw new ShapeError(`${what} block holds ${size} bytes, needs ${bytes}`);
      return;
    }
    // An offset inside a block (a tensor in the executor's arena) must lie wholly within it.
    for (const [start, req] of this.#requested) {
      if (ptr > start && ptr < start + req) {
        if (ptr + bytes > start + req) {
          throw new ShapeError(
            `${what} at ${ptr} runs ${ptr + bytes - start - req} bytes past its block`,
          );
        }
        return;
      }
    }
    throw new ShapeError(`${what} at ${ptr} is not in a heap block`);
  }

  /** Bytes asked for when the block at ptr was allocated; undefined if ptr is no block. */
  sizeOf(ptr: number): number | undefined {
    return this.#requested.get(ptr);
  }

  #ensure(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    const pages = Math.ceil((end - have) / PAGE);
    try {
      this.memory.grow(pages);
    } catch (e) {
      throw new OutOfMemoryError(
        `wasm memory cannot grow by ${pages} pages to ${end} bytes: ${(e as Error).message}`,
      );
    }
  }
}

function alignUp(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}
