/**
 * S3Store against a real s3rver (child process, ephemeral port, temp directory): the whole Store
 * contract, compression, MD5 checking, multipart uploads and a zarr array round trip.
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as zarr from "zarrita";
import { IntegrityError, InvalidKeyError } from "../src/errors.js";
import { BufferPool } from "../src/stores/buffer-pool.js";
import { S3Backend, S3Store, type S3Options } from "../src/stores/s3.js";
import type { StoreOptions } from "../src/stores/object-store.js";
import { startFaultProxy } from "./servers/fault-proxy.js";
import { S3RVER_CREDENTIALS, startS3rver, type S3rverHandle } from "./servers/s3rver.js";

let server: S3rverHandle;
const stores: S3Store[] = [];

function open(options: Partial<S3Options & StoreOptions> = {}): S3Store {
  const store = new S3Store({
    bucket: "test",
    endpoint: server.endpoint,
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    retry: { attempts: 4, baseDelayMs: 1, maxDelayMs: 5 },
    ...options,
  });
  stores.push(store);
  return store;
}

/** Deterministic, incompressible-looking bytes (a xorshift stream). */
function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const text = (s: string) => new TextEncoder().encode(s);

/** toEqual walks big arrays element by element (minutes for MiBs); compare as buffers instead. */
function expectSameBytes(actual: Uint8Array | undefined, expected: Uint8Array): void {
  expect(actual).toBeInstanceOf(Uint8Array);
  expect(actual!.length).toBe(expected.length);
  expect(Buffer.compare(actual!, expected)).toBe(0);
}

beforeAll(async () => {
  server = await startS3rver({ buckets: ["test"] });
});

afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await server?.stop();
});

