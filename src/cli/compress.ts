// `sqz compress model.onnx --recipe int8 --calib data.npy -o out.onnx`: compresses a model and
// prints what happened per layer. A progress bar on a terminal, stage lines otherwise.
//
// Fine-tuning (a `+ft` preset or a recipe with a `finetune` block):
//   sqz compress model.onnx --recipe binary+ft --train x.npy [--labels y.npy]
//     [--val x.npy [y.npy]] [--epochs N] [--distill T,alpha] [--teacher t.onnx] -o out.onnx
// --epochs and --distill override the recipe's finetune block. On a terminal the bar shows
// the last epoch's loss and validation accuracy and each finished epoch leaves a line above
// it; off a terminal one line per epoch. Ctrl-C aborts the run (exit 130) and writes
// nothing.
//
// Sizes count external data: a model whose weights sit in `model.onnx.data` beside it is
// reported at both files' size. An artifact whose weights exceed what one .onnx can hold
// (2 GiB, or --external-data-threshold bytes) is written as `out.onnx` plus `out.onnx.data`.
import { parseArgs } from "node:util";
import cliProgress from "cli-progress";
import {
  ArgumentError,
  batchFeeds,
  compress,
  type CompressOptions,
  type CompressReport,
  parseRecipe,
  Session,
  type Tensor,
} from "../mod.ts";
import { readNpy, writeAtomic } from "./files.ts";

/** What onProgress receives at the end of an epoch (src/train/types.ts). */
type EpochProgress = NonNullable<Parameters<NonNullable<CompressOptions["onProgress"]>>[2]>;

const USAGE =
  "usage: sqz compress model.onnx --recipe int8|int8-dynamic|int4|int4:matmulnbits|binary|ternary|" +
  "prune:0.9|svd:0.95|cluster:32|<preset>+ft|recipe.json [--calib data.npy] [--calib-batch N] " +
  "[--train x.npy [--labels y.npy]] [--val x.npy [y.npy]] [--epochs N] [--distill T,alpha] " +
  "[--teacher t.onnx] [--external-data-threshold BYTES] -o out.onnx [--json]";

/** Exit status of a run stopped by Ctrl-C (128 + SIGINT), as shells report it. */
const INTERRUPTED = 130;

/**
 * `--val x.npy y.npy` takes two values, which node:util's parseArgs cannot: the token after
 * the value is the validation labels when it is a .npy file and not an option. It becomes
 * `--val-labels y.npy` (which may also be given as such).
 */
export function splitValArgs(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    out.push(a);
    let valueAt = -1;
    if (a === "--val") {
      if (i + 1 < args.length) out.push(args[++i]);
      valueAt = i;
    } else if (a.startsWith("--val=")) valueAt = i;
    const next = args[valueAt + 1];
    if (valueAt >= 0 && next !== undefined && !next.startsWith("-") && /\.npy$/i.test(next)) {
      out.push("--val-labels", next);
      i = valueAt + 1;
    }
  }
  return out;
}

const INT_TYPES = ["int64", "int32", "int16", "int8", "uint64", "uint32", "uint16", "uint8"];

/** Class labels (.npy of int64 / int32 / uint8 / … , one per sample) as an Int32Array. */
export function labelsOf(t: Tensor, samples: number, flag: string): Int32Array {
  if (!INT_TYPES.includes(t.type)) {
    throw new ArgumentError(
      `${flag} must hold integer class indices (int64, int32 or uint8), got ${t.type}`,
    );
  }
  const flat = t.dims.length === 1 || (t.dims.length === 2 && t.dims[1] === 1);
  if (!flat || t.dims[0] !== samples) {
    throw new ArgumentError(
      `${flag} must be 1-D with one label per sample (${samples}), got dims [${t.dims}]`,
    );
  }
  const src = t.data as ArrayLike<number | bigint>;
  const out = new Int32Array(samples);
  for (let i = 0; i < samples; i++) {
    const v = Number(src[i]);
    if (!(v >= 0 && v <= 0x7fffffff)) {
      throw new ArgumentError(`${flag}: label ${i} is ${src[i]}, not a class index ≥ 0`);
    }
    out[i] = v;
  }
  return out;
}

