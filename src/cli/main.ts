// The sqz command line: `deno task sqz <command>`. `deno task start` runs `demo`.
import { parseArgs } from "node:util";
import { demo } from "./demo.ts";
import { inspectCommand } from "./inspect.ts";
import { runCommand } from "./run.ts";
import { compressCommand } from "./compress.ts";
import { evalCommand } from "./eval.ts";
import { convertCommand } from "./convert.ts";
import { SqzError } from "../mod.ts";

const USAGE = `usage: sqz <command>

commands:
  demo                  check and time the f32, int8 and binary GEMM kernels on this machine
  inspect model.onnx    inputs, outputs, op histogram, parameters and MACs per layer
                        [--json] [--layers N]
  run model.onnx        run a model on .npy inputs (or dummy data); write or summarize outputs
                        [--input name=file.npy]... [--output-dir DIR] [--profile] [--top K]
                        [--build auto|scalar|simd|relaxed]
  compress model.onnx   shrink a model: --recipe int8|int8-dynamic|int4|int4:matmulnbits|binary|
                        ternary|prune:0.9|svd:0.95|cluster:32|<preset>+ft|recipe.json
                        [--calib data.npy] -o out.onnx [--json]; fine-tuning: --train x.npy
                        [--labels y.npy] [--val x.npy [y.npy]] [--epochs N] [--distill T,alpha]
                        [--teacher t.onnx]
  eval model.onnx       accuracy, agreement, per-layer SQNR, size, latency: --data x.npy
                        [--labels y.npy] [--reference float.onnx] [--html report.html] [--json r.json]
  convert model.onnx    raise the opset, rewriting only ops that changed: --opset N -o out.onnx
  search model.onnx     find the smallest, fastest compression within an accuracy budget:
                        --val x.npy [y.npy] [--calib c.npy] [--train x.npy [y.npy]] --max-drop D
                        [--metric accuracy|agreement|kl] [--relative] [--objectives size,latency]
                        [--strategy sensitivity|random|grid|tpe|evolution] [--trials N] [--seed S]
                        [--concurrency C] [--methods int8,int4,prune] -o best.onnx
                        [--html search.html] [--state search.jsonl [--resume]] [--json];
                        --max-drop in percentage points for accuracy/agreement (0.5 = half a
                        point), absolute (nats) for kl
  help                  this text`;

// `run`, `compress`, `eval`, `convert` and `search` parse their own options
// (src/cli/<command>.ts).
const own = ["run", "compress", "eval", "convert", "search"].includes(Deno.args[0]);
const runArgs = own ? Deno.args.slice(1) : undefined;
let parsed;
try {
  parsed = parseArgs({
    args: runArgs ? [Deno.args[0]] : Deno.args,
    allowPositionals: true,
    options: {
      json: { type: "boolean", default: false },
      layers: { type: "string", default: "40" },
    },
  });
} catch (e) {
  // node:util's parse errors (unknown option, missing value) are usage errors: one line.
  console.error(`sqz: ${(e as Error).message}\n\n${USAGE}`);
  Deno.exit(2);
}
const { positionals, values } = parsed;
const [command = "help", ...rest] = positionals;

try {
  switch (command) {
    case "demo":
      await demo();
      break;
    case "inspect":
      inspectCommand(rest[0], values.json, Number(values.layers));
      break;
    case "run":
      await runCommand(runArgs ?? rest);
      break;
    case "compress":
      await compressCommand(runArgs ?? rest);
      break;
    case "eval":
      await evalCommand(runArgs ?? rest);
      break;
    case "convert":
      await convertCommand(runArgs ?? rest);
      break;
    case "search":
      // Loaded on demand: the search module (and its Workers) stays out of the other commands.
      await (await import("./search.ts")).searchCommand(runArgs ?? rest);
      break;
    case "help":
      console.log(USAGE);
      break;
    default:
      console.error(`sqz: unknown command '${command}'\n\n${USAGE}`);
      Deno.exit(2);
  }
} catch (e) {
  // Typed errors and missing files are the user's to fix: a message, not a stack trace.
  if (
    e instanceof SqzError || e instanceof Deno.errors.NotFound ||
    (e as Error).message?.startsWith("usage:")
  ) {
    console.error(`sqz: ${(e as Error).message}`);
    Deno.exit(1);
  }
  throw e;
}
