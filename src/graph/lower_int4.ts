// Lowers ai.sqz.DequantizeInt4 weights of MatMul and Gemm layers into com.microsoft.MatMulNBits
// before constant folding, so the runtime keeps them at 4 bits (runtime/kernel_ops/
// matmulnbits.ts) instead of folding the decoder into an f32 weight. The two formats hold the
// same codes (src/ops/sqz_lowbit.ts and src/ops/contrib_matmulnbits.ts document them):
//   packed uint8 [rows, nb·B/2]  →  B [N, nb, B/2], the same bytes (rows = N, K along the view)
//   scales float32 [rows, nb]    →  scales [N·nb]
//   zero_points, one nibble per block over all rows → packed per row, ceil(nb/2) bytes a row
// A layer lowers when its weight view puts K where the layer reduces (MatMul B [K, N] axis 0,
// Gemm transB = 0 axis 0, transB = 1 axis 1), block_size is a power of two ≥ 16 (MatMulNBits'
// rule), Gemm has alpha = 1, transA = 0 and no C or a constant C of one value per column, and
// every reader of the decoded weight lowers (else the weight would be resident twice). Convs
// keep the decoder, which folding turns into an f32 weight.
import { Graph, Node, type Value } from "./ir.ts";
import { MS_DOMAIN } from "../ops/contrib_matmulnbits.ts";

const SQZ_DOMAIN = "ai.sqz";

function int(n: Node, name: string, dflt: number): number {
  const v = n.attrs[name];
  return typeof v === "number" ? v : dflt;
}

/** The decoder's matrix view: rows = output columns N, K along `axis`. */
interface Int4Weight {
  dec: Node;
  k: number;
  n: number;
  axis: number;
  blockSize: number;
}

function int4Weight(v: Value | undefined): Int4Weight | undefined {
  const dec = v?.producer;
  if (!dec || dec.domain !== SQZ_DOMAIN || dec.op !== "DequantizeInt4") return undefined;
  if (!dec.inputs[0]?.constant || !dec.inputs[1]?.constant) return undefined;
  if (dec.inputs[2] && !dec.inputs[2].constant) return undefined;
  const shape = dec.attrs.shape;
  if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => typeof d === "number")) {
    return undefined;
  }
  const [d0, d1] = shape as number[];
  const axis = int(dec, "axis", 0), bs = int(dec, "block_size", 0);
  if (!(bs >= 16 && (bs & (bs - 1)) === 0 && bs <= 1 << 20)) return undefined;
  // Axis 0: element (r, k) is W[k][r], so K = d0 and rows = d1; axis 1: rows = d0, K = d1.
  return axis === 0
    ? { dec, k: d0, n: d1, axis, blockSize: bs }
    : { dec, k: d1, n: d0, axis, blockSize: bs };
}

/** The bias MatMulNBits takes for a layer, null when it cannot lower, undefined for none. */
function layerBias(node: Node, w: Int4Weight): Float32Array | undefined | null {
  if (node.domain && node.domain !== "ai.onnx") return null;
  const a = node.inputs[0];
  if (a?.type && a.type !== "float32") return null;
  if (node.op === "MatMul") return w.axis === 0 && node.inputs.length <= 2 ? undefined : null;
  if (node.op !== "Gemm") return null;
  if (int(node, "transA", 0) !== 0 || int(node, "alpha", 1) !== 1) return null;
  if (w.axis !== (int(node, "transB", 0) === 1 ? 1 : 0)) return null;
  if (a?.shape && a.shape.length !== 2) return null;
  const beta = int(node, "beta", 1), c = node.inputs[2];
  if (!c || beta === 0) return undefined;
  const t = c.constant;
  if (!t || t.type !== "float32") return null;
  const perColumn = (t.dims.length === 1 && t.dims[0] === w.n) ||
    (t.dims.length === 2 && t.dims[0] === 1 && t.dims[1] === w.n);
  const scalar = t.data.length === 1 && t.dims.length <= 2;
  if (!perColumn && !scalar) return null;
  const src = t.data as Float32Array;
  return Float32Array.from({ length: w.n }, (_, j) => Math.fround(beta * src[scalar ? 0 : j]));
}

function fresh(g: Graph, base: string): Value {
  let name = base;
  for (let i = 1; g.values.has(name); i++) name = `${base}_${i}`;
  return g.value(name);
}

function constant(g: Graph, base: string, t: NonNullable<Value["constant"]>): Value {
  const v = fresh(g, base);
  v.constant = t;
  v.type = t.type;
  v.shape = [...t.dims];
  return v;
}

/** Rewrites every lowerable int4 MatMul / Gemm; returns how many layers it lowered. */
export function lowerInt4ToMatMulNBits(g: Graph): number {
  let lowered = 0;
  for (const dec of g.nodes.slice()) {
    if (dec.domain !== SQZ_DOMAIN || dec.op !== "DequantizeInt4") continue;
    const wv = dec.outputs[0];
    const w = int4Weight(wv);
    if (!w || !wv.consumers.length || g.outputs.includes(wv)) continue;
    const plans = wv.consumers.map((c) =>
      c.inputs[1] === wv && c.inputs[0] !== wv ? layerBias(c, w) : null
    );
    if (plans.some((p) => p === null)) continue;
    const [packed, scales, zp] = dec.inputs.map((v) => v?.constant);
    const nb = Math.ceil(w.k / w.blockSize), blob = w.blockSize / 2;
    if (packed!.data.length !== w.n * nb * blob || scales!.data.length !== w.n * nb) continue;
    const b = constant(g, `${wv.name}::nbits_b`, {
      type: "uint8",
      dims: [w.n, nb, blob],
      data: packed!.data,
    });
    const s = constant(g, `${wv.name}::nbits_scales`, {
      type: "float32",
      dims: [w.n * nb],
      data: scales!.data,
    });
    let z: Value | undefined;
    if (zp) {
      const stride = Math.ceil(nb / 2), src = zp.data as Uint8Array;
      const out = new Uint8Array(w.n * stride);
      for (let r = 0; r < w.n; r++) {
        for (let j = 0; j < nb; j++) {
          const blk = r * nb + j, q = (src[blk >> 1] >> ((blk & 1) << 2)) & 15;
          out[r * stride + (j >> 1)] |= q << ((j & 1) << 2);
        }
      }
      z = constant(g, `${wv.name}::nbits_zp`, { type: "uint8", dims: [w.n * stride], data: out });
    }
    wv.consumers.slice().forEach((layer, i) => {
      const bias = plans[i] as Float32Array | undefined;
      const bv = bias
        ? constant(g, `${layer.name}::nbits_bias`, { type: "float32", dims: [w.n], data: bias })
        : undefined;
      const inputs = [layer.inputs[0], b, s, z, ...(bv ? [undefined, bv] : [])];
      while (inputs.length > 3 && !inputs[inputs.length - 1]) inputs.pop();
      g.removeNode(layer);
      g.addNode(
        new Node(layer.name, "MatMulNBits", MS_DOMAIN, inputs, layer.outputs, {
          K: w.k,
          N: w.n,
          bits: 4,
          block_size: w.blockSize,
          accuracy_level: 4,
        }),
      );
      lowered++;
    });
    g.removeNode(dec);
  }
  if (lowered) {
    if (!g.opsets.has(MS_DOMAIN)) g.opsets.set(MS_DOMAIN, 1);
    g.topoSort();
  }
  return lowered;
}
