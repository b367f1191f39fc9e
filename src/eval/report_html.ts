// The evaluation report as one self-contained HTML page: inline CSS and inline SVG only — no
// script, no external font, image or stylesheet — so it can be mailed, archived or opened from
// disk and shows the same everywhere. Every piece of text that comes from the report (model
// and layer names, class names, notes) is HTML-escaped.
//
// Layout: key numbers (one card row for a single report, a table for several variants), a
// "size vs accuracy" scatter, then per variant the per-layer SQNR and time bar charts, the
// confusion matrix as a heat-map table, and the notes.
//
// Number formats: rates as percentages with 2 decimals ("93.50%"), byte counts as exact
// integers with comma grouping ("12,345") plus a binary-prefixed size ("12.1 KiB"), KL with 3
// significant digits, times in ms with 3 significant digits.
//
// Sizes are a model's files: the .onnx plus the external data files it names (each once), so
// the ratios and the scatter compare like with like.
import { ArgumentError } from "../errors.ts";
import { type EvalReport, fromJsonNumber, type JsonNumber, PRECISIONS } from "./evaluate.ts";

export interface Variant {
  name: string;
  report: EvalReport;
}

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Text safe inside HTML/SVG element content and quoted attribute values. */
export function escapeHtml(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** 1234567 → "1,234,567". */
export function grouped(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const [int, frac] = String(Math.round(n * 1000) / 1000).split(".");
  return int.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + (frac ? `.${frac}` : "");
}

/** Bytes with a binary prefix: "980 B", "12.1 KiB", "3.40 MiB". */
export function humanBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB"];
  let v = n, u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toPrecision(3)} ${units[u]}`;
}

export const percent = (x: number | undefined) =>
  x === undefined ? "—" : `${(x * 100).toFixed(2)}%`;

function sig(x: number | undefined, digits = 3): string {
  if (x === undefined) return "—";
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "∞" : "−∞";
  if (x === 0) return "0";
  return Math.abs(x) < 1e-3 || Math.abs(x) >= 1e6
    ? x.toExponential(digits - 1)
    : x.toPrecision(digits);
}

const db = (x: JsonNumber | undefined) => {
  const v = fromJsonNumber(x);
  return v === undefined ? "—" : Number.isFinite(v) ? `${v.toFixed(1)} dB` : `${sig(v)} dB`;
};

const ms = (x: number | null | undefined) => (x === null || x === undefined ? "—" : `${sig(x)} ms`);

const CSS = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
  max-width: 1040px; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin: 0 0 1rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .5rem; border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; }
h3 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
.cards { display: flex; flex-wrap: wrap; gap: .6rem; margin: 0 0 1rem; }
.card { border: 1px solid #d0d7de; border-radius: 6px; padding: .5rem .8rem; min-width: 8.5rem; }
.card .k { color: #59636e; font-size: .8rem; }
.card .v { font-size: 1.25rem; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: .3rem 0 1rem; }
th, td { border: 1px solid #d0d7de; padding: .25rem .5rem; text-align: right; }
th { background: #f6f8fa; font-weight: 600; }
td.l, th.l { text-align: left; }
table.cm td { min-width: 2.2rem; text-align: center; }
.muted { color: #59636e; }
ul.notes li { margin: .2rem 0; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; fill: #1f2328; }
details > summary { cursor: pointer; font-weight: 600; margin: .5rem 0; }
`;

// ---------------------------------------------------------------------------------------------
// Charts

interface Bar {
  label: string;
  /** Bar length; Infinity draws a full, hatched bar. */
  value: number;
  text: string;
}

const NS = "http://www.w3.org/2000/svg";

function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

