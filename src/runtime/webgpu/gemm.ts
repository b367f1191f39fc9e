// GEMMs on WebGPU with weights uploaded once: f32 (gemm_f32_wgsl.ts), int8 (gemm_i8_wgsl.ts)
// and binary (gemm_bin_wgsl.ts), with the wasm kernels' semantics and output stages. run()
// uploads A, dispatches and reads C back; the WGSL files document every layout.
import { ArgumentError, ShapeError } from "../../errors.ts";
import type { GpuContext } from "./device.ts";
import { GEMM_F32_TILE, GEMM_F32_WGSL } from "./gemm_f32_wgsl.ts";
import { gemmI8Wgsl, MODE_I8 } from "./gemm_i8_wgsl.ts";
import { GEMM_BIN_WGSL, MODE_BIN } from "./gemm_bin_wgsl.ts";
import { encodeDispatch, pipeline } from "./pipelines.ts";
import { constantBuffer, readBytes, uniformBuffer } from "./buffers.ts";

function checkDim(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 1 || v > 2 ** 31 - 1) {
    throw new ShapeError(`${what} must be a positive integer, got ${v}`);
  }
}

/** Bytes of a storage buffer of `count` elements of `bytes` each, checked against the device. */
function storageBytes(ctx: GpuContext, what: string, count: number, bytes: number): number {
  const n = count * bytes;
  if (!Number.isSafeInteger(n) || n > ctx.maxStorageBytes) {
    throw new ShapeError(
      `${what} needs ${n} bytes, beyond this adapter's ${ctx.maxStorageBytes}-byte storage buffers`,
    );
  }
  // Zero-sized bindings are not allowed; a 4-byte minimum keeps optional inputs bindable.
  return Math.max(4, Math.ceil(n / 4) * 4);
}

/** Runs one dispatch and reads `bytes` of `out` back. */
async function dispatch(
  ctx: GpuContext,
  pipe: GPUComputePipeline,
  buffers: GPUBuffer[],
  groups: [number, number],
  out: GPUBuffer,
  bytes: number,
): Promise<ArrayBuffer> {
  const enc = ctx.device.createCommandEncoder();
  encodeDispatch(ctx, enc, pipe, buffers, groups);
  ctx.device.queue.submit([enc.finish()]);
  return (await readBytes(ctx, out, bytes)).buffer as ArrayBuffer;
}

/** A clamp for the shaders: finite bounds only (WGSL compilers may assume finite floats). */
function clampFlags(clamp: [number, number] | undefined): { on: boolean; lo: number; hi: number } {
  if (!clamp) return { on: false, lo: 0, hi: 0 };
  const [lo, hi] = clamp;
  if (!(lo <= hi)) throw new ArgumentError(`clamp [${lo}, ${hi}] is empty`);
  const f32max = 3.4028234663852886e38;
  return { on: true, lo: Math.max(lo, -f32max), hi: Math.min(hi, f32max) };
}

export interface GpuGemmF32Weights {
  k: number;
  n: number;
  /** K×N row-major. */
  b: Float32Array;
  bias?: Float32Array;
}

/** f32 GEMM, gemm_f32_64x64_wgsl. Results within f32 rounding of the wasm kernel. */
export class GpuGemmF32 {
  private constructor(
    readonly ctx: GpuContext,
    readonly k: number,
    readonly n: number,
    private b: GPUBuffer,
    private bias: GPUBuffer,
    readonly hasBias: boolean,
  ) {}

  static create(ctx: GpuContext, w: GpuGemmF32Weights): GpuGemmF32 {
    checkDim("K", w.k);
    checkDim("N", w.n);
    const bytes = storageBytes(ctx, "B", w.k * w.n, 4);
    if (w.b.length < w.k * w.n) {
      throw new ShapeError(`B has ${w.b.length} elements, K×N = ${w.k * w.n} needed`);
    }
    if (w.bias && w.bias.length < w.n) {
      throw new ShapeError(`bias has ${w.bias.length} elements, N = ${w.n} needed`);
    }
    const b = constantBuffer(ctx, w.b.subarray(0, w.k * w.n), bytes);
    const bias = constantBuffer(ctx, w.bias?.subarray(0, w.n) ?? new Float32Array(0), 4 * w.n);
    return new GpuGemmF32(ctx, w.k, w.n, b, bias, !!w.bias);
  }

