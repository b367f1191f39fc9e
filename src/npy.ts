// NumPy `.npy` files ↔ tensors.
//
// Format (numpy.lib.format): the magic "\x93NUMPY", a major and minor version byte, the header
// length (uint16 LE in 1.0, uint32 LE in 2.0 and 3.0), then the header: a Python dict literal
// `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded with spaces and ending in
// "\n" (latin-1 in 1.0/2.0, UTF-8 in 3.0), then the raw array data.
//
// Reading accepts versions 1.0–3.0, little-, big- and no-endian descrs for bool, (u)int8–64 and
// float16/32/64, C order, and Fortran order, which is transposed to C order (the tensor's dims
// are the file's shape either way). Structured and object dtypes are rejected. The header is
// parsed by a small parser of the Python literal subset numpy writes (no eval, no regex tricks),
// and every size is checked against the bytes present before anything is allocated.
//
// Writing produces version 1.0 (2.0 when the header would not fit), little-endian, C order, as
// `numpy.save` does. int4/uint4 tensors (held one value per byte) are written as int8/uint8:
// numpy has no 4-bit dtype.
import { ArgumentError, ShapeError } from "./errors.ts";
import type { Tensor, TensorData, TensorType } from "./graph/tensor.ts";

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
/** Ranks beyond numpy's own limit (64) are not arrays anyone saved on purpose. */
const MAX_RANK = 64;

interface DtypeInfo {
  type: TensorType;
  size: number;
  ctor: new (buf: ArrayBuffer) => TensorData;
}

// Keyed by kind + item size, as in descr "<f4" → "f4".
const DTYPES: Record<string, DtypeInfo> = {
  b1: { type: "bool", size: 1, ctor: Uint8Array },
  i1: { type: "int8", size: 1, ctor: Int8Array },
  u1: { type: "uint8", size: 1, ctor: Uint8Array },
  i2: { type: "int16", size: 2, ctor: Int16Array },
  u2: { type: "uint16", size: 2, ctor: Uint16Array },
  i4: { type: "int32", size: 4, ctor: Int32Array },
  u4: { type: "uint32", size: 4, ctor: Uint32Array },
  i8: { type: "int64", size: 8, ctor: BigInt64Array },
  u8: { type: "uint64", size: 8, ctor: BigUint64Array },
  f2: { type: "float16", size: 2, ctor: Uint16Array },
  f4: { type: "float32", size: 4, ctor: Float32Array },
  f8: { type: "float64", size: 8, ctor: Float64Array },
};

const DESCR_OF: Record<TensorType, string> = {
  bool: "|b1",
  int8: "|i1",
  uint8: "|u1",
  int4: "|i1",
  uint4: "|u1",
  int16: "<i2",
  uint16: "<u2",
  int32: "<i4",
  uint32: "<u4",
  int64: "<i8",
  uint64: "<u8",
  float16: "<f2",
  float32: "<f4",
  float64: "<f8",
};

const DATA_OF: Record<TensorType, string> = {
  bool: "Uint8Array",
  int8: "Int8Array",
  uint8: "Uint8Array",
  int4: "Int8Array",
  uint4: "Uint8Array",
  int16: "Int16Array",
  uint16: "Uint16Array",
  int32: "Int32Array",
  uint32: "Uint32Array",
  int64: "BigInt64Array",
  uint64: "BigUint64Array",
  float16: "Uint16Array",
  float32: "Float32Array",
  float64: "Float64Array",
};

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// ---------------------------------------------------------------------------
// The header: a restricted Python literal parser.

/** A Python literal as numpy's header may hold it. Tuples and lists are both arrays. */
export type PyValue = string | number | boolean | null | PyValue[] | Map<string, PyValue>;

const MAX_DEPTH = 16;

/**
 * Parses a Python literal made of dicts with string keys, tuples, lists, strings, integers,
 * True, False and None: the syntax numpy writes in `.npy` headers (and `repr` of a dtype
 * descr). Throws ArgumentError on anything else.
 */
