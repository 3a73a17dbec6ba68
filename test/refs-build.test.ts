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
import { ActivestoreError, Hdf5FormatError, ReferenceSetError, UnsupportedFeatureError } from "../src/errors.js";
import { buildReferencesWithWarnings, type BuildResult } from "../src/refs/build.js";
import { parseReferences, ReferenceStore } from "../src/refs/reference-store.js";
import { toJson } from "../src/refs/json.js";
import { registerCodecs } from "../src/codecs/registry.js";
import type { Attribute, AttributeValue, Dataset, Datatype, Group } from "../src/hdf5/model.js";
import { CachedSource, FileContext } from "../src/hdf5/io.js";
import { arrayReferences } from "../src/refs/array.js";
import { attributesToJson } from "../src/refs/attributes.js";
import { resolveDimensions } from "../src/refs/dimensions.js";
import { toZarrDtype } from "../src/refs/dtype.js";
import { fillValueFor } from "../src/refs/fill.js";
import { decodeInline, inlineValue } from "../src/refs/inline.js";
import { openStore } from "../src/stores/open.js";
import { expectSameValues, expectedValues as valuesOf, npyToList, type ManifestEntry } from "./fixtures/refs/expected.js";

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
      expect(zarray.shape, entry.path).toEqual(entry.ncShape ?? entry.shape);
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
    // Integral doubles past 2^53 in exponent form, so Python reads the same float (not an int).
    expect(refs["tas/.zattrs"]).toContain('"_FillValue":1.0000000200408773e+20');
    expect(refs["tas/.zarray"]).toContain('"fill_value":1.0000000200408773e+20');
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
        // Where netCDF-C extends a variable along an unlimited dimension, its reading is the reference.
        const expected = entry.ncValues ? npyToList(readFileSync(join(FIXTURES, "values", file, entry.ncValues))) : valuesOf(FIXTURES, file, entry);
        expectSameValues(actual, expected, `${file}${entry.path}`);
        checked++;
      }
      const readable = entriesOf(file).filter(
        (e) => !UNREPRESENTABLE.has(e.path) && e.values !== null && !(e.isDimensionScale && e.ncDims === undefined),
      );
      expect(checked).toBe(readable.filter((e) => hasFloat16 || !e.dtype.endsWith("f2")).length);
    });
  }

  it("writes chunk keys in C order of their coordinates", () => {
    const keys = Object.keys(results.get("h5_latest.h5")!.references.refs).filter((k) => /^two_unlimited\/\d/.test(k));
    const coords = keys.map((k) => k.split("/")[1].split(".").map(Number));
    const sorted = [...coords].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    expect(coords).toEqual(sorted);
    expect(coords.length).toBe(6);
  });

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

  it("strict mode raises on the first dataset it cannot represent", async () => {
    await expect(buildReferencesWithWarnings(join(FIXTURES, "h5_earliest.h5"), { strict: true })).rejects.toThrow(
      UnsupportedFeatureError,
    );
  });

  it("a truncated or non-HDF5 file is a typed error, never references", async () => {
    const dir = mkdtempSync(join(tmpdir(), "refs-bad-"));
    try {
      const bytes = readFileSync(join(FIXTURES, "h5_latest.h5"));
      for (const cut of [100, 2000, 5000]) {
        writeFileSync(join(dir, "cut.h5"), bytes.subarray(0, cut));
        const error = await buildReferencesWithWarnings(join(dir, "cut.h5")).then(() => undefined, (e: unknown) => e);
        expect(error, `cut at ${cut}`).toBeInstanceOf(ActivestoreError);
      }
      writeFileSync(join(dir, "text.h5"), "not an HDF5 file at all");
      await expect(buildReferencesWithWarnings(join(dir, "text.h5"))).rejects.toThrow(Hdf5FormatError);
      await expect(buildReferencesWithWarnings(join(dir, "missing.h5"))).rejects.toThrow(/ENOENT|no such file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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
try:
    import netCDF4
    nc = netCDF4.Dataset(sys.argv[2])
except Exception:
    nc = None
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
        if nc is not None and ours.shape != np.shape(theirs):
            # netCDF-C's view along an unlimited dimension (the longest variable's length).
            var = nc[name]
            var.set_auto_maskandscale(False)
            theirs = var[...]
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

describe("urls through the store layer", () => {
  it("builds from memory:// and resolves memory:// references with the default resolver", async () => {
    const bucket = openStore("memory://refs-test");
    await bucket.set("data/nc4.nc", new Uint8Array(readFileSync(join(FIXTURES, "nc4.nc"))));
    const { references, warnings } = await buildReferencesWithWarnings("memory://refs-test/data/nc4.nc", {
      inlineThreshold: 0,
    });
    expect(warnings).toEqual([]);
    expect(references.refs["tas/0.0.0"]).toEqual(expect.arrayContaining(["memory://refs-test/data/nc4.nc"]));
    registerCodecs();
    const store = new ReferenceStore(parseReferences(toJson(references)));
    const arr = await zarr.open(zarr.root(store).resolve("tas"), { kind: "array" });
    const got = (await zarr.get(arr)) as { data: Float32Array };
    const entry = entriesOf("nc4.nc").find((e) => e.path === "/tas")!;
    expectSameValues(Array.from(got.data), valuesOf(FIXTURES, "nc4.nc", entry), "memory://.../nc4.nc/tas");
    await bucket.delete("data/nc4.nc");
    await expect(store.get("/tas/0.0.0")).rejects.toThrow(ReferenceSetError);
    await store.close();
  });
});

describe("mapping rules on hand-built models", () => {
  const int = (size: number, signed = true, littleEndian = true): Datatype => ({ class: "integer", size, signed, littleEndian });
  const f32: Datatype = { class: "float", size: 4, littleEndian: true };
  const attr = (name: string, value: AttributeValue, shape: number[] | null = []): Attribute => ({
    name,
    type: f32,
    shape,
    value,
  });
  const ok = (t: Datatype) => {
    const m = toZarrDtype(t);
    if (!m.ok) throw new Error(m.reason);
    return m;
  };

  it("maps datatypes to zarr v2 dtypes and explains the ones it cannot", () => {
    expect(ok(int(1)).dtype).toBe("|i1");
    expect(ok(int(2, false, false)).dtype).toBe(">u2");
    expect(ok({ class: "float", size: 2, littleEndian: true }).dtype).toBe("<f2");
    expect(ok({ class: "string", size: 7, padding: 1, charset: "utf-8" }).dtype).toBe("|S7");
    expect(ok({ class: "vlen-string", charset: "utf-8", padding: 0 }).dtype).toBe("|O");
    const bool: Datatype = { class: "enum", base: int(1), members: [{ name: "FALSE", value: 0 }, { name: "TRUE", value: 1 }] };
    expect(ok(bool).dtype).toBe("|b1");
    const color: Datatype = { class: "enum", base: int(2, false), members: [{ name: "RED", value: 0 }] };
    expect(ok(color).dtype).toBe("<u2");
    for (const [t, why] of [
      [{ class: "compound", size: 8, members: [] }, /compound/],
      [{ class: "reference", size: 8, kind: "object" }, /object references/],
      [{ class: "opaque", size: 4, tag: "x" }, /opaque/],
      [{ class: "vlen-sequence", base: int(4) }, /variable-length sequences/],
      [{ class: "array", base: int(4), dims: [2] }, /array datatypes/],
    ] as [Datatype, RegExp][]) {
      const m = toZarrDtype(t);
      expect(m.ok).toBe(false);
      if (!m.ok) expect(m.reason).toMatch(why);
    }
    expect(toZarrDtype(int(3)).ok).toBe(false);
  });

  it("picks the fill value: _FillValue, then the fill message, then netCDF's default, then 0", () => {
    const m = ok(int(2));
    const fill = (bytes?: Uint8Array) => ({ bytes });
    expect(fillValueFor({ attributes: [attr("_FillValue", [-5])], fill: fill(new Uint8Array([1, 0])) }, m, true)).toBe(-5);
    expect(fillValueFor({ attributes: [], fill: fill(new Uint8Array([1, 0])) }, m, true)).toBe(1);
    expect(fillValueFor({ attributes: [], fill: fill() }, m, true)).toBe(-32767);
    expect(fillValueFor({ attributes: [], fill: fill() }, m, false)).toBe(0);
    expect(fillValueFor({ attributes: [], fill: fill() }, ok(int(8, false)), true)).toBe(18446744073709551614n);
    expect(fillValueFor({ attributes: [attr("_FillValue", NaN)], fill: fill() }, ok(f32), false)).toBe("NaN");
    const nanBytes = new Uint8Array(new Float32Array([-Infinity]).buffer);
    expect(fillValueFor({ attributes: [], fill: fill(nanBytes) }, ok(f32), false)).toBe("-Infinity");
    // A fill message of the wrong size is a lie: fall through rather than decode garbage.
    expect(fillValueFor({ attributes: [], fill: fill(new Uint8Array(3)) }, m, false)).toBe(0);
    const s = ok({ class: "string", size: 3, padding: 1, charset: "ascii" });
    expect(fillValueFor({ attributes: [], fill: fill(new Uint8Array(3)) }, s, false)).toBe("");
    expect(toJson({ fill_value: 18446744073709551614n })).toBe('{"fill_value":18446744073709551614}');
    expect(toJson([2 ** 60, -(2 ** 60), 2 ** 53, 1e21, 0.5])).toBe("[1.152921504606847e+18,-1.152921504606847e+18,9.007199254740992e+15,1e+21,0.5]");
  });

  it("turns attributes into JSON the way zarr and kerchunk do", () => {
    const json = attributesToJson([
      attr("scalar", 2.5),
      attr("one", [7], [1]),
      attr("grid", [1, 2, 3, 4, 5, 6], [2, 3]),
      attr("special", [NaN, Infinity, -Infinity], [3]),
      attr("huge", 2n ** 64n - 1n),
      attr("safe", 42n),
      attr("raw", new TextEncoder().encode("abc\0\0")),
      attr("empty", null, null),
      attr("compound", { a: 1, b: NaN }),
      attr("DIMENSION_LIST", [[1]], [1]),
      attr("_Netcdf4Dimid", 0),
    ]);
    expect(json).toEqual({
      scalar: 2.5,
      one: 7,
      grid: [
        [1, 2, 3],
        [4, 5, 6],
      ],
      special: ["NaN", "Infinity", "-Infinity"],
      huge: "18446744073709551615",
      safe: 42,
      raw: "abc",
      empty: null,
      compound: { a: 1, b: "NaN" },
    });
  });

  it("names dimensions from scales, strips _nc4_non_coord_, maps _Netcdf4Coordinates, numbers phony dims", () => {
    let address = 100;
    const ds = (path: string, shape: number[], attributes: Attribute[] = [], maxShape?: (number | null)[]): Dataset => ({
      kind: "dataset",
      path,
      name: path.split("/").pop()!,
      address: address++,
      attributes,
      shape,
      maxShape: maxShape ?? shape,
      type: f32,
      filters: [],
      fill: {},
      layout: { kind: "contiguous", address: 0, size: 0 },
    });
    const scaleAttrs = (name: string, dimid: number, extra: Attribute[] = []) => [
      attr("CLASS", "DIMENSION_SCALE"),
      attr("NAME", name),
      attr("_Netcdf4Dimid", dimid),
      ...extra,
    ];
    const x = ds("/x", [3], scaleAttrs("x", 0));
    const y = ds("/_nc4_non_coord_y", [2], scaleAttrs("This is a netCDF dimension but not a netCDF variable.", 1));
    const coord2d = ds("/x2", [3, 2], [
      ...scaleAttrs("x2", 2),
      attr("_Netcdf4Coordinates", [0, 1], [2]),
    ]);
    const v = ds("/v", [3, 2], [attr("DIMENSION_LIST", [[x.address], [y.address]], [2])]);
    const p1 = ds("/g/p", [4, 4]);
    const p2 = ds("/g/q", [4], [], [null]);
    const p3 = ds("/r", [4]);
    const group = (path: string, children: (Group | Dataset)[]): Group => ({
      kind: "group",
      path,
      name: path.split("/").pop()!,
      address: address++,
      attributes: [],
      children,
    });
    const root = group("/", [x, y, coord2d, v, group("/g", [p1, p2]), p3]);
    const dims = resolveDimensions(root);
    expect(dims.dimensionOnly).toEqual(new Set(["/_nc4_non_coord_y"]));
    expect(dims.names.get("/x")).toEqual(["x"]);
    expect(dims.names.get("/v")).toEqual(["x", "y"]);
    expect(dims.names.get("/x2")).toEqual(["x", "y"]);
    // Child groups first, numbering after the 3 real dimensions, never a dim twice in one variable,
    // unlimited apart from fixed; phony dims are per group.
    expect(dims.names.get("/g/p")).toEqual(["phony_dim_3", "phony_dim_4"]);
    expect(dims.names.get("/g/q")).toEqual(["phony_dim_5"]);
    expect(dims.names.get("/r")).toEqual(["phony_dim_6"]);
  });

  it("storage shorter than the dataspace is an Hdf5FormatError, not a reference that fails later", async () => {
    const bytes = new Uint8Array(64);
    const source = { name: "mem", read: async (o: number, n: number) => bytes.subarray(o, o + n), size: async () => 64 };
    const ctx = new FileContext(new CachedSource(source), { offsetSize: 8, lengthSize: 8 });
    const dataset = (layout: Dataset["layout"]): Dataset => ({
      kind: "dataset",
      path: "/d",
      name: "d",
      address: 1,
      attributes: [],
      shape: [10],
      maxShape: [10],
      type: int(4),
      filters: [],
      fill: {},
      layout,
    });
    const ac = { ctx, url: "mem", inlineThreshold: 0, isNetcdf: false, filtersToCodecs: () => [], chunks: async () => [] };
    await expect(arrayReferences(dataset({ kind: "contiguous", address: 8, size: 36 }), ac)).rejects.toThrow(Hdf5FormatError);
    await expect(arrayReferences(dataset({ kind: "compact", data: new Uint8Array(8) }), ac)).rejects.toThrow(/compact storage of 8 bytes/);
    const refs = await arrayReferences(dataset({ kind: "contiguous", address: 8, size: 40 }), ac);
    expect(refs["d/0"]).toEqual(["mem", 8, 40]);
    const chunked = dataset({ kind: "chunked", chunkShape: [5], index: { type: "btree-v1", address: 0 } });
    const entry = { coords: [1], offset: 8, size: 12, filterMask: 0 };
    await expect(arrayReferences(chunked, { ...ac, chunks: async () => [entry] })).rejects.toThrow(/chunk d\/1 is 12 bytes/);
  });

  it("inlines text as text and binary as base64, and reads both back", () => {
    expect(inlineValue(new TextEncoder().encode('{"a": 1}'))).toBe('{"a": 1}');
    const bin = new Uint8Array([0, 255, 1]);
    expect(inlineValue(bin)).toBe("base64:AP8B");
    expect(decodeInline(inlineValue(bin))).toEqual(bin);
    const tricky = new TextEncoder().encode("base64:notreally");
    expect(decodeInline(inlineValue(tricky))).toEqual(tricky);
  });
});

describe.skipIf(!pythonReady)("xarray over our references equals xarray over netCDF-C (needs /usr/bin/python3)", () => {
  // Raw values (no CF masking): zarr's fill_value becomes xarray's _FillValue, which would mask
  // netCDF default fills that xarray-over-netCDF4 leaves visible.
  it.each(FILES.filter((f) => f.endsWith(".nc")))("%s", async (file) => {
    const dir = mkdtempSync(join(tmpdir(), "refs-xr-"));
    try {
      const { references } = await buildReferencesWithWarnings(pathOf(file), { url: pathOf(file) });
      const json = join(dir, "refs.json");
      writeFileSync(json, toJson(references));
      const script = `
import sys, warnings, fsspec, zarr, xarray as xr
warnings.simplefilter("ignore")
fs = fsspec.filesystem("reference", fo=sys.argv[1])
kw = dict(mask_and_scale=False, decode_times=False)
ours = xr.open_dataset(zarr.storage.KVStore(fs.get_mapper("")), engine="zarr", consolidated=False, chunks=None, **kw)
ref = xr.open_dataset(sys.argv[2], engine="netcdf4", **kw)
for name in ref.variables:
    a, b = ours[name], ref[name]
    assert a.dims == b.dims, (name, a.dims, b.dims)
    assert a.equals(b), name
    for k, v in b.attrs.items():
        assert k in a.attrs, (name, k)
print(len(ref.variables))
`;
      const out = execFileSync(PYTHON, ["-c", script, json, pathOf(file)], { encoding: "utf8" });
      // xarray opens the root group only.
      expect(Number(out.trim())).toBe(entriesOf(file).filter((e) => e.ncDims !== undefined && e.path.lastIndexOf("/") === 0).length);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
