// ai.sqz.BinaryConv / BinaryGemm on the Wasm XNOR-popcount kernels (PackedConvBin,
// PackedGemmBin). The weights' sign bits are packed once at load; each run sign-packs the float
// input (the kernels' sqz_bin_pack_rows) and writes f32 through the kernels' output stage,
// y = f32(f32(dot)·α) + bias then the fused clamp — exactly the reference ops of
// src/ops/sqz_lowbit.ts, which stay the fallback (e.g. a zero α, which the kernels refuse).
//
// BinaryConv runs NHWC as sqz.nhwc.BinaryConv once the layout pass has moved it there
// (binaryConvEligible); left in NCHW (optimize: false, or a layout pass that keeps ai.sqz nodes
// in place) it sign-packs straight from NCHW and transposes the output back.
import type { Node } from "../../graph/ir.ts";
import type { KernelEnv, KernelOp, KernelOpFactory, KernelRunContext } from "../kernel_op.ts";
import { binPixelBytes, type ConvAttrs, type Dims4, PackedConvBin } from "../../kernels/conv.ts";
import {
  type BinOutput,
  type BinOutputParams,
  binRowBytes,
  PackedGemmBin,
} from "../../kernels/gemm_bin.ts";
import type { KernelModule } from "../../kernels/module.ts";
import { type BinaryWeights, readBinaryWeights } from "../../ops/sqz_lowbit.ts";
import { SQZ_DOMAIN } from "../../graph/qdq.ts";
import { NHWC_DOMAIN } from "../layout.ts";
import { fusedActivation, windowAttrs } from "./attrs.ts";
import { activationRange } from "../../kernels/validate.ts";
import { ShapeError } from "../../errors.ts";

/** The constant inputs of a binary node, or undefined when the kernels cannot take it. */
function weightsFor(node: Node): BinaryWeights | undefined {
  const ins = node.inputs;
  if (!ins[1]?.constant || !ins[2]?.constant || (ins[3] && !ins[3].constant)) return undefined;
  if (ins[0]?.type && ins[0].type !== "float32") return undefined;
  // Malformed weights throw here, at load, with the reference op's message.
  const b = readBinaryWeights(node, ins.map((v) => v?.constant));
  // The kernels' output stage wants α > 0 (the reference op takes any α).
  return b.alpha.every((a) => a > 0 && Number.isFinite(a)) ? b : undefined;
}

/** Whether the NHWC kernels can run this ai.sqz.BinaryConv: asked by the layout pass. */
export function binaryConvEligible(n: Node): boolean {
  if (n.op !== "BinaryConv" || n.domain !== SQZ_DOMAIN || !windowAttrs(n)) return false;
  try {
    return weightsFor(n) !== undefined;
  } catch {
    return false; // malformed: the reference op reports it
  }
}

/** The f32 output stage: α, bias and the fused clamp. */
function outputSpec(node: Node, b: BinaryWeights): BinOutput {
  const clamp = activationRange(fusedActivation(node));
  return { kind: "f32", alpha: b.alpha, bias: b.bias, clamp };
}

interface ConvSetup {
  conv: PackedConvBin;
  out: BinOutputParams;
  attrs: ConvAttrs;
  cin: number;
  cg: number;
  macsPerPixel: number;
}

function convSetup(node: Node, env: KernelEnv): ConvSetup | undefined {
  const attrs = windowAttrs(node);
  if (!attrs) return undefined;
  const b = weightsFor(node);
  if (!b) return undefined;
  const [cout, cg, kh, kw] = b.weightShape;
  const cin = cg * b.group;
  const conv = PackedConvBin.create(env.mod, {
    cout,
    cin,
    kh,
    kw,
    groups: b.group,
    weights: Float32Array.from(b.signs),
  });
  let out: BinOutputParams;
  try {
    out = conv.output(outputSpec(node, b));
  } catch (e) {
    conv.dispose();
    throw e;
  }
  return { conv, out, attrs, cin, cg, macsPerPixel: cout * cg * kh * kw };
}

/** Allocates `bytes` of scratch for `fn`, freed afterwards. */
function withScratch<T>(mod: KernelModule, bytes: number, fn: (p: number) => T): T {
  const p = mod.heap.alloc(bytes);
  try {
    return fn(p);
  } finally {
    mod.heap.free(p);
  }
}

/** sqz.nhwc.BinaryConv: NHWC in and out. */
export const nhwcBinaryConv: KernelOpFactory = (node, env): KernelOp | undefined => {
  const s = convSetup(node, env);
  if (!s) return undefined;
  const { conv, out, attrs, cin, cg } = s;
  const groups = cin / cg;
  return {
    packedInputs: [1, 2, 3],
    run(k: KernelRunContext) {
      const dims = k.inputDims(0);
      if (dims.length !== 4) throw new ShapeError(`input must be 4-D NHWC, got [${dims}]`);
      const d = dims as Dims4;
      const o = conv.geometry(d, attrs).dims;
      const x = k.inputPtr(0);
      const y = k.outputPtr(0, "float32", o);
      const pixels = d[0] * d[1] * d[2];
      withScratch(k.mod, pixels * binPixelBytes(cin, groups), (bits) => {
        // Each (pixel, group) is one row of C/groups floats.
        k.mod.exports.sqz_bin_pack_rows(pixels * groups, cg, x, cg, bits);
        conv.runResident(bits, d, y, out, attrs);
      });
      return o[0] * o[1] * o[2] * s.macsPerPixel;
    },
    dispose() {
      out.dispose();
      conv.dispose();
    },
  };
};

