import assert from "node:assert/strict";
import { importModel } from "../src/onnx/import.ts";
import {
  DataType,
  makeModel,
  node,
  OnnxDecodeError,
  tensorFromArray,
  type TensorProto,
  valueInfo,
} from "../src/onnx/proto.ts";
import { ModelError, SqzError } from "../src/errors.ts";
import { conformanceDir } from "./conformance.ts";

const x = valueInfo("x", DataType.FLOAT, ["batch", 4]);
const y = valueInfo("y", DataType.FLOAT, ["batch", 3]);
const w = () => tensorFromArray("W", DataType.FLOAT, [4, 3], new Float32Array(12).fill(0.5));

Deno.test("imports a MatMul + Relu model with a symbolic batch and a Constant node", () => {
  const g = importModel(makeModel({
    nodes: [
      node("Constant", [], ["b"], {
        value: tensorFromArray("b", DataType.FLOAT, [3], Float32Array.of(1, 2, 3)),
      }),
      node("MatMul", ["x", "W"], ["h"], {}, "mm"),
      node("Add", ["h", "b"], ["a"]),
      node("Relu", ["a"], ["y"]),
    ],
    inputs: [x],
    outputs: [y],
    initializers: [w()],
  }));
  assert.deepEqual(g.inputs.map((v) => v.name), ["x"]);
  assert.deepEqual(g.inputs[0].shape, ["batch", 4]);
  assert.deepEqual(g.nodes.map((n) => n.op), ["MatMul", "Add", "Relu"]);
  assert.equal(g.nodes[0].name, "mm");
  assert.deepEqual(Array.from(g.values.get("b")!.constant!.data as Float32Array), [1, 2, 3]);
  assert.equal(g.values.get("W")!.constant!.dims.join(), "4,3");
});

Deno.test("orders nodes topologically whatever order the file lists them in", () => {
  const g = importModel(makeModel({
    nodes: [node("Relu", ["h"], ["y"]), node("MatMul", ["x", "W"], ["h"])],
    inputs: [x],
    outputs: [y],
    initializers: [w()],
  }));
  assert.deepEqual(g.nodes.map((n) => n.op), ["MatMul", "Relu"]);
});

Deno.test("malformed models get typed errors that name the problem", () => {
  // deno-lint-ignore no-explicit-any
  const err = (bytes: Uint8Array, re: RegExp, cls: new (...a: any[]) => Error = ModelError) =>
    assert.throws(() => importModel(bytes), (e: Error) => e instanceof cls && re.test(e.message));
  // Garbage and truncated bytes.
  err(new Uint8Array(0), /empty/);
  err(new TextEncoder().encode("definitely not a model"), /./, OnnxDecodeError);
  const good = makeModel({
    nodes: [node("MatMul", ["x", "W"], ["y"])],
    inputs: [x],
    outputs: [y],
    initializers: [w()],
  });
  assert.throws(() => importModel(good.subarray(0, good.length - 7)), SqzError);
  assert.throws(
    () => importModel(Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919) & 255)),
    SqzError,
  );
  // A cycle.
  err(
    makeModel({
      nodes: [
        node("Add", ["x", "z"], ["h"], {}, "add"),
        node("Relu", ["h"], ["z"], {}, "relu"),
        node("Identity", ["h"], ["y"]),
      ],
      inputs: [x],
      outputs: [y],
    }),
    /cycle/,
  );
  // A missing input.
  err(
    makeModel({ nodes: [node("Relu", ["nowhere"], ["y"], {}, "r")], inputs: [x], outputs: [y] }),
    /'r'.*'nowhere'/,
  );
  // An output nothing produces.
  err(
    makeModel({ nodes: [node("Relu", ["x"], ["z"])], inputs: [x], outputs: [y] }),
    /'y' is never produced/,
  );
  // Initializer bytes that disagree with its dims.
  const bad = w();
  bad.dims = [4, 4];
  err(
    makeModel({
      nodes: [node("MatMul", ["x", "W"], ["y"])],
      inputs: [x],
      outputs: [y],
      initializers: [bad],
    }),
    /raw_data/,
  );
  // An absurd declared size, refused before allocating.
  const huge = w();
  huge.dims = [1_000_000, 1_000_000];
  err(
    makeModel({
      nodes: [node("MatMul", ["x", "W"], ["y"])],
      inputs: [x],
      outputs: [y],
      initializers: [huge],
    }),
    /limit/,
  );
  // Unknown ops, all listed with their nodes.
  assert.throws(
    () =>
      importModel(
        makeModel({
          nodes: [node("Frobnicate", ["x"], ["h"], {}, "f1"), node("Relu", ["h"], ["y"])],
          inputs: [x],
          outputs: [y],
        }),
        { supportedOps: new Set(["Relu"]) },
      ),
    (e: Error) => e instanceof ModelError && /Frobnicate \(node 'f1'\)/.test(e.message),
  );
});

