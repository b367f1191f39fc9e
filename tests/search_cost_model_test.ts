// The search's latency cost model against measurements on small models (a generous bound:
// timings on a shared machine are noisy; bench/search_cost_model.ts is the accuracy benchmark).
import assert from "node:assert/strict";
import { buildCostModel, parseChoice } from "../src/search/cost_model.ts";
import { buildSpace } from "../src/search/space.ts";
import { benchOne } from "../bench/search_cost_model.ts";
import { zooInput, zooModel } from "../bench/model_zoo.ts";
import type { Tensor } from "../src/mod.ts";

Deno.test("parseChoice maps choices to kernel precisions", () => {
  assert.equal(parseChoice("float").precision, "f32");
  assert.equal(parseChoice("int4").precision, "f32");
  assert.equal(parseChoice("prune:0.5+int8").precision, "int8");
  assert.equal(parseChoice("int8-dynamic").precision, "int8dyn");
  assert.equal(parseChoice("binary").precision, "binary");
  assert.equal(parseChoice("structured:0.5").structured, 0.5);
  assert.equal(parseChoice("lowrank:0.9").energy, 0.9);
});

Deno.test("cost model: calibration is cached on disk and predictions are finite", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const m = zooModel("mlp");
    const space = buildSpace(m.bytes, { calibration: true });
    const a = await buildCostModel(m.bytes, space, { cacheDir: dir });
    assert(a.microBenchmarks > 0);
    const files = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert(files.some((f) => f.startsWith("cost_model_") && f.endsWith(".json")), `${files}`);
    const layers = Object.fromEntries(space.layers.map((l) => [l.name, "int8"]));
    const p = a.predict({ layers });
    assert(Number.isFinite(p) && p > 0);
    // Structured pruning and low-rank predict fewer MACs, so no more time than float + noise.
    const lr = Object.fromEntries(
      space.layers.map((
        l,
      ) => [l.name, l.choices.includes("lowrank:0.9") ? "lowrank:0.9" : "float"]),
    );
    assert(Number.isFinite(a.predict({ layers: lr })));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// How close predictions come to measurements is a benchmark (bench/search_cost_model.ts, target
// ±25%), not a unit test: here only that the comparison runs and gives sane numbers.
for (const name of ["mlp", "lenet"]) {
  Deno.test(`cost model: predicted and measured latencies are comparable numbers: ${name}`, async () => {
    const m = zooModel(name);
    const feed = (seed: number) => ({
      [m.inputName]: {
        type: "float32",
        dims: [1, ...m.itemDims],
        data: zooInput(m, 1, seed),
      } as Tensor,
    });
    const { rows } = await benchOne(
      { name, bytes: m.bytes, feeds: feed(7), calibration: [1, 2, 3].map(feed), heavy: false },
      { quick: true, log: () => {} },
    );
    assert(rows.length >= 2, JSON.stringify(rows));
    for (const r of rows) {
      assert(r.predicted_ms > 0 && Number.isFinite(r.predicted_ms), JSON.stringify(r));
      assert(r.measured_ms > 0 && Number.isFinite(r.measured_ms), JSON.stringify(r));
    }
  });
}
