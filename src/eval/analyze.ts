// Static analysis of one model: its Conv / Gemm / MatMul layers (precision, weight storage,
// parameters, non-zeros, MACs from shapes or the sqz.report metadata) and its file sizes.
import { importModel } from "../onnx/import.ts";
import { decodeModel } from "../onnx/proto.ts";
import { inspectGraph } from "../inspect.ts";
import type { Graph } from "../graph/ir.ts";
import { type LayerReport, SQZ_DOMAIN } from "../compress/types.ts";
import type { Source } from "./load.ts";
import { fileStats } from "./size.ts";
import { INTEGER_OPS, is4bit, LAYER_OPS, sqzPrecision, sqzWeights } from "./precision.ts";
import { countNonzeros, traceWeight, WEIGHT_SLOT } from "./weights.ts";
import type { ModelStats, Precision } from "./types.ts";

export interface LayerStats {
  /** Node name. */
  name: string;
  op: string;
  /** The node's first output. */
  output: string;
  precision: Precision;
  weights?: string;
  params: number;
  nonzeros: number;
  macs?: number;
}

export interface Analysis {
  stats: Omit<ModelStats, "macs">;
  layers: LayerStats[];
  /** Values some node produces (before folding), for pairing layer outputs. */
  produced: Set<string>;
  notes: string[];
}

/** The `sqz.report` metadata of a compressed model, if it has one. */
function sqzReport(bytes: Uint8Array, notes: string[], what: string): LayerReport[] | undefined {
  const entry = decodeModel(bytes).metadataProps.find((p) => p.key === "sqz.report");
  if (!entry?.value) return undefined;
  try {
    const parsed = JSON.parse(entry.value);
    if (Array.isArray(parsed?.layers)) {
      // The compressor's own remarks ("x stays float: …") belong in the evaluation too.
      if (Array.isArray(parsed.notes)) {
        for (const note of parsed.notes) notes.push(`${what} (compression): ${String(note)}`);
      }
      return parsed.layers as LayerReport[];
    }
  } catch {
    // Reported below: a broken report must not stop the evaluation.
  }
  notes.push(`the ${what}'s sqz.report metadata is not JSON with a layers array: ignored`);
  return undefined;
}

