// Pooling on the Wasm kernels (kernels/pool/, ABI in kernels/abi_pool.ts): MaxPool,
// AveragePool, GlobalAveragePool and GlobalMaxPool in f32 and int8 (u8/i8), NHWC.
//
// Layout: tensors are NHWC, element (n, y, x, c) at ((n·H + y)·W + x)·C + c, and results come
// back as NHWC too ([N, outH, outW, C]; global pools [N, 1, 1, C]).
//
// int8: max pooling is the exact max of the raw values (the quantization passes through).
// Average pooling (com.microsoft QLinearAveragePool / QLinearGlobalAveragePool), in f32:
//   y = round_half_even(f32(Σ(x − xZero)) · f32(xScale / f32(yScale · count))) + yZero
// clamped to the type's range, the output having the input's type: onnxruntime's (MLAS) global
// average formula, used for every window; count is the window's divisor (countIncludePad).
// Without `quant` an int8 average is the integer mean rounded half to even (scales 1, zeros 0).
//
// Everything is validated (typed errors from src/errors.ts) before Wasm memory is touched, and
// every heap block is freed, even when a kernel throws.
import type { KernelModule } from "./module.ts";
import {
  checkTensorSize,
  type WindowAttrs,
  type WindowGeometry,
  windowGeometry,
} from "./conv_geometry.ts";
import { type Activation, activationRange, MAX_DIM } from "./validate.ts";
import { ArgumentError, ShapeError } from "../errors.ts";
import type { KernelCall } from "./threads.ts";
import { windowShares } from "./window_split.ts";

export type PoolTensor = Float32Array | Uint8Array | Int8Array;
/** NHWC dims. */
export type Dims4 = [number, number, number, number];

/**
 * Offsets of x and y when both already live in Wasm memory: the pool then runs in place of the
 * copies, and the result's data is empty (read y).
 */
export interface Resident {
  x: number;
  y: number;
}

export interface PoolResult<T extends PoolTensor> {
  data: T;
  dims: Dims4;
}

/** int8 average pooling quantization (per tensor). */
export interface PoolQuant {
  xScale: number;
  xZero: number;
  yScale: number;
  yZero: number;
}

export interface MaxPoolAttrs extends WindowAttrs {
  /** Fused clamp, f32 only. */
  activation?: Activation;
}

export interface MaxPoolIndicesAttrs extends MaxPoolAttrs {
  /** ONNX storage_order: 0 row major (default), 1 column major. */
  storageOrder?: 0 | 1;
}

export interface AveragePoolAttrs extends WindowAttrs {
  /** ONNX count_include_pad: padded taps count in the divisor. Default false. */
  countIncludePad?: boolean;
  /** int8 only: quantization of x and y; defaults to scales 1 and zero points 0. */
  quant?: PoolQuant;
  /** Fused clamp, f32 only. */
  activation?: Activation;
}

export interface GlobalAveragePoolOptions {
  quant?: PoolQuant;
}

/** Taps per int8 average window: the i32 sums stay exact and f32(count) too. */
export const MAX_I8_AVG_TAPS = 1 << 23;

interface PoolExports {
  sqz_f32_maxpool2d(
    x: number,
    n: number,
    h: number,
    w: number,
    c: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    dh: number,
    dw: number,
    padTop: number,
    padLeft: number,
    outH: number,
    outW: number,
    y: number,
    outMin: number,
    outMax: number,
  ): void;
  sqz_f32_avgpool2d(
    x: number,
    n: number,
    h: number,
    w: number,
    c: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    dh: number,
    dw: number,
    padTop: number,
    padLeft: number,
    padBottom: number,
    padRight: number,
    outH: number,
    outW: number,
    countIncludePad: number,
    y: number,
    outMin: number,
    outMax: number,
  ): void;
  sqz_f32_global_maxpool(x: number, n: number, hw: number, c: number, y: number): void;
  sqz_f32_global_avgpool(x: number, n: number, hw: number, c: number, y: number): void;
  sqz_f32_maxpool2d_indices(
    x: number,
    n: number,
    h: number,
    w: number,
    c: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    dh: number,
    dw: number,
    padTop: number,
    padLeft: number,
    outH: number,
    outW: number,
    indices: number,
  ): void;
  sqz_i8_maxpool2d(
    x: number,
    signed: number,
    n: number,
    h: number,
    w: number,
    c: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    dh: number,
    dw: number,
    padTop: number,
    padLeft: number,
    outH: number,
    outW: number,
    y: number,
  ): void;
  sqz_i8_avgpool2d(
    x: number,
    signed: number,
    n: number,
    h: number,
    w: number,
    c: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    dh: number,
    dw: number,
    padTop: number,
    padLeft: number,
    padBottom: number,
    padRight: number,
    outH: number,
    outW: number,
    countIncludePad: number,
    xZero: number,
    xScale: number,
    yScale: number,
    yZero: number,
    qmin: number,
    qmax: number,
    y: number,
  ): void;
  sqz_i8_global_maxpool(
    x: number,
    signed: number,
    n: number,
    hw: number,
    c: number,
    y: number,
  ): void;
  sqz_i8_global_avgpool(
    x: number,
    signed: number,
    n: number,
    hw: number,
    c: number,
    xZero: number,
    xScale: number,
    yScale: number,
    yZero: number,
    qmin: number,
    qmax: number,
    y: number,
  ): void;
  sqz_i8_maxpool2d_indices(
    x: number,
    signed: number,
    n: number,
    h: number,
    w: number,
    c: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    dh: number,
    dw: number,
    padTop: number,
    padLeft: number,
    outH: number,
    outW: number,
    indices: number,
  ): void;
}

