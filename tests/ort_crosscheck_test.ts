// Whole-model cross-check against onnxruntime-web: every zoo model (bench/model_zoo.ts) runs
// in sqz with every kernel build this runtime has and in onnxruntime-web (wasm EP, 1 thread)
// on the same seeded inputs, at batch 1 and batch 3 (the batch dim is symbolic).
//
// Tolerances:
//   float models: max|sqz − ort| ≤ 1e-4·max|ort| + 1e-5 (summation order differs: sqz packs
//     and blocks differently from MLAS, and folds BatchNormalization into the conv weights).
//   QDQ models: max|sqz − ort| ≤ one step of the output's quantization (its scale). The two
//     engines requantize intermediate activations with their own rounding of the fp32
//     multiplier, so a value on a rounding boundary may land one step apart; mlp_qdq ends in
//     a float Softmax, whose outputs move by at most half the logits' difference.
//   QDQ models must also run every Conv/Gemm as an integer op (QLinearConv / QGemm).
//   argmax: must agree in every row, unless the row's top-2 margin in the ORT output is within
//     twice the observed max|diff| (a near-tie that an in-tolerance difference may flip).
import assert from "node:assert/strict";
import { availableBuilds, Session } from "../src/mod.ts";
import { ZOO_NAMES, zooInput, type ZooModel, zooModel } from "../bench/model_zoo.ts";
import { type Feed, ortRunner } from "../bench/models.ts";

const BATCHES = [1, 3];

// ORT's outputs per model and batch, computed once and shared by every build's test.
const refs = new Map<string, Promise<Feed[]>>();

function reference(m: ZooModel): Promise<Feed[]> {
  let p = refs.get(m.name);
  if (!p) {
    p = (async () => {
      const ortr = await ortRunner(m.bytes);
      try {
        const out: Feed[] = [];
        for (const b of BATCHES) {
          const x = { dims: [b, ...m.itemDims], data: zooInput(m, b, 1000 + b) };
          out.push((await ortr.run({ [m.inputName]: x }))[m.outputName]);
        }
        return out;
      } finally {
        await ortr.release();
      }
    })();
    refs.set(m.name, p);
  }
  return p;
}

function argmaxRows(data: ArrayLike<number>, rows: number): { arg: number; margin: number }[] {
  const cols = data.length / rows;
  return Array.from({ length: rows }, (_, r) => {
    let a = 0, top = -Infinity, second = -Infinity;
    for (let c = 0; c < cols; c++) {
      const v = data[r * cols + c];
      if (v > top) [second, top, a] = [top, v, c];
      else if (v > second) second = v;
    }
    return { arg: a, margin: top - second };
  });
}

for (const name of ZOO_NAMES) {
  for (const build of availableBuilds()) {
    Deno.test(`ort cross-check: ${name} (${build})`, async () => {
      const m = zooModel(name);
      const want = await reference(m);
      const session = await Session.create(m.bytes, { build });
      try {
        if (m.outputStep !== undefined) {
          // The QDQ islands must run on the integer kernels, not as dequantized float ops
          // (which would also pass the tolerance).
          const float = session.graph.nodes.filter((n) => /^(Conv|Gemm|MatMul)$/.test(n.op));
          assert.deepEqual(float.map((n) => n.name), [], `${name}: float Conv/Gemm left`);
        }
        for (let bi = 0; bi < BATCHES.length; bi++) {
          const b = BATCHES[bi];
          const data = zooInput(m, b, 1000 + b);
          const out = await session.run({
            [m.inputName]: { type: "float32", dims: [b, ...m.itemDims], data },
          });
          const got = out[m.outputName];
          const ref = want[bi];
          assert.deepEqual(got.dims, ref.dims, `${name} batch ${b}: output dims`);
          const g = got.data as Float32Array;
          let maxRef = 0, maxDiff = 0, at = 0;
          for (let i = 0; i < ref.data.length; i++) {
            maxRef = Math.max(maxRef, Math.abs(ref.data[i]));
            const d = Math.abs(g[i] - ref.data[i]);
            if (!(d <= maxDiff)) [maxDiff, at] = [d, i];
          }
          const tol = m.outputStep !== undefined ? m.outputStep : 1e-4 * maxRef + 1e-5;
          const what = `${name} (${build}) batch ${b}`;
          console.log(
            `${what}: max|diff| ${maxDiff.toExponential(2)} (tolerance ${tol.toExponential(2)}` +
              `${
                m.outputStep !== undefined ? ` = ${(maxDiff / m.outputStep).toFixed(2)} steps` : ""
              })`,
          );
          assert.ok(
            maxDiff <= tol,
            `${what}: max|diff| ${maxDiff} > ${tol} at ${at}: sqz ${g[at]}, ort ${ref.data[at]}`,
          );
          const ours = argmaxRows(g, b), theirs = argmaxRows(ref.data, b);
          theirs.forEach((t, r) => {
            if (t.margin > 2 * maxDiff) {
              assert.equal(ours[r].arg, t.arg, `${what}: argmax of row ${r}`);
            } else {
              console.log(`${what}: row ${r}: top-2 margin ${t.margin} is within 2·max|diff|`);
            }
          });
        }
      } finally {
        await session.release();
      }
    });
  }
}
