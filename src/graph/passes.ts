// Graph passes that simplify an imported model before planning. Each one rewrites the IR in
// place and returns how many rewrites it made, so callers can iterate to a fixed point and
// report what happened.
import type { Graph, Node, Value } from "./ir.ts";
import type { Tensor } from "./tensor.ts";
import { isGraphOutput } from "./match.ts";

/** Replaces every use of `from` with `to` (graph outputs keep their names via `to`). */
export function replaceUses(g: Graph, from: Value, to: Value): void {
  for (const c of [...from.consumers]) {
    c.inputs = c.inputs.map((v) => (v === from ? to : v));
    to.consumers.push(c);
  }
  from.consumers.length = 0;
  g.outputs = g.outputs.map((v) => (v === from ? to : v));
}

/**
 * After `removed` (which read `to` and wrote `from`) is gone: uses of `from` read `to`. When
 * `from` is a graph output, its name must survive, so `to`'s producer writes it directly.
 */
function bypass(g: Graph, from: Value, to: Value): void {
  const p = to.producer;
  if (
    isGraphOutput(g, from) && p && to.consumers.length === 0 && !isGraphOutput(g, to) &&
    !g.inputs.includes(to)
  ) {
    p.outputs = p.outputs.map((v) => (v === to ? from : v));
    from.producer = p;
    to.producer = undefined;
    g.values.delete(to.name);
    return;
  }
  replaceUses(g, from, to);
}

/** Removes nodes none of whose outputs are used. */
export function eliminateDeadCode(g: Graph): number {
  let removed = 0;
  for (let changed = true; changed;) {
    changed = false;
    for (const n of [...g.nodes].reverse()) {
      if (n.outputs.every((v) => v.consumers.length === 0 && !isGraphOutput(g, v))) {
        g.removeNode(n);
        removed++;
        changed = true;
      }
    }
  }
  return removed;
}

/** Drops Identity and inference-mode Dropout (its mask output unused). */
export function removeIdentities(g: Graph): number {
  let n = 0;
  for (const node of [...g.nodes]) {
    const dropout = node.op === "Dropout" &&
      (!node.outputs[1] || node.outputs[1].consumers.length === 0) &&
      !(node.outputs[1] && isGraphOutput(g, node.outputs[1]));
    if (node.op !== "Identity" && !dropout) continue;
    const x = node.inputs[0], y = node.outputs[0];
    if (!x) continue;
    // A graph output that is also a graph input cannot lose its own name: keep the node.
    if (isGraphOutput(g, y) && (isGraphOutput(g, x) || g.inputs.includes(x))) continue;
    g.removeNode(node);
    bypass(g, y, x);
    n++;
  }
  return n;
}

function f32(t: Tensor | undefined): Float32Array | undefined {
  return t && t.type === "float32" ? (t.data as Float32Array) : undefined;
}

/** How many constants view each buffer (one that several share is not written in place). */
function sharedBuffers(g: Graph): Map<ArrayBufferLike, number> {
  const m = new Map<ArrayBufferLike, number>();
  for (const v of g.values.values()) {
    const b = v.constant?.data.buffer;
    if (b) m.set(b, (m.get(b) ?? 0) + 1);
  }
  return m;
}

/**
 * Folds BatchNormalization (inference form, constant parameters) into a preceding Conv or
 * Gemm whose weights are constant and whose output feeds only the BN:
 *   W' = W·γ/√(σ²+ε) per output channel,  B' = (B − μ)·γ/√(σ²+ε) + β.
 */
