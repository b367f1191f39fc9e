// ai.sqz weight decoders for pruned and clustered layers, and the encoders that write them.
//
// A compressed layer keeps its float op (Conv, Gemm, MatMul) and reads its weight from one of
// these decoder nodes instead of a dense initializer. Their inputs are constants, so constant
// folding evaluates them once at load time and the kernels see ordinary dense float weights:
// the formats save artifact bytes, not inference work.
//
// ---------------------------------------------------------------------------------------------
// ai.sqz.SparseWeight(values, indices) -> W: float32, dims = attribute `shape`
//
//   attributes:  shape:  ints    dense dims of W (row-major, exactly what the layer reads)
//                format: string  "bitmask" | "delta"
//   inputs:      values:  float32[nnz]   stored weights, in row-major order of W
//                indices: see below
//   Every position of W that is not stored is 0.
//
//   format "bitmask" (one bit per weight):
//     struct { uint8 mask[ceil(numel / 8)]; }         // indices: uint8 [ceil(numel / 8)]
//     Position i of the flattened W is stored iff bit (i & 7) of mask[i >> 3] is set
//     (LSB-first). popcount(mask) == nnz; the padding bits of the last byte are 0.
//     Costs numel / 8 bytes whatever the sparsity; for N:M patterns this equals the 2-bit
//     per-kept-weight metadata of NVIDIA's 2:4 layout (2 of 4 kept → 4 bits per group of 4).
//
//   format "delta" (relative positions, as Deep Compression stores its sparse layers):
//     struct { uintW gap[L]; }                          // indices: uint8 or uint16 [L]
//     W (8 or 16) is the dtype of `indices`; ESC = 2^W − 1. Decoding walks a cursor p = 0:
//       gap == ESC : p += ESC                (skip ESC zeros, consume no value)
//       otherwise  : p += gap; W[p] = values[next++]; p += 1
//     so `gap` counts the zeros before each stored weight and long runs take extra ESC
//     entries. L = nnz + escapes; at the end next == nnz and p ≤ numel.
//     Costs W/8 bytes per stored weight (+ escapes): smaller than the bitmask below ~1/8
//     (uint8) density.
//
//   The encoder keeps whichever of bitmask, delta/uint8 and delta/uint16 is smallest, and
//   the dense tensor when that is smaller still (sparseEncode returns undefined).
//
// ---------------------------------------------------------------------------------------------
// ai.sqz.ClusteredWeight(indices, codebook) -> W: float32, dims = attribute `shape`
//
//   attributes:  shape: ints   dense dims of W
//                bits:  int    1..8, bits per index (ceil(log2 k), at least 1)
//   inputs:      indices:  uint8[ceil(numel · bits / 8)]
//                codebook: float32[k], k ≤ 2^bits
//   struct { uint8 stream[ceil(numel · bits / 8)]; float codebook[k]; }
//   Index i occupies bits [i·bits, (i+1)·bits) of the stream, where stream bit j is bit
//   (j & 7) of byte (j >> 3): LSB-first, so an index may straddle two bytes and its low bits
//   come first. W[i] = codebook[index_i]; every index is < k; padding bits are 0.
//   The decoded weights are exactly codebook values (no scale, no rounding).
// ---------------------------------------------------------------------------------------------
import type { Node } from "../graph/ir.ts";
import { elementCount, type Tensor } from "../graph/tensor.ts";
import { ArgumentError, ModelError, ShapeError } from "../errors.ts";
import type { OpImpl } from "./types.ts";
import { checkDims } from "./tensor_util.ts";

export type SparseFormat = "bitmask" | "delta";

/** An encoded sparse weight: the inputs and attributes of one ai.sqz.SparseWeight node. */
export interface SparseEncoding {
  format: SparseFormat;
  values: Float32Array;
  /** Bitmask bytes, or delta gaps (uint8 or uint16). */
  indices: Uint8Array | Uint16Array;
  /** Bytes of values + indices. */
  bytes: number;
}

function deltaLength(w: Float32Array, esc: number): number {
  let len = 0, gap = 0;
  for (let i = 0; i < w.length; i++) {
    if (w[i] === 0) {
      gap++;
      continue;
    }
    len += Math.floor(gap / esc) + 1;
    gap = 0;
  }
  return len;
}

/** Bitmask layout: bit i of the flattened weight at byte i >> 3, bit i & 7. */
export function encodeBitmask(w: Float32Array): SparseEncoding {
  let nnz = 0;
  for (let i = 0; i < w.length; i++) if (w[i] !== 0) nnz++;
  const mask = new Uint8Array(Math.ceil(w.length / 8));
  const values = new Float32Array(nnz);
  for (let i = 0, j = 0; i < w.length; i++) {
    if (w[i] === 0) continue;
    mask[i >> 3] |= 1 << (i & 7);
    values[j++] = w[i];
  }
  return { format: "bitmask", values, indices: mask, bytes: values.byteLength + mask.byteLength };
}

