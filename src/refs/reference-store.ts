/**
 * A read-only zarrita store over a kerchunk reference set: keys resolve to inline content or to a
 * byte range of another object, fetched through a resolver. A key absent from the set is missing
 * (`undefined`, i.e. a chunk of fill values); a reference whose target cannot be read is an error,
 * never `undefined`, so a broken link is not mistaken for a fill-value chunk.
 *
 * Reads of url references go through a BatchReader: the gets zarrita fires for a selection are
 * gathered, coalesced per target object and run with bounded concurrency.
 */
import { readFile, stat } from "node:fs/promises";
import { dirname, resolve as resolvePath } from "node:path";
import type { AbsolutePath, AsyncReadable, GetOptions, RangeQuery } from "@zarrita/storage";
import { ReferenceSetError } from "../errors.js";
import type { BufferPool } from "../stores/buffer-pool.js";
import { LocalBackend } from "../stores/local.js";
import { ObjectStore } from "../stores/object-store.js";
import { BatchReader, type BatchReaderOptions, type BatchStats } from "./batch-reader.js";
import { expandGen, render } from "./gen.js";
import { decodeInline } from "./inline.js";
import type { ReferenceLookup } from "./parquet-read.js";
import { localResolver, type Resolver, type StoreResolver } from "./resolve.js";
import type { Reference, References } from "./types.js";

export { localResolver, type Resolver, type TargetStore } from "./resolve.js";

export interface ReferenceStoreOptions extends BatchReaderOptions {
  /**
   * Maps reference urls to a store and key. Default: `localResolver(baseDir)` — paths relative to
   * `baseDir`, everything else through the store layer's `openStore`, one store per bucket/directory.
   */
  resolver?: Resolver;
  /** Directory that relative local paths are resolved against (default: the working directory). */
  baseDir?: string;
  /** The url of references whose url is null or empty (fsspec's `target`). */
  target?: string;
  /** Keys not in `references.refs` are looked up here (a parquet reference set). */
  lookup?: ReferenceLookup;
}

/** zarrita's read options, plus a pool for the bytes of byte-range references (see `BatchReader.read`). */
export interface ReferenceGetOptions extends GetOptions {
  buffers?: BufferPool;
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
  if (!isObject(value)) throw new ReferenceSetError("expected a JSON object");
  if (!("version" in value)) return { version: 1, refs: checkRefs(value) };
  if (value.version !== 1) throw new ReferenceSetError(`unsupported version ${JSON.stringify(value.version)}`);
  if (!isObject(value.refs)) throw new ReferenceSetError('"refs" must be an object');
  const templates = value.templates;
  if (templates !== undefined && (!isObject(templates) || Object.values(templates).some((t) => typeof t !== "string"))) {
    throw new ReferenceSetError('"templates" must map names to strings');
  }
  if (value.gen !== undefined && !Array.isArray(value.gen)) throw new ReferenceSetError('"gen" must be a list');
  const out: References = { version: 1, refs: checkRefs(value.refs) };
  if (templates !== undefined) out.templates = templates as Record<string, string>;
  if (Array.isArray(value.gen) && value.gen.length > 0) out.gen = value.gen;
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isUrlRef(v: unknown[]): boolean {
  const url = v[0] === null || typeof v[0] === "string";
  if (v.length === 1) return url;
  const int = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
  return v.length === 3 && url && int(v[1]) && int(v[2]);
}

/**
 * A walk over the keys without copying: strings (inline content, decoded when read) and url lists
 * are checked where they are; JSON-valued entries (`.zattrs` given as an object) become their text.
 */
function checkRefs(refs: Record<string, unknown>): Record<string, Reference> {
  for (const key in refs) {
    const v = refs[key];
    if (typeof v === "string") continue;
    if (Array.isArray(v) && isUrlRef(v)) continue;
    if (isObject(v) || (Array.isArray(v) && isMetadataKey(key))) {
      refs[key] = JSON.stringify(v);
      continue;
    }
    throw new ReferenceSetError(`expected a string, a JSON object, [url] or [url, offset, length], got ${JSON.stringify(v)?.slice(0, 200)}`, key);
  }
  return refs as Record<string, Reference>;
}

function isMetadataKey(key: string): boolean {
  return /(^|\/)\.z[a-z]+$/.test(key);
}

/** A byte range of a file on this machine's disk. */
export interface LocalRange {
  path: string;
  offset: number;
  length: number;
}

export class ReferenceStore implements AsyncReadable {
  private readonly resolver: Resolver;
  private readonly ownResolver?: StoreResolver;
  private readonly batch: BatchReader;
  private readonly generated?: Map<string, Reference>;
  private readonly lookup?: ReferenceLookup;
  private readonly target?: string;
  private readonly plainFiles = new Map<string, Promise<boolean>>();

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
    this.batch = new BatchReader(options);
    this.lookup = options.lookup;
    this.target = options.target;
    if (references.gen && references.gen.length > 0) this.generated = expandGen(references.gen, references.templates);
  }