export function foldBatchNorm(g: Graph): number {
  let n = 0;
  let buffers: Map<ArrayBufferLike, number> | undefined;
  for (const bn of [...g.nodes]) {
    if (
      bn.op !== "BatchNormalization" ||
      bn.outputs.length > 1 && bn.outputs.slice(1).some((v) => v.consumers.length)
    ) continue;
    const x = bn.inputs[0];
    const prod = x?.producer;
    if (
      !prod || (prod.op !== "Conv" && prod.op !== "Gemm") || x!.consumers.length !== 1 ||
      isGraphOutput(g, x!)
    ) continue;
    const [scale, beta, mean, variance] = bn.inputs.slice(1, 5).map((v) => f32(v?.constant));
    const w = f32(prod.inputs[1]?.constant);
    if (!scale || !beta || !mean || !variance || !w) continue;
    const cout = scale.length;
    // Gemm folds only when its output channels are W's rows (transB = 1) or columns.
    const transB = prod.op === "Gemm" ? (prod.attrs.transB ?? 0) === 1 : true;
    if (prod.op === "Gemm" && ((prod.attrs.alpha ?? 1) !== 1 || (prod.attrs.beta ?? 1) !== 1)) {
      continue;
    }
    if (w.length % cout !== 0) continue;
    const eps = typeof bn.attrs.epsilon === "number" ? bn.attrs.epsilon : 1e-5;
    const k = Float32Array.from(scale, (s, c) => s / Math.sqrt(variance[c] + eps));
    const per = w.length / cout;
    // In place when the Conv/Gemm is the weight's only user: on machines where first-touching
    // fresh memory is slow, a second 5 MB weight copy is a good share of a model's load time.
    const wIn = prod.inputs[1]!;
    // Not when another constant views the same buffer (it would change too).
    const w2 = wIn.consumers.length === 1 && !isGraphOutput(g, wIn) &&
        (buffers ??= sharedBuffers(g)).get(w.buffer) === 1
      ? w
      : new Float32Array(w.length);
    if (transB) {
      for (let c = 0, i = 0; c < cout; c++) {
        for (const end = i + per; i < end; i++) w2[i] = w[i] * k[c];
      }
    } else {
      for (let i = 0; i < w.length;) for (let c = 0; c < cout; c++, i++) w2[i] = w[i] * k[c];
    }
    const b = f32(prod.inputs[2]?.constant);
    const b2 = Float32Array.from(
      { length: cout },
      (_, c) => ((b?.[c] ?? 0) - mean[c]) * k[c] + beta[c],
    );
    const wv = g.value(`${prod.name}/folded_W`), bv = g.value(`${prod.name}/folded_B`);
    wv.constant = { type: "float32", dims: [...prod.inputs[1]!.constant!.dims], data: w2 };
    bv.constant = { type: "float32", dims: [cout], data: b2 };
    wv.type = bv.type = "float32";
    wv.shape = [...wv.constant.dims];
    bv.shape = [cout];
    rewireInputs(prod, [prod.inputs[0], wv, bv]);
    g.removeNode(bn);
    bypass(g, bn.outputs[0], x!);
    n++;
  }
  return n;
}

function rewireInputs(node: Node, inputs: (Value | undefined)[]): void {
  for (const v of node.inputs) {
    if (!v) continue;
    const i = v.consumers.indexOf(node);
    if (i >= 0) v.consumers.splice(i, 1);
  }
  node.inputs = inputs;
  for (const v of inputs) v?.consumers.push(node);
}

/** The fused activation a Conv/Gemm/MatMul node carries after fuseActivations. */
export interface FusedActivation {
  min: number;
  max: number;
}

/**
 * Fuses a Relu or a constant-bound Clip into the Conv/Gemm/MatMul that feeds only it; the
 * node gets attrs.activation_min / activation_max, which the kernels apply as their clamp.
 */
export function fuseActivations(g: Graph): number {
  let n = 0;
  for (const act of [...g.nodes]) {
    if (act.op !== "Relu" && act.op !== "Clip") continue;
    const x = act.inputs[0];
    const prod = x?.producer;
    if (
      !prod || !["Conv", "Gemm", "MatMul"].includes(prod.op) || x!.consumers.length !== 1 ||
      isGraphOutput(g, x!)
    ) continue;
    let lo = 0, hi = Infinity;
    if (act.op === "Clip") {
      // Opset ≥ 11 passes bounds as optional inputs, older opsets as attributes.
      const bound = (i: number, attr: string, dflt: number) => {
        const v = act.inputs[i];
        if (v) return v.constant ? Number((v.constant.data as Float32Array)[0]) : undefined;
        return typeof act.attrs[attr] === "number" ? (act.attrs[attr] as number) : dflt;
      };
      const l = bound(1, "min", -Infinity), h = bound(2, "max", Infinity);
      if (l === undefined || h === undefined) continue;
      lo = l;
      hi = h;
    }
    const prevLo = typeof prod.attrs.activation_min === "number"
      ? prod.attrs.activation_min
      : -Infinity;
    const prevHi = typeof prod.attrs.activation_max === "number"
      ? prod.attrs.activation_max
      : Infinity;
    prod.attrs.activation_min = Math.max(lo, prevLo);
    prod.attrs.activation_max = Math.min(hi, prevHi);
    g.removeNode(act);
    bypass(g, act.outputs[0], x!);
    n++;
  }
  return n;
}

/** The simplifications, to a fixed point; returns counts per pass. */
export function simplify(g: Graph): Record<string, number> {
  const counts: Record<string, number> = { identities: 0, batchnorm: 0, activations: 0, dead: 0 };
  for (let total = -1; total !== 0;) {
    const c = {
      identities: removeIdentities(g),
      batchnorm: foldBatchNorm(g),
      activations: fuseActivations(g),
      dead: eliminateDeadCode(g),
    };
    total = 0;
    for (const [k, v] of Object.entries(c)) {
      counts[k] += v;
      total += v;
    }
  }
  return counts;
}
