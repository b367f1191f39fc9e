// int4 weight-only quantization: each Conv / Gemm / MatMul weight whose method is "int4" becomes
// an ai.sqz.DequantizeInt4 node over packed nibbles and per-block scales (format: the header of
// src/ops/sqz_lowbit.ts; blocks run along K, like ggml's block_q4_0). The engine folds the
// decoder at load, so the layer then runs on the f32 kernels: int4 here saves storage and
// download, not arithmetic.
//
// With recipe.int4.format = "matmulnbits" each MatMul / Gemm becomes onnxruntime's contrib op
// com.microsoft.MatMulNBits instead (opset com.microsoft 1; sqz runs it too, ops/
// contrib_matmulnbits.ts), so the artifact is int4 in onnxruntime as well:
//   MatMulNBits(A, B, scales, zero_points?, , bias?) attrs K, N, bits = 4, block_size
//   B uint8 [N, nb, B/2]: Wᵀ row n (output column n of the MatMul weight W [K, N]), its K values
//     in nb = ceil(K / B) blocks, two codes per byte, low nibble first — the same bytes as the
//     packed tensor of DequantizeInt4 with the axis-0 view, reshaped;
//   scales float32 [N·nb]; zero_points (asymmetric only) uint8 [N·ceil(nb/2)], packed per row
//     (a row with an odd nb ends in half a byte), absent = 8 as the symmetric codes are stored;
//   Gemm: alpha folded into the weight before quantizing, beta·C (one value per output column,
//     or a scalar) into bias.
// Layers it cannot express (Conv; Gemm with transA = 1 or a C that is not one value per column;
// A known to be 1-D) are an ArgumentError listing them, raised before the graph is touched.
//
//   symmetric:  d = max|w| / 7 per block, q = clamp(round(w / d), −7, 7), stored as q + 8
//   asymmetric: d = (max(w, 0) − min(w, 0)) / 15, zp = clamp(round(−min / d), 0, 15),
//               q = clamp(round(w / d) + zp, 0, 15)
// round is half to even, computed in f64 from the f32 d; decoding gives f32((q − zp)·d), within
// d/2 of w (0 stays exact: the range always holds it).
//
// This file also holds the helpers the three low-bit passes (int4, ternary.ts, binary.ts) share:
// finding the weight layers, naming and adding constants, swapping a weight for a decoder.
import { Graph, Node, type Value } from "../graph/ir.ts";
import type { Tensor } from "../graph/tensor.ts";
import { elementCount } from "../graph/tensor.ts";
import { type Method, methodFor, type Recipe } from "./recipe.ts";
import { MS_DOMAIN } from "../ops/contrib_matmulnbits.ts";
import { type CompressPass, type LayerReport, type PassResult, SQZ_DOMAIN } from "./types.ts";
import { int4Sizes, int4ZeroPointsPerRow, type WeightView, weightView } from "../ops/sqz_lowbit.ts";
import { roundHalfEven } from "../ops/quant.ts";
import { ArgumentError } from "../errors.ts";

// ── Shared by the low-bit passes ─────────────────────────────────────────────────────────────

/** Conv, Gemm and MatMul nodes of the default domain, in graph order. */
export function layerNodes(g: Graph): Node[] {
  return g.nodes.filter((n) =>
    (!n.domain || n.domain === "ai.onnx") && ["Conv", "Gemm", "MatMul"].includes(n.op)
  );
}

/** A layer with a constant float32 weight (input 1) and its matrix view. */
export interface WeightLayer {
  node: Node;
  weight: Value;
  tensor: Tensor & { data: Float32Array };
  view: WeightView;
}

/** The weight of a Conv / Gemm / MatMul node, or why it cannot be compressed. */
export function weightLayer(node: Node): WeightLayer | string {
  const weight = node.inputs[1];
  const t = weight?.constant;
  if (!weight || !t) return "its weight is not a constant";
  if (t.type !== "float32") return `its weight is ${t.type}, not float32`;
  if (t.dims.length === 0 || t.dims.some((d) => d < 1)) return `its weight is [${t.dims}]`;
  let axis: 0 | 1;
  if (node.op === "Conv") {
    if (t.dims.length < 3) return `its weight is ${t.dims.length}-D`;
    axis = 1;
  } else {
    if (t.dims.length !== 2) return `its weight is ${t.dims.length}-D, not a matrix`;
    const transB = node.op === "Gemm" && node.attrs.transB === 1;
    axis = transB ? 1 : 0;
  }
  return {
    node,
    weight,
    tensor: t as Tensor & { data: Float32Array },
    view: weightView(t.dims, axis),
  };
}

