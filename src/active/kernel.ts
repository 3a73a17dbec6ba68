/**
 * The chunk kernel: a pure function from one decoded chunk and the selection inside it to partials
 * for the chunk's block of the output. The local engine, the server and the tests all call this, so
 * local and remote results agree by construction.
 *
 * Missing data follows CF as netCDF4-python/numpy.ma apply it: values equal to the fill value or to
 * any missing value, or outside [validMin, validMax], are left out. NaN propagates (numpy) unless
 * `skipNaN`; a NaN fill or missing value masks NaNs.
 */
import { CodecError } from "../errors.js";
import { walkOuter } from "../util/odometer.js";
import { stridesOf } from "../util/strides.js";
import { foldRun, SIMD_MIN_RUN, type FloatLike, type FoldRules } from "./kernel-fold.js";
import { SIMD_MAX_ROWS, simdRowSumsF64 } from "./kernel-simd.js";
import { foldInt64, int64Words, maskWords } from "./kernel-int64.js";
import { m2Run, m2Scatter } from "./kernel-moments.js";
import { emptyPartials, type Partials } from "./partials.js";
import type { DimPiece } from "./plan.js";

export type NumericArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

export interface MissingRules {
  fillValue?: number | bigint;
  missingValues?: readonly (number | bigint)[];
  validMin?: number | bigint;
  validMax?: number | bigint;
  skipNaN?: boolean;
}

export interface ChunkSelection {
  /** Decoded chunk, `prod(chunkShape)` elements. */
  data: NumericArray;
  chunkShape: readonly number[];
  /** Element strides of `data`; default C order (zarrita's decoded chunks carry theirs). */
  strides?: readonly number[];
  order?: "C" | "F";
  /** One piece per dimension: what is selected inside this chunk. */
  pieces: readonly DimPiece[];
  /** Per dimension: true when it is reduced over or dropped (absent from the output block). */
  collapsed: readonly boolean[];
}

export interface KernelOptions {
  missing?: MissingRules;
  /** Also compute M2 (for variance/std); costs a second pass. */
  moments?: boolean;
  /**
   * Track min/max (default true). Mean, sum and count do not need them; without them the fold of a
   * run is one add per element. Partials then say `extremes: false` (64-bit integer data keeps them).
   */
  extremes?: boolean;
}

type RunCallback = (offset: number, stride: number, n: number, out: number, outStride: number) => void;

interface Runs {
  /** Calls `run(offset, stride, n, outIndex, outStride)` for each innermost run of elements. */
  forEach(run: RunCallback): void;
  /**
   * The same runs as groups of `rows` rows, `rowStep` apart, each of `n` contiguous elements into
   * one output element, row r into `out + r * outRowStep`; false (nothing called) when the runs are
   * not contiguous rows so grouped.
   */
  forEachRows(group: (offset: number, rows: number, rowStep: number, n: number, out: number, outRowStep: number) => void): boolean;
  blockShape: number[];
}

/**
 * Decomposes the in-chunk selection into runs along the innermost dimension. Dimensions that walk
 * memory and the output in lockstep are fused first (a whole 25³ chunk is one run of 15,625
 * elements, not 625 runs of 25): the per-run bookkeeping, not the arithmetic, is what a small
 * chunk costs.
 */
