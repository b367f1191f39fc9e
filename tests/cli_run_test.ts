// `sqz run` end to end: tiny models and .npy inputs in a temp dir, the CLI as a subprocess,
// the written .npy outputs checked against numbers computed by hand; bad arguments → exit 1
// with a one-line message. Plus the summary, top-k and profile formatting on their own.
import assert from "node:assert/strict";
import { DataType, makeModel, node, tensorFromArray, valueInfo } from "../src/onnx/proto.ts";
import { encodeNpy, parseNpy } from "../src/npy.ts";
import { formatProfile, parseRunArgs, summarize, topK } from "../src/cli/run.ts";
import { ArgumentError } from "../src/errors.ts";

const MAIN = new URL("../src/cli/main.ts", import.meta.url).pathname;
const REPO = new URL("..", import.meta.url).pathname;

async function sqz(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "run", ...args],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr).trim(),
  };
}

// y = Relu(x · B + C), p = Softmax(x · B + C): x [N, 3], B [3, 2].
const B = [1, -1, 0.5, 2, 0, -2];
const C = [0.1, -0.2];
function gemm(x: number[]): number[] {
  const n = x.length / 3, h: number[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < 2; j++) {
      let s = C[j];
      for (let k = 0; k < 3; k++) s += x[i * 3 + k] * B[k * 2 + j];
      h.push(s);
    }
  }
  return h;
}
const relu = (h: number[]) => h.map((v) => Math.max(v, 0));
function softmaxRows(h: number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < h.length; i += 2) {
    const m = Math.max(h[i], h[i + 1]);
    const e = [Math.exp(h[i] - m), Math.exp(h[i + 1] - m)];
    out.push(e[0] / (e[0] + e[1]), e[1] / (e[0] + e[1]));
  }
  return out;
}

function close(actual: ArrayLike<number>, expected: number[], tol = 1e-5) {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tol,
      `[${i}] ${actual[i]} vs ${expected[i]} (got ${Array.from(actual)})`,
    );
  }
}

const dir = Deno.makeTempDirSync({ prefix: "sqz_cli_run_" });
const model = `${dir}/mlp.onnx`;
Deno.writeFileSync(
  model,
  makeModel({
    nodes: [
      node("Gemm", ["x", "B", "C"], ["h"], {}, "fc"),
      node("Relu", ["h"], ["y"], {}, "relu"),
      node("Softmax", ["h"], ["probs/out:0"], { axis: 1 }, "softmax"),
    ],
    inputs: [valueInfo("x", DataType.FLOAT, ["N", 3])],
    outputs: [
      valueInfo("y", DataType.FLOAT, ["N", 2]),
      valueInfo("probs/out:0", DataType.FLOAT, ["N", 2]),
    ],
    initializers: [
      tensorFromArray("B", DataType.FLOAT, [3, 2], new Float32Array(B)),
      tensorFromArray("C", DataType.FLOAT, [2], new Float32Array(C)),
    ],
  }),
);
// Two inputs: s = a + b, [2, 2].
const model2 = `${dir}/add.onnx`;
Deno.writeFileSync(
  model2,
  makeModel({
    nodes: [node("Add", ["a", "b"], ["s"], {}, "add")],
    inputs: [valueInfo("a", DataType.FLOAT, [2, 2]), valueInfo("b", DataType.FLOAT, [2, 2])],
    outputs: [valueInfo("s", DataType.FLOAT, [2, 2])],
  }),
);
const X = [1, 2, 3, -1, 0, 1];
Deno.writeFileSync(
  `${dir}/x.npy`,
  encodeNpy({ type: "float32", dims: [2, 3], data: new Float32Array(X) }),
);
Deno.writeFileSync(
  `${dir}/x64.npy`,
  encodeNpy({ type: "float64", dims: [2, 3], data: new Float64Array(X) }),
);
Deno.writeFileSync(
  `${dir}/wide.npy`,
  encodeNpy({ type: "float32", dims: [2, 4], data: new Float32Array(8) }),
);
Deno.writeFileSync(
  `${dir}/ints.npy`,
  encodeNpy({ type: "int64", dims: [2, 3], data: new BigInt64Array(6) }),
);
Deno.writeFileSync(`${dir}/garbage.npy`, new TextEncoder().encode("not an npy file at all"));
const A = [1, 2, 3, 4], Bv = [10, 20, 30, 40];
Deno.writeFileSync(
  `${dir}/a.npy`,
  encodeNpy({ type: "float32", dims: [2, 2], data: new Float32Array(A) }),
);
Deno.writeFileSync(
  `${dir}/b.npy`,
  encodeNpy({ type: "float32", dims: [2, 2], data: new Float32Array(Bv) }),
);

function readOut(path: string) {
  const t = parseNpy(Deno.readFileSync(path));
  assert.equal(t.type, "float32");
  return t;
}

