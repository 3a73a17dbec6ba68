/**
 * The one generic Store: every adapter is a small `Backend`, and the policies — retries with
 * jittered backoff, per-request timeouts, transparent compression, bounded concurrency, batching
 * and range coalescing — are written once here.
 */
import pLimit, { type LimitFunction } from "p-limit";
import { IntegrityError, StoreError } from "../errors.js";
import type { Backend, ByteRange, StoredObject } from "./backend.js";
import { runBatch } from "./batch.js";
import {
  coalesceRanges,
  type CoalescedRequest,
  DEFAULT_COALESCE_GAP,
  DEFAULT_MAX_REQUEST,
  splitCoalesced,
} from "./coalesce.js";
import { groupForMultiRange } from "./multipart.js";
import { compress, decompress, isCompression, isIdentityEncoding } from "./compression.js";
import { isValidRange } from "./range.js";
import { DEFAULT_RETRY, withRetry, type RetryPolicy } from "./retry.js";
import { onAbort } from "../util/abort.js";
import type {
  Batch,
  BatchItem,
  BatchOptions,
  Compression,
  ObjectInfo,
  RangeQuery,
  ReadOptions,
  Store,
  WriteOptions,
} from "./types.js";

export interface StoreOptions {
  /** Requests in flight at once, for single calls and as the default for batches. */
  concurrency?: number;
  retry?: Partial<RetryPolicy>;
  /** Per-attempt timeout in ms; a timed-out attempt is retried. Default 60 000 (0 disables). */
  timeoutMs?: number;
  /** Compress every write with this method unless a call says otherwise. */
  compress?: Compression;
  level?: number;
}

/** What the store did, for tests, benchmarks and the CLI. */
export interface StoreStats {
  requests: number;
  retries: number;
  bytesRead: number;
  bytesWritten: number;
}

/** zarrita hands keys as absolute paths ("/zarr.json"); stores key objects without the slash. */
export function normalizeKey(key: string): string {
  let i = 0;
  while (key.charCodeAt(i) === 47 /* "/" */) i++;
  return i === 0 ? key : key.slice(i);
}

function toByteRange(range: RangeQuery): ByteRange {
  if ("suffixLength" in range) return { suffixLength: range.suffixLength };
  return { offset: range.offset, length: range.length };
}

export interface GetRangesOptions extends BatchOptions, ReadOptions {
  /** Ranges at most this far apart share a span (default 1 MiB). */
  coalesceGap?: number;
  /** No span grows past this by coalescing (default 64 MiB). */
  maxRequestSize?: number;
  /** Spans in one multi-range request, when the backend has them (default: the backend's, 128). */
  maxRangesPerRequest?: number;
  /** `false`: one request per span even when the backend takes multi-range requests. */
  multiRange?: boolean;
}

/** Range header bytes per request: well under the 8 KiB header buffers of common servers. */
const MAX_RANGE_HEADER = 6 * 1024;

export class ObjectStore implements Store {
  readonly url: string;
  readonly stats: StoreStats = { requests: 0, retries: 0, bytesRead: 0, bytesWritten: 0 };
  readonly concurrency: number;
  private readonly policy: RetryPolicy;
  private readonly timeoutMs: number;
  private readonly limit: LimitFunction;

  constructor(
    readonly backend: Backend,
    private readonly options: StoreOptions = {},
  ) {
    this.url = backend.url;
    this.concurrency = options.concurrency ?? backend.defaultConcurrency;
    this.policy = { ...DEFAULT_RETRY, ...options.retry };
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.limit = pLimit(this.concurrency);
  }

  // ---- single calls (bounded by the store-wide limit) ----

  get(key: string, opts: ReadOptions = {}): Promise<Uint8Array | undefined> {
    return this.limit(() => this.read(key, undefined, opts));
  }

  getRange(key: string, range: RangeQuery, opts: ReadOptions = {}): Promise<Uint8Array | undefined> {
    return this.limit(() => this.read(key, toByteRange(range), opts));
  }

