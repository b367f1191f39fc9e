// A model's vital statistics, as `sqz inspect` prints them: inputs and outputs, op histogram,
// parameters (count and bytes, after constant folding so generated weights count), and the
// multiply-accumulates of every Conv/Gemm/MatMul. Symbolic dimensions are taken as 1 for the
// MAC counts, so they are per batch item.
import { importModel, type ImportOptions } from "./onnx/import.ts";
import type { Dim, Graph, Node } from "./graph/ir.ts";
import { inferShapes } from "./graph/shape_inference.ts";
import { foldConstants } from "./graph/fold.ts";
import { ELEMENT_BYTES, elementCount } from "./graph/tensor.ts";

export interface TensorInfo {
  name: string;
  type?: string;
  dims?: Dim[];
}

export interface LayerInfo {
  name: string;
  op: string;
  macs: number;
  outputDims?: Dim[];
}

export interface ModelReport {
  opset: number;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  nodes: number;
  ops: Record<string, number>;
  parameters: number;
  parameterBytes: number;
  macs: number;
  layers: LayerInfo[];
}

const num = (d: Dim | undefined) => (typeof d === "number" ? d : 1);

function macsOf(n: Node): number {
  const out = n.outputs[0]?.shape;
  if (!out) return 0;
  const w = n.inputs[n.op === "QLinearConv" ? 3 : 1]?.shape;
  switch (n.op) {
    case "Conv":
    case "ConvInteger":
    case "QLinearConv": {
      if (!w || w.length < 3) return 0;
      // outputs × (Cin/groups · kernel area): w is [Cout, Cin/groups, kh, kw].
      const perOut = w.slice(1).reduce((a: number, d) => a * num(d), 1);
      return out.reduce((a: number, d) => a * num(d), 1) * perOut;
    }
    case "Gemm":
    case "MatMul":
    case "MatMulInteger":
    case "QLinearMatMul": {
      const a = n.inputs[0]?.shape;
      if (!a) return 0;
      const transA = n.op === "Gemm" && n.attrs.transA === 1;
      const k = num(transA ? a[a.length - 2] : a[a.length - 1]);
      return out.reduce((p: number, d) => p * num(d), 1) * k;
    }
    default:
      return 0;
  }
}

export function inspectGraph(g: Graph, opset: number): ModelReport {
  const ops: Record<string, number> = {};
  for (const n of g.nodes) ops[n.qualifiedOp] = (ops[n.qualifiedOp] ?? 0) + 1;
  const nodes = g.nodes.length;
  inferShapes(g);
  foldConstants(g);
  inferShapes(g);
  let parameters = 0, parameterBytes = 0;
  const seen = new Set<string>();
  for (const n of g.nodes) {
    for (const v of n.inputs) {
      if (!v?.constant || seen.has(v.name)) continue;
      seen.add(v.name);
      const count = elementCount(v.constant.dims);
      parameters += count;
      parameterBytes += v.constant.type === "int4" || v.constant.type === "uint4"
        ? Math.ceil(count / 2)
        : count * ELEMENT_BYTES[v.constant.type];
    }
  }
  const layers = g.nodes.map((n) => ({
    name: n.name,
    op: n.op,
    macs: macsOf(n),
    outputDims: n.outputs[0]?.shape,
  })).filter((l) => l.macs > 0);
  const info = (v: { name: string; type?: string; shape?: Dim[] }) => ({
    name: v.name,
    type: v.type,
    dims: v.shape,
  });
  return {
    opset,
    inputs: g.inputs.map(info),
    outputs: g.outputs.map(info),
    nodes,
    ops,
    parameters,
    parameterBytes,
    macs: layers.reduce((a, l) => a + l.macs, 0),
    layers,
  };
}

/** Imports and inspects a model given as bytes. */
export function inspectModel(bytes: Uint8Array, opts: ImportOptions = {}): ModelReport {
  const g = importModel(bytes, opts);
  return inspectGraph(g, g.opsets.get("") ?? g.opsets.get("ai.onnx") ?? 0);
}
