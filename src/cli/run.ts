// `sqz run model.onnx [--input name=file.npy]... [--output-dir DIR] [--profile] [--top K]
// [--build auto|scalar|simd|relaxed] [--backend wasm|webgpu|auto]`: runs a model on .npy inputs (or on ONNX's dummy data)
// and writes its outputs as .npy files or prints a summary of each.
import { parseArgs } from "node:util";
import { join } from "node:path";
import {
  ArgumentError,
  arrayCtor,
  encodeNpy,
  type NodeProfile,
  Session,
  ShapeError,
  type Tensor,
  type TensorType,
  type ValueMetadata,
} from "../mod.ts";
import { readNpy, writeAtomic } from "./files.ts";

export const RUN_USAGE = "usage: sqz run model.onnx [--input name=file.npy]... " +
  "[--output-dir DIR] [--profile] [--top K] [--build auto|scalar|simd|relaxed] " +
  "[--backend wasm|webgpu|auto]";

const BUILDS = ["auto", "scalar", "simd", "relaxed"] as const;
const BACKENDS = ["wasm", "webgpu", "auto"] as const;

export interface RunArgs {
  model: string;
  inputs: string[];
  outputDir?: string;
  profile: boolean;
  top: number;
  build: (typeof BUILDS)[number];
  backend: (typeof BACKENDS)[number];
}

/** Parses the arguments after `run`. Bad ones → ArgumentError (a one-line message). */
export function parseRunArgs(args: string[]): RunArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        input: { type: "string", short: "i", multiple: true, default: [] },
        "output-dir": { type: "string", short: "o" },
        profile: { type: "boolean", default: false },
        top: { type: "string", default: "5" },
        build: { type: "string", default: "auto" },
        backend: { type: "string", default: "wasm" },
      },
    });
  } catch (e) {
    // node:util throws (multi-line) TypeErrors for unknown or valueless options.
    throw new ArgumentError(`${(e as Error).message.replace(/\s*\n\s*/g, " ")} (${RUN_USAGE})`);
  }
  const { positionals, values } = parsed;
  if (positionals.length !== 1) {
    throw new ArgumentError(
      positionals.length ? `one model expected, got ${positionals.join(" ")}` : RUN_USAGE,
    );
  }
  const top = Number(values.top);
  if (!Number.isSafeInteger(top) || top < 0) {
    throw new ArgumentError(`--top must be a non-negative integer, got '${values.top}'`);
  }
  const build = values.build as RunArgs["build"];
  if (!BUILDS.includes(build)) {
    throw new ArgumentError(`--build must be one of ${BUILDS.join(", ")}, got '${build}'`);
  }
  const backend = values.backend as RunArgs["backend"];
  if (!BACKENDS.includes(backend)) {
    throw new ArgumentError(`--backend must be one of ${BACKENDS.join(", ")}, got '${backend}'`);
  }
  return {
    backend,
    model: positionals[0],
    inputs: values.input,
    outputDir: values["output-dir"],
    profile: values.profile,
    top,
    build,
  };
}

export async function runCommand(args: string[]): Promise<void> {
  const opts = parseRunArgs(args);
  const session = await Session.create(opts.model, {
    build: opts.build,
    profile: opts.profile,
    backend: opts.backend,
  });
  try {
    const notes: string[] = [];
    const feeds = opts.inputs.length
      ? await loadFeeds(session, opts.inputs, notes)
      : dummyFeeds(session, notes);
    for (const n of notes) console.log(`note: ${n}`);
    let t0 = performance.now();
    let outputs = await session.run(feeds);
    let ms = performance.now() - t0;
    if (opts.profile) {
      // The first run plans the arena and warms the JIT up: time a second one.
      t0 = performance.now();
      outputs = await session.run(feeds);
      ms = performance.now() - t0;
    }
    console.log(`ran ${opts.model} in ${ms.toFixed(2)} ms${opts.profile ? " (second run)" : ""}`);
    if (opts.backend !== "wasm") {
      const i = session.info;
      console.log(
        `backend: ${i.backend}${i.adapter ? ` (${i.adapter})` : ""}, ` +
          `${i.nodes.webgpu} node(s) on webgpu, ${i.nodes.wasm} on wasm` +
          (i.backendNote ? `; ${i.backendNote}` : ""),
      );
    }
    if (opts.outputDir) await writeOutputs(opts.outputDir, outputs);
    for (const [name, t] of Object.entries(outputs)) {
      if (!opts.outputDir) console.log(summarize(name, t));
      if (opts.top > 0) {
        const top = topK(name, t, opts.top);
        if (top) console.log(top);
      }
    }
    if (opts.profile) console.log(formatProfile(session.profile, session.memory));
  } finally {
    await session.release();
  }
}

