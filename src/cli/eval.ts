// `sqz eval out.onnx --data x.npy --labels y.npy [--reference model.onnx] [--html report.html]`:
// the evaluation report — accuracy, agreement with the float model, per-layer SQNR, size,
// latency — as a summary on stdout, JSON (--json) and a self-contained HTML page (--html).
// Sizes and ratios count the external data files a model's tensors name (found beside it).
import { parseArgs } from "node:util";
import { ArgumentError, type EvalReport, evaluate, reportHtml, Session } from "../mod.ts";
import { readNpy, writeAtomic } from "./files.ts";

const USAGE = "usage: sqz eval model.onnx --data x.npy [--labels y.npy] [--reference float.onnx] " +
  "[--html report.html] [--json report.json] [--kfold K] [--batch N]";

export async function evalCommand(args: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        data: { type: "string" },
        labels: { type: "string" },
        reference: { type: "string" },
        html: { type: "string" },
        json: { type: "string" },
        kfold: { type: "string" },
        batch: { type: "string", default: "64" },
      },
    });
  } catch (e) {
    throw new ArgumentError(`${(e as Error).message}\n${USAGE}`);
  }
  const { positionals, values } = parsed;
  const model = positionals[0];
  if (!model || positionals.length > 1) throw new ArgumentError(USAGE);
  if (!values.data) throw new ArgumentError(`--data is required\n${USAGE}`);
  const x = await readNpy(values.data);
  const probe = await Session.create(model);
  const inputs = probe.inputMetadata;
  await probe.release();
  if (inputs.length !== 1) {
    throw new ArgumentError(`--data feeds a model with one input; this one has ${inputs.length}`);
  }
  let labels: Int32Array | undefined;
  if (values.labels) {
    const y = await readNpy(values.labels);
    if (y.dims.length !== 1 || y.dims[0] !== x.dims[0]) {
      throw new ArgumentError(
        `--labels must be 1-D with one label per sample (${x.dims[0]}), got [${y.dims}]`,
      );
    }
    labels = Int32Array.from(y.data as ArrayLike<number | bigint>, Number);
  }
  const kfold = values.kfold === undefined ? undefined : Number(values.kfold);
  if (kfold !== undefined && (!Number.isInteger(kfold) || kfold < 2)) {
    throw new ArgumentError("--kfold must be an integer ≥ 2");
  }
  const batchSize = Number(values.batch);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new ArgumentError("--batch must be ≥ 1");
  const report = await evaluate(
    model,
    { inputs: { [inputs[0].name]: x }, labels, batchSize },
    { reference: values.reference, kfold },
  );
  printSummary(model, report);
  if (values.json) await writeAtomic(values.json, JSON.stringify(report, null, 2));
  if (values.html) await writeAtomic(values.html, reportHtml(report, model));
}

function printSummary(model: string, r: EvalReport): void {
  const pct = (v: number | undefined) => (v === undefined ? "–" : `${(v * 100).toFixed(2)}%`);
  const lines = [`${model}: ${r.samples} samples, ${r.classes} classes (output '${r.output}')`];
  if (r.accuracy !== undefined) {
    lines.push(
      `  accuracy ${pct(r.accuracy)}` +
        (r.macro
          ? `  macro precision ${pct(r.macro.precision)} recall ${pct(r.macro.recall)} ` +
            `F1 ${pct(r.macro.f1)}`
          : ""),
    );
  }
  if (r.kfold) {
    lines.push(`  ${r.kfold.k}-fold accuracy ${pct(r.kfold.mean)} ± ${pct(r.kfold.std)}`);
  }
  if (r.reference) {
    lines.push(
      `  vs reference: accuracy ${pct(r.reference.accuracy)}, top-1 agreement ` +
        `${pct(r.agreement)}, KL ${
          typeof r.klMean === "number" ? r.klMean.toExponential(2) : r.klMean
        }, ${r.reference.compressionRatio.toFixed(2)}× smaller ` +
        `(gzip ${r.reference.gzipRatio.toFixed(2)}×)`,
      `  reference size ${sizeText(r.reference.model)}`,
    );
  }
  lines.push(
    `  size ${sizeText(r.model)}, latency p50 ` +
      `${r.latency.p50Ms?.toFixed(3) ?? "–"} ms p99 ${
        r.latency.p99Ms?.toFixed(3) ?? "–"
      } ms, memory ` +
      `${(r.memory.totalBytes / 2 ** 20).toFixed(2)} MiB`,
  );
  for (const l of r.layers.filter((l) => l.sqnrDb !== undefined)) {
    lines.push(
      `  ${l.name.padEnd(16)} ${String(l.op).padEnd(16)} SQNR ${
        typeof l.sqnrDb === "number" ? l.sqnrDb.toFixed(1) : l.sqnrDb
      } dB`,
    );
  }
  for (const n of r.notes) lines.push(`  note: ${n}`);
  console.log(lines.join("\n"));
}

/** "N bytes (gzip G)", with the .onnx and each external data file when there are some. */
function sizeText(m: EvalReport["model"]): string {
  const ext = m.externalFiles ?? [];
  const parts = ext.length
    ? ` = ${m.graphBytes} .onnx + ${ext.map((f) => `${f.bytes} ${f.location}`).join(" + ")}`
    : "";
  return `${m.bytes} bytes${parts} (gzip ${m.gzipBytes})`;
}
