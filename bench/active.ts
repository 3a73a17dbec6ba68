/**
 * Active-reduction benchmark: the mean of a (500, 500, 500) float64 netCDF4 variable, whole and
 * `[0:200, 100:300, 50:450]`, by our engine (`openActive(file, "data").mean(sel)`), by
 * netCDF4-python + numpy (`Dataset(f)["data"][sel].mean()`), and `cat file > /dev/null` as the
 * floor for reading the bytes, in the same run. Every case runs in its own process under
 * /usr/bin/time (peak RSS and CPU seconds are exact and per case); the child times its own work
 * (open + reduce, imports excluded) and prints the answer, which must agree across tools.
 *
 * Inputs: `/usr/bin/python3 bench/data/generate.py` (raw75.nc: 75³ chunks, uncompressed, 343
 * chunks; zlib25.nc: 25³ chunks, zlib level 1 + shuffle, 8,000 chunks).
 *
 * Build and run (from the repository root; see bench/RESULTS.md):
 *   npx tsc --module NodeNext --moduleResolution NodeNext --target ES2022 --strict --skipLibCheck \
 *     --types node --rootDir . --outDir node_modules/.cache/bench bench/active.ts src/codecs/seek-bzip.d.ts \
 *     src/active/wasm/webassembly.d.ts src/active/reduce-worker.ts src/active/worker-decode.ts src/codecs/pool-worker.ts
 *   node node_modules/.cache/bench/bench/active.js [--dir /tmp/activestore-bench] [--repeat 3]
 *     [--concurrency N] [--cold] [--only raw75|zlib25] [--threads 0,2]
 *
 * `--threads 0,2`: one activestore case per value (Active's `threads` option: 0 = the in-thread
 * engine, N = N worker threads decode and reduce), interleaved with netCDF4, instead of the default
 * choice and the warm-process case (workers already running, a second reduction in the process).
 *
 * Warm by default: `cat` runs first, so every case reads from the page cache. `--cold` evicts the
 * file (posix_fadvise DONTNEED, this file only) before every case.
 */
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { availableParallelism, cpus, loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { medianBy, runChild, type ChildRun } from "./lib/child.js";
import { measureCommand } from "./lib/measure.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const { values: flags } = parseArgs({
  options: {
    dir: { type: "string", default: "/tmp/activestore-bench" },
    repeat: { type: "string", default: "1" },
    concurrency: { type: "string" },
    cold: { type: "boolean", default: false },
    only: { type: "string" },
    threads: { type: "string" },
    // Internal: run one of our cases and print its report.
    child: { type: "boolean", default: false },
    // Internal: the child first starts the reduction workers and runs one reduction (a long-running
    // process: a server, a notebook), then times a second open + reduction.
    warm: { type: "boolean", default: false },
    overhead: { type: "boolean", default: false },
    file: { type: "string" },
    sel: { type: "string" },
  },
});

const PYTHON = "/usr/bin/python3";
const WARM = "activestore, warm process (workers running, 2nd reduction)";
const SELECTIONS: Record<string, { python: string; ours: { start: number; stop: number; step: number }[] | null }> = {
  whole: { python: "...", ours: null },
  "[0:200,100:300,50:450]": {
    python: "0:200,100:300,50:450",
    ours: [
      { start: 0, stop: 200, step: 1 },
      { start: 100, stop: 300, step: 1 },
      { start: 50, stop: 450, step: 1 },
    ],
  },
};

interface Report {
  value: number;
  seconds: number;
  /** CPU seconds of the work itself (all threads of the process, start-up excluded). */
  workCpuSeconds: number;
  /** RSS (MiB) after imports, before the work: what the runtime and libraries cost by themselves. */
  startRssMiB: number;
  chunks?: number;
  bytesRead?: number;
}

