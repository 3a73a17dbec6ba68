/**
 * What every codec here shares: the zarr v2 configuration shape, the chunk metadata zarrita hands to
 * `fromConfig`, and the bounds that keep a lying length field from allocating without limit.
 */
import { CodecError } from "../errors.js";

/** A zarr v2 filter/compressor object: `{ id, ...configuration }`, as stored in `.zarray`. */
export interface CodecConfig {
  id: string;
  [key: string]: unknown;
}

/** The part of zarrita's chunk metadata our codecs read (zarrita passes more). */
export interface ChunkMeta {
  /** zarrita data type name: `int16`, `float64`, `uint8`, ... */
  dataType: string;
  /** Chunk shape in elements. */
  shape: number[];
}

/** A bytes-to-bytes codec as zarrita's pipeline drives it. */
export interface BytesCodec {
  readonly kind: "bytes_to_bytes";
  encode(bytes: Uint8Array): Uint8Array | Promise<Uint8Array>;
  decode(bytes: Uint8Array): Uint8Array | Promise<Uint8Array>;
  /**
   * Decode on the calling thread, never through the codec pool: what a pool worker runs, and what
   * `decode` falls back to for small chunks. Codecs without it always decode inline.
   */
  decodeLocal?(bytes: Uint8Array): Uint8Array | Promise<Uint8Array>;
  /**
   * `decodeLocal` into `out`, a buffer of exactly the decoded length at offset 0 of its own
   * ArrayBuffer, for codecs whose output has the input's length: a pool worker recycles buffers.
   */
  decodeInto?(bytes: Uint8Array, out: Uint8Array): Uint8Array;
}

/** The static side zarrita's registry resolves to. */
export interface BytesCodecClass {
  readonly kind?: "bytes_to_bytes";
  fromConfig(config: unknown, meta?: ChunkMeta): BytesCodec;
}

const BYTES_PER_ELEMENT: Record<string, number> = {
  bool: 1,
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  float16: 2,
  int32: 4,
  uint32: 4,
  float32: 4,
  int64: 8,
  uint64: 8,
  float64: 8,
};

/** Without chunk metadata we still refuse absurd sizes; 1 GiB is far above any sane chunk. */
export const DEFAULT_MAX_DECODED_BYTES = 1 << 30;

/**
 * Upper bound for any intermediate buffer while decoding one chunk. Stages between the stored bytes
 * and the array bytes are never larger than the chunk plus a small header/trailer, so the chunk size
 * plus 1 MiB of slack is generous and still bounded.
 */
export function decodedLimit(meta?: ChunkMeta): number {
  if (!meta) return DEFAULT_MAX_DECODED_BYTES;
  const size = BYTES_PER_ELEMENT[meta.dataType];
  if (size === undefined) return DEFAULT_MAX_DECODED_BYTES;
  const n = meta.shape.reduce((a, b) => a * b, 1);
  return Math.min(n * size + (1 << 20), DEFAULT_MAX_DECODED_BYTES);
}

/** Bytes of one whole decoded chunk, or undefined without metadata or for variable-size types. */
export function chunkBytes(meta?: ChunkMeta): number | undefined {
  const size = meta ? BYTES_PER_ELEMENT[meta.dataType] : undefined;
  return size === undefined ? undefined : meta!.shape.reduce((a, b) => a * b, size);
}

/** zarrita's element size for a data type, or undefined for variable-size types. */
export function bytesPerElement(dataType: string): number | undefined {
  return BYTES_PER_ELEMENT[dataType];
}

/** Read a non-negative integer option from a codec configuration, with a default. */
export function intOption(codec: string, config: unknown, key: string, fallback?: number): number {
  const value = isRecord(config) ? config[key] : undefined;
  if (value === undefined || value === null) {
    if (fallback === undefined) throw new CodecError(`configuration needs "${key}"`, codec);
    return fallback;
  }
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw new CodecError(`configuration "${key}" must be a non-negative integer, got ${JSON.stringify(value)}`, codec);
  }
  return value;
}

/** Read an array of non-negative integers (HDF5 client data) from a configuration. */
export function intArrayOption(codec: string, config: unknown, key: string): number[] {
  const value = isRecord(config) ? config[key] : undefined;
  if (!Array.isArray(value) || !value.every((v) => typeof v === "number" && Number.isInteger(v) && v >= 0)) {
    throw new CodecError(`configuration "${key}" must be an array of non-negative integers`, codec);
  }
  return value as number[];
}

export function stringOption(codec: string, config: unknown, key: string, fallback?: string): string {
  const value = isRecord(config) ? config[key] : undefined;
  if (value === undefined || value === null) {
    if (fallback === undefined) throw new CodecError(`configuration needs "${key}"`, codec);
    return fallback;
  }
  if (typeof value !== "string") throw new CodecError(`configuration "${key}" must be a string`, codec);
  return value;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null;
}

/** Refuse a size read from the data before allocating for it. */
export function checkSize(codec: string, what: string, size: number, limit: number): void {
  if (!Number.isSafeInteger(size) || size < 0 || size > limit) {
    throw new CodecError(`${what} ${size} exceeds the limit of ${limit} bytes for this chunk (corrupt data?)`, codec);
  }
}

export function readU32BE(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

export function readU64BE(b: Uint8Array, at: number): number {
  return readU32BE(b, at) * 2 ** 32 + readU32BE(b, at + 4);
}

export function readU32LE(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}
