// The compression search as one self-contained HTML page: inline CSS and inline SVG only — no
// script, no external font, image or stylesheet. Every string that comes from the result
// (layer names, ops, choices, phases, errors, explanation lines) is HTML-escaped.
//
// Layout: key numbers (reference, threshold, trials, feasible, best vs uniform int8), the
// explanation, two scatters (size and latency against the budget metric: every trial, the
// Pareto front connected, infeasible trials as crosses, the budget line, the float and
// uniform-int8 baselines and the best model labelled), the best model's per-layer assignment,
// the sensitivity heat-map (layers × choices, shaded by the drop against the allowed drop) and
// the table of all trials.
//
// It renders whatever it is given: no trial, no feasible trial, NaN or missing metrics (shown
// as "—" and left out of the plots, with a count), hundreds of trials (points unlabelled, with
// a tooltip each).
import { card, escapeHtml, grouped, humanBytes } from "../eval/report_html.ts";
import type { Assignment, Budget, SearchResult, Sensitivity, Trial } from "./types.ts";

const NS = "http://www.w3.org/2000/svg";

const CSS = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
  max-width: 1100px; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin: 0 0 1rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .5rem; border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; }
.cards { display: flex; flex-wrap: wrap; gap: .6rem; margin: 0 0 1rem; }
.card { border: 1px solid #d0d7de; border-radius: 6px; padding: .5rem .8rem; min-width: 8.5rem; }
.card .k { color: #59636e; font-size: .8rem; }
.card .v { font-size: 1.2rem; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: .3rem 0 1rem; }
th, td { border: 1px solid #d0d7de; padding: .25rem .5rem; text-align: right; }
th { background: #f6f8fa; font-weight: 600; }
td.l, th.l { text-align: left; }
tr.pareto td:first-child { font-weight: 700; }
tr.best td { background: #fff8c5; }
tr.base td { background: #f6f8fa; }
td.ok { color: #1a7f37; } td.no { color: #cf222e; }
table.heat td { text-align: center; min-width: 4rem; }
table.heat td.over { outline: 2px solid #82071e; outline-offset: -2px; font-weight: 700; }
.muted { color: #59636e; }
ul.expl li { margin: .2rem 0; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; fill: #1f2328; }
`;

// ---------------------------------------------------------------------------------------------
// Numbers

/** Finite number or undefined (NaN, ±∞, null and non-numbers are "missing"). */
function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

function sig(x: unknown, digits = 3): string {
  if (typeof x !== "number") return "—";
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "∞" : "−∞";
  if (x === 0) return "0";
  return Math.abs(x) < 1e-3 || Math.abs(x) >= 1e6
    ? x.toExponential(digits - 1)
    : x.toPrecision(digits);
}

function pct(x: unknown): string {
  const v = num(x);
  return v === undefined ? (Number.isNaN(x) ? "NaN" : "—") : `${(v * 100).toFixed(2)}%`;
}

function bytes(x: unknown): string {
  const v = num(x);
  return v === undefined ? "—" : humanBytes(Math.round(v));
}

function msText(x: unknown): string {
  const v = num(x);
  return v === undefined ? "—" : `${sig(v)} ms`;
}

function count(x: unknown): string {
  const v = num(x);
  return v === undefined ? "—" : grouped(v);
}

/** The budget metric's value in a trial (undefined when missing or not a finite number). */
export function metricOf(t: Trial | undefined, metric: Budget["metric"]): number | undefined {
  const m = t?.metrics as Partial<Trial["metrics"]> | undefined;
  if (!m) return undefined;
  return num(metric === "accuracy" ? m.accuracy : metric === "agreement" ? m.agreement : m.kl);
}

function metricText(v: unknown, metric: Budget["metric"]): string {
  return metric === "kl" ? sig(v) : pct(v);
}

/** A drop of the budget metric: percentage points for accuracy / agreement, nats for KL. */
function dropText(v: unknown, metric: Budget["metric"]): string {
  const d = num(v);
  if (d === undefined) return Number.isNaN(v) ? "NaN" : "—";
  return metric === "kl" ? sig(d) : `${(d * 100).toFixed(2)} pp`;
}

const METRIC_NAME = { accuracy: "accuracy", agreement: "top-1 agreement", kl: "mean KL" } as const;

/** "int8 ×3, int4 ×2, float ×1 · block 64 · ft": the assignment's choices by count. */
export function choicesSummary(a: Assignment | undefined): string {
  if (!a || typeof a.layers !== "object" || a.layers === null) return "—";
  const counts = new Map<string, number>();
  for (const c of Object.values(a.layers)) counts.set(String(c), (counts.get(String(c)) ?? 0) + 1);
  const parts = [...counts].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1))
    .map(([c, n]) => `${c} ×${n}`);
  let s = parts.join(", ") || "—";
  if (a.int4Block !== undefined) s += ` · block ${a.int4Block}`;
  if (a.finetune) s += " · ft";
  return s;
}

function choicesFull(a: Assignment | undefined): string {
  if (!a || typeof a.layers !== "object" || a.layers === null) return "";
  return Object.entries(a.layers).map(([l, c]) => `${l}=${c}`).join(", ");
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

// ---------------------------------------------------------------------------------------------
// Scatter

type Kind = "feasible" | "infeasible" | "rejected";

interface PlotTrial {
  x: number;
  y: number;
  kind: Kind;
  tip: string;
}

interface PlotRef {
  x: number;
  y: number;
  label: string;
  tip: string;
  shape: "square" | "diamond" | "star";
}

interface Plot {
  title: string;
  xLabel: string;
  xFmt: (v: number) => string;
  yLabel: string;
  yFmt: (v: number) => string;
  /** Accuracy and agreement live in [0, 1]. */
  unitY: boolean;
  /** Higher is better on y (accuracy, agreement); KL: lower. */
  higherBetter: boolean;
  trials: PlotTrial[];
  front: { x: number; y: number }[];
  refs: PlotRef[];
  threshold?: number;
  /** Trials that could not be placed (missing metrics), and failed ones (not plotted). */
  missing: number;
  failed: number;
}

function starPath(x: number, y: number, r: number): string {
  const pts: string[] = [];
  for (let i = 0; i < 10; i++) {
    const a = -Math.PI / 2 + (i * Math.PI) / 5, rr = i % 2 ? r * 0.45 : r;
    pts.push(`${(x + rr * Math.cos(a)).toFixed(1)},${(y + rr * Math.sin(a)).toFixed(1)}`);
  }
  return pts.join(" ");
}

function scatter(p: Plot): string {
  const W = 520, H = 360, l = 64, r = 18, t = 34, b = 46;
  const pw = W - l - r, ph = H - t - b;
  const xs = [...p.trials.map((q) => q.x), ...p.refs.map((q) => q.x)];
  const ys = [...p.trials.map((q) => q.y), ...p.refs.map((q) => q.y)];
  if (p.threshold !== undefined) ys.push(p.threshold);
  const parts: string[] = [
    `<svg xmlns="${NS}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" ` +
    `aria-label="${escapeHtml(p.title)}">`,
    `<text x="${l}" y="14" font-weight="600">${escapeHtml(p.title)}</text>`,
  ];
  if (!xs.length) {
    parts.push(
      `<rect x="${l}" y="${t}" width="${pw}" height="${ph}" fill="none" stroke="#d0d7de"/>`,
      `<text x="${l + pw / 2}" y="${t + ph / 2}" text-anchor="middle" class="muted">` +
        `nothing to plot (no trial with this metric)</text></svg>`,
    );
    return parts.join("\n");
  }
  const minX = Math.min(...xs), maxX = Math.max(...xs);
  const log = minX > 0 && maxX / minX > 10;
  const fx = log ? (v: number) => Math.log10(Math.max(v, 1e-12)) : (v: number) => v;
  let x0 = fx(minX), x1 = fx(maxX);
  const padX = x1 > x0 ? (x1 - x0) * 0.06 : Math.max(Math.abs(x0) * 0.1, 1e-3);
  x0 -= padX;
  x1 += padX;
  if (!log) x0 = Math.max(0, x0);
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  const padY = y1 > y0 ? (y1 - y0) * 0.08 : Math.max(Math.abs(y0) * 0.05, 0.01);
  y0 -= padY;
  y1 += padY;
  if (p.unitY) {
    y0 = Math.max(0, y0);
    y1 = Math.min(1, y1);
  } else y0 = Math.max(0, y0);
  if (!(y1 > y0)) y1 = y0 + 0.01;
  const px = (v: number) => l + ((fx(v) - x0) / (x1 - x0)) * pw;
  const py = (v: number) => t + ph - ((Math.min(Math.max(v, y0), y1) - y0) / (y1 - y0)) * ph;
  const f = (v: number) => v.toFixed(1);

  parts.push(`<rect x="${l}" y="${t}" width="${pw}" height="${ph}" fill="none" stroke="#d0d7de"/>`);
  // The infeasible side of the budget line, shaded.
  if (p.threshold !== undefined) {
    const yt = py(p.threshold);
    const [ry, rh] = p.higherBetter ? [yt, t + ph - yt] : [t, yt - t];
    parts.push(
      `<rect class="infeasible-zone" x="${l}" y="${f(ry)}" width="${pw}" height="${
        f(Math.max(rh, 0))
      }" fill="#cf222e" opacity=".05"/>`,
    );
  }
  for (let i = 0; i <= 4; i++) {
    const yv = y0 + ((y1 - y0) * i) / 4, y = py(yv);
    parts.push(
      `<line x1="${l}" y1="${f(y)}" x2="${l + pw}" y2="${f(y)}" stroke="#eaeef2"/>` +
        `<text x="${l - 5}" y="${f(y + 4)}" text-anchor="end">${escapeHtml(p.yFmt(yv))}</text>`,
    );
    const xv = x0 + ((x1 - x0) * i) / 4, x = l + (pw * i) / 4;
    parts.push(
      `<line x1="${f(x)}" y1="${t + ph}" x2="${f(x)}" y2="${t + ph + 4}" stroke="#8c959f"/>` +
        `<text x="${f(x)}" y="${t + ph + 16}" text-anchor="middle">${
          escapeHtml(p.xFmt(log ? 10 ** xv : xv))
        }</text>`,
    );
  }
  parts.push(
    `<text x="${l + pw / 2}" y="${H - 8}" text-anchor="middle">${escapeHtml(p.xLabel)}${
      log ? " (log scale)" : ""
    }</text>`,
    `<text x="13" y="${t + ph / 2}" text-anchor="middle" transform="rotate(-90 13 ${t + ph / 2})">${
      escapeHtml(p.yLabel)
    }</text>`,
  );
  // Legend.
  parts.push(
    `<g class="legend"><circle cx="${l + 150}" cy="24" r="4" fill="#0969da"/>` +
      `<text x="${l + 157}" y="28">feasible</text>` +
      `<path d="M${l + 214} 20l8 8m0 -8l-8 8" stroke="#cf222e" stroke-width="1.8"/>` +
      `<text x="${l + 226}" y="28">infeasible</text>` +
      `<line x1="${l + 290}" y1="24" x2="${
        l + 306
      }" y2="24" stroke="#bc4c00" stroke-width="2.5"/>` +
      `<text x="${l + 310}" y="28">Pareto front</text>` +
      `<line x1="${l + 384}" y1="24" x2="${l + 400}" y2="24" stroke="#cf222e" ` +
      `stroke-dasharray="5 3" stroke-width="1.5"/><text x="${l + 404}" y="28">budget</text></g>`,
  );
  if (p.threshold !== undefined) {
    const yt = py(p.threshold);
    parts.push(
      `<g class="budget"><title>${
        escapeHtml(`budget: ${p.higherBetter ? "≥" : "≤"} ${p.yFmt(p.threshold)}`)
      }</title><line x1="${l}" y1="${f(yt)}" x2="${l + pw}" y2="${f(yt)}" stroke="#cf222e" ` +
        `stroke-dasharray="5 3" stroke-width="1.5"/><text x="${l + pw - 4}" y="${
          f(p.higherBetter ? yt + 13 : yt - 4)
        }" text-anchor="end" fill="#cf222e">budget ${p.higherBetter ? "≥" : "≤"} ${
          escapeHtml(p.yFmt(p.threshold))
        }</text></g>`,
    );
  }
  // Trials: infeasible and rejected first, so feasible ones are drawn on top.
  const order: Kind[] = ["rejected", "infeasible", "feasible"];
  for (const kind of order) {
    for (const q of p.trials.filter((q) => q.kind === kind)) {
      const x = px(q.x), y = py(q.y);
      const mark = kind === "feasible"
        ? `<circle class="trial feasible" cx="${f(x)}" cy="${f(y)}" r="4" fill="#0969da" ` +
          `fill-opacity=".75"/>`
        : `<path class="trial ${kind}" d="M${f(x - 3.5)} ${f(y - 3.5)}l7 7m0 -7l-7 7" ` +
          `stroke="${kind === "infeasible" ? "#cf222e" : "#8c959f"}" stroke-width="1.6"/>`;
      parts.push(`<g><title>${escapeHtml(q.tip)}</title>${mark}</g>`);
    }
  }
  if (p.front.length) {
    const pts = [...p.front].sort((a, b) => a.x - b.x || a.y - b.y)
      .map((q) => `${f(px(q.x))},${f(py(q.y))}`).join(" ");
    parts.push(
      `<polyline class="pareto-front" points="${pts}" fill="none" stroke="#bc4c00" ` +
        `stroke-width="2.5" stroke-linejoin="round"/>`,
    );
    for (const q of p.front) {
      parts.push(
        `<circle class="pareto-point" cx="${f(px(q.x))}" cy="${
          f(py(q.y))
        }" r="5.5" fill="none" stroke="#bc4c00" stroke-width="2"/>`,
      );
    }
  }
  // Labelled reference points; a label that would overlap a placed one moves down a line.
  const placed: { x0: number; x1: number; y: number }[] = [];
  for (const q of p.refs) {
    const x = px(q.x), y = py(q.y);
    const mark = q.shape === "square"
      ? `<rect x="${f(x - 5)}" y="${f(y - 5)}" width="10" height="10" fill="#fff" ` +
        `stroke="#1f2328" stroke-width="2"/>`
      : q.shape === "diamond"
      ? `<path d="M${f(x)} ${f(y - 6.5)}l6.5 6.5l-6.5 6.5l-6.5 -6.5z" fill="#fff" ` +
        `stroke="#8250df" stroke-width="2"/>`
      : `<polygon points="${starPath(x, y, 8)}" fill="#d4a72c" stroke="#7d4e00"/>`;
    const label = truncate(q.label, 20);
    const right = x + 10 + 7 * label.length < W;
    const lx0 = right ? x + 9 : x - 9 - 7 * label.length, lx1 = lx0 + 7 * label.length;
    let ly = y - 7;
    for (let i = 0; i < 6; i++) {
      if (!placed.some((b) => lx0 < b.x1 && b.x0 < lx1 && Math.abs(b.y - ly) < 12)) break;
      ly += 12;
    }
    placed.push({ x0: lx0, x1: lx1, y: ly });
    parts.push(
      `<g class="ref"><title>${escapeHtml(q.tip)}</title>${mark}<text x="${
        f(right ? x + 9 : x - 9)
      }" ` +
        `y="${f(ly)}"${right ? "" : ` text-anchor="end"`} font-weight="600">${
          escapeHtml(label)
        }</text></g>`,
    );
  }
  const unplotted = [
    p.missing
      ? `${p.missing} trial${p.missing === 1 ? "" : "s"} not plotted (missing metrics)`
      : "",
    p.failed ? `${p.failed} failed` : "",
  ].filter(Boolean).join(", ");
  if (unplotted) {
    parts.push(`<text x="${l + 4}" y="${t + 12}" class="muted">${escapeHtml(unplotted)}</text>`);
  }
  parts.push("</svg>");
  return parts.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Sections

function budgetText(b: Budget | undefined): string {
  if (!b) return "—";
  const d = b.metric === "kl"
    ? `KL ≤ ${sig(b.maxDrop)}`
    : b.relative
    ? `drop ≤ ${sig((num(b.maxDrop) ?? NaN) * 100)}% of the float value`
    : `drop ≤ ${dropText(b.maxDrop, b.metric)}`;
  return `${METRIC_NAME[b.metric] ?? b.metric}: ${d}`;
}

function trialTip(t: Trial, metric: Budget["metric"], label?: string): string {
  const m = (t.metrics ?? {}) as Partial<Trial["metrics"]>;
  const state = t.error
    ? `error: ${t.error}`
    : t.earlyRejected
    ? "rejected early"
    : t.feasible
    ? "feasible"
    : "infeasible";
  return `${label ?? `#${t.id}`}${t.phase ? ` (${t.phase})` : ""}: ${
    choicesSummary(t.assignment)
  }` +
    ` — ${METRIC_NAME[metric] ?? metric} ${metricText(metricOf(t, metric), metric)}, ` +
    `size ${bytes(m.size)}, latency ${msText(m.latencyMs)}; ${state}`;
}

function kindOf(t: Trial): Kind {
  return t.error || t.earlyRejected ? "rejected" : t.feasible ? "feasible" : "infeasible";
}

function plots(r: SearchResult): string {
  const metric = r.budget?.metric ?? "accuracy";
  const trials = r.trials ?? [];
  const paretoIds = new Set((r.pareto ?? []).map((t) => t.id));
  const bestTrial = r.best?.trial;
  const threshold = num(r.reference?.threshold);
  const axes: {
    key: "size" | "latencyMs";
    title: string;
    xLabel: string;
    fmt: (v: number) => string;
  }[] = [
    { key: "size", title: "Size", xLabel: "model size", fmt: (v) => humanBytes(Math.round(v)) },
    { key: "latencyMs", title: "Latency", xLabel: "batch-1 latency (ms)", fmt: (v) => sig(v) },
  ];
  const charts = axes.map(({ key, title, xLabel, fmt }) => {
    const xOf = (t: Trial | undefined) => {
      const v = num((t?.metrics as Partial<Trial["metrics"]> | undefined)?.[key]);
      return v !== undefined && v >= 0 ? v : undefined;
    };
    const pts: PlotTrial[] = [];
    let missing = 0, failed = 0;
    for (const t of trials) {
      const x = xOf(t), y = metricOf(t, metric);
      if (t.error) {
        failed++;
        continue;
      }
      if (x === undefined || y === undefined) {
        missing++;
        continue;
      }
      pts.push({ x, y, kind: kindOf(t), tip: trialTip(t, metric) });
    }
    const front = (r.pareto ?? []).flatMap((t) => {
      const x = xOf(t), y = metricOf(t, metric);
      return x === undefined || y === undefined ? [] : [{ x, y }];
    });
    const refs: PlotRef[] = [];
    const addRef = (t: Trial | undefined, label: string, shape: PlotRef["shape"]) => {
      const x = xOf(t), y = metricOf(t, metric);
      if (t && x !== undefined && y !== undefined) {
        refs.push({ x, y, label, shape, tip: trialTip(t, metric, label) });
      }
    };
    addRef(r.baseline?.float, "float", "square");
    addRef(r.baseline?.int8, "uniform int8", "diamond");
    if (bestTrial) addRef(bestTrial, `best #${bestTrial.id}`, "star");
    return scatter({
      title: `${title} vs ${METRIC_NAME[metric] ?? metric}`,
      xLabel,
      xFmt: fmt,
      yLabel: METRIC_NAME[metric] ?? metric,
      yFmt: (v) => metricText(v, metric),
      unitY: metric !== "kl",
      higherBetter: metric !== "kl",
      trials: pts,
      front,
      refs,
      threshold,
      missing,
      failed,
    });
  });
  const note = paretoIds.size
    ? `The Pareto front (orange) is over the objectives ${
      (r.objectives ?? []).join(", ") || "—"
    }, drawn in each plane.`
    : "No feasible trial, so no Pareto front.";
  return `<h2>Trials</h2><p class="muted">${escapeHtml(note)} Crosses: infeasible (red), ` +
    `rejected early (grey); failed trials are not plotted. Hover a point for its trial.</p>` +
    `<div class="charts">${charts.join("\n")}</div>`;
}

function cards(r: SearchResult): string {
  const metric = r.budget?.metric ?? "accuracy";
  const trials = r.trials ?? [];
  const feasible = trials.filter((t) => t.feasible).length;
  const best = r.best?.trial;
  const int8 = r.baseline?.int8;
  const c = [
    card("budget", budgetText(r.budget)),
    card(`float ${METRIC_NAME[metric] ?? metric}`, metricText(r.reference?.metric, metric)),
    card("threshold", metricText(r.reference?.threshold, metric), "what a trial had to meet"),
    card("trials / feasible", `${trials.length} / ${feasible}`),
    card("best", best ? `#${best.id}` : "none found"),
  ];
  if (best) {
    c.push(
      card("best size", bytes(best.metrics?.size), "file bytes"),
      card("best latency", msText(best.metrics?.latencyMs)),
      card(`best ${METRIC_NAME[metric] ?? metric}`, metricText(metricOf(best, metric), metric)),
    );
    const bs = num(best.metrics?.size), is = num(int8?.metrics?.size);
    const bl = num(best.metrics?.latencyMs), il = num(int8?.metrics?.latencyMs);
    if (bs && is) c.push(card("vs uniform int8: size", `${(is / bs).toFixed(2)}× smaller`));
    if (bl && il) c.push(card("vs uniform int8: latency", `${(il / bl).toFixed(2)}× faster`));
  }
  return `<div class="cards">${c.join("")}</div>`;
}

function explanation(r: SearchResult): string {
  const lines = Array.isArray(r.explanation) ? r.explanation : [];
  return `<h2>Why</h2>` +
    (lines.length
      ? `<ul class="expl">${lines.map((s) => `<li>${escapeHtml(s)}</li>`).join("")}</ul>`
      : `<p class="muted">No explanation given.</p>`);
}

function baselineTable(r: SearchResult): string {
  const metric = r.budget?.metric ?? "accuracy";
  const rows: [string, Trial | undefined][] = [
    ["float", r.baseline?.float],
    ["uniform int8", r.baseline?.int8],
    [r.best ? `best (#${r.best.trial.id})` : "best", r.best?.trial],
  ];
  const body = rows.map(([name, t]) => {
    const m = (t?.metrics ?? {}) as Partial<Trial["metrics"]>;
    if (!t) {
      return `<tr><td class="l">${
        escapeHtml(name)
      }</td><td colspan="7" class="l muted">none</td></tr>`;
    }
    return `<tr><td class="l">${escapeHtml(name)}</td>` +
      [
        metricText(metricOf(t, metric), metric),
        bytes(m.size),
        bytes(m.gzipSize),
        msText(m.latencyMs),
        bytes(m.memory),
        count(m.macs),
        t.feasible ? "✓" : "✗",
      ].map((c) => `<td>${escapeHtml(c)}</td>`).join("") + `</tr>`;
  }).join("");
  return `<table><thead><tr><th class="l">model</th><th>${
    escapeHtml(METRIC_NAME[metric] ?? metric)
  }</th><th>size</th><th>gzip</th><th>latency</th><th>memory</th><th>MACs</th>` +
    `<th>feasible</th></tr></thead><tbody>${body}</tbody></table>`;
}

function assignmentTable(r: SearchResult): string {
  const best = r.best?.trial;
  if (!best) {
    return `<h2>Chosen model</h2><p class="muted">No model met the budget, so none was chosen.</p>`;
  }
  const a = best.assignment ?? { layers: {} };
  const choices = (a.layers ?? {}) as Record<string, string>;
  const layers = [...(r.space?.layers ?? [])];
  const known = new Set(layers.map((l) => l.name));
  for (const name of Object.keys(choices)) {
    if (!known.has(name)) layers.push({ name, op: "—", params: NaN, macs: NaN, choices: [] });
  }
  const rows = layers.map((l) =>
    `<tr><td class="l">${escapeHtml(l.name)}</td><td class="l">${escapeHtml(l.op)}</td>` +
    `<td>${escapeHtml(count(l.params))}</td><td class="l">${
      escapeHtml(choices[l.name] ?? "float")
    }</td></tr>`
  ).join("");
  const genes = [
    a.int4Block !== undefined ? `int4 block size ${a.int4Block}` : "",
    a.finetune !== undefined ? `fine-tuning ${a.finetune ? "on" : "off"}` : "",
  ].filter(Boolean).join("; ");
  return `<h2>Chosen model: trial #${escapeHtml(best.id)}</h2>` +
    (genes ? `<p>${escapeHtml(genes)}</p>` : "") +
    `<table><thead><tr><th class="l">layer</th><th class="l">op</th><th>params</th>` +
    `<th class="l">choice</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function heatmap(r: SearchResult): string {
  const sens: Sensitivity[] = Array.isArray(r.sensitivity) ? r.sensitivity : [];
  if (!r.sensitivity) return "";
  const metric = r.budget?.metric ?? "accuracy";
  if (!sens.length) {
    return `<h2>Sensitivity</h2><p class="muted">No sensitivity was measured.</p>`;
  }
  const layerNames: string[] = (r.space?.layers ?? []).map((l) => l.name)
    .filter((n) => sens.some((s) => s.layer === n));
  for (const s of sens) if (!layerNames.includes(s.layer)) layerNames.push(s.layer);
  const choiceNames: string[] = [];
  for (const s of sens) if (!choiceNames.includes(s.choice)) choiceNames.push(s.choice);
  const cell = new Map(sens.map((s) => [`${s.layer}\u0000${s.choice}`, s]));
  // The allowed drop: the float value minus the threshold (KL: the threshold itself).
  const ref = num(r.reference?.metric), thr = num(r.reference?.threshold);
  let allowed = metric === "kl"
    ? thr
    : ref !== undefined && thr !== undefined
    ? ref - thr
    : undefined;
  if (!(allowed !== undefined && allowed > 0)) {
    allowed = Math.max(...sens.map((s) => Math.abs(num(s.drop) ?? 0)), 0) || 1;
  }
  const rows = layerNames.map((layer) => {
    const cells = choiceNames.map((choice) => {
      const s = cell.get(`${layer}\u0000${choice}`);
      if (!s) return `<td class="muted">·</td>`;
      const d = num(s.drop);
      let bg = "#eaeef2", fg = "#1f2328", cls = "";
      if (d !== undefined) {
        const a = Math.min(Math.abs(d) / allowed!, 1);
        bg = d >= 0
          ? `rgba(207,34,46,${(0.08 + 0.82 * a).toFixed(3)})`
          : `rgba(26,127,55,${(0.08 + 0.5 * a).toFixed(3)})`;
        if (d >= 0 && a > 0.6) fg = "#fff";
        if (d > allowed!) cls = ` class="over"`;
      }
      const tip = `${layer} × ${choice}: drop ${dropText(s.drop, metric)}, SQNR ${
        num(s.sqnrDb) === undefined ? sig(s.sqnrDb) : `${s.sqnrDb.toFixed(1)} dB`
      }${d !== undefined && d > allowed! ? " (exceeds the budget alone)" : ""}`;
      return `<td${cls} style="background:${bg};color:${fg}" title="${escapeHtml(tip)}">${
        escapeHtml(dropText(s.drop, metric))
      }</td>`;
    }).join("");
    return `<tr><th class="l">${escapeHtml(layer)}</th>${cells}</tr>`;
  }).join("");
  return `<h2>Sensitivity</h2><p class="muted">Drop of the ${
    escapeHtml(METRIC_NAME[metric] ?? metric)
  } with only that layer compressed that way; shade: the drop against the allowed drop (${
    escapeHtml(dropText(allowed, metric))
  }), outlined when it alone exceeds the budget. Hover for SQNR.</p>` +
    `<table class="heat"><thead><tr><th class="l">layer \\ choice</th>${
      choiceNames.map((c) => `<th>${escapeHtml(c)}</th>`).join("")
    }</tr></thead><tbody>${rows}</tbody></table>`;
}

function trialsTable(r: SearchResult): string {
  const metric = r.budget?.metric ?? "accuracy";
  const paretoIds = new Set((r.pareto ?? []).map((t) => t.id));
  const bestId = r.best?.trial?.id;
  const row = (t: Trial, label?: string) => {
    const m = (t.metrics ?? {}) as Partial<Trial["metrics"]>;
    const cls = [
      label ? "base" : "",
      !label && paretoIds.has(t.id) ? "pareto" : "",
      !label && t.id === bestId ? "best" : "",
    ].filter(Boolean).join(" ");
    const state = t.error
      ? `<td class="l no" title="${escapeHtml(t.error)}">✗ error: ${
        escapeHtml(truncate(t.error, 40))
      }</td>`
      : t.earlyRejected
      ? `<td class="l no">✗ early</td>`
      : t.feasible
      ? `<td class="l ok">✓</td>`
      : `<td class="l no">✗</td>`;
    const mark = !label && t.id === bestId ? " ★" : !label && paretoIds.has(t.id) ? " ◆" : "";
    return `<tr${cls ? ` class="${cls}"` : ""}><td class="l">${
      escapeHtml(label ?? `#${t.id}`)
    }${mark}</td>` +
      `<td class="l">${escapeHtml(t.phase ?? "—")}</td>` +
      `<td class="l" title="${escapeHtml(choicesFull(t.assignment))}">${
        escapeHtml(choicesSummary(t.assignment))
      }</td>` +
      [
        metric === "accuracy" ? pct(m.accuracy) : metricText(metricOf(t, metric), metric),
        ...(metric === "accuracy" ? [pct(m.agreement)] : []),
        bytes(m.size),
        bytes(m.gzipSize),
        msText(t.predicted?.latencyMs),
        msText(m.latencyMs),
        bytes(m.memory),
        count(m.macs),
      ].map((c) => `<td>${escapeHtml(c)}</td>`).join("") + state +
      `<td>${
        escapeHtml(num(t.durationMs) === undefined ? "—" : `${(t.durationMs / 1000).toFixed(2)} s`)
      }</td></tr>`;
  };
  const head = [
    "trial",
    "phase",
    "choices",
    METRIC_NAME[metric] ?? metric,
    ...(metric === "accuracy" ? ["agreement"] : []),
    "size",
    "gzip",
    "predicted latency",
    "measured latency",
    "memory",
    "MACs",
    "feasible",
    "duration",
  ];
  const trials = [...(r.trials ?? [])].sort((a, b) => a.id - b.id);
  const rows = [
    ...(r.baseline?.float ? [row(r.baseline.float, "float")] : []),
    ...(r.baseline?.int8 ? [row(r.baseline.int8, "uniform int8")] : []),
    ...trials.map((t) => row(t)),
  ].join("\n");
  return `<h2>All trials (${trials.length})</h2><p class="muted">★ best, ◆ on the Pareto front; ` +
    `hover the choices for the full assignment.</p><table class="trials"><thead><tr>${
      head.map((h, i) =>
        `<th${i < 3 || h === "feasible" ? ` class="l"` : ""}>${escapeHtml(h)}</th>`
      )
        .join("")
    }</tr></thead><tbody>${rows}</tbody></table>`;
}

/** The search's report: one self-contained HTML page. */
export function searchReportHtml(result: SearchResult, options: { title?: string } = {}): string {
  const title = options.title ?? "sqz compression search";
  const sections = [
    cards(result),
    explanation(result),
    baselineTable(result),
    plots(result),
    assignmentTable(result),
    heatmap(result),
    trialsTable(result),
  ];
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p class="muted">${escapeHtml(budgetText(result.budget))}; objectives ${
    escapeHtml((result.objectives ?? []).join(", ") || "—")
  }; ${escapeHtml(String((result.trials ?? []).length))} trials.</p>
${sections.join("\n")}
</body>
</html>
`;
}