  set(key: string, value: Uint8Array, opts: WriteOptions = {}): Promise<void> {
    return this.limit(async () => {
      await this.write(key, value, opts);
    });
  }

  delete(key: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    // Key validation inside the limited callback: a refused key rejects the promise, never throws.
    return this.limit(() => {
      const k = this.key(key);
      return this.attempt("delete", k, opts.signal, (s) => this.backend.remove(k, s));
    });
  }

  async has(key: string, opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    return (await this.head(key, opts)) !== undefined;
  }

  head(key: string, opts: { signal?: AbortSignal } = {}): Promise<ObjectInfo | undefined> {
    return this.limit(() => {
      const k = this.key(key);
      return this.attempt("head", k, opts.signal, (s) => this.backend.stat(k, s));
    });
  }

  list(prefix = "", opts: { signal?: AbortSignal } = {}): AsyncIterable<ObjectInfo> {
    const p = normalizeKey(prefix);
    return this.backend.list(p, {
      signal: opts.signal,
      retry: (request) => this.attempt("list", p, opts.signal, (signal) => request(signal)),
    });
  }

  async close(): Promise<void> {
    await this.backend.close?.();
  }

  // ---- batched calls (their own concurrency, CloudFiles-style) ----

  getMany(keys: Iterable<string>, opts: BatchOptions & ReadOptions = {}): Batch<Uint8Array | undefined> {
    return runBatch(
      keys,
      (key) => key,
      async (key, signal) => {
        const value = await this.read(key, undefined, { ...opts, signal });
        return { value, bytes: value?.length ?? 0 };
      },
      { ...opts, concurrency: opts.concurrency ?? this.concurrency },
    );
  }

  async getRanges(
    key: string,
    ranges: readonly { offset: number; length: number }[],
    opts: GetRangesOptions = {},
  ): Promise<Uint8Array[] | undefined> {
    const requests = coalesceRanges(
      ranges,
      opts.coalesceGap ?? DEFAULT_COALESCE_GAP,
      opts.maxRequestSize ?? DEFAULT_MAX_REQUEST,
    );
    const out = new Array<Uint8Array>(ranges.length);
    let missing = false;
    if (this.backend.readRanges && requests.length > 1 && opts.multiRange !== false) {
      return this.getRangesMulti(key, ranges, requests, opts);
    }
    const batch = runBatch(
      requests.map((request, i) => ({ request, i })),
      ({ i }) => String(i),
      async ({ request }, signal) => {
        const bytes = await this.read(key, request, { ...opts, signal });
        if (bytes === undefined) missing = true;
        else {
          splitCoalesced(request, bytes, ranges, out);
          // One use of a pooled block per range cut from it: reusable when all are given back.
          opts.buffers?.split(bytes, request.members.map((i) => out[i]));
        }
        return { value: undefined, bytes: bytes?.length ?? 0 };
      },
      { ...opts, concurrency: opts.concurrency ?? this.concurrency },
    );
    for await (const _ of batch) {
      if (missing) return undefined;
    }
    return missing ? undefined : out;
  }

  /** Whether `getRanges` sends several spans in one request (HTTP multi-range). */
  get multiRange(): boolean {
    return this.backend.readRanges !== undefined;
  }

