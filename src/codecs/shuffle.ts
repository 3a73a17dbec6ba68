/**
 * Byte shuffle (HDF5 filter 2, numcodecs `shuffle`). zarrita's own shuffle takes the element size from
 * the array dtype and ignores `elementsize`; HDF5 records the size it shuffled with (client data 0), and
 * it need not be the dtype's (compound, array types). Bytes past the last whole element are left in
 * place at the end, as H5Zshuffle.c does, instead of being dropped.
 */
import { CodecError } from "../errors.js";
import { type PoolTask, offloadDecode, poolTask } from "./pool.js";
import { type BytesCodec, type ChunkMeta, bytesPerElement, intOption } from "./types.js";

export class ShuffleCodec implements BytesCodec {
  static readonly kind = "bytes_to_bytes";
  readonly kind = "bytes_to_bytes" as const;

  private readonly task: PoolTask;

  constructor(readonly elementSize: number, meta?: ChunkMeta) {
    if (elementSize < 1) throw new CodecError(`elementsize must be >= 1, got ${elementSize}`, "shuffle");
    // The resolved size is the whole configuration a worker needs.
    this.task = poolTask("shuffle", { elementsize: elementSize }, meta);
  }

  static fromConfig(config: unknown, meta?: ChunkMeta): ShuffleCodec {
    const fallback = meta ? bytesPerElement(meta.dataType) : undefined;
    return new ShuffleCodec(intOption("shuffle", config, "elementsize", fallback ?? 4), meta);
  }

  encode(bytes: Uint8Array): Uint8Array {
    return transpose(bytes, this.elementSize, true);
  }

  decode(bytes: Uint8Array): Uint8Array | Promise<Uint8Array> {
    if (this.elementSize === 1) return bytes;
    return offloadDecode(this.task, bytes, bytes.length, () => this.decodeLocal(bytes)) ?? this.decodeLocal(bytes);
  }

  decodeLocal(bytes: Uint8Array): Uint8Array {
    return transpose(bytes, this.elementSize, false);
  }

  decodeInto(bytes: Uint8Array, out: Uint8Array): Uint8Array {
    return transpose(bytes, this.elementSize, false, out);
  }
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function transpose(src: Uint8Array, size: number, forward: boolean, into?: Uint8Array): Uint8Array {
  if (size === 1) return src;
  const n = Math.floor(src.length / size);
  // unshuffleWords views the output's buffer as words from offset 0.
  const out = into && into.length === src.length && into.byteOffset === 0 ? into : new Uint8Array(src.length);
  if (!forward && LITTLE_ENDIAN_HOST && (size === 2 || size === 4 || size === 8)) {
    unshuffleWords(src, out, n, size);
    out.set(src.subarray(n * size), n * size);
    return out;
  }
  for (let b = 0; b < size; b++) {
    const plane = b * n;
    if (forward) for (let i = 0; i < n; i++) out[plane + i] = src[i * size + b];
    else for (let i = 0; i < n; i++) out[i * size + b] = src[plane + i];
  }
  const whole = n * size;
  out.set(src.subarray(whole), whole);
  return out;
}

/** Unshuffle by assembling whole 16/32-bit words: several times faster than byte-by-byte. */
function unshuffleWords(src: Uint8Array, out: Uint8Array, n: number, size: number): void {
  if (size === 2) {
    const w = new Uint16Array(out.buffer, 0, n);
    for (let i = 0; i < n; i++) w[i] = src[i] | (src[n + i] << 8);
    return;
  }
  const w = new Uint32Array(out.buffer, 0, (n * size) >>> 2);
  const [n2, n3] = [2 * n, 3 * n];
  if (size === 4) {
    for (let i = 0; i < n; i++) w[i] = src[i] | (src[n + i] << 8) | (src[n2 + i] << 16) | (src[n3 + i] << 24);
    return;
  }
  const [n4, n5, n6, n7] = [4 * n, 5 * n, 6 * n, 7 * n];
  for (let i = 0; i < n; i++) {
    w[2 * i] = src[i] | (src[n + i] << 8) | (src[n2 + i] << 16) | (src[n3 + i] << 24);
    w[2 * i + 1] = src[n4 + i] | (src[n5 + i] << 8) | (src[n6 + i] << 16) | (src[n7 + i] << 24);
  }
}
