/**
 * Byte access for the HDF5 reader: a `ByteSource` (range reads from any store) behind a block cache
 * with read-ahead, and a bounds-checked little-endian `Cursor` that raises `Hdf5FormatError` with the
 * file offset and the structure being read. Nothing here knows HDF5 structures.
 */
import { Hdf5FormatError } from "../errors.js";
import { readSpans, type SpanOptions } from "./spans.js";

// The checksum lives in its own module; re-exported so existing imports keep working.
export { lookup3, verifyChecksum } from "./checksum.js";

/** Anything that can serve byte ranges of one object: a local file, an HTTP URL, an S3 key... */
export interface ByteSource {
  /** For error messages: a URL or path. */
  readonly name: string;
  /** Reads up to `length` bytes at `offset`; may return fewer only at end of object. */
  read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array>;
  /** Total size in bytes when known (HEAD / stat), else undefined. */
  size(): Promise<number | undefined>;
  /**
   * Several ranges in one round trip (an HTTP multi-range request), when the source can; results
   * follow the order of `ranges` and may be short only at end of object.
   */
  readRanges?(ranges: readonly { offset: number; length: number }[], signal?: AbortSignal): Promise<Uint8Array[]>;
}

/** Minimal store shape the reader needs; every activestore store satisfies it. */
export interface RangeReadable {
  getRange(
    key: string,
    range: { offset: number; length: number },
    opts?: { signal?: AbortSignal },
  ): Promise<Uint8Array | undefined>;
  head?(key: string): Promise<{ size: number } | undefined>;
  /** True when `getRanges` sends many spans in one request (HTTP multi-range). */
  readonly multiRange?: boolean;
  getRanges?(
    key: string,
    ranges: readonly { offset: number; length: number }[],
    opts?: { signal?: AbortSignal; coalesceGap?: number },
  ): Promise<Uint8Array[] | undefined>;
}

/**
 * Adapts one key of a store to a `ByteSource`. A missing key is an error here: a file must exist.
 * `readRanges` only when the store does multi-range requests: elsewhere one call per span is what
 * the reader's own span scheduling already does, with its own concurrency.
 */
export function byteSourceFromStore(store: RangeReadable, key: string, name = key): ByteSource {
  const readRanges =
    store.multiRange === true && store.getRanges
      ? async (ranges: readonly { offset: number; length: number }[], signal?: AbortSignal) => {
          // The spans are already coalesced by the reader: gap 0 merges only overlaps and neighbours.
          const parts = await store.getRanges!(key, ranges, { signal, coalesceGap: 0 });
          if (parts === undefined) {
            throw new Hdf5FormatError("object not found", ranges[0]?.offset ?? 0, "file", { source: name });
          }
          return parts;
        }
      : undefined;
  return {
    name,
    ...(readRanges ? { readRanges } : {}),
    async read(offset, length, signal) {
      const bytes = await store.getRange(key, { offset, length }, { signal });
      if (bytes === undefined) {
        throw new Hdf5FormatError("object not found", offset, "file", { source: name });
      }
      return bytes;
    },
    async size() {
      return (await store.head?.(key))?.size;
    },
  };
}

const utf8 = new TextDecoder();

/** No single metadata structure is this large; a bigger request means a corrupt length field. */
const MAX_READ = 256 * 1024 * 1024;

export interface BlockCacheOptions {
  /** Size of one cached block; reads are rounded out to block boundaries. Default 64 KiB. */
  blockSize?: number;
  /** Maximum number of blocks kept (LRU). Default 256 (16 MiB at the default block size). */
  maxBlocks?: number;
  /** Blocks fetched past the last requested one on a miss, in the same request. Default 3. */
  readAhead?: number;
  /** Passed to every source read, so aborting stops requests in flight. */
  signal?: AbortSignal;
}

/**
 * Block cache over a ByteSource. Metadata in HDF5 files clusters near the start and near each
 * dataset's index, so reading whole aligned blocks (plus a few ahead) turns hundreds of tiny reads
 * into a handful of requests. `requests` and `bytesRead` are exposed so tests can count round trips.
 */