export function parsePyLiteral(src: string): PyValue {
  let pos = 0;
  const fail = (what: string): never => {
    throw new ArgumentError(`npy header: ${what} at offset ${pos} in ${JSON.stringify(src)}`);
  };
  const skipSpace = () => {
    while (pos < src.length && " \t\r\n".includes(src[pos])) pos++;
  };
  const expect = (c: string) => {
    skipSpace();
    if (src[pos] !== c) fail(`expected '${c}'`);
    pos++;
  };

  function parseString(): string {
    const quote = src[pos++];
    let out = "";
    for (;;) {
      if (pos >= src.length) fail("unterminated string");
      const c = src[pos++];
      if (c === quote) return out;
      if (c === "\n") fail("newline in string");
      if (c !== "\\") {
        out += c;
        continue;
      }
      const e = src[pos++];
      const simple: Record<string, string> = {
        "\\": "\\",
        "'": "'",
        '"': '"',
        n: "\n",
        t: "\t",
        r: "\r",
        "0": "\0",
      };
      if (e in simple) out += simple[e];
      else if (e === "x" || e === "u") {
        const n = e === "x" ? 2 : 4;
        const hex = src.slice(pos, pos + n);
        if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== n) fail("bad escape");
        out += String.fromCharCode(parseInt(hex, 16));
        pos += n;
      } else fail("unsupported escape");
    }
  }

  function parseInt_(): number {
    const start = pos;
    if (src[pos] === "-" || src[pos] === "+") pos++;
    const digits = pos;
    while (pos < src.length && src[pos] >= "0" && src[pos] <= "9") pos++;
    if (pos === digits) fail("expected a value");
    const v = Number(src.slice(start, pos));
    if (src[pos] === "L" || src[pos] === "l") pos++; // Python 2 longs, as old numpy wrote them
    if (src[pos] === "." || src[pos] === "e" || src[pos] === "E") fail("non-integer number");
    if (!Number.isSafeInteger(v)) fail("integer out of range");
    return v;
  }

  function parseSeq(close: string, isTuple: boolean): PyValue[] {
    const items: PyValue[] = [];
    let commas = 0;
    for (;;) {
      skipSpace();
      if (src[pos] === close) {
        pos++;
        // `(1)` is a parenthesized int in Python, not a tuple.
        if (isTuple && items.length === 1 && commas === 0) fail("expected ',' in a 1-tuple");
        return items;
      }
      items.push(parseValue());
      skipSpace();
      if (src[pos] === ",") {
        pos++;
        commas++;
      } else if (src[pos] !== close) fail(`expected ',' or '${close}'`);
    }
  }

  function parseDict(): Map<string, PyValue> {
    const d = new Map<string, PyValue>();
    for (;;) {
      skipSpace();
      if (src[pos] === "}") {
        pos++;
        return d;
      }
      if (src[pos] !== "'" && src[pos] !== '"') fail("dict keys must be strings");
      const key = parseString();
      if (d.has(key)) fail(`duplicate key '${key}'`);
      expect(":");
      d.set(key, parseValue());
      skipSpace();
      if (src[pos] === ",") pos++;
      else if (src[pos] !== "}") fail("expected ',' or '}'");
    }
  }

  let depth = 0;
  function parseValue(): PyValue {
    skipSpace();
    if (pos >= src.length) fail("unexpected end");
    const c = src[pos];
    if (c === "'" || c === '"') return parseString();
    if (c === "{" || c === "(" || c === "[") {
      if (++depth > MAX_DEPTH) fail("nesting too deep");
      pos++;
      const v = c === "{" ? parseDict() : parseSeq(c === "(" ? ")" : "]", c === "(");
      depth--;
      return v;
    }
    for (const [word, v] of [["True", true], ["False", false], ["None", null]] as const) {
      if (src.startsWith(word, pos) && !/[A-Za-z0-9_]/.test(src[pos + word.length] ?? "")) {
        pos += word.length;
        return v;
      }
    }
    return parseInt_();
  }

  const v = parseValue();
  skipSpace();
  if (pos !== src.length) fail("trailing characters");
  return v;
}

