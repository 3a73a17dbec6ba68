/**
 * combineReferences against what xarray reads. The fixtures are netCDF-4 files written by netCDF-C
 * (test/fixtures/combine/generate.py, run with /usr/bin/python3); expected/<case>/<var>.npy is what
 * xarray.open_mfdataset reads for the concatenation (raw stored values: no masking, scaling or time
 * decoding). Each file's references are built here with buildReferences, combined, serialised to JSON
 * and read back through ReferenceStore + zarrita.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { Command } from "commander";
import * as zarr from "zarrita";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { register } from "../src/cli/commands/combine.js";
import { registerCodecs } from "../src/codecs/registry.js";
import { ReferenceSetError, UnsupportedFeatureError } from "../src/errors.js";
import { buildReferences } from "../src/refs/build.js";
import { combineReferences, combineReferencesWithNotes, type CombineInput } from "../src/refs/combine.js";
import { convertTimes } from "../src/refs/combine-time.js";
import { toJson } from "../src/refs/json.js";
import { decodeNpy } from "../src/refs/npy.js";
import { readParquetReferences } from "../src/refs/parquet-read.js";
import { parseReferences, ReferenceStore } from "../src/refs/reference-store.js";
import type { Reference, References } from "../src/refs/types.js";

const HERE = join(process.cwd(), "test", "fixtures", "combine");

interface Expected {
  dims: Record<string, number>;
  variables: Record<string, { dims: string[]; shape: number[]; dtype: string }>;
}

async function inputsOf(folder: string): Promise<CombineInput[]> {
  const dir = join(HERE, folder);
  const files = readdirSync(dir).filter((f) => f.endsWith(".nc"));
  return Promise.all(
    files.map(async (f) => {
      const path = relative(process.cwd(), join(dir, f));
      // A low inline threshold keeps tas chunks as byte ranges while small arrays are inlined.
      return { refs: await buildReferences(path, { inlineThreshold: 100 }), url: path };
    }),
  );
}

/** Reads every variable of the combined set (after a JSON round trip) and compares with xarray. */
async function expectMatchesXarray(combined: References, kase: string): Promise<void> {
  const expected = JSON.parse(readFileSync(join(HERE, "expected", `${kase}.json`), "utf8")) as Expected;
  const store = new ReferenceStore(parseReferences(toJson(combined)));
  const names = Object.keys(combined.refs)
    .filter((k) => k.endsWith("/.zarray"))
    .map((k) => k.slice(0, -"/.zarray".length));
  expect(names.sort()).toEqual(Object.keys(expected.variables).sort());
  for (const [name, info] of Object.entries(expected.variables)) {
    const array = await zarr.open.v2(zarr.root(store).resolve(name), { kind: "array" });
    expect(array.attrs._ARRAY_DIMENSIONS, name).toEqual(info.dims);
    const got = await zarr.get(array);
    expect(got.shape, name).toEqual(info.shape);
    if (info.dtype.startsWith("<U") || info.dtype === "|O") {
      const want = JSON.parse(readFileSync(join(HERE, "expected", kase, `${name}.json`), "utf8")) as string[];
      expect(Array.from(got.data as unknown as ArrayLike<string>), name).toEqual(want);
      continue;
    }
    const want = decodeNpy(new Uint8Array(readFileSync(join(HERE, "expected", kase, `${name}.npy`))), name);
    expect(got.shape, name).toEqual(want.shape);
    const data = got.data as unknown as ArrayBufferView;
    expect(want.descr.slice(1), name).toBe(array.dtype === "float64" ? "f8" : array.dtype === "float32" ? "f4" : array.dtype === "int32" ? "i4" : "i8");
    expect(Buffer.from(data.buffer, data.byteOffset, data.byteLength).equals(Buffer.from(want.data)), name).toBe(true);
  }
}

function shuffled<T>(items: T[]): T[] {
  // A fixed permutation: reversed halves, so sorting by coordinate has work to do.
  const half = Math.floor(items.length / 2);
  return [...items.slice(half).reverse(), ...items.slice(0, half)];
}

