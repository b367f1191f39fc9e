// Gemm and MatMul forward and backward on the Wasm f32 GEMM. Operands are copied into scratch
// blocks; transposed operands are read through the packer's strides where B is concerned, and
// transposed in Wasm (sqz_f32_transpose) where A is.
//   Gemm:   Y = α·A'·B' + β·C          dA' = α·dY·B'ᵀ   dB' = α·A'ᵀ·dY   dC = β·Σ_broadcast dY
//   MatMul: Y[b] = A[b]·B[b] (numpy broadcasting of the batch dims; 1-D operands promoted)
//           dA[b] = dY[b]·B[b]ᵀ,  dB[b] = A[b]ᵀ·dY[b], summed over the batches it was broadcast to
import type { Tensor } from "../../graph/tensor.ts";
import { attrFloat, attrInt } from "../../ops/attrs.ts";
import { transposeResident } from "../../kernels/im2col.ts";
import { ShapeError } from "../../errors.ts";
import { gemm, type Scratch } from "../wasm.ts";
import { reduceTo } from "./elementwise.ts";
import { f32, size, type TrainContext, type TrainOpFactory } from "./types.ts";

/** Transposes [rows, cols] at src into a scratch slot; returns its offset. */
function transposed(s: Scratch, slot: string, rows: number, cols: number, src: number): number {
  const dst = s.get(slot, rows * cols * 4);
  transposeResident(s.mod, rows, cols, src, cols, dst, rows);
  return dst;
}

function scale(a: Float32Array, k: number): Float32Array {
  if (k !== 1) { for (let i = 0; i < a.length; i++) a[i] *= k; }
  return a;
}

const gemmOp: TrainOpFactory = (ctx: TrainContext) => {
  const node = ctx.node, s = ctx.scratch, mod = s.mod;
  const transA = attrInt(node, "transA", 0) === 1, transB = attrInt(node, "transB", 0) === 1;
  const alpha = attrFloat(node, "alpha", 1), beta = attrFloat(node, "beta", 1);
  let a: Float32Array, b: Float32Array, c: Tensor | undefined, M = 0, K = 0, N = 0;
  return {
    forward(ins) {
      a = f32(ins[0], ctx, "A");
      b = f32(ins[1], ctx, "B");
      c = ins[2];
      const ad = ins[0]!.dims, bd = ins[1]!.dims;
      if (ad.length !== 2 || bd.length !== 2) {
        throw new ShapeError(`node '${node.name}' (Gemm): A [${ad}] and B [${bd}] must be 2-D`);
      }
      [M, K] = transA ? [ad[1], ad[0]] : ad;
      const kb = transB ? bd[1] : bd[0];
      N = transB ? bd[0] : bd[1];
      if (kb !== K) {
        throw new ShapeError(`node '${node.name}' (Gemm): A' is ${M}×${K}, B' is ${kb}×${N}`);
      }
      let ap = s.put("gemm.a", a);
      if (transA) ap = transposed(s, "gemm.at", K, M, ap);
      const bp = s.put("gemm.b", b);
      // The bias rides in the packer when C is one value per column and nothing scales it.
      const cd = c?.dims ?? [];
      const perColumn = c && alpha === 1 &&
        (size(cd) === N && (cd.length === 1 || (cd.length === 2 && cd[0] === 1)));
      let bias = 0;
      if (perColumn) {
        const cv = f32(c, ctx, "C");
        bias = s.put("gemm.bias", beta === 1 ? cv : cv.map((v) => v * beta));
      }
      const yp = s.get("gemm.y", M * N * 4);
      gemm(s, M, N, K, ap, K, bp, transB ? 1 : N, transB ? K : 1, yp, N, bias);
      const y = mod.f32(yp, M * N).slice();
      if (c && !perColumn) {
        scale(y, alpha);
        const cv = f32(c, ctx, "C");
        const full = reduceShape(cv, cd, [M, N]);
        for (let i = 0; i < y.length; i++) y[i] += beta * full(i);
      }
      return [{ type: "float32", dims: [M, N], data: y }];
    },
    backward([g]) {
      if (!g) return [];
      const [na, nb, nc] = ctx.needGrad;
      const gp = s.put("gemm.g", g);
      let da: Float32Array | undefined, db: Float32Array | undefined;
      if (na) {
        // dA' [M, K] = dY · B'ᵀ; B'ᵀ element (j, i) = B'(i, j).
        const bp = s.put("gemm.b", b);
        const out = s.get("gemm.da", M * K * 4);
        gemm(s, M, K, N, gp, N, bp, transB ? K : 1, transB ? 1 : N, out, K);
        const res = transA ? transposed(s, "gemm.dat", M, K, out) : out;
        da = scale(mod.f32(res, M * K).slice(), alpha);
      }
      if (nb) {
        const ap = s.put("gemm.a", a);
        const out = s.get("gemm.db", K * N * 4);
        if (transB) {
          // dB [N, K] = dYᵀ · A'; A'(m, k) is A[k·M + m] (transA) or A[m·K + k].
          const gt = transposed(s, "gemm.gt", M, N, gp);
          gemm(s, N, K, M, gt, M, ap, transA ? 1 : K, transA ? M : 1, out, K);
        } else {
          // dB [K, N] = A'ᵀ · dY; A'ᵀ is A itself when transA.
          const at = transA ? ap : transposed(s, "gemm.at", M, K, ap);
          gemm(s, K, N, M, at, M, gp, N, 1, out, N);
        }
        db = scale(mod.f32(out, K * N).slice(), alpha);
      }
      const dc = nc && c ? scale(reduceTo(g, [M, N], c.dims).slice(), beta) : undefined;
      return [da, db, dc];
    },
  };
};

