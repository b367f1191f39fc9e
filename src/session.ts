// Session: the engine's public face, shaped like onnxruntime-web's InferenceSession.
//
//   const session = await Session.create("model.onnx");
//   const { output } = await session.run({ input: { type: "float32", dims, data } });
//
// create() imports the model, folds constants, simplifies (Identity/Dropout removal, BatchNorm
// folding, activation fusion), assigns the NHWC layout the kernels want, and compiles every node
// to a Wasm kernel op (weights packed once) or a TypeScript op. run() validates the feeds
// against the model's declared types and shapes before anything runs.
import { importModel, readModel } from "./onnx/import.ts";
import type { Dim, Graph, Value } from "./graph/ir.ts";
import { ARRAY_CLASS, elementCount, type Tensor, type TensorType } from "./graph/tensor.ts";
import { inferShapes } from "./graph/shape_inference.ts";
import { foldConstants } from "./graph/fold.ts";
import { eliminateDeadCode, simplify } from "./graph/passes.ts";
import { fuseTransformer } from "./graph/fuse_transformer.ts";
import { fuseDynamicQuantMatMul } from "./graph/fuse_dynamic_quant.ts";
import { lowerToMatMulNBits } from "./graph/lower_nbits.ts";
import type { KernelBuild } from "./kernels/features.ts";
import { KernelModule, MAX_THREADS } from "./kernels/module.ts";
import { TS_OPS } from "./ops/registry.ts";
import { assignLayout, NHWC_DOMAIN } from "./runtime/layout.ts";
import { KERNEL_OPS, nhwcEligible, quantizedEligible } from "./runtime/kernel_ops/index.ts";
import { dropQdqAroundMovement, fuseQdq } from "./graph/qdq.ts";
import {
  Executor,
  type MemoryReport,
  type NodeImpl,
  type NodeProfile,
} from "./runtime/executor.ts";
import { ArgumentError, BackendUnavailableError, ModelError, ShapeError } from "./errors.ts";
import { type GpuContext, gpuContext } from "./runtime/webgpu/device.ts";
import { GPU_OPS } from "./runtime/webgpu/ops.ts";
import type { GpuOp } from "./runtime/webgpu/gpu_op.ts";
import { type BackendName, partition, type Placement } from "./runtime/partition.ts";

export type { MemoryReport, NodeProfile };

export interface SessionOptions {
  /** Kernel build: "auto" (default) picks the best the runtime supports. */
  build?: KernelBuild | "auto";
  /**
   * Threads the kernels run on, this one included (onnxruntime-web's numThreads). Default:
   * the available cores. Where SharedArrayBuffer is missing (a page without cross-origin
   * isolation) or threads fail to start, one thread runs and `info.threadNote` says why.
   */
  threads?: number;
  /** External data files by `location`, when the caller holds the bytes. */
  externalData?: Record<string, Uint8Array>;
  /** Record per-node timings on every run (read them from `session.profile`). */
  profile?: boolean;
  /** Graph optimizations: folding, fusion and the NHWC layout. Default true. */
  optimize?: boolean;
  /**
   * Values to expose as outputs in addition to the model's own, by name (e.g. intermediate
   * activations for calibration or per-layer comparison). They are kept through the passes.
   */
  extraOutputs?: string[];
  /**
   * int4 weights (MatMulNBits; ai.sqz.DequantizeInt4 and DequantizeTernary feeding a MatMul or Gemm):
   * "packed" (default) keeps them at 4 bits in Wasm memory, 14.8% of f32, and multiplies on
   * int8 activations quantized per block of 32 (onnxruntime's accuracy_level 4); "float"
   * decodes them to f32 at load for f32 arithmetic, at f32 memory.
   */
  int4?: "packed" | "float";
  /**
   * Where nodes run (onnxruntime-web's executionProviders, without its silent fallback):
   * "wasm" (default) everything on the Wasm kernels; "webgpu" every node that has a WebGPU
   * kernel on the GPU, the rest on Wasm, and a BackendUnavailableError where WebGPU cannot run;
   * "auto" WebGPU when an adapter exists and a node island's work pays for its transfers
   * (runtime/partition.ts), else Wasm. `session.placement` says where each node runs and why.
   */
  backend?: "auto" | "wasm" | "webgpu";
  /**
   * Pruned f32 weights (MatMul, Gemm, one-group Conv; zeros from ai.sqz.SparseWeight or
   * stored dense): "auto" (default) keeps a weight sparse in Wasm memory (6 bytes per
   * nonzero) and runs the sparse kernel where it is faster at the weight's density and the
   * layer's rows, from about 65–80% sparsity on; "off" packs every weight dense.
   */
  sparse?: "auto" | "off";
}

