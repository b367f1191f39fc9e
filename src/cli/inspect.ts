// `sqz inspect model.onnx [--json] [--layers N]`: what a model is made of.
import { inspectModel, type ModelReport } from "../mod.ts";
import { dirname } from "node:path";

const fmtDims = (d?: (number | string)[]) => (d ? `[${d.join(", ")}]` : "?");
const si = (n: number) =>
  n >= 1e9
    ? `${(n / 1e9).toFixed(2)} G`
    : n >= 1e6
    ? `${(n / 1e6).toFixed(2)} M`
    : n >= 1e3
    ? `${(n / 1e3).toFixed(1)} k`
    : `${n}`;

export function formatReport(path: string, r: ModelReport, maxLayers: number): string {
  const lines = [`${path}: opset ${r.opset}, ${r.nodes} nodes`];
  lines.push("inputs:");
  for (const t of r.inputs) lines.push(`  ${t.name}  ${t.type ?? "?"} ${fmtDims(t.dims)}`);
  lines.push("outputs:");
  for (const t of r.outputs) lines.push(`  ${t.name}  ${t.type ?? "?"} ${fmtDims(t.dims)}`);
  const ops = Object.entries(r.ops).sort((a, b) => b[1] - a[1]);
  lines.push(`ops: ${ops.map(([k, v]) => `${k} ×${v}`).join(", ")}`);
  lines.push(`parameters: ${si(r.parameters)} (${si(r.parameterBytes)}B)`);
  lines.push(`MACs: ${si(r.macs)} per inference (symbolic dims taken as 1)`);
  if (r.layers.length) {
    lines.push("layers with MACs:");
    const shown = r.layers.slice(0, maxLayers);
    const w = Math.max(...shown.map((l) => l.name.length));
    for (const l of shown) {
      const share = r.macs ? ((100 * l.macs) / r.macs).toFixed(1) : "0";
      lines.push(
        `  ${l.name.padEnd(w)}  ${l.op.padEnd(12)} ${si(l.macs).padStart(9)}  ${
          share.padStart(5)
        }%  ${fmtDims(l.outputDims)}`,
      );
    }
    if (r.layers.length > shown.length) {
      lines.push(`  … ${r.layers.length - shown.length} more (--layers N)`);
    }
  }
  return lines.join("\n");
}

export function inspectCommand(path: string | undefined, json: boolean, maxLayers: number): void {
  if (!path) throw new Error("usage: sqz inspect model.onnx [--json] [--layers N]");
  const bytes = Deno.readFileSync(path);
  const report = inspectModel(bytes, { baseDir: dirname(path) });
  console.log(json ? JSON.stringify(report, null, 2) : formatReport(path, report, maxLayers));
}
