// One cold start, in a fresh process (bench/cold_start.ts spawns it): load the engine, create
// a session on the model file and run it once. Prints one JSON line of milliseconds:
// `import` (loading the engine's JS), `create` (compiling the Wasm, parsing, packing the
// weights, planning) and `first_run`, all measured from this process's start.
const t0 = performance.now();
const [engine, path] = Deno.args;
const bytes = Deno.readFileSync(path);
const feed = new Float32Array(3 * 64 * 64).map((_, i) => (i % 97) / 97);
let tImport: number, tCreate: number, tRun: number;
if (engine === "sqz") {
  const { Session } = await import("../src/mod.ts");
  tImport = performance.now();
  const s = await Session.create(bytes, { threads: 1 });
  tCreate = performance.now();
  await s.run({ input: { type: "float32", dims: [1, 3, 64, 64], data: feed } });
  tRun = performance.now();
} else {
  const { initOrt } = await import("./baselines/ort.ts");
  const ort = await import("onnxruntime-web");
  await initOrt();
  tImport = performance.now();
  const s = await ort.InferenceSession.create(bytes, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
  });
  tCreate = performance.now();
  await s.run({ input: new ort.Tensor("float32", feed, [1, 3, 64, 64]) });
  tRun = performance.now();
}
console.log(JSON.stringify({
  start: +t0.toFixed(2),
  import: +(tImport - t0).toFixed(2),
  create: +(tCreate - tImport).toFixed(2),
  first_run: +(tRun - tCreate).toFixed(2),
}));
Deno.exit(0);
