// Fine-tuning through the service, over real HTTP (server/spawn.ts) on real MNIST digits
// (src/eval/mnist.ts) and the reference MLP:
//
//   - a multipart job with train / labels / validation / validation_labels, followed over SSE:
//     an `epoch` event per epoch, replay with Last-Event-ID, the job's `training` field, the
//     report's training part and an evaluation with an accuracy; the data files are gone after;
//   - bad data files → 400 with nothing stored;
//   - cancel: a running job (SQZ_TEST_EPOCH_DELAY_MS keeps it in training) and a queued one end
//     `cancelled`, with no model and no files left; a second cancel is 409, an unknown job 404;
//   - kill -9 after the first checkpoint, restart on the same data dir: the job resumes after
//     that epoch and succeeds.
import assert from "node:assert/strict";
import { encodeNpy, type Tensor } from "../src/mod.ts";
import { mnistSplit } from "../src/eval/mnist.ts";
import { readSse, type RunningServer, type SseEvent, startServer } from "../server/spawn.ts";
import { client, type Json, listDir } from "./server_client.ts";

const MLP_PATH = new URL("../models/mnist_mlp.onnx", import.meta.url);

/** Waits until `dir` is empty or gone (a finished job's files go just after its last event). */
async function waitEmpty(dir: string, timeoutMs = 10_000): Promise<string[]> {
  const until = Date.now() + timeoutMs;
  let left = await listDir(dir);
  while (left.length && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
    left = await listDir(dir);
  }
  return left;
}

function npyFile(t: Tensor, name: string): File {
  return new File([encodeNpy(t) as Uint8Array<ArrayBuffer>], name);
}

function images(x: Tensor, n: number, from = 0): Tensor {
  return {
    type: "float32",
    dims: [n, 1, 28, 28],
    data: (x.data as Float32Array).slice(from * 784, (from + n) * 784),
  };
}

interface Digits {
  x: Tensor;
  y: Tensor;
  vx: Tensor;
  vy: Tensor;
}

/** 256 training digits with int64 labels, 128 validation digits with uint8 labels. */
async function digits(): Promise<Digits> {
  const { train, test } = await mnistSplit(0);
  return {
    x: images(train.x, 256),
    y: { type: "int64", dims: [256], data: BigInt64Array.from(train.y.slice(0, 256), BigInt) },
    vx: images(test.x, 128),
    vy: { type: "uint8", dims: [128], data: test.y.slice(0, 128) },
  };
}

function form(recipe: unknown, files: Record<string, Tensor | File>): FormData {
  const f = new FormData();
  f.append("recipe", typeof recipe === "string" ? recipe : JSON.stringify(recipe));
  for (const [k, v] of Object.entries(files)) {
    f.append(k, v instanceof File ? v : npyFile(v, `${k}.npy`));
  }
  return f;
}

/** Reads the job's events until (and including) the first that `until` accepts. */
async function eventsUntil(
  api: (p: string, i?: RequestInit) => Promise<Response>,
  jobId: string,
  until: (e: SseEvent) => boolean,
): Promise<SseEvent[]> {
  return await readSse(await api(`/v1/jobs/${jobId}/events`), until);
}

