// The nodes the WebGPU backend runs (gpu_op.ts is the contract), by qualified op name:
//   Gemm, MatMul with a constant B      gemm_f32_64x64_wgsl (alpha folded, bias, fused clamp)
//   Add, Sub, Mul, Div (broadcasting), Relu, Sigmoid, Tanh     elementwise_f32_wgsl
//   Softmax over the last axis                                 softmax_f32_wgsl
//   Flatten, Reshape, Identity          a buffer copy (the shape is the executor's business)
// Everything else stays on Wasm; gpuSupport() says why for the placement report.
import type { Node } from "../../graph/ir.ts";
import { ELEMENT_BYTES, elementCount } from "../../graph/tensor.ts";
import { ShapeError } from "../../errors.ts";
import { attrFloat, attrInt } from "../../ops/attrs.ts";
import { broadcastDims, broadcastStrides } from "../../ops/tensor_util.ts";
import { gemmBias, matmulBias } from "../kernel_ops/gemm.ts";
import { constantBuffer } from "./buffers.ts";
import type { GpuEnv, GpuOp, GpuOpFactory, GpuRunContext } from "./gpu_op.ts";
import { GEMM_F32_TILE, GEMM_F32_WGSL } from "./gemm_f32_wgsl.ts";
import { ELEMENTWISE_WGSL, EW_MAX_RANK, EW_OPS, SOFTMAX_WGSL } from "./elementwise_wgsl.ts";
import { encodeDispatch, grid, pipeline } from "./pipelines.ts";

const F32_MAX = 3.4028234663852886e38;

/** The fused clamp as finite bounds, or undefined (WGSL may assume finite floats). */
function clampOf(node: Node): [number, number] | undefined {
  const lo = node.attrs.activation_min, hi = node.attrs.activation_max;
  if (typeof lo !== "number" && typeof hi !== "number") return undefined;
  return [
    typeof lo === "number" ? Math.max(lo, -F32_MAX) : -F32_MAX,
    typeof hi === "number" ? Math.min(hi, F32_MAX) : F32_MAX,
  ];
}

const isF32 = (node: Node, i: number) =>
  !node.inputs[i]?.type || node.inputs[i]!.type === "float32";

function checkF32(ctx: GpuRunContext, count: number, what: string): void {
  for (let i = 0; i < count; i++) {
    if (ctx.inputType(i) !== "float32") {
      throw new ShapeError(`${what} on WebGPU needs float32 inputs, got ${ctx.inputType(i)}`);
    }
  }
}

