/**
 * Creating and opening datasets: metadata documents written create-only (so two processes that
 * both "initialise" the same store cannot silently replace each other's metadata), and read back
 * into the one description the rest of the module works from.
 */
import * as zarr from "zarrita";
import { ConflictError, UnsupportedFeatureError } from "../errors.js";
import type { Store } from "../stores/types.js";
import { Dataset } from "./dataset.js";
import { registerDatasetCodecs } from "./encode.js";
import {
  isNumericDataType,
  parseCodecs,
  pipelineDocument,
  v2Documents,
  v3Document,
  validateMetadata,
  type CodecSpec,
  type DatasetMetadata,
  type NumericDataType,
} from "./metadata.js";

export interface CreateDatasetOptions {
  shape: number[];
  dtype: NumericDataType;
  chunks: number[];
  /** Compressors, or a spec like "zstd:5"; default zstd. */
  codecs?: CodecSpec[] | string;
  fillValue?: number | null;
  attributes?: Record<string, unknown>;
  dimensionNames?: string[];
  /** zarr format; default 3. */
  format?: 2 | 3;
  /** Replace existing metadata that differs (chunks already written stay). Default false. */
  overwrite?: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function json(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value, null, 2));
}

function joinKey(path: string, name: string): string {
  const clean = path.replace(/^\/+|\/+$/g, "");
  return clean ? `${clean}/${name}` : name;
}

/**
 * Writes one metadata document create-only. Identical existing metadata is fine (re-running an
 * initialisation is safe); different metadata is a ConflictError unless `overwrite`.
 */
async function writeDocument(store: Store, key: string, bytes: Uint8Array, overwrite: boolean): Promise<void> {
  const existing = await store.get(key);
  if (existing) {
    if (sameJson(existing, bytes) || overwrite) {
      if (overwrite && !sameJson(existing, bytes)) await store.set(key, bytes, { contentType: "application/json" });
      return;
    }
    throw new ConflictError("metadata already exists and differs; pass overwrite to replace it", {
      store: store.url,
      key,
      operation: "create",
    });
  }
  try {
    await store.set(key, bytes, { ifNoneMatch: "*", contentType: "application/json" });
  } catch (error) {
    // Lost a race with another initialiser: fine if it wrote the same thing.
    if (error instanceof ConflictError) {
      const now = await store.get(key);
      if (now && sameJson(now, bytes)) return;
    }
    throw error;
  }
}

function sameJson(a: Uint8Array, b: Uint8Array): boolean {
  try {
    return JSON.stringify(JSON.parse(decoder.decode(a))) === JSON.stringify(JSON.parse(decoder.decode(b)));
  } catch {
    return false;
  }
}

/** A group node at `path` (root by default), so zarr-python and xarray can open the store. */
export async function createGroup(
  store: Store,
  path = "",
  options: { format?: 2 | 3; attributes?: Record<string, unknown>; overwrite?: boolean } = {},
): Promise<void> {
  const format = options.format ?? 3;
  const attributes = options.attributes ?? {};
  const overwrite = options.overwrite ?? false;
  if (format === 3) {
    await writeDocument(store, joinKey(path, "zarr.json"), json({ zarr_format: 3, node_type: "group", attributes }), overwrite);
  } else {
    await writeDocument(store, joinKey(path, ".zgroup"), json({ zarr_format: 2 }), overwrite);
    await writeDocument(store, joinKey(path, ".zattrs"), json(attributes), overwrite);
  }
}

/** Creates a dataset (zarr array) at `path` and returns it opened. */
export async function createDataset(store: Store, path: string, options: CreateDatasetOptions): Promise<Dataset> {
  const meta: DatasetMetadata = {
    shape: options.shape,
    chunks: options.chunks,
    dtype: options.dtype,
    fillValue: options.fillValue === undefined ? 0 : options.fillValue,
    codecs: typeof options.codecs === "string" ? parseCodecs(options.codecs) : (options.codecs ?? [{ id: "zstd" }]),
    attributes: options.attributes ?? {},
    dimensionNames: options.dimensionNames,
    format: options.format ?? 3,
  };
  validateMetadata(meta);
  const overwrite = options.overwrite ?? false;
  if (meta.format === 3) {
    await writeDocument(store, joinKey(path, "zarr.json"), json(v3Document(meta)), overwrite);
  } else {
    const { zarray, zattrs } = v2Documents(meta);
    await writeDocument(store, joinKey(path, ".zarray"), json(zarray), overwrite);
    await writeDocument(store, joinKey(path, ".zattrs"), json(zattrs), overwrite);
  }
  return openDataset(store, path);
}

