// Sparse reconstruction: after magnitude pruning, the weights a Gemm / MatMul keeps are re-fit
// on calibration data so the layer reproduces the float model's output as well as its sparsity
// allows — a least-squares solve per output unit over its kept inputs (the idea of Optimal
// Brain Surgeon / SparseGPT, done exactly because these layers are small):
//
//   minimize over w_S   ‖ X_S · w_S + b − y ‖² + λ‖w_S‖²
//
// X is the layer's input in the pruned model (so upstream pruning is compensated too), y the
// float model's output of the same layer, S the unit's kept weights. Layers run in graph order,
// each seeing the already-reconstructed ones before it. Without calibration data nothing runs.
import type { Graph, Node } from "../graph/ir.ts";
import type { Tensor } from "../graph/tensor.ts";
import { exportModel } from "../onnx/export.ts";
import { Session } from "../session.ts";
import type { Feeds } from "./calibrate.ts";
import type { LayerReport, PassResult } from "./types.ts";

/** Samples used for the fit: enough rows for the kept weights, bounded in memory. */
const MAX_ROWS = 4096;

async function collect(model: Uint8Array, name: string, feeds: Feeds[]): Promise<Float32Array[]> {
  const s = await Session.create(model, { extraOutputs: [name] });
  try {
    const out: Float32Array[] = [];
    let rows = 0;
    for (const f of feeds) {
      const t = (await s.run(f, { outputs: [name] }))[name];
      out.push(t.data as Float32Array);
      rows += t.dims.slice(0, -1).reduce((a, b) => a * b, 1);
      if (rows >= MAX_ROWS) break;
    }
    return out;
  } finally {
    await s.release();
  }
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Solves A x = b for symmetric positive definite A (n×n, row-major) by Cholesky, in place. */
function choleskySolve(a: Float64Array, b: Float64Array, n: number): boolean {
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j];
    for (let k = 0; k < j; k++) d -= a[j * n + k] * a[j * n + k];
    if (!(d > 0)) return false;
    d = Math.sqrt(d);
    a[j * n + j] = d;
    for (let i = j + 1; i < n; i++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = s / d;
    }
  }
  for (let i = 0; i < n; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= a[i * n + k] * b[k];
    b[i] = s / a[i * n + i];
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i];
    for (let k = i + 1; k < n; k++) s -= a[k * n + i] * b[k];
    b[i] = s / a[i * n + i];
  }
  return true;
}

/** Gemm / MatMul layers with a dense constant weight holding exact zeros (pruned). */
export function prunedLayers(g: Graph): Node[] {
  return g.nodes.filter((n) => {
    if (n.domain && n.domain !== "ai.onnx") return false;
    if (n.op !== "Gemm" && n.op !== "MatMul") return false;
    if (n.op === "Gemm" && ((n.attrs.transA ?? 0) !== 0 || (n.attrs.alpha ?? 1) !== 1)) {
      return false;
    }
    const w = n.inputs[1]?.constant;
    if (!w || w.type !== "float32" || w.dims.length !== 2) return false;
    const d = w.data as Float32Array;
    let zeros = 0;
    for (let i = 0; i < d.length; i++) if (d[i] === 0) zeros++;
    return zeros > d.length * 0.05;
  });
}

export async function reconstructPruned(
  g: Graph,
  floatModel: Uint8Array,
  feeds: Feeds[],
  layers: Node[],
): Promise<PassResult> {
  const notes: string[] = [];
  const reports: LayerReport[] = [];
  for (const n of layers) {
    const w = n.inputs[1]!.constant!;
    const transB = n.op === "Gemm" && (n.attrs.transB ?? 0) === 1;
    const [k, units] = transB ? [w.dims[1], w.dims[0]] : [w.dims[0], w.dims[1]];
    const at = (u: number, i: number) => (transB ? u * k + i : i * units + u);
    const x = concat(await collect(exportModel(g), n.inputs[0]!.name, feeds));
    const y = concat(await collect(floatModel, n.outputs[0].name, feeds));
    const rows = Math.min(x.length / k, y.length / units);
    if (!Number.isInteger(rows) || rows < 2) {
      notes.push(`reconstruction: '${n.name}': no usable calibration rows`);
      continue;
    }
    const bias = n.op === "Gemm" ? n.inputs[2]?.constant : undefined;
    const b = (u: number) => {
      if (!bias) return 0;
      const d = bias.data as Float32Array;
      return d.length === 1 ? d[0] : d[u];
    };
    const wd = w.data as Float32Array;
    const next = new Float32Array(wd);
    let before = 0, after = 0, refit = 0;
    for (let u = 0; u < units; u++) {
      const kept: number[] = [];
      for (let i = 0; i < k; i++) if (wd[at(u, i)] !== 0) kept.push(i);
      const s = kept.length;
      if (s === 0 || s > rows) continue;
      const a = new Float64Array(s * s), rhs = new Float64Array(s);
      const xs = new Float64Array(s);
      for (let r = 0; r < rows; r++) {
        const target = y[r * units + u] - b(u);
        let pred = 0;
        for (let j = 0; j < s; j++) {
          xs[j] = x[r * k + kept[j]];
          pred += xs[j] * wd[at(u, kept[j])];
        }
        before += (pred - target) ** 2;
        for (let j = 0; j < s; j++) {
          rhs[j] += xs[j] * target;
          const xj = xs[j];
          for (let l = 0; l <= j; l++) a[j * s + l] += xj * xs[l];
        }
      }
      let trace = 0;
      for (let j = 0; j < s; j++) trace += a[j * s + j];
      const lambda = 1e-3 * (trace / s) + 1e-12;
      for (let j = 0; j < s; j++) {
        a[j * s + j] += lambda;
        for (let l = 0; l < j; l++) a[l * s + j] = a[j * s + l];
      }
      if (!choleskySolve(a, rhs, s)) continue;
      for (let j = 0; j < s; j++) next[at(u, kept[j])] = rhs[j];
      refit++;
    }
    // Keep the fit only if it is better on the calibration rows.
    for (let r = 0; r < rows; r++) {
      for (let u = 0; u < units; u++) {
        let pred = b(u);
        for (let i = 0; i < k; i++) {
          const v = next[at(u, i)];
          if (v !== 0) pred += x[r * k + i] * v;
        }
        after += (pred - y[r * units + u]) ** 2;
      }
    }
    if (!(after < before)) {
      notes.push(`reconstruction: '${n.name}': the fit did not improve, weights kept`);
      continue;
    }
    n.inputs[1]!.constant = { ...w, data: next } as Tensor;
    reports.push({
      name: n.name,
      op: n.op,
      method: "reconstructed",
      params: wd.length,
      nonzeros: next.reduce((c, v) => c + (v !== 0 ? 1 : 0), 0),
      bytesBefore: wd.byteLength,
      bytesAfter: next.byteLength,
      notes: [
        `kept weights of ${refit} units re-fit on ${rows} calibration rows: output error ` +
        `${(Math.sqrt(after / before) * 100).toFixed(0)}% of the pruned layer's`,
      ],
    });
  }
  return { layers: reports, notes };
}
