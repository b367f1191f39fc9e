// Magnitude pruning: the smallest |w| of Conv / Gemm / MatMul weights become exact zeros, and a
// weight that is then smaller stored sparse becomes an ai.sqz.SparseWeight node (bitmask or
// delta format, documented in src/ops/sqz_sparse.ts) that decodes to the dense weight at load.
//
//   "unstructured", scope "layer":  each layer loses round(sparsity · numel) weights.
//   "unstructured", scope "global": one magnitude threshold over the weights of every layer
//       with at least GLOBAL_MIN_PARAMS weights, so round(sparsity · total) of their pooled
//       weights become zero; layers differ in how much they lose (layers of many small
//       weights lose most). Smaller layers (first convs, classifier heads of a few classes)
//       stay dense: they are a negligible share of the size and the most sensitive to pruning.
//       Magnitudes are compared raw (a following BatchNormalization's scale is not applied).
//   "N:M" (e.g. "2:4"): N = non-zeros KEPT in every M consecutive weights along the reduction
//       dimension K, as NVIDIA's 2:4 sparsity (2 of every 4 kept → 50% sparse). K is a Conv
//       filter's Cin/group·kh·kw in ONNX order (kw fastest), a Gemm/MatMul column of the [K, N]
//       weight. Groups start at k = 0 for every output unit. Only layers whose K is a multiple
//       of M are pruned: N:M layouts (sparse tensor cores, the N:M kernels of other runtimes)
//       need whole groups, and the layers that fail it are small-K ones (a first Conv over 1 or 3
//       channels, depthwise filters) that pruning hurts most — NVIDIA's ASP skips them too.
//       They stay dense, with a note. Ties keep the lower index. scope and sparsity do not apply.
//       (pruneNM itself also handles a short last group: it keeps at most N of it.)
//
// Per-layer settings (recipe.layers: sparsity or pattern, by node name or op type) beat the
// "prune" section: such a layer is pruned to its own sparsity or pattern whatever the scope,
// and in global scope it stays out of the pooled threshold (the pool's round(sparsity · total)
// counts only the other layers), and GLOBAL_MIN_PARAMS does not apply to it (it was asked
// for). A per-layer sparsity 0 keeps the layer dense. Without a "prune" section only the
// layers with their own setting are pruned.
//
// Binary layers are not pruned (the binary pass keeps only signs: a zero would become +1), with
// a note; ternary ones are (TWN keeps |w| ≤ Δ at zero, so the pruned zeros survive, and the
// layer is then stored ternary). A layer that binary.keepFirstLast keeps out of the binary pass
// counts as not binary.
//
// Weights already zero count as pruned (they are the smallest). Biases are never pruned.
// Ties at the threshold are broken by position (layer order, then row-major index), so the
// count of zeros is exact and the result deterministic.
//
// This file also holds what the weight passes share: which nodes are layers, the [rows, K]
// view of their weights, replacing a weight by a decoder node, and the stored size of a value.
// LayerReport.bytesBefore/After of these passes count the layer's weight and bias as stored
// (decoder inputs included), MACs are at batch 1 from inferred shapes.
import { type Dim, type Graph, Node, type Value } from "../graph/ir.ts";
import { ELEMENT_BYTES, elementCount, type Tensor } from "../graph/tensor.ts";
import { ArgumentError } from "../errors.ts";
import { sparseEncode } from "../ops/sqz_sparse.ts";
import {
  checkLayerRecipes,
  type LayerSettings,
  MAX_SPARSITY,
  type Method,
  methodFor,
  type PruneOptions,
  type Recipe,
  settingsFor,
  usesPass,
  type WeightPassName,
} from "./recipe.ts";
import { type LayerReport, type PassResult, SQZ_DOMAIN } from "./types.ts";

/** In global scope, layers with fewer weights than this stay dense. */
export const GLOBAL_MIN_PARAMS = 1024;

// ---- shared by the weight passes ----

/** A layer weight seen as a matrix of `rows` output units × `k` reduction elements. */
export interface WeightMatrix {
  rows: number;
  k: number;
  /** Flat-index step between output units and between reduction elements. */
  rowStride: number;
  kStride: number;
}

/**
 * The [rows, K] view of a layer's weight: Conv [Cout, Cin/g, ...kernel] (rows = Cout), Gemm B
 * [K, N] or [N, K] with transB (rows = N), MatMul B [K, N] (rows = N). Undefined for shapes
 * that are not a layer weight (batched MatMul, 1-D B).
 */