/** Delta layout with gaps of `width` bits (8 or 16); see the format notes above. */
export function encodeDelta(w: Float32Array, width: 8 | 16): SparseEncoding {
  const esc = width === 8 ? 0xff : 0xffff;
  const len = deltaLength(w, esc);
  const indices = width === 8 ? new Uint8Array(len) : new Uint16Array(len);
  let nnz = 0;
  for (let i = 0; i < w.length; i++) if (w[i] !== 0) nnz++;
  const values = new Float32Array(nnz);
  let gap = 0, e = 0, j = 0;
  for (let i = 0; i < w.length; i++) {
    if (w[i] === 0) {
      gap++;
      continue;
    }
    while (gap >= esc) {
      indices[e++] = esc;
      gap -= esc;
    }
    indices[e++] = gap;
    values[j++] = w[i];
    gap = 0;
  }
  return { format: "delta", values, indices, bytes: values.byteLength + indices.byteLength };
}

/**
 * The smallest sparse encoding of `w` (zeros are the pruned weights), or undefined when the
 * dense float32 tensor is not larger.
 */
export function sparseEncode(w: Float32Array): SparseEncoding | undefined {
  let nnz = 0;
  for (let i = 0; i < w.length; i++) if (w[i] !== 0) nnz++;
  // Sizes first, so only the winner is built.
  const sizes: [number, () => SparseEncoding][] = [
    [4 * nnz + Math.ceil(w.length / 8), () => encodeBitmask(w)],
    [4 * nnz + deltaLength(w, 0xff), () => encodeDelta(w, 8)],
    [4 * nnz + 2 * deltaLength(w, 0xffff), () => encodeDelta(w, 16)],
  ];
  let best = 0;
  for (let i = 1; i < sizes.length; i++) if (sizes[i][0] < sizes[best][0]) best = i;
  if (sizes[best][0] >= 4 * w.length) return undefined;
  return sizes[best][1]();
}

function where(node: Node): string {
  return `node '${node.name}' (${node.qualifiedOp})`;
}

function denseShape(node: Node): number[] {
  const shape = node.attrs.shape;
  if (!Array.isArray(shape) || shape.some((d) => typeof d !== "number")) {
    throw new ModelError(`${where(node)}: attribute 'shape' (ints) is required`);
  }
  checkDims(shape as number[], "float32", `${where(node)} output`);
  return shape as number[];
}

function input(t: Tensor | undefined, node: Node, what: string, types: string[]): Tensor {
  if (!t) throw new ShapeError(`${where(node)}: input '${what}' is missing`);
  if (!types.includes(t.type)) {
    throw new ShapeError(`${where(node)}: ${what} must be ${types.join(" or ")}, got ${t.type}`);
  }
  if (t.dims.length !== 1 || t.data.length !== t.dims[0]) {
    throw new ShapeError(`${where(node)}: ${what} must be 1-D, got [${t.dims}]`);
  }
  return t;
}

/** Decodes a SparseWeight's inputs into `out` (zero-filled, numel long). */
export function sparseDecodeInto(
  node: Node,
  format: string,
  values: Float32Array,
  indices: Uint8Array | Uint16Array,
  out: Float32Array,
): void {
  const numel = out.length;
  if (format === "bitmask") {
    if (!(indices instanceof Uint8Array) || indices.length !== Math.ceil(numel / 8)) {
      throw new ShapeError(
        `${where(node)}: a bitmask for ${numel} weights is uint8[${
          Math.ceil(numel / 8)
        }], got ${indices.constructor.name}[${indices.length}]`,
      );
    }
    let j = 0;
    for (let b = 0; b < indices.length; b++) {
      let m = indices[b];
      if (m === 0) continue;
      const base = b << 3;
      if (base + 8 > numel && m >> (numel - base) !== 0) {
        throw new ModelError(`${where(node)}: bitmask has bits set past the ${numel} weights`);
      }
      while (m) {
        const bit = 31 - Math.clz32(m & -m);
        if (j >= values.length) {
          throw new ModelError(`${where(node)}: bitmask has more bits set than ${values.length}`);
        }
        out[base + bit] = values[j++];
        m &= m - 1;
      }
    }
    if (j !== values.length) {
      throw new ModelError(`${where(node)}: bitmask has ${j} bits set for ${values.length} values`);
    }
  } else if (format === "delta") {
    const esc = indices instanceof Uint8Array ? 0xff : 0xffff;
    let p = 0, j = 0;
    for (let e = 0; e < indices.length; e++) {
      const gap = indices[e];
      if (gap === esc) {
        p += esc;
        continue;
      }
      p += gap;
      if (p >= numel || j >= values.length) {
        throw new ModelError(
          `${where(node)}: delta indices run past ${numel} weights or ${values.length} values`,
        );
      }
      out[p++] = values[j++];
    }
    if (j !== values.length || p > numel) {
      throw new ModelError(
        `${
          where(node)
        }: delta indices place ${j} of ${values.length} values (cursor ${p} of ${numel})`,
      );
    }
  } else {
    throw new ArgumentError(
      `${where(node)}: attribute 'format' must be "bitmask" or "delta", got ${
        JSON.stringify(format)
      }`,
    );
  }
}