function externalW(location: string, offset: number): TensorProto {
  const t = w();
  t.rawData = undefined;
  t.dataLocation = 1;
  t.externalData = [
    { key: "location", value: location },
    { key: "offset", value: String(offset) },
    { key: "length", value: "48" },
  ];
  return t;
}

Deno.test("external data from caller bytes or next to the model; missing data is an error", () => {
  const file = new Uint8Array(64);
  new Float32Array(file.buffer, 16, 12).fill(2);
  const bytes = makeModel({
    nodes: [node("MatMul", ["x", "W"], ["y"])],
    inputs: [x],
    outputs: [y],
    initializers: [externalW("weights.bin", 16)],
  });
  const g = importModel(bytes, { externalData: { "weights.bin": file } });
  assert.deepEqual(
    Array.from(g.values.get("W")!.constant!.data as Float32Array),
    new Array(12).fill(2),
  );
  const dir = Deno.makeTempDirSync();
  Deno.writeFileSync(`${dir}/weights.bin`, file);
  assert.equal(
    (importModel(bytes, { baseDir: dir }).values.get("W")!.constant!.data as Float32Array)[0],
    2,
  );
  assert.throws(
    () => importModel(bytes),
    (e: Error) => e instanceof ModelError && /weights.bin/.test(e.message),
  );
  assert.throws(() => importModel(bytes, { baseDir: `${dir}/nope` }), ModelError);
  assert.throws(
    () => importModel(bytes, { externalData: { "weights.bin": file.subarray(0, 40) } }),
    ModelError,
  );
  const escaping = makeModel({
    nodes: [node("MatMul", ["x", "W"], ["y"])],
    inputs: [x],
    outputs: [y],
    initializers: [externalW("../secret.bin", 0)],
  });
  assert.throws(
    () => importModel(escaping, { baseDir: dir }),
    (e: Error) => /leaves the model directory/.test(e.message),
  );
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("every ONNX conformance model imports", () => {
  const dir = conformanceDir();
  if (!dir) {
    console.log(
      "SKIPPED: ONNX conformance data not found (../shared/conformance or $SQZ_CONFORMANCE_DIR)",
    );
    return;
  }
  let n = 0;
  for (const e of Deno.readDirSync(`${dir}/onnx-node`)) {
    importModel(Deno.readFileSync(`${dir}/onnx-node/${e.name}/model.onnx`));
    n++;
  }
  const models = [...Deno.readDirSync(`${dir}/onnx-models`)].filter((f) =>
    f.name.endsWith(".onnx")
  );
  for (const f of models) {
    const g = importModel(Deno.readFileSync(`${dir}/onnx-models/${f.name}`));
    assert.ok(g.nodes.some((nd) => nd.op === "Conv"), f.name);
    assert.deepEqual(g.inputs[0].shape, [1, 3, 224, 224]);
  }
  console.log(`imported ${n} node-test models and ${models.length} light models`);
  assert.equal(models.length, 4);
});