export function analyze(src: Source, brotli = true): Analysis {
  const notes: string[] = [];
  const g: Graph = importModel(src.bytes, {
    baseDir: src.baseDir,
    externalData: src.externalData,
  });
  const report = sqzReport(src.bytes, notes, src.what);
  // A node derived from a layer (`fc1::int`) speaks for it only when the layer's own node is
  // gone; when both exist (low-rank: `fc1::lowrank` + `fc1`), the layer's node alone does, so
  // its parameters are not counted twice.
  const nodeNames = new Set(g.nodes.map((n) => n.name));
  const reportFor = (name: string) =>
    report?.find((l) =>
      l.name === name || (name.startsWith(`${l.name}::`) && !nodeNames.has(l.name))
    );
  const produced = new Set<string>();
  for (const n of g.nodes) for (const v of n.outputs) produced.add(v.name);

  const layers: LayerStats[] = [];
  const weightOnly: string[] = [];
  const fallback: string[] = [];
  for (const n of g.nodes) {
    const sqz = n.domain === SQZ_DOMAIN;
    const std = !n.domain || n.domain === "ai.onnx";
    // onnxruntime's weight-only int4 MatMul (what int4 with format "matmulnbits" writes).
    const nbits = n.domain === "com.microsoft" && n.op === "MatMulNBits";
    if (nbits) {
      const rep = reportFor(n.name);
      const k = Number(n.attrs.K ?? 0), nOut = Number(n.attrs.N ?? 0);
      weightOnly.push(n.name);
      layers.push({
        name: n.name,
        op: n.qualifiedOp,
        output: n.outputs[0]?.name ?? "",
        precision: "float32",
        weights: `int${Number(n.attrs.bits ?? 4)}`,
        params: rep?.params ?? k * nOut,
        nonzeros: rep?.nonzeros ?? k * nOut,
        macs: rep?.macsAfter,
      });
      continue;
    }
    if (!(sqz || (std && LAYER_OPS.has(n.op)))) continue;
    const [wi, zi] = WEIGHT_SLOT[n.op] ?? [-1, -1];
    const trace = wi >= 0 ? traceWeight(n.inputs[wi]) : {};
    const rep = reportFor(n.name);
    // A decoder only feeding another layer's weight is counted with that layer.
    if (
      sqz && wi < 0 && n.outputs.every((o) =>
        o.consumers.some((c) =>
          traceWeight(
            c.inputs[WEIGHT_SLOT[c.op]?.[0] ?? -1],
          ).decoder === n
        )
      )
    ) continue;

    let precision: Precision = "float32";
    const wType = trace.dq?.inputs[0]?.type ?? trace.constant?.type;
    if (sqz) precision = sqzPrecision(n.op) ?? "float32";
    else if (INTEGER_OPS.has(n.op)) precision = "int8";
    else if (trace.dq) {
      // A QDQ layer runs on integer kernels when its activation is quantized too; with only
      // the weight quantized, the weight is dequantized at load time and the MACs are float.
      if (n.inputs[0]?.producer?.op === "DequantizeLinear") precision = "int8";
      else weightOnly.push(n.name);
    } else if (trace.decoder) weightOnly.push(n.name);
    if (precision === "int8" && is4bit(wType)) precision = "int4";

    let params = 0, nonzeros = 0;
    if (rep && (sqz || trace.decoder)) {
      params = rep.params;
      nonzeros = rep.nonzeros;
    } else if (trace.constant) {
      params = trace.constant.data.length;
      const zpNode = trace.dq ?? (zi >= 0 ? n : undefined);
      const zp = trace.dq
        ? trace.dq.inputs[2]?.constant
        : zi >= 0
        ? n.inputs[zi]?.constant
        : undefined;
      let axis = 0;
      if (trace.dq) axis = typeof trace.dq.attrs.axis === "number" ? trace.dq.attrs.axis : 1;
      else if (n.op === "QLinearMatMul" || n.op === "MatMulInteger") axis = -1;
      else if (n.op === "QGemm") axis = n.attrs.transB === 1 ? 0 : 1;
      const block = typeof zpNode?.attrs.block_size === "number" ? zpNode.attrs.block_size : 0;
      nonzeros = countNonzeros(trace.constant, zp, axis, block);
    } else if (sqz || trace.decoder) {
      // No report: count the stored elements of the packed layer's initializers.
      for (const v of (trace.decoder ?? n).inputs) {
        if (!v?.constant || v.constant.dims.length < 2) continue;
        params += v.constant.data.length;
        nonzeros += countNonzeros(v.constant);
      }
      fallback.push(n.name);
    }
    const weights = sqz ? sqzWeights(n.op) : trace.decoder ? sqzWeights(trace.decoder.op) : wType;
    layers.push({
      name: n.name,
      op: n.qualifiedOp,
      output: n.outputs[0]?.name ?? "",
      precision,
      ...(weights ? { weights } : {}),
      params,
      nonzeros,
      macs: rep?.macsAfter,
    });
  }
  if (weightOnly.length) {
    notes.push(
      `${src.what}: ${weightOnly.length} layer(s) store packed or quantized weights but run ` +
        `float32 MACs (${weightOnly.slice(0, 5).join(", ")}${weightOnly.length > 5 ? "…" : ""}): ` +
        `the engine decodes those weights to float when the model loads`,
    );
  }
  if (fallback.length) {
    notes.push(
      `${src.what}: no sqz.report for ${fallback.slice(0, 5).join(", ")}` +
        `${fallback.length > 5 ? "…" : ""}: their parameters are the stored initializer ` +
        `elements (packed values count once per storage element)`,
    );
  }

  // MACs from shapes (after the analysis above: inspection folds constants in place).
  try {
    const info = inspectGraph(g, g.opsets.get("") ?? g.opsets.get("ai.onnx") ?? 0);
    const byName = new Map(info.layers.map((l) => [l.name, l.macs]));
    for (const l of layers) {
      if (l.macs !== undefined) continue;
      const m = byName.get(l.name);
      if (m) l.macs = m;
      else if (/gemm|matmul/i.test(l.op)) {
        // ai.sqz GEMMs: output elements × K, K the last dim of the activation.
        const n = g.nodes.find((x) => x.name === l.name);
        const a = n?.inputs[0]?.shape, y = n?.outputs[0]?.shape;
        const k = a?.[a.length - 1];
        if (typeof k === "number" && y?.every((d) => typeof d === "number" || d === "?")) {
          l.macs = y.reduce((p: number, d) => p * (typeof d === "number" ? d : 1), 1) * k;
        }
      }
    }
  } catch (e) {
    notes.push(`${src.what}: MACs from shapes unavailable (${(e as Error).message})`);
  }

  return {
    stats: {
      ...fileStats(src, brotli),
      params: layers.reduce((a, l) => a + l.params, 0),
      nonzeros: layers.reduce((a, l) => a + l.nonzeros, 0),
    },
    layers,
    produced,
    notes,
  };
}