/** Element i of C broadcast to out [M, N]. */
function reduceShape(cv: Float32Array, cd: readonly number[], out: [number, number]) {
  const d = [...new Array(2 - cd.length).fill(1), ...cd];
  const [M, N] = out;
  if ((d[0] !== 1 && d[0] !== M) || (d[1] !== 1 && d[1] !== N)) {
    throw new ShapeError(`Gemm: C [${cd}] does not broadcast to [${out}]`);
  }
  return (i: number) => {
    const r = d[0] === 1 ? 0 : Math.floor(i / N), col = d[1] === 1 ? 0 : i % N;
    return cv[r * d[1] + col];
  };
}

const matmul: TrainOpFactory = (ctx) => {
  const node = ctx.node, s = ctx.scratch, mod = s.mod;
  let a: Float32Array, b: Float32Array, aDims: number[], bDims: number[];
  let M = 0, K = 0, N = 0, batch: number[] = [], aOff: number[] = [], bOff: number[] = [];
  let outDims: number[] = [];
  return {
    forward(ins) {
      a = f32(ins[0], ctx, "A");
      b = f32(ins[1], ctx, "B");
      aDims = ins[0]!.dims;
      bDims = ins[1]!.dims;
      const ad = aDims.length === 1 ? [1, aDims[0]] : aDims;
      const bd = bDims.length === 1 ? [bDims[0], 1] : bDims;
      M = ad[ad.length - 2];
      K = ad[ad.length - 1];
      N = bd[bd.length - 1];
      if (bd[bd.length - 2] !== K) {
        throw new ShapeError(`node '${node.name}' (MatMul): [${aDims}] · [${bDims}]`);
      }
      const ab = ad.slice(0, -2), bb = bd.slice(0, -2), r = Math.max(ab.length, bb.length);
      const pa = [...new Array(r - ab.length).fill(1), ...ab];
      const pb = [...new Array(r - bb.length).fill(1), ...bb];
      batch = pa.map((x, i) => {
        if (x !== pb[i] && x !== 1 && pb[i] !== 1) {
          throw new ShapeError(`node '${node.name}' (MatMul): batch dims [${ab}] vs [${bb}]`);
        }
        return Math.max(x, pb[i]);
      });
      // Offsets (in matrices) of each output batch's A and B.
      const nb = size(batch);
      aOff = new Array(nb);
      bOff = new Array(nb);
      for (let i = 0; i < nb; i++) {
        let rem = i, oa = 0, ob = 0, sa = 1, sb = 1;
        for (let d = r - 1; d >= 0; d--) {
          const idx = rem % batch[d];
          rem = Math.floor(rem / batch[d]);
          if (pa[d] !== 1) oa += idx * sa;
          if (pb[d] !== 1) ob += idx * sb;
          sa *= pa[d];
          sb *= pb[d];
        }
        aOff[i] = oa;
        bOff[i] = ob;
      }
      const ap = s.put("mm.a", a), bp = s.put("mm.b", b);
      const y = new Float32Array(nb * M * N);
      const yp = s.get("mm.y", y.length * 4);
      if (size(bb) === 1 && nb > 0) {
        // x·W: every batch shares B, so one GEMM over all rows.
        gemm(s, (size(ab) || 1) * M, N, K, ap, K, bp, N, 1, yp, N);
        const rows = size(ab) * M;
        y.set(mod.f32(yp, rows * N));
      } else {
        for (let i = 0; i < nb; i++) {
          gemm(
            s,
            M,
            N,
            K,
            ap + 4 * aOff[i] * M * K,
            K,
            bp + 4 * bOff[i] * K * N,
            N,
            1,
            yp + 4 * i * M * N,
            N,
          );
        }
        y.set(mod.f32(yp, y.length));
      }
      outDims = [...batch, ...(aDims.length === 1 ? [] : [M]), ...(bDims.length === 1 ? [] : [N])];
      return [{ type: "float32", dims: outDims, data: y }];
    },
    backward([g]) {
      if (!g) return [];
      const [na, nbg] = ctx.needGrad;
      const nb = size(batch);
      const gp = s.put("mm.g", g);
      let da: Float32Array | undefined, db: Float32Array | undefined;
      if (na) {
        const bp = s.put("mm.b", b);
        const out = s.zeros("mm.da", a.length);
        const tmp = s.get("mm.tmp", M * K * 4);
        for (let i = 0; i < nb; i++) {
          // dA[b] += dY[b] · B[b]ᵀ; B[b]ᵀ element (j, k) = B[k·N + j].
          gemm(s, M, K, N, gp + 4 * i * M * N, N, bp + 4 * bOff[i] * K * N, 1, N, tmp, K);
          const dst = mod.f32(out + 4 * aOff[i] * M * K, M * K), t = mod.f32(tmp, M * K);
          for (let j = 0; j < t.length; j++) dst[j] += t[j];
        }
        da = mod.f32(out, a.length).slice();
      }
      if (nbg) {
        const ap = s.put("mm.a", a);
        const out = s.zeros("mm.db", b.length);
        const tmp = s.get("mm.tmp2", K * N * 4);
        if (size(bDims.slice(0, -2)) === 1 && bDims.length >= 2) {
          // Shared B: dB = Aᵀ·dY over all rows at once.
          const rows = nb * M;
          const at = transposed(s, "mm.at", rows, K, ap);
          gemm(s, K, N, rows, at, rows, gp, N, 1, out, N);
        } else {
          for (let i = 0; i < nb; i++) {
            const at = transposed(s, "mm.at", M, K, ap + 4 * aOff[i] * M * K);
            gemm(s, K, N, M, at, M, gp + 4 * i * M * N, N, 1, tmp, N);
            const dst = mod.f32(out + 4 * bOff[i] * K * N, K * N), t = mod.f32(tmp, K * N);
            for (let j = 0; j < t.length; j++) dst[j] += t[j];
          }
        }
        db = mod.f32(out, b.length).slice();
      }
      return [da, db];
    },
  };
};

export const DENSE_GRADS: Record<string, TrainOpFactory> = { Gemm: gemmOp, MatMul: matmul };
