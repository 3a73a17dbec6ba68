/**
 * `activestore convert <source> <dest-url> --chunks t=24,lat=90 [--codec zstd] ...`: HDF5/netCDF4,
 * references JSON (one file or a combined set) or zarr → zarr, by one process or by N independent
 * ones:
 *   convert SRC DEST --init                 metadata + coordinate variables, once
 *   convert SRC DEST --rank R --ranks N     one partition (or rank/size from SLURM, Kubernetes,
 *                                           AWS Batch, Google Batch, Cloud Run, MPI variables)
 *   convert SRC DEST                        everything in this process
 *   convert SRC DEST --verify               afterwards, compare every chunk with the source
 */
import { InvalidArgumentError, Option, type Command } from "commander";
import {
  convertPartition,
  initConvert,
  verifyConversion,
  type ConvertOptions,
  type ConvertReport,
} from "../../datasets/convert.js";
import { parseCodecs, type CodecSpec } from "../../datasets/metadata.js";
import { detectRank } from "../../datasets/ranks.js";
import { WorkerPool } from "../../datasets/pool.js";
import { openSource } from "../../datasets/source.js";
import { openStore } from "../../stores/open.js";
import { CliError } from "../errors.js";
import { closeStore, storeOptions, type GlobalOptions } from "../stores.js";

interface ConvertCliOptions extends GlobalOptions {
  chunks?: Record<string, number>;
  codec: CodecSpec[];
  format: "2" | "3";
  variables?: string[];
  dims?: string[];
  init?: boolean;
  rank?: number;
  ranks?: number;
  verify?: boolean;
  jobs?: number;
  threads?: number;
}

function parseChunks(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of text.split(",")) {
    const [name, size] = part.split("=").map((s) => s.trim());
    const n = Number(size);
    if (!name || !Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected name=size pairs like t=24,lat=90, got "${part}"`);
    out[name] = n;
  }
  return out;
}

function nonNegative(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`expected a non-negative integer, got "${text}"`);
  return n;
}

function positive(text: string): number {
  const n = nonNegative(text);
  if (n < 1) throw new InvalidArgumentError(`expected a positive integer, got "${text}"`);
  return n;
}

function names(text: string): string[] {
  return text.split(",").map((s) => s.trim()).filter(Boolean);
}

function codecs(text: string): CodecSpec[] {
  try {
    return parseCodecs(text);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}


function summary(report: ConvertReport): string {
  const parts = Object.entries(report.chunks).map(([name, n]) => `${name} ${n} chunks`);
  const skipped = Object.entries(report.skipped).map(([name, why]) => `${name} skipped (${why})`);
  return [...parts, ...skipped].join(", ") || "nothing to write";
}

export async function runConvert(src: string, dst: string, options: ConvertCliOptions, out = process.stdout): Promise<void> {
  const convert: ConvertOptions = {
    chunks: options.chunks,
    codecs: options.codec,
    format: options.format === "2" ? 2 : 3,
    variables: options.variables,
    dims: options.dims,
    concurrency: options.jobs,
    pool: options.threads ? new WorkerPool(options.threads) : undefined,
  };
  // --init alone never picks a rank up from the environment: it is the one-off step before the array job.
  const explicit = options.rank !== undefined || options.ranks !== undefined;
  const rank = options.init && !explicit ? undefined : detectRank({ rank: options.rank, ranks: options.ranks });
  const source = await openSource(src, storeOptions(options));
  const dest = openStore(dst, storeOptions(options));
  try {
    // A lone process (no rank, or a job of one task) initialises as well as writing.
    if (options.init || !rank || rank.ranks === 1) {
      const report = await initConvert(source, dest, convert);
      out.write(`init: ${summary(report)}\n`);
    }
    if (rank || !options.init) {
      const { rank: r, ranks } = rank ?? { rank: 0, ranks: 1 };
      const report = await convertPartition(source, dest, { rank: r, ranks }, convert);
      out.write(`rank ${r}/${ranks}${rank ? ` (${rank.source})` : ""}: ${summary(report)}\n`);
    }
    if (options.verify) {
      const report = await verifyConversion(source, dest, convert);
      if (report.mismatches.length > 0) {
        throw new CliError(`verify: ${report.mismatches.length} of ${report.chunks} chunks differ from the source: ${report.mismatches.join(", ")}`);
      }
      out.write(`verify: ${report.chunks} chunks match the source\n`);
    }
  } finally {
    await convert.pool?.close();
    await closeStore(dest);
  }
}

export function register(program: Command): void {
  program
    .command("convert")
    .description("convert HDF5/netCDF4, references JSON or zarr into a zarr store, optionally as one of N independent processes")
    .argument("<source>", "HDF5/netCDF4 file, references .json (one file or combined), or zarr store URL")
    .argument("<dest>", "destination zarr store URL or path")
    .option("--chunks <spec>", "destination chunks by dimension name: t=24,lat=90 (others keep the source's)", parseChunks)
    .option("--codec <spec>", "compressor: zstd[:level], gzip, zlib, blosc, lz4 or none", codecs, codecs("zstd"))
    .addOption(new Option("--format <n>", "zarr format").choices(["2", "3"]).default("3"))
    .option("--variables <names>", "variables to convert (default: every numeric array)", names)
    .option("--dims <names>", "partition dimensions in priority order (default: each variable's, in order)", names)
    .option("--init", "write metadata and coordinate variables, then stop (run once before the ranks)")
    .option("--rank <r>", "this process's rank (default: from SLURM/Kubernetes/AWS/Google/MPI variables)", nonNegative)
    .option("--ranks <n>", "number of processes", positive)
    .option("--jobs <n>", "chunks in flight in this process (default 4)", positive)
    .option("--threads <n>", "encode chunks on n worker threads (default: in this thread)", positive)
    .option("--verify", "compare every destination chunk with the source afterwards")
    .action(async (src: string, dst: string, _opts: ConvertCliOptions, command: Command) => {
      await runConvert(src, dst, command.optsWithGlobals<ConvertCliOptions>());
    });
}
