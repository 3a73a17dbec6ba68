/**
 * Variable-length strings: each stored element is a heap reference (u32 length, collection address,
 * u32 object index), the characters live in global heap collections. References cannot point into
 * a file from a zarr chunk, so vlen chunks are decoded here and inlined in numcodecs' VLenUTF8
 * layout, which zarrita and Python zarr both read.
 */
import { readGlobalHeapObject } from "../hdf5/global-heap.js";
import { UNDEFINED_ADDRESS, type FileContext } from "../hdf5/io.js";
import { encodeVlenUtf8 } from "./inline.js";

/** Bytes per stored vlen element in this file. */
export function vlenElementSize(ctx: FileContext): number {
  return 4 + ctx.sizes.offsetSize + 4;
}

/**
 * Decodes `count` stored vlen string elements from `bytes` (shorter input means unwritten elements,
 * which read as ""), returning the VLenUTF8 encoding of the strings.
 */
export async function decodeVlenStrings(ctx: FileContext, bytes: Uint8Array, count: number): Promise<Uint8Array> {
  const size = vlenElementSize(ctx);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder();
  const strings = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const at = i * size;
      if (at + size > bytes.length) return "";
      const length = view.getUint32(at, true);
      const collection = readAddress(bytes, at + 4, ctx.sizes.offsetSize);
      const index = view.getUint32(at + 4 + ctx.sizes.offsetSize, true);
      if (length === 0 || collection === 0 || collection === UNDEFINED_ADDRESS) return "";
      const object = await readGlobalHeapObject(ctx, { collection, index });
      // The heap object holds exactly the characters; h5py drops anything after a NUL.
      const text = decoder.decode(object.subarray(0, Math.min(length, object.length)));
      const nul = text.indexOf("\0");
      return nul === -1 ? text : text.slice(0, nul);
    }),
  );
  return encodeVlenUtf8(strings);
}

function readAddress(bytes: Uint8Array, at: number, size: number): number {
  let allOnes = true;
  let value = 0;
  let scale = 1;
  for (let i = 0; i < size; i++) {
    const b = bytes[at + i];
    if (b !== 0xff) allOnes = false;
    value += b * scale;
    scale *= 256;
  }
  return allOnes ? UNDEFINED_ADDRESS : value;
}
