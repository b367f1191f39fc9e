// The contract between the executor and an operator that runs on the WebGPU backend: the GPU
// counterpart of runtime/kernel_op.ts. A factory sees the node once, at session creation, and
// uploads its weights, or returns undefined (with nothing allocated) when it cannot run the
// node. At run time the op encodes its work into the executor's command encoder; inputs and
// outputs are GPU buffers. Tensors stay on the GPU between GPU nodes: the executor uploads a
// value produced on Wasm only when a GPU node reads it, and reads a GPU value back only when a
// Wasm node or the caller does.
import type { Node } from "../../graph/ir.ts";
import type { TensorType } from "../../graph/tensor.ts";
import type { GpuContext } from "./device.ts";

export interface GpuRunContext {
  readonly gpu: GpuContext;
  readonly encoder: GPUCommandEncoder;
  inputType(i: number): TensorType;
  inputDims(i: number): readonly number[];
  inputBuffer(i: number): GPUBuffer;
  outputBuffer(i: number, type: TensorType, dims: number[]): GPUBuffer;
  /** A uniform buffer for this dispatch, destroyed once the work is done. */
  uniform(data: ArrayBuffer): GPUBuffer;
}

export interface GpuOp {
  /** Constant inputs the factory uploaded and `encode` never reads from the graph. */
  readonly packedInputs?: readonly number[];
  /** Encodes the node; returns its multiply-accumulates, if it knows. */
  encode(ctx: GpuRunContext): number | void;
  /** Bytes of weights it holds on the GPU. */
  readonly weightBytes: number;
  dispose(): void;
}

export interface GpuEnv {
  readonly gpu: GpuContext;
  readonly opset: number;
}

export type GpuOpFactory = (node: Node, env: GpuEnv) => GpuOp | undefined;
