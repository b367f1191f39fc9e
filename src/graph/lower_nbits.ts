// Lowers the int4 and ternary weight decoders of MatMul and Gemm layers (ai.sqz.DequantizeInt4,
// ai.sqz.DequantizeTernary) into com.microsoft.MatMulNBits before constant folding, so the
// runtime keeps them at 4 bits (runtime/kernel_ops/matmulnbits.ts) instead of folding the decoder
// into an f32 weight. src/ops/sqz_lowbit.ts and src/ops/contrib_matmulnbits.ts document the
// formats. int4 holds the same codes:
//   packed uint8 [rows, nb·B/2]  →  B [N, nb, B/2], the same bytes (rows = N, K along the view)
//   scales float32 [rows, nb]    →  scales [N·nb]
//   zero_points, one nibble per block over all rows → packed per row, ceil(nb/2) bytes a row
// Ternary w = α[r]·t becomes 4-bit codes t + 8 in blocks of 32 with scale α[r] and the default
// zero point 8: exact, at 4.75 bits a weight (a 2-bit kernel would take 2.5).
// A layer lowers when its weight view puts K where the layer reduces (MatMul B [K, N] axis 0,
// Gemm transB = 0 axis 0, transB = 1 axis 1), int4's block_size is a power of two ≥ 16
// (MatMulNBits' rule), Gemm has alpha = 1, transA = 0 and no C or a constant C of one value per
// column, and every reader of the decoded weight lowers (else the weight would be resident
// twice). Convs keep the decoder, which folding turns into an f32 weight.
import { Graph, Node, type Value } from "./ir.ts";
import { MS_DOMAIN } from "../ops/contrib_matmulnbits.ts";
import { attrFloat, attrInt } from "../ops/attrs.ts";
import { int4ZeroPointsPerRow } from "../ops/sqz_lowbit.ts";

const SQZ_DOMAIN = "ai.sqz";

/** MatMulNBits' constant inputs for a decoded weight. */
interface NBitsConstants {
  b: Uint8Array;
  scales: Float32Array;
  /** Zero points packed per row, or undefined for the default 8. */
  zp?: Uint8Array;
  blockSize: number;
}

/** The decoder's matrix view: rows = output columns N, K along `axis`. */
interface DecodedWeight {
  dec: Node;
  k: number;
  n: number;
  axis: number;
  /** MatMulNBits' inputs, or undefined when the tensors do not fit the attributes. */
  build(): NBitsConstants | undefined;
}

function matrixView(dec: Node): { k: number; n: number; axis: number } | undefined {
  const shape = dec.attrs.shape;
  if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => typeof d === "number")) {
    return undefined;
  }
  const [d0, d1] = shape as number[];
  if (!(d0 >= 1 && d1 >= 1)) return undefined;
  const axis = attrInt(dec, "axis", 0);
  if (axis !== 0 && axis !== 1) return undefined;
  // Axis 0: element (r, k) is W[k][r], so K = d0 and rows = d1; axis 1: rows = d0, K = d1.
  return axis === 0 ? { k: d0, n: d1, axis } : { k: d1, n: d0, axis };
}

