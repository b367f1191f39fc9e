// 2-D convolution in f32, int8 and binary on the Wasm kernels (kernels/conv/conv.ts).
// Activations are NHWC; weights arrive in ONNX layout OIHW ([Cout][Cin/groups][KH][KW]) and
// are packed once, per group, into the GEMM layouts with K ordered (ky, kx, channel).
import type { KernelModule } from "./module.ts";
import {
  type AutoPad,
  checkConvChannels,
  checkTensorSize,
  type WindowGeometry,
  windowGeometry,
} from "./conv_geometry.ts";
import { type Activation, activationRange, checkLength } from "./validate.ts";
import { type I8Output, type I8OutputParams, makeI8Output, readI8Output } from "./i8_output.ts";
import { type BinOutput, BinOutputParams, makeBinOutput } from "./gemm_bin.ts";
import { fits7Bits, MAX_K_I8 } from "./gemm_i8.ts";
import { ArgumentError, ShapeError } from "../errors.ts";
import type { KernelCall } from "./threads.ts";
import { countNonzeros } from "./gemm_sparse.ts";

function gcd(a: number, b: number): number {
  return b ? gcd(b, a % b) : a;
}
function lcm(a: number, b: number): number {
  return a / gcd(a, b) * b;
}

export interface ConvAttrs {
  strides?: [number, number];
  dilations?: [number, number];
  /** ONNX order [top, left, bottom, right]. */
  pads?: [number, number, number, number];
  autoPad?: AutoPad;
}

export interface ConvShape {
  cout: number;
  /** Input channels (all groups). */
  cin: number;
  kh: number;
  kw: number;
  groups?: number;
}

/** NHWC dims. */
export type Dims4 = [number, number, number, number];

const KIND = { f32: 0, i8: 1, bin: 2, i8Direct: 3, f32Sparse: 4 } as const;

interface ConvExports {
  sqz_conv_workspace_size(cp: number, kind: number): number;
  sqz_f32_conv2d(
    cp: number,
    x: number,
    w: number,
    y: number,
    ws: number,
    lo: number,
    hi: number,
  ): void;
  sqz_i8_conv2d(
    cp: number,
    x: number,
    signed: number,
    zero: number,
    w: number,
    y: number,
    ws: number,
    mode: number,
    params: number,
  ): void;
  /** sqz_i8_conv2d on weights packed by sqz_i7_gemm_pack. */
  sqz_i7_conv2d: ConvExports["sqz_i8_conv2d"];
  sqz_bin_conv2d(
    cp: number,
    x: number,
    w: number,
    y: number,
    ws: number,
    mode: number,
    params: number,
  ): void;
  sqz_bin_pack_weights_seg(
    n: number,
    k: number,
    b: number,
    sk: number,
    sn: number,
    segLen: number,
    segBits: number,
    out: number,
  ): void;
  sqz_bin_packed_size_words(n: number, kw: number): number;
  sqz_bin_pack_rows(m: number, k: number, a: number, lda: number, out: number): void;
  sqz_i8_conv_direct_packed_size(cout: number, c: number, kh: number, kw: number): number;
  sqz_i8_conv_direct_pack(
    cout: number,
    c: number,
    kh: number,
    kw: number,
    w: number,
    bias: number,
    out: number,
  ): void;
}

/**
 * Uploads group g's OIHW weights as a K×og matrix for the GEMM packer, K = (ky, kx, channel):
 * the im2col row order of the NHWC kernels. Returns the block and its (K, N) strides. A 1×1
 * kernel is already that matrix, column-major (stride 1 along K): it is copied as it is. Other
 * kernels are transposed straight into Wasm memory, with no JS-side copy (this is most of
 * packing's cost at load).
 */
function uploadGroup<T extends Float32Array | Int8Array>(
  mod: KernelModule,
  w: T,
  s: Required<ConvShape>,
  g: number,
): { ptr: number; sk: number; sn: number } {
  const cg = s.cin / s.groups, og = s.cout / s.groups, taps = s.kh * s.kw, k = taps * cg;
  const src = w.subarray(g * og * k, (g + 1) * og * k) as T;
  if (taps === 1) return { ptr: mod.upload(src), sk: 1, sn: cg };
  const ptr = mod.heap.alloc(k * og * w.BYTES_PER_ELEMENT);
  const out = w instanceof Float32Array ? mod.f32(ptr, k * og) : mod.i8(ptr, k * og);
  for (let o = 0, i = 0; o < og; o++) {
    for (let ci = 0; ci < cg; ci++) {
      for (let t = 0; t < taps; t++, i++) out[(t * cg + ci) * og + o] = src[i];
    }
  }
  return { ptr, sk: og, sn: 1 };
}