// ---------------------------------------------------------------------------
// Inputs

async function loadFeeds(
  session: Session,
  specs: string[],
  notes: string[],
): Promise<Record<string, Tensor>> {
  const names = session.inputNames;
  const list = () => names.map((n) => `'${n}'`).join(", ");
  const feeds: Record<string, Tensor> = {};
  for (const spec of specs) {
    let name: string | undefined, path: string;
    const eq = spec.indexOf("=");
    if (eq > 0 && names.includes(spec.slice(0, eq))) {
      name = spec.slice(0, eq);
      path = spec.slice(eq + 1);
    } else if (names.length === 1 && (eq <= 0 || await exists(spec))) {
      name = names[0];
      path = spec;
    } else if (eq > 0) {
      throw new ArgumentError(`'${spec.slice(0, eq)}' is not an input of the model (${list()})`);
    } else {
      throw new ArgumentError(
        `--input ${spec}: the model has ${names.length} inputs (${list()}): use name=file.npy`,
      );
    }
    if (feeds[name]) throw new ArgumentError(`input '${name}' is given twice`);
    const meta = session.inputMetadata[names.indexOf(name)];
    feeds[name] = castTo(meta, await readNpy(path), path, notes);
  }
  const missing = names.filter((n) => !feeds[n]);
  if (missing.length) {
    throw new ArgumentError(
      `no --input for ${missing.map((n) => `'${n}'`).join(", ")} (inputs: ${list()})`,
    );
  }
  return feeds;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

const INT_RANGE: Partial<Record<TensorType, [bigint, bigint]>> = {
  int8: [-128n, 127n],
  uint8: [0n, 255n],
  int16: [-32768n, 32767n],
  uint16: [0n, 65535n],
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
};

/**
 * Converts a file's tensor to the type the model declares where that is safe: float64 ↔ float32
 * (numpy's default float is float64) and integer → integer when every value fits. Each
 * conversion is noted; anything else is left for Session.run to reject.
 */
function castTo(meta: ValueMetadata, t: Tensor, path: string, notes: string[]): Tensor {
  if (t.type === meta.type) return t;
  const from = `${path} holds ${t.type}, input '${meta.name}' is ${meta.type}`;
  if (
    (t.type === "float64" && meta.type === "float32") ||
    (t.type === "float32" && meta.type === "float64")
  ) {
    notes.push(`${from}: cast to ${meta.type}`);
    const Ctor = meta.type === "float32" ? Float32Array : Float64Array;
    return { type: meta.type, dims: t.dims, data: Ctor.from(t.data as Float64Array) };
  }
  const range = INT_RANGE[meta.type], Out = arrayCtor(meta.type);
  if (range && Out && INT_RANGE[t.type]) {
    const out = new Out(t.data.length);
    const big = out instanceof BigInt64Array || out instanceof BigUint64Array;
    const src = t.data as unknown as ArrayLike<number | bigint>;
    const dst = out as unknown as { [i: number]: number | bigint };
    for (let i = 0; i < src.length; i++) {
      const v = BigInt(src[i]);
      if (v < range[0] || v > range[1]) {
        throw new ShapeError(`${from}, and ${v} at index ${i} does not fit`);
      }
      dst[i] = big ? v : Number(v);
    }
    notes.push(`${from}: cast to ${meta.type}`);
    return { type: meta.type, dims: t.dims, data: out };
  }
  throw new ShapeError(`${from}`);
}

/** ONNX's deterministic dummy data: arange(n) / n, symbolic dims taken as 1. */
function dummyFeeds(session: Session, notes: string[]): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {};
  for (const m of session.inputMetadata) {
    if (m.type !== "float32" && m.type !== "float64") {
      throw new ArgumentError(
        `input '${m.name}' is ${m.type}, so there is no dummy data for it: ` +
          `pass --input ${m.name}=file.npy`,
      );
    }
    const dims = m.dims.map((d) => (typeof d === "number" && d >= 0 ? d : 1));
    const n = dims.reduce((a, b) => a * b, 1);
    if (n > 1 << 28) {
      throw new ShapeError(`input '${m.name}' [${dims}] is too large for dummy data`);
    }
    const data = m.type === "float32" ? new Float32Array(n) : new Float64Array(n);
    for (let i = 0; i < n; i++) data[i] = i / n;
    feeds[m.name] = { type: m.type, dims, data };
    notes.push(
      `no --input: '${m.name}' is dummy data arange(n)/n, ${m.type} [${dims.join(", ")}]` +
        (m.dims.some((d) => typeof d !== "number") ? ` (symbolic dims as 1)` : ""),
    );
  }
  return feeds;
}

