// Add, Sub, Mul and Div of float32 tensors on the Wasm binary kernel when one operand is the
// other's shape or a trailing block of it (residual adds, per-feature scales, scalars), which
// is what runs between the fused ops of a transformer. Any other broadcast runs the TypeScript
// op on views of the same inputs, so the node never fails for being unusual.
import type { Node } from "../../graph/ir.ts";
import type { KernelEnv, KernelOpFactory, KernelRunContext } from "../kernel_op.ts";
import { runTsOp } from "./ts_fallback.ts";

const CODES: Record<string, number> = { Add: 0, Sub: 1, Mul: 2, Div: 3 };
const COMMUTATIVE = new Set(["Add", "Mul"]);

/** Elements of b's shape when it is a trailing block of a's (leading 1s ignored). */
function trailingBlock(a: readonly number[], b: readonly number[]): number | undefined {
  let i = 0;
  while (i < b.length && b[i] === 1 && b.length - i > 0) i++;
  const core = b.slice(i);
  if (core.length > a.length || b.length > a.length) return undefined;
  const tail = a.slice(a.length - core.length);
  if (core.some((d, j) => d !== tail[j])) return undefined;
  return core.reduce((p, d) => p * d, 1);
}

export const binaryF32: KernelOpFactory = (node: Node, env: KernelEnv) => {
  const code = CODES[node.op];
  if (code === undefined || node.domain || node.inputs.length !== 2) return undefined;
  if (node.inputs.some((v) => !v || (v.type && v.type !== "float32"))) return undefined;
  if (node.inputs.every((v) => v!.constant)) return undefined;
  // A float32 constant operand (a bias, a scale) lives in Wasm memory once, not copied in per run.
  const resident = node.inputs.map((v) =>
    v!.constant?.type === "float32" && v!.constant.data.length
      ? env.mod.upload(v!.constant.data)
      : 0
  );
  const ptr = (ctx: KernelRunContext, i: number) => resident[i] || ctx.inputPtr(i);
  return {
    run(ctx: KernelRunContext) {
      // Other types or a general broadcast: the TypeScript op, written to the output.
      const general = () => runTsOp(ctx, node, env.opset, 2);
      if (ctx.inputType(0) !== "float32" || ctx.inputType(1) !== "float32") return general();
      const da = ctx.inputDims(0), db = ctx.inputDims(1);
      let [x, y, dx] = [0, 1, da];
      let bn = trailingBlock(da, db);
      if (bn === undefined && COMMUTATIVE.has(node.op)) {
        bn = trailingBlock(db, da);
        [x, y, dx] = [1, 0, db];
      }
      const n = dx.reduce((p, d) => p * d, 1);
      if (bn === undefined || (bn === 0 && n !== 0)) return general();
      const pa = ptr(ctx, x), pb = ptr(ctx, y);
      const out = ctx.outputPtr(0, "float32", [...dx]);
      if (n) ctx.mod.exports.sqz_f32_binary(code, n, pa, pb, bn, out);
    },
    dispose() {
      for (const p of resident) if (p) env.mod.heap.free(p);
    },
  };
};

/**
 * Sum of float32 tensors of one shape (the residual sums of Caffe2-exported ResNets), as a
 * chain of the binary Add kernel accumulating in the output: ((x0 + x1) + x2) + …, the order
 * the TypeScript op adds in. Broadcasting Sums run the TypeScript op.
 */
export const sumF32: KernelOpFactory = (node: Node, env: KernelEnv) => {
  if (node.domain || node.inputs.length < 2) return undefined;
  if (node.inputs.some((v) => !v || v.constant || (v.type && v.type !== "float32"))) {
    return undefined;
  }
  const k = node.inputs.length;
  return {
    run(ctx: KernelRunContext) {
      const d0 = ctx.inputDims(0);
      for (let i = 0; i < k; i++) {
        const d = ctx.inputDims(i);
        if (
          ctx.inputType(i) !== "float32" || d.length !== d0.length || d.some((x, j) => x !== d0[j])
        ) return runTsOp(ctx, node, env.opset, k);
      }
      const n = d0.reduce((p, d) => p * d, 1);
      const out = ctx.outputPtr(0, "float32", [...d0]);
      if (!n) return;
      const add = ctx.mod.exports.sqz_f32_binary;
      add(0, n, ctx.inputPtr(0), ctx.inputPtr(1), n, out);
      for (let i = 2; i < k; i++) add(0, n, out, ctx.inputPtr(i), n, out);
    },
    dispose() {},
  };
};
