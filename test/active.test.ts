/**
 * Active reductions on files written by netCDF-C and HDF5, against numpy.ma on what netCDF4-python
 * and h5py read (test/fixtures/active/generate.py). Tolerances: sums/means are float64
 * accumulations in a different order than numpy's pairwise summation (relative 1e-9); variance/std
 * merge per-chunk moments (relative 1e-7). Min, max, count and integer sums are exact.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Active } from "../src/active/active.js";
import { parseSelection } from "../src/active/selection.js";
import type { Statistic } from "../src/active/result.js";

const DIR = join(import.meta.dirname, "fixtures", "active");
type Encoded = number | string | null;
interface Case {
  select: string;
  axis: number[] | null;
  count: number[];
  results: Record<Statistic, { value: Encoded[]; shape: number[] }>;
}
interface VariableExpectation {
  dtype: string;
  shape: number[];
  netcdf: boolean;
  raw?: boolean;
  skipNaN?: boolean;
  cases: Case[];
}
const expected = JSON.parse(readFileSync(join(DIR, "expected.json"), "utf8")) as {
  files: Record<string, Record<string, VariableExpectation>>;
};

function decode(v: Encoded): number | bigint | null {
  if (v === null) return null;
  if (v === "NaN") return NaN;
  if (v === "Infinity") return Infinity;
  if (v === "-Infinity") return -Infinity;
  if (typeof v === "string") return BigInt(v);
  return v;
}

function check(op: Statistic, got: unknown, want: number | bigint | null, where: string) {
  if (want === null) return expect(got, where).toBeNull();
  if (typeof want === "bigint" || (typeof got === "bigint")) {
    return expect(BigInt(got as number | bigint), where).toBe(BigInt(want));
  }
  if (Number.isNaN(want)) return expect(got, where).toBeNaN();
  const tolerance = op === "variance" || op === "std" ? 1e-7 : op === "sum" || op === "mean" ? 1e-9 : 0;
  if (tolerance === 0) return expect(got, where).toBe(want);
  expect(Math.abs((got as number) - want), where).toBeLessThanOrEqual(tolerance * Math.max(1, Math.abs(want)));
}

const OPS: Statistic[] = ["sum", "mean", "min", "max", "count", "variance", "std"];

for (const [file, variables] of Object.entries(expected.files)) {
  describe(`active reductions on ${file}`, () => {
    for (const [name, spec] of Object.entries(variables)) {
      it(`${name} (${spec.dtype}) matches numpy.ma`, async () => {
        const [variable, variant] = name.split("#");
        const active = await Active.open(join(DIR, file), variable, {
          raw: variant === "raw",
          skipNaN: variant === "skipnan",
        });
        let compared = 0;
        for (const c of spec.cases) {
          const selection = parseSelection(c.select);
          for (const op of OPS) {
            const result = await active.reduce(op, selection, { axis: c.axis ?? undefined });
            const want = c.results[op];
            const where = `${name} ${op} select="${c.select}" axis=${JSON.stringify(c.axis)}`;
            expect(result.shape, where).toEqual(want.shape);
            const values = Array.isArray(result.value) ? result.value : [result.value];
            expect(values.length, where).toBe(want.value.length);
            values.forEach((v, i) => check(op, v, decode(want.value[i]), `${where} [${i}]`));
            compared += values.length;
          }
          const counts = await active.count(selection, { axis: c.axis ?? undefined });
          expect(Array.isArray(counts.count) ? counts.count : [counts.count]).toEqual(c.count);
        }
        expect(compared).toBeGreaterThan(0);
      });
    }
  });
}
