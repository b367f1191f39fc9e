// Low-rank factorization: a layer's weight W, seen as the matrix [outputs, K], is replaced by
// its truncated SVD W ≈ U_r Σ_r V_rᵀ, and the layer by two thinner ones:
//
//   Gemm   A·W + C        → Gemm(A, √Σ V_rᵀ: K → r, no bias, transA and alpha of the original)
//                           → Gemm(·, U_r √Σ: r → N, C and beta of the original)   (transB = 1)
//   MatMul A·W            → MatMul(A, V_r √Σ [K, r]) → MatMul(·, √Σ U_rᵀ [r, N])
//   Conv   (group 1, any kernel; W as [Cout, Cin·kh·kw])
//                         → Conv(Cin → r, the original kernel, strides, pads, dilations; no bias)
//                         → Conv(r → Cout, 1×1, stride 1, no padding, the original bias)
//
// (a 1×1 Conv is the plain matrix case; a k×k one factors into a k×k Conv to r channels and a
// 1×1 Conv). Σ is split as √Σ on both sides so the two factors have the same scale, which
// suits quantizing them later. The second node keeps the original node's name and output, so
// per-layer overrides and comparisons by tensor name still find it; the first is
// `<name>::lowrank`.
//
// The rank is { rank } (capped at min(outputs, K)), or for { energy } the smallest r with
// Σ_{i<r} σ_i² ≥ energy · Σ σ_i² (the relative Frobenius error is then ≤ √(1 − energy)). A
// layer is factored only when r·(K + outputs) < K·outputs; otherwise it is left alone with a
// note, as are grouped convolutions and matrices too large for an exact SVD here.
//
// The target is per layer (settingsFor): a layer's own rank or energy (recipe.layers, by node
// name or op type) beats the "lowrank" section, and rank 0 keeps the layer whole. Without a
// "lowrank" section only the layers with their own setting are factored. Binary and ternary
// layers are not factored, with a note (binary would binarize the activation between the
// factors; ternary quantizes the whole weight).
//
// The SVD is Golub–Kahan–Reinsch: Householder bidiagonalization, then implicit-shift QR on the
// bidiagonal (the algorithm of LINPACK/JAMA), in float64, with U and V kept transposed so every
// Householder update and Givens rotation runs over contiguous rows.
import { type Graph, Node, type Value } from "../graph/ir.ts";
import { elementCount } from "../graph/tensor.ts";
import { inferShapes } from "../graph/shape_inference.ts";
import { ArgumentError } from "../errors.ts";
import {
  checkLayerRecipes,
  LOWRANK_SUFFIX,
  type LowRankOptions,
  type Recipe,
  usesPass,
} from "./recipe.ts";
import type { LayerReport, PassResult } from "./types.ts";
import {
  constantLayers,
  constantValue,
  type Layer,
  layerBytes,
  layerMacs,
  storedBytes,
} from "./prune.ts";

/**
 * Layers whose SVD would take more than about min(m,n)²·max(m,n) = 2^32 steps (≈ 1600×1600;
 * 1024×1024 takes 3–5 s) are skipped with a note.
 */
export const MAX_SVD_WORK = 2 ** 32;

export interface Svd {
  /** min(m, n). */
  k: number;
  /** Singular values, descending, ≥ 0. */
  s: Float64Array;
  /** U: m × k, row-major, orthonormal columns. */
  u: Float64Array;
  /** V: n × k, row-major, orthonormal columns; A = U · diag(s) · Vᵀ. */
  v: Float64Array;
}

/** |(a, b)| without overflow or destructive underflow. */
function hyp(a: number, b: number): number {
  const x = Math.abs(a), y = Math.abs(b);
  if (x > y) {
    const r = y / x;
    return x * Math.sqrt(1 + r * r);
  }
  if (y === 0) return 0;
  const r = x / y;
  return y * Math.sqrt(1 + r * r);
}

/** Rows r1, r2 (of length len) ← [c s; −s c] applied to them. */
function rotate(a: Float64Array, len: number, r1: number, r2: number, c: number, s: number): void {
  const o1 = r1 * len, o2 = r2 * len;
  for (let i = 0; i < len; i++) {
    const x = a[o1 + i], y = a[o2 + i];
    a[o1 + i] = c * x + s * y;
    a[o2 + i] = c * y - s * x;
  }
}

