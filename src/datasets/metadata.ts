/**
 * Array metadata for the datasets we write: zarr v3 (`zarr.json`) by default, zarr v2 (`.zarray` +
 * `.zattrs`) for Python/kerchunk-era readers. Both are built from one description so a dataset reads
 * the same whichever format holds it, and so the chunk encoder (encode.ts) can use the v3 form of
 * either.
 */
import type * as zarr from "zarrita";
import { RequestError } from "../errors.js";

/** Numeric element types a dataset can hold. */
export type NumericDataType =
  | "int8"
  | "int16"
  | "int32"
  | "uint8"
  | "uint16"
  | "uint32"
  | "float32"
  | "float64"
  | "int64"
  | "uint64";

export type CodecId = "zstd" | "gzip" | "zlib" | "blosc" | "lz4";

/** A compressor: its id and, optionally, a level (zstd 1–22, gzip/zlib 1–9, blosc clevel 1–9). */
export interface CodecSpec {
  id: CodecId;
  level?: number;
}

export interface DatasetMetadata {
  shape: number[];
  chunks: number[];
  dtype: NumericDataType;
  /** `null` is only meaningful in v2; v3 needs a value, so it becomes 0 there. */
  fillValue: number | null;
  /** Compressors applied in order after the bytes codec (usually zero or one). */
  codecs: CodecSpec[];
  attributes: Record<string, unknown>;
  dimensionNames?: string[];
  format: 2 | 3;
}

const V2_DTYPES: Record<NumericDataType, string> = {
  int8: "|i1",
  uint8: "|u1",
  int16: "<i2",
  uint16: "<u2",
  int32: "<i4",
  uint32: "<u4",
  int64: "<i8",
  uint64: "<u8",
  float32: "<f4",
  float64: "<f8",
};

const DEFAULT_LEVEL: Record<CodecId, number> = { zstd: 3, gzip: 5, zlib: 5, blosc: 5, lz4: 1 };

/** Chunks are held whole in memory (a few at a time); larger ones are refused up front. */
export const MAX_CHUNK_BYTES = 2 ** 30;

export function isNumericDataType(dtype: string): dtype is NumericDataType {
  return dtype in V2_DTYPES;
}

/** `zstd`, `zstd:5`, `gzip:9`, `none` → codec list. */
export function parseCodecs(text: string): CodecSpec[] {
  if (text === "none" || text === "") return [];
  return text.split(",").map((part) => {
    const [id, level] = part.trim().split(":");
    if (!(id in DEFAULT_LEVEL)) {
      throw new RequestError(`unknown codec "${id}": expected one of ${Object.keys(DEFAULT_LEVEL).join(", ")}, none`);
    }
    const spec: CodecSpec = { id: id as CodecId };
    if (level !== undefined) {
      const n = Number(level);
      if (!Number.isInteger(n)) throw new RequestError(`codec level must be an integer, got "${level}"`);
      spec.level = n;
    }
    return spec;
  });
}

/** Refuses shapes, chunks and names that would make the chunk grid meaningless. */
export function validateMetadata(meta: DatasetMetadata): void {
  const { shape, chunks } = meta;
  if (shape.length !== chunks.length) {
    throw new RequestError(`chunks [${chunks}] must have one entry per dimension of shape [${shape}]`);
  }
  shape.forEach((n, i) => {
    if (!Number.isSafeInteger(n) || n < 0) throw new RequestError(`shape[${i}] must be a non-negative integer, got ${n}`);
    const c = chunks[i];
    if (!Number.isSafeInteger(c) || c < 1) throw new RequestError(`chunks[${i}] must be a positive integer, got ${c}`);
  });
  if (!isNumericDataType(meta.dtype)) throw new RequestError(`unsupported dtype "${meta.dtype}"`);
  const chunkBytes = chunks.reduce((a, b) => a * b, itemSize(meta.dtype));
  if (chunkBytes > MAX_CHUNK_BYTES) {
    throw new RequestError(`chunks [${chunks}] of ${meta.dtype} are ${chunkBytes} bytes each; the limit is ${MAX_CHUNK_BYTES} (1 GiB)`);
  }
  if (meta.dimensionNames && meta.dimensionNames.length !== shape.length) {
    throw new RequestError(`dimensionNames [${meta.dimensionNames}] must have one name per dimension`);
  }
  for (const codec of meta.codecs) {
    if (!(codec.id in DEFAULT_LEVEL)) throw new RequestError(`unknown codec "${codec.id}"`);
  }
}

