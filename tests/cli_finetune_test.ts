// `sqz compress --recipe <preset>+ft --train …` end to end as a subprocess, on real MNIST digits
// (src/eval/mnist.ts) and the reference MLP: epoch lines off a terminal, --epochs / --distill
// overriding the recipe, labels of several integer dtypes, an artifact that loads in Session;
// Ctrl-C during training writes nothing; bad flags and data are one-line errors with exit 1.
import assert from "node:assert/strict";
import { encodeNpy, Session, type Tensor } from "../src/mod.ts";
import { mnistSplit } from "../src/eval/mnist.ts";
import { sqz, sqzCommand } from "./cli.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const MLP = `${ROOT}models/mnist_mlp.onnx`;

function head(x: Tensor, n: number, from = 0): Tensor {
  const per = 784;
  return {
    type: "float32",
    dims: [n, 1, 28, 28],
    data: (x.data as Float32Array).slice(from * per, (from + n) * per),
  };
}

/** 256 training digits (int64 labels) and 128 validation digits (uint8 labels) as .npy files. */
async function writeDigits(dir: string): Promise<{ train: number; val: number }> {
  const { train, test } = await mnistSplit(0);
  const n = 256, v = 128;
  await Deno.writeFile(`${dir}/x.npy`, encodeNpy(head(train.x, n)));
  await Deno.writeFile(
    `${dir}/y.npy`,
    encodeNpy({ type: "int64", dims: [n], data: BigInt64Array.from(train.y.slice(0, n), BigInt) }),
  );
  await Deno.writeFile(`${dir}/vx.npy`, encodeNpy(head(test.x, v)));
  await Deno.writeFile(
    `${dir}/vy.npy`,
    encodeNpy({ type: "uint8", dims: [v], data: test.y.slice(0, v) }),
  );
  // Wrong labels files: float, a count that differs, a class past the model's 10.
  await Deno.writeFile(
    `${dir}/yf.npy`,
    encodeNpy({ type: "float32", dims: [n], data: new Float32Array(n) }),
  );
  await Deno.writeFile(
    `${dir}/y_short.npy`,
    encodeNpy({ type: "int32", dims: [n - 1], data: new Int32Array(n - 1) }),
  );
  return { train: n, val: v };
}

