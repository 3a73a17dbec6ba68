/**
 * A chunked N-d dataset on any store (DosNa's model): reads through zarrita, writes chunk by chunk
 * with bounded concurrency. Whole-chunk writes are single atomic object writes; partial-chunk
 * writes are read-modify-write under a per-chunk lock where the store can enforce one (guard.ts),
 * and refused where it cannot, so no update is silently lost.
 */
import * as zarr from "zarrita";
import { get } from "../zarr/get.js";
import { RequestError, UnsupportedFeatureError } from "../errors.js";
import { parseSelection, toHyperslab, type Selection } from "../active/selection.js";
import type { Store } from "../stores/types.js";
import { ChunkEncoder, type ChunkData, type NumericArray } from "./encode.js";
import { forEachBounded, type EngineOptions } from "./engine.js";
import {
  chunkRegion,
  chunksIn,
  copyBox,
  fullRegion,
  intersect,
  isChunkAligned,
  product,
  regionShape,
  type Region,
  type TypedArrayLike,
} from "./grid.js";
import { createOnlyGuarantee, unguardedPartialWrite, withChunkLock, type LockOptions } from "./guard.js";
import { chunkKey, type DatasetMetadata, type NumericDataType } from "./metadata.js";
import * as ops from "./ops.js";
import type { ModuleFunction, WorkerPool } from "./pool.js";

export type { ChunkData, NumericArray };

export interface DatasetWriteOptions extends EngineOptions {
  /**
   * The region this process owns exclusively (its partition). Writes must be chunk-aligned and
   * inside it; no locks are taken, since no other writer touches these chunks.
   */
  partition?: Region;
  /** Allow unguarded read-modify-write on stores that cannot enforce create-only writes. */
  unsafe?: boolean;
  lock?: LockOptions;
  /** Encode chunks (and run module functions) on this worker-thread pool instead of in-process. */
  pool?: WorkerPool;
}

/** Values for `set`: an array with its shape, or one scalar for the whole selection. */
export type Values = ChunkData | number | bigint;

/** What `map`/`apply` functions receive besides the chunk. */
export interface ChunkInfo {
  coords: number[];
  /** The chunk's part of the array (edge chunks trimmed). */
  region: Region;
}

export type ChunkFunction = (chunk: ChunkData, info: ChunkInfo) => ChunkData | Promise<ChunkData>;

const CONSTRUCTORS: Record<NumericDataType, new (n: number) => NumericArray> = {
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  float32: Float32Array,
  float64: Float64Array,
} as Record<NumericDataType, new (n: number) => NumericArray>;

/** Reads a selection region-by-region as zarrita slices. */
export function regionSelection(region: Region): zarr.Slice[] {
  return region.map(([start, stop]) => zarr.slice(start, stop));
}

export class Dataset {
  private readonly encoder?: ChunkEncoder;
  private readonly pipeline?: zarr.ArrayMetadata<zarr.DataType>;

  constructor(
    readonly store: Store,
    /** Path of the array in the store, no leading or trailing slash. */
    readonly path: string,
    private readonly meta: DatasetMetadata,
    /** The zarrita array reads go through. */
    readonly array: zarr.Array<zarr.DataType, Store>,
    pipeline: zarr.ArrayMetadata<zarr.DataType> | undefined,
    /** Why this dataset cannot be written, when it cannot. */
    private readonly readOnlyReason?: string,
  ) {
    if (pipeline) this.encoder = new ChunkEncoder(pipeline, meta.chunks);
    this.pipeline = pipeline;
  }

  get shape(): number[] {
    return this.meta.shape.slice();
  }
  get chunks(): number[] {
    return this.meta.chunks.slice();
  }
  get dtype(): NumericDataType {
    return this.meta.dtype;
  }
  get fillValue(): number | null {
    return this.meta.fillValue;
  }
  get format(): 2 | 3 {
    return this.meta.format;
  }
  get attributes(): Record<string, unknown> {
    return { ...this.meta.attributes };
  }
  get dimensionNames(): string[] | undefined {
    return this.meta.dimensionNames?.slice();
  }
  get codecs(): DatasetMetadata["codecs"] {
    return this.meta.codecs.slice();
  }

  /** Store key of a chunk. */
  chunkKey(coords: readonly number[]): string {
    const key = chunkKey(this.meta, coords);
    return this.path ? `${this.path}/${key}` : key;
  }

  /** A numpy-style selection (integers, `null`, `zarr.slice`, or text like "0:10, :, 5"), read into a C-ordered array. */
  async get(selection?: Selection | string): Promise<ChunkData> {
    if (typeof selection === "string") selection = parseSelection(selection);
    const result = await get(this.array, (selection ?? null) as (number | zarr.Slice | null)[] | null);
    if (typeof result !== "object" || result === null || !("data" in result)) {
      const data = new CONSTRUCTORS[this.meta.dtype](1);
      (data as unknown as unknown[])[0] = result;
      return { data, shape: [] };
    }
    return { data: result.data as NumericArray, shape: result.shape };
  }

