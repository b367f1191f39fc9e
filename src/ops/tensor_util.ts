// Small tensor helpers every op family uses: allocation with size checks, typed-array
// constructors per dtype, reading integer inputs (axes, shapes, pads), and strides.
import {
  ELEMENT_BYTES,
  elementCount,
  type Tensor,
  type TensorData,
  type TensorType,
} from "../graph/tensor.ts";
import { ArgumentError, ShapeError } from "../errors.ts";

/** Largest tensor an op may allocate (what a wasm32 arena can address). */
export const MAX_TENSOR_BYTES = 2 ** 31 - 1;

type Ctor = new (n: number) => TensorData;
const CTORS: Record<TensorType, Ctor> = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array, // raw IEEE half bits
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
  int4: Int8Array, // one value per byte, unpacked
  uint4: Uint8Array,
};

export function arrayCtor(type: TensorType): Ctor {
  return CTORS[type];
}

/** Checks dims (non-negative safe integers) and size before anything is allocated. */
export function checkDims(dims: readonly number[], type: TensorType, what = "tensor"): void {
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new ShapeError(`${what} would have an invalid dimension ${d} in [${dims}]`);
    }
  }
  const bytes = elementCount(dims as number[]) * ELEMENT_BYTES[type];
  if (!(bytes <= MAX_TENSOR_BYTES)) {
    throw new ShapeError(`${what} of shape [${dims}] (${type}) would take ${bytes} bytes`);
  }
}

export function allocTensor(type: TensorType, dims: readonly number[]): Tensor {
  checkDims(dims, type);
  return { type, dims: [...dims], data: new CTORS[type](elementCount(dims as number[])) };
}

/** True for int64/uint64, whose data is a BigInt array. */
export const isBig = (t: TensorType): boolean => t === "int64" || t === "uint64";
export const isFloat = (t: TensorType): boolean =>
  t === "float32" || t === "float64" || t === "float16";

/** An integer tensor (axes, shape, pads, starts…) as plain numbers. */
export function toInts(t: Tensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, (x) => Number(x));
}

/** Row-major strides, in elements. */
export function stridesOf(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= dims[i];
  }
  return s;
}

/** Normalizes a possibly negative axis against rank r; throws naming the node if out of range. */
export function normAxis(axis: number, r: number, node: string): number {
  const a = axis < 0 ? axis + r : axis;
  if (!Number.isInteger(a) || a < 0 || a >= Math.max(r, 1)) {
    throw new ArgumentError(`node '${node}': axis ${axis} is out of range for rank ${r}`);
  }
  return a;
}

/** NumPy broadcast of concrete dims. */
export function broadcastDims(a: readonly number[], b: readonly number[], node: string): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1, y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) {
      throw new ShapeError(`node '${node}': shapes [${a}] and [${b}] do not broadcast`);
    }
    out.push(x === 1 ? y : x);
  }
  return out;
}

/**
 * Strides of `dims` broadcast to `outDims` (right-aligned; 0 where the dim is broadcast), so the
 * element of an output index is Σ idx[d]·strides[d].
 */
export function broadcastStrides(dims: readonly number[], outDims: readonly number[]): number[] {
  const own = stridesOf(dims);
  const off = outDims.length - dims.length;
  return outDims.map((_, d) => {
    const e = d - off;
    return e < 0 || dims[e] === 1 ? 0 : own[e];
  });
}
