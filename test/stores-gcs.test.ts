import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { request } from "undici";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import * as zarr from "zarrita";
import { ConflictError, IntegrityError, InvalidKeyError, StoreError } from "../src/errors.js";
import { BufferPool } from "../src/stores/buffer-pool.js";
import { GcsStore, type GcsStoreOptions } from "../src/stores/gcs.js";
import { ALL_FAULTS, describeFaults, startFaultProxy } from "./servers/fault-proxy.js";
import { startGcsServer, type GcsFault, type GcsServer, type RequestRecord } from "./servers/gcs.js";

const BUCKET = "test-bucket";
const fast = { retry: { baseDelayMs: 2, maxDelayMs: 10 } };

function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** Deep-equality on megabytes is slow in vitest; compare bytes directly. */
function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

const text = (s: string) => new TextEncoder().encode(s);
const md5 = (d: Uint8Array) => createHash("md5").update(d).digest("base64");

let server: GcsServer;
/** Per-test fault plan, consulted by the server for every request. */
let fault: ((r: RequestRecord, n: number) => GcsFault | undefined) | undefined;
const stores: GcsStore[] = [];

function open(options: Partial<GcsStoreOptions> = {}): GcsStore {
  const store = new GcsStore({ bucket: BUCKET, endpoint: server.url, ...fast, ...options });
  stores.push(store);
  return store;
}

beforeAll(async () => {
  server = await startGcsServer({ buckets: [BUCKET, "other"], fault: (r, n) => fault?.(r, n), persistLimit: 512 * 1024 });
});
afterEach(() => {
  fault = undefined;
});
afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await server?.stop();
});

