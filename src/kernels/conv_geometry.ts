// Geometry of 2-D convolution and pooling windows: padding modes, output sizes and the checks
// that reject impossible layers before any kernel runs. Layout is NHWC throughout the kernels:
// channels are contiguous, so a pixel's channels are one vector stream and a 1×1 convolution is
// a plain GEMM over H·W rows.
import { ShapeError } from "../errors.ts";
import { MAX_DIM } from "./validate.ts";

/** ONNX auto_pad. NOTSET uses the explicit pads. */
export type AutoPad = "NOTSET" | "SAME_UPPER" | "SAME_LOWER" | "VALID";

export interface WindowAttrs {
  kernel: [number, number];
  strides?: [number, number];
  dilations?: [number, number];
  /** ONNX order: [top, left, bottom, right]. */
  pads?: [number, number, number, number];
  autoPad?: AutoPad;
  /** Pooling only: output size rounds up (the last window may start inside the padding). */
  ceilMode?: boolean;
}

export interface WindowGeometry {
  inH: number;
  inW: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  padTop: number;
  padLeft: number;
  padBottom: number;
  padRight: number;
  outH: number;
  outW: number;
}

function positive(name: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0 || v > MAX_DIM) {
    throw new ShapeError(`${name} must be a positive integer, got ${v}`);
  }
}

/** Resolves padding and output size along one axis. */
function axis(
  name: string,
  size: number,
  k: number,
  s: number,
  d: number,
  head: number,
  tail: number,
  autoPad: AutoPad,
  ceilMode: boolean,
): [number, number, number] {
  const span = (k - 1) * d + 1; // extent of the dilated window
  if (autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") {
    const out = Math.ceil(size / s);
    const total = Math.max(0, (out - 1) * s + span - size);
    const small = Math.floor(total / 2);
    // SAME_UPPER puts the odd pixel at the end, SAME_LOWER at the beginning.
    return autoPad === "SAME_UPPER" ? [small, total - small, out] : [total - small, small, out];
  }
  if (autoPad === "VALID") {
    head = 0;
    tail = 0;
  }
  const padded = size + head + tail;
  if (padded < span) {
    throw new ShapeError(
      `${name}: window of ${span} (kernel ${k}, dilation ${d}) is larger than the padded input ${padded}`,
    );
  }
  let out = ceilMode ? Math.ceil((padded - span) / s) + 1 : Math.floor((padded - span) / s) + 1;
  // ONNX/PyTorch: with ceil_mode the last window must start inside the input or left padding.
  if (ceilMode && (out - 1) * s >= size + head) out--;
  return [head, tail, out];
}

export function windowGeometry(inH: number, inW: number, a: WindowAttrs): WindowGeometry {
  positive("input height", inH);
  positive("input width", inW);
  const [kh, kw] = a.kernel;
  positive("kernel height", kh);
  positive("kernel width", kw);
  const [sh, sw] = a.strides ?? [1, 1];
  positive("stride", sh);
  positive("stride", sw);
  const [dh, dw] = a.dilations ?? [1, 1];
  positive("dilation", dh);
  positive("dilation", dw);
  const pads = a.pads ?? [0, 0, 0, 0];
  if (pads.length !== 4) throw new ShapeError(`pads must have 4 values, got ${pads.length}`);
  for (const p of pads) {
    if (!Number.isInteger(p) || p < 0 || p > MAX_DIM) {
      throw new ShapeError(`pads must be non-negative integers, got [${pads.join(", ")}]`);
    }
  }
  const autoPad = a.autoPad ?? "NOTSET";
  if (!["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"].includes(autoPad)) {
    throw new ShapeError(`unknown auto_pad ${autoPad}`);
  }
  const ceil = a.ceilMode ?? false;
  const [padTop, padBottom, outH] = axis(
    "height",
    inH,
    kh,
    sh,
    dh,
    pads[0],
    pads[2],
    autoPad,
    ceil,
  );
  const [padLeft, padRight, outW] = axis("width", inW, kw, sw, dw, pads[1], pads[3], autoPad, ceil);
  if (outH <= 0 || outW <= 0) throw new ShapeError(`output would be ${outH}×${outW}`);
  return { inH, inW, kh, kw, sh, sw, dh, dw, padTop, padLeft, padBottom, padRight, outH, outW };
}

/** Channel and group checks of a convolution. */
export function checkConvChannels(cin: number, cout: number, groups: number): void {
  positive("input channels", cin);
  positive("output channels", cout);
  positive("groups", groups);
  if (cin % groups !== 0) {
    throw new ShapeError(`input channels ${cin} are not divisible by groups ${groups}`);
  }
  if (cout % groups !== 0) {
    throw new ShapeError(`output channels ${cout} are not divisible by groups ${groups}`);
  }
}

/** Throws when a tensor of these dims has more elements than 32-bit kernel indexing allows. */
export function checkTensorSize(what: string, dims: number[], elemBytes: number): number {
  let n = 1;
  for (const d of dims) {
    positive(`${what} dimension`, d);
    n *= d;
  }
  if (n * elemBytes > 0x7fffffff) {
    throw new ShapeError(`${what} of shape [${dims.join(", ")}] exceeds 2 GiB`);
  }
  return n;
}