/** `--epochs N`: a positive integer. */
function parseEpochs(raw: string): number {
  const n = /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > 10_000) {
    throw new ArgumentError(`--epochs must be an integer in [1, 10000], got '${raw}'`);
  }
  return n;
}

/** `--distill T,alpha`: temperature > 0 and alpha in [0, 1]. */
function parseDistill(raw: string): { temperature: number; alpha: number } {
  const parts = raw.split(",").map((s) => s.trim());
  const num = (s: string) => /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(s) ? Number(s) : NaN;
  const [t, a] = parts.map(num);
  if (parts.length !== 2 || !(t > 0 && Number.isFinite(t)) || !(a >= 0 && a <= 1)) {
    throw new ArgumentError(
      `--distill must be T,alpha with a temperature T > 0 and alpha in [0, 1] (e.g. 4,0.7), ` +
        `got '${raw}'`,
    );
  }
  return { temperature: t, alpha: a };
}

function pct(v: number | undefined): string {
  return v === undefined ? "–" : `${(v * 100).toFixed(2)}%`;
}

/** One line per finished epoch. */
export function epochLine(e: EpochProgress): string {
  const parts = [`epoch ${e.epoch}/${e.epochs}`, `loss ${e.loss.toFixed(4)}`];
  if (e.trainAccuracy !== undefined) parts.push(`train acc ${pct(e.trainAccuracy)}`);
  if (e.valAccuracy !== undefined) parts.push(`val acc ${pct(e.valAccuracy)}`);
  if (e.valAgreement !== undefined) parts.push(`val agreement ${pct(e.valAgreement)}`);
  parts.push(`lr ${e.lr < 1e-3 ? e.lr.toExponential(2) : e.lr.toPrecision(3)}`);
  parts.push(`${(e.ms / 1000).toFixed(2)} s`);
  return parts.join("  ");
}

