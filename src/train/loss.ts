// Training losses over row-major logits [n, c] (one row per sample): each returns the MEAN
// loss over the n rows, and writes d(mean loss)/d(logits) into `grad` (length n·c, overwritten)
// when given.
//
// - Row softmax is computed stably: log p = x − max − log Σ exp(x − max), in float64.
// - Non-finite logits give a NaN loss and NaN gradients (the caller detects divergence); they
//   never throw. Bad shapes are ShapeErrors, labels out of [0, c) ArgumentErrors naming the row.
// - Label smoothing ε (PyTorch's CrossEntropyLoss): target q = (1 − ε)·onehot + ε/c.
// - Distillation (Hinton et al. 2015), p_t = softmax(t/T), p_s = softmax(s/T):
//   α·T²·KL(p_t ‖ p_s) + (1 − α)·CE(labels, s); the T² keeps the soft term's gradient scale
//   independent of T. KL is per row, averaged over rows (PyTorch's reduction="batchmean").
// - correct = rows whose argmax (first max wins, NaN ignored) equals the label.
import { ArgumentError, ShapeError } from "../errors.ts";

function checkShape(what: string, logits: Float32Array, n: number, c: number, grad?: Float32Array) {
  if (!Number.isSafeInteger(n) || n < 1 || !Number.isSafeInteger(c) || c < 1) {
    throw new ArgumentError(`${what}: n and c must be positive integers, got n=${n}, c=${c}`);
  }
  if (logits.length !== n * c) {
    throw new ShapeError(`${what}: ${logits.length} logits are not ${n} rows of ${c}`);
  }
  if (grad && grad.length !== n * c) {
    throw new ShapeError(`${what}: grad has ${grad.length} values, expected ${n * c}`);
  }
}

function checkLabels(what: string, labels: Int32Array, n: number, c: number): void {
  if (labels.length !== n) throw new ShapeError(`${what}: ${labels.length} labels for ${n} rows`);
  for (let r = 0; r < n; r++) {
    const l = labels[r];
    if (l < 0 || l >= c) {
      throw new ArgumentError(`${what}: labels[${r}] = ${l} is not a class in [0, ${c})`);
    }
  }
}

/**
 * Log-softmax of row r of x scaled by 1/T into out (float64). Returns false when the row holds
 * a non-finite value (±∞ too, which would otherwise give an infinite rather than NaN loss).
 */
function logSoftmaxRow(
  x: Float32Array,
  r: number,
  c: number,
  invT: number,
  out: Float64Array,
): boolean {
  const o = r * c;
  let max = -Infinity, finite = true;
  for (let j = 0; j < c; j++) {
    const v = x[o + j] * invT;
    if (!Number.isFinite(v)) finite = false;
    if (v > max) max = v;
  }
  if (!finite) {
    out.fill(NaN);
    return false;
  }
  let sum = 0;
  for (let j = 0; j < c; j++) sum += Math.exp(x[o + j] * invT - max);
  const lse = max + Math.log(sum);
  for (let j = 0; j < c; j++) out[j] = x[o + j] * invT - lse;
  return true;
}

function argmaxRow(x: Float32Array, o: number, c: number): number {
  let best = 0, bestV = -Infinity;
  for (let j = 0; j < c; j++) {
    const v = x[o + j];
    if (v > bestV) {
      bestV = v;
      best = j;
    }
  }
  return best;
}

/** Argmax per row (first max wins; NaN is never the max). */
export function argmaxRows(logits: Float32Array, n: number, c: number): Int32Array {
  checkShape("argmaxRows", logits, n, c);
  const out = new Int32Array(n);
  for (let r = 0; r < n; r++) out[r] = argmaxRow(logits, r * c, c);
  return out;
}

