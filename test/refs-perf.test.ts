/**
 * Request counts of reference generation (counts, not times): a v1 B-tree chunk index whose leaves
 * lie far apart between the chunks they index, written by the real HDF5 library (h5wasm). Every
 * level of the tree is read in one batch of exact node-sized ranges, without read-ahead, and in one
 * multi-range call when the source offers `readRanges`.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Hdf5FormatError } from "../src/errors.js";
import { openHdf5 } from "../src/hdf5/file.js";
import type { ByteSource } from "../src/hdf5/io.js";
import type { Dataset } from "../src/hdf5/model.js";
import { buildFromReader, buildReferences } from "../src/refs/build.js";
import { filtersToCodecs } from "../src/refs/filters.js";
import { localFileSource } from "../src/refs/source.js";

// 2 KiB chunks, 1,024 of them: the index's leaves end up ~256 KiB apart in a 2 MB file, farther
// than the block cache's first read (64 KiB blocks + 3 read ahead) reaches.
const shape = [128, 128, 128];
const chunks = [8, 8, 32];
const nChunks = 16 * 16 * 4;

/** The file on disk, counting each call a server would see as one request. */
function countingSource(path: string, multiRange: boolean) {
  const file = localFileSource(path);
  const counts = { reads: 0, multiReads: 0, rangesInMulti: 0, bytes: 0 };
  const source: ByteSource = {
    name: path,
    size: () => file.size(),
    async read(offset, length) {
      counts.reads++;
      const bytes = await file.read(offset, length);
      counts.bytes += bytes.length;
      return bytes;
    },
  };
  if (multiRange) {
    source.readRanges = async (ranges) => {
      counts.multiReads++;
      counts.rangesInMulti += ranges.length;
      const parts = await Promise.all(ranges.map((r) => file.read(r.offset, r.length)));
      for (const p of parts) counts.bytes += p.length;
      return parts;
    };
  }
  return { source, counts };
}

describe("reference generation: requests for a scattered v1 B-tree", () => {
  let dir: string;
  let path: string;
  let fileSize: number;
  let leaves: number;

  beforeAll(async () => {
    const h5wasm = (await import("h5wasm/node")).default;
    await h5wasm.ready;
    dir = await mkdtemp(join(tmpdir(), "refs-perf-"));
    path = join(dir, "scattered.h5");
    const f = new h5wasm.File(path, "w");
    const data = Uint8Array.from({ length: 128 * 128 * 128 }, (_, i) => (i * 7 + (i >> 9)) & 255);
    f.create_dataset({ name: "data", data, shape, dtype: "<B", chunks });
    f.close();
    fileSize = (await localFileSource(path).size())!;
    // The tree's shape, as the file has it: every node read with 4 KiB blocks and no read-ahead.
    const probe = countingSource(path, false);
    const file = await openHdf5(probe.source, { blockSize: 4096, readAhead: 0 });
    const d = (await file.get("/data")) as Dataset;
    expect(d.layout.kind === "chunked" && d.layout.index.type).toBe("btree-v1");
    const before = probe.counts.reads;
    expect(await file.chunks(d)).toHaveLength(nChunks);
    leaves = probe.counts.reads - before;
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("the fixture's leaves are scattered: more than one, each read on its own", () => {
    expect(leaves).toBeGreaterThan(1);
  });

  it("reads node bytes, not blocks around them: a small fraction of the file", async () => {
    const { source, counts } = countingSource(path, false);
    const file = await openHdf5(source);
    const { references } = await buildFromReader(file, filtersToCodecs, { url: "scattered.h5", inlineThreshold: 0 });
    expect(Object.keys(references.refs).filter((k) => k.startsWith("data/") && !k.includes("/."))).toHaveLength(nChunks);
    // Metadata at the start (block cache) + one request per leaf at most: the leaves are farther
    // apart than the coalescing gap, and a level is one batch.
    expect(counts.reads).toBeLessThanOrEqual(2 + leaves);
    // Old behaviour: 256 KiB of read-ahead per leaf, i.e. most of the file.
    console.log(`refs-perf: ${leaves} node reads with 4 KiB blocks; defaults: ${counts.reads} reads, ${counts.bytes} of ${fileSize} bytes`);
    expect(counts.bytes).toBeLessThan(fileSize / 2);
    expect(file.context.source.requests).toBe(counts.reads);
    expect(file.context.source.bytesRead).toBe(counts.bytes);
  });

  it("a source with readRanges gets each level of the tree as one multi-range call", async () => {
    const { source, counts } = countingSource(path, true);
    const file = await openHdf5(source);
    const { references } = await buildFromReader(file, filtersToCodecs, { url: "scattered.h5", inlineThreshold: 0 });
    expect(references).toEqual(await buildReferences(path, { url: "scattered.h5", inlineThreshold: 0 }));
    // The leaf level in one call (plus at most one for nodes the size guess missed).
    expect(counts.multiReads).toBeGreaterThanOrEqual(1);
    expect(counts.multiReads).toBeLessThanOrEqual(2);
    console.log(`refs-perf: ${leaves} node reads with 4 KiB blocks; with readRanges: ${counts.reads} reads + ${counts.multiReads} multi-range calls of ${counts.rangesInMulti} ranges, ${counts.bytes} of ${fileSize} bytes`);
    // Every node not already in the block cache (the first ones sit near the metadata) goes in it.
    expect(counts.rangesInMulti).toBeGreaterThanOrEqual(leaves / 2);
    expect(counts.reads + counts.multiReads).toBeLessThanOrEqual(4);
    expect(file.context.source.requests).toBe(counts.reads + counts.multiReads);
  });

  it("a file cut inside the leaf level fails with Hdf5FormatError at a B-tree node, with or without readRanges", async () => {
    const cut = join(dir, "cut.h5");
    await writeFile(cut, (await readFile(path)).subarray(0, Math.floor(fileSize * 0.6)));
    for (const multiRange of [false, true]) {
      const { source } = countingSource(cut, multiRange);
      // A source that cannot tell its size (else the superblock check catches the cut first).
      source.size = async () => undefined;
      const file = await openHdf5(source);
      const d = (await file.get("/data")) as Dataset;
      const error = await file.chunks(d).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(Hdf5FormatError);
      expect(String(error)).toMatch(/v1 B-tree node/);
    }
  });

  it("a failing read is an error, not a shorter index", async () => {
    const { source } = countingSource(path, true);
    let calls = 0;
    source.readRanges = async () => {
      calls++;
      throw new Error("connection reset");
    };
    const file = await openHdf5(source);
    const d = (await file.get("/data")) as Dataset;
    await expect(file.chunks(d)).rejects.toThrow(/connection reset/);
    expect(calls).toBe(1);
  });
});
