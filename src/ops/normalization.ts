// Normalizations: Softmax/LogSoftmax/Hardmax, BatchNormalization (inference), Instance-, Layer-,
// Group-, Lp- and MeanVarianceNormalization, LRN.
//
// Statistics are computed in float64 whatever the storage type (which is at least as precise as
// stash_type asks), with a two-pass mean/variance so large offsets do not cancel. Loops walk the
// input as [outer, n, inner] blocks so the inner loop is contiguous.
import type { Tensor, TensorType } from "../graph/tensor.ts";
import type { Node } from "../graph/ir.ts";
import type { OpImpl } from "./types.ts";
import { ArgumentError, ModelError, ShapeError } from "../errors.ts";
import { attrFloat, attrInt, attrInts } from "./attrs.ts";
import { broadcastStrides, isFloat, normAxis } from "./tensor_util.ts";
import { numView, requireInput } from "./reduce.ts";

const floatInput = (t: Tensor | undefined, node: Node, what: string): Tensor =>
  requireInput(t, node, what, isFloat);

function where(node: Node): string {
  return `node '${node.name}' (${node.op})`;
}

/** A per-channel parameter: numbers of exactly `n` elements. */
function param(t: Tensor | undefined, node: Node, what: string, n: number): ArrayLike<number> {
  const p = floatInput(t, node, what);
  if (p.data.length !== n) {
    throw new ShapeError(`${where(node)}: ${what} has ${p.data.length} values, expected ${n}`);
  }
  return numView(p);
}

function product(dims: readonly number[], from = 0, to = dims.length): number {
  let p = 1;
  for (let i = from; i < to; i++) p *= dims[i];
  return p;
}

// ---- Softmax / LogSoftmax / Hardmax ----

const SOFTMAX = 0, LOG_SOFTMAX = 1, HARDMAX = 2;

function softmaxOp(mode: number): OpImpl {
  return (inputs, ctx) => {
    const node = ctx.node;
    const x = floatInput(inputs[0], node, "input");
    const r = x.dims.length;
    let outer: number, n: number, inner: number;
    if (ctx.opset < 13) {
      // Coerced to 2-D at axis: each row is the whole trailing block.
      const axis = normAxis(attrInt(node, "axis", 1), r, node.name);
      outer = product(x.dims, 0, axis);
      n = product(x.dims, axis);
      inner = 1;
    } else {
      const axis = normAxis(attrInt(node, "axis", -1), r, node.name);
      outer = product(x.dims, 0, axis);
      n = r ? x.dims[axis] : 1;
      inner = product(x.dims, axis + 1);
    }
    const out = ctx.alloc(0, x.type, x.dims);
    if (x.data.length === 0) return [out];
    const xs = numView(x), ys = numView(out);
    if (inner === 1) softmaxRows(xs, ys, outer, n, mode);
    else softmaxStrided(xs, ys, outer, n, inner, mode);
    return [out];
  };
}

/** Rows of n contiguous values. Subtracting the row max keeps exp() finite for large inputs. */
function softmaxRows(
  xs: ArrayLike<number>,
  ys: { [i: number]: number },
  outer: number,
  n: number,
  mode: number,
): void {
  const e = new Float64Array(n);
  for (let o = 0; o < outer; o++) {
    const base = o * n;
    let m = -Infinity, arg = 0;
    for (let k = 0; k < n; k++) {
      const v = xs[base + k];
      if (v > m) {
        m = v;
        arg = k;
      }
    }
    if (mode === HARDMAX) {
      for (let k = 0; k < n; k++) ys[base + k] = k === arg ? 1 : 0;
      continue;
    }
    let s = 0;
    for (let k = 0; k < n; k++) {
      const v = Math.exp(xs[base + k] - m);
      e[k] = v;
      s += v;
    }
    if (mode === SOFTMAX) {
      const inv = 1 / s;
      for (let k = 0; k < n; k++) ys[base + k] = e[k] * inv;
    } else {
      const shift = m + Math.log(s);
      for (let k = 0; k < n; k++) ys[base + k] = xs[base + k] - shift;
    }
  }
}

