// Training engine building blocks: optimizers against float64 re-implementations of PyTorch's
// published update rules, LR schedules at known points, losses against central finite
// differences in float64, and the deterministic mini-batch order.
import assert from "node:assert/strict";
import { ArgumentError, ShapeError } from "../src/errors.ts";
import {
  clipGradNorm,
  Optimizer,
  type OptimizerConfig,
  type Param,
  validateOptimizerConfig,
} from "../src/train/optim.ts";
import { learningRate, type ScheduleConfig } from "../src/train/schedule.ts";
import { argmaxRows, distillationLoss, mseLoss, softmaxCrossEntropy } from "../src/train/loss.ts";
import { epochBatches, gatherLabels, gatherRows } from "../src/train/batches.ts";
import { rng } from "./util.ts";

const close = (a: number, b: number, tol: number, what = "") =>
  assert.ok(Math.abs(a - b) <= tol, `${what}${a} is not within ${tol} of ${b}`);

function randArray(r: () => number, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}

// ---------------------------------------------------------------------------------------------
// Optimizers: independent float64 references (torch.optim docs' pseudo-code, buffers created at
// the first step as PyTorch does).

interface Spec {
  size: number;
  decay: boolean;
  mask?: Uint8Array;
}

interface Problem {
  specs: Spec[];
  init: Float32Array[];
  /** grads[step][param] */
  grads: Float32Array[][];
  lrs: number[];
}

function problem(seed: number, steps = 8): Problem {
  const r = rng(seed);
  const mask = new Uint8Array(13).map((_, i) => (i % 3 === 1 ? 0 : 1));
  const specs: Spec[] = [
    { size: 13, decay: true, mask }, // a pruned weight
    { size: 5, decay: false }, // a bias
    { size: 9, decay: true }, // a dense weight
  ];
  // Masked weights start non-zero: the first step must zero them.
  const init = specs.map((s) => randArray(r, s.size, 2));
  const grads = Array.from({ length: steps }, () => specs.map((s) => randArray(r, s.size)));
  const lrs = Array.from({ length: steps }, (_, t) => 0.1 / (1 + t) + 0.01 * r());
  return { specs, init, grads, lrs };
}

function makeParams(p: Problem): Param[] {
  return p.specs.map((s, k) => ({
    name: `p${k}`,
    data: p.init[k].slice(),
    grad: new Float32Array(s.size),
    mask: s.mask,
    decay: s.decay,
  }));
}

function runOptimizer(p: Problem, cfg: OptimizerConfig, steps = p.grads.length): Param[] {
  const params = makeParams(p);
  const opt = new Optimizer(params, cfg);
  for (let t = 0; t < steps; t++) {
    params.forEach((q, k) => q.grad.set(p.grads[t][k]));
    opt.step(p.lrs[t]);
  }
  return params;
}

/** torch.optim.SGD (dampening 0). */
function refSgd(p: Problem, momentum: number, nesterov: boolean, wd: number): number[][] {
  const w = p.init.map((a) => [...a]);
  const bufs: (number[] | undefined)[] = p.specs.map(() => undefined);
  p.grads.forEach((gs, t) => {
    p.specs.forEach((s, k) => {
      let g = [...gs[k]].map((v, i) => (s.mask && !s.mask[i] ? 0 : v));
      if (wd !== 0 && s.decay) g = g.map((v, i) => v + wd * w[k][i]);
      if (momentum !== 0) {
        const prev = bufs[k];
        const b = prev ? prev.map((v, i) => momentum * v + g[i]) : [...g];
        bufs[k] = b;
        g = nesterov ? g.map((v, i) => v + momentum * b[i]) : b;
      }
      w[k] = w[k].map((v, i) => v - p.lrs[t] * g[i]);
      if (s.mask) w[k] = w[k].map((v, i) => (s.mask![i] ? v : 0));
    });
  });
  return w;
}