/** A value name not yet in the graph, derived from `base`. */
export function freshName(g: Graph, base: string): string {
  let name = base;
  for (let i = 1; g.values.has(name); i++) name = `${base}${i}`;
  return name;
}

/** Adds an initializer under a fresh name. */
export function addConstant(g: Graph, base: string, t: Tensor): Value {
  const v = g.value(freshName(g, base));
  v.constant = t;
  v.type = t.type;
  v.shape = [...t.dims];
  return v;
}

/** Declares the ai.sqz domain the passes' nodes live in. */
export function useSqzDomain(g: Graph): void {
  if (!g.opsets.has(SQZ_DOMAIN)) g.opsets.set(SQZ_DOMAIN, 1);
}

/** Forgets a constant nobody reads any more (a replaced float weight). */
export function dropIfDead(g: Graph, v: Value | undefined): void {
  if (!v || v.consumers.length || v.producer || g.outputs.includes(v) || g.inputs.includes(v)) {
    return;
  }
  if (g.values.get(v.name) === v) g.values.delete(v.name);
}

/**
 * Makes `layer`'s weight the output of a decoder node `op(inputs)`. A weight read only by this
 * layer keeps its name and becomes the decoder's output; a shared one stays for its other
 * readers and the layer reads a new value. `decoded` reuses one decoder per weight.
 */
export function replaceWeight(
  g: Graph,
  layer: WeightLayer,
  op: string,
  inputs: Value[],
  attrs: Node["attrs"],
  decoded: Map<Value, Value>,
): void {
  const { node, weight } = layer;
  let out = decoded.get(weight);
  if (!out) {
    const shared = weight.consumers.some((n) => n !== node) || g.outputs.includes(weight);
    out = shared ? g.value(freshName(g, `${weight.name}::${op}`)) : weight;
    if (!shared) weight.constant = undefined;
    out.type = "float32";
    out.shape = [...layer.tensor.dims];
    g.addNode(new Node(freshName(g, `${node.name}::${op}`), op, SQZ_DOMAIN, inputs, [out], attrs));
    decoded.set(weight, out);
  }
  if (out !== weight) {
    weight.consumers.splice(weight.consumers.indexOf(node), 1);
    node.inputs[1] = out;
    out.consumers.push(node);
  }
}

/** Checks the parts of a recipe every low-bit pass reads. */
export function checkPassArgs(g: Graph, recipe: Recipe, pass: string): void {
  if (!(g instanceof Graph)) throw new ArgumentError(`${pass}: expected a Graph`);
  if (typeof recipe !== "object" || recipe === null) {
    throw new ArgumentError(`${pass}: expected a recipe (see parseRecipe)`);
  }
  if (typeof recipe.layers !== "object" || recipe.layers === null) {
    throw new ArgumentError(`${pass}: recipe.layers must be an object`);
  }
}

/** Layers the recipe gives to `method`, split into compressible ones and skip notes. */
export function layersFor(
  g: Graph,
  recipe: Recipe,
  method: Method,
): { layers: WeightLayer[]; notes: string[] } {
  const layers: WeightLayer[] = [], notes: string[] = [];
  for (const node of layerNodes(g)) {
    if (methodFor(recipe, node.name, node.op) !== method) continue;
    // Activation × activation (attention's Q·Kᵀ, P·V) is no layer: passed over silently, as
    // int8 does, unless the recipe named the node itself.
    const w = node.inputs[1];
    if (w && !w.constant && !recipe.layers[node.name]) continue;
    const l = weightLayer(node);
    if (typeof l === "string") notes.push(`${method}: '${node.name}' stays float: ${l}`);
    else layers.push(l);
  }
  return { layers, notes };
}

/** Relative RMS error of a reconstruction, for the layer notes. */
export function relRms(w: Float32Array, approx: (i: number) => number): number {
  let num = 0, den = 0;
  for (let i = 0; i < w.length; i++) {
    num += (w[i] - approx(i)) ** 2;
    den += w[i] ** 2;
  }
  return den > 0 ? Math.sqrt(num / den) : 0;
}

// ── int4 ─────────────────────────────────────────────────────────────────────────────────────

