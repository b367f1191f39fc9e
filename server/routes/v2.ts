// The Open Inference Protocol (KServe v2) over HTTP/REST: server and model metadata, health,
// and inference with JSON tensors, plus Triton's binary tensor extension.
//
// A model is addressed by its id or its name; its only version is "1". Inputs are checked
// against the model's declared inputs (names, datatype, rank, fixed dims, element count, every
// value's type and range) before anything runs; the request's total element count is limited.
//
// Binary tensor extension (what tritonclient sends by default): the request body is the JSON
// header, `Inference-Header-Content-Length` bytes long, followed by the raw tensors in the
// order of the inputs that have `parameters.binary_data_size` (little-endian, BOOL one byte per
// element). Outputs asked for with `parameters.binary_data: true` (or all of them with the
// request parameter `binary_data_output: true`) come back the same way.
//
// JSON cannot hold NaN or ±Infinity: such output values are written as null (ask for binary
// outputs to get them exactly). JSON input values must be finite in their datatype: an FP32
// value beyond ±3.4028235e38 or an FP16 one beyond ±65504 (after rounding to the type) is
// refused, not turned into ±Infinity. FP16 travels in JSON as numbers (rounded to the nearest
// half, ties to even) and in binary as IEEE 754 binary16 bits.
import { Hono } from "hono";
import { arrayCtor, type Tensor, type TensorType } from "../../src/mod.ts";
import type { AppEnv } from "../context.ts";
import type { Deps } from "../app.ts";
import type { ModelRecord, TensorSpec } from "../store/db.ts";
import { badRequest, HttpError, notFound } from "../errors.ts";
import { limits, readBody } from "./limits.ts";

export const SERVER_VERSION = "0.1.0";
export const MODEL_VERSION = "1";

/** KServe v2 datatype of each engine tensor type. */
export const DATATYPE_OF: Partial<Record<TensorType, string>> = {
  float32: "FP32",
  float64: "FP64",
  float16: "FP16",
  int8: "INT8",
  uint8: "UINT8",
  int16: "INT16",
  uint16: "UINT16",
  int32: "INT32",
  uint32: "UINT32",
  int64: "INT64",
  uint64: "UINT64",
  bool: "BOOL",
};

type Ctor =
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | Int8ArrayConstructor
  | Uint8ArrayConstructor
  | Int16ArrayConstructor
  | Uint16ArrayConstructor
  | Int32ArrayConstructor
  | Uint32ArrayConstructor
  | BigInt64ArrayConstructor
  | BigUint64ArrayConstructor;

/** Integer ranges of the JSON-encoded integer types. */
const RANGE: Partial<Record<TensorType, [number, number]>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint64: [0, Number.MAX_SAFE_INTEGER],
};

/** x rounded to an integer, ties to even. */
function roundEven(x: number): number {
  const f = Math.floor(x), d = x - f;
  return d < 0.5 ? f : d > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;
}

/**
 * The IEEE 754 binary16 bits of `v`, rounded to nearest (ties to even) directly from the
 * double (no double rounding through float32); undefined when it rounds to ±Infinity.
 */
export function halfBits(v: number): number | undefined {
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a === 0) return sign;
  if (a >= 65520) return undefined; // halfway between 65504 and 2^16 and up: rounds to ∞
  if (a < 2 ** -14) return sign | roundEven(a * 2 ** 24); // subnormal, in units of 2^-24
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  let m = roundEven((a / 2 ** e - 1) * 1024); // exact: a / 2^e is in [1, 2)
  if (m === 1024) {
    m = 0;
    e++;
  }
  if (e > 15) return undefined;
  return sign | ((e + 15) << 10) | m;
}