/** torch.optim.Adam / AdamW (amsgrad off). */
function refAdam(
  p: Problem,
  b1: number,
  b2: number,
  eps: number,
  wd: number,
  decoupled: boolean,
): number[][] {
  const w = p.init.map((a) => [...a]);
  const m = p.specs.map((s) => new Array<number>(s.size).fill(0));
  const v = p.specs.map((s) => new Array<number>(s.size).fill(0));
  p.grads.forEach((gs, t0) => {
    const t = t0 + 1, lr = p.lrs[t0];
    p.specs.forEach((s, k) => {
      let g = [...gs[k]].map((x, i) => (s.mask && !s.mask[i] ? 0 : x));
      if (s.decay && wd !== 0) {
        if (decoupled) w[k] = w[k].map((x) => x * (1 - lr * wd));
        else g = g.map((x, i) => x + wd * w[k][i]);
      }
      m[k] = m[k].map((x, i) => b1 * x + (1 - b1) * g[i]);
      v[k] = v[k].map((x, i) => b2 * x + (1 - b2) * g[i] * g[i]);
      const bc1 = 1 - b1 ** t, bc2 = 1 - b2 ** t;
      w[k] = w[k].map((x, i) =>
        x - (lr / bc1) * m[k][i] / (Math.sqrt(v[k][i]) / Math.sqrt(bc2) + eps)
      );
      if (s.mask) w[k] = w[k].map((x, i) => (s.mask![i] ? x : 0));
    });
  });
  return w;
}

function assertMatches(got: Param[], want: number[][], p: Problem, what: string): void {
  got.forEach((q, k) => {
    for (let i = 0; i < q.data.length; i++) {
      close(
        q.data[i],
        want[k][i],
        1e-6 * Math.max(1, Math.abs(want[k][i])),
        `${what} ${q.name}[${i}]: `,
      );
      const mask = p.specs[k].mask;
      if (mask && !mask[i]) assert.equal(q.data[i], 0, `${what} ${q.name}[${i}] is masked`);
    }
  });
}

Deno.test("SGD matches PyTorch's rule: plain, momentum, Nesterov, L2 weight decay, masks", () => {
  const cases: [number, boolean, number][] = [
    [0, false, 0],
    [0, false, 0.05],
    [0.9, false, 0],
    [0.9, false, 1e-2],
    [0.9, true, 0],
    [0.5, true, 0.1],
  ];
  for (const [momentum, nesterov, weightDecay] of cases) {
    const p = problem(11);
    const got = runOptimizer(p, { kind: "sgd", momentum, nesterov, weightDecay });
    assertMatches(
      got,
      refSgd(p, momentum, nesterov, weightDecay),
      p,
      `sgd(${momentum}, ${nesterov}, ${weightDecay})`,
    );
  }
  // Default momentum is 0.9.
  const p = problem(12);
  assertMatches(runOptimizer(p, { kind: "sgd" }), refSgd(p, 0.9, false, 0), p, "sgd default");
});

Deno.test("Adam and AdamW match PyTorch's rules, bias-corrected, L2 vs decoupled decay", () => {
  const cases: [OptimizerConfig, number, number, number, number, boolean][] = [
    [{ kind: "adam" }, 0.9, 0.999, 1e-8, 0, false],
    [{ kind: "adam", weightDecay: 1e-2 }, 0.9, 0.999, 1e-8, 1e-2, false],
    [{ kind: "adamw", weightDecay: 1e-2 }, 0.9, 0.999, 1e-8, 1e-2, true],
    [
      { kind: "adamw", weightDecay: 0.3, beta1: 0.8, beta2: 0.95, eps: 1e-3 },
      0.8,
      0.95,
      1e-3,
      0.3,
      true,
    ],
    [
      { kind: "adam", weightDecay: 0.1, beta1: 0.5, beta2: 0.9, eps: 1e-6 },
      0.5,
      0.9,
      1e-6,
      0.1,
      false,
    ],
  ];
  for (const [cfg, b1, b2, eps, wd, decoupled] of cases) {
    const p = problem(21);
    assertMatches(
      runOptimizer(p, cfg),
      refAdam(p, b1, b2, eps, wd, decoupled),
      p,
      JSON.stringify(cfg),
    );
  }
  // Adam's first bias-corrected step is lr·g/(|g| + eps) — close to lr·sign(g).
  const params: Param[] = [{
    name: "w",
    data: new Float32Array([1, 1, 1]),
    grad: new Float32Array([0.5, -2, 1e-3]),
    decay: false,
  }];
  new Optimizer(params, { kind: "adam" }).step(0.01);
  for (let i = 0; i < 3; i++) {
    const g = params[0].grad[i];
    close(params[0].data[i], 1 - 0.01 * g / (Math.abs(g) + 1e-8), 1e-7);
  }
});

Deno.test("weight decay only applies to parameters flagged decay", () => {
  for (const kind of ["sgd", "adam", "adamw"] as const) {
    const p = problem(31);
    const with_ = runOptimizer(p, { kind, weightDecay: 0.2 });
    const without = runOptimizer(p, { kind, weightDecay: 0 });
    // p1 is the bias (decay: false): bit-identical; the others differ.
    assert.deepEqual(with_[1].data, without[1].data, kind);
    assert.notDeepEqual(with_[2].data, without[2].data, kind);
    assert.notDeepEqual(with_[0].data, without[0].data, kind);
  }
});