function runsOf(sel: ChunkSelection): Runs {
  const ndim = sel.pieces.length;
  const strides = sel.strides ?? stridesOf(sel.chunkShape, sel.order ?? "C");
  const blockShape: number[] = [];
  const outStrides = new Array<number>(ndim).fill(0);
  for (let d = 0; d < ndim; d++) if (!sel.collapsed[d]) blockShape.push(sel.pieces[d].count);
  let s = 1;
  for (let d = ndim - 1; d >= 0; d--) {
    if (!sel.collapsed[d]) {
      outStrides[d] = s;
      s *= sel.pieces[d].count;
    }
  }
  // Fused dimensions, outermost first: element count, step in `data`, step in the output.
  let base = 0;
  const counts: number[] = [];
  const steps: number[] = [];
  const outSteps: number[] = [];
  let empty = false;
  for (let d = 0; d < ndim; d++) {
    const p = sel.pieces[d];
    if (p.count === 0) empty = true;
    base += p.localStart * strides[d];
    if (p.count === 1) continue; // contributes its offset only
    const step = p.step * strides[d];
    const k = counts.length - 1;
    if (k >= 0 && steps[k] === p.count * step && outSteps[k] === p.count * outStrides[d]) {
      counts[k] *= p.count;
      steps[k] = step;
      outSteps[k] = outStrides[d];
    } else {
      counts.push(p.count);
      steps.push(step);
      outSteps.push(outStrides[d]);
    }
  }
  return {
    blockShape,
    forEachRows(group) {
      const last = counts.length - 1;
      if (empty || last < 1 || steps[last] !== 1 || outSteps[last] !== 0) return false;
      const [rows, rowStep, n, outRowStep] = [counts[last - 1], steps[last - 1], counts[last], outSteps[last - 1]];
      walkOuter(counts, steps, outSteps, last - 1, base, 0, (offset, out) => group(offset, rows, rowStep, n, out, outRowStep));
      return true;
    },
    forEach(run) {
      if (empty) return;
      const last = counts.length - 1;
      if (last < 0) return run(base, 1, 1, 0, 0);
      const [innerStep, innerOut, n] = [steps[last], outSteps[last], counts[last]];
      walkOuter(counts, steps, outSteps, last, base, 0, (offset, out) => run(offset, innerStep, n, out, innerOut));
    },
  };
}

/** Missing-data rules as the float folds test them. */
export function foldRulesOf(rules: MissingRules): FoldRules {
  const masks = [rules.fillValue, ...(rules.missingValues ?? [])]
    .filter((v) => v !== undefined)
    .map(Number);
  const skipNaN = (rules.skipNaN ?? false) || masks.some((v) => Number.isNaN(v));
  const exact = masks.filter((v) => !Number.isNaN(v));
  const m0 = exact.length > 0 ? exact[0] : NaN; // NaN never equals: a no-op test
  const rest = exact.slice(1);
  // A NaN bound masks nothing (as before the range test became `lo <= v <= hi`).
  const lo = rules.validMin === undefined || Number.isNaN(Number(rules.validMin)) ? -Infinity : Number(rules.validMin);
  const hi = rules.validMax === undefined || Number.isNaN(Number(rules.validMax)) ? Infinity : Number(rules.validMax);
  return { m0, lo, hi, rest: rest.length > 0 ? rest : null, skipNaN };
}

export function reduceChunk(sel: ChunkSelection, options: KernelOptions = {}): Partials {
  const runs = runsOf(sel);
  const big = sel.data instanceof BigInt64Array || sel.data instanceof BigUint64Array;
  const partials = emptyPartials(runs.blockShape, big, options.moments ?? false, big || options.extremes !== false);
  if (big) reduceBigint(sel.data as BigInt64Array | BigUint64Array, runs, partials, options.missing ?? {});
  else reduceNumber(sel.data as FloatLike, runs, partials, options);
  return partials;
}