type Kind = "f32" | "u8" | "i8";

function kindOf(x: PoolTensor): Kind {
  if (x instanceof Float32Array) return "f32";
  if (x instanceof Uint8Array) return "u8";
  if (x instanceof Int8Array) return "i8";
  throw new ShapeError(
    `pooling takes a Float32Array, Uint8Array or Int8Array, got ${
      (x as object)?.constructor?.name ?? typeof x
    }`,
  );
}

/** Checks the input tensor; returns its element kind and dims. */
function checkInput(x: PoolTensor, dims: Dims4): { kind: Kind; es: number } {
  const kind = kindOf(x);
  const es = kind === "f32" ? 4 : 1;
  if (!Array.isArray(dims) || dims.length !== 4) {
    throw new ShapeError(`input dims must be NHWC (4 values), got [${dims}]`);
  }
  const len = checkTensorSize("input", dims, es);
  if (x.length !== len) {
    throw new ShapeError(`input holds ${x.length} elements, NHWC [${dims.join(", ")}] is ${len}`);
  }
  return { kind, es };
}

/** Window geometry for the kernels; the padded extent bounds every i32 the kernels form. */
function geometry(dims: Dims4, attrs: WindowAttrs, es: number): WindowGeometry {
  const g = windowGeometry(dims[1], dims[2], attrs);
  const ph = g.inH + g.padTop + g.padBottom, pw = g.inW + g.padLeft + g.padRight;
  if (ph > MAX_DIM || pw > MAX_DIM) {
    throw new ShapeError(`padded input ${ph}×${pw} exceeds the limit of ${MAX_DIM}`);
  }
  checkTensorSize("output", [dims[0], g.outH, g.outW, dims[3]], es);
  return g;
}

function checkQuant(q: PoolQuant, kind: Kind): void {
  const [lo, hi] = kind === "i8" ? [-128, 127] : [0, 255];
  for (const [name, v] of [["xScale", q.xScale], ["yScale", q.yScale]] as const) {
    const f = Math.fround(v);
    if (typeof v !== "number" || !(f > 0) || !Number.isFinite(f)) {
      throw new ArgumentError(`${name} must be a positive finite f32, got ${v}`);
    }
  }
  if (!Number.isFinite(Math.fround(Math.fround(q.xScale) / Math.fround(q.yScale)))) {
    throw new ArgumentError(`xScale / yScale = ${q.xScale / q.yScale} overflows f32`);
  }
  for (const [name, v] of [["xZero", q.xZero], ["yZero", q.yZero]] as const) {
    if (!Number.isInteger(v) || v < lo || v > hi) {
      throw new ArgumentError(`${name} must be an integer in [${lo}, ${hi}], got ${v}`);
    }
  }
}

/** Fused clamp: f32 only. */
function clampRange(kind: Kind, act: Activation | undefined): [number, number] {
  if (act && kind !== "f32") {
    throw new ArgumentError("a fused activation applies to f32 pooling only");
  }
  return activationRange(act);
}

