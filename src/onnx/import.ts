// ONNX model bytes → Graph. Every way a model can be malformed ends in a typed ModelError
// (or OnnxDecodeError for bytes that are not protobuf) that names what is wrong; sizes are
// checked before anything is allocated.
import {
  type AttributeProto,
  AttributeType,
  DataLocation,
  dataTypeName,
  decodeModel,
  type TensorProto,
  tensorToArray,
  type ValueInfoProto,
} from "./proto.ts";
import { type AttrValue, type Dim, Graph, Node } from "../graph/ir.ts";
import { ELEMENT_BYTES, elementCount, ONNX_TYPES, type Tensor } from "../graph/tensor.ts";
import { ArgumentError, ModelError, UnsupportedError } from "../errors.ts";
import { LEGACY_TARGET, upgradeLegacyOpset } from "./legacy.ts";

export interface ImportOptions {
  /** External data files by `location`, for callers that hold the bytes themselves. */
  externalData?: Record<string, Uint8Array>;
  /** Directory that `location` paths are relative to (the model's own directory). */
  baseDir?: string;
  /** Largest tensor accepted, in bytes (default 2 GiB, what wasm32 kernels can index). */
  maxTensorBytes?: number;
  /** When given, every node's op must be in it; the rest are reported together. */
  supportedOps?: ReadonlySet<string>;
}

const DEFAULT_MAX_TENSOR = 2 ** 31 - 1;
/**
 * Oldest default-domain opset whose ops run as written. Opsets 1–6 are accepted too: their ops
 * are rewritten into opset-7 form at import (src/onnx/legacy.ts; `Graph.notes` says what).
 */
export const MIN_OPSET = LEGACY_TARGET;

const text = new TextDecoder();

export function importModel(bytes: Uint8Array, opts: ImportOptions = {}): Graph {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) {
    throw new ModelError("the model is empty");
  }
  const model = decodeModel(bytes);
  const gp = model.graph;
  if (!gp) throw new ModelError("the model has no graph");
  const g = new Graph();
  for (const o of model.opsetImport) g.opsets.set(o.domain ?? "", o.version ?? 1);
  let onnxOpset = g.opsets.get("") ?? g.opsets.get("ai.onnx");
  if (onnxOpset === undefined && !model.opsetImport.length && (model.irVersion ?? 0) < 3) {
    // IR versions 1 and 2 predate opset_import: their ops are opset 1's.
    g.opsets.set("", onnxOpset = 1);
  }
  if (onnxOpset === undefined) throw new ModelError("the model imports no ONNX opset");
  if (!Number.isInteger(onnxOpset) || onnxOpset < 1) {
    throw new ModelError(`the model imports ONNX opset ${onnxOpset}; opset versions start at 1`);
  }
  const maxBytes = opts.maxTensorBytes ?? DEFAULT_MAX_TENSOR;

  // Initializers first: a graph input of the same name is an overridable default.
  const initializers = new Set<string>();
  for (const t of gp.initializer) {
    const name = t.name ?? "";
    if (!name) throw new ModelError("an initializer has no name");
    if (initializers.has(name)) throw new ModelError(`initializer '${name}' is defined twice`);
    initializers.add(name);
    const v = g.value(name);
    v.constant = tensorFromProto(t, opts, maxBytes);
    v.type = v.constant.type;
    v.shape = [...v.constant.dims];
  }
  for (const vi of gp.input) {
    const v = g.value(vi.name ?? "");
    applyValueInfo(v, vi);
    if (!initializers.has(v.name)) g.inputs.push(v);
  }
  for (const vi of gp.valueInfo) applyValueInfo(g.value(vi.name ?? ""), vi);

  gp.node.forEach((np, i) => {
    const op = np.opType ?? "";
    if (!op) throw new ModelError(`node ${i} has no op_type`);
    const name = np.name || `${op}_${i}`;
    const attrs: Record<string, AttrValue> = {};
    for (const a of np.attribute) {
      const v = attrValue(a, name, opts, maxBytes);
      if (v !== undefined) attrs[a.name ?? ""] = v;
    }
    // Constant nodes become constants at once: every later pass sees them as initializers.
    if (op === "Constant" && (np.domain ?? "") === "") {
      const out = g.value(np.output[0] ?? "");
      out.constant = constantNodeValue(attrs, name);
      out.type = out.constant.type;
      out.shape = [...out.constant.dims];
      return;
    }
    const inputs = np.input.map((n) => (n ? g.value(n) : undefined));
    // An omitted optional output ("") gets a private name: two nodes may both omit one.
    const outputs = np.output.map((n, k) => g.value(n || `${name}::unused${k}`));
    g.addNode(new Node(name, op, np.domain ?? "", inputs, outputs, attrs));
  });

  // Every value read must come from somewhere.
  const fed = new Set(g.inputs.map((v) => v.name));
  for (const n of g.nodes) {
    for (const v of n.inputs) {
      if (v && !v.producer && !v.constant && !fed.has(v.name)) {
        throw new ModelError(
          `node '${n.name}' (${n.op}) reads '${v.name}', which no input, initializer or node provides`,
        );
      }
    }
  }
  for (const vi of gp.output) {
    const v = g.values.get(vi.name ?? "");
    if (!v || (!v.producer && !v.constant && !fed.has(v.name))) {
      throw new ModelError(`graph output '${vi.name}' is never produced`);
    }
    applyValueInfo(v, vi);
    g.outputs.push(v);
  }
  // Opsets 1–6: ops that changed meaning are rewritten into their opset-7 form.
  if (onnxOpset < MIN_OPSET) g.notes.push(...upgradeLegacyOpset(g, onnxOpset));
  if (opts.supportedOps) {
    const unknown = g.nodes.filter((n) => !opts.supportedOps!.has(n.qualifiedOp));
    if (unknown.length) {
      const list = unknown.slice(0, 20).map((n) => `${n.qualifiedOp} (node '${n.name}')`);
      throw new ModelError(
        `unsupported op${unknown.length > 1 ? "s" : ""}: ${list.join(", ")}` +
          (unknown.length > 20 ? `, and ${unknown.length - 20} more` : ""),
      );
    }
  }
  g.topoSort();
  return g;
}