let daily: CombineInput[];

beforeAll(async () => {
  registerCodecs();
  daily = await inputsOf("daily");
});

describe("combineReferences along an existing dimension", () => {
  it("combines a month of daily netCDF files as xarray.open_mfdataset does", async () => {
    const { references, notes } = await combineReferencesWithNotes(shuffled(daily), { concatDims: ["time"] });
    await expectMatchesXarray(references, "daily");
    // tas: one chunk per day, keys renumbered 0..29 along time.
    const tasKeys = Object.keys(references.refs).filter((k) => /^tas\/\d/.test(k));
    expect(tasKeys).toHaveLength(30);
    expect(references.refs["tas/29.0.0"]).toEqual(daily.find((d) => d.url!.endsWith("01-30.nc"))!.refs.refs["tas/0.0.0"]);
    // The time coordinate is rebuilt inline, one chunk, from the inputs' values in order.
    expect(typeof references.refs["time/0"]).toBe("string");
    expect(JSON.parse(references.refs["time/.zarray"] as string)).toMatchObject({ shape: [30], chunks: [30], dtype: "<f8" });
    // Root attributes come from the first input in time order; the difference is noted.
    expect(JSON.parse(references.refs[".zattrs"] as string).history).toBe("written for day 1");
    expect(notes).toContain(`.zattrs: attribute "history" differs in 29 of 30 inputs; kept ${daily.find((d) => d.url!.endsWith("01-01.nc"))!.url}'s`);
  });

  it("combines files of 4 steps in chunks of 4, the last input holding a partial chunk", async () => {
    const inputs = shuffled(await inputsOf("quad"));
    const combined = await combineReferences(inputs, { concatDims: ["time"], identicalDims: ["lat", "lon"] });
    await expectMatchesXarray(combined, "quad");
    expect(JSON.parse(combined.refs["tas/.zarray"] as string)).toMatchObject({ shape: [30, 20, 36], chunks: [4, 10, 18] });
    expect(Object.keys(combined.refs).filter((k) => /^tas\/\d/.test(k))).toHaveLength(8 * 4);
    expect(combined.refs["tas/7.1.1"]).toBeDefined();
  });

  it("converts each file's time units to the first file's, as xarray's decoded times", async () => {
    const combined = await combineReferences(await inputsOf("shifted"), { concatDims: ["time"] });
    await expectMatchesXarray(combined, "shifted");
    expect(JSON.parse(combined.refs["time/.zattrs"] as string).units).toBe("hours since 2000-01-01 00:00:00");
  });

  it("refuses an input that ends in a partial chunk unless it is the last", async () => {
    const inputs = await inputsOf("ragged");
    const error = await combineReferences(inputs, { concatDims: ["time"] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReferenceSetError);
    expect((error as Error).message).toMatch(/part_0\.nc: 3 steps .* not a multiple of the chunk size 2/);
    expect((error as Error).message).toContain('reference "v"');
  });

  it("refuses overlapping inputs", async () => {
    await expect(combineReferences([daily[0], daily[1], daily[0]], { concatDims: ["time"] })).rejects.toThrow(
      /"time" is not strictly increasing between .* \(inputs overlap or are unsorted\)|not strictly increasing/,
    );
  });
});

/** A copy of one input with one metadata key edited. */
function edited(input: CombineInput, key: string, edit: (meta: Record<string, unknown>) => void): CombineInput {
  const refs = { ...input.refs.refs };
  const meta = JSON.parse(refs[key] as string) as Record<string, unknown>;
  edit(meta);
  refs[key] = JSON.stringify(meta);
  return { refs: { version: 1, refs }, url: input.url };
}

describe("combineReferences inputs", () => {
  it("without a coordinate variable, concatenates in the order given", async () => {
    const ordered = [...daily].sort((a, b) => a.url!.localeCompare(b.url!));
    const stripped = ordered.map((input) => ({
      url: input.url,
      refs: { version: 1 as const, refs: Object.fromEntries(Object.entries(input.refs.refs).filter(([k]) => !k.startsWith("time/"))) },
    }));
    const combined = await combineReferences(stripped, { concatDims: ["time"] });
    expect(combined.refs["time/.zarray"]).toBeUndefined();
    const store = new ReferenceStore(combined);
    const tas = await zarr.get(await zarr.open.v2(zarr.root(store).resolve("tas"), { kind: "array" }));
    const want = decodeNpy(new Uint8Array(readFileSync(join(HERE, "expected", "daily", "tas.npy"))));
    const data = tas.data as Float32Array;
    expect(Buffer.from(data.buffer, data.byteOffset, data.byteLength).equals(Buffer.from(want.data))).toBe(true);
  });

  it("combining combined sets gives the same set as combining all inputs at once", async () => {
    const ordered = [...daily].sort((a, b) => a.url!.localeCompare(b.url!));
    const all = await combineReferences(ordered, { concatDims: ["time"] });
    const halves = await Promise.all([ordered.slice(0, 12), ordered.slice(12)].map((part) => combineReferences(part, { concatDims: ["time"] })));
    expect(await combineReferences(halves.reverse(), { concatDims: ["time"] })).toEqual(all);
  });

  it("expands each input's templates, so inputs with different templates combine", async () => {
    const templated = daily.slice(0, 3).map((input, i) => {
      const refs = Object.fromEntries(
        Object.entries(input.refs.refs).map(([k, v]) => [k, typeof v === "string" ? v : ([`{{f${i}}}`, ...v.slice(1)] as typeof v)]),
      );
      return { url: input.url, refs: { version: 1 as const, refs, templates: { [`f${i}`]: input.url! } } };
    });
    const plain = await combineReferences(daily.slice(0, 3), { concatDims: ["time"] });
    const expanded = await combineReferences(templated, { concatDims: ["time"] });
    expect(expanded).toEqual(plain);
  });
});

describe("combineReferences mismatches are errors naming the input and the array", () => {
  const cases: [string, string, (m: Record<string, unknown>) => void, RegExp][] = [
    ["dtype", "tas/.zarray", (m) => (m.dtype = "<f8"), /dtype "<f8" differs from "<f4"/],
    ["chunk shape", "tas/.zarray", (m) => (m.chunks = [1, 10, 36]), /chunk shape \[1,10,36\] differs/],
    ["fill value", "tas/.zarray", (m) => (m.fill_value = 0), /fill value 0 differs from -999/],
    ["codec", "tas/.zarray", (m) => (m.filters = [{ id: "zlib", level: 4 }]), /codecs \(filters\)/],
    ["dimensions", "tas/.zattrs", (m) => (m._ARRAY_DIMENSIONS = ["time", "y", "x"]), /dimensions \["time","y","x"\]/],
    ["units", "tas/.zattrs", (m) => (m.units = "degC"), /attribute "units" "degC" differs from "K"/],
    ["dtype of an array taken once", "orog/.zarray", (m) => (m.dtype = "<i4"), /reference "orog\/\.zarray".*dtype "<i4" differs from "<f4"/],
    ["coordinate units", "time/.zattrs", (m) => (m.units = "months since 2000-01-01"), /coordinate units "months since 2000-01-01" .* cannot be converted/],
    ["coordinate calendar", "time/.zattrs", (m) => (m.calendar = "noleap"), /coordinate attribute "calendar" "noleap" differs/],
  ];
  for (const [what, key, edit, message] of cases) {
    it(what, async () => {
      const bad = edited(daily[5], key, edit);
      const error = await combineReferences([daily[0], bad, daily[9]], { concatDims: ["time"] }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ReferenceSetError);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).toContain(daily[5].url!);
    });
  }

  it("an array taken once whose values differ", async () => {
    const refs = { ...daily[3].refs.refs };
    const lat = new Float32Array(20).fill(1.5);
    refs["lat/0"] = "base64:" + Buffer.from(lat.buffer).toString("base64");
    const error = await combineReferences([daily[0], { refs: { version: 1, refs }, url: daily[3].url }], { concatDims: ["time"] }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ReferenceSetError);
    expect((error as Error).message).toMatch(/reference "lat".*values differ from/);
  });

  it("a missing array", async () => {
    const refs = Object.fromEntries(Object.entries(daily[2].refs.refs).filter(([k]) => !k.startsWith("orog/")));
    await expect(combineReferences([daily[0], { refs: { version: 1, refs }, url: "x.nc" }], { concatDims: ["time"] })).rejects.toThrow(
      /x\.nc: has no array "orog"/,
    );
  });

  it("a second dimension without values to place the inputs along it", async () => {
    await expect(combineReferences(daily.slice(0, 2), { concatDims: ["member", "time"] })).rejects.toThrow(/"member" has no coordinate variable/);
  });
});

