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

/** Elements per call of m2Block: a multiple of 4 (lanes carry on), for the reason in kernel-fold.ts. */
const BLOCK = 4096;

/** M2 of one run about `mean`; `lanes` is scratch space of 4 elements. */
export function m2Run(data: FloatLike, off: number, stride: number, n: number, mean: number, r: FoldRules, lanes: Float64Array): number {
  lanes.fill(0);
  const whole = n - (n & 3);
  for (let j = 0; j < whole; j += BLOCK) m2Block(data, off + j * stride, stride, Math.min(BLOCK, whole - j), mean, r, lanes);
  // The last n mod 4 elements here, not in m2Block: code after a hot loop that runs once per run
  // lacks type feedback when V8 compiles the loop, and its deopts cost more than the loop.
  const { lo, hi, m0, rest } = r;
  for (let j = whole, at = off + whole * stride; j < n; j++, at += stride) {
    const v = data[at];
    if (valid(v, lo, hi, m0, rest)) lanes[j & 3] += (v - mean) * (v - mean);
  }
  return lanes[0] + lanes[1] + (lanes[2] + lanes[3]);
}

/** M2 lanes of `n` elements, n a multiple of 4. */
function m2Block(data: FloatLike, off: number, stride: number, n: number, mean: number, r: FoldRules, lanes: Float64Array): void {
  const { lo, hi, m0, rest } = r;
  let q0 = lanes[0], q1 = lanes[1], q2 = lanes[2], q3 = lanes[3];
  for (let j = 0; j < n; j += 4, off += 4 * stride) {
    const a = data[off], b = data[off + stride], c = data[off + 2 * stride], d = data[off + 3 * stride];
    if (valid(a, lo, hi, m0, rest)) q0 += (a - mean) * (a - mean);
    if (valid(b, lo, hi, m0, rest)) q1 += (b - mean) * (b - mean);
    if (valid(c, lo, hi, m0, rest)) q2 += (c - mean) * (c - mean);
    if (valid(d, lo, hi, m0, rest)) q3 += (d - mean) * (d - mean);
  }
  lanes[0] = q0;
  lanes[1] = q1;
  lanes[2] = q2;
  lanes[3] = q3;
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
