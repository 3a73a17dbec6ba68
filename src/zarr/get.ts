/**
 * `get`: zarrita's `get` (same arguments, same result, byte for byte) with a faster copy of each
 * chunk into the output (see copy.ts). Reading a 500³ float64 variable in 25³ zlib chunks from
 * local disk, zarrita's own copy was 40% of the main thread (bench/refs-read). The indexing,
 * reads, decoding and queue stay zarrita's: this passes its own setter to zarrita's generic get.
 * Data types whose chunks are not plain typed arrays (bool, strings, objects) go to zarrita's get.
 */
import { types } from "node:util";
import * as zarr from "zarrita";
import type { Indices, Projection } from "zarrita";
import { recycleDecoded } from "../codecs/pool.js";
import { ReferenceStore } from "../refs/reference-store.js";
import { BufferPool } from "../stores/buffer-pool.js";
import { ObjectStore } from "../stores/object-store.js";
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

/**
 * Stores of ours that read into a caller's BufferPool and keep nothing they return: with them, the
 * chunk reads of one `get` share a few pooled blocks, each given back once its chunks are copied
 * into the output, instead of a fresh block per request (over HTTP, the page faults of 1.16 GB of
 * fresh blocks cost more than the copies into them). Anything else never sees a pool: a cache that
 * kept a pooled buffer would see it overwritten by the next read. zarrita's store and array
 * extensions (withByteCaching, ...) are Proxies over our objects, which `instanceof` sees through,
 * so a Proxy anywhere (the array or its store) means no pool.
 */
function pooling(arr: { store: unknown }): boolean {
  const store = arr.store;
  if (types.isProxy(arr) || types.isProxy(store)) return false;
  return store instanceof ReferenceStore || store instanceof ObjectStore;
}

/**
 * `arr` with every chunk read given `pool`. A Proxy, not a subclass or Object.create: zarrita's
 * Array keeps its metadata in private fields, which only the real object can read.
 */
function withPool<A extends object>(arr: A, pool: BufferPool): A {
  const target = arr as A & { getChunk(coords: number[], options?: object, opts?: object): Promise<unknown> };
  const getChunk = (coords: number[], options?: object, opts?: object) => target.getChunk(coords, { ...options, buffers: pool }, opts);
  return new Proxy(target, {
    get(t, prop) {
      if (prop === "getChunk") return getChunk;
      const value: unknown = Reflect.get(t, prop, t);
      return typeof value === "function" ? value.bind(t) : value;
    },
  });
}

/** zarrita's `get`, with chunks copied into the output by copy.ts. */
export const get: ZarrGet = ((arr: zarr.Array<zarr.DataType, zarr.Readable>, selection = null, opts = {}) => {
  if (!withSetter || !PLAIN.has(arr.dtype)) return zarr.get(arr, selection, opts);
  if (!pooling(arr)) return withSetter(arr, selection, opts, setter);
  const pool = new BufferPool();
  const giving: Setter = {
    ...setter,
    setFromChunk(dst, src, projections) {
      setter.setFromChunk(dst, src, projections);
      // A raw chunk is a view of a pooled block: its use ends here (anything else is ignored).
      pool.give(src.data);
    },
  };
  return withSetter(withPool(arr, pool), selection, opts, giving);
}) as ZarrGet;
