/**
 * The Reductionist API v2 request: parsing and validation. Field names, defaults and the rules
 * (unknown fields refused, selection needs shape, axes ascending and unique, raw size must match
 * shape × dtype, exactly one missing-data rule whose values fit the dtype) follow reductionist-rs
 * 0.13 `models.rs`. Our extras: dtypes int8/int16/uint8/uint16/float16, every codec of src/codecs
 * as `compression`/`filters`, and the `moments` operation (see operations.ts).
 *
 * Numbers arrive as JsonNumber (json.ts) so int64/uint64 values are never rounded through a double.
 */
import { RequestError } from "../errors.js";
import type { MissingRules } from "../active/kernel.js";
import type { CodecConfig } from "../codecs/types.js";
import { JsonNumber, parseJson, type JsonValue } from "./json.js";

export const OPERATIONS = ["count", "max", "min", "select", "sum", "moments"] as const;
export type Operation = (typeof OPERATIONS)[number];

export const REDUCTIONIST_DTYPES = ["int32", "int64", "uint32", "uint64", "float32", "float64"] as const;
export const EXTRA_DTYPES = ["int8", "int16", "uint8", "uint16", "float16"] as const;
export type Dtype = (typeof REDUCTIONIST_DTYPES)[number] | (typeof EXTRA_DTYPES)[number];

export const ITEM_SIZE: Record<Dtype, number> = {
  int8: 1, uint8: 1, int16: 2, uint16: 2, float16: 2, int32: 4, uint32: 4, float32: 4, int64: 8, uint64: 8, float64: 8,
};

/** Reductionist's compression ids plus ours; `blosc2` is Reductionist's and is not supported here. */
export const COMPRESSION_IDS = ["gzip", "zlib", "bz2", "zstd", "lz4", "blosc", "imagecodecs_lzf", "imagecodecs_lz4h5", "hdf5_bitshuffle"];
export const FILTER_IDS = ["shuffle", "shuffle_simd", "fletcher32", "imagecodecs_bitshuffle", "hdf5_nbit", "hdf5_scaleoffset"];

export interface ReductionRequest {
  operation: Operation;
  interfaceType: "s3" | "http" | "https";
  url: URL;
  dtype: Dtype;
  byteOrder: "big" | "little";
  offset: number;
  size?: number;
  shape?: number[];
  order: "C" | "F";
  /** [start, end, stride] per dimension, numpy slice semantics. */
  selection?: [number | null, number | null, number][];
  /** Codec configs in zarr v2 order: filters first, compression last (decoded in reverse). */
  codecs: CodecConfig[];
  compressed: boolean;
  missing?: MissingRules;
  /** undefined: reduce over all axes; a list (possibly empty) otherwise. */
  axis?: number[];
  disableChunkCache: boolean;
  /** moments only (ours): compute M2 (default true); a mean needs none. */
  m2: boolean;
  /** moments only (ours): track min/max (default true; 64-bit integer data always keeps them). */
  extremes: boolean;
  shapeAsBytes: boolean;
  countAsBytes: boolean;
}

export interface RequestLimits {
  /** Largest `size` (bytes read from the upstream object). */
  maxChunkBytes: number;
  /** Largest decoded array, prod(shape) × item size. */
  maxDecodedBytes: number;
  maxDims: number;
}

const FIELDS = [
  "interface_type", "url", "dtype", "byte_order", "offset", "size", "shape", "axis", "order", "selection",
  "compression", "filters", "missing", "option_disable_chunk_cache", "option_shape_as_bytes", "option_count_as_bytes",
  "option_m2", "option_extremes",
];
const MISSING_KEYS = ["missing_value", "missing_values", "valid_min", "valid_max", "valid_range"];

const bad = (message: string, ...causes: string[]): never => {
  throw new RequestError("request data is not valid", 400, [message, ...causes]);
};

function isObject(v: JsonValue | undefined): v is { [key: string]: JsonValue } {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof JsonNumber);
}

