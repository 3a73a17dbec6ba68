/**
 * Chunk indexes against the real HDF5 library:
 *  - h5py 3.7 / HDF5 1.10.8 fixtures (generate.py): every index type; our entries must equal
 *    H5Dget_chunk_info's (offset, size, filter mask, coordinates);
 *  - an HDF5 2.0 file written by h5wasm at test time (layout message v5 for filtered datasets):
 *    every entry must point at bytes that decode to what h5wasm reads for that chunk;
 *  - corrupted and truncated copies must fail with Hdf5FormatError, never hang or invent chunks.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { inflateSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Hdf5FormatError, UnsupportedFeatureError } from "../src/errors.js";
import {
  decodeAttributeCreationOrderRecord,
  decodeAttributeNameRecord,
  decodeLinkCreationOrderRecord,
  decodeLinkNameRecord,
  readBTree2Header,
  readBTree2Records,
} from "../src/hdf5/btree2.js";
import { readGroupBTree1 } from "../src/hdf5/btree1.js";
import { readChunkIndex } from "../src/hdf5/chunk-index/index.js";
import { openHdf5, type Hdf5File } from "../src/hdf5/file.js";
import { CachedSource, FileContext, lookup3 } from "../src/hdf5/io.js";
import type { Dataset } from "../src/hdf5/model.js";
import { ObjectReader } from "../src/hdf5/objects.js";
import {
  byOffset,
  dataset,
  expectChunksHoldValues,
  fromH5py,
  indexType,
  type Expected,
} from "./fixtures/chunk-index/helpers.js";
import { fileSource, memorySource } from "./fixtures/chunk-index/sources.js";

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, "fixtures", "chunk-index");

const expected = JSON.parse(await readFile(join(fixtures, "expected.json"), "utf8")) as Expected;

describe.each(Object.keys(expected))("chunk index of %s equals h5py's get_chunk_info", (name) => {
  const source = fileSource(join(fixtures, name));
  let file: Hdf5File;
  beforeAll(async () => {
    file = await openHdf5(source);
  });
  afterAll(() => source.close());

  it.each(Object.keys(expected[name]))("%s", async (path) => {
    const got = await readChunkIndex(file.context, await dataset(file, path));
    const want = fromH5py(expected[name][path]);
    if (path === "/fa_edge_raw") {
      // Partial edge chunks stored unfiltered: HDF5 reports mask 0, we report the filter skipped.
      for (const e of want) if (e.coords[0] === 2 || e.coords[1] === 2) e.filterMask = 1;
    }
    expect([...got].sort(byOffset)).toEqual(want.sort(byOffset));
  });
});

describe("partial edge chunks stored unfiltered (H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS)", () => {
  it("entries flagged as unfiltered hold the raw values; the others inflate to them", async () => {
    const bytes = new Uint8Array(await readFile(join(fixtures, "latest.h5")));
    const file = await openHdf5(memorySource(bytes));
    const d = await dataset(file, "/fa_edge_raw");
    expect(d.layout.kind === "chunked" && d.layout.dontFilterPartialEdgeChunks).toBe(true);
    const values = expected["latest.h5"]["/fa_edge_raw"].values!; // as h5py reads the dataset
    const entries = await readChunkIndex(file.context, d);
    expect(entries.filter((e) => e.filterMask === 1).length).toBe(5);
    for (const e of entries) {
      let raw = bytes.subarray(e.offset, e.offset + e.size);
      if (e.filterMask === 0) raw = new Uint8Array(inflateSync(raw));
      const got = new Int32Array(raw.slice().buffer);
      for (let r = 0; r < 4 && e.coords[0] * 4 + r < 10; r++) {
        for (let c = 0; c < 4 && e.coords[1] * 4 + c < 9; c++) {
          expect(got[r * 4 + c]).toBe(values[(e.coords[0] * 4 + r) * 9 + e.coords[1] * 4 + c]);
        }
      }
    }
  });
});

describe("fixture coverage", () => {
  it("the h5py fixtures use every index type where the generator meant them to", async () => {
    const types: Record<string, string> = {};
    for (const name of Object.keys(expected)) {
      const source = fileSource(join(fixtures, name));
      const file = await openHdf5(source);
      for (const path of Object.keys(expected[name])) types[`${name}${path}`] = indexType(await dataset(file, path));
      await source.close();
    }
    expect(new Set(Object.values(types))).toEqual(
      new Set(["btree-v1", "btree-v2", "extensible-array", "fixed-array", "implicit", "single"]),
    );
    expect(types["earliest.h5/many"]).toBe("btree-v1");
    expect(types["latest.h5/single_deflate"]).toBe("single");
    expect(types["latest.h5/implicit_max"]).toBe("implicit");
    expect(types["latest.h5/fa_paged"]).toBe("fixed-array");
    expect(types["latest.h5/fa_deflate_paged"]).toBe("fixed-array");
    expect(types["latest.h5/ea"]).toBe("extensible-array");
    expect(types["latest.h5/ea_dim1"]).toBe("extensible-array");
    expect(types["latest.h5/bt2_deflate"]).toBe("btree-v2");
    // Paging, super blocks and multi-level trees really occur (h5py counts).
    expect(expected["latest.h5"]["/fa_paged"].chunks.length).toBeGreaterThan(0);
    expect(expected["latest.h5"]["/ea"].chunks.some(([o]) => o[0] * 200 + o[1] > 131072)).toBe(true);
    expect(expected["earliest.h5"]["/many"].chunks.length).toBeGreaterThan(64);
  });
});

describe("HDF5 2.0 file written by h5wasm", () => {
  let dir: string;
  let path: string;
  /** What h5wasm (HDF5 2.0) reads back for each dataset, flattened in C order. */
  const values = new Map<string, Float32Array>();
  const shape = [40, 30];
  const cases = {
    fa: { chunks: [7, 4] },
    fa_gz: { chunks: [7, 4], compression: "gzip" as const },
    ea: { chunks: [7, 4], maxshape: [null, 30] },
    ea_gz: { chunks: [6, 5], maxshape: [null, 30], compression: "gzip" as const },
    bt2_gz: { chunks: [9, 4], maxshape: [null, null], compression: "gzip" as const },
    single_gz: { chunks: [40, 30], compression: "gzip" as const },
  };

  beforeAll(async () => {
    const h5wasm = (await import("h5wasm/node")).default;
    await h5wasm.ready;
    dir = await mkdtemp(join(tmpdir(), "chunk-index-h5wasm-"));
    path = join(dir, "v200.h5");
    const f = new h5wasm.File(path, "w", { libver: "latest" });
    const data = Float32Array.from({ length: 40 * 30 }, (_, i) => Math.sin(i) * 1000);
    for (const [name, opts] of Object.entries(cases)) {
      f.create_dataset({ name, data, shape, dtype: "<f4", ...opts });
    }
    f.close();
    const r = new h5wasm.File(path, "r");
    for (const name of Object.keys(cases)) {
      const ds = r.get(name) as InstanceType<typeof h5wasm.Dataset>;
      values.set(name, ds.value as Float32Array);
    }
    r.close();
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("filtered datasets get layout message v5, with 8-byte chunk size fields, and every entry decodes to h5wasm's values", async () => {
    const bytes = new Uint8Array(await readFile(path));
    const file = await openHdf5(memorySource(bytes, path));
    const versions: Record<string, number | undefined> = {};
    for (const [name, opts] of Object.entries(cases)) {
      const d = await dataset(file, `/${name}`);
      if (d.layout.kind !== "chunked") throw new Error(`${name} is not chunked`);
      versions[name] = d.layout.layoutVersion;
      const chunks = await readChunkIndex(file.context, d);
      const grid = shape.map((n, i) => Math.ceil(n / opts.chunks[i]));
      expect(chunks.length, name).toBe(grid[0] * grid[1]);
      expectChunksHoldValues(name, bytes, chunks, shape, opts.chunks, values.get(name)!, "compression" in opts);
    }
    // What h5wasm 0.10.3 (HDF5 2.0) writes with libver "latest": v5 only when filters are present.
    expect(versions).toEqual({ fa: 4, fa_gz: 5, ea: 4, ea_gz: 5, bt2_gz: 5, single_gz: 5 });
  });
});