Deno.test("masked weights stay exactly 0 and their gradients are zeroed", () => {
  for (
    const cfg of [{ kind: "sgd" }, { kind: "adam" }, {
      kind: "adamw",
      weightDecay: 0.1,
    }] as OptimizerConfig[]
  ) {
    const p = problem(41, 3);
    const params = makeParams(p);
    const opt = new Optimizer(params, cfg);
    for (let t = 0; t < 3; t++) {
      params.forEach((q, k) => q.grad.set(p.grads[t][k]));
      opt.step(0.1);
      const q = params[0];
      for (let i = 0; i < q.data.length; i++) {
        if (!q.mask![i]) {
          assert.ok(Object.is(q.data[i], 0), `${cfg.kind}: ${q.name}[${i}] = ${q.data[i]}`);
          assert.equal(q.grad[i], 0);
        } else assert.notEqual(q.data[i], 0);
      }
    }
  }
});

Deno.test("state()/load() resumes exactly where the uninterrupted run would be", () => {
  const cfgs: OptimizerConfig[] = [
    { kind: "sgd", momentum: 0.9, nesterov: true, weightDecay: 1e-3 },
    { kind: "sgd", momentum: 0 },
    { kind: "adam", weightDecay: 1e-2 },
    { kind: "adamw", weightDecay: 1e-2 },
  ];
  for (const cfg of cfgs) {
    const p = problem(51, 10);
    const full = runOptimizer(p, cfg);

    const first = makeParams(p);
    const a = new Optimizer(first, cfg);
    for (let t = 0; t < 4; t++) {
      first.forEach((q, k) => q.grad.set(p.grads[t][k]));
      a.step(p.lrs[t]);
    }
    const saved = a.state();
    assert.equal(saved.step, 4);
    // state() is a copy: more steps on `a` must not change it.
    first.forEach((q) => q.grad.fill(1));
    a.step(1);

    const second: Param[] = first.map((q, k) => ({
      ...q,
      data: p.init[k].slice(), // overwritten below with the checkpointed weights
      grad: new Float32Array(q.data.length),
    }));
    // The checkpoint's weights: replay the first 4 steps.
    runOptimizer(p, cfg, 4).forEach((q, k) => second[k].data.set(q.data));
    const b = new Optimizer(second, cfg);
    b.load(saved);
    for (let t = 4; t < 10; t++) {
      second.forEach((q, k) => q.grad.set(p.grads[t][k]));
      b.step(p.lrs[t]);
    }
    second.forEach((q, k) => assert.deepEqual(q.data, full[k].data, `${cfg.kind} ${q.name}`));
  }
});

Deno.test("load() rejects mismatched state", () => {
  const p = problem(61);
  const opt = new Optimizer(makeParams(p), { kind: "adam" });
  const s = opt.state();
  assert.throws(() => new Optimizer(makeParams(p), { kind: "adamw" }).load(s), ArgumentError);
  assert.throws(() => new Optimizer(makeParams(p), { kind: "sgd" }).load(s), ArgumentError);
  const renamed = { ...s, slots: { ...s.slots, other: s.slots.p0 } };
  delete (renamed.slots as Record<string, unknown>).p0;
  assert.throws(() => opt.load(renamed), /lacks parameter 'p0'|unknown parameter 'other'/);
  const extra = { ...s, slots: { ...s.slots, other: s.slots.p0 } };
  assert.throws(() => opt.load(extra), ArgumentError);
  const short = { ...s, slots: { ...s.slots, p1: [new Float32Array(4), new Float32Array(5)] } };
  assert.throws(() => opt.load(short), ArgumentError);
  const fewSlots = { ...s, slots: { ...s.slots, p1: [new Float32Array(5)] } };
  assert.throws(() => opt.load(fewSlots), ArgumentError);
  assert.throws(() => opt.load({ ...s, step: -1 }), ArgumentError);
  // A rejected state changed nothing.
  assert.deepEqual(opt.state(), s);
});

