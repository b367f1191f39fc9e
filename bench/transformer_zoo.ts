// Transformer encoders built in code, node for node as the common exporters write them, with
// seeded random weights. Shared by tests/transformer_test.ts and `deno task bench models`.
//
//   torch: what torch.onnx.export (opset 14) writes for nn.TransformerEncoder (batch_first =
//     False, post-norm, ReLU): input [S, N, E] with both dims symbolic, so every Reshape target
//     is a Shape → Gather → Unsqueeze → Concat subgraph; in-projection packed into one
//     [E, 3E] MatMul, split by Reshape → Unsqueeze → Transpose → Squeeze → Gather;
//     scaled_dot_product_attention's scale as √scale on both Q and Kᵀ; out-projection as Gemm
//     on the flattened [S·N, E]; LayerNorm decomposed (ReduceMean, Sub, Pow, Sqrt, Div).
//   bert: a HuggingFace BertModel at opset 14: int64 input_ids and attention_mask [N, S];
//     word + position + token-type Gather embeddings; the mask unsqueezed, expanded to
//     [N, 1, S, S] and turned into additive −3.4e38 by Where; Q, K, V as MatMul + Add,
//     heads by Reshape/Transpose, scores Div √d; Gelu from Erf; decomposed LayerNorm.
//   vit: a ViT at opset 17: a Conv patch embedding, Flatten/Transpose, a class token Expanded
//     and Concatenated, position embeddings, pre-norm layers with the LayerNormalization op
//     and Gelu from Erf, the class token Gathered and a Gemm head.
//   seq: the "MNIST rows as tokens" classifier: input [N, 28, 28] (28 tokens of 28 pixels),
//     a linear embedding, post-norm layers as in torch, mean over the tokens, a Gemm head.
import { DataType, makeModel, tensorFromArray, valueInfo } from "../src/onnx/proto.ts";
import { GraphBuilder, zooRng } from "./model_zoo.ts";
import { ArgumentError } from "../src/errors.ts";

export interface EncoderSpec {
  style: "torch" | "bert" | "vit" | "seq";
  layers: number;
  d: number;
  heads: number;
  /** Feed-forward width. */
  ff: number;
  /** Sequence length the fixture's inputs use (the model's own dims stay symbolic). */
  seq: number;
  seed?: number;
  /**
   * Default-domain opset (torch and bert: 14, vit: 17). From 17 the torch and BERT styles
   * write the LayerNormalization op, as torch.onnx.export does; below, its decomposition.
   */
  opset?: number;
}

export interface EncoderModel {
  name: string;
  spec: EncoderSpec;
  bytes: Uint8Array;
  /** Input names and how to make a batch of them. */
  inputs: {
    name: string;
    kind: "float" | "ids" | "mask" | "image";
    dims: (b: number) => number[];
  }[];
  outputName: string;
}

const VOCAB = 1000;
/** What torch writes for an open slice end. */
const INT64_MAX = 9223372036854775807n;

class EncoderBuilder extends GraphBuilder {
  i64(prefix: string, values: (number | bigint)[], dims = [values.length]): string {
    const name = this.fresh(prefix);
    this.inits.push(
      tensorFromArray(name, DataType.INT64, dims, BigInt64Array.from(values, (v) => BigInt(v))),
    );
    return name;
  }

  f32(prefix: string, dims: number[], data: Float32Array): string {
    return this.init(prefix, DataType.FLOAT, dims, data);
  }

  uniform(n: number, a: number): Float32Array {
    return Float32Array.from({ length: n }, () => (2 * this.r() - 1) * a);
  }

  /** A Linear's weight as the exporter stores it for MatMul: Wᵀ, [k, n]. */
  linearWeight(k: number, n: number): string {
    return this.f32("W", [k, n], this.uniform(k * n, Math.sqrt(6 / (k + n))));
  }

  linear(x: string, k: number, n: number): string {
    const y = this.op("MatMul", [x, this.linearWeight(k, n)]);
    return this.op("Add", [y, this.f32("B", [n], this.biasInit(n, k))]);
  }

