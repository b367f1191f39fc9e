// Packed f32 GEMM weights (one block per panel of NR_F32 = 8 output columns):
//
//   struct panel_f32 {          // 32 + 32*K bytes, 16-byte aligned when the base is
//     f32 bias[8];              // bias of columns n0..n0+7 (0 past N)
//     f32 w[K][8];              // w[k][j] = B[k][n0+j] (0 past N)
//   }
//   packed = panel_f32[ceil(N/8)]
//
// The bias leads each panel so the microkernel initialises its accumulators from the same
// stream it then reads weights from, as XNNPACK's packed weights do.
export const NR_F32: i32 = 8;

export function packedSizeF32(n: i32, k: i32): usize {
  return <usize>((n + NR_F32 - 1) / NR_F32) * <usize>(NR_F32 + NR_F32 * k) * 4;
}

// B element (k, n) lives at b + (k*strideK + n*strideN)*4: strides let one routine pack a
// MatMul's K×N weights (strideK=N, strideN=1) and a Gemm's transB N×K ones (strideK=1, strideN=K).
export function packF32(
  n: i32,
  k: i32,
  b: usize,
  strideK: i32,
  strideN: i32,
  bias: usize,
  out: usize,
): void {
  let p = out;
  for (let n0 = 0; n0 < n; n0 += NR_F32) {
    for (let j = 0; j < NR_F32; j++) {
      const col = n0 + j;
      store<f32>(p, col < n && bias != 0 ? load<f32>(bias + (<usize>col << 2)) : 0);
      p += 4;
    }
    for (let kk = 0; kk < k; kk++) {
      for (let j = 0; j < NR_F32; j++) {
        const col = n0 + j;
        const v: f32 = col < n
          ? load<f32>(b + ((<usize>kk * strideK + <usize>col * strideN) << 2))
          : 0;
        store<f32>(p, v);
        p += 4;
      }
    }
  }
}
