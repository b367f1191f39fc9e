// Fusions of what exporters write for transformer encoders, the ones onnxruntime makes
// (LayerNormFusion, MatMulAddFusion, GeluFusion, AttentionFusion), so each pattern runs as one
// kernel op instead of a dozen small element-wise ones:
//   - LayerNorm: ReduceMean → Sub → Pow 2 (or Mul d·d) → ReduceMean → Add ε → Sqrt → Div
//     [→ Mul γ] [→ Add β] over the last axis becomes LayerNormalization.
//   - Gelu: x · ½ · (1 + erf(x/√2)), in either association, becomes Gelu.
//   - MatMul + Add: a constant bias [N] after a MatMul with a constant [K, N] weight becomes
//     the MatMul's third input (the packed GEMM adds it; only the engine reads this form).
//   - Attention: MatMul(Q, Kᵀ) → scale (Mul/Div by a constant, or √scale on both Q and Kᵀ)
//     → [Add mask] → Softmax(last axis) → MatMul(·, V) becomes ai.sqz.Attention, which reads
//     Q, K and V through their head Transposes (see runtime/kernel_ops/attention.ts).
// Every rewrite checks that the values it removes have no other reader and are not outputs.
// These passes run only inside Session: their results are never exported.
import { type Graph, Node, type Value } from "./ir.ts";
import type { Tensor } from "./tensor.ts";
import { scalarOf, SQZ_DOMAIN } from "./qdq.ts";
import { isGraphOutput, onlyReader, otherInput, soleConsumer } from "./match.ts";
import { replaceUses } from "./passes.ts";

function floatData(v: Value | undefined): Float32Array | undefined {
  const t = v?.constant;
  return t && t.type === "float32" ? t.data as Float32Array : undefined;
}

/** A ReduceMean over the last axis with keepdims (axes as attribute, or input from opset 18). */
function meanOverLast(n: Node | undefined, rank: number | undefined): boolean {
  if (!n || n.op !== "ReduceMean" || n.domain) return false;
  if ((n.attrs.keepdims ?? 1) !== 1) return false;
  let axes = n.attrs.axes as number[] | undefined;
  if (!axes && n.inputs[1]?.constant) {
    axes = Array.from(n.inputs[1].constant.data as BigInt64Array, Number);
  }
  if (!axes || axes.length !== 1) return false;
  return axes[0] === -1 || (rank !== undefined && axes[0] === rank - 1);
}

function removeAll(g: Graph, nodes: Node[]): void {
  for (const n of nodes) g.removeNode(n);
}

let constId = 0;
function constant(g: Graph, hint: string, t: Tensor): Value {
  let name: string;
  do name = `${hint}::c${constId++}`; while (g.values.has(name));
  const v = g.value(name);
  v.constant = t;
  v.type = t.type;
  v.shape = [...t.dims];
  return v;
}

/** Replaces the chain ending in `last` by `node`, which writes `last`'s output value. */
function replaceChain(g: Graph, chain: Node[], node: Node, out: Value): void {
  removeAll(g, chain);
  node.outputs = [out];
  g.addNode(node);
}

