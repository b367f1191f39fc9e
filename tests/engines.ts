// Running one model in onnxruntime-web (wasm EP) and in sqz on the same feeds, for the tests
// that compare the two engines op by op: every output, as sqz tensors.
import * as ort from "onnxruntime-web";
import { initOrt } from "../bench/baselines/ort.ts";
import { Session, type Tensor } from "../src/mod.ts";

export type Feeds = Record<string, Tensor>;

export async function ortRun(bytes: Uint8Array, feeds: Feeds): Promise<Record<string, Tensor>> {
  await initOrt();
  const s = await ort.InferenceSession.create(bytes, {
    executionProviders: ["wasm"],
    logSeverityLevel: 3,
  });
  try {
    const inputs: Record<string, ort.Tensor> = {};
    for (const [k, t] of Object.entries(feeds)) {
      inputs[k] = new ort.Tensor(t.type as "float32", t.data as Float32Array, t.dims);
    }
    const out = await s.run(inputs);
    const res: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(out)) {
      res[k] = { type: t.type as Tensor["type"], dims: [...t.dims], data: t.data as Float32Array };
    }
    return res;
  } finally {
    await s.release();
  }
}

export async function sqzRun(bytes: Uint8Array, feeds: Feeds): Promise<Record<string, Tensor>> {
  const s = await Session.create(bytes);
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}
