/**
 * One input of a combination, taken apart: its arrays (metadata + chunk references by chunk
 * index) and its group metadata. Templates are expanded here so inputs with different templates
 * can be merged into one set without a template table.
 */
import { ReferenceSetError } from "../errors.js";
import type { Reference, References } from "./types.js";

export interface CombineInput {
  refs: References;
  /** Where the set came from (its JSON file, or the data file); used in messages and by url patterns. */
  url?: string;
  /** How messages name the input (default: its url). */
  name?: string;
}

/** The parts of `.zarray` that combining reads; the original text is kept to write back exactly. */
export interface ZarrayFields {
  shape: number[];
  chunks: number[];
  dtype: string;
  fill_value: unknown;
  compressor: unknown;
  filters: unknown;
  order: string;
  dimension_separator?: string;
}

export interface InputArray {
  path: string;
  zarrayText: string;
  zarray: ZarrayFields;
  attrs: Record<string, unknown>;
  /** `_ARRAY_DIMENSIONS`, when the set has them (netCDF / xarray). */
  dims: string[] | undefined;
  /** Chunk references by chunk index (the key after `path/`), as written in the set. */
  chunks: Map<string, Reference>;
}

export interface ParsedInput {
  /** Position in the list the caller gave. */
  index: number;
  /** How messages name this input: its url, else "input N". */
  name: string;
  url: string | undefined;
  references: References;
  arrays: Map<string, InputArray>;
  /** `.zgroup` / `.zattrs` keys of groups (root included), and anything else outside arrays. */
  other: Map<string, Reference>;
}

export function normaliseInputs(list: readonly (References | CombineInput)[]): CombineInput[] {
  return list.map((item) => ("version" in item ? { refs: item } : item));
}

export function parseInput(input: CombineInput, index: number): ParsedInput {
  const url = input.url ?? firstTargetUrl(input.refs);
  const name = input.name ?? input.url ?? `input ${index}${url ? ` (${url})` : ""}`;
  const refs = expandTemplates(input.refs, name);
  const arrays = new Map<string, InputArray>();
  for (const [key, value] of Object.entries(refs)) {
    if (!key.endsWith(".zarray") || (key !== ".zarray" && !key.endsWith("/.zarray"))) continue;
    const path = key.slice(0, -".zarray".length).replace(/\/$/, "");
    arrays.set(path, parseArray(path, value, refs, name));
  }
  const other = new Map<string, Reference>();
  for (const [key, value] of Object.entries(refs)) {
    const owner = owningArray(key, arrays);
    if (owner === undefined) other.set(key, value);
    else {
      const leaf = owner.path ? key.slice(owner.path.length + 1) : key;
      if (leaf !== ".zarray" && leaf !== ".zattrs") owner.chunks.set(leaf, value);
    }
  }
  return { index, name, url, references: { version: 1, refs }, arrays, other };
}

/** The array a key belongs to: the shortest array path that prefixes it ("/"-separated chunk keys included). */
function owningArray(key: string, arrays: Map<string, InputArray>): InputArray | undefined {
  if (arrays.has("")) return arrays.get("");
  for (let slash = key.indexOf("/"); slash >= 0; slash = key.indexOf("/", slash + 1)) {
    const array = arrays.get(key.slice(0, slash));
    if (array) return array;
  }
  return undefined;
}

function parseArray(path: string, value: Reference, refs: Record<string, Reference>, input: string): InputArray {
  const key = path ? `${path}/.zarray` : ".zarray";
  const zarrayText = metadataText(value, key, input);
  const zarray = parseJsonObject(zarrayText, key, input) as unknown as ZarrayFields;
  const intList = (v: unknown) => Array.isArray(v) && v.every((n) => Number.isSafeInteger(n) && n >= 0);
  if (!intList(zarray.shape) || !intList(zarray.chunks) || zarray.shape.length !== zarray.chunks.length) {
    throw new ReferenceSetError(`${input}: .zarray needs "shape" and "chunks" of equal length`, key);
  }
  if (typeof zarray.dtype !== "string") throw new ReferenceSetError(`${input}: .zarray has no dtype`, key);
  const attrsKey = path ? `${path}/.zattrs` : ".zattrs";
  const attrsRef = refs[attrsKey];
  const attrs = attrsRef === undefined ? {} : parseJsonObject(metadataText(attrsRef, attrsKey, input), attrsKey, input);
  const dimsValue = attrs._ARRAY_DIMENSIONS;
  let dims: string[] | undefined;
  if (dimsValue !== undefined) {
    if (!Array.isArray(dimsValue) || dimsValue.length !== zarray.shape.length || dimsValue.some((d) => typeof d !== "string")) {
      throw new ReferenceSetError(`${input}: _ARRAY_DIMENSIONS does not match the array's rank`, attrsKey);
    }
    dims = dimsValue as string[];
  }
  return { path, zarrayText, zarray, attrs, dims, chunks: new Map() };
}

/** Metadata must be inline text; a metadata key pointing at bytes elsewhere is not something we fetch. */
export function metadataText(value: Reference, key: string, input: string): string {
  if (typeof value !== "string") throw new ReferenceSetError(`${input}: metadata must be inline JSON`, key);
  if (value.startsWith("base64:")) return Buffer.from(value.slice(7), "base64").toString("utf8");
  return value;
}

export function parseJsonObject(text: string, key: string, input: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new ReferenceSetError(`${input}: metadata is not valid JSON`, key, undefined, { cause });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ReferenceSetError(`${input}: metadata must be a JSON object`, key);
  }
  return value as Record<string, unknown>;
}

function expandTemplates(references: References, input: string): Record<string, Reference> {
  const templates = references.templates;
  if (!templates || Object.keys(templates).length === 0) return references.refs;
  const out: Record<string, Reference> = {};
  for (const [key, ref] of Object.entries(references.refs)) {
    if (typeof ref === "string" || ref[0] === null || !ref[0].includes("{{")) {
      out[key] = ref; // a null url (the set's target when it is opened) passes through as it is
      continue;
    }
    const url = ref[0].replace(/\{\{\s*([^}\s]+)\s*\}\}/g, (_, name: string) => {
      const t = templates[name];
      if (t === undefined) throw new ReferenceSetError(`${input}: unknown template {{${name}}}`, key, ref[0] ?? undefined);
      return t;
    });
    out[key] = ref.length === 1 ? [url] : [url, ref[1], ref[2]];
  }
  return out;
}

/** The data file a set points at, for naming it and for url patterns when the caller gave no url. */
function firstTargetUrl(references: References): string | undefined {
  for (const ref of Object.values(references.refs)) if (typeof ref !== "string" && ref[0]) return ref[0];
  return undefined;
}

/** Chunk index from a chunk key (`"3.0.1"`); scalars use `"0"` for their single chunk. */
export function chunkIndex(key: string, rank: number, separator: string, where: string): number[] {
  const parts = key.split(separator);
  const index = parts.map(Number);
  const expected = rank === 0 ? 1 : rank;
  if (parts.length !== expected || index.some((n) => !Number.isSafeInteger(n) || n < 0) || parts.some((p) => !/^\d+$/.test(p))) {
    throw new ReferenceSetError(`chunk key does not match the array's ${rank} dimensions`, where);
  }
  return index;
}
