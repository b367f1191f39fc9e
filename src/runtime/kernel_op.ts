// The contract between the executor and an operator that runs on the Wasm kernels.
//
// A factory sees the node once, when the session is created: it checks that the kernels can
// run it (dtypes, constant weights, 2-D windows…) and packs the weights into Wasm memory, or
// returns undefined so the executor uses the TypeScript op instead. At run time the op works on
// offsets in Wasm memory: `inputPtr(i)` is where input i lives (copied in if it was not
// resident), `outputPtr(i, type, dims)` reserves output i (its arena slot when the plan has
// one). Offsets are taken before any typed-array view is made: reserving memory may grow it.
import type { Node } from "../graph/ir.ts";
import type { Tensor, TensorType } from "../graph/tensor.ts";
import type { KernelModule } from "../kernels/module.ts";

export interface KernelRunContext {
  readonly mod: KernelModule;
  inputType(i: number): TensorType;
  inputDims(i: number): readonly number[];
  inputPtr(i: number): number;
  /** Input i as a tensor view (for small inputs read on the JS side, e.g. scales). */
  input(i: number): Tensor | undefined;
  outputPtr(i: number, type: TensorType, dims: number[]): number;
}

export interface KernelOp {
  /**
   * Inputs whose constants the factory copied into Wasm memory and `run` never reads: the
   * session drops the graph's copy of a constant every consumer lists, so a weight is resident
   * once, in its packed form.
   */
  readonly packedInputs?: readonly number[];
  /** Runs the node; returns the multiply-accumulates it did (for profiles), if it knows. */
  run(k: KernelRunContext): number | void;
  /** Frees the packed weights. */
  dispose(): void;
}

export interface KernelEnv {
  readonly mod: KernelModule;
  readonly opset: number;
  /**
   * int4 weights: "packed" (default) keeps them at 4 bits in Wasm memory and quantizes the
   * activations to int8 blocks (onnxruntime's MatMulNBits accuracy_level 4); "float" decodes
   * them to f32 at load (f32 arithmetic, 8× the memory).
   */
  readonly int4?: "packed" | "float";
  /**
   * Pruned f32 weights of MatMul, Gemm and Conv: "auto" (default) keeps a weight sparse
   * where the sparse kernel is faster at its density (kernels/gemm_sparse.ts sparseWins);
   * "off" always packs them dense.
   */
  readonly sparse?: "auto" | "off";
}

export type KernelOpFactory = (node: Node, env: KernelEnv) => KernelOp | undefined;
