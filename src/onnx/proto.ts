/**
 * ONNX protobuf codec: decode/encode ModelProto and TensorProto with protobufjs,
 * plus small builders used by tests and benchmarks to synthesize models.
 *
 * Decoded objects are plain JS objects (camelCase field names, as protobufjs
 * produces them): int64 -> number, enums -> number, bytes -> Uint8Array,
 * repeated fields always present as arrays, absent optional fields omitted.
 *
 * int64 caveat: values beyond +-2^53 lose precision when turned into numbers
 * (e.g. a Slice `ends` of INT64_MAX decodes as 9223372036854775807 ~= 2^63).
 * On encode, numbers >= 2^63 / <= -2^63 are clamped to INT64_MAX / INT64_MIN
 * so such sentinels survive a decode/encode round trip.
 */
import protobuf from "protobufjs";
import { ONNX_PROTO } from "./onnx_proto.ts";
import { ArgumentError, ShapeError, SqzError, UnsupportedError } from "../errors.ts";

// protobufjs picks Node's Buffer when it exists (it does under Deno), which
// makes decoded bytes fields and encoder output Buffers backed by a shared
// pool. We want plain Uint8Arrays, so switch it to its pure-Uint8Array mode.
// This is process-wide, but sqz is the only protobufjs user.
(protobuf.util as { Buffer: unknown }).Buffer = null;
protobuf.configure();

// ---------------------------------------------------------------------------
// Schema

const root = protobuf.parse(
  ONNX_PROTO,
  { keepCase: false },
).root;
// Resolve all type references up front so field.resolvedType is set.
root.resolveAll();

const ModelType = root.lookupType("onnx.ModelProto");
const TensorType = root.lookupType("onnx.TensorProto");

const TO_OBJECT: protobuf.IConversionOptions = {
  longs: Number,
  enums: Number,
  arrays: true,
  defaults: false,
};

// ---------------------------------------------------------------------------
// Enums

/** TensorProto.DataType (element types). */
export const DataType = {
  UNDEFINED: 0,
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  COMPLEX64: 14,
  COMPLEX128: 15,
  BFLOAT16: 16,
  FLOAT8E4M3FN: 17,
  FLOAT8E4M3FNUZ: 18,
  FLOAT8E5M2: 19,
  FLOAT8E5M2FNUZ: 20,
  UINT4: 21,
  INT4: 22,
  FLOAT4E2M1: 23,
  FLOAT8E8M0: 24,
} as const;
export type DataTypeName = keyof typeof DataType;

/** Reverse lookup for messages, e.g. dataTypeName(1) === "FLOAT". */
export function dataTypeName(code: number): string {
  for (const [k, v] of Object.entries(DataType)) if (v === code) return k;
  return `UNKNOWN(${code})`;
}

/** AttributeProto.AttributeType. */
export const AttributeType = {
  UNDEFINED: 0,
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
  SPARSE_TENSOR: 11,
  SPARSE_TENSORS: 12,
  TYPE_PROTO: 13,
  TYPE_PROTOS: 14,
} as const;

/** TensorProto.DataLocation. */
export const DataLocation = { DEFAULT: 0, EXTERNAL: 1 } as const;

// ---------------------------------------------------------------------------
// Decoded message shapes (protobufjs camelCase names)

export interface StringStringEntryProto {
  key?: string;
  value?: string;
}

export interface OperatorSetIdProto {
  domain?: string;
  version?: number;
}

export interface TensorSegment {
  begin?: number;
  end?: number;
}

export interface TensorProto {
  dims: number[];
  dataType?: number;
  segment?: TensorSegment;
  floatData: number[];
  int32Data: number[];
  stringData: Uint8Array[];
  int64Data: number[];
  name?: string;
  docString?: string;
  /** Little-endian element bytes. May be an unaligned view into the model buffer. */
  rawData?: Uint8Array;
  externalData: StringStringEntryProto[];
  dataLocation?: number;
  doubleData: number[];
  uint64Data: number[];
  metadataProps: StringStringEntryProto[];
}

export interface SparseTensorProto {
  values?: TensorProto;
  indices?: TensorProto;
  dims: number[];
}

export interface TensorShapeDimension {
  dimValue?: number;
  dimParam?: string;
  denotation?: string;
}

