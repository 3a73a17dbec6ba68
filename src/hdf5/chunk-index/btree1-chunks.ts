/** Chunks indexed by a version 1 B-tree (layout message versions 1–3, node type 1). */
import { readChunkBTree1 } from "../btree1.js";
import type { FileContext } from "../io.js";
import type { ChunkEntry } from "../model.js";

export async function readBTree1Chunks(
  ctx: FileContext,
  address: number,
  chunkShape: number[],
  signal?: AbortSignal,
): Promise<ChunkEntry[]> {
  const records = await readChunkBTree1(ctx, address, chunkShape.length, { signal });
  const out = new Array<ChunkEntry>(records.length);
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    const coords = new Array<number>(chunkShape.length);
    for (let d = 0; d < chunkShape.length; d++) {
      // Keys hold element offsets, always multiples of the chunk dimension in a valid file.
      if (r.offsets[d] % chunkShape[d] !== 0) {
        throw await misaligned(ctx, address, r.offsets, chunkShape);
      }
      coords[d] = r.offsets[d] / chunkShape[d];
    }
    out[i] = { coords, offset: r.address, size: r.size, filterMask: r.filterMask };
  }
  return out;
}

async function misaligned(ctx: FileContext, address: number, offsets: number[], chunkShape: number[]) {
  const c = await ctx.cursor(address, 0, "v1 B-tree node");
  return c.error(`chunk key offset [${offsets}] is not a multiple of the chunk shape [${chunkShape}]`);
}
