// Graph → ONNX model bytes: the inverse of import.ts, so a graph that passes have rewritten
// (compressed, folded) can be saved and loaded again by sqz, onnxruntime or any ONNX tool.
//
// What is written:
//   - nodes in topological order (the graph is not modified), with every attribute kind the
//     importer reads (INT, FLOAT, STRING, INTS, FLOATS, STRINGS, TENSOR, TENSORS) and GRAPH for
//     subgraphs built in code;
//   - one initializer per constant value that a node, a subgraph or a graph output reads, in
//     raw_data (little-endian; int4/uint4 two per byte, first element in the low nibble; bool one
//     byte 0/1; float16 as its bit pattern). Dead constants that passes left behind are dropped;
//   - graph inputs and outputs with dtype and shape (symbolic dims as dim_param, "?" as an
//     unknown dim), value_info for the intermediate values nodes read whose dtype is known;
//   - opset imports from g.opsets, plus version 1 of any other domain a node uses (ai.sqz);
//   - metadata_props, producer name and doc string from the options.
//
// External data: protobuf cannot encode a message of 2 GiB or more, so weights above
// `externalDataThreshold` (default 2 GiB − 64 MiB, room for the graph itself) cannot travel
// inside the .onnx. exportModel() (one buffer) then throws ExternalDataRequiredError;
// exportModelFiles() moves the initializers of at least `externalDataMinTensorBytes` (1 KiB;
// all of them if the rest would still be over) into one external data file named
// `externalDataLocation`, as ONNX's external-data format describes (location / offset /
// length; offsets 64-byte aligned, tensors over 1 MiB at 64 KiB boundaries as onnx does for
// mmap), and returns `{ model, external: { [location]: bytes } }`. Below the threshold both
// write the same single file.
//
// The IR keeps integer and float attributes both as numbers, so which one an attribute is comes
// from ONNX's operator schemas: the names below are FLOAT / FLOATS wherever ONNX uses them; any
// other number is INT when it is an integer and FLOAT otherwise.
import {
  attribute,
  type AttributeProto,
  AttributeType,
  DataLocation,
  DataType,
  encodeModel,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  tensorFromArray,
  type TensorProto,
  type ValueInfoProto,
} from "./proto.ts";
import { type AttrValue, Graph, type Node, type Value } from "../graph/ir.ts";
import { ARRAY_CLASS, elementCount, type Tensor, type TensorType } from "../graph/tensor.ts";
import { ArgumentError, ModelError, SqzError } from "../errors.ts";

export interface ExportOptions {
  /** ModelProto.metadata_props (e.g. the recipe that produced the model, its accuracy). */
  metadata?: Record<string, string>;
  /** ModelProto.producer_name (default "sqz"). */
  producerName?: string;
  /** ModelProto.doc_string. */
  docString?: string;
  /**
   * Tensor bytes above which the weights go to an external data file (default
   * DEFAULT_EXTERNAL_THRESHOLD, 2 GiB − 64 MiB). exportModel() refuses such a graph with an
   * ExternalDataRequiredError; exportModelFiles() writes the file. At most 2 GiB − 1.
   */
  externalDataThreshold?: number;
  /** The external data file's name, its `location` beside the .onnx (default "model.onnx.data"). */
  externalDataLocation?: string;
  /** Initializers smaller than this stay inline when the others go external (default 1024). */
  externalDataMinTensorBytes?: number;
}

/** A model as files: the .onnx and its external data files by location ({} when none). */
export interface ExportedModel {
  model: Uint8Array;
  external: Record<string, Uint8Array>;
}

/**
 * The weights are too large for one .onnx file (protobuf's 2 GiB limit, or the caller's
 * `externalDataThreshold`): write them with exportModelFiles(), which puts them in an external
 * data file. Code "external_data_required".
 */
export class ExternalDataRequiredError extends SqzError {
  constructor(
    /** Tensor bytes of the graph. */
    readonly weightBytes: number,
    /** The threshold they exceed. */
    readonly threshold: number,
  ) {
    super(
      "external_data_required",
      `exportModel: the weights take ${weightBytes} bytes, over the ${threshold}-byte limit ` +
        `of a single .onnx file (protobuf cannot exceed 2 GiB): write the model with external ` +
        `data (exportModelFiles, or a caller that stores the .onnx.data file beside it)`,
    );
  }
}

