/** In-process store: a Map of keys to stored bytes (after compression) and their encoding. */
import type { Backend, BackendWriteOptions, ByteRange, StoredObject } from "./backend.js";
import { ObjectStore, type StoreOptions } from "./object-store.js";
import { ConflictError } from "../errors.js";
import type { ObjectInfo } from "./types.js";
import { sliceRange } from "./range.js";

interface Entry {
  data: Uint8Array;
  contentEncoding?: string;
  lastModified: Date;
}

/** Named memory stores (`memory://name`) are shared within the process, like fsspec's. */
const named = new Map<string, Map<string, Entry>>();

export class MemoryBackend implements Backend {
  readonly url: string;
  readonly defaultConcurrency = 64;
  private readonly objects: Map<string, Entry>;

  constructor(name?: string) {
    this.url = `memory://${name ?? ""}`;
    if (name === undefined) {
      this.objects = new Map();
    } else {
      let objects = named.get(name);
      if (!objects) named.set(name, (objects = new Map()));
      this.objects = objects;
    }
  }

  async read(key: string, range: ByteRange | undefined): Promise<StoredObject | undefined> {
    const entry = this.objects.get(key);
    if (!entry) return undefined;
    const data = range ? sliceRange(entry.data, range) : entry.data;
    // A copy: callers may mutate what they get back.
    return { data: data.slice(), contentEncoding: entry.contentEncoding };
  }

  async write(key: string, data: Uint8Array, options: BackendWriteOptions): Promise<void> {
    if (options.ifNoneMatch === "*" && this.objects.has(key)) {
      throw new ConflictError("object already exists", { store: this.url, key, operation: "set", status: 412 });
    }
    this.objects.set(key, { data: data.slice(), contentEncoding: options.contentEncoding, lastModified: new Date() });
  }

  async remove(key: string): Promise<void> {
    this.objects.delete(key);
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const entry = this.objects.get(key);
    return entry && this.info(key, entry);
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    for (const key of [...this.objects.keys()].sort()) {
      if (key.startsWith(prefix)) yield this.info(key, this.objects.get(key)!);
    }
  }

  private info(key: string, entry: Entry): ObjectInfo {
    return {
      key,
      size: entry.data.length,
      contentEncoding: entry.contentEncoding,
      lastModified: entry.lastModified,
    };
  }
}

export class MemoryStore extends ObjectStore {
  constructor(name?: string, options?: StoreOptions) {
    super(new MemoryBackend(name), options);
  }
}
