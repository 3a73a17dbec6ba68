/**
 * An optional on-disk cache of fetched (still encoded) chunk bytes. The key hashes the url, offset,
 * size and the identity of the credentials (a hash of user and secret, or "anonymous"), so one
 * user's cached bytes are never served to a request made with other credentials. Staleness is
 * bounded by the TTL; the total size by evicting the least recently written entries.
 */
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface ChunkCacheOptions {
  dir: string;
  maxBytes: number;
  ttlMs: number;
}

export function cacheKey(url: string, offset: number, size: number, credentialsId: string): string {
  return createHash("sha256").update(`${url}\n${offset}\n${size}\n${credentialsId}`).digest("hex");
}

export class ChunkCache {
  /** key → {size, written}: insertion order is write order, so the first entry is evicted first. */
  private readonly entries = new Map<string, { size: number; written: number }>();
  private total = 0;
  private ready: Promise<void>;

  constructor(private readonly options: ChunkCacheOptions) {
    this.ready = this.scan();
  }

  private async scan(): Promise<void> {
    await mkdir(this.options.dir, { recursive: true });
    const found: { key: string; size: number; written: number }[] = [];
    for (const name of await readdir(this.options.dir)) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      const s = await stat(join(this.options.dir, name)).catch(() => undefined);
      if (s) found.push({ key: name, size: s.size, written: s.mtimeMs });
    }
    found.sort((a, b) => a.written - b.written);
    for (const f of found) this.remember(f.key, f.size, f.written);
    await this.evict();
  }

  private remember(key: string, size: number, written: number): void {
    const old = this.entries.get(key);
    if (old) this.total -= old.size;
    this.entries.delete(key);
    this.entries.set(key, { size, written });
    this.total += size;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    await this.ready;
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (Date.now() - entry.written > this.options.ttlMs) {
      await this.drop(key);
      return undefined;
    }
    try {
      const bytes = await readFile(join(this.options.dir, key));
      if (bytes.length !== entry.size) throw new Error("size changed");
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
    } catch {
      await this.drop(key); // a damaged entry is a miss, and it goes
      return undefined;
    }
  }

  async set(key: string, bytes: Uint8Array): Promise<void> {
    await this.ready;
    if (bytes.length > this.options.maxBytes) return;
    const path = join(this.options.dir, key);
    const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, path);
    this.remember(key, bytes.length, Date.now());
    await this.evict();
  }

  get bytes(): number {
    return this.total;
  }

  private async drop(key: string): Promise<void> {
    const entry = this.entries.get(key);
    if (entry) this.total -= entry.size;
    this.entries.delete(key);
    await rm(join(this.options.dir, key), { force: true });
  }

  private async evict(): Promise<void> {
    while (this.total > this.options.maxBytes && this.entries.size > 0) {
      const key = this.entries.keys().next().value as string;
      await this.drop(key);
    }
  }
}
