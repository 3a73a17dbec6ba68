import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readChunkIndex } from "../src/hdf5/chunk-index/index.js";
import type { FileContext } from "../src/hdf5/io.js";
import type { ChunkEntry, Dataset, Filter } from "../src/hdf5/model.js";
import { fileSource, layoutMessage, openContext, parseLayout } from "./fixtures/chunk-index/mini-reader.js";

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, "fixtures", "chunk-index");

/** [element offset per dim, filter mask, byte offset, stored size], as H5Dget_chunk_info reports. */
type ExpectedChunk = [number[], number, number, number];
interface ExpectedDataset {
  objectHeader: number;
  shape: number[];
  maxShape: (number | null)[];
  chunkShape: number[];
  elementSize: number;
  filters: string[];
  chunks: ExpectedChunk[];
}
type Expected = Record<string, Record<string, ExpectedDataset>>;

const expected = JSON.parse(await readFile(join(fixtures, "expected.json"), "utf8")) as Expected;

async function datasetFor(ctx: FileContext, path: string, e: ExpectedDataset) {
  const parsed = parseLayout(await layoutMessage(ctx, e.objectHeader));
  const filters: Filter[] = e.filters.map((name) => ({ id: 0, name, optional: false, clientData: [] }));
  const dataset: Dataset = {
    kind: "dataset",
    path,
    name: path.slice(1),
    address: e.objectHeader,
    attributes: [],
    shape: e.shape,
    maxShape: e.maxShape,
    type: { class: "integer", size: e.elementSize, littleEndian: true, signed: false },
    filters,
    fill: {},
    layout: parsed.layout,
  };
  return { dataset, version: parsed.version };
}

function fromH5py(e: ExpectedDataset): ChunkEntry[] {
  return e.chunks.map(([offset, filterMask, byteOffset, size]) => ({
    coords: offset.map((o, d) => o / e.chunkShape[d]),
    offset: byteOffset,
    size,
    filterMask,
  }));
}

const byOffset = (a: ChunkEntry, b: ChunkEntry) => a.offset - b.offset;

describe.each(Object.keys(expected))("chunk index of %s matches h5py get_chunk_info", (file) => {
  const source = fileSource(join(fixtures, file));
  let ctx: FileContext;
  beforeAll(async () => {
    ctx = await openContext(source);
  });
  afterAll(() => source.close());

  it.each(Object.keys(expected[file]))("%s", async (path) => {
    const e = expected[file][path];
    const { dataset } = await datasetFor(ctx, path, e);
    const got = await readChunkIndex(ctx, dataset);
    expect([...got].sort(byOffset)).toEqual(fromH5py(e).sort(byOffset));
  });
});

describe("fixture coverage", () => {
  it("uses every index type, as recorded in the layout messages", async () => {
    const seen = new Map<string, string[]>();
    for (const file of Object.keys(expected)) {
      const source = fileSource(join(fixtures, file));
      const ctx = await openContext(source);
      for (const [path, e] of Object.entries(expected[file])) {
        const { dataset } = await datasetFor(ctx, path, e);
        const type = dataset.layout.kind === "chunked" ? dataset.layout.index.type : "?";
        seen.set(type, [...(seen.get(type) ?? []), `${file}${path}`]);
      }
      await source.close();
    }
    expect([...seen.keys()].sort()).toEqual(
      ["btree-v1", "btree-v2", "extensible-array", "fixed-array", "implicit", "single"].sort(),
    );
    // Spot-check that the generator got the layouts it asked for.
    expect(seen.get("fixed-array")).toContain("latest.h5/fa_paged");
    expect(seen.get("extensible-array")).toContain("latest.h5/ea");
    expect(seen.get("btree-v2")).toContain("latest.h5/bt2_deflate");
    expect(seen.get("implicit")).toContain("latest.h5/implicit");
    expect(seen.get("single")).toContain("latest.h5/single_deflate");
  });
});
