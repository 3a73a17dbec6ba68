/**
 * Lazy reading of kerchunk's parquet reference layout (see parquet.ts): `.zmetadata` is read up
 * front, each `refs.<i>.parq` only when a key in it is first asked for, and a few decoded files are
 * kept (least recently used dropped first), so a set with millions of chunks costs the files a
 * reader actually touches.
 */
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { decompress as zstdDecompress } from "fzstd";
import type { Compressors } from "hyparquet";
import { loadHyparquet } from "../stores/deps-lazy.js";
import { ReferenceSetError } from "../errors.js";
import { openStore, type OpenStoreOptions } from "../stores/open.js";
import { inlineValue } from "./inline.js";
import { chunkNumber, gridOf, isMetadataKey } from "./parquet.js";
import type { Reference, References } from "./types.js";

/**
 * A reference set looked up key by key: what ReferenceStore needs, whether the set is a JSON
 * object in memory (`lookupOf`) or parquet files read on demand (`readParquetReferences`).
 */
export interface ReferenceLookup {
  /** The reference of a key, or undefined when the set has none (a missing chunk). */
  get(key: string): Promise<Reference | undefined>;
  /** Every key the set holds. */
  keys(): AsyncIterable<string>;
}

/** The lookup of an in-memory reference set (templates, if any, are left to the caller to expand). */
export function lookupOf(references: References): ReferenceLookup {
  return {
    get: async (key) => references.refs[key],
    keys: async function* () {
      yield* Object.keys(references.refs);
    },
  };
}

/** The reads the parquet reader needs: whole objects by key (undefined when missing). */
export interface KeyReader {
  get(key: string, opts?: { signal?: AbortSignal }): Promise<Uint8Array | undefined>;
}

export interface ParquetReferenceOptions {
  /** Store holding the directory; `url` is then the directory's key prefix in it ("" for its root). */
  store?: KeyReader;
  /** Store settings when `url` is opened with openStore. */
  open?: OpenStoreOptions;
  /** Decoded record files kept at once (default 4). */
  cacheSize?: number;
}

export interface ParquetReferences extends ReferenceLookup {
  readonly recordSize: number;
  /** Metadata keys (`.zgroup`, `x/.zarray`, ...) and their JSON text. */
  readonly metadata: ReadonlyMap<string, string>;
  /** Record files read so far (a file read again after eviction counts again). */
  readonly filesRead: number;
}

/** A decompressed page above this is refused before anything is allocated for it. */
const MAX_PAGE_BYTES = 64 * 1024 * 1024;

/**
 * Page decompressors beyond hyparquet's built-in snappy: kerchunk writes its files with zstd, and
 * pandas users may pick gzip or brotli. hyparquet calls them synchronously with the page's declared
 * size, which is checked first and must match what comes out.
 */
const COMPRESSORS: Compressors = {
  ZSTD: bounded("zstd", (input, n) => zstdDecompress(input, new Uint8Array(n))),
  GZIP: bounded("gzip", (input, n) => gunzipSync(input, { maxOutputLength: Math.max(n, 1) })),
  BROTLI: bounded("brotli", (input, n) => brotliDecompressSync(input, { maxOutputLength: Math.max(n, 1) })),
};

function bounded(name: string, decode: (input: Uint8Array, size: number) => Uint8Array) {
  return (input: Uint8Array, size: number): Uint8Array => {
    if (!Number.isSafeInteger(size) || size < 0 || size > MAX_PAGE_BYTES) throw new Error(`${name} page declares ${size} bytes`);
    const out = decode(input, size);
    if (out.length !== size) throw new Error(`${name} page decompressed to ${out.length} bytes, header says ${size}`);
    return out;
  };
}

/** Rows per file we accept: far above kerchunk's 100 000, low enough that one file cannot exhaust memory. */
const MAX_RECORD_SIZE = 10_000_000;

interface Record_ {
  path: (string | null)[];
  offset: bigint[];
  size: bigint[];
  raw: (Uint8Array | null)[];
}

/** Opens a parquet reference directory: reads `.zmetadata` now, record files when needed. */
export async function readParquetReferences(url: string, options: ParquetReferenceOptions = {}): Promise<ParquetReferences> {
  const store = options.store ?? openStore(url, options.open);
  const prefix = options.store ? url.replace(/^\/+|\/+$/g, "") : "";
  const where = (key: string) => (prefix ? `${prefix}/${key}` : key);
  const bytes = await store.get(where(".zmetadata"));
  if (bytes === undefined) throw new ReferenceSetError("no .zmetadata: not a parquet reference directory", ".zmetadata", url);
  const reader = new ParquetReader(url, store, where, bytes, options.cacheSize ?? 4);
  return reader;
}

class ParquetReader implements ParquetReferences {
  readonly recordSize: number;
  readonly metadata = new Map<string, string>();
  private readonly grids = new Map<string, number[]>();
  private readonly cache = new Map<string, Promise<Record_ | undefined>>();
  filesRead = 0;

