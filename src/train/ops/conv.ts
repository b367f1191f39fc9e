// Conv forward and backward on the Wasm kernels, NCHW in and out (the IR's layout), 1-D and 2-D,
// any stride, padding, dilation and group count (depthwise included). Every product has the
// large patch matrix as the GEMM's A operand and a small one as the packed B, since packing is
// the expensive side of the f32 GEMM; images go in chunks so the patch matrix stays in cache.
//   forward   rows = im2row(xᴺᴴᵂᶜ) [P, K] per image, K in (ky, kx, ci) order (OHWI)
//             Yᵀ = rows · W_ohwiᵀ + b        (the bias rides in the packer)    → NCHW
//   backward  dWᵀ = col · dYᵀ  with col = im2col(x) [K+1, P] in OIHW order, whose extra row of
//             ones makes the last row of the product the bias gradient
//             d rows = dYᵀ · W_ohwi,  dxᴺᴴᵂᶜ = row2im(d rows)                     → NCHW
// The NCHW ↔ NHWC moves are Wasm transposes of [C, H·W] planes. Attribute `pad_value`
// (training graphs only) makes padded taps read that value: 1 for binary layers, whose
// kernels pad with +1.
import type { Tensor } from "../../graph/tensor.ts";
import { ndWindow } from "../../ops/conv_nd.ts";
import { attrFloat, attrInt } from "../../ops/attrs.ts";
import {
  im2colResident,
  im2rowNhwcResident,
  row2imNhwcResident,
  transposeResident,
} from "../../kernels/im2col.ts";
import type { Im2colGeometry } from "../../kernels/reference_im2col.ts";
import { ShapeError, UnsupportedError } from "../../errors.ts";
import { gemm } from "../wasm.ts";
import { f32, type TrainOpFactory } from "./types.ts";

/** Floats of patch matrix per chunk: about 1 MiB, inside a core's L2. */
const CHUNK_FLOATS = 1 << 18;