async function childMain(): Promise<void> {
  const { openActive } = await import("../src/active/source.js");
  const selection = SELECTIONS[flags.sel!].ours;
  const options = {
    ...(flags.concurrency !== undefined && { concurrency: Number(flags.concurrency) }),
    ...(flags.threads !== undefined && { threads: Number(flags.threads) }),
  };
  if (flags.warm) {
    const { reducePool } = await import("../src/active/reduce-pool.js");
    await reducePool(Math.min(availableParallelism(), 4));
    await (await openActive(flags.file!, "data", options)).mean(selection);
  }
  const startRssMiB = process.memoryUsage.rss() / 2 ** 20;
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  const active = await openActive(flags.file!, "data", options);
  const result = await active.mean(selection);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  const report: Report = {
    value: result.value as number,
    seconds,
    workCpuSeconds: (used.user + used.system) / 1e6,
    startRssMiB,
    chunks: result.chunks,
    bytesRead: result.bytesRead,
  };
  console.log(JSON.stringify(report));
}

/**
 * Per-chunk costs in CPU time, without file I/O or codecs: a zarr array of 20,000 tiny chunks in a
 * MemoryStore (whole-array mean through the engine, against bare store.get and zarrita getChunk
 * loops over the same chunks), the plan for 250,000 chunks, and merging a time-mean map's blocks.
 */
async function overheadMain(): Promise<void> {
  const zarr = await import("zarrita");
  const { MemoryStore } = await import("../src/stores/memory.js");
  const { reduceArray } = await import("../src/active/engine.js");
  const { planChunks } = await import("../src/active/plan.js");
  const { emptyPartials, mergePartials } = await import("../src/active/partials.js");
  const cpu = () => {
    const c = process.cpuUsage();
    return (c.user + c.system) / 1e3;
  };
  const best = async (fn: () => unknown, reps = 3) => {
    let min = Infinity;
    for (let r = 0; r < reps; r++) {
      const c0 = cpu();
      await fn();
      min = Math.min(min, cpu() - c0);
    }
    return min;
  };
  const store = new MemoryStore();
  const shape = [200, 100, 4];
  const chunkShape = [1, 1, 4]; // 20,000 chunks of 4 float64
  const n = shape.reduce((a, b) => a * b, 1);
  const arr = await zarr.create(store, { shape, chunkShape, dtype: "float64", fillValue: -9999 });
  await zarr.set(arr, null, { data: new Float64Array(n).map((_, i) => i % 97), shape, stride: [400, 4, 1] });
  const chunks = n / 4;
  const slab = shape.map((count) => ({ start: 0, step: 1, count, dropped: false }));
  const tasks = [...planChunks(slab, chunkShape)];
  const source = arr as unknown as import("../src/active/engine.js").ChunkSource;
  const engine = await best(() => reduceArray(source, null, { missing: { fillValue: -9999 } }));
  const getChunk = await best(async () => {
    for (let i = 0; i < tasks.length; i += 16) await Promise.all(tasks.slice(i, i + 16).map((t) => arr.getChunk(t.coords)));
  });
  const storeGet = await best(async () => {
    for (let i = 0; i < tasks.length; i += 16) await Promise.all(tasks.slice(i, i + 16).map((t) => store.get(`c/${t.coords.join("/")}`)));
  });
  const bigSlab = [500, 500, 1000].map((count) => ({ start: 0, step: 1, count, dropped: false }));
  const plan = await best(() => {
    let k = 0;
    for (const _ of planChunks(bigSlab, [10, 10, 10])) k++;
    return k;
  });
  // A time-mean map of (500, 500) from 25³ chunks: 400 blocks of 25×25 per time slab of chunks.
  const into = emptyPartials([500, 500], false, false);
  const block = emptyPartials([25, 25], false, false);
  block.count.fill(25);
  const merge = await best(() => {
    for (let t = 0; t < 20; t++) for (let y = 0; y < 20; y++) for (let x = 0; x < 20; x++) mergePartials(into, block, [y * 25, x * 25]);
  });
  console.log(
    JSON.stringify({
      engineMsPerChunk: engine / chunks,
      getChunkMsPerChunk: getChunk / chunks,
      storeGetMsPerChunk: storeGet / chunks,
      planUsPerChunk: (plan * 1e3) / 250_000,
      mergeNsPerElement: (merge * 1e6) / (20 * 500 * 500),
    }),
  );
}