export function fuseLayerNorm(g: Graph): number {
  let count = 0;
  for (const mean of [...g.nodes]) {
    if (!g.nodes.includes(mean)) continue;
    const x = mean.inputs[0];
    if (!x || !meanOverLast(mean, x.shape?.length)) continue;
    const sub = soleConsumer(g, mean.outputs[0], "Sub");
    if (!sub || sub.inputs[0] !== x || sub.inputs[1] !== mean.outputs[0]) continue;
    const d = sub.outputs[0];
    // d feeds the square and the Div.
    const sq = d.consumers.find((c) =>
      c.op === "Pow" || (c.op === "Mul" && c.inputs[0] === c.inputs[1])
    );
    const div = d.consumers.find((c) => c.op === "Div" && c.inputs[0] === d);
    if (!sq || !div || sq.domain || div.domain || isGraphOutput(g, d)) continue;
    if (d.consumers.some((c) => c !== sq && c !== div)) continue;
    if (sq.op === "Pow" && (sq.inputs[0] !== d || scalarOf(sq.inputs[1]) !== 2)) continue;
    const varMean = soleConsumer(g, sq.outputs[0]);
    if (!meanOverLast(varMean, x.shape?.length)) continue;
    const addEps = soleConsumer(g, varMean!.outputs[0], "Add");
    const eps = addEps && scalarOf(otherInput(addEps, varMean!.outputs[0]));
    if (!addEps || eps === undefined || !(eps >= 0)) continue;
    const sqrt = soleConsumer(g, addEps.outputs[0], "Sqrt");
    if (!sqrt || div.inputs[1] !== sqrt.outputs[0] || !onlyReader(g, sqrt.outputs[0], div)) {
      continue;
    }
    const chain = [mean, sub, sq, varMean!, addEps, sqrt, div];
    let out = div.outputs[0];
    const dim = x.shape?.[x.shape.length - 1];
    // Optional affine part: Mul by a [D] constant, then Add a [D] constant.
    let gamma: Value | undefined, beta: Value | undefined;
    const mul = soleConsumer(g, out, "Mul");
    const gv = mul && otherInput(mul, out);
    if (mul && gv && floatData(gv) && gv.constant!.dims.length <= 1) {
      gamma = gv;
      chain.push(mul);
      out = mul.outputs[0];
      const add = soleConsumer(g, out, "Add");
      const bv = add && otherInput(add, out);
      if (add && bv && floatData(bv) && bv.constant!.dims.length <= 1) {
        beta = bv;
        chain.push(add);
        out = add.outputs[0];
      }
    }
    // The normalized width: the last dim, or gamma's length when the dim is symbolic.
    const gLen = gamma?.constant?.data.length;
    const width = typeof dim === "number" ? dim : gLen !== undefined && gLen > 1 ? gLen : undefined;
    if (width === undefined) continue;
    if (
      [gamma, beta].some((v) =>
        v && v.constant!.data.length !== 1 && v.constant!.data.length !== width
      )
    ) {
      continue;
    }
    const expand = (v: Value | undefined, fill: number) =>
      v && v.constant!.data.length === width ? v : constant(g, `${div.name}::ln`, {
        type: "float32",
        dims: [width],
        data: new Float32Array(width).fill(v ? (v.constant!.data as Float32Array)[0] : fill),
      });
    const ln = new Node(
      `${mean.name}::LayerNormalization`,
      "LayerNormalization",
      "",
      [x, expand(gamma, 1), beta && expand(beta, 0)],
      [],
      { axis: -1, epsilon: eps },
    );
    replaceChain(g, chain, ln, out);
    count++;
  }
  if (count) g.topoSort();
  return count;
}

export function fuseGelu(g: Graph): number {
  let count = 0;
  const near = (a: number | undefined, b: number) => a !== undefined && Math.abs(a - b) < 1e-4 * b;
  for (const erf of [...g.nodes]) {
    if (erf.op !== "Erf" || erf.domain || !g.nodes.includes(erf)) continue;
    const scaleNode = erf.inputs[0]?.producer;
    if (!scaleNode || scaleNode.domain || !onlyReader(g, erf.inputs[0], erf)) continue;
    let x: Value | undefined;
    if (scaleNode.op === "Div" && near(scalarOf(scaleNode.inputs[1]), Math.SQRT2)) {
      x = scaleNode.inputs[0];
    } else if (scaleNode.op === "Mul") {
      const [a, b] = scaleNode.inputs;
      if (near(scalarOf(b), Math.SQRT1_2)) x = a;
      else if (near(scalarOf(a), Math.SQRT1_2)) x = b;
    }
    if (!x) continue;
    const add = soleConsumer(g, erf.outputs[0], "Add");
    if (!add || scalarOf(otherInput(add, erf.outputs[0])) !== 1) continue;
    const b = add.outputs[0];
    const m1 = soleConsumer(g, b, "Mul");
    if (!m1) continue;
    const partner = otherInput(m1, b);
    let chain: Node[], out: Value;
    if (partner === x) {
      // x · (1 + erf) then · ½.
      const m2 = soleConsumer(g, m1.outputs[0], "Mul");
      if (!m2 || scalarOf(otherInput(m2, m1.outputs[0])) !== 0.5) continue;
      chain = [scaleNode, erf, add, m1, m2];
      out = m2.outputs[0];
    } else {
      // (x · ½) · (1 + erf).
      const half = partner?.producer;
      if (
        !half || half.op !== "Mul" || half.domain || !onlyReader(g, partner, m1) ||
        !((half.inputs[0] === x && scalarOf(half.inputs[1]) === 0.5) ||
          (half.inputs[1] === x && scalarOf(half.inputs[0]) === 0.5))
      ) continue;
      chain = [scaleNode, erf, add, half, m1];
      out = m1.outputs[0];
    }
    replaceChain(g, chain, new Node(`${erf.name}::Gelu`, "Gelu", "", [x], []), out);
    count++;
  }
  if (count) g.topoSort();
  return count;
}