export function weightMatrix(node: Node, dims: readonly number[]): WeightMatrix | undefined {
  if (node.op === "Conv") {
    if (dims.length < 3) return undefined;
    const k = elementCount(dims.slice(1));
    return { rows: dims[0], k, rowStride: k, kStride: 1 };
  }
  if (dims.length !== 2) return undefined;
  const transB = node.op === "Gemm" && node.attrs.transB === 1;
  return transB
    ? { rows: dims[0], k: dims[1], rowStride: dims[1], kStride: 1 }
    : { rows: dims[1], k: dims[0], rowStride: 1, kStride: dims[1] };
}

export const isDefaultDomain = (n: Node): boolean => !n.domain || n.domain === "ai.onnx";

export const isLayerOp = (n: Node): boolean =>
  isDefaultDomain(n) && (n.op === "Conv" || n.op === "Gemm" || n.op === "MatMul");

/** A layer whose weight is a float32 constant that no other node reads. */
export interface Layer {
  node: Node;
  weight: Value;
  w: Float32Array;
  dims: number[];
  m: WeightMatrix;
  /** Its effective settings (layerSettings). */
  settings: LayerSettings;
}

/**
 * Each node's settings as the weight passes must see them: settingsFor, except that a layer
 * binary.keepFirstLast keeps out of the binary pass does not count as binary (it is quantized
 * int8 or left float later, so pruning, clustering and factoring apply to it).
 */
export function layerSettings(g: Graph, recipe: Recipe): (node: Node) => LayerSettings {
  // The binary pass's first and last weight layers (binaryKeptLayers), with weights this pass
  // or an earlier one stored encoded counted too: the binary pass sees them decoded.
  const kept = new Set<string>();
  if (recipe.binary?.keepFirstLast) {
    const all = g.nodes.filter((n) => {
      const w = n.inputs[1];
      return isLayerOp(n) &&
        (w?.constant?.type === "float32" || w?.producer?.domain === SQZ_DOMAIN);
    });
    for (const n of [all[0], all[all.length - 1]]) {
      if (n && methodFor(recipe, n.name, n.op) === "binary") kept.add(n.name);
    }
  }
  return (node) => {
    const s = settingsFor(recipe, node.name, node.op);
    if (s.method === "binary" && kept.has(node.name)) s.method = "none";
    return s;
  };
}

/**
 * Why a weight pass does not touch a layer of this method, or undefined when it combines with
 * it. Binary keeps only the signs and binarizes the activations; ternary replaces the weights
 * by its three levels per channel, which only pruning's zeros survive.
 */
export function methodConflict(pass: WeightPassName, method: Method): string | undefined {
  if (method === "binary") {
    return pass === "prune"
      ? "binary keeps only the weights' signs (a pruned zero would become +1); not pruned"
      : pass === "cluster"
      ? "binary keeps only the weights' signs, not shared values; not clustered"
      : "binary would binarize the activation between the two factors; not factored";
  }
  if (method === "ternary" && pass !== "prune") {
    return pass === "cluster"
      ? "ternary replaces the weights by its own three levels per channel; not clustered"
      : "ternary quantizes the layer's whole weight; not factored";
  }
  return undefined;
}

/** Whether a layer's settings ask for a pass. */
export function wantsPass(s: LayerSettings, pass: WeightPassName): boolean {
  return pass === "prune"
    ? s.prune !== undefined
    : pass === "cluster"
    ? s.clusters !== undefined
    : pass === "lowrank"
    ? s.lowrank !== undefined
    : s.structured !== undefined;
}

/**
 * The layers the weight pass `pass` rewrites: Conv, Gemm and MatMul nodes whose settings ask
 * for the pass and whose weight (input 1) is a float32 constant read by no other node. Why a
 * layer that asks for it is left out (its method, its weight) goes to `notes`.
 */
