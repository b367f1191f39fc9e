// Element-wise operators: unary math and activations, binary arithmetic and comparisons with
// NumPy broadcasting, the variadic Max/Min/Sum/Mean, Where, Clip, PRelu, Pow, Mod, Cast/CastLike.
//
// float32/float64 are computed in doubles and stored (the store rounds); float16 inputs are
// widened to float32, computed, and narrowed back with round-to-nearest-even; integer results
// wrap as in C through the typed-array store; int64/uint64 go through BigInt kernels.
import type { Node } from "../graph/ir.ts";
import { elementCount, ONNX_TYPES, type Tensor, type TensorType } from "../graph/tensor.ts";
import { ModelError, ShapeError } from "../errors.ts";
import type { OpContext, OpImpl } from "./types.ts";
import { allocTensor, broadcastDims, checkDims, isBig, isFloat } from "./tensor_util.ts";
import { attrFloat, attrInt, attrString } from "./attrs.ts";
import {
  addB,
  addN,
  type BigArr,
  type BinKernel,
  copyData,
  divB,
  divI,
  divN,
  equalK,
  erf,
  f16ToF32Array,
  f32ToF16,
  type FArr,
  floatToBig,
  greaterEqK,
  greaterK,
  lessEqK,
  lessK,
  makePlan,
  mapKernel,
  maxB,
  maxN,
  minB,
  minN,
  mulB,
  mulI,
  mulN,
  type NumArr,
  powBig,
  powN,
  preluB,
  preluN,
  roundEven,
  runBinary,
  runWhere,
  type Slots,
  softplus,
  subB,
  subN,
  toF16Array,
} from "./elementwise_kernels.ts";

type Alloc = (type: TensorType, dims: number[]) => Tensor;

const INT_TYPES: ReadonlySet<TensorType> = new Set<TensorType>([
  "int8",
  "uint8",
  "int16",
  "uint16",
  "int32",
  "uint32",
  "int64",
  "uint64",
]);
const FLOAT_TYPES: ReadonlySet<TensorType> = new Set<TensorType>(["float32", "float64", "float16"]);
const NUMERIC: ReadonlySet<TensorType> = new Set([...INT_TYPES, ...FLOAT_TYPES]);
const SIGNED: ReadonlySet<TensorType> = new Set<TensorType>([
  ...FLOAT_TYPES,
  "int8",
  "int16",
  "int32",
  "int64",
]);
const UINT_TYPES: ReadonlySet<TensorType> = new Set<TensorType>([
  "uint8",
  "uint16",
  "uint32",
  "uint64",
]);
const BOOL: ReadonlySet<TensorType> = new Set<TensorType>(["bool"]);

// ---------------------------------------------------------------------------------------------
// Shared checks and plumbing

function who(ctx: OpContext): string {
  return `node '${ctx.node.name}' (${ctx.node.op})`;
}

/** Input i, required, with data matching its dims. */
function req(inputs: readonly (Tensor | undefined)[], i: number, ctx: OpContext): Tensor {
  const t = inputs[i];
  if (!t) throw new ShapeError(`${who(ctx)}: input ${i} is missing`);
  return checked(t, i, ctx);
}

function opt(inputs: readonly (Tensor | undefined)[], i: number, ctx: OpContext) {
  const t = inputs[i];
  return t && checked(t, i, ctx);
}

function checked(t: Tensor, i: number, ctx: OpContext): Tensor {
  if (t.data.length !== elementCount(t.dims)) {
    throw new ShapeError(
      `${who(ctx)}: input ${i} has ${t.data.length} elements for dims [${t.dims}]`,
    );
  }
  return t;
}

function allow(ctx: OpContext, t: Tensor, types: ReadonlySet<TensorType>, i = 0): void {
  if (!types.has(t.type)) {
    throw new ShapeError(`${who(ctx)}: input ${i} has unsupported type ${t.type}`);
  }
}

function sameType(ctx: OpContext, ts: readonly Tensor[]): void {
  for (let i = 1; i < ts.length; i++) {
    if (ts[i].type !== ts[0].type) {
      throw new ShapeError(
        `${who(ctx)}: input ${i} is ${ts[i].type} but input 0 is ${ts[0].type}`,
      );
    }
  }
}

