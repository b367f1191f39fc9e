// sqz's training-only ops (domain ai.sqz; they exist in training graphs, never in artifacts).
// Each simulates in the forward pass what a compression pass will store, using the pass's own
// encoder and the engine's own decoder, so the network trains against exactly the weights it
// will run with; the backward pass is a straight-through estimator (STE).
//
// ai.sqz.FakeQuantWeight(w) → w̃, attributes:
//   scheme      "int8"    per-output-channel symmetric int8 (compress/int8.ts quantizeWeights);
//                         attribute `axis` = the tensor's output-channel axis
//               "int4"    blocks along K (compress/int4.ts encodeInt4); `axis` = matrix-view axis
//                         (src/ops/sqz_lowbit.ts), `block_size`, `symmetric`
//               "ternary" TWN per row of the matrix view (compress/ternary.ts); `axis` as int4
//               "binary"  XNOR-Net: w̃ = α_r·sign(w), α_r = mean|w| over row r of the view
//   backward    int8 / int4 / ternary: dw = dw̃ (their ranges come from w itself: nothing clips)
//               binary: dw_j = sign(w_j)/K·Σ_i dw̃_i·sign(w_i) + α·dw̃_j·1(|w_j| ≤ 1), the exact
//               derivative through α plus the clipped STE through sign (XNOR-Net)
// ai.sqz.FakeQuantAct(x) → x̃: uint8 asymmetric per-tensor fake quantization with the range an
//   EMA of the batch min / max (always containing 0; attribute `momentum`, default 0.9) while
//   training, frozen in evaluation. dx = dx̃ inside the range, 0 outside (clipped STE).
// ai.sqz.SignSTE(x) → sign(x) ∈ {−1, +1} (sign(0) = +1, as the binary kernels); dx = dy·1(|x| ≤ 1)
//   (Larq's ste_sign).
import { Node } from "../../graph/ir.ts";
import type { Tensor } from "../../graph/tensor.ts";
import { attrFloat, attrInt, attrString } from "../../ops/attrs.ts";
import { TS_OPS } from "../../ops/registry.ts";
import { jsContext } from "../../ops/types.ts";
import { weightView } from "../../ops/sqz_lowbit.ts";
import { quantizeWeights } from "../../compress/int8.ts";
import { encodeInt4 } from "../../compress/int4.ts";
import { encodeTernary } from "../../compress/ternary.ts";
import { roundHalfEven } from "../../ops/quant.ts";
import { ModelError } from "../../errors.ts";
import { SQZ_DOMAIN } from "../../graph/qdq.ts";
import { f32, type TrainOpFactory } from "./types.ts";

function decode(node: Node, op: string, ins: Tensor[], attrs: Node["attrs"]): Float32Array {
  const n = new Node(`${node.name}/decode`, op, SQZ_DOMAIN, [], [], attrs);
  return TS_OPS[`${SQZ_DOMAIN}.${op}`](ins, jsContext(n, 1))[0].data as Float32Array;
}

