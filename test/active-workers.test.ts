/**
 * The threaded engine (src/active/worker-engine.ts): the same partials, bit for bit, as the in-thread
 * engine on the files netCDF-C and h5py wrote (test/fixtures/active: zlib + shuffle, fletcher32,
 * lzf, big-endian, never-written chunks, packed, NaN; selections with steps, axis reductions,
 * moments) and on a zarr v3 array; a corrupt chunk is a CodecError naming the chunk; aborts, worker
 * crashes, threads: 0.
 *
 * Workers run compiled JavaScript: dist/active/reduce-worker.js, which `npm test` builds.
 */
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as zarr from "zarrita";
import { Active } from "../src/active/active.js";
import { openActive } from "../src/active/source.js";
import type { Partials } from "../src/active/partials.js";
import { parseSelection } from "../src/active/selection.js";
import type { ReductionResult } from "../src/active/result.js";
import { closeReducePool, reducePool, reduceWorkerScript, sharedReducePool } from "../src/active/reduce-pool.js";
import { registerCodecs } from "../src/codecs/registry.js";
import { CodecError } from "../src/errors.js";
import { openHdf5 } from "../src/hdf5/file.js";
import { byteSourceFromStore } from "../src/hdf5/io.js";
import { buildFromReader } from "../src/refs/build.js";
import { filtersToCodecs } from "../src/refs/filters.js";
import type { References } from "../src/refs/types.js";
import { MemoryStore } from "../src/stores/memory.js";
import { openStore, splitUrl } from "../src/stores/open.js";

const DIR = join(import.meta.dirname, "fixtures", "active");
const expected = JSON.parse(readFileSync(join(DIR, "expected.json"), "utf8")) as {
  files: Record<string, Record<string, { cases: { select: string; axis: number[] | null }[] }>>;
};

beforeAll(() => {
  // Without the compiled worker the engine falls back in-thread and these tests would prove nothing.
  expect(reduceWorkerScript(), "dist/active/reduce-worker.js (run `npm run build`)").toBeDefined();
});
afterAll(() => closeReducePool());
const batches = () => sharedReducePool()?.stats.batches ?? 0;

function sameArray(a: ArrayLike<number | bigint> | undefined, b: ArrayLike<number | bigint> | undefined, where: string) {
  expect(a === undefined, where).toBe(b === undefined);
  if (!a || !b) return;
  expect(a.length, where).toBe(b.length);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) expect(a[i], `${where} [${i}]`).toBe(b[i]);
  }
}

function samePartials(a: Partials, b: Partials, where: string) {
  expect(a.shape, where).toEqual(b.shape);
  expect(a.extremes, where).toBe(b.extremes);
  for (const field of ["count", "sum", "min", "max", "m2", "nan"] as const) sameArray(a[field], b[field], `${where} ${field}`);
}

function sameResult(a: ReductionResult, b: ReductionResult, where: string) {
  expect(a.chunks, where).toBe(b.chunks);
  expect(a.bytesRead, where).toBe(b.bytesRead);
  expect(a.shape, where).toEqual(b.shape);
  const av = Array.isArray(a.value) ? a.value : [a.value];
  const bv = Array.isArray(b.value) ? b.value : [b.value];
  sameArray(av as number[], bv as number[], `${where} value`);
  if (a.components || b.components) samePartials(a.components!, b.components!, where);
}

/** Each case of the fixture through both engines: variance with components (every partial), then a mean (no extremes). */
async function compare(file: string, variable: string, options: { raw?: boolean; skipNaN?: boolean }) {
  const here = await Active.open(join(DIR, file), variable, { ...options, threads: 0 });
  const threaded = await Active.open(join(DIR, file), variable, { ...options, threads: 2 });
  let compared = 0;
  for (const c of expected.files[file][`${variable}${options.raw ? "#raw" : options.skipNaN ? "#skipnan" : ""}`].cases) {
    const selection = parseSelection(c.select);
    const axis = c.axis ?? undefined;
    for (const [op, components] of [["variance", true], ["mean", false]] as const) {
      const where = `${file} ${variable} ${op} select="${c.select}" axis=${JSON.stringify(c.axis)}`;
      const [a, b] = [await here.reduce(op, selection, { axis, components }), await threaded.reduce(op, selection, { axis, components })];
      sameResult(b, a, where);
      compared++;
    }
  }
  return compared;
}

