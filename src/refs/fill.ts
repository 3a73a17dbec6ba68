/**
 * The zarr `fill_value` of an array: what a reader shows where no chunk was ever written. HDF5
 * readers show the fill value there, so it must never be `null` for arrays that can have unwritten
 * chunks. Policy, first match wins:
 *   1. the `_FillValue` attribute (netCDF/CF; what netCDF-C and xarray use);
 *   2. the HDF5 fill value message;
 *   3. for netCDF-4 files, netCDF-C's default fill for the type;
 *   4. zero, like HDF5's default fill (what h5py reads from unwritten chunks).
 */
import type { Attribute, Dataset } from "../hdf5/model.js";
import { numberToJson } from "./attributes.js";
import type { DtypeMapping } from "./dtype.js";
import type { FillJson } from "./types.js";

/** netCDF-C's NC_FILL_* defaults, keyed by NumPy kind + size. */
const NETCDF_DEFAULT_FILL: Record<string, number | bigint> = {
  i1: -127,
  u1: 255,
  i2: -32767,
  u2: 65535,
  i4: -2147483647,
  u4: 4294967295,
  i8: -9223372036854775806n,
  u8: 18446744073709551614n,
  f4: 9.969209968386869e36,
  f8: 9.969209968386869e36,
};

export function fillValueFor(
  dataset: Pick<Dataset, "attributes" | "fill">,
  mapping: Extract<DtypeMapping, { ok: true }>,
  isNetcdf: boolean,
): FillJson {
  const kindSize = mapping.dtype.slice(1);
  if (mapping.kind === "vlen-string") return null; // every chunk of a vlen array is inlined
  const attr = dataset.attributes.find((a) => a.name === "_FillValue");
  const fromAttr = attr ? fillFromAttribute(attr, mapping) : undefined;
  if (fromAttr !== undefined) return fromAttr;
  if (dataset.fill.bytes !== undefined && dataset.fill.bytes.length === mapping.itemSize) {
    return decodeScalar(dataset.fill.bytes, mapping.dtype);
  }
  if (isNetcdf && kindSize in NETCDF_DEFAULT_FILL) return normalise(NETCDF_DEFAULT_FILL[kindSize]);
  if (mapping.kind === "bool") return false;
  if (mapping.kind === "bytes") return "";
  return 0;
}

function fillFromAttribute(attr: Attribute, mapping: Extract<DtypeMapping, { ok: true }>): FillJson | undefined {
  let v = attr.value;
  if (Array.isArray(v)) v = v.length === 1 ? v[0] : null;
  if (typeof v === "number") return mapping.kind === "bool" ? v !== 0 : numberToJson(v);
  if (typeof v === "bigint") return normalise(v);
  if (typeof v === "boolean") return v;
  if (v instanceof Uint8Array && v.length === mapping.itemSize) return decodeScalar(v, mapping.dtype);
  if (typeof v === "string" && mapping.kind === "bytes") return bytesFill(new TextEncoder().encode(v));
  return undefined;
}

function normalise(v: number | bigint): FillJson {
  if (typeof v === "number") return numberToJson(v);
  return Number.isSafeInteger(Number(v)) ? Number(v) : v;
}

/** Decodes one element of a numeric/bool/bytes dtype from its stored bytes. */
export function decodeScalar(bytes: Uint8Array, dtype: string): FillJson {
  const little = dtype[0] !== ">";
  const kind = dtype[1];
  const size = Number(dtype.slice(2));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (kind === "S") return bytesFill(bytes);
  if (kind === "b") return bytes[0] !== 0;
  if (kind === "f") {
    if (size === 2) return numberToJson(halfToNumber(view.getUint16(0, little)));
    return numberToJson(size === 4 ? view.getFloat32(0, little) : view.getFloat64(0, little));
  }
  if (size === 8) return normalise(kind === "i" ? view.getBigInt64(0, little) : view.getBigUint64(0, little));
  const signed = kind === "i";
  switch (size) {
    case 1:
      return signed ? view.getInt8(0) : view.getUint8(0);
    case 2:
      return signed ? view.getInt16(0, little) : view.getUint16(0, little);
    default:
      return signed ? view.getInt32(0, little) : view.getUint32(0, little);
  }
}

/**
 * zarr v2 writes byte-string fills as base64, while zarrita fills with the string's UTF-8 bytes;
 * they agree only for the all-zero fill (""), which is also HDF5's default.
 */
function bytesFill(bytes: Uint8Array): string {
  if (bytes.every((b) => b === 0)) return "";
  return Buffer.from(bytes).toString("base64");
}

export function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}
