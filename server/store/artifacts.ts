// Content-addressed files: <data>/artifacts/<sha256 in lowercase hex>, the SHA-256 of the
// file's bytes. A file is written to <data>/tmp/<uuid>, fsynced, renamed into place (atomic on
// one filesystem) and the directory fsynced, so a name in artifacts/ always holds the complete
// bytes it names; whatever a crash leaves in tmp/ is deleted at the next start.
//
// Names are only ever made from validated hex digests, never from client input, so no path
// traversal through artifact names is possible.
import { ArgumentError } from "../../src/mod.ts";

const SHA_RE = /^[0-9a-f]{64}$/;

export function isSha256(s: string): boolean {
  return SHA_RE.test(s);
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(
    await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>),
  );
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Writes `bytes` to `target` atomically: to `tmp` (a fresh name on the same filesystem), fsync,
 * rename, then fsync of `dir` so the rename survives a crash. Nothing is left at `tmp` on error.
 */
export async function writeAtomic(
  tmp: string,
  target: string,
  dir: string,
  bytes: Uint8Array,
  mode: number,
): Promise<void> {
  const f = await Deno.open(tmp, { write: true, createNew: true, mode });
  try {
    let off = 0;
    while (off < bytes.length) off += await f.write(bytes.subarray(off));
    await f.sync();
  } catch (e) {
    f.close();
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  f.close();
  try {
    await Deno.rename(tmp, target);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  await fsyncDir(dir);
}

async function fsyncDir(dir: string): Promise<void> {
  // Makes the rename durable. Not every platform lets a directory be opened; that is fine.
  try {
    const f = await Deno.open(dir, { read: true });
    try {
      await f.sync();
    } finally {
      f.close();
    }
  } catch { /* best effort */ }
}

export class ArtifactStore {
  readonly dir: string;
  readonly tmpDir: string;
  /** Artifacts being written or just written, not yet referenced in the database. */
  #pins = new Map<string, number>();

  private constructor(dataDir: string) {
    this.dir = `${dataDir}/artifacts`;
    this.tmpDir = `${dataDir}/tmp`;
  }

  /** Opens (creating) the store and deletes what an interrupted write left in tmp/. */
  static async open(dataDir: string): Promise<ArtifactStore> {
    const s = new ArtifactStore(dataDir);
    await Deno.mkdir(s.dir, { recursive: true });
    await Deno.mkdir(s.tmpDir, { recursive: true });
    for await (const e of Deno.readDir(s.tmpDir)) {
      await Deno.remove(`${s.tmpDir}/${e.name}`, { recursive: true }).catch(() => {});
    }
    return s;
  }

  path(sha: string): string {
    if (!isSha256(sha)) throw new ArgumentError(`not a SHA-256 digest: '${sha}'`);
    return `${this.dir}/${sha}`;
  }

  /**
   * Stores `bytes` and returns their digest. The artifact stays pinned (safe from
   * removeUnreferenced) until `unpin` is called, once the database refers to it.
   */
  async put(bytes: Uint8Array): Promise<string> {
    const sha = await sha256Hex(bytes);
    this.#pins.set(sha, (this.#pins.get(sha) ?? 0) + 1);
    try {
      const target = this.path(sha);
      const existing = await Deno.stat(target).catch(() => undefined);
      if (existing?.isFile && existing.size === bytes.length) return sha;
      const tmp = `${this.tmpDir}/${crypto.randomUUID()}`;
      await writeAtomic(tmp, target, this.dir, bytes, 0o644);
      return sha;
    } catch (e) {
      this.unpin(sha);
      throw e;
    }
  }

  unpin(sha: string): void {
    const n = (this.#pins.get(sha) ?? 0) - 1;
    if (n > 0) this.#pins.set(sha, n);
    else this.#pins.delete(sha);
  }

  async has(sha: string): Promise<boolean> {
    return (await Deno.stat(this.path(sha)).catch(() => undefined))?.isFile ?? false;
  }

  read(sha: string): Promise<Uint8Array> {
    return Deno.readFile(this.path(sha));
  }

  async list(): Promise<string[]> {
    const out: string[] = [];
    for await (const e of Deno.readDir(this.dir)) if (e.isFile) out.push(e.name);
    return out.sort();
  }

  /** Deletes the artifacts among `candidates` (all when omitted) that `keep` lacks. */
  async removeUnreferenced(keep: Set<string>, candidates?: Iterable<string>): Promise<number> {
    let removed = 0;
    for (const name of candidates ?? await this.list()) {
      if (keep.has(name) || this.#pins.has(name) || !isSha256(name)) continue;
      try {
        await Deno.remove(this.path(name));
        removed++;
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    return removed;
  }
}
