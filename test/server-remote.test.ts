/**
 * The client: reduceRemote against real servers (ours, over s3rver) equals the local engine on the
 * same chunk bytes, for several dtypes, layouts, selections, axes, missing rules and moments;
 * unwritten chunks are reduced locally as fill; retries move to the next server; only small
 * results cross the network.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { reduceArray, type ChunkSource } from "../src/active/engine.js";
import type { MissingRules } from "../src/active/kernel.js";
import { reduceRemote, type RemoteArray, type RemoteChunk } from "../src/active/remote.js";
import type { Selection } from "../src/active/selection.js";
import { loadCodecChain, registerCodecs } from "../src/codecs/index.js";
import type { CodecConfig } from "../src/codecs/types.js";
import { startServer, type ReductionServer } from "../src/server/index.js";
import { S3Store } from "../src/stores/s3.js";
import { encodeArray, ITEM, prng, values, type TestDtype } from "./fixtures/server/harness.js";
import { startS3rver, S3RVER_CREDENTIALS, type S3rverHandle } from "./servers/s3rver.js";

let s3: S3rverHandle;
let store: S3Store;
let server: ReductionServer;
const credentials = { username: "S3RVER", password: "S3RVER" };

beforeAll(async () => {
  registerCodecs();
  s3 = await startS3rver({ buckets: ["data"] });
  store = new S3Store({ bucket: "data", endpoint: s3.endpoint, forcePathStyle: true, credentials: S3RVER_CREDENTIALS });
  server = await startServer({ port: 0, allowHosts: ["127.0.0.1"], logger: () => undefined });
}, 60_000);

afterAll(async () => {
  await server?.close();
  await store?.close();
  await s3?.stop();
});

interface Built {
  remote: RemoteArray;
  local: ChunkSource;
}

/** Writes every chunk (but `skip`) into one object, HDF5-file style, and describes it both ways. */
async function build(
  name: string, dtype: TestDtype, shape: number[], chunks: number[], order: "C" | "F", codecs: CodecConfig[],
  skip: string[] = [], fill = 0,
): Promise<Built> {
  const grid = shape.map((n, d) => Math.ceil(n / chunks[d]));
  const n = chunks.reduce((a, b) => a * b, 1);
  const chain = await loadCodecChain(codecs, { dataType: dtype, shape: chunks });
  const parts: Uint8Array[] = [];
  const refs = new Map<string, RemoteChunk>();
  const raw = new Map<string, Uint8Array>();
  let offset = 16; // a header in front, as in a real file
  parts.push(new Uint8Array(16));
  const total = grid.reduce((a, b) => a * b, 1);
  for (let i = 0; i < total; i++) {
    const coords = grid.map((_, d) => Math.floor(i / grid.slice(d + 1).reduce((a, b) => a * b, 1)) % grid[d]);
    const key = coords.join(".");
    if (skip.includes(key)) continue;
    const stored = encodeArray(dtype, values(dtype, n, prng(i + 7)), chunks, order, "little");
    const encoded = await chain.encode(stored);
    raw.set(key, stored);
    refs.set(key, { url: `${s3.endpoint}/data/${name}`, offset, size: encoded.length, codecs });
    parts.push(encoded);
    offset += encoded.length;
  }
  const object = new Uint8Array(offset);
  let at = 0;
  for (const p of parts) object.set(p, at), (at += p.length);
  await store.set(name, object);
  const Typed = { int16: Int16Array, int64: BigInt64Array, uint8: Uint8Array, float32: Float32Array, float64: Float64Array }[dtype as string]!;
  const strides = (order === "C" ? chunks.map((_, d) => chunks.slice(d + 1).reduce((a, b) => a * b, 1)) : chunks.map((_, d) => chunks.slice(0, d).reduce((a, b) => a * b, 1)));
  return {
    remote: { shape, chunks, dtype, byteOrder: "little", order, fillValue: fill, interfaceType: "s3", chunk: (c) => refs.get(c.join(".")) },
    local: {
      shape, chunks, dtype,
      async getChunk(coords) {
        const bytes = raw.get(coords.join("."));
        const data = bytes ? new Typed(new Uint8Array(bytes).buffer) : new Typed(n).fill((dtype === "int64" ? BigInt(fill) : fill) as never);
        return { data, shape: [...chunks], stride: strides };
      },
    },
  };
}

const zlibShuffle = (dtype: TestDtype): CodecConfig[] => [{ id: "shuffle", elementsize: ITEM[dtype] }, { id: "zlib", level: 1 }];