export interface TensorShapeProto {
  dim: TensorShapeDimension[];
}

export interface TypeProtoTensor {
  elemType?: number;
  shape?: TensorShapeProto;
}

export interface TypeProto {
  tensorType?: TypeProtoTensor;
  sequenceType?: { elemType?: TypeProto };
  mapType?: { keyType?: number; valueType?: TypeProto };
  optionalType?: { elemType?: TypeProto };
  sparseTensorType?: TypeProtoTensor;
  denotation?: string;
}

export interface ValueInfoProto {
  name?: string;
  type?: TypeProto;
  docString?: string;
  metadataProps: StringStringEntryProto[];
}

export interface AttributeProto {
  name?: string;
  refAttrName?: string;
  docString?: string;
  /** One of {@link AttributeType}. */
  type?: number;
  f?: number;
  i?: number;
  /** UTF-8 bytes. */
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  sparseTensor?: SparseTensorProto;
  tp?: TypeProto;
  floats: number[];
  ints: number[];
  strings: Uint8Array[];
  tensors: TensorProto[];
  graphs: GraphProto[];
  sparseTensors: SparseTensorProto[];
  typeProtos: TypeProto[];
}

export interface IntIntListEntryProto {
  key?: number;
  value: number[];
}

export interface SimpleShardedDimProto {
  dimValue?: number;
  dimParam?: string;
  numShards?: number;
}

export interface ShardedDimProto {
  axis?: number;
  simpleSharding: SimpleShardedDimProto[];
}

export interface ShardingSpecProto {
  tensorName?: string;
  device: number[];
  indexToDeviceGroupMap: IntIntListEntryProto[];
  shardedDim: ShardedDimProto[];
}

export interface NodeDeviceConfigurationProto {
  configurationId?: string;
  shardingSpec: ShardingSpecProto[];
  pipelineStage?: number;
}

export interface NodeProto {
  input: string[];
  output: string[];
  name?: string;
  opType?: string;
  domain?: string;
  overload?: string;
  attribute: AttributeProto[];
  docString?: string;
  metadataProps: StringStringEntryProto[];
  deviceConfigurations: NodeDeviceConfigurationProto[];
}

export interface TensorAnnotation {
  tensorName?: string;
  quantParameterTensorNames: StringStringEntryProto[];
}

export interface GraphProto {
  node: NodeProto[];
  name?: string;
  initializer: TensorProto[];
  sparseInitializer: SparseTensorProto[];
  docString?: string;
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  valueInfo: ValueInfoProto[];
  quantizationAnnotation: TensorAnnotation[];
  metadataProps: StringStringEntryProto[];
}

export interface TrainingInfoProto {
  initialization?: GraphProto;
  algorithm?: GraphProto;
  initializationBinding: StringStringEntryProto[];
  updateBinding: StringStringEntryProto[];
}

export interface FunctionProto {
  name?: string;
  input: string[];
  output: string[];
  attribute: string[];
  attributeProto: AttributeProto[];
  node: NodeProto[];
  docString?: string;
  opsetImport: OperatorSetIdProto[];
  domain?: string;
  overload?: string;
  valueInfo: ValueInfoProto[];
  metadataProps: StringStringEntryProto[];
}

export interface DeviceConfigurationProto {
  name?: string;
  numDevices?: number;
  device: string[];
}

export interface ModelProto {
  irVersion?: number;
  opsetImport: OperatorSetIdProto[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  docString?: string;
  graph?: GraphProto;
  metadataProps: StringStringEntryProto[];
  trainingInfo: TrainingInfoProto[];
  functions: FunctionProto[];
  configuration: DeviceConfigurationProto[];
}

/** A decoded .onnx file. */
export type OnnxModel = ModelProto;

/**
 * Input accepted by the encoders: like the decoded shapes, but repeated
 * fields may be omitted and int64 fields may also be bigint.
 */
export type DeepPartial<T> = T extends Uint8Array ? T
  : T extends number ? number | bigint
  : T extends (infer E)[] ? DeepPartial<E>[]
  : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> }
  : T;

// ---------------------------------------------------------------------------
// Decode / encode

