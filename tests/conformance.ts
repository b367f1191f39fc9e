// Access to the ONNX project's node tests in ../shared/conformance (or $SQZ_CONFORMANCE_DIR).
// Tests that need them skip with a message when the directory is missing (CI has it).
import { decodeModel, decodeTensor, type OnnxModel, type TensorProto } from "../src/onnx/proto.ts";

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