/** Horizontal bars, one per row, scaled to the largest finite value. */
function barChart(
  bars: readonly Bar[],
  title: string,
  color: string,
  id: string,
  unit: string,
): string {
  const rowH = 20, labelW = 200, barW = 520, textW = 110, top = 6, axisH = 22;
  const width = labelW + barW + textW, height = top + bars.length * rowH + axisH;
  const finite = bars.map((b) => b.value).filter(Number.isFinite);
  const max = Math.max(...finite.map((v) => Math.max(v, 0)), 0) || 1;
  const parts: string[] = [
    `<svg xmlns="${NS}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" ` +
    `role="img" aria-label="${escapeHtml(title)}">`,
    `<defs><pattern id="${id}" width="6" height="6" patternUnits="userSpaceOnUse" ` +
    `patternTransform="rotate(45)"><rect width="6" height="6" fill="${color}" opacity=".35"/>` +
    `<line x1="0" y1="0" x2="0" y2="6" stroke="${color}" stroke-width="3"/></pattern></defs>`,
  ];
  bars.forEach((b, i) => {
    const y = top + i * rowH;
    const w = b.value === Infinity
      ? barW
      : Number.isFinite(b.value)
      ? (Math.max(b.value, 0) / max) * barW
      : 0;
    const fill = b.value === Infinity ? `url(#${id})` : color;
    parts.push(
      `<g><title>${escapeHtml(`${b.label}: ${b.text}`)}</title>` +
        `<text x="${labelW - 6}" y="${y + 14}" text-anchor="end">${
          escapeHtml(truncate(b.label, 32))
        }</text>` +
        `<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${
          rowH - 6
        }" fill="${fill}"/>` +
        `<text x="${(labelW + w + 4).toFixed(1)}" y="${y + 14}">${escapeHtml(b.text)}</text></g>`,
    );
  });
  const axisY = top + bars.length * rowH + 2;
  parts.push(
    `<line x1="${labelW}" y1="${top}" x2="${labelW}" y2="${axisY}" stroke="#8c959f"/>`,
    `<line x1="${labelW}" y1="${axisY}" x2="${labelW + barW}" y2="${axisY}" stroke="#8c959f"/>`,
  );
  for (const f of [0, 0.5, 1]) {
    const x = labelW + f * barW;
    parts.push(
      `<line x1="${x}" y1="${axisY}" x2="${x}" y2="${axisY + 4}" stroke="#8c959f"/>` +
        `<text x="${x}" y="${axisY + 16}" text-anchor="middle" class="muted">${
          sig(f * max)
        } ${unit}</text>`,
    );
  }
  parts.push("</svg>");
  return parts.join("\n");
}

interface Point {
  label: string;
  bytes: number;
  accuracy: number;
  reference: boolean;
}

/**
 * Size (the model's bytes, external data included; log scale when they span more than 10×)
 * against accuracy.
 */