const fakeQuantWeight: TrainOpFactory = (ctx) => {
  const node = ctx.node;
  const scheme = attrString(node, "scheme", "");
  const axis = attrInt(node, "axis", 0);
  let w: Float32Array, dims: number[], alpha: Float64Array, rows = 0, k = 0;
  let rowOf: (i: number) => number;
  return {
    forward(ins) {
      w = f32(ins[0], ctx, "W");
      dims = ins[0]!.dims;
      let y: Float32Array;
      if (scheme === "int8") {
        const { q, scales } = quantizeWeights(ins[0]!, axis);
        const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1), ch = dims[axis];
        y = Float32Array.from(q, (v, i) => v * scales[Math.floor(i / inner) % ch]);
      } else if (scheme === "int4" || scheme === "ternary") {
        const view = weightView(dims, axis);
        if (scheme === "int4") {
          const bs = attrInt(node, "block_size", 32), sym = attrInt(node, "symmetric", 1) === 1;
          const e = encodeInt4(w, view, bs, sym);
          const t = (type: "uint8" | "float32", d: Uint8Array | Float32Array) =>
            ({ type, dims: [d.length], data: d }) as Tensor;
          const ins4 = [t("uint8", e.packed), t("float32", e.scales)];
          if (e.zeroPoints) ins4.push(t("uint8", e.zeroPoints));
          y = decode(node, "DequantizeInt4", ins4, { shape: dims, axis, block_size: bs });
        } else {
          const e = encodeTernary(w, view);
          y = decode(node, "DequantizeTernary", [
            { type: "uint8", dims: [e.codes.length], data: e.codes },
            { type: "float32", dims: [e.alpha.length], data: e.alpha },
          ], { shape: dims, axis });
        }
      } else if (scheme === "binary") {
        const view = weightView(dims, axis);
        rows = view.rows;
        k = view.k;
        rowOf = view.axis === 1 ? (i) => Math.floor(i / k) : (i) => i % rows;
        alpha = new Float64Array(rows);
        for (let i = 0; i < w.length; i++) alpha[rowOf(i)] += Math.abs(w[i]);
        for (let r = 0; r < rows; r++) alpha[r] /= k;
        y = new Float32Array(w.length);
        for (let i = 0; i < w.length; i++) {
          const a = Math.fround(alpha[rowOf(i)]);
          y[i] = w[i] < 0 ? -a : a;
        }
      } else {
        throw new ModelError(`node '${node.name}' (FakeQuantWeight): unknown scheme '${scheme}'`);
      }
      return [{ type: "float32", dims: [...dims], data: y }];
    },
    backward([g]) {
      if (!g || !ctx.needGrad[0]) return [];
      if (scheme !== "binary") return [g];
      const dot = new Float64Array(rows);
      for (let i = 0; i < w.length; i++) dot[rowOf(i)] += w[i] < 0 ? -g[i] : g[i];
      const d = new Float32Array(w.length);
      for (let i = 0; i < w.length; i++) {
        const r = rowOf(i), s = w[i] < 0 ? -1 : 1;
        d[i] = (s * dot[r]) / k + (Math.abs(w[i]) <= 1 ? alpha[r] * g[i] : 0);
      }
      return [d];
    },
  };
};

const fakeQuantAct: TrainOpFactory = (ctx) => {
  const momentum = attrFloat(ctx.node, "momentum", 0.9);
  let lo = 0, hi = 0, seen = false, x: Float32Array;
  return {
    forward(ins) {
      x = f32(ins[0], ctx, "X");
      if (ctx.training || !seen) {
        let mn = 0, mx = 0;
        for (let i = 0; i < x.length; i++) {
          const v = x[i];
          if (v < mn) mn = v;
          if (v > mx) mx = v;
        }
        if (!seen) [lo, hi, seen] = [mn, mx, true];
        else {
          lo = momentum * lo + (1 - momentum) * mn;
          hi = momentum * hi + (1 - momentum) * mx;
        }
      }
      const s = hi > lo ? (hi - lo) / 255 : 1,
        zp = Math.min(255, Math.max(0, roundHalfEven(-lo / s)));
      const y = ctx.buffer(0, x.length);
      for (let i = 0; i < x.length; i++) {
        const q = Math.min(255, Math.max(0, roundHalfEven(x[i] / s) + zp));
        y[i] = (q - zp) * s;
      }
      return [{ type: "float32", dims: [...ins[0]!.dims], data: y }];
    },
    backward([g]) {
      if (!g || !ctx.needGrad[0]) return [];
      const d = ctx.buffer(1, g.length);
      for (let i = 0; i < g.length; i++) d[i] = g[i] * +(x[i] >= lo && x[i] <= hi);
      return [d];
    },
  };
};

const signSte: TrainOpFactory = (ctx) => {
  let x: Float32Array;
  return {
    forward(ins) {
      x = f32(ins[0], ctx, "X");
      const y = ctx.buffer(0, x.length);
      for (let i = 0; i < x.length; i++) y[i] = 1 - 2 * +(x[i] < 0);
      return [{ type: "float32", dims: [...ins[0]!.dims], data: y }];
    },
    backward([g]) {
      if (!g || !ctx.needGrad[0]) return [];
      const d = ctx.buffer(1, g.length);
      for (let i = 0; i < g.length; i++) d[i] = g[i] * +(Math.abs(x[i]) <= 1);
      return [d];
    },
  };
};

export const SQZ_GRADS: Record<string, TrainOpFactory> = {
  [`${SQZ_DOMAIN}.FakeQuantWeight`]: fakeQuantWeight,
  [`${SQZ_DOMAIN}.FakeQuantAct`]: fakeQuantAct,
  [`${SQZ_DOMAIN}.SignSTE`]: signSte,
};
