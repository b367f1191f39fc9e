// Depthwise 2-D convolution (groups = Cin = Cout, channel multiplier 1) in f32 and int8 on the
// Wasm kernels of kernels/conv/dwconv_*.ts. Activations are NHWC; weights arrive in ONNX layout
// [C][1][KH][KW] and are packed once (kernels/pack/pack_dw.ts). A channel multiplier > 1 is a
// grouped convolution with Cout ≠ Cin: use PackedConvF32 / PackedConvI8 (src/kernels/conv.ts).
import type { KernelModule } from "./module.ts";
import { checkTensorSize, type WindowGeometry, windowGeometry } from "./conv_geometry.ts";
import type { ConvAttrs, Dims4 } from "./conv.ts";
import { type Activation, activationRange, checkDim, checkLength } from "./validate.ts";
import { type I8Output, I8OutputParams, makeI8Output, MODE } from "./i8_output.ts";
import { MAX_K_I8 } from "./gemm_i8.ts";
import type { KernelCall } from "./threads.ts";
import { windowShares } from "./window_split.ts";
import { ArgumentError, ShapeError } from "../errors.ts";

export type { ConvAttrs, Dims4 };

/** Exports of kernels/abi_dwconv.ts. */
interface DwExports {
  sqz_f32_dwconv_packed_size(c: number, kh: number, kw: number): number;
  sqz_f32_dwconv_pack(
    c: number,
    kh: number,
    kw: number,
    w: number,
    bias: number,
    out: number,
  ): void;
  sqz_f32_dwconv(dp: number, x: number, w: number, y: number, lo: number, hi: number): void;
  sqz_i8_dwconv_packed_size(c: number, kh: number, kw: number): number;
  sqz_i8_dwconv_pack(c: number, kh: number, kw: number, w: number, bias: number, out: number): void;
  sqz_i8_dwconv(
    dp: number,
    x: number,
    signed: number,
    zero: number,
    w: number,
    y: number,
    mode: number,
    params: number,
  ): void;
}

export interface DepthwiseShape {
  /** Channels (= groups = input channels = output channels). */
  c: number;
  kh: number;
  kw: number;
}

export interface I8Input {
  signed: boolean;
  zeroPoint: number;
}

/** Largest padded extent: kernels index pixels and taps with i32 coordinates. */
const MAX_PADDED = 0x7fffffff;

/** Packed bytes as laid out by kernels/pack/pack_dw.ts (checked here before Wasm computes it). */
export function depthwisePackedBytes(s: DepthwiseShape, kind: "f32" | "i8"): number {
  const taps = s.kh * s.kw;
  if (kind === "f32") return Math.ceil(s.c / 4) * (1 + taps) * 16;
  const rows3 = s.kh === 3 && s.kw === 3 ? 288 : 0;
  return Math.ceil(s.c / 8) * (64 + Math.ceil(taps / 2) * 32 + rows3);
}

function checkShape(s: DepthwiseShape, weightLength: number, kind: "f32" | "i8"): void {
  checkDim("channels", s.c);
  checkDim("kernel height", s.kh);
  checkDim("kernel width", s.kw);
  const n = checkTensorSize("weights", [s.c, 1, s.kh, s.kw], 4);
  checkLength("weights", weightLength, n);
  if (depthwisePackedBytes(s, kind) > MAX_PADDED) {
    throw new ShapeError(`packed weights of ${s.c}×${s.kh}×${s.kw} exceed 2 GiB`);
  }
}

/** One thread's share: a dw_params struct for its rows or images, and where they start. */
interface DwShare {
  dp: number;
  x: number;
  y: number;
}

/** State shared by both precisions: packed weights and one dw_params struct per thread. */
abstract class PackedDepthwise {
  protected packed: number;
  #params: number;
  #slots: number;

  protected constructor(
    readonly mod: KernelModule,
    readonly shape: DepthwiseShape,
    packed: number,
  ) {
    this.packed = packed;
    this.#slots = Math.max(1, mod.threads);
    try {
      this.#params = mod.heap.alloc(64 * this.#slots);
    } catch (e) {
      mod.heap.free(packed);
      throw e;
    }
  }

  protected get ex(): DwExports {
    return this.mod.exports as unknown as DwExports;
  }

  /** Output geometry for an NHWC input; throws before anything runs if the layer can't apply. */
  geometry(dims: Dims4, attrs: ConvAttrs = {}): WindowGeometry & { dims: Dims4 } {
    if (!this.packed) throw new ArgumentError("this depthwise convolution was disposed");
    if (!Array.isArray(dims) || dims.length !== 4) {
      throw new ShapeError(`input must be NHWC (4-D), got ${dims?.length}-D`);
    }
    const [n, h, w, c] = dims;
    checkTensorSize("input", dims, 4);
    if (c !== this.shape.c) {
      throw new ShapeError(
        `input has ${c} channels, the depthwise convolution expects ${this.shape.c}`,
      );
    }
    const g = windowGeometry(h, w, { kernel: [this.shape.kh, this.shape.kw], ...attrs });
    if (h + g.padTop + g.padBottom > MAX_PADDED || w + g.padLeft + g.padRight > MAX_PADDED) {
      throw new ShapeError(
        `padded input ${h}×${w} with pads [${g.padTop}, ${g.padLeft}, ${g.padBottom}, ${g.padRight}] exceeds 32-bit coordinates`,
      );
    }
    checkTensorSize("output", [n, g.outH, g.outW, c], 4);
    return { ...g, dims: [n, g.outH, g.outW, c] };
  }

