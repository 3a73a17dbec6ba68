/**
 * Guarding read-modify-write of a chunk against other writers.
 *
 * A chunk written whole is one atomic object write (LocalStore: temp file + rename; S3/GCS: one
 * PUT), so whole-chunk writes need no guard and re-running them is idempotent. A write that covers
 * part of a chunk must read the chunk, merge and write it back; two writers doing that at once lose
 * one update. We serialise them with a lock object per chunk, `<chunk key>.lock`, taken with a
 * create-only write:
 *  - LocalStore: create-only is link() of a temp file, which fails with EEXIST (atomic on POSIX).
 *  - S3: `If-None-Match: *`, honoured by AWS S3 since 2024 and by most modern servers.
 *  - GCS: `ifGenerationMatch=0`.
 *  - s3rver and other servers that ignore the condition silently overwrite: no guarantee. We find
 *    out by probing (write a key twice create-only; the second must fail) and refuse partial writes
 *    there unless the caller opts into unsafe mode.
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { ConflictError, UnsupportedFeatureError } from "../errors.js";
import { LocalBackend } from "../stores/local.js";
import { MemoryBackend } from "../stores/memory.js";
import type { Store } from "../stores/types.js";

export type WriteGuarantee = "create-only" | "none";

const probed = new WeakMap<Store, Promise<WriteGuarantee>>();

function backendOf(store: Store): unknown {
  return (store as { backend?: unknown }).backend;
}

/**
 * Whether create-only writes really fail when the key exists. Local and in-memory stores are known;
 * anything else is probed once (two create-only writes of a scratch key under `prefix`).
 */
export function createOnlyGuarantee(store: Store, prefix: string): Promise<WriteGuarantee> {
  const backend = backendOf(store);
  if (backend instanceof LocalBackend || backend instanceof MemoryBackend) return Promise.resolve("create-only");
  let result = probed.get(store);
  if (!result) {
    result = probe(store, prefix);
    probed.set(store, result);
  }
  return result;
}

async function probe(store: Store, prefix: string): Promise<WriteGuarantee> {
  const key = `${prefix ? prefix + "/" : ""}.activestore-probe-${randomBytes(6).toString("hex")}`;
  const bytes = new TextEncoder().encode("probe");
  await store.set(key, bytes, { ifNoneMatch: "*" });
  try {
    await store.set(key, bytes, { ifNoneMatch: "*" });
    return "none";
  } catch (error) {
    if (error instanceof ConflictError) return "create-only";
    throw error;
  } finally {
    await store.delete(key);
  }
}

export interface LockOptions {
  /** Give up after this long waiting for another writer's lock. Default 60 s. */
  timeoutMs?: number;
  /** First wait between attempts; doubles up to 1 s. Default 20 ms. */
  pollMs?: number;
  signal?: AbortSignal;
}

interface LockRecord {
  host: string;
  pid: number;
  time: string;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((done, fail) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        fail(signal.reason);
      },
      { once: true },
    );
  });

/**
 * Runs `fn` holding the lock object `<key>.lock`. The lock records who holds it, so a lock left by a
 * killed writer can be recognised and removed by hand (the error names it); we do not break locks
 * automatically, because a slow writer and a dead one look the same from outside.
 */
export async function withChunkLock<T>(store: Store, key: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const lockKey = `${key}.lock`;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const record: LockRecord = { host: hostname(), pid: process.pid, time: new Date().toISOString() };
  const bytes = new TextEncoder().encode(JSON.stringify(record));
  const deadline = Date.now() + timeoutMs;
  let wait = options.pollMs ?? 20;
  for (;;) {
    try {
      await store.set(lockKey, bytes, { ifNoneMatch: "*", signal: options.signal });
      break;
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      if (Date.now() >= deadline) {
        const holder = await store.get(lockKey).catch(() => undefined);
        const who = holder ? new TextDecoder().decode(holder) : "unknown holder";
        throw new ConflictError(
          `chunk is locked by another writer (${who}) for more than ${timeoutMs} ms; ` +
            `if that writer died, delete "${lockKey}" and re-run`,
          { store: store.url, key: lockKey, operation: "lock" },
        );
      }
      await sleep(wait * (0.5 + Math.random()), options.signal);
      wait = Math.min(wait * 2, 1000);
    }
  }
  try {
    return await fn();
  } finally {
    await store.delete(lockKey);
  }
}

export function unguardedPartialWrite(store: Store, key: string): UnsupportedFeatureError {
  return new UnsupportedFeatureError(
    "partial-chunk write",
    `${store.url} chunk "${key}"`,
    "this store does not enforce create-only writes (e.g. s3rver), so a concurrent read-modify-write " +
      "could silently lose an update; write whole chunks, or pass { unsafe: true } if you are the only writer",
  );
}
