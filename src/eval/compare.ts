// The side-by-side part: both models fed the same samples, each layer's output compared with
// the reference's (SQNR over the whole dataset).
import { Session } from "../session.ts";
import { sqnrFromSums, sqnrSums } from "./metrics.ts";
import { sessionOptions, type Source } from "./load.ts";
import { Runner } from "./run.ts";
import type { Dataset, EvaluateOptions } from "./types.ts";

export interface LayerPair {
  name: string;
  refValue: string;
  value: string;
}

/** Σ ref² and Σ (ref − x)² per layer over the whole dataset, both models fed the same samples. */
export async function layerSqnr(
  ref: Source,
  model: Source,
  pairs: readonly LayerPair[],
  dataset: Dataset,
  n: number,
  options: EvaluateOptions,
  notes: string[],
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (!pairs.length) return out;
  const refSession = await Session.create(
    ref.session,
    sessionOptions(ref, { build: options.build, extraOutputs: pairs.map((p) => p.refValue) }),
  );
  let session: Session | undefined;
  try {
    session = await Session.create(
      model.session,
      sessionOptions(model, {
        build: options.build,
        extraOutputs: [...new Set(pairs.map((p) => p.value))],
      }),
    );
    const rr = new Runner(refSession, dataset.inputs, n),
      mr = new Runner(session, dataset.inputs, n);
    const step = rr.step(dataset.batchSize ?? 64, mr);
    const sums = pairs.map(() => ({ signal: 0, noise: 0, ok: true }));
    for (let start = 0; start < n; start += step) {
      const count = Math.min(step, n - start);
      const a = await rr.run(start, count, pairs.map((p) => p.refValue));
      const b = await mr.run(start, count, [...new Set(pairs.map((p) => p.value))]);
      pairs.forEach((p, i) => {
        const s = sums[i];
        if (!s.ok) return;
        const x = a.get(p.refValue)!, y = b.get(p.value)!;
        if (x.length !== y.length || x instanceof BigInt64Array || y instanceof BigInt64Array) {
          s.ok = false;
          notes.push(
            `layer ${p.name}: '${p.value}' has ${y.length / count} values per sample, the ` +
              `reference's '${p.refValue}' ${x.length / count}: not compared`,
          );
          return;
        }
        const d = sqnrSums(x as ArrayLike<number>, y as ArrayLike<number>);
        s.signal += d.signal;
        s.noise += d.noise;
      });
    }
    pairs.forEach((p, i) => {
      if (sums[i].ok) out.set(p.name, sqnrFromSums(sums[i].signal, sums[i].noise));
    });
  } finally {
    await refSession.release();
    await session?.release();
  }
  return out;
}