describe("combineReferences along several dimensions", () => {
  const member = { pattern: /\/m(\d+)_t\d\.nc$/, from: "url" } as const;

  it("stacks members (from the file names) of files split along time, as xarray reads the grid", async () => {
    const inputs = shuffled(await inputsOf("grid"));
    const { references, notes } = await combineReferencesWithNotes(inputs, {
      concatDims: ["member", "time"],
      identicalDims: ["lat", "lon"],
      coords: { member },
    });
    await expectMatchesXarray(references, "grid");
    expect(JSON.parse(references.refs["tas/.zarray"] as string)).toMatchObject({ shape: [2, 6, 20, 36], chunks: [1, 2, 10, 18] });
    expect(notes.filter((n) => !/^member=\d: /.test(n) && !/realization/.test(n))).toEqual([]);
  });

  it("gives the same set as combining each member along time, then the members", async () => {
    const inputs = await inputsOf("grid");
    const byMember = await Promise.all(
      [1, 2].map(async (m) => ({
        refs: await combineReferences(inputs.filter((i) => i.url!.includes(`/m${m}_`)), { concatDims: ["time"] }),
      })),
    );
    const twoSteps = await combineReferences(byMember, { concatDims: ["member"], identicalDims: ["lat", "lon"], coords: { member: [1, 2] } });
    const atOnce = await combineReferences(inputs, { concatDims: ["member", "time"], identicalDims: ["lat", "lon"], coords: { member } });
    expect(atOnce).toEqual(twoSteps);
  });

  it("refuses an incomplete grid, naming the groups", async () => {
    const inputs = (await inputsOf("grid")).filter((i) => !i.url!.endsWith("m2_t1.nc"));
    await expect(
      combineReferences(inputs, { concatDims: ["member", "time"], identicalDims: ["lat", "lon"], coords: { member } }),
    ).rejects.toThrow(/not form a full grid.*member=1: 3; member=2: 2|not form a full grid.*member=2: 2; member=1: 3/);
  });

  it("groups by the instant a time names when each file has its own units (time as the outer dimension)", async () => {
    const shifted = await inputsOf("shifted");
    // The same three files as two members (the url carries the member).
    const inputs = [1, 2].flatMap((m) => shifted.map((i) => ({ refs: i.refs, url: i.url!.replace("/shifted/", `/shifted/m${m}/`) })));
    const member = { pattern: /\/m(\d+)\/v_\d\.nc$/, from: "url" } as const;
    const timeFirst = await combineReferences(inputs, { concatDims: ["time", "member"], coords: { member } });
    const memberFirst = await combineReferences(inputs, { concatDims: ["member", "time"], coords: { member } });
    expect(JSON.parse(timeFirst.refs["v/.zarray"] as string).shape).toEqual([2, 12, 4]);
    expect(timeFirst).toEqual(memberFirst);
  });

  it("refuses a dimension named twice", async () => {
    await expect(combineReferences(daily.slice(0, 2), { concatDims: ["time", "time"] })).rejects.toThrow(/named twice/);
  });
});