function output(ctx: OpContext): Alloc {
  return (type, dims) => {
    checkDims(dims, type, `${who(ctx)} output`);
    return ctx.alloc(0, type, dims);
  };
}

function bcast(ctx: OpContext, ts: readonly Tensor[]): number[] {
  let dims = ts[0].dims;
  for (let i = 1; i < ts.length; i++) dims = broadcastDims(dims, ts[i].dims, ctx.node.name);
  return dims;
}

function toF32(t: Tensor): Tensor {
  return t.type === "float16"
    ? { type: "float32", dims: t.dims, data: f16ToF32Array(t.data as Uint16Array) }
    : t;
}

/**
 * Runs `body` with its float16 inputs widened to float32 when input 0 is float16, then narrows
 * a float32 result into the real output. Other results (bool) are allocated directly. Unless
 * `mixed` (Pow's exponent), every input must then be float16.
 */
function withF16(
  inputs: readonly (Tensor | undefined)[],
  ctx: OpContext,
  body: (ins: readonly (Tensor | undefined)[], alloc: Alloc) => Tensor,
  mixed = false,
): Tensor[] {
  const alloc = output(ctx);
  if (inputs[0]?.type !== "float16") return [body(inputs, alloc)];
  // Once widened, a float16 input would pass for float32: check the shared dtype first.
  if (!mixed) sameType(ctx, inputs.filter((t): t is Tensor => t !== undefined));
  const wide = inputs.map((t, i) => t && toF32(checked(t, i, ctx)));
  const r = body(
    wide,
    (type, dims) => type === "float32" ? allocTensor(type, dims) : alloc(type, dims),
  );
  if (r.type !== "float32") return [r];
  const o = alloc("float16", r.dims);
  toF16Array(r.data as Float32Array, o.data as Uint16Array);
  return [o];
}

// ---------------------------------------------------------------------------------------------
// Unary

type FloatLoop = (x: FArr, y: FArr, n: number, node: Node) => void;
type IntLoop = (x: NumArr, y: NumArr, n: number) => void;
type BigLoop = (x: BigArr, y: BigArr, n: number) => void;

interface UnaryDef {
  f: FloatLoop;
  /** Integer (non-BigInt) dtypes; absent → float only. */
  i?: IntLoop;
  b?: BigLoop;
}

function unary(def: UnaryDef): OpImpl {
  return (inputs, ctx) =>
    withF16(inputs, ctx, (ins, alloc) => {
      const x = req(ins, 0, ctx);
      const float = x.type === "float32" || x.type === "float64";
      if (!float && !(def.i && INT_TYPES.has(x.type))) allow(ctx, x, FLOAT_TYPES);
      const y = alloc(x.type, x.dims);
      const n = x.data.length;
      if (float) def.f(x.data as FArr, y.data as FArr, n, ctx.node);
      else if (isBig(x.type)) def.b!(x.data as BigArr, y.data as BigArr, n);
      else def.i!(x.data as NumArr, y.data as NumArr, n);
      return y;
    });
}

/** Per-element function loop, for ops too rare to deserve their own. */
function mapF(f: (v: number) => number): FloatLoop {
  return (x, y, n) => {
    for (let i = 0; i < n; i++) y[i] = f(x[i]);
  };
}

const absI: IntLoop = (x, y, n) => {
  for (let i = 0; i < n; i++) y[i] = Math.abs(x[i]);
};
const negI: IntLoop = (x, y, n) => {
  for (let i = 0; i < n; i++) y[i] = -x[i];
};
const signI: IntLoop = (x, y, n) => {
  for (let i = 0; i < n; i++) y[i] = Math.sign(x[i]);
};
const reluI: IntLoop = (x, y, n) => {
  for (let i = 0; i < n; i++) y[i] = x[i] < 0 ? 0 : x[i];
};
const absB: BigLoop = (x, y, n) => {
  for (let i = 0; i < n; i++) y[i] = x[i] < 0n ? -x[i] : x[i];
};
const negB: BigLoop = (x, y, n) => {
  for (let i = 0; i < n; i++) y[i] = -x[i];
};
const signB: BigLoop = (x, y, n) => {
  for (let i = 0; i < n; i++) y[i] = x[i] > 0n ? 1n : x[i] < 0n ? -1n : 0n;
};
const reluB: BigLoop = (x, y, n) => {
  for (let i = 0; i < n; i++) y[i] = x[i] < 0n ? 0n : x[i];
};