  /**
   * The coalesced spans in groups, one multi-range request per group (at most
   * `maxRangesPerRequest` spans and a Range header under MAX_RANGE_HEADER), each under the retry
   * policy like any read.
   */
  private async getRangesMulti(
    key: string,
    ranges: readonly { offset: number; length: number }[],
    requests: CoalescedRequest[],
    opts: GetRangesOptions,
  ): Promise<Uint8Array[] | undefined> {
    const k = this.key(key);
    for (const r of ranges) {
      if (!isValidRange(r) || r.length === undefined) {
        throw new StoreError(`invalid byte range ${JSON.stringify(r)}`, { store: this.url, key: k, operation: "getRanges" });
      }
    }
    const per = Math.max(1, opts.maxRangesPerRequest ?? this.backend.maxRangesPerRequest ?? 128);
    const groups = groupForMultiRange(requests, per, MAX_RANGE_HEADER);
    const out = new Array<Uint8Array>(ranges.length);
    let missing = false;
    const batch = runBatch(
      groups.map((g, i) => ({ g, i })),
      ({ i }) => String(i),
      async ({ g }, signal) => {
        const parts = await this.attempt("getRanges", k, signal, async (s) => {
          const stored = await this.backend.readRanges!(k, g, s);
          if (stored === undefined) return undefined;
          if (!opts.raw && !isIdentityEncoding(stored.contentEncoding?.toLowerCase())) {
            throw new StoreError(
              `object is stored with Content-Encoding ${stored.contentEncoding}; a byte range of it is not a ` +
                "range of the data. Read it whole, or pass {raw: true} for the stored bytes",
              { store: this.url, key: k, operation: "getRanges" },
            );
          }
          for (const p of stored.parts) this.stats.bytesRead += p.length;
          return stored.parts;
        });
        let bytes = 0;
        if (parts === undefined) missing = true;
        else g.forEach((request, j) => (splitCoalesced(request, parts[j], ranges, out), (bytes += parts[j].length)));
        return { value: undefined, bytes };
      },
      { ...opts, signal: opts.signal, concurrency: opts.concurrency ?? this.concurrency },
    );
    for await (const _ of batch) {
      if (missing) return undefined;
    }
    return missing ? undefined : out;
  }

  setMany(
    entries: Iterable<readonly [string, Uint8Array]> | AsyncIterable<readonly [string, Uint8Array]>,
    opts: BatchOptions & WriteOptions = {},
  ): Batch<number> {
    return runBatch(
      entries,
      ([key]) => key,
      async ([key, value], signal) => {
        const stored = await this.write(key, value, { ...opts, signal });
        return { value: stored, bytes: stored };
      },
      { ...opts, concurrency: opts.concurrency ?? this.concurrency },
    );
  }

  deleteMany(keys: Iterable<string>, opts: BatchOptions = {}): Batch<void> {
    const backend = this.backend;
    const concurrency = opts.concurrency ?? this.concurrency;
    if (!backend.removeBatch) {
      return runBatch(
        keys,
        (key) => key,
        async (key, signal) => {
          const k = this.key(key);
          await this.attempt("delete", k, signal, (s) => backend.remove(k, s));
          return { value: undefined, bytes: 0 };
        },
        { ...opts, concurrency },
      );
    }
    // Bulk delete: groups of up to maxBatchDelete keys per request, reported per key.
    const size = backend.maxBatchDelete ?? 1000;
    const groups = (function* () {
      let group: string[] = [];
      for (const key of keys) {
        group.push(key);
        if (group.length === size) {
          yield group;
          group = [];
        }
      }
      if (group.length > 0) yield group;
    })();
    const total = Array.isArray(keys) ? keys.length : undefined;
    const grouped = runBatch(
      groups,
      (group) => group[0],
      async (group, signal) => {
        const ks = group.map((k) => this.key(k));
        await this.attempt("deleteMany", ks[0], signal, (s) => backend.removeBatch!(ks, s));
        return { value: group, bytes: 0 };
      },
      { concurrency, signal: opts.signal },
    );
    async function* perKey(): AsyncGenerator<BatchItem<void>> {
      let done = 0;
      for await (const { value: group } of grouped) {
        for (const key of group) {
          opts.onProgress?.({ done: ++done, total, bytes: 0 });
          yield { key, value: undefined };
        }
      }
    }
    return {
      [Symbol.asyncIterator]: perKey,
      async toMap() {
        const out = new Map<string, void>();
        for await (const { key } of perKey()) out.set(key, undefined);
        return out;
      },
    };
  }

  // ---- the policies ----

  private key(key: string): string {
    const k = normalizeKey(key);
    this.backend.validateKey?.(k);
    return k;
  }

