/**
 * Bitshuffle (HDF5 filter 32008). Two ids share this implementation:
 *
 * - `imagecodecs_bitshuffle` `{itemsize, blocksize}`: the bare bit-transposed bytes (filter
 *   compression option 0).
 * - `hdf5_bitshuffle` `{itemsize, blocksize, compression: "lz4"}`: the filter's LZ4 mode (option 2):
 *   u64 BE decoded size, u32 BE block size in bytes, then per block u32 BE stored size + a raw LZ4 block.
 *
 * Elements are transposed in blocks of `blocksize` elements (0 = bitshuffle's default: 8192 bytes'
 * worth, a multiple of 8, at least 128). The trailing partial block is transposed over its largest
 * multiple of 8 elements; the last (count % 8) elements are stored as they are, after the blocks.
 * Within a block of n elements of s bytes, bit k of byte j of element i is bit (i % 8) of byte
 * (j * 8 + k) * n / 8 + floor(i / 8): "bit-rows", least significant bit first.
 */
import { CodecError } from "../errors.js";
import { lz4DecodeBlock } from "./lz4-block.js";
import { type PoolTask, decodePooled, poolTask } from "./pool.js";
import {
  type BytesCodec,
  type ChunkMeta,
  checkSize,
  chunkBytes,
  decodedLimit,
  intOption,
  readU32BE,
  readU64BE,
  stringOption,
} from "./types.js";

const ID = "bitshuffle";

export function defaultBlockSize(itemsize: number): number {
  const elements = Math.floor(Math.floor(8192 / itemsize) / 8) * 8;
  return Math.max(elements, 128);
}

/** Undo the bit transpose of one block of `n` elements (n % 8 == 0) into `out`. */
function untransposeBlock(src: Uint8Array, out: Uint8Array, n: number, s: number): void {
  const rowBytes = n >>> 3;
  for (let j = 0; j < s; j++) {
    const row0 = j * 8 * rowBytes;
    for (let g = 0; g < rowBytes; g++) {
      // The 8 bit-rows of byte j for elements 8g..8g+7 form an 8x8 bit matrix (row k = bit k);
      // transposing it yields byte j of those 8 elements. Rows 0-3 in lo, 4-7 in hi.
      const at = row0 + g;
      let lo = src[at] | (src[at + rowBytes] << 8) | (src[at + 2 * rowBytes] << 16) | (src[at + 3 * rowBytes] << 24);
      let hi =
        src[at + 4 * rowBytes] | (src[at + 5 * rowBytes] << 8) | (src[at + 6 * rowBytes] << 16) | (src[at + 7 * rowBytes] << 24);
      let t = (lo ^ (lo >>> 7)) & 0x00aa00aa;
      lo = lo ^ t ^ (t << 7);
      t = (hi ^ (hi >>> 7)) & 0x00aa00aa;
      hi = hi ^ t ^ (t << 7);
      t = (lo ^ (lo >>> 14)) & 0x0000cccc;
      lo = lo ^ t ^ (t << 14);
      t = (hi ^ (hi >>> 14)) & 0x0000cccc;
      hi = hi ^ t ^ (t << 14);
      t = (lo ^ ((lo >>> 28) | (hi << 4))) & 0xf0f0f0f0;
      lo ^= t;
      hi ^= t >>> 4;
      const base = g * 8 * s + j;
      out[base] = lo;
      out[base + s] = lo >>> 8;
      out[base + 2 * s] = lo >>> 16;
      out[base + 3 * s] = lo >>> 24;
      out[base + 4 * s] = hi;
      out[base + 5 * s] = hi >>> 8;
      out[base + 6 * s] = hi >>> 16;
      out[base + 7 * s] = hi >>> 24;
    }
  }
}

/** Block sizes (in elements) of a buffer of `count` elements, as bitshuffle lays them out. */
function blocks(count: number, blockSize: number): number[] {
  const sizes: number[] = [];
  for (let i = 0; i < Math.floor(count / blockSize); i++) sizes.push(blockSize);
  const last = count % blockSize;
  const lastWhole = last - (last % 8);
  if (lastWhole) sizes.push(lastWhole);
  return sizes;
}

export class BitshuffleCodec implements BytesCodec {
  static readonly kind = "bytes_to_bytes";
  readonly kind = "bytes_to_bytes" as const;

