/**
 * `get`: zarrita's `get` (same arguments, same result, byte for byte) with a faster copy of each
 * chunk into the output (see copy.ts). Reading a 500³ float64 variable in 25³ zlib chunks from
 * local disk, zarrita's own copy was 40% of the main thread (bench/refs-read). The indexing,
 * reads, decoding and queue stay zarrita's: this passes its own setter to zarrita's generic get.
 * Data types whose chunks are not plain typed arrays (bool, strings, objects) go to zarrita's get.
 */
import * as zarr from "zarrita";
import type { Indices, Projection } from "zarrita";
import { recycleDecoded } from "../codecs/pool.js";
import { copyChunk, type ChunkView } from "./copy.js";

type Chunk = ChunkView & { shape: number[]; stride: number[] };

interface Setter {
  prepare(data: ArrayBufferView, shape: number[], stride: number[]): Chunk;
  setFromChunk(dst: Chunk, src: Chunk, projections: Projection[]): void;
  setScalar(dst: Chunk, selection: (number | Indices)[], value: number | bigint): void;
}

const elementSize = (data: ArrayBufferView) => (data as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;

const setter: Setter = {
  prepare: (data, shape, stride) => ({ data, shape, stride }),
  setFromChunk(dst, src, projections) {
    copyChunk(dst, src, projections, elementSize(dst.data));
    // zarrita's get (0.7) fetches each chunk once, calls this once with it and drops it: if the
    // codec pool decoded it, the pool can have the buffer back. It leaves this thread only with a
    // later request to a worker, after this synchronous copy.
    recycleDecoded(src.data);
  },
  setScalar(dst, selection, value) {
    // One element, stepped over with stride 0, copied into every selected position.
    const Kind = dst.data.constructor as new (length: number) => ArrayBufferView & { [i: number]: number | bigint };
    const one = new Kind(1);
    one[0] = value;
    const projections = selection.map((s): Projection => (typeof s === "number" ? { from: null, to: s } : { from: [0, 1, 0], to: s }));
    copyChunk(dst, { data: one, shape: [], stride: selection.map(() => 0) }, projections, elementSize(dst.data));
  },
};

const PLAIN = new Set(["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64"]);

type ZarrGet = typeof zarr.get;
type GenericGet = (arr: unknown, selection: unknown, opts: unknown, setter: Setter) => Promise<unknown>;

/**
 * zarrita's generic get (arr, selection, opts, setter) is an internal export: a zarrita without it,
 * or with another signature, makes `get` zarrita's own `get` (slower, never wrong).
 */
const generic = (zarr as unknown as { _zarrita_internal_get?: unknown })._zarrita_internal_get;
const withSetter = typeof generic === "function" && generic.length === 4 ? (generic as GenericGet) : undefined;

/** Whether `get` copies chunks itself (false: this zarrita has no generic get to pass a setter to). */
export const copiesChunks = withSetter !== undefined;

/** zarrita's `get`, with chunks copied into the output by copy.ts. */
export const get: ZarrGet = ((arr: zarr.Array<zarr.DataType, zarr.Readable>, selection = null, opts = {}) => {
  if (!withSetter || !PLAIN.has(arr.dtype)) return zarr.get(arr, selection, opts);
  return withSetter(arr, selection, opts, setter);
}) as ZarrGet;
