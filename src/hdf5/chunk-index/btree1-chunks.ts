/** Chunks indexed by a version 1 B-tree (layout message versions 1–3, node type 1). */
import { Hdf5FormatError } from "../../errors.js";
import { forEachChunkBTree1 } from "../btree1.js";
import type { FileContext } from "../io.js";
import type { ChunkEntry } from "../model.js";

export async function readBTree1Chunks(
  ctx: FileContext,
  address: number,
  chunkShape: number[],
  signal?: AbortSignal,
): Promise<ChunkEntry[]> {
  const out: ChunkEntry[] = [];
  const rank = chunkShape.length;
  await forEachChunkBTree1(
    ctx,
    address,
    rank,
    (offset, size, filterMask, coords) => {
      // Keys hold element offsets, multiples of the chunk dimensions in a valid file;
      // the array becomes the coordinates in place.
      for (let d = 0; d < rank; d++) {
        const o = coords[d];
        if (o % chunkShape[d] !== 0) {
          throw new Hdf5FormatError(
            `chunk key offset [${coords}] is not a multiple of the chunk shape [${chunkShape}]`,
            address,
            "v1 B-tree",
            { source: ctx.source.name },
          );
        }
        coords[d] = o / chunkShape[d];
      }
      out.push({ coords, offset, size, filterMask });
    },
    { signal },
  );
  return out;
}