/** Default externalDataThreshold: protobuf's 2 GiB limit less 64 MiB for the graph itself. */
export const DEFAULT_EXTERNAL_THRESHOLD = 2 ** 31 - 64 * 2 ** 20;
export const DEFAULT_EXTERNAL_LOCATION = "model.onnx.data";
const DEFAULT_EXTERNAL_MIN_TENSOR = 1024;

/**
 * Scalar attributes ONNX declares FLOAT in every op that has them, plus sqz's fused clamp.
 * `seed` is FLOAT only in the random ops (Dropout's is INT), hence the op lists.
 */
const FLOAT_ATTRS: Readonly<Record<string, ReadonlySet<string> | "all">> = {
  alpha: "all", // Elu, LeakyRelu, HardSigmoid, Selu, ThresholdedRelu, Celu, Gemm, LRN
  beta: "all", // Gemm, LRN, HardSigmoid
  gamma: "all", // Selu
  bias: "all", // LRN, Shrink
  lambd: "all", // Shrink
  epsilon: "all", // BatchNormalization, Instance/Layer/Group/RMSNormalization
  momentum: "all", // BatchNormalization
  min: "all", // Clip before opset 11
  max: "all",
  value: "all", // Pad before opset 11 (Constant's `value` never reaches the IR: it is a constant)
  ratio: "all", // Dropout before opset 12
  scale: "all", // ImageScaler, RandomNormal*, Attention
  softcap: "all", // Attention
  mean: "all", // RandomNormal*
  high: "all", // RandomUniform*
  low: "all",
  spatial_scale: "all", // RoiAlign, MaxRoiPool
  extrapolation_value: "all", // Resize
  cubic_coeff_a: "all", // Resize
  clip: "all", // RNN, GRU, LSTM
  seed: new Set([
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Bernoulli",
    "Multinomial",
  ]),
  activation_min: "all", // sqz's fused Relu/Clip bounds (src/graph/passes.ts)
  activation_max: "all",
};

function isFloatAttr(name: string, op: string): boolean {
  const ops = FLOAT_ATTRS[name];
  return ops === "all" || (ops !== undefined && ops.has(op));
}

/** List attributes ONNX declares FLOATS (so [1, 1, 2, 2] stays FLOATS). */
const FLOATS_ATTRS: ReadonlySet<string> = new Set([
  "scales", // Upsample before opset 9
  "bias", // ImageScaler
  "activation_alpha", // RNN, GRU, LSTM
  "activation_beta",
]);

/** Engine dtype → TensorProto.DataType. */
const DATA_TYPE: Record<TensorType, number> = {
  float32: DataType.FLOAT,
  float64: DataType.DOUBLE,
  float16: DataType.FLOAT16,
  int8: DataType.INT8,
  uint8: DataType.UINT8,
  int16: DataType.INT16,
  uint16: DataType.UINT16,
  int32: DataType.INT32,
  uint32: DataType.UINT32,
  int64: DataType.INT64,
  uint64: DataType.UINT64,
  bool: DataType.BOOL,
  int4: DataType.INT4,
  uint4: DataType.UINT4,
};

/**
 * IR version by default-domain opset (ONNX's versioning table): the oldest IR that knows the
 * opset, so older runtimes still load the file. At least 4, where initializers need not also
 * be graph inputs.
 */
function irVersionFor(opset: number): number {
  if (opset <= 9) return 4;
  if (opset <= 11) return opset - 5; // 10 → 5, 11 → 6
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 22) return 10;
  if (opset === 23) return 11;
  if (opset === 24) return 12;
  return 13;
}
/** int4/uint4 exist from IR 10 on. */
const IR_FOR_4BIT = 10;
/** protobuf cannot encode a message of 2 GiB or more. */
const MAX_MODEL_BYTES = 2 ** 31 - 1;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Serializes a graph to ONNX model bytes, one file. The graph is not modified. Weights over
 * `externalDataThreshold` throw ExternalDataRequiredError: use exportModelFiles() for those.
 */
