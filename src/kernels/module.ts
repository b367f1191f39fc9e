// Loads one build of the kernel module (kernels/build/sqz-{scalar,simd,relaxed}.wasm) and
// gives typed access to its exports and memory.
import { availableBuilds, bestBuild, type KernelBuild } from "./features.ts";
import { WasmHeap } from "./heap.ts";
import { UnsupportedError } from "../errors.ts";

/** sqz_i8_gemm_pack / sqz_i7_gemm_pack: B element (k, n) at b + k·strideK + n·strideN. */
type GemmI8Pack = (
  n: number,
  k: number,
  b: number,
  strideK: number,
  strideN: number,
  bias: number,
  out: number,
) => void;

/** sqz_i8_gemm / sqz_i7_gemm. */
type GemmI8 = (
  m: number,
  n: number,
  k: number,
  a: number,
  lda: number,
  aSigned: number,
  aZero: number,
  packed: number,
  c: number,
  ldc: number,
  mode: number,
  params: number,
) => void;

/** The exported ABI, as documented in kernels/index.ts. */
export interface KernelExports {
  memory: WebAssembly.Memory;
  sqz_abi_version(): number;
  sqz_isa(): number;
  sqz_heap_base(): number;
  sqz_f32_gemm_packed_size(n: number, k: number): number;
  sqz_f32_gemm_pack(
    n: number,
    k: number,
    b: number,
    strideK: number,
    strideN: number,
    bias: number,
    out: number,
  ): void;
  sqz_f32_gemm(
    m: number,
    n: number,
    k: number,
    a: number,
    lda: number,
    packed: number,
    c: number,
    ldc: number,
    outMin: number,
    outMax: number,
  ): void;
  sqz_i8_gemm_packed_size(n: number, k: number): number;
  sqz_i8_gemm_pack: GemmI8Pack;
  sqz_i8_gemm: GemmI8;
  // The same signatures on 7-bit weights (kernels/index.ts).
  sqz_i7_gemm_packed_size(n: number, k: number): number;
  sqz_i7_gemm_pack: GemmI8Pack;
  sqz_i7_gemm: GemmI8;
  sqz_bin_gemm_packed_size(n: number, k: number): number;
  sqz_bin_pack_weights(
    n: number,
    k: number,
    b: number,
    strideK: number,
    strideN: number,
    out: number,
  ): void;
  sqz_bin_pack_rows(m: number, k: number, a: number, lda: number, out: number): void;
  sqz_bin_gemm(
    m: number,
    n: number,
    k: number,
    a: number,
    packed: number,
    c: number,
    ldc: number,
    mode: number,
    params: number,
  ): void;
  sqz_f32_im2col(
    c: number,
    h: number,
    w: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    dh: number,
    dw: number,
    pt: number,
    pl: number,
    oh: number,
    ow: number,
    x: number,
    col: number,
    ldcol: number,
    padValue: number,
  ): void;
  sqz_f32_col2im(
    c: number,
    h: number,
    w: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    dh: number,
    dw: number,
    pt: number,
    pl: number,
    oh: number,
    ow: number,
    col: number,
    ldcol: number,
    x: number,
  ): void;
  sqz_f32_layernorm(
    rows: number,
    n: number,
    x: number,
    gamma: number,
    beta: number,
    eps: number,
    y: number,
  ): void;
  sqz_f32_softmax(
    rows: number,
    n: number,
    x: number,
    scale: number,
    mask: number,
    ldmask: number,
    y: number,
  ): void;
  sqz_f32_gelu(count: number, x: number, y: number): void;
  sqz_f32_binary(op: number, n: number, a: number, b: number, bn: number, y: number): void;
  sqz_f32_range(n: number, x: number, out: number): void;
  sqz_f32_clamp(n: number, x: number, lo: number, hi: number, y: number): void;
  sqz_f32_quantize_u8(n: number, x: number, scale: number, zp: number, y: number): void;
  sqz_u8_dequantize(n: number, x: number, scale: number, zp: number, y: number): void;
  sqz_f32_transpose(
    rows: number,
    cols: number,
    src: number,
    ldSrc: number,
    dst: number,
    ldDst: number,
  ): void;
  sqz_f32_im2row_nhwc(
    c: number,
    h: number,
    w: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    dh: number,
    dw: number,
    pt: number,
    pl: number,
    oh: number,
    ow: number,
    x: number,
    ldx: number,
    rows: number,
    ldrow: number,
    padValue: number,
  ): void;
  sqz_f32_row2im_nhwc(
    c: number,
    h: number,
    w: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    dh: number,
    dw: number,
    pt: number,
    pl: number,
    oh: number,
    ow: number,
    rows: number,
    ldrow: number,
    x: number,
    ldx: number,
  ): void;
}

