import { describe, expect, it } from "vitest";
import * as zarr from "zarrita";
import { reduceArray } from "../src/active/engine.js";
import { finalize, type Statistic } from "../src/active/result.js";
import { toHyperslab, selectionShape, normalizeAxes, parseSelection, type Selection } from "../src/active/selection.js";
import { MemoryStore } from "../src/stores/memory.js";

/** Deterministic PRNG so failures reproduce. */
function rng(seed: number) {
  return () => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
}

/**
 * Naive reference: walk every selected element by explicit index arithmetic, no chunking, no
 * kernel. Independent of the code under test.
 */
function naive(
  data: Float64Array,
  shape: number[],
  selection: Selection,
  axis: number[] | undefined,
  fill: number,
  op: Statistic,
): { value: (number | null)[]; shape: number[] } {
  const slab = toHyperslab(selection, shape);
  const kept = slab.map((r, d) => (r.dropped ? -1 : d)).filter((d) => d >= 0);
  const axes = new Set(normalizeAxes(axis, kept.length).map((a) => kept[a]));
  const outDims = kept.filter((d) => !axes.has(d));
  const outShape = outDims.map((d) => slab[d].count);
  const groups = new Map<number, number[]>();
  const idx = new Array(shape.length).fill(0);
  const walk = (d: number) => {
    if (d === shape.length) {
      let flat = 0;
      for (let k = 0; k < shape.length; k++) flat = flat * shape[k] + (slab[k].start + idx[k] * slab[k].step);
      let o = 0;
      for (const od of outDims) o = o * slab[od].count + idx[od];
      const v = data[flat];
      if (v === fill) return;
      if (!groups.has(o)) groups.set(o, []);
      groups.get(o)!.push(v);
      return;
    }
    for (let i = 0; i < slab[d].count; i++) {
      idx[d] = i;
      walk(d + 1);
    }
  };
  walk(0);
  const n = outShape.reduce((a, b) => a * b, 1);
  const value: (number | null)[] = [];
  for (let o = 0; o < n; o++) {
    const g = groups.get(o) ?? [];
    if (op === "count") {
      value.push(g.length);
      continue;
    }
    if (g.length === 0) {
      value.push(null);
      continue;
    }
    const sum = g.reduce((a, b) => a + b, 0);
    const mean = sum / g.length;
    const variance = g.reduce((a, b) => a + (b - mean) ** 2, 0) / g.length;
    value.push(
      { sum, mean, min: Math.min(...g), max: Math.max(...g), variance, std: Math.sqrt(variance), count: g.length }[op],
    );
  }
  return { value, shape: outShape };
}

describe("chunk plan + kernel + partials against a naive reduction", () => {
  it("agrees for random shapes, chunkings, selections (negative steps too) and axes", async () => {
    const random = rng(42);
    const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
    let cases = 0;
    for (let trial = 0; trial < 40; trial++) {
      const ndim = int(1, 3);
      const shape = Array.from({ length: ndim }, () => int(1, 9));
      const chunks = shape.map((s) => int(1, s));
      const size = shape.reduce((a, b) => a * b, 1);
      const data = new Float64Array(size).map(() => (random() < 0.1 ? -999 : Math.round(random() * 1000) / 10));
      const store = new MemoryStore();
      const arr = await zarr.create(store, {
        shape,
        chunkShape: chunks,
        dtype: "float64",
        fillValue: -999,
      });
      await zarr.set(arr, null, { data, shape, stride: shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1)) });
      // Leave one chunk unwritten: it must read as fill (missing).
      await store.delete(`c/${chunks.map(() => 0).join("/")}`);
      // ...so the reference sees fill there too.
      const c0 = new Float64Array(data);
      const zeroChunk = (flat: number) => {
        let rem = flat;
        const coords = new Array(ndim);
        for (let d = ndim - 1; d >= 0; d--) {
          coords[d] = rem % shape[d];
          rem = Math.floor(rem / shape[d]);
        }
        return coords.every((c, d) => c < chunks[d]);
      };
      for (let i = 0; i < size; i++) if (zeroChunk(i)) c0[i] = -999;

      const selection: Selection = shape.map((s) => {
        const kind = int(0, 3);
        if (kind === 0) return null;
        if (kind === 1) return int(-s, s - 1);
        const step = int(1, 3) * (random() < 0.4 ? -1 : 1);
        return zarr.slice(int(-s, s), int(-s - 1, s), step);
      });
      const keptDims = toHyperslab(selection, shape).filter((r) => !r.dropped).length;
      const axis = keptDims === 0 ? undefined : random() < 0.5 ? undefined : [int(0, keptDims - 1)];
      const { partials } = await reduceArray(arr, selection, {
        axis,
        missing: { fillValue: -999 },
        moments: true,
        concurrency: 3,
      });
      for (const op of ["sum", "mean", "min", "max", "count", "variance", "std"] as Statistic[]) {
        const expected = naive(c0, shape, selection, axis, -999, op);
        const got = finalize(op, partials, "float64");
        const values = Array.isArray(got.value) ? got.value : [got.value];
        expect(got.shape).toEqual(expected.shape);
        expect(values.length).toBe(expected.value.length);
        values.forEach((v, i) => {
          const e = expected.value[i];
          if (e === null) expect(v).toBeNull();
          else expect(v as number).toBeCloseTo(e, 6);
        });
        cases++;
      }
    }
    expect(cases).toBe(280);
  });

  it("selection shapes follow numpy slicing", () => {
    expect(selectionShape(toHyperslab([zarr.slice(null, null, -1)], [5]))).toEqual([5]);
    expect(toHyperslab([zarr.slice(null, null, -2)], [5])[0]).toMatchObject({ start: 4, step: -2, count: 3 });
    expect(toHyperslab([zarr.slice(-2, null)], [5])[0]).toMatchObject({ start: 3, count: 2 });
    expect(toHyperslab([zarr.slice(10, 2, -3)], [5])[0]).toMatchObject({ start: 4, count: 1 });
    expect(parseSelection("0:2, 4:6, ::-1, 5")).toEqual([
      { start: 0, stop: 2, step: null },
      { start: 4, stop: 6, step: null },
      { start: null, stop: null, step: -1 },
      5,
    ]);
  });
});
