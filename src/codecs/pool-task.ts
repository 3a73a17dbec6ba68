/**
 * What crosses between the codec pool (pool.ts) and its workers (pool-worker.ts): a codec's identity
 * as a task, the messages, and the main thread's books on buffers the pool produced and results a
 * worker decoded ahead for the next codec.
 */
import type { ChunkMeta } from "./types.js";

/** What a worker needs to rebuild a codec: its registry id, configuration and chunk metadata. */
export interface PoolTask {
  /** The v2 id the codec is registered under (`zlib`, `shuffle`, `hdf5_bitshuffle`, ...). */
  readonly id: string;
  readonly config: unknown;
  readonly meta?: ChunkMeta;
  /** id + config + meta, so a worker builds each distinct codec once. */
  readonly key: string;
  /** The codec that most likely decodes this one's output next (see `poolTask`). */
  readonly next?: PoolTask;
}

/** A codec as it crosses to a worker. */
export interface TaskSpec {
  id: string;
  key: string;
  config: unknown;
  meta?: ChunkMeta;
}

export type PoolRequest =
  | { kind: "decode"; seq: number; task: TaskSpec; next?: TaskSpec; bytes: Uint8Array; gifts?: ArrayBuffer[] }
  | { kind: "exit"; code: number };

export type PoolReply =
  | { seq: number; ok: true; bytes: Uint8Array; next?: Uint8Array; spare?: ArrayBuffer }
  | { seq: number; ok: false; message: string; codec: string; chunkKey?: string };

/** The last codec task built for a chunk meta object (zarrita and loadCodecChain share one per chain). */
const lastBuilt = new WeakMap<object, PoolTask>();

/**
 * A codec's identity for the pool. zarrita and `loadCodecChain` build a chain's codecs in encode
 * order with one meta object, so the task built just before this one with the same meta is the one
 * that will decode this one's output: a worker runs it right away (zlib, then shuffle) and saves a
 * round trip. A wrong guess costs only that work: the result is used solely when that very codec is
 * asked to decode that very buffer.
 */
export function poolTask(id: string, config: unknown, meta?: ChunkMeta): PoolTask {
  // zarrita's chunk meta carries more than codecs read; only what survives a structured clone goes.
  const plainMeta = meta ? { dataType: meta.dataType, shape: [...meta.shape] } : undefined;
  const key = JSON.stringify([id, config ?? null, plainMeta ?? null]);
  const task: PoolTask = { id, config, meta: plainMeta, key, next: meta ? lastBuilt.get(meta) : undefined };
  if (meta) lastBuilt.set(meta, task);
  return task;
}

export const spec = ({ id, key, config, meta }: PoolTask): TaskSpec => ({ id, key, config, meta });

/** Buffers the pool returned: safe to transfer to a worker again without copying. */
export const produced = new WeakSet<ArrayBufferLike>();

/** Results a worker computed ahead for the next codec, keyed by the buffer that codec will get. */
export const ahead = new WeakMap<ArrayBufferLike, { key: string; offset: number; length: number; result: Uint8Array }>();

export function takeAhead(task: PoolTask, bytes: Uint8Array): Uint8Array | undefined {
  const hit = ahead.get(bytes.buffer);
  if (!hit || hit.key !== task.key || hit.offset !== bytes.byteOffset || hit.length !== bytes.length) return undefined;
  ahead.delete(bytes.buffer);
  return hit.result;
}