function reduceNumber(
  data: FloatLike,
  runs: Runs,
  p: Partials,
  options: KernelOptions,
): void {
  const foldRules = foldRulesOf(options.missing ?? {});
  const count = p.count;
  const sum = p.sum as Float64Array;
  const min = p.min as Float64Array;
  const max = p.max as Float64Array;
  const nan = p.nan;
  const fold = new Float64Array(5);
  const scratch = new Float64Array(8);
  const extremes = options.extremes !== false;
  const run: RunCallback = (off, stride, n, o, ostride) => {
    if (ostride === 0) {
      // The run collapses into one output element (whole-array and most axis reductions): fold it
      // in a top-level function whose state is all locals, then write once.
      foldRun(data, off, stride, n, foldRules, extremes, scratch, fold);
      count[o] += fold[0];
      if (fold[4]) {
        nan[o] = 1;
        sum[o] = NaN;
      } else {
        sum[o] += fold[1];
      }
      if (fold[2] < min[o]) min[o] = fold[2];
      if (fold[3] > max[o]) max[o] = fold[3];
      return;
    }
    scatterRun(data, off, stride, n, o, ostride, foldRules, extremes, p);
  };
  // Short rows (a chunk cut by the selection's last dimension) summed by SIMD a group at a time.
  const rows = !extremes && foldRules.lo === -Infinity && foldRules.hi === Infinity && foldRules.rest === null && data instanceof Float64Array;
  if (!(rows && runs.forEachRows((off, k, step, n, o, ostep) => foldRows(data, off, k, step, n, o, ostep, foldRules.m0, p, run)))) runs.forEach(run);
  if (!p.m2) return;
  const m2 = p.m2;
  runs.forEach((off, stride, n, o, ostride) => {
    if (ostride === 0) m2[o] += m2Run(data, off, stride, n, sum[o] / count[o], foldRules, scratch);
    else m2Scatter(data, off, stride, n, o, ostride, foldRules, count, sum, m2);
  });
}

/**
 * `rows` rows of `n` contiguous float64 into outputs `o + r * ostep`: by SIMD in groups (the same
 * sums, bit for bit, as foldRun's short-run path would make row by row), else row by row through
 * `run`. Only for mean/sum/count without range rules: min/max then come from the rows' last n mod 4
 * elements, as the short-run path leaves them.
 */
function foldRows(data: Float64Array, off: number, rows: number, step: number, n: number, o: number, ostep: number, m0: number, p: Partials, run: RunCallback): void {
  if (n >= SIMD_MIN_RUN || n < 4) {
    for (let r = 0; r < rows; r++) run(off + r * step, 1, n, o + r * ostep, 0);
    return;
  }
  const count = p.count;
  const sum = p.sum as Float64Array;
  const min = p.min as Float64Array;
  const max = p.max as Float64Array;
  const whole = n - (n & 3);
  for (let first = 0; first < rows; first += SIMD_MAX_ROWS) {
    const k = Math.min(SIMD_MAX_ROWS, rows - first);
    const at = off + first * step;
    const sums = simdRowSumsF64(data, at, k, step, n, m0);
    let clean = sums !== undefined && sums !== null;
    for (let r = 0; clean && r < k; r++) clean = sums![r] === sums![r];
    if (!clean) {
      for (let r = 0; r < k; r++) run(at + r * step, 1, n, o + (first + r) * ostep, 0);
      continue;
    }
    for (let r = 0; r < k; r++) {
      const out = o + (first + r) * ostep;
      count[out] += n;
      sum[out] += sums![r];
      const row = at + r * step;
      for (let j = whole; j < n; j++) {
        const v = data[row + j];
        if (v < min[out]) min[out] = v;
        if (v > max[out]) max[out] = v;
      }
    }
  }
}

/**
 * A run whose elements go to successive output elements (a time-mean map walks rows of the map):
 * one test for valid values (NaN fails the range test), then the rare cases apart. Top-level and
 * closure-free for the same reason as foldRun; each output element still sums in run order.
 */
function scatterRun(data: FloatLike, off: number, stride: number, n: number, o: number, ostride: number, r: FoldRules, extremes: boolean, p: Partials): void {
  const { m0, lo, hi, rest, skipNaN } = r;
  const count = p.count;
  const sum = p.sum as Float64Array;
  const min = p.min as Float64Array;
  const max = p.max as Float64Array;
  if (!extremes) {
    // A time-mean map: two of the four read-modify-writes per element fewer.
    for (let j = 0; j < n; j++, off += stride, o += ostride) {
      const v = data[off];
      if (v >= lo && v <= hi && v !== m0 && (rest === null || !rest.includes(v))) {
        count[o]++;
        sum[o] += v;
      } else if (v !== v && !skipNaN) {
        p.nan[o] = 1;
        count[o]++;
        sum[o] = NaN;
      }
    }
    return;
  }
  for (let j = 0; j < n; j++, off += stride, o += ostride) {
    const v = data[off];
    if (v >= lo && v <= hi && v !== m0 && (rest === null || !rest.includes(v))) {
      count[o]++;
      sum[o] += v;
      if (v < min[o]) min[o] = v;
      if (v > max[o]) max[o] = v;
    } else if (v !== v && !skipNaN) {
      p.nan[o] = 1;
      count[o]++;
      sum[o] = NaN;
    }
  }
}

