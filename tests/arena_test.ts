import assert from "node:assert/strict";
import { type Lifetime, planArena } from "../src/runtime/arena.ts";
import { rng } from "./util.ts";

function checkNoOverlap(ts: Lifetime[], offsets: number[]): void {
  for (let i = 0; i < ts.length; i++) {
    for (let j = i + 1; j < ts.length; j++) {
      const timeOverlap = ts[i].first <= ts[j].last && ts[j].first <= ts[i].last;
      const memOverlap = offsets[i] < offsets[j] + ts[j].size &&
        offsets[j] < offsets[i] + ts[i].size;
      assert.ok(!(timeOverlap && memOverlap), `tensors ${i} and ${j} collide`);
    }
  }
}

Deno.test("arena plan: live tensors never share bytes (random lifetimes)", () => {
  const r = rng(12);
  for (let trial = 0; trial < 50; trial++) {
    const ts: Lifetime[] = Array.from({ length: 40 }, () => {
      const first = Math.floor(r() * 30);
      return { size: 1 + Math.floor(r() * 100_000), first, last: first + Math.floor(r() * 8) };
    });
    const plan = planArena(ts);
    checkNoOverlap(ts, plan.offsets);
    assert.ok(plan.size >= plan.lowerBound);
  }
});

Deno.test("arena plan: a CNN-like chain with skip connections stays within 1.3x of the bound", () => {
  // A ResNet-ish schedule: a chain of activations, each read by the next step, every third
  // also by a residual add three steps later; sizes halve with stride-2 stages.
  const ts: Lifetime[] = [];
  let size = 56 * 56 * 256 * 4;
  for (let s = 0; s < 50; s++) {
    if (s % 12 === 11) size /= 2;
    ts.push({ size, first: s, last: s % 3 === 0 ? s + 3 : s + 1 });
  }
  const plan = planArena(ts);
  checkNoOverlap(ts, plan.offsets);
  assert.ok(plan.size <= 1.3 * plan.lowerBound, `${plan.size} vs bound ${plan.lowerBound}`);
  // Far less than giving every tensor its own buffer.
  assert.ok(plan.size < ts.reduce((a, t) => a + t.size, 0) / 5);
});

Deno.test("arena plan for light ResNet-50: within 1.3x of the largest live set", async () => {
  const { conformanceDir } = await import("./conformance.ts");
  const dir = conformanceDir();
  if (!dir) {
    console.log("SKIPPED: ONNX conformance data not found");
    return;
  }
  const { importModel } = await import("../src/onnx/import.ts");
  const { inferShapes } = await import("../src/graph/shape_inference.ts");
  const { foldConstants } = await import("../src/graph/fold.ts");
  const { simplify } = await import("../src/graph/passes.ts");
  const { activationLifetimes } = await import("../src/runtime/liveness.ts");
  const g = importModel(Deno.readFileSync(`${dir}/onnx-models/light_resnet50.onnx`));
  inferShapes(g);
  foldConstants(g);
  simplify(g);
  inferShapes(g);
  const { lifetimes } = activationLifetimes(g);
  const plan = planArena(lifetimes);
  checkNoOverlap(lifetimes, plan.offsets);
  const total = lifetimes.reduce((a, t) => a + t.size, 0);
  console.log(
    `ResNet-50 activations: arena ${(plan.size / 2 ** 20).toFixed(1)} MiB, largest live set ` +
      `${(plan.lowerBound / 2 ** 20).toFixed(1)} MiB, unplanned ${
        (total / 2 ** 20).toFixed(1)
      } MiB`,
  );
  assert.ok(plan.size <= 1.3 * plan.lowerBound);
});
