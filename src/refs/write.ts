/**
 * Writing a reference set to any store url: kerchunk version-1 JSON (compact, keys in a stable
 * order), or kerchunk's parquet directory layout for sets too large for one JSON document.
 */
import { ReferenceSetError } from "../errors.js";
import { openStore, splitUrl, type OpenStoreOptions } from "../stores/open.js";
import type { Store } from "../stores/types.js";
import { toJson } from "./json.js";
import { DEFAULT_RECORD_SIZE, referencesToParquet } from "./parquet.js";
import type { References } from "./types.js";

export interface WriteReferencesOptions extends OpenStoreOptions {
  /** `json` (default): one file at `url`; `parquet`: a directory at `url`. */
  format?: "json" | "parquet";
  /** Chunk references per parquet file (default 100 000, kerchunk's). */
  recordSize?: number;
  /**
   * Write through this store instead of opening one from `url`; `url` is then the key (json) or
   * key prefix (parquet) inside it.
   */
  store?: Store;
  signal?: AbortSignal;
}

/**
 * Writes `references` to `url`. JSON output is the set as built (inline values as they are:
 * UTF-8 text or `base64:`), with metadata keys before chunk keys and chunk keys in numeric order,
 * so the same set always gives the same bytes.
 */
export async function writeReferences(references: References, url: string, options: WriteReferencesOptions = {}): Promise<void> {
  const format = options.format ?? "json";
  if (format !== "json" && format !== "parquet") throw new ReferenceSetError(`unknown reference format "${String(format)}"`);
  const files =
    format === "json"
      ? [{ key: "", bytes: new TextEncoder().encode(referencesJson(references)) }]
      : await referencesToParquet(references, options.recordSize ?? DEFAULT_RECORD_SIZE);
  let store = options.store;
  let base: string;
  if (store) {
    base = url.replace(/^\/+|\/+$/g, "");
  } else if (format === "json") {
    const { storeUrl, key } = splitUrl(url);
    store = openStore(storeUrl, options);
    base = key;
  } else {
    store = openStore(url, options);
    base = "";
  }
  try {
    for (const file of files) {
      const key = [base, file.key].filter((k) => k !== "").join("/");
      if (key === "") throw new ReferenceSetError(`"${url}" names a store root, not a file`);
      await store.set(key, file.bytes, { signal: options.signal, contentType: file.key.endsWith(".parq") ? "application/vnd.apache.parquet" : "application/json" });
    }
  } finally {
    if (!options.store) await (store as Store & { close?: () => Promise<void> }).close?.();
  }
}

/** Version-1 JSON text of a reference set, keys in a stable order (see `compareKeys`). */
export function referencesJson(references: References): string {
  const head: Record<string, unknown> = { version: 1 };
  if (references.templates && Object.keys(references.templates).length > 0) head.templates = references.templates;
  if (references.gen && references.gen.length > 0) head.gen = references.gen;
  // Reference values are strings and safe integers, which JSON.stringify writes exactly; only the
  // head goes through toJson. Built piece by piece because sets run to millions of keys.
  const parts = sortKeys(Object.keys(references.refs)).map((k) => `${JSON.stringify(k)}:${JSON.stringify(references.refs[k])}`);
  return `${toJson(head).slice(0, -1)},"refs":{${parts.join(",")}}}`;
}

/**
 * Keys grouped by the array (or group) they belong to, its metadata first, then chunk keys by
 * chunk index compared number by number (`x/2.0` before `x/10.0`).
 */
export function compareKeys(a: string, b: string): number {
  return compareSortKeys(sortKey(a), sortKey(b));
}

interface SortKey {
  owner: string;
  meta: boolean;
  parts: (string | number)[];
}

function sortKeys(keys: string[]): string[] {
  const decorated = keys.map((key) => ({ key, sort: sortKey(key) }));
  decorated.sort((a, b) => compareSortKeys(a.sort, b.sort));
  return decorated.map((d) => d.key);
}

function sortKey(key: string): SortKey {
  const [owner, leaf] = split(key);
  return { owner, meta: leaf.startsWith("."), parts: leaf.split(".").map((p) => (/^\d+$/.test(p) ? Number(p) : p)) };
}

function compareSortKeys(a: SortKey, b: SortKey): number {
  if (a.owner !== b.owner) return a.owner < b.owner ? -1 : 1;
  if (a.meta !== b.meta) return a.meta ? -1 : 1;
  for (let i = 0; i < Math.min(a.parts.length, b.parts.length); i++) {
    const x = a.parts[i];
    const y = b.parts[i];
    if (x === y) continue;
    if (typeof x === "number" && typeof y === "number") return x - y;
    return String(x) < String(y) ? -1 : 1;
  }
  return a.parts.length - b.parts.length;
}

function split(key: string): [string, string] {
  const slash = key.lastIndexOf("/");
  return slash < 0 ? ["", key] : [key.slice(0, slash), key.slice(slash + 1)];
}
