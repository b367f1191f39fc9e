// `sqz convert model.onnx --opset 13 -o out.onnx`: upgrades a model's default-domain opset,
// rewriting only the ops whose meaning changed in between (opsets 1–6 are upgraded to 7 at
// import first), and prints what it rewrote. External data is read relative to the model.
import { parseArgs } from "node:util";
import { ArgumentError, convertOpset, exportModel, importModel, MAX_OPSET } from "../mod.ts";
import { writeAtomic } from "./files.ts";

export const CONVERT_USAGE = `usage: sqz convert model.onnx --opset N -o out.onnx [--json]`;

export interface ConvertArgs {
  model: string;
  opset: number;
  output: string;
  json: boolean;
}

export function parseConvertArgs(args: string[]): ConvertArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        opset: { type: "string" },
        output: { type: "string", short: "o" },
        json: { type: "boolean", default: false },
      },
    });
  } catch (e) {
    throw new ArgumentError(`${(e as Error).message}\n${CONVERT_USAGE}`);
  }
  const { positionals, values } = parsed;
  if (positionals.length !== 1) throw new ArgumentError(CONVERT_USAGE);
  if (values.opset === undefined || values.output === undefined) {
    throw new ArgumentError(CONVERT_USAGE);
  }
  const opset = Number(values.opset);
  if (!Number.isInteger(opset) || opset < 1 || opset > MAX_OPSET) {
    throw new ArgumentError(
      `--opset must be an integer from 1 to ${MAX_OPSET}, got '${values.opset}'`,
    );
  }
  return { model: positionals[0], opset, output: values.output, json: values.json };
}

export async function convertCommand(args: string[]): Promise<void> {
  const a = parseConvertArgs(args);
  const bytes = await Deno.readFile(a.model);
  const slash = a.model.lastIndexOf("/");
  const baseDir = slash >= 0 ? a.model.slice(0, slash) || "/" : ".";
  const g = importModel(bytes, { baseDir });
  const { converted } = convertOpset(g, a.opset);
  const out = exportModel(g, { producerName: "sqz" });
  await writeAtomic(a.output, out);
  // Import's own notes (an opset 1–6 model upgraded to 7) come first.
  const notes = [...g.notes, ...converted];
  if (a.json) {
    console.log(JSON.stringify({ model: a.model, output: a.output, opset: a.opset, notes }));
    return;
  }
  console.log(`${a.model} → opset ${a.opset}`);
  for (const line of notes) console.log(`  ${line}`);
  if (!notes.length) console.log(`  already at opset ${a.opset}: nothing to convert`);
  console.log(`wrote ${a.output} (${out.length} bytes)`);
}
