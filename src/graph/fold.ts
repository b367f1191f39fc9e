// Constant folding: nodes whose inputs are all constants are evaluated once, at load time,
// and replaced by their results. This covers what exporters emit around the real network:
// ConstantOfShape-made weights (ONNX's light models), PyTorch's Shape → Gather → Concat →
// Reshape flatten, Cast/Unsqueeze chains on shapes. Shape of a statically shaped value is
// folded too, and so is a Gather/Slice of a Shape that picks only static dims of a partly
// symbolic shape. Evaluation uses the engine's own TypeScript ops (src/ops), so a folded value is
// exactly what the node would have computed at run time.
import type { Graph, Node, Value } from "./ir.ts";
import type { Tensor } from "./tensor.ts";
import { TS_OPS } from "../ops/registry.ts";
import { jsContext } from "../ops/types.ts";

/** Results larger than this stay computed at run time rather than stored in the model. */
const MAX_FOLD_BYTES = 256 * 1024 * 1024;

/** Stands for a symbolic dim in a partly known shape vector; never a real dim. */
const SYMBOLIC = -(2n ** 40n);

/**
 * The value of Shape(x) with x's symbolic dims as SYMBOLIC, when x's rank is known (honours
 * Shape-15's start and end).
 */
function partialShape(shape: Node): Tensor | undefined {
  const dims = shape.inputs[0]?.shape;
  if (!dims || dims.some((d) => d === "?")) return undefined;
  const r = dims.length;
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
  const start = clamp(typeof shape.attrs.start === "number" ? shape.attrs.start : 0);
  const end = clamp(typeof shape.attrs.end === "number" ? shape.attrs.end : r);
  const part = dims.slice(start, Math.max(start, end));
  return {
    type: "int64",
    dims: [part.length],
    data: BigInt64Array.from(part, (d) => (typeof d === "number" ? BigInt(d) : SYMBOLIC)),
  };
}

/**
 * Gather or Slice of a Shape whose selected dims are all static, even when others are
 * symbolic (torch's `x.size(-1)` of an [N, S, 64] tensor is 64): the selection's value.
 */
function foldShapeSelection(node: Node, opset: number): Tensor[] | undefined {
  if ((node.op !== "Gather" && node.op !== "Slice") || node.domain) return undefined;
  const shape = node.inputs[0]?.producer;
  if (!shape || shape.op !== "Shape" || shape.domain) return undefined;
  if (node.inputs.slice(1).some((v) => v && !v.constant)) return undefined;
  const vec = partialShape(shape);
  if (!vec) return undefined;
  const fn = TS_OPS[node.op];
  const results = fn(
    [vec, ...node.inputs.slice(1).map((v) => v?.constant)],
    jsContext(node, opset),
  );
  const data = results[0]?.data as BigInt64Array | undefined;
  if (!data || data.some((d) => d === SYMBOLIC)) return undefined;
  return results;
}

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
    const selected = shape ? undefined : foldShapeSelection(node, opset);
    if (selected) {
      results = selected;
    } else if (shape) {
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
