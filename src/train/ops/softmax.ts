// Softmax and LogSoftmax backward. Opset ≥ 13 normalizes along `axis` (default −1); earlier
// opsets flatten the input to 2-D at `axis` (default 1) and normalize each row.
//   Softmax:    dx = y ⊙ (dy − Σ dy⊙y)      LogSoftmax: dx = dy − softmax(x)·Σ dy
import { TS_OPS } from "../../ops/registry.ts";
import { jsContext } from "../../ops/types.ts";
import { attrInt } from "../../ops/attrs.ts";
import { size, type TrainOpFactory } from "./types.ts";

function softmax(log: boolean): TrainOpFactory {
  return (ctx) => {
    let y: Float32Array, outer = 0, len = 0, inner = 0;
    return {
      forward(ins) {
        const dims = ins[0]!.dims, r = dims.length;
        let axis = attrInt(ctx.node, "axis", ctx.opset >= 13 ? -1 : 1);
        if (axis < 0) axis += r;
        outer = size(dims.slice(0, axis));
        if (ctx.opset >= 13) {
          len = dims[axis];
          inner = size(dims.slice(axis + 1));
        } else {
          len = size(dims.slice(axis));
          inner = 1;
        }
        const out = TS_OPS[ctx.node.op](ins, jsContext(ctx.node, ctx.opset));
        y = out[0].data as Float32Array;
        return out;
      },
      backward([g]) {
        if (!g || !ctx.needGrad[0]) return [];
        const dx = new Float32Array(g.length);
        for (let o = 0; o < outer; o++) {
          for (let j = 0; j < inner; j++) {
            const base = o * len * inner + j;
            let s = 0;
            for (let i = 0; i < len; i++) {
              const at = base + i * inner;
              s += log ? g[at] : g[at] * y[at];
            }
            for (let i = 0; i < len; i++) {
              const at = base + i * inner;
              dx[at] = log ? g[at] - Math.exp(y[at]) * s : y[at] * (g[at] - s);
            }
          }
        }
        return [dx];
      },
    };
  };
}

export const SOFTMAX_GRADS: Record<string, TrainOpFactory> = {
  Softmax: softmax(false),
  LogSoftmax: softmax(true),
};
