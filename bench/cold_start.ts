// Cold start (part of `deno task bench models`): from nothing to the first inference of a
// ~5 MB model (bench/model_zoo.ts coldStartModel), each run in a fresh process
// (bench/cold_start_child.ts), sqz and onnxruntime-web alternating. Reported as medians:
// `import` (the engine's JS loaded), `create` (Wasm compiled, model parsed, weights packed,
// memory planned), `first_run`, and cold = create + first_run, the figure with the target
// (< 50 ms): process start-up and JS loading are the runtime's, the same for any engine.
import { coldStartModel } from "./model_zoo.ts";
import { table } from "./timing.ts";

export interface ColdStartResult {
  suite: "models";
  model: string;
  impl: string;
  cold_start_ms: number;
  create_ms: number;
  first_run_ms: number;
  import_ms: number;
  model_bytes: number;
  runs: number;
}

interface ChildTimes {
  import: number;
  create: number;
  first_run: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function child(engine: string, path: string): Promise<ChildTimes> {
  const script = new URL("./cold_start_child.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, engine, path],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  if (!out.success) {
    throw new Error(`cold start (${engine}) failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return JSON.parse(text) as ChildTimes;
}

export async function benchColdStart(
  { json = false, runs = 7 } = {},
): Promise<ColdStartResult[]> {
  const m = coldStartModel();
  const dir = await Deno.makeTempDir({ prefix: "sqz-cold-" });
  const path = `${dir}/${m.name}.onnx`;
  await Deno.writeFile(path, m.bytes);
  const engines = ["sqz", "ort"];
  const times = new Map(engines.map((e) => [e, [] as ChildTimes[]]));
  try {
    // One untimed pair first: Deno's module cache is then warm for both, as after any install.
    for (const e of engines) await child(e, path);
    for (let i = 0; i < runs; i++) {
      for (const e of engines) times.get(e)!.push(await child(e, path));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const results = engines.map((e): ColdStartResult => {
    const ts = times.get(e)!;
    return {
      suite: "models",
      model: m.name,
      impl: e === "sqz" ? "sqz-cold" : "ort-cold",
      cold_start_ms: +median(ts.map((t) => t.create + t.first_run)).toFixed(2),
      create_ms: +median(ts.map((t) => t.create)).toFixed(2),
      first_run_ms: +median(ts.map((t) => t.first_run)).toFixed(2),
      import_ms: +median(ts.map((t) => t.import)).toFixed(2),
      model_bytes: m.bytes.length,
      runs,
    };
  });
  if (json) results.forEach((r) => console.log(JSON.stringify(r)));
  else {
    console.log(
      `\ncold start: ${m.name} (${
        (m.bytes.length / 1e6).toFixed(2)
      } MB), fresh process each, median of ${runs}; target < 50 ms`,
    );
    console.log(table(
      ["engine", "cold ms (create + first run)", "create ms", "first run ms", "JS import ms"],
      results.map((r) => [
        r.impl,
        r.cold_start_ms.toFixed(1),
        r.create_ms.toFixed(1),
        r.first_run_ms.toFixed(1),
        r.import_ms.toFixed(1),
      ]),
    ));
  }
  return results;
}

if (import.meta.main) await benchColdStart({ json: Deno.args.includes("--json") });
