/**
 * zlib (RFC 1950, HDF5 "deflate" filter 1, numcodecs `zlib`) and gzip (RFC 1952, numcodecs `gzip`).
 * Both directions, on node:zlib's async API so big chunks inflate on libuv's pool, off the main thread.
 */
import { promisify } from "node:util";
import * as zlib from "node:zlib";
import { CodecError } from "../errors.js";
import { type BytesCodec, type ChunkMeta, decodedLimit, intOption } from "./types.js";

const inflate = promisify(zlib.inflate);
const deflate = promisify(zlib.deflate);
const gunzip = promisify(zlib.gunzip);
const gzip = promisify(zlib.gzip);

type Transform = (buf: Uint8Array, options: zlib.ZlibOptions) => Promise<Buffer>;

abstract class DeflateFamily implements BytesCodec {
  readonly kind = "bytes_to_bytes" as const;
  protected abstract readonly id: string;
  protected abstract readonly inflateFn: Transform;
  protected abstract readonly deflateFn: Transform;

  constructor(
    readonly level: number,
    private readonly limit: number,
  ) {}

  async encode(bytes: Uint8Array): Promise<Uint8Array> {
    return toU8(await this.deflateFn(bytes, { level: this.level }));
  }

  async decode(bytes: Uint8Array): Promise<Uint8Array> {
    try {
      // maxOutputLength turns a decompression bomb into an error instead of an allocation.
      // A large chunkSize: async zlib does one thread-pool round trip per output chunk, and the
      // 16 KiB default makes a 4 MiB chunk take 250 trips (5x slower than inflateSync).
      const chunkSize = Math.min(this.limit, Math.max(1 << 16, bytes.length * 4), 8 << 20);
      return toU8(await this.inflateFn(bytes, { maxOutputLength: this.limit, chunkSize }));
    } catch (cause) {
      const msg = cause instanceof Error ? cause.message : String(cause);
      throw new CodecError(`cannot decompress ${bytes.length} bytes: ${msg}`, this.id, undefined, { cause });
    }
  }
}

function levelOf(id: string, config: unknown, fallback: number): number {
  const level = intOption(id, config, "level", fallback);
  if (level > 9) throw new CodecError(`level must be 0..9, got ${level}`, id);
  return level;
}

export class ZlibCodec extends DeflateFamily {
  static readonly kind = "bytes_to_bytes";
  protected readonly id = "zlib";
  protected readonly inflateFn: Transform = inflate;
  protected readonly deflateFn: Transform = deflate;
  static fromConfig(config: unknown, meta?: ChunkMeta): ZlibCodec {
    return new ZlibCodec(levelOf("zlib", config, 1), decodedLimit(meta));
  }
}

export class GzipCodec extends DeflateFamily {
  static readonly kind = "bytes_to_bytes";
  protected readonly id = "gzip";
  protected readonly inflateFn: Transform = gunzip;
  protected readonly deflateFn: Transform = gzip;
  static fromConfig(config: unknown, meta?: ChunkMeta): GzipCodec {
    return new GzipCodec(levelOf("gzip", config, 5), decodedLimit(meta));
  }
}

function toU8(buf: Buffer): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}
