/**
 * Whole-dataset operations, chunk by chunk with bounded memory: `load` (fill from an in-memory array
 * or any readable zarrita array, e.g. an HDF5 variable through references), `map` (each chunk through
 * a function into a new dataset) and `apply` (in place). Functions see edge chunks trimmed to the
 * array bounds. Every write is of a whole chunk.
 */
import { pathToFileURL } from "node:url";
import * as zarr from "zarrita";
import { get } from "../zarr/get.js";
import type { Readable } from "@zarrita/storage";
import { RequestError } from "../errors.js";
import { createDataset, type CreateDatasetOptions } from "./create.js";
import type { ChunkData, ChunkFunction, Dataset, DatasetWriteOptions } from "./dataset.js";
import { regionSelection } from "./dataset.js";
import { forEachBounded } from "./engine.js";
import { chunkRegion, copyBox, fullRegion, isChunkAligned, product, regionShape, type Region, type TypedArrayLike } from "./grid.js";
import { createOnlyGuarantee, unguardedPartialWrite, withChunkLock } from "./guard.js";
import type { ModuleFunction, WorkerPool } from "./pool.js";
import type { ChunkInfo } from "./dataset.js";

/** A function given by module: run on the pool when there is one, else imported here. */
function resolveFunction(fn: ChunkFunction | ModuleFunction, pool: WorkerPool | undefined): ChunkFunction {
  if (typeof fn === "function") return fn;
  if (pool) return (chunk: ChunkData, info: ChunkInfo) => pool.call(fn, chunk, info);
  let loaded: Promise<ChunkFunction> | undefined;
  return async (chunk, info) => {
    loaded ??= import(/^[a-z]+:/i.test(fn.module) ? fn.module : pathToFileURL(fn.module).href).then(
      (mod: Record<string, unknown>) => mod[fn.name ?? "default"] as ChunkFunction,
    );
    const f = await loaded;
    if (typeof f !== "function") throw new RequestError(`${fn.module} has no function export "${fn.name ?? "default"}"`);
    return f(chunk, info);
  };
}

/** What `load` copies from: a C-ordered array with its shape, or a zarrita array. */
export type LoadSource = ChunkData | zarr.Array<zarr.DataType, Readable>;

function isZarrArray(source: LoadSource): source is zarr.Array<zarr.DataType, Readable> {
  return source instanceof zarr.Array;
}

/** Chunks to visit: the partition's (which must be chunk-aligned) or the whole array's. */
function regionFor(ds: Dataset, opts: DatasetWriteOptions): Region {
  const region = opts.partition ?? fullRegion(ds.shape);
  if (opts.partition && !isChunkAligned(region, ds.shape, ds.chunks)) {
    throw new RequestError(`partition [${region.map(([s, e]) => `${s}:${e}`)}] is not chunk-aligned (chunks [${ds.chunks}])`);
  }
  return region;
}

/** Copies `source` (same shape as the dataset) into it, one chunk at a time. */
export async function load(ds: Dataset, source: LoadSource, opts: DatasetWriteOptions = {}): Promise<number> {
  const sourceShape = source.shape;
  if (sourceShape.length !== ds.shape.length || sourceShape.some((n, i) => n !== ds.shape[i])) {
    throw new RequestError(`source shape [${sourceShape}] does not match the dataset's [${ds.shape}]`);
  }
  if (!isZarrArray(source) && source.data.length !== product(sourceShape)) {
    throw new RequestError(`source holds ${source.data.length} elements, shape [${sourceShape}] needs ${product(sourceShape)}`);
  }
  return forEachBounded(
    ds.chunkCoords(regionFor(ds, opts)),
    async (coords) => {
      const region = chunkRegion(coords, ds.shape, ds.chunks);
      await ds.writeChunk(coords, await readSourceRegion(source, region, ds), opts);
    },
    opts,
  );
}

