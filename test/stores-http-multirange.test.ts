/**
 * Multi-range HTTP reads: `HttpStore.getRanges` sends the coalesced spans of one object in one GET
 * (`Range: bytes=a-b,c-d`) and takes the answer apart — multipart/byteranges from nginx and the
 * Node test server, a single merged part, or 200 with the whole object — and refuses answers that
 * drop, cut or invent parts. The HDF5 reader over HTTP reads a scattered B-tree level this way.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { IntegrityError, StoreError } from "../src/errors.js";
import { openHdf5 } from "../src/hdf5/file.js";
import { byteSourceFromStore } from "../src/hdf5/io.js";
import type { Dataset } from "../src/hdf5/model.js";
import { buildFromReader, buildReferences } from "../src/refs/build.js";
import { filtersToCodecs } from "../src/refs/filters.js";
import { openByteSource } from "../src/refs/source.js";
import { HttpStore } from "../src/stores/http.js";
import { byterangesBoundary, groupForMultiRange, parseByteranges } from "../src/stores/multipart.js";
import { NGINX, startNginx, startStaticServer, type TestServer } from "./servers/nginx.js";

const retry = { baseDelayMs: 5, attempts: 3 };
let root: string;
const payload = new Uint8Array(300_000).map((_, i) => (i * 31 + (i >> 8)) & 0xff);

/** Scattered ranges, out of order, some overlapping, one running past the end of the object. */
const scattered = [
  { offset: 250_000, length: 100 },
  { offset: 10, length: 20 },
  { offset: 100_000, length: 5000 },
  { offset: 100_010, length: 10 },
  { offset: 299_990, length: 50 },
  { offset: 50_000, length: 1 },
];
const expected = (ranges: { offset: number; length: number }[]) =>
  ranges.map((r) => payload.subarray(r.offset, Math.min(r.offset + r.length, payload.length)));

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "activestore-multirange-"));
  await writeFile(join(root, "blob.bin"), payload);
  await writeFile(join(root, "zipped.bin.gz"), gzipSync(payload));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const servers: [string, () => Promise<TestServer>][] = [
  ["Node static server", () => startStaticServer(root)],
  ...(existsSync(NGINX) ? [["nginx", () => startNginx(root)] as [string, () => Promise<TestServer>]] : []),
];

describe.each(servers)("getRanges over %s", (_name, start) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await start();
  });
  afterAll(async () => {
    await server?.stop();
  });

  test("scattered ranges come back exact from one request", async () => {
    const store = new HttpStore(server.url, { retry });
    try {
      const parts = await store.getRanges("blob.bin", scattered, { coalesceGap: 0 });
      expect(parts).toEqual(expected(scattered));
      expect(store.stats.requests).toBe(1);
      expect(store.stats.retries).toBe(0);
    } finally {
      await store.close();
    }
  });

  test("more spans than one request takes go in ceil(n / maxRangesPerRequest) requests", async () => {
    const ranges = Array.from({ length: 300 }, (_, i) => ({ offset: i * 997, length: 7 + (i % 5) }));
    const store = new HttpStore(server.url, { retry, maxRangesPerRequest: 128 });
    try {
      expect(await store.getRanges("blob.bin", ranges, { coalesceGap: 0 })).toEqual(expected(ranges));
      expect(store.stats.requests).toBe(3);
    } finally {
      await store.close();
    }
  });

  test("a missing object is undefined; ranges wholly past the end are empty", async () => {
    const store = new HttpStore(server.url, { retry });
    try {
      expect(await store.getRanges("nope.bin", scattered, { coalesceGap: 0 })).toBeUndefined();
      const past = [
        { offset: 400_000, length: 10 },
        { offset: 500_000, length: 10 },
      ];
      expect(await store.getRanges("blob.bin", past, { coalesceGap: 0 })).toEqual([new Uint8Array(0), new Uint8Array(0)]);
      const mixed = [{ offset: 5, length: 5 }, ...past];
      expect(await store.getRanges("blob.bin", mixed, { coalesceGap: 0 })).toEqual(expected(mixed));
    } finally {
      await store.close();
    }
  });

  test("multiRange: false sends one request per span", async () => {
    const store = new HttpStore(server.url, { retry, multiRange: false });
    try {
      expect(await store.getRanges("blob.bin", scattered, { coalesceGap: 0 })).toEqual(expected(scattered));
      expect(store.multiRange).toBe(false);
      expect(store.stats.requests).toBe(5); // the two overlapping ranges share a span
    } finally {
      await store.close();
    }
  });
});

