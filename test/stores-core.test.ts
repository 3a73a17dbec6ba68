/**
 * ObjectStore's policies — batching, coalescing, compression, retries, create-only — exercised on
 * MemoryStore and LocalStore (the real disk). Where a test must see inside (requests in flight, a
 * failure on the 2nd attempt), the real MemoryBackend is wrapped by a small instrumented Backend.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { afterAll, describe, expect, test } from "vitest";
import { ConflictError, IntegrityError, StoreError } from "../src/errors.js";
import type { Backend, BackendWriteOptions, ByteRange, Retrier, StoredObject } from "../src/stores/backend.js";
import { LocalStore } from "../src/stores/local.js";
import { MemoryBackend, MemoryStore } from "../src/stores/memory.js";
import { ObjectStore } from "../src/stores/object-store.js";
import type { ObjectInfo, Store } from "../src/stores/types.js";

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
async function localStore(options: ConstructorParameters<typeof LocalStore>[1] = {}): Promise<LocalStore> {
  const dir = await mkdtemp(join(tmpdir(), "activestore-core-"));
  dirs.push(dir);
  return new LocalStore(dir, { retry: { baseDelayMs: 5 }, ...options });
}

const bytes = (s: string) => new TextEncoder().encode(s);
const fast = { retry: { baseDelayMs: 5, maxDelayMs: 20 } };

/**
 * MemoryBackend with a hook before each call: delays, failures on chosen attempts, and counters of
 * calls and calls in flight.
 */
class InstrumentedBackend implements Backend {
  readonly inner = new MemoryBackend();
  readonly url = "memory://instrumented";
  readonly defaultConcurrency = 8;
  inFlight = 0;
  peak = 0;
  reads: ByteRange[] = [];
  calls = 0;
  /** Called before each operation; may throw or wait. */
  before: (op: string, key: string, call: number, signal?: AbortSignal) => Promise<void> = async () => undefined;

  private async track<T>(op: string, key: string, signal: AbortSignal | undefined, run: () => Promise<T>): Promise<T> {
    const call = ++this.calls;
    this.inFlight++;
    this.peak = Math.max(this.peak, this.inFlight);
    try {
      await this.before(op, key, call, signal);
      return await run();
    } finally {
      this.inFlight--;
    }
  }
  read(key: string, range: ByteRange | undefined, signal?: AbortSignal): Promise<StoredObject | undefined> {
    if (range) this.reads.push(range);
    return this.track("read", key, signal, () => this.inner.read(key, range));
  }
  write(key: string, data: Uint8Array, options: BackendWriteOptions): Promise<void> {
    return this.track("write", key, options.signal, () => this.inner.write(key, data, options));
  }
  remove(key: string, signal?: AbortSignal): Promise<void> {
    return this.track("remove", key, signal, () => this.inner.remove(key));
  }
  stat(key: string, signal?: AbortSignal): Promise<ObjectInfo | undefined> {
    return this.track("stat", key, signal, () => this.inner.stat(key));
  }
  list(prefix: string, _options: { signal?: AbortSignal; retry: Retrier }): AsyncIterable<ObjectInfo> {
    return this.inner.list(prefix);
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
  });

