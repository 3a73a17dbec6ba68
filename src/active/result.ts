/**
 * From partials to what the user asked for. Means and variances are derived here, at the very end,
 * so partials from chunks, servers and files merge without loss.
 */
import type { Packing } from "./cf.js";
import { isBigintPartials, type Partials } from "./partials.js";

export type Statistic = "mean" | "min" | "max" | "sum" | "count" | "variance" | "std";

export type ResultValue = number | bigint | null;

export interface ReductionResult {
  op: Statistic;
  /** Scalar for a full reduction; a flat C-order array for partial reductions. */
  value: ResultValue | ResultValue[];
  /** Valid (unmasked) elements behind each value. */
  count: number | number[];
  /** Shape of the result ([] for a scalar). */
  shape: number[];
  /** numpy-style dtype name of `value`. */
  dtype: string;
  /** True where no valid element contributed: the value is null there, never 0 or ±max. */
  missing: boolean | boolean[];
  /** Chunks read and bytes moved to compute it (from a server: bytes of the answers received). */
  chunks: number;
  bytesRead: number;
  /** Server reductions: stored bytes of the chunks the servers reduced (what a local run would read). */
  bytesReduced?: number;
  /** With `components: true`: the merged partials, for aggregating across files. */
  components?: Partials;
}

export interface FinalizeOptions {
  /** Unpack values (scale/offset) before reporting. */
  packing?: Packing;
  /** Delta degrees of freedom for variance/std (numpy's ddof). Default 0. */
  ddof?: number;
}

function isFloatDtype(dtype: string): boolean {
  return dtype.startsWith("float");
}

/** dtype of a statistic's value, numpy-like. */
export function resultDtype(op: Statistic, dtype: string, packed: boolean): string {
  if (op === "count") return "int64";
  if (op === "mean" || op === "variance" || op === "std" || packed) return "float64";
  if (op === "sum") {
    if (isFloatDtype(dtype)) return "float64";
    return dtype.startsWith("uint") ? "uint64" : "int64";
  }
  return dtype; // min, max keep the data type
}

function safeNumber(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

export function finalize(
  op: Statistic,
  p: Partials,
  dtype: string,
  options: FinalizeOptions = {},
): Pick<ReductionResult, "op" | "value" | "count" | "shape" | "dtype" | "missing"> {
  const n = p.count.length;
  const values: ResultValue[] = new Array(n);
  const missing: boolean[] = new Array(n);
  const big = isBigintPartials(p);
  const scale = options.packing?.scale ?? 1;
  const offset = options.packing?.offset ?? 0;
  const packed = options.packing !== undefined;
  const ddof = options.ddof ?? 0;
  if ((op === "min" || op === "max") && p.extremes === false) {
    throw new Error(`${op} needs extremes: these partials were reduced without min/max`);
  }
  for (let i = 0; i < n; i++) {
    const count = p.count[i];
    missing[i] = count === 0;
    if (op === "count") {
      values[i] = count;
      continue;
    }
    if (count === 0) {
      values[i] = null;
      continue;
    }
    const nan = p.nan[i] === 1;
    switch (op) {
      case "sum": {
        const s = p.sum[i];
        if (nan) values[i] = NaN;
        else if (packed) values[i] = scale * Number(s) + offset * count;
        else values[i] = typeof s === "bigint" ? safeNumber(s) : s;
        break;
      }
      case "mean": {
        const mean = nan ? NaN : Number(p.sum[i]) / count;
        values[i] = packed ? scale * mean + offset : mean;
        break;
      }
      case "min":
      case "max": {
        const useMin = (op === "min") === scale >= 0;
        const v = useMin ? p.min[i] : p.max[i];
        if (nan) values[i] = NaN;
        else if (packed) values[i] = scale * Number(v) + offset;
        else values[i] = big ? safeNumber(v as bigint) : (v as number);
        break;
      }
      case "variance":
      case "std": {
        if (!p.m2) throw new Error(`${op} needs moments: reduce with moments enabled`);
        // NaN in the data, or no degrees of freedom left: NaN, as numpy gives.
        const dof = count - ddof;
        const variance = nan || dof <= 0 ? NaN : (p.m2[i] / dof) * scale * scale;
        values[i] = op === "std" ? Math.sqrt(variance) : variance;
        break;
      }
    }
  }
  const scalar = p.shape.length === 0;
  return {
    op,
    value: scalar ? values[0] : values,
    count: scalar ? p.count[0] : Array.from(p.count),
    shape: [...p.shape],
    dtype: resultDtype(op, dtype, packed),
    missing: scalar ? missing[0] : missing,
  };
}