describe("servers that answer a multi-range request otherwise", () => {
  test("ranges of a compressed object are refused unless raw (they are not ranges of the data)", async () => {
    // The Node server serves `zipped.bin` from its .gz sidecar with Content-Encoding (nginx would not).
    const server = await startStaticServer(root);
    const store = new HttpStore(server.url, { retry, acceptCompressed: true });
    try {
      const ranges = [
        { offset: 0, length: 4 },
        { offset: 100, length: 4 },
      ];
      const error = await store.getRanges("zipped.bin", ranges, { coalesceGap: 0 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreError);
      expect(String(error)).toMatch(/Content-Encoding gzip/);
      const raw = await store.getRanges("zipped.bin", ranges, { coalesceGap: 0, raw: true });
      const gz = gzipSync(payload);
      expect(raw).toEqual([gz.subarray(0, 4), gz.subarray(100, 104)].map((b) => new Uint8Array(b)));
    } finally {
      await store.close();
      await server.stop();
    }
  });

  test("200 with the whole object (Range ignored) is sliced", async () => {
    const server = await startStaticServer(root, { ignoreRange: true });
    const store = new HttpStore(server.url, { retry });
    try {
      expect(await store.getRanges("blob.bin", scattered, { coalesceGap: 0 })).toEqual(expected(scattered));
      expect(store.stats.requests).toBe(1);
    } finally {
      await store.close();
      await server.stop();
    }
  });

  test("one 206 part covering every range (a merging server) is cut apart", async () => {
    const server = await startStaticServer(root, { mergeRanges: true });
    const store = new HttpStore(server.url, { retry });
    try {
      expect(await store.getRanges("blob.bin", scattered, { coalesceGap: 0 })).toEqual(expected(scattered));
      expect(store.stats.requests).toBe(1);
    } finally {
      await store.close();
      await server.stop();
    }
  });
});

// ---- lying servers: every answer below is wrong in one way ----

type Spec = { start: number; end: number };
function requested(req: IncomingMessage): Spec[] {
  return (req.headers.range ?? "")
    .replace(/^bytes=/, "")
    .split(",")
    .map((s) => s.split("-").map(Number))
    .map(([start, end]) => ({ start, end }));
}
function multipart(parts: { range: string; data: Uint8Array }[], boundary = "XyZ", closing = true): Buffer {
  const pieces: Buffer[] = [];
  for (const p of parts) {
    pieces.push(Buffer.from(`\r\n--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes ${p.range}\r\n\r\n`));
    pieces.push(Buffer.from(p.data));
  }
  if (closing) pieces.push(Buffer.from(`\r\n--${boundary}--\r\n`));
  return Buffer.concat(pieces);
}
const honest = (req: IncomingMessage) =>
  requested(req).map(({ start, end }) => ({ range: `${start}-${end}/${payload.length}`, data: payload.subarray(start, end + 1) }));

async function withServer(handler: (req: IncomingMessage, res: ServerResponse, n: number) => void, run: (store: HttpStore) => Promise<void>) {
  let n = 0;
  const server: Server = createServer((req, res) => handler(req, res, ++n));
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const store = new HttpStore(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { retry });
  try {
    await run(store);
  } finally {
    await store.close();
    server.closeAllConnections();
    await new Promise<void>((done) => server.close(() => done()));
  }
}
const sendParts = (res: ServerResponse, body: Buffer) =>
  res.writeHead(206, { "Content-Type": "multipart/byteranges; boundary=XyZ", "Content-Length": body.length }).end(body);

const two = [
  { offset: 1000, length: 100 },
  { offset: 200_000, length: 100 },
];

describe("multi-range answers that are not the bytes asked for", () => {
  const cases: [string, (req: IncomingMessage) => Buffer][] = [
    ["a part missing", (req) => multipart(honest(req).slice(0, 1))],
    ["a part cut short (delimiter early)", (req) => multipart(honest(req).map((p, i) => (i === 1 ? { ...p, data: p.data.subarray(0, 50) } : p)))],
    ["a part longer than its Content-Range", (req) => multipart(honest(req).map((p) => ({ ...p, data: Buffer.concat([p.data, Buffer.from("extra")]) })))],
    ["a part that is no requested range", (req) => multipart([...honest(req), { range: `5-9/${payload.length}`, data: payload.subarray(5, 10) }])],
    ["a part shifted by one byte", (req) => multipart(honest(req).map((p, i) => (i === 0 ? { range: `1001-1100/${payload.length}`, data: payload.subarray(1001, 1101) } : p)))],
    ["the body ending inside the last part", (req) => multipart(honest(req), "XyZ", false).subarray(0, -30)],
  ];
  test.each(cases)("%s: IntegrityError after the retries, never other bytes", async (_name, answer) => {
    await withServer(
      (req, res) => sendParts(res, answer(req)),
      async (store) => {
        const error = await store.getRanges("blob.bin", two, { coalesceGap: 0 }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(IntegrityError);
        expect((error as IntegrityError).attempts).toBe(retry.attempts);
        expect(String(error)).toMatch(/blob\.bin/);
      },
    );
  });

  test("a bad answer followed by a good one: retried, exact bytes", async () => {
    await withServer(
      (req, res, n) => sendParts(res, multipart(n === 1 ? honest(req).slice(1) : honest(req))),
      async (store) => {
        expect(await store.getRanges("blob.bin", two, { coalesceGap: 0 })).toEqual(expected(two));
        expect(store.stats.retries).toBe(1);
      },
    );
  });

  test("an endless body is cut off at what the ranges can weigh", async () => {
    let sent = 0;
    await withServer(
      (_req, res) => {
        res.writeHead(206, { "Content-Type": "multipart/byteranges; boundary=XyZ" });
        const chunk = Buffer.alloc(64 * 1024, 0x41);
        const pump = () => {
          while (!res.destroyed && sent < 1e9 && res.write(chunk)) sent += chunk.length;
          if (!res.destroyed && sent < 1e9) res.once("drain", pump);
        };
        res.on("close", () => res.removeAllListeners("drain"));
        pump();
      },
      async (store) => {
        const error = await store.getRanges("blob.bin", two, { coalesceGap: 0 }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(IntegrityError);
        expect(String(error)).toMatch(/longer than \d+ bytes/);
      },
    );
    expect(sent).toBeLessThan(64 * 1024 * 1024);
  });

  test("a 200 (Range ignored) whose body stops before the last range: IntegrityError", async () => {
    await withServer(
      (_req, res) => {
        res.writeHead(200, { "Content-Length": payload.length });
        res.write(payload.subarray(0, 150_000));
        setImmediate(() => res.destroy());
      },
      async (store) => {
        const error = await store.getRanges("blob.bin", two, { coalesceGap: 0 }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(IntegrityError);
        expect((error as IntegrityError).attempts).toBe(retry.attempts);
      },
    );
  });

  test("a 206 without multipart or Content-Range is refused", async () => {
    await withServer(
      (_req, res) => res.writeHead(206, { "Content-Length": 3 }).end("abc"),
      async (store) => {
        const error = await store.getRanges("blob.bin", two, { coalesceGap: 0 }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(StoreError);
        expect(String(error)).toMatch(/Content-Range/);
      },
    );
  });

  test("a 500 is retried and reported with its status", async () => {
    await withServer(
      (_req, res) => res.writeHead(500, { "Content-Length": 4 }).end("oops"),
      async (store) => {
        const error = await store.getRanges("blob.bin", two, { coalesceGap: 0 }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(StoreError);
        expect((error as StoreError).status).toBe(500);
        expect((error as StoreError).attempts).toBe(retry.attempts);
      },
    );
  });
});

describe("multipart/byteranges parsing", () => {
  const where = { store: "http://x", key: "k", operation: "getRanges" };
  test("boundaries: quoted, unquoted, and not multipart", () => {
    expect(byterangesBoundary('multipart/byteranges; boundary="a b"')).toBe("a b");
    expect(byterangesBoundary("multipart/byteranges;boundary=00000000001")).toBe("00000000001");
    expect(byterangesBoundary("application/octet-stream")).toBeUndefined();
    expect(byterangesBoundary("multipart/byteranges")).toBeUndefined();
  });
  test("data containing the boundary is taken by length, not by search", () => {
    const data = Buffer.from("xx\r\n--XyZ\r\nyy");
    const parts = parseByteranges(multipart([{ range: `0-${data.length - 1}/100`, data }]), "XyZ", where);
    expect(parts).toHaveLength(1);
    expect(Buffer.from(parts[0].data).equals(data)).toBe(true);
  });
  test("a body without the boundary is an IntegrityError", () => {
    expect(() => parseByteranges(Buffer.from("garbage"), "XyZ", where)).toThrow(IntegrityError);
  });
});

describe("the HDF5 reader over HTTP reads a scattered B-tree level in one multi-range request", () => {
  let dir: string;
  let server: TestServer;
  beforeAll(async () => {
    // The refs-perf layout: 1,024 chunks of 2 KiB, leaves ~256 KiB apart (real HDF5 via h5wasm).
    const h5wasm = (await import("h5wasm/node")).default;
    await h5wasm.ready;
    dir = await mkdtemp(join(tmpdir(), "multirange-h5-"));
    const f = new h5wasm.File(join(dir, "scattered.h5"), "w");
    const data = Uint8Array.from({ length: 128 ** 3 }, (_, i) => (i * 7 + (i >> 9)) & 255);
    f.create_dataset({ name: "data", data, shape: [128, 128, 128], dtype: "<B", chunks: [8, 8, 32] });
    f.close();
    server = await (existsSync(NGINX) ? startNginx(dir) : startStaticServer(dir));
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("openByteSource passes readRanges through; references equal the local build with fewer requests", async () => {
    const url = `${server.url}/scattered.h5`;
    const local = await buildReferences(join(dir, "scattered.h5"), { url, inlineThreshold: 0 });

    const opened = openByteSource(url);
    expect(opened.source.readRanges).toBeDefined();
    const multi = await openHdf5(opened.source);
    expect((await buildFromReader(multi, filtersToCodecs, { url, inlineThreshold: 0 })).references).toEqual(local);
    await opened.close();

    const single = new HttpStore(server.url, { multiRange: false });
    const source = byteSourceFromStore(single, "scattered.h5", url);
    expect(source.readRanges).toBeUndefined();
    const file = await openHdf5(source);
    expect((await buildFromReader(file, filtersToCodecs, { url, inlineThreshold: 0 })).references).toEqual(local);
    await single.close();

    const d = (await file.get("/data")) as Dataset;
    expect(d.layout.kind === "chunked" && d.layout.index.type).toBe("btree-v1");
    console.log(`multirange: ${multi.context.source.requests} requests with readRanges, ${file.context.source.requests} without`);
    expect(multi.context.source.requests).toBeLessThan(file.context.source.requests);
    expect(multi.context.source.requests).toBeLessThanOrEqual(5);
  });

  test("a file cut inside the leaf level fails with Hdf5FormatError over multi-range HTTP", async () => {
    const whole = await readFile(join(dir, "scattered.h5"));
    await writeFile(join(dir, "cut.h5"), whole.subarray(0, Math.floor(whole.length * 0.6)));
    const store = new HttpStore(server.url, { retry });
    try {
      const source = byteSourceFromStore(store, "cut.h5");
      source.size = async () => undefined; // else the superblock's end-of-file check catches the cut first
      const file = await openHdf5(source);
      const d = (await file.get("/data")) as Dataset;
      const error = await file.chunks(d).then(() => undefined, (e: unknown) => e);
      expect(String(error)).toMatch(/v1 B-tree node/);
      expect((error as Error).name).toBe("Hdf5FormatError");
    } finally {
      await store.close();
    }
  });
});

describe("spans per multi-range request", () => {
  test("groups stop at the span count and at the Range header length", () => {
    const spans = Array.from({ length: 1000 }, (_, i) => ({ offset: 1e12 + i * 1000, length: 10 }));
    const byCount = groupForMultiRange(spans, 128, 1e9);
    expect(byCount.map((g) => g.length)).toEqual([...Array(7).fill(128), 1000 - 7 * 128]);
    const byHeader = groupForMultiRange(spans, 1000, 6 * 1024);
    for (const g of byHeader) {
      expect(g.map((s) => `${s.offset}-${s.offset + s.length - 1}`).join(",").length).toBeLessThanOrEqual(6 * 1024);
    }
    expect(byHeader.flat()).toEqual(spans);
    expect(byHeader.length).toBeGreaterThan(1);
  });
});
