// Turns `deno task bench <suite> --json` lines into the README's markdown result tables:
//   deno run -A bench/markdown.ts results.jsonl
// Ratios are computed from medians of the same run.
interface Row {
  suite: string;
  shape?: number[];
  layer?: string;
  model?: string;
  impl: string;
  median_ms: number;
}

const rows: Row[] = (await Deno.readTextFile(Deno.args[0])).split("\n")
  .filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));

function key(r: Row): string {
  return r.shape ? r.shape.join("×") : r.layer!;
}

function best(group: Row[], prefix: string, exclude?: string): number | undefined {
  const t = group.filter((r) => r.impl.startsWith(prefix) && !(exclude && r.impl.includes(exclude)))
    .map((r) => r.median_ms);
  return t.length ? Math.min(...t) : undefined;
}

const ms = (v?: number) => (v === undefined ? "–" : v < 1 ? v.toFixed(3) : v.toFixed(2));
const x = (a?: number, b?: number) => (a && b ? `**${(b / a).toFixed(2)}×**` : "–");

for (const suite of ["gemm", "conv"]) {
  const sr = rows.filter((r) => r.suite === suite);
  if (!sr.length) continue;
  const groups = [...new Set(sr.map(key))].map((k) => sr.filter((r) => key(r) === k));
  const head = suite === "gemm" ? "M×N×K" : "layer (H×W×Cin→Cout, kernel, stride)";
  console.log(
    `| ${head} | sqz f32 | tfjs f32 | ORT f32 | f32 vs tfjs | sqz int8 | ORT int8 | int8 vs ORT | int8 vs tfjs | sqz binary | binary vs tfjs |`,
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|");
  for (const g of groups) {
    const f = best(g, "sqz-f32"), tf = best(g, "tfjs-f32"), of = best(g, "ort-f32");
    const i = best(g, "sqz-int8"), oi = best(g, "ort-int8");
    // GEMM: the binary time that includes sign-packing f32 A (the -bits- rows skip it).
    const b = best(g, "sqz-bin", "bits");
    console.log(
      `| ${key(g[0])} | ${ms(f)} | ${ms(tf)} | ${ms(of)} | ${x(f, tf)} | ${ms(i)} | ${ms(oi)} | ${
        x(i, oi)
      } | ${x(i, tf)} | ${ms(b)} | ${x(b, tf)} |`,
    );
  }
  console.log();
}

// Whole models: sqz (best build) against onnxruntime-web, batch 1.
const mr = rows.filter((r) => r.suite === "models");
if (mr.length) {
  console.log("| model | sqz ms | ORT ms | ORT / sqz |");
  console.log("|---|---|---|---|");
  for (const model of new Set(mr.map((r) => r.model!))) {
    const g = mr.filter((r) => r.model === model);
    const s = best(g, "sqz-"), o = best(g, "ort");
    console.log(`| ${model} | ${ms(s)} | ${ms(o)} | ${x(s, o)} |`);
  }
  console.log();
}

// Compression on the MNIST models: what each recipe keeps (accuracy, agreement) and saves.
interface CompressionRow {
  suite: "compression";
  model: string;
  recipe: string;
  accuracy: number;
  agreement: number;
  kl: number;
  bytes: number;
  gzipBytes: number;
  ratio: number;
  p50Ms: number | null;
  ortAccuracy?: number;
  weightRatio?: number;
  binaryKernels?: number;
  epochs?: number;
  trainMs?: number;
}
const cr = rows.filter((r) => r.suite === "compression") as unknown as CompressionRow[];
if (cr.length) {
  const pct = (v?: number) => (v === undefined ? "–" : `${(v * 100).toFixed(2)}%`);
  console.log(
    "| model | recipe | accuracy | top-1 agreement | KL | size | × smaller | gzip | gzip × smaller | weights × smaller | sqz p50 ms | XNOR kernel ops | fine-tuning | ORT accuracy (same file) |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  const floatGzip = new Map(
    cr.filter((r) => r.recipe === "float").map((r) => [r.model, r.gzipBytes]),
  );
  for (const r of cr) {
    console.log(
      `| ${r.model} | ${r.recipe} | ${pct(r.accuracy)} | ${pct(r.agreement)} | ${
        r.kl.toExponential(1)
      } | ${(r.bytes / 1024).toFixed(1)} KiB | ${r.ratio.toFixed(2)}× | ${
        (r.gzipBytes / 1024).toFixed(1)
      } KiB | ${
        floatGzip.has(r.model) ? `${(floatGzip.get(r.model)! / r.gzipBytes).toFixed(1)}×` : "–"
      } | ${r.weightRatio ? `${r.weightRatio.toFixed(1)}×` : "–"} | ${
        r.p50Ms?.toFixed(3) ?? "–"
      } | ${r.binaryKernels ? r.binaryKernels : "–"} | ${
        r.epochs ? `${r.epochs} epochs, ${((r.trainMs ?? 0) / 1000).toFixed(0)} s` : "–"
      } | ${r.ortAccuracy === undefined ? "– (ai.sqz ops)" : pct(r.ortAccuracy)} |`,
    );
  }
  console.log();
}

// The service under load: v2 inference on the MNIST CNN over loopback.
interface ServeRow {
  suite: "serve";
  concurrency: number;
  background: string;
  rps: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  jobs?: number;
}
const sv = rows.filter((r) => r.suite === "serve") as unknown as ServeRow[];
if (sv.length) {
  console.log("| clients | meanwhile | requests/s | p50 ms | p99 ms | errors |");
  console.log("|---|---|---|---|---|---|");
  for (const r of sv) {
    const bg = r.background === "none"
      ? "–"
      : `${r.background}${r.jobs ? ` (${r.jobs} done)` : ""}`;
    console.log(
      `| ${r.concurrency} | ${bg} | ${r.rps.toFixed(0)} | ${r.p50_ms.toFixed(2)} | ${
        r.p99_ms.toFixed(2)
      } | ${r.errors} |`,
    );
  }
  console.log();
}
