// The search's HTML report from fabricated results: one well-formed, self-contained page with
// every trial plotted, the Pareto front, the budget line, the baselines, the chosen model's
// assignment, the sensitivity heat-map and the trial table; every string escaped; sensible with
// no feasible trial, one trial, NaN / missing metrics and hundreds of trials.
import assert from "node:assert/strict";
import { searchReportHtml } from "../src/search/report_html.ts";
import type { SearchResult, Trial, TrialMetrics } from "../src/search/types.ts";

const LAYERS = [
  { name: "conv0", op: "Conv", params: 150, macs: 117_600, choices: ["float", "int8", "int4"] },
  { name: "gemm0", op: "Gemm", params: 48_000, macs: 48_000, choices: ["float", "int8", "int4"] },
  { name: "gemm1", op: "Gemm", params: 840, macs: 840, choices: ["float", "int8", "prune:0.5"] },
];

function metrics(over: Partial<TrialMetrics> = {}): TrialMetrics {
  return {
    accuracy: 0.98,
    agreement: 0.99,
    kl: 0.001,
    size: 60_000,
    gzipSize: 50_000,
    latencyMs: 0.5,
    memory: 300_000,
    macs: 166_440,
    ...over,
  };
}

function trial(id: number, over: Partial<Trial> = {}, m: Partial<TrialMetrics> = {}): Trial {
  return {
    id,
    assignment: { layers: { conv0: "int8", gemm0: "int4", gemm1: "float" } },
    recipe: { method: "none" } as unknown as Trial["recipe"],
    hash: `h${id}`,
    metrics: metrics(m),
    feasible: true,
    durationMs: 1234,
    phase: "tpe",
    predicted: { latencyMs: 0.45 },
    ...over,
  };
}

function result(over: Partial<SearchResult> = {}): SearchResult {
  const float = trial(-1, {
    assignment: { layers: { conv0: "float", gemm0: "float", gemm1: "float" } },
    phase: "baseline",
  }, { accuracy: 0.985, size: 200_000, gzipSize: 180_000, latencyMs: 0.9 });
  const int8 = trial(-2, {
    assignment: { layers: { conv0: "int8", gemm0: "int8", gemm1: "int8" } },
    phase: "baseline",
  }, { accuracy: 0.982, size: 55_000, gzipSize: 45_000, latencyMs: 0.6 });
  const t1 = trial(1, {}, { accuracy: 0.981, size: 30_000, latencyMs: 0.4 });
  const t2 = trial(2, {}, { accuracy: 0.983, size: 40_000, latencyMs: 0.35 });
  const t3 = trial(3, { feasible: false }, { accuracy: 0.95, size: 20_000, latencyMs: 0.3 });
  const t4 = trial(4, { feasible: false, earlyRejected: true }, { accuracy: 0.5 });
  const t5 = trial(5, { feasible: false, error: "compress() refused <binary> on gemm1" });
  return {
    baseline: { float, int8 },
    trials: [t1, t2, t3, t4, t5],
    pareto: [t1, t2],
    best: {
      model: new Uint8Array(4),
      recipe: t1.recipe,
      report: {} as NonNullable<SearchResult["best"]>["report"],
      trial: t1,
    },
    explanation: ["gemm0 & conv0 bind the budget: <int4> costs 0.4 pp", "closest trial: #2"],
    sensitivity: [
      { layer: "conv0", choice: "int8", drop: 0.001, sqnrDb: 35 },
      { layer: "conv0", choice: "int4", drop: 0.012, sqnrDb: 18 },
      { layer: "gemm0", choice: "int8", drop: -0.001, sqnrDb: 40 },
      { layer: "gemm0", choice: "int4", drop: 0.003, sqnrDb: 22 },
      { layer: "gemm1", choice: "prune:0.5", drop: NaN, sqnrDb: NaN },
    ],
    space: { layers: LAYERS },
    budget: { metric: "accuracy", maxDrop: 0.005 },
    objectives: ["size", "latency"],
    reference: { metric: 0.985, threshold: 0.98 },
    ...over,
  };
}

