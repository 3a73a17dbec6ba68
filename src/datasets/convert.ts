/**
 * Many files → one zarr store, written by independent processes (xpartition's recipe):
 *  1. `initConvert` once: group and array metadata (create-only), and the coordinate variables.
 *  2. `convertPartition` in each of N processes: rank r writes the chunks of its partition of every
 *     data variable. Partitions are chunk-aligned and disjoint, so no chunk has two writers; every
 *     write is a whole chunk, so re-running a rank (after a crash or a kill) is safe.
 *  3. `verifyConversion` (optional): every destination chunk decoded and compared with the source.
 */
import { RequestError } from "../errors.js";
import type { Store } from "../stores/types.js";
import { createDataset, createGroup, openDataset } from "./create.js";
import type { Dataset, NumericArray } from "./dataset.js";
import { forEachBounded } from "./engine.js";
import { chunkRegion, countChunksIn } from "./grid.js";
import { isNumericDataType, type CodecSpec } from "./metadata.js";
import { load, readSourceRegion } from "./ops.js";
import { dimsByName, partitionRegion } from "./partitions.js";
import type { WorkerPool } from "./pool.js";
import type { OpenedSource, SourceVariable } from "./source.js";

export interface ConvertOptions {
  /** Destination chunk size by dimension name; other dimensions keep the source's chunking. */
  chunks?: Record<string, number>;
  /** Default zstd. */
  codecs?: CodecSpec[];
  format?: 2 | 3;
  /** Variables to convert (default: every numeric array). */
  variables?: string[];
  /** Partition dimensions by name, in priority order (default: each variable's dims in order). */
  dims?: string[];
  /** Chunks in flight per process. Default 4. */
  concurrency?: number;
  onChunk?: (variable: string, done: number) => void;
  /** Encode on these worker threads (the worker-thread engine). */
  pool?: WorkerPool;
}

export interface ConvertReport {
  /** Chunks written per variable. */
  chunks: Record<string, number>;
  /** Variables left out, and why. */
  skipped: Record<string, string>;
}

/** A 1-d variable named like its dimension: written whole at init, like xarray's index coordinates. */
export function isCoordinate(v: SourceVariable): boolean {
  return v.array.shape.length === 1 && v.dimensionNames?.[0] === v.name.split("/").pop();
}

function selected(source: OpenedSource, options: ConvertOptions, report: ConvertReport): SourceVariable[] {
  const wanted = options.variables;
  if (wanted) {
    const missing = wanted.filter((w) => !source.variables.some((v) => v.name === w.replace(/^\/+/, "")));
    if (missing.length) throw new RequestError(`variables not in ${source.url}: ${missing.join(", ")}`);
  }
  return source.variables.filter((v) => {
    if (wanted && !wanted.some((w) => w.replace(/^\/+/, "") === v.name)) return false;
    if (!isNumericDataType(v.array.dtype)) {
      report.skipped[v.name] = `dtype ${v.array.dtype} is not numeric`;
      return false;
    }
    return true;
  });
}

function destinationChunks(v: SourceVariable, options: ConvertOptions): number[] {
  return v.array.shape.map((n, i) => {
    const name = v.dimensionNames?.[i];
    const asked = name !== undefined ? options.chunks?.[name] : undefined;
    return Math.max(1, asked ?? Math.min(v.array.chunks[i], Math.max(n, 1)));
  });
}

function fillOf(v: SourceVariable): number | null {
  const fill = v.array.fillValue;
  return typeof fill === "number" ? fill : typeof fill === "bigint" ? Number(fill) : null;
}

