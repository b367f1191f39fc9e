// Prometheus metrics, rendered in the text exposition format (version 0.0.4) without a client
// library: counters, gauges (set, or read at scrape time), and histograms with cumulative
// `le` buckets, `_sum` and `_count`.
//
// Label values are bounded: `route` is the route pattern (`/v2/models/:name/infer`, never the
// path), `model` is a model id the server knows, `status` an HTTP status.

type Labels = Record<string, string>;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function fmtLabels(names: readonly string[], values: readonly string[], extra = ""): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i])}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(",")}}` : "";
}

function fmtNumber(v: number): string {
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  if (Number.isNaN(v)) return "NaN";
  return String(v);
}

abstract class Metric {
  constructor(readonly name: string, readonly help: string, readonly labelNames: string[]) {}
  abstract readonly type: string;
  abstract samples(): string[];

  protected key(labels: Labels): string[] {
    return this.labelNames.map((n) => labels[n] ?? "");
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    lines.push(...this.samples());
    return lines.join("\n");
  }
}

export class Counter extends Metric {
  readonly type = "counter";
  #values = new Map<string, { labels: string[]; value: number }>();

  inc(labels: Labels = {}, by = 1): void {
    const values = this.key(labels);
    const k = JSON.stringify(values);
    const e = this.#values.get(k);
    if (e) e.value += by;
    else this.#values.set(k, { labels: values, value: by });
  }

  get(labels: Labels = {}): number {
    return this.#values.get(JSON.stringify(this.key(labels)))?.value ?? 0;
  }

  /** Drops every series whose `label` has `value` (e.g. a deleted model's). */
  forget(label: string, value: string): void {
    const i = this.labelNames.indexOf(label);
    for (const [k, e] of this.#values) if (e.labels[i] === value) this.#values.delete(k);
  }

  samples(): string[] {
    return [...this.#values.values()].map((e) =>
      `${this.name}${fmtLabels(this.labelNames, e.labels)} ${fmtNumber(e.value)}`
    );
  }
}

export class Gauge extends Metric {
  readonly type = "gauge";
  #values = new Map<string, { labels: string[]; value: number }>();

  constructor(
    name: string,
    help: string,
    labelNames: string[],
    /** Read at scrape time instead of set values. */
    private readonly collect?: () => [Labels, number][],
  ) {
    super(name, help, labelNames);
  }

  set(labels: Labels, value: number): void {
    const values = this.key(labels);
    this.#values.set(JSON.stringify(values), { labels: values, value });
  }

  samples(): string[] {
    const entries = this.collect
      ? this.collect().map(([l, value]) => ({ labels: this.key(l), value }))
      : [...this.#values.values()];
    return entries.map((e) =>
      `${this.name}${fmtLabels(this.labelNames, e.labels)} ${fmtNumber(e.value)}`
    );
  }
}

export class Histogram extends Metric {
  readonly type = "histogram";
  #series = new Map<string, { labels: string[]; counts: number[]; sum: number; count: number }>();

  constructor(name: string, help: string, labelNames: string[], readonly buckets: number[]) {
    super(name, help, labelNames);
    this.buckets = [...buckets].sort((a, b) => a - b);
  }

  observe(labels: Labels, value: number): void {
    const values = this.key(labels);
    const k = JSON.stringify(values);
    let s = this.#series.get(k);
    if (!s) {
      s = { labels: values, counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.#series.set(k, s);
    }
    // Per-bucket counts here; render() makes them cumulative.
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i]++;
    s.sum += value;
    s.count++;
  }

  count(labels: Labels = {}): number {
    return this.#series.get(JSON.stringify(this.key(labels)))?.count ?? 0;
  }

  forget(label: string, value: string): void {
    const i = this.labelNames.indexOf(label);
    for (const [k, e] of this.#series) if (e.labels[i] === value) this.#series.delete(k);
  }

  samples(): string[] {
    const out: string[] = [];
    for (const s of this.#series.values()) {
      let cum = 0;
      this.buckets.forEach((b, i) => {
        cum += s.counts[i];
        out.push(
          `${this.name}_bucket${
            fmtLabels(this.labelNames, s.labels, `le="${fmtNumber(b)}"`)
          } ${cum}`,
        );
      });
      out.push(
        `${this.name}_bucket${fmtLabels(this.labelNames, s.labels, 'le="+Inf"')} ${s.count}`,
      );
      out.push(`${this.name}_sum${fmtLabels(this.labelNames, s.labels)} ${fmtNumber(s.sum)}`);
      out.push(`${this.name}_count${fmtLabels(this.labelNames, s.labels)} ${s.count}`);
    }
    return out;
  }
}

export class Registry {
  #metrics: Metric[] = [];

  add<M extends Metric>(m: M): M {
    if (this.#metrics.some((x) => x.name === m.name)) {
      throw new Error(`metric '${m.name}' registered twice`);
    }
    this.#metrics.push(m);
    return m;
  }

  render(): string {
    return this.#metrics.map((m) => m.render()).join("\n") + "\n";
  }
}

/** Latency buckets in seconds: 0.5 ms to 60 s. */
export const LATENCY_BUCKETS = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
];
/** Job duration buckets in seconds: 1 s to 1 h. */
export const JOB_BUCKETS = [1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

/** The service's metrics. Gauges that read live state are registered by their owners. */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests = this.registry.add(
    new Counter("sqz_http_requests_total", "HTTP requests by route pattern, method and status.", [
      "method",
      "route",
      "status",
      "model",
    ]),
  );
  readonly requestDuration = this.registry.add(
    new Histogram(
      "sqz_http_request_duration_seconds",
      "HTTP request latency (to the response headers) by route pattern and model.",
      ["method", "route", "model"],
      LATENCY_BUCKETS,
    ),
  );
  readonly inferDuration = this.registry.add(
    new Histogram(
      "sqz_inference_duration_seconds",
      "Model execution time of v2 inference requests (Session.run), by model.",
      ["model"],
      LATENCY_BUCKETS,
    ),
  );
  readonly inferRequests = this.registry.add(
    new Counter("sqz_inference_requests_total", "v2 inference requests by model and outcome.", [
      "model",
      "outcome",
    ]),
  );
  readonly jobDuration = this.registry.add(
    new Histogram(
      "sqz_job_duration_seconds",
      "Compression job run time (start to finish of the last attempt) by final state.",
      ["state"],
      JOB_BUCKETS,
    ),
  );
  readonly jobsFinished = this.registry.add(
    new Counter("sqz_jobs_finished_total", "Compression jobs finished, by final state.", [
      "state",
    ]),
  );
  readonly sessionEvictions = this.registry.add(
    new Counter(
      "sqz_session_cache_evictions_total",
      "Inference sessions evicted from the cache to stay within the memory budget.",
      [],
    ),
  );
  readonly sessionLoads = this.registry.add(
    new Counter("sqz_session_loads_total", "Inference sessions created (cache misses).", []),
  );
  readonly startTime = Date.now() / 1000;
  /** Deleted models (ids are never reused): their series must not be made again. */
  readonly #forgotten = new Set<string>();

  constructor() {
    this.registry.add(
      new Gauge(
        "process_start_time_seconds",
        "Start time of the process since the Unix epoch in seconds.",
        [],
        () => [[{}, this.startTime]],
      ),
    );
    this.registry.add(
      new Gauge("process_resident_memory_bytes", "Resident memory size in bytes.", [], () => [
        [{}, Deno.memoryUsage().rss],
      ]),
    );
  }

  /** A deleted model's id: a request that was under way when it went must not label with it. */
  isForgotten(id: string): boolean {
    return this.#forgotten.has(id);
  }

  /** Forgets a deleted model's series. */
  forgetModel(id: string): void {
    this.#forgotten.add(id);
    this.requests.forget("model", id);
    this.requestDuration.forget("model", id);
    this.inferDuration.forget("model", id);
    this.inferRequests.forget("model", id);
  }
}