/** Softmax along a non-innermost axis: per-column max and sum over rows of `inner`. */
function softmaxStrided(
  xs: ArrayLike<number>,
  ys: { [i: number]: number },
  outer: number,
  n: number,
  inner: number,
  mode: number,
): void {
  const m = new Float64Array(inner), s = new Float64Array(inner), arg = new Int32Array(inner);
  const e = mode === SOFTMAX ? new Float64Array(n * inner) : undefined;
  for (let o = 0; o < outer; o++) {
    const base = o * n * inner;
    m.fill(-Infinity);
    arg.fill(0);
    for (let k = 0; k < n; k++) {
      const row = base + k * inner;
      for (let i = 0; i < inner; i++) {
        if (xs[row + i] > m[i]) {
          m[i] = xs[row + i];
          arg[i] = k;
        }
      }
    }
    if (mode === HARDMAX) {
      for (let k = 0; k < n; k++) {
        const row = base + k * inner;
        for (let i = 0; i < inner; i++) ys[row + i] = arg[i] === k ? 1 : 0;
      }
      continue;
    }
    s.fill(0);
    for (let k = 0; k < n; k++) {
      const row = base + k * inner;
      for (let i = 0; i < inner; i++) {
        const v = Math.exp(xs[row + i] - m[i]);
        if (e) e[k * inner + i] = v;
        s[i] += v;
      }
    }
    if (e) {
      for (let i = 0; i < inner; i++) s[i] = 1 / s[i];
      for (let k = 0; k < n; k++) {
        const row = base + k * inner;
        for (let i = 0; i < inner; i++) ys[row + i] = e[k * inner + i] * s[i];
      }
    } else {
      for (let i = 0; i < inner; i++) s[i] = m[i] + Math.log(s[i]);
      for (let k = 0; k < n; k++) {
        const row = base + k * inner;
        for (let i = 0; i < inner; i++) ys[row + i] = xs[row + i] - s[i];
      }
    }
  }
}

// ---- BatchNormalization (inference) ----

const batchNorm: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const x = floatInput(inputs[0], node, "X");
  if (attrInt(node, "training_mode", 0) !== 0) {
    throw new ModelError(`${where(node)}: training_mode is not supported (inference only)`);
  }
  if (node.outputs.slice(1).some((v) => v && v.name !== "")) {
    throw new ModelError(
      `${where(node)}: outputs beyond Y (training statistics) are not supported`,
    );
  }
  const eps = attrFloat(node, "epsilon", 1e-5);
  const dims = x.dims;
  const c = dims.length >= 2 ? dims[1] : 1;
  const sp = product(dims, 2);
  const n = dims.length ? dims[0] : 1;
  // Opset 7-8 `spatial=0`: statistics per activation (C × D1 × … × Dn), not per channel.
  const perActivation = ctx.opset < 9 && attrInt(node, "spatial", 1) === 0;
  const pn = perActivation ? c * sp : c;
  const scale = param(inputs[1], node, "scale", pn);
  const bias = param(inputs[2], node, "B", pn);
  const mean = param(inputs[3], node, "input_mean", pn);
  const vr = param(inputs[4], node, "input_var", pn);
  // y = x·a + b with a = scale/√(var+ε), b = B − mean·a.
  const a = new Float64Array(pn), b = new Float64Array(pn);
  for (let i = 0; i < pn; i++) {
    a[i] = scale[i] / Math.sqrt(vr[i] + eps);
    b[i] = bias[i] - mean[i] * a[i];
  }
  const out = ctx.alloc(0, x.type, dims);
  const xs = numView(x), ys = numView(out);
  if (perActivation) {
    for (let s = 0, i = 0; s < n; s++) {
      for (let j = 0; j < pn; j++, i++) ys[i] = xs[i] * a[j] + b[j];
    }
  } else {
    for (let s = 0, i = 0; s < n; s++) {
      for (let ch = 0; ch < c; ch++) {
        const ac = a[ch], bc = b[ch], end = i + sp;
        for (; i < end; i++) ys[i] = xs[i] * ac + bc;
      }
    }
  }
  return [out];
};