describe("GcsStore basics", () => {
  it("round-trips objects, reports missing ones as undefined and deletes idempotently", async () => {
    const store = open({ prefix: "basics" });
    const data = bytes(1000);
    await store.set("a/b.bin", data);
    expect(server.buckets.get(BUCKET)!.get("basics/a/b.bin")!.md5Hash).toBe(md5(data));
    expect(await store.get("a/b.bin")).toEqual(data);
    expect(await store.get("/a/b.bin")).toEqual(data); // zarrita-style absolute key
    expect(await store.get("a/missing")).toBeUndefined();
    expect(await store.has("a/b.bin")).toBe(true);
    const info = await store.head("a/b.bin");
    expect(info).toMatchObject({ key: "a/b.bin", size: 1000 });
    expect(info!.lastModified).toBeInstanceOf(Date);
    expect(await store.head("nope")).toBeUndefined();
    await store.delete("a/b.bin");
    await store.delete("a/b.bin");
    expect(await store.has("a/b.bin")).toBe(false);
    expect(store.url).toBe(`gs://${BUCKET}/basics`);
  });

  it("reads byte ranges, suffixes, ranges past the end and empty ranges", async () => {
    const store = open({ prefix: "ranges" });
    const data = bytes(5000, 7);
    await store.set("r", data);
    expect(await store.getRange("r", { offset: 100, length: 50 })).toEqual(data.subarray(100, 150));
    expect(await store.getRange("r", { offset: 4990, length: 100 })).toEqual(data.subarray(4990));
    expect(await store.getRange("r", { suffixLength: 10 })).toEqual(data.subarray(4990));
    expect(await store.getRange("r", { suffixLength: 9999 })).toEqual(data);
    expect(await store.getRange("r", { offset: 6000, length: 10 })).toEqual(new Uint8Array(0));
    expect(await store.getRange("r", { offset: 10, length: 0 })).toEqual(new Uint8Array(0));
    expect(await store.getRange("missing", { offset: 0, length: 0 })).toBeUndefined();
    expect(await store.getRange("missing", { offset: 0, length: 10 })).toBeUndefined();
    const parts = await store.getRanges("r", [
      { offset: 0, length: 10 },
      { offset: 4000, length: 20 },
    ]);
    expect(parts).toEqual([data.subarray(0, 10), data.subarray(4000, 4020)]);
    const ranged = server.requests.filter((r) => r.headers.range);
    expect(ranged.every((r) => r.headers["accept-encoding"] === "gzip")).toBe(true);
  });

  it("range and whole reads with a buffer pool land in pooled buffers, given back and reused", async () => {
    const store = open({ prefix: "pooled" });
    const data = bytes(160_000, 11);
    await store.set("p", data);
    const pool = new BufferPool({ minSize: 1024 });
    const part = await store.getRange("p", { offset: 5000, length: 150_000 }, { buffers: pool });
    expect(pool.holds(part!)).toBe(true);
    expect(Buffer.from(part!).equals(Buffer.from(data.subarray(5000, 155_000)))).toBe(true);
    pool.give(part!);
    const whole = await store.get("p", { buffers: pool }); // same size class: the same buffer
    expect(whole!.buffer === part!.buffer).toBe(true); // not toBe: printing 160 KB buffers is slow
    expect(Buffer.from(whole!).equals(Buffer.from(data))).toBe(true);
  });

  it("percent-encodes object names with reserved and non-ASCII characters", async () => {
    const store = open({ prefix: "names" });
    const keys = ["sp ace", "per%cent", "plus+sign", "hash#q?x=1&y", "bang!'()*", "ünï/cødé", "a//b", "semi;colon@:"];
    for (const [i, key] of keys.entries()) await store.set(key, bytes(10, i + 1));
    for (const [i, key] of keys.entries()) expect(await store.get(key)).toEqual(bytes(10, i + 1));
    const names = [...server.buckets.get(BUCKET)!.keys()].filter((n) => n.startsWith("names/"));
    expect(names.sort()).toEqual(keys.map((k) => `names/${k}`).sort());
    const listed: string[] = [];
    for await (const info of store.list()) listed.push(info.key);
    expect(listed.sort()).toEqual([...keys].sort());
  });

  it("refuses names GCS cannot store", async () => {
    const store = open();
    await expect(store.set("bad\nname", text("x"))).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(store.get("x".repeat(1100))).rejects.toBeInstanceOf(InvalidKeyError);
  });

  it("lists across pages, relative to the store prefix", async () => {
    const store = open({ prefix: "listing/root", pageSize: 7 });
    const keys = Array.from({ length: 25 }, (_, i) => `k/${String(i).padStart(2, "0")}`);
    await store.setMany(keys.map((k, i) => [k, bytes(i + 1)] as const)).toMap();
    await open({ prefix: "listing/rootx" }).set("k/outside", text("no"));
    const before = server.requests.length;
    const listed = [];
    for await (const info of store.list("k/")) listed.push(info);
    expect(listed.map((i) => i.key)).toEqual(keys);
    expect(listed.map((i) => i.size)).toEqual(keys.map((_, i) => i + 1));
    const pages = server.requests.slice(before).filter((r) => r.method === "GET" && r.path.endsWith("/o"));
    expect(pages.length).toBe(4);
    expect(pages[0].query.get("prefix")).toBe("listing/root/k/");
    expect(pages.slice(1).every((p) => p.query.get("pageToken"))).toBe(true);
    const empty = [];
    for await (const info of store.list("nothing-here/")) empty.push(info);
    expect(empty).toEqual([]);
  });

  it("getMany / setMany / deleteMany", async () => {
    const store = open({ prefix: "batch" });
    const entries = Array.from({ length: 40 }, (_, i) => [`o${i}`, bytes(100 + i, i)] as const);
    const written = await store.setMany(entries, { concurrency: 8 }).toMap();
    expect(written.size).toBe(40);
    const read = await store.getMany([...entries.map(([k]) => k), "absent"]).toMap();
    for (const [k, v] of entries) expect(read.get(k)).toEqual(v);
    expect(read.get("absent")).toBeUndefined();
    await store.deleteMany(entries.map(([k]) => k)).toMap();
    expect(await store.get("o3")).toBeUndefined();
  });
});