const sparseWeight: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const shape = denseShape(node);
  const values = input(inputs[0], node, "values", ["float32"]);
  const format = typeof node.attrs.format === "string" ? node.attrs.format : "";
  const indices = input(inputs[1], node, "indices", ["uint8", "uint16"]);
  const out = ctx.alloc(0, "float32", shape);
  const data = out.data as Float32Array;
  data.fill(0);
  sparseDecodeInto(
    node,
    format,
    values.data as Float32Array,
    indices.data as Uint8Array | Uint16Array,
    data,
  );
  return [out];
};

// ---- clustering ----

/** Bits per cluster index for a codebook of k entries (at least 1). */
export function clusterBits(k: number): number {
  if (!Number.isInteger(k) || k < 1 || k > 256) {
    throw new ArgumentError(`a codebook must have 1..256 entries, got ${k}`);
  }
  return Math.max(1, Math.ceil(Math.log2(k)));
}

/** Packs indices (each < 2^bits) LSB-first at `bits` bits each. */
export function packIndices(idx: ArrayLike<number>, bits: number): Uint8Array {
  if (!Number.isInteger(bits) || bits < 1 || bits > 8) {
    throw new ArgumentError(`index width must be 1..8 bits, got ${bits}`);
  }
  const out = new Uint8Array(Math.ceil((idx.length * bits) / 8));
  const lim = 1 << bits;
  for (let i = 0, bit = 0; i < idx.length; i++, bit += bits) {
    const v = idx[i];
    if (!(v >= 0 && v < lim) || !Number.isInteger(v)) {
      throw new ArgumentError(`index ${v} at ${i} does not fit in ${bits} bits`);
    }
    const byte = bit >> 3, shift = bit & 7;
    out[byte] |= (v << shift) & 0xff;
    if (shift + bits > 8) out[byte + 1] |= v >> (8 - shift);
  }
  return out;
}

/** Unpacks `count` indices of `bits` bits (LSB-first). */
export function unpackIndices(packed: Uint8Array, bits: number, count: number): Uint8Array {
  const out = new Uint8Array(count);
  const mask = (1 << bits) - 1;
  for (let i = 0, bit = 0; i < count; i++, bit += bits) {
    const byte = bit >> 3, shift = bit & 7;
    // Two bytes cover any index of ≤ 8 bits; the second may lie past the end for the last one.
    const word = packed[byte] | ((byte + 1 < packed.length ? packed[byte + 1] : 0) << 8);
    out[i] = (word >> shift) & mask;
  }
  return out;
}

const clusteredWeight: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const shape = denseShape(node);
  const bits = node.attrs.bits;
  if (typeof bits !== "number" || !Number.isInteger(bits) || bits < 1 || bits > 8) {
    throw new ModelError(`${where(node)}: attribute 'bits' must be an integer in 1..8`);
  }
  const indices = input(inputs[0], node, "indices", ["uint8"]);
  const codebook = input(inputs[1], node, "codebook", ["float32"]);
  const k = codebook.data.length;
  if (k < 1 || k > 1 << bits) {
    throw new ShapeError(
      `${where(node)}: a ${bits}-bit codebook has 1..${1 << bits} entries, got ${k}`,
    );
  }
  const numel = elementCount(shape);
  const need = Math.ceil((numel * bits) / 8);
  if (indices.data.length !== need) {
    throw new ShapeError(
      `${where(node)}: ${numel} ${bits}-bit indices take ${need} bytes, got ${indices.data.length}`,
    );
  }
  const out = ctx.alloc(0, "float32", shape);
  const data = out.data as Float32Array;
  const cb = codebook.data as Float32Array;
  const packed = indices.data as Uint8Array;
  const mask = (1 << bits) - 1;
  for (let i = 0, bit = 0; i < numel; i++, bit += bits) {
    const byte = bit >> 3;
    const word = packed[byte] | ((byte + 1 < packed.length ? packed[byte + 1] : 0) << 8);
    const c = (word >> (bit & 7)) & mask;
    if (c >= k) {
      throw new ModelError(`${where(node)}: index ${c} at ${i} is past the ${k}-entry codebook`);
    }
    data[i] = cb[c];
  }
  return [out];
};

/** ai.sqz decoders for sparse and clustered weights (see the format notes in this file). */
export const SQZ_SPARSE_OPS: Record<string, OpImpl> = {
  "ai.sqz.SparseWeight": sparseWeight,
  "ai.sqz.ClusteredWeight": clusteredWeight,
};
