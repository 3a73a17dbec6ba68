/**
 * Errors → Reductionist's JSON error body `{"error": {"message", "caused_by"?}}` and its status
 * mapping (reductionist-rs `error.rs`):
 * - 400: invalid request, decompression failure, missing object or bucket (S3 NoSuchKey/NoSuchBucket,
 *   HTTP 404), other upstream 4xx, memory request larger than the whole budget;
 * - 401: upstream authentication failure (S3 InvalidAccessKeyId/SignatureDoesNotMatch/AccessDenied,
 *   HTTP 401);
 * - 404: unknown operation, HTTP upstream 403 (Reductionist hides bucket contents this way);
 * - 500: upstream unreachable or failing, anything unexpected.
 * Ours on top: 403 for an upstream host not on the allow-list, 405/413/503/504 where HTTP has a word.
 */
import { ActivestoreError, CodecError, RequestError, StoreError } from "../errors.js";

export interface ErrorBody {
  error: { message: string; caused_by?: string[] };
}

/** An upstream object that does not exist; Reductionist answers 400 with the store's code. */
export class UpstreamMissingError extends RequestError {
  constructor(kind: "s3" | "http", url: string) {
    super(
      kind === "s3" ? "error retrieving object from S3 storage" : "error retrieving object from HTTP storage",
      400,
      [kind === "s3" ? `NoSuchKey: the object ${url} does not exist` : `HTTP 404: ${url} does not exist`],
    );
  }
}

function causes(error: unknown): string[] {
  const out: string[] = [];
  let current = error instanceof Error ? error.cause : undefined;
  for (let i = 0; current !== undefined && i < 8; i++) {
    const text = current instanceof Error ? current.message : String(current);
    if (out[out.length - 1] !== text) out.push(text);
    current = current instanceof Error ? current.cause : undefined;
  }
  return out;
}

function s3Code(error: StoreError): string | undefined {
  let c: unknown = error.cause;
  for (let i = 0; c && i < 4; i++) {
    const name = (c as { Code?: string; name?: string }).Code ?? (c as { name?: string }).name;
    if (name && name !== "Error") return name;
    c = (c as { cause?: unknown }).cause;
  }
  return undefined;
}

export function errorResponse(error: unknown, interfaceType?: string): { status: number; body: ErrorBody } {
  const body = (message: string, caused: string[]): ErrorBody => ({
    error: caused.length > 0 ? { message, caused_by: caused } : { message },
  });
  if (error instanceof RequestError) return { status: error.status, body: body(error.message, error.causedBy) };
  if (error instanceof CodecError) return { status: 400, body: body("failed to decompress data", [error.message]) };
  if (error instanceof StoreError) {
    const s3 = interfaceType === "s3";
    const message = s3 ? "error retrieving object from S3 storage" : "HTTP request error";
    const code = s3 ? s3Code(error) : undefined;
    const detail = [code ? `${code}: ${error.message}` : error.message, ...causes(error)];
    const status = error.status;
    if (status === undefined || status >= 500) return { status: 500, body: body(message, detail) };
    if (status === 401 || (s3 && status === 403)) return { status: 401, body: body(message, detail) };
    if (status === 403) return { status: 404, body: body("error receiving object metadata from storage", detail) };
    return { status: 400, body: body(message, detail) };
  }
  if (error instanceof ActivestoreError) return { status: 400, body: body(error.message, causes(error)) };
  const message = error instanceof Error ? error.message : String(error);
  return { status: 500, body: body("internal server error", [message]) };
}
