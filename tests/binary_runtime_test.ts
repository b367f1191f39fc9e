// ai.sqz.BinaryConv / BinaryGemm: the Wasm kernel ops against the TypeScript reference ops, in
// every kernel build, bit for bit (the sign bits and the f32 output stage), on random shapes with
// odd channel counts, strides, pads, dilations and groups; the NHWC op the layout pass would
// pick; the reference against the kernels' own scalar reference (one-padding); fallbacks and
// typed errors.
import assert from "node:assert/strict";
import { availableBuilds, ModelError, Session, ShapeError } from "../src/mod.ts";
import { Node, Value } from "../src/graph/ir.ts";
import type { Tensor } from "../src/graph/tensor.ts";
import { DataType, makeModel, node, tensorFromArray, valueInfo } from "../src/onnx/proto.ts";
import { jsContext } from "../src/ops/types.ts";
import { packSignBits, SQZ_LOWBIT_OPS } from "../src/ops/sqz_lowbit.ts";
import { KernelModule } from "../src/kernels/module.ts";
import { KERNEL_OPS, nhwcEligible } from "../src/runtime/kernel_ops/index.ts";
import type { KernelOp } from "../src/runtime/kernel_op.ts";
import { NHWC_DOMAIN } from "../src/runtime/layout.ts";
import { refConv2dBin } from "../src/kernels/reference_conv.ts";
import { windowGeometry } from "../src/kernels/conv_geometry.ts";
import { randInt, rng } from "./util.ts";

type Attrs = Record<string, number | number[] | string>;

interface ConvCase {
  n: number;
  c: number;
  h: number;
  w: number;
  cout: number;
  kh: number;
  kw: number;
  group: number;
  attrs: Attrs;
}

/** Random activations with exact zeros, −0 and NaN mixed in (all binarize to +1). */
function activations(r: () => number, count: number): Float32Array {
  return Float32Array.from({ length: count }, () => {
    const u = r();
    return u < 0.05 ? 0 : u < 0.08 ? -0 : u < 0.09 ? NaN : (r() - 0.5) * 4;
  });
}

/** A binary layer's constants from random float weights (rows × K, in the file's K order). */
function weights(
  r: () => number,
  rows: number,
  k: number,
  zeroAlpha = false,
): { bits: Uint8Array; alpha: Float32Array; bias?: Float32Array } {
  const w = Float32Array.from({ length: rows * k }, () => r() - 0.5);
  const bits = packSignBits(rows, k, (o, i) => w[o * k + i]);
  const alpha = Float32Array.from({ length: rows }, () => 0.01 + r() * 2);
  if (zeroAlpha) alpha[0] = 0;
  const bias = Float32Array.from({ length: rows }, () => (r() - 0.5) * 3);
  return { bits, alpha, bias };
}

function randomConv(r: () => number): ConvCase {
  const group = r() < 0.2 ? randInt(r, 2, 3) : 1;
  const cg = [1, 3, 7, 16, 63, 64, 65, 129][randInt(r, 0, 7)];
  const og = [1, 2, 5, 8, 13][randInt(r, 0, 4)];
  const kh = randInt(r, 1, 4), kw = randInt(r, 1, 4);
  const dil = r() < 0.2 ? 2 : 1;
  const attrs: Attrs = {
    strides: [randInt(r, 1, 3), randInt(r, 1, 3)],
    dilations: [dil, dil],
  };
  if (r() < 0.15) attrs.auto_pad = ["SAME_UPPER", "SAME_LOWER", "VALID"][randInt(r, 0, 2)];
  else attrs.pads = [randInt(r, 0, 2), randInt(r, 0, 2), randInt(r, 0, 2), randInt(r, 0, 2)];
  return {
    n: randInt(r, 1, 2),
    c: cg * group,
    h: randInt(r, (kh - 1) * dil + 1, 9),
    w: randInt(r, (kw - 1) * dil + 1, 9),
    cout: og * group,
    kh,
    kw,
    group,
    attrs,
  };
}

function convAttrs(t: ConvCase): Attrs {
  return {
    ...t.attrs,
    weight_shape: [t.cout, t.c / t.group, t.kh, t.kw],
    kernel_shape: [t.kh, t.kw],
    group: t.group,
  };
}

/** The TS reference op on JS tensors. */
function reference(op: string, inputs: (Tensor | undefined)[], attrs: Attrs): Tensor {
  const n = new Node("ref", op, "ai.sqz", [], [], attrs);
  return SQZ_LOWBIT_OPS[`ai.sqz.${op}`](inputs, jsContext(n, 1))[0];
}