/** Thrown when bytes are not a valid serialized ONNX message (code "invalid_onnx"). */
export class OnnxDecodeError extends SqzError {
  constructor(message: string, options?: ErrorOptions) {
    super("invalid_onnx", message);
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

function decodeWith(type: protobuf.Type, bytes: Uint8Array, what: string): unknown {
  if (!(bytes instanceof Uint8Array)) {
    throw new OnnxDecodeError(`${what}: expected Uint8Array, got ${typeof bytes}`);
  }
  try {
    return type.toObject(type.decode(bytes), TO_OBJECT);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new OnnxDecodeError(`${what}: malformed protobuf (${bytes.length} bytes): ${msg}`, {
      cause: e,
    });
  }
}

/**
 * Decodes a serialized ModelProto (.onnx file). Throws OnnxDecodeError on
 * malformed input, and also when the message parses but lacks ir_version or
 * graph: protobuf happily parses many random byte strings as unknown fields.
 */
export function decodeModel(bytes: Uint8Array): OnnxModel {
  const m = decodeWith(ModelType, bytes, "decodeModel") as ModelProto;
  if (m.irVersion === undefined || m.graph === undefined) {
    throw new OnnxDecodeError(
      `decodeModel: not an ONNX model (${bytes.length} bytes): missing ${
        m.irVersion === undefined ? "ir_version" : "graph"
      }`,
    );
  }
  return m;
}

/**
 * Decodes a serialized TensorProto (e.g. conformance test_data_set_N/*.pb).
 * Throws OnnxDecodeError on malformed input or a missing data_type.
 */
export function decodeTensor(bytes: Uint8Array): TensorProto {
  const t = decodeWith(TensorType, bytes, "decodeTensor") as TensorProto;
  if (!t.dataType) {
    throw new OnnxDecodeError(
      `decodeTensor: not a TensorProto (${bytes.length} bytes): no data_type`,
    );
  }
  return t;
}

const INT64_MAX = 9223372036854775807n;
const INT64_MIN = -9223372036854775808n;
const UINT64_MAX = 18446744073709551615n;
const TWO_63 = 2 ** 63;

/** protobufjs' LongBits-compatible 64-bit value. */
interface Int64Bits {
  low: number;
  high: number;
  unsigned: boolean;
}

/**
 * protobufjs runs without long.js here, and then both its number path
 * (lossy split that wraps 2^63 to INT64_MIN) and its fromObject() (parses
 * strings/objects back to numbers) are inexact for large int64 values. So we
 * convert every int64/uint64 field (found by walking the reflection types) to
 * exact {low, high} bits and hand the plain object straight to encode().
 */
function normalizeInt64(
  type: protobuf.Type,
  obj: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...obj };
  for (const field of type.fieldsArray) {
    const v = out[field.name];
    if (v === undefined || v === null) continue;
    if (field.resolvedType instanceof protobuf.Type) {
      const sub = field.resolvedType;
      out[field.name] = field.repeated
        ? (v as Record<string, unknown>[]).map((x) => normalizeInt64(sub, x))
        : normalizeInt64(sub, v as Record<string, unknown>);
    } else if (field.type === "int64" || field.type === "uint64") {
      const unsigned = field.type === "uint64";
      const conv = (x: unknown) => int64Bits(x, unsigned, field.name);
      out[field.name] = field.repeated ? Array.from(v as ArrayLike<unknown>, conv) : conv(v);
    }
  }
  return out;
}

function int64Bits(x: unknown, unsigned: boolean, field: string): Int64Bits {
  let b: bigint;
  if (typeof x === "bigint") b = x;
  else if (typeof x === "number") {
    if (Number.isNaN(x)) throw new ArgumentError(`int64 field '${field}' is NaN`);
    // Clamp: 2^63 is what INT64_MAX decodes to as a number.
    if (x >= TWO_63 * (unsigned ? 2 : 1)) b = unsigned ? UINT64_MAX : INT64_MAX;
    else if (x <= -TWO_63) b = INT64_MIN;
    else b = BigInt(Math.trunc(x));
  } else if (typeof x === "string") b = BigInt(x);
  else throw new ArgumentError(`int64 field '${field}' has non-integer value ${String(x)}`);
  const lo = unsigned ? 0n : INT64_MIN;
  const hi = unsigned ? UINT64_MAX : INT64_MAX;
  if (b < lo || b > hi) throw new ArgumentError(`int64 field '${field}' out of range: ${b}`);
  const u = BigInt.asUintN(64, b);
  return { low: Number(u & 0xffffffffn) | 0, high: Number(u >> 32n) | 0, unsigned };
}

function encodeWith(type: protobuf.Type, obj: object): Uint8Array {
  const plain = normalizeInt64(type, obj as Record<string, unknown>);
  const problem = type.verify(plain);
  if (problem !== null) throw new ArgumentError(`cannot encode ${type.name}: ${problem}`);
  return type.encode(plain).finish();
}

/** Serializes a ModelProto to .onnx bytes. */
export function encodeModel(model: DeepPartial<ModelProto>): Uint8Array {
  return encodeWith(ModelType, model);
}

/** Serializes a TensorProto (the format of conformance .pb files). */
export function encodeTensor(tensor: DeepPartial<TensorProto>): Uint8Array {
  return encodeWith(TensorType, tensor);
}

// ---------------------------------------------------------------------------
// Tensor data helpers

/** Numeric data accepted by {@link tensorFromArray}. */
export type TensorArrayData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | readonly number[]
  | readonly bigint[];

/** Bytes per element for fixed-width types; 0.5 for 4-bit types. */
function elementBytes(dataType: number): number {
  switch (dataType) {
    case DataType.FLOAT:
    case DataType.INT32:
    case DataType.UINT32:
      return 4;
    case DataType.DOUBLE:
    case DataType.INT64:
    case DataType.UINT64:
    case DataType.COMPLEX64:
      return 8;
    case DataType.COMPLEX128:
      return 16;
    case DataType.INT16:
    case DataType.UINT16:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
      return 2;
    case DataType.INT8:
    case DataType.UINT8:
    case DataType.BOOL:
    case DataType.FLOAT8E4M3FN:
    case DataType.FLOAT8E4M3FNUZ:
    case DataType.FLOAT8E5M2:
    case DataType.FLOAT8E5M2FNUZ:
    case DataType.FLOAT8E8M0:
      return 1;
    case DataType.UINT4:
    case DataType.INT4:
    case DataType.FLOAT4E2M1:
      return 0.5;
    default:
      throw new UnsupportedError(`unsupported tensor data type ${dataTypeName(dataType)}`);
  }
}

function toNum(v: number | bigint): number {
  return typeof v === "bigint" ? Number(v) : v;
}

/** Number -> bigint for 64-bit raw data, clamping so 2^63 (= INT64_MAX as a number) stays positive. */
function toBig(v: number | bigint, unsigned: boolean): bigint {
  if (typeof v === "bigint") return v;
  if (v >= TWO_63 * (unsigned ? 2 : 1)) return unsigned ? UINT64_MAX : INT64_MAX;
  if (v <= -TWO_63) return INT64_MIN;
  return BigInt(Math.trunc(v));
}

/**
 * Serializes elements to little-endian raw_data for `dataType`. Values are
 * converted per the target type (so Int32Array data can fill an INT64 tensor).
 * FLOAT16, BFLOAT16, FLOAT8* and FLOAT4 take already-encoded bit patterns.
 * COMPLEX types take interleaved (re, im) pairs, i.e. 2x the element count.
 */
export function encodeRawData(dataType: number, data: TensorArrayData): Uint8Array {
  const n = data.length;
  const eb = elementBytes(dataType);
  const values = data as ArrayLike<number | bigint>;
  if (eb === 0.5) {
    const out = new Uint8Array(Math.ceil(n / 2));
    for (let i = 0; i < n; i++) {
      const nib = toNum(values[i]) & 0xf;
      out[i >> 1] |= i & 1 ? nib << 4 : nib;
    }
    return out;
  }
  // Complex inputs are given as scalar pairs: size per scalar is half.
  const scalarBytes = dataType === DataType.COMPLEX64 || dataType === DataType.COMPLEX128
    ? eb / 2
    : eb;
  const out = new Uint8Array(n * scalarBytes);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    const o = i * scalarBytes;
    switch (dataType) {
      case DataType.FLOAT:
      case DataType.COMPLEX64:
        dv.setFloat32(o, toNum(v), true);
        break;
      case DataType.DOUBLE:
      case DataType.COMPLEX128:
        dv.setFloat64(o, toNum(v), true);
        break;
      case DataType.INT64:
        dv.setBigInt64(o, toBig(v, false), true);
        break;
      case DataType.UINT64:
        dv.setBigUint64(o, toBig(v, true), true);
        break;
      case DataType.INT32:
        dv.setInt32(o, toNum(v), true);
        break;
      case DataType.UINT32:
        dv.setUint32(o, toNum(v), true);
        break;
      case DataType.INT16:
        dv.setInt16(o, toNum(v), true);
        break;
      case DataType.UINT16:
      case DataType.FLOAT16:
      case DataType.BFLOAT16:
        dv.setUint16(o, toNum(v), true);
        break;
      case DataType.INT8:
        dv.setInt8(o, toNum(v));
        break;
      case DataType.BOOL:
        dv.setUint8(o, toNum(v) ? 1 : 0);
        break;
      default: // UINT8 and 8-bit float bit patterns
        dv.setUint8(o, toNum(v));
    }
  }
  return out;
}

