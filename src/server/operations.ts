/**
 * The operations: decoded chunk bytes + a validated request → the response fields Reductionist
 * returns. Every reduction goes through the chunk kernel (`reduceChunk`), so the server and the
 * local engine agree by construction; this module only shapes the kernel's partials into
 * Reductionist's wire values:
 *
 * - count: dtype int64, `bytes` = the counts; shape [] and count [n] when reducing over all axes.
 * - sum/min/max: `bytes` in the request dtype (sums of 32-bit and 64-bit integers wrap like
 *   Rust's and numpy's integer arithmetic), `count` per output element.
 * - min/max of nothing: the dtype's largest/smallest value, as Reductionist's fold starts there.
 * - NaN: propagates like numpy (Reductionist panics).
 * - select: the selected elements; `count` is [non-missing]. F-ordered input is returned in F
 *   order, like Reductionist; so are the per-element results of `axis: []`.
 * - moments (our extension): count, sum, min, max, M2 and NaN flags per output element;
 *   `option_m2: false` / `option_extremes: false` leave M2 / min and max out (empty byte strings).
 *
 * Extras: int8/int16/uint8/uint16 sum into int64/uint64 (no overflow); float16 data are
 * reduced and returned as float32.
 */
import { stridesOf } from "../util/strides.js";
import { halfToNumber } from "../refs/fill.js";
import { RequestError } from "../errors.js";
import { reduceChunk, type KernelOptions, type NumericArray } from "../active/kernel.js";
import { type Partials } from "../active/partials.js";
import { planReduction, type ReducePlan } from "../active/engine.js";
import type { DimPiece } from "../active/plan.js";
import { ITEM_SIZE, type Dtype, type ReductionRequest } from "./request.js";

export interface OperationResult {
  /** Little-endian values (Reductionist answers in its native order, little on every host we run). */
  bytes: Uint8Array;
  dtype: string;
  shape: number[];
  count: number[];
  /** Only for `moments`. */
  moments?: MomentsFields;
}

export interface MomentsFields {
  /** float64 sums, or decimal strings for int64/uint64 data (exact, unbounded). */
  sum: Uint8Array | string[];
  sum_dtype: "float64" | "bigint";
  min: Uint8Array;
  max: Uint8Array;
  m2: Uint8Array;
  nan: Uint8Array;
}

/** The dtype values come back in: float16 widens to float32. */
export function valueDtype(dtype: Dtype): Exclude<Dtype, "float16"> {
  return dtype === "float16" ? "float32" : dtype;
}

function sumDtype(dtype: Dtype): string {
  if (dtype === "int8" || dtype === "int16") return "int64";
  if (dtype === "uint8" || dtype === "uint16") return "uint64";
  return valueDtype(dtype);
}


