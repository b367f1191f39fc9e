// int8 quantization of Conv / Gemm / MatMul layers, written in standard ONNX so that
// onnxruntime runs the artifact unchanged:
//
// static (calibrated), the QDQ format onnxruntime's quantize_static writes:
//   t → QuantizeLinear(s_t, z_t) → t::q → DequantizeLinear → t::dq   for every activation t
//   a quantized layer reads or writes (one pair per tensor, shared by all its readers);
//   W (int8, per output channel, symmetric in [−127, 127]) → DequantizeLinear(axis) → layer;
//   bias (int32, scale s_x·s_w[c], zero point 0) → DequantizeLinear → layer.
//   A layer whose only reader is a Relu/Clip has that activation's output quantized instead of
//   its own (onnxruntime fuses the two the same way), and tensors that only pass through
//   MaxPool / Reshape / Flatten / Transpose… keep their input's parameters, so the engine runs
//   those ops on the int8 tensor (graph/qdq.ts).
//
// dynamic (no calibration data), as onnxruntime's quantize_dynamic:
//   x → DynamicQuantizeLinear → (x_q u8, s_x, z_x); MatMulInteger / ConvInteger(x_q, W_q, z_x, 0)
//   → Cast(float) → Mul(s_x · s_w) → Add(bias).
//
// Gemm's alpha and beta are folded into the quantized constants (alpha scales W before its
// scales are chosen, beta scales C) and the node keeps alpha = beta = 1; a scalar C becomes one
// bias per output column. Layers that stay float go to the notes with the reason: Gemm with
// transA = 1, a C that is not one value per output column ([M, N], [M, 1], not a constant), a
// weight that is not a float32 matrix / OIHW filter, and (static) a tensor without statistics.
import { type Graph, Node, type Value } from "../graph/ir.ts";
import type { Tensor } from "../graph/tensor.ts";
import { inferShapes } from "../graph/shape_inference.ts";
import { MOVEMENT_OPS } from "../graph/qdq.ts";
import { roundHalfEven } from "../ops/quant.ts";
import type { LayerReport, PassResult } from "./types.ts";
import { DEQUANTIZED_SUFFIX, QUANTIZED_SUFFIX } from "./types.ts";
import { methodFor, type Recipe, weightBitsFor } from "./recipe.ts";
import type { QuantParams, TensorStats } from "./calibrate.ts";
import { paramsFor } from "./calibrate.ts";

export interface Layer {
  node: Node;
  /** The weight's output-channel axis: 0 for Conv and Gemm(transB=1), 1 for MatMul / Gemm. */
  axis: number;
  /** The tensor the layer's quantized output represents (its own, or its activation's). */
  out: Value;
}

/**
 * Gemm's C as one value per output column (`channels`), beta applied; undefined without C (or
 * with beta = 0), a string saying why when C is something else.
 */
function gemmBias(n: Node, channels: number): Float32Array | undefined | string {
  const c = n.inputs[2];
  const beta = typeof n.attrs.beta === "number" ? n.attrs.beta : 1;
  if (!c || beta === 0) return undefined;
  const t = c.constant;
  if (!t) return `its C '${c.name}' is not a constant`;
  if (t.type !== "float32") return `its C is ${t.type}, not float32`;
  const d = t.dims;
  const scalar = t.data.length === 1 && d.length <= 2;
  const perColumn = (d.length === 1 && d[0] === channels) ||
    (d.length === 2 && d[0] === 1 && d[1] === channels);
  if (!scalar && !perColumn) {
    return `its C [${d}] is not one value per output column (${channels}); kept float`;
  }
  const src = t.data as Float32Array;
  return Float32Array.from({ length: channels }, (_, j) => beta * src[scalar ? 0 : j]);
}

/** A layer's weight as quantized: Gemm's alpha folded in. */
function effectiveWeight(n: Node): Tensor {
  const w = n.inputs[1]!.constant!;
  const alpha = n.op === "Gemm" && typeof n.attrs.alpha === "number" ? n.attrs.alpha : 1;
  if (alpha === 1) return w;
  return {
    type: "float32",
    dims: [...w.dims],
    data: (w.data as Float32Array).map((x) => alpha * x),
  };
}

