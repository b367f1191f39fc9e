// The latency cost model of the compression search: predicts the median batch-1 latency (ms) of
// the model compressed by an Assignment without building it.
//
// How a prediction is made. buildCostModel measures the float model once (its median
// `session.run` time, and a per-node profile: the medians over several profiled runs), then
// predicts a candidate as
//
//   float total + Σ over layers (cost of the layer under its choice − its measured float time)
//               + int8 boundary conversions + the change of the non-layer nodes' time
//
// so the float model is predicted by its own measurement and every choice adds a delta. A
// layer's cost under a precision comes from a micro-benchmark of that layer alone: a one-node
// model with the same input shape, weight shape and attributes (random weights), compressed by
// compress() with that precision and run through Session with profiling, so it times exactly
// the nodes sqz runs for it (QLinearConv / QGemm, the DynamicQuantizeLinear → ConvInteger →
// Cast → Mul → Add chain of int8-dynamic, BinaryConv / BinaryGemm, and the QuantizeLinear /
// DequantizeLinear at an int8 island's edges). The layout transposes a one-node model needs are
// left out. Micro results are cached per process and, with `cacheDir`, in a JSON file keyed by
// the kernel build (a hash of its .wasm) and a machine fingerprint (cores, OS/arch, Deno and V8
// versions); a second buildCostModel on the same machine only measures the float model.
//
// Per choice ("+" combinations compose):
//   float, int4, ternary, prune:s, nm:n:m, cluster:k   f32 kernels (sqz decodes these at load)
//   int8                                                int8 kernels; QuantizeLinear before an
//                                                       island of int8 layers, DequantizeLinear
//                                                       after it (through Relu/Clip/MaxPool/
//                                                       Flatten/Reshape/Transpose, which run on
//                                                       uint8)
//   int8-dynamic                                        its own quantize/scale chain per layer
//   binary                                              XNOR kernels (the first and last
//                                                       quantizable layers become int8, as
//                                                       compress()'s binary.keepFirstLast does)
//   structured:r                                        removes r of the layer's filters: its
//                                                       MACs, the downstream layer's input
//                                                       channels and the channel-wise nodes
//                                                       between shrink (layers meeting in an
//                                                       element-wise op share the smallest
//                                                       ratio; a space reaching a graph output
//                                                       or an unknown op is not pruned)
//   lowrank:e                                           rank from the weight's SVD energy curve
//                                                       (computed once); two layers with
//                                                       r·(K + N) instead of K·N MACs, or left
//                                                       as is when that is not smaller
// A kernel's time under fewer MACs is overhead + (time − overhead) · MAC ratio, the overhead
// being the calibrated per-node cost of the executor (a 1×8×8 Gemm).
import { importModel } from "../onnx/import.ts";
import type { Graph, Node, Value } from "../graph/ir.ts";
import { inferShapes } from "../graph/shape_inference.ts";
import { foldConstants } from "../graph/fold.ts";
import { elementCount, type Tensor } from "../graph/tensor.ts";
import {
  DataType,
  makeModel,
  node as protoNode,
  tensorFromArray,
  valueInfo,
} from "../onnx/proto.ts";
import { Session, type SessionOptions } from "../session.ts";
import { compress } from "../compress/compress.ts";
import { chooseRank, MAX_SVD_WORK, svd } from "../compress/lowrank.ts";
import { weightMatrix } from "../compress/prune.ts";
import { bestBuild, type KernelBuild } from "../kernels/features.ts";
import { seededRandom } from "../eval/metrics.ts";
import type { Assignment, Choice, CostModel, SearchSpace } from "./types.ts";

export interface CostModelOptions {
  /** Directory for the JSON calibration cache (absent: cached in memory only). */
  cacheDir?: string;
  /** Kernel build to predict for (default "auto", what Session picks). */
  build?: KernelBuild | "auto";
  /** Timed runs per micro-benchmark and per float-model measurement (default 15). */
  runs?: number;
  /** Time budget per micro-benchmark, ms (default 250; runs stop at `runs` or this). */
  budgetMs?: number;
  /** compress()'s binary.keepFirstLast: binary first/last layers run int8 (default true). */
  binaryKeepFirstLast?: boolean;
  /** Ignore (and overwrite) cached micro-benchmarks. */
  refresh?: boolean;
  /** Progress messages (calibration of each layer, …). */
  onProgress?: (message: string) => void;
}

/** What a choice costs one layer (ms), for inspection. */
export interface LayerCost {
  name: string;
  choice: Choice;
  precision: Precision;
  ms: number;
  /** QuantizeLinear / DequantizeLinear at the edges of an int8 island. */
  boundaryMs: number;
  macFactor: number;
}

export interface CostBreakdown {
  totalMs: number;
  floatMs: number;
  layers: LayerCost[];
  /** Change of the non-layer nodes' time (structured pruning shrinks them). */
  nonLayerDeltaMs: number;
}

