/**
 * The reduction threads (reduce-worker.ts) and what they are told: the batch messages, and one
 * process-wide pool whose idle workers never keep the process alive. The threaded engine
 * (worker-engine.ts) and the server's batch reducer (server/reduce.ts) both send batches here.
 */
import { Worker } from "node:worker_threads";
import type { KernelOptions } from "./kernel.js";
import type { Partials } from "./partials.js";
import type { DimPiece } from "./plan.js";
import { workerScript } from "../util/worker-script.js";

/** What a worker needs to open the array: its path and metadata documents (by name, as text). */
export interface ArraySpec {
  id: number;
  path: string;
  version: 2 | 3;
  docs: Record<string, string>;
  /** Chunks are their elements as stored (no codec, little-endian, C order): reduced without zarrita. */
  raw?: { dtype: string; chunks: number[]; bytes: number };
}

export interface BatchChunk {
  coords: number[];
  pieces: DimPiece[];
  /** Store key, for error messages. */
  key: string;
  /** Where the chunk's bytes start: in the batch buffer, or in `file` when given. */
  offset: number;
  /** -1: the chunk was never written (zarrita makes the fill chunk). */
  length: number;
  /** A local file the worker reads the chunk from itself (nothing in the batch buffer). */
  file?: string;
}

export interface BatchRequest {
  kind: "batch";
  seq: number;
  array: ArraySpec;
  kernel: KernelOptions;
  collapsed: boolean[];
  chunks: BatchChunk[];
  buffer: ArrayBuffer;
}

export type WorkerRequest = BatchRequest | { kind: "release"; id: number } | { kind: "exit"; code: number };

export type BatchReply =
  | { seq: number; ok: true; values: Float64Array; nan: Uint8Array; buffer?: ArrayBuffer }
  | { seq: number; ok: true; blocks: Partials[]; buffer?: ArrayBuffer }
  | { seq: number; ok: false; kind: "codec" | "target" | "other"; message: string; codec?: string; chunkKey?: string; url?: string };


const YOUNG_GENERATION_MB = 2;

let nextArrayId = 1;

/** A fresh ArraySpec id (ids are shared by everything that sends batches to the pool's workers). */
export function newArrayId(): number {
  return nextArrayId++;
}

/** Workers keep the arrays they opened until the array they stand for is garbage. */
const released = new FinalizationRegistry<number>((id) => shared?.release(id));

/** Lets the workers drop array `id` once `array` is garbage. */
export function releaseWhenCollected(array: object, id: number): void {
  released.register(array, id);
}

/** The compiled worker next to this module (the dist/ twin when running from .ts sources, as in vitest). */
export function reduceWorkerScript(): URL | undefined {
  return workerScript(import.meta.url, "reduce-worker");
}

interface Slot {
  worker: Worker;
  ready: Promise<void>;
  started?: boolean;
  jobs: Map<number, { resolve(reply: BatchReply): void; reject(error: Error): void }>;
}

/** Worker threads that reduce batches; idle workers never keep the process alive. */
export class ReducePool {
  private readonly slots: Slot[] = [];
  private seq = 0;
  private closed = false;
  /** Batches sent to workers (tests check that work did go to threads). */
  readonly stats = { batches: 0 };

  constructor(
    readonly threads: number,
    private readonly script: URL,
  ) {}

  /** Every worker is up: a batch starts without waiting for a thread to boot. */
  get running(): boolean {
    return this.slots.length === this.threads && this.slots.every((s) => s.started);
  }

  /** Starts the workers; rejects when one cannot start (the caller then reduces in-thread). */
  async ready(): Promise<void> {
    while (this.slots.length < this.threads) this.spawn();
    await Promise.all(this.slots.map((s) => s.ready));
  }

