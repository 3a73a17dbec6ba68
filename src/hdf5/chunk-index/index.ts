/**
 * Chunk locations of a chunked dataset, from whichever index its layout message names.
 * Only index structures are read, never chunk data.
 */
import { Hdf5FormatError, UnsupportedFeatureError } from "../../errors.js";
import type { FileContext } from "../io.js";
import type { ChunkEntry, Dataset } from "../model.js";
import { readBTree1Chunks } from "./btree1-chunks.js";
import { readBTree2Chunks } from "./btree2-chunks.js";
import {
  ArrayElementReader,
  chunkByteSize,
  chunkGrid,
  chunkSizeWidth,
  coordsOf,
  fixedExtent,
  storedElementSize,
} from "./common.js";
import { readExtensibleArrayChunks } from "./extensible-array.js";
import { readFixedArrayChunks } from "./fixed-array.js";
import { readImplicitChunks } from "./implicit.js";
import { readSingleChunk } from "./single.js";

export interface ChunkIndexOptions {
  signal?: AbortSignal;
}

/**
 * Every stored chunk of `dataset`: grid coordinates, file offset, stored size and filter mask,
 * in the index's own order. Chunks never written are omitted. Non-chunked layouts yield an
 * UnsupportedFeatureError; an index inconsistent with the dataspace, an Hdf5FormatError.
 *
 * When the layout says partial edge chunks are stored unfiltered, those chunks get every
 * filter's bit set in `filterMask`: HDF5 itself records 0 there and decides from the geometry
 * at read time, but the mask is what consumers of ChunkEntry go by.
 */
export async function readChunkIndex(
  ctx: FileContext,
  dataset: Dataset,
  options: ChunkIndexOptions = {},
): Promise<ChunkEntry[]> {
  const entries = await readEntries(ctx, dataset, options);
  const layout = dataset.layout;
  if (layout.kind === "chunked" && layout.dontFilterPartialEdgeChunks && dataset.filters.length > 0) {
    markUnfilteredEdgeChunks(entries, dataset.shape ?? [], layout.chunkShape, dataset.filters.length);
  }
  return entries;
}

function markUnfilteredEdgeChunks(entries: ChunkEntry[], shape: number[], chunkShape: number[], filters: number): void {
  const all = filters >= 32 ? 0xffffffff : 2 ** filters - 1;
  for (const e of entries) {
    if (e.coords.some((c, d) => (c + 1) * chunkShape[d] > shape[d])) e.filterMask = (e.filterMask | all) >>> 0;
  }
}

async function readEntries(ctx: FileContext, dataset: Dataset, options: ChunkIndexOptions): Promise<ChunkEntry[]> {
  const { signal } = options;
  signal?.throwIfAborted();
  const layout = dataset.layout;
  if (layout.kind !== "chunked") {
    throw new UnsupportedFeatureError(`${layout.kind} layout`, `chunk index of ${dataset.path}`, "only chunked datasets have a chunk index");
  }
  const { chunkShape, index } = layout;
  const rank = chunkShape.length;
  if ((dataset.shape?.length ?? 0) !== rank) {
    throw new Hdf5FormatError(
      `chunk rank ${rank} for a dataspace of rank ${dataset.shape?.length ?? 0}`,
      dataset.address,
      `data layout message of ${dataset.path}`,
    );
  }
  const filtered = dataset.filters.length > 0;
  // The layout message records the element size; the datatype is the fallback.
  const rawBytes = (): number =>
    chunkByteSize(chunkShape, layout.elementSize ?? storedElementSize(dataset.type, ctx.sizes.offsetSize));
  const sizeWidth = (): number =>
    filtered ? chunkSizeWidth(rawBytes(), layout.layoutVersion, ctx.sizes.lengthSize) : 0;
  switch (index.type) {
    case "btree-v1":
      return readBTree1Chunks(ctx, index.address, chunkShape, signal);
    case "single":
      return readSingleChunk(index, rank, rawBytes());
    case "implicit":
      return readImplicitChunks(
        index.address,
        chunkGrid(dataset.shape ?? [], chunkShape),
        chunkGrid(fixedExtent(dataset), chunkShape),
        rawBytes(),
        signal,
      );
    case "fixed-array": {
      const grid = chunkGrid(fixedExtent(dataset), chunkShape);
      const total = grid.reduce((n, d) => n * d, 1);
      const reader = new ArrayElementReader(sizeWidth(), rawBytes(), (i) => coordsOf(i, grid));
      return readFixedArrayChunks(ctx, index.address, total, reader, signal);
    }
    case "extensible-array": {
      const toCoords = extensibleCoords(dataset, chunkShape);
      const reader = new ArrayElementReader(sizeWidth(), rawBytes(), toCoords);
      return readExtensibleArrayChunks(ctx, index.address, reader, signal);
    }
    case "btree-v2":
      return readBTree2Chunks(ctx, index.address, rank, sizeWidth(), rawBytes(), signal);
  }
}

/**
 * Extensible array elements are numbered row-major with the unlimited dimension moved to the
 * front; the other dimensions use their (fixed) maximum chunk counts.
 */
function extensibleCoords(dataset: Dataset, chunkShape: number[]): (i: number) => number[] {
  const shape = dataset.shape ?? [];
  const max = dataset.maxShape;
  const unlimited = max === null ? [] : max.flatMap((m, d) => (m === null ? [d] : []));
  if (unlimited.length !== 1) {
    throw new Hdf5FormatError(
      `extensible array index, but ${unlimited.length} unlimited dimensions (HDF5 uses it for exactly one)`,
      dataset.address,
      `data layout message of ${dataset.path}`,
    );
  }
  const u = unlimited[0];
  const order = [u, ...shape.map((_, d) => d).filter((d) => d !== u)];
  // The unlimited dimension is the slowest, so its count never enters the index arithmetic.
  const swizzledGrid = order.map((d) => (d === u ? Number.MAX_SAFE_INTEGER : Math.ceil(Math.max(shape[d], max![d]!) / chunkShape[d])));
  return (i) => {
    const swizzled = coordsOf(i, swizzledGrid);
    const coords = new Array<number>(order.length);
    for (let k = 0; k < order.length; k++) coords[order[k]] = swizzled[k];
    return coords;
  };
}
