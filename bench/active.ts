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
 *     --types node --rootDir . --outDir node_modules/.cache/bench bench/active.ts
 *   node node_modules/.cache/bench/bench/active.js [--dir /tmp/activestore-bench] [--repeat 3]
 *     [--concurrency 16] [--cold] [--only raw75|zlib25]
 *
 * Warm by default: `cat` runs first, so every case reads from the page cache. `--cold` evicts the
 * file (posix_fadvise DONTNEED, this file only) before every case.
 */
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { cpus, loadavg } from "node:os";
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
    concurrency: { type: "string", default: "16" },
    cold: { type: "boolean", default: false },
    only: { type: "string" },
    // Internal: run one of our cases and print its report.
    child: { type: "boolean", default: false },
    file: { type: "string" },
    sel: { type: "string" },
  },
});

const PYTHON = "/usr/bin/python3";
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
  chunks?: number;
  bytesRead?: number;
}

async function childMain(): Promise<void> {
  const { openActive } = await import("../src/active/source.js");
  const selection = SELECTIONS[flags.sel!].ours;
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  const active = await openActive(flags.file!, "data", { concurrency: Number(flags.concurrency) });
  const result = await active.mean(selection);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  const report: Report = {
    value: result.value as number,
    seconds,
    workCpuSeconds: (used.user + used.system) / 1e6,
    chunks: result.chunks,
    bytesRead: result.bytesRead,
  };
  console.log(JSON.stringify(report));
}

const PYTHON_CASE = `
import json, sys, time
import netCDF4, numpy as np
path, sel = sys.argv[1], sys.argv[2]
index = Ellipsis if sel == "..." else tuple(slice(*map(int, s.split(":"))) for s in sel.split(","))
c0, t0 = time.process_time(), time.perf_counter()
ds = netCDF4.Dataset(path)
value = float(ds["data"][index].mean())
ds.close()
print(json.dumps({"value": value, "seconds": time.perf_counter() - t0, "workCpuSeconds": time.process_time() - c0}))
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
      const runs: Record<string, ChildRun<Report>[]> = { activestore: [], "netCDF4+numpy": [] };
      for (let r = 0; r < repeat; r++) {
        // Interleaved, so a burst of load on the machine hits both tools.
        evict(file);
        runs.activestore.push(
          await runChild<Report>(process.execPath, [self, "--child", "--file", file, "--sel", selection, "--concurrency", String(flags.concurrency)]),
        );
        evict(file);
        runs["netCDF4+numpy"].push(await runChild<Report>(PYTHON, ["-c", PYTHON_CASE, file, sel.python]));
      }
      for (const [tool, list] of Object.entries(runs)) {
        rows.push({ file: name, selection, tool, run: medianBy(list, (x) => x.report.seconds) });
        console.error(`${name} ${selection} ${tool}: ${list.map((x) => x.report.seconds.toFixed(2)).join(" ")} s`);
      }
      const [ours, theirs] = [runs.activestore[0].report.value, runs["netCDF4+numpy"][0].report.value];
      if (Math.abs(ours - theirs) > 1e-9 * Math.abs(theirs)) {
        throw new Error(`${name} ${selection}: activestore says ${ours}, netCDF4 says ${theirs}`);
      }
    }
  }
  console.log(render(rows, cats));
}

const f = (n: number, digits = 2) => n.toFixed(digits);

function render(rows: Row[], cats: Map<string, { seconds: number; cpuSeconds: number; peakRssMiB: number }>): string {
  const lines = [
    "| file | selection | tool | seconds | CPU s (work) | process s | process CPU s | peak RSS MiB | chunks | MB read | mean |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const [name, cat] of cats) {
    lines.push(`| ${name} | whole file | cat > /dev/null | ${f(cat.seconds)} | | ${f(cat.seconds)} | ${f(cat.cpuSeconds)} | ${f(cat.peakRssMiB, 0)} | | | |`);
    for (const r of rows.filter((x) => x.file === name)) {
      const rep = r.run.report;
      lines.push(
        `| ${name} | ${r.selection} | ${r.tool} | ${f(rep.seconds)} | ${f(rep.workCpuSeconds)} | ${f(r.run.processSeconds)} | ${f(r.run.cpuSeconds)} | ${f(r.run.peakRssMiB, 0)} | ${rep.chunks ?? ""} | ${rep.bytesRead === undefined ? "" : f(rep.bytesRead / 1e6, 0)} | ${rep.value.toPrecision(12)} |`,
      );
    }
  }
  lines.push("", "| file | selection | netCDF4 ÷ ours (time) | netCDF4 ÷ ours (CPU) | ours ÷ cat (time) |", "|---|---|---:|---:|---:|");
  for (const name of cats.keys()) {
    for (const selection of Object.keys(SELECTIONS)) {
      const ours = rows.find((r) => r.file === name && r.selection === selection && r.tool === "activestore")!.run.report;
      const nc = rows.find((r) => r.file === name && r.selection === selection && r.tool === "netCDF4+numpy")!.run.report;
      const cat = selection === "whole" ? `${f(ours.seconds / cats.get(name)!.seconds)}×` : "n/a";
      lines.push(`| ${name} | ${selection} | ${f(nc.seconds / ours.seconds)}× | ${f(nc.workCpuSeconds / ours.workCpuSeconds)}× | ${cat} |`);
    }
  }
  return lines.join("\n");
}

await (flags.child ? childMain() : mainBench());