// ---- Instance / Group normalization ----

/**
 * Normalizes `groups` contiguous blocks of `len` values each; block g belongs to channel rows of
 * `chLen` values whose scale/bias are scale[chan(g, row)]. Shared by Instance- and
 * GroupNormalization (instance norm is group norm with one channel per group).
 */
function normalizeBlocks(
  xs: ArrayLike<number>,
  ys: { [i: number]: number },
  blocks: number,
  len: number,
  chLen: number,
  eps: number,
  chanOf: (block: number, row: number) => number,
  scale: ArrayLike<number>,
  bias: ArrayLike<number>,
): void {
  for (let g = 0; g < blocks; g++) {
    const base = g * len, end = base + len;
    let sum = 0;
    for (let i = base; i < end; i++) sum += xs[i];
    const mean = sum / len;
    let sq = 0;
    for (let i = base; i < end; i++) {
      const d = xs[i] - mean;
      sq += d * d;
    }
    const inv = 1 / Math.sqrt(sq / len + eps);
    for (let row = 0, i = base; i < end; row++) {
      const ch = chanOf(g, row);
      const a = scale[ch] * inv, b = bias[ch] - mean * a;
      const rowEnd = i + chLen;
      for (; i < rowEnd; i++) ys[i] = xs[i] * a + b;
    }
  }
}

const instanceNorm: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const x = floatInput(inputs[0], node, "input");
  if (x.dims.length < 2) {
    throw new ShapeError(`${where(node)}: input must be N×C×…, got [${x.dims}]`);
  }
  const [n, c] = x.dims;
  const sp = product(x.dims, 2);
  const scale = param(inputs[1], node, "scale", c);
  const bias = param(inputs[2], node, "B", c);
  const out = ctx.alloc(0, x.type, x.dims);
  if (sp === 0) return [out];
  const eps = attrFloat(node, "epsilon", 1e-5);
  normalizeBlocks(numView(x), numView(out), n * c, sp, sp, eps, (g) => g % c, scale, bias);
  return [out];
};

const groupNorm: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const x = floatInput(inputs[0], node, "X");
  if (x.dims.length < 2) {
    throw new ShapeError(`${where(node)}: X must be N×C×…, got [${x.dims}]`);
  }
  if (node.attrs.num_groups === undefined) {
    throw new ModelError(`${where(node)}: attribute 'num_groups' is required`);
  }
  const groups = attrInt(node, "num_groups", 1);
  const [n, c] = x.dims;
  if (!(groups >= 1) || c % groups !== 0) {
    throw new ArgumentError(`${where(node)}: ${c} channels do not split into ${groups} groups`);
  }
  const sp = product(x.dims, 2);
  const perGroup = c / groups;
  // Opset 18 has scale/bias per group, opset 21 per channel; the lengths tell them apart (and
  // agree when each group is one channel).
  const sc = floatInput(inputs[1], node, "scale"), bi = floatInput(inputs[2], node, "bias");
  const len = sc.data.length;
  if ((len !== c && len !== groups) || bi.data.length !== len) {
    throw new ShapeError(
      `${where(node)}: scale/bias have ${len}/${bi.data.length} values; expected ${c} (channels)` +
        ` or ${groups} (groups)`,
    );
  }
  const out = ctx.alloc(0, x.type, x.dims);
  if (sp === 0 || x.data.length === 0) return [out];
  const eps = attrFloat(node, "epsilon", 1e-5);
  const chanOf = len === c
    ? (g: number, row: number) => (g % groups) * perGroup + row
    : (g: number) => g % groups;
  normalizeBlocks(
    numView(x),
    numView(out),
    n * groups,
    perGroup * sp,
    sp,
    eps,
    chanOf,
    numView(sc),
    numView(bi),
  );
  return [out];
};

