/**
 * Pooled reads end to end on the real disk: the local store reads into pooled buffers, coalesced
 * blocks are shared by their chunk views until each is given back, and the engine gives chunks
 * back only after reducing them. Every test checks bytes against an unpooled read of the same file.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openActive } from "../src/active/source.js";
import { reduceArray, type ChunkSource } from "../src/active/engine.js";
import { openHdf5 } from "../src/hdf5/file.js";
import { byteSourceFromStore } from "../src/hdf5/io.js";
import { BatchReader } from "../src/refs/batch-reader.js";
import { buildFromReader } from "../src/refs/build.js";
import { filtersToCodecs } from "../src/refs/filters.js";
import { BufferPool } from "../src/stores/buffer-pool.js";
import { LocalStore } from "../src/stores/local.js";
import { openStore, splitUrl } from "../src/stores/open.js";

const MiB = 2 ** 20;
const dir = mkdtempSync(join(tmpdir(), "buffer-pool-"));
const content = randomBytes(4 * MiB);
writeFileSync(join(dir, "blob"), content);
const FIXTURE = join(import.meta.dirname, "fixtures", "active", "active.nc");

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Whether `bytes` are the file's bytes at `offset` (vitest's deep equality takes seconds per MiB). */
function isFile(bytes: Uint8Array | undefined, offset: number, length: number): boolean {
  return bytes !== undefined && Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).equals(content.subarray(offset, offset + length));
}

describe("pooled store reads", () => {
  it("a coalesced block stays out until every range cut from it is given back", async () => {
    const store = new LocalStore(dir);
    const pool = new BufferPool();
    const ranges = [
      { offset: 0, length: MiB },
      { offset: MiB, length: MiB },
    ];
    const [first, second] = (await store.getRanges("blob", ranges, { buffers: pool }))!;
    expect(first.buffer).toBe(second.buffer);
    expect(pool.holds(first)).toBe(true);
    expect(isFile(first, 0, MiB)).toBe(true);
    pool.give(first);
    // Another read of the same size while `second` is held: a fresh buffer, `second` untouched.
    const other = (await store.getRanges("blob", [{ offset: 2 * MiB, length: 2 * MiB }], { buffers: pool }))!;
    expect(other[0].buffer).not.toBe(second.buffer);
    expect(isFile(other[0], 2 * MiB, 2 * MiB)).toBe(true);
    expect(isFile(second, MiB, MiB)).toBe(true);
    pool.give(second);
    const again = (await store.getRanges("blob", [{ offset: MiB, length: 2 * MiB }], { buffers: pool }))!;
    expect(again[0].buffer).toBe(first.buffer);
    expect(isFile(again[0], MiB, 2 * MiB)).toBe(true);
    expect(pool.stats.reused).toBe(1);
  });

  it("gives the read buffer of a compressed object back and hands on the decompressed bytes", async () => {
    const store = new LocalStore(dir, { compress: "gzip" });
    const value = randomBytes(256 * 1024); // incompressible: the stored object is pool-sized too
    await store.set("zipped", value);
    const pool = new BufferPool();
    const got = (await store.get("zipped", { buffers: pool }))!;
    expect(Buffer.from(got).equals(value)).toBe(true);
    expect(pool.holds(got)).toBe(false);
    expect(pool.stats.taken).toBe(1);
    expect(pool.stats.freeBytes).toBeGreaterThan(0); // the gzip bytes came back
    expect(() => pool.give(got)).not.toThrow(); // not pooled: a no-op
  });

  it("BatchReader pools a block only when every reader of it gives back to that pool", async () => {
    const store = new LocalStore(dir);
    const pool = new BufferPool();
    const reader = new BatchReader();
    const mixed = await Promise.all([
      reader.read(store, "blob", { offset: 0, length: MiB }, pool),
      reader.read(store, "blob", { offset: MiB, length: MiB }),
    ]);
    expect(mixed.map((b) => pool.holds(b!))).toEqual([false, false]);
    const pooled = await Promise.all([
      reader.read(store, "blob", { offset: 0, length: MiB }, pool),
      reader.read(store, "blob", { offset: MiB, length: MiB }, pool),
    ]);
    expect(pooled[0]!.buffer).toBe(pooled[1]!.buffer);
    expect(pooled.map((b) => pool.holds(b!))).toEqual([true, true]);
    expect(isFile(pooled[1], MiB, MiB)).toBe(true);
    pool.give(pooled[0]!);
    pool.give(pooled[1]!);
    expect(pool.holds(pooled[0]!)).toBe(false);
  });

  it("a getRange fallback (no getRanges) splits the block it cuts", async () => {
    const local = new LocalStore(dir);
    const target = { get: local.get.bind(local), getRange: local.getRange.bind(local) };
    const pool = new BufferPool();
    const reader = new BatchReader();
    const [a, b] = await Promise.all([
      reader.read(target, "blob", { offset: 0, length: MiB }, pool),
      reader.read(target, "blob", { offset: MiB, length: MiB }, pool),
    ]);
    expect(a!.buffer).toBe(b!.buffer);
    pool.give(a!);
    expect(pool.holds(b!)).toBe(true);
    expect(isFile(b, MiB, MiB)).toBe(true);
    pool.give(b!);
    expect(pool.holds(b!)).toBe(false);
  });
});

