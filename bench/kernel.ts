/**
 * Chunk-kernel microbenchmark: nanoseconds per element of `reduceChunk` over one decoded 75³ chunk
 * (421,875 elements, 3.4 MB as float64: raw75.nc's chunk) for each dtype and missing-data case,
 * against a baseline kernel in the same process, interleaved (A B A B ...) so load on the shared
 * machine hits both alike. Each dtype runs in its own process, as a real reduction sees one dtype
 * (V8 specialises element loads per call site; one process feeding five array types to one loop
 * measures something no user sees).
 *
 * Build (from the repository root), then run:
 *   npx tsc --module NodeNext --moduleResolution NodeNext --target ES2022 --strict --skipLibCheck \
 *     --types node --rootDir . --outDir node_modules/.cache/bench bench/kernel.ts
 *   node node_modules/.cache/bench/bench/kernel.js [--baseline path/to/old/kernel.js] [--repeat 7]
 *     [--dtype float64] [--case fill]
 *
 * A baseline is any compiled kernel.js exporting `reduceChunk`, e.g. an earlier commit's:
 *   mkdir -p /tmp/old && git archive <commit> src | tar -x -C /tmp/old
 *   npx tsc --module NodeNext --moduleResolution NodeNext --target ES2022 --strict --skipLibCheck \
 *     --types node --rootDir /tmp/old --outDir /tmp/old/build /tmp/old/src/active/kernel.ts
 *   node node_modules/.cache/bench/bench/kernel.js --baseline /tmp/old/build/src/active/kernel.js
 * "old/new" is the baseline's time over ours; the last column compares the two sums (the lanes
 * change the rounding, not the value).
 */
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { reduceChunk, type ChunkSelection, type KernelOptions, type NumericArray } from "../src/active/kernel.js";
import type { Partials } from "../src/active/partials.js";

type Reduce = (sel: ChunkSelection, options?: KernelOptions) => Partials;

const { values: flags } = parseArgs({
  options: {
    baseline: { type: "string" },
    repeat: { type: "string", default: "7" },
    dtype: { type: "string" },
    case: { type: "string" },
    child: { type: "boolean", default: false },
  },
});

const DTYPES = ["float64", "float32", "int16", "int32", "int64"] as const;
type Dtype = (typeof DTYPES)[number];
const SIDE = 75;
const N = SIDE ** 3;

interface Case {
  name: string;
  /** Integer dtypes have no NaN. */
  floatOnly?: boolean;
  missing: (fill: number) => KernelOptions["missing"];
  /** Puts rare values into the data (fills, NaN). */
  spoil?: (data: NumericArray, fill: number) => void;
  /** Reduce over axis 0 only (output 75×75): runs that scatter instead of folding. */
  axis0?: boolean;
  extremes?: boolean;
  /** Also M2 (variance/std): a second pass. */
  moments?: boolean;
  /** Select 50 of the 75 elements of the innermost dimension: 5,625 runs of 50 instead of one run. */
  short?: boolean;
}

const CASES: Case[] = [
  { name: "none", missing: () => ({}) },
  { name: "fill", missing: (fill) => ({ fillValue: fill }) },
  { name: "fill, no min/max", missing: (fill) => ({ fillValue: fill }), extremes: false },
  { name: "fill+range", missing: (fill) => ({ fillValue: fill, validMin: -1e6, validMax: 1e6 }) },
  {
    name: "fill present (1%)",
    missing: (fill) => ({ fillValue: fill }),
    spoil: (data, fill) => {
      for (let i = 0; i < N; i += 100) setValue(data, i, fill);
    },
  },
  {
    name: "NaN present",
    floatOnly: true,
    missing: (fill) => ({ fillValue: fill }),
    spoil: (data) => setValue(data, N >> 1, NaN),
  },
  { name: "NaN skipped, none present", floatOnly: true, missing: (fill) => ({ fillValue: fill, skipNaN: true }) },
  { name: "fill, axis 0", missing: (fill) => ({ fillValue: fill }), axis0: true },
  { name: "fill, axis 0, no min/max", missing: (fill) => ({ fillValue: fill }), axis0: true, extremes: false },
  { name: "fill, moments", missing: (fill) => ({ fillValue: fill }), moments: true },
  { name: "fill, runs of 50", missing: (fill) => ({ fillValue: fill }), short: true },
];

function setValue(data: NumericArray, i: number, v: number): void {
  if (data instanceof BigInt64Array) data[i] = BigInt(v);
  else if (!(data instanceof BigUint64Array)) data[i] = v;
}

const FILL: Record<Dtype, number> = {
  float64: 9.969209968386869e36,
  float32: Math.fround(9.969209968386869e36),
  int16: -32767,
  int32: -2147483647,
  int64: -9223372036854775806,
};

