// The ONNX project's light models (../shared/conformance/onnx-models): ResNet-50, SqueezeNet,
// ShuffleNet and Inception-v1 with ONNX's deterministic dummy input, arange(n)/n in the input's
// shape (unknown dims 1), must reproduce the recorded *_output_0.pb.
import assert from "node:assert/strict";
import { compareTensor, conformanceDir, protoTensor } from "./conformance.ts";
import { Session } from "../src/mod.ts";
import { decodeTensor } from "../src/onnx/proto.ts";

const dir = conformanceDir();
const MODELS = ["light_resnet50", "light_squeezenet", "light_shufflenet", "light_inception_v1"];

/** arange(n)/n over the input's shape, unknown dims set to 1. */
export function dummyInput(
  dims: readonly (number | string)[],
): { dims: number[]; data: Float32Array } {
  const d = dims.map((x) => (typeof x === "number" && x > 0 ? x : 1));
  const n = d.reduce((a, b) => a * b, 1);
  return { dims: d, data: Float32Array.from({ length: n }, (_, i) => i / n) };
}

for (const name of MODELS) {
  Deno.test({
    name: `ONNX light model ${name} matches its recorded output`,
    ignore: !dir,
    async fn() {
      const root = `${dir}/onnx-models`;
      const session = await Session.create(`${root}/${name}.onnx`);
      try {
        const meta = session.inputMetadata[0];
        const x = dummyInput(meta.dims);
        const out = await session.run({ [meta.name]: { type: "float32", ...x } });
        const want = protoTensor(decodeTensor(Deno.readFileSync(`${root}/${name}_output_0.pb`)));
        const bad = compareTensor(out[session.outputNames[0]], want);
        assert.equal(bad, undefined, `${name}: ${bad}`);
      } finally {
        await session.release();
      }
    },
  });
}

if (!dir) {
  console.warn("light models skipped: ../shared/conformance not found (set SQZ_CONFORMANCE_DIR)");
}
