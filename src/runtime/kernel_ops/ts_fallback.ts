// Runs a node's TypeScript op on a kernel op's inputs and writes the result to its outputs:
// for the inputs a kernel op met at run time that its kernel does not take (another dtype, an
// unusual broadcast), so choosing the kernel op at load time never makes a valid run fail.
import type { Node } from "../../graph/ir.ts";
import type { KernelRunContext } from "../kernel_op.ts";
import { TS_OPS } from "../../ops/registry.ts";
import { jsContext } from "../../ops/types.ts";

export function runTsOp(ctx: KernelRunContext, node: Node, opset: number, inputs: number): void {
  const fn = TS_OPS[node.qualifiedOp];
  const results = fn(
    Array.from({ length: inputs }, (_, i) => ctx.input(i)),
    jsContext(node, opset),
  );
  results.forEach((r, i) => {
    if (i >= node.outputs.length) return;
    const out = ctx.outputPtr(i, r.type, [...r.dims]);
    const src = r.data;
    new Uint8Array(ctx.mod.memory.buffer, out, src.byteLength).set(
      new Uint8Array(src.buffer, src.byteOffset, src.byteLength),
    );
  });
}
