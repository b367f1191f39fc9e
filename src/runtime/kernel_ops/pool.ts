// 2-D pooling on NHWC activations (sqz.nhwc.MaxPool / AveragePool / GlobalAveragePool /
// GlobalMaxPool) on the Wasm pooling kernels, reading and writing the arena in place.
import type { Node } from "../../graph/ir.ts";
import type { TensorType } from "../../graph/tensor.ts";
import type { KernelOp, KernelOpFactory, KernelRunContext } from "../kernel_op.ts";
import {
  averagePool2d,
  type Dims4,
  globalAveragePool,
  globalMaxPool,
  maxPool2d,
  type PoolTensor,
} from "../../kernels/pool.ts";
import { attrInt, attrInts } from "../../ops/attrs.ts";
import { fusedActivation, windowAttrs } from "./attrs.ts";
import { windowGeometry } from "../../kernels/conv_geometry.ts";
import { ShapeError } from "../../errors.ts";

const POOL_TYPES: ReadonlySet<TensorType | undefined> = new Set([
  "float32",
  "uint8",
  "int8",
  undefined,
]);

/** Whether a pooling node can run on the NHWC kernels (2-D window, no Indices output). */
export function poolEligible(node: Node): boolean {
  if (!POOL_TYPES.has(node.inputs[0]?.type)) return false;
  if (node.op === "GlobalAveragePool" || node.op === "GlobalMaxPool") return true;
  if (node.op !== "MaxPool" && node.op !== "AveragePool") return false;
  if (node.outputs.length > 1 && node.outputs[1].consumers.length > 0) return false;
  if (node.outputs.length > 1) return false;
  const ks = attrInts(node, "kernel_shape");
  return ks?.length === 2 && windowAttrs(node) !== undefined;
}

function inputOf(k: KernelRunContext): { dims: Dims4; type: TensorType } {
  const dims = k.inputDims(0);
  if (dims.length !== 4) throw new ShapeError(`input must be 4-D, got [${dims}]`);
  const type = k.inputType(0);
  if (!POOL_TYPES.has(type)) {
    throw new ShapeError(`pooling takes float32, uint8 or int8, got ${type}`);
  }
  return { dims: [...dims] as Dims4, type };
}

export const nhwcPool: KernelOpFactory = (node: Node): KernelOp | undefined => {
  if (!poolEligible(node)) return undefined;
  const ks = attrInts(node, "kernel_shape") ?? [1, 1];
  const window = windowAttrs(node) ?? {};
  const ceilMode = attrInt(node, "ceil_mode", 0) === 1;
  const countIncludePad = attrInt(node, "count_include_pad", 0) === 1;
  const act = fusedActivation(node);
  const global = node.op === "GlobalAveragePool" || node.op === "GlobalMaxPool";
  return {
    run(k) {
      const { dims, type } = inputOf(k);
      const attrs = { kernel: [ks[0], ks[1]] as [number, number], ...window, ceilMode };
      let out: number[] = [dims[0], 1, 1, dims[3]];
      if (!global) {
        const g = windowGeometry(dims[1], dims[2], attrs);
        out = [dims[0], g.outH, g.outW, dims[3]];
      }
      const at = { x: k.inputPtr(0), y: k.outputPtr(0, type, out) };
      // Views after the offsets: reserving the output may have grown the memory.
      const x = k.input(0)!.data as PoolTensor;
      const activation = type === "float32" ? act : undefined;
      if (node.op === "GlobalAveragePool") globalAveragePool(k.mod, x, dims, {}, at);
      else if (node.op === "GlobalMaxPool") globalMaxPool(k.mod, x, dims, at);
      else if (node.op === "MaxPool") maxPool2d(k.mod, x, dims, { ...attrs, activation }, at);
      else averagePool2d(k.mod, x, dims, { ...attrs, countIncludePad, activation }, at);
    },
    dispose() {},
  };
};
