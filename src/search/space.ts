// The search space: which layers a search may compress and how (the Choice labels of
// types.ts), derived from the model; the mapping of an Assignment to a compress() recipe; and
// the canonical hash of a recipe (the trial cache key).
//
// Default choices per layer (searchable = Conv / Gemm / MatMul with a constant weight):
//   every layer           float, int8 (static, with calibration data) or int8-dynamic (without),
//                         and the same with 7-bit weights (int8:w7, the faster 7-bit GEMM)
//   params ≥ 2,048        int4, prune:0.5/0.7/0.9, cluster:16, prune:0.5+int8(-dynamic);
//                         with calibration data int8:w4 (int4 weights, 8-bit activations: half
//                         of int8's bytes on int8 kernels)
//   Gemm/MatMul, K % 4 = 0, params ≥ 2,048      nm:2:4
//   Gemm/MatMul, min(K, N) ≥ 32                 lowrank:0.9
//   Conv/Gemm, K ≥ 64, not the first or last layer   ternary, binary
//   Conv/Gemm, not the last layer, ≥ 8 outputs  structured:0.25/0.5
// Tiny layers (< 2,048 weights) get float and int8 only: nothing else pays for its error.
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { ArgumentError } from "../errors.ts";
import { importModel } from "../onnx/import.ts";
import { inspectGraph } from "../inspect.ts";
import { type LayerRecipe, parseRecipe, type Recipe } from "../compress/recipe.ts";
import type { Assignment, Choice, SearchSpace, SpaceSpec } from "./types.ts";

export const METHOD_FAMILIES = [
  "int8",
  "int8-dynamic",
  "int4",
  "ternary",
  "binary",
  "prune",
  "nm",
  "structured",
  "lowrank",
  "cluster",
] as const;
export type Family = typeof METHOD_FAMILIES[number];

const TINY = 2048;

/** The family of each "+" part of a choice ("prune:0.5+int8" → ["prune", "int8"]). */
export function choiceFamilies(c: Choice): string[] {
  return c.split("+").map((p) => p.split(":")[0]);
}

/** Validates one choice label and returns its per-layer recipe entry. */
export function parseChoice(c: Choice, where = "choice"): LayerRecipe {
  if (typeof c !== "string" || !c) {
    throw new ArgumentError(
      `search: ${where} must be a non-empty string, got ${JSON.stringify(c)}`,
    );
  }
  const lr: LayerRecipe = {};
  const bad = (why: string) =>
    new ArgumentError(
      `search: ${where} '${c}': ${why} (choices: float, int8, int8-dynamic, ` +
        `int8:w<bits>, int8-dynamic:w<bits>, int4, ternary, binary, prune:<s>, nm:<n>:<m>, ` +
        `structured:<r>, lowrank:<e>, cluster:<k>, ` +
        `and "+" combinations)`,
    );
  const num = (s: string | undefined) =>
    s !== undefined && /^(\d+\.?\d*|\.\d+)$/.test(s) ? Number(s) : NaN;
  for (const part of c.split("+")) {
    const [kind, ...args] = part.split(":");
    const set = (k: keyof LayerRecipe, v: unknown) => {
      if (lr[k] !== undefined) throw bad(`sets ${k} twice`);
      (lr as Record<string, unknown>)[k] = v;
    };
    switch (kind) {
      case "float":
        if (args.length || c !== "float") throw bad("float combines with nothing");
        set("method", "none");
        break;
      case "int8":
      case "int8-dynamic": {
        if (args.length > 1 || (args.length && !/^w[2-8]$/.test(args[0]))) {
          throw bad(`${kind} takes at most a weight precision, w2..w8`);
        }
        set("method", kind);
        if (args.length) set("weightBits", Number(args[0].slice(1)));
        break;
      }
      case "int4":
      case "ternary":
      case "binary":
        if (args.length) throw bad(`${kind} takes no argument`);
        set("method", kind);
        break;
      case "prune": {
        const s = num(args[0]);
        if (args.length !== 1 || !(s > 0 && s <= 0.999)) throw bad("sparsity in (0, 0.999]");
        set("sparsity", s);
        break;
      }
      case "nm":
        if (args.length !== 2) throw bad("nm:<n>:<m>");
        set("pattern", `${args[0]}:${args[1]}`);
        break;
      case "structured": {
        const r = num(args[0]);
        if (args.length !== 1 || !(r > 0 && r <= 0.95)) throw bad("ratio in (0, 0.95]");
        set("structured", r);
        break;
      }
      case "lowrank": {
        const e = num(args[0]);
        if (args.length !== 1 || !(e > 0 && e <= 1)) throw bad("energy in (0, 1]");
        set("energy", e);
        break;
      }
      case "cluster": {
        const k = num(args[0]);
        if (args.length !== 1 || !Number.isInteger(k) || k < 2 || k > 256) {
          throw bad("clusters an integer in [2, 256]");
        }
        set("clusters", k);
        break;
      }
      default:
        throw bad("unknown method");
    }
  }
  // parseRecipe judges what may combine (binary with nothing, ternary with pruning only).
  try {
    parseRecipe({ layers: { x: lr } });
  } catch (e) {
    throw bad((e as Error).message);
  }
  return lr;
}

