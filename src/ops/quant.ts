// Linear quantization: QuantizeLinear, DequantizeLinear (per tensor, per axis, blocked) and
// DynamicQuantizeLinear, with the ONNX reference's arithmetic: x / scale in the promoted float
// type (f32 for f32 inputs), round half to even, then zero point and saturation.
import type { Node } from "../graph/ir.ts";
import { elementCount, ONNX_TYPES, type Tensor, type TensorType } from "../graph/tensor.ts";
import { ModelError, ShapeError, UnsupportedError } from "../errors.ts";
import { attrInt } from "./attrs.ts";
import { checkDims, normAxis } from "./tensor_util.ts";
import type { OpContext, OpImpl } from "./types.ts";

/** Round half to even (numpy.rint) of a finite number; NaN and ±inf pass through. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x); // half up
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** float16 bits → f32 values. */
export function halfToFloat(bits: Uint16Array): Float32Array {
  return new Float32Array(new Float16Array(bits.buffer, bits.byteOffset, bits.length));
}

/** Numbers → float16 bits (round to nearest even), into `bits`. */
export function storeHalf(src: ArrayLike<number>, bits: Uint16Array): void {
  new Float16Array(bits.buffer, bits.byteOffset, bits.length).set(src);
}

const where = (node: Node) => `node '${node.name}' (${node.op})`;

/** Saturation range of each integer quantized type. */
const RANGES: Partial<Record<TensorType, [number, number]>> = {
  uint8: [0, 255],
  int8: [-128, 127],
  uint16: [0, 65535],
  int16: [-32768, 32767],
  uint4: [0, 15],
  int4: [-8, 7],
};

function need(inputs: readonly (Tensor | undefined)[], i: number, node: Node, what: string) {
  const t = inputs[i];
  if (!t) throw new ModelError(`${where(node)}: missing input ${i} (${what})`);
  return t;
}

function alloc(ctx: OpContext, type: TensorType, dims: number[]): Tensor {
  checkDims(dims, type, `${where(ctx.node)} output`);
  return ctx.alloc(0, type, dims);
}

/** A float tensor's values as numbers (f16 widened), or undefined for other types. */
function floatValues(t: Tensor): Float32Array | Float64Array | undefined {
  if (t.type === "float16") return halfToFloat(t.data as Uint16Array);
  if (t.type === "float32" || t.type === "float64") return t.data as Float32Array;
  return undefined;
}

/**
 * How a scale (and its zero point) maps onto x: element (o, a, j) of x seen as [outer, dim, inner]
 * around `axis` uses parameter (o·pOuter + ⌊a / block⌋)·pInner·… — folded into a row start and a
 * step along j (see paramIndex).
 */
interface Layout {
  outer: number;
  dim: number;
  inner: number;
  mode: "tensor" | "axis" | "block";
  block: number;
  /** Blocks along the axis (blocked mode). */
  blocks: number;
}

function layout(x: Tensor, scale: Tensor, ctx: OpContext): Layout {
  const node = ctx.node, r = x.dims.length;
  const block = ctx.opset >= 21 ? attrInt(node, "block_size", 0) : 0;
  if (!Number.isSafeInteger(block) || block < 0) {
    throw new ModelError(`${where(node)}: block_size must be ≥ 0, got ${block}`);
  }
  const n = scale.data.length;
  const base = { outer: 1, dim: 1, inner: elementCount(x.dims), block: 1, blocks: 1 };
  // One element is per tensor whatever its rank, as in the reference.
  if (n === 1) return { ...base, mode: "tensor" };
  const axis = normAxis(attrInt(node, "axis", 1), r, node.name);
  const outer = elementCount(x.dims.slice(0, axis)), dim = x.dims[axis];
  const inner = elementCount(x.dims.slice(axis + 1));
  if (block === 0) {
    if (scale.dims.length !== 1 || n !== dim) {
      throw new ShapeError(
        `${
          where(node)
        }: scale [${scale.dims}] must be a scalar or [${dim}] (axis ${axis} of [${x.dims}])`,
      );
    }
    return { outer, dim, inner, mode: "axis", block: 1, blocks: dim };
  }
  const blocks = Math.ceil(dim / block);
  const ok = scale.dims.length === r &&
    scale.dims.every((d, i) => i === axis ? d === blocks : d === x.dims[i]);
  if (!ok) {
    throw new ShapeError(
      `${
        where(node)
      }: blocked scale [${scale.dims}] does not fit x [${x.dims}] with block_size ${block} on axis ${axis}`,
    );
  }
  return { outer, dim, inner, mode: "block", block, blocks };
}

