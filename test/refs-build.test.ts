/**
 * The reference builder against files written by the real HDF5 and netCDF-C libraries
 * (test/fixtures/refs/generate.py): every dataset read back through our references with zarrita
 * equals what h5py read, every chunk reference equals h5py's get_chunk_info, dimension names equal
 * netCDF-C's, and Python's fsspec + zarr read our JSON the same way (when /usr/bin/python3 has them).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as zarr from "zarrita";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReferenceSetError } from "../src/errors.js";
import { buildReferencesWithWarnings, type BuildResult } from "../src/refs/build.js";
import { parseReferences, ReferenceStore } from "../src/refs/reference-store.js";
import { toJson } from "../src/refs/json.js";
import { registerCodecs } from "../src/codecs/registry.js";
import { expectSameValues, expectedValues as valuesOf, type ManifestEntry } from "./fixtures/refs/expected.js";

const FIXTURES = fileURLToPath(new URL("./fixtures/refs/", import.meta.url));

const manifest = JSON.parse(readFileSync(join(FIXTURES, "manifest.json"), "utf8")) as {
  files: Record<string, ManifestEntry[]>;
  corpus?: Record<string, ManifestEntry[]>;
};
/** The shared corpus (files other projects wrote) lives beside the repository; CI clones it there. */
const CORPUS = fileURLToPath(new URL("../../shared/corpus/", import.meta.url));
const corpusPresent = existsSync(CORPUS) && Object.keys(manifest.corpus ?? {}).length > 0;
if (!corpusPresent) console.warn(`refs-build: SKIPPED the shared corpus: ${CORPUS} not found`);
/** Fixture keys: "nc4.nc" for ours, "corpus/kerchunk_air.nc" for the shared corpus. */
const FILES = [
  ...Object.keys(manifest.files),
  ...(corpusPresent ? Object.keys(manifest.corpus!).map((f) => `corpus/${f}`) : []),
];
const entriesOf = (key: string): ManifestEntry[] =>
  key.startsWith("corpus/") ? manifest.corpus![key.slice(7)] : manifest.files[key];
const dirOf = (key: string) => (key.startsWith("corpus/") ? CORPUS : FIXTURES);
const pathOf = (key: string) => join(dirOf(key), basename(key));

const hasFloat16 = "Float16Array" in globalThis;
/** Datasets whose dtype zarr cannot hold; the builder must list them, not drop them silently. */
const UNREPRESENTABLE = new Set(["/dtypes/compound"]);

