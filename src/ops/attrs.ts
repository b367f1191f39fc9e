// Typed access to node attributes with ONNX defaults.
import type { Node } from "../graph/ir.ts";
import type { Tensor } from "../graph/tensor.ts";
import { ModelError } from "../errors.ts";

function bad(node: Node, name: string, want: string): never {
  throw new ModelError(`node '${node.name}' (${node.op}): attribute '${name}' must be ${want}`);
}

export function attrInt(node: Node, name: string, dflt: number): number {
  const v = node.attrs[name];
  if (v === undefined) return dflt;
  if (typeof v !== "number") bad(node, name, "an integer");
  return v;
}

export function attrFloat(node: Node, name: string, dflt: number): number {
  return attrInt(node, name, dflt);
}

export function attrInts(node: Node, name: string): number[] | undefined {
  const v = node.attrs[name];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== "number")) {
    bad(node, name, "a list of numbers");
  }
  return v as number[];
}

export function attrString(node: Node, name: string, dflt: string): string {
  const v = node.attrs[name];
  if (v === undefined) return dflt;
  if (typeof v !== "string") bad(node, name, "a string");
  return v;
}

export function attrTensor(node: Node, name: string): Tensor | undefined {
  const v = node.attrs[name];
  if (v === undefined) return undefined;
  if (typeof v !== "object" || Array.isArray(v) || !("dims" in v)) bad(node, name, "a tensor");
  return v as Tensor;
}
