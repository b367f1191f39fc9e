// Compression search as a service job, over real HTTP (server/spawn.ts) on real MNIST digits
// and the reference MLP (3 Gemm layers):
//
//   - bad requests → 400 with nothing stored (budget outside its range, unknown metric,
//     strategy or objective, trials ≤ 0 or over SQZ_MAX_SEARCH_TRIALS, concurrency, a space
//     naming unknown layers, missing validation data or labels, bad labels, a JSON body);
//   - cancel of a running search (in its baselines): `cancelled`, no model, no files left;
//   - kill -9 after ≥ 2 trials are stored, restart on the same data dir: the job resumes with
//     them kept (a `resumed` event, the requeue reason), completes, and ends with the same
//     Pareto front as an uninterrupted run with the same seed; the best model is registered
//     with parentId; Last-Event-ID replay of `trial` events;
//   - a space that leaves no feasible candidate: the job succeeds with `best: null`, an
//     explanation and no model.
import assert from "node:assert/strict";
import { encodeNpy, type Tensor } from "../src/mod.ts";
import { mnistSplit } from "../src/eval/mnist.ts";
import { readSse, type RunningServer, type SseEvent, startServer } from "../server/spawn.ts";
import { client, type Json, listDir } from "./server_client.ts";

const MLP_PATH = new URL("../models/mnist_mlp.onnx", import.meta.url);

async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function npyFile(t: Tensor, name: string): File {
  return new File([encodeNpy(t) as Uint8Array<ArrayBuffer>], name);
}

/** 96 validation digits (float32 [N, 1, 28, 28]) with int64 labels. */
async function digits(): Promise<{ vx: Tensor; vy: Tensor }> {
  const { test } = await mnistSplit(0);
  const n = 96;
  return {
    vx: {
      type: "float32",
      dims: [n, 1, 28, 28],
      data: (test.x.data as Float32Array).slice(0, n * 784),
    },
    vy: { type: "int64", dims: [n], data: BigInt64Array.from(test.y.slice(0, n), BigInt) },
  };
}

function searchForm(options: Record<string, unknown>, files: Record<string, Tensor | File>) {
  const f = new FormData();
  f.append("options", JSON.stringify(options));
  for (const [k, v] of Object.entries(files)) {
    f.append(k, v instanceof File ? v : npyFile(v, `${k}.npy`));
  }
  return f;
}

/** Small, deterministic searches: objectives without latency (measured, so it varies). */
const BASE = {
  budget: { metric: "accuracy", maxDrop: 0.05 },
  objectives: ["size", "macs"],
  strategy: "random",
  trials: 5,
  seed: 7,
  space: { methods: ["int8-dynamic", "int4", "prune"] },
};

/** The Pareto front as comparable data (ids, recipes and the deterministic metrics). */
// deno-lint-ignore no-explicit-any
const front = (s: any) =>
  // deno-lint-ignore no-explicit-any
  s.pareto.map((t: any) => ({
    id: t.id,
    recipe: t.recipe,
    size: t.metrics.size,
    macs: t.metrics.macs,
    accuracy: t.metrics.accuracy,
  }));