/**
 * SVD of a tall matrix (m ≥ n ≥ 1), `a` row-major, overwritten. Returns singular values
 * (unsorted, ≥ 0) and Uᵀ (n × m), Vᵀ (n × n).
 */
function svdTall(
  a: Float64Array,
  m: number,
  n: number,
): { s: Float64Array; ut: Float64Array; vt: Float64Array } {
  const s = new Float64Array(n), e = new Float64Array(n);
  const tauL = new Float64Array(n), tauR = new Float64Array(n);
  const w = new Float64Array(n);
  // ---- Householder bidiagonalization: A = Q B Pᵀ, vectors stored in A (LAPACK layout) ----
  for (let k = 0; k < n; k++) {
    // Left reflector zeroing A[k+1:, k].
    let tail = 0;
    for (let i = k + 1; i < m; i++) tail += a[i * n + k] * a[i * n + k];
    const alpha = a[k * n + k];
    if (tail === 0) {
      s[k] = alpha;
    } else {
      const beta = alpha >= 0 ? -Math.sqrt(alpha * alpha + tail) : Math.sqrt(alpha * alpha + tail);
      const inv = 1 / (alpha - beta);
      for (let i = k + 1; i < m; i++) a[i * n + k] *= inv;
      const tau = (beta - alpha) / beta;
      tauL[k] = tau;
      s[k] = beta;
      // A[k:, k+1:] −= tau · v · (vᵀ A[k:, k+1:])
      if (k + 1 < n) {
        for (let j = k + 1; j < n; j++) w[j] = a[k * n + j];
        for (let i = k + 1; i < m; i++) {
          const vi = a[i * n + k];
          if (vi === 0) continue;
          const row = i * n;
          for (let j = k + 1; j < n; j++) w[j] += vi * a[row + j];
        }
        for (let j = k + 1; j < n; j++) a[k * n + j] -= tau * w[j];
        for (let i = k + 1; i < m; i++) {
          const vi = tau * a[i * n + k];
          if (vi === 0) continue;
          const row = i * n;
          for (let j = k + 1; j < n; j++) a[row + j] -= vi * w[j];
        }
      }
    }
    if (k >= n - 1) continue;
    // Right reflector zeroing A[k, k+2:].
    const row = k * n;
    const alphaR = a[row + k + 1];
    let tailR = 0;
    for (let j = k + 2; j < n; j++) tailR += a[row + j] * a[row + j];
    if (tailR === 0) {
      e[k] = alphaR;
      continue;
    }
    const betaR = alphaR >= 0
      ? -Math.sqrt(alphaR * alphaR + tailR)
      : Math.sqrt(alphaR * alphaR + tailR);
    const invR = 1 / (alphaR - betaR);
    for (let j = k + 2; j < n; j++) a[row + j] *= invR;
    const tau = (betaR - alphaR) / betaR;
    tauR[k] = tau;
    e[k] = betaR;
    // A[k+1:, k+1:] −= tau · (A[k+1:, k+1:] u) uᵀ
    for (let i = k + 1; i < m; i++) {
      const r = i * n;
      let dot = a[r + k + 1];
      for (let j = k + 2; j < n; j++) dot += a[r + j] * a[row + j];
      dot *= tau;
      if (dot === 0) continue;
      a[r + k + 1] -= dot;
      for (let j = k + 2; j < n; j++) a[r + j] -= dot * a[row + j];
    }
  }
  // ---- Uᵀ = Eᵀ H_{n−1} … H_0 and Vᵀ = G_{n−3} … G_0, accumulated backwards ----
  const ut = new Float64Array(n * m);
  for (let r = 0; r < n; r++) ut[r * m + r] = 1;
  const vec = new Float64Array(Math.max(m, n));
  for (let j = n - 1; j >= 0; j--) {
    const tau = tauL[j];
    if (tau === 0) continue;
    vec[j] = 1;
    for (let i = j + 1; i < m; i++) vec[i] = a[i * n + j];
    // Rows above j are still unit vectors with zeros where H_j acts.
    for (let r = j; r < n; r++) {
      const o = r * m;
      let dot = 0;
      for (let i = j; i < m; i++) dot += ut[o + i] * vec[i];
      dot *= tau;
      if (dot === 0) continue;
      for (let i = j; i < m; i++) ut[o + i] -= dot * vec[i];
    }
  }
  const vt = new Float64Array(n * n);
  for (let r = 0; r < n; r++) vt[r * n + r] = 1;
  for (let k = n - 3; k >= 0; k--) {
    const tau = tauR[k];
    if (tau === 0) continue;
    vec[k + 1] = 1;
    for (let j = k + 2; j < n; j++) vec[j] = a[k * n + j];
    for (let r = k + 1; r < n; r++) {
      const o = r * n;
      let dot = 0;
      for (let j = k + 1; j < n; j++) dot += vt[o + j] * vec[j];
      dot *= tau;
      if (dot === 0) continue;
      for (let j = k + 1; j < n; j++) vt[o + j] -= dot * vec[j];
    }
  }
  // ---- implicit-shift QR on the bidiagonal (s, e) ----
  const eps = 2 ** -52, tiny = 2 ** -966;
  let p = n, iter = 0;
  while (p > 0) {
    if (iter > 1000) throw new Error(`svd: no convergence after ${iter} QR steps`);
    let k: number, kase: number;
    // kase 1: s[p−1] and e[k−1] negligible; 2: s[k] negligible; 3: a QR step; 4: converged.
    for (k = p - 2; k >= 0; k--) {
      if (Math.abs(e[k]) <= tiny + eps * (Math.abs(s[k]) + Math.abs(s[k + 1]))) {
        e[k] = 0;
        break;
      }
    }
    if (k === p - 2) kase = 4;
    else {
      let ks: number;
      for (ks = p - 1; ks > k; ks--) {
        const t = (ks !== p ? Math.abs(e[ks]) : 0) + (ks !== k + 1 ? Math.abs(e[ks - 1]) : 0);
        if (Math.abs(s[ks]) <= tiny + eps * t) {
          s[ks] = 0;
          break;
        }
      }
      if (ks === k) kase = 3;
      else if (ks === p - 1) kase = 1;
      else {
        kase = 2;
        k = ks;
      }
    }
    k++;
    if (kase === 1) {
      // Deflate a negligible s[p−1].
      let f = e[p - 2];
      e[p - 2] = 0;
      for (let j = p - 2; j >= k; j--) {
        const t = hyp(s[j], f);
        const cs = s[j] / t, sn = f / t;
        s[j] = t;
        if (j !== k) {
          f = -sn * e[j - 1];
          e[j - 1] = cs * e[j - 1];
        }
        rotate(vt, n, j, p - 1, cs, sn);
      }
    } else if (kase === 2) {
      // Split at a negligible s[k−1].
      let f = e[k - 1];
      e[k - 1] = 0;
      for (let j = k; j < p; j++) {
        const t = hyp(s[j], f);
        const cs = s[j] / t, sn = f / t;
        s[j] = t;
        f = -sn * e[j];
        e[j] = cs * e[j];
        rotate(ut, m, j, k - 1, cs, sn);
      }
    } else if (kase === 3) {
      // One QR step with the Wilkinson-like shift from the trailing 2×2.
      const scale = Math.max(
        Math.abs(s[p - 1]),
        Math.abs(s[p - 2]),
        Math.abs(e[p - 2]),
        Math.abs(s[k]),
        Math.abs(e[k]),
      );
      const sp = s[p - 1] / scale, spm1 = s[p - 2] / scale, epm1 = e[p - 2] / scale;
      const sk = s[k] / scale, ek = e[k] / scale;
      const b = ((spm1 + sp) * (spm1 - sp) + epm1 * epm1) / 2;
      const c = sp * epm1 * (sp * epm1);
      let shift = 0;
      if (b !== 0 || c !== 0) {
        shift = Math.sqrt(b * b + c);
        if (b < 0) shift = -shift;
        shift = c / (b + shift);
      }
      let f = (sk + sp) * (sk - sp) + shift;
      let g = sk * ek;
      for (let j = k; j < p - 1; j++) {
        let t = hyp(f, g);
        let cs = f / t, sn = g / t;
        if (j !== k) e[j - 1] = t;
        f = cs * s[j] + sn * e[j];
        e[j] = cs * e[j] - sn * s[j];
        g = sn * s[j + 1];
        s[j + 1] = cs * s[j + 1];
        rotate(vt, n, j, j + 1, cs, sn);
        t = hyp(f, g);
        cs = f / t;
        sn = g / t;
        s[j] = t;
        f = cs * e[j] + sn * s[j + 1];
        s[j + 1] = -sn * e[j] + cs * s[j + 1];
        g = sn * e[j + 1];
        e[j + 1] = cs * e[j + 1];
        rotate(ut, m, j, j + 1, cs, sn);
      }
      e[p - 2] = f;
      iter++;
    } else {
      // Converged: make s[k] non-negative.
      if (s[k] <= 0) {
        s[k] = s[k] < 0 ? -s[k] : 0;
        for (let i = k * n; i < (k + 1) * n; i++) vt[i] = -vt[i];
      }
      iter = 0;
      p--;
    }
  }
  return { s, ut, vt };
}

