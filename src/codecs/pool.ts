/**
 * A process-wide pool of worker threads that decodes chunks for our registered codecs, so inflate,
 * unshuffle and the JavaScript/wasm decompressors leave the main thread, which is left with store
 * requests and zarrita's copy into the output.
 *
 * A codec asks `offloadDecode`; it answers undefined (decode here) when the pool is off, the chunk is
 * small (a message round trip costs tens of microseconds), or no compiled worker script exists. The
 * worker rebuilds the codec from its registry id, configuration and chunk meta, so both sides run
 * the same code. Inputs are copied into a fresh buffer only when a task is sent (zarrita queues every
 * chunk of a read at once; copies at enqueue time would double the memory), except buffers the pool
 * itself produced, which are handed on without a copy (zlib's output going to shuffle).
 */
import { availableParallelism } from "node:os";
import { Worker, isMainThread } from "node:worker_threads";
import { CodecError } from "../errors.js";
import { workerScript } from "../util/worker-script.js";
import { ahead, produced, spec, takeAhead, type PoolReply, type PoolRequest, type PoolTask } from "./pool-task.js";

export { poolTask, type PoolReply, type PoolRequest, type PoolTask, type TaskSpec } from "./pool-task.js";

/**
 * Below this many bytes (encoded or decoded, whichever is larger) a chunk decodes inline. Measured
 * on shuffle+zlib float64 chunks (2 cores): from 8 KiB up the pool takes less main-thread time per
 * chunk, but it costs about 100 us more CPU per chunk and only wins on wall time from 64 KiB.
 */
export const DEFAULT_MIN_BYTES = 64 << 10;
/** Two tasks per worker: one running, one waiting, so a worker never idles for a round trip. */
const IN_FLIGHT_PER_WORKER = 2;
/** Workers that die this many times in a row without finishing a task mean the pool is broken. */
const MAX_CONSECUTIVE_CRASHES = 3;
/** Handed-back buffers kept for reuse: enough for every task in flight on four workers. */
const MAX_SPARES = 16;
/**
 * Decoded buffers waiting to go back to a worker, and how many ride along with one request: one,
 * what a worker decodes into per request. With two, the surplus died in the workers, whose
 * collections lag, and zlib25 read by our get peaked at 1.71 GB instead of 1.21.
 */
const MAX_GIFTS = 4;
const GIFTS_PER_REQUEST = 1;

interface Job {
  task: PoolTask;
  bytes: Uint8Array;
  /** Set when `bytes` itself went to a worker (a pool output handed on): no fallback can reread it. */
  moved?: number;
  fallback: () => Uint8Array | Promise<Uint8Array>;
  resolve(bytes: Uint8Array): void;
  reject(error: Error): void;
}

interface Slot {
  worker: Worker;
  jobs: Map<number, Job>;
  error?: Error;
  /** Has finished a task: a crash after this is the task's, before it maybe the worker's start. */
  replied: boolean;
}

export interface CodecPoolStats {
  /** Decodes sent to a worker. */
  dispatched: number;
  /** Workers that exited or crashed while the pool was open. */
  crashes: number;
  /** Worker threads started (including replacements). */
  started: number;
  /** Decodes answered by a worker's decode-ahead, without a round trip of their own. */
  ahead: number;
  /** Decoded buffers handed back to go to a worker again (`give`, `recycleDecoded`). */
  given: number;
}

export class CodecPool {
  private readonly slots: Slot[] = [];
  private queue: Job[] = [];
  private head = 0;
  private urgent: Job[] = [];
  /** Buffers workers handed back (their decoded inputs), for the next copies. */
  private readonly spares: ArrayBuffer[] = [];
  private readonly gifts: ArrayBuffer[] = [];
  private seq = 0;
  private crashesInARow = 0;
  private broken = false;
  private closing = false;
  private drained?: () => void;
  readonly stats: CodecPoolStats = { dispatched: 0, crashes: 0, started: 0, ahead: 0, given: 0 };