function gelu(x: FArr, y: FArr, n: number, node: Node): void {
  const approx = attrString(node, "approximate", "none");
  if (approx === "none") {
    for (let i = 0; i < n; i++) y[i] = 0.5 * x[i] * (1 + erf(x[i] * Math.SQRT1_2));
  } else if (approx === "tanh") {
    const c = Math.sqrt(2 / Math.PI);
    for (let i = 0; i < n; i++) {
      const v = x[i];
      y[i] = 0.5 * v * (1 + Math.tanh(c * (v + 0.044715 * v * v * v)));
    }
  } else {
    throw new ModelError(`node '${node.name}' (Gelu): approximate must be "none" or "tanh"`);
  }
}

const UNARY: Record<string, UnaryDef> = {
  Abs: {
    f: (x, y, n) => {
      for (let i = 0; i < n; i++) y[i] = Math.abs(x[i]);
    },
    i: absI,
    b: absB,
  },
  Neg: {
    f: (x, y, n) => {
      for (let i = 0; i < n; i++) y[i] = -x[i];
    },
    i: negI,
    b: negB,
  },
  Sign: { f: mapF(Math.sign), i: signI, b: signB },
  Relu: {
    f: (x, y, n) => {
      for (let i = 0; i < n; i++) {
        const v = x[i];
        y[i] = v < 0 ? 0 : v;
      }
    },
    i: reluI,
    b: reluB,
  },
  Exp: {
    f: (x, y, n) => {
      for (let i = 0; i < n; i++) y[i] = Math.exp(x[i]);
    },
  },
  Log: {
    f: (x, y, n) => {
      for (let i = 0; i < n; i++) y[i] = Math.log(x[i]);
    },
  },
  Sqrt: {
    f: (x, y, n) => {
      for (let i = 0; i < n; i++) y[i] = Math.sqrt(x[i]);
    },
  },
  Reciprocal: {
    f: (x, y, n) => {
      for (let i = 0; i < n; i++) y[i] = 1 / x[i];
    },
  },
  Sigmoid: {
    f: (x, y, n) => {
      for (let i = 0; i < n; i++) y[i] = 1 / (1 + Math.exp(-x[i]));
    },
  },
  Tanh: {
    f: (x, y, n) => {
      for (let i = 0; i < n; i++) y[i] = Math.tanh(x[i]);
    },
  },
  Erf: {
    f: (x, y, n) => {
      for (let i = 0; i < n; i++) y[i] = erf(x[i]);
    },
  },
  LeakyRelu: {
    f: (x, y, n, node) => {
      const alpha = attrFloat(node, "alpha", 0.01);
      for (let i = 0; i < n; i++) {
        const v = x[i];
        y[i] = v < 0 ? alpha * v : v;
      }
    },
  },
  Elu: {
    f: (x, y, n, node) => {
      const alpha = attrFloat(node, "alpha", 1);
      for (let i = 0; i < n; i++) {
        const v = x[i];
        y[i] = v < 0 ? alpha * Math.expm1(v) : v;
      }
    },
  },
  Selu: {
    f: (x, y, n, node) => {
      const alpha = attrFloat(node, "alpha", 1.67326319217681884765625);
      const gamma = attrFloat(node, "gamma", 1.05070102214813232421875);
      for (let i = 0; i < n; i++) {
        const v = x[i];
        y[i] = v <= 0 ? gamma * alpha * Math.expm1(v) : gamma * v;
      }
    },
  },
  Celu: {
    f: (x, y, n, node) => {
      const alpha = attrFloat(node, "alpha", 1);
      for (let i = 0; i < n; i++) {
        const v = x[i];
        y[i] = v > 0 ? v : alpha * Math.expm1(v / alpha);
      }
    },
  },
  ThresholdedRelu: {
    f: (x, y, n, node) => {
      const alpha = attrFloat(node, "alpha", 1);
      for (let i = 0; i < n; i++) y[i] = x[i] > alpha ? x[i] : 0;
    },
  },
  HardSigmoid: {
    f: (x, y, n, node) => {
      const alpha = attrFloat(node, "alpha", 0.2), beta = attrFloat(node, "beta", 0.5);
      for (let i = 0; i < n; i++) y[i] = Math.min(Math.max(alpha * x[i] + beta, 0), 1);
    },
  },
  HardSwish: {
    f: (x, y, n) => {
      for (let i = 0; i < n; i++) {
        const v = x[i];
        y[i] = v * Math.min(Math.max(v / 6 + 0.5, 0), 1);
      }
    },
  },
  Softplus: { f: mapF(softplus) },
  Softsign: { f: mapF((v) => v / (1 + Math.abs(v))) },
  Mish: { f: mapF((v) => v * Math.tanh(softplus(v))) },
  Gelu: { f: gelu },
  Shrink: {
    f: (x, y, n, node) => {
      const bias = attrFloat(node, "bias", 0), lambd = attrFloat(node, "lambd", 0.5);
      for (let i = 0; i < n; i++) {
        const v = x[i];
        y[i] = v < -lambd ? v + bias : v > lambd ? v - bias : 0;
      }
    },
  },
  Floor: { f: mapF(Math.floor) },
  Ceil: { f: mapF(Math.ceil) },
  Round: { f: mapF(roundEven) },
  Sin: { f: mapF(Math.sin) },
  Cos: { f: mapF(Math.cos) },
  Tan: { f: mapF(Math.tan) },
  Asin: { f: mapF(Math.asin) },
  Acos: { f: mapF(Math.acos) },
  Atan: { f: mapF(Math.atan) },
  Sinh: { f: mapF(Math.sinh) },
  Cosh: { f: mapF(Math.cosh) },
  Asinh: { f: mapF(Math.asinh) },
  Acosh: { f: mapF(Math.acosh) },
  Atanh: { f: mapF(Math.atanh) },
};