/**
 * Builds a TensorProto holding `data` in raw_data (little-endian).
 * For STRING tensors pass string[] as data; they go to string_data.
 */
export function tensorFromArray(
  name: string,
  dataType: number,
  dims: readonly number[],
  data: TensorArrayData | readonly string[],
): TensorProto {
  const count = dims.reduce((a, b) => a * b, 1);
  const scalarsPerElem = dataType === DataType.COMPLEX64 || dataType === DataType.COMPLEX128
    ? 2
    : 1;
  if (data.length !== count * scalarsPerElem) {
    throw new ShapeError(
      `tensorFromArray(${name}): ${data.length} values for dims [${dims}] (${count} elements)`,
    );
  }
  const base: TensorProto = {
    name,
    dataType,
    dims: [...dims],
    floatData: [],
    int32Data: [],
    stringData: [],
    int64Data: [],
    externalData: [],
    doubleData: [],
    uint64Data: [],
    metadataProps: [],
  };
  if (dataType === DataType.STRING) {
    const enc = new TextEncoder();
    base.stringData = (data as readonly string[]).map((s) => enc.encode(s));
    return base;
  }
  if (data.length > 0 && typeof data[0] === "string") {
    throw new ArgumentError(`tensorFromArray(${name}): string data for non-STRING tensor`);
  }
  base.rawData = encodeRawData(dataType, data as TensorArrayData);
  return base;
}