export interface Int4Weights {
  /** uint8 [rows, nb·B/2]: two codes per byte, low nibble first. */
  packed: Uint8Array;
  /** float32 [rows, nb]. */
  scales: Float32Array;
  /** Asymmetric only: uint4 zero point per block, two per byte, low nibble first. */
  zeroPoints?: Uint8Array;
  blocksPerRow: number;
}

/** Quantizes a dense float weight to the DequantizeInt4 format (see the file header). */
export function encodeInt4(
  w: Float32Array,
  view: WeightView,
  blockSize: number,
  symmetric: boolean,
): Int4Weights {
  if (!Number.isSafeInteger(blockSize) || blockSize < 2 || blockSize % 2 !== 0) {
    throw new ArgumentError(`int4: block size must be a positive even integer, got ${blockSize}`);
  }
  if (w.length !== elementCount(view.shape)) {
    throw new ArgumentError(`int4: ${w.length} weights for shape [${view.shape}]`);
  }
  const sz = int4Sizes(view.rows, view.k, blockSize), nb = sz.blocksPerRow;
  const packed = new Uint8Array(sz.packedBytes);
  const scales = new Float32Array(sz.scales);
  const zeroPoints = symmetric ? undefined : new Uint8Array(sz.zeroPointBytes);
  const set = (a: Uint8Array, i: number, q: number) => (a[i >> 1] |= q << ((i & 1) << 2));
  const at = (r: number, k: number) => w[r * view.rowStride + k * view.kStride];
  for (let r = 0; r < view.rows; r++) {
    for (let j = 0; j < nb; j++) {
      const b = r * nb + j, k0 = j * blockSize, end = Math.min(blockSize, view.k - k0);
      let lo = 0, hi = 0;
      for (let i = 0; i < end; i++) {
        const v = at(r, k0 + i);
        if (!Number.isFinite(v)) {
          throw new ArgumentError(`int4: weight (${r}, ${k0 + i}) of the matrix view is ${v}`);
        }
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      let d: number, zp: number, qlo: number, qhi: number;
      if (symmetric) {
        d = Math.fround(Math.max(-lo, hi) / 7);
        [zp, qlo, qhi] = [8, 1, 15];
      } else {
        d = Math.fround((hi - lo) / 15);
        zp = d > 0 ? Math.min(15, Math.max(0, roundHalfEven(-lo / d))) : 0;
        [qlo, qhi] = [0, 15];
        set(zeroPoints!, b, zp);
      }
      scales[b] = d;
      for (let i = 0; i < blockSize; i++) {
        const q = i < end && d > 0
          ? Math.min(qhi, Math.max(qlo, roundHalfEven(at(r, k0 + i) / d) + zp))
          : zp;
        set(packed, b * blockSize + i, q);
      }
    }
  }
  return { packed, scales, zeroPoints, blocksPerRow: nb };
}

/** A MatMul / Gemm as MatMulNBits sees it: its weight as [K, N] view, alpha, bias per column. */
interface NBitsLayer {
  layer: WeightLayer;
  k: number;
  n: number;
  /** Gemm's alpha (folded into the weight before quantizing). */
  alpha: number;
  /** Gemm's beta·C per output column, when it has a C. */
  bias?: Float32Array;
}

/** How a layer maps onto com.microsoft.MatMulNBits, or why it cannot. */
function nbitsLayer(l: WeightLayer): NBitsLayer | string {
  const { node, tensor } = l;
  if (node.op === "Conv") return "a Conv has no MatMulNBits form";
  if (tensor.dims.length !== 2) return `its weight is ${tensor.dims.length}-D, not a matrix`;
  const a = node.inputs[0];
  if (a?.shape && a.shape.length < 2) return `its input is ${a.shape.length}-D`;
  if (a?.type && a.type !== "float32") return `its input is ${a.type}, not float32`;
  const k = l.view.k, n = l.view.rows;
  if (node.op === "MatMul") return { layer: l, k, n, alpha: 1 };
  if ((node.attrs.transA ?? 0) !== 0) return "Gemm with transA = 1";
  const alpha = typeof node.attrs.alpha === "number" ? node.attrs.alpha : 1;
  const beta = typeof node.attrs.beta === "number" ? node.attrs.beta : 1;
  const c = node.inputs[2];
  if (!c || beta === 0) return { layer: l, k, n, alpha };
  const t = c.constant;
  if (!t || t.type !== "float32") return `its C '${c.name}' is not a float32 constant`;
  const perColumn = (t.dims.length === 1 && t.dims[0] === n) ||
    (t.dims.length === 2 && t.dims[0] === 1 && t.dims[1] === n);
  const scalar = t.data.length === 1 && t.dims.length <= 2;
  if (!perColumn && !scalar) return `its C [${t.dims}] is not one value per output column (${n})`;
  const src = t.data as Float32Array;
  const bias = Float32Array.from({ length: n }, (_, j) => beta * src[scalar ? 0 : j]);
  return { layer: l, k, n, alpha, bias };
}

/** Decodes the DequantizeInt4 format into the dense layout of `view` (the decoder's arithmetic). */
function decodeInt4(q: Int4Weights, view: WeightView, bs: number, out: Float32Array): number {
  const nb = q.blocksPerRow;
  let nonzeros = 0;
  for (let r = 0; r < view.rows; r++) {
    for (let k = 0; k < view.k; k++) {
      const b = r * nb + Math.floor(k / bs), i = b * bs + (k % bs);
      const zp = q.zeroPoints ? (q.zeroPoints[b >> 1] >> ((b & 1) << 2)) & 15 : 8;
      const at = r * view.rowStride + k * view.kStride;
      out[at] = (((q.packed[i >> 1] >> ((i & 1) << 2)) & 15) - zp) * q.scales[b];
      if (out[at] !== 0) nonzeros++;
    }
  }
  return nonzeros;
}

/** int4 weight-only quantization of every layer whose method is "int4". */
export const int4Pass: CompressPass = (g: Graph, recipe: Recipe): PassResult => {
  checkPassArgs(g, recipe, "int4");
  const bs = recipe.int4?.blockSize, symmetric = recipe.int4?.symmetric;
  const format = recipe.int4?.format ?? "sqz";
  if (bs !== 32 && bs !== 64 && bs !== 128) {
    throw new ArgumentError(`int4: recipe.int4.blockSize must be 32, 64 or 128, got ${bs}`);
  }
  if (typeof symmetric !== "boolean") {
    throw new ArgumentError("int4: recipe.int4.symmetric must be true or false");
  }
  if (format !== "sqz" && format !== "matmulnbits") {
    throw new ArgumentError(
      `int4: recipe.int4.format must be "sqz" or "matmulnbits", got ${JSON.stringify(format)}`,
    );
  }
  const { layers, notes } = layersFor(g, recipe, "int4");
  // MatMulNBits: every layer must fit before anything changes.
  const nbits = new Map<WeightLayer, NBitsLayer>();
  if (format === "matmulnbits") {
    const refused: string[] = [];
    for (const l of layers) {
      const m = nbitsLayer(l);
      if (typeof m === "string") refused.push(`'${l.node.name}' (${l.node.op}): ${m}`);
      else nbits.set(l, m);
    }
    for (const n of notes) refused.push(n.replace(/^int4: /, "").replace(" stays float", ""));
    if (refused.length) {
      throw new ArgumentError(
        `int4 format "matmulnbits" cannot take ${refused.join("; ")}: give ` +
          `${refused.length > 1 ? "these layers" : "this layer"} another method in ` +
          `recipe.layers (e.g. { "Conv": { "method": "int8" } }) or use the "sqz" format`,
      );
    }
  }
  const reports: LayerReport[] = [];
  const decoded = new Map<Value, Value>();
  // MatMulNBits constants per (weight, view, alpha): a weight read by several layers is stored
  // once.
  const packedOnce = new Map<string, Value[]>();
  for (const l of layers) {
    const { view, weight } = l;
    const nb = nbits.get(l);
    const w = nb && nb.alpha !== 1 ? l.tensor.data.map((x) => nb.alpha * x) : l.tensor.data;
    const q = encodeInt4(w, view, bs, symmetric);
    const blocks = q.blocksPerRow;
    const u8 = (data: Uint8Array, dims: number[]): Tensor => ({ type: "uint8", dims, data });
    // Decode once here for the report: the same arithmetic as the decoder op.
    const approx = new Float32Array(w.length);
    const nonzeros = decodeInt4(q, view, bs, approx);
    const err = relRms(w, (i) => approx[i]);
    let bytesAfter = q.packed.byteLength + q.scales.byteLength + (q.zeroPoints?.byteLength ?? 0);
    if (nb) {
      const key = `${weight.name}\u0000${view.axis}\u0000${nb.alpha}`;
      let consts = packedOnce.get(key);
      if (!consts) {
        consts = [
          addConstant(g, `${weight.name}::nbits`, u8(q.packed, [nb.n, blocks, bs / 2])),
          addConstant(g, `${weight.name}::nbits_scale`, {
            type: "float32",
            dims: [nb.n * blocks],
            data: q.scales,
          }),
        ];
        if (q.zeroPoints) {
          const zp = int4ZeroPointsPerRow(q.zeroPoints, nb.n, blocks);
          consts.push(addConstant(g, `${weight.name}::nbits_zero`, u8(zp, [zp.length])));
          bytesAfter += zp.byteLength - q.zeroPoints.byteLength;
        }
        packedOnce.set(key, consts);
      }
      replaceWithNBits(g, nb, consts, bs);
      if (nb.bias) bytesAfter += nb.bias.byteLength;
    } else if (!decoded.has(weight)) {
      const inputs = [
        addConstant(g, `${weight.name}::int4`, u8(q.packed, [view.rows, (blocks * bs) / 2])),
        addConstant(g, `${weight.name}::int4_scale`, {
          type: "float32",
          dims: [view.rows, blocks],
          data: q.scales,
        }),
      ];
      if (q.zeroPoints) {
        inputs.push(
          addConstant(g, `${weight.name}::int4_zero`, u8(q.zeroPoints, [q.zeroPoints.length])),
        );
      }
      replaceWeight(g, l, "DequantizeInt4", inputs, {
        shape: [...view.shape],
        axis: view.axis,
        block_size: bs,
      }, decoded);
    } else {
      // A weight another layer already decodes: that decoder serves this layer too.
      replaceWeight(g, l, "DequantizeInt4", [], {}, decoded);
    }
    reports.push({
      name: l.node.name,
      op: l.node.op,
      method: nb ? "int4 (MatMulNBits)" : "int4",
      params: w.length,
      nonzeros,
      bytesBefore: w.byteLength +
        (nb?.bias && l.node.inputs[2]?.constant ? l.node.inputs[2].constant.data.byteLength : 0),
      bytesAfter,
      notes: [
        `blocks of ${bs} along K = ${view.k}, ${symmetric ? "symmetric" : "asymmetric"}`,
        `relative RMS weight error ${err.toExponential(2)}`,
        ...(nb && nb.alpha !== 1 ? [`Gemm alpha ${nb.alpha} folded into the weights`] : []),
      ],
    });
    dropIfDead(g, weight);
  }
  if (reports.length) {
    if (format === "matmulnbits") {
      if (!g.opsets.has(MS_DOMAIN)) g.opsets.set(MS_DOMAIN, 1);
      notes.unshift(
        `int4: ${reports.length} layer(s) as com.microsoft.MatMulNBits (4 bits, blocks of ${bs} ` +
          `along K, ${symmetric ? "symmetric" : "asymmetric"}), which onnxruntime runs too`,
      );
    } else {
      useSqzDomain(g);
      notes.unshift(
        `int4: ${reports.length} layer(s), weight-only (decoded to float32 at load, run on the f32 kernels)`,
      );
    }
  }
  g.topoSort();
  return { layers: reports, notes };
};

/**
 * Replaces a MatMul / Gemm by MatMulNBits(A, B, scales, zero_points?, , bias?) over `consts`
 * ([B, scales, zero_points?]); the node keeps its name and output.
 */
function replaceWithNBits(g: Graph, nb: NBitsLayer, consts: Value[], bs: number): void {
  const old = nb.layer.node;
  const [b, scales, zp] = consts;
  const bias = nb.bias
    ? addConstant(g, `${old.inputs[2]!.name}::nbits_bias`, {
      type: "float32",
      dims: [nb.n],
      data: nb.bias,
    })
    : undefined;
  const inputs = [old.inputs[0], b, scales, zp, ...(bias ? [undefined, bias] : [])];
  while (inputs.length > 3 && !inputs[inputs.length - 1]) inputs.pop();
  const replaced = old.inputs.slice(1);
  g.removeNode(old);
  for (const v of replaced) dropIfDead(g, v);
  const y = old.outputs[0];
  g.addNode(
    new Node(old.name, "MatMulNBits", MS_DOMAIN, inputs, [y], {
      K: nb.k,
      N: nb.n,
      bits: 4,
      block_size: bs,
    }),
  );
  // No shape rule knows the contrib op: its output keeps the shape the float layer had.
  y.type = "float32";
}
