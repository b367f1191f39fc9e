// Window arithmetic shared by the pooling kernels. Along one axis a window starts at `start`
// (input coordinates, negative inside the leading padding) and has `kn` taps `d` apart; only
// taps in [lo, hi) are visited. Computing the tap range once per output row/column keeps
// every bounds test out of the channel loops.

/** First tap k ≥ 0 with start + k·d ≥ lo (may be ≥ kn: no tap inside). */
// @ts-ignore: decorator
@inline export function tapBegin(start: i32, d: i32, lo: i32): i32 {
  return start >= lo ? 0 : (lo - start + d - 1) / d;
}

/** One past the last tap k < kn with start + k·d < hi (0 when the window starts past hi). */
// @ts-ignore: decorator
@inline export function tapEnd(start: i32, d: i32, kn: i32, hi: i32): i32 {
  return start >= hi ? 0 : min(kn, (hi - 1 - start) / d + 1);
}

/** Taps of the window inside [lo, hi). */
// @ts-ignore: decorator
@inline export function tapCount(start: i32, d: i32, kn: i32, lo: i32, hi: i32): i32 {
  return max(0, tapEnd(start, d, kn, hi) - tapBegin(start, d, lo));
}
