// A search's finished trials as JSONL on a file: one trial a line, appended atomically (the
// whole line in one write on a file opened for append, then fsync), so a kill -9 loses at most
// the trial in flight. `load` ignores a torn last line.
import { ArgumentError } from "../errors.ts";
import type { SearchStateStore, Trial } from "./types.ts";

export class FileStateStore implements SearchStateStore {
  constructor(readonly path: string) {
    if (typeof path !== "string" || !path) throw new ArgumentError("state: a file path is needed");
  }

  async load(): Promise<Trial[]> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return [];
      throw e;
    }
    const lines = text.split("\n");
    const out: Trial[] = [];
    for (const line of lines) {
      if (!line.trim()) continue;
      // A line that does not parse is one a crash cut short (a torn write): it is ignored;
      // append() starts every later line on a fresh line, so it can sit before others.
      try {
        const t = JSON.parse(line) as Trial;
        if (typeof t?.hash === "string" && t.assignment && t.metrics) out.push(t);
      } catch {
        // torn
      }
    }
    return out;
  }

  async append(t: Trial): Promise<void> {
    const bytes = new TextEncoder().encode(JSON.stringify(t) + "\n");
    const f = await Deno.open(this.path, { append: true, create: true });
    try {
      // A torn last line (a crash mid-write) would glue onto this one: start on a fresh line.
      const st = await f.stat();
      let buf = bytes;
      if (st.size > 0) {
        const r = await Deno.open(this.path, { read: true });
        try {
          await r.seek(st.size - 1, Deno.SeekMode.Start);
          const last = new Uint8Array(1);
          await r.read(last);
          if (last[0] !== 10) buf = new Uint8Array([10, ...bytes]);
        } finally {
          r.close();
        }
      }
      let off = 0;
      while (off < buf.length) off += await f.write(buf.subarray(off));
      await f.sync();
    } finally {
      f.close();
    }
  }
}

/** An in-memory store (tests, or a caller that persists trials itself). */
export class MemoryStateStore implements SearchStateStore {
  trials: Trial[] = [];
  load(): Promise<Trial[]> {
    return Promise.resolve(structuredClone(this.trials));
  }
  append(t: Trial): Promise<void> {
    this.trials.push(structuredClone(t));
    return Promise.resolve();
  }
}
