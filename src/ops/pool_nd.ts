// Max and average pooling over NCHW tensors with 1, 2 or 3 spatial dims (canonicalized to three,
// as in conv_nd.ts), and the global pools over any number of spatial dims. Padding never takes
// part in a max; an average divides by the taps inside the input, or with count_include_pad by
// those inside the padded input (taps a ceil_mode window puts past the tail padding never count).
import type { Window3 } from "./conv_nd.ts";

/** Element arrays pooling reads and writes. */
export type PoolArray = Float32Array | Float64Array | Uint8Array | Int8Array;

/** Per output position along one dim: window start and the tap range inside the input. */
interface DimTable {
  start: Int32Array;
  kLo: Int32Array;
  kHi: Int32Array;
  /** End of the taps inside the padded input (they start at 0). */
  kPad: Int32Array;
}

function dimTable(I: number, K: number, S: number, D: number, H: number, T: number, O: number) {
  const t: DimTable = {
    start: new Int32Array(O),
    kLo: new Int32Array(O),
    kHi: new Int32Array(O),
    kPad: new Int32Array(O),
  };
  for (let o = 0; o < O; o++) {
    const st = o * S - H;
    const lo = Math.max(0, Math.ceil(-st / D));
    t.start[o] = st;
    t.kLo[o] = Math.min(lo, K);
    t.kHi[o] = Math.max(t.kLo[o], Math.min(K, Math.ceil((I - st) / D)));
    t.kPad[o] = Math.max(0, Math.min(K, Math.ceil((I + T - st) / D)));
  }
  return t;
}

function tables(g: Window3): [DimTable, DimTable, DimTable] {
  return [0, 1, 2].map((d) => dimTable(g.I[d], g.K[d], g.S[d], g.D[d], g.H[d], g.T[d], g.O[d])) as [
    DimTable,
    DimTable,
    DimTable,
  ];
}

/**
 * Max pooling of `planes` (N·C) planes. `lowest` fills a window with no tap inside the input.
 * With `indices`, each output also gets the flat input index of the first maximal tap
 * (NaN never wins): row-major over the spatial dims, or column-major with `columnMajor`
 * (storage_order 1), offset by plane·(input plane size) as ONNX specifies.
 */
export function maxPoolNd(
  x: PoolArray,
  planes: number,
  g: Window3,
  y: PoolArray,
  lowest: number,
  indices?: BigInt64Array,
  columnMajor = false,
): void {
  const [t0, t1, t2] = tables(g);
  const [I0, I1, I2] = g.I, [D0, D1, D2] = g.D, [O0, O1, O2] = g.O;
  const inSize = I0 * I1 * I2;
  let yi = 0;
  for (let p = 0; p < planes; p++) {
    const xb = p * inSize;
    for (let o0 = 0; o0 < O0; o0++) {
      const s0 = t0.start[o0], a0 = t0.kLo[o0], b0 = t0.kHi[o0];
      for (let o1 = 0; o1 < O1; o1++) {
        const s1 = t1.start[o1], a1 = t1.kLo[o1], b1 = t1.kHi[o1];
        for (let o2 = 0; o2 < O2; o2++, yi++) {
          const s2 = t2.start[o2], a2 = t2.kLo[o2], b2 = t2.kHi[o2];
          let m = -Infinity, at = -1;
          if (a0 < b0 && a1 < b1 && a2 < b2) {
            at = ((s0 + a0 * D0) * I1 + s1 + a1 * D1) * I2 + s2 + a2 * D2;
          }
          for (let k0 = a0; k0 < b0; k0++) {
            const r0 = (s0 + k0 * D0) * I1;
            for (let k1 = a1; k1 < b1; k1++) {
              const r1 = (r0 + s1 + k1 * D1) * I2 + s2;
              for (let k2 = a2; k2 < b2; k2++) {
                const i = r1 + k2 * D2;
                const v = x[xb + i];
                if (v > m) {
                  m = v;
                  at = i;
                }
              }
            }
          }
          y[yi] = at < 0 ? lowest : m;
          if (indices) {
            let idx = at;
            if (at >= 0 && columnMajor) {
              const i2 = at % I2, i1 = ((at / I2) | 0) % I1, i0 = (at / (I1 * I2)) | 0;
              idx = i0 + I0 * (i1 + I1 * i2);
            }
            indices[yi] = BigInt(at < 0 ? -1 : xb + idx);
          }
        }
      }
    }
  }
}

/**
 * Average pooling of `planes` planes: the f64 sum of the taps inside the input divided by their
 * count, or with `countIncludePad` by the taps inside the padded input. A window with nothing to
 * count averages to 0.
 */
export function avgPoolNd(
  x: PoolArray,
  planes: number,
  g: Window3,
  y: PoolArray,
  countIncludePad: boolean,
): void {
  const [t0, t1, t2] = tables(g);
  const [I0, I1, I2] = g.I, [D0, D1, D2] = g.D, [O0, O1, O2] = g.O;
  const inSize = I0 * I1 * I2;
  let yi = 0;
  for (let p = 0; p < planes; p++) {
    const xb = p * inSize;
    for (let o0 = 0; o0 < O0; o0++) {
      const s0 = t0.start[o0], a0 = t0.kLo[o0], b0 = t0.kHi[o0];
      for (let o1 = 0; o1 < O1; o1++) {
        const s1 = t1.start[o1], a1 = t1.kLo[o1], b1 = t1.kHi[o1];
        const c01 = countIncludePad ? t0.kPad[o0] * t1.kPad[o1] : (b0 - a0) * (b1 - a1);
        for (let o2 = 0; o2 < O2; o2++, yi++) {
          const s2 = t2.start[o2], a2 = t2.kLo[o2], b2 = t2.kHi[o2];
          let sum = 0;
          for (let k0 = a0; k0 < b0; k0++) {
            const r0 = (s0 + k0 * D0) * I1;
            for (let k1 = a1; k1 < b1; k1++) {
              const r1 = xb + (r0 + s1 + k1 * D1) * I2 + s2;
              for (let k2 = a2; k2 < b2; k2++) sum += x[r1 + k2 * D2];
            }
          }
          const count = c01 * (countIncludePad ? t2.kPad[o2] : b2 - a2);
          y[yi] = count > 0 ? sum / count : 0;
        }
      }
    }
  }
}

/** Global max (NaN never wins; `lowest` for an empty plane) or f64-summed average per plane. */
export function globalPool(
  x: PoolArray,
  planes: number,
  size: number,
  y: PoolArray,
  max: boolean,
  lowest: number,
): void {
  for (let p = 0; p < planes; p++) {
    const b = p * size;
    if (max) {
      let m = -Infinity;
      for (let i = 0; i < size; i++) if (x[b + i] > m) m = x[b + i];
      y[p] = size > 0 ? m : lowest;
    } else {
      let s = 0;
      for (let i = 0; i < size; i++) s += x[b + i];
      y[p] = size > 0 ? s / size : 0;
    }
  }
}