Deno.test("sqz run: writes each output as .npy with the right numbers", async () => {
  const out = `${dir}/out1`;
  const r = await sqz(model, "--input", `x=${dir}/x.npy`, "--output-dir", out);
  assert.equal(r.code, 0, r.stderr);
  const y = readOut(`${out}/y.npy`);
  assert.deepEqual(y.dims, [2, 2]);
  close(y.data as Float32Array, relu(gemm(X)));
  // Output names that are not file names are sanitized.
  const p = readOut(`${out}/probs_out_0.npy`);
  close(p.data as Float32Array, softmaxRows(gemm(X)));
  assert.match(r.stdout, /wrote .*y\.npy/);
  // Softmax output: already probabilities; its top class for row 0 is class 0.
  assert.match(r.stdout, /top-2 of probs\/out:0\[0\] \(already probabilities\):\n\s+class\s+0/);
  assert.match(r.stdout, /top-2 of y\[0\] \(softmax of the scores\)/);
});

Deno.test("sqz run: an unnamed --input for a one-input model, float64 cast with a note", async () => {
  const out = `${dir}/out2`;
  const r = await sqz(model, "--input", `${dir}/x64.npy`, "-o", out, "--top", "0");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /note: .*x64\.npy holds float64, input 'x' is float32: cast to float32/);
  assert.doesNotMatch(r.stdout, /top-/);
  close(readOut(`${out}/y.npy`).data as Float32Array, relu(gemm(X)));
});

Deno.test("sqz run: no --input runs on ONNX dummy data, symbolic dims as 1", async () => {
  const out = `${dir}/out3`;
  const r = await sqz(model, "--output-dir", out, "--build", "scalar");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /dummy data arange\(n\)\/n, float32 \[1, 3\] \(symbolic dims as 1\)/);
  const y = readOut(`${out}/y.npy`);
  assert.deepEqual(y.dims, [1, 2]);
  close(y.data as Float32Array, relu(gemm([0, 1 / 3, 2 / 3])));
});

Deno.test("sqz run: a summary per output without --output-dir, and --profile", async () => {
  const r = await sqz(model, "--input", `${dir}/x.npy`, "--profile", "--top", "1");
  assert.equal(r.code, 0, r.stderr);
  // y = [[2.1, 0], [0, 0]]
  assert.match(r.stdout, /^y {2}float32 \[2, 2\] {2}min 0 {2}max 2\.1 {2}mean 0\.525$/m);
  assert.match(r.stdout, /^ {2}\[2\.1, 0, 0, 0\]$/m);
  assert.match(r.stdout, /top-1 of y\[0\] \(softmax of the scores\):\n\s+class\s+0\s+0\.8909/);
  assert.match(r.stdout, /^profile: \d+ nodes/m);
  assert.match(r.stdout, /^\s+node\s+op\s+impl\s+ms\s+%\s+MACs\s+GMAC\/s$/m);
  assert.match(r.stdout, /^\s+fc\s+Gemm\s+wasm\s+[\d.]+\s+[\d.]+\s+12\b/m);
  assert.match(r.stdout, /^per op type:$/m);
  assert.match(r.stdout, /^memory: arena .+ \(live lower bound .+\), weights .+$/m);
});

Deno.test("sqz run: two inputs need name=file.npy", async () => {
  const out = `${dir}/out4`;
  const ok = await sqz(model2, "-i", `b=${dir}/b.npy`, "-i", `a=${dir}/a.npy`, "-o", out);
  assert.equal(ok.code, 0, ok.stderr);
  close(readOut(`${out}/s.npy`).data as Float32Array, A.map((v, i) => v + Bv[i]));
  const unnamed = await sqz(model2, "-i", `${dir}/a.npy`);
  assert.equal(unnamed.code, 1);
  assert.match(unnamed.stderr, /^sqz: --input .*a\.npy: the model has 2 inputs \('a', 'b'\)/);
  const missing = await sqz(model2, "-i", `a=${dir}/a.npy`);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^sqz: no --input for 'b'/);
  const twice = await sqz(model2, "-i", `a=${dir}/a.npy`, "-i", `a=${dir}/b.npy`);
  assert.match(twice.stderr, /^sqz: input 'a' is given twice$/);
});

Deno.test("sqz run: bad arguments are a one-line message and exit 1", async () => {
  const cases: [string[], RegExp][] = [
    [[model, "--input", `${dir}/nope.npy`], /cannot read '.*nope\.npy': no such file/],
    [[model, "--input", `x=${dir}/nope.npy`], /cannot read '.*nope\.npy': no such file/],
    [[`${dir}/nope.onnx`], /cannot read '.*nope\.onnx'/],
    [[model, "--input", `z=${dir}/x.npy`], /'z' is not an input of the model \('x'\)/],
    [[model, "--input", `${dir}/wide.npy`], /input 'x' must have shape \[N,3\], got \[2,4\]/],
    [[model, "--input", `${dir}/ints.npy`], /ints\.npy holds int64, input 'x' is float32/],
    [[model, "--input", `${dir}/garbage.npy`], /garbage\.npy: not a \.npy file \(bad magic\)/],
    [[model, "--bogus"], /Unknown option '--bogus'/],
    [[model, "--top=-3"], /--top must be a non-negative integer/],
    [[model, "--top", "-3"], /argument is ambiguous/],
    [[model, "--build", "avx"], /--build must be one of auto, scalar, simd, relaxed/],
    [[], /^sqz: usage: sqz run model\.onnx/],
    [[model, model2], /one model expected/],
  ];
  for (const [args, re] of cases) {
    const r = await sqz(...args);
    assert.equal(r.code, 1, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, re);
    assert.match(r.stderr, /^sqz: /);
    assert.equal(r.stderr.split("\n").length, 1, `one line: ${r.stderr}`);
  }
});