export interface SessionInfo {
  build: KernelBuild;
  /** Threads the kernels are split over, this one included. */
  threads: number;
  /** Why fewer threads run than were asked for. */
  threadNote?: string;
  /** "webgpu" when any node runs on the GPU. */
  backend: BackendName;
  /** The GPU adapter, when the WebGPU backend was asked for and exists. */
  adapter?: string;
  /** Nodes per backend. */
  nodes: Record<BackendName, number>;
  /** Why no node runs on the GPU although "auto" or "webgpu" was asked for. */
  backendNote?: string;
}

let threadsDefault: number | undefined;

/**
 * Threads a session runs on when its options name none: the available cores (capped at what
 * the kernel module starts), or what setDefaultThreads set.
 */
export function defaultThreads(): number {
  if (threadsDefault !== undefined) return threadsDefault;
  const n = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator
    ?.hardwareConcurrency;
  return Math.max(1, Math.min(MAX_THREADS, Number.isInteger(n) ? n! : 1));
}

/**
 * Sets the threads of sessions created without a `threads` option in this JS context
 * (onnxruntime-web's env.wasm.numThreads); undefined restores the cores. A pool of Workers
 * that each run sessions (search trials, jobs) sets 1, as its parallelism is the Workers'.
 */
export function setDefaultThreads(threads: number | undefined): void {
  if (
    threads !== undefined && (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS)
  ) {
    throw new ArgumentError(`threads must be an integer in [1, ${MAX_THREADS}], got ${threads}`);
  }
  threadsDefault = threads;
}

export interface RunOptions {
  /** Outputs to return (default: all of the model's outputs). */
  outputs?: string[];
}

export interface ValueMetadata {
  name: string;
  type: TensorType;
  /** Dims as declared: numbers, or symbols (ONNX dim_param) for dynamic dims. */
  dims: Dim[];
}

/** Every op the engine can run, by qualified op name: what the importer accepts. */
export const SUPPORTED_OPS: ReadonlySet<string> = new Set([
  ...Object.keys(TS_OPS),
  // NHWC kernel ops replace ops that all have a TypeScript version (listed above).
  ...Object.keys(KERNEL_OPS).filter((k) => !k.startsWith(`${NHWC_DOMAIN}.`)),
]);

function metadata(v: Value): ValueMetadata {
  return { name: v.name, type: v.type ?? "float32", dims: [...(v.shape ?? [])] };
}

export class Session {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: readonly ValueMetadata[];
  readonly outputMetadata: readonly ValueMetadata[];
  #released = false;

  private constructor(
    readonly graph: Graph,
    readonly kernels: KernelModule,
    private readonly executor: Executor,
    private readonly options: SessionOptions,
    inputs: ValueMetadata[],
    outputs: ValueMetadata[],
    /** Where each node runs and why, in execution order. */
    readonly placement: readonly Placement[],
    private readonly gpu?: GpuContext,
    private readonly backendNote?: string,
  ) {
    this.inputMetadata = inputs;
    this.outputMetadata = outputs;
    this.inputNames = inputs.map((m) => m.name);
    this.outputNames = outputs.map((m) => m.name);
  }

