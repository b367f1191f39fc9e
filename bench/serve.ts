// `deno task bench serve [--json] [--quick]`: the HTTP service under load on loopback. Starts
// the server (server/main.ts as a subprocess, temporary data dir, request logs off) — or uses
// the one at $SQZ_SERVE_URL — then runs a bounded load generator of its own: C concurrent
// fetch loops, each sending KServe v2 JSON inference requests (one real MNIST test digit per
// request, 256 distinct digits in turn) to the preloaded CNN (`mnist`) and waiting for the
// answer before sending the next. 30 s per level (--quick: 5 s) at 1, 8 and 32 clients, plus 8
// clients while compression jobs run back to back (they run in a Worker: this row shows what
// they cost the inference path). Reports requests/s, p50/p99 latency (send to parsed
// response), errors, and the share of answers whose argmax is the digit's label.
import { mnistSplit } from "../src/eval/mnist.ts";
import { type RunningServer, startServer } from "../server/spawn.ts";
import { table } from "./timing.ts";

const MODEL = "mnist";
const DISTINCT = 256;

interface Row {
  suite: "serve";
  model: string;
  protocol: string;
  concurrency: number;
  background: string;
  seconds: number;
  requests: number;
  rps: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  accuracy: number;
  jobs?: number;
}

function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

export async function benchServe(opts: { json: boolean; quick: boolean }): Promise<void> {
  const seconds = opts.quick ? 5 : 30;
  const { test } = await mnistSplit(0);
  const bodies: string[] = [], labels: number[] = [];
  for (let i = 0; i < DISTINCT; i++) {
    const px = Array.from(test.x.data.subarray(i * 784, (i + 1) * 784));
    bodies.push(JSON.stringify({
      inputs: [{ name: "input", shape: [1, 1, 28, 28], datatype: "FP32", data: px }],
    }));
    labels.push(test.y[i]);
  }

  const external = Deno.env.get("SQZ_SERVE_URL");
  let server: RunningServer | undefined, dataDir: string | undefined;
  if (!external) {
    dataDir = await Deno.makeTempDir({ prefix: "sqz_bench_serve_" });
    server = await startServer({ dataDir, env: { SQZ_LOG: "off" } });
  }
  const base = external ?? server!.url;
  const key = Deno.env.get("SQZ_SERVE_KEY");
  const headers: Record<string, string> = {
    "Content-Type": "application/json",
    ...(key ? { Authorization: `Bearer ${key}` } : {}),
  };
  const url = `${base}/v2/models/${MODEL}/infer`;

  async function once(i: number): Promise<{ ok: boolean; right: boolean }> {
    const res = await fetch(url, { method: "POST", headers, body: bodies[i] });
    if (res.status !== 200) {
      await res.body?.cancel();
      return { ok: false, right: false };
    }
    const out = await res.json();
    const logits: number[] = out.outputs[0].data;
    let best = 0;
    for (let k = 1; k < logits.length; k++) if (logits[k] > logits[best]) best = k;
    return { ok: true, right: best === labels[i] };
  }

  /** Compression jobs one after another until `end`; returns how many finished. */
  async function jobsUntil(end: number): Promise<number> {
    let done = 0;
    while (performance.now() < end) {
      const res = await fetch(`${base}/v1/models/${MODEL}/compress`, {
        method: "POST",
        headers,
        body: JSON.stringify({ recipe: "int8" }),
      });
      if (res.status !== 202) throw new Error(`compress: ${res.status} ${await res.text()}`);
      const { id } = await res.json();
      for (;;) {
        await new Promise((r) => setTimeout(r, 100));
        const j = await (await fetch(`${base}/v1/jobs/${id}`, { headers })).json();
        if (j.state === "succeeded" || j.state === "failed") break;
      }
      done++;
    }
    return done;
  }

  async function level(concurrency: number, withJobs: boolean): Promise<Row> {
    const latencies: number[] = [];
    let errors = 0, right = 0, next = 0;
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    const jobs = withJobs ? jobsUntil(end) : Promise.resolve(undefined);
    const loop = async () => {
      while (performance.now() < end) {
        const i = next++ % DISTINCT;
        const s = performance.now();
        try {
          const r = await once(i);
          if (!r.ok) {
            errors++;
            continue;
          }
          latencies.push(performance.now() - s);
          if (r.right) right++;
        } catch {
          errors++;
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, loop));
    const elapsed = (performance.now() - t0) / 1000;
    const jobCount = await jobs;
    latencies.sort((a, b) => a - b);
    return {
      suite: "serve",
      model: "mnist_cnn",
      protocol: "v2-json",
      concurrency,
      background: withJobs ? "compression jobs" : "none",
      seconds: round(elapsed, 2),
      requests: latencies.length,
      rps: round(latencies.length / elapsed, 1),
      p50_ms: round(quantile(latencies, 0.5)),
      p99_ms: round(quantile(latencies, 0.99)),
      errors,
      accuracy: round(right / Math.max(latencies.length, 1), 4),
      ...(jobCount !== undefined ? { jobs: jobCount } : {}),
    };
  }

  const rows: Row[] = [];
  try {
    // Warm-up: the session is loaded and the arena planned; connections are open.
    for (let i = 0; i < 200; i++) await once(i % DISTINCT);
    for (const [c, jobs] of [[1, false], [8, false], [32, false], [8, true]] as const) {
      const row = await level(c, jobs);
      rows.push(row);
      if (opts.json) console.log(JSON.stringify(row));
      else {
        console.error(
          `serve: ${c} client(s)${
            jobs ? " + jobs" : ""
          }: ${row.rps} req/s, p50 ${row.p50_ms} ms, ` +
            `p99 ${row.p99_ms} ms, ${row.errors} errors`,
        );
      }
    }
  } finally {
    await server?.stop("SIGTERM");
    if (dataDir) await Deno.remove(dataDir, { recursive: true });
  }
  if (!opts.json) {
    console.log(
      table(
        ["clients", "background", "req/s", "p50 ms", "p99 ms", "errors", "accuracy"],
        rows.map((r) => [
          String(r.concurrency),
          r.background + (r.jobs !== undefined ? ` (${r.jobs} done)` : ""),
          r.rps.toFixed(1),
          r.p50_ms.toFixed(2),
          r.p99_ms.toFixed(2),
          String(r.errors),
          `${(r.accuracy * 100).toFixed(1)}%`,
        ]),
      ),
    );
    console.log();
    console.log("| clients | background | req/s | p50 ms | p99 ms | errors |");
    console.log("|---|---|---|---|---|---|");
    for (const r of rows) {
      console.log(
        `| ${r.concurrency} | ${r.background} | ${r.rps.toFixed(0)} | ${r.p50_ms.toFixed(2)} | ${
          r.p99_ms.toFixed(2)
        } | ${r.errors} |`,
      );
    }
  }
}
