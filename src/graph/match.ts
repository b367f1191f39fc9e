// Small queries the fusion passes share when they match a pattern: who reads a value, and
// whether a rewrite may remove it.
import type { Graph, Node, Value } from "./ir.ts";

export const isGraphOutput = (g: Graph, v: Value): boolean => g.outputs.includes(v);

/** v feeds only `n` (possibly through several of its inputs) and is not a graph output. */
export function onlyReader(g: Graph, v: Value | undefined, n: Node): v is Value {
  return !!v && !isGraphOutput(g, v) && v.consumers.every((c) => c === n);
}

/** The one consumer of v (of that default-domain op, if given), when it is not an output. */
export function soleConsumer(g: Graph, v: Value, op?: string): Node | undefined {
  if (isGraphOutput(g, v) || v.consumers.length !== 1) return undefined;
  const c = v.consumers[0];
  return !op || (c.op === op && !c.domain) ? c : undefined;
}

/** The other input of a binary node. */
export function otherInput(n: Node, v: Value): Value | undefined {
  return n.inputs[0] === v ? n.inputs[1] : n.inputs[1] === v ? n.inputs[0] : undefined;
}
