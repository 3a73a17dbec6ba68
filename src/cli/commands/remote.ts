/**
 * Shared by `refs` and `dump`: local paths go straight to node:fs; any other url goes through the
 * store layer (`openObject`), both for the HDF5 file itself and for the targets of references.
 */
import { byteSourceFromStore, type ByteSource } from "../../hdf5/io.js";
import type { Resolver, TargetStore } from "../../refs/reference-store.js";
import { localResolver } from "../../refs/reference-store.js";
import { isLocalUrl, localFileSource } from "../../refs/source.js";
import type { Store } from "../../stores/types.js";
import { closeStore, openObject, type GlobalOptions } from "../stores.js";

export const isLocal = isLocalUrl;

/** A ByteSource for `url`, and a function releasing what it opened. */
export async function openSource(url: string, options: GlobalOptions): Promise<{ source: ByteSource; close(): Promise<void> }> {
  if (isLocal(url)) return { source: localFileSource(url), close: async () => {} };
  const { store, key } = await openObject(url, options);
  return { source: byteSourceFromStore(store, key, url), close: () => closeStore(store) };
}

/** Resolves reference urls: local ones via node:fs, others through stores opened on first use. */
export function cliResolver(options: GlobalOptions, baseDir?: string): { resolver: Resolver; close(): Promise<void> } {
  const local = localResolver(baseDir);
  const opened = new Map<string, Promise<{ store: Store; key: string }>>();
  const resolver: Resolver = (url) => {
    if (isLocal(url)) return local(url);
    const target = (): Promise<{ store: Store; key: string }> => {
      let p = opened.get(url);
      if (!p) opened.set(url, (p = openObject(url, options)));
      return p;
    };
    const store: TargetStore = {
      get: async (_key, opts) => {
        const t = await target();
        return t.store.get(t.key, opts);
      },
      getRange: async (_key, range, opts) => {
        const t = await target();
        return t.store.getRange(t.key, range, opts);
      },
    };
    return { store, key: url };
  };
  return {
    resolver,
    async close() {
      for (const p of opened.values()) await p.then((t) => closeStore(t.store)).catch(() => {});
    },
  };
}
