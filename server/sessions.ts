// Inference sessions by model id, kept loaded within a memory budget: least recently used
// sessions are released first. A session's cost is its Wasm linear memory (each Session has its
// own kernel instance: packed weights plus the activation arena, which grows on the first run
// of a new batch size), re-measured after every use.
//
// A request leases its session; eviction never releases a session that is leased (it is
// released when the last lease ends), so a request never sees its session disappear.
import { Session } from "../src/mod.ts";
import type { ServerMetrics } from "./metrics.ts";

export interface ModelSource {
  bytes: Uint8Array;
  externalData?: Record<string, Uint8Array>;
}

export interface Lease {
  session: Session;
  release(): void;
}

interface Entry {
  id: string;
  session?: Session;
  loading?: Promise<Session>;
  leases: number;
  lastUsed: number;
  bytes: number;
  /** Removed from the cache while leased: release when the last lease ends. */
  doomed: boolean;
}

export class SessionCache {
  #entries = new Map<string, Entry>();
  #tick = 0;

  constructor(
    private readonly budgetBytes: number,
    private readonly load: (id: string) => Promise<ModelSource>,
    private readonly metrics?: ServerMetrics,
    private readonly backend: "wasm" | "webgpu" | "auto" = "wasm",
  ) {}

  /** The backend a loaded model's session runs on, or the configured one before it loads. */
  backendOf(id: string): string {
    return this.#entries.get(id)?.session?.backend ?? this.backend;
  }

  /** Wasm memory of the cached sessions, by model id. */
  memoryByModel(): [string, number][] {
    return [...this.#entries.values()].filter((e) => e.session).map((e) => [e.id, e.bytes]);
  }

  get totalBytes(): number {
    let n = 0;
    for (const e of this.#entries.values()) n += e.bytes;
    return n;
  }

  get size(): number {
    return this.#entries.size;
  }

  has(id: string): boolean {
    return !!this.#entries.get(id)?.session;
  }

  async acquire(id: string): Promise<Lease> {
    let e = this.#entries.get(id);
    if (!e) {
      e = { id, leases: 0, lastUsed: 0, bytes: 0, doomed: false };
      this.#entries.set(id, e);
      const entry = e;
      // Through a promise, so a loader that throws at once is handled like one that rejects.
      entry.loading = Promise.resolve().then(() => this.load(id)).then((src) =>
        Session.create(src.bytes, { externalData: src.externalData, backend: this.backend })
      ).then((s) => {
        this.metrics?.sessionLoads.inc();
        entry.session = s;
        entry.bytes = s.kernels.memory.buffer.byteLength;
        return s;
      }, (err) => {
        if (this.#entries.get(id) === entry) this.#entries.delete(id);
        throw err;
      }).finally(() => {
        entry.loading = undefined;
      });
    }
    e.leases++;
    e.lastUsed = ++this.#tick;
    let session: Session;
    try {
      session = e.session ?? await e.loading!;
    } catch (err) {
      e.leases--;
      throw err;
    }
    const entry = e;
    let done = false;
    return {
      session,
      release: () => {
        if (done) return;
        done = true;
        entry.leases--;
        if (entry.doomed) {
          if (entry.leases === 0) entry.session?.release();
          return;
        }
        entry.bytes = session.kernels.memory.buffer.byteLength;
        this.#enforceBudget(entry);
      },
    };
  }

  /** Puts a session made elsewhere (the upload's validation) in the cache. */
  adopt(id: string, session: Session): void {
    if (this.#entries.has(id)) {
      session.release();
      return;
    }
    this.#entries.set(id, {
      id,
      session,
      leases: 0,
      lastUsed: ++this.#tick,
      bytes: session.kernels.memory.buffer.byteLength,
      doomed: false,
    });
    this.#enforceBudget(this.#entries.get(id)!);
  }

  /** Drops a model's session (deleted model). */
  evict(id: string): void {
    const e = this.#entries.get(id);
    if (!e) return;
    this.#entries.delete(id);
    this.#drop(e);
  }

  #drop(e: Entry): void {
    e.doomed = true;
    if (e.leases === 0) e.session?.release();
    else if (!e.session) {
      e.loading?.then((s) => {
        if (e.leases === 0) s.release();
      }, () => {});
    }
  }

  /** Evicts idle sessions, least recently used first, until within budget (keeps `keep`). */
  #enforceBudget(keep: Entry): void {
    if (this.totalBytes <= this.budgetBytes) return;
    const idle = [...this.#entries.values()]
      .filter((e) => e !== keep && e.leases === 0 && e.session)
      .sort((a, b) => a.lastUsed - b.lastUsed);
    for (const e of idle) {
      if (this.totalBytes <= this.budgetBytes) break;
      this.#entries.delete(e.id);
      this.#drop(e);
      this.metrics?.sessionEvictions.inc();
    }
  }

  close(): void {
    for (const e of [...this.#entries.values()]) this.evict(e.id);
  }
}
