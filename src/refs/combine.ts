/**
 * Combining reference sets into one (what kerchunk's MultiZarrToZarr does, for the common case):
 * many files that each hold a slice along one dimension — an existing one such as `time`, or a new
 * one such as an ensemble member — become one virtual dataset. Several dimensions at once are
 * combined one after the other (combine-nested.ts); the rules below are those of one dimension.
 *
 * - Arrays with the dimension are concatenated: chunk keys are renumbered by the cumulative chunk
 *   counts of the inputs before them, so no chunk is read or rewritten. That needs every input but
 *   the last to fill whole chunks along the dimension (kerchunk has the same restriction).
 * - Arrays without it are taken once, after checking every input holds the same (same references or
 *   the same decoded values).
 * - The coordinate array of the dimension is rebuilt inline from every input's values, and inputs
 *   are ordered by them.
 * - Mismatches that make the result wrong (chunk shape, dtype, fill value, codecs, dimensions,
 *   attributes that change what numbers mean) are errors naming the input and the array; other
 *   attribute differences keep the first input's value and are reported as notes.
 */
import { ReferenceSetError } from "../errors.js";
import { differingAttributes, chunkOffsets, checkIdentical, checkStackable } from "./combine-check.js";
import {
  ArrayReader,
  coordinateReferences,
  inputCoordinates,
  orderByCoordinate,
  type CoordSource,
  type CoordValue,
} from "./combine-coords.js";
import {
  chunkIndex,
  metadataText,
  normaliseInputs,
  parseInput,
  parseJsonObject,
  type CombineInput,
  type InputArray,
  type ParsedInput,
} from "./combine-inputs.js";
import { combineNested } from "./combine-nested.js";
import { convertTimes, harmoniseUnits } from "./combine-time.js";
import { toJson } from "./json.js";
import type { ReferenceStoreOptions } from "./reference-store.js";
import type { Reference, References } from "./types.js";

export type { CombineInput } from "./combine-inputs.js";
export type { CoordSource, CoordValue } from "./combine-coords.js";

export interface CombineOptions extends ReferenceStoreOptions {
  /**
   * Dimensions to concatenate along, outermost first: with several, inputs are grouped by their
   * value along the first and each group is combined along the rest (see combine-nested.ts).
   */
  concatDims: string[];
  /** Arrays to take once (checked identical), e.g. `["lat", "lon"]`; needed for new dimensions. */
  identicalDims?: string[];
  /** Where each concatenation dimension's values come from (default: its coordinate variable). */
  coords?: Record<string, CoordSource>;
}

export interface CombineResult {
  references: References;
  /** Differences that were resolved by keeping the first input's value (attributes, dropped keys). */
  notes: string[];
}

/** Combines reference sets along one dimension (or several); see the module comment for the rules. */
export async function combineReferences(list: readonly (References | CombineInput)[], options: CombineOptions): Promise<References> {
  return (await combineReferencesWithNotes(list, options)).references;
}