/** The fixture's references with every chunk as a byte range (none inlined), as a server gets them. */
async function openUninlined(variable: string) {
  const { storeUrl, key } = splitUrl(FIXTURE);
  const file = await openHdf5(byteSourceFromStore(openStore(storeUrl), key, FIXTURE));
  const { references } = await buildFromReader(file, filtersToCodecs, { url: FIXTURE, inlineThreshold: 0 });
  return openActive(references, variable, { netcdf: true });
}

describe("the engine with pooled reads", () => {
  /**
   * Hands each chunk to the engine only after other reads had a chance to take buffers, then
   * compares it with an unpooled read of the same chunk: a buffer reused under a held chunk shows.
   */
  function checked(array: ChunkSource, seen: { chunks: number; pooled: number }, pool: BufferPool): ChunkSource {
    return {
      shape: array.shape,
      chunks: array.chunks,
      dtype: array.dtype,
      async getChunk(coords, options) {
        const chunk = await array.getChunk(coords, options);
        const reference = await array.getChunk(coords);
        for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
        const data = chunk.data as ArrayLike<number>;
        expect(Array.from(data)).toEqual(Array.from(reference.data as ArrayLike<number>));
        seen.chunks++;
        if (pool.holds(chunk.data as Uint8Array)) seen.pooled++;
        return chunk;
      },
    };
  }

  for (const variable of ["f8", "i4_big", "f4_zlib", "partial"]) {
    it(`${variable}: same partials with and without the pool, no chunk changed under its reader`, async () => {
      const active = await openUninlined(variable);
      const options = { missing: active.missing, moments: true };
      const plain = await reduceArray(active.array, null, { ...options, buffers: false });
      for (const concurrency of [1, 2, 16]) {
        const pool = new BufferPool({ minSize: 0 });
        const seen = { chunks: 0, pooled: 0 };
        const pooled = await reduceArray(checked(active.array, seen, pool), null, { ...options, buffers: pool, concurrency });
        expect(pooled.chunks).toBe(plain.chunks);
        expect(pooled.partials).toEqual(plain.partials);
        expect(seen.chunks).toBe(plain.chunks);
        if (variable === "f8") {
          // Uncompressed little-endian chunks are views of the pooled blocks (big-endian ones are
          // swapped into new arrays by zarrita), and blocks came back to be reused.
          expect(seen.pooled).toBe(seen.chunks);
          if (concurrency < 16) expect(pool.stats.reused).toBeGreaterThan(0);
        }
      }
      // The same numbers as the public path on the file (checked against numpy in test/active.test.ts).
      const viaFile = await openActive(FIXTURE, variable);
      const unpooled = await reduceArray(viaFile.array, null, { ...options, buffers: false });
      expect(unpooled.partials).toEqual(plain.partials);
    });
  }
});