  /** A region (half-open ranges) as a C-ordered array. */
  async getRegion(region: Region): Promise<ChunkData> {
    const result = (await get(this.array, regionSelection(region))) as zarr.Chunk<zarr.DataType>;
    return { data: result.data as NumericArray, shape: result.shape };
  }

  /** The part of one chunk inside the array (edge chunks trimmed); the fill value where never written. */
  async readChunk(coords: readonly number[]): Promise<ChunkData> {
    const region = chunkRegion(coords, this.meta.shape, this.meta.chunks);
    const full = await this.array.getChunk(coords.slice());
    const shape = regionShape(region);
    if (shape.every((n, i) => n === this.meta.chunks[i])) return { data: full.data as NumericArray, shape };
    const out = this.allocate(product(shape));
    copyBox(full.data as TypedArrayLike, this.meta.chunks, shape.map(() => 0), out as TypedArrayLike, shape, shape.map(() => 0), shape);
    return { data: out, shape };
  }

  /** A zero-initialised buffer of this dataset's element type. */
  allocate(length: number): NumericArray {
    return new CONSTRUCTORS[this.meta.dtype](length);
  }

  private fillChunk(): NumericArray {
    const data = this.allocate(product(this.meta.chunks));
    const fill = this.meta.fillValue ?? 0;
    if (fill !== 0) {
      const big = this.meta.dtype === "int64" || this.meta.dtype === "uint64";
      (data as unknown as { fill(v: number | bigint): void }).fill(big ? BigInt(fill) : fill);
    }
    return data;
  }

  private writer(): ChunkEncoder {
    if (!this.encoder) {
      throw new UnsupportedFeatureError(
        "writing",
        `${this.store.url}/${this.path}`,
        `${this.readOnlyReason ?? "this array's codecs"} cannot be written by activestore; it is readable only`,
      );
    }
    return this.encoder;
  }

  /**
   * Writes one whole chunk: `values` covers the chunk's region (edge chunks trimmed) in C order.
   * One atomic object write, so repeating it is harmless.
   */
  async writeChunk(coords: readonly number[], values: ChunkData, opts: { signal?: AbortSignal; pool?: WorkerPool } = {}): Promise<void> {
    const region = chunkRegion(coords, this.meta.shape, this.meta.chunks);
    const shape = regionShape(region);
    checkShape(values, shape, `chunk [${coords}]`);
    let data = values.data;
    if (!shape.every((n, i) => n === this.meta.chunks[i]) || !sameType(data, this.meta.dtype)) {
      data = this.fillChunk();
      copyBox(values.data as TypedArrayLike, shape, shape.map(() => 0), data as TypedArrayLike, this.meta.chunks, shape.map(() => 0), shape);
    }
    const key = this.chunkKey(coords);
    const encoder = this.writer();
    const bytes = opts.pool ? await opts.pool.encode(this.pipeline!, this.meta.chunks, data, key) : await encoder.encode(data, key);
    await this.store.set(key, bytes, { signal: opts.signal, compress: null });
  }

  /**
   * Writes `values` into a selection of contiguous slices and integers. Chunks the selection covers
   * whole are written directly; chunks it covers in part are merged under a lock (or refused, see
   * DatasetWriteOptions).
   */
  async set(selection: Selection | string, values: Values, opts: DatasetWriteOptions = {}): Promise<void> {
    if (typeof selection === "string") selection = parseSelection(selection);
    const slab = toHyperslab(selection, this.meta.shape);
    for (const [i, r] of slab.entries()) {
      if (r.count > 1 && r.step !== 1) {
        throw new UnsupportedFeatureError("strided selection", `set on dimension ${i}`, "write contiguous slices (step 1)");
      }
    }
    const region: Region = slab.map((r) => [r.start, r.start + r.count] as const);
    const shape = regionShape(region);
    const kept = slab.map((r, i) => (r.dropped ? -1 : shape[i])).filter((n) => n >= 0);
    if (typeof values === "number" || typeof values === "bigint") {
      // A scalar is expanded one chunk at a time, so a huge selection costs no more memory than a chunk.
      await this.writeRegion(region, values, opts);
      return;
    }
    checkShape(values, kept, "values for the selection");
    await this.writeRegion(region, { data: values.data, shape }, opts);
  }

