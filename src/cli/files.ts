// File I/O the CLI commands share: reading a .npy argument and writing an output atomically.
import { ArgumentError, parseNpy, ShapeError, type Tensor } from "../mod.ts";

/**
 * Reads and parses a .npy file. Errors name the file, and the flag it came from when given
 * (`--labels 'y.npy': …`); a malformed file keeps its ShapeError / ArgumentError class.
 */
export async function readNpy(path: string, flag?: string): Promise<Tensor> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "no such file" : (e as Error).message;
    throw new ArgumentError(`cannot read ${flag ? `${flag} ` : ""}'${path}': ${why}`);
  }
  try {
    return parseNpy(bytes);
  } catch (e) {
    const where = flag ? `${flag} '${path}'` : path;
    if (e instanceof ShapeError) throw new ShapeError(`${where}: ${e.message}`);
    if (e instanceof ArgumentError) throw new ArgumentError(`${where}: ${e.message}`);
    throw e;
  }
}

/** Writes through a temporary file and a rename: a reader never sees a half-written file. */
export async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${crypto.randomUUID()}`;
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw new ArgumentError(`cannot write '${path}': ${(e as Error).message}`);
  }
}