export function exportModel(g: Graph, opts: ExportOptions = {}): Uint8Array {
  return build(g, opts, false).model;
}

/**
 * Serializes a graph to an .onnx and, when its weights exceed `externalDataThreshold`, one
 * external data file (`external[externalDataLocation]`) the .onnx's tensors refer to. Load it
 * with `Session.create(model, { externalData: external })`, or write both files side by side
 * and load the .onnx by path.
 */
export function exportModelFiles(g: Graph, opts: ExportOptions = {}): ExportedModel {
  return build(g, opts, true);
}

function externalOptions(opts: ExportOptions) {
  const threshold = opts.externalDataThreshold ?? DEFAULT_EXTERNAL_THRESHOLD;
  if (!(Number.isSafeInteger(threshold) && threshold >= 0 && threshold <= MAX_MODEL_BYTES)) {
    throw new ArgumentError(
      `exportModel: externalDataThreshold must be an integer in [0, ${MAX_MODEL_BYTES}], got ` +
        `${threshold}`,
    );
  }
  const minTensor = opts.externalDataMinTensorBytes ?? DEFAULT_EXTERNAL_MIN_TENSOR;
  if (!(Number.isSafeInteger(minTensor) && minTensor >= 0)) {
    throw new ArgumentError(
      `exportModel: externalDataMinTensorBytes must be a non-negative integer, got ${minTensor}`,
    );
  }
  const location = opts.externalDataLocation ?? DEFAULT_EXTERNAL_LOCATION;
  if (
    typeof location !== "string" || !location || location.length > 255 ||
    location.startsWith("/") || /[\\\0]/.test(location) ||
    location.split("/").some((p) => p === "" || p === "." || p === "..")
  ) {
    throw new ArgumentError(
      `exportModel: externalDataLocation must be a relative file name inside the model's ` +
        `directory, got '${String(location).slice(0, 80)}'`,
    );
  }
  return { threshold, minTensor, location };
}

function build(g: Graph, opts: ExportOptions, allowExternal: boolean): ExportedModel {
  if (!(g instanceof Graph)) throw new ArgumentError("exportModel: expected a Graph");
  const onnxOpset = g.opsets.get("") ?? g.opsets.get("ai.onnx");
  if (onnxOpset === undefined) {
    throw new ArgumentError("exportModel: the graph imports no ONNX opset (set g.opsets)");
  }
  const ext = externalOptions(opts);
  const state: ExportState = { bytes: 0, has4bit: false, initializers: [] };
  const graph = graphProto(g, "graph", state, true);

  const opsets = new Map(g.opsets);
  const visit = (gr: Graph) => {
    for (const n of gr.nodes) {
      if (n.domain !== "" && n.domain !== "ai.onnx" && !opsets.has(n.domain)) {
        opsets.set(n.domain, 1);
      }
      for (const a of Object.values(n.attrs)) if (a instanceof Graph) visit(a);
    }
  };
  visit(g);

  const metadata = Object.entries(opts.metadata ?? {}).map(([key, value]) => {
    if (typeof value !== "string") {
      throw new ArgumentError(`exportModel: metadata '${key}' must be a string`);
    }
    return { key, value };
  });
  const model: ModelProto = {
    irVersion: Math.max(irVersionFor(onnxOpset), state.has4bit ? IR_FOR_4BIT : 0),
    producerName: opts.producerName ?? "sqz",
    opsetImport: [...opsets].map(([domain, version]) => ({ domain, version })),
    graph,
    metadataProps: metadata,
    trainingInfo: [],
    functions: [],
    configuration: [],
  };
  if (opts.docString !== undefined) model.docString = opts.docString;
  const external: Record<string, Uint8Array> = {};
  if (state.bytes > ext.threshold) {
    if (!allowExternal) throw new ExternalDataRequiredError(state.bytes, ext.threshold);
    external[ext.location] = moveToExternal(state, ext);
  }
  return { model: encodeModel(model), external };
}

interface ExportState {
  /** Tensor bytes written (inline ones, once external data has been split off). */
  bytes: number;
  has4bit: boolean;
  /** Every initializer written, of every graph: what may move to external data. */
  initializers: TensorProto[];
}

