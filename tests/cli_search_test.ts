// `sqz search` end to end as a subprocess on the zoo MLP: .npy validation data in, the best
// model, the HTML report and the state file out; a live line per trial; --state + --resume
// continue a search without redoing its trials; an existing state file is never clobbered; bad
// arguments are one-line errors with exit 1 and leave nothing behind; Ctrl-C keeps the
// finished trials.
import assert from "node:assert/strict";
import { encodeNpy, Session } from "../src/mod.ts";
import { zooInput, zooModel } from "../bench/model_zoo.ts";
import { sqz, sqzCommand } from "./cli.ts";

/** The MLP, 48 validation samples labelled with the float model's own predictions. */
async function setup(): Promise<string> {
  const dir = await Deno.makeTempDir();
  const m = zooModel("mlp");
  await Deno.writeFile(`${dir}/mlp.onnx`, m.bytes);
  const n = 48;
  const x = { type: "float32" as const, dims: [n, ...m.itemDims], data: zooInput(m, n, 7) };
  await Deno.writeFile(`${dir}/x.npy`, encodeNpy(x));
  await Deno.writeFile(
    `${dir}/c.npy`,
    encodeNpy({ type: "float32", dims: [16, ...m.itemDims], data: zooInput(m, 16, 8) }),
  );
  const s = await Session.create(m.bytes);
  const out = (await s.run({ [m.inputName]: x }))[m.outputName];
  await s.release();
  const labels = new BigInt64Array(n);
  const k = out.dims[1];
  const p = out.data as Float32Array;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (p[i * k + j] > p[i * k + best]) best = j;
    labels[i] = BigInt(best);
  }
  await Deno.writeFile(`${dir}/y.npy`, encodeNpy({ type: "int64", dims: [n], data: labels }));
  return dir;
}

