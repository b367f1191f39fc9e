// Tensors as the engine and its callers see them: `{ type, dims, data }`, the shape of
// onnxruntime-web's Tensor. int64 data is a BigInt64Array, bool a Uint8Array of 0/1.
export type TensorType =
  | "float32"
  | "float64"
  | "float16"
  | "int8"
  | "uint8"
  | "int16"
  | "uint16"
  | "int32"
  | "uint32"
  | "int64"
  | "uint64"
  | "bool"
  | "int4"
  | "uint4";

export type TensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

export interface Tensor {
  type: TensorType;
  dims: number[];
  data: TensorData;
}

/** ONNX TensorProto.DataType code → tensor type (types the engine can hold). */
export const ONNX_TYPES: Record<number, TensorType> = {
  1: "float32",
  2: "uint8",
  3: "int8",
  4: "uint16",
  5: "int16",
  6: "int32",
  7: "int64",
  9: "bool",
  10: "float16",
  11: "float64",
  12: "uint32",
  13: "uint64",
  21: "uint4",
  22: "int4",
};

/** Bytes per element as stored in memory (4-bit types unpack to one byte each). */
export const ELEMENT_BYTES: Record<TensorType, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  int64: 8,
  uint64: 8,
  bool: 1,
  int4: 1,
  uint4: 1,
};

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Name of the typed-array class that holds each type's data (what `data` must be). */
export const ARRAY_CLASS: Record<TensorType, string> = {
  float32: "Float32Array",
  float64: "Float64Array",
  float16: "Uint16Array",
  int8: "Int8Array",
  uint8: "Uint8Array",
  int16: "Int16Array",
  uint16: "Uint16Array",
  int32: "Int32Array",
  uint32: "Uint32Array",
  int64: "BigInt64Array",
  uint64: "BigUint64Array",
  bool: "Uint8Array",
  int4: "Int8Array",
  uint4: "Uint8Array",
};
