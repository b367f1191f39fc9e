// int4-weight GEMM/GEMV (Q4 × Q8, as ggml's q4_0 × q8_0): weights stay packed as 4-bit codes
// (kernels/pack/pack_q4.ts); activations are quantized per row and per block of 32 along K
// to int8 at run time:
//
//   struct q8_row {              // row stride 40·nb bytes
//     i8  x[nb][32];             // x = clamp(nearest(a / dx), −127, 127); 0 past K
//     f32 dx[nb];                // max|a| / 127 over the block (0 for an all-zero block)
//     i32 sx[nb];                // Σ x over the block
//   }
//
// Per output: y = bias + Σ_b f32(Σ_k code·x − zp·sx) · (d·dx), accumulated over b in order,
// then clamp(y, outMin, outMax). The integer part is exact; the f32 part is the same
// operations in the same order in every build (products in f32, no fused multiply-add), so
// the builds agree bit for bit. Codes enter the relaxed dot as its 7-bit operand (0..15):
// exact on every engine.
import { blocksQ4, NR_Q4, panelBytesQ4, Q4_BLOCK } from "../pack/pack_q4";
import { storeTail32 } from "./store";

export function q8RowBytes(k: i32): usize {
  return <usize>blocksQ4(k) * 40;
}

/** Quantizes M rows of f32 A (row stride lda elements) into q8_row structs at out. */
export function quantizeRowsQ8(m: i32, k: i32, a: usize, lda: i32, out: usize): void {
  const nb = blocksQ4(k);
  const rb = q8RowBytes(k);
  for (let r = 0; r < m; r++) {
    const src = a + <usize>r * (<usize>lda << 2);
    const row = out + <usize>r * rb;
    const dxs = row + <usize>nb * 32, sxs = dxs + <usize>nb * 4;
    for (let b = 0; b < nb; b++) {
      const k0 = b * Q4_BLOCK, kn = min(Q4_BLOCK, k - k0);
      let amax: f32 = 0;
      for (let i = 0; i < kn; i++) amax = max(amax, abs(load<f32>(src + (<usize>(k0 + i) << 2))));
      const dx: f32 = amax / 127;
      let sx = 0;
      const xq = row + <usize>b * 32;
      for (let i = 0; i < 32; i++) {
        let q = 0;
        if (i < kn && dx > 0) {
          const v = f32.nearest(load<f32>(src + (<usize>(k0 + i) << 2)) / dx);
          q = <i32>min<f32>(127, max<f32>(-127, v));
        }
        store<i8>(xq + <usize>i, <i8>q);
        sx += q;
      }
      store<f32>(dxs + (<usize>b << 2), dx);
      store<i32>(sxs + (<usize>b << 2), sx);
    }
  }
}

// f16 bits → f32, exactly (finite values only: the packer's caller rejects inf/NaN scales).
// @ts-ignore: decorator
@inline function f16ToF32(h: u32): f32 {
  const sign = (h & 0x8000) << 16;
  const e = (h >> 10) & 31, mant = h & 0x3ff;
  if (e == 0) {
    const v = <f32>mant * reinterpret<f32>(0x33800000); // 2^-24
    return reinterpret<f32>(reinterpret<u32>(v) | sign);
  }
  return reinterpret<f32>(sign | ((h & 0x7fff) << 13) + (112 << 23));
}

// The four scales of a block as f32x4 (the vector form of f16ToF32).
// @ts-ignore: decorator
@inline function f16x4ToF32(p: usize): v128 {
  const h = i32x4.extend_low_i16x8_u(v128.load64_zero(p));
  const sign = i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16);
  const mag = v128.and(h, i32x4.splat(0x7fff));
  const normal = i32x4.add(i32x4.shl(mag, 13), i32x4.splat(112 << 23));
  // Subnormal (and zero): mantissa · 2^-24, exact in f32.
  const sub = f32x4.mul(f32x4.convert_i32x4_u(mag), f32x4.splat(reinterpret<f32>(0x33800000)));
  const isSub = i32x4.eq(v128.and(h, i32x4.splat(0x7c00)), i32x4.splat(0));
  return v128.or(v128.bitselect(sub, normal, isSub), sign);
}

// Sums each of p0..p3 across its lanes: [Σp0, Σp1, Σp2, Σp3].
// @ts-ignore: decorator
@inline function hsum4(p0: v128, p1: v128, p2: v128, p3: v128): v128 {
  const a = i32x4.add(i32x4.shuffle(p0, p1, 0, 2, 4, 6), i32x4.shuffle(p0, p1, 1, 3, 5, 7));
  const b = i32x4.add(i32x4.shuffle(p2, p3, 0, 2, 4, 6), i32x4.shuffle(p2, p3, 1, 3, 5, 7));
  return i32x4.add(i32x4.shuffle(a, b, 0, 2, 4, 6), i32x4.shuffle(a, b, 1, 3, 5, 7));
}

