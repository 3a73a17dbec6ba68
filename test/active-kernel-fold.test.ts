/**
 * The chunk kernel's fast paths (src/active/kernel-fold.ts): four-lane sums, optimistic folds
 * checked afterwards, grouped folds for runs with fills, no extremes for mean/sum/count. Checked
 * against a plain element-by-element loop (independent of the kernel), and against themselves: the
 * path a run takes must never change the bits of the result.
 */
import { describe, expect, it } from "vitest";
import * as zarr from "zarrita";
import { reduceArray } from "../src/active/engine.js";
import { reduceChunk, type ChunkSelection, type MissingRules, type NumericArray } from "../src/active/kernel.js";
import { combinePartials, emptyPartials, mergePartials, type Partials } from "../src/active/partials.js";
import { finalize } from "../src/active/result.js";
import { MemoryStore } from "../src/stores/memory.js";
import { mulberry32 } from "./support/prng.js";

type Ctor = new (n: number) => NumericArray;
const FLOAT: Ctor[] = [Float64Array, Float32Array];
const INT: Ctor[] = [Int8Array, Uint8Array, Int16Array, Uint16Array, Int32Array, Uint32Array];

/**
 * A plain loop over the selected elements: count, sum, min, max, NaN seen, as numpy.ma gives them.
 * The sum is taken in the kernel's documented order (four lanes by position in the run, combined as
 * (l0 + l1) + (l2 + l3)), so it must match to the bit.
 */
function plain(values: number[], rules: MissingRules) {
  const masks = [rules.fillValue, ...(rules.missingValues ?? [])].filter((v) => v !== undefined).map(Number);
  const skipNaN = rules.skipNaN === true || masks.some((m) => Number.isNaN(m));
  let count = 0;
  const lanes = [0, 0, 0, 0];
  let min = Infinity;
  let max = -Infinity;
  let nan = false;
  for (const [i, v] of values.entries()) {
    if (Number.isNaN(v)) {
      if (!skipNaN) (nan = true), count++;
      continue;
    }
    if (masks.includes(v)) continue;
    if (rules.validMin !== undefined && v < Number(rules.validMin)) continue;
    if (rules.validMax !== undefined && v > Number(rules.validMax)) continue;
    count++;
    lanes[i % 4] += v;
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const sum = lanes[0] + lanes[1] + (lanes[2] + lanes[3]);
  const kept = values.filter((v) => !Number.isNaN(v) && !masks.includes(v) &&
    !(rules.validMin !== undefined && v < Number(rules.validMin)) && !(rules.validMax !== undefined && v > Number(rules.validMax)));
  const mean = kept.reduce((a, b) => a + b, 0) / kept.length;
  const m2 = kept.reduce((a, v) => a + (v - mean) ** 2, 0);
  return { count, sum: nan ? NaN : sum, min, max, nan, m2 };
}

function wholeRun(data: NumericArray, n = data.length, start = 0, step = 1): ChunkSelection {
  return {
    data,
    chunkShape: [data.length],
    pieces: [{ chunk: 0, localStart: start, step, count: n, outStart: 0 }],
    collapsed: [true],
  };
}

function selected(data: NumericArray, start: number, step: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => Number(data[start + i * step]));
}

function expectClose(got: number, want: number): void {
  if (Number.isNaN(want)) expect(got).toBeNaN();
  else expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(want)));
}

function same(a: Partials, b: Partials): void {
  expect(Array.from(a.count)).toEqual(Array.from(b.count));
  expect(Object.is((a.sum as Float64Array)[0], (b.sum as Float64Array)[0])).toBe(true);
  expect(Array.from(a.nan)).toEqual(Array.from(b.nan));
}