  async run(a: Float32Array, m: number, clamp?: [number, number]): Promise<Float32Array> {
    checkDim("M", m);
    if (a.length < m * this.k) {
      throw new ShapeError(`A has ${a.length} elements, M×K = ${m * this.k} needed`);
    }
    const ctx = this.ctx;
    const cBytes = storageBytes(ctx, "C", m * this.n, 4);
    const pa = constantBuffer(
      ctx,
      a.subarray(0, m * this.k),
      storageBytes(ctx, "A", m * this.k, 4),
    );
    const pc = ctx.device.createBuffer({
      size: cBytes,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
    });
    const cl = clampFlags(clamp);
    const u = new ArrayBuffer(32), dv = new DataView(u);
    dv.setUint32(0, m, true);
    dv.setUint32(4, this.n, true);
    dv.setUint32(8, this.k, true);
    dv.setUint32(12, (this.hasBias ? 1 : 0) | (cl.on ? 2 : 0), true);
    dv.setFloat32(16, cl.lo, true);
    dv.setFloat32(20, cl.hi, true);
    const pu = uniformBuffer(ctx, u);
    try {
      const t = GEMM_F32_TILE;
      const out = await dispatch(
        ctx,
        pipeline(ctx, "gemm_f32_64x64_wgsl", GEMM_F32_WGSL),
        [pa, this.b, this.bias, pc, pu],
        [Math.ceil(this.n / t), Math.ceil(m / t)],
        pc,
        m * this.n * 4,
      );
      return new Float32Array(out);
    } finally {
      pa.destroy();
      pc.destroy();
      pu.destroy();
    }
  }

  dispose(): void {
    this.b.destroy();
    this.bias.destroy();
  }
}

export interface GpuGemmI8Weights {
  k: number;
  n: number;
  /** i8 weights in [-127, 127], K×N row-major. */
  b: Int8Array;
  /** i32 bias with scale aScale·wScale[n]. */
  bias?: Int32Array;
}

/** Output stages, as the wasm kernels' I8Output (fp32 requantization; gemmlowp is wasm-only). */
export type GpuI8Output =
  | { kind: "i32" }
  | {
    kind: "requant";
    dtype: "uint8" | "int8";
    scale: number | Float32Array;
    zeroPoint: number;
    clamp?: [number, number];
  }
  | { kind: "f32"; scale: number | Float32Array; clamp?: [number, number] };

/** Packs K values per row into words of 4 bytes, K padded to a multiple of 4 with zeros. */
export function packRowsI8(src: Uint8Array | Int8Array, rows: number, k: number): Uint32Array {
  const kw = Math.ceil(k / 4);
  const out = new Uint32Array(rows * kw);
  const bytes = new Uint8Array(out.buffer);
  const s = new Uint8Array(src.buffer, src.byteOffset, rows * k);
  if (k % 4 === 0) bytes.set(s);
  else for (let r = 0; r < rows; r++) bytes.set(s.subarray(r * k, r * k + k), r * kw * 4);
  return out;
}

/** int8 GEMM, gemm_i8_4x4_wgsl: the wasm kernel's results, bit for bit. */
export class GpuGemmI8 {
  private constructor(
    readonly ctx: GpuContext,
    readonly k: number,
    readonly n: number,
    private w: GPUBuffer,
    private colsum: GPUBuffer,
    private bias: GPUBuffer,
    readonly hasBias: boolean,
  ) {}

