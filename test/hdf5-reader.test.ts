/**
 * The HDF5 reader against what h5py (HDF5 1.10.8) reads from the same files: our own fixtures
 * (test/fixtures/hdf5-core, made by generate.py) and the shared corpus of files other projects wrote.
 */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { Hdf5FormatError } from "../src/errors.js";
import { decodeValue } from "../src/hdf5/datatype-values.js";
import { openHdf5, type Hdf5File } from "../src/hdf5/file.js";
import {
  describeType,
  flatten,
  join2,
  normalize,
  replacer,
  type ExpectedFile,
} from "./fixtures/hdf5-core/expected.js";
import { bytesSource, fileSource } from "./fixtures/hdf5-core/file-source.js";

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, "fixtures", "hdf5-core");
const corpus = resolve(here, "..", "..", "shared", "corpus");

const expected = JSON.parse(readFileSync(join(fixtures, "expected.json"), "utf8")) as Record<string, ExpectedFile>;

function pathOf(name: string): string {
  return name.startsWith("corpus/") ? join(corpus, name.slice(7)) : join(fixtures, name);
}

async function compareFile(name: string, file: Hdf5File) {
  const want = expected[name];
  expect(file.superblockVersion).toBe(want.superblockVersion);
  const nodes = flatten(await file.root());
  const wantPaths = Object.keys(want.nodes).filter((p) => want.nodes[p].kind !== "datatype").sort();
  expect([...nodes.keys()].sort()).toEqual(wantPaths);
  for (const path of wantPaths) {
    const w = want.nodes[path];
    const got = nodes.get(path)!;
    expect({ path, kind: got.kind }).toEqual({ path, kind: w.kind });
    if (got.kind === "soft-link") expect(got.target).toBe(w.target);
    if (got.kind === "external-link") expect({ file: got.file, target: got.target }).toEqual({ file: w.file, target: w.target });
    if (got.kind !== "group" && got.kind !== "dataset") continue;
    expect({ path, address: got.address }).toEqual({ path, address: w.address });
    if (got.kind === "group") expect({ path, cycleTo: got.cycleTo }).toEqual({ path, cycleTo: w.cycleTo });
    const attrs: Record<string, unknown> = {};
    for (const a of got.attributes) {
      attrs[a.name] = { dtype: describeType(a.type), shape: a.shape, value: a.shape === null ? null : normalize(a.value, a.type) };
    }
    expect({ path, attrs }).toEqual({ path, attrs: w.attrs });
    expect({ path, attrOrder: got.attributes.map((a) => a.name) }).toEqual({ path, attrOrder: w.attrOrder });
    if (got.kind === "group" && !got.cycleTo) {
      // Committed datatypes are links too in h5py's listing, but not data nodes here.
      const linkOrder = w.linkOrder!.filter((n) => want.nodes[join2(path, n)]?.kind !== "datatype");
      expect({ path, linkOrder: got.children.map((c) => c.name) }).toEqual({ path, linkOrder });
    }
    if (got.kind !== "dataset") continue;
    expect({ path, shape: got.shape, maxshape: got.maxShape, dtype: describeType(got.type) }).toEqual({
      path,
      shape: w.shape,
      // With 4-byte lengths HDF5 1.10 decodes the all-ones "unlimited" as 2^32-1 instead of H5S_UNLIMITED;
      // the spec says all ones means unlimited, which is what we report.
      maxshape: w.maxshape?.map((m) => (name === "sizes4.h5" && m === 2 ** 32 - 1 ? null : m)) ?? null,
      dtype: w.dtype,
    });
    expect({ path, layout: got.layout.kind }).toEqual({ path, layout: w.layout });
    if (got.layout.kind === "chunked") expect({ path, chunks: got.layout.chunkShape }).toEqual({ path, chunks: w.chunks });
    if (got.layout.kind === "contiguous" && w.contiguous) {
      expect({ path, offset: file.context.base + got.layout.address, size: got.layout.size }).toEqual({ path, ...w.contiguous });
    }
    expect({ path, filters: got.filters.map(({ id, optional, clientData, name }) => ({ id, optional, clientData, name })) }).toEqual({
      path,
      filters: w.filters,
    });
    const fill = w.fill!;
    if (got.fill.allocTime !== undefined) {
      expect({ path, alloc: got.fill.allocTime, fillTime: got.fill.fillTime }).toEqual({ path, alloc: fill.allocTime, fillTime: fill.fillTime });
    }
    if (fill.defined === "user") {
      expect(got.fill.bytes, `${path} fill`).toBeDefined();
      const value = await decodeValue(file.context, got.type, [], got.fill.bytes!, { address: got.address, structure: "fill" });
      expect({ path, fill: normalize(value, got.type) }).toEqual({ path, fill: fill.value });
    }
  }
  return nodes;
}