/** The value of binary16 bits. */
export function halfValue(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const shapeOf = (dims: TensorSpec["dims"]) =>
  dims.map((d) => (typeof d === "number" && d > 0 ? d : -1));

function tensorMetadata(t: TensorSpec) {
  return {
    name: t.name,
    datatype: DATATYPE_OF[t.type as TensorType] ?? t.type.toUpperCase(),
    shape: shapeOf(t.dims),
  };
}

export function modelMetadata(m: ModelRecord, backend?: string) {
  return {
    name: m.name ?? m.id,
    versions: [MODEL_VERSION],
    platform: "sqz_onnx",
    // sqz's extension: where the model's session runs (SQZ_BACKEND; "webgpu" once it does).
    ...(backend ? { backend } : {}),
    inputs: m.inputs.map(tensorMetadata),
    outputs: m.outputs.map(tensorMetadata),
  };
}

interface InferInput {
  name: string;
  shape: number[];
  datatype: string;
  data?: unknown;
  parameters?: Record<string, unknown>;
}

interface InferRequest {
  id?: string;
  parameters?: Record<string, unknown>;
  inputs: InferInput[];
  outputs?: { name: string; parameters?: Record<string, unknown> }[];
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Flattens nested arrays into `out` (row-major), refusing more than `max` values. */
function flatten(data: unknown, max: number, what: string): unknown[] {
  if (!Array.isArray(data)) return [data];
  const out: unknown[] = [];
  const stack: [unknown[], number][] = [[data, 0]];
  while (stack.length) {
    const top = stack[stack.length - 1];
    if (top[1] >= top[0].length) {
      stack.pop();
      continue;
    }
    const v = top[0][top[1]++];
    if (Array.isArray(v)) {
      if (stack.length > 32) throw badRequest(`${what}: data is nested too deeply`);
      stack.push([v, 0]);
    } else {
      if (out.length >= max) {
        throw badRequest(`${what}: data holds more than the ${max} values its shape needs`);
      }
      out.push(v);
    }
  }
  return out;
}

/** Validates one input against the model's declaration and makes the engine tensor. */
function readInput(
  input: InferInput,
  spec: TensorSpec,
  binary: Uint8Array | undefined,
  budget: { elements: number; limit: number },
): Tensor {
  const what = `input '${spec.name}'`;
  const type = spec.type as TensorType;
  const want = DATATYPE_OF[type];
  if (!want) throw badRequest(`${what} has type ${type}, which v2 requests cannot carry`);
  if (input.datatype !== want) {
    throw badRequest(
      `${what} must be ${want}, got ${JSON.stringify(input.datatype)}`,
      "invalid_datatype",
    );
  }
  const shape = input.shape;
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw badRequest(`${what}: shape must be an array of non-negative integers`, "invalid_shape");
  }
  if (spec.dims.length && shape.length !== spec.dims.length) {
    throw badRequest(
      `${what} must have rank ${spec.dims.length} (shape [${shapeOf(spec.dims)}]), got [${shape}]`,
      "invalid_shape",
    );
  }
  shape.forEach((d, i) => {
    const w = spec.dims[i];
    if (typeof w === "number" && w > 0 && w !== d) {
      throw badRequest(
        `${what} must have shape [${shapeOf(spec.dims)}], got [${shape}]`,
        "invalid_shape",
      );
    }
  });
  let count = 1;
  for (const d of shape) count *= d;
  if (count > budget.elements) {
    throw new HttpError(
      413,
      "too_many_elements",
      `the request's tensors hold more than the limit of ${budget.limit} elements per request ` +
        `(${what} alone has ${count}; SQZ_MAX_TENSOR_ELEMENTS)`,
    );
  }
  budget.elements -= count;
  const Ctor = arrayCtor(type) as unknown as Ctor;
  const dims = [...shape];
  const size = input.parameters?.binary_data_size;
  if (size !== undefined) {
    if (!binary) {
      throw badRequest(`${what} has binary_data_size but the request has no binary part`);
    }
    const bytes = count * Ctor.BYTES_PER_ELEMENT;
    if (size !== bytes || binary.length < bytes) {
      throw badRequest(`${what}: binary_data_size must be ${bytes} bytes for shape [${shape}]`);
    }
    const data = new Ctor(count);
    new Uint8Array(data.buffer).set(binary.subarray(0, bytes));
    if (type === "bool" && (data as Uint8Array).some((b) => b > 1)) {
      throw badRequest(`${what}: BOOL values must be bytes 0 or 1`);
    }
    return { type, dims, data } as Tensor;
  }
  if (input.data === undefined) throw badRequest(`${what} has no data`);
  const flat = flatten(input.data, count, what);
  if (flat.length !== count) {
    throw badRequest(
      `${what} has ${flat.length} values, shape [${shape}] needs ${count}`,
      "invalid_shape",
    );
  }
  if (type === "bool") {
    const data = new Uint8Array(count);
    flat.forEach((v, i) => {
      if (v === true || v === 1) data[i] = 1;
      else if (v !== false && v !== 0) throw badRequest(`${what}: value ${i} is not a BOOL`);
    });
    return { type, dims, data } as Tensor;
  }
  const range = RANGE[type];
  const data = new Ctor(count);
  const big = type === "int64" || type === "uint64";
  const outOfRange = (i: number, v: number, max: string) =>
    badRequest(
      `${what}: value ${i} (${v}) is outside the finite range of ${want} (±${max})`,
      "invalid_datatype",
    );
  for (let i = 0; i < count; i++) {
    const v = flat[i];
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw badRequest(`${what}: value ${i} is not a number`, "invalid_datatype");
    }
    if (range && (!Number.isInteger(v) || v < range[0] || v > range[1])) {
      throw badRequest(`${what}: value ${i} (${v}) is not a ${want} integer`, "invalid_datatype");
    }
    if (big) (data as BigInt64Array)[i] = BigInt(v);
    else if (type === "float16") {
      const h = halfBits(v);
      if (h === undefined) throw outOfRange(i, v, "65504");
      (data as Uint16Array)[i] = h;
    } else {
      (data as Float32Array)[i] = v;
      if (type === "float32" && !Number.isFinite(data[i] as number)) {
        throw outOfRange(i, v, "3.4028235e38");
      }
    }
  }
  return { type, dims, data } as Tensor;
}

