// Running a model over a dataset: batches (padded to a fixed batch dim), the class scores of
// every sample, and the latency of single-sample runs.
import { ArgumentError, ModelError, ShapeError } from "../errors.ts";
import { type MemoryReport, Session } from "../session.ts";
import type { Tensor, TensorData } from "../graph/tensor.ts";
import { percentiles } from "./metrics.ts";
import { sessionOptions, type Source } from "./load.ts";
import type { Dataset, EvaluateOptions, LatencyStats } from "./types.ts";

export type Arr = TensorData & {
  subarray(begin: number, end: number): Arr;
  set(src: ArrayLike<unknown>, offset?: number): void;
};

export function checkDataset(dataset: Dataset): number {
  if (typeof dataset !== "object" || dataset === null || typeof dataset.inputs !== "object") {
    throw new ArgumentError("the dataset must be { inputs: { name: tensor }, labels? }");
  }
  const entries = Object.entries(dataset.inputs ?? {});
  if (!entries.length) throw new ArgumentError("the dataset has no inputs");
  let n = -1;
  for (const [name, t] of entries) {
    if (!t || !Array.isArray(t.dims) || !t.data || !t.dims.length) {
      throw new ArgumentError(`dataset input '${name}' must be a tensor with a batch dim`);
    }
    const count = t.dims.reduce((a, b) => a * b, 1);
    if (t.data.length !== count) {
      throw new ShapeError(
        `dataset input '${name}' has ${t.data.length} elements but dims [${t.dims}]`,
      );
    }
    if (n >= 0 && t.dims[0] !== n) {
      throw new ShapeError(
        `dataset inputs disagree on the number of samples (${n} vs ${t.dims[0]} in '${name}')`,
      );
    }
    n = t.dims[0];
  }
  if (n < 1) throw new ArgumentError("the dataset has no samples");
  const labels = dataset.labels;
  if (labels !== undefined) {
    if (!(labels instanceof Uint8Array || labels instanceof Int32Array)) {
      throw new ArgumentError("dataset labels must be a Uint8Array or an Int32Array");
    }
    if (labels.length !== n) throw new ShapeError(`${labels.length} labels for ${n} samples`);
  }
  const bs = dataset.batchSize;
  if (bs !== undefined && (!Number.isSafeInteger(bs) || bs < 1)) {
    throw new ArgumentError(`batchSize must be a positive integer, got ${bs}`);
  }
  return n;
}

/** A session and how to feed it slices of the dataset. */
export class Runner {
  /** Samples per run when the model fixes its batch dim. */
  readonly fixedBatch?: number;

  constructor(
    readonly session: Session,
    readonly inputs: Record<string, Tensor>,
    readonly n: number,
  ) {
    const names = Object.keys(inputs);
    const missing = session.inputNames.filter((m) => !names.includes(m));
    const extra = names.filter((m) => !session.inputNames.includes(m));
    if (missing.length || extra.length) {
      throw new ArgumentError(
        `the dataset's inputs (${names.join(", ")}) are not the model's ` +
          `(${session.inputNames.join(", ")})`,
      );
    }
    for (const m of session.inputMetadata) {
      const d = m.dims[0];
      if (typeof d !== "number" || d <= 0) continue;
      if (this.fixedBatch !== undefined && this.fixedBatch !== d) {
        throw new ModelError(
          `the model's inputs fix different batch sizes (${this.fixedBatch}, ${d})`,
        );
      }
      this.fixedBatch = d;
    }
  }

  /** Feeds for samples [start, start + count), padded with the last one to a fixed batch. */
  feeds(start: number, count: number): Record<string, Tensor> {
    const size = this.fixedBatch ?? count;
    if (count > size) throw new ArgumentError(`internal: ${count} samples for a batch of ${size}`);
    const out: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(this.inputs)) {
      const per = t.data.length / this.n;
      const data = t.data as Arr;
      let slice = data.subarray(start * per, (start + count) * per);
      if (size > count) {
        const padded = new (data.constructor as new (n: number) => Arr)(size * per);
        padded.set(slice);
        const last = data.subarray((start + count - 1) * per, (start + count) * per);
        for (let k = count; k < size; k++) padded.set(last, k * per);
        slice = padded;
      }
      out[name] = { type: t.type, dims: [size, ...t.dims.slice(1)], data: slice };
    }
    return out;
  }

  /** Runs samples [start, start + count); each output's rows for just those samples. */
  async run(start: number, count: number, outputs: string[]): Promise<Map<string, Arr>> {
    const feeds = this.feeds(start, count);
    const fed = feeds[Object.keys(feeds)[0]].dims[0];
    const res = await this.session.run(feeds, { outputs });
    const out = new Map<string, Arr>();
    for (const name of outputs) {
      const t = res[name];
      if (t.dims[0] !== fed) {
        throw new ShapeError(
          `output '${name}' has dims [${t.dims}]: its first dim is not the batch (${fed})`,
        );
      }
      const per = t.data.length / fed;
      out.set(name, (t.data as Arr).subarray(0, count * per));
    }
    return out;
  }

  /** Samples per step for this runner and, optionally, another that must stay aligned. */
  step(requested: number, other?: Runner): number {
    const sizes = [this.fixedBatch ?? requested, other ? other.fixedBatch ?? requested : requested];
    return Math.max(1, Math.min(...sizes));
  }
}