const f32 = (dims: number[], data: Float32Array): Tensor => ({ type: "float32", dims, data });
const u8 = (dims: number[], data: Uint8Array): Tensor => ({ type: "uint8", dims, data });

/** A one-node model: x → op(x, w_bits, alpha, bias?) → y. */
function model(
  op: string,
  xDims: (number | string)[],
  yDims: (number | string)[],
  c: { bits: Uint8Array; alpha: Float32Array; bias?: Float32Array },
  attrs: Attrs,
): Uint8Array {
  const rows = c.alpha.length;
  const ins = ["x", "w_bits", "alpha", ...(c.bias ? ["bias"] : [])];
  return makeModel({
    nodes: [node(op, ins, ["y"], attrs, "layer", "ai.sqz")],
    inputs: [valueInfo("x", DataType.FLOAT, xDims)],
    outputs: [valueInfo("y", DataType.FLOAT, yDims)],
    initializers: [
      tensorFromArray("w_bits", DataType.UINT8, [rows, c.bits.length / rows], c.bits),
      tensorFromArray("alpha", DataType.FLOAT, [rows], c.alpha),
      ...(c.bias ? [tensorFromArray("bias", DataType.FLOAT, [rows], c.bias)] : []),
    ],
    extraOpsets: [{ domain: "ai.sqz", version: 1 }],
  });
}

/** Runs a one-node model in one build; returns y and which implementation ran the node. */
async function runBuild(bytes: Uint8Array, x: Tensor, build: string) {
  const s = await Session.create(bytes, { build: build as "scalar", profile: true });
  try {
    const { y } = await s.run({ x });
    return {
      y,
      // The binary layer's entry (the layout pass may add transposes around it).
      impl: s.profile.find((p) => p.op.startsWith("Binary"))?.impl,
      ops: s.graph.nodes.map((n) => n.qualifiedOp),
    };
  } finally {
    await s.release();
  }
}

function assertSame(got: Tensor, want: Tensor, what: string): void {
  assert.deepEqual(got.dims, want.dims, `${what}: dims`);
  for (let i = 0; i < want.data.length; i++) {
    if (!Object.is(got.data[i], want.data[i]) && got.data[i] !== want.data[i]) {
      assert.fail(`${what}: element ${i}: kernel ${got.data[i]}, reference ${want.data[i]}`);
    }
  }
}

Deno.test("BinaryConv: the kernel op equals the reference op exactly, every build", async () => {
  const builds = availableBuilds();
  for (const build of builds) {
    const r = rng(100);
    for (let t = 0; t < 40; t++) {
      const cs = randomConv(r);
      const k = (cs.c / cs.group) * cs.kh * cs.kw;
      const c = weights(r, cs.cout, k);
      if (t % 3 === 0) c.bias = undefined;
      const attrs = convAttrs(cs);
      const x = f32([cs.n, cs.c, cs.h, cs.w], activations(r, cs.n * cs.c * cs.h * cs.w));
      const want = reference("BinaryConv", [
        x,
        u8([cs.cout, Math.ceil(k / 8)], c.bits),
        f32([cs.cout], c.alpha),
        c.bias && f32([cs.cout], c.bias),
      ], attrs);
      const got = await runBuild(model("BinaryConv", x.dims, want.dims, c, attrs), x, build);
      assert.equal(got.impl, "wasm", `${build} case ${t}: the kernel op ran`);
      assertSame(got.y, want, `${build} case ${t} ${JSON.stringify(cs)}`);
    }
  }
});

Deno.test("BinaryGemm: the kernel op equals the reference op exactly, every build", async () => {
  for (const build of availableBuilds()) {
    const r = rng(200);
    for (let t = 0; t < 30; t++) {
      const k = [1, 5, 8, 63, 64, 65, 127, 128, 129, 300][randInt(r, 0, 9)];
      const n = [1, 3, 4, 5, 17, 64][randInt(r, 0, 5)];
      const lead = [[randInt(r, 1, 9)], [2, randInt(r, 1, 5)], []][t % 3];
      const c = weights(r, n, k);
      if (t % 4 === 0) c.bias = undefined;
      const attrs = { weight_shape: [n, k] };
      const xd = [...lead, k];
      const x = f32(xd, activations(r, xd.reduce((a, b) => a * b, 1)));
      const want = reference("BinaryGemm", [
        x,
        u8([n, Math.ceil(k / 8)], c.bits),
        f32([n], c.alpha),
        c.bias && f32([n], c.bias),
      ], attrs);
      const got = await runBuild(model("BinaryGemm", x.dims, want.dims, c, attrs), x, build);
      assert.equal(got.impl, "wasm");
      assertSame(got.y, want, `${build} gemm case ${t} m=${lead} n=${n} k=${k}`);
    }
  }
});

