/**
 * A read-only zarrita store over a kerchunk reference set: keys resolve to inline content or to a
 * byte range of another object, fetched through a resolver. A key absent from the set is missing
 * (`undefined`, i.e. a chunk of fill values); a reference whose target cannot be read is an error,
 * never `undefined`, so a broken link is not mistaken for a fill-value chunk.
 */
import { open, readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve as resolvePath } from "node:path";
import { fileURLToPath } from "node:url";
import type { AbsolutePath, AsyncReadable, GetOptions, RangeQuery } from "@zarrita/storage";
import { ReferenceSetError } from "../errors.js";
import { openStore, splitUrl } from "../stores/open.js";
import type { Store } from "../stores/types.js";
import { decodeInline } from "./inline.js";
import type { Reference, References } from "./types.js";

/** Whatever can serve the bytes of a reference's url. */
export interface TargetStore {
  get(key: string, opts?: GetOptions): Promise<Uint8Array | undefined>;
  getRange(key: string, range: { offset: number; length: number }, opts?: GetOptions): Promise<Uint8Array | undefined>;
}

export type Resolver = (url: string) => { store: TargetStore; key: string };

export interface ReferenceStoreOptions {
  /**
   * Maps reference urls to a store and key. Default: local paths and file:// urls through node:fs,
   * every other url through the store layer's `openStore` (one store per bucket/directory).
   */
  resolver?: Resolver;
  /** Directory that relative local paths are resolved against (default: the working directory). */
  baseDir?: string;
}

/** Validates a parsed reference set (version 1, or the flat version-0 mapping). */
export function parseReferences(input: string | unknown): References {
  let value: unknown = input;
  if (typeof input === "string") {
    try {
      value = JSON.parse(input);
    } catch (cause) {
      throw new ReferenceSetError("not valid JSON", undefined, undefined, { cause });
    }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ReferenceSetError("expected a JSON object");
  }
  const obj = value as Record<string, unknown>;
  if (!("version" in obj)) return { version: 1, refs: checkRefs(obj) };
  if (obj.version !== 1) throw new ReferenceSetError(`unsupported version ${JSON.stringify(obj.version)}`);
  if (typeof obj.refs !== "object" || obj.refs === null || Array.isArray(obj.refs)) {
    throw new ReferenceSetError('"refs" must be an object');
  }
  const templates = obj.templates as Record<string, string> | undefined;
  if (templates !== undefined && (typeof templates !== "object" || Object.values(templates).some((t) => typeof t !== "string"))) {
    throw new ReferenceSetError('"templates" must map names to strings');
  }
  if (obj.gen !== undefined && (!Array.isArray(obj.gen) || obj.gen.length > 0)) {
    throw new ReferenceSetError('"gen" is not supported yet; expand it with kerchunk first');
  }
  return { version: 1, refs: checkRefs(obj.refs as Record<string, unknown>), templates };
}

function checkRefs(refs: Record<string, unknown>): Record<string, Reference> {
  for (const [key, v] of Object.entries(refs)) {
    if (typeof v === "string") continue;
    if (Array.isArray(v) && v.length === 1 && typeof v[0] === "string") continue;
    if (
      Array.isArray(v) &&
      v.length === 3 &&
      typeof v[0] === "string" &&
      Number.isSafeInteger(v[1]) &&
      Number.isSafeInteger(v[2]) &&
      v[1] >= 0 &&
      v[2] >= 0
    ) {
      continue;
    }
    // Inline JSON objects (kerchunk writes .zarray as an object in some versions): keep as text.
    if (typeof v === "object" && v !== null && !Array.isArray(v) && key.split("/").pop()!.startsWith(".z")) {
      refs[key] = JSON.stringify(v);
      continue;
    }
    throw new ReferenceSetError(`expected a string, [url] or [url, offset, length], got ${JSON.stringify(v)}`, key);
  }
  return refs as Record<string, Reference>;
}

export class ReferenceStore implements AsyncReadable {
  private readonly resolver: Resolver;
  private readonly ownResolver?: { close(): Promise<void> };

  constructor(
    readonly references: References,
    options: ReferenceStoreOptions = {},
  ) {
    if (options.resolver) {
      this.resolver = options.resolver;
    } else {
      const own = localResolver(options.baseDir);
      this.resolver = own;
      this.ownResolver = own;
    }
  }

  /** Releases stores the default resolver opened (pooled connections); a given resolver is the caller's. */
  async close(): Promise<void> {
    await this.ownResolver?.close();
  }

  /** Reads a reference JSON file from the local disk; relative urls in it are relative to its directory. */
  static async fromFile(path: string, options: ReferenceStoreOptions = {}): Promise<ReferenceStore> {
    const text = await readFile(path, "utf8");
    return new ReferenceStore(parseReferences(text), { baseDir: dirname(resolvePath(path)), ...options });
  }

