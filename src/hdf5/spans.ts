/**
 * Reading many scattered ranges of one object at once: ranges closer than `gap` share a request
 * (the bytes between them are cheaper than a round trip), the remaining requests run with bounded
 * concurrency, or all go in one multi-range call when the source offers one.
 */
import { coalesceRanges, type CoalescedRequest } from "../stores/coalesce.js";

export interface SpanOptions {
  /**
   * Ranges at most this far apart are read in one request (default 32 KiB; 4 KiB when the source
   * takes multi-range calls, where one more range costs a line of headers, not a round trip).
   */
  gap?: number;
  /** Requests in flight (default 16). */
  concurrency?: number;
  /** Ranges per multi-range call (default 128: an HTTP Range header stays under 4 KiB). */
  perMultiRange?: number;
}

interface SpanReader {
  read(offset: number, length: number): Promise<Uint8Array>;
  readRanges?: (ranges: readonly { offset: number; length: number }[]) => Promise<Uint8Array[]>;
}

/**
 * No request is merged beyond this: requests in flight × this bounds the memory a level costs,
 * and one gap policy cannot turn into reading a whole file in one piece.
 */
const MAX_REQUEST = 1024 * 1024;

export async function readSpans(
  source: SpanReader,
  ranges: readonly { offset: number; length: number }[],
  options: SpanOptions = {},
): Promise<Uint8Array[]> {
  const gap = options.gap ?? (source.readRanges ? 4 * 1024 : 32 * 1024);
  const requests = coalesceRanges(ranges, gap, MAX_REQUEST);
  const out = new Array<Uint8Array>(ranges.length);
  if (requests.length === 0) return out;
  // Units of work: one request each, or groups of requests for one multi-range call.
  const per = source.readRanges && requests.length > 1 ? (options.perMultiRange ?? 128) : 1;
  const units: CoalescedRequest[][] = [];
  for (let i = 0; i < requests.length; i += per) units.push(requests.slice(i, i + per));
  const fetchUnit = async (unit: CoalescedRequest[]) => {
    if (per === 1) {
      split(unit[0], await source.read(unit[0].offset, unit[0].length), ranges, out);
    } else {
      const parts = await source.readRanges!(unit);
      unit.forEach((request, j) => split(request, parts[j], ranges, out));
    }
  };
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < units.length && !failed) {
      const unit = units[next++];
      try {
        await fetchUnit(unit);
      } catch (e) {
        failed = true; // the other workers stop taking requests
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 16, units.length) }, worker));
  return out;
}

/**
 * Cuts each range out of its request's bytes. A range keeps a view when it is most of the request,
 * else a copy: a view would keep the whole request buffer (mostly chunk data between the nodes)
 * alive as long as the caller keeps the range.
 */
function split(request: CoalescedRequest, bytes: Uint8Array, ranges: readonly { offset: number; length: number }[], out: Uint8Array[]): void {
  let wanted = 0;
  for (const i of request.members) wanted += ranges[i].length;
  const copy = wanted * 2 < bytes.length;
  for (const i of request.members) {
    const start = Math.min(ranges[i].offset - request.offset, bytes.length);
    const end = Math.min(start + ranges[i].length, bytes.length);
    out[i] = copy ? bytes.slice(start, end) : bytes.subarray(start, end);
  }
}
