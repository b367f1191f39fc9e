// Access to the ONNX project's node tests in ../shared/conformance (or $SQZ_CONFORMANCE_DIR).
// Tests that need them skip with a message when the directory is missing (CI has it).
import {
  decodeModel,
  decodeTensor,
  type OnnxModel,
  type TensorProto,
  tensorToArray,
} from "../src/onnx/proto.ts";
import { ONNX_TYPES, type Tensor } from "../src/graph/tensor.ts";
import { halfToFloat } from "../src/ops/quant.ts";
import { importModel } from "../src/onnx/import.ts";
import type { Value } from "../src/graph/ir.ts";
import { jsContext, type OpImpl } from "../src/ops/types.ts";

export function conformanceDir(): string | undefined {
  const env = Deno.env.get("SQZ_CONFORMANCE_DIR");
  const candidates = env ? [env] : [
    new URL("../../shared/conformance", import.meta.url).pathname,
  ];
  for (const dir of candidates) {
    try {
      if (Deno.statSync(`${dir}/onnx-node`).isDirectory) return dir;
    } catch { /* try the next */ }
  }
  return undefined;
}

export interface ConformanceCase {
  name: string;
  model: OnnxModel;
  sets: { inputs: TensorProto[]; outputs: TensorProto[] }[];
}

/** Case names under onnx-node whose name passes `filter`. */
export function listCases(filter: (name: string) => boolean): string[] {
  const dir = conformanceDir();
  if (!dir) return [];
  return [...Deno.readDirSync(`${dir}/onnx-node`)].map((e) => e.name).filter(filter).sort();
}

export function loadCase(name: string): ConformanceCase {
  const root = `${conformanceDir()}/onnx-node/${name}`;
  const model = decodeModel(Deno.readFileSync(`${root}/model.onnx`));
  const sets = [];
  for (const e of [...Deno.readDirSync(root)].filter((e) => e.isDirectory).sort()) {
    const files = [...Deno.readDirSync(`${root}/${e.name}`)].map((f) => f.name).sort();
    const read = (prefix: string) =>
      files.filter((f) => f.startsWith(prefix)).sort((a, b) => idx(a) - idx(b))
        .map((f) => decodeTensor(Deno.readFileSync(`${root}/${e.name}/${f}`)));
    sets.push({ inputs: read("input_"), outputs: read("output_") });
  }
  return { name, model, sets };
}

function idx(f: string): number {
  return Number(f.match(/_(\d+)\.pb$/)?.[1] ?? 0);
}

/** NCHW → NHWC for a 4-D tensor. */
export function nchwToNhwc<T extends Float32Array | Uint8Array | Int8Array | Int32Array>(
  x: T,
  [n, c, h, w]: number[],
): T {
  const out = new (x.constructor as new (n: number) => T)(x.length);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      for (let i = 0; i < h * w; i++) out[(b * h * w + i) * c + ch] = x[(b * c + ch) * h * w + i];
    }
  }
  return out;
}

/** NHWC → NCHW for a 4-D tensor given its NCHW dims. */
export function nhwcToNchw<T extends Float32Array | Uint8Array | Int8Array | Int32Array>(
  x: T,
  [n, c, h, w]: number[],
): T {
  const out = new (x.constructor as new (n: number) => T)(x.length);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      for (let i = 0; i < h * w; i++) out[(b * c + ch) * h * w + i] = x[(b * h * w + i) * c + ch];
    }
  }
  return out;
}

/** ONNX's default tolerance: |a − b| ≤ atol + rtol·|b|. */
export function allClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  rtol = 1e-3,
  atol = 1e-7,
): string | undefined {
  if (got.length !== want.length) return `length ${got.length} vs ${want.length}`;
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= atol + rtol * Math.abs(want[i]))) {
      return `[${i}] ${got[i]} vs ${want[i]}`;
    }
  }
  return undefined;
}

