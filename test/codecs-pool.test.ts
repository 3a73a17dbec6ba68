/**
 * The codec worker pool (src/codecs/pool.ts): the same bytes with the pool on and off, on the chunks
 * h5py/HDF5 and numcodecs wrote (test/fixtures/codecs), errors that keep codec and chunk, workers that
 * die, a process that exits by itself with an idle pool, and the inline threshold.
 *
 * Workers run compiled JavaScript: the pool uses dist/codecs/pool-worker.js, which `npm test` builds.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as zarr from "zarrita";
import { ShuffleCodec, ZlibCodec, loadCodecChain, registerCodecs } from "../src/codecs/index.js";
import { CodecPool, DEFAULT_MIN_BYTES, closeCodecPool, codecPool, codecWorkerScript, poolTask, setCodecThreads } from "../src/codecs/pool.js";
import type { ChunkMeta, CodecConfig } from "../src/codecs/types.js";
import { CodecError } from "../src/errors.js";
import type { Datatype } from "../src/hdf5/model.js";
import { get } from "../src/zarr/get.js";
import { filtersToCodecs } from "../src/refs/filters.js";

const DIR = fileURLToPath(new URL("./fixtures/codecs/", import.meta.url));
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const manifest = JSON.parse(readFileSync(join(DIR, "manifest.json"), "utf8")) as {
  hdf5: {
    name: string;
    dtype: string;
    chunks: number[];
    filters: { id: number; flags: number; name: string; clientData: number[] }[];
    chunkFiles: { offset: number[]; raw: string; expected: string }[];
  }[];
  numcodecs_cases: { name: string; codec: CodecConfig; dtype: string; shape: number[]; raw: string; expected: string }[];
  zarr: { path: string; expected: string };
};
const read = (file: string) => new Uint8Array(readFileSync(join(DIR, file)));

function datatype(dtype: string): Datatype {
  const m = /^([<>|])([iuf])(\d+)$/.exec(dtype)!;
  const size = Number(m[3]);
  const littleEndian = m[1] !== ">";
  return m[2] === "f" ? { class: "float", size, littleEndian } : { class: "integer", size, littleEndian, signed: m[2] === "i" };
}
const dataType = (dtype: string) => `${{ i: "int", u: "uint", f: "float" }[dtype[1]]}${Number(dtype.slice(2)) * 8}`;

interface Case {
  name: string;
  configs: CodecConfig[];
  meta: ChunkMeta;
  chunks: { key: string; raw: Uint8Array; expected: Uint8Array }[];
}

/** Every fixture chunk we can decode (szip is refused by design), with its filter chain. */
const cases: Case[] = [
  ...manifest.hdf5
    .filter((c) => !c.filters.some((f) => f.id === 4))
    .map((c) => {
      const filters = c.filters.map((f) => ({ id: f.id, name: f.name, optional: (f.flags & 1) === 1, clientData: f.clientData }));
      return {
        name: c.name,
        configs: filtersToCodecs(filters, datatype(c.dtype), c.chunks, `/${c.name}`),
        meta: { dataType: dataType(c.dtype), shape: c.chunks },
        chunks: c.chunkFiles.map((f) => ({ key: f.offset.join("."), raw: read(f.raw), expected: read(f.expected) })),
      };
    }),
  ...manifest.numcodecs_cases.map((c) => ({
    name: c.name,
    configs: [c.codec],
    meta: { dataType: dataType(c.dtype), shape: c.shape },
    chunks: [{ key: "0", raw: read(c.raw), expected: read(c.expected) }],
  })),
];

const dispatched = () => codecPool()?.stats.dispatched ?? 0;
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

beforeAll(() => {
  registerCodecs();
  // Workers load the compiled twin; without it the pool would quietly decode inline and these tests
  // would prove nothing.
  expect(codecWorkerScript(), "dist/codecs/pool-worker.js missing: run `npm run build`").toBeDefined();
});

afterAll(async () => {
  await closeCodecPool();
  setCodecThreads(0, { minBytes: DEFAULT_MIN_BYTES });
});

