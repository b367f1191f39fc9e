// DynamicQuantizeLinear on the Wasm range and quantize kernels (kernels/nn/quantize_u8.ts):
// the range pass, then scale and zero point with the TypeScript op's arithmetic (so both give
// the same bits), then the quantize pass. Outputs: y (uint8, x's shape), y_scale and
// y_zero_point (scalars).
import type { Node } from "../../graph/ir.ts";
import type { KernelEnv, KernelOpFactory } from "../kernel_op.ts";
import { dynamicQuantParams } from "../../ops/quant.ts";
import { ScratchBlock } from "./matmul.ts";
import { ShapeError } from "../../errors.ts";
import { runTsOp } from "./ts_fallback.ts";

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

/** A one-element float32 constant's value. */
function scalarF32(v: Node["inputs"][number]): number | undefined {
  const t = v?.constant;
  return t && t.type === "float32" && t.data.length === 1 ? (t.data as Float32Array)[0] : undefined;
}

/** A one-element uint8 constant's value (absent: 0). */
function zeroU8(v: Node["inputs"][number]): number | undefined {
  if (!v) return 0;
  const t = v.constant;
  return t && t.type === "uint8" && t.data.length === 1 ? (t.data as Uint8Array)[0] : undefined;
}

/**
 * QuantizeLinear to uint8 with a per-tensor constant scale and zero point (the QDQ models'
 * input and re-quantization steps) on the Wasm quantize kernel: the same division in f32,
 * round half to even and saturation as the TypeScript op.
 */
export const quantizeLinearU8: KernelOpFactory = (node: Node, env: KernelEnv) => {
  const scale = scalarF32(node.inputs[1]), zp = zeroU8(node.inputs[2]);
  if (scale === undefined || zp === undefined || !(scale > 0)) return undefined;
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
  const scale = scalarF32(node.inputs[1]), zp = zeroU8(node.inputs[2]);
  if (scale === undefined || zp === undefined) return undefined;
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
