/**
 * One HDF5 dataset as a zarr v2 array in a reference set: its `.zarray`/`.zattrs` and one reference
 * per stored chunk, with the chunks a zarr reader could not decode from the file itself (compact
 * data, vlen strings, chunks that skipped filters) inlined.
 */
import { deflateSync } from "node:zlib";
import { Hdf5FormatError, UnsupportedFeatureError } from "../errors.js";
import { UNDEFINED_ADDRESS, type FileContext } from "../hdf5/io.js";
import type { ChunkEntry, Dataset, Datatype, Filter } from "../hdf5/model.js";
import { attributesToJson, type JsonValue } from "./attributes.js";
import { toZarrDtype } from "./dtype.js";
import { fillValueFor } from "./fill.js";
import { inlineValue } from "./inline.js";
import { toJson } from "./json.js";
import type { CodecConfig, Reference, ZarrayMetadata } from "./types.js";
import { unfilter } from "./unfilter.js";
import { decodeVlenStrings, vlenElementSize } from "./vlen.js";

/** Bounds for decoded-and-inlined vlen string arrays (a lying dataspace must not exhaust memory). */
const MAX_INLINE_ELEMENTS = 1 << 24;
const MAX_INLINE_CHUNKS = 1 << 20;

export type FiltersToCodecs = (filters: Filter[], type: Datatype, chunkShape: number[], dataset?: string) => CodecConfig[];

export interface ArrayBuildContext {
  ctx: FileContext;
  /** Url written into every byte-range reference. */
  url: string;
  /** Chunks stored in fewer bytes than this are inlined. */
  inlineThreshold: number;
  isNetcdf: boolean;
  /** `_ARRAY_DIMENSIONS`, when known. */
  dimensions?: string[];
  /** The array's shape when it differs from the dataspace (netCDF unlimited dimensions). */
  shape?: number[];
  filtersToCodecs: FiltersToCodecs;
  /** The stored chunks of a chunked dataset. */
  chunks: (dataset: Dataset) => Promise<ChunkEntry[]>;
  /** Called once per chunk handled. */
  onChunk?: () => void;
  /**
   * Where to put the references (default: a new object). Writing straight into the set's object
   * saves copying hundreds of thousands of keys; on failure the caller removes this dataset's keys.
   */
  into?: Record<string, Reference>;
  signal?: AbortSignal;
}

/**
 * References for one dataset, keyed relative to the reference set root. Throws
 * UnsupportedFeatureError when the dataset cannot be represented.
 */