Deno.test("sqz run: parseRunArgs", () => {
  assert.deepEqual(parseRunArgs(["m.onnx", "-i", "a=x.npy", "--input", "b.npy"]), {
    model: "m.onnx",
    inputs: ["a=x.npy", "b.npy"],
    outputDir: undefined,
    profile: false,
    top: 5,
    build: "auto",
    backend: "wasm",
  });
  assert.equal(parseRunArgs(["m.onnx", "--backend", "auto"]).backend, "auto");
  assert.throws(() => parseRunArgs(["m.onnx", "--backend", "cuda"]), /--backend must be one of/);
  assert.throws(() => parseRunArgs(["m.onnx", "--top"]), ArgumentError);
  assert.throws(() => parseRunArgs(["m.onnx", "--top", "1.5"]), ArgumentError);
});

Deno.test("sqz run: summaries and top-k", () => {
  const t = { type: "int64" as const, dims: [3], data: new BigInt64Array([5n, -2n, 3n]) };
  assert.equal(summarize("i", t), "i  int64 [3]  min -2  max 5  mean 2\n  [5, -2, 3]");
  assert.equal(
    summarize("e", { type: "float32", dims: [0, 2], data: new Float32Array(0) }),
    "e  float32 [0, 2]  (empty)",
  );
  assert.match(
    summarize("n", { type: "float32", dims: [2], data: new Float32Array([NaN, 1]) }),
    /min 1 {2}max 1 {2}mean 1 {2}\(1 NaN\)/,
  );
  // float16 bits: 1.0, -2.0.
  assert.match(
    summarize("h", { type: "float16", dims: [2], data: new Uint16Array([0x3c00, 0xc000]) }),
    /min -2 {2}max 1 {2}mean -0\.5/,
  );
  // Probabilities are ranked as they are.
  const probs = {
    type: "float32" as const,
    dims: [1, 4, 1, 1],
    data: new Float32Array([0.1, 0.6, 0.1, 0.2]),
  };
  assert.equal(
    topK("p", probs, 2),
    "top-2 of p (already probabilities):\n  class     1  0.6000\n  class     3  0.2000",
  );
  // Logits get a softmax: [0, ln 3] → [0.25, 0.75].
  const logits = {
    type: "float64" as const,
    dims: [1, 2],
    data: new Float64Array([0, Math.log(3)]),
  };
  assert.match(
    topK("l", logits, 5)!,
    /softmax of the scores\):\n {2}class {5}1 {2}0\.7500.*\n {2}class {5}0 {2}0\.2500/,
  );
  // Not a classifier: wrong rank, one class, ints.
  assert.equal(topK("x", { type: "float32", dims: [4], data: new Float32Array(4) }, 5), undefined);
  assert.equal(
    topK("x", { type: "float32", dims: [3, 1], data: new Float32Array(3) }, 5),
    undefined,
  );
  assert.equal(topK("x", { type: "int32", dims: [1, 3], data: new Int32Array(3) }, 5), undefined);
  assert.equal(
    topK("x", { type: "float32", dims: [1, 3, 2, 2], data: new Float32Array(12) }, 5),
    undefined,
  );
});

Deno.test("sqz run: the profile table sorts by time and totals per op", () => {
  const text = formatProfile(
    [
      { name: "a", op: "Conv", impl: "wasm", backend: "wasm", ms: 1, macs: 2e6 },
      { name: "b", op: "Relu", impl: "ts", backend: "wasm", ms: 0.5 },
      { name: "c", op: "Conv", impl: "wasm", backend: "wasm", ms: 3, macs: 6e6 },
    ],
    { arenaBytes: 2048, liveLowerBound: 1024, weightBytes: 3e6 },
  );
  const lines = text.split("\n");
  assert.equal(lines[0], "profile: 3 nodes, 4.500 ms");
  assert.match(lines[2], /^\s+c\s+Conv\s+wasm\s+3\.000\s+66\.7\s+6\.00 M\s+2\.00$/);
  assert.match(lines[3], /^\s+a\s+Conv/);
  assert.match(lines[4], /^\s+b\s+Relu\s+ts\s+0\.500\s+11\.1$/);
  assert.equal(lines[5], "per op type:");
  assert.match(lines[7], /^\s+Conv\s+2\s+4\.000\s+88\.9\s+8\.00 M\s+2\.00$/);
  assert.equal(lines.at(-1), "memory: arena 2.0 kB (live lower bound 1.0 kB), weights 3.00 MB");
});

globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
