// The contract between the executor and an operator implemented in TypeScript.
//
// An op receives its inputs as tensors ({ type, dims, data }; missing optional inputs are
// undefined) and returns its outputs, in order. `ctx.alloc(i, type, dims)` hands out storage
// for output i: inside a planned run that is the output's slot in the Wasm arena, so an op that
// fills what alloc gave it costs no copy. An op may also return a tensor it made itself (a view,
// an input passed through): the executor copies it where it has to live. Inputs are read-only.
//
// Ops check what the ONNX spec requires of their inputs and throw ShapeError / ArgumentError /
// ModelError (src/errors.ts) naming the node, never a RangeError from deep inside a loop.
import type { Node } from "../graph/ir.ts";
import type { Tensor, TensorType } from "../graph/tensor.ts";
import { allocTensor } from "./tensor_util.ts";

export interface OpContext {
  readonly node: Node;
  /** Opset of the node's domain: semantics differ across versions (Softmax, Reduce*, Split…). */
  readonly opset: number;
  alloc(i: number, type: TensorType, dims: number[]): Tensor;
}

export type OpImpl = (inputs: readonly (Tensor | undefined)[], ctx: OpContext) => Tensor[];

/** A context whose alloc makes plain JS tensors: constant folding and tests use it. */
export function jsContext(node: Node, opset: number): OpContext {
  return { node, opset, alloc: (_i, type, dims) => allocTensor(type, dims) };
}