describe("buildReferences on h5py / netCDF-C fixtures", () => {
  const results = new Map<string, BuildResult>();
  const inlined = new Map<string, BuildResult>();

  beforeAll(async () => {
    registerCodecs();
    for (const file of FILES) {
      const url = basename(file);
      results.set(file, await buildReferencesWithWarnings(pathOf(file), { inlineThreshold: 0, url }));
      inlined.set(file, await buildReferencesWithWarnings(pathOf(file), { url }));
    }
  });

  it.each(FILES)("%s: warnings list exactly the unrepresentable datasets", (file) => {
    const warned = results.get(file)!.warnings.map((w) => w.path).sort();
    const expected = entriesOf(file).filter((e) => UNREPRESENTABLE.has(e.path)).map((e) => e.path);
    expect(warned).toEqual(expected.sort());
    if (warned.length > 0) {
      const rootAttrs = JSON.parse(results.get(file)!.references.refs[".zattrs"] as string) as Record<string, unknown>;
      expect(rootAttrs._activestore_skipped).toHaveLength(warned.length);
    }
  });

  it.each(FILES)("%s: each chunk reference is h5py's get_chunk_info", (file) => {
    const refs = results.get(file)!.references.refs;
    for (const entry of entriesOf(file)) {
      if (UNREPRESENTABLE.has(entry.path) || entry.kind === "O") continue;
      const prefix = entry.path.slice(1);
      if (entry.layout.kind === "chunked") {
        for (const c of entry.chunkInfo) {
          const key = `${prefix}/${c.coords.length === 0 ? "0" : c.coords.join(".")}`;
          // A chunk that skipped a filter is re-encoded and inlined: the file's bytes would not decode.
          if (c.filterMask !== 0) expect(typeof refs[key], key).toBe("string");
          else expect(refs[key], key).toEqual([basename(file), c.offset, c.size]);
        }
        const keys = Object.keys(refs).filter((k) => k.startsWith(prefix + "/") && !k.slice(prefix.length + 1).includes("/") && !k.includes("/."));
        expect(keys.length, `${entry.path}: no chunk keys beyond the stored chunks`).toBe(entry.chunkInfo.length);
      } else if (entry.layout.kind === "contiguous") {
        const key = `${prefix}/${entry.shape.length === 0 ? "0" : entry.shape.map(() => 0).join(".")}`;
        if (entry.layout.offset === null || entry.shape.includes(0)) expect(refs[key], key).toBeUndefined();
        else expect(refs[key], key).toEqual([basename(file), entry.layout.offset, entry.layout.size]);
      }
    }
  });

  it.each(FILES)("%s: .zarray shape, chunks and dtype are h5py's", (file) => {
    const refs = results.get(file)!.references.refs;
    for (const entry of entriesOf(file)) {
      if (UNREPRESENTABLE.has(entry.path)) continue;
      if (entry.isDimensionScale && entry.ncDims === undefined) {
        // netCDF-C's dimension-only scale: a dimension, not a variable.
        expect(refs[`${entry.path.slice(1)}/.zarray`], entry.path).toBeUndefined();
        continue;
      }
      const zarray = JSON.parse(refs[`${entry.path.slice(1)}/.zarray`] as string) as Record<string, unknown>;
      expect(zarray.shape, entry.path).toEqual(entry.shape);
      expect(zarray.dtype, entry.path).toBe(entry.dtype);
      expect(zarray.compressor).toBeNull();
      if (entry.chunks) expect(zarray.chunks, entry.path).toEqual(entry.chunks);
      expect(zarray.fill_value, `${entry.path}: fill_value`).not.toBeUndefined();
      if (entry.kind !== "O") expect(zarray.fill_value, `${entry.path}: fill_value`).not.toBeNull();
    }
  });

  it.each(FILES)("%s: _ARRAY_DIMENSIONS are netCDF-C's dimension names", (file) => {
    const refs = results.get(file)!.references.refs;
    for (const entry of entriesOf(file)) {
      if (!entry.ncDims || UNREPRESENTABLE.has(entry.path)) continue;
      // netCDF-C 4.9 reuses a fixed-size phony dimension for an unlimited one of the same length
      // here, against its own matching rule; we follow the rule (documented in dimensions.ts).
      if (entry.path === "/zero_size_chunked") continue;
      const attrs = JSON.parse(refs[`${entry.path.slice(1)}/.zattrs`] as string) as Record<string, unknown>;
      expect(attrs._ARRAY_DIMENSIONS, entry.path).toEqual(entry.ncDims);
    }
  });

  it("hides netCDF-4 bookkeeping attributes and encodes non-finite floats as zarr does", () => {
    const refs = results.get("nc4.nc")!.references.refs;
    const tas = JSON.parse(refs["tas/.zattrs"] as string) as Record<string, unknown>;
    for (const hidden of ["DIMENSION_LIST", "_Netcdf4Dimid", "_Netcdf4Coordinates", "CLASS", "NAME", "REFERENCE_LIST"]) {
      expect(tas).not.toHaveProperty(hidden);
    }
    expect(tas.units).toBe("K");
    expect(tas.valid_range).toEqual([100, 400]);
    expect(Object.keys(refs)).not.toContain("nv/.zarray"); // dimension-only scale
    const root = JSON.parse(refs[".zattrs"] as string) as Record<string, unknown>;
    expect(root).not.toHaveProperty("_NCProperties");
    expect(root.title).toBe("netCDF fixture");
    const t2m = JSON.parse(refs["forecast/t2m/.zattrs"] as string) as Record<string, unknown>;
    expect(t2m.bad).toBe("NaN");
    const h5 = JSON.parse(results.get("h5_earliest.h5")!.references.refs[".zattrs"] as string) as Record<string, unknown>;
    expect(h5).toMatchObject({ nan: "NaN", inf: "Infinity", ninf: [1.5, "-Infinity", "NaN"], small64: -7, flag: true });
    expect(h5.big).toBe((2n ** 63n + 5n).toString());
  });

  it("uses netCDF-C's default fill where netCDF files do not set one", () => {
    const refs = results.get("nc4.nc")!.references.refs;
    const fill = (k: string) => JSON.parse(refs[`${k}/.zarray`] as string).fill_value as unknown;
    expect(fill("pr")).toBe(-32767);
    expect(fill("tas")).toBe(Math.fround(1e20)); // the float32 _FillValue, widened exactly
    expect(fill("lat")).toBe(9.969209968386869e36);
    // Exact 64-bit digits reach Python readers (JSON.parse itself rounds them).
    expect(refs["u8/.zarray"]).toContain('"fill_value":18446744073709551614');
    expect(refs["i8/.zarray"]).toContain('"fill_value":-9223372036854775806');
  });

  for (const mode of ["ranges", "inlined"] as const) {
    it.each(FILES)(`%s: zarrita reads h5py's values (${mode})`, async (file) => {
      const { references } = (mode === "ranges" ? results : inlined).get(file)!;
      // Round-trip through JSON text like a file on disk.
      const parsed = parseReferences(JSON.parse(toJson(references)));
      const store = new ReferenceStore(parsed, { baseDir: dirOf(file) });
      const root = zarr.root(store);
      let checked = 0;
      for (const entry of entriesOf(file)) {
        if (UNREPRESENTABLE.has(entry.path) || entry.values === null) continue;
        if (entry.isDimensionScale && entry.ncDims === undefined) continue;
        if (entry.dtype.endsWith("f2") && !hasFloat16) continue; // zarrita needs Float16Array (Node ≥ 22)
        const arr = await zarr.open(root.resolve(entry.path.slice(1)), { kind: "array" });
        if (entry.shape.includes(0)) {
          // zarrita cannot index an empty array ("empty iterator"); its shape is all there is.
          expect(arr.shape).toEqual(entry.shape);
          expect(valuesOf(FIXTURES, file, entry)).toEqual([]);
          checked++;
          continue;
        }
        const got: unknown = await zarr.get(arr);
        // zarrita returns a 0-d selection as the bare scalar.
        const isChunk = typeof got === "object" && got !== null && "data" in got;
        const actual = isChunk ? Array.from((got as { data: Iterable<unknown> }).data) : [got];
        expectSameValues(actual, valuesOf(FIXTURES, file, entry), `${file}${entry.path}`);
        checked++;
      }
      const readable = entriesOf(file).filter(
        (e) => !UNREPRESENTABLE.has(e.path) && e.values !== null && !(e.isDimensionScale && e.ncDims === undefined),
      );
      expect(checked).toBe(readable.filter((e) => hasFloat16 || !e.dtype.endsWith("f2")).length);
    });
  }

  it("inlines small chunks and keeps large ones as ranges", () => {
    const refs = inlined.get("h5_earliest.h5")!.references.refs;
    expect(typeof refs["chunked_i4/0.0"]).toBe("string");
    expect(Array.isArray(refs["large_chunks/0.0"])).toBe(true);
    expect(typeof refs["compact_i2/0.0"]).toBe("string");
    expect(typeof refs["scalar/0"]).toBe("string");
  });

  it("reports progress over chunks up to the total", async () => {
    const seen: [number, number][] = [];
    await buildReferencesWithWarnings(join(FIXTURES, "h5_latest.h5"), { onProgress: (d, t) => seen.push([d, t]) });
    const [lastDone, total] = seen[seen.length - 1];
    expect(lastDone).toBe(total);
    expect(total).toBeGreaterThan(49);
  });

  it("honours an aborted signal", async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(buildReferencesWithWarnings(join(FIXTURES, "nc4.nc"), { signal: controller.signal })).rejects.toThrow();
  });
});