describe("pool on and off decode the same bytes", () => {
  it("every HDF5 and numcodecs fixture chunk, each stage through a worker", async () => {
    expect(cases.length).toBeGreaterThan(30);
    const codecIds = new Set<string>();
    setCodecThreads(0);
    const inline = new Map<Uint8Array, Uint8Array>();
    for (const c of cases) {
      const chain = await loadCodecChain(c.configs, c.meta);
      for (const chunk of c.chunks) inline.set(chunk.raw, await chain.decode(chunk.raw, chunk.key));
    }
    setCodecThreads(2, { minBytes: 0 });
    for (const c of cases) {
      for (const chunk of c.chunks) {
        const before = dispatched();
        // Stores hand back views into shared blocks: the pool must copy, never detach, those.
        const host = new Uint8Array(chunk.raw.length + 9);
        host.set(chunk.raw, 5);
        const view = host.subarray(5, 5 + chunk.raw.length);
        const pooled = await (await loadCodecChain(c.configs, c.meta)).decode(view, chunk.key);
        expect(same(pooled, chunk.expected), `${c.name} ${chunk.key} pooled`).toBe(true);
        expect(same(inline.get(chunk.raw)!, chunk.expected), `${c.name} ${chunk.key} inline`).toBe(true);
        expect(same(view, chunk.raw), `${c.name}: input left intact`).toBe(true);
        if (dispatched() > before) for (const { id } of c.configs) codecIds.add(id);
      }
    }
    // Every codec the pool serves was seen in a chain that went through a worker.
    for (const id of ["zlib", "gzip", "shuffle", "bz2", "zstd", "blosc", "lz4", "imagecodecs_lzf", "imagecodecs_lz4h5", "imagecodecs_bitshuffle", "hdf5_bitshuffle"]) {
      expect(codecIds, id).toContain(id);
    }
  });

  it("a zarr-python shuffle+zlib array read through zarrita", async () => {
    const dir = join(DIR, manifest.zarr.path);
    const files = new Map(readdirSync(dir).map((f) => [`/${f}`, new Uint8Array(readFileSync(join(dir, f)))]));
    const store = { get: async (key: string) => files.get(key) };
    const readAll = async () => (await zarr.get(await zarr.open.v2(store, { kind: "array" }))).data as Float64Array;
    setCodecThreads(0);
    const inline = await readAll();
    setCodecThreads(2, { minBytes: 0 });
    const before = dispatched();
    const aheadBefore = codecPool()?.stats.ahead ?? 0;
    const pooled = await readAll();
    // 3 chunks: zlib in a worker, which decodes ahead for the shuffle that zarrita calls next.
    expect(dispatched() - before).toBe(3);
    expect(codecPool()!.stats.ahead - aheadBefore).toBe(3);
    expect(Array.from(pooled)).toEqual(Array.from(inline));
    const expected = read(manifest.zarr.expected);
    const view = new DataView(expected.buffer, expected.byteOffset, expected.byteLength);
    expect(Array.from(pooled)).toEqual(Array.from({ length: 60 }, (_, i) => view.getFloat64(i * 8, false)));
    // The store's buffers were copied for the workers, not transferred away.
    expect(Array.from(await readAll())).toEqual(Array.from(inline));
  });
});

