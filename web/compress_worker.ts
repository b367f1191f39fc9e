/// <reference lib="webworker" />
// The playground's compression worker: compress() and evaluate() off the page's thread, with
// progress messages for its progress bar. Protocol: compress_protocol.ts.
import { batchFeeds, compress, evaluate, parseNpy, reportHtml, type Tensor } from "../src/mod.ts";
import type { WorkerReply, WorkerRequest } from "./compress_protocol.ts";

const CALIBRATION_SAMPLES = 256;

function labelsOf(t: Tensor): Int32Array {
  const out = new Int32Array(t.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Number(t.data[i]);
  return out;
}

/** The first n samples of a batch tensor. */
function head(t: Tensor, n: number): Tensor {
  const total = t.dims[0] ?? 0;
  if (n >= total) return t;
  const row = t.data.length / total;
  return { ...t, dims: [n, ...t.dims.slice(1)], data: t.data.slice(0, n * row) } as Tensor;
}

async function handle(req: WorkerRequest): Promise<WorkerReply> {
  const post = (m: WorkerReply) => self.postMessage(m);
  const samples = req.samples ? parseNpy(req.samples) : undefined;
  const labels = req.labels ? labelsOf(parseNpy(req.labels)) : undefined;
  if (samples && samples.type !== "float32") {
    throw new Error(`samples must be float32, got ${samples.type}`);
  }
  if (labels && samples && labels.length !== samples.dims[0]) {
    throw new Error(`${labels.length} labels for ${samples.dims[0]} samples`);
  }
  const calibration = samples
    ? [...batchFeeds(req.input, head(samples, CALIBRATION_SAMPLES), 32)]
    : undefined;
  const result = await compress(req.model, req.recipe, {
    calibration,
    onProgress: (progress, stage) => post({ type: "progress", progress: 0.8 * progress, stage }),
  });
  if (!samples) return { type: "done", model: result.model };
  post({ type: "progress", progress: 0.85, stage: "evaluating" });
  const dataset = { inputs: { [req.input]: samples }, labels };
  const report = await evaluate(result.model, dataset, {
    reference: req.model,
    latencyRuns: 10,
    externalData: result.external,
  });
  return {
    type: "done",
    model: result.model,
    accuracy: report.accuracy,
    referenceAccuracy: report.reference?.accuracy,
    agreement: report.agreement,
    reportHtml: reportHtml(report, `sqz: ${req.recipe}`),
  };
}

self.onmessage = async (e: MessageEvent<WorkerRequest>) => {
  let reply: WorkerReply;
  try {
    reply = await handle(e.data);
  } catch (err) {
    reply = { type: "error", message: err instanceof Error ? err.message : String(err) };
  }
  self.postMessage(reply, reply.type === "done" ? [reply.model.buffer] : []);
};