describe("ReferenceStore", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "refs-store-"));
    writeFileSync(join(dir, "data.bin"), new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const refs = () =>
    parseReferences({
      version: 1,
      templates: { u: "data.bin" },
      refs: {
        text: "hello",
        b64: "base64:AAEC",
        whole: ["data.bin"],
        range: ["{{u}}", 2, 5],
        gone: ["missing.bin", 0, 4],
        scheme: ["gopher://host/x", 0, 4],
        short: ["data.bin", 8, 5],
      },
    });

  it("resolves inline, base64, whole-object, templated and ranged references", async () => {
    const store = new ReferenceStore(refs(), { baseDir: dir });
    expect(new TextDecoder().decode(await store.get("/text"))).toBe("hello");
    expect(await store.get("/b64")).toEqual(new Uint8Array([0, 1, 2]));
    expect((await store.get("/whole"))!.length).toBe(10);
    expect(await store.get("/range")).toEqual(new Uint8Array([2, 3, 4, 5, 6]));
    expect(await store.getRange("/range", { offset: 1, length: 2 })).toEqual(new Uint8Array([3, 4]));
    expect(await store.getRange("/range", { suffixLength: 2 })).toEqual(new Uint8Array([5, 6]));
    expect(await store.getRange("/text", { offset: 1, length: 3 })).toEqual(new TextEncoder().encode("ell"));
  });

  it("a key not in the set is missing; a broken target is a ReferenceSetError naming key and url", async () => {
    const store = new ReferenceStore(refs(), { baseDir: dir });
    expect(await store.get("/nope")).toBeUndefined();
    await expect(store.get("/gone")).rejects.toThrow(ReferenceSetError);
    await expect(store.get("/gone")).rejects.toThrow(/reference "gone" \(missing\.bin\)/);
    await expect(store.get("/scheme")).rejects.toThrow(/gopher/);
    await expect(store.get("/short")).rejects.toThrow(/too short/);
  });

  it("rejects malformed reference sets with ReferenceSetError", () => {
    expect(() => parseReferences("{not json")).toThrow(ReferenceSetError);
    expect(() => parseReferences({ version: 2, refs: {} })).toThrow(/version/);
    expect(() => parseReferences({ version: 1, refs: { a: ["u", -1, 3] } })).toThrow(/"a"/);
    expect(() => parseReferences({ version: 1, refs: { a: 5 } })).toThrow(ReferenceSetError);
  });

  it("a corrupt base64 inline value is an error, not garbage", async () => {
    const store = new ReferenceStore(parseReferences({ version: 1, refs: { a: "base64:@@@" } }));
    await expect(store.get("/a")).rejects.toThrow(/base64/);
  });
});

