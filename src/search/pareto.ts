// Pareto fronts and hypervolume over the search objectives (all minimized).
//
// Hypervolume is computed on values normalized by the float baseline (value / float value, so
// the float model sits at 1 in every objective) against the reference point 1.1 in every
// objective: a trial counts only where it beats 1.1× the float model. Exact for 1, 2 and 3
// objectives (3-D by slicing along the third objective into exact 2-D sweeps).
import type { Objective, Trial, TrialMetrics } from "./types.ts";

/** A trial's value of one objective. */
export function objectiveValue(m: TrialMetrics, o: Objective): number {
  switch (o) {
    case "size":
      return m.size;
    case "gzipSize":
      return m.gzipSize;
    case "latency":
      return m.latencyMs;
    case "memory":
      return m.memory;
    case "macs":
      return m.macs;
  }
}

/** a dominates b: no worse everywhere, better somewhere. */
export function dominates(a: readonly number[], b: readonly number[]): boolean {
  let better = false;
  for (let i = 0; i < a.length; i++) {
    if (a[i] > b[i]) return false;
    if (a[i] < b[i]) better = true;
  }
  return better;
}

/** Fast non-dominated sort: fronts of indices, best first. */
export function nonDominatedSort(points: readonly (readonly number[])[]): number[][] {
  const n = points.length;
  const dominated: number[][] = Array.from({ length: n }, () => []);
  const count = new Array(n).fill(0);
  const fronts: number[][] = [[]];
  for (let p = 0; p < n; p++) {
    for (let q = 0; q < n; q++) {
      if (p === q) continue;
      if (dominates(points[p], points[q])) dominated[p].push(q);
      else if (dominates(points[q], points[p])) count[p]++;
    }
    if (count[p] === 0) fronts[0].push(p);
  }
  for (let i = 0; fronts[i].length; i++) {
    const next: number[] = [];
    for (const p of fronts[i]) {
      for (const q of dominated[p]) if (--count[q] === 0) next.push(q);
    }
    fronts.push(next);
  }
  fronts.pop();
  return fronts;
}

/** NSGA-II crowding distance of the points of one front (by index into `points`). */
export function crowdingDistance(
  points: readonly (readonly number[])[],
  front: readonly number[],
): Map<number, number> {
  const d = new Map<number, number>(front.map((i) => [i, 0]));
  if (!front.length) return d;
  const m = points[front[0]].length;
  for (let k = 0; k < m; k++) {
    const s = [...front].sort((a, b) => points[a][k] - points[b][k] || a - b);
    const lo = points[s[0]][k], hi = points[s[s.length - 1]][k];
    d.set(s[0], Infinity);
    d.set(s[s.length - 1], Infinity);
    if (hi === lo) continue;
    for (let i = 1; i < s.length - 1; i++) {
      d.set(s[i], d.get(s[i])! + (points[s[i + 1]][k] - points[s[i - 1]][k]) / (hi - lo));
    }
  }
  return d;
}

/** A trial that counts: measured fully, without error. */
export function usable(t: Trial): boolean {
  return !t.error && !t.earlyRejected;
}

/** The non-dominated feasible trials, sorted by the first objective (then the next ones, id). */
export function paretoFront(trials: readonly Trial[], objectives: readonly Objective[]): Trial[] {
  const ok = trials.filter((t) => t.feasible && usable(t));
  // One trial per point (equal metrics: the earliest).
  const pts = ok.map((t) => objectives.map((o) => objectiveValue(t.metrics, o)));
  const front = ok.filter((_, i) =>
    !pts.some((q, j) =>
      j !== i && (dominates(q, pts[i]) || (j < i && q.every((v, k) => v === pts[i][k])))
    )
  );
  return front.sort((a, b) => {
    for (const o of objectives) {
      const d = objectiveValue(a.metrics, o) - objectiveValue(b.metrics, o);
      if (d) return d;
    }
    return a.id - b.id;
  });
}

/**
 * The trial to build: the first Pareto trial (best on the first objective) that is no worse
 * than uniform int8 on every objective, the baseline a user would otherwise take; the first
 * Pareto trial when none is (or int8 is unusable). `againstInt8` says which rule chose.
 */
export function pickBest(
  pareto: readonly Trial[],
  objectives: readonly Objective[],
  int8: Trial | undefined,
  /** A second opinion a trial must also pass (search.ts: the cost model's latency). */
  confirm: (t: Trial) => boolean = () => true,
): { trial: Trial; againstInt8: boolean } | undefined {
  if (!pareto.length) return undefined;
  if (int8 && usable(int8) && objectives.length > 1) {
    const t = pareto.find((t) =>
      objectives.every((o) => objectiveValue(t.metrics, o) <= objectiveValue(int8.metrics, o)) &&
      confirm(t)
    );
    if (t) return { trial: t, againstInt8: true };
  }
  return { trial: pareto[0], againstInt8: false };
}

function hv2(points: number[][], ref: readonly number[]): number {
  const p = points.filter((x) => x[0] < ref[0] && x[1] < ref[1]).sort((a, b) =>
    a[0] - b[0] || a[1] - b[1]
  );
  let area = 0, bestY = ref[1];
  for (const [x, y] of p) {
    if (y >= bestY) continue;
    // Strip from x to the next improving point is added as we go: sum of (ref0 - x)·(bestY - y).
    area += (ref[0] - x) * (bestY - y);
    bestY = y;
  }
  return area;
}

/** Exact hypervolume dominated by `points` (minimization) up to `ref`, 1 to 3 objectives. */
export function hypervolume(
  points: readonly (readonly number[])[],
  ref: readonly number[],
): number {
  const m = ref.length;
  const pts = points.filter((p) => p.every((v, i) => v < ref[i])).map((p) => [...p]);
  if (!pts.length) return 0;
  if (m === 1) return ref[0] - Math.min(...pts.map((p) => p[0]));
  if (m === 2) return hv2(pts, ref);
  if (m === 3) {
    // Slices along z: between consecutive z values the 2-D front of the points below is fixed.
    const zs = [...new Set(pts.map((p) => p[2]))].sort((a, b) => a - b);
    let vol = 0;
    for (let i = 0; i < zs.length; i++) {
      const top = i + 1 < zs.length ? zs[i + 1] : ref[2];
      const slab = pts.filter((p) => p[2] <= zs[i]).map((p) => [p[0], p[1]]);
      vol += hv2(slab, [ref[0], ref[1]]) * (top - zs[i]);
    }
    return vol;
  }
  throw new RangeError(`hypervolume: ${m} objectives (1 to 3 supported)`);
}

/** Reference point of the normalized hypervolume: 1.1× the float model in every objective. */
export const HV_REFERENCE = 1.1;

/**
 * Hypervolume of the feasible trials, normalized by the float baseline's objective values
 * (each objective divided by the float value; reference point HV_REFERENCE in each).
 * At most 3 objectives (the first 3 are used beyond that).
 */
export function normalizedHypervolume(
  trials: readonly Trial[],
  objectives: readonly Objective[],
  float: TrialMetrics,
): number {
  const objs = objectives.slice(0, 3);
  const pts = trials.filter((t) => t.feasible && usable(t)).map((t) =>
    objs.map((o) => objectiveValue(t.metrics, o) / (objectiveValue(float, o) || 1))
  );
  return hypervolume(pts, objs.map(() => HV_REFERENCE));
}
