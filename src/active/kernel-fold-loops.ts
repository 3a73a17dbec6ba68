/**
 * The loops behind foldRun (kernel-fold.ts), one copy per array type: V8 specialises element loads
 * per function, and one loop fed several array types (a server, a test run) gets slower for all.
 * Each folds `n` elements (a multiple of 4) from `off` into the accumulator `acc` (see the slots
 * below), carrying on from what it holds, so foldRun can feed a run in blocks; each returns false
 * when the optimistic assumption (no fill, no NaN) failed. Four lanes by position: the element at
 * position j of the block goes to lane j mod 4. A run's last n mod 4 elements are foldRun's: code
 * after a hot loop that runs once per call lacks type feedback when V8 compiles the loop, and
 * deoptimising there on every call cost more than the loop (seen in the M2 pass: 2 -> 6-13 ns per
 * element).
 */
import type { FloatLike, FoldRules } from "./kernel-fold.js";

/** Accumulator slots after the four lane sums: min, max, rare values (masked or NaN), NaNs. */
export const LO = 4, HI = 5, RARE = 6, NANS = 7;

/** One loop over a block of a run. */
export type Loop<T extends FloatLike> = (data: T, off: number, stride: number, n: number, r: FoldRules, acc: Float64Array) => boolean;

export interface Loops<T extends FloatLike> {
  /** Adds every element and tracks extremes. */
  fast: Loop<T>;
  /** Adds every element, no extremes; compares with the fill value. */
  sum: Loop<T>;
  /** Leaves out fill values and NaNs (and values outside [lo, hi]) group by group. */
  grouped: Loop<T>;
}