export interface RunResult {
  scores: Float32Array;
  classes: number;
  output: string;
  latency: LatencyStats;
  memory: MemoryReport;
  fixedBatch?: number;
}

/**
 * Reference runs kept across evaluate() calls: a search evaluates every trial against one
 * float model on one dataset, so its outputs (and latency) are computed once per dataset
 * object, output name and kernel build. Entries go when the reference or dataset object does.
 */
export class ReferenceRuns {
  // Per reference (bytes by identity, or a path): its runs by dataset object, then by key; and
  // its analyses by key.
  #byBytes = new WeakMap<object, Entry>();
  #byPath = new Map<string, Entry>();

  #entry(ref: Uint8Array | string): Entry {
    let e = typeof ref === "string" ? this.#byPath.get(ref) : this.#byBytes.get(ref);
    if (!e) {
      e = { runs: new WeakMap(), analyses: new Map() };
      if (typeof ref === "string") this.#byPath.set(ref, e);
      else this.#byBytes.set(ref, e);
    }
    return e;
  }

  get(ref: Uint8Array | string, d: Dataset, key: string): RunResult | undefined {
    return this.#entry(ref).runs.get(d)?.get(key);
  }

  set(ref: Uint8Array | string, d: Dataset, key: string, r: RunResult): void {
    const runs = this.#entry(ref).runs;
    let m = runs.get(d);
    if (!m) runs.set(d, m = new Map());
    m.set(key, r);
  }

  /** The reference's analysis (analyze.ts), kept under `key`. */
  analysis<T>(ref: Uint8Array | string, key: string): T | undefined {
    return this.#entry(ref).analyses.get(key) as T | undefined;
  }

  setAnalysis(ref: Uint8Array | string, key: string, a: unknown): void {
    this.#entry(ref).analyses.set(key, a);
  }
}

interface Entry {
  runs: WeakMap<Dataset, Map<string, RunResult>>;
  analyses: Map<string, unknown>;
}

const WARMUP_RUNS = 3;

export async function predict(
  src: Source,
  dataset: Dataset,
  n: number,
  options: EvaluateOptions,
  wantOutput?: string,
  /** Use the first output when the model has no `wantOutput` (the reference may name it apart). */
  fallback = false,
): Promise<RunResult> {
  const session = await Session.create(src.session, sessionOptions(src, { build: options.build }));
  try {
    const runner = new Runner(session, dataset.inputs, n);
    const output = wantOutput === undefined ||
        (fallback && !session.outputNames.includes(wantOutput))
      ? session.outputNames[0]
      : wantOutput;
    if (!session.outputNames.includes(output)) {
      throw new ArgumentError(
        `the ${src.what} has no output '${output}' (outputs: ${session.outputNames.join(", ")})`,
      );
    }
    const step = runner.step(dataset.batchSize ?? 64);
    let scores: Float32Array | undefined, classes = 0;
    for (let start = 0; start < n; start += step) {
      const count = Math.min(step, n - start);
      const y = (await runner.run(start, count, [output])).get(output)!;
      if (!scores) {
        classes = y.length / count;
        if (!Number.isSafeInteger(classes) || classes < 1) {
          throw new ShapeError(`the ${src.what}'s output '${output}' holds no scores`);
        }
        scores = new Float32Array(n * classes);
      } else if (y.length !== count * classes) {
        throw new ShapeError(`the ${src.what}'s output '${output}' changed size between batches`);
      }
      const dst = scores.subarray(start * classes, (start + count) * classes);
      if (y instanceof BigInt64Array || y instanceof BigUint64Array) {
        for (let i = 0; i < dst.length; i++) dst[i] = Number(y[i]);
      } else dst.set(y as ArrayLike<number>);
    }

    // Latency: the first sample alone (or padded to the fixed batch), after warm-up.
    const runs = options.latencyRuns ?? 30;
    const feeds = runner.feeds(0, 1);
    const times: number[] = [];
    // With latencyMinMs, a fast model keeps running (up to 100× the runs) until the timed runs
    // add up to that long: a median of 5 runs of 30 µs is at the mercy of one preemption.
    const minMs = runs > 0 ? options.latencyMinMs ?? 0 : 0;
    let spent = 0;
    for (
      let i = 0;
      i < (runs > 0 ? WARMUP_RUNS : 1) + runs || (spent < minMs && i < 100 * runs);
      i++
    ) {
      const t0 = performance.now();
      await session.run(feeds, { outputs: [output] });
      const dt = performance.now() - t0;
      if (i >= WARMUP_RUNS) times.push(dt), spent += dt;
    }
    const [p50, p99] = times.length ? percentiles(times, [50, 99]) : [null, null];
    return {
      scores: scores!,
      classes,
      output,
      latency: { p50Ms: p50, p99Ms: p99, runs: times.length, batch: runner.fixedBatch ?? 1 },
      memory: session.memory,
      fixedBatch: runner.fixedBatch,
    };
  } finally {
    await session.release();
  }
}
