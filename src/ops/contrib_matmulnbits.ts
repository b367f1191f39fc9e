// com.microsoft.MatMulNBits (onnxruntime contrib op, com.microsoft opset 1): a MatMul whose
// right-hand side is a constant weight quantized to `bits` bits in blocks along K.
//
//   MatMulNBits(A: float32 [..., K], B: uint8 [N, nb, blob], scales: float32 [N·nb] (or [N, nb]),
//               zero_points?: uint8 [N·ceil(nb·bits/8)] packed | float32 [N·nb],
//               g_idx? (deprecated, refused), bias?: float32 [N]) → Y float32 [..., N]
//   attributes K, N (required), bits (2, 4 or 8; default 4), block_size (a power of two ≥ 16),
//   accuracy_level (ignored: the session's int4 option decides; see runtime/kernel_ops/
//   matmulnbits.ts).
//   nb = ceil(K / block_size), blob = block_size·bits / 8. Row n of B holds Wᵀ[n, :] (output
//   column n of the MatMul weight), block j its K values j·bs .. j·bs + bs − 1, packed low bits
//   first (bits = 4: value i of a block is (blob[i >> 1] >> 4·(i & 1)) & 15); codes past K are
//   padding. Packed zero points use the same packing per row (row n starts at byte
//   n·ceil(nb·bits/8)); without them zp = 2^(bits − 1).
//     Wᵀ[n, k] = (q − zp) · scales[n·nb + j],  j = ⌊k / block_size⌋
//     Y[m, n] = Σ_k A[m, k] · Wᵀ[n, k] + bias[n]
//
// The Wasm kernel op (runtime/kernel_ops/matmulnbits.ts) keeps 4-bit weights packed and runs
// the Q4 × Q8 kernel (or decodes to the f32 GEMM where the weight does not fit it); this
// TypeScript fallback dequantizes once per weight (cached on the initializer's data) and
// multiplies in f32.
import type { Node } from "../graph/ir.ts";
import type { Tensor } from "../graph/tensor.ts";
import type { OpImpl } from "./types.ts";
import { attrInt } from "./attrs.ts";
import { ModelError, ShapeError, UnsupportedError } from "../errors.ts";

export const MS_DOMAIN = "com.microsoft";

function where(node: Node): string {
  return `node '${node.name}' (${node.op})`;
}

/** The attributes of a MatMulNBits node, checked. */
export interface NBitsAttrs {
  k: number;
  n: number;
  bits: 2 | 4 | 8;
  blockSize: number;
  /** Blocks per row, ceil(K / block_size). */
  blocks: number;
  /** Bytes per block, block_size·bits / 8. */
  blob: number;
}

export function nbitsAttrs(node: Node): NBitsAttrs {
  const req = (name: string) => {
    if (node.attrs[name] === undefined) {
      throw new ModelError(`${where(node)}: attribute '${name}' is required`);
    }
    return attrInt(node, name, 0);
  };
  const k = req("K"), n = req("N"), bs = req("block_size");
  const bits = attrInt(node, "bits", 4);
  for (const [name, v] of [["K", k], ["N", n]] as const) {
    if (!Number.isSafeInteger(v) || v < 1 || v > 1 << 30) {
      throw new ModelError(
        `${where(node)}: attribute ${name} must be a positive integer, got ${v}`,
      );
    }
  }
  if (!Number.isSafeInteger(bs) || bs < 16 || bs > 1 << 20 || (bs & (bs - 1)) !== 0) {
    throw new ModelError(`${where(node)}: block_size must be a power of two ≥ 16, got ${bs}`);
  }
  if (bits !== 2 && bits !== 4 && bits !== 8) {
    throw new UnsupportedError(`${where(node)}: bits = ${bits} (sqz runs 2, 4 and 8)`);
  }
  return { k, n, bits, blockSize: bs, blocks: Math.ceil(k / bs), blob: (bs * bits) / 8 };
}

function check(node: Node, t: Tensor | undefined, what: string, types: string[], count: number) {
  if (!t) throw new ModelError(`${where(node)}: input '${what}' is missing`);
  if (!types.includes(t.type)) {
    throw new ModelError(`${where(node)}: '${what}' must be ${types.join(" or ")}, got ${t.type}`);
  }
  if (t.data.length !== count) {
    throw new ModelError(
      `${where(node)}: '${what}' has ${t.data.length} elements, K, N and block_size need ${count}`,
    );
  }
  return t;
}

/** A MatMulNBits node's constant inputs, checked against its attributes. */
export interface NBitsInputs extends NBitsAttrs {
  q: Uint8Array;
  scales: Float32Array;
  /** uint8 zero points, packed per row (row n at n·ceil(nb·bits/8)). */
  zpPacked?: Uint8Array;
  /** float32 zero points, one per block. */
  zpFloat?: Float32Array;
}