  /** LayerNorm as torch exports it before opset 17 (ReduceMean … Sqrt, Div, Mul, Add). */
  layerNormDecomposed(x: string, d: number): string {
    const mean = this.op("ReduceMean", [x], { axes: [-1], keepdims: 1 });
    const xc = this.op("Sub", [x, mean]);
    const sq = this.op("Pow", [xc, this.scalar("two", 2)]);
    const v = this.op("ReduceMean", [sq], { axes: [-1], keepdims: 1 });
    const sd = this.op("Sqrt", [this.op("Add", [v, this.scalar("eps", 1e-5)])]);
    const n = this.op("Div", [xc, sd]);
    const gamma = this.f32(
      "ln_g",
      [d],
      Float32Array.from({ length: d }, () => 1 + 0.1 * this.normal()),
    );
    const beta = this.f32("ln_b", [d], Float32Array.from({ length: d }, () => 0.1 * this.normal()));
    return this.op("Add", [this.op("Mul", [n, gamma]), beta]);
  }

  layerNormOp(x: string, d: number): string {
    const gamma = this.f32(
      "ln_g",
      [d],
      Float32Array.from({ length: d }, () => 1 + 0.1 * this.normal()),
    );
    const beta = this.f32("ln_b", [d], Float32Array.from({ length: d }, () => 0.1 * this.normal()));
    return this.op("LayerNormalization", [x, gamma, beta], { axis: -1, epsilon: 1e-5 });
  }

  /** Gelu as torch exports it before opset 20: x · ½ · (1 + erf(x / √2)). */
  geluErf(x: string): string {
    const e = this.op("Erf", [this.op("Div", [x, this.scalar("sqrt2", Math.SQRT2)])]);
    const h = this.op("Mul", [x, this.op("Add", [e, this.scalar("one", 1)])]);
    return this.op("Mul", [h, this.scalar("half", 0.5)]);
  }

  /** dim i of x as a 1-element int64 (Shape → Gather → Unsqueeze, as exporters write it). */
  dim(x: string, i: number): string {
    const s = this.op("Shape", [x]);
    const g = this.op("Gather", [s, this.i64("idx", [i], [])], { axis: 0 });
    return this.op("Unsqueeze", [g, this.i64("axes", [0])]);
  }

  concat(parts: string[]): string {
    return this.op("Concat", parts, { axis: 0 });
  }
}

/** torch.nn.functional.multi_head_attention_forward, self-attention, batch_first = False. */
function torchAttention(g: EncoderBuilder, x: string, d: number, heads: number): string {
  const hd = d / heads;
  const S = g.dim(x, 0), N = g.dim(x, 1);
  const proj = g.linear(x, d, 3 * d); // [S, N, 3E]
  // proj.unflatten(-1, (3, E)).unsqueeze(0).transpose(0, -2).squeeze(-2)
  const unfl = g.op("Reshape", [proj, g.concat([S, N, g.i64("c", [3]), g.i64("c", [d])])]);
  const t = g.op("Transpose", [g.op("Unsqueeze", [unfl, g.i64("axes", [0])])], {
    perm: [3, 1, 2, 0, 4],
  });
  const qkv = g.op("Squeeze", [t, g.i64("axes", [3])]); // [3, S, N, E]
  const NH = g.op("Mul", [N, g.i64("c", [heads])]);
  const heads3 = (i: number) => {
    const p = g.op("Gather", [qkv, g.i64("idx", [i], [])], { axis: 0 }); // [S, N, E]
    const r = g.op("Reshape", [p, g.concat([S, NH, g.i64("c", [hd])])]); // [S, N·H, hd]
    const tr = g.op("Transpose", [r], { perm: [1, 0, 2] }); // [N·H, S, hd]
    return g.op("Reshape", [tr, g.concat([N, g.i64("c", [heads]), S, g.i64("c", [hd])])]);
  };
  const q = heads3(0), k = heads3(1), v = heads3(2);
  // scaled_dot_product_attention (opset 14 symbolic): √scale on Q and on Kᵀ.
  const hdF = g.op("Cast", [
    g.op("Slice", [g.op("Shape", [q]), g.i64("s", [-1]), g.i64("e", [INT64_MAX])]),
  ], { to: DataType.FLOAT });
  const scale = g.op("Div", [g.scalar("one", 1), g.op("Sqrt", [hdF])]);
  const sqrtScale = g.op("Sqrt", [scale]);
  const qs = g.op("Mul", [q, sqrtScale]);
  const kt = g.op("Transpose", [k], { perm: [0, 1, 3, 2] });
  const ks = g.op("Mul", [kt, sqrtScale]);
  const w = g.op("Softmax", [g.op("MatMul", [qs, ks])], { axis: -1 });
  const o = g.op("MatMul", [w, v]); // [N, H, S, hd]
  const perm = g.op("Transpose", [o], { perm: [2, 0, 1, 3] }); // [S, N, H, hd]
  const SN = g.op("Mul", [S, N]);
  const flat = g.op("Reshape", [perm, g.concat([SN, g.i64("c", [d])])]);
  const wo = g.f32("Wo", [d, d], g.uniform(d * d, Math.sqrt(3 / d)));
  const out = g.op("Gemm", [flat, wo, g.f32("bo", [d], g.biasInit(d, d))], { transB: 1 });
  return g.op("Reshape", [out, g.concat([S, N, g.i64("c", [d])])]);
}