/** A decoded TensorProto as an engine tensor. */
export function protoTensor(t: TensorProto): Tensor {
  const type = ONNX_TYPES[t.dataType ?? 0];
  if (!type) throw new Error(`tensor '${t.name}': data type ${t.dataType} has no engine type`);
  return { type, dims: t.dims.map(Number), data: tensorToArray(t) as Tensor["data"] };
}

/**
 * Compares an output with the expected tensor: integers and bools exactly, floats with ONNX's
 * tolerance (NaN equals NaN, as numpy's assert_allclose has it). Returns the mismatch, if any.
 */
export function compareTensor(
  got: Tensor,
  want: Tensor,
  rtol = 1e-3,
  atol = 1e-7,
): string | undefined {
  if (got.type !== want.type) return `type ${got.type}, expected ${want.type}`;
  if (got.dims.join() !== want.dims.join()) return `dims [${got.dims}], expected [${want.dims}]`;
  const half = got.type === "float16";
  // float16 compares as the values its bits stand for.
  const g = (half ? halfToFloat(got.data as Uint16Array) : got.data) as ArrayLike<number | bigint>;
  const w = (half ? halfToFloat(want.data as Uint16Array) : want.data) as ArrayLike<
    number | bigint
  >;
  if (g.length !== w.length) return `${g.length} elements, expected ${w.length}`;
  const float = got.type === "float32" || got.type === "float64";
  for (let i = 0; i < w.length; i++) {
    const a = g[i], b = w[i];
    if (float || half) {
      const x = a as number, y = b as number;
      if (Number.isNaN(x) && Number.isNaN(y)) continue;
      if (x === y) continue; // infinities
      if (!(Math.abs(x - y) <= atol + rtol * Math.abs(y))) return `[${i}] ${x} vs ${y}`;
    } else if (a !== b) return `[${i}] ${a} vs ${b}`;
  }
  return undefined;
}

/** One test_data_set_N directory of a case, as engine tensors (inputs and outputs in order). */
export function readDataSet(root: string, set: string): { inputs: Tensor[]; outputs: Tensor[] } {
  const files = [...Deno.readDirSync(`${root}/${set}`)].map((f) => f.name);
  const read = (prefix: string): Tensor[] =>
    files.filter((f) => f.startsWith(prefix))
      .sort((a, b) => idx(a) - idx(b))
      .map((f) => protoTensor(decodeTensor(Deno.readFileSync(`${root}/${set}/${f}`))));
  return { inputs: read("input_"), outputs: read("output_") };
}

/** The data-set directories of a case, sorted. */
export function dataSets(root: string): string[] {
  return [...Deno.readDirSync(root)].filter((e) => e.isDirectory).map((e) => e.name).sort();
}

/**
 * Runs a single-node case straight through a TypeScript op (no Session, no kernels); returns
 * the first mismatch. Multi-node (expanded) cases return undefined: they are not one op.
 */
export function runSingleNode(name: string, ops: Record<string, OpImpl>): string | undefined {
  const root = `${conformanceDir()}/onnx-node/${name}`;
  const g = importModel(Deno.readFileSync(`${root}/model.onnx`));
  if (g.nodes.length !== 1) return undefined;
  const node = g.nodes[0];
  const op = ops[node.op];
  if (!op) return `no op ${node.op}`;
  for (const set of dataSets(root)) {
    const { inputs, outputs } = readDataSet(root, set);
    const feed = new Map<Value, Tensor>(g.inputs.map((v, i) => [v, inputs[i]]));
    const got = op(
      node.inputs.map((v) => v && (feed.get(v) ?? v.constant)),
      jsContext(node, g.opsets.get("") ?? 1),
    );
    for (let i = 0; i < outputs.length; i++) {
      const bad = compareTensor(got[node.outputs.indexOf(g.outputs[i])], outputs[i]);
      if (bad) return `${set} output ${i}: ${bad}`;
    }
  }
  return undefined;
}
