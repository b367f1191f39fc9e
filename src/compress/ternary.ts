// Ternary weights (TWN, Li & Liu 2016): each Conv / Gemm / MatMul weight whose method is
// "ternary" becomes w ≈ α·t, t ∈ {−1, 0, +1}, per output channel:
//   Δ = 0.7 · mean|w|             (the paper's approximation of the optimal threshold)
//   t = +1 if w > Δ, −1 if w < −Δ, else 0
//   α = mean of |w| over |w| > Δ  (0 for an all-zero channel)
// Stored as ai.sqz.DequantizeTernary: 2-bit codes, four per byte LSB first (00 = 0, 01 = +1,
// 11 = −1), and α as float32 per channel; format in src/ops/sqz_lowbit.ts. The engine folds the
// decoder at load and runs the layer on the f32 kernels.
import type { Graph, Value } from "../graph/ir.ts";
import type { Recipe } from "./recipe.ts";
import type { CompressPass, LayerReport, PassResult } from "./types.ts";
import type { WeightView } from "../ops/sqz_lowbit.ts";
import {
  addConstant,
  checkPassArgs,
  dropIfDead,
  layersFor,
  relRms,
  replaceWeight,
  useSqzDomain,
} from "./int4.ts";
import { elementCount } from "../graph/tensor.ts";
import { ArgumentError } from "../errors.ts";

/** TWN's threshold factor: Δ = 0.7·mean|w|. */
export const TWN_DELTA = 0.7;

export interface TernaryWeights {
  /** uint8 [rows, ceil(K/4)]: 2-bit codes, LSB first. */
  codes: Uint8Array;
  /** float32 [rows]. */
  alpha: Float32Array;
  /** Weights with t ≠ 0. */
  nonzeros: number;
}

/** Ternarizes a dense float weight per output channel (row of the matrix view). */
export function encodeTernary(w: Float32Array, view: WeightView): TernaryWeights {
  if (w.length !== elementCount(view.shape)) {
    throw new ArgumentError(`ternary: ${w.length} weights for shape [${view.shape}]`);
  }
  const rowBytes = Math.ceil(view.k / 4);
  const codes = new Uint8Array(view.rows * rowBytes);
  const alpha = new Float32Array(view.rows);
  let nonzeros = 0;
  for (let r = 0; r < view.rows; r++) {
    const base = r * view.rowStride, ks = view.kStride;
    let sum = 0;
    for (let k = 0; k < view.k; k++) {
      const v = w[base + k * ks];
      if (!Number.isFinite(v)) {
        throw new ArgumentError(`ternary: weight (${r}, ${k}) of the matrix view is ${v}`);
      }
      sum += Math.abs(v);
    }
    const delta = (TWN_DELTA * sum) / view.k;
    let kept = 0, keptSum = 0;
    for (let k = 0; k < view.k; k++) {
      const v = w[base + k * ks];
      if (Math.abs(v) <= delta) continue;
      kept++;
      keptSum += Math.abs(v);
      codes[r * rowBytes + (k >> 2)] |= (v > 0 ? 0b01 : 0b11) << ((k & 3) << 1);
    }
    alpha[r] = kept ? keptSum / kept : 0;
    nonzeros += kept;
  }
  return { codes, alpha, nonzeros };
}

/** TWN ternarization of every layer whose method is "ternary". */
export const ternaryPass: CompressPass = (g: Graph, recipe: Recipe): PassResult => {
  checkPassArgs(g, recipe, "ternary");
  const { layers, notes } = layersFor(g, recipe, "ternary");
  const reports: LayerReport[] = [];
  const decoded = new Map<Value, Value>();
  for (const l of layers) {
    const { view, weight } = l;
    const t = encodeTernary(l.tensor.data, view);
    const rowBytes = Math.ceil(view.k / 4);
    const inputs = [
      addConstant(g, `${weight.name}::ternary`, {
        type: "uint8",
        dims: [view.rows, rowBytes],
        data: t.codes,
      }),
      addConstant(g, `${weight.name}::ternary_alpha`, {
        type: "float32",
        dims: [view.rows],
        data: t.alpha,
      }),
    ];
    const w = l.tensor.data;
    const err = relRms(w, (i) => {
      // Element i of the dense tensor → (row, k) of the view.
      const [r, k] = view.axis === 1
        ? [Math.floor(i / view.k), i % view.k]
        : [i % view.rows, Math.floor(i / view.rows)];
      const c = (t.codes[r * rowBytes + (k >> 2)] >> ((k & 3) << 1)) & 3;
      return c === 1 ? t.alpha[r] : c === 3 ? -t.alpha[r] : 0;
    });
    replaceWeight(
      g,
      l,
      "DequantizeTernary",
      inputs,
      { shape: [...view.shape], axis: view.axis },
      decoded,
    );
    reports.push({
      name: l.node.name,
      op: l.node.op,
      method: "ternary",
      params: w.length,
      nonzeros: t.nonzeros,
      bytesBefore: w.byteLength,
      bytesAfter: t.codes.byteLength + t.alpha.byteLength,
      notes: [
        `TWN, Δ = ${TWN_DELTA}·mean|w| per output channel; ${
          (100 * (1 - t.nonzeros / w.length)).toFixed(1)
        }% zeros`,
        `relative RMS weight error ${err.toExponential(2)}`,
      ],
    });
    dropIfDead(g, weight);
  }
  if (reports.length) {
    useSqzDomain(g);
    notes.unshift(
      `ternary: ${reports.length} layer(s), decoded to float32 at load (run on the f32 kernels)`,
    );
  }
  g.topoSort();
  return { layers: reports, notes };
};