function files(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

Deno.test("sqz compress int8+ft --train --labels --val --epochs 1: epoch line, loadable model", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sqz_cli_ft_" });
  try {
    await writeDigits(dir);
    const r = await sqz([
      "compress",
      MLP,
      "--recipe",
      "int8+ft",
      "--train",
      `${dir}/x.npy`,
      "--labels",
      `${dir}/y.npy`,
      "--val",
      `${dir}/vx.npy`,
      `${dir}/vy.npy`,
      "--epochs",
      "1",
      "-o",
      `${dir}/out.onnx`,
    ]);
    assert.equal(r.code, 0, r.err);
    // Off a terminal: one line per epoch, with the loss and the validation accuracy.
    const epochs = r.err.split("\n").filter((l) => /^epoch \d+\/\d+/.test(l));
    assert.equal(epochs.length, 1, r.err);
    assert.match(epochs[0], /^epoch 1\/1 {2}loss \d+\.\d{4} .*val acc \d+\.\d{2}%/);
    assert.match(r.out, /fine-tuned 1 epoch/);
    // The artifact loads and classifies digits.
    const s = await Session.create(`${dir}/out.onnx`);
    const { test } = await mnistSplit(0);
    const x = head(test.x, 64, 128);
    const out = await s.run({ [s.inputMetadata[0].name]: x });
    const logits = out[s.outputMetadata[0].name];
    assert.deepEqual(logits.dims, [64, 10]);
    const d = logits.data as Float32Array;
    let right = 0;
    for (let i = 0; i < 64; i++) {
      const row = d.subarray(i * 10, i * 10 + 10);
      if (row.indexOf(Math.max(...row)) === test.y[128 + i]) right++;
    }
    assert.ok(right / 64 > 0.8, `accuracy ${right}/64`);
    await s.release();
    assert.deepEqual(files(dir).filter((f) => f.includes(".tmp-")), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sqz compress --distill and --epochs override the recipe; --json has the training", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sqz_cli_ft_" });
  try {
    await writeDigits(dir);
    // Unlabelled: distillation from the float model; the validation data has no labels.
    await Deno.writeTextFile(
      `${dir}/r.json`,
      JSON.stringify({ method: "int8", finetune: { epochs: 5, batchSize: 32, lr: 0.0005 } }),
    );
    const r = await sqz([
      "compress",
      MLP,
      "--recipe",
      `${dir}/r.json`,
      "--train",
      `${dir}/x.npy`,
      "--val",
      `${dir}/vx.npy`,
      "--epochs",
      "2",
      "--distill",
      "2,1",
      "--json",
      "-o",
      `${dir}/out.onnx`,
    ]);
    assert.equal(r.code, 0, r.err);
    const report = JSON.parse(r.out);
    assert.equal(report.recipe.finetune.epochs, 2);
    assert.deepEqual(report.recipe.finetune.distill, { temperature: 2, alpha: 1 });
    assert.equal(report.training.epochs.length, 2);
    const lines = r.err.split("\n").filter((l) => /^epoch \d\/2/.test(l));
    assert.equal(lines.length, 2, r.err);
    assert.match(lines[1], /^epoch 2\/2/);
    await (await Session.create(`${dir}/out.onnx`)).release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sqz compress: Ctrl-C during fine-tuning aborts and writes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sqz_cli_ft_" });
  try {
    await writeDigits(dir);
    // 16 batches per epoch: the engine looks at the signal between batches, and lets the
    // event loop (the SIGINT listener) run every 8 of them.
    await Deno.writeTextFile(
      `${dir}/r.json`,
      JSON.stringify({ method: "int8", finetune: { epochs: 200, batchSize: 16 } }),
    );
    const child = sqzCommand([
      "compress",
      MLP,
      "--recipe",
      `${dir}/r.json`,
      "--train",
      `${dir}/x.npy`,
      "--labels",
      `${dir}/y.npy`,
      "-o",
      `${dir}/out.onnx`,
    ]).spawn();
    let err = "";
    const drainOut = child.stdout.pipeTo(new WritableStream());
    let sent = false, killed = false;
    // An engine that ignores the signal must not hang the test: kill -9 after 60 s.
    let guard: ReturnType<typeof setTimeout> | undefined;
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      err += chunk;
      // The first finished epoch: training is under way.
      if (!sent && /^epoch 1\//m.test(err)) {
        child.kill("SIGINT");
        sent = true;
        guard = setTimeout(() => {
          killed = true;
          child.kill("SIGKILL");
        }, 60_000);
      }
    }
    await drainOut;
    const { code } = await child.status;
    clearTimeout(guard);
    assert.ok(!killed, `still running 60 s after Ctrl-C:\n${err}`);
    assert.ok(sent, err);
    assert.equal(code, 130, err);
    assert.match(err, /interrupted: nothing written/);
    assert.ok(!/^epoch 200\//m.test(err), "stopped before the end");
    assert.deepEqual(
      files(dir).filter((f) => f.startsWith("out")),
      [],
      "no model, no temp file",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sqz compress: bad fine-tuning flags and data are one-line errors", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sqz_cli_ft_" });
  try {
    await writeDigits(dir);
    const o = ["-o", `${dir}/o.onnx`];
    const ft = ["compress", MLP, "--recipe", "int8+ft", "--train", `${dir}/x.npy`];
    const cases: [string[], RegExp][] = [
      [[...ft, "--epochs", "0", ...o], /--epochs must be an integer in \[1, 10000\]/],
      [[...ft, "--epochs", "two", ...o], /--epochs must be an integer in \[1, 10000\]/],
      [[...ft, "--epochs", "1.5", ...o], /--epochs must be an integer in \[1, 10000\]/],
      [[...ft, "--distill", "4", ...o], /--distill must be T,alpha/],
      [[...ft, "--distill", "0,0.5", ...o], /--distill must be T,alpha/],
      [[...ft, "--distill", "4,1.5", ...o], /--distill must be T,alpha/],
      [[...ft, "--distill", "4,x", ...o], /--distill must be T,alpha/],
      [[...ft, "--teacher", `${dir}/none.onnx`, ...o], /cannot read --teacher/],
      [[...ft, "--labels", `${dir}/yf.npy`, ...o], /--labels must hold integer class indices/],
      [[...ft, "--labels", `${dir}/y_short.npy`, ...o], /one label per sample \(256\)/],
      [[...ft, "--labels", `${dir}/none.npy`, ...o], /cannot read --labels/],
      [[...ft, "--val", `${dir}/vx.npy`, `${dir}/yf.npy`, ...o], /validation labels must hold/],
      [["compress", MLP, "--recipe", "int8+ft", ...o], /fine-tunes: it needs training data/],
      [
        ["compress", MLP, "--recipe", "int8", "--train", `${dir}/x.npy`, ...o],
        /--train needs a recipe that fine-tunes/,
      ],
      [
        ["compress", MLP, "--recipe", "int8", "--epochs", "3", ...o],
        /--epochs needs a recipe that fine-tunes/,
      ],
      [
        ["compress", MLP, "--recipe", "int8", "--labels", `${dir}/y.npy`, ...o],
        /--labels needs --train/,
      ],
      [["compress", MLP, "--recipe", "int8+ft", "--train", `${dir}/y.npy`, ...o], /is int64/],
    ];
    for (const [args, want] of cases) {
      const r = await sqz(args);
      const lines = r.err.trim().split("\n");
      assert.equal(r.code, 1, `${args.slice(3).join(" ")}: ${r.err}`);
      assert.equal(lines.length, 1, `one line: ${r.err}`);
      assert.match(lines[0], /^sqz: /);
      assert.match(lines[0], want);
    }
    assert.ok(!files(dir).some((f) => f.startsWith("o.onnx")), "nothing written");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