describe("threaded engine = in-thread engine, bit for bit", () => {
  for (const [file, variables] of Object.entries(expected.files)) {
    for (const name of Object.keys(variables)) {
      const [variable, variant] = name.split("#");
      it(`${file} ${name}`, async () => {
        const before = batches();
        expect(await compare(file, variable, { raw: variant === "raw", skipNaN: variant === "skipnan" })).toBeGreaterThan(0);
        // The threaded side did run on workers, not a silent fallback.
        expect(batches()).toBeGreaterThan(before);
      });
    }
  }

  it("a zarr v3 array (transpose, big-endian, zlib, chunk keys c/…, edge and never-written chunks)", async () => {
    registerCodecs();
    const store = new MemoryStore();
    const shape = [37, 23];
    const arr = await zarr.create(zarr.root(store).resolve("v3"), {
      shape,
      chunkShape: [8, 5],
      dtype: "float32",
      fillValue: -1,
      codecs: [
        { name: "transpose", configuration: { order: [1, 0] } },
        { name: "bytes", configuration: { endian: "big" } },
        { name: "numcodecs.zlib", configuration: { level: 1 } },
      ],
    });
    const data = new Float32Array(37 * 23).map((_, i) => Math.sin(i) * 1000);
    // Rows 16.. stay unwritten: those chunks are the fill value, which is also the missing value.
    await zarr.set(arr, [zarr.slice(0, 16), null], { data: data.subarray(0, 16 * 23), shape: [16, 23], stride: [23, 1] });
    const open = (threads: number) => openActive(store, "v3", { threads, missing: { fillValue: -1 } });
    const [here, threaded] = [await open(0), await open(2)];
    for (const [sel, axis] of [[null, undefined], ["2:30:3,::-2", undefined], [null, [0]], ["::4,1:20", [1]]] as const) {
      const selection = sel ? parseSelection(sel) : null;
      const a = await here.variance(selection, { axis: axis ? [...axis] : undefined, components: true });
      const b = await threaded.variance(selection, { axis: axis ? [...axis] : undefined, components: true });
      sameResult(b, a, `v3 ${sel} ${axis}`);
    }
    const before = batches();
    expect((await threaded.count()).value).toBe(16 * 23);
    expect(batches()).toBeGreaterThan(before);
  });
});

describe("shuffled chunks decoded by SIMD in the workers' arena", () => {
  for (const [dtype, endian] of [["float64", "little"], ["float64", "big"], ["float32", "little"]] as const) {
    it(`${dtype} ${endian}-endian, shuffle + zlib, chunks of 12 KiB and edges: bit for bit the in-thread engine`, async () => {
      registerCodecs();
      const store = new MemoryStore();
      const size = dtype === "float64" ? 8 : 4;
      const arr = await zarr.create(zarr.root(store).resolve("s"), {
        shape: [101, 67],
        chunkShape: [48, 256 / size],
        dtype,
        fillValue: -1,
        codecs: [
          { name: "bytes", configuration: { endian } },
          { name: "numcodecs.shuffle", configuration: { elementsize: size } },
          { name: "numcodecs.zlib", configuration: { level: 1 } },
        ],
      });
      const Kind = dtype === "float64" ? Float64Array : Float32Array;
      const data = new Kind(101 * 67).map((_, i) => Math.sin(i) * 1000 + (i % 97 === 0 ? NaN : 0));
      await zarr.set(arr, null, { data, shape: [101, 67], stride: [67, 1] });
      const open = (threads: number, skipNaN: boolean) => openActive(store, "s", { threads, skipNaN, missing: { fillValue: -1 } });
      const before = batches();
      for (const skipNaN of [false, true]) {
        const [here, threaded] = [await open(0, skipNaN), await open(2, skipNaN)];
        for (const [sel, axis] of [[null, undefined], ["3:99,5:60:2", undefined], [null, [0]]] as const) {
          const selection = sel ? parseSelection(sel) : null;
          const where = `${dtype} ${endian} ${sel} ${axis} skipNaN ${skipNaN}`;
          const a = await here.variance(selection, { axis: axis ? [...axis] : undefined, components: true });
          const b = await threaded.variance(selection, { axis: axis ? [...axis] : undefined, components: true });
          sameResult(b, a, where);
          sameResult(await threaded.mean(selection), await here.mean(selection), `mean ${where}`);
        }
      }
      expect(batches(), "the threaded side ran on workers").toBeGreaterThan(before);
    });
  }
});

/** The fixture's references, every chunk a byte range, for editing. */
async function references(): Promise<References> {
  const url = join(DIR, "active.nc");
  const { storeUrl, key } = splitUrl(url);
  const file = await openHdf5(byteSourceFromStore(openStore(storeUrl), key, url));
  return (await buildFromReader(file, filtersToCodecs, { url, inlineThreshold: 0 })).references;
}

