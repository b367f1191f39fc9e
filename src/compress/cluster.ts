// Weight clustering (the weight sharing of Deep Compression, Han et al. 2016): the weights of
// each Conv / Gemm / MatMul layer take one of k shared values. Per layer, 1-D k-means on the
// weight values — centroids initialized linearly between the smallest and the largest weight
// (the initialization the paper found best: it keeps the rare large weights representable),
// then Lloyd iterations until no weight changes cluster — and the weight is stored as
// ai.sqz.ClusteredWeight: ceil(log2 k)-bit indices packed LSB-first and a float32 codebook
// (format in src/ops/sqz_sparse.ts). Decoding gives back exactly the codebook values.
//
// Zeros stay exact zeros: when at least ZERO_SHARE of a layer's weights are exactly 0 (it was
// pruned but kept dense), codebook entry 0 is reserved for 0.0 and the non-zeros are clustered
// into k − 1 values. A pruned layer stored sparse (ai.sqz.SparseWeight) has its non-zero values
// clustered instead, the SparseWeight then reading them from the ClusteredWeight: pruning,
// sharing and the index coding stack as in the paper.
//
// Deterministic: the iterations run on the sorted weights with prefix sums (each is
// O(k log n)), ties at a midpoint between two centroids go to the lower one, and a cluster that
// empties keeps its centroid. Biases stay float. A layer whose clustered form would not be
// smaller (fewer weights than about k) is left alone.
//
// k is per layer (settingsFor): a layer's own clusters (recipe.layers, by node name or op type)
// beat the "cluster" section, and 0 leaves the layer alone. Without a "cluster" section only
// the layers with their own k are clustered. Binary and ternary layers are not clustered, with
// a note: their passes replace the weights by their own levels.
import type { Graph, Node, Value } from "../graph/ir.ts";
import { ArgumentError } from "../errors.ts";
import { clusterBits, packIndices } from "../ops/sqz_sparse.ts";
import { checkLayerRecipes, type Recipe, usesPass } from "./recipe.ts";
import { type LayerReport, type PassResult, SQZ_DOMAIN } from "./types.ts";
import {
  isLayerOp,
  layerBytes,
  layerSettings,
  methodConflict,
  replaceWithDecoder,
  storedBytes,
} from "./prune.ts";

/** A dense layer with at least this share of exact zeros keeps them exact (entry 0 = 0.0). */
export const ZERO_SHARE = 0.01;
const MAX_ITERATIONS = 10_000;

export interface KMeans1d {
  /** Ascending. */
  centroids: Float64Array;
  iterations: number;
  converged: boolean;
}

/**
 * 1-D k-means (Lloyd) with linear initialization between min and max. `values` must be
 * non-empty and finite.
 */
export function kmeans1d(values: ArrayLike<number>, k: number): KMeans1d {
  const n = values.length;
  if (!Number.isInteger(k) || k < 1) throw new ArgumentError(`kmeans: k must be ≥ 1, got ${k}`);
  if (n === 0) throw new ArgumentError("kmeans: no values");
  const xs = Float64Array.from(values).sort();
  if (!Number.isFinite(xs[0]) || !Number.isFinite(xs[n - 1])) {
    throw new ArgumentError("kmeans: the values must be finite");
  }
  const pre = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) pre[i + 1] = pre[i] + xs[i];
  const lo = xs[0], hi = xs[n - 1];
  const c = Float64Array.from(
    { length: k },
    (_, j) => (k === 1 ? (lo + hi) / 2 : lo + ((hi - lo) * j) / (k - 1)),
  );
  // Cluster j holds xs[bounds[j] .. bounds[j+1]).
  let bounds = new Int32Array(k + 1), prev = new Int32Array(k + 1).fill(-1);
  let it = 0, converged = false;
  for (; it < MAX_ITERATIONS; it++) {
    bounds[0] = 0;
    bounds[k] = n;
    for (let j = 1; j < k; j++) {
      const mid = (c[j - 1] + c[j]) / 2;
      // First index with xs[i] > mid, searching from the previous bound (mids ascend).
      let a = bounds[j - 1], b = n;
      while (a < b) {
        const h = (a + b) >> 1;
        if (xs[h] <= mid) a = h + 1;
        else b = h;
      }
      bounds[j] = a;
    }
    if (bounds.every((v, i) => v === prev[i])) {
      converged = true;
      break;
    }
    for (let j = 0; j < k; j++) {
      const a = bounds[j], b = bounds[j + 1];
      if (b > a) c[j] = (pre[b] - pre[a]) / (b - a);
    }
    c.sort();
    [prev, bounds] = [bounds, prev];
  }
  return { centroids: c, iterations: it, converged };
}

/** Index of the nearest of the ascending `cb` for each value (ties to the lower). */
function assign(values: Float32Array, cb: Float64Array, out: Uint8Array, offset: number): void {
  const k = cb.length;
  const mids = Float64Array.from({ length: k - 1 }, (_, j) => (cb[j] + cb[j + 1]) / 2);
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    let a = 0, b = k - 1;
    while (a < b) {
      const h = (a + b) >> 1;
      if (x <= mids[h]) b = h;
      else a = h + 1;
    }
    out[i] = a + offset;
  }
}

export interface Clustered {
  codebook: Float32Array;
  /** One index per weight (unpacked). */
  indices: Uint8Array;
  bits: number;
  iterations: number;
  /** Whether entry 0 is reserved for exact zeros. */
  zeroEntry: boolean;
}

