/**
 * Partitioned-write benchmark: a 1 GB netCDF4 variable (500³ float64, 25³ chunks, zlib + shuffle;
 * bench/data/generate.py) converted to zarr v3 (zstd) by 1, 2 and 4 independent processes, to the
 * local disk and to s3rver. Metadata is written once (--init) before the clock starts; each rank is
 * a separate `node` process converting its partition, as `activestore convert --rank R --ranks N`
 * would. Reported: wall time of the slowest rank, MB/s of decoded data (10^6 bytes), speed-up over
 * one process, and each process's peak RSS (its own maxRSS from process.resourceUsage()).
 *
 * Build and run (from the repository root):
 *   npx tsc --module NodeNext --moduleResolution NodeNext --target ES2022 --strict --skipLibCheck \
 *     --types node --rootDir . --outDir node_modules/.cache/bench-write bench/write.ts src/datasets/pool-worker.ts \
 *     src/codecs/seek-bzip.d.ts src/active/wasm/webassembly.d.ts
 *   node node_modules/.cache/bench-write/bench/write.js [--input /tmp/activestore-bench/zlib25.nc]
 *     [--chunks 50] [--processes 1,2,4] [--stores local,s3] [--quick] [--threads N]
 * --threads N gives each rank a WorkerPool of N threads that encode the chunks (the worker-thread engine).
 * --pin runs rank r under `taskset -c <r mod cores>`: one CPU per rank, as a SLURM array task with
 * --cpus-per-task=1 (or a Kubernetes pod with a 1-CPU limit) gets; all of a rank's threads (libuv's
 * zlib pool, codec workers) share that CPU.
 * --quick converts the first 100 of 500 steps of the first dimension (200 MB) instead of all of it.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as zarr from "zarrita";
import { createDataset, openDataset } from "../src/datasets/create.js";
import { load } from "../src/datasets/ops.js";
import { partitionRegion } from "../src/datasets/partitions.js";
import { WorkerPool } from "../src/datasets/pool.js";
import { openSource } from "../src/datasets/source.js";
import { openStore, type OpenStoreOptions } from "../src/stores/open.js";
import { S3RVER_CREDENTIALS, startS3rver } from "../test/servers/s3rver.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const { values: flags } = parseArgs({
  options: {
    input: { type: "string", default: "/tmp/activestore-bench/zlib25.nc" },
    variable: { type: "string", default: "data" },
    chunks: { type: "string", default: "50" },
    processes: { type: "string", default: "1,2,4" },
    stores: { type: "string", default: "local,s3" },
    quick: { type: "boolean", default: false },
    // child mode
    child: { type: "boolean", default: false },
    dest: { type: "string" },
    endpoint: { type: "string" },
    rank: { type: "string" },
    ranks: { type: "string" },
    steps: { type: "string" },
    threads: { type: "string", default: "0" },
    pin: { type: "boolean", default: false },
  },
});

function storeOptions(endpoint?: string): OpenStoreOptions {
  return endpoint ? { s3: { endpoint, credentials: S3RVER_CREDENTIALS, region: "us-east-1" } } : {};
}

/** One rank: convert its partition of the first `steps` steps, print bytes and peak RSS as JSON. */
async function child(): Promise<void> {
  const source = await openSource(flags.input!, {});
  const variable = source.variables.find((v) => v.name === flags.variable)!;
  const dest = openStore(flags.dest!, storeOptions(flags.endpoint));
  const ds = await openDataset(dest, flags.variable!);
  const steps = Number(flags.steps);
  const shape = [steps, ...ds.shape.slice(1)];
  const region = partitionRegion(shape, ds.chunks, Number(flags.ranks), Number(flags.rank));
  let bytes = 0;
  if (region) {
    const threads = Number(flags.threads);
    const pool = threads > 0 ? new WorkerPool(threads) : undefined;
    try {
      await load(ds, variable.array, { partition: region, concurrency: threads > 0 ? 2 * threads + 2 : 4, pool });
    } finally {
      await pool?.close();
    }
    bytes = region.reduce((n, [s, e]) => n * (e - s), 8);
  }
  await dest.close();
  const usage = process.resourceUsage();
  const cpuSeconds = (usage.userCPUTime + usage.systemCPUTime) / 1e6;
  process.stdout.write(JSON.stringify({ bytes, maxRssMiB: usage.maxRSS / 1024, cpuSeconds }) + "\n");
  process.exit(0);
}

interface RankResult {
  bytes: number;
  maxRssMiB: number;
  /** User + system CPU of the rank process (all its threads, libuv's zlib pool included). */
  cpuSeconds: number;
}

