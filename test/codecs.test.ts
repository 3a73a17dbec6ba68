/**
 * Codecs against bytes written by the libraries that define each format (fixtures from
 * test/fixtures/codecs/generate.py: h5py/HDF5 + hdf5plugin + bitshuffle chunks read back with
 * read_direct_chunk, numcodecs-encoded buffers, a zarr-python array), decoded through the chains that
 * src/refs/filters.ts builds from the recorded filter pipelines.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as zlib from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import * as zarr from "zarrita";
import { CODEC_IDS, assertCodecsSupported, loadCodecChain, registerCodecs } from "../src/codecs/index.js";
import { codecLoader } from "../src/codecs/registry.js";
import type { ChunkMeta, CodecConfig } from "../src/codecs/types.js";
import { CodecError, UnsupportedFeatureError } from "../src/errors.js";
import type { Datatype, Filter } from "../src/hdf5/model.js";
import { filtersToCodecs } from "../src/refs/filters.js";

const DIR = fileURLToPath(new URL("./fixtures/codecs/", import.meta.url));

interface H5Case {
  name: string;
  dtype: string;
  shape: number[];
  chunks: number[];
  filters: { id: number; flags: number; name: string; clientData: number[] }[];
  chunkFiles: { offset: number[]; filterMask: number; raw: string; expected: string }[];
}
interface NcCase {
  name: string;
  codec: CodecConfig;
  dtype: string;
  shape: number[];
  raw: string;
  expected: string;
}
const manifest = JSON.parse(readFileSync(join(DIR, "manifest.json"), "utf8")) as {
  hdf5: H5Case[];
  numcodecs_cases: NcCase[];
  zarr: { path: string; expected: string };
};
const read = (file: string) => new Uint8Array(readFileSync(join(DIR, file)));
const h5 = (name: string) => {
  const c = manifest.hdf5.find((x) => x.name === name);
  if (!c) throw new Error(`fixture ${name} missing`);
  return c;
};

/** numpy dtype string → the HDF5 reader's Datatype. */
function datatype(dtype: string): Datatype {
  const m = /^([<>|])([iuf])(\d+)$/.exec(dtype);
  if (!m) throw new Error(`test helper: unsupported dtype ${dtype}`);
  const size = Number(m[3]);
  const littleEndian = m[1] !== ">";
  return m[2] === "f" ? { class: "float", size, littleEndian } : { class: "integer", size, littleEndian, signed: m[2] === "i" };
}

/** numpy dtype string → zarrita data type name. */
function dataType(dtype: string): string {
  const kind = { i: "int", u: "uint", f: "float" }[dtype[1]] as string;
  return `${kind}${Number(dtype.slice(2)) * 8}`;
}

function pipeline(c: H5Case): { filters: Filter[]; configs: CodecConfig[]; meta: ChunkMeta } {
  const filters = c.filters.map((f) => ({ id: f.id, name: f.name, optional: (f.flags & 1) === 1, clientData: f.clientData }));
  return {
    filters,
    configs: filtersToCodecs(filters, datatype(c.dtype), c.chunks, `/${c.name}`),
    meta: { dataType: dataType(c.dtype), shape: c.chunks },
  };
}

beforeAll(() => registerCodecs());

describe("HDF5 chunks written by the HDF5 library decode to what h5py reads", () => {
  const cases = manifest.hdf5.filter((c) => !c.filters.some((f) => f.id === 4));
  it("has fixtures for every filter we decode", () => {
    const ids = new Set(cases.flatMap((c) => c.filters.map((f) => f.id)));
    expect([...ids].sort((a, b) => a - b)).toEqual([1, 2, 3, 5, 6, 307, 32000, 32001, 32004, 32008]);
  });
  for (const c of cases) {
    it(`${c.name}: ${c.filters.map((f) => f.name).join(" → ")} (${c.dtype})`, async () => {
      const { configs, meta } = pipeline(c);
      const chain = await loadCodecChain(configs, meta);
      expect(c.chunkFiles.length).toBeGreaterThan(0);
      for (const chunk of c.chunkFiles) {
        expect(chunk.filterMask).toBe(0);
        const raw = read(chunk.raw);
        const expected = Buffer.from(read(chunk.expected));
        const decoded = await chain.decode(raw, chunk.offset.join("."));
        expect(Buffer.from(decoded).equals(expected)).toBe(true);
        // Stores hand back views into larger buffers (range reads, caches) at any offset.
        const host = new Uint8Array(raw.length + 7);
        host.set(raw, 3);
        const fromView = await chain.decode(host.subarray(3, 3 + raw.length));
        expect(Buffer.from(fromView).equals(expected)).toBe(true);
        expect(host.subarray(3, 3 + raw.length)).toEqual(raw); // input left untouched
      }
    });
  }
});