describe("deep trees and many blocks, written by h5wasm (HDF5 2.0)", () => {
  let dir: string;
  const files = new Map<string, { bytes: Uint8Array; values: Map<string, Float32Array> }>();
  // 80 x 80 one-element chunks: 6,400 chunks, two levels below the root in both B-tree kinds.
  const cases = {
    grid: { shape: [80, 80], chunks: [1, 1] },
    long: { shape: [20000], chunks: [1] },
    long_gz: { shape: [3000], chunks: [1], compression: "gzip" as const },
  };

  beforeAll(async () => {
    const h5wasm = (await import("h5wasm/node")).default;
    await h5wasm.ready;
    dir = await mkdtemp(join(tmpdir(), "chunk-index-deep-"));
    // Default bounds (earliest, latest) keep layout v3 and v1 B-trees; "latest" picks the new indexes.
    for (const label of ["v1", "latest"] as const) {
      const path = join(dir, `${label}.h5`);
      const f = new h5wasm.File(path, "w", { libver: label === "v1" ? ["earliest", "latest"] : "latest" });
      for (const [name, c] of Object.entries(cases)) {
        const n = c.shape.reduce((a, b) => a * b, 1);
        const data = Float32Array.from({ length: n }, (_, i) => i * 0.5 - 7);
        const unlimited = label === "latest" && name !== "long_gz" ? c.shape.map(() => null) : undefined;
        f.create_dataset({ name, data, shape: c.shape, dtype: "<f4", chunks: c.chunks, maxshape: unlimited, ...("compression" in c ? { compression: c.compression } : {}) });
      }
      f.close();
      const r = new h5wasm.File(path, "r");
      const values = new Map<string, Float32Array>();
      for (const name of Object.keys(cases)) values.set(name, (r.get(name) as InstanceType<typeof h5wasm.Dataset>).value as Float32Array);
      r.close();
      files.set(label, { bytes: new Uint8Array(await readFile(path)), values });
    }
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ["v1", "grid", "btree-v1"],
    ["v1", "long", "btree-v1"],
    ["latest", "grid", "btree-v2"],
    ["latest", "long", "extensible-array"],
    ["latest", "long_gz", "fixed-array"],
  ] as const)("%s file, %s: %s", async (label, name, type) => {
    const { bytes, values } = files.get(label)!;
    const file = await openHdf5(memorySource(bytes));
    const d = await dataset(file, `/${name}`);
    expect(indexType(d)).toBe(type);
    if (d.layout.kind !== "chunked") throw new Error("not chunked");
    const { address } = d.layout.index;
    if (type === "btree-v1") expect(bytes[address + 5]).toBeGreaterThanOrEqual(2); // root level
    if (type === "btree-v2") expect((await readBTree2Header(file.context, address)).depth).toBeGreaterThanOrEqual(2);
    const c = cases[name];
    const chunks = await readChunkIndex(file.context, d);
    expect(chunks.length).toBe(c.shape.reduce((a, b) => a * b, 1));
    expect(new Set(chunks.map((e) => e.coords.join())).size).toBe(chunks.length);
    expectChunksHoldValues(`${label}/${name}`, bytes, chunks, c.shape, c.chunks, values.get(name)!, "compression" in c);
  });
});

