/**
 * Making sense of the answer to a ranged GetObject. Servers do not always send what was asked:
 * s3rver serves `bytes=-N` as `bytes=0-N` and `bytes=0-0` as the whole object, some servers ignore
 * Range and answer 200. The Content-Range header says what arrived, so the store can cut out the
 * wanted bytes or ask again with an explicit range instead of returning the wrong ones.
 */
import type { GetObjectCommandOutput } from "@aws-sdk/client-s3";
import { StoreError, type StoreErrorDetails } from "../errors.js";
import type { ByteRange } from "./backend.js";
import { parseContentRange } from "./range.js";
import { md5FromEtag } from "./s3-body.js";

type Where = Pick<StoreErrorDetails, "store" | "key" | "operation">;

/** Absolute bytes wanted (`end` inclusive; `end < start` for none) and whether the response holds them. */
export interface ResolvedRange {
  start: number;
  end: number;
  covered: boolean;
  /** Offset in the object of the response's first byte. */
  responseStart: number;
}

/**
 * Which bytes of the object the caller wants, in absolute offsets, and whether the response
 * holds them. A 200 to a ranged request is the whole object.
 */
export function resolveRange(
  range: ByteRange,
  response: GetObjectCommandOutput,
  where: Where,
): ResolvedRange {
  const cr = parseContentRange(response.ContentRange);
  let total: number | undefined;
  let got: { start: number; end: number };
  if (cr) {
    total = cr.total;
    got = cr;
    const announced = response.ContentLength;
    if (announced !== undefined && announced !== cr.end - cr.start + 1) {
      throw new StoreError(
        `Content-Length ${announced} disagrees with Content-Range ${response.ContentRange}`,
        { ...where, retryable: true },
      );
    }
  } else {
    total = response.ContentLength;
    if (total === undefined) throw new StoreError("response to a range request has no length", where);
    got = { start: 0, end: total - 1 };
  }
  if (total === undefined) {
    throw new StoreError(`Content-Range ${response.ContentRange} gives no object size`, where);
  }
  const start = "suffixLength" in range ? Math.max(0, total - range.suffixLength) : Math.min(range.offset, total);
  const end =
    "suffixLength" in range || range.length === undefined
      ? total - 1
      : Math.min(range.offset + range.length, total) - 1;
  const covered = end < start || (got.start <= start && got.end >= end);
  return { start, end, covered, responseStart: got.start };
}

/**
 * The MD5 (hex) of the object's bytes when its ETag is one: a plain 32-hex ETag on an object that
 * is not SSE-KMS or SSE-C encrypted (those ETags are not digests of the data). Multipart ETags
 * ("<hex>-<parts>") never qualify.
 */
export function md5OfObject(response: GetObjectCommandOutput): string | undefined {
  const sse = response.ServerSideEncryption;
  if (sse && sse !== "AES256") return undefined;
  if (response.SSECustomerAlgorithm) return undefined;
  return md5FromEtag(response.ETag);
}
