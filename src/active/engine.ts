/**
 * The local engine: plan the chunks a selection touches, read and decode them through zarrita with
 * bounded concurrency, reduce each with the chunk kernel and merge the partials. Memory is bounded
 * by workers × chunk size whatever the selection, because the plan is a lazy generator and a
 * chunk's data is dropped as soon as its partials are merged; the number of workers is capped by a
 * byte budget, so huge chunks do not multiply by the concurrency.
 */
import { UnsupportedFeatureError } from "../errors.js";
import { ArenaPool } from "../stores/arena-pool.js";
import { BufferPool } from "../stores/buffer-pool.js";
import { recycleDecoded } from "../codecs/pool.js";
import { attachSimd, SIMD_RESERVED } from "./kernel-simd.js";
import { DIRECT_READS, DirectReader } from "./direct.js";
import { arrayLayout, type ArrayLayout, type ZarrArrayLike } from "./layout.js";
import { ITEM_SIZE } from "./elements.js";
import { checkDecodedChunk, reduceChunk, type MissingRules, type NumericArray } from "./kernel.js";
import { emptyPartials, mergePartials, type Partials } from "./partials.js";
import { planChunks, type ChunkTask } from "./plan.js";
import { normalizeAxes, toHyperslab, type Hyperslab, type Selection } from "./selection.js";

export interface ReduceOptions {
  /** Axes of the selected array to reduce over; default all. */
  axis?: number | readonly number[] | null;
  missing?: MissingRules;
  /** Compute M2 for variance/std. */
  moments?: boolean;
  /** Track min/max (default true); a mean, sum or count can leave them out. */
  extremes?: boolean;
  /** Chunks read and reduced at once. Default 16. */
  concurrency?: number;
  /**
   * Decoded bytes of chunks in flight at once: large chunks get fewer workers (never fewer than
   * one), so memory stays bounded whatever the chunk size. Default 32 MiB.
   */
  memoryBudget?: number;
  /**
   * Where chunk reads take their buffers: each chunk's bytes are given back as soon as the chunk is
   * reduced, so a few buffers carry the whole read instead of one fresh allocation per chunk. Default
   * a pool of this call's own; `false` allocates per read.
   */
  buffers?: BufferPool | false;
  signal?: AbortSignal;
}

export interface ReducePlan {
  slab: Hyperslab;
  /** Per array dimension: absent from the output (dropped by an integer index, or reduced). */
  collapsed: boolean[];
  outShape: number[];
}

/**
 * What the engine reduces: a zarrita array, or anything shaped like one. The engine passes
 * `buffers` down with each read (zarrita hands its options to the store) and gives the chunk's
 * data back to that pool once the chunk is reduced; a source that keeps chunks it returned (a
 * chunk cache) must not pass `buffers` on to its store.
 */
export interface ChunkSource {
  readonly shape: readonly number[];
  readonly chunks: readonly number[];
  readonly dtype: string;
  getChunk(
    coords: number[],
    options?: { signal?: AbortSignal; buffers?: BufferPool },
  ): Promise<{ data: unknown; shape: number[]; stride: number[] }>;
}

/** Workers for a reduction: `concurrency`, fewer when that many decoded chunks would exceed the budget. */
export function workerCount(array: Pick<ChunkSource, "chunks" | "dtype">, options: ReduceOptions = {}): number {
  const wanted = Math.max(1, Math.floor(options.concurrency ?? 16));
  const chunkBytes = array.chunks.reduce((a, b) => a * b, ITEM_SIZE[array.dtype] ?? 8);
  const budget = options.memoryBudget ?? 32 * 2 ** 20;
  return Math.max(1, Math.min(wanted, Math.floor(budget / chunkBytes)));
}

const NUMERIC = new Set([
  "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64",
]);

export function isBigintDtype(dtype: string): boolean {
  return dtype === "int64" || dtype === "uint64";
}

export function planReduction(
  shape: readonly number[],
  selection: Selection,
  axis: ReduceOptions["axis"],
): ReducePlan {
  const slab = toHyperslab(selection, shape);
  const kept = slab.map((r, d) => (r.dropped ? -1 : d)).filter((d) => d >= 0);
  const axes = new Set(normalizeAxes(axis, kept.length).map((a) => kept[a]));
  const collapsed = slab.map((r, d) => r.dropped || axes.has(d));
  const outShape = slab.filter((_, d) => !collapsed[d]).map((r) => r.count);
  return { slab, collapsed, outShape };
}

/** Where a chunk's output block starts in the result. */
export function blockOffset(task: ChunkTask, collapsed: readonly boolean[]): number[] {
  return task.pieces.filter((_, d) => !collapsed[d]).map((p) => p.outStart);
}

/**
 * Where the engine's reads land: for float64, an arena in wasm memory the SIMD kernel sums in place
 * (raw chunks are views of the read), sized for the reads in flight; else a plain pool.
 */
export function readBuffers(array: ChunkSource, layout: ArrayLayout | undefined, options: ReduceOptions): BufferPool | undefined {
  if (options.buffers !== undefined) return options.buffers === false ? undefined : options.buffers;
  const chunkBytes = array.chunks.reduce((a, b) => a * b, 8);
  // Only raw chunks: a codec decodes into new memory, so the read of a compressed chunk would
  // never come back to the arena, which would fill up and stay resident for nothing.
  if (array.dtype === "float64" && chunkBytes >= 64 * 1024 && layout?.plainElements) {
    // Reads in flight, each up to the batch reader's 8 MiB blocks; past the arena, plain buffers.
    const capacity = Math.min(ARENA_MAX, Math.max(8 << 20, 2 * workerCount(array, options) * chunkBytes));
    try {
      const arena = new ArenaPool(capacity, { reserved: SIMD_RESERVED });
      if (attachSimd(arena.memory)) return arena;
    } catch {
      // No address space for a wasm memory (ulimit -v): plain buffers, the JavaScript loops.
    }
  }
  return new BufferPool();
}

