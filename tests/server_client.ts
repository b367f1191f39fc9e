// What the service tests share: a JSON-reading client for a running server and a directory
// listing (to check that nothing is left behind).
import assert from "node:assert/strict";

export interface Json {
  // deno-lint-ignore no-explicit-any
  [k: string]: any;
}

export function client(base: string) {
  const api = (path: string, init: RequestInit = {}) => fetch(`${base}${path}`, init);
  const json = async (res: Response, status: number): Promise<Json> => {
    const text = await res.text();
    assert.equal(res.status, status, `${res.url}: ${text}`);
    return JSON.parse(text);
  };
  return { api, json };
}

/** The names in `dir`, sorted; none when it does not exist. */
export async function listDir(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) out.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}
