/**
 * writeReferences (JSON and kerchunk's parquet layout) and the lazy parquet reader.
 *
 * Python cannot check the parquet files here: Debian has neither pyarrow nor fastparquet, which
 * fsspec's LazyReferenceMapper needs, so the layout (.zmetadata shape, refs.<i>.parq columns, C-order
 * record numbering) follows kerchunk/df.py and fsspec/implementations/reference.py as read, and the
 * tests check our writer against our reader and against the JSON set the files came from.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parquetMetadata } from "hyparquet";
import * as zarr from "zarrita";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerCodecs } from "../src/codecs/registry.js";
import { ReferenceSetError } from "../src/errors.js";
import { buildReferences } from "../src/refs/build.js";
import { combineReferences } from "../src/refs/combine.js";
import { decodeInline } from "../src/refs/inline.js";
import { decodeNpy } from "../src/refs/npy.js";
import { readParquetReferences, type KeyReader } from "../src/refs/parquet-read.js";
import { parseReferences, ReferenceStore } from "../src/refs/reference-store.js";
import type { Reference, References } from "../src/refs/types.js";
import { referencesJson, writeReferences } from "../src/refs/write.js";
import { LocalStore } from "../src/stores/local.js";

const FIXTURES = join(process.cwd(), "test", "fixtures", "combine");
let dir: string;
let month: References;

beforeAll(async () => {
  registerCodecs();
  dir = await mkdtemp(join(tmpdir(), "refs-parquet-"));
  const folder = join(FIXTURES, "daily");
  const files = (await readdir(folder)).filter((f) => f.endsWith(".nc")).sort();
  const inputs = await Promise.all(
    files.map(async (f) => {
      const path = relative(process.cwd(), join(folder, f));
      return { refs: await buildReferences(path, { inlineThreshold: 100 }), url: path };
    }),
  );
  // 30 ranged tas chunks, inline time/time_bnds/nobs/lat chunks, ranged lon/orog.
  month = await combineReferences(inputs, { concatDims: ["time"] });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Counts whole-object reads of parquet files. */
function counting(store: KeyReader): KeyReader & { parq: number } {
  const counted = {
    parq: 0,
    get: (key: string) => {
      if (key.endsWith(".parq")) counted.parq++;
      return store.get(key);
    },
  };
  return counted;
}

function sameReference(got: Reference | undefined, want: Reference, key: string): void {
  if (typeof want === "string" && key.split("/").pop()!.startsWith(".z")) {
    expect(JSON.parse(got as string), key).toEqual(JSON.parse(want));
  } else if (typeof want === "string") {
    expect(typeof got, key).toBe("string");
    expect(Buffer.from(decodeInline(got as string)).equals(Buffer.from(decodeInline(want))), key).toBe(true);
  } else {
    expect(got, key).toEqual(want);
  }
}

describe("writeReferences as JSON", () => {
  it("writes compact version-1 JSON that parses back to the same set, in a stable key order", async () => {
    const path = join(dir, "month.json");
    await writeReferences(month, path);
    const text = await readFile(path, "utf8");
    expect(parseReferences(text)).toEqual({ version: 1, refs: month.refs, templates: undefined });
    expect(text).not.toContain("\n");
    const keys = Object.keys((JSON.parse(text) as References).refs);
    expect(keys.indexOf("tas/.zarray")).toBeLessThan(keys.indexOf("tas/0.0.0"));
    expect(keys.indexOf("tas/2.0.0")).toBeLessThan(keys.indexOf("tas/10.0.0"));
    // The same set inserted in another order gives the same bytes.
    const reversed: References = { version: 1, refs: Object.fromEntries(Object.entries(month.refs).reverse()) };
    expect(referencesJson(reversed)).toBe(text);
  });

  it("refuses a store root as a file", async () => {
    const store = new LocalStore(dir);
    await expect(writeReferences(month, "", { store })).rejects.toBeInstanceOf(ReferenceSetError);
  });
});

