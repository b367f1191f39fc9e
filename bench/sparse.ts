// `deno task bench sparse`: the sparse f32 GEMM (kernels/gemm/gemm_sparse_f32.ts) against the
// dense f32 GEMM on the same weights, with 70–95% of them pruned at random (unstructured), in
// each SIMD build (--scalar adds the scalar one). Per shape the dense GEMM and every sparsity
// run in the same interleaved rounds (bench/timing.ts), so the ratios (dense time / sparse
// time: > 1 means sparse is faster) compare like with like on a noisy machine. Both run on A
// resident in Wasm memory, C left there too (the copy out is the same for both). The weight
// column gives the packed bytes as a share of the dense f32 packing.
import { KernelModule } from "../src/kernels/module.ts";
import { availableBuilds, type KernelBuild } from "../src/kernels/features.ts";
import { PackedGemmF32 } from "../src/kernels/gemm_f32.ts";
import { PackedGemmSparseF32 } from "../src/kernels/gemm_sparse.ts";
import { measureInterleaved, table } from "./timing.ts";

export const SPARSE_SHAPES: [number, number, number][] = [
  // Conv-like M (a 16×16 feature map through a 1×1 convolution of 1024 channels).
  [256, 1024, 1024],
  [64, 1024, 1024],
  [16, 1024, 1024],
  [4, 1024, 1024],
  // Batch-1 GEMV of an LLM-sized layer: 64 MB of dense f32 weights.
  [1, 4096, 4096],
  [1, 1024, 1024],
];
export const SPARSITIES = [0.7, 0.8, 0.9, 0.95];

function rand(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

/** Weights with round(sparsity · K·N) zeros at random positions. */
function pruned(k: number, n: number, sparsity: number, seed: number): Float32Array {
  const b = rand(k * n, seed);
  let s = seed ^ 0x9e3779b9;
  for (let i = 0; i < b.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    if (s / 2 ** 32 < sparsity) b[i] = 0;
  }
  return b;
}

interface Row {
  suite: "sparse";
  build: KernelBuild;
  threads: number;
  shape: [number, number, number];
  sparsity: number;
  dense_ms: number;
  sparse_ms: number;
  ratio: number;
  weight_share: number;
}

export async function benchSparse(opts: {
  json?: boolean;
  quick?: boolean;
  scalar?: boolean;
  threads?: number;
  shapes?: [number, number, number][];
}): Promise<Row[]> {
  const threads = opts.threads ?? 1;
  const builds = availableBuilds().filter((b) => b !== "scalar" || opts.scalar);
  const shapes = opts.shapes ??
    (opts.quick ? SPARSE_SHAPES.filter(([m, n, k]) => m * n * k <= 2 ** 26) : SPARSE_SHAPES);
  const rows: Row[] = [];
  const load = (await Deno.readTextFile("/proc/loadavg").catch(() => "?")).trim();
  if (!opts.json) console.log(`sparse vs dense f32 GEMM, ${threads} thread(s), load ${load}`);
  for (const build of builds) {
    const mod = await KernelModule.load(build, { threads });
    if (threads > 1) await mod.threadsReady();
    for (const [m, n, k] of shapes) {
      const a = mod.heap.alloc(m * k * 4), c = mod.heap.alloc(m * n * 4);
      mod.f32(a, m * k).set(rand(m * k, 1));
      const dense = PackedGemmF32.create(mod, { k, n, b: rand(k * n, 2) });
      const sparse = SPARSITIES.map((s, i) =>
        PackedGemmSparseF32.create(mod, { k, n, b: pruned(k, n, s, 3 + i) })
      );
      const denseBytes = Math.ceil(n / 8) * (8 + 8 * k) * 4;
      const t = await measureInterleaved(
        [
          () => dense.runResident(m, a, c),
          ...sparse.map((g) => () => g.runResident(m, a, c)),
        ],
        opts.quick ? { budgetMs: 1500, minRounds: 5 } : {},
      );
      SPARSITIES.forEach((s, i) => {
        rows.push({
          suite: "sparse",
          build,
          threads,
          shape: [m, n, k],
          sparsity: s,
          dense_ms: t[0].median_ms,
          sparse_ms: t[i + 1].median_ms,
          ratio: t[0].median_ms / t[i + 1].median_ms,
          weight_share: sparse[i].bytes / denseBytes,
        });
      });
      dense.dispose();
      for (const g of sparse) g.dispose();
      mod.heap.free(a);
      mod.heap.free(c);
    }
    mod.dispose();
  }
  if (opts.json) console.log(JSON.stringify(rows));
  else {
    console.log(table(
      ["build", "M×N×K", "sparsity", "dense ms", "sparse ms", "dense/sparse", "weights"],
      rows.map((r) => [
        r.build,
        r.shape.join("×"),
        `${Math.round(r.sparsity * 100)}%`,
        r.dense_ms.toFixed(3),
        r.sparse_ms.toFixed(3),
        `${r.ratio.toFixed(2)}×`,
        `${(r.weight_share * 100).toFixed(1)}%`,
      ]),
    ));
  }
  return rows;
}
