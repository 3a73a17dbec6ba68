/**
 * Chunks that sit in local files are read by the reduction workers themselves
 * (ReferenceStore.localRange → the batch names file, offset and length): same results and byte
 * counts as the in-thread engine, no chunk bytes read on the main thread, and a truncated or
 * vanished file is a ReferenceSetError naming the chunk, as the main thread's reads report it.
 * Raw chunks (no codec) are read by the in-thread engine itself (src/active/direct.ts): the same
 * partials as through zarrita, the same errors.
 *
 * Workers run compiled JavaScript: dist/active/reduce-worker.js, which `npm test` builds.
 */
import { copyFileSync, mkdtempSync, rmSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as zarr from "zarrita";
import { Active } from "../src/active/active.js";
import { reduceArray } from "../src/active/engine.js";
import { closeReducePool, reduceWorkerScript, sharedReducePool } from "../src/active/reduce-pool.js";
import { reduceArrayThreaded } from "../src/active/worker-engine.js";
import { registerCodecs } from "../src/codecs/registry.js";
import { ReferenceSetError } from "../src/errors.js";
import { buildReferences } from "../src/refs/build.js";
import { ReferenceStore } from "../src/refs/reference-store.js";
import type { References } from "../src/refs/types.js";
import type { Selection } from "../src/active/selection.js";

const FIXTURE = join(import.meta.dirname, "fixtures", "active", "active.nc");
let dir: string;
let file: string;
let references: References;

beforeAll(async () => {
  expect(reduceWorkerScript(), "dist/active/reduce-worker.js (run `npm run build`)").toBeDefined();
  registerCodecs();
  dir = mkdtempSync(join(tmpdir(), "activestore-local-"));
  file = join(dir, "active.nc");
  copyFileSync(FIXTURE, file);
  references = await buildReferences(file, { url: file, inlineThreshold: 0 });
});
afterAll(async () => {
  await closeReducePool();
  rmSync(dir, { recursive: true, force: true });
});

function chunkKeys(variable: string): string[] {
  return Object.keys(references.refs).filter((k) => k.startsWith(`${variable}/`) && !k.split("/").pop()!.startsWith("."));
}

describe("ReferenceStore.localRange", () => {
  it("locates byte-range references of plain local files, and nothing else", async () => {
    const key = chunkKeys("f4_zlib")[0];
    const ref = references.refs[key] as [string, number, number];
    const store = new ReferenceStore({
      version: 1,
      refs: { ...references.refs, inline: "base64:AAAA", whole: [file], web: ["http://127.0.0.1:9/x.nc", 0, 10], gz: [join(dir, "nothing.nc"), 0, 10] },
    });
    expect(await store.localRange(key)).toEqual({ path: file, offset: ref[1], length: ref[2] });
    expect(await store.localRange("inline")).toBeNull();
    expect(await store.localRange("whole")).toBeNull();
    expect(await store.localRange("web")).toBeNull();
    expect(await store.localRange("gz")).toBeNull(); // no plain file: the store's reads decide
    expect(await store.localRange("f4_zlib/99.99.99")).toBeUndefined();
  });
});

describe("in-thread reductions of raw local chunks", () => {
  it("read the chunks without the store and give zarrita's partials, for every raw variable, selection and axis", async () => {
    const raw = ["i1", "u1", "u4", "u8", "f8", "f8_default_fill", "f4_missing", "i2_valid_max", "partial", "f8_nan", "i4_big"];
    for (const variable of raw) {
      const store = new ReferenceStore(references);
      const array = await zarr.open.v2(zarr.root(store).resolve(variable), { kind: "array" });
      const cases: [Selection, number[] | undefined][] = [
        [null, undefined],
        [[zarr.slice(1, 11, 3), null, zarr.slice(null, null, -2)], [0, 2]],
        [[3, null, null], [1]],
      ];
      for (const [selection, axis] of cases) {
        const where = `${variable} ${JSON.stringify(selection)} axis ${JSON.stringify(axis)}`;
        const reads = store.stats.reads;
        const direct = await reduceArray(array, selection, { moments: true, axis });
        const directReads = store.stats.reads - reads;
        const viaZarrita = await reduceArray(array, selection, { moments: true, axis, buffers: false });
        if (variable !== "i4_big") expect(directReads, `${where}: no chunk read through the store`).toBe(0);
        else expect(directReads, `${where}: big-endian chunks go through zarrita`).toBeGreaterThan(0);
        expect(direct.chunks, where).toBe(viaZarrita.chunks);
        for (const field of ["count", "sum", "min", "max", "m2", "nan"] as const) {
          const [a, b] = [direct.partials[field], viaZarrita.partials[field]];
          expect(a && Array.from(a as ArrayLike<number>, String), `${where} ${field}`).toEqual(b && Array.from(b as ArrayLike<number>, String));
        }
      }
    }
  });

  it("a set whose first chunk is local and the rest elsewhere reads the rest at the full concurrency", async () => {
    // f8's references, every chunk but the first behind a store that answers slowly and counts the
    // requests in flight (standing in for a remote target).
    const store = new ReferenceStore(references);
    const first = chunkKeys("f8").sort()[0];
    let inFlight = 0;
    let most = 0;
    const remote = {
      localRange: (key: string) => (key.endsWith(first) ? store.localRange(key) : Promise.resolve(null)),
      async get(key: `/${string}`, options?: object) {
        if (key.endsWith("/.zarray") || key.endsWith("/.zattrs") || key.endsWith(first)) return store.get(key, options);
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
        return store.get(key, options);
      },
    };
    const array = await zarr.open.v2(zarr.root(remote).resolve("f8"), { kind: "array" });
    const mixed = await reduceArray(array, null, { moments: true });
    const plain = await reduceArray(await zarr.open.v2(zarr.root(store).resolve("f8"), { kind: "array" }), null, { moments: true, buffers: false });
    expect(chunkKeys("f8").length).toBeGreaterThan(8);
    expect(most, "requests in flight for the chunks that are not local").toBeGreaterThan(3);
    expect(Array.from(mixed.partials.sum as Float64Array)).toEqual(Array.from(plain.partials.sum as Float64Array));
    expect(mixed.chunks).toBe(plain.chunks);
  });

  it("a truncated file is a ReferenceSetError naming the chunk", async () => {
    const copy = join(dir, "truncated-raw.nc");
    copyFileSync(file, copy);
    const refs: References = JSON.parse(JSON.stringify(references).replaceAll(JSON.stringify(file), JSON.stringify(copy)));
    const last = chunkKeys("f8").map((k) => refs.refs[k] as [string, number, number]).sort((x, y) => y[1] - x[1])[0];
    truncateSync(copy, last[1] + 8);
    const error = await (await Active.open(refs, "f8", { threads: 0 })).mean().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReferenceSetError);
    expect(String(error)).toMatch(/f8\/\d+\.\d+\.\d+.*too short: got 8 of/);
  });
});

