/**
 * The threaded engine: the main thread plans the chunks and fetches their ENCODED bytes; worker
 * threads (reduce-worker.ts) decode them with zarrita and reduce them with the chunk kernel, and send
 * back only partials. Chunks travel in batches (one transferred buffer for many chunks), so a chunk
 * costs the main thread a read and a copy instead of zarrita's decode bookkeeping, the decoded bytes
 * and the kernel. Partials are merged in plan order, like engine.ts, so results are bit-identical.
 *
 * Falls back to the in-thread engine when the array is not a zarrita array we can describe to a
 * worker (sharded, or a custom ChunkSource) or when no worker can run (no compiled script).
 */
import { CodecError, ReferenceSetError } from "../errors.js";
import { BufferPool } from "../stores/buffer-pool.js";
import { blockOffset, isBigintDtype, planReduction, reduceArray, type ChunkSource, type ReduceOptions } from "./engine.js";
import { ITEM_SIZE } from "./elements.js";
import type { KernelOptions } from "./kernel.js";
import { emptyPartials, mergePartials, type Partials } from "./partials.js";
import { countChunks, planChunks, type ChunkTask, type DimPiece } from "./plan.js";
import { arrayLayout, type ZarrArrayLike } from "./layout.js";
import type { Selection } from "./selection.js";
import {
  newArrayId,
  reducePool,
  releaseWhenCollected,
  type ArraySpec,
  type BatchChunk,
  type BatchReply,
} from "./reduce-pool.js";

export interface ThreadedOptions extends ReduceOptions {
  /** Worker threads. */
  threads: number;
  /** Chunks per batch at most. Default 64. */
  batchChunks?: number;
  /** Decoded bytes per batch at most (at least one chunk). Default 4 MiB. */
  batchBytes?: number;
}

/** Batches at a worker at once (one running, one waiting), so a worker never idles for a round trip. */
const PER_WORKER = 2;

function replyError(reply: Extract<BatchReply, { ok: false }>): Error {
  if (reply.kind === "codec") return new CodecError(reply.message, reply.codec ?? "unknown", reply.chunkKey);
  if (reply.kind === "target") return new ReferenceSetError(reply.message, reply.chunkKey, reply.url);
  return new Error(reply.message);
}

/** Per chunk partials of a batch, from a worker's packed answer (`tasks` in the batch's chunk order). */
export function unpack(reply: Extract<BatchReply, { ok: true }>, tasks: readonly { pieces: readonly DimPiece[] }[], collapsed: readonly boolean[], kernel: KernelOptions): Partials[] {
  if ("blocks" in reply) return reply.blocks;
  const moments = kernel.moments === true;
  const out: Partials[] = [];
  let v = 0;
  let k = 0;
  for (const task of tasks) {
    const shape = task.pieces.filter((_, d) => !collapsed[d]).map((p) => p.count);
    const n = shape.reduce((a, b) => a * b, 1);
    const take = () => reply.values.subarray(v, (v += n));
    out.push({
      shape,
      count: take(),
      sum: take(),
      min: take(),
      max: take(),
      m2: moments ? take() : undefined,
      nan: reply.nan.subarray(k, (k += n)),
      ...(kernel.extremes === false && { extremes: false }),
    });
  }
  return out;
}

/**
 * `reduceArray` with decoding and the kernel on worker threads; same result, same chunk count.
 * Falls back to `reduceArray` when the array or the process cannot use workers.
 */
