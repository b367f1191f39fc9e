// The service survives crashes and restarts. Three server processes in turn on one data dir:
//
//   1. Jobs are slowed by the test hook SQZ_TEST_JOB_DELAY_MS (the worker waits before it
//      compresses). Job A (the MLP, with calibration data) is running, job B (the CNN) queued
//      behind it; deleting a model a job uses is refused. Then kill -9. While the server is
//      down, job B's input file is deleted, and a half-written temp file and an orphan artifact
//      are planted. (Before that: a second server on the same data dir refuses to start.)
//   2. Restart: job A is re-queued and runs again from the start to success, job B is failed
//      with the reason, the temp file and the orphan are gone, every artifact's name is the
//      SHA-256 of its bytes. Job C starts; SIGTERM while it runs: a graceful stop hands it
//      back to the queue (the attempt does not count) and exits 0.
//   3. Restart: job C completes.
import assert from "node:assert/strict";
import { encodeNpy, type Tensor } from "../src/mod.ts";
import { rng } from "./util.ts";
import { readSse, type RunningServer, startServer, trickle, waitForLog } from "../server/spawn.ts";
import { client, listDir } from "./server_client.ts";

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("server: kill -9 during a job, restart, resume or fail; graceful stop re-queues", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "sqz_restart_test_" });
  const servers: RunningServer[] = [];
  const start = async (delayMs: number) => {
    const s = await startServer({ dataDir, env: { SQZ_TEST_JOB_DELAY_MS: String(delayMs) } });
    servers.push(s);
    return s;
  };
  try {
    // -- 1: two jobs, then kill -9 while the first one runs ---------------------------------
    let s = await start(60_000);
    let { api, json } = client(s.url);
    const mlpBytes = await Deno.readFile(new URL("../models/mnist_mlp.onnx", import.meta.url));
    const mlp = await json(
      await api("/v1/models?name=mlp", { method: "POST", body: mlpBytes }),
      201,
    );
    const mnist = await json(await api("/v1/models/mnist"), 200);
    const r = rng(3);
    const calib: Tensor = {
      type: "float32",
      dims: [16, 1, 28, 28],
      data: Float32Array.from({ length: 16 * 784 }, r),
    };
    const form = new FormData();
    form.append("recipe", "int8");
    form.append("calibration", new File([encodeNpy(calib) as Uint8Array<ArrayBuffer>], "c.npy"));
    const jobA = await json(
      await api("/v1/models/mlp/compress", { method: "POST", body: form }),
      202,
    );
    const jobB = await json(
      await api("/v1/models/mnist/compress", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ recipe: "int4" }),
      }),
      202,
    );
    // Job A's worker is in its test delay: it is running.
    await readSse(await api(`/v1/jobs/${jobA.id}/events`), (e) => e.data.stage === "test delay");
    assert.equal((await json(await api(`/v1/jobs/${jobA.id}`), 200)).state, "running");
    assert.equal((await json(await api(`/v1/jobs/${jobB.id}`), 200)).state, "queued");
    // Models in use by unfinished jobs cannot be deleted.
    for (const id of [mlp.id, mnist.id]) {
      const res = await api(`/v1/models/${id}`, { method: "DELETE" });
      assert.equal(res.status, 409);
      assert.equal((await res.json()).error.code, "conflict");
    }
    // One server per data dir: a second one refuses to start.
    await assert.rejects(
      startServer({ dataDir, env: { PORT: "0" } }),
      /in use by another sqz server/,
    );
    const calibSha = await sha256Hex(encodeNpy(calib));
    assert.ok((await listDir(`${dataDir}/artifacts`)).includes(calibSha));
    await s.stop("SIGKILL");

    // While it is down: job B's input is lost; a crash left a temp file and an orphan.
    await Deno.remove(`${dataDir}/artifacts/${mnist.sha256}`);
    await Deno.writeFile(`${dataDir}/tmp/${crypto.randomUUID()}`, new Uint8Array(1000));
    const orphan = new TextEncoder().encode("an artifact no model refers to");
    const orphanSha = await sha256Hex(orphan);
    await Deno.writeFile(`${dataDir}/artifacts/${orphanSha}`, orphan);

    // -- 2: restart: A resumes, B fails; then a graceful stop during job C -------------------
    s = await start(1500);
    ({ api, json } = client(s.url));
    const eventsA = await readSse(await api(`/v1/jobs/${jobA.id}/events`));
    const states = eventsA.filter((e) => e.event === "state").map((e) => e.data.state);
    assert.deepEqual(states, ["queued", "running", "queued", "running", "succeeded"]);
    const requeue = eventsA.find((e, i) =>
      i > 0 && e.event === "state" && e.data.state === "queued"
    );
    assert.match(requeue!.data.reason, /restarted/);
    const a = await json(await api(`/v1/jobs/${jobA.id}`), 200);
    assert.equal(a.state, "succeeded");
    assert.equal(a.attempts, 2);
    const resultA = await json(await api(`/v1/models/${a.resultModelId}`), 200);
    assert.equal(resultA.parentId, mlp.id);
    const reportA = await json(await api(`/v1/jobs/${jobA.id}/report`), 200);
    assert.ok(reportA.compression.notes.some((n: string) => n.startsWith("int8 static")));

    const b = await json(await api(`/v1/jobs/${jobB.id}`), 200);
    assert.equal(b.state, "failed");
    assert.equal(b.error.code, "input_missing");
    assert.match(b.error.message, new RegExp(mnist.id));
    const eventsB = await readSse(await api(`/v1/jobs/${jobB.id}/events`));
    assert.equal(eventsB[eventsB.length - 1].data.state, "failed");

    assert.deepEqual(await listDir(`${dataDir}/tmp`), []);
    const files = await listDir(`${dataDir}/artifacts`);
    assert.ok(!files.includes(orphanSha), "the orphan artifact is removed");
    assert.ok(!files.includes(calibSha), "a finished job's calibration data is removed");
    assert.ok(files.includes(mlp.sha256) && files.includes(resultA.sha256));
    for (const f of files) {
      assert.equal(await sha256Hex(await Deno.readFile(`${dataDir}/artifacts/${f}`)), f);
    }

    const jobC = await json(
      await api("/v1/models/mlp/compress", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ recipe: "prune:0.5", name: "mlp-pruned" }),
      }),
      202,
    );
    await readSse(await api(`/v1/jobs/${jobC.id}/events`), (e) => e.data.stage === "test delay");
    assert.equal(await s.stop("SIGTERM"), 0, s.logs.join("\n"));
    assert.ok(s.logs.some((l) => l.includes('"job interrupted by shutdown"')));

    // -- 3: restart: C completes, its interrupted attempt not counted ------------------------
    s = await start(0);
    ({ api, json } = client(s.url));
    const eventsC = await readSse(await api(`/v1/jobs/${jobC.id}/events`));
    const last = eventsC[eventsC.length - 1];
    assert.equal(last.data.state, "succeeded", JSON.stringify(eventsC.map((e) => e.data)));
    assert.ok(eventsC.some((e) => /shutting down/.test(e.data.reason ?? "")));
    const c = await json(await api(`/v1/jobs/${jobC.id}`), 200);
    assert.equal(c.attempts, 1);
    assert.equal((await json(await api("/v1/models/mlp-pruned"), 200)).id, c.resultModelId);
    // Nothing was re-queued or failed at this start: the stop left a clean queue.
    assert.equal((await json(await api("/v1/jobs?state=queued"), 200)).jobs.length, 0);
    assert.equal(await s.stop("SIGTERM"), 0);
  } finally {
    for (const s of servers) await s.stop("SIGKILL");
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("server: SIGTERM during a slow upload finishes it (201), then exits 0", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "sqz_shutdown_test_" });
  let s: RunningServer | undefined;
  try {
    s = await startServer({ dataDir, env: { SQZ_PRELOAD: "0" } });
    const server = s;
    const { api, json } = client(server.url);
    const mlpBytes = await Deno.readFile(new URL("../models/mnist_mlp.onnx", import.meta.url));
    // About a second of upload (curl --limit-rate's pace); SIGTERM once it is under way.
    let started: () => void = () => {};
    const underway = new Promise<void>((r) => started = r);
    const upload = api("/v1/models?name=slow", {
      method: "POST",
      headers: { "Content-Type": "application/octet-stream" },
      body: trickle(mlpBytes, 20, 50, false, (n) => n === 3 && started()),
    });
    await underway;
    const exit = server.stop("SIGTERM");
    await waitForLog(server, (o) => o.msg === "shutting down");
    // While it drains, new requests are refused.
    const refused = await api("/v1/models");
    assert.equal(refused.status, 503);
    assert.equal((await refused.json()).error.code, "unavailable");
    const m = await json(await upload, 201);
    assert.equal(m.name, "slow");
    assert.equal(m.bytes, mlpBytes.length);
    assert.equal(await exit, 0, server.logs.join("\n"));
    assert.ok(server.logs.some((l) => l.includes('"stopped"')));
    assert.ok(
      !server.logs.some((l) => /"level":"error"|BadResource/.test(l)),
      server.logs.join("\n"),
    );
    assert.equal(
      await sha256Hex(await Deno.readFile(`${dataDir}/artifacts/${m.sha256}`)),
      m.sha256,
    );
  } finally {
    await s?.stop("SIGKILL");
    await Deno.remove(dataDir, { recursive: true });
  }
});