function applyValueInfo(v: { type?: string; shape?: Dim[] }, vi: ValueInfoProto): void {
  const tt = vi.type?.tensorType;
  if (!tt) return;
  const type = ONNX_TYPES[tt.elemType ?? 0];
  if (!type && tt.elemType) {
    // STRING, complex, float8…: refuse at load rather than mistyping the value later.
    throw new UnsupportedError(
      `value '${vi.name ?? ""}' has type ${dataTypeName(tt.elemType)}, which sqz does not support`,
    );
  }
  if (type && !v.type) (v as { type?: string }).type = type;
  if (tt.shape && !v.shape) {
    // dim_param names a symbol; a missing or 0-free unknown dim becomes "?".
    v.shape = tt.shape.dim.map((d) =>
      d.dimValue !== undefined && d.dimValue > 0 ? d.dimValue : d.dimParam || "?"
    );
  }
}

/** Decodes a TensorProto (inline, raw or external) after checking its declared size. */
export function tensorFromProto(t: TensorProto, opts: ImportOptions, maxBytes: number): Tensor {
  const name = t.name ?? "(unnamed)";
  const dt = t.dataType ?? 0;
  const type = ONNX_TYPES[dt];
  if (!type) throw new ModelError(`tensor '${name}' has unsupported type ${dataTypeName(dt)}`);
  for (const d of t.dims) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new ModelError(`tensor '${name}' has an invalid dimension ${d}`);
    }
  }
  const count = elementCount(t.dims);
  const bytes = count * ELEMENT_BYTES[type];
  if (!(bytes <= maxBytes)) {
    throw new ModelError(
      `tensor '${name}' declares ${
        t.dims.join("×")
      } ${type} (${bytes} bytes), over the ${maxBytes}-byte limit`,
    );
  }
  // 4-bit types are stored two per byte.
  const storedBytes = type === "int4" || type === "uint4" ? Math.ceil(count / 2) : bytes;
  let proto = t;
  if (t.dataLocation === DataLocation.EXTERNAL) {
    proto = {
      ...t,
      dataLocation: DataLocation.DEFAULT,
      rawData: externalBytes(t, opts, storedBytes),
    };
  } else if (t.rawData && t.rawData.length) {
    if (t.rawData.length !== storedBytes) {
      throw new ModelError(
        `tensor '${name}' has ${t.rawData.length} bytes of raw_data but its dims ${
          JSON.stringify(t.dims)
        } need ${storedBytes}`,
      );
    }
  } else {
    const fieldLen = t.floatData.length || t.int32Data.length || t.int64Data.length ||
      t.doubleData.length || t.uint64Data.length;
    // int32_data carries 8/16-bit and bool elements one per entry, 4-bit ones two per entry.
    const want = type === "int4" || type === "uint4" ? Math.ceil(count / 2) : count;
    if (fieldLen !== want && !(count === 0 && fieldLen === 0)) {
      throw new ModelError(`tensor '${name}' holds ${fieldLen} values but its dims need ${want}`);
    }
  }
  const data = tensorToArray(proto);
  return { type, dims: [...t.dims], data };
}