describe("HDF5 reader matches h5py", () => {
  for (const name of Object.keys(expected)) {
    it(name, async () => {
      const file = await openHdf5(fileSource(pathOf(name)));
      await compareFile(name, file);
    });
  }
});

describe("HDF5 reader: paths, links and errors", () => {
  const open = (name: string) => openHdf5(fileSource(pathOf(name)));

  it("get() resolves nested paths, soft links on the way, and reports links themselves", async () => {
    const file = await open("earliest.h5");
    const deep = await file.get("/group1/sub/deep");
    expect(deep?.kind).toBe("dataset");
    expect(deep && deep.kind === "dataset" ? deep.shape : undefined).toEqual([2, 3]);
    expect(await file.get("/soft")).toEqual({ kind: "soft-link", path: "/soft", name: "soft", target: "/group1/sub" });
    // Through the soft link to the same object.
    const viaSoft = await file.get("/soft/deep");
    expect(viaSoft?.kind === "dataset" ? viaSoft.address : -1).toBe(deep?.kind === "dataset" ? deep.address : -2);
    const ext = await file.get("external");
    expect(ext).toMatchObject({ kind: "external-link", file: "other.h5", target: "/somewhere" });
    expect(await file.get("/no/such/thing")).toBeUndefined();
    expect(await file.get("/int8/child")).toBeUndefined();
    const root = await file.get("/");
    expect(root?.kind).toBe("group");
    // Committed datatypes are not data nodes.
    expect(await file.get("/named_type")).toBeUndefined();
  });

  it("stops following a soft link loop with a named error", async () => {
    const file = await open("earliest.h5");
    expect(await file.get("/self_loop")).toMatchObject({ kind: "soft-link", target: "/self_loop" });
    await expect(file.get("/self_loop/child")).rejects.toThrow(/soft link loop/);
  });

  it("marks a hard link back to an ancestor instead of descending forever", async () => {
    const file = await open("latest.h5");
    const up = await file.get("/group1/sub/up");
    expect(up).toMatchObject({ kind: "group", cycleTo: "/group1", children: [] });
  });

  it("delegates chunk listing to the chunk index readers", async () => {
    const file = await open("earliest.h5");
    const ds = await file.get("/chunked");
    if (ds?.kind !== "dataset") throw new Error("no dataset");
    const chunks = await file.chunks(ds);
    expect(chunks.map((c) => c.coords)).toEqual([[0, 0], [0, 1], [1, 0], [1, 1], [2, 0], [2, 1]]);
  });

  it("names netCDF-3 and other non-HDF5 input", async () => {
    await expect(open("classic.nc")).rejects.toThrow(/not an HDF5 file \(looks like netCDF-3 classic\)/);
    await expect(open("generate.py")).rejects.toThrow(Hdf5FormatError);
    await expect(openHdf5(bytesSource("empty", new Uint8Array(0)))).rejects.toThrow(/not an HDF5 file/);
  });

  it("reports truncation with the structure and offset", async () => {
    const bytes = new Uint8Array(readFileSync(pathOf("latest.h5")));
    // Caught at open: the superblock records a longer file.
    const err = await openHdf5(bytesSource("cut.h5", bytes.subarray(0, 2000))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Hdf5FormatError);
    expect((err as Hdf5FormatError).message).toMatch(/cut\.h5: superblock at offset 0: file truncated/);
    // A source that cannot tell its size is caught at the first structure past the end.
    const sizeless = { ...bytesSource("cut.h5", bytes.subarray(0, 2000)), size: async () => undefined };
    const late = await (await openHdf5(sizeless)).root().catch((e: unknown) => e);
    expect(late).toBeInstanceOf(Hdf5FormatError);
    expect((late as Hdf5FormatError).message).toMatch(/cut\.h5: .* at offset \d+: .*truncated/);
  });

  it("detects a corrupt v2 object header by its checksum", async () => {
    const bytes = new Uint8Array(readFileSync(pathOf("latest.h5")));
    const file = await openHdf5(bytesSource("ok", bytes));
    const at = file.rootAddress;
    const bad = bytes.slice();
    bad[at + 12] ^= 0xff; // inside the root object header's first chunk
    const err = await (await openHdf5(bytesSource("bad.h5", bad))).root().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Hdf5FormatError);
    expect((err as Error).message).toMatch(/object header at offset \d+: .*(checksum|signature|message)/);
  });

  it("stops at an object header continuation that points back at itself", async () => {
    const bytes = new Uint8Array(readFileSync(pathOf("earliest.h5")));
    const file = await openHdf5(bytesSource("ok", bytes));
    const root = file.rootAddress;
    // A v1 header's messages start 16 bytes in; rewrite the first one as a continuation to that chunk.
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const bad = bytes.slice();
    const badView = new DataView(bad.buffer);
    const firstSize = view.getUint16(root + 16 + 2, true);
    expect(firstSize).toBeGreaterThanOrEqual(16);
    badView.setUint16(root + 16, 0x10, true);
    badView.setBigUint64(root + 24, BigInt(root + 16), true);
    badView.setBigUint64(root + 32, BigInt(view.getUint32(root + 8, true)), true);
    const err = await (await openHdf5(bytesSource("loop.h5", bad))).root().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Hdf5FormatError);
    expect((err as Error).message).toMatch(/continuation cycle/);
  });

  it("reads a small file's metadata in a handful of requests through the block cache", async () => {
    for (const [name, blockSize, readAhead, most] of [
      ["latest.h5", 65536, 3, 1],
      ["latest.h5", 4096, 0, 24],
      ["corpus/pyfive_issue23_B.nc", 4096, 1, 20],
    ] as const) {
      const file = await openHdf5(fileSource(pathOf(name)), { blockSize, readAhead });
      await file.root();
      const { requests, bytesRead } = file.context.source;
      console.log(`${name}: open + root() with ${blockSize}-byte blocks, read-ahead ${readAhead}: ${requests} requests, ${bytesRead} bytes`);
      expect(requests).toBeGreaterThan(0);
      expect(requests).toBeLessThanOrEqual(most);
      // Never more requests than the file has blocks: each block is fetched at most once.
      expect(requests).toBeLessThanOrEqual(Math.ceil((await fileSource(pathOf(name)).size())! / blockSize));
      // No byte is fetched twice (read-ahead stops at blocks already cached).
      expect(bytesRead).toBeLessThanOrEqual((await fileSource(pathOf(name)).size())!);
    }
  });

  it("keeps working when the block cache is far smaller than the metadata (concurrent eviction)", async () => {
    const small = await openHdf5(fileSource(pathOf("latest.h5")), { blockSize: 512, maxBlocks: 2, readAhead: 0 });
    const big = await openHdf5(fileSource(pathOf("latest.h5")));
    expect(JSON.stringify(await small.root(), replacer)).toBe(JSON.stringify(await big.root(), replacer));
  });

  it("does not cache a failed read: the next read tries the source again", async () => {
    const inner = fileSource(pathOf("earliest.h5"));
    let failNext = false;
    const flaky = {
      ...inner,
      async read(offset: number, length: number) {
        if (failNext) {
          failNext = false;
          throw new Error("connection reset");
        }
        return inner.read(offset, length);
      },
    };
    const file = await openHdf5(flaky, { blockSize: 1024, readAhead: 0 });
    failNext = true;
    await expect(file.root()).rejects.toThrow(/connection reset/);
    expect((await file.root()).children.length).toBeGreaterThan(10);
  });

  it("honours an abort signal", async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(openHdf5(fileSource(pathOf("earliest.h5")), { signal: controller.signal })).rejects.toThrow();
  });
});