describe("chunk kernel fast paths", () => {
  it("agree with a plain loop for every float and integer type, run length, stride and missing rule", () => {
    const random = mulberry32(5);
    let cases = 0;
    for (const Type of [...FLOAT, ...INT]) {
      const isFloat = FLOAT.includes(Type);
      const big = Type === Uint8Array || Type === Int8Array ? 100 : 30000;
      for (let trial = 0; trial < 30; trial++) {
        const length = 1 + Math.floor(random() * 300);
        const data = new Type(length);
        const fill = Type === Uint8Array || Type === Uint16Array || Type === Uint32Array ? 7 : -7;
        // Fills placed sparsely, densely or not at all; for floats some NaNs and infinities.
        const density = [0, 0.01, 0.3, 1][trial % 4];
        for (let i = 0; i < length; i++) {
          const r = random();
          let v = Math.floor(random() * big);
          if (r < density) v = fill;
          else if (isFloat && r < density + 0.02 && trial % 3 === 0) v = NaN;
          else if (isFloat) v = v / 7;
          (data as Float64Array)[i] = v;
        }
        if (isFloat && trial === 5) (data as Float64Array)[0] = Infinity;
        const rules: MissingRules[] = [
          {},
          { fillValue: fill },
          { fillValue: fill, skipNaN: true },
          { fillValue: fill, validMin: big * 0.1, validMax: big * 0.9 },
          { fillValue: fill, missingValues: [Number((data as Float64Array)[length >> 1])] },
          // A fill inside the data's range: the optimistic fold cannot rule it out by extremes.
          { fillValue: Number((data as Float64Array)[length - 1]) },
        ];
        if (isFloat) rules.push({ fillValue: NaN });
        for (const rule of rules) {
          const step = 1 + (trial % 3);
          const start = trial % 2;
          const n = Math.max(0, Math.floor((length - start - 1) / step) + 1);
          const want = plain(selected(data, start, step, n), rule);
          for (const extremes of [true, false]) {
            const p = reduceChunk(wholeRun(data, n, start, step), { missing: rule, extremes, moments: extremes });
            expect(p.count[0]).toBe(want.count);
            expect(p.nan[0]).toBe(want.nan ? 1 : 0);
            expect((p.sum as Float64Array)[0]).toBe(want.sum);
            if (extremes && !want.nan) {
              expect((p.min as Float64Array)[0]).toBe(want.min);
              expect((p.max as Float64Array)[0]).toBe(want.max);
              if (want.count > 0) expect(Math.abs(p.m2![0] - want.m2)).toBeLessThanOrEqual(1e-7 * Math.max(1, want.m2));
            }
            expect(p.extremes).toBe(extremes ? undefined : false);
            cases++;
          }
        }
      }
    }
    expect(cases).toBe(2 * 30 * (7 * 2 + 6 * 6));
  });

  it("give the same bits whichever path folds a run: with or without extremes, before or after a dirty run", () => {
    const random = mulberry32(11);
    const n = 10_003; // not a multiple of 4: the tail lanes too
    // Values of many magnitudes, so that any other order of additions rounds differently.
    const clean = new Float64Array(n).map(() => random() * 10 ** (random() * 12));
    const dirty = clean.slice();
    for (let i = 17; i < n; i += 97) dirty[i] = -999;
    const rules = { fillValue: -999 };
    const run = (data: Float64Array, extremes = true) => reduceChunk(wholeRun(data), { missing: rules, extremes });
    const clean1 = run(clean);
    const dirty1 = run(dirty); // optimistic fold fails, then grouped
    const dirty2 = run(dirty); // grouped first (the previous run was dirty)
    const clean2 = run(clean); // grouped first, finds nothing
    const clean3 = run(clean); // optimistic again
    same(dirty1, dirty2);
    same(clean1, clean2);
    same(clean1, clean3);
    same(clean1, run(clean, false));
    same(dirty1, run(dirty, false));
    // Range rules take a third path (element by element) when the extremes cross the range.
    const ranged = (data: Float64Array) => reduceChunk(wholeRun(data), { missing: { ...rules, validMin: 0, validMax: 1e13 } });
    same(ranged(dirty), dirty1);
    same(ranged(clean), clean1);
  });

  it("short float64 runs keep each element in its lane, down to the last n mod 4 (magnitudes where the order shows)", () => {
    const random = mulberry32(23);
    for (let trial = 0; trial < 400; trial++) {
      const n = 1 + (trial % 60);
      const step = 1 + (trial % 2);
      const data = Float64Array.from({ length: n * step + 1 }, () => (random() < 0.5 ? -1 : 1) * 10 ** (random() * 32 - 16));
      const want = plain(selected(data, 0, step, n), { fillValue: -7 });
      for (const extremes of [false, true]) {
        const p = reduceChunk(wholeRun(data, n, 0, step), { missing: { fillValue: -7 }, extremes });
        expect(Object.is((p.sum as Float64Array)[0], want.sum), `n=${n} step=${step} extremes=${extremes}`).toBe(true);
        expect(p.count[0]).toBe(n);
      }
    }
  });

  it("fold runs longer than one block (4,096) in lanes that carry on across blocks, wherever the fill or NaN is", () => {
    const random = mulberry32(17);
    const n = 3 * 4096 + 7;
    const base = new Float64Array(n).map(() => random() * 10 ** (random() * 9));
    for (const spot of [0, 4095, 4096, 2 * 4096 + 1, n - 1]) {
      for (const bad of [-999, NaN]) {
        const data = base.slice();
        data[spot] = bad;
        for (const missing of [{ fillValue: -999 }, { fillValue: -999, skipNaN: true }, { fillValue: -999, validMax: 1e12 }]) {
          const want = plain(Array.from(data), missing);
          for (const extremes of [true, false]) {
            const p = reduceChunk(wholeRun(data), { missing, extremes });
            expect(p.count[0]).toBe(want.count);
            expect((p.sum as Float64Array)[0]).toBe(want.sum);
            if (extremes && !want.nan) expect((p.max as Float64Array)[0]).toBe(want.max);
          }
        }
      }
    }
  });

  it("sums a masked element as if it were absent: the dirty run equals the clean run with those elements zeroed", () => {
    // Four lanes by position: zero in a lane adds nothing, so equal bits are expected.
    const random = mulberry32(3);
    const n = 4099;
    const dirty = new Float64Array(n).map(() => random() * 10 ** (random() * 12));
    const zeroed = dirty.slice();
    for (let i = 3; i < n; i += 41) (dirty[i] = 9.969209968386869e36), (zeroed[i] = 0);
    const a = reduceChunk(wholeRun(dirty), { missing: { fillValue: 9.969209968386869e36 } });
    const b = reduceChunk(wholeRun(zeroed), {});
    expect(Object.is((a.sum as Float64Array)[0], (b.sum as Float64Array)[0])).toBe(true);
    expect(a.count[0]).toBe(n - Math.ceil((n - 3) / 41));
  });

  it("scatters runs into rows of the output (axis 0) as a plain loop does", () => {
    const random = mulberry32(8);
    const [t, y, x] = [7, 5, 9];
    const data = new Float32Array(t * y * x).map(() => (random() < 0.1 ? -1 : random() < 0.03 ? NaN : Math.fround(random() * 50)));
    const rules: MissingRules = { fillValue: -1, validMax: 45 };
    const pieces = [t, y, x].map((count) => ({ chunk: 0, localStart: 0, step: 1, count, outStart: 0 }));
    const p = reduceChunk({ data, chunkShape: [t, y, x], pieces, collapsed: [true, false, false] }, { missing: rules });
    expect(p.shape).toEqual([y, x]);
    for (let o = 0; o < y * x; o++) {
      const want = plain(Array.from({ length: t }, (_, k) => data[k * y * x + o]), rules);
      expect(p.count[o]).toBe(want.count);
      expect(p.nan[o]).toBe(want.nan ? 1 : 0);
      expectClose((p.sum as Float64Array)[o], want.sum);
      if (!want.nan) expect([(p.min as Float64Array)[o], (p.max as Float64Array)[o]]).toEqual([want.min, want.max]);
    }
  });
});