// ---------------------------------------------------------------------------
// Reading

interface Header {
  dtype: DtypeInfo;
  bigEndian: boolean;
  fortran: boolean;
  shape: number[];
}

function parseHeader(text: string): Header {
  const d = parsePyLiteral(text);
  if (!(d instanceof Map)) throw new ArgumentError("npy header: not a dict");
  const keys = [...d.keys()].sort().join(",");
  if (keys !== "descr,fortran_order,shape") {
    throw new ArgumentError(
      `npy header: keys must be 'descr', 'fortran_order' and 'shape', got ${
        [...d.keys()].map((k) => `'${k}'`).join(", ") || "none"
      }`,
    );
  }
  const descr = d.get("descr"), fortran = d.get("fortran_order"), shape = d.get("shape");
  if (typeof descr !== "string") {
    throw new ArgumentError(
      `npy: structured or non-string dtype descr ${JSON.stringify(descr)} is not supported`,
    );
  }
  if (typeof fortran !== "boolean") throw new ArgumentError("npy header: bad 'fortran_order'");
  const m = /^([<>|=]?)([a-z]\d+)$/.exec(descr);
  const dtype = m ? DTYPES[m[2]] : undefined;
  if (!m || !dtype) {
    throw new ArgumentError(
      `npy: dtype '${descr}' is not supported (bool, int8–64, uint8–64, float16/32/64)`,
    );
  }
  // '=' is native order, which for any file numpy wrote on a common machine is little-endian.
  const bigEndian = m[1] === ">";
  if (!Array.isArray(shape)) throw new ArgumentError("npy header: 'shape' must be a tuple");
  if (shape.length > MAX_RANK) throw new ShapeError(`npy: rank ${shape.length} is absurd`);
  for (const s of shape) {
    if (typeof s !== "number" || !Number.isSafeInteger(s) || s < 0) {
      throw new ShapeError(`npy: bad dimension ${JSON.stringify(s)} in shape`);
    }
  }
  return { dtype, bigEndian, fortran, shape: shape as number[] };
}

/** Reads a `.npy` file. Typed errors for anything malformed, before allocating. */
export function parseNpy(bytes: Uint8Array): Tensor {
  if (!(bytes instanceof Uint8Array)) throw new ArgumentError("npy: bytes must be a Uint8Array");
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new ArgumentError("not a .npy file (bad magic)");
  }
  const major = bytes[6], minor = bytes[7];
  if (major < 1 || major > 3 || minor !== 0) {
    throw new ArgumentError(`npy: format version ${major}.${minor} is not supported`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenBytes) throw new ArgumentError("npy: truncated header");
  const headerLen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const dataStart = 8 + lenBytes + headerLen;
  if (dataStart > bytes.length) {
    throw new ArgumentError(
      `npy: truncated header (${headerLen} bytes announced, ${
        bytes.length - 8 - lenBytes
      } present)`,
    );
  }
  const raw = bytes.subarray(8 + lenBytes, dataStart);
  let text: string;
  try {
    text = new TextDecoder(major === 3 ? "utf-8" : "latin1", { fatal: true }).decode(raw);
  } catch {
    throw new ArgumentError("npy: header is not valid UTF-8");
  }
  const { dtype, bigEndian, fortran, shape } = parseHeader(text);

  // The element count against the bytes present: no product overflow, no huge allocation.
  const available = bytes.length - dataStart;
  let count = shape.includes(0) ? 0 : 1;
  for (let i = 0; i < shape.length && count > 0; i++) {
    count *= shape[i];
    if (count * dtype.size > available) break;
  }
  if (count * dtype.size !== available) {
    const need = count * dtype.size > available ? "more than" : `${count * dtype.size}, not`;
    throw new ShapeError(
      `npy: shape (${shape.join(", ")}) of ${dtype.type} needs ${need} the ${available} ` +
        `data bytes present`,
    );
  }
  // A fresh, aligned copy: the caller's buffer may be shared or misaligned.
  const buf = new ArrayBuffer(available);
  const u8 = new Uint8Array(buf);
  u8.set(bytes.subarray(dataStart));
  if (dtype.size > 1 && bigEndian === HOST_LITTLE_ENDIAN) swapBytes(u8, dtype.size);
  let data = new dtype.ctor(buf);
  if (dtype.type === "bool") {
    const b = data as Uint8Array;
    for (let i = 0; i < b.length; i++) b[i] = b[i] ? 1 : 0;
  }
  if (fortran && shape.length > 1 && count > 0) data = fortranToC(data, shape, dtype);
  return { type: dtype.type, dims: [...shape], data };
}

