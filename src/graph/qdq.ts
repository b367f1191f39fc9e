// QDQ fusion: the quantized models onnxruntime's quantize_static (and PyTorch/TF exporters)
// write keep float ops and mark the int8 tensors with QuantizeLinear → DequantizeLinear pairs:
//
//   x_q → DQ ─┐
//   w_q → DQ ─┼→ Conv / MatMul / Gemm [→ Relu/Clip] → Q → y_q
//   b_q → DQ ─┘
//
// Here each such island becomes one integer op on the quantized tensors: QLinearConv for Conv,
// and ai.sqz QGemm (QLinearMatMul with an i32 bias; see runtime/kernel_ops/qgemm.ts) for
// MatMul and Gemm. A Gemm/MatMul whose output is not re-quantized (the logits) becomes a QGemm
// with a dequantized f32 output. A float bias is quantized with scale x_scale·w_scale, as the
// quantizer would have. Runs before constant folding, which would otherwise fold the weight
// DequantizeLinear into float weights. `accept` lets the runtime refuse a fused node it
// cannot run exactly (the original float island then stays).
import { Graph, Node, type Value } from "./ir.ts";
import type { Tensor } from "./tensor.ts";

export const SQZ_DOMAIN = "ai.sqz";

/** The value of a one-element constant (a per-tensor scale or zero point), else undefined. */
export function scalarOf(v: Value | undefined): number | undefined {
  const c = v?.constant;
  return c && c.data.length === 1 ? Number((c.data as ArrayLike<number | bigint>)[0]) : undefined;
}

interface Dq {
  node: Node;
  q: Value;
  scale: Value;
  zero: Value | undefined;
}

function dequantize(v: Value | undefined, constantData: boolean): Dq | undefined {
  const n = v?.producer;
  if (!n || n.op !== "DequantizeLinear" || (n.domain && n.domain !== "ai.onnx")) return undefined;
  if (n.attrs.block_size !== undefined && n.attrs.block_size !== 0) return undefined;
  const [q, scale, zero] = n.inputs;
  if (!q || !scale?.constant || (zero && !zero.constant)) return undefined;
  if (constantData !== !!q.constant) return undefined;
  if (q.type !== "uint8" && q.type !== "int8" && q.type !== "int32" && q.type !== "int4") {
    return undefined;
  }
  return { node: n, q, scale, zero };
}

function onlyConsumer(g: Graph, v: Value): Node | undefined {
  return v.consumers.length === 1 && !g.outputs.includes(v) ? v.consumers[0] : undefined;
}

