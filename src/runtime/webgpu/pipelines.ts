// Compiled compute pipelines, one per shader and entry point per device, made on first use.
import { ShapeError } from "../../errors.ts";
import type { GpuContext } from "./device.ts";

const pipelines = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

export function pipeline(
  ctx: GpuContext,
  key: string,
  code: string,
  entry = "main",
): GPUComputePipeline {
  let byKey = pipelines.get(ctx.device);
  if (!byKey) pipelines.set(ctx.device, byKey = new Map());
  const id = `${key}:${entry}`;
  let p = byKey.get(id);
  if (!p) {
    const module = ctx.device.createShaderModule({ code, label: key });
    p = ctx.device.createComputePipeline({
      layout: "auto",
      compute: { module, entryPoint: entry },
      label: id,
    });
    byKey.set(id, p);
  }
  return p;
}

const MAX_GROUPS = 65535;

/** A 2-D grid of at least `groups` workgroups (x first), for shaders that flatten wg.y·nwg.x + wg.x. */
export function grid(groups: number): [number, number] {
  if (groups <= MAX_GROUPS) return [Math.max(1, groups), 1];
  const y = Math.ceil(groups / MAX_GROUPS);
  if (y > MAX_GROUPS) throw new ShapeError(`${groups} workgroups exceed WebGPU's grid`);
  return [Math.ceil(groups / y), y];
}

/** Records one dispatch of `pipe` over `buffers` (bindings 0, 1, …). */
export function encodeDispatch(
  ctx: GpuContext,
  encoder: GPUCommandEncoder,
  pipe: GPUComputePipeline,
  buffers: GPUBuffer[],
  groups: [number, number],
): void {
  if (groups[0] > MAX_GROUPS || groups[1] > MAX_GROUPS) {
    throw new ShapeError(
      `${groups.join("×")} workgroups exceed WebGPU's ${MAX_GROUPS} per dimension`,
    );
  }
  const bind = ctx.device.createBindGroup({
    layout: pipe.getBindGroupLayout(0),
    entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipe);
  pass.setBindGroup(0, bind);
  pass.dispatchWorkgroups(groups[0], groups[1]);
  pass.end();
}
