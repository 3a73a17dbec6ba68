/**
 * The regular chunk grid: which chunks a region touches, each chunk's bounds trimmed to the array,
 * and copying boxes between C-ordered buffers (a region of a chunk into a result, a region of the
 * caller's values into a chunk).
 */
import { stridesOf } from "../util/strides.js";

/** Half-open index range along one dimension. */
export type Range = readonly [start: number, stop: number];
/** A box: one range per dimension. */
export type Region = readonly Range[];

export interface TypedArrayLike {
  readonly length: number;
  set(array: ArrayLike<number> | ArrayLike<bigint>, offset?: number): void;
  subarray(begin?: number, end?: number): TypedArrayLike;
  fill(value: never, start?: number, end?: number): unknown;
}

export function product(values: readonly number[]): number {
  return values.reduce((a, b) => a * b, 1);
}

/** Chunks per dimension. */
export function gridShape(shape: readonly number[], chunks: readonly number[]): number[] {
  return shape.map((n, i) => Math.ceil(n / chunks[i]));
}

export function fullRegion(shape: readonly number[]): Region {
  return shape.map((n) => [0, n] as const);
}

/** The part of the array a chunk covers (edge chunks trimmed to the array bounds). */
export function chunkRegion(coords: readonly number[], shape: readonly number[], chunks: readonly number[]): Region {
  return coords.map((c, i) => [c * chunks[i], Math.min((c + 1) * chunks[i], shape[i])] as const);
}

/** True when every range starts on a chunk boundary and ends on one or at the array's end. */
export function isChunkAligned(region: Region, shape: readonly number[], chunks: readonly number[]): boolean {
  return region.every(
    ([start, stop], i) => start % chunks[i] === 0 && (stop % chunks[i] === 0 || stop === shape[i]),
  );
}

/** Coordinates of every chunk the region overlaps, in C order. */
export function* chunksIn(region: Region, chunks: readonly number[]): Generator<number[]> {
  if (region.some(([start, stop]) => stop <= start)) return;
  const lo = region.map(([start], i) => Math.floor(start / chunks[i]));
  const hi = region.map(([, stop], i) => Math.ceil(stop / chunks[i]));
  if (region.length === 0) {
    yield [];
    return;
  }
  const coords = lo.slice();
  for (;;) {
    yield coords.slice();
    let d = coords.length - 1;
    while (d >= 0 && ++coords[d] === hi[d]) {
      coords[d] = lo[d];
      d--;
    }
    if (d < 0) return;
  }
}

export function countChunksIn(region: Region, chunks: readonly number[]): number {
  if (region.some(([start, stop]) => stop <= start)) return 0;
  return product(region.map(([start, stop], i) => Math.ceil(stop / chunks[i]) - Math.floor(start / chunks[i])));
}

export function intersect(a: Region, b: Region): Region | undefined {
  const out = a.map(([s, e], i) => [Math.max(s, b[i][0]), Math.min(e, b[i][1])] as const);
  return out.some(([s, e]) => e <= s) ? undefined : out;
}

export function regionShape(region: Region): number[] {
  return region.map(([start, stop]) => stop - start);
}

/**
 * Copies a box of `extent` elements from `src` (C order, shape `srcShape`, box at `srcStart`) into
 * `dst` (shape `dstShape`, box at `dstStart`). The innermost run is one `set`, so whole rows move at
 * memcpy speed.
 */
export function copyBox(
  src: TypedArrayLike,
  srcShape: readonly number[],
  srcStart: readonly number[],
  dst: TypedArrayLike,
  dstShape: readonly number[],
  dstStart: readonly number[],
  extent: readonly number[],
): void {
  const nd = extent.length;
  if (extent.some((n) => n === 0)) return;
  if (nd === 0) {
    dst.set(src.subarray(0, 1) as unknown as ArrayLike<number>, 0);
    return;
  }
  const ss = stridesOf(srcShape);
  const ds = stridesOf(dstShape);
  const run = extent[nd - 1];
  const idx = new Array<number>(nd - 1).fill(0);
  for (;;) {
    let so = srcStart[nd - 1];
    let doff = dstStart[nd - 1];
    for (let d = 0; d < nd - 1; d++) {
      so += (srcStart[d] + idx[d]) * ss[d];
      doff += (dstStart[d] + idx[d]) * ds[d];
    }
    dst.set(src.subarray(so, so + run) as unknown as ArrayLike<number>, doff);
    let d = nd - 2;
    while (d >= 0 && ++idx[d] === extent[d]) idx[d--] = 0;
    if (d < 0) return;
  }
}
