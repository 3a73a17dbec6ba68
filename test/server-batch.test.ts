/**
 * The batch extension (`POST /v2/<operation>/batch`): one body of shared fields plus `chunks`.
 * Against a real HTTP origin that counts its range GETs: a batch answers exactly what the single
 * requests answer, reads back-to-back chunks with one GET, keeps to the memory budget, and names
 * the chunk a validation error is about; reduceRemote batches by default and gives the same
 * partials as one request per chunk.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { reduceRemote, type RemoteArray, type RemoteChunk } from "../src/active/remote.js";
import { loadCodecChain, registerCodecs } from "../src/codecs/index.js";
import { startServer, type ReductionServer } from "../src/server/index.js";
import { sharedReducePool } from "../src/active/reduce-pool.js";
import { encodeArray, post, prng, values } from "./fixtures/server/harness.js";

const CHUNK = [10, 12];
const N_CHUNKS = 6;
const codecs = [{ id: "shuffle", elementsize: 8 }, { id: "zlib", level: 1 }];
let object: Uint8Array;
/** More objects the origin serves, by path (the worker-path tests). */
const objects = new Map<string, Uint8Array>();
const ranges: { offset: number; size: number }[] = [];
let origin: Server;
let originUrl: string;
let gets = 0;
let server: ReductionServer;

/** A plain HTTP origin with single-range GETs, counting them. */
function startOrigin(): Promise<void> {
  origin = createServer((req, res) => {
    const body = req.url === "/file.bin" ? object : objects.get(req.url ?? "");
    if (!body) return void res.writeHead(404).end();
    gets++;
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
    if (!m) return void res.writeHead(200, { "content-length": body.length }).end(body);
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), body.length - 1);
    res.writeHead(206, { "content-length": end - start + 1, "content-range": `bytes ${start}-${end}/${body.length}` });
    res.end(body.subarray(start, end + 1));
  });
  return new Promise((resolve) => origin.listen(0, "127.0.0.1", () => resolve()));
}

beforeAll(async () => {
  registerCodecs();
  // Chunks back to back after a 16-byte header, as HDF5 writes them.
  const chain = await loadCodecChain(codecs, { dataType: "float64", shape: CHUNK });
  const parts: Uint8Array[] = [new Uint8Array(16)];
  let offset = 16;
  for (let c = 0; c < N_CHUNKS; c++) {
    const encoded = await chain.encode(encodeArray("float64", values("float64", 120, prng(c + 1)), CHUNK, "C", "little"));
    ranges.push({ offset, size: encoded.length });
    parts.push(encoded);
    offset += encoded.length;
  }
  object = new Uint8Array(offset);
  let at = 0;
  for (const p of parts) object.set(p, at), (at += p.length);
  await startOrigin();
  originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
  server = await startServer({ port: 0, allowHosts: ["127.0.0.1"], logger: () => undefined });
});

afterAll(async () => {
  await server?.close();
  origin?.close();
});

const shared = () => ({
  interface_type: "http", dtype: "float64", shape: CHUNK, filters: [{ id: "shuffle", element_size: 8 }], compression: { id: "zlib" },
});
const chunk = (c: number, selection: number[][] = [[0, 10, 1], [0, 12, 1]]) => ({
  url: `${originUrl}/file.bin`, offset: ranges[c].offset, size: ranges[c].size, selection,
});