  /** Reads (chunks asked for), requests made after coalescing and bytes fetched, so far. */
  get stats(): Readonly<BatchStats> {
    return this.batch.stats;
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

  async get(key: AbsolutePath, opts?: ReferenceGetOptions): Promise<Uint8Array | undefined> {
    return this.read(key, undefined, opts);
  }

  async getRange(key: AbsolutePath, range: RangeQuery, opts?: ReferenceGetOptions): Promise<Uint8Array | undefined> {
    return this.read(key, range, opts);
  }

  /** Several keys at once, coalesced like concurrent `get`s; missing keys map to undefined. */
  async getMany(keys: Iterable<string>, opts?: GetOptions): Promise<Map<string, Uint8Array | undefined>> {
    const list = [...keys];
    const values = await Promise.all(list.map((k) => this.read(k, undefined, opts)));
    return new Map(list.map((k, i) => [k, values[i]]));
  }

  /** The reference of a key, or undefined when the set has none. */
  async reference(key: string): Promise<Reference | undefined> {
    const k = key.replace(/^\/+/, "");
    return this.generated?.get(k) ?? this.own(k) ?? this.lookup?.get(k);
  }

  /**
   * Where a byte-range reference points, with its url rendered (templates, default target) as
   * reads use it; `null` for inline and whole-object entries, `undefined` for a missing key.
   */
  async byteRange(key: string): Promise<{ url: string; offset: number; length: number } | null | undefined> {
    const ref = await this.reference(key);
    if (ref === undefined) return undefined;
    if (typeof ref === "string" || ref.length !== 3) return null;
    return { url: this.urlOf(ref[0] as string | null, key.replace(/^\/+/, "")), offset: ref[1], length: ref[2] };
  }

  /**
   * Where a byte-range reference's bytes sit on this machine's disk, for a reader that reads the
   * file itself (the threaded engine's workers, without shipping the bytes): undefined for a missing
   * key; null when the reference is inline, a whole object, or not in a plain local file, and for
   * anything `get` would refuse (it says why).
   */
  async localRange(key: string): Promise<LocalRange | null | undefined> {
    let range;
    try {
      range = await this.byteRange(key);
    } catch {
      return null;
    }
    if (!range) return range;
    let path: string;
    try {
      const { store, key: name } = this.resolver(range.url);
      if (!(store instanceof ObjectStore) || !(store.backend instanceof LocalBackend)) return null;
      path = store.backend.filePath(name);
    } catch {
      return null;
    }
    // A compressed object (a ".gz" beside a missing plain file) is the store's to decode.
    let plain = this.plainFiles.get(path);
    if (!plain) this.plainFiles.set(path, (plain = stat(path).then((s) => s.isFile(), () => false)));
    return (await plain) ? { path, offset: range.offset, length: range.length } : null;
  }

  private async read(key: string, range: RangeQuery | undefined, opts?: ReferenceGetOptions): Promise<Uint8Array | undefined> {
    const k = key.replace(/^\/+/, "");
    opts?.signal?.throwIfAborted();
    const ref = this.generated?.get(k) ?? this.own(k) ?? (await this.lookup?.get(k));
    if (ref === undefined) return undefined;
    if (typeof ref === "string") return slice(decodeInline(ref, k), range);
    const url = this.urlOf(ref[0] as string | null, k);
    let store, target;
    try {
      ({ store, key: target } = this.resolver(url));
    } catch (cause) {
      throw new ReferenceSetError(`cannot resolve url: ${(cause as Error).message}`, k, url, { cause });
    }
    try {
      if (ref.length === 1) {
        const bytes = await this.batch.read(store, target);
        return slice(bytes ?? missing(k, url), range);
      }
      const r = clip(ref[2], range);
      if (r.length === 0) return new Uint8Array(0);
      const bytes = await this.batch.read(store, target, { offset: ref[1] + r.offset, length: r.length }, opts?.buffers);
      if (bytes === undefined) missing(k, url);
      if (bytes.length !== r.length) {
        throw new ReferenceSetError(`target too short: got ${bytes.length} of ${r.length} bytes at offset ${ref[1] + r.offset}`, k, url);
      }
      return bytes;
    } catch (cause) {
      if (cause instanceof ReferenceSetError) throw cause;
      throw new ReferenceSetError(`target unreachable: ${(cause as Error).message}`, k, url, { cause });
    }
  }

  /** A key of the JSON set itself; never an inherited property ("constructor", "__proto__"). */
  private own(key: string): Reference | undefined {
    const refs = this.references.refs;
    return Object.hasOwn(refs, key) ? refs[key] : undefined;
  }

  /** The url with templates filled in; null or empty means the default target. */
  private urlOf(url: string | null, key: string): string {
    if (url === null || url === "") {
      if (this.target === undefined) throw new ReferenceSetError("reference has no url and no default target was given", key);
      return this.target;
    }
    // fsspec renders urls with jinja2 over the templates; same expression language as `gen`.
    return url.includes("{{") ? render(url, this.references.templates ?? {}, key) : url;
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
