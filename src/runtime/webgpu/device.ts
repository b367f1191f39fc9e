// The WebGPU device sqz's GPU kernels run on: one adapter and device per process, requested on
// first use. Asking for WebGPU where it cannot run is a BackendUnavailableError that says why;
// nothing falls back silently (the complaint users of onnxruntime-web's ['webgpu', 'wasm'] have).
// Deno exposes navigator.gpu with --unstable-webgpu; on machines without a GPU, Mesa's lavapipe
// (Debian's mesa-vulkan-drivers) is a software adapter: correct, not fast.
import { BackendUnavailableError } from "../../errors.ts";

export interface GpuContext {
  device: GPUDevice;
  /** The adapter's vendor/architecture/description, for reports and benchmarks. */
  adapterName: string;
  /** Whether it is a CPU (software) adapter, such as lavapipe or SwiftShader. */
  software: boolean;
  /** WGSL's packed_4x8_integer_dot_product: dot4I8Packed / dot4U8Packed in shaders. */
  packedDot: boolean;
  /** The device's limit on one storage buffer binding, in bytes. */
  maxStorageBytes: number;
}

let pending: Promise<GpuContext> | undefined;

function describe(info: GPUAdapterInfo | undefined): string {
  if (!info) return "unknown adapter";
  const parts = [info.vendor, info.architecture, info.device, info.description]
    .filter((s) => s && s.length);
  return parts.length ? parts.join(" ") : "unnamed adapter";
}

async function open(): Promise<GpuContext> {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) {
    throw new BackendUnavailableError(
      "WebGPU is not available here: navigator.gpu is missing (Deno needs --unstable-webgpu; " +
        "browsers need a secure context)",
    );
  }
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) {
    throw new BackendUnavailableError(
      "WebGPU has no adapter on this machine (no GPU driver; on Debian, mesa-vulkan-drivers " +
        "provides a software one)",
    );
  }
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  const maxStorageBytes = adapter.limits.maxStorageBufferBindingSize;
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: maxStorageBytes,
      maxBufferSize: adapter.limits.maxBufferSize,
    },
  });
  device.lost.then(() => {
    pending = undefined; // the next caller asks for a new device
  });
  const lang = (gpu as GPU & { wgslLanguageFeatures?: ReadonlySet<string> }).wgslLanguageFeatures;
  const name = describe(info);
  return {
    device,
    adapterName: name,
    software: /llvmpipe|lavapipe|swiftshader|software|cpu/i.test(name) ||
      (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter === true,
    packedDot: lang?.has("packed_4x8_integer_dot_product") ?? false,
    maxStorageBytes,
  };
}

/** The process's GPU context; throws BackendUnavailableError where WebGPU cannot run. */
export function gpuContext(): Promise<GpuContext> {
  pending ??= open().catch((e) => {
    pending = undefined;
    throw e;
  });
  return pending;
}

/** Whether a WebGPU adapter exists here (never throws). */
export async function gpuAvailable(): Promise<boolean> {
  try {
    await gpuContext();
    return true;
  } catch {
    return false;
  }
}
