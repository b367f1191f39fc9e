// Messages between the playground page (playground.ts) and its compression worker
// (compress_worker.ts). Byte arrays are transferred, not copied.

/** Page → worker: compress `model` with `recipe`, then evaluate it. */
export interface WorkerRequest {
  model: Uint8Array;
  /** The model's first input, which `samples` feed. */
  input: string;
  /** A preset name or a JSON recipe. */
  recipe: string;
  /** .npy bytes, N samples along dim 0: calibration data (the first 256) and evaluation set. */
  samples?: Uint8Array;
  /** .npy bytes, N integer class labels. */
  labels?: Uint8Array;
}

export type WorkerReply =
  | { type: "progress"; progress: number; stage: string }
  | { type: "error"; message: string }
  | {
    type: "done";
    model: Uint8Array;
    accuracy?: number;
    referenceAccuracy?: number;
    agreement?: number;
    reportHtml?: string;
  };
