// com.microsoft.MatMulNBits on the packed f32 GEMM kernels: the block-quantized weight is
// dequantized once, when the session is created, to Wᵀ [N, K] (ops/contrib_matmulnbits.ts) and
// packed like Gemm(transB = 1)'s B, with the bias; A's leading dims fold into M. The weight thus
// costs f32 memory at run time (a kernel on the packed nibbles is a later step); the artifact
// and the download keep the int4 size. Falls back to the TypeScript op when B, scales, zero
// points or bias are not constants, A is not float32, or g_idx is given.
import type { Node } from "../../graph/ir.ts";
import type { KernelEnv, KernelOp, KernelOpFactory } from "../kernel_op.ts";
import { PackedGemmF32 } from "../../kernels/gemm_f32.ts";
import { dequantizeNBits, nbitsAttrs, nbitsBias } from "../../ops/contrib_matmulnbits.ts";
import { fusedActivation } from "./attrs.ts";
import { ShapeError } from "../../errors.ts";

export const matmulNBitsF32: KernelOpFactory = (
  node: Node,
  env: KernelEnv,
): KernelOp | undefined => {
  const [a, b, scales, zp, gIdx, biasV] = node.inputs;
  if (!b?.constant || !scales?.constant || gIdx) return undefined;
  if ((zp && !zp.constant) || (biasV && !biasV.constant)) return undefined;
  if (a?.type && a.type !== "float32") return undefined;
  // Malformed attributes or tensors throw their ModelError here, naming the node.
  const { k, n } = nbitsAttrs(node);
  const w = dequantizeNBits(node, b.constant, scales.constant, zp?.constant);
  const bias = nbitsBias(node, biasV?.constant, n);
  const gemm = PackedGemmF32.create(env.mod, { k, n, b: w, transposed: true, bias });
  const act = fusedActivation(node);
  return {
    run(ctx) {
      if (ctx.inputType(0) !== "float32") {
        throw new ShapeError(`MatMulNBits needs a float32 A, got ${ctx.inputType(0)}`);
      }
      const dims = ctx.inputDims(0);
      if (dims.length < 1 || dims[dims.length - 1] !== k) {
        throw new ShapeError(`A is [${dims}] but MatMulNBits has K = ${k}`);
      }
      const m = dims.slice(0, -1).reduce((x, y) => x * y, 1);
      const out = [...dims.slice(0, -1), n];
      const pa = ctx.inputPtr(0);
      const pc = ctx.outputPtr(0, "float32", out);
      if (m > 0) gemm.runResident(m, pa, pc, act);
      return m * n * k;
    },
    dispose: () => gemm.dispose(),
  };
};