  constructor(
    readonly threads: number,
    private readonly script: URL,
  ) {
    if (!Number.isInteger(threads) || threads < 1) throw new CodecError(`a pool needs >= 1 thread, got ${threads}`, "pool");
  }

  /** Decode in a worker; `fallback` decodes here if the pool turns out unusable. */
  decode(task: PoolTask, bytes: Uint8Array, fallback: Job["fallback"]): Promise<Uint8Array> {
    if (this.broken || this.closing) return Promise.resolve().then(fallback);
    return new Promise((resolve, reject) => {
      const job = { task, bytes, fallback, resolve, reject };
      // A chunk's later stages (shuffle after zlib) go first: behind the thousands of first stages
      // zarrita queues, every intermediate result of a read would wait in memory at once.
      if (produced.has(bytes.buffer)) this.urgent.push(job);
      else this.queue.push(job);
      this.pump();
    });
  }

  /**
   * Takes back a buffer this pool decoded into once its reader is done with it. It goes to a worker
   * with the next request (the worker decodes into it, or drops it there): a read of thousands of
   * chunks otherwise leaves all their decoded bytes as garbage on this thread, whose collections
   * the external memory drives (zlib25 read by zarrita's get: 0.9 of 5.5 s of this thread).
   */
  give(buffer: ArrayBufferLike): void {
    if (!produced.has(buffer) || ahead.has(buffer) || !(buffer instanceof ArrayBuffer) || buffer.byteLength < 4096) return;
    produced.delete(buffer);
    this.stats.given++;
    this.gifts.push(buffer);
    if (this.gifts.length > MAX_GIFTS) this.gifts.shift();
  }

  /** Test hook: the next worker to receive a message calls process.exit(code) before its tasks. */
  crashForTest(code = 7): void {
    const slot = this.slots[0] ?? this.spawn();
    slot?.worker.postMessage({ kind: "exit", code } satisfies PoolRequest);
  }

  /** Waits for queued and running decodes, then stops the workers. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.pending() > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    await Promise.all(this.slots.splice(0).map((s) => s.worker.terminate()));
  }

  private pending(): number {
    return this.queue.length - this.head + this.urgent.length + this.slots.reduce((n, s) => n + s.jobs.size, 0);
  }

  private pump(): void {
    while (this.urgent.length > 0 || this.head < this.queue.length) {
      const slot = this.freeSlot();
      if (!slot) return;
      let job = this.urgent.shift();
      if (!job) {
        job = this.queue[this.head];
        this.queue[this.head++] = undefined as unknown as Job;
      }
      this.send(slot, job);
    }
    this.queue = [];
    this.head = 0;
    if (this.closing && this.pending() === 0) this.drained?.();
  }

  private freeSlot(): Slot | undefined {
    let best: Slot | undefined;
    for (const s of this.slots) if (s.jobs.size < IN_FLIGHT_PER_WORKER && (!best || s.jobs.size < best.jobs.size)) best = s;
    if (best?.jobs.size === 0) return best;
    if (this.slots.length < this.threads) return this.spawn();
    return best;
  }

  private spawn(): Slot | undefined {
    let worker: Worker;
    try {
      // Workers inherit the process's flags; `--input-type` (for `node -e`) stops one from starting.
      const inherited = process.execArgv.filter((a) => !a.startsWith("--input-type"));
      worker = new Worker(this.script, inherited.length < process.execArgv.length ? { execArgv: inherited } : {});
    } catch {
      this.giveUp(); // flags a thread cannot take, say: decode everything here
      return undefined;
    }
    const slot: Slot = { worker, jobs: new Map(), replied: false };
    worker.unref(); // an idle pool never keeps the process alive
    worker.on("message", (reply: PoolReply) => this.settle(slot, reply));
    worker.on("error", (error) => (slot.error = error));
    worker.on("exit", (code) => this.lost(slot, code));
    this.slots.push(slot);
    this.stats.started++;
    return slot;
  }

  private send(slot: Slot, job: Job): void {
    let bytes = job.bytes;
    if (produced.has(bytes.buffer)) {
      produced.delete(bytes.buffer);
      job.moved = bytes.length;
    } else bytes = this.copy(bytes); // callers' views into shared blocks must stay intact
    const seq = ++this.seq;
    const { task } = job;
    const gifts = this.gifts.splice(0, GIFTS_PER_REQUEST);
    const request: PoolRequest = { kind: "decode", seq, task: spec(task), next: task.next && spec(task.next), bytes, ...(gifts.length > 0 && { gifts }) };
    try {
      slot.worker.postMessage(request, [bytes.buffer as ArrayBuffer, ...gifts]);
    } catch {
      // A configuration that cannot cross threads (a function, say): decode it here instead.
      Promise.resolve().then(job.fallback).then(job.resolve, job.reject);
      return;
    }
    if (slot.jobs.size === 0) slot.worker.ref(); // a pending decode keeps the process alive
    slot.jobs.set(seq, job);
    this.stats.dispatched++;
  }

  /**
   * A copy a worker may own: into a buffer a worker handed back when one fits (at most twice the
   * size; the view is exact), else a fresh one. Every chunk of a read would otherwise allocate its
   * stored size once more, and that external memory drives V8's full collections.
   */
  private copy(bytes: Uint8Array): Uint8Array {
    const n = bytes.length;
    for (let i = this.spares.length - 1; i >= 0; i--) {
      const buffer = this.spares[i];
      if (buffer.byteLength >= n && buffer.byteLength <= 2 * n) {
        this.spares.splice(i, 1);
        const view = new Uint8Array(buffer, 0, n);
        view.set(bytes);
        return view;
      }
    }
    return bytes.slice();
  }

