/**
 * HDF5 / netCDF-4 → kerchunk reference set (version 1). The file's metadata is read lazily through
 * the HDF5 reader; chunk data is read only where it must be inlined. Everything the zarr side needs
 * (dtype, fill value, codecs, dimension names, attributes) is mapped here and in the modules beside
 * this one; the output reads with zarrita and with fsspec's ReferenceFileSystem + zarr/xarray.
 *
 * In netCDF-4 files, variables along an unlimited dimension take the dimension's length, as
 * netCDF-C and xarray show them (h5py shows the shorter HDF5 extent); the rest reads as fill.
 *
 * Datasets that cannot be represented (compound, references, opaque, virtual, filtered vlen...) are
 * never dropped silently: they are listed in `warnings` of the result and as a `.zattrs` entry
 * `_activestore_skipped` of the root (so consumers of the JSON alone see them too), or, with
 * `strict: true`, raise UnsupportedFeatureError.
 */
import { UnsupportedFeatureError } from "../errors.js";
import { readChunkIndex } from "../hdf5/chunk-index/index.js";
import { openHdf5 } from "../hdf5/file.js";
import type { ByteSource, FileContext } from "../hdf5/io.js";
import type { ChunkEntry, Dataset, Group, Node } from "../hdf5/model.js";
import { arrayReferences, type FiltersToCodecs } from "./array.js";
import { attributesToJson } from "./attributes.js";
import { netcdfExtents, resolveDimensions } from "./dimensions.js";
import { toJson } from "./json.js";
import { filtersToCodecs } from "./filters.js";
import { openByteSource } from "./source.js";
import type { BuildWarning, Reference, References } from "./types.js";

export interface BuildOptions {
  /** Chunks stored in fewer bytes than this are inlined (default 500, like kerchunk). 0 disables. */
  inlineThreshold?: number;
  /** Url written into the references (default: the source's name). */
  url?: string;
  /** Progress over chunks, reported after the chunk indexes have been read. */
  onProgress?: (done: number, total: number) => void;
  /** Throw UnsupportedFeatureError on the first dataset that cannot be represented. */
  strict?: boolean;
  /** Maps a dataset's HDF5 filter pipeline to zarr v2 codec configs (default: src/refs/filters.ts). */
  filtersToCodecs?: FiltersToCodecs;
  signal?: AbortSignal;
}

/**
 * The kerchunk reference set of an HDF5/netCDF-4 file. `source` is a ByteSource or a url: a local
 * path, file://, or anything `openStore` opens (s3://, gs://, ...). Datasets that cannot be represented are listed in the root
 * `.zattrs` under `_activestore_skipped`; use `buildReferencesWithWarnings` to get them as data.
 */
export async function buildReferences(source: ByteSource | string, options: BuildOptions = {}): Promise<References> {
  return (await buildReferencesWithWarnings(source, options)).references;
}

export async function buildReferencesWithWarnings(
  source: ByteSource | string,
  options: BuildOptions = {},
): Promise<BuildResult> {
  if (typeof source !== "string") {
    const file = await openHdf5(source, { signal: options.signal });
    return buildFromReader(file, options.filtersToCodecs ?? filtersToCodecs, options);
  }
  const opened = openByteSource(source);
  try {
    const file = await openHdf5(opened.source, { signal: options.signal });
    return await buildFromReader(file, options.filtersToCodecs ?? filtersToCodecs, options);
  } finally {
    await opened.close();
  }
}


/** The parts of an opened HDF5 file the builder uses (`Hdf5File` from src/hdf5/file.ts). */
export interface Hdf5Reader {
  readonly context: FileContext;
  root(): Promise<Group>;
  chunks?(dataset: Dataset): Promise<ChunkEntry[]>;
}

export interface BuildResult {
  references: References;
  warnings: BuildWarning[];
}

