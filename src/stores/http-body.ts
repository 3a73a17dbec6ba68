/**
 * Response bodies of HttpBackend: read with a bound (never more than the request can weigh),
 * excerpted for error messages, or dropped; and the two non-multipart answers to a multi-range GET.
 */
import type { Dispatcher } from "undici";
import type { BufferPool } from "./buffer-pool.js";
import { IntegrityError, StoreError } from "../errors.js";
import { checkLength } from "./http-errors.js";
import { byterangesBoundary, matchParts, maxMultipartBytes, parseByteranges, type RequestedRange } from "./multipart.js";
import { parseContentRange } from "./range.js";

const ERROR_EXCERPT = 300;

export type Where = { store: string; key: string; operation: string };

export function header(headers: Dispatcher.ResponseData["headers"], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Drops an unread body; the connection is closed rather than drained. */
export function discard(body: Dispatcher.ResponseData["body"]): void {
  // destroy() without an error makes undici emit an AbortError; nobody else is listening.
  body.on("error", () => undefined);
  body.destroy();
}

/** A short, printable excerpt of an error body, for the message. */
export async function excerpt(body: Dispatcher.ResponseData["body"]): Promise<string | undefined> {
  try {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= ERROR_EXCERPT) break;
    }
    const text = Buffer.concat(chunks).toString("utf8", 0, ERROR_EXCERPT).replace(/\s+/g, " ").trim();
    return text || undefined;
  } catch {
    return undefined;
  }
}

/** The connection failed mid-body; `received` bytes had arrived. */
export class BodyFailed extends Error {
  constructor(
    readonly received: number,
    override readonly cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
  }
}

/**
 * Reads a body keeping only bytes [start, end) of it, stopping as soon as `end` is reached, so a
 * range answered with the whole object never holds more than the range. `end` undefined: to EOF.
 */
export function collect(body: Dispatcher.ResponseData["body"], start = 0, end?: number): Promise<Uint8Array> {
  // 'data' events rather than for-await: the async iterator costs ~2× on large bodies.
  return new Promise((resolve, reject) => {
    const parts: Uint8Array[] = [];
    let position = 0;
    let kept = 0;
    const finish = () => {
      body.off("data", onData);
      body.off("end", finish);
      if (parts.length === 1) return resolve(parts[0]);
      const out = new Uint8Array(kept);
      let offset = 0;
      for (const part of parts) {
        out.set(part, offset);
        offset += part.length;
      }
      resolve(out);
    };
    const onData = (chunk: Buffer) => {
      const from = Math.max(start - position, 0);
      const to = end === undefined ? chunk.length : Math.min(end - position, chunk.length);
      if (to > from) {
        parts.push(new Uint8Array(chunk.buffer, chunk.byteOffset + from, to - from));
        kept += to - from;
      }
      position += chunk.length;
      if (end !== undefined && position >= end) {
        finish();
        discard(body); // the rest is not needed
      }
    };
    body.on("data", onData);
    body.once("end", finish);
    body.once("error", (error) => reject(new BodyFailed(position, error)));
  });
}

/**
 * Reads a body whose length is announced (a 206's Content-Range) straight into one buffer of that
 * length, from `buffers` when given: each network chunk is copied as it arrives and can be
 * collected at once, where `collect` keeps every chunk until the end and then copies them all
 * (twice the body in memory, per request in flight). `received` counts what the server sent, up to
 * one byte past `length` (the read stops there): the caller decides what a wrong length means.
 */
export function collectInto(
  body: Dispatcher.ResponseData["body"],
  length: number,
  buffers?: BufferPool,
): Promise<{ data: Uint8Array; received: number }> {
  return new Promise((resolve, reject) => {
    const out = buffers ? buffers.take(length) : new Uint8Array(length);
    let received = 0;
    const finish = () => {
      body.off("data", onData);
      body.off("end", finish);
      resolve({ data: received >= length ? out : out.subarray(0, received), received });
    };
    const onData = (chunk: Buffer) => {
      const room = length - received;
      if (chunk.length > room) {
        out.set(chunk.subarray(0, room), received);
        received = length + 1; // more than announced: stop, the caller refuses it
        finish();
        discard(body);
        return;
      }
      out.set(chunk, received);
      received += chunk.length;
    };
    body.on("data", onData);
    body.once("end", finish);
    // On failure the buffer is dropped, never given back (see BufferPool: a use not given back
    // just stays out of the pool).
    body.once("error", (error) => reject(new BodyFailed(received, error)));
  });
}

