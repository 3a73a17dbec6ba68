/**
 * The seam between the generic `ObjectStore` (retries, compression, batching, coalescing, key
 * handling) and one storage service. A backend does one request per call and reports failures as
 * `StoreError`s with `retryable` set honestly; it never retries and never decompresses.
 */
import type { BufferPool } from "./buffer-pool.js";
import type { ObjectInfo } from "./types.js";

/** A byte range to read: `length` omitted means "to the end", `suffixLength` the last N bytes. */
export type ByteRange = { offset: number; length?: number } | { suffixLength: number };

/** Runs one request under the store's retry policy; `signal` carries the attempt's timeout. */
export type Retrier = <T>(request: (signal?: AbortSignal) => Promise<T>) => Promise<T>;

export interface StoredObject {
  /** Exactly the stored bytes of the object or range (already checked against Content-Length). */
  data: Uint8Array;
  /** Content-Encoding recorded when the object was written, if any. */
  contentEncoding?: string;
}

export interface StoredRanges {
  parts: Uint8Array[];
  contentEncoding?: string;
}

export interface BackendWriteOptions {
  contentEncoding?: string;
  contentType?: string;
  ifNoneMatch?: "*";
  signal?: AbortSignal;
}

export interface Backend {
  /** URL of the store root, for error messages and `Store.url`. */
  readonly url: string;
  /** Requests in flight at once that suit this service (CloudFiles-like defaults). */
  readonly defaultConcurrency: number;
  /** Keys the service cannot store safely are refused here (throw InvalidKeyError). */
  validateKey?(key: string): void;

  /**
   * `undefined` only when the object truly does not exist (404 / ENOENT). With `buffers`, a backend
   * that reads into memory it allocates may take the destination from the pool (`take`) and return
   * it as `data`; one that cannot ignores the pool. Either way `data` is the caller's.
   */
  read(
    key: string,
    range: ByteRange | undefined,
    signal?: AbortSignal,
    buffers?: BufferPool,
  ): Promise<StoredObject | undefined>;
  /**
   * Several ranges of one object in one request (HTTP multi-range), when the service has it. Parts
   * follow the order of `ranges`, short only at the end of the object; `undefined` when the object
   * does not exist.
   */
  readRanges?(key: string, ranges: readonly { offset: number; length: number }[], signal?: AbortSignal): Promise<StoredRanges | undefined>;
  /** Ranges per `readRanges` call the service takes (the Range header stays a few KiB). */
  readonly maxRangesPerRequest?: number;
  write(key: string, data: Uint8Array, options: BackendWriteOptions): Promise<void>;
  /** Removing a missing object is not an error. */
  remove(key: string, signal?: AbortSignal): Promise<void>;
  /** Optional bulk delete (S3 DeleteObjects): keys at most `maxBatchDelete` per call. */
  removeBatch?(keys: string[], signal?: AbortSignal): Promise<void>;
  readonly maxBatchDelete?: number;
  stat(key: string, signal?: AbortSignal): Promise<ObjectInfo | undefined>;
  /**
   * Keys are relative to the store root. Pages are fetched lazily, each one through `retry` so a
   * transient failure on page 40 does not restart the listing.
   */
  list(prefix: string, options: { signal?: AbortSignal; retry: Retrier }): AsyncIterable<ObjectInfo>;
  /** Release pooled connections. */
  close?(): Promise<void>;
}