  private spawn(): Slot {
    const inherited = process.execArgv.filter((a) => !a.startsWith("--input-type"));
    const worker = new Worker(this.script, {
      ...(inherited.length < process.execArgv.length && { execArgv: inherited }),
      // A small young generation: the inflate and shuffle outputs die young and a scavenge frees
      // their memory; with the default a worker held ~40 MB more at peak (zlib25 measured 2 vs 0/4/8).
      resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB },
    });
    let started!: () => void;
    let failed!: (e: Error) => void;
    const ready = new Promise<void>((resolve, reject) => ((started = resolve), (failed = reject)));
    ready.catch(() => {}); // observed by ready() callers
    const slot: Slot = { worker, ready, jobs: new Map() };
    let error: Error | undefined;
    worker.on("message", (reply: BatchReply | { ready: true }) => {
      if ("ready" in reply) {
        if (slot.jobs.size === 0) worker.unref(); // an idle pool never keeps the process alive
        slot.started = true;
        return started();
      }
      const job = slot.jobs.get(reply.seq);
      if (!job) return;
      slot.jobs.delete(reply.seq);
      if (slot.jobs.size === 0) worker.unref();
      job.resolve(reply);
    });
    worker.on("error", (e) => (error = e));
    worker.on("exit", (code) => {
      const at = this.slots.indexOf(slot);
      if (at >= 0) this.slots.splice(at, 1);
      const lost = new Error(
        `a reduction worker thread exited with code ${code}${error ? `: ${error.message}` : ""}`,
        error ? { cause: error } : undefined,
      );
      failed(lost);
      for (const job of slot.jobs.values()) job.reject(lost);
      slot.jobs.clear();
    });
    // The worker stays referenced until it is ready (someone awaits that), then only while it has
    // batches; unref() must come after the listeners, as adding a "message" listener refs it again.
    this.slots.push(slot);
    return slot;
  }

  /** Runs a batch on the least busy worker (a replacement is started for one that died). */
  run(request: Omit<BatchRequest, "seq">, transfer: ArrayBuffer[]): Promise<BatchReply> {
    if (this.closed) return Promise.reject(new Error("the reduction pool is closed"));
    if (this.slots.length < this.threads) this.spawn();
    let slot = this.slots[0];
    for (const s of this.slots) if (s.jobs.size < slot.jobs.size) slot = s;
    const seq = this.seq++;
    this.stats.batches++;
    return new Promise((resolve, reject) => {
      if (slot.jobs.size === 0) slot.worker.ref(); // a batch in progress keeps the process alive
      slot.jobs.set(seq, { resolve, reject });
      slot.worker.postMessage({ ...request, seq } satisfies BatchRequest, transfer);
    });
  }

  /** Lets workers drop an array they opened. */
  release(id: number): void {
    for (const s of this.slots) s.worker.postMessage({ kind: "release", id } satisfies WorkerRequest);
  }

  /** Tests: make a worker exit as a crash would. */
  crashForTest(code: number): void {
    this.slots[0]?.worker.postMessage({ kind: "exit", code } satisfies WorkerRequest);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.splice(0).map((s) => s.worker.terminate()));
  }
}

let shared: ReducePool | undefined;
let broken = false;

/** The process-wide pool with `threads` workers, or undefined when workers cannot run here. */
export async function reducePool(threads: number): Promise<ReducePool | undefined> {
  if (broken) return undefined;
  const url = reduceWorkerScript();
  if (!url) return undefined;
  if (shared && shared.threads !== threads) {
    void shared.close();
    shared = undefined;
  }
  shared ??= new ReducePool(threads, url);
  try {
    await shared.ready();
    return shared;
  } catch {
    broken = true; // a build whose worker cannot start: reduce in-thread from now on
    void shared?.close();
    shared = undefined;
    return undefined;
  }
}

/** The shared pool, if started (tests). */
export function sharedReducePool(): ReducePool | undefined {
  return shared;
}

/** Stops the shared pool's workers (tests; idle workers never hold a process). */
export async function closeReducePool(): Promise<void> {
  const pool = shared;
  shared = undefined;
  await pool?.close();
}

