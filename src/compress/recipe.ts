// Compression recipes: what to do to which layer, as JSON or as a preset name.
//
//   {
//     "method": "int8",                       // default for every Conv / Gemm / MatMul
//     "int8": { "activations": "uint8", "calibration": "percentile", "percentile": 99.99,
//               "excludeFirstLast": false, "weightBits": 8 },
//     "int4": { "blockSize": 32, "symmetric": true, "format": "sqz" },  // or "matmulnbits"
//     "layers": { "fc3": { "method": "none" }, "Conv": { "method": "int8" } },  // name or op type
//     "prune": { "sparsity": 0.5, "scope": "global" },  // or { "pattern": "2:4" }, not both
//     "structured": { "ratio": 0.25, "norm": "l1" },
//     "lowrank": { "energy": 0.95 },          // or { "rank": 16 }
//     "cluster": { "clusters": 32 }
//   }
//
// Per-layer overrides ("layers", keyed by node name or op type) set any of, for that layer:
//   method                      quantization, as the global "method"
//   sparsity | pattern          magnitude pruning to that sparsity in [0, 0.999] (0 = not pruned,
//                               even when "prune" applies), or N:M ("2:4"); not both
//   clusters                    weight clustering to k in [2, 256] shared values (0 = none)
//   rank | energy               low-rank factorization (rank 0 = not factored); not both
//   structured                  structured pruning ratio in [0, 0.95] (0 = filters kept)
//   weightBits                  int8 weight precision, 2..8 (as int8.weightBits)
// Each setting is resolved on its own (settingsFor): the node's own entry, then its op type's,
// then the global section, so { "Gemm": { "sparsity": 0.5 }, "fc1": { "method": "int4" } }
// prunes fc1 to 50% and makes it int4. The two factors of a low-rank layer ("fc1::lowrank" and
// "fc1") both follow fc1's entry. A recipe may have per-layer settings only: then only those
// layers get the pass ({ "layers": { "fc1": { "sparsity": 0.9 } } } prunes fc1 alone).
// Settings that cannot meet in one entry are errors: binary keeps only the weights' signs, so
// nothing else combines with it; ternary combines with pruning only (its zeros stay zero).
// When they meet across entries or with a global section, the pass leaves the layer alone and
// says so in its notes.
//
// int4.format: "sqz" (default) stores each weight as an ai.sqz.DequantizeInt4 decoder the layer
// reads (any Conv / Gemm / MatMul; sqz folds it at load); "matmulnbits" turns each MatMul / Gemm
// into onnxruntime's com.microsoft.MatMulNBits (4 bits, blocks along K), which both sqz and
// onnxruntime run. A layer sent to int4 that MatMulNBits cannot express (a Conv, Gemm with
// transA, a batched weight) makes compress() an ArgumentError: give it another method.
//
// int8.weightBits (2..8, default 8): int8 weights use only ±(2^(bits−1) − 1), symmetric per
// channel, and the activations stay 8-bit. 7 is onnxruntime's reduce_range; ≤ 7 makes sqz's
// packer take the 7-bit GEMM (one relaxed dot per 16 multiply-adds); ≤ 4 also stores the
// static weights as ONNX int4 (DequantizeLinear-21, so the model is converted to opset 21),
// half the bytes of int8. Dynamic int8 keeps int8 storage (MatMulInteger takes no int4).
//
// Presets: int8, int8:w<bits> (int8 with that weightBits; int8:w7 = reduce_range),
// int8-dynamic, int8-dynamic:w<bits>, int4, int4:matmulnbits, binary, ternary, prune:<sparsity>,
// svd:<energy>, cluster:<k>. Anything else is an ArgumentError that says what was expected; a
// recipe is fully validated before a model is touched.
import { ArgumentError } from "../errors.ts";
import type { FinetuneConfig } from "../train/types.ts";

export type Method = "none" | "int8" | "int8-dynamic" | "int4" | "binary" | "ternary";
export const METHODS: readonly Method[] = [
  "none",
  "int8",
  "int8-dynamic",
  "int4",
  "binary",
  "ternary",
];
export type CalibrationMethod = "minmax" | "percentile" | "entropy" | "mse";

