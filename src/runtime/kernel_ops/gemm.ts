// f32 Gemm and MatMul with a constant right-hand side on the packed GEMM kernels: Gemm's alpha
// is folded into the weights and beta·C into the bias, MatMul's leading dims into M.
import type { Node } from "../../graph/ir.ts";
import type { KernelEnv, KernelOp, KernelOpFactory } from "../kernel_op.ts";
import { PackedGemmF32 } from "../../kernels/gemm_f32.ts";
import { countNonzeros, PackedGemmSparseF32, sparseWins } from "../../kernels/gemm_sparse.ts";
import { attrFloat, attrInt } from "../../ops/attrs.ts";
import { fusedActivation } from "./attrs.ts";
import { ShapeError } from "../../errors.ts";

/** The bias Gemm's C gives when it is a constant of shape [], [1], [N] or [1, N]. */
export function gemmBias(node: Node, n: number, beta: number): Float32Array | undefined | null {
  const c = node.inputs[2];
  if (!c) return undefined;
  const t = c.constant;
  if (!t || t.type !== "float32") return null;
  const count = t.data.length;
  const rowLike = t.dims.length <= 1 || (t.dims.length === 2 && t.dims[0] === 1);
  if (!rowLike || (count !== 1 && count !== n)) return null;
  const src = t.data as Float32Array;
  return Float32Array.from({ length: n }, (_, j) => beta * src[count === 1 ? 0 : j]);
}

export function matmulBias(node: Node, n: number): Float32Array | undefined | null {
  const c = node.inputs[2];
  if (!c) return undefined;
  const t = c.constant;
  return t && t.type === "float32" && t.data.length === n ? t.data as Float32Array : null;
}

/** M of the product when shape inference knows A's leading dims. */
function rowsOf(node: Node): number | undefined {
  const s = node.inputs[0]?.shape;
  if (!s || s.length < 1) return undefined;
  let m = 1;
  for (const d of s.slice(0, -1)) {
    if (typeof d !== "number" || d <= 0) return undefined;
    m *= d;
  }
  return m;
}

export const gemmF32: KernelOpFactory = (node: Node, env: KernelEnv): KernelOp | undefined => {
  const isGemm = node.op === "Gemm";
  const b = node.inputs[1]?.constant;
  if (!b || b.type !== "float32" || b.dims.length !== 2) return undefined;
  if (node.inputs[0]?.type && node.inputs[0].type !== "float32") return undefined;
  const transA = isGemm ? attrInt(node, "transA", 0) : 0;
  const transB = isGemm ? attrInt(node, "transB", 0) === 1 : false;
  if (transA !== 0) return undefined;
  const [k, n] = transB ? [b.dims[1], b.dims[0]] : [b.dims[0], b.dims[1]];
  if (k === 0 || n === 0) return undefined;
  const alpha = isGemm ? attrFloat(node, "alpha", 1) : 1;
  const beta = isGemm ? attrFloat(node, "beta", 1) : 1;
  // A MatMul's third input is the bias graph/fuse_transformer.ts fused into it.
  const bias = isGemm ? gemmBias(node, n, beta) : matmulBias(node, n);
  if (bias === null) return undefined;
  const weights = alpha === 1
    ? b.data as Float32Array
    : (b.data as Float32Array).map((v) => Math.fround(alpha * v));
  // Pruned weights (zeros from ai.sqz.SparseWeight or stored dense) stay sparse when the
  // sparse kernel is faster at this density and M (kernels/gemm_sparse.ts sparseWins).
  const w = { k, n, b: weights, transposed: transB, bias };
  const sparse = env.sparse !== "off" &&
    sparseWins(countNonzeros(weights) / weights.length, rowsOf(node));
  const gemm = sparse ? PackedGemmSparseF32.create(env.mod, w) : PackedGemmF32.create(env.mod, w);
  const act = fusedActivation(node);
  return {
    packedInputs: [1, 2],
    run(ctx) {
      const dims = ctx.inputDims(0);
      if (isGemm ? dims.length !== 2 : dims.length < 2) {
        throw new ShapeError(`A must be ${isGemm ? "2-D" : "at least 2-D"}, got [${dims}]`);
      }
      if (dims[dims.length - 1] !== k) {
        throw new ShapeError(`A is [${dims}] but B expects K = ${k}`);
      }
      const m = dims.slice(0, -1).reduce((x, y) => x * y, 1);
      const out = [...dims.slice(0, -1), n];
      const a = ctx.inputPtr(0);
      const c = ctx.outputPtr(0, "float32", out);
      if (m > 0) gemm.runResident(m, a, c, act);
      return m * n * k;
    },
    dispose: () => gemm.dispose(),
  };
};