const notOp: OpImpl = (inputs, ctx) => {
  const x = req(inputs, 0, ctx);
  allow(ctx, x, BOOL);
  const y = output(ctx)("bool", x.dims);
  const xd = x.data as Uint8Array, yd = y.data as Uint8Array;
  for (let i = 0; i < xd.length; i++) yd[i] = xd[i] ? 0 : 1;
  return [y];
};

const bitwiseNot: OpImpl = (inputs, ctx) => {
  const x = req(inputs, 0, ctx);
  allow(ctx, x, INT_TYPES);
  const y = output(ctx)(x.type, x.dims);
  if (isBig(x.type)) {
    const xd = x.data as BigArr, yd = y.data as BigArr;
    for (let i = 0; i < xd.length; i++) yd[i] = ~xd[i]; // the store wraps uint64
  } else {
    const xd = x.data as NumArr, yd = y.data as NumArr;
    for (let i = 0; i < xd.length; i++) yd[i] = ~xd[i];
  }
  return [y];
};

const isNaNOp: OpImpl = (inputs, ctx) => {
  const x = toF32(req(inputs, 0, ctx));
  allow(ctx, x, FLOAT_TYPES);
  const y = output(ctx)("bool", x.dims);
  const xd = x.data as FArr, yd = y.data as Uint8Array;
  for (let i = 0; i < xd.length; i++) yd[i] = xd[i] !== xd[i] ? 1 : 0;
  return [y];
};

const isInfOp: OpImpl = (inputs, ctx) => {
  const x = toF32(req(inputs, 0, ctx));
  allow(ctx, x, FLOAT_TYPES);
  const neg = attrInt(ctx.node, "detect_negative", 1) !== 0;
  const pos = attrInt(ctx.node, "detect_positive", 1) !== 0;
  const y = output(ctx)("bool", x.dims);
  const xd = x.data as FArr, yd = y.data as Uint8Array;
  for (let i = 0; i < xd.length; i++) {
    yd[i] = (pos && xd[i] === Infinity) || (neg && xd[i] === -Infinity) ? 1 : 0;
  }
  return [y];
};

// ---------------------------------------------------------------------------------------------
// Clip

/** A bound of Clip: a single-element tensor of X's type (opset ≥ 11), if given. */
function bound(ctx: OpContext, t: Tensor | undefined, x: Tensor, i: number): Tensor | undefined {
  if (!t) return undefined;
  if (t.type !== x.type) {
    throw new ShapeError(`${who(ctx)}: input ${i} is ${t.type} but input 0 is ${x.type}`);
  }
  if (t.data.length !== 1) {
    throw new ShapeError(`${who(ctx)}: input ${i} must be a scalar, got dims [${t.dims}]`);
  }
  return t;
}

