// Builds the three Wasm kernel modules (scalar, simd, relaxed) from kernels/ with asc,
// driven by asconfig.json, and beside each its self-test module (kernels/selftest.ts added as an
// entry: the same ABI plus sqz_selftest_* exports, for runtimes without JavaScript). Skips a target whose output is newer than every kernel source,
// so `deno task test` and `deno task start` can call it on every run.
import asc from "assemblyscript/asc";

const root = new URL("../", import.meta.url);
const force = Deno.args.includes("--force");
const config = JSON.parse(await Deno.readTextFile(new URL("asconfig.json", root)));

function newestSource(dir: URL): number {
  let newest = Deno.statSync(new URL("asconfig.json", root)).mtime!.getTime();
  for (const entry of Deno.readDirSync(dir)) {
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) {
      if (entry.name !== "build") newest = Math.max(newest, newestSource(url));
    } else if (entry.name.endsWith(".ts")) {
      newest = Math.max(newest, Deno.statSync(url).mtime!.getTime());
    }
  }
  return newest;
}

// asc's output streams: it writes strings, which Deno.stderr cannot take directly.
function textSink() {
  const chunks: string[] = [];
  return {
    write(chunk: Uint8Array | string) {
      chunks.push(typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk));
    },
    toString: () => chunks.join(""),
  };
}

const sourcesTime = newestSource(new URL("kernels/", root));
const builds: [string, string, string[]][] = [];
for (const [target, opts] of Object.entries(config.targets) as [string, { outFile: string }][]) {
  builds.push([target, opts.outFile, []]);
  // The -mt builds import a shared memory (threads): the self-tests run the plain builds.
  if (target.endsWith("-mt")) continue;
  const selftest = opts.outFile.replace(/sqz-([a-z]+)\.wasm$/, "sqz-selftest-$1.wasm");
  builds.push([target, selftest, ["kernels/selftest.ts", "--outFile", selftest]]);
}
for (const [target, outFile, extra] of builds) {
  const out = new URL(outFile, root);
  let outTime = 0;
  try {
    outTime = Deno.statSync(out).mtime!.getTime();
  } catch { /* not built yet */ }
  if (!force && outTime > sourcesTime) continue;
  const t0 = performance.now();
  // Capture what asc writes and rename it into place only after a clean build, so a failed
  // build never leaves a truncated .wasm behind that a later run would take as fresh.
  const written = new Map<string, Uint8Array>();
  const { error, stderr } = await asc.main(
    [...extra, "--config", "asconfig.json", "--target", target],
    {
      stdout: textSink(),
      stderr: textSink(),
      writeFile: (name: string, contents: Uint8Array | string, baseDir: string) => {
        const bytes = typeof contents === "string" ? new TextEncoder().encode(contents) : contents;
        written.set(`${baseDir}/${name}`, bytes);
      },
    },
  );
  if (error) {
    console.error(stderr.toString());
    console.error(`kernel build failed for ${outFile}: ${error.message}`);
    Deno.exit(1);
  }
  for (const [path, bytes] of written) {
    const abs = new URL(path.replace(/^\.\//, ""), root);
    Deno.mkdirSync(new URL("./", abs), { recursive: true });
    const tmp = new URL(abs.pathname + ".tmp", abs);
    Deno.writeFileSync(tmp, bytes);
    Deno.renameSync(tmp, abs);
  }
  console.error(`built ${outFile} in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
}
