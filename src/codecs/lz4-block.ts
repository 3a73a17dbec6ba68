/**
 * Raw LZ4 block decoding (the block format, not the frame format), as used inside the HDF5 lz4
 * filter's blocks and bitshuffle's LZ4 blocks.
 *
 * A block is a run of sequences: a token (high nibble literal length, low nibble match length - 4,
 * each nibble 15 extended by following bytes while they are 255), the literals, then a 2-byte
 * little-endian offset and the match. The last sequence has literals only.
 */
import { CodecError } from "../errors.js";

/**
 * Decode `src` into exactly `dst` (its length is the expected decoded size). Returns the bytes
 * written; anything that would read or write out of bounds is a CodecError for `codec`.
 */
export function lz4DecodeBlock(src: Uint8Array, dst: Uint8Array, codec: string): number {
  let ip = 0;
  let op = 0;
  const fail = (what: string): never => {
    throw new CodecError(`corrupt LZ4 block: ${what} (input ${ip}/${src.length}, output ${op}/${dst.length})`, codec);
  };
  while (ip < src.length) {
    const token = src[ip++];
    let literals = token >>> 4;
    if (literals === 15) {
      let b: number;
      do {
        if (ip >= src.length) fail("truncated literal length");
        b = src[ip++];
        literals += b;
      } while (b === 255);
    }
    if (ip + literals > src.length) fail("literals run past the input");
    if (op + literals > dst.length) fail("literals run past the output");
    dst.set(src.subarray(ip, ip + literals), op);
    ip += literals;
    op += literals;
    if (ip === src.length) break; // last sequence: literals only
    if (ip + 2 > src.length) fail("truncated match offset");
    const offset = src[ip] | (src[ip + 1] << 8);
    ip += 2;
    if (offset === 0 || offset > op) fail(`match offset ${offset} out of range`);
    let length = (token & 15) + 4;
    if ((token & 15) === 15) {
      let b: number;
      do {
        if (ip >= src.length) fail("truncated match length");
        b = src[ip++];
        length += b;
      } while (b === 255);
    }
    if (op + length > dst.length) fail("match runs past the output");
    let from = op - offset;
    if (offset >= length) {
      dst.copyWithin(op, from, from + length);
      op += length;
    } else {
      // Overlapping match: repeats the last `offset` bytes.
      for (let k = 0; k < length; k++) dst[op++] = dst[from++];
    }
  }
  return op;
}