const clip: OpImpl = (inputs, ctx) =>
  withF16(inputs, ctx, (ins, alloc) => {
    const x = req(ins, 0, ctx);
    allow(ctx, x, NUMERIC);
    const y = alloc(x.type, x.dims);
    const n = x.data.length;
    const node = ctx.node;
    if (isBig(x.type)) {
      const lo = bound(ctx, opt(ins, 1, ctx), x, 1)?.data[0] as bigint | undefined;
      const hi = bound(ctx, opt(ins, 2, ctx), x, 2)?.data[0] as bigint | undefined;
      const xd = x.data as BigArr, yd = y.data as BigArr;
      for (let i = 0; i < n; i++) {
        let v = xd[i];
        if (lo !== undefined && v < lo) v = lo;
        if (hi !== undefined && v > hi) v = hi;
        yd[i] = v;
      }
      return y;
    }
    let lo = -Infinity, hi = Infinity;
    if (ctx.opset < 11) {
      lo = attrFloat(node, "min", -Infinity);
      hi = attrFloat(node, "max", Infinity);
    } else {
      lo = (bound(ctx, opt(ins, 1, ctx), x, 1)?.data[0] as number | undefined) ?? -Infinity;
      hi = (bound(ctx, opt(ins, 2, ctx), x, 2)?.data[0] as number | undefined) ?? Infinity;
    }
    clipLoop(x.data as NumArr, y.data as NumArr, n, lo, hi);
    return y;
  });

/** min(max(x, lo), hi): with lo > hi every element becomes hi, as the spec asks; NaN stays. */
function clipLoop(x: NumArr, y: NumArr, n: number, lo: number, hi: number): void {
  // Math.min/max compile to branch-free code, twice as fast as ternaries on mixed data.
  for (let i = 0; i < n; i++) y[i] = Math.min(Math.max(x[i], lo), hi);
}

// ---------------------------------------------------------------------------------------------
// Binary arithmetic

interface ArithDef {
  /** Float (and, without `i`, integer) number dtypes. */
  f: BinKernel<NumArr, NumArr, NumArr>;
  /** Integer number dtypes, when they differ from floats. */
  i?: BinKernel<NumArr, NumArr, NumArr>;
  b: BinKernel<BigArr, BigArr, BigArr>;
}

/** Runs def over a and b broadcast to `dims` into o (o may be a itself for in-place folds). */
function arithInto(def: ArithDef, type: TensorType, a: Tensor, b: Tensor, o: Tensor): void {
  const p = makePlan([a.dims, b.dims], o.dims);
  if (isBig(type)) runBinary(def.b, a.data as BigArr, b.data as BigArr, o.data as BigArr, p);
  else {
    const k = def.i && !isFloat(type) ? def.i : def.f;
    runBinary(k, a.data as NumArr, b.data as NumArr, o.data as NumArr, p);
  }
}

function arith(def: ArithDef, types: ReadonlySet<TensorType> = NUMERIC): OpImpl {
  return (inputs, ctx) =>
    withF16(inputs, ctx, (ins, alloc) => {
      const a = req(ins, 0, ctx), b = req(ins, 1, ctx);
      allow(ctx, a, types);
      sameType(ctx, [a, b]);
      const o = alloc(a.type, bcast(ctx, [a, b]));
      arithInto(def, a.type, a, b, o);
      return o;
    });
}

const ADD: ArithDef = { f: addN, b: addB };
const SUB: ArithDef = { f: subN, b: subB };
const MUL: ArithDef = { f: mulN, i: mulI, b: mulB };
const DIV: ArithDef = { f: divN, i: divI, b: divB };
const MAX: ArithDef = { f: maxN, b: maxB };
const MIN: ArithDef = { f: minN, b: minB };