describe("filtersToCodecs", () => {
  const ids = (name: string) => pipeline(h5(name)).configs;
  it("keeps HDF5 pipeline order and uses Python readers' ids", () => {
    expect(ids("gzip_shuffle_fletcher_be_f8")).toEqual([
      { id: "shuffle", elementsize: 8 },
      { id: "zlib", level: 4 },
      { id: "fletcher32" },
    ]);
    expect(ids("lzf_i8")).toEqual([{ id: "imagecodecs_lzf", header: false }]);
    expect(ids("lz4_f8")).toEqual([{ id: "imagecodecs_lz4h5", blocksize: 4096 }]);
    expect(ids("blosc_lz4_f4")).toEqual([{ id: "blosc", cname: "lz4", clevel: 5, shuffle: 1, blocksize: 0 }]);
    expect(ids("bzip2_f4")).toEqual([{ id: "bz2", level: 5 }]);
    expect(ids("bitshuffle_none_f4")).toEqual([{ id: "imagecodecs_bitshuffle", itemsize: 4, blocksize: 0 }]);
    expect(ids("bitshuffle_lz4_blk_f8")).toEqual([{ id: "hdf5_bitshuffle", itemsize: 8, blocksize: 64, compression: "lz4" }]);
    expect(ids("so_int_fill_be_i2")[0]).toMatchObject({ id: "hdf5_scaleoffset", dtype: ">i2" });
    expect(ids("nbit_i4_p12_o2")[0]).toEqual({ id: "hdf5_nbit", dtype: "<i4", parameters: [8, 0, 20, 1, 4, 0, 12, 2] });
    expect(ids("szip_i4")[0]).toMatchObject({ id: "szip", pixels_per_block: 8 });
    const zstd: Filter = { id: 32015, optional: true, clientData: [7] };
    expect(filtersToCodecs([zstd], datatype("<f4"), [10])).toEqual([{ id: "zstd", level: 7 }]);
    expect(CODEC_IDS).toEqual(expect.arrayContaining(["zlib", "shuffle", "hdf5_nbit", "szip"]));
  });
  it("refuses an unknown filter, naming it and the dataset, instead of dropping it", () => {
    const f: Filter = { id: 32013, name: "H5Z-ZFP", optional: false, clientData: [1] };
    const call = () => filtersToCodecs([f], datatype("<f4"), [4], "/temperature");
    expect(call).toThrow(UnsupportedFeatureError);
    expect(call).toThrow(/32013 \(H5Z-ZFP\).*\/temperature/);
  });
  it("nbit that HDF5 flagged as nothing to pack passes any datatype through", async () => {
    const f: Filter = { id: 5, optional: false, clientData: [3, 1, 4] };
    const configs = filtersToCodecs([f], { class: "opaque", size: 4, tag: "x" }, [4]);
    expect(configs).toEqual([{ id: "hdf5_nbit", parameters: [3, 1, 4] }]);
    const chain = await loadCodecChain(configs, { dataType: "uint8", shape: [16] });
    const bytes = Uint8Array.from({ length: 16 }, (_, i) => i);
    expect([...(await chain.decode(bytes))]).toEqual([...bytes]);
  });
  it("refuses client data that does not describe the chunk", () => {
    const f: Filter = { id: 6, optional: true, clientData: [2, 0, 99, 0, 4, 1, 0, 1] };
    expect(() => filtersToCodecs([f], datatype("<i4"), [10], "/x")).toThrow(/99 elements/);
  });
});

