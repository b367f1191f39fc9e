// Activation arena planning: every intermediate tensor lives from the step that produces it
// to the last step that reads it; tensors whose lifetimes overlap must not share bytes. Offsets
// come from greedy-by-size placement (Pisarchyk & Lee, "Efficient Memory Management for Deep
// Neural Net Inference", 2020; what TFLite's arena planner does): largest first, each at the
// lowest offset that does not collide with an already placed, time-overlapping tensor.
export interface Lifetime {
  /** Bytes the tensor needs. */
  size: number;
  /** First and last step (inclusive) at which it must hold its value. */
  first: number;
  last: number;
}

export interface ArenaPlan {
  /** Byte offset of each tensor, in the order given. */
  offsets: number[];
  /** Bytes the arena needs. */
  size: number;
  /** The most bytes live at any one step: no plan can need less. */
  lowerBound: number;
}

const ALIGN = 64;

export function planArena(tensors: readonly Lifetime[]): ArenaPlan {
  const order = tensors.map((_, i) => i).sort((a, b) =>
    tensors[b].size - tensors[a].size || tensors[a].first - tensors[b].first
  );
  const offsets = new Array<number>(tensors.length).fill(0);
  const placed: number[] = [];
  let size = 0;
  for (const i of order) {
    const t = tensors[i];
    const need = Math.ceil(t.size / ALIGN) * ALIGN;
    // Address ranges of placed tensors alive at the same time, by offset.
    const busy = placed
      .filter((j) => tensors[j].first <= t.last && t.first <= tensors[j].last)
      .map((j) => [offsets[j], offsets[j] + Math.ceil(tensors[j].size / ALIGN) * ALIGN])
      .sort((a, b) => a[0] - b[0]);
    let at = 0;
    for (const [lo, hi] of busy) {
      if (at + need <= lo) break; // fits in the gap before this range
      at = Math.max(at, hi);
    }
    offsets[i] = at;
    placed.push(i);
    size = Math.max(size, at + need);
  }
  let lowerBound = 0;
  const steps = new Set(tensors.flatMap((t) => [t.first, t.last]));
  for (const s of steps) {
    let live = 0;
    for (const t of tensors) {
      if (t.first <= s && s <= t.last) live += Math.ceil(t.size / ALIGN) * ALIGN;
    }
    lowerBound = Math.max(lowerBound, live);
  }
  return { offsets, size, lowerBound };
}
