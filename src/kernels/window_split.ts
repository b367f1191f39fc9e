// Splits a windowed NHWC kernel (depthwise convolution, pooling) over threads by output rows.
// One image: output rows are split, and each share reads its input from the first row its
// windows touch, so its pad_top stays ≥ 0 (or, for windows wholly in the bottom padding, keeps
// one real row) and its input height ends at the real bottom edge: its kernel call computes
// exactly the pixels, taps and tap order the whole-layer call would. Several images: whole
// images are split. The bottom padding is unchanged, so average pooling's countIncludePad
// extent is the same for every share (no share's windows reach above its own first row).
import type { KernelModule } from "./module.ts";
import type { WindowGeometry } from "./conv_geometry.ts";
import type { Dims4 } from "./conv.ts";

/** One share's geometry: its images, input rows and output rows, and where they start. */
export interface WindowShare {
  n: number;
  h: number;
  padTop: number;
  outH: number;
  /** Byte offsets of the share's input and output from the whole tensors'. */
  xOffset: number;
  yOffset: number;
}

/**
 * The shares of a windowed layer; `work` is its multiply-adds (or taps), weighed against the
 * module's threshold for splitting.
 */
export function windowShares(
  mod: KernelModule,
  dims: Dims4,
  g: WindowGeometry,
  xBytes: number,
  yBytes: number,
  work: number,
): WindowShare[] {
  const [n, h, w, c] = dims;
  const byImages = n > 1;
  const rowIn = w * c * xBytes, rowOut = g.outW * c * yBytes;
  return mod.planRows(byImages ? n : g.outH, work, 1).map(([r0, r1]) => {
    if (byImages) {
      return {
        n: r1 - r0,
        h,
        padTop: g.padTop,
        outH: g.outH,
        xOffset: r0 * h * rowIn,
        yOffset: r0 * g.outH * rowOut,
      };
    }
    const iy = r0 * g.sh - g.padTop; // the first input row of output row r0's window
    const shift = Math.min(Math.max(iy, 0), h - 1);
    return {
      n,
      h: h - shift,
      padTop: shift - iy,
      outH: r1 - r0,
      xOffset: shift * rowIn,
      yOffset: r0 * rowOut,
    };
  });
}