describe("szip", () => {
  it("fails with a clear CodecError when the chain is built, and up front via assertCodecsSupported", async () => {
    const c = h5("szip_i4");
    const { configs, meta } = pipeline(c);
    expect(() => assertCodecsSupported(configs, "/szip_i4")).toThrow(/unsupported codec szip.*\/szip_i4/);
    await expect(loadCodecChain(configs, meta)).rejects.toThrow(CodecError);
    await expect(loadCodecChain(configs, meta)).rejects.toThrow(/unsupported codec szip/);
  });
  it("through zarrita: open succeeds, the first stored chunk read rejects naming szip", async () => {
    const c = h5("szip_i4");
    const store = mapStore({
      ".zarray": json({ zarr_format: 2, shape: c.shape, chunks: c.chunks, dtype: c.dtype, compressor: null, fill_value: 0, order: "C", filters: pipeline(c).configs }),
      "0": read(c.chunkFiles[0].raw),
    });
    const arr = await zarr.open.v2(store, { kind: "array" });
    const err = await zarr.get(arr).then(() => undefined, (e: unknown) => e);
    expect(errorChain(err).some((e) => e instanceof CodecError && /unsupported codec szip/.test(e.message))).toBe(true);
  });
});

describe("numcodecs (Python) framings decode", () => {
  for (const c of manifest.numcodecs_cases) {
    it(`${c.name}`, async () => {
      const { id, ...config } = c.codec;
      const chain = await loadCodecChain([{ id, ...config }], { dataType: dataType(c.dtype), shape: c.shape });
      const decoded = await chain.decode(read(c.raw));
      expect(Buffer.from(decoded).equals(Buffer.from(read(c.expected)))).toBe(true);
    });
  }
});

describe("encoders", () => {
  const meta: ChunkMeta = { dataType: "float64", shape: [256] };
  const data = read(manifest.numcodecs_cases[0].expected);
  it("zlib and gzip output is read by node:zlib and by our decoder", async () => {
    for (const [id, inflate] of [["zlib", zlib.inflateSync], ["gzip", zlib.gunzipSync]] as const) {
      const chain = await loadCodecChain([{ id, level: 7 }], meta);
      const encoded = await chain.encode(data);
      expect(encoded.length).toBeLessThan(data.length);
      expect(Buffer.from(inflate(encoded)).equals(Buffer.from(data))).toBe(true);
      expect(Buffer.from(await chain.decode(encoded)).equals(Buffer.from(data))).toBe(true);
    }
  });
  it("shuffle round-trips and keeps bytes past the last whole element in place", async () => {
    const chain = await loadCodecChain([{ id: "shuffle", elementsize: 4 }], { dataType: "uint8", shape: [11] });
    const bytes = Uint8Array.from({ length: 11 }, (_, i) => i);
    const shuffled = await chain.encode(bytes);
    expect([...shuffled]).toEqual([0, 4, 1, 5, 2, 6, 3, 7, 8, 9, 10]);
    expect([...(await chain.decode(shuffled))]).toEqual([...bytes]);
  });
  it("fletcher32 appends what HDF5 appends (checked against an HDF5-written chunk)", async () => {
    const c = h5("fletcher_odd_u1");
    const raw = read(c.chunkFiles[0].raw);
    const chain = await loadCodecChain([{ id: "fletcher32" }], { dataType: "uint8", shape: c.chunks });
    expect(Buffer.from(await chain.encode(raw.subarray(0, raw.length - 4))).equals(Buffer.from(raw))).toBe(true);
  });
  it("fletcher32 accepts the byte-swapped checksum HDF5 < 1.6.3 wrote", async () => {
    const raw = read(h5("fletcher_odd_u1").chunkFiles[1].raw).slice();
    const n = raw.length;
    [raw[n - 4], raw[n - 3], raw[n - 2], raw[n - 1]] = [raw[n - 3], raw[n - 4], raw[n - 1], raw[n - 2]];
    const chain = await loadCodecChain([{ id: "fletcher32" }], { dataType: "uint8", shape: [13] });
    expect((await chain.decode(raw)).length).toBe(13);
  });
  const py = "/usr/bin/python3";
  const hasNumcodecs = existsSync(py) && tryRun(py, ["-c", "import numcodecs"]);
  it.skipIf(!hasNumcodecs)(
    `numcodecs (Python) decodes our zlib/gzip output${hasNumcodecs ? "" : " — SKIPPED: /usr/bin/python3 with numcodecs is not installed"}`,
    async () => {
      for (const id of ["zlib", "gzip"]) {
        const encoded = await (await loadCodecChain([{ id, level: 3 }], meta)).encode(data);
        const script = `import sys, numcodecs; c = numcodecs.get_codec({"id": "${id}"}); sys.stdout.buffer.write(bytes(c.decode(sys.stdin.buffer.read())))`;
        const out = execFileSync(py, ["-c", script], { input: encoded });
        expect(Buffer.from(out).equals(Buffer.from(data))).toBe(true);
      }
    },
  );
});