/**
 * Singular value decomposition of the m × n row-major matrix `a` (not modified):
 * A = U · diag(s) · Vᵀ with s descending.
 */
export function svd(a: ArrayLike<number>, m: number, n: number): Svd {
  if (!Number.isSafeInteger(m) || !Number.isSafeInteger(n) || m < 0 || n < 0) {
    throw new ArgumentError(`svd: bad matrix size ${m}×${n}`);
  }
  if (a.length !== m * n) {
    throw new ArgumentError(`svd: ${a.length} values for a ${m}×${n} matrix`);
  }
  const k = Math.min(m, n);
  if (k === 0) return { k, s: new Float64Array(0), u: new Float64Array(0), v: new Float64Array(0) };
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) {
      throw new ArgumentError(`svd: the matrix has a non-finite value at ${i}`);
    }
  }
  const tall = m >= n;
  const rows = tall ? m : n, cols = tall ? n : m;
  const work = new Float64Array(rows * cols);
  if (tall) work.set(a);
  else for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) work[j * m + i] = a[i * n + j];
  const { s, ut, vt } = svdTall(work, rows, cols);
  const order = Array.from({ length: k }, (_, i) => i).sort((x, y) => s[y] - s[x] || x - y);
  // Of the tall problem: left vectors have `rows` entries, right ones `cols`.
  const left = new Float64Array(rows * k), right = new Float64Array(cols * k);
  order.forEach((src, c) => {
    for (let i = 0; i < rows; i++) left[i * k + c] = ut[src * rows + i];
    for (let i = 0; i < cols; i++) right[i * k + c] = vt[src * cols + i];
  });
  const sorted = Float64Array.from(order, (i) => s[i]);
  return tall ? { k, s: sorted, u: left, v: right } : { k, s: sorted, u: right, v: left };
}