  /**
   * One logical operation under the retry policy, each attempt with its own timeout. A timeout is
   * reported as a retryable StoreError; the caller's own abort is passed through untouched.
   */
  private attempt<T>(
    operation: string,
    key: string,
    signal: AbortSignal | undefined,
    request: (signal: AbortSignal | undefined) => Promise<T>,
  ): Promise<T> {
    return withRetry(
      async () => {
        this.stats.requests++;
        if (!this.timeoutMs) return request(signal);
        // One controller per attempt, released when the attempt ends. AbortSignal.timeout keeps its
        // timer for the full timeout and AbortSignal.any keeps each combined signal attached to the
        // caller's signal; a batch sharing one signal across thousands of requests slowed down with
        // every request it made (getMany of 3000 objects took twice as long as a plain loop).
        const controller = new AbortController();
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          controller.abort(new DOMException(`timed out after ${this.timeoutMs} ms`, "TimeoutError"));
        }, this.timeoutMs);
        timer.unref();
        const abort = () => controller.abort(signal!.reason);
        let stop = () => undefined as void;
        if (signal?.aborted) abort();
        else stop = onAbort(signal, abort);
        try {
          return await request(controller.signal);
        } catch (error) {
          if (timedOut && !signal?.aborted) {
            throw new StoreError(`timed out after ${this.timeoutMs} ms`, {
              store: this.url,
              key,
              operation,
              retryable: true,
              cause: error,
            });
          }
          throw error;
        } finally {
          clearTimeout(timer);
          stop();
        }
      },
      this.policy,
      signal,
      this.stats,
    );
  }

  private read(key: string, range: ByteRange | undefined, opts: ReadOptions): Promise<Uint8Array | undefined> {
    const k = this.key(key);
    const operation = range ? "getRange" : "get";
    if (range && !isValidRange(range)) {
      return Promise.reject(
        new StoreError(`invalid byte range ${JSON.stringify(range)}`, { store: this.url, key: k, operation }),
      );
    }
    return this.attempt(operation, k, opts.signal, async (signal) => {
      const stored = await this.backend.read(k, range, signal, opts.buffers);
      if (stored === undefined) return undefined;
      this.stats.bytesRead += stored.data.length;
      if (opts.raw) return stored.data;
      const data = await this.decode(stored, k, operation, range !== undefined);
      // Decompressed into new bytes: nobody but us saw the read buffer, so it goes straight back.
      if (opts.buffers && data.buffer !== stored.data.buffer) opts.buffers.give(stored.data);
      return data;
    });
  }

  private async decode(
    stored: StoredObject,
    key: string,
    operation: string,
    isRange: boolean,
  ): Promise<Uint8Array> {
    const encoding = stored.contentEncoding?.toLowerCase();
    if (isIdentityEncoding(encoding)) return stored.data;
    if (isRange) {
      throw new StoreError(
        `object is stored with Content-Encoding ${encoding}; a byte range of it is not a range of the ` +
          `data. Read it whole, or pass {raw: true} for the stored bytes`,
        { store: this.url, key, operation },
      );
    }
    if (!isCompression(encoding!)) {
      throw new StoreError(`unsupported Content-Encoding "${encoding}"; pass {raw: true} for the stored bytes`, {
        store: this.url,
        key,
        operation,
      });
    }
    try {
      return await decompress(stored.data, encoding);
    } catch (cause) {
      // Corrupt on the wire or at rest: retried, then reported.
      throw new IntegrityError(`cannot decode ${encoding} body`, { store: this.url, key, operation, cause });
    }
  }

  /** Returns the number of bytes stored. */
  private async write(key: string, value: Uint8Array, opts: WriteOptions): Promise<number> {
    const k = this.key(key);
    const method = opts.compress === undefined ? this.options.compress : opts.compress;
    const data = method ? await compress(value, method, opts.level ?? this.options.level) : value;
    await this.attempt("set", k, opts.signal, (signal) =>
      this.backend.write(k, data, {
        contentEncoding: method ?? undefined,
        contentType: opts.contentType,
        ifNoneMatch: opts.ifNoneMatch,
        signal,
      }),
    );
    this.stats.bytesWritten += data.length;
    return data.length;
  }
}