describe("corrupt input is a CodecError, never garbage or a hang", () => {
  async function codec(id: string, config: Record<string, unknown>, meta: ChunkMeta) {
    const load = codecLoader(id);
    if (!load) throw new Error(`no codec ${id}`);
    return (await load()).fromConfig(config, meta);
  }
  async function expectCodecError(id: string, config: Record<string, unknown>, meta: ChunkMeta, bytes: Uint8Array) {
    const c = await codec(id, config, meta);
    const err = await Promise.resolve()
      .then(() => c.decode(bytes))
      .then(() => undefined, (e: unknown) => e);
    expect(err, `${id} on ${bytes.length} corrupt bytes`).toBeInstanceOf(CodecError);
  }
  const big = (n: number) => {
    const b = new Uint8Array(12);
    new DataView(b.buffer).setBigUint64(0, BigInt(n));
    new DataView(b.buffer).setUint32(8, 8192);
    return b;
  };
  const m: ChunkMeta = { dataType: "float32", shape: [1000] };

  it("zlib / gzip", async () => {
    await expectCodecError("zlib", {}, m, Uint8Array.of(1, 2, 3, 4, 5));
    await expectCodecError("gzip", {}, m, Uint8Array.of(0x1f, 0x8b, 8, 0, 0));
    // A bomb: far more output than the chunk can hold.
    await expectCodecError("zlib", {}, { dataType: "uint8", shape: [10] }, zlib.deflateSync(new Uint8Array(4 << 20)));
  });
  it("fletcher32: a flipped bit, and a chunk too short to hold the checksum", async () => {
    const raw = read(h5("fletcher_i2").chunkFiles[0].raw).slice();
    raw[3] ^= 0x10;
    await expectCodecError("fletcher32", {}, m, raw);
    // Through a chain the error names the chunk.
    const chain = await loadCodecChain([{ id: "fletcher32" }], { dataType: "int16", shape: [25] });
    await expect(chain.decode(raw, "temperature/0.3")).rejects.toThrow(/codec fletcher32 \(chunk temperature\/0\.3\): checksum mismatch/);
    await expectCodecError("fletcher32", {}, m, Uint8Array.of(1, 2));
  });
  it("lzf: truncated stream and a reference before the start", async () => {
    const raw = read(h5("lzf_i8").chunkFiles[0].raw);
    await expectCodecError("imagecodecs_lzf", {}, m, raw.subarray(0, raw.length - 1));
    await expectCodecError("imagecodecs_lzf", {}, m, Uint8Array.of(5, 1, 2));
    await expectCodecError("imagecodecs_lzf", {}, m, Uint8Array.of(0, 65, 0x20 | 0x1f, 0xff));
  });
  it("lz4h5: truncated, and a header claiming more than the chunk", async () => {
    const raw = read(h5("lz4_f8").chunkFiles[0].raw);
    await expectCodecError("imagecodecs_lz4h5", {}, m, raw.subarray(0, raw.length >> 1));
    await expectCodecError("imagecodecs_lz4h5", {}, m, big(2 ** 40));
    const lie = raw.slice();
    lie[13] ^= 0xff; // first block's stored size
    await expectCodecError("imagecodecs_lz4h5", {}, m, lie);
  });
  it("bitshuffle: lz4 mode truncated or lying, plain mode with a partial element", async () => {
    const raw = read(h5("bitshuffle_lz4_i2").chunkFiles[0].raw);
    const cfg = { itemsize: 2, blocksize: 0, compression: "lz4" };
    await expectCodecError("hdf5_bitshuffle", cfg, m, raw.subarray(0, raw.length - 9));
    await expectCodecError("hdf5_bitshuffle", cfg, m, big(2 ** 40));
    await expectCodecError("imagecodecs_bitshuffle", { itemsize: 4 }, m, new Uint8Array(4001));
  });
  it("bz2: truncated and garbage", async () => {
    const raw = read(h5("bzip2_f4").chunkFiles[0].raw);
    await expectCodecError("bz2", {}, m, raw.subarray(0, raw.length >> 1));
    await expectCodecError("bz2", {}, m, Uint8Array.from({ length: 100 }, (_, i) => (i * 37) & 255));
    const flipped = raw.slice();
    flipped[raw.length >> 1] ^= 0x40;
    await expectCodecError("bz2", {}, m, flipped);
  });
  it("zstd / blosc / lz4 (wasm): garbage, truncation and lying size headers", async () => {
    const nc = (id: string) => read(manifest.numcodecs_cases.find((c) => c.codec.id === id)!.raw);
    await expectCodecError("zstd", {}, m, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
    const zstd = nc("zstd");
    await expectCodecError("zstd", {}, m, zstd.subarray(0, zstd.length >> 1));
    const zstdBig = Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0xa0, 0, 0, 0, 0x40); // single segment, 4-byte size 1 GiB
    await expectCodecError("zstd", {}, m, zstdBig);
    const blosc = nc("blosc").slice();
    await expectCodecError("blosc", {}, m, blosc.subarray(0, blosc.length >> 1));
    blosc[7] = 0x7f; // nbytes → ~2 GiB
    await expectCodecError("blosc", {}, m, blosc);
    await expectCodecError("lz4", {}, m, Uint8Array.of(0xff, 0xff, 0xff, 0x7f, 1, 2, 3));
    const lz4 = nc("lz4");
    await expectCodecError("lz4", {}, { dataType: "float64", shape: [256] }, lz4.subarray(0, lz4.length >> 1));
  });
  it("scaleoffset and nbit: truncated packing and impossible headers", async () => {
    const so = pipeline(h5("so_int_i4")).configs[0];
    const soRaw = read(h5("so_int_i4").chunkFiles[0].raw);
    const meta: ChunkMeta = { dataType: "int32", shape: h5("so_int_i4").chunks };
    await expectCodecError("hdf5_scaleoffset", so, meta, soRaw.subarray(0, soRaw.length >> 1));
    await expectCodecError("hdf5_scaleoffset", so, meta, soRaw.subarray(0, 10));
    const badMinbits = soRaw.slice();
    badMinbits[0] = 200;
    await expectCodecError("hdf5_scaleoffset", so, meta, badMinbits);
    const nb = pipeline(h5("nbit_i4_p12_o2")).configs[0];
    const nbRaw = read(h5("nbit_i4_p12_o2").chunkFiles[0].raw);
    await expectCodecError("hdf5_nbit", nb, { dataType: "int32", shape: [20] }, nbRaw.subarray(0, 10));
  });
  it("client data that lies about the chunk size is refused before allocating", async () => {
    const meta: ChunkMeta = { dataType: "int32", shape: [10] };
    const huge = [2, 0, 2 ** 31, 0, 4, 1, 0, 0];
    await expect(codec("hdf5_scaleoffset", { parameters: huge }, meta)).rejects.toThrow(CodecError);
    await expect(codec("hdf5_nbit", { dtype: "<i4", parameters: [8, 0, 2 ** 31, 1, 4, 0, 12, 0] }, meta)).rejects.toThrow(CodecError);
  });
  it("random bytes through every HDF5 chain: CodecError or the exact chunk size, nothing else", async () => {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) & 255;
    for (const c of manifest.hdf5.filter((x) => !x.filters.some((f) => f.id === 4))) {
      const { configs, meta } = pipeline(c);
      const chain = await loadCodecChain(configs, meta);
      const raw = read(c.chunkFiles[0].raw);
      for (let trial = 0; trial < 8; trial++) {
        const bytes = raw.slice();
        for (let k = 0; k < 1 + trial; k++) bytes[(rand() * 256 + rand()) % bytes.length] = rand();
        const cut = trial % 2 ? bytes.subarray(0, (bytes.length * (trial + 1)) >> 4) : bytes;
        const result = await chain.decode(cut, "0").then((b) => b, (e: unknown) => e);
        if (result instanceof Uint8Array) expect(result.length).toBe(read(c.chunkFiles[0].expected).length);
        else expect(result, `${c.name} trial ${trial}`).toBeInstanceOf(CodecError);
      }
    }
  });
});