/** Rough bits per weight of a choice (for ordering choices by aggressiveness, and size estimates). */
export function choiceBits(c: Choice): number {
  let bits = 32, keep = 1, overhead = 0;
  for (const part of c.split("+")) {
    const [kind, a, b] = part.split(":");
    if (kind === "int8") bits = Math.min(bits, a && Number(a.slice(1)) <= 4 ? 4.1 : 8);
    else if (kind === "int8-dynamic") bits = Math.min(bits, 8);
    else if (kind === "int4") bits = Math.min(bits, 4.5);
    else if (kind === "ternary") bits = Math.min(bits, 2);
    else if (kind === "binary") bits = Math.min(bits, 1);
    else if (kind === "cluster") bits = Math.min(bits, Math.ceil(Math.log2(Number(a))));
    else if (kind === "prune") keep *= 1 - Number(a), overhead = 1;
    else if (kind === "nm") keep *= Number(a) / Number(b), overhead = 1;
    else if (kind === "structured") keep *= 1 - Number(a);
    else if (kind === "lowrank") keep *= 0.5 * Number(a);
  }
  return bits * keep + overhead;
}

/** The default space of `model` (ONNX bytes), restricted by `spec`. */
export function buildSpace(
  model: Uint8Array,
  opts: { calibration: boolean; train?: boolean; spec?: SpaceSpec } = { calibration: false },
): SearchSpace {
  const g = importModel(model);
  const report = inspectGraph(g, 0);
  const macs = new Map(report.layers.map((l) => [l.name, l.macs]));
  const graphInputs = new Set(g.inputs.map((v) => v.name));
  const candidates = g.nodes.filter((n) =>
    (n.op === "Conv" || n.op === "Gemm" || n.op === "MatMul") &&
    (n.domain === "" || n.domain === "ai.onnx") &&
    n.inputs[1]?.constant !== undefined && n.name
  );
  const int8: Choice = opts.calibration ? "int8" : "int8-dynamic";
  const spec = opts.spec ?? {};
  if (spec.methods !== undefined) {
    if (!Array.isArray(spec.methods)) {
      throw new ArgumentError("search: space.methods must be an array");
    }
    for (const m of spec.methods) {
      if (!(METHOD_FAMILIES as readonly string[]).includes(m)) {
        throw new ArgumentError(
          `search: unknown method '${m}' in space.methods (${METHOD_FAMILIES.join(", ")})`,
        );
      }
    }
  }
  const layers: SearchSpace["layers"] = candidates.map((n, i) => {
    const w = n.inputs[1]!.constant!;
    const dims = w.dims;
    const params = dims.reduce((a, d) => a * d, 1);
    const op = n.op;
    const first = i === 0 || n.inputs.some((v) => v && graphInputs.has(v.name));
    const last = i === candidates.length - 1;
    // K: inputs per output (Conv: Cin/groups·kh·kw; Gemm: depends on transB; MatMul: rows).
    let k: number, outs: number;
    if (op === "Conv") k = dims.slice(1).reduce((a, d) => a * d, 1), outs = dims[0];
    else if (op === "Gemm" && n.attrs.transB === 1) k = dims[1], outs = dims[0];
    else k = dims[dims.length - 2] ?? 1, outs = dims[dims.length - 1] ?? 1;
    const c: Choice[] = ["float", int8, `${int8}:w7`];
    if (params >= TINY) {
      if (opts.calibration) c.push("int8:w4");
      c.push("int4", "prune:0.5", "prune:0.7", "prune:0.9", "cluster:16", `prune:0.5+${int8}`);
      if (op !== "Conv" && k % 4 === 0) c.push("nm:2:4");
      if (op !== "Conv" && Math.min(k, outs) >= 32 && dims.length === 2) c.push("lowrank:0.9");
      if (op !== "MatMul" && k >= 64 && !first && !last) c.push("ternary", "binary");
      if (op !== "MatMul" && !last && outs >= 8) c.push("structured:0.25", "structured:0.5");
    }
    return { name: n.name, op, params, macs: macs.get(n.name) ?? 0, choices: c };
  });
  if (spec.methods) {
    const allowed = new Set<string>(spec.methods);
    for (const l of layers) {
      l.choices = l.choices.filter((c) =>
        c === "float" || choiceFamilies(c).every((f) => allowed.has(f))
      );
    }
  }
  if (spec.layers !== undefined) {
    if (typeof spec.layers !== "object" || spec.layers === null || Array.isArray(spec.layers)) {
      throw new ArgumentError("search: space.layers must be an object (layer or op → choices)");
    }
    const names = new Set(layers.map((l) => l.name));
    const ops = new Set(layers.map((l) => l.op));
    const unknown = Object.keys(spec.layers).filter((k) => !names.has(k) && !ops.has(k));
    if (unknown.length) {
      throw new ArgumentError(
        `search: the space names unknown layers: ${unknown.join(", ")} (searchable layers: ${
          [...names].join(", ")
        })`,
      );
    }
    for (const l of layers) {
      const own = spec.layers[l.name] ?? spec.layers[l.op];
      if (own === undefined) continue;
      if (!Array.isArray(own) || !own.length) {
        throw new ArgumentError(
          `search: space.layers.${l.name} must be a non-empty array of choices`,
        );
      }
      own.forEach((c) => parseChoice(c, `space.layers.${l.name} choice`));
      if (own.some((c) => choiceFamilies(c).includes("int8")) && !opts.calibration) {
        throw new ArgumentError(
          `search: space.layers.${l.name} asks for static int8, which needs calibration data ` +
            `(give data.calibration, or use int8-dynamic)`,
        );
      }
      l.choices = [...new Set(own)];
    }
  }
  const space: SearchSpace = { layers };
  if (layers.some((l) => l.choices.some((c) => c.split("+").includes("int4")))) {
    space.int4Blocks = [32, 64, 128];
  }
  if (opts.train) space.finetune = [false, true];
  return space;
}