  static create(ctx: GpuContext, w: GpuGemmI8Weights): GpuGemmI8 {
    checkDim("K", w.k);
    checkDim("N", w.n);
    if (w.k > 65536) throw new ShapeError(`K = ${w.k} exceeds 65536: i32 accumulators overflow`);
    if (w.b.length < w.k * w.n) {
      throw new ShapeError(`B has ${w.b.length} elements, K×N = ${w.k * w.n} needed`);
    }
    if (w.bias && w.bias.length < w.n) {
      throw new ShapeError(`bias has ${w.bias.length} elements, N = ${w.n} needed`);
    }
    const kw = Math.ceil(w.k / 4);
    const bytes = storageBytes(ctx, "W", w.n * kw, 4);
    // Transpose to columns (K contiguous per output column) and sum each column.
    const t = new Int8Array(w.n * w.k);
    const colsum = new Int32Array(w.n);
    for (let k = 0; k < w.k; k++) {
      for (let n = 0; n < w.n; n++) {
        const v = w.b[k * w.n + n];
        if (v === -128) {
          throw new ArgumentError(`weight ${k * w.n + n} is -128: int8 weights are in [-127, 127]`);
        }
        t[n * w.k + k] = v;
        colsum[n] += v;
      }
    }
    return new GpuGemmI8(
      ctx,
      w.k,
      w.n,
      constantBuffer(ctx, packRowsI8(t, w.n, w.k), bytes),
      constantBuffer(ctx, colsum, 4 * w.n),
      constantBuffer(ctx, w.bias?.subarray(0, w.n) ?? new Int32Array(0), 4 * w.n),
      !!w.bias,
    );
  }