describe("end to end through zarrita", () => {
  it("a zarr-python v2 array, big-endian, filters [shuffle, zlib], decodes after registerCodecs()", async () => {
    const dir = join(DIR, manifest.zarr.path);
    const files: Record<string, Uint8Array> = {};
    for (const f of readdirSync(dir)) files[f] = new Uint8Array(readFileSync(join(dir, f)));
    registerCodecs(); // idempotent
    const arr = await zarr.open.v2(mapStore(files), { kind: "array" });
    expect(arr.dtype).toBe("float64");
    const { data, shape } = await zarr.get(arr);
    expect(shape).toEqual([10, 6]);
    const expected = read(manifest.zarr.expected);
    const view = new DataView(expected.buffer, expected.byteOffset, expected.byteLength);
    expect(Array.from(data as Float64Array)).toEqual(Array.from({ length: 60 }, (_, i) => view.getFloat64(i * 8, false)));
  });
  it("shuffle uses the recorded elementsize, not the dtype's (zarrita's built-in would use 1 here)", async () => {
    const bytes = Uint8Array.from({ length: 24 }, (_, i) => (i * 11) & 255);
    const filters = [{ id: "shuffle", elementsize: 4 }, { id: "zlib", level: 1 }];
    const chunk = await (await loadCodecChain(filters, { dataType: "uint8", shape: [24] })).encode(bytes);
    const store = mapStore({
      ".zarray": json({ zarr_format: 2, shape: [24], chunks: [24], dtype: "|u1", compressor: null, fill_value: 0, order: "C", filters }),
      "0": chunk,
    });
    const { data } = await zarr.get(await zarr.open.v2(store, { kind: "array" }));
    expect(Array.from(data as Uint8Array)).toEqual(Array.from(bytes));
  });
  it("h5py chunks behind our filter mapping: big-endian f8 with shuffle → zlib → fletcher32", async () => {
    const c = h5("gzip_shuffle_fletcher_be_f8");
    const files: Record<string, Uint8Array> = {
      ".zarray": json({ zarr_format: 2, shape: c.shape, chunks: c.chunks, dtype: c.dtype, compressor: null, fill_value: 0, order: "C", filters: pipeline(c).configs }),
    };
    for (const ch of c.chunkFiles) files[ch.offset.map((o, i) => o / c.chunks[i]).join(".")] = read(ch.raw);
    const arr = await zarr.open.v2(mapStore(files), { kind: "array" });
    // A damaged chunk: zarrita wraps our CodecError (its `cause`) in its CodecPipelineError.
    const damaged = { ...files, "0.0": files["0.0"].slice() };
    damaged["0.0"][damaged["0.0"].length - 5] ^= 1;
    const broken = await zarr.open.v2(mapStore(damaged), { kind: "array" });
    const err = await zarr.get(broken).then(() => undefined, (e: unknown) => e);
    expect(errorChain(err).some((e) => e instanceof CodecError && e.codec === "fletcher32")).toBe(true);
    for (const ch of c.chunkFiles) {
      const sel = ch.offset.map((o, i) => zarr.slice(o, o + c.chunks[i]));
      const { data } = await zarr.get(arr, sel);
      const exp = read(ch.expected);
      const view = new DataView(exp.buffer, exp.byteOffset, exp.byteLength);
      expect(Array.from(data as Float64Array)).toEqual(Array.from({ length: exp.length / 8 }, (_, i) => view.getFloat64(i * 8, false)));
    }
  });
});

function mapStore(files: Record<string, Uint8Array>) {
  const map = new Map(Object.entries(files).map(([k, v]) => [`/${k}`, v]));
  return { get: async (key: string) => map.get(key) };
}

function json(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

function errorChain(e: unknown): unknown[] {
  const out: unknown[] = [];
  while (e !== undefined && e !== null && out.length < 10) {
    out.push(e);
    e = (e as { cause?: unknown }).cause;
  }
  return out;
}

function tryRun(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