describe("threaded reductions of local chunks", () => {
  it("reads no chunk on the main thread and gives the in-thread engine's partials", async () => {
    for (const variable of ["f4_zlib", "f8", "i2_zlib", "f8_valid_range"]) {
      const store = new ReferenceStore(references);
      const array = await zarr.open.v2(zarr.root(store).resolve(variable), { kind: "array" });
      const batches = sharedReducePool()?.stats.batches ?? 0;
      const threaded = await reduceArrayThreaded(array, null, { threads: 2, moments: true });
      const mainThreadReads = store.stats.reads;
      const here = await reduceArray(array, null, { moments: true });
      expect(mainThreadReads, `${variable}: only the metadata document is read here`).toBeLessThanOrEqual(1);
      expect(sharedReducePool()!.stats.batches, variable).toBeGreaterThan(batches);
      expect(threaded.chunks, variable).toBe(here.chunks);
      expect(Array.from(threaded.partials.sum as Float64Array), variable).toEqual(Array.from(here.partials.sum as Float64Array));
      expect(Array.from(threaded.partials.m2!), variable).toEqual(Array.from(here.partials.m2!));
      expect(Array.from(threaded.partials.count), variable).toEqual(Array.from(here.partials.count));
    }
  });

  it("counts the bytes the workers read, as the in-thread engine counts its reads", async () => {
    const here = await Active.open(references, "f4_zlib", { threads: 0 });
    const threaded = await Active.open(references, "f4_zlib", { threads: 2 });
    const [a, b] = [await here.mean(), await threaded.mean()];
    expect(b.bytesRead).toBe(a.bytesRead);
    expect(b.bytesRead).toBe(chunkKeys("f4_zlib").reduce((n, k) => n + (references.refs[k] as [string, number, number])[2], 0));
    expect(b.value).toBe(a.value);
  });

  it("a truncated file is a ReferenceSetError naming the chunk, never fill values", async () => {
    const copy = join(dir, "truncated.nc");
    copyFileSync(file, copy);
    const refs: References = JSON.parse(JSON.stringify(references).replaceAll(JSON.stringify(file), JSON.stringify(copy)));
    const last = chunkKeys("f4_zlib").map((k) => refs.refs[k] as [string, number, number]).sort((x, y) => y[1] - x[1])[0];
    truncateSync(copy, last[1] + 1); // the last chunk of f4_zlib loses all but one byte
    for (const threads of [0, 2]) {
      const active = await Active.open(refs, "f4_zlib", { threads });
      const error = await active.mean().catch((e: unknown) => e);
      expect(error, `threads=${threads}`).toBeInstanceOf(ReferenceSetError);
      expect(String(error), `threads=${threads}`).toMatch(/f4_zlib\/\d+\.\d+\.\d+.*too short/);
    }
  });

  it("a file gone since the references were opened is a ReferenceSetError, not a missing chunk", async () => {
    const copy = join(dir, "gone.nc");
    copyFileSync(file, copy);
    const refs: References = JSON.parse(JSON.stringify(references).replaceAll(JSON.stringify(file), JSON.stringify(copy)));
    const active = await Active.open(refs, "f4_zlib", { threads: 2 });
    expect((await active.mean()).count).toBeGreaterThan(0);
    rmSync(copy);
    const error = await active.mean().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReferenceSetError);
    expect(String(error)).toMatch(/f4_zlib\/\d+\.\d+\.\d+.*unreachable/);
  });
});