  async run(
    a: Uint8Array | Int8Array,
    m: number,
    input: { signed: boolean; zeroPoint: number },
    out: GpuI8Output,
  ): Promise<Int32Array | Float32Array | Uint8Array | Int8Array> {
    checkDim("M", m);
    if (a.length < m * this.k) {
      throw new ShapeError(`A has ${a.length} elements, M×K = ${m * this.k} needed`);
    }
    const [zlo, zhi] = input.signed ? [-128, 127] : [0, 255];
    if (!Number.isInteger(input.zeroPoint) || input.zeroPoint < zlo || input.zeroPoint > zhi) {
      throw new ArgumentError(`input zero point ${input.zeroPoint} is outside [${zlo}, ${zhi}]`);
    }
    const ctx = this.ctx;
    const kw = Math.ceil(this.k / 4), nw = Math.ceil(this.n / 4);
    const mode = out.kind === "i32"
      ? MODE_I8.i32
      : out.kind === "f32"
      ? MODE_I8.f32
      : out.dtype === "uint8"
      ? MODE_I8.fp32_uint8
      : MODE_I8.fp32_int8;
    const quantized = mode === MODE_I8.fp32_uint8 || mode === MODE_I8.fp32_int8;
    const scale = new Float32Array(this.n);
    if (out.kind !== "i32") {
      if (typeof out.scale === "number") scale.fill(out.scale);
      else if (out.scale.length !== this.n) {
        throw new ShapeError(`${out.scale.length} scales for N = ${this.n}`);
      } else scale.set(out.scale);
      for (let i = 0; i < this.n; i++) {
        if (!(scale[i] > 0) || !Number.isFinite(scale[i])) {
          throw new ArgumentError(`scale[${i}] = ${scale[i]} must be positive and finite`);
        }
      }
    }
    const u = new ArrayBuffer(48), dv = new DataView(u);
    let flags = this.hasBias ? 1 : 0;
    dv.setUint32(0, m, true);
    dv.setUint32(4, this.n, true);
    dv.setUint32(8, kw, true);
    dv.setUint32(12, mode, true);
    dv.setUint32(16, input.signed ? 1 : 0, true);
    dv.setInt32(20, input.zeroPoint, true);
    if (out.kind === "requant") {
      const [tlo, thi] = out.dtype === "uint8" ? [0, 255] : [-128, 127];
      const [qmin, qmax] = out.clamp ?? [tlo, thi];
      if (!(tlo <= qmin && qmin <= qmax && qmax <= thi) || !Number.isInteger(out.zeroPoint)) {
        throw new ArgumentError(`output clamp [${qmin}, ${qmax}] or zero point is out of range`);
      }
      dv.setInt32(24, out.zeroPoint, true);
      dv.setFloat32(32, qmin - out.zeroPoint, true);
      dv.setFloat32(36, qmax - out.zeroPoint, true);
    } else if (out.kind === "f32") {
      const cl = clampFlags(out.clamp);
      if (cl.on) flags |= 2;
      dv.setFloat32(40, cl.lo, true);
      dv.setFloat32(44, cl.hi, true);
    }
    dv.setUint32(28, flags, true);
    const cWords = quantized ? m * nw : m * this.n;
    const pa = constantBuffer(ctx, packRowsI8(a, m, this.k), storageBytes(ctx, "A", m * kw, 4));
    const ps = constantBuffer(ctx, scale, 4 * this.n);
    const pc = ctx.device.createBuffer({
      size: storageBytes(ctx, "C", cWords, 4),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
    });
    const pu = uniformBuffer(ctx, u);
    try {
      const key = `gemm_i8_4x4_wgsl${ctx.packedDot ? "_dot4" : ""}`;
      const raw = await dispatch(
        ctx,
        pipeline(ctx, key, gemmI8Wgsl(ctx.packedDot)),
        [pa, this.w, this.colsum, this.bias, ps, pc, pu],
        [Math.ceil(this.n / 32), Math.ceil(m / 32)],
        pc,
        cWords * 4,
      );
      if (mode === MODE_I8.i32) return new Int32Array(raw);
      if (mode === MODE_I8.f32) return new Float32Array(raw);
      const rows = new Uint8Array(raw);
      const c = mode === MODE_I8.fp32_uint8
        ? new Uint8Array(m * this.n)
        : new Int8Array(m * this.n);
      const cb = new Uint8Array(c.buffer);
      for (let r = 0; r < m; r++) {
        cb.set(rows.subarray(r * nw * 4, r * nw * 4 + this.n), r * this.n);
      }
      return c;
    } finally {
      pa.destroy();
      ps.destroy();
      pc.destroy();
      pu.destroy();
    }
  }

  dispose(): void {
    this.w.destroy();
    this.colsum.destroy();
    this.bias.destroy();
  }
}

/** Words of one bit-packed row of k values: the wasm layout's 128-bit granules. */
export const binRowWords = (k: number) => 4 * Math.ceil(k / 128);

/** Sign bits of rows×k floats (1 = negative, −0 counts as +1), in the wasm row layout. */
export function packSignRows(x: Float32Array, rows: number, k: number): Uint32Array {
  const kw = binRowWords(k);
  const out = new Uint32Array(rows * kw);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < k; i++) {
      if (x[r * k + i] < 0) out[r * kw + (i >>> 5)] |= 1 << (i & 31);
    }
  }
  return out;
}

export type GpuBinOutput =
  | { kind: "i32" }
  | { kind: "f32"; alpha: Float32Array | number; bias?: Float32Array; clamp?: [number, number] }
  | { kind: "bits"; alpha: Float32Array | number; bias?: Float32Array };

/** Binary GEMM, gemm_bin_4x4_wgsl: the wasm kernel's results, bit for bit. */
export class GpuGemmBin {
  private constructor(
    readonly ctx: GpuContext,
    readonly k: number,
    readonly n: number,
    private w: GPUBuffer,
  ) {}