describe("v1 B-tree group nodes (type 0) of old-style groups (h5py earliest.h5)", () => {
  const names = JSON.parse(readFileSync(join(fixtures, "groups.json"), "utf8")) as Record<string, { links: string[] }>;

  it.each(["/", "/old_style"])("%s: symbol table nodes in order hold every link h5py lists", async (path) => {
    const bytes = new Uint8Array(await readFile(join(fixtures, "earliest.h5")));
    const file = await openHdf5(memorySource(bytes));
    const node = await file.get(path);
    if (node?.kind !== "group") throw new Error(`${path} is not a group`);
    const { symbolTable } = await new ObjectReader(file.context).object(node.address);
    const nodes = await readGroupBTree1(file.context, symbolTable!.btreeAddress);
    let symbols = 0;
    for (const snod of nodes) {
      expect(new TextDecoder().decode(bytes.subarray(snod, snod + 4))).toBe("SNOD");
      symbols += new DataView(bytes.buffer).getUint16(snod + 6, true);
    }
    expect(symbols).toBe(names[`earliest.h5${path}`].links.length);
    if (path === "/old_style") expect(bytes[symbolTable!.btreeAddress + 5]).toBeGreaterThanOrEqual(1); // root level
  });
});

describe("v2 B-tree records of dense groups and attributes (h5py groups.h5)", () => {
  const names = JSON.parse(readFileSync(join(fixtures, "groups.json"), "utf8")) as {
    "/dense": { links: string[] };
    "/attrs": { attributes: string[] };
  };
  const utf8 = new TextEncoder();
  const hashes = (list: string[]) => list.map((n) => lookup3(utf8.encode(n))).sort((a, b) => a - b);
  const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
  let file: Hdf5File;
  let reader: ObjectReader;
  beforeAll(async () => {
    file = await openHdf5(memorySource(new Uint8Array(await readFile(join(fixtures, "groups.h5")))));
    reader = new ObjectReader(file.context);
  });

  async function info(path: string) {
    const node = await file.get(path);
    if (node?.kind !== "group" && node?.kind !== "dataset") throw new Error(`${path} is not an object`);
    return reader.object(node.address);
  }

  it("link name index (type 5): one record per link, in hash order, hashes of h5py's names", async () => {
    const { linkInfo } = await info("/dense");
    const records = await readBTree2Records(file.context, linkInfo!.nameIndexAddress, decodeLinkNameRecord);
    const header = await readBTree2Header(file.context, linkInfo!.nameIndexAddress);
    expect(header.type).toBe(5);
    expect(header.depth).toBeGreaterThanOrEqual(1); // internal nodes are walked too
    expect(records.map((r) => r.hash)).toEqual(hashes(names["/dense"].links));
    expect(new Set(records.map((r) => r.heapId.length))).toEqual(new Set([header.recordSize - 4]));
  });

  it("link creation order index (type 6): creation orders 0..n-1 in order, same heap IDs as the name index", async () => {
    const { linkInfo } = await info("/dense");
    const byOrder = await readBTree2Records(file.context, linkInfo!.creationOrderIndexAddress!, decodeLinkCreationOrderRecord);
    const byName = await readBTree2Records(file.context, linkInfo!.nameIndexAddress, decodeLinkNameRecord);
    expect(byOrder.map((r) => r.creationOrder)).toEqual(names["/dense"].links.map((_, i) => i));
    expect(new Set(byOrder.map((r) => hex(r.heapId)))).toEqual(new Set(byName.map((r) => hex(r.heapId))));
  });

  it("attribute name (type 8) and creation order (type 9) indexes agree with h5py's attributes", async () => {
    const { attributeInfo } = await info("/attrs");
    const byName = await readBTree2Records(file.context, attributeInfo!.nameIndexAddress, decodeAttributeNameRecord);
    const byOrder = await readBTree2Records(
      file.context,
      attributeInfo!.creationOrderIndexAddress!,
      decodeAttributeCreationOrderRecord,
    );
    const list = names["/attrs"].attributes;
    expect(byName.map((r) => r.hash)).toEqual(hashes(list));
    expect(byName.map((r) => r.creationOrder).sort((a, b) => a - b)).toEqual(list.map((_, i) => i));
    expect(byOrder.map((r) => r.creationOrder)).toEqual(list.map((_, i) => i));
    expect(byName.every((r) => r.flags === 0 && r.heapId.length === 8)).toBe(true);
    // The same attribute has the same heap ID in both indexes.
    const idByOrder = new Map(byOrder.map((r) => [r.creationOrder, hex(r.heapId)]));
    for (const r of byName) expect(hex(r.heapId)).toBe(idByOrder.get(r.creationOrder));
  });

  it("a decoder for another record type is refused", async () => {
    const { linkInfo } = await info("/dense");
    await expect(readBTree2Records(file.context, linkInfo!.nameIndexAddress, decodeAttributeNameRecord)).rejects.toThrow(
      Hdf5FormatError,
    );
  });
});

