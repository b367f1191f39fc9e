// `sqz search model.onnx --val x.npy y.npy --max-drop 0.5 -o best.onnx`: automated compression
// search under an accuracy budget (src/search/). One line per finished trial (stderr) and, on a
// terminal, a progress bar under them; at the end the explanation, the Pareto front and the best
// model against uniform int8 (stdout), the best model written to -o and the report to --html.
//
// --state FILE keeps every finished trial (one JSON line each, appended and fsynced), so a
// killed search continues with --resume; without --resume an existing state file is an error
// (it is never overwritten). Ctrl-C aborts the search: the state file keeps the finished trials
// and nothing else is written (exit 130). Exit 1 when no trial met the budget (the report and
// the state are still written, and the explanation printed).
import { parseArgs } from "node:util";
import cliProgress from "cli-progress";
import {
  ArgumentError,
  batchFeeds,
  FileStateStore,
  type Objective,
  OBJECTIVES,
  search,
  type SearchOptions,
  searchReportHtml,
  type SearchResult,
  Session,
  type SpaceSpec,
  STRATEGIES,
  type StrategyName,
  type Tensor,
  type Trial,
} from "../mod.ts";
import { labelsOf } from "./compress.ts";
import { readNpy, writeAtomic } from "./files.ts";

export const SEARCH_USAGE = "usage: sqz search model.onnx --val x.npy [y.npy] [--calib c.npy] " +
  "[--train x.npy [y.npy]] --max-drop D [--metric accuracy|agreement|kl] [--relative] " +
  "[--objectives size,latency] [--strategy sensitivity|random|grid|tpe|evolution] [--trials N] " +
  "[--seed S] [--concurrency C] [--methods int8,int4,prune,…] [--latency-runs N] -o best.onnx " +
  "[--html search.html] [--state search.jsonl [--resume]] [--json]\n" +
  "  --max-drop is in percentage points for accuracy and agreement (0.5 = half a point; with " +
  "--relative, percent of the float model's value) and absolute (nats) for kl";

/** Exit status of a run stopped by Ctrl-C (128 + SIGINT), as shells report it. */
const INTERRUPTED = 130;

const METRICS = ["accuracy", "agreement", "kl"] as const;
const METHODS = [
  "int8",
  "int8-dynamic",
  "int4",
  "ternary",
  "binary",
  "prune",
  "nm",
  "structured",
  "lowrank",
  "cluster",
] as const;

/**
 * `--val x.npy y.npy` and `--train x.npy y.npy` take two values, which node:util's parseArgs
 * cannot: a .npy token right after the first value that is not an option becomes
 * `--val-labels y.npy` / `--train-labels y.npy`.
 */
export function splitPairArgs(args: string[], flags: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    out.push(a);
    let valueAt = -1, flag = "";
    for (const f of flags) {
      if (a === `--${f}`) {
        if (i + 1 < args.length) out.push(args[++i]);
        valueAt = i;
        flag = f;
      } else if (a.startsWith(`--${f}=`)) {
        valueAt = i;
        flag = f;
      }
    }
    const next = args[valueAt + 1];
    if (valueAt >= 0 && next !== undefined && !next.startsWith("-") && /\.npy$/i.test(next)) {
      out.push(`--${flag}-labels`, next);
      i = valueAt + 1;
    }
  }
  return out;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw new ArgumentError(`cannot read '${path}': ${(e as Error).message}`);
  }
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function int(raw: string, flag: string, min: number, max = 1_000_000): number {
  const n = /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new ArgumentError(`${flag} must be an integer in [${min}, ${max}], got '${raw}'`);
  }
  return n;
}

function list<T extends string>(raw: string, flag: string, known: readonly T[]): T[] {
  const items = raw.split(",").map((s) => s.trim()).filter(Boolean);
  if (!items.length) throw new ArgumentError(`${flag} needs at least one of ${known.join(", ")}`);
  for (const s of items) {
    if (!known.includes(s as T)) {
      throw new ArgumentError(`${flag}: unknown '${s}' (one of ${known.join(", ")})`);
    }
  }
  return [...new Set(items)] as T[];
}

// ---------------------------------------------------------------------------------------------
// Output

