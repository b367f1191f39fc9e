// The graph IR: values (edges, with dtype and possibly symbolic shape), nodes (an op with
// attributes), and the graph that owns both. Deliberately small, as tinygrad keeps its core:
// passes rewrite it, the planner lowers it to kernels.
import type { Tensor, TensorType } from "./tensor.ts";
import { ModelError } from "../errors.ts";

/** A dimension: a number, or a symbol (ONNX dim_param, e.g. "batch"); "?" when unknown. */
export type Dim = number | string;

export class Value {
  type?: TensorType;
  shape?: Dim[];
  /** Set for initializers and folded constants. */
  constant?: Tensor;
  producer?: Node;
  readonly consumers: Node[] = [];
  constructor(readonly name: string) {}
}

export type AttrValue = number | number[] | string | string[] | Tensor | Tensor[] | Graph;

export class Node {
  constructor(
    public name: string,
    public op: string,
    public domain: string,
    /** Missing optional inputs are undefined (ONNX's empty names). */
    public inputs: (Value | undefined)[],
    public outputs: Value[],
    public attrs: Record<string, AttrValue> = {},
  ) {}

  /** Op with its domain: "Conv", "com.microsoft.QLinearAveragePool", "ai.sqz.BinaryConv". */
  get qualifiedOp(): string {
    return this.domain && this.domain !== "ai.onnx" ? `${this.domain}.${this.op}` : this.op;
  }
}

export class Graph {
  readonly values = new Map<string, Value>();
  nodes: Node[] = [];
  inputs: Value[] = [];
  outputs: Value[] = [];
  /** Opset version per domain ("" is the default ONNX domain). */
  opsets = new Map<string, number>();
  /** What import rewrote to load the model (e.g. opset 1–6 ops upgraded to opset 7), for reports. */
  notes: string[] = [];

  value(name: string): Value {
    let v = this.values.get(name);
    if (!v) {
      v = new Value(name);
      this.values.set(name, v);
    }
    return v;
  }

  addNode(node: Node): Node {
    for (const v of node.inputs) v?.consumers.push(node);
    for (const v of node.outputs) {
      if (v.producer) {
        throw new ModelError(
          `value '${v.name}' is produced by both '${v.producer.name}' and '${node.name}'`,
        );
      }
      v.producer = node;
    }
    this.nodes.push(node);
    return node;
  }

  removeNode(node: Node): void {
    for (const v of node.inputs) {
      if (!v) continue;
      const i = v.consumers.indexOf(node);
      if (i >= 0) v.consumers.splice(i, 1);
    }
    for (const v of node.outputs) if (v.producer === node) v.producer = undefined;
    this.nodes = this.nodes.filter((n) => n !== node);
  }

  /** Orders nodes so every input is produced first; throws ModelError naming a cycle. */
  topoSort(): void {
    const indeg = new Map<Node, number>();
    for (const n of this.nodes) {
      indeg.set(n, n.inputs.filter((v) => v?.producer).length);
    }
    const ready = this.nodes.filter((n) => indeg.get(n) === 0);
    const order: Node[] = [];
    while (ready.length) {
      const n = ready.shift()!;
      order.push(n);
      // consumers holds one entry per input slot, matching how indeg counted them.
      for (const out of n.outputs) {
        for (const c of out.consumers) {
          const left = indeg.get(c)! - 1;
          indeg.set(c, left);
          if (left === 0) ready.push(c);
        }
      }
    }
    if (order.length !== this.nodes.length) {
      const stuck = this.nodes.filter((n) => !order.includes(n)).map((n) => n.name).slice(0, 5);
      throw new ModelError(`the graph has a cycle through node(s) ${stuck.join(", ")}`);
    }
    this.nodes = order;
  }
}