  /** b: real weights K×N row-major; only their signs are kept. */
  static create(ctx: GpuContext, w: { k: number; n: number; b: Float32Array }): GpuGemmBin {
    checkDim("K", w.k);
    checkDim("N", w.n);
    if (w.b.length < w.k * w.n) {
      throw new ShapeError(`B has ${w.b.length} elements, K×N = ${w.k * w.n} needed`);
    }
    const kw = binRowWords(w.k);
    const bytes = storageBytes(ctx, "W", w.n * kw, 4);
    const t = new Float32Array(w.n * w.k);
    for (let k = 0; k < w.k; k++) for (let n = 0; n < w.n; n++) t[n * w.k + k] = w.b[k * w.n + n];
    return new GpuGemmBin(ctx, w.k, w.n, constantBuffer(ctx, packSignRows(t, w.n, w.k), bytes));
  }

  /** a: f32 rows (binarized here) or rows already packed with packSignRows. */
  async run(
    a: Float32Array | Uint32Array,
    m: number,
    out: GpuBinOutput,
  ): Promise<Int32Array | Float32Array | Uint8Array> {
    checkDim("M", m);
    const ctx = this.ctx, kw = binRowWords(this.k);
    const packed = a instanceof Uint32Array ? a : packSignRows(a, m, this.k);
    if (packed.length < m * kw) throw new ShapeError(`A has too few elements for M = ${m}`);
    const alpha = new Float32Array(this.n), bias = new Float32Array(this.n);
    let flags = 0, lo = 0, hi = 0;
    if (out.kind !== "i32") {
      if (typeof out.alpha === "number") alpha.fill(out.alpha);
      else if (out.alpha.length !== this.n) throw new ShapeError(`${out.alpha.length} alphas`);
      else alpha.set(out.alpha);
      for (let i = 0; i < this.n; i++) {
        if (!(alpha[i] > 0) || !Number.isFinite(alpha[i])) {
          throw new ArgumentError(`alpha[${i}] = ${alpha[i]} must be positive and finite`);
        }
      }
      if (out.bias) {
        if (out.bias.length !== this.n) throw new ShapeError(`${out.bias.length} biases`);
        bias.set(out.bias);
      }
      if (out.kind === "f32") {
        const cl = clampFlags(out.clamp);
        if (cl.on) flags |= 2;
        lo = cl.lo;
        hi = cl.hi;
      }
    }
    const words = binRowWords(this.n);
    const cWords = out.kind === "bits" ? m * words : m * this.n;
    const u = new ArrayBuffer(32), dv = new DataView(u);
    dv.setUint32(0, m, true);
    dv.setUint32(4, this.n, true);
    dv.setUint32(8, this.k, true);
    dv.setUint32(12, kw, true);
    dv.setUint32(16, MODE_BIN[out.kind], true);
    dv.setUint32(20, flags, true);
    dv.setFloat32(24, lo, true);
    dv.setFloat32(28, hi, true);
    const pa = constantBuffer(ctx, packed.subarray(0, m * kw), storageBytes(ctx, "A", m * kw, 4));
    const pal = constantBuffer(ctx, alpha, 4 * this.n), pb = constantBuffer(ctx, bias, 4 * this.n);
    const pc = ctx.device.createBuffer({
      size: storageBytes(ctx, "C", cWords, 4),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
    });
    const pu = uniformBuffer(ctx, u);
    try {
      const bits = out.kind === "bits";
      const groups: [number, number] = bits
        ? [Math.ceil((m * words) / 64), 1]
        : [Math.ceil(this.n / 32), Math.ceil(m / 32)];
      const raw = await dispatch(
        ctx,
        pipeline(ctx, "gemm_bin_4x4_wgsl", GEMM_BIN_WGSL, bits ? "main_bits" : "main"),
        [pa, this.w, pal, pb, pc, pu],
        groups,
        pc,
        cWords * 4,
      );
      if (bits) return new Uint8Array(raw);
      return out.kind === "i32" ? new Int32Array(raw) : new Float32Array(raw);
    } finally {
      for (const b of [pa, pal, pb, pc, pu]) b.destroy();
    }
  }

  dispose(): void {
    this.w.destroy();
  }
}