describe("64-bit integer runs", () => {
  /** Exact count, sum, min, max by BigInt, element by element. */
  function plainBig(values: bigint[], masks: bigint[], lo?: bigint, hi?: bigint) {
    let count = 0;
    let sum = 0n;
    let min: bigint | undefined;
    let max: bigint | undefined;
    for (const v of values) {
      if (masks.includes(v) || (lo !== undefined && v < lo) || (hi !== undefined && v > hi)) continue;
      count++;
      sum += v;
      if (min === undefined || v < min) min = v;
      if (max === undefined || v > max) max = v;
    }
    return { count, sum, min, max };
  }

  it("sum exactly whether folded in float64 words or by BigInt: small, negative, boundary, huge and masked values", () => {
    const random = mulberry32(64);
    const fill = -9223372036854775806n; // netCDF's int64 default fill: high word 0x80000000
    let cases = 0;
    for (const Type of [BigInt64Array, BigUint64Array]) {
      const signed = Type === BigInt64Array;
      for (let trial = 0; trial < 40; trial++) {
        const length = 1 + Math.floor(random() * 400);
        const start = trial % 3;
        const step = 1 + (trial % 2);
        const n = Math.max(0, Math.floor((length - start - 1) / step) + 1);
        // Magnitudes around the float64 fold's limit (2^53 / n), below and above it, and huge.
        const scale = [1000, 2 ** 53 / Math.max(1, n) / 2, 2 ** 53 / Math.max(1, n) * 4, 2 ** 62][trial % 4];
        const data = new Type(length);
        for (let i = 0; i < length; i++) {
          let v = BigInt(Math.floor(random() * scale));
          if (signed && random() < 0.5) v = -v;
          if (signed && trial % 5 === 0 && random() < 0.1) v = fill;
          if (!signed && trial % 7 === 0 && random() < 0.1) v = 2n ** 64n - 1n; // uint64 fill, high word 2^32 - 1
          data[i] = v;
        }
        const values = Array.from({ length: n }, (_, i) => data[start + i * step]);
        const mid = values[n >> 1] ?? 0n;
        const rules: { missing: MissingRules; masks: bigint[]; lo?: bigint; hi?: bigint }[] = [
          { missing: {}, masks: [] },
          { missing: { fillValue: signed ? fill : 2n ** 64n - 1n }, masks: [signed ? fill : 2n ** 64n - 1n] },
          { missing: { fillValue: mid }, masks: [mid] },
          { missing: { fillValue: fill, missingValues: [mid] }, masks: [fill, mid] },
          { missing: { validMin: 0, validMax: BigInt(Math.floor(scale / 2)) }, masks: [], lo: 0n, hi: BigInt(Math.floor(scale / 2)) },
        ];
        for (const rule of rules) {
          const want = plainBig(values, rule.masks, rule.lo, rule.hi);
          const p = reduceChunk(wholeRun(data, n, start, step), { missing: rule.missing });
          expect(p.count[0]).toBe(want.count);
          expect((p.sum as bigint[])[0]).toBe(want.sum);
          expect((p.min as bigint[])[0]).toBe(want.min);
          expect((p.max as bigint[])[0]).toBe(want.max);
          cases++;
        }
      }
    }
    expect(cases).toBe(2 * 40 * 5);
  });
});

