/**
 * Chunks indexed by a version 2 B-tree (layout v4 index type 5, datasets with more than one
 * unlimited dimension): record type 10 (unfiltered) or 11 (filtered), each holding the chunk's
 * scaled coordinates directly.
 */
import { chunkRecordDecoder, readBTree2Header, readBTree2RecordsWithHeader } from "../btree2.js";
import type { FileContext } from "../io.js";
import { UNDEFINED_ADDRESS } from "../io.js";
import type { ChunkEntry } from "../model.js";
import { chunkSizeWidth } from "./common.js";

export async function readBTree2Chunks(
  ctx: FileContext,
  address: number,
  rank: number,
  filtered: boolean,
  rawChunkBytes: number,
  signal?: AbortSignal,
): Promise<ChunkEntry[]> {
  if (address === UNDEFINED_ADDRESS) return [];
  const header = await readBTree2Header(ctx, address);
  const expectedType = filtered ? 11 : 10;
  const c = await ctx.cursor(address, 0, "v2 B-tree header");
  if (header.type !== expectedType) {
    throw c.error(
      `record type ${header.type}, but a ${filtered ? "filtered" : "unfiltered"} dataset uses type ${expectedType}`,
    );
  }
  if (filtered) {
    const width = chunkSizeWidth(rawChunkBytes);
    const expected = ctx.sizes.offsetSize + width + 4 + 8 * rank;
    if (header.recordSize !== expected) {
      throw c.error(`record size ${header.recordSize}, expected ${expected} for rank ${rank} and ${rawChunkBytes}-byte chunks`);
    }
  }
  const records = await readBTree2RecordsWithHeader(ctx, header, chunkRecordDecoder(rank), { signal });
  const out: ChunkEntry[] = [];
  for (const r of records) {
    if (r.address === UNDEFINED_ADDRESS) continue;
    out.push({ coords: r.scaled, offset: r.address, size: r.size ?? rawChunkBytes, filterMask: r.filterMask });
  }
  return out;
}