/** Tags open and close in order (void and self-closed elements aside). */
function assertWellFormed(html: string) {
  assert.match(html, /^<!doctype html>/);
  const VOID = new Set(["meta", "br", "hr", "img", "input", "link"]);
  const stack: string[] = [];
  const body = html.replace(/<style>[\s\S]*?<\/style>/, "").replace(/<!doctype html>/, "");
  for (const m of body.matchAll(/<(\/?)([a-zA-Z][\w-]*)([^>]*?)(\/?)>/g)) {
    const [, close, name, , self] = m;
    const tag = name.toLowerCase();
    if (VOID.has(tag) || self) continue;
    if (close) assert.equal(stack.pop(), tag, `</${tag}> closes <${stack.at(-1)}>`);
    else stack.push(tag);
  }
  assert.deepEqual(stack, [], "unclosed tags");
  // Self-contained: no script, no external resource.
  assert.ok(!/<script/i.test(html));
  assert.ok(!/\b(src|href)=/i.test(html));
  assert.ok(!/url\(\s*['"]?(https?:)?\/\//i.test(html));
  assert.ok(!/@import/.test(html));
}

Deno.test("search report: trials, front, budget line, baselines, assignment, heat-map", () => {
  const html = searchReportHtml(result(), { title: "lenet <search>" });
  assertWellFormed(html);
  assert.ok(html.includes("<title>lenet &lt;search&gt;</title>"));
  assert.ok(!html.includes("<search>"));
  // Two scatters, each with every plottable trial (t1–t4; t5 failed) and the front.
  assert.equal((html.match(/1 failed</g) ?? []).length, 2);
  assert.equal((html.match(/<svg /g) ?? []).length, 2);
  assert.equal((html.match(/class="trial feasible"/g) ?? []).length, 4);
  assert.equal((html.match(/class="trial infeasible"/g) ?? []).length, 2);
  assert.equal((html.match(/class="trial rejected"/g) ?? []).length, 2);
  assert.equal(
    (html.match(/<polyline class="pareto-front" points="[^"]+ [^"]+"/g) ?? []).length,
    2,
  );
  assert.equal((html.match(/class="pareto-point"/g) ?? []).length, 4);
  assert.equal((html.match(/<g class="budget">/g) ?? []).length, 2);
  assert.match(html, /budget ≥ 98\.00%/);
  assert.match(html, />float<\/text>/);
  assert.match(html, />uniform int8<\/text>/);
  assert.match(html, />best #1<\/text>/);
  // The assignment table: layer, op, params, choice.
  assert.match(
    html,
    /<td class="l">gemm0<\/td><td class="l">Gemm<\/td><td>48,000<\/td><td class="l">int4<\/td>/,
  );
  // Heat-map: values, the shade and the outline of a choice that alone exceeds the budget.
  assert.match(html, /<table class="heat">/);
  assert.match(
    html,
    /<td class="over" style="background:rgba\(207,34,46,0\.900\)[^"]*"[^>]*>1\.20 pp<\/td>/,
  );
  assert.match(html, />0\.10 pp<\/td>/);
  assert.match(html, />-0\.10 pp<\/td>/);
  assert.match(html, />NaN<\/td>/);
  // Explanation lines and errors escaped.
  assert.ok(html.includes("<li>gemm0 &amp; conv0 bind the budget: &lt;int4&gt; costs 0.4 pp</li>"));
  assert.ok(html.includes("refused &lt;binary&gt; on gemm1"));
  // The trial table: baselines, every trial, predicted vs measured latency, feasibility.
  assert.match(html, /All trials \(5\)/);
  assert.equal((html.match(/<tr class="base">/g) ?? []).length, 2);
  for (let i = 1; i <= 5; i++) assert.ok(html.includes(`>#${i}`), `trial #${i}`);
  assert.match(html, /<td>0\.450 ms<\/td><td>0\.400 ms<\/td>/);
  assert.match(html, /✗ early/);
  assert.match(html, /int8 ×1, float ×1, int4 ×1|float ×1, int4 ×1, int8 ×1/);
  // Best vs uniform int8: 55,000 / 30,000 bytes, 0.6 / 0.4 ms.
  assert.match(html, /1\.83× smaller/);
  assert.match(html, /1\.50× faster/);
});

Deno.test("search report: no feasible trial, no best, no sensitivity", () => {
  const r = result();
  const html = searchReportHtml({
    ...r,
    trials: r.trials.map((t) => ({ ...t, feasible: false })),
    pareto: [],
    best: null,
    sensitivity: undefined,
    explanation: ["no trial met the budget: conv0 × int4 alone drops 1.2 pp"],
  });
  assertWellFormed(html);
  assert.ok(!html.includes("pareto-front"));
  assert.match(html, /No feasible trial, so no Pareto front/);
  assert.match(html, /No model met the budget/);
  assert.match(html, /none found/);
  assert.ok(!html.includes(`class="heat"`));
  assert.equal((html.match(/class="trial feasible"/g) ?? []).length, 0);
  assert.match(html, /conv0 × int4 alone drops 1\.2 pp/);
});

Deno.test("search report: one trial, NaN and missing metrics, KL budget", () => {
  const r = result();
  const only = trial(1, {}, { accuracy: undefined, latencyMs: NaN, size: NaN });
  const html = searchReportHtml({
    ...r,
    baseline: {
      float: { ...r.baseline.float, metrics: { ...r.baseline.float.metrics, kl: NaN } },
      int8: r.baseline.int8,
    },
    trials: [only],
    pareto: [only],
    best: { ...r.best!, trial: only },
    sensitivity: [],
    budget: { metric: "kl", maxDrop: 0.01 },
    reference: { metric: 0, threshold: 0.01 },
  });
  assertWellFormed(html);
  assert.ok(!html.includes("NaN%"));
  assert.ok(!/="[^"]*NaN[^"]*"/.test(html.replace(/title="[^"]*"/g, "")), "NaN in an attribute");
  assert.match(html, /1 trial not plotted \(missing metrics\)/);
  assert.match(html, /budget ≤ 0\.0100/);
  assert.match(html, /No sensitivity was measured/);
  // Even with nothing at all (as a broken result could be), a page.
  const empty = searchReportHtml({
    ...r,
    baseline: undefined as unknown as SearchResult["baseline"],
    trials: [],
    pareto: [],
    best: null,
    explanation: [],
  });
  assertWellFormed(empty);
  assert.match(empty, /nothing to plot/);
  assert.match(empty, /All trials \(0\)/);
});

Deno.test("search report: hundreds of trials stay unlabelled points with tooltips", () => {
  const r = result();
  const trials: Trial[] = [];
  for (let i = 0; i < 400; i++) {
    trials.push(trial(i, { feasible: i % 3 !== 0, phase: i < 20 ? "random" : "tpe" }, {
      accuracy: 0.95 + (i % 37) / 1000,
      size: 10_000 + ((i * 7919) % 190_000),
      latencyMs: 0.2 + (i % 53) / 100,
    }));
  }
  const pareto = trials.filter((t) => t.feasible).slice(0, 12);
  const start = performance.now();
  const html = searchReportHtml({ ...r, trials, pareto, best: { ...r.best!, trial: pareto[0] } });
  assert.ok(performance.now() - start < 2000);
  assertWellFormed(html);
  assert.equal((html.match(/class="trial /g) ?? []).length, 800);
  assert.match(html, /All trials \(400\)/);
  assert.ok(html.length < 2_000_000, `${html.length} bytes`);
  // Only the three reference points carry labels in each plot.
  assert.equal((html.match(/<g class="ref">/g) ?? []).length, 6);
});
