// Automated compression search (src/search/): strategies, determinism, parallel workers,
// resume, the Pareto front and hypervolume, typed errors and the explanation.
import assert from "node:assert/strict";
import { ArgumentError, type Tensor } from "../src/mod.ts";
import { mnistSplit } from "../src/eval/mnist.ts";
import { search } from "../src/search/search.ts";
import {
  dominates,
  hypervolume,
  nonDominatedSort,
  objectiveValue,
  pickBest,
} from "../src/search/pareto.ts";
import { buildSpace, parseChoice, recipeHash, toRecipe } from "../src/search/space.ts";
import { FileStateStore } from "../src/search/state.ts";
import type { SearchOptions, Trial } from "../src/search/types.ts";

const MLP = new URL("../models/mnist_mlp.onnx", import.meta.url).pathname;
const CNN = new URL("../models/mnist_cnn.onnx", import.meta.url).pathname;

function slice(x: Tensor, from: number, to: number): Tensor {
  const per = x.data.length / x.dims[0];
  return {
    type: "float32",
    dims: [to - from, ...x.dims.slice(1)],
    data: (x.data as Float32Array).slice(from * per, to * per),
  };
}

const split = mnistSplit(0);
async function data(n = 300) {
  const { train, test } = await split;
  return {
    calibration: [0, 1].map((i) => ({ input: slice(train.x, i * 64, i * 64 + 64) })),
    validation: { inputs: { input: slice(test.x, 0, n) }, labels: test.y.slice(0, n) },
  };
}

const mlp = Deno.readFile(MLP);
const key = (ts: Trial[]) => ts.map((t) => t.hash);
const fast = { latencyRuns: 0, objectives: ["size", "macs"] as SearchOptions["objectives"] };

function checkResult(r: Awaited<ReturnType<typeof search>>, trials: number) {
  const counted = r.trials.filter((t) => t.phase !== "sensitivity").length;
  assert.ok(counted <= trials && counted > 0, `trials ${counted}`);
  assert.deepEqual(r.trials.map((t) => t.id), r.trials.map((_, i) => i));
  assert.equal(new Set(key(r.trials)).size, r.trials.length, "no trial twice");
  const pts = r.pareto.map((t) => r.objectives.map((o) => objectiveValue(t.metrics, o)));
  for (const p of pts) for (const q of pts) assert.ok(!dominates(q, p));
  for (const t of r.pareto) assert.ok(t.feasible && !t.error && !t.earlyRejected);
  if (r.best) {
    assert.ok(r.best.trial.feasible);
    assert.equal(r.best.trial.id, r.pareto[0].id);
    assert.ok(r.best.model.length > 0);
  } else assert.equal(r.pareto.length, 0);
  assert.ok(r.explanation.length >= 2);
}

for (const strategy of ["random", "grid", "tpe", "evolution", "sensitivity"] as const) {
  Deno.test(`search ${strategy}: consistent and deterministic for a seed`, async () => {
    const opts: SearchOptions = {
      data: await data(100),
      budget: { metric: "accuracy", maxDrop: 0.01 },
      strategy,
      trials: 6,
      seed: 3,
      ...fast,
      space: strategy === "grid"
        ? { layers: { fc1: ["float", "int8", "int4"], fc2: ["float", "int8"], fc3: ["float"] } }
        : { methods: ["int8", "int4", "prune", "cluster"] },
    };
    const a = await search(await mlp, opts);
    checkResult(a, 6);
    const b = await search(await mlp, opts);
    assert.deepEqual(key(a.trials), key(b.trials));
    assert.deepEqual(key(a.pareto), key(b.pareto));
    console.log(
      strategy,
      a.trials.length,
      "trials, hv",
      a.hypervolume.toFixed(3),
      a.explanation[2],
    );
  });
}

Deno.test("search: concurrency 2 gives the same trials as concurrency 1", async () => {
  const opts: SearchOptions = {
    data: await data(100),
    budget: { metric: "agreement", maxDrop: 0.02 },
    strategy: "random",
    trials: 4,
    seed: 1,
    ...fast,
    space: { methods: ["int8", "int4", "prune"] },
  };
  const a = await search(await mlp, { ...opts, concurrency: 1 });
  const b = await search(await mlp, { ...opts, concurrency: 2 });
  assert.deepEqual(key(a.trials), key(b.trials));
  assert.deepEqual(
    a.trials.map((t) => [t.metrics.agreement, t.metrics.size, t.feasible]),
    b.trials.map((t) => [t.metrics.agreement, t.metrics.size, t.feasible]),
  );
});

