// ai.sqz.Attention (made by graph/fuse_transformer.ts): softmax(scale·Q·Kᵀ + mask)·V for every
// (batch, head), on the packed f32 GEMM and the row-wise softmax kernel, without materializing
// the head transposes.
//
// Inputs: Q, K, V and an optional additive mask. The logical operands are
//   Q = Transpose(input 0, perm_q)  [B, H, S, d]
//   Kᵀ = Transpose(input 1, perm_k) [B, H, d, T]
//   V = Transpose(input 2, perm_v)  [B, H, T, d]
//   mask broadcast to [B, H, S, T]
// and the output is Transpose(softmax(scale·Q·Kᵀ + mask)·V, perm_out) with perm_out identity
// or (0, 2, 1, 3) ([B, S, H, d]: the layout the head merge reshapes). Each operand is read
// through strides (dim i of the logical operand walks dim perm[i] of the input; a size-1 dim
// broadcasts with stride 0): Q's rows need a unit stride along d (else its block is copied),
// Kᵀ and V go through the GEMM packer, which takes any strides.
//
// Per (b, h): scores [S, T] = Q·Kᵀ (GEMM), softmax rows with scale and the mask rows, then
// out = P·V (GEMM) written with row stride ldc straight into the output layout.
import type { Node } from "../../graph/ir.ts";
import type { KernelEnv, KernelOp, KernelOpFactory, KernelRunContext } from "../kernel_op.ts";
import { attrFloat, attrInts } from "../../ops/attrs.ts";
import { ScratchBlock } from "../../kernels/scratch.ts";
import { ModelError, ShapeError } from "../../errors.ts";

function checkPerm(node: Node, name: string): number[] {
  const p = attrInts(node, name) ?? [0, 1, 2, 3];
  if (p.length !== 4 || [...p].sort().join() !== "0,1,2,3") {
    throw new ModelError(`node '${node.name}': ${name} must be a permutation of 4 axes`);
  }
  return p;
}

/** Logical dims and element strides of Transpose(input, perm); size-1 dims get stride 0. */
function view(dims: readonly number[], perm: number[], what: string) {
  if (dims.length !== 4) throw new ShapeError(`${what} must be 4-D, got [${dims}]`);
  const strides = [0, 0, 0, 0];
  for (let i = 3, s = 1; i >= 0; i--) {
    strides[i] = s;
    s *= dims[i];
  }
  return {
    dims: perm.map((p) => dims[p]),
    strides: perm.map((p) => (dims[p] === 1 ? 0 : strides[p])),
  };
}

/** Broadcast of a batch or head dim; ShapeError when incompatible. */
function bdim(sizes: number[], what: string): number {
  const n = Math.max(...sizes);
  if (sizes.some((s) => s !== 1 && s !== n)) {
    throw new ShapeError(`${what} dims [${sizes}] do not broadcast`);
  }
  return n;
}

