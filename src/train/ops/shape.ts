// Backward passes of the ops that move data without arithmetic: reshapes pass the gradient
// through (row-major order is unchanged), Transpose applies the inverse permutation, Concat
// splits the gradient, constant Pad crops it. Forward is the engine's inference op.
import { Node } from "../../graph/ir.ts";
import type { Tensor } from "../../graph/tensor.ts";
import { TS_OPS } from "../../ops/registry.ts";
import { jsContext } from "../../ops/types.ts";
import { attrInt, attrInts, attrString } from "../../ops/attrs.ts";
import { UnsupportedError } from "../../errors.ts";
import { passThrough } from "./elementwise.ts";
import { size, type TrainOpFactory } from "./types.ts";

const infer = (node: Node, opset: number, ins: readonly (Tensor | undefined)[]) =>
  TS_OPS[node.qualifiedOp](ins, jsContext(node, opset));

const transpose: TrainOpFactory = (ctx) => {
  let perm: number[], outDims: number[];
  return {
    forward(ins) {
      const r = ins[0]!.dims.length;
      perm = attrInts(ctx.node, "perm") ?? Array.from({ length: r }, (_, i) => r - 1 - i);
      const out = infer(ctx.node, ctx.opset, ins);
      outDims = out[0].dims;
      return out;
    },
    backward([g]) {
      if (!g || !ctx.needGrad[0]) return [];
      const inv = new Array<number>(perm.length);
      perm.forEach((p, i) => (inv[p] = i));
      const n = new Node(`${ctx.node.name}/grad`, "Transpose", "", [], [], { perm: inv });
      const [t] = infer(n, ctx.opset, [{ type: "float32", dims: outDims, data: g }]);
      return [t.data as Float32Array];
    },
  };
};

const concat: TrainOpFactory = (ctx) => {
  let dims: number[][], axis: number;
  return {
    forward(ins) {
      dims = ins.map((t) => t!.dims);
      const r = dims[0].length;
      axis = attrInt(ctx.node, "axis", 0);
      if (axis < 0) axis += r;
      return infer(ctx.node, ctx.opset, ins);
    },
    backward([g]) {
      if (!g) return [];
      const outer = size(dims[0].slice(0, axis)), inner = size(dims[0].slice(axis + 1));
      const total = dims.reduce((s, d) => s + d[axis], 0);
      let at = 0;
      return dims.map((d, i) => {
        const len = d[axis] * inner, from = at;
        at += len;
        if (!ctx.needGrad[i]) return undefined;
        const r = new Float32Array(outer * len);
        for (let o = 0; o < outer; o++) {
          const src = o * total * inner + from;
          r.set(g.subarray(src, src + len), o * len);
        }
        return r;
      });
    },
  };
};

/** Constant-mode Pad: the gradient of the input is the matching window of the output's. */
const pad: TrainOpFactory = (ctx) => {
  let inDims: number[], outDims: number[], pads: number[];
  return {
    forward(ins) {
      const mode = attrString(ctx.node, "mode", "constant");
      if (mode !== "constant") {
        throw new UnsupportedError(
          `node '${ctx.node.name}' (Pad): training supports mode 'constant', not '${mode}'`,
        );
      }
      inDims = ins[0]!.dims;
      const r = inDims.length;
      const out = infer(ctx.node, ctx.opset, ins);
      outDims = out[0].dims;
      // Begin pads from the shapes is ambiguous; read them as the op does.
      const raw = ctx.opset < 11
        ? attrInts(ctx.node, "pads") ?? []
        : Array.from(ins[1]!.data as ArrayLike<number | bigint>, Number);
      const axesT = ins[3];
      pads = new Array(2 * r).fill(0);
      if (axesT) {
        const axes = Array.from(axesT.data as ArrayLike<number | bigint>, Number).map((a) =>
          a < 0 ? a + r : a
        );
        axes.forEach((a, i) => {
          pads[a] = raw[i];
          pads[a + r] = raw[i + axes.length];
        });
      } else pads = raw.slice(0, 2 * r);
      return out;
    },
    backward([g]) {
      if (!g || !ctx.needGrad[0]) return [];
      const r = inDims.length, d = new Float32Array(size(inDims));
      const oStr = new Array<number>(r), iStr = new Array<number>(r);
      oStr[r - 1] = iStr[r - 1] = 1;
      for (let i = r - 2; i >= 0; i--) {
        oStr[i] = oStr[i + 1] * outDims[i + 1];
        iStr[i] = iStr[i + 1] * inDims[i + 1];
      }
      const idx = new Array<number>(r).fill(0);
      for (let flat = 0; flat < d.length; flat++) {
        let rem = flat, o = 0, ok = true;
        for (let a = 0; a < r; a++) {
          idx[a] = Math.floor(rem / iStr[a]);
          rem -= idx[a] * iStr[a];
          const p = idx[a] + pads[a];
          if (p < 0 || p >= outDims[a]) ok = false;
          o += p * oStr[a];
        }
        d[flat] = ok ? g[o] : 0;
      }
      return [d];
    },
  };
};

export const SHAPE_GRADS: Record<string, TrainOpFactory> = {
  Flatten: passThrough,
  Reshape: passThrough,
  Squeeze: passThrough,
  Unsqueeze: passThrough,
  Identity: passThrough,
  // Training mode runs Dropout as the identity (sqz fine-tunes compressed models briefly; the
  // regularizer matters less than a deterministic gradient).
  Dropout: passThrough,
  Transpose: transpose,
  Concat: concat,
  Pad: pad,
};
