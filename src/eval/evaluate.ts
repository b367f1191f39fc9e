// evaluate(): what a (compressed) classifier keeps, measured on labelled data and against its
// float reference — accuracy and macro P/R/F1, agreement and KL with the reference, per-layer
// SQNR and time, size (raw, gzip, brotli), parameters, MACs by precision, latency and memory.
//
//   const report = await evaluate("model.int8.onnx", { inputs: { x }, labels },
//     { reference: "model.onnx", kfold: 5 });
//   await Deno.writeTextFile("report.json", JSON.stringify(report, null, 2));
//
// The report is plain JSON (no Infinity, no typed arrays): non-finite numbers are written as
// the strings "inf" / "-inf" and NaN as null (see JsonNumber).
//
// The parts: load.ts (reading the models), analyze.ts with precision.ts and weights.ts (layers,
// parameters, MACs), size.ts (file sizes, external data included), run.ts (batches, scores,
// latency), layers.ts (per-layer rows and profile), compare.ts (per-layer SQNR); types.ts holds
// the report's types, re-exported here.
import { ArgumentError, ShapeError } from "../errors.ts";
import {
  accuracy,
  argmaxRows,
  classification,
  confusionMatrix,
  kFoldSplits,
  meanKlDivergence,
  meanStd,
  top1Agreement,
} from "./metrics.ts";
import { load } from "./load.ts";
import { type Analysis, analyze } from "./analyze.ts";
import { macsByPrecision } from "./precision.ts";
import { checkDataset, predict, type RunResult } from "./run.ts";
import { assembleLayers, profileLayers } from "./layers.ts";
import { layerSqnr } from "./compare.ts";
import {
  type Dataset,
  type EvalReport,
  type EvaluateOptions,
  jsonNumber,
  type ModelStats,
} from "./types.ts";

export * from "./types.ts";

function checkOptions(o: EvaluateOptions, n: number): void {
  if (typeof o !== "object" || o === null) throw new ArgumentError("options must be an object");
  const { kfold, latencyRuns } = o;
  if (kfold !== undefined && kfold !== 0 && (!Number.isSafeInteger(kfold) || kfold < 2)) {
    throw new ArgumentError(`kfold must be an integer ≥ 2 (or 0 for none), got ${kfold}`);
  }
  if (kfold !== undefined && kfold > n) {
    throw new ArgumentError(`kfold ${kfold} is more than the ${n} samples`);
  }
  if (latencyRuns !== undefined && (!Number.isSafeInteger(latencyRuns) || latencyRuns < 0)) {
    throw new ArgumentError(`latencyRuns must be a non-negative integer, got ${latencyRuns}`);
  }
  const minMs = o.latencyMinMs;
  if (minMs !== undefined && !(typeof minMs === "number" && minMs >= 0 && minMs <= 60_000)) {
    throw new ArgumentError(`latencyMinMs must be a number in [0, 60000], got ${minMs}`);
  }
}

/**
 * Evaluates `model` on `dataset`, against `options.reference` when given. Samples run batch by
 * batch (dataset.batchSize, default 64; a model with a fixed batch dim gets batches of exactly
 * that, the last one padded by repeating its final sample, whose outputs are dropped).
 */
