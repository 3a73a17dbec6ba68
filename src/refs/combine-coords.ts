/**
 * Coordinate values along the concatenation dimension: where each input's values come from
 * (its coordinate variable, a global attribute, its url, or the caller), reading arrays through
 * the reference store, and the rebuilt coordinate array written inline into the combined set.
 */
import pLimit from "p-limit";
import * as zarr from "zarrita";
import { registerCodecs } from "../codecs/registry.js";
import { ReferenceSetError } from "../errors.js";
import type { ParsedInput } from "./combine-inputs.js";
import { encodeVlenUtf8, inlineValue } from "./inline.js";
import { toJson } from "./json.js";
import { ReferenceStore, type ReferenceStoreOptions } from "./reference-store.js";
import type { Reference } from "./types.js";

/**
 * Where the values of a concatenation dimension come from:
 * - `"variable"`: the coordinate variable named like the dimension, in each input;
 * - `{ attribute }`: a root attribute of each input (one value per input);
 * - `{ pattern, from: "url" }`: the first capture group of a regular expression matched against each
 *   input's url (one value per input: a number when it reads as one, else the text);
 * - `number[]` / `string[]`: given explicitly, one per input, or (numbers) all values in input order.
 *
 * Text values (model names, say) make a variable-length string coordinate; they must be unique and
 * inputs are ordered by them as numbers are.
 */
export type CoordSource = "variable" | { attribute: string } | { pattern: RegExp | string; from: "url" } | number[] | string[];

/** One coordinate value. */
export type CoordValue = number | string;

/** A decoded array: values as numbers (for ordering) and little-endian bytes (for writing back). */
export interface DecodedArray {
  values: number[];
  bytes: Uint8Array;
  shape: number[];
}

/** Reads whole arrays of inputs through ReferenceStore + zarrita (one store per input). */
export class ArrayReader {
  private readonly stores = new Map<number, ReferenceStore>();

  constructor(private readonly options: ReferenceStoreOptions) {
    registerCodecs();
  }

  async read(input: ParsedInput, path: string): Promise<DecodedArray> {
    let store = this.stores.get(input.index);
    if (!store) this.stores.set(input.index, (store = new ReferenceStore(input.references, this.options)));
    let chunk: zarr.Chunk<zarr.DataType>;
    try {
      const array = await zarr.open.v2(zarr.root(store).resolve(path), { kind: "array" });
      chunk = await zarr.get(array);
    } catch (cause) {
      throw new ReferenceSetError(`${input.name}: cannot read variable: ${(cause as Error).message}`, path, undefined, { cause });
    }
    const data = chunk.data as unknown;
    if (!ArrayBuffer.isView(data) || data instanceof DataView) {
      throw new ReferenceSetError(`${input.name}: only numeric arrays can be compared or used as coordinates`, path);
    }
    const typed = data as unknown as ArrayLike<number | bigint> & ArrayBufferView;
    const values = Array.from(typed, (v) => Number(v));
    return { values, bytes: new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength), shape: chunk.shape };
  }
}

/** Values of `dim` for each input, in input order: one value per step of the input along `dim`. */
export async function inputCoordinates(
  inputs: readonly ParsedInput[],
  dim: string,
  source: CoordSource,
  lengths: readonly number[],
  reader: ArrayReader,
): Promise<CoordValue[][]> {
  if (Array.isArray(source)) return explicitCoordinates(source, inputs, dim, lengths);
  // Hundreds of inputs on an object store: a bounded number of coordinate reads at once.
  const limit = pLimit(16);
  return Promise.all(
    inputs.map((input, i) => limit(async () => {
      if (source === "variable") {
        const { values } = await reader.read(input, dim);
        if (values.length !== lengths[i]) {
          throw new ReferenceSetError(`${input.name}: coordinate has ${values.length} values but the dimension has ${lengths[i]}`, dim);
        }
        return values;
      }
      const value: CoordValue = "attribute" in source ? attributeValue(input, source.attribute, dim) : urlValue(input, source.pattern, dim);
      if (lengths[i] !== 1) {
        throw new ReferenceSetError(`${input.name}: one value per input, but it has ${lengths[i]} steps along "${dim}"`, dim);
      }
      return [value];
    })),
  );
}

