/**
 * Local-disk store: one file per key under a root directory.
 *
 * Content-Encoding on disk follows CloudFiles: an object written with compression is stored as
 * `<key>.gz`, `<key>.br` or `<key>.zstd` and the suffix is the only record of the encoding. Reads
 * try `<key>` first, then the suffixed names; `list` reports the logical key (suffix stripped) with
 * its `contentEncoding`. A write removes the key's other representations, so at most one exists.
 * The price of the convention: a plain file literally named `x.gz` lists as `x` (gzip); reading
 * `x.gz` by its full name still returns its bytes.
 *
 * Writes are atomic: a temp file in the target directory, then rename (or link, for create-only
 * writes, which fails with EEXIST instead of replacing). Temp files start with `.activestore-tmp-`
 * and are never listed.
 */
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { link, mkdir, open, opendir, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { ConflictError, InvalidKeyError, StoreError } from "../errors.js";
import type { Backend, BackendWriteOptions, ByteRange, Retrier, StoredObject } from "./backend.js";
import type { BufferPool } from "./buffer-pool.js";
import { HandleCache, type OpenFile } from "./handle-cache.js";
import { ObjectStore, type StoreOptions } from "./object-store.js";
import type { ObjectInfo } from "./types.js";

/** File-name suffix for each Content-Encoding, CloudFiles' convention. */
const SUFFIXES: readonly (readonly [string, string])[] = [
  ["gzip", ".gz"],
  ["br", ".br"],
  ["zstd", ".zstd"],
];

const TEMP_PREFIX = ".activestore-tmp-";

/** errno codes worth another attempt: resource exhaustion, not a broken disk or a refusal. */
const TRANSIENT = new Set(["EAGAIN", "EBUSY", "EMFILE", "ENFILE", "EINTR"]);

function errno(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** ENOENT is "missing"; ENOTDIR too: `a/b` cannot exist while `a` is a file. */
function isMissing(error: unknown): boolean {
  const code = errno(error);
  return code === "ENOENT" || code === "ENOTDIR";
}

function suffixFor(encoding: string | undefined): string {
  if (!encoding || encoding === "identity") return "";
  const entry = SUFFIXES.find(([name]) => name === encoding);
  if (!entry) throw new Error(`no file suffix for Content-Encoding "${encoding}"`);
  return entry[1];
}

export interface LocalStoreOptions extends StoreOptions {
  /** fsync each file before it is renamed into place (durability across power loss). Default false. */
  fsync?: boolean;
  /**
   * Keep up to this many files open between reads (default 0: open per read). For files that only
   * this store changes while it is open, e.g. HDF5 files read chunk by chunk through references:
   * a file replaced by another process keeps being read from its old handle until evicted.
   */
  cacheHandles?: number;
}

export class LocalBackend implements Backend {
  readonly url: string;
  readonly defaultConcurrency = 16;
  readonly root: string;

  private readonly handles: HandleCache | undefined;

  constructor(
    root: string,
    private readonly fsync = false,
    cacheHandles = 0,
  ) {
    this.root = resolve(root);
    this.url = pathToFileURL(this.root).href;
    this.handles = cacheHandles > 0 ? new HandleCache(cacheHandles) : undefined;
  }

  async close(): Promise<void> {
    await this.handles?.closeAll();
  }

  validateKey(key: string): void {
    const refuse = (reason: string) => {
      throw new InvalidKeyError(this.url, key, reason);
    };
    if (key === "") refuse("empty key");
    if (key.includes("\0")) refuse("contains NUL");
    if (key.includes("\\")) refuse("contains a backslash (path separator on some systems)");
    if (key.startsWith("/")) refuse("absolute path");
    for (const segment of key.split("/")) {
      if (segment === "") refuse("empty path segment");
      if (segment === "." || segment === "..") refuse(`"${segment}" segment could leave the store root`);
      if (segment.startsWith(TEMP_PREFIX)) refuse(`segments starting with ${TEMP_PREFIX} are reserved`);
    }
    // Belt and braces: whatever the checks above missed must still land under the root.
    const path = resolve(this.root, key);
    const rootWithSep = this.root.endsWith(sep) ? this.root : this.root + sep; // "/" is its own prefix
    if (!path.startsWith(rootWithSep)) refuse("resolves outside the store root");
  }

  private path(key: string): string {
    return join(this.root, key);
  }

  /** The file that holds `key` when it is stored uncompressed (it may not exist). */
  filePath(key: string): string {
    this.validateKey(key);
    return this.path(key);
  }

  private fail(error: unknown, key: string, operation: string, what?: string): StoreError {
    if (error instanceof StoreError) return error;
    const code = errno(error);
    const message = what ?? (error instanceof Error ? error.message : String(error));
    return new StoreError(message, { store: this.url, key, operation, retryable: TRANSIENT.has(code ?? ""), cause: error });
  }

  /** Opens the first existing representation of `key`: plain, then each compressed suffix. */
  private async openObject(
    key: string,
    operation: string,
  ): Promise<{ handle: FileHandle; encoding?: string } | undefined> {
    const base = this.path(key);
    for (const [encoding, suffix] of [[undefined, ""] as const, ...SUFFIXES]) {
      try {
        return { handle: await open(base + suffix, constants.O_RDONLY), encoding };
      } catch (error) {
        if (!isMissing(error)) throw this.fail(error, key, operation);
      }
    }
    return undefined;
  }

  async read(
    key: string,
    range: ByteRange | undefined,
    _signal?: AbortSignal,
    buffers?: BufferPool,
  ): Promise<StoredObject | undefined> {
    const operation = range ? "getRange" : "get";
    const openFile = async (): Promise<OpenFile | undefined> => {
      const found = await this.openObject(key, operation);
      if (!found) return undefined;
      try {
        const info = await found.handle.stat();
        if (info.isDirectory()) throw this.fail(undefined, key, operation, "is a directory, not an object");
        return { handle: found.handle, encoding: found.encoding, size: info.size };
      } catch (error) {
        await found.handle.close();
        throw this.fail(error, key, operation);
      }
    };
    if (this.handles) return this.handles.with(key, openFile, (file) => this.readOpen(file, key, range, operation, buffers));
    const file = await openFile();
    try {
      return await this.readOpen(file, key, range, operation, buffers);
    } finally {
      await file?.handle.close();
    }
  }

  private async readOpen(
    file: OpenFile | undefined,
    key: string,
    range: ByteRange | undefined,
    operation: string,
    buffers: BufferPool | undefined,
  ): Promise<StoredObject | undefined> {
    if (!file) return undefined;
    try {
      const { size, handle } = file;
      let start = 0;
      let end = size;
      if (range && "suffixLength" in range) start = Math.max(0, size - range.suffixLength);
      else if (range) {
        start = Math.min(range.offset, size);
        end = range.length === undefined ? size : Math.min(size, range.offset + range.length);
      }
      // Sized from the file, never from the request: a huge range on a small file stays small.
      // A pooled destination is read straight into (pread); on failure it is dropped, not given
      // back, so a read still writing into it can never meet its next user.
      const data = buffers ? buffers.take(end - start) : new Uint8Array(end - start);
      let filled = 0;
      while (filled < data.length) {
        const { bytesRead } = await handle.read(data, filled, data.length - filled, start + filled);
        if (bytesRead === 0) break; // file shrank under us (not via this store: writes replace the inode)
        filled += bytesRead;
      }
      return { data: filled === data.length ? data : data.subarray(0, filled), contentEncoding: file.encoding };
    } catch (error) {
      throw this.fail(error, key, operation);
    }
  }

  async write(key: string, data: Uint8Array, options: BackendWriteOptions): Promise<void> {
    const suffix = suffixFor(options.contentEncoding);
    const target = this.path(key) + suffix;
    const dir = dirname(target);
    const temp = join(dir, `${TEMP_PREFIX}${randomBytes(8).toString("hex")}`);
    try {
      await mkdir(dir, { recursive: true });
      const handle = await open(temp, "wx");
      try {
        await handle.writeFile(data);
        if (this.fsync) await handle.sync();
      } finally {
        await handle.close();
      }
      if (options.ifNoneMatch === "*") {
        if (await this.stat(key)) throw this.conflict(key);
        try {
          // link() never replaces an existing name: the create-only primitive on POSIX.
          await link(temp, target);
        } catch (error) {
          if (errno(error) === "EEXIST") throw this.conflict(key);
          throw error;
        }
        await unlink(temp);
      } else {
        await rename(temp, target);
      }
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw this.fail(error, key, "set");
    }
    await this.removeOthers(key, suffix);
    await this.handles?.invalidate(key);
  }

  private conflict(key: string): ConflictError {
    return new ConflictError("object already exists", { store: this.url, key, operation: "set", status: 412 });
  }

  /** Drops the representations of `key` other than the one just written. */
  private async removeOthers(key: string, keep: string): Promise<void> {
    const base = this.path(key);
    for (const suffix of ["", ...SUFFIXES.map(([, s]) => s)]) {
      if (suffix === keep) continue;
      try {
        await unlink(base + suffix);
      } catch (error) {
        if (!isMissing(error)) throw this.fail(error, key, "set");
      }
    }
  }

  async remove(key: string): Promise<void> {
    await this.removeOthers(key, "\0"); // keep nothing
    await this.handles?.invalidate(key);
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const base = this.path(key);
    for (const [encoding, suffix] of [[undefined, ""] as const, ...SUFFIXES]) {
      try {
        const info = await stat(base + suffix);
        if (info.isDirectory()) throw this.fail(undefined, key, "head", "is a directory, not an object");
        return { key, size: info.size, contentEncoding: encoding, lastModified: info.mtime };
      } catch (error) {
        if (!isMissing(error)) throw this.fail(error, key, "head");
      }
    }
    return undefined;
  }

  /**
   * Walks directories lazily, each directory's entries sorted so keys come out in byte order
   * (a directory sorts as `name/`), like an object-store listing.
   */
  async *list(prefix: string, options: { signal?: AbortSignal; retry: Retrier }): AsyncIterable<ObjectInfo> {
    const slash = prefix.lastIndexOf("/");
    const start = slash < 0 ? "" : prefix.slice(0, slash + 1);
    yield* this.walk(start, prefix, options);
  }

  private async *walk(
    dirKey: string,
    prefix: string,
    options: { signal?: AbortSignal; retry: Retrier },
  ): AsyncGenerator<ObjectInfo> {
    options.signal?.throwIfAborted();
    const entries = await options.retry(() => this.readDir(dirKey));
    for (const entry of entries) {
      const key = dirKey + entry.name;
      if (entry.isDirectory) {
        const sub = key + "/";
        if (sub.startsWith(prefix) || prefix.startsWith(sub)) yield* this.walk(sub, prefix, options);
        continue;
      }
      const [encoding, suffix] = SUFFIXES.find(([, s]) => key.endsWith(s)) ?? [undefined, ""];
      const logical = key.slice(0, key.length - suffix.length);
      if (!logical.startsWith(prefix)) continue;
      const info = await options.retry(async () => {
        try {
          return await stat(this.path(key));
        } catch (error) {
          if (isMissing(error)) return undefined; // removed while listing
          throw this.fail(error, key, "list");
        }
      });
      if (info) yield { key: logical, size: info.size, contentEncoding: encoding, lastModified: info.mtime };
    }
  }

  private async readDir(dirKey: string): Promise<{ name: string; isDirectory: boolean }[]> {
    const entries: { name: string; isDirectory: boolean }[] = [];
    try {
      for await (const entry of await opendir(this.path(dirKey) || this.root)) {
        if (entry.name.startsWith(TEMP_PREFIX)) continue;
        if (!entry.isFile() && !entry.isDirectory()) continue;
        entries.push({ name: entry.name, isDirectory: entry.isDirectory() });
      }
    } catch (error) {
      if (isMissing(error)) return [];
      throw this.fail(error, dirKey, "list");
    }
    const sortName = (e: { name: string; isDirectory: boolean }) => (e.isDirectory ? e.name + "/" : e.name);
    return entries.sort((a, b) => (sortName(a) < sortName(b) ? -1 : sortName(a) > sortName(b) ? 1 : 0));
  }
}

/** A store rooted at a local directory (created on first write). */
export class LocalStore extends ObjectStore {
  constructor(root: string, options: LocalStoreOptions = {}) {
    super(new LocalBackend(root, options.fsync, options.cacheHandles), options);
  }
}
