// ai.sqz low-bit layers: the storage formats of int4, ternary and binary weights, their decoders,
// and the reference (TypeScript) binary convolution and GEMM. compress/int4.ts, ternary.ts and
// binary.ts write these; the engine runs them (decoders are folded into float weights at load;
// binary layers run on the Wasm XNOR kernels, runtime/kernel_ops/binary.ts, or here).
//
// ── The weight matrix view (int4, ternary) ───────────────────────────────────────────────────
// A dense weight W of shape `shape` (attribute) is seen as the matrix [shape[0], Π shape[1:]].
// Attribute `axis` ∈ {0, 1} is the matrix axis the reduction K runs along; the other axis
// enumerates the output channels ("rows"):
//   Conv W [Cout, Cin/g, kh, kw]:  axis 1, rows = Cout, K = Cin/g·kh·kw (contiguous, OIHW order)
//   Gemm B [N, K] (transB = 1):    axis 1, rows = N,    K = K
//   Gemm B [K, N], MatMul B [K, N]: axis 0, rows = N,   K = K (element (r, k) is B[k][r])
// Everything below is stored row by row, r = 0..rows-1.
//
// ── ai.sqz.DequantizeInt4(packed: uint8, scales: float32, zero_points?: uint8) → W float32 ──
// Attributes: shape (ints), axis (int, 0|1), block_size (int, even; the passes use 32/64/128).
// Each row's K values are cut into nb = ceil(K / B) blocks of B = block_size; block b = r·nb + j
// covers k ∈ [j·B, j·B + B). Like ggml's block_q4_0, but as three parallel tensors (ONNX
// tensors have one dtype each) instead of an array of structs:
//
//   struct block_q4 {       // logical block b
//     f32 d;                // scales[b]                        scales: float32 [rows, nb]
//     u4  zp;               // nibble b of zero_points           zero_points: uint8 [ceil(rows·nb/2)]
//                           //   (absent: symmetric, zp = 8)
//     u8  qs[B/2];          // packed[b·B/2 .. b·B/2 + B/2)      packed: uint8 [rows, nb·B/2]
//   };
//   value i of a block: q = (qs[i >> 1] >> (4·(i & 1))) & 15   (two per byte, low nibble first —
//                     not ggml's split halves); nibble b of zero_points likewise.
//   w = f32((q − zp) · d)
// Symmetric (what the int4 pass writes without zero points): q − 8 ∈ [−7, 7], d = max|w| / 7,
// so the code 0 (−8) is never written (but decodes as −8·d). Asymmetric: q ∈ [0, 15],
// d = (max(w, 0) − min(w, 0)) / 15, zp = round(−min / d). Rounding is half to even. Positions
// past K in a row's last block hold q = zp and are not part of W.
//
// ── ai.sqz.DequantizeTernary(codes: uint8, alpha: float32) → W float32 ─────────────────────
// Attributes: shape (ints), axis (int, 0|1). TWN (Li & Liu 2016): w = α[r]·t, t ∈ {−1, 0, +1}.
//   codes: uint8 [rows, ceil(K/4)], four 2-bit codes per byte, LSB first: value k of row r is
//          (codes[r][k >> 2] >> (2·(k & 3))) & 3, with 00 = 0, 01 = +1, 11 = −1 (10 is invalid);
//          codes past K are 00.
//   alpha: float32 [rows], the scale of each output channel.
//
// ── Binary weights (ai.sqz.BinaryConv, ai.sqz.BinaryGemm) ──────────────────────────────────
// w_bits: uint8 [Cout, ceil(K/8)], row o = the K sign bits of output channel o:
//   bit k of a row is bit (k & 7) of byte (k >> 3) (LSB first); 1 = −1 (w < 0), 0 = +1
//   (w ≥ 0: sign(0) = +1); bits past K are 0. The bit convention of kernels/pack/pack_bin.ts.
//   K order: BinaryGemm k = 0..K-1; BinaryConv k = (ky·kw + kx)·(Cin/group) + ci, the (ky, kx, c)
//   im2col order of the NHWC kernels (kernels/conv/conv.ts). The kernels' packed form also aligns
//   each tap to 64 bits, rows to 128-bit words and interleaves four channels per panel; the
//   runtime builds it at load, the file keeps byte-aligned rows (small Cin pays no padding).
//
// ai.sqz.BinaryConv(x: float32 [N, C, H, W], w_bits, alpha: float32 [Cout], bias?: float32 [Cout])
//   → y float32 [N, Cout, OH, OW]. Attributes: weight_shape [Cout, C/group, kh, kw] (required),
//   kernel_shape (optional, must equal [kh, kw]), strides, pads, dilations, group, auto_pad as
//   ONNX Conv (2-D only).
//     acc[n, o, oy, ox] = Σ_{ci, ky, kx} s(x[n, g·C/group + ci, oy·sh − pt + ky·dh, ox·sw − pl + kx·dw])
//                                        · s_w[o, ci, ky, kx]
//     g = ⌊o / (Cout/group)⌋, the output channel's group
//     s(v) = v < 0 ? −1 : +1   (sign(0) = sign(−0) = sign(NaN) = +1); taps in the padding read +1
//     ("one-padding", as the binary kernels and Larq Compute Engine do — not zero padding)
//     y = f32(f32(f32(acc) · alpha[o]) + bias[o])   (f32 multiply, then f32 add: no FMA)
// ai.sqz.BinaryGemm(x: float32 [..., K], w_bits, alpha: float32 [N], bias?: float32 [N])
//   → y float32 [..., N]. Attribute weight_shape [N, K] (required).
//     y[m, n] = f32(f32(f32(Σ_k s(x[m, k])·s_w[n, k]) · alpha[n]) + bias[n])
// A fused clamp (attributes activation_min / activation_max) is applied by the executor for
// these TypeScript ops and by the kernel's output stage for the Wasm ops.
import type { Node } from "../graph/ir.ts";
import type { Tensor } from "../graph/tensor.ts";
import type { OpImpl } from "./types.ts";
import { attrInt, attrInts } from "./attrs.ts";
import { checkDims } from "./tensor_util.ts";
import { ndWindow } from "./conv_nd.ts";
import { ModelError, ShapeError } from "../errors.ts";

