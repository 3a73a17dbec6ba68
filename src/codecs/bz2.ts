/**
 * bzip2 (HDF5 filter 307 from PyTables/hdf5plugin, numcodecs `bz2`): both store one plain bzip2
 * stream. Decoding uses seek-bzip (pure JavaScript); there is no encoder.
 *
 * seek-bzip reads past the end as zero bits and grows its output without bound, so the codec hands
 * it an input that throws at the end and an output that refuses to grow past the chunk's limit.
 */
import Bunzip from "seek-bzip";
import { CodecError } from "../errors.js";
import { type PoolTask, decodePooled, poolTask } from "./pool.js";
import { type BytesCodec, type ChunkMeta, chunkBytes, decodedLimit } from "./types.js";

const ID = "bz2";

export function bz2Decompress(src: Uint8Array, limit: number): Uint8Array {
  let pos = 0;
  const input = {
    readByte(): number {
      if (pos >= src.length) throw new CodecError(`truncated stream (${src.length} bytes)`, ID);
      return src[pos++];
    },
    read(buffer: Uint8Array, offset: number, length: number): number {
      const n = Math.min(length, src.length - pos);
      if (n <= 0) return -1;
      buffer.set(src.subarray(pos, pos + n), offset);
      pos += n;
      return n;
    },
    seek(p: number): void {
      pos = p;
    },
    eof(): boolean {
      return pos >= src.length;
    },
  };
  let out = new Uint8Array(Math.min(limit, Math.max(1024, src.length * 4)));
  let op = 0;
  const output = {
    writeByte(byte: number): void {
      if (op >= out.length) {
        if (op >= limit) throw new CodecError(`decoded data exceeds the limit of ${limit} bytes`, ID);
        const grown = new Uint8Array(Math.min(limit, out.length * 2));
        grown.set(out);
        out = grown;
      }
      out[op++] = byte;
    },
    getBuffer(): Uint8Array {
      return out.subarray(0, op);
    },
  };
  try {
    // multistream: pbzip2-style concatenated streams decode to their concatenation, as bzip2 does.
    return Bunzip.decode(input, output, true);
  } catch (cause) {
    if (cause instanceof CodecError) throw cause;
    const msg = cause instanceof Error ? cause.message : String(cause);
    throw new CodecError(`cannot decompress ${src.length} bytes: ${msg}`, ID, undefined, { cause });
  }
}

export class Bz2Codec implements BytesCodec {
  static readonly kind = "bytes_to_bytes";
  readonly kind = "bytes_to_bytes" as const;

  constructor(
    private readonly limit: number,
    private readonly task: PoolTask = poolTask("bz2", {}),
    private readonly expected = 0,
  ) {}

  static fromConfig(config: unknown, meta?: ChunkMeta): Bz2Codec {
    return new Bz2Codec(decodedLimit(meta), poolTask("bz2", config, meta), chunkBytes(meta));
  }

  encode(): Uint8Array {
    throw new CodecError("encoding is not implemented (decode only; no bzip2 encoder is bundled)", ID);
  }

  decode(bytes: Uint8Array): Uint8Array | Promise<Uint8Array> {
    return decodePooled(this.task, bytes, Math.max(bytes.length, this.expected), (b) => this.decodeLocal(b));
  }

  decodeLocal(bytes: Uint8Array): Uint8Array {
    return bz2Decompress(bytes, this.limit);
  }
}