const V2_TO_DTYPE: Record<string, NumericDataType> = {
  "|i1": "int8",
  "|u1": "uint8",
  "<i2": "int16",
  "<u2": "uint16",
  "<i4": "int32",
  "<u4": "uint32",
  "<i8": "int64",
  "<u8": "uint64",
  "<f4": "float32",
  "<f8": "float64",
};

/** A metadata document as JSON; anything else is an error naming the key. */
function readJson(store: Store, key: string, bytes: Uint8Array): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(decoder.decode(bytes));
  } catch (error) {
    throw new UnsupportedFeatureError("zarr metadata", `${store.url} key "${key}"`, `not valid JSON (${(error as Error).message})`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new UnsupportedFeatureError("zarr metadata", `${store.url} key "${key}"`, "expected a JSON object");
  }
  return doc as Record<string, unknown>;
}

function parseFill(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  if (value === "NaN") return NaN;
  if (value === "Infinity") return Infinity;
  if (value === "-Infinity") return -Infinity;
  return typeof value === "number" ? value : Number(value);
}

/**
 * Opens a dataset. Any array zarrita can read opens for reading; writing needs a little-endian
 * numeric dtype and a codec list we can run (v2 `filters` are refused when writing, not here).
 */
export async function openDataset(store: Store, path: string): Promise<Dataset> {
  registerDatasetCodecs();
  const clean = path.replace(/^\/+|\/+$/g, "");
  const v3 = await store.get(joinKey(clean, "zarr.json"));
  let meta: DatasetMetadata;
  let pipeline: zarr.ArrayMetadata<zarr.DataType> | undefined;
  let writable: string | undefined;
  if (v3) {
    const doc = readJson(store, joinKey(clean, "zarr.json"), v3) as unknown as zarr.ArrayMetadata<zarr.DataType> & { node_type: string };
    if (doc.node_type !== "array") throw new UnsupportedFeatureError("dataset", `${store.url}/${clean}`, "this is a group, not an array");
    if (!isNumericDataType(doc.data_type)) writable = `dtype ${doc.data_type}`;
    if (doc.codecs.some((c) => c.name === "sharding_indexed")) writable = "sharded chunks";
    if ((doc.chunk_grid as { name?: string }).name !== "regular") writable = "a non-regular chunk grid";
    meta = {
      shape: doc.shape,
      chunks: (doc.chunk_grid as { configuration: { chunk_shape: number[] } }).configuration.chunk_shape,
      dtype: doc.data_type as NumericDataType,
      fillValue: parseFill(doc.fill_value),
      codecs: [],
      attributes: (doc.attributes ?? {}) as Record<string, unknown>,
      dimensionNames: (doc.dimension_names ?? undefined) as string[] | undefined,
      format: 3,
    };
    pipeline = doc;
  } else {
    const zarray = await store.get(joinKey(clean, ".zarray"));
    if (!zarray) {
      throw new UnsupportedFeatureError("dataset", `${store.url}/${clean}`, "no zarr.json or .zarray there: create it first");
    }
    const doc = readJson(store, joinKey(clean, ".zarray"), zarray);
    const zattrs = await store.get(joinKey(clean, ".zattrs"));
    const attrs = zattrs ? readJson(store, joinKey(clean, ".zattrs"), zattrs) : {};
    const { _ARRAY_DIMENSIONS: dims, ...attributes } = attrs;
    const dtype = V2_TO_DTYPE[String(doc.dtype)];
    if (!dtype) writable = `dtype ${String(doc.dtype)}`;
    if (doc.filters) writable = "v2 filters";
    if (doc.order === "F") writable = "Fortran order";
    if (doc.dimension_separator === "/") writable = `dimension_separator "/"`;
    const compressor = doc.compressor as { id: string; level?: number } | null;
    meta = {
      shape: doc.shape as number[],
      chunks: doc.chunks as number[],
      dtype,
      fillValue: parseFill(doc.fill_value),
      codecs: compressor ? [{ id: compressor.id as CodecSpec["id"], level: compressor.level }] : [],
      attributes,
      dimensionNames: Array.isArray(dims) ? (dims as string[]) : undefined,
      format: 2,
    };
    if (!writable && dtype) {
      pipeline = pipelineDocument({ ...meta, codecs: [] });
      if (compressor) {
        const { id, ...configuration } = compressor;
        pipeline.codecs = [...pipeline.codecs, { name: `numcodecs.${id}`, configuration }];
      }
    }
  }
  if (!writable && meta.dtype && isNumericDataType(meta.dtype)) {
    try {
      validateMetadata({ ...meta, codecs: [] });
    } catch (error) {
      writable = (error as Error).message;
    }
  }
  const location = zarr.root(store).resolve(clean || "/");
  const array = await zarr.open(location, { kind: "array" });
  return new Dataset(store, clean, meta, array, writable ? undefined : pipeline, writable);
}