function externalBytes(t: TensorProto, opts: ImportOptions, need: number): Uint8Array {
  const name = t.name ?? "(unnamed)";
  const kv = Object.fromEntries(t.externalData.map((e) => [e.key ?? "", e.value ?? ""]));
  const location = kv.location;
  if (!location) throw new ModelError(`tensor '${name}' is external but has no location`);
  const offset = kv.offset ? Number(kv.offset) : 0;
  const length = kv.length ? Number(kv.length) : need;
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new ModelError(`tensor '${name}' has an invalid external offset/length`);
  }
  if (length !== need) {
    throw new ModelError(
      `tensor '${name}' external length ${length} does not match its dims (${need} bytes)`,
    );
  }
  let file = opts.externalData?.[location];
  if (!file) {
    if (location.includes("..") || location.startsWith("/")) {
      throw new ModelError(
        `tensor '${name}': external location '${location}' leaves the model directory`,
      );
    }
    if (opts.baseDir === undefined) {
      throw new ModelError(
        `tensor '${name}' needs external data '${location}': pass its bytes or the model's path`,
      );
    }
    try {
      file = Deno.readFileSync(`${opts.baseDir}/${location}`);
    } catch (e) {
      throw new ModelError(
        `tensor '${name}': cannot read external data '${location}': ${(e as Error).message}`,
      );
    }
  }
  if (offset + length > file.length) {
    throw new ModelError(
      `tensor '${name}': external data '${location}' has ${file.length} bytes, needs ${
        offset + length
      }`,
    );
  }
  return file.subarray(offset, offset + length);
}

function attrValue(
  a: AttributeProto,
  node: string,
  opts: ImportOptions,
  maxBytes: number,
): AttrValue | undefined {
  switch (a.type) {
    case AttributeType.FLOAT:
      return a.f ?? 0;
    case AttributeType.INT:
      return a.i ?? 0;
    case AttributeType.STRING:
      return text.decode(a.s ?? new Uint8Array());
    case AttributeType.TENSOR:
      if (!a.t) throw new ModelError(`node '${node}': attribute '${a.name}' has no tensor`);
      return tensorFromProto(a.t, opts, maxBytes);
    case AttributeType.FLOATS:
      return a.floats;
    case AttributeType.INTS:
      return a.ints;
    case AttributeType.STRINGS:
      return a.strings.map((s) => text.decode(s));
    case AttributeType.TENSORS:
      return a.tensors.map((t) => tensorFromProto(t, opts, maxBytes));
    default:
      // Subgraphs, sparse tensors and type protos belong to ops outside the CNN op set;
      // such nodes are reported as unsupported ops.
      return undefined;
  }
}

function constantNodeValue(attrs: Record<string, AttrValue>, node: string): Tensor {
  const v = attrs.value;
  if (v && typeof v === "object" && !Array.isArray(v) && "data" in v) return v as Tensor;
  if (typeof attrs.value_float === "number") {
    return { type: "float32", dims: [], data: Float32Array.of(attrs.value_float) };
  }
  if (Array.isArray(attrs.value_floats)) {
    const f = attrs.value_floats as number[];
    return { type: "float32", dims: [f.length], data: Float32Array.from(f) };
  }
  if (typeof attrs.value_int === "number") {
    return { type: "int64", dims: [], data: BigInt64Array.of(BigInt(attrs.value_int)) };
  }
  if (Array.isArray(attrs.value_ints)) {
    const f = attrs.value_ints as number[];
    return { type: "int64", dims: [f.length], data: BigInt64Array.from(f, (x) => BigInt(x)) };
  }
  throw new ModelError(`Constant node '${node}' has no supported value attribute`);
}

/** A model given as bytes or a path: its bytes and the directory external data is read from. */
export async function readModel(
  model: Uint8Array | string,
): Promise<{ bytes: Uint8Array; baseDir?: string }> {
  if (model instanceof Uint8Array) return { bytes: model };
  if (typeof model !== "string") {
    throw new ArgumentError("the model must be a Uint8Array or a path");
  }
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(model);
  } catch (e) {
    throw new ModelError(`cannot read '${model}': ${(e as Error).message}`);
  }
  const slash = model.lastIndexOf("/");
  return { bytes, baseDir: slash >= 0 ? model.slice(0, slash) || "/" : "." };
}
