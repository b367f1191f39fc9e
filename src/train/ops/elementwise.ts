// Backward passes of element-wise ops. Forward runs the engine's own inference op
// (src/ops/elementwise.ts), so training computes exactly what inference does; broadcasting
// gradients are summed back over the broadcast axes with the same iteration plan.
import type { Tensor } from "../../graph/tensor.ts";
import { TS_OPS } from "../../ops/registry.ts";
import { jsContext } from "../../ops/types.ts";
import { eachRun, makePlan } from "../../ops/elementwise_kernels.ts";
import { attrFloat } from "../../ops/attrs.ts";
import { f32, size, type TrainContext, type TrainOp, type TrainOpFactory } from "./types.ts";

function infer(ctx: TrainContext, ins: readonly (Tensor | undefined)[]): Tensor[] {
  return TS_OPS[ctx.node.qualifiedOp](ins, jsContext(ctx.node, ctx.opset));
}

/** Sums g (shape out) down to shape `dims` (broadcast to out). */
export function reduceTo(g: Float32Array, out: readonly number[], dims: readonly number[]) {
  if (size(dims) === g.length) return g;
  const r = new Float32Array(size(dims));
  const p = makePlan([dims], out);
  const n = p.n, st = p.steps[0];
  eachRun(p, (oi, offs) => {
    const o = offs[0];
    if (st === 0) {
      let s = 0;
      for (let i = 0; i < n; i++) s += g[oi + i];
      r[o] += s;
    } else for (let i = 0; i < n; i++) r[o + i * st] += g[oi + i];
  });
  return r;
}

/** Add, Sub, Mul, Div with numpy broadcasting. */
function binary(kind: "Add" | "Sub" | "Mul" | "Div"): TrainOpFactory {
  return (ctx) => {
    let a: Tensor, b: Tensor, y: Tensor;
    return {
      forward(ins) {
        a = ins[0]!;
        b = ins[1]!;
        [y] = infer(ctx, ins);
        return [y];
      },
      backward([g]) {
        if (!g) return [];
        const out = y.dims, [na, nb] = ctx.needGrad;
        if (kind === "Add" || kind === "Sub") {
          const da = na ? reduceTo(g, out, a.dims) : undefined;
          let db = nb ? reduceTo(g, out, b.dims) : undefined;
          if (db && kind === "Sub") db = db === g ? g.map((v) => -v) : db.map((v) => -v);
          return [da, db];
        }
        // Mul / Div: per-element partials in the output shape, then reduced.
        const av = f32(a, ctx), bv = f32(b, ctx);
        const ga = na ? new Float32Array(g.length) : undefined;
        const gb = nb ? new Float32Array(g.length) : undefined;
        const p = makePlan([a.dims, b.dims], out);
        const n = p.n, [sa, sb] = p.steps;
        eachRun(p, (oi, offs) => {
          const oa = offs[0], ob = offs[1];
          for (let i = 0; i < n; i++) {
            const x = av[oa + i * sa], w = bv[ob + i * sb], gv = g[oi + i];
            if (kind === "Mul") {
              if (ga) ga[oi + i] = gv * w;
              if (gb) gb[oi + i] = gv * x;
            } else {
              if (ga) ga[oi + i] = gv / w;
              if (gb) gb[oi + i] = (-gv * x) / (w * w);
            }
          }
        });
        return [ga && reduceTo(ga, out, a.dims), gb && reduceTo(gb, out, b.dims)];
      },
    };
  };
}

/**
 * Pow with numpy broadcasting, as PyTorch differentiates it: dX = dY·b·x^(b−1) (0 where b = 0),
 * dB = dY·y·ln x (0 where x = 0 and b ≥ 0; NaN for x < 0, where x^b has no real derivative in
 * b). A constant exponent (LayerNorm's Pow(x, 2)) needs only dX; for b = 2 that is 2·x·dY.
 */
const pow: TrainOpFactory = (ctx) => {
  let a: Tensor, b: Tensor, y: Tensor;
  return {
    forward(ins) {
      a = ins[0]!;
      b = ins[1]!;
      [y] = infer(ctx, ins);
      return [y];
    },
    backward([g]) {
      if (!g) return [];
      const out = y.dims, [na, nb] = ctx.needGrad;
      const av = f32(a, ctx, "X"), yv = f32(y, ctx, "Y");
      // The exponent may be of another type (int64, float64…): read it as numbers.
      const bv = b.data instanceof BigInt64Array || b.data instanceof BigUint64Array
        ? Float64Array.from(b.data, Number)
        : b.data as ArrayLike<number>;
      const ga = na ? new Float32Array(g.length) : undefined;
      const gb = nb ? new Float32Array(g.length) : undefined;
      const p = makePlan([a.dims, b.dims], out);
      const n = p.n, [sa, sb] = p.steps;
      eachRun(p, (oi, offs) => {
        const oa = offs[0], ob = offs[1];
        for (let i = 0; i < n; i++) {
          const x = av[oa + i * sa], e = bv[ob + i * sb], gv = g[oi + i];
          if (ga) ga[oi + i] = e === 0 ? 0 : e === 2 ? 2 * x * gv : gv * e * Math.pow(x, e - 1);
          if (gb) gb[oi + i] = x === 0 && e >= 0 ? 0 : gv * yv[oi + i] * Math.log(x);
        }
      });
      return [ga && reduceTo(ga, out, a.dims), gb && reduceTo(gb, out, b.dims)];
    },
  };
};

