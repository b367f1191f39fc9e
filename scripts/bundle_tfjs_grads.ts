// Bundles tfjs-core, its gradient registrations and tfjs-backend-cpu into one ESM file,
// node_modules/.sqz/tfjs_autodiff.js, so that tf.grads / tf.variableGrads work under Deno: the
// test that checks sqz's training engine against an independent autodiff
// (tests/train_tfjs_crosscheck_test.ts) imports it. Run by `deno task setup`:
//
//   npx -y deno@2 run -A scripts/bundle_tfjs_grads.ts [--force]
//
// Why a bundle: tfjs-core's ESM build (dist/*.js, which holds the gradient registrations
// dist/gradients/*_grad.js and dist/register_all_gradients.js) imports its modules without
// extensions ('./gradients/Abs_grad'), which Deno does not resolve; its CommonJS entry
// (dist/tf-core.node.js, what Deno loads for the npm package) registers no gradients. esbuild
// resolves the extension-less imports. Core and backend are bundled from their ESM builds
// ("module" before "main"), so the backend's import of tfjs-core is the same copy and there is
// one engine. The wasm backend lacks Conv2DBackpropFilter; the cpu backend has every kernel the
// gradients of conv, pool, batchNorm and matMul run.
//
// Under Deno tfjs takes its Node path (process.versions.node is set) and require()s 'util';
// the bundle defines `require` with node:module's createRequire for that.
//
// Skipped when the bundle is newer than every file it was built from and the packages still
// resolve to the same directories (the first line of the bundle records both). Written to a
// temporary file and renamed, so a failed or interrupted build never leaves a partial bundle.
import * as esbuild from "esbuild";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../", import.meta.url));
const OUT_DIR = `${root}node_modules/.sqz`;
const OUT = `${OUT_DIR}/tfjs_autodiff.js`;
const SCRIPT = fileURLToPath(import.meta.url);
const PACKAGES = ["@tensorflow/tfjs-core", "@tensorflow/tfjs-backend-cpu"];
const STAMP = "// sqz-bundle ";
const ENTRY_NAME = "<sqz tfjs autodiff entry>";

const ENTRY = `
export * from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-core/dist/register_all_gradients";
export { version_cpu } from "@tensorflow/tfjs-backend-cpu";
`;

interface Stamp {
  /** Real directory of each package (its version is in the path). */
  packages: Record<string, string>;
  /** Every file bundled, relative to the repository root. */
  inputs: string[];
}

function mtime(path: string): number {
  return Deno.statSync(path).mtime?.getTime() ?? Infinity;
}

function resolvedPackages(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of PACKAGES) {
    try {
      out[p] = Deno.realPathSync(`${root}node_modules/${p}`);
    } catch {
      throw new Error(`${p} is not installed in node_modules: run 'deno install' first`);
    }
  }
  return out;
}

function readStamp(): Stamp | undefined {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(OUT);
  } catch {
    return undefined;
  }
  try {
    // The stamp is the first line; read until its newline.
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(1 << 16);
    for (;;) {
      const n = file.readSync(buf);
      if (n === null) break;
      const chunk = buf.slice(0, n);
      const nl = chunk.indexOf(10);
      chunks.push(nl < 0 ? chunk : chunk.subarray(0, nl));
      if (nl >= 0) break;
    }
    const line = new TextDecoder().decode(
      chunks.length === 1 ? chunks[0] : new Uint8Array(chunks.flatMap((c) => [...c])),
    );
    if (!line.startsWith(STAMP)) return undefined;
    return JSON.parse(line.slice(STAMP.length)) as Stamp;
  } catch {
    return undefined;
  } finally {
    file.close();
  }
}

function upToDate(packages: Record<string, string>): boolean {
  const stamp = readStamp();
  if (!stamp) return false;
  if (JSON.stringify(stamp.packages) !== JSON.stringify(packages)) return false;
  const built = mtime(OUT);
  try {
    if (mtime(SCRIPT) >= built) return false;
    for (const f of stamp.inputs) if (mtime(`${root}${f}`) >= built) return false;
  } catch {
    return false; // an input is gone: the packages changed
  }
  return true;
}

async function build(packages: Record<string, string>): Promise<void> {
  const t0 = performance.now();
  let result;
  try {
    result = await esbuild.build({
      stdin: { contents: ENTRY, resolveDir: root, sourcefile: ENTRY_NAME },
      absWorkingDir: root,
      bundle: true,
      format: "esm",
      platform: "node",
      target: "es2022",
      mainFields: ["module", "main"],
      // Only fetched by tfjs' http io handlers, which the bundle's users never call.
      external: ["node-fetch"],
      banner: {
        js: 'import { createRequire as __sqzCreateRequire } from "node:module";\n' +
          "const require = __sqzCreateRequire(import.meta.url);",
      },
      legalComments: "none",
      metafile: true,
      write: false,
      logLevel: "warning",
    });
  } finally {
    await esbuild.stop();
  }
  const code = result.outputFiles[0]?.text;
  if (!code) throw new Error("esbuild produced no output");
  const inputs = Object.keys(result.metafile.inputs).filter((f) => f !== ENTRY_NAME);
  if (!inputs.some((f) => f.includes("register_all_gradients"))) {
    throw new Error("bundle is missing tfjs-core's gradient registrations");
  }
  const stamp: Stamp = { packages, inputs };
  Deno.mkdirSync(OUT_DIR, { recursive: true });
  const tmp = `${OUT}.tmp-${Deno.pid}`;
  try {
    Deno.writeTextFileSync(tmp, `${STAMP}${JSON.stringify(stamp)}\n${code}`);
    Deno.renameSync(tmp, OUT);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* never written */ }
    throw e;
  }
  console.error(
    `built node_modules/.sqz/tfjs_autodiff.js (${inputs.length} modules, ` +
      `${(code.length / 1e6).toFixed(1)} MB) in ${((performance.now() - t0) / 1000).toFixed(1)}s`,
  );
}

if (import.meta.main) {
  const packages = resolvedPackages();
  if (Deno.args.includes("--force") || !upToDate(packages)) await build(packages);
}