/** Uploads x, allocates the output (and optionally an i32 buffer), runs, copies out, frees. */
function run<T extends PoolTensor>(
  mod: KernelModule,
  x: T,
  outLen: number,
  body: (px: number, py: number, pi: number) => void,
  indices = false,
  at?: Resident,
): { data: T; idx?: Int32Array } {
  const heap = mod.heap;
  const es = x.BYTES_PER_ELEMENT;
  if (at) {
    // Resident: x and y are already in Wasm memory (the executor's arena); nothing is copied.
    heap.check("input", at.x, x.length * es);
    heap.check("output", at.y, outLen * es);
    body(at.x, at.y, 0);
    return { data: x.subarray(0, 0) as T };
  }
  let px = 0, py = 0, pi = 0;
  try {
    px = mod.upload(x);
    py = heap.alloc(outLen * es);
    if (indices) pi = heap.alloc(outLen * 4);
    body(px, py, pi);
    const data = (x instanceof Float32Array
      ? mod.f32(py, outLen)
      : x instanceof Int8Array
      ? mod.i8(py, outLen)
      : mod.u8(py, outLen)).slice() as T;
    return { data, idx: indices ? mod.i32(pi, outLen).slice() : undefined };
  } finally {
    if (px) heap.free(px);
    if (py) heap.free(py);
    if (pi) heap.free(pi);
  }
}

/** A pool's taps, weighed against the threshold for splitting it over threads. */
function work(dims: Dims4, g: WindowGeometry): number {
  return 4 * dims[0] * g.outH * g.outW * dims[3] * g.kh * g.kw;
}

function ex(mod: KernelModule): PoolExports {
  return mod.exports as unknown as PoolExports;
}

/** MaxPool over NHWC x ([N, H, W, C]); int8 values pool raw (quantization unchanged). */
export function maxPool2d<T extends PoolTensor>(
  mod: KernelModule,
  x: T,
  dims: Dims4,
  attrs: MaxPoolAttrs,
  at?: Resident,
): PoolResult<T> {
  const { kind, es } = checkInput(x, dims);
  const g = geometry(dims, attrs, es);
  const [lo, hi] = clampRange(kind, attrs.activation);
  const [n, , w, c] = dims;
  const { data } = run(
    mod,
    x,
    n * g.outH * g.outW * c,
    (px, py) =>
      mod.parallel(
        windowShares(mod, dims, g, es, es, work(dims, g)).map((s): KernelCall => {
          const geo = [
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
          ];
          const x = px + s.xOffset, y = py + s.yOffset;
          return kind === "f32"
            ? { fn: "sqz_f32_maxpool2d", args: [x, ...geo, y, lo, hi] }
            : { fn: "sqz_i8_maxpool2d", args: [x, kind === "i8" ? 1 : 0, ...geo, y] };
        }),
      ),
    false,
    at,
  );
  return { data, dims: [n, g.outH, g.outW, c] };
}

/**
 * MaxPool with ONNX's second output: `indices` (NHWC like the values) holds, per element, the
 * flattened NCHW index of the input element the maximum came from, ((n·C + c)·H + y)·W + x
 * (storageOrder 0) or (n·C + c)·H·W + x·H + y (storageOrder 1); −1 for a window of padding only.
 */
export function maxPool2dWithIndices<T extends PoolTensor>(
  mod: KernelModule,
  x: T,
  dims: Dims4,
  attrs: MaxPoolIndicesAttrs,
): PoolResult<T> & { indices: BigInt64Array } {
  const { kind, es } = checkInput(x, dims);
  const g = geometry(dims, attrs, es);
  checkTensorSize("indices", [dims[0], g.outH, g.outW, dims[3]], 4);
  const [lo, hi] = clampRange(kind, attrs.activation);
  const order = attrs.storageOrder ?? 0;
  if (order !== 0 && order !== 1) {
    throw new ArgumentError(`storageOrder must be 0 or 1, got ${order}`);
  }
  const [n, h, w, c] = dims;
  const e = ex(mod);
  const args = [
    n,
    h,
    w,
    c,
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
  ] as const;
  const { data, idx } = run(mod, x, n * g.outH * g.outW * c, (px, py, pi) => {
    if (kind === "f32") {
      e.sqz_f32_maxpool2d(px, ...args, py, lo, hi);
      e.sqz_f32_maxpool2d_indices(px, ...args, pi);
    } else {
      const signed = kind === "i8" ? 1 : 0;
      e.sqz_i8_maxpool2d(px, signed, ...args, py);
      e.sqz_i8_maxpool2d_indices(px, signed, ...args, pi);
    }
  }, true);
  const spatial = idx!;
  const indices = new BigInt64Array(spatial.length);
  const pixels = n * g.outH * g.outW;
  for (let p = 0, i = 0; p < pixels; p++) {
    const b = Math.floor(p / (g.outH * g.outW));
    for (let ch = 0; ch < c; ch++, i++) {
      const pos = spatial[i];
      if (pos < 0) {
        indices[i] = -1n;
        continue;
      }
      const iy = Math.floor(pos / w), ix = pos % w;
      const inPlane = order === 0 ? iy * w + ix : ix * h + iy;
      indices[i] = BigInt((b * c + ch) * h * w + inPlane);
    }
  }
  return { data, dims: [n, g.outH, g.outW, c], indices };
}

