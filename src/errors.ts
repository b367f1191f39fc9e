// Typed errors. Callers can switch on `code` (stable, machine-readable) or on the class.
export class SqzError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Shapes, dimensions or dtypes that do not fit the operation. */
export class ShapeError extends SqzError {
  constructor(message: string) {
    super("invalid_shape", message);
  }
}

/** A buffer or parameter whose value is out of range (too small, wrong dtype, bad scale). */
export class ArgumentError extends SqzError {
  constructor(message: string) {
    super("invalid_argument", message);
  }
}

/** Wasm linear memory cannot hold what was asked for. */
export class OutOfMemoryError extends SqzError {
  constructor(message: string) {
    super("out_of_memory", message);
  }
}

/** The runtime lacks something the caller required (e.g. relaxed SIMD). */
export class UnsupportedError extends SqzError {
  constructor(message: string) {
    super("unsupported", message);
  }
}

/** A model that is malformed or that sqz cannot load (bad bytes, cycles, missing data). */
export class ModelError extends SqzError {
  constructor(message: string) {
    super("invalid_model", message);
  }
}

/** Fine-tuning could not go on: the loss became NaN or exploded. */
export class TrainingError extends SqzError {
  constructor(message: string) {
    super("training_diverged", message);
  }
}

/** A kernel failed while running: a trap on a worker thread, or a stopped thread pool. */
export class KernelError extends SqzError {
  constructor(message: string) {
    super("kernel_failed", message);
  }
}

/** A backend that was asked for by name cannot run here (no WebGPU adapter, say). */
export class BackendUnavailableError extends SqzError {
  constructor(message: string) {
    super("backend_unavailable", message);
  }
}