function swapBytes(u8: Uint8Array, size: number): void {
  for (let i = 0; i < u8.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = u8[a];
      u8[a] = u8[b];
      u8[b] = t;
    }
  }
}

/** Fortran-ordered data (first index fastest) → C order (last index fastest). */
function fortranToC(src: TensorData, shape: number[], dtype: DtypeInfo): TensorData {
  const rank = shape.length;
  const out = new dtype.ctor(new ArrayBuffer(src.length * dtype.size));
  // Source strides: column-major.
  const fStride = new Array<number>(rank);
  for (let i = 0, s = 1; i < rank; i++) {
    fStride[i] = s;
    s *= shape[i];
  }
  const idx = new Array<number>(rank).fill(0);
  let srcOff = 0;
  const o = out as unknown as { [i: number]: number | bigint };
  const s = src as unknown as { [i: number]: number | bigint };
  for (let i = 0; i < out.length; i++) {
    o[i] = s[srcOff];
    // Advance the C-order index (last dim fastest), tracking the Fortran offset.
    for (let k = rank - 1; k >= 0; k--) {
      if (++idx[k] < shape[k]) {
        srcOff += fStride[k];
        break;
      }
      srcOff -= (shape[k] - 1) * fStride[k];
      idx[k] = 0;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Writing

/** Writes a tensor as a `.npy` file (version 1.0, little-endian, C order). */
export function encodeNpy(t: Tensor): Uint8Array {
  if (typeof t !== "object" || t === null || !Array.isArray(t.dims) || !t.data) {
    throw new ArgumentError("encodeNpy: expected a tensor { type, dims, data }");
  }
  const descr = DESCR_OF[t.type];
  if (!descr) throw new ArgumentError(`encodeNpy: tensor type '${t.type}' is not supported`);
  if (t.data.constructor.name !== DATA_OF[t.type]) {
    throw new ArgumentError(
      `encodeNpy: a ${t.type} tensor needs a ${DATA_OF[t.type]}, got ${t.data.constructor.name}`,
    );
  }
  let count = 1;
  for (const d of t.dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new ShapeError(`encodeNpy: bad dim ${d}`);
    count *= d;
  }
  if (count !== t.data.length) {
    throw new ShapeError(
      `encodeNpy: dims [${t.dims}] need ${count} elements, the data has ${t.data.length}`,
    );
  }
  const shape = t.dims.length === 1 ? `(${t.dims[0]},)` : `(${t.dims.join(", ")})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  // Pad with spaces so the data starts on a 64-byte boundary, the header ending in "\n".
  let major = 1;
  let pre = 10;
  if (header.length + 1 + pre > 0xffff) {
    major = 2;
    pre = 12;
  }
  header += " ".repeat((64 - ((pre + header.length + 1) % 64)) % 64) + "\n";
  const dataBytes = t.data.byteLength;
  const out = new Uint8Array(pre + header.length + dataBytes);
  out.set(MAGIC);
  out[6] = major;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (major === 1) dv.setUint16(8, header.length, true);
  else dv.setUint32(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[pre + i] = header.charCodeAt(i);
  const body = out.subarray(pre + header.length);
  body.set(new Uint8Array(t.data.buffer, t.data.byteOffset, dataBytes));
  const size = t.data.BYTES_PER_ELEMENT;
  if (size > 1 && !HOST_LITTLE_ENDIAN) swapBytes(body, size);
  if (t.type === "bool") { for (let i = 0; i < body.length; i++) body[i] = body[i] ? 1 : 0; }
  return out;
}
