// The model catalog: registering (validated by the engine before anything is stored), looking
// up by id or name, reading back, and deleting models.
import {
  inspectModel,
  ModelError,
  OutOfMemoryError,
  Session,
  SqzError,
  UnsupportedError,
  type ValueMetadata,
} from "../src/mod.ts";
import type { ArtifactStore } from "./store/artifacts.ts";
import type { ExternalFile, ModelRecord, Store, TensorSpec } from "./store/db.ts";
import type { ModelSource, SessionCache } from "./sessions.ts";
import type { ServerMetrics } from "./metrics.ts";
import { badRequest, conflict, notFound } from "./errors.ts";
import { isModelId, isModelName, newId } from "./ids.ts";
import type { Deadline } from "./routes/limits.ts";

/** The model resource as the API returns it. */
export interface ModelView {
  id: string;
  name?: string;
  sha256: string;
  /** The model's size: the .onnx plus its external data files. */
  bytes: number;
  /** With external data: the .onnx file alone (bytes less the external files). */
  graphBytes?: number;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  opHistogram: Record<string, number>;
  externalData?: ExternalFile[];
  parentId?: string;
  jobId?: string;
  createdAt: string;
}

export function modelView(m: ModelRecord): ModelView {
  return {
    id: m.id,
    ...(m.name ? { name: m.name } : {}),
    sha256: m.sha256,
    bytes: m.bytes,
    ...(m.external.length ? { graphBytes: graphBytes(m) } : {}),
    inputs: m.inputs,
    outputs: m.outputs,
    opHistogram: m.opHistogram,
    ...(m.external.length ? { externalData: m.external } : {}),
    ...(m.parentId ? { parentId: m.parentId } : {}),
    ...(m.jobId ? { jobId: m.jobId } : {}),
    createdAt: m.createdAt,
  };
}

/** The .onnx file's bytes of a model record (its `bytes` count the external files too). */
export function graphBytes(m: ModelRecord): number {
  return m.bytes - m.external.reduce((a, f) => a + f.bytes, 0);
}

const spec = (v: ValueMetadata): TensorSpec => ({ name: v.name, type: v.type, dims: [...v.dims] });

/** External data locations are names inside the model, never paths on this server. */
export function checkLocation(location: string): void {
  if (
    !location || location.length > 255 || location.startsWith("/") || location.includes("\\") ||
    location.includes("\0") || location.split("/").some((p) => p === "" || p === "." || p === "..")
  ) {
    throw badRequest(`bad external data file name '${location.slice(0, 80)}'`);
  }
}

/**
 * External data files that record which of them the engine reads: each entry is a getter. The
 * importer looks files up by the `location` the model's tensors name, so what it never asked
 * for is a file the model does not refer to.
 */
function trackedExternalData(
  files: Record<string, Uint8Array>,
): { data: Record<string, Uint8Array>; read: Set<string> } {
  const read = new Set<string>();
  const data: Record<string, Uint8Array> = {};
  for (const [location, bytes] of Object.entries(files)) {
    Object.defineProperty(data, location, {
      enumerable: true,
      get: () => {
        read.add(location);
        return bytes;
      },
    });
  }
  return { data, read };
}

/** A model's bytes and external data files, read from the artifact store. */
export async function modelSource(artifacts: ArtifactStore, m: ModelRecord): Promise<ModelSource> {
  const bytes = await artifacts.read(m.sha256);
  if (!m.external.length) return { bytes };
  const externalData: Record<string, Uint8Array> = {};
  for (const f of m.external) externalData[f.location] = await artifacts.read(f.sha256);
  return { bytes, externalData };
}

export interface NewModel {
  bytes: Uint8Array;
  externalData?: Record<string, Uint8Array>;
  name?: string;
  parentId?: string;
  jobId?: string;
}

export class Catalog {
  constructor(
    readonly store: Store,
    readonly artifacts: ArtifactStore,
    readonly sessions: SessionCache,
    readonly metrics: ServerMetrics,
  ) {}

  /** A model by id or name: 400 for something that is neither, 404 when there is none. */
  resolve(ref: string): ModelRecord {
    if (isModelId(ref)) {
      const m = this.store.getModel(ref);
      if (!m) throw notFound(`no model '${ref}'`);
      return m;
    }
    if (isModelName(ref)) {
      const m = this.store.getModelByName(ref);
      if (!m) throw notFound(`no model named '${ref}'`);
      return m;
    }
    throw badRequest(
      `'${ref.slice(0, 80)}' is neither a model id (m_ and 24 base32 characters) nor a name`,
      "invalid_id",
    );
  }

  /** The bytes Session.create / compress() need for a model. */
  source(m: ModelRecord): Promise<ModelSource> {
    return modelSource(this.artifacts, m);
  }

  checkNewName(name: string | undefined): void {
    if (name === undefined) return;
    if (!isModelName(name)) {
      throw badRequest(
        `bad model name '${name.slice(0, 80)}': 1-64 letters, digits, '.', '_' or '-', ` +
          `starting with a letter or digit (not m_ or j_, which ids use)`,
      );
    }
    if (this.store.getModelByName(name)) throw conflict(`a model named '${name}' exists`);
  }

