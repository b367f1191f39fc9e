// The sqz command line: `deno task sqz <command>`. `deno task start` runs `demo`.
import { parseArgs } from "node:util";
import { demo } from "./demo.ts";

const USAGE = `usage: sqz <command>

commands:
  demo     check and time the f32, int8 and binary GEMM kernels on this machine
  help     this text`;

const { positionals } = parseArgs({ args: Deno.args, allowPositionals: true, strict: false });
const [command = "help"] = positionals;

switch (command) {
  case "demo":
    await demo();
    break;
  case "help":
    console.log(USAGE);
    break;
  default:
    console.error(`sqz: unknown command '${command}'\n\n${USAGE}`);
    Deno.exit(2);
}