/** Typed-array view of a tensor's elements, as returned by {@link tensorToArray}. */
export type TensorArray =
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

/**
 * Returns a tensor's elements as a fresh typed array, from raw_data or the
 * typed *_data field. FLOAT16/BFLOAT16 come back as Uint16Array bit patterns,
 * 8-bit floats as Uint8Array bit patterns, BOOL as Uint8Array, COMPLEX64 as
 * interleaved Float32Array, INT4 as Int8Array, UINT4/FLOAT4E2M1 as Uint8Array.
 * STRING tensors and external data throw.
 */
export function tensorToArray(t: TensorProto): TensorArray {
  const dt = t.dataType ?? 0;
  if (t.dataLocation === DataLocation.EXTERNAL) {
    throw new UnsupportedError(`tensor '${t.name ?? ""}' uses external data; load it first`);
  }
  const count = t.dims.reduce((a, b) => a * b, 1);
  if (dt === DataType.INT4 || dt === DataType.UINT4 || dt === DataType.FLOAT4E2M1) {
    return unpack4bit(t, dt, count);
  }
  const make = (): TensorArray => {
    switch (dt) {
      case DataType.FLOAT:
        return new Float32Array(count);
      case DataType.COMPLEX64:
        return new Float32Array(count * 2);
      case DataType.DOUBLE:
        return new Float64Array(count);
      case DataType.COMPLEX128:
        return new Float64Array(count * 2);
      case DataType.INT8:
        return new Int8Array(count);
      case DataType.INT16:
        return new Int16Array(count);
      case DataType.UINT16:
      case DataType.FLOAT16:
      case DataType.BFLOAT16:
        return new Uint16Array(count);
      case DataType.INT32:
        return new Int32Array(count);
      case DataType.UINT32:
        return new Uint32Array(count);
      case DataType.INT64:
        return new BigInt64Array(count);
      case DataType.UINT64:
        return new BigUint64Array(count);
      case DataType.UINT8:
      case DataType.BOOL:
      case DataType.FLOAT8E4M3FN:
      case DataType.FLOAT8E4M3FNUZ:
      case DataType.FLOAT8E5M2:
      case DataType.FLOAT8E5M2FNUZ:
      case DataType.FLOAT8E8M0:
        return new Uint8Array(count);
      default:
        throw new UnsupportedError(`tensorToArray: unsupported data type ${dataTypeName(dt)}`);
    }
  };
  const out = make();
  if (t.rawData !== undefined && t.rawData.length > 0) {
    const want = out.byteLength;
    if (t.rawData.length !== want) {
      throw new ShapeError(
        `tensor '${t.name ?? ""}': raw_data has ${t.rawData.length} bytes, expected ${want}`,
      );
    }
    // Copy bytes into the aligned output (raw_data may be an unaligned view).
    // Assumes a little-endian host, which holds for x86, ARM and Wasm.
    new Uint8Array(out.buffer).set(t.rawData);
    return out;
  }
  const src: readonly number[] = dt === DataType.FLOAT || dt === DataType.COMPLEX64
    ? t.floatData
    : dt === DataType.DOUBLE || dt === DataType.COMPLEX128
    ? t.doubleData
    : dt === DataType.INT64
    ? t.int64Data
    : dt === DataType.UINT32 || dt === DataType.UINT64
    ? t.uint64Data
    : t.int32Data;
  if (src.length !== out.length) {
    throw new ShapeError(
      `tensor '${t.name ?? ""}': ${src.length} values in typed field, expected ${out.length}`,
    );
  }
  if (out instanceof BigInt64Array || out instanceof BigUint64Array) {
    // Decoded int64 numbers may already have lost precision beyond 2^53.
    for (let i = 0; i < src.length; i++) out[i] = BigInt(src[i]);
  } else {
    out.set(src);
  }
  return out;
}