export function fuseQdq(g: Graph, accept: (n: Node) => boolean): number {
  let fused = 0, fresh = 0;
  const constant = (base: string, t: Tensor): Value => {
    let name = `${base}::q${fresh++}`;
    while (g.values.has(name)) name = `${base}::q${fresh++}`;
    const v = g.value(name);
    v.constant = t;
    v.type = t.type;
    v.shape = [...t.dims];
    return v;
  };
  for (const n of [...g.nodes]) {
    if (!["Conv", "MatMul", "Gemm"].includes(n.op) || (n.domain && n.domain !== "ai.onnx")) {
      continue;
    }
    if (n.op === "Gemm" && (n.attrs.transA ?? 0) !== 0) continue;
    if (n.op === "Gemm" && ((n.attrs.alpha ?? 1) !== 1 || (n.attrs.beta ?? 1) !== 1)) continue;
    const x = dequantize(n.inputs[0], false), w = dequantize(n.inputs[1], true);
    if (!x || !w || x.q.type === "int32" || w.q.type === "int32" || x.q.type === "int4") continue;
    const xs = scalarOf(x.scale);
    if (xs === undefined || (x.zero && scalarOf(x.zero) === undefined)) continue;
    const ws = Array.from(w.scale.constant!.data as Float32Array);
    // Per-channel weight scales must run along the output channels.
    const wq = w.q.constant!;
    const transB = n.op === "Gemm" && (n.attrs.transB ?? 0) === 1;
    const outAxis = n.op === "Conv" || transB ? 0 : 1;
    const axis = typeof w.node.attrs.axis === "number" ? w.node.attrs.axis : 1;
    const channels = wq.dims[outAxis];
    if (
      ws.length !== 1 &&
      (ws.length !== channels || (axis + wq.dims.length) % wq.dims.length !== outAxis)
    ) {
      continue;
    }
    // Bias: DequantizeLinear of i32 (used as is) or a float constant (quantized here).
    let bias: Value | undefined;
    const bv = n.op === "MatMul" ? undefined : n.inputs[2];
    if (bv) {
      const bdq = dequantize(bv, true);
      if (bdq && bdq.q.type === "int32") bias = bdq.q;
      else if (bv.constant?.type === "float32" && bv.constant.data.length === channels) {
        const b = bv.constant.data as Float32Array;
        bias = constant(bv.name, {
          type: "int32",
          dims: [channels],
          data: Int32Array.from(b, (v, c) => Math.round(v / (xs * ws[ws.length === 1 ? 0 : c]))),
        });
      } else continue;
    }
    // Output: Q (optionally after a Relu/Clip, which becomes the clamp), or float for Gemm/MatMul.
    let y = n.outputs[0];
    const removed: Node[] = [n];
    let act = onlyConsumer(g, y);
    const attrs: Record<string, unknown> = {};
    if (
      act &&
      (act.op === "Relu" ||
        (act.op === "Clip" && act.inputs.slice(1).every((v) => !v || v.constant)))
    ) {
      const lo = act.op === "Relu"
        ? 0
        : scalarOf(act.inputs[1]) ?? (act.attrs.min as number | undefined) ?? -Infinity;
      const hi = act.op === "Relu"
        ? Infinity
        : scalarOf(act.inputs[2]) ?? (act.attrs.max as number | undefined) ?? Infinity;
      attrs.activation_min = lo;
      attrs.activation_max = hi;
      removed.push(act);
      y = act.outputs[0];
      act = onlyConsumer(g, y);
    } else act = act ?? undefined;
    const q = act && act.op === "QuantizeLinear" && scalarOf(act.inputs[1]) !== undefined &&
        (!act.inputs[2] || scalarOf(act.inputs[2]) !== undefined)
      ? act
      : undefined;
    if (!q && n.op === "Conv") continue;
    if (w.q.type === "int4") {
      // int4 weights (int8 weightBits ≤ 4) run on the int8 kernels, as int8 constants made
      // once the fusion is certain: the values are already sign-extended bytes, and fitting 7
      // bits they take the 7-bit GEMM. Zero point as well.
      const t = w.q.constant!;
      w.q = constant(w.q.name, { type: "int8", dims: [...t.dims], data: t.data });
      if (w.zero) {
        const z = w.zero.constant!;
        w.zero = constant(w.zero.name, { type: "int8", dims: [...z.dims], data: z.data });
      }
    }
    const xZero = x.zero ??
      constant(x.q.name, {
        type: x.q.type!,
        dims: [],
        data: new (x.q.type === "int8" ? Int8Array : Uint8Array)(1),
      });
    const wType = w.q.constant!.type;
    const wZero = w.zero ??
      constant(w.q.name, {
        type: wType,
        dims: [],
        data: new (wType === "int8" ? Int8Array : Uint8Array)(1),
      });
    let inputs: (Value | undefined)[];
    let out: Value;
    if (q) {
      const yZero = q.inputs[2] ??
        constant(q.name, { type: "uint8", dims: [], data: new Uint8Array(1) });
      removed.push(q);
      out = q.outputs[0];
      inputs = [x.q, x.scale, xZero, w.q, w.scale, wZero];
      inputs = n.op === "Conv"
        ? [...inputs, q.inputs[1], yZero, bias]
        : [...inputs, bias, q.inputs[1], yZero];
    } else {
      out = y;
      inputs = [x.q, x.scale, xZero, w.q, w.scale, wZero, bias];
    }
    const fusedNode = n.op === "Conv"
      ? new Node(`${n.name}::qlinear`, "QLinearConv", "", inputs, [out], {
        ...Object.fromEntries(
          Object.entries(n.attrs).filter(([k]) => !k.startsWith("activation_")),
        ),
        ...attrs as Record<string, number>,
      })
      : new Node(`${n.name}::qgemm`, "QGemm", SQZ_DOMAIN, inputs, [out], {
        transB: transB ? 1 : 0,
        ...attrs as Record<string, number>,
      });
    if (!accept(fusedNode)) continue;
    for (const r of removed) g.removeNode(r);
    g.addNode(fusedNode);
    fused++;
  }
  return fused;
}