describe("S3Store single calls", () => {
  it("round-trips objects under the prefix and reports heads", async () => {
    const store = open({ prefix: "/single/" });
    expect(store.url).toBe("s3://test/single");
    const data = bytes(1000);
    await store.set("a/b.bin", data);
    expect(await store.get("a/b.bin")).toEqual(data);
    expect(await store.get("/a/b.bin")).toEqual(data); // zarrita's absolute keys
    expect(await store.has("a/b.bin")).toBe(true);
    const info = await store.head("a/b.bin");
    expect(info).toMatchObject({ key: "a/b.bin", size: 1000 });
    expect(info!.etag).toMatch(/^"[0-9a-f]{32}"$/);
    expect(info!.lastModified).toBeInstanceOf(Date);
    // The object really lives at prefix + key.
    const root = open();
    expect(await root.get("single/a/b.bin")).toEqual(data);

    await store.delete("a/b.bin");
    expect(await store.get("a/b.bin")).toBeUndefined();
    expect(await store.has("a/b.bin")).toBe(false);
    expect(await store.head("a/b.bin")).toBeUndefined();
    await store.delete("a/b.bin"); // deleting a missing key is fine
  });

  it("reports a missing bucket as an error, not as missing objects", async () => {
    const store = open({ bucket: "no-such-bucket" });
    await expect(store.get("k")).rejects.toThrow(/NoSuchBucket/);
    await expect(store.set("k", text("x"))).rejects.toThrow(/NoSuchBucket/);
    await expect(collect(store.list())).rejects.toThrow(/NoSuchBucket/);
    expect(store.stats.retries).toBe(0);
  });

  it("range and suffix reads with a buffer pool land in pooled buffers, given back and reused", async () => {
    const store = open({ prefix: "pooled" });
    const data = bytes(200_000, 7);
    await store.set("blob", data);
    const pool = new BufferPool({ minSize: 1024 });
    const part = await store.getRange("blob", { offset: 1000, length: 150_000 }, { buffers: pool });
    expect(pool.holds(part!)).toBe(true);
    expect(Buffer.from(part!).equals(Buffer.from(data.subarray(1000, 151_000)))).toBe(true);
    pool.give(part!);
    // s3rver answers a suffix range with the object's start: the second, explicit request's body is
    // the pooled one, and the first body's buffer is never handed out.
    const tail = await store.getRange("blob", { suffixLength: 150_000 }, { buffers: pool });
    expect(tail!.buffer === part!.buffer).toBe(true); // not toBe: printing 160 KiB buffers takes a minute
    expect(Buffer.from(tail!).equals(Buffer.from(data.subarray(50_000)))).toBe(true);
  });

  it("stores empty objects", async () => {
    const store = open({ prefix: "empty" });
    await store.set("zero", new Uint8Array(0));
    expect(await store.get("zero")).toEqual(new Uint8Array(0));
    expect((await store.head("zero"))!.size).toBe(0);
  });

  it("returns missing for keys that do not exist, without retrying", async () => {
    const store = open({ prefix: "missing" });
    const before = store.stats.requests;
    expect(await store.get("nope")).toBeUndefined();
    expect(await store.getRange("nope", { offset: 0, length: 4 })).toBeUndefined();
    expect(await store.getRange("nope", { suffixLength: 4 })).toBeUndefined();
    expect(store.stats.requests - before).toBe(3);
    expect(store.stats.retries).toBe(0);
  });

  it("reads byte ranges, including the ones s3rver mis-serves", async () => {
    const store = open({ prefix: "ranges" });
    const data = bytes(5000, 7);
    await store.set("r", data);
    expect(await store.getRange("r", { offset: 10, length: 100 })).toEqual(data.subarray(10, 110));
    expect(await store.getRange("r", { offset: 0, length: 1 })).toEqual(data.subarray(0, 1)); // s3rver: whole object
    expect(await store.getRange("r", { offset: 4990, length: 100 })).toEqual(data.subarray(4990));
    expect(await store.getRange("r", { offset: 6000, length: 10 })).toEqual(new Uint8Array(0));
    expect(await store.getRange("r", { offset: 10, length: 0 })).toEqual(new Uint8Array(0));
    // s3rver answers bytes=-N with bytes 0-N; the store notices and asks for the right bytes.
    expect(await store.getRange("r", { suffixLength: 300 })).toEqual(data.subarray(4700));
    expect(await store.getRange("r", { suffixLength: 9000 })).toEqual(data);
    const ranges = await store.getRanges("r", [
      { offset: 0, length: 10 },
      { offset: 100, length: 50 },
      { offset: 4000, length: 1000 },
    ]);
    expect(ranges).toEqual([data.subarray(0, 10), data.subarray(100, 150), data.subarray(4000, 5000)]);
    expect(await store.getRanges("nope", [{ offset: 0, length: 1 }])).toBeUndefined();
  });

  it("refuses keys S3 cannot hold safely", async () => {
    const store = open({ prefix: "keys" });
    await expect(store.get("a/../../escape")).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(store.set("./x", text("x"))).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(store.get("")).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(store.has("k".repeat(1100))).rejects.toBeInstanceOf(InvalidKeyError);
    // Unusual but legal characters round-trip.
    const key = "dir with space/ünïcødé+%20?#&=.bin";
    await store.set(key, text("odd"));
    expect(await store.get(key)).toEqual(text("odd"));
    expect((await collect(store.list(""))).map((o) => o.key)).toEqual([key]);
  });

  it("documents that s3rver ignores If-None-Match: create-only is not enforced there", async () => {
    const store = open({ prefix: "create-only" });
    await store.set("k", text("first"), { ifNoneMatch: "*" });
    // Real S3 answers 412 (ConflictError, see stores-faults-s3.test.ts); s3rver overwrites.
    await store.set("k", text("second"), { ifNoneMatch: "*" });
    expect(await store.get("k")).toEqual(text("second"));
  });
});

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