/** The CostModel with what it was built from. */
export interface DetailedCostModel extends CostModel {
  /** Measured median run time of the float model, ms. */
  readonly floatMs: number;
  /** Measured non-layer node time of the float model (profile medians), ms. */
  readonly nonLayerMs: number;
  /** Wall time buildCostModel took, ms, and how many micro-benchmarks it ran (not cached). */
  readonly calibrationMs: number;
  readonly microBenchmarks: number;
  breakdown(assignment: Assignment): CostBreakdown;
}

export type Precision = "f32" | "int8" | "int8dyn" | "binary";

/** One layer micro-benchmark under one precision (ms, profile medians). */
interface Micro {
  /** The layer's own nodes (kernel and, for int8-dynamic, its quantize/scale chain). */
  kernel: number;
  /** QuantizeLinear of its input / DequantizeLinear of its output (static int8). */
  qIn: number;
  dqOut: number;
}

interface CacheFile {
  fingerprint: string;
  entries: Record<string, Micro>;
}

// ---------------------------------------------------------------------------------------------
// Choices

interface ParsedChoice {
  precision: Precision;
  /** int8 with ≤ 7 weight bits ("int8:w4"): the 7-bit GEMM, priced by its own micro-benchmark. */
  w7: boolean;
  structured: number;
  energy?: number;
}

export function parseChoice(c: Choice): ParsedChoice {
  let precision: Precision = "f32", structured = 0, w7 = false;
  let energy: number | undefined;
  for (const part of c.split("+").map((s) => s.trim())) {
    const [kind, arg] = part.split(":");
    if (arg?.startsWith("w") && (kind === "int8" || kind === "int8-dynamic")) {
      w7 = Number(arg.slice(1)) <= 7;
    }
    if (part === "binary") precision = "binary";
    else if (kind === "int8-dynamic") precision = "int8dyn";
    else if (kind === "int8") precision = "int8";
    else if (part.startsWith("structured:")) structured = Number(part.slice(11)) || 0;
    else if (part.startsWith("lowrank:")) energy = Number(part.slice(8)) || undefined;
    // float, int4, ternary, prune:, nm:, cluster: run the f32 kernels (decoded at load).
  }
  return { precision, w7, structured, energy };
}

// ---------------------------------------------------------------------------------------------
// Machine fingerprint and cache

const memoryCache = new Map<string, Micro>();
let overheadCache: { key: string; ms: number } | undefined;

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function fingerprint(build: KernelBuild): Promise<string> {
  let kernelHash = build as string;
  try {
    const url = new URL(`../../kernels/build/sqz-${build}.wasm`, import.meta.url);
    if (url.protocol === "file:") {
      kernelHash = (await sha256Hex(await Deno.readFile(url))).slice(0, 16);
    }
  } catch { /* the build name alone */ }
  const d = typeof Deno !== "undefined" ? Deno : undefined;
  return [
    `kernels=${build}:${kernelHash}`,
    `cores=${navigator.hardwareConcurrency}`,
    `os=${d?.build.os}-${d?.build.arch}`,
    `deno=${d?.version.deno}`,
    `v8=${d?.version.v8}`,
  ].join(";");
}

async function readCache(dir: string, fp: string): Promise<Record<string, Micro>> {
  try {
    const f = JSON.parse(await Deno.readTextFile(await cachePath(dir, fp))) as CacheFile;
    return f.fingerprint === fp ? f.entries : {};
  } catch {
    return {};
  }
}

async function cachePath(dir: string, fp: string): Promise<string> {
  const h = (await sha256Hex(new TextEncoder().encode(fp))).slice(0, 16);
  return `${dir}/cost_model_${h}.json`;
}

async function writeCache(dir: string, fp: string, entries: Record<string, Micro>): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const path = await cachePath(dir, fp);
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify({ fingerprint: fp, entries }, null, 1));
  await Deno.rename(tmp, path);
}

// ---------------------------------------------------------------------------------------------
// Measurement