describe("decoded buffers back to the workers", () => {
  it("a read through our get hands its decoded chunks back, and later reads stay correct", async () => {
    registerCodecs();
    const files = new Map<string, Uint8Array>();
    const store = { get: async (key: string) => files.get(key), set: async (key: string, value: Uint8Array) => void files.set(key, value) };
    const arr = await zarr.create(zarr.root(store as never).resolve("a"), {
      shape: [96, 512],
      chunkShape: [16, 256],
      dtype: "float64",
      codecs: [
        { name: "bytes", configuration: { endian: "little" } },
        { name: "numcodecs.shuffle", configuration: { elementsize: 8 } },
        { name: "numcodecs.zlib", configuration: { level: 1 } },
      ],
    });
    const source = Float64Array.from({ length: 96 * 512 }, (_, i) => Math.sin(i) * 1e6 + i);
    await zarr.set(arr, null, { data: source, shape: [96, 512], stride: [512, 1] });
    setCodecThreads(2, { minBytes: 0 });
    const opened = await zarr.open.v3(zarr.root(store as never).resolve("a"), { kind: "array" });
    const before = codecPool()?.stats.given ?? 0;
    for (let round = 0; round < 3; round++) {
      const out = await get(opened, null);
      expect(Buffer.compare(new Uint8Array((out.data as Float64Array).buffer), new Uint8Array(source.buffer)), `round ${round}`).toBe(0);
      const part = await get(opened, [zarr.slice(5, 90, 3), zarr.slice(100, 400)]);
      expect(Array.from(part.data as Float64Array).slice(0, 300)).toEqual(Array.from(source.subarray(5 * 512 + 100, 5 * 512 + 400)));
    }
    // 12 chunks a read: their zlib outputs (taken ahead) and final outputs went back.
    expect(codecPool()!.stats.given - before).toBeGreaterThanOrEqual(2 * 12 * 3);
  });
});

describe("decode-ahead", () => {
  it("a worker's result for the next codec is used only by that codec on that very buffer", async () => {
    const c = cases.find((x) => x.name === "gzip_shuffle_i4")!; // shuffle(4) then zlib, int32
    const chunk = c.chunks[0];
    setCodecThreads(2, { minBytes: 0 });
    const meta = { ...c.meta };
    const shuffle4 = ShuffleCodec.fromConfig({ elementsize: 4 }, meta);
    const zlibCodec = ZlibCodec.fromConfig({ level: 1 }, meta); // built after shuffle: decodes before it
    const stats = () => ({ ...codecPool()!.stats });

    const mid = await zlibCodec.decode(chunk.raw);
    const midCopy = mid.slice();
    let before = stats();
    // Another shuffle (element size 2) gets the same buffer: no match, it decodes for itself.
    const other = await new ShuffleCodec(2).decode(mid);
    expect(stats().ahead).toBe(before.ahead);
    expect(same(other, new ShuffleCodec(2).decodeLocal(midCopy))).toBe(true);

    const mid2 = await zlibCodec.decode(chunk.raw);
    before = stats();
    const out = await shuffle4.decode(mid2);
    expect(stats()).toMatchObject({ ahead: before.ahead + 1, dispatched: before.dispatched });
    expect(same(out, chunk.expected)).toBe(true);
  });
});

describe("unshuffle, four elements at a time", () => {
  it("undoes shuffle for every element size, count (n % 4 tails) and input offset", () => {
    for (const size of [2, 3, 4, 8]) {
      for (const length of [0, 5, 8, 31, 32, 33, 250, 4099, 125003]) {
        const host = Uint8Array.from({ length: length + 3 }, (_, i) => Math.imul(i, 2654435761) >>> 24);
        const data = host.subarray(3);
        const codec = new ShuffleCodec(size);
        const shuffled = codec.encode(data);
        const view = new Uint8Array(shuffled.length + 1).subarray(1);
        view.set(shuffled);
        expect(same(codec.decodeLocal(view), data), `size ${size}, ${length} bytes`).toBe(true);
      }
    }
  });
});

