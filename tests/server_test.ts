// The sqz service end to end over real HTTP on loopback: the server runs as a subprocess
// (server/spawn.ts: PORT=0, a temporary data dir, API keys set), and every check goes through
// fetch. Covered: API keys; upload (raw and multipart) validated by the engine; a compression
// job with calibration data followed live over SSE to completion; the report (JSON and HTML);
// KServe v2 inference (JSON, nested data, output selection, the binary extension) checked
// value for value against Session.run in-process on the same bytes; bad input of every kind →
// its 4xx and nothing stored; deletes; metrics, OpenAPI and docs; request logs without tensor
// data; graceful shutdown on SIGTERM.
import assert from "node:assert/strict";
import { ArgumentError, encodeNpy, Session, type Tensor } from "../src/mod.ts";
import { DataType, makeModel, node, tensorFromArray, valueInfo } from "../src/onnx/proto.ts";
import { rng } from "./util.ts";
import { readSse, type RunningServer, startServer, trickle, waitForLog } from "../server/spawn.ts";
import { loadConfig } from "../server/config.ts";
import { keyMatches } from "../server/auth.ts";
import { SessionCache } from "../server/sessions.ts";
import { Histogram, ServerMetrics } from "../server/metrics.ts";
import { buildApp, openDeps } from "../server/app.ts";
import { Logger } from "../server/log.ts";
import { OPENAPI } from "../server/openapi.ts";
import { type Json, listDir } from "./server_client.ts";

const KEY = "test-key-0123456789";
const OTHER_KEY = "second-key-abcdefgh";
const MLP_PATH = new URL("../models/mnist_mlp.onnx", import.meta.url);
const MODEL_ID_RE = /^m_[a-z2-7]{24}$/;
const JOB_ID_RE = /^j_[a-z2-7]{24}$/;

/** A tiny two-input model: sum = a + b (INT64), gt = a > b (BOOL). */
function tinyModel(): Uint8Array {
  return makeModel({
    nodes: [
      node("Add", ["a", "b"], ["sum"], {}, "add"),
      node("Greater", ["a", "b"], ["gt"], {}, "gt"),
    ],
    inputs: [valueInfo("a", DataType.INT64, [2, 3]), valueInfo("b", DataType.INT64, [2, 3])],
    outputs: [valueInfo("sum", DataType.INT64, [2, 3]), valueInfo("gt", DataType.BOOL, [2, 3])],
  });
}

/** y = x · W with W [64, 32] in the external data file `weights/w.bin` (bytes 16…). */
function externalModel(): { model: Uint8Array; file: Uint8Array; w: Float32Array } {
  const w = Float32Array.from({ length: 64 * 32 }, rng(11));
  const file = new Uint8Array(16 + w.byteLength);
  file.set(new Uint8Array(w.buffer), 16);
  const t = tensorFromArray("W", DataType.FLOAT, [64, 32], w);
  t.rawData = undefined;
  t.dataLocation = 1;
  t.externalData = [
    { key: "location", value: "weights/w.bin" },
    { key: "offset", value: "16" },
    { key: "length", value: String(w.byteLength) },
  ];
  const model = makeModel({
    nodes: [node("MatMul", ["x", "W"], ["y"], {}, "mm")],
    inputs: [valueInfo("x", DataType.FLOAT, ["N", 64])],
    outputs: [valueInfo("y", DataType.FLOAT, ["N", 32])],
    initializers: [t],
  });
  return { model, file, w };
}

/** y = a + b (float32): one Add, nothing any recipe can compress. */
function addModel(): Uint8Array<ArrayBuffer> {
  return makeModel({
    nodes: [node("Add", ["a", "b"], ["y"], {}, "add")],
    inputs: [valueInfo("a", DataType.FLOAT, [2, 2]), valueInfo("b", DataType.FLOAT, [2, 2])],
    outputs: [valueInfo("y", DataType.FLOAT, [2, 2])],
  }) as Uint8Array<ArrayBuffer>;
}

/** y = x · W, W [64, 8], with the batch dim fixed at `batch`. */
function fixedBatchModel(batch: number): Uint8Array<ArrayBuffer> {
  const w = Float32Array.from({ length: 64 * 8 }, rng(21));
  return makeModel({
    nodes: [node("MatMul", ["x", "W"], ["y"], {}, "mm")],
    inputs: [valueInfo("x", DataType.FLOAT, [batch, 64])],
    outputs: [valueInfo("y", DataType.FLOAT, [batch, 8])],
    initializers: [tensorFromArray("W", DataType.FLOAT, [64, 8], w)],
  }) as Uint8Array<ArrayBuffer>;
}

