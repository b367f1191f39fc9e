// LayerNormalization (last axis), Softmax (last axis) and Gelu (erf form) on the Wasm row-wise
// kernels (kernels/nn/rowwise_f32.ts), for float32. Other axes, types and the optional
// statistics outputs stay with the TypeScript ops.
import type { Node } from "../../graph/ir.ts";
import type { KernelEnv, KernelOp, KernelOpFactory } from "../kernel_op.ts";
import { attrFloat, attrInt, attrString } from "../../ops/attrs.ts";
import { ShapeError } from "../../errors.ts";
import { runTsOp } from "./ts_fallback.ts";

const f32In = (node: Node, i = 0) => !node.inputs[i]?.type || node.inputs[i]!.type === "float32";
const used = (node: Node, i: number) => (node.outputs[i]?.consumers.length ?? 0) > 0;

function rowsOf(dims: readonly number[]): { rows: number; n: number } {
  const n = dims.length ? dims[dims.length - 1] : 1;
  let rows = 1;
  for (let i = 0; i < dims.length - 1; i++) rows *= dims[i];
  return { rows, n };
}

function lastAxis(axis: number, rank: number | undefined): boolean {
  return axis === -1 || (rank !== undefined && axis === rank - 1);
}

function checkF32(ctx: { inputType(i: number): string }, i: number, what: string): void {
  if (ctx.inputType(i) !== "float32") {
    throw new ShapeError(`${what} must be float32, got ${ctx.inputType(i)}`);
  }
}

export const layerNormF32: KernelOpFactory = (node: Node, env: KernelEnv) => {
  const rank = node.inputs[0]?.shape?.length;
  if (!lastAxis(attrInt(node, "axis", -1), rank) || !f32In(node)) return undefined;
  if (used(node, 1) || used(node, 2)) return undefined;
  const g = node.inputs[1]?.constant, b = node.inputs[2]?.constant;
  // Scale and bias as [D] vectors (the broadcast forms stay in TypeScript).
  if (!g || g.type !== "float32" || g.dims.length !== 1) return undefined;
  if (node.inputs[2] && (!b || b.type !== "float32" || b.dims.length !== 1)) return undefined;
  const eps = attrFloat(node, "epsilon", 1e-5);
  // Scale and bias live in Wasm memory once, not copied in on every run.
  const gamma = env.mod.upload(g.data), beta = b ? env.mod.upload(b.data) : 0;
  const op: KernelOp = {
    run(ctx) {
      checkF32(ctx, 0, "X");
      const dims = ctx.inputDims(0);
      const { rows, n } = rowsOf(dims);
      if (n !== g.dims[0]) throw new ShapeError(`X is [${dims}] but Scale has ${g.dims[0]} values`);
      const x = ctx.inputPtr(0);
      const y = ctx.outputPtr(0, "float32", [...dims]);
      if (rows * n) ctx.mod.exports.sqz_f32_layernorm(rows, n, x, gamma, beta, eps, y);
    },
    dispose() {
      env.mod.heap.free(gamma);
      if (beta) env.mod.heap.free(beta);
    },
  };
  return op;
};

export const softmaxF32: KernelOpFactory = (node: Node, env: KernelEnv) => {
  const rank = node.inputs[0]?.shape?.length;
  // Before opset 13 the axis coerces to 2-D; at the last axis both readings agree.
  const axis = attrInt(node, "axis", env.opset < 13 ? 1 : -1);
  if (!lastAxis(axis, rank) || !f32In(node)) return undefined;
  return {
    run(ctx) {
      checkF32(ctx, 0, "input");
      const dims = ctx.inputDims(0);
      const { rows, n } = rowsOf(dims);
      const x = ctx.inputPtr(0), y = ctx.outputPtr(0, "float32", [...dims]);
      if (rows * n) ctx.mod.exports.sqz_f32_softmax(rows, n, x, 1, 0, 0, y);
    },
    dispose() {},
  };
};

export const geluF32: KernelOpFactory = (node: Node) => {
  if (attrString(node, "approximate", "none") !== "none" || !f32In(node)) return undefined;
  return {
    run(ctx) {
      checkF32(ctx, 0, "X");
      const dims = ctx.inputDims(0);
      const count = dims.reduce((a, d) => a * d, 1);
      const x = ctx.inputPtr(0), y = ctx.outputPtr(0, "float32", [...dims]);
      if (count) ctx.mod.exports.sqz_f32_gelu(count, x, y);
    },
    dispose() {},
  };
};

/** Relu, and Clip with constant (or absent) float bounds. */
export const clampF32: KernelOpFactory = (node: Node, env: KernelEnv) => {
  if (!f32In(node)) return undefined;
  let lo = 0, hi = Infinity;
  if (node.op === "Clip") {
    const bound = (i: number, attr: string, dflt: number): number | undefined => {
      if (env.opset < 11) return attrFloat(node, attr, dflt);
      const v = node.inputs[i];
      if (!v) return dflt;
      const t = v.constant;
      return t && t.type === "float32" && t.data.length === 1
        ? (t.data as Float32Array)[0]
        : undefined;
    };
    const l = bound(1, "min", -Infinity), h = bound(2, "max", Infinity);
    if (l === undefined || h === undefined) return undefined;
    [lo, hi] = [l, h];
  }
  return {
    run(ctx) {
      // Integer Relu/Clip (the dtype was unknown at load): the TypeScript op.
      if (ctx.inputType(0) !== "float32") return runTsOp(ctx, node, env.opset, node.inputs.length);
      const dims = ctx.inputDims(0);
      const count = dims.reduce((a, d) => a * d, 1);
      const x = ctx.inputPtr(0), y = ctx.outputPtr(0, "float32", [...dims]);
      if (count) ctx.mod.exports.sqz_f32_clamp(count, x, lo, hi, y);
    },
    dispose() {},
  };
};