describe("writeReferences as parquet", () => {
  it("writes kerchunk's layout: .zmetadata with every metadata key, refs.<i>.parq per array and record", async () => {
    const out = join(dir, "month.parq");
    await writeReferences(month, out, { format: "parquet", recordSize: 8 });
    const zmeta = JSON.parse(await readFile(join(out, ".zmetadata"), "utf8")) as { metadata: Record<string, unknown>; record_size: number };
    expect(zmeta.record_size).toBe(8);
    const metaKeys = Object.keys(month.refs).filter((k) => k.split("/").pop()!.startsWith(".z"));
    expect(Object.keys(zmeta.metadata).sort()).toEqual(metaKeys.sort());
    expect(zmeta.metadata["tas/.zarray"]).toEqual(JSON.parse(month.refs["tas/.zarray"] as string));
    // 30 tas chunks in records of 8: 4 files, the last with the 6 rows its chunks need.
    expect((await readdir(join(out, "tas"))).sort()).toEqual(["refs.0.parq", "refs.1.parq", "refs.2.parq", "refs.3.parq"]);
    const last = parquetMetadata(toArrayBuffer(await readFile(join(out, "tas", "refs.3.parq"))));
    expect(Number(last.num_rows)).toBe(6);
    expect(last.schema.map((s) => [s.name, s.type ?? null, s.repetition_type ?? null])).toEqual([
      ["root", null, null],
      ["path", "BYTE_ARRAY", "OPTIONAL"],
      ["offset", "INT64", "REQUIRED"],
      ["size", "INT64", "REQUIRED"],
      ["raw", "BYTE_ARRAY", "OPTIONAL"],
    ]);
    expect(last.schema[1].converted_type).toBe("UTF8");
  });

  it("reads back lazily: equal to the JSON set, one parquet file read for one chunk", async () => {
    const out = join(dir, "lazy.parq");
    await writeReferences(month, out, { format: "parquet", recordSize: 8 });
    const store = counting(new LocalStore(out));
    const lookup = await readParquetReferences("", { store });
    expect(store.parq).toBe(0); // only .zmetadata so far

    sameReference(await lookup.get("tas/17.0.0"), month.refs["tas/17.0.0"], "tas/17.0.0");
    expect(store.parq).toBe(1);
    expect(lookup.filesRead).toBe(1);
    sameReference(await lookup.get("tas/23.0.0"), month.refs["tas/23.0.0"], "tas/23.0.0"); // same record (16..23)
    expect(store.parq).toBe(1);
    expect(await lookup.get("tas/30.0.0")).toBeUndefined(); // outside the grid
    expect(await lookup.get("nope/0")).toBeUndefined();

    const keys: string[] = [];
    for await (const key of lookup.keys()) keys.push(key);
    expect(keys.sort()).toEqual(Object.keys(month.refs).sort());
    for (const [key, want] of Object.entries(month.refs)) sameReference(await lookup.get(key), want, key);
  });

  it("serves zarrita the same values through ReferenceStore", async () => {
    const out = join(dir, "values.parq");
    await writeReferences(month, out, { format: "parquet", recordSize: 5 });
    const lookup = await readParquetReferences(out);
    const refs: Record<string, Reference> = {};
    for await (const key of lookup.keys()) refs[key] = (await lookup.get(key))!;
    const store = new ReferenceStore({ version: 1, refs });
    for (const name of ["tas", "time", "time_bnds", "orog"]) {
      const want = decodeNpy(new Uint8Array(await readFile(join(FIXTURES, "expected", "daily", `${name}.npy`))));
      const got = await zarr.get(await zarr.open.v2(zarr.root(store).resolve(name), { kind: "array" }));
      const data = got.data as unknown as ArrayBufferView;
      expect(Buffer.from(data.buffer, data.byteOffset, data.byteLength).equals(Buffer.from(want.data)), name).toBe(true);
    }
  });

  it("keeps a few decoded files: evicted ones are read again", async () => {
    const out = join(dir, "lru.parq");
    await writeReferences(month, out, { format: "parquet", recordSize: 4 });
    const store = counting(new LocalStore(out));
    const lookup = await readParquetReferences("", { store, cacheSize: 2 });
    for (const t of [0, 4, 0, 8, 4, 0]) await lookup.get(`tas/${t}.0.0`);
    // records 0, 1 read; 0 hit; 2 read (evicts 1); 1 read again (evicts 0); 0 read again.
    expect(store.parq).toBe(5);
  });

  it("a missing record file means missing chunks; a damaged one is an error", async () => {
    const out = join(dir, "damaged.parq");
    await writeReferences(month, out, { format: "parquet", recordSize: 8 });
    await rm(join(out, "tas", "refs.1.parq"));
    await writeFile(join(out, "tas", "refs.2.parq"), "PAR1 not really");
    const lookup = await readParquetReferences(out);
    expect(await lookup.get("tas/9.0.0")).toBeUndefined();
    const error = await lookup.get("tas/17.0.0").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReferenceSetError);
    expect((error as Error).message).toContain("tas/refs.2.parq");
    sameReference(await lookup.get("tas/0.0.0"), month.refs["tas/0.0.0"], "tas/0.0.0");
  });

  it("refuses a directory without .zmetadata and a lying record size", async () => {
    await expect(readParquetReferences(join(dir, "nothing-here"))).rejects.toThrow(/no \.zmetadata/);
    const out = join(dir, "lying.parq");
    await writeReferences(month, out, { format: "parquet" });
    await writeFile(join(out, ".zmetadata"), JSON.stringify({ metadata: {}, record_size: -3 }));
    await expect(readParquetReferences(out)).rejects.toThrow(/record_size/);
  });

  it("expands templates into the path column (parquet has no template table)", async () => {
    const url = (month.refs["tas/0.0.0"] as [string, number, number])[0];
    const refs = Object.fromEntries(
      Object.entries(month.refs).map(([k, v]) => [k, typeof v !== "string" && v[0] === url ? (["{{u}}", ...v.slice(1)] as Reference) : v]),
    );
    const out = join(dir, "templated.parq");
    await writeReferences({ version: 1, refs, templates: { u: url } }, out, { format: "parquet" });
    const lookup = await readParquetReferences(out);
    expect(await lookup.get("tas/0.0.0")).toEqual(month.refs["tas/0.0.0"]);
    const json = join(dir, "templated.json");
    await writeReferences({ version: 1, refs, templates: { u: url } }, json);
    expect(JSON.parse(await readFile(json, "utf8")).templates).toEqual({ u: url });
  });

  it("refuses a null url (the set's target): parquet has no target, a null path there means no reference", async () => {
    const first = month.refs["tas/0.0.0"] as [string, number, number];
    const bad: References = { version: 1, refs: { ...month.refs, "tas/0.0.0": [null, first[1], first[2]] } };
    await expect(writeReferences(bad, join(dir, "null-url.parq"), { format: "parquet" })).rejects.toThrow(/null url/);
  });

  it("refuses keys that are neither metadata nor chunks of an array", async () => {
    const bad: References = { version: 1, refs: { ...month.refs, "tas/9.9.9": ["x", 0, 1] } };
    await expect(writeReferences(bad, join(dir, "bad.parq"), { format: "parquet" })).rejects.toThrow(/inside the grid/);
  });
});

