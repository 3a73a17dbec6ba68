/**
 * Selections, numpy-style: per dimension an integer (the dimension is dropped), `null` (all of it),
 * or a slice `{start, stop, step}` as made by `zarr.slice(...)`, negative indices and steps included.
 * Everything downstream sees a `Hyperslab`: per dimension the selected indices as
 * `start + i * step` for `i < count`.
 */
import { RequestError } from "../errors.js";

export interface SliceSpec {
  start: number | null;
  stop: number | null;
  step: number | null;
}

export type DimSelection = number | null | SliceSpec;
export type Selection = DimSelection[] | null | undefined;

export interface DimRange {
  /** First selected index (in array coordinates). */
  start: number;
  /** Non-zero; negative walks backwards. */
  step: number;
  /** Number of selected indices (0 for an empty selection). */
  count: number;
  /** True when selected by an integer: the dimension does not appear in the result. */
  dropped: boolean;
}

export type Hyperslab = DimRange[];

/** numpy's slice.indices(): clamps start/stop for a dimension of `size` and counts the result. */
export function sliceIndices(spec: SliceSpec, size: number): DimRange {
  const step = spec.step ?? 1;
  if (!Number.isInteger(step) || step === 0) {
    throw new RequestError(`slice step must be a non-zero integer, got ${spec.step}`);
  }
  const clamp = (value: number | null, dflt: number, lo: number, hi: number) => {
    if (value === null) return dflt;
    if (!Number.isInteger(value)) throw new RequestError(`slice bounds must be integers, got ${value}`);
    const v = value < 0 ? value + size : value;
    return Math.min(Math.max(v, lo), hi);
  };
  let start: number;
  let stop: number;
  if (step > 0) {
    start = clamp(spec.start, 0, 0, size);
    stop = clamp(spec.stop, size, 0, size);
  } else {
    start = clamp(spec.start, size - 1, -1, size - 1);
    // -1 here means "through index 0", as in numpy's slice.indices().
    stop = clamp(spec.stop, -1, -1, size - 1);
  }
  const count = step > 0 ? Math.max(0, Math.ceil((stop - start) / step)) : Math.max(0, Math.ceil((start - stop) / -step));
  return { start, step, count, dropped: false };
}

/** Resolves a user selection against an array shape. Missing trailing dimensions select all. */
export function toHyperslab(selection: Selection, shape: readonly number[]): Hyperslab {
  const sel = selection ?? [];
  if (sel.length > shape.length) {
    throw new RequestError(`selection has ${sel.length} dimensions, array has ${shape.length}`);
  }
  return shape.map((size, d) => {
    const s = d < sel.length ? sel[d] : null;
    if (s === null || s === undefined) return { start: 0, step: 1, count: size, dropped: false };
    if (typeof s === "number") {
      if (!Number.isInteger(s)) throw new RequestError(`index ${s} in dimension ${d} is not an integer`);
      const i = s < 0 ? s + size : s;
      if (i < 0 || i >= size) {
        throw new RequestError(`index ${s} is out of bounds for dimension ${d} of size ${size}`);
      }
      return { start: i, step: 1, count: 1, dropped: true };
    }
    return sliceIndices(s, size);
  });
}

/**
 * Parses the CLI form "0:2,4:6,7:9" / ":,5,::-1" into a Selection (one comma-separated item per
 * dimension; `start:stop:step` with empty parts meaning defaults).
 */
export function parseSelection(text: string): Selection {
  const trimmed = text.trim();
  if (trimmed === "") return null;
  return trimmed.split(",").map((part, d) => {
    const p = part.trim();
    if (p === "" || p === ":" || p === "...") return null;
    const num = (s: string | undefined): number | null => {
      if (s === undefined || s.trim() === "") return null;
      const n = Number(s);
      if (!Number.isInteger(n)) throw new RequestError(`selection "${text}": "${s}" in dimension ${d} is not an integer`);
      return n;
    };
    if (!p.includes(":")) return num(p) as number;
    const pieces = p.split(":");
    if (pieces.length > 3) throw new RequestError(`selection "${text}": bad slice "${p}"`);
    return { start: num(pieces[0]), stop: num(pieces[1]), step: num(pieces[2]) };
  });
}

/** Shape of the selected array (dropped dimensions removed). */
export function selectionShape(slab: Hyperslab): number[] {
  return slab.filter((r) => !r.dropped).map((r) => r.count);
}

/**
 * Normalises `axis` (numpy: relative to the selected array's dimensions, negatives allowed) to a
 * sorted list of unique dimension indices of that selected array. `undefined` = all axes.
 */
export function normalizeAxes(axis: number | readonly number[] | undefined | null, ndim: number): number[] {
  if (axis === undefined || axis === null) return Array.from({ length: ndim }, (_, i) => i);
  const list = typeof axis === "number" ? [axis] : [...axis];
  const out = new Set<number>();
  for (const a of list) {
    if (!Number.isInteger(a) || a >= ndim || a < -ndim) {
      throw new RequestError(`axis ${a} is out of bounds for a selection with ${ndim} dimensions`);
    }
    const n = a < 0 ? a + ndim : a;
    if (out.has(n)) throw new RequestError(`repeated axis ${a}`);
    out.add(n);
  }
  return [...out].sort((x, y) => x - y);
}
