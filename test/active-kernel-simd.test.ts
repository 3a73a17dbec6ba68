/**
 * The SIMD fold (src/active/kernel-simd.ts, wasm/fold.wat) and the arena its data is read into
 * (src/stores/arena-pool.ts): the committed wasm is what fold.wat compiles to; sums of data in the
 * arena are bit-identical to the JavaScript loops' (same four lanes), with fills, NaN and every run
 * length; the arena hands regions out again only once every use is back, and falls back to plain
 * buffers when full; a whole engine run over chunks read from disk gives the same partials with the
 * arena as with plain buffers.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import * as zarr from "zarrita";
import { readBuffers, reduceArray } from "../src/active/engine.js";
import { reduceChunk, type ChunkSelection, type MissingRules } from "../src/active/kernel.js";
import { attachSimd, SIMD_RESERVED, simdRowSumsF64, simdSumF64 } from "../src/active/kernel-simd.js";
import type { Partials } from "../src/active/partials.js";
import { ArenaPool } from "../src/stores/arena-pool.js";
import { BufferPool } from "../src/stores/buffer-pool.js";
import { LocalStore } from "../src/stores/local.js";
import { mulberry32 } from "./support/prng.js";

const ROOT = join(import.meta.dirname, "..");

function arena(capacity = 4 << 20): ArenaPool {
  const pool = new ArenaPool(capacity, { reserved: SIMD_RESERVED });
  expect(attachSimd(pool.memory), "this runtime runs wasm SIMD").toBe(true);
  return pool;
}

/** `values` copied into the arena at a given element offset, as a Float64Array view of it. */
function inArena(pool: ArenaPool, values: Float64Array, at: number): Float64Array {
  const bytes = pool.take((values.length + at) * 8 + 64 * 1024);
  expect(pool.inArena(bytes)).toBe(true);
  const view = new Float64Array(bytes.buffer, bytes.byteOffset, values.length + at);
  view.set(values, at);
  return view;
}

function run(data: Float64Array, start: number, n: number): ChunkSelection {
  return { data, chunkShape: [data.length], pieces: [{ chunk: 0, localStart: start, step: 1, count: n, outStart: 0 }], collapsed: [true] };
}

function sameBits(a: Partials, b: Partials, where: string) {
  expect(Array.from(a.count), where).toEqual(Array.from(b.count));
  expect(Array.from(a.nan), where).toEqual(Array.from(b.nan));
  expect(Object.is((a.sum as Float64Array)[0], (b.sum as Float64Array)[0]), `${where}: ${(a.sum as Float64Array)[0]} vs ${(b.sum as Float64Array)[0]}`).toBe(true);
}

describe("SIMD fold", () => {
  it("the committed module is what fold.wat compiles to", () => {
    // Exits 1 (and the call throws) when src/active/wasm/fold-bytes.ts is stale.
    execFileSync(process.execPath, [join(ROOT, "scripts", "build-wasm.mjs"), "--check"], { stdio: "pipe" });
  });

  it("sums data in the arena lane for lane as the JavaScript loop, and leaves other data alone", () => {
    const pool = arena();
    const random = mulberry32(11);
    const values = Float64Array.from({ length: 1000 }, () => (random() - 0.5) * 1e6);
    const view = inArena(pool, values, 3);
    const acc = new Float64Array(8);
    expect(simdSumF64(view, 3, 996, NaN, acc)).toBe(true);
    const lanes = [0, 0, 0, 0];
    for (let j = 0; j < 996; j++) lanes[j % 4] += values[j];
    expect(Array.from(acc.subarray(0, 4))).toEqual(lanes);
    expect(simdSumF64(view, 3, 996, values[500], new Float64Array(8)), "the fill value is seen").toBe(false);
    expect(simdSumF64(values, 0, 996, NaN, new Float64Array(8)), "not in an arena").toBeUndefined();
  });

  it("gives the JavaScript kernel's partials bit for bit, with fills, NaN and any run length", () => {
    const pool = arena(64 << 20);
    const random = mulberry32(7);
    let cases = 0;
    for (let trial = 0; trial < 60; trial++) {
      const length = 256 + Math.floor(random() * 20000);
      const values = new Float64Array(length);
      const density = [0, 0, 0.001, 0.2][trial % 4];
      for (let i = 0; i < length; i++) {
        const r = random();
        values[i] = r < density ? -9999 : trial % 5 === 0 && r < density + 0.001 ? NaN : ((random() - 0.5) / (random() + 0.01)) * 10 ** (trial % 7);
      }
      const at = trial % 4;
      const view = inArena(pool, values, at);
      const rules: MissingRules[] = [{}, { fillValue: -9999 }, { fillValue: -9999, skipNaN: true }, { fillValue: -9999, validMax: 1e5 }];
      for (const missing of rules) {
        for (const start of [0, 1, 5]) {
          const n = length - start - (trial % 3);
          const where = `trial ${trial} rules ${JSON.stringify(missing)} start ${start} n ${n}`;
          for (const moments of [false, true]) {
            const simd = reduceChunk(run(view, at + start, n), { missing, extremes: false, moments });
            const js = reduceChunk(run(values, start, n), { missing, extremes: false, moments });
            sameBits(simd, js, where);
            if (moments) expect(Object.is(simd.m2![0], js.m2![0]), where).toBe(true);
            cases++;
          }
        }
      }
      pool.give(new Uint8Array(view.buffer, view.byteOffset, 8));
    }
    expect(cases).toBe(60 * 4 * 3 * 2);
  });
});

