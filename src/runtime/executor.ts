// The executor: runs a topologically ordered graph, node by node, on Wasm kernel ops where they
// apply and TypeScript ops elsewhere, with activations in one arena inside Wasm memory.
//
// Memory planning is trace-then-plan. The first run for a given set of input shapes allocates
// as it goes (JS arrays for TypeScript ops, heap blocks for kernel ops) and records every
// activation's size; from those sizes and the liveness of each value (produced at one step,
// last read at another) the arena planner gives every activation an offset. Later runs with the
// same input shapes write straight into the arena: TypeScript ops get arena views from
// ctx.alloc, kernel ops get arena offsets. A value whose size turns out different (a shape that
// depends on data) simply falls back to a block of its own, so a plan is never wrong, at worst
// less tight. Values are kept as offsets, not views, because reserving a heap block may grow
// the memory and detach every view made before.
import type { Graph, Node, Value } from "../graph/ir.ts";
import {
  ELEMENT_BYTES,
  elementCount,
  type Tensor,
  type TensorData,
  type TensorType,
} from "../graph/tensor.ts";
import type { KernelModule } from "../kernels/module.ts";
import type { OpContext, OpImpl } from "../ops/types.ts";
import { allocTensor, arrayCtor } from "../ops/tensor_util.ts";
import type { KernelOp, KernelRunContext } from "./kernel_op.ts";
import { planArena } from "./arena.ts";
import { ArgumentError, ShapeError, SqzError } from "../errors.ts";
import type { GpuContext } from "./webgpu/device.ts";
import type { GpuOp, GpuRunContext } from "./webgpu/gpu_op.ts";
import { GpuBufferPool, readBytes, uniformBuffer, writeBytes } from "./webgpu/buffers.ts";

export type NodeImpl =
  | { kind: "wasm"; op: KernelOp }
  | { kind: "ts"; fn: OpImpl }
  | { kind: "webgpu"; op: GpuOp };

export interface NodeProfile {
  name: string;
  op: string;
  /** "wasm" for a kernel op, "ts" for a TypeScript op, "webgpu" for a GPU kernel. */
  impl: "wasm" | "ts" | "webgpu";
  /** The backend that ran it: TypeScript ops run on the wasm backend's side. */
  backend: "wasm" | "webgpu";
  ms: number;
  /** Multiply-accumulates, for the ops that know them (Conv, Gemm, MatMul). */
  macs?: number;
}

export interface MemoryReport {
  /** Bytes of the activation arena for the last planned input shapes. */
  arenaBytes: number;
  /** Most activation bytes live at once: no plan can need less. */
  liveLowerBound: number;
  /** Bytes of packed weights and constants held in Wasm memory. */
  weightBytes: number;
  /**
   * Resident weight bytes: `weightBytes` plus the constants kept in JavaScript for the
   * TypeScript ops (constants a kernel packed are not kept twice).
   */
  weights: number;
  /** Bytes of weights on the GPU and of the GPU buffer pool (WebGPU backend only). */
  gpuWeightBytes?: number;
  gpuPoolBytes?: number;
}

interface Plan {
  offsets: Map<number, { off: number; bytes: number }>;
  size: number;
  lowerBound: number;
  /** Outputs of the shape-only steps for this plan's input shapes, by step. */
  shapeValues: Map<number, Tensor[]>;
}

/** Ops whose outputs depend only on the shapes of their inputs. */
const SHAPE_OPS = new Set(["Shape", "Size"]);
/** Ops that must run every time even on shape-only inputs. */
const NONDETERMINISTIC = new Set([
  "RandomNormal",
  "RandomUniform",
  "RandomNormalLike",
  "RandomUniformLike",
  "Multinomial",
  "Bernoulli",
]);
/** Largest value kept per input signature: shape arithmetic is tiny, activations are not. */
const SHAPE_VALUE_LIMIT = 4096;

/** A value during a run: resident at `ptr` in Wasm memory (ptr ≥ 0), or a JS tensor. */
interface Slot {
  type: TensorType;
  dims: number[];
  ptr: number;
  /** A heap block of its own, freed when the value dies. */
  owned: boolean;
  js?: Tensor;
  /** A copy on the GPU (a pool buffer), when a GPU node made or read the value. */
  gpu?: GPUBuffer;
}