export async function combineReferencesWithNotes(
  list: readonly (References | CombineInput)[],
  options: CombineOptions,
): Promise<CombineResult> {
  if (list.length === 0) throw new ReferenceSetError("nothing to combine: no inputs");
  if (options.concatDims.length === 0) throw new ReferenceSetError("no concatenation dimension given");
  if (options.concatDims.length > 1) return combineNested(list, options, combineReferencesWithNotes);
  const dim = options.concatDims[0];
  const given = normaliseInputs(list).map((input, i) => parseInput(input, i));
  const reader = new ArrayReader({ resolver: options.resolver, baseDir: options.baseDir });
  const identical = new Set(options.identicalDims ?? []);
  const first = given[0];
  checkSameArrays(given);

  const isNew = ![...first.arrays.values()].some((a) => a.dims?.includes(dim));
  const coordinate = first.arrays.get(dim);
  const stacked = [...first.arrays.values()].filter((a) => a.path !== dim && isStacked(a, dim, isNew, identical));
  const lengths = given.map((input) => inputLength(input, dim, isNew, stacked));

  const source = options.coords?.[dim] ?? (coordinate ? "variable" : undefined);
  let order = given.map((_, i) => i);
  let values: CoordValue[] | undefined;
  if (source !== undefined) {
    let coords = await inputCoordinates(given, dim, source, lengths, reader);
    if (source === "variable") coords = harmoniseUnits(given, dim, coords as number[][]);
    order = orderByCoordinate(coords, given.map((g) => g.name), dim);
    values = order.flatMap((i) => coords[i]);
  }
  const inputs = order.map((i) => given[i]);
  const ref = inputs[0];
  if (source === "variable" && values !== undefined && ref !== first) {
    // The combined coordinate keeps the (new) first input's attributes, so its units too.
    const units = (a: ParsedInput) => a.arrays.get(dim)?.attrs;
    values = convertTimes(values as number[], units(first)?.units, units(ref)?.units, units(ref)?.calendar) ?? values;
  }
  const names = inputs.map((i) => i.name);
  const notes: string[] = [];
  const out: Record<string, Reference> = {};

  for (const [key, value] of ref.other) {
    if (key === ".zmetadata" || key.endsWith("/.zmetadata")) {
      notes.push(`${key}: consolidated metadata dropped (it described one input)`);
      continue;
    }
    out[key] = value;
    if (key === ".zattrs" || key.endsWith("/.zattrs")) noteAttributes(key, inputs, (input) => input.other.get(key), notes);
  }
  if (isNew && first.arrays.size > 0 && out[".zgroup"] === undefined) out[".zgroup"] = toJson({ zarr_format: 2 });

  const cache = new Map<string, Uint8Array>();
  for (const like of ref.arrays.values()) {
    const path = like.path;
    if (path === dim && values !== undefined) {
      checkCoordinateAttributes(inputs, dim);
      Object.assign(out, coordinateReferences(dim, values, like));
      continue;
    }
    if (stacked.some((s) => s.path === path)) {
      Object.assign(out, stackArray(path, inputs, order.map((i) => lengths[i]), dim, isNew, names));
    } else {
      if (identical.has(path) && like.dims?.includes(dim)) {
        throw new ReferenceSetError(`"${path}" was named as identical but has the concatenation dimension "${dim}"`, path);
      }
      for (const input of inputs.slice(1)) await checkIdentical(input.arrays.get(path)!, like, input, ref, reader, cache);
      copyArray(like, out);
    }
    noteAttributes(path ? `${path}/.zattrs` : ".zattrs", inputs, (input) => attrsWithoutDims(input.arrays.get(path)!), notes);
  }
  if (isNew && values !== undefined && !ref.arrays.has(dim)) Object.assign(out, coordinateReferences(dim, values));
  return { references: { version: 1, refs: out }, notes };
}

/** Whether an array is concatenated: it has the dimension, or (new dimension) is not a coordinate or named identical. */
function isStacked(array: InputArray, dim: string, isNew: boolean, identical: Set<string>): boolean {
  if (!isNew) return array.dims?.includes(dim) ?? false;
  if (identical.has(array.path)) return false;
  const leaf = array.path.split("/").pop();
  const isDimensionCoordinate = array.dims?.length === 1 && array.dims[0] === leaf;
  return !isDimensionCoordinate;
}

function checkSameArrays(inputs: readonly ParsedInput[]): void {
  const want = [...inputs[0].arrays.keys()];
  for (const input of inputs.slice(1)) {
    const missing = want.find((p) => !input.arrays.has(p));
    if (missing !== undefined) throw new ReferenceSetError(`${input.name}: has no array "${missing}" (${inputs[0].name} does)`, missing);
    const extra = [...input.arrays.keys()].find((p) => !inputs[0].arrays.has(p));
    if (extra !== undefined) throw new ReferenceSetError(`${input.name}: has an array "${extra}" that ${inputs[0].name} does not`, extra);
  }
}

/** The input's length along the dimension, the same for every array that has it. */
function inputLength(input: ParsedInput, dim: string, isNew: boolean, stacked: readonly InputArray[]): number {
  if (isNew) return 1;
  let length: number | undefined;
  let from = "";
  for (const array of input.arrays.values()) {
    const axis = array.dims?.indexOf(dim) ?? -1;
    if (axis < 0) continue;
    const n = array.zarray.shape[axis];
    if (length !== undefined && n !== length) {
      throw new ReferenceSetError(`${input.name}: "${array.path}" has ${n} steps along "${dim}" but "${from}" has ${length}`, array.path);
    }
    length = n;
    from = array.path;
  }
  if (length === undefined) {
    const hint = stacked.length === 0 ? "" : ` (but "${stacked[0].path}" does in another input)`;
    throw new ReferenceSetError(`${input.name}: no array has the dimension "${dim}"${hint}`);
  }
  return length;
}

