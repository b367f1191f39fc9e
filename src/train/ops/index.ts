// Every op the training engine can differentiate, by qualified op type.
import { CONV_GRADS } from "./conv.ts";
import { DENSE_GRADS } from "./dense.ts";
import { ELEMENTWISE_GRADS } from "./elementwise.ts";
import { NORM_GRADS } from "./norm.ts";
import { POOL_GRADS } from "./pool.ts";
import { REDUCE_GRADS } from "./reduce.ts";
import { SHAPE_GRADS } from "./shape.ts";
import { SOFTMAX_GRADS } from "./softmax.ts";
import { SQZ_GRADS } from "./sqz.ts";
import type { TrainOpFactory } from "./types.ts";

export const TRAIN_OPS: Readonly<Record<string, TrainOpFactory>> = {
  ...CONV_GRADS,
  ...DENSE_GRADS,
  ...ELEMENTWISE_GRADS,
  ...NORM_GRADS,
  ...POOL_GRADS,
  ...REDUCE_GRADS,
  ...SHAPE_GRADS,
  ...SOFTMAX_GRADS,
  ...SQZ_GRADS,
};

/**
 * Ops that run in a training graph but carry no gradient: their outputs are integers, indices
 * or shapes, or piecewise constant. A float input of theirs that needs a gradient gets none.
 */
export const NON_DIFFERENTIABLE = new Set([
  "Shape",
  "Size",
  "ConstantOfShape",
  "Range",
  "Equal",
  "Less",
  "LessOrEqual",
  "Greater",
  "GreaterOrEqual",
  "Not",
  "And",
  "Or",
  "ArgMax",
  "ArgMin",
  "NonZero",
  "Floor",
  "Ceil",
  "Round",
  "Sign",
  "QuantizeLinear",
  "DynamicQuantizeLinear",
]);
