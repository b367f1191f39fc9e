/**
 * Baseline: f32 GEMM on TensorFlow.js' wasm backend (XNNPACK), single-threaded.
 *
 * Under Deno, npm packages see `process.versions.node`, so tfjs runs its Node
 * code path: IS_NODE is true, which makes tfjs report no multithreading and
 * pick the non-threaded SIMD binary `tfjs-backend-wasm-simd.wasm`, read with
 * fs from the directory given to setWasmPaths(). We pin both flags anyway so
 * the choice does not silently change with a future Deno/tfjs.
 */
// The backend must be imported before tfjs-core: importing it is what
// registers the "wasm" backend with the core engine.
import * as tfwasm from "@tensorflow/tfjs-backend-wasm";
import * as tf from "@tensorflow/tfjs-core";
import { fileURLToPath } from "node:url";
import { ArgumentError, UnsupportedError } from "../../src/errors.ts";

/** Directory holding the tfjs .wasm binaries (a filesystem path with trailing slash). */
const WASM_DIR = fileURLToPath(
  new URL("../../node_modules/@tensorflow/tfjs-backend-wasm/dist/", import.meta.url),
);

let initialized: Promise<void> | undefined;

/**
 * Selects the tfjs wasm backend with 1 XNNPACK thread and the SIMD binary.
 * Idempotent; throws if the backend cannot be initialized.
 */
export function initTfjs(): Promise<void> {
  initialized ??= (async () => {
    tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
    tf.env().set("WASM_HAS_SIMD_SUPPORT", true);
    tfwasm.setWasmPaths(WASM_DIR);
    tfwasm.setThreadsCount(1);
    if (!(await tf.setBackend("wasm"))) {
      throw new UnsupportedError(`tfjs: failed to initialize the wasm backend from ${WASM_DIR}`);
    }
    await tf.ready();
    const threads = tfwasm.getThreadsCount();
    if (threads !== 1) {
      throw new UnsupportedError(`tfjs: expected 1 XNNPACK thread, got ${threads}`);
    }
  })();
  return initialized;
}

export interface TfjsInfo {
  backend: string;
  /** Binary tfjs loads given its flags (same rule as tfjs' getPathToWasmBinary). */
  binary: string;
  threads: number;
  simd: boolean;
  multithread: boolean;
  version: string;
}

/** Reports the configuration the backend actually ended up with. */
export function tfjsInfo(): TfjsInfo {
  const simd = tf.env().getBool("WASM_HAS_SIMD_SUPPORT");
  const multithread = tf.env().getBool("WASM_HAS_MULTITHREAD_SUPPORT");
  return {
    backend: tf.getBackend(),
    binary: WASM_DIR +
      (simd && multithread
        ? "tfjs-backend-wasm-threaded-simd.wasm"
        : simd
        ? "tfjs-backend-wasm-simd.wasm"
        : "tfjs-backend-wasm.wasm"),
    threads: tfwasm.getThreadsCount(),
    simd,
    multithread,
    version: tfwasm.version_wasm,
  };
}

/** Deterministic uniform [-1, 1) data so runs are comparable across processes. */
function randomF32(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = (s >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

export interface TfjsMatMul {
  /** Computes C = A·B (M×N) and reads it back to JS. */
  run(): void;
  /** The last result of run() (copied out of the wasm heap). */
  readonly result: Float32Array | undefined;
  /** Frees A and B. */
  dispose(): void;
}

/**
 * Prepares C = A(M×K) · B(K×N) with random A, B created once.
 * Call {@link initTfjs} first.
 *
 * run() includes one M×N readback (dataSync): the wasm backend computes
 * synchronously inside tf.matMul, and ORT's session.run also copies its output
 * out of the wasm heap, so both baselines pay the same copy. The result tensor
 * is disposed every run so wasm memory stays flat.
 */
export function tfjsMatMul(M: number, N: number, K: number): TfjsMatMul {
  if (tf.getBackend() !== "wasm") {
    throw new ArgumentError(`tfjs: backend is '${tf.getBackend()}', call initTfjs() first`);
  }
  for (const [k, v] of Object.entries({ M, N, K })) {
    if (!Number.isInteger(v) || v <= 0) {
      throw new ArgumentError(`tfjsMatMul: ${k}=${v} is not a positive integer`);
    }
  }
  const a = tf.tensor2d(randomF32(M * K, 1), [M, K], "float32");
  const b = tf.tensor2d(randomF32(K * N, 2), [K, N], "float32");
  let result: Float32Array | undefined;
  return {
    run() {
      const c = tf.matMul(a, b);
      result = c.dataSync() as Float32Array;
      c.dispose();
    },
    get result() {
      return result;
    },
    dispose() {
      a.dispose();
      b.dispose();
    },
  };
}

/** The random inputs tfjsMatMul uses, for checking results against a reference. */
export function tfjsMatMulInputs(
  M: number,
  N: number,
  K: number,
): { a: Float32Array; b: Float32Array } {
  return { a: randomF32(M * K, 1), b: randomF32(K * N, 2) };
}