function byteSize(type: TensorType, dims: readonly number[]): number {
  return elementCount(dims as number[]) * ELEMENT_BYTES[type];
}

function asBytes(t: Tensor): Uint8Array {
  const d = t.data;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

export class Executor {
  readonly #index = new Map<Value, number>();
  readonly #values: Value[] = [];
  readonly #inputs: number[][];
  readonly #outputs: number[][];
  /** Last step reading each value; graph outputs live past the last node. */
  readonly #lastUse: Int32Array;
  readonly #firstUse: Int32Array;
  readonly #plans = new Map<string, Plan>();
  #arena = 0;
  #arenaBytes = 0;
  #lastPlan?: Plan;
  #profile: NodeProfile[] = [];
  /**
   * Steps whose outputs are fixed once the input shapes are: Shape/Size and the arithmetic on
   * their results (Gather → Unsqueeze → Concat → Reshape targets, Range, ConstantOfShape…).
   * The first run of a signature computes them; later runs of that signature reuse the values,
   * which is constant folding specialized per input signature.
   */
  readonly #shapeOnly: boolean[];
  readonly #pool?: GpuBufferPool;

  constructor(
    readonly graph: Graph,
    readonly mod: KernelModule,
    readonly nodes: readonly Node[],
    readonly impls: readonly NodeImpl[],
    readonly opsets: readonly number[],
    readonly weightBytes = 0,
    /** Bytes of constants the graph still holds in JavaScript. */
    readonly jsWeightBytes = 0,
    /** The GPU the "webgpu" impls run on. */
    readonly gpu?: GpuContext,
  ) {
    this.#pool = gpu ? new GpuBufferPool(gpu) : undefined;
    const id = (v: Value) => {
      let i = this.#index.get(v);
      if (i === undefined) {
        i = this.#values.length;
        this.#index.set(v, i);
        this.#values.push(v);
      }
      return i;
    };
    graph.inputs.forEach(id);
    this.#inputs = nodes.map((n) => n.inputs.map((v) => (v ? id(v) : -1)));
    this.#outputs = nodes.map((n) => n.outputs.map(id));
    graph.outputs.forEach(id);
    const count = this.#values.length;
    this.#lastUse = new Int32Array(count).fill(-1);
    this.#firstUse = new Int32Array(count).fill(-1);
    this.#inputs.forEach((ins, step) => ins.forEach((i) => i >= 0 && (this.#lastUse[i] = step)));
    this.#outputs.forEach((outs, step) => outs.forEach((i) => (this.#firstUse[i] = step)));
    for (const v of graph.inputs) this.#firstUse[this.#index.get(v)!] = 0;
    for (const v of graph.outputs) this.#lastUse[this.#index.get(v)!] = nodes.length;
    const shapeValue = new Set<Value>();
    this.#shapeOnly = nodes.map((n, step) => {
      if (impls[step].kind !== "ts" || n.domain || NONDETERMINISTIC.has(n.op)) return false;
      const only = SHAPE_OPS.has(n.op) ||
        (n.inputs.some((v) => v && shapeValue.has(v)) &&
          n.inputs.every((v) => !v || v.constant || shapeValue.has(v)));
      if (only) { for (const v of n.outputs) shapeValue.add(v); }
      return only;
    });
  }

  /** Per-node timings of the last run made with profiling on. */
  get profile(): readonly NodeProfile[] {
    return this.#profile;
  }

  get memory(): MemoryReport {
    return {
      arenaBytes: this.#lastPlan?.size ?? 0,
      liveLowerBound: this.#lastPlan?.lowerBound ?? 0,
      weightBytes: this.weightBytes,
      weights: this.weightBytes + this.jsWeightBytes,
      ...(this.gpu
        ? {
          gpuWeightBytes: this.impls.reduce(
            (a, i) => a + (i.kind === "webgpu" ? i.op.weightBytes : 0),
            0,
          ),
          gpuPoolBytes: this.#pool!.bytes,
        }
        : {}),
    };
  }

  async run(
    feeds: ReadonlyMap<Value, Tensor>,
    wanted: readonly Value[],
    profile = false,
  ): Promise<Tensor[]> {
    const key = [...feeds.values()].map((t) => t.dims.join("x")).join(",");
    const plan = this.#plans.get(key);
    const slots = new Array<Slot | undefined>(this.#values.length);
    const sizes = plan ? undefined : new Map<number, number>();
    const shapeValues = plan ? undefined : new Map<number, Tensor[]>();
    const mod = this.mod;
    let base = 0;
    if (plan) {
      if (plan.size > this.#arenaBytes) {
        if (this.#arena) mod.heap.free(this.#arena);
        this.#arena = 0;
        this.#arenaBytes = 0;
        this.#arena = mod.heap.alloc(plan.size);
        this.#arenaBytes = plan.size;
      }
      base = this.#arena;
      this.#lastPlan = plan;
    }
    const slotFor = (vi: number, bytes: number): number => {
      const p = plan?.offsets.get(vi);
      return p && bytes <= p.bytes ? base + p.off : -1;
    };
    const view = (s: Slot): Tensor => {
      if (s.ptr < 0) return s.js!;
      return {
        type: s.type,
        dims: s.dims,
        data: wasmView(mod, s.type, s.ptr, elementCount(s.dims)),
      };
    };
    const release = (vi: number) => {
      const s = slots[vi];
      if (s?.owned) mod.heap.free(s.ptr);
      if (s?.gpu) this.#pool!.release(s.gpu);
      slots[vi] = undefined;
    };
    /** Reads a value only the GPU holds back into the arena (or a JS tensor), keeping both. */
    const toHost = async (vi: number) => {
      const s = slots[vi];
      if (!s?.gpu || s.ptr >= 0 || s.js) return;
      const bytes = byteSize(s.type, s.dims);
      const raw = await readBytes(this.gpu!, s.gpu, bytes);
      const Ctor = arrayCtor(s.type) as unknown as new (
        b: ArrayBuffer,
        o: number,
        n: number,
      ) => TensorData;
      const gpu = s.gpu;
      slots[vi] = undefined;
      place(vi, {
        type: s.type,
        dims: s.dims,
        data: new Ctor(raw.buffer as ArrayBuffer, 0, elementCount(s.dims)),
      } as Tensor);
      slots[vi]!.gpu = gpu;
    };
    const constant = (v: Value): Slot | undefined =>
      v.constant
        ? { type: v.constant.type, dims: v.constant.dims, ptr: -1, owned: false, js: v.constant }
        : undefined;
    /** Places a tensor an op returned: in its arena slot when it has one, else as it is. */
    const place = (vi: number, t: Tensor) => {
      const bytes = t.data.byteLength;
      sizes?.set(vi, bytes);
      const at = slotFor(vi, bytes);
      if (at >= 0) {
        const d = t.data;
        if (!(d.buffer === mod.memory.buffer && d.byteOffset === at)) {
          new Uint8Array(mod.memory.buffer, at, bytes).set(asBytes(t));
        }
        slots[vi] = { type: t.type, dims: [...t.dims], ptr: at, owned: false };
      } else {
        // A view into Wasm memory (an input passed through) must not outlive its block.
        const own = t.data.buffer === mod.memory.buffer ? { ...t, data: t.data.slice() } : t;
        slots[vi] = { type: t.type, dims: [...t.dims], ptr: -1, owned: false, js: own as Tensor };
      }
    };

    const temps: number[] = [];
    try {
      for (const [v, t] of feeds) place(this.#index.get(v)!, t);
      const steps = this.nodes.length;
      const prof: NodeProfile[] = [];
      for (let step = 0; step < steps; step++) {
        const node = this.nodes[step];
        const impl = this.impls[step];
        const ins = this.#inputs[step], outs = this.#outputs[step];
        const inSlot = (i: number): Slot | undefined => {
          const vi = ins[i];
          if (vi === undefined || vi < 0) return undefined;
          const s = slots[vi] ?? constant(this.#values[vi]);
          if (!s) {
            throw new ArgumentError(
              `node '${node.name}' reads '${this.#values[vi].name}', which has no value ` +
                `(a graph input that was not fed?)`,
            );
          }
          return s;
        };
        const cached = this.#shapeOnly[step] ? plan?.shapeValues.get(step) : undefined;
        if (cached) {
          cached.forEach((t, i) => {
            slots[outs[i]] = {
              type: t.type,
              dims: t.dims as number[],
              ptr: -1,
              owned: false,
              js: t,
            };
          });
          for (const vi of ins) if (vi >= 0 && this.#lastUse[vi] === step) release(vi);
          continue;
        }
        const t0 = profile ? performance.now() : 0;
        let macs: number | void = undefined;
        if (impl.kind !== "webgpu") { for (const vi of ins) if (vi >= 0) await toHost(vi); }
        try {
          if (impl.kind === "webgpu") {
            macs = await this.#runGpu(impl.op, ins, outs, inSlot, slots, view, sizes, profile);
          } else if (impl.kind === "wasm") {
            const k: KernelRunContext = {
              mod,
              inputType: (i) => inSlot(i)!.type,
              inputDims: (i) => inSlot(i)!.dims,
              input: (i) => {
                const s = inSlot(i);
                return s && view(s);
              },
              inputPtr: (i) => {
                const s = inSlot(i)!;
                if (s.ptr >= 0) return s.ptr;
                const p = mod.upload(s.js!.data);
                temps.push(p);
                return p;
              },
              outputPtr: (i, type, dims) => {
                const vi = outs[i];
                const bytes = byteSize(type, dims);
                sizes?.set(vi, bytes);
                let ptr = slotFor(vi, bytes), owned = false;
                if (ptr < 0) {
                  ptr = mod.heap.alloc(Math.max(bytes, 1));
                  owned = true;
                }
                slots[vi] = { type, dims: [...dims], ptr, owned };
                return ptr;
              },
            };
            macs = impl.op.run(k);
          } else {
            const inputs = ins.map((_, i) => {
              const s = inSlot(i);
              return s && view(s);
            });
            const ctx: OpContext = {
              node,
              opset: this.opsets[step],
              alloc: (i, type, dims) => {
                const vi = outs[i];
                const at = vi === undefined ? -1 : slotFor(vi, byteSize(type, dims));
                return at >= 0
                  ? { type, dims: [...dims], data: wasmView(mod, type, at, elementCount(dims)) }
                  : allocTensor(type, dims);
              },
            };
            const results = impl.fn(inputs, ctx);
            if (
              results.length < outs.length &&
              outs.slice(results.length).some((vi) => this.#lastUse[vi] >= 0)
            ) {
              throw new ShapeError(
                `node '${node.name}' (${node.op}) made ${results.length} outputs, ${outs.length} are used`,
              );
            }
            const lo = node.attrs.activation_min, hi = node.attrs.activation_max;
            results.forEach((t, i) => {
              if (i >= outs.length) return;
              if (typeof lo === "number" || typeof hi === "number") clampInPlace(t, lo, hi);
              place(outs[i], t);
            });
            if (shapeValues && this.#shapeOnly[step]) {
              const kept = results.slice(0, outs.length);
              if (kept.every((t) => t.data.length <= SHAPE_VALUE_LIMIT)) {
                // Copies: the results may be arena views that the next run overwrites.
                shapeValues.set(
                  step,
                  kept.map((t) => ({ ...t, dims: [...t.dims], data: t.data.slice() }) as Tensor),
                );
              }
            }
          }
        } catch (e) {
          if (e instanceof SqzError) {
            if (!e.message.includes(`'${node.name}'`)) {
              e.message = `node '${node.name}' (${node.op}): ${e.message}`;
            }
            throw e;
          }
          throw e;
        } finally {
          while (temps.length) mod.heap.free(temps.pop()!);
        }
        if (profile) {
          prof.push({
            name: node.name,
            op: node.op,
            impl: impl.kind,
            backend: impl.kind === "webgpu" ? "webgpu" : "wasm",
            ms: performance.now() - t0,
            ...(typeof macs === "number" ? { macs } : {}),
          });
        }
        for (const vi of ins) if (vi >= 0 && this.#lastUse[vi] === step) release(vi);
        for (const vi of outs) if (this.#lastUse[vi] < 0) release(vi);
      }
      if (profile) this.#profile = prof;
      for (const v of wanted) {
        const vi = this.#index.get(v);
        if (vi !== undefined) await toHost(vi);
      }
      return wanted.map((v) => {
        const vi = this.#index.get(v);
        const s = (vi !== undefined ? slots[vi] : undefined) ?? constant(v);
        if (!s) throw new ArgumentError(`output '${v.name}' was not computed`);
        const t = view(s);
        // Outputs are copies: the arena is reused by the next run.
        const data = s.ptr >= 0 || s.js === t ? t.data.slice() : t.data;
        return { type: t.type, dims: [...t.dims], data } as Tensor;
      });
    } finally {
      for (let i = 0; i < slots.length; i++) release(i);
      if (sizes) this.#plans.set(key, this.#makePlan(sizes, shapeValues!));
    }
  }

  #makePlan(sizes: Map<number, number>, shapeValues: Map<number, Tensor[]>): Plan {
    const ids = [...sizes.keys()].filter((vi) => sizes.get(vi)! > 0);
    const lifetimes = ids.map((vi) => {
      const first = Math.max(this.#firstUse[vi], 0);
      return { size: sizes.get(vi)!, first, last: Math.max(this.#lastUse[vi], first) };
    });
    const p = planArena(lifetimes);
    const offsets = new Map<number, { off: number; bytes: number }>();
    ids.forEach((vi, i) => offsets.set(vi, { off: p.offsets[i], bytes: lifetimes[i].size }));
    return { offsets, size: p.size, lowerBound: p.lowerBound, shapeValues };
  }

  /** Encodes one GPU node and submits it; inputs not yet on the GPU are uploaded. */
  async #runGpu(
    op: GpuOp,
    ins: readonly number[],
    outs: readonly number[],
    inSlot: (i: number) => Slot | undefined,
    slots: (Slot | undefined)[],
    view: (s: Slot) => Tensor,
    sizes: Map<number, number> | undefined,
    profile: boolean,
  ): Promise<number | void> {
    const gpu = this.gpu!, pool = this.#pool!;
    const encoder = gpu.device.createCommandEncoder();
    const uniforms: GPUBuffer[] = [];
    /** Uploads of constants, back to the pool once the node is submitted. */
    const uploads: GPUBuffer[] = [];
    const ctx: GpuRunContext = {
      gpu,
      encoder,
      inputType: (i) => inSlot(i)!.type,
      inputDims: (i) => inSlot(i)!.dims,
      inputBuffer: (i) => {
        const s = inSlot(i)!;
        if (s.gpu) return s.gpu;
        const t = view(s);
        const buf = pool.acquire(t.data.byteLength);
        writeBytes(gpu, buf, t.data);
        const vi = ins[i];
        // Kept with the value, so later GPU readers reuse the upload; constants are per run.
        if (slots[vi] === s) s.gpu = buf;
        else uploads.push(buf);
        return buf;
      },
      outputBuffer: (i, type, dims) => {
        const vi = outs[i];
        // GPU values take no arena slot: the planner sees them only if a host copy is made.
        sizes?.set(vi, 0);
        const buf = pool.acquire(byteSize(type, dims));
        slots[vi] = { type, dims: [...dims], ptr: -1, owned: false, gpu: buf };
        return buf;
      },
      uniform: (data) => {
        const buf = uniformBuffer(gpu, data);
        uniforms.push(buf);
        return buf;
      },
    };
    let macs: number | void;
    try {
      macs = op.encode(ctx);
      gpu.device.queue.submit([encoder.finish()]);
      if (profile) await gpu.device.queue.onSubmittedWorkDone();
    } finally {
      for (const b of uniforms) b.destroy();
      for (const b of uploads) pool.release(b);
    }
    return macs;
  }

  dispose(): void {
    for (const impl of this.impls) if (impl.kind !== "ts") impl.op.dispose();
    this.#pool?.dispose();
    if (this.#arena) this.mod.heap.free(this.#arena);
    this.#arena = 0;
    this.#arenaBytes = 0;
  }
}

/** The fused activation of a node that ran as a TypeScript op (see graph/passes.ts). */
function clampInPlace(t: Tensor, lo: unknown, hi: unknown): void {
  if (t.type !== "float32") return;
  const a = typeof lo === "number" ? lo : -Infinity, b = typeof hi === "number" ? hi : Infinity;
  const d = t.data as Float32Array;
  for (let i = 0; i < d.length; i++) d[i] = d[i] < a ? a : d[i] > b ? b : d[i];
}

/** A typed-array view of `length` elements of `type` at `ptr` in the module's memory. */
function wasmView(mod: KernelModule, type: TensorType, ptr: number, length: number): TensorData {
  const Ctor = arrayCtor(type) as unknown as new (
    b: ArrayBuffer,
    o: number,
    n: number,
  ) => TensorData;
  return new Ctor(mod.memory.buffer as ArrayBuffer, ptr, length);
}
