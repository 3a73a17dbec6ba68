/**
 * Named error classes shared by every layer. Each carries a `tag` so callers can switch on it
 * without `instanceof` across module copies, and a message that says what, where and what to do.
 *
 * A missing object is *not* an error for stores: it is `undefined`. Everything below is a failure.
 */

export type ErrorTag =
  | "StoreError"
  | "IntegrityError"
  | "ConflictError"
  | "InvalidKeyError"
  | "Hdf5FormatError"
  | "UnsupportedFeatureError"
  | "CodecError"
  | "ReferenceSetError"
  | "RequestError";

export abstract class ActivestoreError extends Error {
  abstract readonly tag: ErrorTag;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export interface StoreErrorDetails {
  /** The store, as a URL-ish name: `s3://bucket/prefix`, `file:///data`, `https://host/path`. */
  store: string;
  key: string;
  /** What was being done: `get`, `getRange`, `set`, `delete`, `head`, `list`. */
  operation: string;
  /** HTTP status when one was received. */
  status?: number;
  /** How many attempts were made before giving up (1 = no retries). */
  attempts?: number;
  /** Whether the retry policy considers this failure transient. */
  retryable?: boolean;
  cause?: unknown;
}

/** Any failure talking to a store that is not "the object does not exist". */
export class StoreError extends ActivestoreError {
  readonly tag: "StoreError" | "IntegrityError" | "ConflictError" = "StoreError";
  readonly store: string;
  readonly key: string;
  readonly operation: string;
  readonly status?: number;
  attempts: number;
  readonly retryable: boolean;

  constructor(message: string, details: StoreErrorDetails) {
    super(
      `${details.operation} ${details.store} key "${details.key}": ${message}` +
        (details.status !== undefined ? ` (HTTP ${details.status})` : ""),
      { cause: details.cause },
    );
    this.store = details.store;
    this.key = details.key;
    this.operation = details.operation;
    this.status = details.status;
    this.attempts = details.attempts ?? 1;
    this.retryable = details.retryable ?? false;
  }
}

/**
 * Bytes arrived but are not the bytes that were stored: short body, wrong Content-Length,
 * MD5/ETag mismatch, checksum failure. Transient on the wire, so the retry policy retries it.
 */
export class IntegrityError extends StoreError {
  override readonly tag = "IntegrityError" as const;
  constructor(message: string, details: Omit<StoreErrorDetails, "retryable">) {
    super(message, { ...details, retryable: true });
  }
}

/** A conditional write (create-only, `If-None-Match: *`, or an ETag match) lost to another writer. */
export class ConflictError extends StoreError {
  override readonly tag = "ConflictError" as const;
  constructor(message: string, details: Omit<StoreErrorDetails, "retryable">) {
    super(message, { ...details, retryable: false });
  }
}

/** A key that could escape the store root or is otherwise not representable. */
export class InvalidKeyError extends ActivestoreError {
  readonly tag = "InvalidKeyError" as const;
  constructor(
    readonly store: string,
    readonly key: string,
    reason: string,
  ) {
    super(`${store}: invalid key "${key.replace(/\0/g, "\\0")}": ${reason}`);
  }
}

/** The bytes are not a valid HDF5 file, or a structure inside it is corrupt or truncated. */
export class Hdf5FormatError extends ActivestoreError {
  readonly tag = "Hdf5FormatError" as const;
  constructor(
    message: string,
    /** File address (relative to the start of the object) of the structure being read. */
    readonly offset: number,
    /** Which structure: `superblock`, `object header`, `v1 B-tree node`, ... */
    readonly structure: string,
    options?: { cause?: unknown; source?: string },
  ) {
    super(
      `${options?.source ? options.source + ": " : ""}${structure} at offset ${offset}: ${message}`,
      options,
    );
  }
}

/** Valid input that uses a feature we do not implement; says what, where and what to do. */
export class UnsupportedFeatureError extends ActivestoreError {
  readonly tag = "UnsupportedFeatureError" as const;
  constructor(
    readonly feature: string,
    readonly where: string,
    readonly advice?: string,
  ) {
    super(`unsupported ${feature} in ${where}${advice ? `: ${advice}` : ""}`);
  }
}

/** A codec failed to encode/decode a chunk, or is unknown. */
export class CodecError extends ActivestoreError {
  readonly tag = "CodecError" as const;
  constructor(
    message: string,
    readonly codec: string,
    readonly chunkKey?: string,
    options?: { cause?: unknown },
  ) {
    super(`codec ${codec}${chunkKey ? ` (chunk ${chunkKey})` : ""}: ${message}`, options);
  }
}

/** Malformed kerchunk references, or a reference whose target cannot be reached. */
export class ReferenceSetError extends ActivestoreError {
  readonly tag = "ReferenceSetError" as const;
  constructor(
    message: string,
    readonly key?: string,
    readonly url?: string,
    options?: { cause?: unknown },
  ) {
    super(
      `${key !== undefined ? `reference "${key}"` : "references"}${url ? ` (${url})` : ""}: ${message}`,
      options,
    );
  }
}

/** A request to the active-storage server that is invalid (Reductionist-shaped, HTTP 400). */
export class RequestError extends ActivestoreError {
  readonly tag = "RequestError" as const;
  constructor(
    message: string,
    readonly status = 400,
    readonly causedBy: string[] = [],
  ) {
    super(message);
  }
}

export function isStoreError(e: unknown): e is StoreError {
  return e instanceof StoreError;
}
