/**
 * Operations side of the server: allow-list and SSRF refusals, limits (body, shape, size, decoded
 * size), bogus and bomb-like compressed data, credentials kept out of logs, the memory budget under
 * concurrent load, Reductionist's error statuses, metrics, schema, cache, TLS and graceful shutdown.
 */
import { execFileSync } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import { Agent } from "undici";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { LogEntry } from "../src/server/config.js";
import { startServer, type ReductionServer } from "../src/server/index.js";
import { S3Store } from "../src/stores/s3.js";
import { basic, decode, post, responseValues } from "./fixtures/server/harness.js";
import { startHttpServer, type TestServer } from "./servers/nginx.js";
import { startS3rver, S3RVER_CREDENTIALS, type S3rverHandle } from "./servers/s3rver.js";

let s3: S3rverHandle;
let store: S3Store;
let dir: string;
const auth = basic("S3RVER", "S3RVER");
const started: ReductionServer[] = [];

async function serve(options: Parameters<typeof startServer>[0] = {}): Promise<ReductionServer> {
  const s = await startServer({ port: 0, allowHosts: ["127.0.0.1"], logger: () => undefined, ...options });
  started.push(s);
  return s;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "server-sec-"));
  s3 = await startS3rver({ buckets: ["data"] });
  store = new S3Store({ bucket: "data", endpoint: s3.endpoint, forcePathStyle: true, credentials: S3RVER_CREDENTIALS });
  await store.set("ints.bin", new Uint8Array(new Int32Array(Array.from({ length: 1024 }, (_, i) => i)).buffer));
  await store.set("bogus.z", new Uint8Array([0x78, 0x9c, 1, 2, 3, 4, 5, 6, 7, 8]));
  await store.set("bomb.z", deflateSync(new Uint8Array(8 << 20))); // 8 MiB of zeros in ~8 KiB
}, 60_000);

afterAll(async () => {
  await Promise.all(started.map((s) => s.close()));
  await store?.close();
  await s3?.stop();
  await rm(dir, { recursive: true, force: true });
});

const ints = () => ({ interface_type: "s3", url: `${s3.endpoint}/data/ints.bin`, dtype: "int32", shape: [1024] });

describe("upstream hosts", () => {
  test("a host not on the allow-list is refused before any connection", async () => {
    const srv = await serve({ allowHosts: ["data.example.org"] });
    const res = await post(srv.url, "sum", ints(), auth);
    expect(res.status).toBe(403);
    expect(JSON.stringify(res.body)).toContain("--allow-host 127.0.0.1");
  });

  test("with '*', loopback and link-local metadata addresses are still refused unless named", async () => {
    const srv = await serve({ allowHosts: ["*"] });
    for (const url of ["http://169.254.169.254/latest/meta-data/x", `${s3.endpoint}/data/ints.bin`, "http://[::1]:9/b/k", "http://metadata.google.internal/b/k"]) {
      const res = await post(srv.url, "sum", { interface_type: "http", url, dtype: "int32" });
      expect(res.status, url).toBe(403);
    }
  });

  test("the default configuration allows no upstream at all", async () => {
    const srv = await serve({ allowHosts: [] });
    expect((await post(srv.url, "sum", ints(), auth)).status).toBe(403);
  });
});

