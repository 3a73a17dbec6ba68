/**
 * A what-if for the benchmark, not a store: reference targets read through one cached FileHandle
 * per file (pread only), instead of the store layer's open + fstat + read + close per range. It
 * measures what a handle cache in LocalStore would save per chunk; the library does not use it.
 */
import { open, type FileHandle } from "node:fs/promises";
import type { Resolver, TargetStore } from "../../src/refs/resolve.js";

export function cachedHandleResolver(): Resolver & { close(): Promise<void> } {
  const handles = new Map<string, Promise<FileHandle>>();
  const handle = (path: string) => {
    let h = handles.get(path);
    if (!h) handles.set(path, (h = open(path, "r")));
    return h;
  };
  const target: TargetStore = {
    async get(path) {
      const h = await handle(path);
      const { size } = await h.stat();
      return this.getRange(path, { offset: 0, length: size });
    },
    async getRange(path, range) {
      const h = await handle(path);
      const out = new Uint8Array(range.length);
      let done = 0;
      while (done < range.length) {
        const { bytesRead } = await h.read(out, done, range.length - done, range.offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return out.subarray(0, done);
    },
  };
  const resolver = (url: string) => ({ store: target, key: url.replace(/^file:\/\//, "") });
  return Object.assign(resolver, {
    async close() {
      for (const h of handles.values()) await (await h).close();
    },
  });
}