describe("GcsStore compression and transcoding", () => {
  it("stores Content-Encoding as object metadata and undoes it on read", async () => {
    const store = open({ prefix: "enc" });
    const data = text("temperature ".repeat(500));
    for (const method of ["gzip", "br", "zstd"] as const) {
      await store.set(method, data, { compress: method });
      const object = server.buckets.get(BUCKET)!.get(`enc/${method}`)!;
      expect(object.contentEncoding).toBe(method);
      expect(object.data.length).toBeLessThan(data.length);
      expect(await store.get(method)).toEqual(data);
      expect(await store.get(method, { raw: true })).toEqual(new Uint8Array(object.data));
      expect((await store.head(method))!.contentEncoding).toBe(method);
    }
    await expect(store.getRange("gzip", { offset: 0, length: 10 })).rejects.toThrow(/Content-Encoding gzip/);
  });

  it("avoids decompressive transcoding by sending Accept-Encoding: gzip", async () => {
    const store = open({ prefix: "transcode" });
    const data = text("x,y,z\n".repeat(1000));
    const stored = gzipSync(data);
    server.put(BUCKET, "transcode/t.csv", stored, { contentEncoding: "gzip", contentType: "text/csv" });
    // The server does transcode for a client that does not ask for gzip, like GCS.
    const plain = await request(`${server.url}/storage/v1/b/${BUCKET}/o/${encodeURIComponent("transcode/t.csv")}?alt=media`);
    expect(Buffer.from(await plain.body.arrayBuffer())).toEqual(Buffer.from(data));
    expect(plain.headers["content-encoding"]).toBeUndefined();
    // We get the stored bytes (MD5 checked against them) and decode them ourselves.
    expect(await store.get("t.csv", { raw: true })).toEqual(new Uint8Array(stored));
    expect(await store.get("t.csv")).toEqual(data);
  });
});

describe("GcsStore with a compressing front end", () => {
  it("undoes gzip applied in transit to plain objects, for whole reads and ranges, and still checks MD5", async () => {
    const front = await startGcsServer({ buckets: [BUCKET], compressResponses: true });
    try {
      const store = new GcsStore({ bucket: BUCKET, endpoint: front.url, ...fast });
      stores.push(store);
      const data = text("lat,lon,value\n".repeat(400));
      await store.set("plain.csv", data);
      expect(await store.get("plain.csv")).toEqual(data);
      expect(await store.get("plain.csv", { raw: true })).toEqual(data); // stored bytes, not the wire's
      expect(await store.getRange("plain.csv", { offset: 14, length: 14 })).toEqual(data.subarray(14, 28));
      await store.set("already.gz", data, { compress: "gzip" });
      expect(await store.get("already.gz")).toEqual(data);
    } finally {
      await front.stop();
    }
  });
});