const PYTHON_CASE = `
import json, resource, sys, time
import netCDF4, numpy as np
path, sel = sys.argv[1], sys.argv[2]
start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
index = Ellipsis if sel == "..." else tuple(slice(*map(int, s.split(":"))) for s in sel.split(","))
c0, t0 = time.process_time(), time.perf_counter()
ds = netCDF4.Dataset(path)
value = float(ds["data"][index].mean())
ds.close()
print(json.dumps({"value": value, "seconds": time.perf_counter() - t0, "workCpuSeconds": time.process_time() - c0, "startRssMiB": start_rss}))
`;

const EVICT = `
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
os.close(fd)
`;

function evict(file: string): void {
  if (!flags.cold) return;
  const r = spawnSync(PYTHON, ["-c", EVICT, file]);
  if (r.status !== 0) throw new Error(`cannot evict ${file}: ${r.stderr}`);
}

interface Row {
  file: string;
  selection: string;
  tool: string;
  run: ChildRun<Report>;
}

async function mainBench(): Promise<void> {
  const self = fileURLToPath(import.meta.url);
  const repeat = Math.max(1, Number(flags.repeat));
  const names = ["raw75", "zlib25"].filter((n) => flags.only === undefined || flags.only === n);
  const rows: Row[] = [];
  const cats = new Map<string, { seconds: number; cpuSeconds: number; peakRssMiB: number }>();
  console.error(`${cpus().length} cores, load ${loadavg().map((l) => l.toFixed(1)).join(" ")}, ${flags.cold ? "cold" : "warm"}`);
  for (const name of names) {
    const file = join(flags.dir!, `${name}.nc`);
    if (!existsSync(file)) throw new Error(`${file} is missing: run /usr/bin/python3 bench/data/generate.py`);
    const size = statSync(file).size;
    const catRuns = [];
    for (let r = 0; r < repeat; r++) {
      evict(file);
      catRuns.push(await measureCommand("cat", "cat", [file], {}, { objects: 1, bytes: size }));
    }
    cats.set(name, medianBy(catRuns, (m) => m.seconds));
    for (const [selection, sel] of Object.entries(SELECTIONS)) {
      const threads = flags.threads?.split(",").map((t) => String(Number(t)));
      const ourTools = threads ? threads.map((t) => `activestore threads=${t}`) : ["activestore"];
      const runs: Record<string, ChildRun<Report>[]> = Object.fromEntries(
        [...ourTools, "netCDF4+numpy", ...(threads ? [] : [WARM])].map((t) => [t, []]),
      );
      const ours = (extra: string[]) =>
        runChild<Report>(process.execPath, [self, "--child", "--file", file, "--sel", selection, ...(flags.concurrency !== undefined ? ["--concurrency", flags.concurrency] : []), ...extra]);
      for (let r = 0; r < repeat; r++) {
        // Interleaved, so a burst of load on the machine hits every tool.
        for (const [i, tool] of ourTools.entries()) {
          evict(file);
          runs[tool].push(await ours(threads ? ["--threads", threads[i]] : []));
        }
        evict(file);
        runs["netCDF4+numpy"].push(await runChild<Report>(PYTHON, ["-c", PYTHON_CASE, file, sel.python]));
        if (!threads) {
          evict(file);
          runs[WARM].push(await ours(["--warm"]));
        }
      }
      for (const [tool, list] of Object.entries(runs)) {
        rows.push({ file: name, selection, tool, run: medianBy(list, (x) => x.report.seconds) });
        console.error(`${name} ${selection} ${tool}: ${list.map((x) => x.report.seconds.toFixed(2)).join(" ")} s`);
      }
      const theirs = runs["netCDF4+numpy"][0].report.value;
      for (const [tool, list] of Object.entries(runs)) {
        const ours = list[0].report.value;
        if (Math.abs(ours - theirs) > 1e-9 * Math.abs(theirs)) {
          throw new Error(`${name} ${selection}: ${tool} says ${ours}, netCDF4 says ${theirs}`);
        }
      }
    }
  }
  console.log(render(rows, cats));
  const overhead = await runChild<Record<string, number>>(process.execPath, [self, "--overhead"]);
  const o = overhead.report;
  console.log(
    [
      "",
      "| per-chunk cost (CPU, no file I/O or codec) | value |",
      "|---|---:|",
      `| engine: whole-array mean of 20,000 chunks of 4 float64 (MemoryStore) | ${f(o.engineMsPerChunk, 4)} ms/chunk |`,
      `| … of which zarrita getChunk (16 at a time) | ${f(o.getChunkMsPerChunk, 4)} ms/chunk |`,
      `| … of which the store's get (16 at a time) | ${f(o.storeGetMsPerChunk, 4)} ms/chunk |`,
      `| chunk plan, 250,000 chunks | ${f(o.planUsPerChunk, 3)} µs/chunk |`,
      `| mergePartials, 25×25 blocks into a 500×500 map | ${f(o.mergeNsPerElement, 2)} ns/element |`,
    ].join("\n"),
  );
}

