/**
 * HDF5 attributes as zarr `.zattrs` JSON. The JSON must survive both Python's json module (zarr,
 * xarray) and JSON.parse, so non-finite floats become the strings zarr's encoder writes ("NaN",
 * "Infinity", "-Infinity"), and netCDF-4/HDF5 dimension-scale bookkeeping is hidden the way
 * h5netcdf and kerchunk hide it.
 */
import type { Attribute, AttributeValue } from "../hdf5/model.js";

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Attributes netCDF-C and the HDF5 dimension-scale API keep for themselves. */
export const HIDDEN_ATTRIBUTES: ReadonlySet<string> = new Set([
  "REFERENCE_LIST",
  "CLASS",
  "DIMENSION_LIST",
  "NAME",
  "_Netcdf4Dimid",
  "_Netcdf4Coordinates",
  "_nc3_strict",
  "_NCProperties",
  "_IsNetcdf4",
  "_SuperblockVersion",
]);

/** The visible attributes of one object as a JSON object. */
export function attributesToJson(attributes: Attribute[]): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const attr of attributes) {
    if (HIDDEN_ATTRIBUTES.has(attr.name)) continue;
    out[attr.name] = attributeToJson(attr);
  }
  return out;
}

/**
 * One attribute's value: scalars stay scalars, one-element arrays collapse to their element (as
 * kerchunk and netCDF readers present them), other arrays nest by the dataspace shape.
 */
export function attributeToJson(attr: Attribute): JsonValue {
  if (attr.shape === null) return null;
  const value = valueToJson(attr.value);
  if (!Array.isArray(value)) return value;
  const size = attr.shape.reduce((a, b) => a * b, 1);
  if (size === 1 && value.length === 1) return value[0];
  if (attr.shape.length <= 1 || value.length !== size) return value;
  return nest(value, attr.shape);
}

export function valueToJson(value: AttributeValue): JsonValue {
  if (value === null) return null;
  switch (typeof value) {
    case "number":
      return numberToJson(value);
    case "bigint":
      // Exact as a number when it fits a double; otherwise a decimal string keeps every digit.
      return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
    case "string":
    case "boolean":
      return value;
  }
  if (value instanceof Uint8Array) return bytesToString(value);
  if (Array.isArray(value)) return value.map(valueToJson);
  const out: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(value)) out[k] = valueToJson(v);
  return out;
}

export function numberToJson(value: number): number | string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "Infinity";
  if (value === -Infinity) return "-Infinity";
  return value;
}

/** Raw bytes (opaque or undecoded strings): UTF-8 without trailing NULs, like h5py's `.decode()`. */
function bytesToString(bytes: Uint8Array): string {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return new TextDecoder().decode(bytes.subarray(0, end));
}

function nest(flat: JsonValue[], shape: number[]): JsonValue[] {
  if (shape.length === 1) return flat;
  const [, ...rest] = shape;
  const step = rest.reduce((a, b) => a * b, 1);
  const out: JsonValue[] = [];
  for (let i = 0; i < shape[0]; i++) out.push(nest(flat.slice(i * step, (i + 1) * step), rest));
  return out;
}