describe("POST /v2/<operation>/batch", () => {
  test("answers what the single requests answer, reading back-to-back chunks with one GET", async () => {
    const selections = [[[0, 10, 1], [0, 12, 1]], [[1, 9, 2], [0, 12, 3]], [[9, null, -1], [2, 5, 1]]];
    const items = Array.from({ length: N_CHUNKS }, (_, c) => chunk(c, selections[c % 3] as number[][]));
    for (const op of ["moments", "sum", "max"]) {
      gets = 0;
      const singles = [];
      for (const item of items) {
        const r = await post(server.url, op, { ...shared(), ...item });
        expect(r.status).toBe(200);
        singles.push(r.body);
      }
      expect(gets).toBe(N_CHUNKS);
      gets = 0;
      const batch = await post(server.url, `${op}/batch`, { ...shared(), chunks: items });
      expect(batch.status).toBe(200);
      expect(gets).toBe(1);
      expect(batch.body.results).toEqual(singles);
    }
  });

  test("keeps to the memory budget: a batch larger than a quarter of it reads in several groups", async () => {
    // Each chunk holds fetched + 2 × 960 decoded bytes; a 4 KiB budget takes one chunk per group.
    const small = await startServer({ port: 0, allowHosts: ["127.0.0.1"], memoryBytes: 4096, logger: () => undefined });
    try {
      const items = Array.from({ length: N_CHUNKS }, (_, c) => chunk(c));
      const want = await post(server.url, "moments/batch", { ...shared(), chunks: items });
      gets = 0;
      const got = await post(small.url, "moments/batch", { ...shared(), chunks: items });
      expect(got.status).toBe(200);
      expect(got.body).toEqual(want.body);
      expect(gets).toBe(N_CHUNKS);
      expect(small.budget.peak).toBeLessThanOrEqual(4096);
      expect(small.budget.inUse).toBe(0);
    } finally {
      await small.close();
    }
  });

  test("the chunk cache serves a batch's chunks; only the ones it lacks are read", async () => {
    const dir = await mkdtemp(join(tmpdir(), "activestore-batch-cache-"));
    const cached = await startServer({ port: 0, allowHosts: ["127.0.0.1"], cache: { dir, maxBytes: 1 << 20, ttlMs: 60_000 }, logger: () => undefined });
    try {
      const want = await post(server.url, "moments/batch", { ...shared(), chunks: [0, 1, 2, 3].map((c) => chunk(c)) });
      await post(cached.url, "moments", { ...shared(), ...chunk(1) });
      gets = 0;
      const first = await post(cached.url, "moments/batch", { ...shared(), chunks: [0, 1, 2, 3].map((c) => chunk(c)) });
      expect(first.body).toEqual(want.body);
      expect(gets).toBe(2); // chunk 0, then chunks 2-3 coalesced; chunk 1 came from the cache
      gets = 0;
      const second = await post(cached.url, "moments/batch", { ...shared(), chunks: [0, 1, 2, 3].map((c) => chunk(c)) });
      expect(second.body).toEqual(want.body);
      expect(gets).toBe(0);
      expect(cached.metrics.cacheHits).toBe(5);
    } finally {
      await cached.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("moments without M2 or min/max answer empty byte strings for them; other operations refuse the options", async () => {
    const full = await post(server.url, "moments", { ...shared(), ...chunk(0) });
    const lean = await post(server.url, "moments", { ...shared(), ...chunk(0), option_m2: false, option_extremes: false });
    expect(lean.status).toBe(200);
    expect(lean.body).toMatchObject({ m2: new Uint8Array(0), min: new Uint8Array(0), max: new Uint8Array(0) });
    expect((full.body.m2 as Uint8Array).length).toBe(8);
    expect(lean.body.sum).toEqual(full.body.sum);
    expect(lean.body.count).toEqual(full.body.count);
    const sum = await post(server.url, "sum", { ...shared(), ...chunk(0), option_m2: false });
    expect(sum.status).toBe(400);
    expect(JSON.stringify(sum.body)).toContain("option_m2: only the moments operation takes it");
  });

  test("validation errors name the chunk; an empty or oversized list, an unknown route are refused", async () => {
    const unknown = await post(server.url, "moments/batch", { ...shared(), chunks: [chunk(0), { ...chunk(1), dtype: "int8" }] });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({ caused_by: [expect.stringMatching(/^chunks\[1\]: unknown field `dtype`/)] });
    const badSelection = await post(server.url, "sum/batch", { ...shared(), chunks: [chunk(0), chunk(1), chunk(2, [[0, 10, 0], [0, 12, 1]])] });
    expect(badSelection.status).toBe(400);
    expect(JSON.stringify(badSelection.body)).toContain("chunks[2]: selection[0]: Selection stride must not be equal to zero");
    const empty = await post(server.url, "moments/batch", { ...shared(), chunks: [] });
    expect(empty.status).toBe(400);
    expect(JSON.stringify(empty.body)).toContain("chunks: expected a non-empty list");
    const tooMany = await post(server.url, "moments/batch", `{"interface_type":"http","dtype":"float64","chunks":[${Array(1025).fill("{}").join(",")}]}`);
    expect(tooMany.status).toBe(400);
    expect(JSON.stringify(tooMany.body)).toContain("over the limit of 1024");
    expect((await post(server.url, "mean/batch", { ...shared(), chunks: [chunk(0)] })).status).toBe(404);
    expect((await post(server.url, "moments/batch/x", { ...shared(), chunks: [chunk(0)] })).status).toBe(404);
    // A chunk past the end of the object: the read fails for the whole batch, as a single request would.
    const past = await post(server.url, "moments/batch", { ...shared(), chunks: [chunk(0), { ...chunk(1), offset: object.length - 10 }] });
    expect(past.status).toBe(400);
    expect(JSON.stringify(past.body)).toMatch(/beyond the end/);
  });
});

test("reduceRemote batches by default and gives the partials of one request per chunk", async () => {
  const refs: RemoteChunk[] = ranges.map((r) => ({ url: `${originUrl}/file.bin`, offset: r.offset, size: r.size, codecs }));
  const array: RemoteArray = {
    shape: [30, 24], chunks: CHUNK, dtype: "float64", byteOrder: "little", order: "C", interfaceType: "http",
    chunk: ([i, j]) => refs[i * 2 + j],
  };
  const selection = [{ start: 1, stop: 29, step: 1 }, null];
  const one = await reduceRemote(array, selection, { servers: server.url, moments: true, batch: 1 });
  expect(one.requests).toBe(N_CHUNKS);
  gets = 0;
  const batched = await reduceRemote(array, selection, { servers: server.url, moments: true, concurrency: 8, batch: 3 });
  expect(batched.requests).toBe(2);
  expect(gets).toBe(2);
  expect(batched.partials).toEqual(one.partials);
  expect(batched.chunks).toBe(N_CHUNKS);
  expect(batched.bytesReduced).toBe(one.bytesReduced);
  // Never more chunks in a request than half the concurrency: two requests stay in flight.
  const capped = await reduceRemote(array, selection, { servers: server.url, moments: true, concurrency: 2, batch: 8 });
  expect(capped.requests).toBe(N_CHUNKS);
  expect(capped.partials).toEqual(one.partials);
});

describe("moments batches of compressed chunks on the reduce worker threads", () => {
  let on: ReductionServer;
  let off: ReductionServer;
  const big: { offset: number; size: number }[] = [];
  const ints: { offset: number; size: number }[] = [];
  const bad: { offset: number; size: number }[] = [];

  /** Chunks back to back after a 16-byte header, served at `path`; their ranges. */
  async function serveChunks(path: string, parts: Uint8Array[]): Promise<{ offset: number; size: number }[]> {
    const out: { offset: number; size: number }[] = [];
    const all = new Uint8Array(16 + parts.reduce((n, p) => n + p.length, 0));
    let at = 16;
    for (const p of parts) out.push({ offset: at, size: p.length }), all.set(p, at), (at += p.length);
    objects.set(path, all);
    return out;
  }

  beforeAll(async () => {
    on = await startServer({ port: 0, allowHosts: ["127.0.0.1"], reduceThreads: 2, logger: () => undefined });
    off = await startServer({ port: 0, allowHosts: ["127.0.0.1"], reduceThreads: 0, logger: () => undefined });
    const chain = await loadCodecChain(codecs, { dataType: "float64", shape: CHUNK });
    const bigParts = [];
    for (let c = 0; c < 4; c++) bigParts.push(await chain.encode(encodeArray("float64", values("float64", 120, prng(c + 11)), CHUNK, "C", "big")));
    big.push(...(await serveChunks("/big.bin", bigParts)));
    const intChain = await loadCodecChain([{ id: "shuffle", elementsize: 4 }, { id: "zlib", level: 1 }], { dataType: "int32", shape: CHUNK });
    const intParts = [];
    for (let c = 0; c < 4; c++) intParts.push(await intChain.encode(encodeArray("int32", values("int32", 120, prng(c + 21)), CHUNK, "C", "little")));
    ints.push(...(await serveChunks("/int.bin", intParts)));
    // A good chunk, bytes that are no zlib stream, and a zlib stream 100 values long where 120 are due.
    const short = await loadCodecChain(codecs, { dataType: "float64", shape: [10, 10] });
    const badParts = [
      (await chain.encode(encodeArray("float64", values("float64", 120, prng(31)), CHUNK, "C", "little"))),
      new TextEncoder().encode("not a zlib stream at all, just text"),
      await short.encode(encodeArray("float64", values("float64", 100, prng(32)), [10, 10], "C", "little")),
    ];
    bad.push(...(await serveChunks("/bad.bin", badParts)));
  });
  afterAll(async () => {
    await on?.close();
    await off?.close();
  });

  const at = (path: string, r: { offset: number; size: number }, selection?: (number | null)[][]) => ({
    url: `${originUrl}${path}`, offset: r.offset, size: r.size, ...(selection && { selection }),
  });

  /** The same batch with reduceThreads 2 (workers) and 0 (today's path): the same status and CBOR. */
  async function both(body: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown>; used: number }> {
    const before = sharedReducePool()?.stats.batches ?? 0;
    const threaded = await post(on.url, "moments/batch", body);
    const used = (sharedReducePool()?.stats.batches ?? 0) - before;
    const old = await post(off.url, "moments/batch", body);
    expect(threaded.status).toBe(old.status);
    expect(threaded.body).toEqual(old.body);
    return { status: threaded.status, body: threaded.body, used };
  }

  test("zlib + shuffle, with selections: the workers answer what today's path answers", async () => {
    const selections = [[[0, 10, 1], [0, 12, 1]], [[1, 9, 2], [0, 12, 3]], [[9, null, -1], [2, 5, 1]]];
    const items = Array.from({ length: N_CHUNKS }, (_, c) => chunk(c, selections[c % 3] as number[][]));
    const r = (await both({ ...shared(), chunks: items })) as { status: number; used: number };
    expect(r.status).toBe(200);
    expect(r.used).toBe(1); // one group, one batch at the workers
    const lean = (await both({ ...shared(), chunks: items, option_m2: false, option_extremes: false })) as { used: number };
    expect(lean.used).toBe(1);
  });

  test("big-endian data, an axis, int32 with a missing value", async () => {
    const bigShared = { ...shared(), byte_order: "big" };
    const b = (await both({ ...bigShared, chunks: big.map((r) => at("/big.bin", r)) })) as { status: number; used: number };
    expect(b.status).toBe(200);
    expect(b.used).toBe(1);
    const axis = (await both({ ...bigShared, axis: [1], chunks: big.map((r, i) => at("/big.bin", r, [[i, 10, 1], [0, 12, 2]])) })) as {
      status: number; body: { shape: number[] }; used: number;
    };
    expect(axis.status).toBe(200);
    expect(axis.used).toBe(1);
    const intShared = { ...shared(), dtype: "int32", filters: [{ id: "shuffle", element_size: 4 }], missing: { missing_value: 7 } };
    const i = (await both({ ...intShared, axis: [0], chunks: ints.map((r) => at("/int.bin", r)) })) as { status: number; used: number };
    expect(i.status).toBe(200);
    expect(i.used).toBe(1);
  });

  test("a corrupt chunk in a batch: today's status and error body", async () => {
    const corrupt = await both({ ...shared(), chunks: [at("/bad.bin", bad[0]), at("/bad.bin", bad[1])] });
    expect(corrupt.status).toBe(400);
    expect(corrupt.body.error).toMatchObject({ message: "failed to decompress data" });
    const good = (await both({ ...shared(), chunks: [at("/bad.bin", bad[0])] })) as { status: number; used: number };
    expect(good.status).toBe(200);
    expect(good.used).toBe(1);
  });

  // A zlib stream of 100 values where 120 are due: the worker checks the decoded size (as the codec
  // chain does), so the group falls back to today's path and answers its 400, never values read past the end.
  test("a chunk that decodes to the wrong size: today's 400", async () => {
    const short = (await both({ ...shared(), chunks: [at("/bad.bin", bad[0]), at("/bad.bin", bad[2])] })) as { status: number };
    expect(short.status).toBe(400);
  });
});
