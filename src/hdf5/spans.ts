/**
 * Reading many scattered ranges of one object at once: ranges closer than `gap` share a request
 * (the bytes between them are cheaper than a round trip), the remaining requests run with bounded
 * concurrency, or all go in one multi-range call when the source offers one.
 */
import { coalesceRanges, splitCoalesced } from "../stores/coalesce.js";

export interface SpanOptions {
  /** Ranges at most this far apart are read in one request (default 64 KiB). */
  gap?: number;
  /** Requests in flight (default 16). */
  concurrency?: number;
  /** Ranges per multi-range call (default 256). */
  perMultiRange?: number;
}

interface SpanReader {
  read(offset: number, length: number): Promise<Uint8Array>;
  readRanges?: (ranges: readonly { offset: number; length: number }[]) => Promise<Uint8Array[]>;
}

/** No request is merged beyond this, so one gap policy cannot turn into reading a whole file. */
const MAX_REQUEST = 8 * 1024 * 1024;

export async function readSpans(
  source: SpanReader,
  ranges: readonly { offset: number; length: number }[],
  options: SpanOptions = {},
): Promise<Uint8Array[]> {
  const requests = coalesceRanges(ranges, options.gap ?? 32 * 1024, MAX_REQUEST);
  const out = new Array<Uint8Array>(ranges.length);
  if (requests.length === 0) return out;
  if (source.readRanges && requests.length > 1) {
    const per = options.perMultiRange ?? 256;
    for (let i = 0; i < requests.length; i += per) {
      const group = requests.slice(i, i + per);
      const parts = await source.readRanges(group);
      group.forEach((request, j) => splitCoalesced(request, parts[j], ranges, out));
    }
    return out;
  }
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < requests.length && !failed) {
      const request = requests[next++];
      try {
        splitCoalesced(request, await source.read(request.offset, request.length), ranges, out);
      } catch (e) {
        failed = true; // the other workers stop taking requests
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 16, requests.length) }, worker));
  return out;
}
