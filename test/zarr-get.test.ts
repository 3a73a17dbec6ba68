/**
 * Our `get` against zarrita's: the same arrays and selections must give the same bytes, shape and
 * strides. Random selections (steps, integers, negative indices, nulls, empty; zarrita's get takes no
 * negative steps) over C- and F-order chunks,
 * edge chunks, every element size, and chunks never written (fill value).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test, vi } from "vitest";
import * as zarr from "zarrita";
import { ReferenceStore } from "../src/refs/reference-store.js";
import { BufferPool } from "../src/stores/buffer-pool.js";
import { LocalStore } from "../src/stores/local.js";
import { copiesChunks, get } from "../src/zarr/get.js";

type Sel = (number | zarr.Slice | null)[];

/** A small deterministic generator, so a failure names a reproducible seed. */
function rng(seed: number) {
  let s = seed >>> 0;
  return (n: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

const DTYPES = {
  int8: Int8Array, uint16: Uint16Array, int32: Int32Array, float32: Float32Array,
  float64: Float64Array, int64: BigInt64Array, uint64: BigUint64Array,
} as const;

/** A v2 array in memory whose every element is distinct; chunk (0, …) left unwritten when `hole`. */
async function makeArray(dtype: keyof typeof DTYPES, shape: number[], chunks: number[], order: "C" | "F", hole: boolean) {
  const store = new Map<string, Uint8Array>();
  const codes: Record<string, string> = {
    int8: "|i1", uint16: "<u2", int32: "<i4", float32: "<f4", float64: "<f8", int64: "<i8", uint64: "<u8",
  };
  const meta = { zarr_format: 2, shape, chunks, dtype: codes[dtype], order, compressor: null, filters: null, fill_value: 7 };
  store.set("/a/.zarray", new TextEncoder().encode(JSON.stringify(meta)));
  const Kind = DTYPES[dtype];
  const grid = shape.map((s, d) => Math.ceil(s / chunks[d]));
  const size = chunks.reduce((a, b) => a * b, 1);
  let counter = 1;
  const coords = grid.map(() => 0);
  for (;;) {
    if (!(hole && coords.every((c) => c === 0))) {
      const data = new Kind(size);
      for (let i = 0; i < size; i++) {
        const v = counter++ % 120;
        (data as unknown as (number | bigint)[])[i] = Kind === BigInt64Array || Kind === BigUint64Array ? BigInt(v) : v;
      }
      store.set(`/a/${coords.join(".")}`, new Uint8Array(data.buffer));
    }
    let d = grid.length - 1;
    while (d >= 0 && ++coords[d] === grid[d]) coords[d--] = 0;
    if (d < 0) break;
  }
  const readable = { get: async (key: string) => store.get(key) };
  return zarr.open.v2(zarr.root(readable).resolve("a"), { kind: "array" });
}

function randomSelection(shape: number[], next: (n: number) => number): Sel {
  return shape.map((n): number | zarr.Slice | null => {
    switch (next(5)) {
      case 0:
        return null;
      case 1:
        return next(n) - (next(2) ? n : 0); // an integer, maybe negative
      case 2:
        return zarr.slice(next(2) ? null : next(n), null, 1 + next(4)); // open-ended
      default: {
        const a = next(n + 1);
        const b = next(n + 1);
        return zarr.slice(Math.min(a, b), Math.max(a, b), 1 + next(3));
      }
    }
  });
}

const bytesOf = (v: ArrayBufferView) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);

describe("get: zarrita's get with a faster chunk copy", () => {
  test("the installed zarrita takes our setter (else get silently falls back to zarr.get)", () => {
    expect(copiesChunks).toBe(true);
  });

  const cases: [keyof typeof DTYPES, number[], number[], "C" | "F"][] = [
    ["float64", [13, 17, 9], [5, 4, 9], "C"],
    ["float64", [13, 17, 9], [5, 4, 3], "F"],
    ["float32", [30, 31], [7, 31], "C"],
    ["int8", [11, 6, 5, 4], [3, 6, 2, 3], "C"],
    ["uint16", [40], [9], "C"],
    ["int32", [8, 9, 10], [8, 9, 10], "F"],
    ["int64", [12, 10], [5, 5], "C"],
    ["uint64", [9, 9, 9], [4, 9, 2], "F"],
  ];
  test.each(cases)("%s %j in chunks %j, order %s: 120 random selections agree byte for byte", async (dtype, shape, chunks, order) => {
    for (const hole of [false, true]) {
      const arr = await makeArray(dtype, shape, chunks, order, hole);
      const next = rng(shape.length * 1000 + chunks[0] + (hole ? 1 : 0));
      for (let k = 0; k < 120; k++) {
        const selection = k === 0 ? null : randomSelection(shape, next);
        const where = `${dtype} ${JSON.stringify(selection)}`;
        const theirs = await zarr.get(arr, selection).catch((e: Error) => e);
        if (theirs instanceof Error) {
          // zarrita refuses some selections (empty ones); ours must refuse them the same way
          await expect(get(arr, selection), where).rejects.toThrow(theirs.message);
          continue;
        }
        const ours = await get(arr, selection);
        if (typeof theirs === "object" && theirs !== null && "data" in theirs) {
          const o = ours as zarr.Chunk<zarr.DataType>;
          expect(o.shape, where).toEqual(theirs.shape);
          expect(o.stride, where).toEqual(theirs.stride);
          expect(bytesOf(o.data as ArrayBufferView), where).toEqual(bytesOf(theirs.data as ArrayBufferView));
        } else {
          expect(ours, where).toEqual(theirs);
        }
      }
    }
  });

  test("NaN payloads and every bit of float64 come through unchanged", async () => {
    const store = new Map<string, Uint8Array>();
    const meta = { zarr_format: 2, shape: [6, 6], chunks: [4, 4], dtype: "<f8", order: "C", compressor: null, filters: null, fill_value: 0 };
    store.set("/a/.zarray", new TextEncoder().encode(JSON.stringify(meta)));
    for (const key of ["0.0", "0.1", "1.0", "1.1"]) {
      const words = new Uint32Array(32);
      for (let i = 0; i < 32; i += 2) [words[i], words[i + 1]] = [0x12345 + i, 0x7ff00000 | (i + 1)]; // signalling NaNs
      store.set(`/a/${key}`, new Uint8Array(words.buffer));
    }
    const arr = await zarr.open.v2(zarr.root({ get: async (k: string) => store.get(k) }).resolve("a"), { kind: "array" });
    const sel = [zarr.slice(1, 6, 2), zarr.slice(null, null, 3)];
    const ours = await get(arr, sel);
    const theirs = await zarr.get(arr, sel);
    expect(bytesOf(ours.data as Float64Array)).toEqual(bytesOf(theirs.data as Float64Array));
  });

  test("arrays of other kinds (bool) go through zarrita's own get", async () => {
    const store = new Map<string, Uint8Array>();
    const meta = { zarr_format: 2, shape: [5], chunks: [2], dtype: "|b1", order: "C", compressor: null, filters: null, fill_value: false };
    store.set("/a/.zarray", new TextEncoder().encode(JSON.stringify(meta)));
    for (const [k, v] of [["0", [1, 0]], ["1", [0, 1]], ["2", [1, 1]]] as const) store.set(`/a/${k}`, new Uint8Array(v));
    const arr = await zarr.open.v2(zarr.root({ get: async (k: string) => store.get(k) }).resolve("a"), { kind: "array" });
    const ours = await get(arr, null);
    expect(Array.from({ length: 5 }, (_, i) => (ours.data as zarr.BoolArray).get(i))).toEqual([true, false, false, true, true]);
  });
});

describe("get: chunk reads of our stores share pooled buffers", () => {
  const dir = mkdtempSync(join(tmpdir(), "zarr-get-pool-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const shape = [40, 30, 100];
  const chunks = [10, 10, 100]; // 10,000 float64 = 80,000 bytes per chunk (pooled reads start at 64 KiB), 12 chunks
  const values = Float64Array.from({ length: 40 * 30 * 100 }, (_, i) => Math.sin(i) * 1e6);
  const zarray = JSON.stringify({ zarr_format: 2, shape, chunks, dtype: "<f8", order: "C", compressor: null, filters: null, fill_value: 0 });

  /** Chunk (i, j, 0)'s bytes, C order. */
  function chunkBytes(i: number, j: number): Uint8Array {
    const out = new Float64Array(10_000);
    for (let a = 0; a < 10; a++) {
      for (let b = 0; b < 10; b++) {
        const row = (i * 10 + a) * 30 + j * 10 + b;
        out.set(values.subarray(row * 100, (row + 1) * 100), (a * 10 + b) * 100);
      }
    }
    return new Uint8Array(out.buffer);
  }
  const keys: [string, Uint8Array][] = [];
  for (let i = 0; i < 4; i++) for (let j = 0; j < 3; j++) keys.push([`a/${i}.${j}.0`, chunkBytes(i, j)]);

  test("a reference set over a local file: a few pooled blocks carry every chunk, values unchanged", async () => {
    const store = new LocalStore(dir);
    await store.set("all.bin", Buffer.concat(keys.map(([, b]) => b)));
    const refs: Record<string, unknown> = { ".zgroup": JSON.stringify({ zarr_format: 2 }), "a/.zarray": zarray };
    keys.forEach(([k], n) => (refs[k] = ["all.bin", n * 80_000, 80_000]));
    // Blocks of at most two chunks, two requests in flight: reuse has to happen for this to be few.
    const refStore = new ReferenceStore({ version: 1, refs } as never, { baseDir: dir, maxBlock: 160_000, concurrency: 2 });
    const take = vi.spyOn(BufferPool.prototype, "take");
    try {
      const arr = await zarr.open.v2(zarr.root(refStore).resolve("a"), { kind: "array" });
      const ours = await get(arr, null);
      expect(Buffer.from((ours.data as Float64Array).buffer).equals(Buffer.from(values.buffer))).toBe(true);
      const pools = new Set(take.mock.contexts as BufferPool[]);
      expect(pools.size).toBe(1);
      const [pool] = pools;
      expect(pool.stats.taken).toBeGreaterThanOrEqual(6);
      expect(pool.stats.reused).toBeGreaterThanOrEqual(pool.stats.taken - 3);
    } finally {
      take.mockRestore();
    }
  });

  /**
   * zarrita's chunk queue, one chunk at a time: a pooled buffer given back would carry the next
   * chunk (and overwrite a cache's copy of the one before).
   */
  const serial = () => {
    const all: Promise<void>[] = [];
    let last = Promise.resolve();
    return { add: (fn: () => Promise<void>) => void all.push((last = last.then(fn))), onIdle: () => Promise.all(all) };
  };

  test("zarrita's byte cache over our store never sees a pool: what it cached stays right", async () => {
    const store = new LocalStore(join(dir, "cached"));
    await store.set("a/.zarray", new TextEncoder().encode(zarray));
    for (const [k, b] of keys) await store.set(k, b);
    const cached = zarr.withByteCaching(store); // a Proxy over our store: instanceof still says LocalStore
    const arr = await zarr.open.v2(zarr.root(cached).resolve("a"), { kind: "array" });
    const ours = await get(arr, null, { createQueue: serial });
    expect(Buffer.from((ours.data as Float64Array).buffer).equals(Buffer.from(values.buffer))).toBe(true);
    const again = await zarr.get(arr, null); // served from the cache
    expect(Buffer.from((again.data as Float64Array).buffer).equals(Buffer.from(values.buffer))).toBe(true);
  });

  test("an array extension caching chunks (a Proxy over zarrita's Array) never sees a pool", async () => {
    const store = new LocalStore(join(dir, "chunk-cache"));
    await store.set("a/.zarray", new TextEncoder().encode(zarray));
    for (const [k, b] of keys) await store.set(k, b);
    const withChunkCache = zarr.defineArrayExtension((array: zarr.Array<zarr.DataType, zarr.Readable>) => {
      const cache = new Map<string, Promise<zarr.Chunk<zarr.DataType>>>();
      return {
        getChunk(coords: number[], options?: never, opts?: never) {
          const k = coords.join(",");
          if (!cache.has(k)) cache.set(k, array.getChunk(coords, options, opts));
          return cache.get(k)!;
        },
      };
    });
    const arr = withChunkCache(await zarr.open.v2(zarr.root(store).resolve("a"), { kind: "array" }));
    const ours = await get(arr, null, { createQueue: serial });
    expect(Buffer.from((ours.data as Float64Array).buffer).equals(Buffer.from(values.buffer))).toBe(true);
    const again = await zarr.get(arr, null); // every chunk from the extension's cache
    expect(Buffer.from((again.data as Float64Array).buffer).equals(Buffer.from(values.buffer))).toBe(true);
  });

  test("a store that is not ours never sees a pool", async () => {
    const store = new LocalStore(join(dir, "plain"));
    await store.set("a/.zarray", new TextEncoder().encode(zarray));
    for (const [k, b] of keys) await store.set(k, b);
    const seen: unknown[] = [];
    const wrapper = { get: (key: string, options?: unknown) => (seen.push(options), store.get(key)) };
    const arr = await zarr.open.v2(zarr.root(wrapper).resolve("a"), { kind: "array" });
    const ours = await get(arr, null);
    expect(Buffer.from((ours.data as Float64Array).buffer).equals(Buffer.from(values.buffer))).toBe(true);
    expect(seen.length).toBeGreaterThan(12);
    expect(seen.some((o) => typeof o === "object" && o !== null && "buffers" in o)).toBe(false);
  });
});