const f = (n: number, digits = 2) => n.toFixed(digits);

function render(rows: Row[], cats: Map<string, { seconds: number; cpuSeconds: number; peakRssMiB: number }>): string {
  const lines = [
    "| file | selection | tool | seconds | CPU s (work) | process s | process CPU s | peak RSS MiB | RSS before work MiB | chunks | MB read | mean |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const [name, cat] of cats) {
    lines.push(`| ${name} | whole file | cat > /dev/null | ${f(cat.seconds)} | | ${f(cat.seconds)} | ${f(cat.cpuSeconds)} | ${f(cat.peakRssMiB, 0)} | | | | |`);
    for (const r of rows.filter((x) => x.file === name)) {
      const rep = r.run.report;
      lines.push(
        `| ${name} | ${r.selection} | ${r.tool} | ${f(rep.seconds)} | ${f(rep.workCpuSeconds)} | ${f(r.run.processSeconds)} | ${f(r.run.cpuSeconds)} | ${f(r.run.peakRssMiB, 0)} | ${f(rep.startRssMiB, 0)} | ${rep.chunks ?? ""} | ${rep.bytesRead === undefined ? "" : f(rep.bytesRead / 1e6, 0)} | ${rep.value.toPrecision(12)} |`,
      );
    }
  }
  lines.push("", "| file | selection | netCDF4 ÷ ours (time) | netCDF4 ÷ ours (CPU) | ours ÷ cat (time) |", "|---|---|---:|---:|---:|");
  for (const name of cats.keys()) {
    for (const selection of Object.keys(SELECTIONS)) {
      const nc = rows.find((r) => r.file === name && r.selection === selection && r.tool === "netCDF4+numpy")!.run.report;
      for (const row of rows.filter((r) => r.file === name && r.selection === selection && r.tool.startsWith("activestore") && !r.tool.includes("what-if"))) {
        const ours = row.run.report;
        const cat = selection === "whole" ? `${f(ours.seconds / cats.get(name)!.seconds)}×` : "n/a";
        const label = row.tool === "activestore" ? selection : `${selection} (${row.tool})`;
        lines.push(`| ${name} | ${label} | ${f(nc.seconds / ours.seconds)}× | ${f(nc.workCpuSeconds / ours.workCpuSeconds)}× | ${cat} |`);
      }
    }
  }
  return lines.join("\n");
}

await (flags.overhead ? overheadMain() : flags.child ? childMain() : mainBench());