  /** Writes a C-ordered block whose shape is the region's, or one scalar everywhere in it. */
  async writeRegion(region: Region, source: ChunkData | number | bigint, opts: DatasetWriteOptions = {}): Promise<void> {
    this.writer();
    if (typeof source === "object") checkShape(source, regionShape(region), "values for the region");
    this.checkPartition(region, opts);
    const whole = isChunkAligned(region, this.meta.shape, this.meta.chunks);
    const guarded = whole || opts.partition ? false : await this.partialWriteGuard(region, opts);
    await forEachBounded(
      chunksIn(region, this.meta.chunks),
      async (coords) => {
        const box = intersect(chunkRegion(coords, this.meta.shape, this.meta.chunks), region)!;
        const cr = chunkRegion(coords, this.meta.shape, this.meta.chunks);
        const boxShape = regionShape(box);
        const srcStart = box.map(([s], i) => s - region[i][0]);
        const full = box.every(([s, e], i) => s === cr[i][0] && e === cr[i][1]);
        if (full) {
          await this.writeChunk(coords, { data: this.box(source, srcStart, boxShape), shape: boxShape }, opts);
          return;
        }
        const merge = async () => {
          const current = await this.readChunk(coords);
          const dstStart = box.map(([s], i) => s - cr[i][0]);
          const part = this.box(source, srcStart, boxShape);
          copyBox(part as TypedArrayLike, boxShape, boxShape.map(() => 0), current.data as TypedArrayLike, current.shape, dstStart, boxShape);
          await this.writeChunk(coords, current, opts);
        };
        if (guarded) await withChunkLock(this.store, this.chunkKey(coords), merge, opts.lock);
        else await merge();
      },
      opts,
    );
  }

  /** A box of the source as its own array: copied out of a block, or a scalar repeated. */
  private box(source: ChunkData | number | bigint, start: readonly number[], shape: readonly number[]): NumericArray {
    const data = this.allocate(product(shape));
    if (typeof source === "object") {
      copyBox(source.data as TypedArrayLike, source.shape, start, data as TypedArrayLike, shape, shape.map(() => 0), shape);
    } else {
      const big = this.meta.dtype === "int64" || this.meta.dtype === "uint64";
      (data as unknown as { fill(v: number | bigint): void }).fill(big ? BigInt(source) : Number(source));
    }
    return data;
  }

  /** Whether partial writes run under a lock; throws when they cannot be made safe. */
  private async partialWriteGuard(region: Region, opts: DatasetWriteOptions): Promise<boolean> {
    const guarantee = await createOnlyGuarantee(this.store, this.path);
    if (guarantee === "create-only") return true;
    if (opts.unsafe) return false;
    const first = chunksIn(region, this.meta.chunks).next().value ?? [];
    throw unguardedPartialWrite(this.store, this.chunkKey(first));
  }

  private checkPartition(region: Region, opts: DatasetWriteOptions): void {
    if (!opts.partition) return;
    if (!isChunkAligned(region, this.meta.shape, this.meta.chunks)) {
      throw new RequestError(
        `partitioned write of [${describeRegion(region)}] is not chunk-aligned (chunks [${this.meta.chunks}]); ` +
          "each partition must write whole chunks so that no chunk has two writers",
      );
    }
    const inside = region.every(([s, e], i) => s >= opts.partition![i][0] && e <= opts.partition![i][1]);
    if (!inside) {
      throw new RequestError(
        `write of [${describeRegion(region)}] reaches outside this process's partition [${describeRegion(opts.partition)}]`,
      );
    }
  }

  /** Fills the dataset from an array of the same shape, chunk by chunk (see ops.ts). */
  load(source: ops.LoadSource, opts?: DatasetWriteOptions): Promise<number> {
    return ops.load(this, source, opts);
  }

  /** Every chunk through `fn` into a new dataset at `outPath`. */
  map(fn: ChunkFunction | ModuleFunction, outPath: string, opts?: ops.MapOptions): Promise<Dataset> {
    return ops.map(this, fn, outPath, opts);
  }

  /** Every chunk through `fn`, in place. */
  apply(fn: ChunkFunction | ModuleFunction, opts?: DatasetWriteOptions): Promise<number> {
    return ops.apply(this, fn, opts);
  }

  /** Every chunk overlapping `region` (default: the whole array), in C order. */
  chunkCoords(region: Region = fullRegion(this.meta.shape)): Generator<number[]> {
    return chunksIn(region, this.meta.chunks);
  }
}

export function describeRegion(region: Region): string {
  return region.map(([s, e]) => `${s}:${e}`).join(", ");
}

function sameType(data: NumericArray, dtype: NumericDataType): boolean {
  return data.constructor === CONSTRUCTORS[dtype];
}

function checkShape(values: ChunkData, shape: readonly number[], what: string): void {
  const sameShape = values.shape.length === shape.length && values.shape.every((n, i) => n === shape[i]);
  if (!sameShape) throw new RequestError(`${what}: shape [${values.shape}] does not match the expected [${shape}]`);
  if (values.data.length !== product(shape)) {
    throw new RequestError(`${what}: ${values.data.length} elements for shape [${shape}] (${product(shape)} expected)`);
  }
}
