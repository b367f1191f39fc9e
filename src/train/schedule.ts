// Learning-rate schedules, as a pure function of the optimizer step (no state to checkpoint).
//
// lr(s) = warmup(s) · base(s), for 0-based step s of totalSteps, W = warmupSteps:
// - warmup(s) = (s + 1) / W for s < W, else 1: a linear ramp from 0 (before the first step) that
//   reaches lr at step W − 1, so no step is spent at lr 0.
// - constant: base = lr.
// - cosine: over the T = totalSteps − W steps after warmup, t = clamp(s − W, 0, T):
//   base = minLr + (lr − minLr)·(1 + cos(π·t/T))/2 — lr at the end of warmup, (lr + minLr)/2
//   half way, minLr at s = totalSteps and after (PyTorch's CosineAnnealingLR with T_max = T).
// - step: base = lr·gamma^floor(s / stepEvery), s counted from 0 including warmup (StepLR).
import { ArgumentError } from "../errors.ts";

export type ScheduleKind = "constant" | "cosine" | "step";

export interface ScheduleConfig {
  kind: ScheduleKind;
  /** Default 0. */
  warmupSteps?: number;
  /** Steps between decays; required for "step". */
  stepEvery?: number;
  /** Decay factor of "step", default 0.1. */
  gamma?: number;
  /** Cosine floor, default 0. */
  minLr?: number;
}

const KINDS: readonly ScheduleKind[] = ["constant", "cosine", "step"];
const KEYS = new Set(["kind", "warmupSteps", "stepEvery", "gamma", "minLr"]);

function show(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

function nonNegativeInt(v: unknown, field: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new ArgumentError(`${field} must be a non-negative integer, got ${show(v)}`);
  }
  return v;
}

/** Checks a schedule config; returns it with defaults filled in. `where` prefixes field names. */
export function validateScheduleConfig(c: unknown, where = "schedule"): Required<ScheduleConfig> {
  if (typeof c !== "object" || c === null || Array.isArray(c)) {
    throw new ArgumentError(`${where} must be an object, got ${show(c)}`);
  }
  const o = c as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!KEYS.has(k)) {
      throw new ArgumentError(
        `${where}.${k} is not a schedule setting (known: ${[...KEYS].join(", ")})`,
      );
    }
  }
  if (!KINDS.includes(o.kind as ScheduleKind)) {
    throw new ArgumentError(
      `${where}.kind must be one of ${KINDS.join(", ")}, got ${show(o.kind)}`,
    );
  }
  const kind = o.kind as ScheduleKind;
  const warmupSteps = nonNegativeInt(o.warmupSteps ?? 0, `${where}.warmupSteps`);
  let stepEvery = 1;
  if (kind === "step" || o.stepEvery !== undefined) {
    stepEvery = nonNegativeInt(o.stepEvery, `${where}.stepEvery`);
    if (stepEvery === 0) throw new ArgumentError(`${where}.stepEvery must be positive, got 0`);
  }
  const gamma = o.gamma ?? 0.1;
  if (typeof gamma !== "number" || !Number.isFinite(gamma) || gamma <= 0) {
    throw new ArgumentError(`${where}.gamma must be a positive finite number, got ${show(gamma)}`);
  }
  const minLr = o.minLr ?? 0;
  if (typeof minLr !== "number" || !Number.isFinite(minLr) || minLr < 0) {
    throw new ArgumentError(
      `${where}.minLr must be a non-negative finite number, got ${show(minLr)}`,
    );
  }
  return { kind, warmupSteps, stepEvery, gamma, minLr };
}

/** The learning rate at optimizer step `step` (0-based) of `totalSteps` (see the top of the file). */
export function learningRate(
  s: ScheduleConfig,
  lr: number,
  step: number,
  totalSteps: number,
): number {
  const c = validateScheduleConfig(s);
  if (typeof lr !== "number" || !Number.isFinite(lr) || lr <= 0) {
    throw new ArgumentError(`learningRate: lr must be a positive finite number, got ${show(lr)}`);
  }
  nonNegativeInt(step, "learningRate: step");
  nonNegativeInt(totalSteps, "learningRate: totalSteps");
  const w = c.warmupSteps;
  const warm = step < w ? (step + 1) / w : 1;
  switch (c.kind) {
    case "constant":
      return warm * lr;
    case "step":
      return warm * lr * c.gamma ** Math.floor(step / c.stepEvery);
    case "cosine": {
      if (c.minLr > lr) {
        throw new ArgumentError(`schedule.minLr (${c.minLr}) must not exceed lr (${lr})`);
      }
      const T = totalSteps - w;
      // No steps left after warmup: the decay is already over.
      if (T <= 0) return step < w ? warm * lr : c.minLr;
      const t = Math.min(Math.max(step - w, 0), T);
      return warm * (c.minLr + (lr - c.minLr) * (1 + Math.cos(Math.PI * t / T)) / 2);
    }
  }
}