/**
 * Packs each group's weights (and bias slice) with a GEMM packer, one block after another in
 * a single heap block; frees everything on failure.
 */
function packGroups<T extends Float32Array | Int8Array>(
  mod: KernelModule,
  shape: Required<ConvShape>,
  weights: T,
  bias: Float32Array | Int32Array | undefined,
  packedSize: (n: number, k: number) => number,
  pack: (
    n: number,
    k: number,
    b: number,
    sk: number,
    sn: number,
    bias: number,
    out: number,
  ) => void,
): number {
  const og = shape.cout / shape.groups, k = shape.kh * shape.kw * (shape.cin / shape.groups);
  const per = packedSize(og, k) >>> 0;
  const packed = mod.heap.alloc(per * shape.groups);
  try {
    for (let g = 0; g < shape.groups; g++) {
      const b = uploadGroup(mod, weights, shape, g);
      let bb = 0;
      try {
        if (bias) bb = mod.upload(bias.subarray(g * og, (g + 1) * og));
        pack(og, k, b.ptr, b.sk, b.sn, bb, packed + g * per);
      } finally {
        mod.heap.free(b.ptr);
        if (bb) mod.heap.free(bb);
      }
    }
  } catch (err) {
    mod.heap.free(packed);
    throw err;
  }
  return packed;
}

function checkShape(s: ConvShape, weightLength: number): Required<ConvShape> {
  const full = { groups: 1, ...s };
  checkConvChannels(full.cin, full.cout, full.groups);
  checkTensorSize("weights", [full.cout, full.cin / full.groups, full.kh, full.kw], 4);
  checkLength("weights", weightLength, full.cout * (full.cin / full.groups) * full.kh * full.kw);
  return full;
}

/** State shared by the three precisions: packed weights, params struct and workspace. */
abstract class PackedConv {
  protected packed: number;
  #params: number;
  // One workspace per thread: each im2cols its own pixel range.
  #ws: number[] = [];
  #wsBytes = 0;

  protected constructor(
    readonly mod: KernelModule,
    readonly shape: Required<ConvShape>,
    packed: number,
  ) {
    this.packed = packed;
    this.#params = mod.heap.alloc(64);
  }

  protected get ex(): ConvExports {
    return this.mod.exports as unknown as ConvExports;
  }

  /** Output geometry for an NHWC input; throws before anything runs if the layer can't apply. */
  geometry(dims: Dims4, attrs: ConvAttrs = {}): WindowGeometry & { dims: Dims4 } {
    if (!this.packed) throw new ArgumentError("this convolution was disposed");
    if (dims.length !== 4) throw new ShapeError(`input must be NHWC (4-D), got ${dims.length}-D`);
    const [n, h, w, c] = dims;
    checkTensorSize("input", dims, 4);
    if (c !== this.shape.cin) {
      throw new ShapeError(`input has ${c} channels, the convolution expects ${this.shape.cin}`);
    }
    const g = windowGeometry(h, w, { kernel: [this.shape.kh, this.shape.kw], ...attrs });
    checkTensorSize("output", [n, g.outH, g.outW, this.shape.cout], 4);
    return { ...g, dims: [n, g.outH, g.outW, this.shape.cout] };
  }

