/**
 * Splitting an array's chunks among independent processes so that no chunk has two writers
 * (xpartition's rule). Blocks are chunks. Dimensions are split in priority order: the first listed
 * dimension is cut into as many block groups as there are ranks (never finer than one block), the
 * next one into as many as the ranks left over allow, and so on; unlisted dimensions are not split.
 * Rank r takes the r-th meta block in C order over the array's dimensions; ranks beyond the number
 * of meta blocks are idle (null region). Every region is a union of whole chunks.
 */
import { RequestError } from "../errors.js";
import { gridShape, type Region } from "./grid.js";

export interface PartitionPlan {
  /** Blocks (chunks) per meta block along each dimension. */
  metaChunks: number[];
  /** Meta blocks along each dimension; their product is the number of busy ranks. */
  metaGrid: number[];
  /** One region per rank, null for idle ranks. */
  regions: (Region | null)[];
}

/**
 * The partition plan for `ranks` processes. `dims` are dimension indices in priority order
 * (default: all, first to last).
 */
export function planPartitions(
  shape: readonly number[],
  chunks: readonly number[],
  ranks: number,
  dims?: readonly number[],
): PartitionPlan {
  if (!Number.isSafeInteger(ranks) || ranks < 1) throw new RequestError(`ranks must be a positive integer, got ${ranks}`);
  const order = dims ?? shape.map((_, i) => i);
  for (const d of order) {
    if (!Number.isInteger(d) || d < 0 || d >= shape.length) throw new RequestError(`partition dimension ${d} is not a dimension of shape [${shape}]`);
  }
  if (new Set(order).size !== order.length) throw new RequestError(`partition dimensions [${order}] repeat`);
  const blocks = gridShape(shape, chunks);
  if (blocks.some((n) => n === 0)) {
    // An empty array has no chunks to write: every rank is idle.
    return { metaChunks: blocks.slice(), metaGrid: blocks.map(() => 0), regions: Array.from({ length: ranks }, () => null) };
  }
  const metaChunks = blocks.slice();
  let used = 1;
  for (const d of order) {
    const share = Math.floor(ranks / used);
    metaChunks[d] = Math.min(Math.ceil(blocks[d] / share), blocks[d]);
    used *= Math.ceil(blocks[d] / metaChunks[d]);
  }
  const metaGrid = blocks.map((n, i) => Math.ceil(n / metaChunks[i]));
  const busy = metaGrid.reduce((a, b) => a * b, 1);
  const regions = Array.from({ length: ranks }, (_, rank) => {
    if (rank >= busy) return null;
    const index = unravel(rank, metaGrid);
    return index.map((m, i) => {
      const firstBlock = m * metaChunks[i];
      const lastBlock = Math.min((m + 1) * metaChunks[i], blocks[i]);
      return [firstBlock * chunks[i], Math.min(lastBlock * chunks[i], shape[i])] as const;
    });
  });
  return { metaChunks, metaGrid, regions };
}

/** This rank's region (null when idle). */
export function partitionRegion(
  shape: readonly number[],
  chunks: readonly number[],
  ranks: number,
  rank: number,
  dims?: readonly number[],
): Region | null {
  if (!Number.isSafeInteger(rank) || rank < 0 || rank >= ranks) {
    throw new RequestError(`rank ${rank} is outside 0..${ranks - 1}`);
  }
  return planPartitions(shape, chunks, ranks, dims).regions[rank];
}

/** Dimension names in priority order → indices, skipping names the array does not have. */
export function dimsByName(names: readonly string[] | undefined, dimensionNames: readonly string[] | undefined, ndim: number): number[] {
  if (!names || names.length === 0) return Array.from({ length: ndim }, (_, i) => i);
  if (!dimensionNames) throw new RequestError(`partition dimensions [${names}] given by name, but the array has no dimension names`);
  return names.map((n) => dimensionNames.indexOf(n)).filter((i) => i >= 0);
}

function unravel(index: number, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = index % shape[i];
    index = Math.floor(index / shape[i]);
  }
  return out;
}
