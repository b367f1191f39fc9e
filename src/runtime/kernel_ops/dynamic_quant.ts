// DynamicQuantizeLinear on the Wasm range and quantize kernels (kernels/nn/quantize_u8.ts):
// the range pass, then scale and zero point with the TypeScript op's arithmetic (so both give
// the same bits), then the quantize pass. Outputs: y (uint8, x's shape), y_scale and
// y_zero_point (scalars).
import type { Node } from "../../graph/ir.ts";
import type { KernelEnv, KernelOpFactory } from "../kernel_op.ts";
import { dynamicQuantParams } from "../../ops/quant.ts";
import { ScratchBlock } from "./matmul.ts";
import { ShapeError } from "../../errors.ts";

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