export const conv: TrainOpFactory = (ctx) => {
  const node = ctx.node, s = ctx.scratch, mod = s.mod;
  let x: Float32Array, w: Float32Array, b: Float32Array | undefined;
  let N = 0, C = 0, HW = 0, Cout = 0, G = 1, geo: Im2colGeometry, K = 0, P = 0, chunk = 1;
  let padValue = 0;

  /** Weights of group gi as OHWI rows [cg, K] (K in (ky, kx, ci) order), in slot "conv.w". */
  const ohwi = (gi: number): number => {
    const cg = Cout / G, { c, kh, kw } = geo, p = s.get("conv.w", cg * K * 4);
    const v = mod.f32(p, cg * K);
    for (let o = 0; o < cg; o++) {
      const src = (gi * cg + o) * K, dst = o * K;
      for (let ci = 0; ci < c; ci++) {
        for (let t = 0; t < kh * kw; t++) v[dst + t * c + ci] = w[src + ci * kh * kw + t];
      }
    }
    return p;
  };

  /** x as NHWC in slot "conv.xt". */
  const toNhwc = (): number => {
    const xp = s.put("conv.x", x), xt = s.get("conv.xt", x.length * 4);
    for (let n = 0; n < N; n++) {
      transposeResident(mod, C, HW, xp + 4 * n * C * HW, HW, xt + 4 * n * C * HW, C);
    }
    return xt;
  };

  return {
    forward(ins) {
      x = f32(ins[0], ctx, "X");
      w = f32(ins[1], ctx, "W");
      b = ins[2] ? f32(ins[2], ctx, "B") : undefined;
      const xDims = ins[0]!.dims, wd = ins[1]!.dims;
      if (xDims.length !== 3 && xDims.length !== 4) {
        throw new UnsupportedError(
          `node '${node.name}' (Conv): training supports 1-D and 2-D convolutions, got input ` +
            `[${xDims}]`,
        );
      }
      const two = xDims.length === 4;
      [N, C] = xDims;
      const H = two ? xDims[2] : 1, W = two ? xDims[3] : xDims[2];
      HW = H * W;
      Cout = wd[0];
      G = attrInt(node, "group", 1);
      const kh = two ? wd[2] : 1, kw = two ? wd[3] : wd[2];
      if (wd.length !== xDims.length || C % G !== 0 || Cout % G !== 0 || wd[1] * G !== C) {
        throw new ShapeError(
          `node '${node.name}' (Conv): input [${xDims}] does not fit weight [${wd}] with group ${G}`,
        );
      }
      const win = ndWindow(node, xDims.slice(2), wd.slice(2));
      const at = (a: number[], i: number, d: number) => (two ? a[i] : i === 0 ? d : a[0]);
      geo = {
        c: C / G,
        h: H,
        w: W,
        kh,
        kw,
        sh: at(win.strides, 0, 1),
        sw: at(win.strides, 1, 1),
        dh: at(win.dilations, 0, 1),
        dw: at(win.dilations, 1, 1),
        pt: at(win.head, 0, 0),
        pl: at(win.head, 1, 0),
        oh: at(win.outDims, 0, 1),
        ow: at(win.outDims, 1, 1),
      };
      padValue = attrFloat(node, "pad_value", 0);
      K = geo.c * kh * kw;
      P = geo.oh * geo.ow;
      chunk = Math.max(1, Math.min(N, Math.floor(CHUNK_FLOATS / Math.max(1, P * (K + 1)))));
      const cg = Cout / G;
      const xt = toNhwc();
      const rows = s.get("conv.rows", chunk * P * K * 4), yt = s.get("conv.yt", chunk * P * cg * 4);
      const yp = s.get("conv.y", N * Cout * P * 4);
      const bp = b ? s.get("conv.b", cg * 4) : 0;
      for (let gi = 0; gi < G; gi++) {
        const wp = ohwi(gi);
        if (b) mod.f32(bp, cg).set(b.subarray(gi * cg, (gi + 1) * cg));
        for (let n0 = 0; n0 < N; n0 += chunk) {
          const m = Math.min(chunk, N - n0);
          for (let i = 0; i < m; i++) {
            const xo = xt + 4 * ((n0 + i) * HW * C + gi * geo.c);
            im2rowNhwcResident(mod, geo, xo, C, rows + 4 * i * P * K, K, padValue);
          }
          gemm(s, m * P, cg, K, rows, K, wp, 1, K, yt, cg, bp);
          for (let i = 0; i < m; i++) {
            const dst = yp + 4 * (((n0 + i) * Cout + gi * cg) * P);
            transposeResident(mod, P, cg, yt + 4 * i * P * cg, cg, dst, P);
          }
        }
      }
      const y = ctx.buffer(0, N * Cout * P);
      y.set(mod.f32(yp, N * Cout * P));
      const oDims = two ? [N, Cout, geo.oh, geo.ow] : [N, Cout, geo.ow];
      return [{ type: "float32", dims: oDims, data: y } as Tensor];
    },

    backward([g]) {
      if (!g) return [];
      const [nx, nw, nb] = ctx.needGrad;
      const cg = Cout / G, K1 = K + 1;
      const dw = nw ? ctx.zeros(2, w.length) : undefined;
      const db = nb && b ? ctx.zeros(3, Cout) : undefined;
      // dYᵀ: [N·P, Cout], every group a column slice.
      const gp = s.put("conv.g", g), dyt = s.get("conv.dyt", N * P * Cout * 4);
      for (let n = 0; n < N; n++) {
        transposeResident(mod, Cout, P, gp + 4 * n * Cout * P, P, dyt + 4 * n * P * Cout, Cout);
      }
      if (dw || db) {
        const xp = s.put("conv.x", x);
        const col = s.get("conv.col", K1 * chunk * P * 4), dwt = s.get("conv.dwt", K1 * cg * 4);
        for (let gi = 0; gi < G; gi++) {
          for (let n0 = 0; n0 < N; n0 += chunk) {
            const m = Math.min(chunk, N - n0), ld = m * P;
            for (let i = 0; i < m; i++) {
              const xo = xp + 4 * (((n0 + i) * C + gi * geo.c) * HW);
              im2colResident(mod, geo, xo, col + 4 * i * P, ld, padValue);
            }
            mod.f32(col + 4 * K * ld, ld).fill(1);
            // dWᵀ [K+1, cg] = col [K+1, m·P] · dYᵀ[chunk rows, group columns].
            gemm(s, K1, cg, ld, col, ld, dyt + 4 * (n0 * P * Cout + gi * cg), Cout, 1, dwt, cg);
            const t = mod.f32(dwt, K1 * cg);
            for (let o = 0; o < cg; o++) {
              const oc = gi * cg + o;
              if (dw) { for (let r = 0; r < K; r++) dw[oc * K + r] += t[r * cg + o]; }
              if (db) db[oc] += t[K * cg + o];
            }
          }
        }
      }
      let dx: Float32Array | undefined;
      if (nx) {
        const drows = s.get("conv.drows", chunk * P * K * 4);
        const dxt = s.zeros("conv.dxt", x.length), dxp = s.get("conv.dx", x.length * 4);
        for (let gi = 0; gi < G; gi++) {
          const wp = ohwi(gi);
          for (let n0 = 0; n0 < N; n0 += chunk) {
            const m = Math.min(chunk, N - n0);
            // d rows [m·P, K] = dYᵀ[chunk rows, group columns] · W_ohwi [cg, K].
            gemm(s, m * P, K, cg, dyt + 4 * (n0 * P * Cout + gi * cg), Cout, wp, K, 1, drows, K);
            for (let i = 0; i < m; i++) {
              const xo = dxt + 4 * ((n0 + i) * HW * C + gi * geo.c);
              row2imNhwcResident(mod, geo, drows + 4 * i * P * K, K, xo, C);
            }
          }
        }
        for (let n = 0; n < N; n++) {
          transposeResident(mod, HW, C, dxt + 4 * n * C * HW, C, dxp + 4 * n * C * HW, HW);
        }
        dx = ctx.buffer(1, x.length);
        dx.set(mod.f32(dxp, x.length));
      }
      return [dx, dw, db];
    },
  };
};

export const CONV_GRADS: Record<string, TrainOpFactory> = { Conv: conv };
