/**
 * The local engine's resource behaviour on real zarr arrays (MemoryStore and LocalStore on disk):
 * reads in flight never exceed the concurrency and do reach it (so a coalescing store sees
 * neighbours together), the plan stays lazy, an abort or a failed read cancels the rest and leaves
 * nothing running, and results do not depend on the order chunks complete in.
 */
import { mkdir, mkdtemp, rm, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import * as zarr from "zarrita";
import { reduceArray, workerCount, type ChunkSource } from "../src/active/engine.js";
import { reduceChunk, type MissingRules } from "../src/active/kernel.js";
import { mergePartials, emptyPartials } from "../src/active/partials.js";
import { planChunks } from "../src/active/plan.js";
import { finalize } from "../src/active/result.js";
import { StoreError } from "../src/errors.js";
import { LocalStore } from "../src/stores/local.js";
import { MemoryStore } from "../src/stores/memory.js";

const cStrides = (shape: number[]) => shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));

async function makeArray(store: MemoryStore | LocalStore, shape: number[], chunkShape: number[]) {
  const n = shape.reduce((a, b) => a * b, 1);
  // Integers in float64: sums are exact whatever the order, so results compare with toEqual.
  const data = new Float64Array(n).map((_, i) => ((i * 7919) % 1000) - 500);
  const arr = await zarr.create(store, { shape, chunkShape, dtype: "float64", fillValue: -9999 });
  await zarr.set(arr, null, { data, shape, stride: cStrides(shape) });
  return { arr, data };
}

