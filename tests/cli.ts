// Running the sqz CLI in a subprocess, as the CLI tests do: `deno run -A src/cli/main.ts …`
// from the repository root, colours off.
const ROOT = new URL("..", import.meta.url).pathname;

export function sqzCommand(args: string[]): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "src/cli/main.ts", ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  });
}

/** Runs to the end: the exit code and what was written to stdout and stderr. */
export async function sqz(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = await sqzCommand(args).output();
  const dec = new TextDecoder();
  return { code: p.code, out: dec.decode(p.stdout), err: dec.decode(p.stderr) };
}