describe("combineReferences along a new dimension", () => {
  it("stacks ensemble members numbered by their file names", async () => {
    const inputs = await inputsOf("ensemble");
    const combined = await combineReferences(inputs, {
      concatDims: ["member"],
      identicalDims: ["lat", "lon"],
      coords: { member: { pattern: /member_(\d+)\.nc$/, from: "url" } },
    });
    await expectMatchesXarray(combined, "ensemble");
    expect(JSON.parse(combined.refs["pr/.zarray"] as string)).toMatchObject({ shape: [4, 20, 36], chunks: [1, 10, 12] });
    expect(JSON.parse(combined.refs["pr/.zattrs"] as string)._ARRAY_DIMENSIONS).toEqual(["member", "lat", "lon"]);
  });

  it("names members by text from the file names (a variable-length string coordinate)", async () => {
    const inputs = await inputsOf("ensemble");
    const combined = await combineReferences(inputs, {
      concatDims: ["member"],
      coords: { member: { pattern: /(member_\d+)\.nc$/, from: "url" } },
    });
    await expectMatchesXarray(combined, "ensemble_named");
    const names = inputs.map((i) => /member_\d+/.exec(i.url!)![0]);
    expect(await combineReferences(inputs, { concatDims: ["member"], coords: { member: names } })).toEqual(combined);
    await expect(
      combineReferences(inputs, { concatDims: ["member"], coords: { member: names.map(() => "same") } }),
    ).rejects.toThrow(/not strictly increasing/);
  });

  it("takes member numbers from an attribute or given explicitly", async () => {
    const inputs = await inputsOf("ensemble");
    const byAttribute = await combineReferences(inputs, { concatDims: ["member"], coords: { member: { attribute: "realization" } } });
    await expectMatchesXarray(byAttribute, "ensemble");
    const numbers = inputs.map((i) => Number(/member_(\d+)/.exec(i.url!)![1]));
    const explicit = await combineReferences(inputs, { concatDims: ["member"], coords: { member: numbers } });
    expect(explicit).toEqual(byAttribute);
  });
});

