/**
 * The packed bit stream shared by HDF5's scaleoffset and nbit filters: values follow each other with
 * no alignment, each written most significant bit first, bytes filled from their high bit down.
 */
import { CodecError } from "../errors.js";

export class BitReader {
  private byte = 0;
  private bit = 0; // bits already consumed from src[byte], from the top

  constructor(
    private readonly src: Uint8Array,
    private readonly codec: string,
  ) {}

  /** Check up front that `count` values of `width` bits are there, so reads cannot run off the end. */
  require(count: number, width: number): void {
    const bits = count * width;
    const have = (this.src.length - this.byte) * 8 - this.bit;
    if (bits > have) {
      throw new CodecError(`packed data holds ${have} bits, ${count} values of ${width} bits need ${bits}`, this.codec);
    }
  }

  /** Read up to 32 bits as an unsigned number. */
  read(width: number): number {
    if (width === 0) return 0;
    if (width <= 25) {
      // Fast path: one 32-bit big-endian window covers the value (bit offset <= 7, width <= 25).
      // Bytes past the end read as 0; require() has already checked the value itself is there.
      const s = this.src;
      const b = this.byte;
      const window = (s[b] << 24) | (s[b + 1] << 16) | (s[b + 2] << 8) | s[b + 3];
      const v = (window << this.bit) >>> (32 - width);
      const end = this.bit + width;
      this.byte += end >>> 3;
      this.bit = end & 7;
      return v;
    }
    let v = 0;
    while (width > 0) {
      const avail = 8 - this.bit;
      const take = avail < width ? avail : width;
      const bits = (this.src[this.byte] >>> (avail - take)) & ((1 << take) - 1);
      v = v * (1 << take) + bits;
      width -= take;
      this.bit += take;
      if (this.bit === 8) {
        this.bit = 0;
        this.byte++;
      }
    }
    return v;
  }

  /** Read up to 64 bits as an unsigned bigint. */
  readBig(width: number): bigint {
    if (width <= 32) return BigInt(this.read(width));
    const high = this.read(width - 32);
    return (BigInt(high) << 32n) | BigInt(this.read(32));
  }
}

/** Write an unsigned integer of `size` bytes (bigint for 8) at `at`, in the given byte order. */
export function writeUint(out: Uint8Array, at: number, size: number, value: bigint, littleEndian: boolean): void {
  let v = value;
  for (let i = 0; i < size; i++) {
    const byte = Number(v & 0xffn);
    out[littleEndian ? at + i : at + size - 1 - i] = byte;
    v >>= 8n;
  }
}