/** A MatMul with a constant [K, N] float weight absorbs the Add of a constant [N] bias. */
export function fuseMatMulBias(g: Graph): number {
  let count = 0;
  for (const mm of [...g.nodes]) {
    if (mm.op !== "MatMul" || mm.domain || mm.inputs.length !== 2) continue;
    const w = mm.inputs[1]?.constant;
    if (!w || w.type !== "float32" || w.dims.length !== 2) continue;
    if (mm.inputs[0]?.type && mm.inputs[0].type !== "float32") continue;
    const y = mm.outputs[0];
    const add = soleConsumer(g, y, "Add");
    const bv = add && otherInput(add, y);
    const b = bv?.constant;
    const n = w.dims[1];
    if (!add || !b || b.type !== "float32" || b.data.length !== n) continue;
    // [N] or [1, …, 1, N]: the bias must not broadcast the MatMul's output to more dims.
    const yRank = y.shape?.length;
    if (b.dims.length > 1 && (yRank === undefined || b.dims.length > yRank)) continue;
    if (b.dims.slice(0, -1).some((d) => d !== 1)) continue;
    const bias = b.dims.length === 1 ? bv! : constant(g, `${add.name}::bias`, {
      type: "float32",
      dims: [n],
      data: b.data as Float32Array,
    });
    g.removeNode(add);
    mm.inputs = [...mm.inputs, bias];
    bias.consumers.push(mm);
    const out = add.outputs[0];
    replaceUses(g, out, y);
    // Keep the Add's output name where it is a graph output.
    if (isGraphOutput(g, y) && out.name !== y.name) {
      mm.outputs = [out];
      out.producer = mm;
      y.producer = undefined;
      g.outputs = g.outputs.map((v) => (v === y ? out : v));
      for (const c of [...y.consumers]) {
        c.inputs = c.inputs.map((v) => (v === y ? out : v));
        out.consumers.push(c);
      }
      y.consumers.length = 0;
    }
    count++;
  }
  return count;
}

export const ATTENTION_OP = "Attention";

/**
 * A Transpose feeding only `user` whose input is 4-D: its perm (so the kernel reads the
 * untransposed tensor through strides), else identity.
 */
function throughTranspose(
  g: Graph,
  v: Value,
  user: Node,
): { src: Value; perm: number[]; node?: Node } {
  const t = v.producer;
  const perm = t?.attrs.perm as number[] | undefined;
  if (
    t && t.op === "Transpose" && !t.domain && perm && perm.length === 4 &&
    onlyReader(g, v, user) && t.inputs[0]
  ) {
    return { src: t.inputs[0], perm, node: t };
  }
  return { src: v, perm: [0, 1, 2, 3] };
}

/**
 * MatMul(Q, Kᵀ) → scale → [Add mask] → Softmax(−1) → MatMul(·, V) on 4-D [B, H, S, d]
 * operands becomes one ai.sqz.Attention node. Its inputs are Q, K (as [B, H, d, S]: Kᵀ) and V
 * given through their Transposes (attrs perm_q, perm_k, perm_v: the logical operand is
 * Transpose(input, perm)), and the optional additive mask; attr scale; and, when the result
 * feeds only a Transpose(0, 2, 1, 3), that Transpose is absorbed (attr perm_out).
 */
