// BatchNormalization for training. In training mode it normalizes with the batch's statistics
// (over N and the spatial dims, per channel) and updates the running mean and variance in place,
// as PyTorch does: running = momentum·running + (1 − momentum)·batch, with ONNX's momentum
// (default 0.9) and the unbiased batch variance. In evaluation mode it uses the running
// statistics, which are then constants of the backward pass.
//   training:  x̂ = (x − μ_B)/√(σ²_B + ε),  y = γ·x̂ + β
//              dβ = Σ dy,  dγ = Σ dy·x̂,  dx = γ/(m·√(σ²_B + ε))·(m·dy − Σ dy − x̂·Σ dy·x̂)
import { attrFloat } from "../../ops/attrs.ts";
import { ShapeError } from "../../errors.ts";
import { f32, size, type TrainOpFactory } from "./types.ts";

export const batchNorm: TrainOpFactory = (ctx) => {
  const node = ctx.node;
  const eps = attrFloat(node, "epsilon", 1e-5), momentum = attrFloat(node, "momentum", 0.9);
  let N = 0, C = 0, S = 0, xhat: Float32Array, invStd: Float64Array, gamma: Float32Array;
  let batchStats = false;
  return {
    forward(ins) {
      const xt = ins[0]!, x = f32(xt, ctx, "X");
      gamma = f32(ins[1], ctx, "scale");
      const beta = f32(ins[2], ctx, "B"), rm = f32(ins[3], ctx, "mean");
      const rv = f32(ins[4], ctx, "var");
      [N, C] = xt.dims;
      S = size(xt.dims.slice(2));
      if ([gamma, beta, rm, rv].some((t) => t.length !== C)) {
        throw new ShapeError(`node '${node.name}' (BatchNormalization): parameters are not [${C}]`);
      }
      batchStats = ctx.training;
      const m = N * S;
      const y = ctx.buffer(0, x.length);
      xhat = ctx.buffer(1, x.length);
      invStd = new Float64Array(C);
      for (let c = 0; c < C; c++) {
        let mean: number, v: number;
        if (batchStats) {
          let s = 0, s2 = 0;
          for (let n = 0; n < N; n++) {
            const base = (n * C + c) * S;
            for (let i = 0; i < S; i++) s += x[base + i];
          }
          mean = s / m;
          for (let n = 0; n < N; n++) {
            const base = (n * C + c) * S;
            for (let i = 0; i < S; i++) {
              const d = x[base + i] - mean;
              s2 += d * d;
            }
          }
          v = s2 / m;
          rm[c] = momentum * rm[c] + (1 - momentum) * mean;
          rv[c] = momentum * rv[c] + (1 - momentum) * (m > 1 ? s2 / (m - 1) : v);
        } else {
          mean = rm[c];
          v = rv[c];
        }
        const inv = 1 / Math.sqrt(v + eps);
        invStd[c] = inv;
        const gc = gamma[c], bc = beta[c];
        for (let n = 0; n < N; n++) {
          const base = (n * C + c) * S;
          for (let i = 0; i < S; i++) {
            const h = (x[base + i] - mean) * inv;
            xhat[base + i] = h;
            y[base + i] = gc * h + bc;
          }
        }
      }
      return [{ type: "float32", dims: [...xt.dims], data: y }];
    },
    backward([g]) {
      if (!g) return [];
      const [nx, ng, nb] = ctx.needGrad;
      const m = N * S;
      const dx = nx ? ctx.buffer(2, g.length) : undefined;
      const dg = ng ? new Float32Array(C) : undefined, db = nb ? new Float32Array(C) : undefined;
      for (let c = 0; c < C; c++) {
        let sg = 0, sgx = 0;
        for (let n = 0; n < N; n++) {
          const base = (n * C + c) * S;
          for (let i = 0; i < S; i++) {
            sg += g[base + i];
            sgx += g[base + i] * xhat[base + i];
          }
        }
        if (dg) dg[c] = sgx;
        if (db) db[c] = sg;
        if (!dx) continue;
        const k = gamma[c] * invStd[c];
        for (let n = 0; n < N; n++) {
          const base = (n * C + c) * S;
          for (let i = 0; i < S; i++) {
            dx[base + i] = batchStats
              ? (k / m) * (m * g[base + i] - sg - xhat[base + i] * sgx)
              : k * g[base + i];
          }
        }
      }
      return [dx, dg, db];
    },
  };
};

export const NORM_GRADS: Record<string, TrainOpFactory> = { BatchNormalization: batchNorm };
