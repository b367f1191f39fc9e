// Loads one build of the kernel module (kernels/build/sqz-{scalar,simd,relaxed}.wasm) and
// gives typed access to its exports and memory.
import { availableBuilds, bestBuild, type KernelBuild } from "./features.ts";
import { WasmHeap } from "./heap.ts";
import { ArgumentError, UnsupportedError } from "../errors.ts";
import { type KernelCall, splitRange, ThreadPool } from "./threads.ts";
import { BUNDLED } from "../platform/bundle.ts";

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

const compiled = new Map<string, Promise<WebAssembly.Module>>();

// kernels/build/ in the source tree; beside sqz.js in the browser bundle.
let kernelBase = new URL(BUNDLED ? "./" : "../../kernels/build/", import.meta.url);

/**
 * Where the kernel builds (sqz-{scalar,simd,relaxed}[-mt].wasm) are fetched from, for pages that
 * serve them from elsewhere than beside sqz.js (onnxruntime-web's `env.wasm.wasmPaths`). A
 * relative URL resolves against the page. Modules already compiled stay in use.
 */
export function setKernelBaseUrl(url: string | URL): void {
  const base = (globalThis as { location?: { href: string } }).location?.href;
  let u: URL;
  try {
    u = new URL(url, base);
  } catch {
    throw new ArgumentError(`kernel base URL '${String(url)}' is not a URL`);
  }
  kernelBase = u.href.endsWith("/") ? u : new URL(`${u.href}/`);
  compiled.clear();
}

async function compileBuild(file: string): Promise<WebAssembly.Module> {
  const url = new URL(file, kernelBase);
  if (url.protocol === "file:" && typeof Deno !== "undefined") {
    return await WebAssembly.compile(await Deno.readFile(url));
  }
  const res = await fetch(url);
  if (!res.ok) throw new UnsupportedError(`cannot load kernel build ${url.href}: ${res.status}`);
  // Streaming compilation needs the application/wasm type; static servers may send another.
  if (res.headers.get("content-type")?.startsWith("application/wasm")) {
    return await WebAssembly.compileStreaming(res);
  }
  return await WebAssembly.compile(await res.arrayBuffer());
}

function compile(file: string): Promise<WebAssembly.Module> {
  let mod = compiled.get(file);
  if (!mod) {
    mod = compileBuild(file);
    // A failed load is not cached: the next caller retries.
    mod.catch(() => compiled.delete(file));
    compiled.set(file, mod);
  }
  return mod;
}

const abortImport = {
  abort(_msg: number, _file: number, line: number, col: number) {
    throw new Error(`sqz kernel abort at ${line}:${col}`);
  },
};

export interface LoadOptions {
  /**
   * Threads to run kernels on, the calling one included (default 1). More than one needs
   * SharedArrayBuffer and Worker; where either is missing, or the threads fail to start, the
   * module runs on one thread and `threadNote` says why.
   */
  threads?: number;
  /** Multiply-adds from which a layer is split over the threads (tests lower it). */
  parallelMinMacs?: number;
}

/**
 * Multiply-adds below which a layer runs on one thread: waking a worker costs microseconds,
 * a layer this small takes tens of them.
 */
export const PARALLEL_MIN_MACS = 1 << 19;

/** The most threads a module starts. */
export const MAX_THREADS = 64;

/** Why threads are unavailable here, or undefined when they are. */
function threadsUnavailable(): string | undefined {
  if (typeof SharedArrayBuffer === "undefined") {
    return "SharedArrayBuffer is unavailable (a browser page needs cross-origin isolation)";
  }
  const g = globalThis as { crossOriginIsolated?: boolean };
  if (g.crossOriginIsolated === false) {
    return "the page is not cross-origin isolated, so memory cannot be shared";
  }
  if (typeof Worker === "undefined" && typeof Deno === "undefined") {
    return "this runtime has no Worker";
  }
  return undefined;
}

// A module nobody references any more drops its instances from the pool's workers, so a
// session that is never released does not keep its memory alive there.
const attached = new FinalizationRegistry<{ id: Promise<number | undefined>; workers: number }>(
  ({ id, workers }) => void id.then((i) => i !== undefined && ThreadPool.shared.detach(i, workers)),
);

export class KernelModule {
  readonly heap: WasmHeap;
  #threaded: { module: WebAssembly.Module; memory: WebAssembly.Memory } | undefined;
  /** The pool id once the workers run this module. */
  #id: number | undefined;
  #planned: number;
  #note: string | undefined;
  #starting: Promise<void> | undefined;
  #minMacs = PARALLEL_MIN_MACS;
  #asked = 1;

  private constructor(
    readonly build: KernelBuild,
    readonly exports: KernelExports,
    planned = 1,
    note?: string,
  ) {
    this.heap = new WasmHeap(exports.memory, exports.sqz_heap_base());
    this.#planned = planned;
    this.#note = note;
  }