  /** Loads a model from bytes or a file path (external data is then found beside it). */
  static async create(model: Uint8Array | string, options: SessionOptions = {}): Promise<Session> {
    if (options.int4 !== undefined && options.int4 !== "packed" && options.int4 !== "float") {
      throw new ArgumentError(`int4 must be "packed" or "float", got ${String(options.int4)}`);
    }
    if (options.sparse !== undefined && options.sparse !== "auto" && options.sparse !== "off") {
      throw new ArgumentError(`sparse must be "auto" or "off", got ${String(options.sparse)}`);
    }
    const backend = options.backend ?? "wasm";
    if (backend !== "auto" && backend !== "wasm" && backend !== "webgpu") {
      throw new ArgumentError(
        `backend must be "auto", "wasm" or "webgpu", got ${String(options.backend)}`,
      );
    }
    // Asked for by name, WebGPU either runs or throws BackendUnavailableError; "auto" notes why not.
    let gpu: GpuContext | undefined, backendNote: string | undefined;
    if (backend !== "wasm") {
      try {
        gpu = await gpuContext();
      } catch (e) {
        if (backend === "webgpu" || !(e instanceof BackendUnavailableError)) throw e;
        backendNote = e.message;
      }
    }
    const { bytes, baseDir } = await readModel(model);
    const g = importModel(bytes, {
      externalData: options.externalData,
      baseDir,
      supportedOps: SUPPORTED_OPS,
    });
    for (const name of options.extraOutputs ?? []) {
      const v = g.values.get(name);
      if (!v || (!v.producer && !v.constant && !g.inputs.includes(v))) {
        throw new ArgumentError(`extraOutputs: the model has no value '${name}'`);
      }
      if (!g.outputs.includes(v)) g.outputs.push(v);
    }
    // Metadata as the model declares it, before passes rename or retype anything.
    const inputs = g.inputs.map(metadata), outputs = g.outputs.map(metadata);
    g.topoSort();
    inferShapes(g);
    if (options.optimize !== false) {
      // Before folding, which would turn the weights' DequantizeLinear into float weights.
      dropQdqAroundMovement(g);
      fuseQdq(g, quantizedEligible);
      fuseDynamicQuantMatMul(g, quantizedEligible);
      // Before folding too, which would decode int4 and ternary weights to f32.
      if (options.int4 !== "float") lowerToMatMulNBits(g);
      g.topoSort();
      eliminateDeadCode(g);
      foldConstants(g);
      inferShapes(g);
      // Transformer fusions first: MatMul + Add must fuse before Relu fuses into the MatMul.
      fuseTransformer(g);
      simplify(g);
      g.topoSort();
      assignLayout(g, nhwcEligible);
    }
    const kernels = await KernelModule.load(options.build ?? "auto", {
      threads: options.threads ?? defaultThreads(),
    });
    const onnxOpset = g.opsets.get("") ?? g.opsets.get("ai.onnx") ?? 0;
    const impls: NodeImpl[] = [];
    const opsets: number[] = [];
    const unsupported: string[] = [];
    // GPU kernels first (they upload their weights), then the partitioner decides.
    const gpuOps: (GpuOp | undefined)[] = g.nodes.map(() => undefined);
    let placement: Placement[] = g.nodes.map((n) => ({
      node: n.name,
      op: n.qualifiedOp,
      backend: "wasm",
      reason: gpu || backendNote ? "no WebGPU kernel" : "backend wasm",
    }));
    if (gpu) {
      try {
        g.nodes.forEach((n, i) => {
          gpuOps[i] = GPU_OPS[n.qualifiedOp]?.(n, { gpu, opset: onnxOpset });
        });
      } catch (e) {
        for (const o of gpuOps) o?.dispose();
        throw e;
      }
      placement = partition(g.nodes, {
        gpu: g.nodes.map((n, i) =>
          gpuOps[i] ? { kernel: n.qualifiedOp } : {
            missing: GPU_OPS[n.qualifiedOp]
              ? `the WebGPU ${n.qualifiedOp} kernel does not take this node (dtype, constant weights or attributes)`
              : `no WebGPU kernel for ${n.qualifiedOp}`,
          }
        ),
        merge: backend === "auto",
        software: gpu.software,
        threads: kernels.threads,
        graphOutputs: new Set(g.outputs),
      });
      placement.forEach((p, i) => {
        if (p.backend !== "webgpu") {
          gpuOps[i]?.dispose();
          gpuOps[i] = undefined;
        }
      });
    }
    try {
      for (const [i, n] of g.nodes.entries()) {
        const gop = gpuOps[i];
        if (gop) {
          opsets.push(onnxOpset);
          impls.push({ kind: "webgpu", op: gop });
          continue;
        }
        const factory = KERNEL_OPS[n.qualifiedOp];
        const op = factory?.(n, {
          mod: kernels,
          opset: onnxOpset,
          int4: options.int4,
          sparse: options.sparse,
        });
        const opset = n.domain === NHWC_DOMAIN ? onnxOpset : g.opsets.get(n.domain) ?? onnxOpset;
        opsets.push(opset);
        if (op) {
          impls.push({ kind: "wasm", op });
          continue;
        }
        const fn = TS_OPS[n.qualifiedOp];
        if (!fn) unsupported.push(`${n.qualifiedOp} (node '${n.name}')`);
        else impls.push({ kind: "ts", fn });
      }
      if (unsupported.length) {
        // Reported together, after the passes: ops they fold or fuse away need no kernel.
        throw new ModelError(
          `unsupported op${unsupported.length > 1 ? "s" : ""}: ` +
            unsupported.slice(0, 20).join(", ") +
            (unsupported.length > 20 ? `, and ${unsupported.length - 20} more` : ""),
        );
      }
    } catch (e) {
      for (const i of impls) if (i.kind !== "ts") i.op.dispose();
      for (const [i, o] of gpuOps.entries()) if (o && impls[i]?.kind !== "webgpu") o.dispose();
      throw e;
    }
    const jsBytes = releasePackedConstants(g, impls);
    const weightBytes = kernels.heap.bytesInUse;
    const onGpu = impls.some((i) => i.kind === "webgpu");
    const executor = new Executor(
      g,
      kernels,
      g.nodes,
      impls,
      opsets,
      weightBytes,
      jsBytes,
      onGpu ? gpu : undefined,
    );
    if (gpu && !onGpu) {
      backendNote = `no node runs on the GPU (${gpu.adapterName}): ` +
        (placement.find((p) => p.reason.startsWith("kept on wasm"))?.reason ??
          "no node has a WebGPU kernel");
    }
    return new Session(
      g,
      kernels,
      executor,
      options,
      inputs,
      outputs,
      placement,
      gpu,
      backendNote,
    );
  }