/** Temperature-like values (a fixed seed: every run reduces the same numbers). */
function makeData(dtype: Dtype): NumericArray {
  let seed = 12345;
  const next = () => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
  const values = Array.from({ length: N }, () => 280 + 20 * (next() + next() + next() - 1.5));
  switch (dtype) {
    case "float64":
      return Float64Array.from(values);
    case "float32":
      return Float32Array.from(values);
    case "int16":
      return Int16Array.from(values, (v) => Math.round(v * 100));
    case "int32":
      return Int32Array.from(values, (v) => Math.round(v * 1000));
    case "int64":
      return BigInt64Array.from(values, (v) => BigInt(Math.round(v * 1000)));
  }
}

function selection(data: NumericArray, axis0: boolean, short: boolean): ChunkSelection {
  const piece = { chunk: 0, localStart: 0, step: 1, count: SIDE, outStart: 0 };
  const inner = short ? { ...piece, localStart: 10, count: 50 } : piece;
  return {
    data,
    chunkShape: [SIDE, SIDE, SIDE],
    pieces: [piece, piece, inner],
    collapsed: axis0 ? [true, false, false] : [true, true, true],
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** Wall and CPU nanoseconds per element of `loops` reductions. */
function time(reduce: Reduce, sel: ChunkSelection, options: KernelOptions, loops: number, n: number): { wall: number; cpu: number } {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < loops; i++) reduce(sel, options);
  const wall = Number(process.hrtime.bigint() - t0);
  const cpu = process.cpuUsage(cpu0);
  return { wall: wall / (loops * n), cpu: ((cpu.user + cpu.system) * 1000) / (loops * n) };
}

function sameResult(a: Partials, b: Partials): string {
  const sa = Number(a.sum[0]);
  const sb = Number(b.sum[0]);
  if (a.count[0] !== b.count[0]) return `count ${a.count[0]} vs ${b.count[0]}`;
  if (Number.isNaN(sa) !== Number.isNaN(sb)) return `sum ${sa} vs ${sb}`;
  const rel = Math.abs(sa - sb) / Math.max(1, Math.abs(sb));
  return rel === 0 ? "identical" : `sum rel.diff ${rel.toExponential(1)}`;
}

async function child(dtype: Dtype): Promise<void> {
  const baseline: Reduce | undefined = flags.baseline
    ? ((await import(pathToFileURL(resolve(flags.baseline)).href)) as { reduceChunk: Reduce }).reduceChunk
    : undefined;
  const repeat = Number(flags.repeat);
  const fill = FILL[dtype];
  for (const c of CASES) {
    if (flags.case && c.name !== flags.case) continue;
    if (c.floatOnly && !dtype.startsWith("float")) continue;
    const data = makeData(dtype);
    c.spoil?.(data, fill);
    const sel = selection(data, c.axis0 ?? false, c.short ?? false);
    const elements = c.short ? SIDE * SIDE * 50 : N;
    const missing = c.missing(fill);
    const options: KernelOptions = { missing, extremes: c.extremes, moments: c.moments };
    const base: KernelOptions = { missing, moments: c.moments };
    // Warm both up (tier-up to optimised code) before timing.
    for (let i = 0; i < 20; i++) {
      reduceChunk(sel, options);
      baseline?.(sel, base);
    }
    const loops = dtype === "int64" ? 2 : 10;
    const ours: { wall: number; cpu: number }[] = [];
    const theirs: { wall: number; cpu: number }[] = [];
    for (let r = 0; r < repeat; r++) {
      // Alternate which goes first, so neither always runs on a warmer cache or quieter moment.
      if (r % 2 === 0) {
        ours.push(time(reduceChunk, sel, options, loops, elements));
        if (baseline) theirs.push(time(baseline, sel, base, loops, elements));
      } else {
        if (baseline) theirs.push(time(baseline, sel, base, loops, elements));
        ours.push(time(reduceChunk, sel, options, loops, elements));
      }
    }
    const w = median(ours.map((t) => t.wall));
    const cpu = median(ours.map((t) => t.cpu));
    let line = `${dtype.padEnd(8)} ${c.name.padEnd(26)} new ${w.toFixed(2).padStart(6)} ns/el (cpu ${cpu.toFixed(2)})`;
    if (baseline) {
      const bw = median(theirs.map((t) => t.wall));
      const bcpu = median(theirs.map((t) => t.cpu));
      const agree = c.axis0 ? "" : `  ${sameResult(reduceChunk(sel, options), baseline(sel, base))}`;
      line += `  old ${bw.toFixed(2).padStart(6)} ns/el (cpu ${bcpu.toFixed(2)})  old/new ${(bw / w).toFixed(2)}x${agree}`;
    }
    console.log(line);
  }
}

if (flags.child) {
  await child(flags.dtype as Dtype);
} else {
  const self = fileURLToPath(import.meta.url);
  const pass = process.argv.slice(2);
  for (const dtype of flags.dtype ? [flags.dtype] : DTYPES) {
    const r = spawnSync(process.execPath, [self, "--child", "--dtype", dtype, ...pass.filter((a, i) => a !== "--dtype" && pass[i - 1] !== "--dtype")], {
      stdio: "inherit",
    });
    if (r.status !== 0) process.exitCode = 1;
  }
}