/** Relu with plain loops (it follows every layer, so it is on the hot path). */
const relu: TrainOpFactory = (ctx) => {
  let y: Float32Array;
  return {
    forward(ins) {
      const x = f32(ins[0], ctx);
      y = ctx.buffer(0, x.length);
      // Branch-free: a data-dependent branch mispredicts on half of the activations. (+0 after
      // the product turns −0 into 0, as inference's Relu gives.)
      for (let i = 0; i < x.length; i++) y[i] = x[i] * +(x[i] > 0) + 0;
      return [{ type: "float32", dims: [...ins[0]!.dims], data: y }];
    },
    backward([g]) {
      if (!g || !ctx.needGrad[0]) return [];
      const d = ctx.buffer(1, g.length);
      for (let i = 0; i < g.length; i++) d[i] = g[i] * +(y[i] > 0);
      return [d];
    },
  };
};

/** A unary op whose derivative is a function of its input x and output y. */
function unary(deriv: (x: number, y: number, ctx: TrainContext) => number): TrainOpFactory {
  return (ctx) => {
    let x: Float32Array, y: Float32Array;
    return {
      forward(ins) {
        x = f32(ins[0], ctx);
        const out = infer(ctx, ins);
        y = out[0].data as Float32Array;
        return out;
      },
      backward([g]) {
        if (!g || !ctx.needGrad[0]) return [];
        const d = new Float32Array(g.length);
        for (let i = 0; i < g.length; i++) d[i] = g[i] * deriv(x[i], y[i], ctx);
        return [d];
      },
    };
  };
}

/** Clip: the gradient passes where min ≤ x ≤ max (PyTorch's clamp / hardtanh). */
const clip: TrainOpFactory = (ctx) => {
  let x: Float32Array, lo = -Infinity, hi = Infinity;
  return {
    forward(ins) {
      x = f32(ins[0], ctx);
      if (ctx.opset < 11) {
        lo = attrFloat(ctx.node, "min", -3.4028234663852886e38);
        hi = attrFloat(ctx.node, "max", 3.4028234663852886e38);
      } else {
        lo = ins[1] ? Number(ins[1].data[0]) : -Infinity;
        hi = ins[2] ? Number(ins[2].data[0]) : Infinity;
      }
      return infer(ctx, ins);
    },
    backward([g]) {
      if (!g || !ctx.needGrad[0]) return [];
      const d = new Float32Array(g.length);
      for (let i = 0; i < g.length; i++) d[i] = x[i] >= lo && x[i] <= hi ? g[i] : 0;
      return [d];
    },
  };
};

export const ELEMENTWISE_GRADS: Record<string, TrainOpFactory> = {
  Add: binary("Add"),
  Sub: binary("Sub"),
  Mul: binary("Mul"),
  Div: binary("Div"),
  Pow: pow,
  Relu: relu,
  LeakyRelu: unary((x, _y, ctx) => (x > 0 ? 1 : attrFloat(ctx.node, "alpha", 0.01))),
  Sigmoid: unary((_x, y) => y * (1 - y)),
  Tanh: unary((_x, y) => 1 - y * y),
  HardSigmoid: unary((x, _y, ctx) => {
    const a = attrFloat(ctx.node, "alpha", 0.2), b = attrFloat(ctx.node, "beta", 0.5);
    const v = a * x + b;
    return v > 0 && v < 1 ? a : 0;
  }),
  Neg: unary(() => -1),
  Exp: unary((_x, y) => y),
  Log: unary((x) => 1 / x),
  Sqrt: unary((_x, y) => 0.5 / y),
  Abs: unary((x) => (x > 0 ? 1 : x < 0 ? -1 : 0)),
  Softplus: unary((x) => 1 / (1 + Math.exp(-x))),
  Erf: unary((x) => (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x)),
  Clip: clip,
};

/** Ops whose backward is the identity on input 0 (they only reshape or pass data through). */
export function passThrough(ctx: TrainContext): TrainOp {
  return {
    forward: (ins) => infer(ctx, ins),
    backward: ([g]) => [ctx.needGrad[0] ? g : undefined],
  };
}

/** Forward only, for ops no gradient flows through (shape arithmetic, comparisons…). */
export function noGrad(ctx: TrainContext): TrainOp {
  return { forward: (ins) => infer(ctx, ins), backward: () => [] };
}

export function hasInferenceOp(qualifiedOp: string): boolean {
  return qualifiedOp in TS_OPS;
}
