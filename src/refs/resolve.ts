/**
 * From a reference's url to the store that serves it. Relative urls are relative to the reference
 * set's own location (a local directory, an http(s) directory, a bucket prefix), as fsspec does;
 * one store is opened per bucket, host or directory and reused for every reference into it.
 */
import { dirname, isAbsolute, resolve as resolvePath } from "node:path";
import { pathToFileURL } from "node:url";
import type { GetOptions } from "@zarrita/storage";
import { openStore, splitUrl, type OpenStoreOptions } from "../stores/open.js";
import type { Store } from "../stores/types.js";

/** Whatever can serve the bytes of a reference's url. `getRanges`, when present, serves coalesced reads. */
export interface TargetStore {
  get(key: string, opts?: GetOptions): Promise<Uint8Array | undefined>;
  getRange(key: string, range: { offset: number; length: number }, opts?: GetOptions): Promise<Uint8Array | undefined>;
  getRanges?: Store["getRanges"];
}

export type Resolver = (url: string) => { store: TargetStore; key: string };

const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * The absolute form of `url` given the location `base` of the reference set (a file or object url,
 * or a path; a trailing slash marks a directory). Absolute urls and paths are returned as they are.
 */
export function resolveUrl(url: string, base?: string): string {
  if (SCHEME.test(url) || isAbsolute(url) || base === undefined) return url;
  const scheme = SCHEME.exec(base)?.[0].toLowerCase();
  if (scheme === "http://" || scheme === "https://" || scheme === "file://") return new URL(url, base).href;
  if (scheme !== undefined) {
    // Bucket urls are taken literally (see openStore): join, then fold "." and ".." segments.
    const root = base.slice(0, base.indexOf("/", scheme.length) < 0 ? base.length : base.indexOf("/", scheme.length));
    const dir = base.slice(root.length).replace(/[^/]*$/, "");
    const parts: string[] = [];
    for (const part of (dir + url).split("/")) {
      if (part === "..") parts.pop();
      else if (part !== "." && part !== "") parts.push(part);
    }
    return `${root}/${parts.join("/")}`;
  }
  const dir = /[/\\]$/.test(base) ? base : dirname(base);
  return resolvePath(dir, url);
}

/** The base for a reference set read from a local directory (relative urls resolve inside it). */
export function directoryBase(dir: string): string {
  return pathToFileURL(resolvePath(dir)).href + "/";
}

export interface StoreResolver extends Resolver {
  /** Stores opened so far, by store url. */
  readonly stores: ReadonlyMap<string, Store>;
  /** Closes every store this resolver opened (connection pools). */
  close(): Promise<void>;
}

/**
 * Resolves reference urls through the store layer with `options` (credentials, endpoints,
 * concurrency...), one store per bucket/host/directory. `base` is where the reference set lives.
 */
export function storeResolver(options: OpenStoreOptions = {}, base?: string): StoreResolver {
  const stores = new Map<string, Store>();
  // Reference targets are read many ranges at a time and do not change under us: keep local files
  // open between chunk reads (open + fstat + close per chunk was the largest per-chunk cost).
  options = { ...options, file: { cacheHandles: 64, ...options.file } };
  const resolver = (url: string) => {
    const { storeUrl, key } = storeAndKey(resolveUrl(url, base));
    let store = stores.get(storeUrl);
    if (!store) stores.set(storeUrl, (store = openStore(storeUrl, options)));
    return { store, key };
  };
  return Object.assign(resolver, {
    stores,
    async close() {
      const opened = [...stores.values()];
      stores.clear();
      await Promise.all(opened.map((s) => (s as Store & { close?: () => Promise<void> }).close?.()));
    },
  });
}

/**
 * splitUrl, except that http(s) objects share one store per origin (splitUrl gives one per
 * directory): each HttpStore has its own connection pool, and pools per directory would add up to
 * more connections than the configured concurrency.
 */
function storeAndKey(url: string): { storeUrl: string; key: string } {
  const split = splitUrl(url); // validates (no query strings, names an object)
  if (!/^https?:\/\//i.test(url)) return split;
  const parsed = new URL(url);
  return { storeUrl: parsed.origin, key: decodeURIComponent(parsed.pathname.slice(1)) };
}

/** Kept for callers of the first ReferenceStore: local paths relative to `baseDir`, urls through the store layer. */
export function localResolver(baseDir?: string): StoreResolver {
  return storeResolver({}, baseDir === undefined ? undefined : directoryBase(baseDir));
}
