import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import * as zarr from "zarrita";
import { ConflictError, StoreError, UnsupportedFeatureError } from "../src/errors.js";
import { BufferPool } from "../src/stores/buffer-pool.js";
import { HttpStore } from "../src/stores/http.js";
import { LocalStore } from "../src/stores/local.js";
import { NGINX, startNginx, startStaticServer, type TestServer } from "./servers/nginx.js";

const retry = { baseDelayMs: 5, attempts: 3 };
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

let root: string;
const payload = new Uint8Array(100_000).map((_, i) => (i * 31 + 7) & 0xff);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "activestore-http-"));
  const local = new LocalStore(root);
  await local.set("data/blob.bin", payload);
  await local.set("small.txt", bytes("0123456789"));
  await local.set("empty", new Uint8Array(0));
  await local.set("dir with space/é.txt", bytes("encoded"));
  // Precompressed sidecar, the layout LocalStore writes for compressed objects.
  await local.set("zipped.json", bytes(JSON.stringify({ hello: "world" })), { compress: "gzip" });
  const arr = await zarr.create(zarr.root(local).resolve("grid"), {
    shape: [10, 12],
    chunkShape: [4, 5],
    dtype: "int32",
    fillValue: 0,
  });
  await zarr.set(arr, null, { data: Int32Array.from({ length: 120 }, (_, i) => i * i - 500), shape: [10, 12], stride: [12, 1] });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The same contract against each server: nginx (when installed) and the Node one (always). */
const servers: [string, (root: string) => Promise<TestServer>][] = [
  ["node", (r) => startStaticServer(r)],
  ...(existsSync(NGINX) ? [["nginx", (r: string) => startNginx(r)] as [string, (root: string) => Promise<TestServer>]] : []),
];