function explicitCoordinates(values: CoordValue[], inputs: readonly ParsedInput[], dim: string, lengths: readonly number[]): CoordValue[][] {
  if (!values.every((v) => typeof v === "number" && Number.isFinite(v)) && !values.every((v) => typeof v === "string")) {
    throw new ReferenceSetError(`coordinates given for "${dim}" must be all finite numbers or all text`);
  }
  const total = lengths.reduce((a, b) => a + b, 0);
  if (values.length === inputs.length && lengths.every((n) => n === 1)) return values.map((v) => [v]);
  if (values.length !== total) {
    throw new ReferenceSetError(`${values.length} coordinates given for "${dim}", but the inputs hold ${total} steps`);
  }
  let at = 0;
  return lengths.map((n) => values.slice(at, (at += n)));
}

function attributeValue(input: ParsedInput, name: string, dim: string): CoordValue {
  const text = input.other.get(".zattrs");
  let attrs: Record<string, unknown> = {};
  if (typeof text === "string") attrs = JSON.parse(text.startsWith("base64:") ? Buffer.from(text.slice(7), "base64").toString() : text) as Record<string, unknown>;
  let value = attrs[name];
  if (Array.isArray(value) && value.length === 1) value = value[0];
  if (typeof value === "string") return asValue(value);
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new ReferenceSetError(
      `${input.name}: root attribute "${name}" is ${value === undefined ? "missing" : `not a number or text (${JSON.stringify(value)})`}; it was to give "${dim}"`,
      ".zattrs",
    );
  }
  return value;
}

/** Text that reads as a number is that number (file names carry numbers as text). */
function asValue(text: string): CoordValue {
  const n = Number(text);
  return text.trim() !== "" && Number.isFinite(n) ? n : text;
}

function urlValue(input: ParsedInput, pattern: RegExp | string, dim: string): CoordValue {
  if (input.url === undefined) throw new ReferenceSetError(`${input.name}: no url to match the pattern for "${dim}" against`);
  const match = (typeof pattern === "string" ? new RegExp(pattern) : pattern).exec(input.url);
  const text = match?.[1] ?? match?.[0];
  if (text === undefined) throw new ReferenceSetError(`${input.name}: url does not match ${String(pattern)} (for "${dim}")`);
  if (text === "") throw new ReferenceSetError(`${input.name}: ${String(pattern)} matched nothing in the url (for "${dim}")`);
  return asValue(text);
}

/**
 * The order to concatenate inputs in: ascending by their first coordinate, and the combined values
 * must be strictly increasing (overlapping or repeated steps are an error, not a silent merge).
 */
export function orderByCoordinate(coords: readonly CoordValue[][], names: readonly string[], dim: string): number[] {
  const all = coords.flat();
  if (!all.every((v) => typeof v === "number") && !all.every((v) => typeof v === "string")) {
    throw new ReferenceSetError(`"${dim}" mixes numbers and text: ${JSON.stringify(all.slice(0, 6))}`);
  }
  const compare = (a: CoordValue, b: CoordValue) => (typeof a === "number" ? a - (b as number) : a < b ? -1 : a > b ? 1 : 0);
  const first = (i: number) => coords[i][0] ?? 0;
  const order = coords.map((_, i) => i).sort((a, b) => compare(first(a), first(b)));
  let previous: { value: CoordValue; input: number } | undefined;
  for (const i of order) {
    for (const value of coords[i]) {
      if (Number.isNaN(value)) throw new ReferenceSetError(`${names[i]}: coordinate "${dim}" holds NaN`);
      if (previous && !(compare(value, previous.value) > 0)) {
        const where = previous.input === i ? `within ${names[i]}` : `between ${names[previous.input]} and ${names[i]}`;
        throw new ReferenceSetError(`"${dim}" is not strictly increasing ${where} (${previous.value} then ${value}): inputs overlap or are unsorted`);
      }
      previous = { value, input: i };
    }
  }
  return order;
}