describe("damaged files fail with Hdf5FormatError", () => {
  let latest: Uint8Array;
  let earliest: Uint8Array;
  beforeAll(async () => {
    latest = new Uint8Array(await readFile(join(fixtures, "latest.h5")));
    earliest = new Uint8Array(await readFile(join(fixtures, "earliest.h5")));
  });

  /** Opens a modified copy and returns the dataset and its index address (from the intact file). */
  async function damaged(bytes: Uint8Array, path: string, damage: (copy: Uint8Array, index: number, view: DataView) => void) {
    const intact = await openHdf5(memorySource(bytes));
    const d = await dataset(intact, path);
    if (d.layout.kind !== "chunked") throw new Error("not chunked");
    const copy = bytes.slice();
    damage(copy, d.layout.index.address, new DataView(copy.buffer));
    const file = await openHdf5(memorySource(copy));
    return { file, d };
  }

  /** Rewrites the lookup3 checksum that follows `bytes[start..end)`. */
  function reseal(copy: Uint8Array, start: number, end: number) {
    new DataView(copy.buffer).setUint32(end, lookup3(copy.subarray(start, end)), true);
  }

  async function expectFormatError(file: Hdf5File, d: Dataset, message: RegExp) {
    const err = await readChunkIndex(file.context, d).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Hdf5FormatError);
    expect(String((err as Error).message)).toMatch(message);
  }

  it("a flipped byte in a fixed array data block page fails its checksum", async () => {
    const { file, d } = await damaged(latest, "/fa_paged", (copy, fahd, view) => {
      const dblk = Number(view.getBigUint64(fahd + 8 + 8, true));
      copy[dblk + 40] ^= 0xff; // inside the first page
    });
    await expectFormatError(file, d, /checksum mismatch/);
  });

  it("a fixed array header claiming 2^40 entries is rejected before any allocation", async () => {
    const { file, d } = await damaged(latest, "/fa", (copy, fahd, view) => {
      view.setBigUint64(fahd + 8, 1n << 40n, true);
      reseal(copy, fahd, fahd + 8 + 8 + 8);
    });
    await expectFormatError(file, d, /entries, but the chunk grid has/);
  });

  it("an extensible array header claiming more elements than its bit width allows is rejected", async () => {
    const { file, d } = await damaged(latest, "/ea", (copy, eahd, view) => {
      view.setBigUint64(eahd + 12 + 4 * 8, 1n << 40n, true); // max index set
      reseal(copy, eahd, eahd + 12 + 6 * 8 + 8);
    });
    await expectFormatError(file, d, /max index .* beyond 2\^32/);
  });

  it("a v2 B-tree header whose record count disagrees with its nodes is rejected", async () => {
    const { file, d } = await damaged(latest, "/bt2", (copy, bthd, view) => {
      const total = 4 + 1 + 1 + 4 + 2 + 2 + 1 + 1 + 8 + 2;
      view.setBigUint64(bthd + total, 299n, true);
      reseal(copy, bthd, bthd + total + 8);
    });
    await expectFormatError(file, d, /found 300 records, header says 299/);
  });

  it("a v1 B-tree whose child points back at the root is reported as a cycle", async () => {
    const { file, d } = await damaged(earliest, "/many", (copy, root, view) => {
      expect(copy[root + 5]).toBeGreaterThan(0); // the root is an internal node
      view.setBigUint64(root + 24 + 32, BigInt(root), true); // first child pointer := root
    });
    await expectFormatError(file, d, /cycle|level/);
  });

  it("a v1 B-tree node claiming an absurd level is rejected", async () => {
    const { file, d } = await damaged(earliest, "/many", (copy, root) => {
      copy[root + 5] = 200;
    });
    await expectFormatError(file, d, /implausible node level 200/);
  });

  it("a file truncated inside an index fails as truncated", async () => {
    const intact = await openHdf5(memorySource(latest));
    const d = await dataset(intact, "/fa_deflate_paged");
    if (d.layout.kind !== "chunked") throw new Error("not chunked");
    // Same file geometry, but the object ends 20 bytes into the fixed array header.
    const cut = latest.slice(0, d.layout.index.address + 20);
    const ctx = new FileContext(new CachedSource(memorySource(cut)), intact.context.sizes, intact.context.base);
    const err = await readChunkIndex(ctx, d).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Hdf5FormatError);
    expect(String(err)).toMatch(/truncated/);
  });

  it("an index that contradicts the dataspace is a format error; a contiguous dataset has no index", async () => {
    const file = await openHdf5(memorySource(latest));
    const ea = await dataset(file, "/ea");
    await expect(readChunkIndex(file.context, { ...ea, maxShape: [701, 200] })).rejects.toThrow(/exactly one/);
    const fa = await dataset(file, "/fa");
    await expect(readChunkIndex(file.context, { ...fa, maxShape: [null, 19] })).rejects.toBeInstanceOf(Hdf5FormatError);
    await expect(readChunkIndex(file.context, { ...fa, shape: [20] })).rejects.toBeInstanceOf(Hdf5FormatError);
    const contiguous: Dataset = { ...fa, layout: { kind: "contiguous", address: 0, size: 0 } };
    await expect(readChunkIndex(file.context, contiguous)).rejects.toBeInstanceOf(UnsupportedFeatureError);
  });

  it("an aborted signal stops the read", async () => {
    const file = await openHdf5(memorySource(latest));
    const d = await dataset(file, "/ea");
    const controller = new AbortController();
    controller.abort(new Error("stop"));
    await expect(readChunkIndex(file.context, d, { signal: controller.signal })).rejects.toThrow("stop");
  });
});