describe("readParquetReferences on files from another writer", () => {
  // Written by DuckDB as fsspec writes them: zstd pages, full records with empty trailing rows
  // (test/fixtures/combine/parquet/generate.mjs).
  const fixture = join(FIXTURES, "parquet");

  it("reads every reference of the set the files encode", async () => {
    const expected = parseReferences(await readFile(join(fixture, "expected.json"), "utf8"));
    const lookup = await readParquetReferences(join(fixture, "refs"));
    for (const [key, want] of Object.entries(expected.refs)) sameReference(await lookup.get(key), want, key);
    expect(await lookup.get("x/2")).toBeUndefined(); // a row with neither path nor raw
    const keys: string[] = [];
    for await (const key of lookup.keys()) keys.push(key);
    expect(keys.sort()).toEqual(Object.keys(expected.refs).sort());
  });

  it("gives zarrita the same arrays as the JSON set", async () => {
    const expected = parseReferences(await readFile(join(fixture, "expected.json"), "utf8"));
    const lookup = await readParquetReferences(join(fixture, "refs"));
    const refs: Record<string, Reference> = {};
    for await (const key of lookup.keys()) refs[key] = (await lookup.get(key))!;
    for (const name of ["x", "s"]) {
      const read = async (set: References) => zarr.get(await zarr.open.v2(zarr.root(new ReferenceStore(set)).resolve(name), { kind: "array" }));
      // zarrita returns a scalar array's value itself, other arrays as { data, shape }.
      const plain = (c: unknown) => (typeof c === "object" && c !== null && "data" in c ? [(c as unknown as { shape: number[] }).shape, Array.from((c as unknown as { data: Int32Array }).data)] : c);
      const [got, want] = [plain(await read({ version: 1, refs })), plain(await read(expected))];
      expect(got).toEqual(want);
      expect(got).not.toBeUndefined();
    }
  });
});

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}