/** A 206 to a multi-range request: multipart/byteranges, or one part covering every range. */
export async function readMultiPartial(
  where: Where,
  ranges: readonly RequestedRange[],
  headers: Dispatcher.ResponseData["headers"],
  body: Dispatcher.ResponseData["body"],
): Promise<Uint8Array[]> {
  const contentType = header(headers, "content-type");
  const boundary = byterangesBoundary(contentType);
  if (boundary === undefined) {
    const contentRange = header(headers, "content-range");
    const served = parseContentRange(contentRange);
    if (!served || served.end < served.start) {
      throw new StoreError(`206 response with neither multipart/byteranges nor a usable Content-Range ("${contentRange ?? ""}")`, where);
    }
    const expected = served.end - served.start + 1;
    const limit = ranges.reduce((n, r) => Math.max(n, r.offset + r.length), 0) - served.start;
    if (expected > limit) throw new IntegrityError(`server answered ${contentRange}, more than the ranges asked for`, where);
    const data = await collect(body, 0, expected + 1);
    checkLength(data, header(headers, "content-length"), where);
    if (data.length !== expected) {
      throw new IntegrityError(`body has ${data.length} bytes, Content-Range ${contentRange} says ${expected}`, where);
    }
    return matchParts([{ start: served.start, data, total: served.total }], ranges, where);
  }
  const limit = maxMultipartBytes(ranges, boundary);
  const data = await collect(body, 0, limit + 1);
  if (data.length > limit) {
    throw new IntegrityError(`multipart/byteranges body longer than ${limit} bytes, the most the ranges asked for can take`, where);
  }
  checkLength(data, header(headers, "content-length"), where);
  return matchParts(parseByteranges(data, boundary, where), ranges, where);
}

/**
 * A 200 to a multi-range request: the server ignored Range and sends the whole object. Only the
 * requested windows are kept (memory is the sum of their lengths, however large the object), and
 * the download stops at the end of the last one. Ranges come back short only at end of object.
 */
export async function sliceWholeRanges(
  where: Where,
  ranges: readonly RequestedRange[],
  headers: Dispatcher.ResponseData["headers"],
  body: Dispatcher.ResponseData["body"],
): Promise<Uint8Array[]> {
  const end = ranges.reduce((n, r) => Math.max(n, r.offset + r.length), 0);
  const out = ranges.map((r) => new Uint8Array(r.length));
  const received = await new Promise<number>((resolve, reject) => {
    let position = 0;
    const finish = () => {
      body.off("data", onData);
      body.off("end", finish);
      resolve(position);
    };
    const onData = (chunk: Buffer) => {
      const chunkEnd = position + chunk.length;
      ranges.forEach((r, i) => {
        const from = Math.max(r.offset, position);
        const to = Math.min(r.offset + r.length, chunkEnd);
        if (to > from) out[i].set(chunk.subarray(from - position, to - position), from - r.offset);
      });
      position = chunkEnd;
      if (position >= end) {
        finish();
        discard(body); // the rest of the object is not needed
      }
    };
    body.on("data", onData);
    body.once("end", finish);
    body.once("error", (error) => reject(new BodyFailed(position, error)));
  });
  const size = Number(header(headers, "content-length"));
  const available = Number.isSafeInteger(size) ? Math.min(end, size) : received;
  if (received < available) {
    throw new IntegrityError(`body ended after ${received} of ${available} bytes`, where);
  }
  const have = Math.min(received, available);
  return ranges.map((r, i) => out[i].subarray(0, Math.max(0, Math.min(r.length, have - r.offset))));
}
