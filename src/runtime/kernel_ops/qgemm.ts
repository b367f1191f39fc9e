// QLinearMatMul, MatMulInteger and sqz's QGemm (what graph/qdq.ts makes of a quantized Gemm or
// MatMul: QLinearMatMul plus an i32 bias, with a u8/i8 or a dequantized f32 output) on the int8
// GEMM kernels, B constant. A's leading dims fold into M.
//
// ai.sqz QGemm inputs: A, a_scale, a_zero, B [K, N] (or [N, K] with transB = 1), b_scale,
// b_zero, bias (i32, scale a_scale·b_scale; optional), y_scale, y_zero (both absent → f32
// output y = acc · a_scale·b_scale). Attributes: transB, activation_min/max.
import type { Node } from "../../graph/ir.ts";
import type { KernelEnv, KernelOp, KernelOpFactory } from "../kernel_op.ts";
import { PackedGemmI8 } from "../../kernels/gemm_i8.ts";
import type { I8Output } from "../../kernels/i8_output.ts";
import { attrInt } from "../../ops/attrs.ts";
import {
  constNumbers,
  isQType,
  quantizedClamp,
  requantScales,
  scalarConst,
  symmetricWeights,
} from "./quant_params.ts";
import { ShapeError } from "../../errors.ts";
import type { KernelRunContext } from "../kernel_op.ts";

/** A zero point that arrives as a (scalar) input at run time. */
export const RUNTIME = Symbol("runtime zero point");

/** Reads a runtime scalar zero point; a per-row vector is not something the kernels take. */
export function runtimeZero(ctx: KernelRunContext, i: number, signed: boolean): number {
  const t = ctx.input(i);
  if (!t || t.data.length !== 1) {
    throw new ShapeError(`the zero point (input ${i}) must be a scalar, got [${t?.dims}]`);
  }
  const z = Number(t.data[0]);
  if (signed !== (t.type === "int8")) {
    throw new ShapeError(
      `the zero point is ${t.type} but the input is ${signed ? "int8" : "uint8"}`,
    );
  }
  return z;
}

/** Input positions per op: [aZero, b, bScale, bZero, bias, yScale, yZero]. */
const LAYOUT: Record<string, (number | undefined)[]> = {
  QLinearMatMul: [2, 3, 4, 5, undefined, 6, 7],
  MatMulInteger: [2, 1, undefined, 3, undefined, undefined, undefined],
  QGemm: [2, 3, 4, 5, 6, 7, 8],
};

interface QGemmPlan {
  k: number;
  n: number;
  transB: boolean;
  weights: Int8Array;
  aZero: number | typeof RUNTIME;
  /** B's scales, when A's scale arrives at run time (f32 output = acc·a_scale·b_scale). */
  runtimeScale?: number[];
  bias?: Int32Array;
  out: I8Output;
  outType: "int32" | "float32" | "uint8" | "int8";
}