/** DequantizeInt4's zero points (MatMulNBits' layout: one nibble per block over all rows, repacked per row, ceil(nb/2) bytes a row). */
export function int4ZeroPointsPerRow(zp: Uint8Array, rows: number, nb: number): Uint8Array {
  const stride = Math.ceil(nb / 2), out = new Uint8Array(rows * stride);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < nb; j++) {
      const b = r * nb + j, q = (zp[b >> 1] >> ((b & 1) << 2)) & 15;
      out[r * stride + (j >> 1)] |= q << ((j & 1) << 2);
    }
  }
  return out;
}

function where(node: Node): string {
  return `node '${node.name}' (${node.op})`;
}

function requiredInts(node: Node, name: string): number[] {
  const v = attrInts(node, name);
  if (v === undefined) throw new ModelError(`${where(node)}: attribute '${name}' is required`);
  return v;
}

function requiredInt(node: Node, name: string): number {
  if (node.attrs[name] === undefined) {
    throw new ModelError(`${where(node)}: attribute '${name}' is required`);
  }
  return attrInt(node, name, 0);
}

function expectTensor(
  node: Node,
  t: Tensor | undefined,
  what: string,
  type: string,
  count: number,
): Tensor {
  if (!t) throw new ModelError(`${where(node)}: input '${what}' is missing`);
  if (t.type !== type) {
    throw new ModelError(`${where(node)}: '${what}' must be ${type}, got ${t.type}`);
  }
  if (t.data.length !== count) {
    throw new ModelError(
      `${where(node)}: '${what}' has ${t.data.length} elements, the format needs ${count}`,
    );
  }
  return t;
}

/** The matrix view of a dense weight (see the header): rows, K, and where (r, k) lives. */
export interface WeightView {
  shape: number[];
  axis: 0 | 1;
  rows: number;
  k: number;
  /** Flat index in the dense tensor of element k of row r is r·rowStride + k·kStride. */
  rowStride: number;
  kStride: number;
}