/** Ops that only move or select values: they commute with a per-tensor DequantizeLinear. */
export const MOVEMENT_OPS: ReadonlySet<string> = new Set([
  "MaxPool",
  "GlobalMaxPool",
  "Reshape",
  "Flatten",
  "Transpose",
  "Squeeze",
  "Unsqueeze",
  "Identity",
]);

function sameConstant(a: Value | undefined, b: Value | undefined): boolean {
  if (!a || !b) return !a && !b;
  const x = scalarOf(a), y = scalarOf(b);
  return x !== undefined && x === y && a.constant!.type === b.constant!.type;
}

/**
 * DQ → MaxPool / Reshape / Flatten / Transpose… → Q with the same scale and zero point is the
 * op on the quantized tensor itself (max and data movement commute with a monotonic per-tensor
 * dequantization), as onnxruntime's QDQ transformer does. Returns the number of ops moved.
 */
export function dropQdqAroundMovement(g: Graph): number {
  let moved = 0;
  for (const n of [...g.nodes]) {
    if (!MOVEMENT_OPS.has(n.op) || (n.domain && n.domain !== "ai.onnx")) continue;
    if (n.op === "MaxPool" && n.outputs.length > 1 && n.outputs[1].consumers.length) continue;
    const x = dequantize(n.inputs[0], false);
    if (!x || x.q.type === "int32" || scalarOf(x.scale) === undefined) continue;
    // Follow single-reader movement ops (MaxPool → Flatten …) to the QuantizeLinear.
    const chain: Node[] = [n];
    let y = n.outputs[0];
    let q = onlyConsumer(g, y);
    while (
      q && MOVEMENT_OPS.has(q.op) && (!q.domain || q.domain === "ai.onnx") && q.outputs.length === 1
    ) {
      chain.push(q);
      y = q.outputs[0];
      q = onlyConsumer(g, y);
    }
    if (!q || q.op !== "QuantizeLinear" || (q.domain && q.domain !== "ai.onnx")) continue;
    const zeroQ = q.inputs[2];
    // A Q without zero point makes uint8 with zero 0.
    const sameZero = x.zero && zeroQ
      ? sameConstant(x.zero, zeroQ)
      : !zeroQ && (!x.zero || (scalarOf(x.zero) === 0 && x.q.type === "uint8")) &&
        x.q.type === "uint8";
    if (!sameConstant(x.scale, q.inputs[1]) || !sameZero) continue;
    // The chain now reads x_q and its last op writes what Q wrote.
    g.removeNode(q);
    const i = x.node.outputs[0].consumers.indexOf(n);
    if (i >= 0) x.node.outputs[0].consumers.splice(i, 1);
    n.inputs[0] = x.q;
    x.q.consumers.push(n);
    const last = chain[chain.length - 1];
    last.outputs[0] = q.outputs[0];
    q.outputs[0].producer = last;
    y.producer = undefined;
    for (const c of chain.slice(0, -1)) c.outputs[0].type = x.q.type;
    moved++;
  }
  return moved;
}
