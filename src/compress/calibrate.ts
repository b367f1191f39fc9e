// Calibration: activation ranges for static int8 quantization, from running the float model on
// the user's data. Every observed tensor gets its min/max and a 2048-bin histogram of |x|
// (ranges found in a first pass over the data, histograms in a second, so the bins are fixed;
// the feeds are kept in memory between the passes — calibration sets are small).
//
// A range [lo, hi] always contains 0, so that 0 is exactly representable (padding, ReLU).
// Methods pick a clipping threshold t on |x| and clip [min, max] to [−t, t]:
//   minmax      t = max|x| (no clipping)
//   percentile  t = the p-th percentile of |x| (default 99.99)
//   entropy     t minimizing KL(P ‖ Q) between the |x| histogram clipped at t and its 128-level
//               quantization (TensorRT's calibrator, Migacz 2017)
//   mse         t minimizing the expected squared error of clipping plus rounding to 256 levels
import type { Tensor } from "../graph/tensor.ts";
import { Session } from "../session.ts";
import type { CalibrationMethod } from "./recipe.ts";
import { ArgumentError } from "../errors.ts";

export type Feeds = Record<string, Tensor>;
export type CalibrationData = Iterable<Feeds> | AsyncIterable<Feeds>;

const BINS = 2048;

export interface TensorStats {
  min: number;
  max: number;
  /** Histogram of |x| over [0, absMax]: BINS bins. */
  hist: Float64Array;
  absMax: number;
  count: number;
}

export interface QuantParams {
  scale: number;
  zeroPoint: number;
  type: "uint8" | "int8";
}

/** Reads calibration data (an iterable or async iterable of feeds) into an array, checked. */
export async function readFeeds(data: CalibrationData): Promise<Feeds[]> {
  const feeds: Feeds[] = [];
  const iterable = data as unknown as Record<symbol, unknown> | null;
  if (
    typeof iterable !== "object" || iterable === null ||
    (typeof iterable[Symbol.iterator] !== "function" &&
      typeof iterable[Symbol.asyncIterator] !== "function")
  ) {
    throw new ArgumentError("calibration: must be an iterable or async iterable of feeds");
  }
  for await (const f of data as AsyncIterable<Feeds>) {
    if (typeof f !== "object" || f === null) {
      throw new ArgumentError("calibration: every item must be a feeds object { [input]: tensor }");
    }
    feeds.push(f);
  }
  if (!feeds.length) throw new ArgumentError("calibration: the data is empty");
  return feeds;
}

/** Runs the float model on every feed and collects statistics for the named tensors. */
export async function collectStats(
  model: Uint8Array,
  names: string[],
  data: CalibrationData,
  onProgress?: (done: number) => void,
): Promise<Map<string, TensorStats>> {
  const feeds = Array.isArray(data) ? data as Feeds[] : await readFeeds(data);
  if (!feeds.length) throw new ArgumentError("calibration: the data is empty");
  const session = await Session.create(model, { extraOutputs: names });
  try {
    const stats = new Map<string, TensorStats>();
    for (const n of names) {
      stats.set(n, { min: 0, max: 0, hist: new Float64Array(BINS), absMax: 0, count: 0 });
    }
    const outputs: Record<string, Tensor>[] = [];
    // Pass 1: ranges. The outputs are kept for pass 2 only when they are few; else rerun.
    let kept = 0;
    for (let i = 0; i < feeds.length; i++) {
      const out = await session.run(feeds[i], { outputs: names });
      for (const n of names) {
        const s = stats.get(n)!, d = out[n].data as Float32Array;
        for (let j = 0; j < d.length; j++) {
          const v = d[j];
          if (!Number.isFinite(v)) {
            throw new ArgumentError(
              `calibration: tensor '${n}' is ${v} on feed ${i}: the data must be finite`,
            );
          }
          if (v < s.min) s.min = v;
          if (v > s.max) s.max = v;
        }
        kept += d.length;
      }
      if (kept < 64 << 20) outputs.push(out);
      onProgress?.((i + 1) / (2 * feeds.length));
    }
    for (const s of stats.values()) s.absMax = Math.max(-s.min, s.max);
    // Pass 2: histograms of |x| on the fixed ranges.
    for (let i = 0; i < feeds.length; i++) {
      const out = outputs[i] ?? await session.run(feeds[i], { outputs: names });
      for (const n of names) {
        const s = stats.get(n)!, d = out[n].data as Float32Array;
        if (s.absMax === 0) {
          s.hist[0] += d.length;
        } else {
          const k = BINS / s.absMax;
          for (let j = 0; j < d.length; j++) {
            const b = Math.min(BINS - 1, Math.floor(Math.abs(d[j]) * k));
            s.hist[b]++;
          }
        }
        s.count += d.length;
      }
      onProgress?.(0.5 + (i + 1) / (2 * feeds.length));
    }
    return stats;
  } finally {
    await session.release();
  }
}

