/**
 * Folding one run of elements into a single output element: the loop a whole-array or most axis
 * reductions spend their time in.
 *
 * Sums go to four lanes by the element's position in the run (j mod 4), combined as
 * (s0 + s1) + (s2 + s3) at the end. Four independent additions per step instead of one chain of
 * dependent ones is what makes the loop fast. The lane of an element depends only on where it is in
 * the run, never on which path folded it, so the sums are bit-identical whichever path is taken,
 * with or without extremes, locally and on a server.
 *
 * A run is first folded optimistically, as if it held no masked value and no NaN: every element
 * is added, and checked afterwards: a NaN (or Inf - Inf) shows in the sum; a fill value, further
 * missing value or out-of-range value shows against the run's extremes (a fill outside [min, max]
 * cannot be in the run), or, when extremes are not tracked, in one flag set by a compare per
 * element. A run that fails is folded again in groups of four: a group with no fill and no NaN is
 * added without further tests, one with them element by element; when a range or further masks
 * apply, the run's extremes say whether to redo it element by element (`foldCareful`). Data with
 * fills in most chunks (a land mask) would pay two folds, so after a run that failed the next one
 * starts with the grouped fold.
 *
 * Runs go to the loops in blocks of BLOCK elements: a failing optimistic fold stops at the first
 * bad block, and V8 compiles the loops as called functions, not only by on-stack replacement of a
 * first long call, whose code lacked feedback for the lines after the loop and fell back to the
 * interpreter on every later call (8 instead of 2.3 ns per element for a run with 1% fills). The
 * last n mod 4 elements of a run go through foldCareful here, for the reason in kernel-fold-loops.
 */
import type { NumericArray } from "./kernel.js";
import { F32, F64, HI, INT, LO, NANS, RARE, type Loop, type Loops } from "./kernel-fold-loops.js";
import { simdSumF64 } from "./kernel-simd.js";

export type FloatLike = Exclude<NumericArray, BigInt64Array | BigUint64Array>;

/** Missing rules resolved to numbers for the float path. */
export interface FoldRules {
  /** First exact mask (fill value), NaN when there is none (NaN never equals: a no-op test). */
  m0: number;
  lo: number;
  hi: number;
  /** Further exact masks, or null. */
  rest: number[] | null;
  skipNaN: boolean;
}

/** Runs shorter than this are not worth a call into wasm. */
export const SIMD_MIN_RUN = 256;

/** Elements per call of a loop; a multiple of 4, so lanes carry on across blocks. */
const BLOCK = 4096;

/** A guess of which fold to try first (see above); it changes the speed, never the result. */
let lastRunDirty = false;

/**
 * Folds a run into out = [count, sum, min, max, sawNaN]. With `extremes` false min/max may be left
 * at ±Infinity. `acc` is scratch space of 8 elements.
 */
export function foldRun(
  data: FloatLike,
  off: number,
  stride: number,
  n: number,
  r: FoldRules,
  extremes: boolean,
  acc: Float64Array,
  out: Float64Array,
): void {
  // One of three monomorphic loop sets; the cast only widens the element type of the parameter.
  const loops = (data instanceof Float64Array ? F64 : data instanceof Float32Array ? F32 : INT) as Loops<FloatLike>;
  // A range or further masks are checked against the run's extremes, so track them then.
  const ranged = r.lo !== -Infinity || r.hi !== Infinity || r.rest !== null;
  const track = extremes || ranged;
  // The loops take whole groups of four; the last n mod 4 elements are tested one by one.
  // Short float64 runs (the rows of a chunk cut by the selection's edge): one tight loop instead of
  // the block machinery, whose fixed cost was three times the work (~180 ns per run of 50).
  if (!track && n < SIMD_MIN_RUN && data instanceof Float64Array && sumShortRun(data, off, stride, n, r.m0, out)) return;
  const whole = n - (n & 3);
  const tail = off + whole * stride;
  let clean = false;
  if (!lastRunDirty) {
    resetAcc(acc);
    // A long float64 run read into wasm memory is summed there with SIMD, lane for lane the same.
    const simd =
      !track && stride === 1 && whole >= SIMD_MIN_RUN && data instanceof Float64Array
        ? simdSumF64(data, off, whole, r.m0, acc)
        : undefined;
    clean = simd ?? inBlocks(track ? loops.fast : loops.sum, data, off, stride, whole, r, acc);
    if (clean) foldCareful(data, tail, stride, n - whole, r, acc);
    if (clean && track) clean = !maybeMasked(acc[LO], acc[HI], r, true);
  }
  if (!clean) {
    resetAcc(acc);
    inBlocks(loops.grouped, data, off, stride, whole, r, acc);
    foldCareful(data, tail, stride, n - whole, r, acc);
    if (ranged && maybeMasked(acc[LO], acc[HI], r, false)) {
      resetAcc(acc);
      inBlocks(foldCareful, data, off, stride, n, r, acc);
    }
    lastRunDirty = acc[RARE] > 0;
  }
  const nans = acc[NANS];
  const sawNaN = !r.skipNaN && nans > 0;
  out[0] = n - acc[RARE] + (r.skipNaN ? 0 : nans);
  out[1] = sawNaN ? NaN : acc[0] + acc[1] + (acc[2] + acc[3]);
  out[2] = acc[LO];
  out[3] = acc[HI];
  out[4] = sawNaN ? 1 : 0;
}