function reduceBigint(data: BigInt64Array | BigUint64Array, runs: Runs, p: Partials, rules: MissingRules): void {
  const masks = [rules.fillValue, ...(rules.missingValues ?? [])]
    .filter((v): v is number | bigint => v !== undefined && !(typeof v === "number" && !Number.isInteger(v)))
    .map((v) => BigInt(v));
  // Bounds compared as numbers would round; compare exactly when they are integers.
  const lo = rules.validMin === undefined ? undefined : toBigBound(rules.validMin, "ceil");
  const hi = rules.validMax === undefined ? undefined : toBigBound(rules.validMax, "floor");
  const count = p.count;
  const sum = p.sum as bigint[];
  const min = p.min as bigint[];
  const max = p.max as bigint[];
  const words = int64Words(data);
  const signed = data instanceof BigInt64Array;
  const fold = new Float64Array(4);
  const [maskHigh, maskLow] = maskWords(masks[0]);
  const others = masks.slice(1);
  runs.forEach((off, stride, n, o, ostride) => {
    // A run into one output element: exact float64 words when the values are small enough, and
    // the values' span says no other mask or bound can apply.
    if (ostride === 0 && words && foldInt64(words, signed, off, stride, n, maskHigh, maskLow, fold) && fold[3] < n) {
      const low = BigInt(fold[1]);
      const high = BigInt(fold[2]);
      const clean =
        (lo === undefined || low >= lo) && (hi === undefined || high <= hi) && !others.some((m) => m >= low && m <= high);
      if (clean) {
        count[o] += n - fold[3];
        sum[o] += BigInt(fold[0]);
        if (min[o] === undefined || low < min[o]) min[o] = low;
        if (max[o] === undefined || high > max[o]) max[o] = high;
        return;
      }
    }
    for (let j = 0; j < n; j++, off += stride, o += ostride) {
      const v = data[off];
      if ((lo !== undefined && v < lo) || (hi !== undefined && v > hi) || masks.includes(v)) continue;
      count[o]++;
      sum[o] += v;
      if (min[o] === undefined || v < min[o]) min[o] = v;
      if (max[o] === undefined || v > max[o]) max[o] = v;
    }
  });
  if (!p.m2) return;
  const m2 = p.m2;
  runs.forEach((off, stride, n, o, ostride) => {
    for (let j = 0; j < n; j++, off += stride, o += ostride) {
      const v = data[off];
      if ((lo !== undefined && v < lo) || (hi !== undefined && v > hi) || masks.includes(v)) continue;
      const d = Number(v) - Number(sum[o]) / count[o];
      m2[o] += d * d;
    }
  });
}

function toBigBound(v: number | bigint, round: "ceil" | "floor"): bigint {
  if (typeof v === "bigint") return v;
  if (!Number.isFinite(v)) throw new Error(`non-finite bound ${v} for 64-bit integer data`);
  return BigInt(round === "ceil" ? Math.ceil(v) : Math.floor(v));
}

/**
 * A decoded chunk must hold exactly the elements its shape says. zarrita views whatever bytes the
 * codecs produced, so a chunk that inflates short (damaged, or lying metadata) would otherwise be
 * reduced with elements read past its end: garbage, not an error.
 */
export function checkDecodedChunk(data: { length: number }, shape: readonly number[], chunkKey: string): void {
  const expected = shape.reduce((a, b) => a * b, 1);
  if (data.length !== expected) {
    throw new CodecError(`decoded ${data.length} elements, the chunk's shape [${shape.join(", ")}] holds ${expected}`, "pipeline", chunkKey);
  }
}

