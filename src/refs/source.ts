/**
 * Byte sources for the builder's `string` inputs: local paths and file:// urls straight through
 * node:fs, every other url through the store layer (`openStore` + `splitUrl`).
 */
import { open, stat } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { byteSourceFromStore, type ByteSource } from "../hdf5/io.js";
import { openStore, splitUrl } from "../stores/open.js";

export function isLocalUrl(url: string): boolean {
  return url.startsWith("file://") || !/^[a-z][a-z0-9+.-]*:\/\//i.test(url);
}

/** A ByteSource for any url, and a function that releases the store it opened. */
export function openByteSource(url: string): { source: ByteSource; close(): Promise<void> } {
  if (isLocalUrl(url)) return { source: localFileSource(url), close: async () => {} };
  const { storeUrl, key } = splitUrl(url);
  const store = openStore(storeUrl);
  return {
    source: byteSourceFromStore(store, key, url),
    close: async () => (store as { close?: () => Promise<void> }).close?.(),
  };
}

export function localFileSource(pathOrUrl: string): ByteSource {
  const path = pathOrUrl.startsWith("file://") ? fileURLToPath(pathOrUrl) : pathOrUrl;
  let size: Promise<number> | undefined;
  return {
    name: pathOrUrl,
    async read(offset, length) {
      const handle = await open(path, "r");
      try {
        const out = new Uint8Array(length);
        let done = 0;
        while (done < length) {
          const { bytesRead } = await handle.read(out, done, length - done, offset + done);
          if (bytesRead === 0) break;
          done += bytesRead;
        }
        return out.subarray(0, done);
      } finally {
        await handle.close();
      }
    },
    size() {
      size ??= stat(path).then((s) => s.size);
      return size;
    },
  };
}
