import { mkdtemp, readFile, rm, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as zarr from "zarrita";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDataset, openDataset } from "../src/datasets/index.js";
import { RequestError, UnsupportedFeatureError, ConflictError } from "../src/errors.js";
import { LocalStore } from "../src/stores/local.js";
import { S3Store } from "../src/stores/s3.js";
import type { Store } from "../src/stores/types.js";
import { S3RVER_CREDENTIALS, startS3rver, type S3rverHandle } from "./servers/s3rver.js";
import { startGcsServer } from "./servers/gcs.js";
import { GcsStore } from "../src/stores/gcs.js";
import { createOnlyGuarantee } from "../src/datasets/guard.js";

let dir: string;
let s3: S3rverHandle;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "datasets-core-"));
  s3 = await startS3rver({ buckets: ["ds"] });
}, 60_000);

afterAll(async () => {
  await s3?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** 0, 1, 2, ... as float64, C order: every element tells where it came from. */
function ramp(shape: number[], offset = 0): { data: Float64Array; shape: number[] } {
  const n = shape.reduce((a, b) => a * b, 1);
  return { data: Float64Array.from({ length: n }, (_, i) => i + offset), shape };
}

function nums(data: ArrayLike<number> | ArrayLike<bigint>): number[] {
  return Array.from(data as ArrayLike<number>, Number);
}

function s3Store(prefix: string): S3Store {
  return new S3Store({ bucket: "ds", prefix, endpoint: s3.endpoint, forcePathStyle: true, credentials: S3RVER_CREDENTIALS, region: "us-east-1" });
}

/** A store wrapper that records every write, to show reads never write. */
function recordingWrites(store: Store): { store: Store; writes: string[] } {
  const writes: string[] = [];
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === "set" || prop === "delete" || prop === "setMany") {
        return (key: string, ...rest: unknown[]) => {
          writes.push(String(key));
          return (Reflect.get(target, prop, receiver) as (...a: unknown[]) => unknown).call(target, key, ...rest);
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { store: proxy, writes };
}

describe("createDataset / openDataset", () => {
  it("writes zarr v3 that zarrita reads back, edge chunks included", async () => {
    const store = new LocalStore(join(dir, "v3"));
    const ds = await createDataset(store, "temp", {
      shape: [7, 5],
      chunks: [3, 2],
      dtype: "float64",
      codecs: "zstd:3",
      fillValue: NaN,
      dimensionNames: ["y", "x"],
      attributes: { units: "K" },
    });
    const values = ramp([7, 5]);
    await ds.set(null, values);
    const doc = JSON.parse(await readFile(join(dir, "v3/temp/zarr.json"), "utf8"));
    expect(doc).toMatchObject({ zarr_format: 3, node_type: "array", data_type: "float64", fill_value: "NaN", dimension_names: ["y", "x"] });
    expect(doc.codecs.map((c: { name: string }) => c.name)).toEqual(["bytes", "zstd"]);
    // A fresh zarrita open, not our object, reads the values back.
    const arr = await zarr.open(zarr.root(new LocalStore(join(dir, "v3"))).resolve("temp"), { kind: "array" });
    const back = (await zarr.get(arr)) as zarr.Chunk<"float64">;
    expect(nums(back.data)).toEqual(Array.from(values.data));
    expect((await readdir(join(dir, "v3/temp/c"))).sort()).toEqual(["0", "1", "2"]);
  });

  it("writes zarr v2 (zlib) with _ARRAY_DIMENSIONS", async () => {
    const store = new LocalStore(join(dir, "v2"));
    const ds = await createDataset(store, "a", { shape: [4, 6], chunks: [2, 4], dtype: "int32", codecs: "zlib", format: 2, dimensionNames: ["t", "x"] });
    const values = { data: Int32Array.from({ length: 24 }, (_, i) => i * 3 - 7), shape: [4, 6] };
    await ds.set(null, values);
    const zarray = JSON.parse(await readFile(join(dir, "v2/a/.zarray"), "utf8"));
    expect(zarray).toMatchObject({ zarr_format: 2, dtype: "<i4", compressor: { id: "zlib" }, chunks: [2, 4] });
    expect(JSON.parse(await readFile(join(dir, "v2/a/.zattrs"), "utf8"))).toEqual({ _ARRAY_DIMENSIONS: ["t", "x"] });
    const again = await openDataset(store, "a");
    expect(again.format).toBe(2);
    expect(again.dimensionNames).toEqual(["t", "x"]);
    expect(nums((await again.get(null)).data)).toEqual(Array.from(values.data));
    expect(await readFile(join(dir, "v2/a/1.1")).then((b) => b.length)).toBeGreaterThan(0);
  });

  it("re-creating with the same metadata is fine; different metadata is a ConflictError", async () => {
    const store = new LocalStore(join(dir, "init"));
    const options = { shape: [4], chunks: [2], dtype: "float32" as const };
    await createDataset(store, "x", options);
    await createDataset(store, "x", options);
    await expect(createDataset(store, "x", { ...options, chunks: [4] })).rejects.toBeInstanceOf(ConflictError);
  });

  it("checks the shape of values and refuses bad metadata", async () => {
    const store = new LocalStore(join(dir, "bad"));
    const ds = await createDataset(store, "b", { shape: [4, 4], chunks: [2, 2], dtype: "float64" });
    await expect(ds.set([zarr.slice(0, 2), null], ramp([2, 3]))).rejects.toThrow(/shape \[2,3\] does not match the expected \[2,4\]/);
    await expect(ds.set(null, { data: new Float64Array(3), shape: [4, 4] })).rejects.toBeInstanceOf(RequestError);
    await expect(createDataset(store, "c", { shape: [4, 4], chunks: [2], dtype: "float64" })).rejects.toBeInstanceOf(RequestError);
    await expect(createDataset(store, "d", { shape: [4], chunks: [0], dtype: "float64" })).rejects.toBeInstanceOf(RequestError);
    await expect(openDataset(store, "missing")).rejects.toBeInstanceOf(UnsupportedFeatureError);
    // Chunks too large to hold are refused before anything is allocated.
    await expect(createDataset(store, "huge", { shape: [1e6, 1e6], chunks: [1e5, 1e5], dtype: "float64" })).rejects.toThrow(/limit is/);
    // Metadata that is not JSON is an error naming the key.
    await store.set("broken/zarr.json", new TextEncoder().encode("{not json"));
    await expect(openDataset(store, "broken")).rejects.toThrow(/key "broken\/zarr.json".*not valid JSON/);
  });
});

describe("partial writes, reads, load/map/apply", () => {
  it("merges a partial-chunk write under a lock on the local disk and leaves no lock behind", async () => {
    const root = join(dir, "partial");
    const store = new LocalStore(root);
    const ds = await createDataset(store, "p", { shape: [6, 6], chunks: [4, 4], dtype: "float64", fillValue: -1 });
    await ds.set(null, ramp([6, 6]));
    await ds.set([zarr.slice(1, 3), zarr.slice(3, 5)], { data: new Float64Array([100, 101, 102, 103]), shape: [2, 2] });
    await ds.set([5, zarr.slice(0, 2)], { data: new Float64Array([7, 8]), shape: [2] });
    const expected = Array.from(ramp([6, 6]).data);
    expected[1 * 6 + 3] = 100;
    expected[1 * 6 + 4] = 101;
    expected[2 * 6 + 3] = 102;
    expected[2 * 6 + 4] = 103;
    expected[5 * 6 + 0] = 7;
    expected[5 * 6 + 1] = 8;
    expect(nums((await ds.get(null)).data)).toEqual(expected);
    const keys: string[] = [];
    for await (const info of store.list("p/")) keys.push(info.key);
    expect(keys.filter((k) => k.endsWith(".lock"))).toEqual([]);
    // A scalar fills a selection.
    await ds.set([zarr.slice(0, 1), null], 0.5);
    expect(nums((await ds.get([0, null])).data)).toEqual([0.5, 0.5, 0.5, 0.5, 0.5, 0.5]);
    // numpy-style text selections (zarrita reads positive steps only).
    await ds.set("1, 4:6", { data: new Float64Array([-4, -5]), shape: [2] });
    expect(await ds.get("1, 4:6")).toEqual({ data: new Float64Array([-4, -5]), shape: [2] });
    expect(nums((await ds.get("-1, ::2")).data)).toEqual([7, 32, 34]);
    await expect(ds.set("0, ::2", { data: new Float64Array(3), shape: [3] })).rejects.toThrow(/strided selection/);
  });

  it("a lock left behind by a dead writer is reported by name, not waited on forever or ignored", async () => {
    const store = new LocalStore(join(dir, "stale"));
    const ds = await createDataset(store, "s", { shape: [4], chunks: [4], dtype: "float64" });
    await store.set("s/c/0.lock", new TextEncoder().encode('{"host":"gone","pid":1}'));
    const write = ds.set([zarr.slice(0, 2)], ramp([2]), { lock: { timeoutMs: 100, pollMs: 5 } });
    await expect(write).rejects.toBeInstanceOf(ConflictError);
    await expect(write).rejects.toThrow(/locked by another writer \(\{"host":"gone","pid":1\}\).*delete "s\/c\/0.lock"/);
    // The chunk was not touched, and the foreign lock is left for its owner (or the user) to remove.
    expect(nums((await ds.get(null)).data)).toEqual([0, 0, 0, 0]);
    expect(await store.has("s/c/0.lock")).toBe(true);
  });

  it("reads never write", async () => {
    const base = new LocalStore(join(dir, "readonly"));
    const ds = await createDataset(base, "r", { shape: [5, 5], chunks: [2, 2], dtype: "float64", fillValue: 3 });
    await ds.set([zarr.slice(0, 2), zarr.slice(0, 2)], ramp([2, 2]));
    const { store, writes } = recordingWrites(base);
    const opened = await openDataset(store, "r");
    const all = await opened.get(null);
    expect(all.data[0]).toBe(0);
    expect(all.data[24]).toBe(3); // never written: the fill value
    const edge = await opened.readChunk([2, 2]);
    expect(edge.shape).toEqual([1, 1]);
    expect(writes).toEqual([]);
  });

  it("loads from a typed array and from another zarrita array; map and apply see trimmed edge chunks", async () => {
    const store = new LocalStore(join(dir, "ops"));
    const src = await createDataset(store, "src", { shape: [5, 7], chunks: [2, 3], dtype: "float64" });
    expect(await src.load(ramp([5, 7]), { concurrency: 2 })).toBe(9);
    const copy = await createDataset(store, "copy", { shape: [5, 7], chunks: [4, 4], dtype: "float32", codecs: "gzip", format: 2 });
    await copy.load(src.array);
    expect(nums((await copy.get(null)).data)).toEqual(Array.from(ramp([5, 7]).data));

    const seen: number[][] = [];
    const doubled = await src.map((chunk, info) => {
      seen.push(chunk.shape);
      expect(info.region.map(([s, e]) => e - s)).toEqual(chunk.shape);
      return { data: Float64Array.from(chunk.data as Float64Array, (v) => v * 2), shape: chunk.shape };
    }, "doubled");
    expect(seen).toContainEqual([1, 1]);
    expect(nums((await doubled.get(null)).data)).toEqual(Array.from(ramp([5, 7]).data, (v) => v * 2));

    await doubled.apply((chunk) => ({ data: Float64Array.from(chunk.data as Float64Array, (v) => v + 1), shape: chunk.shape }));
    expect(nums((await doubled.get(null)).data)).toEqual(Array.from(ramp([5, 7]).data, (v) => v * 2 + 1));
    await expect(src.map(() => ({ data: new Float64Array(1), shape: [1] }), "broken")).rejects.toThrow(/returned shape/);
  });
});

describe("a remote store that honours create-only writes (in-test GCS server)", () => {
  it("is detected by the probe, and concurrent partial writes into one chunk lose nothing", async () => {
    const server = await startGcsServer({ buckets: ["b"] });
    const store = new GcsStore({ bucket: "b", endpoint: server.url, token: "t" });
    try {
      expect(await createOnlyGuarantee(store, "probe")).toBe("create-only");
      const ds = await createDataset(store, "x", { shape: [24], chunks: [24], dtype: "float64" });
      // 24 read-modify-writes of one chunk at once, interleaved across awaits: without the lock most would be lost.
      await Promise.all(Array.from({ length: 24 }, (_, i) => ds.set([i], { data: new Float64Array([i + 1]), shape: [] }, { lock: { pollMs: 2 } })));
      expect(nums((await ds.get(null)).data)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
      // Every write took and released the chunk's lock (created with ifGenerationMatch=0).
      expect(server.requests.filter((r) => r.method === "DELETE" && r.path.endsWith("/x%2Fc%2F0.lock"))).toHaveLength(24);
      expect([...server.buckets.get("b")!.keys()].filter((k) => k.endsWith(".lock") || k.includes("probe"))).toEqual([]);
    } finally {
      await store.close();
      await server.stop();
    }
  });
});

describe("stores without create-only writes (s3rver)", () => {
  it("writes whole chunks, refuses a partial-chunk write, and allows it in unsafe mode", async () => {
    const store = s3Store("guard");
    const ds = await createDataset(store, "g", { shape: [4, 4], chunks: [2, 2], dtype: "float64" });
    await ds.set(null, ramp([4, 4]));
    await expect(ds.set([zarr.slice(0, 1), zarr.slice(0, 2)], ramp([1, 2], 50))).rejects.toThrow(/does not enforce create-only writes/);
    await expect(ds.apply((c) => c)).rejects.toBeInstanceOf(UnsupportedFeatureError);
    await ds.set([zarr.slice(0, 1), zarr.slice(0, 2)], ramp([1, 2], 50), { unsafe: true });
    const back = await ds.get(null);
    expect(nums(back.data).slice(0, 4)).toEqual([50, 51, 2, 3]);
    await store.close();
  });
});
