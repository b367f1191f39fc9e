// ReduceMean and ReduceSum backward. Forward is the engine's inference op (src/ops/reduce.ts);
// the reduced axes are read the way it reads them (the `axes` attribute before opset 18 for
// ReduceMean and 13 for ReduceSum, the second input from then on; noop_with_empty_axes; no axes
// = all of them), and the output gradient, read in the keepdims shape (the same row-major order
// whether or not keepdims dropped the axes), is broadcast back over them:
//   ReduceSum:  dx = dy (broadcast)        ReduceMean: dx = dy / count (broadcast)
// where count is the number of elements each output averages (the product of the reduced dims).
import type { Tensor } from "../../graph/tensor.ts";
import { TS_OPS } from "../../ops/registry.ts";
import { jsContext } from "../../ops/types.ts";
import { attrInt, attrInts } from "../../ops/attrs.ts";
import { normAxis, toInts } from "../../ops/tensor_util.ts";
import { eachRun, makePlan } from "../../ops/elementwise_kernels.ts";
import { size, type TrainContext, type TrainOpFactory } from "./types.ts";

/** Which axes of an input of rank r the node reduces, as src/ops/reduce.ts decides. */
function reduced(ctx: TrainContext, r: number, axesIn: Tensor | undefined, since: number) {
  const node = ctx.node;
  let axes: number[] | undefined, noop = false;
  if (ctx.opset >= since) {
    axes = axesIn ? toInts(axesIn) : attrInts(node, "axes");
    noop = attrInt(node, "noop_with_empty_axes", 0) !== 0;
  } else axes = attrInts(node, "axes");
  const red = new Array<boolean>(r).fill(false);
  if (!axes || axes.length === 0) return noop ? red : red.fill(true);
  for (const a of axes) if (r > 0) red[normAxis(a, r, node.name)] = true;
  return red;
}

/** Broadcasts g (shape `from`, which broadcasts to `to`) times k into a buffer of shape `to`. */
export function broadcastTo(
  g: Float32Array,
  from: readonly number[],
  to: readonly number[],
  k: number,
  out: Float32Array,
): Float32Array {
  const p = makePlan([from], to);
  const n = p.n, st = p.steps[0];
  eachRun(p, (oi, offs) => {
    const o = offs[0];
    if (st === 0) {
      const v = g[o] * k;
      for (let i = 0; i < n; i++) out[oi + i] = v;
    } else for (let i = 0; i < n; i++) out[oi + i] = g[o + i] * k;
  });
  return out;
}

function reduce(mean: boolean, axesInputSince: number): TrainOpFactory {
  return (ctx) => {
    let xDims: number[], keepDims: number[], count = 1;
    return {
      forward(ins) {
        xDims = ins[0]!.dims;
        const red = reduced(ctx, xDims.length, ins[1], axesInputSince);
        keepDims = xDims.map((d, i) => (red[i] ? 1 : d));
        count = size(xDims) / Math.max(1, size(keepDims));
        return TS_OPS[ctx.node.qualifiedOp](ins, jsContext(ctx.node, ctx.opset));
      },
      backward([g]) {
        if (!g || !ctx.needGrad[0]) return [];
        const out = ctx.buffer(0, size(xDims));
        return [broadcastTo(g, keepDims, xDims, mean ? 1 / count : 1, out)];
      },
    };
  };
}

export const REDUCE_GRADS: Record<string, TrainOpFactory> = {
  ReduceMean: reduce(true, 18),
  ReduceSum: reduce(false, 13),
};