/** Clusters `w` into at most k shared values (see the top of this file). */
export function clusterWeights(w: Float32Array, k: number): Clustered {
  const bits = clusterBits(k);
  let zeros = 0;
  for (let i = 0; i < w.length; i++) if (w[i] === 0) zeros++;
  const zeroEntry = zeros > 0 && zeros >= ZERO_SHARE * w.length;
  const data = zeroEntry ? w.filter((x) => x !== 0) : w;
  const kc = zeroEntry ? k - 1 : k;
  const indices = new Uint8Array(w.length);
  if (!data.length || kc === 0) {
    return { codebook: new Float32Array(1), indices, bits, iterations: 0, zeroEntry };
  }
  const km = kmeans1d(data, Math.min(kc, data.length));
  // The stored (float32) centroids decide the assignment, so each weight gets its nearest.
  const cb = Float64Array.from(Float32Array.from(km.centroids));
  if (zeroEntry) {
    const sub = new Uint8Array(data.length);
    assign(data, cb, sub, 1);
    for (let i = 0, j = 0; i < w.length; i++) if (w[i] !== 0) indices[i] = sub[j++];
  } else assign(w, cb, indices, 0);
  const codebook = new Float32Array((zeroEntry ? 1 : 0) + cb.length);
  codebook.set(cb, zeroEntry ? 1 : 0);
  return { codebook, indices, bits, iterations: km.iterations, zeroEntry };
}

/** The float32 constant the layer's weight comes from: the weight, or its sparse values. */
function clusterTarget(g: Graph, node: Node): { v: Value; sparse: boolean } | string {
  const w = node.inputs[1];
  if (!w) return "no weight";
  const privateConst = (v: Value | undefined): v is Value =>
    !!v?.constant && v.constant.type === "float32" && v.consumers.length === 1 &&
    !g.outputs.includes(v);
  if (w.constant) return privateConst(w) ? { v: w, sparse: false } : "weight shared or not float32";
  const p = w.producer;
  if (p && p.domain === SQZ_DOMAIN && p.op === "SparseWeight" && w.consumers.length === 1) {
    return privateConst(p.inputs[0]) ? { v: p.inputs[0], sparse: true } : "sparse values shared";
  }
  return "";
}

/** The clustering pass (see the top of this file). */
export function clusterPass(g: Graph, recipe: Recipe): PassResult {
  checkLayerRecipes(recipe);
  if (recipe.cluster === undefined) {
    if (!usesPass(recipe, "cluster")) {
      throw new ArgumentError(
        "cluster: the recipe has no 'cluster' section and no layer with its own clusters",
      );
    }
  } else {
    const k = recipe.cluster.clusters;
    if (typeof k !== "number" || !Number.isInteger(k) || k < 2 || k > 256) {
      throw new ArgumentError(
        `cluster: clusters must be an integer in [2, 256], got ${JSON.stringify(k)}`,
      );
    }
  }
  const notes: string[] = [];
  const layers: LayerReport[] = [];
  const settings = layerSettings(g, recipe);
  for (const node of [...g.nodes]) {
    if (!isLayerOp(node)) continue;
    const s = settings(node);
    const k = s.clusters;
    if (k === undefined) continue;
    const conflict = methodConflict("cluster", s.method);
    if (conflict) {
      notes.push(`${node.name}: ${conflict}`);
      continue;
    }
    const t = clusterTarget(g, node);
    if (typeof t === "string") {
      if (t) notes.push(`${node.name}: ${t}; not clustered`);
      continue;
    }
    const c = t.v.constant!;
    const w = c.data as Float32Array;
    const bad = w.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) {
      notes.push(`${node.name}: weight ${bad} is not finite; not clustered`);
      continue;
    }
    const res = clusterWeights(w, k);
    const packed = packIndices(res.indices, res.bits);
    if (packed.byteLength + res.codebook.byteLength >= storedBytes(t.v)) {
      notes.push(`${node.name}: ${w.length} weights would not shrink with ${k} clusters`);
      continue;
    }
    const bytesBefore = layerBytes(node);
    const dims = [...c.dims];
    replaceWithDecoder(
      g,
      t.v,
      "ClusteredWeight",
      [
        ["indices", { type: "uint8", dims: [packed.length], data: packed }],
        ["codebook", { type: "float32", dims: [res.codebook.length], data: res.codebook }],
      ],
      { shape: dims, bits: res.bits },
      `${node.name}::clusters`,
    );
    const used = new Set(res.indices).size;
    let nonzeros = 0;
    for (let i = 0; i < res.indices.length; i++) if (res.codebook[res.indices[i]] !== 0) nonzeros++;
    const ln = [
      `${res.bits}-bit indices, ${used} of ${res.codebook.length} shared values used, ${res.iterations} Lloyd iterations`,
    ];
    if (res.zeroEntry) ln.push("zeros kept exact (codebook entry 0)");
    if (t.sparse) ln.push("non-zero values of the sparse weight clustered");
    layers.push({
      name: node.name,
      op: node.op,
      method: `${k} clusters`,
      params: t.sparse ? (node.inputs[1]!.shape as number[]).reduce((a, b) => a * b, 1) : w.length,
      nonzeros,
      bytesBefore,
      bytesAfter: layerBytes(node),
      notes: ln,
    });
  }
  return { layers, notes };
}
