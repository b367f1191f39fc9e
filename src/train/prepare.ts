// What a recipe needs of a graph before it can be fine-tuned, and the training graph itself.
//
// makeBinarizable (rewrites the model itself): a binarized layer sees sign(x), so an input that
// is the output of a ReLU is always +1 and carries nothing. For each binary layer, the ReLU its
// input comes from (through MaxPool / Flatten / Reshape / Transpose / Dropout / Identity, which commute with
// sign or only move data) is replaced by a BatchNormalization, as XNOR-Net and Larq place it:
// BN ahead of the sign. An input straight from a Conv / Gemm without a nonlinearity gets a BN
// inserted. After training, each BN folds into the layer before it (foldBatchNorm; for a layer
// that is then binarized the fold is exact: sign(γ/σ·w) = ±sign(w), α scales by |γ|/σ).
//
// trainingGraph (a copy; the model is not touched): every compressed layer's weight goes
// through ai.sqz.FakeQuantWeight with its method's scheme (src/train/ops/sqz.ts), int8 layers'
// inputs through ai.sqz.FakeQuantAct, binary layers' inputs through ai.sqz.SignSTE with their
// convolution padding +1 (the binary kernels pad with +1).
//
// pruneMasks: the masks the pruning pass would produce for the current weights at a fraction of
// the recipe's sparsity (Zhu & Gupta's gradual schedule raises it to 1), by prunePass's own
// selection (zeroSmallest / pruneNM, the same scopes and counts), so the weights training
// leaves at zero are exactly those the pass then stores as pruned.
import { type Graph, Node, type Value } from "../graph/ir.ts";
import { importModel } from "../onnx/import.ts";
import { exportModel } from "../onnx/export.ts";
import { inferShapes } from "../graph/shape_inference.ts";
import { methodFor, type Recipe } from "../compress/recipe.ts";
import { layerNodes, weightLayer } from "../compress/int4.ts";
import {
  constantLayers,
  GLOBAL_MIN_PARAMS,
  parsePattern,
  pruneNM,
  zeroSmallest,
} from "../compress/prune.ts";
import { SQZ_DOMAIN } from "../graph/qdq.ts";

const PASS_THROUGH = new Set(["MaxPool", "Flatten", "Reshape", "Dropout", "Identity", "Transpose"]);

function freshValue(g: Graph, base: string): Value {
  let name = base, i = 1;
  while (g.values.has(name)) name = `${base}_${i++}`;
  return g.value(name);
}

/** Inserts `op` on value `v` for the consumer `node` only (input slot `slot`). */
function insertBefore(
  g: Graph,
  node: Node,
  slot: number,
  op: string,
  domain: string,
  attrs: Node["attrs"],
  extra: Value[] = [],
): Node {
  const v = node.inputs[slot]!;
  const out = freshValue(g, `${v.name}::${op}`);
  out.type = v.type;
  out.shape = v.shape && [...v.shape];
  const i = v.consumers.indexOf(node);
  if (i >= 0) v.consumers.splice(i, 1);
  node.inputs[slot] = out;
  out.consumers.push(node);
  return g.addNode(new Node(`${node.name}::${op}`, op, domain, [v, ...extra], [out], attrs));
}

/** Inserts `op` (ai.sqz) on node's output 0, for all its consumers. */
function insertAfter(g: Graph, node: Node, op: string, attrs: Node["attrs"]): void {
  let v = node.outputs[0];
  // A BatchNorm right after the layer folds into it at export, so the artifact quantizes the
  // normalized output: quantize after it here too.
  const bn = v.consumers.length === 1 ? v.consumers[0] : undefined;
  if (bn && bn.op === "BatchNormalization" && !bn.domain && !g.outputs.includes(v)) {
    v = bn.outputs[0];
  }
  if (g.outputs.includes(v)) return; // the logits stay float
  const out = freshValue(g, `${v.name}::${op}`);
  out.type = v.type;
  out.shape = v.shape && [...v.shape];
  for (const c of [...v.consumers]) {
    c.inputs = c.inputs.map((x) => (x === v ? out : x));
    out.consumers.push(c);
  }
  v.consumers.length = 0;
  g.addNode(new Node(`${node.name}::${op}::out`, op, SQZ_DOMAIN, [v], [out], attrs));
}

