/**
 * What `convert` reads: an HDF5/netCDF4 file (references built on the fly), kerchunk references
 * (a JSON file or a parquet directory; one file's or a combined set of many), or a zarr store. Every variable ends up as a zarrita
 * array; opening reuses the pieces src/active/source.ts opens sources with.
 */
import { stat } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import * as zarr from "zarrita";
import type { Readable } from "@zarrita/storage";
import { storeResolver } from "../active/source.js";
import { ReferenceSetError, UnsupportedFeatureError } from "../errors.js";
import { openHdf5 } from "../hdf5/file.js";
import { byteSourceFromStore } from "../hdf5/io.js";
import { buildFromReader } from "../refs/build.js";
import { filtersToCodecs } from "../refs/filters.js";
import { readParquetReferences, type ParquetReferences } from "../refs/parquet-read.js";
import { parseReferences, ReferenceStore } from "../refs/reference-store.js";
import type { References } from "../refs/types.js";
import { openStore, splitUrl, type OpenStoreOptions } from "../stores/open.js";
import type { Store } from "../stores/types.js";
import { registerDatasetCodecs } from "./encode.js";

export interface SourceVariable {
  /** Path in the source, no leading slash: `tas`, `group/tas`. */
  name: string;
  array: zarr.Array<zarr.DataType, Readable>;
  dimensionNames?: string[];
  /** Attributes without `_ARRAY_DIMENSIONS` (that is `dimensionNames`). */
  attributes: Record<string, unknown>;
}

export interface OpenedSource {
  url: string;
  variables: SourceVariable[];
  /** Root group attributes. */
  attributes: Record<string, unknown>;
}

/** A local zarr store is a directory: not an object to sniff. */
async function isLocalDirectory(url: string): Promise<boolean> {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== "file") return false;
  const path = scheme === "file" ? fileURLToPath(url) : url;
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

async function looksLikeHdf5(store: Store, key: string): Promise<boolean> {
  for (const offset of [0, 512]) {
    const head = await store.getRange(key, { offset, length: 8 });
    if (head && head.length === 8 && HDF5_SIGNATURE.every((b, i) => head[i] === b)) return true;
  }
  return false;
}

function splitAttributes(attrs: Record<string, unknown>): { dims?: string[]; rest: Record<string, unknown> } {
  const { _ARRAY_DIMENSIONS: dims, ...rest } = attrs;
  return { dims: Array.isArray(dims) ? (dims as string[]) : undefined, rest };
}

async function fromReferences(
  url: string,
  references: References,
  options: OpenStoreOptions,
  baseUrl?: string,
  lookup?: ParquetReferences,
): Promise<OpenedSource> {
  const store = new ReferenceStore(references, { resolver: storeResolver(options, baseUrl), lookup });
  const names = Object.keys(references.refs)
    .filter((k) => k === ".zarray" || k.endsWith("/.zarray"))
    .map((k) => k.slice(0, -".zarray".length).replace(/\/$/, ""))
    .sort();
  const variables: SourceVariable[] = [];
  for (const name of names) {
    let array: zarr.Array<zarr.DataType, Readable>;
    try {
      array = await zarr.open.v2(zarr.root(store).resolve(name || "/"), { kind: "array" });
    } catch (cause) {
      throw new ReferenceSetError(`variable "${name}" cannot be opened`, `${name}/.zarray`, url, { cause });
    }
    const { dims, rest } = splitAttributes(array.attrs as Record<string, unknown>);
    variables.push({ name, array, dimensionNames: array.dimensionNames ?? dims, attributes: rest });
  }
  const rootAttrs = references.refs[".zattrs"];
  const attributes = typeof rootAttrs === "string" ? (JSON.parse(rootAttrs) as Record<string, unknown>) : {};
  return { url, variables, attributes };
}

async function fromZarr(url: string, store: Store): Promise<OpenedSource> {
  const variables: SourceVariable[] = [];
  for await (const info of store.list("")) {
    const match = /^(.*?)\/?(zarr\.json|\.zarray)$/.exec(info.key);
    if (!match) continue;
    const name = match[1];
    let array: zarr.Array<zarr.DataType, Readable>;
    try {
      array = await zarr.open(zarr.root(store).resolve(name || "/"), { kind: "array" });
    } catch {
      continue; // a group
    }
    const { dims, rest } = splitAttributes(array.attrs as Record<string, unknown>);
    variables.push({ name, array, dimensionNames: array.dimensionNames ?? dims, attributes: rest });
  }
  if (variables.length === 0) throw new UnsupportedFeatureError("source", url, "no zarr arrays, HDF5 file or references JSON there");
  variables.sort((a, b) => (a.name < b.name ? -1 : 1));
  return { url, variables, attributes: {} };
}

/** Opens a source URL (or path) and every array variable in it. */
export async function openSource(url: string, options: OpenStoreOptions = {}): Promise<OpenedSource> {
  registerDatasetCodecs();
  const { storeUrl, key } = splitUrl(url);
  const parent = openStore(storeUrl, options);
  if (/\.json$/i.test(key)) {
    const text = await parent.get(key);
    if (!text) throw new ReferenceSetError("reference file not found", undefined, url);
    return fromReferences(url, parseReferences(new TextDecoder().decode(text)), options, url);
  }
  if (key && !(await isLocalDirectory(url)) && (await parent.head(key)) && (await looksLikeHdf5(parent, key))) {
    const file = await openHdf5(byteSourceFromStore(parent, key, url));
    const { references } = await buildFromReader(file, filtersToCodecs, { url });
    return fromReferences(url, references, options);
  }
  const root = openStore(url, options);
  const zmetadata = await root.get(".zmetadata");
  // kerchunk's parquet layout also has a .zmetadata; zarr's consolidated metadata has no record_size.
  if (zmetadata && /"record_size"/.test(new TextDecoder().decode(zmetadata))) {
    const parquet = await readParquetReferences("", { store: root });
    const references: References = { version: 1, refs: Object.fromEntries(parquet.metadata) };
    return fromReferences(url, references, options, `${url.replace(/\/+$/, "")}/.zmetadata`, parquet);
  }
  return fromZarr(url, root);
}