describe("reduceRemote equals the local engine", () => {
  const cases: { dtype: TestDtype; order: "C" | "F"; selection: Selection; axis?: number | number[]; missing?: MissingRules; moments?: boolean }[] = [
    { dtype: "float32", order: "C", selection: null, moments: true },
    { dtype: "float32", order: "F", selection: [{ start: 1, stop: 9, step: 2 }, { start: null, stop: null, step: -3 }], axis: 0, moments: true },
    { dtype: "int16", order: "C", selection: [2, { start: 3, stop: 12, step: 1 }], missing: { fillValue: -20, validMax: 15 } },
    { dtype: "int64", order: "C", selection: [{ start: -7, stop: null, step: 1 }, null], axis: [1], missing: { missingValues: [1n - 10n * 2n ** 40n] }, moments: true },
    { dtype: "uint8", order: "F", selection: null, axis: [0, 1], missing: { validMin: 3.5 } },
    { dtype: "float64", order: "C", selection: [{ start: 0, stop: 10, step: 3 }, { start: 12, stop: 0, step: -4 }], axis: 1, missing: { fillValue: NaN } },
  ];
  test.each(cases.map((c, i) => [i, c] as const))("case %i", async (i, c) => {
    const { remote, local } = await build(`remote-${i}.bin`, c.dtype, [10, 13], [4, 5], c.order, zlibShuffle(c.dtype), ["1.1", "2.0"], 3);
    const options = { axis: c.axis, missing: c.missing, moments: c.moments };
    const want = await reduceArray(local, c.selection, { ...options, concurrency: 1 });
    const got = await reduceRemote(remote, c.selection, { ...options, servers: server.url, credentials, concurrency: 4 });
    expect(got.partials).toEqual(want.partials);
    expect(got.chunks).toBe(want.chunks);
    expect(got.fillChunks).toBeGreaterThanOrEqual(0);
  });

  test("unwritten chunks are reduced locally as the fill value", async () => {
    const { remote, local } = await build("fill.bin", "float64", [8, 10], [4, 5], "C", [], ["0.0", "1.1"], 2.5);
    const got = await reduceRemote(remote, null, { servers: server.url, credentials });
    const want = await reduceArray(local, null, { concurrency: 1 });
    expect(got.fillChunks).toBe(2);
    expect(got.chunks).toBe(4);
    expect(got.partials).toEqual(want.partials);
  });

  test("the stock Reductionist protocol (sum/min/max) gives the same count, sum, min and max", async () => {
    const { remote, local } = await build("stock.bin", "float64", [10, 13], [4, 5], "C", [{ id: "zlib", level: 1 }]);
    const want = await reduceArray(local, null, { axis: 1, concurrency: 1, missing: { validMin: -2 } });
    const got = await reduceRemote(remote, null, { axis: 1, servers: server.url, credentials, protocol: "reductionist", missing: { validMin: -2 } });
    expect(got.partials).toEqual(want.partials);
    expect(got.requests).toBe(3 * 9);
  });
});

test("a mean's requests skip M2 and min/max on the server and still equal the local engine", async () => {
  for (const dtype of ["float64", "int64"] as const) {
    const { remote, local } = await build(`lean-${dtype}.bin`, dtype, [20, 30], [7, 8], "C", zlibShuffle(dtype), ["1.1"]);
    for (const extremes of [false, true]) {
      const options = { extremes, missing: { validMin: -2 } };
      const selection = [{ start: 1, stop: 19, step: 2 }, null];
      const want = (await reduceArray(local, selection, { concurrency: 1, ...options })).partials;
      const got = (await reduceRemote(remote, selection, { servers: server.url, credentials, ...options })).partials;
      // int64 keeps its extremes whatever is asked, as the local engine does.
      const kept = extremes || dtype === "int64";
      expect(got.extremes).toBe(kept ? undefined : false);
      expect(want.extremes).toBe(got.extremes);
      // Untracked min/max mean nothing (the partials say so), so only tracked ones are compared.
      const meaningful = (p: typeof got) => (kept ? p : { ...p, min: undefined, max: undefined });
      expect(meaningful(got)).toEqual(meaningful(want));
      expect(got.m2).toBeUndefined();
    }
  }
});

test("retries go round-robin past a dead server and a 503-ing one; 4xx fail at once", async () => {
  const busy: Server = createServer((_, res) => {
    res.writeHead(503, { "content-type": "application/json" });
    res.end('{"error":{"message":"server busy"}}');
  });
  await new Promise<void>((r) => busy.listen(0, "127.0.0.1", () => r()));
  const busyUrl = `http://127.0.0.1:${(busy.address() as AddressInfo).port}`;
  try {
    const { remote, local } = await build("rr.bin", "float32", [8, 10], [4, 5], "C", []);
    const got = await reduceRemote(remote, null, { servers: ["http://127.0.0.1:9", busyUrl, server.url], credentials, concurrency: 1 });
    expect(got.partials).toEqual((await reduceArray(local, null, { concurrency: 1 })).partials);
    expect(got.requests).toBeGreaterThan(got.chunks);
    const denied = reduceRemote(remote, null, { servers: server.url, credentials: { username: "x", password: "y" }, retries: 3 });
    await expect(denied).rejects.toThrow(/answered 401/);
  } finally {
    busy.close();
  }
});

test("only small results cross the network", async () => {
  const { remote, local } = await build("big.bin", "float64", [200, 300], [100, 100], "C", []);
  const got = await reduceRemote(remote, null, { servers: server.url, credentials, moments: true });
  expect(got.partials).toEqual((await reduceArray(local, null, { concurrency: 1, moments: true })).partials);
  expect(got.bytesReduced).toBe(6 * 100 * 100 * 8);
  expect(got.bytesReceived).toBeLessThan(got.bytesReduced / 100);
});
