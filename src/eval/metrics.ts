// Evaluation metrics: pure functions over plain arrays, no engine state.
//
// Conventions shared by every function here:
// - A score matrix is row-major, one row per sample, `cols` classes per row
//   (`data.length === rows · cols`). Logits and probabilities are both accepted.
// - argmax ties go to the lowest class index, as numpy's argmax.
// - Sums run in float64 whatever the input type.
// - Bad input (empty, mismatched lengths, labels out of range) is an ArgumentError or a
//   ShapeError, never a silent NaN.
import { ArgumentError, ShapeError } from "../errors.ts";

/** Integer class labels, one per sample. */
export type Labels = ArrayLike<number>;

function checkLabels(labels: Labels, classes: number, what: string): void {
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (!Number.isInteger(l) || l < 0 || l >= classes) {
      throw new ArgumentError(`${what}[${i}] = ${l} is not a class in [0, ${classes})`);
    }
  }
}

function checkScores(scores: ArrayLike<number>, cols: number, what: string): number {
  if (!Number.isSafeInteger(cols) || cols < 1) {
    throw new ArgumentError(`${what}: the number of columns must be a positive integer`);
  }
  if (scores.length === 0) throw new ArgumentError(`${what}: no rows`);
  if (scores.length % cols !== 0) {
    throw new ShapeError(`${what}: ${scores.length} values do not make rows of ${cols}`);
  }
  return scores.length / cols;
}

/** Index of the largest value of each row (ties: the lowest index; NaN never wins). */
export function argmaxRows(scores: ArrayLike<number>, cols: number): Int32Array {
  const rows = checkScores(scores, cols, "argmaxRows");
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0, bestV = -Infinity;
    for (let c = 0; c < cols; c++) {
      const v = scores[r * cols + c];
      if (v > bestV) {
        bestV = v;
        best = c;
      }
    }
    out[r] = best;
  }
  return out;
}

/** Share of samples whose prediction equals the label, in [0, 1]. */
export function accuracy(predicted: Labels, labels: Labels): number {
  if (predicted.length !== labels.length) {
    throw new ShapeError(
      `accuracy: ${predicted.length} predictions for ${labels.length} labels`,
    );
  }
  if (labels.length === 0) throw new ArgumentError("accuracy: no samples");
  let hits = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) hits++;
  return hits / labels.length;
}

/**
 * Confusion matrix `m[true][predicted]`: counts of samples of class `true` predicted as
 * `predicted`. Row sums are the class supports, column sums the prediction counts.
 */
export function confusionMatrix(labels: Labels, predicted: Labels, classes: number): number[][] {
  if (predicted.length !== labels.length) {
    throw new ShapeError(
      `confusionMatrix: ${predicted.length} predictions for ${labels.length} labels`,
    );
  }
  if (!Number.isSafeInteger(classes) || classes < 1 || classes > 1 << 16) {
    throw new ArgumentError(`confusionMatrix: classes must be in [1, 65536], got ${classes}`);
  }
  checkLabels(labels, classes, "labels");
  checkLabels(predicted, classes, "predicted");
  const m = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < labels.length; i++) m[labels[i]][predicted[i]]++;
  return m;
}

export interface ClassMetrics {
  label: number;
  /** TP / (TP + FP); 0 when the class is never predicted (see {@link classification}). */
  precision: number;
  /** TP / (TP + FN); 0 when the class has no samples. */
  recall: number;
  /** Harmonic mean of precision and recall; 0 when both are 0. */
  f1: number;
  /** Samples whose label is this class. */
  support: number;
  /** Samples predicted as this class. */
  predicted: number;
}

export interface ClassificationMetrics {
  perClass: ClassMetrics[];
  /** Unweighted means over the classes that occur in the labels or in the predictions. */
  macro: { precision: number; recall: number; f1: number };
  /** The classes the macro means ran over. */
  averagedClasses: number[];
}