describe("layout messages of every chunk index type (the chunk-index fixtures)", () => {
  // Those fixtures (test/fixtures/chunk-index, h5py get_chunk_info per dataset) cover layout v3 and
  // v4 with single, implicit, fixed array, extensible array and v2 B-tree indexes.
  const dir = join(here, "fixtures", "chunk-index");
  type ChunkFixture = Record<string, Record<string, { objectHeader: number; chunkShape: number[]; chunks: [number[], number, number, number][] }>>;
  const chunkExpected = JSON.parse(readFileSync(join(dir, "expected.json"), "utf8")) as ChunkFixture;
  for (const [name, datasets] of Object.entries(chunkExpected)) {
    it(name, async () => {
      const file = await openHdf5(fileSource(join(dir, name)));
      for (const [path, want] of Object.entries(datasets)) {
        const ds = await file.get(path);
        if (ds?.kind !== "dataset" || ds.layout.kind !== "chunked") throw new Error(`${path} is not a chunked dataset`);
        expect({ path, address: ds.address, chunkShape: ds.layout.chunkShape }).toEqual({ path, address: want.objectHeader, chunkShape: want.chunkShape });
        const layout = ds.layout;
        // Where each chunk is proves the index parameters were parsed right; filter masks are the
        // chunk-index readers' business (their own test checks them).
        const got = (await file.chunks(ds)).map((c) => [c.coords.map((x, i) => x * layout.chunkShape[i]), c.offset, c.size]);
        const key = (e: unknown) => JSON.stringify(e);
        const wanted = want.chunks.map(([offset, , address, size]) => [offset, address, size]);
        expect({ path, chunks: got.map(key).sort() }).toEqual({ path, chunks: wanted.map(key).sort() });
      }
    });
  }
});

