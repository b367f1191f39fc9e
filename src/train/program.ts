// Reverse-mode automatic differentiation over sqz's graph IR. A TrainProgram is built from a
// Graph (an imported ONNX model as it is, or one a compression recipe prepared for training):
// its float32 weights become parameters, every node gets a differentiable op (ops/), and
//   forward(feeds)   runs the graph in topological order, each op keeping what its backward needs;
//   backward(seeds)  walks the nodes in reverse from d(loss)/d(output), summing the gradients of
//                    values used more than once, and accumulates into each parameter's grad.
// Only the nodes between the parameters (or requested inputs) and the seeded outputs do backward
// work; a node on that path whose op has no backward pass is refused when the program is built,
// with its name and op. The heavy products (Conv, Gemm, MatMul, forward and backward) run on the
// Wasm f32 GEMM microkernels through one reused set of scratch blocks (wasm.ts).
import type { Graph, Node, Value } from "../graph/ir.ts";
import type { Tensor } from "../graph/tensor.ts";
import { KernelModule } from "../kernels/module.ts";
import { ArgumentError, ShapeError, UnsupportedError } from "../errors.ts";
import { SQZ_DOMAIN } from "../graph/qdq.ts";
import { Scratch } from "./wasm.ts";
import type { Param } from "./optim.ts";
import { NON_DIFFERENTIABLE, TRAIN_OPS } from "./ops/index.ts";
import { hasInferenceOp, noGrad } from "./ops/elementwise.ts";
import type { TrainContext, TrainOp } from "./ops/types.ts";

export interface ProgramOptions {
  /** The kernel module to run on (default: the best build this engine supports). */
  mod?: KernelModule;
  /** Which float32 constants are trained (default: defaultTrainable). */
  trainable?: (v: Value, g: Graph) => boolean;
  /** Graph inputs whose gradients backward() returns (gradient checks). */
  inputGrads?: string[];
  /** Extra values forward() returns besides the graph outputs (hint layers, logits). */
  outputs?: string[];
}

/** A non-trained state tensor the program updates (BatchNorm running statistics). */
export interface Buffer {
  name: string;
  data: Float32Array;
}

interface Step {
  node: Node;
  op: TrainOp;
  ctx: TrainContext;
  /** Whether any output needs a gradient (the node is on a path from a parameter). */
  grad: boolean;
}

/** Weights and biases of Conv / Gemm / MatMul (through a fake quantizer too), BN scale / shift. */
export function defaultTrainable(v: Value): boolean {
  const t = v.constant;
  if (!t || t.type !== "float32" || t.data.length === 0) return false;
  return v.consumers.some((n) => {
    const slot = n.inputs.indexOf(v);
    if (n.domain === SQZ_DOMAIN) return n.op === "FakeQuantWeight" && slot === 0;
    if (n.domain) return false;
    switch (n.op) {
      case "Conv":
      case "Gemm":
        return slot === 1 || slot === 2;
      case "MatMul":
        return t.dims.length >= 2;
      case "BatchNormalization":
        return slot === 1 || slot === 2;
      case "Add":
      case "Sub": {
        // A bias added after a MatMul (PyTorch's nn.Linear export at opset ≥ 9).
        const other = n.inputs[1 - slot];
        return ["MatMul", "Gemm", "Conv"].includes(other?.producer?.op ?? "");
      }
      default:
        return false;
    }
  });
}

export class TrainProgram {
  readonly params: Param[] = [];
  readonly buffers: Buffer[] = [];
  readonly #steps: Step[] = [];
  readonly #g: Graph;
  readonly #scratch: Scratch;
  readonly #paramOf = new Map<Value, Param>();
  readonly #bufferOf = new Map<Value, Tensor>();
  readonly #inputGrads: Set<string>;
  readonly #buffers: Map<number, Float32Array>[] = [];
  readonly #extra: string[];
  #values = new Map<Value, Tensor>();
  #peakActivationBytes = 0;
  /** Milliseconds per node name, forward and backward, when profiling. */
  profile?: Map<string, { op: string; forwardMs: number; backwardMs: number }>;

