/**
 * Corrupt and truncated HDF5 files: every case must either read or fail with one of our named
 * errors (Hdf5FormatError, UnsupportedFeatureError) — never a TypeError/RangeError, never a hang.
 * Mutations are deterministic (seeded PRNG) and aimed at the bytes the reader actually reads.
 */
import { mulberry32 } from "./support/prng.js";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ActivestoreError } from "../src/errors.js";
import { openHdf5 } from "../src/hdf5/file.js";
import type { ByteSource } from "../src/hdf5/io.js";
import type { Group } from "../src/hdf5/model.js";
import { bytesSource, fileBytes } from "./fixtures/hdf5-core/file-source.js";

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, "fixtures", "hdf5-core");
const corpus = resolve(here, "..", "..", "shared", "corpus");

const FILES = [
  join(fixtures, "earliest.h5"),
  join(fixtures, "latest.h5"),
  join(fixtures, "netcdf4.nc"),
  join(fixtures, "sizes4.h5"),
  join(fixtures, "sohm.h5"),
  join(corpus, "pyfive_new_style_groups.hdf5"),
  join(corpus, "kerchunk_vlen.h5"),
];
/** HDF5_FUZZ_CASES=5000 for a longer local run. */
const CASES_PER_FILE = Number(process.env.HDF5_FUZZ_CASES ?? 250);
const TRUNCATIONS_PER_FILE = 60;
/** A case that has not settled by then is a hang. Generous: the machine is shared. */
const HANG_MS = 10_000;


/** Reads everything the reader offers: the tree (attributes decoded) and every chunk index. */
async function readAll(source: ByteSource, cache: { maxBlocks?: number; readAhead?: number } = {}): Promise<void> {
  const file = await openHdf5(source, { blockSize: 512, readAhead: 0, ...cache });
  const root = await file.root();
  const datasets: Group["children"] = [];
  const visit = (g: Group) => {
    for (const c of g.children) {
      if (c.kind === "group") visit(c);
      else datasets.push(c);
    }
  };
  visit(root);
  for (const d of datasets) if (d.kind === "dataset" && d.layout.kind === "chunked") await file.chunks(d);
}

/** Offsets the reader touches on the intact file: mutations there exercise parsing, not raw data. */
async function touchedOffsets(bytes: Uint8Array): Promise<number[]> {
  const touched = new Set<number>();
  const base = bytesSource("probe", bytes);
  await readAll({
    ...base,
    async read(offset, length) {
      for (let i = offset; i < Math.min(offset + length, bytes.length); i += 512) touched.add(i);
      return base.read(offset, length);
    },
  });
  const out: number[] = [];
  for (const block of touched) for (let i = block; i < Math.min(block + 512, bytes.length); i++) out.push(i);
  return out;
}

type Outcome = "ok" | "named" | { unexpected: unknown };

async function runCase(name: string, bytes: Uint8Array, cache: { maxBlocks?: number; readAhead?: number }): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve({ unexpected: new Error(`${name}: no result after ${HANG_MS} ms`) }), HANG_MS);
  });
  // Truncated files checked at open by their recorded size; a source that cannot tell its size
  // (some HTTP servers) must still fail cleanly deeper in, so half the cuts hide it.
  const source = name.includes("cut@") && name.endsWith("?") ? { ...bytesSource(name, bytes), size: async () => undefined } : bytesSource(name, bytes);
  const work = readAll(source, cache).then(
    (): Outcome => "ok",
    (e: unknown): Outcome => (e instanceof ActivestoreError ? "named" : { unexpected: e }),
  );
  try {
    return await Promise.race([work, hang]);
  } finally {
    clearTimeout(timer);
  }
}

describe("HDF5 reader on corrupt input", () => {
  it("reads or raises a named error for every mutated or truncated file", { timeout: 900_000 }, async () => {
    const random = mulberry32(20261122);
    const tally = { ok: 0, named: 0, cases: 0 };
    const failures: string[] = [];
    for (const path of FILES) {
      const original = await fileBytes(path);
      const targets = await touchedOffsets(original);
      const cases: [string, Uint8Array][] = [];
      for (let i = 0; i < CASES_PER_FILE; i++) {
        const bytes = original.slice();
        const flips = 1 + Math.floor(random() * 4);
        const where: number[] = [];
        for (let f = 0; f < flips; f++) {
          const at = targets[Math.floor(random() * targets.length)];
          // Mix of bit flips, random bytes and the values that break lengths and addresses.
          const kind = random();
          bytes[at] = kind < 0.4 ? bytes[at] ^ (1 << Math.floor(random() * 8)) : kind < 0.7 ? Math.floor(random() * 256) : kind < 0.85 ? 0xff : 0;
          where.push(at);
        }
        cases.push([`${path} flip@${where.join(",")}`, bytes]);
      }
      for (let i = 0; i < TRUNCATIONS_PER_FILE; i++) {
        const at = i < TRUNCATIONS_PER_FILE / 2 ? Math.floor(random() * original.length) : targets[Math.floor(random() * targets.length)];
        cases.push([`${path} cut@${at}${i % 2 ? "?" : ""}`, original.subarray(0, at)]);
      }
      for (const [i, [name, bytes]] of cases.entries()) {
        // Every third case with a tiny cache, so eviction under concurrent reads is exercised too.
        const outcome = await runCase(name, bytes, i % 3 === 0 ? { maxBlocks: 4, readAhead: 2 } : {});
        tally.cases++;
        if (outcome === "ok") tally.ok++;
        else if (outcome === "named") tally.named++;
        else if (failures.length < 10) failures.push(`${name}: ${String((outcome.unexpected as Error)?.stack ?? outcome.unexpected)}`);
        else failures.push(name);
      }
    }
    console.log(`hdf5 fuzz: ${tally.cases} cases over ${FILES.length} files: ${tally.ok} read, ${tally.named} named errors, ${failures.length} other`);
    expect(failures.slice(0, 10)).toEqual([]);
    expect(tally.cases).toBe(FILES.length * (CASES_PER_FILE + TRUNCATIONS_PER_FILE));
  });
});
