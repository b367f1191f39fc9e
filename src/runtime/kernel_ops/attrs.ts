// ONNX Conv/pool attributes → the kernels' window attributes and fused activation.
import type { Node } from "../../graph/ir.ts";
import type { AutoPad } from "../../kernels/conv_geometry.ts";
import type { ConvAttrs } from "../../kernels/conv.ts";
import type { Activation } from "../../kernels/validate.ts";
import { attrInts, attrString } from "../../ops/attrs.ts";

/** 2-D window attributes, or undefined when the node is not 2-D (kernel_shape or pads). */
export function windowAttrs(node: Node): ConvAttrs | undefined {
  const strides = attrInts(node, "strides") ?? [1, 1];
  const dilations = attrInts(node, "dilations") ?? [1, 1];
  const pads = attrInts(node, "pads") ?? [0, 0, 0, 0];
  if (strides.length !== 2 || dilations.length !== 2 || pads.length !== 4) return undefined;
  // ONNX pads are [top, left, bottom, right] for 2-D ([x1_begin, x2_begin, x1_end, x2_end]).
  return {
    strides: [strides[0], strides[1]],
    dilations: [dilations[0], dilations[1]],
    pads: [pads[0], pads[1], pads[2], pads[3]],
    autoPad: attrString(node, "auto_pad", "NOTSET") as AutoPad,
  };
}

/** The clamp that graph/passes.ts fuseActivations left on the node. */
export function fusedActivation(node: Node): Activation | undefined {
  const lo = node.attrs.activation_min, hi = node.attrs.activation_max;
  if (typeof lo !== "number" && typeof hi !== "number") return undefined;
  return {
    kind: "clip",
    min: typeof lo === "number" ? lo : -Infinity,
    max: typeof hi === "number" ? hi : Infinity,
  };
}
