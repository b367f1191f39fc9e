// Packed int4 weights with per-block f16 scales and 4-bit zero points (the weight-only int4 of
// MatMulNBits / ai.sqz.DequantizeInt4, ggml's block_q4 idea), in panels of NR_Q4 = 8 output
// columns, each a run of nb = ceil(K/32) blocks of 32 along K:
//
//   struct block_q4 {             // 152 bytes: 256 weights of 8 columns × 32 k
//     u8  q[2][4][16];            // q[c][t][4j + i], column n0 + 4c + j:
//                                 //   low nibble  = code of k = 32b + 4t + i
//                                 //   high nibble = code of k = 32b + 16 + 4t + i
//     u16 d[8];                   // f16 scale of the block, per column
//     u8  zp[8];                  // its zero point 0..15 (8 for symmetric codes)
//   }
//   struct panel_q4 { f32 bias[8]; block_q4 blocks[nb]; }   // 32 + 152·nb bytes
//   packed = panel_q4[ceil(N/8)]
//
// Each 16-byte q[c][t] is four i32 lanes, one per column, of four consecutive k: the relaxed
// dot of a broadcast four activations against it sums straight into per-column lanes, with no
// horizontal reduction (XNNPACK's "c4" layout). w(k, n) = (code − zp)·d. Codes past K and
// columns past N are 0, with d = 0 and zp = 0, so they add nothing. Weight memory: 152 bytes
// per 256 weights = 4.75 bits, 14.8% of f32 (plus 32 bytes of bias per panel).
// The caller supplies the codes unpacked as u8 [N][K] (one code per byte, row n = output
// column n), the scales as u16 f16 bits [N][nb] and the zero points as u8 [N][nb] (or 0: all
// 8); src/kernels/gemm_q4.ts converts from the ONNX layouts.
export const NR_Q4: i32 = 8;
export const Q4_BLOCK: i32 = 32;
export const Q4_BLOCK_BYTES: i32 = 152;

// @ts-ignore: decorator
@inline export function blocksQ4(k: i32): i32 {
  return (k + Q4_BLOCK - 1) / Q4_BLOCK;
}

// @ts-ignore: decorator
@inline export function panelBytesQ4(k: i32): usize {
  return <usize>(32 + Q4_BLOCK_BYTES * blocksQ4(k));
}

export function packedSizeQ4(n: i32, k: i32): usize {
  return <usize>((n + NR_Q4 - 1) / NR_Q4) * panelBytesQ4(k);
}

export function packQ4(
  n: i32, k: i32, codes: usize, scales: usize, zps: usize, bias: usize, out: usize,
): void {
  const nb = blocksQ4(k);
  const pb = panelBytesQ4(k);
  memory.fill(out, 0, packedSizeQ4(n, k));
  for (let n0 = 0; n0 < n; n0 += NR_Q4) {
    const p = out + <usize>(n0 / NR_Q4) * pb;
    for (let jj = 0; jj < NR_Q4 && n0 + jj < n; jj++) {
      const col = n0 + jj, c = jj >> 2, j = jj & 3;
      if (bias) store<f32>(p + (<usize>jj << 2), load<f32>(bias + (<usize>col << 2)));
      const row = codes + <usize>col * <usize>k;
      for (let b = 0; b < nb; b++) {
        const blk = p + 32 + <usize>b * Q4_BLOCK_BYTES;
        for (let t = 0; t < 4; t++) {
          for (let i = 0; i < 4; i++) {
            const k0 = b * Q4_BLOCK + 4 * t + i, k1 = k0 + 16;
            const lo = k0 < k ? load<u8>(row + <usize>k0) & 15 : 0;
            const hi = k1 < k ? load<u8>(row + <usize>k1) & 15 : 0;
            store<u8>(blk + <usize>(c * 64 + t * 16 + 4 * j + i), <u8>(lo | (hi << 4)));
          }
        }
        const at = <usize>col * <usize>nb + <usize>b;
        store<u16>(blk + 128 + (<usize>jj << 1), load<u16>(scales + (at << 1)));
        store<u8>(blk + 144 + <usize>jj, zps ? load<u8>(zps + at) & 15 : 8);
      }
    }
  }
}