const where0 = (trial: number) => `trial ${trial}`;

describe("SIMD short rows", () => {
  it("edge chunks' short rows: the JavaScript kernel's partials bit for bit, any axis, with fills and NaN", () => {
    const pool = arena(16 << 20);
    const random = mulberry32(23);
    const shape = [6, 7, 61];
    const size = shape[0] * shape[1] * shape[2];
    let grouped = 0;
    for (let trial = 0; trial < 24; trial++) {
      const values = new Float64Array(size);
      const density = [0, 0.0005, 0.01][trial % 3];
      for (let i = 0; i < size; i++) {
        const r = random();
        // full-mantissa values (a quotient), so that any change in the order of additions shows
        values[i] = r < density ? -9999 : trial % 4 === 3 && r < density + 0.002 ? NaN : ((random() - 0.5) / (random() + 0.01)) * 10 ** (trial % 6);
      }
      const view = inArena(pool, values, trial % 3);
      const data = new Float64Array(view.buffer, view.byteOffset + (trial % 3) * 8, size);
      // Rows of 4 to 60 elements (every n mod 4), cut at either end; every choice of collapsed axes.
      const n = 4 + (trial % 57);
      const start = trial % 2 === 0 ? 0 : shape[2] - n;
      const pieces = [
        { chunk: 0, localStart: 1, step: 1, count: 5, outStart: 0 },
        { chunk: 0, localStart: 0, step: 1, count: 7, outStart: 0 },
        { chunk: 0, localStart: start, step: 1, count: n, outStart: 0 },
      ];
      if (trial % 12 === 0) {
        // clean rows: the grouped SIMD path is taken, not the row-by-row fallback
        const sums = simdRowSumsF64(data, start, 3, shape[2], n, NaN);
        expect(sums, where0(trial)).toBeInstanceOf(Float64Array);
        const lanes = [0, 0, 0, 0];
        for (let j = 0; j < n; j++) lanes[j % 4] += values[start + j];
        expect(sums![0]).toBe(lanes[0] + lanes[1] + (lanes[2] + lanes[3]));
      }
      for (const collapsed of [[true, true, true], [false, true, true], [false, false, true], [true, false, true]]) {
        for (const missing of [{}, { fillValue: -9999 }, { fillValue: -9999, skipNaN: true }] as MissingRules[]) {
          const where = `trial ${trial} n ${n} collapsed ${collapsed} ${JSON.stringify(missing)}`;
          const simd = reduceChunk({ data, chunkShape: shape, pieces, collapsed }, { missing, extremes: false });
          const js = reduceChunk({ data: values, chunkShape: shape, pieces, collapsed }, { missing, extremes: false });
          expect(Array.from(simd.count), where).toEqual(Array.from(js.count));
          expect(Array.from(simd.nan), where).toEqual(Array.from(js.nan));
          const bits = (p: Partials) => Array.from(p.sum as Float64Array, (v) => (Object.is(v, -0) ? "-0" : String(v)));
          expect(bits(simd), where).toEqual(bits(js));
          expect(Array.from(simd.min as Float64Array), where).toEqual(Array.from(js.min as Float64Array));
          expect(Array.from(simd.max as Float64Array), where).toEqual(Array.from(js.max as Float64Array));
          grouped++;
        }
      }
      pool.give(new Uint8Array(view.buffer, view.byteOffset, 8));
    }
    expect(grouped).toBe(24 * 4 * 3);
  });
});

