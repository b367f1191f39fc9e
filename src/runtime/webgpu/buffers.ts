// GPU buffers of the WebGPU backend: a pool of storage buffers by size class, reused across
// nodes and runs (a value's buffer returns to the pool at its last use, as arena slots do on
// the Wasm side), plus uploads and read-backs.
import { ShapeError } from "../../errors.ts";
import type { GpuContext } from "./device.ts";

const USAGE = 0x80 /* STORAGE */ | 0x08 /* COPY_DST */ | 0x04; /* COPY_SRC */

/** Size classes: powers of two from 256 bytes, then multiples of 1 MiB. */
function sizeClass(bytes: number): number {
  const b = Math.max(256, bytes);
  if (b <= 1 << 20) return 2 ** Math.ceil(Math.log2(b));
  return Math.ceil(b / (1 << 20)) * (1 << 20);
}

export class GpuBufferPool {
  readonly #free = new Map<number, GPUBuffer[]>();
  #bytes = 0;
  constructor(readonly gpu: GpuContext) {}

  /** Bytes of all buffers the pool made (in use or free). */
  get bytes(): number {
    return this.#bytes;
  }

  acquire(bytes: number): GPUBuffer {
    if (!Number.isSafeInteger(bytes) || bytes > this.gpu.maxStorageBytes) {
      throw new ShapeError(
        `a ${bytes}-byte tensor exceeds this adapter's ${this.gpu.maxStorageBytes}-byte buffers`,
      );
    }
    const size = sizeClass(bytes);
    const list = this.#free.get(size);
    if (list?.length) return list.pop()!;
    this.#bytes += size;
    return this.gpu.device.createBuffer({ size, usage: USAGE });
  }

  release(buf: GPUBuffer): void {
    const list = this.#free.get(buf.size) ?? [];
    list.push(buf);
    this.#free.set(buf.size, list);
  }

  dispose(): void {
    for (const list of this.#free.values()) for (const b of list) b.destroy();
    this.#free.clear();
    this.#bytes = 0;
  }
}

/** Writes bytes into a buffer (padded to the 4-byte multiple writeBuffer needs). */
export function writeBytes(gpu: GpuContext, buf: GPUBuffer, data: ArrayBufferView): void {
  const len = Math.ceil(data.byteLength / 4) * 4;
  if (!len) return;
  let src = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  // writeBuffer takes no SharedArrayBuffer, which the threaded kernels' Wasm memory is.
  if (len !== data.byteLength || !(data.buffer instanceof ArrayBuffer)) {
    const t = new Uint8Array(len);
    t.set(src);
    src = t;
  }
  gpu.device.queue.writeBuffer(buf, 0, src.buffer as ArrayBuffer, src.byteOffset, len);
}

/** A storage buffer holding `data` (weights, biases), of `size` bytes (default: data's, ≥ 4). */
export function constantBuffer(
  gpu: GpuContext,
  data: ArrayBufferView,
  size = Math.max(4, Math.ceil(data.byteLength / 4) * 4),
): GPUBuffer {
  const buf = gpu.device.createBuffer({ size, usage: USAGE });
  writeBytes(gpu, buf, data);
  return buf;
}

/** A uniform buffer holding `data`, padded to the 16 bytes uniforms are sized in. */
export function uniformBuffer(gpu: GpuContext, data: ArrayBuffer): GPUBuffer {
  const buf = gpu.device.createBuffer({
    size: Math.max(16, Math.ceil(data.byteLength / 16) * 16),
    usage: 0x40 /* UNIFORM */ | 0x08, /* COPY_DST */
  });
  gpu.device.queue.writeBuffer(buf, 0, data);
  return buf;
}

/** Copies `bytes` of `buf` back to the CPU (after everything submitted before). */
export async function readBytes(
  gpu: GpuContext,
  buf: GPUBuffer,
  bytes: number,
): Promise<Uint8Array> {
  const size = Math.max(4, Math.ceil(bytes / 4) * 4);
  const read = gpu.device.createBuffer({ size, usage: 0x01 /* MAP_READ */ | 0x08 /* COPY_DST */ });
  const enc = gpu.device.createCommandEncoder();
  enc.copyBufferToBuffer(buf, 0, read, 0, size);
  gpu.device.queue.submit([enc.finish()]);
  try {
    await read.mapAsync(0x01 /* READ */);
    return new Uint8Array(read.getMappedRange().slice(0, bytes));
  } finally {
    read.destroy();
  }
}
