/**
 * Folding one run of elements into a single output element: the loop a whole-array or most axis
 * reductions spend their time in.
 *
 * Sums go to four lanes by the element's position in the run (j mod 4), combined as
 * (s0 + s1) + (s2 + s3) at the end. Four independent additions per step instead of one chain of
 * dependent ones is what makes the loop fast. The lane of an element depends only on where it is in
 * the run, never on which path folded it, so the sums are bit-identical whether a group of four is
 * clean or not, with or without extremes, locally and on a server.
 *
 * A run is first folded optimistically, as if it held no masked value and no NaN: every element
 * is added, and the run is checked afterwards: a NaN (or Inf - Inf) shows in the sum; a fill value,
 * further missing value or out-of-range value shows against the run's extremes (a fill outside
 * [min, max] cannot be in the run), or, when extremes are not tracked, in one flag set by a compare
 * per element. A run that fails is folded again in groups of four: a group with no fill and no NaN
 * is added without further tests, one with them goes element by element (`foldCareful`), and when
 * a range or further masks apply the run's extremes say whether to redo it element by element.
 * Data with fills in most chunks (a land mask) would pay both folds, so after a run that failed
 * the next one starts with the grouped fold; either way the bits are the same.
 *
 * Float64Array, Float32Array and the integer arrays each get their own copy of the loops: V8
 * specialises element loads per call site, and one loop fed several array types (a server, a test
 * run) gets slower for all of them.
 */
import type { NumericArray } from "./kernel.js";

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

// Accumulator slots shared with foldCareful: four lane sums, min, max, rare values, NaNs.
const LO = 4, HI = 5, RARE = 6, NANS = 7;

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
  // A range or further masks are checked against the run's extremes, so track them then.
  const ranged = r.lo !== -Infinity || r.hi !== Infinity || r.rest !== null;
  const track = extremes || ranged;
  let clean = false;
  if (!lastRunDirty) {
    if (data instanceof Float64Array) clean = track ? fastF64(data, off, stride, n, acc) : sumF64(data, off, stride, n, r.m0, acc);
    else if (data instanceof Float32Array) clean = track ? fastF32(data, off, stride, n, acc) : sumF32(data, off, stride, n, r.m0, acc);
    else clean = track ? fastInt(data, off, stride, n, acc) : sumInt(data, off, stride, n, r.m0, acc);
    // The sum is NaN when a NaN was added; extremes (when tracked) show any masked value.
    clean &&= acc[0] === acc[0] && (!track || !maybeMasked(acc[LO], acc[HI], r, true));
  }
  if (!clean) {
    resetAcc(acc);
    if (data instanceof Float64Array) groupedF64(data, off, stride, n, r, acc);
    else if (data instanceof Float32Array) groupedF32(data, off, stride, n, r, acc);
    else groupedInt(data, off, stride, n, r, acc);
    if (ranged && maybeMasked(acc[LO], acc[HI], r, false)) {
      resetAcc(acc);
      foldCareful(data, off, stride, n, r, true, acc);
    }
    lastRunDirty = acc[RARE] > 0;
  }
  const nans = acc[NANS];
  const sawNaN = !r.skipNaN && nans > 0;
  out[0] = n - acc[RARE] + (r.skipNaN ? 0 : nans);
  out[1] = sawNaN ? NaN : clean ? acc[0] : acc[0] + acc[1] + (acc[2] + acc[3]);
  out[2] = acc[LO];
  out[3] = acc[HI];
  out[4] = sawNaN ? 1 : 0;
}

/** A guess of which fold to try first (see above); it changes the speed, never the result. */
let lastRunDirty = false;

