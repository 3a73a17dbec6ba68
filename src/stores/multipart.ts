/**
 * `multipart/byteranges` bodies (RFC 9110 §14.6): the answer to a Range header with several
 * ranges. Each part carries its own Content-Range; the parts are matched back to the ranges asked
 * for, so a server that merges, reorders or clips parts still yields the right bytes, and one that
 * drops or cuts parts yields an IntegrityError, never other bytes.
 */
import { IntegrityError } from "../errors.js";
import { parseContentRange } from "./range.js";

export interface RequestedRange {
  offset: number;
  length: number;
}

/** One part of the answer: bytes [start, start + data.length) of an object of `total` bytes. */
export interface ServedPart {
  start: number;
  data: Uint8Array;
  total?: number;
}

type Where = { store: string; key: string; operation: string };

/** Bytes of part headers allowed per part beyond the boundary line (Content-Type + Content-Range). */
export const PART_HEADER_ALLOWANCE = 512;

/** The boundary parameter of a `multipart/byteranges` Content-Type, else undefined. */
export function byterangesBoundary(contentType: string | undefined): string | undefined {
  if (!contentType || !/^\s*multipart\/byteranges\s*;/i.test(contentType)) return undefined;
  const m = /;\s*boundary\s*=\s*(?:"([^"]{1,200})"|([^\s;"]{1,200}))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

/** The most a well-formed answer to `ranges` can weigh, for bounding what is read of a body. */
export function maxMultipartBytes(ranges: readonly RequestedRange[], boundary: string): number {
  let sum = 0;
  for (const r of ranges) sum += r.length + boundary.length + PART_HEADER_ALLOWANCE;
  return sum + boundary.length + 64;
}

const CRLFCRLF = Buffer.from("\r\n\r\n");

/**
 * Splits a multipart/byteranges body into its parts. Each part's length comes from its
 * Content-Range, not from searching for the next boundary (the data may contain it), and the
 * delimiter must follow the data exactly where the Content-Range says it ends.
 */
export function parseByteranges(body: Uint8Array, boundary: string, where: Where): ServedPart[] {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: ServedPart[] = [];
  const broken = (what: string) => new IntegrityError(`multipart/byteranges body ${what}`, where);
  let at = buf.indexOf(delimiter);
  if (at < 0) throw broken("has no boundary line");
  for (;;) {
    at += delimiter.length;
    if (buf[at] === 0x2d && buf[at + 1] === 0x2d) return parts; // "--": the closing delimiter
    const headEnd = buf.indexOf(CRLFCRLF, at);
    if (headEnd < 0 || headEnd - at > PART_HEADER_ALLOWANCE) {
      throw broken(`is cut short or malformed in the headers of part ${parts.length + 1} (byte ${at})`);
    }
    const head = buf.toString("latin1", at, headEnd);
    const line = /\r\ncontent-range:\s*([^\r\n]*)/i.exec(head);
    const served = parseContentRange(line?.[1]);
    if (!served || served.end < served.start) {
      throw broken(`part ${parts.length + 1} has no usable Content-Range ("${line?.[1] ?? ""}")`);
    }
    const start = headEnd + CRLFCRLF.length;
    const end = start + (served.end - served.start + 1);
    if (end > buf.length) throw broken(`ends inside part ${parts.length + 1} (${served.start}-${served.end})`);
    if (buf[end] !== 0x0d || buf[end + 1] !== 0x0a || !buf.subarray(end + 2, end + 2 + delimiter.length).equals(delimiter)) {
      throw broken(`has no delimiter where part ${parts.length + 1} (${served.start}-${served.end}) should end`);
    }
    parts.push({ start: served.start, data: body.subarray(start, end), total: served.total });
    at = end + 2;
  }
}

/**
 * Each requested range cut out of the parts that cover it. Ranges past the end of the object
 * (known from any part's total) come back short or empty, as single range reads do. A part that
 * is no requested range, or a range no part covers, is an IntegrityError.
 */
export function matchParts(parts: readonly ServedPart[], ranges: readonly RequestedRange[], where: Where): Uint8Array[] {
  const total = parts.find((p) => p.total !== undefined)?.total;
  const clippedEnd = (r: RequestedRange) => (total === undefined ? r.offset + r.length : Math.min(r.offset + r.length, total));
  const starts = new Set(ranges.map((r) => r.offset));
  const ends = new Set(ranges.map(clippedEnd));
  for (const p of parts) {
    // A merged part still starts where one requested range starts and ends where one ends.
    if (!starts.has(p.start) || !ends.has(p.start + p.data.length)) {
      throw new IntegrityError(
        `server sent bytes ${p.start}-${p.start + p.data.length - 1}, which is no range asked for`,
        where,
      );
    }
  }
  return ranges.map((r) => {
    const end = clippedEnd(r);
    if (end <= r.offset) return new Uint8Array(0);
    const part = parts.find((p) => p.start <= r.offset && p.start + p.data.length >= end);
    if (!part) {
      throw new IntegrityError(`range ${r.offset}-${r.offset + r.length - 1} is missing from the multi-range answer`, where);
    }
    return part.data.subarray(r.offset - part.start, end - part.start);
  });
}

/**
 * Spans in groups for multi-range requests: at most `perRequest` spans and about `maxHeader`
 * characters of Range header each (servers refuse headers past a few KiB: nginx 8 KiB by default).
 */
export function groupForMultiRange<T extends RequestedRange>(spans: readonly T[], perRequest: number, maxHeader: number): T[][] {
  const groups: T[][] = [];
  let group: T[] = [];
  let headerLength = 0;
  for (const span of spans) {
    const length = String(span.offset).length + String(span.offset + span.length).length + 2;
    if (group.length > 0 && (group.length >= perRequest || headerLength + length > maxHeader)) {
      groups.push(group);
      group = [];
      headerLength = 0;
    }
    group.push(span);
    headerLength += length;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}