/** One array concatenated from every input: shape updated, chunk keys renumbered. */
function stackArray(
  path: string,
  inputs: readonly ParsedInput[],
  lengths: readonly number[],
  dim: string,
  isNew: boolean,
  names: readonly string[],
): Record<string, Reference> {
  const ref = inputs[0];
  const like = ref.arrays.get(path)!;
  const axis = isNew ? undefined : like.dims!.indexOf(dim);
  for (const input of inputs.slice(1)) checkStackable(input.arrays.get(path)!, like, axis, input, ref);
  const separator = like.zarray.dimension_separator ?? ".";
  const total = lengths.reduce((a, b) => a + b, 0);
  const shape = isNew ? [inputs.length, ...like.zarray.shape] : like.zarray.shape.map((n, i) => (i === axis ? total : n));
  const chunks = isNew ? [1, ...like.zarray.chunks] : like.zarray.chunks;
  const offsets = isNew ? inputs.map((_, i) => i) : chunkOffsets(path, like.zarray.chunks[axis!], lengths, names);
  const prefix = path ? `${path}/` : "";
  const out: Record<string, Reference> = {
    [`${prefix}.zarray`]: withShape(like.zarrayText, shape, chunks, `${prefix}.zarray`),
  };
  const attrs = isNew && like.dims ? { ...like.attrs, _ARRAY_DIMENSIONS: [dim, ...like.dims] } : like.attrs;
  if (Object.keys(attrs).length > 0) out[`${prefix}.zattrs`] = isNew ? toJson(attrs) : ref.references.refs[`${prefix}.zattrs`];
  const rank = like.zarray.shape.length;
  inputs.forEach((input, i) => {
    for (const [key, value] of input.arrays.get(path)!.chunks) {
      const index = chunkIndex(key, rank, separator, `${prefix}${key}`);
      let renamed: string;
      if (isNew) renamed = rank === 0 ? `${offsets[i]}` : `${offsets[i]}${separator}${key}`;
      else renamed = index.map((n, a) => (a === axis ? n + offsets[i] : n)).join(separator);
      out[`${prefix}${renamed}`] = value;
    }
  });
  return out;
}

/** The `.zarray` text with a new shape (and chunks), edited in place so every other field stays exact. */
function withShape(text: string, shape: number[], chunks: number[], key: string): string {
  const set = (source: string, field: string, value: number[]) => {
    const pattern = new RegExp(`"${field}"\\s*:\\s*\\[[^\\]]*\\]`);
    if (!pattern.test(source)) throw new ReferenceSetError(`no "${field}" list to update`, key);
    return source.replace(pattern, `"${field}":${JSON.stringify(value)}`);
  };
  return set(set(text, "shape", shape), "chunks", chunks);
}

function copyArray(array: InputArray, out: Record<string, Reference>): void {
  const prefix = array.path ? `${array.path}/` : "";
  out[`${prefix}.zarray`] = array.zarrayText;
  if (Object.keys(array.attrs).length > 0) out[`${prefix}.zattrs`] = toJson(array.attrs);
  for (const [key, value] of array.chunks) out[`${prefix}${key}`] = value;
}

function attrsWithoutDims(array: InputArray): Record<string, unknown> {
  const { _ARRAY_DIMENSIONS: _, ...rest } = array.attrs;
  return rest;
}

/** Notes attributes that differ between inputs (the first input's value is kept). */
function noteAttributes(
  key: string,
  inputs: readonly ParsedInput[],
  attrsOf: (input: ParsedInput) => Record<string, unknown> | Reference | undefined,
  notes: string[],
): void {
  const parse = (input: ParsedInput): Record<string, unknown> => {
    const v = attrsOf(input);
    if (v === undefined) return {};
    if (typeof v === "string") return parseJsonObject(metadataText(v, key, input.name), key, input.name);
    if (Array.isArray(v)) return {};
    return v;
  };
  const like = parse(inputs[0]);
  const counts = new Map<string, number>();
  for (const input of inputs.slice(1)) {
    for (const name of differingAttributes(parse(input), like)) counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  for (const [name, n] of counts) {
    notes.push(`${key}: attribute "${name}" differs in ${n} of ${inputs.length} inputs; kept ${inputs[0].name}'s`);
  }
}

/** The coordinate's own meaning must agree, or its values cannot be put side by side. */
function checkCoordinateAttributes(inputs: readonly ParsedInput[], dim: string): void {
  const like = inputs[0].arrays.get(dim)!;
  for (const input of inputs.slice(1)) {
    const array = input.arrays.get(dim)!;
    // Units may differ (values were converted to the first input's units); the calendar may not.
    for (const name of ["calendar"]) {
      if (JSON.stringify(array.attrs[name]) !== JSON.stringify(like.attrs[name])) {
        throw new ReferenceSetError(
          `${input.name}: coordinate attribute "${name}" ${JSON.stringify(array.attrs[name])} differs from ${JSON.stringify(like.attrs[name])} in ${inputs[0].name}; ` +
            "the values cannot be combined as they are (give the values with coords)",
          `${dim}/.zattrs`,
        );
      }
    }
  }
}