function scatter(points: readonly Point[]): string {
  const W = 680, H = 380, l = 70, r = 150, t = 16, b = 48;
  const pw = W - l - r, ph = H - t - b;
  const xs = points.map((p) => p.bytes), ys = points.map((p) => p.accuracy);
  const minX = Math.min(...xs), maxX = Math.max(...xs);
  const log = maxX / Math.max(minX, 1) > 10;
  const fx = log ? (v: number) => Math.log10(Math.max(v, 1)) : (v: number) => v;
  let x0 = fx(minX), x1 = fx(maxX);
  const padX = x1 > x0 ? (x1 - x0) * 0.08 : Math.max(Math.abs(x0) * 0.1, 1);
  x0 -= padX;
  x1 += padX;
  if (!log) x0 = Math.max(0, x0);
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  const padY = y1 > y0 ? (y1 - y0) * 0.1 : 0.05;
  y0 = Math.max(0, y0 - padY);
  y1 = Math.min(1, y1 + padY);
  if (y1 <= y0) y1 = y0 + 0.01;
  const px = (v: number) => l + ((fx(v) - x0) / (x1 - x0)) * pw;
  const py = (v: number) => t + ph - ((v - y0) / (y1 - y0)) * ph;
  const parts: string[] = [
    `<svg xmlns="${NS}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" ` +
    `aria-label="model size against accuracy">`,
    `<rect x="${l}" y="${t}" width="${pw}" height="${ph}" fill="none" stroke="#d0d7de"/>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const yv = y0 + ((y1 - y0) * i) / 4, y = py(yv);
    parts.push(
      `<line x1="${l}" y1="${y.toFixed(1)}" x2="${l + pw}" y2="${
        y.toFixed(1)
      }" stroke="#eaeef2"/>` +
        `<text x="${l - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${percent(yv)}</text>`,
    );
    const xv = x0 + ((x1 - x0) * i) / 4, x = l + (pw * i) / 4;
    const bytes = log ? 10 ** xv : xv;
    parts.push(
      `<line x1="${x.toFixed(1)}" y1="${t + ph}" x2="${x.toFixed(1)}" y2="${
        t + ph + 4
      }" stroke="#8c959f"/>` +
        `<text x="${x.toFixed(1)}" y="${t + ph + 17}" text-anchor="middle">${
          humanBytes(Math.round(bytes))
        }</text>`,
    );
  }
  parts.push(
    `<text x="${l + pw / 2}" y="${H - 8}" text-anchor="middle">model size${
      log ? " (log scale)" : ""
    }</text>`,
    `<text x="14" y="${t + ph / 2}" text-anchor="middle" transform="rotate(-90 14 ${
      t + ph / 2
    })">accuracy</text>`,
  );
  // Labels sit right of their point; one that would overlap a placed label moves down a line
  // at a time (7 px per character is a safe width at 11 px).
  const placed: { x0: number; x1: number; y: number }[] = [];
  const labelY = (x: number, y: number, text: string) => {
    const x0 = x + 9, x1 = x0 + 7 * text.length;
    let ly = y + 4;
    for (let tries = 0; tries < 8; tries++) {
      if (!placed.some((b) => x0 < b.x1 && b.x0 < x1 && Math.abs(b.y - ly) < 12)) break;
      ly += 12;
    }
    placed.push({ x0, x1, y: ly });
    return ly;
  };
  for (const p of points) {
    const x = px(p.bytes), y = py(p.accuracy);
    const label = truncate(p.label, 24);
    const mark = p.reference
      ? `<rect x="${(x - 5).toFixed(1)}" y="${
        (y - 5).toFixed(1)
      }" width="10" height="10" fill="#fff" stroke="#59636e" stroke-width="2"/>`
      : `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="5.5" fill="#0969da"/>`;
    parts.push(
      `<g><title>${
        escapeHtml(`${p.label}: ${grouped(p.bytes)} bytes, ${percent(p.accuracy)}`)
      }</title>${mark}` +
        `<text x="${(x + 9).toFixed(1)}" y="${labelY(x, y, label).toFixed(1)}">${
          escapeHtml(label)
        }</text></g>`,
    );
  }
  parts.push("</svg>");
  return parts.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Sections

/** A key-figure card (key, value, optional hover hint). */
export function card(k: string, v: string, hint?: string): string {
  return `<div class="card"${hint ? ` title="${escapeHtml(hint)}"` : ""}><div class="k">${
    escapeHtml(k)
  }</div><div class="v">${escapeHtml(v)}</div></div>`;
}

function sizeText(r: EvalReport): string {
  return `${humanBytes(r.model.bytes)} → ${humanBytes(r.model.gzipBytes)} gz`;
}

function cards(r: EvalReport): string {
  const c = [
    card("accuracy", percent(r.accuracy)),
    ...(r.reference?.accuracy !== undefined
      ? [card("reference accuracy", percent(r.reference.accuracy))]
      : []),
    card(
      "top-1 agreement",
      percent(r.agreement),
      "share of samples with the reference's top-1 class",
    ),
    card(
      "mean KL",
      r.klMean === undefined ? "—" : sig(fromJsonNumber(r.klMean)),
      "KL(p_ref ‖ p_model), nats",
    ),
    card("size → gzip", sizeText(r)),
    card(
      "compression",
      r.reference
        ? `${r.reference.compressionRatio.toFixed(2)}× (gzip ${r.reference.gzipRatio.toFixed(2)}×)`
        : "—",
      "reference bytes / model bytes",
    ),
    card("p50 latency", ms(r.latency.p50Ms), "single-sample runs"),
  ];
  return `<div class="cards">${c.join("")}</div>`;
}