function resetAcc(acc: Float64Array): void {
  acc.fill(0);
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
 * Tests every element of `count` elements from `off`, adding valid ones to lane (i mod 4) of `acc`.
 * NaN fails the range test, so valid values take one branch and the rest another.
 */
function foldCareful(
  data: FloatLike,
  off: number,
  stride: number,
  count: number,
  r: FoldRules,
  full: boolean,
  acc: Float64Array,
): void {
  const { m0, lo, hi } = r;
  const rest = full ? r.rest : null;
  let low = acc[LO];
  let high = acc[HI];
  for (let i = 0; i < count; i++, off += stride) {
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
}

/** Optimistic fold with extremes: acc = [sum, -, -, -, min, max]; the caller checks it. */
function fastF64(data: Float64Array, off: number, stride: number, n: number, acc: Float64Array): boolean {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let lo = Infinity, hi = -Infinity;
  let j = 0;
  for (const end = n - (n & 3); j < end; j += 4, off += 4 * stride) {
    const a = data[off], b = data[off + stride], c = data[off + 2 * stride], d = data[off + 3 * stride];
    s0 += a; s1 += b; s2 += c; s3 += d;
    if (a < lo) lo = a;
    if (a > hi) hi = a;
    if (b < lo) lo = b;
    if (b > hi) hi = b;
    if (c < lo) lo = c;
    if (c > hi) hi = c;
    if (d < lo) lo = d;
    if (d > hi) hi = d;
  }
  for (let k = 0; j < n; j++, k++, off += stride) {
    const v = data[off];
    if (k === 0) s0 += v;
    else if (k === 1) s1 += v;
    else s2 += v;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  acc[0] = s0 + s1 + (s2 + s3);
  acc[LO] = lo;
  acc[HI] = hi;
  acc[RARE] = 0;
  acc[NANS] = 0;
  return true;
}

/** Optimistic sum without extremes: false when the fill value was seen. */
function sumF64(data: Float64Array, off: number, stride: number, n: number, m0: number, acc: Float64Array): boolean {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let hit = false;
  let j = 0;
  for (const end = n - (n & 3); j < end; j += 4, off += 4 * stride) {
    const a = data[off], b = data[off + stride], c = data[off + 2 * stride], d = data[off + 3 * stride];
    s0 += a; s1 += b; s2 += c; s3 += d;
    if (a === m0 || b === m0 || c === m0 || d === m0) hit = true;
  }
  for (let k = 0; j < n; j++, k++, off += stride) {
    const v = data[off];
    if (k === 0) s0 += v;
    else if (k === 1) s1 += v;
    else s2 += v;
    if (v === m0) hit = true;
  }
  acc[0] = s0 + s1 + (s2 + s3);
  acc[LO] = Infinity;
  acc[HI] = -Infinity;
  acc[RARE] = 0;
  acc[NANS] = 0;
  return !hit;
}

/** Grouped fold with extremes into acc (lanes, min, max, rare, NaNs). */
function groupedF64(data: Float64Array, off: number, stride: number, n: number, r: FoldRules, acc: Float64Array): void {
  const m0 = r.m0;
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let lo = Infinity, hi = -Infinity;
  const end = n - (n & 3);
  for (let j = 0; j < end; j += 4, off += 4 * stride) {
    const a = data[off], b = data[off + stride], c = data[off + 2 * stride], d = data[off + 3 * stride];
    if (a === m0 || b === m0 || c === m0 || d === m0 || a !== a || b !== b || c !== c || d !== d) {
      acc[0] = s0; acc[1] = s1; acc[2] = s2; acc[3] = s3; acc[LO] = lo; acc[HI] = hi;
      foldCareful(data, off, stride, 4, r, false, acc);
      s0 = acc[0]; s1 = acc[1]; s2 = acc[2]; s3 = acc[3]; lo = acc[LO]; hi = acc[HI];
      continue;
    }
    s0 += a; s1 += b; s2 += c; s3 += d;
    if (a < lo) lo = a;
    if (a > hi) hi = a;
    if (b < lo) lo = b;
    if (b > hi) hi = b;
    if (c < lo) lo = c;
    if (c > hi) hi = c;
    if (d < lo) lo = d;
    if (d > hi) hi = d;
  }
  acc[0] = s0; acc[1] = s1; acc[2] = s2; acc[3] = s3; acc[LO] = lo; acc[HI] = hi;
  foldCareful(data, off, stride, n - end, r, false, acc);
}

/** Optimistic fold with extremes: acc = [sum, -, -, -, min, max]; the caller checks it. */
function fastF32(data: Float32Array, off: number, stride: number, n: number, acc: Float64Array): boolean {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let lo = Infinity, hi = -Infinity;
  let j = 0;
  for (const end = n - (n & 3); j < end; j += 4, off += 4 * stride) {
    const a = data[off], b = data[off + stride], c = data[off + 2 * stride], d = data[off + 3 * stride];
    s0 += a; s1 += b; s2 += c; s3 += d;
    if (a < lo) lo = a;
    if (a > hi) hi = a;
    if (b < lo) lo = b;
    if (b > hi) hi = b;
    if (c < lo) lo = c;
    if (c > hi) hi = c;
    if (d < lo) lo = d;
    if (d > hi) hi = d;
  }
  for (let k = 0; j < n; j++, k++, off += stride) {
    const v = data[off];
    if (k === 0) s0 += v;
    else if (k === 1) s1 += v;
    else s2 += v;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  acc[0] = s0 + s1 + (s2 + s3);
  acc[LO] = lo;
  acc[HI] = hi;
  acc[RARE] = 0;
  acc[NANS] = 0;
  return true;
}

/** Optimistic sum without extremes: false when the fill value was seen. */
function sumF32(data: Float32Array, off: number, stride: number, n: number, m0: number, acc: Float64Array): boolean {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let hit = false;
  let j = 0;
  for (const end = n - (n & 3); j < end; j += 4, off += 4 * stride) {
    const a = data[off], b = data[off + stride], c = data[off + 2 * stride], d = data[off + 3 * stride];
    s0 += a; s1 += b; s2 += c; s3 += d;
    if (a === m0 || b === m0 || c === m0 || d === m0) hit = true;
  }
  for (let k = 0; j < n; j++, k++, off += stride) {
    const v = data[off];
    if (k === 0) s0 += v;
    else if (k === 1) s1 += v;
    else s2 += v;
    if (v === m0) hit = true;
  }
  acc[0] = s0 + s1 + (s2 + s3);
  acc[LO] = Infinity;
  acc[HI] = -Infinity;
  acc[RARE] = 0;
  acc[NANS] = 0;
  return !hit;
}

/** Grouped fold with extremes into acc (lanes, min, max, rare, NaNs). */
function groupedF32(data: Float32Array, off: number, stride: number, n: number, r: FoldRules, acc: Float64Array): void {
  const m0 = r.m0;
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let lo = Infinity, hi = -Infinity;
  const end = n - (n & 3);
  for (let j = 0; j < end; j += 4, off += 4 * stride) {
    const a = data[off], b = data[off + stride], c = data[off + 2 * stride], d = data[off + 3 * stride];
    if (a === m0 || b === m0 || c === m0 || d === m0 || a !== a || b !== b || c !== c || d !== d) {
      acc[0] = s0; acc[1] = s1; acc[2] = s2; acc[3] = s3; acc[LO] = lo; acc[HI] = hi;
      foldCareful(data, off, stride, 4, r, false, acc);
      s0 = acc[0]; s1 = acc[1]; s2 = acc[2]; s3 = acc[3]; lo = acc[LO]; hi = acc[HI];
      continue;
    }
    s0 += a; s1 += b; s2 += c; s3 += d;
    if (a < lo) lo = a;
    if (a > hi) hi = a;
    if (b < lo) lo = b;
    if (b > hi) hi = b;
    if (c < lo) lo = c;
    if (c > hi) hi = c;
    if (d < lo) lo = d;
    if (d > hi) hi = d;
  }
  acc[0] = s0; acc[1] = s1; acc[2] = s2; acc[3] = s3; acc[LO] = lo; acc[HI] = hi;
  foldCareful(data, off, stride, n - end, r, false, acc);
}

/** Optimistic fold with extremes: acc = [sum, -, -, -, min, max]; the caller checks it. */
function fastInt(data: FloatLike, off: number, stride: number, n: number, acc: Float64Array): boolean {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let lo = Infinity, hi = -Infinity;
  let j = 0;
  for (const end = n - (n & 3); j < end; j += 4, off += 4 * stride) {
    const a = data[off], b = data[off + stride], c = data[off + 2 * stride], d = data[off + 3 * stride];
    s0 += a; s1 += b; s2 += c; s3 += d;
    if (a < lo) lo = a;
    if (a > hi) hi = a;
    if (b < lo) lo = b;
    if (b > hi) hi = b;
    if (c < lo) lo = c;
    if (c > hi) hi = c;
    if (d < lo) lo = d;
    if (d > hi) hi = d;
  }
  for (let k = 0; j < n; j++, k++, off += stride) {
    const v = data[off];
    if (k === 0) s0 += v;
    else if (k === 1) s1 += v;
    else s2 += v;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  acc[0] = s0 + s1 + (s2 + s3);
  acc[LO] = lo;
  acc[HI] = hi;
  acc[RARE] = 0;
  acc[NANS] = 0;
  return true;
}

/** Optimistic sum without extremes: false when the fill value was seen. */
function sumInt(data: FloatLike, off: number, stride: number, n: number, m0: number, acc: Float64Array): boolean {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let hit = false;
  let j = 0;
  for (const end = n - (n & 3); j < end; j += 4, off += 4 * stride) {
    const a = data[off], b = data[off + stride], c = data[off + 2 * stride], d = data[off + 3 * stride];
    s0 += a; s1 += b; s2 += c; s3 += d;
    if (a === m0 || b === m0 || c === m0 || d === m0) hit = true;
  }
  for (let k = 0; j < n; j++, k++, off += stride) {
    const v = data[off];
    if (k === 0) s0 += v;
    else if (k === 1) s1 += v;
    else s2 += v;
    if (v === m0) hit = true;
  }
  acc[0] = s0 + s1 + (s2 + s3);
  acc[LO] = Infinity;
  acc[HI] = -Infinity;
  acc[RARE] = 0;
  acc[NANS] = 0;
  return !hit;
}

/** Grouped fold with extremes into acc (lanes, min, max, rare, NaNs). */
function groupedInt(data: FloatLike, off: number, stride: number, n: number, r: FoldRules, acc: Float64Array): void {
  const m0 = r.m0;
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let lo = Infinity, hi = -Infinity;
  const end = n - (n & 3);
  for (let j = 0; j < end; j += 4, off += 4 * stride) {
    const a = data[off], b = data[off + stride], c = data[off + 2 * stride], d = data[off + 3 * stride];
    if (a === m0 || b === m0 || c === m0 || d === m0 || a !== a || b !== b || c !== c || d !== d) {
      acc[0] = s0; acc[1] = s1; acc[2] = s2; acc[3] = s3; acc[LO] = lo; acc[HI] = hi;
      foldCareful(data, off, stride, 4, r, false, acc);
      s0 = acc[0]; s1 = acc[1]; s2 = acc[2]; s3 = acc[3]; lo = acc[LO]; hi = acc[HI];
      continue;
    }
    s0 += a; s1 += b; s2 += c; s3 += d;
    if (a < lo) lo = a;
    if (a > hi) hi = a;
    if (b < lo) lo = b;
    if (b > hi) hi = b;
    if (c < lo) lo = c;
    if (c > hi) hi = c;
    if (d < lo) lo = d;
    if (d > hi) hi = d;
  }
  acc[0] = s0; acc[1] = s1; acc[2] = s2; acc[3] = s3; acc[LO] = lo; acc[HI] = hi;
  foldCareful(data, off, stride, n - end, r, false, acc);
}