export function constantLayers(
  g: Graph,
  recipe: Recipe,
  notes: string[],
  pass: "prune" | "lowrank" = "prune",
): Layer[] {
  const out: Layer[] = [];
  const settings = layerSettings(g, recipe);
  for (const node of g.nodes) {
    if (!isLayerOp(node)) continue;
    const s = settings(node);
    if (!wantsPass(s, pass)) continue;
    const conflict = methodConflict(pass, s.method);
    if (conflict) {
      notes.push(`${node.name}: ${conflict}`);
      continue;
    }
    const weight = node.inputs[1];
    const c = weight?.constant;
    if (!weight || !c) continue; // an activation × activation MatMul, or already encoded
    if (c.type !== "float32") {
      notes.push(`${node.name}: weight is ${c.type}, not float32; left as is`);
      continue;
    }
    const m = weightMatrix(node, c.dims);
    if (!m) {
      notes.push(`${node.name}: weight of shape [${c.dims}] is not a layer weight; left as is`);
      continue;
    }
    if (weight.consumers.length !== 1 || g.outputs.includes(weight)) {
      notes.push(`${node.name}: weight '${weight.name}' is shared with other nodes; left as is`);
      continue;
    }
    out.push({ node, weight, w: c.data as Float32Array, dims: [...c.dims], m, settings: s });
  }
  return out;
}

/** Bytes a value takes in the artifact: its constant, or the constants its decoder reads. */
export function storedBytes(v: Value | undefined): number {
  if (!v) return 0;
  const c = v.constant;
  if (c) {
    const n = elementCount(c.dims);
    return c.type === "int4" || c.type === "uint4" ? Math.ceil(n / 2) : n * ELEMENT_BYTES[c.type];
  }
  const p = v.producer;
  if (p && p.domain === SQZ_DOMAIN && p.inputs.every((x) => !x || x.constant || x.producer)) {
    return p.inputs.reduce((s, x) => s + storedBytes(x), 0);
  }
  return 0;
}

/** Stored bytes of a layer's weight and bias (what LayerReport.bytesBefore/After count). */
export function layerBytes(node: Node): number {
  return storedBytes(node.inputs[1]) + (node.op === "MatMul" ? 0 : storedBytes(node.inputs[2]));
}

/** A value name not yet in the graph, from `base`. */
export function freshName(g: Graph, base: string): string {
  if (!g.values.has(base)) return base;
  for (let i = 1;; i++) if (!g.values.has(`${base}${i}`)) return `${base}${i}`;
}

/** A new constant value. */
export function constantValue(g: Graph, base: string, t: Tensor): Value {
  const v = g.value(freshName(g, base));
  v.constant = t;
  v.type = t.type;
  v.shape = [...t.dims];
  return v;
}

/**
 * Turns the constant `v` into the output of a new ai.sqz decoder node reading the given
 * constants: v keeps its name, dtype and shape, so the layers reading it are untouched.
 */
export function replaceWithDecoder(
  g: Graph,
  v: Value,
  op: string,
  inputs: [string, Tensor][],
  attrs: Node["attrs"],
  nodeName: string,
): Node {
  const c = v.constant!;
  const ins = inputs.map(([suffix, t]) => constantValue(g, `${v.name}::${suffix}`, t));
  v.constant = undefined;
  v.type = c.type;
  v.shape = [...c.dims];
  if (!g.opsets.has(SQZ_DOMAIN)) g.opsets.set(SQZ_DOMAIN, 1);
  const node = new Node(nodeName, op, SQZ_DOMAIN, ins, [v], attrs);
  g.addNode(node);
  // Decoders read only constants: first in order, and topoSort keeps that.
  g.nodes = [node, ...g.nodes.filter((n) => n !== node)];
  return node;
}

/** Stores `w` (same dims as the layer's weight) sparse when smaller, else dense. */
export function storeWeight(g: Graph, layer: Layer, w: Float32Array): string {
  const enc = sparseEncode(w);
  if (!enc) {
    layer.weight.constant = { type: "float32", dims: [...layer.dims], data: w };
    return "stored dense (sparse would not be smaller)";
  }
  const indicesType = enc.indices instanceof Uint16Array ? "uint16" : "uint8";
  replaceWithDecoder(
    g,
    layer.weight,
    "SparseWeight",
    [
      ["values", { type: "float32", dims: [enc.values.length], data: enc.values }],
      ["indices", { type: indicesType, dims: [enc.indices.length], data: enc.indices }],
    ],
    { shape: [...layer.dims], format: enc.format },
    `${layer.node.name}::sparse`,
  );
  return `stored sparse (${enc.format}${enc.format === "delta" ? `, ${indicesType}` : ""})`;
}

/** Dims with symbols (the batch) read as 1: the MAC count at batch 1. */
function batchOneDims(s: Dim[] | undefined): number[] | undefined {
  return s?.map((d) => (typeof d === "number" ? d : 1));
}

