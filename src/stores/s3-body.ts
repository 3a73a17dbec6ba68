/**
 * Reading a GetObject body into one Uint8Array, checked: the byte count against Content-Length and,
 * when the ETag is an MD5 of the object, the digest. A lying Content-Length never makes us allocate
 * more than has arrived (beyond a bounded first buffer), and a stalled body is cut off when the
 * request's signal fires.
 */
import { createHash, type Hash } from "node:crypto";
import { IntegrityError, StoreError, type StoreErrorDetails } from "../errors.js";
import { onAbort } from "../util/abort.js";
import type { BufferPool } from "./buffer-pool.js";

type Where = Pick<StoreErrorDetails, "store" | "key" | "operation">;

/** Largest buffer allocated up front on the word of a Content-Length header. */
const MAX_PREALLOCATE = 64 * 1024 * 1024;

/** A plain MD5 ETag: 32 hex digits, quoted. Multipart ETags end in `-<parts>`. */
export function md5FromEtag(etag: string | undefined): string | undefined {
  const m = etag && /^"?([0-9a-fA-F]{32})"?$/.exec(etag.trim());
  return m ? m[1].toLowerCase() : undefined;
}

/** What a body stream from the SDK looks like once the mixin methods are ignored. */
export type BodyStream = AsyncIterable<Uint8Array> & { destroy?: (error?: Error) => void };

/** Grows by doubling but never past what the header announced (or, with no header, as needed). */
class Accumulator {
  private buffer: Uint8Array;
  length = 0;

  constructor(expected: number | undefined, buffers?: BufferPool) {
    // A body of announced length lands in a pooled buffer when the caller has a pool.
    if (expected !== undefined && expected <= MAX_PREALLOCATE && buffers) this.buffer = buffers.take(expected);
    else this.buffer = new Uint8Array(expected === undefined ? 64 * 1024 : Math.min(expected, MAX_PREALLOCATE));
  }

  push(chunk: Uint8Array): void {
    const needed = this.length + chunk.length;
    if (needed > this.buffer.length) {
      const grown = new Uint8Array(Math.max(needed, this.buffer.length * 2));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    this.buffer.set(chunk, this.length);
    this.length = needed;
  }

  result(): Uint8Array {
    return this.length === this.buffer.length ? this.buffer : this.buffer.slice(0, this.length);
  }
}

export interface ReadBodyOptions {
  /** Content-Length as reported; bytes beyond it are never accepted. */
  contentLength?: number;
  /** Expected MD5 (hex) of the whole body; checked after the last byte. */
  md5?: string;
  signal?: AbortSignal;
  /** Where a body of announced length lands; on failure that buffer is dropped, not given back. */
  buffers?: BufferPool;
}

/**
 * Collects the body. Throws IntegrityError (retryable) when fewer or more bytes arrive than
 * announced, or when the MD5 does not match; transport failures propagate for the caller to map.
 */
export async function readBody(body: BodyStream, where: Where, options: ReadBodyOptions): Promise<Uint8Array> {
  const { contentLength, md5, signal, buffers } = options;
  const expected = contentLength !== undefined && Number.isSafeInteger(contentLength) ? contentLength : undefined;
  const out = new Accumulator(expected, buffers);
  const hash: Hash | undefined = md5 ? createHash("md5") : undefined;
  // A stall after the headers would otherwise outlive the request's timeout.
  const stop = onAbort(signal, () => body.destroy?.(signal?.reason instanceof Error ? signal.reason : new Error("aborted")));
  try {
    for await (const chunk of body) {
      if (expected !== undefined && out.length + chunk.length > expected) {
        body.destroy?.();
        throw new IntegrityError(
          `long body: more than the ${expected} bytes Content-Length announced`,
          where,
        );
      }
      out.push(chunk);
      hash?.update(chunk);
    }
  } finally {
    stop();
  }
  signal?.throwIfAborted();
  if (expected !== undefined && out.length !== expected) {
    throw new IntegrityError(`short body: got ${out.length} bytes, Content-Length said ${expected}`, where);
  }
  if (hash && md5) {
    const actual = hash.digest("hex");
    if (actual !== md5) {
      throw new IntegrityError(`MD5 mismatch: ETag says ${md5}, received bytes hash to ${actual}`, where);
    }
  }
  return out.result();
}

/** A body that is not a readable stream means a broken SDK setup, not a transient failure. */
export function asBodyStream(body: unknown, where: Where): BodyStream {
  if (body && typeof body === "object" && Symbol.asyncIterator in body) return body as BodyStream;
  throw new StoreError("GetObject returned no readable body", where);
}
