// f32 Conv on NHWC activations (the layout pass routes eligible Conv nodes here as
// sqz.nhwc.Conv): depthwise layers on the depthwise kernels, the rest on the general
// convolution, weights packed once when the session is created. The general convolution runs
// im2col + GEMM, except for one group of ≤ 4 input channels (a first layer), which the kernel
// module runs on the direct kernel (kernels/conv/conv_direct.ts).
import type { Node } from "../../graph/ir.ts";
import type { KernelEnv, KernelOp, KernelOpFactory } from "../kernel_op.ts";
import { type Dims4, PackedConvF32, PackedConvSparseF32 } from "../../kernels/conv.ts";
import { countNonzeros, sparseWins } from "../../kernels/gemm_sparse.ts";
import { PackedDepthwiseF32 } from "../../kernels/dwconv.ts";
import { attrInt, attrInts } from "../../ops/attrs.ts";
import { fusedActivation, windowAttrs } from "./attrs.ts";
import { ShapeError } from "../../errors.ts";

/** Whether a float Conv node can run on the NHWC kernels (2-D, constant weights). */
export function convEligible(node: Node): boolean {
  if (node.op !== "Conv") return false;
  const w = node.inputs[1]?.constant, b = node.inputs[2];
  if (!w || w.type !== "float32" || w.dims.length !== 4) return false;
  if (b && (!b.constant || b.constant.type !== "float32")) return false;
  if (node.inputs[0]?.type && node.inputs[0].type !== "float32") return false;
  const ks = attrInts(node, "kernel_shape");
  if (ks && (ks.length !== 2 || ks[0] !== w.dims[2] || ks[1] !== w.dims[3])) return false;
  return windowAttrs(node) !== undefined;
}

/**
 * Whether a pruned convolution runs on the sparse kernel: one group, not a first layer of
 * ≤ 4 channels (the direct kernel's), and sparse enough for its output pixels
 * (kernels/gemm_sparse.ts sparseWins; M = pixels when shapes are known).
 */
function sparseConv(
  node: Node,
  env: KernelEnv,
  s: { cin: number; kh: number; kw: number; groups: number; weights: Float32Array },
): boolean {
  if (env.sparse === "off" || s.groups !== 1 || (s.cin <= 4 && s.kh * s.kw > 1)) return false;
  const out = node.outputs[0]?.shape;
  const cout = node.inputs[1]!.constant!.dims[0];
  let m: number | undefined;
  if (out && out.every((d) => typeof d === "number" && d > 0)) {
    m = (out as number[]).reduce((a, b) => a * b, 1) / cout;
  }
  return sparseWins(countNonzeros(s.weights) / s.weights.length, m);
}

export const nhwcConv: KernelOpFactory = (node: Node, env: KernelEnv): KernelOp | undefined => {
  if (!convEligible(node)) return undefined;
  const w = node.inputs[1]!.constant!;
  const bias = node.inputs[2]?.constant?.data as Float32Array | undefined;
  const [cout, cinG, kh, kw] = w.dims;
  const groups = attrInt(node, "group", 1);
  const cin = cinG * groups;
  if (cout % groups !== 0) {
    throw new ShapeError(
      `node '${node.name}': ${cout} output channels do not split into ${groups} groups`,
    );
  }
  const attrs = windowAttrs(node)!;
  const act = fusedActivation(node);
  const weights = w.data as Float32Array;
  const depthwise = groups > 1 && groups === cin && cout === cin;
  const shape = { cout, cin, kh, kw, groups, weights, bias };
  const conv = depthwise
    ? PackedDepthwiseF32.create(env.mod, { c: cin, kh, kw, weights, bias })
    : sparseConv(node, env, shape)
    ? PackedConvSparseF32.create(env.mod, shape)
    : PackedConvF32.create(env.mod, shape);
  const macsPerPixel = kh * kw * cinG * cout;
  return {
    packedInputs: [1, 2],
    run(k) {
      const dims = k.inputDims(0);
      if (dims.length !== 4) throw new ShapeError(`input must be 4-D, got [${dims}]`);
      const d = dims as Dims4;
      const out = conv.geometry(d, attrs).dims;
      const x = k.inputPtr(0);
      const y = k.outputPtr(0, "float32", out);
      conv.runResident(x, d, y, attrs, act);
      return out[0] * out[1] * out[2] * macsPerPixel;
    },
    dispose: () => conv.dispose(),
  };
};