const median = (xs: number[]) => {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function feedsFor(g: Graph, seed: number): Record<string, Tensor> {
  const r = seededRandom(seed);
  const feeds: Record<string, Tensor> = {};
  for (const v of g.inputs) {
    if (v.constant) continue;
    const dims = (v.shape ?? []).map((d) => (typeof d === "number" && d > 0 ? d : 1));
    const n = elementCount(dims);
    if (v.type === "int64") {
      feeds[v.name] = { type: "int64", dims, data: new BigInt64Array(n) } as Tensor;
    } else {
      feeds[v.name] = {
        type: "float32",
        dims,
        data: Float32Array.from({ length: n }, r),
      } as Tensor;
    }
  }
  return feeds;
}

/** Per-node profile medians over timed runs (after warm-up), by node name. */
async function profileMedians(
  s: Session,
  feeds: Record<string, Tensor>,
  runs: number,
  budgetMs: number,
): Promise<Map<string, { op: string; ms: number }>> {
  const w0 = performance.now();
  for (let i = 0; i < 5 || (i < 200 && performance.now() - w0 < budgetMs / 2); i++) {
    await s.run(feeds);
  }
  const samples = new Map<string, { op: string; ms: number[] }>();
  const t0 = performance.now();
  for (let i = 0; i < 5 || (i < runs && performance.now() - t0 < budgetMs); i++) {
    await s.run(feeds);
    for (const p of s.profile) {
      let e = samples.get(p.name);
      if (!e) samples.set(p.name, e = { op: p.op, ms: [] });
      e.ms.push(p.ms);
    }
  }
  return new Map([...samples].map(([k, v]) => [k, { op: v.op, ms: median(v.ms) }]));
}

// ---------------------------------------------------------------------------------------------
// Layers of the model

interface LayerInfo {
  name: string;
  node: Node;
  op: string;
  inDims: number[];
  wDims: number[];
  macs: number;
  depthwise: boolean;
  /** Weight matrix: rows (output units) × k. */
  rows: number;
  k: number;
  /** Energy curve (cumulative share of Σσ²), when a lowrank choice needs it. */
  energyCurve?: Float64Array;
  grouped: boolean;
}

const staticDims = (v: Value | undefined) =>
  (v?.shape ?? []).map((d) => (typeof d === "number" && d > 0 ? d : 1));

function macsOf(n: Node): number {
  const out = staticDims(n.outputs[0]);
  const w = n.inputs[1]?.constant?.dims;
  if (!w || !out.length) return 0;
  if (n.op === "Conv") return elementCount(out) * elementCount(w.slice(1));
  const a = staticDims(n.inputs[0]);
  const transA = n.op === "Gemm" && n.attrs.transA === 1;
  const k = transA ? a[a.length - 2] : a[a.length - 1];
  return elementCount(out) * (k ?? 1);
}

function energyCurve(n: Node, rows: number, k: number): Float64Array | undefined {
  const c = n.inputs[1]?.constant;
  const m = c && weightMatrix(n, c.dims);
  if (!c || !m) return undefined;
  const small = Math.min(rows, k), big = Math.max(rows, k);
  if (small * small * big > MAX_SVD_WORK) return undefined;
  const data = c.data as Float32Array;
  const a = new Float64Array(rows * k);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < k; j++) a[i * k + j] = data[i * m.rowStride + j * m.kStride];
  }
  return svd(a, rows, k).s;
}

/** The rank lowrank:e gives the layer, or undefined when it is not factored. */
function lowRank(l: LayerInfo, energy: number): number | undefined {
  if (!l.energyCurve || l.grouped) return undefined;
  const r = chooseRank(l.energyCurve, { energy });
  return r * (l.k + l.rows) >= l.k * l.rows ? undefined : r;
}

// Ops that keep channels (structured pruning carries a channel space through them).
const CHANNELWISE = new Set([
  "Relu",
  "LeakyRelu",
  "Clip",
  "Sigmoid",
  "Tanh",
  "HardSigmoid",
  "HardSwish",
  "Elu",
  "Selu",
  "PRelu",
  "Softplus",
  "Gelu",
  "Erf",
  "Cast",
  "Identity",
  "Dropout",
  "BatchNormalization",
  "InstanceNormalization",
  "MaxPool",
  "AveragePool",
  "GlobalAveragePool",
  "GlobalMaxPool",
  "Pad",
  "Flatten",
  "Squeeze",
  "Unsqueeze",
  "Reshape",
  "Add",
  "Sub",
  "Mul",
  "Div",
  "Sum",
  "Max",
  "Min",
  "QuantizeLinear",
  "DequantizeLinear",
]);
// Ops between two int8 layers that run on uint8 (no DequantizeLinear / QuantizeLinear pair).
const INT8_TRANSPARENT = new Set([
  "Relu",
  "Clip",
  "MaxPool",
  "Flatten",
  "Reshape",
  "Transpose",
  "Squeeze",
  "Unsqueeze",
  "Identity",
  "Dropout",
]);

function isLayer(n: Node, names: Set<string>) {
  return names.has(n.name);
}

/** Channel spaces of structured pruning: space id per value, merged through element-wise ops. */
class Spaces {
  parent: number[] = [];
  blocked: boolean[] = [];
  members: string[][] = [];
  of = new Map<Value, number>();
  add(member?: string): number {
    const i = this.parent.length;
    this.parent.push(i);
    this.blocked.push(false);
    this.members.push(member ? [member] : []);
    return i;
  }
  find(i: number): number {
    while (this.parent[i] !== i) i = this.parent[i] = this.parent[this.parent[i]];
    return i;
  }
  union(a: number, b: number): number {
    a = this.find(a), b = this.find(b);
    if (a === b) return a;
    this.parent[b] = a;
    this.blocked[a] ||= this.blocked[b];
    this.members[a].push(...this.members[b]);
    return a;
  }
}