function decodedWeight(v: Value | undefined): DecodedWeight | undefined {
  const dec = v?.producer;
  if (!dec || dec.domain !== SQZ_DOMAIN) return undefined;
  if (dec.op !== "DequantizeInt4" && dec.op !== "DequantizeTernary") return undefined;
  if (!dec.inputs.every((x) => !x || x.constant)) return undefined;
  if (!dec.inputs[0] || !dec.inputs[1]) return undefined;
  const view = matrixView(dec);
  if (!view) return undefined;
  const { k, n } = view;
  const [t0, t1, t2] = dec.inputs.map((x) => x?.constant);
  if (dec.op === "DequantizeInt4") {
    const bs = attrInt(dec, "block_size", 0);
    if (!(bs >= 16 && (bs & (bs - 1)) === 0 && bs <= 1 << 20)) return undefined;
    return {
      dec,
      ...view,
      build() {
        const nb = Math.ceil(k / bs), blob = bs / 2;
        if (t0!.type !== "uint8" || t0!.data.length !== n * nb * blob) return undefined;
        if (t1!.type !== "float32" || t1!.data.length !== n * nb) return undefined;
        let zp: Uint8Array | undefined;
        if (t2) {
          if (t2.type !== "uint8" || t2.data.length !== Math.ceil((n * nb) / 2)) return undefined;
          zp = int4ZeroPointsPerRow(t2.data as Uint8Array, n, nb);
        }
        return {
          b: t0!.data as Uint8Array,
          scales: t1!.data as Float32Array,
          zp,
          blockSize: bs,
        };
      },
    };
  }
  return {
    dec,
    ...view,
    build() {
      const per = Math.ceil(k / 4);
      if (t0!.type !== "uint8" || t0!.data.length !== n * per) return undefined;
      if (t1!.type !== "float32" || t1!.data.length !== n) return undefined;
      const codes = t0!.data as Uint8Array, alpha = t1!.data as Float32Array;
      const bs = 32, nb = Math.ceil(k / bs), blob = bs / 2;
      // Code t + 8 per value (00 → 8, 01 → 9, 11 → 7), padding past K at the zero point 8.
      const b = new Uint8Array(n * nb * blob).fill(0x88);
      for (let r = 0; r < n; r++) {
        for (let i = 0; i < k; i++) {
          const c = (codes[r * per + (i >> 2)] >> ((i & 3) << 1)) & 3;
          if (c === 2) return undefined; // invalid: the decoder reports it
          const q = c === 0 ? 8 : c === 1 ? 9 : 7, at = r * nb * blob + (i >> 1);
          b[at] = (b[at] & (i & 1 ? 0x0f : 0xf0)) | (q << ((i & 1) << 2));
        }
      }
      const scales = new Float32Array(n * nb);
      for (let r = 0; r < n; r++) scales.fill(alpha[r], r * nb, r * nb + nb);
      return { b, scales, blockSize: bs };
    },
  };
}

/** The bias MatMulNBits takes for a layer, null when it cannot lower, undefined for none. */
function layerBias(node: Node, w: DecodedWeight): Float32Array | undefined | null {
  if (node.domain && node.domain !== "ai.onnx") return null;
  const a = node.inputs[0];
  if (a?.type && a.type !== "float32") return null;
  if (node.op === "MatMul") return w.axis === 0 && node.inputs.length <= 2 ? undefined : null;
  if (node.op !== "Gemm") return null;
  if (attrInt(node, "transA", 0) !== 0 || attrFloat(node, "alpha", 1) !== 1) return null;
  if (w.axis !== (attrInt(node, "transB", 0) === 1 ? 1 : 0)) return null;
  if (a?.shape && a.shape.length !== 2) return null;
  const beta = attrFloat(node, "beta", 1), c = node.inputs[2];
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

/** Rewrites every lowerable int4 / ternary MatMul and Gemm; returns how many layers it lowered. */
export function lowerToMatMulNBits(g: Graph): number {
  let lowered = 0;
  for (const dec of g.nodes.slice()) {
    const wv = dec.outputs[0];
    const w = decodedWeight(wv);
    if (!w || !wv.consumers.length || g.outputs.includes(wv)) continue;
    const plans = wv.consumers.map((c) =>
      c.inputs[1] === wv && c.inputs[0] !== wv ? layerBias(c, w) : null
    );
    if (plans.some((p) => p === null)) continue;
    const nbits = w.build();
    if (!nbits) continue;
    const nb = Math.ceil(w.k / nbits.blockSize), blob = nbits.blockSize / 2;
    const b = constant(g, `${wv.name}::nbits_b`, {
      type: "uint8",
      dims: [w.n, nb, blob],
      data: nbits.b,
    });
    const s = constant(g, `${wv.name}::nbits_scales`, {
      type: "float32",
      dims: [w.n * nb],
      data: nbits.scales,
    });
    const z = nbits.zp
      ? constant(g, `${wv.name}::nbits_zp`, {
        type: "uint8",
        dims: [nbits.zp.length],
        data: nbits.zp,
      })
      : undefined;
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
          block_size: nbits.blockSize,
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