function uint(name: string, v: JsonValue, max = Number.MAX_SAFE_INTEGER): number {
  if (!(v instanceof JsonNumber) || !v.isInteger) return bad(`${name}: expected a non-negative integer, got ${show(v)}`);
  const n = v.toBigInt();
  if (n < 0n || n > BigInt(max)) return bad(`${name}: ${v.text} is out of range (0..${max})`);
  return Number(n);
}

function int(name: string, v: JsonValue): number {
  if (!(v instanceof JsonNumber) || !v.isInteger) return bad(`${name}: expected an integer, got ${show(v)}`);
  const n = v.toBigInt();
  if (n < BigInt(Number.MIN_SAFE_INTEGER) || n > BigInt(Number.MAX_SAFE_INTEGER)) return bad(`${name}: ${v.text} is out of range`);
  return Number(n);
}

function bool(name: string, v: JsonValue): boolean {
  if (typeof v !== "boolean") return bad(`${name}: expected true or false, got ${show(v)}`);
  return v;
}

function oneOf<T extends string>(name: string, v: JsonValue, allowed: readonly T[]): T {
  if (typeof v !== "string" || !allowed.includes(v as T)) {
    return bad(`${name}: unknown variant ${show(v)}, expected one of ${allowed.map((a) => `\`${a}\``).join(", ")}`);
  }
  return v as T;
}

function show(v: JsonValue | undefined): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? text.slice(0, 57) + "..." : text;
}

/** JsonNumbers back to plain numbers, for codec configurations. */
function plain(v: JsonValue): unknown {
  if (v instanceof JsonNumber) return v.toNumber();
  if (Array.isArray(v)) return v.map(plain);
  if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

const INT_RANGE: Partial<Record<Dtype, [bigint, bigint]>> = {
  int8: [-128n, 127n], int16: [-32768n, 32767n], int32: [-(2n ** 31n), 2n ** 31n - 1n], int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint8: [0n, 255n], uint16: [0n, 65535n], uint32: [0n, 2n ** 32n - 1n], uint64: [0n, 2n ** 64n - 1n],
};
const FLOAT_MAX: Partial<Record<Dtype, number>> = { float16: 65504, float32: 3.4028234663852886e38, float64: Number.MAX_VALUE };

/** One missing-data value, checked against the dtype as Reductionist's DValue conversion does. */
function missingValue(name: string, v: JsonValue, dtype: Dtype): number | bigint {
  if (!(v instanceof JsonNumber)) return bad(`missing: ${name}: expected a number, got ${show(v)}`);
  const range = INT_RANGE[dtype];
  if (range) {
    if (!v.isInteger) return bad(`missing: ${name}: ${v.text} is not an integer, the dtype is ${dtype}`);
    const n = v.toBigInt();
    if (n < range[0] || n > range[1]) return bad(`missing: ${name}: ${v.text} does not fit ${dtype}`);
    return dtype === "int64" || dtype === "uint64" ? n : Number(n);
  }
  const x = v.toNumber();
  if (!Number.isFinite(x) || Math.abs(x) > FLOAT_MAX[dtype]!) return bad(`missing: ${name}: ${v.text} does not fit ${dtype}`);
  // Compare as the data are stored, like numpy casting the attribute to the array's dtype.
  return dtype === "float64" ? x : Math.fround(x);
}

function parseMissing(v: JsonValue, dtype: Dtype, combine: boolean): MissingRules {
  if (!isObject(v)) return bad(`missing: expected an object with one of ${MISSING_KEYS.join(", ")}, got ${show(v)}`);
  const keys = Object.keys(v);
  const allowed = combine ? [...MISSING_KEYS, "skip_nan"] : MISSING_KEYS;
  for (const k of keys) if (!allowed.includes(k)) bad(`missing: unknown variant \`${k}\`, expected one of ${allowed.join(", ")}`);
  if (!combine && keys.length !== 1) bad(`missing: exactly one of ${MISSING_KEYS.join(", ")} must be given, got ${keys.length}`);
  const rules: MissingRules = {};
  const values: (number | bigint)[] = [];
  const less = (a: number | bigint, b: number | bigint) => (typeof a === "bigint" && typeof b === "bigint" ? a < b : Number(a) < Number(b));
  for (const k of keys) {
    const x = v[k];
    if (k === "missing_value") values.push(missingValue(k, x, dtype));
    else if (k === "missing_values") {
      if (!Array.isArray(x)) bad(`missing: missing_values: expected a list, got ${show(x)}`);
      for (const item of x as JsonValue[]) values.push(missingValue(k, item, dtype));
    } else if (k === "valid_min") rules.validMin = missingValue(k, x, dtype);
    else if (k === "valid_max") rules.validMax = missingValue(k, x, dtype);
    else if (k === "valid_range") {
      if (!Array.isArray(x) || x.length !== 2) return bad(`missing: valid_range: expected [min, max], got ${show(x)}`);
      const lo = missingValue(k, x[0], dtype);
      const hi = missingValue(k, x[1], dtype);
      if (!less(lo, hi)) bad(`missing: valid_range: min ${String(lo)} must be less than max ${String(hi)}`);
      rules.validMin = lo;
      rules.validMax = hi;
    } else if (k === "skip_nan") rules.skipNaN = bool("missing: skip_nan", x);
  }
  if (values.length > 0) rules.missingValues = values;
  return rules;
}