const gemm: GpuOpFactory = (node: Node, env: GpuEnv) => {
  const isGemm = node.op === "Gemm";
  const b = node.inputs[1]?.constant;
  if (!b || b.type !== "float32" || b.dims.length !== 2 || !isF32(node, 0)) return undefined;
  if (isGemm && attrInt(node, "transA", 0) !== 0) return undefined;
  const transB = isGemm && attrInt(node, "transB", 0) === 1;
  const [k, n] = transB ? [b.dims[1], b.dims[0]] : [b.dims[0], b.dims[1]];
  if (k === 0 || n === 0) return undefined;
  const alpha = isGemm ? attrFloat(node, "alpha", 1) : 1;
  const bias = isGemm ? gemmBias(node, n, attrFloat(node, "beta", 1)) : matmulBias(node, n);
  if (bias === null) return undefined;
  const src = b.data as Float32Array;
  // K×N row-major, alpha folded in as the wasm op does.
  const w = new Float32Array(k * n);
  for (let kk = 0; kk < k; kk++) {
    for (let j = 0; j < n; j++) {
      const v = transB ? src[j * k + kk] : src[kk * n + j];
      w[kk * n + j] = alpha === 1 ? v : Math.fround(alpha * v);
    }
  }
  const gpu = env.gpu;
  const wb = constantBuffer(gpu, w);
  const bb = constantBuffer(gpu, bias ?? new Float32Array(1));
  const clamp = clampOf(node);
  return {
    packedInputs: [1, 2],
    weightBytes: wb.size + bb.size,
    encode(ctx) {
      checkF32(ctx, 1, node.op);
      const dims = ctx.inputDims(0);
      if (isGemm ? dims.length !== 2 : dims.length < 2) {
        throw new ShapeError(`A must be ${isGemm ? "2-D" : "at least 2-D"}, got [${dims}]`);
      }
      if (dims[dims.length - 1] !== k) {
        throw new ShapeError(`A is [${dims}] but B expects K = ${k}`);
      }
      const m = dims.slice(0, -1).reduce((x, y) => x * y, 1);
      const a = ctx.inputBuffer(0);
      const c = ctx.outputBuffer(0, "float32", [...dims.slice(0, -1), n]);
      if (m === 0) return 0;
      const u = new ArrayBuffer(32), dv = new DataView(u);
      dv.setUint32(0, m, true);
      dv.setUint32(4, n, true);
      dv.setUint32(8, k, true);
      dv.setUint32(12, (bias ? 1 : 0) | (clamp ? 2 : 0), true);
      dv.setFloat32(16, clamp?.[0] ?? 0, true);
      dv.setFloat32(20, clamp?.[1] ?? 0, true);
      const t = GEMM_F32_TILE;
      encodeDispatch(
        ctx.gpu,
        ctx.encoder,
        pipeline(ctx.gpu, "gemm_f32_64x64_wgsl", GEMM_F32_WGSL),
        [a, wb, bb, c, ctx.uniform(u)],
        [Math.ceil(n / t), Math.ceil(m / t)],
      );
      return m * n * k;
    },
    dispose() {
      wb.destroy();
      bb.destroy();
    },
  };
};

function encodeElementwise(
  ctx: GpuRunContext,
  op: number,
  clamp: [number, number] | undefined,
  binary: boolean,
): number {
  const da = [...ctx.inputDims(0)];
  const db = binary ? [...ctx.inputDims(1)] : da;
  const out = binary ? broadcastDims(da, db, "elementwise") : da;
  if (out.length > EW_MAX_RANK) throw new ShapeError(`rank ${out.length} > ${EW_MAX_RANK}`);
  const a = ctx.inputBuffer(0);
  const b = binary ? ctx.inputBuffer(1) : a;
  const c = ctx.outputBuffer(0, "float32", out);
  const n = elementCount(out);
  if (n === 0) return 0;
  const u = new ArrayBuffer(32 + 3 * 32), dv = new DataView(u);
  dv.setUint32(0, n, true);
  dv.setUint32(4, out.length, true);
  dv.setUint32(8, op, true);
  dv.setUint32(12, clamp ? 1 : 0, true);
  dv.setFloat32(16, clamp?.[0] ?? 0, true);
  dv.setFloat32(20, clamp?.[1] ?? 0, true);
  const sa = broadcastStrides(da, out), sb = broadcastStrides(db, out);
  out.forEach((d, i) => {
    dv.setUint32(32 + 4 * i, d, true);
    dv.setUint32(64 + 4 * i, sa[i], true);
    dv.setUint32(96 + 4 * i, sb[i], true);
  });
  encodeDispatch(
    ctx.gpu,
    ctx.encoder,
    pipeline(ctx.gpu, "elementwise_f32_wgsl", ELEMENTWISE_WGSL),
    [a, b, c, ctx.uniform(u)],
    grid(Math.ceil(n / 256)),
  );
  return 0;
}

function elementwise(op: keyof typeof EW_OPS, binary: boolean): GpuOpFactory {
  return (node: Node) => {
    if (!isF32(node, 0) || (binary && !isF32(node, 1))) return undefined;
    const clamp = clampOf(node);
    return {
      weightBytes: 0,
      encode(ctx) {
        checkF32(ctx, binary ? 2 : 1, node.op);
        return encodeElementwise(ctx, EW_OPS[op], clamp, binary);
      },
      dispose() {},
    };
  };
}