describe("limits and bad input", () => {
  test("an oversized body gets 413, an oversized shape or size 400 naming the field", async () => {
    const srv = await serve({ maxBodyBytes: 1024, maxDecodedBytes: 1 << 20, maxChunkBytes: 1 << 16 });
    const big = await post(srv.url, "sum", JSON.stringify({ ...ints(), pad: "x".repeat(2000) }));
    expect(big.status).toBe(413);
    const shape = await post(srv.url, "sum", { ...ints(), shape: [1 << 20, 4] }, auth);
    expect(shape.status).toBe(400);
    expect(JSON.stringify(shape.body)).toContain("shape");
    const size = await post(srv.url, "sum", { ...ints(), shape: undefined, size: 1 << 20 }, auth);
    expect(size.status).toBe(400);
    expect(JSON.stringify(size.body)).toContain("size");
  });

  test("Reductionist's validation errors: unknown field, bad dtype, selection without shape, unsorted axes", async () => {
    const srv = await serve();
    const cases: [Record<string, unknown>, string][] = [
      [{ ...ints(), colour: "red" }, "unknown field `colour`"],
      [{ ...ints(), dtype: "complex64" }, "dtype"],
      [{ ...ints(), shape: undefined, selection: [[0, 5, 1]] }, "Selection requires shape"],
      [{ ...ints(), shape: [32, 32], axis: [1, 0] }, "ascending"],
      [{ ...ints(), selection: [[0, 5, 0]] }, "stride"],
      [{ ...ints(), missing: { missing_value: -1.0, valid_min: 3 } }, "exactly one"],
      [{ ...ints(), missing: { missing_value: 2 ** 31 } }, "does not fit int32"],
      [{ ...ints(), size: 100 }, "Raw data size"],
    ];
    for (const [body, text] of cases) {
      const res = await post(srv.url, "sum", body, auth);
      expect(res.status, text).toBe(400);
      expect(res.type).toBe("application/json");
      expect((res.body as { error: { message: string } }).error.message).toBe("request data is not valid");
      expect(JSON.stringify(res.body)).toContain(text);
    }
    // -1.0 is not an integer for an int dtype even though JSON.parse would make it -1.
    const float = await post(srv.url, "sum", `{"interface_type":"s3","url":"${s3.endpoint}/data/ints.bin","dtype":"int32","missing":{"missing_value":-1.0}}`, auth);
    expect(float.status).toBe(400);
  });

  test("bogus compressed bytes are a 400, and a decompression bomb stops at the expected size", async () => {
    const srv = await serve();
    const bogus = await post(srv.url, "sum", { interface_type: "s3", url: `${s3.endpoint}/data/bogus.z`, dtype: "int32", shape: [4], compression: { id: "zlib" } }, auth);
    expect(bogus.status).toBe(400);
    expect((bogus.body as { error: { message: string } }).error.message).toBe("failed to decompress data");
    const bomb = await post(srv.url, "sum", { interface_type: "s3", url: `${s3.endpoint}/data/bomb.z`, dtype: "int32", shape: [16], compression: { id: "zlib" } }, auth);
    expect(bomb.status).toBe(400);
  });

  test("unknown operation 404, wrong method 405, trailing slash accepted", async () => {
    const srv = await serve();
    expect((await post(srv.url, "mean", ints(), auth)).status).toBe(404);
    expect((await fetch(`${srv.url}/v2/sum`)).status).toBe(405);
    expect((await post(srv.url, "sum/", ints(), auth)).status).toBe(200);
  });
});

describe("upstream failures map to Reductionist's statuses", () => {
  test("missing object 400 naming NoSuchKey; bad S3 credentials 401; absent range 400", async () => {
    const srv = await serve();
    const missing = await post(srv.url, "sum", { ...ints(), url: `${s3.endpoint}/data/nope.bin` }, auth);
    expect(missing.status).toBe(400);
    expect(JSON.stringify(missing.body)).toContain("NoSuchKey");
    const denied = await post(srv.url, "sum", ints(), basic("AKIDWRONG", "sup3rs3cret"));
    expect(denied.status).toBe(401);
    const beyond = await post(srv.url, "sum", { ...ints(), shape: undefined, offset: 4000, size: 400 }, auth);
    expect(beyond.status).toBe(400);
  });

  test("an unreachable upstream is a 500 (retryable for clients)", async () => {
    const srv = await serve({ upstreamAttempts: 1, allowHosts: ["127.0.0.1"] });
    const res = await post(srv.url, "sum", { interface_type: "http", url: "http://127.0.0.1:9/x.bin", dtype: "int32", size: 4 });
    expect(res.status).toBe(500);
  });

  test("HTTP upstreams get the request's basic credentials", async () => {
    await writeFile(join(dir, "ints.bin"), new Uint8Array(new Int32Array([5, 6, 7]).buffer));
    const http: TestServer = await startHttpServer(dir, { auth: { username: "admin", password: "pw" } });
    try {
      const srv = await serve();
      const body = { interface_type: "http", url: `${http.url}/ints.bin`, dtype: "int32" };
      const ok = await post(srv.url, "sum", body, basic("admin", "pw"));
      expect(ok.status).toBe(200);
      expect(responseValues(ok.body.bytes as Uint8Array, "int32")).toEqual([18]);
      expect((await post(srv.url, "sum", body)).status).toBe(401);
    } finally {
      await http.stop();
    }
  });
});

