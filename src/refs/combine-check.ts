/**
 * Compatibility rules for combining: what must agree between inputs for an array to be concatenated
 * (everything but its length along the dimension) or taken once (everything, values included), and
 * which attribute differences are only noted.
 */
import { ReferenceSetError } from "../errors.js";
import type { ArrayReader } from "./combine-coords.js";
import type { InputArray, ParsedInput } from "./combine-inputs.js";

/** Attributes that change what the stored numbers mean: inputs that disagree cannot share one array. */
const MEANING = ["_FillValue", "missing_value", "scale_factor", "add_offset", "units", "calendar", "_Unsigned"];

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function mismatch(input: ParsedInput, path: string, what: string, got: unknown, want: unknown, ref: ParsedInput): ReferenceSetError {
  return new ReferenceSetError(
    `${input.name}: ${what} ${JSON.stringify(got)} differs from ${JSON.stringify(want)} in ${ref.name}`,
    `${path}/.zarray`,
  );
}

/** Everything but the length along `axis` (undefined: a new dimension) must match the reference input. */
export function checkStackable(array: InputArray, like: InputArray, axis: number | undefined, input: ParsedInput, ref: ParsedInput): void {
  const path = array.path;
  if (!same(array.dims, like.dims)) throw mismatch(input, path, "dimensions", array.dims, like.dims, ref);
  if (array.zarray.shape.length !== like.zarray.shape.length) {
    throw mismatch(input, path, "rank", array.zarray.shape.length, like.zarray.shape.length, ref);
  }
  array.zarray.shape.forEach((n, i) => {
    if (i !== axis && n !== like.zarray.shape[i]) throw mismatch(input, path, `shape (axis ${i})`, n, like.zarray.shape[i], ref);
  });
  if (!same(array.zarray.chunks, like.zarray.chunks)) throw mismatch(input, path, "chunk shape", array.zarray.chunks, like.zarray.chunks, ref);
  checkEncoding(array, like, input, ref);
  for (const name of MEANING) {
    if (!same(array.attrs[name], like.attrs[name])) {
      throw new ReferenceSetError(
        `${input.name}: attribute "${name}" ${JSON.stringify(array.attrs[name])} differs from ${JSON.stringify(like.attrs[name])} in ${ref.name}; the values would not mean the same thing`,
        `${path}/.zattrs`,
      );
    }
  }
}

function checkEncoding(array: InputArray, like: InputArray, input: ParsedInput, ref: ParsedInput): void {
  const a = array.zarray;
  const b = like.zarray;
  if (a.dtype !== b.dtype) throw mismatch(input, array.path, "dtype", a.dtype, b.dtype, ref);
  if (!same(a.fill_value, b.fill_value)) throw mismatch(input, array.path, "fill value", a.fill_value, b.fill_value, ref);
  if (!same(a.compressor, b.compressor)) throw mismatch(input, array.path, "compressor", a.compressor, b.compressor, ref);
  if (!same(a.filters, b.filters)) throw mismatch(input, array.path, "codecs (filters)", a.filters, b.filters, ref);
  if (a.order !== b.order) throw mismatch(input, array.path, "order", a.order, b.order, ref);
  if ((a.dimension_separator ?? ".") !== (b.dimension_separator ?? ".")) {
    throw mismatch(input, array.path, "dimension separator", a.dimension_separator, b.dimension_separator, ref);
  }
}

/**
 * An array taken once must be the same in every input: same metadata, and the same references or,
 * failing that, the same decoded values (the same coordinates stored in different files).
 */
export async function checkIdentical(
  array: InputArray,
  like: InputArray,
  input: ParsedInput,
  ref: ParsedInput,
  reader: ArrayReader,
  cache: Map<string, Uint8Array>,
): Promise<void> {
  const path = array.path;
  if (!same(array.dims, like.dims)) throw mismatch(input, path, "dimensions", array.dims, like.dims, ref);
  if (!same(array.zarray.shape, like.zarray.shape)) throw mismatch(input, path, "shape", array.zarray.shape, like.zarray.shape, ref);
  // Codecs and chunking may differ (the first input's references are kept); what the values are may not.
  if (array.zarray.dtype !== like.zarray.dtype) throw mismatch(input, path, "dtype", array.zarray.dtype, like.zarray.dtype, ref);
  if (!same(array.zarray.fill_value, like.zarray.fill_value)) {
    throw mismatch(input, path, "fill value", array.zarray.fill_value, like.zarray.fill_value, ref);
  }
  if (sameChunks(array.chunks, like.chunks) && same(array.zarray, like.zarray)) return;
  let want = cache.get(path);
  if (!want) cache.set(path, (want = (await reader.read(ref, path)).bytes));
  const got = (await reader.read(input, path)).bytes;
  if (got.length !== want.length || !got.every((b, i) => b === want[i])) {
    throw new ReferenceSetError(
      `${input.name}: values differ from ${ref.name}, but the array does not have the concatenation dimension so it can only be taken once; ` +
        "drop it from the inputs, or concatenate along a dimension it has",
      path,
    );
  }
}

function sameChunks(a: Map<string, unknown>, b: Map<string, unknown>): boolean {
  if (a.size !== b.size) return false;
  for (const [key, value] of a) if (!same(value, b.get(key))) return false;
  return true;
}

/** Attribute names whose values differ between `attrs` and `like` (kept from `like`). */
export function differingAttributes(attrs: Record<string, unknown>, like: Record<string, unknown>): string[] {
  const names = new Set([...Object.keys(attrs), ...Object.keys(like)]);
  return [...names].filter((n) => !same(attrs[n], like[n]));
}

/**
 * Chunk index offsets along the dimension: every input but the last must fill whole chunks, since
 * the combined array has one regular chunk grid.
 */
export function chunkOffsets(path: string, chunk: number, lengths: readonly number[], names: readonly string[]): number[] {
  const offsets: number[] = [];
  let at = 0;
  lengths.forEach((n, i) => {
    if (i < lengths.length - 1 && n % chunk !== 0) {
      throw new ReferenceSetError(
        `${names[i]}: ${n} steps along the concatenation dimension is not a multiple of the chunk size ${chunk}; ` +
          "only the last input may end in a partial chunk (rechunk the data, or make this input the last)",
        path,
      );
    }
    offsets.push(at);
    at += Math.ceil(n / chunk);
  });
  return offsets;
}