const compiled = new Map<KernelBuild, Promise<WebAssembly.Module>>();

async function readBuild(build: KernelBuild): Promise<Uint8Array<ArrayBuffer>> {
  const url = new URL(`../../kernels/build/sqz-${build}.wasm`, import.meta.url);
  if (url.protocol === "file:" && typeof Deno !== "undefined") return await Deno.readFile(url);
  const res = await fetch(url);
  if (!res.ok) throw new UnsupportedError(`cannot load kernel build ${build}: ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

export class KernelModule {
  readonly heap: WasmHeap;
  private constructor(readonly build: KernelBuild, readonly exports: KernelExports) {
    this.heap = new WasmHeap(exports.memory, exports.sqz_heap_base());
  }

  /** Instantiates a fresh module (own memory). `auto` picks the best build the runtime runs. */
  static async load(build: KernelBuild | "auto" = "auto"): Promise<KernelModule> {
    const chosen = build === "auto" ? bestBuild() : build;
    if (!availableBuilds().includes(chosen)) {
      throw new UnsupportedError(`this WebAssembly runtime cannot run the ${chosen} kernel build`);
    }
    let mod = compiled.get(chosen);
    if (!mod) {
      mod = readBuild(chosen).then((bytes) => WebAssembly.compile(bytes));
      compiled.set(chosen, mod);
    }
    const instance = await WebAssembly.instantiate(await mod, {
      env: {
        abort(_msg: number, _file: number, line: number, col: number) {
          throw new Error(`sqz kernel abort at ${line}:${col}`);
        },
      },
    });
    return new KernelModule(chosen, instance.exports as unknown as KernelExports);
  }

  get memory(): WebAssembly.Memory {
    return this.exports.memory;
  }

  // Views are made per call: growing memory detaches earlier ArrayBuffers.
  f32(ptr: number, length: number): Float32Array {
    return new Float32Array(this.exports.memory.buffer, ptr, length);
  }
  i32(ptr: number, length: number): Int32Array {
    return new Int32Array(this.exports.memory.buffer, ptr, length);
  }
  u8(ptr: number, length: number): Uint8Array {
    return new Uint8Array(this.exports.memory.buffer, ptr, length);
  }
  i8(ptr: number, length: number): Int8Array {
    return new Int8Array(this.exports.memory.buffer, ptr, length);
  }

  /**
   * The copy-in/copy-out path of the wrappers' run(): uploads `input`, allocates `outBytes`,
   * runs `fn(input, output)` and returns `read(output)`; both blocks are freed even on error.
   */
  roundTrip<T>(
    input: ArrayBufferView,
    outBytes: number,
    fn: (px: number, py: number) => void,
    read: (py: number) => T,
  ): T {
    const px = this.upload(input);
    let py = 0;
    try {
      py = this.heap.alloc(outBytes);
      fn(px, py);
      return read(py);
    } finally {
      this.heap.free(px);
      if (py) this.heap.free(py);
    }
  }

  /** Allocates and fills a block from a typed array; returns its offset. */
  upload(data: ArrayBufferView): number {
    const ptr = this.heap.alloc(data.byteLength);
    this.u8(ptr, data.byteLength).set(
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    );
    return ptr;
  }
}