/** Offsets in the external file: 64 bytes, and 64 KiB for tensors over 1 MiB (as onnx). */
const EXTERNAL_ALIGN = 64;
const EXTERNAL_PAGE_ALIGN = 65536;
const EXTERNAL_PAGE_ABOVE = 1 << 20;

/**
 * Moves initializers' raw_data into one external file: those of at least `minTensor` bytes,
 * or all of them when the ones left inline would still exceed the threshold. Returns the file.
 */
function moveToExternal(
  state: ExportState,
  ext: { threshold: number; minTensor: number; location: string },
): Uint8Array {
  const size = (t: TensorProto) => t.rawData?.length ?? 0;
  let chosen = state.initializers.filter((t) => size(t) > 0 && size(t) >= ext.minTensor);
  const moved = (list: TensorProto[]) => list.reduce((a, t) => a + size(t), 0);
  if (state.bytes - moved(chosen) > ext.threshold) {
    chosen = state.initializers.filter((t) => size(t) > 0);
  }
  const inline = state.bytes - moved(chosen);
  if (inline > ext.threshold) {
    throw new ArgumentError(
      `exportModel: ${inline} bytes of tensors stay inline even with external data (node ` +
        `attribute tensors cannot move), over the ${ext.threshold}-byte limit`,
    );
  }
  const offsets: number[] = [];
  let end = 0;
  for (const t of chosen) {
    const n = size(t);
    const align = n > EXTERNAL_PAGE_ABOVE ? EXTERNAL_PAGE_ALIGN : EXTERNAL_ALIGN;
    const at = Math.ceil(end / align) * align;
    offsets.push(at);
    end = at + n;
  }
  const file = new Uint8Array(end);
  chosen.forEach((t, i) => {
    const n = size(t);
    file.set(t.rawData!, offsets[i]);
    t.rawData = undefined;
    t.dataLocation = DataLocation.EXTERNAL;
    t.externalData = [
      { key: "location", value: ext.location },
      { key: "offset", value: String(offsets[i]) },
      { key: "length", value: String(n) },
    ];
  });
  state.bytes = inline;
  return file;
}

/** Nodes in dependency order without reordering g.nodes (Kahn's algorithm, stable). */
function topoOrder(g: Graph): Node[] {
  const inGraph = new Set(g.nodes);
  const indeg = new Map<Node, number>();
  for (const n of g.nodes) {
    indeg.set(n, n.inputs.filter((v) => v?.producer && inGraph.has(v.producer)).length);
  }
  const ready = g.nodes.filter((n) => indeg.get(n) === 0);
  const order: Node[] = [];
  for (let i = 0; i < ready.length; i++) {
    const n = ready[i];
    order.push(n);
    for (const out of n.outputs) {
      for (const c of out.consumers) {
        if (!inGraph.has(c)) continue;
        const left = indeg.get(c)! - 1;
        indeg.set(c, left);
        if (left === 0) ready.push(c);
      }
    }
  }
  if (order.length !== g.nodes.length) {
    const stuck = g.nodes.filter((n) => !order.includes(n)).map((n) => n.name).slice(0, 5);
    throw new ModelError(`exportModel: the graph has a cycle through node(s) ${stuck.join(", ")}`);
  }
  return order;
}

/**
 * One graph (the model's, or a subgraph attribute). In a subgraph, names nothing inside
 * provides come from the enclosing scope, so only the top level checks that every read value
 * has a source.
 */