describe("HDF5 2.0 files written by h5wasm", () => {
  // Written at run time by the real HDF5 2.0 library (h5wasm), then read back by it for the
  // expected values: libver "latest" gives superblock v3 and layout message v5.
  const classes: Record<number, string> = { 0: "integer", 1: "float", 3: "string" };
  type H5Meta = { type: number; size: number; signed: boolean; littleEndian: boolean; shape: number[]; maxshape: (number | null)[]; chunks: number[] | null; vlen: boolean };

  for (const libver of ["earliest", "latest"] as const) {
    it(`libver ${libver}`, async () => {
      const h5wasm = (await import("h5wasm/node")).default;
      await h5wasm.ready;
      const { mkdtemp, rm } = await import("node:fs/promises");
      const { tmpdir } = await import("node:os");
      const dir = await mkdtemp(join(tmpdir(), "hdf5-core-"));
      const path = join(dir, `h5wasm-${libver}.h5`);
      try {
        // ("earliest", "earliest") is not a valid pair in HDF5 2.0; h5py's "earliest" means this one.
        const w = new h5wasm.File(path, "w", { libver: libver === "earliest" ? ["earliest", "latest"] : libver });
        w.create_group("g", true);
        const g = w.get("g") as InstanceType<typeof h5wasm.Group>;
        for (let i = 0; i < 12; i++) g.create_attribute(`attr_${i}`, i * 1.5); // dense with libver latest
        for (let i = 0; i < 20; i++) g.create_group(`child_${i}`);
        w.create_dataset({ name: "deflated", data: new Float32Array(60).map((_, i) => i), shape: [6, 10], chunks: [2, 5], compression: 4 });
        w.create_dataset({ name: "growable", data: new Float64Array(20), shape: [4, 5], maxshape: [null, 5], chunks: [2, 5] });
        w.create_dataset({ name: "ints", data: new Int16Array([1, -2, 3]) });
        w.create_dataset({ name: "strings", data: ["a", "bb", "ccc"] });
        const ints = w.get("ints") as InstanceType<typeof h5wasm.Dataset>;
        ints.create_attribute("units", "K");
        ints.create_attribute("valid", new Int32Array([-5, 5]));
        w.close();

        const r = new h5wasm.File(path, "r");
        const file = await openHdf5(fileSource(path));
        // The library picks the version (track_order groups need v2 with "earliest"); byte 8 says which.
        expect(file.superblockVersion).toBe(readFileSync(path)[8]);
        if (libver === "latest") expect(file.superblockVersion).toBe(3);
        for (const name of ["deflated", "growable", "ints", "strings"]) {
          const want = r.get(name) as InstanceType<typeof h5wasm.Dataset>;
          const meta = want.metadata as unknown as H5Meta;
          const got = await file.get(`/${name}`);
          if (got?.kind !== "dataset") throw new Error(`${name} missing`);
          // h5wasm reports H5S_UNLIMITED as 2^64-1; we report null.
          const maxShape = meta.maxshape.map((m) => (m !== null && m >= 2 ** 64 - 1 ? null : m));
          expect({ name, shape: got.shape, maxShape: got.maxShape }).toEqual({ name, shape: meta.shape, maxShape });
          const cls = meta.vlen && meta.type === 3 ? "vlen-string" : classes[meta.type];
          expect(got.type.class).toBe(cls);
          if (got.type.class === "integer" || got.type.class === "float") {
            expect({ size: got.type.size, littleEndian: got.type.littleEndian }).toEqual({ size: meta.size, littleEndian: meta.littleEndian });
          }
          if (got.type.class === "integer") expect(got.type.signed).toBe(meta.signed);
          expect(got.layout.kind === "chunked" ? got.layout.chunkShape : null).toEqual(meta.chunks);
          expect(got.filters.map((f) => ({ id: f.id, cd_values: f.clientData }))).toEqual(
            (want.filters as { id: number; cd_values: number[] }[]).map((f) => ({ id: f.id, cd_values: Array.from(f.cd_values) })),
          );
          for (const a of got.attributes) {
            const v = want.attrs[a.name].value as unknown;
            expect({ name: a.name, value: a.value }).toEqual({ name: a.name, value: ArrayBuffer.isView(v) ? Array.from(v as Int32Array) : v });
          }
          expect(got.attributes.length).toBe(Object.keys(want.attrs).length);
        }
        const g2 = await file.get("/g");
        if (g2?.kind !== "group") throw new Error("g missing");
        expect(g2.children.map((c) => c.name)).toEqual((r.get("g") as InstanceType<typeof h5wasm.Group>).keys());
        const wantAttrs = (r.get("g") as InstanceType<typeof h5wasm.Group>).attrs;
        expect(Object.fromEntries(g2.attributes.map((a) => [a.name, a.value]))).toEqual(
          Object.fromEntries(Object.keys(wantAttrs).map((k) => [k, wantAttrs[k].value])),
        );
        if (libver === "latest") {
          const deflated = await file.get("/deflated");
          expect(deflated?.kind === "dataset" && deflated.layout.kind === "chunked" && deflated.layout.layoutVersion).toBe(5);
        }
        r.close();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});

describe("integer decoding", () => {
  it("agrees with DataView/BigInt for every width, order and signedness", async () => {
    const { integerFromBytes } = await import("../src/hdf5/messages/datatype.js");
    let seed = 12345;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 256;
    for (let trial = 0; trial < 2000; trial++) {
      const size = 1 + (trial % 8);
      const bytes = new Uint8Array(size).map(() => next());
      if (trial % 7 === 0) bytes.fill(trial % 2 ? 0xff : 0x80);
      for (const littleEndian of [true, false]) {
        for (const signed of [true, false]) {
          let reference = 0n;
          for (let i = 0; i < size; i++) reference = (reference << 8n) | BigInt(littleEndian ? bytes[size - 1 - i] : bytes[i]);
          if (signed && reference >= 1n << BigInt(8 * size - 1)) reference -= 1n << BigInt(8 * size);
          const got = integerFromBytes(bytes, littleEndian, signed);
          const fits = reference >= -(2n ** 53n) && reference <= 2n ** 53n;
          expect(got).toEqual(fits ? Number(reference) : reference);
        }
      }
    }
  });
});

describe("HDF5 reader over HTTP", () => {
  it("walks a netCDF-4 file's metadata in a few range requests to a real server", async () => {
    const { createServer } = await import("node:http");
    const { HttpStore } = await import("../src/stores/http.js");
    const { byteSourceFromStore } = await import("../src/hdf5/io.js");
    const body = readFileSync(pathOf("corpus/pyfive_issue23_B.nc"));
    const seen: string[] = [];
    const server = createServer((req, res) => {
      const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
      seen.push(`${req.method} ${req.headers.range ?? "-"}`);
      if (req.method === "HEAD") {
        res.writeHead(200, { "content-length": body.length, "accept-ranges": "bytes" }).end();
      } else if (range) {
        const start = Number(range[1]);
        const end = Math.min(Number(range[2]), body.length - 1);
        res.writeHead(206, { "content-length": end - start + 1, "content-range": `bytes ${start}-${end}/${body.length}` });
        res.end(body.subarray(start, end + 1));
      } else {
        res.writeHead(200, { "content-length": body.length }).end(body);
      }
    });
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    try {
      const port = (server.address() as { port: number }).port;
      const store = new HttpStore(`http://127.0.0.1:${port}/`);
      const file = await openHdf5(byteSourceFromStore(store, "data.nc"), { blockSize: 8192, readAhead: 1 });
      const root = await file.root();
      expect(root.children.map((c) => c.name).sort()).toEqual(
        Object.keys(expected["corpus/pyfive_issue23_B.nc"].nodes).filter((p) => p !== "/").map((p) => p.slice(1)).sort(),
      );
      const gets = seen.filter((s) => s.startsWith("GET"));
      console.log(`pyfive_issue23_B.nc over HTTP: ${gets.length} range GETs (${file.context.source.bytesRead} of ${body.length} bytes), ${seen.length - gets.length} other requests`);
      expect(gets.every((s) => s.includes("bytes="))).toBe(true);
      expect(gets.length).toBe(file.context.source.requests);
      expect(gets.length).toBeLessThanOrEqual(8);
    } finally {
      await new Promise((ok) => server.close(ok));
    }
  });
});
