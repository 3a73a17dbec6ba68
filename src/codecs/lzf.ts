/**
 * LZF (HDF5 filter 32000 from h5py, imagecodecs `imagecodecs_lzf` with `header: false`).
 *
 * The stream is a sequence of runs, each led by a control byte `c`:
 *   c < 32   literal run: the next c + 1 bytes are copied;
 *   c >= 32  back reference: length (c >> 5) + 2, extended by the next byte when c >> 5 == 7, at
 *            distance ((c & 0x1f) << 8) + next byte + 1 behind the output position.
 * h5py stores the bare stream (no header); its client data 2 is the chunk size in bytes, which bounds
 * the output. The `header: true` form (imagecodecs) is not used by HDF5 and is rejected.
 */
import { CodecError } from "../errors.js";
import { type PoolTask, decodePooled, poolTask } from "./pool.js";
import { type BytesCodec, type ChunkMeta, chunkBytes, decodedLimit } from "./types.js";

export function lzfDecompress(src: Uint8Array, limit: number): Uint8Array {
  let out = new Uint8Array(Math.min(limit, Math.max(64, src.length * 4)));
  let op = 0;
  let ip = 0;
  const ensure = (extra: number) => {
    const need = op + extra;
    if (need > limit) fail(`output would exceed ${limit} bytes`);
    if (need > out.length) {
      const grown = new Uint8Array(Math.min(limit, Math.max(need, out.length * 2)));
      grown.set(out.subarray(0, op));
      out = grown;
    }
  };
  while (ip < src.length) {
    const ctrl = src[ip++];
    if (ctrl < 32) {
      const len = ctrl + 1;
      if (ip + len > src.length) fail(`literal run of ${len} bytes at input ${ip - 1} runs past the end`);
      if (op + len > out.length) ensure(len);
      // Runs are at most 32 bytes: a plain loop beats creating a subarray for each.
      for (let k = 0; k < len; k++) out[op++] = src[ip++];
    } else {
      let len = ctrl >> 5;
      if (len === 7) {
        if (ip >= src.length) fail("truncated back reference");
        len += src[ip++];
      }
      if (ip >= src.length) fail("truncated back reference");
      const distance = ((ctrl & 0x1f) << 8) + src[ip++] + 1;
      len += 2;
      if (distance > op) fail(`back reference ${distance} bytes behind output position ${op}`);
      if (op + len > out.length) ensure(len);
      // Byte by byte: a reference may overlap the bytes it produces (run-length style).
      let from = op - distance;
      for (let k = 0; k < len; k++) out[op++] = out[from++];
    }
  }
  return out.subarray(0, op);
}

function fail(message: string): never {
  throw new CodecError(message, "lzf");
}

export class LzfCodec implements BytesCodec {
  static readonly kind = "bytes_to_bytes";
  readonly kind = "bytes_to_bytes" as const;

  constructor(
    private readonly limit: number,
    private readonly task: PoolTask = poolTask("imagecodecs_lzf", {}),
    private readonly expected = 0,
  ) {}

  static fromConfig(config: unknown, meta?: ChunkMeta): LzfCodec {
    const header = typeof config === "object" && config !== null ? (config as { header?: unknown }).header : undefined;
    if (header === true) {
      throw new CodecError("only the header-less LZF stream (header: false) that HDF5 stores is supported", "lzf");
    }
    return new LzfCodec(decodedLimit(meta), poolTask("imagecodecs_lzf", config, meta), chunkBytes(meta));
  }

  encode(): Uint8Array {
    throw new CodecError("encoding is not implemented (decode only)", "lzf");
  }

  decode(bytes: Uint8Array): Uint8Array | Promise<Uint8Array> {
    return decodePooled(this.task, bytes, Math.max(bytes.length, this.expected), (b) => this.decodeLocal(b));
  }

  decodeLocal(bytes: Uint8Array): Uint8Array {
    return lzfDecompress(bytes, this.limit);
  }
}
