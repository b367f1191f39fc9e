// QLinearConv and ConvInteger on the int8 NHWC convolution kernels (sqz.nhwc domain after the
// layout pass), including the QLinearConv nodes the QDQ fusion (graph/qdq.ts) makes. x is u8
// or i8 with a per-tensor zero point; weights minus their zero point must fit symmetric i8;
// QLinearConv requantizes in f32 as onnxruntime does:
//   y = saturate(round_half_even((Σ(x − xz)(w − wz) + bias) · f32(xs·ws/ys)) + yz).
import type { Node } from "../../graph/ir.ts";
import type { KernelEnv, KernelOp, KernelOpFactory } from "../kernel_op.ts";
import { type Dims4, PackedConvI8 } from "../../kernels/conv.ts";
import { PackedDepthwiseI8 } from "../../kernels/dwconv.ts";
import { MAX_K_I8 } from "../../kernels/gemm_i8.ts";
import { attrInt, attrInts } from "../../ops/attrs.ts";
import { windowAttrs } from "./attrs.ts";
import { RUNTIME, runtimeZero } from "./qgemm.ts";
import {
  constNumbers,
  isQType,
  quantizedClamp,
  requantScales,
  scalarConst,
  symmetricWeights,
} from "./quant_params.ts";

interface QConvPlan {
  weights: Int8Array;
  bias?: Int32Array;
  xZero: number | typeof RUNTIME;
  /** QLinearConv only. */
  requant?: {
    scales: Float32Array;
    yZero: number;
    type: "uint8" | "int8";
    clamp: [number, number];
  };
}

function plan(node: Node): QConvPlan | undefined {
  const q = node.op === "QLinearConv";
  if (!q && node.op !== "ConvInteger") return undefined;
  const wv = node.inputs[q ? 3 : 1];
  const w = wv?.constant;
  if (!w || w.dims.length !== 4 || !isQType(w.type)) return undefined;
  if (node.inputs[0]?.type && !isQType(node.inputs[0].type)) return undefined;
  const ks = attrInts(node, "kernel_shape");
  if (ks && (ks.length !== 2 || ks[0] !== w.dims[2] || ks[1] !== w.dims[3])) return undefined;
  if (!windowAttrs(node)) return undefined;
  const cout = w.dims[0], per = w.data.length / cout;
  const wZeroV = node.inputs[q ? 5 : 3];
  const wZero = wZeroV ? constNumbers(wZeroV) : undefined;
  if (wZeroV && !wZero) return undefined;
  const weights = symmetricWeights(w, wZero, cout, (i) => Math.floor(i / per));
  if (!weights) return undefined;
  // ConvInteger after DynamicQuantizeLinear: a zero point computed at run time (a scalar).
  const xZeroV = node.inputs[2];
  const xZero = !q && xZeroV && !xZeroV.constant ? RUNTIME : scalarConst(xZeroV, 0);
  if (xZero === undefined) return undefined;
  if (!q) return { weights, xZero };
  const xs = scalarConst(node.inputs[1]), ys = scalarConst(node.inputs[6]);
  const ws = constNumbers(node.inputs[4]);
  const yZero = scalarConst(node.inputs[7], 0);
  const yType = node.inputs[7]?.type ?? "uint8";
  if (xs === undefined || ys === undefined || !ws || yZero === undefined || !isQType(yType)) {
    return undefined;
  }
  if (ws.length !== 1 && ws.length !== cout) return undefined;
  const bv = node.inputs[8];
  if (bv && bv.constant?.type !== "int32") return undefined;
  return {
    weights,
    xZero,
    bias: bv?.constant?.data as Int32Array | undefined,
    requant: {
      scales: requantScales(xs, ws, ys, cout),
      yZero,
      type: yType,
      clamp: quantizedClamp(node, ys, yZero, yType),
    },
  };
}

/** Whether the int8 NHWC kernels can run this QLinearConv / ConvInteger exactly. */
export function qconvEligible(node: Node): boolean {
  return plan(node) !== undefined;
}

export const nhwcQConv: KernelOpFactory = (node: Node, env: KernelEnv): KernelOp | undefined => {
  const p = plan(node);
  if (!p) return undefined;
  const w = node.inputs[node.op === "QLinearConv" ? 3 : 1]!.constant!;
  const [cout, cinG, kh, kw] = w.dims;
  const groups = attrInt(node, "group", 1);
  const attrs = windowAttrs(node)!;
  const cin = cinG * groups;
  // Depthwise (one filter per channel) has its own row-blocked kernel: as a grouped GEMM it
  // would run one tiny GEMM per channel.
  const depthwise = groups > 1 && groups === cin && cout === cin && kh * kw <= MAX_K_I8;
  const dw = depthwise
    ? PackedDepthwiseI8.create(env.mod, { c: cin, kh, kw, weights: p.weights, bias: p.bias })
    : undefined;
  const conv = dw ?? PackedConvI8.create(env.mod, {
    cout,
    cin,
    kh,
    kw,
    groups,
    weights: p.weights,
    bias: p.bias,
  });
  const r = p.requant;
  const out = conv.output(
    r
      ? {
        kind: "requant",
        method: "fp32",
        dtype: r.type,
        scale: r.scales,
        zeroPoint: r.yZero,
        clamp: r.clamp,
      }
      : { kind: "i32" },
  );
  const outType = r ? r.type : "int32";
  return {
    packedInputs: node.op === "QLinearConv" ? [3, 8] : [1],
    run(k) {
      const dims = [...k.inputDims(0)] as Dims4;
      const signed = k.inputType(0) === "int8";
      const zeroPoint = p.xZero === RUNTIME ? runtimeZero(k, 2, signed) : p.xZero;
      const y = conv.geometry(dims, attrs).dims;
      const px = k.inputPtr(0);
      const py = k.outputPtr(0, outType, y);
      if (dw) dw.runResident(px, dims, py, attrs, { signed, zeroPoint }, out);
      else (conv as PackedConvI8).runResident(px, dims, { signed, zeroPoint }, py, out, attrs);
      return y[0] * y[1] * y[2] * cout * kh * kw * cinG;
    },
    dispose() {
      out.dispose();
      conv.dispose();
    },
  };
};