export const attentionF32: KernelOpFactory = (node: Node, env: KernelEnv) => {
  const permQ = checkPerm(node, "perm_q"), permK = checkPerm(node, "perm_k");
  const permV = checkPerm(node, "perm_v"), permOut = checkPerm(node, "perm_out");
  if (permOut.join() !== "0,1,2,3" && permOut.join() !== "0,2,1,3") {
    throw new ModelError(`node '${node.name}': perm_out must be (0,1,2,3) or (0,2,1,3)`);
  }
  const scale = attrFloat(node, "scale", 1);
  const scores = new ScratchBlock(env.mod), packed = new ScratchBlock(env.mod);
  const qCopy = new ScratchBlock(env.mod), maskRow = new ScratchBlock(env.mod);
  const hasMask = !!node.inputs[3];
  const op: KernelOp = {
    run(ctx: KernelRunContext) {
      for (let i = 0; i < (hasMask ? 4 : 3); i++) {
        if (ctx.inputType(i) !== "float32") {
          throw new ShapeError(`input ${i} must be float32, got ${ctx.inputType(i)}`);
        }
      }
      const q = view(ctx.inputDims(0), permQ, "Q");
      const kt = view(ctx.inputDims(1), permK, "K");
      const v = view(ctx.inputDims(2), permV, "V");
      const [, , S, d] = q.dims;
      const T = kt.dims[3];
      if (kt.dims[2] !== d || v.dims[2] !== T) {
        throw new ShapeError(
          `Q [${q.dims}], Kᵀ [${kt.dims}] and V [${v.dims}] do not chain (S·d × d·T × T·dv)`,
        );
      }
      const dv = v.dims[3];
      const B = bdim([q.dims[0], kt.dims[0], v.dims[0]], "batch");
      const H = bdim([q.dims[1], kt.dims[1], v.dims[1]], "head");
      // The mask, right-aligned to [B, H, S, T].
      let mStr = [0, 0, 0, 0];
      let mask = 0;
      if (hasMask) {
        const md = ctx.inputDims(3);
        if (md.length > 4) throw new ShapeError(`the mask [${md}] has more than 4 dims`);
        const full = [...new Array(4 - md.length).fill(1), ...md];
        const want = [B, H, S, T];
        if (full.some((x, i) => x !== 1 && x !== want[i])) {
          throw new ShapeError(`the mask [${md}] does not broadcast to [${want}]`);
        }
        mStr = view(full, [0, 1, 2, 3], "mask").strides;
        mask = ctx.inputPtr(3);
      }
      const pq = ctx.inputPtr(0), pk = ctx.inputPtr(1), pvv = ctx.inputPtr(2);
      const outDims = permOut[1] === 2 ? [B, S, H, dv] : [B, H, S, dv];
      const out = ctx.outputPtr(0, "float32", outDims);
      if (B * H * S * dv === 0) return 0;
      const e = ctx.mod.exports;
      // +16: the GEMM reads (and ignores) up to 16 bytes past its A operand.
      const sc = scores.get(S * T * 4 + 16);
      const pk1 = packed.get(Math.max(
        e.sqz_f32_gemm_packed_size(T, d) >>> 0,
        e.sqz_f32_gemm_packed_size(dv, T) >>> 0,
      ));
      // Q's rows must be unit-stride along d for the GEMM; otherwise copy the block.
      const qUnit = q.strides[3] === 1 || d === 1;
      const qc = qUnit ? 0 : qCopy.get(S * d * 4 + 16);
      const row = hasMask && mStr[3] === 0 ? maskRow.get(T * 4) : 0;
      const ldc = permOut[1] === 2 ? H * dv : dv;
      for (let b = 0; b < B; b++) {
        for (let h = 0; h < H; h++) {
          const at = (o: { strides: number[] }, base: number) =>
            base + 4 * (b * o.strides[0] + h * o.strides[1]);
          let qa = at(q, pq), lda = q.strides[2];
          if (!qUnit) {
            const buf = new Float32Array(ctx.mod.memory.buffer);
            for (let s = 0; s < S; s++) {
              for (let j = 0; j < d; j++) {
                buf[(qc >> 2) + s * d + j] = buf[(qa >> 2) + s * q.strides[2] + j * q.strides[3]];
              }
            }
            qa = qc;
            lda = d;
          }
          // scores = Q·Kᵀ; Kᵀ element (j, t) at kt + 4·(j·s2 + t·s3).
          e.sqz_f32_gemm_pack(T, d, at(kt, pk), kt.strides[2], kt.strides[3], 0, pk1);
          e.sqz_f32_gemm(S, T, d, qa, Math.max(lda, d), pk1, sc, T, -Infinity, Infinity);
          const mb = mask ? mask + 4 * (b * mStr[0] + h * mStr[1]) : 0;
          if (!mask || mStr[3] !== 0) {
            e.sqz_f32_softmax(S, T, sc, scale, mb, mStr[2], sc);
          } else {
            // A mask broadcast along the keys: one row of T copies per query row.
            const rv = ctx.mod.f32(row, T);
            for (let s = 0; s < S; s++) {
              rv.fill(ctx.mod.f32(mb + 4 * s * mStr[2], 1)[0]);
              e.sqz_f32_softmax(1, T, sc + 4 * s * T, scale, row, 0, sc + 4 * s * T);
            }
          }
          // out = P·V; V element (t, j) at v + 4·(t·s2 + j·s3).
          e.sqz_f32_gemm_pack(dv, T, at(v, pvv), v.strides[2], v.strides[3], 0, pk1);
          const c = out + 4 * (permOut[1] === 2 ? (b * S * H + h) * dv : (b * H + h) * S * dv);
          e.sqz_f32_gemm(S, dv, T, sc, T, pk1, c, ldc, -Infinity, Infinity);
        }
      }
      return B * H * S * T * (d + dv);
    },
    dispose() {
      scores.dispose();
      packed.dispose();
      qCopy.dispose();
      maskRow.dispose();
    },
  };
  return op;
};