/**
 * foldRun's clean path for a run with no fill value and no NaN, in one loop: the same lanes, the
 * same combination, and extremes of the last n mod 4 elements as foldCareful leaves them. False
 * (nothing written) when the run holds a fill value or a NaN: foldRun then takes it.
 */
function sumShortRun(data: Float64Array, off: number, stride: number, n: number, m0: number, out: Float64Array): boolean {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const whole = n - (n & 3);
  let j = 0;
  for (; j < whole; j += 4, off += 4 * stride) {
    const a = data[off], b = data[off + stride], c = data[off + 2 * stride], d = data[off + 3 * stride];
    if (a === m0 || b === m0 || c === m0 || d === m0) return false;
    s0 += a; s1 += b; s2 += c; s3 += d;
  }
  let low = Infinity;
  let high = -Infinity;
  for (let lane = 0; j < n; j++, lane++, off += stride) {
    const v = data[off];
    if (v === m0 || v !== v) return false;
    if (lane === 0) s0 += v;
    else if (lane === 1) s1 += v;
    else s2 += v;
    if (v < low) low = v;
    if (v > high) high = v;
  }
  const sum = s0 + s1 + (s2 + s3);
  if (sum !== sum) return false;
  out[0] = n;
  out[1] = sum;
  out[2] = low;
  out[3] = high;
  out[4] = 0;
  return true;
}

function inBlocks(loop: Loop<FloatLike>, data: FloatLike, off: number, stride: number, n: number, r: FoldRules, acc: Float64Array): boolean {
  if (n <= BLOCK) return loop(data, off, stride, n, r, acc); // short runs (partial selections): no loop here
  for (let j = 0; j < n; j += BLOCK) {
    if (!loop(data, off + j * stride, stride, Math.min(BLOCK, n - j), r, acc)) return false;
  }
  return true;
}

function resetAcc(acc: Float64Array): void {
  acc[0] = acc[1] = acc[2] = acc[3] = acc[RARE] = acc[NANS] = 0;
  acc[LO] = Infinity;
  acc[HI] = -Infinity;
}

/**
 * Whether a run whose values span [min, max] may hold out-of-range or masked values; `fill` also
 * tests the fill value (the optimistic fold did not).
 */
function maybeMasked(min: number, max: number, r: FoldRules, fill: boolean): boolean {
  if (min < r.lo || max > r.hi) return true;
  if (fill && r.m0 >= min && r.m0 <= max) return true;
  if (r.rest !== null) for (const m of r.rest) if (m >= min && m <= max) return true;
  return false;
}

/**
 * Every element tested against every rule, valid ones added to lane (i mod 4): for runs that hold
 * further missing values. NaN fails the range test, so valid values take one branch.
 */
function foldCareful(data: FloatLike, off: number, stride: number, n: number, r: FoldRules, acc: Float64Array): boolean {
  const { m0, lo, hi, rest } = r;
  let low = acc[LO];
  let high = acc[HI];
  for (let i = 0; i < n; i++, off += stride) {
    const v = data[off];
    if (v >= lo && v <= hi && v !== m0 && (rest === null || !rest.includes(v))) {
      acc[i & 3] += v;
      if (v < low) low = v;
      if (v > high) high = v;
    } else {
      acc[RARE]++;
      if (v !== v) acc[NANS]++;
    }
  }
  acc[LO] = low;
  acc[HI] = high;
  return true;
}