describe("batches", () => {
  test("getMany yields in completion order, bounded by the concurrency, with progress", async () => {
    const backend = new InstrumentedBackend();
    const store = new ObjectStore(backend, fast);
    for (let i = 0; i < 6; i++) await store.set(`k${i}`, bytes(`v${i}`));
    // Each read waits for its gate; the test opens them in reverse order, one at a time, so the
    // completion order is set by the test rather than by timers.
    const gates = new Map<string, () => void>();
    backend.before = (_op, key) => new Promise<void>((open) => gates.set(key, open));
    const progress: number[] = [];
    const iterator = store
      .getMany(["k0", "k1", "k2", "k3", "k4", "k5"], {
        concurrency: 6,
        onProgress: (p) => progress.push(p.done * 100 + (p.total ?? 0)),
      })
      [Symbol.asyncIterator]();
    const order: string[] = [];
    for (let i = 5; i >= 0; i--) {
      const next = iterator.next();
      while (!gates.has(`k${i}`)) await sleep(1);
      gates.get(`k${i}`)!();
      const { value } = await next;
      order.push(value!.key);
      expect(new TextDecoder().decode(value!.value)).toBe(`v${value!.key.slice(1)}`);
    }
    expect((await iterator.next()).done).toBe(true);
    expect(order).toEqual(["k5", "k4", "k3", "k2", "k1", "k0"]);
    expect(progress).toEqual([106, 206, 306, 406, 506, 606]);

    backend.before = async () => sleep(3);
    backend.peak = 0;
    const keys = Array.from({ length: 40 }, (_, i) => `x${i}`);
    const result = await store.getMany(keys, { concurrency: 3 }).toMap();
    expect(backend.peak).toBe(3);
    expect([...result.values()].every((v) => v === undefined)).toBe(true); // missing, not errors
  });

  test("setMany pulls a streamed source lazily: nothing new starts while the consumer does not pull", async () => {
    const store = new MemoryStore(undefined, fast);
    let produced = 0;
    async function* source() {
      for (let i = 0; i < 100; i++) {
        produced++;
        yield [`s${i}`, new Uint8Array(1000).fill(i)] as const;
      }
    }
    const progress: { done: number; total?: number; bytes: number }[] = [];
    const iterator = store.setMany(source(), { concurrency: 4, onProgress: (p) => progress.push(p) })[Symbol.asyncIterator]();
    await iterator.next();
    await sleep(20);
    // One result consumed: at most the 4 in flight plus the refill are pulled, never the whole source.
    expect(produced).toBeLessThanOrEqual(6);
    let count = 1;
    while (!(await iterator.next()).done) count++;
    expect(count).toBe(100);
    expect(progress.at(-1)).toEqual({ done: 100, total: undefined, bytes: 100_000 });
    expect(await store.get("s42")).toEqual(new Uint8Array(1000).fill(42));
  });

  test("aborting a batch stops it: the abort reason is thrown and no new work starts", async () => {
    const backend = new InstrumentedBackend();
    const store = new ObjectStore(backend, fast);
    backend.before = (_op, _key, _call, signal) => sleep(10, signal);
    const controller = new AbortController();
    const seen: string[] = [];
    const keys = Array.from({ length: 200 }, (_, i) => `a${i}`);
    const run = (async () => {
      for await (const { key } of store.getMany(keys, { concurrency: 4, signal: controller.signal })) {
        seen.push(key);
        if (seen.length === 5) controller.abort(new Error("user stopped"));
      }
    })();
    await expect(run).rejects.toThrow("user stopped");
    const callsAtAbort = backend.calls;
    await sleep(50);
    expect(backend.calls).toBe(callsAtAbort);
    expect(backend.calls).toBeLessThan(20);
    expect(backend.inFlight).toBe(0);
  });

  test("the first failure cancels the rest of the batch and is thrown; deleteMany and setMany work on disk", async () => {
    const backend = new InstrumentedBackend();
    const store = new ObjectStore(backend, fast);
    backend.before = async (_op, key, _call, signal) => {
      if (key === "bad") throw new StoreError("refused", { store: backend.url, key, operation: "get", status: 403 });
      await sleep(5, signal);
    };
    const keys = ["a", "b", "bad", ...Array.from({ length: 100 }, (_, i) => `z${i}`)];
    await expect(store.getMany(keys, { concurrency: 2 }).toMap()).rejects.toThrow(/refused/);
    expect(backend.calls).toBeLessThan(10);

    const disk = await localStore();
    await disk.setMany(Array.from({ length: 20 }, (_, i) => [`d/${i}`, bytes(String(i))] as const)).toMap();
    const deleted = await disk.deleteMany(Array.from({ length: 20 }, (_, i) => `d/${i}`)).toMap();
    expect(deleted.size).toBe(20);
    for await (const _ of disk.list("d/")) throw new Error("left over after deleteMany");
  });
});