  /** Runs the model; outputs are fresh tensors the caller owns. */
  async run(
    feeds: Record<string, Tensor>,
    options: RunOptions = {},
  ): Promise<Record<string, Tensor>> {
    return await this.#run(feeds, options);
  }

  async #run(feeds: Record<string, Tensor>, options: RunOptions): Promise<Record<string, Tensor>> {
    if (this.#released) throw new ArgumentError("this session was released");
    this.kernels.wake();
    if (typeof feeds !== "object" || feeds === null) {
      throw new ArgumentError("feeds must be an object of tensors by input name");
    }
    for (const name of Object.keys(feeds)) {
      if (!this.inputNames.includes(name)) {
        throw new ArgumentError(
          `'${name}' is not an input of the model (inputs: ${this.inputNames.join(", ")})`,
        );
      }
    }
    const byValue = new Map<Value, Tensor>();
    this.graph.inputs.forEach((v, i) => {
      const meta = this.inputMetadata[i];
      const t = feeds[meta.name];
      if (!t) throw new ArgumentError(`input '${meta.name}' is missing`);
      checkFeed(meta, t);
      byValue.set(v, t);
    });
    const names = options.outputs ?? this.outputNames;
    const wanted = names.map((name) => {
      const i = this.outputNames.indexOf(name);
      if (i < 0) throw new ArgumentError(`'${name}' is not an output of the model`);
      return this.graph.outputs[i];
    });
    const results = await this.executor.run(byValue, wanted, this.options.profile ?? false);
    return Object.fromEntries(names.map((n, i) => [n, results[i]]));
  }