// ---- LayerNormalization ----

/**
 * `t` broadcast (unidirectionally, right-aligned) to `target` dims, as numbers; the data itself
 * when it already has the target's element count.
 */
function broadcastTo(t: Tensor, target: readonly number[], node: Node, what: string) {
  const td = t.dims;
  const bad = td.length > target.length ||
    td.some((d, i) => d !== 1 && d !== target[target.length - td.length + i]);
  if (bad) {
    throw new ShapeError(`${where(node)}: ${what} [${td}] does not broadcast to [${target}]`);
  }
  const src = numView(t);
  const n = product(target);
  if (src.length === n) return src;
  const str = broadcastStrides(td, target);
  const out = new Float64Array(n);
  const idx = new Array<number>(target.length).fill(0);
  for (let i = 0, off = 0; i < n; i++) {
    out[i] = src[off];
    for (let a = target.length - 1; a >= 0; a--) {
      off += str[a];
      if (++idx[a] < target[a]) break;
      off -= str[a] * target[a];
      idx[a] = 0;
    }
  }
  return out;
}

const layerNorm: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const x = floatInput(inputs[0], node, "X");
  const r = x.dims.length;
  const axis = normAxis(attrInt(node, "axis", -1), r, node.name);
  const eps = attrFloat(node, "epsilon", 1e-5);
  const stash = attrInt(node, "stash_type", 1);
  const rows = product(x.dims, 0, axis), d = product(x.dims, axis);
  // Scale/B broadcast to the normalized block, or (rarely) to all of X.
  const normDims = x.dims.slice(axis);
  const scaleT = floatInput(inputs[1], node, "Scale");
  const biasT = inputs[2] && floatInput(inputs[2], node, "B");
  const full = (t: Tensor | undefined) => t !== undefined && t.dims.length > normDims.length;
  const scale = broadcastTo(scaleT, full(scaleT) ? x.dims : normDims, node, "Scale");
  const bias = biasT && broadcastTo(biasT, full(biasT) ? x.dims : normDims, node, "B");
  const sFull = full(scaleT), bFull = full(biasT);

  const out = ctx.alloc(0, x.type, x.dims);
  const statDims = x.dims.map((v, i) => (i < axis ? v : 1));
  const statType: TensorType = stash === 1 ? "float32" : x.type;
  const want = (i: number) => node.outputs.length > i && node.outputs[i].name !== "";
  const meanT = want(1) ? ctx.alloc(1, statType, statDims) : undefined;
  const invT = want(2) ? ctx.alloc(2, statType, statDims) : undefined;
  const meanOut = meanT && numView(meanT), invOut = invT && numView(invT);
  const xs = numView(x), ys = numView(out);
  for (let row = 0; row < rows; row++) {
    const base = row * d, end = base + d;
    let sum = 0;
    for (let i = base; i < end; i++) sum += xs[i];
    const mean = d ? sum / d : NaN;
    let sq = 0;
    for (let i = base; i < end; i++) {
      const v = xs[i] - mean;
      sq += v * v;
    }
    const inv = 1 / Math.sqrt(sq / d + eps);
    if (meanOut) meanOut[row] = mean;
    if (invOut) invOut[row] = inv;
    const so = sFull ? base : 0, bo = bFull ? base : 0;
    if (bias) {
      for (let j = 0; j < d; j++) {
        ys[base + j] = (xs[base + j] - mean) * inv * scale[so + j] + bias[bo + j];
      }
    } else {
      for (let j = 0; j < d; j++) ys[base + j] = (xs[base + j] - mean) * inv * scale[so + j];
    }
  }
  const res = [out];
  if (meanT || invT) res.push(meanT ?? ctx.alloc(1, statType, statDims));
  if (invT) res.push(invT);
  return res;
};

// ---- LRN ----

