/**
 * S3Store against servers that misbehave: the fault proxy in front of a real s3rver (resets, 503
 * SlowDown, 429, stalls, truncated bodies, wrong Content-Length) and a small scripted S3 endpoint
 * for answers s3rver never gives (412 on create-only, 403, NoSuchBucket, a correct suffix range,
 * a lying Content-Length).
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConflictError, IntegrityError, StoreError } from "../src/errors.js";
import type { StoreOptions } from "../src/stores/object-store.js";
import { S3Store, type S3Options } from "../src/stores/s3.js";
import { ALL_FAULTS, describeFaults, startFaultProxy, type FaultProxy } from "./servers/fault-proxy.js";
import { S3RVER_CREDENTIALS, startS3rver, type S3rverHandle } from "./servers/s3rver.js";

const stores: S3Store[] = [];

function open(endpoint: string, options: Partial<S3Options & StoreOptions> = {}): S3Store {
  const store = new S3Store({
    bucket: "test",
    endpoint,
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
    ...options,
  });
  stores.push(store);
  return store;
}

/** Deterministic pseudo-random bytes (xorshift) so every object differs. */
function bytes(n: number, seed: number): Uint8Array {
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

afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
});

describe("S3Store through the fault proxy", () => {
  let server: S3rverHandle;
  let proxy: FaultProxy;

  beforeAll(async () => {
    server = await startS3rver({ buckets: ["test"] });
    proxy = await startFaultProxy(server.endpoint, {
      kinds: ALL_FAULTS,
      probability: 0.2,
      seed: 42,
      stallMs: 3_000,
    });
  });

  afterAll(async () => {
    await proxy?.stop();
    await server?.stop();
  });

  it("loses nothing and corrupts nothing in setMany / getMany of hundreds of objects", async () => {
    const faulty = open(proxy.url, {
      prefix: "faults",
      timeoutMs: 1_000, // shorter than a stall
      retry: { attempts: 12, baseDelayMs: 1, maxDelayMs: 20 },
      concurrency: 16,
    });
    const n = 300;
    const entries = Array.from({ length: n }, (_, i) => [`obj/${i}`, bytes(200 + ((i * 37) % 3000), i + 1)] as const);

    const written = await faulty.setMany(entries).toMap();
    expect(written.size).toBe(n);

    // Read back through the faults: whole objects (MD5-checked), ranges and suffixes.
    const read = await faulty.getMany(entries.map(([k]) => k)).toMap();
    expect(read.size).toBe(n);
    let mismatched = 0;
    for (const [key, value] of entries) if (Buffer.compare(read.get(key)!, value) !== 0) mismatched++;
    expect(mismatched).toBe(0);
    for (const [key, value] of entries.slice(0, 40)) {
      expect(await faulty.getRange(key, { offset: 10, length: 100 })).toEqual(value.subarray(10, 110));
      expect(await faulty.getRange(key, { suffixLength: 50 })).toEqual(value.subarray(value.length - 50));
    }

    // Nothing lost: what s3rver holds, read without the proxy, is exactly what was written.
    const direct = open(server.endpoint, { prefix: "faults" });
    const listed: string[] = [];
    for await (const info of direct.list("obj/")) listed.push(info.key);
    expect(listed.sort()).toEqual(entries.map(([k]) => k).sort());
    const stored = await direct.getMany(entries.map(([k]) => k)).toMap();
    for (const [key, value] of entries) expect(Buffer.compare(stored.get(key)!, value)).toBe(0);

    // Listing pages through the faults as well.
    const paged = open(proxy.url, {
      prefix: "faults",
      listPageSize: 25,
      timeoutMs: 1_000,
      retry: { attempts: 12, baseDelayMs: 1, maxDelayMs: 20 },
    });
    let count = 0;
    for await (const _ of paged.list("obj/")) count++;
    expect(count).toBe(n);

    console.log(
      `S3 faults: ${proxy.stats.requests} requests, ${describeFaults(proxy.stats)}; ` +
        `store retries ${faulty.stats.retries + paged.stats.retries}`,
    );
    for (const kind of ALL_FAULTS) expect(proxy.stats.faults[kind], kind).toBeGreaterThan(0);
    expect(faulty.stats.retries).toBeGreaterThan(0);
  });

  it("retries a multipart upload whose parts fail, and the object arrives whole", async () => {
    const flaky = await startFaultProxy(server.endpoint, {
      kinds: ["reset-after-headers", "503"],
      methods: ["PUT"], // the part uploads
      every: 2,
      maxFaults: 2,
    });
    try {
      const store = open(flaky.url, {
        prefix: "faults-multipart",
        multipartThreshold: 6 * 1024 * 1024,
        partSize: 5 * 1024 * 1024,
        retry: { attempts: 4, baseDelayMs: 1, maxDelayMs: 5 },
      });
      const data = bytes(11 * 1024 * 1024, 11);
      await store.set("big", data);
      expect(flaky.stats.injected).toBe(2);
      expect(store.stats.retries).toBeGreaterThan(0);
      const back = await open(server.endpoint, { prefix: "faults-multipart" }).get("big");
      expect(back!.length).toBe(data.length);
      expect(Buffer.compare(back!, data)).toBe(0);
    } finally {
      await flaky.stop();
    }
  });

  it("gives up with a retryable StoreError that says how hard it tried", async () => {
    const always = await startFaultProxy(server.endpoint, { kinds: ["slowdown"], every: 1 });
    try {
      const store = open(always.url, { prefix: "faults", retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 2 } });
      const error = await store.get("obj/1").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ status: 503, retryable: true, attempts: 3 });
      expect((error as Error).message).toMatch(/SlowDown.*after 3 attempts/);
      expect(always.stats.requests).toBe(3);
    } finally {
      await always.stop();
    }
  });
});