/** AveragePool over NHWC x; int8 follows QLinearAveragePool (see the file header). */
export function averagePool2d<T extends PoolTensor>(
  mod: KernelModule,
  x: T,
  dims: Dims4,
  attrs: AveragePoolAttrs,
  at?: Resident,
): PoolResult<T> {
  const { kind, es } = checkInput(x, dims);
  const g = geometry(dims, attrs, es);
  const [lo, hi] = clampRange(kind, attrs.activation);
  const q = checkAvgQuant(kind, attrs.quant, g.kh * g.kw);
  const cip = attrs.countIncludePad ? 1 : 0;
  const [n, , w, c] = dims;
  const { data } = run(
    mod,
    x,
    n * g.outH * g.outW * c,
    (px, py) =>
      mod.parallel(
        windowShares(mod, dims, g, es, es, work(dims, g)).map((s): KernelCall => {
          const geo = [
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
            g.padBottom,
            g.padRight,
            s.outH,
            g.outW,
            cip,
          ];
          const x = px + s.xOffset, y = py + s.yOffset;
          if (kind === "f32") return { fn: "sqz_f32_avgpool2d", args: [x, ...geo, y, lo, hi] };
          const [qmin, qmax] = kind === "i8" ? [-128, 127] : [0, 255];
          return {
            fn: "sqz_i8_avgpool2d",
            args: [
              x,
              kind === "i8" ? 1 : 0,
              ...geo,
              q.xZero,
              q.xScale,
              q.yScale,
              q.yZero,
              qmin,
              qmax,
              y,
            ],
          };
        }),
      ),
    false,
    at,
  );
  return { data, dims: [n, g.outH, g.outW, c] };
}

function checkAvgQuant(kind: Kind, quant: PoolQuant | undefined, taps: number): PoolQuant {
  if (kind === "f32") {
    if (quant) throw new ArgumentError("quant applies to int8 average pooling only");
    return { xScale: 1, xZero: 0, yScale: 1, yZero: 0 };
  }
  if (taps > MAX_I8_AVG_TAPS) {
    throw new ShapeError(`int8 average window of ${taps} taps exceeds ${MAX_I8_AVG_TAPS}`);
  }
  const q = quant ?? { xScale: 1, xZero: 0, yScale: 1, yZero: 0 };
  checkQuant(q, kind);
  return q;
}

/** GlobalAveragePool: [N, H, W, C] → [N, 1, 1, C]; int8 as QLinearGlobalAveragePool. */
export function globalAveragePool<T extends PoolTensor>(
  mod: KernelModule,
  x: T,
  dims: Dims4,
  opts: GlobalAveragePoolOptions = {},
  at?: Resident,
): PoolResult<T> {
  const { kind } = checkInput(x, dims);
  const [n, h, w, c] = dims;
  const q = checkAvgQuant(kind, opts.quant, h * w);
  const e = ex(mod);
  const { data } = run(
    mod,
    x,
    n * c,
    (px, py) => {
      if (kind === "f32") e.sqz_f32_global_avgpool(px, n, h * w, c, py);
      else {
        const [qmin, qmax] = kind === "i8" ? [-128, 127] : [0, 255];
        e.sqz_i8_global_avgpool(
          px,
          kind === "i8" ? 1 : 0,
          n,
          h * w,
          c,
          q.xZero,
          q.xScale,
          q.yScale,
          q.yZero,
          qmin,
          qmax,
          py,
        );
      }
    },
    false,
    at,
  );
  return { data, dims: [n, 1, 1, c] };
}

/** GlobalMaxPool: [N, H, W, C] → [N, 1, 1, C]; int8 values pool raw. */
export function globalMaxPool<T extends PoolTensor>(
  mod: KernelModule,
  x: T,
  dims: Dims4,
  at?: Resident,
): PoolResult<T> {
  const { kind } = checkInput(x, dims);
  const [n, h, w, c] = dims;
  const e = ex(mod);
  const { data } = run(
    mod,
    x,
    n * c,
    (px, py) => {
      if (kind === "f32") e.sqz_f32_global_maxpool(px, n, h * w, c, py);
      else e.sqz_i8_global_maxpool(px, kind === "i8" ? 1 : 0, n, h * w, c, py);
    },
    false,
    at,
  );
  return { data, dims: [n, 1, 1, c] };
}