/** Little-endian typed-array bytes for the dtypes a coordinate can have. */
const WRITERS: Record<string, (values: number[]) => ArrayBufferView> = {
  f8: (v) => Float64Array.from(v),
  f4: (v) => Float32Array.from(v),
  i8: (v) => BigInt64Array.from(v, (x) => BigInt(x)),
  u8: (v) => BigUint64Array.from(v, (x) => BigInt(x)),
  i4: (v) => Int32Array.from(v),
  u4: (v) => Uint32Array.from(v),
  i2: (v) => Int16Array.from(v),
  u2: (v) => Uint16Array.from(v),
  i1: (v) => Int8Array.from(v),
  u1: (v) => Uint8Array.from(v),
};

/**
 * The coordinate array of the combined set, one inline chunk. `like` (the first input's coordinate
 * variable) gives dtype, fill value and attributes; without it the dtype is int64 when every value
 * is an integer, else float64.
 */
export function coordinateReferences(
  dim: string,
  values: CoordValue[],
  like?: { zarray: { dtype: string; fill_value: unknown }; attrs: Record<string, unknown> },
): Record<string, Reference> {
  if (values.some((v) => typeof v === "string")) return textCoordinate(dim, values.map(String), like?.attrs);
  return numericCoordinate(dim, values as number[], like);
}

function numericCoordinate(
  dim: string,
  values: number[],
  like?: { zarray: { dtype: string; fill_value: unknown }; attrs: Record<string, unknown> },
): Record<string, Reference> {
  const kind = like ? like.zarray.dtype.slice(1) : values.every((v) => Number.isSafeInteger(v)) ? "i8" : "f8";
  const write = WRITERS[kind];
  if (!write) throw new ReferenceSetError(`coordinate dtype ${like?.zarray.dtype} cannot be rebuilt`, `${dim}/.zarray`);
  if (!kind.startsWith("f") && !values.every((v) => Number.isSafeInteger(v))) {
    const bad = values.find((v) => !Number.isSafeInteger(v));
    throw new ReferenceSetError(`coordinate value ${bad} does not fit the integer dtype ${like?.zarray.dtype ?? kind}`, `${dim}/.zarray`);
  }
  const data = write(values);
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const dtype = kind.endsWith("1") ? `|${kind}` : `<${kind}`;
  const zarray = {
    zarr_format: 2,
    shape: [values.length],
    chunks: [Math.max(values.length, 1)],
    dtype,
    compressor: null,
    fill_value: like ? like.zarray.fill_value : null,
    filters: null,
    order: "C",
    dimension_separator: ".",
  };
  const attrs = like ? { ...like.attrs, _ARRAY_DIMENSIONS: [dim] } : { _ARRAY_DIMENSIONS: [dim] };
  return {
    [`${dim}/.zarray`]: toJson(zarray),
    [`${dim}/.zattrs`]: toJson(attrs),
    ...(values.length > 0 && { [`${dim}/0`]: inlineValue(bytes) }),
  };
}

/** A text coordinate: zarr v2 object dtype with numcodecs' VLenUTF8, inline (as the builder writes vlen strings). */
function textCoordinate(dim: string, values: string[], attrs?: Record<string, unknown>): Record<string, Reference> {
  const zarray = {
    zarr_format: 2,
    shape: [values.length],
    chunks: [Math.max(values.length, 1)],
    dtype: "|O",
    compressor: null,
    fill_value: null,
    filters: [{ id: "vlen-utf8" }],
    order: "C",
    dimension_separator: ".",
  };
  return {
    [`${dim}/.zarray`]: toJson(zarray),
    [`${dim}/.zattrs`]: toJson({ ...attrs, _ARRAY_DIMENSIONS: [dim] }),
    [`${dim}/0`]: inlineValue(encodeVlenUtf8(values)),
  };
}