const ARENA_MAX = 64 << 20;

export async function reduceArray(
  array: ChunkSource,
  selection: Selection,
  options: ReduceOptions = {},
): Promise<{ partials: Partials; chunks: number }> {
  if (!NUMERIC.has(array.dtype)) {
    throw new UnsupportedFeatureError(
      `data type ${array.dtype}`,
      "active reduction",
      "reductions need a numeric variable (int8…uint64, float32, float64)",
    );
  }
  const plan = planReduction(array.shape, selection, options.axis);
  const big = isBigintDtype(array.dtype);
  const total = emptyPartials(plan.outShape, big, options.moments ?? false, big || options.extremes !== false);
  const tasks = planChunks(plan.slab, array.chunks);
  const kernelOptions = { missing: options.missing, moments: options.moments, extremes: options.extremes };
  const signal = options.signal;
  const layout = await arrayLayout(array);
  const buffers = readBuffers(array, layout, options);
  const readOptions = signal || buffers ? { signal, buffers } : undefined;
  // The caller's signal goes to every read as is: a signal of our own (to cancel reads when one
  // fails) costs ~15 µs per chunk in listeners through the store layers, a tenth of what a whole
  // chunk otherwise costs. After a failure the workers stop pulling tasks, and we wait for the reads
  // in flight (at most one per worker) so nothing runs on after we return.
  let failure: { error: unknown } | undefined;
  let chunks = 0;
  // Blocks are merged in plan order, whatever order they finish in, so float sums round the same
  // way on every run, at any concurrency, and as the server client merges them. A worker does not
  // run more than `window` tasks ahead of the merge point, which bounds the blocks waiting.
  // Raw chunks of local files are read here, a few at a time unless the caller says (see direct.ts).
  const direct = DirectReader.for(array as ZarrArrayLike, layout, buffers);
  const full = workerCount(array, options);
  const n = direct && options.concurrency === undefined ? Math.min(DIRECT_READS, full) : full;
  let window = 4 * n;
  const pending = new Map<number, { task: ChunkTask; block: Partials }>();
  let issued = 0;
  let merged = 0;
  let wake: (() => void)[] = [];
  const advance = () => {
    while (pending.has(merged)) {
      const { task, block } = pending.get(merged)!;
      pending.delete(merged++);
      mergePartials(total, block, blockOffset(task, plan.collapsed));
      chunks++;
    }
    const waiting = wake;
    wake = [];
    for (const w of waiting) w();
  };
  // Each worker holds at most one chunk (its read, then its decoded data until reduced), so memory
  // is workers × chunk size; the reads of all workers are in flight together, which is what lets
  // the reference store coalesce neighbouring chunks and keeps libuv's pool decoding while this
  // thread reduces.
  const worker = async () => {
    for (let next = tasks.next(); !next.done && failure === undefined; next = tasks.next()) {
      const index = issued++;
      while (index >= merged + window && failure === undefined) await new Promise<void>((r) => wake.push(r));
      if (failure !== undefined) return;
      signal?.throwIfAborted();
      const task = next.value;
      const own = await direct?.getChunk(task.coords, signal);
      // A chunk that is not a plain local range (elsewhere, inline, never written) goes to zarrita
      // and its store: from then on the whole concurrency, since only local copies wanted few.
      if (!own && started < full) grow();
      const chunk = own ?? (await array.getChunk(task.coords, readOptions));
      if (failure !== undefined) return;
      signal?.throwIfAborted();
      checkDecodedChunk(chunk.data as NumericArray, chunk.shape, task.coords.join("."));
      const block = reduceChunk(
        {
          data: chunk.data as NumericArray,
          chunkShape: chunk.shape,
          strides: chunk.stride,
          pieces: task.pieces,
          collapsed: plan.collapsed,
        },
        kernelOptions,
      );
      // The partials are new arrays; nothing refers to the chunk's bytes any more. A chunk that is
      // not a view of a pooled read (decoded by a codec, copied, fill) is ignored by the pool.
      // Same contract as the buffers (a source that keeps chunks passes `buffers: false`): a chunk
      // the codec pool decoded goes back to its workers.
      if (buffers && ArrayBuffer.isView(chunk.data)) {
        buffers.give(chunk.data);
        recycleDecoded(chunk.data);
      }
      pending.set(index, { task, block });
      advance();
    }
  };
  const running: Promise<void>[] = [];
  let started = 0;
  const launch = () => {
    started++;
    running.push(
      worker().catch((error: unknown) => {
        failure ??= { error }; // the first error wins
        advance(); // release workers waiting on the window
      }),
    );
  };
  const grow = () => {
    window = 4 * full;
    while (started < full) launch();
  };
  try {
    while (started < n) launch();
    // Workers launched by `grow` are appended while earlier ones still run: await to the end.
    for (let i = 0; i < running.length; i++) await running[i];
  } finally {
    await direct?.close();
  }
  if (failure) throw failure.error;
  return { partials: total, chunks };
}