Deno.test("optimizer config validation names the field", () => {
  assert.deepEqual(validateOptimizerConfig({ kind: "sgd" }), {
    kind: "sgd",
    momentum: 0.9,
    nesterov: false,
    weightDecay: 0,
  });
  assert.deepEqual(validateOptimizerConfig({ kind: "adamw", weightDecay: 0.01 }), {
    kind: "adamw",
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weightDecay: 0.01,
  });
  const bad: [unknown, RegExp][] = [
    [null, /optimizer must be an object/],
    [{ kind: "rmsprop" }, /optimizer\.kind must be one of sgd, adam, adamw, got "rmsprop"/],
    [{ kind: "sgd", momentum: -1 }, /optimizer\.momentum must be a number in \[0, 1\), got -1/],
    [{ kind: "sgd", momentum: 1 }, /optimizer\.momentum/],
    [{ kind: "sgd", nesterov: "yes" }, /optimizer\.nesterov must be a boolean/],
    [{ kind: "sgd", momentum: 0, nesterov: true }, /optimizer\.nesterov needs/],
    [{ kind: "adam", beta1: 1 }, /optimizer\.beta1/],
    [{ kind: "adam", beta2: NaN }, /optimizer\.beta2/],
    [{ kind: "adam", eps: 0 }, /optimizer\.eps must be a positive finite number, got 0/],
    [{ kind: "adamw", weightDecay: -0.1 }, /optimizer\.weightDecay must be a non-negative/],
    [{ kind: "adam", lr: 1 }, /optimizer\.lr is not an optimizer setting/],
  ];
  for (const [c, re] of bad) {
    assert.throws(
      () => validateOptimizerConfig(c),
      (e) => e instanceof ArgumentError && re.test(e.message),
    );
  }
  assert.throws(
    () => validateOptimizerConfig({ kind: "sgd", momentum: 2 }, "finetune"),
    /finetune\.momentum/,
  );
  const p = problem(71);
  assert.throws(() => new Optimizer(makeParams(p), { kind: "sgd" }).step(-1), ArgumentError);
  assert.throws(() => new Optimizer(makeParams(p), { kind: "sgd" }).step(NaN), ArgumentError);
  const params = makeParams(p);
  assert.throws(
    () => new Optimizer([params[0], { ...params[1], name: "p0" }], { kind: "sgd" }),
    ArgumentError,
  );
  assert.throws(
    () => new Optimizer([{ ...params[1], grad: new Float32Array(2) }], { kind: "sgd" }),
    ShapeError,
  );
});

Deno.test("clipGradNorm: result norm ≤ maxNorm, direction unchanged, no-op below, NaN on non-finite", () => {
  const norm = (ps: Param[]) =>
    Math.sqrt(ps.reduce((s, q) => s + q.grad.reduce((a, g) => a + g * g, 0), 0));
  const p = problem(81);
  const params = makeParams(p);
  params.forEach((q, k) => q.grad.set(p.grads[0][k].map((g) => g * 3)));
  // Masked entries are excluded (zeroed) before measuring.
  params[0].grad.forEach((_, i) => (params[0].mask![i] ? 0 : params[0].grad[i] = 100));
  const before = params.map((q) => q.grad.map((g, i) => (q.mask && !q.mask[i] ? 0 : g)));
  const n0 = norm(params.map((q, k) => ({ ...q, grad: before[k] })));
  assert.ok(n0 > 1);
  const returned = clipGradNorm(params, 1);
  close(returned, n0, 1e-12 * n0);
  assert.ok(norm(params) <= 1, `${norm(params)}`);
  close(norm(params), 1, 1e-5);
  const scale = 1 / n0;
  params.forEach((q, k) =>
    q.grad.forEach((g, i) =>
      close(g, before[k][i] * scale, 1e-6 * Math.abs(before[k][i] * scale) + 1e-12)
    )
  );

  // Below the limit: untouched, bit for bit.
  const copy = params.map((q) => q.grad.slice());
  close(clipGradNorm(params, 10), 1, 1e-5);
  params.forEach((q, k) => assert.deepEqual(q.grad, copy[k]));

  // Non-finite: NaN, nothing scaled.
  params[2].grad[0] = Infinity;
  const copy2 = params.map((q) => q.grad.slice());
  assert.ok(Number.isNaN(clipGradNorm(params, 0.5)));
  params.forEach((q, k) => assert.deepEqual(q.grad, copy2[k]));
  params[2].grad[0] = NaN;
  assert.ok(Number.isNaN(clipGradNorm(params, 0.5)));
  assert.throws(() => clipGradNorm(params, 0), ArgumentError);
});

// ---------------------------------------------------------------------------------------------
// Schedules

