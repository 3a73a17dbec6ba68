/**
 * Coalescing of byte ranges: nearby ranges are merged into one request and the result is split
 * back. The default gap (1 MiB) follows Rust object_store: on object stores a request costs far more
 * than reading a megabyte more.
 */

export interface ByteSpan {
  offset: number;
  length: number;
}

export interface CoalescedRequest extends ByteSpan {
  /** Indices into the caller's range list served by this request. */
  members: number[];
}

export const DEFAULT_COALESCE_GAP = 1024 * 1024;
export const DEFAULT_MAX_REQUEST = 64 * 1024 * 1024;

/** Groups ranges (any order, overlaps allowed) into as few requests as the gap and size cap allow. */
export function coalesceRanges(
  ranges: readonly ByteSpan[],
  gap = DEFAULT_COALESCE_GAP,
  maxRequest = DEFAULT_MAX_REQUEST,
): CoalescedRequest[] {
  const order = ranges.map((_, i) => i).sort((a, b) => ranges[a].offset - ranges[b].offset);
  const out: CoalescedRequest[] = [];
  let current: CoalescedRequest | undefined;
  for (const i of order) {
    const { offset, length } = ranges[i];
    if (current) {
      const end = current.offset + current.length;
      const newEnd = Math.max(end, offset + length);
      if (offset <= end + gap && newEnd - current.offset <= Math.max(maxRequest, current.length)) {
        current.length = newEnd - current.offset;
        current.members.push(i);
        continue;
      }
    }
    current = { offset, length, members: [i] };
    out.push(current);
  }
  return out;
}

/** Cuts each member range out of the bytes fetched for its request (bytes may be short at EOF). */
export function splitCoalesced(
  request: CoalescedRequest,
  bytes: Uint8Array,
  ranges: readonly ByteSpan[],
  out: Uint8Array[],
): void {
  for (const i of request.members) {
    const start = ranges[i].offset - request.offset;
    out[i] = bytes.subarray(Math.min(start, bytes.length), Math.min(start + ranges[i].length, bytes.length));
  }
}
