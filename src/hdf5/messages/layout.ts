/** Data layout message (0x0008), versions 1–5: compact, contiguous, chunked (all index types), virtual. */
import { Cursor } from "../io.js";
import type { ChunkIndexInfo, Layout } from "../model.js";

export function decodeLayout(c: Cursor): Layout {
  const start = c.address;
  const version = c.u8();
  if (version === 1 || version === 2) return decodeV1V2(c, version);
  if (version < 1 || version > 5) throw c.error(`unknown data layout message version ${version}`, start);
  const cls = c.u8();
  switch (cls) {
    case 0: {
      const size = c.u16();
      return { kind: "compact", data: c.take(size).slice() };
    }
    case 1:
      return { kind: "contiguous", address: c.offset(), size: c.length() };
    case 2:
      return version === 3 ? decodeChunkedV3(c) : decodeChunkedV4(c, version);
    case 3:
      if (version < 4) break;
      return { kind: "virtual" };
  }
  throw c.error(`unknown layout class ${cls} in layout message version ${version}`, start);
}

/** The element size is stored as an extra, last chunk dimension; it is not part of the shape. */
function splitChunkDims(c: Cursor, dims: number[]): { chunkShape: number[]; elementSize: number } {
  if (dims.length < 2) throw c.error(`chunked layout with ${dims.length} dimensions`);
  const chunkShape = dims.slice(0, -1);
  if (chunkShape.some((d) => d === 0)) throw c.error(`chunk dimension of 0 in ${JSON.stringify(chunkShape)}`);
  return { chunkShape, elementSize: dims[dims.length - 1] };
}

function decodeV1V2(c: Cursor, version: number): Layout {
  const rank = c.u8();
  const cls = c.u8();
  c.skip(5);
  const address = cls === 0 ? undefined : c.offset();
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(c.u32());
  if (cls === 0) {
    const size = c.u32();
    return { kind: "compact", data: c.take(size).slice() };
  }
  if (cls === 1) {
    // Old contiguous layouts record dimensions, not a byte size; the size follows from them.
    const size = dims.reduce((a, b) => a * b, 1);
    return { kind: "contiguous", address: address!, size };
  }
  if (cls === 2) {
    const { chunkShape, elementSize } = splitChunkDims(c, dims);
    return {
      kind: "chunked",
      chunkShape,
      elementSize,
      layoutVersion: version,
      index: { type: "btree-v1", address: address! },
    };
  }
  throw c.error(`unknown layout class ${cls} in layout message version ${version}`);
}

function decodeChunkedV3(c: Cursor): Layout {
  const rank = c.u8();
  const address = c.offset();
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(c.u32());
  const { chunkShape, elementSize } = splitChunkDims(c, dims);
  return { kind: "chunked", chunkShape, elementSize, layoutVersion: 3, index: { type: "btree-v1", address } };
}

function decodeChunkedV4(c: Cursor, version: number): Layout {
  const flags = c.u8();
  const rank = c.u8();
  const width = c.u8();
  if (width < 1 || width > 8) throw c.error(`chunk dimension width of ${width} bytes`);
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(c.uint(width));
  const { chunkShape, elementSize } = splitChunkDims(c, dims);
  const indexType = c.u8();
  let index: ChunkIndexInfo;
  switch (indexType) {
    case 1: {
      let filteredSize: number | undefined;
      let filterMask: number | undefined;
      if (flags & 0x02) {
        filteredSize = c.length();
        filterMask = c.u32();
      }
      index = { type: "single", address: c.offset(), filteredSize, filterMask };
      break;
    }
    case 2:
      index = { type: "implicit", address: c.offset() };
      break;
    case 3: {
      const pageBits = c.u8();
      index = { type: "fixed-array", address: c.offset(), pageBits };
      break;
    }
    case 4: {
      const maxBits = c.u8();
      const indexElements = c.u8();
      const minPointers = c.u8();
      const minElements = c.u8();
      const pageBits = c.u8();
      index = {
        type: "extensible-array",
        address: c.offset(),
        maxBits,
        indexElements,
        minPointers,
        minElements,
        pageBits,
      };
      break;
    }
    case 5: {
      const nodeSize = c.u32();
      const splitPercent = c.u8();
      const mergePercent = c.u8();
      index = { type: "btree-v2", address: c.offset(), nodeSize, splitPercent, mergePercent };
      break;
    }
    default:
      throw c.error(`unknown chunk index type ${indexType}`);
  }
  return {
    kind: "chunked",
    chunkShape,
    elementSize,
    layoutVersion: version,
    dontFilterPartialEdgeChunks: (flags & 0x01) !== 0,
    index,
  };
}