Deno.test("learning-rate schedules at known points", () => {
  const lr = (s: ScheduleConfig, base: number, step: number, total: number) =>
    learningRate(s, base, step, total);
  const eq = (a: number, b: number) => close(a, b, 1e-15);
  // Constant with a 4-step warmup: (s+1)/W·lr, then lr.
  const c: ScheduleConfig = { kind: "constant", warmupSteps: 4 };
  [0.025, 0.05, 0.075, 0.1, 0.1].forEach((v, s) => eq(lr(c, 0.1, s, 100), v));
  eq(lr(c, 0.1, 99, 100), 0.1);
  eq(lr({ kind: "constant" }, 0.3, 0, 10), 0.3);

  // Cosine without warmup: lr at 0, half at the middle, minLr at the end and after.
  const cos: ScheduleConfig = { kind: "cosine" };
  eq(lr(cos, 1, 0, 100), 1);
  eq(lr(cos, 1, 25, 100), (1 + Math.cos(Math.PI / 4)) / 2);
  eq(lr(cos, 1, 50, 100), 0.5);
  eq(lr(cos, 1, 100, 100), 0);
  eq(lr(cos, 1, 150, 100), 0);
  assert.ok(lr(cos, 1, 99, 100) > 0);

  // Cosine after warmup, with a floor: the decay spans the 100 steps after warmup.
  const cw: ScheduleConfig = { kind: "cosine", warmupSteps: 10, minLr: 0.02 };
  eq(lr(cw, 0.2, 0, 110), 0.02);
  eq(lr(cw, 0.2, 4, 110), 0.1);
  eq(lr(cw, 0.2, 9, 110), 0.2);
  eq(lr(cw, 0.2, 10, 110), 0.2);
  eq(lr(cw, 0.2, 60, 110), 0.11);
  eq(lr(cw, 0.2, 110, 110), 0.02);
  // No steps after warmup: the warmup ramp, then the floor.
  eq(lr(cw, 0.2, 4, 10), 0.1);
  eq(lr(cw, 0.2, 10, 10), 0.02);

  // Step decay: lr·gamma^floor(s/stepEvery).
  const st: ScheduleConfig = { kind: "step", stepEvery: 10, gamma: 0.5 };
  eq(lr(st, 1, 0, 100), 1);
  eq(lr(st, 1, 9, 100), 1);
  eq(lr(st, 1, 10, 100), 0.5);
  eq(lr(st, 1, 29, 100), 0.25);
  eq(lr(st, 1, 30, 100), 0.125);
  close(lr({ kind: "step", stepEvery: 5 }, 1, 10, 100), 0.01, 1e-15);
  // Step decay with warmup: the ramp multiplies the decayed value.
  eq(lr({ kind: "step", stepEvery: 2, gamma: 0.5, warmupSteps: 4 }, 1, 2, 100), 0.75 * 0.5);

  const bad: [ScheduleConfig, RegExp][] = [
    [{ kind: "linear" as "step" }, /schedule\.kind/],
    [{ kind: "step" }, /schedule\.stepEvery must be a non-negative integer, got undefined/],
    [{ kind: "step", stepEvery: 0 }, /schedule\.stepEvery must be positive/],
    [{ kind: "cosine", warmupSteps: -1 }, /schedule\.warmupSteps/],
    [{ kind: "cosine", warmupSteps: 1.5 }, /schedule\.warmupSteps/],
    [{ kind: "step", stepEvery: 3, gamma: 0 }, /schedule\.gamma/],
    [{ kind: "cosine", minLr: -1 }, /schedule\.minLr/],
    [{ kind: "cosine", minLr: 2 }, /schedule\.minLr \(2\) must not exceed lr \(1\)/],
  ];
  for (const [s, re] of bad) {
    assert.throws(
      () => learningRate(s, 1, 0, 10),
      (e) => e instanceof ArgumentError && re.test(e.message),
    );
  }
  assert.throws(() => learningRate(cos, -1, 0, 10), /lr must be a positive finite number, got -1/);
  assert.throws(() => learningRate(cos, 1, -1, 10), /step/);
  assert.throws(() => learningRate(cos, 1, 0, 0.5), /totalSteps/);
});

// ---------------------------------------------------------------------------------------------
// Losses

/** Central differences in float64 over float32 inputs, dividing by the actual float32 step. */
function fdGrad(f: (x: Float32Array) => number, x: Float32Array, h = 1e-3): Float64Array {
  const g = new Float64Array(x.length);
  for (let j = 0; j < x.length; j++) {
    const x0 = x[j];
    x[j] = x0 + h;
    const xp = x[j], fp = f(x);
    x[j] = x0 - h;
    const xm = x[j], fm = f(x);
    x[j] = x0;
    g[j] = (fp - fm) / (xp - xm);
  }
  return g;
}