  constructor(
    private readonly url: string,
    private readonly store: KeyReader,
    private readonly where: (key: string) => string,
    zmetadata: Uint8Array,
    private readonly cacheSize: number,
  ) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder().decode(zmetadata));
    } catch (cause) {
      throw new ReferenceSetError(".zmetadata is not valid JSON", ".zmetadata", url, { cause });
    }
    const { metadata, record_size: recordSize } = (parsed ?? {}) as { metadata?: unknown; record_size?: unknown };
    if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) {
      throw new ReferenceSetError('.zmetadata needs a "metadata" object', ".zmetadata", url);
    }
    if (!Number.isSafeInteger(recordSize) || (recordSize as number) < 1 || (recordSize as number) > MAX_RECORD_SIZE) {
      throw new ReferenceSetError(
        `.zmetadata "record_size" must be an integer from 1 to ${MAX_RECORD_SIZE}, got ${JSON.stringify(recordSize)}`,
        ".zmetadata",
        url,
      );
    }
    this.recordSize = recordSize as number;
    for (const [key, value] of Object.entries(metadata)) {
      this.metadata.set(key, JSON.stringify(value));
      if (key === ".zarray" || key.endsWith("/.zarray")) this.grids.set(key.slice(0, -".zarray".length).replace(/\/$/, ""), gridOf(value, key));
    }
  }

  async get(key: string): Promise<Reference | undefined> {
    const k = key.replace(/^\/+/, "");
    const meta = this.metadata.get(k);
    if (meta !== undefined) return meta;
    if (isMetadataKey(k)) return undefined;
    const slash = k.lastIndexOf("/");
    const grid = slash < 0 ? undefined : this.grids.get(k.slice(0, slash));
    if (grid === undefined) return undefined;
    const n = chunkNumber(k.slice(slash + 1), grid);
    if (n === undefined) return undefined;
    const record = await this.record(k.slice(0, slash), Math.floor(n / this.recordSize));
    return record && rowReference(record, n % this.recordSize, k, this.url);
  }

  async *keys(): AsyncIterable<string> {
    yield* this.metadata.keys();
    for (const [field, grid] of this.grids) {
      const total = grid.reduce((a, b) => a * b, 1);
      for (let record = 0; record * this.recordSize < total; record++) {
        const rows = await this.record(field, record);
        if (!rows) continue;
        for (let row = 0; row < rows.path.length; row++) {
          if (rows.path[row] === null && rows.raw[row] === null) continue;
          yield `${field}/${chunkKey(record * this.recordSize + row, grid)}`;
        }
      }
    }
  }

  /** A record file, decoded; undefined when it does not exist (all its chunks are missing). */
  private record(field: string, record: number): Promise<Record_ | undefined> {
    const key = `${field}/refs.${record}.parq`;
    const chunks = this.grids.get(field)!.reduce((a, b) => a * b, 1);
    const maxRows = Math.min(this.recordSize, chunks - record * this.recordSize);
    let pending = this.cache.get(key);
    if (pending) {
      this.cache.delete(key); // re-inserted below: most recently used last
    } else {
      pending = this.load(key, maxRows);
      pending.catch(() => this.cache.delete(key)); // a failure is not cached
    }
    this.cache.set(key, pending);
    while (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
    return pending;
  }

  private async load(key: string, maxRows: number): Promise<Record_ | undefined> {
    const bytes = await this.store.get(this.where(key));
    if (bytes === undefined) return undefined;
    this.filesRead++;
    const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    const { parquetMetadata, parquetRead } = await loadHyparquet();
    try {
      const metadata = parquetMetadata(file);
      const rows = Number(metadata.num_rows);
      // fsspec writes full records (trailing rows empty); rows past the chunk grid are never asked
      // for, so they are not kept, and the file's own row count does not size anything.
      if (!Number.isSafeInteger(rows) || rows < 0 || rows > this.recordSize) {
        throw new Error(`${metadata.num_rows} rows, but a record holds at most ${this.recordSize}`);
      }
      const kept = Math.min(rows, maxRows);
      const out: Record_ = {
        path: new Array<string | null>(kept).fill(null),
        offset: new Array<bigint>(kept).fill(0n),
        size: new Array<bigint>(kept).fill(0n),
        raw: new Array<Uint8Array | null>(kept).fill(null),
      };
      const decoder = new TextDecoder();
      await parquetRead({
        file,
        metadata,
        columns: ["path", "offset", "size", "raw"],
        utf8: false,
        compressors: COMPRESSORS,
        onChunk: ({ columnName, columnData, rowStart, rowEnd }) => {
          const end = Math.min(rowEnd, kept);
          for (let row = Math.max(rowStart, 0); row < end; row++) {
            const v: unknown = columnData[row - rowStart];
            if (columnName === "path") out.path[row] = typeof v === "string" ? v : v instanceof Uint8Array ? decoder.decode(v) : null;
            else if (columnName === "raw") out.raw[row] = v instanceof Uint8Array ? v : typeof v === "string" ? new TextEncoder().encode(v) : null;
            else if (columnName === "offset") out.offset[row] = BigInt((v as bigint | number | null) ?? 0);
            else if (columnName === "size") out.size[row] = BigInt((v as bigint | number | null) ?? 0);
          }
        },
      });
      return out;
    } catch (cause) {
      throw new ReferenceSetError(`not a readable reference parquet file: ${(cause as Error).message}`, key, this.url, { cause });
    }
  }
}

function rowReference(record: Record_, row: number, key: string, url: string): Reference | undefined {
  if (row >= record.path.length) return undefined;
  const raw = record.raw[row];
  if (raw !== null) return inlineValue(raw);
  const path = record.path[row];
  if (path === null) return undefined;
  const offset = record.offset[row];
  const size = record.size[row];
  if (offset === 0n && size === 0n) return [path];
  if (offset < 0n || size < 0n || offset > BigInt(Number.MAX_SAFE_INTEGER) || size > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ReferenceSetError(`offset ${offset} / size ${size} out of range`, key, url);
  }
  return [path, Number(offset), Number(size)];
}

/** The chunk key of C-order chunk number `n` in `grid`. */
function chunkKey(n: number, grid: readonly number[]): string {
  const index = new Array<number>(grid.length);
  for (let i = grid.length - 1; i >= 0; i--) {
    index[i] = n % grid[i];
    n = Math.floor(n / grid[i]);
  }
  return index.join(".");
}