/** MACs of a Conv / Gemm / MatMul at batch 1, from inferred shapes. */
export function layerMacs(node: Node): number | undefined {
  const w = node.inputs[1]?.shape;
  const out = batchOneDims(node.outputs[0]?.shape);
  if (!w || !out || w.some((d) => typeof d !== "number")) return undefined;
  const wd = w as number[];
  if (node.op === "Conv") return elementCount(out) * (elementCount(wd) / wd[0]);
  const m = weightMatrix(node, wd);
  return m ? elementCount(out) * m.k : undefined;
}

// ---- pruning ----

/** N and M of an "N:M" pattern, or undefined for "unstructured"; ArgumentError otherwise. */
export function parsePattern(pattern: unknown): { n: number; m: number } | undefined {
  if (pattern === "unstructured") return undefined;
  const match = typeof pattern === "string" ? pattern.match(/^(\d+):(\d+)$/) : null;
  const n = match ? Number(match[1]) : NaN, m = match ? Number(match[2]) : NaN;
  if (!match || n < 1 || n >= m || m > 32) {
    throw new ArgumentError(
      `prune: pattern must be "unstructured" or "N:M" (N non-zeros kept of every M, 0 < N < M ≤ 32), got ${
        JSON.stringify(pattern)
      }`,
    );
  }
  return { n, m };
}

/** The "prune" section, validated, or undefined when only per-layer settings prune. */
function checkOptions(recipe: Recipe): PruneOptions | undefined {
  checkLayerRecipes(recipe);
  const p = recipe.prune;
  if (!p) {
    if (usesPass(recipe, "prune")) return undefined;
    throw new ArgumentError(
      "prune: the recipe has no 'prune' section and no layer with its own sparsity or pattern",
    );
  }
  parsePattern(p.pattern);
  if (p.pattern === "unstructured") {
    if (typeof p.sparsity !== "number" || !(p.sparsity >= 0 && p.sparsity <= MAX_SPARSITY)) {
      throw new ArgumentError(
        `prune: sparsity must be in [0, ${MAX_SPARSITY}], got ${JSON.stringify(p.sparsity)}`,
      );
    }
    if (p.scope !== "global" && p.scope !== "layer") {
      throw new ArgumentError(
        `prune: scope must be "global" or "layer", got ${JSON.stringify(p.scope)}`,
      );
    }
  } else if (p.sparsity !== undefined) {
    throw new ArgumentError(
      `prune: sparsity ${JSON.stringify(p.sparsity)} and pattern ${
        JSON.stringify(p.pattern)
      } conflict (an N:M pattern fixes the sparsity); give one`,
    );
  }
  return p;
}

/** |w| as an orderable integer: the float's bits without the sign. */
function magnitudeBits(w: Float32Array): Uint32Array {
  return new Uint32Array(w.buffer, w.byteOffset, w.length);
}

/**
 * Zeroes exactly the `k` smallest-magnitude entries over all arrays (ties: earlier array, then
 * lower index), in place. Radix select on the magnitude bits: two histogram passes, no sort,
 * O(1) extra memory beyond the histograms.
 */
export function zeroSmallest(arrays: Float32Array[], k: number): void {
  k = Math.min(k, arrays.reduce((s, a) => s + a.length, 0));
  if (k <= 0) return;
  const bits = arrays.map(magnitudeBits);
  const hi = new Float64Array(1 << 15);
  for (const b of bits) for (let i = 0; i < b.length; i++) hi[(b[i] >>> 16) & 0x7fff]++;
  let below = 0, top = 0;
  while (below + hi[top] < k) below += hi[top++];
  const lo = new Float64Array(1 << 16);
  for (const b of bits) {
    for (let i = 0; i < b.length; i++) if (((b[i] >>> 16) & 0x7fff) === top) lo[b[i] & 0xffff]++;
  }
  let low = 0;
  while (below + lo[low] < k) below += lo[low++];
  const t = (top << 16) | low;
  // Everything strictly below t goes, then the first (k − below) equal to t.
  let ties = k - below;
  for (let a = 0; a < arrays.length; a++) {
    const w = arrays[a], b = bits[a];
    for (let i = 0; i < w.length; i++) {
      const m = b[i] & 0x7fffffff;
      if (m < t) w[i] = 0;
      else if (m === t && ties > 0) {
        w[i] = 0;
        ties--;
      }
    }
  }
}

