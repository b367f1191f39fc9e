// Writes the browser build, dist/:
//   dist/sqz.js                the public API (src/mod.ts) as one ES module
//   dist/sqz_thread_worker.js  the kernel thread pool's Web Worker (used when the page is
//                              cross-origin isolated, so SharedArrayBuffer exists)
//   dist/sqz-*.wasm            the kernel builds; the page's feature detection picks one
//   dist/index.html, playground.js, compress_worker.js, playground.css  the playground (web/)
//
//   npx -y deno@2 run -A scripts/build_web.ts        (deno task build:web)
//
// esbuild defines __SQZ_BUNDLE__ (src/platform/bundle.ts) so assets resolve beside sqz.js. The
// playground imports the API as "../src/mod.ts" in source; here that import becomes the
// sibling "./sqz.js", so the page and its worker share one copy. node:* modules are only ever
// imported dynamically behind host checks; they stay external and the build fails if any
// static node: import reaches the bundle. Written to a temporary directory and renamed, so an
// interrupted build never leaves a partial dist/.
import * as esbuild from "esbuild";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../", import.meta.url));
const OUT = `${root}dist`;
const KERNELS = `${root}kernels/build`;
const BUILDS = ["scalar", "simd", "relaxed"].flatMap((b) => [`sqz-${b}.wasm`, `sqz-${b}-mt.wasm`]);
const STATIC = ["index.html", "playground.css"];

const apiAsSibling: esbuild.Plugin = {
  name: "sqz-api-as-sibling",
  setup(build) {
    build.onResolve({ filter: /\/src\/mod\.ts$/ }, () => ({ path: "./sqz.js", external: true }));
  },
};

async function bundle(entry: string, outfile: string, plugins: esbuild.Plugin[] = []) {
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    external: ["node:*"],
    define: { __SQZ_BUNDLE__: "true" },
    plugins,
    logLevel: "error",
    sourcemap: "linked",
    minify: true,
  });
  const text = await Deno.readTextFile(outfile);
  const bad = text.match(/^\s*import[^;()]*from\s*["']node:[^"']+["']/m);
  if (bad) throw new Error(`${outfile} statically imports a Node module: ${bad[0]}`);
}

const t0 = performance.now();
for (const f of BUILDS) {
  try {
    await Deno.stat(`${KERNELS}/${f}`);
  } catch {
    throw new Error(`kernels/build/${f} is missing: run \`deno task build\` first`);
  }
}
const tmp = `${OUT}.tmp-${Deno.pid}`;
await Deno.remove(tmp, { recursive: true }).catch(() => {});
await Deno.mkdir(tmp, { recursive: true });
try {
  await bundle(`${root}src/mod.ts`, `${tmp}/sqz.js`);
  await bundle(`${root}src/kernels/thread_worker.ts`, `${tmp}/sqz_thread_worker.js`);
  await bundle(`${root}web/playground.ts`, `${tmp}/playground.js`, [apiAsSibling]);
  await bundle(`${root}web/compress_worker.ts`, `${tmp}/compress_worker.js`, [apiAsSibling]);
  for (const f of BUILDS) await Deno.copyFile(`${KERNELS}/${f}`, `${tmp}/${f}`);
  for (const f of STATIC) await Deno.copyFile(`${root}web/${f}`, `${tmp}/${f}`);
  await Deno.remove(OUT, { recursive: true }).catch(() => {});
  await Deno.rename(tmp, OUT);
} catch (e) {
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  throw e;
}
const size = (await Deno.stat(`${OUT}/sqz.js`)).size;
console.log(
  `built dist/ (sqz.js ${(size / 1024).toFixed(0)} KiB) in ${
    ((performance.now() - t0) / 1000).toFixed(1)
  }s`,
);