/** A layer's bias as quantized: a Conv's B, Gemm's beta·C per column, none for MatMul. */
function effectiveBias(n: Node, channels: number): Float32Array | undefined {
  if (n.op === "MatMul") return undefined;
  if (n.op === "Gemm") {
    const b = gemmBias(n, channels);
    return typeof b === "string" ? undefined : b;
  }
  return n.inputs[2]?.constant?.data as Float32Array | undefined;
}

/** Why a Conv / Gemm / MatMul with a constant weight cannot be quantized, or its axis. */
function layerAxis(n: Node): number | string {
  const w = n.inputs[1]!.constant!;
  if (w.type !== "float32") return `its weight is ${w.type}, not float32`;
  if (n.op === "Conv") {
    if (w.dims.length < 3) return `its weight is ${w.dims.length}-D, not a filter bank`;
    const b = n.inputs[2];
    if (
      b && (b.constant?.type !== "float32" || b.constant.dims.length !== 1 ||
        b.constant.dims[0] !== w.dims[0])
    ) {
      return "its bias is not a float32 constant of one value per output channel";
    }
    return 0;
  }
  if (w.dims.length !== 2) return `its weight is ${w.dims.length}-D, not a matrix`;
  if (n.op === "MatMul") return 1;
  if ((n.attrs.transA ?? 0) !== 0) return "Gemm with transA = 1";
  const axis = (n.attrs.transB ?? 0) === 1 ? 0 : 1;
  const b = gemmBias(n, w.dims[axis]);
  return typeof b === "string" ? b : axis;
}

/**
 * Conv / Gemm / MatMul nodes with a constant float weight that int8 can quantize, in graph
 * order. Layers with a constant weight that cannot be go to `notes`, with the reason ("int8:
 * 'fc' stays float: …"); nodes without a constant weight (activation × activation) are not
 * layers and are passed over.
 */
export function quantizableLayers(g: Graph, notes?: string[]): Layer[] {
  return scanLayers(g, notes ? (n, why) => notes.push(skipNote(n, why)) : undefined);
}

function skipNote(n: Node, why: string): string {
  return `int8: '${n.name}' stays float: ${why}`;
}

function scanLayers(g: Graph, skip?: (n: Node, why: string) => void): Layer[] {
  const layers: Layer[] = [];
  for (const n of g.nodes) {
    if (n.domain && n.domain !== "ai.onnx") continue;
    if (n.op !== "Conv" && n.op !== "Gemm" && n.op !== "MatMul") continue;
    if (!n.inputs[1]?.constant) continue;
    const axis = layerAxis(n);
    if (typeof axis === "string") {
      skip?.(n, axis);
      continue;
    }
    const y = n.outputs[0];
    const act = y.consumers.length === 1 && !g.outputs.includes(y) ? y.consumers[0] : undefined;
    const fused = act && (act.op === "Relu" || act.op === "Clip") ? act.outputs[0] : y;
    layers.push({ node: n, axis, out: fused });
  }
  return layers;
}

/**
 * Layers a recipe sends to int8 (static or dynamic), honouring excludeFirstLast. Layers the
 * recipe sends there that cannot be quantized go to `notes` with the reason.
 */
export function int8Layers(
  g: Graph,
  r: Recipe,
  method: "int8" | "int8-dynamic",
  notes?: string[],
): Layer[] {
  const wanted = (n: Node) => {
    const m = methodFor(r, n.name, n.op);
    return m === method || (method === "int8-dynamic" && m === "int8");
  };
  const all = scanLayers(g, (n, why) => {
    if (notes && wanted(n)) notes.push(skipNote(n, why));
  });
  return all.filter((l, i) => {
    if (!wanted(l.node)) return false;
    return !(r.int8.excludeFirstLast && (i === 0 || i === all.length - 1));
  });
}

