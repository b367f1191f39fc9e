/// <reference lib="dom" />
// The playground page (web/index.html; built to dist/ by scripts/build_web.ts and served by the
// service at /playground). It uses only the public API; in dist/ that import is ./sqz.js, shared
// with the compression worker (compress_worker.ts), which keeps the page responsive.
import {
  availableBuilds,
  bestBuild,
  inspectModel,
  type ModelReport,
  parseNpy,
  Session,
  type Tensor,
  type ValueMetadata,
} from "../src/mod.ts";
import type { WorkerReply, WorkerRequest } from "./compress_protocol.ts";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

interface Loaded {
  name: string;
  bytes: Uint8Array;
  report: ModelReport;
  session: Session;
  /** A session on the WebGPU backend, made when first asked for. */
  gpuSession?: Session;
}

let loaded: Loaded | undefined;
let lastArtifactUrl: string | undefined;

function escape(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function human(n: number): string {
  const u = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) n /= 1024, i++;
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

function fail(where: HTMLElement, e: unknown): void {
  where.innerHTML = `<span class="error">${escape(e instanceof Error ? e.message : e)}</span>`;
  where.dataset.state = "error";
}

const dims = (d: readonly (number | string)[] | undefined) => `[${(d ?? []).join(", ")}]`;

function renderModel(l: Loaded): void {
  const r = l.report;
  const io = (title: string, list: { name: string; type?: string; dims?: unknown[] }[]) =>
    `<h3>${title}</h3><table><tr><th>name</th><th>type</th><th>dims</th></tr>${
      list.map((t) =>
        `<tr><td>${escape(t.name)}</td><td>${escape(t.type ?? "?")}</td><td>${
          escape(dims(t.dims as (number | string)[]))
        }</td></tr>`
      ).join("")
    }</table>`;
  const ops = Object.entries(r.ops).sort((a, b) => b[1] - a[1]);
  const max = ops[0]?.[1] ?? 1;
  const hist = ops.map(([op, n]) =>
    `<tr><td>${escape(op)}</td><td>${n}</td><td><span class="bar" style="width:${
      Math.max(2, (160 * n) / max)
    }px"></span></td></tr>`
  ).join("");
  $("model-info").innerHTML = `
    <table id="model-summary">
      <tr><th>file</th><td>${escape(l.name)}</td></tr>
      <tr><th>size</th><td id="model-size" data-bytes="${l.bytes.length}">${
    human(l.bytes.length)
  }</td></tr>
      <tr><th>opset</th><td>${r.opset}</td></tr>
      <tr><th>nodes</th><td>${r.nodes}</td></tr>
      <tr><th>parameters</th><td>${r.parameters.toLocaleString("en")} (${
    human(r.parameterBytes)
  })</td></tr>
      <tr><th>multiply-adds</th><td>${r.macs.toLocaleString("en")}</td></tr>
      <tr><th>kernel build</th><td id="session-build">${l.session.info.build}, ${l.session.info.threads} thread(s)${
    l.session.info.threadNote ? ` (${escape(l.session.info.threadNote)})` : ""
  }</td></tr>
    </table>
    ${io("Inputs", r.inputs)}${io("Outputs", r.outputs)}
    <h3>Operators</h3><table id="op-histogram">${hist}</table>`;
}

async function loadModel(name: string, bytes: Uint8Array): Promise<void> {
  const status = $("model-status");
  status.textContent = `loading ${name}…`;
  status.dataset.state = "loading";
  try {
    const report = inspectModel(bytes);
    const session = await Session.create(bytes);
    void loaded?.session.release();
    void loaded?.gpuSession?.release();
    loaded = { name, bytes, report, session };
    renderModel(loaded);
    status.textContent = `${name} loaded`;
    status.dataset.state = "ready";
    $<HTMLButtonElement>("run-generated").disabled = false;
    $<HTMLButtonElement>("compress-btn").disabled = false;
  } catch (e) {
    fail(status, e);
  }
}

/** Fixed dims for an input: symbolic (batch) dims become 1. */
function concrete(meta: ValueMetadata): number[] {
  return meta.dims.map((d) => (typeof d === "number" ? d : 1));
}

/** The conformance convention: arange(n) / n. */
function generated(meta: ValueMetadata): Tensor {
  const d = concrete(meta);
  const n = d.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = i / n;
  return { type: "float32", dims: d, data };
}

/**
 * An image as the model's first input: resized to its spatial dims, grayscale for 1 channel and
 * RGB for 3, scaled to [0, 1], in NCHW or NHWC (whichever axis holds the channels). MNIST-style
 * models want a white digit on black: a light background is inverted.
 */
async function imageTensor(file: File, meta: ValueMetadata): Promise<Tensor> {
  const d = concrete(meta);
  if (d.length !== 4) throw new Error(`input ${meta.name} ${dims(d)} is not an image batch`);
  const nhwc = (d[3] === 1 || d[3] === 3) && !(d[1] === 1 || d[1] === 3);
  const [c, h, w] = nhwc ? [d[3], d[1], d[2]] : [d[1], d[2], d[3]];
  const bmp = await createImageBitmap(file);
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext("2d")!;
  ctx.drawImage(bmp, 0, 0, w, h);
  const px = ctx.getImageData(0, 0, w, h).data;
  const data = new Float32Array(c * h * w);
  let mean = 0;
  for (let i = 0; i < h * w; i++) mean += (px[4 * i] + px[4 * i + 1] + px[4 * i + 2]) / 765;
  const invert = c === 1 && mean / (h * w) > 0.5;
  for (let i = 0; i < h * w; i++) {
    for (let ch = 0; ch < c; ch++) {
      let v = c === 1 ? (px[4 * i] + px[4 * i + 1] + px[4 * i + 2]) / 765 : px[4 * i + ch] / 255;
      if (invert) v = 1 - v;
      data[nhwc ? i * c + ch : ch * h * w + i] = v;
    }
  }
  return { type: "float32", dims: d, data };
}

function describe(name: string, t: Tensor): string {
  const x = t.data as ArrayLike<number>;
  const n = x.length;
  let line = `${name}: ${t.type} ${dims(t.dims)}`;
  if (n > 1 && n <= 1000) {
    const top = Array.from({ length: n }, (_, i) => i).sort((a, b) => x[b] - x[a]).slice(0, 5);
    line += `\n  top-5: ${top.map((i) => `${i} (${Number(x[i]).toPrecision(4)})`).join(", ")}`;
    line += `\n  argmax: ${top[0]}`;
  } else if (n === 1) line += ` = ${x[0]}`;
  return line;
}

async function run(input: Tensor | "generated"): Promise<void> {
  const out = $("run-output");
  if (!loaded) return;
  out.dataset.state = "running";
  try {
    const meta = loaded.session.inputMetadata;
    const feeds: Record<string, Tensor> = {};
    for (const [i, m] of meta.entries()) {
      feeds[m.name] = i === 0 && input !== "generated" ? input : generated(m);
    }
    const backend = $<HTMLSelectElement>("backend").value;
    const session = backend === "webgpu"
      ? (loaded.gpuSession ??= await Session.create(loaded.bytes, { backend: "webgpu" }))
      : loaded.session;
    const t1 = performance.now();
    const result = await session.run(feeds);
    const ms = performance.now() - t1;
    const first = Object.values(result)[0];
    out.textContent = Object.entries(result).map(([k, v]) => describe(k, v)).join("\n") +
      `\n${ms.toFixed(2)} ms, backend ${session.info.backend}` +
      (session.info.adapter
        ? ` (${session.info.adapter}: ${session.info.nodes.webgpu} node(s) ` +
          `on the GPU, ${session.info.nodes.wasm} on wasm)`
        : ` (kernel build ${session.info.build})`);
    if (first && first.data.length > 1 && first.data.length <= 1000) {
      const x = first.data as ArrayLike<number>;
      let best = 0;
      for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
      out.dataset.argmax = String(best);
    }
    out.dataset.state = "done";
  } catch (e) {
    fail(out, e);
  }
}

async function readInput(file: File): Promise<void> {
  if (!loaded) return;
  try {
    const t = file.name.endsWith(".npy")
      ? parseNpy(new Uint8Array(await file.arrayBuffer()))
      : await imageTensor(file, loaded.session.inputMetadata[0]);
    await run(t);
  } catch (e) {
    fail($("run-output"), e);
  }
}

let worker: Worker | undefined;

async function compressModel(): Promise<void> {
  if (!loaded) return;
  const status = $("compress-status"), bar = $<HTMLProgressElement>("compress-progress");
  const dataFile = $<HTMLInputElement>("data-file").files?.[0];
  const labelsFile = $<HTMLInputElement>("labels-file").files?.[0];
  const req: WorkerRequest = {
    model: loaded.bytes,
    input: loaded.session.inputMetadata[0].name,
    recipe: $<HTMLSelectElement>("preset").value,
    samples: dataFile ? new Uint8Array(await dataFile.arrayBuffer()) : undefined,
    labels: labelsFile ? new Uint8Array(await labelsFile.arrayBuffer()) : undefined,
  };
  worker ??= new Worker(new URL("./compress_worker.js", import.meta.url), { type: "module" });
  $<HTMLButtonElement>("compress-btn").disabled = true;
  status.dataset.state = "running";
  status.textContent = "starting…";
  bar.value = 0;
  $("eval-summary").innerHTML = "";
  worker.onmessage = (e: MessageEvent<WorkerReply>) => {
    const m = e.data;
    if (m.type === "progress") {
      bar.value = m.progress;
      status.textContent = `${m.stage} (${Math.round(100 * m.progress)}%)`;
      return;
    }
    $<HTMLButtonElement>("compress-btn").disabled = false;
    if (m.type === "error") return fail(status, m.message);
    bar.value = 1;
    status.textContent = `done: ${human(loaded!.bytes.length)} → ${human(m.model.length)} (${
      (loaded!.bytes.length / m.model.length).toFixed(2)
    }× smaller)`;
    status.dataset.state = "done";
    const acc = m.accuracy, ref = m.referenceAccuracy;
    $("eval-summary").innerHTML = acc === undefined
      ? `<p>No labelled samples given: accuracy not measured.</p>`
      : `<p>accuracy <b id="eval-accuracy" data-value="${acc}">${(100 * acc).toFixed(2)}%</b>` +
        (ref !== undefined
          ? ` (float model <span id="eval-reference" data-value="${ref}">${
            (100 * ref).toFixed(2)
          }%</span>)`
          : "") +
        (m.agreement !== undefined ? `, top-1 agreement ${(100 * m.agreement).toFixed(2)}%` : "") +
        `</p>`;
    if (lastArtifactUrl) URL.revokeObjectURL(lastArtifactUrl);
    lastArtifactUrl = URL.createObjectURL(
      new Blob([m.model as Uint8Array<ArrayBuffer>], { type: "application/octet-stream" }),
    );
    const a = $<HTMLAnchorElement>("download");
    a.href = lastArtifactUrl;
    a.download = loaded!.name.replace(/\.onnx$/, "") +
      `.${req.recipe.replace(/[^\w.-]/g, "_")}.onnx`;
    a.dataset.bytes = String(m.model.length);
    a.hidden = false;
    if (m.reportHtml) {
      const f = $<HTMLIFrameElement>("report");
      f.srcdoc = m.reportHtml;
      f.hidden = false;
    }
  };
  worker.postMessage(req);
}

function wire(): void {
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", async (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const f = e.dataTransfer?.files[0];
    if (f) await loadModel(f.name, new Uint8Array(await f.arrayBuffer()));
  });
  $<HTMLInputElement>("model-file").addEventListener("change", async (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) await loadModel(f.name, new Uint8Array(await f.arrayBuffer()));
  });
  $<HTMLInputElement>("input-file").addEventListener("change", (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) void readInput(f);
  });
  $("run-generated").addEventListener("click", () => void run("generated"));
  $("compress-btn").addEventListener("click", () => void compressModel());
  const gpu = "gpu" in navigator;
  document.querySelector<HTMLOptionElement>("#backend option[value=webgpu]")!.disabled = !gpu;
  $("backend-note").textContent = gpu
    ? "This browser has WebGPU: choose webgpu to run the nodes that have GPU kernels on it."
    : "No WebGPU in this browser: every node runs on wasm.";
}

wire();
$("engine").textContent = `sqz ready: kernel builds ${
  availableBuilds().join(", ")
}; this page uses ${bestBuild()}. Cross-origin isolated: ${globalThis.crossOriginIsolated}.`;
$("engine").dataset.state = "ready";
