// Compression recipes: what to do to which layer, as JSON or as a preset name.
//
//   {
//     "method": "int8",                       // default for every Conv / Gemm / MatMul
//     "int8": { "activations": "uint8", "calibration": "percentile", "percentile": 99.99,
//               "excludeFirstLast": false },
//     "int4": { "blockSize": 32, "symmetric": true },
//     "layers": { "fc3": { "method": "none" }, "Conv": { "method": "int8" } },  // name or op type
//     "prune": { "sparsity": 0.5, "scope": "global", "pattern": "unstructured" },  // or "2:4"
//     "structured": { "ratio": 0.25, "norm": "l1" },
//     "lowrank": { "energy": 0.95 },          // or { "rank": 16 }
//     "cluster": { "clusters": 32 }
//   }
//
// Presets: int8, int8-dynamic, int4, binary, ternary, prune:<sparsity>, svd:<energy>,
// cluster:<k>. Anything else is an ArgumentError that says what was expected; a recipe is fully
// validated before a model is touched.
import { ArgumentError } from "../errors.ts";

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
}

export interface Int4Options {
  blockSize: 32 | 64 | 128;
  symmetric: boolean;
}

export interface BinaryOptions {
  /** Keep the first and last layers int8 (XNOR-Net's practice). Default true. */
  keepFirstLast: boolean;
}

export interface PruneOptions {
  /** Share of weights set to zero, in [0, 1). */
  sparsity: number;
  /** "global": one magnitude threshold over all layers; "layer": the sparsity per layer. */
  scope: "global" | "layer";
  /** "unstructured", or "N:M" (e.g. "2:4": N zeros kept… see prune.ts) along K. */
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

export interface LayerRecipe {
  method?: Method;
}

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

/** A preset name. */
export function preset(name: string): Recipe {
  const base = (): Recipe => ({
    method: "none",
    int8: { ...DEFAULT_INT8 },
    int4: { blockSize: 32, symmetric: true },
    binary: { keepFirstLast: true },
    layers: {},
  });
  const [kind, arg] = name.split(":", 2);
  const r = base();
  switch (kind) {
    case "int8":
    case "int8-dynamic":
    case "int4":
    case "binary":
    case "ternary":
      if (arg !== undefined) break;
      r.method = kind;
      return r;
    case "prune":
      r.prune = {
        sparsity: num(Number(arg), "prune:<sparsity>", 0, 1),
        scope: "global",
        pattern: "unstructured",
      };
      if (r.prune.sparsity >= 1) throw new ArgumentError("recipe: prune sparsity must be below 1");
      return r;
    case "svd":
      r.lowrank = { energy: num(Number(arg), "svd:<energy>", 0, 1, true) };
      return r;
    case "cluster": {
      const k = Number(arg);
      if (!Number.isInteger(k) || k < 2 || k > 256) {
        throw new ArgumentError(`recipe: cluster:<k> needs an integer k in [2, 256], got '${arg}'`);
      }
      r.cluster = { clusters: k };
      return r;
    }
  }
  throw new ArgumentError(
    `recipe: unknown preset '${name}' (int8, int8-dynamic, int4, binary, ternary, prune:0.9, ` +
      `svd:0.95, cluster:32, or a JSON recipe)`,
  );
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
    ["method", "int8", "int4", "binary", "layers", "prune", "structured", "lowrank", "cluster"],
    "the recipe",
  );
  const r = preset("int8");
  r.method = o.method === undefined ? "none" : oneOf(o.method, METHODS, "method");
  if (o.int8 !== undefined) {
    const i = obj(o.int8, "int8");
    onlyKeys(i, ["activations", "calibration", "percentile", "excludeFirstLast"], "int8");
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
    onlyKeys(i, ["blockSize", "symmetric"], "int4");
    if (i.blockSize !== undefined) {
      if (i.blockSize !== 32 && i.blockSize !== 64 && i.blockSize !== 128) {
        throw new ArgumentError(
          `recipe: int4.blockSize must be 32, 64 or 128, got ${JSON.stringify(i.blockSize)}`,
        );
      }
      r.int4.blockSize = i.blockSize;
    }
    if (i.symmetric !== undefined) r.int4.symmetric = bool(i.symmetric, "int4.symmetric");
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
    for (const [name, v] of Object.entries(l)) {
      const lr = obj(v, `layers.${name}`);
      onlyKeys(lr, ["method"], `layers.${name}`);
      r.layers[name] = { method: oneOf(lr.method, METHODS, `layers.${name}.method`) };
    }
  }
  if (o.prune !== undefined) {
    const p = obj(o.prune, "prune");
    onlyKeys(p, ["sparsity", "scope", "pattern"], "prune");
    const pattern = p.pattern === undefined ? "unstructured" : String(p.pattern);
    if (pattern !== "unstructured") {
      const m = pattern.match(/^(\d+):(\d+)$/);
      if (!m || Number(m[1]) < 1 || Number(m[1]) >= Number(m[2]) || Number(m[2]) > 32) {
        throw new ArgumentError(
          `recipe: prune.pattern must be "unstructured" or "N:M" with 0 < N < M ≤ 32, got ${
            JSON.stringify(p.pattern)
          }`,
        );
      }
    }
    r.prune = {
      sparsity: pattern === "unstructured" ? num(p.sparsity, "prune.sparsity", 0, 0.999) : 0,
      scope: p.scope === undefined
        ? "global"
        : oneOf(p.scope, ["global", "layer"] as const, "prune.scope"),
      pattern,
    };
  }
  if (o.structured !== undefined) {
    const s = obj(o.structured, "structured");
    onlyKeys(s, ["ratio", "norm"], "structured");
    r.structured = {
      ratio: num(s.ratio, "structured.ratio", 0, 0.95),
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
  return r;
}

/** The method for a node: an override by node name, then by op type, then the default. */
export function methodFor(r: Recipe, name: string, op: string): Method {
  return r.layers[name]?.method ?? r.layers[op]?.method ?? r.method;
}