/** Tensors whose statistics static quantization needs: each layer's input and output. */
export function tensorsToCalibrate(layers: Layer[]): string[] {
  const names = new Set<string>();
  for (const l of layers) {
    names.add(l.node.inputs[0]!.name);
    names.add(l.out.name);
  }
  return [...names];
}

/**
 * Per-output-channel symmetric int8: q = round(w / s), s = max|w| / qmax, with
 * qmax = 2^(bits−1) − 1 (127 for 8 bits, 63 for reduce_range's 7, 7 for 4).
 */
export function quantizeWeights(
  w: Tensor,
  axis: number,
  minScales?: Float32Array,
  bits = 8,
): { q: Int8Array; scales: Float32Array } {
  const qmax = (1 << (bits - 1)) - 1;
  const dims = w.dims, data = w.data as Float32Array;
  const channels = dims[axis];
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const chan = (i: number) => Math.floor(i / inner) % channels;
  const maxAbs = new Float64Array(channels);
  for (let i = 0; i < data.length; i++) {
    const c = chan(i);
    maxAbs[c] = Math.max(maxAbs[c], Math.abs(data[i]));
  }
  const scales = Float32Array.from(
    maxAbs,
    (m, c) => Math.max(m > 0 ? m / qmax : 1, minScales?.[c] ?? 0),
  );
  // Below 8 bits the range is coarse enough that clipping the largest weights pays: each
  // channel takes the clip ratio in [0.5, 1] with the least squared rounding error (the
  // scale search of MSE-based weight quantizers).
  if (bits < 8) {
    const ratios = Array.from({ length: 11 }, (_, i) => 1 - 0.05 * i);
    const err = new Float64Array(channels * ratios.length);
    for (let i = 0; i < data.length; i++) {
      const c = chan(i), v = data[i];
      for (let r = 0; r < ratios.length; r++) {
        const sc = Math.max(scales[c] * ratios[r], minScales?.[c] ?? 0);
        const q = Math.max(-qmax, Math.min(qmax, roundHalfEven(v / sc)));
        const e = q * sc - v;
        err[c * ratios.length + r] += e * e;
      }
    }
    for (let c = 0; c < channels; c++) {
      let best = 0;
      for (let r = 1; r < ratios.length; r++) {
        if (err[c * ratios.length + r] < err[c * ratios.length + best]) best = r;
      }
      scales[c] = Math.max(scales[c] * ratios[best], minScales?.[c] ?? 0);
    }
  }
  const q = new Int8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = roundHalfEven(data[i] / scales[chan(i)]);
    q[i] = Math.max(-qmax, Math.min(qmax, v));
  }
  return { q, scales };
}

class Builder {
  #fresh = 0;
  constructor(readonly g: Graph) {}
  name(base: string): string {
    let n = base;
    while (this.g.values.has(n)) n = `${base}_${++this.#fresh}`;
    return n;
  }
  constant(base: string, t: Tensor): Value {
    const v = this.g.value(this.name(base));
    v.constant = t;
    v.type = t.type;
    v.shape = [...t.dims];
    return v;
  }
  node(op: string, inputs: (Value | undefined)[], outputs: Value[], attrs = {}): Node {
    return this.g.addNode(
      new Node(this.name(`${op}_${outputs[0].name}`), op, "", inputs, outputs, attrs),
    );
  }
}

/** Points every reader of `from` except `keep` at `to`. */
function redirect(g: Graph, from: Value, to: Value, keep: Node): void {
  for (const c of [...from.consumers]) {
    if (c === keep) continue;
    c.inputs = c.inputs.map((v) => (v === from ? to : v));
    from.consumers.splice(from.consumers.indexOf(c), 1);
    to.consumers.push(c);
  }
  const i = g.outputs.indexOf(from);
  if (i >= 0) g.outputs[i] = to;
}

function weightBytes(n: Node): number {
  return n.inputs.slice(1).reduce((a, v) => a + (v?.constant?.data.byteLength ?? 0), 0);
}

