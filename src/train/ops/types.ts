// The contract of a differentiable op in sqz's training engine (src/train/program.ts).
//
// One TrainOp per graph node. forward() receives the node's inputs (missing optional inputs are
// undefined; integer inputs such as shapes and axes arrive as they are) and returns its outputs;
// it keeps whatever its backward pass needs in its own closure, since each node runs forward
// once before each backward. backward() receives d(loss)/d(output) per output (undefined: no
// gradient reaches that output) and returns d(loss)/d(input) per input, for at least the inputs
// whose ctx.needGrad is set (others may be undefined). Gradient arrays are float32 with the
// input's element count; an op may return a buffer it owns, which stays valid until its next
// forward. Inputs and output gradients are read-only.
import type { Node } from "../../graph/ir.ts";
import type { Tensor } from "../../graph/tensor.ts";
import type { Scratch } from "../wasm.ts";
import { ModelError, ShapeError } from "../../errors.ts";

export interface TrainContext {
  readonly node: Node;
  /** Opset of the node's domain. */
  readonly opset: number;
  readonly scratch: Scratch;
  /** Training mode (batch statistics, EMA ranges) or evaluation. Set per forward. */
  training: boolean;
  /** Which inputs need a gradient; fixed when the program is built. */
  readonly needGrad: readonly boolean[];
  /**
   * Float buffer number `slot` of this op, of n elements, reused from step to step (contents
   * left from the last use). An op's outputs and gradients live until its next forward, which
   * is all the engine needs, and a steady training loop then allocates nothing.
   */
  buffer(slot: number, n: number): Float32Array;
  /** The same, zero-filled. */
  zeros(slot: number, n: number): Float32Array;
}

export interface TrainOp {
  forward(inputs: readonly (Tensor | undefined)[]): Tensor[];
  backward(dOutputs: readonly (Float32Array | undefined)[]): (Float32Array | undefined)[];
}

export type TrainOpFactory = (ctx: TrainContext) => TrainOp;

export function f32(t: Tensor | undefined, ctx: TrainContext, what = "input"): Float32Array {
  if (!t) throw new ModelError(`node '${ctx.node.name}' (${ctx.node.op}): ${what} is missing`);
  if (!(t.data instanceof Float32Array)) {
    throw new ShapeError(
      `node '${ctx.node.name}' (${ctx.node.op}): ${what} is ${t.type}, training needs float32`,
    );
  }
  return t.data;
}

export const size = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);
