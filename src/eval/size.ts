// The size part of an evaluation: the model's files (the .onnx and each external data file it
// names, once) raw, gzip -9 and Brotli. The accounting itself is src/onnx/model_size.ts.
import { nodeZlib } from "../platform/node_builtin.ts";
import { gzipSize, modelFiles } from "../onnx/model_size.ts";
import type { Source } from "./load.ts";
import type { ModelStats } from "./types.ts";

export type FileStats = Pick<
  ModelStats,
  "bytes" | "graphBytes" | "externalFiles" | "gzipBytes" | "brotliBytes"
>;

/** Brotli size, or undefined where the host has no Brotli encoder (a browser). */
export function brotliSize(bytes: Uint8Array): number | undefined {
  const z = nodeZlib();
  if (!z) return undefined;
  const zlib = z.constants;
  const quality = bytes.length > 32 * 1024 * 1024 ? 9 : 11;
  return z.brotliCompressSync(bytes, {
    params: {
      [zlib.BROTLI_PARAM_QUALITY]: quality,
      [zlib.BROTLI_PARAM_SIZE_HINT]: bytes.length,
    },
  }).length;
}

/** Raw, gzip and Brotli sizes of the model's files, each external file counted once. */
export function fileStats(src: Source, brotli = true): FileStats {
  const files = modelFiles(src.bytes, { externalData: src.externalData, baseDir: src.baseDir });
  const external = files.slice(1).map((f) => ({ location: f.location, bytes: f.data.length }));
  return {
    bytes: files.reduce((a, f) => a + f.data.length, 0),
    graphBytes: src.bytes.length,
    ...(external.length ? { externalFiles: external } : {}),
    gzipBytes: files.reduce((a, f) => a + gzipSize(f.data), 0),
    ...(brotli && nodeZlib()
      ? { brotliBytes: files.reduce((a, f) => a + brotliSize(f.data)!, 0) }
      : {}),
  };
}