export async function evaluate(
  model: Uint8Array | string,
  dataset: Dataset,
  options: EvaluateOptions = {},
): Promise<EvalReport> {
  const n = checkDataset(dataset);
  checkOptions(options, n);
  const notes: string[] = [];
  const m = await load(model, "model", options.externalData);
  const ref = options.reference !== undefined
    ? await load(options.reference, "reference", options.referenceExternalData)
    : undefined;
  const brotli = options.brotli ?? true;
  const ma = analyze(m, brotli);
  // The reference's analysis is the same every call: kept with its runs when asked to.
  let ra: Analysis | undefined;
  if (ref) {
    const akey = `analysis|${brotli}`;
    ra = options.referenceRuns?.analysis(options.reference!, akey) ?? analyze(ref, brotli);
    options.referenceRuns?.setAnalysis(options.reference!, akey, ra);
  }
  notes.push(...ma.notes, ...(ra?.notes ?? []));

  const run = await predict(m, dataset, n, options, options.output);
  const { classes, scores, output } = run;
  if (run.fixedBatch !== undefined) {
    notes.push(
      run.fixedBatch === 1
        ? "the model's batch dim is fixed at 1: samples ran one at a time"
        : `the model's batch dim is fixed at ${run.fixedBatch}: the last batch was padded`,
    );
  }
  if (scores.some((v) => !Number.isFinite(v))) {
    notes.push(`the model's output '${output}' holds non-finite values`);
  }
  const labels = dataset.labels;
  const report: Partial<EvalReport> = { format: "sqz.eval/1", samples: n, classes, output };

  let predicted: Int32Array | undefined;
  if (labels) {
    predicted = argmaxRows(scores, classes);
    const cm = confusionMatrix(labels, predicted, classes);
    const cls = classification(cm);
    const names = dataset.classNames;
    report.accuracy = accuracy(predicted, labels);
    report.macro = cls.macro;
    report.perClass = cls.perClass;
    report.confusion = {
      labels: Array.from({ length: classes }, (_, i) => names?.[i] ?? String(i)),
      matrix: cm,
    };
    const absent = cls.perClass.filter((c) => c.support === 0 && c.predicted === 0).length;
    if (absent) {
      notes.push(
        `${absent} of ${classes} classes occur neither in the labels nor in the predictions: ` +
          `left out of the macro means`,
      );
    }
  } else notes.push("no labels: accuracy, P/R/F1 and the confusion matrix are not computed");

  // The reference: its own outputs for agreement and KL.
  let refRun: RunResult | undefined;
  if (ref && ra) {
    // The model itself as its reference (a float baseline): its own run is the reference's.
    const key = `${output}|${options.build ?? "auto"}|${options.latencyRuns ?? 30}`;
    refRun = options.reference === model
      ? run
      : options.referenceRuns?.get(options.reference!, dataset, key) ??
        await predict(ref, dataset, n, options, output, true);
    options.referenceRuns?.set(options.reference!, dataset, key, refRun);
    if (refRun.classes !== classes) {
      throw new ShapeError(
        `the model has ${classes} scores per sample, the reference ${refRun.classes}`,
      );
    }
    report.agreement = top1Agreement(refRun.scores, scores, classes);
    report.klMean = jsonNumber(meanKlDivergence(refRun.scores, scores, classes));
    const refStats: ModelStats = { ...ra.stats, macs: macsByPrecision(ra.layers) };
    report.reference = {
      model: refStats,
      accuracy: labels ? accuracy(argmaxRows(refRun.scores, classes), labels) : undefined,
      latency: refRun.latency,
      compressionRatio: ra.stats.bytes / ma.stats.bytes,
      gzipRatio: ra.stats.gzipBytes / ma.stats.gzipBytes,
    };
    if (report.reference.accuracy === undefined) delete report.reference.accuracy;
  }

  const prof = await profileLayers(m, dataset, n, options, output);
  const compare = ref !== undefined && options.layers !== false;
  const { layers, pairs } = assembleLayers(ma, ra, prof, compare, notes);

  if (ref && compare) {
    const sq = await layerSqnr(ref, m, pairs, dataset, n, options, notes);
    for (const l of layers) {
      const s = sq.get(l.name);
      if (s !== undefined) l.sqnrDb = jsonNumber(s);
    }
  }

  if (options.kfold !== undefined && options.kfold >= 2) {
    if (!labels || !predicted) notes.push("k-fold needs labels: skipped");
    else {
      const seed = options.kfoldSeed ?? 0;
      const folds = kFoldSplits(n, options.kfold, { seed, labels });
      const accuracies = folds.map((f) =>
        accuracy(f.test.map((i) => predicted![i]), f.test.map((i) => labels[i]))
      );
      const { mean, std } = meanStd(accuracies);
      report.kfold = {
        k: options.kfold,
        seed,
        foldSizes: folds.map((f) => f.test.length),
        accuracies,
        mean,
        std,
      };
      notes.push(
        `k-fold: the model is already trained, so no fold trains anything; the ${options.kfold} ` +
          `accuracies are on disjoint stratified subsets, and their spread (sample std) ` +
          `estimates how much the accuracy varies with the evaluation data`,
      );
    }
  }

  notes.push(
    "MACs are per sample (symbolic dims taken as 1); memory is the Wasm arena and packed " +
      "weights of single-sample runs, not JS-side buffers",
  );
  const { reference: refPart, kfold, ...metrics } = report;
  return {
    ...metrics,
    model: { ...ma.stats, macs: macsByPrecision(ma.layers) },
    ...(refPart ? { reference: refPart } : {}),
    latency: run.latency,
    memory: {
      arenaBytes: run.memory.arenaBytes,
      weightBytes: run.memory.weightBytes,
      totalBytes: run.memory.arenaBytes + run.memory.weightBytes,
    },
    layers,
    ...(kfold ? { kfold } : {}),
    notes,
  } as EvalReport;
}