Deno.test({
  name: "server: search jobs: 400s, cancel, kill -9 and resume, no feasible model",
  sanitizeResources: true,
  sanitizeOps: true,
  async fn(t) {
    const dataDir = await Deno.makeTempDir({ prefix: "sqz_search_server_" });
    const servers: RunningServer[] = [];
    const start = async (env: Record<string, string> = {}) => {
      const s = await startServer({
        dataDir,
        env: { SQZ_PRELOAD: "0", SQZ_MAX_SEARCH_TRIALS: "50", ...env },
      });
      servers.push(s);
      return s;
    };
    const d = await digits();
    const data = { validation: d.vx, validation_labels: d.vy };
    try {
      // A pause after each stored trial keeps a search running long enough to cancel or kill.
      let s = await start({ SQZ_TEST_TRIAL_DELAY_MS: "700" });
      let { api, json } = client(s.url);
      const mlp = await json(
        await api("/v1/models?name=mlp", { method: "POST", body: await Deno.readFile(MLP_PATH) }),
        201,
      );

      await t.step("bad requests are 400 with nothing stored", async () => {
        const before = {
          artifacts: await listDir(`${dataDir}/artifacts`),
          jobs: (await json(await api("/v1/jobs"), 200)).jobs.length,
        };
        const bad = async (
          body: FormData | string,
          pattern: RegExp,
          code = "invalid_argument",
        ) => {
          const res = await api("/v1/models/mlp/search", {
            method: "POST",
            body,
            ...(typeof body === "string"
              ? { headers: { "Content-Type": "application/json" } }
              : {}),
          });
          const text = await res.text();
          assert.equal(res.status, 400, text);
          const e = JSON.parse(text).error;
          assert.equal(e.code, code, text);
          assert.match(e.message, pattern);
        };
        const opts = (o: Record<string, unknown>) => ({ ...BASE, ...o });
        await bad(JSON.stringify(BASE), /needs validation data.*'validation'/);
        await bad(searchForm(opts({ budget: undefined }), data), /budget is required/);
        await bad(
          searchForm(opts({ budget: { metric: "accuracy", maxDrop: 1.5 } }), data),
          /maxDrop must be in \[0, 1\].*1\.5/,
        );
        await bad(
          searchForm(opts({ budget: { metric: "agreement", maxDrop: -0.1 } }), data),
          /maxDrop must be in \[0, 1\]/,
        );
        await bad(
          searchForm(opts({ budget: { metric: "kl", maxDrop: -1 } }), data),
          /mean KL\) must be ≥ 0/,
        );
        await bad(
          searchForm(opts({ budget: { metric: "f1", maxDrop: 0.01 } }), data),
          /unknown budget metric "f1"/,
        );
        await bad(searchForm(opts({ strategy: "annealing" }), data), /unknown strategy/);
        await bad(searchForm(opts({ objectives: ["size", "speed"] }), data), /unknown objective/);
        await bad(searchForm(opts({ objectives: [] }), data), /non-empty list/);
        await bad(searchForm(opts({ trials: 0 }), data), /'trials' must be in \[1, 50\]/);
        await bad(searchForm(opts({ trials: 51 }), data), /SQZ_MAX_SEARCH_TRIALS = 50/);
        await bad(searchForm(opts({ trials: 2.5 }), data), /'trials' must be an integer/);
        await bad(searchForm(opts({ concurrency: 0 }), data), /'concurrency' must be in/);
        await bad(
          searchForm(opts({ space: { layers: { conv9: ["float", "int8"] } } }), data),
          /space\.layers: 'conv9' match no node/,
        );
        await bad(
          searchForm(opts({ space: { methods: ["int3"] } }), data),
          /unknown method "int3"/,
        );
        await bad(searchForm(opts({ bogus: 1 }), data), /unknown field 'bogus'/);
        await bad(searchForm(BASE, { validation: d.vx }), /needs 'validation_labels'/);
        await bad(searchForm(BASE, {}), /needs validation data/);
        await bad(
          searchForm(BASE, {
            validation: d.vx,
            validation_labels: { type: "int64", dims: [3], data: new BigInt64Array(3) },
          }),
          /holds 3 labels/,
          "invalid_shape",
        );
        await bad(
          searchForm(BASE, { ...data, validation: new File(["not npy"], "v.npy") }),
          /'validation' is not a valid \.npy/,
        );
        // Separate text fields work too (and are checked the same way).
        const f = new FormData();
        f.append("budget", JSON.stringify({ metric: "accuracy", maxDrop: 2 }));
        f.append("objectives", "size,latency");
        f.append("validation", npyFile(d.vx, "v.npy"));
        f.append("validation_labels", npyFile(d.vy, "y.npy"));
        await bad(f, /maxDrop must be in \[0, 1\]/);
        assert.deepEqual(await listDir(`${dataDir}/artifacts`), before.artifacts);
        assert.equal((await json(await api("/v1/jobs"), 200)).jobs.length, before.jobs);
        // The route is in the OpenAPI document, with its schemas.
        const doc = await json(await api("/openapi.json"), 200);
        assert.ok(doc.paths["/v1/models/{id}/search"].post);
        assert.ok(doc.components.schemas.SearchOptions && doc.components.schemas.SearchSummary);
      });

      await t.step("cancel a running search", async () => {
        const job = await json(
          await api("/v1/models/mlp/search", { method: "POST", body: searchForm(BASE, data) }),
          202,
        );
        assert.equal(job.kind, "search");
        assert.equal(job.search.strategy, "random");
        // Cancelled while search() runs its baselines: its AbortSignal stops it.
        await readSse(
          await api(`/v1/jobs/${job.id}/events`),
          (e) => e.event === "progress" && e.data.stage === "baselines",
        );
        const res = await json(await api(`/v1/jobs/${job.id}/cancel`, { method: "POST" }), 200);
        assert.equal(res.state, "cancelled");
        assert.equal(res.resultModelId, undefined);
        assert.deepEqual(await listDir(`${dataDir}/jobs/${job.id}`), []); // cancel answers after
        assert.equal((await json(await api("/v1/models"), 200)).models.length, 1);
      });

      let killed: Json = {};
      let storedBeforeKill: Json[] = [];
      await t.step("kill -9 after two stored trials", async () => {
        killed = await json(
          await api("/v1/models/mlp/search", {
            method: "POST",
            body: searchForm({ ...BASE, name: "mlp-best" }, data),
          }),
          202,
        );
        await readSse(
          await api(`/v1/jobs/${killed.id}/events`),
          (() => {
            let n = 0;
            return (e: SseEvent) => e.event === "trial" && ++n >= 2;
          })(),
        );
        const dir = `${dataDir}/jobs/${killed.id}`;
        await waitFor("two stored trials", async () => {
          const files = (await listDir(dir)).filter((f) => /^trial-\d+\.json$/.test(f));
          return files.length >= 2 ? files : undefined;
        });
        await s.stop("SIGKILL");
        const files = (await listDir(dir)).filter((f) => /^trial-\d+\.json$/.test(f));
        storedBeforeKill = await Promise.all(
          files.map(async (f) => JSON.parse(await Deno.readTextFile(`${dir}/${f}`))),
        );
        assert.ok(storedBeforeKill.length >= 2);
      });

      s = await start();
      ({ api, json } = client(s.url));
      let resumedSummary: Json = {};
      await t.step("restart: the search resumes with its trials kept and completes", async () => {
        const events = await readSse(await api(`/v1/jobs/${killed.id}/events`));
        const states = events.filter((e) => e.event === "state").map((e) => e.data.state);
        assert.deepEqual(states, ["queued", "running", "queued", "running", "succeeded"]);
        const requeue = events.filter((e) => e.event === "state")[2];
        assert.match(requeue.data.reason, /restarted.*finished trials? kept/);
        const resumed = events.find((e) => e.event === "resumed");
        assert.ok(resumed, "a resumed event");
        assert.ok(resumed!.data.trials >= storedBeforeKill.length);
        // One event per trial (no repeats of the kept ones), each with what a client shows.
        const trials = events.filter((e) => e.event === "trial");
        const keys = trials.map((e) => `${e.data.id}:${e.data.hash}`);
        assert.equal(new Set(keys).size, keys.length, "no trial event is repeated");
        for (const e of trials) {
          assert.equal(typeof e.data.id, "number");
          assert.ok(e.data.recipe !== undefined && e.data.metrics && "feasible" in e.data);
          assert.ok(e.data.total >= 1);
        }
        const job = await json(await api(`/v1/jobs/${killed.id}`), 200);
        assert.equal(job.state, "succeeded");
        assert.equal(job.attempts, 2);
        assert.ok(job.result.explanation.length > 0);
        assert.ok(job.result.best, JSON.stringify(job.result));
        const report = await json(await api(`/v1/jobs/${killed.id}/report`), 200);
        resumedSummary = report.search;
        assert.equal(resumedSummary.resumedTrials, resumed!.data.trials);
        // Every trial stored before the kill is in the result.
        const hashes = new Set(resumedSummary.trials.map((t: Json) => t.hash));
        for (const t of storedBeforeKill) assert.ok(hashes.has(t.hash), `trial ${t.id} kept`);
        // The best model is registered under its name, with the searched model as parent.
        const best = await json(await api(`/v1/models/${job.resultModelId}`), 200);
        assert.equal(best.parentId, mlp.id);
        assert.equal(best.jobId, killed.id);
        assert.equal(best.name, "mlp-best");
        assert.ok(report.compression?.layers?.length);
        // Replay from a Last-Event-ID: only what came after it.
        const third = trials[Math.min(2, trials.length - 1)];
        const replay = await readSse(
          await api(`/v1/jobs/${killed.id}/events`, { headers: { "Last-Event-ID": third.id! } }),
        );
        assert.equal(Number(replay[0].id), Number(third.id) + 1);
        assert.deepEqual(
          replay.filter((e) => e.event === "trial").map((e) => e.data.id),
          trials.filter((e) => Number(e.id) > Number(third.id)).map((e) => e.data.id),
        );
        // The finished job's trial files go just after its last event.
        await waitFor("the job's files removed", async () => {
          const left = await listDir(`${dataDir}/jobs/${killed.id}`);
          return left.length ? undefined : true;
        }, 10_000);
      });

      await t.step("an uninterrupted run with the same seed: the same Pareto front", async () => {
        const job = await json(
          await api("/v1/models/mlp/search", { method: "POST", body: searchForm(BASE, data) }),
          202,
        );
        const events = await readSse(await api(`/v1/jobs/${job.id}/events`));
        assert.equal(events[events.length - 1].data.state, "succeeded");
        const report = await json(await api(`/v1/jobs/${job.id}/report`), 200);
        assert.deepEqual(front(report.search), front(resumedSummary));
      });

      await t.step("no feasible candidate: succeeded, best null, no model", async () => {
        const models = (await json(await api("/v1/models"), 200)).models.length;
        const job = await json(
          await api("/v1/models/mlp/search", {
            method: "POST",
            body: searchForm({
              ...BASE,
              budget: { metric: "accuracy", maxDrop: 0 },
              space: { layers: { Gemm: ["binary"] } },
              trials: 2,
            }, data),
          }),
          202,
        );
        const events = await readSse(await api(`/v1/jobs/${job.id}/events`));
        const last = events[events.length - 1];
        assert.equal(last.data.state, "succeeded", JSON.stringify(last.data));
        assert.equal(last.data.best, null);
        const done = await json(await api(`/v1/jobs/${job.id}`), 200);
        assert.equal(done.result.best, null);
        assert.equal(done.resultModelId, undefined);
        assert.ok(done.result.explanation.length > 0);
        assert.equal((await json(await api("/v1/models"), 200)).models.length, models);
        const report = await json(await api(`/v1/jobs/${job.id}/report`), 200);
        assert.equal(report.search.best, null);
        assert.equal(report.compression, undefined);
      });
      assert.equal(await s.stop("SIGTERM"), 0);
    } finally {
      for (const s of servers) await s.stop("SIGKILL");
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