describe.each(servers)("HttpStore against the %s server", (_name, start) => {
  let server: TestServer;
  let store: HttpStore;
  beforeAll(async () => {
    server = await start(root);
    store = new HttpStore(server.url, { retry });
  });
  afterAll(async () => {
    await store?.close();
    await server?.stop();
  });

  test("whole objects, missing objects, HEAD", async () => {
    expect(await store.get("data/blob.bin")).toEqual(payload);
    expect(text(await store.get("/small.txt"))).toBe("0123456789");
    expect(await store.get("empty")).toEqual(new Uint8Array(0));
    expect(text(await store.get("dir with space/é.txt"))).toBe("encoded");
    expect(await store.get("no/such/key")).toBeUndefined();
    expect(await store.head("no/such/key")).toBeUndefined();
    expect(await store.has("small.txt")).toBe(true);
    expect(await store.head("data/blob.bin")).toMatchObject({ key: "data/blob.bin", size: 100_000 });
  });

  test("ranges: inside, to the end, suffix, past EOF, offset past EOF, zero length", async () => {
    expect(await store.getRange("data/blob.bin", { offset: 1000, length: 5000 })).toEqual(payload.slice(1000, 6000));
    expect(await store.getRange("data/blob.bin", { offset: 99_990, length: 10 })).toEqual(payload.slice(99_990));
    expect(await store.getRange("data/blob.bin", { suffixLength: 17 })).toEqual(payload.slice(-17));
    expect(text(await store.getRange("small.txt", { offset: 8, length: 100 }))).toBe("89");
    expect(await store.getRange("small.txt", { offset: 10, length: 4 })).toEqual(new Uint8Array(0));
    expect(await store.getRange("small.txt", { offset: 500, length: 4 })).toEqual(new Uint8Array(0));
    expect(await store.getRange("small.txt", { offset: 3, length: 0 })).toEqual(new Uint8Array(0));
    expect(await store.getRange("missing", { offset: 0, length: 4 })).toBeUndefined();
    expect(await store.getRange("missing", { offset: 3, length: 0 })).toBeUndefined();
  });

  test("getRanges coalesces nearby ranges into fewer requests and splits them back", async () => {
    const ranges = [
      { offset: 0, length: 10 },
      { offset: 50_000, length: 100 },
      { offset: 20, length: 30 },
      { offset: 99_999, length: 1 },
    ];
    // One request per coalesced span when multi-range requests are off...
    let before = store.stats.requests;
    const parts = await store.getRanges("data/blob.bin", ranges, { coalesceGap: 64, multiRange: false });
    expect(store.stats.requests - before).toBe(3);
    ranges.forEach((r, i) => expect(parts![i]).toEqual(payload.slice(r.offset, r.offset + r.length)));
    // ...and the three spans in one multi-range GET by default.
    before = store.stats.requests;
    const again = await store.getRanges("data/blob.bin", ranges, { coalesceGap: 64 });
    expect(store.stats.requests - before).toBe(1);
    expect(again).toEqual(parts);
  });

  test("a range read with a buffer pool lands in a pooled buffer, given back and reused", async () => {
    const pool = new BufferPool({ minSize: 1024 });
    const part = await store.getRange("data/blob.bin", { offset: 10_000, length: 70_000 }, { buffers: pool });
    expect(pool.holds(part!)).toBe(true);
    expect(Buffer.from(part!).equals(Buffer.from(payload.subarray(10_000, 80_000)))).toBe(true);
    pool.give(part!);
    const again = await store.getRange("data/blob.bin", { offset: 0, length: 70_001 }, { buffers: pool });
    expect(again!.buffer).toBe(part!.buffer);
    expect(Buffer.from(again!).equals(Buffer.from(payload.subarray(0, 70_001)))).toBe(true);
  });

  test("a zarr array written to the served directory with LocalStore reads back over HTTP", async () => {
    const arr = await zarr.open(zarr.root(store).resolve("grid"), { kind: "array" });
    const back = await zarr.get(arr);
    expect(Array.from(back.data as Int32Array)).toEqual(Array.from({ length: 120 }, (_, i) => i * i - 500));
    const local = await zarr.get(await zarr.open(zarr.root(new LocalStore(root)).resolve("grid"), { kind: "array" }));
    expect(back.data).toEqual(local.data);
  });

  test("writes to a read-only server fail clearly and are not retried", async () => {
    const error = await store.set("new", bytes("x")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).message).toMatch(/read-only/);
    expect((error as StoreError).status).toBe(405);
    expect((error as StoreError).attempts).toBe(1);
    await expect(store.delete("small.txt")).rejects.toThrow(/read-only/);
  });

  test("listing is not supported over plain HTTP", async () => {
    const it = store.list("data/")[Symbol.asyncIterator]();
    await expect(it.next()).rejects.toThrow(UnsupportedFeatureError);
  });
});

describe("HttpStore and compressed objects", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startStaticServer(root);
  });
  afterAll(() => server.stop());

  test("with acceptCompressed, the stored encoding comes back raw and ObjectStore undoes it", async () => {
    const store = new HttpStore(server.url, { acceptCompressed: true, retry });
    expect(JSON.parse(text(await store.get("zipped.json"))!)).toEqual({ hello: "world" });
    const raw = await store.get("zipped.json", { raw: true });
    expect(raw).toEqual(new Uint8Array(await readFile(join(root, "zipped.json.gz"))));
    await expect(store.getRange("zipped.json", { offset: 0, length: 3 })).rejects.toThrow(/Content-Encoding gzip/);
    expect(await store.head("zipped.json")).toMatchObject({ contentEncoding: "gzip" });
    await store.close();
  });

  test("without it, Accept-Encoding: identity is sent and the server's refusal is an error, not missing", async () => {
    const store = new HttpStore(server.url, { retry });
    const error = await store.get("zipped.json").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).status).toBe(406);
    await store.close();
  });
});