  private settle(slot: Slot, reply: PoolReply): void {
    const job = slot.jobs.get(reply.seq);
    slot.jobs.delete(reply.seq);
    slot.replied = true;
    if (reply.ok && reply.spare) {
      this.spares.push(reply.spare);
      if (this.spares.length > MAX_SPARES) this.spares.shift();
    }
    if (slot.jobs.size === 0) slot.worker.unref();
    this.crashesInARow = 0;
    if (job) {
      if (reply.ok) {
        produced.add(reply.bytes.buffer);
        if (reply.next && job.task.next) {
          const { buffer, byteOffset: offset, length } = reply.bytes;
          ahead.set(buffer, { key: job.task.next.key, offset, length, result: reply.next });
          produced.add(reply.next.buffer);
        }
        job.resolve(reply.bytes);
      } else job.reject(new CodecError(reply.message, reply.codec, reply.chunkKey));
    }
    this.pump();
  }

  private lost(slot: Slot, code: number): void {
    const at = this.slots.indexOf(slot);
    if (at >= 0) this.slots.splice(at, 1);
    const why = slot.error ? `crashed (${slot.error.message})` : `exited with code ${code}`;
    const startFailed = slot.error !== undefined && !slot.replied;
    for (const job of slot.jobs.values()) {
      if (startFailed && job.moved === undefined) {
        // The worker threw before decoding anything (cannot load its modules?): not the chunk's fault.
        Promise.resolve().then(job.fallback).then(job.resolve, job.reject);
        continue;
      }
      job.reject(
        new CodecError(`the decoding worker thread ${why} while decoding ${job.moved ?? job.bytes.length} bytes; the read can be retried`, job.task.id, undefined, {
          cause: slot.error,
        }),
      );
    }
    slot.jobs.clear();
    if (at < 0) return; // terminated by close()
    this.stats.crashes++;
    // Workers that keep dying before they finish anything (a broken build): decode the rest here.
    if (++this.crashesInARow >= MAX_CONSECUTIVE_CRASHES) this.giveUp();
    this.pump(); // replacements start on demand
  }

  private giveUp(): void {
    this.broken = true;
    const rest = [...this.urgent.splice(0), ...this.queue.slice(this.head)];
    this.queue = [];
    this.head = 0;
    for (const job of rest) Promise.resolve().then(job.fallback).then(job.resolve, job.reject);
  }
}

let configuredThreads: number | undefined;
let minBytes = DEFAULT_MIN_BYTES;
let shared: CodecPool | undefined;
let off = false;

