/** The lookup3 checksum that guards every version-2 structure of an HDF5 file. */
import type { Cursor } from "./io.js";

/**
 * Bob Jenkins' lookup3 `hashlittle`, which HDF5 uses as the checksum of every version-2 structure
 * (superblock v2/3, OHDR, B-tree v2 nodes, fractal heap, fixed/extensible array blocks).
 */
export function lookup3(bytes: Uint8Array, initval = 0): number {
  let length = bytes.length;
  let a = (0xdeadbeef + length + initval) >>> 0;
  let b = a;
  let c = a;
  let k = 0;
  const rot = (x: number, n: number) => ((x << n) | (x >>> (32 - n))) >>> 0;
  while (length > 12) {
    a = (a + (bytes[k] | (bytes[k + 1] << 8) | (bytes[k + 2] << 16) | (bytes[k + 3] << 24))) >>> 0;
    b = (b + (bytes[k + 4] | (bytes[k + 5] << 8) | (bytes[k + 6] << 16) | (bytes[k + 7] << 24))) >>> 0;
    c = (c + (bytes[k + 8] | (bytes[k + 9] << 8) | (bytes[k + 10] << 16) | (bytes[k + 11] << 24))) >>> 0;
    a = (a - c) >>> 0; a = (a ^ rot(c, 4)) >>> 0; c = (c + b) >>> 0;
    b = (b - a) >>> 0; b = (b ^ rot(a, 6)) >>> 0; a = (a + c) >>> 0;
    c = (c - b) >>> 0; c = (c ^ rot(b, 8)) >>> 0; b = (b + a) >>> 0;
    a = (a - c) >>> 0; a = (a ^ rot(c, 16)) >>> 0; c = (c + b) >>> 0;
    b = (b - a) >>> 0; b = (b ^ rot(a, 19)) >>> 0; a = (a + c) >>> 0;
    c = (c - b) >>> 0; c = (c ^ rot(b, 4)) >>> 0; b = (b + a) >>> 0;
    length -= 12;
    k += 12;
  }
  if (length === 0) return c;
  const byte = (i: number) => (i < length ? bytes[k + i] : 0);
  c = (c + ((byte(11) << 24) | (byte(10) << 16) | (byte(9) << 8) | byte(8))) >>> 0;
  b = (b + ((byte(7) << 24) | (byte(6) << 16) | (byte(5) << 8) | byte(4))) >>> 0;
  a = (a + ((byte(3) << 24) | (byte(2) << 16) | (byte(1) << 8) | byte(0))) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rot(b, 14)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rot(c, 11)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rot(a, 25)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rot(b, 16)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rot(c, 4)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rot(a, 14)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rot(b, 24)) >>> 0;
  return c;
}

/** Verifies the trailing 4-byte lookup3 checksum of `bytes[0..n)` stored at `bytes[n..n+4)`. */
export function verifyChecksum(cursor: Cursor, start: number, end: number): void {
  const stored = new DataView(cursor.bytes.buffer, cursor.bytes.byteOffset + end, 4).getUint32(0, true);
  const computed = lookup3(cursor.bytes.subarray(start, end));
  if (stored !== computed) {
    throw cursor.error(
      `checksum mismatch (stored ${stored.toString(16)}, computed ${computed.toString(16)})`,
      cursor.base + start,
    );
  }
}
