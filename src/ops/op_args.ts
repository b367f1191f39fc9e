// Reading the shape-like arguments of the tensor ops (axes, shapes, pads, starts…), which
// moved from attributes to inputs across opsets, with checks that name the node.
import type { Tensor } from "../graph/tensor.ts";
import type { OpContext } from "./types.ts";
import { attrInts } from "./attrs.ts";
import { ArgumentError, ShapeError } from "../errors.ts";
import { checkDims, toInts } from "./tensor_util.ts";
import type { TensorType } from "../graph/tensor.ts";

/** "node 'x' (Op)": the prefix of every message. */
export const who = (ctx: OpContext): string => `node '${ctx.node.name}' (${ctx.node.op})`;

/** The required input i, or a ShapeError naming it. */
export function need(inputs: readonly (Tensor | undefined)[], i: number, ctx: OpContext): Tensor {
  const t = inputs[i];
  if (!t) throw new ShapeError(`${who(ctx)}: input ${i} is missing`);
  return t;
}

/** An int32/int64 tensor of rank ≤ 1 as numbers (INT64 extremes become ±9.22e18). */
export function intList(t: Tensor, what: string, ctx: OpContext): number[] {
  if (t.type !== "int64" && t.type !== "int32") {
    throw new ShapeError(`${who(ctx)}: ${what} must be int64 or int32, not ${t.type}`);
  }
  if (t.dims.length > 1) {
    throw new ShapeError(`${who(ctx)}: ${what} must be 1-D, got shape [${t.dims}]`);
  }
  return toInts(t);
}

/** An integer list given as input i, or (older opsets) as attribute `name`. */
export function intsArg(
  inputs: readonly (Tensor | undefined)[],
  i: number,
  name: string,
  ctx: OpContext,
): number[] | undefined {
  const t = inputs[i];
  if (t) return intList(t, name, ctx);
  return attrInts(ctx.node, name);
}

/** Normalizes axes against rank r: in range, no repeats. */
export function normAxes(axes: readonly number[], r: number, ctx: OpContext): number[] {
  const out = axes.map((a) => {
    const n = a < 0 ? a + r : a;
    if (!Number.isInteger(n) || n < 0 || n >= r) {
      throw new ArgumentError(`${who(ctx)}: axis ${a} is out of range for rank ${r}`);
    }
    return n;
  });
  if (new Set(out).size !== out.length) {
    throw new ArgumentError(`${who(ctx)}: axes [${axes}] repeat an axis`);
  }
  return out;
}

/** A scalar (or one-element) input as a number. */
export function scalarArg(t: Tensor, what: string, ctx: OpContext): number {
  if (t.data.length !== 1) {
    throw new ShapeError(`${who(ctx)}: ${what} must hold one value, got shape [${t.dims}]`);
  }
  return Number(t.data[0]);
}

/** ctx.alloc after the size checks, so a bad shape is a ShapeError naming the node. */
export function allocOut(ctx: OpContext, i: number, type: TensorType, dims: number[]): Tensor {
  checkDims(dims, type, `${who(ctx)} output ${i}`);
  return ctx.alloc(i, type, dims);
}