describe("GcsStore integrity and failures", () => {
  it("checks MD5 on full reads: one corrupted response is retried, persistent corruption fails", async () => {
    const store = open({ prefix: "md5" });
    const data = bytes(4096, 3);
    await store.set("m", data);
    let corrupted = 0;
    fault = (r) => (r.query.get("alt") === "media" && corrupted++ < 1 ? { kind: "corrupt" } : undefined);
    expect(await store.get("m")).toEqual(data);
    expect(corrupted).toBe(2);
    expect(store.stats.retries).toBe(1);
    fault = (r) => (r.query.get("alt") === "media" ? { kind: "corrupt" } : undefined);
    const error = await open({ prefix: "md5", retry: { attempts: 3, baseDelayMs: 1 } }).get("m").catch((e) => e);
    expect(error).toBeInstanceOf(IntegrityError);
    expect(error.message).toMatch(/MD5 mismatch/);
    expect(error.attempts).toBe(3);
  });

  it("falls back to the object's md5Hash when x-goog-hash is missing", async () => {
    const bare = await startGcsServer({ buckets: [BUCKET], sendHash: false });
    try {
      const store = new GcsStore({ bucket: BUCKET, endpoint: bare.url, ...fast });
      stores.push(store);
      await store.set("h", bytes(300));
      expect(await store.get("h")).toEqual(bytes(300));
      const last = bare.requests.at(-1)!;
      expect(last.query.get("generation")).toMatch(/^\d+$/); // metadata of the generation we read
    } finally {
      await bare.stop();
    }
  });

  it("retries truncated bodies, resets, 503 and 429, and gets every byte right", async () => {
    const store = open({ prefix: "faults" });
    const objects = Array.from({ length: 30 }, (_, i) => [`f${i}`, bytes(2000 + i * 37, i + 9)] as const);
    await store.setMany(objects).toMap();
    const kinds: GcsFault[] = [{ kind: "truncate", bytes: 100 }, { kind: "reset" }, { kind: "status", status: 503 }, { kind: "status", status: 429 }];
    let injected = 0;
    fault = (_r, n) => (n % 3 === 0 ? (injected++, kinds[n % kinds.length]) : undefined);
    const read = await store.getMany(objects.map(([k]) => k), { concurrency: 4 }).toMap();
    for (const [k, v] of objects) expect(read.get(k)).toEqual(v);
    expect(injected).toBeGreaterThan(5);
    expect(store.stats.retries).toBe(injected);
    console.log(`gcs faults: ${injected} injected, ${store.stats.retries} retries, ${objects.length} objects verified`);
  });

  it("does not retry auth failures and reports a missing bucket as an error, not as missing", async () => {
    const secured = await startGcsServer({ buckets: [BUCKET], token: "s3cret", publicRead: true });
    const previous = process.env.GOOGLE_OAUTH_ACCESS_TOKEN;
    try {
      const wrong = new GcsStore({ bucket: BUCKET, endpoint: secured.url, token: "nope", ...fast });
      const anonymous = new GcsStore({ bucket: BUCKET, endpoint: secured.url, anonymous: true, ...fast });
      process.env.GOOGLE_OAUTH_ACCESS_TOKEN = "s3cret";
      const fromEnv = new GcsStore({ bucket: BUCKET, endpoint: secured.url, ...fast });
      const viaFunction = new GcsStore({ bucket: BUCKET, endpoint: secured.url, token: async () => "s3cret", ...fast });
      const noBucket = new GcsStore({ bucket: "no-such-bucket", endpoint: secured.url, token: "s3cret", ...fast });
      stores.push(wrong, anonymous, fromEnv, viaFunction, noBucket);

      const denied = await wrong.set("k", text("v")).catch((e) => e);
      expect(denied).toBeInstanceOf(StoreError);
      expect(denied).toMatchObject({ status: 401, retryable: false, attempts: 1 });
      expect(denied.message).toMatch(/Invalid Credentials/);
      await expect(anonymous.set("k", text("v"))).rejects.toMatchObject({ status: 401 });

      await fromEnv.set("k", text("from env"));
      await viaFunction.set("k2", text("from fn"));
      expect(secured.requests.at(-1)!.headers.authorization).toBe("Bearer s3cret");
      expect(await anonymous.get("k")).toEqual(text("from env")); // public read
      expect(secured.requests.at(-1)!.headers.authorization).toBeUndefined();

      await expect(noBucket.get("k")).rejects.toThrow(/bucket does not exist/);
      await expect(noBucket.head("k")).rejects.toThrow(/bucket does not exist/);
    } finally {
      if (previous === undefined) delete process.env.GOOGLE_OAUTH_ACCESS_TOKEN;
      else process.env.GOOGLE_OAUTH_ACCESS_TOKEN = previous;
      await secured.stop();
    }
  });
});

describe("GcsStore behind the fault proxy", () => {
  it("moves objects through resets, stalls, 503/429, truncated and mis-sized bodies without losing a byte", async () => {
    const proxy = await startFaultProxy(server.url, { kinds: ALL_FAULTS, every: 4, stallMs: 2000 });
    try {
      const store = open({ endpoint: proxy.url, prefix: "proxied", timeoutMs: 400, resumableThreshold: 300_000, chunkSize: 256 * 1024 });
      const objects = Array.from({ length: 60 }, (_, i) => [`p/${i}`, bytes(1000 + i * 101, i + 40)] as const);
      const big = bytes(700_000, 99);
      await store.setMany([...objects, ["p/big", big] as const], { concurrency: 6 }).toMap();
      const read = await store.getMany([...objects.map(([k]) => k), "p/big"], { concurrency: 6 }).toMap();
      for (const [k, v] of objects) expect(read.get(k)).toEqual(v);
      expect(sameBytes(read.get("p/big"), big)).toBe(true);
      const ranges = await store.getRanges("p/7", [{ offset: 3, length: 50 }, { offset: 900, length: 20 }]);
      expect(ranges).toEqual([objects[7][1].subarray(3, 53), objects[7][1].subarray(900, 920)]);
      expect(proxy.stats.injected).toBeGreaterThanOrEqual(ALL_FAULTS.length);
      for (const kind of ALL_FAULTS) expect(proxy.stats.faults[kind]).toBeGreaterThan(0);
      // Not one retry per fault: a broken body after a 308 or an upload's 200 changes nothing we need.
      expect(store.stats.retries).toBeGreaterThan(proxy.stats.injected / 2);
      console.log(`gcs via fault proxy: ${describeFaults(proxy.stats)}; ${store.stats.retries} retries; 61 objects verified`);
    } finally {
      await proxy.stop();
    }
  });
});

