// /v1/models: upload (raw ONNX body or multipart with external data), list, get, delete,
// download.
import { type Context, Hono } from "hono";
import type { AppEnv } from "../context.ts";
import type { Deps } from "../app.ts";
import { modelView } from "../catalog.ts";
import { badRequest, unsupportedMedia } from "../errors.ts";
import { parseForm, readBody, uploadLimits } from "./limits.ts";

const RAW_TYPES = ["", "application/octet-stream", "application/x-onnx", "application/onnx"];

export interface Upload {
  bytes: Uint8Array;
  externalData?: Record<string, Uint8Array>;
  name?: string;
}

/** A multipart body (read within the route's limits), parsed. */
export async function formOf(c: Context<AppEnv>): Promise<FormData> {
  const bytes = await readBody(c);
  try {
    return await parseForm(bytes, c.req.header("content-type") ?? "");
  } catch (e) {
    throw badRequest(`malformed multipart body: ${(e as Error).message}`);
  }
}

/** Test hook (SQZ_TEST_REQUEST_DELAY_MS): a slow handler, after its body was read. */
export async function testDelay(deps: Deps): Promise<void> {
  const ms = deps.config.testRequestDelayMs;
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}

/**
 * The model in a request: a raw body (name from `?name=`), or multipart/form-data with a file
 * field `model`, optional file fields `external` (each file's name is the `location` the model
 * refers to) and an optional text field `name`.
 */
export async function readModelUpload(c: Context<AppEnv>): Promise<Upload> {
  const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (type === "multipart/form-data") {
    const form = await formOf(c);
    let bytes: Uint8Array | undefined, name: string | undefined;
    const externalData: Record<string, Uint8Array> = {};
    for (const [key, value] of form.entries()) {
      if (key === "model") {
        if (typeof value === "string") throw badRequest("'model' must be a file field");
        if (bytes) throw badRequest("more than one 'model' file");
        bytes = new Uint8Array(await value.arrayBuffer());
      } else if (key === "external") {
        if (typeof value === "string") throw badRequest("'external' must be a file field");
        if (value.name in externalData) {
          throw badRequest(`external data file '${value.name}' given twice`);
        }
        externalData[value.name] = new Uint8Array(await value.arrayBuffer());
      } else if (key === "name") {
        if (typeof value !== "string") throw badRequest("'name' must be a text field");
        name = value;
      } else {
        throw badRequest(`unknown form field '${key.slice(0, 40)}' (model, external, name)`);
      }
    }
    if (!bytes) throw badRequest("the form has no 'model' file");
    return {
      bytes,
      name,
      externalData: Object.keys(externalData).length ? externalData : undefined,
    };
  }
  if (!RAW_TYPES.includes(type)) {
    throw unsupportedMedia(
      `send the ONNX file as application/octet-stream or multipart/form-data, not '${type}'`,
    );
  }
  return { bytes: await readBody(c), name: c.req.query("name") };
}

export function modelRoutes(deps: Deps): Hono<AppEnv> {
  const { catalog, store } = deps;
  const app = new Hono<AppEnv>();

  app.post(
    "/v1/models",
    uploadLimits(deps),
    async (c) => {
      const upload = await readModelUpload(c);
      await testDelay(deps);
      const m = await catalog.create(upload, c.get("deadline"));
      c.set("modelId", m.id);
      deps.log.info("model created", { model: m.id, name: m.name, bytes: m.bytes });
      return c.json(modelView(m), 201, { Location: `/v1/models/${m.id}` });
    },
  );

  app.get("/v1/models", (c) => {
    return c.json({ models: store.listModels().map(modelView) });
  });

  app.get("/v1/models/:id", (c) => {
    const m = catalog.resolve(c.req.param("id"));
    c.set("modelId", m.id);
    return c.json(modelView(m));
  });

  app.delete("/v1/models/:id", async (c) => {
    const m = catalog.resolve(c.req.param("id"));
    c.set("modelId", m.id);
    await catalog.remove(m);
    c.set("modelDeleted", true);
    deps.log.info("model deleted", { model: m.id });
    return c.body(null, 204);
  });

  app.get("/v1/models/:id/artifact", async (c) => {
    const m = catalog.resolve(c.req.param("id"));
    c.set("modelId", m.id);
    const location = c.req.query("external");
    let sha = m.sha256, filename = `${m.name ?? m.id}.onnx`;
    if (location !== undefined) {
      const f = m.external.find((x) => x.location === location);
      if (!f) {
        throw badRequest(`model '${m.id}' has no external data file '${location.slice(0, 80)}'`);
      }
      sha = f.sha256;
      filename = location.split("/").pop()!.replace(/[^A-Za-z0-9._-]/g, "_");
    }
    if (c.req.header("if-none-match") === `"${sha}"`) return c.body(null, 304);
    const file = await Deno.open(deps.artifacts.path(sha));
    const { size } = await file.stat();
    return c.body(file.readable, 200, {
      "Content-Type": "application/octet-stream",
      "Content-Length": String(size),
      "Content-Disposition": `attachment; filename="${filename}"`,
      ETag: `"${sha}"`,
    });
  });

  return app;
}
