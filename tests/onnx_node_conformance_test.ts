// The ONNX project's own node tests (../shared/conformance/onnx-node): every case's model runs
// through Session and each output must match the expected one (rtol 1e-3, atol 1e-7; integers
// exactly). Cases listed in conformance_skips.ts are skipped with their reason; the test prints
// the pass count. SQZ_CASES=<regex> narrows the run (for working on one op family).
import assert from "node:assert/strict";
import { compareTensor, conformanceDir, dataSets, listCases, readDataSet } from "./conformance.ts";
import { SKIPPED } from "./conformance_skips.ts";
import { Session } from "../src/mod.ts";
import { decodeModel, decodeTensor, encodeModel } from "../src/onnx/proto.ts";
import type { Tensor } from "../src/graph/tensor.ts";

const filter = Deno.env.get("SQZ_CASES");
const re = filter ? new RegExp(filter) : undefined;

/**
 * Runs one case; returns the failure, or undefined when every output of every set matches.
 * With `constWeights`, inputs after the first become initializers (from the first data set),
 * as weights are in real models: that routes Conv, Gemm, MatMul and their quantized forms to
 * the Wasm kernel ops instead of the TypeScript ones.
 */
export async function runCase(name: string, constWeights = false): Promise<string | undefined> {
  const root = `${conformanceDir()}/onnx-node/${name}`;
  let session: Session;
  let bytes: Uint8Array = Deno.readFileSync(`${root}/model.onnx`);
  let fed = Infinity;
  if (constWeights) {
    const model = decodeModel(bytes);
    const g = model.graph!;
    const inits = new Set(g.initializer.map((t) => t.name));
    const inputs = g.input.filter((v) => !inits.has(v.name));
    const set0 = `${root}/test_data_set_0`;
    inputs.slice(1).forEach((v, i) => {
      const t = decodeTensor(Deno.readFileSync(`${set0}/input_${i + 1}.pb`));
      g.initializer.push({ ...t, name: v.name });
    });
    bytes = encodeModel(model);
    fed = 1;
  }
  try {
    session = await Session.create(bytes);
  } catch (e) {
    return `create: ${(e as Error).name}: ${(e as Error).message}`;
  }
  try {
    const sets = dataSets(root).slice(0, constWeights ? 1 : undefined);
    for (const set of sets) {
      const { inputs, outputs } = readDataSet(root, set);
      const feeds: Record<string, Tensor> = {};
      session.inputNames.forEach((n, i) => i < fed && inputs[i] && (feeds[n] = inputs[i]));
      let got: Record<string, Tensor>;
      try {
        got = await session.run(feeds);
      } catch (e) {
        return `${set}: run: ${(e as Error).name}: ${(e as Error).message}`;
      }
      for (let i = 0; i < outputs.length; i++) {
        const out = session.outputNames[i];
        const bad = compareTensor(got[out], outputs[i]);
        if (bad) return `${set}: output '${out}': ${bad}`;
      }
    }
    return undefined;
  } finally {
    await session.release();
  }
}

Deno.test({
  name: "ONNX node conformance",
  ignore: !conformanceDir(),
  async fn() {
    const cases = listCases((n) => (!re || re.test(n)));
    const failures: string[] = [];
    let passed = 0, skipped = 0;
    for (const name of cases) {
      if (SKIPPED[name]) {
        skipped++;
        continue;
      }
      const bad = await runCase(name);
      if (bad) failures.push(`  ${name}: ${bad}`);
      else passed++;
    }
    console.log(
      `onnx-node conformance: ${passed}/${cases.length} passed, ${skipped} skipped, ` +
        `${failures.length} failed`,
    );
    if (skipped) {
      console.log(
        Object.entries(SKIPPED).filter(([n]) => cases.includes(n))
          .map(([n, why]) => `  skipped ${n}: ${why}`).join("\n"),
      );
    }
    assert.ok(failures.length === 0, `failing cases:\n${failures.join("\n")}`);
  },
});

if (!conformanceDir()) {
  console.warn(
    "onnx-node conformance skipped: ../shared/conformance not found (set SQZ_CONFORMANCE_DIR)",
  );
}

/** Ops with Wasm kernel ops: their cases run again with constant weights. */
const KERNEL_CASES =
  /^test_(basic_conv|conv_with|convinteger|qlinearconv|qlinearmatmul|matmulinteger|matmul_2d|gemm|maxpool_2d|averagepool_2d|globalaveragepool|globalmaxpool)/;

Deno.test({
  name: "ONNX node conformance with weights as initializers (the Wasm kernel paths)",
  ignore: !conformanceDir(),
  async fn() {
    const cases = listCases((n) => KERNEL_CASES.test(n) && (!re || re.test(n)) && !SKIPPED[n]);
    const failures: string[] = [];
    for (const name of cases) {
      const bad = await runCase(name, true);
      if (bad) failures.push(`  ${name}: ${bad}`);
    }
    console.log(
      `kernel-path conformance: ${cases.length - failures.length}/${cases.length} passed`,
    );
    assert.ok(failures.length === 0, `failing cases:\n${failures.join("\n")}`);
  },
});