/** HuggingFace BertSelfAttention, batch first, with an additive mask [N, 1, S, S]. */
function bertAttention(
  g: EncoderBuilder,
  x: string,
  mask: string,
  d: number,
  heads: number,
): string {
  const hd = d / heads;
  const split = (y: string) => {
    const r = g.op("Reshape", [
      y,
      g.concat([g.dim(y, 0), g.dim(y, 1), g.i64("c", [heads]), g.i64("c", [hd])]),
    ]);
    return r;
  };
  const q = g.op("Transpose", [split(g.linear(x, d, d))], { perm: [0, 2, 1, 3] });
  const kt = g.op("Transpose", [split(g.linear(x, d, d))], { perm: [0, 2, 3, 1] });
  const v = g.op("Transpose", [split(g.linear(x, d, d))], { perm: [0, 2, 1, 3] });
  const scores = g.op("Div", [g.op("MatMul", [q, kt]), g.scalar("sqrt_hd", Math.sqrt(hd))]);
  const p = g.op("Softmax", [g.op("Add", [scores, mask])], { axis: -1 });
  const ctx = g.op("Transpose", [g.op("MatMul", [p, v])], { perm: [0, 2, 1, 3] });
  const merged = g.op("Reshape", [ctx, g.concat([g.dim(ctx, 0), g.dim(ctx, 1), g.i64("c", [d])])]);
  return g.linear(merged, d, d);
}

/** Multi-head self-attention for batch-first [N, S, E] without a mask (ViT, seq). */
function plainAttention(g: EncoderBuilder, x: string, d: number, heads: number): string {
  const hd = d / heads;
  const shape = g.i64("c", [0, -1, heads, hd]); // Reshape's 0 copies N from the input
  const head = (y: string, perm: number[]) =>
    g.op("Transpose", [g.op("Reshape", [y, shape])], { perm });
  const q = head(g.linear(x, d, d), [0, 2, 1, 3]);
  const kt = head(g.linear(x, d, d), [0, 2, 3, 1]);
  const v = head(g.linear(x, d, d), [0, 2, 1, 3]);
  const s = g.op("Mul", [g.op("MatMul", [q, kt]), g.scalar("inv_sqrt_hd", 1 / Math.sqrt(hd))]);
  const p = g.op("Softmax", [s], { axis: -1 });
  const ctx = g.op("Transpose", [g.op("MatMul", [p, v])], { perm: [0, 2, 1, 3] });
  return g.linear(g.op("Reshape", [ctx, g.i64("c", [0, -1, d])]), d, d);
}

function feedForward(g: EncoderBuilder, x: string, d: number, ff: number, gelu: boolean): string {
  const h = g.linear(x, d, ff);
  return g.linear(gelu ? g.geluErf(h) : g.op("Relu", [h]), ff, d);
}