/** A tiny scripted server for behaviour real servers only show when misconfigured. */
async function scripted(
  handler: Parameters<typeof createServer>[1],
): Promise<{ url: string; server: Server; connections: () => number; stop: () => Promise<void> }> {
  let connections = 0;
  const server = createServer(handler);
  server.on("connection", () => connections++);
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    connections: () => connections,
    stop: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

describe("HttpStore against misbehaving or special servers", () => {
  test("a server that ignores Range (200 + whole body) still yields exactly the range asked for", async () => {
    const server = await startStaticServer(root, { ignoreRange: true });
    const store = new HttpStore(server.url, { retry });
    try {
      expect(await store.getRange("data/blob.bin", { offset: 1234, length: 99 })).toEqual(payload.slice(1234, 1333));
      expect(await store.getRange("data/blob.bin", { suffixLength: 5 })).toEqual(payload.slice(-5));
      expect(await store.getRange("data/blob.bin", { offset: 99_998, length: 1_000_000 })).toEqual(payload.slice(99_998));
      expect(text(await store.getRange("small.txt", { offset: 8, length: 100 }))).toBe("89");
    } finally {
      await store.close();
      await server.stop();
    }
  });

  test("a 206 for a different range (or for no range) is refused, not returned", async () => {
    const s = await scripted((req, res) => {
      res.writeHead(206, { "Content-Range": "bytes 0-3/10", "Content-Length": 4 });
      res.end("0123");
    });
    const store = new HttpStore(s.url, { retry });
    try {
      await expect(store.getRange("k", { offset: 4, length: 4 })).rejects.toThrow(/refusing bytes/);
      await expect(store.get("k")).rejects.toThrow(/refusing a part as the whole/);
    } finally {
      await store.close();
      await s.stop();
    }
  });

  test("a 206 body longer or shorter than its Content-Range is an integrity error, its pooled buffer kept out", async () => {
    const s = await scripted((req, res) => {
      // No Content-Length: chunked, so the body can disagree with the Content-Range.
      res.writeHead(206, { "Content-Range": "bytes 0-4095/9000" });
      res.end(req.url?.includes("long") ? Buffer.alloc(5000, 1) : Buffer.alloc(3000, 1));
    });
    const store = new HttpStore(s.url, { retry: { ...retry, attempts: 1 } });
    const pool = new BufferPool({ minSize: 1024 });
    try {
      await expect(store.getRange("long", { offset: 0, length: 4096 }, { buffers: pool })).rejects.toThrow(/more than 4096 bytes/);
      await expect(store.getRange("short", { offset: 0, length: 4096 }, { buffers: pool })).rejects.toThrow(/body has 3000 bytes/);
      // Both destinations stay out of the pool: a new read gets a fresh buffer.
      expect(pool.stats.taken).toBe(2);
      expect(pool.stats.reused).toBe(0);
      expect(pool.stats.freeBytes).toBe(0);
    } finally {
      await store.close();
      await s.stop();
    }
  });

  test("401/403 are not retried; 500/503/429 are, and give up after the configured attempts", async () => {
    const seen: Record<string, number> = {};
    const s = await scripted((req, res) => {
      const status = Number(req.url!.slice(1));
      seen[status] = (seen[status] ?? 0) + 1;
      res.writeHead(status, { "Content-Length": 5 });
      res.end("nope!");
    });
    const store = new HttpStore(s.url, { retry });
    try {
      for (const status of [401, 403]) {
        const e = (await store.get(String(status)).catch((x: unknown) => x)) as StoreError;
        expect(e).toBeInstanceOf(StoreError);
        expect([e.status, e.retryable, e.attempts]).toEqual([status, false, 1]);
      }
      for (const status of [500, 503, 429]) {
        const e = (await store.get(String(status)).catch((x: unknown) => x)) as StoreError;
        expect([e.status, e.retryable, e.attempts]).toEqual([status, true, 3]);
      }
      expect(seen).toEqual({ 401: 1, 403: 1, 500: 3, 503: 3, 429: 3 });
    } finally {
      await store.close();
      await s.stop();
    }
  });

  test("custom headers and basic auth are sent (nginx auth_basic, or the Node server)", async () => {
    const auth = { username: "ada", password: "s3cret" };
    const server = existsSync(NGINX) ? await startNginx(root, { auth }) : await startStaticServer(root, { auth });
    const good = new HttpStore(server.url, { auth, retry });
    const inUrl = new HttpStore(server.url.replace("http://", "http://ada:s3cret@"), { retry });
    const bad = new HttpStore(server.url, { auth: { ...auth, password: "wrong" }, retry });
    try {
      expect(text(await good.get("small.txt"))).toBe("0123456789");
      expect(text(await inUrl.get("small.txt"))).toBe("0123456789");
      const e = (await bad.get("small.txt").catch((x: unknown) => x)) as StoreError;
      expect([e.status, e.retryable]).toEqual([401, false]);
    } finally {
      await Promise.all([good.close(), inUrl.close(), bad.close()]);
      await server.stop();
    }

    let received: Record<string, unknown> = {};
    const s = await scripted((req, res) => {
      received = req.headers;
      res.writeHead(200, { "Content-Length": 2 }).end("ok");
    });
    const store = new HttpStore(s.url + "/base/", { headers: { "x-api-key": "k123" }, retry });
    try {
      expect(text(await store.get("a b/c"))).toBe("ok");
      expect(received["x-api-key"]).toBe("k123");
      expect(received["accept-encoding"]).toBe("identity");
    } finally {
      await store.close();
      await s.stop();
    }
  });

  test("the pool never opens more connections than the configured concurrency", async () => {
    let inFlight = 0;
    let peak = 0;
    const s = await scripted((req, res) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      setTimeout(() => {
        inFlight--;
        res.writeHead(200, { "Content-Length": 1 }).end("x");
      }, 5);
    });
    const store = new HttpStore(s.url, { concurrency: 4, connections: 64, retry });
    try {
      // The batch asks for 50 in flight; the pool still holds at most 4 sockets.
      const keys = Array.from({ length: 60 }, (_, i) => `k${i}`);
      const got = await store.getMany(keys, { concurrency: 50 }).toMap();
      expect(got.size).toBe(60);
      expect(s.connections()).toBeLessThanOrEqual(4);
      expect(peak).toBeLessThanOrEqual(4);
      expect(peak).toBeGreaterThan(1); // and they are used in parallel
    } finally {
      await store.close();
      await s.stop();
    }
  });
});

