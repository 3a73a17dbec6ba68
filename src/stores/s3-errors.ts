/**
 * Turns what `@aws-sdk/client-s3` throws into StoreErrors the retry policy can trust. Statuses and
 * transport failures follow the shared table in http-errors.ts; this module only adds what S3 says
 * in its error codes (the SDK's `name`), which sometimes disagrees with the status: S3 answers a
 * slow upload with `400 RequestTimeout` and a body that did not match its Content-MD5 with
 * `400 BadDigest`, both worth another attempt.
 */
import { ConflictError, IntegrityError, StoreError, type StoreErrorDetails } from "../errors.js";
import { isRetryableStatus, networkError, statusError } from "./http-errors.js";

type Where = Pick<StoreErrorDetails, "store" | "key" | "operation">;

/** What the SDK attaches to service errors. */
interface SdkErrorShape {
  name?: string;
  message?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

/** S3 codes that are transient whatever status carries them. */
const TRANSIENT_CODES = new Set([
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "RequestThrottled",
  "RequestThrottledException",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "BandwidthLimitExceeded",
  "RequestTimeout",
  "RequestTimeoutException",
  "InternalError",
  "ServiceUnavailable",
  "ConditionalRequestConflict",
  "OperationAborted",
]);

/** The bytes the server received were not the bytes we sent. */
const INTEGRITY_CODES = new Set(["BadDigest", "IncompleteBody", "XAmzContentSHA256Mismatch", "InvalidDigest"]);

/** The HTTP status of an SDK service error, when a response was received at all. */
export function statusOf(error: unknown): number | undefined {
  const status = (error as SdkErrorShape | null)?.$metadata?.httpStatusCode;
  return typeof status === "number" ? status : undefined;
}

/** S3's error code (`NoSuchKey`, `SlowDown`, ...); the SDK puts it in `name`. */
export function codeOf(error: unknown): string | undefined {
  const e = error as SdkErrorShape | null;
  return e?.Code ?? e?.name;
}

/**
 * The StoreError for a failed S3 call. The caller's own abort passes through untouched (the
 * ObjectStore decides whether it was a timeout).
 */
export function s3Error(error: unknown, where: Where, signal?: AbortSignal): unknown {
  if (error instanceof StoreError) return error;
  if (signal?.aborted) return error;
  const status = statusOf(error);
  const code = codeOf(error);
  if (status === undefined) {
    if (code === "TimeoutError" || code === "RequestTimeout") {
      return new StoreError(`request timed out (${messageOf(error)})`, { ...where, retryable: true, cause: error });
    }
    return networkError(error, where, signal);
  }
  const detail = `${code ?? "error"}: ${messageOf(error)}`;
  if (status === 412 && (where.operation === "set" || code === "PreconditionFailed")) {
    return new ConflictError("object already exists (create-only write refused)", {
      ...where,
      status,
      cause: error,
    });
  }
  if (code && INTEGRITY_CODES.has(code)) {
    return new IntegrityError(`server received corrupted bytes (${detail})`, { ...where, status, cause: error });
  }
  if (status >= 200 && status < 300) {
    // A success status whose body the SDK could not parse: cut short on the wire, most likely.
    return new IntegrityError(`unreadable response body (${messageOf(error)})`, { ...where, status, cause: error });
  }
  if (code && TRANSIENT_CODES.has(code) && !isRetryableStatus(status)) {
    return new StoreError(`transient S3 error (${detail})`, { ...where, status, retryable: true, cause: error });
  }
  return statusError(status, where, detail);
}

function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