function bnConstants(g: Graph, base: string, c: number): Value[] {
  return [["scale", 1], ["bias", 0], ["mean", 0], ["var", 1]].map(([n, fill]) => {
    const v = freshValue(g, `${base}::${n}`);
    v.type = "float32";
    v.shape = [c];
    v.constant = { type: "float32", dims: [c], data: new Float32Array(c).fill(fill as number) };
    return v;
  });
}

/** The binary layers of g under recipe r (after keepFirstLast has been applied to r). */
function binaryLayers(g: Graph, r: Recipe): Node[] {
  return layerNodes(g).filter((n) =>
    methodFor(r, n.name, n.op) === "binary" && typeof weightLayer(n) !== "string"
  );
}

/** Rewrites g so its binary layers see BatchNorm'd inputs; returns what it changed. */
export function makeBinarizable(g: Graph, r: Recipe): string[] {
  const changes: string[] = [];
  for (const layer of binaryLayers(g, r)) {
    let v = layer.inputs[0]!;
    while (v.producer && PASS_THROUGH.has(v.producer.op) && !v.producer.domain) {
      v = v.producer.inputs[0]!;
    }
    const p = v.producer;
    if (!p || p.domain) continue;
    const c = v.shape?.[1];
    if (typeof c !== "number") continue;
    if (p.op === "BatchNormalization") continue;
    if (p.op === "Relu" || (p.op === "Clip" && clipLow(p, g) >= 0)) {
      const bn = new Node(
        `${p.name}::bn`,
        "BatchNormalization",
        "",
        [p.inputs[0], ...bnConstants(g, `${p.name}::bn`, c)],
        p.outputs,
        { epsilon: 1e-5, momentum: 0.9 },
      );
      g.removeNode(p);
      g.addNode(bn);
      changes.push(
        `'${p.name}' (${p.op}) feeding binarized '${layer.name}' replaced by BatchNormalization ` +
          `'${bn.name}': sign(${p.op}(x)) is always +1`,
      );
    } else if (["Conv", "Gemm", "MatMul"].includes(p.op)) {
      // An affine layer straight into the sign: normalize first.
      const out = freshValue(g, `${v.name}::bn`);
      out.type = v.type;
      out.shape = v.shape && [...v.shape];
      for (const consumer of [...v.consumers]) {
        consumer.inputs = consumer.inputs.map((x) => (x === v ? out : x));
        out.consumers.push(consumer);
      }
      v.consumers.length = 0;
      g.addNode(
        new Node(
          `${p.name}::bn`,
          "BatchNormalization",
          "",
          [v, ...bnConstants(g, `${p.name}::bn`, c)],
          [out],
          {
            epsilon: 1e-5,
            momentum: 0.9,
          },
        ),
      );
      changes.push(
        `BatchNormalization inserted after '${p.name}', ahead of binarized '${layer.name}'`,
      );
    }
  }
  g.topoSort();
  inferShapes(g);
  return changes;
}

function clipLow(n: Node, g: Graph): number {
  const opset = g.opsets.get("") ?? 13;
  if (opset < 11) return typeof n.attrs.min === "number" ? n.attrs.min : -Infinity;
  const lo = n.inputs[1]?.constant;
  return lo ? Number(lo.data[0]) : -Infinity;
}

/** The output-channel axis of a layer's weight tensor (int8) and its matrix-view axis (int4…). */
function axes(node: Node): { channel: number; view: 0 | 1 } {
  if (node.op === "Conv") return { channel: 0, view: 1 };
  const transB = node.op === "Gemm" && node.attrs.transB === 1;
  return transB ? { channel: 0, view: 1 } : { channel: 1, view: 0 };
}