export interface Int8Options {
  /** Activation dtype (asymmetric, per tensor). Default uint8, as onnxruntime. */
  activations: "uint8" | "int8";
  calibration: CalibrationMethod;
  /** For "percentile": the share of |values| kept inside the range, in percent. */
  percentile: number;
  /** Keep the first and the last quantizable layer in float. */
  excludeFirstLast: boolean;
  /** Weight precision, 2..8 (absent = 8); see the top of this file. */
  weightBits?: number;
}

export type Int4Format = "sqz" | "matmulnbits";
export const INT4_FORMATS: readonly Int4Format[] = ["sqz", "matmulnbits"];

export interface Int4Options {
  blockSize: 32 | 64 | 128;
  symmetric: boolean;
  /**
   * How int4 weights are stored: "sqz" (absent = this) as ai.sqz.DequantizeInt4 decoders,
   * "matmulnbits" as onnxruntime's com.microsoft.MatMulNBits (MatMul / Gemm only).
   */
  format?: Int4Format;
}

export interface BinaryOptions {
  /** Keep the first and last layers int8 (XNOR-Net's practice). Default true. */
  keepFirstLast: boolean;
}

export interface PruneOptions {
  /**
   * Share of weights set to zero, in [0, 0.999], for "unstructured"; absent with an N:M
   * pattern (which fixes the sparsity itself).
   */
  sparsity?: number;
  /**
   * "global": one magnitude threshold over all layers; "layer": the sparsity per layer. Layers
   * with their own sparsity or pattern (recipe.layers) are pruned to it in either scope.
   */
  scope: "global" | "layer";
  /** "unstructured", or "N:M" (e.g. "2:4": N non-zeros kept of every M, see prune.ts) along K. */
  pattern: string;
}

export interface StructuredOptions {
  /** Share of output channels (filters) removed per layer, in [0, 1). */
  ratio: number;
  norm: "l1" | "l2";
}

export interface LowRankOptions {
  rank?: number;
  /** Share of the squared singular values kept, in (0, 1]. */
  energy?: number;
}

export interface ClusterOptions {
  /** Shared values per layer, 2..256. */
  clusters: number;
}

/** A per-layer override (see the top of this file); every field is optional. */
export interface LayerRecipe {
  method?: Method;
  /** Unstructured magnitude pruning of this layer, [0, 0.999]; 0 = not pruned. */
  sparsity?: number;
  /** N:M pruning of this layer ("2:4"). */
  pattern?: string;
  /** Shared weight values, 2..256; 0 = not clustered. */
  clusters?: number;
  /** Low-rank factorization to this rank; 0 = not factored. */
  rank?: number;
  /** Low-rank factorization keeping this share of Σσ², (0, 1]. */
  energy?: number;
  /** Structured pruning: share of output channels removed, [0, 0.95]; 0 = filters kept. */
  structured?: number;
  /** int8 weight precision of this layer, 2..8. */
  weightBits?: number;
}

export const LAYER_KEYS: readonly (keyof LayerRecipe)[] = [
  "method",
  "sparsity",
  "pattern",
  "clusters",
  "rank",
  "energy",
  "structured",
  "weightBits",
];

/** Highest sparsity a recipe may ask for (a layer keeps at least 0.1% of its weights). */
export const MAX_SPARSITY = 0.999;
/** Highest structured-pruning ratio. */
export const MAX_STRUCTURED = 0.95;
/** The first factor of a low-rank layer is named after the layer with this suffix. */
export const LOWRANK_SUFFIX = "::lowrank";

export interface Recipe {
  method: Method;
  int8: Int8Options;
  int4: Int4Options;
  binary: BinaryOptions;
  layers: Record<string, LayerRecipe>;
  prune?: PruneOptions;
  structured?: StructuredOptions;
  lowrank?: LowRankOptions;
  cluster?: ClusterOptions;
  /** Fine-tuning after the structural passes, against the simulated compression (train/). */
  finetune?: FinetuneConfig;
}

const DEFAULT_INT8: Int8Options = {
  activations: "uint8",
  calibration: "percentile",
  percentile: 99.99,
  excludeFirstLast: false,
};