describe("S3Store listing and batches", () => {
  it("lists across pages with keys relative to the prefix", async () => {
    const store = open({ prefix: "list", listPageSize: 7 });
    const keys = Array.from({ length: 30 }, (_, i) => `p/${String(i).padStart(3, "0")}`);
    await store.setMany(keys.map((k, i) => [k, bytes(i + 1, i + 1)] as const)).toMap();
    await store.set("other", text("x"));
    const before = store.stats.requests;
    const listed = await collect(store.list("p/"));
    expect(store.stats.requests - before).toBe(5); // ceil(30 / 7) pages
    expect(listed.map((o) => o.key)).toEqual(keys);
    expect(listed.map((o) => o.size)).toEqual(keys.map((_, i) => i + 1));
    expect((await collect(store.list())).length).toBe(31);
    expect(await collect(store.list("nothing-here/"))).toEqual([]);
    // A console-made "folder" object at the prefix itself is not a key under it.
    await open().set("list/", new Uint8Array(0));
    expect((await collect(store.list())).length).toBe(31);
  });

  it("writes, reads and bulk-deletes more than 1000 keys (DeleteObjects in groups of 1000)", async () => {
    const store = open({ prefix: "bulk", listPageSize: 500 });
    const n = 1100;
    const entries = Array.from({ length: n }, (_, i) => [`k${i}`, bytes(16 + (i % 50), i + 1)] as const);
    const progress: number[] = [];
    const written = await store.setMany(entries, { concurrency: 16, onProgress: (p) => progress.push(p.done) }).toMap();
    expect(written.size).toBe(n);
    expect(progress.at(-1)).toBe(n);

    const read = await store.getMany([...entries.map(([k]) => k), "absent"], { concurrency: 16 }).toMap();
    expect(read.size).toBe(n + 1);
    expect(read.get("absent")).toBeUndefined();
    for (const [k, v] of entries) expect(read.get(k)).toEqual(v);

    expect((await collect(store.list())).length).toBe(n);
    // Watch the backend's bulk calls: each DeleteObjects request carries at most 1000 keys.
    const backend = store.backend as S3Backend;
    const bulk = backend.removeBatch.bind(backend);
    const groups: number[] = [];
    backend.removeBatch = (keys, signal) => {
      groups.push(keys.length);
      return bulk(keys, signal);
    };
    const deleted = await store.deleteMany([...entries.map(([k]) => k), "absent"]).toMap();
    expect(deleted.size).toBe(n + 1);
    // s3rver sometimes answers a large DeleteObjects with 500 InternalError (it races removing
    // empty directories); the retry policy repeats that group, so sizes may repeat.
    expect(new Set(groups)).toEqual(new Set([1000, 101]));
    expect(await collect(store.list())).toEqual([]);
  });
});

describe("S3Store compression", () => {
  for (const method of ["gzip", "br", "zstd"] as const) {
    it(`stores ${method} as Content-Encoding and undoes it on read`, async () => {
      const store = open({ prefix: `compress-${method}` });
      const data = text("chunk ".repeat(2000));
      await store.set("c", data, { compress: method });
      const info = await store.head("c");
      expect(info!.contentEncoding).toBe(method);
      expect(info!.size).toBeLessThan(data.length / 10);
      expect(await store.get("c")).toEqual(data);
      const raw = await store.get("c", { raw: true });
      expect(raw!.length).toBe(info!.size);
      // A byte range of compressed bytes is not a range of the data: refused unless raw.
      await expect(store.getRange("c", { offset: 0, length: 10 })).rejects.toThrow(/Content-Encoding/);
      expect(await store.getRange("c", { offset: 0, length: 10 }, { raw: true })).toEqual(raw!.subarray(0, 10));
    });
  }

  it("applies the store's default compression to batches", async () => {
    const store = open({ prefix: "compress-default", compress: "zstd" });
    const data = text("abc".repeat(1000));
    await store.setMany([["a", data], ["b", data]]).toMap();
    expect((await store.head("a"))!.contentEncoding).toBe("zstd");
    const back = await store.getMany(["a", "b"]).toMap();
    expect(back.get("a")).toEqual(data);
    expect(back.get("b")).toEqual(data);
  });
});

/** s3rver's file for an object's bytes (its ETag comes from a separate .md5 file). */
async function objectFile(key: string): Promise<string> {
  const parts = key.split("/");
  const name = `${parts.pop()}._S3rver_object`;
  const dir = join(server.directory, "test", ...parts);
  expect(await readdir(dir)).toContain(name);
  return join(dir, name);
}

