// Timing for benchmarks: warm up until the JIT has tiered up, then time every implementation
// in interleaved rounds and take medians. Absolute times on a shared 2-core machine are noisy;
// the suites report ratios measured in the same process.
export interface Timing {
  median_ms: number;
  runs: number;
}

/** Prints rows as an aligned text table. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells
    .map((r, j) => {
      const line = r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(
        "  ",
      );
      return j === 0 ? `${line}\n${widths.map((w) => "-".repeat(w)).join("  ")}` : line;
    })
    .join("\n");
}

/**
 * Times several implementations of the same problem in interleaved rounds (each round runs
 * every implementation once, in a rotating order), so that a slow phase of a shared machine
 * hits all of them alike and their ratios stay meaningful. Returns one Timing per entry.
 */
export async function measureInterleaved(
  fns: (() => void | Promise<void>)[],
  { minRounds = 7, maxRounds = 60, budgetMs = 4000, warmupMs = 300 } = {},
): Promise<Timing[]> {
  for (const fn of fns) {
    const w0 = performance.now();
    for (let i = 0; i < 3 || performance.now() - w0 < warmupMs; i++) await fn();
  }
  const samples: number[][] = fns.map(() => []);
  const t0 = performance.now();
  for (
    let round = 0;
    round < minRounds || (round < maxRounds && performance.now() - t0 < budgetMs);
    round++
  ) {
    for (let j = 0; j < fns.length; j++) {
      const i = (j + round) % fns.length;
      const s = performance.now();
      await fns[i]();
      samples[i].push(performance.now() - s);
    }
  }
  return samples.map((times) => {
    times.sort((a, b) => a - b);
    const mid = times.length >> 1;
    const median = times.length % 2 ? times[mid] : (times[mid - 1] + times[mid]) / 2;
    return { median_ms: median, runs: times.length };
  });
}