export class CachedSource {
  readonly blockSize: number;
  private readonly maxBlocks: number;
  private readonly readAhead: number;
  private readonly signal?: AbortSignal;
  private readonly blocks = new Map<number, Promise<Uint8Array>>();
  private fileSize: number | undefined;
  private sizeKnown = false;
  requests = 0;
  bytesRead = 0;

  constructor(
    readonly source: ByteSource,
    options: BlockCacheOptions = {},
  ) {
    this.blockSize = options.blockSize ?? 64 * 1024;
    this.maxBlocks = options.maxBlocks ?? 256;
    this.readAhead = options.readAhead ?? 3;
    this.signal = options.signal;
  }

  get name(): string {
    return this.source.name;
  }

  async size(): Promise<number | undefined> {
    if (!this.sizeKnown) {
      this.fileSize = await this.source.size();
      this.sizeKnown = true;
    }
    return this.fileSize;
  }

  /**
   * Exactly `length` bytes at `offset`, or an Hdf5FormatError naming `structure` if the object
   * ends first (a truncated file).
   */
  async read(offset: number, length: number, structure = "data"): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new Hdf5FormatError(`invalid read of ${length} bytes`, offset, structure, {
        source: this.name,
      });
    }
    if (length === 0) return new Uint8Array(0);
    // A lying length field must fail here, before anything of that size is allocated.
    const size = await this.size();
    if ((size !== undefined && offset + length > size) || length > MAX_READ) {
      throw new Hdf5FormatError(
        `file truncated or bad length: wanted ${length} bytes at ${offset}` +
          (size !== undefined ? `, file has ${size}` : ""),
        offset,
        structure,
        { source: this.name },
      );
    }
    const first = Math.floor(offset / this.blockSize);
    const last = Math.floor((offset + length - 1) / this.blockSize);
    const parts = await this.blocksFor(first, last);
    if (first === last) {
      // Within one block: a view, no copy (callers treat read bytes as read-only).
      const start = offset - first * this.blockSize;
      if (start + length <= parts[0].length) return parts[0].subarray(start, start + length);
    }
    const out = new Uint8Array(length);
    let written = 0;
    for (let b = first; b <= last; b++) {
      const block = parts[b - first];
      const start = b === first ? offset - b * this.blockSize : 0;
      const take = Math.min(block.length - start, length - written);
      if (take <= 0) break;
      out.set(block.subarray(start, start + take), written);
      written += take;
      if (block.length < this.blockSize) break; // end of object
    }
    if (written < length) {
      throw new Hdf5FormatError(
        `file truncated: wanted ${length} bytes, ${written} available`,
        offset,
        structure,
        { source: this.name },
      );
    }
    return out;
  }

  /**
   * Many scattered ranges (the nodes of one B-tree level) fetched past the block cache: nearby
   * ranges share a request, far ones go in parallel (or in one multi-range request when the source
   * can), and nothing is read ahead: read-ahead around nodes spread through a large file costs
   * more bytes than the nodes themselves. Results may be short at end of object.
   */
  async readSpans(ranges: readonly { offset: number; length: number }[], options: SpanOptions = {}): Promise<Uint8Array[]> {
    const size = await this.size();
    const clipped = ranges.map(({ offset, length }) => ({
      offset,
      length: Math.min(length, MAX_READ, size === undefined ? length : Math.max(0, size - offset)),
    }));
    // Ranges the block cache already holds (metadata near the start of a small file) cost nothing.
    const out = new Array<Uint8Array>(ranges.length);
    const cached: Promise<void>[] = [];
    const wanted: number[] = [];
    clipped.forEach((r, i) => {
      // Nothing to fetch past the end of the object: the caller's exact read reports the truncation.
      if (r.length === 0) out[i] = new Uint8Array(0);
      else if (this.covered(r.offset, r.length)) cached.push(this.read(r.offset, r.length).then((b) => void (out[i] = b)));
      else wanted.push(i);
    });
    const counted = {
      read: (offset: number, length: number) => {
        this.signal?.throwIfAborted();
        return this.source.read(offset, length, this.signal).then((bytes) => {
          this.requests++;
          this.bytesRead += bytes.length;
          return bytes;
        });
      },
      readRanges: this.source.readRanges
        ? (spans: readonly { offset: number; length: number }[]) =>
            this.source.readRanges!(spans, this.signal).then((parts) => {
              this.requests++;
              for (const p of parts) this.bytesRead += p.length;
              return parts;
            })
        : undefined,
    };
    const fetched = await readSpans(counted, wanted.map((i) => clipped[i]), options);
    wanted.forEach((i, j) => (out[i] = fetched[j]));
    await Promise.all(cached);
    return out;
  }

  private covered(offset: number, length: number): boolean {
    const last = Math.floor((offset + length - 1) / this.blockSize);
    for (let b = Math.floor(offset / this.blockSize); b <= last; b++) if (!this.blocks.has(b)) return false;
    return true;
  }

  /** A Cursor over `length` bytes at `offset`. */
  async cursor(
    offset: number,
    length: number,
    structure: string,
    sizes: AddressSizes,
  ): Promise<Cursor> {
    return new Cursor(await this.read(offset, length, structure), offset, structure, sizes, this.name);
  }

  private async blocksFor(first: number, last: number): Promise<Uint8Array[]> {
    const missing: number[] = [];
    for (let b = first; b <= last; b++) if (!this.blocks.has(b)) missing.push(b);
    // One request per contiguous run of missing blocks (cached blocks are not fetched again); the
    // last run also fetches the read-ahead blocks.
    for (let i = 0; i < missing.length; ) {
      let j = i;
      while (j + 1 < missing.length && missing[j + 1] === missing[j] + 1) j++;
      const lo = missing[i];
      let hi = missing[j];
      if (j === missing.length - 1) {
        while (hi < missing[j] + this.readAhead && !this.blocks.has(hi + 1)) hi++;
      }
      const fetch = this.fetchRun(lo, hi);
      for (let b = lo; b <= hi; b++) {
        if (!this.blocks.has(b)) {
          const index = b - lo;
          const block = fetch.then((run) => run[index]);
          this.blocks.set(b, block);
          // A failed fetch is not cached: the next read tries again (the failure may be transient).
          block.catch(() => {
            if (this.blocks.get(b) === block) this.blocks.delete(b);
          });
        }
      }
      i = j + 1;
    }
    // Take this request's blocks and refresh their LRU position before anything can evict them:
    // no await between here and the lookups, so concurrent reads cannot pull them out from under us.
    const wanted: Promise<Uint8Array>[] = [];
    for (let b = first; b <= last; b++) {
      const p = this.blocks.get(b)!;
      this.blocks.delete(b);
      this.blocks.set(b, p);
      wanted.push(p);
    }
    this.evict();
    return Promise.all(wanted);
  }

  private async fetchRun(lo: number, hi: number): Promise<Uint8Array[]> {
    let end = (hi + 1) * this.blockSize;
    const size = await this.size();
    if (size !== undefined) end = Math.min(end, size);
    const start = lo * this.blockSize;
    this.signal?.throwIfAborted();
    const bytes = end > start ? await this.source.read(start, end - start, this.signal) : new Uint8Array(0);
    this.requests++;
    this.bytesRead += bytes.length;
    const run: Uint8Array[] = [];
    for (let b = lo; b <= hi; b++) {
      const s = (b - lo) * this.blockSize;
      run.push(bytes.subarray(Math.min(s, bytes.length), Math.min(s + this.blockSize, bytes.length)));
    }
    return run;
  }

  private evict(): void {
    while (this.blocks.size > this.maxBlocks) {
      const oldest = this.blocks.keys().next().value as number;
      this.blocks.delete(oldest);
    }
  }
}