/** Writes group and array metadata, then the coordinate variables. Safe to re-run. */
export async function initConvert(source: OpenedSource, dest: Store, options: ConvertOptions = {}): Promise<ConvertReport> {
  const report: ConvertReport = { chunks: {}, skipped: {} };
  const format = options.format ?? 3;
  const unknown = Object.keys(options.chunks ?? {}).filter((d) => !source.variables.some((v) => v.dimensionNames?.includes(d)));
  if (unknown.length) throw new RequestError(`--chunks names dimensions no variable has: ${unknown.join(", ")}`);
  await createGroup(dest, "", { format, attributes: source.attributes });
  for (const v of selected(source, options, report)) {
    const ds = await createDataset(dest, v.name, {
      shape: v.array.shape,
      chunks: destinationChunks(v, options),
      dtype: v.array.dtype as Dataset["dtype"],
      codecs: options.codecs ?? [{ id: "zstd" }],
      fillValue: fillOf(v),
      attributes: v.attributes,
      dimensionNames: v.dimensionNames,
      format,
    });
    if (isCoordinate(v)) {
      report.chunks[v.name] = await load(ds, v.array, { concurrency: options.concurrency ?? 4, pool: options.pool });
    }
  }
  return report;
}

async function openDestination(dest: Store, v: SourceVariable): Promise<Dataset> {
  try {
    return await openDataset(dest, v.name);
  } catch (cause) {
    throw new RequestError(`${dest.url}: no metadata for "${v.name}"; run convert --init first (${(cause as Error).message})`);
  }
}

/** Writes this rank's partition of every data variable (coordinates were written at init). */
export async function convertPartition(
  source: OpenedSource,
  dest: Store,
  rank: { rank: number; ranks: number },
  options: ConvertOptions = {},
): Promise<ConvertReport> {
  const report: ConvertReport = { chunks: {}, skipped: {} };
  for (const v of selected(source, options, report)) {
    if (isCoordinate(v)) continue;
    const ds = await openDestination(dest, v);
    if (ds.shape.some((n, i) => n !== v.array.shape[i])) {
      throw new RequestError(`"${v.name}": destination shape [${ds.shape}] differs from the source's [${v.array.shape}]`);
    }
    const dims = dimsByName(options.dims, ds.dimensionNames ?? v.dimensionNames, ds.shape.length);
    const region = partitionRegion(ds.shape, ds.chunks, rank.ranks, rank.rank, dims);
    if (!region) {
      report.chunks[v.name] = 0;
      continue;
    }
    report.chunks[v.name] = await load(ds, v.array, {
      partition: region,
      concurrency: options.concurrency ?? 4,
      pool: options.pool,
      onChunk: (done) => options.onChunk?.(v.name, done),
    });
  }
  return report;
}

/** How many chunks rank `rank` writes, per variable (for progress bars). */
export async function partitionSize(source: OpenedSource, dest: Store, rank: { rank: number; ranks: number }, options: ConvertOptions = {}): Promise<number> {
  let total = 0;
  for (const v of selected(source, options, { chunks: {}, skipped: {} })) {
    if (isCoordinate(v)) continue;
    const ds = await openDestination(dest, v);
    const region = partitionRegion(ds.shape, ds.chunks, rank.ranks, rank.rank, dimsByName(options.dims, ds.dimensionNames, ds.shape.length));
    if (region) total += countChunksIn(region, ds.chunks);
  }
  return total;
}

export interface VerifyReport {
  chunks: number;
  /** Destination chunk keys whose decoded values differ from the source. */
  mismatches: string[];
}

function sameValues(a: NumericArray, b: NumericArray): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x !== y && !(typeof x === "number" && typeof y === "number" && Number.isNaN(x) && Number.isNaN(y))) return false;
  }
  return true;
}

/** Compares every destination chunk with the source region it came from (NaN equals NaN). */
export async function verifyConversion(source: OpenedSource, dest: Store, options: ConvertOptions = {}): Promise<VerifyReport> {
  const report: VerifyReport = { chunks: 0, mismatches: [] };
  for (const v of selected(source, options, { chunks: {}, skipped: {} })) {
    const ds = await openDestination(dest, v);
    await forEachBounded(
      ds.chunkCoords(),
      async (coords) => {
        const region = chunkRegion(coords, ds.shape, ds.chunks);
        const [written, expected] = await Promise.all([ds.readChunk(coords), readSourceRegion(v.array, region, ds)]);
        report.chunks++;
        if (!sameValues(written.data, expected.data)) report.mismatches.push(ds.chunkKey(coords));
      },
      { concurrency: options.concurrency ?? 4 },
    );
  }
  report.mismatches.sort();
  return report;
}