const lrn: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const x = floatInput(inputs[0], node, "X");
  if (node.attrs.size === undefined) {
    throw new ModelError(`${where(node)}: attribute 'size' is required`);
  }
  const size = attrInt(node, "size", 1);
  if (!Number.isInteger(size) || size < 1) {
    throw new ModelError(`${where(node)}: size must be a positive integer, got ${size}`);
  }
  if (x.dims.length < 2) throw new ShapeError(`${where(node)}: X must be N×C×…, got [${x.dims}]`);
  const alpha = attrFloat(node, "alpha", 1e-4), beta = attrFloat(node, "beta", 0.75);
  const bias = attrFloat(node, "bias", 1);
  const [n, c] = x.dims;
  const sp = product(x.dims, 2);
  const out = ctx.alloc(0, x.type, x.dims);
  const xs = numView(x), ys = numView(out);
  // The window over channels is [c − ⌊(size−1)/2⌋, c + ⌈(size−1)/2⌉], clipped.
  const before = Math.floor((size - 1) / 2), after = Math.ceil((size - 1) / 2);
  const k = alpha / size;
  if (x.type === "float32") {
    lrnF32(
      x.data as Float32Array,
      out.data as Float32Array,
      n,
      c,
      sp,
      before,
      after,
      k,
      bias,
      beta,
    );
    return [out];
  }
  const sq = new Float64Array(c * sp), acc = new Float64Array(sp);
  for (let b = 0; b < n; b++) {
    const base = b * c * sp;
    for (let i = 0; i < c * sp; i++) sq[i] = xs[base + i] * xs[base + i];
    for (let ch = 0; ch < c; ch++) {
      acc.fill(0);
      const lo = Math.max(0, ch - before), hi = Math.min(c - 1, ch + after);
      for (let cc = lo; cc <= hi; cc++) {
        const o = cc * sp;
        for (let i = 0; i < sp; i++) acc[i] += sq[o + i];
      }
      const o = base + ch * sp;
      for (let i = 0; i < sp; i++) ys[o + i] = xs[o + i] / Math.pow(bias + k * acc[i], beta);
    }
  }
  return [out];
};

// ---- MeanVarianceNormalization ----

/** For each element of `dims`, the index of its group when the `red` axes are collapsed. */
function groupIndex(dims: readonly number[], red: readonly boolean[]): [Int32Array, number] {
  const r = dims.length;
  const str = new Array<number>(r).fill(0);
  let groups = 1;
  for (let i = r - 1; i >= 0; i--) {
    if (red[i]) continue;
    str[i] = groups;
    groups *= dims[i];
  }
  const total = product(dims);
  const gi = new Int32Array(total);
  const idx = new Array<number>(r).fill(0);
  for (let i = 0, g = 0; i < total; i++) {
    gi[i] = g;
    for (let a = r - 1; a >= 0; a--) {
      g += str[a];
      if (++idx[a] < dims[a]) break;
      g -= str[a] * dims[a];
      idx[a] = 0;
    }
  }
  return [gi, groups];
}

const mvn: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const x = floatInput(inputs[0], node, "X");
  const r = x.dims.length;
  const axes = attrInts(node, "axes") ?? [0, 2, 3];
  const red = new Array<boolean>(r).fill(false);
  for (const a of axes) red[normAxis(a, r, node.name)] = true;
  const out = ctx.alloc(0, x.type, x.dims);
  if (x.data.length === 0) return [out];
  const [gi, groups] = groupIndex(x.dims, red);
  const xs = numView(x), ys = numView(out);
  const mean = new Float64Array(groups), vr = new Float64Array(groups);
  const cnt = x.data.length / groups;
  for (let i = 0; i < xs.length; i++) mean[gi[i]] += xs[i];
  for (let g = 0; g < groups; g++) mean[g] /= cnt;
  for (let i = 0; i < xs.length; i++) {
    const d = xs[i] - mean[gi[i]];
    vr[gi[i]] += d * d;
  }
  // The spec's function adds ε (1e-9) to the standard deviation, not the variance.
  for (let g = 0; g < groups; g++) vr[g] = 1 / (Math.sqrt(vr[g] / cnt) + 1e-9);
  for (let i = 0; i < xs.length; i++) ys[i] = (xs[i] - mean[gi[i]]) * vr[gi[i]];
  return [out];
};