/** Builds the reference set of an opened HDF5 file, with the list of what could not be represented. */
export async function buildFromReader(
  reader: Hdf5Reader,
  filtersToCodecs: FiltersToCodecs,
  options: BuildOptions = {},
): Promise<BuildResult> {
  const { signal } = options;
  const ctx = reader.context;
  const root = await reader.root();
  signal?.throwIfAborted();
  const url = options.url ?? ctx.source.name;
  const isNetcdf = looksLikeNetcdf(root);
  const dims = resolveDimensions(root);
  const extents = isNetcdf ? netcdfExtents(root, dims.names) : new Map<string, number[]>();
  const warnings: BuildWarning[] = [];
  // No prototype: faster inserts for sets of 100k+ keys, and a dataset named "__proto__" is a plain key.
  const refs: Record<string, Reference> = Object.create(null) as Record<string, Reference>;

  const groups: Group[] = [];
  const datasets: Dataset[] = [];
  walk(root, groups, datasets, warnings);

  // Read every chunk index first so progress has a total.
  const chunkLists = new Map<Dataset, ChunkEntry[]>();
  const readChunks = (d: Dataset) => (reader.chunks ? reader.chunks(d) : readChunkIndex(ctx, d, { signal }));
  let total = 0;
  for (const d of datasets) {
    if (d.layout.kind === "chunked" && !dims.dimensionOnly.has(d.path) && d.shape !== null) {
      const entries = await readChunks(d);
      chunkLists.set(d, entries);
      total += entries.length;
    } else {
      total += 1;
    }
  }
  let done = 0;
  options.onProgress?.(done, total);

  for (const g of groups) {
    const prefix = g.path === "/" ? "" : `${g.path.replace(/^\/+/, "")}/`;
    refs[`${prefix}.zgroup`] = toJson({ zarr_format: 2 });
    const attrs = attributesToJson(g.attributes);
    if (Object.keys(attrs).length > 0) refs[`${prefix}.zattrs`] = toJson(attrs);
  }
  for (const d of datasets) {
    signal?.throwIfAborted();
    const planned = chunkLists.get(d)?.length ?? 1;
    const start = done;
    const onChunk = () => {
      if (done < start + planned) options.onProgress?.(++done, total);
    };
    try {
      if (dims.dimensionOnly.has(d.path)) continue;
      await arrayReferences(d, {
        ctx,
        url,
        inlineThreshold: options.inlineThreshold ?? 500,
        isNetcdf,
        dimensions: dims.names.get(d.path),
        shape: extents.get(d.path),
        filtersToCodecs,
        chunks: async (ds) => chunkLists.get(ds) ?? readChunks(ds),
        onChunk,
        signal,
        into: refs,
      });
    } catch (e) {
      if (!(e instanceof UnsupportedFeatureError) || options.strict) throw e;
      // What the dataset wrote before it failed is not part of the set (a dataset has no children,
      // so its prefix names only its own keys).
      const own = `${d.path.replace(/^\/+/, "")}/`;
      for (const k of Object.keys(refs)) if (k.startsWith(own)) delete refs[k];
      warnings.push({ path: d.path, message: e.message });
    } finally {
      // The entries are in the set now; dropping them early lowers the peak during serialization.
      chunkLists.delete(d);
      // Datasets with nothing stored (or skipped) still count as done.
      if (done < start + planned) options.onProgress?.((done = start + planned), total);
    }
  }
  if (warnings.length > 0) {
    const rootAttrs = refs[".zattrs"] ? (JSON.parse(refs[".zattrs"] as string) as Record<string, unknown>) : {};
    rootAttrs._activestore_skipped = warnings.map((w) => `${w.path}: ${w.message}`);
    refs[".zattrs"] = toJson(rootAttrs);
  }
  return { references: { version: 1, refs }, warnings };
}

function walk(node: Node, groups: Group[], datasets: Dataset[], warnings: BuildWarning[]): void {
  if (node.kind === "group") {
    groups.push(node);
    if (node.cycleTo !== undefined) {
      warnings.push({ path: node.path, message: `hard link cycle back to ${node.cycleTo}: not followed` });
      return;
    }
    for (const child of node.children) walk(child, groups, datasets, warnings);
  } else if (node.kind === "dataset") {
    datasets.push(node);
  } else {
    const target = node.kind === "external-link" ? `${node.file}:${node.target}` : node.target;
    warnings.push({ path: node.path, message: `${node.kind} to ${target}: not followed` });
  }
}

/** netCDF-C marks its files with `_NCProperties` (4.4.1+) and its variables with dimension ids. */
function looksLikeNetcdf(root: Group): boolean {
  if (root.attributes.some((a) => a.name === "_NCProperties" || a.name === "_nc3_strict")) return true;
  const stack: Node[] = [root];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (n.kind === "group") stack.push(...n.children);
    else if (n.kind === "dataset" && n.attributes.some((a) => a.name === "_Netcdf4Dimid" || a.name === "_Netcdf4Coordinates")) {
      return true;
    }
  }
  return false;
}