/** Checks B, scales and zero_points against the attributes; throws ModelError if they differ. */
export function nbitsInputs(
  node: Node,
  b: Tensor | undefined,
  scales: Tensor | undefined,
  zeroPoints: Tensor | undefined,
): NBitsInputs {
  const a = nbitsAttrs(node);
  const { n, bits, blocks: nb, blob } = a;
  const q = check(node, b, "B", ["uint8"], n * nb * blob).data as Uint8Array;
  const s = check(node, scales, "scales", ["float32"], n * nb).data as Float32Array;
  const zpStride = Math.ceil((nb * bits) / 8);
  let zpPacked: Uint8Array | undefined, zpFloat: Float32Array | undefined;
  if (zeroPoints?.type === "uint8") {
    zpPacked = check(node, zeroPoints, "zero_points", ["uint8"], n * zpStride).data as Uint8Array;
  } else if (zeroPoints) {
    zpFloat = check(node, zeroPoints, "zero_points", ["float32"], n * nb).data as Float32Array;
  }
  return { ...a, q, scales: s, zpPacked, zpFloat };
}

/**
 * The dequantized weight Wᵀ as float32 [N, K] (row n = output column n), from the node's
 * B, scales and zero_points inputs. Throws ModelError for inputs that do not fit the attributes.
 */
export function dequantizeNBits(
  node: Node,
  b: Tensor | undefined,
  scales: Tensor | undefined,
  zeroPoints: Tensor | undefined,
): Float32Array {
  const { k, n, bits, blockSize: bs, blocks: nb, blob, q, scales: s, zpPacked, zpFloat } =
    nbitsInputs(node, b, scales, zeroPoints);
  const zpStride = Math.ceil((nb * bits) / 8);
  const mask = (1 << bits) - 1, perByte = 8 / bits, dflt = 1 << (bits - 1);
  const code = (bytes: Uint8Array, base: number, i: number) =>
    (bytes[base + Math.floor(i / perByte)] >> ((i % perByte) * bits)) & mask;
  const w = new Float32Array(n * k);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < nb; j++) {
      const blk = r * nb + j, d = s[blk];
      const zp = zpPacked ? code(zpPacked, r * zpStride, j) : zpFloat ? zpFloat[blk] : dflt;
      const k0 = j * bs, end = Math.min(bs, k - k0), base = blk * blob, row = r * k + k0;
      for (let i = 0; i < end; i++) w[row + i] = (code(q, base, i) - zp) * d;
    }
  }
  return w;
}

/** Dequantized weights by B's data; scales and zero points must be the same arrays too. */
const cache = new WeakMap<object, { s: object; zp: object | undefined; w: Float32Array }>();

function cachedWeight(node: Node, inputs: readonly (Tensor | undefined)[]): Float32Array {
  const [, b, s, zp] = inputs;
  const hit = b && cache.get(b.data);
  if (hit && hit.s === s?.data && hit.zp === zp?.data) return hit.w;
  const w = dequantizeNBits(node, b, s, zp);
  if (b && s) cache.set(b.data, { s: s.data, zp: zp?.data, w });
  return w;
}

/** The bias input, checked: float32 with N values. */
export function nbitsBias(node: Node, t: Tensor | undefined, n: number): Float32Array | undefined {
  return t ? check(node, t, "bias", ["float32"], n).data as Float32Array : undefined;
}

const matMulNBits: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const { k, n } = nbitsAttrs(node);
  if (inputs[4]) throw new UnsupportedError(`${where(node)}: g_idx (deprecated) is not supported`);
  const a = inputs[0];
  if (!a) throw new ModelError(`${where(node)}: input 'A' is missing`);
  if (a.type !== "float32") {
    throw new UnsupportedError(`${where(node)}: A is ${a.type}; sqz runs float32 MatMulNBits`);
  }
  if (a.dims.length < 1 || a.dims[a.dims.length - 1] !== k) {
    throw new ShapeError(`${where(node)}: A is [${a.dims}] but K = ${k}`);
  }
  const wt = cachedWeight(node, inputs);
  const bias = nbitsBias(node, inputs[5], n);
  const m = a.dims.slice(0, -1).reduce((x, y) => x * y, 1);
  const out = ctx.alloc(0, "float32", [...a.dims.slice(0, -1), n]);
  const y = out.data as Float32Array, x = a.data as Float32Array;
  for (let i = 0; i < m; i++) {
    const xo = i * k;
    for (let j = 0; j < n; j++) {
      const wo = j * k;
      let acc = 0;
      for (let t = 0; t < k; t++) acc += x[xo + t] * wt[wo + t];
      y[i * n + j] = bias ? acc + bias[j] : acc;
    }
  }
  return [out];
};

export const CONTRIB_MATMULNBITS_OPS: Record<string, OpImpl> = {
  [`${MS_DOMAIN}.MatMulNBits`]: matMulNBits,
};
