// Node built-in modules where the host has them (Deno, Node, Bun), without a static
// `import "node:…"`: the browser bundle (dist/sqz.js) must load where no such module exists.
// process.getBuiltinModule is synchronous (Node ≥ 20.16, Deno 2), so sync callers such as the
// size accounting keep their signatures; in a browser this returns undefined and callers take
// their portable path.
import type * as Zlib from "node:zlib";

interface ProcessWithBuiltins {
  getBuiltinModule?: (id: string) => unknown;
}

function builtin<T>(id: string): T | undefined {
  const p = (globalThis as { process?: ProcessWithBuiltins }).process;
  return p?.getBuiltinModule?.(id) as T | undefined;
}

/** node:zlib, or undefined in a browser. */
export const nodeZlib = (): typeof Zlib | undefined => builtin<typeof Zlib>("node:zlib");