/**
 * Per-class and macro precision, recall and F1 from a confusion matrix `m[true][predicted]`.
 *
 * Degenerate classes, handled as scikit-learn does with `zero_division=0` and its default
 * label set:
 * - a class never predicted (TP + FP = 0) has precision 0 — a model that never predicts a
 *   class that occurs is penalised for it, not excused;
 * - a class with no samples (TP + FN = 0) has recall 0;
 * - F1 is 0 when precision + recall is 0;
 * - the macro means run over the classes present in the labels or the predictions: a class
 *   absent from both says nothing about the model and would only drag the mean toward 0.
 *   Such classes still appear in `perClass` (all zeros, support 0, predicted 0).
 */
export function classification(confusion: readonly (readonly number[])[]): ClassificationMetrics {
  const k = confusion.length;
  if (k === 0) throw new ArgumentError("classification: empty confusion matrix");
  for (const row of confusion) {
    if (row.length !== k) {
      throw new ShapeError("classification: the confusion matrix is not square");
    }
  }
  const perClass: ClassMetrics[] = [];
  const averagedClasses: number[] = [];
  let sp = 0, sr = 0, sf = 0;
  for (let c = 0; c < k; c++) {
    const tp = confusion[c][c];
    let support = 0, predicted = 0;
    for (let j = 0; j < k; j++) {
      support += confusion[c][j];
      predicted += confusion[j][c];
    }
    const precision = predicted > 0 ? tp / predicted : 0;
    const recall = support > 0 ? tp / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    perClass.push({ label: c, precision, recall, f1, support, predicted });
    if (support > 0 || predicted > 0) {
      averagedClasses.push(c);
      sp += precision;
      sr += recall;
      sf += f1;
    }
  }
  const n = averagedClasses.length;
  if (n === 0) throw new ArgumentError("classification: the confusion matrix holds no samples");
  return { perClass, macro: { precision: sp / n, recall: sr / n, f1: sf / n }, averagedClasses };
}

/** Share of rows where two score matrices have the same argmax (top-1 agreement), in [0, 1]. */
export function top1Agreement(a: ArrayLike<number>, b: ArrayLike<number>, cols: number): number {
  if (a.length !== b.length) {
    throw new ShapeError(`top1Agreement: ${a.length} vs ${b.length} values`);
  }
  const pa = argmaxRows(a, cols), pb = argmaxRows(b, cols);
  let same = 0;
  for (let i = 0; i < pa.length; i++) if (pa[i] === pb[i]) same++;
  return same / pa.length;
}

/** Probabilities are clamped to at least this before their log is taken (KL stays finite). */
export const PROB_EPS = 1e-12;
/** How far a row's sum may be from 1 for the matrix to count as probabilities. */
const SUM_TOLERANCE = 1e-3;

/**
 * True when every value is in [0, 1] and every row sums to 1 within 1e-3: the matrix already
 * holds probabilities (a model ending in Softmax), so it must not be softmaxed again.
 */
export function isProbabilityMatrix(scores: ArrayLike<number>, cols: number): boolean {
  const rows = checkScores(scores, cols, "isProbabilityMatrix");
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let c = 0; c < cols; c++) {
      const v = scores[r * cols + c];
      if (!(v >= 0 && v <= 1)) return false;
      sum += v;
    }
    if (Math.abs(sum - 1) > SUM_TOLERANCE) return false;
  }
  return true;
}

/**
 * Row-wise log-probabilities in float64. Logits go through a stable log-softmax
 * (x − max − log Σ exp(x − max)); probabilities are renormalized and clamped to
 * [{@link PROB_EPS}, 1] before the log. `probabilities` defaults to detection with
 * {@link isProbabilityMatrix}.
 */
