/**
 * How HTTP-speaking backends (HTTP, S3, GCS) turn a status or a transport failure into a
 * `StoreError` whose `retryable` flag the retry policy can trust. Shared so every adapter draws the
 * line between "try again" and "give up" in the same place.
 */
import { IntegrityError, StoreError, type StoreErrorDetails } from "../errors.js";

type Where = Pick<StoreErrorDetails, "store" | "key" | "operation">;

/** 5xx, 429 (and 408 Request Timeout) are transient; every other 4xx will fail the same way again. */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

/** Words a user can act on for the statuses people actually meet. */
function describeStatus(status: number, operation: string): string {
  switch (status) {
    case 400:
      return "bad request";
    case 401:
      return "authentication required or rejected; check the credentials";
    case 403:
      return "access denied; check the credentials and the object's permissions";
    case 405:
      return operation === "set" || operation === "delete"
        ? "store is read-only (the server does not accept this method)"
        : "method not allowed by the server";
    case 408:
      return "server timed out waiting for the request";
    case 412:
      return "precondition failed";
    case 416:
      return "range not satisfiable";
    case 429:
      return "too many requests (rate limited)";
    case 503:
      return "service unavailable (slow down)";
    default:
      if (status >= 300 && status < 400) return "redirect not followed; use the final URL as the store's base";
      return status >= 500 ? "server error" : "request refused";
  }
}

/**
 * A StoreError for an unexpected HTTP status. `detail` is the service's own words (an S3 error
 * code, a short body excerpt) when there are any.
 */
export function statusError(status: number, where: Where, detail?: string): StoreError {
  const message = describeStatus(status, where.operation) + (detail ? `: ${detail}` : "");
  return new StoreError(message, { ...where, status, retryable: isRetryableStatus(status) });
}

/** Error codes from Node sockets and undici that mean the connection, not the request, failed. */
const TRANSIENT_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "ENOTCONN",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_REQ_CONTENT_LENGTH_MISMATCH",
]);

/** Codes meaning the body did not match its announced length: bytes were lost, not refused. */
const LENGTH_CODES = new Set(["UND_ERR_RES_CONTENT_LENGTH_MISMATCH", "UND_ERR_RES_EXCEEDED_MAX_SIZE"]);

function codesOf(error: unknown): string[] {
  const codes: string[] = [];
  for (let e = error, depth = 0; e && typeof e === "object" && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") codes.push(code);
    e = (e as { cause?: unknown }).cause;
  }
  return codes;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** True for resets, refused/timed-out connections, "socket hang up" and similar transport failures. */
export function isTransientNetworkError(error: unknown): boolean {
  if (codesOf(error).some((c) => TRANSIENT_CODES.has(c) || LENGTH_CODES.has(c))) return true;
  return /socket hang up|other side closed|premature close|aborted/i.test(messageOf(error));
}

/**
 * Wraps a failure thrown while sending a request or reading its body. StoreErrors pass through;
 * the caller's abort passes through untouched so the retry policy can stop.
 */
export function networkError(error: unknown, where: Where, signal?: AbortSignal): unknown {
  if (error instanceof StoreError) return error;
  if (signal?.aborted) return error;
  const codes = codesOf(error);
  if (codes.some((c) => LENGTH_CODES.has(c))) {
    return new IntegrityError(`body length does not match Content-Length (${messageOf(error)})`, {
      ...where,
      cause: error,
    });
  }
  const transient = isTransientNetworkError(error);
  const code = codes[0] ? `${codes[0]}: ` : "";
  return new StoreError(`${transient ? "connection failed" : "request failed"} (${code}${messageOf(error)})`, {
    ...where,
    retryable: transient,
    cause: error,
  });
}

/** Checks a received body against the announced Content-Length; a mismatch is retryable. */
export function checkLength(data: Uint8Array, contentLength: string | string[] | undefined, where: Where): void {
  const header = Array.isArray(contentLength) ? contentLength[0] : contentLength;
  if (header === undefined) return;
  const expected = Number(header);
  if (!Number.isSafeInteger(expected)) return;
  if (data.length !== expected) {
    const which = data.length < expected ? "short" : "long";
    throw new IntegrityError(`${which} body: got ${data.length} bytes, Content-Length said ${expected}`, where);
  }
}