function names(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

const base = (dir: string) => [
  "search",
  `${dir}/mlp.onnx`,
  "--val",
  `${dir}/x.npy`,
  `${dir}/y.npy`,
  "--calib",
  `${dir}/c.npy`,
  "--max-drop",
  "2",
  "--objectives",
  "size,latency",
  "--strategy",
  "random",
  "--seed",
  "0",
  "--methods",
  "int8,int4,prune",
  "--latency-runs",
  "3",
];

Deno.test("sqz search: bad arguments are one-line errors with exit 1, nothing left behind", async () => {
  const dir = await setup();
  try {
    await Deno.writeTextFile(`${dir}/old.jsonl`, '{"keep":"me"}\n');
    const before = names(dir);
    const b = base(dir);
    const o = ["-o", `${dir}/best.onnx`];
    const cases: [string[], RegExp][] = [
      [["search", `${dir}/mlp.onnx`, "--max-drop", "0.5", ...o], /--val/],
      [[...b], /-o best\.onnx is required/],
      [
        [...b.filter((a, i) => a !== "--max-drop" && b[i - 1] !== "--max-drop"), ...o],
        /--max-drop/,
      ],
      [[...b, "--max-drop", "150", ...o], /percentage points/],
      [[...b, "--max-drop", "half", ...o], /--max-drop/],
      [[...b, "--objectives", "size,beauty", ...o], /--objectives: unknown 'beauty'/],
      [[...b, "--strategy", "magic", ...o], /--strategy: unknown 'magic'/],
      [[...b, "--trials", "0", ...o], /--trials/],
      [[...b, "--methods", "int3", ...o], /--methods: unknown 'int3'/],
      [[...b, "--metric", "vibes", ...o], /--metric/],
      [[
        "search",
        `${dir}/mlp.onnx`,
        "--val",
        `${dir}/x.npy`,
        "--metric",
        "accuracy",
        "--max-drop",
        "1",
        ...o,
      ], /needs labels/],
      [[...b, "--resume", ...o], /--resume needs --state/],
      [[...b, "--state", `${dir}/none.jsonl`, "--resume", ...o], /does not exist/],
      [[...b, "--state", `${dir}/old.jsonl`, ...o], /exists: pass --resume/],
      [[...b.map((a) => a.endsWith("mlp.onnx") ? `${dir}/nope.onnx` : a), ...o], /nope\.onnx/],
      [[...b.map((a) => a.endsWith("x.npy") ? `${dir}/nope.npy` : a), ...o], /nope\.npy/],
      [[...b, "--bogus", ...o], /bogus/],
    ];
    for (const [args, message] of cases) {
      const r = await sqz(args);
      assert.equal(r.code, 1, `${args.join(" ")}: ${r.err}`);
      const first = r.err.trim().split("\n")[0];
      assert.match(first, /^sqz: /, r.err);
      assert.match(r.err, message, `${args.slice(-4).join(" ")}: ${r.err}`);
      assert.ok(!r.err.includes("    at "), `a stack trace: ${r.err}`);
    }
    // Nothing written, and the existing state file untouched.
    assert.deepEqual(names(dir), before);
    assert.equal(await Deno.readTextFile(`${dir}/old.jsonl`), '{"keep":"me"}\n');
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sqz search: trials, best model, report, state; --resume continues", async () => {
  const dir = await setup();
  try {
    const args = [
      ...base(dir),
      "--trials",
      "2",
      "-o",
      `${dir}/best.onnx`,
      "--html",
      `${dir}/search.html`,
      "--state",
      `${dir}/s.jsonl`,
    ];
    const r = await sqz(args);
    assert.ok(r.code === 0 || r.code === 1, r.err);
    // A live line per trial (stderr is not a terminal: plain lines, no bar).
    const lines = r.err.split("\n").filter((l) => /^trial\s+\d+\/\d+ #/.test(l));
    assert.ok(lines.length >= 2, r.err);
    assert.ok(lines.every((l) => /[✓✗]/.test(l) && /\d+ ms$/.test(l)), lines.join("\n"));
    assert.ok(!r.err.includes("\x1b["), "no terminal escapes off a terminal");
    const html = await Deno.readTextFile(`${dir}/search.html`);
    assert.ok(html.startsWith("<!doctype html>") && html.includes("<svg"));
    assert.ok(!html.includes("<script"));
    const state1 = (await Deno.readTextFile(`${dir}/s.jsonl`)).split("\n").filter(Boolean);
    assert.ok(state1.length >= 2, `${state1.length} trials kept`);
    for (const l of state1) assert.equal(typeof JSON.parse(l).hash, "string");
    if (r.code === 0) {
      assert.match(r.out, /Pareto front/);
      assert.match(r.out, /best #\d+ vs uniform int8: /);
      const best = await Deno.readFile(`${dir}/best.onnx`);
      const s = await Session.create(best);
      await s.release();
    } else {
      assert.match(r.err, /sqz: no model met the budget/);
      assert.ok(!names(dir).includes("best.onnx"));
    }
    assert.ok(!names(dir).some((n) => n.includes(".tmp-")));

    // The same state without --resume: refused, the file unchanged.
    const again = await sqz(args);
    assert.equal(again.code, 1);
    assert.match(again.err, /exists: pass --resume/);
    assert.deepEqual(
      (await Deno.readTextFile(`${dir}/s.jsonl`)).split("\n").filter(Boolean),
      state1,
    );

    // --resume with more trials: the kept trials stay first, new ones are appended.
    const resumed = await sqz([
      ...args.map((a, i) => args[i - 1] === "--trials" ? "4" : a),
      "--resume",
      "--json",
    ]);
    assert.ok(resumed.code === 0 || resumed.code === 1, resumed.err);
    const state2 = (await Deno.readTextFile(`${dir}/s.jsonl`)).split("\n").filter(Boolean);
    assert.deepEqual(state2.slice(0, state1.length), state1);
    assert.ok(state2.length > state1.length, `${state1.length} → ${state2.length}`);
    const json = JSON.parse(resumed.out);
    assert.ok(Array.isArray(json.trials) && json.trials.length >= 4, resumed.out.slice(0, 400));
    assert.ok(!("model" in (json.best ?? {})));
    // Fewer trials run the second time than the search holds: the kept ones were not redone.
    const run2 = resumed.err.split("\n").filter((l) => /^trial\s+\d+\/\d+ #/.test(l)).length;
    const ids = new Set(json.trials.map((t: { id: number }) => t.id));
    assert.ok(ids.size === json.trials.length);
    assert.ok(run2 <= json.trials.length, `${run2} lines for ${json.trials.length} trials`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sqz search: Ctrl-C aborts, the state file keeps the finished trials", async () => {
  const dir = await setup();
  try {
    const child = sqzCommand([
      ...base(dir),
      "--trials",
      "30",
      "-o",
      `${dir}/best.onnx`,
      "--state",
      `${dir}/s.jsonl`,
    ]).spawn();
    // Wait for the first finished trial, then interrupt.
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let err = "";
    while (!/^trial\s+\d+\/\d+ #/m.test(err)) {
      const { value, done } = await reader.read();
      if (done) break;
      err += value;
    }
    child.kill("SIGINT");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      err += value;
    }
    await child.stdout.cancel();
    const { code } = await child.status;
    assert.equal(code, 130, err);
    assert.match(err, /sqz: interrupted after \d+ trials?: the finished ones are kept in/);
    const kept = (await Deno.readTextFile(`${dir}/s.jsonl`)).split("\n").filter(Boolean);
    assert.ok(kept.length >= 1);
    for (const l of kept) JSON.parse(l);
    assert.ok(!names(dir).includes("best.onnx"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
