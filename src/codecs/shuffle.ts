/**
 * Byte shuffle (HDF5 filter 2, numcodecs `shuffle`). zarrita's own shuffle takes the element size from
 * the array dtype and ignores `elementsize`; HDF5 records the size it shuffled with (client data 0), and
 * it need not be the dtype's (compound, array types). Bytes past the last whole element are left in
 * place at the end, as H5Zshuffle.c does, instead of being dropped.
 */
import { CodecError } from "../errors.js";
import { type PoolTask, offloadDecode, poolTask } from "./pool.js";
import type { ShuffleArena } from "./shuffle-simd.js";
import { type BytesCodec, type ChunkMeta, bytesPerElement, intOption } from "./types.js";

let simdTarget: ShuffleArena | undefined;

/**
 * This thread's shuffle decodes of 4- and 8-byte elements go into `target` (SIMD; see
 * shuffle-simd.ts), or as usual again with undefined. Reduction workers set it.
 */
export function decodeShufflesInto(target: ShuffleArena | undefined): void {
  simdTarget = target;
}

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
    const size = this.elementSize;
    if (simdTarget && (size === 4 || size === 8) && bytes.length >= 4096) {
      const out = simdTarget.unshuffle(bytes, size);
      if (out) return out;
    }
    return transpose(bytes, size, false);
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
  const whole = unshuffleQuads(src, w, n, size);
  const [n2, n3] = [2 * n, 3 * n];
  if (size === 4) {
    for (let i = whole; i < n; i++) w[i] = src[i] | (src[n + i] << 8) | (src[n2 + i] << 16) | (src[n3 + i] << 24);
    return;
  }
  const [n4, n5, n6, n7] = [4 * n, 5 * n, 6 * n, 7 * n];
  for (let i = whole; i < n; i++) {
    w[2 * i] = src[i] | (src[n + i] << 8) | (src[n2 + i] << 16) | (src[n3 + i] << 24);
    w[2 * i + 1] = src[n4 + i] | (src[n5 + i] << 8) | (src[n6 + i] << 16) | (src[n7 + i] << 24);
  }
}

/**
 * Four elements at a time: one 32-bit load from each of four byte planes holds bytes k..k+3 of
 * elements i..i+3, and a 4x4 byte transpose in registers turns them into the elements' words, so a
 * load or store moves four bytes instead of one (about 1.5x faster for 8-byte elements). Returns how
 * many elements it did; the caller finishes the last n % 4.
 */
function unshuffleQuads(src: Uint8Array, w: Uint32Array, n: number, size: number): number {
  const d = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const halves = size >>> 2;
  const m = n & ~3;
  for (let i = 0; i < m; i += 4) {
    for (let h = 0; h < halves; h++) {
      const at = 4 * h * n + i;
      const p0 = d.getUint32(at, true);
      const p1 = d.getUint32(at + n, true);
      const p2 = d.getUint32(at + 2 * n, true);
      const p3 = d.getUint32(at + 3 * n, true);
      // p_k holds byte k of elements i..i+3; pair them up, then the pairs of pairs.
      const t0 = (p0 & 0x00ff00ff) | ((p1 & 0x00ff00ff) << 8);
      const t1 = ((p0 >>> 8) & 0x00ff00ff) | (p1 & 0xff00ff00);
      const t2 = (p2 & 0x00ff00ff) | ((p3 & 0x00ff00ff) << 8);
      const t3 = ((p2 >>> 8) & 0x00ff00ff) | (p3 & 0xff00ff00);
      const o = halves * i + h;
      w[o] = (t0 & 0xffff) | (t2 << 16);
      w[o + halves] = (t1 & 0xffff) | (t3 << 16);
      w[o + 2 * halves] = (t0 >>> 16) | (t2 & 0xffff0000);
      w[o + 3 * halves] = (t1 >>> 16) | (t3 & 0xffff0000);
    }
  }
  return m;
}
