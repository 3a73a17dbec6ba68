/**
 * Heavy dependencies loaded on first use rather than at import. undici costs ~20 MiB and the AWS
 * SDK ~22 MiB of RSS, plus a tenth of a second of CPU each, which a process that only reads local
 * files never needs; so the HTTP, GCS and S3 stores and the active-storage client import them on
 * their first request. Stores are still constructed synchronously: only requests wait.
 *
 * Each module is loaded once per process (a module-level promise). A failed load is not cached,
 * so a later request tries again, and it surfaces as an error naming the package, never as a hang.
 */
import { StoreError, type StoreErrorDetails } from "../errors.js";

/**
 * Something created on first use and kept: a module, a connection pool. A creation that fails is
 * forgotten, so the next call tries again; callers waiting on it all see the failure.
 */
export class OnFirstUse<T> {
  private pending?: Promise<T>;

  constructor(private readonly create: () => Promise<T>) {}

  get(): Promise<T> {
    if (!this.pending) {
      const pending = this.create();
      this.pending = pending;
      // Only this attempt is forgotten, not one started after a `take`.
      pending.catch(() => {
        if (this.pending === pending) this.pending = undefined;
      });
    }
    return this.pending;
  }

  /** Forgets the value (the next `get` creates a new one) and returns it, if it was created. */
  async take(): Promise<T | undefined> {
    const pending = this.pending;
    this.pending = undefined;
    return pending?.catch(() => undefined);
  }
}

/** A function returning the module, loading it on its first call. */
export type Loader<T> = () => Promise<T>;

/** `load` runs until it succeeds once; `name` is the package a user would reinstall when it fails. */
export function lazyModule<T>(name: string, load: () => Promise<T>): Loader<T> {
  const module = new OnFirstUse(() =>
    load().catch((cause: unknown) => {
      const reason = cause instanceof Error ? cause.message : String(cause);
      throw new Error(`could not load ${name} (is it installed? try \`npm install\`): ${reason}`, { cause });
    }),
  );
  return () => module.get();
}

/** undici: the HTTP client of the HTTP and GCS stores and of the active-storage client. */
export const loadUndici: Loader<typeof import("undici")> = lazyModule("undici", () => import("undici"));

/** hyparquet and its writer: parquet reference sets only (JSON references never load them). */
export const loadHyparquet: Loader<typeof import("hyparquet")> = lazyModule("hyparquet", () => import("hyparquet"));
export const loadHyparquetWriter: Loader<typeof import("hyparquet-writer")> = lazyModule("hyparquet-writer", () => import("hyparquet-writer"));

/**
 * The S3 SDK with our client factory and multipart upload around it (s3-client.ts is the only
 * module that imports `@aws-sdk/client-s3` at run time).
 */
export const loadS3Sdk: Loader<typeof import("./s3-client.js")> = lazyModule("@aws-sdk/client-s3", async () => {
  // The SDK first, on its own: Node remembers a module whose dependency failed to load and would
  // fail s3-client.js forever, while a package that failed to resolve is looked up afresh.
  await import("@aws-sdk/client-s3");
  return import("./s3-client.js");
});

/**
 * A store operation that could not start because its client library did not load: not retryable,
 * since the next attempt in the same breath would fail the same way.
 */
export function loadFailure(cause: unknown, where: Pick<StoreErrorDetails, "store" | "key" | "operation">): StoreError {
  const message = cause instanceof Error ? cause.message : String(cause);
  return new StoreError(message, { ...where, retryable: false, cause });
}