/** JSON values of an output tensor. */
function jsonData(t: Tensor): unknown[] {
  if (t.type === "bool") return Array.from(t.data as Uint8Array, (b) => b !== 0);
  if (t.type === "float16") return Array.from(t.data as Uint16Array, halfValue);
  if (t.data instanceof BigInt64Array || t.data instanceof BigUint64Array) {
    return Array.from(t.data as BigInt64Array, (b) => Number(b));
  }
  return Array.from(t.data as Float32Array);
}

function parseRequest(body: Uint8Array, headerLength: string | undefined) {
  let jsonBytes = body, binary: Uint8Array | undefined;
  if (headerLength !== undefined) {
    const n = Number(headerLength);
    if (!Number.isSafeInteger(n) || n < 0 || n > body.length) {
      throw badRequest("Inference-Header-Content-Length must be an integer within the body size");
    }
    jsonBytes = body.subarray(0, n);
    binary = body.subarray(n);
  }
  let req: unknown;
  try {
    req = JSON.parse(new TextDecoder().decode(jsonBytes));
  } catch (e) {
    throw badRequest(`the inference request is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(req) || !Array.isArray(req.inputs)) {
    throw badRequest(
      'the inference request must be { "inputs": [ { name, shape, datatype, data } ] }',
    );
  }
  return { req: req as unknown as InferRequest, binary };
}

export function v2Routes(deps: Deps): Hono<AppEnv> {
  const { catalog, sessions, metrics, config } = deps;
  const app = new Hono<AppEnv>();

  app.get(
    "/v2",
    (c) => c.json({ name: "sqz", version: SERVER_VERSION, extensions: ["binary_tensor_data"] }),
  );
  app.get("/v2/health/live", (c) => c.json({ live: true }));
  app.get("/v2/health/ready", (c) => {
    if (!deps.isReady()) {
      throw new HttpError(503, "not_ready", "the server is starting or shutting down");
    }
    return c.json({ ready: true });
  });

  const resolve = (name: string, version: string | undefined): ModelRecord => {
    const m = catalog.resolve(name);
    if (version !== undefined && version !== MODEL_VERSION) {
      throw notFound(`model '${name}' has no version '${version.slice(0, 20)}' (only "1")`);
    }
    return m;
  };

  for (const base of ["/v2/models/:name", "/v2/models/:name/versions/:version"]) {
    app.get(base, (c) => {
      const m = resolve(c.req.param("name")!, c.req.param("version"));
      c.set("modelId", m.id);
      return c.json(modelMetadata(m, deps.sessions.backendOf(m.id)));
    });

    app.get(`${base}/ready`, async (c) => {
      const m = resolve(c.req.param("name")!, c.req.param("version"));
      c.set("modelId", m.id);
      // Ready means loaded: this loads the session if the cache does not hold it.
      const lease = await sessions.acquire(m.id);
      lease.release();
      return c.json({ name: m.name ?? m.id, ready: true });
    });

    app.post(`${base}/infer`, limits({ maxBytes: config.maxInferBytes }), async (c) => {
      const m = resolve(c.req.param("name")!, c.req.param("version"));
      c.set("modelId", m.id);
      let outcome = "failure";
      try {
        const body = await readBody(c);
        const { req, binary } = parseRequest(body, c.req.header("inference-header-content-length"));
        const res = await infer(m, req, binary);
        outcome = "success";
        return res;
      } finally {
        // Not for a model deleted meanwhile: its series are gone and must stay gone.
        if (!metrics.isForgotten(m.id)) metrics.inferRequests.inc({ model: m.id, outcome });
      }
    });
  }

  async function infer(m: ModelRecord, req: InferRequest, binary?: Uint8Array): Promise<Response> {
    // Inputs: each declared input exactly once, nothing else.
    const feeds: Record<string, Tensor> = {};
    const budget = { elements: config.maxTensorElements, limit: config.maxTensorElements };
    let offset = 0;
    for (const input of req.inputs) {
      if (!isObject(input) || typeof input.name !== "string") {
        throw badRequest("every input must be an object with a name");
      }
      const spec = m.inputs.find((s) => s.name === input.name);
      if (!spec) {
        throw badRequest(
          `'${input.name.slice(0, 80)}' is not an input of the model (inputs: ${
            m.inputs.map((s) => s.name).join(", ")
          })`,
        );
      }
      if (feeds[input.name]) throw badRequest(`input '${input.name}' is given twice`);
      if (input.parameters !== undefined && !isObject(input.parameters)) {
        throw badRequest(`input '${input.name}': parameters must be an object`);
      }
      const size = input.parameters?.binary_data_size;
      if (size !== undefined && (!Number.isSafeInteger(size) || (size as number) < 0)) {
        throw badRequest(`input '${input.name}': binary_data_size must be a non-negative integer`);
      }
      const part = size !== undefined && binary
        ? binary.subarray(offset, offset + (size as number))
        : undefined;
      if (size !== undefined) offset += size as number;
      feeds[input.name] = readInput(input, spec, part, budget);
    }
    for (const s of m.inputs) {
      if (!feeds[s.name]) throw badRequest(`input '${s.name}' is missing`);
    }
    if (binary && offset !== binary.length) {
      throw badRequest(
        `the binary part holds ${binary.length} bytes, the inputs declare ${offset}`,
      );
    }
    // Outputs: all by default, or the ones asked for.
    const binaryAll = req.parameters?.binary_data_output === true;
    let wanted: { name: string; binary: boolean }[];
    if (req.outputs !== undefined) {
      if (!Array.isArray(req.outputs) || !req.outputs.length) {
        throw badRequest("outputs must be a non-empty array of { name }");
      }
      wanted = req.outputs.map((o) => {
        if (!isObject(o) || typeof o.name !== "string") {
          throw badRequest("every requested output must be an object with a name");
        }
        if (!m.outputs.some((s) => s.name === o.name)) {
          throw badRequest(`'${o.name.slice(0, 80)}' is not an output of the model`);
        }
        const p = o.parameters as Record<string, unknown> | undefined;
        return {
          name: o.name,
          binary: p?.binary_data === true || (binaryAll && p?.binary_data !== false),
        };
      });
      if (new Set(wanted.map((w) => w.name)).size !== wanted.length) {
        throw badRequest("an output is requested twice");
      }
    } else wanted = m.outputs.map((s) => ({ name: s.name, binary: binaryAll }));

    const lease = await sessions.acquire(m.id);
    let results: Record<string, Tensor>;
    try {
      const t0 = performance.now();
      results = await lease.session.run(feeds, { outputs: wanted.map((w) => w.name) });
      if (!metrics.isForgotten(m.id)) {
        metrics.inferDuration.observe({ model: m.id }, (performance.now() - t0) / 1000);
      }
    } finally {
      lease.release();
    }

    const parts: Uint8Array[] = [];
    const outputs = wanted.map((w) => {
      const t = results[w.name];
      const head = {
        name: w.name,
        datatype: DATATYPE_OF[t.type] ?? t.type.toUpperCase(),
        shape: [...t.dims],
      };
      if (w.binary) {
        const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
        parts.push(bytes);
        return { ...head, parameters: { binary_data_size: bytes.length } };
      }
      return { ...head, data: jsonData(t) };
    });
    const response = {
      model_name: m.name ?? m.id,
      model_version: MODEL_VERSION,
      ...(typeof req.id === "string" ? { id: req.id } : {}),
      outputs,
    };
    if (!parts.length) return Response.json(response);
    const json = new TextEncoder().encode(JSON.stringify(response));
    const total = json.length + parts.reduce((a, p) => a + p.length, 0);
    const body = new Uint8Array(total);
    body.set(json);
    let at = json.length;
    for (const p of parts) {
      body.set(p, at);
      at += p.length;
    }
    return new Response(body, {
      headers: {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": String(json.length),
      },
    });
  }

  return app;
}
