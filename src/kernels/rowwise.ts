// The transformer row-wise kernels (kernels/nn/rowwise_f32.ts) on buffers resident in a kernel
// module's memory: LayerNormalization over the last axis, softmax(scale·x + mask) per row and
// Gelu. Their semantics are the references in reference_nn.ts (to float rounding: exp and erf
// are polynomials, documented in the kernel file). Every size and buffer is checked before the
// kernel runs, so a bad call throws a typed error and never touches memory.
import type { KernelModule } from "./module.ts";
import { MAX_DIM } from "./validate.ts";
import { ArgumentError, ShapeError } from "../errors.ts";

function count(what: string, v: number, min = 0): void {
  if (!Number.isInteger(v) || v < min || v > MAX_DIM) {
    throw new ShapeError(`${what} must be an integer in [${min}, ${MAX_DIM}], got ${v}`);
  }
}

function block(mod: KernelModule, what: string, p: number, floats: number): void {
  if (!Number.isInteger(p) || p <= 0 || p % 4 !== 0) {
    throw new ArgumentError(`${what} must be a 4-byte aligned heap offset, got ${p}`);
  }
  if (floats * 4 > 0x7fffffff) {
    throw new ShapeError(`${what} needs ${floats * 4} bytes, more than 32-bit indexing allows`);
  }
  mod.heap.check(what, p, floats * 4);
}

/** y = (x − mean)/√(var + eps)·gamma + beta over rows of n; beta 0 for none; y may be x. */
export function layerNormRows(
  mod: KernelModule,
  rows: number,
  n: number,
  x: number,
  gamma: number,
  beta: number,
  eps: number,
  y: number,
): void {
  count("rows", rows);
  count("n", n, 1);
  if (!(eps >= 0)) throw new ArgumentError(`epsilon must be ≥ 0, got ${eps}`);
  if (rows === 0) return;
  block(mod, "x", x, rows * n);
  block(mod, "y", y, rows * n);
  block(mod, "gamma", gamma, n);
  if (beta) block(mod, "beta", beta, n);
  mod.exports.sqz_f32_layernorm(rows, n, x, gamma, beta, eps, y);
}

/**
 * y = softmax(scale·x + mask) over rows of n. Row r adds the n floats at mask + 4·r·ldmask
 * (ldmask n: a full mask; 0: one row shared by all); mask 0 for none. y may be x.
 */
export function softmaxRows(
  mod: KernelModule,
  rows: number,
  n: number,
  x: number,
  y: number,
  scale = 1,
  mask = 0,
  ldmask = 0,
): void {
  count("rows", rows);
  count("n", n, 1);
  count("ldmask", ldmask);
  if (!Number.isFinite(scale)) throw new ArgumentError(`scale must be finite, got ${scale}`);
  if (rows === 0) return;
  block(mod, "x", x, rows * n);
  block(mod, "y", y, rows * n);
  if (mask) block(mod, "mask", mask, (rows - 1) * ldmask + n);
  mod.exports.sqz_f32_softmax(rows, n, x, scale, mask, ldmask, y);
}

/** y = x·Φ(x) for count floats (y may be x). */
export function geluElements(mod: KernelModule, count_: number, x: number, y: number): void {
  count("count", count_);
  if (count_ === 0) return;
  block(mod, "x", x, count_);
  block(mod, "y", y, count_);
  mod.exports.sqz_f32_gelu(count_, x, y);
}