Deno.test("search sensitivity: MNIST MLP smaller than uniform int8 within 0.5 points", async () => {
  const r = await search(await mlp, {
    data: await data(300),
    budget: { metric: "accuracy", maxDrop: 0.005 },
    strategy: "sensitivity",
    trials: 8,
    latencyRuns: 5,
    objectives: ["size", "latency"],
  });
  console.log(r.explanation.join("\n"));
  assert.ok(r.best, "a feasible model");
  assert.ok(r.sensitivity && r.sensitivity.length > 0);
  const b = r.best!.trial, i8 = r.baseline.int8;
  assert.ok(b.metrics.accuracy! >= r.reference.metric - 0.005);
  assert.ok(b.metrics.size < i8.metrics.size, `${b.metrics.size} vs int8 ${i8.metrics.size}`);
});

Deno.test("search: a resumed search ends with the same Pareto front", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const opts: SearchOptions = {
      data: await data(100),
      budget: { metric: "accuracy", maxDrop: 0.01 },
      strategy: "tpe",
      trials: 10,
      seed: 5,
      ...fast,
      space: { methods: ["int8", "int4", "prune"] },
    };
    const full = await search(await mlp, opts);
    const path = `${dir}/state.jsonl`;
    const ctl = new AbortController();
    await assert.rejects(
      search(await mlp, {
        ...opts,
        state: new FileStateStore(path),
        signal: ctl.signal,
        onTrial: (_t, done) => done === 4 && ctl.abort(),
      }),
      (e: Error) => e.name === "AbortError",
    );
    // A torn last line (a kill mid-write) is ignored.
    await Deno.writeTextFile(path, '{"id": 99, "hash": "tor', { append: true });
    assert.equal((await new FileStateStore(path).load()).length, 4);
    let cached = 0;
    const resumed = await search(await mlp, {
      ...opts,
      state: new FileStateStore(path),
      onTrial: (t) => full.trials[t.id].hash === t.hash && t.id < 4 && cached++,
    });
    assert.equal(cached, 4);
    assert.deepEqual(key(resumed.trials), key(full.trials));
    assert.deepEqual(key(resumed.pareto), key(full.pareto));
    assert.equal((await new FileStateStore(path).load()).length, 10);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("search: typed errors for bad options", async () => {
  const d = await data(50);
  const m = await mlp;
  const base: SearchOptions = { data: d, budget: { metric: "accuracy", maxDrop: 0.01 } };
  const bad: [string, SearchOptions][] = [
    ["maxDrop > 1", { ...base, budget: { metric: "accuracy", maxDrop: 1.5 } }],
    ["maxDrop < 0", { ...base, budget: { metric: "agreement", maxDrop: -0.1 } }],
    ["kl < 0", { ...base, budget: { metric: "kl", maxDrop: -1 } }],
    ["no validation", { ...base, data: {} as SearchOptions["data"] }],
    ["no labels", { ...base, data: { validation: { inputs: d.validation.inputs } } }],
    ["objective", { ...base, objectives: ["speed" as "size"] }],
    ["strategy", { ...base, strategy: "bayes" as "tpe" }],
    ["trials 0", { ...base, trials: 0 }],
    ["trials 1.5", { ...base, trials: 1.5 }],
    ["concurrency 0", { ...base, concurrency: 0 }],
    ["unknown layer", { ...base, space: { layers: { conv9: ["float"] } } }],
    ["bad choice", { ...base, space: { layers: { fc1: ["int3"] } } }],
    ["grid too large", {
      ...base,
      strategy: "grid",
      space: { layers: { Gemm: Array.from({ length: 22 }, (_, i) => `prune:${0.3 + i / 40}`) } },
    }],
  ];
  for (const [what, o] of bad) {
    await assert.rejects(search(m, o), ArgumentError, what);
  }
});

Deno.test("search: an impossible budget is explained", async () => {
  const r = await search(await mlp, {
    data: await data(200),
    budget: { metric: "accuracy", maxDrop: 0 },
    strategy: "sensitivity",
    trials: 3,
    ...fast,
    space: {
      layers: { fc1: ["binary", "prune:0.95"], fc2: ["binary", "prune:0.95"], fc3: ["prune:0.95"] },
    },
  });
  console.log(r.explanation.join("\n"));
  assert.equal(r.best, null);
  const text = r.explanation.join("\n");
  assert.match(text, /no trial met the budget/);
  assert.match(text, /fc1/);
  assert.match(text, /closest trial #\d+/);
});

Deno.test("space: choices, recipes and hashes", async () => {
  const cnn = await Deno.readFile(CNN);
  const s = buildSpace(cnn, { calibration: false });
  assert.deepEqual(s.layers.map((l) => l.name), ["conv1", "conv2", "fc1", "fc2"]);
  assert.ok(
    !s.layers.some((l) => l.choices.includes("int8")),
    "no static int8 without calibration",
  );
  assert.ok(!s.layers[0].choices.includes("binary"), "no binary first layer");
  assert.ok(s.layers[1].choices.includes("ternary"));
  assert.deepEqual(
    s.layers[3].choices,
    ["float", "int8-dynamic", "int8-dynamic:w7"],
    "tiny layer",
  );
  // With calibration data: static int8, its 7-bit twin, and W4A8 on the large layers.
  const sc = buildSpace(cnn, { calibration: true });
  assert.ok(sc.layers[2].choices.includes("int8:w7") && sc.layers[2].choices.includes("int8:w4"));
  assert.ok(!sc.layers[3].choices.includes("int8:w4"), "tiny layers keep 8-bit storage");
  assert.deepEqual(parseChoice("int8:w4"), { method: "int8", weightBits: 4 });
  assert.throws(() => parseChoice("int8:w9"), ArgumentError);
  assert.throws(() => parseChoice("int8:w4:x"), ArgumentError);
  const r = toRecipe({
    layers: { conv1: "prune:0.5+int8", fc1: "int4", fc2: "float" },
    int4Block: 64,
  });
  assert.equal(r.layers.conv1.sparsity, 0.5);
  assert.equal(r.layers.conv1.method, "int8");
  assert.equal(r.int4.blockSize, 64);
  // Genes that change nothing do not change the hash.
  assert.equal(
    recipeHash(toRecipe({ layers: { fc2: "int8" }, int4Block: 128 })),
    recipeHash(toRecipe({ layers: { fc2: "int8" } })),
  );
  assert.throws(() => parseChoice("binary+prune:0.5"), ArgumentError);
  assert.throws(() => parseChoice("prune:2"), ArgumentError);
  assert.throws(() => toRecipe({ layers: { fc1: "int9" } }), ArgumentError);
});

Deno.test("pickBest: the smallest Pareto trial no worse than uniform int8, else the smallest", () => {
  const t = (
    id: number,
    size: number,
    latencyMs: number,
  ) => ({ id, metrics: { size, latencyMs }, feasible: true } as unknown as Trial);
  const int8 = t(0, 100, 1.0);
  const front = [t(1, 40, 2.0), t(2, 60, 0.9), t(3, 90, 0.5), t(4, 120, 0.4)];
  assert.deepEqual(pickBest(front, ["size", "latency"], int8), {
    trial: front[1],
    againstInt8: true,
  });
  const slow = [t(1, 40, 2.0), t(2, 60, 1.5)];
  assert.deepEqual(pickBest(slow, ["size", "latency"], int8), {
    trial: slow[0],
    againstInt8: false,
  });
  assert.equal(pickBest(front, ["size"], int8)!.trial, front[0]);
  assert.equal(pickBest([], ["size", "latency"], int8), undefined);
});

Deno.test("pareto: non-dominated sort and exact hypervolume", () => {
  const pts = [[1, 4], [2, 2], [4, 1], [3, 3], [5, 5]];
  assert.deepEqual(nonDominatedSort(pts), [[0, 1, 2], [3], [4]]);
  // 2-D: ref (5, 5): union of [1,5]×[4,5], [2,5]×[2,5], [4,5]×[1,5].
  assert.equal(hypervolume([[1, 4], [2, 2], [4, 1]], [5, 5]), 4 + 6 + 1);
  assert.equal(hypervolume([[6, 1]], [5, 5]), 0);
  assert.equal(hypervolume([[0.5]], [1]), 0.5);
  // 3-D: one box, and two overlapping boxes (inclusion–exclusion).
  assert.equal(hypervolume([[0, 0, 0]], [1, 2, 3]), 6);
  const v = hypervolume([[0, 0, 1], [1, 1, 0]], [2, 2, 2]);
  assert.equal(v, 4 * 1 + 1 * 2 - 1 * 1);
});