function kb(b: number | undefined): string {
  if (b === undefined || !Number.isFinite(b)) return "–";
  return b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(2)} MiB` : `${(b / 1024).toFixed(1)} KiB`;
}

function msText(v: number | undefined): string {
  return v === undefined || !Number.isFinite(v) ? "–" : `${v.toPrecision(3)} ms`;
}

function pct(v: number | undefined): string {
  return v === undefined || !Number.isFinite(v) ? "–" : `${(v * 100).toFixed(2)}%`;
}

function klText(v: number | undefined): string {
  return v === undefined || !Number.isFinite(v) ? "–" : v.toExponential(2);
}

/** "int8 ×3, int4 ×2, float ×1 · block 64 · ft". */
export function choicesText(a: Trial["assignment"] | undefined): string {
  if (!a?.layers) return "–";
  const counts = new Map<string, number>();
  for (const c of Object.values(a.layers)) counts.set(c, (counts.get(c) ?? 0) + 1);
  let s = [...counts].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1))
    .map(([c, n]) => `${c} ×${n}`).join(", ") || "–";
  if (a.int4Block !== undefined) s += ` · block ${a.int4Block}`;
  if (a.finetune) s += " · ft";
  return s;
}

function metricsText(t: Trial): string {
  const m = t.metrics ?? ({} as Trial["metrics"]);
  return [
    m.accuracy !== undefined ? `acc ${pct(m.accuracy)}` : "",
    `agree ${pct(m.agreement)}`,
    `kl ${klText(m.kl)}`,
    kb(m.size),
    msText(m.latencyMs),
  ].filter(Boolean).join("  ");
}

/** The live line of a finished trial. */
export function trialLine(t: Trial, done: number, total: number): string {
  const state = t.error
    ? `✗ error: ${t.error}`
    : t.earlyRejected
    ? "✗ early"
    : t.feasible
    ? "✓"
    : "✗";
  const w = String(total).length;
  return `trial ${String(done).padStart(w)}/${total} #${t.id} ${(t.phase ?? "").padEnd(11)} ` +
    `${choicesText(t.assignment)}  ${t.error ? "" : `${metricsText(t)}  `}${state}  ` +
    `${Math.round(t.durationMs ?? 0)} ms`;
}

function metricOf(t: Trial, metric: string): number | undefined {
  const m = t.metrics;
  return metric === "accuracy" ? m?.accuracy : metric === "agreement" ? m?.agreement : m?.kl;
}

function printSummary(r: SearchResult, out: string | undefined): void {
  const metric = r.budget.metric;
  const mtext = (v: number | undefined) => metric === "kl" ? klText(v) : pct(v);
  const lines: string[] = [];
  for (const e of r.explanation ?? []) lines.push(e);
  lines.push(
    "",
    `float ${metric} ${mtext(r.reference.metric)}, threshold ${mtext(r.reference.threshold)}; ` +
      `${r.trials.length} trials, ${r.trials.filter((t) => t.feasible).length} feasible`,
  );
  if (r.pareto.length) {
    lines.push(`Pareto front (${r.objectives.join(", ")}):`);
    const rows = r.pareto.map((t) => [
      `#${t.id}`,
      mtext(metricOf(t, metric)),
      kb(t.metrics.size),
      msText(t.metrics.latencyMs),
      choicesText(t.assignment),
    ]);
    const head = ["trial", metric, "size", "latency", "choices"];
    const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
    const line = (cells: string[]) =>
      ("  " + cells.map((c, i) => c.padEnd(w[i])).join("  ")).trimEnd();
    lines.push(line(head), ...rows.map(line));
  }
  const best = r.best?.trial, int8 = r.baseline.int8;
  if (best) {
    const ratio = (a: number | undefined, b: number | undefined) =>
      a && b && Number.isFinite(a / b) ? (a / b).toFixed(2) : "–";
    lines.push(
      `best #${best.id} vs uniform int8: ${kb(best.metrics.size)} vs ${kb(int8.metrics.size)} ` +
        `(${ratio(int8.metrics.size, best.metrics.size)}× smaller), ` +
        `${msText(best.metrics.latencyMs)} vs ${msText(int8.metrics.latencyMs)} ` +
        `(${ratio(int8.metrics.latencyMs, best.metrics.latencyMs)}× faster), ` +
        `${metric} ${mtext(metricOf(best, metric))} vs ${mtext(metricOf(int8, metric))}` +
        (out ? ` → ${out}` : ""),
    );
  }
  console.log(lines.join("\n"));
}

/** The result as JSON: everything but the best model's bytes. */
function resultJson(r: SearchResult, out: string): string {
  const { best, ...rest } = r;
  return JSON.stringify(
    {
      ...rest,
      best: best
        ? { output: out, recipe: best.recipe, report: best.report, trial: best.trial }
        : null,
    },
    null,
    2,
  );
}

