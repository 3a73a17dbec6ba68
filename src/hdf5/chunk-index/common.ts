/**
 * Facts every chunk index shares: the element size of the stored datatype, a chunk's raw byte
 * size, the width of the "chunk size" field in filtered index entries, and the mapping between
 * a linear chunk index and chunk grid coordinates.
 */
import { Hdf5FormatError } from "../../errors.js";
import type { Cursor } from "../io.js";
import { UNDEFINED_ADDRESS } from "../io.js";
import type { ChunkEntry, Dataset, Datatype } from "../model.js";

/** Bytes one element of `type` occupies in a chunk on disk. */
export function storedElementSize(type: Datatype, offsetSize: number): number {
  switch (type.class) {
    case "vlen-string":
    case "vlen-sequence":
      // Sequence length (4 bytes) + global heap collection address + object index (4 bytes).
      return 4 + offsetSize + 4;
    case "enum":
      return storedElementSize(type.base, offsetSize);
    case "array":
      return type.dims.reduce((n, d) => n * d, storedElementSize(type.base, offsetSize));
    default:
      return type.size;
  }
}

/** Raw (unfiltered) bytes of one full chunk. */
export function chunkByteSize(chunkShape: number[], elementSize: number): number {
  return chunkShape.reduce((n, d) => n * d, elementSize);
}

/**
 * Width of the "chunk size" field of filtered entries in fixed array, extensible array and v2
 * B-tree indexes. Layout message v4: one byte more than the raw chunk size needs (a filter may
 * grow a chunk), at most 8. Layout message v5 (HDF5 2.0) uses a full file "length" field
 * instead, so that no filter output can overflow it.
 */
export function chunkSizeWidth(rawChunkBytes: number, layoutVersion = 4, lengthSize = 8): number {
  if (layoutVersion >= 5) return lengthSize;
  const log2 = rawChunkBytes > 0 ? Math.floor(Math.log2(rawChunkBytes)) : 0;
  return Math.min(8, 1 + Math.floor((log2 + 8) / 8));
}

/** Chunks per dimension covering `extent` (ceil division). */
export function chunkGrid(extent: number[], chunkShape: number[]): number[] {
  return extent.map((n, d) => Math.ceil(n / chunkShape[d]));
}

/**
 * The extent an index is laid out over: the maximum dimensions when they are fixed (fixed array
 * and implicit indexes are sized for the maximum shape), else the current shape.
 */
export function fixedExtent(dataset: Dataset): number[] {
  const shape = dataset.shape ?? [];
  const max = dataset.maxShape;
  if (max === null) return shape;
  return shape.map((n, d) => {
    const m = max[d];
    if (m === null) {
      throw new Hdf5FormatError(
        `dimension ${d} is unlimited, but the chunk index (fixed array or implicit) needs fixed dimensions`,
        dataset.address,
        `data layout message of ${dataset.path}`,
      );
    }
    return Math.max(n, m);
  });
}

/** Row-major coordinates of linear chunk index `index` in a grid of `grid` chunks per dim. */
export function coordsOf(index: number, grid: number[]): number[] {
  const coords = new Array<number>(grid.length);
  for (let d = grid.length - 1; d >= 0; d--) {
    const n = grid[d];
    coords[d] = index % n;
    index = Math.floor(index / n);
  }
  return coords;
}

/**
 * Little-endian unsigned integer of `size` bytes at `pos`; all-ones is the undefined address.
 * Returns -1 when the value does not fit in 2^53 (the caller raises the error with context).
 * Hot path of every index: hundreds of thousands of calls, so no allocation and no Cursor.
 */
export function addressAt(bytes: Uint8Array, pos: number, size: number): number {
  if (size === 8) {
    const lo = (bytes[pos] | (bytes[pos + 1] << 8) | (bytes[pos + 2] << 16) | (bytes[pos + 3] << 24)) >>> 0;
    const hi = (bytes[pos + 4] | (bytes[pos + 5] << 8) | (bytes[pos + 6] << 16) | (bytes[pos + 7] << 24)) >>> 0;
    if (hi === 0xffffffff && lo === 0xffffffff) return UNDEFINED_ADDRESS;
    return hi > 0x1fffff ? -1 : hi * 4294967296 + lo;
  }
  let v = 0;
  let scale = 1;
  let allOnes = true;
  for (let i = 0; i < size; i++) {
    const b = bytes[pos + i];
    if (b !== 0xff) allOnes = false;
    v += b * scale;
    scale *= 256;
  }
  if (allOnes) return UNDEFINED_ADDRESS;
  return Number.isSafeInteger(v) ? v : -1;
}

/**
 * Reads the chunk entries stored as array elements (fixed and extensible arrays): an address,
 * and for filtered datasets a chunk size of `sizeWidth` bytes and a 4-byte filter mask.
 */
export class ArrayElementReader {
  constructor(
    /** 0 when the dataset has no filters. */
    readonly sizeWidth: number,
    /** Size of every chunk of an unfiltered dataset. */
    readonly rawChunkBytes: number,
    readonly toCoords: (index: number) => number[],
  ) {}

  /** Decodes `count` consecutive elements at the cursor, the first being linear index `first`. */
  read(c: Cursor, first: number, count: number, out: ChunkEntry[]): void {
    const o = c.sizes.offsetSize;
    const w = this.sizeWidth;
    const filtered = w > 0;
    const elementSize = o + (filtered ? w + 4 : 0);
    const start = c.pos;
    c.skip(count * elementSize); // bounds check once for the whole run
    const bytes = c.bytes;
    for (let i = 0, pos = start; i < count; i++, pos += elementSize) {
      const offset = addressAt(bytes, pos, o);
      if (offset === UNDEFINED_ADDRESS) continue; // chunk never written
      let size = this.rawChunkBytes;
      let filterMask = 0;
      if (filtered) {
        size = addressAt(bytes, pos + o, w);
        const m = pos + o + w;
        filterMask = (bytes[m] | (bytes[m + 1] << 8) | (bytes[m + 2] << 16) | (bytes[m + 3] << 24)) >>> 0;
      }
      if (offset < 0 || size < 0 || size === UNDEFINED_ADDRESS) {
        throw c.error(`chunk entry ${first + i} has an out-of-range address or size`, c.base + pos);
      }
      out.push({ coords: this.toCoords(first + i), offset, size, filterMask });
    }
  }
}

export function rankOf(dataset: Dataset): number {
  return dataset.shape?.length ?? 0;
}