Deno.test("the reference BinaryConv pads with +1: equal to the kernels' scalar reference", () => {
  const r = rng(300);
  for (let t = 0; t < 20; t++) {
    const cs = randomConv(r);
    const cg = cs.c / cs.group, k = cg * cs.kh * cs.kw;
    // OIHW float weights; the file rows are (ky, kx, ci).
    const w = Float32Array.from({ length: cs.cout * k }, () => r() - 0.5);
    const bits = packSignBits(cs.cout, k, (o, i) => {
      const tap = Math.floor(i / cg), ci = i % cg;
      return w[((o * cg + ci) * cs.kh + Math.floor(tap / cs.kw)) * cs.kw + (tap % cs.kw)];
    });
    const x = activations(r, cs.n * cs.c * cs.h * cs.w);
    const y = reference("BinaryConv", [
      f32([cs.n, cs.c, cs.h, cs.w], x),
      u8([cs.cout, Math.ceil(k / 8)], bits),
      f32([cs.cout], new Float32Array(cs.cout).fill(1)),
    ], convAttrs(cs));
    const nhwc = new Float32Array(x.length);
    for (let b = 0; b < cs.n; b++) {
      for (let ch = 0; ch < cs.c; ch++) {
        for (let p = 0; p < cs.h * cs.w; p++) {
          nhwc[(b * cs.h * cs.w + p) * cs.c + ch] = x[(b * cs.c + ch) * cs.h * cs.w + p];
        }
      }
    }
    const a = cs.attrs;
    const g = windowGeometry(cs.h, cs.w, {
      kernel: [cs.kh, cs.kw],
      strides: a.strides as [number, number],
      dilations: a.dilations as [number, number],
      pads: a.pads as [number, number, number, number] | undefined,
      autoPad: a.auto_pad as "VALID" | undefined,
    });
    const ref = refConv2dBin({ n: cs.n, c: cs.c, cout: cs.cout, groups: cs.group, g }, nhwc, w);
    const [, , oh, ow] = y.dims;
    for (let b = 0; b < cs.n; b++) {
      for (let o = 0; o < cs.cout; o++) {
        for (let p = 0; p < oh * ow; p++) {
          assert.equal(
            y.data[(b * cs.cout + o) * oh * ow + p],
            ref[(b * oh * ow + p) * cs.cout + o],
          );
        }
      }
    }
  }
});

/** A BinaryConv node built directly (as the layout pass leaves it), constants attached. */
function convNode(domain: string, cs: ConvCase, c: ReturnType<typeof weights>, extra: Attrs = {}) {
  const k = (cs.c / cs.group) * cs.kh * cs.kw;
  const v = (name: string, t?: Tensor) => {
    const val = new Value(name);
    val.type = t?.type ?? "float32";
    if (t) val.constant = t;
    return val;
  };
  return new Node(
    "bconv",
    "BinaryConv",
    domain,
    [
      v("x"),
      v("w_bits", u8([cs.cout, Math.ceil(k / 8)], c.bits)),
      v("alpha", f32([cs.cout], c.alpha)),
      v("bias", f32([cs.cout], c.bias!)),
    ],
    [v("y")],
    { ...convAttrs(cs), ...extra },
  );
}

/** Runs a kernel op on one input with a minimal run context. */
function runKernel(op: KernelOp, mod: KernelModule, x: Tensor): Tensor {
  const blocks: number[] = [];
  let out: { ptr: number; dims: number[] } | undefined;
  try {
    op.run({
      mod,
      inputType: () => "float32",
      inputDims: () => x.dims,
      inputPtr: () => {
        blocks.push(mod.upload(x.data));
        return blocks[blocks.length - 1];
      },
      input: () => x,
      outputPtr: (_i, _type, dims) => {
        out = { ptr: mod.heap.alloc(dims.reduce((a, b) => a * b, 1) * 4), dims };
        blocks.push(out.ptr);
        return out.ptr;
      },
    });
    const count = out!.dims.reduce((a, b) => a * b, 1);
    return f32(out!.dims, mod.f32(out!.ptr, count).slice());
  } finally {
    for (const b of blocks) mod.heap.free(b);
  }
}