function summaryTable(variants: readonly Variant[]): string {
  const head = [
    "variant",
    "accuracy",
    "agreement",
    "mean KL",
    "bytes",
    "gzip",
    "brotli",
    "ratio",
    "params",
    "non-zero",
    ...PRECISIONS.map((p) => `MACs ${p}`),
    "p50",
    "p99",
    "memory",
  ];
  const rows = variants.map(({ name, report: r }) =>
    [
      `<td class="l">${escapeHtml(name)}</td>`,
      percent(r.accuracy),
      percent(r.agreement),
      r.klMean === undefined ? "—" : sig(fromJsonNumber(r.klMean)),
      grouped(r.model.bytes),
      grouped(r.model.gzipBytes),
      r.model.brotliBytes === undefined ? "–" : grouped(r.model.brotliBytes),
      r.reference ? `${r.reference.compressionRatio.toFixed(2)}×` : "—",
      grouped(r.model.params),
      grouped(r.model.nonzeros),
      ...PRECISIONS.map((p) => grouped(r.model.macs[p])),
      ms(r.latency.p50Ms),
      ms(r.latency.p99Ms),
      grouped(r.memory.totalBytes),
    ].map((c, i) => (i === 0 ? c : `<td>${escapeHtml(c)}</td>`)).join("")
  );
  const ref = variants.find((v) => v.report.reference)?.report.reference;
  if (ref) {
    rows.push(
      [
        `<td class="l muted">reference</td>`,
        percent(ref.accuracy),
        "",
        "",
        grouped(ref.model.bytes),
        grouped(ref.model.gzipBytes),
        ref.model.brotliBytes === undefined ? "–" : grouped(ref.model.brotliBytes),
        "1.00×",
        grouped(ref.model.params),
        grouped(ref.model.nonzeros),
        ...PRECISIONS.map((p) => grouped(ref.model.macs[p])),
        ms(ref.latency.p50Ms),
        ms(ref.latency.p99Ms),
        "",
      ].map((c, i) => (i === 0 ? c : `<td>${escapeHtml(c)}</td>`)).join(""),
    );
  }
  return `<table><thead><tr>${
    head.map((h, i) => `<th${i ? "" : ` class="l"`}>${escapeHtml(h)}</th>`).join("")
  }` +
    `</tr></thead><tbody>${rows.map((r) => `<tr>${r}</tr>`).join("")}</tbody></table>`;
}

function scatterSection(variants: readonly Variant[]): string {
  const points: Point[] = [];
  for (const { name, report: r } of variants) {
    if (r.accuracy !== undefined) {
      points.push({ label: name, bytes: r.model.bytes, accuracy: r.accuracy, reference: false });
    }
  }
  const ref = variants.find((v) => v.report.reference?.accuracy !== undefined)?.report.reference;
  if (ref) {
    points.push({
      label: "reference",
      bytes: ref.model.bytes,
      accuracy: ref.accuracy!,
      reference: true,
    });
  }
  const body = points.length
    ? scatter(points)
    : `<p class="muted">No labels, so no accuracy to plot.</p>`;
  return `<h2>Size vs accuracy</h2>\n${body}`;
}