describe("S3Store integrity", () => {
  it("detects bytes that do not match the MD5 ETag, and reads them when told not to check", async () => {
    const store = open({ prefix: "md5", retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 } });
    const data = bytes(4096, 3);
    await store.set("victim", data);
    // Corrupt the bytes at rest behind s3rver's back; the stored ETag still has the old MD5.
    const file = await objectFile("md5/victim");
    const corrupted = new Uint8Array(await readFile(file));
    corrupted[100] ^= 0xff;
    await writeFile(file, corrupted);

    const error = await store.get("victim").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IntegrityError);
    expect((error as IntegrityError).message).toMatch(/MD5 mismatch/);
    expect((error as IntegrityError).attempts).toBe(2); // retried: could have been the wire
    // Ranges carry no whole-object checksum.
    expect(await store.getRange("victim", { offset: 90, length: 20 })).toEqual(corrupted.subarray(90, 110));
    const unchecked = open({ prefix: "md5", verifyMd5: false });
    expect(await unchecked.get("victim")).toEqual(corrupted);
  });
});

describe("S3Store multipart uploads", () => {
  it("uploads in parts above the threshold and reads the object back", async () => {
    // A pass-through proxy counts the requests that reach the server.
    const proxy = await startFaultProxy(server.endpoint, { kinds: [] });
    try {
      const store = open({
        endpoint: proxy.url,
        prefix: "multipart",
        multipartThreshold: 6 * 1024 * 1024,
        partSize: 5 * 1024 * 1024,
      });
      const data = bytes(11 * 1024 * 1024 + 123, 9);
      await store.set("big", data);
      // Create + three parts (5 MiB, 5 MiB, the rest) + complete. (s3rver's multipart ETag is a
      // plain MD5 of the whole object, unlike S3's "<md5 of md5s>-3".)
      expect(proxy.stats.requests).toBe(5);
      const info = await store.head("big");
      expect(info!.size).toBe(data.length);
      expectSameBytes(await store.get("big"), data);
      expect(await store.getRange("big", { offset: 5 * 1024 * 1024 - 10, length: 20 })).toEqual(
        data.subarray(5 * 1024 * 1024 - 10, 5 * 1024 * 1024 + 10),
      );
      // Content-Encoding is set on the multipart object too.
      await store.set("big.gz", data, { compress: "gzip", level: 1 });
      expect((await store.head("big.gz"))!.contentEncoding).toBe("gzip");
      expectSameBytes(await store.get("big.gz"), data);

      // Below the threshold: one PUT.
      const before = proxy.stats.requests;
      await store.set("small", data.subarray(0, 1024));
      expect(proxy.stats.requests - before).toBe(1);
    } finally {
      await proxy.stop();
    }
  });
});

describe("S3Store anonymous access", () => {
  it("reads without signing", async () => {
    await open({ prefix: "anon" }).set("public", text("hello"));
    const anonymous = open({ prefix: "anon", anonymous: true, credentials: undefined });
    expect(await anonymous.get("public")).toEqual(text("hello"));
  });
});

describe("S3Store with zarrita", () => {
  it("writes an array with zarr.create/zarr.set and reads it back with zarr.open/zarr.get", async () => {
    const store = open({ prefix: "zarr/example.zarr" });
    const shape = [7, 9];
    const data = new Float32Array(63).map((_, i) => i * 0.5 - 3);
    const arr = await zarr.create(zarr.root(store).resolve("temperature"), {
      shape,
      chunkShape: [4, 4],
      dtype: "float32",
      attributes: { units: "K" },
    });
    await zarr.set(arr, null, { data, shape, stride: [9, 1] });
    expect((await collect(store.list("temperature/"))).length).toBeGreaterThan(6);

    const reopened = await zarr.open(zarr.root(store).resolve("temperature"), { kind: "array" });
    expect(reopened.shape).toEqual(shape);
    expect(reopened.attrs).toEqual({ units: "K" });
    const all = await zarr.get(reopened);
    expect(Array.from(all.data as Float32Array)).toEqual(Array.from(data));
    const part = await zarr.get(reopened, [zarr.slice(2, 5), 3]);
    expect(Array.from(part.data as Float32Array)).toEqual([2, 3, 4].map((r) => data[r * 9 + 3]));
  });
});