export function logProbabilities(
  scores: ArrayLike<number>,
  cols: number,
  probabilities = isProbabilityMatrix(scores, cols),
): Float64Array {
  const rows = checkScores(scores, cols, "logProbabilities");
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    if (probabilities) {
      let sum = 0;
      for (let c = 0; c < cols; c++) sum += scores[o + c];
      for (let c = 0; c < cols; c++) {
        out[o + c] = Math.log(Math.min(1, Math.max(PROB_EPS, scores[o + c] / sum)));
      }
    } else {
      let max = -Infinity;
      for (let c = 0; c < cols; c++) max = Math.max(max, scores[o + c]);
      let sum = 0;
      for (let c = 0; c < cols; c++) sum += Math.exp(scores[o + c] - max);
      const lse = max + Math.log(sum);
      // Clamped like probabilities: a logit 30 below the max would otherwise give a log
      // probability that no float32 softmax could represent.
      const floor = Math.log(PROB_EPS);
      for (let c = 0; c < cols; c++) out[o + c] = Math.max(floor, scores[o + c] - lse);
    }
  }
  return out;
}

/**
 * Mean over rows of KL(p_ref ‖ p_cmp) = Σ p_ref · (log p_ref − log p_cmp), in nats, where each
 * p is the softmax of a logit row or the row itself when the matrix holds probabilities
 * (detected per matrix, see {@link isProbabilityMatrix}). Log-probabilities are clamped at
 * log(1e-12), so the result is finite; terms where p_ref is 0 contribute 0; rounding noise
 * below 0 is clamped to 0. NaN in either matrix gives NaN.
 */
export function meanKlDivergence(
  ref: ArrayLike<number>,
  cmp: ArrayLike<number>,
  cols: number,
): number {
  if (ref.length !== cmp.length) {
    throw new ShapeError(`meanKlDivergence: ${ref.length} vs ${cmp.length} values`);
  }
  const lp = logProbabilities(ref, cols), lq = logProbabilities(cmp, cols);
  const rows = lp.length / cols;
  let total = 0;
  for (let r = 0; r < rows; r++) {
    let kl = 0;
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      if (Number.isNaN(lp[i]) || Number.isNaN(lq[i])) {
        kl = NaN;
        break;
      }
      const p = Math.exp(lp[i]);
      if (p > PROB_EPS) kl += p * (lp[i] - lq[i]);
    }
    total += Number.isNaN(kl) ? NaN : Math.max(0, kl);
  }
  return total / rows;
}

/**
 * SQNR in dB from accumulated sums: 10·log10(signal / noise), with signal = Σ ref² and
 * noise = Σ (ref − x)². `Infinity` when noise is 0 (identical tensors, including two all-zero
 * ones); `-Infinity` when the reference is all zeros and x is not.
 */
export function sqnrFromSums(signal: number, noise: number): number {
  if (Number.isNaN(signal) || Number.isNaN(noise)) return NaN;
  if (noise === 0) return Infinity;
  if (signal === 0) return -Infinity;
  return 10 * Math.log10(signal / noise);
}

/** Σ ref² and Σ (ref − x)² in float64, for {@link sqnrFromSums} (and batch accumulation). */
export function sqnrSums(
  ref: ArrayLike<number>,
  x: ArrayLike<number>,
): { signal: number; noise: number } {
  if (ref.length !== x.length) {
    throw new ShapeError(`sqnr: the tensors have ${ref.length} and ${x.length} elements`);
  }
  let signal = 0, noise = 0;
  for (let i = 0; i < ref.length; i++) {
    const r = ref[i], d = r - x[i];
    signal += r * r;
    noise += d * d;
  }
  return { signal, noise };
}

/**
 * Signal-to-quantization-noise ratio of `x` against `ref` in dB:
 * 10·log10(Σ ref² / Σ (ref − x)²). `Infinity` when identical (JSON has no infinity: the
 * evaluation report writes it as the string "inf").
 */
export function sqnrDb(ref: ArrayLike<number>, x: ArrayLike<number>): number {
  const { signal, noise } = sqnrSums(ref, x);
  return sqnrFromSums(signal, noise);
}

/**
 * The p-th percentile (p in [0, 100]) with linear interpolation between closest ranks —
 * numpy's default: rank = p/100 · (n − 1).
 */
export function percentile(values: ArrayLike<number>, p: number): number {
  return percentiles(values, [p])[0];
}

