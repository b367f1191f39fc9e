// Packed depthwise-convolution weights (channel multiplier 1: groups = Cin = Cout). The source
// is ONNX layout [C][1][KH][KW]: weight (c, ky, kx) at w + ((c*KH + ky)*KW + kx) elements.
// Taps are numbered t = ky*KW + kx (T = KH*KW). Channels are packed in groups of the vector
// width so the NHWC kernels read one group's bias and taps as a single forward stream; padded
// channels (past C) have zero bias and weights. The same layout serves all three builds.
//
// f32, groups of DW_CB_F32 = 4 channels (one f32x4):
//   struct dw_group_f32 {       // (1 + T) * 16 bytes
//     f32 bias[4];
//     f32 w[T][4];              // w[t][j] = W[c0+j][t]
//   }
//   packed = dw_group_f32[ceil(C/4)]
//
// int8, groups of DW_CB_I8 = 8 channels. Weights are i8 in [-127, 127] (symmetric, zero point
// 0), widened to i16 and interleaved in tap pairs, so that i32x4.dot_i16x8_s on activations
// interleaved the same way adds two taps of four channels per instruction:
//   struct dw_group_i8 {        // 64 + TP*16 (+ 288 for 3×3) bytes, TP = T rounded up to even
//     i32 bias[8];
//     i32 wsum[8];              // Σ_t W[c0+j][t]: the kernels subtract x_zero * wsum once
//                               // instead of x_zero from every activation
//     i16 w[TP/2][8][2];        // w[p][j][s] = W[c0+j][2p+s]; 0 for the padded tap 2p+s = T
//     i16 rows[3][3][8][2];     // 3×3 kernels only (288 bytes): the taps again, paired within
//                               // each kernel row as (kx0, kx1), (0, kx2) and (kx2, 0), for
//                               // the stride-1 and stride-2 kernels that share input columns
//                               // between neighbouring output pixels
//   }
//   packed = dw_group_i8[ceil(C/8)]
// Lanes of each pair block: bytes 0-15 hold channels 0-3, bytes 16-31 channels 4-7.
export const DW_CB_F32: i32 = 4;
export const DW_CB_I8: i32 = 8;
export const DW_HEADER_I8: i32 = 64;

// @ts-ignore: decorator
@inline export function dwGroupBytesF32(taps: i32): usize {
  return <usize>(1 + taps) << 4;
}

// @ts-ignore: decorator
@inline export function dwGroupBytesI8(kh: i32, kw: i32): usize {
  const rows = kh == 3 && kw == 3 ? <usize>DW_ROWS3_I8 : 0;
  return <usize>DW_HEADER_I8 + (<usize>((kh * kw + 1) >> 1) << 5) + rows;
}

// Offset of the 3×3 row-paired block inside a group, and its size.
export const DW_ROWS3_OFF_I8: i32 = DW_HEADER_I8 + 5 * 32;
export const DW_ROWS3_I8: i32 = 288;

export function dwPackedSizeF32(c: i32, kh: i32, kw: i32): usize {
  return <usize>((c + DW_CB_F32 - 1) / DW_CB_F32) * dwGroupBytesF32(kh * kw);
}

export function dwPackedSizeI8(c: i32, kh: i32, kw: i32): usize {
  return <usize>((c + DW_CB_I8 - 1) / DW_CB_I8) * dwGroupBytesI8(kh, kw);
}

// w: f32 [C][1][KH][KW]; bias: f32[C] or 0.
export function packDwF32(c: i32, kh: i32, kw: i32, w: usize, bias: usize, out: usize): void {
  const taps = kh * kw;
  let p = out;
  for (let c0 = 0; c0 < c; c0 += DW_CB_F32) {
    for (let j = 0; j < DW_CB_F32; j++) {
      const ch = c0 + j;
      store<f32>(p + (<usize>j << 2), ch < c && bias != 0 ? load<f32>(bias + (<usize>ch << 2)) : 0);
    }
    p += 16;
    for (let t = 0; t < taps; t++) {
      for (let j = 0; j < DW_CB_F32; j++) {
        const ch = c0 + j;
        const v: f32 = ch < c ? load<f32>(w + ((<usize>ch * taps + t) << 2)) : 0;
        store<f32>(p + (<usize>j << 2), v);
      }
      p += 16;
    }
  }
}

// w: i8 [C][1][KH][KW], values in [-127, 127]; bias: i32[C] or 0.
export function packDwI8(c: i32, kh: i32, kw: i32, w: usize, bias: usize, out: usize): void {
  const taps = kh * kw;
  const pairs = (taps + 1) >> 1;
  let p = out;
  for (let c0 = 0; c0 < c; c0 += DW_CB_I8) {
    for (let j = 0; j < DW_CB_I8; j++) {
      const ch = c0 + j;
      let sum = 0;
      if (ch < c) {
        for (let t = 0; t < taps; t++) sum += <i32>load<i8>(w + <usize>ch * taps + t);
      }
      store<i32>(p + (<usize>j << 2), ch < c && bias != 0 ? load<i32>(bias + (<usize>ch << 2)) : 0);
      store<i32>(p + 32 + (<usize>j << 2), sum);
    }
    p += DW_HEADER_I8;
    for (let q = 0; q < pairs; q++) {
      for (let j = 0; j < DW_CB_I8; j++) {
        const ch = c0 + j;
        for (let s = 0; s < 2; s++) {
          const t = 2 * q + s;
          const v: i16 = ch < c && t < taps ? <i16>load<i8>(w + <usize>ch * taps + t) : 0;
          store<i16>(p + (<usize>j << 2) + (<usize>s << 1), v);
        }
      }
      p += 32;
    }
    if (kh == 3 && kw == 3) {
      for (let ky = 0; ky < 3; ky++) {
        for (let j = 0; j < DW_CB_I8; j++) {
          const ch = c0 + j;
          const wr = w + <usize>ch * 9 + <usize>ky * 3;
          const ok = ch < c;
          store<i16>(p + (<usize>j << 2), ok ? <i16>load<i8>(wr) : 0);
          store<i16>(p + (<usize>j << 2) + 2, ok ? <i16>load<i8>(wr, 1) : 0);
          store<i16>(p + 32 + (<usize>j << 2), 0);
          store<i16>(p + 32 + (<usize>j << 2) + 2, ok ? <i16>load<i8>(wr, 2) : 0);
          store<i16>(p + 64 + (<usize>j << 2), ok ? <i16>load<i8>(wr, 2) : 0);
          store<i16>(p + 64 + (<usize>j << 2) + 2, 0);
        }
        p += 96;
      }
    }
  }
}