/** ai.sqz.BinaryConv left in NCHW: packs signs from NCHW, transposes the output back. */
export const binaryConvNchw: KernelOpFactory = (node, env): KernelOp | undefined => {
  const s = convSetup(node, env);
  if (!s) return undefined;
  const { conv, out, attrs, cin, cg } = s;
  const groups = cin / cg;
  const words = Math.ceil(cg / 128) * 16, pixBytes = binPixelBytes(cin, groups);
  return {
    packedInputs: [1, 2, 3],
    run(k: KernelRunContext) {
      const dims = k.inputDims(0);
      if (dims.length !== 4) throw new ShapeError(`input must be 4-D NCHW, got [${dims}]`);
      const [n, c, h, w] = dims;
      const nhwc: Dims4 = [n, h, w, c];
      const [, oh, ow, cout] = conv.geometry(nhwc, attrs).dims;
      const x = k.inputPtr(0);
      const y = k.outputPtr(0, "float32", [n, cout, oh, ow]);
      const hw = h * w, ohw = oh * ow, bitBytes = n * hw * pixBytes;
      withScratch(k.mod, bitBytes, (bits) =>
        withScratch(k.mod, n * ohw * cout * 4, (tmp) => {
          // Views only after every allocation: growing memory detaches them.
          const xv = k.mod.f32(x, n * c * hw), bv = k.mod.u8(bits, bitBytes);
          bv.fill(0);
          for (let b = 0; b < n; b++) {
            for (let ch = 0; ch < c; ch++) {
              const grp = Math.floor(ch / cg), ci = ch % cg;
              const off = b * hw * pixBytes + grp * words + (ci >> 3), bit = 1 << (ci & 7);
              const src = (b * c + ch) * hw;
              for (let p = 0; p < hw; p++) if (xv[src + p] < 0) bv[off + p * pixBytes] |= bit;
            }
          }
          conv.runResident(bits, nhwc, tmp, out, attrs);
          const t = k.mod.f32(tmp, n * ohw * cout), yv = k.mod.f32(y, n * ohw * cout);
          for (let b = 0; b < n; b++) {
            for (let p = 0; p < ohw; p++) {
              const src = (b * ohw + p) * cout;
              for (let o = 0; o < cout; o++) yv[(b * cout + o) * ohw + p] = t[src + o];
            }
          }
        }));
      return n * ohw * s.macsPerPixel;
    },
    dispose() {
      out.dispose();
      conv.dispose();
    },
  };
};

/** ai.sqz.BinaryGemm: x [..., K] → y [..., N]. */
export const binaryGemm: KernelOpFactory = (node, env): KernelOp | undefined => {
  const b = weightsFor(node);
  if (!b) return undefined;
  const { n, k } = b;
  const gemm = PackedGemmBin.create(env.mod, {
    k,
    n,
    b: Float32Array.from(b.signs),
    transposed: true,
  });
  let out: BinOutputParams;
  try {
    out = gemm.output(outputSpec(node, b));
  } catch (e) {
    gemm.dispose();
    throw e;
  }
  return {
    packedInputs: [1, 2, 3],
    run(ctx: KernelRunContext) {
      const dims = ctx.inputDims(0);
      if (dims.length < 1 || dims[dims.length - 1] !== k) {
        throw new ShapeError(`x is [${dims}], the weights expect K = ${k}`);
      }
      const lead = dims.slice(0, -1), m = lead.reduce((p, d) => p * d, 1);
      const x = ctx.inputPtr(0);
      const y = ctx.outputPtr(0, "float32", [...lead, n]);
      if (m > 0) {
        withScratch(ctx.mod, m * binRowBytes(k), (bits) => {
          ctx.mod.exports.sqz_bin_pack_rows(m, k, x, k, bits);
          gemm.runResident(m, bits, y, out);
        });
      }
      return m * n * k;
    },
    dispose() {
      out.dispose();
      gemm.dispose();
    },
  };
};

/** The binary kernel ops by qualified op name, for KERNEL_OPS. */
export const BINARY_KERNEL_OPS: Readonly<Record<string, KernelOpFactory>> = {
  [`${SQZ_DOMAIN}.BinaryConv`]: binaryConvNchw,
  [`${NHWC_DOMAIN}.BinaryConv`]: nhwcBinaryConv,
  [`${SQZ_DOMAIN}.BinaryGemm`]: binaryGemm,
};