/** Several percentiles of the same values, sorting once. */
export function percentiles(values: ArrayLike<number>, ps: readonly number[]): number[] {
  if (values.length === 0) throw new ArgumentError("percentile: no values");
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  if (sorted.some(Number.isNaN)) throw new ArgumentError("percentile: the values hold NaN");
  return ps.map((p) => {
    if (!(p >= 0 && p <= 100)) {
      throw new ArgumentError(`percentile: p must be in [0, 100], got ${p}`);
    }
    const rank = (p / 100) * (sorted.length - 1);
    const lo = Math.floor(rank), hi = Math.ceil(rank);
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
  });
}

/** Arithmetic mean and sample standard deviation (n − 1 in the denominator; 0 for one value). */
export function meanStd(values: ArrayLike<number>): { mean: number; std: number } {
  const n = values.length;
  if (n === 0) throw new ArgumentError("meanStd: no values");
  let s = 0;
  for (let i = 0; i < n; i++) s += values[i];
  const mean = s / n;
  if (n === 1) return { mean, std: 0 };
  let v = 0;
  for (let i = 0; i < n; i++) v += (values[i] - mean) ** 2;
  return { mean, std: Math.sqrt(v / (n - 1)) };
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher–Yates, in place. */
export function shuffle(a: number[], random: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
}

export interface Fold {
  /** Sample indices of the other folds, ascending. */
  train: number[];
  /** Sample indices of this fold, ascending. */
  test: number[];
}

export interface KFoldOptions {
  /** Seed of the shuffle (default 0): the same seed gives the same folds. */
  seed?: number;
  /** When given (one per sample), the folds are stratified by label. */
  labels?: Labels;
}

/**
 * k disjoint test folds covering 0..n−1, each with the rest as its training indices.
 * Without labels the indices are shuffled and cut into k runs whose sizes differ by at most
 * one. With labels each class is shuffled on its own and dealt round-robin over the folds,
 * the deal continuing from class to class, so every fold gets ⌊n_c/k⌋ or ⌈n_c/k⌉ samples of
 * class c and fold sizes still differ by at most one. Requires 2 ≤ k ≤ n.
 */
export function kFoldSplits(n: number, k: number, options: KFoldOptions = {}): Fold[] {
  if (!Number.isSafeInteger(n) || n < 1) throw new ArgumentError(`kFold: n must be ≥ 1, got ${n}`);
  if (!Number.isSafeInteger(k) || k < 2 || k > n) {
    throw new ArgumentError(`kFold: k must be an integer in [2, ${n}], got ${k}`);
  }
  const random = seededRandom(options.seed ?? 0);
  const tests: number[][] = Array.from({ length: k }, () => []);
  const labels = options.labels;
  if (labels) {
    if (labels.length !== n) {
      throw new ShapeError(`kFold: ${labels.length} labels for ${n} samples`);
    }
    const byClass = new Map<number, number[]>();
    for (let i = 0; i < n; i++) {
      const l = labels[i];
      if (!Number.isInteger(l)) throw new ArgumentError(`kFold: label ${i} is not an integer`);
      let list = byClass.get(l);
      if (!list) byClass.set(l, list = []);
      list.push(i);
    }
    let next = 0;
    for (const cls of [...byClass.keys()].sort((a, b) => a - b)) {
      const idx = byClass.get(cls)!;
      shuffle(idx, random);
      for (const i of idx) {
        tests[next].push(i);
        next = (next + 1) % k;
      }
    }
  } else {
    const idx = Array.from({ length: n }, (_, i) => i);
    shuffle(idx, random);
    let at = 0;
    for (let f = 0; f < k; f++) {
      const size = Math.floor(n / k) + (f < n % k ? 1 : 0);
      tests[f] = idx.slice(at, at += size);
    }
  }
  return tests.map((test, f) => {
    test.sort((a, b) => a - b);
    const train: number[] = [];
    for (let g = 0; g < k; g++) if (g !== f) { for (const i of tests[g]) train.push(i); }
    train.sort((a, b) => a - b);
    return { train, test };
  });
}
