/** convert's library functions in-process: verify finds damaged chunks by key; zarr sources; bad options. */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertPartition, initConvert, verifyConversion } from "../src/datasets/convert.js";
import { openDataset } from "../src/datasets/create.js";
import { openSource } from "../src/datasets/source.js";
import { ConflictError, RequestError } from "../src/errors.js";
import { LocalStore } from "../src/stores/local.js";
import { buildReferences } from "../src/refs/build.js";
import { writeReferences } from "../src/refs/write.js";

const fixtures = fileURLToPath(new URL("fixtures/datasets/", import.meta.url));
const day1 = join(fixtures, "day1.nc");
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "datasets-convert-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function expectedTas(): Promise<Float32Array> {
  const bytes = await readFile(join(fixtures, "day1.tas.f4"));
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

describe("convert (library)", () => {
  it("verify names the chunks that differ from the source", async () => {
    const source = await openSource(day1);
    expect(source.variables.map((v) => v.name)).toEqual(["lat", "lon", "tas", "time"]);
    const dest = new LocalStore(join(work, "verify.zarr"));
    const options = { chunks: { time: 6 } };
    await initConvert(source, dest, options);
    expect((await convertPartition(source, dest, { rank: 0, ranks: 1 }, options)).chunks).toEqual({ tas: 8 }); // time in 6s; lat and lon keep the source's 5 and 8
    expect(await verifyConversion(source, dest, options)).toEqual({ chunks: 12, mismatches: [] });
    // Damage one chunk: write different values into the second time block.
    const tas = await openDataset(dest, "tas");
    const chunk = await tas.readChunk([1, 0, 0]);
    (chunk.data as Float32Array)[7] += 1;
    await tas.writeChunk([1, 0, 0], chunk);
    // And delete the first: a missing chunk reads as fill, which the source does not hold.
    await dest.delete("tas/c/0/0/0");
    expect(await verifyConversion(source, dest, options)).toEqual({ chunks: 12, mismatches: ["tas/c/0/0/0", "tas/c/1/0/0"] });
  });

  it("converts a zarr store (our own output) again, with other chunks and format", async () => {
    const first = new LocalStore(join(work, "first.zarr"));
    const source = await openSource(day1);
    await initConvert(source, first);
    await convertPartition(source, first, { rank: 0, ranks: 1 });
    const zarrSource = await openSource(join(work, "first.zarr"));
    expect(zarrSource.variables.map((v) => v.name)).toEqual(["lat", "lon", "tas", "time"]);
    const second = new LocalStore(join(work, "second.zarr"));
    const options = { chunks: { lat: 10, lon: 16, time: 12 }, format: 2 as const, codecs: [{ id: "gzip" as const }] };
    await initConvert(zarrSource, second, options);
    await convertPartition(zarrSource, second, { rank: 0, ranks: 1 }, options);
    const tas = await openDataset(second, "tas");
    expect(tas.format).toBe(2);
    expect(tas.chunks).toEqual([12, 10, 16]);
    const got = (await tas.get(null)).data as Float32Array;
    const want = await expectedTas();
    expect(Array.from(got).map(String)).toEqual(Array.from(want).map(String)); // NaN-aware via strings
  });

  it("reads a parquet reference set (kerchunk's layout) as the source", async () => {
    const refsDir = join(work, "day1.parq");
    await writeReferences(await buildReferences(day1), refsDir, { format: "parquet" });
    const source = await openSource(refsDir);
    expect(source.variables.map((v) => v.name)).toEqual(["lat", "lon", "tas", "time"]);
    const dest = new LocalStore(join(work, "from-parquet.zarr"));
    await initConvert(source, dest);
    await convertPartition(source, dest, { rank: 0, ranks: 1 });
    const got = (await (await openDataset(dest, "tas")).get(null)).data as Float32Array;
    expect(Array.from(got).map(String)).toEqual(Array.from(await expectedTas()).map(String));
  });

  it("refuses unknown dimensions, unknown variables, conflicting re-initialisation and a missing --init", async () => {
    const source = await openSource(day1);
    const dest = new LocalStore(join(work, "bad.zarr"));
    await expect(initConvert(source, dest, { chunks: { depth: 3 } })).rejects.toThrow(/no variable has: depth/);
    await expect(initConvert(source, dest, { variables: ["pr"] })).rejects.toBeInstanceOf(RequestError);
    await expect(convertPartition(source, dest, { rank: 0, ranks: 2 })).rejects.toThrow(/run convert --init first/);
    await initConvert(source, dest, { chunks: { time: 4 } });
    await expect(initConvert(source, dest, { chunks: { time: 3 } })).rejects.toBeInstanceOf(ConflictError);
  });
});