export async function compressCommand(args: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: splitValArgs(args),
      allowPositionals: true,
      options: {
        recipe: { type: "string", short: "r" },
        calib: { type: "string" },
        "calib-batch": { type: "string", default: "32" },
        train: { type: "string" },
        labels: { type: "string" },
        val: { type: "string" },
        "val-labels": { type: "string" },
        epochs: { type: "string" },
        distill: { type: "string" },
        teacher: { type: "string" },
        output: { type: "string", short: "o" },
        "external-data-threshold": { type: "string" },
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
  // Flag values first: a typo is reported before any file is read.
  const threshold = values["external-data-threshold"] === undefined
    ? undefined
    : parseThreshold(values["external-data-threshold"]);
  const epochs = values.epochs === undefined ? undefined : parseEpochs(values.epochs);
  const distill = values.distill === undefined ? undefined : parseDistill(values.distill);
  if (values.labels && !values.train) throw new ArgumentError("--labels needs --train x.npy");
  if (values.val && !values.train) throw new ArgumentError("--val needs --train x.npy");
  if (values["val-labels"] && !values.val) {
    throw new ArgumentError("validation labels need --val x.npy");
  }
  const recipeText = values.recipe.endsWith(".json")
    ? await Deno.readTextFile(values.recipe).catch((e) => {
      throw new ArgumentError(`cannot read recipe '${values.recipe}': ${e.message}`);
    })
    : values.recipe;
  // The recipe as compress() will see it: validated here, with the flags' overrides.
  const recipe = JSON.parse(JSON.stringify(parseRecipe(recipeText))) as Record<string, unknown>;
  const finetune = recipe.finetune as Record<string, unknown> | undefined;
  const named = values.recipe.endsWith(".json") ? values.recipe : `'${values.recipe}'`;
  if (!finetune) {
    const asked = [
      values.train && "--train",
      epochs !== undefined && "--epochs",
      distill && "--distill",
      values.teacher && "--teacher",
    ].filter(Boolean);
    if (asked.length) {
      throw new ArgumentError(
        `${asked.join(", ")} need${asked.length > 1 ? "" : "s"} a recipe that fine-tunes ` +
          `(a <preset>+ft such as int8+ft, or a "finetune" block); recipe ${named} does not`,
      );
    }
  } else {
    if (!values.train) {
      throw new ArgumentError(
        `recipe ${named} fine-tunes: it needs training data, --train x.npy (N samples of the ` +
          `model's input, float32) [--labels y.npy]`,
      );
    }
    if (epochs !== undefined) finetune.epochs = epochs;
    if (distill) finetune.distill = distill;
  }
  // The recipe as given unless a flag changed it.
  const overridden = finetune !== undefined && (epochs !== undefined || distill !== undefined);
  if (values.teacher) {
    const st = await Deno.stat(values.teacher).catch((e) => {
      throw new ArgumentError(`cannot read --teacher '${values.teacher}': ${e.message}`);
    });
    if (!st.isFile) throw new ArgumentError(`--teacher '${values.teacher}' is not a file`);
  }

  let input: { name: string; type: string } | undefined;
  const modelInput = async (flag: string) => {
    if (input) return input;
    const probe = await Session.create(modelPath);
    const inputs = probe.inputMetadata;
    await probe.release();
    if (inputs.length !== 1) {
      throw new ArgumentError(
        `${flag} needs a model with one input; this one has ${inputs.length}`,
      );
    }
    return input = inputs[0];
  };
  const samplesFor = async (path: string, flag: string): Promise<Tensor> => {
    const t = await readNpy(path, flag);
    const i = await modelInput(flag);
    if (t.type !== i.type) {
      throw new ArgumentError(`${path} (${flag}) is ${t.type}, the input '${i.name}' is ${i.type}`);
    }
    if (t.dims.length < 1 || t.dims[0] < 1) {
      throw new ArgumentError(`${path} (${flag}) holds no samples (dims [${t.dims}])`);
    }
    return t;
  };

  let calibration: Iterable<Record<string, Tensor>> | undefined;
  if (values.calib) {
    const t = await samplesFor(values.calib, "--calib");
    calibration = batchFeeds(input!.name, t, batch);
  }
  let train: CompressOptions["train"], validation: CompressOptions["validation"];
  if (values.train) {
    const x = await samplesFor(values.train, "--train");
    const labels = values.labels
      ? labelsOf(await readNpy(values.labels, "--labels"), x.dims[0], "--labels")
      : undefined;
    train = { inputs: x, labels };
  }
  if (values.val) {
    const x = await samplesFor(values.val, "--val");
    const labels = values["val-labels"]
      ? labelsOf(
        await readNpy(values["val-labels"], "validation labels"),
        x.dims[0],
        "validation labels",
      )
      : undefined;
    validation = { inputs: x, labels };
  }

  // Ctrl-C: compress() is aborted and rejects; nothing is written. A second one exits at once.
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) Deno.exit(INTERRUPTED);
    controller.abort();
  };
  Deno.addSignalListener("SIGINT", onSigint);

  // On a terminal one bar, redrawn synchronously (compress() rarely yields to timers): the
  // stage, and while fine-tuning the last epoch's loss and validation accuracy. Each finished
  // epoch leaves its line above the bar. Off a terminal: stage lines and epoch lines.
  const tty = Deno.stderr.isTerminal();
  const bar = tty
    ? new cliProgress.SingleBar(
      {
        format: " {bar} {percentage}% | {stage}{epoch}",
        hideCursor: true,
        clearOnComplete: true,
      },
      cliProgress.Presets.shades_classic,
    )
    : undefined;
  bar?.start(100, 0, { stage: "start", epoch: "" });
  let lastStage = "", epochText = "";
  let result;
  try {
    result = await compress(modelPath, overridden ? recipe : recipeText, {
      calibration,
      train,
      validation,
      teacher: values.teacher,
      signal: controller.signal,
      externalDataThreshold: threshold,
      externalDataLocation: externalLocation(values.output),
      onProgress: (p, stage, epoch) => {
        if (epoch) {
          const line = epochLine(epoch);
          if (bar) {
            // The line goes above the bar: clear the bar, print, draw it again.
            bar.stop();
            console.error(line);
            const val = epoch.valAccuracy ?? epoch.valAgreement;
            epochText = ` | epoch ${epoch.epoch}/${epoch.epochs} loss ${epoch.loss.toFixed(4)}` +
              (val === undefined ? "" : ` val ${pct(val)}`);
            bar.start(100, Math.round(p * 100), { stage, epoch: epochText });
          } else console.error(line);
        }
        if (bar) {
          bar.update(Math.round(p * 100), {
            stage,
            epoch: stage === "fine-tuning" ? epochText : "",
          });
        } else if (stage !== lastStage) console.error(`… ${stage}`);
        lastStage = stage;
      },
    });
  } catch (e) {
    if (controller.signal.aborted || (e as Error)?.name === "AbortError") {
      bar?.stop();
      console.error("sqz: interrupted: nothing written");
      Deno.exit(INTERRUPTED);
    }
    throw e;
  } finally {
    bar?.stop();
    Deno.removeSignalListener("SIGINT", onSigint);
  }
  // An engine that finished anyway: the run was still interrupted, and nothing is written.
  if (controller.signal.aborted) {
    console.error("sqz: interrupted: nothing written");
    Deno.exit(INTERRUPTED);
  }
  const { model, external, report } = result;

  // External data first, then the model that names it: each written beside its target and
  // renamed, so a failed write never leaves half a file (nor a model without its data).
  const dir = dirOf(values.output);
  for (const [location, data] of Object.entries(external)) {
    await writeAtomic(`${dir}/${location}`, data);
  }
  await writeAtomic(values.output, model);
  if (values.json) console.log(JSON.stringify(report, null, 2));
  else printReport(report, values.output, Object.keys(external));
}

function dirOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash >= 0 ? path.slice(0, slash) || "/" : ".";
}

/** The artifact's external data file: `<output file name>.data`, beside it. */
export function externalLocation(output: string): string {
  return `${output.slice(output.lastIndexOf("/") + 1)}.data`;
}

/** `--external-data-threshold BYTES`: a non-negative integer, at most 2 GiB − 1. */
function parseThreshold(raw: string): number {
  const n = /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n > 2 ** 31 - 1) {
    throw new ArgumentError(
      `--external-data-threshold must be a byte count in [0, ${2 ** 31 - 1}], got '${raw}'`,
    );
  }
  return n;
}

function kb(b: number): string {
  return b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(2)} MiB` : `${(b / 1024).toFixed(1)} KiB`;
}

/** The per-layer table and the size line; `external` names the data files written beside. */
export function printReport(r: CompressReport, out: string, external: string[] = []): void {
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
  // Sizes are the model's files, external data included on both sides.
  const files = external.length ? ` (+ ${external.join(", ")})` : "";
  console.log(
    `\n${out}${files}: ${kb(s.before)} → ${kb(s.after)} (${(s.before / s.after).toFixed(2)}×), ` +
      `gzip ${kb(s.gzipBefore)} → ${kb(s.gzipAfter)} (${(s.gzipBefore / s.gzipAfter).toFixed(2)}×)`,
  );
  const t = r.training;
  if (t) {
    const last = t.epochs[t.epochs.length - 1];
    console.log(
      `fine-tuned ${t.epochs.length} epoch${t.epochs.length === 1 ? "" : "s"}` +
        (t.resumedFromEpoch ? ` (resumed after epoch ${t.resumedFromEpoch})` : "") +
        (t.stoppedEarly ? " (stopped early)" : "") +
        (last
          ? `: loss ${last.loss.toFixed(4)}` +
            (last.valAccuracy !== undefined ? `, val acc ${pct(last.valAccuracy)}` : "")
          : ""),
    );
    for (const c of t.changes ?? []) console.log(`training: ${c}`);
  }
  for (const n of r.notes) console.log(`note: ${n}`);
}
