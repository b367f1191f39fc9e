// DynamicQuantizeLinear on the Wasm range and quantize kernels (kernels/nn/quantize_u8.ts):
// the range pass, then scale and zero point with the TypeScript op's arithmetic (so both give
// the same bits), then the quantize pass. Outputs: y (uint8, x's shape), y_scale and
// y_zero_point (scalars).
import type { Node } from "../../graph/ir.ts";
import type { KernelEnv, KernelOpFactory } from "../kernel_op.ts";
import { dynamicQuantParams } from "../../ops/quant.ts";
import { ScratchBlock } from "../../kernels/scratch.ts";
import { ShapeError } from "../../errors.ts";
import { runTsOp } from "./ts_fallback.ts";
import { scalarConst } from "./quant_params.ts";

export const dynamicQuantizeLinear: KernelOpFactory = (node: Node, env: KernelEnv) => {
  if (node.inputs[0]?.type && node.inputs[0].type !== "float32") return undefined;
  const range = new ScratchBlock(env.mod);
  return {
    run(ctx) {
      if (ctx.inputType(0) !== "float32") {
        throw new ShapeError(`x must be float32, got ${ctx.inputType(0)}`);
      }
      const dims = ctx.inputDims(0);
      const n = dims.reduce((a, d) => a * d, 1);
      const e = ctx.mod.exports;
      const x = ctx.inputPtr(0);
      const r = range.get(8);
      e.sqz_f32_range(n, x, r);
      const [lo, hi] = ctx.mod.f32(r, 2);
      const { scale, zeroPoint } = dynamicQuantParams(lo, hi);
      const y = ctx.outputPtr(0, "uint8", [...dims]);
      if (n) e.sqz_f32_quantize_u8(n, x, scale, zeroPoint, y);
      ctx.mod.f32(ctx.outputPtr(1, "float32", []), 1)[0] = scale;
      ctx.mod.u8(ctx.outputPtr(2, "uint8", []), 1)[0] = zeroPoint;
    },
    dispose: () => range.dispose(),
  };
};

/** A per-tensor float32 scale and uint8 zero point (absent: 0), both constants. */
function perTensorU8(node: Node): { scale: number; zp: number } | undefined {
  const [, sv, zv] = node.inputs;
  if (sv?.constant?.type !== "float32" || (zv && zv.constant?.type !== "uint8")) return undefined;
  const scale = scalarConst(sv), zp = scalarConst(zv, 0);
  return scale === undefined || zp === undefined ? undefined : { scale, zp };
}

/**
 * QuantizeLinear to uint8 with a per-tensor constant scale and zero point (the QDQ models'
 * input and re-quantization steps) on the Wasm quantize kernel: the same division in f32,
 * round half to even and saturation as the TypeScript op.
 */
export const quantizeLinearU8: KernelOpFactory = (node: Node, env: KernelEnv) => {
  const q = perTensorU8(node);
  if (!q || !(q.scale > 0)) return undefined;
  const { scale, zp } = q;
  if (node.inputs[0]?.type && node.inputs[0].type !== "float32") return undefined;
  if (typeof node.attrs.precision === "number" && node.attrs.precision !== 0) return undefined;
  if (typeof node.attrs.output_dtype === "number" && ![0, 2].includes(node.attrs.output_dtype)) {
    return undefined;
  }
  return {
    run(ctx) {
      if (ctx.inputType(0) !== "float32") return runTsOp(ctx, node, env.opset, node.inputs.length);
      const dims = ctx.inputDims(0);
      const n = dims.reduce((a, d) => a * d, 1);
      const x = ctx.inputPtr(0), y = ctx.outputPtr(0, "uint8", [...dims]);
      if (n) ctx.mod.exports.sqz_f32_quantize_u8(n, x, scale, zp, y);
    },
    dispose() {},
  };
};

/** DequantizeLinear of uint8 with a per-tensor constant scale and zero point. */
export const dequantizeLinearU8: KernelOpFactory = (node: Node, env: KernelEnv) => {
  const q = perTensorU8(node);
  if (!q) return undefined;
  const { scale, zp } = q;
  if (node.inputs[0]?.type && node.inputs[0].type !== "uint8") return undefined;
  if (node.inputs[0]?.constant) return undefined; // folded weights: nothing to run
  return {
    run(ctx) {
      if (ctx.inputType(0) !== "uint8") return runTsOp(ctx, node, env.opset, node.inputs.length);
      const dims = ctx.inputDims(0);
      const n = dims.reduce((a, d) => a * d, 1);
      const x = ctx.inputPtr(0), y = ctx.outputPtr(0, "float32", [...dims]);
      if (n) ctx.mod.exports.sqz_u8_dequantize(n, x, scale, zp, y);
    },
    dispose() {},
  };
};