/** The matrix view of `shape` blocked along `axis`; throws ShapeError for impossible shapes. */
export function weightView(shape: readonly number[], axis: number): WeightView {
  if (shape.length < 1) throw new ShapeError("a weight needs at least one dimension");
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 1) {
      throw new ShapeError(`weight shape [${shape}] must have positive integer dims`);
    }
  }
  checkDims(shape, "float32", "weight");
  if (axis !== 0 && axis !== 1) throw new ShapeError(`axis must be 0 or 1, got ${axis}`);
  const r0 = shape[0], cols = shape.slice(1).reduce((a, b) => a * b, 1);
  return axis === 1
    ? { shape: [...shape], axis, rows: r0, k: cols, rowStride: cols, kStride: 1 }
    : { shape: [...shape], axis, rows: cols, k: r0, rowStride: 1, kStride: cols };
}

function nodeView(node: Node): WeightView {
  const shape = requiredInts(node, "shape");
  try {
    return weightView(shape, requiredInt(node, "axis"));
  } catch (e) {
    if (e instanceof ShapeError) throw new ModelError(`${where(node)}: ${e.message}`);
    throw e;
  }
}

/** Nibble i of a packed uint4 array (low nibble first). */
export function nibble(data: Uint8Array, i: number): number {
  return (data[i >> 1] >> ((i & 1) << 2)) & 15;
}

/** Geometry of an int4 layer: blocks per row and bytes of each tensor. */
export function int4Sizes(rows: number, k: number, blockSize: number) {
  const nb = Math.ceil(k / blockSize);
  return {
    blocksPerRow: nb,
    packedBytes: rows * nb * (blockSize / 2),
    scales: rows * nb,
    zeroPointBytes: Math.ceil((rows * nb) / 2),
  };
}

const dequantizeInt4: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const v = nodeView(node);
  const bs = requiredInt(node, "block_size");
  if (!Number.isSafeInteger(bs) || bs < 2 || bs % 2 !== 0 || bs > 1 << 20) {
    throw new ModelError(`${where(node)}: block_size must be a positive even integer, got ${bs}`);
  }
  const sz = int4Sizes(v.rows, v.k, bs);
  const packed = expectTensor(node, inputs[0], "packed", "uint8", sz.packedBytes)
    .data as Uint8Array;
  const scales = expectTensor(node, inputs[1], "scales", "float32", sz.scales).data as Float32Array;
  const zps = inputs[2]
    ? expectTensor(node, inputs[2], "zero_points", "uint8", sz.zeroPointBytes).data as Uint8Array
    : undefined;
  for (let b = 0; b < scales.length; b++) {
    if (!Number.isFinite(scales[b])) {
      throw new ModelError(`${where(node)}: scale ${b} is ${scales[b]}`);
    }
  }
  const out = ctx.alloc(0, "float32", v.shape);
  const w = out.data as Float32Array;
  const nb = sz.blocksPerRow;
  for (let r = 0; r < v.rows; r++) {
    for (let j = 0; j < nb; j++) {
      const b = r * nb + j, d = scales[b], zp = zps ? nibble(zps, b) : 8;
      const k0 = j * bs, end = Math.min(bs, v.k - k0);
      let at = r * v.rowStride + k0 * v.kStride;
      for (let i = 0; i < end; i++, at += v.kStride) w[at] = (nibble(packed, b * bs + i) - zp) * d;
    }
  }
  return [out];
};

/** The value of a 2-bit ternary code, or NaN for the invalid code 10. */
const TERNARY = [0, 1, NaN, -1];

const dequantizeTernary: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const v = nodeView(node);
  const rowBytes = Math.ceil(v.k / 4);
  const codes = expectTensor(node, inputs[0], "codes", "uint8", v.rows * rowBytes)
    .data as Uint8Array;
  const alpha = expectTensor(node, inputs[1], "alpha", "float32", v.rows).data as Float32Array;
  const out = ctx.alloc(0, "float32", v.shape);
  const w = out.data as Float32Array;
  for (let r = 0; r < v.rows; r++) {
    const a = alpha[r];
    if (!Number.isFinite(a)) throw new ModelError(`${where(node)}: alpha[${r}] is ${a}`);
    for (let k = 0; k < rowBytes * 4; k++) {
      const t = TERNARY[(codes[r * rowBytes + (k >> 2)] >> ((k & 3) << 1)) & 3];
      if (Number.isNaN(t) || (k >= v.k && t !== 0)) {
        throw new ModelError(
          `${where(node)}: row ${r}, position ${k}: invalid ternary code ` +
            (k >= v.k ? "(codes past K must be 00)" : "10"),
        );
      }
      if (k < v.k) w[r * v.rowStride + k * v.kStride] = t * a;
    }
  }
  return [out];
};

