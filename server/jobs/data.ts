// The .npy files a compression job takes besides the recipe: calibration samples, and for a
// fine-tuning recipe training / validation samples with their labels. Checked when the job is
// requested (400 with the reason, nothing stored), converted for compress() in the worker.
import type { Tensor } from "../../src/mod.ts";
import { badRequest } from "../errors.ts";
import type { ModelRecord } from "../store/db.ts";

/** Integer dtypes a labels file may have (numpy's default int64, int32, uint8, …). */
export const LABEL_TYPES = [
  "int64",
  "int32",
  "int16",
  "int8",
  "uint64",
  "uint32",
  "uint16",
  "uint8",
];

/** The multipart fields of the data files, by what they hold. */
export const DATA_FIELDS = {
  train: "training data",
  labels: "training labels",
  validation: "validation data",
  validation_labels: "validation labels",
} as const;
export type DataField = keyof typeof DATA_FIELDS;

/**
 * Samples for the model's single input: N ≥ 1 of its dtype and fixed dims (the first dim is
 * the samples). `what` names the data in messages ("the calibration data", "'train'").
 */
export function checkSamples(t: Tensor, m: ModelRecord, what: string): void {
  if (m.inputs.length !== 1) {
    throw badRequest(`${what} needs a model with one input; this one has ${m.inputs.length}`);
  }
  const input = m.inputs[0];
  if (t.type !== input.type) {
    throw badRequest(`${what} is ${t.type}, the input '${input.name}' is ${input.type}`);
  }
  if (t.dims.length !== input.dims.length) {
    throw badRequest(
      `${what} has dims [${t.dims}], the input '${input.name}' has [${input.dims}] ` +
        `(the first dim is the samples)`,
    );
  }
  if (t.dims[0] < 1) throw badRequest(`${what} holds no samples`);
  input.dims.forEach((d, i) => {
    if (i > 0 && typeof d === "number" && d > 0 && t.dims[i] !== d) {
      throw badRequest(
        `${what} has dims [${t.dims}], the input '${input.name}' needs [${input.dims}]`,
      );
    }
  });
}

/** Training and validation samples are float inputs: NaN and ±∞ would poison the weights. */
export function checkFinite(t: Tensor, what: string): void {
  if (t.type !== "float32" && t.type !== "float64" && t.type !== "float16") return;
  const d = t.data as ArrayLike<number>;
  const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i])) {
      throw badRequest(
        `${what} holds a non-finite value (${d[i]}) in sample ${Math.floor(i / Math.max(per, 1))}`,
      );
    }
  }
}

/**
 * The number of classes of the model's scores when it can be told: a single output whose last
 * dim is fixed (e.g. [N, 10]).
 */
export function classCount(m: ModelRecord): number | undefined {
  if (m.outputs.length !== 1) return undefined;
  const last = m.outputs[0].dims[m.outputs[0].dims.length - 1];
  return typeof last === "number" && last > 1 ? last : undefined;
}

/**
 * Labels: 1-D (or N×1) integers, one per sample, each a class index in [0, classes). `what`
 * names the file ("'labels'"), `of` the samples ("'train'").
 */
export function checkLabels(
  t: Tensor,
  samples: number,
  classes: number | undefined,
  what: string,
  of: string,
): void {
  if (!LABEL_TYPES.includes(t.type)) {
    throw badRequest(
      `${what} must hold integer class indices (int64, int32 or uint8), not ${t.type}`,
      "invalid_datatype",
    );
  }
  const flat = t.dims.length === 1 || (t.dims.length === 2 && t.dims[1] === 1);
  if (!flat) {
    throw badRequest(
      `${what} must be 1-D, one class index per sample, got dims [${t.dims}]`,
      "invalid_shape",
    );
  }
  if (t.dims[0] !== samples) {
    throw badRequest(
      `${what} holds ${t.dims[0]} labels, ${of} ${samples} samples: one label per sample`,
      "invalid_shape",
    );
  }
  const d = t.data as ArrayLike<number | bigint>;
  const hi = classes ?? 0x7fffffff;
  for (let i = 0; i < samples; i++) {
    const v = Number(d[i]);
    if (!(v >= 0 && v < hi)) {
      throw badRequest(
        `${what}: label ${i} is ${d[i]}, ` +
          (classes
            ? `outside the model's ${classes} classes (0 … ${classes - 1})`
            : "not a class index ≥ 0"),
      );
    }
  }
}

/** Checked labels as compress() takes them. */
export function labelsOf(t: Tensor): Int32Array {
  const d = t.data as ArrayLike<number | bigint>;
  const out = new Int32Array(t.dims[0]);
  for (let i = 0; i < out.length; i++) out[i] = Number(d[i]);
  return out;
}

/** Whether a parsed recipe fine-tunes (a `finetune` block, or a `+ft` preset). */
export function finetunes(recipe: unknown): boolean {
  return typeof recipe === "object" && recipe !== null &&
    (recipe as { finetune?: unknown }).finetune !== undefined &&
    (recipe as { finetune?: unknown }).finetune !== null;
}