/** Counts calls into a real array's getChunk; the reads themselves are the array's. */
function watched(arr: ChunkSource, onStart?: (started: number) => void, onFail?: (coords: number[]) => void) {
  const stats = { started: 0, inFlight: 0, maxInFlight: 0, signals: [] as (AbortSignal | undefined)[] };
  const source: ChunkSource = {
    shape: arr.shape,
    chunks: arr.chunks,
    dtype: arr.dtype,
    async getChunk(coords, options) {
      stats.started++;
      stats.inFlight++;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
      stats.signals.push(options?.signal);
      onStart?.(stats.started);
      try {
        // A macrotask between start and finish, as a real store has, so workers overlap.
        await new Promise((r) => setImmediate(r));
        return await arr.getChunk(coords, options);
      } catch (error) {
        onFail?.(coords);
        throw error;
      } finally {
        stats.inFlight--;
      }
    },
  };
  return { source, stats };
}

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe("reduceArray resources", () => {
  it("keeps exactly `concurrency` chunk reads in flight, never more, over thousands of chunks", async () => {
    const { arr, data } = await makeArray(new MemoryStore(), [40, 50, 6], [2, 2, 3]); // 1,000 chunks
    for (const concurrency of [1, 4, 32]) {
      const { source, stats } = watched(arr as unknown as ChunkSource);
      const { partials, chunks } = await reduceArray(source, null, { concurrency, missing: { fillValue: -9999 } });
      expect(chunks).toBe(1000);
      expect(stats.started).toBe(1000);
      expect(stats.maxInFlight).toBe(concurrency);
      expect(stats.inFlight).toBe(0);
      expect(finalize("sum", partials, "float64").value).toBe(data.reduce((a, b) => a + b, 0));
    }
  });

  it("caps the workers by the memory budget, so large chunks do not multiply by the concurrency", async () => {
    const { arr } = await makeArray(new MemoryStore(), [64, 64], [16, 16]); // 2 KiB chunks, 16 of them
    const expectations: [number | undefined, number][] = [
      [undefined, 16], // 32 MiB default: the concurrency decides
      [5 * 2048, 5],
      [5 * 2048 + 2047, 5],
      [100, 1], // smaller than one chunk: still one worker
    ];
    for (const [memoryBudget, workers] of expectations) {
      expect(workerCount(arr as unknown as ChunkSource, { memoryBudget })).toBe(workers);
      const { source, stats } = watched(arr as unknown as ChunkSource);
      await reduceArray(source, null, { concurrency: 16, memoryBudget });
      expect(stats.maxInFlight).toBe(workers);
    }
  });

  it("plans lazily: the first chunks of a 10^12-chunk selection come at once", () => {
    const n = 10_000;
    const slab = [0, 1, 2].map(() => ({ start: 0, step: 1, count: n, dropped: false }));
    const tasks = planChunks(slab, [1, 1, 1]);
    const first = [tasks.next(), tasks.next(), tasks.next()].map((t) => (t.done ? null : t.value.coords));
    expect(first).toEqual([
      [0, 0, 0],
      [0, 0, 1],
      [0, 0, 2],
    ]);
  });

  it("stops on abort: no read starts after it, the reason is thrown, nothing is left running", async () => {
    const { arr } = await makeArray(new MemoryStore(), [20, 20], [2, 2]); // 100 chunks
    const controller = new AbortController();
    const reason = new Error("user gave up");
    const { source, stats } = watched(arr as unknown as ChunkSource, (started) => {
      if (started === 10) controller.abort(reason);
    });
    await expect(reduceArray(source, null, { concurrency: 4, signal: controller.signal })).rejects.toBe(reason);
    expect(stats.started).toBe(10);
    expect(stats.inFlight).toBe(0);
    expect(stats.signals.every((s) => s?.aborted)).toBe(true);
  });

  it("refuses to start when already aborted", async () => {
    const { arr } = await makeArray(new MemoryStore(), [4, 4], [2, 2]);
    const { source, stats } = watched(arr as unknown as ChunkSource);
    const signal = AbortSignal.abort(new Error("too late"));
    await expect(reduceArray(source, null, { signal })).rejects.toThrow("too late");
    expect(stats.started).toBe(0);
  });

  it("a failed read (a chunk that is a directory on disk) fails the reduction, starts no more reads and waits for those in flight", async () => {
    const root = await mkdtemp(join(tmpdir(), "active-engine-"));
    dirs.push(root);
    const store = new LocalStore(root, { retry: { attempts: 1 } });
    const { arr } = await makeArray(store, [30, 30], [3, 3]); // 100 chunks
    await unlink(join(root, "c", "5", "5"));
    await mkdir(join(root, "c", "5", "5"));
    let startedAtFailure = Infinity;
    const { source, stats } = watched(arr as unknown as ChunkSource, undefined, (coords) => {
      if (coords.join() === "5,5") startedAtFailure = stats.started;
    });
    const error = await reduceArray(source, null, { concurrency: 8 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).message).toMatch(/c\/5\/5/);
    expect(stats.started).toBeLessThan(100);
    expect(stats.inFlight).toBe(0);
    // No read started after the failing one finished: at most the other workers' reads were pending.
    expect(stats.started).toBeLessThanOrEqual(startedAtFailure + 7);
  });

  it("gives the same partials whatever the concurrency (order of completion)", async () => {
    const { arr } = await makeArray(new MemoryStore(), [12, 10, 8], [5, 3, 3]);
    const sel = [zarr.slice(1, 12, 2), null, zarr.slice(7, 0, -3)];
    const one = await reduceArray(arr as unknown as ChunkSource, sel, { axis: [0], concurrency: 1 });
    const many = await reduceArray(arr as unknown as ChunkSource, sel, { axis: [0], concurrency: 9 });
    expect(many.chunks).toBe(one.chunks);
    expect(many.partials).toEqual(one.partials);
  });
});