/** The rank a recipe asks for, given the singular values (descending). */
export function chooseRank(s: Float64Array, opts: LowRankOptions): number {
  if (opts.rank !== undefined) return Math.min(opts.rank, s.length);
  let total = 0;
  for (const x of s) total += x * x;
  if (total === 0) return 1;
  const want = opts.energy! * total;
  let acc = 0;
  for (let r = 0; r < s.length; r++) {
    acc += s[r] * s[r];
    // A relative slack so energy = 1 is reached despite rounding.
    if (acc >= want * (1 - 1e-12)) return r + 1;
  }
  return s.length;
}

/** The "lowrank" section, validated, or undefined when only per-layer settings factor. */
function checkOptions(recipe: Recipe): LowRankOptions | undefined {
  checkLayerRecipes(recipe);
  const o = recipe.lowrank;
  if (!o) {
    if (usesPass(recipe, "lowrank")) return undefined;
    throw new ArgumentError(
      "lowrank: the recipe has no 'lowrank' section and no layer with its own rank or energy",
    );
  }
  if ((o.rank === undefined) === (o.energy === undefined)) {
    throw new ArgumentError("lowrank: give exactly one of rank, energy");
  }
  if (o.rank !== undefined && (!Number.isInteger(o.rank) || o.rank < 1)) {
    throw new ArgumentError(
      `lowrank: rank must be a positive integer, got ${JSON.stringify(o.rank)}`,
    );
  }
  if (o.energy !== undefined && !(typeof o.energy === "number" && o.energy > 0 && o.energy <= 1)) {
    throw new ArgumentError(`lowrank: energy must be in (0, 1], got ${JSON.stringify(o.energy)}`);
  }
  return o;
}