/** Decoded bytes as typed values in host (little-endian) order. */
export function typedValues(bytes: Uint8Array, dtype: Dtype, byteOrder: "big" | "little"): NumericArray {
  const item = ITEM_SIZE[dtype];
  if (bytes.length % item !== 0) {
    throw new RequestError("request data is not valid", 400, [`data of ${bytes.length} bytes is not a whole number of ${dtype}`]);
  }
  const swap = byteOrder === "big" && item > 1;
  // A view when the bytes are aligned and need no swap (the kernel only reads them); otherwise a
  // copy, which is aligned and ours to swap. Skipping the copy saves a chunk-sized allocation per request.
  const copy = swap || bytes.byteOffset % item !== 0 ? new Uint8Array(bytes) : bytes;
  if (swap) {
    for (let i = 0; i < copy.length; i += item) copy.subarray(i, i + item).reverse();
  }
  const b = copy.buffer;
  const at = copy.byteOffset;
  const n = copy.length / item;
  switch (dtype) {
    case "int8": return new Int8Array(b, at, n);
    case "uint8": return new Uint8Array(b, at, n);
    case "int16": return new Int16Array(b, at, n);
    case "uint16": return new Uint16Array(b, at, n);
    case "int32": return new Int32Array(b, at, n);
    case "uint32": return new Uint32Array(b, at, n);
    case "int64": return new BigInt64Array(b, at, n);
    case "uint64": return new BigUint64Array(b, at, n);
    case "float32": return new Float32Array(b, at, n);
    case "float64": return new Float64Array(b, at, n);
    case "float16": {
      const half = new Uint16Array(b, at, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToNumber(half[i]);
      return out;
    }
  }
}

/** Values as little-endian bytes of `dtype`; integer stores wrap modulo 2^bits like Rust and numpy. */
function writeValues(dtype: string, values: ArrayLike<number | bigint>): Uint8Array {
  const n = values.length;
  const Typed = {
    int8: Int8Array, uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array, int32: Int32Array,
    uint32: Uint32Array, float32: Float32Array, float64: Float64Array,
  }[dtype];
  if (Typed) {
    const a = new Typed(n);
    for (let i = 0; i < n; i++) a[i] = Number(values[i]);
    return new Uint8Array(a.buffer);
  }
  if (dtype === "int64" || dtype === "uint64") {
    const a = dtype === "int64" ? new BigInt64Array(n) : new BigUint64Array(n);
    for (let i = 0; i < n; i++) {
      const v = values[i];
      a[i] = typeof v === "bigint" ? v : BigInt(Number.isFinite(v) ? Math.trunc(v) : 0);
    }
    return new Uint8Array(a.buffer);
  }
  throw new Error(`no writer for ${dtype}`);
}

const LIMITS: Record<string, [number | bigint, number | bigint]> = {
  int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535],
  int32: [-(2 ** 31), 2 ** 31 - 1], uint32: [0, 2 ** 32 - 1],
  int64: [-(2n ** 63n), 2n ** 63n - 1n], uint64: [0n, 2n ** 64n - 1n],
  float32: [-3.4028234663852886e38, 3.4028234663852886e38], float64: [-Number.MAX_VALUE, Number.MAX_VALUE],
};

