/**
 * Chunks indexed by a version 2 B-tree (layout v4 index type 5, datasets with more than one
 * unlimited dimension): record type 10 (unfiltered: address, scaled coordinates) or 11
 * (filtered: address, chunk size, filter mask, scaled coordinates).
 */
import { type BTree2RecordDecoder, readBTree2Header, readBTree2RecordsWithHeader } from "../btree2.js";
import type { FileContext } from "../io.js";
import { UNDEFINED_ADDRESS } from "../io.js";
import type { ChunkEntry } from "../model.js";
import { addressAt } from "./common.js";

export async function readBTree2Chunks(
  ctx: FileContext,
  address: number,
  rank: number,
  /** Width of the filtered "chunk size" field; 0 for an unfiltered dataset. */
  sizeWidth: number,
  rawChunkBytes: number,
  signal?: AbortSignal,
): Promise<ChunkEntry[]> {
  if (address === UNDEFINED_ADDRESS) return [];
  const header = await readBTree2Header(ctx, address);
  const filtered = sizeWidth > 0;
  const width = sizeWidth;
  const expectedType = filtered ? 11 : 10;
  const o = ctx.sizes.offsetSize;
  const expectedSize = filtered ? o + width + 4 + 8 * rank : o + 8 * rank;
  if (header.type !== expectedType || header.recordSize !== expectedSize) {
    const c = await ctx.cursor(address, 0, "v2 B-tree header");
    throw c.error(
      `record type ${header.type} of ${header.recordSize} bytes, but a ${filtered ? "filtered" : "unfiltered"} ` +
        `rank-${rank} dataset with a ${width}-byte chunk size field uses type ${expectedType} of ${expectedSize} bytes`,
    );
  }
  // Decodes straight into ChunkEntry: one object and one array per chunk, nothing else.
  const decode: BTree2RecordDecoder<ChunkEntry> = (c) => {
    const bytes = c.bytes;
    let pos = c.pos;
    c.skip(expectedSize);
    const offset = addressAt(bytes, pos, o);
    pos += o;
    let size = rawChunkBytes;
    let filterMask = 0;
    if (filtered) {
      size = addressAt(bytes, pos, width);
      pos += width;
      filterMask = (bytes[pos] | (bytes[pos + 1] << 8) | (bytes[pos + 2] << 16) | (bytes[pos + 3] << 24)) >>> 0;
      pos += 4;
    }
    const coords = new Array<number>(rank);
    for (let d = 0; d < rank; d++, pos += 8) coords[d] = addressAt(bytes, pos, 8);
    if (offset < 0 || size < 0 || size === UNDEFINED_ADDRESS || coords.some((x) => x < 0 || x === UNDEFINED_ADDRESS)) {
      throw c.error("chunk record with an out-of-range field", c.base + c.pos - expectedSize);
    }
    return { coords, offset, size, filterMask };
  };
  const records = await readBTree2RecordsWithHeader(ctx, header, decode, { signal });
  return records.some((r) => r.offset === UNDEFINED_ADDRESS)
    ? records.filter((r) => r.offset !== UNDEFINED_ADDRESS)
    : records;
}