Deno.test({
  name: "server: fine-tuning jobs: epochs over SSE, bad data 400, cancel, resume after kill -9",
  sanitizeResources: true,
  sanitizeOps: true,
  async fn(t) {
    const dataDir = await Deno.makeTempDir({ prefix: "sqz_ft_server_" });
    const servers: RunningServer[] = [];
    const start = async (env: Record<string, string> = {}) => {
      const s = await startServer({ dataDir, env: { SQZ_PRELOAD: "0", ...env } });
      servers.push(s);
      return s;
    };
    const d = await digits();
    try {
      // A pause before each checkpoint keeps jobs in training long enough to cancel or kill.
      let s = await start({ SQZ_TEST_EPOCH_DELAY_MS: "400" });
      let { api, json } = client(s.url);
      const mlp = await json(
        await api("/v1/models?name=mlp", { method: "POST", body: await Deno.readFile(MLP_PATH) }),
        201,
      );
      const artifacts = () => listDir(`${dataDir}/artifacts`);
      const snapshot = async () => ({
        models: (await json(await api("/v1/models"), 200)).models.length,
        jobs: (await json(await api("/v1/jobs"), 200)).jobs.length,
        artifacts: await artifacts(),
        tmp: await listDir(`${dataDir}/tmp`),
        jobDirs: await listDir(`${dataDir}/jobs`),
      });

      await t.step("a fine-tuning job: epoch events, training field, report", async () => {
        const before = await snapshot();
        const job = await json(
          await api("/v1/models/mlp/compress", {
            method: "POST",
            body: form({ method: "int8", finetune: { epochs: 2, batchSize: 32 } }, {
              train: d.x,
              labels: d.y,
              validation: d.vx,
              validation_labels: d.vy,
            }),
          }),
          202,
        );
        assert.deepEqual(job.train, {
          samples: 256,
          dims: [256, 1, 28, 28],
          type: "float32",
          bytes: encodeNpy(d.x).length,
          labels: { samples: 256, dims: [256], type: "int64", bytes: encodeNpy(d.y).length },
        });
        assert.equal(job.validation.samples, 128);
        assert.equal(job.validation.labels.type, "uint8");
        assert.equal(job.links.cancel, `/v1/jobs/${job.id}/cancel`);
        const events = await readSse(await api(`/v1/jobs/${job.id}/events`));
        const last = events[events.length - 1];
        assert.equal(last.data.state, "succeeded", JSON.stringify(last.data));
        const epochs = events.filter((e) => e.event === "epoch");
        assert.deepEqual(epochs.map((e) => e.data.epoch), [1, 2]);
        for (const e of epochs) {
          assert.equal(e.data.jobId, job.id);
          assert.equal(e.data.epochs, 2);
          assert.ok(Number.isFinite(e.data.loss) && e.data.loss > 0, JSON.stringify(e.data));
          assert.ok(e.data.valAccuracy > 0.8, JSON.stringify(e.data));
          assert.ok(e.data.lr > 0 && e.data.ms > 0);
        }
        assert.deepEqual(
          events.filter((e) => e.event === "checkpoint").map((e) => e.data.epoch),
          [1, 2],
        );
        // Progress events keep coming, and the SSE ids are the sequence numbers.
        assert.ok(events.some((e) => e.event === "progress" && e.data.stage === "fine-tuning"));
        events.forEach((e, i) => assert.equal(Number(e.id), i + 1));
        // Replay from the first epoch event: only what came after it.
        const replay = await readSse(
          await api(`/v1/jobs/${job.id}/events`, { headers: { "Last-Event-ID": epochs[0].id! } }),
        );
        assert.deepEqual(
          replay.map((e) => e.id),
          events.slice(Number(epochs[0].id)).map((e) => e.id),
        );
        assert.equal(replay.filter((e) => e.event === "epoch").length, 1);

        const done = await json(await api(`/v1/jobs/${job.id}`), 200);
        assert.equal(done.training.epochs, 2);
        assert.equal(done.training.epochsDone, 2);
        assert.equal(done.training.checkpointEpoch, 2);
        assert.equal(done.training.last.epoch, 2);
        const report = await json(await api(`/v1/jobs/${job.id}/report`), 200);
        assert.equal(report.compression.training.epochs.length, 2);
        assert.equal(report.compression.recipe.finetune.epochs, 2);
        // Labelled validation data: the evaluation has an accuracy.
        assert.ok(report.evaluation.accuracy > 0.8, JSON.stringify(report.evaluation.notes));
        assert.ok(report.evaluation.notes.some((n: string) => /validation samples/.test(n)));
        const html = await (await api(`/v1/jobs/${job.id}/report`, {
          headers: { Accept: "text/html" },
        })).text();
        assert.match(html, /Fine-tuning/);
        // The data files and the checkpoints are gone; the result model is there.
        assert.deepEqual(await waitEmpty(`${dataDir}/jobs`), []);
        const after = await snapshot();
        assert.equal(after.models, before.models + 1);
        assert.deepEqual(after.jobDirs, []);
        assert.deepEqual(after.tmp, []);
        const result = await json(await api(`/v1/models/${done.resultModelId}`), 200);
        assert.deepEqual(after.artifacts, [...before.artifacts, result.sha256].sort());
      });

      await t.step("bad training data and labels: 400, nothing stored", async () => {
        const before = await snapshot();
        const ft = "int8+ft";
        const bad = async (f: FormData, pattern: RegExp, code = "invalid_argument") => {
          const res = await api("/v1/models/mlp/compress", { method: "POST", body: f });
          const body = await json(res, 400);
          assert.equal(body.error.code, code, body.error.message);
          assert.match(body.error.message, pattern);
        };
        const floatLabels: Tensor = { type: "float32", dims: [256], data: new Float32Array(256) };
        await bad(
          form(ft, { train: d.x, labels: floatLabels }),
          /'labels' must hold integer/,
          "invalid_datatype",
        );
        const short: Tensor = { type: "int64", dims: [255], data: new BigInt64Array(255) };
        await bad(
          form(ft, { train: d.x, labels: short }),
          /255 labels, 'train' has 256/,
          "invalid_shape",
        );
        const twoD: Tensor = { type: "int32", dims: [128, 2], data: new Int32Array(256) };
        await bad(form(ft, { train: d.x, labels: twoD }), /must be 1-D/, "invalid_shape");
        const outOfRange = new Int32Array(256);
        outOfRange[7] = 10;
        await bad(
          form(ft, { train: d.x, labels: { type: "int32", dims: [256], data: outOfRange } }),
          /label 7 is 10, outside the model's 10 classes/,
        );
        const negative = BigInt64Array.from({ length: 256 }, (_, i) => i === 3 ? -1n : 0n);
        await bad(
          form(ft, { train: d.x, labels: { type: "int64", dims: [256], data: negative } }),
          /label 3 is -1/,
        );
        await bad(
          form(ft, { train: d.x, labels: new File([new Uint8Array([1, 2, 3])], "y.npy") }),
          /'labels' is not a valid \.npy file/,
        );
        await bad(
          form(ft, { train: d.x, validation: d.vx, validation_labels: d.y }),
          /'validation_labels' holds 256 labels, 'validation' has 128/,
          "invalid_shape",
        );
        await bad(form(ft, { train: d.x, validation_labels: d.vy }), /without 'validation'/);
        await bad(form(ft, { labels: d.y }), /fine-tunes: it needs training data/);
        await bad(form("int8", { train: d.x, labels: d.y }), /does not fine-tune/);
        const nan = images(d.x, 4);
        (nan.data as Float32Array)[784 * 2 + 5] = NaN;
        await bad(form(ft, { train: nan }), /non-finite value \(NaN\) in sample 2/);
        await bad(
          form(ft, { train: { type: "float32", dims: [4, 784], data: new Float32Array(4 * 784) } }),
          /'train' has dims \[4,784\]/,
        );
        const twice = form(ft, { train: d.x });
        twice.append("train", npyFile(d.x, "again.npy"));
        await bad(twice, /'train' is given twice/);
        // A JSON request cannot carry training data: a fine-tuning recipe is refused there.
        const res = await api("/v1/models/mlp/compress", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ recipe: "binary+ft" }),
        });
        assert.match((await json(res, 400)).error.message, /multipart 'train' file/);
        assert.deepEqual(await snapshot(), before);
      });

      await t.step("cancel: a running and a queued job end cancelled, nothing left", async () => {
        const before = await snapshot();
        const recipe = { method: "int8", finetune: { epochs: 50, batchSize: 32 } };
        const running = await json(
          await api("/v1/models/mlp/compress", {
            method: "POST",
            body: form(recipe, { train: d.x, labels: d.y }),
          }),
          202,
        );
        // One job at a time: this one waits behind the first.
        const queued = await json(
          await api("/v1/models/mlp/compress", {
            method: "POST",
            body: form(recipe, {
              train: images(d.x, 64),
              labels: { ...d.y, dims: [64], data: (d.y.data as BigInt64Array).slice(0, 64) },
            }),
          }),
          202,
        );
        await eventsUntil(api, running.id, (e) => e.event === "epoch");
        assert.equal((await json(await api(`/v1/jobs/${queued.id}`), 200)).state, "queued");
        assert.ok(
          (await listDir(`${dataDir}/jobs/${running.id}`)).some((f) => f.startsWith("checkpoint-")),
        );

        const q = await json(await api(`/v1/jobs/${queued.id}/cancel`, { method: "POST" }), 200);
        assert.equal(q.state, "cancelled");
        const r = await json(await api(`/v1/jobs/${running.id}/cancel`, { method: "POST" }), 200);
        assert.equal(r.state, "cancelled");
        assert.ok(
          r.training.epochsDone >= 1 && r.training.epochsDone < 50,
          JSON.stringify(r.training),
        );
        assert.equal(r.resultModelId, undefined);

        // The streams end with the cancelled state; a second cancel is 409, an unknown job 404.
        for (const id of [running.id, queued.id]) {
          const events = await readSse(await api(`/v1/jobs/${id}/events`));
          const last = events[events.length - 1];
          assert.equal(last.event, "state");
          assert.equal(last.data.state, "cancelled");
          assert.match(last.data.reason, /cancelled/);
          const again = await json(await api(`/v1/jobs/${id}/cancel`, { method: "POST" }), 409);
          assert.equal(again.error.code, "conflict");
          assert.equal(
            (await json(await api(`/v1/jobs/${id}/report`), 409)).error.code,
            "conflict",
          );
        }
        const unknown = await json(
          await api(`/v1/jobs/j_${"a".repeat(24)}/cancel`, { method: "POST" }),
          404,
        );
        assert.equal(unknown.error.code, "not_found");
        assert.equal(
          (await json(await api("/v1/jobs/nope/cancel", { method: "POST" }), 400)).error.code,
          "invalid_id",
        );
        const listed = await json(await api("/v1/jobs?state=cancelled"), 200);
        assert.deepEqual(listed.jobs.map((j: Json) => j.id).sort(), [running.id, queued.id].sort());
        // No model, no data files, no checkpoints, no temp files.
        assert.deepEqual(await snapshot(), { ...before, jobs: before.jobs + 2 });
        // The model is free again: a queued or running job no longer holds it.
        const metrics = await (await api("/metrics")).text();
        assert.match(metrics, /sqz_jobs_finished_total\{state="cancelled"\} 2/);
      });

      await t.step(
        "kill -9 after a checkpoint, restart: the job resumes after that epoch",
        async () => {
          const job = await json(
            await api("/v1/models/mlp/compress", {
              method: "POST",
              body: form({ method: "int8", finetune: { epochs: 3, batchSize: 32 } }, {
                train: d.x,
                labels: d.y,
                validation: d.vx,
              }),
            }),
            202,
          );
          // The worker pauses 400 ms before writing each checkpoint: killed right after the
          // first epoch, it has written the first checkpoint and not yet the second.
          await eventsUntil(api, job.id, (e) => e.event === "epoch");
          await s.stop("SIGKILL");
          assert.deepEqual(await listDir(`${dataDir}/jobs/${job.id}`), ["checkpoint-000001"]);

          s = await start();
          ({ api, json } = client(s.url));
          const events = await readSse(await api(`/v1/jobs/${job.id}/events`));
          const last = events[events.length - 1];
          assert.equal(last.data.state, "succeeded", JSON.stringify(last.data));
          const requeue = events.find((e, i) =>
            i > 0 && e.event === "state" && e.data.state === "queued"
          );
          assert.match(
            requeue!.data.reason,
            /restarted.*resumes from its checkpoint after epoch 1/,
          );
          assert.deepEqual(
            events.filter((e) => e.event === "resumed").map((e) => e.data.fromEpoch),
            [1],
          );
          // Epoch 1 before the kill, 2 and 3 after it: none twice.
          assert.deepEqual(events.filter((e) => e.event === "epoch").map((e) => e.data.epoch), [
            1,
            2,
            3,
          ]);
          const done = await json(await api(`/v1/jobs/${job.id}`), 200);
          assert.equal(done.attempts, 2);
          assert.equal(done.training.epochsDone, 3);
          assert.equal(done.training.resumedFromEpoch, 1);
          const report = await json(await api(`/v1/jobs/${job.id}/report`), 200);
          assert.equal(report.compression.training.resumedFromEpoch, 1);
          // The report has every epoch: the first from the checkpoint, the others run after it.
          assert.deepEqual(
            report.compression.training.epochs.map((e: Json) => e.epoch),
            [1, 2, 3],
          );
          assert.deepEqual(await waitEmpty(`${dataDir}/jobs`), []);
          assert.deepEqual(await listDir(`${dataDir}/tmp`), []);
        },
      );
      assert.equal(mlp.name, "mlp");
      assert.equal(await s.stop("SIGTERM"), 0);
    } finally {
      for (const s of servers) await s.stop();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