/** Softmax cross-entropy with integer labels in [0, c); optional label smoothing. correct = rows whose argmax equals the label (first max wins). */
export function softmaxCrossEntropy(
  logits: Float32Array,
  n: number,
  c: number,
  labels: Int32Array,
  grad?: Float32Array,
  labelSmoothing = 0,
): { loss: number; correct: number } {
  const what = "softmaxCrossEntropy";
  checkShape(what, logits, n, c, grad);
  checkLabels(what, labels, n, c);
  if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) {
    throw new ArgumentError(`${what}: labelSmoothing must be in [0, 1], got ${labelSmoothing}`);
  }
  const eps = labelSmoothing, off = eps / c, on = 1 - eps + off;
  const lp = new Float64Array(c);
  let total = 0, correct = 0;
  for (let r = 0; r < n; r++) {
    // A non-finite row fills lp with NaN, so the loss and that row's gradient become NaN.
    logSoftmaxRow(logits, r, c, 1, lp);
    const y = labels[r];
    let rowSum = 0;
    for (let j = 0; j < c; j++) rowSum += lp[j];
    total -= (1 - eps) * lp[y] + off * rowSum;
    if (argmaxRow(logits, r * c, c) === y) correct++;
    if (grad) {
      const o = r * c;
      for (let j = 0; j < c; j++) grad[o + j] = (Math.exp(lp[j]) - (j === y ? on : off)) / n;
    }
  }
  return { loss: total / n, correct };
}

/** Hinton et al. distillation: α·T²·KL(softmax(t/T) ‖ softmax(s/T)) + (1 − α)·CE(labels, s). Without labels the CE term is dropped and the loss is α·T²·KL normalised to weight 1 (i.e. just T²·KL). */
export function distillationLoss(
  student: Float32Array,
  teacher: Float32Array,
  n: number,
  c: number,
  temperature: number,
  alpha: number,
  labels?: Int32Array,
  grad?: Float32Array,
): { loss: number; correct?: number } {
  const what = "distillationLoss";
  checkShape(what, student, n, c, grad);
  if (teacher.length !== student.length) {
    throw new ShapeError(`${what}: ${teacher.length} teacher logits for ${student.length} student`);
  }
  if (!(Number.isFinite(temperature) && temperature > 0)) {
    throw new ArgumentError(
      `${what}: temperature must be a positive finite number, got ${temperature}`,
    );
  }
  if (!(alpha >= 0 && alpha <= 1)) {
    throw new ArgumentError(`${what}: alpha must be in [0, 1], got ${alpha}`);
  }
  if (labels) checkLabels(what, labels, n, c);
  const T = temperature, invT = 1 / T;
  // Soft-term weight: α with labels, 1 without (the whole loss is then the soft term).
  const a = labels ? alpha : 1;
  const lps = new Float64Array(c), lpt = new Float64Array(c), lp1 = new Float64Array(c);
  let kl = 0, ce = 0, correct = 0;
  for (let r = 0; r < n; r++) {
    const o = r * c;
    logSoftmaxRow(student, r, c, invT, lps);
    logSoftmaxRow(teacher, r, c, invT, lpt);
    // p_t·(log p_t − log p_s) from log-probabilities, so an underflowed p_t gives 0, not 0·−∞.
    for (let j = 0; j < c; j++) kl += Math.exp(lpt[j]) * (lpt[j] - lps[j]);
    if (labels) {
      const y = labels[r];
      logSoftmaxRow(student, r, c, 1, lp1);
      ce -= lp1[y];
      if (argmaxRow(student, o, c) === y) correct++;
    }
    if (grad) {
      // d(T²·KL)/ds = T·(p_s − p_t); d(CE)/ds = softmax(s) − onehot. A weight of 0 drops its
      // term entirely, so α = 0 is exactly CE (and a NaN teacher does not leak into it).
      for (let j = 0; j < c; j++) {
        let g = a === 0 ? 0 : a * T * (Math.exp(lps[j]) - Math.exp(lpt[j]));
        if (labels && alpha !== 1) {
          g += (1 - alpha) * (Math.exp(lp1[j]) - (j === labels[r] ? 1 : 0));
        }
        grad[o + j] = g / n;
      }
    }
  }
  const soft = a * T * T * kl / n;
  if (!labels) return { loss: soft };
  const loss = (alpha === 0 ? 0 : soft) + (alpha === 1 ? 0 : (1 - alpha) * ce / n);
  return { loss, correct };
}

/** Mean squared error over all elements (hint layers); grad = d(mean)/d(a). */
export function mseLoss(a: Float32Array, b: Float32Array, grad?: Float32Array): number {
  if (a.length !== b.length) {
    throw new ShapeError(`mseLoss: ${a.length} values against ${b.length}`);
  }
  if (a.length === 0) throw new ArgumentError("mseLoss: no values");
  if (grad && grad.length !== a.length) {
    throw new ShapeError(`mseLoss: grad has ${grad.length} values, expected ${a.length}`);
  }
  const n = a.length;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const d = a[i] - b[i];
    sum += d * d;
    if (grad) grad[i] = 2 * d / n;
  }
  return sum / n;
}