export interface TrainingGraph {
  graph: Graph;
  /** The value trained against: the first output, or the logits under a final (Log)Softmax. */
  logits: string;
  /** Layers and the scheme their weights train under. */
  layers: { name: string; scheme: string }[];
}

/** A copy of g with the training ops of recipe r inserted (see the top of this file). */
export function trainingGraph(g: Graph, r: Recipe, opts: { int4BlockSize?: number } = {}) {
  const t = importModel(exportModel(g));
  t.topoSort();
  inferShapes(t);
  const layers: { name: string; scheme: string }[] = [];
  for (const node of layerNodes(t)) {
    const m = methodFor(r, node.name, node.op);
    if (m === "none" || typeof weightLayer(node) === "string") continue;
    if (node.op === "Gemm" && node.attrs.transA === 1 && m === "binary") continue;
    const ax = axes(node);
    const scheme = m === "int8-dynamic" ? "int8" : m;
    const attrs: Node["attrs"] = { scheme, axis: scheme === "int8" ? ax.channel : ax.view };
    if (scheme === "int4") {
      attrs.block_size = opts.int4BlockSize ?? r.int4.blockSize;
      attrs.symmetric = r.int4.symmetric ? 1 : 0;
    }
    insertBefore(t, node, 1, "FakeQuantWeight", SQZ_DOMAIN, attrs);
    if (scheme === "int8") {
      // Static int8 quantizes the layer's input and its output (QDQ around the Conv / Gemm):
      // the output's rounding matters most where a sign follows (a binary layer's input).
      insertBefore(t, node, 0, "FakeQuantAct", SQZ_DOMAIN, { momentum: 0.9 });
      if (m === "int8") insertAfter(t, node, "FakeQuantAct", { momentum: 0.9 });
    }
    if (scheme === "binary") {
      insertBefore(t, node, 0, "SignSTE", SQZ_DOMAIN, {});
      if (node.op === "Conv") node.attrs.pad_value = 1;
    }
    layers.push({ name: node.name, scheme });
  }
  t.topoSort();
  return { graph: t, logits: logitsOf(t).name, layers } satisfies TrainingGraph;
}

/** What a classifier is trained against: its first output, or the input of a final (Log)Softmax. */
export function logitsOf(g: Graph): Value {
  const out = g.outputs[0], p = out.producer;
  return p && !p.domain && (p.op === "Softmax" || p.op === "LogSoftmax") ? p.inputs[0]! : out;
}

/** Pruning masks (1 = kept) by weight value name, for `fraction` of the recipe's sparsity. */
export function pruneMasks(
  g: Graph,
  r: Recipe,
  weight: (name: string) => Float32Array | undefined,
  fraction: number,
): Map<string, Uint8Array> {
  const masks = new Map<string, Uint8Array>();
  const layers = constantLayers(g, r, [], "prune");
  const pool: { name: string; w: Float32Array }[] = [];
  const mask = (name: string, w: Float32Array) =>
    masks.set(name, Uint8Array.from(w, (v) => (v !== 0 ? 1 : 0)));
  for (const l of layers) {
    const cur = weight(l.weight.name);
    if (!cur) continue;
    const w = cur.slice(), p = l.settings.prune!;
    if (p.pattern !== undefined) {
      const nm = parsePattern(p.pattern)!;
      if (l.m.k % nm.m !== 0) continue;
      pruneNM(w, l.m, nm.n, nm.m);
      mask(l.weight.name, w);
    } else if (p.own || r.prune?.scope === "layer") {
      zeroSmallest([w], Math.round(fraction * p.sparsity! * w.length));
      mask(l.weight.name, w);
    } else if (l.w.length >= GLOBAL_MIN_PARAMS) pool.push({ name: l.weight.name, w });
  }
  if (pool.length && r.prune?.sparsity) {
    const total = pool.reduce((s, l) => s + l.w.length, 0);
    zeroSmallest(pool.map((l) => l.w), Math.round(fraction * r.prune.sparsity * total));
    for (const l of pool) mask(l.name, l.w);
  }
  return masks;
}