describe("errors", () => {
  it("a corrupt zlib chunk decoded in a worker is a CodecError naming the codec and the chunk", async () => {
    const c = cases.find((x) => x.name === "gzip_shuffle_i4")!;
    const raw = c.chunks[0].raw.slice();
    raw.fill(0xa5, 8, raw.length - 4); // keep the zlib header, wreck the deflate stream
    setCodecThreads(2, { minBytes: 0 });
    const before = dispatched();
    const err = await (await loadCodecChain(c.configs, c.meta)).decode(raw, "3.1").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(dispatched()).toBeGreaterThan(before);
    expect(err).toBeInstanceOf(CodecError);
    expect(err).toMatchObject({ codec: "zlib", chunkKey: "3.1" });
    expect((err as Error).message).toMatch(/^codec zlib \(chunk 3\.1\): cannot decompress \d+ bytes: /);
  });

  it("a worker that dies rejects its pending decodes; later decodes get a new worker", async () => {
    const c = cases.find((x) => x.name === "nc_zlib_0")!;
    const task = poolTask("zlib", { level: 5 }, c.meta);
    const fallback = () => {
      throw new Error("the pool must not fall back to inline decoding here");
    };
    const pool = new CodecPool(1, codecWorkerScript()!);
    try {
      pool.crashForTest(7);
      const lost = await pool.decode(task, c.chunks[0].raw, fallback).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(lost).toBeInstanceOf(CodecError);
      expect((lost as Error).message).toMatch(/^codec zlib: the decoding worker thread exited with code 7 while decoding \d+ bytes/);
      const again = await pool.decode(task, c.chunks[0].raw, fallback);
      expect(same(again, c.chunks[0].expected)).toBe(true);
      expect(pool.stats).toMatchObject({ crashes: 1, started: 2 });
    } finally {
      await pool.close();
    }
  });

  it("refuses a bad thread count", () => {
    expect(() => setCodecThreads(-1)).toThrow(CodecError);
    expect(() => setCodecThreads(1.5)).toThrow(/integer >= 0/);
  });
});

describe("threshold and lifetime", () => {
  it("chunks below minBytes decode inline; threads 0 never starts a pool", async () => {
    const big = cases.find((x) => x.name === "lz4_f8")!; // 16028 stored, 16000 decoded bytes
    const small = cases.find((x) => x.name === "gzip_u1")!; // 32 bytes
    setCodecThreads(2, { minBytes: 4096 });
    const before = dispatched();
    const smallOut = await (await loadCodecChain(small.configs, small.meta)).decode(small.chunks[0].raw);
    expect(dispatched()).toBe(before);
    expect(same(smallOut, small.chunks[0].expected)).toBe(true);
    const bigOut = await (await loadCodecChain(big.configs, big.meta)).decode(big.chunks[0].raw);
    expect(dispatched()).toBe(before + 1);
    expect(same(bigOut, big.chunks[0].expected)).toBe(true);

    setCodecThreads(0, { minBytes: 0 });
    expect(codecPool()).toBeUndefined();
    await (await loadCodecChain(big.configs, big.meta)).decode(big.chunks[0].raw);
    expect(codecPool()).toBeUndefined();
  });

  it("a process that decoded through the pool exits by itself (idle workers do not hold it)", async () => {
    const c = cases.find((x) => x.name === "gzip_shuffle_fletcher_be_f8")!;
    const script = `
      import { readFileSync } from "node:fs";
      import { loadCodecChain, registerCodecs } from "./dist/codecs/index.js";
      import { codecPool, setCodecThreads } from "./dist/codecs/pool.js";
      registerCodecs();
      setCodecThreads(2, { minBytes: 0 });
      const chain = await loadCodecChain(${JSON.stringify(c.configs)}, ${JSON.stringify(c.meta)});
      const out = await chain.decode(new Uint8Array(readFileSync(${JSON.stringify(join(DIR, manifest.hdf5.find((x) => x.name === c.name)!.chunkFiles[0].raw))})));
      const { dispatched, ahead } = codecPool().stats;
      console.log(JSON.stringify({ dispatched, ahead, hex: Buffer.from(out).toString("hex") }));
    `;
    expect(existsSync(join(ROOT, "dist/codecs/index.js"))).toBe(true);
    // A pool that held the process open would hang the child; the timeout turns that into a failure.
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ["--input-type=module", "-e", script], { cwd: ROOT, timeout: 30_000 }, (error, stdout, stderr) =>
        error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout),
      ),
    );
    const result = JSON.parse(out) as { dispatched: number; ahead: number; hex: string };
    // fletcher32 inline; zlib in a worker, which also unshuffles ahead.
    expect(result).toMatchObject({ dispatched: 1, ahead: 1 });
    expect(result.hex).toBe(Buffer.from(c.chunks[0].expected).toString("hex"));
  });
});