interface Analysis {
  layers: LayerInfo[];
  byName: Map<string, LayerInfo>;
  spaces: Spaces;
  /** Output space of each layer (non-depthwise), input space of each layer. */
  outSpace: Map<string, number>;
  inSpace: Map<string, number>;
  /** Space of each non-layer node's output. */
  nodeSpace: Map<string, number>;
  /** int8 islands: producer / consumer layers through uint8-transparent ops; float edges. */
  inFromFloat: Map<string, boolean>;
  producers: Map<string, string[]>;
  outToFloat: Map<string, boolean>;
  consumers: Map<string, string[]>;
  /** First and last quantizable layers (binary.keepFirstLast). */
  ends: Set<string>;
}

function analyze(g: Graph, space: SearchSpace, needSvd: Set<string>): Analysis {
  const names = new Set(space.layers.map((l) => l.name));
  const layers: LayerInfo[] = [];
  for (const n of g.nodes) {
    if (!names.has(n.name)) continue;
    const wDims = [...(n.inputs[1]?.constant?.dims ?? [])];
    const m = weightMatrix(n, wDims);
    const group = Number(n.attrs.group ?? 1);
    const inDims = staticDims(n.inputs[0]);
    const depthwise = n.op === "Conv" && group > 1 && wDims[1] === 1;
    const info: LayerInfo = {
      name: n.name,
      node: n,
      op: n.op,
      inDims,
      wDims,
      macs: macsOf(n),
      depthwise,
      rows: m?.rows ?? 1,
      k: m?.k ?? 1,
      grouped: group > 1,
    };
    if (needSvd.has(n.name) && m) info.energyCurve = energyCurve(n, m.rows, m.k);
    layers.push(info);
  }
  const byName = new Map(layers.map((l) => [l.name, l]));
  // ---- channel spaces ----
  const spaces = new Spaces();
  const outSpace = new Map<string, number>(), inSpace = new Map<string, number>();
  const nodeSpace = new Map<string, number>();
  for (const n of g.nodes) {
    const l = byName.get(n.name);
    const inputs = n.inputs.filter((v): v is Value => !!v && !v.constant);
    const spaced = inputs.map((v) => spaces.of.get(v)).filter((s): s is number => s !== undefined);
    if (l && !l.depthwise) {
      const s0 = n.inputs[0] && spaces.of.get(n.inputs[0]);
      if (s0 !== undefined && s0 !== null) inSpace.set(n.name, s0);
      if (l.grouped) { for (const s of spaced) spaces.blocked[spaces.find(s)] = true; }
      const s = spaces.add(n.name);
      outSpace.set(n.name, s);
      for (const o of n.outputs) spaces.of.set(o, s);
      continue;
    }
    if (l?.depthwise || CHANNELWISE.has(n.op)) {
      if (!spaced.length) continue;
      let s = spaced[0];
      for (const t of spaced.slice(1)) s = spaces.union(s, t);
      // Reshape/Flatten keep the space only when they flatten (output rank 2).
      if (
        (n.op === "Reshape" || n.op === "Squeeze" || n.op === "Unsqueeze") &&
        (n.outputs[0]?.shape?.length ?? 0) !== 2
      ) {
        spaces.blocked[spaces.find(s)] = true;
      }
      if (l) inSpace.set(n.name, s);
      else nodeSpace.set(n.name, s);
      for (const o of n.outputs) spaces.of.set(o, s);
      continue;
    }
    // Anything else ends (and blocks) the spaces it reads.
    for (const s of spaced) spaces.blocked[spaces.find(s)] = true;
  }
  for (const v of g.outputs) {
    const s = spaces.of.get(v);
    if (s !== undefined) spaces.blocked[spaces.find(s)] = true;
  }
  // ---- int8 islands ----
  const producers = new Map<string, string[]>(), inFromFloat = new Map<string, boolean>();
  const consumers = new Map<string, string[]>(), outToFloat = new Map<string, boolean>();
  for (const l of layers) {
    const prods: string[] = [];
    let float = false;
    const back = (v: Value | undefined, depth: number) => {
      const p = v?.producer;
      if (!p || depth > 50) return void (float = true);
      if (isLayer(p, names)) return void prods.push(p.name);
      if (!INT8_TRANSPARENT.has(p.op)) return void (float = true);
      back(p.inputs[0], depth + 1);
    };
    back(l.node.inputs[0], 0);
    producers.set(l.name, prods);
    inFromFloat.set(l.name, float);
    const cons: string[] = [];
    let toFloat = false;
    const fwd = (v: Value, depth: number) => {
      if (g.outputs.includes(v) || depth > 50) toFloat = true;
      for (const c of v.consumers) {
        if (isLayer(c, names) && c.inputs[0] === v) cons.push(c.name);
        else if (INT8_TRANSPARENT.has(c.op) && c.inputs[0] === v) fwd(c.outputs[0], depth + 1);
        else toFloat = true;
      }
    };
    fwd(l.node.outputs[0], 0);
    consumers.set(l.name, cons);
    outToFloat.set(l.name, toFloat);
  }
  const ends = new Set([layers[0]?.name, layers[layers.length - 1]?.name].filter((x) => x));
  return {
    layers,
    byName,
    spaces,
    outSpace,
    inSpace,
    nodeSpace,
    inFromFloat,
    producers,
    outToFloat,
    consumers,
    ends: ends as Set<string>,
  };
}

