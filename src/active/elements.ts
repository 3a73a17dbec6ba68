/**
 * Chunk bytes as the kernel's typed arrays: element sizes, and views of raw little-endian bytes.
 */
import type { NumericArray } from "./kernel.js";

const ELEMENTS: Record<string, new (buffer: ArrayBuffer, byteOffset: number, length: number) => NumericArray> = {
  int8: Int8Array, uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array,
  int64: BigInt64Array, uint64: BigUint64Array, float32: Float32Array, float64: Float64Array,
};

/** Bytes per element of each numeric dtype. */
export const ITEM_SIZE: Readonly<Record<string, number>> = Object.fromEntries(
  Object.entries(ELEMENTS).map(([dtype, Kind]) => [dtype, (Kind as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT]),
);

/**
 * Raw little-endian bytes as the kernel's elements of `dtype` (a view, no copy): what zarrita's
 * decode of a chunk with no codec makes. Undefined for another dtype, or bytes not aligned to the
 * element size.
 */
export function elementsOf(dtype: string, bytes: Uint8Array): NumericArray | undefined {
  const Kind = ELEMENTS[dtype];
  if (!Kind) return undefined;
  const size = ITEM_SIZE[dtype];
  if (bytes.byteOffset % size !== 0 || bytes.length % size !== 0) return undefined;
  return new Kind(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.length / size);
}
