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
      : referencesToParquet(references, options.recordSize ?? DEFAULT_RECORD_SIZE);
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
  const keys = Object.keys(references.refs).sort(compareKeys);
  const refs = Object.fromEntries(keys.map((k) => [k, references.refs[k]]));
  const out: Record<string, unknown> = { version: 1 };
  if (references.templates && Object.keys(references.templates).length > 0) out.templates = references.templates;
  if (references.gen && references.gen.length > 0) out.gen = references.gen;
  out.refs = refs;
  return toJson(out);
}

/**
 * Keys grouped by the array (or group) they belong to, its metadata first, then chunk keys by
 * chunk index compared number by number (`x/2.0` before `x/10.0`).
 */
export function compareKeys(a: string, b: string): number {
  const [ownerA, leafA] = split(a);
  const [ownerB, leafB] = split(b);
  if (ownerA !== ownerB) return ownerA < ownerB ? -1 : 1;
  const metaA = leafA.startsWith(".");
  const metaB = leafB.startsWith(".");
  if (metaA !== metaB) return metaA ? -1 : 1;
  const partsA = leafA.split(".");
  const partsB = leafB.split(".");
  for (let i = 0; i < Math.min(partsA.length, partsB.length); i++) {
    const numeric = /^\d+$/.test(partsA[i]) && /^\d+$/.test(partsB[i]);
    const diff = numeric ? Number(partsA[i]) - Number(partsB[i]) : partsA[i] < partsB[i] ? -1 : partsA[i] > partsB[i] ? 1 : 0;
    if (diff !== 0) return diff;
  }
  return partsA.length - partsB.length;
}

function split(key: string): [string, string] {
  const slash = key.lastIndexOf("/");
  return slash < 0 ? ["", key] : [key.slice(0, slash), key.slice(slash + 1)];
}
