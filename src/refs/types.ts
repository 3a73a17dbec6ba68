/**
 * The kerchunk reference set, version 1 (kerchunk `docs/source/spec.rst`): a map from zarr keys to
 * either inline content or a byte range of some URL.
 */

/**
 * One reference value:
 * - a string: the content itself, UTF-8 text, or `base64:`-prefixed binary;
 * - `[url]`: the whole object at `url`;
 * - `[url, offset, length]`: `length` bytes of `url` starting at `offset`.
 * A null (or empty) url stands for the reference set's `target` (fsspec's convention).
 */
export type Reference = string | [string | null] | [string | null, number, number];

export interface References {
  version: 1;
  refs: Record<string, Reference>;
  /** `{{name}}` substitutions for urls (spec v1). */
  templates?: Record<string, string>;
  /** Generated keys (spec v1); not produced by our builder. */
  gen?: unknown[];
}

/** A dataset the builder could not represent as a zarr v2 array, and why. */
export interface BuildWarning {
  /** HDF5 path of the object. */
  path: string;
  message: string;
}

/** zarr v2 `.zarray` content, as the builder writes it. */
export interface ZarrayMetadata {
  zarr_format: 2;
  shape: number[];
  chunks: number[];
  dtype: string;
  compressor: null;
  fill_value: FillJson;
  filters: CodecConfig[] | null;
  order: "C";
  dimension_separator: ".";
}

/** A zarr v2 codec configuration: numcodecs-style `{ id, ...config }`. */
export interface CodecConfig {
  id: string;
  [key: string]: unknown;
}

/**
 * A JSON fill value: numbers, "NaN"/"Infinity"/"-Infinity" for floats, base64 strings for S dtypes.
 * 64-bit integers outside ±2^53 stay bigint and are written as exact JSON digits (see `toJson`).
 */
export type FillJson = number | bigint | string | boolean | null;