  /** Per-node timings of the last run (with `profile: true`). */
  get profile(): readonly NodeProfile[] {
    return this.executor.profile;
  }

  /** What runs this session: the kernel build and its threads. */
  get info(): SessionInfo {
    const k = this.kernels;
    const nodes = { wasm: 0, webgpu: 0 };
    for (const p of this.placement) nodes[p.backend]++;
    return {
      build: k.build,
      threads: k.threads,
      ...(k.threadNote ? { threadNote: k.threadNote } : {}),
      backend: this.backend,
      ...(this.gpu ? { adapter: this.gpu.adapterName } : {}),
      nodes,
      ...(this.backendNote ? { backendNote: this.backendNote } : {}),
    };
  }

  /** "webgpu" when any node runs on the GPU, else "wasm". */
  get backend(): BackendName {
    return this.placement.some((p) => p.backend === "webgpu") ? "webgpu" : "wasm";
  }

  /** Arena and weight memory, after a run has planned the arena. */
  get memory(): MemoryReport {
    return this.executor.memory;
  }

  release(): Promise<void> {
    if (!this.#released) {
      this.#released = true;
      this.executor.dispose();
      this.kernels.dispose();
    }
    return Promise.resolve();
  }
}

function checkFeed(meta: ValueMetadata, t: Tensor): void {
  const what = `input '${meta.name}'`;
  if (typeof t !== "object" || t === null || !Array.isArray(t.dims) || !t.data) {
    throw new ArgumentError(`${what} must be a tensor { type, dims, data }`);
  }
  if (t.type !== meta.type) {
    throw new ShapeError(`${what} must be ${meta.type}, got ${t.type}`);
  }
  if (t.data.constructor.name !== ARRAY_CLASS[t.type]) {
    throw new ArgumentError(`${what} is ${t.type}, so its data must be a ${ARRAY_CLASS[t.type]}`);
  }
  if (meta.dims.length && t.dims.length !== meta.dims.length) {
    throw new ShapeError(
      `${what} must have rank ${meta.dims.length} ([${meta.dims}]), got [${t.dims}]`,
    );
  }
  t.dims.forEach((d, i) => {
    if (!Number.isSafeInteger(d) || d < 0) throw new ShapeError(`${what} has a bad dim ${d}`);
    const want = meta.dims[i];
    if (typeof want === "number" && want > 0 && want !== d) {
      throw new ShapeError(`${what} must have shape [${meta.dims}], got [${t.dims}]`);
    }
  });
  if (t.data.length !== elementCount(t.dims)) {
    throw new ShapeError(
      `${what} has ${t.data.length} elements but dims [${t.dims}] need ${elementCount(t.dims)}`,
    );
  }
}

/**
 * Drops the graph's copy of every constant that only kernels which packed it read (their
 * `packedInputs`), so a weight is resident once, in its packed form. Returns the bytes of the
 * constants the graph still holds (for the TypeScript ops and the unpacked kernel inputs).
 */
function releasePackedConstants(g: Graph, impls: readonly NodeImpl[]): number {
  const packedOnly = new Map<Value, boolean>();
  g.nodes.forEach((n, i) => {
    const impl = impls[i];
    n.inputs.forEach((v, j) => {
      if (!v?.constant) return;
      const packed = impl.kind !== "ts" && (impl.op.packedInputs?.includes(j) ?? false);
      packedOnly.set(v, (packedOnly.get(v) ?? true) && packed);
    });
  });
  for (const v of g.outputs) if (packedOnly.has(v)) packedOnly.set(v, false);
  let held = 0;
  for (const [v, only] of packedOnly) {
    const t = v.constant!;
    if (only) {
      // Dims and type stay for shape queries; the data is in Wasm memory, packed.
      v.constant = { ...t, data: new (t.data.constructor as new (n: number) => typeof t.data)(0) };
    } else held += t.data.byteLength;
  }
  return held;
}