export async function reduceArrayThreaded(
  array: ChunkSource,
  selection: Selection,
  options: ThreadedOptions,
): Promise<{ partials: Partials; chunks: number }> {
  const layout = ITEM_SIZE[array.dtype] !== undefined && options.threads > 0 ? await arrayLayout(array) : undefined;
  const pool = layout ? await reducePool(options.threads) : undefined;
  if (!layout || !pool) return reduceArray(array, selection, options);
  const source = array as ZarrArrayLike;
  const signal = options.signal;
  signal?.throwIfAborted();
  const plan = planReduction(array.shape, selection, options.axis);
  const big = isBigintDtype(array.dtype);
  const total = emptyPartials(plan.outShape, big, options.moments ?? false, big || options.extremes !== false);
  const kernel: KernelOptions = { missing: options.missing, moments: options.moments, extremes: options.extremes };
  const tasks = planChunks(plan.slab, array.chunks);
  const chunkBytes = array.chunks.reduce((a, b) => a * b, ITEM_SIZE[array.dtype]);
  // Chunks a worker reads itself cost no batch bytes: their batches are as long as keeps every
  // worker busy to the end (a share of what is left, so the last batches are short).
  const perBatch = layout.local
    ? Math.max(1, options.batchChunks ?? 64)
    : Math.max(1, Math.min(options.batchChunks ?? 64, Math.floor((options.batchBytes ?? 4 << 20) / chunkBytes)));
  let left = layout.local ? countChunks(plan.slab, array.chunks) : 0;
  const nextBatchSize = () => (layout.local ? Math.max(1, Math.min(perBatch, Math.ceil(left / (4 * pool.threads)))) : perBatch);
  // Batches reading, at a worker, or waiting to be merged: bounds memory to about that many batches.
  const maxBatches = pool.threads * PER_WORKER + 1;

  let failure: { error: unknown } | undefined;
  let chunks = 0;
  let started = 0;
  let merged = 0;
  const done = new Map<number, { tasks: ChunkTask[]; blocks: Partials[] }>();
  const running = new Set<Promise<void>>();
  const spares: ArrayBuffer[] = [];
  // Reads land in pooled buffers, given back once copied into a batch: the same few buffers carry
  // the whole read (as in engine.ts), instead of garbage the main thread must collect.
  const buffers = options.buffers === false ? undefined : (options.buffers ?? new BufferPool());
  const readOptions = signal || buffers ? { signal, buffers } : undefined;
  let wake: (() => void) | undefined;

  const mergeReady = () => {
    for (let b = done.get(merged); b; b = done.get(merged)) {
      done.delete(merged++);
      for (let i = 0; i < b.tasks.length; i++) mergePartials(total, b.blocks[i], blockOffset(b.tasks[i], plan.collapsed));
      chunks += b.tasks.length;
    }
  };

  const runBatch = async (index: number, batch: ChunkTask[]) => {
    const keys = batch.map((t) => layout.keyOf(t.coords));
    // Chunks on local disk go to the worker as (file, offset, length); the rest as bytes.
    const located = layout.local ? await Promise.all(keys.map((key) => source.store.localRange!(key))) : [];
    const reads = await Promise.allSettled(
      keys.map((key, i) => (layout.local && located[i] !== null ? Promise.resolve(undefined) : source.store.get(key, readOptions))),
    );
    const bytes = reads.map((r) => (r.status === "fulfilled" ? r.value : undefined));
    const giveBack = () => {
      if (buffers) for (const b of bytes) if (b) buffers.give(b);
    };
    const rejected = reads.find((r) => r.status === "rejected");
    if (rejected || failure || signal?.aborted) {
      giveBack();
      if (rejected) throw rejected.reason;
      return; // the abort is thrown once everything in flight has settled
    }
    let size = 0;
    const list: BatchChunk[] = batch.map((task, i) => {
      const key = keys[i].replace(/^\/+/, "");
      const at = located[i];
      if (at) return { coords: task.coords, pieces: task.pieces, key, file: at.path, offset: at.offset, length: at.length };
      const b = bytes[i];
      const offset = (size + 7) & ~7; // aligned, so zarrita views the decoded bytes without a copy
      if (b) size = offset + b.length;
      return { coords: task.coords, pieces: task.pieces, key, offset, length: b ? b.length : -1 };
    });
    // Batch buffers come back with the answers and carry the next batches: no allocation (and none
    // of the garbage collections external memory triggers) per batch.
    const at = spares.findIndex((b) => b.byteLength >= size && b.byteLength <= 2 * size + (1 << 20));
    const buffer = at >= 0 ? spares.splice(at, 1)[0] : new ArrayBuffer(size + (size >>> 4));
    const view = new Uint8Array(buffer);
    for (let i = 0; i < list.length; i++) if (bytes[i]) view.set(bytes[i]!, list[i].offset);
    giveBack();
    const reply = await pool.run(
      { kind: "batch", array: layout.spec, kernel, collapsed: plan.collapsed, chunks: list, buffer },
      [buffer],
    );
    if (!reply.ok) throw replyError(reply);
    if (reply.buffer && spares.length < maxBatches) spares.push(reply.buffer);
    done.set(index, { tasks: batch, blocks: unpack(reply, batch, plan.collapsed, kernel) });
    mergeReady();
  };

  for (;;) {
    if (failure) break;
    if (signal?.aborted) {
      failure = { error: signal.reason };
      break;
    }
    if (started - merged >= maxBatches) {
      await new Promise<void>((r) => (wake = r));
      continue;
    }
    const batch: ChunkTask[] = [];
    const size = nextBatchSize();
    while (batch.length < size) {
      const next = tasks.next();
      if (next.done) break;
      batch.push(next.value);
    }
    if (batch.length === 0) break;
    left -= batch.length;
    const job = runBatch(started++, batch)
      .catch((error: unknown) => {
        failure ??= { error }; // the first error wins
      })
      .finally(() => {
        running.delete(job);
        const w = wake;
        wake = undefined;
        w?.();
      });
    running.add(job);
  }
  // Nothing runs on after we return: wait for the reads and batches in flight.
  while (running.size > 0) await Promise.all(running);
  signal?.throwIfAborted(); // an abort wins over the errors of the reads it cancelled
  if (failure) throw failure.error;
  return { partials: total, chunks };
}