function build(spec: EncoderSpec): EncoderModel {
  const { layers, d, heads, ff, style } = spec;
  if (d % heads) throw new ArgumentError(`transformer_zoo: d ${d} is not a multiple of heads`);
  const g = new EncoderBuilder(zooRng(spec.seed ?? 7));
  const opsetWanted = spec.opset ?? (style === "vit" ? 17 : 14);
  const name = `${style}_encoder_l${layers}_d${d}_s${spec.seq}` +
    (spec.opset !== undefined ? `_op${spec.opset}` : "");
  const ln = (x: string) => opsetWanted >= 17 ? g.layerNormOp(x, d) : g.layerNormDecomposed(x, d);
  const inputs: EncoderModel["inputs"] = [];
  const declared = [];
  let out: string;
  let outDims: (number | string)[];
  if (style === "torch") {
    let x = "src";
    inputs.push({ name: x, kind: "float", dims: (b) => [spec.seq, b, d] });
    declared.push(valueInfo(x, DataType.FLOAT, ["S", "N", d]));
    for (let l = 0; l < layers; l++) {
      x = ln(g.op("Add", [x, torchAttention(g, x, d, heads)]));
      x = ln(g.op("Add", [x, feedForward(g, x, d, ff, false)]));
    }
    out = x;
    outDims = ["S", "N", d];
  } else if (style === "bert") {
    inputs.push({ name: "input_ids", kind: "ids", dims: (b) => [b, spec.seq] });
    inputs.push({ name: "attention_mask", kind: "mask", dims: (b) => [b, spec.seq] });
    declared.push(valueInfo("input_ids", DataType.INT64, ["batch", "sequence"]));
    declared.push(valueInfo("attention_mask", DataType.INT64, ["batch", "sequence"]));
    const maxPos = Math.max(512, spec.seq);
    const words = g.f32("word_emb", [VOCAB, d], g.uniform(VOCAB * d, 0.5));
    const pos = g.f32("pos_emb", [maxPos, d], g.uniform(maxPos * d, 0.1));
    const types = g.f32("type_emb", [2, d], g.uniform(2 * d, 0.1));
    // position_ids = buffer[:, :seq]; token_type_ids = zeros buffer[:, :seq] expanded to [N, S].
    const seqLen = g.dim("input_ids", 1);
    const posIds = g.op("Slice", [
      g.i64("position_ids", Array.from({ length: maxPos }, (_, i) => i), [1, maxPos]),
      g.i64("s", [0]),
      seqLen,
      g.i64("ax", [1]),
    ]);
    const typeIds = g.op("Expand", [
      g.op("Slice", [
        g.i64("tt", new Array(maxPos).fill(0), [1, maxPos]),
        g.i64("s", [0]),
        seqLen,
        g.i64("ax", [1]),
      ]),
      g.op("Shape", ["input_ids"]),
    ]);
    let x = g.op("Add", [
      g.op("Add", [g.op("Gather", [words, "input_ids"]), g.op("Gather", [types, typeIds])]),
      g.op("Gather", [pos, posIds]),
    ]);
    x = ln(x);
    // Extended mask: [N, 1, 1, S] → expand [N, 1, S, S] → (1 − m) → where(bool, min, 0).
    const m4 = g.op("Unsqueeze", ["attention_mask", g.i64("axes", [1, 2])]);
    const shape4 = g.concat([g.dim("input_ids", 0), g.i64("c", [1]), seqLen, seqLen]);
    const mf = g.op("Cast", [g.op("Expand", [m4, shape4])], { to: DataType.FLOAT });
    const inv = g.op("Sub", [g.scalar("one", 1), mf]);
    const isMasked = g.op("Cast", [inv], { to: DataType.BOOL });
    const mask = g.op("Where", [isMasked, g.scalar("fmin", -3.4028234663852886e38), inv]);
    for (let l = 0; l < layers; l++) {
      x = ln(g.op("Add", [bertAttention(g, x, mask, d, heads), x]));
      x = ln(g.op("Add", [feedForward(g, x, d, ff, true), x]));
    }
    out = x;
    outDims = ["batch", "sequence", d];
  } else if (style === "vit") {
    if (opsetWanted < 17) {
      throw new ArgumentError("transformer_zoo: vit uses LayerNormalization, opset ≥ 17");
    }
    const patch = 4, img = Math.round(Math.sqrt(spec.seq - 1)) * patch;
    if ((img / patch) ** 2 + 1 !== spec.seq) {
      throw new ArgumentError(`transformer_zoo: vit needs seq = p² + 1, got ${spec.seq}`);
    }
    inputs.push({ name: "pixel_values", kind: "image", dims: (b) => [b, 3, img, img] });
    declared.push(valueInfo("pixel_values", DataType.FLOAT, ["batch", 3, img, img]));
    const fan = 3 * patch * patch;
    const emb = g.op("Conv", [
      "pixel_values",
      g.f32("patch_w", [d, 3, patch, patch], g.uniform(d * fan, Math.sqrt(3 / fan))),
      g.f32("patch_b", [d], g.biasInit(d, fan)),
    ], { kernel_shape: [patch, patch], strides: [patch, patch] });
    const tokens = g.op("Transpose", [
      g.op("Reshape", [emb, g.concat([g.dim(emb, 0), g.dim(emb, 1), g.i64("c", [-1])])]),
    ], { perm: [0, 2, 1] });
    const cls = g.op("Expand", [
      g.f32("cls", [1, 1, d], g.uniform(d, 0.5)),
      g.concat([g.dim("pixel_values", 0), g.i64("c", [1, 1])]),
    ]);
    let x = g.op("Add", [
      g.op("Concat", [cls, tokens], { axis: 1 }),
      g.f32("pos", [1, spec.seq, d], g.uniform(spec.seq * d, 0.1)),
    ]);
    for (let l = 0; l < layers; l++) {
      x = g.op("Add", [x, plainAttention(g, g.layerNormOp(x, d), d, heads)]);
      x = g.op("Add", [x, feedForward(g, g.layerNormOp(x, d), d, ff, true)]);
    }
    const first = g.op("Gather", [g.layerNormOp(x, d), g.i64("idx", [0], [])], { axis: 1 });
    out = g.gemm(first, d, 10);
    outDims = ["batch", 10];
  } else {
    const feat = 28;
    inputs.push({ name: "rows", kind: "image", dims: (b) => [b, spec.seq, feat] });
    declared.push(valueInfo("rows", DataType.FLOAT, ["N", spec.seq, feat]));
    let x = g.op("Add", [
      g.linear("rows", feat, d),
      g.f32("pos", [spec.seq, d], g.uniform(spec.seq * d, 0.5)),
    ]);
    for (let l = 0; l < layers; l++) {
      x = g.layerNormDecomposed(g.op("Add", [x, plainAttention(g, x, d, heads)]), d);
      x = g.layerNormDecomposed(g.op("Add", [x, feedForward(g, x, d, ff, false)]), d);
    }
    const pooled = g.op("ReduceMean", [x], { axes: [1], keepdims: 0 });
    out = g.gemm(pooled, d, 10);
    outDims = ["N", 10];
  }
  const last = g.nodes.findLast((n) => n.output[0] === out)!;
  last.output[0] = "output";
  const bytes = makeModel({
    nodes: g.nodes,
    inputs: declared,
    outputs: [valueInfo("output", DataType.FLOAT, outDims)],
    initializers: g.inits,
    opset: opsetWanted,
    graphName: name,
    producerName: style === "torch" || style === "seq" ? "pytorch" : "transformers",
  });
  return { name, spec, bytes, inputs, outputName: "output" };
}

