// Partial-tile stores shared by the GEMM kernels: the first nc (< 8) lanes of a row held in
// two v128 registers (lo = lanes 0-3, hi = 4-7), 4 bytes per lane.
// @ts-ignore: decorator
@inline export function storeTail32(c: usize, lo: v128, hi: v128, nc: i32): void {
  if (nc & 4) {
    v128.store(c, lo);
    lo = hi;
    c += 16;
  }
  if (nc & 2) {
    v128.store64_lane(c, lo, 0);
    lo = i32x4.shuffle(lo, lo, 2, 3, 2, 3);
    c += 8;
  }
  if (nc & 1) v128.store32_lane(c, lo, 0);
}

// The first nc (≤ 8) bytes of v.
// @ts-ignore: decorator
@inline export function storeBytes8(c: usize, v: v128, nc: i32): void {
  if (nc == 8) {
    v128.store64_lane(c, v, 0);
    return;
  }
  if (nc & 4) {
    v128.store32_lane(c, v, 0);
    v = i64x2.shr_u(v, 32);
    c += 4;
  }
  if (nc & 2) {
    v128.store16_lane(c, v, 0);
    v = i64x2.shr_u(v, 16);
    c += 2;
  }
  if (nc & 1) v128.store8_lane(c, v, 0);
}
