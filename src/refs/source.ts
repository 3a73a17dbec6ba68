/**
 * Byte sources for the builder's `string` inputs. Local paths (and file:// urls) only for now;
 * the store layer's `openStore(url)` will serve every other url once it lands.
 */
import { open, stat } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { ByteSource } from "../hdf5/io.js";

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
