/**
 * The worker-thread engine: chunk encoding and map/apply functions run on a pool of
 * node:worker_threads, so CPU-heavy codecs (zstd, blosc, gzip levels) and user functions use every
 * core while the main thread keeps the store requests flowing. Arrays cross by transfer of a copy
 * (the caller's array stays usable). Functions for workers are named by module URL and export,
 * since closures cannot cross threads.
 */
import { Worker } from "node:worker_threads";
import { availableParallelism } from "node:os";
import type * as zarr from "zarrita";
import { CodecError } from "../errors.js";
import type { ChunkData, NumericArray } from "./encode.js";
import type { ChunkInfo } from "./dataset.js";

/** A chunk function a worker can load: `export function <name>(chunk, info)` in module `module`. */
export interface ModuleFunction {
  /** file: URL or absolute path of an ES module. */
  module: string;
  /** Export name; default "default". */
  name?: string;
}

export type WorkerRequest =
  | { id: number; kind: "encode"; pipeline: string; chunkShape: number[]; data: NumericArray; key: string }
  | { id: number; kind: "call"; fn: ModuleFunction; chunk: ChunkData; info: ChunkInfo };

export type WorkerReply = { id: number; ok: true; value: Uint8Array | ChunkData } | { id: number; ok: false; error: string; codec?: boolean };

interface Pending {
  resolve(value: Uint8Array | ChunkData): void;
  reject(error: Error): void;
}

function transferableCopy(data: NumericArray): NumericArray {
  return data.slice() as NumericArray;
}

export class WorkerPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: { request: WorkerRequest; transfer: ArrayBuffer[] }[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly owner = new Map<Worker, number>();
  private nextId = 1;
  private closed = false;

  /** `threads` workers (default: available cores). */
  constructor(readonly threads = availableParallelism()) {
    for (let i = 0; i < Math.max(1, threads); i++) {
      const worker = new Worker(new URL("./pool-worker.js", import.meta.url));
      worker.on("message", (reply: WorkerReply) => this.settle(worker, reply));
      worker.on("error", (error) => this.fail(worker, error));
      worker.unref();
      this.workers.push(worker);
      this.idle.push(worker);
    }
  }

  /** Encodes one whole chunk with the array's codec pipeline (a v3 document). */
  encode(pipeline: zarr.ArrayMetadata<zarr.DataType>, chunkShape: number[], data: NumericArray, key: string): Promise<Uint8Array> {
    const copy = transferableCopy(data);
    const request: WorkerRequest = { id: this.nextId++, kind: "encode", pipeline: JSON.stringify(pipeline), chunkShape, data: copy, key };
    return this.submit(request, [copy.buffer as ArrayBuffer]) as Promise<Uint8Array>;
  }

  /** Runs a module function on a chunk in a worker. */
  call(fn: ModuleFunction, chunk: ChunkData, info: ChunkInfo): Promise<ChunkData> {
    const copy = transferableCopy(chunk.data);
    const request: WorkerRequest = { id: this.nextId++, kind: "call", fn, chunk: { data: copy, shape: chunk.shape }, info };
    return this.submit(request, [copy.buffer as ArrayBuffer]) as Promise<ChunkData>;
  }

  private submit(request: WorkerRequest, transfer: ArrayBuffer[]): Promise<Uint8Array | ChunkData> {
    if (this.closed) return Promise.reject(new Error("worker pool is closed"));
    return new Promise((resolve, reject) => {
      this.pending.set(request.id, { resolve, reject });
      this.queue.push({ request, transfer });
      this.pump();
    });
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop()!;
      const { request, transfer } = this.queue.shift()!;
      this.owner.set(worker, request.id);
      worker.ref();
      worker.postMessage(request, transfer);
    }
  }

  private settle(worker: Worker, reply: WorkerReply): void {
    this.owner.delete(worker);
    worker.unref();
    this.idle.push(worker);
    const pending = this.pending.get(reply.id);
    this.pending.delete(reply.id);
    if (pending) {
      if (reply.ok) pending.resolve(reply.value);
      else pending.reject(reply.codec ? new CodecError(reply.error, "pipeline") : new Error(reply.error));
    }
    this.pump();
  }

  private fail(worker: Worker, error: Error): void {
    const id = this.owner.get(worker);
    if (id !== undefined) {
      this.pending.get(id)?.reject(error);
      this.pending.delete(id);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const { request } of this.queue.splice(0)) this.pending.get(request.id)?.reject(new Error("worker pool closed"));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