  /**
   * Validates a model with the engine (Session.create: parse, check, compile) and stores it.
   * Nothing is stored when it does not load, when an external data file is one the model does
   * not refer to, or when the request's deadline has passed at the commit. The session goes
   * into the cache.
   */
  async create(input: NewModel, deadline?: Deadline): Promise<ModelRecord> {
    this.checkNewName(input.name);
    if (!input.bytes.length) throw badRequest("the model is empty");
    for (const loc of Object.keys(input.externalData ?? {})) checkLocation(loc);
    let session: Session;
    try {
      session = await Session.create(input.bytes, { externalData: input.externalData });
    } catch (e) {
      if (e instanceof OutOfMemoryError || e instanceof UnsupportedError) throw e;
      // Whatever the engine says against the model's content is the model's fault.
      const msg = e instanceof SqzError ? e.message : `cannot parse the ONNX model (${e})`;
      throw new ModelError(msg);
    }
    try {
      const ext = input.externalData ? trackedExternalData(input.externalData) : undefined;
      const ops = inspectModel(input.bytes, { externalData: ext?.data }).ops;
      const unused = Object.keys(input.externalData ?? {}).filter((l) => !ext!.read.has(l));
      if (unused.length) {
        const used = [...ext!.read];
        throw badRequest(
          `the model does not refer to the external data file${unused.length > 1 ? "s" : ""} ` +
            `${unused.map((l) => `'${l.slice(0, 80)}'`).join(", ")} (it reads ${
              used.length ? used.map((l) => `'${l}'`).join(", ") : "none"
            }): upload only the files its tensors name`,
        );
      }
      deadline?.check();
      const m = await this.#store(input, {
        inputs: session.inputMetadata.map(spec),
        outputs: session.outputMetadata.map(spec),
        opHistogram: ops,
      }, deadline);
      this.sessions.adopt(m.id, session);
      return m;
    } catch (e) {
      await session.release();
      throw e;
    }
  }

  /**
   * Stores a model whose metadata is already known (a compression result, validated in the
   * job's worker). `inTransaction` runs in the same transaction as the insert.
   */
  async createValidated(
    input: NewModel,
    meta: Pick<ModelRecord, "inputs" | "outputs" | "opHistogram">,
    inTransaction?: (m: ModelRecord) => void,
  ): Promise<ModelRecord> {
    return await this.#store(input, meta, undefined, inTransaction);
  }

  async #store(
    input: NewModel,
    meta: Pick<ModelRecord, "inputs" | "outputs" | "opHistogram">,
    deadline?: Deadline,
    inTransaction?: (m: ModelRecord) => void,
  ): Promise<ModelRecord> {
    const pinned: string[] = [];
    try {
      const sha = await this.artifacts.put(input.bytes);
      pinned.push(sha);
      const external: ExternalFile[] = [];
      for (const [location, data] of Object.entries(input.externalData ?? {})) {
        const s = await this.artifacts.put(data);
        pinned.push(s);
        external.push({ location, sha256: s, bytes: data.length });
      }
      const m: ModelRecord = {
        id: newId("m"),
        name: input.name ?? null,
        sha256: sha,
        // The whole model: the .onnx and its external data files, as compress() reports sizes.
        bytes: input.bytes.length + external.reduce((a, f) => a + f.bytes, 0),
        inputs: meta.inputs,
        outputs: meta.outputs,
        opHistogram: meta.opHistogram,
        external,
        parentId: input.parentId ?? null,
        jobId: input.jobId ?? null,
        createdAt: new Date().toISOString(),
      };
      try {
        this.store.transaction(() => {
          // Checked again inside the transaction: another upload may have taken the name.
          if (m.name && this.store.getModelByName(m.name)) {
            throw conflict(`a model named '${m.name}' exists`);
          }
          this.store.insertModel(m);
          inTransaction?.(m);
          // The commit point: past the request's deadline this throws and nothing is kept.
          deadline?.commit();
        });
      } catch (e) {
        pinned.forEach((s) => this.artifacts.unpin(s));
        await this.artifacts.removeUnreferenced(this.store.referencedArtifacts(), pinned);
        pinned.length = 0;
        throw e;
      }
      return m;
    } finally {
      pinned.forEach((s) => this.artifacts.unpin(s));
    }
  }

  /**
   * Deletes a model, its session and the artifacts nothing else uses. Refused (409) while a
   * queued or running job reads it. Finished jobs and child models keep their links to it as a
   * record (their `modelId` / `parentId` then names a model that is gone).
   */
  async remove(m: ModelRecord): Promise<void> {
    const active = this.store.activeJobsOf(m.id);
    if (active.length) {
      throw conflict(
        `model '${m.id}' is being compressed by job ${active[0].id} (${active[0].state}); ` +
          `delete it when the job has finished`,
      );
    }
    this.store.deleteModel(m.id);
    this.sessions.evict(m.id);
    this.metrics.forgetModel(m.id);
    await this.artifacts.removeUnreferenced(this.store.referencedArtifacts(), [
      m.sha256,
      ...m.external.map((f) => f.sha256),
    ]);
  }
}
