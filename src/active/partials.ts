/**
 * Partials: mergeable per-element summaries {count, sum, min, max, M2}. A chunk kernel produces them
 * for its block of the output; merging is associative (Chan et al.'s parallel variance update), so
 * chunks, servers and files can be combined in any order and mean/variance derived at the end.
 *
 * 64-bit integer data keeps exact sums and extremes as bigint; everything else is float64.
 */

export type Extreme = Float64Array | bigint[];

export interface Partials {
  /** Shape of the block these partials cover (kept dimensions only). */
  shape: number[];
  count: Float64Array;
  /** Sums in float64, or exact bigint sums for int64/uint64 data. */
  sum: Float64Array | bigint[];
  min: Extreme;
  max: Extreme;
  /** Sum of squared deviations from the block mean; present when moments were asked for. */
  m2?: Float64Array;
  /** 1 where a NaN was seen (and NaNs are not skipped): numpy propagates it. */
  nan: Uint8Array;
  /**
   * false when min/max were not tracked (a mean, sum or count needs none): they hold ±Infinity and
   * mean nothing. Merging such partials into others makes the result lack them too.
   */
  extremes?: boolean;
}

export function emptyPartials(shape: number[], bigint: boolean, moments: boolean, extremes = true): Partials {
  const n = shape.reduce((a, b) => a * b, 1);
  return {
    shape,
    count: new Float64Array(n),
    sum: bigint ? new Array<bigint>(n).fill(0n) : new Float64Array(n),
    min: bigint ? new Array<bigint>(n) : new Float64Array(n).fill(Infinity),
    max: bigint ? new Array<bigint>(n) : new Float64Array(n).fill(-Infinity),
    m2: moments ? new Float64Array(n) : undefined,
    nan: new Uint8Array(n),
    ...(!extremes && { extremes: false }),
  };
}

export function isBigintPartials(p: Partials): p is Partials & { sum: bigint[]; min: bigint[]; max: bigint[] } {
  return Array.isArray(p.sum);
}

function meanOf(sum: number | bigint, count: number): number {
  return count === 0 ? 0 : Number(sum) / count;
}

/**
 * Merges `block` into `into` at `offset` (the block's position in `into`'s kept dimensions).
 * `into` and `block` must both be bigint or both float.
 */
export function mergePartials(into: Partials, block: Partials, offset: readonly number[]): void {
  if (block.extremes === false) into.extremes = false;
  const ndim = into.shape.length;
  const n = block.count.length;
  if (n === 0) return;
  const strides = new Array<number>(ndim);
  let s = 1;
  for (let d = ndim - 1; d >= 0; d--) {
    strides[d] = s;
    s *= into.shape[d];
  }
  const bshape = block.shape;
  // Walk the block row by row (its innermost dimension is contiguous in both): a time-mean map
  // merges 10^5-element blocks per chunk, and per-element index arithmetic would dominate.
  const row = ndim === 0 ? 1 : bshape[ndim - 1];
  const at = new Array<number>(Math.max(0, ndim - 1)).fill(0);
  const big = isBigintPartials(into);
  const moments = into.m2 !== undefined && block.m2 !== undefined;
  for (let i = 0; i < n; i += row) {
    let o = ndim === 0 ? 0 : offset[ndim - 1];
    for (let d = 0; d < ndim - 1; d++) o += (offset[d] + at[d]) * strides[d];
    if (big || moments) for (let j = 0; j < row; j++) mergeOne(into, o + j, block, i + j, big);
    else mergeFloatRow(into, o, block, i, row);
    for (let d = ndim - 2; d >= 0; d--) {
      if (++at[d] < bshape[d]) break;
      at[d] = 0;
    }
  }
}

/** The common case (float data, no moments) without per-element dispatch. */
function mergeFloatRow(into: Partials, o: number, block: Partials, i: number, n: number): void {
  const count = into.count;
  const sum = into.sum as Float64Array;
  const min = into.min as Float64Array;
  const max = into.max as Float64Array;
  const nan = into.nan;
  const bcount = block.count;
  const bsum = block.sum as Float64Array;
  const bmin = block.min as Float64Array;
  const bmax = block.max as Float64Array;
  const bnan = block.nan;
  for (let j = 0; j < n; j++, o++, i++) {
    if (bnan[i]) nan[o] = 1;
    const nb = bcount[i];
    if (nb === 0) continue;
    count[o] += nb;
    sum[o] += bsum[i];
    if (bmin[i] < min[o]) min[o] = bmin[i];
    if (bmax[i] > max[o]) max[o] = bmax[i];
  }
}

function mergeOne(into: Partials, o: number, block: Partials, i: number, big: boolean): void {
  const nb = block.count[i];
  if (block.nan[i]) into.nan[o] = 1;
  if (nb === 0) return;
  const na = into.count[o];
  if (into.m2 && block.m2) {
    // Chan et al.: M2 = M2a + M2b + delta^2 * na * nb / n, with means taken before the sums merge.
    const meanA = meanOf(into.sum[o], na);
    const meanB = meanOf(block.sum[i], nb);
    const delta = meanB - meanA;
    into.m2[o] += block.m2[i] + (na === 0 ? 0 : (delta * delta * na * nb) / (na + nb));
  }
  into.count[o] = na + nb;
  if (big) {
    const sum = into.sum as bigint[];
    const min = into.min as bigint[];
    const max = into.max as bigint[];
    const bmin = (block.min as bigint[])[i];
    const bmax = (block.max as bigint[])[i];
    sum[o] += (block.sum as bigint[])[i];
    if (min[o] === undefined || bmin < min[o]) min[o] = bmin;
    if (max[o] === undefined || bmax > max[o]) max[o] = bmax;
  } else {
    (into.sum as Float64Array)[o] += (block.sum as Float64Array)[i];
    const bmin = (block.min as Float64Array)[i];
    const bmax = (block.max as Float64Array)[i];
    if (bmin < (into.min as Float64Array)[o]) (into.min as Float64Array)[o] = bmin;
    if (bmax > (into.max as Float64Array)[o]) (into.max as Float64Array)[o] = bmax;
  }
}

/** Merges whole partials of equal shape (e.g. the same selection over several files). */
export function combinePartials(a: Partials, b: Partials): Partials {
  if (a.shape.join() !== b.shape.join()) {
    throw new Error(`cannot combine partials of shapes [${a.shape}] and [${b.shape}]`);
  }
  const out: Partials = {
    shape: [...a.shape],
    count: a.count.slice(),
    sum: Array.isArray(a.sum) ? [...a.sum] : a.sum.slice(),
    min: Array.isArray(a.min) ? [...a.min] : a.min.slice(),
    max: Array.isArray(a.max) ? [...a.max] : a.max.slice(),
    m2: a.m2?.slice(),
    nan: a.nan.slice(),
    ...(a.extremes === false && { extremes: false }),
  };
  mergePartials(out, b, a.shape.map(() => 0));
  return out;
}