function layerCharts(r: EvalReport, id: string): string {
  const out: string[] = [];
  const withSqnr = r.layers.filter((l) => l.sqnrDb !== undefined);
  out.push("<h3>Per-layer SQNR (layer output vs the reference's)</h3>");
  if (withSqnr.length) {
    out.push(
      barChart(
        withSqnr.map((l) => {
          const v = fromJsonNumber(l.sqnrDb)!;
          return {
            label: l.name,
            value: Number.isNaN(v) ? 0 : v,
            text: v === Infinity ? "∞ (identical)" : db(l.sqnrDb),
          };
        }),
        "per-layer SQNR in dB",
        "#1a7f37",
        `${id}-sqnr`,
        "dB",
      ),
    );
  } else out.push(`<p class="muted">No per-layer SQNR (it needs a reference model).</p>`);
  const timed = r.layers.filter((l) => l.ms !== undefined);
  out.push("<h3>Per-layer time (median of single-sample runs)</h3>");
  if (timed.length) {
    out.push(
      barChart(
        timed.map((l) => ({ label: l.name, value: l.ms!, text: ms(l.ms) })),
        "per-layer time in ms",
        "#0969da",
        `${id}-ms`,
        "ms",
      ),
    );
  } else out.push(`<p class="muted">No per-layer timings.</p>`);
  if (r.layers.length) {
    out.push(
      `<table><thead><tr><th class="l">layer</th><th class="l">op</th>` +
        `<th class="l">MACs in</th><th class="l">weights</th><th>params</th><th>non-zero</th>` +
        `<th>MACs</th><th>SQNR</th><th>time</th></tr></thead><tbody>` +
        r.layers.map((l) =>
          `<tr><td class="l">${escapeHtml(l.name)}</td><td class="l">${escapeHtml(l.op)}</td>` +
          `<td class="l">${escapeHtml(l.precision ?? "—")}</td>` +
          `<td class="l">${escapeHtml(l.weights ?? "—")}</td>` +
          `<td>${l.params === undefined ? "—" : grouped(l.params)}</td>` +
          `<td>${l.nonzeros === undefined ? "—" : grouped(l.nonzeros)}</td>` +
          `<td>${l.macs === undefined ? "—" : grouped(l.macs)}</td>` +
          `<td>${escapeHtml(db(l.sqnrDb))}</td><td>${escapeHtml(ms(l.ms))}</td></tr>`
        ).join("") +
        `</tbody></table>`,
    );
  }
  return out.join("\n");
}

function confusionTable(r: EvalReport): string {
  if (!r.confusion) return `<h3>Confusion matrix</h3><p class="muted">No labels.</p>`;
  const { labels, matrix } = r.confusion;
  const rows = matrix.map((row, i) => {
    const sum = row.reduce((a, b) => a + b, 0) || 1;
    const cells = row.map((v, j) => {
      const a = v / sum;
      const bg = `rgba(9,105,218,${a.toFixed(3)})`;
      const fg = a > 0.55 ? "#fff" : "#1f2328";
      return `<td style="background:${bg};color:${fg}" title="${
        escapeHtml(`true ${labels[i]}, predicted ${labels[j]}: ${v}`)
      }">${v}</td>`;
    }).join("");
    return `<tr><th>${escapeHtml(labels[i])}</th>${cells}</tr>`;
  }).join("");
  const head = labels.map((l) => `<th>${escapeHtml(l)}</th>`).join("");
  return `<h3>Confusion matrix</h3><p class="muted">Rows: true class; columns: predicted; ` +
    `shade: share of the row.</p><table class="cm"><thead><tr><th>true \\ pred</th>${head}</tr>` +
    `</thead><tbody>${rows}</tbody></table>`;
}

/** With external data: the .onnx and each data file, which `bytes` adds up. */
function fileRows(m: EvalReport["model"]): [string, string][] {
  const ext = m.externalFiles ?? [];
  if (!ext.length) return [];
  return [
    [".onnx file bytes", `${grouped(m.graphBytes)} (${humanBytes(m.graphBytes)})`],
    ...ext.map((f): [string, string] => [
      `external data ${f.location}`,
      `${grouped(f.bytes)} (${humanBytes(f.bytes)})`,
    ]),
  ];
}

