// Optimizers of sqz's training engine: SGD (momentum, Nesterov), Adam and AdamW, with
// PyTorch's update rules exactly (torch.optim.SGD / Adam / AdamW, default dampening 0,
// amsgrad off, maximize off), plus global gradient-norm clipping.
//
// Semantics:
// - Parameters and optimizer slots are float32 (Float32Array), updated in place; each element's
//   update is computed in float64 (JS numbers) and rounded once on store.
// - Weight decay applies only to parameters with `decay: true`. sgd and adam add it to the
//   gradient (L2: g + wd·w); adamw decouples it (w ← w·(1 − lr·wd) before the Adam step).
// - A mask (1 = trainable, 0 = pruned) zeroes the gradient before the update and the weight
//   after it, so a pruned weight stays exactly 0 whatever the momentum holds.
// - Slots per parameter: sgd with momentum > 0 → [momentum buffer]; sgd without → [];
//   adam / adamw → [exp_avg, exp_avg_sq]. All start at 0 (for SGD with dampening 0 this equals
//   PyTorch's "first buffer = gradient"). `step` counts completed steps (Adam's bias correction).
import { ArgumentError, ShapeError } from "../errors.ts";

export interface Param {
  name: string;
  /** Updated in place. */
  data: Float32Array;
  /** Same length as data; the caller zeroes it between steps. */
  grad: Float32Array;
  /** 1 = trainable element, 0 = frozen at 0 (pruning): the mask is applied to the gradient AND the weight after each step. */
  mask?: Uint8Array;
  /** Whether weight decay applies (weights yes; biases, BatchNorm scale/shift no). */
  decay: boolean;
}

export type OptimizerKind = "sgd" | "adam" | "adamw";

export interface OptimizerConfig {
  kind: OptimizerKind;
  /** sgd, default 0.9. */
  momentum?: number;
  /** sgd, default false (needs momentum > 0). */
  nesterov?: boolean;
  /** adam(w): 0.9, 0.999, 1e-8. */
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Default 0; sgd/adam: L2 added to the gradient (PyTorch semantics); adamw: decoupled (lr·wd·w, PyTorch AdamW). */
  weightDecay?: number;
}

export interface OptimizerState {
  kind: OptimizerKind;
  step: number;
  slots: Record<string, Float32Array[]>;
}

const KINDS: readonly OptimizerKind[] = ["sgd", "adam", "adamw"];
const CONFIG_KEYS = new Set([
  "kind",
  "momentum",
  "nesterov",
  "beta1",
  "beta2",
  "eps",
  "weightDecay",
]);

function show(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

function inUnitInterval(v: unknown, field: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v >= 1) {
    throw new ArgumentError(`${field} must be a number in [0, 1), got ${show(v)}`);
  }
  return v;
}

/**
 * Checks an optimizer config from a recipe or a caller and returns it with every default of its
 * kind filled in. Fields of other kinds (e.g. momentum for adam) are checked but ignored, so one
 * config object can be passed whatever the kind; unknown fields are errors (typos).
 * `where` prefixes field names in messages.
 */
export function validateOptimizerConfig(c: unknown, where = "optimizer"): OptimizerConfig {
  if (typeof c !== "object" || c === null || Array.isArray(c)) {
    throw new ArgumentError(`${where} must be an object, got ${show(c)}`);
  }
  const o = c as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!CONFIG_KEYS.has(k)) {
      throw new ArgumentError(
        `${where}.${k} is not an optimizer setting (known: ${[...CONFIG_KEYS].join(", ")})`,
      );
    }
  }
  if (!KINDS.includes(o.kind as OptimizerKind)) {
    throw new ArgumentError(
      `${where}.kind must be one of ${KINDS.join(", ")}, got ${show(o.kind)}`,
    );
  }
  const kind = o.kind as OptimizerKind;
  const momentum = o.momentum === undefined ? 0.9 : inUnitInterval(o.momentum, `${where}.momentum`);
  if (o.nesterov !== undefined && typeof o.nesterov !== "boolean") {
    throw new ArgumentError(`${where}.nesterov must be a boolean, got ${show(o.nesterov)}`);
  }
  const nesterov = o.nesterov ?? false;
  const beta1 = o.beta1 === undefined ? 0.9 : inUnitInterval(o.beta1, `${where}.beta1`);
  const beta2 = o.beta2 === undefined ? 0.999 : inUnitInterval(o.beta2, `${where}.beta2`);
  const eps = o.eps ?? 1e-8;
  if (typeof eps !== "number" || !Number.isFinite(eps) || eps <= 0) {
    throw new ArgumentError(`${where}.eps must be a positive finite number, got ${show(eps)}`);
  }
  const weightDecay = o.weightDecay ?? 0;
  if (typeof weightDecay !== "number" || !Number.isFinite(weightDecay) || weightDecay < 0) {
    throw new ArgumentError(
      `${where}.weightDecay must be a non-negative finite number, got ${show(weightDecay)}`,
    );
  }
  if (kind === "sgd") {
    // PyTorch refuses this too: Nesterov without momentum is plain SGD under a misleading name.
    if (nesterov && momentum === 0) {
      throw new ArgumentError(`${where}.nesterov needs ${where}.momentum > 0`);
    }
    return { kind, momentum, nesterov, weightDecay };
  }
  return { kind, beta1, beta2, eps, weightDecay };
}