/**
 * Static int8: inserts the QDQ pairs with calibrated parameters. `stats` holds every tensor of
 * `tensorsToCalibrate(layers)`.
 */
export function quantizeStatic(
  g: Graph,
  layers: Layer[],
  stats: Map<string, TensorStats>,
  r: Recipe,
): PassResult {
  const b = new Builder(g);
  const params = new Map<Value, QuantParams>();
  const dq = new Map<Value, Value>(); // tensor → its dequantized twin
  const source = new Map<Value, Value>(); // dequantized twin → tensor
  const type = r.int8.activations;
  const paramsOf = (v: Value): QuantParams | undefined => {
    let p = params.get(v);
    if (p) return p;
    // A tensor that only moved through MaxPool / Reshape / … keeps its source's parameters.
    const prod = v.producer;
    if (prod && MOVEMENT_OPS.has(prod.op) && prod.inputs[0]) {
      const src = paramsOf(source.get(prod.inputs[0]) ?? prod.inputs[0]);
      if (src) p = src;
    }
    const s = stats.get(v.name);
    if (!p && s) p = paramsFor(s, r.int8.calibration, type, r.int8.percentile);
    if (p) params.set(v, p);
    return p;
  };
  const qdq = (t: Value): Value | undefined => {
    const have = dq.get(t);
    if (have) return have;
    const p = paramsOf(t);
    if (!p) return undefined;
    const scale = b.constant(`${t.name}::scale`, {
      type: "float32",
      dims: [],
      data: Float32Array.of(p.scale),
    });
    const zero = b.constant(`${t.name}::zero`, {
      type: p.type,
      dims: [],
      data: p.type === "uint8" ? Uint8Array.of(p.zeroPoint) : Int8Array.of(p.zeroPoint),
    });
    const q = g.value(b.name(t.name + QUANTIZED_SUFFIX));
    q.type = p.type;
    q.shape = t.shape;
    const d = g.value(b.name(t.name + DEQUANTIZED_SUFFIX));
    d.type = "float32";
    d.shape = t.shape;
    const qn = b.node("QuantizeLinear", [t, scale, zero], [q]);
    b.node("DequantizeLinear", [q, scale, zero], [d]);
    redirect(g, t, d, qn);
    dq.set(t, d);
    source.set(d, t);
    return d;
  };
  const reports: LayerReport[] = [];
  const notes: string[] = [];
  for (const l of layers) {
    // An input already quantized as an earlier layer's output reads its twin by now.
    const n = l.node, x = source.get(n.inputs[0]!) ?? n.inputs[0]!;
    const xp = paramsOf(x);
    const isOutput = g.outputs.includes(l.out);
    if (!xp || (!isOutput && !paramsOf(l.out))) {
      notes.push(skipNote(n, `no calibration statistics for '${(xp ? l.out : x).name}'`));
      continue;
    }
    const w = effectiveWeight(n);
    const before = weightBytes(n);
    const ch = w.dims[l.axis];
    const bias = effectiveBias(n, ch);
    // The i32 bias at scale s_x·s_w must not overflow: a near-dead filter with a real bias
    // gets a coarser weight scale instead (onnxruntime does the same).
    const minScales = bias
      ? Float32Array.from(bias, (v) => Math.abs(v) / (xp.scale * 2147483000))
      : undefined;
    const bits = weightBitsFor(r, n.name, n.op);
    const { q, scales } = quantizeWeights(w, l.axis, minScales, bits);
    // ≤ 4 bits are stored as ONNX int4 (two per byte; DequantizeLinear-21 reads them).
    const wType = bits <= 4 ? "int4" : "int8";
    const wq = b.constant(`${n.inputs[1]!.name}${QUANTIZED_SUFFIX}`, {
      type: wType,
      dims: [...w.dims],
      data: q,
    });
    const ws = b.constant(`${n.inputs[1]!.name}::scale`, {
      type: "float32",
      dims: [ch],
      data: scales,
    });
    const wd = g.value(b.name(n.inputs[1]!.name + DEQUANTIZED_SUFFIX));
    wd.type = "float32";
    wd.shape = [...w.dims];
    // Symmetric: no zero-point tensors (DequantizeLinear's default is 0), as for the bias.
    b.node("DequantizeLinear", [wq, ws], [wd], { axis: l.axis });
    let bd: Value | undefined;
    if (bias) {
      const bscale = Float32Array.from(scales, (s) => Math.fround(xp.scale * s));
      const bq = Int32Array.from(bias, (v, c) => roundHalfEven(v / bscale[c]));
      const bqv = b.constant(`${n.inputs[2]!.name}${QUANTIZED_SUFFIX}`, {
        type: "int32",
        dims: [ch],
        data: bq,
      });
      const bsv = b.constant(`${n.inputs[2]!.name}::scale`, {
        type: "float32",
        dims: [ch],
        data: bscale,
      });
      bd = g.value(b.name(n.inputs[2]!.name + DEQUANTIZED_SUFFIX));
      bd.type = "float32";
      bd.shape = [ch];
      b.node("DequantizeLinear", [bqv, bsv], [bd], { axis: 0 });
    }
    const xd = qdq(x)!;
    // The layer reads the dequantized input, weights and bias; the old float weights go.
    const old = n.inputs.slice(1);
    n.inputs = bd ? [xd, wd, bd] : [xd, wd];
    for (const v of old) v?.consumers.splice(v.consumers.indexOf(n), 1);
    xd.consumers.includes(n) || xd.consumers.push(n);
    wd.consumers.push(n);
    bd?.consumers.push(n);
    const folded = foldGemmScales(n);
    // A graph output keeps its name and stays float (the engine then dequantizes in the GEMM).
    if (!isOutput) qdq(l.out);
    reports.push({
      name: n.name,
      op: n.op,
      method: bits === 8 ? "int8" : `int8 w${bits}`,
      params: w.data.length,
      nonzeros: q.reduce((a, v) => a + (v !== 0 ? 1 : 0), 0),
      bytesBefore: before,
      bytesAfter: (wType === "int4" ? Math.ceil(q.length / 2) : q.byteLength) +
        scales.byteLength + (bd ? ch * 8 : 0),
      ...(folded ? { notes: [folded] } : {}),
    });
  }
  g.topoSort();
  inferShapes(g);
  return { layers: reports, notes };
}