// Σ over one 16-byte run of codes (u8, 0..15) times 16 activations (i8), in i32 lanes.
// @ts-ignore: decorator
@inline function dot16(x: v128, q: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.relaxed_dot_i8x16_i7x16_add_s(x, q, acc);
  const lo = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(x), i16x8.extend_low_i8x16_u(q));
  const hi = i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(x), i16x8.extend_high_i8x16_u(q));
  return i32x4.add(acc, i32x4.add(lo, hi));
}

// One row × one panel of four columns: gemm_q4_1x4_simd / _relaxed.
function gemm_q4_1x4_simd(
  nc: i32, nb: i32, x: usize, p: usize, c: usize, outMin: f32, outMax: f32,
): void {
  const qBase = p + 16, dBase = qBase + <usize>nb * 64, zBase = dBase + <usize>nb * 8;
  const dxs = x + <usize>nb * 32, sxs = dxs + <usize>nb * 4;
  const mask = i8x16.splat(15);
  const zero = i32x4.splat(0);
  let acc = f32x4.splat(0);
  for (let b = 0; b < nb; b++) {
    const xl = v128.load(x + <usize>b * 32), xh = v128.load(x + <usize>b * 32, 16);
    const q = qBase + <usize>b * 64;
    let w = v128.load(q);
    const p0 = dot16(xh, i8x16.shr_u(w, 4), dot16(xl, v128.and(w, mask), zero));
    w = v128.load(q, 16);
    const p1 = dot16(xh, i8x16.shr_u(w, 4), dot16(xl, v128.and(w, mask), zero));
    w = v128.load(q, 32);
    const p2 = dot16(xh, i8x16.shr_u(w, 4), dot16(xl, v128.and(w, mask), zero));
    w = v128.load(q, 48);
    const p3 = dot16(xh, i8x16.shr_u(w, 4), dot16(xl, v128.and(w, mask), zero));
    const zp = i32x4.extend_low_i16x8_u(
      i16x8.extend_low_i8x16_u(v128.load32_zero(zBase + (<usize>b << 2))),
    );
    const corr = i32x4.sub(hsum4(p0, p1, p2, p3), i32x4.mul(zp, v128.load32_splat(sxs + (<usize>b << 2))));
    const scale = f32x4.mul(f16x4ToF32(dBase + (<usize>b << 3)), v128.load32_splat(dxs + (<usize>b << 2)));
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(corr), scale));
  }
  const y = f32x4.pmin(f32x4.splat(outMax), f32x4.pmax(f32x4.splat(outMin), f32x4.add(acc, v128.load(p))));
  storeTail32(c, y, y, nc);
}

function gemm_q4_1x4_scalar(
  nc: i32, nb: i32, x: usize, p: usize, c: usize, outMin: f32, outMax: f32,
): void {
  const qBase = p + 16, dBase = qBase + <usize>nb * 64, zBase = dBase + <usize>nb * 8;
  const dxs = x + <usize>nb * 32, sxs = dxs + <usize>nb * 4;
  for (let j = 0; j < nc; j++) {
    let acc: f32 = 0;
    for (let b = 0; b < nb; b++) {
      const q = qBase + <usize>b * 64 + <usize>j * 16;
      let s = 0;
      for (let i = 0; i < 16; i++) {
        const v = <i32>load<u8>(q + <usize>i);
        s += (v & 15) * <i32>load<i8>(x + <usize>(b * 32 + i));
        s += (v >> 4) * <i32>load<i8>(x + <usize>(b * 32 + 16 + i));
      }
      const corr = s - <i32>load<u8>(zBase + <usize>b * 4 + <usize>j) * load<i32>(sxs + (<usize>b << 2));
      const scale = f16ToF32(load<u16>(dBase + <usize>b * 8 + (<usize>j << 1))) * load<f32>(dxs + (<usize>b << 2));
      acc = acc + <f32>corr * scale;
    }
    const y = acc + load<f32>(p + (<usize>j << 2));
    store<f32>(c + (<usize>j << 2), min(max(y, outMin), outMax));
  }
}

/**
 * C[m][n] for M rows of q8_row activations (quantizeRowsQ8) and packed Q4 weights; ldc in
 * elements. Columns n0..n0+N of a wider weight are reached by offsetting `packed` by whole
 * panels (n0 a multiple of 4) and c by n0.
 */
export function gemmQ4(
  m: i32, n: i32, k: i32, x: usize, packed: usize, c: usize, ldc: i32, outMin: f32,
  outMax: f32,
): void {
  const nb = blocksQ4(k);
  const pb = panelBytesQ4(k);
  const rb = <usize>nb * 40;
  for (let r = 0; r < m; r++) {
    const xr = x + <usize>r * rb;
    const cr = c + <usize>r * (<usize>ldc << 2);
    for (let n0 = 0; n0 < n; n0 += NR_Q4) {
      const p = packed + <usize>(n0 / NR_Q4) * pb;
      const nc = min(NR_Q4, n - n0);
      if (ASC_FEATURE_SIMD) gemm_q4_1x4_simd(nc, nb, xr, p, cr + (<usize>n0 << 2), outMin, outMax);
      else gemm_q4_1x4_scalar(nc, nb, xr, p, cr + (<usize>n0 << 2), outMin, outMax);
    }
  }
}
