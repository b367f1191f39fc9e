// ONNX node conformance cases for pooling run through the sqz pooling kernels: MaxPool (with
// Indices), AveragePool, GlobalAveragePool, GlobalMaxPool, in every kernel build. NCHW data
// is transposed to the kernels' NHWC.
//
// Ranks other than 2-D are mapped onto the 2-D kernels when that is exact:
//   1-D: an H = 1 image (kernel [1, k], pads [0, begin, 0, end]).
//   3-D: two passes, because a D×H×W window and its divisor factor per axis (the taps a
//        window counts, with or without padding, are a product of per-axis counts): pass 1
//        pools each depth slice over H×W; pass 2 pools over depth as a D × (outH·outW) image
//        with kernel [kd, 1]. Max of maxes is the max; a mean over depth of the slices'
//        means, each over that slice's counted taps, is the 3-D mean (up to f32 rounding).
//   Global pools of any rank: all spatial dims flattened into one.
// Anything else is listed in SKIPPED with its reason.
import assert from "node:assert/strict";
import {
  averagePool2d,
  type Dims4,
  globalAveragePool,
  globalMaxPool,
  maxPool2d,
  maxPool2dWithIndices,
  type PoolTensor,
} from "../src/kernels/pool.ts";
import type { KernelModule } from "../src/kernels/module.ts";
import type { AutoPad, WindowAttrs } from "../src/kernels/conv_geometry.ts";
import { type AttributeProto, type NodeProto, tensorToArray } from "../src/onnx/proto.ts";
import {
  allClose,
  conformanceDir,
  listCases,
  loadCase,
  nchwToNhwc,
  nhwcToNchw,
} from "./conformance.ts";
import { loadBuilds } from "./util.ts";

/** Pooling cases this suite does not run, with the reason (filled as the cases are read). */
export const SKIPPED: { name: string; reason: string }[] = [];

const CASES = listCases((n) =>
  /^test_(maxpool|averagepool|globalaveragepool|globalmaxpool)(_|$)/.test(n)
);

const KNOWN_ATTRS: Record<string, string[]> = {
  MaxPool: [
    "kernel_shape",
    "strides",
    "dilations",
    "pads",
    "auto_pad",
    "ceil_mode",
    "storage_order",
  ],
  AveragePool: [
    "kernel_shape",
    "strides",
    "dilations",
    "pads",
    "auto_pad",
    "ceil_mode",
    "count_include_pad",
  ],
  GlobalAveragePool: [],
  GlobalMaxPool: [],
};

function attr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

interface NodeAttrs {
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** ONNX order: all begins, then all ends. */
  pads: number[];
  autoPad: AutoPad;
  ceilMode: boolean;
  countIncludePad: boolean;
  storageOrder: 0 | 1;
}

function nodeAttrs(node: NodeProto, rank: number): NodeAttrs {
  const ints = (n: string, dflt: number[]) => {
    const v = attr(node, n)?.ints;
    return v?.length ? v.map(Number) : dflt;
  };
  const s = attr(node, "auto_pad")?.s;
  return {
    kernel: ints("kernel_shape", []),
    strides: ints("strides", new Array(rank).fill(1)),
    dilations: ints("dilations", new Array(rank).fill(1)),
    pads: ints("pads", new Array(2 * rank).fill(0)),
    autoPad: (s?.length ? new TextDecoder().decode(s) : "NOTSET") as AutoPad,
    ceilMode: Number(attr(node, "ceil_mode")?.i ?? 0) === 1,
    countIncludePad: Number(attr(node, "count_include_pad")?.i ?? 0) === 1,
    storageOrder: Number(attr(node, "storage_order")?.i ?? 0) === 1 ? 1 : 0,
  };
}

/** The 2-D window of axes (a, b) of an ONNX spatial rank-r attribute set. */
function window2d(a: NodeAttrs, axes: [number, number], rank: number): WindowAttrs {
  // Axis −1 is a dummy axis of size 1 (kernel 1, stride 1, no padding).
  const pick = (v: number[], i: number, dflt: number) => i < 0 ? dflt : v[i];
  const [y, x] = axes;
  return {
    kernel: [pick(a.kernel, y, 1), pick(a.kernel, x, 1)],
    strides: [pick(a.strides, y, 1), pick(a.strides, x, 1)],
    dilations: [pick(a.dilations, y, 1), pick(a.dilations, x, 1)],
    pads: [
      pick(a.pads, y, 0),
      pick(a.pads, x, 0),
      y < 0 ? 0 : a.pads[rank + y],
      x < 0 ? 0 : a.pads[rank + x],
    ],
    autoPad: a.autoPad,
    ceilMode: a.ceilMode,
  };
}

function skipReason(
  node: NodeProto,
  xDims: number[],
  xType: number,
  outputs: number,
): string | undefined {
  const op = node.opType ?? "";
  if (!(op in KNOWN_ATTRS)) return `op ${op} is not a pooling op of this suite`;
  if (node.domain) return `domain ${node.domain}`;
  const unknown = node.attribute.map((a) => a.name ?? "").filter((n) =>
    !KNOWN_ATTRS[op].includes(n)
  );
  if (unknown.length) return `unsupported attributes ${unknown.join(", ")}`;
  if (![1, 2, 3].includes(xType)) return `input type ${xType}: kernels take float, uint8, int8`;
  const rank = xDims.length - 2;
  if (op.startsWith("Global")) return rank >= 1 ? undefined : `rank ${rank}`;
  if (rank < 1 || rank > 3) return `${rank}-D pooling: 2-D kernels only (1-D and 3-D are mapped)`;
  if (outputs > 1 && rank !== 2) return "Indices output of a non-2-D MaxPool";
  if (xType !== 1 && op === "AveragePool") return "integer AveragePool has no ONNX semantics";
  return undefined;
}

