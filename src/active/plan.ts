/**
 * The chunk plan: which storage chunks a hyperslab touches and, for each, the selection inside the
 * chunk and where its elements land in the result. Generated lazily so a selection over 250k chunks
 * never materialises a 250k-entry list.
 */
import type { DimRange, Hyperslab } from "./selection.js";

/** The part of one dimension's selection that falls in one chunk. */
export interface DimPiece {
  /** Chunk index along this dimension. */
  chunk: number;
  /** First selected index, relative to the chunk start. */
  localStart: number;
  step: number;
  count: number;
  /** Position of the first element in the dimension's selection sequence (0-based). */
  outStart: number;
}

export interface ChunkTask {
  /** Chunk grid coordinates. */
  coords: number[];
  /** One piece per array dimension. */
  pieces: DimPiece[];
}

/** Splits one dimension's selected indices by chunk, in selection order. */
export function dimPieces(range: DimRange, chunkSize: number): DimPiece[] {
  const { start, step, count } = range;
  const out: DimPiece[] = [];
  let i = 0;
  while (i < count) {
    const index = start + i * step;
    const chunk = Math.floor(index / chunkSize);
    const last =
      step > 0
        ? Math.floor(((chunk + 1) * chunkSize - 1 - start) / step)
        : Math.floor((start - chunk * chunkSize) / -step);
    const i1 = Math.min(last, count - 1);
    out.push({ chunk, localStart: index - chunk * chunkSize, step, count: i1 - i + 1, outStart: i });
    i = i1 + 1;
  }
  return out;
}

export function countChunks(slab: Hyperslab, chunkShape: readonly number[]): number {
  return slab.reduce((n, r, d) => n * dimPieces(r, chunkShape[d]).length, 1);
}

/** Every chunk the hyperslab touches, in C order of chunk coordinates as selected. */
export function* planChunks(slab: Hyperslab, chunkShape: readonly number[]): Generator<ChunkTask> {
  const perDim = slab.map((r, d) => dimPieces(r, chunkShape[d]));
  if (perDim.some((p) => p.length === 0)) return;
  const ndim = perDim.length;
  const at = new Array<number>(ndim).fill(0);
  for (;;) {
    const pieces = at.map((j, d) => perDim[d][j]);
    yield { coords: pieces.map((p) => p.chunk), pieces };
    let d = ndim - 1;
    while (d >= 0 && ++at[d] === perDim[d].length) at[d--] = 0;
    if (d < 0) return;
  }
}