  /**
   * Instantiates a fresh module (own memory). `auto` picks the best build the runtime runs.
   * With `threads` > 1 the process's worker pool takes the module on when a layer first has
   * enough work to split (or on `threadsReady`), in the background: until then the module
   * runs on this thread.
   */
  static async load(
    build: KernelBuild | "auto" = "auto",
    options: LoadOptions = {},
  ): Promise<KernelModule> {
    const chosen = build === "auto" ? bestBuild() : build;
    if (!availableBuilds().includes(chosen)) {
      throw new UnsupportedError(`this WebAssembly runtime cannot run the ${chosen} kernel build`);
    }
    const threads = options.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
      throw new ArgumentError(`threads must be an integer in [1, ${MAX_THREADS}], got ${threads}`);
    }
    const mod = await KernelModule.#instantiate(chosen, threads);
    if (options.parallelMinMacs !== undefined) mod.#minMacs = options.parallelMinMacs;
    return mod;
  }

  static async #instantiate(chosen: KernelBuild, threads: number): Promise<KernelModule> {
    let note: string | undefined;
    if (threads > 1) {
      note = threadsUnavailable();
      if (!note) {
        try {
          return await KernelModule.#loadThreaded(chosen, threads);
        } catch (e) {
          note = `the threaded build failed to load: ${(e as Error).message}`;
        }
      }
      note = `1 thread of ${threads} asked: ${note}`;
    }
    const instance = await WebAssembly.instantiate(await compile(`sqz-${chosen}.wasm`), {
      env: abortImport,
    });
    return new KernelModule(chosen, instance.exports as unknown as KernelExports, 1, note);
  }

  // The -mt build on a shared memory, which the pool's workers instantiate too.
  // Shared memories need a maximum: the whole wasm32 space, reserved, not committed.
  static async #loadThreaded(build: KernelBuild, threads: number): Promise<KernelModule> {
    const module = await compile(`sqz-${build}-mt.wasm`);
    const memory = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: true });
    const instance = await WebAssembly.instantiate(module, { env: { ...abortImport, memory } });
    const mod = new KernelModule(build, instance.exports as unknown as KernelExports, threads);
    mod.#threaded = { module, memory };
    return mod;
  }

  // Attaches this module to the pool once; failures fall back to one thread with a note.
  #start(): Promise<void> {
    if (this.#starting) return this.#starting;
    if (!this.#threaded || this.#planned < 2) return this.#starting = Promise.resolve();
    const { module, memory } = this.#threaded;
    const workers = this.#planned - 1, asked = this.#planned;
    this.#asked = asked;
    const id = ThreadPool.shared.attach(module, memory, workers).then(
      (id) => {
        if (this.#planned > 1) this.#id = id;
        else ThreadPool.shared.detach(id, workers); // disposed while starting
        return id;
      },
      (e) => {
        this.#planned = 1;
        this.#note = `1 thread of ${asked} asked: threads failed to start: ${(e as Error).message}`;
        return undefined;
      },
    );
    attached.register(this, { id, workers }, this);
    return this.#starting = id.then(() => {});
  }

  /**
   * Row multiple at which an f32 GEMM or convolution may be split without changing a bit:
   * it meets the same register tiles (6 and 4 rows relaxed, 5 simd, 4 scalar).
   */
  get f32RowAlign(): number {
    return this.build === "simd" ? 60 : 12;
  }

  /**
   * Starts the worker threads if they have not started, and resolves once they run (or
   * failed to start: see `threadNote`).
   */
  threadsReady(timeoutMs = 10_000): Promise<void> {
    const started = this.#start();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (this.#id === undefined && this.#planned > 1) {
          this.#planned = 1;
          this.#note = `1 thread of ${this.#asked} asked: threads did not start in ${timeoutMs} ms`;
        }
        resolve();
      }, timeoutMs);
    });
    return Promise.race([started, timeout]).finally(() => clearTimeout(timer));
  }

  /**
   * Threads kernels are split over, the calling one included: as asked, while the workers
   * start (their shares then run here, one after another), 1 if they cannot.
   */
  get threads(): number {
    return this.#planned;
  }

  /** Why fewer threads run than were asked for. */
  get threadNote(): string | undefined {
    return this.#note;
  }

  /**
   * Runs kernel calls in parallel, calls[0] on this thread; one call per thread at most.
   * Without running workers they run here in turn (and the workers start, in the background).
   */
  parallel(calls: KernelCall[]): void {
    const local = (c: KernelCall) =>
      (this.exports[c.fn as keyof KernelExports] as unknown as (...a: number[]) => void)(
        ...c.args,
      );
    if (calls.length > 1 && this.#id !== undefined) {
      ThreadPool.shared.run(this.#id, calls, local);
      return;
    }
    if (calls.length > 1) void this.#start();
    for (const c of calls) local(c);
  }

  /** Gets the worker threads spinning ahead of the calls to come (a no-op without them). */
  wake(): void {
    if (this.#id !== undefined) ThreadPool.shared.wake(this.#planned - 1);
  }

  /**
   * Splits rows [0, rows) over the threads, at multiples of `align`, when the layer has
   * `macs` multiply-adds to share; `call` makes the kernel call of one range and its thread.
   */
  parallelRows(
    rows: number,
    macs: number,
    align: number,
    call: (r0: number, r1: number, thread: number) => KernelCall,
  ): void {
    this.parallel(this.planRows(rows, macs, align).map(([r0, r1], t) => call(r0, r1, t)));
  }

  /** The row ranges parallelRows would hand the threads, one per thread. */
  planRows(rows: number, macs: number, align: number): [number, number][] {
    const parts = macs >= this.#minMacs ? this.#planned : 1;
    return splitRange(rows, parts, align);
  }

  /** Detaches from the worker threads; the module still runs, on one thread. */
  dispose(): void {
    if (this.#id !== undefined) ThreadPool.shared.detach(this.#id, this.#planned - 1);
    attached.unregister(this);
    this.#id = undefined;
    this.#planned = 1;
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