/** Index of the parameter for the start of row (o, a) and its step along the inner index. */
function rowParam(l: Layout, o: number, a: number): [number, number] {
  if (l.mode === "tensor") return [0, 0];
  if (l.mode === "axis") return [a, 0];
  return [(o * l.blocks + Math.floor(a / l.block)) * l.inner, 1];
}

function checkZeroShape(z: Tensor | undefined, scale: Tensor, node: Node, what: string): void {
  if (!z) return;
  const same = z.data.length === scale.data.length &&
    (z.data.length === 1 || z.dims.join() === scale.dims.join());
  if (!same) {
    throw new ShapeError(`${where(node)}: ${what} [${z.dims}] and scale [${scale.dims}] differ`);
  }
}

/** Rounds a quotient to the float type the reference divides in. */
function rounder(code: TensorType): (v: number) => number {
  if (code === "float32") return Math.fround;
  if (code === "float16") return Math.f16round;
  return (v) => v;
}

const FLOAT_CODES: Record<number, TensorType> = { 1: "float32", 10: "float16", 11: "float64" };

const quantizeLinear: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const x = need(inputs, 0, node, "x"), scale = need(inputs, 1, node, "y_scale");
  const z = inputs[2];
  const sv = floatValues(scale);
  if (!sv) throw new ShapeError(`${where(node)}: y_scale has type ${scale.type}`);
  const xv = floatValues(x) ?? (x.type === "int32" ? x.data as Int32Array : undefined);
  if (!xv) throw new ShapeError(`${where(node)}: x has type ${x.type}`);
  if (ctx.opset < 21 && scale.dims.length > 1) {
    throw new ShapeError(`${where(node)}: y_scale must be a scalar or 1-D before opset 21`);
  }
  // Output type: the zero point's, else output_dtype (opset 21), else uint8.
  const code = ctx.opset >= 21 ? attrInt(node, "output_dtype", 0) : 0;
  let outType: TensorType = "uint8";
  if (code !== 0) {
    const t = ONNX_TYPES[code];
    if (!t || !RANGES[t]) {
      throw new UnsupportedError(`${where(node)}: output_dtype ${code} is not supported`);
    }
    outType = t;
  }
  if (z) {
    if (code !== 0 && z.type !== outType) {
      throw new ModelError(`${where(node)}: output_dtype ${outType} but zero point is ${z.type}`);
    }
    outType = z.type;
  }
  const range = RANGES[outType];
  if (!range) throw new UnsupportedError(`${where(node)}: cannot quantize to ${outType}`);
  checkZeroShape(z, scale, node, "y_zero_point");
  const l = layout(x, scale, ctx);
  // The reference divides in `precision` (opset 23) or numpy's promotion of x and scale.
  const prec = ctx.opset >= 23 ? attrInt(node, "precision", 0) : 0;
  let divType: TensorType;
  if (prec !== 0) {
    const t = FLOAT_CODES[prec];
    if (!t) throw new UnsupportedError(`${where(node)}: precision ${prec} is not supported`);
    divType = t;
  } else if (x.type === "int32" || x.type === "float64" || scale.type === "float64") {
    divType = "float64";
  } else {
    divType = x.type === "float16" && scale.type === "float16" ? "float16" : "float32";
  }
  const div = rounder(divType);
  // With `precision`, both operands are cast to it first.
  const xs = prec === 0 ? xv : Float64Array.from(xv, div);
  const ss = prec === 0 ? sv : Float64Array.from(sv, div);
  const zv = z?.data as Uint8Array | undefined;
  const [qmin, qmax] = range;
  const y = alloc(ctx, outType, x.dims);
  const out = y.data as Uint8Array;
  let i = 0;
  for (let o = 0; o < l.outer; o++) {
    for (let a = 0; a < l.dim; a++) {
      const [p0, step] = rowParam(l, o, a);
      if (step === 0) {
        const s = ss[p0], zp = zv ? zv[p0] : 0;
        for (let j = 0; j < l.inner; j++, i++) {
          const q = roundHalfEven(div(xs[i] / s)) + zp;
          out[i] = q < qmin ? qmin : q > qmax ? qmax : q;
        }
      } else {
        for (let j = 0; j < l.inner; j++, i++) {
          const q = roundHalfEven(div(xs[i] / ss[p0 + j])) + (zv ? zv[p0 + j] : 0);
          out[i] = q < qmin ? qmin : q > qmax ? qmax : q;
        }
      }
    }
  }
  return [y];
};

