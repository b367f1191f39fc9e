// Packed int4 weights with per-block f16 scales and 4-bit zero points (the weight-only int4 of
// MatMulNBits / ai.sqz.DequantizeInt4, ggml's block_q4 idea), one block per panel of
// NR_Q4 = 4 output columns and nb = ceil(K/32) blocks of 32 along K:
//
//   struct panel_q4 {             // 16 + 76·nb bytes, rounded up to 16
//     f32 bias[4];                // bias of columns n0..n0+3 (0 past N)
//     u8  q[nb][4][16];           // q[b][j][i]: low nibble = code of k = 32b + i,
//                                 //             high nibble = code of k = 32b + 16 + i
//     u16 d[nb][4];               // f16 scale of block b of column n0+j
//     u8  zp[nb][4];              // its zero point, 0..15 (8 for symmetric codes)
//   }
//   packed = panel_q4[ceil(N/4)]
//
// w(k, n) = (code − zp)·d. Codes past K and columns past N are 0, with d = 0 and zp = 0, so
// they add nothing. Weight memory: 76 bytes per 128 weights = 0.59 B, 14.8% of f32.
// The caller supplies the codes already unpacked as u8 [N][K] (one code per byte, row n =
// output column n), the scales as u16 f16 bits [N][nb] and the zero points as u8 [N][nb]
// (or 0 = all 8); src/kernels/gemm_q4.ts converts from the ONNX layouts.
export const NR_Q4: i32 = 4;
export const Q4_BLOCK: i32 = 32;

// @ts-ignore: decorator
@inline export function blocksQ4(k: i32): i32 {
  return (k + Q4_BLOCK - 1) / Q4_BLOCK;
}

// @ts-ignore: decorator
@inline export function panelBytesQ4(k: i32): usize {
  return (<usize>(16 + 76 * blocksQ4(k)) + 15) & ~15;
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
    const qBase = p + 16, dBase = qBase + <usize>nb * 64, zBase = dBase + <usize>nb * 8;
    for (let j = 0; j < NR_Q4 && n0 + j < n; j++) {
      const col = n0 + j;
      if (bias) store<f32>(p + (<usize>j << 2), load<f32>(bias + (<usize>col << 2)));
      const row = codes + <usize>col * <usize>k;
      for (let b = 0; b < nb; b++) {
        const q = qBase + <usize>b * 64 + <usize>j * 16;
        for (let i = 0; i < 16; i++) {
          const k0 = b * Q4_BLOCK + i, k1 = k0 + 16;
          const lo = k0 < k ? load<u8>(row + <usize>k0) & 15 : 0;
          const hi = k1 < k ? load<u8>(row + <usize>k1) & 15 : 0;
          store<u8>(q + <usize>i, <u8>(lo | (hi << 4)));
        }
        const at = <usize>col * <usize>nb + <usize>b;
        store<u16>(dBase + <usize>b * 8 + (<usize>j << 1), load<u16>(scales + (at << 1)));
        store<u8>(zBase + <usize>b * 4 + <usize>j, zps ? load<u8>(zps + at) & 15 : 8);
      }
    }
  }
}