/**
 * 4-bit tensors are stored two per byte (first element in the low nibble),
 * in raw_data or one byte per int32_data entry. INT4 is sign-extended into
 * an Int8Array; UINT4 and FLOAT4E2M1 (bit patterns) come back as Uint8Array.
 */
function unpack4bit(t: TensorProto, dt: number, count: number): Int8Array | Uint8Array {
  const nbytes = Math.ceil(count / 2);
  const packed = t.rawData !== undefined && t.rawData.length > 0
    ? t.rawData
    : Uint8Array.from(t.int32Data, (x) => x & 0xff);
  if (packed.length !== nbytes) {
    throw new ShapeError(
      `tensor '${
        t.name ?? ""
      }': ${packed.length} packed bytes, expected ${nbytes} for ${count} 4-bit elements`,
    );
  }
  const out = dt === DataType.INT4 ? new Int8Array(count) : new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const nib = (packed[i >> 1] >> ((i & 1) * 4)) & 0xf;
    out[i] = dt === DataType.INT4 && nib >= 8 ? nib - 16 : nib;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Model builders

/** A graph input/output declaration: tensor of elemType with the given dims (string = symbolic). */
export function valueInfo(
  name: string,
  elemType: number,
  dims: readonly (number | string)[],
): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: {
          dim: dims.map((d) => typeof d === "string" ? { dimParam: d } : { dimValue: d }),
        },
      },
    },
    metadataProps: [],
  };
}

/**
 * Attribute value for {@link node}. Inference rules:
 * integer number / bigint -> INT, other number -> FLOAT, string -> STRING,
 * Float32Array / Float64Array -> FLOATS, number[] -> INTS if all integers
 * (including empty) else FLOATS, bigint[] / BigInt64Array -> INTS,
 * string[] -> STRINGS, TensorProto -> TENSOR, GraphProto -> GRAPH.
 * To force a type (e.g. FLOAT 1.0), pass a partial AttributeProto with `type`
 * set, e.g. `{ type: AttributeType.FLOAT, f: 1 }`.
 */