  async get(key: AbsolutePath, opts?: GetOptions): Promise<Uint8Array | undefined> {
    return this.read(key, undefined, opts);
  }

  async getRange(key: AbsolutePath, range: RangeQuery, opts?: GetOptions): Promise<Uint8Array | undefined> {
    return this.read(key, range, opts);
  }

  private async read(key: string, range: RangeQuery | undefined, opts?: GetOptions): Promise<Uint8Array | undefined> {
    const k = key.replace(/^\/+/, "");
    const ref = this.references.refs[k];
    if (ref === undefined) return undefined;
    if (typeof ref === "string") return slice(decodeInline(ref, k), range);
    const url = this.expand(ref[0], k);
    let target: { store: TargetStore; key: string };
    try {
      target = this.resolver(url);
    } catch (cause) {
      throw new ReferenceSetError(`cannot resolve url: ${(cause as Error).message}`, k, url, { cause });
    }
    let bytes: Uint8Array | undefined;
    let wanted: number | undefined;
    try {
      if (ref.length === 1) {
        bytes = slice((await target.store.get(target.key, opts)) ?? missing(k, url), range);
      } else {
        const [, offset, length] = ref;
        const r = clip(length, range);
        wanted = r.length;
        bytes = r.length === 0 ? new Uint8Array(0) : await target.store.getRange(target.key, { offset: offset + r.offset, length: r.length }, opts);
      }
    } catch (cause) {
      if (cause instanceof ReferenceSetError) throw cause;
      throw new ReferenceSetError(`target unreachable: ${(cause as Error).message}`, k, url, { cause });
    }
    if (bytes === undefined) missing(k, url);
    if (wanted !== undefined && bytes.length !== wanted) {
      throw new ReferenceSetError(`target too short: got ${bytes.length} of ${wanted} bytes`, k, url);
    }
    return bytes;
  }

  private expand(url: string, key: string): string {
    const templates = this.references.templates;
    if (!templates || !url.includes("{{")) return url;
    return url.replace(/\{\{\s*([^}\s]+)\s*\}\}/g, (_, name: string) => {
      const t = templates[name];
      if (t === undefined) throw new ReferenceSetError(`unknown template {{${name}}}`, key, url);
      return t;
    });
  }
}

function missing(key: string, url: string): never {
  throw new ReferenceSetError("target object does not exist", key, url);
}

function clip(length: number, range: RangeQuery | undefined): { offset: number; length: number } {
  if (range === undefined) return { offset: 0, length };
  if ("suffixLength" in range) {
    const n = Math.min(range.suffixLength, length);
    return { offset: length - n, length: n };
  }
  const offset = Math.min(range.offset, length);
  return { offset, length: Math.min(range.length, length - offset) };
}

function slice(bytes: Uint8Array, range: RangeQuery | undefined): Uint8Array {
  const r = clip(bytes.length, range);
  return bytes.subarray(r.offset, r.offset + r.length);
}

/**
 * Local paths and file:// urls through node:fs; other urls through `openStore`, one store per
 * bucket or directory, released by `close()`.
 */
export function localResolver(baseDir?: string): Resolver & { close(): Promise<void> } {
  const store = new LocalFileTarget();
  const remote = new Map<string, Store>();
  const resolver = (url: string) => {
    if (url.startsWith("file://")) return { store, key: fileURLToPath(url) };
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
      const { storeUrl, key } = splitUrl(url);
      let target = remote.get(storeUrl);
      if (!target) remote.set(storeUrl, (target = openStore(storeUrl)));
      return { store: target, key };
    }
    return { store, key: isAbsolute(url) || baseDir === undefined ? resolvePath(url) : resolvePath(baseDir, url) };
  };
  return Object.assign(resolver, {
    async close() {
      const stores = [...remote.values()];
      remote.clear();
      await Promise.all(stores.map((s) => (s as Store & { close?: () => Promise<void> }).close?.()));
    },
  });
}

class LocalFileTarget implements TargetStore {
  async get(path: string): Promise<Uint8Array | undefined> {
    try {
      return new Uint8Array(await readFile(path));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
  }

  async getRange(path: string, range: { offset: number; length: number }): Promise<Uint8Array | undefined> {
    let handle;
    try {
      handle = await open(path, "r");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
    try {
      const out = new Uint8Array(range.length);
      let done = 0;
      while (done < range.length) {
        const { bytesRead } = await handle.read(out, done, range.length - done, range.offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return out.subarray(0, done);
    } finally {
      await handle.close();
    }
  }
}
