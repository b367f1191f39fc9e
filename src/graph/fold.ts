// Constant folding: nodes whose inputs are all constants are evaluated once, at load time,
// and replaced by their results. This covers what exporters emit around the real network:
// ConstantOfShape-made weights (ONNX's light models), PyTorch's Shape → Gather → Concat →
// Reshape flatten, Cast/Unsqueeze chains on shapes. Shape of a statically shaped value is
// folded too. Evaluation uses the engine's own TypeScript ops (src/ops), so a folded value is
// exactly what the node would have computed at run time.
import type { Graph, Value } from "./ir.ts";
import type { Tensor } from "./tensor.ts";
import { TS_OPS } from "../ops/registry.ts";
import { jsContext } from "../ops/types.ts";

/** Results larger than this stay computed at run time rather than stored in the model. */
const MAX_FOLD_BYTES = 256 * 1024 * 1024;

function staticShape(v: Value | undefined): number[] | undefined {
  return v?.shape?.every((d) => typeof d === "number") ? (v.shape as number[]) : undefined;
}

/** Folds constant subgraphs in place; returns the number of nodes folded away. */
export function foldConstants(g: Graph): number {
  let folded = 0;
  const opset = g.opsets.get("") ?? g.opsets.get("ai.onnx") ?? 0;
  for (const node of [...g.nodes]) {
    let results: Tensor[];
    const shape = node.op === "Shape"
      ? node.inputs[0]?.constant?.dims ?? staticShape(node.inputs[0])
      : undefined;
    const fn = TS_OPS[node.qualifiedOp];
    if (!fn) continue;
    if (shape) {
      // Only the shape matters: evaluate on an empty stand-in of that shape.
      const stand = { type: "float32", dims: shape, data: new Float32Array(0) } as Tensor;
      results = fn([stand], jsContext(node, opset));
    } else {
      if (!node.inputs.length || node.inputs.some((v) => v && !v.constant)) continue;
      results = fn(node.inputs.map((v) => v?.constant), jsContext(node, opset));
    }
    if (results.length < node.outputs.length) continue;
    if (results.some((t) => t.data.byteLength > MAX_FOLD_BYTES)) continue;
    g.removeNode(node);
    node.outputs.forEach((v, i) => {
      // Own the data: an op may return a view of its input.
      const t = results[i];
      v.constant = { type: t.type, dims: [...t.dims], data: t.data.slice() } as Tensor;
      v.type = t.type;
      v.shape = [...t.dims];
    });
    folded++;
  }
  return folded;
}