describe("activestore combine", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "combine-cli-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function run(...args: string[]): Promise<void> {
    const program = new Command("activestore").exitOverride();
    register(program);
    await program.parseAsync(["combine", ...args], { from: "user" });
  }

  it("combines netCDF files directly into a JSON file", async () => {
    const files = readdirSync(join(HERE, "quad")).map((f) => relative(process.cwd(), join(HERE, "quad", f)));
    const out = join(dir, "quad.json");
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      await run(...files.reverse(), "-o", out, "--concat-dim", "time", "--identical-dims", "lat,lon");
      expect(stderr.mock.calls.map((c) => String(c[0])).join("")).toMatch(/note: \.zattrs: attribute "history" differs in 7 of 8 inputs/);
    } finally {
      stderr.mockRestore();
    }
    await expectMatchesXarray(parseReferences(readFileSync(out, "utf8")), "quad");
  });

  it("combines a members x time grid of netCDF files (--concat-dim member,time)", async () => {
    const files = readdirSync(join(HERE, "grid")).map((f) => relative(process.cwd(), join(HERE, "grid", f)));
    const out = join(dir, "grid.json");
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      await run(...files, "-o", out, "--concat-dim", "member,time", "--identical-dims", "lat,lon", "--coord-pattern", "/m(\\d+)_t");
    } finally {
      stderr.mockRestore();
    }
    await expectMatchesXarray(parseReferences(readFileSync(out, "utf8")), "grid");
  });

  it("combines reference JSON files along a new dimension into parquet, and to stdout", async () => {
    const inputs = await inputsOf("ensemble");
    const jsons = inputs.map((input) => {
      const path = join(dir, `${/member_\d+/.exec(input.url!)![0]}.json`);
      writeFileSync(path, JSON.stringify(input.refs));
      return path;
    });
    const out = join(dir, "ensemble.parq");
    const args = ["--concat-dim", "member", "--coord-pattern", "member_(\\d+)\\.json$", "--identical-dims", "lat,lon"];
    await run(...jsons, "-o", out, "--format", "parquet", "--record-size", "3", ...args);
    const lookup = await readParquetReferences(out);
    const refs: Record<string, Reference> = {};
    for await (const key of lookup.keys()) refs[key] = (await lookup.get(key))!;
    await expectMatchesXarray({ version: 1, refs }, "ensemble");

    const stdout = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
    try {
      await run(...jsons, ...args);
      await expectMatchesXarray(parseReferences(String(stdout.mock.calls[0][0])), "ensemble");
    } finally {
      stdout.mockRestore();
    }
  });

  it("reports a combination that cannot be done", async () => {
    const files = readdirSync(join(HERE, "ragged")).map((f) => join(HERE, "ragged", f));
    await expect(run(...files, "--concat-dim", "time")).rejects.toThrow(/not a multiple of the chunk size/);
    await expect(run(...files, "--concat-dim", "time", "--format", "parquet")).rejects.toThrow(/needs --output/);
  });
});