/** The clipping threshold on |x| for a method. */
export function threshold(s: TensorStats, method: CalibrationMethod, percentile = 99.99): number {
  if (s.absMax === 0) return 0;
  const width = s.absMax / BINS;
  switch (method) {
    case "minmax":
      return s.absMax;
    case "percentile": {
      const total = s.hist.reduce((a, b) => a + b, 0);
      const want = (percentile / 100) * total;
      let acc = 0;
      for (let b = 0; b < BINS; b++) {
        acc += s.hist[b];
        if (acc >= want) return (b + 1) * width;
      }
      return s.absMax;
    }
    case "entropy": {
      // ReLU outputs pile up in the zero bin; left as is it dominates the KL search and clips
      // far too low. TensorRT and pytorch-quantization flatten it the same way.
      const h = s.hist.slice();
      h[0] = h[1];
      return (entropyBins(h) + 0.5) * width;
    }
    case "mse":
      return mseThreshold(s.hist, width);
  }
}

/** TensorRT's KL calibration over the |x| histogram: the bin count at which to clip. */
function entropyBins(hist: Float64Array, levels = 128): number {
  let best = BINS, bestKl = Infinity;
  const p = new Float64Array(BINS), q = new Float64Array(BINS);
  for (let i = levels; i <= BINS; i += 16) {
    // P: the first i bins, everything beyond folded into the last one.
    let outliers = 0;
    for (let b = i; b < BINS; b++) outliers += hist[b];
    for (let b = 0; b < i; b++) p[b] = hist[b];
    p[i - 1] += outliers;
    // Q: the first i bins merged into `levels` groups, each spread back over its non-empty bins.
    const per = i / levels;
    for (let l = 0; l < levels; l++) {
      const a = Math.floor(l * per), e = l === levels - 1 ? i : Math.floor((l + 1) * per);
      let sum = 0, nonzero = 0;
      for (let b = a; b < e; b++) {
        sum += hist[b];
        if (hist[b] > 0) nonzero++;
      }
      for (let b = a; b < e; b++) q[b] = hist[b] > 0 ? sum / nonzero : 0;
    }
    let ps = 0, qs = 0;
    for (let b = 0; b < i; b++) {
      ps += p[b];
      qs += q[b];
    }
    if (ps === 0 || qs === 0) continue;
    let kl = 0;
    for (let b = 0; b < i; b++) {
      if (p[b] === 0) continue;
      const pp = p[b] / ps, qq = q[b] / qs;
      kl += pp * Math.log(pp / (qq > 0 ? qq : 1e-12));
    }
    if (kl < bestKl) {
      bestKl = kl;
      best = i;
    }
  }
  return best - 1;
}

/** The threshold minimizing clipping + rounding error (256 levels over [−t, t]) on the histogram. */
function mseThreshold(hist: Float64Array, width: number): number {
  let best = BINS * width, bestErr = Infinity;
  for (let c = 16; c <= BINS; c += 8) {
    const t = c * width, step = (2 * t) / 255;
    let err = 0;
    for (let b = 0; b < BINS; b++) {
      if (!hist[b]) continue;
      const x = (b + 0.5) * width;
      err += hist[b] * (x > t ? (x - t) ** 2 : step * step / 12);
    }
    if (err < bestErr) {
      bestErr = err;
      best = t;
    }
  }
  return best;
}

/** Asymmetric per-tensor parameters for [lo, hi] (widened to contain 0). */
export function quantParams(lo: number, hi: number, type: "uint8" | "int8"): QuantParams {
  lo = Math.min(lo, 0);
  hi = Math.max(hi, 0);
  if (!(hi > lo)) return { scale: 1, zeroPoint: type === "uint8" ? 0 : 0, type };
  const scale = Math.fround((hi - lo) / 255);
  const qmin = type === "uint8" ? 0 : -128;
  const zeroPoint = Math.min(qmin + 255, Math.max(qmin, Math.round(qmin - lo / scale)));
  return { scale, zeroPoint, type };
}

/** The parameters a calibration method gives a tensor. */
export function paramsFor(
  s: TensorStats,
  method: CalibrationMethod,
  type: "uint8" | "int8",
  percentile?: number,
): QuantParams {
  const t = threshold(s, method, percentile);
  return quantParams(Math.max(s.min, -t), Math.min(s.max, t), type);
}

/** Splits an N×… array of samples into feeds of `batch` samples for the input `input`. */
export function* batchFeeds(input: string, t: Tensor, batch: number): Generator<Feeds> {
  const n = t.dims[0];
  const per = t.data.length / Math.max(n, 1);
  for (let i = 0; i < n; i += batch) {
    const m = Math.min(batch, n - i);
    yield {
      [input]: {
        type: t.type,
        dims: [m, ...t.dims.slice(1)],
        data: t.data.slice(i * per, (i + m) * per),
      } as Tensor,
    };
  }
}