function graphProto(g: Graph, name: string, state: ExportState, top: boolean): GraphProto {
  const nodes = topoOrder(g);
  const inputs = new Set(g.inputs);
  const initializers: TensorProto[] = [];
  const written = new Set<Value>();
  const useConstant = (v: Value) => {
    if (written.has(v) || !v.constant || v.producer || inputs.has(v)) return;
    written.add(v);
    const t = tensorProto(v.constant, v.name, state, `initializer '${v.name}'`);
    initializers.push(t);
    state.initializers.push(t);
  };
  const nodeProtos: NodeProto[] = nodes.map((n) => {
    for (const v of n.inputs) {
      if (!v) continue;
      useConstant(v);
      if (top && !v.constant && !v.producer && !inputs.has(v)) {
        throw new ModelError(
          `exportModel: node '${n.name}' (${n.op}) reads '${v.name}', which no input, ` +
            `constant or node provides`,
        );
      }
    }
    return nodeProto(n, state, g.outputs);
  });
  for (const v of g.outputs) {
    useConstant(v);
    if (top && !v.constant && !v.producer && !inputs.has(v)) {
      throw new ModelError(`exportModel: graph output '${v.name}' is never produced`);
    }
  }
  // Subgraphs may read the enclosing graph's constants by name.
  for (const n of nodes) {
    for (const a of Object.values(n.attrs)) {
      if (!(a instanceof Graph)) continue;
      for (const name of outerReads(a)) {
        const v = g.values.get(name);
        if (v) useConstant(v);
      }
    }
  }

  // Types of values nothing reads are of no use to anyone loading the model.
  const outputs = new Set(g.outputs);
  const valueInfo: ValueInfoProto[] = [];
  for (const n of nodes) {
    for (const v of n.outputs) {
      if (!outputs.has(v) && v.type !== undefined && v.consumers.length) {
        valueInfo.push(valueInfoProto(v));
      }
    }
  }
  return {
    name,
    node: nodeProtos,
    input: g.inputs.map(valueInfoProto),
    output: g.outputs.map(valueInfoProto),
    initializer: initializers,
    sparseInitializer: [],
    valueInfo,
    quantizationAnnotation: [],
    metadataProps: [],
  };
}

/** Names a subgraph (and its own subgraphs) reads but does not define. */
function outerReads(g: Graph): Set<string> {
  const defined = new Set<Value>(g.inputs);
  for (const n of g.nodes) for (const v of n.outputs) defined.add(v);
  const reads = new Set<string>();
  const read = (v: Value) => {
    if (!defined.has(v) && !v.constant) reads.add(v.name);
  };
  for (const n of g.nodes) {
    for (const v of n.inputs) if (v) read(v);
    for (const a of Object.values(n.attrs)) {
      if (a instanceof Graph) { for (const name of outerReads(a)) reads.add(name); }
    }
  }
  for (const v of g.outputs) read(v);
  return reads;
}

/**
 * The importer names an omitted optional output `<node>::unused<k>`; such an output, if
 * nothing reads it (not even the graph), goes back to ONNX's empty name.
 */
function isOmittedOutput(v: Value, graphOutputs: readonly Value[]): boolean {
  if (v.consumers.length || graphOutputs.includes(v) || !v.producer) return false;
  const prefix = `${v.producer.name}::unused`;
  return v.name.startsWith(prefix) && /^\d+$/.test(v.name.slice(prefix.length));
}

function nodeProto(n: Node, state: ExportState, graphOutputs: readonly Value[]): NodeProto {
  // Omitted outputs stay in place as "": the reimported node keeps its output count.
  const outputs = n.outputs.map((v) => (isOmittedOutput(v, graphOutputs) ? "" : v.name));
  const attrs: AttributeProto[] = [];
  for (const [name, value] of Object.entries(n.attrs)) {
    if (value === undefined) continue;
    attrs.push(attributeProto(name, value, n, state));
  }
  const p: NodeProto = {
    input: n.inputs.map((v) => v?.name ?? ""),
    output: outputs,
    name: n.name,
    opType: n.op,
    attribute: attrs,
    metadataProps: [],
    deviceConfigurations: [],
  };
  if (n.domain) p.domain = n.domain;
  return p;
}

function isTensor(v: unknown): v is Tensor {
  return typeof v === "object" && v !== null && !Array.isArray(v) && "dims" in v &&
    "data" in v && "type" in v;
}