/**
 * Number of decoding worker threads for this process: 0 turns the pool off (every codec decodes on
 * the calling thread). Default `min(os.availableParallelism(), 4)` on the main thread, or the
 * environment variable ACTIVESTORE_CODEC_THREADS; worker threads of their own decode inline.
 * `minBytes` (default 64 KiB) is the chunk size below which decoding stays inline.
 */
export function setCodecThreads(threads: number, options: { minBytes?: number } = {}): void {
  if (!Number.isInteger(threads) || threads < 0) throw new CodecError(`thread count must be an integer >= 0, got ${threads}`, "pool");
  if (options.minBytes !== undefined) {
    if (!Number.isInteger(options.minBytes) || options.minBytes < 0) {
      throw new CodecError(`minBytes must be an integer >= 0, got ${options.minBytes}`, "pool");
    }
    minBytes = options.minBytes;
  }
  configuredThreads = threads;
  off = threads === 0;
  if (shared && shared.threads !== threads) {
    void shared.close(); // running decodes finish; new ones go to the new pool
    shared = undefined;
  }
}

/** Threads the pool uses (or would use once started). */
export function codecThreads(): number {
  if (configuredThreads !== undefined) return configuredThreads;
  const env = process.env.ACTIVESTORE_CODEC_THREADS;
  if (env !== undefined && env.trim() !== "") {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 0) {
      throw new CodecError(`ACTIVESTORE_CODEC_THREADS must be an integer >= 0 (0 = decode on the main thread), got "${env}"`, "pool");
    }
    return n;
  }
  return isMainThread ? Math.min(availableParallelism(), 4) : 0;
}

/** The shared pool, if one is running (tests inspect its stats). */
export function codecPool(): CodecPool | undefined {
  return shared;
}

/** Stop the shared pool's workers (tests; a process never needs to: idle workers do not hold it). */
export async function closeCodecPool(): Promise<void> {
  const pool = shared;
  shared = undefined;
  await pool?.close();
}

/**
 * Decode `bytes` in a worker, or undefined when the caller should decode inline. `work` is the
 * larger of the encoded and the expected decoded size.
 */
/**
 * Hands a decoded chunk's buffer back to the pool once nothing will read `view` again (its bytes
 * were copied out). Only buffers the pool itself produced are taken; anything else is left alone.
 */
export function recycleDecoded(view: ArrayBufferView): void {
  shared?.give(view.buffer);
}

export function offloadDecode(
  task: PoolTask,
  bytes: Uint8Array,
  work: number,
  fallback: () => Uint8Array | Promise<Uint8Array>,
): Promise<Uint8Array> | undefined {
  const done = takeAhead(task, bytes);
  if (done && shared) {
    shared.stats.ahead++;
    // The codec's input (the previous stage's output) is done with: a worker can have it back.
    shared.give(bytes.buffer);
  }
  if (done) return Promise.resolve(done);
  if (work < minBytes || bytes.length === 0) return undefined;
  if (!shared) {
    if (off) return undefined;
    const threads = codecThreads();
    if (threads === 0) {
      off = true; // decided once: reading the environment on every chunk costs
      return undefined;
    }
    const url = codecWorkerScript();
    if (!url) return undefined;
    shared = new CodecPool(threads, url);
  }
  return shared.decode(task, bytes, fallback);
}

/**
 * The compiled worker next to this module. Under vitest this module is TypeScript source and a
 * worker cannot load it, so use the dist/ twin that `npm test` builds; without one, decode inline.
 */
export function codecWorkerScript(): URL | undefined {
  return workerScript(import.meta.url, "pool-worker");
}

/** `local(bytes)` in a worker when the chunk qualifies, else right here. */
export function decodePooled(
  task: PoolTask,
  bytes: Uint8Array,
  work: number,
  local: (bytes: Uint8Array) => Uint8Array | Promise<Uint8Array>,
): Uint8Array | Promise<Uint8Array> {
  return offloadDecode(task, bytes, work, () => local(bytes)) ?? local(bytes);
}