// ---- LpNormalization ----

const lpNorm: OpImpl = (inputs, ctx) => {
  const node = ctx.node;
  const x = floatInput(inputs[0], node, "input");
  const r = x.dims.length;
  const axis = normAxis(attrInt(node, "axis", -1), r, node.name);
  const p = attrInt(node, "p", 2);
  if (p !== 1 && p !== 2) throw new ModelError(`${where(node)}: p must be 1 or 2, got ${p}`);
  const outer = product(x.dims, 0, axis), n = r ? x.dims[axis] : 1;
  const inner = product(x.dims, axis + 1);
  const out = ctx.alloc(0, x.type, x.dims);
  const xs = numView(x), ys = numView(out);
  const norm = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    const base = o * n * inner;
    norm.fill(0);
    for (let k = 0; k < n; k++) {
      const row = base + k * inner;
      for (let i = 0; i < inner; i++) {
        const v = xs[row + i];
        norm[i] += p === 1 ? Math.abs(v) : v * v;
      }
    }
    // A zero vector stays zero rather than becoming NaN.
    for (let i = 0; i < inner; i++) {
      const s = p === 1 ? norm[i] : Math.sqrt(norm[i]);
      norm[i] = s === 0 ? 0 : 1 / s;
    }
    for (let k = 0; k < n; k++) {
      const row = base + k * inner;
      for (let i = 0; i < inner; i++) ys[row + i] = xs[row + i] * norm[i];
    }
  }
  return [out];
};

export const NORMALIZATION_OPS: Record<string, OpImpl> = {
  Softmax: softmaxOp(SOFTMAX),
  LogSoftmax: softmaxOp(LOG_SOFTMAX),
  Hardmax: softmaxOp(HARDMAX),
  BatchNormalization: batchNorm,
  InstanceNormalization: instanceNorm,
  LayerNormalization: layerNorm,
  GroupNormalization: groupNorm,
  LRN: lrn,
  MeanVarianceNormalization: mvn,
  LpNormalization: lpNorm,
};

/**
 * float32 LRN with monomorphic typed arrays and a sliding window over channels: the window sum
 * for channel c is the previous one plus the channel entering and minus the one leaving.
 * β = 0.75 (AlexNet, GoogLeNet) uses s^½·s^¼ in place of Math.pow.
 */
function lrnF32(
  x: Float32Array,
  y: Float32Array,
  n: number,
  c: number,
  sp: number,
  before: number,
  after: number,
  k: number,
  bias: number,
  beta: number,
): void {
  const acc = new Float64Array(sp);
  for (let b = 0; b < n; b++) {
    const base = b * c * sp;
    acc.fill(0);
    for (let cc = 0; cc <= Math.min(after, c - 1); cc++) {
      const o = base + cc * sp;
      for (let i = 0; i < sp; i++) acc[i] += x[o + i] * x[o + i];
    }
    for (let ch = 0; ch < c; ch++) {
      if (ch > 0) {
        const enter = ch + after, leave = ch - before - 1;
        if (enter < c) {
          const o = base + enter * sp;
          for (let i = 0; i < sp; i++) acc[i] += x[o + i] * x[o + i];
        }
        if (leave >= 0) {
          const o = base + leave * sp;
          for (let i = 0; i < sp; i++) acc[i] -= x[o + i] * x[o + i];
        }
      }
      const o = base + ch * sp;
      if (beta === 0.75) {
        for (let i = 0; i < sp; i++) {
          const r = Math.sqrt(bias + k * Math.max(acc[i], 0));
          y[o + i] = x[o + i] / (r * Math.sqrt(r));
        }
      } else {
        for (let i = 0; i < sp; i++) {
          y[o + i] = x[o + i] / Math.pow(bias + k * Math.max(acc[i], 0), beta);
        }
      }
    }
  }
}