describe("which reads land in the arena", () => {
  it("raw float64 chunks of 64 KiB and up only: a compressed chunk's read never comes back from its codec", async () => {
    const spec = { dtype: "float64", chunks: [100, 100], shape: [1000, 1000] } as unknown as Parameters<typeof readBuffers>[0];
    const layout = (plainElements: boolean) => ({ plainElements }) as Parameters<typeof readBuffers>[1];
    expect(readBuffers(spec, layout(true), {})).toBeInstanceOf(ArenaPool);
    expect(readBuffers(spec, layout(false), {})).not.toBeInstanceOf(ArenaPool);
    expect(readBuffers(spec, undefined, {})).not.toBeInstanceOf(ArenaPool);
    const small = { ...spec, chunks: [10, 10] } as typeof spec;
    expect(readBuffers(small, layout(true), {})).not.toBeInstanceOf(ArenaPool);
  });
});

describe("ArenaPool", () => {
  it("hands a region out again only when every use of it is back", () => {
    const pool = new ArenaPool(1 << 20);
    const block = pool.take(200_000);
    expect(pool.inArena(block)).toBe(true);
    const parts = [block.subarray(0, 100_000), block.subarray(100_000)];
    pool.split(block, parts);
    pool.give(parts[0]);
    expect(pool.holds(parts[1])).toBe(true);
    const other = pool.take(200_000);
    expect(other.byteOffset, "the block is still out").not.toBe(block.byteOffset);
    pool.give(parts[1]);
    expect(() => pool.give(parts[1]), "the same use twice").toThrow(/already given back/);
    const again = pool.take(199_000);
    expect(again.byteOffset, "same size class, reused").toBe(block.byteOffset);
    expect(pool.stats.reused).toBe(1);
  });

  it("falls back to plain buffers when full, for small reads, and ignores views it never handed out", () => {
    const pool = new ArenaPool(1 << 20);
    const big = pool.take(900_000);
    const overflow = pool.take(900_000);
    expect(pool.inArena(big)).toBe(true);
    expect(pool.inArena(overflow)).toBe(false);
    expect(pool.holds(overflow), "the plain pool underneath keeps its own books").toBe(true);
    pool.give(overflow);
    expect(pool.inArena(pool.take(1000))).toBe(false);
    pool.give(new Uint8Array(10)); // not ours: a no-op
    pool.give(big);
    expect(pool.take(900_000).byteOffset).toBe(big.byteOffset);
  });
});

describe("engine with the arena", () => {
  const dir = mkdtempSync(join(tmpdir(), "activestore-simd-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("reduces chunks read from disk into the arena to the same partials as with plain buffers", async () => {
    const store = new LocalStore(dir);
    const shape = [40, 60, 50];
    const random = mulberry32(3);
    const data = Float64Array.from({ length: 40 * 60 * 50 }, () => (random() < 0.01 ? -9999 : (random() - 0.5) * 1e3));
    const arr = await zarr.create(store, { shape, chunkShape: [20, 30, 50], dtype: "float64", fillValue: -9999 });
    await zarr.set(arr, null, { data, shape, stride: [3000, 50, 1] });
    const reads: boolean[] = [];
    const watching = new (class extends ArenaPool {
      override take(size: number) {
        const bytes = super.take(size);
        reads.push(this.inArena(bytes));
        return bytes;
      }
    })(64 << 20, { reserved: SIMD_RESERVED });
    expect(attachSimd(watching.memory)).toBe(true);
    // Without a fill value every run is clean and summed by the SIMD fold; with it, 1% are fills.
    for (const [options, missing] of [[{}, {}], [{}, { fillValue: -9999 }], [{ moments: true }, {}], [{ axis: [0] }, { fillValue: -9999 }]] as const) {
      const simd = await reduceArray(arr, null, { ...options, missing, extremes: false, buffers: watching });
      const plain = await reduceArray(arr, null, { ...options, missing, extremes: false, buffers: new BufferPool() });
      const defaults = await reduceArray(arr, null, { ...options, missing, extremes: false });
      for (const other of [plain, defaults]) {
        expect(Array.from(simd.partials.count)).toEqual(Array.from(other.partials.count));
        expect(Array.from(simd.partials.sum as Float64Array)).toEqual(Array.from(other.partials.sum as Float64Array));
      }
    }
    expect(reads.length).toBeGreaterThan(0);
    expect(reads.every(Boolean), "every chunk was read into the arena").toBe(true);
  });
});
