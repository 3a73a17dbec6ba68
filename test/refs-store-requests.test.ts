/**
 * Request counting: zarrita reading a whole 8,000-chunk variable fires 8,000 `get`s at once. Over
 * HTTP the reference store must turn them into far fewer range requests and never hold more
 * connections or requests open than its configured concurrency. The server here is a small real
 * Node HTTP server on 127.0.0.1 that counts requests, open sockets and requests in flight.
 */
import { createReadStream } from "node:fs";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve, sep } from "node:path";
import * as zarr from "zarrita";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildReferences } from "../src/refs/build.js";
import { openReferences } from "../src/refs/open.js";
import { referencesJson } from "../src/refs/write.js";

interface Counts {
  requests: number;
  sockets: number;
  maxSockets: number;
  inFlight: number;
  maxInFlight: number;
}

/** Serves `root` with single-range GETs, counting what arrives. */
async function countingServer(root: string): Promise<{ url: string; counts: Counts; server: Server }> {
  const counts: Counts = { requests: 0, sockets: 0, maxSockets: 0, inFlight: 0, maxInFlight: 0 };
  const server = createServer((req, res) => {
    counts.requests++;
    counts.maxInFlight = Math.max(counts.maxInFlight, ++counts.inFlight);
    res.once("close", () => counts.inFlight--);
    const file = resolve(root, "." + decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
    if (!file.startsWith(root + sep)) return void res.writeHead(403).end();
    stat(file).then(
      (info) => {
        const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
        const start = m ? Number(m[1]) : 0;
        const end = m ? Math.min(Number(m[2]), info.size - 1) : info.size - 1;
        if (start >= info.size) return void res.writeHead(416, { "Content-Range": `bytes */${info.size}` }).end();
        res.writeHead(m ? 206 : 200, {
          "Content-Length": end - start + 1,
          ...(m ? { "Content-Range": `bytes ${start}-${end}/${info.size}` } : {}),
        });
        createReadStream(file, { start, end }).pipe(res);
      },
      () => res.writeHead(404, { "Content-Length": 0 }).end(),
    );
  });
  server.on("connection", (socket) => {
    counts.maxSockets = Math.max(counts.maxSockets, ++counts.sockets);
    socket.once("close", () => counts.sockets--);
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, counts, server };
}

describe("an 8,000-chunk variable over HTTP", () => {
  let dir: string;
  let values: Uint8Array;
  let server: Awaited<ReturnType<typeof countingServer>>;
  const shape = [100, 100, 80];
  const chunks = [5, 5, 4];
  const nChunks = (100 / 5) * (100 / 5) * (80 / 4);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "refs-store-requests-"));
    const h5wasm = (await import("h5wasm/node")).default;
    await h5wasm.ready;
    const path = join(dir, "big.h5");
    const f = new h5wasm.File(path, "w");
    const data = Uint8Array.from({ length: 100 * 100 * 80 }, (_, i) => (i * 7 + (i >> 9)) & 255);
    f.create_dataset({ name: "data", data, shape, dtype: "<B", chunks });
    f.close();
    const r = new h5wasm.File(path, "r");
    values = Uint8Array.from((r.get("data") as InstanceType<typeof h5wasm.Dataset>).value as ArrayLike<number>);
    r.close();
    const references = await buildReferences(path, { url: "big.h5", inlineThreshold: 0 });
    await writeFile(join(dir, "big.json"), referencesJson(references));
    server = await countingServer(dir);
  });
  afterAll(async () => {
    await new Promise((done) => server?.server.close(done));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const [label, options] of [
    ["default coalescing", { concurrency: 4 }],
    ["64 KiB blocks", { concurrency: 3, maxBlock: 64 * 1024, coalesceGap: 0 }],
  ] as const) {
    it(`${label}: h5wasm's values, far fewer requests than chunks, connections ≤ concurrency`, async () => {
      server.counts.requests = 0;
      server.counts.maxSockets = 0;
      server.counts.maxInFlight = 0;
      const store = await openReferences(`${server.url}/big.json`, options);
      try {
        const arr = await zarr.open(zarr.root(store).resolve("data"), { kind: "array" });
        const before = server.counts.requests;
        const out = await zarr.get(arr);
        const requests = server.counts.requests - before;
        expect(out.shape).toEqual(shape);
        expect(Buffer.compare(out.data as Uint8Array, values)).toBe(0);
        expect(store.stats.reads).toBe(nChunks);
        expect(store.stats.requests).toBe(requests);
        expect(requests).toBeLessThan(nChunks / 50);
        expect(server.counts.maxSockets).toBeLessThanOrEqual(options.concurrency);
        expect(server.counts.maxInFlight).toBeLessThanOrEqual(options.concurrency);
        if ("maxBlock" in options) {
          // 8,000 chunks of 100 bytes in 64 KiB blocks: at least 800 000 / 65 536 requests.
          expect(requests).toBeGreaterThanOrEqual(Math.ceil((nChunks * 100) / options.maxBlock));
        }
      } finally {
        await store.close();
      }
    });
  }
});
