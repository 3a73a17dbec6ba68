/**
 * Coalesced reads for the reference store. zarrita asks for every chunk of a selection at once,
 * one `get` per chunk; reads queued in the same turn of the event loop are gathered here, grouped
 * by target object, merged into few large range requests (gap and block size configurable) and
 * run with at most `concurrency` requests in flight across all targets — so thousands of chunk
 * reads become tens of requests and never thousands of open connections.
 */
import type { GetOptions } from "@zarrita/storage";
import pLimit, { type LimitFunction } from "p-limit";
import type { BufferPool } from "../stores/buffer-pool.js";
import { coalesceRanges, splitCoalesced, type ByteSpan } from "../stores/coalesce.js";
import type { TargetStore } from "./resolve.js";

export interface BatchReaderOptions {
  /** Bytes of gap between two ranges still worth reading through (default 1 MiB). */
  coalesceGap?: number;
  /** Largest merged request in bytes (default 8 MiB); a single larger range is read whole. */
  maxBlock?: number;
  /** Requests in flight at once across every target (default 16). */
  concurrency?: number;
}

export const DEFAULT_GAP = 1024 * 1024;
export const DEFAULT_MAX_BLOCK = 8 * 1024 * 1024;
export const DEFAULT_CONCURRENCY = 16;

export interface BatchStats {
  /** Reads asked for (chunks). */
  reads: number;
  /** Requests made to stores after coalescing. */
  requests: number;
  /** Bytes those requests returned, gaps included. */
  bytes: number;
}

interface Waiter {
  resolve(bytes: Uint8Array | undefined): void;
  reject(error: unknown): void;
  /** The reader gives the bytes back to this pool when done (see `read`). */
  buffers?: BufferPool;
}

interface Group {
  store: TargetStore;
  key: string;
  /** Whole-object reads of this target share one request. */
  whole: Waiter[];
  spans: ByteSpan[];
  /** Emptied as they settle: see `settle`. */
  waiters: (Waiter | undefined)[];
}

/**
 * Takes a waiter out of its group before settling it. A resolve function keeps its promise, and
 * so the bytes it resolved with, reachable; every request of a group holds the group's waiter
 * list until the last one finishes, so without this a whole selection's blocks (1.1 GB for a
 * 500³ float64 variable) stayed alive until the end of the read.
 */
function settle(waiters: (Waiter | undefined)[], i: number): Waiter {
  const waiter = waiters[i]!;
  waiters[i] = undefined;
  return waiter;
}

export class BatchReader {
  readonly stats: BatchStats = { reads: 0, requests: 0, bytes: 0 };
  private readonly gap: number;
  private readonly maxBlock: number;
  private readonly limit: LimitFunction;
  private pending = new Map<TargetStore, Map<string, Group>>();
  private scheduled = false;

  constructor(options: BatchReaderOptions = {}) {
    this.gap = options.coalesceGap ?? DEFAULT_GAP;
    this.maxBlock = options.maxBlock ?? DEFAULT_MAX_BLOCK;
    this.limit = pLimit(Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY));
  }

  get concurrency(): number {
    return this.limit.concurrency;
  }

  /**
   * Bytes `span` of `key` in `store` (the whole object when `span` is undefined); undefined when
   * the object does not exist. The result may be shorter than asked at the end of the object.
   * With `buffers`, the bytes of a span may be a view of a pooled block shared with other spans;
   * the caller gives them back to the pool when done (whole-object reads never use it: one result
   * goes to every reader of the object).
   */
  read(store: TargetStore, key: string, span?: ByteSpan, buffers?: BufferPool): Promise<Uint8Array | undefined> {
    this.stats.reads++;
    let byKey = this.pending.get(store);
    if (!byKey) this.pending.set(store, (byKey = new Map()));
    let group = byKey.get(key);
    if (!group) byKey.set(key, (group = { store, key, whole: [], spans: [], waiters: [] }));
    const g = group;
    const promise = new Promise<Uint8Array | undefined>((resolve, reject) => {
      if (span === undefined) g.whole.push({ resolve, reject });
      else {
        g.spans.push(span);
        g.waiters.push({ resolve, reject, buffers });
      }
    });
    if (!this.scheduled) {
      this.scheduled = true;
      // setImmediate, not a microtask: zarrita awaits a few promises per chunk before its get,
      // and all of those settle before the check phase, so the whole selection lands in one batch.
      setImmediate(() => this.flush());
    }
    return promise;
  }

  private flush(): void {
    const groups = this.pending;
    this.pending = new Map();
    this.scheduled = false;
    for (const byKey of groups.values()) {
      for (const group of byKey.values()) {
        if (group.whole.length > 0) this.readWhole(group);
        if (group.spans.length > 0) this.readSpans(group);
      }
    }
  }

  private readWhole({ store, key, whole }: Group): void {
    this.limit(async () => {
      this.stats.requests++;
      const bytes = await store.get(key);
      this.stats.bytes += bytes?.length ?? 0;
      return bytes;
    }).then(
      (bytes) => whole.forEach((w) => w.resolve(bytes)),
      (error: unknown) => whole.forEach((w) => w.reject(error)),
    );
  }

  private readSpans({ store, key, spans, waiters }: Group): void {
    for (const request of coalesceRanges(spans, this.gap, this.maxBlock)) {
      const members = request.members.map((i) => spans[i]);
      // A block comes from a pool only when every reader of it gives back to that pool: a reader
      // that never gives back would just keep it out of the pool, but one giving back to another
      // pool would not count, so mixed blocks are plain.
      const first = waiters[request.members[0]]?.buffers;
      const buffers = request.members.every((i) => waiters[i]?.buffers === first) ? first : undefined;
      this.limit(async () => {
        this.stats.requests++;
        let parts: Uint8Array[] | undefined;
        if (store.getRanges) {
          // The store's own batched read: its retries, its coalescing (one request for these
          // members, as they were merged with the same gap and cap), split back for us.
          parts = await store.getRanges(key, members, {
            coalesceGap: this.gap,
            maxRequestSize: this.maxBlock,
            concurrency: 1,
            ...(buffers && { buffers }),
          });
        } else {
          // A TargetStore's getRange takes zarrita's options; ours read `buffers` from them too.
          const opts = (buffers ? { buffers } : undefined) as GetOptions | undefined;
          const bytes = await store.getRange(key, { offset: request.offset, length: request.length }, opts);
          if (bytes !== undefined) {
            parts = [];
            const local = { ...request, members: members.map((_, i) => i) };
            splitCoalesced(local, bytes, members, parts);
            buffers?.split(bytes, parts);
          }
        }
        this.stats.bytes += request.length;
        return parts;
      }).then(
        (parts) => request.members.forEach((i, n) => settle(waiters, i).resolve(parts?.[n])),
        (error: unknown) => request.members.forEach((i) => settle(waiters, i).reject(error)),
      );
    }
  }
}