/** Reorders a C-order block into F order (Reductionist's element order for F-ordered output). */
function toFortran<T>(values: ArrayLike<T>, shape: readonly number[]): T[] {
  const n = values.length;
  const out = new Array<T>(n);
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    let f = 0;
    let s = 1;
    for (let d = 0; d < shape.length; d++) (f += idx[d] * s), (s *= shape[d]);
    out[f] = values[i];
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

/** Runs the request's operation over one decoded chunk. */
export function runOperation(req: ReductionRequest, decoded: Uint8Array): OperationResult {
  const data = typedValues(decoded, req.dtype, req.byteOrder);
  const shape = req.shape ?? [data.length];
  const expected = shape.reduce((a, b) => a * b, 1);
  if (data.length !== expected) {
    throw new RequestError("request data is not valid", 400, [
      `Raw data size must be equal to the product of shape indices and dtype size in bytes (${data.length} elements, shape [${shape}])`,
    ]);
  }
  const { plan, pieces, kernel } = chunkPlan(req, shape);
  const reduceAll = req.axis === undefined;
  const partials = reduceChunk({ data, chunkShape: shape, order: req.order, pieces, collapsed: plan.collapsed }, kernel);
  const fortran = isFortranOutput(req, plan);
  const ordered = <T>(values: ArrayLike<T>): ArrayLike<T> => (fortran ? toFortran(values, plan.outShape) : values);
  const counts = Array.from(ordered(partials.count));
  const outShape = reduceAll && req.operation !== "select" ? [] : plan.outShape;
  const vdtype = valueDtype(req.dtype);

  if (req.operation === "select") {
    // With axis [] every element is its own output: min holds the value (or NaN, or nothing when masked).
    const total = counts.reduce((a, b) => a + b, 0);
    const values = ordered(selectedValues(data, pieces, shape, req.order));
    return { bytes: writeValues(vdtype, values), dtype: vdtype, shape: plan.outShape, count: [total] };
  }
  const countOut = reduceAll ? [counts.reduce((a, b) => a + b, 0)] : counts;
  switch (req.operation) {
    case "count":
      return { bytes: writeValues("int64", countOut), dtype: "int64", shape: outShape, count: countOut };
    case "sum": {
      const dt = sumDtype(req.dtype);
      const sums = ordered(Array.from(partials.sum as ArrayLike<number | bigint>));
      return { bytes: writeValues(dt, sums), dtype: dt, shape: outShape, count: countOut };
    }
    case "min":
    case "max": {
      const which = req.operation;
      const values = Array.from(partials[which] as ArrayLike<number | bigint | undefined>, (v, i) => {
        if (partials.nan[i]) return NaN;
        if (partials.count[i] === 0 || v === undefined) return LIMITS[vdtype][which === "min" ? 1 : 0];
        return v;
      });
      return { bytes: writeValues(vdtype, ordered(values)), dtype: vdtype, shape: outShape, count: countOut };
    }
    case "moments":
      return momentsResult(req, partials, plan.outShape, counts);
  }
}

/** How one chunk of `shape` is reduced: the plan, the kernel's pieces and options (shared with the worker path). */
export function chunkPlan(req: ReductionRequest, shape: number[]): { plan: ReducePlan; pieces: DimPiece[]; kernel: KernelOptions } {
  const selection = req.selection?.map(([start, stop, step]) => ({ start, stop, step }));
  const plan = planReduction(shape, selection, req.operation === "select" ? [] : req.axis ?? null);
  const pieces: DimPiece[] = plan.slab.map((r) => ({ chunk: 0, localStart: r.start, step: r.step, count: r.count, outStart: 0 }));
  const moments = req.operation === "moments";
  // A moments client that needs no M2 or min/max (a mean) says so; the kernel then skips them.
  const kernel: KernelOptions = { missing: req.missing, moments: moments && req.m2, extremes: !moments || req.extremes };
  return { plan, pieces, kernel };
}

/** Whether the answer's elements are reordered to F order (Reductionist's order for F-ordered per-element output). */
export function isFortranOutput(req: ReductionRequest, plan: ReducePlan): boolean {
  return req.order === "F" && plan.outShape.length > 1 && (req.operation === "select" || req.axis?.length === 0);
}

/** A moments answer from the chunk's partials (counts already in output order). */
export function momentsResult(req: ReductionRequest, partials: Partials, outShape: number[], counts: number[] = Array.from(partials.count)): OperationResult {
  const vdtype = valueDtype(req.dtype);
  return { bytes: new Uint8Array(0), dtype: vdtype, shape: outShape, count: counts, moments: momentsOf(partials, vdtype) };
}

function momentsOf(p: Partials, dtype: string): MomentsFields {
  const big = Array.isArray(p.sum);
  const extreme = (values: ArrayLike<number | bigint | undefined>) =>
    writeValues(dtype, Array.from(values, (v) => (v === undefined ? (big ? 0n : 0) : v)));
  return {
    sum: big ? (p.sum as bigint[]).map(String) : new Uint8Array((p.sum as Float64Array).slice().buffer),
    sum_dtype: big ? "bigint" : "float64",
    // Empty byte strings for what was not asked for.
    min: p.extremes === false ? new Uint8Array(0) : extreme(p.min as ArrayLike<number | bigint | undefined>),
    max: p.extremes === false ? new Uint8Array(0) : extreme(p.max as ArrayLike<number | bigint | undefined>),
    m2: p.m2 ? new Uint8Array(p.m2.slice().buffer) : new Uint8Array(0),
    nan: p.nan.slice(),
  };
}

/** The selected elements in C order of the selection. */
function selectedValues(data: NumericArray, pieces: DimPiece[], shape: number[], order: "C" | "F"): (number | bigint)[] {
  const ndim = shape.length;
  const strides = stridesOf(shape, order);
  const out: (number | bigint)[] = [];
  if (pieces.some((p) => p.count === 0)) return out;
  const at = new Array<number>(ndim).fill(0);
  for (;;) {
    let off = 0;
    for (let d = 0; d < ndim; d++) off += (pieces[d].localStart + at[d] * pieces[d].step) * strides[d];
    out.push(data[off]);
    let d = ndim - 1;
    while (d >= 0 && ++at[d] === pieces[d].count) at[d--] = 0;
    if (d < 0) return out;
  }
}