/** The layer an int8 activation feeds, forward through uint8-transparent ops. */
function firstLayerAfter(v: Value, layers: Set<string>, depth = 0): string | undefined {
  for (const c of v.consumers) {
    if (layers.has(c.name)) return c.name;
    if (depth < 50 && INT8_TRANSPARENT.has(c.op) && c.outputs[0]) {
      const r = firstLayerAfter(c.outputs[0], layers, depth + 1);
      if (r) return r;
    }
  }
  return undefined;
}

/** The layer an activation comes from, back through uint8-transparent ops. */
function lastLayerBefore(v: Value, layers: Set<string>, depth = 0): string | undefined {
  const p = v.producer;
  if (!p) return undefined;
  if (layers.has(p.name)) return p.name;
  return depth < 50 && INT8_TRANSPARENT.has(p.op) && p.inputs[0]
    ? lastLayerBefore(p.inputs[0], layers, depth + 1)
    : undefined;
}

// ---------------------------------------------------------------------------------------------
// Micro-benchmarks

/** A one-node float model of the layer (random weights, same shapes and attributes). */
function microModel(l: LayerInfo): { bytes: Uint8Array; feeds: Record<string, Tensor> } {
  const n = l.node;
  const r = seededRandom(1234);
  const fan = Math.max(1, l.k);
  const scale = Math.sqrt(3 / fan);
  const w = Float32Array.from({ length: elementCount(l.wDims) }, () => (r() * 2 - 1) * scale);
  const inits = [tensorFromArray("w", DataType.FLOAT, l.wDims, w)];
  const inputs = ["x", "w"];
  const bias = n.inputs[2]?.constant;
  if (bias && n.op !== "MatMul") {
    inits.push(
      tensorFromArray(
        "b",
        DataType.FLOAT,
        [...bias.dims],
        new Float32Array(elementCount(bias.dims)).map(() => r() * 0.1),
      ),
    );
    inputs.push("b");
  }
  const attrs: Record<string, number | number[]> = {};
  for (const [k, v] of Object.entries(n.attrs)) {
    if (typeof v === "number" || (Array.isArray(v) && v.every((x) => typeof x === "number"))) {
      attrs[k] = v as number | number[];
    }
  }
  delete attrs.activation_min;
  delete attrs.activation_max;
  const outDims = staticDims(n.outputs[0]);
  const bytes = makeModel({
    nodes: [protoNode(n.op, inputs, ["y"], attrs, "layer")],
    inputs: [valueInfo("x", DataType.FLOAT, l.inDims)],
    outputs: [valueInfo("y", DataType.FLOAT, outDims)],
    initializers: inits,
    opset: 13,
  });
  const x = Float32Array.from({ length: elementCount(l.inDims) }, () => r());
  return { bytes, feeds: { x: { type: "float32", dims: l.inDims, data: x } as Tensor } };
}

const microKey = (l: LayerInfo, p: Precision, w7 = false) =>
  JSON.stringify([
    w7 ? `${p}w7` : p,
    l.op,
    l.inDims,
    l.wDims,
    !!l.node.inputs[2],
    attrsKey(l.node),
  ]);

function attrsKey(n: Node): string {
  return JSON.stringify(
    Object.entries(n.attrs).filter(([k]) => !k.startsWith("activation_")).sort(([a], [b]) =>
      a < b ? -1 : 1
    ),
  );
}

async function runMicro(
  l: LayerInfo,
  p: Precision,
  sessionOpts: SessionOptions,
  runs: number,
  budgetMs: number,
  w7 = false,
): Promise<Micro> {
  const { bytes, feeds } = microModel(l);
  let model = bytes;
  // 7 bits stands for every ≤ 7-bit choice: they run the same kernel.
  const int8 = w7 ? { weightBits: 7 } : {};
  if (p === "int8") {
    const calibration = [feeds, {
      x: { ...feeds.x, data: (feeds.x.data as Float32Array).map((v) => 1 - v) } as Tensor,
    }];
    model = (await compress(bytes, { method: "int8", int8 }, { calibration })).model;
  } else if (p === "int8dyn") {
    model = (await compress(bytes, { method: "int8-dynamic", int8 })).model;
  } else if (p === "binary") {
    model = (await compress(bytes, { method: "binary", binary: { keepFirstLast: false } })).model;
  }
  const s = await Session.create(model, { ...sessionOpts, profile: true });
  try {
    const prof = await profileMedians(s, feeds, runs, budgetMs);
    let kernel = 0, qIn = 0, dqOut = 0;
    for (const [name, { op, ms }] of prof) {
      if (op === "Transpose" && /::to_nh?wc|::to_nchw/.test(name)) continue; // layout only
      if (p === "int8" && op === "QuantizeLinear") qIn += ms;
      else if (p === "int8" && op === "DequantizeLinear") dqOut += ms;
      else kernel += ms;
    }
    return { kernel, qIn, dqOut };
  } finally {
    await s.release();
  }
}

