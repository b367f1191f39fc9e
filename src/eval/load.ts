// The models evaluate() reads: bytes or a path, and where their external data is found.
import { ArgumentError, ModelError } from "../errors.ts";
import type { SessionOptions } from "../session.ts";

/** A model as evaluate() reads it. */
export interface Source {
  /** "model" or "reference", for messages. */
  what: string;
  /** The .onnx file. */
  bytes: Uint8Array;
  /** What Session.create gets: the path when there is one (external data is found beside it). */
  session: Uint8Array | string;
  /** The model's directory, when it was given as a path. */
  baseDir?: string;
  /** External data files given as bytes. */
  externalData?: Record<string, Uint8Array>;
}

export async function load(
  model: Uint8Array | string,
  what: string,
  externalData?: Record<string, Uint8Array>,
): Promise<Source> {
  if (externalData !== undefined && (typeof externalData !== "object" || externalData === null)) {
    throw new ArgumentError(`the ${what}'s external data must be { location: bytes }`);
  }
  if (model instanceof Uint8Array) {
    if (model.length === 0) throw new ModelError(`the ${what} is empty`);
    return { what, bytes: model, session: model, externalData };
  }
  if (typeof model !== "string") throw new ArgumentError(`the ${what} must be bytes or a path`);
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(model);
  } catch (e) {
    throw new ModelError(`cannot read the ${what} '${model}': ${(e as Error).message}`);
  }
  const slash = model.lastIndexOf("/");
  return {
    what,
    bytes,
    session: model,
    baseDir: slash >= 0 ? model.slice(0, slash) || "/" : ".",
    externalData,
  };
}

/** Session.create options for a source (its external data), with `extra` on top. */
export function sessionOptions(src: Source, extra: SessionOptions = {}): SessionOptions {
  return src.externalData ? { ...extra, externalData: src.externalData } : extra;
}
