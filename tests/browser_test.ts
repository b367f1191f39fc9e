// sqz in a real browser: Debian's Chromium (installed by the test where apt-get is available),
// driven by playwright-core, loads the playground from dist/ as the service serves it
// (server/routes/playground.ts, cross-origin isolated). In the page it runs the MNIST CNN on
// real digits and compresses it to int8 in a Web Worker; the page's answers are checked
// against the same model and artifact run by sqz under Deno. A screenshot of the page is
// written to $SQZ_SCREENSHOT (docs/playground.png in the README) when that is set.
import * as assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Hono } from "hono";
import { chromium } from "playwright-core";
import { playgroundRoutes } from "../server/routes/playground.ts";
import { encodeNpy, Session, type Tensor } from "../src/mod.ts";
import { mnistSplit } from "../src/eval/mnist.ts";
import { ensureDebianTool } from "./system_tools.ts";

const ROOT = new URL("../", import.meta.url);
const MODEL = new URL("models/mnist_cnn.onnx", ROOT);
const SAMPLES = 300;

async function distBuilt(): Promise<boolean> {
  try {
    await Deno.stat(new URL("dist/index.html", ROOT));
    await Deno.stat(new URL("dist/sqz.js", ROOT));
    return true;
  } catch {
    return false;
  }
}

function rows(x: Tensor, from: number, to: number): Tensor {
  const per = x.data.length / x.dims[0];
  return {
    type: "float32",
    dims: [to - from, ...x.dims.slice(1)],
    data: (x.data as Float32Array).slice(from * per, to * per),
  };
}

function argmax(x: ArrayLike<number>, from = 0, n = x.length): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (x[from + i] > x[from + best]) best = i;
  return best;
}

async function accuracy(model: Uint8Array, x: Tensor, y: Uint8Array): Promise<number> {
  const s = await Session.create(model);
  let right = 0;
  for (let i = 0; i < y.length; i++) {
    const out = Object.values(await s.run({ [s.inputMetadata[0].name]: rows(x, i, i + 1) }))[0];
    if (argmax(out.data as Float32Array) === y[i]) right++;
  }
  await s.release();
  return right / y.length;
}

const exe = await ensureDebianTool("chromium", "chromium");
const built = await distBuilt();
if (!built) console.warn("skipping browser tests: dist/ is not built (deno task build:web)");

Deno.test({
  name: "browser: the playground runs the MNIST CNN and compresses it to int8 in Chromium",
  ignore: !exe || !built,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const app = new Hono().route("/", playgroundRoutes());
    const ac = new AbortController();
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
      app.fetch,
    );
    const base = `http://127.0.0.1:${server.addr.port}`;
    const browser = await chromium.launch({
      executablePath: exe,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    const pageErrors: string[] = [];
    try {
      const page = await browser.newPage({ viewport: { width: 1100, height: 1400 } });
      page.on("pageerror", (e) => pageErrors.push(String(e)));
      const res = await page.goto(`${base}/playground/`);
      assert.equal(res?.status(), 200);
      assert.equal(res?.headers()["cross-origin-embedder-policy"], "require-corp");
      await page.waitForSelector("#engine[data-state=ready]", { timeout: 30_000 });
      const engine = await page.textContent("#engine");
      // Chromium runs relaxed SIMD, and the COOP/COEP headers make the page cross-origin isolated.
      assert.match(engine!, /uses relaxed/);
      assert.match(engine!, /isolated: true/);

      const { test } = await mnistSplit(0);
      const modelBytes = await Deno.readFile(MODEL);
      await page.setInputFiles("#model-file", {
        name: "mnist_cnn.onnx",
        mimeType: "application/octet-stream",
        buffer: Buffer.from(modelBytes),
      });
      await page.waitForSelector("#model-status[data-state=ready]", { timeout: 60_000 });
      const hist = await page.textContent("#op-histogram");
      assert.match(hist!, /Conv/);
      assert.equal(await page.getAttribute("#model-size", "data-bytes"), String(modelBytes.length));

      // One real digit per class: the page's prediction equals sqz's under Deno.
      const deno = await Session.create(modelBytes);
      for (let c = 0; c < 10; c++) {
        const i = test.y.indexOf(c);
        const digit = rows(test.x, i, i + 1);
        const want = argmax(
          Object.values(await deno.run({ [deno.inputMetadata[0].name]: digit }))[0]
            .data as Float32Array,
        );
        await page.evaluate(`document.getElementById("run-output").dataset.state = ""`);
        await page.setInputFiles("#input-file", {
          name: `digit${c}.npy`,
          mimeType: "application/octet-stream",
          buffer: Buffer.from(encodeNpy(digit)),
        });
        await page.waitForSelector("#run-output[data-state=done]", { timeout: 30_000 });
        const got = Number(await page.getAttribute("#run-output", "data-argmax"));
        assert.equal(got, want, `digit ${c}: page predicts ${got}, Deno ${want}`);
      }
      await deno.release();

      // int8 in the page's worker, calibrated and evaluated on real digits.
      const x = rows(test.x, 0, SAMPLES), y = test.y.slice(0, SAMPLES);
      await page.setInputFiles("#data-file", {
        name: "digits.npy",
        mimeType: "application/octet-stream",
        buffer: Buffer.from(encodeNpy(x)),
      });
      await page.setInputFiles("#labels-file", {
        name: "labels.npy",
        mimeType: "application/octet-stream",
        buffer: Buffer.from(
          encodeNpy({ type: "int32", dims: [SAMPLES], data: Int32Array.from(y) }),
        ),
      });
      await page.selectOption("#preset", "int8");
      await page.click("#compress-btn");
      await page.waitForSelector("#compress-status[data-state=done]", { timeout: 240_000 });
      const acc = Number(await page.getAttribute("#eval-accuracy", "data-value"));
      const ref = Number(await page.getAttribute("#eval-reference", "data-value"));
      assert.ok(ref > 0.95, `float accuracy in the page ${ref}`);
      assert.ok(acc >= ref - 0.01, `int8 accuracy ${acc} vs float ${ref}`);

      // The downloadable artifact is the model the page evaluated: same accuracy under Deno.
      const href = await page.getAttribute("#download", "href");
      const artifact = new Uint8Array(
        await page.evaluate(
          async (u) => [...new Uint8Array(await (await fetch(u!)).arrayBuffer())],
          href,
        ),
      );
      assert.equal(String(artifact.length), await page.getAttribute("#download", "data-bytes"));
      assert.ok(artifact.length < modelBytes.length / 2, `${artifact.length} bytes`);
      assert.equal(await accuracy(artifact, x, y), acc);
      console.log(
        `browser: int8 accuracy ${(100 * acc).toFixed(2)}% (float ${(100 * ref).toFixed(2)}%) ` +
          `on ${SAMPLES} digits, ${modelBytes.length} → ${artifact.length} bytes`,
      );

      const shot = Deno.env.get("SQZ_SCREENSHOT");
      if (shot) await page.screenshot({ path: shot, fullPage: true });
      assert.deepEqual(pageErrors, []);
    } finally {
      await browser.close();
      ac.abort();
      await server.finished;
    }
  },
});

// esbuild strips types without checking them: check the page's sources against the DOM types.
Deno.test("browser: the playground's sources type-check", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["check", "web/playground.ts", "web/compress_worker.ts", "scripts/build_web.ts"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
});
