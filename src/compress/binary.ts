// Binary layers (XNOR-Net, Rastegari et al. 2016): each Conv / Gemm / MatMul whose method is
// "binary" becomes an ai.sqz.BinaryConv / BinaryGemm that binarizes both operands:
//   weights:     sign(W) (sign(0) = +1), one bit each, α = mean|W| per output channel
//   activations: sign(x), at run time
//   y = α·(sign(x) ⊛ sign(W)) + bias
// The binary convolution pads with +1, not 0 (the kernels' one-padding), so a padded layer
// differs from the float one at the borders even before binarization. Formats and exact
// semantics: src/ops/sqz_lowbit.ts. With recipe.binary.keepFirstLast the first and last weight
// layers of the graph stay float (XNOR-Net's practice: the input image and the logits are the
// most sensitive); binaryKeptLayers names them so the int8 pass can quantize them instead.
//
// Without retraining this loses most of the accuracy of a float network: the pass is the
// storage and inference side of a binarized network, which has to be trained as one.
import { type Graph, Node, type Value } from "../graph/ir.ts";
import type { Tensor } from "../graph/tensor.ts";
import { methodFor, type Recipe } from "./recipe.ts";
import { type CompressPass, type LayerReport, type PassResult, SQZ_DOMAIN } from "./types.ts";
import { binaryRowBytes, packSignBits, type WeightView } from "../ops/sqz_lowbit.ts";
import {
  addConstant,
  checkPassArgs,
  dropIfDead,
  layerNodes,
  useSqzDomain,
  type WeightLayer,
  weightLayer,
} from "./int4.ts";
import { ArgumentError } from "../errors.ts";

export interface BinaryWeightsEncoded {
  /** uint8 [Cout, ceil(K/8)] sign bits (1 = negative), K in the file order. */
  bits: Uint8Array;
  /** mean|W| per output channel, float32 [Cout]. */
  alpha: Float32Array;
}

/**
 * Sign bits and α of a Gemm / MatMul weight (matrix view `view`, rows = output columns) or, with
 * `conv`, of an OIHW convolution weight (K in (ky, kx, ci) order).
 */
export function encodeBinary(
  w: Float32Array,
  view: WeightView,
  conv?: boolean,
): BinaryWeightsEncoded {
  const { rows, k } = view;
  let at: (r: number, i: number) => number;
  if (conv) {
    if (view.shape.length !== 4 || view.axis !== 1) {
      throw new ArgumentError(`binary: a convolution weight must be OIHW, got [${view.shape}]`);
    }
    const [, cg, kh, kw] = view.shape;
    at = (o, i) => {
      const tap = Math.floor(i / cg), ci = i % cg;
      return w[((o * cg + ci) * kh + Math.floor(tap / kw)) * kw + (tap % kw)];
    };
  } else {
    at = (r, i) => w[r * view.rowStride + i * view.kStride];
  }
  const alpha = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let i = 0; i < k; i++) {
      const v = at(r, i);
      if (!Number.isFinite(v)) {
        throw new ArgumentError(`binary: weight (${r}, ${i}) of the matrix view is ${v}`);
      }
      s += Math.abs(v);
    }
    alpha[r] = s / k;
  }
  return { bits: packSignBits(rows, k, at), alpha };
}

/** Weight layers in graph order: the candidates for first and last. */
function weightLayers(g: Graph): WeightLayer[] {
  return layerNodes(g).map(weightLayer).filter((l): l is WeightLayer => typeof l !== "string");
}

/**
 * Names of the layers the binary pass leaves float although the recipe makes them binary: the
 * first and last weight layers of the graph, when recipe.binary.keepFirstLast.
 */
export function binaryKeptLayers(g: Graph, recipe: Recipe): string[] {
  if (!recipe.binary?.keepFirstLast) return [];
  const all = weightLayers(g);
  const ends = new Set([all[0], all[all.length - 1]].filter((l) => l));
  return [...ends]
    .filter((l) => methodFor(recipe, l.node.name, l.node.op) === "binary")
    .map((l) => l.node.name);
}

/** Gemm's C as a per-column bias scaled by beta, or why it cannot be one. */
function gemmBias(node: Node, n: number): Float32Array | undefined | string {
  const c = node.inputs[2];
  if (!c) return undefined;
  const t = c.constant;
  if (!t || t.type !== "float32") return "its C is not a float32 constant";
  const rowLike = t.dims.length <= 1 || (t.dims.length === 2 && t.dims[0] === 1);
  if (!rowLike || (t.data.length !== 1 && t.data.length !== n)) {
    return `its C [${t.dims}] is not a per-column bias`;
  }
  const beta = typeof node.attrs.beta === "number" ? node.attrs.beta : 1;
  const src = t.data as Float32Array;
  return Float32Array.from({ length: n }, (_, j) => beta * src[src.length === 1 ? 0 : j]);
}

interface Plan {
  op: "BinaryConv" | "BinaryGemm";
  bias?: Float32Array;
  /** Gemm's alpha, folded into α. */
  scale: number;
  attrs: Node["attrs"];
}

