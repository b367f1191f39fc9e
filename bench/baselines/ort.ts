/**
 * Baselines: f32 MatMul and uint8×int8 MatMulInteger on onnxruntime-web's
 * wasm execution provider (MLAS), single-threaded unless initOrt(threads) is given more.
 *
 * Under Deno the "node" export condition selects dist/ort.node.min.mjs. ORT
 * 1.30 ships a single CPU binary, ort-wasm-simd-threaded.wasm (fixed-width
 * SIMD, pthread-capable); with numThreads = 1 it spawns no workers and runs
 * on the calling thread. With more, every session splits its operators over the
 * whole pool (measured: intraOpNumThreads does not change it), so 1- and 2-thread
 * ORT figures need separate processes. We point wasmPaths at node_modules explicitly (file:
 * URLs work: Deno's fetch and dynamic import both accept them) so the files
 * are never looked up relative to a bundle or CDN.
 */
import * as ort from "onnxruntime-web";
import { DataType, makeModel, node, tensorFromArray, valueInfo } from "../../src/onnx/proto.ts";
import { ArgumentError } from "../../src/errors.ts";

const ORT_DIST = new URL("../../node_modules/onnxruntime-web/dist/", import.meta.url);
const ORT_MJS = new URL("ort-wasm-simd-threaded.mjs", ORT_DIST);
const ORT_WASM = new URL("ort-wasm-simd-threaded.wasm", ORT_DIST);

let initialized = false;

/**
 * Configures the wasm EP: fixed SIMD, local binary, a pthread pool for `threads` (1: none; each
 * session then picks its intra-op threads, see makeBench). Call before creating sessions.
 */
export function initOrt(threads = 1): Promise<void> {
  if (initialized && (ort.env.wasm.numThreads ?? 1) < threads) {
    throw new ArgumentError(
      `ort baseline: initialized with ${ort.env.wasm.numThreads} thread(s), ${threads} asked`,
    );
  }
  if (!initialized) {
    // These flags are read once, when the first session initializes the wasm module.
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.simd = true;
    ort.env.wasm.proxy = false;
    ort.env.wasm.wasmPaths = { mjs: ORT_MJS, wasm: ORT_WASM };
    ort.env.logLevel = "warning";
    initialized = true;
  }
  return Promise.resolve();
}

export interface OrtInfo {
  version: string;
  numThreads: number | undefined;
  simd: boolean | "fixed" | "relaxed" | undefined;
  wasm: string;
}

/** Reports the wasm EP configuration in effect. */
export function ortInfo(): OrtInfo {
  return {
    version: ort.env.versions.web ?? "?",
    numThreads: ort.env.wasm.numThreads,
    simd: ort.env.wasm.simd,
    wasm: ORT_WASM.href,
  };
}

export interface OrtBench {
  /** Runs the session once on the pre-made input. */
  run(): Promise<void>;
  /** Output of the last run() (a JS copy of the wasm-heap result). */
  readonly result: Float32Array | Int32Array | undefined;
  /** Releases the session and the output of the last run. */
  dispose(): Promise<void>;
}

/** xorshift32 stream, so inputs are reproducible and shareable with reference checks. */
function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

/** Deterministic inputs of the two benchmarks (exported for correctness checks). */
export function ortMatMulInputs(M: number, N: number, K: number) {
  const r1 = xorshift(11);
  const r2 = xorshift(12);
  return {
    /** A (M×K) and B (K×N), uniform [-1, 1). */
    f32: {
      a: Float32Array.from({ length: M * K }, () => r1() / 2 ** 31 - 1),
      b: Float32Array.from({ length: K * N }, () => r2() / 2 ** 31 - 1),
    },
    /** A uint8 (M×K) full range, B int8 (K×N) full range, zero points 128 and 0. */
    int8: {
      a: Uint8Array.from({ length: M * K }, () => r1() & 0xff),
      b: Int8Array.from({ length: K * N }, () => (r2() & 0xff) - 128),
      aZeroPoint: 128,
      bZeroPoint: 0,
    },
  };
}

function checkDims(M: number, N: number, K: number): void {
  for (const [k, v] of Object.entries({ M, N, K })) {
    if (!Number.isInteger(v) || v <= 0) {
      throw new ArgumentError(`ort baseline: ${k}=${v} is not a positive integer`);
    }
  }
}

export async function makeBench(
  model: Uint8Array,
  input: ort.Tensor,
  outputName: string,
  threads = 1,
): Promise<OrtBench> {
  if (!initialized) throw new ArgumentError("ort baseline: call initOrt() first");
  if ((ort.env.wasm.numThreads ?? 1) !== threads) {
    throw new ArgumentError(
      `ort baseline: its pool has ${ort.env.wasm.numThreads} thread(s); ${threads} asked`,
    );
  }
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
    // The pthread pool holds env.wasm.numThreads and every session uses it; intraOpNumThreads
    // is passed for the record (initOrt checks the pool is large enough).
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    // Its pool threads would otherwise spin after each run, taking the core the next
    // engine in the interleaved round needs.
    extra: { session: { intra_op: { allow_spinning: "0" } } },
  });
  let last: ort.Tensor | undefined;
  return {
    async run() {
      const out = await session.run({ A: input });
      last?.dispose();
      last = out[outputName];
    },
    get result() {
      return last?.data as Float32Array | Int32Array | undefined;
    },
    async dispose() {
      last?.dispose();
      last = undefined;
      await session.release();
    },
  };
}

/** C = A·B in f32: A [M,K] is the graph input, B [K,N] a random initializer. */
export async function ortMatMulF32(
  M: number,
  N: number,
  K: number,
  threads = 1,
): Promise<OrtBench> {
  checkDims(M, N, K);
  const { a, b } = ortMatMulInputs(M, N, K).f32;
  const model = makeModel({
    nodes: [node("MatMul", ["A", "B"], ["C"])],
    inputs: [valueInfo("A", DataType.FLOAT, [M, K])],
    outputs: [valueInfo("C", DataType.FLOAT, [M, N])],
    initializers: [tensorFromArray("B", DataType.FLOAT, [K, N], b)],
    opset: 17,
  });
  return await makeBench(model, new ort.Tensor("float32", a, [M, K]), "C", threads);
}

/**
 * C = (A - 128)·(B - 0) exactly, in int32, via MatMulInteger: A uint8 [M,K]
 * graph input, B int8 [K,N] initializer, scalar zero-point initializers.
 */
export async function ortMatMulInteger(
  M: number,
  N: number,
  K: number,
  threads = 1,
): Promise<OrtBench> {
  checkDims(M, N, K);
  const { a, b, aZeroPoint, bZeroPoint } = ortMatMulInputs(M, N, K).int8;
  const model = makeModel({
    nodes: [node("MatMulInteger", ["A", "B", "a_zero_point", "b_zero_point"], ["C"])],
    inputs: [valueInfo("A", DataType.UINT8, [M, K])],
    outputs: [valueInfo("C", DataType.INT32, [M, N])],
    initializers: [
      tensorFromArray("B", DataType.INT8, [K, N], b),
      tensorFromArray("a_zero_point", DataType.UINT8, [], [aZeroPoint]),
      tensorFromArray("b_zero_point", DataType.INT8, [], [bZeroPoint]),
    ],
    opset: 17,
  });
  return await makeBench(model, new ort.Tensor("uint8", a, [M, K]), "C", threads);
}