export function fuseAttention(g: Graph): number {
  let count = 0;
  for (const sm of [...g.nodes]) {
    if (sm.op !== "Softmax" || sm.domain || !g.nodes.includes(sm)) continue;
    const smIn = sm.inputs[0];
    const rank = smIn?.shape?.length;
    if (!smIn || rank !== 4) continue;
    const axis = (sm.attrs.axis ?? -1) as number;
    if (axis !== -1 && axis !== 3) continue;
    const pv = soleConsumer(g, sm.outputs[0], "MatMul");
    if (!pv || pv.inputs[0] !== sm.outputs[0] || pv.inputs.length !== 2) continue;
    const chain: Node[] = [sm, pv];
    // Walk back from the Softmax input: [Add mask] ← [Mul/Div by a scalar] ← MatMul(Q, Kᵀ).
    let cur = smIn, reader = sm;
    let mask: Value | undefined;
    let scale = 1;
    let p = cur.producer;
    if (p && p.op === "Add" && !p.domain && onlyReader(g, cur, reader)) {
      const [a, b] = p.inputs;
      const scores = (x?: Value) =>
        !!x?.producer && ["MatMul", "Mul", "Div"].includes(x.producer.op);
      const [sv, mv] = scores(a) ? [a, b] : [b, a];
      if (sv && mv && (!mv.type || mv.type === "float32") && (mv.shape?.length ?? 5) <= 4) {
        mask = mv;
        chain.push(p);
        cur = sv;
        reader = p;
        p = sv.producer;
      }
    }
    if (p && (p.op === "Mul" || p.op === "Div") && !p.domain && onlyReader(g, cur, reader)) {
      const [a, b] = p.inputs;
      const sb = scalarOf(b), sa = scalarOf(a);
      let x: Value | undefined;
      if (sb !== undefined && sb !== 0) {
        scale = p.op === "Mul" ? sb : 1 / sb;
        x = a;
      } else if (sa !== undefined && p.op === "Mul") {
        scale = sa;
        x = b;
      }
      if (x) {
        chain.push(p);
        cur = x;
        reader = p;
        p = x.producer;
      }
    }
    const qk = p;
    if (!qk || qk.op !== "MatMul" || qk.domain || qk.inputs.length !== 2) continue;
    if (!onlyReader(g, cur, reader)) continue;
    chain.push(qk);
    let [q, kt] = qk.inputs as [Value, Value];
    const v = pv.inputs[1]!;
    // torch's √scale on Q and on Kᵀ (scaled_dot_product_attention's export).
    const sqrtScale = (x: Value): Value => {
      const m = x.producer;
      if (!m || m.op !== "Mul" || m.domain || !onlyReader(g, x, qk)) return x;
      const s1 = scalarOf(m.inputs[1]), s0 = scalarOf(m.inputs[0]);
      if (s1 !== undefined) {
        scale *= s1;
        chain.push(m);
        return m.inputs[0]!;
      }
      if (s0 !== undefined) {
        scale *= s0;
        chain.push(m);
        return m.inputs[1]!;
      }
      return x;
    };
    q = sqrtScale(q);
    kt = sqrtScale(kt);
    if ([q, kt, v].some((x) => x.shape?.length !== 4 || (x.type && x.type !== "float32"))) continue;
    const tq = throughTranspose(g, q, chain.find((n) => n.inputs.includes(q))!);
    const tk = throughTranspose(g, kt, chain.find((n) => n.inputs.includes(kt))!);
    const tv = throughTranspose(g, v, pv);
    for (const t of [tq, tk, tv]) if (t.node) chain.push(t.node);
    let out = pv.outputs[0];
    let permOut = [0, 1, 2, 3];
    const after = soleConsumer(g, out, "Transpose");
    const ap = after?.attrs.perm as number[] | undefined;
    if (after && ap && ap.join() === "0,2,1,3") {
      chain.push(after);
      out = after.outputs[0];
      permOut = ap;
    }
    const inputs = [tq.src, tk.src, tv.src, mask];
    const node = new Node(`${sm.name}::Attention`, ATTENTION_OP, SQZ_DOMAIN, inputs, [], {
      scale,
      perm_q: tq.perm,
      perm_k: tk.perm,
      perm_v: tv.perm,
      perm_out: permOut,
    });
    replaceChain(g, chain, node, out);
    count++;
  }
  if (count) g.topoSort();
  return count;
}

/** All transformer fusions; returns counts per pattern. */
export function fuseTransformer(g: Graph): Record<string, number> {
  return {
    layerNorm: fuseLayerNorm(g),
    gelu: fuseGelu(g),
    matmulBias: fuseMatMulBias(g),
    attention: fuseAttention(g),
  };
}