  constructor(
    readonly itemsize: number,
    readonly blocksize: number,
    readonly compression: "none" | "lz4",
    private readonly limit: number,
    private readonly task: PoolTask = poolTask("hdf5_bitshuffle", { itemsize, blocksize, compression }),
    private readonly expected = 0,
  ) {
    if (itemsize < 1) throw new CodecError(`itemsize must be >= 1, got ${itemsize}`, ID);
    if (blocksize % 8 !== 0) throw new CodecError(`blocksize must be a multiple of 8, got ${blocksize}`, ID);
  }

  static fromConfig(config: unknown, meta?: ChunkMeta): BitshuffleCodec {
    const compression = stringOption(ID, config, "compression", "none");
    if (compression !== "none" && compression !== "lz4") {
      throw new CodecError(`compression "${compression}" is not supported (none, lz4)`, ID);
    }
    return new BitshuffleCodec(
      intOption(ID, config, "itemsize", 1),
      intOption(ID, config, "blocksize", 0),
      compression,
      decodedLimit(meta),
      poolTask("hdf5_bitshuffle", config, meta),
      chunkBytes(meta),
    );
  }

  encode(): Uint8Array {
    throw new CodecError("encoding is not implemented (decode only)", ID);
  }

  decode(bytes: Uint8Array): Uint8Array | Promise<Uint8Array> {
    return decodePooled(this.task, bytes, Math.max(bytes.length, this.expected), (b) => this.decodeLocal(b));
  }

  decodeLocal(bytes: Uint8Array): Uint8Array {
    return this.compression === "lz4" ? this.decodeLz4(bytes) : this.decodePlain(bytes);
  }

  private decodePlain(src: Uint8Array): Uint8Array {
    const s = this.itemsize;
    if (src.length % s) throw new CodecError(`${src.length} bytes is not a whole number of ${s}-byte elements`, ID);
    const out = new Uint8Array(src.length);
    let pos = 0;
    for (const n of blocks(src.length / s, this.blocksize || defaultBlockSize(s))) {
      untransposeBlock(src.subarray(pos, pos + n * s), out.subarray(pos, pos + n * s), n, s);
      pos += n * s;
    }
    out.set(src.subarray(pos), pos);
    return out;
  }

  private decodeLz4(src: Uint8Array): Uint8Array {
    const s = this.itemsize;
    if (src.length < 12) throw new CodecError(`${src.length} bytes is too short for the 12-byte header`, ID);
    const total = readU64BE(src, 0);
    checkSize(ID, "decoded size", total, this.limit);
    if (total % s) throw new CodecError(`decoded size ${total} is not a whole number of ${s}-byte elements`, ID);
    const blockBytes = readU32BE(src, 8);
    const blockSize = blockBytes / s;
    if (!Number.isInteger(blockSize) || blockSize === 0 || blockSize % 8) {
      throw new CodecError(`block size ${blockBytes} bytes is not a positive multiple of 8 elements`, ID);
    }
    const out = new Uint8Array(total);
    const scratch = new Uint8Array(Math.min(blockSize, total / s) * s);
    let ip = 12;
    let op = 0;
    for (const n of blocks(total / s, blockSize)) {
      if (ip + 4 > src.length) throw new CodecError(`truncated: block at output ${op} has no size`, ID);
      const stored = readU32BE(src, ip);
      ip += 4;
      if (ip + stored > src.length) {
        throw new CodecError(`truncated: block of ${stored} bytes at input ${ip} runs past ${src.length}`, ID);
      }
      const shuffled = scratch.subarray(0, n * s);
      if (lz4DecodeBlock(src.subarray(ip, ip + stored), shuffled, ID) !== shuffled.length) {
        throw new CodecError(`block at input ${ip} decodes to fewer than ${shuffled.length} bytes`, ID);
      }
      untransposeBlock(shuffled, out.subarray(op, op + n * s), n, s);
      ip += stored;
      op += n * s;
    }
    const rest = total - op;
    if (src.length - ip !== rest) {
      throw new CodecError(`expected ${rest} trailing unshuffled bytes, found ${src.length - ip}`, ID);
    }
    out.set(src.subarray(ip), op);
    return out;
  }
}