function assertGrad(analytic: Float32Array, fd: Float64Array, what: string): void {
  for (let j = 0; j < fd.length; j++) {
    close(analytic[j], fd[j], 2e-6 + 1e-4 * Math.abs(fd[j]), `${what} grad[${j}]: `);
  }
}

/** Random logits of n rows: some small, some up to ±50, so saturation is covered. */
function logitsOf(r: () => number, n: number, c: number): Float32Array {
  const x = new Float32Array(n * c);
  for (let i = 0; i < x.length; i++) x[i] = (r() * 2 - 1) * (i % 5 === 0 ? 50 : r() < 0.5 ? 3 : 15);
  return x;
}

function labelsOf(r: () => number, n: number, c: number): Int32Array {
  return Int32Array.from({ length: n }, () => Math.floor(r() * c));
}

/** Plain float64 log-softmax of one row divided by T. */
function refLogSoftmax(x: ArrayLike<number>, o: number, c: number, T = 1): number[] {
  const row = Array.from({ length: c }, (_, j) => x[o + j] / T);
  const m = Math.max(...row);
  const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
  return row.map((v) => v - lse);
}

Deno.test("softmaxCrossEntropy: value, gradient vs finite differences, smoothing, accuracy", () => {
  const r = rng(101);
  for (const [n, c] of [[1, 2], [4, 7], [6, 10]]) {
    for (const eps of [0, 0.1, 0.4]) {
      const x = logitsOf(r, n, c), y = labelsOf(r, n, c);
      const grad = new Float32Array(n * c).fill(123);
      const { loss } = softmaxCrossEntropy(x, n, c, y, grad, eps);
      let want = 0;
      for (let i = 0; i < n; i++) {
        const lp = refLogSoftmax(x, i * c, c);
        want -= lp.reduce((s, v, j) => s + ((1 - eps) * (j === y[i] ? 1 : 0) + eps / c) * v, 0);
      }
      close(loss, want / n, 1e-12 * Math.max(1, Math.abs(want / n)));
      const fd = fdGrad((z) => softmaxCrossEntropy(z, n, c, y, undefined, eps).loss, x);
      assertGrad(grad, fd, `CE n=${n} c=${c} eps=${eps}`);
    }
  }
  // Uniform logits: log c whatever the smoothing.
  const u = new Float32Array(8);
  close(softmaxCrossEntropy(u, 2, 4, new Int32Array([0, 3])).loss, Math.log(4), 1e-15);
  close(
    softmaxCrossEntropy(u, 2, 4, new Int32Array([0, 3]), undefined, 0.3).loss,
    Math.log(4),
    1e-15,
  );
  // Huge logits stay finite: the right class at +1e4 costs ~0, the wrong one ~2e4.
  const big = new Float32Array([1e4, -1e4, 0, -1e4, 1e4, 0]);
  const out = softmaxCrossEntropy(big, 2, 3, new Int32Array([0, 1]));
  assert.equal(out.loss, 0);
  close(softmaxCrossEntropy(big, 2, 3, new Int32Array([1, 0])).loss, 2e4, 1e-9);
  // correct: first max wins on ties.
  const ties = new Float32Array([2, 2, 0, 1, 3, 3, 5, 0, 0]);
  assert.equal(softmaxCrossEntropy(ties, 3, 3, new Int32Array([0, 1, 0])).correct, 3);
  assert.equal(softmaxCrossEntropy(ties, 3, 3, new Int32Array([1, 2, 0])).correct, 1);
  assert.deepEqual([...argmaxRows(ties, 3, 3)], [0, 1, 0]);
  assert.deepEqual([...argmaxRows(new Float32Array([NaN, 1, 2, NaN]), 2, 2)], [1, 0]);
});