function attributeProto(name: string, v: AttrValue, n: Node, state: ExportState): AttributeProto {
  const where = `node '${n.name}' (${n.op}) attribute '${name}'`;
  if (typeof v === "number") {
    const float = isFloatAttr(name, n.op) || !Number.isInteger(v);
    return float
      ? attribute(name, { type: AttributeType.FLOAT, f: v })
      : attribute(name, { type: AttributeType.INT, i: v });
  }
  if (typeof v === "string") return attribute(name, { type: AttributeType.STRING, s: enc(v) });
  if (v instanceof Graph) {
    return attribute(name, { type: AttributeType.GRAPH, g: graphProto(v, name, state, false) });
  }
  if (Array.isArray(v)) {
    const items = v as unknown[];
    if (items.every((x) => typeof x === "number")) {
      const nums = items as number[];
      const float = FLOATS_ATTRS.has(name) || nums.some((x) => !Number.isInteger(x));
      return float
        ? attribute(name, { type: AttributeType.FLOATS, floats: nums })
        : attribute(name, { type: AttributeType.INTS, ints: nums });
    }
    if (items.every((x) => typeof x === "string")) {
      return attribute(name, {
        type: AttributeType.STRINGS,
        strings: (items as string[]).map(enc),
      });
    }
    if (items.every(isTensor)) {
      const tensors = (items as Tensor[]).map((t, i) =>
        tensorProto(t, "", state, `${where}[${i}]`)
      );
      return attribute(name, { type: AttributeType.TENSORS, tensors });
    }
    throw new ArgumentError(`exportModel: ${where} is a list of mixed kinds`);
  }
  if (isTensor(v)) {
    return attribute(name, { type: AttributeType.TENSOR, t: tensorProto(v, "", state, where) });
  }
  throw new ArgumentError(`exportModel: ${where} has a value of unknown kind`);
}

const textEncoder = new TextEncoder();
function enc(s: string): Uint8Array {
  return textEncoder.encode(s);
}

/** A tensor as a TensorProto in raw_data, after checking it is what its dtype says. */
function tensorProto(t: Tensor, name: string, state: ExportState, what: string): TensorProto {
  const dt = DATA_TYPE[t.type];
  if (dt === undefined) throw new ArgumentError(`exportModel: ${what} has unknown type ${t.type}`);
  if (!Array.isArray(t.dims) || t.dims.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new ArgumentError(`exportModel: ${what} has invalid dims [${t.dims}]`);
  }
  const data = t.data;
  if (data?.constructor?.name !== ARRAY_CLASS[t.type]) {
    throw new ArgumentError(
      `exportModel: ${what} is ${t.type}, so its data must be a ${
        ARRAY_CLASS[t.type]
      }, got ${data?.constructor?.name}`,
    );
  }
  const count = elementCount(t.dims);
  if (data.length !== count) {
    throw new ArgumentError(
      `exportModel: ${what} has ${data.length} elements but dims [${t.dims}] need ${count}`,
    );
  }
  // Values the packed encodings cannot hold would be silently masked: refuse them.
  const [lo, hi] = t.type === "int4" ? [-8, 7] : t.type === "uint4" ? [0, 15] : [0, 1];
  if (t.type === "int4" || t.type === "uint4" || t.type === "bool") {
    const d = data as Int8Array | Uint8Array;
    for (let i = 0; i < d.length; i++) {
      if (d[i] < lo || d[i] > hi) {
        throw new ArgumentError(`exportModel: ${what}: ${t.type} element ${i} is ${d[i]}`);
      }
    }
  }
  if (t.type === "int4" || t.type === "uint4") {
    state.has4bit = true;
    state.bytes += Math.ceil(count / 2);
    return tensorFromArray(name, dt, t.dims, data);
  }
  state.bytes += data.byteLength;
  if (!LITTLE_ENDIAN) return tensorFromArray(name, dt, t.dims, data);
  // The typed array's bytes are already ONNX's little-endian raw_data: no per-element copy.
  return {
    name,
    dataType: dt,
    dims: [...t.dims],
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    floatData: [],
    int32Data: [],
    stringData: [],
    int64Data: [],
    externalData: [],
    doubleData: [],
    uint64Data: [],
    metadataProps: [],
  };
}

function valueInfoProto(v: Value): ValueInfoProto {
  const p: ValueInfoProto = { name: v.name, metadataProps: [] };
  if (v.type !== undefined) {
    p.type = {
      tensorType: {
        elemType: DATA_TYPE[v.type] ?? DataType.UNDEFINED,
        ...(v.shape
          ? {
            shape: {
              dim: v.shape.map((d) =>
                typeof d === "number"
                  ? { dimValue: d }
                  : d === "?" || d === ""
                  ? {}
                  : { dimParam: d }
              ),
            },
          }
          : {}),
      },
    };
  }
  return p;
}
