// How big a model is: the .onnx protobuf plus the external data files its tensors name. One
// place for the size accounting that compress(), evaluate(), the CLI, the HTML report and the
// service all report, so a model exported with external data (PyTorch 2.x writes
// `model.onnx` + `model.onnx.data` for anything large) is never reported at its graph size.
//
// Counting rule: each distinct external file (by `location`) is counted once, at its full size,
// as `du`, a download or onnxruntime loading it would see it — alignment padding and any bytes
// no tensor references included. Tensors sharing a file, or several models' worth of ranges in
// one file, therefore never count a byte twice. A file a tensor names but that cannot be found
// is a ModelError (the model would not load either).
//
// The gzip size is per file (gzip -9 of the .onnx, plus gzip -9 of each external file), what
// serving the files compressed one by one costs.
import { gzipSync as fflateGzip } from "fflate";
import { nodeZlib } from "../platform/node_builtin.ts";
import {
  type AttributeProto,
  DataLocation,
  decodeModel,
  type GraphProto,
  type ModelProto,
  type TensorProto,
} from "./proto.ts";
import { ModelError } from "../errors.ts";

/** Where external data is found: as in ImportOptions (src/onnx/import.ts). */
export interface ModelSizeOptions {
  /** External data files by `location`, for callers that hold the bytes themselves. */
  externalData?: Record<string, Uint8Array>;
  /** Directory that `location` paths are relative to (the model's own directory). */
  baseDir?: string;
}

export interface ExternalFileSize {
  /** The `location` the model's tensors name. */
  location: string;
  /** The file's full size, bytes. */
  bytes: number;
}

export interface ModelSize {
  /** graphBytes + externalBytes: everything the model takes on disk. */
  bytes: number;
  /** The .onnx protobuf itself. */
  graphBytes: number;
  /** The external data files, each counted once at its full size. */
  externalBytes: number;
  /** One entry per distinct external file, in the order the model first names them. */
  files: ExternalFileSize[];
}

/** The distinct external data locations the model's tensors name, in order of first use. */
export function externalLocations(model: Uint8Array | ModelProto): string[] {
  const proto = model instanceof Uint8Array ? decodeModel(model) : model;
  const seen = new Set<string>();
  const tensor = (t: TensorProto | undefined) => {
    if (!t || t.dataLocation !== DataLocation.EXTERNAL) return;
    const loc = t.externalData.find((e) => e.key === "location")?.value;
    if (!loc) {
      throw new ModelError(`tensor '${t.name ?? "(unnamed)"}' is external but has no location`);
    }
    seen.add(loc);
  };
  const attribute = (a: AttributeProto) => {
    tensor(a.t);
    a.tensors.forEach(tensor);
    if (a.g) graph(a.g);
    a.graphs.forEach(graph);
    if (a.sparseTensor) [a.sparseTensor.values, a.sparseTensor.indices].forEach(tensor);
    for (const s of a.sparseTensors) [s.values, s.indices].forEach(tensor);
  };
  const graph = (g: GraphProto) => {
    g.initializer.forEach(tensor);
    for (const s of g.sparseInitializer) [s.values, s.indices].forEach(tensor);
    for (const n of g.node) n.attribute.forEach(attribute);
  };
  if (proto.graph) graph(proto.graph);
  for (const f of proto.functions) for (const n of f.node) n.attribute.forEach(attribute);
  return [...seen];
}

/** An external file's bytes (when `read`) or size, found as the importer finds it. */
function external(
  location: string,
  opts: ModelSizeOptions,
): { bytes: number; data?: Uint8Array; path?: string } {
  const given = opts.externalData?.[location];
  if (given) return { bytes: given.length, data: given };
  if (location.includes("..") || location.startsWith("/")) {
    throw new ModelError(`external location '${location}' leaves the model directory`);
  }
  if (opts.baseDir === undefined) {
    throw new ModelError(
      `the model needs external data '${location}': pass its bytes or the model's path`,
    );
  }
  const path = `${opts.baseDir}/${location}`;
  try {
    const st = Deno.statSync(path);
    if (!st.isFile) throw new Error("not a file");
    return { bytes: st.size, path };
  } catch (e) {
    throw new ModelError(`cannot read external data '${location}': ${(e as Error).message}`);
  }
}

/** The model's size: its own bytes plus each external data file it names, counted once. */
export function modelSize(model: Uint8Array, opts: ModelSizeOptions = {}): ModelSize {
  const files = externalLocations(model).map((location) => ({
    location,
    bytes: external(location, opts).bytes,
  }));
  const externalBytes = files.reduce((a, f) => a + f.bytes, 0);
  return { bytes: model.length + externalBytes, graphBytes: model.length, externalBytes, files };
}

/**
 * Every file of the model: the .onnx (location "") first, then each external data file once.
 * Files found through `baseDir` are read here.
 */
export function modelFiles(
  model: Uint8Array,
  opts: ModelSizeOptions = {},
): { location: string; data: Uint8Array }[] {
  const out = [{ location: "", data: model }];
  for (const location of externalLocations(model)) {
    const f = external(location, opts);
    let data = f.data;
    if (!data) {
      try {
        data = Deno.readFileSync(f.path!);
      } catch (e) {
        throw new ModelError(`cannot read external data '${location}': ${(e as Error).message}`);
      }
    }
    out.push({ location, data });
  }
  return out;
}

/** gzip -9 of one buffer, bytes. */
export function gzipSize(bytes: Uint8Array): number {
  // Native zlib where the host has it; fflate (pure JS, also deflate level 9) in a browser,
  // whose sizes differ from zlib's by a few bytes.
  const zlib = nodeZlib();
  return zlib ? zlib.gzipSync(bytes, { level: 9 }).length : fflateGzip(bytes, { level: 9 }).length;
}

/** gzip -9 of the .onnx plus gzip -9 of each external data file (each counted once). */
export function gzipModelSize(model: Uint8Array, opts: ModelSizeOptions = {}): number {
  return modelFiles(model, opts).reduce((a, f) => a + gzipSize(f.data), 0);
}

/** Sum of the sizes of external data files held in memory (an export's `external`). */
export function externalFilesBytes(files: Record<string, Uint8Array> | undefined): number {
  return Object.values(files ?? {}).reduce((a, f) => a + f.length, 0);
}