function rewrite(g: Graph, l: Layer, f1: Float32Array, f2: Float32Array, r: number): void {
  const n = l.node;
  const out = n.outputs[0];
  const mid = g.value(`${out.name}${LOWRANK_SUFFIX}`);
  mid.type = out.type ?? "float32";
  const outUnits = l.m.rows, k = l.m.k;
  let w1: Value, w2: Value;
  let attrs1: Node["attrs"], attrs2: Node["attrs"];
  const keep = (names: string[]) =>
    Object.fromEntries(names.filter((a) => n.attrs[a] !== undefined).map((a) => [a, n.attrs[a]]));
  if (n.op === "Conv") {
    w1 = constantValue(g, `${l.weight.name}::lowrank_a`, {
      type: "float32",
      dims: [r, ...l.dims.slice(1)],
      data: f1,
    });
    const spatial = l.dims.length - 2;
    w2 = constantValue(g, `${l.weight.name}::lowrank_b`, {
      type: "float32",
      dims: [outUnits, r, ...Array(spatial).fill(1)],
      data: f2,
    });
    attrs1 = { ...n.attrs };
    delete attrs1.activation_min;
    delete attrs1.activation_max;
    if (Array.isArray(n.attrs.kernel_shape)) attrs1.kernel_shape = n.attrs.kernel_shape;
    attrs2 = {
      kernel_shape: Array(spatial).fill(1),
      ...keep(["activation_min", "activation_max"]),
    };
    if (out.shape) mid.shape = [out.shape[0], r, ...out.shape.slice(2)];
  } else if (n.op === "Gemm") {
    w1 = constantValue(g, `${l.weight.name}::lowrank_a`, {
      type: "float32",
      dims: [r, k],
      data: f1,
    });
    w2 = constantValue(g, `${l.weight.name}::lowrank_b`, {
      type: "float32",
      dims: [outUnits, r],
      data: f2,
    });
    attrs1 = { ...keep(["transA", "alpha"]), transB: 1 };
    attrs2 = { ...keep(["beta", "activation_min", "activation_max"]), transB: 1 };
    if (out.shape) mid.shape = [out.shape[0], r];
  } else {
    // MatMul wants B as [K, r] and [r, N].
    const t1 = new Float32Array(k * r), t2 = new Float32Array(r * outUnits);
    for (let i = 0; i < r; i++) for (let j = 0; j < k; j++) t1[j * r + i] = f1[i * k + j];
    for (let o = 0; o < outUnits; o++) {
      for (let i = 0; i < r; i++) t2[i * outUnits + o] = f2[o * r + i];
    }
    w1 = constantValue(g, `${l.weight.name}::lowrank_a`, {
      type: "float32",
      dims: [k, r],
      data: t1,
    });
    w2 = constantValue(g, `${l.weight.name}::lowrank_b`, {
      type: "float32",
      dims: [r, outUnits],
      data: t2,
    });
    attrs1 = {};
    attrs2 = keep(["activation_min", "activation_max"]);
    if (out.shape) mid.shape = [...out.shape.slice(0, -1), r];
  }
  const first = new Node(
    `${n.name}${LOWRANK_SUFFIX}`,
    n.op,
    n.domain,
    [n.inputs[0], w1],
    [mid],
    attrs1,
  );
  // The original node becomes the second factor (in place, so its name and output stay).
  for (const v of n.inputs) {
    const i = v ? v.consumers.indexOf(n) : -1;
    if (i >= 0) v!.consumers.splice(i, 1);
  }
  g.values.delete(l.weight.name);
  n.inputs = [mid, w2, ...n.inputs.slice(2)];
  for (const v of n.inputs) v?.consumers.push(n);
  n.attrs = attrs2;
  g.addNode(first);
}