// ---- a scripted S3 endpoint ----

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

type Handler = (req: Seen, res: ServerResponse) => void;

function xmlError(res: ServerResponse, status: number, code: string, message = code): void {
  const body =
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  res.writeHead(status, { "Content-Type": "application/xml", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

describe("S3Store against scripted answers", () => {
  let url: string;
  let handler: Handler = (_req, res) => xmlError(res, 500, "InternalError");
  const seen: Seen[] = [];
  let close: () => Promise<void>;

  beforeAll(async () => {
    const server = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const record = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks) };
        seen.push(record);
        handler(record, res);
      });
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      });
  });

  afterAll(async () => {
    await close?.();
  });

  function script(h: Handler): void {
    handler = h;
    seen.length = 0;
  }

  it("sends Content-MD5 and If-None-Match, and maps 412 to ConflictError without retrying", async () => {
    script((_req, res) =>
      xmlError(res, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold"),
    );
    const store = open(url);
    const data = new TextEncoder().encode("payload");
    const error = await store.set("k", data, { ifNoneMatch: "*" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect(seen).toHaveLength(1);
    expect(seen[0].method).toBe("PUT");
    expect(seen[0].url.split("?")[0]).toBe("/test/k");
    expect(seen[0].headers["if-none-match"]).toBe("*");
    expect(seen[0].headers["content-md5"]).toBe(createHash("md5").update(data).digest("base64"));
    expect(seen[0].headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=S3RVER\//);
    expect(seen[0].body.equals(Buffer.from(data))).toBe(true);
  });

  it("sends Content-MD5 (not the SDK's CRC32) on DeleteObjects, which S3-compatible servers require", async () => {
    script((req, res) => {
      const body = '<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult></DeleteResult>';
      res.writeHead(200, { "Content-Type": "application/xml", "Content-Length": Buffer.byteLength(body) });
      res.end(body);
    });
    await open(url).deleteMany(["a", "b/c"]).toMap();
    expect(seen).toHaveLength(1);
    expect(seen[0].method).toBe("POST");
    expect(seen[0].url).toMatch(/^\/test\/?\?delete/);
    expect(seen[0].headers["content-md5"]).toBe(createHash("md5").update(seen[0].body).digest("base64"));
    expect(Object.keys(seen[0].headers).filter((h) => h.startsWith("x-amz-checksum"))).toEqual([]);
    expect(seen[0].body.toString()).toMatch(/<Key>a<\/Key>.*<Key>b\/c<\/Key>/s);
  });

  it("reports per-key DeleteObjects errors instead of calling the keys deleted", async () => {
    script((_req, res) => {
      const body =
        '<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult><Error><Key>b</Key><Code>AccessDenied</Code>' +
        "<Message>Access Denied</Message></Error></DeleteResult>";
      res.writeHead(200, { "Content-Type": "application/xml", "Content-Length": Buffer.byteLength(body) });
      res.end(body);
    });
    const error = await open(url).deleteMany(["a", "b"]).toMap().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ key: "b", retryable: false });
    expect((error as Error).message).toMatch(/1 of 2 deletes failed.*AccessDenied/);
  });

  it("does not retry 403 and does not call it missing", async () => {
    script((_req, res) => xmlError(res, 403, "AccessDenied", "Access Denied"));
    const error = await open(url).get("k").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ status: 403, retryable: false, attempts: 1 });
    expect((error as Error).message).toMatch(/access denied.*AccessDenied/i);
    expect(seen).toHaveLength(1);
  });

  it("treats NoSuchBucket as a failure, NoSuchKey as missing", async () => {
    script((_req, res) => xmlError(res, 404, "NoSuchBucket", "The specified bucket does not exist"));
    await expect(open(url).get("k")).rejects.toThrow(/NoSuchBucket/);
    script((_req, res) => xmlError(res, 404, "NoSuchKey", "The specified key does not exist."));
    expect(await open(url).get("k")).toBeUndefined();
  });

  it("retries S3's 400 RequestTimeout (a slow upload), then succeeds", async () => {
    let calls = 0;
    script((_req, res) => {
      if (calls++ === 0) {
        return xmlError(res, 400, "RequestTimeout", "Your socket connection to the server was not read from.");
      }
      res.writeHead(200, { ETag: '"x"', "Content-Length": 0 });
      res.end();
    });
    const store = open(url);
    await store.set("k", new Uint8Array([1, 2, 3]));
    expect(seen).toHaveLength(2);
    expect(store.stats.retries).toBe(1);
  });

  it("uses a correct server's suffix range in one request", async () => {
    const object = bytes(1000, 5);
    script((req, res) => {
      expect(req.headers.range).toBe("bytes=-100");
      res.writeHead(206, { "Content-Range": "bytes 900-999/1000", "Content-Length": 100, ETag: '"abc"' });
      res.end(object.subarray(900));
    });
    expect(await open(url).getRange("k", { suffixLength: 100 })).toEqual(object.subarray(900));
    expect(seen).toHaveLength(1);
  });

  it("sends no Authorization header when anonymous", async () => {
    const object = new TextEncoder().encode("public data");
    script((_req, res) => {
      res.writeHead(200, { "Content-Length": object.length });
      res.end(object);
    });
    const store = open(url, { anonymous: true, credentials: undefined });
    expect(await store.get("k")).toEqual(object);
    expect(seen[0].headers.authorization).toBeUndefined();
    expect(Object.keys(seen[0].headers).filter((h) => h.startsWith("x-amz-security"))).toEqual([]);
  });

  it("finds credentials through the SDK's chain: environment, then a named profile", async () => {
    const object = new TextEncoder().encode("signed");
    script((_req, res) => {
      res.writeHead(200, { "Content-Length": object.length });
      res.end(object);
    });
    const names = [
      "AWS_ACCESS_KEY_ID",
      "AWS_SECRET_ACCESS_KEY",
      "AWS_SESSION_TOKEN",
      "AWS_PROFILE",
      "AWS_SHARED_CREDENTIALS_FILE",
      "AWS_CONFIG_FILE",
    ];
    const saved = Object.fromEntries(names.map((n) => [n, process.env[n]]));
    const dir = await mkdtemp(join(tmpdir(), "s3-creds-"));
    try {
      for (const n of names) delete process.env[n];
      process.env.AWS_ACCESS_KEY_ID = "FROMENVIRONMENT";
      process.env.AWS_SECRET_ACCESS_KEY = "secret";
      expect(await open(url, { credentials: undefined }).get("k")).toEqual(object);
      expect(seen.at(-1)!.headers.authorization).toMatch(/Credential=FROMENVIRONMENT\//);

      delete process.env.AWS_ACCESS_KEY_ID;
      delete process.env.AWS_SECRET_ACCESS_KEY;
      await writeFile(
        join(dir, "credentials"),
        "[default]\naws_access_key_id = DEFAULTPROFILE\naws_secret_access_key = s\n" +
          "[archive]\naws_access_key_id = ARCHIVEPROFILE\naws_secret_access_key = s\naws_session_token = tok\n",
      );
      await writeFile(join(dir, "config"), "[default]\nregion = us-east-1\n");
      process.env.AWS_SHARED_CREDENTIALS_FILE = join(dir, "credentials");
      process.env.AWS_CONFIG_FILE = join(dir, "config");
      expect(await open(url, { credentials: undefined, profile: "archive" }).get("k")).toEqual(object);
      expect(seen.at(-1)!.headers.authorization).toMatch(/Credential=ARCHIVEPROFILE\//);
      expect(seen.at(-1)!.headers["x-amz-security-token"]).toBe("tok");
    } finally {
      for (const n of names) {
        if (saved[n] === undefined) delete process.env[n];
        else process.env[n] = saved[n];
      }
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("passes the caller's abort through without retrying", async () => {
    script(() => undefined); // never answers
    const controller = new AbortController();
    const store = open(url, { retry: { attempts: 5, baseDelayMs: 1, maxDelayMs: 2 } });
    const pending = store.get("k", { signal: controller.signal }).catch((e: unknown) => e);
    await new Promise((done) => setTimeout(done, 100));
    controller.abort(new Error("user gave up"));
    const error = await pending;
    expect(error).not.toBeInstanceOf(StoreError);
    expect(seen).toHaveLength(1);
    expect(store.stats.retries).toBe(0);
  });

  it("follows S3's 301 region redirect and signs for the bucket's region", async () => {
    const object = new TextEncoder().encode("from eu-west-2");
    script((req, res) => {
      if (seen.length === 1) {
        const body =
          '<?xml version="1.0" encoding="UTF-8"?>\n' +
          "<Error><Code>PermanentRedirect</Code><Message>use the right endpoint</Message></Error>";
        res.writeHead(301, {
          "x-amz-bucket-region": "eu-west-2",
          "Content-Type": "application/xml",
          "Content-Length": Buffer.byteLength(body),
        });
        return res.end(body);
      }
      res.writeHead(200, { "Content-Length": object.length });
      res.end(object);
    });
    expect(await open(url, { region: "us-east-1" }).get("k")).toEqual(object);
    expect(seen).toHaveLength(2);
    expect(seen[0].headers.authorization).toMatch(/\/us-east-1\/s3\/aws4_request/);
    expect(seen[1].headers.authorization).toMatch(/\/eu-west-2\/s3\/aws4_request/);
  });

  it("cuts off a body that stalls after the headers (timeout, retried, then reported)", async () => {
    script((_req, res) => {
      res.writeHead(200, { "Content-Length": 100 });
      res.write(Buffer.alloc(10)); // ... and nothing more
    });
    const store = open(url, { timeoutMs: 300, retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 } });
    const error = await store.get("k").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ retryable: true, attempts: 2 });
    expect((error as Error).message).toMatch(/timed out after 300 ms/);
    expect(seen).toHaveLength(2);
  });

  it("does not believe a lying Content-Length", async () => {
    // Announces 10 GiB, sends 10 bytes and closes: a retryable failure, not a 10 GiB buffer.
    script((req, res) => {
      res.socket!.write("HTTP/1.1 200 OK\r\nContent-Length: 10737418240\r\nConnection: close\r\n\r\n0123456789");
      res.socket!.end();
    });
    const error = await open(url, { retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 } })
      .get("k")
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ retryable: true, attempts: 2 });
  });

  it("rejects a body that disagrees with its MD5 ETag", async () => {
    const object = new TextEncoder().encode("the real bytes");
    const wrong = createHash("md5").update("other bytes").digest("hex");
    script((_req, res) => {
      res.writeHead(200, { "Content-Length": object.length, ETag: `"${wrong}"` });
      res.end(object);
    });
    const error = await open(url, { retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 } })
      .get("k")
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IntegrityError);
    expect(seen).toHaveLength(2);
    // A multipart ETag ("<hex>-<parts>") is not an MD5 of the bytes and is not checked.
    script((_req, res) => {
      res.writeHead(200, { "Content-Length": object.length, ETag: `"${wrong}-3"` });
      res.end(object);
    });
    expect(await open(url).get("k")).toEqual(object);
  });
});