const softmax: GpuOpFactory = (node: Node, env: GpuEnv) => {
  if (!isF32(node, 0) || env.opset < 13 && node.inputs[0]?.shape?.length !== 2) return undefined;
  const axis = attrInt(node, "axis", env.opset >= 13 ? -1 : 1);
  return {
    weightBytes: 0,
    encode(ctx) {
      checkF32(ctx, 1, "Softmax");
      const dims = ctx.inputDims(0);
      const r = dims.length;
      if (axis !== -1 && axis !== r - 1) {
        throw new ShapeError(`Softmax on WebGPU runs over the last axis, not ${axis}`);
      }
      const cols = dims[r - 1] ?? 1, rows = elementCount([...dims]) / Math.max(cols, 1);
      const a = ctx.inputBuffer(0);
      const c = ctx.outputBuffer(0, "float32", [...dims]);
      if (!rows || !cols) return 0;
      const u = new Uint32Array([rows, cols, 0, 0]);
      encodeDispatch(
        ctx.gpu,
        ctx.encoder,
        pipeline(ctx.gpu, "softmax_f32_wgsl", SOFTMAX_WGSL),
        [a, c, ctx.uniform(u.buffer)],
        grid(rows),
      );
      return 0;
    },
    dispose() {},
  };
};

/** Flatten, Reshape, Identity: the data is unchanged; the output gets its own buffer. */
function copyOp(shape: (node: Node, dims: readonly number[], ctx: GpuRunContext) => number[]) {
  return (node: Node): GpuOp | undefined => {
    if (node.op === "Reshape" && !node.inputs[1]?.constant) return undefined;
    return {
      weightBytes: 0,
      encode(ctx) {
        const dims = ctx.inputDims(0);
        const out = shape(node, dims, ctx);
        if (elementCount(out) !== elementCount([...dims])) {
          throw new ShapeError(`cannot reshape [${dims}] to [${out}]`);
        }
        const a = ctx.inputBuffer(0);
        const type = ctx.inputType(0);
        const c = ctx.outputBuffer(0, type, out);
        const bytes = Math.ceil((elementCount(out) * ELEMENT_BYTES[type]) / 4) * 4;
        ctx.encoder.copyBufferToBuffer(a, 0, c, 0, bytes);
        return 0;
      },
      dispose() {},
    };
  };
}

function flattenDims(node: Node, dims: readonly number[]): number[] {
  const r = dims.length;
  let axis = attrInt(node, "axis", 1);
  if (axis < 0) axis += r;
  const outer = dims.slice(0, axis).reduce((x, y) => x * y, 1);
  return [outer, dims.slice(axis).reduce((x, y) => x * y, 1)];
}

function reshapeDims(node: Node, dims: readonly number[]): number[] {
  const target = Array.from(node.inputs[1]!.constant!.data as BigInt64Array, Number);
  const allowZero = attrInt(node, "allowzero", 0) === 1;
  const out = target.map((d, i) => (d === 0 && !allowZero ? dims[i] : d));
  const known = out.reduce((x, d) => (d === -1 ? x : x * d), 1);
  const total = dims.reduce((x, y) => x * y, 1);
  return out.map((d) => (d === -1 ? total / known : d));
}

export const GPU_OPS: Record<string, GpuOpFactory> = {
  Gemm: gemm,
  MatMul: gemm,
  Add: elementwise("Add", true),
  Sub: elementwise("Sub", true),
  Mul: elementwise("Mul", true),
  Div: elementwise("Div", true),
  Relu: elementwise("Relu", false),
  Sigmoid: elementwise("Sigmoid", false),
  Tanh: elementwise("Tanh", false),
  Softmax: softmax,
  Flatten: copyOp(flattenDims),
  Reshape: copyOp(reshapeDims),
  Identity: copyOp((_n, d) => [...d]),
};

/** Why a node has no GPU kernel, or undefined when GPU_OPS covers its op. */
export function gpuOpMissing(node: Node): string | undefined {
  return GPU_OPS[node.qualifiedOp] ? undefined : `no WebGPU kernel for ${node.qualifiedOp}`;
}