/** Per-node cost of the executor: a 1×8×8 Gemm's profiled time. */
async function nodeOverhead(sessionOpts: SessionOptions, fp: string): Promise<number> {
  if (overheadCache?.key === fp) return overheadCache.ms;
  const w = new Float32Array(64).fill(0.1);
  const bytes = makeModel({
    nodes: [protoNode("Gemm", ["x", "w"], ["y"], { transB: 1 }, "g")],
    inputs: [valueInfo("x", DataType.FLOAT, [1, 8])],
    outputs: [valueInfo("y", DataType.FLOAT, [1, 8])],
    initializers: [tensorFromArray("w", DataType.FLOAT, [8, 8], w)],
    opset: 13,
  });
  const s = await Session.create(bytes, { ...sessionOpts, profile: true });
  const prof = await profileMedians(
    s,
    { x: { type: "float32", dims: [1, 8], data: new Float32Array(8) } as Tensor },
    30,
    100,
  );
  await s.release();
  const ms = [...prof.values()].reduce((a, b) => a + b.ms, 0);
  overheadCache = { key: fp, ms };
  return ms;
}

// ---------------------------------------------------------------------------------------------

/**
 * Builds the cost model of `model` over `space`: measures the float model, micro-benchmarks
 * each layer under the precisions its choices need (cached), and computes SVD energy curves for
 * layers with lowrank choices.
 */