export async function arrayReferences(dataset: Dataset, ac: ArrayBuildContext): Promise<Record<string, Reference>> {
  const where = dataset.path;
  const shape = dataset.shape === null ? null : (ac.shape ?? dataset.shape);
  if (shape === null) {
    throw new UnsupportedFeatureError("null dataspace (an empty dataset with no shape)", where, "it holds no data");
  }
  const mapping = toZarrDtype(dataset.type);
  if (!mapping.ok) throw new UnsupportedFeatureError(`datatype (${mapping.reason})`, where);
  const layout = dataset.layout;
  if (layout.kind === "virtual") {
    throw new UnsupportedFeatureError("virtual dataset layout", where, "reference the source files instead");
  }
  const vlen = mapping.kind === "vlen-string";
  const itemSize = vlen ? vlenElementSize(ac.ctx) : mapping.itemSize;
  // zarr cannot divide by a zero chunk length, so empty dimensions get chunks of 1.
  const chunks = layout.kind === "chunked" ? layout.chunkShape : shape.map((s) => Math.max(1, s));
  let filters: CodecConfig[] | null = null;
  // Vlen chunks are decoded here (heap references → strings), so their own filters are undone here.
  let vlenCodecs: CodecConfig[] = [];
  if (vlen) {
    if (layout.kind === "chunked" && dataset.filters.length > 0) {
      // The filtered bytes are fixed-size heap references; HDF5 may record no shuffle element size.
      const stored: Datatype = { class: "opaque", size: itemSize, tag: "vlen heap reference" };
      vlenCodecs = ac.filtersToCodecs(dataset.filters, stored, chunks, where);
    }
    filters = [{ id: "vlen-utf8" }];
    // Vlen chunks are decoded and inlined whole, so their size must be sane before anything is allocated.
    const perChunk = (layout.kind === "chunked" ? layout.chunkShape : shape).reduce((a, b) => a * b, 1);
    const chunkCount = layout.kind === "chunked" ? shape.reduce((n, s, i) => n * Math.ceil(s / chunks[i]), 1) : 1;
    if (perChunk > MAX_INLINE_ELEMENTS || chunkCount > MAX_INLINE_CHUNKS) {
      throw new UnsupportedFeatureError(
        `variable-length strings in ${chunkCount} chunks of ${perChunk} elements`,
        where,
        "too large to inline into a reference set",
      );
    }
  } else if (layout.kind === "chunked" && dataset.filters.length > 0) {
    filters = ac.filtersToCodecs(dataset.filters, dataset.type, chunks, where);
  }
  const zarray: ZarrayMetadata = {
    zarr_format: 2,
    shape,
    chunks,
    dtype: mapping.dtype,
    compressor: null,
    fill_value: fillValueFor(dataset, mapping, ac.isNetcdf),
    filters,
    order: "C",
    dimension_separator: ".",
  };
  const attrs: Record<string, JsonValue> = attributesToJson(dataset.attributes);
  if (ac.dimensions) attrs._ARRAY_DIMENSIONS = ac.dimensions;

  const prefix = dataset.path.replace(/^\/+/, "");
  const refs: Record<string, Reference> = ac.into ?? {};
  refs[`${prefix}/.zarray`] = toJson(zarray);
  refs[`${prefix}/.zattrs`] = toJson(attrs);
  const key = chunkKey(`${prefix}/`);
  const elements = shape.reduce((a, b) => a * b, 1);
  if (elements === 0) return refs;
  const read = (offset: number, length: number) => ac.ctx.source.read(ac.ctx.base + offset, length, `chunk of ${where}`);
  const chunkElements = chunks.reduce((a, b) => a * b, 1);
  const zeros = shape.map(() => 0);

  // Storage shorter than the dataspace is corrupt; a reference to it would only fail later, far away.
  const storedBytes = layout.kind === "compact" ? layout.data.length : layout.kind === "contiguous" ? layout.size : undefined;
  const hasStorage = layout.kind === "compact" || (layout.kind === "contiguous" && layout.address !== UNDEFINED_ADDRESS && layout.size > 0);
  if (hasStorage && storedBytes !== undefined && storedBytes < elements * itemSize) {
    const at = layout.kind === "contiguous" ? layout.address : 0;
    throw new Hdf5FormatError(
      `${layout.kind} storage of ${storedBytes} bytes is smaller than the ${elements * itemSize} bytes the dataspace needs`,
      at,
      `data of ${where}`,
      { source: ac.ctx.source.name },
    );
  }

  if (layout.kind === "compact") {
    refs[key(zeros)] = inlineValue(vlen ? await decodeVlenStrings(ac.ctx, layout.data, elements) : layout.data);
    ac.onChunk?.();
    return refs;
  }
  if (layout.kind === "contiguous") {
    if (layout.address !== UNDEFINED_ADDRESS && layout.size > 0) {
      const size = Math.min(layout.size, elements * itemSize);
      if (vlen) {
        refs[key(zeros)] = inlineValue(await decodeVlenStrings(ac.ctx, await read(layout.address, size), elements));
      } else if (size < ac.inlineThreshold) {
        refs[key(zeros)] = inlineValue(await read(layout.address, size));
      } else {
        refs[key(zeros)] = [ac.url, ac.ctx.base + layout.address, size];
      }
    }
    ac.onChunk?.();
    return refs;
  }

  const grid = shape.map((s, i) => Math.ceil(s / chunks[i]));
  // Keys in C order of their chunk coordinates, whatever order the index stores them in.
  const entries = inCOrder(await ac.chunks(dataset));
  const written = vlen ? new Set<string>() : undefined;
  const rank = grid.length;
  for (let n = 0; n < entries.length; n++) {
    // Checked every 4096 chunks: a signal check per chunk costs more than the rest of the loop.
    if ((n & 4095) === 0) ac.signal?.throwIfAborted();
    const entry = entries[n];
    // Chunks past the current extent (a dataset that shrank) are not part of the array.
    let outside = false;
    for (let i = 0; i < rank; i++) if (entry.coords[i] >= grid[i]) outside = true;
    if (outside) continue;
    const k = key(entry.coords);
    written?.add(k);
    if (dataset.filters.length === 0 && entry.size !== chunkElements * itemSize) {
      throw new Hdf5FormatError(
        `unfiltered chunk ${k} is ${entry.size} bytes, the chunk shape needs ${chunkElements * itemSize}`,
        entry.offset,
        `chunk of ${where}`,
        { source: ac.ctx.source.name },
      );
    }
    if (vlen) {
      let stored = await read(entry.offset, entry.size);
      if (vlenCodecs.length > 0) {
        const mask = effectiveMask(entry, dataset, shape, chunks);
        stored = await unfilter(stored, vlenCodecs, mask, chunkElements * itemSize, `${where} chunk ${k}`);
      }
      refs[k] = inlineValue(await decodeVlenStrings(ac.ctx, stored, chunkElements));
    } else {
      const mask = effectiveMask(entry, dataset, shape, chunks);
      if (mask !== 0) {
        refs[k] = inlineValue(refilter(await read(entry.offset, entry.size), dataset.filters, mask, where));
      } else if (entry.size < ac.inlineThreshold) {
        refs[k] = inlineValue(await read(entry.offset, entry.size));
      } else {
        refs[k] = [ac.url, ac.ctx.base + entry.offset, entry.size];
      }
    }
    ac.onChunk?.();
  }
  if (vlen) {
    // A vlen array has no usable fill value in zarr, so unwritten chunks are written out as "".
    const empty = inlineValue(encodeEmpty(chunkElements));
    forEachChunk(grid, (coords) => {
      if (!written!.has(key(coords))) refs[key(coords)] = empty;
    });
  }
  return refs;
}