describe("failures", () => {
  it("a corrupt chunk is a CodecError naming the codec and the chunk", async () => {
    const refs = await references();
    const key = Object.keys(refs.refs).filter((k) => k.startsWith("i2_zlib/") && !k.endsWith("/.zarray") && !k.endsWith("/.zattrs"))[3];
    // A zlib header followed by garbage.
    refs.refs[key] = `base64:${Buffer.from([0x78, 0x9c, ...new Array(40).fill(0xa5)]).toString("base64")}`;
    const active = await openActive(refs, "i2_zlib", { netcdf: true, threads: 2 });
    const error = await active.mean().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CodecError);
    expect(error).toMatchObject({ codec: "zlib", chunkKey: key });
    expect((error as Error).message).toContain(`(chunk ${key})`);
    // The in-thread engine fails on the same chunk too (zarrita wraps our CodecError).
    const here = await openActive(refs, "i2_zlib", { netcdf: true, threads: 0 });
    await expect(here.mean()).rejects.toThrow(/zlib/);
    // The workers are fine afterwards.
    const good = await openActive(await references(), "i2_zlib", { netcdf: true, threads: 2 });
    expect((await good.count()).chunks).toBeGreaterThan(0);
  });

  it("an aborted reduction rejects with the abort reason, and the pool keeps working", async () => {
    const controller = new AbortController();
    const active = await Active.open(join(DIR, "active.nc"), "f4_zlib", { threads: 2, signal: controller.signal });
    const reason = new Error("stop");
    const pending = active.mean();
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await expect(active.mean()).rejects.toBe(reason); // aborted before it starts
    const again = await Active.open(join(DIR, "active.nc"), "f4_zlib", { threads: 2 });
    const here = await Active.open(join(DIR, "active.nc"), "f4_zlib", { threads: 0 });
    sameResult(await again.mean(), await here.mean(), "after abort");
  });

  it("an abort while batches are at the workers rejects with the reason; nothing is left running", async () => {
    registerCodecs();
    const controller = new AbortController();
    const reason = new Error("enough");
    let gets = 0;
    // A real store whose 400th chunk read pulls the plug: 640 chunks go in batches of 64, five
    // batches at a time, so the 6th batch (reads 321..384) starts only once a worker answered.
    class AbortingStore extends MemoryStore {
      override get(key: string, opts?: Parameters<MemoryStore["get"]>[1]) {
        if (/\/c\//.test(key) && ++gets === 400) controller.abort(reason);
        return super.get(key, opts);
      }
    }
    const store = new AbortingStore();
    const arr = await zarr.create(zarr.root(store).resolve("a"), {
      shape: [64, 40],
      chunkShape: [2, 2],
      dtype: "float64",
      fillValue: 0,
      codecs: [{ name: "bytes", configuration: { endian: "little" } }, { name: "numcodecs.zlib", configuration: { level: 1 } }],
    });
    await zarr.set(arr, null, { data: new Float64Array(64 * 40).map((_, i) => i % 97), shape: [64, 40], stride: [40, 1] });
    const active = await openActive(store, "a", { threads: 2, signal: controller.signal });
    const before = batches();
    await expect(active.mean()).rejects.toBe(reason);
    expect(batches()).toBeGreaterThan(before); // some batches did reach the workers
    const readsAtAbort = gets;
    await new Promise((r) => setTimeout(r, 20));
    expect(gets).toBe(readsAtAbort); // no reads after the rejection
    const again = await openActive(store, "a", { threads: 2 });
    const here = await openActive(store, "a", { threads: 0 });
    sameResult(await again.mean(), await here.mean(), "after a mid-flight abort");
  });

  it("a worker that dies rejects the reduction cleanly; the next one gets a new worker", async () => {
    const pool = (await reducePool(1))!;
    const active = await Active.open(join(DIR, "active.nc"), "f4_zlib", { threads: 1 });
    pool.crashForTest(7); // queued before the batches: the worker exits before it reduces any
    await expect(active.mean()).rejects.toThrow(/reduction worker thread exited with code 7/);
    const here = await Active.open(join(DIR, "active.nc"), "f4_zlib", { threads: 0 });
    sameResult(await active.mean(), await here.mean(), "after a crash");
  });

  it("threads: 0 reduces on this thread: no worker pool starts", async () => {
    await closeReducePool();
    const active = await Active.open(join(DIR, "active.nc"), "i2_zlib", { threads: 0 });
    const r = await active.mean();
    expect(r.chunks).toBeGreaterThan(1);
    expect(sharedReducePool()).toBeUndefined();
    // The default for compressed chunks does use workers.
    await (await Active.open(join(DIR, "active.nc"), "i2_zlib")).mean();
    expect(sharedReducePool()).toBeDefined();
  });

  it("raw chunks of local files go to the workers only once they are running, with the same result", async () => {
    await closeReducePool();
    const refs = await references(); // every chunk a byte range of the file, none inlined
    const here = await openActive(refs, "f8", { threads: 0 });
    const auto = await openActive(refs, "f8");
    const first = await auto.variance(null, { components: true });
    expect(sharedReducePool(), "starting workers for one raw reduction costs more than it saves").toBeUndefined();
    await reducePool(Math.min(availableParallelism(), 4));
    const before = batches();
    const second = await auto.variance(null, { components: true });
    expect(batches(), "a running pool takes raw local chunks").toBeGreaterThan(before);
    const reference = await here.variance(null, { components: true });
    sameResult(first, reference, "in-thread");
    sameResult(second, reference, "threaded");
  });

  it("the workers' minor GC leaves no global gc behind for the process's other contexts and workers", async () => {
    const { runInNewContext } = await import("node:vm");
    const { Worker } = await import("node:worker_threads");
    await (await Active.open(join(DIR, "active.nc"), "i2_zlib", { threads: 2 })).mean();
    expect(sharedReducePool()).toBeDefined();
    expect(runInNewContext("typeof gc")).toBe("undefined");
    const worker = new Worker("require('node:worker_threads').parentPort.postMessage(typeof gc)", { eval: true });
    const seen = await new Promise((resolve, reject) => worker.once("message", resolve).once("error", reject));
    await worker.terminate();
    expect(seen).toBe("undefined");
  });
});