// Mod: fmod=1 is C fmod (sign of the dividend, JS %); fmod=0 the sign of the divisor
// (integers only). A zero divisor gives 0 for integers instead of trapping.
const MOD_C: ArithDef = {
  f: mapKernel((x: number, y: number) => x % y),
  i: mapKernel((x: number, y: number) => (y === 0 ? 0 : x % y)),
  b: mapKernel((x: bigint, y: bigint) => (y === 0n ? 0n : x % y)),
};
const MOD_FLOOR: ArithDef = {
  f: mapKernel((x: number, y: number) => {
    if (y === 0) return 0;
    const r = x % y;
    return r !== 0 && (r < 0) !== (y < 0) ? r + y : r;
  }),
  b: mapKernel((x: bigint, y: bigint) => {
    if (y === 0n) return 0n;
    const r = x % y;
    return r !== 0n && (r < 0n) !== (y < 0n) ? r + y : r;
  }),
};

const mod: OpImpl = (inputs, ctx) => {
  const fmod = attrInt(ctx.node, "fmod", 0);
  if (fmod !== 0 && fmod !== 1) throw new ModelError(`${who(ctx)}: fmod must be 0 or 1`);
  const t = inputs[0]?.type;
  if (fmod === 0 && t && isFloat(t)) {
    throw new ModelError(`${who(ctx)}: fmod must be 1 for floating-point inputs`);
  }
  return arith(fmod ? MOD_C : MOD_FLOOR)(inputs, ctx);
};

// Bitwise ops (BitwiseAnd/Or/Xor, BitShift): JS bit operators work on 32 bits, which the store
// then narrows or, for uint32, reinterprets.
function bitwise(f: (x: number, y: number) => number, g: (x: bigint, y: bigint) => bigint) {
  const def: ArithDef = { f: mapKernel(f), b: mapKernel(g) };
  return arith(def, INT_TYPES);
}

const bitShift: OpImpl = (inputs, ctx) => {
  const dir = attrString(ctx.node, "direction", "");
  if (dir !== "LEFT" && dir !== "RIGHT") {
    throw new ModelError(`${who(ctx)}: direction must be "LEFT" or "RIGHT"`);
  }
  const t = inputs[0]?.type;
  const bits = t === "uint8" ? 8 : t === "uint16" ? 16 : t === "uint32" ? 32 : 64;
  // Shifting by the width or more clears every bit (undefined in C; numpy gives 0).
  const def: ArithDef = dir === "LEFT"
    ? {
      f: mapKernel((x: number, y: number) => (y >= bits ? 0 : x * 2 ** y)),
      b: mapKernel((x: bigint, y: bigint) => (y >= 64n ? 0n : x << y)),
    }
    : {
      f: mapKernel((x: number, y: number) => (y >= bits ? 0 : Math.floor(x / 2 ** y))),
      b: mapKernel((x: bigint, y: bigint) => (y >= 64n ? 0n : x >> y)),
    };
  return arith(def, UINT_TYPES)(inputs, ctx);
};

// ---------------------------------------------------------------------------------------------
// Comparisons and logic → bool

type Cmp = BinKernel<ArrayLike<number | bigint>, ArrayLike<number | bigint>, Uint8Array>;

function compare(k: Cmp, types: ReadonlySet<TensorType>): OpImpl {
  return (inputs, ctx) =>
    withF16(inputs, ctx, (ins, alloc) => {
      const a = req(ins, 0, ctx), b = req(ins, 1, ctx);
      allow(ctx, a, types);
      sameType(ctx, [a, b]);
      const o = alloc("bool", bcast(ctx, [a, b]));
      runBinary(k, a.data, b.data, o.data as Uint8Array, makePlan([a.dims, b.dims], o.dims));
      return o;
    });
}

function logic(f: (x: number, y: number) => number): OpImpl {
  const k = mapKernel(f);
  return (inputs, ctx) => {
    const a = req(inputs, 0, ctx), b = req(inputs, 1, ctx);
    allow(ctx, a, BOOL);
    sameType(ctx, [a, b]);
    const o = output(ctx)("bool", bcast(ctx, [a, b]));
    runBinary(
      k,
      a.data as Uint8Array,
      b.data as Uint8Array,
      o.data as Uint8Array,
      makePlan([a.dims, b.dims], o.dims),
    );
    return [o];
  };
}

// ---------------------------------------------------------------------------------------------
// Pow: the exponent may have another dtype; the result has X's.

const powBigK = mapKernel(powBig);