export async function buildCostModel(
  model: Uint8Array,
  space: SearchSpace,
  options: CostModelOptions = {},
): Promise<DetailedCostModel> {
  const t0 = performance.now();
  const runs = options.runs ?? 15, budgetMs = options.budgetMs ?? 250;
  const keepFirstLast = options.binaryKeepFirstLast ?? true;
  const build: KernelBuild = !options.build || options.build === "auto"
    ? bestBuild()
    : options.build;
  const sessionOpts: SessionOptions = { build };
  const progress = options.onProgress ?? (() => {});
  const fp = await fingerprint(build);

  const g = importModel(model);
  g.topoSort();
  inferShapes(g);
  foldConstants(g);
  inferShapes(g);

  const needSvd = new Set(
    space.layers.filter((l) => l.choices.some((c) => parseChoice(c).energy !== undefined)).map((
      l,
    ) => l.name),
  );
  const an = analyze(g, space, needSvd);

  // ---- the float model: total run time and per-node profile ----
  const feeds = feedsFor(g, 7);
  const plain = await Session.create(model, sessionOpts);
  const profiled = await Session.create(model, { ...sessionOpts, profile: true });
  let floatMs: number, floatProfile: Map<string, { op: string; ms: number }>;
  try {
    // Interleaved: the profiled runs and the plain runs see the same machine phases.
    const totals: number[] = [];
    const prof = new Map<string, { op: string; ms: number[] }>();
    // Time-based warm-up, so V8 has tiered the Wasm and the TypeScript ops up.
    const w0 = performance.now();
    for (let i = 0; i < 5 || (i < 500 && performance.now() - w0 < 400); i++) {
      await plain.run(feeds), await profiled.run(feeds);
    }
    const tStart = performance.now();
    for (
      let i = 0;
      i < 7 || (i < Math.max(runs, 7) * 2 && performance.now() - tStart < 4 * budgetMs);
      i++
    ) {
      const s = performance.now();
      await plain.run(feeds);
      totals.push(performance.now() - s);
      await profiled.run(feeds);
      for (const p of profiled.profile) {
        let e = prof.get(p.name);
        if (!e) prof.set(p.name, e = { op: p.op, ms: [] });
        e.ms.push(p.ms);
      }
    }
    floatMs = median(totals);
    floatProfile = new Map([...prof].map(([k, v]) => [k, { op: v.op, ms: median(v.ms) }]));
  } finally {
    await plain.release();
    await profiled.release();
  }
  const layerNames = new Set(an.layers.map((l) => l.name));
  let nonLayerMs = 0;
  const nonLayer: { name: string; ms: number }[] = [];
  for (const [name, { ms }] of floatProfile) {
    if (layerNames.has(name)) continue;
    nonLayerMs += ms;
    nonLayer.push({ name, ms });
  }

  // ---- micro-benchmarks ----
  const overhead = await nodeOverhead(sessionOpts, fp);
  const fileEntries = options.cacheDir && !options.refresh
    ? await readCache(options.cacheDir, fp)
    : {};
  let fresh = 0;
  const micro = new Map<string, Micro>(); // by layer name + precision
  const spaceByName = new Map(space.layers.map((l) => [l.name, l]));
  for (const l of an.layers) {
    // "int8" or "int8w7" style keys: the precision and whether the 7-bit kernel runs.
    const variants = new Map<string, [Precision, boolean]>([["f32", ["f32", false]]]);
    for (const c of spaceByName.get(l.name)?.choices ?? []) {
      const pc = parseChoice(c);
      let p = pc.precision;
      if (p === "binary" && keepFirstLast && an.ends.has(l.name)) p = "int8";
      const w7 = pc.w7 && (p === "int8" || p === "int8dyn");
      if (w7) variants.set(p, [p, false]); // the 8-bit twin anchors the 7-bit ratio
      variants.set(w7 ? `${p}w7` : p, [p, w7]);
    }
    for (const [tag, [p, w7]] of variants) {
      const mk = microKey(l, p, w7);
      const key = `${fp}|${mk}`;
      let m = options.refresh ? undefined : memoryCache.get(key) ?? fileEntries[mk];
      if (!m) {
        progress(`calibrating ${l.name} (${l.op}) ${tag}`);
        try {
          m = await runMicro(l, p, sessionOpts, runs, budgetMs, w7);
        } catch (e) {
          // A precision compress() refuses for this layer: priced as f32 (it stays float).
          progress(`${l.name} ${tag}: ${(e as Error).message}; priced as f32`);
          m = { kernel: NaN, qIn: 0, dqOut: 0 };
        }
        fresh++;
        fileEntries[mk] = m;
      }
      memoryCache.set(key, m);
      micro.set(`${l.name}|${tag}`, m);
    }
  }
  if (options.cacheDir && fresh) await writeCache(options.cacheDir, fp, fileEntries);

  // ---- static int8 in context ----
  // A lone layer does not show how sqz runs it inside an int8 island (a depthwise Conv whose
  // output is not re-quantized stays float, for one), so static int8 is priced from one
  // profile of the whole model quantized uniformly (random calibration feeds): each layer's
  // QLinearConv / QGemm time, and each QuantizeLinear / DequantizeLinear attributed to the
  // layer whose input or output it converts. This measures an artifact the search never asks
  // for, once per model, not the candidates.
  const inContext = new Map<string, Micro>();
  // ms per element of QuantizeLinear / DequantizeLinear (TypeScript ops), for the boundaries a
  // uniform model does not have.
  const qSamples: [number, number][] = [], dqSamples: [number, number][] = [];
  for (const l of an.layers) {
    const m = micro.get(`${l.name}|int8`);
    if (!m) continue;
    if (m.qIn > 0) qSamples.push([m.qIn, elementCount(l.inDims)]);
    if (m.dqOut > 0) dqSamples.push([m.dqOut, elementCount(staticDims(l.node.outputs[0]))]);
  }
  if (space.layers.some((l) => l.choices.some((c) => parseChoice(c).precision === "int8"))) {
    try {
      const calibration = [feeds, feedsFor(g, 8)];
      const q = (await compress(model, { method: "int8" }, { calibration })).model;
      const s = await Session.create(q, { ...sessionOpts, profile: true });
      const prof = await profileMedians(s, feeds, runs, 4 * budgetMs);
      await s.release();
      fresh++;
      const layerOf = (nodeName: string) => {
        const base = nodeName.split("::")[0];
        return layerNames.has(base) ? base : undefined;
      };
      for (const l of an.layers) inContext.set(l.name, { kernel: 0, qIn: 0, dqOut: 0 });
      for (const [name, { op, ms }] of prof) {
        if (op === "QuantizeLinear" || op === "DequantizeLinear") {
          const m = /^(?:Quantize|Dequantize)Linear_(.*)::d?q$/.exec(name);
          const v = m ? g.values.get(m[1]) : undefined;
          const owner = v &&
            (op === "QuantizeLinear"
              ? firstLayerAfter(v, layerNames)
              : lastLayerBefore(v, layerNames));
          if (v?.shape) {
            (op === "QuantizeLinear" ? qSamples : dqSamples).push([
              ms,
              elementCount(staticDims(v)),
            ]);
          }
          if (owner) {
            const e = inContext.get(owner)!;
            if (op === "QuantizeLinear") e.qIn += ms;
            else e.dqOut += ms;
          }
          continue;
        }
        const owner = layerOf(name);
        if (owner) inContext.get(owner)!.kernel += ms;
      }
      for (const [k, e] of inContext) if (!(e.kernel > 0)) inContext.delete(k);
    } catch (e) {
      progress(
        `uniform int8 profile failed (${(e as Error).message}); int8 priced by micro-benchmarks`,
      );
    }
  }

  // Σ ms / Σ elements: the large tensors (which matter) set the rate, not per-node overhead.
  const rate = (xs: [number, number][]) =>
    xs.reduce((a, x) => a + x[0], 0) / Math.max(1, xs.reduce((a, x) => a + x[1], 0));
  const qRate = rate(qSamples), dqRate = rate(dqSamples);
  const qCost = (l: LayerInfo, m: Micro) => m.qIn > 0 ? m.qIn : qRate * elementCount(l.inDims);
  const dqCost = (l: LayerInfo, m: Micro) =>
    m.dqOut > 0 ? m.dqOut : dqRate * elementCount(staticDims(l.node.outputs[0]));

  // ---- prediction ----
  const floatLayerMs = (name: string) => {
    const m = floatProfile.get(name)?.ms;
    return m ?? micro.get(`${name}|f32`)?.kernel ?? 0;
  };

  function breakdown(a: Assignment): CostBreakdown {
    const choiceOf = (name: string) => a.layers[name] ?? "float";
    const parsed = new Map(an.layers.map((l) => [l.name, parseChoice(choiceOf(l.name))]));
    const precisionOf = (name: string): Precision => {
      let p = parsed.get(name)?.precision ?? "f32";
      if (p === "binary" && keepFirstLast && an.ends.has(name)) p = "int8";
      const m = micro.get(`${name}|${p}`);
      return m && Number.isFinite(m.kernel) ? p : "f32";
    };
    // Structured pruning: the kept share of each channel space.
    const spaceRatio = new Map<number, number>();
    const keepOf = (s: number | undefined) => {
      if (s === undefined) return 1;
      const root = an.spaces.find(s);
      let r = spaceRatio.get(root);
      if (r === undefined) {
        const members = an.spaces.members[root];
        r = an.spaces.blocked[root] || !members.length
          ? 0
          : Math.min(...members.map((m) => parsed.get(m)?.structured ?? 0));
        spaceRatio.set(root, r);
      }
      return 1 - r;
    };
    const layers: LayerCost[] = [];
    let total = floatMs;
    for (const l of an.layers) {
      const pc = parsed.get(l.name)!;
      const p = precisionOf(l.name);
      const macFactor = (l.depthwise ? 1 : keepOf(an.outSpace.get(l.name))) *
        keepOf(an.inSpace.get(l.name));
      const tFloat = floatLayerMs(l.name);
      const mf = micro.get(`${l.name}|f32`)!;
      // In-model time of the f32 kernel against the micro-benchmark's: applied to the others.
      const anchor = mf.kernel > 0 ? Math.min(1.6, Math.max(0.6, tFloat / mf.kernel)) : 1;
      const ctx = p === "int8" ? inContext.get(l.name) : undefined;
      // 7-bit weights: the 8-bit price scaled by the two micro-benchmarks' ratio.
      const m7 = pc.w7 && p !== "f32" ? micro.get(`${l.name}|${p}w7`) : undefined;
      const m8 = micro.get(`${l.name}|${p}`);
      const w7Ratio = m7 && m8 && m8.kernel > 0 && Number.isFinite(m7.kernel)
        ? m7.kernel / m8.kernel
        : 1;
      const full =
        (p === "f32" ? tFloat : ctx ? ctx.kernel : micro.get(`${l.name}|${p}`)!.kernel * anchor) *
        (p === "f32" ? 1 : w7Ratio);
      const over = Math.min(overhead, full);
      let ms: number;
      const rank = pc.energy !== undefined ? lowRank(l, pc.energy) : undefined;
      if (rank !== undefined) {
        const ratio = rank * (l.k + l.rows) / (l.k * l.rows);
        ms = 2 * over + (full - over) * ratio * macFactor;
      } else {
        ms = over + (full - over) * macFactor;
      }
      let boundaryMs = 0;
      if (p === "int8") {
        const m = inContext.get(l.name) ?? micro.get(`${l.name}|int8`)!;
        const prods = an.producers.get(l.name)!, cons = an.consumers.get(l.name)!;
        if (an.inFromFloat.get(l.name) || prods.some((x) => precisionOf(x) !== "int8")) {
          boundaryMs += qCost(l, m) * keepOf(an.inSpace.get(l.name));
        }
        if (an.outToFloat.get(l.name) || cons.some((x) => precisionOf(x) !== "int8")) {
          boundaryMs += dqCost(l, m) * (l.depthwise ? 1 : keepOf(an.outSpace.get(l.name)));
        }
      }
      total += ms + boundaryMs - tFloat;
      layers.push({
        name: l.name,
        choice: choiceOf(l.name),
        precision: p,
        ms,
        boundaryMs,
        macFactor,
      });
    }
    let nonLayerDeltaMs = 0;
    for (const { name, ms } of nonLayer) {
      const keep = keepOf(an.nodeSpace.get(name));
      if (keep < 1) {
        nonLayerDeltaMs += (Math.min(overhead, ms) + (ms - Math.min(overhead, ms)) * keep) - ms;
      }
    }
    total += nonLayerDeltaMs;
    return { totalMs: Math.max(total, overhead), floatMs, layers, nonLayerDeltaMs };
  }

  return {
    floatMs,
    nonLayerMs,
    calibrationMs: performance.now() - t0,
    microBenchmarks: fresh,
    breakdown,
    predict: (a: Assignment) => breakdown(a).totalMs,
  };
}