function details(r: EvalReport): string {
  const rows: [string, string][] = [
    ["samples", grouped(r.samples)],
    ["classes", grouped(r.classes)],
    ["output", r.output],
    ["accuracy", percent(r.accuracy)],
    [
      "macro precision / recall / F1",
      r.macro
        ? `${percent(r.macro.precision)} / ${percent(r.macro.recall)} / ${percent(r.macro.f1)}`
        : "—",
    ],
    ["top-1 agreement", percent(r.agreement)],
    ["mean KL (nats)", r.klMean === undefined ? "—" : sig(fromJsonNumber(r.klMean))],
    ["file bytes", `${grouped(r.model.bytes)} (${humanBytes(r.model.bytes)})`],
    ...fileRows(r.model),
    ["gzip bytes", `${grouped(r.model.gzipBytes)} (${humanBytes(r.model.gzipBytes)})`],
    [
      "brotli bytes",
      r.model.brotliBytes === undefined
        ? "not measured"
        : `${grouped(r.model.brotliBytes)} (${humanBytes(r.model.brotliBytes)})`,
    ],
    ["params / non-zero", `${grouped(r.model.params)} / ${grouped(r.model.nonzeros)}`],
    ...PRECISIONS.map((p): [string, string] => [`MACs ${p}`, grouped(r.model.macs[p])]),
    [
      "latency p50 / p99",
      `${ms(r.latency.p50Ms)} / ${
        ms(r.latency.p99Ms)
      } (${r.latency.runs} runs, batch ${r.latency.batch})`,
    ],
    [
      "memory (arena + weights)",
      `${grouped(r.memory.totalBytes)} (${grouped(r.memory.arenaBytes)} + ${
        grouped(r.memory.weightBytes)
      })`,
    ],
  ];
  if (r.reference) {
    rows.push(
      [
        "reference bytes / gzip",
        `${grouped(r.reference.model.bytes)} / ${grouped(r.reference.model.gzipBytes)}`,
      ],
      ...fileRows(r.reference.model).map((
        [k, v],
      ): [string, string] => [`reference ${k}`, v]),
      [
        "compression ratio (raw / gzip)",
        `${r.reference.compressionRatio.toFixed(2)}× / ${r.reference.gzipRatio.toFixed(2)}×`,
      ],
      ["reference latency p50", ms(r.reference.latency.p50Ms)],
    );
  }
  if (r.kfold) {
    rows.push([
      `${r.kfold.k}-fold accuracy`,
      `${percent(r.kfold.mean)} ± ${percent(r.kfold.std)} (folds: ${
        r.kfold.accuracies.map(percent).join(", ")
      })`,
    ]);
  }
  return `<h3>Numbers</h3><table><tbody>${
    rows.map(([k, v]) =>
      `<tr><th class="l">${escapeHtml(k)}</th><td class="l">${escapeHtml(v)}</td></tr>`
    ).join("")
  }</tbody></table>`;
}

function notes(r: EvalReport): string {
  if (!r.notes.length) return "";
  return `<h3>Notes</h3><ul class="notes">${
    r.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join("")
  }</ul>`;
}

function variantBody(r: EvalReport, id: string): string {
  return [details(r), layerCharts(r, id), confusionTable(r), notes(r)].join("\n");
}

/**
 * One self-contained HTML page for a report, or for several variants of a model (each with
 * its report, e.g. int8 / int4 / pruned, sharing a reference).
 */
export function reportHtml(
  report: EvalReport | { variants: Variant[] },
  title = "sqz evaluation report",
): string {
  const variants: Variant[] = "variants" in report ? report.variants : [{ name: "model", report }];
  if (!Array.isArray(variants) || variants.length === 0) {
    throw new ArgumentError("reportHtml: no report to show");
  }
  const single = !("variants" in report);
  const sections: string[] = [];
  if (single) {
    sections.push(
      cards(variants[0].report),
      scatterSection(variants),
      variantBody(variants[0].report, "v0"),
    );
  } else {
    sections.push(summaryTable(variants), scatterSection(variants));
    variants.forEach((v, i) => {
      sections.push(
        `<h2>${escapeHtml(v.name)}</h2>`,
        cards(v.report),
        variantBody(v.report, `v${i}`),
      );
    });
  }
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
${sections.join("\n")}
</body>
</html>
`;
}