const cache = new Map<string, EncoderModel>();

/** Builds (once) the encoder for a spec. */
export function encoderModel(spec: EncoderSpec): EncoderModel {
  const key = JSON.stringify(spec);
  let m = cache.get(key);
  if (!m) {
    m = build(spec);
    cache.set(key, m);
  }
  return m;
}

/** Seeded feeds for an encoder at batch b: normal floats, token ids, masks with padding. */
export function encoderFeeds(
  m: EncoderModel,
  b: number,
  seed: number,
): Record<
  string,
  { type: "float32" | "int64"; dims: number[]; data: Float32Array | BigInt64Array }
> {
  const r = zooRng(seed);
  const feeds: ReturnType<typeof encoderFeeds> = {};
  for (const inp of m.inputs) {
    const dims = inp.dims(b);
    const n = dims.reduce((x, y) => x * y, 1);
    if (inp.kind === "ids") {
      feeds[inp.name] = {
        type: "int64",
        dims,
        data: BigInt64Array.from({ length: n }, () => BigInt(Math.floor(r() * VOCAB))),
      };
    } else if (inp.kind === "mask") {
      // Row i keeps its first S − i tokens (at least one): padding at the end, as tokenizers do.
      const s = dims[1];
      feeds[inp.name] = {
        type: "int64",
        dims,
        data: BigInt64Array.from({ length: n }, (_, j) => {
          const row = Math.floor(j / s), col = j % s;
          return col < Math.max(1, s - 3 * row) ? 1n : 0n;
        }),
      };
    } else {
      const u = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
      feeds[inp.name] = {
        type: "float32",
        dims,
        data: Float32Array.from({ length: n }, inp.kind === "image" ? r : u),
      };
    }
  }
  return feeds;
}