test("credentials never reach the log, even on failures", async () => {
  const logs: LogEntry[] = [];
  const srv = await serve({ logger: (e) => logs.push(e) });
  const secret = "sup3rs3cret-Xy9";
  await post(srv.url, "sum", ints(), basic("AKIDWRONG", secret));
  await post(srv.url, "sum", { ...ints(), url: `${s3.endpoint}/data/nope.bin` }, basic("S3RVER", secret));
  await post(srv.url, "sum", { interface_type: "http", url: "http://127.0.0.1:9/x.bin", dtype: "int32", size: 4 }, basic("u", secret));
  const text = JSON.stringify(logs);
  expect(logs.length).toBeGreaterThanOrEqual(3);
  expect(text).not.toContain(secret);
  expect(text).not.toContain(Buffer.from(`AKIDWRONG:${secret}`).toString("base64"));
  expect(text).not.toContain("Basic ");
});

test("concurrent load stays inside the memory budget; a request larger than the budget is refused", async () => {
  const perRequest = 4096 + 2 * 4096; // fetched + decoded + typed copy for ints.bin
  const srv = await serve({ memoryBytes: 3 * perRequest, maxQueue: 100 });
  const results = await Promise.all(Array.from({ length: 24 }, () => post(srv.url, "max", ints(), auth)));
  expect(results.map((r) => r.status)).toEqual(new Array(24).fill(200));
  expect(srv.budget.peak).toBeLessThanOrEqual(3 * perRequest);
  expect(srv.budget.peak).toBeGreaterThanOrEqual(perRequest);
  expect(srv.budget.inUse).toBe(0);
  const tiny = await serve({ memoryBytes: 1000 });
  const refused = await post(tiny.url, "max", ints(), auth);
  expect(refused.status).toBe(400);
  expect(JSON.stringify(refused.body)).toContain("Insufficient memory");
});

test("a full queue answers 503", async () => {
  const srv = await serve({ memoryBytes: 12288, maxQueue: 0 });
  const results = await Promise.all(Array.from({ length: 8 }, () => post(srv.url, "max", ints(), auth)));
  const statuses = results.map((r) => r.status);
  expect(statuses).toContain(200);
  expect(statuses).toContain(503);
  expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
});

test("metrics count requests by operation and status; the schema is a real JSON schema", async () => {
  const srv = await serve();
  await post(srv.url, "sum", ints(), auth);
  await post(srv.url, "sum", { ...ints(), dtype: "nope" }, auth);
  const text = await (await fetch(`${srv.url}/metrics`)).text();
  expect(text).toContain('activestore_requests_total{operation="sum",status_code="200"} 1');
  expect(text).toContain('activestore_requests_total{operation="sum",status_code="400"} 1');
  expect(text).toMatch(/activestore_upstream_bytes_total 4096/);
  expect(text).toMatch(/activestore_request_duration_seconds_count\{operation="sum"\} 2/);
  const schema = (await (await fetch(`${srv.url}/.well-known/reductionist-schema`)).json()) as {
    $schema: string; required: string[]; properties: Record<string, unknown>; additionalProperties: boolean;
  };
  expect(schema.$schema).toContain("json-schema.org");
  expect(schema.required).toEqual(["interface_type", "url", "dtype"]);
  expect(schema.additionalProperties).toBe(false);
  expect(Object.keys(schema.properties)).toContain("option_count_as_bytes");
});