/** Bytes of one row of K sign bits in the file format. */
export function binaryRowBytes(k: number): number {
  return Math.ceil(k / 8);
}

/** Sign bits (1 = negative) of rows×K values `at(r, k)`, in the w_bits layout. */
export function packSignBits(rows: number, k: number, at: (r: number, k: number) => number) {
  const rb = binaryRowBytes(k);
  const out = new Uint8Array(rows * rb);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < k; i++) if (at(r, i) < 0) out[r * rb + (i >> 3)] |= 1 << (i & 7);
  }
  return out;
}

/** w_bits rows → ±1 per (row, k), row-major [rows][K]; throws if padding bits are set. */
function unpackSignBits(node: Node, bits: Uint8Array, rows: number, k: number): Int8Array {
  const rb = binaryRowBytes(k);
  const out = new Int8Array(rows * k);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < k; i++) out[r * k + i] = (bits[r * rb + (i >> 3)] >> (i & 7)) & 1 ? -1 : 1;
    if (k % 8 && bits[r * rb + rb - 1] >> (k % 8)) {
      throw new ModelError(`${where(node)}: w_bits row ${r} has bits set past K = ${k}`);
    }
  }
  return out;
}

/** What a binary layer's constant inputs hold, checked against its attributes. */
export interface BinaryWeights {
  /** Output channels. */
  n: number;
  /** Bits per output channel. */
  k: number;
  /** ±1 per weight: BinaryConv OIHW [Cout][C/group][kh][kw], BinaryGemm [N][K]. */
  signs: Int8Array;
  alpha: Float32Array;
  bias?: Float32Array;
  /** BinaryConv only: [Cout, C/group, kh, kw] and group. */
  weightShape: number[];
  group: number;
}

/** Reads and checks w_bits / alpha / bias of an ai.sqz.BinaryConv or BinaryGemm node. */
export function readBinaryWeights(
  node: Node,
  inputs: readonly (Tensor | undefined)[],
): BinaryWeights {
  const ws = requiredInts(node, "weight_shape");
  const conv = node.op === "BinaryConv";
  if (ws.length !== (conv ? 4 : 2) || ws.some((d) => !Number.isSafeInteger(d) || d < 1)) {
    throw new ModelError(
      `${where(node)}: weight_shape must be ${
        conv ? "[Cout, C/group, kh, kw]" : "[N, K]"
      } of positive integers, got [${ws}]`,
    );
  }
  checkDims(ws, "float32", "weight");
  const n = ws[0], k = ws.slice(1).reduce((a, b) => a * b, 1);
  const group = conv ? attrInt(node, "group", 1) : 1;
  if (!Number.isSafeInteger(group) || group < 1 || n % group !== 0) {
    throw new ModelError(`${where(node)}: ${n} output channels do not split into ${group} groups`);
  }
  if (conv) {
    const ks = attrInts(node, "kernel_shape");
    if (ks && (ks.length !== 2 || ks[0] !== ws[2] || ks[1] !== ws[3])) {
      throw new ModelError(
        `${where(node)}: kernel_shape [${ks}] does not match weight_shape [${ws}]`,
      );
    }
  }
  const rb = binaryRowBytes(k);
  const bits = expectTensor(node, inputs[1], "w_bits", "uint8", n * rb).data as Uint8Array;
  const alpha = expectTensor(node, inputs[2], "alpha", "float32", n).data as Float32Array;
  const bias = inputs[3]
    ? expectTensor(node, inputs[3], "bias", "float32", n).data as Float32Array
    : undefined;
  const rowsK = unpackSignBits(node, bits, n, k);
  let signs = rowsK;
  if (conv) {
    // File order (ky, kx, ci) → OIHW.
    const [, cg, kh, kw] = ws;
    signs = new Int8Array(n * k);
    for (let o = 0; o < n; o++) {
      for (let ci = 0; ci < cg; ci++) {
        for (let ky = 0; ky < kh; ky++) {
          for (let kx = 0; kx < kw; kx++) {
            signs[((o * cg + ci) * kh + ky) * kw + kx] = rowsK[o * k + (ky * kw + kx) * cg + ci];
          }
        }
      }
    }
  }
  return { n, k, signs, alpha, bias, weightShape: ws, group };
}