describe("reduceChunk fold loops", () => {
  it("count, sum, min, max and NaN agree with a plain loop for fill-only, range and multi-mask rules", () => {
    const n = 4 * 5 * 6;
    const data = new Float64Array(n).map((_, i) => (i % 17 === 3 ? -999 : i % 23 === 5 ? NaN : i % 11 === 7 ? 1e20 : ((i * 37) % 101) - 50));
    const pieces = [4, 5, 6].map((count) => ({ chunk: 0, localStart: 0, step: 1, count, outStart: 0 }));
    const ruleSets: MissingRules[] = [
      { fillValue: -999 }, // fill-only loop
      { fillValue: -999, skipNaN: true },
      {}, // nothing masked
      { fillValue: -999, validMax: 1e19 }, // general loop
      { fillValue: -999, missingValues: [1e20, 0], skipNaN: true },
    ];
    for (const rules of ruleSets) {
      const masks = [rules.fillValue, ...(rules.missingValues ?? [])].filter((v) => v !== undefined) as number[];
      let count = 0;
      let sum = 0;
      let min = Infinity;
      let max = -Infinity;
      let nan = 0;
      for (const v of data) {
        if (Number.isNaN(v)) {
          if (!rules.skipNaN) {
            count++;
            nan = 1;
          }
          continue;
        }
        if (masks.includes(v) || (rules.validMax !== undefined && v > Number(rules.validMax))) continue;
        count++;
        sum += v;
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      // Whole chunk (one fused run) and a strided, reversed selection of it (many short runs).
      const p = reduceChunk({ data, chunkShape: [4, 5, 6], pieces, collapsed: [true, true, true] }, { missing: rules });
      expect([p.count[0], p.nan[0], (p.min as Float64Array)[0], (p.max as Float64Array)[0]]).toEqual([count, nan, min, max]);
      if (nan) expect((p.sum as Float64Array)[0]).toBeNaN();
      else expect((p.sum as Float64Array)[0]).toBe(sum);
      const reversed = pieces.map((q) => ({ ...q, localStart: q.count - 1, step: -1 }));
      const r = reduceChunk({ data, chunkShape: [4, 5, 6], pieces: reversed, collapsed: [true, true, true] }, { missing: rules });
      expect([r.count[0], r.nan[0], (r.min as Float64Array)[0], (r.max as Float64Array)[0]]).toEqual([count, nan, min, max]);
    }
  });
});

describe("mergePartials", () => {
  it("merges a 2-d block row by row into the right place, with and without moments", () => {
    for (const moments of [false, true]) {
      const into = emptyPartials([4, 5], false, moments);
      const block = emptyPartials([2, 3], false, moments);
      block.count.set([1, 2, 0, 3, 1, 1]);
      (block.sum as Float64Array).set([10, 20, 0, 30, -1, 2]);
      (block.min as Float64Array).set([10, 9, Infinity, 8, -1, 2]);
      (block.max as Float64Array).set([10, 11, -Infinity, 12, -1, 2]);
      block.nan[4] = 1;
      mergePartials(into, block, [1, 2]);
      mergePartials(into, block, [1, 2]);
      // Block (r, c) lands at (1 + r, 2 + c) = flat (1 + r) * 5 + 2 + c.
      const at = [7, 8, 9, 12, 13, 14];
      const counts = Array.from(into.count);
      expect(counts.filter((_, i) => !at.includes(i)).every((c) => c === 0)).toBe(true);
      expect(at.map((o) => into.count[o])).toEqual([2, 4, 0, 6, 2, 2]);
      expect(at.map((o) => (into.sum as Float64Array)[o])).toEqual([20, 40, 0, 60, -2, 4]);
      expect(at.map((o) => (into.min as Float64Array)[o])).toEqual([10, 9, Infinity, 8, -1, 2]);
      expect(at.map((o) => (into.max as Float64Array)[o])).toEqual([10, 11, -Infinity, 12, -1, 2]);
      expect(Array.from(into.nan).reduce((a, b) => a + b, 0)).toBe(1);
      expect(into.nan[13]).toBe(1);
    }
  });
});

describe("merge order", () => {
  it("chunks finishing in any order give bit-identical float sums (plan-order merge)", async () => {
    // A source whose chunks finish in a scrambled order; values chosen so float addition order matters.
    const chunkShape = [4];
    const shape = [4 * 64];
    let v = 12345;
    const rand = () => (v = (v * 16807) % 2147483647) / 2147483647;
    const values = Float64Array.from({ length: shape[0] }, () => rand() * 10 ** Math.floor(rand() * 16 - 8));
    let seed = 7;
    const delay = () => new Promise<void>((r) => setTimeout(r, ((seed = (seed * 48271) % 2147483647) % 5)));
    const source = {
      shape,
      chunks: chunkShape,
      dtype: "float64",
      async getChunk(coords: number[]) {
        await delay();
        const start = coords[0] * 4;
        return { data: values.slice(start, start + 4), shape: chunkShape, stride: [1] };
      },
    };
    const sums = new Set<number>();
    for (const concurrency of [1, 3, 8, 16]) {
      const { partials } = await reduceArray(source, null, { concurrency });
      sums.add((partials.sum as Float64Array)[0]);
    }
    expect(sums.size).toBe(1);
  });
});