export type AttrValue =
  | number
  | bigint
  | string
  | readonly number[]
  | readonly bigint[]
  | readonly string[]
  | Float32Array
  | Float64Array
  | BigInt64Array
  | TensorProto
  | GraphProto
  | (Partial<AttributeProto> & { type: number });

const textEncoder = new TextEncoder();

function emptyAttr(name: string): AttributeProto {
  return {
    name,
    floats: [],
    ints: [],
    strings: [],
    tensors: [],
    graphs: [],
    sparseTensors: [],
    typeProtos: [],
  };
}

/** Builds an AttributeProto from a JS value (see {@link AttrValue} rules). */
export function attribute(name: string, value: AttrValue): AttributeProto {
  const a = emptyAttr(name);
  if (typeof value === "number") {
    if (Number.isInteger(value)) Object.assign(a, { type: AttributeType.INT, i: value });
    else Object.assign(a, { type: AttributeType.FLOAT, f: value });
  } else if (typeof value === "bigint") {
    Object.assign(a, { type: AttributeType.INT, i: Number(value) });
  } else if (typeof value === "string") {
    Object.assign(a, { type: AttributeType.STRING, s: textEncoder.encode(value) });
  } else if (value instanceof Float32Array || value instanceof Float64Array) {
    Object.assign(a, { type: AttributeType.FLOATS, floats: Array.from(value) });
  } else if (value instanceof BigInt64Array) {
    Object.assign(a, { type: AttributeType.INTS, ints: Array.from(value, Number) });
  } else if (Array.isArray(value)) {
    const arr = value as readonly (number | bigint | string)[];
    if (arr.length > 0 && typeof arr[0] === "string") {
      a.type = AttributeType.STRINGS;
      a.strings = (arr as string[]).map((s) => textEncoder.encode(s));
    } else if (arr.every((x) => typeof x === "bigint" || Number.isInteger(x))) {
      a.type = AttributeType.INTS;
      a.ints = arr.map((x) => Number(x));
    } else {
      a.type = AttributeType.FLOATS;
      a.floats = arr.map((x) => Number(x));
    }
  } else if ("type" in value && typeof value.type === "number") {
    Object.assign(a, value, { name });
  } else if ("node" in value) {
    Object.assign(a, { type: AttributeType.GRAPH, g: value });
  } else {
    Object.assign(a, { type: AttributeType.TENSOR, t: value });
  }
  return a;
}

/** Builds a NodeProto. Attribute types are inferred; see {@link AttrValue}. */
export function node(
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  attrs: Record<string, AttrValue> = {},
  name?: string,
  domain?: string,
): NodeProto {
  const n: NodeProto = {
    input: [...inputs],
    output: [...outputs],
    opType,
    attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    metadataProps: [],
    deviceConfigurations: [],
  };
  if (name !== undefined) n.name = name;
  if (domain !== undefined) n.domain = domain;
  return n;
}

export interface ModelSpec {
  nodes: NodeProto[];
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  initializers?: TensorProto[];
  /** Default-domain opset version. */
  opset?: number;
  irVersion?: number;
  /** Extra opset imports, e.g. [{ domain: "com.microsoft", version: 1 }]. */
  extraOpsets?: OperatorSetIdProto[];
  graphName?: string;
  producerName?: string;
}

/** Builds a ModelProto object (see {@link makeModel} for the serialized form). */
export function modelProto(spec: ModelSpec): ModelProto {
  return {
    irVersion: spec.irVersion ?? 8,
    producerName: spec.producerName ?? "sqz",
    opsetImport: [{ domain: "", version: spec.opset ?? 17 }, ...(spec.extraOpsets ?? [])],
    graph: {
      name: spec.graphName ?? "graph",
      node: spec.nodes,
      input: spec.inputs,
      output: spec.outputs,
      initializer: spec.initializers ?? [],
      sparseInitializer: [],
      valueInfo: [],
      quantizationAnnotation: [],
      metadataProps: [],
    },
    metadataProps: [],
    trainingInfo: [],
    functions: [],
    configuration: [],
  };
}

/** Builds and serializes a single-graph model (default opset 17, IR version 8). */
export function makeModel(spec: ModelSpec): Uint8Array {
  return encodeModel(modelProto(spec));
}
