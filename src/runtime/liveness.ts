// Lifetimes of a graph's activations, for the arena planner: a value lives from the step of
// the node that writes it (graph inputs: step 0) to the step of its last reader (graph
// outputs: past the last node). Constants are weights, not arena tensors.
import type { Graph, Value } from "../graph/ir.ts";
import { ELEMENT_BYTES } from "../graph/tensor.ts";
import type { Lifetime } from "./arena.ts";
import { ShapeError } from "../errors.ts";

export interface ActivationLifetimes {
  values: Value[];
  lifetimes: Lifetime[];
}

/** Needs static shapes on every activation (run shape inference with concrete input dims). */
export function activationLifetimes(g: Graph): ActivationLifetimes {
  const step = new Map(g.nodes.map((n, i) => [n, i]));
  const end = g.nodes.length;
  const values: Value[] = [];
  const lifetimes: Lifetime[] = [];
  const seen = new Set<Value>();
  const add = (v: Value, first: number) => {
    if (seen.has(v) || v.constant) return;
    seen.add(v);
    if (!v.shape || !v.type || v.shape.some((d) => typeof d !== "number")) {
      throw new ShapeError(
        `activation '${v.name}' has no static shape; give the inputs concrete dims`,
      );
    }
    const size = (v.shape as number[]).reduce((a, b) => a * b, 1) * ELEMENT_BYTES[v.type];
    let last = first;
    for (const c of v.consumers) last = Math.max(last, step.get(c) ?? first);
    if (g.outputs.includes(v)) last = end;
    values.push(v);
    lifetimes.push({ size, first, last });
  };
  for (const v of g.inputs) add(v, 0);
  g.nodes.forEach((n, i) => n.outputs.forEach((v) => add(v, i)));
  return { values, lifetimes };
}