/** A region of the source as a C-ordered array. */
export async function readSourceRegion(source: LoadSource, region: Region, ds?: Dataset): Promise<ChunkData> {
  const shape = regionShape(region);
  if (isZarrArray(source)) {
    const result = (await get(source, regionSelection(region))) as zarr.Chunk<zarr.DataType>;
    return { data: result.data as ChunkData["data"], shape: result.shape };
  }
  const Ctor = source.data.constructor as new (n: number) => ChunkData["data"];
  const data = ds ? ds.allocate(product(shape)) : new Ctor(product(shape));
  copyBox(source.data as TypedArrayLike, source.shape, region.map(([s]) => s), data as TypedArrayLike, shape, shape.map(() => 0), shape);
  return { data, shape };
}

function checkResult(result: ChunkData, expected: readonly number[], coords: number[]): ChunkData {
  if (!result || typeof result !== "object" || !("data" in result)) {
    throw new RequestError(`map/apply function returned no array for chunk [${coords}]`);
  }
  const ok = result.shape.length === expected.length && result.shape.every((n, i) => n === expected[i]);
  if (!ok) throw new RequestError(`map/apply function returned shape [${result.shape}] for chunk [${coords}] of shape [${expected}]`);
  return result;
}

export interface MapOptions extends DatasetWriteOptions {
  /** Output dataset settings; default: the input's shape, chunks, dtype, codecs and format. */
  output?: Partial<CreateDatasetOptions>;
  /** Where the output goes; default the input's store. */
  store?: Dataset["store"];
}

/** Runs `fn` on every chunk and writes the results to a new dataset at `outPath`. */
export async function map(ds: Dataset, fn: ChunkFunction | ModuleFunction, outPath: string, opts: MapOptions = {}): Promise<Dataset> {
  const run = resolveFunction(fn, opts.pool);
  const out = await createDataset(opts.store ?? ds.store, outPath, {
    shape: ds.shape,
    chunks: ds.chunks,
    dtype: ds.dtype,
    codecs: ds.codecs,
    fillValue: ds.fillValue,
    format: ds.format,
    dimensionNames: ds.dimensionNames,
    ...opts.output,
  });
  if (out.shape.some((n, i) => n !== ds.shape[i]) || out.chunks.some((n, i) => n !== ds.chunks[i])) {
    throw new RequestError("map writes chunk for chunk: the output needs the input's shape and chunks");
  }
  await forEachBounded(
    ds.chunkCoords(regionFor(ds, opts)),
    async (coords) => {
      const chunk = await ds.readChunk(coords);
      const region = chunkRegion(coords, ds.shape, ds.chunks);
      const result = checkResult(await run(chunk, { coords, region }), chunk.shape, coords);
      await out.writeChunk(coords, result, opts);
    },
    opts,
  );
  return out;
}

/**
 * Runs `fn` on every chunk in place. That is a read-modify-write, so each chunk is locked on stores
 * that enforce create-only writes; in a partition (exclusive by construction) no lock is needed;
 * elsewhere it is refused unless `unsafe`.
 */
export async function apply(ds: Dataset, fn: ChunkFunction | ModuleFunction, opts: DatasetWriteOptions = {}): Promise<number> {
  const run = resolveFunction(fn, opts.pool);
  let locked = false;
  if (!opts.partition) {
    locked = (await createOnlyGuarantee(ds.store, ds.path)) === "create-only";
    if (!locked && !opts.unsafe) throw unguardedPartialWrite(ds.store, ds.chunkKey(ds.chunkCoords().next().value ?? []));
  }
  return forEachBounded(
    ds.chunkCoords(regionFor(ds, opts)),
    async (coords) => {
      const update = async () => {
        const chunk = await ds.readChunk(coords);
        const region = chunkRegion(coords, ds.shape, ds.chunks);
        await ds.writeChunk(coords, checkResult(await run(chunk, { coords, region }), chunk.shape, coords), opts);
      };
      if (locked) await withChunkLock(ds.store, ds.chunkKey(coords), update, opts.lock);
      else await update();
    },
    opts,
  );
}