/** `<prefix><i>.<j>...` (`<prefix>0` for a scalar), without an intermediate array of strings. */
function chunkKey(prefix: string): (coords: number[]) => string {
  return (coords) => {
    if (coords.length === 0) return `${prefix}0`;
    let k = prefix + coords[0];
    for (let i = 1; i < coords.length; i++) k += "." + coords[i];
    return k;
  };
}

/** Entries in C order of their chunk coordinates; indexes usually store them so, then no sort is needed. */
function inCOrder(entries: ChunkEntry[]): ChunkEntry[] {
  const compare = (a: ChunkEntry, b: ChunkEntry) => {
    for (let i = 0; i < a.coords.length; i++) if (a.coords[i] !== b.coords[i]) return a.coords[i] - b.coords[i];
    return 0;
  };
  for (let i = 1; i < entries.length; i++) {
    if (compare(entries[i - 1], entries[i]) > 0) return [...entries].sort(compare);
  }
  return entries;
}

/** The filter mask, counting "don't filter partial edge chunks" as every filter skipped. */
function effectiveMask(entry: ChunkEntry, dataset: Dataset, shape: number[], chunks: number[]): number {
  const n = dataset.filters.length;
  if (n === 0) return 0;
  const all = (1 << n) - 1;
  const layout = dataset.layout;
  if (layout.kind === "chunked" && layout.dontFilterPartialEdgeChunks) {
    const partial = entry.coords.some((c, i) => (c + 1) * chunks[i] > shape[i]);
    if (partial) return all;
  }
  return entry.filterMask & all;
}

/**
 * A chunk that skipped some filters, re-encoded so the full codec pipeline decodes it. HDF5 only
 * skips optional filters (in practice deflate when it would not shrink the chunk); we can redo the
 * skipped tail of the pipeline when it consists of filters we can encode.
 */
function refilter(bytes: Uint8Array, filters: Filter[], mask: number, where: string): Uint8Array {
  const first = filters.findIndex((_, i) => (mask & (1 << i)) !== 0);
  let out = bytes;
  for (let i = first; i < filters.length; i++) {
    const f = filters[i];
    if ((mask & (1 << i)) === 0) {
      throw new UnsupportedFeatureError(
        `chunk that skipped filter ${filters[first].id} but not the later filter ${f.id}`,
        where,
        "such a chunk cannot be expressed with one codec pipeline",
      );
    }
    if (f.id === 1) out = new Uint8Array(deflateSync(out, { level: f.clientData[0] ?? 6 }));
    else if (f.id === 2) out = shuffle(out, f.clientData[0] ?? 1);
    else if (f.id === 32000) out = lzfLiterals(out);
    else {
      throw new UnsupportedFeatureError(`chunk that skipped filter ${f.id}`, where, "only skipped deflate, shuffle and lzf can be redone");
    }
  }
  return out;
}

function shuffle(bytes: Uint8Array, elementSize: number): Uint8Array {
  if (elementSize <= 1) return bytes;
  const count = Math.floor(bytes.length / elementSize);
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < count; i++) {
    for (let b = 0; b < elementSize; b++) out[b * count + i] = bytes[i * elementSize + b];
  }
  // HDF5 leaves a trailing partial element unshuffled.
  out.set(bytes.subarray(count * elementSize), count * elementSize);
  return out;
}

/**
 * A valid LZF stream made of literal runs only (control byte = run length - 1, at most 32). The
 * HDF5 lzf filter skips chunks that do not compress, so stored size is no concern here.
 */
function lzfLiterals(bytes: Uint8Array): Uint8Array {
  const runs = Math.ceil(bytes.length / 32);
  const out = new Uint8Array(bytes.length + runs);
  let o = 0;
  for (let i = 0; i < bytes.length; i += 32) {
    const run = bytes.subarray(i, i + 32);
    out[o++] = run.length - 1;
    out.set(run, o);
    o += run.length;
  }
  return out;
}

function encodeEmpty(count: number): Uint8Array {
  const out = new Uint8Array(4 + 4 * count);
  new DataView(out.buffer).setUint32(0, count, true);
  return out;
}

function forEachChunk(grid: number[], fn: (coords: number[]) => void): void {
  const total = grid.reduce((a, b) => a * b, 1);
  const coords = grid.map(() => 0);
  for (let n = 0; n < total; n++) {
    fn([...coords]);
    for (let d = grid.length - 1; d >= 0; d--) {
      if (++coords[d] < grid[d]) break;
      coords[d] = 0;
    }
  }
}