describe("getRanges coalescing", () => {
  test.each([
    ["memory", async () => new ObjectStore(new InstrumentedBackend(), fast)],
    ["local", () => localStore()],
  ] as [string, () => Promise<Store & { stats: { requests: number } }>][])(
    "%s: nearby ranges share a request; results follow the caller's order; missing → undefined",
    async (_name, make) => {
      const store = await make();
      const data = new Uint8Array(10_000).map((_, i) => (i * 7) & 0xff);
      await store.set("blob", data);
      const ranges = [
        { offset: 9000, length: 100 },
        { offset: 0, length: 10 },
        { offset: 5, length: 20 }, // overlaps the previous one
        { offset: 100, length: 50 },
        { offset: 9990, length: 100 }, // runs past EOF: only what exists
      ];
      const before = store.stats.requests;
      const parts = await store.getRanges("blob", ranges, { coalesceGap: 1000 });
      expect(store.stats.requests - before).toBe(2);
      ranges.forEach((r, i) => expect(parts![i]).toEqual(data.slice(r.offset, r.offset + r.length)));

      const apart = await store.getRanges("blob", ranges, { coalesceGap: 0 });
      ranges.forEach((r, i) => expect(apart![i]).toEqual(data.slice(r.offset, r.offset + r.length)));
      // Capped request size splits a merge that would grow too large.
      const before2 = store.stats.requests;
      await store.getRanges("blob", [{ offset: 0, length: 10 }, { offset: 5000, length: 10 }], {
        coalesceGap: 10_000,
        maxRequestSize: 1000,
      });
      expect(store.stats.requests - before2).toBe(2);
      expect(await store.getRanges("missing", ranges)).toBeUndefined();
    },
  );
});

describe("transparent compression", () => {
  const data = bytes("a fairly compressible payload; ".repeat(500));
  test.each(["gzip", "br", "zstd"] as const)("%s round-trips on memory and disk; raw gives the stored bytes", async (method) => {
    for (const store of [new MemoryStore(undefined, fast), await localStore()]) {
      await store.set("c", data, { compress: method, level: method === "zstd" ? 19 : 9 });
      expect(await store.get("c")).toEqual(data);
      const raw = (await store.get("c", { raw: true }))!;
      expect(raw.length).toBeLessThan(data.length / 10);
      const undone =
        method === "gzip" ? gunzipSync(raw) : method === "br" ? brotliDecompressSync(raw) : undefined;
      if (undone) expect(new Uint8Array(undone)).toEqual(data);
      expect(await store.head("c")).toMatchObject({ contentEncoding: method, size: raw.length });
      await expect(store.getRange("c", { offset: 0, length: 10 })).rejects.toThrow(StoreError);
      await expect(store.getRange("c", { offset: 0, length: 10 })).rejects.toThrow(/raw: true/);
      expect(await store.getRange("c", { offset: 0, length: 10 }, { raw: true })).toEqual(raw.slice(0, 10));
      // compress: null overrides a store default for one call.
      await store.set("plain", data, { compress: null });
      expect((await store.head("plain"))?.contentEncoding).toBeUndefined();
    }
  });

  test("a store-wide default applies; corrupt compressed bytes are an IntegrityError after retries", async () => {
    const disk = await localStore({ compress: "gzip", retry: { baseDelayMs: 1, attempts: 2 } });
    await disk.set("k", data);
    const file = join((disk.backend as unknown as { root: string }).root, "k.gz");
    expect(new Uint8Array(gunzipSync(await readFile(file)))).toEqual(data);

    const backend = new MemoryBackend();
    await backend.write("broken", bytes("not gzip at all"), { contentEncoding: "gzip" });
    const store = new ObjectStore(backend, { retry: { baseDelayMs: 1, attempts: 2 } });
    const error = (await store.get("broken").catch((e: unknown) => e)) as StoreError;
    expect(error).toBeInstanceOf(IntegrityError);
    expect(error.attempts).toBe(2);
    await backend.write("odd", bytes("x"), { contentEncoding: "compress" });
    await expect(store.get("odd")).rejects.toThrow(/unsupported Content-Encoding "compress"/);
    expect(await store.get("odd", { raw: true })).toEqual(bytes("x"));
  });
});