const pow: OpImpl = (inputs, ctx) =>
  withF16(inputs, ctx, (ins, alloc) => {
    const x = req(ins, 0, ctx);
    let y = req(ins, 1, ctx);
    allow(ctx, x, NUMERIC);
    allow(ctx, y, NUMERIC, 1);
    y = toF32(y);
    // The exponent as numbers; int64 exponents beyond 2^53 are meaningless anyway.
    const yd: NumArr = isBig(y.type)
      ? Float64Array.from(y.data as BigArr, Number)
      : (y.data as NumArr);
    const o = alloc(x.type, bcast(ctx, [x, y]));
    const p = makePlan([x.dims, y.dims], o.dims);
    if (isBig(x.type)) runBinary(powBigK, x.data as BigArr, yd, o.data as BigArr, p);
    else runBinary(powN, x.data as NumArr, yd, o.data as NumArr, p);
    return o;
  }, true);

// ---------------------------------------------------------------------------------------------
// PRelu: slope broadcasts to X (unidirectionally).

const prelu: OpImpl = (inputs, ctx) =>
  withF16(inputs, ctx, (ins, alloc) => {
    const x = req(ins, 0, ctx), s = req(ins, 1, ctx);
    allow(ctx, x, SIGNED);
    sameType(ctx, [x, s]);
    const dims = bcast(ctx, [x, s]);
    if (dims.length !== x.dims.length || dims.some((d, i) => d !== x.dims[i])) {
      throw new ShapeError(
        `${who(ctx)}: slope of dims [${s.dims}] does not broadcast to X of dims [${x.dims}]`,
      );
    }
    const o = alloc(x.type, x.dims);
    arithInto({ f: preluN, b: preluB }, x.type, x, s, o);
    return o;
  });

// ---------------------------------------------------------------------------------------------
// Variadic Max/Min/Sum/Mean: a left fold, the first step into the output, the rest in place.

function variadic(def: ArithDef, mean: boolean, types: ReadonlySet<TensorType>): OpImpl {
  return (inputs, ctx) =>
    withF16(inputs, ctx, (ins, alloc) => {
      const xs = ins.map((_, i) => req(ins, i, ctx));
      if (xs.length === 0) throw new ShapeError(`${who(ctx)}: needs at least one input`);
      allow(ctx, xs[0], types);
      sameType(ctx, xs);
      const o = alloc(xs[0].type, bcast(ctx, xs));
      if (xs.length === 1) copyData(xs[0].data, o.data);
      else {
        arithInto(def, o.type, xs[0], xs[1], o);
        for (let i = 2; i < xs.length; i++) arithInto(def, o.type, o, xs[i], o);
      }
      if (mean) {
        const n = xs.length;
        if (isBig(o.type)) {
          const od = o.data as BigArr, bn = BigInt(n);
          for (let i = 0; i < od.length; i++) od[i] = od[i] / bn;
        } else {
          const od = o.data as NumArr;
          for (let i = 0; i < od.length; i++) od[i] = od[i] / n;
        }
      }
      return o;
    });
}

// ---------------------------------------------------------------------------------------------
// Where

const where: OpImpl = (inputs, ctx) => {
  const c = req(inputs, 0, ctx), x = req(inputs, 1, ctx), y = req(inputs, 2, ctx);
  allow(ctx, c, BOOL);
  if (x.type !== y.type) {
    throw new ShapeError(`${who(ctx)}: X is ${x.type} but Y is ${y.type}`);
  }
  const o = output(ctx)(x.type, bcast(ctx, [c, x, y]));
  const p = makePlan([c.dims, x.dims, y.dims], o.dims);
  runWhere(p, c.data as Uint8Array, x.data as Slots, y.data as Slots, o.data as Slots);
  return [o];
};

// ---------------------------------------------------------------------------------------------
// Cast / CastLike

/**
 * Converts x's elements into `o` (of type `to`). Float → integer truncates toward zero and
 * integers narrow by wrapping, as C does (out-of-range floats are undefined in C; here they
 * wrap). 4-bit targets round half to even first, then keep the low 4 bits (ONNX's int4 rules);
 * bool is x ≠ 0; float16 rounds to nearest even.
 */