function numcodecsConfig(codec: CodecSpec, itemsize: number): Record<string, unknown> {
  const level = codec.level ?? DEFAULT_LEVEL[codec.id];
  switch (codec.id) {
    case "blosc":
      return { id: "blosc", cname: "lz4", clevel: level, shuffle: 1, blocksize: 0, typesize: itemsize };
    case "lz4":
      return { id: "lz4", acceleration: level };
    default:
      return { id: codec.id, level };
  }
}

export function itemSize(dtype: NumericDataType): number {
  return Number(V2_DTYPES[dtype].slice(2));
}

/** JSON fill value: NaN and infinities spelled as zarr spells them. */
function jsonFill(value: number | null, v3: boolean): number | string | null {
  if (value === null) return v3 ? 0 : null;
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "Infinity";
  if (value === -Infinity) return "-Infinity";
  return value;
}

/** zarr v3 codec list: the spec's names for zstd and gzip, numcodecs.* (zarr-python's convention) otherwise. */
function v3Codecs(meta: DatasetMetadata): zarr.CodecMetadata[] {
  const size = itemSize(meta.dtype);
  const codecs: zarr.CodecMetadata[] = [{ name: "bytes", configuration: { endian: "little" } }];
  for (const codec of meta.codecs) {
    const { id, ...config } = numcodecsConfig(codec, size);
    if (id === "zstd") codecs.push({ name: "zstd", configuration: { level: config.level, checksum: false } });
    else if (id === "gzip") codecs.push({ name: "gzip", configuration: config });
    else codecs.push({ name: `numcodecs.${id as string}`, configuration: config });
  }
  return codecs;
}

/** The v3 `zarr.json` document. */
export function v3Document(meta: DatasetMetadata): zarr.ArrayMetadata<zarr.DataType> {
  return {
    zarr_format: 3,
    node_type: "array",
    shape: meta.shape,
    data_type: meta.dtype,
    chunk_grid: { name: "regular", configuration: { chunk_shape: meta.chunks } },
    chunk_key_encoding: { name: "default", configuration: { separator: "/" } },
    codecs: v3Codecs(meta),
    fill_value: jsonFill(meta.fillValue, true) as zarr.Scalar<zarr.DataType>,
    ...(meta.dimensionNames && { dimension_names: meta.dimensionNames }),
    attributes: meta.attributes,
  };
}

/** The v2 `.zarray` and `.zattrs` documents (dimension names as xarray's `_ARRAY_DIMENSIONS`). */
export function v2Documents(meta: DatasetMetadata): { zarray: Record<string, unknown>; zattrs: Record<string, unknown> } {
  const compressors = meta.codecs.map((c) => numcodecsConfig(c, itemSize(meta.dtype)));
  if (compressors.length > 1) {
    throw new RequestError("zarr v2 holds one compressor; give one codec or write zarr v3");
  }
  return {
    zarray: {
      zarr_format: 2,
      shape: meta.shape,
      chunks: meta.chunks,
      dtype: V2_DTYPES[meta.dtype],
      compressor: compressors[0] ?? null,
      fill_value: jsonFill(meta.fillValue, false),
      order: "C",
      filters: null,
      dimension_separator: ".",
    },
    zattrs: {
      ...meta.attributes,
      ...(meta.dimensionNames && { _ARRAY_DIMENSIONS: meta.dimensionNames }),
    },
  };
}

/**
 * The v3 description zarrita runs the codec pipeline from, for either format: a v2 dataset's
 * compressor becomes the matching `numcodecs.*` codec, as zarrita itself maps v2 metadata.
 */
export function pipelineDocument(meta: DatasetMetadata): zarr.ArrayMetadata<zarr.DataType> {
  if (meta.format === 3) return v3Document(meta);
  const doc = v3Document({ ...meta, codecs: [] });
  const { zarray } = v2Documents(meta);
  const compressor = zarray.compressor as Record<string, unknown> | null;
  if (compressor) {
    const { id, ...configuration } = compressor;
    doc.codecs = [...doc.codecs, { name: `numcodecs.${id as string}`, configuration }];
  }
  doc.chunk_key_encoding = { name: "v2", configuration: { separator: "." } };
  doc.fill_value = (meta.fillValue ?? 0) as zarr.Scalar<zarr.DataType>;
  return doc;
}

/** Store key of a chunk, relative to the array's path. */
export function chunkKey(meta: Pick<DatasetMetadata, "format" | "shape">, coords: readonly number[]): string {
  if (meta.format === 2) return coords.length === 0 ? "0" : coords.join(".");
  return ["c", ...coords].join("/");
}