/** How a layer becomes binary, or why it cannot. */
function plan(l: WeightLayer): Plan | string {
  const { node, tensor } = l;
  const x = node.inputs[0];
  if (!x) return "it has no input";
  if (x.type && x.type !== "float32") return `its input is ${x.type}, not float32`;
  if (node.op === "Conv") {
    if (tensor.dims.length !== 4) return "only 2-D convolutions are binarized";
    const [cout, cg, kh, kw] = tensor.dims;
    const b = node.inputs[2];
    if (b && (!b.constant || b.constant.type !== "float32" || b.constant.data.length !== cout)) {
      return "its bias is not a float32 constant of Cout values";
    }
    const attrs: Node["attrs"] = { weight_shape: [cout, cg, kh, kw], kernel_shape: [kh, kw] };
    for (const a of ["strides", "pads", "dilations", "group", "auto_pad"]) {
      if (node.attrs[a] !== undefined) attrs[a] = node.attrs[a];
    }
    return {
      op: "BinaryConv",
      bias: b?.constant?.data as Float32Array | undefined,
      scale: 1,
      attrs,
    };
  }
  const { rows: n, k } = l.view;
  let scale = 1, bias: Float32Array | undefined;
  if (node.op === "Gemm") {
    if (node.attrs.transA === 1) return "Gemm with transA = 1";
    scale = typeof node.attrs.alpha === "number" ? node.attrs.alpha : 1;
    if (!(scale > 0) || !Number.isFinite(scale)) return `Gemm alpha ${scale} is not positive`;
    const b = gemmBias(node, n);
    if (typeof b === "string") return b;
    bias = b;
  }
  return { op: "BinaryGemm", bias, scale, attrs: { weight_shape: [n, k] } };
}

/** Whether a value comes out of a Relu (directly or through a fused clamp at ≥ 0). */
function nonNegative(v: Value): boolean {
  const p = v.producer;
  if (!p) return false;
  const lo = p.attrs.activation_min;
  return p.op === "Relu" || (typeof lo === "number" && lo >= 0);
}

/** XNOR-Net binarization of every layer whose method is "binary". */
export const binaryPass: CompressPass = (g: Graph, recipe: Recipe): PassResult => {
  checkPassArgs(g, recipe, "binary");
  if (typeof recipe.binary?.keepFirstLast !== "boolean") {
    throw new ArgumentError("binary: recipe.binary.keepFirstLast must be true or false");
  }
  const notes: string[] = [], reports: LayerReport[] = [];
  const kept = new Set(binaryKeptLayers(g, recipe));
  for (const node of layerNodes(g)) {
    if (methodFor(recipe, node.name, node.op) !== "binary" || kept.has(node.name)) continue;
    const l = weightLayer(node);
    const p = typeof l === "string" ? l : plan(l);
    if (typeof l === "string" || typeof p === "string") {
      notes.push(`binary: '${node.name}' stays float: ${p}`);
      continue;
    }
    const enc = encodeBinary(l.tensor.data, l.view, p.op === "BinaryConv");
    const alpha = p.scale === 1 ? enc.alpha : enc.alpha.map((a) => p.scale * a);
    const cout = alpha.length;
    const c = (base: string, t: Tensor): Value => addConstant(g, `${node.name}::${base}`, t);
    const inputs: Value[] = [
      node.inputs[0]!,
      c("w_bits", {
        type: "uint8",
        dims: [cout, binaryRowBytes(l.view.k)],
        data: enc.bits,
      }),
      c("alpha", { type: "float32", dims: [cout], data: alpha }),
    ];
    // A Conv's own bias value is reused; a Gemm's C becomes beta·C per column.
    const ownBias = node.op === "Conv" ? node.inputs[2] : undefined;
    if (ownBias) inputs.push(ownBias);
    else if (p.bias) inputs.push(c("bias", { type: "float32", dims: [cout], data: p.bias }));
    const old = [...node.inputs];
    g.removeNode(node);
    g.addNode(new Node(node.name, p.op, SQZ_DOMAIN, inputs, node.outputs, p.attrs));
    for (const v of old.slice(1)) dropIfDead(g, v);
    reports.push({
      name: node.name,
      op: node.op,
      method: "binary",
      params: l.tensor.data.length,
      nonzeros: l.tensor.data.length,
      bytesBefore: l.tensor.data.byteLength,
      bytesAfter: enc.bits.byteLength + alpha.byteLength,
      notes: [
        "activations binarized at run time (sign, sign(0) = +1)",
        ...(p.op === "BinaryConv" ? ["padding reads +1 (one-padding)"] : []),
        ...(p.scale !== 1 ? [`Gemm alpha ${p.scale} folded into α`] : []),
        ...(nonNegative(node.inputs[0]!)
          ? [
            "its input is non-negative (Relu): sign(x) is always +1; XNOR-Net binarizes " +
            "after BatchNorm, before the activation",
          ]
          : []),
      ],
    });
  }
  if (kept.size) {
    notes.push(
      `binary: first/last layer(s) ${
        [...kept].map((n) => `'${n}'`).join(", ")
      } stay float (binary.keepFirstLast)`,
    );
  }
  if (reports.length) {
    useSqzDomain(g);
    notes.unshift(
      `binary: ${reports.length} layer(s) binarized (XNOR-Net); accuracy needs a network trained binary`,
    );
  }
  g.topoSort();
  return { layers: reports, notes };
};