/** The low-rank pass (see the top of this file). */
export function lowRankPass(g: Graph, recipe: Recipe): PassResult {
  checkOptions(recipe);
  const notes: string[] = [];
  const layers: LayerReport[] = [];
  try {
    // For the MAC counts only: a graph shape inference cannot follow still factors.
    inferShapes(g);
  } catch {
    notes.push("lowrank: shape inference failed; MACs are not reported");
  }
  for (const l of constantLayers(g, recipe, notes, "lowrank")) {
    const n = l.node;
    const opts = l.settings.lowrank!;
    const outUnits = l.m.rows, k = l.m.k;
    const group = typeof n.attrs.group === "number" ? n.attrs.group : 1;
    if (n.op === "Conv" && group !== 1) {
      notes.push(`${n.name}: grouped convolution (group ${group}); not factored`);
      continue;
    }
    const small = Math.min(outUnits, k), large = Math.max(outUnits, k);
    if (opts.rank !== undefined && Math.min(opts.rank, small) * (k + outUnits) >= k * outUnits) {
      notes.push(
        `${n.name}: rank ${
          Math.min(opts.rank, small)
        } would not reduce its ${k}×${outUnits} weights`,
      );
      continue;
    }
    if (small * small * large > MAX_SVD_WORK) {
      notes.push(`${n.name}: ${outUnits}×${k} is too large for an exact SVD here; not factored`);
      continue;
    }
    // W as [outputs, K].
    const x = new Float64Array(outUnits * k);
    for (let o = 0; o < outUnits; o++) {
      for (let j = 0; j < k; j++) x[o * k + j] = l.w[o * l.m.rowStride + j * l.m.kStride];
    }
    const d = svd(x, outUnits, k);
    const r = chooseRank(d.s, opts);
    let total = 0, kept = 0;
    d.s.forEach((v, i) => {
      total += v * v;
      if (i < r) kept += v * v;
    });
    const energy = total > 0 ? kept / total : 1;
    if (r * (k + outUnits) >= k * outUnits) {
      notes.push(
        `${n.name}: rank ${r} (energy ${
          (energy * 100).toFixed(2)
        }%) would not reduce its ${k}×${outUnits} weights; not factored`,
      );
      continue;
    }
    // F1 = √Σ V_rᵀ [r, K] (input side), F2 = U_r √Σ [outputs, r] (output side).
    const f1 = new Float32Array(r * k), f2 = new Float32Array(outUnits * r);
    for (let i = 0; i < r; i++) {
      const sq = Math.sqrt(d.s[i]);
      for (let j = 0; j < k; j++) f1[i * k + j] = sq * d.v[j * d.k + i];
      for (let o = 0; o < outUnits; o++) f2[o * r + i] = sq * d.u[o * d.k + i];
    }
    const bytesBefore = layerBytes(n);
    const macsBefore = layerMacs(n);
    rewrite(g, l, f1, f2, r);
    const params = elementCount(l.dims);
    layers.push({
      name: n.name,
      op: n.op,
      method: `rank ${r}`,
      params,
      nonzeros: r * (k + outUnits),
      bytesBefore,
      bytesAfter: 4 * r * (k + outUnits) + (n.op === "MatMul" ? 0 : storedBytes(n.inputs[2])),
      macsBefore,
      macsAfter: macsBefore === undefined
        ? undefined
        : Math.round((macsBefore / outUnits) * r + (macsBefore / k) * r),
      notes: [
        `rank ${r} of ${d.k}: ${(energy * 100).toFixed(2)}% of Σσ², relative error ≤ ${
          Math.sqrt(Math.max(0, 1 - energy)).toPrecision(3)
        }`,
      ],
    });
  }
  if (layers.length) g.topoSort();
  return { layers, notes };
}