interface Result {
  data: PoolTensor;
  dims: number[]; // NCHW-style ONNX dims
  indices?: BigInt64Array;
}

/** Runs one ONNX pooling node on NCHW x through the 2-D kernels; returns NCHW outputs. */
function runNode(
  mod: KernelModule,
  node: NodeProto,
  x: PoolTensor,
  xDims: number[],
  wantIndices: boolean,
): Result {
  const op = node.opType!;
  const [n, c, ...sp] = xDims;
  const rank = sp.length;
  const spatial = sp.reduce((p, v) => p * v, 1);
  if (op === "GlobalAveragePool" || op === "GlobalMaxPool") {
    const dims: Dims4 = [n, 1, spatial, c];
    const xs = nchwToNhwc(x, [n, c, 1, spatial]);
    const y = op === "GlobalMaxPool"
      ? globalMaxPool(mod, xs, dims)
      : globalAveragePool(mod, xs, dims);
    return { data: nhwcToNchw(y.data, [n, c, 1, 1]), dims: [n, c, ...sp.map(() => 1)] };
  }
  const a = nodeAttrs(node, rank);
  const pool = (t: PoolTensor, dims: Dims4, w: WindowAttrs) =>
    op === "MaxPool" ? maxPool2d(mod, t, dims, w) : averagePool2d(mod, t, dims, {
      ...w,
      countIncludePad: a.countIncludePad,
    });
  if (rank === 1) {
    const y = pool(nchwToNhwc(x, [n, c, 1, sp[0]]), [n, 1, sp[0], c], window2d(a, [-1, 0], 1));
    const ow = y.dims[2];
    return { data: nhwcToNchw(y.data, [n, c, 1, ow]), dims: [n, c, ow] };
  }
  if (rank === 2) {
    const [h, w] = sp;
    const dims: Dims4 = [n, h, w, c];
    const win = window2d(a, [0, 1], 2);
    const xs = nchwToNhwc(x, xDims);
    if (wantIndices) {
      const y = maxPool2dWithIndices(mod, xs, dims, { ...win, storageOrder: a.storageOrder });
      const [, oh, ow] = y.dims;
      const outDims = [n, c, oh, ow];
      // Indices to NCHW order: element (b, ch, oy, ox) of NHWC position ((b·oh+oy)·ow+ox)·c+ch.
      const idx = new BigInt64Array(y.indices.length);
      for (let b = 0; b < n; b++) {
        for (let ch = 0; ch < c; ch++) {
          for (let p = 0; p < oh * ow; p++) {
            idx[(b * c + ch) * oh * ow + p] = y.indices[(b * oh * ow + p) * c + ch];
          }
        }
      }
      return { data: nhwcToNchw(y.data, outDims), dims: outDims, indices: idx };
    }
    const y = pool(xs, dims, win);
    const outDims = [n, c, y.dims[1], y.dims[2]];
    return { data: nhwcToNchw(y.data, outDims), dims: outDims };
  }
  // 3-D: depth slices as a batch, then depth as the height of a D × (outH·outW) image.
  const [d, h, w] = sp;
  const xs = nchwToNhwc(x, [n, c, d, h * w]); // N, D, H, W, C
  const p1 = pool(xs, [n * d, h, w, c], window2d(a, [1, 2], 3));
  const [, oh, ow] = p1.dims;
  const p2 = pool(p1.data, [n, d, oh * ow, c], window2d(a, [0, -1], 3));
  const od = p2.dims[1];
  return { data: nhwcToNchw(p2.data, [n, c, od, oh * ow]), dims: [n, c, od, oh, ow] };
}

Deno.test("ONNX conformance: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool", async (t) => {
  if (!conformanceDir()) {
    console.log(
      "SKIPPED: ONNX conformance data not found (../shared/conformance or $SQZ_CONFORMANCE_DIR)",
    );
    return;
  }
  const mods = await loadBuilds();
  let passed = 0;
  for (const name of CASES) {
    const c = loadCase(name);
    const node = c.model.graph!.node[0];
    const first = c.sets[0]?.inputs[0];
    const reason = first
      ? skipReason(node, first.dims.map(Number), first.dataType ?? 0, c.sets[0].outputs.length)
      : "no test data";
    if (reason) {
      SKIPPED.push({ name, reason });
      continue;
    }
    await t.step(name, () => {
      for (const mod of mods) {
        for (const set of c.sets) {
          const xt = set.inputs[0];
          const x = tensorToArray(xt) as PoolTensor;
          const got = runNode(mod, node, x, xt.dims.map(Number), set.outputs.length > 1);
          const wantT = set.outputs[0];
          const what = `${name} (${mod.build})`;
          assert.deepEqual(got.dims, wantT.dims.map(Number), `${what}: output dims`);
          const want = tensorToArray(wantT) as PoolTensor;
          if (want instanceof Float32Array) {
            const err = allClose(got.data, want);
            assert.equal(err, undefined, `${what}: ${err}`);
          } else assert.deepEqual([...got.data], [...want], `${what}: values`);
          if (set.outputs.length > 1) {
            const wantIdx = tensorToArray(set.outputs[1]) as BigInt64Array;
            assert.deepEqual([...got.indices!], [...wantIdx], `${what}: indices`);
          }
        }
      }
    });
    passed++;
  }
  console.log(
    `pooling conformance: ${passed} of ${CASES.length} cases pass in ${mods.length} builds`,
  );
  console.log(
    SKIPPED.length
      ? `skipped:\n${SKIPPED.map((s) => `  ${s.name}: ${s.reason}`).join("\n")}`
      : "skipped: none",
  );
  assert.equal(passed + SKIPPED.length, CASES.length);
});
