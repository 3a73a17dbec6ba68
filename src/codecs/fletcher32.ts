/**
 * Fletcher-32 checksum (HDF5 filter 3, numcodecs `fletcher32`). The checksum runs over big-endian
 * 16-bit words with both sums starting at 0 (not 0xffff); an odd trailing byte counts as the high byte
 * of a last word. HDF5 appends it little-endian (UINT32ENCODE), as numcodecs does (`<I`).
 *
 * HDF5 before 1.6.3 wrote the value with its 16-bit halves byte-swapped on little-endian machines, and
 * HDF5 still accepts that form on read; so do we.
 *
 * zarrita gives codecs no chunk key, so a mismatch names the chunk by its size and checksums; the
 * pipeline caller adds the key (zarrita wraps the error in CodecPipelineError with this as `cause`).
 */
import { CodecError } from "../errors.js";
import { type BytesCodec, readU32LE } from "./types.js";

export function fletcher32(data: Uint8Array): number {
  let sum1 = 0;
  let sum2 = 0;
  let i = 0;
  let words = data.length >>> 1;
  while (words > 0) {
    // 360 words is the most that can be summed before the 32-bit sums could overflow.
    let n = Math.min(words, 360);
    words -= n;
    while (n-- > 0) {
      sum1 += (data[i] << 8) | data[i + 1];
      sum2 += sum1;
      i += 2;
    }
    sum1 = (sum1 & 0xffff) + (sum1 >>> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >>> 16);
  }
  if (data.length & 1) {
    sum1 += data[i] << 8;
    sum2 += sum1;
    sum1 = (sum1 & 0xffff) + (sum1 >>> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >>> 16);
  }
  sum1 = (sum1 & 0xffff) + (sum1 >>> 16);
  sum2 = (sum2 & 0xffff) + (sum2 >>> 16);
  return ((sum2 << 16) | sum1) >>> 0;
}

export class Fletcher32Codec implements BytesCodec {
  static readonly kind = "bytes_to_bytes";
  readonly kind = "bytes_to_bytes" as const;

  static fromConfig(): Fletcher32Codec {
    return new Fletcher32Codec();
  }

  encode(bytes: Uint8Array): Uint8Array {
    const out = new Uint8Array(bytes.length + 4);
    out.set(bytes);
    new DataView(out.buffer).setUint32(bytes.length, fletcher32(bytes), true);
    return out;
  }

  decode(bytes: Uint8Array): Uint8Array {
    if (bytes.length < 4) {
      throw new CodecError(`chunk of ${bytes.length} bytes is too short to hold a checksum`, "fletcher32");
    }
    const body = bytes.subarray(0, bytes.length - 4);
    const stored = readU32LE(bytes, bytes.length - 4);
    const computed = fletcher32(body);
    // The pre-1.6.3 form: bytes [b1 b0 b3 b2] of the little-endian value.
    const swapped = (((computed & 0x00ff00ff) << 8) | ((computed >>> 8) & 0x00ff00ff)) >>> 0;
    if (stored !== computed && stored !== swapped) {
      throw new CodecError(
        `checksum mismatch over ${body.length} bytes: stored 0x${hex(stored)}, computed 0x${hex(computed)} (data corrupt)`,
        "fletcher32",
      );
    }
    return body;
  }
}

function hex(n: number): string {
  return n.toString(16).padStart(8, "0");
}