function checkParams(params: Param[]): void {
  const names = new Set<string>();
  for (const p of params) {
    if (names.has(p.name)) {
      throw new ArgumentError(`optimizer: duplicate parameter name '${p.name}'`);
    }
    names.add(p.name);
    if (p.grad.length !== p.data.length) {
      throw new ShapeError(
        `optimizer: parameter '${p.name}' has ${p.data.length} values but ${p.grad.length} gradients`,
      );
    }
    if (p.mask && p.mask.length !== p.data.length) {
      throw new ShapeError(
        `optimizer: parameter '${p.name}' has ${p.data.length} values but a mask of ${p.mask.length}`,
      );
    }
  }
}

export class Optimizer {
  readonly config: Required<OptimizerConfig>;
  readonly params: readonly Param[];
  #step = 0;
  #slots: Float32Array[][];

  constructor(params: Param[], config: OptimizerConfig) {
    const c = validateOptimizerConfig(config);
    checkParams(params);
    this.config = {
      kind: c.kind,
      momentum: c.momentum ?? 0,
      nesterov: c.nesterov ?? false,
      beta1: c.beta1 ?? 0.9,
      beta2: c.beta2 ?? 0.999,
      eps: c.eps ?? 1e-8,
      weightDecay: c.weightDecay ?? 0,
    };
    this.params = [...params];
    const nSlots = this.#slotCount();
    this.#slots = this.params.map((p) =>
      Array.from({ length: nSlots }, () => new Float32Array(p.data.length))
    );
  }

  #slotCount(): number {
    if (this.config.kind !== "sgd") return 2;
    return this.config.momentum > 0 ? 1 : 0;
  }

  /** Completed steps. */
  get stepCount(): number {
    return this.#step;
  }

  /** One update with learning rate lr (PyTorch's update rules exactly, bias-corrected Adam). */
  step(lr: number): void {
    if (typeof lr !== "number" || !Number.isFinite(lr) || lr < 0) {
      throw new ArgumentError(
        `optimizer: lr must be a non-negative finite number, got ${show(lr)}`,
      );
    }
    this.#step++;
    for (let k = 0; k < this.params.length; k++) {
      const p = this.params[k];
      const mask = p.mask;
      if (mask) {
        const g = p.grad;
        for (let i = 0; i < g.length; i++) if (mask[i] === 0) g[i] = 0;
      }
      if (this.config.kind === "sgd") this.#sgd(p, this.#slots[k], lr);
      else this.#adam(p, this.#slots[k], lr);
      if (mask) {
        const w = p.data;
        for (let i = 0; i < w.length; i++) if (mask[i] === 0) w[i] = 0;
      }
    }
  }

  #sgd(p: Param, slots: Float32Array[], lr: number): void {
    const { momentum, nesterov } = this.config;
    const wd = p.decay ? this.config.weightDecay : 0;
    const w = p.data, g = p.grad;
    if (momentum === 0) {
      for (let i = 0; i < w.length; i++) w[i] = w[i] - lr * (g[i] + wd * w[i]);
      return;
    }
    const buf = slots[0];
    for (let i = 0; i < w.length; i++) {
      const gi = g[i] + wd * w[i];
      const b = momentum * buf[i] + gi;
      buf[i] = b;
      // PyTorch's Nesterov uses the stored (float32) buffer: g + momentum·buf.
      w[i] = w[i] - lr * (nesterov ? gi + momentum * buf[i] : buf[i]);
    }
  }

  #adam(p: Param, slots: Float32Array[], lr: number): void {
    const { beta1, beta2, eps, kind } = this.config;
    const wd = p.decay ? this.config.weightDecay : 0;
    const l2 = kind === "adam" ? wd : 0;
    const shrink = kind === "adamw" ? 1 - lr * wd : 1;
    const t = this.#step;
    const stepSize = lr / (1 - beta1 ** t);
    const bc2Sqrt = Math.sqrt(1 - beta2 ** t);
    const [m, v] = slots;
    const w = p.data, g = p.grad;
    for (let i = 0; i < w.length; i++) {
      // L2 (adam) uses the weight before the step; AdamW shrinks it first, then steps.
      const gi = g[i] + l2 * w[i];
      const wi = w[i] * shrink;
      m[i] = beta1 * m[i] + (1 - beta1) * gi;
      v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
      w[i] = wi - stepSize * m[i] / (Math.sqrt(v[i]) / bc2Sqrt + eps);
    }
  }

  /** Serializable state (for checkpoints): copies, so later steps do not change it. */
  state(): OptimizerState {
    const slots: Record<string, Float32Array[]> = {};
    this.params.forEach((p, k) => slots[p.name] = this.#slots[k].map((s) => s.slice()));
    return { kind: this.config.kind, step: this.#step, slots };
  }

  /** Restores state(); mismatched kind, names, slot counts or lengths → ArgumentError. */
  load(state: OptimizerState): void {
    if (state.kind !== this.config.kind) {
      throw new ArgumentError(
        `optimizer state is for ${show(state.kind)}, this optimizer is ${this.config.kind}`,
      );
    }
    if (!Number.isSafeInteger(state.step) || state.step < 0) {
      throw new ArgumentError(
        `optimizer state step must be a non-negative integer, got ${show(state.step)}`,
      );
    }
    const names = new Set(this.params.map((p) => p.name));
    for (const name of Object.keys(state.slots)) {
      if (!names.has(name)) {
        throw new ArgumentError(`optimizer state has unknown parameter '${name}'`);
      }
    }
    const nSlots = this.#slotCount();
    // Check everything before copying anything, so a bad state leaves this optimizer untouched.
    for (const p of this.params) {
      const s = state.slots[p.name];
      if (!s) throw new ArgumentError(`optimizer state lacks parameter '${p.name}'`);
      if (s.length !== nSlots) {
        throw new ArgumentError(
          `optimizer state for '${p.name}' has ${s.length} slots, ${this.config.kind} needs ${nSlots}`,
        );
      }
      for (const a of s) {
        if (!(a instanceof Float32Array) || a.length !== p.data.length) {
          throw new ArgumentError(
            `optimizer state for '${p.name}' has a slot of ${a?.length} values, the parameter has ${p.data.length}`,
          );
        }
      }
    }
    this.params.forEach((p, k) => state.slots[p.name].forEach((a, j) => this.#slots[k][j].set(a)));
    this.#step = state.step;
  }
}

/**
 * Scales all gradients so their global L2 norm is at most maxNorm; returns the norm before
 * clipping. Non-finite norm returns NaN without scaling. Masked gradient elements are zeroed
 * first (step() would zero them anyway; counting them would clip the live ones for nothing).
 * Scale = maxNorm / (norm + 1e-6), as torch.nn.utils.clip_grad_norm_.
 */
export function clipGradNorm(params: Param[], maxNorm: number): number {
  if (typeof maxNorm !== "number" || !Number.isFinite(maxNorm) || maxNorm <= 0) {
    throw new ArgumentError(
      `clipGradNorm: maxNorm must be a positive finite number, got ${show(maxNorm)}`,
    );
  }
  let sq = 0;
  for (const p of params) {
    const g = p.grad, mask = p.mask;
    for (let i = 0; i < g.length; i++) {
      if (mask && mask[i] === 0) g[i] = 0;
      sq += g[i] * g[i];
    }
  }
  const norm = Math.sqrt(sq);
  if (!Number.isFinite(norm)) return NaN;
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) {
    for (const p of params) {
      const g = p.grad;
      for (let i = 0; i < g.length; i++) g[i] *= coef;
    }
  }
  return norm;
}