test("chunk cache: a second read is served from disk; other credentials never share an entry", async () => {
  const srv = await serve({ cache: { dir: join(dir, "cache"), maxBytes: 1 << 20, ttlMs: 60_000 } });
  await post(srv.url, "sum", ints(), auth);
  await post(srv.url, "sum", ints(), auth);
  expect(srv.metrics.cacheHits).toBe(1);
  expect(srv.metrics.upstreamBytes).toBe(4096);
  const other = await post(srv.url, "sum", ints(), basic("AKIDWRONG", "nope"));
  expect(other.status).toBe(401); // not served from the cache
  const off = await post(srv.url, "sum", { ...ints(), option_disable_chunk_cache: true }, auth);
  expect(off.status).toBe(200);
  expect(srv.metrics.upstreamBytes).toBe(8192);
});

test("TLS with --cert/--key", async () => {
  const key = join(dir, "key.pem");
  const cert = join(dir, "cert.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore" });
  const srv = await serve({ tls: { cert, key } });
  expect(srv.url.startsWith("https://")).toBe(true);
  const { readFileSync } = await import("node:fs");
  const dispatcher = new Agent({ connect: { ca: readFileSync(cert) } });
  const { fetch: undiciFetch } = await import("undici");
  const res = await undiciFetch(`${srv.url}/v2/sum`, { method: "POST", body: JSON.stringify(ints()), headers: auth, dispatcher });
  expect(res.status).toBe(200);
  expect(responseValues(decode(new Uint8Array(await res.arrayBuffer())).bytes as Uint8Array, "int32")).toEqual([523776]);
  await dispatcher.close();
});

test("graceful shutdown: in-flight requests finish, new connections are refused", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let arrived!: () => void;
  const reached = new Promise<void>((r) => (arrived = r));
  const slow: Server = createServer((req, res) => {
    arrived();
    void gate.then(() => {
      res.writeHead(206, { "content-range": "bytes 0-7/8", "content-length": 8 });
      res.end(Buffer.from(new Int32Array([20, 22]).buffer));
    });
  });
  await new Promise<void>((r) => slow.listen(0, "127.0.0.1", () => r()));
  const port = (slow.address() as AddressInfo).port;
  const srv = await startServer({ port: 0, allowHosts: ["127.0.0.1"], logger: () => undefined });
  const inflight = post(srv.url, "sum", { interface_type: "http", url: `http://127.0.0.1:${port}/x.bin`, dtype: "int32", size: 8 });
  await reached;
  const closing = srv.close();
  await expect(fetch(`${srv.url}/metrics`)).rejects.toThrow();
  release();
  const res = await inflight;
  expect(res.status).toBe(200);
  expect(responseValues(res.body.bytes as Uint8Array, "int32")).toEqual([42]);
  await closing;
  slow.close();
});

test("a request past its deadline gets 504 and releases its memory", async () => {
  const stuck: Server = createServer(() => undefined); // accepts, never answers
  await new Promise<void>((r) => stuck.listen(0, "127.0.0.1", () => r()));
  const port = (stuck.address() as AddressInfo).port;
  try {
    const srv = await serve({ requestTimeoutMs: 300 });
    const res = await post(srv.url, "sum", { interface_type: "http", url: `http://127.0.0.1:${port}/x.bin`, dtype: "int32", size: 8 });
    expect(res.status).toBe(504);
    expect(JSON.stringify(res.body)).toContain("timed out");
    expect(srv.budget.inUse).toBe(0);
  } finally {
    stuck.closeAllConnections();
    stuck.close();
  }
});
