// Checkpoint bytes of a fine-tuning run: everything needed to resume after the last finished
// epoch and get exactly the uninterrupted result (same parameters, buffers, optimizer slots,
// best-so-far snapshot and history; the batch order is a function of seed and epoch).
//
//   u32 LE  header length H
//   H bytes UTF-8 JSON: { format: "sqz.checkpoint", version: 1, meta: {...},
//                         tensors: [{ name, length }] }   (float32 counts, in order)
//   then every tensor's float32 LE data, concatenated in the header's order.
import { ArgumentError } from "../errors.ts";

export interface CheckpointContents {
  meta: Record<string, unknown>;
  tensors: Map<string, Float32Array>;
}

export function encodeCheckpoint(c: CheckpointContents): Uint8Array {
  const list = [...c.tensors].map(([name, a]) => ({ name, length: a.length }));
  const header = new TextEncoder().encode(
    JSON.stringify({ format: "sqz.checkpoint", version: 1, meta: c.meta, tensors: list }),
  );
  const floats = list.reduce((s, t) => s + t.length, 0);
  const out = new Uint8Array(4 + header.length + floats * 4);
  new DataView(out.buffer).setUint32(0, header.length, true);
  out.set(header, 4);
  let at = 4 + header.length;
  for (const a of c.tensors.values()) {
    out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
    at += a.byteLength;
  }
  return out;
}

export function decodeCheckpoint(b: Uint8Array): CheckpointContents {
  const bad = (why: string) => new ArgumentError(`checkpoint: ${why}`);
  if (b.length < 4) throw bad("too short");
  const h = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0, true);
  if (4 + h > b.length) throw bad("header runs past the end");
  let head: {
    format?: string;
    version?: number;
    meta?: Record<string, unknown>;
    tensors?: { name: string; length: number }[];
  };
  try {
    head = JSON.parse(new TextDecoder().decode(b.subarray(4, 4 + h)));
  } catch {
    throw bad("header is not JSON");
  }
  if (head.format !== "sqz.checkpoint" || head.version !== 1 || !Array.isArray(head.tensors)) {
    throw bad("not an sqz checkpoint of version 1");
  }
  const tensors = new Map<string, Float32Array>();
  let at = 4 + h;
  for (const t of head.tensors) {
    if (!Number.isSafeInteger(t.length) || t.length < 0 || at + t.length * 4 > b.length) {
      throw bad(`tensor '${t.name}' runs past the end`);
    }
    tensors.set(t.name, new Float32Array(b.slice(at, at + t.length * 4).buffer));
    at += t.length * 4;
  }
  if (at !== b.length) throw bad("trailing bytes");
  return { meta: head.meta ?? {}, tensors };
}
