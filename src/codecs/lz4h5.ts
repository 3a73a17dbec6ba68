/**
 * The HDF5 lz4 filter's framing (filter 32004; imagecodecs `imagecodecs_lz4h5`):
 *
 *   u64 BE  original (decoded) size
 *   u32 BE  block size (decoded bytes per block; the last block may be shorter)
 *   then per block: u32 BE stored size, stored bytes. A block whose stored size equals its decoded
 *   size was kept uncompressed; otherwise it is a raw LZ4 block.
 *
 * numcodecs' `lz4` has a different header (u32 LE size + one block), hence a codec of its own.
 */
import { CodecError } from "../errors.js";
import { lz4DecodeBlock } from "./lz4-block.js";
import { type PoolTask, decodePooled, poolTask } from "./pool.js";
import { type BytesCodec, type ChunkMeta, checkSize, chunkBytes, decodedLimit, readU32BE, readU64BE } from "./types.js";

const ID = "lz4h5";

export function lz4h5Decompress(src: Uint8Array, limit: number): Uint8Array {
  if (src.length < 12) throw new CodecError(`${src.length} bytes is too short for the 12-byte header`, ID);
  const total = readU64BE(src, 0);
  checkSize(ID, "decoded size", total, limit);
  let blockSize = readU32BE(src, 8);
  if (blockSize === 0 && total > 0) throw new CodecError("block size 0 in header", ID);
  if (blockSize > total) blockSize = total;
  const out = new Uint8Array(total);
  let ip = 12;
  let op = 0;
  while (op < total) {
    const want = Math.min(blockSize, total - op);
    if (ip + 4 > src.length) throw new CodecError(`truncated: block at output ${op} has no size`, ID);
    const stored = readU32BE(src, ip);
    ip += 4;
    if (ip + stored > src.length) {
      throw new CodecError(`truncated: block of ${stored} bytes at input ${ip} runs past ${src.length}`, ID);
    }
    const block = src.subarray(ip, ip + stored);
    const dst = out.subarray(op, op + want);
    if (stored === want) dst.set(block);
    else if (lz4DecodeBlock(block, dst, ID) !== want) {
      throw new CodecError(`block at input ${ip} decodes to fewer than ${want} bytes`, ID);
    }
    ip += stored;
    op += want;
  }
  return out;
}

export class Lz4h5Codec implements BytesCodec {
  static readonly kind = "bytes_to_bytes";
  readonly kind = "bytes_to_bytes" as const;

  constructor(
    private readonly limit: number,
    private readonly task: PoolTask = poolTask("imagecodecs_lz4h5", {}),
    private readonly expected = 0,
  ) {}

  static fromConfig(config: unknown, meta?: ChunkMeta): Lz4h5Codec {
    return new Lz4h5Codec(decodedLimit(meta), poolTask("imagecodecs_lz4h5", config, meta), chunkBytes(meta));
  }

  encode(): Uint8Array {
    throw new CodecError("encoding is not implemented (decode only)", ID);
  }

  decode(bytes: Uint8Array): Uint8Array | Promise<Uint8Array> {
    return decodePooled(this.task, bytes, Math.max(bytes.length, this.expected), (b) => this.decodeLocal(b));
  }

  decodeLocal(bytes: Uint8Array): Uint8Array {
    return lz4h5Decompress(bytes, this.limit);
  }
}