/** FP16 in and out: f = float(h), h2 = half(f). */
function halfModel(): Uint8Array<ArrayBuffer> {
  return makeModel({
    nodes: [
      node("Cast", ["h"], ["f"], { to: DataType.FLOAT }, "up"),
      node("Cast", ["f"], ["h2"], { to: DataType.FLOAT16 }, "down"),
    ],
    inputs: [valueInfo("h", DataType.FLOAT16, [2, 3])],
    outputs: [valueInfo("f", DataType.FLOAT, [2, 3]), valueInfo("h2", DataType.FLOAT16, [2, 3])],
  }) as Uint8Array<ArrayBuffer>;
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

function randomImages(n: number, seed: number): Tensor {
  const r = rng(seed);
  return { type: "float32", dims: [n, 1, 28, 28], data: Float32Array.from({ length: n * 784 }, r) };
}

Deno.test({
  name: "server: upload, compress with live SSE progress, v2 inference, errors, metrics",
  // The subprocess's pipes are drained by the spawn helper and closed by stop().
  sanitizeResources: true,
  sanitizeOps: true,
  async fn(t) {
    const dataDir = await Deno.makeTempDir({ prefix: "sqz_server_test_" });
    let server: RunningServer | undefined;
    try {
      server = await startServer({
        dataDir,
        env: {
          SQZ_API_KEYS: `${KEY},${OTHER_KEY}`,
          SQZ_MAX_UPLOAD_BYTES: String(2 << 20),
          SQZ_MAX_INFER_BYTES: String(256 << 10),
          SQZ_MAX_TENSOR_ELEMENTS: String(64 * 784),
        },
      });
      const base = server.url;
      const auth = { Authorization: `Bearer ${KEY}` };
      const api = (path: string, init: RequestInit = {}) =>
        fetch(`${base}${path}`, { ...init, headers: { ...auth, ...init.headers } });
      const json = async (res: Response, status: number): Promise<Json> => {
        const text = await res.text();
        assert.equal(res.status, status, `${res.url}: ${text}`);
        return text ? JSON.parse(text) : {};
      };
      /** An error response: its status, JSON body shape and code. */
      const error = async (res: Response, status: number, code?: string) => {
        const body = await json(res, status);
        assert.equal(typeof body.error?.message, "string", JSON.stringify(body));
        if (code) assert.equal(body.error.code, code, JSON.stringify(body));
        assert.ok(!JSON.stringify(body).includes("    at "), "no stack trace");
        return body;
      };
      const artifactDir = `${dataDir}/artifacts`;
      /** What must not change when a request is refused. */
      const snapshot = async () => ({
        models: (await json(await api("/v1/models"), 200)).models.length,
        jobs: (await json(await api("/v1/jobs"), 200)).jobs.length,
        artifacts: await listDir(artifactDir),
        tmp: await listDir(`${dataDir}/tmp`),
      });

      await t.step("API keys: required except on health and metrics", async () => {
        const res = await fetch(`${base}/v1/models`);
        await error(res, 401, "unauthenticated");
        assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer/);
        await error(
          await fetch(`${base}/v1/models`, { headers: { Authorization: "Bearer nope-nope-nope" } }),
          401,
        );
        await error(
          await fetch(`${base}/v1/models`, { headers: { Authorization: `Basic ${btoa("a:b")}` } }),
          401,
        );
        await error(await fetch(`${base}/openapi.json`), 401);
        await json(
          await fetch(`${base}/v1/models`, { headers: { Authorization: `bearer ${OTHER_KEY}` } }),
          200,
        );
        assert.deepEqual(await json(await fetch(`${base}/v2/health/live`), 200), { live: true });
        assert.deepEqual(await json(await fetch(`${base}/v2/health/ready`), 200), { ready: true });
        const metrics = await fetch(`${base}/metrics`);
        assert.equal(metrics.status, 200);
        await metrics.body?.cancel();
      });

      await t.step("the demo model is preloaded", async () => {
        const { models } = await json(await api("/v1/models"), 200);
        const mnist = models.find((m: Json) => m.name === "mnist");
        assert.ok(mnist, JSON.stringify(models));
        assert.deepEqual(mnist.inputs, [{
          name: "input",
          type: "float32",
          dims: ["N", 1, 28, 28],
        }]);
        assert.deepEqual(mnist.outputs, [{ name: "logits", type: "float32", dims: ["N", 10] }]);
      });

      const mlpBytes = await Deno.readFile(MLP_PATH);
      let mlp: Json = {}, tiny: Json = {};
      await t.step("upload: raw body and multipart", async () => {
        const res = await api("/v1/models?name=mlp", {
          method: "POST",
          headers: { "Content-Type": "application/octet-stream" },
          body: mlpBytes,
        });
        mlp = await json(res, 201);
        assert.match(mlp.id, MODEL_ID_RE);
        assert.equal(res.headers.get("location"), `/v1/models/${mlp.id}`);
        assert.equal(mlp.name, "mlp");
        assert.equal(mlp.bytes, mlpBytes.length);
        assert.equal(mlp.sha256, await sha256Hex(mlpBytes));
        assert.deepEqual(mlp.opHistogram, { Flatten: 1, Gemm: 3, Relu: 2 });
        assert.deepEqual(mlp.inputs[0], { name: "input", type: "float32", dims: ["N", 1, 28, 28] });
        assert.equal(mlp.parentId, undefined);
        assert.ok(await Deno.stat(`${artifactDir}/${mlp.sha256}`));
        assert.deepEqual(await json(await api(`/v1/models/${mlp.id}`), 200), mlp);
        assert.deepEqual(await json(await api("/v1/models/mlp"), 200), mlp);

        const form = new FormData();
        form.append("model", new File([tinyModel() as Uint8Array<ArrayBuffer>], "tiny.onnx"));
        form.append("name", "tiny");
        tiny = await json(await api("/v1/models", { method: "POST", body: form }), 201);
        assert.deepEqual(tiny.inputs.map((i: Json) => [i.name, i.type, i.dims]), [
          ["a", "int64", [2, 3]],
          ["b", "int64", [2, 3]],
        ]);
        assert.deepEqual(tiny.opHistogram, { Add: 1, Greater: 1 });

        const dl = await api(`/v1/models/${mlp.id}/artifact`);
        assert.equal(dl.status, 200);
        assert.equal(dl.headers.get("etag"), `"${mlp.sha256}"`);
        assert.deepEqual(new Uint8Array(await dl.arrayBuffer()), mlpBytes);
      });

      await t.step("bad uploads: 4xx and nothing stored", async () => {
        const before = await snapshot();
        const post = (body: BodyInit, type = "application/octet-stream", query = "") =>
          api(`/v1/models${query}`, { method: "POST", headers: { "Content-Type": type }, body });
        const garbage = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919) & 255);
        await error(await post(garbage), 422, "invalid_model");
        // A truncated model: valid protobuf framing up to the cut, then nothing.
        await error(await post(mlpBytes.slice(0, 5000)), 422, "invalid_model");
        await error(await post(new Uint8Array(0)), 400);
        await error(await post("{}", "application/json"), 415, "unsupported_media_type");
        await error(await post(new Uint8Array(3 << 20)), 413, "payload_too_large");
        await error(await post(mlpBytes, "application/octet-stream", "?name=..%2F..%2Fetc"), 400);
        await error(await post(mlpBytes, "application/octet-stream", "?name=mlp"), 409, "conflict");
        const form = new FormData();
        form.append("model", new File([mlpBytes], "m.onnx"));
        form.append("weights", new File([mlpBytes], "w.bin"));
        await error(await api("/v1/models", { method: "POST", body: form }), 400);
        const traversal = new FormData();
        traversal.append("model", new File([mlpBytes], "m.onnx"));
        traversal.append("external", new File([new Uint8Array(4)], "../../escape.bin"));
        await error(await api("/v1/models", { method: "POST", body: traversal }), 400);
        assert.deepEqual(await snapshot(), before);
      });

      await t.step(
        "external data: multipart upload, download, inference, compression",
        async () => {
          const { model, file } = externalModel();
          const before = await snapshot();
          const noData = new FormData();
          noData.append("model", new File([model as Uint8Array<ArrayBuffer>], "ext.onnx"));
          await error(
            await api("/v1/models", { method: "POST", body: noData }),
            422,
            "invalid_model",
          );
          assert.deepEqual(await snapshot(), before);

          // A file the model never refers to: 400, nothing stored (with or without the one it
          // does refer to, and for a model with no external data at all).
          for (
            const [bytes, files] of [[model, ["weights/w.bin", "weights/extra.bin"]], [mlpBytes, [
              "w.bin",
            ]]] as const
          ) {
            const extra = new FormData();
            extra.append("model", new File([bytes as Uint8Array<ArrayBuffer>], "m.onnx"));
            for (const f of files) {
              extra.append("external", new File([file as Uint8Array<ArrayBuffer>], f));
            }
            const body = await error(
              await api("/v1/models", { method: "POST", body: extra }),
              400,
              "invalid_argument",
            );
            assert.match(body.error.message, new RegExp(`'${files[files.length - 1]}'`));
          }
          assert.deepEqual(await snapshot(), before);

          const form = new FormData();
          form.append("model", new File([model as Uint8Array<ArrayBuffer>], "ext.onnx"));
          form.append("external", new File([file as Uint8Array<ArrayBuffer>], "weights/w.bin"));
          form.append("name", "ext");
          const ext = await json(await api("/v1/models", { method: "POST", body: form }), 201);
          assert.deepEqual(ext.externalData, [{
            location: "weights/w.bin",
            sha256: await sha256Hex(file),
            bytes: file.length,
          }]);
          const dl = await api(`/v1/models/ext/artifact?external=weights%2Fw.bin`);
          assert.deepEqual(new Uint8Array(await dl.arrayBuffer()), file);

          const x = Float32Array.from({ length: 2 * 64 }, rng(12));
          const session = await Session.create(model, { externalData: { "weights/w.bin": file } });
          const want = (await session.run({ x: { type: "float32", dims: [2, 64], data: x } })).y;
          await session.release();
          const out = await json(
            await api("/v2/models/ext/infer", {
              method: "POST",
              body: JSON.stringify({
                inputs: [{ name: "x", shape: [2, 64], datatype: "FP32", data: Array.from(x) }],
              }),
            }),
            200,
          );
          assert.deepEqual(out.outputs[0].data, Array.from(want.data as Float32Array));

          const queued = await json(
            await api("/v1/models/ext/compress", {
              method: "POST",
              headers: { "Content-Type": "application/json" },
              body: JSON.stringify({ recipe: "int8-dynamic" }),
            }),
            202,
          );
          const events = await readSse(await api(`/v1/jobs/${queued.id}/events`));
          const last = events[events.length - 1].data;
          assert.equal(last.state, "succeeded", JSON.stringify(last));
          const child = await json(await api(`/v1/models/${last.resultModelId}`), 200);
          assert.equal(child.externalData, undefined, "the artifact holds its weights inline");
          const report = await json(await api(`/v1/jobs/${queued.id}/report`), 200);
          assert.equal(report.evaluation, undefined);
          assert.ok(report.compression.notes.some((n: string) => /external files/.test(n)));
          assert.equal((await api(`/v1/models/${child.id}`, { method: "DELETE" })).status, 204);
          assert.equal((await api(`/v1/models/ext`, { method: "DELETE" })).status, 204);
          assert.deepEqual(await snapshot(), { ...before, jobs: before.jobs + 1 });
          // The job of a deleted model is still there, but its requests make no series for it.
          await json(await api(`/v1/jobs/${queued.id}`), 200);
          await json(await api(`/v1/jobs/${queued.id}/report`), 200);
          await readSse(await api(`/v1/jobs/${queued.id}/events`));
          const metrics = await (await api("/metrics")).text();
          assert.ok(!metrics.includes(ext.id), "a deleted model's series come back");
          assert.ok(!metrics.includes(child.id), "a deleted model's series come back");
        },
      );

      await t.step("ids are validated: no traversal, 400 / 404", async () => {
        for (
          const p of [
            "/v1/models/..%2F..%2Fsqz.db",
            "/v1/models/.hidden",
            "/v1/models/a%00b",
            "/v1/models/m_AAAA",
          ]
        ) {
          await error(await api(p), 400, "invalid_id");
        }
        await error(await api("/v1/models/m_aaaaaaaaaaaaaaaaaaaaaaaa"), 404, "not_found");
        await error(await api("/v1/models/no-such-model"), 404, "not_found");
        await error(await api("/v1/jobs/..%2F..%2Fsqz.db"), 400, "invalid_id");
        await error(await api("/v1/jobs/j_aaaaaaaaaaaaaaaaaaaaaaaa/events"), 404);
        await error(await api(`/v1/models/${mlp.id}/artifact?external=..%2F..%2Fsqz.db`), 400);
        await error(await api("/v2/models/..%2Fsqz.db/infer", { method: "POST", body: "{}" }), 400);
        await error(await api("/nope"), 404, "not_found");
      });

      await t.step("a known path with the wrong method: 405 with Allow", async () => {
        for (
          const [method, path, allow] of [
            ["PUT", "/v1/models", "GET, HEAD, POST"],
            ["POST", `/v1/models/${mlp.id}`, "GET, HEAD, DELETE"],
            ["DELETE", "/v1/jobs", "GET, HEAD"],
            ["GET", "/v2/models/mlp/infer", "POST"],
            ["GET", "/v2/models/mlp/versions/1/infer", "POST"],
            ["POST", "/metrics", "GET, HEAD"],
          ]
        ) {
          const res = await api(path, { method });
          assert.equal(res.headers.get("allow"), allow, `${method} ${path}`);
          await error(res, 405, "method_not_allowed");
        }
      });

      await t.step("bad recipes and calibration data: 4xx and no job", async () => {
        await json(
          await api("/v1/models?name=adder", { method: "POST", body: addModel() }),
          201,
        );
        const before = await snapshot();
        const compress = (body: unknown, model = "mlp") =>
          api(`/v1/models/${model}/compress`, {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify(body),
          });
        await error(await compress({ recipe: "int9" }), 400, "invalid_argument");
        await error(await compress({ recipe: "prune:1.5" }), 400, "invalid_argument");
        await error(await compress({ recipe: { method: "int7" } }), 400, "invalid_argument");
        await error(
          await compress({ recipe: { method: "int8", layers: { nope: { method: "none" } } } }),
          400,
        );
        await error(await compress({}), 400);
        await error(await compress({ recipe: "int8", extra: 1 }), 400);
        // Recipes that compress nothing in the model: refused before there is a job.
        for (
          const [recipe, model] of [
            ["binary", "adder"],
            ["prune:0.5", "adder"],
            [{ method: "none", layers: { Add: { method: "int4" } } }, "adder"],
            ["int8", "adder"],
            ["int8", "tiny"],
            [{ method: "none" }, "mlp"],
            [{ method: "int4", layers: { Gemm: { method: "none" } } }, "mlp"],
          ] as const
        ) {
          const body = await error(await compress({ recipe }, model), 400, "invalid_argument");
          assert.match(body.error.message, /compresses nothing/, JSON.stringify(recipe));
        }
        await error(await compress({ recipe: "int8", name: "mlp" }), 409);
        await error(await compress({ recipe: "int8" }, "m_aaaaaaaaaaaaaaaaaaaaaaaa"), 404);
        await error(await compress({ recipe: "int8" }, "tiny-nope"), 404);
        const withCalibration = async (t: Tensor) => {
          const form = new FormData();
          form.append("recipe", "int8");
          form.append("calibration", new File([encodeNpy(t) as Uint8Array<ArrayBuffer>], "c.npy"));
          return await api("/v1/models/mlp/compress", { method: "POST", body: form });
        };
        await error(
          await withCalibration({
            type: "float32",
            dims: [4, 1, 28, 27],
            data: new Float32Array(4 * 28 * 27),
          }),
          400,
        );
        await error(
          await withCalibration({
            type: "float64",
            dims: [4, 1, 28, 28],
            data: new Float64Array(4 * 784),
          }),
          400,
        );
        await error(
          await withCalibration({
            type: "float32",
            dims: [4, 784],
            data: new Float32Array(4 * 784),
          }),
          400,
        );
        const broken = new FormData();
        broken.append("recipe", "int8");
        broken.append("calibration", new File([new Uint8Array([1, 2, 3, 4])], "c.npy"));
        await error(await api("/v1/models/mlp/compress", { method: "POST", body: broken }), 400);
        assert.deepEqual(await snapshot(), before);
      });

      let job: Json = {}, result: Json = {};
      await t.step("a compression job with calibration data, followed over SSE", async () => {
        const calib = randomImages(48, 1);
        const form = new FormData();
        form.append("recipe", "int8");
        form.append("name", "mlp-int8");
        form.append(
          "calibration",
          new File([encodeNpy(calib) as Uint8Array<ArrayBuffer>], "calib.npy"),
        );
        const res = await api("/v1/models/mlp/compress", { method: "POST", body: form });
        job = await json(res, 202);
        assert.match(job.id, JOB_ID_RE);
        assert.equal(job.state, "queued");
        assert.equal(job.modelId, mlp.id);
        assert.equal(job.recipe, "int8");
        assert.deepEqual(job.calibration.dims, [48, 1, 28, 28]);
        assert.equal(res.headers.get("location"), `/v1/jobs/${job.id}`);

        const events = await readSse(await api(`/v1/jobs/${job.id}/events`));
        assert.deepEqual(events.map((e) => Number(e.id)), events.map((_, i) => i + 1));
        assert.ok(events.every((e) => e.data.jobId === job.id && Number(e.id) === e.data.seq));
        assert.equal(events[0].event, "state");
        assert.equal(events[0].data.state, "queued");
        assert.ok(events.some((e) => e.event === "state" && e.data.state === "running"));
        const progress = events.filter((e) => e.event === "progress");
        assert.ok(progress.length >= 3, JSON.stringify(events));
        assert.ok(progress.some((e) => e.data.stage === "calibration"), "static int8 calibrates");
        for (let i = 1; i < progress.length; i++) {
          assert.ok(progress[i].data.progress >= progress[i - 1].data.progress);
        }
        const last = events[events.length - 1];
        assert.equal(last.event, "state");
        assert.equal(last.data.state, "succeeded", JSON.stringify(last));
        assert.match(last.data.resultModelId, MODEL_ID_RE);

        job = await json(await api(`/v1/jobs/${job.id}`), 200);
        assert.equal(job.state, "succeeded");
        assert.equal(job.progress, 1);
        assert.equal(job.resultModelId, last.data.resultModelId);
        result = await json(await api(`/v1/models/${job.resultModelId}`), 200);
        assert.equal(result.parentId, mlp.id);
        assert.equal(result.jobId, job.id);
        assert.equal(result.name, "mlp-int8");
        assert.ok(result.bytes < mlp.bytes / 2, `${result.bytes} vs ${mlp.bytes}`);
        // The finished job's calibration file is gone; the models' files are there.
        const files = await listDir(artifactDir);
        assert.ok(files.includes(result.sha256) && files.includes(mlp.sha256));
        assert.ok(!files.includes(await sha256Hex(encodeNpy(calib))));

        // Replay: the whole history again, or only what follows Last-Event-ID.
        const again = await readSse(await api(`/v1/jobs/${job.id}/events`));
        assert.deepEqual(again.map((e) => e.data), events.map((e) => e.data));
        const tail = await readSse(
          await api(`/v1/jobs/${job.id}/events`, {
            headers: { "Last-Event-ID": String(events.length - 1) },
          }),
        );
        assert.deepEqual(tail.map((e) => e.data), [last.data]);
      });

      await t.step("the report: JSON and HTML", async () => {
        const report = await json(await api(`/v1/jobs/${job.id}/report`), 200);
        assert.equal(report.resultModelId, result.id);
        assert.equal(report.compression.recipe.method, "int8");
        assert.deepEqual(
          report.compression.layers.map((l: Json) => l.name).sort(),
          ["fc1", "fc2", "fc3"].sort(),
        );
        assert.ok(report.compression.notes.some((n: string) => n.startsWith("int8 static")));
        // The sizes are those of the stored artifact.
        assert.equal(report.compression.size.after, result.bytes);
        assert.equal(report.compression.size.before, mlp.bytes);
        assert.equal(report.evaluation.format, "sqz.eval/1");
        assert.equal(report.evaluation.samples, 48);
        assert.ok(report.evaluation.agreement > 0.8, `agreement ${report.evaluation.agreement}`);
        const html = await api(`/v1/jobs/${job.id}/report`, { headers: { Accept: "text/html" } });
        assert.equal(html.status, 200);
        assert.match(html.headers.get("content-type") ?? "", /^text\/html/);
        const text = await html.text();
        assert.ok(text.startsWith("<!doctype html>") && text.includes('id="compression"'));
        await error(await api(`/v1/jobs/j_aaaaaaaaaaaaaaaaaaaaaaaa/report`), 404);
      });

      await t.step("int8 without calibration data falls back to dynamic quantization", async () => {
        const queued = await json(
          await api("/v1/models/mnist/compress", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ recipe: "int8" }),
          }),
          202,
        );
        const events = await readSse(await api(`/v1/jobs/${queued.id}/events`));
        assert.equal(events[events.length - 1].data.state, "succeeded");
        const report = await json(await api(`/v1/jobs/${queued.id}/report`), 200);
        assert.ok(
          report.compression.notes.some((n: string) =>
            n.includes("fell back to dynamic quantization")
          ),
          JSON.stringify(report.compression.notes),
        );
        // Each note once: in the compression report, and in the evaluation as read from the
        // artifact's metadata.
        const fallback = (notes: string[]) =>
          notes.filter((n) => n.includes("fell back to dynamic quantization")).length;
        assert.equal(fallback(report.compression.notes), 1);
        assert.equal(fallback(report.evaluation.notes), 1, JSON.stringify(report.evaluation.notes));
        const done = await json(await api(`/v1/jobs/${queued.id}`), 200);
        const child = await json(await api(`/v1/models/${done.resultModelId}`), 200);
        assert.equal(report.compression.size.after, child.bytes);
        // Synthetic inputs: agreement with the parent, no accuracy.
        assert.equal(report.evaluation.samples, 64);
        assert.equal(report.evaluation.accuracy, undefined);
      });

      await t.step("calibration data for a model with a fixed batch size", async () => {
        const fixed1 = await json(
          await api("/v1/models?name=fixed1", { method: "POST", body: fixedBatchModel(1) }),
          201,
        );
        await json(
          await api("/v1/models?name=fixed4", { method: "POST", body: fixedBatchModel(4) }),
          201,
        );
        const samples = (n: number): Tensor => ({
          type: "float32",
          dims: [n, 64],
          data: Float32Array.from({ length: n * 64 }, rng(n)),
        });
        const submit = (model: string, recipe: string, t: Tensor) => {
          const form = new FormData();
          form.append("recipe", recipe);
          form.append("calibration", new File([encodeNpy(t) as Uint8Array<ArrayBuffer>], "c.npy"));
          return api(`/v1/models/${model}/compress`, { method: "POST", body: form });
        };
        // Batches of the fixed size: the samples must fill them.
        const before = await snapshot();
        const bad = await error(await submit("fixed4", "int8", samples(10)), 400);
        assert.match(bad.error.message, /multiple of 4/);
        assert.deepEqual(await snapshot(), before);

        const run = async (recipe: string) => {
          const job = await json(await submit("fixed1", recipe, samples(40)), 202);
          const events = await readSse(await api(`/v1/jobs/${job.id}/events`));
          const last = events[events.length - 1].data;
          assert.equal(last.state, "succeeded", JSON.stringify(last));
          const report = await json(await api(`/v1/jobs/${job.id}/report`), 200);
          const child = await json(await api(`/v1/models/${last.resultModelId}`), 200);
          assert.equal(child.parentId, fixed1.id);
          assert.equal(report.compression.size.after, child.bytes);
          assert.equal(report.evaluation.samples, 40);
          return report;
        };
        // Static int8: calibrated in batches of 1 (the model runs no other).
        const int8 = await run("int8");
        assert.ok(int8.compression.notes.some((n: string) => n.startsWith("int8 static")));
        assert.ok(!int8.compression.notes.some((n: string) => /only for the evaluation/.test(n)));
        // int4 does not calibrate: the data served the evaluation only, and the report says so.
        const int4 = await run("int4");
        assert.ok(
          int4.compression.notes.some((n: string) => /used only for the evaluation/.test(n)),
          JSON.stringify(int4.compression.notes),
        );
      });

      await t.step("v2 inference matches Session.run, original and compressed", async () => {
        const x = randomImages(3, 7);
        const resultBytes = new Uint8Array(
          await (await api(`/v1/models/${result.id}/artifact`)).arrayBuffer(),
        );
        assert.equal(await sha256Hex(resultBytes), result.sha256);
        for (
          const [ref, bytes, name] of [["mlp", mlpBytes, "mlp"], [
            result.id,
            resultBytes,
            "mlp-int8",
          ]] as const
        ) {
          const session = await Session.create(bytes);
          const want = (await session.run({ input: x })).logits;
          await session.release();
          const body = {
            id: "req-1",
            inputs: [{
              name: "input",
              shape: [3, 1, 28, 28],
              datatype: "FP32",
              data: Array.from(x.data as Float32Array),
            }],
          };
          const out = await json(
            await api(`/v2/models/${ref}/infer`, {
              method: "POST",
              headers: { "Content-Type": "application/json" },
              body: JSON.stringify(body),
            }),
            200,
          );
          assert.equal(out.model_name, name);
          assert.equal(out.model_version, "1");
          assert.equal(out.id, "req-1");
          assert.equal(out.outputs.length, 1);
          assert.deepEqual(out.outputs[0].shape, [3, 10]);
          assert.equal(out.outputs[0].datatype, "FP32");
          assert.deepEqual(out.outputs[0].data, Array.from(want.data as Float32Array));

          // Nested data and the versioned route give the same.
          const nested = Array.from({ length: 3 }, (_, n) => [
            Array.from(
              { length: 28 },
              (_, r) =>
                Array.from((x.data as Float32Array).slice(n * 784 + r * 28, n * 784 + r * 28 + 28)),
            ),
          ]);
          const out2 = await json(
            await api(`/v2/models/${ref}/versions/1/infer`, {
              method: "POST",
              body: JSON.stringify({ inputs: [{ ...body.inputs[0], data: nested }] }),
            }),
            200,
          );
          assert.deepEqual(out2.outputs[0].data, out.outputs[0].data);

          // Triton's binary tensor extension, both ways.
          const header = new TextEncoder().encode(JSON.stringify({
            inputs: [{
              name: "input",
              shape: [3, 1, 28, 28],
              datatype: "FP32",
              parameters: { binary_data_size: 3 * 784 * 4 },
            }],
            outputs: [{ name: "logits", parameters: { binary_data: true } }],
          }));
          const raw = new Uint8Array(header.length + 3 * 784 * 4);
          raw.set(header);
          raw.set(new Uint8Array((x.data as Float32Array).buffer), header.length);
          const bin = await api(`/v2/models/${ref}/infer`, {
            method: "POST",
            headers: {
              "Content-Type": "application/octet-stream",
              "Inference-Header-Content-Length": String(header.length),
            },
            body: raw,
          });
          assert.equal(bin.status, 200);
          const n = Number(bin.headers.get("inference-header-content-length"));
          const all = new Uint8Array(await bin.arrayBuffer());
          const head = JSON.parse(new TextDecoder().decode(all.subarray(0, n)));
          assert.equal(head.outputs[0].parameters.binary_data_size, 30 * 4);
          assert.deepEqual(new Float32Array(all.slice(n).buffer), want.data);
        }
        await error(
          await api(`/v2/models/mlp/versions/2/infer`, { method: "POST", body: "{}" }),
          404,
        );
      });

      await t.step(
        "v2 metadata, readiness, INT64 inputs, BOOL outputs, output selection",
        async () => {
          assert.deepEqual(await json(await api("/v2"), 200), {
            name: "sqz",
            version: "0.1.0",
            extensions: ["binary_tensor_data"],
          });
          const meta = await json(await api("/v2/models/tiny"), 200);
          assert.deepEqual(meta.inputs, [
            { name: "a", datatype: "INT64", shape: [2, 3] },
            { name: "b", datatype: "INT64", shape: [2, 3] },
          ]);
          assert.deepEqual(meta.outputs.map((o: Json) => o.datatype), ["INT64", "BOOL"]);
          assert.deepEqual((await json(await api("/v2/models/mnist"), 200)).inputs, [
            { name: "input", datatype: "FP32", shape: [-1, 1, 28, 28] },
          ]);
          assert.deepEqual(await json(await api(`/v2/models/${tiny.id}/ready`), 200), {
            name: "tiny",
            ready: true,
          });
          await error(await api("/v2/models/nope/ready"), 404);
          const a = [[1, -5, 7], [2 ** 40, 0, -3]], b = [[1, 2, 3], [4, 5, -9]];
          const out = await json(
            await api("/v2/models/tiny/infer", {
              method: "POST",
              body: JSON.stringify({
                inputs: [
                  { name: "b", shape: [2, 3], datatype: "INT64", data: b },
                  { name: "a", shape: [2, 3], datatype: "INT64", data: a.flat() },
                ],
                outputs: [{ name: "gt" }, { name: "sum" }],
              }),
            }),
            200,
          );
          assert.deepEqual(out.outputs.map((o: Json) => o.name), ["gt", "sum"]);
          const session = await Session.create(tinyModel());
          const toBig = (v: number[][]) => BigInt64Array.from(v.flat(), (x) => BigInt(x));
          const want = await session.run({
            a: { type: "int64", dims: [2, 3], data: toBig(a) },
            b: { type: "int64", dims: [2, 3], data: toBig(b) },
          });
          await session.release();
          assert.deepEqual(
            out.outputs[0].data,
            Array.from(want.gt.data as Uint8Array, (v) => v === 1),
          );
          assert.deepEqual(out.outputs[1].data, Array.from(want.sum.data as BigInt64Array, Number));
          assert.deepEqual(out.outputs[0].data, [false, false, true, true, false, true]);
          assert.equal(out.outputs[1].datatype, "INT64");
        },
      );

      await t.step("FP16 as JSON: rounded to half, finite range checked", async () => {
        await json(await api("/v1/models?name=half", { method: "POST", body: halfModel() }), 201);
        const infer = (data: number[]) =>
          api("/v2/models/half/infer", {
            method: "POST",
            body: JSON.stringify({
              inputs: [{ name: "h", shape: [2, 3], datatype: "FP16", data }],
            }),
          });
        // Ties to even at 2049 and 2051, the largest half, a subnormal, 65519 (rounds down).
        const values = [0.1, 2049, 2051, 65504, -6e-8, 65519];
        const out = await json(await infer(values), 200);
        // The platform's Float16Array rounds the same way (IEEE 754, ties to even).
        const want = Array.from(new Float16Array(values));
        assert.deepEqual(out.outputs.map((o: Json) => o.datatype), ["FP32", "FP16"]);
        assert.deepEqual(out.outputs[0].data, want);
        assert.deepEqual(out.outputs[1].data, want);
        assert.deepEqual(want.slice(1, 4), [2048, 2052, 65504]);
        for (const v of [65520, -1e5]) {
          const body = await error(await infer([0, 0, 0, 0, 0, v]), 400, "invalid_datatype");
          assert.match(body.error.message, /finite range of FP16/);
        }
      });

      await t.step("bad inference requests: 4xx before anything runs", async () => {
        const infer = (body: unknown, model = "mlp") =>
          api(`/v2/models/${model}/infer`, {
            method: "POST",
            body: typeof body === "string" ? body : JSON.stringify(body),
          });
        const input = (over: Json) => ({
          inputs: [{
            name: "input",
            shape: [1, 1, 28, 28],
            datatype: "FP32",
            data: new Array(784).fill(0.5),
            ...over,
          }],
        });
        const failuresBefore = await metricValue(
          api,
          `sqz_inference_requests_total{model="${mlp.id}",outcome="failure"}`,
        );
        await error(await infer(input({ datatype: "FP64" })), 400, "invalid_datatype");
        await error(
          await infer(input({ datatype: "INT32", data: new Array(784).fill(1) })),
          400,
          "invalid_datatype",
        );
        await error(await infer(input({ shape: [1, 1, 28, 27] })), 400, "invalid_shape");
        await error(await infer(input({ shape: [1, 784] })), 400, "invalid_shape");
        await error(await infer(input({ data: new Array(783).fill(0) })), 400, "invalid_shape");
        await error(
          await infer(input({ data: [...new Array(783).fill(0), "x"] })),
          400,
          "invalid_datatype",
        );
        await error(await infer(input({ name: "nope" })), 400);
        await error(await infer({ inputs: [] }), 400);
        await error(await infer({ ...input({}), outputs: [{ name: "nope" }] }), 400);
        await error(await infer("{not json"), 400);
        await error(await infer({ inputs: "x" }), 400);
        // 100 samples: over the 64×784 elements per request (the body is within its limit).
        const over = await error(
          await infer(input({ shape: [100, 1, 28, 28], data: new Array(78400).fill(0) })),
          413,
          "too_many_elements",
        );
        assert.match(over.error.message, /limit of 50176 elements/);
        // FP32 values past its finite range are refused, not made ±Infinity.
        for (const v of [1e39, -3.5e38]) {
          const big = await error(
            await infer(input({ data: [...new Array(783).fill(0), v] })),
            400,
            "invalid_datatype",
          );
          assert.match(big.error.message, /value 783 .* finite range of FP32/);
        }
        await error(await infer("x".repeat(300 << 10)), 413, "payload_too_large");
        await error(await infer(input({}), "m_aaaaaaaaaaaaaaaaaaaaaaaa"), 404);
        await error(await infer(input({}), "nope"), 404);
        const tinyIn = (a: unknown) => ({
          inputs: [
            { name: "a", shape: [2, 3], datatype: "INT64", data: a },
            { name: "b", shape: [2, 3], datatype: "INT64", data: [1, 2, 3, 4, 5, 6] },
          ],
        });
        await error(await infer(tinyIn([1, 2, 3, 4, 5, 2 ** 60]), "tiny"), 400, "invalid_datatype");
        await error(await infer(tinyIn([1, 2, 3, 4, 5, 6.5]), "tiny"), 400, "invalid_datatype");
        await error(await infer({ inputs: [tinyIn([1, 2, 3, 4, 5, 6]).inputs[0]] }, "tiny"), 400);
        const failuresAfter = await metricValue(
          api,
          `sqz_inference_requests_total{model="${mlp.id}",outcome="failure"}`,
        );
        assert.equal(failuresAfter - failuresBefore, 14);
      });

      await t.step("delete: refused names, removed files, dangling links kept", async () => {
        const del = await api(`/v1/models/${result.id}`, { method: "DELETE" });
        assert.equal(del.status, 204);
        await error(await api(`/v1/models/${result.id}`), 404);
        await error(
          await api(`/v2/models/${result.id}/infer`, { method: "POST", body: "{}" }),
          404,
        );
        assert.ok(!(await listDir(artifactDir)).includes(result.sha256));
        const j = await json(await api(`/v1/jobs/${job.id}`), 200);
        assert.equal(j.resultModelId, result.id);
        assert.equal((await api(`/v1/models/tiny`, { method: "DELETE" })).status, 204);
        await error(await api(`/v1/models/tiny`, { method: "DELETE" }), 404);
      });

      await t.step("metrics, OpenAPI and docs", async () => {
        const res = await api("/metrics");
        assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
        const text = await res.text();
        for (
          const needle of [
            `sqz_http_requests_total{method="POST",route="/v2/models/:name/infer",status="200",model="${mlp.id}"}`,
            `sqz_http_request_duration_seconds_bucket{method="POST",route="/v2/models/:name/infer",model="${mlp.id}",le="+Inf"}`,
            `sqz_inference_duration_seconds_bucket{model="${mlp.id}",le="0.005"}`,
            `sqz_inference_duration_seconds_count{model="${mlp.id}"}`,
            'sqz_job_duration_seconds_count{state="succeeded"} 5',
            "sqz_jobs_queue_depth 0",
            "sqz_jobs_running 0",
            `sqz_wasm_memory_bytes{model="${mlp.id}"}`,
            "sqz_wasm_memory_total_bytes",
            "# TYPE sqz_http_request_duration_seconds histogram",
          ]
        ) assert.ok(text.includes(needle), `metrics lack ${needle}`);
        // The deleted model's series are gone.
        assert.ok(!text.includes(result.id));

        const spec = await json(await api("/openapi.json"), 200);
        assert.equal(spec.openapi, "3.1.0");
        for (
          const p of [
            "/v1/models",
            "/v1/models/{id}",
            "/v1/models/{id}/artifact",
            "/v1/models/{id}/compress",
            "/v1/jobs",
            "/v1/jobs/{id}",
            "/v1/jobs/{id}/events",
            "/v1/jobs/{id}/report",
            "/v2",
            "/v2/health/live",
            "/v2/health/ready",
            "/v2/models/{name}",
            "/v2/models/{name}/ready",
            "/v2/models/{name}/infer",
            "/v2/models/{name}/versions/{version}",
            "/v2/models/{name}/versions/{version}/ready",
            "/v2/models/{name}/versions/{version}/infer",
            "/metrics",
            "/openapi.json",
            "/docs",
          ]
        ) assert.ok(spec.paths[p], `openapi lacks ${p}`);
        const versioned = spec.paths["/v2/models/{name}/versions/{version}/infer"];
        assert.deepEqual(versioned.parameters.map((x: Json) => x.name), ["name", "version"]);
        // The example is a request the server takes: data holds the shape's element count.
        for (
          const path of ["/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"]
        ) {
          const example = spec.paths[path].post.requestBody.content["application/json"].example;
          const [x] = example.inputs;
          assert.ok(Array.isArray(x.data));
          assert.equal(x.data.length, x.shape.reduce((a: number, b: number) => a * b, 1));
          await json(
            await api("/v2/models/mnist/infer", { method: "POST", body: JSON.stringify(example) }),
            200,
          );
        }
        const docs = await api("/docs");
        assert.match(docs.headers.get("content-type") ?? "", /^text\/html/);
        const html = await docs.text();
        assert.ok(html.includes("/v2/models/{name}/infer") && !/<script/i.test(html));
      });

      await t.step("graceful shutdown on SIGTERM; logs are JSON without tensor data", async () => {
        const code = await server!.stop("SIGTERM");
        assert.equal(code, 0, server!.logs.join("\n"));
        const lines = server!.logs.filter((l) => l.trim());
        const parsed = lines.map((l) => JSON.parse(l));
        assert.ok(parsed.some((o) => o.msg === "stopped"));
        const requests = parsed.filter((o) => o.msg === "request");
        assert.ok(requests.length > 50);
        for (const r of requests) {
          assert.deepEqual(
            ["method", "route", "status", "ms"].filter((k) => !(k in r)),
            [],
            JSON.stringify(r),
          );
        }
        assert.ok(lines.every((l) => l.length < 2000 && !l.includes('"data"')));
        assert.ok(requests.some((r) => r.route === "/v2/models/:name/infer" && r.model === mlp.id));
      });
    } finally {
      await server?.stop("SIGKILL");
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

async function metricValue(
  api: (path: string) => Promise<Response>,
  series: string,
): Promise<number> {
  const text = await (await api("/metrics")).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

Deno.test({
  name: "server: request time limit stores nothing late; disconnects are 499; shutdown deadline",
  async fn(t) {
    const dataDir = await Deno.makeTempDir({ prefix: "sqz_server_limits_" });
    let server: RunningServer | undefined;
    try {
      // Uploads and compression requests take 600 ms after their body is read (test hook),
      // past their 300 ms limit; the demo model is preloaded, so there is one to compress.
      server = await startServer({
        dataDir,
        env: {
          SQZ_REQUEST_TIMEOUT_MS: "300",
          SQZ_TEST_REQUEST_DELAY_MS: "600",
          SQZ_SHUTDOWN_GRACE_MS: "1500",
        },
      });
      const s = server;
      const api = (path: string, init: RequestInit = {}) => fetch(`${s.url}${path}`, init);
      const state = async () => ({
        models: (await (await api("/v1/models")).json()).models.map((m: Json) => m.name),
        jobs: (await (await api("/v1/jobs")).json()).jobs.length,
        artifacts: await listDir(`${dataDir}/artifacts`),
        tmp: await listDir(`${dataDir}/tmp`),
      });
      const before = await state();
      assert.deepEqual(before.models, ["mnist"]);
      const ended = () => s.logs.filter((l) => l.includes('"timed-out request ended"')).length;

      await t.step("504: the handler goes on, but stores nothing afterwards", async () => {
        const mlpBytes = await Deno.readFile(MLP_PATH);
        const upload = await api("/v1/models?name=late", { method: "POST", body: mlpBytes });
        assert.equal(upload.status, 504);
        assert.equal((await upload.json()).error.code, "timeout");
        // The handler reached its commit point after the 504 and gave up there.
        await waitForLog(s, (o) => o.msg === "timed-out request ended");

        const form = new FormData();
        form.append("recipe", "int8");
        form.append("name", "late-result");
        form.append(
          "calibration",
          new File([encodeNpy(randomImages(4, 9)) as Uint8Array<ArrayBuffer>], "c.npy"),
        );
        const job = await api("/v1/models/mnist/compress", { method: "POST", body: form });
        assert.equal(job.status, 504);
        assert.equal((await job.json()).error.code, "timeout");
        while (ended() < 2) await new Promise((r) => setTimeout(r, 20));

        // No model, no name taken, no job, no calibration file, no temp file.
        assert.deepEqual(await state(), before);
        assert.equal((await api("/v1/models/late")).status, 404);
      });

      await t.step("a client that goes away mid-body: 499, not an internal error", async () => {
        const abort = new AbortController();
        let sending: () => void = () => {};
        const sent = new Promise<void>((r) => sending = r);
        const res = api("/v2/models/mnist/infer", {
          method: "POST",
          body: trickle(new Uint8Array(64 << 10), 64, 20, true, (n) => n > 0 && sending()),
          signal: abort.signal,
        });
        // The first piece is on its way (so are the headers): then the client goes away.
        await sent;
        await new Promise((r) => setTimeout(r, 100));
        abort.abort();
        await assert.rejects(res);
        const line = await waitForLog(s, (o) => o.msg === "request" && o.status === 499);
        assert.equal(line.error, "client_closed_request");
        assert.equal(line.route, "/v2/models/:name/infer");
      });

      await t.step("timeouts and disconnects are not counted or logged as internal", async () => {
        const text = await (await api("/metrics")).text();
        assert.match(
          text,
          /sqz_http_requests_total\{method="POST",route="\/v1\/models",status="504",model=""\} 1/,
        );
        assert.match(text, /status="499"/);
        assert.ok(!text.includes('status="500"'), text);
        const lines = s.logs.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
        assert.deepEqual(lines.filter((o) => o.level === "error"), []);
        assert.ok(!s.logs.some((l) => /BadResource|"internal"/.test(l)), s.logs.join("\n"));
      });

      await t.step("shutdown: a request that never ends is cut at the deadline", async () => {
        const abort = new AbortController();
        const stalled = api("/v2/models/mnist/infer", {
          method: "POST",
          body: trickle(new Uint8Array(1024), 8, 20, true),
          signal: abort.signal,
        }).catch((e) => e);
        await new Promise((r) => setTimeout(r, 200));
        const exit = s.stop("SIGTERM");
        await waitForLog(s, (o) => o.msg === "shutting down");
        // Meanwhile new requests are refused; health says so too.
        const refused = await api("/v1/models");
        assert.equal(refused.status, 503);
        assert.equal((await refused.json()).error.code, "unavailable");
        const ready = await api("/v2/health/ready");
        assert.equal(ready.status, 503);
        await ready.body?.cancel();
        assert.equal(await exit, 1);
        assert.ok(s.logs.some((l) => l.includes("did not finish in time")));
        abort.abort();
        await stalled;
      });
    } finally {
      await server?.stop("SIGKILL");
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

Deno.test("server parts: API keys file, config, session cache eviction, metrics text", async () => {
  // Keys: plain lines are hashed, `sha256:` lines are hashes; flags beat the environment.
  const dir = await Deno.makeTempDir({ prefix: "sqz_server_parts_" });
  try {
    const hashed = await sha256Hex(new TextEncoder().encode("hashed-key-12345678"));
    await Deno.writeTextFile(
      `${dir}/keys`,
      `# operators' keys\n\nplain-key-abcdefgh\nsha256:${hashed}\n`,
    );
    const cfg = await loadConfig({
      SQZ_API_KEYS_FILE: `${dir}/keys`,
      SQZ_API_KEYS: "env-key-0000000",
    }, []);
    assert.equal(cfg.apiKeyHashes.length, 3);
    for (const k of ["plain-key-abcdefgh", "hashed-key-12345678", "env-key-0000000"]) {
      assert.ok(await keyMatches(k, cfg.apiKeyHashes), k);
    }
    assert.ok(!(await keyMatches(`sha256:${hashed}`, cfg.apiKeyHashes)));
    assert.ok(!(await keyMatches("plain-key-abcdefg", cfg.apiKeyHashes)));
    assert.equal(cfg.host, "127.0.0.1");
    assert.equal(cfg.port, 8080);
    assert.equal(cfg.dataDir, "./data");
    assert.equal((await loadConfig({ PORT: "1" }, ["--port", "2", "--no-preload"])).port, 2);
    assert.equal((await loadConfig({}, ["--no-preload"])).preload, false);
    await assert.rejects(loadConfig({ PORT: "70000" }), ArgumentError);
    await assert.rejects(loadConfig({ SQZ_API_KEYS: "short" }), ArgumentError);
    await assert.rejects(loadConfig({ SQZ_MAX_INFER_BYTES: "lots" }), ArgumentError);
    await assert.rejects(loadConfig({}, ["--bogus"]), ArgumentError);
    await assert.rejects(loadConfig({ SQZ_API_KEYS_FILE: `${dir}/nope` }), ArgumentError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }

  // The session cache: over budget, the least recently used idle session goes; leased ones stay.
  const sources: Record<string, Uint8Array> = {
    mlp: await Deno.readFile(MLP_PATH),
    cnn: await Deno.readFile(new URL("../models/mnist_cnn.onnx", import.meta.url)),
  };
  const metrics = new ServerMetrics();
  const cache = new SessionCache(1, (id) => Promise.resolve({ bytes: sources[id] }), metrics);
  const [a1, a2] = await Promise.all([cache.acquire("mlp"), cache.acquire("mlp")]);
  assert.equal(a1.session, a2.session, "concurrent acquires share one load");
  assert.equal(metrics.sessionLoads.get(), 1);
  const b = await cache.acquire("cnn");
  b.release(); // over budget, but the MLP is leased: nothing to evict
  assert.equal(cache.size, 2);
  a1.release();
  a2.release(); // now the CNN is the idle one, and the least recently used
  assert.equal(cache.size, 1);
  assert.ok(cache.has("mlp") && !cache.has("cnn"));
  assert.equal(metrics.sessionEvictions.get(), 1);
  await assert.rejects(b.session.run({ input: randomImages(1, 0) }), /released/);
  assert.deepEqual(cache.memoryByModel().map(([id]) => id), ["mlp"]);
  const again = await cache.acquire("mlp");
  assert.equal(again.session, a1.session, "a cache hit");
  cache.evict("mlp"); // deleted while leased: released when the lease ends
  await again.session.run({ input: randomImages(1, 0) });
  again.release();
  await assert.rejects(again.session.run({ input: randomImages(1, 0) }), /released/);
  assert.equal(cache.size, 0);
  cache.close();

  // Every route the app serves is in the OpenAPI document, with its method.
  const appDir = await Deno.makeTempDir({ prefix: "sqz_server_app_" });
  const deps = await openDeps(await loadConfig({ SQZ_DATA_DIR: appDir }), new Logger(false));
  try {
    const app = buildApp(deps);
    const paths = OPENAPI.paths as Record<string, Record<string, unknown>>;
    const served = app.routes.filter((r) => r.method !== "ALL");
    assert.ok(served.length > 20);
    for (const r of served) {
      const p = r.path.replace(/:(\w+)/g, "{$1}");
      assert.ok(paths[p]?.[r.method.toLowerCase()], `openapi lacks ${r.method} ${p}`);
    }
  } finally {
    deps.sessions.close();
    deps.store.close();
    deps.lock.close();
    await Deno.remove(appDir, { recursive: true });
  }

  // Prometheus text: cumulative buckets, +Inf, _sum, _count, escaped label values.
  const h = new Histogram("x_seconds", "Some latency.", ["m"], [1, 0.1]);
  h.observe({ m: 'a"b\\' }, 0.05);
  h.observe({ m: 'a"b\\' }, 5);
  h.observe({ m: 'a"b\\' }, 0.5);
  assert.equal(
    h.render(),
    [
      "# HELP x_seconds Some latency.",
      "# TYPE x_seconds histogram",
      'x_seconds_bucket{m="a\\"b\\\\",le="0.1"} 1',
      'x_seconds_bucket{m="a\\"b\\\\",le="1"} 2',
      'x_seconds_bucket{m="a\\"b\\\\",le="+Inf"} 3',
      'x_seconds_sum{m="a\\"b\\\\"} 5.55',
      'x_seconds_count{m="a\\"b\\\\"} 3',
    ].join("\n"),
  );
});