function parseCodec(name: string, v: JsonValue, ids: readonly string[], dtype: Dtype): CodecConfig {
  if (!isObject(v) || typeof v.id !== "string") return bad(`${name}: expected an object with an "id", got ${show(v)}`);
  const id = oneOf(`${name}: id`, v.id, ids);
  if (id === "shuffle" || id === "shuffle_simd") {
    for (const k of Object.keys(v)) if (k !== "id" && k !== "element_size") bad(`${name}: unknown field \`${k}\``);
    if (v.element_size === undefined) bad(`${name}: missing field \`element_size\``);
    const size = uint(`${name}: element_size`, v.element_size, 1 << 16);
    if (size === 0) bad(`${name}: element_size must be greater than 0`);
    return { id: "shuffle", elementsize: size };
  }
  if (id === "gzip" || id === "zlib") {
    for (const k of Object.keys(v)) if (k !== "id" && k !== "level") bad(`${name}: unknown field \`${k}\``);
    return { id };
  }
  const { id: _, ...rest } = plain(v) as CodecConfig;
  // Our codecs that need the element type read it from the config when they are not told by zarrita.
  return { id, ...rest, ...(id === "hdf5_nbit" || id === "hdf5_scaleoffset" ? { dtype: rest.dtype ?? dtype } : {}) };
}

/** Parses and validates a request body for `operation`; throws RequestError (400) naming the field. */
export function parseRequest(operation: Operation, body: string, limits: RequestLimits): ReductionRequest {
  return requestOf(operation, parseJson(body), limits);
}

/** Fields a batch's chunk may set; every other field is shared by the whole batch. */
export const BATCH_CHUNK_FIELDS = ["url", "offset", "size", "selection"];
/** Chunks in one batch; the body limit bounds it too. */
export const MAX_BATCH_CHUNKS = 1024;

/**
 * Our batch extension (`POST /v2/<operation>/batch`): one body of shared request fields plus
 * `chunks`, a list of {url, offset, size, selection}; each chunk is validated as a whole request
 * (the shared fields with its own laid over them), and errors name the chunk.
 */
export function parseBatch(operation: Operation, body: string, limits: RequestLimits): ReductionRequest[] {
  const json = parseJson(body);
  if (!isObject(json)) return bad(`expected a JSON object, got ${show(json)}`);
  const { chunks, ...shared } = json;
  if (!Array.isArray(chunks) || chunks.length === 0) {
    return bad(`chunks: expected a non-empty list of {${BATCH_CHUNK_FIELDS.join(", ")}}, got ${show(chunks)}`);
  }
  if (chunks.length > MAX_BATCH_CHUNKS) bad(`chunks: ${chunks.length} chunks is over the limit of ${MAX_BATCH_CHUNKS} per batch`);
  return chunks.map((chunk, i) => {
    if (!isObject(chunk)) return bad(`chunks[${i}]: expected an object, got ${show(chunk)}`);
    for (const key of Object.keys(chunk)) {
      if (!BATCH_CHUNK_FIELDS.includes(key)) bad(`chunks[${i}]: unknown field \`${key}\`, expected one of ${BATCH_CHUNK_FIELDS.join(", ")}`);
    }
    try {
      return requestOf(operation, { ...shared, ...chunk }, limits);
    } catch (error) {
      if (error instanceof RequestError) {
        throw new RequestError(error.message, error.status, error.causedBy.map((c) => `chunks[${i}]: ${c}`));
      }
      throw error;
    }
  });
}