function plan(node: Node): QGemmPlan | undefined {
  const at = LAYOUT[node.op];
  if (!at) return undefined;
  const [iAz, iB, iBs, iBz, iBias, iYs, iYz] = at;
  const input = (i: number | undefined) => (i === undefined ? undefined : node.inputs[i]);
  const b = input(iB)?.constant;
  if (!b || b.dims.length !== 2 || !isQType(b.type)) return undefined;
  if (node.inputs[0]?.type && !isQType(node.inputs[0].type)) return undefined;
  const transB = node.op === "QGemm" && attrInt(node, "transB", 0) === 1;
  const [k, n] = transB ? [b.dims[1], b.dims[0]] : [b.dims[0], b.dims[1]];
  if (k === 0 || n === 0) return undefined;
  const bZeroV = input(iBz);
  const bZero = bZeroV ? constNumbers(bZeroV) : undefined;
  if (bZeroV && !bZero) return undefined;
  const weights = symmetricWeights(b, bZero, n, (i) => (transB ? Math.floor(i / k) : i % n));
  if (!weights) return undefined;
  // After DynamicQuantizeLinear: A's zero point (and, in a QGemm with an f32 output, its
  // scale) computed at run time, as scalars.
  const aZeroV = input(iAz);
  const aZero = aZeroV && !aZeroV.constant && node.op !== "QLinearMatMul"
    ? RUNTIME
    : scalarConst(aZeroV, 0);
  if (aZero === undefined) return undefined;
  const biasV = input(iBias);
  if (biasV && biasV.constant?.type !== "int32") return undefined;
  let out: I8Output = { kind: "i32" };
  let outType: "int32" | "float32" | "uint8" | "int8" = "int32";
  const asV = node.inputs[1];
  if (node.op === "QGemm" && asV && !asV.constant) {
    // f32 output only, no bias (an i32 bias needs the scale at load time).
    const bs = constNumbers(input(iBs));
    if (!bs || (bs.length !== 1 && bs.length !== n) || biasV || input(iYs)) return undefined;
    const lo = node.attrs.activation_min, hi = node.attrs.activation_max;
    out = {
      kind: "f32",
      scale: requantScales(1, bs, 1, n),
      clamp: [typeof lo === "number" ? lo : -Infinity, typeof hi === "number" ? hi : Infinity],
    };
    return { k, n, transB, weights, aZero, runtimeScale: bs, out, outType: "float32" };
  }
  if (node.op !== "MatMulInteger") {
    const as = scalarConst(node.inputs[1]), bs = constNumbers(input(iBs));
    if (as === undefined || !bs || (bs.length !== 1 && bs.length !== n)) return undefined;
    const ysV = input(iYs);
    if (ysV) {
      const ys = scalarConst(ysV), yz = scalarConst(input(iYz), 0);
      const yType = input(iYz)?.type ?? "uint8";
      if (ys === undefined || yz === undefined || !isQType(yType)) return undefined;
      out = {
        kind: "requant",
        method: "fp32",
        dtype: yType,
        scale: requantScales(as, bs, ys, n),
        zeroPoint: yz,
        clamp: quantizedClamp(node, ys, yz, yType),
      };
      outType = yType;
    } else {
      const lo = node.attrs.activation_min, hi = node.attrs.activation_max;
      out = {
        kind: "f32",
        scale: requantScales(as, bs, 1, n),
        clamp: [typeof lo === "number" ? lo : -Infinity, typeof hi === "number" ? hi : Infinity],
      };
      outType = "float32";
    }
  }
  const bias = biasV?.constant?.data as Int32Array | undefined;
  return { k, n, transB, weights, aZero, bias, out, outType };
}

/** Whether the int8 GEMM kernels can run this node exactly (constant B that fits i8…). */
export function qgemmEligible(node: Node): boolean {
  return plan(node) !== undefined;
}

export const qgemm: KernelOpFactory = (node: Node, env: KernelEnv): KernelOp | undefined => {
  const p = plan(node);
  if (!p) return undefined;
  const { k, n, aZero, outType } = p;
  const gemm = PackedGemmI8.create(env.mod, {
    k,
    n,
    b: p.weights,
    transposed: p.transB,
    bias: p.bias,
  });
  const params = gemm.output(p.out);
  return {
    packedInputs: [LAYOUT[node.op][1], LAYOUT[node.op][4]].filter((i) => i !== undefined),
    run(ctx) {
      const dims = ctx.inputDims(0);
      if (dims.length < 2 || dims[dims.length - 1] !== k) {
        throw new ShapeError(`A is [${dims}] but B expects K = ${k}`);
      }
      const m = dims.slice(0, -1).reduce((x, y) => x * y, 1);
      const signed = ctx.inputType(0) === "int8";
      const zeroPoint = aZero === RUNTIME ? runtimeZero(ctx, LAYOUT[node.op][0]!, signed) : aZero;
      if (p.runtimeScale) {
        // scale[j] = f32(a_scale · b_scale[j]), what the graph's Mul(x_s, W_s) computes.
        const t = ctx.input(1);
        if (!t || t.type !== "float32" || t.data.length !== 1) {
          throw new ShapeError(`a_scale must be a float32 scalar, got [${t?.dims}]`);
        }
        const as = (t.data as Float32Array)[0], bs = p.runtimeScale;
        const sv = ctx.mod.f32(params.ptr + 32, n);
        for (let j = 0; j < n; j++) sv[j] = Math.fround(as * bs[bs.length === 1 ? 0 : j]);
      }
      const pa = ctx.inputPtr(0);
      const pc = ctx.outputPtr(0, outType, [...dims.slice(0, -1), n]);
      if (m > 0) gemm.runResident(m, pa, { signed, zeroPoint }, pc, params);
      return m * n * k;
    },
    dispose() {
      params.dispose();
      gemm.dispose();
    },
  };
};