// ---------------------------------------------------------------------------
// Outputs

/** A file name for an output: ONNX names may hold '/', ':' and the like. */
function fileName(name: string, taken: Set<string>): string {
  const base = name.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^\.+/, "_") || "output";
  let f = `${base}.npy`;
  for (let i = 2; taken.has(f); i++) f = `${base}_${i}.npy`;
  taken.add(f);
  return f;
}

async function writeOutputs(dir: string, outputs: Record<string, Tensor>): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (e) {
    throw new ArgumentError(`cannot create '${dir}': ${(e as Error).message}`);
  }
  const taken = new Set<string>();
  for (const [name, t] of Object.entries(outputs)) {
    const path = join(dir, fileName(name, taken));
    await writeAtomic(path, encodeNpy(t));
    console.log(`wrote ${path}  ${t.type} [${t.dims.join(", ")}]`);
  }
}

/** Element i as a number (int64 beyond 2^53 loses precision, fine for a summary). */
function valueAt(t: Tensor, i: number): number {
  const v = t.data[i];
  return t.type === "float16" ? new Float16Array(Uint16Array.of(v as number).buffer)[0] : Number(v);
}

const fmt = (x: number) =>
  Number.isInteger(x)
    ? String(x)
    : Math.abs(x) >= 1e-4 && Math.abs(x) < 1e6
    ? String(Number(x.toPrecision(6)))
    : x.toExponential(4);

export function summarize(name: string, t: Tensor): string {
  const n = t.data.length;
  const head = `${name}  ${t.type} [${t.dims.join(", ")}]`;
  if (n === 0) return `${head}  (empty)`;
  let min = Infinity, max = -Infinity, sum = 0, nan = 0;
  for (let i = 0; i < n; i++) {
    const v = valueAt(t, i);
    if (Number.isNaN(v)) {
      nan++;
      continue;
    }
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  const shown = Math.min(n, 8);
  const first = Array.from({ length: shown }, (_, i) => fmt(valueAt(t, i))).join(", ");
  const stats = nan === n
    ? "all NaN"
    : `min ${fmt(min)}  max ${fmt(max)}  mean ${fmt(sum / (n - nan))}` +
      (nan ? `  (${nan} NaN)` : "");
  return `${head}  ${stats}\n  [${first}${n > shown ? ", …" : ""}]`;
}

/** Top-k classes of a classifier-looking output ([N, C] or [N, C, 1, 1] float, C ≥ 2). */
export function topK(name: string, t: Tensor, k: number): string | undefined {
  const d = t.dims;
  const classifier = (t.type === "float32" || t.type === "float64" || t.type === "float16") &&
    (d.length === 2 || (d.length === 4 && d[2] === 1 && d[3] === 1)) && d[1] >= 2 && d[0] >= 1;
  if (!classifier) return undefined;
  const [rows, c] = d;
  const shownRows = Math.min(rows, 4);
  const lines: string[] = [];
  for (let r = 0; r < shownRows; r++) {
    const x = Array.from({ length: c }, (_, j) => valueAt(t, r * c + j));
    if (x.some((v) => !Number.isFinite(v))) {
      lines.push(`top-${k} of ${name}${rows > 1 ? `[${r}]` : ""}: non-finite scores`);
      continue;
    }
    let sum = 0, inUnit = true;
    for (const v of x) {
      sum += v;
      if (v < 0 || v > 1) inUnit = false;
    }
    const isProb = inUnit && Math.abs(sum - 1) < 1e-3;
    let p = x;
    if (!isProb) {
      const m = Math.max(...x);
      const e = x.map((v) => Math.exp(v - m));
      const z = e.reduce((a, b) => a + b, 0);
      p = e.map((v) => v / z);
    }
    const order = p.map((_, j) => j).sort((a, b) => p[b] - p[a] || a - b).slice(0, k);
    lines.push(
      `top-${order.length} of ${name}${rows > 1 ? `[${r}]` : ""} ` +
        `(${isProb ? "already probabilities" : "softmax of the scores"}):`,
    );
    for (const j of order) {
      lines.push(
        `  class ${String(j).padStart(5)}  ${p[j].toFixed(4)}` +
          (isProb ? "" : `  (score ${fmt(x[j])})`),
      );
    }
  }
  if (rows > shownRows) lines.push(`  … ${rows - shownRows} more rows`);
  return lines.join("\n");
}

// ---------------------------------------------------------------------------
// Profile

const si = (n: number) =>
  n >= 1e9
    ? `${(n / 1e9).toFixed(2)} G`
    : n >= 1e6
    ? `${(n / 1e6).toFixed(2)} M`
    : n >= 1e3
    ? `${(n / 1e3).toFixed(1)} k`
    : `${n}`;
const bytes = (n: number) => `${si(n)}B`;
const gmacs = (macs: number | undefined, ms: number) =>
  macs && ms > 0 ? (macs / ms / 1e6).toFixed(2) : "";

const MAX_ROWS = 50;

function table(header: string[], rows: string[][], right: boolean[]): string[] {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r.map((c, i) => (right[i] ? c.padStart(w[i]) : c.padEnd(w[i]))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)];
}

