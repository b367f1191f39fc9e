// Training-time augmentation of image inputs: each sample is translated by a whole number of
// pixels drawn uniformly from [−shift, shift] per spatial axis, the uncovered border filled with
// zeros (Keras' RandomTranslation with fill_mode "constant"). It matters when the training set
// is small: a compressed network fine-tuned on a few thousand images otherwise memorizes them.
// Draws come from the run's seeded PRNG, so a run stays deterministic.
import { ArgumentError } from "../errors.ts";

export interface AugmentConfig {
  /** Largest translation in pixels per axis. */
  shift: number;
  /** Where the spatial axes are: NCHW (PyTorch) or NHWC (Keras). */
  layout: "nchw" | "nhwc";
}

/** Shifts every sample of a rank-4 batch in place. */
export function shiftImages(
  data: Float32Array,
  dims: readonly number[],
  cfg: AugmentConfig,
  random: () => number,
): void {
  if (dims.length !== 4) {
    throw new ArgumentError(`finetune.augment: the input must be 4-D images, got [${dims}]`);
  }
  const [n] = dims;
  const [c, h, w] = cfg.layout === "nchw"
    ? [dims[1], dims[2], dims[3]]
    : [dims[3], dims[1], dims[2]];
  const per = c * h * w, tmp = new Float32Array(per);
  for (let s = 0; s < n; s++) {
    const dy = Math.floor(random() * (2 * cfg.shift + 1)) - cfg.shift;
    const dx = Math.floor(random() * (2 * cfg.shift + 1)) - cfg.shift;
    if (dy === 0 && dx === 0) continue;
    const img = data.subarray(s * per, (s + 1) * per);
    tmp.fill(0);
    const y0 = Math.max(0, dy),
      y1 = Math.min(h, h + dy),
      x0 = Math.max(0, dx),
      x1 = Math.min(w, w + dx);
    if (y0 >= y1 || x0 >= x1) {
      img.fill(0); // shifted entirely out of the frame
      continue;
    }
    if (cfg.layout === "nchw") {
      for (let ch = 0; ch < c; ch++) {
        for (let y = y0; y < y1; y++) {
          const src = (ch * h + y - dy) * w - dx, dst = (ch * h + y) * w;
          tmp.set(img.subarray(src + x0, src + x1), dst + x0);
        }
      }
    } else {
      for (let y = y0; y < y1; y++) {
        const src = ((y - dy) * w - dx) * c, dst = y * w * c;
        tmp.set(img.subarray(src + x0 * c, src + x1 * c), dst + x0 * c);
      }
    }
    img.set(tmp);
  }
}
