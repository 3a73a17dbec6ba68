/**
 * JSON text for reference set metadata. JSON.stringify cannot write bigint, and 64-bit fill values
 * such as netCDF's NC_FILL_UINT64 must reach Python readers with every digit, so bigints are
 * written as exact integer literals.
 */
const MARK = "\u0000bigint:";

export function toJson(value: unknown, indent?: number): string {
  const text = JSON.stringify(value, (_key, v) => (typeof v === "bigint" ? `${MARK}${v}` : v), indent);
  // The marker comes out of JSON.stringify escaped, as the six characters \u0000.
  return text.includes("\\u0000bigint:") ? text.replace(/"\\u0000bigint:(-?\d+)"/g, "$1") : text;
}