describe("retry classification", () => {
  function failing(kind: "retryable" | "fatal" | "integrity" | "plain", failures: number) {
    const backend = new InstrumentedBackend();
    backend.before = async (op, key, call) => {
      if (op !== "read" || call > failures) return;
      const where = { store: backend.url, key, operation: "get" };
      if (kind === "retryable") throw new StoreError("busy", { ...where, status: 503, retryable: true });
      if (kind === "fatal") throw new StoreError("denied", { ...where, status: 403, retryable: false });
      if (kind === "integrity") throw new IntegrityError("short body", where);
      throw new TypeError("a bug, not a transient failure");
    };
    return backend;
  }

  test("retryable failures (5xx-like, integrity) are retried until success", async () => {
    for (const kind of ["retryable", "integrity"] as const) {
      const backend = failing(kind, 3);
      await backend.inner.write("k", bytes("v"), {});
      const store = new ObjectStore(backend, fast);
      expect(await store.get("k")).toEqual(bytes("v"));
      expect(store.stats.retries).toBe(3);
      expect(store.stats.requests).toBe(4);
    }
  });

  test("non-retryable failures and programming errors fail on the first attempt", async () => {
    for (const kind of ["fatal", "plain"] as const) {
      const backend = failing(kind, 10);
      const store = new ObjectStore(backend, fast);
      await expect(store.get("k")).rejects.toThrow(kind === "fatal" ? StoreError : TypeError);
      expect(store.stats.requests).toBe(1);
    }
  });

  test("persistent retryable failures give up after the configured attempts, saying how many", async () => {
    const backend = failing("retryable", 100);
    const store = new ObjectStore(backend, { retry: { attempts: 4, baseDelayMs: 1 } });
    const error = (await store.get("k").catch((e: unknown) => e)) as StoreError;
    expect(error.attempts).toBe(4);
    expect(error.message).toMatch(/after 4 attempts/);
    expect(backend.calls).toBe(4);
  });

  test("an attempt that hangs is timed out and retried; the caller's abort is not retried", async () => {
    const backend = new InstrumentedBackend();
    await backend.inner.write("k", bytes("v"), {});
    backend.before = async (_op, _key, call, signal) => {
      if (call === 1) await sleep(60_000, signal); // hangs until the per-attempt timeout
    };
    const store = new ObjectStore(backend, { ...fast, timeoutMs: 50 });
    expect(await store.get("k")).toEqual(bytes("v"));
    expect(store.stats.retries).toBe(1);

    backend.before = (_op, _key, _call, signal) => sleep(60_000, signal);
    const controller = new AbortController();
    const pending = store.get("k", { signal: controller.signal });
    setTimeout(() => controller.abort(new Error("caller gave up")), 20);
    await expect(pending).rejects.toThrow("caller gave up");
  });
});

describe("create-only writes", () => {
  test.each([
    ["memory", async () => new MemoryStore(undefined, fast)],
    ["local", () => localStore()],
  ] as [string, () => Promise<Store & { stats: { requests: number } }>][])(
    "%s: ifNoneMatch '*' raises ConflictError (412, not retried) and keeps the first value",
    async (_name, make) => {
      const store = await make();
      await store.set("once", bytes("first"), { ifNoneMatch: "*" });
      const requests = store.stats.requests;
      const error = (await store.set("once", bytes("second"), { ifNoneMatch: "*" }).catch((e: unknown) => e)) as ConflictError;
      expect(error).toBeInstanceOf(ConflictError);
      expect([error.status, error.retryable, error.key]).toEqual([412, false, "once"]);
      expect(store.stats.requests - requests).toBe(1);
      expect(await store.get("once")).toEqual(bytes("first"));
      await store.set("once", bytes("overwrite")); // an unconditional write still replaces
      expect(await store.get("once")).toEqual(bytes("overwrite"));
    },
  );
});
