/**
 * Byte shuffle (HDF5 filter 2, numcodecs `shuffle`). zarrita's own shuffle takes the element size from
 * the array dtype and ignores `elementsize`; HDF5 records the size it shuffled with (client data 0), and
 * it need not be the dtype's (compound, array types). Bytes past the last whole element are left in
 * place at the end, as H5Zshuffle.c does, instead of being dropped.
 */
import { CodecError } from "../errors.js";
import { type BytesCodec, type ChunkMeta, bytesPerElement, intOption } from "./types.js";

export class ShuffleCodec implements BytesCodec {
  static readonly kind = "bytes_to_bytes";
  readonly kind = "bytes_to_bytes" as const;

  constructor(readonly elementSize: number) {
    if (elementSize < 1) throw new CodecError(`elementsize must be >= 1, got ${elementSize}`, "shuffle");
  }

  static fromConfig(config: unknown, meta?: ChunkMeta): ShuffleCodec {
    const fallback = meta ? bytesPerElement(meta.dataType) : undefined;
    return new ShuffleCodec(intOption("shuffle", config, "elementsize", fallback ?? 4));
  }

  encode(bytes: Uint8Array): Uint8Array {
    return transpose(bytes, this.elementSize, true);
  }

  decode(bytes: Uint8Array): Uint8Array {
    return transpose(bytes, this.elementSize, false);
  }
}

function transpose(src: Uint8Array, size: number, forward: boolean): Uint8Array {
  if (size === 1) return src;
  const n = Math.floor(src.length / size);
  const out = new Uint8Array(src.length);
  for (let b = 0; b < size; b++) {
    const plane = b * n;
    if (forward) for (let i = 0; i < n; i++) out[plane + i] = src[i * size + b];
    else for (let i = 0; i < n; i++) out[i * size + b] = src[plane + i];
  }
  const whole = n * size;
  out.set(src.subarray(whole), whole);
  return out;
}