export function formatProfile(
  profile: readonly NodeProfile[],
  memory: { arenaBytes: number; liveLowerBound: number; weightBytes: number },
): string {
  const total = profile.reduce((a, p) => a + p.ms, 0);
  const sorted = [...profile].sort((a, b) => b.ms - a.ms);
  const shown = sorted.slice(0, MAX_ROWS);
  const right = [false, false, false, true, true, true, true];
  const lines = [`profile: ${profile.length} nodes, ${total.toFixed(3)} ms`];
  lines.push(
    ...table(
      ["node", "op", "impl", "ms", "%", "MACs", "GMAC/s"],
      shown.map((p) => [
        p.name,
        p.op,
        p.impl,
        p.ms.toFixed(3),
        total ? ((100 * p.ms) / total).toFixed(1) : "0",
        p.macs ? si(p.macs) : "",
        gmacs(p.macs, p.ms),
      ]),
      right,
    ).map((l) => `  ${l}`),
  );
  if (sorted.length > shown.length) {
    const rest = sorted.slice(MAX_ROWS).reduce((a, p) => a + p.ms, 0);
    lines.push(`  … ${sorted.length - shown.length} more nodes, ${rest.toFixed(3)} ms`);
  }
  const byOp = new Map<string, { n: number; ms: number; macs: number }>();
  for (const p of profile) {
    const o = byOp.get(p.op) ?? { n: 0, ms: 0, macs: 0 };
    o.n++;
    o.ms += p.ms;
    o.macs += p.macs ?? 0;
    byOp.set(p.op, o);
  }
  lines.push("per op type:");
  lines.push(
    ...table(
      ["op", "nodes", "ms", "%", "MACs", "GMAC/s"],
      [...byOp].sort((a, b) => b[1].ms - a[1].ms).map(([op, o]) => [
        op,
        String(o.n),
        o.ms.toFixed(3),
        total ? ((100 * o.ms) / total).toFixed(1) : "0",
        o.macs ? si(o.macs) : "",
        gmacs(o.macs, o.ms),
      ]),
      [false, true, true, true, true, true],
    ).map((l) => `  ${l}`),
  );
  lines.push(
    `memory: arena ${bytes(memory.arenaBytes)} (live lower bound ${
      bytes(memory.liveLowerBound)
    }), weights ${bytes(memory.weightBytes)}`,
  );
  return lines.join("\n");
}