function requestOf(operation: Operation, json: JsonValue, limits: RequestLimits): ReductionRequest {
  if (!isObject(json)) return bad(`expected a JSON object, got ${show(json)}`);
  for (const key of Object.keys(json)) if (!FIELDS.includes(key)) bad(`unknown field \`${key}\`, expected one of ${FIELDS.join(", ")}`);
  const field = (k: string) => (json[k] === null ? undefined : json[k]);
  for (const k of ["interface_type", "url", "dtype"]) if (field(k) === undefined) bad(`missing field \`${k}\``);

  const interfaceType = oneOf("interface_type", field("interface_type")!, ["s3", "http", "https"] as const);
  const rawUrl = field("url");
  if (typeof rawUrl !== "string") return bad(`url: expected a string, got ${show(rawUrl)}`);
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    return bad(`url: ${show(rawUrl)} is not a valid URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") bad(`url: scheme ${url.protocol} is not http or https`);
  if (url.username || url.password) bad("url: must not carry credentials; send them as HTTP Basic auth");
  const dtype = oneOf("dtype", field("dtype")!, [...REDUCTIONIST_DTYPES, ...EXTRA_DTYPES]);
  const byteOrder = field("byte_order") === undefined ? "little" : oneOf("byte_order", field("byte_order")!, ["big", "little"] as const);
  const order = field("order") === undefined ? "C" : oneOf("order", field("order")!, ["C", "F"] as const);
  const offset = field("offset") === undefined ? 0 : uint("offset", field("offset")!);
  let size: number | undefined;
  if (field("size") !== undefined) {
    size = uint("size", field("size")!);
    if (size === 0) bad("size: size must be greater than 0");
    if (size > limits.maxChunkBytes) bad(`size: ${size} bytes is over this server's limit of ${limits.maxChunkBytes}`);
  }

  let shape: number[] | undefined;
  const rawShape = field("shape");
  if (rawShape !== undefined) {
    if (!Array.isArray(rawShape)) return bad(`shape: expected a list of integers, got ${show(rawShape)}`);
    if (rawShape.length === 0) bad("shape: shape length must be greater than 0");
    if (rawShape.length > limits.maxDims) bad(`shape: ${rawShape.length} dimensions is over the limit of ${limits.maxDims}`);
    shape = rawShape.map((d, i) => uint(`shape[${i}]`, d));
    if (shape.includes(0)) bad("shape: shape indices must be greater than 0");
    const decoded = shape.reduce((a, b) => a * b, ITEM_SIZE[dtype]);
    if (decoded > limits.maxDecodedBytes) bad(`shape: ${decoded} decoded bytes is over this server's limit of ${limits.maxDecodedBytes}`);
  }

  let selection: [number | null, number | null, number][] | undefined;
  const rawSel = field("selection");
  if (rawSel !== undefined) {
    if (!Array.isArray(rawSel)) return bad(`selection: expected a list of [start, end, stride], got ${show(rawSel)}`);
    if (rawSel.length === 0) bad("selection: selection length must be greater than 0");
    if (!shape) bad("selection: Selection requires shape to be specified");
    selection = rawSel.map((s, i) => {
      const parts = Array.isArray(s) ? s : isObject(s) ? [s.start, s.end, s.stride] : undefined;
      if (!parts || parts.length !== 3 || parts.some((p) => p === undefined)) {
        return bad(`selection[${i}]: expected [start, end, stride], got ${show(s)}`);
      }
      // Ours: null means numpy's default (PyActiveStorage sends slice(None, ...) parts as null).
      const [start, end, stride] = parts.map((p, j) => (p === null ? null : int(`selection[${i}][${j}]`, p!)));
      if (stride === 0) bad(`selection[${i}]: Selection stride must not be equal to zero`);
      return [start, end, stride ?? 1] as [number | null, number | null, number];
    });
    if (shape!.length !== selection.length) {
      bad(`selection: Shape and selection must have the same length (shape ${shape!.length}, selection ${selection.length})`);
    }
  }

  const codecs: CodecConfig[] = [];
  const rawFilters = field("filters");
  if (rawFilters !== undefined) {
    if (!Array.isArray(rawFilters)) return bad(`filters: expected a list, got ${show(rawFilters)}`);
    // Ours: any codec may sit in the filter list; the chain decodes in reverse list order either way.
    rawFilters.forEach((f, i) => codecs.push(parseCodec(`filters[${i}]`, f, [...FILTER_IDS, ...COMPRESSION_IDS], dtype)));
  }
  const rawCompression = field("compression");
  if (rawCompression !== undefined) {
    if (isObject(rawCompression) && rawCompression.id === "blosc2") {
      bad("compression: blosc2 is not supported by this server (supported: " + COMPRESSION_IDS.join(", ") + ")");
    }
    codecs.push(parseCodec("compression", rawCompression, COMPRESSION_IDS, dtype));
  }
  // Without a shape we could not bound the decoded size, so a small body could inflate to gigabytes.
  if (codecs.length > 0 && !shape) bad("shape: compressed or filtered data needs a shape (it bounds the decoded size)");
  if (size !== undefined && rawCompression === undefined) {
    const item = ITEM_SIZE[dtype];
    if (shape) {
      const expected = shape.reduce((a, b) => a * b, item);
      if (size !== expected) {
        bad(`size: Raw data size must be equal to the product of shape indices and dtype size in bytes (raw size ${size}, dtype size ${item}, expected size ${expected})`);
      }
    } else if (size % item !== 0) {
      bad(`size: Raw data size must be a multiple of dtype size in bytes (raw size ${size}, dtype size ${item})`);
    }
  }

  let axis: number[] | undefined;
  const rawAxis = field("axis");
  if (rawAxis !== undefined) {
    if (!shape) bad("axis: Axis requires shape to be specified");
    const ndim = shape!.length;
    axis = Array.isArray(rawAxis) ? rawAxis.map((a, i) => uint(`axis[${i}]`, a)) : [uint("axis", rawAxis)];
    if (axis.length > ndim) bad("axis: Number of reduction axes must be less than or equal to length of shape");
    for (const a of axis) if (a >= ndim) bad(`axis: Reduction axis ${a} must be within shape (${ndim} dimensions)`);
    for (let i = 1; i < axis.length; i++) {
      if (axis[i] === axis[i - 1]) bad("axis: Reduction axes contains duplicates");
      if (axis[i] < axis[i - 1]) bad("axis: Reduction axes must be provided in ascending order");
    }
  }

  const missing = field("missing") === undefined ? undefined : parseMissing(field("missing")!, dtype, operation === "moments");
  const flag = (k: string, fallback = false) => (field(k) === undefined ? fallback : bool(k, field(k)!));
  for (const k of ["option_m2", "option_extremes"]) {
    if (field(k) !== undefined && operation !== "moments") bad(`${k}: only the moments operation takes it`);
  }
  return {
    operation,
    interfaceType,
    url,
    dtype,
    byteOrder,
    offset,
    size,
    shape,
    order,
    selection,
    codecs,
    compressed: rawCompression !== undefined,
    missing,
    axis,
    disableChunkCache: flag("option_disable_chunk_cache"),
    m2: flag("option_m2", true),
    extremes: flag("option_extremes", true),
    shapeAsBytes: flag("option_shape_as_bytes"),
    countAsBytes: flag("option_count_as_bytes"),
  };
}