/** Sizes of file addresses and lengths, from the superblock (2, 4 or 8 bytes each). */
export interface AddressSizes {
  offsetSize: number;
  lengthSize: number;
}

/** The "undefined address": all bits set, at whatever offset size the file uses. */
export const UNDEFINED_ADDRESS = Number.MAX_SAFE_INTEGER;

/**
 * Bounds-checked little-endian reader over one structure's bytes. `base` is the file address of
 * `bytes[0]`, so errors name real file offsets.
 */
export class Cursor {
  pos = 0;
  private readonly view: DataView;

  constructor(
    readonly bytes: Uint8Array,
    readonly base: number,
    readonly structure: string,
    readonly sizes: AddressSizes,
    readonly sourceName?: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  /** File address of the current position. */
  get address(): number {
    return this.base + this.pos;
  }

  error(message: string, at = this.address): Hdf5FormatError {
    return new Hdf5FormatError(message, at, this.structure, { source: this.sourceName });
  }

  private need(n: number): void {
    if (n < 0 || this.pos + n > this.bytes.length) {
      throw this.error(`truncated: need ${n} bytes, ${this.remaining} left`);
    }
  }

  seek(pos: number): this {
    if (pos < 0 || pos > this.bytes.length) throw this.error(`seek to ${pos} outside structure`);
    this.pos = pos;
    return this;
  }

  skip(n: number): this {
    this.need(n);
    this.pos += n;
    return this;
  }

  /** Advances to the next multiple of `n` relative to the structure start. */
  align(n: number): this {
    const r = this.pos % n;
    if (r !== 0) this.skip(n - r);
    return this;
  }

  u8(): number {
    this.need(1);
    return this.view.getUint8(this.pos++);
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** Unsigned integer of 1–8 bytes as a JS number; throws if it does not fit in 2^53. */
  uint(size: number): number {
    this.need(size);
    let v = 0;
    let scale = 1;
    for (let i = 0; i < size; i++) {
      v += this.bytes[this.pos + i] * scale;
      scale *= 256;
    }
    this.pos += size;
    if (!Number.isSafeInteger(v)) throw this.error(`integer of ${size} bytes too large`, this.pos - size);
    return v;
  }

  u64big(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** A file address; the all-ones "undefined address" becomes UNDEFINED_ADDRESS. */
  offset(): number {
    return this.sizedOrUndefined(this.sizes.offsetSize);
  }

  /** A length field; all ones (unset) becomes UNDEFINED_ADDRESS as for addresses. */
  length(): number {
    return this.sizedOrUndefined(this.sizes.lengthSize);
  }

  private sizedOrUndefined(n: number): number {
    this.need(n);
    let allOnes = true;
    for (let i = 0; i < n; i++) if (this.bytes[this.pos + i] !== 0xff) allOnes = false;
    if (allOnes) {
      this.pos += n;
      return UNDEFINED_ADDRESS;
    }
    return this.uint(n);
  }

  take(n: number): Uint8Array {
    this.need(n);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Checks a 4-byte signature such as "OHDR", "TREE", "FRHP". */
  signature(expected: string): void {
    const at = this.address;
    const got = this.take(expected.length);
    for (let i = 0; i < expected.length; i++) {
      if (got[i] !== expected.charCodeAt(i)) {
        throw this.error(
          `bad signature: expected "${expected}", got ${JSON.stringify(String.fromCharCode(...got))}`,
          at,
        );
      }
    }
  }

  /** NUL-terminated ASCII/UTF-8 string, optionally within a fixed field of `max` bytes. */
  cstring(max = this.remaining): string {
    const end = this.bytes.indexOf(0, this.pos);
    const stop = end === -1 || end > this.pos + max ? this.pos + max : end;
    if (end === -1 && max === this.remaining) throw this.error("unterminated string");
    const s = utf8.decode(this.bytes.subarray(this.pos, stop));
    this.pos = Math.min(stop + 1, this.bytes.length);
    return s;
  }
}

/**
 * What every structure reader needs: the cached byte source, the file's address sizes, and the
 * base address (non-zero when the file has a user block). Addresses in the file are relative to
 * `base`; `cursor()` takes such an address.
 */
export class FileContext {
  constructor(
    readonly source: CachedSource,
    readonly sizes: AddressSizes,
    readonly base = 0,
  ) {}

  /** A cursor over `length` bytes at file address `address` (relative to the base address). */
  cursor(address: number, length: number, structure: string): Promise<Cursor> {
    if (address === UNDEFINED_ADDRESS) {
      throw new Hdf5FormatError("undefined address", address, structure, {
        source: this.source.name,
      });
    }
    return this.source
      .read(this.base + address, length, structure)
      .then((bytes) => new Cursor(bytes, address, structure, this.sizes, this.source.name));
  }

  /** Like cursor(), but clipped at end of file instead of failing (for structures of unknown size). */
  async cursorUpTo(address: number, maxLength: number, structure: string): Promise<Cursor> {
    const size = await this.source.size();
    const length =
      size === undefined ? maxLength : Math.max(0, Math.min(maxLength, size - this.base - address));
    return this.cursor(address, length, structure);
  }
}
