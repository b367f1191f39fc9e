// Shared helpers for the kernel tests: a seeded PRNG and the shape sets the issue asks for.
import { type AttrValue, Node, Value } from "../src/graph/ir.ts";
import type { Tensor } from "../src/graph/tensor.ts";
import { jsContext, type OpImpl } from "../src/ops/types.ts";
import { availableBuilds, type KernelBuild } from "../src/kernels/features.ts";
import { KernelModule } from "../src/kernels/module.ts";
import { seededRandom } from "../src/eval/metrics.ts";

/** mulberry32: the engine's own seeded PRNG. */
export const rng = seededRandom;

export function randInt(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

/** Awkward sizes: 1, tile ± 1, powers of two ± 1. */
export const SIZES = [1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 127, 128, 129, 255, 257];
/** K values that are not multiples of 8, 16, 64 or 128. */
export const ODD_K = [5, 9, 27, 100, 129, 200, 257, 300, 513, 1000];

/**
 * (M, N, K) triples: every size in every position against sizes drawn at random, plus the
 * odd K values; the product is capped so the naive reference stays fast.
 */
export function shapes(seed: number, maxMacs = 2_000_000): [number, number, number][] {
  const r = rng(seed);
  const pick = () => SIZES[randInt(r, 0, SIZES.length - 1)];
  const out: [number, number, number][] = [];
  for (const s of SIZES) {
    out.push([s, pick(), pick()], [pick(), s, pick()], [pick(), pick(), s]);
  }
  for (const k of ODD_K) out.push([pick(), pick(), k]);
  out.push([1, 1, 1], [4, 8, 4], [5, 9, 3]);
  return out.map(([m, n, k]) => {
    while (m * n * k > maxMacs) {
      if (m >= n && m > 1) m = Math.ceil(m / 2);
      else if (n > 1) n = Math.ceil(n / 2);
      else break;
    }
    return [m, n, k];
  });
}

/** One module per build this runtime can run. */
export async function loadBuilds(): Promise<KernelModule[]> {
  const builds: KernelBuild[] = availableBuilds();
  return await Promise.all(builds.map((b) => KernelModule.load(b)));
}

/** Runs one TypeScript op on tensors, with a node made from `attrs` (tests of src/ops). */
export function runOp(
  ops: Record<string, OpImpl>,
  op: string,
  inputs: (Tensor | undefined)[],
  attrs: Record<string, AttrValue> = {},
  opset = 18,
  nOut = 1,
): Tensor[] {
  const outs = Array.from({ length: nOut }, (_, i) => new Value(`y${i}`));
  const node = new Node(`n_${op}`, op, "", inputs.map((_, i) => new Value(`x${i}`)), outs, attrs);
  return ops[op](inputs, jsContext(node, opset));
}
