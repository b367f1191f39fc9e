// Transpose and the two block rearrangements defined as reshape + transpose (DepthToSpace,
// SpaceToDepth). All run as one strided copy, whose coalescing turns the common CNN layout
// changes (NCHW↔NHWC, 2-D) into blocked 2-D transposes.
import type { Tensor } from "../graph/tensor.ts";
import type { OpContext, OpImpl } from "./types.ts";
import { attrInt, attrInts, attrString } from "./attrs.ts";
import { ArgumentError, ModelError, ShapeError } from "../errors.ts";
import { stridesOf } from "./tensor_util.ts";
import { allocOut, need, who } from "./op_args.ts";
import { copyStrided } from "./strided.ts";

/**
 * A new output of `outDims` filled in row-major order of the index space `walk` (same element
 * count), reading x at Σ i·srcStr.
 */
function gatherCopy(
  x: Tensor,
  outDims: number[],
  walk: number[],
  srcStr: number[],
  ctx: OpContext,
): Tensor {
  const out = allocOut(ctx, 0, x.type, outDims);
  copyStrided(walk, x.data, 0, srcStr, out.data, 0, stridesOf(walk));
  return out;
}

const transpose: OpImpl = (inputs, ctx) => {
  const x = need(inputs, 0, ctx);
  const r = x.dims.length;
  const perm = attrInts(ctx.node, "perm") ?? x.dims.map((_, i) => r - 1 - i);
  const seen = new Set(perm);
  if (perm.length !== r || seen.size !== r || perm.some((p) => !(p >= 0 && p < r))) {
    throw new ModelError(`${who(ctx)}: perm [${perm}] is not a permutation of rank ${r}`);
  }
  const st = stridesOf(x.dims);
  const dims = perm.map((p) => x.dims[p]);
  // The output's shape is the final contiguous layout: copyStrided writes it in order.
  return [gatherCopy(x, dims, dims, perm.map((p) => st[p]), ctx)];
};

function blockArgs(x: Tensor, ctx: OpContext): [number, number, number, number, number] {
  if (x.dims.length !== 4) {
    throw new ShapeError(`${who(ctx)}: input must be 4-D (NCHW), got [${x.dims}]`);
  }
  const b = attrInt(ctx.node, "blocksize", 0);
  if (!(b >= 1)) throw new ModelError(`${who(ctx)}: blocksize must be ≥ 1, got ${b}`);
  const [n, c, h, w] = x.dims;
  return [n, c, h, w, b];
}

const depthToSpace: OpImpl = (inputs, ctx) => {
  const x = need(inputs, 0, ctx);
  const [n, c, h, w, b] = blockArgs(x, ctx);
  if (c % (b * b) !== 0) {
    throw new ShapeError(`${who(ctx)}: channels ${c} are not divisible by blocksize² ${b * b}`);
  }
  const mode = attrString(ctx.node, "mode", "DCR");
  if (mode !== "DCR" && mode !== "CRD") {
    throw new ModelError(`${who(ctx)}: unknown mode '${mode}'`);
  }
  const c2 = c / (b * b), hw = h * w;
  // Output walked as [n, c2, h, b1, w, b2]; the source channel is b1·b·c2 + b2·c2 + c2 (DCR)
  // or c2·b² + b1·b + b2 (CRD).
  const src = mode === "DCR"
    ? [c * hw, hw, w, b * c2 * hw, 1, c2 * hw]
    : [c * hw, b * b * hw, w, b * hw, 1, hw];
  return [gatherCopy(x, [n, c2, h * b, w * b], [n, c2, h, b, w, b], src, ctx)];
};

const spaceToDepth: OpImpl = (inputs, ctx) => {
  const x = need(inputs, 0, ctx);
  const [n, c, h, w, b] = blockArgs(x, ctx);
  if (h % b !== 0 || w % b !== 0) {
    throw new ArgumentError(`${who(ctx)}: spatial dims ${h}×${w} are not divisible by ${b}`);
  }
  const hw = h * w;
  // Output walked as [n, b1, b2, c, h/b, w/b] (channel = (b1·b + b2)·c + c).
  const walk = [n, b, b, c, h / b, w / b];
  return [gatherCopy(x, [n, c * b * b, h / b, w / b], walk, [c * hw, w, 1, hw, b * w, b], ctx)];
};

export const TRANSPOSE_OPS: Record<string, OpImpl> = {
  Transpose: transpose,
  DepthToSpace: depthToSpace,
  SpaceToDepth: spaceToDepth,
};