  private constructor(g: Graph, mod: KernelModule, opts: ProgramOptions) {
    this.#g = g;
    this.#scratch = new Scratch(mod);
    this.#inputGrads = new Set(opts.inputGrads ?? []);
    this.#extra = opts.outputs ?? [];
    for (const name of this.#inputGrads) {
      if (!g.inputs.some((v) => v.name === name)) {
        throw new ArgumentError(`training: '${name}' is not an input of the graph`);
      }
    }
    for (const name of this.#extra) {
      if (!g.values.has(name)) throw new ArgumentError(`training: no value '${name}' in the graph`);
    }
    const trainable = opts.trainable ?? defaultTrainable;
    const requires = new Set<Value>();
    for (const v of g.values.values()) {
      if (!v.constant) continue;
      if (trainable(v, g)) {
        const t = v.constant;
        const p: Param = {
          name: v.name,
          data: Float32Array.from(t.data as Float32Array),
          grad: new Float32Array(t.data.length),
          decay: t.dims.length >= 2,
        };
        this.params.push(p);
        this.#paramOf.set(v, p);
        requires.add(v);
      } else if (v.consumers.some((n) => n.op === "BatchNormalization" && !n.domain)) {
        const slot = v.consumers[0].inputs.indexOf(v);
        if ((slot === 3 || slot === 4) && v.constant.type === "float32") {
          const data = Float32Array.from(v.constant.data as Float32Array);
          this.buffers.push({ name: v.name, data });
          this.#bufferOf.set(v, { type: "float32", dims: [...v.constant.dims], data });
        }
      }
    }
    for (const v of g.inputs) if (this.#inputGrads.has(v.name)) requires.add(v);
    for (const node of g.nodes) {
      const needGrad = node.inputs.map((v) => !!v && requires.has(v));
      const any = needGrad.some((b) => b);
      const factory = TRAIN_OPS[node.qualifiedOp];
      let grad = any;
      if (any && !factory) {
        if (NON_DIFFERENTIABLE.has(node.op) && !node.domain) grad = false;
        else {
          throw new UnsupportedError(
            `training: node '${node.name}' (${node.qualifiedOp}) has no backward pass in sqz; ` +
              `trainable layers reach it (supported: ${Object.keys(TRAIN_OPS).join(", ")})`,
          );
        }
      }
      if (!factory && !hasInferenceOp(node.qualifiedOp)) {
        throw new UnsupportedError(
          `training: node '${node.name}' has op '${node.qualifiedOp}', which sqz cannot run`,
        );
      }
      const bufs = new Map<number, Float32Array>();
      this.#buffers.push(bufs);
      const buffer = (slot: number, n: number) => {
        let b = bufs.get(slot);
        if (!b || b.length !== n) bufs.set(slot, b = new Float32Array(n));
        return b;
      };
      const ctx: TrainContext = {
        node,
        opset: g.opsets.get(node.domain === "ai.onnx" ? "" : node.domain) ??
          (node.domain ? 1 : 13),
        scratch: this.#scratch,
        training: true,
        needGrad,
        buffer,
        zeros: (slot, n) => buffer(slot, n).fill(0),
      };
      const op = factory ? factory(ctx) : noGrad(ctx);
      if (grad) {
        for (const o of node.outputs) {
          if (o.type === undefined || o.type === "float32") requires.add(o);
        }
      }
      this.#steps.push({ node, op, ctx, grad });
    }
  }

  static async create(g: Graph, opts: ProgramOptions = {}): Promise<TrainProgram> {
    const mod = opts.mod ?? await KernelModule.load("auto");
    return new TrainProgram(g, mod, opts);
  }

  get graph(): Graph {
    return this.#g;
  }

  /** Runs the graph; returns the graph outputs and the requested extra values by name. */
  forward(feeds: Record<string, Tensor>, training = true): Record<string, Tensor> {
    const vals = new Map<Value, Tensor>();
    for (const v of this.#g.inputs) {
      const t = feeds[v.name];
      if (!t) throw new ArgumentError(`training: feed '${v.name}' is missing`);
      vals.set(v, t);
    }
    const read = (v: Value | undefined): Tensor | undefined => {
      if (!v) return undefined;
      const have = vals.get(v);
      if (have) return have;
      const p = this.#paramOf.get(v);
      if (p) return { type: "float32", dims: [...v.constant!.dims], data: p.data };
      return this.#bufferOf.get(v) ?? v.constant;
    };
    let bytes = 0;
    for (const s of this.#steps) {
      s.ctx.training = training;
      const ins = s.node.inputs.map(read);
      const t0 = this.profile ? performance.now() : 0;
      const outs = s.op.forward(ins);
      if (this.profile) this.#timed(s.node).forwardMs += performance.now() - t0;
      s.node.outputs.forEach((v, i) => {
        if (outs[i]) {
          vals.set(v, outs[i]);
          bytes += outs[i].data.byteLength;
        }
      });
    }
    this.#peakActivationBytes = Math.max(this.#peakActivationBytes, bytes);
    this.#values = vals;
    const out: Record<string, Tensor> = {};
    for (const v of this.#g.outputs) out[v.name] = vals.get(v) ?? read(v)!;
    for (const name of this.#extra) out[name] = read(this.#g.values.get(name))!;
    return out;
  }

  /**
   * Backpropagates d(loss)/d(value) for the given values (outputs of the last forward), adding
   * into every parameter's grad; returns the gradients of the requested inputs.
   */
  backward(seeds: Record<string, Float32Array>): Record<string, Float32Array> {
    const grads = new Map<Value, { g: Float32Array; owned: boolean }>();
    const add = (v: Value, g: Float32Array) => {
      const have = grads.get(v);
      if (!have) grads.set(v, { g, owned: false });
      else if (have.owned) {
        for (let i = 0; i < g.length; i++) have.g[i] += g[i];
      } else {
        const sum = new Float32Array(have.g);
        for (let i = 0; i < g.length; i++) sum[i] += g[i];
        grads.set(v, { g: sum, owned: true });
      }
    };
    for (const [name, g] of Object.entries(seeds)) {
      const v = this.#g.values.get(name);
      const t = v && this.#values.get(v);
      if (!v || !t) throw new ArgumentError(`training: no output '${name}' to seed`);
      if (t.data.length !== g.length) {
        throw new ShapeError(
          `training: seed '${name}' has ${g.length} values, expected ${t.data.length}`,
        );
      }
      add(v, g);
    }
    for (let i = this.#steps.length - 1; i >= 0; i--) {
      const s = this.#steps[i];
      if (!s.grad) continue;
      const dOut = s.node.outputs.map((v) => grads.get(v)?.g);
      if (dOut.every((d) => !d)) continue;
      const t0 = this.profile ? performance.now() : 0;
      const dIn = s.op.backward(dOut);
      if (this.profile) this.#timed(s.node).backwardMs += performance.now() - t0;
      s.node.inputs.forEach((v, j) => {
        const d = dIn[j];
        if (!v || !d || !s.ctx.needGrad[j]) return;
        const p = this.#paramOf.get(v);
        if (p) {
          const pg = p.grad;
          for (let k = 0; k < d.length; k++) pg[k] += d[k];
        } else add(v, d);
      });
      for (const v of s.node.outputs) grads.delete(v);
    }
    const out: Record<string, Float32Array> = {};
    for (const v of this.#g.inputs) {
      const g = grads.get(v);
      if (this.#inputGrads.has(v.name)) out[v.name] = g ? g.g : new Float32Array(0);
    }
    this.#values = new Map();
    return out;
  }

  #timed(n: Node) {
    let e = this.profile!.get(n.name);
    if (!e) this.profile!.set(n.name, e = { op: n.qualifiedOp, forwardMs: 0, backwardMs: 0 });
    return e;
  }

  zeroGrad(): void {
    for (const p of this.params) p.grad.fill(0);
  }

  /** Writes the trained parameters and buffers back into `g`'s constants, by value name. */
  writeBack(g: Graph = this.#g): void {
    const put = (name: string, data: Float32Array) => {
      const v = g.values.get(name);
      if (!v?.constant) return;
      v.constant = { type: "float32", dims: [...v.constant.dims], data: Float32Array.from(data) };
    };
    for (const p of this.params) put(p.name, p.data);
    for (const b of this.buffers) put(b.name, b.data);
  }

  /** Memory the program holds: parameters and their gradients, activations at peak, scratch. */
  get memory(): {
    paramBytes: number;
    activationBytes: number;
    bufferBytes: number;
    scratchBytes: number;
  } {
    const paramBytes = this.params.reduce((s, p) => s + p.data.byteLength * 2, 0);
    let bufferBytes = 0;
    for (const m of this.#buffers) for (const b of m.values()) bufferBytes += b.byteLength;
    return {
      paramBytes,
      activationBytes: this.#peakActivationBytes,
      bufferBytes,
      scratchBytes: this.#scratch.bytes,
    };
  }

  dispose(): void {
    this.#scratch.dispose();
  }
}