describe("CF time units conversion", () => {
  it("moves values between units and epochs on real calendars", () => {
    expect(convertTimes([1, 1.5], "days since 2000-01-02", "hours since 2000-01-01 00:00:00", "standard")).toEqual([48, 60]);
    expect(convertTimes([0], "seconds since 2000-01-01T06:00:00+06:00", "hours since 2000-01-01", undefined)).toEqual([0]);
    expect(convertTimes([30], "minutes since 1970-01-01 00:00", "hours since 1970-01-01", "proleptic_gregorian")).toEqual([0.5]);
  });

  it("refuses what it cannot convert exactly", () => {
    expect(convertTimes([1], "days since 2000-01-01", "hours since 2000-01-01", "noleap")).toBeUndefined();
    expect(convertTimes([1], "days since 1000-01-01", "days since 2000-01-01", "standard")).toBeUndefined(); // Julian dates
    expect(convertTimes([1], "months since 2000-01-01", "days since 2000-01-01", "standard")).toBeUndefined();
    expect(convertTimes([1], "K", "degC", undefined)).toBeUndefined();
  });
});

/** Python's fsspec ReferenceFileSystem + zarr 2 + xarray read our combined JSON as open_mfdataset reads the files. */
const PYTHON = "/usr/bin/python3";
const pythonReady =
  existsSync(PYTHON) && spawnSync(PYTHON, ["-c", "import fsspec, zarr, xarray, numpy"], { stdio: "ignore" }).status === 0;
if (!pythonReady) {
  console.warn(`refs-combine: SKIPPED the fsspec/xarray cross-check: ${PYTHON} with fsspec, zarr, xarray, numpy not found`);
}

describe.skipIf(!pythonReady)("Python fsspec + xarray read our combined references (needs /usr/bin/python3)", () => {
  it("every case", async () => {
    const dir = mkdtempSync(join(tmpdir(), "combine-py-"));
    try {
      const cases: [string, Parameters<typeof combineReferences>[1]][] = [
        ["daily", { concatDims: ["time"] }],
        ["quad", { concatDims: ["time"] }],
        ["shifted", { concatDims: ["time"] }],
        ["ensemble", { concatDims: ["member"], coords: { member: { pattern: /member_(\d+)\.nc$/, from: "url" } } }],
        ["ensemble_named", { concatDims: ["member"], coords: { member: { pattern: /(member_\d+)\.nc$/, from: "url" } } }],
        ["grid", { concatDims: ["member", "time"], identicalDims: ["lat", "lon"], coords: { member: { pattern: /\/m(\d+)_t\d\.nc$/, from: "url" } } }],
      ];
      for (const [kase, options] of cases) {
        const folder = kase.startsWith("ensemble") ? "ensemble" : kase;
        const combined = await combineReferences(shuffled(await inputsOf(folder)), options);
        writeFileSync(join(dir, `combined-${kase}.json`), JSON.stringify(combined));
      }
      const out = execFileSync(
        PYTHON,
        [join(HERE, "check_combined.py"), join(dir, "combined-{case}.json"), ...cases.map(([kase]) => kase)],
        { encoding: "utf8" },
      );
      expect(out.trim().split("\n").map((line) => line.split(" ").slice(0, 2).join(" "))).toEqual(cases.map(([kase]) => `${kase} ok`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
