// Argument checks shared by the kernel wrappers. They run before any Wasm memory is touched,
// so bad input can never make a kernel read or write outside its buffers.
import { ArgumentError, ShapeError } from "../errors.ts";

/** Largest dimension accepted: sizes stay exact in JS numbers and i32 kernel arithmetic. */
export const MAX_DIM = 1 << 30;

export function checkDim(name: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0) {
    throw new ShapeError(`${name} must be a positive integer, got ${v}`);
  }
  if (v > MAX_DIM) throw new ShapeError(`${name} = ${v} exceeds the limit of ${MAX_DIM}`);
}

/** Element count of a matrix, checked against the i32 byte range the kernels index with. */
export function checkElements(what: string, rows: number, cols: number, elemBytes: number): number {
  const n = rows * cols;
  if (n * elemBytes > 0x7fffffff) {
    throw new ShapeError(`${what} of ${rows}×${cols} is too large for 32-bit indexing`);
  }
  return n;
}

export function checkLength(what: string, actual: number, needed: number): void {
  if (actual < needed) {
    throw new ShapeError(`${what} holds ${actual} elements but ${needed} are needed`);
  }
}

export function checkFinite(what: string, v: number): void {
  if (!Number.isFinite(v)) throw new ArgumentError(`${what} must be finite, got ${v}`);
}

export type Activation =
  | { kind: "none" }
  | { kind: "relu" }
  | { kind: "relu6" }
  | { kind: "clip"; min: number; max: number };

export function activationRange(act: Activation | undefined): [number, number] {
  switch (act?.kind ?? "none") {
    case "none":
      return [-Infinity, Infinity];
    case "relu":
      return [0, Infinity];
    case "relu6":
      return [0, 6];
    case "clip": {
      const { min, max } = act as { min: number; max: number };
      if (Number.isNaN(min) || Number.isNaN(max) || min > max) {
        throw new ArgumentError(`clip range [${min}, ${max}] is empty or NaN`);
      }
      return [min, max];
    }
    default:
      throw new ArgumentError(`unknown activation ${(act as { kind: string }).kind}`);
  }
}
