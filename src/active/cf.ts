/**
 * CF conventions as netCDF4-python applies them when it returns a masked array: the missing-data
 * rules and the packing (scale_factor/add_offset) of a variable, read from its attributes.
 *
 * Checked against netCDF4-python 1.6.2: values equal to `_FillValue` (or, with no `_FillValue`, the
 * netCDF default fill for the type, except 1-byte types) or to any `missing_value` are masked, and
 * values outside `valid_range` (else `valid_min`/`valid_max`) are masked. A `_FillValue` does not
 * imply a valid range.
 */
import type { MissingRules } from "./kernel.js";

/** netCDF-C's default fill values (netcdf.h NC_FILL_*), by zarr data type. */
export const NETCDF_DEFAULT_FILL: Readonly<Record<string, number | bigint>> = {
  int16: -32767,
  int32: -2147483647,
  int64: -9223372036854775806n,
  uint16: 65535,
  uint32: 4294967295,
  uint64: 18446744073709551614n,
  float32: 9.969209968386869e36,
  float64: 9.969209968386869e36,
};

export interface Packing {
  scale: number;
  offset: number;
}

export type Attributes = Record<string, unknown>;

/** JSON attributes encode non-finite numbers as strings (kerchunk/zarr: "NaN", "Infinity"). */
export function attributeNumber(value: unknown): number | bigint | undefined {
  if (typeof value === "number" || typeof value === "bigint") return value;
  if (typeof value === "string") {
    if (value === "NaN") return NaN;
    if (value === "Infinity") return Infinity;
    if (value === "-Infinity") return -Infinity;
    if (/^-?\d+$/.test(value.trim())) {
      const big = BigInt(value.trim());
      return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
    }
    return undefined;
  }
  if (Array.isArray(value) && value.length === 1) return attributeNumber(value[0]);
  return undefined;
}

function attributeNumbers(value: unknown): (number | bigint)[] {
  const list = Array.isArray(value) ? value : [value];
  return list.map(attributeNumber).filter((v): v is number | bigint => v !== undefined);
}

export interface CfOptions {
  /** The variable comes from a netCDF file: apply the default fill when `_FillValue` is absent. */
  netcdf?: boolean;
  skipNaN?: boolean;
}

/** Missing-data rules from a variable's attributes; `dtype` is zarrita's data type name. */
export function missingRules(attrs: Attributes, dtype: string, options: CfOptions = {}): MissingRules {
  const rules: MissingRules = { skipNaN: options.skipNaN };
  const fill = attributeNumber(attrs._FillValue);
  if (fill !== undefined) rules.fillValue = fill;
  else if (options.netcdf && dtype in NETCDF_DEFAULT_FILL) rules.fillValue = NETCDF_DEFAULT_FILL[dtype];
  if (attrs.missing_value !== undefined) rules.missingValues = attributeNumbers(attrs.missing_value);
  const range = attributeNumbers(attrs.valid_range);
  if (range.length === 2) {
    rules.validMin = range[0];
    rules.validMax = range[1];
  } else {
    const lo = attributeNumber(attrs.valid_min);
    const hi = attributeNumber(attrs.valid_max);
    if (lo !== undefined) rules.validMin = lo;
    if (hi !== undefined) rules.validMax = hi;
  }
  if (dtype === "float32") {
    // Data are float32: compare against the attribute as float32 would store it, like numpy does.
    const f32 = (v: number | bigint | undefined) => (typeof v === "number" ? Math.fround(v) : v);
    rules.fillValue = f32(rules.fillValue);
    rules.missingValues = rules.missingValues?.map((v) => f32(v)!);
    rules.validMin = f32(rules.validMin);
    rules.validMax = f32(rules.validMax);
  }
  return rules;
}

/** Packing from `scale_factor`/`add_offset`, or undefined when the variable is not packed. */
export function packing(attrs: Attributes): Packing | undefined {
  const scale = attributeNumber(attrs.scale_factor);
  const offset = attributeNumber(attrs.add_offset);
  if (scale === undefined && offset === undefined) return undefined;
  return { scale: Number(scale ?? 1), offset: Number(offset ?? 0) };
}
