/** Byte-range helpers shared by the backends. */
import type { ByteRange } from "./backend.js";

/** The part of `data` a range selects; a range past the end yields only the bytes that exist. */
export function sliceRange(data: Uint8Array, range: ByteRange): Uint8Array {
  if ("suffixLength" in range) return data.subarray(Math.max(0, data.length - range.suffixLength));
  const end = range.length === undefined ? data.length : range.offset + range.length;
  return data.subarray(Math.min(range.offset, data.length), Math.min(end, data.length));
}

/** HTTP `Range` header value for a range. */
export function rangeHeader(range: ByteRange): string {
  if ("suffixLength" in range) return `bytes=-${range.suffixLength}`;
  if (range.length === undefined) return `bytes=${range.offset}-`;
  return `bytes=${range.offset}-${range.offset + range.length - 1}`;
}

/** Parses `Content-Range: bytes start-end/total` (total may be `*`). */
export function parseContentRange(
  value: string | null | undefined,
): { start: number; end: number; total?: number } | undefined {
  const m = value && /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value.trim());
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === "*" ? undefined : Number(m[3]) };
}

/** Validates a range before it reaches a backend (negative or fractional values are caller bugs). */
export function isValidRange(range: ByteRange): boolean {
  if ("suffixLength" in range) return Number.isSafeInteger(range.suffixLength) && range.suffixLength >= 0;
  return (
    Number.isSafeInteger(range.offset) &&
    range.offset >= 0 &&
    (range.length === undefined || (Number.isSafeInteger(range.length) && range.length >= 0))
  );
}
