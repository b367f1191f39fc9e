// Keeps kernels/README.md (the Wasm ABI for embedders) honest against the built modules: every
// `sqz_…`/`SQZ_…` export of every build is documented, every exported function has a table row
// whose signature lists as many parameters as the function takes, every sqz_ name the document
// mentions exists, and the self-test hashes it quotes are what the self-test modules return.
// Sections whose heading contains "planned" may name exports that do not exist yet.
import assert from "node:assert/strict";
import { availableBuilds } from "../src/kernels/features.ts";
import { KernelModule } from "../src/kernels/module.ts";

const root = new URL("../", import.meta.url);
const readmeText = await Deno.readTextFile(new URL("kernels/README.md", root));

/** The document without its "planned" sections (heading to the next heading of its level or above). */
function withoutPlanned(md: string): string {
  const kept: string[] = [];
  let fence = false;
  let skipLevel = 0; // > 0 while inside a planned section of that heading level
  for (const line of md.split("\n")) {
    if (/^\s*(```|~~~)/.test(line)) fence = !fence;
    const heading = fence ? null : /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      const level = heading[1].length;
      if (skipLevel && level <= skipLevel) skipLevel = 0;
      if (!skipLevel && /planned/i.test(heading[2])) skipLevel = level;
    }
    if (!skipLevel) kept.push(line);
  }
  return kept.join("\n");
}

const readme = withoutPlanned(readmeText);

interface Exports {
  where: string;
  /** Exported function name → parameter count (a Wasm function's JS `length`). */
  functions: Map<string, number>;
  /** Every exported name (functions, globals, memory). */
  names: Set<string>;
}

function exportsOf(where: string, exports: Record<string, unknown>): Exports {
  const functions = new Map<string, number>();
  for (const [name, value] of Object.entries(exports)) {
    if (typeof value === "function") functions.set(name, value.length);
  }
  return { where, functions, names: new Set(Object.keys(exports)) };
}

const abort = () => {
  throw new Error("sqz kernel abort");
};

/** The plain builds through KernelModule, their self-test modules, and any other asconfig target. */
async function loadAll(): Promise<
  { modules: Exports[]; selftests: Map<string, Exports & { fns: Record<string, unknown> }> }
> {
  const modules: Exports[] = [];
  const selftests = new Map<string, Exports & { fns: Record<string, unknown> }>();
  const builds = availableBuilds();
  for (const build of builds) {
    const m = await KernelModule.load(build);
    modules.push(exportsOf(`sqz-${build}.wasm`, m.exports as unknown as Record<string, unknown>));
    const file = `kernels/build/sqz-selftest-${build}.wasm`;
    const { instance } = await WebAssembly.instantiate(await Deno.readFile(new URL(file, root)), {
      env: { abort },
    });
    const fns = instance.exports as Record<string, unknown>;
    const e = { ...exportsOf(file, fns), fns };
    modules.push(e);
    selftests.set(build, e);
  }
  // Other targets (e.g. the -mt builds, which import a shared memory): names only, from the
  // compiled module, when this runtime can compile them.
  const config = JSON.parse(await Deno.readTextFile(new URL("asconfig.json", root)));
  for (const [target, opts] of Object.entries(config.targets) as [string, { outFile: string }][]) {
    if ((builds as string[]).includes(target)) continue;
    const bytes = await Deno.readFile(new URL(opts.outFile, root));
    if (!WebAssembly.validate(bytes)) continue;
    const names = WebAssembly.Module.exports(new WebAssembly.Module(bytes));
    modules.push({
      where: opts.outFile,
      functions: new Map(),
      names: new Set(names.map((e) => e.name)),
    });
  }
  return { modules, selftests };
}

const { modules, selftests } = await loadAll();

/** Table rows `| \`name\` | \`(a, b, …) → …\` | …`: name → parameter count. */
function signatureRows(md: string): Map<string, number> {
  const rows = new Map<string, number>();
  for (const line of md.split("\n")) {
    const m = /^\|\s*`((?:sqz|SQZ)_\w+)`\s*\|\s*`\(([^)`]*)\)[^`]*`/.exec(line);
    if (!m) continue;
    assert(!rows.has(m[1]), `kernels/README.md has two signature rows for ${m[1]}`);
    rows.set(m[1], m[2].trim() === "" ? 0 : m[2].split(",").length);
  }
  return rows;
}

const isAbiName = (name: string) => /^(sqz|SQZ)_/.test(name);

Deno.test("kernels/README.md documents every sqz_ export with its parameter count", () => {
  const rows = signatureRows(readme);
  const missing = new Set<string>();
  for (const mod of modules) {
    for (const name of mod.names) {
      if (!isAbiName(name)) continue;
      if (!readme.includes("`" + name + "`")) missing.add(`${name} (${mod.where})`);
    }
    for (const [name, params] of mod.functions) {
      if (!isAbiName(name)) continue;
      const documented = rows.get(name);
      assert(
        documented !== undefined,
        `kernels/README.md has no table row \`${name}\` | \`(…)\` for the export of ${mod.where}`,
      );
      assert.equal(
        documented,
        params,
        `kernels/README.md lists ${documented} parameters for ${name}; ${mod.where} takes ${params}`,
      );
    }
  }
  assert.equal(
    missing.size,
    0,
    `exports not mentioned as \`name\` in kernels/README.md: ${[...missing].join(", ")}`,
  );
});

Deno.test("every sqz_ name kernels/README.md mentions is exported", () => {
  const all = new Set(modules.flatMap((m) => [...m.names]));
  const unknown = new Set<string>();
  for (const [token] of readme.matchAll(/\b(?:sqz|SQZ)_[A-Za-z0-9_*]*/g)) {
    if (token.includes("*") || token.endsWith("_")) {
      // A pattern (`sqz_*_conv2d`, `sqz_selftest_*`): some export must match it.
      const re = new RegExp(
        "^" + token.replaceAll("*", "[A-Za-z0-9_]*") + (token.endsWith("_") ? "" : "$"),
      );
      if (![...all].some((name) => re.test(name))) unknown.add(token);
    } else if (!all.has(token)) unknown.add(token);
  }
  assert.equal(
    unknown.size,
    0,
    `kernels/README.md names what no module exports (move it to a "planned" section?): ` +
      [...unknown].join(", "),
  );
});

Deno.test("the self-test hashes in kernels/README.md are what the self-test modules return", () => {
  const quoted = new Map<string, number>();
  for (const line of readme.split("\n")) {
    const m = /^\|\s*`(sqz_selftest_\w+)`.*\|\s*(\d+)\s*\|\s*$/.exec(line);
    if (m) quoted.set(m[1], Number(m[2]));
  }
  assert(quoted.size > 0, "kernels/README.md quotes no self-test hashes");
  for (const [build, mod] of selftests) {
    const exported = [...mod.functions.keys()].filter((n) => n.startsWith("sqz_selftest_"));
    assert.deepEqual([...quoted.keys()].sort(), exported.sort(), `self-tests of ${build}`);
    for (const [name, want] of quoted) {
      const got = (mod.fns[name] as () => number)() >>> 0; // unsigned, as wasm-interp prints
      assert.equal(got, want, `${name} of sqz-selftest-${build}.wasm`);
    }
  }
});
