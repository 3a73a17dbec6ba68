/**
 * Open file handles kept for reuse, for stores that read many ranges of a few large files (HDF5
 * files behind kerchunk references): an open + fstat + close per chunk costs more than reading a
 * small chunk. Least recently used handles are closed beyond `max`; a handle still being read is
 * closed when its last reader is done.
 */
import type { FileHandle } from "node:fs/promises";

export interface OpenFile {
  handle: FileHandle;
  encoding?: string;
  size: number;
}

interface Entry {
  file: Promise<OpenFile | undefined>;
  users: number;
  retired: boolean;
}

/**
 * A cache its owner dropped without closing (a store nobody closed) still closes its files once it
 * is garbage: left to themselves, the handles would be closed by the GC with a deprecation warning,
 * or, until a collection, hold descriptors. The entries, not the cache, are held here.
 */
const dropped = new FinalizationRegistry<Map<string, Entry>>((entries) => {
  for (const entry of entries.values()) {
    void entry.file.then((file) => file?.handle.close()).catch(() => undefined);
  }
});

export class HandleCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly max: number) {
    dropped.register(this, this.entries);
  }

  /** Runs `use` with the cached (or newly opened) file; `undefined` when it does not exist. */
  async with<T>(
    key: string,
    open: () => Promise<OpenFile | undefined>,
    use: (file: OpenFile | undefined) => Promise<T>,
  ): Promise<T> {
    let entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key); // refresh LRU position
      this.entries.set(key, entry);
    } else {
      entry = { file: open(), users: 0, retired: false };
      this.entries.set(key, entry);
      this.evict();
    }
    entry.users++;
    let file: OpenFile | undefined;
    try {
      file = await entry.file;
    } catch (error) {
      // A failed open is not cached: the next read tries again.
      entry.users--;
      if (this.entries.get(key) === entry) this.entries.delete(key);
      throw error;
    }
    if (file === undefined && this.entries.get(key) === entry) this.entries.delete(key); // missing: not cached
    try {
      return await use(file);
    } finally {
      entry.users--;
      if (entry.retired && entry.users === 0) await file?.handle.close().catch(() => undefined);
    }
  }

  /** Forgets `key` (its file was replaced or removed through this store). */
  async invalidate(key: string): Promise<void> {
    const entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key);
      await this.retire(entry);
    }
  }

  async closeAll(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map((e) => this.retire(e)));
  }

  private evict(): void {
    while (this.entries.size > this.max) {
      const [oldest, entry] = this.entries.entries().next().value as [string, Entry];
      this.entries.delete(oldest);
      void this.retire(entry);
    }
  }

  private async retire(entry: Entry): Promise<void> {
    entry.retired = true;
    if (entry.users > 0) return; // the last reader closes it
    const file = await entry.file.catch(() => undefined);
    await file?.handle.close().catch(() => undefined);
  }
}