  /** Splits the layer over the threads (window_split.ts); writes each share's dw_params. */
  protected shares(
    dims: Dims4,
    g: WindowGeometry,
    x: number,
    xBytes: number,
    y: number,
    yBytes: number,
  ): DwShare[] {
    const [, , w, c] = dims;
    // Depthwise work per output is small: weigh MACs ×4 against the GEMM threshold.
    const work = 4 * dims[0] * g.outH * g.outW * c * g.kh * g.kw;
    const parts = windowShares(this.mod, dims, g, xBytes, yBytes, work);
    if (parts.length > this.#slots) {
      const more = this.mod.heap.alloc(64 * parts.length);
      this.mod.heap.free(this.#params);
      this.#params = more;
      this.#slots = parts.length;
    }
    return parts.map((s, t) => {
      const dp = this.#params + 64 * t;
      this.mod.i32(dp, 16).set([
        s.n,
        s.h,
        w,
        c,
        g.kh,
        g.kw,
        g.sh,
        g.sw,
        g.dh,
        g.dw,
        s.padTop,
        g.padLeft,
        s.outH,
        g.outW,
        0,
        0,
      ]);
      return { dp, x: x + s.xOffset, y: y + s.yOffset };
    });
  }

  protected checkBlock(what: string, ptr: number, bytes: number): void {
    this.mod.heap.check(what, ptr, bytes);
  }

  dispose(): void {
    for (const p of [this.packed, this.#params]) if (p) this.mod.heap.free(p);
    this.packed = this.#params = 0;
  }
}

function elements(d: Dims4): number {
  return d[0] * d[1] * d[2] * d[3];
}

/** f32 depthwise convolution: y = clamp(Σ x·w + bias) with a fused ReLU / ReLU6 / clip. */
export class PackedDepthwiseF32 extends PackedDepthwise {
  static create(
    mod: KernelModule,
    s: DepthwiseShape & { weights: Float32Array; bias?: Float32Array },
  ): PackedDepthwiseF32 {
    checkShape(s, s.weights.length, "f32");
    if (s.bias) checkLength("bias", s.bias.length, s.c);
    const shape = { c: s.c, kh: s.kh, kw: s.kw };
    const ex = mod.exports as unknown as DwExports;
    const packed = mod.heap.alloc(ex.sqz_f32_dwconv_packed_size(s.c, s.kh, s.kw) >>> 0);
    let w = 0, bias = 0;
    try {
      w = mod.upload(s.weights.subarray(0, s.c * s.kh * s.kw));
      if (s.bias) bias = mod.upload(s.bias.subarray(0, s.c));
      ex.sqz_f32_dwconv_pack(s.c, s.kh, s.kw, w, bias, packed);
    } catch (e) {
      mod.heap.free(packed);
      throw e;
    } finally {
      if (w) mod.heap.free(w);
      if (bias) mod.heap.free(bias);
    }
    return new PackedDepthwiseF32(mod, shape, packed);
  }

  /** Runs on NHWC buffers already in Wasm memory (heap blocks); returns the output dims. */
  runResident(x: number, dims: Dims4, y: number, attrs?: ConvAttrs, act?: Activation): Dims4 {
    const g = this.geometry(dims, attrs);
    const [lo, hi] = activationRange(act);
    this.checkBlock("input", x, elements(dims) * 4);
    this.checkBlock("output", y, elements(g.dims) * 4);
    this.mod.parallel(
      this.shares(dims, g, x, 4, y, 4).map((s): KernelCall => ({
        fn: "sqz_f32_dwconv",
        args: [s.dp, s.x, this.packed, s.y, lo, hi],
      })),
    );
    return g.dims;
  }

  /** Copies x in and the output out. */
  run(
    x: Float32Array,
    dims: Dims4,
    attrs?: ConvAttrs,
    act?: Activation,
  ): { data: Float32Array; dims: Dims4 } {
    const g = this.geometry(dims, attrs);
    activationRange(act);
    checkLength("input", x.length, elements(dims));
    const outLen = elements(g.dims);
    const px = this.mod.upload(x.subarray(0, elements(dims)));
    let py = 0;
    try {
      py = this.mod.heap.alloc(outLen * 4);
      const d = this.runResident(px, dims, py, attrs, act);
      return { data: this.mod.f32(py, outLen).slice(), dims: d };
    } finally {
      this.mod.heap.free(px);
      if (py) this.mod.heap.free(py);
    }
  }
}

/**
 * int8 depthwise convolution with QLinearConv / ConvInteger semantics: acc = bias +
 * Σ (x − zeroPoint)·w over in-bounds taps, then the int8 GEMM's output stage (i32, u8/i8
 * requantized with gemmlowp or fp32 rounding, or dequantized f32).
 */
export class PackedDepthwiseI8 extends PackedDepthwise {
  static create(
    mod: KernelModule,
    s: DepthwiseShape & { weights: Int8Array; bias?: Int32Array },
  ): PackedDepthwiseI8 {
    checkShape(s, s.weights.length, "i8");
    if (s.kh * s.kw > MAX_K_I8) {
      throw new ShapeError(
        `${s.kh}×${s.kw} taps exceed ${MAX_K_I8}, where i32 accumulators could overflow`,
      );
    }
    if (s.bias) checkLength("bias", s.bias.length, s.c);
    const n = s.c * s.kh * s.kw;
    const bad = s.weights.subarray(0, n).indexOf(-128);
    if (bad >= 0) {
      throw new ArgumentError(`weight ${bad} is -128: int8 weights are symmetric, in [-127, 127]`);
    }
    const shape = { c: s.c, kh: s.kh, kw: s.kw };
    const ex = mod.exports as unknown as DwExports;
    const packed = mod.heap.alloc(ex.sqz_i8_dwconv_packed_size(s.c, s.kh, s.kw) >>> 0);
    let w = 0, bias = 0;
    try {
      w = mod.upload(s.weights.subarray(0, n));
      if (s.bias) bias = mod.upload(s.bias.subarray(0, s.c));
      ex.sqz_i8_dwconv_pack(s.c, s.kh, s.kw, w, bias, packed);
    } catch (e) {
      mod.heap.free(packed);
      throw e;
    } finally {
      if (w) mod.heap.free(w);
      if (bias) mod.heap.free(bias);
    }
    return new PackedDepthwiseI8(mod, shape, packed);
  }

  /** Lays out an output stage for this layer's C channels; reuse it across runs. */
  output(out: I8Output): I8OutputParams {
    return makeI8Output(this.mod, this.shape.c, out);
  }

  #checkInput(input: I8Input): void {
    const [lo, hi] = input.signed ? [-128, 127] : [0, 255];
    if (!Number.isInteger(input.zeroPoint) || input.zeroPoint < lo || input.zeroPoint > hi) {
      throw new ArgumentError(
        `input zero point ${input.zeroPoint} is outside ${input.signed ? "int8" : "uint8"}`,
      );
    }
  }

  #checkOutput(out: I8OutputParams): void {
    if (out.n !== this.shape.c || out.mod !== this.mod || !out.ptr) {
      throw new ArgumentError("output params were made for another layer");
    }
  }

  /** Runs on NHWC buffers already in Wasm memory (heap blocks); returns the output dims. */
  runResident(
    x: number,
    dims: Dims4,
    y: number,
    attrs: ConvAttrs | undefined,
    input: I8Input,
    out: I8OutputParams,
  ): Dims4 {
    const g = this.geometry(dims, attrs);
    this.#checkInput(input);
    this.#checkOutput(out);
    this.checkBlock("input", x, elements(dims));
    this.checkBlock("output", y, elements(g.dims) * out.bytesPerElement);
    const signed = input.signed ? 1 : 0;
    this.mod.parallel(
      this.shares(dims, g, x, 1, y, out.bytesPerElement).map((s): KernelCall => ({
        fn: "sqz_i8_dwconv",
        args: [s.dp, s.x, signed, input.zeroPoint, this.packed, s.y, out.mode, out.ptr],
      })),
    );
    return g.dims;
  }

  /**
   * Copies x in and the output out. `out` is an output stage from output(), or a spec laid out
   * for this call only.
   */
  run(
    x: Uint8Array | Int8Array,
    dims: Dims4,
    attrs: ConvAttrs | undefined,
    input: I8Input,
    out: I8Output | I8OutputParams,
  ): { data: Int32Array | Float32Array | Uint8Array | Int8Array; dims: Dims4 } {
    const g = this.geometry(dims, attrs);
    this.#checkInput(input);
    if (input.signed !== (x instanceof Int8Array)) {
      throw new ArgumentError(
        `input is ${x.constructor.name} but signed is ${input.signed}`,
      );
    }
    checkLength("input", x.length, elements(dims));
    if (out instanceof I8OutputParams) this.#checkOutput(out);
    const params = out instanceof I8OutputParams ? out : this.output(out);
    const outLen = elements(g.dims);
    let px = 0, py = 0;
    try {
      px = this.mod.upload(x.subarray(0, elements(dims)));
      py = this.mod.heap.alloc(outLen * params.bytesPerElement);
      const d = this.runResident(px, dims, py, attrs, input, params);
      const buf = this.mod.memory.buffer;
      const data = params.mode === MODE.i32
        ? new Int32Array(buf, py, outLen).slice()
        : params.mode === MODE.f32
        ? new Float32Array(buf, py, outLen).slice()
        : params.mode === MODE.gemmlowp_int8 || params.mode === MODE.fp32_int8
        ? new Int8Array(buf, py, outLen).slice()
        : new Uint8Array(buf, py, outLen).slice();
      return { data, dims: d };
    } finally {
      if (px) this.mod.heap.free(px);
      if (py) this.mod.heap.free(py);
      if (params !== out) params.dispose();
    }
  }
}