function runRank(args: string[], cpu?: number): Promise<RankResult> {
  return new Promise((done, fail) => {
    const command = [process.execPath, fileURLToPath(import.meta.url), "--child", ...args];
    const [file, ...rest] = cpu === undefined ? command : ["taskset", "-c", String(cpu), ...command];
    const proc = spawn(file, rest, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    proc.stdout.on("data", (d) => (out += d));
    proc.on("close", (code) => (code === 0 ? done(JSON.parse(out) as RankResult) : fail(new Error(`rank exited with ${code}`))));
  });
}

async function main(): Promise<void> {
  const source = await openSource(flags.input!, {});
  const variable = source.variables.find((v) => v.name === flags.variable);
  if (!variable) throw new Error(`${flags.input} has no variable ${flags.variable}`);
  const c = Number(flags.chunks);
  const steps = flags.quick ? 100 : variable.array.shape[0];
  const total = steps * variable.array.shape.slice(1).reduce((a, b) => a * b, 1) * 8;
  const s3 = flags.stores!.includes("s3") ? await startS3rver({ buckets: ["bench"] }) : undefined;
  const scratch = await mkdtemp(join(tmpdir(), "bench-write-"));
  const rows: string[] = [];
  const baseline = new Map<string, number>();
  console.error(`${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
  try {
    for (const where of flags.stores!.split(",")) {
      for (const n of flags.processes!.split(",").map(Number)) {
        const url = where === "s3" ? `s3://bench/run-${n}.zarr` : join(scratch, `run-${n}.zarr`);
        const endpoint = where === "s3" ? s3!.endpoint : undefined;
        const dest = openStore(url, storeOptions(endpoint));
        // The destination covers the whole variable; --quick ranks split only the first `steps` steps.
        await createDataset(dest, flags.variable!, {
          shape: variable.array.shape,
          chunks: variable.array.shape.map(() => c),
          dtype: "float64",
          codecs: [{ id: "zstd", level: 3 }],
          dimensionNames: variable.dimensionNames,
        });
        await dest.close();
        const args = ["--input", flags.input!, "--variable", flags.variable!, "--dest", url, "--steps", String(steps), "--ranks", String(n), "--threads", flags.threads!];
        if (endpoint) args.push("--endpoint", endpoint);
        const started = performance.now();
        const cores = cpus().length;
        const results = await Promise.all(
          Array.from({ length: n }, (_, r) => runRank([...args, "--rank", String(r)], flags.pin ? r % cores : undefined)),
        );
        const seconds = (performance.now() - started) / 1000;
        const bytes = results.reduce((a, r) => a + r.bytes, 0);
        if (bytes !== total) throw new Error(`ranks converted ${bytes} bytes, expected ${total}`);
        // Spot check: the last element written equals the source's.
        const check = await openDataset(openStore(url, storeOptions(endpoint)), flags.variable!);
        const at = [steps - 1, variable.array.shape[1] - 1, variable.array.shape[2] - 1];
        const [got, want] = await Promise.all([zarr.get(check.array, at), zarr.get(variable.array, at)]);
        if (got !== want) throw new Error(`spot check failed at [${at}]: ${String(got)} != ${String(want)}`);
        const mbps = total / 1e6 / seconds;
        if (n === 1) baseline.set(where, mbps);
        const speedup = baseline.has(where) ? `${(mbps / baseline.get(where)!).toFixed(2)}×` : "";
        const rss = results.map((r) => r.maxRssMiB.toFixed(0)).join(" / ");
        const cpu = results.map((r) => r.cpuSeconds.toFixed(1)).join(" / ");
        const threads =
          (Number(flags.threads) > 0 ? ` (+${flags.threads} encode threads each)` : "") + (flags.pin ? " (1 CPU each)" : "");
        rows.push(`| ${where === "s3" ? "s3rver" : "local disk"} | ${n}${threads} | ${(total / 1e6).toFixed(0)} | ${seconds.toFixed(1)} | ${mbps.toFixed(1)} | ${speedup} | ${rss} | ${cpu} |`);
        console.error(rows.at(-1));
      }
    }
  } finally {
    await s3?.stop();
    await rm(scratch, { recursive: true, force: true });
  }
  console.log(`| destination | processes | MB (decoded) | seconds | MB/s | vs 1 process | peak RSS per process (MiB) | CPU s per process |`);
  console.log(`|---|---|---|---|---|---|---|---|`);
  for (const row of rows) console.log(row);
  console.log(`\nload average after: ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
}

await (flags.child ? child() : main());