/** Keeps the n largest |w| of every m consecutive weights along K (ties: lower k kept). */
export function pruneNM(w: Float32Array, mat: WeightMatrix, n: number, m: number): void {
  const idx = new Int32Array(m);
  for (let r = 0; r < mat.rows; r++) {
    const base = r * mat.rowStride;
    for (let k0 = 0; k0 < mat.k; k0 += m) {
      const len = Math.min(m, mat.k - k0);
      if (len <= n) continue;
      for (let j = 0; j < len; j++) idx[j] = base + (k0 + j) * mat.kStride;
      // Insertion sort by |w| descending; stable, so equal magnitudes keep the lower index first.
      for (let j = 1; j < len; j++) {
        const x = idx[j], ax = Math.abs(w[x]);
        let p = j - 1;
        while (p >= 0 && Math.abs(w[idx[p]]) < ax) {
          idx[p + 1] = idx[p];
          p--;
        }
        idx[p + 1] = x;
      }
      for (let j = n; j < len; j++) w[idx[j]] = 0;
    }
  }
}

function countZeros(w: Float32Array): number {
  let z = 0;
  for (let i = 0; i < w.length; i++) if (w[i] === 0) z++;
  return z;
}

const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;

/** The magnitude-pruning pass (see the top of this file). */
export function prunePass(g: Graph, recipe: Recipe): PassResult {
  const opts = checkOptions(recipe);
  const notes: string[] = [];
  const layers = constantLayers(g, recipe, notes, "prune");
  const pruned = new Map<Layer, Float32Array>();
  const patterns = new Set<string>();
  const pool: Layer[] = [];
  const own: string[] = [];
  for (const l of layers) {
    const p = l.settings.prune!;
    if (p.own) own.push(l.node.name);
    if (p.pattern !== undefined) {
      const nm = parsePattern(p.pattern)!;
      if (l.m.k % nm.m !== 0) {
        notes.push(
          `${l.node.name}: K = ${l.m.k} is not a multiple of ${nm.m}, no whole ${p.pattern} groups; kept dense`,
        );
        continue;
      }
      const w = l.w.slice();
      pruneNM(w, l.m, nm.n, nm.m);
      pruned.set(l, w);
      patterns.add(p.pattern);
    } else if (p.own || opts?.scope === "layer") {
      const k = Math.round(p.sparsity! * l.w.length);
      if (k === 0) continue;
      const w = l.w.slice();
      zeroSmallest([w], k);
      pruned.set(l, w);
    } else if (l.w.length < GLOBAL_MIN_PARAMS) {
      notes.push(
        `${l.node.name}: ${l.w.length} weights, below the ${GLOBAL_MIN_PARAMS} of global pruning; kept dense`,
      );
    } else pool.push(l);
  }
  for (const pattern of patterns) {
    const nm = parsePattern(pattern)!;
    notes.push(
      `prune ${pattern}: at most ${nm.n} non-zeros in every ${nm.m} consecutive weights along K`,
    );
  }
  if (pool.length) {
    const total = pool.reduce((s, l) => s + l.w.length, 0);
    const k = Math.round(opts!.sparsity! * total);
    if (k > 0) {
      const copies = pool.map((l) => l.w.slice());
      zeroSmallest(copies, k);
      pool.forEach((l, i) => pruned.set(l, copies[i]));
      notes.push(
        `prune global: one magnitude threshold over ${pool.length} layers (${total} weights), ${k} set to zero` +
          (own.length ? `; ${own.join(", ")} pruned to their own settings, outside it` : ""),
      );
    }
  }
  const reports: LayerReport[] = [];
  for (const [l, w] of pruned) {
    const zeros = countZeros(w);
    if (zeros === countZeros(l.w) && !sparseEncode(w)) continue; // nothing to do
    const bytesBefore = layerBytes(l.node);
    const ln: string[] = [];
    if (zeros > 0.99 * w.length) ln.push(`${pct(zeros / w.length)} of the weights are zero`);
    if (l.settings.method === "ternary") {
      ln.push("then ternary: the pruned zeros stay zero (|w| ≤ Δ)");
    }
    ln.push(storeWeight(g, l, w));
    const pattern = l.settings.prune!.pattern;
    reports.push({
      name: l.node.name,
      op: l.node.op,
      method: pattern !== undefined ? `pruned ${pattern}` : `pruned ${pct(zeros / w.length)}`,
      params: w.length,
      nonzeros: w.length - zeros,
      bytesBefore,
      bytesAfter: layerBytes(l.node),
      notes: ln,
    });
  }
  return { layers: reports, notes };
}