function obj(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ArgumentError(`recipe: ${where} must be an object`);
  }
  return v as Record<string, unknown>;
}

function onlyKeys(o: Record<string, unknown>, keys: string[], where: string): void {
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) {
      throw new ArgumentError(
        `recipe: unknown key '${k}' in ${where} (expected ${keys.join(", ")})`,
      );
    }
  }
}

function oneOf<T extends string>(v: unknown, options: readonly T[], where: string): T {
  if (!options.includes(v as T)) {
    throw new ArgumentError(
      `recipe: ${where} must be one of ${options.join(", ")}, got ${JSON.stringify(v)}`,
    );
  }
  return v as T;
}

function num(v: unknown, where: string, lo: number, hi: number, loOpen = false): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v > hi || (loOpen ? v <= lo : v < lo)) {
    throw new ArgumentError(
      `recipe: ${where} must be a number in ${loOpen ? "(" : "["}${lo}, ${hi}], got ${
        JSON.stringify(v)
      }`,
    );
  }
  return v;
}

function bool(v: unknown, where: string): boolean {
  if (typeof v !== "boolean") throw new ArgumentError(`recipe: ${where} must be true or false`);
  return v;
}

/**
 * A preset's numeric argument: a plain decimal number (no empty string, spaces, hex or
 * "Infinity", which Number() would accept).
 */
function presetNumber(arg: string | undefined): number {
  return arg !== undefined && /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(arg) ? Number(arg) : NaN;
}

/** A preset name; `<preset>+ft` adds fine-tuning with the defaults for its method. */
export function preset(name: string): Recipe {
  if (name.endsWith("+ft")) {
    const r = preset(name.slice(0, -3));
    r.finetune = parseFinetune({}, r);
    return r;
  }
  const base = (): Recipe => ({
    method: "none",
    int8: { ...DEFAULT_INT8 },
    int4: { blockSize: 32, symmetric: true },
    binary: { keepFirstLast: true },
    layers: {},
  });
  // Only the first ':' splits: "prune:0.9:1" has the argument "0.9:1", which is refused.
  const colon = name.indexOf(":");
  const kind = colon < 0 ? name : name.slice(0, colon);
  const arg = colon < 0 ? undefined : name.slice(colon + 1);
  const r = base();
  switch (kind) {
    case "int4":
      if (arg === "matmulnbits") {
        r.method = kind;
        r.int4.format = "matmulnbits";
        return r;
      }
      if (arg !== undefined) break;
      r.method = kind;
      return r;
    case "int8":
    case "int8-dynamic": {
      if (arg === undefined) {
        r.method = kind;
        return r;
      }
      const m = /^w([2-8])$/.exec(arg);
      if (!m) {
        throw new ArgumentError(
          `recipe: ${kind}:w<bits> needs bits in 2..8 (int8:w7 is reduce_range), got '${arg}'`,
        );
      }
      r.method = kind;
      r.int8.weightBits = Number(m[1]);
      return r;
    }
    case "binary":
    case "ternary":
      if (arg !== undefined) break;
      r.method = kind;
      return r;
    case "prune": {
      const s = presetNumber(arg);
      if (!(s >= 0 && s <= MAX_SPARSITY)) {
        throw new ArgumentError(
          `recipe: prune:<sparsity> needs a number in [0, ${MAX_SPARSITY}], got '${arg ?? ""}'`,
        );
      }
      r.prune = { sparsity: s, scope: "global", pattern: "unstructured" };
      return r;
    }
    case "svd": {
      const e = presetNumber(arg);
      if (!(e > 0 && e <= 1)) {
        throw new ArgumentError(
          `recipe: svd:<energy> needs a number in (0, 1], got '${arg ?? ""}'`,
        );
      }
      r.lowrank = { energy: e };
      return r;
    }
    case "cluster": {
      const k = presetNumber(arg);
      if (!Number.isInteger(k) || k < 2 || k > 256) {
        throw new ArgumentError(
          `recipe: cluster:<k> needs an integer k in [2, 256], got '${arg ?? ""}'`,
        );
      }
      r.cluster = { clusters: k };
      return r;
    }
  }
  throw new ArgumentError(
    `recipe: unknown preset '${name}' (int8, int8-dynamic, int4, int4:matmulnbits, binary, ` +
      `ternary, prune:0.9, svd:0.95, cluster:32, any of them with +ft to fine-tune, or a JSON ` +
      `recipe)`,
  );
}