Deno.test("distillationLoss: gradient vs finite differences for T = 1, 4, 20, with and without labels", () => {
  const r = rng(202);
  const n = 5, c = 6;
  for (const T of [1, 4, 20]) {
    for (const alpha of [0, 0.3, 0.9, 1]) {
      for (const withLabels of [true, false]) {
        const s = logitsOf(r, n, c), t = logitsOf(r, n, c);
        const y = withLabels ? labelsOf(r, n, c) : undefined;
        const grad = new Float32Array(n * c).fill(-7);
        const out = distillationLoss(s, t, n, c, T, alpha, y, grad);
        // Independent value: α·T²·KL + (1 − α)·CE, or T²·KL without labels.
        let kl = 0, ce = 0, correct = 0;
        for (let i = 0; i < n; i++) {
          const ls = refLogSoftmax(s, i * c, c, T), lt = refLogSoftmax(t, i * c, c, T);
          kl += lt.reduce((acc, v, j) => acc + Math.exp(v) * (v - ls[j]), 0);
          if (y) {
            ce -= refLogSoftmax(s, i * c, c)[y[i]];
            const row = [...s.subarray(i * c, (i + 1) * c)];
            if (row.indexOf(Math.max(...row)) === y[i]) correct++;
          }
        }
        const want = y ? (alpha * T * T * kl + (1 - alpha) * ce) / n : T * T * kl / n;
        const what = `T=${T} α=${alpha} labels=${withLabels}`;
        close(out.loss, want, 1e-10 * Math.max(1, Math.abs(want)), `${what} loss: `);
        assert.equal(out.correct, y ? correct : undefined);
        const fd = fdGrad((z) => distillationLoss(z, t, n, c, T, alpha, y).loss, s);
        assertGrad(grad, fd, what);
      }
    }
  }
});

Deno.test("distillation identities: α = 0 is CE, KL(p ‖ p) = 0, α is moot without labels", () => {
  const r = rng(303);
  const n = 4, c = 5;
  const s = logitsOf(r, n, c), t = logitsOf(r, n, c), y = labelsOf(r, n, c);
  const g1 = new Float32Array(n * c), g2 = new Float32Array(n * c);
  const d = distillationLoss(s, t, n, c, 4, 0, y, g1);
  const ce = softmaxCrossEntropy(s, n, c, y, g2);
  close(d.loss, ce.loss, 1e-12);
  assert.equal(d.correct, ce.correct);
  g1.forEach((v, i) => close(v, g2[i], 1e-7));

  const g3 = new Float32Array(n * c).fill(1);
  for (const T of [1, 4, 20]) {
    assert.equal(distillationLoss(s, s, n, c, T, 1, undefined, g3).loss, 0);
    assert.ok(g3.every((v) => v === 0));
    // With labels and α = 1 the loss is the KL term alone: 0 too.
    assert.equal(distillationLoss(s, s, n, c, T, 1, y).loss, 0);
  }
  const a = distillationLoss(s, t, n, c, 4, 0.2).loss, b = distillationLoss(s, t, n, c, 4, 1).loss;
  assert.equal(a, b);
  assert.ok(a > 0);
});

Deno.test("mseLoss: value and gradient", () => {
  const r = rng(404);
  const a = randArray(r, 17, 50), b = randArray(r, 17, 50);
  const grad = new Float32Array(17);
  const loss = mseLoss(a, b, grad);
  let want = 0;
  for (let i = 0; i < 17; i++) want += (a[i] - b[i]) ** 2;
  close(loss, want / 17, 1e-12 * want);
  assertGrad(grad, fdGrad((z) => mseLoss(z, b), a), "mse");
  assert.equal(mseLoss(new Float32Array([1, 2]), new Float32Array([1, 2])), 0);
  assert.throws(() => mseLoss(a, b.subarray(1)), ShapeError);
  assert.throws(() => mseLoss(new Float32Array(0), new Float32Array(0)), ArgumentError);
  assert.ok(Number.isNaN(mseLoss(new Float32Array([NaN]), new Float32Array([0]))));
});

Deno.test("losses: non-finite logits give NaN, never a throw; bad labels and shapes throw", () => {
  const y = new Int32Array([0, 1]);
  for (const bad of [NaN, Infinity, -Infinity]) {
    const x = new Float32Array([1, 2, 3, bad, 0, 1]);
    const grad = new Float32Array(6);
    assert.ok(Number.isNaN(softmaxCrossEntropy(x, 2, 3, y, grad).loss), `CE ${bad}`);
    assert.ok(Number.isNaN(grad[3]));
    assert.ok(
      Number.isNaN(distillationLoss(x, new Float32Array(6), 2, 3, 2, 0.5, y).loss),
      `KD ${bad}`,
    );
    assert.ok(
      Number.isNaN(distillationLoss(new Float32Array(6), x, 2, 3, 2, 0.5).loss),
      `KD teacher ${bad}`,
    );
  }
  const x = new Float32Array(6);
  for (const labels of [new Int32Array([0, 3]), new Int32Array([0, -1])]) {
    assert.throws(
      () => softmaxCrossEntropy(x, 2, 3, labels),
      (e) => e instanceof ArgumentError && /labels\[1\]/.test(e.message),
    );
    assert.throws(
      () => distillationLoss(x, x, 2, 3, 2, 0.5, labels),
      (e) => e instanceof ArgumentError && /labels\[1\]/.test(e.message),
    );
  }
  assert.throws(() => softmaxCrossEntropy(x, 2, 4, y), ShapeError);
  assert.throws(() => softmaxCrossEntropy(x, 2, 3, new Int32Array([0])), ShapeError);
  assert.throws(() => softmaxCrossEntropy(x, 2, 3, y, new Float32Array(5)), ShapeError);
  assert.throws(() => softmaxCrossEntropy(x, 2, 3, y, undefined, 1.5), ArgumentError);
  assert.throws(() => distillationLoss(x, x, 2, 3, 0, 0.5), /temperature/);
  assert.throws(() => distillationLoss(x, x, 2, 3, 1, 2), /alpha/);
  assert.throws(() => distillationLoss(x, x.subarray(1), 2, 3, 1, 0.5), ShapeError);
});