describe("GcsStore uploads", () => {
  it("uploads small objects as multipart with metadata and md5Hash", async () => {
    const store = open({ prefix: "up" });
    const before = server.requests.length;
    await store.set("small.json", text('{"a":1}'), { contentType: "application/json" });
    const [post] = server.requests.slice(before);
    expect(post.method).toBe("POST");
    expect(post.query.get("uploadType")).toBe("multipart");
    expect(post.headers["content-type"]).toMatch(/^multipart\/related; boundary=/);
    expect(server.buckets.get(BUCKET)!.get("up/small.json")!.contentType).toBe("application/json");
  });

  it("uses a resumable session above the threshold, following 308 Range answers", async () => {
    const store = open({ prefix: "up", resumableThreshold: 100_000, chunkSize: 1024 * 1024 });
    const data = bytes(2_500_000, 11);
    const before = server.requests.length;
    await store.set("big.bin", data, { contentType: "application/x-netcdf" });
    const log = server.requests.slice(before);
    expect(log[0].query.get("uploadType")).toBe("resumable");
    expect(log[0].headers["x-upload-content-length"]).toBe(String(data.length));
    // The server keeps at most 512 KiB per PUT, so 2.5 MB takes at least 5 chunk requests.
    expect(log.filter((r) => r.method === "PUT").length).toBeGreaterThanOrEqual(5);
    const stored = server.buckets.get(BUCKET)!.get("up/big.bin")!;
    expect(stored.md5Hash).toBe(md5(data));
    expect(sameBytes(await store.get("big.bin"), data)).toBe(true);
  });

  it("resumes the same session after a failed chunk instead of starting over", async () => {
    const store = open({ prefix: "up", resumableThreshold: 100_000, chunkSize: 512 * 1024 });
    const data = bytes(1_800_000, 12);
    const before = server.requests.length;
    let puts = 0;
    fault = (r) => (r.method === "PUT" && ++puts === 3 ? { kind: "reset" } : undefined);
    await store.set("resumed.bin", data);
    const log = server.requests.slice(before);
    expect(log.filter((r) => r.method === "POST").length).toBe(1);
    const statusQuery = log.find((r) => r.headers["content-range"] === `bytes */${data.length}`);
    expect(statusQuery).toBeDefined();
    expect(sameBytes(server.buckets.get(BUCKET)!.get("up/resumed.bin")!.data, data)).toBe(true);
    expect(store.stats.retries).toBe(1);
  });

  it("create-only writes fail with ConflictError, for both upload kinds", async () => {
    const store = open({ prefix: "once", resumableThreshold: 1000 });
    await store.set("small", text("first"), { ifNoneMatch: "*" });
    await expect(store.set("small", text("second"), { ifNoneMatch: "*" })).rejects.toBeInstanceOf(ConflictError);
    expect(await store.get("small")).toEqual(text("first"));
    await store.set("large", bytes(5000), { ifNoneMatch: "*" });
    const error = await store.set("large", bytes(5000, 2), { ifNoneMatch: "*" }).catch((e) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect(error.status).toBe(412);
    expect(await store.get("large")).toEqual(bytes(5000));
  });
});

describe("GcsStore with zarrita", () => {
  it("writes a zarr array and reads it back", async () => {
    const store = open({ prefix: "zarr/example.zarr" });
    const arr = await zarr.create(zarr.root(store).resolve("temp"), {
      shape: [6, 10],
      chunkShape: [4, 4],
      dtype: "float32",
    });
    const values = Float32Array.from({ length: 60 }, (_, i) => Math.sin(i) * 100);
    await zarr.set(arr, null, { data: values, shape: [6, 10], stride: [10, 1] });
    const reopened = await zarr.open(zarr.root(open({ prefix: "zarr/example.zarr" })).resolve("temp"), { kind: "array" });
    const got = await zarr.get(reopened);
    expect(got.shape).toEqual([6, 10]);
    expect(Array.from(got.data as Float32Array)).toEqual(Array.from(values));
    const keys: string[] = [];
    for await (const info of store.list("temp/")) keys.push(info.key);
    expect(keys).toContain("temp/zarr.json");
    expect(keys.filter((k) => k.startsWith("temp/c/")).length).toBe(6);
  });
});
