/**
 * `activestore refs` and `activestore dump` end to end on the h5py / netCDF-C fixtures: the .npy
 * files dump writes equal what h5py read (whole variables and NumPy-style selections), through
 * references built in memory and through a references JSON written by `refs`.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { register as registerDump, parseSelection } from "../src/cli/commands/dump.js";
import { register as registerRefs } from "../src/cli/commands/refs.js";
import { CliError } from "../src/cli/errors.js";
import { decodeNpy, encodeNpy } from "../src/refs/npy.js";
import { parseReferences } from "../src/refs/reference-store.js";
import { expectSameValues, expectedValues as valuesOf, npyToList, type ManifestEntry } from "./fixtures/refs/expected.js";

const FIXTURES = fileURLToPath(new URL("./fixtures/refs/", import.meta.url));
const manifest = JSON.parse(readFileSync(join(FIXTURES, "manifest.json"), "utf8")) as {
  files: Record<string, ManifestEntry[]>;
  selections: { file: string; path: string; select: string; values: string }[];
};

async function run(...args: string[]): Promise<void> {
  const program = new Command("activestore").exitOverride().configureOutput({ writeErr: () => {} });
  registerRefs(program);
  registerDump(program);
  await program.parseAsync(args, { from: "user" });
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "refs-dump-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("activestore dump", () => {
  const whole = [
    ["h5_earliest.h5", "/contiguous_f8"],
    ["h5_earliest.h5", "/gzip_shuffle"],
    ["h5_latest.h5", "/unwritten"],
    ["h5_latest.h5", "/dtypes/u8"],
    ["h5_latest.h5", "/dtypes/f8be"],
    ["h5_earliest.h5", "/dtypes/bool"],
    ["h5_earliest.h5", "/scalar"],
    ["h5_earliest.h5", "/zero_size"],
    ["nc4.nc", "/forecast/t2m"],
    ["nc4.nc", "/pr"],
  ] as const;

  it.each(whole)("%s %s equals h5py", async (file, path) => {
    const out = join(dir, `${file}-${path.replaceAll("/", "_")}.npy`);
    await run("dump", join(FIXTURES, file), path, "-o", out);
    const entry = manifest.files[file].find((e) => e.path === path)!;
    const ours = decodeNpy(new Uint8Array(readFileSync(out)));
    // netCDF-C's extent along an unlimited dimension where it differs from h5py's.
    expect(ours.shape).toEqual(entry.ncShape ?? entry.shape);
    const expectedFile = join(FIXTURES, "values", file, entry.ncValues ?? entry.values!);
    expectSameValues(npyToList(readFileSync(out)), npyToList(readFileSync(expectedFile)), `${file}${path}`);
    const theirs = decodeNpy(new Uint8Array(readFileSync(expectedFile)));
    if (theirs.descr === ours.descr) {
      // Same dtype and byte order: the data part is byte for byte what NumPy saved.
      expect(Buffer.compare(Buffer.from(ours.data), Buffer.from(theirs.data))).toBe(0);
    }
  });

  it.each(manifest.selections.map((s) => [s.file, s.path, s.select, s.values] as const))(
    "%s %s --select %s equals h5py's selection",
    async (file, path, select, values) => {
      const out = join(dir, `sel-${values.replaceAll("/", "_")}`);
      await run("dump", join(FIXTURES, file), path, "--select", select, "-o", out);
      const expected = readFileSync(join(FIXTURES, "values", values));
      expect(decodeNpy(new Uint8Array(readFileSync(out))).shape).toEqual(decodeNpy(new Uint8Array(expected)).shape);
      expectSameValues(npyToList(readFileSync(out)), npyToList(expected), `${file}${path}[${select}]`);
    },
  );

  it("reads through a references JSON written by `refs`", async () => {
    const json = join(dir, "nc4.json");
    await run("refs", join(FIXTURES, "nc4.nc"), "-o", json, "--inline-threshold", "0");
    const refs = parseReferences(readFileSync(json, "utf8"));
    expect(refs.refs["tas/.zarray"]).toBeDefined();
    // A local input is referenced relative to the JSON, so the two can move together.
    expect((refs.refs["tas/0.0.0"] as [string, number, number])[0]).toBe(relative(dir, join(FIXTURES, "nc4.nc")));
    const out = join(dir, "tas-from-json.npy");
    await run("dump", json, "tas", "-o", out);
    const entry = manifest.files["nc4.nc"].find((e) => e.path === "/tas")!;
    expectSameValues(npyToList(readFileSync(out)), valuesOf(FIXTURES, "nc4.nc", entry), "nc4.nc/tas via refs.json");
  });

  it("names a missing variable and rejects bad selections as usage errors", async () => {
    const file = join(FIXTURES, "nc4.nc");
    await expect(run("dump", file, "nope", "-o", join(dir, "x.npy"))).rejects.toThrow(/no variable "nope"/);
    const usage = async (select: string) => {
      const e = await run("dump", file, "tas", "--select", select, "-o", join(dir, "x.npy")).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(CliError);
      expect((e as CliError).exitCode).toBe(2);
    };
    await usage("0,0,0,0");
    await usage("7");
    await usage("a:b");
    await usage("::0");
  });

  it("float16 reads where Float16Array exists, and says why it cannot elsewhere", async () => {
    const out = join(dir, "f2.npy");
    const run16 = run("dump", join(FIXTURES, "h5_latest.h5"), "dtypes/f2", "-o", out);
    if (!("Float16Array" in globalThis)) {
      await expect(run16).rejects.toThrow(/float16.*Float16Array/);
      return;
    }
    await run16;
    const entry = manifest.files["h5_latest.h5"].find((e) => e.path === "/dtypes/f2")!;
    expectSameValues(npyToList(readFileSync(out)), valuesOf(FIXTURES, "h5_latest.h5", entry), "f2");
  });

  it("refuses an invalid --inline-threshold", async () => {
    await expect(run("refs", join(FIXTURES, "nc4.nc"), "--inline-threshold", "-3")).rejects.toThrow(/non-negative/);
  });
});

describe("parseSelection and .npy", () => {
  it("parses NumPy basic indexing", () => {
    const sel = parseSelection("0:10, :, 5, ::2, -1");
    expect(sel[1]).toBeNull();
    expect(sel[2]).toBe(5);
    expect(sel[4]).toBe(-1);
    expect(sel[0]).toMatchObject({ start: 0, stop: 10 });
    expect(sel[3]).toMatchObject({ start: null, stop: null, step: 2 });
  });

  it("writes version 1.0 headers padded to 64 bytes and reads them back", () => {
    const bytes = encodeNpy({ descr: "<i2", shape: [2, 3], data: new Uint8Array(12).fill(1) });
    expect((10 + (bytes[8] | (bytes[9] << 8))) % 64).toBe(0);
    expect(decodeNpy(bytes)).toMatchObject({ descr: "<i2", shape: [2, 3] });
    expect(decodeNpy(encodeNpy({ descr: "<f8", shape: [], data: new Uint8Array(8) })).shape).toEqual([]);
    expect(() => decodeNpy(new Uint8Array([1, 2, 3]))).toThrow(/npy/);
  });
});