describe("partials without extremes", () => {
  it("say so through merges and combines, and refuse min/max instead of answering ±Infinity", () => {
    const data = Float64Array.from([1, 2, 3, 4, 5]);
    const without = reduceChunk(wholeRun(data), { extremes: false });
    const withThem = reduceChunk(wholeRun(data));
    expect(withThem.extremes).toBeUndefined();
    const total = emptyPartials([], false, false);
    mergePartials(total, withThem, []);
    expect(total.extremes).toBeUndefined();
    mergePartials(total, without, []);
    expect(total.extremes).toBe(false);
    expect(combinePartials(withThem, without).extremes).toBe(false);
    expect(combinePartials(without, withThem).extremes).toBe(false);
    expect(finalize("mean", total, "float64").value).toBe(3);
    expect(finalize("sum", total, "float64").value).toBe(30);
    expect(() => finalize("min", total, "float64")).toThrow(/extremes/);
    expect(() => finalize("max", without, "float64")).toThrow(/extremes/);
    // 64-bit integers always carry their exact extremes.
    const big = reduceChunk(wholeRun(BigInt64Array.from([1n, 5n])), { extremes: false });
    expect(big.extremes).toBeUndefined();
    expect(finalize("max", big, "int64").value).toBe(5);
  });

  it("the engine gives the same mean with and without extremes, at any concurrency", async () => {
    const random = mulberry32(21);
    const shape = [20, 30, 40];
    const data = new Float64Array(24_000).map(() => (random() < 0.05 ? -999 : random() * 300));
    const store = new MemoryStore();
    const arr = await zarr.create(store, { shape, chunkShape: [7, 11, 13], dtype: "float64", fillValue: -999 });
    await zarr.set(arr, null, { data, shape, stride: [1200, 40, 1] });
    const missing = { fillValue: -999 };
    const full = await reduceArray(arr, null, { missing, concurrency: 1 });
    for (const concurrency of [1, 5]) {
      const lean = await reduceArray(arr, null, { missing, extremes: false, concurrency });
      expect(lean.partials.extremes).toBe(false);
      same(lean.partials, full.partials);
    }
    const byAxis = await reduceArray(arr, null, { missing, extremes: false, axis: [0, 2], concurrency: 4 });
    const byAxisFull = await reduceArray(arr, null, { missing, axis: [0, 2], concurrency: 2 });
    expect(Array.from(byAxis.partials.sum as Float64Array)).toEqual(Array.from(byAxisFull.partials.sum as Float64Array));
    // Axis 0 only: runs scatter over rows of the output.
    const rows = await reduceArray(arr, null, { missing, extremes: false, axis: 0, concurrency: 3 });
    const rowsFull = await reduceArray(arr, null, { missing, axis: 0, concurrency: 1 });
    expect(Array.from(rows.partials.sum as Float64Array)).toEqual(Array.from(rowsFull.partials.sum as Float64Array));
    expect(Array.from(rows.partials.count)).toEqual(Array.from(rowsFull.partials.count));
    expect(rows.partials.extremes).toBe(false);
  });
});
