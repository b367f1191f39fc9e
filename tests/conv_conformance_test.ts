// ONNX node conformance cases for 2-D convolution run through the sqz kernels: Conv (f32),
// ConvInteger and QLinearConv (int8). NCHW data is transposed to the kernels' NHWC.
import assert from "node:assert/strict";
import { type ConvAttrs, type Dims4, PackedConvF32, PackedConvI8 } from "../src/kernels/conv.ts";
import { KernelModule } from "../src/kernels/module.ts";
import type { AutoPad } from "../src/kernels/conv_geometry.ts";
import { type AttributeProto, type NodeProto, tensorToArray } from "../src/onnx/proto.ts";
import { roundHalfEven } from "../src/kernels/reference.ts";
import {
  allClose,
  conformanceDir,
  listCases,
  loadCase,
  nchwToNhwc,
  nhwcToNchw,
} from "./conformance.ts";

/** Conv-family cases this suite does not run, with the reason. */
export const SKIPPED: { name: string; reason: string }[] = [
  {
    name: "test_causal_conv_with_state_*",
    reason: "an opset-27 function of 1-D causal convolution with state, not a 2-D Conv node",
  },
];

const CASES = listCases((n) => /^test_(basic_conv|conv_with|convinteger|qlinearconv)/.test(n));

function attr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

function convAttrs(node: NodeProto): { attrs: ConvAttrs; groups: number } {
  const ints = (n: string) => attr(node, n)?.ints;
  const s = attr(node, "auto_pad")?.s;
  const autoPad = (s ? new TextDecoder().decode(s) : "NOTSET") as AutoPad;
  const pads = ints("pads");
  const attrs: ConvAttrs = { autoPad };
  if (pads?.length) attrs.pads = [pads[0], pads[1], pads[2], pads[3]];
  const st = ints("strides"), dl = ints("dilations");
  if (st?.length) attrs.strides = [st[0], st[1]];
  if (dl?.length) attrs.dilations = [dl[0], dl[1]];
  return { attrs, groups: attr(node, "group")?.i ?? 1 };
}

/** w − w_zero as parts that each fit symmetric i8 (one part unless |w − z| > 127). */
function splitWeights(w: Int32Array): Int8Array[] {
  const max = w.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const parts = Math.max(1, Math.ceil(max / 127));
  return Array.from({ length: parts }, (_, p) =>
    Int8Array.from(w, (v) => {
      // Spread v over the parts so each gets at most 127 in magnitude.
      const base = Math.trunc(v / parts), rest = v - base * parts;
      return base + (p < Math.abs(rest) ? Math.sign(rest) : 0);
    }));
}

Deno.test("ONNX conformance: Conv, ConvInteger, QLinearConv through the conv kernels", async (t) => {
  if (!conformanceDir()) {
    console.log(
      "SKIPPED: ONNX conformance data not found (../shared/conformance or $SQZ_CONFORMANCE_DIR)",
    );
    return;
  }
  const mod = await KernelModule.load("auto");
  let passed = 0;
  for (const name of CASES) {
    await t.step(name, () => {
      const c = loadCase(name);
      const node = c.model.graph!.node[0];
      const { attrs, groups } = convAttrs(node);
      for (const set of c.sets) {
        const ins = set.inputs;
        const x = tensorToArray(ins[0]) as ArrayLike<number>;
        const [n, cin, h, w] = ins[0].dims;
        const wt = ins[node.opType === "QLinearConv" ? 3 : 1];
        const [cout, , kh, kw] = wt.dims;
        const dims: Dims4 = [n, h, w, cin];
        const outDims = set.outputs[0].dims;
        const want = tensorToArray(set.outputs[0]) as ArrayLike<number>;
        if (node.opType === "Conv") {
          const bias = ins[2] ? tensorToArray(ins[2]) as Float32Array : undefined;
          const conv = PackedConvF32.create(mod, {
            cout,
            cin,
            kh,
            kw,
            groups,
            weights: tensorToArray(wt) as Float32Array,
            bias,
          });
          const y = conv.run(nchwToNhwc(x as Float32Array, ins[0].dims), dims, attrs);
          const err = allClose(nhwcToNchw(y.data, outDims), want);
          assert.equal(err, undefined, `${name}: ${err}`);
          conv.dispose();
          continue;
        }
        // int8: x, x_zero, w, w_zero (per tensor or per output channel) by op.
        const q = node.opType === "QLinearConv";
        const xZero = Number((tensorToArray(ins[q ? 2 : 2]) as ArrayLike<number>)?.[0] ?? 0);
        const wZeroT = q ? ins[5] : ins[3];
        const wZero = wZeroT ? tensorToArray(wZeroT) as ArrayLike<number> : [0];
        const wRaw = tensorToArray(wt) as ArrayLike<number>;
        const per = wRaw.length / cout;
        const wEff = Int32Array.from(
          { length: wRaw.length },
          (_, i) => wRaw[i] - Number(wZero[wZero.length > 1 ? Math.floor(i / per) : 0]),
        );
        const signed = ins[0].dataType === 3;
        const xs = nchwToNhwc(
          (signed ? Int8Array.from(x) : Uint8Array.from(x)) as Uint8Array,
          ins[0].dims,
        );
        // Exact i32 accumulators from one kernel run per weight part.
        const acc = new Int32Array(want.length);
        for (const part of splitWeights(wEff)) {
          const conv = PackedConvI8.create(mod, { cout, cin, kh, kw, groups, weights: part });
          const out = conv.output({ kind: "i32" });
          const y = conv.run(xs, dims, { signed, zeroPoint: xZero }, out, attrs);
          const yy = nhwcToNchw(y.data as Int32Array, outDims);
          for (let i = 0; i < acc.length; i++) acc[i] += yy[i];
          out.dispose();
          conv.dispose();
        }
        if (!q) {
          assert.deepEqual(Array.from(acc), Array.from(want), name);
          continue;
        }
        // QLinearConv: y = saturate(round((x−xz)(w−wz)·xs·ws/ys) + yz), half to even.
        const xScale = (tensorToArray(ins[1]) as Float32Array)[0];
        const wScale = tensorToArray(ins[4]) as Float32Array;
        const yScale = (tensorToArray(ins[6]) as Float32Array)[0];
        const yZero = Number((tensorToArray(ins[7]) as ArrayLike<number>)[0]);
        const perOut = acc.length / cout / n;
        const got = Array.from(acc, (v, i) => {
          const o = Math.floor(i / perOut) % cout;
          const s = xScale * wScale[wScale.length > 1 ? o : 0] / yScale;
          return Math.min(Math.max(roundHalfEven(v * s) + yZero, 0), 255);
        });
        assert.deepEqual(got, Array.from(want), name);
      }
      passed++;
    });
  }
  console.log(`conv conformance: ${passed}/${CASES.length} passed; skipped:`);
  for (const s of SKIPPED) console.log(`  ${s.name}: ${s.reason}`);
  assert.equal(passed, CASES.length);
});