/** sign with sign(0) = +1, as every binary kernel (reference.ts binarize). */
const sgn = (v: number): number => (v < 0 ? -1 : 1);

/** The f32 output stage of the binary kernels: f32(f32(f32(acc)·α) + β). */
export function binaryOutput(acc: number, alpha: number, bias: number): number {
  return Math.fround(Math.fround(Math.fround(acc) * alpha) + bias);
}

function floatInput(node: Node, x: Tensor | undefined): Tensor {
  if (!x) throw new ModelError(`${where(node)}: input 'x' is missing`);
  if (x.type !== "float32") {
    throw new ShapeError(`${where(node)}: x must be float32, got ${x.type}`);
  }
  return x;
}

const binaryConv: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const x = floatInput(node, inputs[0]);
  const b = readBinaryWeights(node, inputs);
  const [cout, cg, kh, kw] = b.weightShape;
  if (x.dims.length !== 4) {
    throw new ShapeError(`${where(node)}: x must be 4-D NCHW, got [${x.dims}]`);
  }
  const [batch, c, h, w] = x.dims;
  if (c !== cg * b.group) {
    throw new ShapeError(
      `${where(node)}: x has ${c} channels, weight_shape [${b.weightShape}] with group ` +
        `${b.group} expects ${cg * b.group}`,
    );
  }
  const win = ndWindow(node, [h, w], [kh, kw]);
  const [oh, ow] = win.outDims, [sh, sw] = win.strides, [dh, dw] = win.dilations;
  const [pt, pl] = win.head;
  const out = ctx.alloc(0, "float32", [batch, cout, oh, ow]);
  const y = out.data as Float32Array, xd = x.data as Float32Array;
  const og = cout / b.group;
  for (let n = 0; n < batch; n++) {
    for (let o = 0; o < cout; o++) {
      const c0 = Math.floor(o / og) * cg, alpha = b.alpha[o], bias = b.bias ? b.bias[o] : 0;
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          let acc = 0;
          for (let ci = 0; ci < cg; ci++) {
            const plane = (n * c + c0 + ci) * h;
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * sh - pt + ky * dh;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * sw - pl + kx * dw;
                const s = iy >= 0 && iy < h && ix >= 0 && ix < w
                  ? sgn(xd[(plane + iy) * w + ix])
                  : 1;
                acc += s * b.signs[((o * cg + ci) * kh + ky) * kw + kx];
              }
            }
          }
          y[((n * cout + o) * oh + oy) * ow + ox] = binaryOutput(acc, alpha, bias);
        }
      }
    }
  }
  return [out];
};

const binaryGemm: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const x = floatInput(node, inputs[0]);
  const b = readBinaryWeights(node, inputs);
  const { n, k } = b;
  if (x.dims.length < 1 || x.dims[x.dims.length - 1] !== k) {
    throw new ShapeError(`${where(node)}: x is [${x.dims}], the weights expect K = ${k}`);
  }
  const lead = x.dims.slice(0, -1), m = lead.reduce((p, d) => p * d, 1);
  const out = ctx.alloc(0, "float32", [...lead, n]);
  const y = out.data as Float32Array, xd = x.data as Float32Array;
  const sx = new Int8Array(k);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) sx[p] = sgn(xd[i * k + p]);
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let p = 0; p < k; p++) acc += sx[p] * b.signs[j * k + p];
      y[i * n + j] = binaryOutput(acc, b.alpha[j], b.bias ? b.bias[j] : 0);
    }
  }
  return [out];
};

/** ai.sqz decoders and ops for int4, ternary and binary layers (formats in this file). */
export const SQZ_LOWBIT_OPS: Record<string, OpImpl> = {
  "ai.sqz.DequantizeInt4": dequantizeInt4,
  "ai.sqz.DequantizeTernary": dequantizeTernary,
  "ai.sqz.BinaryConv": binaryConv,
  "ai.sqz.BinaryGemm": binaryGemm,
};
