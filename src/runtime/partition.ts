// Places every node on a backend, wasm or webgpu, and says why.
//
// A node goes to the GPU when a GPU kernel accepts it. Then, with `merge` (backend "auto"),
// every island — a maximal run of consecutive GPU nodes in execution order — is judged by a
// simple cost model and returned to Wasm when the transfers it needs cost more than it saves,
// so a model never ping-pongs between the backends for a few cheap nodes:
//
//   wasm time(node)   = MACs / (WASM_GMACS · threads) + bytes written / WASM_BYTES_PER_MS
//   gpu time(node)    = dispatch + MACs / gpu GMAC/s + bytes written / gpu bytes per ms
//   transfer(island)  = SYNC_MS per direction used + bytes in and out / BUS_BYTES_PER_MS
//
// The rates are round figures, not measurements of this machine: a discrete or integrated GPU
// (HARDWARE) and a software adapter such as lavapipe (SOFTWARE, measured by `deno task bench
// webgpu` at ~0.5–6 GMAC/s with ~12 ms a dispatch round trip). Symbolic dims count as 1.
import type { Node, Value } from "../graph/ir.ts";
import { ELEMENT_BYTES, type TensorType } from "../graph/tensor.ts";

export type BackendName = "wasm" | "webgpu";

export interface Placement {
  node: string;
  op: string;
  backend: BackendName;
  /** Why this backend: the GPU kernel, the missing kernel, or the island's costs. */
  reason: string;
}

interface GpuRates {
  gmacs: number;
  dispatchMs: number;
  bytesPerMs: number;
}

const HARDWARE: GpuRates = { gmacs: 500, dispatchMs: 0.01, bytesPerMs: 100e6 };
const SOFTWARE: GpuRates = { gmacs: 2, dispatchMs: 1, bytesPerMs: 2e6 };
const WASM_GMACS = 15;
const WASM_BYTES_PER_MS = 4e6;
const SYNC_MS = 0.1;
const BUS_BYTES_PER_MS = 8e6;

const num = (d: unknown) => (typeof d === "number" && d > 0 ? d : 1);

function valueBytes(v: Value): number {
  const dims = v.constant?.dims ?? v.shape ?? [];
  const count = dims.reduce((a: number, d) => a * num(d), 1);
  return count * (ELEMENT_BYTES[(v.type ?? "float32") as TensorType] ?? 4);
}

/** Multiply-accumulates of the GEMM-like nodes (output elements × K); 0 for the others. */
function macsOf(n: Node): number {
  if (n.op !== "Gemm" && n.op !== "MatMul") return 0;
  const out = n.outputs[0]?.shape, a = n.inputs[0]?.shape;
  if (!out || !a?.length) return 0;
  const k = num(a[a.length - 1]);
  return out.reduce((x: number, d) => x * num(d), 1) * k;
}

export interface PartitionOptions {
  /** Per node: the GPU kernel's name when one accepted it, else why not. */
  gpu: ({ kernel: string } | { missing: string })[];
  /** Judge islands by the cost model (backend "auto"); else keep every GPU-capable node there. */
  merge: boolean;
  software: boolean;
  threads: number;
  graphOutputs: ReadonlySet<Value>;
}

export function partition(nodes: readonly Node[], opts: PartitionOptions): Placement[] {
  const rates = opts.software ? SOFTWARE : HARDWARE;
  const placed: Placement[] = nodes.map((n, i) => {
    const g = opts.gpu[i];
    return "kernel" in g
      ? { node: n.name, op: n.qualifiedOp, backend: "webgpu", reason: `WebGPU kernel ${g.kernel}` }
      : { node: n.name, op: n.qualifiedOp, backend: "wasm", reason: g.missing };
  });
  if (!opts.merge) return placed;
  let i = 0;
  while (i < nodes.length) {
    if (placed[i].backend !== "webgpu") {
      i++;
      continue;
    }
    let j = i;
    while (j < nodes.length && placed[j].backend === "webgpu") j++;
    const island = new Set(nodes.slice(i, j));
    const produced = new Set(nodes.slice(i, j).flatMap((n) => n.outputs));
    let inBytes = 0, outBytes = 0, saved = 0;
    const seen = new Set<Value>();
    for (const n of island) {
      for (const v of n.inputs) {
        if (!v || v.constant || produced.has(v) || seen.has(v)) continue;
        seen.add(v);
        inBytes += valueBytes(v);
      }
      const macs = macsOf(n);
      const written = n.outputs.reduce((a, v) => a + valueBytes(v), 0);
      const wasm = macs / (WASM_GMACS * 1e6 * opts.threads) + written / WASM_BYTES_PER_MS;
      const gpu = rates.dispatchMs + macs / (rates.gmacs * 1e6) + written / rates.bytesPerMs;
      saved += wasm - gpu;
      for (const v of n.outputs) {
        const leaves = opts.graphOutputs.has(v) || v.consumers.some((c) => !island.has(c));
        if (leaves) outBytes += valueBytes(v);
      }
    }
    const transfer = (inBytes ? SYNC_MS : 0) + (outBytes ? SYNC_MS : 0) +
      (inBytes + outBytes) / BUS_BYTES_PER_MS;
    if (saved <= transfer) {
      const why =
        `kept on wasm: its GPU island of ${j - i} node(s) would save ${
          saved.toFixed(3)
        } ms but its transfers cost ${transfer.toFixed(3)} ms` +
        (opts.software ? " (software adapter)" : "");
      for (let t = i; t < j; t++) placed[t] = { ...placed[t], backend: "wasm", reason: why };
    }
    i = j;
  }
  return placed;
}
