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
import { readSse, type RunningServer, startServer } from "../server/spawn.ts";
import { loadConfig } from "../server/config.ts";
import { keyMatches } from "../server/auth.ts";
import { SessionCache } from "../server/sessions.ts";
import { Histogram, ServerMetrics } from "../server/metrics.ts";

const KEY = "test-key-0123456789";
const OTHER_KEY = "second-key-abcdefgh";
const MLP_PATH = new URL("../models/mnist_mlp.onnx", import.meta.url);
const MODEL_ID_RE = /^m_[a-z2-7]{24}$/;
const JOB_ID_RE = /^j_[a-z2-7]{24}$/;

interface Json {
  // deno-lint-ignore no-explicit-any
  [k: string]: any;
}

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

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

function randomImages(n: number, seed: number): Tensor {
  const r = rng(seed);
  return { type: "float32", dims: [n, 1, 28, 28], data: Float32Array.from({ length: n * 784 }, r) };
}

async function listDir(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
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

      await t.step("bad recipes and calibration data: 4xx and no job", async () => {
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
        // Synthetic inputs: agreement with the parent, no accuracy.
        assert.equal(report.evaluation.samples, 64);
        assert.equal(report.evaluation.accuracy, undefined);
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
        await error(
          await infer(input({ shape: [100, 1, 28, 28], data: new Array(78400).fill(0) })),
          413,
          "too_many_elements",
        );
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
        assert.equal(failuresAfter - failuresBefore, 12);
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
            'sqz_job_duration_seconds_count{state="succeeded"} 3',
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
            "/metrics",
            "/openapi.json",
            "/docs",
          ]
        ) assert.ok(spec.paths[p], `openapi lacks ${p}`);
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