// ---------------------------------------------------------------------------------------------
// Mini-batches

Deno.test("epochBatches: deterministic per (seed, epoch), a permutation, sized batches", () => {
  const n = 103, bs = 10;
  const flat = (bs: Int32Array[]) => bs.flatMap((b) => [...b]);
  const a = epochBatches(n, bs, 7, 0), again = epochBatches(n, bs, 7, 0);
  assert.deepEqual(flat(a), flat(again));
  assert.notDeepEqual(flat(a), flat(epochBatches(n, bs, 7, 1)));
  assert.notDeepEqual(flat(a), flat(epochBatches(n, bs, 8, 0)));
  // Not the identity order.
  assert.notDeepEqual(flat(a), Array.from({ length: n }, (_, i) => i));
  for (let e = 0; e < 4; e++) {
    const b = epochBatches(n, bs, 7, e);
    assert.equal(b.length, 11);
    assert.deepEqual(b.map((x) => x.length), [10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 3]);
    assert.deepEqual(flat(b).sort((x, y) => x - y), Array.from({ length: n }, (_, i) => i));
    const d = epochBatches(n, bs, 7, e, true);
    assert.equal(d.length, 10);
    assert.ok(d.every((x) => x.length === 10));
    // dropLast drops only the tail: same order otherwise.
    assert.deepEqual(flat(d), flat(b).slice(0, 100));
  }
  assert.deepEqual(epochBatches(20, 10, 1, 0).map((x) => x.length), [10, 10]);
  assert.deepEqual(epochBatches(5, 10, 1, 0).map((x) => x.length), [5]);
  assert.deepEqual(epochBatches(5, 10, 1, 0, true), []);
  assert.deepEqual(epochBatches(0, 10, 1, 0), []);
  assert.throws(() => epochBatches(10, 0, 1, 0), /batchSize/);
  assert.throws(() => epochBatches(10, 2, 1, -1), /epoch/);
  assert.throws(() => epochBatches(10, 2, 1.5, 0), /seed/);
});

Deno.test("gatherRows and gatherLabels copy the indexed rows", () => {
  const rows = 6, w = 4;
  const src = Float32Array.from({ length: rows * w }, (_, i) => Math.floor(i / w) * 10 + (i % w));
  const idx = new Int32Array([5, 0, 3]);
  const dst = new Float32Array(4 * w).fill(-1);
  gatherRows(src, w, idx, dst);
  assert.deepEqual(
    [...dst],
    [50, 51, 52, 53, 0, 1, 2, 3, 30, 31, 32, 33, -1, -1, -1, -1],
  );
  assert.throws(() => gatherRows(src, w, new Int32Array([6]), dst), ArgumentError);
  assert.throws(() => gatherRows(src, w, idx, new Float32Array(11)), ShapeError);
  assert.throws(() => gatherRows(src, 5, idx, dst), ShapeError);

  const l32 = new Int32Array([9, 8, 7, 6, 5, 4]);
  assert.deepEqual([...gatherLabels(l32, idx)], [4, 9, 6]);
  const l64 = new BigInt64Array([9n, 8n, 7n, 6n, 5n, 4n]);
  const out = gatherLabels(l64, idx);
  assert.ok(out instanceof Int32Array);
  assert.deepEqual([...out], [4, 9, 6]);
  assert.throws(() => gatherLabels(l64, new Int32Array([-1])), ArgumentError);
  assert.throws(
    () => gatherLabels(new BigInt64Array([1n << 40n]), new Int32Array([0])),
    ArgumentError,
  );
});