const DEQUANT_INPUTS: readonly TensorType[] = [
  "int8",
  "uint8",
  "int16",
  "uint16",
  "int32",
  "int4",
  "uint4",
];

const dequantizeLinear: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const x = need(inputs, 0, node, "x"), scale = need(inputs, 1, node, "x_scale");
  const z = inputs[2];
  if (!DEQUANT_INPUTS.includes(x.type)) {
    throw new ShapeError(`${where(node)}: cannot dequantize ${x.type}`);
  }
  const sv = floatValues(scale);
  if (!sv) throw new ShapeError(`${where(node)}: x_scale has type ${scale.type}`);
  if (ctx.opset < 21 && scale.dims.length > 1) {
    throw new ShapeError(`${where(node)}: x_scale must be a scalar or 1-D before opset 21`);
  }
  if (z && z.type !== x.type) {
    throw new ShapeError(`${where(node)}: x_zero_point is ${z.type}, x is ${x.type}`);
  }
  checkZeroShape(z, scale, node, "x_zero_point");
  let outType = scale.type;
  const code = ctx.opset >= 23 ? attrInt(node, "output_dtype", 0) : 0;
  if (code !== 0) {
    const t = FLOAT_CODES[code];
    if (!t) throw new UnsupportedError(`${where(node)}: output_dtype ${code} is not supported`);
    outType = t;
  }
  const l = layout(x, scale, ctx);
  const xv = x.data as Int32Array, zv = z?.data as Int32Array | undefined;
  // The reference widens x to f32 (exact below 32 bits) and subtracts the zero point, which is
  // exact in f32 except for int32 where numpy promotes to f64; the product is then in f32 unless
  // that promotion or an f64 scale made it f64.
  const wide = scale.type === "float64" || (x.type === "int32" && z !== undefined);
  const f = wide ? (v: number) => v : Math.fround;
  const y = alloc(ctx, outType, x.dims);
  const out = outType === "float16" ? new Float32Array(y.data.length) : y.data as Float32Array;
  let i = 0;
  for (let o = 0; o < l.outer; o++) {
    for (let a = 0; a < l.dim; a++) {
      const [p0, step] = rowParam(l, o, a);
      for (let j = 0; j < l.inner; j++, i++) {
        const p = p0 + j * step;
        out[i] = f((Math.fround(xv[i]) - (zv ? zv[p] : 0)) * sv[p]);
      }
    }
  }
  if (outType === "float16") storeHalf(out, y.data as Uint16Array);
  return [y];
};

/**
 * DynamicQuantizeLinear's scale and zero point from the range [lo, hi] (which includes 0), in
 * the ONNX reference's f32 arithmetic; shared with the Wasm kernel op so both agree exactly.
 */
export function dynamicQuantParams(lo: number, hi: number): { scale: number; zeroPoint: number } {
  const f = Math.fround;
  const scale = hi === lo ? 1 : f(f(hi - lo) / 255);
  const zp0 = f(0 - f(lo / scale));
  // An infinite range makes zp0 NaN; stored as uint8 it is 0 (every output is 0 then anyway).
  const zp = roundHalfEven(Math.max(0, Math.min(255, zp0)));
  return { scale, zeroPoint: Number.isNaN(zp) ? 0 : zp };
}

const dynamicQuantizeLinear: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const x = need(inputs, 0, node, "x");
  if (x.type !== "float32") throw new ShapeError(`${where(node)}: x has type ${x.type}`);
  const xv = x.data as Float32Array, f = Math.fround;
  // The range always includes 0; NaNs are skipped.
  let lo = 0, hi = 0;
  for (let i = 0; i < xv.length; i++) {
    const v = xv[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const { scale, zeroPoint: zp } = dynamicQuantParams(lo, hi);
  const y = alloc(ctx, "uint8", x.dims);
  const out = y.data as Uint8Array;
  for (let i = 0; i < xv.length; i++) {
    const q = roundHalfEven(f(xv[i] / scale)) + zp;
    out[i] = q < 0 ? 0 : q > 255 ? 255 : q;
  }
  const ys = ctx.alloc(1, "float32", []), yz = ctx.alloc(2, "uint8", []);
  (ys.data as Float32Array)[0] = scale;
  (yz.data as Uint8Array)[0] = zp;
  return [y, ys, yz];
};

export const QUANT_OPS: Record<string, OpImpl> = {
  QuantizeLinear: quantizeLinear,
  DequantizeLinear: dequantizeLinear,
  DynamicQuantizeLinear: dynamicQuantizeLinear,
};
