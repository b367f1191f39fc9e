// Quantization parameters shared by the int8 kernels and their reference.

/**
 * TFLite's QuantizeMultiplier: real = multiplier · 2^(shift − 31) with multiplier a Q31 value
 * in [2^30, 2^31). shift > 0 is a left shift, shift < 0 a right shift.
 */
export function quantizeMultiplier(real: number): { multiplier: number; shift: number } {
  if (!(real > 0) || !Number.isFinite(real)) return { multiplier: 0, shift: 0 };
  let shift = Math.floor(Math.log2(real)) + 1;
  let q = real / 2 ** shift; // in [0.5, 1)
  if (q >= 1) { // log2 rounding at exact powers of two
    q /= 2;
    shift++;
  } else if (q < 0.5) {
    q *= 2;
    shift--;
  }
  let m = Math.round(q * 2 ** 31);
  if (m === 2 ** 31) {
    m /= 2;
    shift++;
  }
  if (shift < -31) return { multiplier: 0, shift: 0 };
  return { multiplier: m, shift };
}

/** Integer range of a quantized dtype. */
export function qrange(dtype: "uint8" | "int8"): [number, number] {
  return dtype === "uint8" ? [0, 255] : [-128, 127];
}