function castInto(x: Tensor, to: TensorType, o: Tensor): void {
  let src = x.data, from = x.type;
  const dst = o.data, n = src.length;
  if (from === to) return copyData(src, dst);
  if (from === "float16") {
    src = f16ToF32Array(src as Uint16Array); // exact
    from = "float32";
  }
  const fromBig = isBig(from), fromFloat = isFloat(from);
  if (to === "float16") {
    const d = dst as Uint16Array;
    if (fromBig) { for (let i = 0; i < n; i++) d[i] = f32ToF16(Number((src as BigArr)[i])); }
    else toF16Array(src as NumArr, d);
  } else if (to === "bool") {
    const d = dst as Uint8Array;
    // Number() of a nonzero BigInt is never 0; NaN is nonzero (true), as in C.
    for (let i = 0; i < n; i++) d[i] = Number((src as Slots)[i]) !== 0 ? 1 : 0;
  } else if (to === "int4" || to === "uint4") {
    const d = dst as Int8Array | Uint8Array, signed = to === "int4";
    for (let i = 0; i < n; i++) {
      let w: number;
      if (fromBig) w = Number(BigInt.asUintN(4, (src as BigArr)[i]));
      else {
        let v = (src as NumArr)[i];
        if (fromFloat) v = Number.isFinite(v) ? roundEven(v) : 0;
        w = v - 16 * Math.floor(v / 16);
      }
      d[i] = signed && w >= 8 ? w - 16 : w;
    }
  } else if (isBig(to)) {
    const d = dst as BigArr;
    if (fromBig) copyData(src, dst);
    else if (fromFloat) { for (let i = 0; i < n; i++) d[i] = floatToBig((src as NumArr)[i]); }
    else for (let i = 0; i < n; i++) d[i] = BigInt((src as NumArr)[i]);
  } else if (fromBig) {
    const d = dst as NumArr, s = src as BigArr;
    if (isFloat(to)) { for (let i = 0; i < n; i++) d[i] = Number(s[i]); }
    // Keep the low 32 bits exactly; the store narrows further.
    else for (let i = 0; i < n; i++) d[i] = Number(BigInt.asUintN(32, s[i]));
  } else {
    // number → number: the typed-array copy converts with C-like truncation and wrapping.
    copyData(src, dst);
  }
}

function castOp(inputs: readonly (Tensor | undefined)[], ctx: OpContext, to: TensorType) {
  const x = req(inputs, 0, ctx);
  const o = output(ctx)(to, x.dims);
  castInto(x, to, o);
  return [o];
}

const cast: OpImpl = (inputs, ctx) => {
  const code = attrInt(ctx.node, "to", -1);
  const to = ONNX_TYPES[code];
  if (!to) {
    throw new ModelError(`${who(ctx)}: cannot cast to data type ${code} (unsupported)`);
  }
  return castOp(inputs, ctx, to);
};

const castLike: OpImpl = (inputs, ctx) => castOp(inputs, ctx, req(inputs, 1, ctx).type);

export const ELEMENTWISE_OPS: Record<string, OpImpl> = {
  ...Object.fromEntries(Object.entries(UNARY).map(([k, d]) => [k, unary(d)])),
  Not: notOp,
  BitwiseNot: bitwiseNot,
  IsNaN: isNaNOp,
  IsInf: isInfOp,
  Clip: clip,
  Add: arith(ADD),
  Sub: arith(SUB),
  Mul: arith(MUL),
  Div: arith(DIV),
  Mod: mod,
  Pow: pow,
  PRelu: prelu,
  BitShift: bitShift,
  BitwiseAnd: bitwise((x, y) => x & y, (x, y) => x & y),
  BitwiseOr: bitwise((x, y) => x | y, (x, y) => x | y),
  BitwiseXor: bitwise((x, y) => x ^ y, (x, y) => x ^ y),
  Equal: compare(equalK, new Set([...NUMERIC, "bool"])),
  Less: compare(lessK, NUMERIC),
  LessOrEqual: compare(lessEqK, NUMERIC),
  Greater: compare(greaterK, NUMERIC),
  GreaterOrEqual: compare(greaterEqK, NUMERIC),
  And: logic((x, y) => x & y),
  Or: logic((x, y) => x | y),
  Xor: logic((x, y) => x ^ y),
  Max: variadic(MAX, false, NUMERIC),
  Min: variadic(MIN, false, NUMERIC),
  Sum: variadic(ADD, false, NUMERIC),
  Mean: variadic(ADD, true, NUMERIC),
  Where: where,
  Cast: cast,
  CastLike: castLike,
};
