// f32 MatMul of two activations (attention's Q·Kᵀ and P·V, or any MatMul whose B is computed)
// on the packed GEMM microkernels, with numpy broadcasting over the batch dims. B changes every
// run, so each batch's B is packed into a scratch block first: packing is O(k·n) against the
// product's O(m·k·n), and the packer reads B through strides, so no transposed copy is made.
import type { Node } from "../../graph/ir.ts";
import type { KernelEnv, KernelOp, KernelOpFactory } from "../kernel_op.ts";
import { planMatmul } from "../../ops/nn.ts";
import { fusedActivation } from "./attrs.ts";
import { activationRange } from "../../kernels/validate.ts";
import { ScratchBlock } from "../../kernels/scratch.ts";
import { ShapeError } from "../../errors.ts";

export const matmulDynamicF32: KernelOpFactory = (
  node: Node,
  env: KernelEnv,
): KernelOp | undefined => {
  if (node.op !== "MatMul" || node.inputs[1]?.constant) return undefined;
  const [a, b] = node.inputs;
  if (!a || !b || (a.type && a.type !== "float32") || (b.type && b.type !== "float32")) {
    return undefined;
  }
  const scratch = new ScratchBlock(env.mod);
  const [lo, hi] = activationRange(fusedActivation(node));
  return {
    run(ctx) {
      const e = ctx.mod.exports;
      if (ctx.inputType(0) !== "float32" || ctx.inputType(1) !== "float32") {
        throw new ShapeError(
          `MatMul needs float32 operands, got ${ctx.inputType(0)} and ${ctx.inputType(1)}`,
        );
      }
      const p = planMatmul([...ctx.inputDims(0)], [...ctx.inputDims(1)], node);
      const pa = ctx.inputPtr(0), pb = ctx.inputPtr(1);
      const pc = ctx.outputPtr(0, "float32", p.outDims);
      const { m, n, k, batch } = p;
      if (m === 0 || n === 0) return 0;
      if (k === 0) {
        ctx.mod.f32(pc, batch * m * n).fill(0);
        return 0;
      }
      const packed = scratch.get(e.sqz_f32_gemm_packed_size(n, k) >>> 0);
      let lastB = -1;
      for (let bi = 0; bi < batch; bi++) {
        // Broadcast B (e.g. [1, H, K, N] against [N, H, M, K]): pack each distinct matrix once.
        if (p.bOff[bi] !== lastB) {
          e.sqz_f32_gemm_pack(n, k, pb + 4 * p.bOff[bi], n, 1, 0, packed);
          lastB = p.bOff[bi];
        }
        e.sqz_f32_gemm(m, n, k, pa + 4 * p.aOff[bi], k, packed, pc + 4 * bi * m * n, n, lo, hi);
      }
      return batch * m * n * k;
    },
    dispose: () => scratch.dispose(),
  };
};