Deno.test("sqz.nhwc.BinaryConv (the layout pass's op): NHWC in and out, equal to the reference", async () => {
  for (const build of availableBuilds()) {
    const mod = await KernelModule.load(build);
    const r = rng(400);
    for (let t = 0; t < 25; t++) {
      const cs = randomConv(r);
      const c = weights(r, cs.cout, (cs.c / cs.group) * cs.kh * cs.kw);
      // The layout pass asks nhwcEligible about the ai.sqz node, then moves it.
      assert.ok(nhwcEligible(convNode("ai.sqz", cs, c)));
      const clamp: Attrs = t % 4 === 1 ? { activation_min: -1.5, activation_max: 2 } : {};
      const n = convNode(NHWC_DOMAIN, cs, c, clamp);
      const op = KERNEL_OPS[n.qualifiedOp](n, { mod, opset: 17 })!;
      const x = activations(r, cs.n * cs.c * cs.h * cs.w);
      const ref = reference("BinaryConv", [
        f32([cs.n, cs.c, cs.h, cs.w], x),
        n.inputs[1]!.constant,
        n.inputs[2]!.constant,
        n.inputs[3]!.constant,
      ], convAttrs(cs));
      const hw = cs.h * cs.w;
      const nhwc = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) {
        const b = Math.floor(i / (cs.c * hw)), ch = Math.floor(i / hw) % cs.c, p = i % hw;
        nhwc[(b * hw + p) * cs.c + ch] = x[i];
      }
      const y = runKernel(op, mod, f32([cs.n, cs.h, cs.w, cs.c], nhwc));
      op.dispose();
      const [, cout, oh, ow] = ref.dims;
      assert.deepEqual(y.dims, [cs.n, oh, ow, cout]);
      for (let i = 0; i < ref.data.length; i++) {
        const b = Math.floor(i / (cout * oh * ow)), o = Math.floor(i / (oh * ow)) % cout;
        const p = i % (oh * ow);
        let want = ref.data[i] as number;
        if ("activation_min" in clamp) want = Math.min(Math.max(want, -1.5), 2);
        assert.equal(y.data[(b * oh * ow + p) * cout + o], want, `${build} case ${t}`);
      }
    }
    assert.equal(mod.heap.bytesInUse, 0, "every block freed");
  }
});

Deno.test("a zero α falls back to the reference op; malformed layers are typed errors", async () => {
  const r = rng(500);
  const c = weights(r, 4, 10, true);
  const attrs = { weight_shape: [4, 10] };
  const x = f32([3, 10], activations(r, 30));
  const want = reference(
    "BinaryGemm",
    [x, u8([4, 2], c.bits), f32([4], c.alpha), f32([4], c.bias!)],
    attrs,
  );
  const got = await runBuild(model("BinaryGemm", [3, 10], [3, 4], c, attrs), x, "scalar");
  assert.equal(got.impl, "ts");
  assertSame(got.y, want, "fallback");
  const cs: ConvCase = { n: 1, c: 3, h: 5, w: 5, cout: 4, kh: 3, kw: 3, group: 1, attrs: {} };
  assert.ok(!nhwcEligible(convNode("ai.sqz", cs, weights(r, 4, 27, true))));

  // Wrong channel count at run time.
  const cw = weights(r, 4, 27);
  const conv = model("BinaryConv", ["n", "c", "h", "w"], ["n", 4, "oh", "ow"], cw, convAttrs(cs));
  const s = await Session.create(conv);
  await assert.rejects(
    () => s.run({ x: f32([1, 2, 5, 5], new Float32Array(50)) }),
    (e) => e instanceof ShapeError && /channels/.test(e.message),
  );
  await s.release();
  const bad = [
    model(
      "BinaryConv",
      [1, 3, 5, 5],
      [1, 4, 3, 3],
      { ...cw, bits: cw.bits.slice(1) },
      convAttrs(cs),
    ),
    model("BinaryConv", [1, 3, 5, 5], [1, 4, 3, 3], cw, { ...convAttrs(cs), kernel_shape: [2, 2] }),
    model("BinaryGemm", [1, 27], [1, 4], cw, {}),
  ];
  for (const bytes of bad) await assert.rejects(() => Session.create(bytes), ModelError);
  // Bits past K set in a row (K = 27: 5 bits of padding in the last byte).
  const padded = cw.bits.slice();
  padded[3] |= 0x80;
  const pb = model(
    "BinaryConv",
    [1, 3, 5, 5],
    [1, 4, 3, 3],
    { ...cw, bits: padded },
    convAttrs(cs),
  );
  await assert.rejects(
    () => Session.create(pb),
    (e) => e instanceof ModelError && /past K/.test(e.message),
  );
});