const writableServers: [string, (root: string) => Promise<TestServer>][] = [
  ["node", (r) => startStaticServer(r, { writable: true })],
  ...(existsSync(NGINX)
    ? [["nginx (dav)", (r: string) => startNginx(r, { writable: true })] as [string, (root: string) => Promise<TestServer>]]
    : []),
];

describe.each(writableServers)("HttpStore writes to the writable %s server", (_name, start) => {
  test("PUT / GET / DELETE round trip; compressed and create-only writes on a server without their semantics", async () => {
    const dir = await mkdtemp(join(tmpdir(), "activestore-dav-"));
    const server = await start(dir);
    const store = new HttpStore(server.url, { retry });
    try {
      await store.set("a/b/c.bin", payload);
      expect(new Uint8Array(await readFile(join(dir, "a/b/c.bin")))).toEqual(payload);
      expect(await store.get("a/b/c.bin")).toEqual(payload);
      await store.delete("a/b/c.bin");
      expect(await store.get("a/b/c.bin")).toBeUndefined();
      await store.delete("a/b/c.bin"); // deleting a missing key is fine

      // Plain PUT servers (nginx dav, this Node one) drop Content-Encoding, so compressed writes are refused rather than stored
      // as bytes that would read back still compressed.
      await expect(store.set("z", bytes("plain"), { compress: "gzip" })).rejects.toThrow(UnsupportedFeatureError);
      expect(await store.get("z")).toBeUndefined();
      await store.set("z.gz", gzipSync(Buffer.from("plain")), { compress: null }); // opaque bytes are fine

      // Neither honours If-None-Match on PUT: the store looks first, so an existing object is a conflict.
      await store.set("once", bytes("first"), { ifNoneMatch: "*" });
      await expect(store.set("once", bytes("second"), { ifNoneMatch: "*" })).rejects.toThrow(ConflictError);
      expect(text(await store.get("once"))).toBe("first");
      await writeFile(join(dir, "made-outside"), "x");
      expect(await store.has("made-outside")).toBe(true);
    } finally {
      await store.close();
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
