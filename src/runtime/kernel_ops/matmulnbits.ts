// com.microsoft.MatMulNBits on the Wasm kernels. With 4-bit codes, blocks of a multiple of 32
// along K, uint8 (or no) zero points and scales that f16 holds, the weight stays packed at
// 4 bits (kernels/pack/pack_q4.ts, 14.8% of f32) and runs on the Q4 × Q8 kernel: A is
// quantized per row to int8 blocks of 32 on each run, what onnxruntime does at accuracy_level
// 4. Otherwise, or with the session's `int4: "float"`, the weight is dequantized once to
// Wᵀ [N, K] (ops/contrib_matmulnbits.ts) and packed for the f32 GEMM, as Gemm(transB = 1)'s
// B. A's leading dims fold into M. Falls back to the TypeScript op when B, scales, zero points
// or bias are not constants, A is not float32, or g_idx is given.
import type { Node } from "../../graph/ir.ts";
import type { KernelEnv, KernelOp, KernelOpFactory } from "../kernel_op.ts";
import { PackedGemmF32 } from "../../kernels/gemm_f32.ts";
import { type GemmQ4Weights, PackedGemmQ4, Q4_BLOCK } from "../../kernels/gemm_q4.ts";
import {
  dequantizeNBits,
  nbitsBias,
  type NBitsInputs,
  nbitsInputs,
} from "../../ops/contrib_matmulnbits.ts";
import { fusedActivation } from "./attrs.ts";
import { ShapeError } from "../../errors.ts";

/** f16's normal range: smaller scales would lose bits as subnormals, larger ones overflow. */
const F16_MIN_NORMAL = 2 ** -14, F16_MAX = 65504;

/**
 * The weight in the Q4 kernel's input layout, or undefined when it does not fit it (bits ≠ 4,
 * block_size 16, float zero points, scales outside f16).
 */
function q4Weights(w: NBitsInputs, bias: Float32Array | undefined): GemmQ4Weights | undefined {
  const { k, n, bits, blockSize: bs, blocks: nb, blob, q, scales: s, zpPacked: zps } = w;
  if (bits !== 4 || bs % Q4_BLOCK !== 0 || w.zpFloat) return undefined;
  for (const d of s) {
    const m = Math.abs(d);
    if (!(m === 0 || (m >= F16_MIN_NORMAL && m <= F16_MAX))) return undefined;
  }
  // Codes: value k of row n is nibble k of the row's bytes (blocks are contiguous, low first).
  const codes = new Uint8Array(n * k);
  for (let r = 0; r < n; r++) {
    const src = r * nb * blob, dst = r * k;
    for (let i = 0; i < k; i++) codes[dst + i] = (q[src + (i >> 1)] >> ((i & 1) << 2)) & 15;
  }
  // A block of bs values is bs / 32 kernel blocks with its scale and zero point.
  const per = bs / Q4_BLOCK, nb32 = Math.ceil(k / Q4_BLOCK);
  const s32 = new Float32Array(n * nb32);
  const zp32 = zps ? new Uint8Array(n * nb32) : undefined;
  const zpStride = Math.ceil(nb / 2);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < nb32; j++) {
      const blk = Math.floor(j / per);
      s32[r * nb32 + j] = s[r * nb + blk];
      if (zp32) zp32[r * nb32 + j] = (zps![r * zpStride + (blk >> 1)] >> ((blk & 1) << 2)) & 15;
    }
  }
  return { k, n, codes, scales: s32, zeroPoints: zp32, bias };
}

export const matmulNBitsF32: KernelOpFactory = (
  node: Node,
  env: KernelEnv,
): KernelOp | undefined => {
  const [a, b, scales, zp, gIdx, biasV] = node.inputs;
  if (!b?.constant || !scales?.constant || gIdx) return undefined;
  if ((zp && !zp.constant) || (biasV && !biasV.constant)) return undefined;
  if (a?.type && a.type !== "float32") return undefined;
  // Malformed attributes or tensors throw their ModelError here, naming the node.
  const inputs = nbitsInputs(node, b.constant, scales.constant, zp?.constant);
  const { k, n } = inputs;
  const bias = nbitsBias(node, biasV?.constant, n);
  const q4 = env.int4 === "float" ? undefined : q4Weights(inputs, bias);
  const gemm = q4 ? PackedGemmQ4.create(env.mod, q4) : PackedGemmF32.create(env.mod, {
    k,
    n,
    b: dequantizeNBits(node, b.constant, scales.constant, zp?.constant),
    transposed: true,
    bias,
  });
  const act = fusedActivation(node);
  return {
    packedInputs: [1, 2, 3, 5],
    run(ctx) {
      if (ctx.inputType(0) !== "float32") {
        throw new ShapeError(`MatMulNBits needs a float32 A, got ${ctx.inputType(0)}`);
      }
      const dims = ctx.inputDims(0);
      if (dims.length < 1 || dims[dims.length - 1] !== k) {
        throw new ShapeError(`A is [${dims}] but MatMulNBits has K = ${k}`);
      }
      const m = dims.slice(0, -1).reduce((x, y) => x * y, 1);
      const out = [...dims.slice(0, -1), n];
      const pa = ctx.inputPtr(0);
      const pc = ctx.outputPtr(0, "float32", out);
      if (m > 0) gemm.runResident(m, pa, pc, act);
      return m * n * k;
    },
    dispose: () => gemm.dispose(),
  };
};
