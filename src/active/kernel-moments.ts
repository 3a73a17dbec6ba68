/**
 * The second pass for variance/std: the sum of squared deviations (M2) of a run's valid values
 * from their block's mean, which the first pass produced. Same element test and the same four
 * lanes by position as the fold (kernel-fold.ts), so M2 is independent of how the run was folded.
 */
import type { FloatLike, FoldRules } from "./kernel-fold.js";

// NaN fails the range test. Rules as arguments, not an object: V8 then keeps them in registers.
function valid(v: number, lo: number, hi: number, m0: number, rest: number[] | null): boolean {
  return v >= lo && v <= hi && v !== m0 && (rest === null || !rest.includes(v));
}

/** M2 of one run about `mean`. */
export function m2Run(data: FloatLike, off: number, stride: number, n: number, mean: number, r: FoldRules): number {
  const { lo, hi, m0, rest } = r;
  let q0 = 0, q1 = 0, q2 = 0, q3 = 0;
  let j = 0;
  for (const end = n - (n & 3); j < end; j += 4, off += 4 * stride) {
    const a = data[off], b = data[off + stride], c = data[off + 2 * stride], d = data[off + 3 * stride];
    if (valid(a, lo, hi, m0, rest)) q0 += (a - mean) * (a - mean);
    if (valid(b, lo, hi, m0, rest)) q1 += (b - mean) * (b - mean);
    if (valid(c, lo, hi, m0, rest)) q2 += (c - mean) * (c - mean);
    if (valid(d, lo, hi, m0, rest)) q3 += (d - mean) * (d - mean);
  }
  for (let k = 0; j < n; j++, k++, off += stride) {
    const v = data[off];
    if (!valid(v, lo, hi, m0, rest)) continue;
    const q = (v - mean) * (v - mean);
    if (k === 0) q0 += q;
    else if (k === 1) q1 += q;
    else q2 += q;
  }
  return q0 + q1 + (q2 + q3);
}

/** M2 of a run whose elements go to successive output elements, each about its own block mean. */
export function m2Scatter(
  data: FloatLike,
  off: number,
  stride: number,
  n: number,
  o: number,
  ostride: number,
  r: FoldRules,
  count: Float64Array,
  sum: Float64Array,
  m2: Float64Array,
): void {
  const { lo, hi, m0, rest } = r;
  for (let j = 0; j < n; j++, off += stride, o += ostride) {
    const v = data[off];
    if (!valid(v, lo, hi, m0, rest)) continue;
    const d = v - sum[o] / count[o];
    m2[o] += d * d;
  }
}