  /** Writes conv_params and makes sure the workspaces fit; returns [params, workspaces]. */
  protected prepare(dims: Dims4, g: WindowGeometry, kind: number): [number, number[]] {
    const p = this.#params;
    this.mod.i32(p, 16).set([
      dims[0],
      dims[1],
      dims[2],
      dims[3],
      g.kh,
      g.kw,
      g.sh,
      g.sw,
      g.dh,
      g.dw,
      g.padTop,
      g.padLeft,
      g.outH,
      g.outW,
      this.shape.cout,
      this.shape.groups,
    ]);
    const need = this.ex.sqz_conv_workspace_size(p, kind) >>> 0;
    const threads = this.mod.threads;
    if (need > this.#wsBytes || this.#ws.length !== threads) {
      this.#freeWorkspaces();
      this.#wsBytes = need;
      for (let t = 0; t < threads; t++) this.#ws.push(need ? this.mod.heap.alloc(need) : 0);
    }
    return [p, this.#ws];
  }

  #freeWorkspaces(): void {
    for (const w of this.#ws) if (w) this.mod.heap.free(w);
    this.#ws = [];
    this.#wsBytes = 0;
  }

  /**
   * Runs the layer over its n·oh·ow output pixels, split over the threads. f32 ranges are
   * multiples of the build's tile height, so the split changes no bit (kernels/conv/conv.ts);
   * layers of ≤ 4 input channels (the direct kernels, kernels/conv/conv_direct*.ts, exact for
   * any range) split on whole output rows.
   */
  protected dispatch(
    g: WindowGeometry & { dims: Dims4 },
    fn: KernelCall["fn"],
    args: (ws: number, p0: number, p1: number) => number[],
    macScale = 1,
  ): void {
    const [n, oh, ow] = g.dims;
    const macs = macScale * n * oh * ow * g.kh * g.kw * (this.shape.cin / this.shape.groups) *
      this.shape.cout;
    const f32 = fn === "sqz_f32_conv2d_range";
    const tile = f32 ? this.mod.f32RowAlign : 12;
    const align = fn === "sqz_i8_conv2d_direct_range"
      ? ow
      : f32 && this.shape.groups === 1 && this.shape.cin <= 4
      ? lcm(tile, ow)
      : tile;
    const ws = this.#ws;
    this.mod.parallelRows(n * oh * ow, macs, align, (p0, p1, t) => ({
      fn,
      args: args(ws[t], p0, p1),
    }));
  }

  protected checkBlock(what: string, ptr: number, bytes: number): void {
    this.mod.heap.check(what, ptr, bytes);
  }

  dispose(): void {
    for (const p of [this.packed, this.#params]) if (p) this.mod.heap.free(p);
    this.#freeWorkspaces();
    this.packed = this.#params = 0;
  }
}

export class PackedConvF32 extends PackedConv {
  static create(
    mod: KernelModule,
    s: ConvShape & { weights: Float32Array; bias?: Float32Array },
  ): PackedConvF32 {
    const shape = checkShape(s, s.weights.length);
    if (s.bias) checkLength("bias", s.bias.length, shape.cout);
    const e = mod.exports;
    const packed = packGroups(
      mod,
      shape,
      s.weights,
      s.bias,
      e.sqz_f32_gemm_packed_size,
      e.sqz_f32_gemm_pack,
    );
    return new PackedConvF32(mod, shape, packed);
  }

  #rows = 0;
  #rowsBytes = 0;

  /**
   * Few pixels and many output channels (the late layers of a CNN at batch 1): the threads
   * split the output channels instead of the pixels, so each streams only its share of the
   * weights, which dominate. The patches are laid out once, here, as the im2col rows the
   * kernel would build (same (ky, kx, channel) order, zero padding), and each thread runs the
   * GEMM on its 8-column panels: the same tiles and sums as one thread, bit for bit. Returns
   * false where the layer runs the pixel split instead.
   */
  #splitColumns(
    x: number,
    dims: Dims4,
    g: WindowGeometry & { dims: Dims4 },
    y: number,
    lo: number,
    hi: number,
  ): boolean {
    const s = this.shape;
    // The direct kernel (≤ 4 channels) and grouped layers keep the pixel split.
    if (this.mod.threads < 2 || s.groups !== 1 || s.cin <= 4) return false;
    const [n, oh, ow] = g.dims;
    const m = n * oh * ow, k = s.kh * s.kw * s.cin, cout = s.cout;
    if (cout <= m || m * k * 4 > SPLIT_COLUMNS_MAX_BYTES) return false;
    const parts = this.mod.planRows(cout, m * k * cout, 8);
    if (parts.length < 2) return false;
    const pointwise = s.kh === 1 && s.kw === 1 && g.sh === 1 && g.sw === 1 &&
      g.padTop === 0 && g.padLeft === 0 && oh === dims[1] && ow === dims[2];
    let a = x;
    if (!pointwise) {
      if (m * k * 4 > this.#rowsBytes) {
        if (this.#rows) this.mod.heap.free(this.#rows);
        this.#rows = 0;
        this.#rows = this.mod.heap.alloc(m * k * 4);
        this.#rowsBytes = m * k * 4;
      }
      const [, h, w, c] = dims;
      for (let b = 0; b < n; b++) {
        this.mod.exports.sqz_f32_im2row_nhwc(
          c,
          h,
          w,
          s.kh,
          s.kw,
          g.sh,
          g.sw,
          g.dh,
          g.dw,
          g.padTop,
          g.padLeft,
          oh,
          ow,
          x + b * h * w * c * 4,
          c,
          this.#rows + b * oh * ow * k * 4,
          k,
          0,
        );
      }
      a = this.#rows;
    }
    const panelBytes = (8 + 8 * k) * 4; // kernels/pack/pack_f32.ts: bias[8], w[K][8]
    this.mod.parallel(parts.map(([n0, n1]): KernelCall => ({
      fn: "sqz_f32_gemm",
      args: [m, n1 - n0, k, a, k, this.packed + (n0 / 8) * panelBytes, y + n0 * 4, cout, lo, hi],
    })));
    return true;
  }

  override dispose(): void {
    if (this.#rows) this.mod.heap.free(this.#rows);
    this.#rows = this.#rowsBytes = 0;
    super.dispose();
  }

  runResident(x: number, dims: Dims4, y: number, attrs?: ConvAttrs, act?: Activation): Dims4 {
    const g = this.geometry(dims, attrs);
    const [lo, hi] = activationRange(act);
    this.checkBlock("input", x, dims.reduce((a, b) => a * b) * 4);
    this.checkBlock("output", y, g.dims.reduce((a, b) => a * b) * 4);
    if (this.#splitColumns(x, dims, g, y, lo, hi)) return g.dims;
    const [p] = this.prepare(dims, g, KIND.f32);
    this.dispatch(
      g,
      "sqz_f32_conv2d_range",
      (ws, p0, p1) => [p, x, this.packed, y, ws, lo, hi, p0, p1],
    );
    return g.dims;
  }

  run(
    x: Float32Array,
    dims: Dims4,
    attrs?: ConvAttrs,
    act?: Activation,
  ): { data: Float32Array; dims: Dims4 } {
    const g = this.geometry(dims, attrs);
    checkLength("input", x.length, dims.reduce((a, b) => a * b));
    const outLen = g.dims.reduce((a, b) => a * b);
    let d = g.dims;
    const data = this.mod.roundTrip(
      x,
      outLen * 4,
      (px, py) => (d = this.runResident(px, dims, py, attrs, act)),
      (py) => this.mod.f32(py, outLen).slice(),
    );
    return { data, dims: d };
  }
}

/**
 * Whether an int8 layer of this shape also packs for the direct kernel (a first layer: one
 * group of ≤ 4 channels, not 1×1). The direct kernel's i16 dots beat im2col + GEMM on the
 * scalar and simd builds at every window measured; the relaxed build's GEMM (a relaxed dot
 * per 16 multiply-adds with 7-bit weights, 8 otherwise) wins once K = kh·kw·cin is large:
 * 224²×3→64 7×7 s2 (K = 147) 3.3 ms GEMM vs 3.6 direct, 2.3 vs 3.4 with 7-bit weights, while
 * 5×5×3 (K = 75) is 1.33 vs 1.04 (7-bit 1.09 vs 1.04) and 3×3×3 s2 0.75 vs 0.55 (7-bit 0.66).
 */
function directI8(mod: KernelModule, s: Required<ConvShape>, w7: boolean): boolean {
  if (s.groups !== 1 || s.cin > 4 || s.kh * s.kw === 1) return false;
  return mod.build !== "relaxed" || s.kh * s.kw * s.cin <= (w7 ? 75 : 100);
}

export class PackedConvI8 extends PackedConv {
  /** Packed as 7-bit weights (sqz_i7_*). */
  w7 = false;
  /**
   * Weights packed for sqz_i8_conv2d_direct (a first layer, see directI8), 0 if not:
   * dilation-1 calls run the direct kernel, others the GEMM packing.
   */
  #direct = 0;

  static create(
    mod: KernelModule,
    s: ConvShape & { weights: Int8Array; bias?: Int32Array },
  ): PackedConvI8 {
    const shape = checkShape(s, s.weights.length);
    if (s.bias) checkLength("bias", s.bias.length, shape.cout);
    const k = shape.kh * shape.kw * (shape.cin / shape.groups);
    if (k > MAX_K_I8) throw new ShapeError(`K = ${k} exceeds ${MAX_K_I8} (i32 overflow)`);
    const bad = s.weights.indexOf(-128);
    if (bad >= 0) {
      throw new ArgumentError(`weight ${bad} is -128: int8 weights are symmetric, in [-127, 127]`);
    }
    const e = mod.exports;
    // 7-bit weights take the i7 layout (one relaxed dot per 16 multiply-adds), as in GEMM.
    const w7 = fits7Bits(s.weights);
    const packed = packGroups(
      mod,
      shape,
      s.weights,
      s.bias,
      w7 ? e.sqz_i7_gemm_packed_size : e.sqz_i8_gemm_packed_size,
      w7 ? e.sqz_i7_gemm_pack : e.sqz_i8_gemm_pack,
    );
    const conv = new PackedConvI8(mod, shape, packed);
    conv.w7 = w7;
    if (directI8(mod, shape, w7)) {
      const ex = mod.exports as unknown as ConvExports;
      const { cout, cin, kh, kw } = shape;
      let pw = 0, pb = 0;
      try {
        conv.#direct = mod.heap.alloc(ex.sqz_i8_conv_direct_packed_size(cout, cin, kh, kw) >>> 0);
        pw = mod.upload(s.weights);
        if (s.bias) pb = mod.upload(s.bias);
        ex.sqz_i8_conv_direct_pack(cout, cin, kh, kw, pw, pb, conv.#direct);
      } catch (err) {
        conv.dispose();
        throw err;
      } finally {
        if (pw) mod.heap.free(pw);
        if (pb) mod.heap.free(pb);
      }
    }
    return conv;
  }

  /** Whether dilation-1 calls run the direct kernel (a first layer; see directI8). */
  get direct(): boolean {
    return this.#direct !== 0;
  }

  override dispose(): void {
    if (this.#direct) this.mod.heap.free(this.#direct);
    this.#direct = 0;
    super.dispose();
  }

  /** Output stage over all Cout channels (requantize, i32 for ConvInteger, or f32). */
  output(out: I8Output): I8OutputParams {
    return makeI8Output(this.mod, this.shape.cout, out);
  }

  runResident(
    x: number,
    dims: Dims4,
    input: { signed: boolean; zeroPoint: number },
    y: number,
    out: I8OutputParams,
    attrs?: ConvAttrs,
  ): Dims4 {
    const g = this.geometry(dims, attrs);
    const [lo, hi] = input.signed ? [-128, 127] : [0, 255];
    if (!Number.isInteger(input.zeroPoint) || input.zeroPoint < lo || input.zeroPoint > hi) {
      throw new ArgumentError(`input zero point ${input.zeroPoint} is outside its dtype`);
    }
    if (out.n !== this.shape.cout || out.mod !== this.mod) {
      throw new ArgumentError("output params were made for another layer");
    }
    this.checkBlock("input", x, dims.reduce((a, b) => a * b));
    this.checkBlock("output", y, g.dims.reduce((a, b) => a * b) * out.bytesPerElement);
    const signed = input.signed ? 1 : 0;
    if (this.#direct && g.dh === 1 && g.dw === 1) {
      const [p] = this.prepare(dims, g, KIND.i8Direct);
      const wd = this.#direct;
      this.dispatch(
        g,
        "sqz_i8_conv2d_direct_range",
        (ws, p0, p1) => [p, x, signed, input.zeroPoint, wd, y, ws, out.mode, out.ptr, p0, p1],
      );
      return g.dims;
    }
    const [p] = this.prepare(dims, g, KIND.i8);
    this.dispatch(
      g,
      this.w7 ? "sqz_i7_conv2d_range" : "sqz_i8_conv2d_range",
      (
        ws,
        p0,
        p1,
      ) => [p, x, signed, input.zeroPoint, this.packed, y, ws, out.mode, out.ptr, p0, p1],
    );
    return g.dims;
  }

  run(
    x: Uint8Array | Int8Array,
    dims: Dims4,
    input: { signed: boolean; zeroPoint: number },
    out: I8OutputParams,
    attrs?: ConvAttrs,
  ): { data: Int32Array | Float32Array | Uint8Array | Int8Array; dims: Dims4 } {
    const g = this.geometry(dims, attrs);
    checkLength("input", x.length, dims.reduce((a, b) => a * b));
    const outLen = g.dims.reduce((a, b) => a * b);
    let d = g.dims;
    const data = this.mod.roundTrip(
      x,
      outLen * out.bytesPerElement,
      (px, py) => (d = this.runResident(px, dims, input, py, out, attrs)),
      (py) => readI8Output(this.mod, py, outLen, out.mode),
    );
    return { data, dims: d };
  }
}

/** Largest patch matrix the column split lays out (above it the pixel split runs). */
const SPLIT_COLUMNS_MAX_BYTES = 8 << 20;

/** Bytes of one bit-packed pixel of c channels in g groups. */
export function binPixelBytes(c: number, groups = 1): number {
  return groups * Math.ceil(c / groups / 128) * 16;
}

export class PackedConvBin extends PackedConv {
  static create(mod: KernelModule, s: ConvShape & { weights: Float32Array }): PackedConvBin {
    const shape = checkShape(s, s.weights.length);
    const cg = shape.cin / shape.groups, og = shape.cout / shape.groups;
    // Taps are 64-bit aligned in the im2col rows (kernels/conv/conv.ts), the row whole words.
    const segBits = 64 * Math.ceil(cg / 64), taps = shape.kh * shape.kw;
    const ex = mod.exports as unknown as ConvExports;
    const per = ex.sqz_bin_packed_size_words(og, Math.ceil(taps * segBits / 128)) >>> 0;
    const packed = mod.heap.alloc(per * shape.groups);
    try {
      for (let g = 0; g < shape.groups; g++) {
        const b = uploadGroup(mod, s.weights, shape, g);
        try {
          ex.sqz_bin_pack_weights_seg(
            og,
            taps * cg,
            b.ptr,
            b.sk,
            b.sn,
            cg,
            segBits,
            packed + g * per,
          );
        } finally {
          mod.heap.free(b.ptr);
        }
      }
    } catch (err) {
      mod.heap.free(packed);
      throw err;
    }
    return new PackedConvBin(mod, shape, packed);
  }

  output(out: BinOutput): BinOutputParams {
    return makeBinOutput(this.mod, this.shape.cout, out);
  }

  /** Sign-packs an f32 NHWC tensor into a new heap block of bit-packed pixels. */
  packInput(x: Float32Array, dims: Dims4): number {
    const n = checkTensorSize("input", dims, 4);
    checkLength("input", x.length, n);
    if (dims[3] !== this.shape.cin) {
      throw new ShapeError(
        `input has ${dims[3]} channels, the convolution expects ${this.shape.cin}`,
      );
    }
    const pixels = dims[0] * dims[1] * dims[2], groups = this.shape.groups;
    const out = this.mod.heap.alloc(pixels * binPixelBytes(this.shape.cin, groups));
    const px = this.mod.upload(x);
    try {
      // Each (pixel, group) is one row of C/groups values, consecutive in memory.
      const cg = this.shape.cin / groups;
      this.ex.sqz_bin_pack_rows(pixels * groups, cg, px, cg, out);
    } finally {
      this.mod.heap.free(px);
    }
    return out;
  }

  /** Output bytes for this input shape and output mode. */
  outputBytes(dims: Dims4, out: BinOutputParams, attrs?: ConvAttrs): number {
    const g = this.geometry(dims, attrs);
    const pixels = g.dims[0] * g.dims[1] * g.dims[2];
    return out.mode === 2
      ? pixels * Math.ceil(this.shape.cout / 128) * 16
      : pixels * this.shape.cout * 4;
  }

  /** x: bit-packed pixels (packInput, or a previous binary layer's bit output when groups = 1). */
  runResident(x: number, dims: Dims4, y: number, out: BinOutputParams, attrs?: ConvAttrs): Dims4 {
    const g = this.geometry(dims, attrs);
    if (out.n !== this.shape.cout || out.mod !== this.mod) {
      throw new ArgumentError("output params were made for another layer");
    }
    const pixels = dims[0] * dims[1] * dims[2];
    this.checkBlock("input", x, pixels * binPixelBytes(this.shape.cin, this.shape.groups));
    this.checkBlock("output", y, this.outputBytes(dims, out, attrs));
    const [p] = this.prepare(dims, g, KIND.bin);
    // Binary multiply-adds cost about a sixteenth of f32 ones.
    this.dispatch(
      g,
      "sqz_bin_conv2d_range",
      (ws, p0, p1) => [p, x, this.packed, y, ws, out.mode, out.ptr, p0, p1],
      1 / 16,
    );
    return g.dims;
  }

  /** Binarizes f32 NHWC input, runs, copies out: Int32Array, Float32Array or packed bits. */
  run(
    x: Float32Array,
    dims: Dims4,
    out: BinOutputParams,
    attrs?: ConvAttrs,
  ): { data: Int32Array | Float32Array | Uint8Array; dims: Dims4 } {
    const bytes = this.outputBytes(dims, out, attrs);
    const px = this.packInput(x, dims);
    let py = 0;
    try {
      py = this.mod.heap.alloc(bytes);
      const d = this.runResident(px, dims, py, out, attrs);
      const buf = this.mod.memory.buffer;
      const data = out.mode === 0
        ? new Int32Array(buf, py, bytes / 4).slice()
        : out.mode === 1
        ? new Float32Array(buf, py, bytes / 4).slice()
        : new Uint8Array(buf, py, bytes).slice();
      return { data, dims: d };
    } finally {
      this.mod.heap.free(px);
      if (py) this.mod.heap.free(py);
    }
  }
}

interface SparseConvExports {
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
}

/**
 * f32 convolution of one group on pruned weights kept sparse (kernels/pack/pack_sparse.ts,
 * K in the im2col order): im2col blocks (none for pointwise layers) then the SpMM kernel,
 * kernels/conv/conv.ts convF32Sparse. Threads split the pixels at multiples of 16 (the
 * kernel's row tile), which changes no bit.
 */
export class PackedConvSparseF32 extends PackedConv {
  /** Nonzeros kept, and the bytes the packed weights hold. */
  nnz = 0;
  bytes = 0;

  static create(
    mod: KernelModule,
    s: ConvShape & { weights: Float32Array; bias?: Float32Array },
  ): PackedConvSparseF32 {
    const shape = checkShape(s, s.weights.length);
    if (shape.groups !== 1) {
      throw new ArgumentError(`the sparse convolution takes one group, got ${shape.groups}`);
    }
    if (s.bias) checkLength("bias", s.bias.length, shape.cout);
    const ex = mod.exports as unknown as SparseConvExports;
    const k = shape.kh * shape.kw * shape.cin, n = shape.cout;
    const nnz = countNonzeros(s.weights.subarray(0, n * k));
    const bytes = ex.sqz_f32_spmm_packed_size(n, k, nnz) >>> 0;
    const packed = mod.heap.alloc(bytes);
    try {
      const b = uploadGroup(mod, s.weights, shape, 0);
      let bb = 0;
      try {
        if (s.bias) bb = mod.upload(s.bias.subarray(0, n));
        ex.sqz_f32_spmm_pack(n, k, b.ptr, b.sk, b.sn, bb, packed);
      } finally {
        mod.heap.free(b.ptr);
        if (bb) mod.heap.free(bb);
      }
    } catch (err) {
      mod.heap.free(packed);
      throw err;
    }
    const conv = new PackedConvSparseF32(mod, shape, packed);
    conv.nnz = nnz;
    conv.bytes = bytes;
    return conv;
  }

  runResident(x: number, dims: Dims4, y: number, attrs?: ConvAttrs, act?: Activation): Dims4 {
    const g = this.geometry(dims, attrs);
    const [lo, hi] = activationRange(act);
    this.checkBlock("input", x, dims.reduce((a, b) => a * b) * 4);
    this.checkBlock("output", y, g.dims.reduce((a, b) => a * b) * 4);
    const [p, ws] = this.prepare(dims, g, KIND.f32Sparse);
    const [n, oh, ow] = g.dims;
    const macs = n * oh * ow * (this.nnz + g.kh * g.kw * this.shape.cin);
    this.mod.parallelRows(n * oh * ow, macs, 16, (p0, p1, t) => ({
      fn: "sqz_f32_conv2d_sparse_range",
      args: [p, x, this.packed, y, ws[t], lo, hi, p0, p1],
    }));
    return g.dims;
  }

  run(
    x: Float32Array,
    dims: Dims4,
    attrs?: ConvAttrs,
    act?: Activation,
  ): { data: Float32Array; dims: Dims4 } {
    const g = this.geometry(dims, attrs);
    checkLength("input", x.length, dims.reduce((a, b) => a * b));
    const outLen = g.dims.reduce((a, b) => a * b);
    let d = g.dims;
    const data = this.mod.roundTrip(
      x,
      outLen * 4,
      (px, py) => (d = this.runResident(px, dims, py, attrs, act)),
      (py) => this.mod.f32(py, outLen).slice(),
    );
    return { data, dims: d };
  }
}