/** Optimistic fold with extremes: adds everything; false once the lanes hold a NaN. */
function fastF64(data: Float64Array, off: number, stride: number, n: number, _r: FoldRules, acc: Float64Array): boolean {
  let s0 = acc[0], s1 = acc[1], s2 = acc[2], s3 = acc[3];
  let lo = acc[LO], hi = acc[HI];
  for (let j = 0; j < n; j += 4, off += 4 * stride) {
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
  acc[0] = s0; acc[1] = s1; acc[2] = s2; acc[3] = s3;
  acc[LO] = lo; acc[HI] = hi;
  const s = s0 + s1 + s2 + s3;
  return s === s;
}

/** Optimistic sum without extremes: false once the fill value or a NaN was seen. */
function sumF64(data: Float64Array, off: number, stride: number, n: number, r: FoldRules, acc: Float64Array): boolean {
  const m0 = r.m0;
  let s0 = acc[0], s1 = acc[1], s2 = acc[2], s3 = acc[3];
  let hit = false;
  for (let j = 0; j < n; j += 4, off += 4 * stride) {
    const a = data[off], b = data[off + stride], c = data[off + 2 * stride], d = data[off + 3 * stride];
    s0 += a; s1 += b; s2 += c; s3 += d;
    if (a === m0 || b === m0 || c === m0 || d === m0) hit = true;
  }
  acc[0] = s0; acc[1] = s1; acc[2] = s2; acc[3] = s3;
  const s = s0 + s1 + s2 + s3;
  return !hit && s === s;
}

/** Grouped fold with extremes, counting rare values and NaNs; always completes. */
function groupedF64(data: Float64Array, off: number, stride: number, n: number, r: FoldRules, acc: Float64Array): boolean {
  const m0 = r.m0, rlo = r.lo, rhi = r.hi;
  let s0 = acc[0], s1 = acc[1], s2 = acc[2], s3 = acc[3];
  let lo = acc[LO], hi = acc[HI], rare = acc[RARE], nans = acc[NANS];
  for (let j = 0; j < n; j += 4, off += 4 * stride) {
    const a = data[off], b = data[off + stride], c = data[off + 2 * stride], d = data[off + 3 * stride];
    if (a === m0 || b === m0 || c === m0 || d === m0 || a !== a || b !== b || c !== c || d !== d) {
      if (a >= rlo && a <= rhi && a !== m0) {
        s0 += a;
        if (a < lo) lo = a;
        if (a > hi) hi = a;
      } else {
        rare++;
        if (a !== a) nans++;
      }
      if (b >= rlo && b <= rhi && b !== m0) {
        s1 += b;
        if (b < lo) lo = b;
        if (b > hi) hi = b;
      } else {
        rare++;
        if (b !== b) nans++;
      }
      if (c >= rlo && c <= rhi && c !== m0) {
        s2 += c;
        if (c < lo) lo = c;
        if (c > hi) hi = c;
      } else {
        rare++;
        if (c !== c) nans++;
      }
      if (d >= rlo && d <= rhi && d !== m0) {
        s3 += d;
        if (d < lo) lo = d;
        if (d > hi) hi = d;
      } else {
        rare++;
        if (d !== d) nans++;
      }
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
  acc[0] = s0; acc[1] = s1; acc[2] = s2; acc[3] = s3;
  acc[LO] = lo; acc[HI] = hi; acc[RARE] = rare; acc[NANS] = nans;
  return true;
}

/** Optimistic fold with extremes: adds everything; false once the lanes hold a NaN. */
function fastF32(data: Float32Array, off: number, stride: number, n: number, _r: FoldRules, acc: Float64Array): boolean {
  let s0 = acc[0], s1 = acc[1], s2 = acc[2], s3 = acc[3];
  let lo = acc[LO], hi = acc[HI];
  for (let j = 0; j < n; j += 4, off += 4 * stride) {
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
  acc[0] = s0; acc[1] = s1; acc[2] = s2; acc[3] = s3;
  acc[LO] = lo; acc[HI] = hi;
  const s = s0 + s1 + s2 + s3;
  return s === s;
}

/** Optimistic sum without extremes: false once the fill value or a NaN was seen. */
function sumF32(data: Float32Array, off: number, stride: number, n: number, r: FoldRules, acc: Float64Array): boolean {
  const m0 = r.m0;
  let s0 = acc[0], s1 = acc[1], s2 = acc[2], s3 = acc[3];
  let hit = false;
  for (let j = 0; j < n; j += 4, off += 4 * stride) {
    const a = data[off], b = data[off + stride], c = data[off + 2 * stride], d = data[off + 3 * stride];
    s0 += a; s1 += b; s2 += c; s3 += d;
    if (a === m0 || b === m0 || c === m0 || d === m0) hit = true;
  }
  acc[0] = s0; acc[1] = s1; acc[2] = s2; acc[3] = s3;
  const s = s0 + s1 + s2 + s3;
  return !hit && s === s;
}

/** Grouped fold with extremes, counting rare values and NaNs; always completes. */
function groupedF32(data: Float32Array, off: number, stride: number, n: number, r: FoldRules, acc: Float64Array): boolean {
  const m0 = r.m0, rlo = r.lo, rhi = r.hi;
  let s0 = acc[0], s1 = acc[1], s2 = acc[2], s3 = acc[3];
  let lo = acc[LO], hi = acc[HI], rare = acc[RARE], nans = acc[NANS];
  for (let j = 0; j < n; j += 4, off += 4 * stride) {
    const a = data[off], b = data[off + stride], c = data[off + 2 * stride], d = data[off + 3 * stride];
    if (a === m0 || b === m0 || c === m0 || d === m0 || a !== a || b !== b || c !== c || d !== d) {
      if (a >= rlo && a <= rhi && a !== m0) {
        s0 += a;
        if (a < lo) lo = a;
        if (a > hi) hi = a;
      } else {
        rare++;
        if (a !== a) nans++;
      }
      if (b >= rlo && b <= rhi && b !== m0) {
        s1 += b;
        if (b < lo) lo = b;
        if (b > hi) hi = b;
      } else {
        rare++;
        if (b !== b) nans++;
      }
      if (c >= rlo && c <= rhi && c !== m0) {
        s2 += c;
        if (c < lo) lo = c;
        if (c > hi) hi = c;
      } else {
        rare++;
        if (c !== c) nans++;
      }
      if (d >= rlo && d <= rhi && d !== m0) {
        s3 += d;
        if (d < lo) lo = d;
        if (d > hi) hi = d;
      } else {
        rare++;
        if (d !== d) nans++;
      }
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
  acc[0] = s0; acc[1] = s1; acc[2] = s2; acc[3] = s3;
  acc[LO] = lo; acc[HI] = hi; acc[RARE] = rare; acc[NANS] = nans;
  return true;
}

/** Optimistic fold with extremes: adds everything; false once the lanes hold a NaN. */
function fastInt(data: FloatLike, off: number, stride: number, n: number, _r: FoldRules, acc: Float64Array): boolean {
  let s0 = acc[0], s1 = acc[1], s2 = acc[2], s3 = acc[3];
  let lo = acc[LO], hi = acc[HI];
  for (let j = 0; j < n; j += 4, off += 4 * stride) {
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
  acc[0] = s0; acc[1] = s1; acc[2] = s2; acc[3] = s3;
  acc[LO] = lo; acc[HI] = hi;
  const s = s0 + s1 + s2 + s3;
  return s === s;
}

/** Optimistic sum without extremes: false once the fill value or a NaN was seen. */
function sumInt(data: FloatLike, off: number, stride: number, n: number, r: FoldRules, acc: Float64Array): boolean {
  const m0 = r.m0;
  let s0 = acc[0], s1 = acc[1], s2 = acc[2], s3 = acc[3];
  let hit = false;
  for (let j = 0; j < n; j += 4, off += 4 * stride) {
    const a = data[off], b = data[off + stride], c = data[off + 2 * stride], d = data[off + 3 * stride];
    s0 += a; s1 += b; s2 += c; s3 += d;
    if (a === m0 || b === m0 || c === m0 || d === m0) hit = true;
  }
  acc[0] = s0; acc[1] = s1; acc[2] = s2; acc[3] = s3;
  const s = s0 + s1 + s2 + s3;
  return !hit && s === s;
}

/** Grouped fold with extremes, counting rare values and NaNs; always completes. */
function groupedInt(data: FloatLike, off: number, stride: number, n: number, r: FoldRules, acc: Float64Array): boolean {
  const m0 = r.m0, rlo = r.lo, rhi = r.hi;
  let s0 = acc[0], s1 = acc[1], s2 = acc[2], s3 = acc[3];
  let lo = acc[LO], hi = acc[HI], rare = acc[RARE], nans = acc[NANS];
  for (let j = 0; j < n; j += 4, off += 4 * stride) {
    const a = data[off], b = data[off + stride], c = data[off + 2 * stride], d = data[off + 3 * stride];
    if (a === m0 || b === m0 || c === m0 || d === m0 || a !== a || b !== b || c !== c || d !== d) {
      if (a >= rlo && a <= rhi && a !== m0) {
        s0 += a;
        if (a < lo) lo = a;
        if (a > hi) hi = a;
      } else {
        rare++;
        if (a !== a) nans++;
      }
      if (b >= rlo && b <= rhi && b !== m0) {
        s1 += b;
        if (b < lo) lo = b;
        if (b > hi) hi = b;
      } else {
        rare++;
        if (b !== b) nans++;
      }
      if (c >= rlo && c <= rhi && c !== m0) {
        s2 += c;
        if (c < lo) lo = c;
        if (c > hi) hi = c;
      } else {
        rare++;
        if (c !== c) nans++;
      }
      if (d >= rlo && d <= rhi && d !== m0) {
        s3 += d;
        if (d < lo) lo = d;
        if (d > hi) hi = d;
      } else {
        rare++;
        if (d !== d) nans++;
      }
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
  acc[0] = s0; acc[1] = s1; acc[2] = s2; acc[3] = s3;
  acc[LO] = lo; acc[HI] = hi; acc[RARE] = rare; acc[NANS] = nans;
  return true;
}

export const F64: Loops<Float64Array> = { fast: fastF64, sum: sumF64, grouped: groupedF64 };
export const F32: Loops<Float32Array> = { fast: fastF32, sum: sumF32, grouped: groupedF32 };
/** 8- to 32-bit integers: no NaN, and sums exact below 2^53. */
export const INT: Loops<FloatLike> = { fast: fastInt, sum: sumInt, grouped: groupedInt };