// ---------------------------------------------------------------------------------------------

export async function searchCommand(args: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: splitPairArgs(args, ["val", "train"]),
      allowPositionals: true,
      options: {
        val: { type: "string" },
        "val-labels": { type: "string" },
        calib: { type: "string" },
        train: { type: "string" },
        "train-labels": { type: "string" },
        "max-drop": { type: "string" },
        metric: { type: "string" },
        relative: { type: "boolean", default: false },
        objectives: { type: "string" },
        strategy: { type: "string" },
        trials: { type: "string" },
        seed: { type: "string" },
        concurrency: { type: "string" },
        methods: { type: "string" },
        "latency-runs": { type: "string" },
        output: { type: "string", short: "o" },
        html: { type: "string" },
        state: { type: "string" },
        resume: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
      },
    });
  } catch (e) {
    throw new ArgumentError(`${(e as Error).message}\n${SEARCH_USAGE}`);
  }
  const { positionals, values } = parsed;
  const modelPath = positionals[0];
  if (!modelPath || positionals.length > 1) throw new ArgumentError(SEARCH_USAGE);

  // Every flag first: a typo is reported before any file is read or anything runs.
  if (!values.val) throw new ArgumentError(`--val x.npy [y.npy] is required\n${SEARCH_USAGE}`);
  if (!values.output) throw new ArgumentError(`-o best.onnx is required\n${SEARCH_USAGE}`);
  if (values["max-drop"] === undefined) {
    throw new ArgumentError(`--max-drop is required\n${SEARCH_USAGE}`);
  }
  const hasLabels = values["val-labels"] !== undefined;
  const metric = values.metric === undefined
    ? (hasLabels ? "accuracy" : "agreement")
    : list(values.metric, "--metric", METRICS)[0];
  if (values.metric !== undefined && values.metric.includes(",")) {
    throw new ArgumentError("--metric takes one of accuracy, agreement, kl");
  }
  if (metric === "accuracy" && !hasLabels) {
    throw new ArgumentError(
      "--metric accuracy needs labels: --val x.npy y.npy (or use --metric agreement)",
    );
  }
  const rawDrop = values["max-drop"].trim();
  const drop = NUMBER.test(rawDrop) ? Number(rawDrop) : NaN;
  if (metric === "kl") {
    if (!(drop >= 0 && Number.isFinite(drop))) {
      throw new ArgumentError(`--max-drop for kl is a mean KL ≥ 0 (nats), got '${rawDrop}'`);
    }
  } else if (!(drop >= 0 && drop <= 100)) {
    throw new ArgumentError(
      `--max-drop for ${metric} is in percentage points, in [0, 100] (0.5 = half a point), ` +
        `got '${rawDrop}'`,
    );
  }
  const maxDrop = metric === "kl" ? drop : drop / 100;
  const objectives: Objective[] | undefined = values.objectives === undefined
    ? undefined
    : list(values.objectives, "--objectives", OBJECTIVES);
  let strategy: StrategyName | undefined;
  if (values.strategy !== undefined) {
    if (!STRATEGIES.includes(values.strategy as StrategyName)) {
      throw new ArgumentError(
        `--strategy: unknown '${values.strategy}' (one of ${STRATEGIES.join(", ")})`,
      );
    }
    strategy = values.strategy as StrategyName;
  }
  const trials = values.trials === undefined ? undefined : int(values.trials, "--trials", 1);
  const seed = values.seed === undefined ? undefined : int(values.seed, "--seed", 0, 2 ** 32 - 1);
  const concurrency = values.concurrency === undefined
    ? undefined
    : int(values.concurrency, "--concurrency", 1, 256);
  const latencyRuns = values["latency-runs"] === undefined
    ? undefined
    : int(values["latency-runs"], "--latency-runs", 1, 10_000);
  const space: SpaceSpec | undefined = values.methods === undefined
    ? undefined
    : { methods: list(values.methods, "--methods", METHODS) };
  if (values["train-labels"] && !values.train) throw new ArgumentError("labels need --train x.npy");
  if (values.resume && !values.state) {
    throw new ArgumentError("--resume needs --state FILE (the state of the search to continue)");
  }
  if (values.state) {
    const there = await exists(values.state);
    if (values.resume && !there) {
      throw new ArgumentError(`--resume: state file '${values.state}' does not exist`);
    }
    if (!values.resume && there) {
      throw new ArgumentError(
        `state file '${values.state}' exists: pass --resume to continue that search, or remove it`,
      );
    }
  }

  // The data, checked against the model's one input.
  const probe = await Session.create(modelPath);
  const inputs = probe.inputMetadata;
  await probe.release();
  if (inputs.length !== 1) {
    throw new ArgumentError(`--val feeds a model with one input; this one has ${inputs.length}`);
  }
  const input = inputs[0];
  const samples = async (path: string, flag: string): Promise<Tensor> => {
    const t = await readNpy(path, flag);
    if (t.type !== input.type) {
      throw new ArgumentError(
        `${path} (${flag}) is ${t.type}, the input '${input.name}' is ${input.type}`,
      );
    }
    if (t.dims.length < 1 || t.dims[0] < 1) {
      throw new ArgumentError(`${path} (${flag}) holds no samples (dims [${t.dims}])`);
    }
    return t;
  };
  const vx = await samples(values.val, "--val");
  const vy = values["val-labels"]
    ? labelsOf(
      await readNpy(values["val-labels"], "validation labels"),
      vx.dims[0],
      "validation labels",
    )
    : undefined;
  const data: SearchOptions["data"] = {
    validation: { inputs: { [input.name]: vx }, labels: vy },
  };
  if (values.calib) {
    // An array, not the generator: the search reads the calibration data once per trial.
    data.calibration = [...batchFeeds(input.name, await samples(values.calib, "--calib"), 32)];
  }
  if (values.train) {
    const tx = await samples(values.train, "--train");
    const ty = values["train-labels"]
      ? labelsOf(
        await readNpy(values["train-labels"], "training labels"),
        tx.dims[0],
        "training labels",
      )
      : undefined;
    data.train = { inputs: tx, labels: ty };
  }

  // Ctrl-C aborts the search (finished trials stay in the state file); a second one exits.
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) Deno.exit(INTERRUPTED);
    controller.abort();
  };
  Deno.addSignalListener("SIGINT", onSigint);

  const tty = Deno.stderr.isTerminal();
  const bar = tty
    ? new cliProgress.SingleBar(
      {
        format: " {bar} {value}/{total} trials | {feasible} feasible | best {best}",
        hideCursor: true,
        clearOnComplete: true,
      },
      cliProgress.Presets.shades_classic,
    )
    : undefined;
  let feasible = 0, bestSize = Infinity;
  const barPayload = () => ({ feasible, best: Number.isFinite(bestSize) ? kb(bestSize) : "–" });
  bar?.start(trials ?? 40, 0, barPayload());
  const state = values.state ? new FileStateStore(values.state) : undefined;
  let finished = 0;
  let result: SearchResult;
  try {
    result = await search(modelPath, {
      data,
      budget: { metric, maxDrop, relative: values.relative || undefined },
      objectives,
      strategy,
      trials,
      seed,
      concurrency,
      space,
      latencyRuns,
      state,
      signal: controller.signal,
      onTrial: (t, done, total) => {
        finished++;
        if (t.feasible) {
          feasible++;
          if (t.metrics?.size < bestSize) bestSize = t.metrics.size;
        }
        const line = trialLine(t, done, total);
        if (bar) {
          // The line goes above the bar: clear the bar, print, draw it again.
          bar.stop();
          console.error(line);
          bar.start(total, done, barPayload());
        } else console.error(line);
      },
    });
  } catch (e) {
    if (controller.signal.aborted || (e as Error)?.name === "AbortError") {
      bar?.stop();
      console.error(
        `sqz: interrupted after ${finished} trial${finished === 1 ? "" : "s"}` +
          (values.state
            ? `: the finished ones are kept in ${values.state} (continue with --resume)`
            : ": nothing written"),
      );
      Deno.exit(INTERRUPTED);
    }
    throw e;
  } finally {
    bar?.stop();
    Deno.removeSignalListener("SIGINT", onSigint);
  }

  if (values.html) await writeAtomic(values.html, searchReportHtml(result));
  if (result.best) await writeAtomic(values.output, result.best.model);
  if (values.json) console.log(resultJson(result, values.output));
  else printSummary(result, result.best ? values.output : undefined);
  if (!result.best) {
    const budget = metric === "kl"
      ? `kl ≤ ${values["max-drop"]}`
      : `${metric} drop ≤ ${values["max-drop"]}${values.relative ? "% of the float value" : " pp"}`;
    console.error(
      `sqz: no model met the budget (${budget}); nothing written to ${values.output}`,
    );
    Deno.exit(1);
  }
}