/** "N:M" with 0 < N < M ≤ 32, or undefined when `v` is not such a string. */
function nmPattern(v: unknown): { n: number; m: number } | undefined {
  const match = typeof v === "string" ? v.match(/^(\d+):(\d+)$/) : null;
  const n = match ? Number(match[1]) : NaN, m = match ? Number(match[2]) : NaN;
  return match && n >= 1 && n < m && m <= 32 ? { n, m } : undefined;
}

function bits(v: unknown, where: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 2 || v > 8) {
    throw new ArgumentError(
      `recipe: ${where} must be an integer in 2..8 (int8 weight bits), got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function nonNegInt(v: unknown, where: string, lo: number, hi: number, zero: string): number {
  if (v === 0) return 0;
  if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) {
    throw new ArgumentError(
      `recipe: ${where} must be 0 (${zero}) or an integer in [${lo}, ${hi}], got ${
        JSON.stringify(v)
      }`,
    );
  }
  return v;
}

/** Validates one per-layer override (see the top of this file). */
export function parseLayerRecipe(v: unknown, name: string): LayerRecipe {
  const where = `layers.${name}`;
  const o = obj(v, where);
  onlyKeys(o, LAYER_KEYS as string[], where);
  const lr: LayerRecipe = {};
  if (o.method !== undefined) lr.method = oneOf(o.method, METHODS, `${where}.method`);
  if (o.sparsity !== undefined) {
    lr.sparsity = num(o.sparsity, `${where}.sparsity`, 0, MAX_SPARSITY);
  }
  if (o.pattern !== undefined) {
    if (!nmPattern(o.pattern)) {
      throw new ArgumentError(
        `recipe: ${where}.pattern must be "N:M" with 0 < N < M ≤ 32 (N non-zeros kept of ` +
          `every M), got ${JSON.stringify(o.pattern)}`,
      );
    }
    lr.pattern = o.pattern as string;
  }
  if (lr.sparsity !== undefined && lr.pattern !== undefined) {
    throw new ArgumentError(
      `recipe: ${where} sets both sparsity and pattern, which conflict (an N:M pattern fixes ` +
        `the sparsity at 1 − N/M); give one`,
    );
  }
  if (o.clusters !== undefined) {
    lr.clusters = nonNegInt(o.clusters, `${where}.clusters`, 2, 256, "not clustered");
  }
  if (o.rank !== undefined && o.energy !== undefined) {
    throw new ArgumentError(`recipe: ${where} sets both rank and energy; give one`);
  }
  if (o.rank !== undefined) {
    lr.rank = nonNegInt(o.rank, `${where}.rank`, 1, 1 << 20, "not factored");
  }
  if (o.energy !== undefined) lr.energy = num(o.energy, `${where}.energy`, 0, 1, true);
  if (o.structured !== undefined) {
    lr.structured = num(o.structured, `${where}.structured`, 0, MAX_STRUCTURED);
  }
  if (o.weightBits !== undefined) lr.weightBits = bits(o.weightBits, `${where}.weightBits`);
  if (!Object.keys(lr).length) {
    throw new ArgumentError(
      `recipe: ${where} sets nothing (give any of ${LAYER_KEYS.join(", ")})`,
    );
  }
  // What one entry cannot ask for at once: binary keeps only signs (pruned zeros would become
  // +1, shared values and factors are lost); ternary has its own three levels per channel.
  const asked = [
    lr.sparsity ? "sparsity" : "",
    lr.pattern ? "pattern" : "",
    lr.clusters ? "clusters" : "",
    lr.rank ? "rank" : "",
    lr.energy ? "energy" : "",
    lr.structured ? "structured" : "",
  ].filter((k) => k && !(lr.method === "ternary" && (k === "sparsity" || k === "pattern")));
  if ((lr.method === "binary" || lr.method === "ternary") && asked.length) {
    throw new ArgumentError(
      `recipe: ${where}: ${asked.join(", ")} does not combine with method "${lr.method}" (` +
        (lr.method === "binary"
          ? "binary keeps only the weights' signs"
          : "ternary combines with pruning only") +
        ")",
    );
  }
  return lr;
}

/** Validates a recipe given as an object (parsed JSON) and fills in the defaults. */
export function parseRecipe(input: unknown): Recipe {
  if (typeof input === "string") {
    const s = input.trim();
    if (!s.startsWith("{")) return preset(s);
    let parsed: unknown;
    try {
      parsed = JSON.parse(s);
    } catch (e) {
      throw new ArgumentError(`recipe: not valid JSON: ${(e as Error).message}`);
    }
    return parseRecipe(parsed);
  }
  const o = obj(input, "the recipe");
  onlyKeys(
    o,
    [
      "method",
      "int8",
      "int4",
      "binary",
      "layers",
      "prune",
      "structured",
      "lowrank",
      "cluster",
      "finetune",
    ],
    "the recipe",
  );
  const r = preset("int8");
  r.method = o.method === undefined ? "none" : oneOf(o.method, METHODS, "method");
  if (o.int8 !== undefined) {
    const i = obj(o.int8, "int8");
    onlyKeys(
      i,
      ["activations", "calibration", "percentile", "excludeFirstLast", "weightBits"],
      "int8",
    );
    if (i.weightBits !== undefined) r.int8.weightBits = bits(i.weightBits, "int8.weightBits");
    if (i.activations !== undefined) {
      r.int8.activations = oneOf(i.activations, ["uint8", "int8"] as const, "int8.activations");
    }
    if (i.calibration !== undefined) {
      r.int8.calibration = oneOf(
        i.calibration,
        ["minmax", "percentile", "entropy", "mse"] as const,
        "int8.calibration",
      );
    }
    if (i.percentile !== undefined) {
      r.int8.percentile = num(i.percentile, "int8.percentile", 50, 100);
    }
    if (i.excludeFirstLast !== undefined) {
      r.int8.excludeFirstLast = bool(i.excludeFirstLast, "int8.excludeFirstLast");
    }
  }
  if (o.int4 !== undefined) {
    const i = obj(o.int4, "int4");
    onlyKeys(i, ["blockSize", "symmetric", "format"], "int4");
    if (i.blockSize !== undefined) {
      if (i.blockSize !== 32 && i.blockSize !== 64 && i.blockSize !== 128) {
        throw new ArgumentError(
          `recipe: int4.blockSize must be 32, 64 or 128, got ${JSON.stringify(i.blockSize)}`,
        );
      }
      r.int4.blockSize = i.blockSize;
    }
    if (i.symmetric !== undefined) r.int4.symmetric = bool(i.symmetric, "int4.symmetric");
    if (i.format !== undefined) r.int4.format = oneOf(i.format, INT4_FORMATS, "int4.format");
  }
  if (o.binary !== undefined) {
    const b = obj(o.binary, "binary");
    onlyKeys(b, ["keepFirstLast"], "binary");
    if (b.keepFirstLast !== undefined) {
      r.binary.keepFirstLast = bool(b.keepFirstLast, "binary.keepFirstLast");
    }
  }
  if (o.layers !== undefined) {
    const l = obj(o.layers, "layers");
    for (const [name, v] of Object.entries(l)) r.layers[name] = parseLayerRecipe(v, name);
  }
  if (o.prune !== undefined) {
    const p = obj(o.prune, "prune");
    onlyKeys(p, ["sparsity", "scope", "pattern"], "prune");
    const pattern = p.pattern === undefined ? "unstructured" : p.pattern;
    if (pattern !== "unstructured" && !nmPattern(pattern)) {
      throw new ArgumentError(
        `recipe: prune.pattern must be "unstructured" or "N:M" with 0 < N < M ≤ 32, got ${
          JSON.stringify(p.pattern)
        }`,
      );
    }
    const scope = p.scope === undefined
      ? "global"
      : oneOf(p.scope, ["global", "layer"] as const, "prune.scope");
    if (pattern === "unstructured") {
      r.prune = {
        sparsity: num(p.sparsity, "prune.sparsity", 0, MAX_SPARSITY),
        scope,
        pattern,
      };
    } else {
      if (p.sparsity !== undefined) {
        throw new ArgumentError(
          `recipe: prune.sparsity and prune.pattern ${
            JSON.stringify(pattern)
          } conflict (an N:M pattern fixes the sparsity at 1 − N/M); give one`,
        );
      }
      r.prune = { scope, pattern: pattern as string };
    }
  }
  if (o.structured !== undefined) {
    const s = obj(o.structured, "structured");
    onlyKeys(s, ["ratio", "norm"], "structured");
    r.structured = {
      ratio: num(s.ratio, "structured.ratio", 0, MAX_STRUCTURED),
      norm: s.norm === undefined ? "l1" : oneOf(s.norm, ["l1", "l2"] as const, "structured.norm"),
    };
  }
  if (o.lowrank !== undefined) {
    const s = obj(o.lowrank, "lowrank");
    onlyKeys(s, ["rank", "energy"], "lowrank");
    if ((s.rank === undefined) === (s.energy === undefined)) {
      throw new ArgumentError("recipe: lowrank needs exactly one of rank, energy");
    }
    r.lowrank = s.rank !== undefined
      ? { rank: num(s.rank, "lowrank.rank", 1, 1 << 20) }
      : { energy: num(s.energy, "lowrank.energy", 0, 1, true) };
    if (r.lowrank.rank !== undefined && !Number.isInteger(r.lowrank.rank)) {
      throw new ArgumentError("recipe: lowrank.rank must be an integer");
    }
  }
  if (o.cluster !== undefined) {
    const c = obj(o.cluster, "cluster");
    onlyKeys(c, ["clusters"], "cluster");
    const k = num(c.clusters, "cluster.clusters", 2, 256);
    if (!Number.isInteger(k)) {
      throw new ArgumentError("recipe: cluster.clusters must be an integer");
    }
    r.cluster = { clusters: k };
  }
  if (o.finetune !== undefined) r.finetune = parseFinetune(o.finetune, r);
  return r;
}

const FINETUNE_KEYS = [
  "epochs",
  "batchSize",
  "optimizer",
  "lr",
  "momentum",
  "weightDecay",
  "schedule",
  "stepEpochs",
  "gamma",
  "warmupEpochs",
  "clipNorm",
  "seed",
  "distill",
  "earlyStopping",
  "augment",
];

/**
 * The fine-tuning defaults for what a recipe does. Chosen on the MNIST reference models and
 * checked on models trained elsewhere (a PyTorch-style CNN with BatchNorm): binary networks
 * need the most epochs and the largest steps (their latent weights must cross zero); QAT of
 * int8 / int4 only nudges weights across rounding boundaries, so a few epochs at a small rate.
 */
export function defaultFinetune(r: Recipe): FinetuneConfig {
  const methods = new Set([r.method, ...Object.values(r.layers).map((l) => l.method)]);
  const base: FinetuneConfig = {
    epochs: 4,
    batchSize: 64,
    optimizer: "adam",
    lr: 1e-4,
    momentum: 0.9,
    weightDecay: 0,
    schedule: "cosine",
    stepEpochs: 1,
    gamma: 0.1,
    warmupEpochs: 0,
    clipNorm: 0,
    seed: 0,
  };
  // Distillation from the float model (Hinton's soft targets at T = 4, mostly) by default: it
  // keeps a compressed model close to what the float one computes instead of letting it overfit
  // a small training set (MNIST CNN: binary about 96% → 97.05%, int8 QAT 98.20% → 98.45%).
  // `"distill": false` trains on the labels alone.
  const distill = { temperature: 4, alpha: 0.9 };
  if (methods.has("binary")) return { ...base, epochs: 20, lr: 2e-3, distill };
  if (methods.has("ternary")) return { ...base, epochs: 6, lr: 5e-4, distill };
  if (
    r.prune || r.structured ||
    Object.values(r.layers).some((l) => l.sparsity || l.pattern || l.structured)
  ) {
    return { ...base, epochs: 8, lr: 5e-4, distill };
  }
  return { ...base, distill };
}

/** Validates a recipe's `finetune` block over the defaults for the recipe. */
export function parseFinetune(v: unknown, r: Recipe): FinetuneConfig {
  const o = obj(v, "finetune");
  onlyKeys(o, FINETUNE_KEYS, "finetune");
  const f = defaultFinetune(r);
  const int = (x: unknown, where: string, lo: number, hi: number) => {
    const n = num(x, where, lo, hi);
    if (!Number.isInteger(n)) throw new ArgumentError(`recipe: ${where} must be an integer`);
    return n;
  };
  if (o.epochs !== undefined) f.epochs = int(o.epochs, "finetune.epochs", 1, 10000);
  if (o.batchSize !== undefined) f.batchSize = int(o.batchSize, "finetune.batchSize", 1, 65536);
  if (o.optimizer !== undefined) {
    f.optimizer = oneOf(o.optimizer, ["sgd", "adam", "adamw"] as const, "finetune.optimizer");
  }
  if (o.lr !== undefined) f.lr = num(o.lr, "finetune.lr", 0, 10, true);
  if (o.momentum !== undefined) f.momentum = num(o.momentum, "finetune.momentum", 0, 0.9999);
  if (o.weightDecay !== undefined) f.weightDecay = num(o.weightDecay, "finetune.weightDecay", 0, 1);
  if (o.schedule !== undefined) {
    f.schedule = oneOf(o.schedule, ["constant", "cosine", "step"] as const, "finetune.schedule");
  }
  if (o.stepEpochs !== undefined) {
    f.stepEpochs = num(o.stepEpochs, "finetune.stepEpochs", 0, 1e4, true);
  }
  if (o.gamma !== undefined) f.gamma = num(o.gamma, "finetune.gamma", 0, 1, true);
  if (o.warmupEpochs !== undefined) {
    f.warmupEpochs = num(o.warmupEpochs, "finetune.warmupEpochs", 0, f.epochs);
  }
  if (o.clipNorm !== undefined) f.clipNorm = num(o.clipNorm, "finetune.clipNorm", 0, 1e6);
  if (o.seed !== undefined) f.seed = int(o.seed, "finetune.seed", 0, 2 ** 32 - 1);
  if (o.distill === false || o.distill === null) delete f.distill;
  else if (o.distill !== undefined) {
    const d = o.distill === true ? {} : obj(o.distill, "finetune.distill");
    onlyKeys(d, ["temperature", "alpha"], "finetune.distill");
    f.distill = {
      temperature: d.temperature === undefined
        ? 4
        : num(d.temperature, "finetune.distill.temperature", 0, 100, true),
      alpha: d.alpha === undefined ? 0.7 : num(d.alpha, "finetune.distill.alpha", 0, 1),
    };
  }
  if (o.augment !== undefined && o.augment !== null && o.augment !== false) {
    const a = obj(o.augment, "finetune.augment");
    onlyKeys(a, ["shift", "layout"], "finetune.augment");
    const shift = num(a.shift, "finetune.augment.shift", 0, 64);
    if (!Number.isInteger(shift)) {
      throw new ArgumentError("recipe: finetune.augment.shift must be an integer");
    }
    f.augment = {
      shift,
      layout: a.layout === undefined
        ? "nchw"
        : oneOf(a.layout, ["nchw", "nhwc"] as const, "finetune.augment.layout"),
    };
  }
  if (o.earlyStopping !== undefined && o.earlyStopping !== null) {
    const e = obj(o.earlyStopping, "finetune.earlyStopping");
    onlyKeys(e, ["patience", "minDelta"], "finetune.earlyStopping");
    f.earlyStopping = {
      patience: e.patience === undefined
        ? 3
        : int(e.patience, "finetune.earlyStopping.patience", 0, 1000),
      minDelta: e.minDelta === undefined
        ? 0
        : num(e.minDelta, "finetune.earlyStopping.minDelta", 0, 1),
    };
  }
  return f;
}

/**
 * The overrides that apply to a node, most specific first: its own entry (a low-rank factor
 * "x::lowrank" uses x's), then its op type's.
 */
function overrides(r: Recipe, name: string, op: string): LayerRecipe[] {
  let own = r.layers[name];
  if (!own && name.endsWith(LOWRANK_SUFFIX)) own = r.layers[name.slice(0, -LOWRANK_SUFFIX.length)];
  const byOp = r.layers[op];
  return own && byOp && own !== byOp ? [own, byOp] : own ? [own] : byOp ? [byOp] : [];
}

/** The method for a node: an override by node name, then by op type, then the default. */
/** The int8 weight bits of a node (its override, then the int8 section; 8 by default). */
export function weightBitsFor(r: Recipe, name: string, op: string): number {
  for (const o of overrides(r, name, op)) if (o.weightBits !== undefined) return o.weightBits;
  return r.int8.weightBits ?? 8;
}

export function methodFor(r: Recipe, name: string, op: string): Method {
  for (const o of overrides(r, name, op)) if (o.method !== undefined) return o.method;
  return r.method;
}

/** What a node gets from a recipe besides its quantization method (see settingsFor). */
export interface LayerSettings {
  method: Method;
  /**
   * Magnitude pruning: `sparsity` (unstructured) or `pattern` (N:M); undefined: not pruned.
   * `own`: set by a layers entry (so global scope prunes the layer to it, outside the pooled
   * threshold) rather than by the "prune" section.
   */
  prune?: { sparsity?: number; pattern?: string; own: boolean };
  /** Shared values; undefined: not clustered. */
  clusters?: number;
  /** Low-rank target; undefined: not factored. */
  lowrank?: LowRankOptions;
  /** Structured-pruning ratio (> 0); undefined: filters kept. */
  structured?: number;
}

/**
 * The effective settings of a node: each one from the node's own override, else its op type's,
 * else the recipe's global section. A 0 in an override (sparsity, clusters, rank, structured)
 * turns the pass off for the layer, whatever the global section says.
 */
export function settingsFor(r: Recipe, name: string, op: string): LayerSettings {
  const os = overrides(r, name, op);
  const s: LayerSettings = { method: methodFor(r, name, op) };
  const pr = os.find((o) => o.sparsity !== undefined || o.pattern !== undefined);
  if (pr) {
    if (pr.pattern !== undefined) s.prune = { pattern: pr.pattern, own: true };
    else if (pr.sparsity! > 0) s.prune = { sparsity: pr.sparsity, own: true };
  } else if (r.prune) {
    s.prune = r.prune.pattern !== "unstructured"
      ? { pattern: r.prune.pattern, own: false }
      : { sparsity: r.prune.sparsity, own: false };
  }
  const cl = os.find((o) => o.clusters !== undefined);
  const k = cl ? cl.clusters : r.cluster?.clusters;
  if (k) s.clusters = k;
  const lr = os.find((o) => o.rank !== undefined || o.energy !== undefined);
  if (lr) {
    if (lr.energy !== undefined) s.lowrank = { energy: lr.energy };
    else if (lr.rank! > 0) s.lowrank = { rank: lr.rank };
  } else if (r.lowrank) s.lowrank = { ...r.lowrank };
  const st = os.find((o) => o.structured !== undefined);
  const ratio = st ? st.structured : r.structured?.ratio;
  if (ratio) s.structured = ratio;
  return s;
}

export type WeightPassName = "prune" | "cluster" | "lowrank" | "structured";

/**
 * Whether a recipe asks for a weight pass at all: its global section, or a layer override that
 * turns it on (a recipe may have per-layer settings only).
 */
export function usesPass(r: Recipe, pass: WeightPassName): boolean {
  if (pass === "structured" ? r.structured : pass === "cluster" ? r.cluster : r[pass]) return true;
  return Object.values(r.layers ?? {}).some((o) =>
    pass === "prune"
      ? !!o.sparsity || o.pattern !== undefined
      : pass === "cluster"
      ? !!o.clusters
      : pass === "lowrank"
      ? !!o.rank || o.energy !== undefined
      : !!o.structured
  );
}

/**
 * Validates a recipe's per-layer overrides as parseRecipe does: for passes called with a recipe
 * that did not come from parseRecipe.
 */
export function checkLayerRecipes(r: Recipe): void {
  if (typeof r.layers !== "object" || r.layers === null || Array.isArray(r.layers)) {
    throw new ArgumentError("recipe: layers must be an object");
  }
  for (const [name, v] of Object.entries(r.layers)) parseLayerRecipe(v, name);
}
