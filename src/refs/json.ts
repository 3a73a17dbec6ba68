/**
 * JSON text for reference set metadata, exact for Python readers as well as JSON.parse:
 * - bigint (64-bit fill values such as netCDF's NC_FILL_UINT64) is written as an exact integer
 *   literal, which JSON.stringify cannot do;
 * - a double that is integral beyond 2^53 (a float fill value like 1e20) is written in exponent
 *   form: JSON.stringify would write its digits, which Python parses as an int that is not the
 *   same number, so `_FillValue` and `fill_value` would disagree in xarray.
 */
const MARK = "\u0000lit:";

export function toJson(value: unknown, indent?: number): string {
  const text = JSON.stringify(
    value,
    (_key, v: unknown) => {
      if (typeof v === "bigint") return `${MARK}${v}`;
      if (typeof v === "number" && Number.isInteger(v) && Math.abs(v) > Number.MAX_SAFE_INTEGER) {
        return `${MARK}${v.toExponential()}`;
      }
      return v;
    },
    indent,
  );
  // The marker comes out of JSON.stringify escaped, as the six characters \u0000.
  return text.includes("\\u0000lit:") ? text.replace(/"\\u0000lit:([-+.e\d]+)"/g, "$1") : text;
}
