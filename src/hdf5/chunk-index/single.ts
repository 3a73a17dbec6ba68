/** Single chunk index (layout v4 type 1): the whole dataset is one chunk at the index address. */
import { UNDEFINED_ADDRESS } from "../io.js";
import type { ChunkEntry } from "../model.js";

export function readSingleChunk(
  info: { address: number; filteredSize?: number; filterMask?: number },
  rank: number,
  rawChunkBytes: number,
): ChunkEntry[] {
  if (info.address === UNDEFINED_ADDRESS) return [];
  return [
    {
      coords: new Array<number>(rank).fill(0),
      offset: info.address,
      // A filtered single chunk records its stored size in the layout message.
      size: info.filteredSize ?? rawChunkBytes,
      filterMask: info.filterMask ?? 0,
    },
  ];
}
