/**
 * Implicit index (layout v4 type 2): no index structure. Space for every chunk of the
 * maximum-shape grid was allocated at creation as one contiguous run, so the chunk with
 * row-major index i in that grid lives at address + i * chunk bytes. Only unfiltered datasets
 * with fixed maximum dimensions use it. Like HDF5, we report the chunks of the current shape.
 */
import { UNDEFINED_ADDRESS } from "../io.js";
import type { ChunkEntry } from "../model.js";
import { coordsOf } from "./common.js";

export function readImplicitChunks(
  address: number,
  /** Chunks per dimension of the current shape: the chunks reported. */
  grid: number[],
  /** Chunks per dimension of the maximum shape: the allocation layout. */
  maxGrid: number[],
  rawChunkBytes: number,
  signal?: AbortSignal,
): ChunkEntry[] {
  if (address === UNDEFINED_ADDRESS) return [];
  const total = grid.reduce((n, d) => n * d, 1);
  const out = new Array<ChunkEntry>(total);
  for (let i = 0; i < total; i++) {
    if ((i & 0xffff) === 0) signal?.throwIfAborted();
    const coords = coordsOf(i, grid);
    let linear = 0;
    for (let d = 0; d < coords.length; d++) linear = linear * maxGrid[d] + coords[d];
    out[i] = { coords, offset: address + linear * rawChunkBytes, size: rawChunkBytes, filterMask: 0 };
  }
  return out;
}
