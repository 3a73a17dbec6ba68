/**
 * The store contract. `Store` is a superset of zarrita's `AsyncMutable`, so any store can be handed
 * to `zarr.open` / `zarr.create` unchanged; the rest is what CloudFiles users expect: listing, heads,
 * deletes and batched calls with bounded concurrency.
 */
import type { AsyncMutable, RangeQuery } from "@zarrita/storage";
import type { BufferPool } from "./buffer-pool.js";

export type { RangeQuery };

/** Transparent compression applied on write and undone on read, recorded as Content-Encoding. */
export type Compression = "gzip" | "br" | "zstd";

export interface ReadOptions {
  signal?: AbortSignal;
  /** Return the stored bytes without undoing Content-Encoding. */
  raw?: boolean;
  /**
   * Read into buffers taken from this pool where the backend can (local disk); the caller gives
   * each result (or each of `getRanges`' parts) back with `buffers.give` when done with it, or
   * never, which is also safe. Only for callers that own the bytes until they give them back: a
   * wrapper that caches or keeps results must not pass it through.
   */
  buffers?: BufferPool;
}

export interface WriteOptions {
  signal?: AbortSignal;
  /** Compress before storing; overrides the store's default. `null` disables it for this call. */
  compress?: Compression | null;
  /** Compression level (gzip 1–9, br 0–11, zstd 1–22). */
  level?: number;
  /** Create-only: fail with ConflictError if the key exists (S3 `If-None-Match: *`). */
  ifNoneMatch?: "*";
  contentType?: string;
}

export interface ObjectInfo {
  /** Key relative to the store root, `/`-separated, no leading slash. */
  key: string;
  /** Stored size in bytes (after compression). */
  size: number;
  contentEncoding?: string;
  etag?: string;
  lastModified?: Date;
}

export interface BatchOptions {
  /** Requests in flight at once; defaults to the backend's own default. */
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?: (progress: BatchProgress) => void;
}

export interface BatchProgress {
  done: number;
  /** Known when the input was an array or Set; undefined for streamed input. */
  total?: number;
  /** Bytes moved so far (read or written, as stored). */
  bytes: number;
}

export interface BatchItem<V> {
  key: string;
  value: V;
}

/**
 * Results of a batched call: iterate to get each item as it completes (completion order), or
 * `toMap()` to wait for all. Work starts when iteration starts. The first failure (after retries)
 * cancels what is still queued and is thrown from the iterator; nothing is reported as missing
 * that was not missing.
 */
export interface Batch<V> extends AsyncIterable<BatchItem<V>> {
  toMap(): Promise<Map<string, V>>;
}

export interface Store extends AsyncMutable {
  /** URL-ish name of the store root, used in error messages: `s3://bucket/prefix`. */
  readonly url: string;

  get(key: string, opts?: ReadOptions): Promise<Uint8Array | undefined>;
  getRange(key: string, range: RangeQuery, opts?: ReadOptions): Promise<Uint8Array | undefined>;
  set(key: string, value: Uint8Array, opts?: WriteOptions): Promise<void>;

  /** Deleting a missing key is not an error. */
  delete(key: string, opts?: { signal?: AbortSignal }): Promise<void>;
  has(key: string, opts?: { signal?: AbortSignal }): Promise<boolean>;
  head(key: string, opts?: { signal?: AbortSignal }): Promise<ObjectInfo | undefined>;
  /** Every object under `prefix` (a key prefix, not a directory), paginated underneath. */
  list(prefix?: string, opts?: { signal?: AbortSignal }): AsyncIterable<ObjectInfo>;

  getMany(keys: Iterable<string>, opts?: BatchOptions & ReadOptions): Batch<Uint8Array | undefined>;
  /**
   * Several ranges of one object. Nearby ranges are coalesced into one request (gap up to
   * `coalesceGap`, default 1 MiB) and split back; results follow the order of `ranges`.
   * `undefined` when the object does not exist.
   */
  getRanges(
    key: string,
    ranges: readonly { offset: number; length: number }[],
    opts?: BatchOptions & ReadOptions & { coalesceGap?: number; maxRequestSize?: number },
  ): Promise<Uint8Array[] | undefined>;
  setMany(
    entries: Iterable<readonly [string, Uint8Array]> | AsyncIterable<readonly [string, Uint8Array]>,
    opts?: BatchOptions & WriteOptions,
  ): Batch<number>;
  deleteMany(keys: Iterable<string>, opts?: BatchOptions): Batch<void>;
}