/** Resets a quantized Gemm's alpha and beta (folded into its constants); says what it did. */
function foldGemmScales(n: Node): string | undefined {
  if (n.op !== "Gemm") return undefined;
  const alpha = typeof n.attrs.alpha === "number" ? n.attrs.alpha : 1;
  const beta = typeof n.attrs.beta === "number" ? n.attrs.beta : 1;
  delete n.attrs.alpha;
  delete n.attrs.beta;
  const done = [
    alpha !== 1 ? `alpha ${alpha} into the weights` : "",
    beta !== 1 && n.inputs[2] ? `beta ${beta} into the bias` : "",
  ].filter(Boolean);
  return done.length ? `Gemm ${done.join(", ")} folded` : undefined;
}

/** Dynamic int8 (no calibration): onnxruntime quantize_dynamic's pattern. */
export function quantizeDynamic(g: Graph, layers: Layer[], r?: Recipe): PassResult {
  const b = new Builder(g);
  const reports: LayerReport[] = [];
  const dyn = new Map<Value, [Value, Value, Value]>();
  for (const l of layers) {
    const n = l.node;
    const x = n.inputs[0]!, w = effectiveWeight(n);
    const before = weightBytes(n);
    let wt = w, axis = l.axis;
    if (n.op === "Gemm" && (n.attrs.transB ?? 0) === 1) {
      // Gemm(transB) → MatMulInteger needs [K, N]: transpose the constant once.
      const [nOut, k] = w.dims;
      const src = w.data as Float32Array, t = new Float32Array(src.length);
      for (let i = 0; i < nOut; i++) for (let j = 0; j < k; j++) t[j * nOut + i] = src[i * k + j];
      wt = { type: "float32", dims: [k, nOut], data: t };
      axis = 1;
    }
    // Fewer weight bits narrow the range (and take the 7-bit GEMM); storage stays int8, since
    // MatMulInteger / ConvInteger take no int4.
    const bits = r ? weightBitsFor(r, n.name, n.op) : 8;
    const { q, scales } = quantizeWeights(wt, axis, undefined, bits);
    const ch = scales.length;
    let trio = dyn.get(x);
    if (!trio) {
      const xq = g.value(b.name(x.name + QUANTIZED_SUFFIX)),
        xs = g.value(b.name(`${x.name}::scale`));
      const xz = g.value(b.name(`${x.name}::zero`));
      xq.type = "uint8";
      xs.type = "float32";
      xz.type = "uint8";
      b.node("DynamicQuantizeLinear", [x], [xq, xs, xz]);
      trio = [xq, xs, xz];
      dyn.set(x, trio);
    }
    const [xq, xs, xz] = trio;
    const wq = b.constant(`${n.inputs[1]!.name}${QUANTIZED_SUFFIX}`, {
      type: "int8",
      dims: [...wt.dims],
      data: q,
    });
    const wz = b.constant(`${n.inputs[1]!.name}::zero`, {
      type: "int8",
      dims: n.op === "Conv" ? [] : [ch],
      data: new Int8Array(n.op === "Conv" ? 1 : ch),
    });
    const acc = g.value(b.name(`${n.outputs[0].name}::acc`));
    acc.type = "int32";
    const conv = n.op === "Conv";
    const intNode = conv
      ? new Node(b.name(`${n.name}::int`), "ConvInteger", "", [xq, wq, xz, wz], [acc], {
        ...Object.fromEntries(
          Object.entries(n.attrs).filter(([k]) => !k.startsWith("activation_")),
        ),
      })
      : new Node(b.name(`${n.name}::int`), "MatMulInteger", "", [xq, wq, xz, wz], [acc]);
    g.addNode(intNode);
    const accf = g.value(b.name(`${n.outputs[0].name}::accf`));
    accf.type = "float32";
    b.node("Cast", [acc], [accf], { to: 1 });
    // Per-channel scale s_x · s_w[c]: along the last axis for MatMul, axis 1 for NCHW conv.
    const wsv = b.constant(`${n.inputs[1]!.name}::scale`, {
      type: "float32",
      dims: conv ? [ch, 1, 1] : [ch],
      data: scales,
    });
    const sc = g.value(b.name(`${n.outputs[0].name}::s`));
    sc.type = "float32";
    b.node("Mul", [xs, wsv], [sc]);
    const y = n.outputs[0];
    const bias = effectiveBias(n, ch);
    const folded = foldGemmScales(n);
    const scaled = bias ? g.value(b.name(`${y.name}::nobias`)) : y;
    scaled.type = "float32";
    g.removeNode(n);
    b.node("Mul", [accf, sc], [scaled]);
    if (bias) {
      const bv = b.constant(`${n.inputs[2]!.name}::b`, {
        type: "float32",
        dims: conv ? [ch, 1, 1] : [ch],
        data: bias,
      });
      b.node("Add", [scaled, bv], [y]);
    }
    reports.push({
      name: n.name,
      op: n.op,
      method: bits === 8 ? "int8 dynamic" : `int8 dynamic w${bits}`,
      params: w.data.length,
      nonzeros: q.reduce((a, v) => a + (v !== 0 ? 1 : 0), 0),
      bytesBefore: before,
      bytesAfter: q.byteLength + scales.byteLength + (bias ? bias.byteLength : 0),
      ...(folded ? { notes: [folded] } : {}),
    });
  }
  g.topoSort();
  inferShapes(g);
  return {
    layers: reports,
    notes: [
      "int8 dynamic: weights int8 per channel; activations quantized at run time " +
      "(DynamicQuantizeLinear), as onnxruntime's quantize_dynamic",
    ],
  };
}