/** Python's fsspec ReferenceFileSystem + zarr 2 read our JSON, compared with h5py in the same process. */
const PYTHON = "/usr/bin/python3";
const pythonReady =
  existsSync(PYTHON) && spawnSync(PYTHON, ["-c", "import fsspec, zarr, h5py, numpy"], { stdio: "ignore" }).status === 0;
if (!pythonReady) {
  console.warn(`refs-build: SKIPPED the fsspec/zarr cross-check: ${PYTHON} with fsspec, zarr, h5py, numpy not found`);
}

describe.skipIf(!pythonReady)("Python fsspec + zarr read our references (needs /usr/bin/python3)", () => {
  it.each(FILES)("%s", async (file) => {
    const dir = mkdtempSync(join(tmpdir(), "refs-py-"));
    try {
      const { references } = await buildReferencesWithWarnings(pathOf(file), { url: pathOf(file) });
      const json = join(dir, "refs.json");
      writeFileSync(json, toJson(references));
      const script = `
import sys, json, fsspec, zarr, h5py, numpy as np
fs = fsspec.filesystem("reference", fo=sys.argv[1])
# fsspec 2022.11's getitems raises KeyError for a missing chunk instead of omitting it; a KVStore
# makes zarr fetch key by key, where a missing key reads as the fill value (newer fsspec is fine).
root = zarr.open(zarr.storage.KVStore(fs.get_mapper("")), mode="r")
skipped = set(p.split(":")[0] for p in root.attrs.get("_activestore_skipped", []))
n = 0
missing = []
with h5py.File(sys.argv[2], "r") as f:
    def visit(name, obj):
        global n
        if not isinstance(obj, h5py.Dataset) or "/" + name in skipped: return
        if obj.attrs.get("CLASS") == b"DIMENSION_SCALE" and str(obj.attrs.get("NAME", b"")).find("not a netCDF variable") >= 0: return
        try:
            ours = root[name][()]
        except ValueError as e:
            if "codec not available" not in str(e): raise
            missing.append(name); return
        theirs = obj.asstr()[()] if h5py.check_string_dtype(obj.dtype) and h5py.check_string_dtype(obj.dtype).length is None else obj[()]
        if ours.dtype.kind == "O": ours = ours.astype(str); theirs = np.asarray(theirs).astype(str)
        assert ours.shape == np.shape(theirs), (name, ours.shape, np.shape(theirs))
        assert np.array_equal(ours, theirs, equal_nan=ours.dtype.kind == "f"), name
        n += 1
    f.visititems(visit)
print(n, " ".join(missing))
`;
      const out = execFileSync(PYTHON, ["-c", script, json, pathOf(file)], { encoding: "utf8" });
      const [count, ...lacking] = out.trim().split(" ");
      // Debian's numcodecs 0.11 has no fletcher32/lzf codecs; those datasets are checked by zarrita only.
      if (lacking.length > 0) console.warn(`refs-build: Python zarr lacks codecs for ${file}: ${lacking.join(", ")}`);
      const entries = entriesOf(file).filter((e) => !UNREPRESENTABLE.has(e.path) && !(e.isDimensionScale && e.ncDims === undefined));
      const noPythonCodec = (e: ManifestEntry) => e.filters.some((f) => [3, 6, 32000].includes(f.id));
      expect(lacking.sort()).toEqual(entries.filter(noPythonCodec).map((e) => e.path.slice(1)).sort());
      expect(Number(count)).toBe(entries.length - lacking.length);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