/** Number of points of the space (Infinity-safe: stops multiplying past 1e15). */
export function spaceSize(space: SearchSpace): number {
  let n = 1;
  for (const l of space.layers) n = Math.min(n * l.choices.length, 1e15);
  if (space.int4Blocks) n *= space.int4Blocks.length;
  if (space.finetune) n *= space.finetune.length;
  return n;
}

/** The assignment with only the meaningful genes (int4Block only when a layer is int4). */
export function normalizeAssignment(a: Assignment): Assignment {
  const layers: Record<string, Choice> = {};
  for (const k of Object.keys(a.layers).sort()) layers[k] = a.layers[k];
  const out: Assignment = { layers };
  const int4 = Object.values(layers).some((c) => c.split("+").includes("int4"));
  if (int4 && a.int4Block !== undefined && a.int4Block !== 32) out.int4Block = a.int4Block;
  if (a.finetune) out.finetune = true;
  return out;
}

/** The compress() recipe of an assignment (validated by parseRecipe). */
export function toRecipe(a: Assignment): Recipe {
  const n = normalizeAssignment(a);
  const layers: Record<string, LayerRecipe> = {};
  for (const [name, c] of Object.entries(n.layers)) layers[name] = parseChoice(c, `${name}:`);
  const raw: Record<string, unknown> = { method: "none", layers };
  if (n.int4Block !== undefined) raw.int4 = { blockSize: n.int4Block };
  if (n.finetune) raw.finetune = {};
  return parseRecipe(raw);
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === "object") {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v as object).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) o[k] = canonical(x);
    }
    return o;
  }
  return v;
}

/** JSON with sorted keys. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(canonical(v));
}

/** sha-256 (hex) of the canonical JSON of a recipe. */
export function recipeHash(r: Recipe): string {
  return bytesToHex(sha256(utf8ToBytes(canonicalJson(r))));
}
