// `sqz compress model.onnx --recipe int8 --calib data.npy -o out.onnx`: compresses a model and
// prints what happened per layer. A progress bar on a terminal, stage lines otherwise.
import { parseArgs } from "node:util";
import cliProgress from "cli-progress";
import {
  ArgumentError,
  batchFeeds,
  compress,
  type CompressReport,
  parseNpy,
  Session,
  type Tensor,
} from "../mod.ts";

const USAGE =
  "usage: sqz compress model.onnx --recipe int8|int8-dynamic|int4|binary|ternary|prune:0.9|" +
  "svd:0.95|cluster:32|recipe.json [--calib data.npy] [--calib-batch N] -o out.onnx [--json]";

export async function compressCommand(args: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        recipe: { type: "string", short: "r" },
        calib: { type: "string" },
        "calib-batch": { type: "string", default: "32" },
        output: { type: "string", short: "o" },
        json: { type: "boolean", default: false },
      },
    });
  } catch (e) {
    throw new ArgumentError(`${(e as Error).message}\n${USAGE}`);
  }
  const { positionals, values } = parsed;
  const modelPath = positionals[0];
  if (!modelPath || positionals.length > 1) throw new ArgumentError(USAGE);
  if (!values.recipe) throw new ArgumentError(`--recipe is required\n${USAGE}`);
  if (!values.output) throw new ArgumentError(`-o out.onnx is required\n${USAGE}`);
  const batch = Number(values["calib-batch"]);
  if (!Number.isInteger(batch) || batch < 1) {
    throw new ArgumentError(`--calib-batch must be a positive integer`);
  }
  const recipe = values.recipe.endsWith(".json")
    ? await Deno.readTextFile(values.recipe).catch((e) => {
      throw new ArgumentError(`cannot read recipe '${values.recipe}': ${e.message}`);
    })
    : values.recipe;

  let calibration: Iterable<Record<string, Tensor>> | undefined;
  if (values.calib) {
    const bytes = await Deno.readFile(values.calib).catch((e) => {
      throw new ArgumentError(`cannot read '${values.calib}': ${e.message}`);
    });
    const t = parseNpy(bytes);
    const probe = await Session.create(modelPath);
    const inputs = probe.inputMetadata;
    await probe.release();
    if (inputs.length !== 1) {
      throw new ArgumentError(
        `--calib needs a model with one input; this one has ${inputs.length}`,
      );
    }
    if (t.type !== inputs[0].type) {
      throw new ArgumentError(
        `${values.calib} is ${t.type}, the input '${inputs[0].name}' is ${inputs[0].type}`,
      );
    }
    calibration = batchFeeds(inputs[0].name, t, batch);
  }

  const tty = Deno.stderr.isTerminal();
  const bar = tty
    ? new cliProgress.SingleBar(
      { format: " {bar} {percentage}% | {stage}", hideCursor: true, clearOnComplete: true },
      cliProgress.Presets.shades_classic,
    )
    : undefined;
  bar?.start(100, 0, { stage: "start" });
  let lastStage = "";
  const { model, report } = await compress(modelPath, recipe, {
    calibration,
    onProgress: (p, stage) => {
      if (bar) bar.update(Math.round(p * 100), { stage });
      else if (stage !== lastStage) console.error(`… ${stage}`);
      lastStage = stage;
    },
  }).finally(() => bar?.stop());

  // Written beside the target and renamed: a failed write never leaves half a model.
  const tmp = `${values.output}.tmp-${crypto.randomUUID()}`;
  try {
    await Deno.writeFile(tmp, model);
    await Deno.rename(tmp, values.output);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw new ArgumentError(`cannot write '${values.output}': ${(e as Error).message}`);
  }
  if (values.json) console.log(JSON.stringify(report, null, 2));
  else printReport(report, values.output);
}

function kb(b: number): string {
  return b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(2)} MiB` : `${(b / 1024).toFixed(1)} KiB`;
}

export function printReport(r: CompressReport, out: string): void {
  const rows = r.layers.map((l) => [
    l.name,
    l.op,
    l.method,
    String(l.params),
    l.nonzeros === l.params ? "" : `${((1 - l.nonzeros / l.params) * 100).toFixed(0)}% zero`,
    `${kb(l.bytesBefore)} → ${kb(l.bytesAfter)}`,
  ]);
  const head = ["layer", "op", "method", "params", "sparsity", "weights"];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i])).join("  ");
  console.log(line(head));
  for (const row of rows) console.log(line(row));
  const s = r.size;
  console.log(
    `\n${out}: ${kb(s.before)} → ${kb(s.after)} (${(s.before / s.after).toFixed(2)}×), ` +
      `gzip ${kb(s.gzipBefore)} → ${kb(s.gzipAfter)} (${(s.gzipBefore / s.gzipAfter).toFixed(2)}×)`,
  );
  for (const n of r.notes) console.log(`note: ${n}`);
}
